#!/usr/bin/python3
"""bench_startup: start to READY (spec/quality.md "start-up": <= 1 s with
10,000,000 events stored, measured at that size, not extrapolated).

Builds the store with build/bench_fill, which hands yjlink-sim's history
(a year of a large force, JSON as the feeds send it) to the daemon's own
ingest without ZeroMQ or routing:

    yjlink-sim --stdout --days 365 --per-day E/365 --count E | bench_fill DIR/store

(--store DIR/store uses a store built before and keeps it), then starts the
real yjlinkd on the shipped conf/yjlinkd.conf with that store, --runs
times, timing exec to READY=1 on a NOTIFY_SOCKET of our own, each stopped
by SIGTERM half a second after READY. Twice over: with the store's pages in
the page cache as the fill left them (warm: a restart), and with data.mdb
evicted from the page cache before each start (posix_fadvise DONTNEED on
that one file: a boot, or a store not read for a long time). The figure
held against the bar is the slowest start of either. The store lives under
--dir (default /tmp) and is deleted at the end unless --store named it.
A benchmark prints figures; it asserts none.

    bench/bench_startup.py [--events N] [--runs R] [--dir DIR] [--store DIR] [--build DIR] [--summary FILE]
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402

BAR_S = 1.0
BYTES_PER_EVENT = 650       # bench_fill's store: 5.6 GiB for 10,000,000 events


def evict(path):
    """Drop path's pages from the page cache (that file only)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def fill(yjtest, build, store, n):
    per_day = max(1, n // 365 + 1)
    sim = [yjtest.YJLINK_SIM, "--stdout", "--days", "365", "--per-day", str(per_day), "--count", str(n), "--quiet"]
    filler = [os.path.join(build, "bench_fill"), store]
    print("$ %s | %s" % (" ".join(sim[1:]), " ".join(filler)), flush=True)
    err = store + ".fill-err"
    os.makedirs(os.path.dirname(store), exist_ok=True)
    t0 = time.monotonic()
    with open(err, "w") as ef:
        a = subprocess.Popen(sim, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        b = subprocess.run(filler, stdin=a.stdout, stdout=subprocess.PIPE, stderr=ef, text=True)
        a.stdout.close()
        a.wait()
    line = b.stdout.strip()
    print("bench_fill: %s (%.0f s in all)" % (line, time.monotonic() - t0), flush=True)
    if b.returncode:
        with open(err) as f:
            print("bench_fill failed: " + f.read()[-2000:])
        return None
    os.unlink(err)
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def ready_once(yjtest, workdir, store, cold):
    """Seconds from exec to READY=1, and the events the daemon then says it holds."""
    if cold:
        evict(os.path.join(store, "data.mdb"))
    path = os.path.join(workdir, "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(120)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    d = yjtest.Daemon(workdir=workdir, config=os.path.join(bl.SOURCE, "conf", "yjlinkd.conf"),
                      sets={"store.path": store})
    d.log = open(d.log_path, "ab")
    try:
        t0 = time.monotonic()
        d.proc = subprocess.Popen(d.argv(), stdout=d.log, stderr=d.log, env=env)
        while "READY=1" not in s.recv(4096).decode(errors="replace").split("\n"):
            pass
        t = time.monotonic() - t0
        time.sleep(1.1)  # /metrics is rendered once a second
        events = bl.metrics(d).get("yjlink_store_events", 0)
    finally:
        s.close()
        bl.stop_daemon(d, 60)
    return t, events


def run(args):
    yjtest = bl.set_build(args.build)
    build = os.environ["YJ_BUILD_DIR"]
    own = args.store is None
    base = tempfile.mkdtemp(prefix="yjbench-start-", dir=args.dir)
    store = args.store or os.path.join(base, "store")
    out = {}
    try:
        if own:
            free = shutil.disk_usage(base).free
            need = 2 * BYTES_PER_EVENT * args.events
            if free < need:
                print("bench_startup: %s has %.1f GiB free, %.1f GiB wanted for %d events: not run" %
                      (base, free / 2**30, need / 2**30, args.events))
                return 1
            f = fill(yjtest, build, store, args.events)
            if f is None:
                return 1
            out["fill_s"] = float(f.get("elapsed", 0))
        du = sum(os.path.getsize(os.path.join(store, n)) for n in os.listdir(store))
        figures = {}
        for cold in (False, True):
            ts, events = [], 0
            for _ in range(args.runs):
                t, events = ready_once(yjtest, base, store, cold)
                ts.append(t)
            what = "data.mdb evicted from the page cache" if cold else "store in the page cache"
            print("start to READY=1 with %d events stored (%s): %s s; slowest %.3f s" %
                  (events, what, ", ".join("%.3f" % t for t in ts), max(ts)), flush=True)
            figures["cold" if cold else "warm"] = ts
            out["events"] = events
        worst = max(max(v) for v in figures.values())
        n = out.get("events", 0)
        print("store: %.1f GiB on disk" % (du / 2**30))
        print("start-up, slowest of %d: %.3f s to READY with %d events stored (bar <= %.0f s with 10,000,000: %s)" %
              (2 * args.runs, worst, n, BAR_S, ("met" if worst <= BAR_S else "MISSED") if n >= 10000000
               else "not the bar's size"))
        out.update({"ready_s": worst, "warm_s": max(figures["warm"]), "cold_s": max(figures["cold"]),
                    "store_gib": du / 2**30})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(out, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10000000)
    ap.add_argument("--runs", type=int, default=3, help="starts timed, warm and cold each")
    ap.add_argument("--dir", default="/tmp", help="where the store is built (and deleted)")
    ap.add_argument("--store", help="a store built before: use it, keep it")
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--summary", help="write the figures as JSON here (for bench/run)")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
