"""yjlink-sim's situations of real feeds (tools/yjlink-sim.c, `--help`):
late messages, children turning 18 in custody, unknown dates of birth,
unknown looked-after status, serious-offence and live-investigation holds
with an officer in the case, quiet feeds, outcome codes that cannot apply
to a child, out-of-area children and looked-after children in another
authority's care.

Runs the real binary (`--stdout`, `--jsonl`) and parses what it writes:
proportions over a month of history within sensible bounds, the situations
line agreeing with the stream, byte-identical output for the same --seed
and --now, a quiet feed silent in its window, turning-18 records with a
status after the birthday. Against a real yjlinkd: everything the sim sends
is accepted (with --unknown-dob 0 while the daemon lacks apparent_age).
"""
import collections
import csv
import datetime
import json
import os
import re
import subprocess
import tempfile
import time
import unittest
import zoneinfo

import yjtest

LONDON = zoneinfo.ZoneInfo("Europe/London")
NOW = "2026-11-20T12:00:00Z"
FORCE = "E23000029"
OFFICERS = {"DC 4411 Patel", "DC 3702 Hughes", "DS 2265 Okafor", "DC 5138 Walsh", "DC 4876 Kowalski",
            "DS 1904 Reid", "DC 6020 Mensah", "DI 0817 Price"}
ADULT_CODES = {3, 6, 7, 11}
BODY = {"custody": "custody", "arrest": "arrest", "voluntary_interview": "interview", "outcome": "outcome"}
# The feed's own date the child's age is checked on (interfaces.md §2).
AGE_FIELD = {"custody": "arrived_at", "arrest": "arrested_at", "voluntary_interview": "at"}


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def local_date(s):
    return ts(s).astimezone(LONDON).date()


