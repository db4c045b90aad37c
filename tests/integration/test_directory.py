"""The national directories (routing.md "Reach everywhere") and data sharing
agreements ("Legal basis wording") against the real daemon, with a real SMTP
server and a real HTTP receiver.

The daemon runs the shipped config with `reference.dir` pointing at this
test's copy of conf/ref (a reference.dir replaces every table, so the copy
holds all of them) in which a few directory rows are filled: a looked-after
child whose responsible authority the config does not declare reaches that
authority through its row; an empty row leaves the id unroutable and named
by `yjlinkctl recipients --missing` and by `--check`'s warnings."""
import csv
import datetime
import email
import email.policy
import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

REF = os.path.join(yjtest.SOURCE, "conf", "ref")
DATA = os.environ.get("YJ_SHARED_DATA", os.path.join(yjtest.SOURCE, "tools", "refdata-sources"))
SOON = (datetime.date.today() + datetime.timedelta(days=10)).isoformat()
WEBHOOK_SECRET = "directory-test-secret"


def read_rows(path):
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path, rows):
    cols = ["code", "name", "transport", "address", "out_of_hours_address", "secret_file", "dsa"]
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, cols, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def fill(path, code, **cols):
    rows = read_rows(path)
    hit = [r for r in rows if r["code"] == code]
    assert hit, code
    hit[0].update(cols)
    write_rows(path, rows)


def child_event(responsible=None, home="E06000042", status="detained"):
    ev = yjtest.custody_event()
    ev["child"]["home_la"] = home
    if responsible:
        ev["child"]["looked_after"] = True
        ev["child"]["responsible_la"] = responsible
    ev["custody"]["status"] = status
    return ev


class DirectoryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.http = HttpReceiver().start()
        cls.smtp = SmtpReceiver().start()
        cls.dir = tempfile.mkdtemp(prefix="yjdir-")
        cls.ref = os.path.join(cls.dir, "ref")
        os.mkdir(cls.ref)
        for f in glob.glob(os.path.join(REF, "*.csv")):
            shutil.copy(f, cls.ref)
        cs = os.path.join(cls.ref, "children_services.csv")
        fc = os.path.join(cls.ref, "force_contacts.csv")
        # Nottingham: email, with an out-of-hours address and a DSA due in 10 days.
        fill(cs, "E06000018", transport="email", address="cs@nottingham.example",
             out_of_hours_address="edt@nottingham.example", dsa="DSA-NOTTS-7@" + SOON)
        # Herefordshire: webhook with its key in a 0600 file beside the table.
        key = os.path.join(cls.ref, "hereford.key")
        with open(key, "w") as f:
            f.write(WEBHOOK_SECRET + "\n")
        os.chmod(key, 0o600)
        fill(cs, "E06000019", transport="webhook", address=cls.http.url.rstrip("/") + "/dir/E06000019",
             secret_file="hereford.key", dsa="DSA-HFD-2")
        # Milton Keynes is declared in the config (a webhook): its row must not win.
        fill(cs, "E06000042", transport="email", address="directory-mk@example.invalid")
        # Hampshire Constabulary, for out_of_area_force.
        fill(fc, "E23000030", transport="email", address="yjs@hampshire.example", dsa="DSA-HANTS-1@2030-01-31")
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read()
        cls.conf = os.path.join(cls.dir, "yjlinkd.conf")
        with open(cls.conf, "w") as f:
            f.write(text.replace("http://127.0.0.1:8088", cls.http.url.rstrip("/")))
        cls.daemon = yjtest.Daemon(workdir=cls.dir, config=cls.conf, sets={
            "email.smtp_url": "smtp://127.0.0.1:%d" % cls.smtp.port,
            "reference.dir": cls.ref,
            "delivery.backoff_min_ms": "50",
            "delivery.backoff_max_ms": "200",
        }).start()
        cls.feed = yjtest.Feed(cls.daemon.ingest)

    @classmethod
    def tearDownClass(cls):
        cls.feed.close()
        cls.daemon.kill()
        cls.http.stop()
        cls.smtp.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    # --- helpers ---

    def send(self, ev):
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"OK", r)
        return int(r[3])

    def mails_about(self, seq):
        out = []
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            text = msg.get_body(preferencelist=("plain",)).get_content()
            if re.search(r"^event\.seq: %d\r?$" % seq, text, re.M):
                out.append((sorted(m["rcpt_tos"]), msg, text))
        return out

    def hooks_about(self, seq):
        return [(r["path"], json.loads(r["body"])) for r in self.http.snapshot()
                if r.get("status") == 200 and json.loads(r["body"]).get("event", {}).get("seq") == seq]

    def wait(self, fn, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.05)
        self.fail("nothing arrived:\n" + self.daemon.read_log()[-3000:])

    def ctl_json(self, *args):
        code, out, _ = self.daemon.ctl("--json", *args)
        return json.loads(out)

    def audit(self):
        return self.ctl_json("audit")["records"]

    def check(self, ref):
        return subprocess.run([yjtest.YJLINKD, "--config", self.conf, "--set", "reference.dir=" + ref, "--set",
                               "store.path=" + os.path.join(self.dir, "nostore"), "--check"],
                              capture_output=True, text=True, timeout=60)

    # --- delivery through the directory ---

    def test_looked_after_child_reaches_directory_authority_by_email(self):
        seq = self.send(child_event(responsible="E06000018"))
        got = self.wait(lambda: [m for m in self.mails_about(seq) if "cs@nottingham.example" in m[0]])
        rcpts, msg, text = got[0]
        # Both addresses of the row, in one message.
        self.assertEqual(rcpts, ["cs@nottingham.example", "edt@nottingham.example"])
        self.assertIn("lac_in_custody", msg["Subject"])
        # The default children's services allowlist: no offences, no PNC id.
        self.assertNotIn("pnc_id", text)
        self.assertNotIn("offences", text)
        rec = self.wait(lambda: [a for a in self.audit() if a["action"] == "disclosure"
                                 and a["recipient"] == "children_services:E06000018" and seq in a["seqs"]])
        self.assertEqual(rec[0]["dsa"], "DSA-NOTTS-7")
        self.assertEqual(rec[0]["rule"], "lac_in_custody")
        self.assertIn("cs@nottingham.example", rec[0]["address"])
        # The hash chain covers the new field: verify still passes.
        self.daemon.ctl("audit", "verify")
        code, out, _ = self.daemon.ctl("audit")
        self.assertIn("DSA-NOTTS-7", out)

    def test_directory_webhook_row_is_signed_with_its_secret_file(self):
        seq = self.send(child_event(responsible="E06000019"))
        # The L&D service hears of the same event: only the directory row's hook is looked at.
        got = self.wait(lambda: [h for h in self.hooks_about(seq) if "/dir/" in h[0]])
        path, body = got[0]
        self.assertTrue(path.endswith("/dir/E06000019"), path)
        self.assertEqual(body["recipient"], "children_services:E06000019")
        self.assertEqual(body["kind"], "lac_in_custody")
        self.assertNotIn("pnc_id", body["event"].get("child", {}))
        entry = [r for r in self.http.snapshot() if r["path"].endswith("/dir/E06000019")][0]
        self.assertTrue(self.http.verify_signature(WEBHOOK_SECRET, entry))

    def test_config_comes_before_the_directory(self):
        seq = self.send(child_event(responsible="E06000042"))
        got = self.wait(lambda: [h for h in self.hooks_about(seq) if h[0].endswith("/children-services/E06000042")])
        self.assertEqual(got[0][1]["recipient"], "children_services:E06000042")
        time.sleep(0.5)
        self.assertFalse([m for m in self.mails_about(seq) if "directory-mk@example.invalid" in m[0]])
        rec = self.wait(lambda: [a for a in self.audit() if a["action"] == "disclosure"
                                 and a["recipient"] == "children_services:E06000042" and seq in a["seqs"]])
        self.assertEqual(rec[0]["dsa"], "DSA-TVP-CS-001")

    def test_other_force_reached_through_force_contacts(self):
        seq = self.send(child_event(home="E06000045"))  # Southampton: Hampshire's area
        got = self.wait(lambda: [m for m in self.mails_about(seq) if "yjs@hampshire.example" in m[0]])
        self.assertIn("out_of_area_force", got[0][1]["Subject"])
        # The force allowlist carries offences and the PNC id, as the config's force recipient does.
        rec = self.wait(lambda: [a for a in self.audit() if a["action"] == "disclosure"
                                 and a["recipient"] == "force:E23000030" and seq in a["seqs"]])
        self.assertEqual(rec[0]["dsa"], "DSA-HANTS-1")
        self.assertIn("child.pnc_id", rec[0]["fields"])

    # --- who nobody reaches ---

    def test_empty_row_stays_unroutable_and_is_missing(self):
        seq = self.send(child_event(responsible="E06000001"))  # Hartlepool: row empty
        unr = self.wait(lambda: [n for n in self.ctl_json("outbox")["unroutable"]
                                 if n["recipient"] == "children_services:E06000001" and n["seq"] == seq])
        self.assertEqual(unr[0]["rule"], "lac_in_custody")
        rc = {r["id"]: r for r in self.ctl_json("recipients")["recipients"]}
        self.assertEqual(rc["children_services:E06000001"]["transport"], "none")
        self.assertGreaterEqual(rc["children_services:E06000001"]["unroutable"], 1)
        self.assertIn("unroutable", rc["children_services:E06000001"]["state"])
        self.assertEqual(rc["children_services:E06000018"]["source"], "directory")
        self.assertEqual(rc["children_services:E06000018"]["transport"], "email")
        self.assertEqual(rc["children_services:E06000018"]["dsa"], "DSA-NOTTS-7")
        self.assertEqual(rc["children_services:E06000038"]["source"], "directory")  # shipped Berkshire row
        self.assertEqual(rc["children_services:E06000042"]["source"], "config")
        self.assertEqual(rc["children_services:E06000042"]["transport"], "webhook")
        self.assertEqual(rc["yjs:milton-keynes"]["kind"], "yjs")

        m = self.ctl_json("recipients", "--missing")
        ids = {e["id"]: e for e in m["missing"]}
        self.assertEqual(ids["children_services:E06000001"]["name"], "Hartlepool")
        self.assertGreaterEqual(ids["children_services:E06000001"]["unroutable"], 1)
        for reached in ("children_services:E06000018", "children_services:E06000019", "children_services:E06000042",
                        "children_services:E06000038", "force:E23000030", "force:E23000001", "force:E23000029"):
            self.assertNotIn(reached, ids)
        self.assertIn("force:E23000002", ids)
        # 175 authorities less 5 in the config, 6 shipped Berkshire rows and 2 filled here;
        # 43 forces less this one, the Met (config) and Hampshire (filled here).
        self.assertEqual(m["count"], 175 - 5 - 6 - 2 + 43 - 3)
        self.assertEqual(len(m["missing"]), m["count"])
        code, out, _ = self.daemon.ctl("recipients", "--missing")
        self.assertIn("children_services:E06000001", out)
        self.assertIn("Hartlepool", out)
        code, out, _ = self.daemon.ctl("recipients")
        self.assertRegex(out, r"children_services:E06000018\s+children_services\s+email\s+directory")

    def test_check_warns_but_passes(self):
        p = self.check(self.ref)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration OK", p.stdout)
        self.assertRegex(p.stderr, r"warning: %d local authorities.*E06000001.*yjlinkctl recipients --missing"
                         % (175 - 13))
        self.assertRegex(p.stderr, r"warning: 40 forces.*E23000002")
        self.assertRegex(p.stderr, r"children_services\.csv:\d+: warning: recipient 'children_services:E06000018': "
                         r"data sharing agreement DSA-NOTTS-7 is due for review on %s \(in 10 days\)" % SOON)
        # Not warned: a review years away.
        self.assertNotIn("DSA-HANTS-1", p.stderr)

    def test_start_log_warns_about_the_dsa(self):
        self.assertIn("DSA-NOTTS-7 is due for review on %s" % SOON, self.daemon.read_log())

    def test_bad_rows_are_errors_naming_file_and_line(self):
        bad = os.path.join(self.dir, "badref")
        shutil.copytree(self.ref, bad)
        cs = os.path.join(bad, "children_services.csv")
        fill(cs, "E06000002", transport="pigeon", address="loft 3")
        fill(cs, "E06000003", transport="", address="orphan@example.invalid")
        fill(cs, "E06000004", transport="email", address="a@example.invalid", dsa="no spaces allowed@2027-13-01")
        p = self.check(bad)
        self.assertEqual(p.returncode, 1, p.stderr)
        line = {r["code"]: i for i, r in enumerate(read_rows(cs), start=2)}
        self.assertIn("children_services.csv:%d: E06000002: unknown transport 'pigeon'" % line["E06000002"], p.stderr)
        self.assertIn("children_services.csv:%d: E06000003: an address or secret_file but no transport"
                      % line["E06000003"], p.stderr)
        self.assertIn("children_services.csv:%d: E06000004: dsa" % line["E06000004"], p.stderr)
        # A reference.dir replaces every table: one without the directories is refused.
        os.unlink(os.path.join(bad, "force_contacts.csv"))
        p = self.check(bad)
        self.assertEqual(p.returncode, 1)
        self.assertIn("force_contacts.csv: cannot open", p.stderr)

    def test_status_shows_each_dsa(self):
        st = self.ctl_json("status")
        notts = st["dsa"]["DSA-NOTTS-7"]
        self.assertEqual(notts["review"], SOON)
        self.assertEqual(notts["days_left"], 10)
        self.assertEqual(notts["recipients"], ["children_services:E06000018"])
        self.assertIn("warning", notts)
        cs = st["dsa"]["DSA-TVP-CS-001"]
        self.assertEqual(cs["review"], "2027-03-31")
        self.assertIn("children_services:E06000042", cs["recipients"])  # config
        self.assertIn("children_services:E06000038", cs["recipients"])  # shipped directory row
        self.assertEqual(st["dsa"]["DSA-HFD-2"]["review"], "")
        code, out, _ = self.daemon.ctl("status")
        self.assertIn("DSA-NOTTS-7", out)
        self.assertIn("days_left: 10", out)

    def test_z_reload_fills_a_row_and_the_waiting_notification_goes(self):
        seq = self.send(child_event(responsible="E06000005"))  # Darlington: row empty
        self.wait(lambda: [n for n in self.ctl_json("outbox")["unroutable"] if n["seq"] == seq])
        before = self.ctl_json("recipients", "--missing")["count"]
        fill(os.path.join(self.ref, "children_services.csv"), "E06000005", transport="email",
             address="cs@darlington.example")
        self.daemon.ctl("reload")
        got = self.wait(lambda: [m for m in self.mails_about(seq) if "cs@darlington.example" in m[0]])
        self.assertIn("lac_in_custody", got[0][1]["Subject"])
        after = self.ctl_json("recipients", "--missing")
        self.assertEqual(after["count"], before - 1)
        self.assertNotIn("children_services:E06000005", [e["id"] for e in after["missing"]])


