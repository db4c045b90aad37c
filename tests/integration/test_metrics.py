"""Monitoring over HTTP against the real daemon (interfaces.md §7): GET
/metrics in the Prometheus text format, parsed with prometheus_client's own
parser, its counters matching what was sent; GET /healthz 200 "ok", 503 when
the store cannot be written or the main loop is stalled, 200 again after.

The two 503 conditions are produced from outside, without any test hook in
the daemon:

- store not writable: the store lives on a 2 MiB tmpfs of the daemon's own
  (a private mount namespace: `unshare -Urm`, no privilege needed) that also
  holds a ballast file; events go in until the disk is full and ingest
  answers RETRY; then the ballast is removed (through /proc/PID/root, the
  daemon's view of its mounts) and the next event is stored.
- main loop stalled: ptrace stops the daemon's main thread alone
  (PTRACE_SEIZE + PTRACE_INTERRUPT on the thread whose id is the pid),
  exactly as a loop stuck in a syscall would be, while the HTTP thread runs
  on; the daemon's stall threshold is 10 s. PTRACE_DETACH resumes it.

Where the kernel refuses the namespace or ptrace (some CI sandboxes) that
part is skipped, saying why.

Metrics are published once a second: every check polls."""
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import yjtest
from http_receiver import HttpReceiver

CLOCK = "2026-11-25T10:00:00Z"      # a Wednesday morning: liaison and diversion is open
T0 = 1795600800                      # CLOCK as a unix time
POLL_S = 15                          # metrics refresh every second; this is plenty

MINIMAL = """
deployment = { id = "mt"; name = "Metrics test"; force = "E23000029"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "MK YJS"; local_authorities = [ "E06000042" ];
    transport = "none"; allow = [ "child.*" ]; }
);
rules = (
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate"; }
);
"""


def http_get(daemon, path, timeout=5):
    """(status, body text) of GET http://<metrics.endpoint><path>."""
    url = "http://%s%s" % (daemon.sets["metrics.endpoint"], path)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Scrape:
    """One GET /metrics, parsed by prometheus_client."""

    def __init__(self, daemon):
        status, self.text = http_get(daemon, "/metrics")
        assert status == 200, (status, self.text)
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}

    def family(self, name):
        """A family by its exposed name (the parser drops a counter's _total)."""
        base = name[:-len("_total")] if name.endswith("_total") else name
        return self.families.get(base) or self.families.get(name)

    def value(self, sample, **labels):
        """The value of the sample with exactly these labels (None when absent)."""
        for f in self.families.values():
            for s in f.samples:
                if s.name == sample and s.labels == labels:
                    return s.value
        return None

    def samples(self, sample):
        return [(s.labels, s.value) for f in self.families.values() for s in f.samples if s.name == sample]

    def total(self, sample):
        return sum(v for _, v in self.samples(sample))


def poll(daemon, pred, timeout=POLL_S):
    """Scrape until pred(scrape) is true; return the last scrape (the caller asserts)."""
    deadline = time.time() + timeout
    while True:
        sc = Scrape(daemon)
        if pred(sc) or time.time() > deadline:
            return sc
        time.sleep(0.2)


def event(status="detained", home="E06000042", **over):
    ev = yjtest.custody_event(occurred_at=yjtest.utc(T0 - 600))
    ev["child"]["date_of_birth"] = "2011-03-02"
    ev["child"]["home_la"] = home
    ev["custody"].update({"suite": "TVP-MK", "status": status, "arrived_at": yjtest.utc(T0 - 1800),
                          "status_at": yjtest.utc(T0 - 600)})
    ev.update(over)
    return ev


def arrest():
    ev = event()
    del ev["custody"]
    ev["arrest"] = {"arrest_id": "A-" + ev["source_id"], "arrested_at": yjtest.utc(T0 - 600)}
    return ev


