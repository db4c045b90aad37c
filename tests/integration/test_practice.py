"""Practice rules (routing.md "Practice rules") against the real daemon on
the shipped config, with a real SMTP server and HTTP receiver: the duty
recipient told of what cannot be delivered, the stale guard, current L&D
referrals, holds for the officer in the case, quiet feeds.

Each test has its own daemon, whose clock starts at a known time and moves
only when the test moves it (testing.clock_control), so that what one test
makes due never reaches another."""
import email
import email.policy
import json
import os
import re
import shutil
import tempfile
import time
import unittest
import urllib.request

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver
from test_routing import event

CLOCK = "2026-11-25T10:00:00Z"           # a Wednesday morning: the L&D service is open
T0 = 1795600800                           # CLOCK as a unix time
DUTY = "yjs-police-duty@tvp.example"
OFFICER = "cid.milton-keynes@tvp.example"
WAIT = 20


def at(minutes):
    return yjtest.utc(T0 + minutes * 60)


def lac(responsible, **kw):
    return event(lac=True, responsible=responsible, **kw)


class PracticeBase(unittest.TestCase):

    def setUp(self):
        self.http = HttpReceiver().start()
        self.smtp = SmtpReceiver().start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read()
        text = text.replace("http://127.0.0.1:8088", self.http.url.rstrip("/"))
        self.dir = tempfile.mkdtemp(prefix="yjpractice-")
        self.conf = os.path.join(self.dir, "yjlinkd.conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.daemon = yjtest.Daemon(workdir=self.dir, config=self.conf, sets={
            "email.smtp_url": "smtp://127.0.0.1:%d" % self.smtp.port,
            "testing.clock_control": "true",
            "testing.clock_start": CLOCK,
            "delivery.backoff_min_ms": "50",
            "delivery.backoff_max_ms": "200",
        }).start()
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()
        self.daemon.kill()
        self.http.stop()
        self.smtp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- helpers ---

    def send(self, ev, feed="custody"):
        r = self.feed.request(feed, ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def clock(self, minutes):
        self.daemon.ctl("clock", "set", at(minutes))

    def mails_to(self, address):
        """Each email to address as a dict of its text body's "key: value" lines."""
        out = []
        for m in list(self.smtp.messages):
            if address not in m["rcpt_tos"]:
                continue
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            text = msg.get_body(preferencelist=("plain",)).get_content()
            d = {"_subject": msg["Subject"], "_text": text}
            for line in text.splitlines():
                k, sep, v = line.partition(": ")
                if sep:
                    d[k.strip()] = v.strip()
            out.append(d)
        return out

    def duty(self, reason=None):
        return [d for d in self.mails_to(DUTY) if reason is None or d.get("about.reason") == reason]

    def wait(self, fn, what, timeout=WAIT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s\n%s" % (what, self.daemon.read_log()[-3000:]))

    def hooks(self, path_part, kind=None):
        out = []
        for r in self.http.snapshot():
            if r.get("status") != 200 or path_part not in r["path"]:
                continue
            body = json.loads(r["body"])
            if kind is None or body["kind"] == kind:
                out.append(body)
        return out

    def metrics(self):
        with urllib.request.urlopen("http://%s/metrics" % self.daemon.sets["metrics.endpoint"], timeout=10) as r:
            return r.read().decode()

    def metric(self, name, labels=""):
        m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), self.metrics(), re.M)
        return float(m.group(1)) if m else None

    def wait_metric(self, name, labels, value):
        """The metrics are published once a second: wait for value."""
        self.wait(lambda: self.metric(name, labels) == value, "%s%s = %s" % (name, labels, value))

    def status(self):
        return json.loads(self.daemon.ctl("--json", "status")[1])


