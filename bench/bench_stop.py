#!/usr/bin/python3
"""bench_stop: the stop (spec/quality.md "stop": <= 2 s from SIGTERM to
exit, also with 350,000 notifications waiting in the outbox and SMTP
transfers under way).

Runs the real yjlinkd on the shipped conf/yjlinkd.conf with its SMTP relay
and webhook URLs pointed at hostile receivers of this benchmark, each in its
own process: tests/integration/smtp_receiver.py --mode hang (it never
answers the end of DATA: every email worker is stuck there) and
tests/integration/http_receiver.py --mode slow (each POST answered after
--slow seconds: a window of them always under way). yjlink-sim fills the
store in live mode until the outbox holds about --outbox notifications:

    yjlink-sim --endpoint E --rate 1000000 --count N --window 8192 --quiet

then, --rounds times: wait until an email is stuck at the end of DATA and a
POST is being read, SIGTERM, and time until the process has exited (its
exit status and whether the 15 s last-resort bound fired are printed); then
start it again on the same store and time start to READY=1 (on a
NOTIFY_SOCKET of our own) with that outbox. The figure held against the bar
is the slowest stop. A benchmark prints figures; it asserts none.

    bench/bench_stop.py [--outbox N] [--rounds R] [--slow S] [--build DIR] [--summary FILE]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402
from bench_backfill import ready_time  # noqa: E402

INTEGRATION = os.path.join(bl.SOURCE, "tests", "integration")
# Live mode with the shipped rules routes a little over half an event to the
# outbox on average (the rest goes to digests or waits unroutable).
PER_EVENT = 0.53
BAR_S = 2.0


class Hostile:
    """The hung relay and the slow webhook receiver, each in its own process."""

    def __init__(self, workdir, slow):
        self.maildir = os.path.join(workdir, "mail")
        self.http_log = os.path.join(workdir, "webhooks.jsonl")
        py = sys.executable
        self.smtp = subprocess.Popen([py, os.path.join(INTEGRATION, "smtp_receiver.py"), "--port", "0", "--mode",
                                      "hang", "--maildir", self.maildir], stdout=subprocess.PIPE, text=True)
        self.smtp_port = int(self.smtp.stdout.readline().split()[1])
        self.http = subprocess.Popen([py, os.path.join(INTEGRATION, "http_receiver.py"), "--port", "0", "--mode",
                                      "slow", "--delay", str(slow), "--log", self.http_log],
                                     stdout=subprocess.PIPE, text=True)
        self.http_port = int(self.http.stdout.readline().split()[1])

    @staticmethod
    def _lines(path):
        try:
            with open(path, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def stuck(self):
        """Ends of DATA left waiting so far (the relay never answers one)."""
        return self._lines(os.path.join(self.maildir, "waiting.jsonl"))

    def posts(self):
        """POSTs read so far."""
        return self._lines(self.http_log)

    def stop(self):
        bl.end_processes((self.smtp, self.http))


def wait_under_way(rx, daemon, stuck0, posts0, timeout=120):
    """Until a new email is stuck at the end of DATA and a new POST was read; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.proc.poll() is not None:
            return False
        if rx.stuck() > stuck0 and rx.posts() > posts0:
            # The slow receiver answers after --slow s: another is read by then.
            return True
        time.sleep(0.05)
    return False


def run(args):
    yjtest = bl.set_build(args.build)
    work = tempfile.mkdtemp(prefix="yjbench-stop-")
    rx = Hostile(work, args.slow)
    daemon = None
    out = {}
    try:
        daemon = bl.start_daemon(yjtest, work, rx, clock=False)
        count = int(args.outbox / PER_EVENT)
        argv = [yjtest.YJLINK_SIM, "--endpoint", daemon.ingest, "--rate", "1000000", "--count", str(count),
                "--window", "8192", "--quiet"]
        print("$ " + " ".join(argv[1:]), flush=True)
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True)
        line = (p.stdout.strip().splitlines() or [""])[-1]
        print("yjlink-sim: %s (%.1f s)" % (line, time.monotonic() - t0))
        if " ok=0 " in " %s " % line or "ok=" not in line:
            # It exits 1 for the few events ingest refuses by design; no OK at all is a failure.
            print("yjlink-sim exit %d: %s" % (p.returncode, p.stderr[-1000:]))
            return 1
        time.sleep(1.1)  # /metrics is rendered once a second
        depth = bl.metrics(daemon).get("yjlink_outbox_depth", 0)
        print("outbox: %d notifications waiting (aimed at %d)" % (depth, args.outbox), flush=True)
        stops, readies, problems = [], [], []
        stuck0 = posts0 = 0
        for r in range(args.rounds):
            if not wait_under_way(rx, daemon, stuck0, posts0):
                problems.append("round %d: no transfer under way within 120 s" % (r + 1))
                print(problems[-1])
            stuck, posts = rx.stuck(), rx.posts()
            log_at = len(daemon.read_log())
            t, clean = bl.stop_daemon(daemon, 60)
            code = daemon.proc.returncode
            tail = daemon.read_log()[log_at:]
            bound = "cleanup took over" in tail
            left = [l for l in tail.splitlines() if "deliveries under way left in the outbox" in l]
            stops.append(t)
            print("round %d: SIGTERM with %d notifications in the outbox, %d emails stuck at the end of DATA so far, "
                  "%d POSTs read so far: exited %s after %.2f s%s%s" %
                  (r + 1, depth, stuck, posts, code, t, "" if clean else " (killed after 60 s)",
                   " (the 15 s last-resort bound fired)" if bound else ""))
            if left:
                print("  its log: %s" % left[-1].split("outbox: ", 1)[-1])
            if code != 0 or not clean or bound:
                problems.append("round %d: exit %s%s" % (r + 1, code, ", last-resort bound" if bound else ""))
            # What the receivers saw of the daemon just stopped: what comes after is the next one's
            # (which may reach the end of DATA before READY is caught).
            stuck0, posts0 = rx.stuck(), rx.posts()
            t_ready = ready_time(yjtest, daemon)
            readies.append(t_ready)
            print("  restart to READY=1 with that outbox: %.3f s" % t_ready, flush=True)
        worst = max(stops)
        print("stop, slowest of %d: %.2f s from SIGTERM to exit (bar <= %.0f s: %s)" %
              (len(stops), worst, BAR_S, "met" if worst <= BAR_S and not problems else "MISSED"))
        out = {"stop_s": worst, "stops": stops, "outbox": depth, "ready_s": max(readies), "problems": problems,
               "clean": not problems}
    finally:
        bl.wind_up(daemon, rx, work, args.summary, out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outbox", type=int, default=350000, help="notifications to fill the outbox with (about)")
    ap.add_argument("--rounds", type=int, default=3, help="stops timed (each followed by a restart)")
    ap.add_argument("--slow", type=float, default=1.0, help="the webhook receiver's seconds per request")
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--summary", help="write the figures as JSON here (for bench/run)")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
