"""CURVE and the ZAP handler on YJL1 and YJN1 (interfaces.md §1
"Authentication and authorisation (CURVE)", §3 "Durable subscription", §6
`keygen`; quality.md "Security").

The real daemon with python3-zmq CURVE clients, and keys made by the real
`yjlinkctl keygen`. No test asserts a timing: every wait polls for its
condition with a generous deadline (YJ_TEST_WAIT_S, default 60 s), and "no
reply" is watched for a bounded time (YJ_TEST_QUIET_S, default 3 s) only
after the daemon's log has shown the refusal that forbids one.

- CurveTest (one daemon, CURVE on ingest and notify):
  an unlisted key never gets a reply while listed clients are served; a
  client's key is bound to its forces (REJECT forbidden, field force); the
  stored sender of an event is the client's name; a subscriber key gets
  ERROR for another subscriber's recipient and its own NOTEs; a reload with
  a new client key lets it in without dropping the connections made before.
- StartTest: a key file group or others can read stops the start, naming
  the file and chmod 600; a non-loopback endpoint without CURVE refuses to
  start with FILE:LINE of the endpoint unless insecure = true (ingest and
  notify); with CURVE it may be bound.
- KeygenTest: `yjlinkctl keygen` writes a 0600 .key and a .pub, prints the
  public key, and never overwrites a key.
- PublisherCurveTest: a publisher with server_key is subscribed to as a
  CURVE client with ingest.curve's key pair (the publisher's own ZAP
  handler lets in only that public key); without ingest.curve such a
  publisher stops the start.
- PeerCurveTest: two real daemons, tvp's peer transport a CURVE client of
  met's CURVE ingest, where tvp's key is a client bound to TVP's force: the
  event arrives with sender tvp-peer; bound to another force, met answers
  REJECT forbidden and tvp dead-letters it.

Run with /usr/bin/python3 (Debian's python3-zmq).
"""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.request

import zmq
import zmq.auth.thread
import zmq.utils.monitor

import yjtest
from test_peer import MET as MET_PEER, MET_CONFIG, PeerBase, westminster_child_in_custody

WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "60"))
QUIET = float(os.environ.get("YJ_TEST_QUIET_S", "3"))

MK = "children_services:E06000042"
OX = "children_services:E10000025"
TVP = "E23000029"
MET = "E23000001"

ALLOW = ('[ "occurred_at", "force", "child.person_id", "child.looked_after", "child.responsible_la", '
         '"custody.record_id", "custody.suite", "custody.status", "custody.status_at" ]')

ROUTING = """
recipients = (
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services";
    local_authority = "E06000042"; transport = "zmq"; allow = %(allow)s; },
  { id = "children_services:E10000025"; kind = "children_services"; name = "Oxfordshire Children's Services";
    local_authority = "E10000025"; transport = "zmq"; allow = %(allow)s; }
);
rules = (
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate";
    legal_basis = "Children Act 1989 s.22; Crime and Disorder Act 1998 s.115"; }
);
"""


