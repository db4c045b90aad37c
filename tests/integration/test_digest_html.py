"""The Milton Keynes daily digest as a YJS receives it, opened in a real browser
(interfaces.md §5).

A real SMTP server, the real daemon on the shipped config (conf/yjlinkd.conf,
the Thames Valley demo; only its loopback webhook URL is pointed at this
test's HTTP receiver and its SMTP URL at this test's SMTP server), a clock
under the test's control, two days of yjlink-sim traffic and a few hand-made
Milton Keynes cases (a looked-after child, a child of no fixed abode, a child
from London held in Milton Keynes, a live investigation). The clock then
moves past 07:30 and the digests go out. The Milton Keynes one is taken apart:

- its CSV attachment is parsed as RFC 4180 with Python's csv module; the
  header starts with the §5 columns in order, and every event routed to this
  YJS's digest in the window is in exactly one primary section;
- its text/html part is loaded in headless Chromium (--dump-dom) at a phone's
  width (390 px) and a desktop's (1280 px): every child of the CSV is in
  exactly one entry (an <article>) holding exactly their events, what to act
  on first comes first, and the text a person sees has local times and
  names, never an RFC 3339 time or a GSS code;
- its text/plain part has one entry per child, the same way.

Chromium must be installed (tools/install-deps.sh installs Debian's
`chromium`); without it this test fails, it does not skip.

YJ_DIGEST_SAVE_DIR=DIR keeps the email, its HTML and CSV and the dumped DOM
in DIR (to look at, or to make docs/digest-sample.png from).
"""
import csv
import email
import email.policy
import html.parser
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

