#!/usr/bin/python3
"""Build yjlink's reference tables (conf/ref/*.csv) from the ONS and GOV.UK
files in the shared data folder (see that folder's SOURCES.md).

    /usr/bin/python3 tools/build-refdata.py [DATA_DIR] [--out DIR]

DATA_DIR defaults to tools/refdata-sources (the source files, with their SOURCES.md), --out to
conf/ref. Standard library only. The output depends on nothing but the inputs
(no dates, no dict-order or locale effects), so a rebuild from the same data
gives byte-identical files and a clean `git diff`.

Every consistency check the daemon relies on (each LAD in exactly one force,
each district in a county, a county's districts all in one force, suites in
upper-tier authorities of their own force) is made here and fails loudly: a
table that silently disagrees with itself would misroute notifications about
children.
"""

import argparse
import csv
import hashlib
import io
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

IN_PFA = "ons_pfa24_names_codes_ew.csv"
IN_LAD_PFA = "ons_lad24_pfa24_lookup_ew.csv"
IN_LAD_CSP_PFA = "ons_lad24_csp24_pfa24_lookup_ew.csv"
IN_LTLA_UTLA = "ons_ltla23_utla23_lookup_ew.csv"
IN_UTLA = "ons_utla23_upper_tier_authorities_ew.csv"
IN_BANK = "bank_holidays_england_and_wales.csv"
INPUTS = [IN_LAD_CSP_PFA, IN_LAD_PFA, IN_PFA, IN_LTLA_UTLA, IN_UTLA, IN_BANK]

GSS = re.compile(r"^[EW][0-9]{8}$")
UPPER_PREFIXES = ("E06", "E08", "E09", "E10", "W06")
LOWER_PREFIXES = ("E07",)
SUITE_ID = re.compile(r"^[A-Z0-9]+(-[A-Z0-9]+)+$")


class DataError(Exception):
    pass


def fail(msg):
    raise DataError(msg)


def read_csv(path, columns):
    """Rows of a UTF-8 CSV as dicts, after checking the header has `columns`."""
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if text.startswith("\ufeff"):
        text = text[1:]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    rows = list(reader)
    missing = [c for c in columns if c not in header]
    if missing:
        fail("%s: missing column(s) %s" % (path, ", ".join(missing)))
    for i, r in enumerate(rows, start=2):
        for c in columns:
            v = r.get(c)
            if v is None or v.strip() != v or v == "":
                fail("%s:%d: column %s is empty or padded: %r" % (path, i, c, v))
    return rows


def write_csv(path, header, rows):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    data = buf.getvalue().encode("utf-8")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(rows)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# --- forces ----------------------------------------------------------------

def build_forces(data):
    rows = read_csv(os.path.join(data, IN_PFA), ["PFA24CD", "PFA24NM"])
    forces = {}
    for r in rows:
        code, name = r["PFA24CD"], r["PFA24NM"]
        if not GSS.match(code) or code[:3] not in ("E23", "W15"):
            fail("%s: %s is not a PFA code" % (IN_PFA, code))
        if code in forces:
            fail("%s: duplicate PFA %s" % (IN_PFA, code))
        forces[code] = name
    if len(forces) != 43:
        fail("%s: expected the 43 PFAs of England and Wales, found %d" % (IN_PFA, len(forces)))
    return forces


# --- local authorities -----------------------------------------------------

