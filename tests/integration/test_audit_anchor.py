"""The audit anchor (issue 10 item 6, docs/security.md "The audit anchor").

The real daemon with the test clock and a real SMTP receiver: events come
in, operators look at them (consultations, audited), a daily digest goes out
(a disclosure, audited) carrying the chain head as it was built, and
`yjlinkctl audit verify --anchor SEQ:HASH` proves that head is still in the
log. Then the daemon is stopped and the chain is rewritten in the LMDB file
as an attacker with the store file would do it (tests/tools/audit_rewrite.c:
one record removed, or changed, every later record re-hashed exactly as
daemon/db/audit.c hashes, audit.head rewritten). After a restart the plain
`audit verify` says intact, and `audit verify --anchor` with the anchor the
digest carried fails, naming the record."""
import calendar
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yjtest
from smtp_receiver import SmtpReceiver

CONFIG = """
deployment = { id = "aa"; name = "Anchor test"; force = "E23000029"; };
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

ANCHOR = re.compile(r"Audit chain head: (\d+):([0-9a-f]{64}) \u2014 keep this digest: "
                    r"`yjlinkctl audit verify --anchor \1:\2` proves the log was not rewritten since")
HTML_ANCHOR = re.compile(r'<p id="audit-anchor">Audit chain head: <code>(\d+):([0-9a-f]{64})</code> \u2014 keep this '
                         r'digest: <code>yjlinkctl audit verify --anchor \1:\2</code> proves the log was not '
                         r'rewritten since</p>')
REWRITE = os.path.join(yjtest.BUILD, "audit_rewrite")


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class AuditAnchorTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.dir = tempfile.mkdtemp(prefix="yjanchor-")
        self.conf = os.path.join(self.dir, "a.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port})
        self.daemon = None
        self.feed = None

    def tearDown(self):
        if self.feed:
            self.feed.close()
        if self.daemon:
            self.daemon.kill()
        self.smtp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, now):
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(now)}).start()
        self.feed = yjtest.Feed(self.daemon.ingest)

    def stop(self):
        self.feed.close()
        self.feed = None
        self.assertEqual(self.daemon.stop(), 0, self.daemon.read_log()[-2000:])
        self.daemon = None

    def clock(self, now):
        code, body = self.daemon.ctl_request("clock", {"set": rfc(now)})
        self.assertEqual(code, 0, body)

    def verify(self, *extra):
        return self.daemon.ctl("audit", "verify", *extra, check=False)

    def verify_json(self, *extra):
        code, out, err = self.daemon.ctl("--json", "audit", "verify", *extra, check=False)
        return code, json.loads(out)

    def audit(self):
        code, body = self.daemon.ctl_request("audit", {"limit": 100000})
        self.assertEqual(code, 0, body)
        return body["records"]

    def the_log_before_the_rewrite(self):
        """Events, consultations, a digest delivered: returns (anchor of the digest, anchor of a later preview)."""
        now = calendar.timegm((2026, 11, 24, 12, 0, 0))
        self.start(now)
        seqs = []
        for i in range(3):
            ev = yjtest.custody_event(occurred_at=rfc(now - 60))
            ev["custody"].update({"arrived_at": rfc(now - 3600), "status_at": rfc(now - 60)})
            r = self.feed.request("custody", ev)
            self.assertEqual(r[1], b"OK", r)
            seqs.append(r[3].decode())
        # Consultations: each an audit record.
        for s in seqs:
            self.daemon.ctl("show", s, "--reason", "checking the feed")
        # The digest at 07:30 London (UTC in November): a disclosure, audited.
        self.clock(calendar.timegm((2026, 11, 25, 7, 31, 0)))
        self.assertTrue(self.smtp.wait_for(1, timeout=30), "no digest sent:\n" + self.daemon.read_log()[-3000:])
        msg = email.message_from_bytes(self.smtp.messages[0]["data"], policy=email.policy.default)
        self.assertTrue(msg["X-Yjlink-Digest-Id"])
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        m = ANCHOR.search(text)
        self.assertIsNotNone(m, text[-800:])
        h = HTML_ANCHOR.search(html)
        self.assertIsNotNone(h, html[-800:])
        self.assertEqual(m.groups(), h.groups(), "the text and the HTML carry the same head")
        sent = "%s:%s" % m.groups()
        # The head when it was built: the three consultations at least, not the digest's own record.
        self.assertGreaterEqual(int(m.group(1)), 3)
        deadline = time.time() + 20
        while not any(r["rule"] == "daily_digest" for r in self.audit()):
            self.assertLess(time.time(), deadline, "the digest's disclosure was not audited")
            time.sleep(0.1)
        recs = self.audit()
        digest_rec = [r for r in recs if r["rule"] == "daily_digest"][0]
        self.assertGreater(digest_rec["number"], int(m.group(1)))
        # The CSV keeps its contract: the same header as before, no anchor.
        for part in msg.walk():
            if part.get_content_type() == "text/csv":
                self.assertNotIn("Audit chain head", part.get_content())
        # A preview: the head as it stands now (the digest's record in it).
        code, out, err = self.daemon.ctl("--json", "digest", "preview", "yjs:mk", "--reason", "anchor test")
        body = json.loads(out)
        p = ANCHOR.search(body["text"])
        self.assertIsNotNone(p, body["text"][-800:])
        self.assertGreaterEqual(int(p.group(1)), digest_rec["number"])
        self.assertIsNotNone(HTML_ANCHOR.search(body["html"]))
        preview = "%s:%s" % p.groups()
        # The log goes on after both anchors.
        self.daemon.ctl("show", seqs[0], "--reason", "after the anchors")
        return sent, preview

    def test_anchor_proven_then_rewrite_detected(self):
        sent, preview = self.the_log_before_the_rewrite()
        for anchor in (sent, preview):
            code, out, err = self.verify("--anchor", anchor)
            self.assertEqual(code, 0, out + err)
            code, body = self.verify_json("--anchor", anchor)
            self.assertEqual(code, 0, body)
            self.assertEqual(body["anchor_result"], "proven")
        # A wrong hash for a record that is there; a record that is not; a malformed anchor.
        n, hx = sent.split(":")
        wrong = "%s:%s" % (n, ("0" if hx[0] != "0" else "1") + hx[1:])
        code, body = self.verify_json("--anchor", wrong)
        self.assertEqual(code, 1, body)
        self.assertEqual(body["anchor_result"], "different")
        self.assertEqual(body["found"], hx)
        code, out, err = self.verify("--anchor", "999999:" + hx)
        self.assertEqual(code, 1, out + err)
        self.assertIn("there is no record 999999", err)
        for bad in ("12", "12:abc", "x:" + hx, n + ":" + hx[:-1] + "g"):
            code, out, err = self.verify("--anchor", bad)
            self.assertEqual(code, 2, (bad, out, err))

        # The attacker: daemon stopped, record 2 removed, the rest re-hashed, the head rewritten.
        before = len(self.audit())
        store = self.daemon.store
        self.stop()
        p = subprocess.run([REWRITE, store, "2", "remove"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        new_head = p.stdout.strip()
        self.assertRegex(new_head, r"^\d+:[0-9a-f]{64}$")
        self.start(calendar.timegm((2026, 11, 25, 8, 0, 0)))
        # Plain verify is fooled ...
        code, body = self.verify_json()
        self.assertEqual(code, 0, body)
        self.assertEqual(body["result"], "intact")
        self.assertEqual(len(self.audit()), before - 1)
        # ... the anchor the digest carried is not: record N is there with another hash.
        code, out, err = self.verify("--anchor", sent)
        self.assertEqual(code, 1, out + err)
        self.assertIn("anchor %s not in the log: record %s now has hash" % (sent, n), err)
        self.assertIn("rewritten", err)
        code, body = self.verify_json("--anchor", sent)
        self.assertEqual(code, 1, body)
        self.assertEqual(body["anchor_result"], "different")
        self.assertNotEqual(body["found"], hx)
        code, body = self.verify_json("--anchor", preview)
        self.assertEqual(code, 1, body)
        self.assertIn(body["anchor_result"], ("different", "missing"))
        self.assertIn("record %s" % preview.split(":")[0], body["error"])

    def test_changed_record_rehashed_detected(self):
        sent, preview = self.the_log_before_the_rewrite()
        n = int(sent.split(":")[0])
        store = self.daemon.store
        self.stop()
        # The digest's own record changed (another recipient), everything after it re-hashed.
        p = subprocess.run([REWRITE, store, str(n), "change"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.start(calendar.timegm((2026, 11, 25, 8, 0, 0)))
        code, out, err = self.verify()
        self.assertEqual(code, 0, out + err)
        self.assertIn(b"yjs:elsewhere".decode(), json.dumps(self.audit()))
        code, out, err = self.verify("--anchor", sent)
        self.assertEqual(code, 1, out + err)
        self.assertIn("record %d now has hash" % n, err)
        code, out, err = self.verify("--anchor", preview)
        self.assertEqual(code, 1, out + err)
        self.assertIn("record %s now has hash" % preview.split(":")[0], err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
