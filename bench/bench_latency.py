#!/usr/bin/python3
"""bench_latency: notification latency (spec/quality.md "notification
latency": p99 <= 20 ms).

Runs the real yjlinkd on the shipped conf/yjlinkd.conf with only its
loopback webhook URLs pointed at a receiver of this benchmark (and email at
an SMTP receiver), like tests/integration/test_routing.py does. A DEALER
sends custody `detained` events for a looked-after child whose responsible
authority is Milton Keynes (E06000042: its children's services are a webhook
recipient) at --rate events/s for --duration s. Each event routes to two
webhook recipients: children_services:E06000042 (lac_in_custody), the figure
of the bar, and liaison_diversion:tvp (open: the daemon's clock is set to a
Wednesday morning), reported beside it.

Latency of a notification = arrival of its POST at the receiver minus the
time the client received the event's OK. Both are CLOCK_MONOTONIC
(time.monotonic), one clock for the whole machine, read in two processes:
the receiver runs in its own process so that neither side waits on the
other's GIL. It is a plain socket server, one thread per connection,
stamping each request when its whole body has arrived.

Each recipient gets its notifications one at a time, in order (head-of-line):
a recipient's throughput is bounded by 1 / (round trip + completion commit),
so the achieved delivery rate is printed too. A benchmark prints figures; it
asserts none.

    bench/bench_latency.py [--rate R] [--duration S] [--build DIR] [--perf]
                           [--summary FILE]

This file also holds the helpers bench_digest.py and bench_backfill.py use:
the receivers, the shipped config with redirected URLs, the memory figures.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("YJ_SOURCE_DIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

# A Wednesday morning (London): liaison and diversion is open, no digest due.
CLOCK = "2026-11-25T10:00:00Z"
CLOCK_T = 1795600800


def set_build(build):
    """Point yjtest at the build directory (before yjtest is imported)."""
    if build:
        os.environ["YJ_BUILD_DIR"] = os.path.abspath(build)
    elif "YJ_BUILD_DIR" not in os.environ:
        os.environ["YJ_BUILD_DIR"] = os.path.join(SOURCE, "build")
    os.environ.setdefault("YJ_SOURCE_DIR", SOURCE)
    import yjtest  # noqa: F401  (reads YJ_BUILD_DIR at import)
    return yjtest


def utc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# --- the webhook receiver (its own process) ---

_SEQ = re.compile(rb'"seq":(\d+)')
_NID = re.compile(rb'"notification_id":"([^"]*)"')


def _serve_conn(conn, records, lock):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(262144)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1] if len(lines[0].split(b" ")) > 1 else b"?"
            length = 0
            for h in lines[1:]:
                k, _, v = h.partition(b":")
                k = k.strip().lower()
                if k == b"content-length":
                    length = int(v.strip())
                elif k == b"expect" and v.strip().lower() == b"100-continue":
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            while len(buf) < length:
                data = conn.recv(262144)
                if not data:
                    return
                buf += data
            t = time.monotonic()
            body, buf = buf[:length], buf[length:]
            conn.sendall(reply)
            m = _SEQ.search(body)
            n = _NID.search(body)
            with lock:
                records.append((t, path.decode(), int(m.group(1)) if m else -1, n.group(1).decode() if n else ""))
    except OSError:
        return
    finally:
        conn.close()


def receiver_main(out_path):
    """Serve until SIGTERM, then write one line per request to out_path:
    monotonic time, path, event seq, notification id (tab-separated)."""
    records, lock = [], threading.Lock()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=_serve_conn, args=(c, records, lock), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("READY %d" % srv.getsockname()[1], flush=True)
    while not done.wait(0.2):
        pass
    with lock:
        rows = list(records)
    with open(out_path + ".tmp", "w") as f:
        for t, p, s, n in rows:
            f.write("%.9f\t%s\t%d\t%s\n" % (t, p, s, n))
    os.rename(out_path + ".tmp", out_path)
    return 0


class Receivers:
    """This file's webhook receiver and an SMTP receiver, each in its own process.

    smtp="aiosmtpd": tests/integration/smtp_receiver.py, which keeps every
    message (in <workdir>/mail) for a benchmark that reads them. smtp="sink":
    <build>/smtp_sink (bench/smtp_sink.c), which only counts them: the Python
    receiver costs about 1 ms of CPU per message, 0.7 of a core of a 2-core
    machine at the rate a backfill sends, taken from the daemon being measured.
    """

    def __init__(self, workdir, smtp="aiosmtpd"):
        if smtp not in ("aiosmtpd", "sink"):
            raise ValueError("smtp must be \"aiosmtpd\" or \"sink\"")
        self.dir = workdir
        self.smtp_kind = smtp
        self.http_out = os.path.join(workdir, "webhooks.tsv")
        self.http = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--receiver", self.http_out],
                                     stdout=subprocess.PIPE, text=True)
        self.http_port = int(self.http.stdout.readline().split()[1])
        if smtp == "sink":
            import yjtest  # set_build() has pointed it at the build directory
            self.smtp_stats_path = os.path.join(workdir, "smtp_sink.json")
            argv = [os.path.join(yjtest.BUILD, "smtp_sink"), "--port", "0", "--stats", self.smtp_stats_path]
        else:
            maildir = os.path.join(workdir, "mail")
            os.makedirs(maildir, exist_ok=True)
            argv = [sys.executable, os.path.join(SOURCE, "tests", "integration", "smtp_receiver.py"),
                    "--port", "0", "--mode", "250", "--maildir", maildir]
        self.smtp = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        # Both print "READY <port>" once they listen.
        self.smtp_port = int(self.smtp.stdout.readline().split()[1])

    def webhooks(self):
        """Stop the webhook receiver; return its records [(t, path, seq, nid)]."""
        if self.http.poll() is None:
            self.http.send_signal(signal.SIGTERM)
            self.http.wait(timeout=60)
        out = []
        with open(self.http_out) as f:
            for line in f:
                t, p, s, n = line.rstrip("\n").split("\t")
                out.append((float(t), p, int(s), n))
        return out

    def sink_stats(self, stop=False, timeout=10):
        """smtp="sink" only: {"messages": N, "bytes": B} received so far (SIGUSR1:
        the sink rewrites its stats file), or in all with stop=True (SIGTERM:
        the sink writes it and exits)."""
        if self.smtp_kind != "sink":
            raise ValueError("sink_stats: the SMTP receiver is not the sink")
        if self.smtp.poll() is None:
            if os.path.exists(self.smtp_stats_path):
                os.unlink(self.smtp_stats_path)
            if stop:
                self.smtp.send_signal(signal.SIGTERM)
                self.smtp.wait(timeout=timeout)
            else:
                self.smtp.send_signal(signal.SIGUSR1)
                end = time.monotonic() + timeout
                # The sink writes a temporary file and renames it: once the name is there it is whole.
                while not os.path.exists(self.smtp_stats_path) and time.monotonic() < end:
                    time.sleep(0.01)
        with open(self.smtp_stats_path) as f:
            return json.load(f)

    def stop(self):
        end_processes((self.http, self.smtp))


def end_processes(procs):
    """SIGTERM to each of procs still running; SIGKILL to any still there 30 s later."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def wind_up(daemon, rx, work, summary, out):
    """The end of a benchmark run: the daemon (if started) and the receivers
    stopped, the figures out written to summary (if named) as JSON, work removed."""
    try:
        if daemon:
            stop_daemon(daemon)
        rx.stop()
    finally:
        if summary:
            with open(summary, "w") as f:
                json.dump(out, f)
        shutil.rmtree(work, ignore_errors=True)