class MetricsTest(unittest.TestCase):
    """The shipped config (webhooks pointed at a receiver of ours), a clock in
    liaison and diversion's opening hours, and traffic of every kind."""

    @classmethod
    def setUpClass(cls):
        cls.http = HttpReceiver().start()
        cls.dir = tempfile.mkdtemp(prefix="yjmetrics-")
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read().replace("http://127.0.0.1:8088", cls.http.url.rsplit("/", 1)[0])
        cls.conf = os.path.join(cls.dir, "yjlinkd.conf")
        with open(cls.conf, "w") as f:
            f.write(text)
        cls.daemon = yjtest.Daemon(workdir=cls.dir, config=cls.conf, sets={
            "testing.clock_control": "true", "testing.clock_start": CLOCK,
            # Email goes nowhere (nothing in this test is mailed but a digest, if one falls due).
            "email.smtp_url": "smtp://127.0.0.1:%d" % yjtest.free_port(),
            "delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "200",
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()
        cls.http.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()

    def request(self, frames):
        self.feed.send_frames(frames)
        return self.feed.recv()

    def send(self, ev, feed="custody"):
        r = self.feed.request(feed, ev)
        return r

    def webhook(self, sc, result):
        return sc.value("yjlink_deliveries_total", transport="webhook", result=result)

    def test_healthz_ok(self):
        status, body = http_get(self.daemon, "/healthz")
        self.assertEqual((status, body), (200, "ok\n"))

    def test_metrics_match_the_traffic(self):
        ingested = {"custody": 0, "arrest": 0}
        rejected = {}
        dups = 0

        def count(r, feed):
            nonlocal dups
            if r[1] == b"OK":
                ingested[feed] += 1
            elif r[1] == b"DUP":
                dups += 1
            elif r[1] == b"REJECT":
                code = json.loads(r[3])["error"]
                rejected[code] = rejected.get(code, 0) + 1
            else:
                self.fail(r)

        # --- accepted events, a duplicate, rejects of several codes ---
        base = poll(self.daemon, lambda sc: sc.family("yjlink_events_ingested_total") is not None)
        ok0 = self.webhook(base, "ok") or 0
        first = event()
        for ev in (first, event(), event()):
            r = self.send(ev)
            self.assertEqual(r[1], b"OK", r)
            count(r, "custody")
        r = self.send(arrest(), "arrest")
        self.assertEqual(r[1], b"OK", r)
        count(r, "arrest")
        r = self.send(first)
        self.assertEqual(r[1], b"DUP", r)
        count(r, "custody")
        bad = [
            [b"YJL2", b"custody", b"application/json", json.dumps(event()).encode()],       # protocol
            [b"YJL1", b"custodyx", b"application/json", json.dumps(event()).encode()],      # protocol
            [b"YJL1", b"custody", b"application/json", b"{\"source_id\": "],                # syntax
            [b"YJL1", b"custody", b"application/json", b"[1, 2]"],                         # schema
            [b"YJL1", b"custody", b"application/json",
             json.dumps(event(occurred_at=yjtest.utc(T0 + 86400 * 30))).encode()],          # value: future
            [b"YJL1", b"custody", b"application/json",
             json.dumps(dict(event(), force="E23000001")).encode()],                          # forbidden
        ]
        changed = json.loads(json.dumps(first))
        changed["custody"]["suite"] = "TVP-AYL"
        bad.append([b"YJL1", b"custody", b"application/json", json.dumps(changed).encode()])  # conflict
        young = event()
        young["child"]["date_of_birth"] = "2020-01-01"
        bad.append([b"YJL1", b"custody", b"application/json", json.dumps(young).encode()])  # out_of_scope
        for frames in bad:
            r = self.request(frames)
            self.assertEqual(r[1], b"REJECT", (frames[:2], r))
            count(r, "custody")
        self.assertGreaterEqual(len(rejected), 5, rejected)

        sc = poll(self.daemon, lambda sc: sc.total("yjlink_ingest_rejected_total") >= len(bad) and
                  (self.webhook(sc, "ok") or 0) >= ok0 + 3)
        # Families exist, with the documented types.
        for name, kind in (("yjlink_events_ingested_total", "counter"), ("yjlink_ingest_rejected_total", "counter"),
                           ("yjlink_outbox_depth", "gauge"), ("yjlink_deliveries_total", "counter"),
                           ("yjlink_dead_letters", "gauge"), ("yjlink_commit_seconds", "histogram")):
            fam = sc.family(name)
            self.assertIsNotNone(fam, "no family %s in:\n%s" % (name, sc.text))
            self.assertEqual(fam.type, kind, name)
        # Counts match what was sent: per feed, per reject code (every code the daemon lists).
        for feed, n in ingested.items():
            self.assertEqual(sc.value("yjlink_events_ingested_total", feed=feed), n, feed)
        self.assertEqual(sc.value("yjlink_events_ingested_total", feed="outcome"), 0)
        codes = {lab["error"]: v for lab, v in sc.samples("yjlink_ingest_rejected_total")}
        for code in ("protocol", "too_large", "encoding", "syntax", "schema", "value", "out_of_scope",
                     "conflict", "forbidden"):
            self.assertIn(code, codes)
        self.assertEqual({c: v for c, v in codes.items() if v}, rejected)
        self.assertEqual(sc.value("yjlink_ingest_duplicates_total"), dups)
        # Three liaison and diversion webhooks, delivered once each.
        self.assertEqual(self.webhook(sc, "ok"), ok0 + 3)
        self.assertEqual(self.webhook(sc, "fatal"), 0)
        self.assertEqual(len([r for r in self.http.received if r["status"] == 200]), 3)
        self.assertEqual(sc.value("yjlink_dead_letters"), 0)
        self.check_histogram(sc, ingested)

        # --- a receiver failing transiently: the outbox fills, then drains ---
        depth0 = sc.total("yjlink_outbox_depth")
        self.http.mode = 500
        for _ in range(2):
            r = self.send(event())
            self.assertEqual(r[1], b"OK", r)
            count(r, "custody")
        sc = poll(self.daemon, lambda sc: sc.total("yjlink_outbox_depth") >= depth0 + 2 and
                  (self.webhook(sc, "retry") or 0) >= 1)
        self.assertGreaterEqual(sc.total("yjlink_outbox_depth"), depth0 + 2, sc.text)
        self.assertGreaterEqual(self.webhook(sc, "retry"), 1)
        self.http.mode = 200
        sc = poll(self.daemon, lambda sc: (self.webhook(sc, "ok") or 0) >= ok0 + 5 and
                  sc.total("yjlink_outbox_depth") <= depth0)
        self.assertEqual(self.webhook(sc, "ok"), ok0 + 5)
        self.assertEqual(sc.total("yjlink_outbox_depth"), depth0)

        # --- a permanent failure: one dead letter ---
        self.http.mode = 400
        r = self.send(event())
        self.assertEqual(r[1], b"OK", r)
        count(r, "custody")
        sc = poll(self.daemon, lambda sc: sc.value("yjlink_dead_letters") == 1)
        self.http.mode = 200
        self.assertEqual(sc.value("yjlink_dead_letters"), 1)
        self.assertEqual(self.webhook(sc, "fatal"), 1)
        self.assertEqual(sc.value("yjlink_events_ingested_total", feed="custody"), ingested["custody"])
        self.assertEqual(sc.total("yjlink_ingest_rejected_total"), len(bad))
        self.check_histogram(sc, ingested)

    def check_histogram(self, sc, ingested):
        buckets = sorted(((float(lab["le"]), v) for lab, v in sc.samples("yjlink_commit_seconds_bucket")))
        self.assertGreater(len(buckets), 3)
        self.assertEqual(buckets[-1][0], float("inf"))
        counts = [v for _, v in buckets]
        self.assertEqual(counts, sorted(counts), "buckets must be cumulative")
        n = sc.value("yjlink_commit_seconds_count")
        self.assertEqual(buckets[-1][1], n)
        # Every OK was in a synced commit; a commit holds one request or more.
        self.assertGreaterEqual(n, 1)
        self.assertLessEqual(n, sum(ingested.values()) + 20)
        s = sc.value("yjlink_commit_seconds_sum")
        self.assertGreater(s, 0)
        self.assertLess(s / n, 10, "a mean commit of 10 s or more is not a plausible figure")


class NsDaemon(yjtest.Daemon):
    """yjlinkd in a user and mount namespace of its own, its store on a small
    tmpfs holding a ballast file. The pid is the daemon's (unshare and sh exec)."""

    def __init__(self, fs, size, ballast, **kw):
        super().__init__(**kw)
        self.fs, self.size, self.ballast = fs, size, ballast
        self.sets["store.path"] = self.store = os.path.join(fs, "store")

    def argv(self):
        script = ('mount -t tmpfs -o size=%s tmpfs "$1" && head -c %d /dev/zero > "$1/ballast" && shift && exec "$@"'
                  % (self.size, self.ballast))
        return ["unshare", "-Urm", "sh", "-c", script, "sh", self.fs] + super().argv()

    def free_ballast(self):
        os.unlink("/proc/%d/root%s/ballast" % (self.proc.pid, self.fs))


def namespaces_work():
    if not shutil.which("unshare"):
        return "no unshare(1)"
    p = subprocess.run(["unshare", "-Urm", "sh", "-c",
                        'd=$(mktemp -d) || exit 1; mount -t tmpfs -o size=1m tmpfs "$d"; r=$?; '
                        'umount "$d" 2>/dev/null; rmdir "$d"; exit $r'], capture_output=True, text=True)
    return None if p.returncode == 0 else "unshare -Urm / tmpfs refused: %s" % p.stderr.strip()


class HealthzStoreTest(unittest.TestCase):

    def setUp(self):
        why = namespaces_work()
        if why:
            self.skipTest(why)
        self.dir = tempfile.mkdtemp(prefix="yjhealth-")
        self.conf = os.path.join(self.dir, "y.conf")
        with open(self.conf, "w") as f:
            f.write(MINIMAL)
        fs = os.path.join(self.dir, "fs")
        os.mkdir(fs)
        self.d = NsDaemon(fs, "2m", 512 * 1024, workdir=self.dir, config=self.conf).start()

    def tearDown(self):
        self.d.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def healthz_becomes(self, status, timeout=POLL_S):
        deadline = time.time() + timeout
        while True:
            got = http_get(self.d, "/healthz")
            if got[0] == status or time.time() > deadline:
                return got
            time.sleep(0.1)

    def test_disk_full_then_freed(self):
        self.assertEqual(http_get(self.d, "/healthz"), (200, "ok\n"))
        feed = yjtest.Feed(self.d.ingest)
        oks, retry = [], None
        for _ in range(100):            # at most 100 x 100 events; 2 MiB fill well before
            for _ in range(100):
                feed.send("custody", yjtest.custody_event())
            for _ in range(100):
                r = feed.recv()
                if r[1] == b"OK":
                    oks.append(int(r[3]))
                elif r[1] == b"RETRY":
                    retry = r
                else:
                    self.fail(r)
            if retry:
                break
        self.assertIsNotNone(retry, "2 MiB never filled up")
        self.assertGreater(len(oks), 0)
        # A smaller batch may still fit after a larger one failed, and a write that succeeds rightly
        # makes /healthz say 200 again; fill up one event at a time until even that fails, so that
        # the last write attempted is known to have failed (whatever the batches were).
        for _ in range(1000):
            r = feed.request("custody", yjtest.custody_event())
            if r[1] == b"RETRY":
                retry = r
                break
            self.assertEqual(r[1], b"OK", r)
            oks.append(int(r[3]))
        else:
            self.fail("one more event always fitted")
        status, body = self.healthz_becomes(503)
        self.assertEqual(status, 503, "/healthz must answer 503 while the disk is full (ingest answered %s), "
                         "until a write succeeds again; it answered %d %r" % (retry[3], status, body))
        self.assertTrue(body.startswith("store not writable: "), body)
        self.assertEqual(body.count("\n"), 1, body)
        # And it stays so while nothing has been written: the loop keeps
        # turning (timers every second) but the store is as full as before.
        time.sleep(2.5)
        status, body = http_get(self.d, "/healthz")
        self.assertEqual(status, 503, "/healthz went back to %d %r 2.5 s after the last failed write, with the disk "
                         "still full and no write since" % (status, body))
        # The daemon still serves: metrics say what happened.
        sc = poll(self.d, lambda sc: (sc.value("yjlink_ingest_retries_total", reason="store") or 0) >= 1)
        self.assertGreaterEqual(sc.value("yjlink_ingest_retries_total", reason="store"), 1)
        self.assertEqual(sc.value("yjlink_ingest_retries_total", reason="overloaded"), 0)
        self.assertEqual(sc.value("yjlink_events_ingested_total", feed="custody"), len(oks))

        self.d.free_ballast()
        deadline = time.time() + POLL_S
        while True:
            r = feed.request("custody", yjtest.custody_event())
            if r[1] == b"OK" or time.time() > deadline:
                break
            self.assertEqual(r[1], b"RETRY", r)
            time.sleep(0.2)
        self.assertEqual(r[1], b"OK", r)
        self.assertEqual(self.healthz_becomes(200), (200, "ok\n"))
        feed.close()


# ptrace(2) requests (linux/ptrace.h)
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
WALL = 0x40000000


class HealthzStallTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjstall-")
        conf = os.path.join(self.dir, "y.conf")
        with open(conf, "w") as f:
            f.write(MINIMAL)
        self.d = yjtest.Daemon(workdir=self.dir, config=conf).start()
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.restype = ctypes.c_long
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.attached = False

    def tearDown(self):
        if self.attached:
            self.libc.ptrace(PTRACE_DETACH, self.d.proc.pid, None, None)
        self.d.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ptrace(self, req, pid):
        if self.libc.ptrace(req, pid, None, None) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))

    def test_stalled_loop_then_resumed(self):
        pid = self.d.proc.pid
        self.assertEqual(http_get(self.d, "/healthz"), (200, "ok\n"))
        try:
            self.ptrace(PTRACE_SEIZE, pid)   # the main thread only: its tid is the pid
        except OSError as e:
            self.skipTest("ptrace refused here: %s" % e)
        self.attached = True
        self.ptrace(PTRACE_INTERRUPT, pid)
        _, st = os.waitpid(pid, WALL)
        self.assertTrue(os.WIFSTOPPED(st), st)
        t0 = time.time()
        # Stalled, but not yet for the daemon's 10 s: still healthy.
        time.sleep(1)
        self.assertEqual(http_get(self.d, "/healthz"), (200, "ok\n"))
        deadline = t0 + 30
        while True:
            status, body = http_get(self.d, "/healthz")
            if status != 200 or time.time() > deadline:
                break
            time.sleep(0.25)
        stalled_after = time.time() - t0
        self.assertEqual(status, 503, body)
        self.assertRegex(body, r"^main loop stalled for \d+ ms\n$")
        self.assertGreaterEqual(stalled_after, 9)
        # /metrics is still served (the last published text) while the loop is stopped.
        self.assertIsNotNone(Scrape(self.d).family("yjlink_events_ingested_total"))
        self.ptrace(PTRACE_DETACH, pid)
        self.attached = False
        deadline = time.time() + POLL_S
        while True:
            got = http_get(self.d, "/healthz")
            if got[0] == 200 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(got, (200, "ok\n"))
        # And the loop works again.
        feed = yjtest.Feed(self.d.ingest)
        self.assertEqual(feed.request("custody", yjtest.custody_event())[1], b"OK")
        feed.close()


