"""YJN1 durable subscriptions (interfaces.md §3 "Durable subscription:
protocol YJN1 over ZeroMQ", §6 `subscribers`, §7 metrics).

The real daemon, the real reference clients (clients/yjn1_subscriber.py in
process, the build's yjn1-sub as a process) and raw DEALER sockets for what
the clients never send. No test asserts a timing: every wait polls for its
condition with a generous deadline (YJ_TEST_WAIT_S, default 60 s), and
"nothing more arrives" is watched for a bounded time (YJ_TEST_QUIET_S,
default 3 s) after the daemon itself has shown the state that forbids it.
Random choices come from random.Random(YJ_TEST_SEED) (default below), so a
run can be repeated exactly.

- ChurnTest: a Python and a C subscriber, one per recipient, both dropping
  their connection (or dying) at random moments and resuming from their
  cursor files while events flow; in the end every notification came once
  (after dropping repeats by number), in increasing order, the outbox is
  empty and the audit has one disclosure per notification id.
- CrashTest: kill -9 of the daemon with notes sent and not acknowledged; after
  the restart the subscriber gets the same numbers and notification ids, and
  nothing is lost.
- ErrorTest: ERROR for an unknown recipient, a recipient of another
  transport and each kind of malformed message; nothing more on that
  connection; the daemon serves the other subscriber all along.
- SlowSubscriberTest: a subscriber that never reads stops neither ingest nor
  the other subscriber; with zmq.window = 5 a subscriber that never acks gets
  5 notes, and each ACK makes room for as many more.
- DigestTest: a YJS with transport zmq gets its daily digest as one NOTE
  whose JSON is the digest object.
- ObserveTest: `yjlinkctl subscribers` (human and --json) and GET /metrics
  show the recipient, whether it is connected, its last acknowledged number
  and its lag.

Run with /usr/bin/python3 (Debian's python3-zmq).
"""
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import zoneinfo

import zmq

import yjtest

sys.path.insert(0, os.path.join(yjtest.SOURCE, "clients"))
from yjn1_subscriber import YJN1Error, YJN1Subscriber  # noqa: E402

WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "60"))
QUIET = float(os.environ.get("YJ_TEST_QUIET_S", "3"))
SEED = int(os.environ.get("YJ_TEST_SEED", "20261121"))
YJN1_SUB = os.path.join(yjtest.BUILD, "yjn1-sub")
LONDON = zoneinfo.ZoneInfo("Europe/London")

MK = "children_services:E06000042"      # Python subscriber in the churn test
OX = "children_services:E10000025"      # C subscriber in the churn test
BK = "children_services:E06000060"      # zmq.window = 5
WM = "children_services:E09000033"      # transport none: not a YJN1 recipient

ALLOW = ('[ "occurred_at", "force", "child.person_id", "child.looked_after", "child.responsible_la", '
         '"custody.record_id", "custody.suite", "custody.status", "custody.status_at" ]')

CONFIG = """
deployment = { id = "sb"; name = "Subscription test"; force = "E23000029"; };
recipients = (
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services";
    local_authority = "E06000042"; transport = "zmq"; %(mk)s allow = %(allow)s; },
  { id = "children_services:E10000025"; kind = "children_services"; name = "Oxfordshire Children's Services";
    local_authority = "E10000025"; transport = "zmq"; %(ox)s allow = %(allow)s; },
  { id = "children_services:E06000060"; kind = "children_services"; name = "Buckinghamshire Children's Services";
    local_authority = "E06000060"; transport = "zmq"; zmq = { window = 5; }; allow = %(allow)s; },
  { id = "children_services:E09000033"; kind = "children_services"; name = "Westminster Children's Services";
    local_authority = "E09000033"; transport = "none"; allow = %(allow)s; }
);
rules = (
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate";
    legal_basis = "Children Act 1989 s.22; Crime and Disorder Act 1998 s.115"; }
);
"""

_n = [0]


def lac_event(recipient):
    """A looked-after child in custody, in the care of recipient's authority: one lac_in_custody note to it."""
    _n[0] += 1
    ev = yjtest.custody_event()
    ev["source_id"] = "sub-%d-%d" % (os.getpid(), _n[0])
    ev["child"]["looked_after"] = True
    ev["child"]["responsible_la"] = recipient.split(":", 1)[1]
    return ev


def note_id(number):
    return "sb-%012d" % number


