"""The YJS daily digest over a simulated year (interfaces.md §5).

A real SMTP server, the real daemon with an injectable clock, one YJS with
send times 01:30 and 17:00 Europe/London, events every simulated day, and the
daemon stopped (SIGTERM or kill -9) and started again at random, sometimes
staying down over send times. At the end: digests sent = days x send times
(one per local date and time, also on both clock-change days and on every
bank holiday), and every event in exactly one digest."""
import calendar
import csv
import datetime
import email
import email.policy
import io
import json
import os
import random
import re
import signal
import tempfile
import time
import unittest
import zoneinfo

import yjtest
from smtp_receiver import SmtpReceiver

LONDON = zoneinfo.ZoneInfo("Europe/London")
PRIMARY = {"custody", "arrest", "voluntary_interview", "outcome", "other_area"}

CONFIG = """
deployment = { id = "yt"; name = "Year test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "01:30", "17:00" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*", "arrest.*", "interview.*", "outcome.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; },
  { id = "arrest_digest"; feeds = [ "arrest" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "outcome_digest"; feeds = [ "outcome" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "first_contact"; first_contact = true; recipient = "yjs:home"; mode = "digest"; section = "new_child"; }
);
"""


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def yjtest_next_send(ts):
    """A minute after the first 01:30 or 17:00 London send time after ts."""
    t = ts
    while True:
        t += 60
        lt = datetime.datetime.fromtimestamp(t, LONDON)
        if (lt.hour, lt.minute) in ((1, 30), (2, 30), (17, 0)):
            return t + 60


def bank_holidays(year):
    out = set()
    with open(os.path.join(yjtest.SOURCE, "conf", "ref", "bank_holidays.csv")) as f:
        for row in csv.DictReader(f):
            if row["date"].startswith(str(year)):
                out.add(row["date"])
    return out


class DigestYearTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.dir = tempfile.mkdtemp(prefix="yjdigest-")
        self.conf = os.path.join(self.dir, "y.conf")
        with open(self.conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port})
        self.rng = random.Random(int(os.environ.get("YJ_TEST_SEED", "1124")))
        self.daemon = None
        self.n = 0

    def tearDown(self):
        if self.daemon:
            self.daemon.cleanup()
        self.smtp.stop()

    def start(self, now):
        d = yjtest.Daemon(workdir=self.dir, config=self.conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(now)})
        d.start()
        self.daemon = d
        self.feed = yjtest.Feed(d.ingest)

    def stop(self, how):
        self.feed.close()
        self.daemon.kill(how)
        self.daemon.log.close() if not self.daemon.log.closed else None

    def clock(self, now):
        code, body = self.daemon.ctl_request("clock", {"set": rfc(now)})
        self.assertEqual(code, 0, body)

    def send(self, now, feed):
        self.n += 1
        ev = yjtest.custody_event(occurred_at=rfc(now - 60))
        ev["source_id"] = "year-%d" % self.n
        ev["child"]["person_id"] = "TVP-Y%04d" % (self.n % 150)   # children come back
        ev["child"]["date_of_birth"] = "2011-06-01"
        if feed == "custody":
            ev["custody"].update({"arrived_at": rfc(now - 3600), "status_at": rfc(now - 60),
                                  "status": self.rng.choice(["detained", "released_bail", "charged_bailed"])})
        else:
            del ev["custody"]
            if feed == "arrest":
                ev["arrest"] = {"arrest_id": "A%d" % self.n, "arrested_at": rfc(now - 60)}
            else:
                ev["outcome"] = {"case_ref": "C%d" % self.n, "code": 8, "decided_at": rfc(now - 60),
                                 "offence_date": "2025-12-01"}
        r = self.feed.request(feed, ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def test_a_year_of_digests(self):
        start = calendar.timegm((2026, 1, 1, 0, 5, 0))
        end = calendar.timegm((2027, 1, 1, 0, 5, 0))
        days = int(os.environ.get("YJ_DIGEST_DAYS", "365"))
        end = min(end, start + days * 86400)
        now = start
        self.start(now)
        sent = []
        while now < end:
            # A few events at random times of the simulated day.
            for _ in range(self.rng.randint(0, 4)):
                now += self.rng.randint(600, 6 * 3600)
                if now >= end:
                    break
                self.clock(now)
                sent.append(self.send(now, self.rng.choice(["custody", "custody", "arrest", "outcome"])))
            now += self.rng.randint(3600, 8 * 3600)
            if self.rng.random() < 0.05:
                # Stop, stay down for up to two days over send times, start again.
                self.stop(self.rng.choice([signal.SIGTERM, signal.SIGKILL]))
                now += self.rng.randint(0, 2 * 86400)
                self.start(min(now, end))
            else:
                self.clock(min(now, end))
        # Past the next send time: every event stored so far is then in a digest.
        end = yjtest_next_send(end)
        now = end
        self.clock(now)
        expected = []
        day = datetime.date(2026, 1, 1)
        while True:
            for hh, mm in ((1, 30), (17, 0)):
                local = datetime.datetime(day.year, day.month, day.day, hh, mm, tzinfo=LONDON)
                # 01:30 on the spring-forward day does not exist: sent at 02:30 BST.
                ts = calendar.timegm(local.astimezone(datetime.timezone.utc).timetuple())
                if start < ts <= end:
                    expected.append((day.isoformat(), "%02d:%02d" % (hh, mm)))
            day += datetime.timedelta(days=1)
            if datetime.datetime(day.year, day.month, day.day, tzinfo=LONDON).timestamp() > end:
                break
        # The first state is made at start: the first digest is the first send time after it.
        deadline = time.time() + 300
        while time.time() < deadline:
            ids = {m["id"] for m in self.digests()}
            if len(ids) >= len(expected):
                break
            time.sleep(0.5)
        digests = self.digests()
        by_id = {}
        for m in digests:
            if m["id"] in by_id:
                # A resend after a crash: the very same digest.
                self.assertEqual(by_id[m["id"]]["window"], m["window"])
                self.assertEqual(by_id[m["id"]]["rows"], m["rows"])
            by_id[m["id"]] = m
        if len(by_id) != len(expected):
            # Which send times have no digest, and what the daemon holds: a
            # run under load once had one missing after the 300 s wait.
            got_times = {(m["date"], m["window"][1]) for m in by_id.values()}
            _, outbox = self.daemon.ctl_request("outbox", {}, timeout_ms=30000)
            _, dlq = self.daemon.ctl_request("dlq", {}, timeout_ms=30000)
            log = [l for l in self.daemon.read_log().splitlines() if "digest" in l or "outbox" in l][-40:]
            self.fail("digests sent vs days x send times: %d != %d; dates sent per day: %s; outbox: %s; "
                      "dead letters: %s; the log's last digest/outbox lines:\n%s"
                      % (len(by_id), len(expected), sorted(got_times)[-6:], json.dumps(outbox)[:3000],
                         json.dumps(dlq)[:2000], "\n".join(log)))
        per_date = {}
        for m in by_id.values():
            per_date.setdefault(m["date"], []).append(m)
        want_per_date = {}
        for d, t in expected:
            want_per_date[d] = want_per_date.get(d, 0) + 1
        self.assertEqual({d: len(ms) for d, ms in per_date.items()}, want_per_date)
        if days >= 365:
            self.assertEqual(len(per_date["2026-03-29"]), 2, "spring-forward day")
            self.assertEqual(len(per_date["2026-10-25"]), 2, "autumn day")
            for bh in bank_holidays(2026):
                self.assertEqual(len(per_date[bh]), 2, "bank holiday " + bh)
        # Gapless windows: each starts where the one before ended.
        ordered = sorted(by_id.values(), key=lambda m: m["window"][1])
        for a, b in zip(ordered, ordered[1:]):
            self.assertEqual(a["window"][1], b["window"][0])
        # Every event in exactly one digest's primary section.
        seen = {}
        for m in ordered:
            for section, seq in m["rows"]:
                if section in PRIMARY:
                    self.assertNotIn(seq, seen, "seq %d in two digests" % seq)
                    seen[seq] = m["id"]
        self.assertEqual(sorted(seen), sorted(sent))
        # Empty windows still send, and say so.
        empties = [m for m in ordered if not m["rows"]]
        self.assertTrue(empties, "some windows must have been empty")
        self.assertIn("Nothing happened", empties[0]["text"])
        # ... and whether the custody feed is quiet or merely had nothing for this YJS, in local time.
        self.assertRegex(empties[0]["text"], r"No (children in custody in this window: the custody feed is up|"
                                             r"custody message has ever been received|"
                                             r"custody messages since (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2})")
        for m in ordered:
            self.assertNotRegex(m["text"], r"\d{4}-\d\d-\d\dT", "an RFC 3339 time in the text of " + m["id"])
        # The audit records each digest with every event it disclosed.
        code, body = self.daemon.ctl_request("audit", {"limit": 100000})
        recs = [r for r in body["records"] if r["rule"] == "daily_digest" and r["actor"] == "yjlinkd"]
        audited = {r["notification_id"] for r in recs}
        self.assertEqual(audited, set(by_id))

    def digests(self):
        out = []
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            did = msg["X-Yjlink-Digest-Id"]
            if not did:
                continue
            win = tuple(msg["X-Yjlink-Window"].split("/"))
            subject = msg["Subject"]
            date = subject.split()[-3].rstrip(":")
            rows = []
            for part in msg.walk():
                if part.get_content_type() == "text/csv":
                    for row in csv.DictReader(io.StringIO(part.get_content())):
                        rows.append((row["section"], int(row["seq"])))
            out.append({"id": did, "window": win, "date": date, "rows": rows,
                        "text": msg.get_body(preferencelist=("plain",)).get_content()})
        return out


CONTENT_CONFIG = """
deployment = { id = "ct"; name = "Content test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "offences.*", "markers.*", "custody.*", "arrest.*",
              "interview.*", "outcome.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; },
  { id = "custody_out_of_area_digest"; feeds = [ "custody" ]; home_served = false; recipient = "yjs:suite";
    mode = "digest"; section = "other_area"; },
  { id = "arrest_digest"; feeds = [ "arrest" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "voluntary_interview_digest"; feeds = [ "voluntary_interview" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "outcome_digest"; feeds = [ "outcome" ]; recipient = "yjs:home"; mode = "digest"; },
  { id = "first_contact"; first_contact = true; recipient = "yjs:home"; mode = "digest"; section = "new_child"; }
);
"""

COLUMNS = ["section", "seq", "feed", "source_id", "occurred_at", "person_id", "pnc_id", "given_name", "family_name",
           "date_of_birth", "home_la", "looked_after", "custody_record_id", "suite", "custody_status", "arrived_at",
           "overnight", "interview_status", "outcome_code", "outcome_name", "withheld"]


class DigestContentTest(unittest.TestCase):

    def test_sections_mime_preview_and_resend(self):
        smtp = SmtpReceiver().start()
        d = None
        try:
            tmp = tempfile.mkdtemp(prefix="yjdc-")
            conf = os.path.join(tmp, "c.conf")
            with open(conf, "w") as f:
                f.write(CONTENT_CONFIG % {"port": smtp.port})
            t0 = calendar.timegm((2026, 11, 24, 20, 0, 0))   # Tuesday evening, GMT
            d = yjtest.Daemon(workdir=tmp, config=conf, sets={"testing.clock_control": "true",
                                                             "testing.clock_start": rfc(t0)}).start()
            feed = yjtest.Feed(d.ingest)

            def ev(person, **kw):
                e = yjtest.custody_event(occurred_at=rfc(t0 + 3600))
                e["child"]["person_id"] = person
                e["child"]["date_of_birth"] = "2011-06-01"
                e["custody"].update({"record_id": "R-" + person, "arrived_at": rfc(t0 + 1800),
                                     "status_at": rfc(t0 + 3600)})
                e.update(kw)
                return e

            def send(feed_name, e):
                r = feed.request(feed_name, e)
                self.assertEqual(r[1], b"OK", r)
                return int(r[3])

            d.ctl_request("clock", {"set": rfc(t0 + 2 * 3600)})
            # Known before: an arrest of P1 in an earlier window (sent before the first digest).
            s_held = send("custody", ev("P2", markers={"live_investigation": True},
                                        offences=[{"code": "X1", "description": "Burglary"}]))
            s_detained = send("custody", ev("P1"))          # detained overnight, still held at 07:30
            e = ev("P3")
            e["custody"]["status"] = "released_bail"
            s_released = send("custody", e)
            e = ev("P4")
            e["child"]["home_la"] = "E09000007"             # Camden: held in an MK suite
            s_other = send("custody", e)
            a = ev("P1")
            del a["custody"]
            a["arrest"] = {"arrest_id": "A1", "arrested_at": rfc(t0 + 3600), "summons": True}
            s_arrest = send("arrest", a)
            o = ev("P5")
            del o["custody"]
            o["outcome"] = {"case_ref": "C5", "code": 22, "decided_at": rfc(t0 + 3600)}
            s_outcome = send("outcome", o)
            # 07:31 next morning: the digest goes.
            d.ctl_request("clock", {"set": rfc(calendar.timegm((2026, 11, 25, 7, 31, 0)))})
            self.assertTrue(smtp.wait_for(1, timeout=20), d.read_log())
            msg = email.message_from_bytes(smtp.messages[0]["data"], policy=email.policy.default)
            self.assertEqual(msg.get_content_type(), "multipart/mixed")
            parts = [p.get_content_type() for p in msg.walk()]
            self.assertEqual(parts, ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                                     "text/csv"])
            self.assertRegex(msg["Subject"],
                             r"^\[OFFICIAL-SENSITIVE\] yjlink daily digest Milton Keynes YJS 2026-11-25: 5 children$")
            self.assertEqual(msg["X-Yjlink-Digest-Id"], "ct-digest-mk-20261125T0730")
            self.assertEqual(msg["X-Yjlink-Window"].split("/")[1], "2026-11-25T07:30:00Z")
            att = [p for p in msg.walk() if p.get_content_type() == "text/csv"][0]
            self.assertEqual(att.get_filename(), "yjlink-digest-mk-2026-11-25.csv")
            rows = list(csv.reader(io.StringIO(att.get_content())))
            self.assertEqual(rows[0][:len(COLUMNS)], COLUMNS)
            recs = [dict(zip(rows[0], r)) for r in rows[1:]]
            by = {}
            for r in recs:
                by.setdefault(r["section"], []).append(int(r["seq"]))
            self.assertEqual(by["custody"], sorted([s_held, s_detained, s_released]))
            self.assertEqual(by["other_area"], [s_other])
            self.assertEqual(by["arrest"], [s_arrest])
            self.assertEqual(by["outcome"], [s_outcome])
            self.assertEqual(sorted(by["still_in_custody"]), sorted([s_held, s_detained, s_other]))
            # New children, each with their known history (P1: custody then arrest).
            self.assertEqual(sorted(by["new_child"]), sorted([s_held, s_detained, s_released, s_arrest, s_outcome]))
            row = {int(r["seq"]): r for r in recs if r["section"] in PRIMARY}
            self.assertEqual(row[s_held]["withheld"], "yes")
            self.assertEqual(row[s_held]["offences"], "")
            # Detained from 20:30 and still held at 07:30: held overnight. Released at 21:00: not.
            self.assertEqual(row[s_detained]["overnight"], "yes")
            self.assertEqual(row[s_released]["overnight"], "no")
            self.assertEqual(row[s_detained]["given_name"], "Alex")
            self.assertEqual(row[s_outcome]["outcome_code"], "22")
            self.assertTrue(row[s_outcome]["outcome_name"].startswith("Diversionary"))
            self.assertNotIn("Alex", msg["Subject"])
            # Preview of the next digest, and a resend of this one with the same id, audited.
            code, out, err = d.ctl("digest", "preview", "yjs:mk", check=False)
            self.assertEqual(code, 2)
            code, out, err = d.ctl("--json", "digest", "preview", "yjs:mk", "--date", "2026-11-25", "--reason", "test")
            self.assertEqual(json.loads(out)["id"], "ct-digest-mk-20261125T0730")
            d.ctl("digest", "send", "yjs:mk", "--date", "2026-11-25")
            self.assertTrue(smtp.wait_for(2, timeout=20))
            again = email.message_from_bytes(smtp.messages[1]["data"], policy=email.policy.default)
            self.assertEqual(again["X-Yjlink-Digest-Id"], msg["X-Yjlink-Digest-Id"])
            code, out, _ = d.ctl("--json", "audit")
            acts = [r for r in json.loads(out)["records"] if r["notification_id"] == msg["X-Yjlink-Digest-Id"]]
            self.assertEqual(sorted(r["actor"] for r in acts), sorted(["yjlinkd", "uid:%d" % os.getuid()]))
            self.assertEqual(sorted(acts[0]["seqs"]), sorted({int(r["seq"]) for r in recs}))
            feed.close()
        finally:
            if d:
                d.cleanup()
            smtp.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
