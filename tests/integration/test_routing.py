"""Routing and delivery against the real daemon with real peers: an SMTP
server (aiosmtpd) and an HTTP receiver (routing.md, interfaces.md §3).

The daemon runs the shipped default config (conf/yjlinkd.conf: the Thames
Valley demo) with only its loopback addresses pointed at this test's
receivers, so these tests prove the default rules themselves."""
import email
import email.policy
import json
import os
import re
import signal
import time
import unittest

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

CLOCK = "2026-11-25T10:00:00Z"          # a Wednesday morning: the L&D service is open
T0 = 1795600800                          # CLOCK as a unix time


def at(minutes):
    return yjtest.utc(T0 + minutes * 60)


def event(feed="custody", status="detained", home="E06000042", suite="TVP-MK", lac=False, responsible=None,
          markers=None, offences=None, person=None, **body):
    ev = yjtest.custody_event(occurred_at=at(-10))
    if person:
        ev["child"]["person_id"] = person
    ev["child"]["date_of_birth"] = "2011-03-02"
    if home is None:
        del ev["child"]["home_la"]
    else:
        ev["child"]["home_la"] = home
    if lac:
        ev["child"]["looked_after"] = True
        ev["child"]["responsible_la"] = responsible
        ev["child"]["social_worker"] = {"name": "Sam Worker", "email": "sam.worker@westminster.example",
                                        "phone": "020 7946 0000"}
    if markers:
        ev["markers"] = markers
    if offences:
        ev["offences"] = offences
    ev["custody"].update({"suite": suite, "status": status, "arrived_at": at(-30), "status_at": at(-10),
                          "reason": "grounds for detention"})
    if feed != "custody":
        del ev["custody"]
        key = {"arrest": "arrest", "voluntary_interview": "interview", "outcome": "outcome"}[feed]
        ev[key] = body[key]
    return ev


def recipient_blocks(cfg_text):
    """Each recipient group of the config (each ends with its allow list)."""
    return re.findall(r"\{ id = \"[^\"]+\"; kind = .*?allow = \[[^\]]*\]; \}", cfg_text, re.S)


def email_to_recipient(cfg_text):
    """Map each email address in the config to its recipient id."""
    m = {}
    for block in recipient_blocks(cfg_text):
        rid = re.search(r'id = "([^"]+)"', block).group(1)
        em = re.search(r"email = \[([^\]]*)\]", block)
        for a in re.findall(r'"([^"]+)"', em.group(1) if em else ""):
            m[a] = rid
    return m


def allowlists(cfg_text):
    out = {}
    for block in recipient_blocks(cfg_text):
        rid = re.search(r'id = "([^"]+)"', block).group(1)
        out[rid] = re.findall(r'"([^"]+)"', re.search(r"allow = \[([^\]]*)\]", block).group(1))
    return out


def allowed(allow, path):
    for a in allow:
        if a == path or (a.endswith(".*") and (path == a[:-2] or path.startswith(a[:-1]))):
            return True
    return False


