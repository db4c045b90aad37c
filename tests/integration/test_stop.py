"""A stop with a full outbox and transfers under way (issue 14 item 4;
quality.md "stop": within 2 s of SIGTERM, also with the outbox full and SMTP
transfers under way).

Against the real daemon, real receivers in this process (smtp_receiver.py,
http_receiver.py) and a YJL1 DEALER. The config routes every custody
`charged_remanded` event of a Milton Keynes child twice: an email to the
YJS (remand_alert) and a webhook to its children's services
(pace_transfer). YJ_STOP_EVENTS such events (default 10,000: 20,000
notifications) are stored while the relay never answers the end of DATA
(every email worker stuck there, the rest of the emails waiting) and the
webhook receiver takes half a second per request (32 POSTs under way, a
few hundred done), then:

- SIGTERM. The daemon exits by itself with status 0; its log says it
  stopped cleanly, that deliveries under way were left in the outbox, and
  neither that its last-resort cleanup bound fired nor that an email worker
  was left behind; it names no child (names, date of birth).
- A restart with both receivers healthy delivers everything: every event's
  email and webhook arrive; the daemon records each of the 20,000
  notification ids as delivered exactly once over the two runs (its log's
  "delivered" lines); nothing it recorded delivered before the stop is
  sent again; a notification id that reaches a receiver in both runs is
  one the stop cut off under way (at most a window of 32 per recipient),
  and each email stuck at the end of DATA at the stop arrives with the
  Message-ID it had then.

DeafClientStopTest: a YJL1 client that pipelines and never reads a reply
is closed by the ingest guard, the daemon keeps serving, and a SIGTERM
still ends it with status 0.

Both transports' timeouts are the longest a config may set (600 s), far
past any wait of the test: the receivers run in this process, and on a busy
machine it can be starved for seconds, which with the default webhook
timeout of 5 s had a POST given up and sent again before the stop (a retry
the daemon is right to make, not the case under test). Every transfer of
the first run is thus either answered or still under way at the stop.

No timing is asserted (a shared test machine): every wait polls for its
condition up to YJ_TEST_WAIT_S (default 120 s), and the daemon is killed
only if it has not exited 60 s after SIGTERM. How long the stop took is
printed; bench/bench_stop.py measures it against the bar.

Run with /usr/bin/python3 (Debian's python3-zmq and python3-aiosmtpd).
"""
import email
import email.policy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "120"))
N_EVENTS = int(os.environ.get("YJ_STOP_EVENTS", "10000"))
WINDOW = 32             # deliveries under way per recipient at most (outbox.c S_WINDOW)
SLOW_S = 0.5            # the webhook receiver's time per request before the stop

CONFIG = """
deployment = { id = "st"; name = "Stop test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; timeout_ms = 600000; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    transport = "email"; email = [ "yjs@mk.example" ]; allow = [ "source_id", "occurred_at", "custody.*" ]; },
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services";
    local_authority = "E06000042"; transport = "webhook"; webhook = { url = "%(url)s"; secret = "s3"; timeout_ms = 600000; };
    allow = [ "source_id", "occurred_at", "custody.*" ]; }
);
rules = (
  { id = "remand_alert"; feeds = [ "custody" ]; custody_status = [ "charged_remanded" ];
    recipient = "yjs:home"; mode = "immediate"; },
  { id = "pace_transfer"; feeds = [ "custody" ]; custody_status = [ "charged_remanded" ];
    recipient = "children_services:home"; mode = "immediate"; }
);
"""

_DELIVERED = re.compile(r"outbox: (st-\d+) delivered to (\S+) by")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def remand_event(i):
    """A Milton Keynes child charged and remanded; a name and birth date of its own, to look for in the log."""
    ev = yjtest.custody_event()
    ev["source_id"] = "stop-%06d" % i
    ev["child"]["given_name"] = "Stopgiven%d" % i
    ev["child"]["family_name"] = "Stopfamily%d" % i
    ev["custody"]["status"] = "charged_remanded"
    return ev


