"""Hostile SMTP relays (issue 11 item 1, "nothing blocks the loop").

libcurl's SMTP end-of-DATA wait blocks the thread that drives it; when that
was the event loop, a relay taking 3 s per message froze ingest, webhooks,
control and the watchdog. out_email now sends from worker threads, so a
slow or hung relay delays only its own messages. Against the real daemon
(the shipped default config, its loopback addresses pointed at this test's
receivers) with real peers (smtp_receiver.py, http_receiver.py, a YJL1
DEALER, the control socket, a NOTIFY_SOCKET datagram socket as the service
manager's end):

- SlowRelayTest: a relay that answers every end of DATA after 3 s. While
  a few hundred custody events are fed, each routed to an email recipient
  (remand_alert to yjs:milton-keynes) and to a webhook one (pace_transfer
  to children_services:E06000042): WATCHDOG=1 keeps arriving at its
  interval, every YJL1 request gets its OK, control answers, every webhook
  is delivered; once the relay is quick again every email arrives.
- HungRelayTest: a relay that never answers the end of DATA. The same,
  then a stop while transfers are stuck (it does not wait for them), and
  after a restart, with the relay answering, every email arrives, those
  that were stuck with the Message-ID they had.

No timing is asserted but the structural bound on the watchdog's gaps
(explained at WATCHDOG_GAP_FACTOR); the figures (gaps, ingest round
trips, stop time) are printed for the record.

Run with /usr/bin/python3 (Debian's python3-zmq and python3-aiosmtpd).
"""
import email
import email.policy
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "120"))   # deadline of every wait for something to happen
WATCHDOG_USEC = 2000000                                # the daemon pings every WATCHDOG_USEC / 2
INTERVAL_S = WATCHDOG_USEC / 2e6
# The loop pings every INTERVAL_S from a timer. On a busy 2-core test
# machine (ASan build, `stress`) a timer may fire late by a fraction of the
# interval, so a gap somewhat over INTERVAL_S means nothing; 3x leaves room
# for that. A loop held by curl's end-of-DATA wait misses it by a whole
# relay delay per message (3 s here, or the timeout for a hung relay), and
# the old adapter held it for several such waits in a row: 33-60 s gaps
# with a 30 s watchdog. So a gap over 3x is a blocked loop, never noise.
WATCHDOG_GAP_FACTOR = 3
WINDOW_S = 15.0          # how long each hostile relay is watched: many intervals
N_EVENTS = 300           # YJL1 requests fed during that window
SLOW_S = 3.0             # the slow relay's delay per message
HUNG_TIMEOUT_MS = 3000   # email.timeout_ms against the hung relay
FEED_SLACK_S = 30.0      # how far past the window the feeding may run before it counts as held up


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Notify:
    """The service manager's end of NOTIFY_SOCKET, read by a thread of its own."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.seen = []           # (monotonic time received, {KEY: VALUE})
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            msg = dict(l.split("=", 1) for l in data.decode("utf-8", "replace").split("\n") if "=" in l)
            with self.lock:
                self.seen.append((now, msg))

    def times(self, key, value, since=0.0):
        with self.lock:
            return [t for t, m in self.seen if m.get(key) == value and t >= since]

    def wait_for(self, key, value, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.times(key, value):
                return
            time.sleep(0.05)
        raise AssertionError("no %s=%s within %ss" % (key, value, timeout))

    def close(self):
        self.running = False
        self.thread.join(5)
        self.sock.close()


def distinct_ports(n):
    """n free ports, all different: each is held until all are picked
    (yjtest.free_port, one at a time, was seen to give the same port twice)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def remand_event():
    """A Milton Keynes child charged and remanded: an email and a webhook (routing.md)."""
    ev = yjtest.custody_event()
    ev["custody"]["status"] = "charged_remanded"
    return ev