CHROMIUM = os.environ.get("YJ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The daemon starts on Tuesday 24 November 2026 at 07:31 (GMT = Europe/London
# then): its first digest state is made at once, so the first Milton Keynes
# digest is Wednesday 25 November at 07:30 and covers nearly a whole day.
CLOCK_START = "2026-11-24T07:31:00Z"
HAND_AT = "2026-11-25T06:40:00Z"       # the hand-made cases arrive early on the 25th
SEND_AT = "2026-11-25T07:32:00Z"       # just past 07:30: the digests go out
DIGEST_DATE = "2026-11-25"
DIGEST_ID = "tvp-digest-milton-keynes-20261125T0730"
WINDOW_END = "2026-11-25T07:30:00Z"
SIM_SEED = 20261124
SIM_ARGS = ["--seed", str(SIM_SEED), "--now", CLOCK_START, "--days", "2", "--per-day", "150"]

MK = "yjs:milton-keynes"
MK_LA = "E06000042"
MK_ADDRESS = "yjs.police@milton-keynes.example"

SPEC_COLUMNS = ["section", "seq", "feed", "source_id", "occurred_at", "person_id", "pnc_id", "given_name",
                "family_name", "date_of_birth", "home_la", "looked_after", "custody_record_id", "suite",
                "custody_status", "arrived_at", "overnight", "interview_status", "outcome_code", "outcome_name",
                "withheld"]
SECTIONS = ["custody", "arrest", "voluntary_interview", "outcome", "other_area", "still_in_custody", "new_child"]
PRIMARY = SECTIONS[:5]
FEED_SECTION = {"custody": "custody", "arrest": "arrest", "voluntary_interview": "voluntary_interview",
                "outcome": "outcome"}
BODY_FEED = {"custody": "custody", "arrest": "arrest", "interview": "voluntary_interview", "outcome": "outcome"}
# HTML column title -> CSV column: the cells a person reads.
HTML_CELLS = {"Seq": "seq", "Given name": "given_name", "Family name": "family_name",
              "Date of birth": "date_of_birth", "Home LA": "home_la", "Looked after": "looked_after",
              "Suite": "suite", "Status": "custody_status", "Arrived": "arrived_at", "Overnight": "overnight",
              "Interview": "interview_status", "Outcome": "outcome_code", "Outcome name": "outcome_name",
              "Occurred": "occurred_at", "Withheld": "withheld"}

WITHHELD_OFFENCE = "Robbery of a mobile telephone at knifepoint"


def hand_made():
    """The hand-made Milton Keynes cases: name -> (feed, event)."""
    def base(n, given, family, home, **over):
        ev = yjtest.custody_event()
        ev["source_id"] = "hand-mk-%d" % n
        ev["occurred_at"] = over.pop("occurred_at")
        ev["child"].update({"person_id": "TVP-PHM%04d" % n, "pnc_id": "26/10%04dQ" % n, "given_name": given,
                            "family_name": family, "date_of_birth": over.pop("dob")})
        if home is None:
            del ev["child"]["home_la"]
            del ev["child"]["home_postcode"]
        else:
            ev["child"]["home_la"] = home
            ev["child"]["home_postcode"] = over.pop("postcode")
        ev["custody"].update({"record_id": "TVP-CR-26-HM%04d" % n, "suite": "TVP-MK"})
        ev["custody"].update(over.pop("custody", {}))
        ev.update(over)
        return ev

    lac = base(1, "Zoë", "O'Connor-Brown", MK_LA, postcode="MK6 3BX", dob="2010-05-14",
               occurred_at="2026-11-25T01:25:00Z",
               custody={"arrived_at": "2026-11-25T01:10:00Z", "status": "detained",
                        "status_at": "2026-11-25T01:25:00Z",
                        "appropriate_adult": {"name": "Grace Adeyemi", "relationship": "foster carer"}},
               offences=[{"code": "CD71040", "description": "Criminal damage to property valued under £5000"}])
    lac["child"].update({"looked_after": True, "responsible_la": MK_LA,
                         "social_worker": {"name": "Helen Marsh", "email": "helen.marsh@milton-keynes.example",
                                           "phone": "01908 000000"}})
    nfa = base(2, "Kacper", "Nowak", None, dob="2009-09-30", occurred_at="2026-11-25T05:15:00Z",
               custody={"arrived_at": "2026-11-24T21:30:00Z", "status": "released_under_investigation",
                        "status_at": "2026-11-25T05:15:00Z"},
               offences=[{"code": "TH68010", "description": "Theft from a shop"}])
    london = base(3, "Tyrese", "Mensah", "E09000007", postcode="NW1 0JH", dob="2011-01-08",
                  occurred_at="2026-11-25T04:55:00Z",
                  custody={"arrived_at": "2026-11-25T04:50:00Z", "status": "detained",
                           "status_at": "2026-11-25T04:55:00Z"},
                  offences=[{"code": "CJ03507", "description": "Possess a bladed article in a public place"}])
    live = base(4, "Aisha", "Rahman", MK_LA, postcode="MK10 9AA", dob="2009-12-02",
                occurred_at="2026-11-25T06:05:00Z",
                custody={"arrived_at": "2026-11-25T05:40:00Z", "status": "detained",
                         "status_at": "2026-11-25T06:05:00Z", "reason": "Named by a witness in an ongoing robbery"},
                offences=[{"code": "TH68001", "description": WITHHELD_OFFENCE}],
                markers={"live_investigation": True, "officer_in_case": "DC 4521 Patel"})
    interview = base(5, "Ellis", "Whitfield", MK_LA, postcode="MK3 5AB", dob="2012-02-29",
                     occurred_at="2026-11-25T06:20:00Z")
    del interview["custody"]
    interview["interview"] = {"interview_id": "TVP-VI-26-HM0005", "status": "scheduled",
                              "at": "2026-11-27T10:00:00Z", "location": "Milton Keynes Police Station"}
    return {"looked_after": ("custody", lac), "no_fixed_abode": ("custody", nfa),
            "other_area": ("custody", london), "live_investigation": ("custody", live),
            "interview": ("voluntary_interview", interview)}


class Dom(html.parser.HTMLParser):
    """The DOM as Chromium serialised it, as a tree of (tag, attrs, children, text)."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.root = {"tag": "#root", "attrs": {}, "children": [], "parent": None, "text": []}
        self.cur = self.root
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = {"tag": tag, "attrs": dict(attrs), "children": [], "parent": self.cur, "text": []}
        self.cur["children"].append(node)
        if tag not in self.VOID:
            self.cur = node

    def handle_startendtag(self, tag, attrs):
        self.cur["children"].append({"tag": tag, "attrs": dict(attrs), "children": [], "parent": self.cur,
                                     "text": []})

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self.root and n["tag"] != tag:
            n = n["parent"]
        if n is not self.root:
            self.cur = n["parent"]

    def handle_data(self, data):
        self.cur["text"].append(data)
        self.cur["children"].append(data)

    def find_all(self, tag, node=None, **attrs):
        node = node or self.root
        out = []
        for c in node["children"]:
            if isinstance(c, str):
                continue
            if c["tag"] == tag and all(c["attrs"].get(k) == v for k, v in attrs.items()):
                out.append(c)
            out.extend(self.find_all(tag, c, **attrs))
        return out

    def all_nodes(self, node=None):
        node = node or self.root
        out = []
        for c in node["children"]:
            if not isinstance(c, str):
                out.append(c)
                out.extend(self.all_nodes(c))
        return out

    def visible_text(self, node=None):
        """The text a person sees: everything but style and script (the title included)."""
        node = node or self.root
        return "".join(c if isinstance(c, str) else ("" if c["tag"] in ("style", "script") else self.visible_text(c))
                       for c in node["children"])

    @staticmethod
    def text(node):
        return "".join(c if isinstance(c, str) else Dom.text(c) for c in node["children"])

    @staticmethod
    def kids(node, tag):
        return [c for c in node["children"] if not isinstance(c, str) and c["tag"] == tag]


class DigestHtmlTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="yjdigesthtml-")
        cls.smtp = SmtpReceiver().start()
        cls.http = HttpReceiver().start()
        cls.daemon = None
        try:
            cls.run_scenario()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.daemon:
            cls.daemon.kill()
        cls.http.stop()
        cls.smtp.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def run_scenario(cls):
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read()
        text = text.replace("http://127.0.0.1:8088", cls.http.url.rsplit("/", 1)[0])
        conf = os.path.join(cls.tmp, "yjlinkd.conf")
        with open(conf, "w") as f:
            f.write(text)
        cls.all_yjs_las = set()
        for m in re.finditer(r'kind = "yjs";.*?local_authorities = \[([^\]]*)\]', text, re.S):
            cls.all_yjs_las.update(re.findall(r'"([^"]+)"', m.group(1)))
        cls.suite_la = {}
        with open(os.path.join(yjtest.SOURCE, "conf", "ref", "custody_suites.csv")) as f:
            for row in csv.DictReader(f):
                cls.suite_la[row["id"]] = row["la"]

        cls.daemon = yjtest.Daemon(workdir=cls.tmp, config=conf, sets={
            "email.smtp_url": "smtp://127.0.0.1:%d" % cls.smtp.port,
            "testing.clock_control": "true",
            "testing.clock_start": CLOCK_START,
        }).start()

        # Two days of simulated Thames Valley traffic, as yjlink-sim sends it;
        # the same arguments with --jsonl give the very same payloads, to check against.
        acks = os.path.join(cls.tmp, "acks.txt")
        jsonl = os.path.join(cls.tmp, "sim.jsonl")
        for extra in (["--endpoint", cls.daemon.ingest, "--acks", acks, "--quiet"], ["--jsonl", jsonl]):
            p = subprocess.run([yjtest.YJLINK_SIM] + SIM_ARGS + extra, capture_output=True, text=True, timeout=120)
            if p.returncode != 0:
                raise AssertionError("yjlink-sim %s: exit %d\n%s%s" % (extra, p.returncode, p.stdout, p.stderr))
        cls.payloads = {}   # seq -> (feed, event)
        by_source = {}
        with open(jsonl) as f:
            for line in f:
                ev = json.loads(line)
                feed = [BODY_FEED[k] for k in BODY_FEED if k in ev][0]
                by_source[ev["source_id"]] = (feed, ev)
        with open(acks) as f:
            for line in f:
                status, seq, source_id = line.split()
                if status != "OK":
                    raise AssertionError("yjlink-sim got %s for %s" % (status, source_id))
                cls.payloads[int(seq)] = by_source.pop(source_id)
        if by_source:
            raise AssertionError("yjlink-sim --jsonl made events it did not send: %s" % sorted(by_source)[:5])

        # The hand-made Milton Keynes cases, early on the 25th.
        cls.clock(HAND_AT)
        feed = yjtest.Feed(cls.daemon.ingest)
        cls.hand = {}
        try:
            for name, (fname, ev) in hand_made().items():
                r = feed.request(fname, ev)
                if r[1] != b"OK":
                    raise AssertionError("%s refused: %s" % (name, r))
                cls.hand[name] = int(r[3])
                cls.payloads[int(r[3])] = (fname, ev)
        finally:
            feed.close()

        # Routed to the Milton Keynes digest, as the daemon recorded it before sending.
        code, body = cls.daemon.ctl_request("digest", {"sub": "pending", "arg": MK})
        if code != 0:
            raise AssertionError(body)
        cls.pending = {}
        for e in body["entries"]:
            cls.pending.setdefault(e["seq"], set()).add(e["rule"])

        # Past 07:30: every YJS's digest goes out.
        cls.clock(SEND_AT)
        cls.msg = None
        deadline = time.time() + 60
        while time.time() < deadline and cls.msg is None:
            for m in list(cls.smtp.messages):
                msg = email.message_from_bytes(m["data"], policy=email.policy.default)
                if msg["X-Yjlink-Digest-Id"] and "-milton-keynes-" in msg["X-Yjlink-Digest-Id"]:
                    cls.msg, cls.envelope = msg, m
            time.sleep(0.1)
        if cls.msg is None:
            raise AssertionError("no Milton Keynes digest email within 60 s of %s; daemon log:\n%s"
                                 % (SEND_AT, cls.daemon.read_log()[-4000:]))
        time.sleep(0.5)  # a second copy would be here by now
        cls.mk_copies = [m for m in cls.smtp.messages
                         if b"X-Yjlink-Digest-Id: " + DIGEST_ID.encode() in m["data"]]

        cls.html = cls.msg.get_body(preferencelist=("html",)).get_content()
        cls.text = cls.msg.get_body(preferencelist=("plain",)).get_content()
        cls.csv_part = [p for p in cls.msg.iter_attachments() if p.get_content_type() == "text/csv"]
        cls.csv_bytes = cls.csv_part[0].get_payload(decode=True) if cls.csv_part else b""
        save = os.environ.get("YJ_DIGEST_SAVE_DIR")
        if save:
            os.makedirs(save, exist_ok=True)
            with open(os.path.join(save, "digest.eml"), "wb") as f:
                f.write(cls.envelope["data"])
            with open(os.path.join(save, "digest.html"), "w", encoding="utf-8") as f:
                f.write(cls.html)
            with open(os.path.join(save, "digest.csv"), "wb") as f:
                f.write(cls.csv_bytes)

    @classmethod
    def clock(cls, t):
        code, body = cls.daemon.ctl_request("clock", {"set": t})
        if code != 0:
            raise AssertionError("clock set %s: %s" % (t, body))

    # --- helpers ---

    def csv_rows(self):
        self.assertEqual(len(self.csv_part), 1, "one text/csv attachment")
        text = self.csv_bytes.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]], rows

    def expected_primary(self):
        """Seq -> primary section, from the payloads alone (routing.md's default rules)."""
        out = {}
        for seq, (feed, ev) in self.payloads.items():
            home = ev["child"].get("home_la")
            if home == MK_LA:
                out[seq] = FEED_SECTION[feed]
            elif feed == "custody" and home not in self.all_yjs_las and self.suite_la[ev["custody"]["suite"]] == MK_LA:
                out[seq] = "other_area"
        return out

    def chromium_dom(self, width=1280, height=900):
        if not os.path.exists(CHROMIUM):
            self.fail("%s is missing: the digest HTML must be checked in a real browser. "
                      "Run tools/install-deps.sh (it installs Debian's chromium package)." % CHROMIUM)
        page = os.path.join(self.tmp, "digest.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(self.html)
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.tmp)
        try:
            p = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile,
                                                              "--window-size=%d,%d" % (width, height), "--dump-dom",
                                                              "file://" + page],
                               capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail("chromium --dump-dom did not finish in 180 s")
        self.assertEqual(p.returncode, 0, "chromium failed:\n" + p.stderr[-3000:])
        # Chromium re-serialises the doctype (upper case): the page is in standards mode, not quirks mode.
        self.assertRegex(p.stdout[:200], r"^<!DOCTYPE html>\s*<html", "chromium printed no DOM in standards mode")
        save = os.environ.get("YJ_DIGEST_SAVE_DIR")
        if save:
            with open(os.path.join(save, "digest.dom-%d.html" % width), "w", encoding="utf-8") as f:
                f.write(p.stdout)
        return Dom(p.stdout)

    # --- the email ---

    def test_one_digest_with_subject_headers_and_mime(self):
        self.assertEqual(len(self.mk_copies), 1, "the Milton Keynes digest arrived once")
        self.assertEqual(self.envelope["rcpt_tos"], [MK_ADDRESS])
        msg = self.msg
        self.assertEqual(msg["X-Yjlink-Digest-Id"], DIGEST_ID)
        start, end = msg["X-Yjlink-Window"].split("/")
        self.assertEqual(end, WINDOW_END)
        # The first state was made at start-up, at CLOCK_START (the clock runs on in real time).
        self.assertTrue(CLOCK_START <= start <= "2026-11-24T07:32:00Z", start)
        header, rows, _ = self.csv_rows()
        children = {r["person_id"] for r in rows}
        self.assertEqual(msg["Subject"], "[OFFICIAL-SENSITIVE] yjlink daily digest Milton Keynes YJS %s: %d children"
                         % (DIGEST_DATE, len(children)))
        # No name, date of birth or person id in the subject.
        for r in rows:
            for col in ("given_name", "family_name", "date_of_birth", "person_id", "pnc_id"):
                if r[col]:
                    self.assertNotIn(r[col], msg["Subject"], col)
        for name in ("Zoë", "O'Connor-Brown", "Kacper", "Nowak", "Tyrese", "Mensah", "Aisha", "Rahman"):
            self.assertNotIn(name, msg["Subject"])
        # multipart/mixed [ multipart/alternative [ text/plain, text/html ], text/csv ]
        self.assertEqual(msg.get_content_type(), "multipart/mixed")
        parts = list(msg.iter_parts())
        self.assertEqual([p.get_content_type() for p in parts], ["multipart/alternative", "text/csv"])
        self.assertEqual([p.get_content_type() for p in parts[0].iter_parts()], ["text/plain", "text/html"])
        self.assertEqual(parts[1].get_filename(), "yjlink-digest-milton-keynes-%s.csv" % DIGEST_DATE)
        self.assertEqual(parts[1].get_content_disposition(), "attachment")
        # The text part says the same as the HTML, readably.
        self.assertNotIn("<td", self.text)
        self.assertIn("Digest id: " + DIGEST_ID, self.text)
        self.assertIn("%d children" % len(children), self.text)

    # --- the CSV ---

    def test_csv_is_rfc4180_with_the_spec_columns(self):
        header, rows, raw = self.csv_rows()
        self.assertEqual(header[:len(SPEC_COLUMNS)], SPEC_COLUMNS)
        self.assertEqual(len(set(header)), len(header), "duplicate column names")
        for r in raw:
            self.assertEqual(len(r), len(header), r)
        # RFC 4180: CRLF after every record, UTF-8, no BOM.
        self.assertTrue(self.csv_bytes.endswith(b"\r\n"))
        self.assertEqual(self.csv_bytes.count(b"\n"), self.csv_bytes.count(b"\r\n"))
        self.assertFalse(self.csv_bytes.startswith(b"\xef\xbb\xbf"))
        self.assertIn("Zoë", self.csv_bytes.decode("utf-8"))
        # Section by section, in sequence order within a section.
        keys = [(SECTIONS.index(r["section"]), int(r["seq"])) for r in rows]
        self.assertEqual(keys, sorted(keys))
        self.assertEqual(len(keys), len(set(keys)), "a row twice in one section")

    def test_every_routed_event_in_exactly_one_primary_section(self):
        header, rows, _ = self.csv_rows()
        primary = [(r["section"], int(r["seq"])) for r in rows if r["section"] in PRIMARY]
        seqs = [s for _, s in primary]
        self.assertEqual(len(seqs), len(set(seqs)), "an event in two primary sections")
        # What the daemon routed to this digest ...
        self.assertEqual(set(seqs), set(self.pending))
        # ... is what the default rules say, worked out from the payloads alone.
        self.assertEqual(dict((s, sec) for sec, s in primary), self.expected_primary())
        # The mix is realistic: every section has rows.
        got = {r["section"] for r in rows}
        self.assertEqual(got, set(SECTIONS), "sections with rows")
        # still_in_custody and new_child repeat events of this or earlier windows, stored by the window's end.
        for r in rows:
            self.assertIn(int(r["seq"]), self.payloads)
        for sec, s in primary:
            self.assertEqual(rows[[int(x["seq"]) for x in rows].index(s)]["feed"], self.payloads[s][0])

    def test_hand_made_cases_are_where_they_belong(self):
        header, rows, _ = self.csv_rows()
        by = {}
        for r in rows:
            by.setdefault(int(r["seq"]), {})[r["section"]] = r
        lac = by[self.hand["looked_after"]]
        self.assertEqual(set(lac), {"custody", "still_in_custody", "new_child"})
        self.assertEqual((lac["custody"]["given_name"], lac["custody"]["family_name"]), ("Zoë", "O'Connor-Brown"))
        self.assertEqual(lac["custody"]["looked_after"], "yes")
        self.assertEqual(lac["custody"]["overnight"], "yes")     # 01:10 to 07:30, still detained
        nfa = by[self.hand["no_fixed_abode"]]
        self.assertEqual(set(nfa), {"other_area"})
        self.assertEqual(nfa["other_area"]["home_la"], "")
        self.assertEqual(nfa["other_area"]["overnight"], "yes")  # 21:30 to 05:15
        ldn = by[self.hand["other_area"]]
        self.assertEqual(set(ldn), {"other_area", "still_in_custody"})
        self.assertEqual(ldn["other_area"]["home_la"], "E09000007")
        self.assertEqual(ldn["other_area"]["overnight"], "no")   # 04:50 to 07:30 is under 4 hours
        vi = by[self.hand["interview"]]
        self.assertEqual(set(vi), {"voluntary_interview", "new_child"})
        self.assertEqual(vi["voluntary_interview"]["interview_status"], "scheduled")

    def test_withheld_rows_carry_no_offences(self):
        header, rows, _ = self.csv_rows()
        live = self.hand["live_investigation"]
        live_rows = [r for r in rows if int(r["seq"]) == live]
        self.assertEqual({r["section"] for r in live_rows}, {"custody", "still_in_custody", "new_child"})
        for r in rows:
            ev = self.payloads[int(r["seq"])][1]
            held = bool((ev.get("markers") or {}).get("live_investigation"))
            self.assertEqual(r["withheld"], "yes" if held else "no", r["seq"])
            if held:
                # The custody fact flows; the offence details do not.
                self.assertEqual(r.get("offences", ""), "", r["seq"])
                self.assertTrue(r["given_name"] and r["custody_status"] or r["feed"] != "custody")
            elif ev.get("offences") and "offences" in header:
                self.assertTrue(r["offences"], "offences of an event not withheld: %s" % r["seq"])
        for r in live_rows:
            self.assertEqual((r["given_name"], r["family_name"], r["suite"]), ("Aisha", "Rahman", "TVP-MK"))
        for where, content in (("csv", self.csv_bytes.decode("utf-8")), ("html", self.html), ("text", self.text)):
            self.assertNotIn(WITHHELD_OFFENCE, content, where)
            self.assertNotIn("DC 4521 Patel", content, where)
            self.assertNotIn("ongoing robbery", content, where)

    # --- what a person reads: the HTML as Chromium parsed it, and the text part ---

    def children_from_csv(self):
        """person_id -> {"seqs", "name", "sections", "newest"} from the CSV (every section)."""
        header, rows, _ = self.csv_rows()
        kids = {}
        for r in rows:
            k = kids.setdefault(r["person_id"], {"seqs": set(), "sections": set(), "newest": None})
            k["seqs"].add(int(r["seq"]))
            k["sections"].add(r["section"])
            if k["newest"] is None or int(r["seq"]) >= int(k["newest"]["seq"]):
                k["newest"] = r
        for k in kids.values():
            k["name"] = "%s %s" % (k["newest"]["given_name"], k["newest"]["family_name"])
        return kids

    def check_readable(self, where, text):
        """No machine codes where a person reads: no RFC 3339 times, no GSS codes."""
        iso = re.findall(r"\d{4}-\d\d-\d\dT[^\s]*", text)
        self.assertEqual(iso, [], "%s shows ISO timestamps" % where)
        gss = re.findall(r"\b[EWSN]\d{8}\b", text)
        self.assertEqual(gss, [], "%s shows GSS codes" % where)
        for code in ("released_under_investigation", "charged_bailed", "TVP-MK,", "yjs:milton-keynes"):
            self.assertNotIn(code, text, where)

    def test_html_in_chromium_phone_and_desktop(self):
        kids = self.children_from_csv()
        header, rows, _ = self.csv_rows()
        for width, height in ((390, 844), (1280, 900)):
            with self.subTest(width=width):
                dom = self.chromium_dom(width, height)
                self.check_dom(dom, kids, rows)

    def check_dom(self, dom, kids, rows):
        metas = dom.find_all("meta", name="viewport")
        self.assertEqual(len(metas), 1, "one viewport meta")
        self.assertIn("width=device-width", metas[0]["attrs"].get("content", ""))
        self.assertTrue(any(m["attrs"].get("charset", "").lower() == "utf-8" for m in dom.find_all("meta")))
        # No JavaScript, no external resources.
        for tag in ("script", "img", "iframe", "link", "object", "embed", "form", "input"):
            self.assertEqual(dom.find_all(tag), [], tag)
        for node in dom.all_nodes():
            for k, v in node["attrs"].items():
                self.assertFalse(k.startswith("on"), "event handler %s" % k)
                if k in ("href", "src"):
                    self.assertTrue((v or "").startswith("#"), "%s=%s" % (k, v))
        visible = dom.visible_text()
        self.check_readable("the HTML", visible)
        self.assertIn("Zoë", visible)
        self.assertIn("O'Connor-Brown", visible)
        self.assertIn("OFFICIAL-SENSITIVE", visible)
        self.assertIn(DIGEST_ID, visible)
        # Semantic structure: one h1, h2 per part, one article (with its h3) per child.
        self.assertEqual(len(dom.find_all("h1")), 1)
        h2 = [Dom.text(h).strip() for h in dom.find_all("h2")]
        self.assertEqual(h2[0], "Summary")
        articles = dom.find_all("article")
        self.assertEqual(len(articles), len(kids), "one entry per child")
        by_seqs = {}
        for art in articles:
            self.assertEqual(len(Dom.kids(art, "h3")), 1, "each child entry has its heading")
            seqs = frozenset(int(li["attrs"]["data-seq"]) for li in dom.find_all("li", art) if "data-seq" in li["attrs"])
            self.assertNotIn(seqs, by_seqs, "two entries with the same events")
            by_seqs[seqs] = art
            lis = [li for li in dom.find_all("li", art) if "data-seq" in li["attrs"]]
            self.assertEqual(len(lis), len(seqs), "an event twice in one entry")
            for li in lis:
                # Each event line starts with its local time ("Wed 25 Nov 01:25", or "15:10" later that day).
                self.assertRegex(Dom.text(li).strip(), r"^((Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2} )?\d\d:\d\d ")
        # Every child of the window once, with every event of theirs (all sections).
        for pid, k in kids.items():
            art = by_seqs.get(frozenset(k["seqs"]))
            self.assertIsNotNone(art, "child %s: no entry with exactly their events %s" % (pid, sorted(k["seqs"])))
            self.assertEqual(Dom.text(Dom.kids(art, "h3")[0]).strip(), k["name"], pid)
        # What to act on first comes first: every child still in custody is in the first part, but
        # those from other areas, which come last.
        parts = {s["attrs"].get("aria-labelledby"): s for s in dom.find_all("section")}
        self.assertIn("act-first", parts)
        first_part = {frozenset(int(li["attrs"]["data-seq"]) for li in dom.find_all("li", a) if "data-seq" in li["attrs"])
                      for a in dom.find_all("article", parts["act-first"])}
        other_part = {frozenset(int(li["attrs"]["data-seq"]) for li in dom.find_all("li", a) if "data-seq" in li["attrs"])
                      for a in dom.find_all("article", parts["other-areas"])}
        for pid, k in kids.items():
            seqs = frozenset(k["seqs"])
            if "other_area" in k["sections"] and not (k["sections"] & {"custody", "arrest", "voluntary_interview",
                                                                        "outcome", "new_child"}):
                self.assertIn(seqs, other_part, pid)
            elif k["sections"] & {"still_in_custody", "new_child"} or k["newest"]["looked_after"] == "yes":
                self.assertIn(seqs, first_part, pid)
        # The order in the first part: children still in custody before the others.
        ranks = []
        for a in dom.find_all("article", parts["act-first"]):
            flags = [Dom.text(li).strip() for li in dom.find_all("li", a) if "flag" in li["attrs"].get("class", "")]
            ranks.append(0 if "still in custody" in flags else 1)
        self.assertEqual(ranks, sorted(ranks))
        # The count line, readable in one glance.
        count = Dom.text(dom.find_all("p", **{"class": "count"})[0]).strip()
        still = {pid for pid, k in kids.items() if "still_in_custody" in k["sections"]}
        new = {pid for pid, k in kids.items() if "new_child" in k["sections"]}
        self.assertTrue(count.startswith("%d children: " % len(kids)), count)
        self.assertIn("%d still in custody" % len(still), count)
        self.assertIn("%d new" % len(new), count)
        # Withheld details stay out of the DOM too.
        self.assertNotIn(WITHHELD_OFFENCE, visible)
        # The hand-made cases read as names and local times.
        zoe = by_seqs[frozenset(kids["TVP-PHM0001"]["seqs"])]
        zt = re.sub(r"\s+", " ", Dom.text(zoe))
        self.assertIn("Wed 25 Nov 01:25 detained at Milton Keynes", zt)
        self.assertIn("home: Milton Keynes", zt)
        self.assertIn("looked after: yes", zt)
        self.assertIn("held overnight", zt)
        self.assertIn("Grace Adeyemi (foster carer)", zt)
        self.assertIn("Criminal damage to property valued under £5000", zt)
        ty = re.sub(r"\s+", " ", Dom.text(by_seqs[frozenset(kids["TVP-PHM0003"]["seqs"])]))
        self.assertIn("home: Camden", ty)
        nfa = re.sub(r"\s+", " ", Dom.text(by_seqs[frozenset(kids["TVP-PHM0002"]["seqs"])]))
        self.assertIn("no fixed abode", nfa)
        self.assertIn("released under investigation", nfa)
        self.assertIn("7 h 45 min in custody", nfa)   # 21:30 to 05:15
        self.assertTrue(dom.find_all("p", **{"class": "mark"}), "OFFICIAL-SENSITIVE marking")

    def test_text_part_holds_every_child(self):
        kids = self.children_from_csv()
        text = self.text
        self.check_readable("the text part", text)
        # CRLF only, no stray control characters.
        self.assertEqual(text.count("\n"), text.count("\r\n"))
        entries = [l[2:] for l in text.split("\r\n") if l.startswith("* ")]
        self.assertEqual(len(entries), len(kids), "one entry per child")
        names = {}
        for k in kids.values():
            names[k["name"]] = names.get(k["name"], 0) + 1
        for name, n in names.items():
            self.assertEqual(sum(1 for e in entries if e == name or e.startswith(name + ": ")), n, name)
        self.assertRegex(text, r"\r\n%d children: " % len(kids))
        self.assertIn("Wed 25 Nov 01:25  detained at Milton Keynes custody suite", text)
        self.assertIn("Feeds", text)
        self.assertRegex(text, r"Custody: last message Wed 25 Nov \d\d:\d\d")


if __name__ == "__main__":
    unittest.main(verbosity=2)