class EscalationTest(PracticeBase):
    """Nobody unreached without a human knowing."""

    def test_unroutable_is_told_to_the_duty_recipient_at_once(self):
        # Hampshire has no destination in the config or the directory.
        seq = self.send(lac("E10000014"))
        d = self.wait(lambda: self.duty("unroutable"), "the duty recipient's escalation")[0]
        self.assertEqual(d["about.recipient"], "children_services:E10000014")
        self.assertEqual(d["about.rule"], "lac_in_custody")
        self.assertEqual(d["event.seq"], str(seq))
        self.assertEqual(d["event.custody.suite"], "TVP-MK")
        self.assertIn("escalation", d["_subject"])
        # Under the duty recipient's own allowlist: no name reaches it.
        self.assertNotIn("Alex", d["_text"])
        self.assertNotIn("Example", d["_text"])
        self.assertRegex(self.daemon.read_log(), r"<4>route: tvp-\d+ for children_services:E10000014 \(rule lac_in_custody\) "
                                                 r"is unroutable: the duty recipient duty:tvp-yjs-police is told")
        self.assertEqual(self.status()["practice"]["escalations"]["unroutable"], 1)
        self.wait_metric("yjlink_escalations_total", '{reason="unroutable"}', 1)

    def test_dead_letter_is_told_to_the_duty_recipient(self):
        self.http.mode = 400   # every webhook refuses for good: the L&D service and Milton Keynes
        self.send(lac("E06000042"))
        mk = lambda: [d for d in self.duty("dead_letter") if d["about.recipient"] == "children_services:E06000042"]  # noqa: E731
        d = self.wait(mk, "the dead letter's escalation")[0]
        self.assertEqual(d["about.recipient"], "children_services:E06000042")
        self.assertEqual(d["about.rule"], "lac_in_custody")
        self.assertIn("400", d["about.detail"])
        self.assertEqual(self.status()["practice"]["escalations"]["dead_letter"], 2)

    def test_undelivered_lac_notice_is_told_after_fifteen_minutes_once(self):
        self.http.mode = 500   # transient: retried, never dead-lettered within a day
        self.send(lac("E06000042"))
        self.wait(lambda: len(self.http.snapshot()) >= 2, "two failed attempts")
        self.clock(14)
        time.sleep(1)
        self.assertEqual(self.duty("undelivered"), [])
        self.clock(16)
        d = self.wait(lambda: self.duty("undelivered"), "the escalation after 900 s")[0]
        self.assertEqual(d["about.recipient"], "children_services:E06000042")
        self.clock(40)
        time.sleep(1)
        self.assertEqual(len(self.duty("undelivered")), 1, "told once, not at every scan")
        # The shipped rule carries routing.md's legal basis wording.
        # The L&D service's webhook is refused too: pick Milton Keynes' attempt.
        body = json.loads([r for r in self.http.snapshot() if "E06000042" in r["path"]][0]["body"])
        self.assertEqual(body["legal_basis"], "PACE 1984 Code C 3.13 (the person responsible for the juvenile's "
                                              "welfare is told); DPA 2018 Sch 8 (safeguarding of children)")


class StaleTest(PracticeBase):
    """No stale notices: an event older than max_age_s goes to the digests only."""

    def test_late_event_is_not_notified_but_is_in_the_digest(self):
        ev = lac("E06000042")
        ev["occurred_at"] = at(-13 * 60)
        ev["custody"].update({"arrived_at": at(-14 * 60), "status_at": at(-13 * 60)})
        seq = self.send(ev)
        fresh = self.send(lac("E06000042"))
        self.wait(lambda: self.hooks("E06000042"), "the fresh event's notification")
        time.sleep(1)
        seqs = [b["event"]["seq"] for b in self.hooks("E06000042")]
        self.assertEqual(seqs, [fresh])
        self.wait_metric("yjlink_stale_total", '{rule="lac_in_custody"}', 1)
        _, out, _ = self.daemon.ctl("digest", "preview", "yjs:milton-keynes", "--reason", "test", "--json")
        self.assertIn(ev["source_id"], out)
        # A replay goes through the same guard.
        _, out, _ = self.daemon.ctl("replay", "--since", at(-24 * 60), "--rule", "lac_in_custody",
                                    "--reason", "test of the stale guard", "--json")
        got = json.loads(out)
        self.assertEqual(got["notifications"], 1)   # only the fresh one again
        self.assertEqual(got["stale"], 1)
        self.wait_metric("yjlink_stale_total", '{rule="lac_in_custody"}', 2)
        self.assertTrue(seq)