class SubscribeBase(unittest.TestCase):
    """One daemon per test, cleaned up in tearDown with everything else it made."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjsub-")
        self.daemon = None
        self.cleanups = []

    def tearDown(self):
        try:
            for fn in reversed(self.cleanups):
                try:
                    fn()
                except Exception:
                    pass
        finally:
            if self.daemon:
                self.daemon.cleanup()
            shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, mk="", ox="", config=None, **sets):
        path = os.path.join(self.dir, "yjlinkd.conf")
        with open(path, "w") as f:
            f.write(config if config is not None else CONFIG % {"mk": mk, "ox": ox, "allow": ALLOW})
        s = {"delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "500"}
        s.update(sets)
        self.daemon = yjtest.Daemon(workdir=self.dir, config=path, sets=s).start()
        return self.daemon

    def feed(self):
        f = yjtest.Feed(self.daemon.ingest)
        self.cleanups.append(f.close)
        return f

    def send(self, feed, recipient):
        """One event for recipient; returns its seq (the request must be OK)."""
        r = feed.request("custody", lac_event(recipient))
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def subscriber(self, recipient, name=None):
        sub = YJN1Subscriber(self.daemon.notify, recipient, os.path.join(self.dir, (name or recipient) + ".cursor"))
        self.cleanups.append(sub.close)
        sub.connect()
        return sub

    def raw(self, **opts):
        """A bare DEALER on notify.endpoint, for what the clients never send."""
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        for k, v in opts.items():
            s.setsockopt(getattr(zmq, k), v)
        s.connect(self.daemon.notify)
        self.cleanups.append(s.close)
        return s

    def recv_raw(self, sock, timeout=WAIT):
        if not sock.poll(int(timeout * 1000)):
            return None
        return sock.recv_multipart()

    def wait_until(self, what, fn, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("%s: not after %.0f s\n--- yjlinkd log (tail) ---\n%s"
                          % (what, timeout, self.daemon.read_log()[-6000:] if self.daemon else ""))
            time.sleep(0.05)

    def next_note(self, sub, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            got = sub.recv_note(timeout_ms=500)
            if got:
                return got
        self.fail("%s: no note after %.0f s\n%s" % (what, WAIT, self.daemon.read_log()[-4000:]))

    def subscribers(self):
        code, body = self.daemon.ctl_request("subscribers")
        self.assertEqual(code, 0, body)
        return {s["recipient"]: s for s in body["subscribers"]}

    def outbox(self):
        code, body = self.daemon.ctl_request("outbox")
        self.assertEqual(code, 0, body)
        return body["recipients"]

    def disclosures(self, recipient):
        code, body = self.daemon.ctl_request("audit", {"limit": 100000})
        self.assertEqual(code, 0, body)
        return [r for r in body["records"] if r.get("action") == "disclosure" and r.get("recipient") == recipient]


# --- (1) two subscribers, both churning ---------------------------------------------

class ChurnTest(SubscribeBase):

    EVENTS = 240

    def test_two_subscribers_resume_from_their_cursors(self):
        rng = random.Random(SEED)
        # Small windows, so that a drop often leaves notes sent and not acknowledged.
        self.start(mk="zmq = { window = 7; };", ox="zmq = { window = 11; };")
        plan = [rng.choice([MK, OX]) for _ in range(self.EVENTS)]
        want = {MK: plan.count(MK), OX: plan.count(OX)}
        sent = {MK: [], OX: []}                  # seqs of the events sent for each
        got = {MK: [], OX: []}                   # (number, note) in arrival order, repeats included
        done = threading.Event()
        errors = []
        py_rng = random.Random(rng.random())
        c_rng = random.Random(rng.random())
        feed_rng = random.Random(rng.random())

        def feeder():
            try:
                f = yjtest.Feed(self.daemon.ingest)
                try:
                    for recipient in plan:
                        r = f.request("custody", lac_event(recipient))
                        if r[1] != b"OK":
                            raise AssertionError("YJL1 answered %r" % (r,))
                        sent[recipient].append(int(r[3]))
                        if feed_rng.random() < 0.1:
                            time.sleep(feed_rng.random() * 0.05)
                finally:
                    f.close()
            except Exception as e:
                errors.append(("feeder", e))

        def python_subscriber():
            # Three kinds of drop at random moments: a crash after receiving (a new object from the
            # cursor file: the unacknowledged note comes again and is handed out again), a lost
            # connection while a note is being handled (acknowledged afterwards), and a reconnect
            # after the ACK.
            try:
                cursor = os.path.join(self.dir, "mk.cursor")
                sub = YJN1Subscriber(self.daemon.notify, MK, cursor)
                sub.connect()
                try:
                    while not done.is_set():
                        note = sub.recv_note(timeout_ms=200)
                        if note is None:
                            continue
                        got[MK].append(note)
                        r = py_rng.random()
                        if r < 0.05:
                            sub.close()
                            sub = YJN1Subscriber(self.daemon.notify, MK, cursor)
                            sub.connect()
                            continue
                        if r < 0.10:
                            sub.reconnect()
                        sub.ack(note[0])
                        if 0.10 <= r < 0.15:
                            sub.reconnect()
                finally:
                    sub.close()
            except Exception as e:
                errors.append(("python subscriber", e))

        def c_subscriber():
            # Runs of yjn1-sub: most end by themselves after K notes (the K-th unacknowledged, as a crash);
            # some are killed (SIGKILL) at a random moment.
            try:
                cursor = os.path.join(self.dir, "ox.cursor")
                while not done.is_set():
                    argv = [YJN1_SUB, self.daemon.notify, OX, cursor]
                    kill_after = None
                    if c_rng.random() < 0.7:
                        argv += ["--exit-after-notes", str(c_rng.randint(1, 25))]
                    else:
                        kill_after = time.monotonic() + c_rng.random() * 0.5
                    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    try:
                        os.set_blocking(p.stdout.fileno(), False)
                        buf = b""
                        while True:
                            if done.is_set() or (kill_after and time.monotonic() > kill_after):
                                p.kill()
                            chunk = p.stdout.read()
                            if chunk:
                                buf += chunk
                                *lines, buf = buf.split(b"\n")
                                for line in lines:
                                    m = re.match(rb"^NOTE (\d+) (.*)$", line)
                                    if not m:
                                        raise AssertionError("yjn1-sub printed %r" % line)
                                    got[OX].append((int(m.group(1)), json.loads(m.group(2))))
                            elif p.poll() is not None:
                                break
                            else:
                                time.sleep(0.01)
                    finally:
                        if p.poll() is None:
                            p.kill()
                        p.wait()
                        err = p.stderr.read().decode("utf-8", "replace")
                        p.stderr.close()
                        p.stdout.close()
                    if p.returncode not in (0, -signal.SIGKILL):
                        raise AssertionError("yjn1-sub exited %s: %s" % (p.returncode, err))
            except Exception as e:
                errors.append(("C subscriber", e))

        threads = [threading.Thread(target=t, daemon=True) for t in (feeder, python_subscriber, c_subscriber)]
        for t in threads:
            t.start()

        def complete():
            if errors:
                self.fail("%s\n%s" % (errors, self.daemon.read_log()[-4000:]))
            return all(len({n for n, _ in got[r]}) >= want[r] for r in (MK, OX))
        try:
            self.wait_until("every notification at its subscriber", complete, timeout=max(WAIT, 180))
        finally:
            done.set()
            for t in threads:
                t.join(timeout=60)
        self.assertEqual(errors, [])

        for recipient in (MK, OX):
            with self.subTest(recipient=recipient):
                # Repeats dropped by number: each first arrival is above every earlier one (no gap, no
                # reordering), and each number carries the same note every time it came.
                first, seen = [], {}
                for number, note in got[recipient]:
                    if number in seen:
                        self.assertEqual(note, seen[number], "number %d came again with other content" % number)
                        continue
                    seen[number] = note
                    first.append(number)
                self.assertEqual(first, sorted(first), "first arrivals in increasing order")
                self.assertEqual(len(first), want[recipient])
                for number, note in seen.items():
                    self.assertEqual(note["notification_id"], note_id(number))
                    self.assertEqual(note["recipient"], recipient)
                    self.assertEqual(note["kind"], "lac_in_custody")
                self.assertEqual(sorted(n["event"]["seq"] for n in seen.values()), sorted(sent[recipient]),
                                 "one note per event sent for it")
                self.assertGreater(len(got[recipient]), 0)
        # Repeats did happen (drops before ACK), so the dedupe above was exercised.
        self.assertGreater(len(got[MK]) + len(got[OX]), self.EVENTS, "no note came twice: the drops did nothing")

        # Matching the outbox: nothing left, one disclosure per notification id, each to a YJN1 address.
        self.wait_until("the outbox empty", lambda: self.outbox() == {})
        for recipient in (MK, OX):
            ids = sorted(note_id(n) for n, _ in got[recipient])
            ids = sorted(set(ids))
            recs = self.wait_until("a disclosure audited per note of %s" % recipient,
                                   lambda: (lambda d: d if len(d) >= len(ids) else None)(self.disclosures(recipient)))
            self.assertEqual(sorted(r["notification_id"] for r in recs), ids, "one disclosure per notification id")
            for r in recs:
                self.assertTrue(r["address"].startswith("yjn1:"), r)
        subs = self.subscribers()
        for recipient in (MK, OX):
            self.assertEqual(subs[recipient]["lag"], 0)
            self.assertEqual(subs[recipient]["last_acked"], max(n for n, _ in got[recipient]))


# --- (2) kill -9 with notes unacknowledged -------------------------------------------

class CrashTest(SubscribeBase):

    def test_kill_9_redelivers_the_same_numbers_and_ids(self):
        d = self.start()
        f = self.feed()
        seqs = [self.send(f, MK) for _ in range(10)]
        cursor = os.path.join(self.dir, "mk.cursor")
        sub = YJN1Subscriber(d.notify, MK, cursor)
        sub.connect()
        before = [self.next_note(sub, "note %d before the crash" % i) for i in range(10)]
        self.assertEqual([n for n, _ in before], sorted(n for n, _ in before))
        for number, _ in before[:4]:
            sub.ack(number)
        self.wait_until("4 acknowledged, 6 in flight",
                        lambda: (lambda s: s["last_acked"] == before[3][0] and s["in_flight"] == 6)(
                            self.subscribers()[MK]))
        # Committed, not only taken: the audit is read from the store, and the four disclosures are
        # in the transaction that records the cursor. (An ACK taken and not yet committed when the
        # daemon dies is healed by the next HELLO, whose cursor says the subscriber has it.)
        self.wait_until("4 disclosures committed", lambda: len(self.disclosures(MK)) == 4)
        sub.close()

        d.kill()                                  # SIGKILL: no drain, no goodbye
        f.close()
        d.start()
        f = self.feed()
        # The cursor survived the crash (committed with those four completions).
        s = self.subscribers()[MK]
        self.assertEqual(s["last_acked"], before[3][0])
        self.assertEqual(s["lag"], 6)

        sub = YJN1Subscriber(d.notify, MK, cursor)
        self.cleanups.append(sub.close)
        sub.connect()
        again = [self.next_note(sub, "note %d after the restart" % i) for i in range(6)]
        self.assertEqual([n for n, _ in again], [n for n, _ in before[4:]], "the same numbers")
        self.assertEqual([x["notification_id"] for _, x in again], [x["notification_id"] for _, x in before[4:]],
                         "the same notification ids")
        self.assertEqual([x["event"]["seq"] for _, x in again], seqs[4:])
        # And what comes next follows on.
        later = [self.send(f, MK) for _ in range(3)]
        more = [self.next_note(sub, "a new note after the restart") for _ in range(3)]
        self.assertEqual([x["event"]["seq"] for _, x in more], later)
        self.assertGreater(more[0][0], again[-1][0])
        for number, _ in again + more:
            sub.ack(number)
        self.wait_until("the outbox empty", lambda: self.outbox() == {})
        recs = self.wait_until("13 disclosures", lambda: (lambda r: r if len(r) >= 13 else None)(self.disclosures(MK)))
        self.assertEqual(sorted(r["notification_id"] for r in recs),
                         sorted(x["notification_id"] for _, x in before + more))


# --- (3) ERROR, and the daemon keeps serving -----------------------------------------

class ErrorTest(SubscribeBase):

    def expect_error(self, frames, reason_part, then_hello=True):
        s = self.raw()
        s.send_multipart(frames)
        r = self.recv_raw(s)
        self.assertIsNotNone(r, "no answer to %r" % (frames,))
        self.assertEqual(r[:2], [b"YJN1", b"ERROR"], r)
        self.assertEqual(len(r), 3, r)
        self.assertIn(reason_part, r[2].decode(), r)
        return s

    def test_errors(self):
        d = self.start()
        f = self.feed()
        good = self.subscriber(OX)
        self.send(f, OX)
        n1, _ = self.next_note(good, "first note to the good subscriber")
        good.ack(n1)

        self.expect_error([b"YJN1", b"HELLO", b"children_services:E99999999", b"0"], "unknown recipient")
        self.expect_error([b"YJN1", b"HELLO", b"\xff\x00bogus", b"0"], "unknown recipient")
        self.expect_error([b"YJN1", b"HELLO", WM.encode(), b"0"], "not zmq")
        self.expect_error([b"YJN1", b"HELLO", MK.encode()], "four frames")
        self.expect_error([b"YJN1", b"HELLO", MK.encode(), b"0", b"extra"], "four frames")
        self.expect_error([b"YJN2", b"HELLO", MK.encode(), b"0"], "YJN1")
        self.expect_error([b"YJN1"], "no command")
        self.expect_error([b"YJN1", b"SUBSCRIBE", MK.encode(), b"0"], "unknown command")
        for bad in (b"", b"-1", b"12a", b" 1", b"+1", b"99999999999999999999999"):
            self.expect_error([b"YJN1", b"HELLO", MK.encode(), bad], "decimal")
        self.expect_error([b"YJN1", b"ACK", b"1"], "ACK before HELLO")
        self.expect_error([b"YJN1", b"ACK", b"1", b"2"], "three frames")
        self.expect_error([b"YJN1", b"HELLO", MK.encode(), b"1000000"], "cursor ahead")

        # ACK of a number never sent, after a good HELLO; then nothing more on that connection, not
        # even for a good HELLO, while a new connection is served.
        self.send(f, MK)
        s = self.raw()
        s.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        r = self.recv_raw(s)
        self.assertEqual(r[:2], [b"YJN1", b"NOTE"], r)
        s.send_multipart([b"YJN1", b"ACK", b"%d" % (int(r[2]) + 1000)])
        r = self.recv_raw(s)
        self.assertEqual(r, [b"YJN1", b"ERROR", b"ACK of a number never sent"])
        s.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        self.wait_until("MK shown disconnected after its ERROR", lambda: not self.subscribers()[MK]["connected"])
        self.assertIsNone(self.recv_raw(s, timeout=QUIET), "something came after ERROR")
        mk = self.subscriber(MK)
        n, note = self.next_note(mk, "the MK note on a new connection")
        self.assertEqual(note["recipient"], MK)
        mk.ack(n)

        # The good subscriber was served all along, and is still.
        seq = self.send(f, OX)
        n2, note = self.next_note(good, "the good subscriber's next note")
        self.assertEqual(note["event"]["seq"], seq)
        good.ack(n2)
        self.wait_until("the outbox empty", lambda: self.outbox() == {})

    def test_newer_connection_wins(self):
        d = self.start()
        f = self.feed()
        self.send(f, MK)
        old = self.raw()
        old.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        r = self.recv_raw(old)
        self.assertEqual(r[:2], [b"YJN1", b"NOTE"])
        number = r[2]
        new = self.raw()
        new.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        # The newer gets the unacknowledged note again; the older is told it was replaced.
        r2 = self.recv_raw(new)
        self.assertEqual(r2[:3], [b"YJN1", b"NOTE", number])
        r = self.recv_raw(old)
        self.assertEqual(r[:2], [b"YJN1", b"ERROR"], r)
        self.assertIn(b"replaced", r[2])
        new.send_multipart([b"YJN1", b"ACK", number])
        self.wait_until("the outbox empty", lambda: self.outbox() == {})
        self.assertEqual(self.subscribers()[MK]["last_acked"], int(number))


# --- (4) a subscriber that never reads; the window ---------------------------------------

class SlowSubscriberTest(SubscribeBase):

    def test_never_reading_subscriber_stops_nothing(self):
        # MK's window is as large as it gets, so the daemon keeps pushing to a connection that never
        # reads until its queue is full; its kernel buffer is kept small so that happens soon.
        self.start(mk="zmq = { window = 100000; };")
        f = self.feed()
        stuck = self.raw(RCVHWM=1, RCVBUF=4096)
        stuck.send_multipart([b"YJN1", b"HELLO", MK.encode(), b"0"])
        self.wait_until("MK connected", lambda: self.subscribers()[MK]["connected"])
        good = self.subscriber(OX)

        rng = random.Random(SEED)
        count = {MK: 0, OX: 0}
        pending = 0
        # Pipelined, as police ICT sends: every request gets its OK whatever the subscribers do.
        plan = [MK if rng.random() < 0.7 else OX for _ in range(1500)]
        for recipient in plan:
            f.send("custody", lac_event(recipient))
            count[recipient] += 1
            pending += 1
            if pending >= 100:
                for _ in range(pending):
                    r = f.recv(timeout_ms=int(WAIT * 1000))
                    self.assertEqual(r[1], b"OK", r)
                pending = 0
        for _ in range(pending):
            r = f.recv(timeout_ms=int(WAIT * 1000))
            self.assertEqual(r[1], b"OK", r)

        received = set()
        while len(received) < count[OX]:
            n, note = self.next_note(good, "OX note %d of %d" % (len(received) + 1, count[OX]))
            self.assertEqual(note["recipient"], OX)
            received.add(n)
            good.ack(n)
        self.wait_until("every OX note acknowledged", lambda: self.subscribers()[OX]["lag"] == 0)
        s = self.wait_until("all MK notes held for the stuck subscriber",
                            lambda: (lambda s: s if s["lag"] == count[MK] else None)(self.subscribers()[MK]))
        self.assertTrue(s["connected"])
        self.assertGreater(s["in_flight"], 0)
        self.assertEqual(s["last_acked"], 0)

    def test_window_bounds_unacknowledged_notes(self):
        self.start()
        f = self.feed()
        for _ in range(12):
            self.send(f, BK)
        s = self.raw()
        s.send_multipart([b"YJN1", b"HELLO", BK.encode(), b"0"])
        notes = []
        for i in range(5):
            r = self.recv_raw(s)
            self.assertIsNotNone(r, "note %d of the window" % (i + 1))
            self.assertEqual(r[:2], [b"YJN1", b"NOTE"])
            notes.append(int(r[2]))
        self.wait_until("5 in flight, 7 waiting",
                        lambda: (lambda x: x["in_flight"] == 5 and x["held"] == 7 and x["window"] == 5)(
                            self.subscribers()[BK]))
        self.assertIsNone(self.recv_raw(s, timeout=QUIET), "a sixth NOTE while five are unacknowledged")
        # Each ACK makes room for as many more: two acknowledged, two more come.
        s.send_multipart([b"YJN1", b"ACK", b"%d" % notes[1]])
        for i in range(2):
            r = self.recv_raw(s)
            self.assertIsNotNone(r, "note after the ACK")
            notes.append(int(r[2]))
        self.assertEqual(notes, sorted(notes))
        self.wait_until("5 in flight again", lambda: self.subscribers()[BK]["in_flight"] == 5)
        self.assertIsNone(self.recv_raw(s, timeout=QUIET), "more than the window after the ACK")


# --- (5) a daily digest as one NOTE ----------------------------------------------------

DIGEST_CONFIG = """
deployment = { id = "sd"; name = "Subscription digest test"; force = "E23000029"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "zmq";
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*", "arrest.*" ]; }
);
rules = (
  { id = "arrest_digest"; feeds = [ "arrest" ]; recipient = "yjs:home"; mode = "digest";
    legal_basis = "Crime and Disorder Act 1998 s.115"; }
);
"""


def local(y, mo, d, hh, mm=0):
    return int(datetime.datetime(y, mo, d, hh, mm, tzinfo=LONDON).timestamp())


class DigestTest(SubscribeBase):

    def clock(self, ts):
        code, body = self.daemon.ctl_request("clock", {"set": yjtest.utc(ts)})
        self.assertEqual(code, 0, body)

    def test_digest_is_one_note(self):
        start = local(2026, 6, 8, 10, 0)                  # Monday, BST
        self.start(config=DIGEST_CONFIG, **{"testing.clock_control": "true",
                                            "testing.clock_start": yjtest.utc(start)})
        f = self.feed()
        seqs = []
        for i in range(3):
            t = start + 3600 * (i + 1)
            self.clock(t)
            ev = yjtest.custody_event(occurred_at=yjtest.utc(t - 60))
            ev["source_id"] = "sd-%d-%d" % (os.getpid(), i)
            ev["child"]["date_of_birth"] = "2011-03-02"
            del ev["custody"]
            ev["arrest"] = {"arrest_id": "A-%d" % i, "arrested_at": yjtest.utc(t - 60)}
            r = f.request("arrest", ev)
            self.assertEqual(r[1], b"OK", r)
            seqs.append(int(r[3]))
        sub = self.subscriber("yjs:mk")
        send_at = local(2026, 6, 9, 7, 30)
        self.clock(send_at + 60)
        number, d = self.next_note(sub, "the digest")
        self.assertTrue(d["digest_id"].startswith("sd-digest-mk-20260609T0730"), d["digest_id"])
        self.assertEqual(d["recipient"], "yjs:mk")
        self.assertEqual(d["date"], "2026-06-09")
        self.assertEqual(set(d["window"]), {"from", "to"})
        self.assertEqual(d["window"]["to"], yjtest.utc(send_at))
        self.assertEqual(sorted(int(r["seq"]) for r in d["rows"] if r["section"] == "arrest"), seqs)
        sub.ack(number)
        self.wait_until("the outbox empty", lambda: self.outbox() == {})
        recs = self.wait_until("the digest audited", lambda: self.disclosures("yjs:mk"))
        self.assertEqual([r["notification_id"] for r in recs], [d["digest_id"]])
        self.assertTrue(recs[0]["address"].startswith("yjn1:"))
        self.assertIsNone(sub.recv_note(timeout_ms=int(QUIET * 1000)), "one NOTE per digest")


# --- (6) yjlinkctl subscribers and the metrics -------------------------------------------

def metric(text, name, recipient):
    m = re.search(r'^%s\{recipient="%s"\} (\S+)$' % (re.escape(name), re.escape(recipient)), text, re.M)
    return float(m.group(1)) if m else None


class ObserveTest(SubscribeBase):

    def metrics(self):
        url = "http://%s/metrics" % self.daemon.sets["metrics.endpoint"]
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()

    def test_subscribers_command_and_metrics(self):
        self.start()
        f = self.feed()
        for _ in range(3):
            self.send(f, MK)
        sub = self.subscriber(MK)
        notes = [self.next_note(sub, "note %d" % i) for i in range(3)]
        sub.ack(notes[0][0])
        self.wait_until("MK: last acked %d, lag 2" % notes[0][0],
                        lambda: (lambda s: s["last_acked"] == notes[0][0] and s["lag"] == 2)(self.subscribers()[MK]))

        code, out, err = self.daemon.ctl("--json", "subscribers")
        body = json.loads(out)
        mine = [s for s in body["subscribers"] if s["recipient"] == MK]
        self.assertEqual(len(mine), 1, body)
        s = mine[0]
        self.assertIs(s["connected"], True)
        self.assertEqual((s["last_acked"], s["held"], s["in_flight"], s["lag"], s["window"]),
                         (notes[0][0], 0, 2, 2, 1000))
        # Every zmq recipient is listed, connected or not; the one of transport none is not.
        self.assertEqual({x["recipient"] for x in body["subscribers"]}, {MK, OX, BK})
        code, out, err = self.daemon.ctl("subscribers")
        lines = [l for l in out.splitlines() if l.startswith(MK + " ")]
        self.assertEqual(len(lines), 1, out)
        self.assertEqual(lines[0].split()[:6], [MK, "yes", str(notes[0][0]), "0", "2", "2"], out)
        self.assertEqual(len([l for l in out.splitlines() if l.startswith("children_services:")]), 3, out)

        text = self.wait_until("the lag in /metrics",
                               lambda: (lambda t: t if metric(t, "yjlink_subscriber_lag", MK) == 2 else None)(
                                   self.metrics()))
        self.assertEqual(metric(text, "yjlink_subscriber_connected", MK), 1)
        self.assertEqual(metric(text, "yjlink_subscriber_connected", OX), 0)
        self.assertEqual(metric(text, "yjlink_subscriber_lag", OX), 0)
        self.assertIn("# TYPE yjlink_subscriber_lag gauge", text)

        # Gone: shown disconnected (the socket monitor), the two notes still owed.
        sub.close()
        self.wait_until("MK shown disconnected", lambda: not self.subscribers()[MK]["connected"])
        self.wait_until("connected 0 in /metrics",
                        lambda: metric(self.metrics(), "yjlink_subscriber_connected", MK) == 0)
        s = self.subscribers()[MK]
        self.assertEqual((s["lag"], s["in_flight"], s["held"]), (2, 0, 2))
        code, out, err = self.daemon.ctl("subscribers")
        self.assertEqual([l for l in out.splitlines() if l.startswith(MK + " ")][0].split()[1], "no")


if __name__ == "__main__":
    unittest.main(verbosity=2)
