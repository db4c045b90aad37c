"""YJL1 ingest against the real daemon: every REJECT code, DUP, conflict,
malformed framing, pipelining, and the quarantine (interfaces.md §1, §2;
quality.md "Bad input": a catalogue of at least 60 malformed requests)."""
import datetime
import json
import unittest

import yjtest
from yjtest import DELETE, custody_event, with_path


def dob_for_age(age):
    """A date of birth making the child `age` today (and for the next weeks)."""
    t = datetime.date.today()
    y = t.year - age
    d = t.replace(year=y, day=1) if (t.month, t.day) == (2, 29) else t.replace(year=y)
    return (d - datetime.timedelta(days=40)).isoformat()


def arrest_event(**over):
    ev = custody_event()
    del ev["custody"]
    ev["arrest"] = {"arrest_id": "A-" + ev["source_id"], "arrested_at": ev["occurred_at"], "summons": False}
    ev.update(over)
    return ev


def interview_event():
    ev = custody_event()
    del ev["custody"]
    ev["interview"] = {"interview_id": "I-" + ev["source_id"], "status": "scheduled", "at": ev["occurred_at"]}
    return ev


def outcome_event():
    ev = custody_event()
    del ev["custody"]
    ev["outcome"] = {"case_ref": "C-" + ev["source_id"], "code": 22, "decided_at": ev["occurred_at"],
                     "disposal": "outcome_22"}
    return ev


def nested(depth):
    return "[" * depth + "]" * depth


