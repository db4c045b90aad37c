#!/usr/bin/python3
"""bench_report: the board report over a year of a large force (issue 15:
500,000 events reported in under 2 s within the 64 MiB private memory bar).

Runs the real yjlinkd on a minimal config with no rules (so that ingest
routes nothing and the daemon is idle when the report runs), feeds --events
events spread evenly over the 365 days before now over YJL1, pipelined as
bench_digest.py does (custody records of two messages each, detained then
a result, 60%; arrests 20%; voluntary interviews 10%; outcomes 10%; about
--children children), then times the wall clock of the real yjlinkctl:

    yjlinkctl --control ... report --from D --to D --format json|csv|html --out FILE

over the whole year, force-wide and for one YJS, --repeat times each. The
daemon's RssAnon (anonymous pages: heap, never the LMDB map, which is
file-backed) is sampled every 50 ms from /proc/PID/status during each run;
the peak is printed. A benchmark prints figures; it asserts none.

    bench/bench_report.py [--events N] [--children C] [--repeat R] [--build DIR] [--summary FILE]
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402

CONFIG = """
deployment = { id = "bench"; name = "Bench force"; force = "E23000029"; };
recipients = (
  { id = "yjs:milton-keynes"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    transport = "none"; allow = [ "child.*" ]; }
);
rules = ();
"""
LAS = ["E06000042", "E06000060", "E10000025", "E06000037", "E06000038", "E06000039", "E06000040", "E06000041"]
SUITES = ["TVP-MK", "TVP-SLO", "TVP-RDG"]
ETH = ["W1"] * 12 + ["W2", "W9", "A1", "A2", "B1", "B2", "M1", "M3", "O9", "NS"]
RESULTS = ["released_under_investigation", "released_nfa", "released_bail", "charged_bailed", "charged_remanded",
           "transferred_la_accommodation", "released_other"]
DISPOSALS = ["charge", "youth_caution", "community_resolution", "nfa", "outcome_21", "outcome_22"]
CODES = [1, 2, 3, 8, 15, 16, 21, 22]
# The kind of event i by i % 10: o/c a custody record's opening and closing message.
CYCLE = ["o", "c", "a", "o", "c", "v", "x", "o", "c", "a"]


def child(k, year):
    return {"person_id": "TVP-B%06d" % k, "given_name": "Alex", "family_name": "Bench-%d" % k,
            "date_of_birth": "%04d-%02d-%02d" % (year - 11 - k % 6, 1 + k % 12, 1 + k % 28),
            "gender": "female" if k % 5 == 0 else "male", "ethnicity": ETH[k % len(ETH)],
            "home_la": LAS[k % len(LAS)], "home_postcode": "MK9 2HP", "looked_after": k % 11 == 0,
            **({"responsible_la": LAS[k % len(LAS)]} if k % 11 == 0 else {})}


def mk_event(i, n, children, t0, span, tag, year):
    kind = CYCLE[i % 10]
    t = t0 + (i * span) // n
    k = (i * 2654435761) % children
    base = {"source_id": "br-%s-%d" % (tag, i), "force": "E23000029", "occurred_at": bl.utc(t)}
    if kind in "oc":
        j = i if kind == "o" else i - 1  # the record's opening message
        topen = t0 + (j * span) // n
        k = (j * 2654435761) % children
        ev = dict(base, child=child(k, year), custody={
            "record_id": "BR-%s-%d" % (tag, j), "suite": SUITES[j % 3], "arrived_at": bl.utc(topen - 900),
            "status": "detained" if kind == "o" else RESULTS[(j // 10) % len(RESULTS)],
            "status_at": bl.utc(t)})
        if kind == "c" and j % 3:
            ev["custody"]["appropriate_adult"] = {"name": "A Adult", "relationship": "parent",
                                                  "called_at": bl.utc(topen), "arrived_at": bl.utc(topen + 1800 + j % 3600)}
        return "custody", ev
    if kind == "a":
        return "arrest", dict(base, child=child(k, year), arrest={"arrest_id": "BA-%s-%d" % (tag, i),
                                                                 "arrested_at": bl.utc(t - 600), "summons": i % 7 == 0})
    if kind == "v":
        return "voluntary_interview", dict(base, child=child(k, year), interview={
            "interview_id": "BV-%s-%d" % (tag, i), "status": "held", "at": bl.utc(t - 600)})
    return "outcome", dict(base, child=child(k, year), outcome={
        "case_ref": "BO-%s-%d" % (tag, i), "code": CODES[i % len(CODES)], "decided_at": bl.utc(t - 600),
        "disposal": DISPOSALS[i % len(DISPOSALS)]})


def feed(daemon, items, window=2000):
    import zmq
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.connect(daemon.ingest)
    sent = got = ok = 0
    bad = []
    n = len(items)
    while got < n:
        while sent < n and sent - got < window:
            f, payload = items[sent]
            s.send_multipart([b"YJL1", f.encode(), b"application/json", payload])
            sent += 1
        if not s.poll(30000):
            raise SystemExit("bench_report: no reply for 30 s:\n" + daemon.read_log()[-2000:])
        fr = s.recv_multipart()
        got += 1
        if fr[1] == b"OK":
            ok += 1
        elif len(bad) < 3:
            bad.append(fr)
    s.close()
    return ok, bad


class HelperSampler(bl.AnonSampler):
    """Private memory of the daemon's report helpers (children of pid), every
    interval s: Private_Dirty of /proc/C/smaps_rollup, the pages a helper has
    of its own (what it shares copy-on-write with the daemon is counted in
    the daemon's figure already). .peak in bytes."""

    def _run(self):
        while not self._stop.is_set():
            try:
                with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                return
            for k in kids:
                try:
                    with open("/proc/%d/smaps_rollup" % k) as f:
                        for line in f:
                            if line.startswith("Private_Dirty:"):
                                self.peak = max(self.peak, int(line.split()[1]) * 1024)
                except OSError:
                    pass
            self._stop.wait(self.interval)


class IngestProbe:
    """One event at a time over YJL1 while the reports run: the round trips
    show whether a report holds the loop up (it is built in a helper)."""

    def __init__(self, daemon, tag):
        import zmq
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(daemon.ingest)
        self.tag, self.n, self.rtts = tag, 0, []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            self.n += 1
            ev = {"source_id": "probe-%s-%d" % (self.tag, self.n), "force": "E23000029",
                  "occurred_at": bl.utc(time.time() - 60), "child": child(self.n, time.gmtime().tm_year),
                  "arrest": {"arrest_id": "PA-%s-%d" % (self.tag, self.n), "arrested_at": bl.utc(time.time() - 120)}}
            t = time.monotonic()
            self.sock.send_multipart([b"YJL1", b"arrest", b"application/json", json.dumps(ev).encode()])
            if not self.sock.poll(30000):
                self.rtts.append(30.0)
                return
            self.sock.recv_multipart()
            self.rtts.append(time.monotonic() - t)
            self._stop.wait(0.01)

    def stop(self):
        self._stop.set()
        self._t.join()
        self.sock.close()
        return sorted(self.rtts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500000)
    ap.add_argument("--children", type=int, default=25000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--summary", help="write the figures as JSON here")
    args = ap.parse_args()
    yjtest = bl.set_build(args.build)
    work = tempfile.mkdtemp(prefix="yjbench-rp-")
    conf = os.path.join(work, "bench.conf")
    with open(conf, "w") as f:
        f.write(CONFIG)
    daemon = yjtest.Daemon(workdir=os.path.join(work, "d"), config=conf)
    os.makedirs(daemon.dir, exist_ok=True)
    figures = {}
    try:
        daemon.start()
        now = int(time.time()) - 3600
        span = 365 * 86400
        t0 = now - span
        year = time.gmtime(now).tm_year
        tag = "%d" % os.getpid()
        t = time.monotonic()
        ok, bad = 0, []
        for lo in range(0, args.events, 20000):
            items = []
            for i in range(lo, min(args.events, lo + 20000)):
                fd, ev = mk_event(i, args.events, args.children, t0, span, tag, year)
                items.append((fd, json.dumps(ev, separators=(",", ":")).encode()))
            k, b = feed(daemon, items)
            ok += k
            bad += b
        t_feed = time.monotonic() - t
        print("fed %d events (%d OK%s) in %.1f s (%.0f/s)" % (args.events, ok, (", e.g. %s" % bad[0]) if bad else "",
                                                              t_feed, args.events / t_feed))
        d_from = datetime.date.fromtimestamp(t0).isoformat()
        d_to = datetime.date.fromtimestamp(now).isoformat()
        base = [yjtest.YJLINKCTL, "--control", daemon.control, "--timeout", "120"]
        worst, peak_all, helper_all = 0.0, 0, 0
        # The same probe with no report running first: what the round trips are anyway on this machine.
        probe = IngestProbe(daemon, tag + "-idle")
        time.sleep(5)
        idle = probe.stop()
        probe = IngestProbe(daemon, tag)
        for scope in ([], ["--yjs", "yjs:milton-keynes"]):
            for fmt in ("json", "csv", "html"):
                times, peak, size = [], 0, 0
                out = os.path.join(work, "report." + fmt)
                for _ in range(args.repeat):
                    sampler = bl.AnonSampler(daemon.proc.pid, 0.05)
                    helpers = HelperSampler(daemon.proc.pid, 0.05)
                    t = time.monotonic()
                    p = subprocess.run(base + ["report", "--from", d_from, "--to", d_to, "--format", fmt, "--out", out]
                                       + scope, capture_output=True, text=True, timeout=600)
                    times.append(time.monotonic() - t)
                    peak = max(peak, sampler.stop())
                    helper_all = max(helper_all, helpers.stop())
                    if p.returncode != 0:
                        raise SystemExit("bench_report: yjlinkctl report: exit %d: %s" % (p.returncode, p.stderr))
                    size = os.path.getsize(out)
                name = "%s %s" % ("force" if not scope else scope[1], fmt)
                print("report %-22s %s..%s: %d runs: min %.3f  median %.3f  max %.3f s; output %d bytes; "
                      "peak RssAnon %.1f MiB" % (name, d_from, d_to, len(times), min(times), statistics.median(times),
                                                 max(times), size, bl.mib(peak)))
                figures[name] = {"median_s": statistics.median(times), "max_s": max(times), "peak_anon_mib": bl.mib(peak)}
                worst = max(worst, max(times))
                peak_all = max(peak_all, peak)
        rtts = probe.stop()
        with open(os.path.join(work, "report.json")) as f:
            rep = json.load(f)
        print("year (one YJS, last run): %s detentions, %s children detained" %
              (rep["figures"]["detentions"]["value"], rep["figures"]["children_detained"]["value"]))
        for line in daemon.read_log().splitlines():
            if "control: report" in line:
                last = line
        print("daemon: %s" % last)
        mem = bl.memory(daemon.proc.pid, daemon.store)
        print("bar: <= 2 s: slowest %.3f s, %s" % (worst, "met" if worst <= 2 else "MISSED by %.3f s" % (worst - 2)))
        print("PEAK private (anonymous) memory during the reports, sampled every 50 ms: %.1f MiB (bar 64 MiB: %s); "
              "after them: private %.1f MiB, anonymous %.1f MiB" %
              (bl.mib(peak_all), "met" if peak_all <= 64 << 20 else "MISSED", bl.mib(mem["private"]),
               bl.mib(mem["anon"])))
        print("PEAK private memory of a report helper process (Private_Dirty, sampled every 50 ms): %.1f MiB "
              "(bar 64 MiB: %s)" % (bl.mib(helper_all), "met" if helper_all <= 64 << 20 else "MISSED"))
        for name, r in (("with no report running", idle), ("while the reports were built", rtts)):
            print("ingest %s: %d round trips, median %.1f ms, p99 %.1f ms, longest %.1f ms" %
                  (name, len(r), 1000 * statistics.median(r), 1000 * bl.pct(r, 99), 1000 * r[-1]))
        figures.update({"events": args.events, "feed_s": t_feed, "worst_s": worst, "peak_anon_mib": bl.mib(peak_all),
                        "helper_private_mib": bl.mib(helper_all), "ingest_rtt_max_ms": 1000 * rtts[-1],
                        "ingest_rtt_p99_ms": 1000 * bl.pct(rtts, 99)})
        if args.summary:
            with open(args.summary, "w") as f:
                json.dump(figures, f, indent=1)
    finally:
        daemon.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
