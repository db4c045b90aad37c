"""The inputs besides YJL1, against the real daemon (interfaces.md §1):

- a police publisher: a Python XPUB the daemon's ZMQ_SUB connects to (an XPUB
  shows the daemon's subscriptions arrive, so no message is sent before the
  daemon can keep it); events stored, a deliberate gap counted in
  yjlink_feed_gaps_total and logged, another force's message and malformed
  ones quarantined, and the last sequence number kept in the store across
  restarts (no false gap, and a real one still seen);
- the spool directory: good and bad lines (failed/ with NAME.errors listing
  exactly the bad lines), a good file (done/), a file whose name names no
  feed, a file written in place; kill -9 half-way through a file, then the
  file finished with every line stored once; RETRY lines sent again, never
  failed; a 100,000-line file in far fewer group commits than lines;
- their settings under --check, and clients/yjl1_feed.py, the reference
  YJL1 client.

Nothing here asserts a timing: every wait polls with a generous deadline
(CI runs under `stress --cpu 2`).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import zmq

import yjtest
from yjtest import custody_event, with_path

DEADLINE = 120          # seconds any one wait may take under load; never a pass/fail timing
FEEDS = (b"custody", b"arrest", b"voluntary_interview", b"outcome")

CONF = """
deployment = { id = "inputs"; name = "Inputs test"; force = "E23000029"; };
ingest = {
  publishers = (
    { name = "tvp-athena"; endpoint = "%(publisher)s"; force = "E23000029"; }
  );
};
spool = { directory = "%(spool)s"; force = "E23000029"; };
"""


def wait_for(pred, what, timeout=DEADLINE, every=0.05):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(every)


def metrics(daemon):
    url = "http://%s/metrics" % daemon.sets["metrics.endpoint"]
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def metric(text, name, **labels):
    """The value of one sample (labels exactly as given, in any order), or None."""
    for line in text.splitlines():
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if got == {k: str(v) for k, v in labels.items()}:
            return float(m.group(3))
    return None


def status_events(daemon):
    _, st = daemon.ctl_request("status")
    return st["store"]["events"]


def stored_source_ids(daemon, limit=1000000):
    code, out = daemon.ctl_request("events", {"limit": limit}, timeout_ms=120000)
    assert code == 0, out
    return [e["source_id"] for e in out["events"]]


class Publisher:
    """A police publisher: an XPUB bound on a free port. XPUB_VERBOSE hands
    us every subscription, also the ones a restarted daemon sends again."""

    def __init__(self):
        self.endpoint = "tcp://127.0.0.1:%d" % yjtest.free_port()
        self.sock = zmq.Context.instance().socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.bind(self.endpoint)

    def wait_subscribed(self, timeout=DEADLINE):
        """Until the daemon's SUB has subscribed to all four feeds: from then on nothing is dropped."""
        want = set(FEEDS)
        deadline = time.time() + timeout
        while want:
            left = int((deadline - time.time()) * 1000)
            if left <= 0 or not self.sock.poll(left):
                raise AssertionError("the daemon did not subscribe; still missing %s" % sorted(want))
            m = self.sock.recv()
            if m[:1] == b"\x01":
                want.discard(m[1:])

    def send(self, seq, ev, feed=b"custody"):
        self.sock.send_multipart([feed, str(seq).encode(), json.dumps(ev).encode()])

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def close(self):
        self.sock.close()


class InputsBase(unittest.TestCase):
    sets = {}

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjtest-inputs-")
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool)
        self.publisher = Publisher()
        self.conf = os.path.join(self.dir, "y.conf")
        with open(self.conf, "w") as f:
            f.write(CONF % {"publisher": self.publisher.endpoint, "spool": self.spool})
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf, sets=self.sets)

    def tearDown(self):
        self.daemon.kill()
        self.publisher.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def restart(self, sig=signal.SIGTERM):
        self.daemon.kill(sig)
        self.daemon.start()


