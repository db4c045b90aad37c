"""Hostile load on the YJL1 endpoint (issue "hostile load", item 2).

Against the real daemon: a flood of idle connections (at 1,024 descriptors
under prlimit, and 5,000 at the unit's LimitNOFILE), one client pipelining a
million requests without reading a reply, one message of 64 frames of 8 MiB,
100 peers each half-way through a 16 MiB frame, and one unfinished message
of 4,000,000 empty frames. After each, a fresh feed client still gets OK, a
looked-after child's notification still reaches the webhook, and yjlinkctl
still answers; under the attacks the daemon's private memory (RssAnon,
sampled every 50 ms) stays under the 64 MiB bar. The memory bar is checked
in the plain build only: AddressSanitizer's shadow memory and quarantine
make its figures meaningless (the behaviour is checked in both).

The attacks speak ZMTP 3.0 over raw TCP (a greeting, a NULL READY, frames)
so they can do what libzmq clients never would: stop half-way.
"""
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

import zmq

import test_metrics
import yjtest
from http_receiver import HttpReceiver
from test_inputs import wait_for  # polls a condition with a deadline for a busy machine, never a timing

MIB = 1 << 20
BAR_KIB = 64 * 1024
SANITIZED = b"__asan_init" in open(yjtest.YJLINKD, "rb").read()


def greeting():
    return b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31


def ready_dealer():
    body = b"\x05READY" + b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
    return b"\x04" + bytes([len(body)]) + body


def frame(data, more):
    flags = 1 if more else 0
    if len(data) < 256:
        return bytes([flags, len(data)]) + data
    return bytes([flags | 2]) + struct.pack(">Q", len(data)) + data


def long_header(size, more):
    return bytes([(1 if more else 0) | 2]) + struct.pack(">Q", size)


def request_bytes(feed, payload):
    return (frame(b"YJL1", True) + frame(feed, True) + frame(b"application/json", True) + frame(payload, False))


def private_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


class Peak:
    """The peak of a process's private memory, sampled every 50 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, private_kib(self.pid))
            except OSError:
                return
            self._stop.wait(0.05)

    def done(self):
        self._stop.set()
        self._t.join()
        return self.peak


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the daemon closed the connection during the ZMTP handshake")
        data += chunk
    return data


def raw_peer(port, rcvbuf=None):
    """A raw ZMTP peer, handshake complete. It waits for the daemon's READY
    before sending any frame, as libzmq does: libzmq drops a connection whose
    first message arrives in the same read as its READY, before its own
    READY has gone out, so an attack sent straight after the greeting was
    often refused at the handshake and attacked nothing. A receive buffer
    is set before connecting: set after, it shrinks a window already
    offered, the daemon's replies sent into it are dropped, and both ends
    back off (retransmission, zero-window probes) for seconds."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.settimeout(10)
    s.sendall(greeting() + ready_dealer())
    recv_exactly(s, 64)
    flags, = recv_exactly(s, 1)
    size = struct.unpack(">Q", recv_exactly(s, 8))[0] if flags & 2 else recv_exactly(s, 1)[0]
    body = recv_exactly(s, size)
    if flags & 4 == 0 or not body.startswith(b"\x05READY"):
        raise ConnectionError("the daemon's first command is not READY: %r" % body[:16])
    s.settimeout(None)
    return s


def send_quietly(sock, data):
    """Send; the daemon closing the connection is an expected answer."""
    try:
        sock.sendall(data)
    except OSError:
        pass


class LimitedDaemon(yjtest.Daemon):
    """yjlinkd started under prlimit --nofile=N:N."""

    def __init__(self, nofile, **kw):
        super().__init__(**kw)
        self.nofile = nofile

    def argv(self):
        return ["prlimit", "--nofile=%d:%d" % (self.nofile, self.nofile), "--"] + super().argv()


def unit_nofile():
    """systemd/yjlinkd.service's LimitNOFILE=65536, or as near as this
    machine's hard limit lets (a container may not raise it)."""
    return min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