def build_las(data, forces):
    lad_pfa = {}
    for r in read_csv(os.path.join(data, IN_LAD_PFA), ["LAD24CD", "LAD24NM", "PFA24CD", "PFA24NM"]):
        code = r["LAD24CD"]
        if code in lad_pfa:
            fail("%s: LAD %s listed twice" % (IN_LAD_PFA, code))
        if r["PFA24CD"] not in forces:
            fail("%s: LAD %s is in unknown PFA %s" % (IN_LAD_PFA, code, r["PFA24CD"]))
        if forces[r["PFA24CD"]] != r["PFA24NM"]:
            fail("%s: PFA %s named %r here but %r in %s"
                 % (IN_LAD_PFA, r["PFA24CD"], r["PFA24NM"], forces[r["PFA24CD"]], IN_PFA))
        lad_pfa[code] = (r["LAD24NM"], r["PFA24CD"])

    # The derived LAD->PFA file must agree with the ONS original it came from.
    for r in read_csv(os.path.join(data, IN_LAD_CSP_PFA), ["LAD24CD", "PFA24CD"]):
        got = lad_pfa.get(r["LAD24CD"])
        if got is None or got[1] != r["PFA24CD"]:
            fail("%s: LAD %s -> %s disagrees with %s (%s)"
                 % (IN_LAD_CSP_PFA, r["LAD24CD"], r["PFA24CD"], IN_LAD_PFA, got))

    utla_names = {}
    for r in read_csv(os.path.join(data, IN_UTLA), ["UTLA23CD", "UTLA23NM"]):
        utla_names[r["UTLA23CD"]] = r["UTLA23NM"]

    upper_of = {}
    county_names = {}
    for r in read_csv(os.path.join(data, IN_LTLA_UTLA), ["LTLA23CD", "LTLA23NM", "UTLA23CD", "UTLA23NM"]):
        lt, ut = r["LTLA23CD"], r["UTLA23CD"]
        if lt in upper_of:
            fail("%s: LTLA %s listed twice" % (IN_LTLA_UTLA, lt))
        if lt not in lad_pfa:
            fail("%s: LTLA %s is not a LAD24 in %s" % (IN_LTLA_UTLA, lt, IN_LAD_PFA))
        if r["LTLA23NM"] != lad_pfa[lt][0]:
            fail("%s: %s named %r here but %r in %s" % (IN_LTLA_UTLA, lt, r["LTLA23NM"], lad_pfa[lt][0], IN_LAD_PFA))
        if lt[:3] in LOWER_PREFIXES:
            if not ut.startswith("E10"):
                fail("%s: district %s maps to %s, not a county" % (IN_LTLA_UTLA, lt, ut))
            if ut in county_names and county_names[ut] != r["UTLA23NM"]:
                fail("%s: county %s has two names" % (IN_LTLA_UTLA, ut))
            county_names[ut] = r["UTLA23NM"]
        elif lt[:3] in UPPER_PREFIXES:
            if ut != lt:
                fail("%s: upper-tier %s maps to %s, not itself" % (IN_LTLA_UTLA, lt, ut))
        else:
            fail("%s: %s is not a local authority code this table knows" % (IN_LTLA_UTLA, lt))
        if utla_names.get(ut) != r["UTLA23NM"]:
            fail("%s: %s named %r here but %r in %s" % (IN_LTLA_UTLA, ut, r["UTLA23NM"], utla_names.get(ut), IN_UTLA))
        upper_of[lt] = ut
    missing = sorted(set(lad_pfa) - set(upper_of))
    if missing:
        fail("%s: no upper tier for LAD24 %s" % (IN_LTLA_UTLA, ", ".join(missing)))

    # A county's force is its districts' force; it must be the same for all of them.
    county_force = {}
    for lt, ut in sorted(upper_of.items()):
        if not ut.startswith("E10"):
            continue
        f = lad_pfa[lt][1]
        county_force.setdefault(ut, set()).add(f)
    split = {c: sorted(fs) for c, fs in county_force.items() if len(fs) != 1}
    if split:
        fail("counties whose districts lie in more than one force: %s"
             % "; ".join("%s %s: %s" % (c, county_names[c], ", ".join(fs)) for c, fs in sorted(split.items())))

    las = []
    for code in sorted(lad_pfa):
        name, force = lad_pfa[code]
        if code[:3] in LOWER_PREFIXES:
            las.append((code, name, "lower", upper_of[code], force))
        else:
            las.append((code, name, "upper", code, force))
    for code in sorted(county_names):
        las.append((code, county_names[code], "upper", code, next(iter(county_force[code]))))
    las.sort(key=lambda r: r[0])

    upper_set = {r[0] for r in las if r[2] == "upper"}
    if upper_set != set(utla_names):
        fail("upper-tier authorities built (%d) differ from %s (%d): %s"
             % (len(upper_set), IN_UTLA, len(utla_names), sorted(upper_set ^ set(utla_names))))
    return las


