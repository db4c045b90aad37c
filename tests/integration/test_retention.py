"""Retention (quality.md "Retention", issue "security and lawful processing"
item 3), against the real daemon with its clock under test control:

- events stored before now - retention.event_days are erased, with their
  indexes (a child's history, a source_id's idempotency), and exactly those:
  the newer ones stay;
- `yjlinkctl purge --dry-run` shows what is due, `yjlinkctl purge` erases it
  now, in batches, and each batch is audited (class of data, count, seq
  range, cut-off; never the data) with the caller's uid;
- an erased seq is never used again;
- ingest keeps answering OK while a purge of thousands of events runs.
"""
import json
import os
import threading
import time
import unittest

import yjtest

DAY = 86400


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class RetentionTest(unittest.TestCase):
    def setUp(self):
        self.t0 = int(time.time())
        self.daemon = yjtest.Daemon(sets={
            "testing.clock_control": "true",
            "testing.clock_start": iso(self.t0),
            "retention.event_days": "1",
        }).start()
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()
        self.daemon.cleanup()

    def clock(self, ts):
        code, _ = self.daemon.ctl_request("clock", {"set": iso(ts)})
        self.assertEqual(code, 0)

    def send(self, ev):
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def events_of(self, person):
        code, out, _ = self.daemon.ctl("--json", "events", "--child", person, "--reason", "retention test")
        return [e["seq"] for e in json.loads(out)["events"]]

    def dry_run(self):
        code, out, _ = self.daemon.ctl("--json", "purge", "--dry-run")
        return json.loads(out)

    def wait_nothing_due(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.dry_run()["events"] == 0:
                return
            time.sleep(0.1)
        self.fail("events still due after %d s:\n%s" % (timeout, self.daemon.read_log()[-2000:]))

    def test_erases_exactly_what_is_due_and_audits_it(self):
        old = [yjtest.custody_event() for _ in range(30)]
        old_seqs = [self.send(ev) for ev in old]
        self.clock(self.t0 + DAY // 2)
        new = [yjtest.custody_event() for _ in range(20)]
        new_seqs = [self.send(ev) for ev in new]

        # A day and a quarter on: the cut-off (now - 1 day) falls between them.
        self.clock(self.t0 + DAY + DAY // 4)
        due = self.dry_run()
        self.assertEqual(due["events"], 30, due)
        self.assertEqual((due["first_seq"], due["last_seq"]), (min(old_seqs), max(old_seqs)))

        code, out, _ = self.daemon.ctl("--json", "purge")
        self.assertTrue(json.loads(out)["started"])
        self.wait_nothing_due()

        for ev, seq in zip(old, old_seqs):
            code, _, _ = self.daemon.ctl("show", str(seq), "--reason", "retention test", check=False)
            self.assertNotEqual(code, 0, "event %d still shown" % seq)
            self.assertEqual(self.events_of(ev["child"]["person_id"]), [])
        for ev, seq in zip(new, new_seqs):
            self.daemon.ctl("show", str(seq), "--reason", "retention test")
            self.assertEqual(self.events_of(ev["child"]["person_id"]), [seq])

        code, out, _ = self.daemon.ctl("--json", "status")
        # Idempotency went with the event: the same message is new again,
        # and gets a seq never used before.
        again = self.send(old[0])
        self.assertGreater(again, max(new_seqs))

        code, out, _ = self.daemon.ctl("--json", "audit")
        erasures = [r for r in json.loads(out)["records"] if r["action"] == "erasure"]
        self.assertTrue(erasures, out)
        # The purge's own record is the operator's. A notification of an erased
        # event that was being delivered at the purge comes back after it (dead:
        # its event is gone), and the daemon's retention erases it in turn, as
        # yjlinkd: on a busy machine that may happen before this test looks.
        mine = [r for r in erasures if " events, seqs " in r["reason"]]
        self.assertTrue(mine, erasures)
        self.assertTrue(all(r["actor"] == "uid:%d" % os.getuid() for r in mine), erasures)
        for r in erasures:
            if r not in mine:
                self.assertEqual(r["actor"], "yjlinkd", r)
                self.assertRegex(r["reason"], r"erased \d+ dead-letter and unroutable notifications about events erased")
        text = " ".join(r["reason"] for r in erasures)
        self.assertIn("erased 30 events", text)
        self.assertIn("seqs %d-%d" % (min(old_seqs), max(old_seqs)), text)
        # The record says what class of data, never the data.
        for ev in old:
            self.assertNotIn(ev["child"]["given_name"], text)
            self.assertNotIn(ev["child"]["person_id"], text)
        code, out, _ = self.daemon.ctl("audit", "verify")
        self.assertEqual(code, 0, out)

    def test_ingest_answers_during_a_purge(self):
        # Thousands of events, pipelined.
        n = 5000
        for i in range(n):
            self.feed.send("custody", yjtest.custody_event())
        for i in range(n):
            r = self.feed.recv(30000)
            self.assertEqual(r[1], b"OK", r)
        self.clock(self.t0 + 2 * DAY)
        self.assertEqual(self.dry_run()["events"], n)

        failures, answered = [], []
        stop = threading.Event()

        def probe():
            f = yjtest.Feed(self.daemon.ingest)
            try:
                while not stop.is_set():
                    try:
                        r = f.request("custody", yjtest.custody_event())
                    except TimeoutError as e:
                        failures.append(str(e))
                        return
                    (answered if r[1] == b"OK" else failures).append(r[1])
            finally:
                f.close()

        t = threading.Thread(target=probe)
        t.start()
        try:
            self.daemon.ctl("purge")
            self.wait_nothing_due()
        finally:
            stop.set()
            t.join()
        self.assertEqual(failures, [], self.daemon.read_log()[-6000:])
        self.assertTrue(answered)
        # The probe's events are new: none of them was erased.
        self.assertEqual(self.dry_run()["events"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