def shipped_config(workdir, rx):
    """conf/yjlinkd.conf with its webhook URLs on rx; returns the file's path."""
    with open(os.path.join(SOURCE, "conf", "yjlinkd.conf")) as f:
        text = f.read()
    text = text.replace("http://127.0.0.1:8088", "http://127.0.0.1:%d" % rx.http_port)
    path = os.path.join(workdir, "yjlinkd.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_daemon(yjtest, workdir, rx, clock=True, extra=None):
    sets = {"email.smtp_url": "smtp://127.0.0.1:%d" % rx.smtp_port}
    if clock:
        sets.update({"testing.clock_control": "true", "testing.clock_start": CLOCK})
    sets.update(extra or {})
    return yjtest.Daemon(workdir=workdir, config=shipped_config(workdir, rx), sets=sets).start()


def stop_daemon(daemon, timeout=60):
    """SIGTERM, then SIGKILL after timeout s. Returns (seconds to exit, whether it exited by itself)."""
    p = daemon.proc
    if not p or p.poll() is not None:
        return 0.0, True
    t = time.monotonic()
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=timeout)
        clean = True
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        clean = False
    dt = time.monotonic() - t
    daemon.log.close()
    return dt, clean


def metrics(daemon):
    """{name{labels}: value} from GET /metrics (refreshed each second)."""
    url = "http://%s/metrics" % daemon.sets["metrics.endpoint"]
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def wait_outbox_empty(daemon, timeout):
    """Wait for yjlink_outbox_depth 0 in two published snapshots in a row
    (/metrics is refreshed once a second: the first reading may predate the
    caller's last events, so readings count from 1.1 s after the call).
    Returns whether it was."""
    start = time.monotonic()
    deadline = start + timeout
    zero_since = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        try:
            depth = metrics(daemon).get("yjlink_outbox_depth", 1)
        except OSError:
            depth = 1
        if depth != 0 or now < start + 1.1:
            zero_since = None
        elif zero_since is None:
            zero_since = now
        elif now - zero_since >= 1.1:
            return True
        time.sleep(0.25)
    return False


