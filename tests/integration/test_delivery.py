"""One outbox for every disclosure: daily digests and event notifications go
through the same delivery engine, by any transport (interfaces.md §3 "A digest
goes by the recipient's transport", §5, §6; routing.md "Practice rules").

Real receivers (http_receiver.py, smtp_receiver.py), the real daemon with an
injectable clock (testing.clock_control, `clock set`), and the real
yjlinkctl. No test asserts a timing: every wait polls for its condition with
a generous deadline (YJ_TEST_WAIT_S, default 60 s), and "not delivered yet"
is shown by polling a bounded time (YJ_TEST_QUIET_S, default 3 s) after a
control command has shown the job queued.

- WebhookDigestWeekTest: a YJS with transport webhook gets its digest every
  day of a simulated week (also Saturday and Sunday, also an empty day), one
  signed POST each, with gapless windows, every event in exactly one digest,
  each audited.
- SmtpDigestDeadLetterTest: a relay that answers 552 to a large digest puts
  it in the dead-letter queue; the next day's digest still goes, with the
  window starting where the dead one's ended; `dlq retry` sends the same
  digest once the relay takes it.
- TransportCheckTest: `--check` refuses an unknown transport, a transport
  with no output adapter, and a digest rule for a YJS without digest_times.
- OpeningHoursTest: an L&D service's opening hours hold for a replay and for
  a hold release, not only at first routing.
- WebhookDnsHoldTest: a webhook whose host name never resolves holds up
  neither the loop nor a stop.

Times are in June 2026 (British Summer Time, UTC+1), so that local time and
UTC differ and a mix-up of the two shows.

Run with /usr/bin/python3 (Debian's python3-zmq and python3-aiosmtpd).
"""
import csv
import datetime
import email
import email.parser
import email.policy
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import zoneinfo

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

LONDON = zoneinfo.ZoneInfo("Europe/London")
WAIT = float(os.environ.get("YJ_TEST_WAIT_S", "60"))     # deadline of every wait for something to happen
QUIET = float(os.environ.get("YJ_TEST_QUIET_S", "3"))    # how long "nothing happens" is watched

PRIMARY = {"custody", "arrest", "voluntary_interview", "outcome", "other_area"}
SECTIONS = PRIMARY | {"still_in_custody", "new_child"}
COLUMNS = ["section", "seq", "feed", "source_id", "occurred_at", "person_id", "pnc_id", "given_name", "family_name",
           "date_of_birth", "home_la", "looked_after", "custody_record_id", "suite", "custody_status", "arrived_at",
           "overnight", "interview_status", "outcome_code", "outcome_name", "withheld"]

YJS_ALLOW = ('[ "source_id", "force", "occurred_at", "child.*", "offences.*", "markers.*", "custody.*", "arrest.*", '
             '"interview.*", "outcome.*" ]')

# The digest rules of conf/yjlinkd.conf (routing.md).
DIGEST_RULES = """
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true;
    recipient = "yjs:home"; mode = "digest"; legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "custody_out_of_area_digest"; feeds = [ "custody" ]; home_served = false;
    recipient = "yjs:suite"; mode = "digest"; section = "other_area";
    legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "arrest_digest"; feeds = [ "arrest" ]; recipient = "yjs:home"; mode = "digest";
    legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "voluntary_interview_digest"; feeds = [ "voluntary_interview" ]; recipient = "yjs:home"; mode = "digest";
    legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "outcome_digest"; feeds = [ "outcome" ]; recipient = "yjs:home"; mode = "digest";
    legal_basis = "Crime and Disorder Act 1998 s.115"; },
  { id = "first_contact"; first_contact = true; recipient = "yjs:home"; mode = "digest"; section = "new_child";
    legal_basis = "Crime and Disorder Act 1998 s.115"; }
"""


# --- time -------------------------------------------------------------------

def local(y, mo, d, hh, mm=0, ss=0):
    """Unix time of a Europe/London wall-clock time."""
    return int(datetime.datetime(y, mo, d, hh, mm, ss, tzinfo=LONDON).timestamp())


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_utc(text):
    """An RFC 3339 time in UTC ("Z" or "+00:00") as a unix time (float)."""
    if not isinstance(text, str) or not RFC3339.match(text):
        raise AssertionError("not an RFC 3339 time: %r" % (text,))
    dt = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.utcoffset() != datetime.timedelta(0):
        raise AssertionError("not in UTC: %r" % (text,))
    return dt.timestamp()


def parse_time(text):
    """An RFC 3339 time with any offset as a unix time (float)."""
    if not isinstance(text, str) or not RFC3339.match(text):
        raise AssertionError("not an RFC 3339 time: %r" % (text,))
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def digest_id(deployment, yjs, send_ts):
    """<deployment id>-digest-<yjs id without "yjs:">-<YYYYMMDDTHHMM local>."""
    lt = datetime.datetime.fromtimestamp(send_ts, LONDON)
    return "%s-digest-%s-%s" % (deployment, yjs[len("yjs:"):], lt.strftime("%Y%m%dT%H%M"))