class ShippedDirectoryTest(unittest.TestCase):
    """conf/ref's directories hold exactly the ONS authorities and forces,
    and the build script makes them again byte for byte."""

    def test_children_services_are_the_ons_upper_tier_authorities(self):
        ons = {r["UTLA23CD"]: r["UTLA23NM"] for r in read_rows(os.path.join(DATA,
                                                                          "ons_utla23_upper_tier_authorities_ew.csv"))}
        rows = read_rows(os.path.join(REF, "children_services.csv"))
        self.assertEqual({r["code"]: r["name"] for r in rows}, ons)
        self.assertEqual(len(rows), len(ons))
        self.assertEqual([r["code"] for r in rows], sorted(ons))
        # Every upper-tier authority of local_authorities.csv, and nothing else.
        upper = {r["code"] for r in read_rows(os.path.join(REF, "local_authorities.csv")) if r["tier"] == "upper"}
        self.assertEqual(set(ons), upper)
        filled = {r["code"] for r in rows if r["transport"]}
        self.assertEqual(filled, {"E06000036", "E06000037", "E06000038", "E06000039", "E06000040", "E06000041"})

    def test_force_contacts_are_the_ons_force_areas(self):
        ons = {r["PFA24CD"]: r["PFA24NM"] for r in read_rows(os.path.join(DATA, "ons_pfa24_names_codes_ew.csv"))}
        rows = read_rows(os.path.join(REF, "force_contacts.csv"))
        self.assertEqual({r["code"]: r["name"] for r in rows}, ons)
        self.assertEqual(len(rows), 43)
        self.assertEqual([r["code"] for r in rows], sorted(ons))

    def test_build_script_is_deterministic(self):
        out = tempfile.mkdtemp(prefix="yjref-")
        try:
            subprocess.run([sys.executable, os.path.join(yjtest.SOURCE, "tools", "build-refdata.py"), DATA,
                            "--out", out], check=True, capture_output=True, timeout=120)
            for name in ("children_services.csv", "force_contacts.csv", "ATTRIBUTION.md"):
                with open(os.path.join(out, name), "rb") as a, open(os.path.join(REF, name), "rb") as b:
                    self.assertEqual(a.read(), b.read(), name)
        finally:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