class HostileBase(unittest.TestCase):
    smtp_mode = "250"
    sets = {}

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjhostile-")
        self.http = HttpReceiver().start()
        self.smtp = SmtpReceiver(mode=self.smtp_mode, delay=SLOW_S).start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read().replace("http://127.0.0.1:8088", self.http.url.rstrip("/"))
        self.conf = os.path.join(self.dir, "yjlinkd.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.notify = Notify(os.path.join(self.dir, "notify.sock"))
        sets = {
            "email.smtp_url": "smtp://127.0.0.1:%d" % self.smtp.port,
            "delivery.backoff_min_ms": "100",
            "delivery.backoff_max_ms": "1000",
        }
        sets.update(self.sets)
        ingest, notify, metrics = distinct_ports(3)
        sets.update({
            "ingest.endpoint": "tcp://127.0.0.1:%d" % ingest,
            "notify.endpoint": "tcp://127.0.0.1:%d" % notify,
            "metrics.endpoint": "127.0.0.1:%d" % metrics,
        })
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf, sets=sets)
        self.daemon.ingest = sets["ingest.endpoint"]
        self.daemon.notify = sets["notify.endpoint"]

    def tearDown(self):
        self.daemon.kill()
        self.notify.close()
        self.smtp.stop()
        self.http.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_daemon(self):
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env.update(NOTIFY_SOCKET=self.notify.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
        d = self.daemon
        d.log = open(d.log_path, "ab")
        d.proc = subprocess.Popen(d.argv(), stdout=d.log, stderr=d.log, env=env)
        d.wait_ready()

    def fail_with_log(self, msg):
        self.fail("%s\n--- yjlinkd log (tail):\n%s" % (msg, self.daemon.read_log()[-6000:]))

    # --- what the relay got

    def emails(self):
        """{notification id: Message-ID} of every remand_alert email accepted so far."""
        got = {}
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            if " remand_alert " in str(msg["Subject"]):
                got[str(msg["X-Yjlink-Notification-Id"])] = str(msg["Message-ID"])
        return got

    def wait_emails(self, n):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            got = self.emails()
            if len(got) >= n:
                return got
            time.sleep(0.2)
        self.fail_with_log("%d of %d emails after %ss" % (len(self.emails()), n, WAIT))

    def pace_webhooks(self):
        n = 0
        for r in self.http.snapshot():
            try:
                n += json.loads(r["body"]).get("kind") == "pace_transfer"
            except ValueError:
                pass
        return n

    # --- the hostile window

    def feed_during_window(self):
        """N_EVENTS YJL1 requests spread over WINDOW_S, each waited for; a
        control request now and then. Returns (round trips in s, window start, end)."""
        feed = yjtest.Feed(self.daemon.ingest)
        rtts = []
        t0 = time.monotonic()
        try:
            for i in range(N_EVENTS):
                pause = t0 + WINDOW_S * i / N_EVENTS - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                s = time.monotonic()
                try:
                    r = feed.request("custody", remand_event())
                except TimeoutError:
                    self.fail_with_log("request %d of %d unanswered for 10 s" % (i + 1, N_EVENTS))
                rtts.append(time.monotonic() - s)
                self.assertEqual(r[1], b"OK", r)
                # A loop held by curl answers each request late but within
                # the 10 s above: bound the whole, or that takes hours.
                if time.monotonic() - t0 > WINDOW_S + FEED_SLACK_S:
                    self.fail_with_log("ingest fell behind: %d of %d requests answered in %.0f s, the slowest in "
                                       "%.1f s; largest gap between WATCHDOG=1 pings %.1f s"
                                       % (i + 1, N_EVENTS, time.monotonic() - t0, max(rtts),
                                          self.largest_gap(t0, time.monotonic())))
                if i % 50 == 25:
                    code, st = self.daemon.ctl_request("status", timeout_ms=10000)
                    self.assertEqual(code, 0, st)
        finally:
            feed.close()
        rest = t0 + WINDOW_S - time.monotonic()
        if rest > 0:
            time.sleep(rest)
        return rtts, t0, time.monotonic()

    def watchdog_gaps(self, t0, t1):
        """The WATCHDOG=1 pings in [t0, t1] and the gaps between them (and the window's ends)."""
        pings = [t for t in self.notify.times("WATCHDOG", "1", since=t0) if t <= t1]
        edges = [t0] + pings + [t1]
        return pings, [b - a for a, b in zip(edges, edges[1:])]

    def largest_gap(self, t0, t1):
        return max(self.watchdog_gaps(t0, t1)[1])

    def check_window(self, what, rtts, t0, t1):
        self.assertEqual(len(rtts), N_EVENTS)
        pings, gaps = self.watchdog_gaps(t0, t1)
        ms = sorted(x * 1000 for x in rtts)
        log("%s: %d WATCHDOG=1 in %.1f s (interval %.1f s), largest gap %.2f s; ingest round trips of %d requests: "
            "median %.1f ms, p99 %.1f ms, max %.1f ms; %d emails accepted by then"
            % (what, len(pings), t1 - t0, INTERVAL_S, max(gaps), len(ms), statistics.median(ms),
               ms[int(len(ms) * 0.99) - 1], ms[-1], len(self.emails())))
        self.assertGreaterEqual(len(pings), int((t1 - t0) / (WATCHDOG_GAP_FACTOR * INTERVAL_S)), pings)
        self.assertLessEqual(max(gaps), WATCHDOG_GAP_FACTOR * INTERVAL_S,
                             "a gap of %.2f s between WATCHDOG=1 pings: the loop was held" % max(gaps))
        # Webhooks kept going too: every event's pace_transfer POST, while
        # the relay is still hostile.
        deadline = time.monotonic() + WAIT
        while self.pace_webhooks() < N_EVENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.pace_webhooks(), N_EVENTS)


