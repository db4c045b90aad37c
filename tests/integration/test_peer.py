"""The peer transport: one force's yjlinkd tells another's (interfaces.md §3
`peer`, routing.md `out_of_area_force`, docs/federation.md).

Two real daemons on loopback: "tvp" (deployment.force E23000029, Thames
Valley) has the recipient force:E23000001 with transport peer pointing at
the YJL1 ingest endpoint of "met" (deployment.force E23000001, the
Metropolitan Police), and the out_of_area_force rule of conf/yjlinkd.conf;
met takes messages for E23000029 from loopback (ingest.forces) and routes
them under its own rules to a webhook of this test.

- PeerDeliveryTest: a custody event at tvp for a child whose home is in
  Westminster is stored at met as a feed message (source_id tvp's
  notification id, force E23000029) with only the fields tvp's allowlist
  gives, and met routes it (its webhook hears, its digest has it); tvp
  audits the disclosure and its outbox empties.
- PeerDownTest: met stopped, tvp keeps retrying (attempts > 0); met
  started again, the event arrives once.
- LostReplyTest: a proxy between the two drops met's first answer: tvp
  times out, sends the same request again, met answers DUP, and met holds
  the event exactly once.
- PeerRejectTest: a met that does not take E23000029 answers REJECT
  forbidden: the notification is in tvp's dead-letter queue with met's
  detail.
- CurvePeerTest: with peer.server_key and peer.key_file the DEALER is a
  CURVE client with the public key of its secret (checked by a ZAP handler
  of a scripted peer), sends exactly the frames of §1, and retries when the
  peer answers RETRY.
- PeerCheckTest: `yjlinkd --check` refuses a peer recipient that lacks a
  field the peer requires, a bad endpoint, one key without the other, and
  plain over a network.

No test asserts a timing: every wait polls with a generous deadline
(YJ_TEST_WAIT_S, default 60 s). Run with /usr/bin/python3 (Debian's python3-zmq).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import zmq
import zmq.utils.z85

import yjtest
from http_receiver import HttpReceiver

WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "60"))

TVP_FORCE = "E23000029"
MET_FORCE = "E23000001"
MET = "force:" + MET_FORCE
WESTMINSTER = "E09000033"          # a London borough: its police force area is the Met's
GIVEN, FAMILY = "Zebedee", "Quartermaine"   # to look for in the logs (never there)


def shipped_force_allowlist():
    """The allow list of force:E23000001 in conf/yjlinkd.conf, as libconfig text."""
    with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
        text = f.read()
    block = re.search(r'\{ id = "force:E23000001";.*?allow = (\[[^\]]*\]); \}', text, re.S)
    assert block, "no force:E23000001 recipient in conf/yjlinkd.conf"
    return block.group(1)


TVP_CONFIG = """
deployment = { id = "tvp"; name = "Thames Valley (peer test)"; force = "E23000029"; };
recipients = (
  { id = "force:E23000001"; kind = "force"; name = "Metropolitan Police"; force = "E23000001";
    transport = "peer";
    peer = { endpoint = "%(endpoint)s"; timeout_ms = %(timeout_ms)d;%(keys)s };
    allow = %(allow)s; }
);
rules = (
  { id = "out_of_area_force"; feeds = [ "custody", "arrest", "outcome" ]; home_other_force = true;
    recipient = "force:home"; mode = "immediate"; legal_basis = "Crime and Disorder Act 1998 s.115"; }
);
"""

MET_CONFIG = """
deployment = { id = "met"; name = "Metropolitan Police (peer test)"; force = "E23000001"; };
ingest = { forces = [ %(forces)s ]; };
recipients = (
  { id = "yjs:westminster"; kind = "yjs"; name = "Westminster YJS"; local_authorities = [ "E09000033" ];
    digest_times = [ "07:30" ]; transport = "webhook";
    webhook = { url = "%(url)s"; secret_file = "%(secret_file)s"; timeout_ms = 30000; };
    allow = [ "source_id", "force", "occurred_at", "child.*", "offences.*", "markers.*", "custody.*", "arrest.*",
              "interview.*", "outcome.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true;
    recipient = "yjs:home"; mode = "digest"; legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "met_custody_alert"; feeds = [ "custody" ]; home_served = true;
    recipient = "yjs:home"; mode = "immediate"; legal_basis = "Crime and Disorder Act 1998 s.115"; }
);
"""


def westminster_child_in_custody():
    """A custody message at tvp (a TVP suite) for a child whose home is Westminster."""
    ev = yjtest.custody_event()
    ev["child"].update({"given_name": GIVEN, "family_name": FAMILY, "home_la": WESTMINSTER,
                        "home_postcode": "SW1A 1AA"})
    ev["offences"] = [{"code": "TH68010", "description": "Theft from a shop"}]
    ev["custody"]["reason"] = "grounds for detention"
    return ev


class PeerBase(unittest.TestCase):
    """tvp and met (and whatever else a test starts), all cleaned up in tearDown."""

    tvp_sets = {"delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "1000"}

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjpeer-")
        self.daemons = []
        self.threads = []
        self.feeds = []
        self.rx = HttpReceiver().start()

    def tearDown(self):
        try:
            for f in self.feeds:
                f.close()
            for d in self.daemons:
                d.cleanup()
        finally:
            for t in self.threads:
                t.stop()
            self.rx.stop()
            shutil.rmtree(self.dir, ignore_errors=True)

    def subdir(self, name):
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        return path

    def write(self, path, text, mode=0o644):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    def met(self, forces=(MET_FORCE, TVP_FORCE)):
        """A met daemon, not started (its ingest endpoint is tvp's peer.endpoint)."""
        d = self.subdir("met")
        self.write(os.path.join(d, "yjs.secret"), "met-yjs-secret\n", 0o600)
        conf = self.write(os.path.join(d, "met.conf"), MET_CONFIG % {
            "forces": ", ".join('"%s"' % f for f in forces), "url": self.rx.url, "secret_file": "yjs.secret"})
        daemon = yjtest.Daemon(workdir=d, config=conf)
        self.daemons.append(daemon)
        return daemon

    def tvp(self, endpoint, timeout_ms=10000, keys="", allow=None):
        d = self.subdir("tvp")
        conf = self.write(os.path.join(d, "tvp.conf"), TVP_CONFIG % {
            "endpoint": endpoint, "timeout_ms": timeout_ms, "keys": keys, "allow": allow or shipped_force_allowlist()})
        daemon = yjtest.Daemon(workdir=d, config=conf, sets=self.tvp_sets)
        self.daemons.append(daemon)
        return daemon

    # --- driving and reading a daemon ---

    def send(self, daemon, feed, ev):
        f = yjtest.Feed(daemon.ingest)
        self.feeds.append(f)
        r = f.request(feed, ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def ctl(self, daemon, cmd, args=None):
        code, body = daemon.ctl_request(cmd, args)
        self.assertEqual(code, 0, body)
        return body

    def outbox_for(self, daemon, recipient):
        return self.ctl(daemon, "outbox")["recipients"].get(recipient)

    def disclosures(self, daemon, recipient):
        return [r for r in self.ctl(daemon, "audit", {"limit": 100000})["records"]
                if r.get("action") == "disclosure" and r.get("recipient") == recipient]

    def events_from(self, daemon, source_id):
        return [e for e in self.ctl(daemon, "events", {"limit": 100000})["events"] if e["source_id"] == source_id]

    def show(self, daemon, seq):
        return self.ctl(daemon, "show", {"seq": seq, "reason": "peer test: what arrived"})["event"]

    def notification_id(self, daemon, seq, recipient=MET):
        """The id of the notification about seq for recipient, from the outbox, DLQ or audit."""
        def find():
            for r in self.disclosures(daemon, recipient):
                if seq in r.get("seqs", []):
                    return r["notification_id"]
            for d in self.ctl(daemon, "dlq", {"sub": "list"})["dead_letters"]:
                if d.get("seq") == seq and d["recipient"] == recipient:
                    return d["id"]
            return None
        return find()

    def wait_until(self, what, fn, daemons=()):
        deadline = time.monotonic() + WAIT
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                logs = "".join("\n--- %s log (tail) ---\n%s" % (d.dir, d.read_log()[-4000:]) for d in daemons)
                self.fail("%s: not after %.0f s%s" % (what, WAIT, logs))
            time.sleep(0.05)

    def webhook_notifications(self):
        """What met's webhook got, notifications only (a digest may come at its time too)."""
        return [json.loads(r["body"]) for r in self.rx.snapshot()
                if HttpReceiver.header(r, "X-Yjlink-Notification-Id")]

    def assert_no_names_in_logs(self, *daemons):
        for d in daemons:
            log = d.read_log()
            self.assertNotIn(GIVEN, log, "a child's name in %s's log" % d.dir)
            self.assertNotIn(FAMILY, log, "a child's name in %s's log" % d.dir)

    def wait_delivered(self, tvp, seq, daemons):
        """tvp's notification about seq is audited as disclosed to met and gone from the outbox."""
        rec = self.wait_until("disclosure of %d to %s audited" % (seq, MET),
                              lambda: [r for r in self.disclosures(tvp, MET) if seq in r.get("seqs", [])], daemons)
        self.wait_until("tvp's outbox empty", lambda: self.outbox_for(tvp, MET) is None, daemons)
        self.assertEqual(len(rec), 1, rec)
        return rec[0]


class PeerDeliveryTest(PeerBase):

    def test_custody_event_reaches_the_home_force_and_routes_there(self):
        met = self.met().start()
        tvp = self.tvp(met.ingest).start()
        ev = westminster_child_in_custody()
        seq = self.send(tvp, "custody", ev)

        rec = self.wait_delivered(tvp, seq, (tvp, met))
        nid = rec["notification_id"]
        self.assertTrue(nid.startswith("tvp-"), nid)
        self.assertEqual(rec["rule"], "out_of_area_force")
        self.assertEqual(rec["address"], met.ingest)

        # Stored at met as a feed message of TVP's force, under tvp's notification id.
        stored = self.wait_until("event at met", lambda: self.events_from(met, nid), (tvp, met))
        self.assertEqual(len(stored), 1, stored)
        self.assertEqual(stored[0]["force"], TVP_FORCE)
        self.assertEqual(stored[0]["feed"], "custody")
        shown = self.show(met, stored[0]["seq"])
        self.assertEqual(shown["source_id"], nid)
        self.assertEqual(shown["force"], TVP_FORCE)
        self.assertEqual(shown["child"]["person_id"], ev["child"]["person_id"])
        self.assertEqual(shown["child"]["home_la"], WESTMINSTER)
        self.assertEqual(shown["custody"]["record_id"], ev["custody"]["record_id"])
        self.assertEqual(shown["offences"][0]["code"], "TH68010")
        # Only what tvp's data sharing agreement with the Met gives: not gender, ethnicity, the grounds.
        self.assertNotIn("gender", shown["child"])
        self.assertNotIn("ethnicity", shown["child"])
        self.assertNotIn("reason", shown["custody"])

        # met routes it under its own rules: the immediate one to its webhook, the digest one to its digest.
        got = self.wait_until("met's webhook notified", lambda: [
            b for b in self.webhook_notifications() if b["event"].get("source_id") == nid], (tvp, met))
        self.assertEqual(len(got), 1, got)
        self.assertEqual(got[0]["kind"], "met_custody_alert")
        self.assertEqual(got[0]["recipient"], "yjs:westminster")
        self.assertEqual(got[0]["event"]["force"], TVP_FORCE)
        self.assertTrue(got[0]["notification_id"].startswith("met-"), got[0])
        pending = self.ctl(met, "digest", {"sub": "pending", "arg": "yjs:westminster"})["entries"]
        self.assertIn(("custody_digest", stored[0]["seq"]), [(e["rule"], e["seq"]) for e in pending])
        # ... and does not send it back: the child's home is met's own area.
        self.assertEqual(self.ctl(met, "outbox")["recipients"], {})
        self.assert_no_names_in_logs(tvp, met)


class PeerDownTest(PeerBase):

    def test_retries_while_the_peer_is_down_and_delivers_once_it_is_back(self):
        met = self.met().start()
        tvp = self.tvp(met.ingest).start()
        # One delivery first, so that tvp's DEALER is connected when met goes.
        first = self.send(tvp, "custody", westminster_child_in_custody())
        self.wait_delivered(tvp, first, (tvp, met))
        met.stop()

        seq = self.send(tvp, "custody", westminster_child_in_custody())
        waiting = self.wait_until("tvp retrying", lambda: (lambda o: o if o and o["attempts"] > 0 else None)(
            self.outbox_for(tvp, MET)), (tvp,))
        self.assertTrue(waiting["last_error"], waiting)
        # Still retrying a while later (not dead-lettered, nothing lost).
        self.wait_until("tvp retrying again", lambda: (lambda o: o if o and o["attempts"] > 2 else None)(
            self.outbox_for(tvp, MET)), (tvp,))
        self.assertEqual(self.ctl(tvp, "dlq", {"sub": "list"})["dead_letters"], [])

        met.start()
        rec = self.wait_delivered(tvp, seq, (tvp, met))
        nid = rec["notification_id"]
        stored = self.wait_until("event at met", lambda: self.events_from(met, nid), (tvp, met))
        self.assertEqual(len(stored), 1, stored)
        # Every event at met came once: the first, and this one.
        events = self.ctl(met, "events", {"limit": 100000})["events"]
        self.assertEqual(sorted(e["source_id"] for e in events),
                         sorted([nid, self.notification_id(tvp, first)]), events)
        self.assert_no_names_in_logs(tvp, met)


class LossyProxy:
    """Between tvp and met: forwards YJL1 requests and replies, and drops the
    first reply (a reply lost on the way)."""

    def __init__(self, backend):
        self.ctx = zmq.Context()
        self.endpoint = "tcp://127.0.0.1:%d" % yjtest.free_port()
        self.backend = backend
        self.requests = []      # source_id of each request forwarded
        self.replies = []       # (status, source_id, forwarded?) of each reply from met
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        self._ready.wait(10)
        return self

    def _run(self):
        front = self.ctx.socket(zmq.ROUTER)
        back = self.ctx.socket(zmq.DEALER)
        for s in (front, back):
            s.setsockopt(zmq.LINGER, 0)
        front.bind(self.endpoint)
        back.connect(self.backend)
        self._ready.set()
        route = {}
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        poller.register(back, zmq.POLLIN)
        dropped = False
        while not self._stop.is_set():
            for s, _ in poller.poll(100):
                if s is front:
                    frames = front.recv_multipart()
                    sid = json.loads(frames[4]).get("source_id", "")
                    route[sid] = frames[0]
                    with self.lock:
                        self.requests.append(sid)
                    back.send_multipart(frames[1:])
                else:
                    frames = back.recv_multipart()
                    sid = frames[2].decode()
                    forward = dropped
                    dropped = True
                    with self.lock:
                        self.replies.append((frames[1].decode(), sid, forward))
                    if forward and sid in route:
                        front.send_multipart([route[sid]] + frames)
        front.close()
        back.close()
        self.ctx.term()

    def snapshot(self):
        with self.lock:
            return list(self.requests), list(self.replies)

    def stop(self):
        self._stop.set()
        self.thread.join(10)


class LostReplyTest(PeerBase):

    def test_a_retry_after_a_lost_reply_is_a_dup_at_the_peer(self):
        met = self.met().start()
        proxy = LossyProxy(met.ingest).start()
        self.threads.append(proxy)
        tvp = self.tvp(proxy.endpoint, timeout_ms=1500).start()
        seq = self.send(tvp, "custody", westminster_child_in_custody())

        rec = self.wait_delivered(tvp, seq, (tvp, met))
        nid = rec["notification_id"]
        requests, replies = proxy.snapshot()
        self.assertGreaterEqual(requests.count(nid), 2, requests)
        self.assertEqual(replies[0][:2], ("OK", nid), replies)      # stored, but tvp never heard
        self.assertFalse(replies[0][2])
        self.assertIn(("DUP", nid, True), replies)                   # the resend: already there
        # One event at met, whatever the number of requests.
        self.assertEqual(len(self.events_from(met, nid)), 1)
        self.assertEqual(len(self.ctl(met, "events", {"limit": 1000})["events"]), 1)
        # The timeout said why it went again.
        self.assertIn("no reply from the peer within 1500 ms", tvp.read_log())


class PeerRejectTest(PeerBase):

    def test_reject_goes_to_the_dead_letter_queue_with_the_peers_detail(self):
        met = self.met(forces=(MET_FORCE,)).start()     # does not take messages for TVP's force
        tvp = self.tvp(met.ingest).start()
        seq = self.send(tvp, "custody", westminster_child_in_custody())

        dead = self.wait_until("dead letter at tvp", lambda: [
            d for d in self.ctl(tvp, "dlq", {"sub": "list"})["dead_letters"] if d.get("seq") == seq], (tvp, met))
        self.assertEqual(len(dead), 1, dead)
        self.assertEqual(dead[0]["recipient"], MET)
        detail = json.loads(dead[0]["last_error"])
        self.assertEqual(detail["error"], "forbidden", detail)
        self.assertEqual(detail["field"], "force", detail)
        self.assertEqual(dead[0]["attempts"], 1, dead)          # a REJECT is not retried
        self.assertIsNone(self.outbox_for(tvp, MET))
        self.assertEqual(self.disclosures(tvp, MET), [])
        # met stored nothing and kept the message in its quarantine.
        self.assertEqual(self.ctl(met, "events")["events"], [])
        quarantined = self.ctl(met, "quarantine", {"sub": "list"})
        self.assertIn(dead[0]["id"], json.dumps(quarantined))
        self.assert_no_names_in_logs(tvp, met)


class ScriptedPeer:
    """A YJL1 endpoint with CURVE and a ZAP handler: records what it is sent
    and the client keys it sees, and answers from a script."""

    def __init__(self, answers):
        self.ctx = zmq.Context()
        self.public, self.secret = zmq.curve_keypair()
        self.endpoint = "tcp://127.0.0.1:%d" % yjtest.free_port()
        self.answers = list(answers)   # (status, detail) per request, the last one repeated
        self.requests = []             # the frames of each request, without the routing id
        self.client_keys = []          # (mechanism, Z85 public key) of each ZAP request
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        self._ready.wait(10)
        return self

    def _run(self):
        zap = self.ctx.socket(zmq.REP)
        zap.setsockopt(zmq.LINGER, 0)
        zap.bind("inproc://zeromq.zap.01")      # before the CURVE socket binds
        r = self.ctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.LINGER, 0)
        r.curve_server = True
        r.curve_secretkey = self.secret
        r.curve_publickey = self.public
        r.bind(self.endpoint)
        self._ready.set()
        poller = zmq.Poller()
        poller.register(zap, zmq.POLLIN)
        poller.register(r, zmq.POLLIN)
        while not self._stop.is_set():
            for s, _ in poller.poll(100):
                if s is zap:
                    version, request_id, _domain, _address, _identity, mechanism, *creds = zap.recv_multipart()
                    with self.lock:
                        self.client_keys.append((mechanism.decode(),
                                                 zmq.utils.z85.encode(creds[0]).decode() if creds else ""))
                    zap.send_multipart([version, request_id, b"200", b"OK", b"tvp", b""])
                else:
                    frames = r.recv_multipart()
                    with self.lock:
                        self.requests.append(frames[1:])
                        status, detail = self.answers[min(len(self.requests), len(self.answers)) - 1]
                    sid = json.loads(frames[4]).get("source_id", "").encode()
                    r.send_multipart([frames[0], b"YJL1", status.encode(), sid, detail.encode()])
        r.close()
        zap.close()
        self.ctx.term()

    def snapshot(self):
        with self.lock:
            return list(self.requests), list(self.client_keys)

    def stop(self):
        self._stop.set()
        self.thread.join(10)


class CurvePeerTest(PeerBase):

    def test_curve_client_frames_and_retry(self):
        peer = ScriptedPeer([("RETRY", "store busy"), ("OK", "77")]).start()
        self.threads.append(peer)
        public, secret = zmq.curve_keypair()
        d = self.subdir("tvp")
        self.write(os.path.join(d, "tvp-peer.key"), secret.decode() + "\n", 0o600)
        tvp = self.tvp(peer.endpoint, keys=' server_key = "%s"; key_file = "tvp-peer.key";' % peer.public.decode())
        tvp.start()
        ev = westminster_child_in_custody()
        seq = self.send(tvp, "custody", ev)

        rec = self.wait_delivered(tvp, seq, (tvp,))
        nid = rec["notification_id"]
        requests, keys = peer.snapshot()
        # CURVE, with the public key of the secret in key_file.
        self.assertTrue(keys, "no ZAP request: not CURVE")
        self.assertEqual({k for k in keys}, {("CURVE", public.decode())})
        # Sent again after the RETRY, byte for byte the same request.
        self.assertEqual(len(requests), 2, requests)
        self.assertEqual(requests[0], requests[1])
        frames = requests[0]
        self.assertEqual(frames[:3], [b"YJL1", b"custody", b"application/json"])
        body = json.loads(frames[3])
        self.assertEqual(body["source_id"], nid)
        self.assertEqual(body["force"], TVP_FORCE)
        for ours in ("seq", "feed", "stored_at"):
            self.assertNotIn(ours, body)
        self.assertEqual(body["child"]["date_of_birth"], ev["child"]["date_of_birth"])
        self.assertEqual(body["custody"]["status"], "detained")
        self.assertNotIn("gender", body["child"])
        self.assertIn("RETRY store busy", tvp.read_log())
        self.assert_no_names_in_logs(tvp)


# --- --check ------------------------------------------------------------------

CHECK_CONFIG = """deployment = { id = "tvp"; name = "check"; force = "E23000029"; };
recipients = (
  { id = "force:E23000001"; kind = "force"; name = "Metropolitan Police"; force = "E23000001";
    transport = "peer";
    peer = { %(peer)s };
    allow = %(allow)s; }
);
rules = (
  { id = "out_of_area_force"; feeds = [ "custody", "arrest", "outcome" ]; home_other_force = true;
    recipient = "force:home"; mode = "immediate"; legal_basis = "Crime and Disorder Act 1998 s.115"; }
);
"""
RECIPIENT_LINE = 3


class PeerCheckTest(unittest.TestCase):

    def check(self, peer='endpoint = "tcp://127.0.0.1:7401";', allow=None, files=()):
        text = CHECK_CONFIG % {"peer": peer, "allow": allow or shipped_force_allowlist()}
        with tempfile.TemporaryDirectory(prefix="yjcheck-") as d:
            for name, content in files:
                fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(content + "\n")
            path = os.path.join(d, "y.conf")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([yjtest.YJLINKD, "--config", path, "--check"], capture_output=True, text=True,
                               timeout=60)
        return p.returncode, (p.stderr + p.stdout).replace(path, "F")

    def assert_refused(self, code, out, *phrases):
        self.assertEqual(code, 1, out)
        hits = [l for l in out.splitlines()
                if l.startswith("F:%d: " % RECIPIENT_LINE) and all(ph in l for ph in phrases)]
        self.assertTrue(hits, "want 'F:%d: ...%s...' in:\n%s" % (RECIPIENT_LINE, phrases, out))

    def test_shipped_force_agreement_is_enough_for_a_peer(self):
        code, out = self.check()
        self.assertEqual(code, 0, out)

    def test_allowlist_without_date_of_birth(self):
        allow = shipped_force_allowlist().replace('"child.date_of_birth", ', "")
        self.assertNotIn("date_of_birth", allow)
        code, out = self.check(allow=allow)
        self.assert_refused(code, out, "force:E23000001", "child.date_of_birth")

    def test_allowlist_without_a_feed_objects_required_field(self):
        allow = shipped_force_allowlist().replace('"custody.status", ', "").replace('"outcome.*"', '"outcome.case_ref"')
        code, out = self.check(allow=allow)
        self.assert_refused(code, out, "custody.status", "outcome.code", "outcome.decided_at")

    def test_whole_subtrees_count(self):
        code, out = self.check(allow='[ "occurred_at", "child.*", "custody.*", "arrest.*", "outcome.*" ]')
        self.assertEqual(code, 0, out)

    def test_endpoint_must_be_tcp_or_ipc(self):
        code, out = self.check(peer='endpoint = "http://127.0.0.1:7401";')
        self.assert_refused(code, out, "peer.endpoint", "tcp://")
        code, out = self.check(peer="")
        self.assertEqual(code, 1, out)
        self.assertIn("peer.endpoint", out)

    def test_keys_go_together_and_plain_stays_local(self):
        public, secret = zmq.curve_keypair()
        code, out = self.check(peer='endpoint = "tcp://127.0.0.1:7401"; server_key = "%s";' % public.decode())
        self.assert_refused(code, out, "peer.server_key", "peer.key_file")
        code, out = self.check(peer='endpoint = "tcp://127.0.0.1:7401"; key_file = "k.key";',
                               files=[("k.key", secret.decode())])
        self.assert_refused(code, out, "peer.server_key", "peer.key_file")
        code, out = self.check(peer='endpoint = "tcp://yjlink.met.example:7401";')
        self.assert_refused(code, out, "not loopback", "CURVE")
        code, out = self.check(peer='endpoint = "tcp://yjlink.met.example:7401"; server_key = "%s"; '
                                    'key_file = "k.key";' % public.decode(), files=[("k.key", secret.decode())])
        self.assertEqual(code, 0, out)
        code, out = self.check(peer='endpoint = "tcp://yjlink.met.example:7401"; server_key = "short"; '
                                    'key_file = "k.key";', files=[("k.key", "not a key")])
        self.assert_refused(code, out, "peer.server_key", "Z85")
        self.assert_refused(code, out, "peer.key_file", "Z85")


if __name__ == "__main__":
    unittest.main(verbosity=2)