class PublisherTest(InputsBase):

    def log_since(self, mark):
        return self.daemon.read_log()[mark:]

    def test_events_gap_forbidden_malformed_and_restart(self):
        d = self.daemon.start()
        self.publisher.wait_subscribed()
        evs = {seq: custody_event() for seq in (1, 2, 3, 6, 7, 9, 12)}
        for seq in (1, 2, 3):
            self.publisher.send(seq, evs[seq])
        # The deliberate gap: 4 and 5 are never sent.
        for seq in (6, 7):
            self.publisher.send(seq, evs[seq])
        other = custody_event(force="E23000001")
        self.publisher.send(8, other)
        # Malformed: neither moves the sequence nor is stored.
        self.publisher.send_frames([b"custody", b"8x", json.dumps(custody_event()).encode()])
        self.publisher.send_frames([b"custody", b"8"])

        want = {evs[s]["source_id"] for s in (1, 2, 3, 6, 7)}
        wait_for(lambda: want <= set(self.stored()), "the publisher's events to be stored")
        self.assertNotIn(other["source_id"], self.stored())
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_feed_messages_total", publisher="tvp-athena") == 8
                                 else None)(metrics(d)), "all eight messages counted")
        self.assertEqual(metric(text, "yjlink_feed_gaps_total", publisher="tvp-athena"), 2)
        self.assertEqual(metric(text, "yjlink_feed_resets_total", publisher="tvp-athena"), 0)
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_feed_results_total", publisher="tvp-athena",
                                                       result="reject") == 3 else None)(metrics(d)),
                        "three refusals counted")
        self.assertEqual(metric(text, "yjlink_feed_results_total", publisher="tvp-athena", result="ok"), 5)
        self.assertIn("in_sub: publisher tvp-athena: gap of 2 message(s): got 6 after 3", d.read_log())

        # Another force: REJECT forbidden, quarantined; the malformed two: protocol.
        code, out, _ = d.ctl("--json", "quarantine", "list", "--limit", "10")
        entries = [e for e in json.loads(out)["entries"] if e["origin"] == "sub"]
        forbidden = [e for e in entries if e["error"] == "forbidden"]
        self.assertEqual(len(forbidden), 1, entries)
        self.assertEqual((forbidden[0]["source_id"], forbidden[0]["field"]), (other["source_id"], "force"))
        self.assertEqual(len([e for e in entries if e["error"] == "protocol"]), 2, entries)
        # yjlinkctl events lists them, no names in the listing.
        code, out, _ = d.ctl("--json", "events", "--feed", "custody")
        listed = {e["source_id"] for e in json.loads(out)["events"]}
        self.assertTrue(want <= listed)
        self.assertNotIn("Alex", d.read_log())

        # Restart: the last sequence number (8) comes from the store, so 9 is no gap.
        mark = len(d.read_log())
        self.restart()
        self.publisher.wait_subscribed()
        self.publisher.send(9, evs[9])
        wait_for(lambda: evs[9]["source_id"] in self.stored(), "the message after the restart to be stored")
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_feed_messages_total", publisher="tvp-athena") == 1
                                 else None)(metrics(d)), "the message after the restart counted")
        self.assertEqual(metric(text, "yjlink_feed_gaps_total", publisher="tvp-athena"), 0)
        self.assertEqual(metric(text, "yjlink_feed_resets_total", publisher="tvp-athena"), 0)
        self.assertNotIn("gap of", self.log_since(mark))
        self.assertIn("after sequence number 8", self.log_since(mark))

        # And again: a real gap across a restart (10 and 11 missed) is still told.
        mark = len(d.read_log())
        self.restart()
        self.publisher.wait_subscribed()
        self.publisher.send(12, evs[12])
        wait_for(lambda: evs[12]["source_id"] in self.stored(), "the message after the second restart")
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_feed_messages_total", publisher="tvp-athena") == 1
                                 else None)(metrics(d)), "the message after the second restart counted")
        self.assertEqual(metric(text, "yjlink_feed_gaps_total", publisher="tvp-athena"), 2)
        self.assertIn("gap of 2 message(s): got 12 after 9", self.log_since(mark))

        # A publisher restarting its sequence is a reset, not a gap.
        self.publisher.send(1, custody_event())
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_feed_resets_total", publisher="tvp-athena") == 1
                                 else None)(metrics(d)), "the reset counted")
        self.assertEqual(metric(text, "yjlink_feed_gaps_total", publisher="tvp-athena"), 2)

    def stored(self):
        return stored_source_ids(self.daemon, 1000)