def catalogue():
    """(name, frames, expected code, expected field or None). None field = not checked."""
    c = []
    ok = custody_event

    def j(ev):
        return json.dumps(ev).encode()

    def req(feed, payload, ctype=b"application/json"):
        return [b"YJL1", feed.encode() if isinstance(feed, str) else feed, ctype, payload]

    # protocol
    c.append(("three frames", [b"YJL1", b"custody", b"application/json"], "protocol", ""))
    c.append(("five frames", req("custody", j(ok())) + [b"extra"], "protocol", ""))
    c.append(("one frame", [b"YJL1"], "protocol", ""))
    c.append(("wrong magic", [b"YJL2", b"custody", b"application/json", j(ok())], "protocol", ""))
    c.append(("unknown feed", req("custodyx", j(ok())), "protocol", ""))
    c.append(("empty feed", req("", j(ok())), "protocol", ""))
    c.append(("unknown content type", req("custody", j(ok()), b"text/plain"), "protocol", ""))
    c.append(("content type case", req("custody", j(ok()), b"Application/JSON"), "protocol", ""))
    # too_large
    big = ok()
    big["child"]["given_name"] = "x" * 10
    pad = j(big) + b" " * 65537
    c.append(("payload over 64 KiB", req("custody", pad), "too_large", ""))
    c.append(("payload 1 MiB", req("custody", b"{" + b" " * (1 << 20) + b"}"), "too_large", ""))
    # encoding
    c.append(("invalid utf-8", req("custody", j(ok()).replace(b"Alex", b"Al\xffx")), "encoding", None))
    c.append(("raw NUL", req("custody", j(ok()).replace(b"Alex", b"Al\x00x")), "encoding", None))
    c.append(("escaped NUL", req("custody", j(ok()).replace(b"Alex", b"Al\\u0000x")), "encoding", None))
    c.append(("overlong utf-8", req("custody", j(ok()).replace(b"Alex", b"Al\xc0\xafx")), "encoding", None))
    c.append(("lone surrogate escape", req("custody", j(ok()).replace(b"Alex", b"Al\\ud800x")), "encoding", None))
    c.append(("utf-8 surrogate bytes", req("custody", j(ok()).replace(b"Alex", b"Al\xed\xa0\x80x")), "encoding", None))
    c.append(("truncated utf-8", req("custody", j(ok()).replace(b"Alex", b"Al\xe2\x82")), "encoding", None))
    c.append(("bad protobuf", req("custody", b"\xff\xff\xff\xff\x0f", b"application/x-protobuf"), "encoding", None))
    # syntax
    c.append(("truncated json", req("custody", j(ok())[:-5]), "syntax", None))
    c.append(("trailing garbage", req("custody", j(ok()) + b"x"), "syntax", None))
    c.append(("two values", req("custody", j(ok()) + b" {}"), "syntax", None))
    c.append(("duplicate top-level key", req("custody", j(ok()).replace(b'"force"', b'"force": "E23000029", "force"', 1)), "syntax", None))
    c.append(("duplicate nested key", req("custody", j(ok()).replace(b'"gender"', b'"gender": "male", "gender"', 1)), "syntax", None))
    c.append(("nesting 17 deep", req("custody", b'{"x": ' + nested(16).encode() + b"}"), "syntax", None))
    c.append(("empty payload", req("custody", b""), "syntax", None))
    c.append(("single quotes", req("custody", b"{'source_id': 'a'}"), "syntax", None))
    c.append(("trailing comma", req("custody", j(ok())[:-1] + b",}"), "syntax", None))
    c.append(("bare word", req("custody", b"custody"), "syntax", None))
    # schema
    c.append(("array", req("custody", b"[]"), "schema", None))
    c.append(("string", req("custody", b'"hello"'), "schema", None))
    c.append(("null", req("custody", b"null"), "schema", None))
    for path in ["source_id", "force", "occurred_at", "child", "child.person_id", "child.given_name",
                 "child.family_name", "child.date_of_birth", "custody.record_id", "custody.suite",
                 "custody.arrived_at", "custody.status", "custody.status_at"]:
        c.append(("missing " + path, req("custody", j(with_path(ok(), path, DELETE))), "schema", path))
    c.append(("child is a string", req("custody", j(with_path(ok(), "child", "x"))), "schema", "child"))
    c.append(("source_id is a number", req("custody", j(with_path(ok(), "source_id", 7))), "schema", "source_id"))
    c.append(("looked_after is a string", req("custody", j(with_path(ok(), "child.looked_after", "yes"))), "schema", "child.looked_after"))
    c.append(("unknown top-level field", req("custody", j(with_path(ok(), "forse", "E23000029"))), "schema", "forse"))
    c.append(("unknown child field", req("custody", j(with_path(ok(), "child.nickname", "A"))), "schema", "child.nickname"))
    c.append(("unknown custody field", req("custody", j(with_path(ok(), "custody.cell", "4"))), "schema", "custody.cell"))
    c.append(("missing feed object", req("custody", j(with_path(ok(), "custody", DELETE))), "schema", "custody"))
    c.append(("other feed's object", req("custody", j(with_path(ok(), "arrest", {"arrest_id": "a", "arrested_at": "2026-01-01T00:00:00Z"}))), "schema", "arrest"))
    c.append(("custody object on arrest feed", req("arrest", j(ok())), "schema", None))
    c.append(("offences not an array", req("custody", j(with_path(ok(), "offences", {"code": "x"}))), "schema", "offences"))
    c.append(("marker wrong type", req("custody", j(with_path(ok(), "markers", {"court_order": "yes"}))), "schema", "markers.court_order"))
    c.append(("looked after without responsible_la", req("custody", j(with_path(ok(), "child.looked_after", True))), "schema", "child.responsible_la"))
    # value
    c.append(("timestamp without offset", req("custody", j(with_path(ok(), "occurred_at", "2026-11-21T23:14:00"))), "value", "occurred_at"))
    c.append(("impossible timestamp", req("custody", j(with_path(ok(), "occurred_at", "2026-02-30T10:00:00Z"))), "value", "occurred_at"))
    c.append(("hour 25", req("custody", j(with_path(ok(), "custody.arrived_at", "2026-01-10T25:00:00Z"))), "value", "custody.arrived_at"))
    c.append(("occurred_at in the future", req("custody", j(with_path(ok(), "occurred_at", yjtest.utc(__import__("time").time() + 86400)))), "value", "occurred_at"))
    c.append(("source_id 129 bytes", req("custody", j(with_path(ok(), "source_id", "s" * 129))), "value", "source_id"))
    c.append(("empty source_id", req("custody", j(with_path(ok(), "source_id", ""))), "value", "source_id"))
    c.append(("name 257 bytes", req("custody", j(with_path(ok(), "child.given_name", "n" * 257))), "value", "child.given_name"))
    c.append(("reason over 1024", req("custody", j(with_path(ok(), "custody.reason", "r" * 1025))), "value", "custody.reason"))
    c.append(("unknown force", req("custody", j(with_path(ok(), "force", "E23999999"))), "value", "force"))
    c.append(("unknown home_la", req("custody", j(with_path(ok(), "child.home_la", "E06999999"))), "value", "child.home_la"))
    c.append(("lower-tier home_la", req("custody", j(with_path(ok(), "child.home_la", "E07000177"))), "value", "child.home_la"))
    c.append(("unknown suite", req("custody", j(with_path(ok(), "custody.suite", "NOWHERE"))), "value", "custody.suite"))
    c.append(("bad custody status", req("custody", j(with_path(ok(), "custody.status", "escaped"))), "value", "custody.status"))
    c.append(("malformed pnc", req("custody", j(with_path(ok(), "child.pnc_id", "123456X"))), "value", "child.pnc_id"))
    c.append(("malformed postcode", req("custody", j(with_path(ok(), "child.home_postcode", "NOT A CODE"))), "value", "child.home_postcode"))
    c.append(("malformed email", req("custody", j(with_path(ok(), "child.social_worker", {"name": "S", "email": "not-an-email"}))), "value", "child.social_worker.email"))
    c.append(("21 offences", req("custody", j(with_path(ok(), "offences", [{"code": "X%d" % i, "description": "d"} for i in range(21)]))), "value", "offences"))
    c.append(("unknown ethnicity", req("custody", j(with_path(ok(), "child.ethnicity", "Z9"))), "value", "child.ethnicity"))
    c.append(("unknown gender", req("custody", j(with_path(ok(), "child.gender", "robot"))), "value", "child.gender"))
    c.append(("impossible date of birth", req("custody", j(with_path(ok(), "child.date_of_birth", "2012-13-01"))), "value", "child.date_of_birth"))
    oc = outcome_event()
    c.append(("unknown outcome code", req("outcome", j(with_path(oc, "outcome.code", 99))), "value", "outcome.code"))
    c.append(("bad disposal", req("outcome", j(with_path(outcome_event(), "outcome.disposal", "fine"))), "value", "outcome.disposal"))
    c.append(("bad interview status", req("voluntary_interview", j(with_path(interview_event(), "interview.status", "maybe"))), "value", "interview.status"))
    # out_of_scope
    c.append(("aged 9", req("custody", j(with_path(ok(), "child.date_of_birth", dob_for_age(9)))), "out_of_scope", "child.date_of_birth"))
    c.append(("aged 18", req("custody", j(with_path(ok(), "child.date_of_birth", dob_for_age(18)))), "out_of_scope", "child.date_of_birth"))
    c.append(("aged 30", req("arrest", j(with_path(arrest_event(), "child.date_of_birth", dob_for_age(30)))), "out_of_scope", "child.date_of_birth"))
    return c