def leaf_paths(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaf_paths(v, prefix + ("." if prefix else "") + k)
    elif isinstance(obj, list):
        for v in obj:
            yield from leaf_paths(v, prefix)
    else:
        yield prefix


class RoutingBase(unittest.TestCase):
    """One daemon on the default config, and the two receivers, per class."""

    @classmethod
    def setUpClass(cls):
        cls.http = HttpReceiver().start()
        cls.smtp = SmtpReceiver().start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read()
        cls.cfg_text = text
        base = cls.http.url.rstrip("/")
        text = text.replace("http://127.0.0.1:8088", base)
        cls.addr_to_rcpt = email_to_recipient(text)
        cls.allow = allowlists(text)
        cls.dir = __import__("tempfile").mkdtemp(prefix="yjroute-")
        cls.conf = os.path.join(cls.dir, "yjlinkd.conf")
        with open(cls.conf, "w") as f:
            f.write(text)
        cls.start_daemon()

    @classmethod
    def start_daemon(cls, workdir=None):
        cls.daemon = yjtest.Daemon(workdir=workdir or cls.dir, config=cls.conf, sets={
            "email.smtp_url": "smtp://127.0.0.1:%d" % cls.smtp.port,
            "testing.clock_control": "true",
            "delivery.backoff_min_ms": "50",
            "delivery.backoff_max_ms": "200",
        })
        cls.daemon.proc = None
        cls.daemon.start(wait=False)
        # The clock moves before any event: wait for the control socket first.
        deadline = time.time() + 20
        while True:
            try:
                code, _ = cls.daemon.ctl_request("clock", {"set": CLOCK}, timeout_ms=300)
                if code == 0:
                    break
            except TimeoutError:
                pass
            if time.time() > deadline:
                raise AssertionError(cls.daemon.read_log())
            time.sleep(0.05)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.kill()
        cls.http.stop()
        cls.smtp.stop()
        __import__("shutil").rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.http.mode = 200
        self.smtp.mode = "250"
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()

    # --- helpers ---

    def send(self, feed, ev):
        r = self.feed.request(feed, ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def notifications(self):
        """Every notification received so far, as (recipient, kind, id, body-or-None, transport)."""
        out = []
        for req in list(self.http.received):
            # Only what the receiver accepted: a refused attempt (500, 400)
            # is not a notification received.
            if req.get("status") != 200:
                continue
            body = json.loads(req["body"])
            out.append((body["recipient"], body["kind"], body["notification_id"], body, "webhook"))
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            nid = msg["X-Yjlink-Notification-Id"]
            subj = msg["Subject"]
            kind = subj.split()[2] if subj.startswith("[OFFICIAL-SENSITIVE] yjlink ") else "?"
            for rcpt in m["rcpt_tos"]:
                out.append((self.addr_to_rcpt.get(rcpt, rcpt), kind, nid, msg, "email"))
        return out

    def about(self, seq):
        res = []
        for rcpt, kind, nid, body, transport in self.notifications():
            if transport == "webhook" and body["event"]["seq"] == seq:
                res.append((rcpt, kind))
            elif transport == "email":
                text = body.get_body(preferencelist=("plain",)).get_content()
                if re.search(r"^event\.seq: %d\r?$" % seq, text, re.M):
                    res.append((rcpt, kind))
        return sorted(set(res))

    def wait_about(self, seq, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.about(seq)
            if len(got) >= n:
                time.sleep(0.3)  # anything extra would arrive now
                return self.about(seq)
            time.sleep(0.05)
        return self.about(seq)

    def digest_entries(self, yjs, seq):
        code, body = self.daemon.ctl_request("digest", {"sub": "pending", "arg": yjs})
        self.assertEqual(code, 0, body)
        return sorted(e["rule"] for e in body["entries"] if e["seq"] == seq)


class RoutingTest(RoutingBase):

    # --- every default rule for its case and no other ---

    def test_plain_custody_in_area(self):
        seq = self.send("custody", event())
        self.assertEqual(self.wait_about(seq, 1), [("liaison_diversion:tvp", "liaison_diversion")])
        self.assertEqual(self.digest_entries("yjs:milton-keynes", seq), ["custody_digest", "first_contact"])

    def test_second_message_is_not_first_contact(self):
        person = "TVP-PSECOND"
        self.send("custody", event(person=person))
        seq = self.send("custody", event(person=person, status="released_bail"))
        self.assertEqual(self.digest_entries("yjs:milton-keynes", seq), ["custody_digest"])
        self.assertEqual(self.wait_about(seq, 0, timeout=1), [])

    def test_looked_after_child_reaches_far_away_authority(self):
        seq = self.send("custody", event(lac=True, responsible="E09000033"))
        got = self.wait_about(seq, 2)
        self.assertEqual(got, [("children_services:E09000033", "lac_in_custody"),
                               ("liaison_diversion:tvp", "liaison_diversion")])

    def test_child_from_another_force_area(self):
        seq = self.send("custody", event(home="E09000007"))  # Camden, Metropolitan Police area
        got = self.wait_about(seq, 2)
        self.assertEqual(got, [("force:E23000001", "out_of_area_force"),
                               ("liaison_diversion:tvp", "liaison_diversion")])
        self.assertEqual(self.digest_entries("yjs:milton-keynes", seq), ["custody_out_of_area_digest"])

    def test_no_fixed_abode_goes_to_the_suite_yjs(self):
        seq = self.send("custody", event(home=None, suite="TVP-AYL", status="released_nfa"))
        self.assertEqual(self.digest_entries("yjs:buckinghamshire", seq), ["custody_out_of_area_digest"])
        self.assertEqual(self.wait_about(seq, 0, timeout=1), [])

    def test_remand(self):
        seq = self.send("custody", event(status="charged_remanded"))
        got = self.wait_about(seq, 2)
        self.assertEqual(got, [("children_services:E06000042", "pace_transfer"),
                               ("yjs:milton-keynes", "remand_alert")])

    def test_remand_of_looked_after_child_goes_to_responsible_authority(self):
        seq = self.send("custody", event(status="charged_remanded", lac=True, responsible="E09000033"))
        got = self.wait_about(seq, 3)
        self.assertEqual(got, [("children_services:E09000033", "lac_in_custody"),
                               ("children_services:E09000033", "pace_transfer"),
                               ("yjs:milton-keynes", "remand_alert")])

    def test_child_on_a_court_order(self):
        seq = self.send("arrest", event(feed="arrest", markers={"court_order": True},
                                        arrest={"arrest_id": "A-co", "arrested_at": at(-10)}))
        self.assertEqual(self.wait_about(seq, 1), [("yjs:milton-keynes", "supervised_child")])
        self.assertEqual(self.digest_entries("yjs:milton-keynes", seq), ["arrest_digest", "first_contact"])

    def test_interview_and_outcome_go_to_the_digest(self):
        s1 = self.send("voluntary_interview", event(feed="voluntary_interview",
                       interview={"interview_id": "I-1", "status": "held", "at": at(-10)}))
        s2 = self.send("outcome", event(feed="outcome", outcome={"case_ref": "C-1", "code": 8, "decided_at": at(-10)}))
        self.assertEqual(self.digest_entries("yjs:milton-keynes", s1), ["first_contact", "voluntary_interview_digest"])
        self.assertEqual(self.digest_entries("yjs:milton-keynes", s2), ["first_contact", "outcome_digest"])
        self.assertEqual(self.wait_about(s1, 0, timeout=0.5) + self.wait_about(s2, 0, timeout=0.5), [])

    def test_unroutable_recipient_waits_and_is_shown(self):
        _, before = self.daemon.ctl_request("status")
        seq = self.send("custody", event(status="released_bail", lac=True, responsible="E08000035"))  # Leeds
        # Nobody unreached without a human knowing: the duty recipient hears at once.
        self.assertEqual(self.wait_about(seq, 1), [("duty:tvp-yjs-police", "escalation")])
        _, after = self.daemon.ctl_request("status")
        self.assertEqual(after["delivery"]["unroutable"], before["delivery"]["unroutable"] + 1)
        code, out, _ = self.daemon.ctl("--json", "outbox")
        self.assertIn("children_services:E08000035", [n["recipient"] for n in json.loads(out)["unroutable"]])

    def test_liaison_diversion_out_of_hours_waits_for_opening(self):
        # Wednesday 23:00: the L&D service (08:00-20:00 on weekdays) is closed.
        late = T0 + 13 * 3600
        self.daemon.ctl_request("clock", {"set": yjtest.utc(late)})
        try:
            ev = event()
            ev["occurred_at"] = yjtest.utc(late - 600)
            ev["custody"].update({"arrived_at": yjtest.utc(late - 1200), "status_at": yjtest.utc(late - 600)})
            seq = self.send("custody", ev)
            self.assertEqual(self.wait_about(seq, 0, timeout=1.5), [])
            code, out, _ = self.daemon.ctl("--json", "outbox")
            ld = json.loads(out)["recipients"]["liaison_diversion:tvp"]
            self.assertEqual(ld["next_attempt"], "2026-11-26T08:00:00Z")
            # 08:01 the next morning: delivered, marked out of hours.
            self.daemon.ctl_request("clock", {"set": "2026-11-26T08:01:00Z"})
            self.assertEqual(self.wait_about(seq, 1), [("liaison_diversion:tvp", "liaison_diversion")])
            body = [json.loads(r["body"]) for r in self.http.received if json.loads(r["body"])["event"]["seq"] == seq][0]
            self.assertTrue(body.get("out_of_hours"))
        finally:
            self.daemon.ctl_request("clock", {"set": CLOCK})

    def test_replay_makes_new_notifications(self):
        seq = self.send("custody", event(lac=True, responsible="E09000033"))
        self.wait_about(seq, 2)
        before = [n for n in self.notifications() if n[0] == "children_services:E09000033"]
        code, out, _ = self.daemon.ctl("--json", "replay", "--since", at(-11), "--rule", "lac_in_custody",
                                       "--reason", "integration test: the notice was lost")
        self.assertGreaterEqual(json.loads(out)["notifications"], 1)
        deadline = time.time() + 10
        while time.time() < deadline:
            after = [n for n in self.notifications() if n[0] == "children_services:E09000033"]
            if len(after) > len(before):
                break
            time.sleep(0.05)
        new_ids = {n[2] for n in after} - {n[2] for n in before}
        self.assertTrue(new_ids, "replay sent nothing new")

    # --- data sharing agreements ---

    def test_allowlists_hold_on_every_delivered_body(self):
        self.send("custody", event(lac=True, responsible="E09000033", status="charged_remanded",
                                   offences=[{"code": "TH68010", "description": "Theft"}],
                                   markers={"serious_offence": True}))
        self.send("custody", event(home="E09000007", offences=[{"code": "X1", "description": "y"}]))
        time.sleep(1.0)
        checked = 0
        for rcpt, kind, nid, body, transport in self.notifications():
            allow = self.allow[rcpt]
            if transport == "webhook":
                paths = [p for p in leaf_paths(body["event"]) if p not in ("seq", "feed", "stored_at")]
            else:
                text = body.get_body(preferencelist=("plain",)).get_content()
                paths = [m for m in re.findall(r"^event\.([\w.]+):", text, re.M) if m not in ("seq", "feed", "stored_at")]
            for p in paths:
                self.assertTrue(allowed(allow, p), "%s got %s, outside its agreement" % (rcpt, p))
            checked += 1
        self.assertGreater(checked, 3)
        # L&D never sees offences; children's services never see offences or grounds.
        for rcpt, kind, nid, body, transport in self.notifications():
            if transport == "webhook":
                self.assertNotIn("offences", body["event"])
                self.assertNotIn("reason", body["event"].get("custody", {}))

    def test_webhook_is_signed(self):
        seq = self.send("custody", event())
        self.wait_about(seq, 1)
        req = [r for r in self.http.received if json.loads(r["body"])["event"]["seq"] == seq][0]
        self.assertEqual(req["headers"]["Content-Type"], "application/json")
        self.assertEqual(req["headers"]["X-Yjlink-Notification-Id"], json.loads(req["body"])["notification_id"])
        self.assertTrue(self.http.verify_signature("demo-secret-ld", req))

    # --- holds ---

    def test_live_investigation_withheld_until_released(self):
        seq = self.send("custody", event(lac=True, responsible="E09000033",
                                         offences=[{"code": "TH68010", "description": "Theft"}],
                                         markers={"live_investigation": True, "officer_in_case": "DC 1"}))
        self.wait_about(seq, 2)
        code, out, _ = self.daemon.ctl("--json", "holds", "list")
        self.assertIn(seq, [h["seq"] for h in json.loads(out)["holds"] if not h["released"]])
        for rcpt, kind, nid, body, transport in self.notifications():
            if transport == "webhook" and body["event"]["seq"] == seq:
                self.assertTrue(body.get("withheld"))
                self.assertNotIn("markers", body["event"])
        # The custody fact flowed; now the officer in the case releases it.
        code, _, err = self.daemon.ctl("holds", "release", str(seq), "--by", "DC 1", check=False)
        self.assertEqual(code, 2)
        self.daemon.ctl("holds", "release", str(seq), "--by", "DC 1", "--reason", "charged, disclosure agreed")
        deadline = time.time() + 10
        while time.time() < deadline:
            rel = [n for n in self.notifications() if n[1] == "hold_released"]
            if len(rel) >= 3:
                break
            time.sleep(0.05)
        # DC 1 is not in the officers table: the duty recipient was told the
        # hold waits, so it too gets what was withheld.
        self.assertEqual(sorted(n[0] for n in rel),
                         ["children_services:E09000033", "duty:tvp-yjs-police", "liaison_diversion:tvp"])
        code, out, _ = self.daemon.ctl("--json", "audit", "--since", "2000-01-01T00:00:00Z")
        self.assertIn("release", [r["action"] for r in json.loads(out)["records"]])

    # --- audit ---

    def test_every_delivery_is_audited_and_chain_verifies(self):
        seq = self.send("custody", event(lac=True, responsible="E09000033"))
        self.wait_about(seq, 2)
        time.sleep(0.3)
        code, out, _ = self.daemon.ctl("--json", "audit")
        recs = [r for r in json.loads(out)["records"] if seq in r["seqs"] and r["action"] == "disclosure"]
        self.assertEqual(sorted(r["recipient"] for r in recs), ["children_services:E09000033", "liaison_diversion:tvp"])
        for r in recs:
            self.assertTrue(r["legal_basis"])
            self.assertTrue(r["address"])
            self.assertEqual(r["feeds"], ["custody"])
            self.assertIn("child.given_name", r["fields"])
        code, out, _ = self.daemon.ctl("--json", "audit", "verify")
        self.assertEqual(json.loads(out)["result"], "intact")


class DeliveryFailureTest(RoutingBase):
    """Receivers that fail, and a daemon that dies mid-delivery."""

    def test_receiver_down_then_up_delivers_everything_once(self):
        self.http.mode = 500
        seqs = [self.send("custody", event()) for _ in range(5)]
        time.sleep(1.0)
        self.assertTrue(all(r["status"] == 500 for r in self.http.received[-3:]))
        self.http.mode = 200
        deadline = time.time() + 15
        while time.time() < deadline and not all(self.about(s) for s in seqs):
            time.sleep(0.1)
        for s in seqs:
            self.assertEqual(self.about(s), [("liaison_diversion:tvp", "liaison_diversion")])
        ok = [json.loads(r["body"])["notification_id"] for r in self.http.received if r["status"] == 200]
        self.assertEqual(len(ok), len(set(ok)), "a notification was delivered twice")
        # In order, per recipient, while it was failing.
        ld = [json.loads(r["body"])["event"]["seq"] for r in self.http.received
              if r["status"] == 200 and json.loads(r["body"])["event"]["seq"] in seqs]
        self.assertEqual(ld, seqs)

    def test_permanent_failure_goes_to_dlq_and_next_still_arrives(self):
        self.http.mode = 400
        s1 = self.send("custody", event())
        deadline = time.time() + 5
        while time.time() < deadline:
            code, out, _ = self.daemon.ctl("--json", "dlq", "list")
            dead = [d for d in json.loads(out)["dead_letters"] if d["seq"] == s1]
            if dead:
                break
            time.sleep(0.05)
        self.assertEqual(len(dead), 1)
        self.assertIn("400", dead[0]["last_error"])
        self.http.mode = 200
        s2 = self.send("custody", event())
        self.assertEqual(self.wait_about(s2, 1), [("liaison_diversion:tvp", "liaison_diversion")])
        # An operator retries the dead letter: it arrives with the same id.
        # Waited for by the webhook itself, not by about(s1): the duty
        # recipient's dead-letter email names s1 too, and its arrival
        # (before or after this point) ended the wait early 1 run in 6.
        self.daemon.ctl("dlq", "retry", dead[0]["id"])

        def delivered_ids():
            return [json.loads(r["body"])["notification_id"] for r in list(self.http.received)
                    if r["status"] == 200 and json.loads(r["body"])["event"]["seq"] == s1]
        deadline = time.time() + 10
        while time.time() < deadline and not delivered_ids():
            time.sleep(0.05)
        time.sleep(0.3)  # a second delivery would arrive now
        self.assertEqual(delivered_ids(), [dead[0]["id"]])

    def test_kill9_during_delivery_loses_nothing(self):
        self.http.mode = "hang"
        seqs = [self.send("custody", event(lac=True, responsible="E08000025")) for _ in range(20)]
        time.sleep(0.3)
        self.daemon.kill()
        self.http.mode = 200
        type(self).start_daemon(self.dir)
        self.feed.close()
        self.feed = yjtest.Feed(self.daemon.ingest)
        deadline = time.time() + 20
        want = {("children_services:E08000025", "lac_in_custody"), ("liaison_diversion:tvp", "liaison_diversion")}
        while time.time() < deadline and not all(want <= set(self.about(s)) for s in seqs):
            time.sleep(0.1)
        for s in seqs:
            self.assertTrue(want <= set(self.about(s)), (s, self.about(s)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