# --- memory ---

def memory(pid, store_dir):
    """Private memory of pid in bytes:
    anon     : anonymous pages (heap, stacks, anonymous mmaps, COW'd pages of
               private file mappings) = smaps_rollup Anonymous = RssAnon;
    private  : Private_Clean + Private_Dirty over every mapping of smaps
               except the LMDB files (data.mdb, lock.mdb) in store_dir: the
               anonymous pages plus the pages of the binary and libraries
               that no other process maps. The figure held against the bar;
    lmdb     : resident pages of the LMDB map (file-backed page cache, shared
               with the kernel; not what the bar counts).
    The kernel keeps no peak of private memory alone (VmHWM counts the LMDB
    map too): for peaks, callers sample RssAnon with AnonSampler."""
    res = {"anon": 0, "private": 0, "lmdb": 0}
    store_dir = os.path.realpath(store_dir)
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split()
                path = parts[5] if len(parts) > 5 else ""
                cur = "lmdb" if path.startswith(store_dir + "/") and path.endswith(".mdb") else "other"
                continue
            if first == "Rss:" and cur == "lmdb":
                res["lmdb"] += int(line.split()[1]) * 1024
            elif first in ("Private_Clean:", "Private_Dirty:") and cur == "other":
                res["private"] += int(line.split()[1]) * 1024
            elif first == "Anonymous:":
                res["anon"] += int(line.split()[1]) * 1024
    return res


class AnonSampler:
    """Samples RssAnon of a process every interval s; .peak in bytes."""

    def __init__(self, pid, interval=0.25):
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                with open("/proc/%d/status" % self.pid) as f:
                    for line in f:
                        if line.startswith("RssAnon:"):
                            self.peak = max(self.peak, int(line.split()[1]) * 1024)
            except OSError:
                return
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join()
        return self.peak