class SlowRelayTest(HostileBase):
    smtp_mode = "slow"

    def test_slow_relay_blocks_nothing_else(self):
        self.start_daemon()
        self.notify.wait_for("WATCHDOG", "1", 10)
        rtts, t0, t1 = self.feed_during_window()
        self.check_window("relay taking %.0f s per message" % SLOW_S, rtts, t0, t1)
        # The relay did make the daemon wait at the end of DATA.
        self.assertGreater(len(self.smtp.waited), 0)
        # It recovers: every email arrives.
        self.smtp.mode = "250"
        got = self.wait_emails(N_EVENTS)
        self.assertEqual(len(got), N_EVENTS)


class HungRelayTest(HostileBase):
    smtp_mode = "hang"
    sets = {"email.timeout_ms": str(HUNG_TIMEOUT_MS)}

    def test_hung_relay_blocks_nothing_else(self):
        self.start_daemon()
        self.notify.wait_for("WATCHDOG", "1", 10)
        rtts, t0, t1 = self.feed_during_window()
        self.check_window("relay never answering the end of DATA", rtts, t0, t1)
        self.assertEqual(self.emails(), {})

        # A stop does not wait for the stuck transfers (issue 14: within 2 s).
        # Stop while one is surely stuck: the outbox backs the recipient off
        # after each timeout, so there are moments with none.
        deadline = time.monotonic() + WAIT
        while self.smtp.waiting == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        n_stuck = self.smtp.waiting
        self.assertGreater(n_stuck, 0)
        t = time.monotonic()
        self.daemon.proc.send_signal(signal.SIGTERM)
        try:
            code = self.daemon.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail_with_log("yjlinkd still running 30 s after SIGTERM with transfers stuck")
        log("stop with %d transfers stuck at the end of DATA: %.2f s" % (n_stuck, time.monotonic() - t))
        self.assertEqual(code, 0, self.daemon.read_log()[-4000:])
        self.daemon.log.close()
        # Every message the relay held at its end of DATA, those at the stop among them.
        stuck = {}
        for w in list(self.smtp.waited):
            msg = email.message_from_bytes(w["data"], policy=email.policy.default)
            # The remand alerts this test sends (the duty recipient's notices go the same way).
            if " remand_alert " in str(msg["Subject"]):
                stuck[str(msg["X-Yjlink-Notification-Id"])] = str(msg["Message-ID"])

        # The relay answers again; after a restart every email arrives,
        # those abandoned at the stop with the Message-ID they had.
        self.smtp.mode = "250"
        self.start_daemon()
        got = self.wait_emails(N_EVENTS)
        self.assertEqual(len(got), N_EVENTS)
        self.assertGreater(len(stuck), 0)
        for nid, mid in stuck.items():
            self.assertEqual(got.get(nid), mid, nid)


if __name__ == "__main__":
    unittest.main()