class HostileBase(unittest.TestCase):
    nofile = None  # unit_nofile()

    @classmethod
    def setUpClass(cls):
        # This process holds the attackers' descriptors.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 20000)), hard))
        cls.http = HttpReceiver().start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read().replace("http://127.0.0.1:8088", cls.http.url.rstrip("/"))
        cls.dir = __import__("tempfile").mkdtemp(prefix="yjhostile-")
        cls.conf = os.path.join(cls.dir, "yjlinkd.conf")
        with open(cls.conf, "w") as f:
            f.write(text)
        cls.daemon = LimitedDaemon(cls.nofile or unit_nofile(), workdir=cls.dir, config=cls.conf, sets={
            "delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "200"}).start()
        cls.port = int(cls.daemon.ingest.rsplit(":", 1)[1])

    @classmethod
    def tearDownClass(cls):
        cls.daemon.kill()
        cls.http.stop()
        __import__("shutil").rmtree(cls.dir, ignore_errors=True)

    def pid(self):
        # prlimit execs the daemon: same pid.
        return self.daemon.proc.pid

    def assert_serving(self):
        """A new feed client gets OK, the looked-after child's webhook
        notification arrives, yjlinkctl answers."""
        self.assertIsNone(self.daemon.proc.poll(), self.daemon.read_log()[-2000:])
        feed = yjtest.Feed(self.daemon.ingest)
        try:
            ev = yjtest.custody_event()
            ev["child"]["looked_after"] = True
            ev["child"]["responsible_la"] = "E06000042"
            r = feed.request("custody", ev)
            self.assertEqual(r[1], b"OK", r)
            seq = int(r[3])
        finally:
            feed.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            if any(json.loads(q["body"]).get("event", {}).get("seq") == seq for q in list(self.http.received)):
                break
            time.sleep(0.05)
        else:
            self.fail("no webhook delivery of event %d:\n%s" % (seq, self.daemon.read_log()[-2000:]))
        code, out, err = self.daemon.ctl("status")
        self.assertEqual(code, 0, err)

    def assert_under_bar(self, peak_kib, what):
        sys.stderr.write("%s: peak private memory %.1f MiB\n" % (what, peak_kib / 1024))
        if not SANITIZED:
            self.assertLess(peak_kib, BAR_KIB, "%s: private memory peaked at %d KiB" % (what, peak_kib))


class IdleFlood1024Test(HostileBase):
    nofile = 1024

    def test_idle_connections_over_the_descriptor_limit(self):
        socks = []
        try:
            # Half complete the ZMTP handshake and sit, half never say a word.
            for i in range(5000):
                try:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                except OSError:
                    continue
                if i % 2 == 0:
                    send_quietly(s, greeting() + ready_dealer())
                socks.append(s)
            self.assert_serving()
            code, out, err = self.daemon.ctl("status")
            self.assertEqual(code, 0)
        finally:
            for s in socks:
                s.close()
        self.assert_serving()
        self.assertNotIn("Too many open files", self.daemon.read_log())


class IdleFlood5000Test(HostileBase):
    def test_5000_idle_connections(self):
        socks = []
        try:
            for i in range(5000):
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                if i % 2 == 0:
                    send_quietly(s, greeting() + ready_dealer())
                socks.append(s)
            self.assert_serving()
        finally:
            for s in socks:
                s.close()
        self.assert_serving()


class Probe:
    """A well-behaved feed client sending one event at a time during an
    attack: every one must get its OK (round trips are reported, not
    judged)."""

    def __init__(self, endpoint):
        self.endpoint, self.rtts, self.failures = endpoint, [], []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        feed = yjtest.Feed(self.endpoint)
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    r = feed.request("custody", yjtest.custody_event())
                except TimeoutError as e:
                    self.failures.append(str(e))
                    return
                if r[1] != b"OK":
                    self.failures.append(repr(r))
                self.rtts.append(time.monotonic() - t0)
                self._stop.wait(0.05)
        finally:
            feed.close()

    def done(self):
        self._stop.set()
        self._t.join()
        return self


class MemoryAttackTest(HostileBase):
    def attack(self, what, fn):
        peak = Peak(self.pid())
        probe = Probe(self.daemon.ingest)
        try:
            fn()
            time.sleep(0.5)
        finally:
            kib = peak.done()
            probe.done()
        self.assertEqual(probe.failures, [], "%s\n%s" % (what, self.daemon.read_log()[-3000:]))
        self.assertTrue(probe.rtts, what)
        rtts = sorted(probe.rtts)
        sys.stderr.write("%s: %d probe round trips, median %.1f ms, max %.1f ms\n"
                         % (what, len(rtts), 1000 * rtts[len(rtts) // 2], 1000 * rtts[-1]))
        self.assert_serving()
        self.assert_under_bar(kib, what)

    def test_pipelining_a_million_without_reading(self):
        log0 = len(self.daemon.read_log())

        def run():
            ev = yjtest.custody_event()
            block = request_bytes(b"custody", json.dumps(ev).encode()) * 1000
            # A small receive buffer: the replies back up at once.
            s = raw_peer(self.port, rcvbuf=4096)
            s.settimeout(5)
            try:
                for _ in range(1000):
                    try:
                        s.sendall(block)
                    except OSError:
                        break  # the daemon closed a client that reads nothing
                # Every request was read: the daemon keeps going although
                # none of its replies is read.
                self.assertIsNone(self.daemon.proc.poll())
                # It was told to back off (RETRY overloaded), then closed.
                for said in ("its requests are answered RETRY overloaded", "not reading their replies"):
                    wait_for(lambda: said in self.daemon.read_log()[log0:], "the daemon's log saying '%s'" % said)
            finally:
                s.close()
        self.attack("1,000,000 pipelined requests, no reply read", run)

    def test_64_frames_of_8_mib(self):
        def run():
            s = raw_peer(self.port)
            big = b"y" * (8 * MIB)
            try:
                for i in range(64):
                    send_quietly(s, long_header(len(big), i < 63) + big)
            finally:
                s.close()
        self.attack("one message of 64 frames of 8 MiB", run)

    def test_100_peers_half_way_through_a_16_mib_frame(self):
        def run():
            socks = []
            try:
                for _ in range(100):
                    s = raw_peer(self.port)
                    send_quietly(s, frame(b"YJL1", True) + long_header(16 * MIB, False) + b"x" * (8 * MIB))
                    socks.append(s)
                time.sleep(0.5)
            finally:
                for s in socks:
                    s.close()
        self.attack("100 peers half-way through a 16 MiB frame", run)

    def test_4_million_frames_never_finished(self):
        def run():
            s = raw_peer(self.port)
            s.settimeout(5)
            try:
                send_quietly(s, frame(b"YJL1", True) + b"\x01\x00" * 4000000)
                time.sleep(0.5)
            finally:
                s.close()
        self.attack("one unfinished message of 4,000,000 frames", run)

    def test_payload_over_the_limit_still_gets_its_reject(self):
        # Bounding libzmq's frames must not cost the REJECT of interfaces.md §1.
        feed = yjtest.Feed(self.daemon.ingest)
        try:
            r = feed.request("custody", b"{" + b" " * (1 << 20) + b"}")
            self.assertEqual(r[1], b"REJECT")
            self.assertEqual(json.loads(r[3])["error"], "too_large")
        finally:
            feed.close()


def long_id(tag, i):
    """A source_id of 100 bytes: replies that long back up in fewer requests."""
    return ("%s-%d-%d-" % (tag, os.getpid(), i)).ljust(100, "x")


class OverShareTest(HostileBase):
    """RETRY overloaded (interfaces.md §1) for a client over its share: one
    that leaves more than half of deaf_bytes of its replies unread inside
    the daemon's libzmq. Its requests are then answered at once, neither
    normalised nor stored, until it reads again; a well-behaved client at
    the same time, and a lone client with thousands of requests in flight,
    are never told so."""

    OVER = "its requests are answered RETRY overloaded"
    BACK = "reads its replies again"

    def ingest_counts(self):
        ing = self.daemon.ctl_request("status")[1]["ingest"]
        return ing["ok_since_start"]["custody"], ing["retry_since_start"]

    def metric(self, name, **labels):
        return test_metrics.Scrape(self.daemon).value(name, **labels) or 0

    def log_since(self, start):
        return self.daemon.read_log()[start:]

    def test_a_client_that_does_not_read_gets_retry_overloaded(self):
        log0 = len(self.daemon.read_log())
        ok0, retry0 = self.ingest_counts()
        over0 = self.metric("yjlink_ingest_retries_total", reason="overloaded")
        probe = Probe(self.daemon.ingest)
        deaf = zmq.Context.instance().socket(zmq.DEALER)
        # It takes one reply into its own queue and a few KiB into its
        # kernel: the rest backs up in the daemon.
        deaf.setsockopt(zmq.RCVHWM, 1)
        deaf.setsockopt(zmq.RCVBUF, 4096)
        deaf.setsockopt(zmq.LINGER, 0)
        # Closed by the daemon, it would block for ever on its next send.
        deaf.setsockopt(zmq.SNDTIMEO, 30000)
        deaf.connect(self.daemon.ingest)
        sent = []

        def send(n):
            for _ in range(n):
                ev = yjtest.custody_event(source_id=long_id("deaf", len(sent)))
                try:
                    deaf.send_multipart([b"YJL1", b"custody", b"application/json", json.dumps(ev).encode()])
                except zmq.Again:
                    self.fail("request %d not taken in 30 s (closed as deaf, its replies lost?)\n%s"
                              % (len(sent), self.daemon.read_log()[-3000:]))
                sent.append(ev["source_id"].encode())
            # Each chunk answered before the next goes: what it leaves
            # unread grows by at most a chunk's replies between two looks,
            # far from deaf_bytes, where it would be closed.
            wait_for(lambda: sum(self.ingest_counts()) - ok0 - retry0 >= len(sent),
                     "the daemon answering %d requests" % len(sent))

        try:
            # Without the share, every one of them is stored until the
            # daemon closes it as deaf (1 MiB unread): 60,000 requests are
            # far beyond either.
            while self.OVER not in self.log_since(log0):
                self.assertLess(len(sent), 60000, "never answered RETRY overloaded\n" + self.daemon.read_log()[-3000:])
                send(500)
            n_over = len(sent)
            # Still deaf: everything more is refused, and the other client
            # keeps getting OK all the while.
            probe_at = len(probe.rtts)
            send(300)
            wait_for(lambda: len(probe.rtts) >= probe_at + 3,
                     "three probe round trips while the deaf client is over its share")
            self.assertEqual(probe.failures, [], self.daemon.read_log()[-3000:])
            # Now it reads: one reply per request, in order.
            replies = []
            for _ in sent:
                self.assertTrue(deaf.poll(30000), "%d replies of %d" % (len(replies), len(sent)))
                replies.append(deaf.recv_multipart())
            self.assertFalse(deaf.poll(0), "more replies than requests")
            statuses = [r[1] for r in replies]
            n_ok = statuses.count(b"OK")
            n_retry = statuses.count(b"RETRY")
            self.assertEqual(n_ok + n_retry, len(sent), set(statuses))
            self.assertGreaterEqual(n_retry, 300, "the 300 sent once it was over")
            self.assertEqual(statuses, [b"OK"] * n_ok + [b"RETRY"] * n_retry, "OKs, then only RETRYs")
            for i in range(n_ok):
                self.assertEqual(replies[i][2], sent[i], "reply %d is not its request's" % i)
            for r in replies[n_ok:]:
                self.assertEqual(r[2:], [b"", b"overloaded"])
            sys.stderr.write("deaf client: %d requests, %d answered OK then %d RETRY overloaded (over its share seen "
                             "after %d sent)\n" % (len(sent), n_ok, n_retry, n_over))
            # Having read, it is answered normally again.
            wait_for(lambda: self.BACK in self.log_since(log0), "the daemon seeing the client read again")
            ev = yjtest.custody_event()
            deaf.send_multipart([b"YJL1", b"custody", b"application/json", json.dumps(ev).encode()])
            self.assertTrue(deaf.poll(30000))
            self.assertEqual(deaf.recv_multipart()[1], b"OK")
        finally:
            probe.done()
            deaf.close()
        self.assertEqual(probe.failures, [], self.daemon.read_log()[-3000:])
        # Stored: the deaf client's OKs (one more after it read), the probe's, nothing else.
        ok1, retry1 = self.ingest_counts()
        self.assertEqual(ok1 - ok0, n_ok + 1 + len(probe.rtts))
        self.assertLess(n_ok + 1, len(sent))
        self.assertEqual(retry1 - retry0, n_retry)
        wait_for(lambda: self.metric("yjlink_ingest_retries_total", reason="overloaded") == over0 + n_retry,
                 "the metric counting every RETRY overloaded")
        log = self.log_since(log0)
        lines = "\n".join(l for l in log.splitlines() if "ingest:" in l)
        self.assertEqual(log.count(self.OVER), 1, "one line when it went over, not one per request:\n" + lines)
        self.assertEqual(log.count(self.BACK), 1)
        self.assert_serving()

    def test_a_lone_client_with_thousands_in_flight_is_never_overloaded(self):
        log0 = len(self.daemon.read_log())
        over0 = self.metric("yjlink_ingest_over_share_total")
        feed = yjtest.Feed(self.daemon.ingest)
        window, total, statuses = 4000, 40000, {}
        sent = 0
        try:
            # 4,000 replies of 100-byte source_ids in flight are more than
            # the share: only what it leaves unread inside the daemon counts.
            while sent < total or sum(statuses.values()) < total:
                while sent < total and sent - sum(statuses.values()) < window:
                    feed.send("custody", yjtest.custody_event(source_id=long_id("lone", sent)))
                    sent += 1
                r = feed.recv(30000)
                statuses[r[1]] = statuses.get(r[1], 0) + 1
        finally:
            feed.close()
        self.assertEqual(statuses, {b"OK": total})
        self.assertNotIn(self.OVER, self.log_since(log0))
        self.assertEqual(self.metric("yjlink_ingest_over_share_total"), over0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
