"""Shared helpers for yjlink's integration tests.

Every test drives the real yjlinkd binary over its public protocols (YJL1,
the control socket) with real ZeroMQ clients. Run with /usr/bin/python3: the
Debian python3-zmq module belongs to it.
"""
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import zmq

BUILD = os.environ.get("YJ_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("YJ_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
YJLINKD = os.path.join(BUILD, "yjlinkd")
YJLINKCTL = os.path.join(BUILD, "yjlinkctl")
YJLINK_SIM = os.path.join(BUILD, "yjlink-sim")


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = __import__("random").Random(os.getpid())
_GIVEN = set()   # never the same port twice in one test process: two endpoints of one daemon would clash


def _port_range():
    """[lo, hi) that free_port picks from: YJ_TEST_PORTS=LO-HI (inclusive),
    which tools/test sets to a different range for each half it runs at the
    same time, so that a port checked free by one half cannot be taken by
    the other before its daemon binds it; else 10000 up to the ephemeral
    range."""
    spec = os.environ.get("YJ_TEST_PORTS", "")
    if spec:
        try:
            lo, hi = (int(x) for x in spec.split("-"))
        except ValueError:
            raise RuntimeError("YJ_TEST_PORTS=%r: expected LO-HI, e.g. 10000-20999" % spec) from None
        if not 1024 <= lo <= hi < 65536:
            raise RuntimeError("YJ_TEST_PORTS=%r: expected 1024 <= LO <= HI < 65536" % spec)
        return lo, hi + 1
    return 10000, max(_ephemeral_low(), 11000)


def free_port():
    """A free loopback port for a daemon to bind, outside the kernel's
    ephemeral range: a port from that range, free now, can be taken as the
    local end of any outgoing connection (this suite makes thousands) before
    the daemon binds it, and the daemon then cannot start."""
    lo, hi = _port_range()
    for _ in range(200):
        port = _PORTS.randrange(lo, hi)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    if os.environ.get("YJ_TEST_PORTS"):
        # Not the kernel's pick: that would leave the range the other half
        # of tools/test keeps clear of.
        raise RuntimeError("no free port in YJ_TEST_PORTS=%s after 200 tries" % os.environ["YJ_TEST_PORTS"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LogFollower:
    """The whole lines a log gains: each lines() reads only what was appended
    since the last call (from offset at first), so that polling a log that
    grows by tens of thousands of lines costs what it gains, not its whole
    length every time (which on a busy machine starved the test's own
    receivers of the CPU they needed to keep up)."""

    def __init__(self, path, offset=0):
        self.path = path
        self.offset = offset

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        whole = data.rfind(b"\n") + 1   # a line being written waits for its end
        self.offset += whole
        return data[:whole].decode("utf-8", "replace").splitlines()


def utc(ts):
    """RFC 3339 Z form of a unix time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Daemon:
    """One yjlinkd on private ports and a private store."""

    def __init__(self, workdir=None, sets=None, config=None, env=None):
        self.own_dir = workdir is None
        self.env = dict(os.environ, **env) if env else None  # the daemon's environment: ours, with env on top
        self.dir = workdir or tempfile.mkdtemp(prefix="yjtest-")
        self.store = os.path.join(self.dir, "store")
        self.ingest = "tcp://127.0.0.1:%d" % free_port()
        self.notify = "tcp://127.0.0.1:%d" % free_port()
        self.control = "ipc://%s/control.sock" % self.dir
        self.config = config
        self.sets = {
            "store.path": self.store,
            "ingest.endpoint": self.ingest,
            "notify.endpoint": self.notify,
            "control.endpoint": self.control,
            "metrics.endpoint": "127.0.0.1:%d" % free_port(),
        }
        self.sets.update(sets or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "yjlinkd.log")

    def argv(self):
        a = [YJLINKD]
        if self.config:
            a += ["--config", self.config]
        for k, v in self.sets.items():
            a += ["--set", "%s=%s" % (k, v)]
        return a

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=self.log, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("yjlinkd exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            try:
                code, _ = self.ctl_request("status", timeout_ms=500)
                if code == 0:
                    return
            except TimeoutError:
                pass
            time.sleep(0.05)
        raise AssertionError("yjlinkd not ready after %ss:\n%s" % (timeout, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def ctl_request(self, cmd, args=None, timeout_ms=5000):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.control)
        try:
            s.send_multipart([b"YJC1", json.dumps({"cmd": cmd, "args": args or {}}).encode()])
            if not s.poll(timeout_ms):
                raise TimeoutError("no control answer")
            frames = s.recv_multipart()
            return int(frames[1]), json.loads(frames[2])
        finally:
            s.close()

    def ctl(self, *args, check=True):
        """Run the real yjlinkctl; returns (exit code, stdout, stderr)."""
        p = subprocess.run([YJLINKCTL, "--control", self.control] + list(args), capture_output=True, text=True,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError("yjlinkctl %s: exit %d: %s %s" % (args, p.returncode, p.stdout, p.stderr))
        return p.returncode, p.stdout, p.stderr

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=60)
        if self.proc:
            self.log.close()
        return self.proc.returncode if self.proc else None

    def stop(self):
        return self.kill(signal.SIGTERM)

    def cleanup(self):
        self.kill()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Feed:
    """A YJL1 client: a DEALER that may pipeline."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send_frames(self, frames):
        self.sock.send_multipart([f if isinstance(f, bytes) else f.encode() for f in frames])

    def send(self, feed, payload, ctype="application/json"):
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        self.send_frames([b"YJL1", feed, ctype, payload])

    def recv(self, timeout_ms=10000):
        if not self.sock.poll(timeout_ms):
            raise TimeoutError("no YJL1 reply within %d ms" % timeout_ms)
        return self.sock.recv_multipart()

    def request(self, feed, payload, ctype="application/json"):
        self.send(feed, payload, ctype)
        return self.recv()

    def close(self):
        self.sock.close()


_counter = [0]


def custody_event(**over):
    """A valid custody message for Thames Valley; keyword args override top-level keys."""
    _counter[0] += 1
    now = time.time()
    ev = {
        "source_id": "t-%d-%d" % (os.getpid(), _counter[0]),
        "force": "E23000029",
        "occurred_at": utc(now - 600),
        "child": {
            "person_id": "TVP-P%06d" % _counter[0],
            "pnc_id": "09/123456X",
            "given_name": "Alex",
            "family_name": "Example",
            "date_of_birth": time.strftime("%Y-%m-%d", time.gmtime(now - 15 * 365.25 * 86400)),
            "gender": "male",
            "ethnicity": "W1",
            "home_la": "E06000042",
            "home_postcode": "MK9 2HP",
        },
        "custody": {
            "record_id": "CR-%d" % _counter[0],
            "suite": "TVP-MK",
            "arrived_at": utc(now - 900),
            "status": "detained",
            "status_at": utc(now - 600),
        },
    }
    ev.update(over)
    return ev


def with_path(ev, path, value):
    """A deep copy of ev with the dotted path set (value DELETE removes it)."""
    ev = copy.deepcopy(ev)
    parts = path.split(".")
    cur = ev
    for p in parts[:-1]:
        cur = cur[int(p)] if isinstance(cur, list) else cur[p]
    last = parts[-1]
    if value is DELETE:
        del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return ev


DELETE = object()


class DaemonTest(unittest.TestCase):
    """Starts one daemon per test class."""

    sets = {}

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(sets=cls.sets).start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()
