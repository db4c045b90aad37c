#!/usr/bin/python3
"""bench_retention: ingest latency while retention erases a large backlog
(issue "security and lawful processing", item 3: "measure ingest latency
during a purge of 1M events").

Runs the real yjlinkd (embedded default config, test clock) and the real
simulator: N events of history are stored at T0, the daemon's clock moves
past retention.event_days, and `yjlinkctl purge` erases them in its batches
of 250 while a probe client sends one event every 20 ms and times each
round trip. Prints the purge's duration and rate and the probe's round trips
before and during the purge. A benchmark prints figures; it asserts none.

    bench/bench_retention.py [--count N] [--build DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402

DAY = 86400


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Probe(threading.Thread):
    def __init__(self, yjtest, endpoint):
        super().__init__(daemon=True)
        self.yjtest, self.endpoint = yjtest, endpoint
        self.samples = []  # (monotonic time, round trip s, status)
        self.stop_ev = threading.Event()

    def run(self):
        f = self.yjtest.Feed(self.endpoint)
        try:
            while not self.stop_ev.is_set():
                t0 = time.monotonic()
                try:
                    r = f.request("custody", self.yjtest.custody_event())
                    status = r[1].decode()
                except TimeoutError:
                    status = "timeout"
                self.samples.append((t0, time.monotonic() - t0, status))
                self.stop_ev.wait(0.02)
        finally:
            f.close()


def summary(samples, t_from, t_to):
    rtts = sorted(s[1] for s in samples if t_from <= s[0] < t_to)
    bad = sum(1 for s in samples if t_from <= s[0] < t_to and s[2] != "OK")
    if not rtts:
        return "no probes"
    return "%d probes, p50 %.1f ms, p99 %.1f ms, max %.1f ms, not OK %d" % (
        len(rtts), 1000 * bl.pct(rtts, 50), 1000 * bl.pct(rtts, 99), 1000 * rtts[-1], bad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--build", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = ap.parse_args()
    yjtest = bl.set_build(args.build)
    t0 = int(time.time())
    d = yjtest.Daemon(sets={"testing.clock_control": "true", "testing.clock_start": iso(t0),
                            "retention.event_days": "1"}).start()
    try:
        days = max(1, args.count // 3000)
        argv = [yjtest.YJLINK_SIM, "--endpoint", d.ingest, "--seed", "3", "--now", iso(t0), "--days", str(days),
                "--per-day", "3000", "--count", str(args.count), "--window", "8192", "--quiet"]
        t = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True)
        print("filled: %s (%.1f s)" % (p.stdout.strip(), time.monotonic() - t))
        code, st = d.ctl_request("clock", {"set": iso(t0 + 2 * DAY)})
        _, due = d.ctl_request("purge", {"dry_run": True}, timeout_ms=60000)
        print("due: %d events" % due["events"])

        probe = Probe(yjtest, d.ingest)
        probe.start()
        time.sleep(2)
        t_start = time.monotonic()
        d.ctl_request("purge", {}, timeout_ms=60000)
        while True:
            _, left = d.ctl_request("purge", {"dry_run": True}, timeout_ms=60000)
            if left["events"] == 0:
                break
            time.sleep(0.2)
        t_end = time.monotonic()
        time.sleep(1)
        probe.stop_ev.set()
        probe.join()
        dur = t_end - t_start
        print("purge: %d events erased in %.1f s = %.0f events/s (batches of 250, one per loop turn)"
              % (due["events"], dur, due["events"] / dur if dur else 0))
        print("ingest before the purge: " + summary(probe.samples, 0, t_start))
        print("ingest during the purge: " + summary(probe.samples, t_start, t_end))
        print("ingest after the purge:  " + summary(probe.samples, t_end, float("inf")))
    finally:
        d.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