def cpu_seconds(pid):
    """User + system CPU seconds of pid so far (all threads)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def mib(b):
    return b / (1 << 20)


def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(-(-p * len(sorted_vals) // 100)) - 1))
    return sorted_vals[k]


# --- the benchmark ---

def lac_event(i, tag):
    t = CLOCK_T
    return json.dumps({
        "source_id": "lat-%s-%d" % (tag, i),
        "force": "E23000029",
        "occurred_at": utc(t - 600),
        "child": {
            "person_id": "TVP-L%s%06d" % (tag, i), "pnc_id": "09/123456X",
            "given_name": "Alex", "family_name": "Example", "date_of_birth": "2011-03-02",
            "gender": "male", "ethnicity": "W1", "home_la": "E06000042", "home_postcode": "MK9 2HP",
            "looked_after": True, "responsible_la": "E06000042",
            "social_worker": {"name": "Sam Worker", "email": "sam.worker@mk.example", "phone": "01908 000000"},
        },
        "custody": {"record_id": "CR-%s-%d" % (tag, i), "suite": "TVP-MK", "arrived_at": utc(t - 1800),
                    "status": "detained", "status_at": utc(t - 600), "reason": "grounds for detention"},
    }).encode()


def run(args):
    yjtest = set_build(args.build)
    import zmq

    work = tempfile.mkdtemp(prefix="yjbench-lat-")
    rx = Receivers(work)
    daemon = None
    try:
        daemon = start_daemon(yjtest, work, rx)
        pid = daemon.proc.pid
        n = int(args.rate * args.duration)
        tag = "%d" % os.getpid()
        payloads = [lac_event(i, tag) for i in range(n)]

        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(daemon.ingest)
        # Warm-up: one event through, connections made, before the clock starts.
        sock.send_multipart([b"YJL1", b"custody", b"application/json", lac_event(0, tag + "w")])
        if not sock.poll(10000):
            raise SystemExit("bench_latency: no reply to the warm-up event:\n" + daemon.read_log())
        sock.recv_multipart()
        time.sleep(1.0)

        ok_at = {}       # seq -> monotonic time the OK arrived
        sent_at = {}     # seq -> monotonic time the event was sent
        send_t = [0.0] * n
        other = []
        sampler = AnonSampler(pid)
        perf = None
        if args.perf and shutil.which("perf"):
            perf_data = os.path.join(work, "perf.data")
            perf = subprocess.Popen(["perf", "record", "-g", "-q", "-o", perf_data, "-p", str(pid), "--",
                                     "sleep", str(args.duration)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        cpu0 = cpu_seconds(pid)
        t0 = time.monotonic()
        i = 0
        got = 0
        while got < n:
            now = time.monotonic()
            while i < n and t0 + i / args.rate <= now:
                sock.send_multipart([b"YJL1", b"custody", b"application/json", payloads[i]], copy=False)
                send_t[i] = time.monotonic()
                i += 1
            due = t0 + i / args.rate if i < n else now + 30
            wait_ms = max(0, (due - time.monotonic()) * 1000)
            if sock.poll(wait_ms if i < n else 30000):
                while True:
                    try:
                        fr = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    t = time.monotonic()
                    # One DEALER, one loop: replies come in send order.
                    if fr[1] == b"OK":
                        seq = int(fr[3])
                        ok_at[seq] = t
                        sent_at[seq] = send_t[got]
                    else:
                        other.append(fr)
                    got += 1
            elif i >= n:
                raise SystemExit("bench_latency: no reply for 30 s:\n" + daemon.read_log()[-2000:])
        t_sent = time.monotonic() - t0
        drained = wait_outbox_empty(daemon, 300)
        t_drain = time.monotonic() - t0
        cpu = cpu_seconds(pid) - cpu0
        time.sleep(1.1)  # one more metrics refresh
        final = metrics(daemon)
        peak_anon = sampler.stop()
        mem = memory(pid, daemon.store)
        if perf:
            perf.wait()
        recs = rx.webhooks()
    finally:
        if daemon:
            stop_daemon(daemon)
        rx.stop()

    cs_path = "/children-services/E06000042"
    ld_path = "/liaison-diversion"
    out = {}
    print("sent %d LAC custody 'detained' events at %.0f/s in %.2f s; %d OK, %d other replies" %
          (n, args.rate, t_sent, len(ok_at), len(other)))
    for label, path in (("children_services:E06000042", cs_path), ("liaison_diversion:tvp", ld_path)):
        arr = {}
        for t, p, s, nid in recs:
            if p == path and s in ok_at and s not in arr:
                arr[s] = t
        lat = sorted((arr[s] - ok_at[s]) * 1000 for s in arr)
        lat_send = sorted((arr[s] - sent_at[s]) * 1000 for s in arr)
        times = sorted(arr.values())
        span = times[-1] - times[0] if len(times) > 1 else 0
        thr = (len(times) - 1) / span if span > 0 else 0
        print("%s: %d of %d delivered" % (label, len(arr), len(ok_at)))
        if not lat:
            continue
        print("  latency OK->receiver ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  (min %.2f)" %
              (pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[-1], lat[0]))
        print("  latency send->receiver ms: p50 %.2f  p99 %.2f  max %.2f" %
              (pct(lat_send, 50), pct(lat_send, 99), lat_send[-1]))
        print("  delivery throughput: %.0f notifications/s (first to last arrival, %.2f s)" % (thr, span))
        key = "cs" if path == cs_path else "ld"
        out.update({key + "_p50_ms": pct(lat, 50), key + "_p90_ms": pct(lat, 90), key + "_p99_ms": pct(lat, 99),
                    key + "_max_ms": lat[-1], key + "_delivered": len(arr), key + "_per_s": thr})
    print("daemon CPU: %.2f s over %.2f s (%.0f%% of one core); outbox drained: %s after %.2f s" %
          (cpu, t_drain, 100 * cpu / t_drain, drained, t_drain))
    commits = final.get("yjlink_commit_seconds_count", 0)
    if commits:
        fast = final.get('yjlink_commit_seconds_bucket{le="0.001"}', float("nan"))
        print("ingest group commits: %d, mean %.2f ms, %.0f%% within 1 ms (yjlink_commit_seconds)" %
              (commits, 1000 * final["yjlink_commit_seconds_sum"] / commits, 100 * fast / commits))
    print("daemon memory at end: private (non-LMDB) %.1f MiB, anonymous %.1f MiB (peak sampled %.1f MiB), "
          "LMDB map resident %.1f MiB" % (mib(mem["private"]), mib(mem["anon"]), mib(peak_anon), mib(mem["lmdb"])))
    if "cs_p99_ms" in out:
        p99 = out["cs_p99_ms"]
        print("bar: p99 <= 20 ms: p99 %.2f ms, %s" % (p99, "met" if p99 <= 20 else "MISSED by %.2f ms (x%.1f)" %
                                                     (p99 - 20, p99 / 20)))
    out.update({"events": n, "rate": args.rate, "sent_s": t_sent, "cpu_s": cpu, "drain_s": t_drain,
                "private_mib": mib(mem["private"]), "anon_mib": mib(mem["anon"]), "peak_anon_mib": mib(peak_anon)})
    if perf:
        def report(sort, limit="0.5"):
            r = subprocess.run(["perf", "report", "-i", perf_data, "--stdio", "--no-children", "--percent-limit",
                                limit, "-g", "none", "--sort", sort], capture_output=True, text=True)
            return [ln.strip() for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
        print("perf (daemon's CPU samples during the send window), by object:")
        for ln in report("dso")[:8]:
            print("  " + ln)
        print("  top user-space symbols:")
        for ln in [ln for ln in report("dso,symbol", "0.2") if "[.]" in ln][:15]:
            print("  " + re.sub(r"\s+", " ", ln))
        print("  top kernel symbols:")
        for ln in [ln for ln in report("symbol", "1") if "[k]" in ln][:8]:
            print("  " + re.sub(r"\s+", " ", ln))
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(out, f)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        return receiver_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="events per second (default 1000)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default 10)")
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--perf", action="store_true", help="perf record the daemon during the run, print the top")
    ap.add_argument("--summary", help="write the figures as JSON here (for bench/run)")
    return run(ap.parse_args())


if __name__ == "__main__":
    sys.exit(main())