class LiaisonDiversionTest(PracticeBase):
    """L&D gets current, not historic, referrals."""

    def test_closed_record_is_superseded_at_opening_and_open_one_carries_status_now(self):
        self.clock(-8 * 60)                           # Wednesday 02:00: L&D closed until 08:00
        a = event(person="TVP-PA")
        a["custody"].update({"record_id": "CR-A", "arrived_at": at(-8 * 60 - 5), "status_at": at(-8 * 60)})
        a["occurred_at"] = at(-8 * 60)
        self.send(a)
        self.clock(-7 * 60 - 30)
        b = event(person="TVP-PB")
        b["custody"].update({"record_id": "CR-B", "arrived_at": at(-7 * 60 - 35), "status_at": at(-7 * 60 - 30)})
        b["occurred_at"] = at(-7 * 60 - 30)
        self.send(b)
        self.clock(-7 * 60)                           # 03:00: record A closes
        a2 = json.loads(json.dumps(a))
        a2["source_id"] += "-2"
        a2["occurred_at"] = at(-7 * 60)
        a2["custody"].update({"status": "released_nfa", "status_at": at(-7 * 60)})
        self.send(a2)
        time.sleep(1)
        self.assertEqual(self.hooks("liaison-diversion"), [])
        self.clock(-2 * 60 + 1)                       # 08:01: the opening
        got = self.wait(lambda: self.hooks("liaison-diversion", "liaison_diversion"), "the referral at opening")
        time.sleep(1)
        got = self.hooks("liaison-diversion", "liaison_diversion")
        self.assertEqual([g["event"]["custody"]["record_id"] for g in got], ["CR-B"])
        self.assertEqual(got[0]["status_now"], "detained")
        self.assertEqual(got[0]["detained_since"], at(-7 * 60 - 35))
        self.assertTrue(got[0]["out_of_hours"])
        self.wait_metric("yjlink_ld_superseded_total", "", 1)
        # Record B closes in hours: one update, with the new status.
        b2 = json.loads(json.dumps(b))
        b2["source_id"] += "-2"
        b2["occurred_at"] = at(-60)
        b2["custody"].update({"status": "released_bail", "status_at": at(-60)})
        self.clock(-59)
        self.send(b2)
        upd = self.wait(lambda: self.hooks("liaison-diversion", "liaison_diversion_update"), "the update")
        self.assertEqual(upd[0]["status_now"], "released_bail")
        self.assertEqual(upd[0]["event"]["custody"]["status"], "released_bail")
        # A later change of a closed record sends no second update.
        b3 = json.loads(json.dumps(b2))
        b3["source_id"] += "-3"
        b3["custody"].update({"status": "charged_bailed", "status_at": at(-50)})
        b3["occurred_at"] = at(-50)
        self.clock(-45)
        self.send(b3)
        time.sleep(1.5)
        self.assertEqual(len(self.hooks("liaison-diversion", "liaison_diversion_update")), 1)
        self.assertEqual(self.status()["practice"]["ld_superseded"], 1)

    def test_late_detained_of_a_released_record_is_not_referred(self):
        # In hours. Record C's release is stored first; its "detained",
        # about an earlier moment, arrives after it: the record is closed,
        # so L&D gets no referral. Record D's first message is "detained":
        # referred (the store counts it the only one of its record).
        self.clock(-60)
        c2 = event(person="TVP-PC")
        c2["source_id"] += "-2"
        c2["occurred_at"] = at(-70)
        c2["custody"].update({"record_id": "CR-C", "arrived_at": at(-180), "status": "released_nfa",
                              "status_at": at(-70)})
        self.send(c2)
        c1 = event(person="TVP-PC")
        c1["occurred_at"] = at(-175)
        c1["custody"].update({"record_id": "CR-C", "arrived_at": at(-180), "status_at": at(-175)})
        self.send(c1)
        d = event(person="TVP-PD")
        d["occurred_at"] = at(-65)
        d["custody"].update({"record_id": "CR-D", "arrived_at": at(-66), "status_at": at(-65)})
        self.send(d)
        got = self.wait(lambda: self.hooks("liaison-diversion", "liaison_diversion"), "the referral of CR-D")
        time.sleep(1)
        got = self.hooks("liaison-diversion", "liaison_diversion")
        self.assertEqual([g["event"]["custody"]["record_id"] for g in got], ["CR-D"])
        self.assertEqual(got[0]["status_now"], "detained")