def source_id_of(obj):
    """The source_id anywhere in a notification's JSON, or None."""
    if isinstance(obj, dict):
        if isinstance(obj.get("source_id"), str):
            return obj["source_id"]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            found = source_id_of(v)
            if found:
                return found
    return None


class StopTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjstop-")
        self.smtp = SmtpReceiver(mode="hang").start()
        self.http = HttpReceiver(mode="slow", delay=SLOW_S).start()
        self.conf = os.path.join(self.dir, "stop.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port, "url": self.http.url})
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf)

    def tearDown(self):
        self.daemon.kill()
        self.smtp.stop()
        self.http.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def fail_with_log(self, msg):
        self.fail("%s\n--- yjlinkd log (tail):\n%s" % (msg, self.daemon.read_log()[-6000:]))

    def wait_until(self, what, cond, progress=None):
        """Poll cond until true. With progress (a function whose value grows
        as the work gets done), WAIT bounds the time without any progress,
        not the whole: a busy machine may take longer, a stuck daemon fails."""
        deadline = time.monotonic() + WAIT
        last = progress() if progress else None
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.05)
            if progress:
                now = progress()
                if now != last:
                    last, deadline = now, time.monotonic() + WAIT
        self.fail_with_log("not within %.0f s%s: %s" % (WAIT, " of the last progress (%s)" % last if progress else "",
                                                         what))

    def metrics(self):
        url = "http://%s/metrics" % self.daemon.sets["metrics.endpoint"]
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        return {l.split()[0]: float(l.split()[1]) for l in text.splitlines() if l and not l.startswith("#")}

    def feed_all(self):
        """Every event over one pipelining DEALER; each must be answered OK."""
        feed = yjtest.Feed(self.daemon.ingest)
        sent = got = 0
        try:
            while got < N_EVENTS:
                while sent < N_EVENTS and sent - got < 2000:
                    feed.send("custody", remand_event(sent))
                    sent += 1
                try:
                    r = feed.recv(timeout_ms=int(WAIT * 1000))
                except TimeoutError:
                    self.fail_with_log("%d of %d requests answered" % (got, N_EVENTS))
                self.assertEqual(r[1], b"OK", r)
                got += 1
        finally:
            feed.close()

    def delivered_in_log(self, text):
        """{notification id: recipient} of every "delivered" line, and the ids seen twice."""
        seen, twice = {}, set()
        for nid, rcpt in _DELIVERED.findall(text):
            if nid in seen:
                twice.add(nid)
            seen[nid] = rcpt
        return seen, twice

    def webhook_ids(self, entries):
        """[(notification id, source_id)] of webhook requests."""
        out = []
        for e in entries:
            body = json.loads(e["body"])
            out.append((body.get("notification_id"), source_id_of(body)))
        return out

    @staticmethod
    def email_ids(items):
        """[(notification id, Message-ID, source_id)] of SMTP transactions."""
        out = []
        for m in items:
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            text = msg.get_body(preferencelist=("plain",)).get_content()
            src = re.search(r"source_id: (\S+)", text)
            out.append((str(msg["X-Yjlink-Notification-Id"]), str(msg["Message-ID"]), src.group(1) if src else None))
        return out

    def test_stop_with_full_outbox_and_transfers_under_way(self):
        d = self.daemon
        d.start()
        self.feed_all()
        # Transfers surely under way: emails stuck at the end of DATA, POSTs
        # being read slowly; and some webhooks already delivered.
        self.wait_until("an email stuck at the end of DATA", lambda: self.smtp.waiting > 0)
        self.wait_until("webhooks delivered and others under way",
                        lambda: _DELIVERED.search(d.read_log()) and self.http.in_flight > 0)
        # /metrics is rendered once a second.
        self.wait_until("the outbox full", lambda: self.metrics().get("yjlink_outbox_depth", 0) > N_EVENTS)
        depth = self.metrics().get("yjlink_outbox_depth", 0)
        stuck_smtp, in_flight_http = self.smtp.waiting, self.http.in_flight

        t = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        try:
            code = d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.fail_with_log("yjlinkd still running 60 s after SIGTERM")
        took = time.monotonic() - t
        d.log.close()
        log("stop with %d notifications in the outbox, %d emails stuck at the end of DATA, %d POSTs under way: "
            "exited %d after %.2f s" % (depth, stuck_smtp, in_flight_http, code, took))
        first_log = d.read_log()
        self.assertEqual(code, 0, first_log[-4000:])
        self.assertIn("signal 15: stopping", first_log)
        self.assertIn("stopped cleanly", first_log)
        left = re.search(r"outbox: stop: (\d+) deliveries under way left in the outbox", first_log)
        self.assertTrue(left, first_log[-4000:])
        self.assertGreater(int(left.group(1)), 0)
        self.assertLessEqual(int(left.group(1)), 2 * WINDOW)
        self.assertNotIn("cleanup took over", first_log)
        self.assertNotIn("still in curl at stop", first_log)
        for i in (0, N_EVENTS // 2, N_EVENTS - 1):
            ev = remand_event(i)
            for secret in (ev["child"]["given_name"], ev["child"]["family_name"], ev["child"]["date_of_birth"]):
                self.assertNotIn(secret, first_log)
        self.assertGreater(depth, N_EVENTS)

        # What the receivers had of the first run, and what the daemon recorded.
        delivered1, twice1 = self.delivered_in_log(first_log)
        self.assertEqual(twice1, set())
        http1 = self.webhook_ids(self.http.snapshot())
        smtp1 = self.email_ids(list(self.smtp.waited)) + self.email_ids(list(self.smtp.messages))
        retried = re.findall(r"outbox: \S+ to \S+ will be retried \(.*", first_log)
        self.assertEqual(len(http1), len({n for n, _ in http1}),
                         "a webhook sent twice before the stop; the daemon's retries: %s" % retried[:5])
        self.assertEqual(retried, [], "a delivery failed before the stop")
        self.assertTrue({n for n in delivered1} <= {n for n, _ in http1},
                        "recorded delivered but never reached a receiver")
        self.assertGreater(len(delivered1), 0)
        stuck_mid = {n: mid for n, mid, _ in smtp1}

        # Healthy receivers, a restart: everything arrives.
        self.smtp.mode = "250"
        self.http.mode = 200
        n_http1, n_smtp1 = len(http1), len(self.smtp.messages)
        follow = yjtest.LogFollower(d.log_path, offset=os.path.getsize(d.log_path))
        d.start()
        n_delivered2 = 0

        def all_delivered():
            nonlocal n_delivered2
            n_delivered2 += sum(1 for line in follow.lines() if _DELIVERED.search(line))
            return n_delivered2 + len(delivered1) >= 2 * N_EVENTS
        self.wait_until("every notification delivered after the restart", all_delivered,
                        progress=lambda: "%d delivered after the restart" % n_delivered2)
        self.wait_until("the outbox empty", lambda: self.metrics().get("yjlink_outbox_depth", -1) == 0)
        m = self.metrics()
        self.assertEqual(m.get("yjlink_dead_letters"), 0)
        second_log = d.read_log()[len(first_log):]
        d.stop()

        # The daemon's record: each of the 2N ids delivered once over both runs.
        delivered2, twice2 = self.delivered_in_log(second_log)
        self.assertEqual(twice2, set())
        self.assertEqual(set(delivered1) & set(delivered2), set(), "recorded delivered twice")
        self.assertEqual(len(delivered1) + len(delivered2), 2 * N_EVENTS)
        by_rcpt = {}
        for nid, rcpt in list(delivered1.items()) + list(delivered2.items()):
            by_rcpt.setdefault(rcpt, set()).add(nid)
        self.assertEqual({r: len(v) for r, v in by_rcpt.items()},
                         {"yjs:mk": N_EVENTS, "children_services:E06000042": N_EVENTS})

        # The receivers' record: every event's webhook and email; nothing
        # recorded delivered before the stop came again; what came in both
        # runs was under way at the stop, with the same id.
        http2 = self.webhook_ids(self.http.snapshot()[n_http1:])
        ids2 = [n for n, _ in http2]
        self.assertEqual(len(ids2), len(set(ids2)), "a webhook sent twice after the restart")
        self.assertEqual(set(ids2) & set(delivered1), set(), "a webhook delivered before the stop went again")
        again = set(ids2) & {n for n, _ in http1}
        self.assertLessEqual(len(again), WINDOW)
        sources = [s for n, s in http1 if n in delivered1] + [s for _, s in http2]
        self.assertEqual(len(sources), N_EVENTS)
        self.assertEqual(set(sources), {"stop-%06d" % i for i in range(N_EVENTS)})

        mails = self.email_ids(list(self.smtp.messages)[n_smtp1:])
        self.assertEqual(len(mails), N_EVENTS)
        self.assertEqual(len({n for n, _, _ in mails}), N_EVENTS, "an email sent twice after the restart")
        self.assertEqual({s for _, _, s in mails}, {"stop-%06d" % i for i in range(N_EVENTS)})
        self.assertGreater(len(stuck_mid), 0)
        self.assertLessEqual(len(stuck_mid), WINDOW)
        got_mid = {n: mid for n, mid, _ in mails}
        for nid, mid in stuck_mid.items():
            self.assertEqual(got_mid.get(nid), mid, nid)
        log("after the restart: %d emails (%d of them stuck at the stop), %d webhooks (%d of them under way at "
            "the stop); %d notifications recorded delivered before the stop, %d after"
            % (len(mails), len(stuck_mid), len(http2), len(again), len(delivered1), len(delivered2)))


class DeafClientStopTest(unittest.TestCase):
    """A YJL1 client that pipelines and never reads a reply: the ingest
    guard closes it ("not reading their replies"), the daemon goes on
    serving, and SIGTERM still ends it with status 0. (Closing such a
    connection once wrote past zguard's per-reason arrays and glibc
    aborted the daemon a few seconds later.)"""

    def setUp(self):
        self.daemon = yjtest.Daemon().start()

    def tearDown(self):
        self.daemon.cleanup()

    def test_deaf_client_then_stop(self):
        import zmq
        d = self.daemon
        s = zmq.Context.instance().socket(zmq.DEALER)
        # Tiny buffers on our side, so the replies back up at the daemon.
        s.setsockopt(zmq.RCVHWM, 1)
        s.setsockopt(zmq.RCVBUF, 4096)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(d.ingest)
        try:
            deadline = time.monotonic() + WAIT
            i = 0
            while "not reading their replies" not in d.read_log():
                if time.monotonic() > deadline:
                    self.fail("the deaf client was never closed:\n" + d.read_log()[-4000:])
                for _ in range(1000):
                    s.send_multipart([b"YJL1", b"custody", b"application/json",
                                      json.dumps(remand_event(i)).encode()], zmq.DONTWAIT)
                    i += 1
                self.assertIsNone(d.proc.poll(), d.read_log()[-4000:])
            # Still serving: a fresh client gets its OK.
            f = yjtest.Feed(d.ingest)
            try:
                self.assertEqual(f.request("custody", remand_event(10 ** 6))[1], b"OK")
            finally:
                f.close()
        except zmq.Again:
            self.fail("our own send queue filled before the daemon closed us")
        finally:
            s.close()
        self.assertIsNone(d.proc.poll(), d.read_log()[-4000:])
        code = d.stop()
        self.assertEqual(code, 0, d.read_log()[-4000:])
        self.assertIn("stopped cleanly", d.read_log())


if __name__ == "__main__":
    unittest.main()
