"""A digest is built in a helper process, off the event loop (digestjob.h).

The daemon holds the helper inside its build (testing.digest_gate) and the
test checks that meanwhile the daemon goes on: ingest is answered OK,
control answers, and the digest waits. Released, the digest goes once with
its window's rows, and is confirmed. A stop while a build is held kills the
helper, loses nothing, and the same digest (same id, same rows) goes after
the restart. A helper stuck on a lock (testing.digest_stall, standing in for
one inherited held at the fork) is forked again and builds the same digest.

Real peers only: the real daemon, a real SMTP server, real ZeroMQ clients."""
import calendar
import csv
import email
import email.policy
import io
import json
import os
import re
import shutil
import tempfile
import time
import unittest

import yjtest
from smtp_receiver import SmtpReceiver

CONFIG = """
deployment = { id = "dh"; name = "Digest helper test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; }
);
"""

T0 = calendar.timegm((2026, 11, 24, 20, 0, 0))      # Tuesday evening, GMT
SEND = calendar.timegm((2026, 11, 25, 7, 31, 0))    # a minute after the 07:30 send time


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def csv_seqs(msg):
    att = [p for p in msg.walk() if p.get_content_type() == "text/csv"][0]
    rows = list(csv.reader(io.StringIO(att.get_content())))
    head = rows[0]
    return sorted(int(dict(zip(head, r))["seq"]) for r in rows[1:] if dict(zip(head, r))["section"] == "custody")


class DigestHelperTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.dir = tempfile.mkdtemp(prefix="yjdh-")
        self.conf = os.path.join(self.dir, "c.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port})
        self.gate = os.path.join(self.dir, "gate")
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.cleanup()
        self.smtp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, gate, now, stall=None):
        sets = {"testing.clock_control": "true", "testing.clock_start": rfc(now)}
        if gate:
            sets["testing.digest_gate"] = gate
        if stall:
            sets["testing.digest_stall"] = stall
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf, sets=sets).start()
        return self.daemon

    def send_events(self, d, n, at):
        feed = yjtest.Feed(d.ingest)
        seqs = []
        try:
            for i in range(n):
                e = yjtest.custody_event(occurred_at=rfc(at))
                e["child"]["person_id"] = "DH-%d-%d" % (at, i % 40)
                e["child"]["date_of_birth"] = "2011-06-01"
                e["custody"].update({"record_id": "R-%d-%d" % (at, i), "arrived_at": rfc(at - 600),
                                     "status_at": rfc(at)})
                r = feed.request("custody", e)
                self.assertEqual(r[1], b"OK", r)
                seqs.append(int(r[3]))
        finally:
            feed.close()
        return seqs

    def wait_held(self, d):
        deadline = time.time() + 60
        while "holds its build until" not in d.read_log():
            self.assertLess(time.time(), deadline, "no digest helper building:\n" + d.read_log()[-4000:])
            time.sleep(0.05)
        return int(re.search(r"digest: helper (\d+) holds its build", d.read_log()).group(1))

    def test_the_loop_goes_on_while_a_digest_is_built(self):
        d = self.start(self.gate, T0 + 3600)
        window = self.send_events(d, 60, T0 + 3000)
        files = sorted(os.listdir(d.store))
        d.ctl_request("clock", {"set": rfc(SEND)})
        helper = self.wait_held(d)
        self.assertNotEqual(helper, d.proc.pid)
        # Held inside its build: ingest is answered and stored, control answers, nothing is sent.
        later = self.send_events(d, 200, SEND)
        self.assertEqual(len(later), 200)
        code, st = d.ctl_request("status")
        self.assertEqual(code, 0, st)
        self.assertEqual(self.smtp.messages, [])
        open(self.gate, "w").close()
        msgs = self.smtp.wait_for(1, timeout=60)
        msg = email.message_from_bytes(msgs[0]["data"], policy=email.policy.default)
        self.assertEqual(msg["X-Yjlink-Digest-Id"], "dh-digest-mk-20261125T0730")
        # Its window: the events stored by 07:30, none of those sent while it was built.
        self.assertEqual(csv_seqs(msg), sorted(window))
        parts = [p.get_content_type() for p in msg.walk()]
        self.assertEqual(parts, ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "text/csv"])
        text = [p for p in msg.walk() if p.get_content_type() == "text/plain"][0].get_content()
        self.assertIn("Milton Keynes YJS", text)
        # Confirmed and audited with every seq it disclosed; the helper is gone.
        deadline = time.time() + 30
        while True:
            code, out, _ = d.ctl("--json", "audit")
            recs = [r for r in json.loads(out)["records"]
                    if r["notification_id"] == "dh-digest-mk-20261125T0730"]
            if recs or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(recs), 1, out)
        self.assertEqual(sorted(recs[0]["seqs"]), sorted(window))
        self.assertFalse(os.path.exists("/proc/%d" % helper) and
                         open("/proc/%d/stat" % helper).read().split()[2] != "Z")
        # The renderings' file was unlinked from the start: nothing is left beside the store.
        self.assertEqual(sorted(os.listdir(d.store)), files)
        self.assertEqual(len(self.smtp.messages), 1)

    def test_a_stop_during_a_build_loses_nothing(self):
        d = self.start(os.path.join(self.dir, "never"), T0 + 3600)
        window = self.send_events(d, 30, T0 + 3000)
        d.ctl_request("clock", {"set": rfc(SEND)})
        helper = self.wait_held(d)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists("/proc/%d" % helper) and
                         open("/proc/%d/stat" % helper).read().split()[2] != "Z")
        self.assertEqual(self.smtp.messages, [])
        self.assertIn("deliveries under way left in the outbox", d.read_log())
        d.log.close()
        # Started again without the gate: the same digest goes, once, with the same rows.
        d = self.start(None, SEND + 60)
        msgs = self.smtp.wait_for(1, timeout=60)
        msg = email.message_from_bytes(msgs[0]["data"], policy=email.policy.default)
        self.assertEqual(msg["X-Yjlink-Digest-Id"], "dh-digest-mk-20261125T0730")
        self.assertEqual(csv_seqs(msg), sorted(window))
        time.sleep(1.0)
        self.assertEqual(len(self.smtp.messages), 1)

    def test_a_helper_forked_again_builds_the_same_digest(self):
        # A CI run once dead-lettered digests "the recipient is no longer
        # configured": the second fork read the job's recipient and digest
        # from the parent's memory after they had gone.
        stall = os.path.join(self.dir, "stalled")
        d = self.start(None, T0 + 3600, stall=stall)
        window = self.send_events(d, 25, T0 + 3000)
        d.ctl_request("clock", {"set": rfc(SEND)})
        msgs = self.smtp.wait_for(1, timeout=90)
        log = d.read_log()
        self.assertTrue(os.path.exists(stall), log[-4000:])
        # Built by the second fork, not by a retry after a failed build.
        self.assertNotIn("build failed", log)
        self.assertIn("stalls on a lock (testing.digest_stall)", log)
        self.assertIn("started again (1 of 5)", log)
        msg = email.message_from_bytes(msgs[0]["data"], policy=email.policy.default)
        self.assertEqual(msg["X-Yjlink-Digest-Id"], "dh-digest-mk-20261125T0730")
        self.assertEqual(csv_seqs(msg), sorted(window))
        text = [p for p in msg.walk() if p.get_content_type() == "text/plain"][0].get_content()
        self.assertIn("Milton Keynes YJS", text)
        code, dlq = d.ctl_request("dlq", {})
        self.assertEqual(code, 0, dlq)
        self.assertEqual(dlq["dead_letters"], [])
        time.sleep(1.0)
        self.assertEqual(len(self.smtp.messages), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