def wait_for(fn, what, timeout=WAIT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def keygen(path):
    """A key pair by the real yjlinkctl keygen: (public, secret) as Z85 bytes."""
    p = subprocess.run([yjtest.YJLINKCTL, "keygen", path], capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("keygen %s: exit %d: %s" % (path, p.returncode, p.stderr))
    with open(path + ".key", "rb") as f:
        secret = f.read().strip()
    with open(path + ".pub", "rb") as f:
        public = f.read().strip()
    return public, secret


def lac_event(recipient, **over):
    ev = yjtest.custody_event(**over)
    ev["child"]["looked_after"] = True
    ev["child"]["responsible_la"] = recipient.split(":", 1)[1]
    return ev


class CurveBase(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjcurve-")
        os.makedirs(os.path.join(self.dir, "keys"))
        self.daemon = None
        self.socks = []
        self.monitors = []

    def tearDown(self):
        # A monitor is stopped before its reader closes: libzmq sends monitor
        # events with a blocking send, so an event for a socket whose reader
        # is gone (the daemon's SIGKILL below disconnects it while its close
        # is still in progress) blocks this process's I/O thread, and every
        # later test then sees no control answer.
        for sock, mon in self.monitors:
            sock.disable_monitor()
            mon.close(linger=0)
        for s in self.socks:
            s.close(linger=0)
        if self.daemon:
            self.daemon.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def write_config(self, text, name="yjlinkd.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_daemon(self, config, *extra, timeout=60):
        """yjlinkd run to its end (a start that must fail, or --check)."""
        d = yjtest.Daemon(workdir=self.dir, config=config)
        p = subprocess.run(d.argv() + list(extra), capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def curve_dealer(self, endpoint, server_pub, pair=None):
        """A DEALER with CURVE: pair = (public, secret), a fresh unlisted one by default."""
        public, secret = pair or zmq.curve_keypair()
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.curve_secretkey = secret
        s.curve_publickey = public
        s.curve_serverkey = server_pub
        s.connect(endpoint)
        self.socks.append(s)
        return s

    @staticmethod
    def request(sock, ev, timeout_ms=None):
        sock.send_multipart([b"YJL1", b"custody", b"application/json", json.dumps(ev).encode()])
        if not sock.poll(int(WAIT * 1000) if timeout_ms is None else timeout_ms):
            return None
        return sock.recv_multipart()

    @staticmethod
    def yjn1_recv(sock):
        if not sock.poll(int(WAIT * 1000)):
            raise AssertionError("no YJN1 message")
        return sock.recv_multipart()


class CurveTest(CurveBase):
    """CURVE on both endpoints; keys from yjlinkctl keygen."""

    CONFIG = """
deployment = { id = "cv"; name = "CURVE test"; force = "E23000029"; };
ingest = {
  curve = { secret_key_file = "keys/yjlinkd.key"; };
  clients = (
    { name = "feed-a"; public_key = "%(a)s"; forces = [ "E23000029" ]; },
    { name = "feed-b"; public_key = "%(b)s"; forces = [ "E23000001" ]; }%(more)s
  );
};
notify = {
  curve = { secret_key_file = "keys/yjlinkd.key"; };
  subscribers = (
    { name = "sub-x"; public_key = "%(x)s"; recipients = [ "children_services:E06000042" ]; },
    { name = "sub-y"; public_key = "%(y)s"; recipients = [ "children_services:E10000025" ]; }
  );
};
""" + ROUTING

    def setUp(self):
        super().setUp()
        k = lambda n: keygen(os.path.join(self.dir, "keys", n))  # noqa: E731
        self.server = k("yjlinkd")
        self.a, self.b, self.c, self.x, self.y = k("feed-a"), k("feed-b"), k("feed-c"), k("sub-x"), k("sub-y")
        self.config = self.write_config(self.render(""))
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.config,
                                    sets={"delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "500"}).start()

    def render(self, more):
        return self.CONFIG % {"a": self.a[0].decode(), "b": self.b[0].decode(), "x": self.x[0].decode(),
                              "y": self.y[0].decode(), "more": more, "allow": ALLOW}

    def feed(self, pair=None):
        return self.curve_dealer(self.daemon.ingest, self.server[0], pair)

    def subscriber(self, pair):
        return self.curve_dealer(self.daemon.notify, self.server[0], pair)

    def test_unlisted_key_gets_no_reply(self):
        stranger = self.feed()
        stranger.send_multipart([b"YJL1", b"custody", b"application/json",
                                 json.dumps(yjtest.custody_event()).encode()])
        wait_for(lambda: re.search(r"zap: yjl1 key \S+ from \S+ refused", self.daemon.read_log()),
                 "the ZAP handler to refuse the unlisted key")
        # A listed client is served all along ...
        r = self.request(self.feed(self.a), yjtest.custody_event())
        self.assertEqual(r[1], b"OK", r)
        # ... and the stranger never gets a reply: refused at the handshake.
        self.assertFalse(stranger.poll(int(QUIET * 1000)), "an unlisted key got a reply")
        # No key at all (plain NULL mechanism) gets nothing either.
        plain = zmq.Context.instance().socket(zmq.DEALER)
        plain.setsockopt(zmq.LINGER, 0)
        plain.connect(self.daemon.ingest)
        self.socks.append(plain)
        self.assertIsNone(self.request(plain, yjtest.custody_event(), timeout_ms=int(QUIET * 1000)))
        r = self.request(self.feed(self.b), yjtest.custody_event(force=MET))
        self.assertEqual(r[1], b"OK", r)
        # The refusals are counted for the metrics (published once a second).
        url = "http://%s/metrics" % self.daemon.sets["metrics.endpoint"]

        def refused():
            with urllib.request.urlopen(url, timeout=10) as resp:
                m = re.search(r'^yjlink_zap_refused_total\{domain="yjl1"\} (\d+)', resp.read().decode(), re.M)
            return m and int(m.group(1)) >= 1
        wait_for(refused, "yjlink_zap_refused_total{domain=\"yjl1\"} to count the refusal")

    def test_client_bound_to_its_forces(self):
        fa, fb = self.feed(self.a), self.feed(self.b)
        ok = self.request(fa, yjtest.custody_event(force=TVP))
        self.assertEqual(ok[1], b"OK", ok)
        bad = self.request(fa, yjtest.custody_event(force=MET))
        self.assertEqual(bad[1], b"REJECT", bad)
        detail = json.loads(bad[3])
        self.assertEqual((detail["error"], detail["field"]), ("forbidden", "force"), detail)
        bad = self.request(fb, yjtest.custody_event(force=TVP))
        self.assertEqual(bad[1], b"REJECT", bad)
        self.assertEqual(json.loads(bad[3])["error"], "forbidden")
        ok = self.request(fb, yjtest.custody_event(force=MET))
        self.assertEqual(ok[1], b"OK", ok)

    def test_sender_is_the_client_name(self):
        r = self.request(self.feed(self.a), yjtest.custody_event())
        self.assertEqual(r[1], b"OK", r)
        seq = int(r[3])
        # yjlink.v1.Record field 4 (sender) as mdb_dump -p prints it:
        # tag 0x22 is '"', then the length byte, then the name.
        p = subprocess.run(["mdb_dump", "-p", "-s", "events", self.daemon.store], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"\\%02xfeed-a' % len("feed-a"), p.stdout)
        self.assertNotIn('"\\%02xyjl1' % len("yjl1"), p.stdout, "an event stored with the origin as its sender")
        code, out, _ = self.daemon.ctl("--json", "events", "--limit", "5")
        self.assertIn(seq, [e["seq"] for e in json.loads(out)["events"]])

    def test_subscriber_bound_to_its_recipients(self):
        x = self.subscriber(self.x)
        x.send_multipart([b"YJN1", b"HELLO", OX.encode(), b"0"])
        m = self.yjn1_recv(x)
        self.assertEqual(m[:2], [b"YJN1", b"ERROR"], m)
        # Nothing of Y's recipient went to X: its notes go to Y's own subscriber.
        fa = self.feed(self.a)
        self.assertEqual(self.request(fa, lac_event(OX))[1], b"OK")
        y = self.subscriber(self.y)
        y.send_multipart([b"YJN1", b"HELLO", OX.encode(), b"0"])
        m = self.yjn1_recv(y)
        self.assertEqual(m[:2], [b"YJN1", b"NOTE"], m)
        self.assertEqual(json.loads(m[3])["recipient"], OX)
        # X on a new connection, for its own recipient: its NOTEs.
        x2 = self.subscriber(self.x)
        x2.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        self.assertEqual(self.request(fa, lac_event(MK))[1], b"OK")
        m = self.yjn1_recv(x2)
        self.assertEqual(m[:2], [b"YJN1", b"NOTE"], m)
        self.assertEqual(json.loads(m[3])["recipient"], MK)
        # An unlisted subscriber key is refused at the handshake.
        z = self.subscriber(None)
        z.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        wait_for(lambda: re.search(r"zap: yjn1 key \S+ from \S+ refused", self.daemon.read_log()),
                 "the ZAP handler to refuse the unlisted subscriber key")
        self.assertFalse(z.poll(int(QUIET * 1000)), "an unlisted subscriber key got an answer")

    def test_reload_takes_a_new_key_without_dropping_connections(self):
        fa = self.feed(self.a)
        events = []
        mon = fa.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.monitors.append((fa, mon))
        self.assertEqual(self.request(fa, yjtest.custody_event())[1], b"OK")
        x = self.subscriber(self.x)
        x.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        self.assertEqual(self.request(fa, lac_event(MK))[1], b"OK")
        first = self.yjn1_recv(x)
        self.assertEqual(first[1], b"NOTE", first)
        x.send_multipart([b"YJN1", b"ACK", first[2]])
        # feed-c is not listed yet.
        fc = self.feed(self.c)
        fc.send_multipart([b"YJL1", b"custody", b"application/json", json.dumps(yjtest.custody_event()).encode()])
        wait_for(lambda: len(re.findall(r"zap: yjl1 key %s from \S+ refused" % re.escape(self.c[0].decode()),
                                        self.daemon.read_log())),
                 "feed-c to be refused before the reload")
        more = ',\n    { name = "feed-c"; public_key = "%s"; forces = [ "E23000029" ]; }' % self.c[0].decode()
        with open(self.config, "w") as f:
            f.write(self.render(more))
        self.daemon.ctl("reload")
        wait_for(lambda: "in_yjl1: ingest.clients reloaded: 3 client key(s)" in self.daemon.read_log(),
                 "the reload to take the new key")
        # The new key gets in.
        got = self.request(self.feed(self.c), yjtest.custody_event())
        self.assertEqual(got[1], b"OK", got)
        # The connections made before the reload are still up: feed-a's
        # socket saw one handshake and no disconnect, and X, without a new
        # HELLO, still gets its notes.
        self.assertEqual(self.request(fa, yjtest.custody_event())[1], b"OK")
        self.assertEqual(self.request(fa, lac_event(MK))[1], b"OK")
        second = self.yjn1_recv(x)
        self.assertEqual(second[1], b"NOTE", second)
        self.assertGreater(int(second[2]), int(first[2]))
        while mon.poll(0):
            events.append(zmq.utils.monitor.recv_monitor_message(mon)["event"])
        self.assertNotIn(zmq.EVENT_DISCONNECTED, events)
        self.assertLessEqual(events.count(zmq.EVENT_HANDSHAKE_SUCCEEDED), 1, events)


class StartTest(CurveBase):

    def keys(self):
        return keygen(os.path.join(self.dir, "keys", "yjlinkd"))

    def test_readable_key_file_stops_the_start(self):
        self.keys()
        key = os.path.join(self.dir, "keys", "yjlinkd.key")
        config = self.write_config('ingest = { curve = { secret_key_file = "keys/yjlinkd.key"; }; };\n')
        for mode in (0o644, 0o640, 0o604):
            os.chmod(key, mode)
            code, _, err = self.run_daemon(config)
            self.assertNotEqual(code, 0, err)
            self.assertIn(key, err)
            self.assertIn("chmod 600", err)
        # The same for notify's key.
        os.chmod(key, 0o600)
        config = self.write_config('notify = { curve = { secret_key_file = "keys/yjlinkd.key"; }; };\n'
                                   'ingest = { curve = { secret_key_file = "keys/other.key"; }; };\n')
        keygen(os.path.join(self.dir, "keys", "other"))
        os.chmod(os.path.join(self.dir, "keys", "other.key"), 0o644)
        code, _, err = self.run_daemon(config, "--check")
        self.assertNotEqual(code, 0, err)
        self.assertIn("other.key", err)
        os.chmod(os.path.join(self.dir, "keys", "other.key"), 0o600)
        code, out, err = self.run_daemon(config, "--check")
        self.assertEqual(code, 0, err)

    def test_non_loopback_without_curve_refused_unless_insecure(self):
        port = yjtest.free_port()
        for section in ("ingest", "notify"):
            config = self.write_config('# a comment\n%s = {\n  endpoint = "tcp://0.0.0.0:%d";\n};\n' % (section, port))
            d = yjtest.Daemon(workdir=self.dir, config=config)
            del d.sets["%s.endpoint" % section]
            p = subprocess.run(d.argv(), capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, p.stderr)
            self.assertIn("%s:3:" % config, p.stderr)
            self.assertIn("%s.insecure" % section, p.stderr)
            p = subprocess.run(d.argv() + ["--set", "%s.insecure=true" % section, "--check"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
        # ipc:// and the whole of 127.0.0.0/8 need neither.
        config = self.write_config('ingest = { endpoint = "ipc://%s/in.sock"; };\n'
                                   'notify = { endpoint = "tcp://127.0.0.2:%d"; };\n' % (self.dir, port))
        d = yjtest.Daemon(workdir=self.dir, config=config)
        del d.sets["ingest.endpoint"], d.sets["notify.endpoint"]
        p = subprocess.run(d.argv() + ["--check"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_non_loopback_with_curve_is_served(self):
        server = self.keys()
        client = keygen(os.path.join(self.dir, "keys", "feed"))
        port = yjtest.free_port()
        config = self.write_config(
            'ingest = {\n  endpoint = "tcp://0.0.0.0:%d";\n  curve = { secret_key_file = "keys/yjlinkd.key"; };\n'
            '  clients = ( { name = "feed"; public_key = "%s"; forces = [ "E23000029" ]; } );\n};\n'
            % (port, client[0].decode()))
        self.daemon = yjtest.Daemon(workdir=self.dir, config=config)
        del self.daemon.sets["ingest.endpoint"]
        self.daemon.start()
        r = self.request(self.curve_dealer("tcp://127.0.0.1:%d" % port, server[0], client), yjtest.custody_event())
        self.assertEqual(r[1], b"OK", r)

    def test_clients_without_curve_refused(self):
        client = keygen(os.path.join(self.dir, "keys", "feed"))
        config = self.write_config(
            'ingest = {\n  clients = ( { name = "feed"; public_key = "%s"; forces = [ "E23000029" ]; } );\n};\n'
            % client[0].decode())
        code, _, err = self.run_daemon(config, "--check")
        self.assertNotEqual(code, 0, err)
        self.assertIn("needs ingest.curve", err)
        # A key that is no key.
        self.keys()
        config = self.write_config(
            'ingest = {\n  curve = { secret_key_file = "keys/yjlinkd.key"; };\n'
            '  clients = ( { name = "feed"; public_key = "not-a-key"; forces = [ "E23000029" ]; } );\n};\n')
        code, _, err = self.run_daemon(config, "--check")
        self.assertNotEqual(code, 0, err)
        self.assertIn("%s:3:" % config, err)
        self.assertIn("public_key", err)


class KeygenTest(CurveBase):

    def test_keygen(self):
        base = os.path.join(self.dir, "keys", "tvp-niche")
        p = subprocess.run([yjtest.YJLINKCTL, "keygen", base], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        printed = p.stdout.strip().encode()
        st = os.stat(base + ".key")
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        with open(base + ".key", "rb") as f:
            secret = f.read().strip()
        with open(base + ".pub", "rb") as f:
            public = f.read().strip()
        self.assertEqual(len(secret), 40)
        self.assertEqual(public, printed)
        self.assertEqual(zmq.curve_public(secret), public)
        # Never overwritten.
        p = subprocess.run([yjtest.YJLINKCTL, "keygen", base], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        with open(base + ".key", "rb") as f:
            self.assertEqual(f.read().strip(), secret)
        p = subprocess.run([yjtest.YJLINKCTL, "keygen"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2)


class _AllowOne:
    """A pyzmq CURVE credentials provider letting in one public key."""

    def __init__(self, public):
        self.public = public

    def callback(self, domain, key):
        return key == self.public


class PublisherCurveTest(CurveBase):

    def test_publisher_with_server_key(self):
        ours = keygen(os.path.join(self.dir, "keys", "yjlinkd"))
        pub_pair = zmq.curve_keypair()
        ctx = zmq.Context()
        auth = zmq.auth.thread.ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=_AllowOne(ours[0]))
        pub = ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.curve_server = True
        pub.curve_secretkey = pub_pair[1]
        pub.curve_publickey = pub_pair[0]
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        try:
            config = self.write_config(
                'ingest = {\n  curve = { secret_key_file = "keys/yjlinkd.key"; };\n'
                '  publishers = ( { name = "tvp-athena"; endpoint = "tcp://127.0.0.1:%d"; force = "E23000029";\n'
                '    server_key = "%s"; } );\n};\n' % (port, pub_pair[0].decode()))
            self.daemon = yjtest.Daemon(workdir=self.dir, config=config).start()
            ev = yjtest.custody_event()

            def stored():
                pub.send_multipart([b"custody", b"1", json.dumps(ev).encode()])
                _, out, _ = self.daemon.ctl("--json", "events", "--limit", "5")
                return [e for e in json.loads(out)["events"] if e["source_id"] == ev["source_id"]]
            wait_for(stored, "the publisher's event to be stored over CURVE")
            self.assertIn("CURVE", self.daemon.read_log())
        finally:
            pub.close(linger=0)
            auth.stop()
            ctx.term()

    def test_server_key_without_ingest_curve_stops_the_start(self):
        config = self.write_config(
            'ingest = {\n  publishers = ( { name = "tvp-athena"; endpoint = "tcp://127.0.0.1:%d"; force = "E23000029";\n'
            '    server_key = "%s"; } );\n};\n' % (yjtest.free_port(), zmq.curve_keypair()[0].decode()))
        code, _, err = self.run_daemon(config)
        self.assertNotEqual(code, 0, err)
        self.assertIn("publisher tvp-athena: server_key needs this daemon's key pair", err)


class PeerCurveTest(PeerBase):
    """tvp's peer transport against met's CURVE ingest (test_peer's two daemons)."""

    def start_pair(self, forces):
        mdir, tdir = self.subdir("met"), self.subdir("tvp")
        os.makedirs(os.path.join(mdir, "keys"), exist_ok=True)
        server = keygen(os.path.join(mdir, "keys", "met"))
        peer = keygen(os.path.join(tdir, "tvp-peer"))
        self.write(os.path.join(mdir, "yjs.secret"), "met-yjs-secret\n", 0o600)
        text = MET_CONFIG % {"forces": '"E23000001"', "url": self.rx.url, "secret_file": "yjs.secret"}
        text = text.replace('ingest = { forces = [ "E23000001" ]; };',
                            'ingest = {\n  curve = { secret_key_file = "keys/met.key"; };\n'
                            '  clients = ( { name = "tvp-peer"; public_key = "%s"; forces = [ %s ]; } );\n};'
                            % (peer[0].decode(), forces))
        self.assertIn("tvp-peer", text)
        conf = self.write(os.path.join(mdir, "met.conf"), text)
        met = yjtest.Daemon(workdir=mdir, config=conf)
        self.daemons.append(met)
        met.start()
        tvp = self.tvp(met.ingest, keys=' server_key = "%s"; key_file = "tvp-peer.key";' % server[0].decode()).start()
        return met, tvp

    def test_peer_key_bound_to_its_force(self):
        met, tvp = self.start_pair('"%s"' % TVP)
        seq = self.send(tvp, "custody", westminster_child_in_custody())
        nid = self.wait_delivered(tvp, seq, (tvp, met))["notification_id"]
        stored = self.wait_until("event at met", lambda: self.events_from(met, nid), (tvp, met))
        self.assertEqual(stored[0]["force"], TVP)
        p = subprocess.run(["mdb_dump", "-p", "-s", "events", met.store], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn('"\\%02xtvp-peer' % len("tvp-peer"), p.stdout)
        self.assertIn("zap: yjl1 key of tvp-peer accepted", met.read_log())

    def test_peer_key_of_another_force_is_forbidden(self):
        met, tvp = self.start_pair('"E23000002"')
        seq = self.send(tvp, "custody", westminster_child_in_custody())
        dead = self.wait_until("dead letter at tvp", lambda: [
            d for d in self.ctl(tvp, "dlq", {"sub": "list"})["dead_letters"] if d.get("seq") == seq], (tvp, met))
        self.assertEqual(dead[0]["recipient"], MET_PEER)
        detail = json.loads(dead[0]["last_error"])
        self.assertEqual((detail["error"], detail["field"]), ("forbidden", "force"), detail)
        self.assertEqual(self.ctl(met, "events")["events"], [])


if __name__ == "__main__":
    unittest.main()