# --- bank holidays ---------------------------------------------------------

def build_bank_holidays(data):
    rows = read_csv(os.path.join(data, IN_BANK), ["date", "title"])
    seen = {}
    for r in rows:
        d = r["date"]
        if not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", d):
            fail("%s: bad date %r" % (IN_BANK, d))
        if d in seen:
            fail("%s: date %s listed twice" % (IN_BANK, d))
        seen[d] = r["title"]
    return sorted(seen.items())


# --- ethnicity (hand-written) ----------------------------------------------
#
# Police self-defined ethnicity codes: the 16+1 set (2001 census), the 18+1
# set (2011 census, which added W3 and O2 and moved Chinese from O1 to A4) and
# the 2021 census set (which added W4 Roma). Labels follow the 2021 wording
# where a code survives into it, the older wording where it does not (O1).
# B1 is Caribbean and B2 African in all three sets.

ETHNICITY = [
    ("A1", "Asian - Indian", "2001 2011 2021"),
    ("A2", "Asian - Pakistani", "2001 2011 2021"),
    ("A3", "Asian - Bangladeshi", "2001 2011 2021"),
    ("A4", "Asian - Chinese", "2011 2021"),
    ("A9", "Asian - Any other Asian background", "2001 2011 2021"),
    ("B1", "Black - Caribbean", "2001 2011 2021"),
    ("B2", "Black - African", "2001 2011 2021"),
    ("B9", "Black - Any other Black, Black British or Caribbean background", "2001 2011 2021"),
    ("M1", "Mixed - White and Black Caribbean", "2001 2011 2021"),
    ("M2", "Mixed - White and Black African", "2001 2011 2021"),
    ("M3", "Mixed - White and Asian", "2001 2011 2021"),
    ("M9", "Mixed - Any other Mixed or multiple ethnic background", "2001 2011 2021"),
    ("O1", "Chinese or other ethnic group - Chinese", "2001"),
    ("O2", "Other ethnic group - Arab", "2011 2021"),
    ("O9", "Other ethnic group - Any other ethnic group", "2001 2011 2021"),
    ("W1", "White - English, Welsh, Scottish, Northern Irish or British", "2001 2011 2021"),
    ("W2", "White - Irish", "2001 2011 2021"),
    ("W3", "White - Gypsy or Irish Traveller", "2011 2021"),
    ("W4", "White - Roma", "2021"),
    ("W9", "White - Any other White background", "2001 2011 2021"),
    ("NS", "Not stated", "2001 2011 2021"),
]


def check_ethnicity():
    union = "A1 A2 A3 A4 A9 B1 B2 B9 M1 M2 M3 M9 O1 O2 O9 W1 W2 W3 W4 W9 NS".split()
    if [e[0] for e in ETHNICITY] != union:
        fail("ethnicity table is not the accepted union (interfaces.md §2)")
    counts = {y: sum(1 for e in ETHNICITY if y in e[2].split()) for y in ("2001", "2011", "2021")}
    # 16+1, 18+1 and the 2021 set (19+1).
    if counts != {"2001": 17, "2011": 19, "2021": 20}:
        fail("ethnicity census sets have the wrong sizes: %s" % counts)
    return list(ETHNICITY)


# --- outcomes (hand-written) -----------------------------------------------
#
# Home Office crime outcome types, names as published in "Crime outcomes in
# England and Wales: technical annex" (Table A1). 1A (alternative offence
# charged/summonsed) is reported by forces as 1, so the table is integer-keyed.
# valid_from is deliberately early (the outcomes framework began 2013-04-01;
# 20, 21 and 22 were added later), so that a genuine late-recorded outcome is
# never refused for its date.