def sim(*args, check=True):
    """(stdout bytes, stderr text) of one run."""
    p = subprocess.run([yjtest.YJLINK_SIM] + list(args), capture_output=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError("yjlink-sim %s: exit %d\n%s" % (" ".join(args), p.returncode, p.stderr.decode()[-2000:]))
    return p.stdout, p.stderr.decode()


def situations(text):
    line = [ln for ln in text.splitlines() if ln.startswith("situations: ")]
    if len(line) != 1:
        raise AssertionError("no situations line in %r" % text[-500:])
    return {k: int(v) for k, v in (kv.split("=", 1) for kv in line[0].split()[1:])}


def stream(*args):
    """[(feed, event)] in the order written, and the situations counts."""
    out, err = sim("--stdout", *args)
    evs = []
    for line in out.decode("utf-8").splitlines():
        feed, payload = line.split("\t", 1)
        evs.append((feed, json.loads(payload)))
    return evs, situations(err)


def load_las():
    with open(os.path.join(yjtest.SOURCE, "conf", "ref", "local_authorities.csv"), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    upper = {r["code"] for r in rows if r["tier"] == "upper"}
    own = {r["code"] for r in rows if r["tier"] == "upper" and r["force"] == FORCE}
    return upper, own


def children_of(evs):
    """person_id -> list of child objects as sent."""
    out = collections.defaultdict(list)
    for _, e in evs:
        out[e["child"]["person_id"]].append(e["child"])
    return out


def share(n, d):
    return 100.0 * n / d if d else 0.0


class SimMonthTest(unittest.TestCase):
    """A month of Thames Valley history at 400 messages a day, default shares."""

    ARGS = ["--seed", "21", "--now", NOW, "--days", "30", "--per-day", "400"]

    @classmethod
    def setUpClass(cls):
        cls.evs, cls.st = stream(*cls.ARGS)
        cls.upper, cls.own = load_las()

    def test_every_message_is_well_formed(self):
        self.assertGreater(len(self.evs), 10000)
        self.assertEqual(self.st["messages"], len(self.evs))
        for feed, e in self.evs:
            self.assertIn(BODY[feed], e)
            ch = e["child"]
            # exactly one of date_of_birth and apparent_age
            self.assertNotEqual("date_of_birth" in ch, "apparent_age" in ch, ch)
            if "apparent_age" in ch:
                self.assertIsInstance(ch["apparent_age"], int)
                self.assertTrue(10 <= ch["apparent_age"] <= 17, ch)
                self.assertNotIn("pnc_id", ch)
            if ch.get("looked_after"):
                self.assertIn(ch["responsible_la"], self.upper)
            else:
                self.assertNotIn("responsible_la", ch)
            if "home_la" in ch:
                self.assertIn(ch["home_la"], self.upper)
            self.assertLessEqual(ts(e["occurred_at"]), ts(NOW))

    def test_late_messages(self):
        late, newest = 0, None
        for _, e in self.evs:
            t = ts(e["occurred_at"])
            if newest is not None and t < newest - datetime.timedelta(hours=1):
                late += 1
            newest = t if newest is None or t > newest else newest
        pct = share(late, len(self.evs))
        self.assertTrue(1.5 <= pct <= 5.0, "late messages %.2f%% (%d)" % (pct, late))
        self.assertLessEqual(abs(late - self.st["late"]), self.st["late"] // 10 + 2, (late, self.st["late"]))

    def test_unknown_dates_of_birth(self):
        kids = children_of(self.evs)
        nodob = {p for p, cs in kids.items() if "apparent_age" in cs[0]}
        for p in nodob:
            self.assertTrue(all("apparent_age" in c and "date_of_birth" not in c for c in kids[p]), p)
        pct = share(len(nodob), len(kids))
        self.assertTrue(1.5 <= pct <= 5.0, "children with apparent_age %.2f%%" % pct)
        self.assertEqual(len(nodob), self.st["unknown_dob_children"])
        self.assertEqual(len(kids), self.st["children"])

    def test_looked_after_unknown(self):
        kids = children_of(self.evs)
        not_lac = [cs for cs in kids.values() if not cs[0].get("looked_after")]
        unknown = [cs for cs in not_lac if "looked_after" not in cs[0]]
        for cs in unknown:
            self.assertTrue(all("looked_after" not in c and "responsible_la" not in c for c in cs))
        pct = share(len(unknown), len(not_lac))
        self.assertTrue(3.0 <= pct <= 8.0, "looked_after unknown %.2f%% of non-looked-after children" % pct)
        self.assertEqual(len(unknown), self.st["lac_unknown_children"])

    def test_holds_and_officers(self):
        records = {}
        for feed, e in self.evs:
            m = e.get("markers", {})
            if m.get("serious_offence") or m.get("live_investigation"):
                self.assertIn(m.get("officer_in_case"), OFFICERS, e["source_id"])
            elif "officer_in_case" in m:
                self.fail("officer_in_case without a hold: %s" % e["source_id"])
            if feed == "custody":
                records.setdefault(e["custody"]["record_id"], m)
        serious = [m for m in records.values() if m.get("serious_offence")]
        pct = share(len(serious), len(records))
        self.assertTrue(1.0 <= pct <= 3.5, "serious-offence custody records %.2f%%" % pct)
        self.assertTrue(any(m.get("mappa") for m in serious), "no serious-offence record is also MAPPA")
        live = sum(1 for _, e in self.evs if e.get("markers", {}).get("live_investigation"))
        pct = share(live, len(self.evs))
        self.assertTrue(1.0 <= pct <= 3.5, "live investigations %.2f%% of messages" % pct)
        self.assertEqual(live, self.st["live_investigation"])
        self.assertGreaterEqual(len({e["markers"]["officer_in_case"] for _, e in self.evs
                                     if "officer_in_case" in e.get("markers", {})}), 5)

    def test_outcome_codes_and_disposals(self):
        outs = [e["outcome"] for f, e in self.evs if f == "outcome"]
        adult = [o for o in outs if o["code"] in ADULT_CODES]
        pct = share(len(adult), len(outs))
        self.assertTrue(0.3 <= pct <= 2.5, "outcome codes that cannot apply to a child %.2f%%" % pct)
        self.assertEqual(len(adult), self.st["adult_outcome_code"])
        disp = collections.Counter(o["disposal"] for o in outs)
        for d in ("charge", "youth_caution", "youth_conditional_caution", "community_resolution", "nfa",
                  "outcome_22"):
            self.assertGreater(disp[d], 0, disp)
        self.assertTrue(all(o["code"] == 2 for o in outs if o["disposal"] in ("youth_caution",
                                                                             "youth_conditional_caution")))
        self.assertTrue(0.15 <= disp["youth_conditional_caution"] / (disp["youth_caution"] +
                                                                     disp["youth_conditional_caution"]) <= 0.6, disp)
        self.assertLess(share(disp["charge"], len(outs)), 45)

    def test_out_of_area_and_responsible_authorities(self):
        kids = children_of(self.evs)
        away = {cs[0]["home_la"] for cs in kids.values() if cs[0].get("home_la") and cs[0]["home_la"] not in self.own}
        self.assertGreaterEqual(len(away), 60, "only %d distinct out-of-area home authorities" % len(away))
        self.assertEqual(len(away), self.st["out_of_area_las"])
        self.assertTrue(any(la.startswith("W06") for la in away), away)
        self.assertTrue({la[:3] for la in away} >= {"E06", "E08", "E09", "E10"}, away)
        n_away = sum(1 for cs in kids.values() if cs[0].get("home_la") and cs[0]["home_la"] not in self.own)
        self.assertTrue(8 <= share(n_away, len(kids)) <= 25, share(n_away, len(kids)))
        lac = [cs[0] for cs in kids.values() if cs[0].get("looked_after")]
        other = [c for c in lac if c["responsible_la"] != c.get("home_la")]
        self.assertTrue(0.2 <= len(other) / len(lac) <= 0.8, (len(other), len(lac)))

    def test_turning_18_at_default_share(self):
        # 0.5% of 17-year-olds' custody records: rare, but counted right
        self.assertEqual(len(turning_18_records(self.evs)), self.st["turning_18_records"])


def turning_18_records(evs):
    """record_id -> (birthday, arrived date, [status dates]) of records in
    which the child turns 18 between arrived_at and a later status."""
    recs = collections.defaultdict(list)
    for feed, e in evs:
        if feed == "custody" and "date_of_birth" in e["child"]:
            recs[e["custody"]["record_id"]].append(e)
    out = {}
    for rid, es in recs.items():
        dob = datetime.date.fromisoformat(es[0]["child"]["date_of_birth"])
        try:
            bday = dob.replace(year=dob.year + 18)
        except ValueError:
            bday = datetime.date(dob.year + 18, 3, 1)
        arrived = local_date(es[0]["custody"]["arrived_at"])
        statuses = [local_date(e["custody"]["status_at"]) for e in es]
        if arrived < bday <= max(statuses):
            out[rid] = (bday, arrived, statuses, es)
    return out


class SimSituationsTest(unittest.TestCase):

    def test_same_seed_same_bytes(self):
        args = ["--seed", "77", "--now", NOW, "--days", "30", "--quiet-feed", "arrest:200:30", "--turning-18", "20"]
        a, ea = sim("--stdout", *args)
        b, eb = sim("--stdout", *args)
        self.assertEqual(a, b)
        self.assertEqual(situations(ea), situations(eb))
        c, _ = sim("--stdout", *(args[:1] + ["78"] + args[2:]))
        self.assertNotEqual(a, c)
        # --count cuts the stream, never changes a payload
        n, _ = sim("--stdout", "--count", "300", *args)
        self.assertEqual(n, b"".join(ln + b"\n" for ln in a.splitlines()[:300]))
        # --stats: the situations line on stdout, before the summary line
        with tempfile.TemporaryDirectory() as d:
            out, err = sim("--jsonl", os.path.join(d, "x.jsonl"), "--stats", *args)
            lines = out.decode().splitlines()
            self.assertEqual(situations(lines[0]), situations(ea))
            self.assertTrue(lines[-1].startswith("sent="), lines)
        # --jsonl writes the very same payloads
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "out.jsonl")
            sim("--jsonl", path, *args)
            with open(path, "rb") as f:
                self.assertEqual(f.read(), b"".join(ln.split(b"\t", 1)[1] + b"\n" for ln in a.splitlines()))
        # every share at 0 still gives a deterministic, plain stream
        off = ["--late", "0", "--turning-18", "0", "--unknown-dob", "0", "--lac-unknown", "0", "--serious", "0",
               "--live-investigation", "0", "--adult-outcome", "0"]
        x, ex = sim("--stdout", *(args + off))
        self.assertEqual(x, sim("--stdout", *(args + off))[0])
        st = situations(ex)
        for k in ("late", "turning_18_records", "unknown_dob_children", "lac_unknown_children", "custody_serious",
                  "live_investigation", "adult_outcome_code"):
            self.assertEqual(st[k], 0, k)

    def test_turning_18_in_custody(self):
        evs, st = stream("--seed", "5", "--now", NOW, "--days", "30", "--per-day", "200", "--turning-18", "25")
        recs = turning_18_records(evs)
        self.assertGreaterEqual(len(recs), 5)
        self.assertEqual(len(recs), st["turning_18_records"])
        for rid, (bday, arrived, statuses, es) in recs.items():
            # opened while 17 (the age rule for custody), a later status on or after the birthday
            self.assertEqual(es[0]["custody"]["status"], "detained")
            self.assertEqual(arrived, bday - datetime.timedelta(days=1))
            self.assertTrue(any(d >= bday for d in statuses[1:]), rid)
            self.assertTrue(all(e["custody"]["arrived_at"] == es[0]["custody"]["arrived_at"] for e in es))
        # ordinary children stay 10..17 on every feed's date
        for feed, e in evs:
            ch = e["child"]
            if "date_of_birth" not in ch or e.get("custody", {}).get("record_id") in recs:
                continue
            dob = datetime.date.fromisoformat(ch["date_of_birth"])
            body = e[BODY[feed]]
            on = local_date(body[AGE_FIELD[feed]]) if feed in AGE_FIELD else \
                datetime.date.fromisoformat(body["offence_date"]) if "offence_date" in body else \
                local_date(e["occurred_at"])
            age = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
            self.assertTrue(10 <= age <= 17, (e["source_id"], age))

    def test_quiet_feed(self):
        start = ts(NOW) - datetime.timedelta(days=30)
        ws, we = start + datetime.timedelta(hours=100), start + datetime.timedelta(hours=124)
        evs, st = stream("--seed", "9", "--now", NOW, "--days", "30", "--per-day", "300", "--late", "0",
                         "--quiet-feed", "custody:100:24", "--quiet-feed", "outcome:700:100")
        # the window in stream positions, from the other feeds' times
        first = next(i for i, (f, e) in enumerate(evs) if f != "custody" and ts(e["occurred_at"]) >= ws)
        last = max(i for i, (f, e) in enumerate(evs) if f != "custody" and ts(e["occurred_at"]) < we)
        self.assertGreater(last - first, 100)
        inside = [e["source_id"] for f, e in evs[first:last + 1] if f == "custody"]
        self.assertEqual(inside, [], "custody sent in its quiet window")
        # what happened meanwhile went out when the feed resumed, oldest first
        held = [(i, e) for i, (f, e) in enumerate(evs) if f == "custody" and ws <= ts(e["custody"]["status_at"]) < we]
        self.assertGreater(len(held), 20)
        self.assertTrue(all(i > last for i, _ in held))
        times = [ts(e["occurred_at"]) for _, e in held]
        self.assertEqual(times, sorted(times))
        self.assertEqual(st["quiet_held"], len(held))
        # a window reaching past --now: nothing of it is sent at all
        ows = start + datetime.timedelta(hours=700)
        self.assertEqual([e["source_id"] for f, e in evs if f == "outcome" and ts(e["occurred_at"]) >= ows], [])
        self.assertGreater(st["quiet_dropped"], 0)
        # the other feeds went on meanwhile
        self.assertTrue(any(f == "arrest" and ts(e["occurred_at"]) >= ows for f, e in evs))
        out, err = sim("--stdout", "--quiet-feed", "custody:1", check=False)
        self.assertIn("--quiet-feed", err)

    def test_live_mode_late_messages(self):
        # live: occurred_at = --now + i/rate, a late episode hours to days before that
        evs, st = stream("--seed", "4", "--now", NOW, "--rate", "2000", "--count", "4000", "--late", "10")
        now = ts(NOW)
        old = [e for _, e in evs if ts(e["occurred_at"]) < now - datetime.timedelta(hours=1)]
        self.assertTrue(3 <= share(len(old), len(evs)) <= 20, share(len(old), len(evs)))
        self.assertEqual(len(old), st["late"])
        for _, e in evs:
            if "custody" in e:
                self.assertLessEqual(ts(e["custody"]["arrived_at"]), ts(e["custody"]["status_at"]))


class SimDaemonTest(unittest.TestCase):
    """What the sim sends, as the real daemon answers it."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = yjtest.Daemon().start()
        cls.runs = 0

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()

    def send(self, *extra):
        SimDaemonTest.runs += 1
        acks = os.path.join(self.daemon.dir, "acks-%d" % self.runs)
        argv = [yjtest.YJLINK_SIM, "--endpoint", self.daemon.ingest, "--seed", str(30 + self.runs),
                "--id-prefix", "simtest-%d" % self.runs, "--now", yjtest.utc(time.time() - 600), "--days", "30",
                "--per-day", "150", "--acks", acks, "--quiet", "--timeout", "20"] + list(extra)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        replies = collections.Counter()
        with open(acks) as f:
            for line in f:
                status, rest = line.split(" ", 1)
                m = re.search(r'"error":\s*"([a-z_]+)".*?"field":\s*"([^"]*)"', rest) if status == "REJECT" else None
                replies[status if not m else "REJECT %s %s" % m.groups()] += 1
        return p, replies, situations(p.stderr)

    def test_every_default_message_is_accepted(self):
        # interfaces.md §2: apparent_age instead of a date of birth, custody
        # age-checked on custody.arrived_at (a child who turns 18 while held
        # keeps one record), looked_after absent as unknown: all taken.
        p, replies, st = self.send("--quiet-feed", "custody:300:8")
        self.assertEqual(p.returncode, 0, (p.stdout, p.stderr[-2000:], replies))
        self.assertEqual(set(replies), {"OK"}, replies)
        self.assertEqual(replies["OK"], st["messages"])
        for k in ("late", "adult_outcome_code", "lac_unknown_msgs", "custody_serious", "live_investigation",
                  "quiet_held", "out_of_area_las", "unknown_dob_msgs"):
            self.assertGreater(st[k], 0, k)

    def test_turning_18_accepted(self):
        p, replies, st = self.send("--turning-18", "40")
        self.assertGreater(st["turning_18_after_birthday"], 0)
        self.assertEqual(set(replies), {"OK"}, replies)


if __name__ == "__main__":
    unittest.main()