# --- events -------------------------------------------------------------------

_n = [0]


def make_event(feed, t, person, home="E06000042", suite="TVP-MK", status="detained", record=None, arrived=None,
               status_at=None, markers=None, offences=None, summons=None, interview_status="held", outcome_code=8):
    """A valid message of `feed` that happened a minute before t (the daemon's clock when it is sent)."""
    _n[0] += 1
    ev = yjtest.custody_event(occurred_at=rfc(t - 60))
    ev["source_id"] = "dl-%d-%d" % (os.getpid(), _n[0])
    ev["child"]["person_id"] = person
    ev["child"]["date_of_birth"] = "2011-03-02"
    if home is None:
        del ev["child"]["home_la"]
    else:
        ev["child"]["home_la"] = home
    if markers:
        ev["markers"] = markers
    if offences:
        ev["offences"] = offences
    if feed == "custody":
        ev["custody"].update({"record_id": record or "CR-%s" % person, "suite": suite, "status": status,
                              "arrived_at": rfc(arrived if arrived is not None else t - 1800),
                              "status_at": rfc(status_at if status_at is not None else t - 60)})
        return ev
    del ev["custody"]
    if feed == "arrest":
        ev["arrest"] = {"arrest_id": "A-%d" % _n[0], "arrested_at": rfc(t - 60)}
        if summons is not None:
            ev["arrest"]["summons"] = summons
    elif feed == "voluntary_interview":
        ev["interview"] = {"interview_id": "I-%d" % _n[0], "status": interview_status, "at": rfc(t - 60)}
    elif feed == "outcome":
        ev["outcome"] = {"case_ref": "C-%d" % _n[0], "code": outcome_code, "decided_at": rfc(t - 60),
                         "offence_date": "2026-01-10"}
    else:
        raise ValueError(feed)
    return ev


# --- the common harness --------------------------------------------------------