class FeedClientTest(unittest.TestCase):
    """clients/yjl1_feed.py, the reference YJL1 client, against the daemon."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = yjtest.Daemon().start()
        cls.client = os.path.join(yjtest.SOURCE, "clients", "yjl1_feed.py")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()

    def feed(self, lines, *args):
        path = os.path.join(self.daemon.dir, "events.jsonl")
        with open(path, "w") as f:
            f.write("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines))
        p = subprocess.run(["/usr/bin/python3", self.client, "--endpoint", self.daemon.ingest, "--window", "7"] +
                           list(args) + [path], capture_output=True, text=True, timeout=DEADLINE)
        return p.returncode, [l.split("\t") for l in p.stdout.splitlines()], p.stderr

    def test_every_reply_one_line_and_exit_codes(self):
        evs = [custody_event() for _ in range(50)]
        code, out, err = self.feed(evs)
        self.assertEqual(code, 0, err)
        self.assertEqual([o[:2] for o in out], [["OK", e["source_id"]] for e in evs])
        # Again: DUP with the stored seq, still 0; a bad one makes it 1.
        bad = with_path(custody_event(), "custody.status", "escaped")
        code, out, err = self.feed(evs[:2] + [bad, ""])
        self.assertEqual(code, 1)
        self.assertEqual([o[0] for o in out], ["DUP", "DUP", "REJECT"])
        self.assertEqual(json.loads(out[2][2])["field"], "custody.status")
        # A line whose feed cannot be told is not sent; with --feed it is, and refused by the daemon.
        code, out, err = self.feed(["{not json"])
        self.assertEqual((code, out[0][0]), (1, "ERROR"))
        code, out, err = self.feed(["{not json"], "--feed", "custody")
        self.assertEqual((code, out[0][0], json.loads(out[0][2])["error"]), (1, "REJECT", "syntax"))


class InputsCheckTest(unittest.TestCase):
    """yjlinkd --check of ingest.publishers and spool: FILE:LINE for each mistake."""

    def check(self, text):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "y.conf")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([yjtest.YJLINKD, "--config", path, "--check"], capture_output=True, text=True,
                               timeout=60)
            return p.returncode, p.stderr.replace(path, "F")

    def test_publishers_and_spool_refused_at_their_lines(self):
        code, err = self.check("\n".join([
            'ingest = { publishers = (',                                                          # 1
            '  { name = "tvp-athena"; endpoint = "tcp://127.0.0.1:7450"; force = "E23000029"; },',  # 2
            '  { name = "Bad!"; endpoint = "udp://x"; force = "X"; server_key = "k"; },',         # 3
            '  { name = "tvp-athena"; endpoint = "ipc:///tmp/p"; force = "W15000001"; }',          # 4
            '); };',
            'spool = { directory = "relative"; };',                                               # 6
        ]))
        self.assertEqual(code, 1, err)
        for want in ("F:3: 'ingest.publishers' item 2: name must be 1-64 of [a-z0-9-], not 'Bad!'",
                     "F:3: 'ingest.publishers' item 2: endpoint must be tcp:// or ipc://",
                     "F:3: 'ingest.publishers' item 2: force must be the GSS code",
                     "F:3: 'ingest.publishers' item 2: server_key must be a CURVE public key",
                     "F:4: publisher 'tvp-athena' is declared twice (first at line 2)",
                     "F:6: 'spool.directory' must be an absolute path",
                     "F:6: 'spool.force' is required with a spool.directory"):
            self.assertIn(want, err)
        code, err = self.check('ingest = { publishers = ( { name = "a"; endpoint = "tcp://127.0.0.1:1"; }, 7 ); };\n')
        self.assertEqual(code, 1)
        self.assertIn("F:1: 'ingest.publishers' item 1: 'force' is required", err)
        self.assertIn("F:1: 'ingest.publishers': each item must be a group", err)
        code, err = self.check('ingest = { publishers = ( { name = "a"; endpoint = "ipc:///tmp/a"; force = "E23000029"; } );\n'
                               '  batch_max = 100; };\nspool = { directory = "/tmp/spool"; force = "E23000029"; };\n')
        self.assertEqual(code, 0, err)


class NoPublisherTest(unittest.TestCase):

    def test_gaps_family_without_publishers(self):
        d = yjtest.Daemon().start()
        try:
            text = metrics(d)
            self.assertIn("# TYPE yjlink_feed_gaps_total counter", text)
            self.assertNotIn("yjlink_feed_gaps_total{", text)
            # No spool directory: the spool input is off.
            self.assertNotIn("yjlink_spool_files_total", text)
        finally:
            d.cleanup()


def write_into(spool, name, lines, in_place=False):
    """A spool file as an exporter makes one: written beside, then renamed in
    (or, in_place, written under its own name and closed)."""
    path = os.path.join(spool, name)
    tmp = path if in_place else os.path.join(spool, "." + name + ".tmp")
    with open(tmp, "w") as f:
        for l in lines:
            f.write((l if isinstance(l, str) else json.dumps(l)) + "\n")
    if not in_place:
        os.rename(tmp, path)
    return path


class SpoolTest(InputsBase):

    def wait_moved(self, name, where, timeout=DEADLINE):
        path = os.path.join(self.spool, where, name)
        wait_for(lambda: os.path.exists(path) and not os.path.exists(os.path.join(self.spool, name)),
                 "%s to be moved to %s/" % (name, where), timeout)
        return path

    def test_good_and_bad_lines_report_and_stores(self):
        d = self.daemon.start()
        self.assertTrue(os.path.isdir(os.path.join(self.spool, "done")))
        self.assertEqual(os.stat(os.path.join(self.spool, "failed")).st_mode & 0o777, 0o700)
        good = [custody_event() for _ in range(3)]
        lines = [
            good[0],                                                        # 1
            with_path(custody_event(), "child.given_name", yjtest.DELETE),  # 2 schema
            good[1],                                                        # 3
            with_path(custody_event(), "custody.status", "escaped"),        # 4 value
            "",                                                             # 5 blank: no request
            custody_event(force="E23000001"),                               # 6 forbidden
            "{not json",                                                    # 7 syntax
            good[2],                                                        # 8
        ]
        name = "custody-20261122T0600.jsonl"
        write_into(self.spool, name, lines)
        self.wait_moved(name, "failed")
        with open(os.path.join(self.spool, "failed", name + ".errors")) as f:
            report = f.read().splitlines()
        got = []
        for l in report:
            m = re.match(r"^(\d+): (\S+) (\S*): (.+)$", l)
            self.assertTrue(m, "not LINE: CODE FIELD: REASON: %r" % l)
            got.append((int(m.group(1)), m.group(2), m.group(3)))
        self.assertEqual(got, [(2, "schema", "child.given_name"), (4, "value", "custody.status"), (6, "forbidden", "force"),
                               (7, "syntax", "")])
        stored = set(stored_source_ids(d))
        self.assertTrue({g["source_id"] for g in good} <= stored)
        self.assertNotIn(lines[5]["source_id"], stored)
        self.assertFalse([n for n in os.listdir(self.spool) if n.endswith(".part")])

        # A good file: done/, no report.
        goods = [custody_event() for _ in range(5)]
        write_into(self.spool, "custody-20261122T0700.jsonl", goods)
        self.wait_moved("custody-20261122T0700.jsonl", "done")
        self.assertFalse(os.path.exists(os.path.join(self.spool, "done", "custody-20261122T0700.jsonl.errors")))
        self.assertTrue({g["source_id"] for g in goods} <= set(stored_source_ids(d)))

        # The same lines again under a new name: all DUP, still done/ (nothing stored twice).
        before = status_events(d)
        write_into(self.spool, "custody-20261122T0800.jsonl", goods)
        self.wait_moved("custody-20261122T0800.jsonl", "done")
        self.assertEqual(status_events(d), before)

        # Written in place and closed: taken too.
        inplace = [custody_event() for _ in range(2)]
        write_into(self.spool, "custody-inplace.jsonl", inplace, in_place=True)
        self.wait_moved("custody-inplace.jsonl", "done")

        # A name that names no feed: the whole file to failed/, line 0.
        write_into(self.spool, "bogus-20261122.jsonl", [custody_event()])
        self.wait_moved("bogus-20261122.jsonl", "failed")
        with open(os.path.join(self.spool, "failed", "bogus-20261122.jsonl.errors")) as f:
            self.assertEqual(f.read(), "0: protocol : unknown feed in the file name\n")

        # Anything but *.jsonl is left alone.
        with open(os.path.join(self.spool, "notes.txt"), "w") as f:
            f.write("hello\n")
        write_into(self.spool, "custody-last.jsonl", [custody_event()])
        self.wait_moved("custody-last.jsonl", "done")
        self.assertTrue(os.path.exists(os.path.join(self.spool, "notes.txt")))

        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_spool_files_total", result="done") == 4 else None)(
            metrics(d)), "the files counted in /metrics")
        self.assertEqual(metric(text, "yjlink_spool_files_total", result="failed"), 2)
        self.assertEqual(metric(text, "yjlink_spool_lines_total", result="reject"), 4)
        self.assertNotIn("Alex", d.read_log())

    def test_files_waiting_at_start_are_taken(self):
        name = "custody-early.jsonl"
        evs = [custody_event() for _ in range(3)]
        write_into(self.spool, name, evs)
        d = self.daemon.start()
        self.wait_moved(name, "done")
        self.assertTrue({e["source_id"] for e in evs} <= set(stored_source_ids(d)))


class SpoolKillTest(InputsBase):
    # Small batches: a 20,000-line file takes many commits, so the kill lands half-way.
    sets = {"ingest.batch_max": "50"}

    def test_kill_9_mid_file_then_finished_once(self):
        d = self.daemon.start()
        n = 20000
        evs = [custody_event() for _ in range(n)]
        name = "custody-big.jsonl"
        write_into(self.spool, name, evs)
        # Two chunks stored: the first one's progress is then surely in the .part too.
        count = wait_for(lambda: (lambda c: c if c >= 100 else 0)(status_events(d)), "a first part of the file to be stored",
                         every=0.005)
        d.kill(signal.SIGKILL)
        if count >= n:
            self.skipTest("the whole file was stored before the kill landed (%d lines)" % n)
        self.assertTrue(os.path.exists(os.path.join(self.spool, name)))
        self.assertTrue(os.path.exists(os.path.join(self.spool, "." + name + ".part")))
        mark = len(d.read_log())
        d.start()
        path = os.path.join(self.spool, "done", name)
        wait_for(lambda: os.path.exists(path), "the file to be finished after the restart")
        ids = stored_source_ids(d)
        self.assertEqual(len(ids), n)
        self.assertEqual(len(set(ids)), n)
        self.assertEqual(set(ids), {e["source_id"] for e in evs})
        m = re.search(r"in_spool: %s: taken up again after line (\d+)" % re.escape(name), d.read_log()[mark:])
        self.assertTrue(m, d.read_log()[mark:])
        self.assertGreater(int(m.group(1)), 0)
        self.assertFalse(os.path.exists(os.path.join(self.spool, "." + name + ".part")))


class SpoolRetryTest(InputsBase):
    # A store capped at 1 MiB fills up: ingest answers RETRY.
    sets = {"store.map_size_mb": "1", "store.max_map_size_mb": "1"}

    def test_retry_lines_are_sent_again_not_failed(self):
        d = self.daemon.start()
        n = 3000
        evs = [custody_event() for _ in range(n)]
        name = "custody-full.jsonl"
        write_into(self.spool, name, evs)
        first = wait_for(lambda: metric(metrics(d), "yjlink_spool_lines_total", result="retry"),
                         "the store to fill up and answer RETRY")
        self.assertLess(status_events(d), n)
        # Sent again after a pause, again RETRY: never failed, never moved.
        wait_for(lambda: metric(metrics(d), "yjlink_spool_lines_total", result="retry") > first, "a second RETRY")
        self.assertTrue(os.path.exists(os.path.join(self.spool, name)))
        self.assertEqual(os.listdir(os.path.join(self.spool, "failed")), [])
        # Room again (a bigger cap needs a restart): the file finishes, each line stored once.
        self.daemon.sets["store.max_map_size_mb"] = "256"
        self.restart()
        wait_for(lambda: os.path.exists(os.path.join(self.spool, "done", name)), "the file to be finished")
        ids = stored_source_ids(d)
        self.assertEqual(sorted(ids), sorted(e["source_id"] for e in evs))


class SpoolBulkTest(InputsBase):

    def test_100000_lines_in_few_group_commits(self):
        d = self.daemon.start()
        before = metric(metrics(d), "yjlink_commit_seconds_count")
        n = 100000
        name = "custody-bulk.jsonl"
        write_into(self.spool, name, (custody_event() for _ in range(n)))
        wait_for(lambda: os.path.exists(os.path.join(self.spool, "done", name)), "the bulk file to be done",
                 timeout=600, every=0.2)
        self.assertEqual(status_events(d), n)
        text = wait_for(lambda: (lambda t: t if metric(t, "yjlink_events_ingested_total", feed="custody") == n else None)(
            metrics(d)), "the events counted in /metrics")
        after = metric(text, "yjlink_commit_seconds_count")
        self.assertGreater(after, before)
        self.assertLessEqual(after - before, n / 100, "one group commit per chunk, not per line")
        print("100,000 spool lines in %d group commits" % (after - before))


if __name__ == "__main__":
    unittest.main(verbosity=2)