class Slowloris:
    """n connections to HOST:PORT, each sending a request line and headers one
    byte every `every` seconds and never finishing them; a connection the
    server closes is opened again, as the attack tool does. Runs in a thread
    until stop()."""

    def __init__(self, hostport, n, every=2.0):
        self.addr = (hostport.rsplit(":", 1)[0], int(hostport.rsplit(":", 1)[1]))
        self.n, self.every = n, every
        self.socks = []
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.text = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: 1\r\n" * 10000

    def open(self):
        s = socket.create_connection(self.addr, timeout=5)
        s.setblocking(False)
        return [s, 0]

    def start(self):
        self.socks = [self.open() for _ in range(self.n)]
        for c in self.socks:
            self.dribble(c)
        self.thread.start()
        return self

    def dribble(self, c):
        try:
            # Closed by the server? (readable with nothing to read)
            try:
                if c[0].recv(1, socket.MSG_PEEK) == b"":
                    raise ConnectionResetError()
            except BlockingIOError:
                pass
            c[0].send(self.text[c[1]:c[1] + 1])
            c[1] += 1
        except OSError:
            c[0].close()
            c[:] = self.open()
            self.reopened += 1

    def run(self):
        while not self.stopping.wait(self.every):
            for c in self.socks:
                if self.stopping.is_set():
                    break
                try:
                    self.dribble(c)
                except OSError:
                    pass  # could not reopen just now: try again next round

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)
        for c in self.socks:
            c[0].close()