class DeliveryBase(unittest.TestCase):
    """One daemon (and its receivers) per test, all cleaned up in tearDown."""

    deployment = "dl"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjdeliv-")
        self.daemon = None
        self.feed = None
        self.receivers = []

    def tearDown(self):
        try:
            if self.feed:
                self.feed.close()
        finally:
            try:
                if self.daemon:
                    self.daemon.cleanup()
            finally:
                for rx in self.receivers:
                    rx.stop()
                shutil.rmtree(self.dir, ignore_errors=True)

    # receivers, config, daemon

    def http(self):
        rx = HttpReceiver().start()
        self.receivers.append(rx)
        return rx

    def smtp(self, **kw):
        rx = SmtpReceiver(**kw).start()
        self.receivers.append(rx)
        return rx

    def write_config(self, text, name="yjlinkd.conf"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_secret(self, secret, name):
        """A secret file beside the config (mode 0600, as the daemon demands); returns its name."""
        fd = os.open(os.path.join(self.dir, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return name

    def start(self, config, clock_start, env=None, **sets):
        s = {"testing.clock_control": "true", "testing.clock_start": rfc(clock_start),
             "delivery.backoff_min_ms": "50", "delivery.backoff_max_ms": "500"}
        s.update(sets)
        self.daemon = yjtest.Daemon(workdir=self.dir, config=config, sets=s, env=env).start()
        self.feed = yjtest.Feed(self.daemon.ingest)
        return self.daemon

    # driving it

    def clock(self, ts):
        code, body = self.daemon.ctl_request("clock", {"set": rfc(ts)})
        self.assertEqual(code, 0, body)

    def send(self, feed, ev):
        r = self.feed.request(feed, ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def ctl_json(self, *args):
        code, out, err = self.daemon.ctl("--json", *args)
        return json.loads(out)

    def audit(self):
        code, body = self.daemon.ctl_request("audit", {"limit": 100000})
        self.assertEqual(code, 0, body)
        return body["records"]

    def dead_letters(self):
        code, body = self.daemon.ctl_request("dlq", {"sub": "list"})
        self.assertEqual(code, 0, body)
        return body["dead_letters"]

    def outbox_for(self, recipient):
        """The outbox's entry for recipient (pending, next_attempt, ...), or None."""
        code, body = self.daemon.ctl_request("outbox")
        self.assertEqual(code, 0, body)
        return body["recipients"].get(recipient)

    def wait_until(self, what, fn, timeout=WAIT):
        """Poll fn() until it returns something true; return that."""
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("%s: not after %.0f s\n--- yjlinkd log (tail) ---\n%s"
                          % (what, timeout, self.daemon.read_log()[-6000:] if self.daemon else ""))
            time.sleep(0.05)

    def assert_quiet(self, what, count_fn, before, seconds=QUIET):
        """count_fn() stays at `before` for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            now = count_fn()
            self.assertEqual(now, before, "%s: something arrived too early" % what)
            time.sleep(0.05)


# --- 1. a week of webhook digests ----------------------------------------------

WEBHOOK_DIGEST_CONFIG = """
deployment = { id = "wd"; name = "Webhook digest test"; force = "E23000029"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "webhook";
    webhook = { url = "%(url)s"; secret_file = "%(secret_file)s"; timeout_ms = 30000; };
    allow = %(allow)s; }
);
rules = (%(rules)s);
"""


class WebhookDigestWeekTest(DeliveryBase):

    SECRET = "week-digest-secret"

    def test_a_week_of_webhook_digests(self):
        rx = self.http()
        conf = self.write_config(WEBHOOK_DIGEST_CONFIG % {
            "url": rx.url, "secret_file": self.write_secret(self.SECRET, "yjs-mk.secret"), "allow": YJS_ALLOW,
            "rules": DIGEST_RULES})
        start = local(2026, 6, 7, 10, 0)            # Sunday morning, BST
        self.start(conf, start)

        # The digests of Monday 8 to Sunday 14 June, 07:30 BST (06:30Z), and what each must hold:
        # the events sent since the previous digest. Wednesday's window is empty; every custody record
        # is closed before it, so nothing is "still in custody" then either.
        def D(day):
            return datetime.date(2026, 6, day)

        plan = {
            D(8): [  # from the start to Monday 07:30
                (local(2026, 6, 7, 14, 0), "custody", dict(person="P-A", record="R-A", status="detained")),
                (local(2026, 6, 7, 16, 0), "arrest", dict(person="P-B")),
                (local(2026, 6, 7, 21, 0), "custody", dict(person="P-C", home="E09000007", status="released_bail")),
            ],
            D(9): [
                (local(2026, 6, 8, 10, 0), "custody", dict(person="P-A", record="R-A", status="released_bail",
                                                            arrived=local(2026, 6, 7, 13, 30))),
                (local(2026, 6, 8, 15, 0), "voluntary_interview", dict(person="P-D")),
                (local(2026, 6, 8, 23, 0), "outcome", dict(person="P-B")),
            ],
            D(10): [],
            D(11): [
                (local(2026, 6, 10, 12, 0), "custody", dict(person="P-E", status="released_nfa")),
                (local(2026, 6, 10, 12, 5), "custody", dict(person="P-F", status="released_under_investigation")),
                (local(2026, 6, 10, 18, 0), "arrest", dict(person="P-E", summons=True)),
            ],
            D(12): [
                (local(2026, 6, 11, 9, 0), "outcome", dict(person="P-F", outcome_code=22)),
                (local(2026, 6, 11, 14, 0), "custody", dict(person="P-G", status="charged_bailed")),
            ],
            D(13): [  # Friday night into Saturday morning
                (local(2026, 6, 12, 22, 0), "custody", dict(person="P-H", record="R-H", status="detained")),
                (local(2026, 6, 13, 6, 0), "custody", dict(person="P-H", record="R-H", status="released_bail",
                                                            arrived=local(2026, 6, 12, 21, 30))),
            ],
            D(14): [  # Saturday
                (local(2026, 6, 13, 11, 0), "arrest", dict(person="P-I")),
                (local(2026, 6, 13, 19, 0), "voluntary_interview", dict(person="P-I")),
                (local(2026, 6, 13, 23, 50), "custody", dict(person="P-J", status="released_nfa")),
            ],
        }
        self.assertEqual({d.strftime("%a") for d in plan}, {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"})

        expected = {}        # digest id -> the seqs it must hold in its primary sections
        send_time = {}       # digest id -> its send instant
        dates = {}           # digest id -> its local date
        all_seqs = []
        for day in sorted(plan):
            did = digest_id("wd", "yjs:mk", local(day.year, day.month, day.day, 7, 30))
            expected[did] = set()
            for t, feed, kw in plan[day]:
                self.clock(t)
                seq = self.send(feed, make_event(feed, t, **kw))
                expected[did].add(seq)
                all_seqs.append(seq)
            send_time[did] = local(day.year, day.month, day.day, 7, 30)
            dates[did] = day.isoformat()
            # A minute past the send time: that digest goes, and arrives before the next events are sent.
            self.clock(send_time[did] + 60)
            self.wait_until("digest %s by webhook" % did,
                            lambda: [r for r in rx.snapshot() if HttpReceiver.header(r, "X-Yjlink-Digest-Id") == did])

        # Nothing more comes (each digest is ONE POST).
        time.sleep(QUIET)
        reqs = rx.snapshot()
        ids = [HttpReceiver.header(r, "X-Yjlink-Digest-Id") for r in reqs]
        self.assertEqual(sorted(ids), sorted(expected), "one POST per digest, and nothing else")

        digests = []
        for req in reqs:
            did = HttpReceiver.header(req, "X-Yjlink-Digest-Id")
            with self.subTest(digest=did):
                self.assertEqual(req["method"], "POST")
                self.assertEqual(HttpReceiver.header(req, "Content-Type"), "application/json")
                self.assertTrue(rx.verify_signature(self.SECRET, req), "X-Yjlink-Signature of %s" % did)
                body = json.loads(req["body"])
                self.assertEqual(body["digest_id"], did)
                self.assertEqual(body["recipient"], "yjs:mk")
                self.assertEqual(body["date"], dates[did])
                # The window, in the header and in the body alike, ends at the send time.
                win = HttpReceiver.header(req, "X-Yjlink-Window")
                self.assertIsNotNone(win, "X-Yjlink-Window")
                w_from, w_to = win.split("/")
                self.assertEqual(body["window"], {"from": w_from, "to": w_to})
                f, t = parse_utc(w_from), parse_utc(w_to)
                self.assertLess(f, t)
                self.assertEqual(t, send_time[did], "window of %s ends at its send time" % did)
                # Rows: one object per CSV row, keyed by the CSV column names, values as strings.
                rows = body["rows"]
                self.assertIsInstance(rows, list)
                by_section = {}
                for row in rows:
                    self.assertIsInstance(row, dict)
                    for col in COLUMNS:
                        self.assertIn(col, row, "column %s" % col)
                    for k, v in row.items():
                        self.assertIsInstance(v, str, "rows[].%s is a string" % k)
                    self.assertIn(row["section"], SECTIONS)
                    by_section.setdefault(row["section"], []).append(int(row["seq"]))
                for section, seqs in by_section.items():
                    self.assertEqual(seqs, sorted(seqs), "section %s in seq order" % section)
                primary = [int(r["seq"]) for r in rows if r["section"] in PRIMARY]
                self.assertEqual(len(primary), len(set(primary)), "an event twice in one digest's primary rows")
                self.assertEqual(set(primary), expected[did], "primary rows of %s" % did)
                # The summary counts, as the email's subject and text do.
                summary = body["summary"]
                self.assertIsInstance(summary, dict)
                self.assertIsInstance(summary["children"], int)
                self.assertIsInstance(summary["events"], int)
                self.assertEqual(summary["events"], len(primary))
                self.assertEqual(summary["children"], len({r["person_id"] for r in rows}))
                if not expected[did]:
                    self.assertEqual(rows, [], "an empty window sends a digest with no rows")
                    self.assertEqual(summary["children"], 0)
                digests.append((f, t, did, set(primary)))

        # Gapless: each window starts where the previous one ended.
        digests.sort()
        for a, b in zip(digests, digests[1:]):
            self.assertEqual(b[0], a[1], "window of %s starts where %s's ended" % (b[2], a[2]))
        # Every event sent in exactly one digest's primary section.
        seen = {}
        for f, t, did, primary in digests:
            for seq in primary:
                self.assertNotIn(seq, seen, "seq %d in %s and %s" % (seq, seen.get(seq), did))
                seen[seq] = did
        self.assertEqual(sorted(seen), sorted(all_seqs))
        self.assertEqual([d[2] for d in digests if not d[3]], [digest_id("wd", "yjs:mk", local(2026, 6, 10, 7, 30))])

        # Each digest is a disclosure in the audit.
        def audited():
            recs = [r for r in self.audit() if r.get("rule") == "daily_digest" and r.get("action") == "disclosure"]
            return {r.get("notification_id") for r in recs} >= set(expected) and recs
        recs = self.wait_until("a daily_digest disclosure audited for each digest", audited)
        for did in expected:
            mine = [r for r in recs if r.get("notification_id") == did]
            self.assertEqual(len(mine), 1, "audit records of %s" % did)
            self.assertEqual(mine[0]["recipient"], "yjs:mk")


# --- 2. a relay that refuses a large digest -----------------------------------------

EMAIL_DIGEST_CONFIG = """
deployment = { id = "dq"; name = "Dead letter digest test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = %(allow)s; }
);
rules = (%(rules)s);
"""

BIG_EVENTS = 300            # a digest of these is well over 300 KB (about 3.5 KB an event)
SIZE_LIMIT = 64 * 1024      # the relay's limit: an empty or one-event digest is under 20 KB


def mail_digest_id(data):
    """The X-Yjlink-Digest-Id of an email as received (headers only: digests can be large)."""
    did = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(data)["X-Yjlink-Digest-Id"]
    return str(did) if did else None


def mail_digest(data):
    """(digest id, (from, to), primary seqs, all rows) of a digest email as received."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    did = msg["X-Yjlink-Digest-Id"]
    win = msg["X-Yjlink-Window"]
    rows = []
    for part in msg.walk():
        if part.get_content_type() == "text/csv":
            rows = list(csv.DictReader(io.StringIO(part.get_content())))
    primary = sorted(int(r["seq"]) for r in rows if r["section"] in PRIMARY)
    return str(did) if did else None, tuple(str(win).split("/")) if win else None, primary, rows


class SmtpDigestDeadLetterTest(DeliveryBase):

    def test_refused_digest_is_dead_lettered_and_retried(self):
        smtp = self.smtp()
        conf = self.write_config(EMAIL_DIGEST_CONFIG % {"port": smtp.port, "allow": YJS_ALLOW, "rules": DIGEST_RULES})
        t0 = local(2026, 6, 8, 9, 0)                 # Monday, BST
        self.start(conf, t0)
        big_id = digest_id("dq", "yjs:mk", local(2026, 6, 9, 7, 30))
        small_id = digest_id("dq", "yjs:mk", local(2026, 6, 10, 7, 30))

        def received(did):
            return [m for m in list(smtp.messages) if mail_digest_id(m["data"]) == did]

        # Monday: a busy day. The records are all closed, so none of them is "still in custody" later.
        t = local(2026, 6, 8, 10, 0)
        self.clock(t)
        evs = [make_event("custody", t, person="P-BIG-%03d" % i, status="released_bail",
                          offences=[{"code": "TH68010", "description": "Theft from a shop"}]) for i in range(BIG_EVENTS)]
        for ev in evs:
            self.feed.send("custody", ev)
        big_seqs = []
        for _ in evs:
            r = self.feed.recv(timeout_ms=int(WAIT * 1000))
            self.assertEqual(r[1], b"OK", r)
            big_seqs.append(int(r[3]))

        # The relay takes nothing over SIZE_LIMIT bytes: Tuesday's digest is refused with 552.
        smtp.max_message_bytes = SIZE_LIMIT
        self.clock(local(2026, 6, 9, 7, 31))

        def dead():
            return [d for d in self.dead_letters() if d.get("digest_id") == big_id]
        entry = self.wait_until("digest %s in the dead-letter queue" % big_id, dead)
        self.assertEqual(len(entry), 1, entry)
        entry = entry[0]
        self.assertEqual(entry["kind"], "daily_digest")
        self.assertEqual(entry["recipient"], "yjs:mk")
        self.assertIn("552", entry["last_error"])
        refused = [m for m in list(smtp.refused) if mail_digest_id(m["data"]) == big_id]
        self.assertTrue(refused, "the relay never saw %s" % big_id)
        self.assertGreater(len(refused[0]["data"]), SIZE_LIMIT)
        _, big_window, refused_primary, _ = mail_digest(refused[0]["data"])
        self.assertEqual(refused_primary, sorted(big_seqs))
        self.assertEqual(parse_utc(big_window[1]), local(2026, 6, 9, 7, 30))
        self.assertEqual(received(big_id), [])
        # yjlinkctl shows the same dead letter.
        listed = [d for d in self.ctl_json("dlq", "list")["dead_letters"] if d.get("digest_id") == big_id]
        self.assertEqual([d["id"] for d in listed], [entry["id"]])
        # Nothing was disclosed, so nothing is audited as a disclosure.
        self.assertEqual([r for r in self.audit() if r.get("notification_id") == big_id
                          and r.get("action") == "disclosure"], [])

        # Tuesday: one event. Wednesday's digest is small, goes through the same relay and starts
        # where the dead-lettered one ended.
        t = local(2026, 6, 9, 12, 0)
        self.clock(t)
        small_seq = self.send("custody", make_event("custody", t, person="P-SMALL", status="released_nfa"))
        self.clock(local(2026, 6, 10, 7, 31))
        msgs = self.wait_until("digest %s by email" % small_id, lambda: received(small_id))
        self.assertLessEqual(len(msgs[0]["data"]), SIZE_LIMIT)
        _, small_window, small_primary, _ = mail_digest(msgs[0]["data"])
        self.assertEqual(parse_utc(small_window[0]), parse_utc(big_window[1]),
                         "the next window starts where the dead-lettered one ended")
        self.assertEqual(parse_utc(small_window[1]), local(2026, 6, 10, 7, 30))
        self.assertEqual(small_primary, [small_seq])

        # The relay is fixed; the operator retries the dead letter: the same digest arrives.
        smtp.max_message_bytes = None
        self.daemon.ctl("dlq", "retry", entry["id"])
        msgs = self.wait_until("digest %s after dlq retry" % big_id, lambda: received(big_id))
        did, window, primary, _ = mail_digest(msgs[0]["data"])
        self.assertEqual(did, big_id)
        self.assertEqual(window, big_window)
        self.assertEqual(primary, sorted(big_seqs))
        self.wait_until("%s out of the dead-letter queue" % big_id, lambda: not dead())
        self.wait_until("%s audited as a disclosure" % big_id,
                        lambda: [r for r in self.audit() if r.get("notification_id") == big_id
                                 and r.get("rule") == "daily_digest" and r.get("action") == "disclosure"])
        time.sleep(QUIET)
        self.assertEqual(len(received(big_id)), 1)
        self.assertEqual(len(received(small_id)), 1)


# --- 3. --check: every transport has an adapter, every digest a time -------------------

CHECK_CONFIG = """# transport checks (interfaces.md section 3)
deployment = { id = "ck"; name = "Check test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:2525"; from = "yjlink@test.example"; starttls = "off"; };

recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ]; %(digest_times)s transport = "email"; email = [ "yjs@mk.example" ]; allow = [ "source_id", "child.*", "custody.*" ]; },
  { id = "children_services:E06000042"; kind = "children_services"; name = "Milton Keynes Children's Services"; local_authority = "E06000042"; %(transport)s allow = [ "child.person_id", "custody.status" ]; }
);

rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true;
    recipient = "yjs:home"; mode = "digest"; },
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate"; }
);
"""

GOOD_TIMES = 'digest_times = [ "07:30" ];'
GOOD_TRANSPORT = ('transport = "webhook"; webhook = { url = "http://127.0.0.1:9/children-services"; '
                  'secret = "check-secret"; };')


class TransportCheckTest(unittest.TestCase):

    def check(self, **subst):
        """(exit code, output with the file's path replaced by F, the config text)."""
        values = {"digest_times": GOOD_TIMES, "transport": GOOD_TRANSPORT}
        values.update(subst)
        text = CHECK_CONFIG % values
        with tempfile.TemporaryDirectory(prefix="yjcheck-") as d:
            path = os.path.join(d, "y.conf")
            with open(path, "w") as f:
                f.write(text)
            p = subprocess.run([yjtest.YJLINKD, "--config", path, "--check"], capture_output=True, text=True,
                               timeout=60)
        return p.returncode, (p.stderr + p.stdout).replace(path, "F"), text

    @staticmethod
    def line_of(text, needle):
        lines = [i + 1 for i, l in enumerate(text.splitlines()) if needle in l]
        assert len(lines) == 1, (needle, lines)
        return lines[0]

    def assert_refused_at(self, code, out, line, phrase):
        self.assertEqual(code, 1, out)
        hits = [l for l in out.splitlines() if l.startswith("F:%d: " % line) and phrase in l.lower()]
        self.assertTrue(hits, "want a line 'F:%d: ...%s...' in:\n%s" % (line, phrase, out))

    def test_fixed_config_is_valid(self):
        code, out, _ = self.check()
        self.assertEqual(code, 0, out)

    def test_unknown_transport(self):
        code, out, text = self.check(transport='transport = "carrier_pigeon";')
        self.assert_refused_at(code, out, self.line_of(text, '"children_services:E06000042"; kind'),
                               "unknown transport")

    def test_transport_without_output_adapter(self):
        # Each transport the contract names either has an adapter in this build (then --check never says
        # it has none) or is refused at the recipient's line; never unknown, never silently accepted.
        for transport in ("email", "webhook", "zmq", "peer"):
            code, out, text = self.check(transport='transport = "%s";' % transport)
            line = self.line_of(text, '"children_services:E06000042"; kind')
            self.assertNotIn("unknown transport", out.lower(), transport)
            if "no output adapter" in out.lower():
                self.assert_refused_at(code, out, line, "no output adapter")

    def test_digest_rule_for_yjs_without_digest_times(self):
        code, out, text = self.check(digest_times="")
        self.assert_refused_at(code, out, self.line_of(text, '{ id = "yjs:mk"; kind'), "digest_times")


# --- 4. opening hours for replays and hold releases ---------------------------------

# The L&D service and its rule, as in conf/yjlinkd.conf, with this test's webhook.
LD_CONFIG = """
deployment = { id = "oh"; name = "Opening hours test"; force = "E23000029"; };
recipients = (
  { id = "liaison_diversion:tvp"; kind = "liaison_diversion"; name = "Thames Valley Liaison and Diversion";
    suites = [ "TVP-MK", "TVP-AYL", "TVP-HW", "TVP-ABG", "TVP-BAN", "TVP-LV", "TVP-RDG", "TVP-SLO", "TVP-NBY", "TVP-MHD" ];
    hours = { mon = "08:00-20:00"; tue = "08:00-20:00"; wed = "08:00-20:00"; thu = "08:00-20:00";
              fri = "08:00-20:00"; sat = "09:00-17:00"; sun = "09:00-17:00"; };
    transport = "webhook";
    webhook = { url = "%(url)s"; secret_file = "%(secret_file)s"; timeout_ms = 30000; };
    allow = [ "occurred_at", "child.person_id", "child.given_name", "child.family_name", "child.date_of_birth",
              "child.gender", "child.ethnicity", "child.home_la", "child.looked_after",
              "custody.record_id", "custody.suite", "custody.arrived_at", "custody.status", "custody.status_at",
              "custody.appropriate_adult.*" ]; }
);
rules = (
  { id = "liaison_diversion"; feeds = [ "custody" ]; custody_status = [ "detained" ];
    recipient = "liaison_diversion:suite"; mode = "immediate";
    # Two days, not 12 hours: these tests release holds and replay a day
    # later to show the hours apply (the stale guard has its own tests).
    max_age_s = 172800;
    legal_basis = "Crime and Disorder Act 1998 s.115; NHS England Liaison and Diversion service specification"; }
);
"""

LD = "liaison_diversion:tvp"


class OpeningHoursTest(DeliveryBase):

    SECRET = "opening-hours-secret"

    def setUp(self):
        super().setUp()
        self.rx = self.http()
        self.conf = self.write_config(LD_CONFIG % {"url": self.rx.url,
                                                   "secret_file": self.write_secret(self.SECRET, "ld.secret")})

    def bodies(self):
        return [json.loads(r["body"]) for r in self.rx.snapshot()]

    def count(self):
        return len(self.rx.snapshot())

    def wait_count(self, n, what):
        self.wait_until(what, lambda: self.count() >= n)
        return self.rx.snapshot()

    def assert_waits_for(self, opening, pending, what):
        """Just after the command that queued them was answered: the L&D has `pending` jobs queued
        for `opening`; nothing reaches it now, nor a minute before the opening. Then the clock goes
        to a minute after the opening. Returns how many requests had arrived before."""
        queued = self.outbox_for(LD)
        self.assertIsNotNone(queued, "%s: nothing queued for %s (delivered already?)" % (what, LD))
        self.assertEqual(queued["pending"], pending, queued)
        self.assertEqual(parse_time(queued["next_attempt"]), opening, "next attempt of %s" % what)
        before = self.count()
        self.assert_quiet("%s while closed" % what, self.count, before)
        self.clock(opening - 60)
        self.assert_quiet("%s a minute before opening" % what, self.count, before)
        self.clock(opening + 60)
        return before

    def wait_delivered(self, ids, what):
        """Wait until the deliveries of ids are committed: audited, and out of the outbox."""
        self.wait_until("%s audited" % what, lambda: set(ids) <= {
            r.get("notification_id") for r in self.audit() if r.get("action") == "disclosure"})
        self.wait_until("%s out of the outbox" % what, lambda: self.outbox_for(LD) is None)

    def check_request(self, req):
        self.assertEqual(req["method"], "POST")
        self.assertEqual(HttpReceiver.header(req, "Content-Type"), "application/json")
        self.assertTrue(self.rx.verify_signature(self.SECRET, req))
        body = json.loads(req["body"])
        self.assertEqual(HttpReceiver.header(req, "X-Yjlink-Notification-Id"), body["notification_id"])
        self.assertEqual(body["recipient"], LD)
        return body

    def test_replay_waits_for_opening(self):
        # Monday 18:00 BST: open (08:00-20:00). Three children detained at 19:00 are told at once.
        self.start(self.conf, local(2026, 6, 8, 18, 0))
        t = local(2026, 6, 8, 19, 0)
        self.clock(t)
        seqs = [self.send("custody", make_event("custody", t, person="P-R%d" % i, status="detained"))
                for i in range(3)]
        first = self.wait_count(3, "first notices, in hours")
        first_ids = set()
        for req in first:
            body = self.check_request(req)
            self.assertEqual(body["kind"], "liaison_diversion")
            self.assertFalse(body.get("out_of_hours"), "sent in hours")
            first_ids.add(body["notification_id"])
        self.assertEqual({b["event"]["seq"] for b in self.bodies()}, set(seqs))
        self.wait_delivered(first_ids, "first notices")

        # Tuesday 02:00 BST: closed. A replay queues new notifications that wait for 08:00 BST.
        self.clock(local(2026, 6, 9, 2, 0))
        out = self.ctl_json("replay", "--since", rfc(local(2026, 6, 8, 18, 30)), "--rule", "liaison_diversion",
                            "--reason", "integration test: the referral was lost")
        self.assertEqual(out["notifications"], 3)
        opening = local(2026, 6, 9, 8, 0)
        before = self.assert_waits_for(opening, 3, "replayed notifications")
        reqs = self.wait_count(before + 3, "replayed notifications after 08:00")
        time.sleep(0.5)
        reqs = self.rx.snapshot()
        self.assertEqual(len(reqs), before + 3, "exactly the three replayed notifications")
        new = [self.check_request(r) for r in reqs[before:]]
        for body in new:
            self.assertEqual(body["kind"], "liaison_diversion")
            self.assertIs(body.get("out_of_hours"), True, body)
            self.assertNotIn(body["notification_id"], first_ids, "a replay makes new notification ids")
        self.assertEqual(sorted(b["event"]["seq"] for b in new), sorted(seqs))
        self.assertEqual(len({b["notification_id"] for b in new}), 3)

    def test_hold_release_waits_for_opening(self):
        # Tuesday 02:00 BST: a child under a live investigation is detained. The L&D (closed) hears at 08:00.
        self.start(self.conf, local(2026, 6, 9, 1, 50))
        t = local(2026, 6, 9, 2, 0)
        self.clock(t)
        seq = self.send("custody", make_event(
            "custody", t, person="P-HELD", status="detained",
            markers={"live_investigation": True, "officer_in_case": "DC Example"},
            offences=[{"code": "TH68010", "description": "Theft"}]))
        holds = self.ctl_json("holds", "list")["holds"]
        self.assertIn(seq, [h["seq"] for h in holds if not h["released"]])
        before = self.assert_waits_for(local(2026, 6, 9, 8, 0), 1, "first notice of a held event")
        reqs = self.wait_count(before + 1, "first notice after 08:00")
        body = self.check_request(reqs[before])
        self.assertEqual(body["kind"], "liaison_diversion")
        self.assertEqual(body["event"]["seq"], seq)
        self.assertIs(body.get("out_of_hours"), True, body)
        self.assertTrue(body.get("withheld"), body)
        first_id = body["notification_id"]
        # Its delivery is committed (the L&D "already had the event") before the hold is released.
        self.wait_delivered([first_id], "first notice")

        # Wednesday 02:00 BST: the officer in the case releases the hold. The L&D hears at 08:00 again.
        self.clock(local(2026, 6, 10, 2, 0))
        out = self.ctl_json("holds", "release", str(seq), "--by", "DC Example", "--reason", "charged, disclosure agreed")
        self.assertEqual(out["notifications"], 1)
        before = self.assert_waits_for(local(2026, 6, 10, 8, 0), 1, "hold_released notice")
        reqs = self.wait_count(before + 1, "hold_released notice after 08:00")
        time.sleep(0.5)
        reqs = self.rx.snapshot()
        self.assertEqual(len(reqs), before + 1)
        body = self.check_request(reqs[before])
        self.assertEqual(body["kind"], "hold_released")
        self.assertEqual(body["event"]["seq"], seq)
        self.assertIs(body.get("out_of_hours"), True, body)
        self.assertNotEqual(body["notification_id"], first_id)


# --- 5. a webhook whose name never resolves -------------------------------------

HOLD_NAME = "dns-blackhole.test"


class WebhookDnsHoldTest(DeliveryBase):
    """The L&D's webhook names a host whose DNS never answers (tests/tools/
    dns_hold.c, preloaded: getaddrinfo of that name blocks while a file
    exists). Each attempt times out (webhook.timeout_ms) while libcurl's
    resolver thread is still in getaddrinfo. Unless the transfer leaves that
    thread to finish alone (CURLOPT_QUICK_EXIT), ending the transfer joins
    it, on the loop, until the resolver gives up: nothing else is served, and
    a SIGTERM is not read (docs/blocking.md). Here the daemon goes on: the
    control socket answers and the job is retried, again and again, while the
    first resolver is still stuck; and a SIGTERM ends it, status 0, with the
    job still in the outbox."""

    def test_unanswered_dns_holds_nothing_up(self):
        shim = os.path.join(yjtest.BUILD, "libdns_hold.so")
        self.assertTrue(os.path.exists(shim), shim)
        hold = os.path.join(self.dir, "dns.hold")
        open(hold, "w").close()
        self.addCleanup(lambda: os.path.exists(hold) and os.unlink(hold))
        asan = ":".join(o for o in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if o)
        conf = self.write_config(LD_CONFIG.replace("timeout_ms = 30000", "timeout_ms = 300") % {
            "url": "https://%s:8443/ld" % HOLD_NAME, "secret_file": self.write_secret("dns-secret", "ld.secret")})
        env = {"LD_PRELOAD": shim, "YJ_DNS_HOLD_NAME": HOLD_NAME, "YJ_DNS_HOLD_FILE": hold, "ASAN_OPTIONS": asan}
        t = local(2026, 6, 8, 10, 0)  # Monday 10:00 BST: the L&D is open
        self.start(conf, t, env=env)
        self.send("custody", make_event("custody", t, person="P-DNS", status="detained"))

        # Three attempts, each timed out while its name was still being resolved.
        def retried():
            job = self.outbox_for(LD)
            return job if job and job.get("attempts", 0) >= 3 else None
        job = self.wait_until("three attempts at the unresolvable webhook", retried)
        self.assertEqual(job["pending"], 1, job)
        self.assertIn("resolv", job["last_error"].lower(), job)
        self.assertTrue(os.path.exists(hold))  # every resolver is still stuck

        code = self.daemon.stop()
        self.assertEqual(code, 0, self.daemon.read_log()[-4000:])
        self.assertIn("stopped cleanly", self.daemon.read_log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
