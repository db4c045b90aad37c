#!/usr/bin/python3
"""bench_backfill: a history replayed through YJL1 (spec/quality.md
"backfill": 1,000,000 events stored and routed in <= 30 s; "memory":
private (non-mmap) RSS <= 64 MiB).

Runs the real yjlinkd on the shipped conf/yjlinkd.conf with its webhook URLs
and SMTP server pointed at receivers of this benchmark (real clock), and
times the real simulator. The SMTP receiver is bench/smtp_sink.c (built as
<build>/smtp_sink), which counts messages and keeps none: this benchmark
reads no mail, and the Python receiver (aiosmtpd) took about 0.7 of a core
of a 2-core machine for the ~700 messages/s sent meanwhile:

    yjlink-sim --endpoint E --days D --per-day K --count 1000000 --window 8192 --quiet

Routing is part of the ingest transaction (the transactional outbox): an
event answered OK is stored and routed, so the sim's last reply ends the
measured interval. Immediate notifications are delivered meanwhile by the
same daemon (one at a time per recipient); how far that got is printed, not
waited for. Memory (see bench_latency.memory for the method): RssAnon of the
daemon sampled every 0.25 s during the replay (its peak), and at the end
the sum of Private_Clean + Private_Dirty over every mapping but the LMDB
files. Finally the daemon is stopped and started again on the filled store
and the time to READY=1 (sd_notify, caught on our own NOTIFY_SOCKET) is
printed: the start-up bar is for 10,000,000 events, this is 1/10 of that.
A benchmark prints figures; it asserts none.

    bench/bench_backfill.py [--count N] [--days D] [--per-day K] [--window W] [--build DIR] [--summary FILE]
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402


def ready_time(yjtest, daemon):
    """Start daemon (stopped) with NOTIFY_SOCKET ours; seconds until READY=1."""
    path = os.path.join(daemon.dir, "notify.sock")
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(120)
    old = os.environ.get("NOTIFY_SOCKET")
    os.environ["NOTIFY_SOCKET"] = path
    try:
        t0 = time.monotonic()
        daemon.start(wait=False)
        while True:
            msg = s.recv(4096).decode(errors="replace")
            if "READY=1" in msg.split("\n"):
                return time.monotonic() - t0
    finally:
        if old is None:
            del os.environ["NOTIFY_SOCKET"]
        else:
            os.environ["NOTIFY_SOCKET"] = old
        s.close()


def run(args):
    yjtest = bl.set_build(args.build)
    work = tempfile.mkdtemp(prefix="yjbench-bf-")
    rx = bl.Receivers(work, smtp="sink")
    daemon = None
    out = {}
    try:
        daemon = bl.start_daemon(yjtest, work, rx, clock=False)
        pid = daemon.proc.pid
        argv = [yjtest.YJLINK_SIM, "--endpoint", daemon.ingest, "--days", str(args.days), "--per-day",
                str(args.per_day), "--count", str(args.count), "--window", str(args.window), "--quiet"]
        print("$ " + " ".join(argv[1:]))
        sampler = bl.AnonSampler(pid)
        cpu0 = bl.cpu_seconds(pid)
        t0 = time.monotonic()
        p = subprocess.run(argv, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        cpu = bl.cpu_seconds(pid) - cpu0
        peak = sampler.stop()
        line = (p.stdout.strip().splitlines() or [""])[-1]
        if p.returncode != 0:
            print("yjlink-sim exit %d: %s %s" % (p.returncode, line, p.stderr[-1000:]))
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        ok = int(f.get("ok", 0))
        mem = bl.memory(pid, daemon.store)
        time.sleep(1.1)
        m = bl.metrics(daemon)
        stored = m.get("yjlink_store_events", 0)
        routed_depth = m.get("yjlink_outbox_depth", 0)
        delivered = sum(v for k, v in m.items() if k.startswith("yjlink_deliveries_total") and 'result="ok"' in k)
        emailed = sum(v for k, v in m.items() if k.startswith("yjlink_deliveries_total") and 'result="ok"' in k
                      and 'transport="email"' in k)
        sink_then = rx.sink_stats()["messages"]
        commits = m.get("yjlink_commit_seconds_count", 0)
        rate = ok / elapsed if elapsed > 0 else 0
        print("yjlink-sim: %s" % line)
        print("backfill: %d events OK in %.2f s = %.0f events/s (store holds %d events; %d group commits, "
              "mean %.1f ms)" % (ok, elapsed, rate, stored, commits,
                                 1000 * m.get("yjlink_commit_seconds_sum", 0) / commits if commits else 0))
        if ok >= 1000000:
            print("bar: 1,000,000 in <= 30 s: %.2f s, %s" % (elapsed, "met" if elapsed <= 30 else
                                                              "MISSED by %.2f s (x%.2f)" % (elapsed - 30, elapsed / 30)))
        else:
            print("bar: 1,000,000 in <= 30 s: not measured (%d events OK; at this rate 1,000,000 would take %.1f s)" %
                  (ok, 1000000 / rate if rate else float("inf")))
        print("immediate notifications meanwhile: %d delivered, %d still in the outbox (one at a time per "
              "recipient; not waited for)" % (delivered, routed_depth))
        print("  of which by email: %d delivered (the SMTP sink had received %d messages by then)" %
              (emailed, sink_then))
        print("daemon CPU: %.1f s over %.1f s (%.0f%% of one core)" % (cpu, elapsed, 100 * cpu / elapsed))
        print("daemon memory: anonymous peak during the replay %.1f MiB; at the end private (non-LMDB) %.1f MiB, "
              "anonymous %.1f MiB, LMDB map resident %.1f MiB (bar 64 MiB: %s)" %
              (bl.mib(peak), bl.mib(mem["private"]), bl.mib(mem["anon"]), bl.mib(mem["lmdb"]),
               "met" if max(peak, mem["private"]) <= 64 << 20 else "MISSED"))
        used = m.get("yjlink_store_used_bytes", 0)
        t_stop, clean = bl.stop_daemon(daemon, 120)
        print("SIGTERM with %d notifications in the outbox: exited after %.2f s%s" %
              (routed_depth, t_stop, "" if clean else " (did NOT exit by itself in 120 s: killed)"))
        du = sum(os.path.getsize(os.path.join(daemon.store, n)) for n in os.listdir(daemon.store))
        print("store: %.0f MiB of pages in use, %.0f MiB on disk" % (bl.mib(used), bl.mib(du)))
        t_ready = ready_time(yjtest, daemon)
        print("restart to READY=1 with %d events stored: %.3f s (the bar: <= 1 s with 10,000,000)" %
              (stored, t_ready))
        t_stop2, clean2 = bl.stop_daemon(daemon, 120)
        print("SIGTERM right after that start: exited after %.2f s%s" %
              (t_stop2, "" if clean2 else " (did NOT exit by itself in 120 s: killed)"))
        sink_cpu = bl.cpu_seconds(rx.smtp.pid)
        sink = rx.sink_stats(stop=True)
        print("SMTP receiver: the C sink (bench/smtp_sink.c, not aiosmtpd): %d messages, %.1f MiB received "
              "in all (the replay, the stop and the restart), %.2f s of CPU" %
              (sink["messages"], bl.mib(sink["bytes"]), sink_cpu))
        out = {"ok": ok, "elapsed_s": elapsed, "rate": rate, "stored": stored, "peak_anon_mib": bl.mib(peak),
               "private_mib": bl.mib(mem["private"]), "anon_mib": bl.mib(mem["anon"]), "ready_s": t_ready,
               "outbox_left": routed_depth, "delivered": delivered, "emailed": emailed,
               "smtp_sink_messages": sink["messages"], "store_mib": bl.mib(du),
               "stop_s": t_stop, "stop2_s": t_stop2, "stops_clean": clean and clean2}
    finally:
        bl.wind_up(daemon, rx, work, args.summary, out)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--per-day", type=int, default=2740, help="events per day (default: a year of 1,000,100)")
    ap.add_argument("--window", type=int, default=8192)
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--summary", help="write the figures as JSON here (for bench/run)")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
