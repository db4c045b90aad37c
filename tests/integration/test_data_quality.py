"""Outcome codes that cannot apply to a child are flagged, not hidden
(routing.md, "Practice rules"), and the disposal is shown beside the code.

conf/ref/outcomes.csv says which codes apply to children
(`applies_to_children`). An outcome with a code that does not (3 adult
caution, 6 penalty notice for disorder, 7 cannabis/khat warning, 11 under
the age of criminal responsibility) is stored, shown in the digest with a
data-quality note (text, HTML, the CSV `data_quality` column), counted in
`yjlink_data_quality_total{issue="outcome_code_not_for_children"}` once per
stored event (a DUP is not counted again), and marked in the board report.
Every outcome's disposal is in the text, the HTML and the CSV
`outcome_disposal` column, so a youth conditional caution never reads as a
youth caution.

A real daemon with an injectable clock, a real SMTP server, /metrics over
HTTP and yjlinkctl.
"""
import calendar
import csv
import email
import email.policy
import io
import json
import os
import shutil
import tempfile
import time
import unittest
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

import yjtest
from smtp_receiver import SmtpReceiver

CONFIG = """
deployment = { id = "dq"; name = "Data quality test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "outcome.*" ]; }
);
rules = (
  { id = "outcome_digest"; feeds = [ "outcome" ]; recipient = "yjs:home"; mode = "digest"; }
);
"""

T0 = calendar.timegm((2026, 11, 24, 8, 0, 0))        # Tuesday 08:00 GMT
ISSUE = "outcome_code_not_for_children"


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class DataQualityTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.tmp = tempfile.mkdtemp(prefix="yjdq-")
        conf = os.path.join(self.tmp, "q.conf")
        with open(conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port})
        self.d = yjtest.Daemon(workdir=self.tmp, config=conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(T0)}).start()
        self.d.ctl_request("clock", {"set": rfc(T0 + 10 * 3600)})   # 18:00
        self.feed = yjtest.Feed(self.d.ingest)

    def tearDown(self):
        self.feed.close()
        self.d.cleanup()
        self.smtp.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def outcome(self, person, code, disposal=None, source_id=None):
        ev = yjtest.custody_event(occurred_at=rfc(T0 + 3600))
        if source_id:
            ev["source_id"] = source_id
        del ev["custody"]
        ev["child"].update({"person_id": person, "date_of_birth": "2011-06-01"})
        ev["outcome"] = {"case_ref": "C-" + person, "code": code, "decided_at": rfc(T0 + 3600)}
        if disposal:
            ev["outcome"]["disposal"] = disposal
        return ev

    def send(self, ev, want=b"OK"):
        r = self.feed.request("outcome", ev)
        self.assertEqual(r[1], want, r)
        return int(r[3])

    def metric(self):
        """yjlink_data_quality_total{issue=ISSUE} as /metrics serves it (None: not there)."""
        url = "http://%s/metrics" % self.d.sets["metrics.endpoint"]
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == "yjlink_data_quality_total" and s.labels.get("issue") == ISSUE:
                    return s.value
        return None

    def wait_metric(self, want):
        deadline = time.time() + 10
        got = None
        while time.time() < deadline:
            got = self.metric()
            if got == want:
                return
            time.sleep(0.2)
        self.assertEqual(got, want)

    def test_flagged_stored_counted_and_disposal_shown(self):
        # An outcome that can be a child's: nothing to count.
        ycc = self.send(self.outcome("P-YCC", 2, "youth_conditional_caution"))
        time.sleep(1.5)   # metrics are rendered every second
        self.assertIn(self.metric(), (None, 0))
        # Adult caution and penalty notice about children: stored, counted once each.
        ev = self.outcome("P-ADULT", 3, "youth_caution", source_id="dq-adult-1")
        adult = self.send(ev)
        pnd = self.send(self.outcome("P-PND", 6))
        self.wait_metric(2)
        # A resend is a DUP, not a second stored event.
        self.assertEqual(self.send(ev, b"DUP"), adult)
        time.sleep(1.5)
        self.assertEqual(self.metric(), 2)
        _, out, _ = self.d.ctl("--json", "show", str(adult), "--reason", "test")
        self.assertEqual(json.loads(out)["event"]["outcome"]["code"], 3)

        # The digest at 07:31 on Wednesday.
        self.d.ctl_request("clock", {"set": rfc(calendar.timegm((2026, 11, 25, 7, 31, 0)))})
        self.assertTrue(self.smtp.wait_for(1, timeout=30), self.d.read_log()[-3000:])
        msg = email.message_from_bytes(self.smtp.messages[0]["data"], policy=email.policy.default)
        att = [p for p in msg.walk() if p.get_content_type() == "text/csv"][0]
        rows = list(csv.reader(io.StringIO(att.get_content())))
        header = rows[0]
        self.assertEqual(header[-3:], ["apparent_age", "outcome_disposal", "data_quality"])
        recs = {int(r[1]): dict(zip(header, r)) for r in rows[1:] if r[0] == "outcome"}
        self.assertEqual(sorted(recs), sorted([ycc, adult, pnd]))
        self.assertEqual((recs[ycc]["outcome_code"], recs[ycc]["outcome_disposal"], recs[ycc]["data_quality"]),
                         ("2", "youth_conditional_caution", ""))
        self.assertEqual((recs[adult]["outcome_code"], recs[adult]["outcome_disposal"],
                          recs[adult]["data_quality"]), ("3", "youth_caution", ISSUE))
        self.assertEqual((recs[pnd]["outcome_code"], recs[pnd]["outcome_disposal"], recs[pnd]["data_quality"]),
                         ("6", "", ISSUE))
        self.assertEqual(recs[ycc]["looked_after"], "unknown")

        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        self.assertIn("outcome 2: Youth caution; disposal: youth conditional caution", text)
        self.assertIn("outcome 3: Adult caution (a code that cannot apply to a child); disposal: youth caution",
                      text)
        self.assertIn("outcome 6: Penalty Notice for Disorder (a code that cannot apply to a child)", text)
        self.assertIn("disposal: youth conditional caution", html)
        note = "data quality: an outcome code that cannot apply to a child"
        self.assertEqual(text.count("Note: " + note), 2, text)
        self.assertEqual(html.count(note), 2)
        # The youth conditional caution's entry has no such note.
        entry = text.split("outcome 2: Youth caution")[0].rsplit("\n* ", 1)[1]
        self.assertNotIn(note, entry)

        # The board report names the code as the data-quality issue it is.
        _, out, _ = self.d.ctl("report", "--from", "2026-11-24", "--to", "2026-11-25", "--format", "json")
        labels = json.loads(out)["labels"]["figures"]
        self.assertIn("cannot apply to a child", labels["outcome_3"])
        self.assertIn("cannot apply to a child", labels["outcome_6"])
        self.assertNotIn("cannot apply", labels["outcome_2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
