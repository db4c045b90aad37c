#!/usr/bin/python3
"""bench_subscriber: does a YJN1 subscriber that never reads slow ingest?
(interfaces.md §3: the daemon "never blocks on a slow one").

Runs the real yjlinkd with one zmq recipient (children_services:E06000042,
zmq.window = 100000, so that the daemon keeps pushing NOTEs to a subscriber
until its connection's queue is full and every further send answers EAGAIN)
and the lac_in_custody rule, so that every event sent is one notification
to it. A DEALER pipelines custody events for a looked-after child of that
authority, --inflight requests outstanding, and measures OK replies per
second, in three phases against the same daemon, each starting with nothing
held for the recipient (the build's yjn1-sub empties the backlog between
them):

  reading   the build's yjn1-sub reads and acknowledges as they come;
  without   no subscriber: every notification is held for it;
  with      a subscriber that connected, said HELLO and never reads (a tiny
            receive queue and kernel buffer, so its connection fills early):
            every notification is held too.

"without" and "with" hold the same number of notifications by their end, so
their ratio is what the stuck connection itself costs; "reading" against
"without" is what a growing backlog costs (the outbox revisits every job it
has started on each dispatch pass). A benchmark prints figures; it asserts
nothing.

The two are run --rounds times, in alternating order, each from an empty
backlog; the medians are printed, with every round's figure.

    bench/bench_subscriber.py [--events N] [--inflight N] [--rounds N] [--build DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("YJ_SOURCE_DIR", os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

CONFIG = """
deployment = { id = "bs"; name = "Subscriber benchmark"; force = "E23000029"; };
recipients = (
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services";
    local_authority = "E06000042"; transport = "zmq"; zmq = { window = 100000; };
    allow = [ "occurred_at", "force", "child.person_id", "child.looked_after", "custody.record_id",
              "custody.status" ]; }
);
rules = (
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate";
    legal_basis = "Children Act 1989 s.22"; }
);
"""


def phase(yjtest, daemon, events, inflight, tag):
    """Send `events` events with `inflight` outstanding; return (OK/s, non-OK count)."""
    feed = yjtest.Feed(daemon.ingest)
    payloads = []
    for i in range(events):
        ev = yjtest.custody_event()
        ev["source_id"] = "bench-%s-%d-%d" % (tag, os.getpid(), i)
        ev["child"]["looked_after"] = True
        ev["child"]["responsible_la"] = "E06000042"
        payloads.append(json.dumps(ev).encode())
    sent = got = bad = 0
    t0 = time.monotonic()
    while got < events:
        while sent < events and sent - got < inflight:
            feed.send_frames([b"YJL1", b"custody", b"application/json", payloads[sent]])
            sent += 1
        r = feed.recv(timeout_ms=120000)
        got += 1
        if r[1] != b"OK":
            bad += 1
    elapsed = time.monotonic() - t0
    feed.close()
    return events / elapsed, bad


class Drainer:
    """yjn1-sub for the recipient, as its own process (no GIL shared with the feeder)."""

    def __init__(self, yjtest, daemon, cursor):
        import subprocess
        self.p = subprocess.Popen([os.path.join(yjtest.BUILD, "yjn1-sub"), daemon.notify,
                                   "children_services:E06000042", cursor],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=60)


def lag(daemon):
    code, body = daemon.ctl_request("subscribers")
    return body["subscribers"][0] if code == 0 and body["subscribers"] else {}


def wait_lag_zero(yjtest, daemon, cursor):
    """Empty the backlog with yjn1-sub; it is gone again when this returns."""
    dr = Drainer(yjtest, daemon, cursor)
    try:
        deadline = time.monotonic() + 600
        while lag(daemon).get("lag") and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        dr.stop()
    deadline = time.monotonic() + 60
    while lag(daemon).get("connected") and time.monotonic() < deadline:
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=20000, help="events per phase")
    ap.add_argument("--inflight", type=int, default=256, help="requests outstanding")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of without/with (medians are printed)")
    ap.add_argument("--build", help="build directory (default $YJ_BUILD_DIR, else <source>/build)")
    a = ap.parse_args()
    if a.build:
        os.environ["YJ_BUILD_DIR"] = os.path.abspath(a.build)
    os.environ.setdefault("YJ_BUILD_DIR", os.path.join(SOURCE, "build"))
    import yjtest
    import zmq

    work = tempfile.mkdtemp(prefix="yjbench-sub-")
    conf = os.path.join(work, "yjlinkd.conf")
    with open(conf, "w") as f:
        f.write(CONFIG)
    d = yjtest.Daemon(workdir=work, config=conf, sets={"log.level": "notice"}).start()
    stuck = None
    cursor = os.path.join(work, "drain.cursor")
    try:
        dr = Drainer(yjtest, d, cursor)
        deadline = time.monotonic() + 30
        while not lag(d).get("connected") and time.monotonic() < deadline:
            time.sleep(0.05)
        reading, bad0 = phase(yjtest, d, a.events, a.inflight, "reading")
        dr.stop()
        wait_lag_zero(yjtest, d, cursor)

        rates = {"without": [], "with": []}
        bad = {"reading": bad0, "without": 0, "with": 0}
        held = {}
        for r in range(a.rounds):
            # Alternate the order, so that drift over the run (the store growing, other load on the
            # machine) falls on both alike.
            for kind in (("without", "with") if r % 2 == 0 else ("with", "without")):
                if kind == "with":
                    stuck = zmq.Context.instance().socket(zmq.DEALER)
                    stuck.setsockopt(zmq.LINGER, 0)
                    stuck.setsockopt(zmq.RCVHWM, 1)
                    stuck.setsockopt(zmq.RCVBUF, 4096)
                    stuck.connect(d.notify)
                    stuck.send_multipart([b"YJN1", b"HELLO", b"children_services:E06000042",
                                          b"%d" % lag(d)["last_acked"]])
                    deadline = time.monotonic() + 30
                    while not lag(d).get("connected") and time.monotonic() < deadline:
                        time.sleep(0.05)
                rate, nbad = phase(yjtest, d, a.events, a.inflight, "%s%d" % (kind, r))
                rates[kind].append(rate)
                bad[kind] += nbad
                held[kind] = lag(d)
                if stuck is not None:
                    stuck.close()
                    stuck = None
                wait_lag_zero(yjtest, d, cursor)

        def med(v):
            v = sorted(v)
            return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2

        def note(kind):
            return "  (%d not OK)" % bad[kind] if bad[kind] else ""
        w, wo = med(rates["with"]), med(rates["without"])
        print("bench_subscriber: %d events per phase, %d in flight, %d round(s); median of the rounds"
              % (a.events, a.inflight, a.rounds))
        print("  YJL1 OK rate, a subscriber reading:            %10.0f events/s%s" % (reading, note("reading")))
        print("  YJL1 OK rate, without a subscriber:            %10.0f events/s%s   (rounds: %s; %s held at "
              "the end of each)" % (wo, note("without"), ", ".join("%.0f" % x for x in rates["without"]),
                                    held["without"].get("lag")))
        print("  YJL1 OK rate, with a subscriber never reading: %10.0f events/s%s   (rounds: %s; %s held at "
              "the end of each: %s sent and unacknowledged, %s unsent)"
              % (w, note("with"), ", ".join("%.0f" % x for x in rates["with"]), held["with"].get("lag"),
                 held["with"].get("in_flight"), held["with"].get("held")))
        print("  ratio with / without:                          %10.2f" % (w / wo))
        print("  ratio without / reading (what the backlog costs): %7.2f" % (wo / reading))
    finally:
        if stuck is not None:
            stuck.close()
        d.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