class HealthzUnderLoadTest(unittest.TestCase):
    """/healthz and /metrics keep answering while clients misbehave (issue 11
    item 5, docs/limits.md): 50 slowloris connections, then also a flood of
    connections opened and left idle. Each probe gets a generous 5 s (a
    failure bound, not a measured figure): without the limits a probe waits
    for as long as the attack lasts."""

    PROBES = 8
    TIMEOUT_S = 5

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjload-")
        conf = os.path.join(self.dir, "y.conf")
        with open(conf, "w") as f:
            f.write(MINIMAL)
        self.d = yjtest.Daemon(workdir=self.dir, config=conf).start()
        self.loris = None
        self.idle = []

    def tearDown(self):
        if self.loris:
            self.loris.stop()
        for s in self.idle:
            s.close()
        self.d.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def probe(self, what):
        for i in range(self.PROBES):
            try:
                got = http_get(self.d, "/healthz", timeout=self.TIMEOUT_S)
            except OSError as e:   # urllib's timeout, or a refused connection
                self.fail("%s: /healthz probe %d got no answer within %d s: %s" % (what, i, self.TIMEOUT_S, e))
            self.assertEqual(got, (200, "ok\n"), "%s: probe %d" % (what, i))
            time.sleep(0.25)
        try:
            status, text = http_get(self.d, "/metrics", timeout=self.TIMEOUT_S)
        except OSError as e:
            self.fail("%s: /metrics got no answer within %d s: %s" % (what, self.TIMEOUT_S, e))
        self.assertEqual(status, 200, what)
        self.assertIn("yjlink_up", text, what)

    def test_slowloris_and_idle_flood(self):
        self.assertEqual(http_get(self.d, "/healthz"), (200, "ok\n"))
        self.loris = Slowloris(self.d.sets["metrics.endpoint"], 50).start()
        time.sleep(3)   # every connection open and dribbling
        self.probe("50 slowloris connections")
        host, port = self.d.sets["metrics.endpoint"].rsplit(":", 1)
        for _ in range(300):
            self.idle.append(socket.create_connection((host, int(port)), timeout=5))
        time.sleep(1)
        self.probe("50 slowloris and 300 idle connections")
        self.ingest_ok()

    def test_idle_flood(self):
        host, port = self.d.sets["metrics.endpoint"].rsplit(":", 1)
        for _ in range(300):
            self.idle.append(socket.create_connection((host, int(port)), timeout=5))
        time.sleep(1)
        self.probe("300 idle connections")
        self.ingest_ok()

    def ingest_ok(self):
        # The loop itself was never held up: ingest answers as before.
        feed = yjtest.Feed(self.d.ingest)
        self.assertEqual(feed.request("custody", yjtest.custody_event())[1], b"OK")
        feed.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
