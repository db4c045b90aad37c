"""The board report (interfaces.md §6 `report`, docs/report.md) against the
real daemon and the real yjlinkctl.

A deterministic history from the real simulator (`yjlink-sim --seed --now
--days --stdout`: the same seed and clock give byte-identical events) plus a
few hand-made cases (no ethnicity, no looked-after status, no gender, AA
times, a record opened before the period and updated in it) is sent over
YJL1 by this test, which keeps every event the daemon answered OK with its
seq. From exactly those events this file counts every figure again, in
Python, by the rules docs/report.md states, and checks:

- every figure, force-wide and for one YJS, and every breakdown cell, in the
  JSON: a shown value equals the independent count; a count under the
  threshold is suppressed; no set of cells that adds up to a shown total has
  exactly one cell suppressed (secondary suppression);
- no count under the threshold appears anywhere in the published JSON, CSV
  or HTML (the HTML's tables and its SVG labels);
- the CSV parses with Python's csv module, header dimension,group,figure,value,
  one row per figure and group, each equal to the JSON's;
- the HTML, loaded in headless Chromium (--dump-dom), has its SVG charts and
  every table has th headers and the JSON's numbers;
- the threshold is configurable (report.suppress_below) and bad arguments
  are usage errors (exit 2).
"""
import csv
import datetime
import html.parser
import io
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest
import zoneinfo

import yjtest

CHROMIUM = os.environ.get("YJ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LONDON = zoneinfo.ZoneInfo("Europe/London")
SEED = 15015
DAYS = 40
PER_DAY = 120
MK = "yjs:milton-keynes"
MK_LAS = {"E06000042"}

STATUSES = ["detained", "released_nfa", "released_bail", "released_under_investigation", "charged_bailed",
            "charged_remanded", "transferred_la_accommodation", "released_other"]
STATUS_FIG = ["still_detained", "released_nfa", "released_bail", "released_under_investigation", "charged_bailed",
              "charged_remanded", "transferred_la_accommodation", "released_other"]
DISPOSALS = ["charge", "youth_caution", "youth_conditional_caution", "community_resolution", "nfa", "outcome_21",
             "outcome_22", "other"]
STATS = {"time_in_custody_median_min", "time_in_custody_p90_min", "time_in_custody_longest_min",
         "aa_wait_median_min", "aa_wait_p90_min"}
SHARES = {"looked_after_share_pct"}
SPEC_FIGURES = ["detentions", "children_detained", "repeat_detentions", "held_overnight",
                "released_under_investigation", "released_nfa", "released_bail", "charged_bailed",
                "charged_remanded", "pace_transfers_requested", "pace_transfers_made", "time_in_custody_median_min",
                "time_in_custody_p90_min", "aa_wait_median_min", "arrests", "voluntary_interviews", "first_contacts"]


def to_us(ts):
    return int(round(datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000000))


def local_date(us):
    return datetime.datetime.fromtimestamp(us // 1000000, LONDON).date()


def local_midnight(d):
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=LONDON).timestamp()) * 1000000