OUTCOME_VERSION = "2024-25"
OUTCOMES = [
    (1, "Charged/Summonsed", "2013-04-01"),
    (2, "Youth caution", "2013-04-01"),
    (3, "Adult caution", "2013-04-01"),
    (4, "Taken into consideration", "2013-04-01"),
    (5, "Offender has died", "2013-04-01"),
    (6, "Penalty Notice for Disorder", "2013-04-01"),
    (7, "Cannabis/Khat warning", "2013-04-01"),
    (8, "Community resolution", "2013-04-01"),
    (9, "Prosecution not in the public interest (CPS)", "2013-04-01"),
    (10, "Formal action against the offender is not in the public interest (Police)", "2013-04-01"),
    (11, "Prosecution prevented – named suspect identified but is below the age of criminal responsibility",
     "2013-04-01"),
    (12, "Prosecution prevented – named suspect identified but is too ill (physical or mental health) to prosecute",
     "2013-04-01"),
    (13, "Prosecution prevented – named suspect identified but victim or key witness is dead or too ill to give "
     "evidence", "2013-04-01"),
    (14, "Evidential difficulties victim based – named suspect not identified: the crime is confirmed but the "
     "victim either declines or is unable to support further police action to identify the offender", "2013-04-01"),
    (15, "Evidential difficulties named suspect identified – the crime is confirmed and the victim supports police "
     "action but evidential difficulties prevent further action", "2013-04-01"),
    (16, "Evidential difficulties victim based – named suspect identified: the victim does not support (or has "
     "withdrawn support from) police action", "2013-04-01"),
    (17, "Prosecution time limit expired: suspect identified but prosecution time limit has expired", "2013-04-01"),
    (18, "Investigation complete – no suspect identified: crime investigated as far as reasonably possible – case "
     "closed pending further police action", "2013-04-01"),
    (19, "National Fraud Intelligence Bureau filed: a crime related to fraud has been filed by the NFIB as there "
     "are insufficient leads to follow", "2013-04-01"),
    (20, "Further action resulting from the crime report, which will be undertaken by another body or agency, "
     "subject to the victim (or person acting on their behalf) being made aware of the action being taken",
     "2014-04-01"),
    (21, "Further investigation, resulting from the crime report, that could provide evidence sufficient to "
     "support formal action being taken against the suspect is not in the public interest – police decision",
     "2016-01-01"),
    (22, "Diversionary, educational or intervention activity, resulting from the crime report, has been "
     "undertaken and it is not in the public interest to take any further action", "2019-04-01"),
]


# Codes that cannot be a child's outcome (applies_to_children "no"): 3 adult
# caution, 6 penalty notice for disorder and 7 cannabis/khat warning are
# disposals for adults; 11 is a suspect under the age of criminal
# responsibility (10). Such an outcome about a child is a data-quality issue.
NOT_FOR_CHILDREN = {3, 6, 7, 11}


def build_outcomes():
    if [o[0] for o in OUTCOMES] != list(range(1, 23)):
        fail("outcome codes must be 1..22 in order")
    return [(c, n, f, "", OUTCOME_VERSION, "no" if c in NOT_FOR_CHILDREN else "yes") for c, n, f in OUTCOMES]


# --- custody suites (hand-written, illustrative) ---------------------------
#
# Demo data for the Thames Valley deployment in conf/yjlinkd.conf and its
# neighbours; not an authoritative list of suites. `la` is the upper-tier
# authority the suite stands in (for a district, its county).