class IngestTest(yjtest.DaemonTest):

    def setUp(self):
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()

    def test_valid_events_of_every_feed_get_ok(self):
        for feed, ev in [("custody", custody_event()), ("arrest", arrest_event()),
                         ("voluntary_interview", interview_event()), ("outcome", outcome_event())]:
            r = self.feed.request(feed, ev)
            self.assertEqual(r[0], b"YJL1")
            self.assertEqual(r[1], b"OK", (feed, r))
            self.assertEqual(r[2].decode(), ev["source_id"])
            self.assertTrue(int(r[3]) > 0)

    def test_catalogue_of_malformed_requests(self):
        cases = catalogue()
        self.assertGreaterEqual(len(cases), 60)
        _, before = self.daemon.ctl_request("status")
        for name, frames, code, field in cases:
            with self.subTest(name):
                self.feed.send_frames(frames)
                r = self.feed.recv()
                self.assertEqual(len(r), 4, r)
                self.assertEqual(r[0], b"YJL1")
                self.assertEqual(r[1], b"REJECT", (name, r))
                detail = json.loads(r[3])
                self.assertEqual(detail["error"], code, (name, detail))
                if field is not None:
                    self.assertEqual(detail["field"], field, (name, detail))
                self.assertTrue(detail["reason"])
        # The daemon keeps serving, and quarantine holds every refusal.
        self.assertEqual(self.feed.request("custody", custody_event())[1], b"OK")
        _, after = self.daemon.ctl_request("status")
        self.assertEqual(after["store"]["quarantined"] - before["store"]["quarantined"], len(cases))

    def test_source_id_reported_on_reject(self):
        ev = with_path(custody_event(), "custody.status", "escaped")
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"REJECT")
        self.assertEqual(r[2].decode(), ev["source_id"])
        r = self.feed.request("custody", b"{not json")
        self.assertEqual(r[2], b"")

    def test_resend_is_dup_and_changed_resend_is_conflict(self):
        ev = custody_event()
        r1 = self.feed.request("custody", ev)
        self.assertEqual(r1[1], b"OK")
        r2 = self.feed.request("custody", json.dumps(ev, indent=2))  # same content, other bytes
        self.assertEqual((r2[1], r2[3]), (b"DUP", r1[3]))
        changed = with_path(ev, "custody.status", "released_bail")
        r3 = self.feed.request("custody", changed)
        self.assertEqual(r3[1], b"REJECT")
        detail = json.loads(r3[3])
        self.assertEqual(detail["error"], "conflict")
        self.assertEqual(detail["field"], "source_id")

    def test_other_force_is_forbidden(self):
        ev = custody_event(force="E23000001")
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"REJECT")
        self.assertEqual(json.loads(r[3])["error"], "forbidden")

    def test_pipelined_requests_one_reply_each_in_order(self):
        n = 3000
        sent = []
        for i in range(n):
            ev = custody_event()
            if i % 100 == 99:
                self.feed.send_frames([b"YJL1", b"custody"])  # malformed, still answered
                sent.append("")
            self.feed.send("custody", ev)
            sent.append(ev["source_id"])
        got = [self.feed.recv() for _ in sent]
        self.assertEqual([g[2].decode() for g in got], sent)
        statuses = [g[1] for g in got]
        self.assertEqual(statuses.count(b"OK"), n)
        self.assertEqual(statuses.count(b"REJECT"), n // 100)
        seqs = [int(g[3]) for g in got if g[1] == b"OK"]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(len(set(seqs)), n)

    def test_quarantine_and_show_through_yjlinkctl(self):
        ev = with_path(custody_event(), "child.home_la", "E06999999")
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"REJECT")
        code, out, _ = self.daemon.ctl("--json", "quarantine", "list", "--limit", "5")
        entries = json.loads(out)["entries"]
        mine = [e for e in entries if e["source_id"] == ev["source_id"]]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["error"], "value")
        self.assertEqual(mine[0]["field"], "child.home_la")
        # Showing the raw message needs a reason.
        code, _, err = self.daemon.ctl("quarantine", "show", str(mine[0]["id"]), check=False)
        self.assertEqual(code, 2)
        self.assertIn("--reason", err)
        code, out, _ = self.daemon.ctl("--json", "quarantine", "show", str(mine[0]["id"]), "--reason", "test")
        raw = bytes.fromhex(json.loads(out)["entry"]["payload_hex"])
        self.assertEqual(json.loads(raw), ev)

    def test_show_and_events(self):
        ev = custody_event()
        seq = int(self.feed.request("custody", ev)[3])
        code, out, _ = self.daemon.ctl("--json", "show", str(seq), "--reason", "integration test")
        shown = json.loads(out)["event"]
        self.assertEqual(shown["seq"], seq)
        self.assertEqual(shown["source_id"], ev["source_id"])
        self.assertEqual(shown["child"]["home_la"], "E06000042")
        self.assertEqual(shown["custody"]["status"], "detained")
        code, out, _ = self.daemon.ctl("--json", "events", "--child", ev["child"]["person_id"], "--reason", "integration test")
        self.assertEqual([e["seq"] for e in json.loads(out)["events"]], [seq])
        code, _, err = self.daemon.ctl("show", str(seq), check=False)
        self.assertEqual(code, 2)
        code, _, err = self.daemon.ctl("show", "999999999", "--reason", "x", check=False)
        self.assertEqual(code, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
