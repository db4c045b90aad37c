"""Ages per feed and apparent age, against the real daemon (interfaces.md §2,
the `date_of_birth`, `apparent_age` and `looked_after` rows).

The child's age is judged on the feed's own date: a custody record opened
before the 18th birthday keeps being accepted while the child is held, a
record opened on it is refused. Without a date of birth the sender gives the
age the child appears to be (10 to 17); with both, the date of birth wins;
with neither, `schema`. An absent `looked_after` is unknown, never "no".

A real daemon with an injectable clock, a real SMTP server for the digest
and a real HTTP receiver for a notification; yjlinkctl for `show` and
`digest preview`.
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

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

CONFIG = """
deployment = { id = "ag"; name = "Ages test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*", "arrest.*", "outcome.*" ]; },
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services";
    local_authority = "E06000042"; transport = "webhook"; webhook = { url = "%(url)s"; secret = "s3"; };
    allow = [ "occurred_at", "child.*", "custody.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; },
  { id = "arrest_digest"; feeds = [ "arrest" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate"; }
);
"""

T0 = calendar.timegm((2026, 11, 24, 8, 0, 0))        # Tuesday 08:00 GMT


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class AgesTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.http = HttpReceiver().start()
        self.tmp = tempfile.mkdtemp(prefix="yjage-")
        conf = os.path.join(self.tmp, "a.conf")
        with open(conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port, "url": self.http.url})
        self.d = yjtest.Daemon(workdir=self.tmp, config=conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(T0)}).start()
        self.d.ctl_request("clock", {"set": rfc(T0 + 10 * 3600)})   # 18:00
        self.feed = yjtest.Feed(self.d.ingest)

    def tearDown(self):
        self.feed.close()
        self.d.cleanup()
        self.http.stop()
        self.smtp.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def custody(self, person, record, arrived, occurred, status="detained", **child):
        ev = yjtest.custody_event(occurred_at=rfc(occurred))
        ev["child"]["person_id"] = person
        del ev["child"]["date_of_birth"]
        ev["child"].update(child)
        ev["custody"].update({"record_id": record, "arrived_at": rfc(arrived), "status": status,
                              "status_at": rfc(occurred)})
        return ev

    def send(self, feed, ev):
        r = self.feed.request(feed, ev)
        return r[1].decode(), (json.loads(r[3]) if r[1] == b"REJECT" else int(r[3]))

    def ok(self, feed, ev):
        status, detail = self.send(feed, ev)
        self.assertEqual(status, "OK", detail)
        return detail

    def refused(self, feed, ev, error, field):
        status, detail = self.send(feed, ev)
        self.assertEqual(status, "REJECT", detail)
        self.assertEqual((detail["error"], detail["field"]), (error, field))
        # A refusal's reason never carries the child's date of birth.
        dob = ev["child"].get("date_of_birth")
        if dob:
            self.assertNotIn(dob, detail["reason"])

    def show(self, seq):
        _, out, _ = self.d.ctl("--json", "show", str(seq), "--reason", "test")
        return json.loads(out)["event"]

    def test_ages_apparent_age_and_looked_after(self):
        night = T0 - 10 * 3600                           # Monday 22:00
        # Turns 18 on Tuesday while held from Monday night: one record, every message accepted.
        held = self.ok("custody", self.custody("P-HELD", "R-HELD", night, night + 600, date_of_birth="2008-11-24"))
        later = self.ok("custody", self.custody("P-HELD", "R-HELD", night, T0 + 9 * 3600, "released_bail",
                                                date_of_birth="2008-11-24"))
        # Arrived on the 18th birthday: not a child on the record's date.
        self.refused("custody", self.custody("P-ADULT", "R-ADULT", T0 + 3600, T0 + 2 * 3600,
                                             date_of_birth="2008-11-24"), "out_of_scope", "child.date_of_birth")
        # Arrest: the age on arrested_at, not on when it was reported.
        a = self.custody("P-ARREST", "R-X", night, T0 + 3600, date_of_birth="2008-11-24")
        del a["custody"]
        a["arrest"] = {"arrest_id": "A-1", "arrested_at": rfc(night)}
        arrest = self.ok("arrest", a)
        # Apparent age only, looked_after not given.
        appar = self.ok("custody", self.custody("P-APP", "R-APP", T0 + 3600, T0 + 2 * 3600, apparent_age=15))
        # Both: the date of birth wins and the apparent age is not kept.
        both = self.ok("custody", self.custody("P-BOTH", "R-BOTH", T0 + 3600, T0 + 2 * 3600,
                                               date_of_birth="2012-02-03", apparent_age=16, looked_after=False))
        # Neither, or an apparent age outside 10..17, or not a whole number.
        self.refused("custody", self.custody("P-NONE", "R-NONE", T0 + 3600, T0 + 2 * 3600), "schema",
                     "child.date_of_birth")
        for bad in (9, 18):
            self.refused("custody", self.custody("P-B%d" % bad, "R-B%d" % bad, T0 + 3600, T0 + 2 * 3600,
                                                 apparent_age=bad), "out_of_scope", "child.apparent_age")
        self.refused("custody", self.custody("P-FR", "R-FR", T0 + 3600, T0 + 2 * 3600, apparent_age=14.5),
                     "schema", "child.apparent_age")
        # A looked-after child of apparent age 13: the notification's JSON carries it.
        lac = self.ok("custody", self.custody("P-LAC", "R-LAC", T0 + 3600, T0 + 2 * 3600, apparent_age=13,
                                              looked_after=True, responsible_la="E06000042"))

        # yjlinkctl show: as stored.
        ev = self.show(appar)
        self.assertEqual(ev["child"]["apparent_age"], 15)
        self.assertNotIn("date_of_birth", ev["child"])
        self.assertNotIn("looked_after", ev["child"])
        ev = self.show(both)
        self.assertEqual(ev["child"]["date_of_birth"], "2012-02-03")
        self.assertNotIn("apparent_age", ev["child"])
        self.assertIs(ev["child"]["looked_after"], False)

        deadline = time.time() + 20
        bodies = []
        while time.time() < deadline and not bodies:
            bodies = [json.loads(r["body"]) for r in self.http.snapshot() if r.get("status") == 200]
            time.sleep(0.1)
        self.assertEqual(len(bodies), 1, self.d.read_log()[-3000:])
        self.assertEqual(bodies[0]["event"]["seq"], lac)
        self.assertEqual(bodies[0]["event"]["child"]["apparent_age"], 13)

        # The digest at 07:31 on Wednesday: CSV, text and HTML.
        self.d.ctl_request("clock", {"set": rfc(calendar.timegm((2026, 11, 25, 7, 31, 0)))})
        self.assertTrue(self.smtp.wait_for(1, timeout=30), self.d.read_log()[-3000:])
        msg = email.message_from_bytes(self.smtp.messages[0]["data"], policy=email.policy.default)
        att = [p for p in msg.walk() if p.get_content_type() == "text/csv"][0]
        rows = list(csv.reader(io.StringIO(att.get_content())))
        header = rows[0]
        self.assertEqual(header[-3:], ["apparent_age", "outcome_disposal", "data_quality"])
        recs = {}
        for r in rows[1:]:
            rec = dict(zip(header, r))
            if rec["section"] in ("custody", "arrest"):
                recs[int(rec["seq"])] = rec
        self.assertEqual(sorted(recs), sorted([held, later, arrest, appar, both, lac]))
        self.assertEqual((recs[appar]["apparent_age"], recs[appar]["date_of_birth"]), ("15", ""))
        self.assertEqual(recs[appar]["looked_after"], "unknown")
        self.assertEqual(recs[held]["looked_after"], "unknown")
        self.assertEqual((recs[both]["apparent_age"], recs[both]["looked_after"]), ("", "no"))
        self.assertEqual((recs[lac]["apparent_age"], recs[lac]["looked_after"]), ("13", "yes"))
        self.assertEqual(recs[later]["date_of_birth"], "2008-11-24")
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        self.assertIn("age about 15 (date of birth not known)", text)
        self.assertIn("age about 15 (date of birth not known)", html)
        facts = [ln for ln in text.splitlines() if "age about 15" in ln]
        self.assertEqual(len(facts), 1, text)
        self.assertIn("looked after: unknown", facts[0])
        # The age on the record's date: 17 when the record opened, though 18 by its last message.
        self.assertIn("17 years old on the day (born 24 November 2008)", text)
        self.assertNotIn("outside 10 to 17", text)

        # digest preview through yjlinkctl says the same.
        _, out, _ = self.d.ctl("--json", "digest", "preview", "yjs:mk", "--date", "2026-11-25", "--reason", "test")
        prev = json.loads(out)
        self.assertIn("age about 15 (date of birth not known)", prev["text"])
        self.assertIn("age about 13 (date of birth not known)", prev["text"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