def local_at(d, minutes):
    return int(datetime.datetime(d.year, d.month, d.day, minutes // 60, minutes % 60, tzinfo=LONDON).timestamp()) * 1000000


def ethnicity_codes():
    with open(os.path.join(yjtest.SOURCE, "conf", "ref", "ethnicity.csv"), encoding="utf-8") as f:
        return [row["code"] for row in csv.DictReader(f)]


def groups():
    return {"age": [str(a) for a in range(10, 18)] + ["unknown"],
            "gender": ["male", "female", "other", "unknown"],
            "ethnicity": ethnicity_codes() + ["unknown"],
            "looked_after": ["yes", "no", "unknown"]}


def age_at(ev):
    """The instant the child's age is judged at (as the normaliser, per feed)."""
    for body, field in (("custody", "arrived_at"), ("arrest", "arrested_at"), ("interview", "at")):
        if body in ev and field in ev[body]:
            return local_date(to_us(ev[body][field]))
    if "outcome" in ev and "offence_date" in ev["outcome"]:
        return datetime.date.fromisoformat(ev["outcome"]["offence_date"])
    return local_date(to_us(ev["occurred_at"]))


def profile(ev):
    ch = ev["child"]
    g = {}
    age = "unknown"
    if "date_of_birth" in ch:
        dob = datetime.date.fromisoformat(ch["date_of_birth"])
        on = age_at(ev)
        a = on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
        if 10 <= a <= 17:
            age = str(a)
    elif "apparent_age" in ch:
        # interfaces.md §2: the age the child appeared to be, when the date of birth is not known.
        age = str(ch["apparent_age"])
    g["age"] = age
    g["gender"] = ch.get("gender", "unknown") if ch.get("gender") in ("male", "female", "other") else "unknown"
    eth = ch.get("ethnicity")
    g["ethnicity"] = eth if eth in ethnicity_codes() else "unknown"
    g["looked_after"] = "unknown" if "looked_after" not in ch else ("yes" if ch["looked_after"] else "no")
    return g


def overnight(a_us, b_us):
    """Held 4 hours or more between 00:00 and 08:00 local of one night."""
    if b_us <= a_us:
        return False
    day0 = local_date(a_us)
    for k in range(-1, 60):
        d = day0 + datetime.timedelta(days=k)
        start, end = local_at(d, 0), local_at(d, 8 * 60)
        if start >= b_us:
            break
        if min(b_us, end) - max(a_us, start) >= 4 * 3600 * 1000000:
            return True
    return False


def rank(v, p):
    k = (p * len(v) + 99) // 100
    return v[max(k, 1) - 1]


def expected(stored, date_from, date_to, las=None):
    """Every figure by group, counted from the stored events [(seq, feed, event)]."""
    lo = local_midnight(date_from)
    hi = local_midnight(date_to + datetime.timedelta(days=1))
    first_seq = {}
    for seq, feed, ev in stored:
        cid = "%s/%s" % (ev["force"], ev["child"]["person_id"])
        first_seq[cid] = min(first_seq.get(cid, seq), seq)
    inp = sorted([(to_us(ev["occurred_at"]), seq, feed, ev) for seq, feed, ev in stored
                  if lo <= to_us(ev["occurred_at"]) < hi], key=lambda x: (x[0], x[1]))
    children, records, arrests, interviews, outcomes = {}, {}, {}, {}, {}
    for occ, seq, feed, ev in inp:
        cid = "%s/%s" % (ev["force"], ev["child"]["person_id"])
        c = children.setdefault(cid, {"min_seq": seq})
        c["min_seq"] = min(c["min_seq"], seq)
        c["g"] = profile(ev)
        c["home"] = las is None or ev["child"].get("home_la") in las
        ch = ev["child"]
        c["nodob"] = "date_of_birth" not in ch
        c["eth_ns"] = ch.get("ethnicity") in (None, "NS")
        c["lac_unknown"] = "looked_after" not in ch
        f = ev["force"]
        if "custody" in ev:
            cu = ev["custody"]
            r = records.setdefault("%s/%s" % (f, cu["record_id"]), {"reached": set(), "aa": None})
            r["child"] = cid
            r["arrived"] = to_us(cu["arrived_at"])
            r["status"] = cu["status"]
            r["status_at"] = to_us(cu["status_at"])
            r["reached"].add(cu["status"])
            aa = cu.get("appropriate_adult", {})
            if "called_at" in aa and "arrived_at" in aa:
                r["aa"] = (to_us(aa["called_at"]), to_us(aa["arrived_at"]))
        elif "arrest" in ev:
            arrests["%s/%s" % (f, ev["arrest"]["arrest_id"])] = (cid, bool(ev["arrest"].get("summons")))
        elif "interview" in ev:
            interviews["%s/%s" % (f, ev["interview"]["interview_id"])] = (cid, ev["interview"]["status"])
        elif "outcome" in ev:
            outcomes["%s/%s" % (f, ev["outcome"]["case_ref"])] = (cid, ev["outcome"]["code"],
                                                                   ev["outcome"].get("disposal"))
    gs = groups()
    keys = [("all", "all")] + [(d, g) for d in gs for g in gs[d]]
    cells = {k: {} for k in keys}

    def inc(fig, cid, by=1):
        g = children[cid]["g"]
        for k in [("all", "all")] + [(d, g[d]) for d in gs]:
            cells[k][fig] = cells[k].get(fig, 0) + by

    codes = sorted({code for cid, code, disp in outcomes.values() if children[cid]["home"]})
    base = ["detentions", "children_detained", "repeat_detentions", "held_overnight", "released_under_investigation",
            "released_nfa", "released_bail", "charged_bailed", "charged_remanded", "transferred_la_accommodation",
            "released_other", "still_detained", "charged", "pace_transfers_requested", "pace_transfers_made",
            "arrests", "summonses", "voluntary_interviews", "outcomes"] + ["disposal_" + d for d in DISPOSALS] + [
            "disposal_not_given", "first_contacts", "children", "children_unknown_dob", "dq_ethnicity_not_stated",
            "dq_looked_after_unknown", "dq_aa_times_missing", "dq_open_at_period_end"]
    counts = base + ["outcome_%d" % c for c in codes]
    for k in keys:
        for fig in counts:
            cells[k][fig] = 0
    det = {}
    tic, aaw = [], []
    weeks = {}
    for key, r in records.items():
        cid = r["child"]
        if not (lo <= r["arrived"] < hi) or not children[cid]["home"]:
            continue
        det[cid] = det.get(cid, 0) + 1
        inc("detentions", cid)
        inc(STATUS_FIG[STATUSES.index(r["status"])], cid)
        if r["status"] in ("charged_bailed", "charged_remanded"):
            inc("charged", cid)
        if "charged_remanded" in r["reached"]:
            inc("pace_transfers_requested", cid)
        if "transferred_la_accommodation" in r["reached"]:
            inc("pace_transfers_made", cid)
        released = r["status"] != "detained"
        until = r["status_at"] if released else hi
        if overnight(r["arrived"], until):
            inc("held_overnight", cid)
        if released and r["status_at"] >= r["arrived"]:
            tic.append(((r["status_at"] - r["arrived"]) // 60000000, cid))
        elif not released:
            inc("dq_open_at_period_end", cid)
        if r["aa"] and r["aa"][1] >= r["aa"][0]:
            aaw.append(((r["aa"][1] - r["aa"][0]) // 60000000, cid))
        else:
            inc("dq_aa_times_missing", cid)
        d = local_date(r["arrived"])
        monday = d - datetime.timedelta(days=d.weekday())
        weeks[monday] = weeks.get(monday, 0) + 1
    for cid, summons in arrests.values():
        if children[cid]["home"]:
            inc("summonses" if summons else "arrests", cid)
    for cid, status in interviews.values():
        if children[cid]["home"] and status != "cancelled":
            inc("voluntary_interviews", cid)
    for cid, code, disp in outcomes.values():
        if children[cid]["home"]:
            inc("outcomes", cid)
            inc("disposal_" + disp if disp in DISPOSALS else "disposal_not_given", cid)
            inc("outcome_%d" % code, cid)
    for cid, c in children.items():
        if not c["home"]:
            continue
        inc("children", cid)
        if det.get(cid, 0) >= 1:
            inc("children_detained", cid)
        if det.get(cid, 0) >= 2:
            inc("repeat_detentions", cid)
        if first_seq[cid] == c["min_seq"]:
            inc("first_contacts", cid)
        if c["nodob"]:
            inc("children_unknown_dob", cid)
        if c["eth_ns"]:
            inc("dq_ethnicity_not_stated", cid)
        if c["lac_unknown"]:
            inc("dq_looked_after_unknown", cid)
    stats = {}
    for k in keys:
        d, g = k

        def member(cid):
            return d == "all" or children[cid]["g"][d] == g
        t = sorted(m for m, cid in tic if member(cid))
        a = sorted(m for m, cid in aaw if member(cid))
        stats[k] = {"time_in_custody_median_min": (rank(t, 50) if t else None, len(t)),
                    "time_in_custody_p90_min": (rank(t, 90) if t else None, len(t)),
                    "time_in_custody_longest_min": (t[-1] if t else None, len(t)),
                    "aa_wait_median_min": (rank(a, 50) if a else None, len(a)),
                    "aa_wait_p90_min": (rank(a, 90) if a else None, len(a))}
        yes = sum(1 for cid in det if children[cid]["home"] and member(cid)
                  and children[cid]["g"]["looked_after"] == "yes")
        alld = cells[k]["children_detained"]
        stats[k]["looked_after_share_pct"] = (math.floor(1000.0 * yes / alld + 0.5) / 10 if alld else None, yes,
                                              alld)
    return {"cells": cells, "stats": stats, "codes": codes, "counts": counts, "weeks": weeks,
            "week0": date_from - datetime.timedelta(days=date_from.weekday()), "week1": date_to}


def hand_made(now):
    """Cases the simulator does not make: unknown groups, AA times, a record opened before the period."""
    out = []

    def ev(n, arrived, status, status_at, child=None, aa=None):
        e = yjtest.custody_event()
        e["source_id"] = "report-hand-%d" % n
        e["occurred_at"] = yjtest.utc(status_at)
        e["child"]["person_id"] = "TVP-RPT%04d" % (n // 10)
        e["child"]["date_of_birth"] = "%04d-06-15" % (time.gmtime(now).tm_year - 14)
        e["child"]["looked_after"] = False
        e["child"].update(child or {})
        for k in [k for k, v in e["child"].items() if v is None]:
            del e["child"][k]
        e["custody"].update({"record_id": "CR-RPT-%d" % (n // 10), "arrived_at": yjtest.utc(arrived),
                             "status": status, "status_at": yjtest.utc(status_at)})
        if aa:
            e["custody"]["appropriate_adult"] = {"name": "A Adult", "relationship": "aunt",
                                                 "called_at": yjtest.utc(aa[0]), "arrived_at": yjtest.utc(aa[1])}
        return ("custody", e)
    day = 86400
    n = 0
    for i in range(7):
        t = now - (10 + i) * day
        # looked_after is given: the normaliser stores an absent one as false today (see docs/report.md).
        unk = {"ethnicity": None, "gender": None, "looked_after": False, "home_la": "E06000042"}
        n = 10 * (i + 1)
        out.append(ev(n, t, "detained", t + 600, unk, aa=(t + 300, t + 300 + 3600 * (1 + i))))
        out.append(ev(n + 1, t, "released_under_investigation", t + 5 * 3600, unk,
                      aa=(t + 300, t + 300 + 3600 * (1 + i))))
    # Opened before the period (33 days back is its first day), released inside it: not a detention of it.
    t = now - 36 * day
    out.append(ev(200, t, "detained", t + 600))
    out.append(ev(201, t, "released_nfa", now - 31 * day))
    return out


def sim_events(now):
    p = subprocess.run([yjtest.YJLINK_SIM, "--seed", str(SEED), "--now", yjtest.utc(now - 3600), "--days", str(DAYS),
                        "--per-day", str(PER_DAY), "--stdout"], capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("yjlink-sim: %s" % p.stderr)
    out = []
    for line in p.stdout.splitlines():
        feed, payload = line.split("\t", 1)
        out.append((feed, json.loads(payload)))
    return out


def send_all(daemon, events):
    """Pipelined over YJL1; returns [(seq, feed, event)] of every OK."""
    f = yjtest.Feed(daemon.ingest)
    stored, pending = [], {}
    sent = 0
    try:
        while sent < len(events) or pending:
            while sent < len(events) and len(pending) < 500:
                feed, ev = events[sent]
                pending[ev["source_id"]] = (feed, ev)
                f.send(feed, ev)
                sent += 1
            fr = f.recv(30000)
            feed, ev = pending.pop(fr[2].decode())
            if fr[1] == b"OK":
                stored.append((int(fr[3]), feed, ev))
    finally:
        f.close()
    return stored


class TableParser(html.parser.HTMLParser):
    """Tables (caption, header cells, rows of cells) and SVG text of a page."""

    def __init__(self):
        super().__init__()
        self.tables, self.svgs, self.svg_texts = [], 0, []
        self.cur = None
        self.cell = None
        self.in_svg_text = False
        self.in_caption = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.cur = {"caption": "", "rows": [], "th": 0}
        elif tag == "caption":
            self.in_caption = True
        elif tag == "tr" and self.cur is not None:
            self.cur["rows"].append([])
        elif tag in ("td", "th") and self.cur is not None:
            self.cell = [tag, ""]
            if tag == "th":
                self.cur["th"] += 1
        elif tag == "svg":
            self.svgs += 1
        elif tag == "text":
            self.in_svg_text = True
            self.svg_texts.append("")

    def handle_endtag(self, tag):
        if tag == "table":
            self.tables.append(self.cur)
            self.cur = None
        elif tag == "caption":
            self.in_caption = False
        elif tag in ("td", "th") and self.cell is not None:
            self.cur["rows"][-1].append((self.cell[0], self.cell[1].strip()))
            self.cell = None
        elif tag == "text":
            self.in_svg_text = False

    def handle_data(self, data):
        if self.in_caption and self.cur is not None:
            self.cur["caption"] += data
        elif self.cell is not None:
            self.cell[1] += data
        elif self.in_svg_text:
            self.svg_texts[-1] += data


class ReportTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="yjreport-")
        cls.daemon = yjtest.Daemon().start()
        now = time.time()
        events = sim_events(now) + hand_made(now)
        cls.stored = send_all(cls.daemon, events)
        today = local_date(int(now * 1000000))
        cls.date_from = today - datetime.timedelta(days=33)
        cls.date_to = today - datetime.timedelta(days=3)
        cls.args = ["--from", cls.date_from.isoformat(), "--to", cls.date_to.isoformat()]
        cls.out = {}
        for fmt in ("json", "csv", "html"):
            path = os.path.join(cls.tmp, "report." + fmt)
            cls.daemon.ctl("report", *cls.args, "--format", fmt, "--out", path)
            with open(path, encoding="utf-8", newline="") as f:
                cls.out[fmt] = f.read()
        cls.json = json.loads(cls.out["json"])
        cls.exp = expected(cls.stored, cls.date_from, cls.date_to)

    @classmethod
    def tearDownClass(cls):
        cls.daemon.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def cells_of(self, rep):
        """(dimension, group) -> {figure: cell} from a JSON report."""
        out = {("all", "all"): rep["figures"]}
        for d, gs in rep["breakdowns"].items():
            for g, figs in gs.items():
                out[(d, g)] = figs
        return out

    def check_report(self, rep, exp, threshold=5):
        self.assertEqual(rep["suppression_threshold"], threshold)
        got = self.cells_of(rep)
        self.assertEqual(set(got), set(exp["cells"]), "groups of every dimension")
        for fig in SPEC_FIGURES:
            self.assertIn(fig, rep["figures"])
        for k, figs in exp["cells"].items():
            self.assertEqual(set(got[k]), set(figs) | STATS | SHARES, "figures of %s" % (k,))
            for fig, n in figs.items():
                c = got[k][fig]
                if n < threshold:
                    self.assertTrue(c["suppressed"], "%s %s = %d must be suppressed" % (k, fig, n))
                if c["suppressed"]:
                    self.assertIsNone(c["value"])
                else:
                    self.assertEqual(c["value"], n, "%s %s" % (k, fig))
            for fig, st in exp["stats"][k].items():
                c = got[k][fig]
                if fig in SHARES:
                    v, yes, alld = st
                    if yes < threshold or alld - yes < threshold:
                        self.assertTrue(c["suppressed"], "%s %s" % (k, fig))
                    if not c["suppressed"]:
                        self.assertAlmostEqual(c["value"], v, delta=0.051, msg="%s %s" % (k, fig))
                    continue
                v, n = st
                if n < threshold:
                    self.assertTrue(c["suppressed"], "%s %s over %d records" % (k, fig, n))
                else:
                    self.assertFalse(c["suppressed"], "%s %s" % (k, fig))
                    self.assertEqual(c["value"], v, "%s %s" % (k, fig))
        # Secondary suppression: no set of cells adding up to a shown total has exactly one hidden.
        gs = groups()
        sets = []
        for fig in exp["counts"]:
            for d in gs:
                sets.append([got[("all", "all")][fig]] + [got[(d, g)][fig] for g in gs[d]])
        for k in got:
            sets.append([got[k]["detentions"]] + [got[k][f] for f in STATUS_FIG])
            sets.append([got[k]["charged"], got[k]["charged_bailed"], got[k]["charged_remanded"]])
            sets.append([got[k]["outcomes"]] + [got[k]["outcome_%d" % c] for c in exp["codes"]])
            sets.append([got[k]["outcomes"]] + [got[k]["disposal_" + d] for d in DISPOSALS] +
                        [got[k]["disposal_not_given"]])
        sets.append([rep["figures"]["detentions"]] + [w["detentions"] for w in rep["weekly"]])
        for s in sets:
            self.assertNotEqual(sum(1 for c in s if c["suppressed"]), 1, "one hidden cell of a set: %s" % s)
        # Weeks.
        w0 = exp["week0"]
        self.assertEqual(rep["weekly"][0]["week_start"], w0.isoformat())
        for i, w in enumerate(rep["weekly"]):
            n = exp["weeks"].get(w0 + datetime.timedelta(days=7 * i), 0)
            if n < threshold:
                self.assertTrue(w["detentions"]["suppressed"])
            if not w["detentions"]["suppressed"]:
                self.assertEqual(w["detentions"]["value"], n)
        self.assertEqual(sum(exp["weeks"].values()), exp["cells"][("all", "all")]["detentions"])
        # A history this size shows its main figures.
        for fig in ("detentions", "children_detained", "arrests", "released_under_investigation"):
            self.assertFalse(rep["figures"][fig]["suppressed"], fig)

    def test_every_figure_force_wide(self):
        self.assertGreater(len(self.stored), DAYS * PER_DAY * 0.9)
        self.assertEqual(self.json["scope"], "force")
        self.assertEqual(self.json["from"], self.date_from.isoformat())
        self.assertEqual(self.json["to"], self.date_to.isoformat())
        self.check_report(self.json, self.exp)
        # Ethnicity labels from the code set; outcome names from the outcome table.
        self.assertEqual(self.json["labels"]["groups"]["ethnicity"]["W1"][:5], "White")
        for c in self.exp["codes"]:
            self.assertRegex(self.json["labels"]["figures"]["outcome_%d" % c], r"^Outcome %d: \S" % c)

    def test_every_figure_one_yjs(self):
        code, out, err = self.daemon.ctl("report", *self.args, "--yjs", MK, "--format", "json")
        rep = json.loads(out)
        self.assertEqual(rep["scope"], MK)
        exp = expected(self.stored, self.date_from, self.date_to, MK_LAS)
        self.assertGreater(exp["cells"][("all", "all")]["detentions"], 5)
        self.assertLess(exp["cells"][("all", "all")]["detentions"],
                        self.exp["cells"][("all", "all")]["detentions"])
        self.check_report(rep, exp)

    def test_threshold_is_configurable(self):
        d = yjtest.Daemon(sets={"report.suppress_below": "3"}).start()
        try:
            stored = send_all(d, [(feed, ev) for _, feed, ev in self.stored])
            code, out, err = d.ctl("report", *self.args, "--format", "json")
            rep = json.loads(out)
            self.check_report(rep, expected(stored, self.date_from, self.date_to), threshold=3)
            shown = [c["value"] for figs in self.cells_of(rep).values() for f, c in figs.items()
                     if f not in STATS and f not in SHARES and not c["suppressed"]]
            self.assertTrue(any(v in (3, 4) for v in shown), "a 3 or 4 is shown at threshold 3")
        finally:
            d.cleanup()

    def count_figures(self):
        return set(self.exp["counts"])

    def test_no_small_number_published(self):
        counts = self.count_figures()
        # JSON
        for figs in self.cells_of(self.json).values():
            for fig, c in figs.items():
                if fig in counts and c["value"] is not None:
                    self.assertGreaterEqual(c["value"], 5, fig)
        for w in self.json["weekly"]:
            self.assertTrue(w["detentions"]["value"] is None or w["detentions"]["value"] >= 5)
        # CSV
        for row in csv.DictReader(io.StringIO(self.out["csv"])):
            if row["figure"] in counts:
                self.assertTrue(row["value"] == "<5" or int(row["value"]) >= 5, row)
        # HTML: every table cell of a count, every number in the charts
        p = TableParser()
        p.feed(self.out["html"])
        labels = self.json["labels"]["figures"]
        count_labels = {labels[f] for f in counts}
        for t in p.tables:
            if t["caption"].startswith("By ") or t["caption"] == "Ethnicity codes":
                continue  # the disparity tables hold rates, the code table labels
            for row in t["rows"]:
                if not row or row[0][0] != "th":
                    continue
                head = row[0][1]
                if t["caption"].startswith("Figures") and head not in count_labels:
                    continue  # minutes and shares
                for kind, text in row[1:]:
                    if re.fullmatch(r"\d+", text):
                        self.assertGreaterEqual(int(text), 5, "%s / %s" % (t["caption"], head))
        for text in p.svg_texts:
            for n in re.findall(r"(?<![\w<.])(\d+)(?![\w.])", text):
                if text.strip() not in groups()["age"]:
                    self.assertGreaterEqual(int(n), 5, "SVG text %r" % text)

    def test_csv_rows(self):
        rows = list(csv.reader(io.StringIO(self.out["csv"])))
        self.assertEqual(rows[0], ["dimension", "group", "figure", "value"])
        got = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
        self.assertEqual(len(got), len(rows) - 1, "one row per figure and group")
        for (d, g), figs in self.cells_of(self.json).items():
            for fig, c in figs.items():
                v = got[(d, g, fig)]
                if c["suppressed"]:
                    self.assertEqual(v, "<5")
                elif c["value"] is None:
                    self.assertEqual(v, "")
                else:
                    self.assertEqual(float(v), c["value"], (d, g, fig))
        for w in self.json["weekly"]:
            v = got[("week", w["week_start"], "detentions")]
            self.assertEqual(v, "<5" if w["detentions"]["suppressed"] else str(w["detentions"]["value"]))
        for r in rows:
            for cell in r:
                self.assertFalse(cell[:1] in ("=", "+", "-", "@", "\t", "\r"), cell)

    def test_disparity(self):
        dis = self.json["disparity"]
        self.assertEqual(dis["ethnicity"]["reference"], "W1")
        stages = dis["stages"]
        self.assertEqual(stages, ["arrests", "detentions", "released_under_investigation", "released_nfa",
                                  "charged", "outcomes"])
        base = {"detentions": "arrests", "released_under_investigation": "detentions",
                "released_nfa": "detentions", "charged": "detentions", "outcomes": "detentions"}
        cells = self.cells_of(self.json)
        for dim in ("gender", "ethnicity", "looked_after"):
            ref = dis[dim]["reference"]
            for g, e in dis[dim]["groups"].items():
                small = False
                for st in stages[1:]:
                    n, b = cells[(dim, g)][st], cells[(dim, g)][base[st]]
                    rn, rb = cells[(dim, ref)][st], cells[(dim, ref)][base[st]]
                    if n["suppressed"] or b["suppressed"] or not b["value"]:
                        self.assertIsNone(e["rate"][st], (dim, g, st))
                        self.assertIsNone(e["rri"][st])
                        small = True
                        continue
                    rate = n["value"] / b["value"]
                    self.assertAlmostEqual(e["rate"][st], rate, delta=0.0006)
                    small |= n["value"] < 20 or b["value"] < 20
                    if not (rn["suppressed"] or rb["suppressed"] or not rb["value"] or not rn["value"]):
                        self.assertAlmostEqual(e["rri"][st], rate / (rn["value"] / rb["value"]), delta=0.0006)
                        small |= rn["value"] < 20 or rb["value"] < 20
                if small:
                    self.assertTrue(e["small_numbers"], (dim, g))
                self.assertIsNone(e["detentions_per_1000"], "no population given")

    def test_population_rates(self):
        pop = os.path.join(yjtest.SOURCE, "conf", "population-example.csv")
        code, out, err = self.daemon.ctl("report", *self.args, "--format", "json", "--population", pop)
        rep = json.loads(out)
        dis = rep["disparity"]
        self.assertIn("ILLUSTRATIVE", dis["population_source"])
        cells = self.cells_of(rep)
        with open(pop, encoding="utf-8") as f:
            table = {(r[0], r[1]): float(r[2]) for r in csv.reader(l for l in f if not l.startswith("#"))
                     if r and r[0] != "dimension"}
        checked = 0
        for (d, g), n in table.items():
            if d not in dis:
                continue
            e = dis[d]["groups"][g]
            self.assertEqual(e["population"], n)
            det = cells[(d, g)]["detentions"]
            if det["suppressed"]:
                self.assertIsNone(e["detentions_per_1000"])
            else:
                self.assertAlmostEqual(e["detentions_per_1000"], 1000.0 * det["value"] / n, delta=0.0006)
                checked += 1
        self.assertGreater(checked, 0)

    def test_html_in_chromium(self):
        if not os.path.exists(CHROMIUM):
            self.fail("%s is missing: run tools/install-deps.sh (Debian's chromium)" % CHROMIUM)
        self.assertNotIn("<script", self.out["html"].lower())
        self.assertIsNone(re.search(r"(src|href)\s*=\s*\"(https?:)?//", self.out["html"]), "no external resource")
        page = os.path.join(self.tmp, "report.html")
        with open(page, "w", encoding="utf-8") as f:
            f.write(self.out["html"])
        profile = tempfile.mkdtemp(prefix="chromium-", dir=self.tmp)
        p = subprocess.run([CHROMIUM] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile, "--window-size=390,844",
                                                          "--dump-dom", "file://" + page],
                           capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        self.assertRegex(p.stdout[:200], r"^<!DOCTYPE html>\s*<html")
        dom = TableParser()
        dom.feed(p.stdout)
        self.assertGreaterEqual(dom.svgs, 6, "funnel, weeks and four bar charts")
        self.assertGreater(len(dom.tables), 10)
        for t in dom.tables:
            self.assertTrue(t["caption"].strip(), "every table has a caption")
            self.assertGreater(t["th"], 0, "every table has header cells: %s" % t["caption"])
            for row in t["rows"]:
                self.assertTrue(row and row[0][0] == "th", "every row starts with its header: %s" % t["caption"])
        # The figures table holds the JSON's numbers.
        figs = next(t for t in dom.tables if t["caption"] == "Figures for the period")
        by_label = {r[0][1]: r[1][1] for r in figs["rows"][1:]}
        labels = self.json["labels"]["figures"]
        for fig, c in self.json["figures"].items():
            v = by_label[labels[fig]]
            if c["suppressed"]:
                self.assertEqual(v, "<5")
            elif c["value"] is not None:
                self.assertEqual(float(v), c["value"], fig)

    def test_usage_errors(self):
        for args in (["--from", "2026-02-30", "--to", "2026-03-01", "--format", "json"],
                     ["--from", "2026-03-02", "--to", "2026-03-01", "--format", "json"],
                     ["--from", "2026-03-01", "--to", "2026-03-02", "--format", "pdf"],
                     ["--from", "2026-03-01", "--format", "json"],
                     ["--from", "2026-03-01", "--to", "2026-03-02", "--yjs", "yjs:nowhere", "--format", "json"]):
            code, out, err = self.daemon.ctl("report", *args, check=False)
            self.assertEqual(code, 2, (args, out, err))


class OffLoopTest(unittest.TestCase):
    """The report is built in a helper process (daemon/reportjob.h): while it
    reads, ingest and control go on, also when the map must grow under the
    helper's open reader, and the report shows the store as it was when that
    reader began."""

    def test_loop_goes_on_and_the_map_grows_while_a_report_reads(self):
        tmp = tempfile.mkdtemp(prefix="yjreport-gate-")
        gate = os.path.join(tmp, "gate")
        d = yjtest.Daemon(sets={"testing.report_gate": gate, "store.map_size_mb": "1"}).start()
        try:
            before = send_all(d, [("custody", yjtest.custody_event()) for _ in range(20)])
            self.assertEqual(len(before), 20)
            today = datetime.datetime.now(LONDON).date()
            args = ["report", "--from", (today - datetime.timedelta(days=1)).isoformat(), "--to", today.isoformat(),
                    "--format", "json"]
            held = subprocess.Popen([yjtest.YJLINKCTL, "--control", d.control, "--timeout", "600"] + args,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.time() + 60
                while "holds its reader open" not in d.read_log():
                    self.assertIsNone(held.poll(), "yjlinkctl report ended before its helper read")
                    self.assertLess(time.time(), deadline, "no report helper reading:\n" + d.read_log())
                    time.sleep(0.05)
                map_before = d.ctl_request("status")[1]["store"]["map_bytes"]
                # With the reader open: ingest that grows the 1 MiB map, and control.
                after = send_all(d, [("custody", yjtest.custody_event()) for _ in range(3000)])
                self.assertEqual(len(after), 3000)
                code, st = d.ctl_request("status")
                self.assertEqual(code, 0)
                self.assertGreater(st["store"]["map_grows"], 0)
                self.assertGreater(st["store"]["map_bytes"], map_before)
                self.assertIsNone(held.poll(), "the report is still held at its gate")
            finally:
                open(gate, "w").close()
            out, err = held.communicate(timeout=300)
            self.assertEqual(held.returncode, 0, err)
            # Its snapshot: the 20 events stored before its reader began.
            self.assertEqual(json.loads(out)["figures"]["detentions"]["value"], 20)
            code, out, err = d.ctl(*args)
            self.assertEqual(json.loads(out)["figures"]["detentions"]["value"], 3020)
            self.assertRegex(d.read_log(), r"control: report for uid \d+ ready: \d+ events read")
        finally:
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)

    def test_a_stop_answers_a_report_under_way(self):
        tmp = tempfile.mkdtemp(prefix="yjreport-gate-")
        d = yjtest.Daemon(sets={"testing.report_gate": os.path.join(tmp, "never")}).start()
        try:
            today = datetime.datetime.now(LONDON).date().isoformat()
            held = subprocess.Popen([yjtest.YJLINKCTL, "--control", d.control, "--timeout", "600", "report",
                                     "--from", today, "--to", today, "--format", "csv"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 60
            while "holds its reader open" not in d.read_log():
                self.assertLess(time.time(), deadline, "no report helper reading:\n" + d.read_log())
                time.sleep(0.05)
            helper = int(re.search(r"report: helper (\d+) holds", d.read_log()).group(1))
            self.assertEqual(d.stop(), 0)
            out, err = held.communicate(timeout=60)
            self.assertEqual(held.returncode, 1)
            self.assertIn("stopping", err + out)
            # The helper went with the daemon.
            self.assertFalse(os.path.exists("/proc/%d" % helper) and
                             open("/proc/%d/stat" % helper).read().split()[2] != "Z")
        finally:
            d.cleanup()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