SUITES = [
    # Thames Valley
    ("TVP-MK", "Milton Keynes", "E23000029", "E06000042"),
    ("TVP-AYL", "Aylesbury", "E23000029", "E06000060"),
    ("TVP-HW", "High Wycombe", "E23000029", "E06000060"),
    ("TVP-ABG", "Abingdon", "E23000029", "E10000025"),
    ("TVP-BAN", "Banbury", "E23000029", "E10000025"),
    ("TVP-LV", "Loddon Valley", "E23000029", "E06000041"),
    ("TVP-RDG", "Reading", "E23000029", "E06000038"),
    ("TVP-SLO", "Slough", "E23000029", "E06000039"),
    ("TVP-NBY", "Newbury", "E23000029", "E06000037"),
    ("TVP-MHD", "Maidenhead", "E23000029", "E06000040"),
    # Metropolitan Police
    ("MPS-CX", "Charing Cross", "E23000001", "E09000033"),
    ("MPS-BXN", "Brixton", "E23000001", "E09000022"),
    ("MPS-WEM", "Wembley", "E23000001", "E09000005"),
    # Hampshire
    ("HANTS-SOU", "Southampton", "E23000030", "E06000045"),
    ("HANTS-BSK", "Basingstoke", "E23000030", "E10000014"),
    ("HANTS-NPT", "Newport (Isle of Wight)", "E23000030", "E06000046"),
    # Bedfordshire
    ("BEDS-KEM", "Kempston", "E23000026", "E06000055"),
    ("BEDS-LUT", "Luton", "E23000026", "E06000032"),
    # Northamptonshire
    ("NHANTS-NTH", "Northampton", "E23000022", "E06000062"),
    ("NHANTS-KET", "Kettering", "E23000022", "E06000061"),
    # Hertfordshire
    ("HERTS-HAT", "Hatfield", "E23000027", "E10000015"),
    ("HERTS-STV", "Stevenage", "E23000027", "E10000015"),
    # Wiltshire
    ("WILTS-SWI", "Swindon", "E23000038", "E06000030"),
    ("WILTS-MEL", "Melksham", "E23000038", "E06000054"),
    # Gloucestershire
    ("GLOS-GLO", "Gloucester", "E23000037", "E10000013"),
    ("GLOS-CHL", "Cheltenham", "E23000037", "E10000013"),
    # Warwickshire
    ("WARKS-LEA", "Leamington Spa", "E23000017", "E10000031"),
    ("WARKS-NUN", "Nuneaton", "E23000017", "E10000031"),
]


def build_suites(forces, las):
    by_code = {r[0]: r for r in las}
    seen = set()
    for sid, name, force, la in SUITES:
        if not SUITE_ID.match(sid):
            fail("suite id %s is not FORCEABBR-PLACE" % sid)
        if sid in seen:
            fail("suite %s listed twice" % sid)
        seen.add(sid)
        if force not in forces:
            fail("suite %s: unknown force %s" % (sid, force))
        r = by_code.get(la)
        if r is None or r[2] != "upper":
            fail("suite %s: %s is not an upper-tier authority" % (sid, la))
        if r[4] != force:
            fail("suite %s: %s %s lies in %s, not %s" % (sid, la, r[1], r[4], force))
    return sorted(SUITES)


# --- national directories (children's services, forces) -------------------
#
# Every upper-tier authority and every force area, with the columns an
# operator fills to reach it (routing.md "Reach everywhere"). Shipped empty
# but for the demo's own Berkshire authorities, which the demo config does
# not declare: their rows reach the demo's SMTP server (tools/demo), so a
# looked-after child of Reading is routed out of the box. dsa is `ID` or
# `ID@YYYY-MM-DD` (the agreement's review date).

DIRECTORY_COLUMNS = ["code", "name", "transport", "address", "out_of_hours_address", "secret_file", "dsa"]
DEMO_DSA = "DSA-TVP-CS-001@2027-03-31"
CHILDREN_SERVICES_DEMO = {
    "E06000036": ("email", "childrens-services@bracknell-forest.example", "", "", DEMO_DSA),
    "E06000037": ("email", "childrens-services@west-berkshire.example", "", "", DEMO_DSA),
    "E06000038": ("email", "childrens-services@reading.example", "edt@reading.example", "", DEMO_DSA),
    "E06000039": ("email", "childrens-services@slough.example", "", "", DEMO_DSA),
    "E06000040": ("email", "childrens-services@rbwm.example", "", "", DEMO_DSA),
    "E06000041": ("email", "childrens-services@wokingham.example", "", "", DEMO_DSA),
}
FORCE_CONTACTS_DEMO = {}
DIRECTORY_TRANSPORTS = ("", "email", "webhook")
DSA_FORM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}(@[0-9]{4}-[0-9]{2}-[0-9]{2})?$")


