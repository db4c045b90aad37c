#!/usr/bin/python3
"""bench_digest: digest build time (spec/quality.md "digest": <= 1 s for a
YJS with 10,000 events in its window, measured by `yjlinkctl digest
preview`).

Runs the real yjlinkd on the shipped conf/yjlinkd.conf (webhooks and email
pointed at receivers of this benchmark; the clock a Wednesday morning, as
bench_latency.py), feeds --events custody events of children living in
Milton Keynes (home_la E06000042, so each is routed to yjs:milton-keynes'
digest: custody_digest, and first_contact for a new child), waits until the
immediate notifications some of them cause (liaison and diversion, looked
after children) are delivered, so that the daemon is idle, then times the
wall clock of the real yjlinkctl process:

    yjlinkctl --control ... digest preview yjs:milton-keynes --reason bench
    yjlinkctl --control ... --json digest preview yjs:milton-keynes --reason bench

--repeat times each (the first run is reported apart: nothing is cached
between runs but the kernel's page cache). The figure held against the bar
is the slowest run. A benchmark prints figures; it asserts none.

Then the daily build: the clock is moved past the next 07:30, the digest of
the same window is planned, built into its email (text, HTML, CSV) and sent
to the benchmark's SMTP receiver; the time until the mail has arrived and the
daemon's peak memory meanwhile are printed. --save DIR keeps the previews'
text, HTML and CSV and the mail as it arrived (to compare two builds).

Memory (spec/quality.md: 64 MiB private memory): the daemon's RssAnon
(anonymous pages: heap and anonymous maps, never the LMDB map, which is
file-backed) is sampled every 50 ms from /proc/PID/status while the previews
run; the peak is printed for each size. --events takes a list: by default a
daily window of 10,000 events and a 100,000-event catch-up window (a daemon
down for days), each on a fresh daemon; children default to a quarter of
the events.

    bench/bench_digest.py [--events N[,N...]] [--children C] [--repeat R] [--build DIR] [--summary FILE]
                          [--save DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_latency as bl  # noqa: E402

STATUSES = ["detained", "released_bail", "charged_bailed", "released_nfa", "released_under_investigation", "charged_bailed"]


def mk_event(i, children, tag, n=10000):
    """Event i of n: child i % children, custody record per (child, visit), statuses cycling."""
    child = i % children
    visit = i // children
    t = bl.CLOCK_T - 3600 * 20 + (i * 3600 * 20) // max(n, 1)  # all within the day before the clock, in order
    lac = child % 10 == 0
    ev = {
        "source_id": "dg-%s-%d" % (tag, i),
        "force": "E23000029",
        "occurred_at": bl.utc(t),
        "child": {
            "person_id": "TVP-D%s%05d" % (tag, child), "pnc_id": "09/%06dX" % child,
            "given_name": "Alex", "family_name": "Example-%d" % child,
            "date_of_birth": "%04d-%02d-%02d" % (2009 + child % 6, 1 + child % 12, 1 + child % 28),
            "gender": "male" if child % 2 else "female", "ethnicity": "W1",
            "home_la": "E06000042", "home_postcode": "MK9 2HP", "looked_after": lac,
        },
        "offences": [{"code": "TH68010", "description": "Theft from a shop or stall"}],
        "custody": {"record_id": "CR-%s-%d-%d" % (tag, child, visit), "suite": "TVP-MK",
                    "arrived_at": bl.utc(t - 1800), "status": STATUSES[visit % len(STATUSES)],
                    "status_at": bl.utc(t), "reason": "grounds for detention"},
    }
    if lac:
        ev["child"]["responsible_la"] = "E06000042"
    return json.dumps(ev).encode()


def feed(daemon, payloads, window=1000):
    import zmq
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 0)
    s.setsockopt(zmq.RCVHWM, 0)
    s.connect(daemon.ingest)
    sent = got = ok = 0
    bad = []
    n = len(payloads)
    while got < n:
        while sent < n and sent - got < window:
            s.send_multipart([b"YJL1", b"custody", b"application/json", payloads[sent]])
            sent += 1
        if not s.poll(30000):
            raise SystemExit("bench_digest: no reply for 30 s:\n" + daemon.read_log()[-2000:])
        fr = s.recv_multipart()
        got += 1
        if fr[1] == b"OK":
            ok += 1
        elif len(bad) < 3:
            bad.append(fr)
    s.close()
    return ok, bad


def timed(argv):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    dt = time.monotonic() - t
    if p.returncode != 0:
        raise SystemExit("bench_digest: %s: exit %d: %s" % (" ".join(argv), p.returncode, p.stderr))
    return dt, p.stdout


# The first send time after the benchmark's clock (Wed 25 Nov 10:00 GMT):
# Milton Keynes' 07:30 the next morning.
DIGEST_AT = "2026-11-26T07:31:00Z"


def wait_digest(daemon, maildir, timeout):
    """Wait for the outbox's word on Milton Keynes' digest (delivered, or
    failed: a receiver may refuse a catch-up window's size). Returns (the
    path of its mail or None, the log line or None)."""
    deadline = time.monotonic() + timeout
    line = None
    while time.monotonic() < deadline and line is None:
        for ln in daemon.read_log().splitlines():
            if "outbox: " in ln and "digest-milton-keynes-" in ln and ("delivered to" in ln or "failed" in ln):
                line = ln
                break
        else:
            time.sleep(0.1)
    index = os.path.join(maildir, "index.jsonl")
    try:
        with open(index) as f:
            names = [json.loads(x)["file"] for x in f if x.strip()]
    except OSError:
        names = []
    for name in names:
        path = os.path.join(maildir, name)
        with open(path, "rb") as f:
            head = f.read(4096)
        if b"X-Yjlink-Digest-Id:" in head and b"milton-keynes" in head:
            return path, line
    return None, line


def run(args, events, children):
    yjtest = bl.set_build(args.build)
    work = tempfile.mkdtemp(prefix="yjbench-dg-")
    rx = bl.Receivers(work)
    daemon = None
    out = {}
    try:
        daemon = bl.start_daemon(yjtest, work, rx)
        tag = "%d" % os.getpid()
        t0 = time.monotonic()
        ok, bad = 0, []
        for lo in range(0, events, 20000):
            # In chunks: the payloads of a 100,000-event window are not all held at once.
            payloads = [mk_event(i, children, tag, events) for i in range(lo, min(events, lo + 20000))]
            k, b = feed(daemon, payloads)
            ok += k
            bad += b
        t_feed = time.monotonic() - t0
        print("\n== %d events\nfed %d custody events (%d children of Milton Keynes) in %.2f s: %d OK%s" %
              (events, events, children, t_feed, ok, (", e.g. %s" % bad[0]) if bad else ""))
        drained = bl.wait_outbox_empty(daemon, 600)
        print("immediate notifications delivered, daemon idle: %s after %.1f s" % (drained, time.monotonic() - t0))

        base = [yjtest.YJLINKCTL, "--control", daemon.control]
        cmd = ["digest", "preview", "yjs:milton-keynes", "--reason", "bench"]
        res = {"text": [], "json": []}
        info = None
        anon = [bl.memory(daemon.proc.pid, daemon.store)["anon"]]
        peak_text = peak_json = 0
        for _ in range(args.repeat):
            # Sampled apart: the text preview is the index and the text in the reply; the
            # --json one has the HTML and the CSV in the reply as well.
            sampler = bl.AnonSampler(daemon.proc.pid, 0.05)
            dt, _ = timed(base + cmd)
            peak_text = max(peak_text, sampler.stop())
            res["text"].append(dt)
            sampler = bl.AnonSampler(daemon.proc.pid, 0.05)
            dt, js = timed(base + ["--json"] + cmd)
            peak_json = max(peak_json, sampler.stop())
            res["json"].append(dt)
            info = json.loads(js)
            anon.append(bl.memory(daemon.proc.pid, daemon.store)["anon"])
        peak = max(peak_text, peak_json)
        # The same control request without yjlinkctl's start-up, for scale.
        t = time.monotonic()
        code, _ = daemon.ctl_request("digest", {"sub": "preview", "arg": "yjs:milton-keynes", "reason": "bench"},
                                     timeout_ms=60000)
        t_req = time.monotonic() - t
        mem = bl.memory(daemon.proc.pid, daemon.store)
        if args.save:
            d = os.path.join(args.save, str(events))
            os.makedirs(d, exist_ok=True)
            for part in ("text", "html", "csv"):
                with open(os.path.join(d, "preview." + part), "w") as f:
                    f.write(info[part])

        # The daily build: planned when the clock passes 07:30, built into its
        # email and sent; sampled until the mail has arrived.
        maildir = os.path.join(work, "mail")
        sampler = bl.AnonSampler(daemon.proc.pid, 0.05)
        t = time.monotonic()
        daemon.ctl_request("clock", {"set": DIGEST_AT})
        mail, outcome = wait_digest(daemon, maildir, 600)
        t_send = time.monotonic() - t
        peak_send = sampler.stop()
        mem_sent = bl.memory(daemon.proc.pid, daemon.store)
        if args.save and mail:
            shutil.copy(mail, os.path.join(args.save, str(events), "digest.eml"))
        csv_rows = info["csv"].count("\n") - 1
        print("digest window: %d events, %d children; text %d bytes, html %d bytes, csv %d rows (%d bytes)" %
              (info["events"], info["children"], len(info["text"]), len(info["html"]), csv_rows, len(info["csv"])))
        for kind in ("text", "json"):
            v = res[kind]
            print("yjlinkctl %sdigest preview: first %.3f s; %d runs: min %.3f  median %.3f  max %.3f s" %
                  ("--json " if kind == "json" else "", v[0], len(v), min(v), statistics.median(v), max(v)))
        print("control request alone (no yjlinkctl process): %.3f s (code %d)" % (t_req, code))
        worst = max(res["text"] + res["json"])
        print("bar: <= 1 s: slowest %.3f s, %s" % (worst, "met" if worst <= 1 else "MISSED by %.3f s" % (worst - 1)))
        print("daemon anonymous memory before the previews %.1f MiB, after each pair of them %s MiB" %
              (bl.mib(anon[0]), ", ".join("%.1f" % bl.mib(a) for a in anon[1:])))
        print("PEAK private (anonymous) memory during the previews of %d events, sampled every 50 ms: %.1f MiB "
              "(bar 64 MiB: %s); text preview %.1f MiB, --json preview (text, HTML and CSV in the control reply) "
              "%.1f MiB" % (events, bl.mib(peak), "met" if peak <= 64 << 20
                                                          else "MISSED", bl.mib(peak_text), bl.mib(peak_json)))
        print("daily digest by email: %s after %.2f s (%d bytes); PEAK private (anonymous) memory meanwhile, "
              "sampled every 50 ms: %.1f MiB (bar 64 MiB: %s); anonymous after %.1f MiB" %
              ("arrived" if mail else "NOT arrived (%s)" % (outcome.split("outbox: ", 1)[-1] if outcome else
                                                             "no word from the outbox"),
               t_send, os.path.getsize(mail) if mail else 0,
               bl.mib(peak_send), "met" if peak_send <= 64 << 20 else "MISSED", bl.mib(mem_sent["anon"])))
        print("daemon memory after the previews: private (non-LMDB) %.1f MiB, anonymous %.1f MiB (bar 64 MiB: %s)" %
              (bl.mib(mem["private"]), bl.mib(mem["anon"]), "met" if mem["private"] <= 64 << 20 else "MISSED"))
        out = {"events": info["events"], "children": info["children"], "text_first_s": res["text"][0],
               "text_median_s": statistics.median(res["text"]), "json_median_s": statistics.median(res["json"]),
               "worst_s": worst, "request_s": t_req, "private_mib": bl.mib(mem["private"]),
               "peak_anon_mib": bl.mib(peak), "peak_text_mib": bl.mib(peak_text),
               "peak_json_mib": bl.mib(peak_json), "anon_before_mib": bl.mib(anon[0]),
               "send_s": t_send, "peak_send_mib": bl.mib(peak_send)}
    finally:
        if daemon:
            bl.stop_daemon(daemon)
        rx.stop()
    shutil.rmtree(work, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", default="10000,100000", help="window sizes, comma-separated")
    ap.add_argument("--children", type=int, default=0, help="distinct children among the events (default events/4)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR or <source>/build)")
    ap.add_argument("--summary", help="write the figures as JSON here (for bench/run)")
    ap.add_argument("--save", help="keep the previews' renderings and the digest mail here, per size")
    args = ap.parse_args()
    sizes = [int(x) for x in args.events.split(",") if x.strip()]
    figures = {}
    for n in sizes:
        # The catch-up window once: each of its previews takes a while.
        args_n = argparse.Namespace(**vars(args))
        if n > 10000:
            args_n.repeat = 1
        figures[str(n)] = run(args_n, n, args.children or max(1, n // 4))
    print("\n== peak private memory: %s" % ", ".join("%s events: previews %.1f MiB, daily email %.1f MiB" %
                                                    (k, v.get("peak_anon_mib", 0), v.get("peak_send_mib", 0))
                                                    for k, v in figures.items()))
    if args.summary:
        # bench/run reads the first size's figures at the top level.
        out = dict(figures[str(sizes[0])]) if sizes else {}
        out["sizes"] = figures
        with open(args.summary, "w") as f:
            json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