class HoldsTest(PracticeBase):
    """The officer in the case first, for every kind of sensitive case."""

    def test_serious_offence_is_held_the_officer_told_and_escalated(self):
        ev = event(markers={"serious_offence": True, "mappa": True, "officer_in_case": "DC 4411 Patel"},
                   offences=[{"code": "0501", "description": "Wounding with intent"}])
        seq = self.send(ev)
        o = self.wait(lambda: self.mails_to(OFFICER), "the officer's notice")[0]
        self.assertEqual(o["about.reason"], "hold_waiting")
        self.assertIn("liaison_diversion", o["about.rules_waiting"])
        self.assertEqual(o["event.seq"], str(seq))
        ld = self.wait(lambda: self.hooks("liaison-diversion"), "the L&D referral")[0]
        self.assertTrue(ld["withheld"])
        self.assertNotIn("offences", ld["event"])
        _, out, _ = self.daemon.ctl("holds", "list", "--json")
        h = [x for x in json.loads(out)["holds"] if x["seq"] == seq][0]
        self.assertEqual(h["person_id"], ev["child"]["person_id"])
        self.assertEqual(h["markers"], ["serious_offence"])
        self.assertEqual(h["officer"], "DC 4411 Patel")
        self.assertEqual(h["told"], "officer:tvp-cid-milton-keynes")
        self.assertIn("liaison_diversion:tvp", h["waiting"])
        self.assertEqual(h["age_h"], 0)
        # After holds.escalate_after_h (24) the duty recipient is told.
        self.clock(23 * 60)
        time.sleep(1)
        self.assertEqual(self.duty("hold_escalation"), [])
        self.clock(25 * 60)
        d = self.wait(lambda: self.duty("hold_escalation"), "the hold's escalation")[0]
        self.assertEqual(d["event.seq"], str(seq))
        self.assertIn("DC 4411 Patel", d["about.detail"])
        self.daemon.ctl("holds", "release", str(seq), "--by", "DC 4411 Patel", "--reason", "charged")
        _, out, _ = self.daemon.ctl("holds", "list", "--json")
        h = [x for x in json.loads(out)["holds"] if x["seq"] == seq][0]
        self.assertTrue(h["released"])
        self.assertEqual(h["released_by"], "DC 4411 Patel")
        self.assertEqual(h["released_actor"], "uid:%d" % os.getuid())

    def test_unlisted_officer_is_reached_through_the_duty_recipient(self):
        seq = self.send(event(markers={"live_investigation": True, "officer_in_case": "PC 9 Nobody"}))
        d = self.wait(lambda: self.duty("hold_waiting"), "the duty recipient's hold notice")[0]
        self.assertEqual(d["event.seq"], str(seq))
        self.assertEqual(self.mails_to(OFFICER), [])

    def test_mappa_alone_does_not_hold(self):
        seq = self.send(event(markers={"mappa": True}))
        self.wait(lambda: self.hooks("liaison-diversion"), "the L&D referral")
        _, out, _ = self.daemon.ctl("holds", "list", "--json")
        self.assertEqual([x for x in json.loads(out)["holds"] if x["seq"] == seq], [])


class QuietFeedTest(PracticeBase):
    """Feeds that go quiet are noticed."""

    def test_custody_feed_silence_told_once_and_again_when_it_resumes(self):
        self.send(event())
        self.clock(5 * 60)
        time.sleep(1)
        self.assertEqual(self.duty("feed_silent"), [])
        self.clock(6 * 60 + 10)
        d = self.wait(lambda: self.duty("feed_silent"), "the quiet feed notice")[0]
        self.assertEqual(d["about.feed"], "custody")
        self.assertIn("feed_silent", d["_subject"])
        self.assertTrue(self.status()["practice"]["feeds"]["custody"]["silent"])
        self.wait_metric("yjlink_feed_silent", '{feed="custody"}', 1)
        self.clock(9 * 60)
        time.sleep(1)
        self.assertEqual(len(self.duty("feed_silent")), 1, "told once")
        # The other feeds' alarms are 48 h: not yet.
        self.assertEqual([x["about.feed"] for x in self.duty("feed_silent")], ["custody"])
        ev = event()
        ev["occurred_at"] = at(9 * 60 - 1)
        ev["custody"].update({"arrived_at": at(9 * 60 - 5), "status_at": at(9 * 60 - 1)})
        self.send(ev)
        r = self.wait(lambda: self.duty("feed_resumed"), "the feed resumed notice")[0]
        self.assertEqual(r["about.feed"], "custody")
        self.assertFalse(self.status()["practice"]["feeds"]["custody"]["silent"])


class AnchorTest(PracticeBase):
    """The audit chain anchored outside the store every day (issue: an audit
    that cannot be rewritten unseen): the duty recipient gets the head."""

    def test_daily_anchor_to_the_duty_recipient_verifies(self):
        self.send(event())
        a = self.wait(lambda: self.duty("audit_anchor"), "the day's anchor")[0]
        self.assertRegex(a["about.audit_head"], r"^\d+:[0-9a-f]{64}$")
        self.assertIn("audit_anchor", a["_subject"])
        _, out, _ = self.daemon.ctl("--json", "audit", "verify", "--anchor", a["about.audit_head"])
        self.assertEqual(json.loads(out)["result"], "intact")
        # Once a day: not again the same day, again the next day after 06:00.
        self.clock(12 * 60)
        time.sleep(1)
        self.assertEqual(len(self.duty("audit_anchor")), 1)
        self.clock(19 * 60 + 30)                  # Thursday 05:30
        time.sleep(1)
        self.assertEqual(len(self.duty("audit_anchor")), 1)
        self.clock(20 * 60 + 5)                   # Thursday 06:05
        self.wait(lambda: len(self.duty("audit_anchor")) == 2, "the next day's anchor")


if __name__ == "__main__":
    unittest.main(verbosity=2)