def build_directory(what, codes, demo):
    """Rows of a directory: every (code, name) with its demo destination, if any."""
    unknown = sorted(set(demo) - set(codes))
    if unknown:
        fail("%s demo rows for codes that are not in the table: %s" % (what, ", ".join(unknown)))
    rows = []
    for code in sorted(codes):
        transport, address, ooh, secret, dsa = demo.get(code, ("", "", "", "", ""))
        if transport not in DIRECTORY_TRANSPORTS or bool(transport) != bool(address):
            fail("%s %s: a transport needs an address and an address a transport" % (what, code))
        if dsa and not DSA_FORM.match(dsa):
            fail("%s %s: dsa %r is not ID or ID@YYYY-MM-DD" % (what, code, dsa))
        rows.append((code, codes[code], transport, address, ooh, secret, dsa))
    return rows


def read_utla_names(data):
    return {r["UTLA23CD"]: r["UTLA23NM"] for r in read_csv(os.path.join(data, IN_UTLA), ["UTLA23CD", "UTLA23NM"])}


# --- attribution -----------------------------------------------------------

ATTRIBUTION = """\
# Reference tables: sources and attribution

The tables in this directory are built by `tools/build-refdata.py` from the
data files in `tools/refdata-sources/` (described in its `SOURCES.md`), and are
compiled into `yjlinkd` (an operator replaces them with `reference.dir`).
Do not edit the generated files by hand: change the script and rerun it.

## Attribution (Open Government Licence v3.0)

The ONS and GOV.UK data are Crown copyright, released under the Open
Government Licence v3.0:
https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/

> Source: Office for National Statistics licensed under the Open Government Licence v3.0.
> Contains OS data © Crown copyright and database right 2024.
> Contains public sector information licensed under the Open Government Licence v3.0 (GOV.UK bank holidays).

## Derived tables

| table | rows | derived from |
|---|---|---|
| `forces.csv` | {n_forces} | `{IN_PFA}` (PFA24 names and codes, December 2024) |
| `local_authorities.csv` | {n_las} | `{IN_LAD_PFA}`, checked against `{IN_LAD_CSP_PFA}`; tiers and counties from `{IN_LTLA_UTLA}`, checked against `{IN_UTLA}` |
| `bank_holidays.csv` | {n_bank} | `{IN_BANK}` (England and Wales division) |
| `children_services.csv` | {n_cs} | codes and names from `{IN_UTLA}` (every upper-tier authority) |
| `force_contacts.csv` | {n_fc} | codes and names from `{IN_PFA}` (every force area) |

- **`forces.csv`**: the 43 police force areas of England and Wales, codes and
  names exactly as ONS spells them.
- **`local_authorities.csv`**: every LAD24 ({n_lad}; E07 districts are `lower`
  with the county they lie in as `upper_code`, E06/E08/E09/W06 are `upper`
  and their own `upper_code`) and every county E10 ({n_e10}, `upper`). `force`
  is the PFA from the LAD to PFA lookup; a county's force is that of its
  districts, and the script refuses to build if they disagree (with the
  December 2024 data none do).
- **`bank_holidays.csv`**: dates and English titles, substitute days
  included. GOV.UK may change future years; refresh before relying on them.

- **`children_services.csv`** and **`force_contacts.csv`**: the national
  directories (routing.md, "Reach everywhere"): one row per upper-tier
  authority ({n_cs}: every E06, E08, E09, E10 and W06 of the ONS upper-tier
  table) and per force area ({n_fc}), columns
  `code,name,transport,address,out_of_hours_address,secret_file,dsa`. Codes
  and names come from ONS; the other columns are the operator's to fill and
  ship empty, except the demo's own Berkshire authorities (E06000036 to
  E06000041), whose rows reach the demo's SMTP server. A rule's recipient id
  `children_services:CODE` or `force:CODE` that the config's `recipients`
  does not declare is resolved through its row here; a row with an empty
  `transport` leaves that id unroutable (its notifications wait in the
  unroutable queue, and `yjlinkctl recipients --missing` names it).
  - `transport`: empty, `email` or `webhook`.
  - `address`: email: the address; webhook: the URL.
  - `out_of_hours_address`: email only: a second address told as well
    (emergency duty team), empty for none.
  - `secret_file`: webhook only: the 0600 file holding the signing key,
    relative to the directory this table is read from (`reference.dir`).
  - `dsa`: the data sharing agreement, `ID` or `ID@YYYY-MM-DD` with its
    review date (e.g. `DSA-TVP-CS-001@2027-03-31`); shown in `yjlinkctl
    status` and warned about from 30 days before review. The CSV reader
    takes no comment lines, so the format is documented here.
  Rows stay in code order; the script fills the demo rows, an operator edits
  a copy in `reference.dir` (which replaces every table, these two too).

The upstream files were obtained as follows (details in SOURCES.md):

- ONS "LAD to Community Safety Partnership to PFA (December 2024) Lookup in
  EW" (`LAD24_CSP24_PFA24_EW_LU`): decoded from `humaniverse/geographr`
  `data/lookup_ltla24_csp24_pfa24.rda` at commit
  `92773a3b7bc9406f097537e878606c17ce0b0a22` (repository HEAD
  `c026be5cc76cb576358082b53f1f13d69ab577ae`), checked against the verbatim
  copy in `DGBihari/CBL` `csv/lad_to_pfa_lookup.csv` at commit
  `631f92cb847fad4117f82ff5ac6220e10d91ca0a`. The LAD to PFA and PFA names
  files are derived from it.
- ONS "Lower Tier Local Authority to Upper Tier Local Authority (April 2023)
  Lookup in EW" (`LTLA23_UTLA23_EW_LU`): decoded from `humaniverse/geographr`
  `data/lookup_ltla23_utla23.rda` at commit
  `c5fb617c7ece85f0857d9c9f14ad6c5812dc87b0` (repository HEAD
  `c026be5cc76cb576358082b53f1f13d69ab577ae`). Its LAD codes and names are
  identical to the LAD24 ones. The upper-tier list is derived from it.
- GOV.UK bank holidays: `alphagov/frontend` `lib/data/bank-holidays.json` at
  commit `609b0436da9f86b51e69262a95874b7ff3d3b712` (repository HEAD
  `cb2a016d32f0ed07253a65eec38e357bc22195f1`, `last_updated` 24/11/2025),
  English titles from `config/locales/en.yml` at that HEAD.

SHA-256 of the input files this build read:

```
{hashes}
```

## Hand-built tables

- **`outcomes.csv`** ({n_outcomes} rows) is hand-built by the script from the
  published names of the Home Office crime outcome types (outcomes 1 to 22)
  in "Crime outcomes in England and Wales: technical annex", Table A1
  (https://www.gov.uk/government/statistics/crime-outcomes-in-england-and-wales-2023-to-2024/crime-outcomes-in-england-and-wales-technical-annex);
  no machine-readable authoritative list was found. Codes are integers (1A is
  reported as 1). `valid_from` is a deliberately early date (2013-04-01 for
  1 to 19, when the outcomes framework began; 2014-04-01 for 20, 2016-01-01
  for 21, 2019-04-01 for 22); `valid_to` is empty while a code is in use;
  `table_version` is `{outcome_version}`. The list of outcome types changes over
  time: operators extend this table (a new row, a new `table_version`, and
  `valid_to` on retired codes) when the Home Office announces new codes.
  `applies_to_children` is `no` for the codes that cannot be a child's
  outcome, from the definitions of the Home Office crime outcomes framework
  (Home Office Counting Rules for Recorded Crime, and Table A1 above): 3
  (adult caution: for those aged 18 and over, children receive youth
  cautions, Crime and Disorder Act 1998 s.66ZA), 6 (penalty notice for
  disorder) and 7 (cannabis/khat warning), out-of-court disposals for
  adults, and 11 (prosecution prevented: the named suspect is below the age
  of criminal responsibility, 10, Children and Young Persons Act 1933 s.50);
  `yes` for every other code. An outcome with a `no` code is stored, flagged
  in the digest and counted as a data-quality issue, not refused.
- **`ethnicity.csv`** ({n_eth} rows) is hand-built: the police self-defined
  ethnicity codes of the 16+1 (2001 census), 18+1 (2011 census) and 2021
  census sets, with the census sets that use each code. Labels follow the
  2021 wording where the code exists in 2021.
- **`custody_suites.csv`** ({n_suites} rows) is **demo data, not an
  authoritative list** of custody suites: illustrative suites for Thames
  Valley Police (the demo deployment) and its neighbouring forces, each with
  the upper-tier authority it stands in. Operators must replace it with their
  own suites and the ids their custody systems send.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=os.path.join(REPO, "tools", "refdata-sources"),
                    help="folder holding the ONS and GOV.UK files (default tools/refdata-sources, "
                         "a copy of the project's shared data folder)")
    ap.add_argument("--out", default=os.path.join(REPO, "conf", "ref"), help="output folder (default conf/ref)")
    args = ap.parse_args()
    data = os.path.normpath(args.data)
    out = args.out

    try:
        forces = build_forces(data)
        las = build_las(data, forces)
        bank = build_bank_holidays(data)
        eth = check_ethnicity()
        outcomes = build_outcomes()
        suites = build_suites(forces, las)
        utla = read_utla_names(data)
        children_services = build_directory("children_services", utla, CHILDREN_SERVICES_DEMO)
        force_contacts = build_directory("force_contacts", forces, FORCE_CONTACTS_DEMO)
    except (DataError, OSError, KeyError) as e:
        print("build-refdata: %s" % e, file=sys.stderr)
        return 1

    os.makedirs(out, exist_ok=True)
    n = {}
    n["forces"] = write_csv(os.path.join(out, "forces.csv"), ["code", "name"], sorted(forces.items()))
    n["las"] = write_csv(os.path.join(out, "local_authorities.csv"),
                         ["code", "name", "tier", "upper_code", "force"], las)
    n["bank"] = write_csv(os.path.join(out, "bank_holidays.csv"), ["date", "title"], bank)
    n["eth"] = write_csv(os.path.join(out, "ethnicity.csv"), ["code", "label", "census"], eth)
    n["outcomes"] = write_csv(os.path.join(out, "outcomes.csv"),
                              ["code", "name", "valid_from", "valid_to", "table_version", "applies_to_children"],
                              outcomes)
    n["suites"] = write_csv(os.path.join(out, "custody_suites.csv"), ["id", "name", "force", "la"], suites)
    n["cs"] = write_csv(os.path.join(out, "children_services.csv"), DIRECTORY_COLUMNS, children_services)
    n["fc"] = write_csv(os.path.join(out, "force_contacts.csv"), DIRECTORY_COLUMNS, force_contacts)

    hashes = "\n".join("%s  %s" % (sha256(os.path.join(data, f)), f) for f in INPUTS)
    text = ATTRIBUTION.format(
        n_forces=n["forces"], n_las=n["las"], n_bank=n["bank"], n_eth=n["eth"], n_outcomes=n["outcomes"],
        n_suites=n["suites"], n_cs=n["cs"], n_fc=n["fc"], n_lad=sum(1 for r in las if not r[0].startswith("E10")),
        n_e10=sum(1 for r in las if r[0].startswith("E10")), outcome_version=OUTCOME_VERSION, hashes=hashes,
        IN_PFA=IN_PFA, IN_LAD_PFA=IN_LAD_PFA, IN_LAD_CSP_PFA=IN_LAD_CSP_PFA, IN_LTLA_UTLA=IN_LTLA_UTLA,
        IN_UTLA=IN_UTLA, IN_BANK=IN_BANK)
    tmp = os.path.join(out, "ATTRIBUTION.md.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, os.path.join(out, "ATTRIBUTION.md"))

    for k in ("forces", "las", "suites", "outcomes", "eth", "bank", "cs", "fc"):
        print("%-9s %d rows" % (k, n[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
