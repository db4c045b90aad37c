"""Operations: reload takes new rules and recipients without dropping a
connection and refuses a bad config; SIGTERM under load loses nothing
acknowledged and exits 0; personal-data commands need --reason and are
audited with the caller's uid; every yjlinkctl command answers --json with
the documented exit codes (interfaces.md §6, §7)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import yjtest
from http_receiver import HttpReceiver

BASE = """
deployment = { id = "ops"; name = "Ops test"; force = "E23000029"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "MK YJS"; local_authorities = [ "E06000042" ];
    transport = "none"; allow = [ "child.*" ]; }%(extra)s
);
rules = (
  { id = "lac_in_custody"; feeds = [ "custody" ]; looked_after = true;
    recipient = "children_services:responsible_la"; mode = "immediate"; }
);
"""

LEEDS = """,
  { id = "children_services:E08000035"; kind = "children_services"; name = "Leeds";
    local_authority = "E08000035"; transport = "webhook";
    webhook = { url = "%s"; secret = "s3"; }; allow = [ "child.person_id", "custody.status" ]; }"""


class ReloadTest(unittest.TestCase):

    def setUp(self):
        self.http = HttpReceiver().start()
        self.dir = tempfile.mkdtemp(prefix="yjops-")
        self.conf = os.path.join(self.dir, "y.conf")
        self.write(BASE % {"extra": ""})
        self.d = yjtest.Daemon(workdir=self.dir, config=self.conf).start()

    def tearDown(self):
        self.d.cleanup()
        self.http.stop()

    def write(self, text):
        with open(self.conf, "w") as f:
            f.write(text)

    def lac(self):
        ev = yjtest.custody_event()
        ev["child"]["looked_after"] = True
        ev["child"]["responsible_la"] = "E08000035"
        return ev

    def test_reload_good_then_bad(self):
        feed = yjtest.Feed(self.d.ingest)
        r = feed.request("custody", self.lac())
        self.assertEqual(r[1], b"OK")
        _, st = self.d.ctl_request("status")
        self.assertEqual(st["delivery"]["unroutable"], 1)
        # Add Leeds's children's services: the waiting notification goes out.
        self.write(BASE % {"extra": LEEDS % self.http.url})
        self.d.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.http.wait_for(1, timeout=10), self.d.read_log())
        body = json.loads(self.http.received[0]["body"])
        self.assertEqual(body["recipient"], "children_services:E08000035")
        self.assertEqual(set(body["event"]) - {"seq", "feed", "stored_at"}, {"child", "custody"})
        # The same connection still works after the reload.
        r = feed.request("custody", self.lac())
        self.assertEqual(r[1], b"OK")
        self.assertTrue(self.http.wait_for(2, timeout=10))
        # A bad config is refused with FILE:LINE, the old one stays in force.
        self.write(BASE % {"extra": LEEDS % self.http.url} + "\nbogus = 1;\n")
        code, out, err = self.d.ctl("reload", check=False)
        self.assertEqual(code, 1)
        self.assertIn("y.conf:", err)
        _, st = self.d.ctl_request("status")
        self.assertIn("reload_refused", st["deployment"])
        r = feed.request("custody", self.lac())
        self.assertEqual(r[1], b"OK")
        self.assertTrue(self.http.wait_for(3, timeout=10))
        self.assertIn("unknown setting 'bogus'", self.d.read_log())
        feed.close()
        # Each reload in force is audited: who, the config's hash, what changed;
        # the refused one is not (nothing changed).
        code, out, _ = self.d.ctl("--json", "audit")
        reloads = [r for r in json.loads(out)["records"] if r["action"] == "reload"]
        self.assertEqual(len(reloads), 1, reloads)
        self.assertEqual(reloads[0]["actor"], "signal:SIGHUP")
        self.assertRegex(reloads[0]["reason"], r"^config [0-9a-f]{64} from .*y\.conf; sections changed: recipients")
        self.write(BASE % {"extra": LEEDS % self.http.url})
        self.d.ctl("reload")
        code, out, _ = self.d.ctl("--json", "audit")
        reloads = sorted((r for r in json.loads(out)["records"] if r["action"] == "reload"), key=lambda r: r["number"])
        self.assertEqual(len(reloads), 2, reloads)
        self.assertEqual(reloads[1]["actor"], "uid:%d" % os.getuid())
        self.assertTrue(reloads[1]["reason"].endswith("sections changed: none"), reloads[1])


class StopTest(unittest.TestCase):

    def test_sigterm_under_load_loses_nothing(self):
        d = yjtest.Daemon().start()
        try:
            acks = os.path.join(d.dir, "acks")
            argv = [yjtest.YJLINK_SIM, "--endpoint", d.ingest, "--seed", "9", "--now", "2026-11-20T12:00:00Z",
                    "--days", "10", "--per-day", "3000", "--count", "30000", "--acks", acks, "--timeout", "5",
                    "--no-retry", "--quiet"]
            sim = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(0.4)
            code = d.stop()
            self.assertEqual(code, 0, d.read_log())
            sim.communicate(timeout=60)
            oks = {}
            with open(acks) as f:
                for line in f:
                    parts = line.split()  # STATUS SEQ-or-detail SOURCE_ID; a RETRY detail has spaces
                    if parts[0] == "OK":
                        oks[parts[-1]] = parts[1]
            self.assertTrue(oks)
            d.start()
            argv2 = [a if a != acks else acks + "2" for a in argv]
            argv2.remove("--no-retry")
            sim = subprocess.run(argv2, capture_output=True, text=True, timeout=300)
            self.assertEqual(sim.returncode, 0, sim.stdout)
            again = {}
            with open(acks + "2") as f:
                for line in f:
                    parts = line.split()
                    again[parts[-1]] = (parts[0], parts[1])
            for sid, seq in oks.items():
                self.assertEqual(again[sid], ("DUP", seq))
        finally:
            d.cleanup()


class OneDaemonPerStoreTest(unittest.TestCase):
    """A second yjlinkd on a store another one holds exits non-zero at start,
    saying so; the first goes on serving."""

    def test_second_daemon_refused(self):
        first = yjtest.Daemon().start()
        try:
            second = yjtest.Daemon(workdir=first.dir)
            second.sets["store.path"] = first.store
            p = subprocess.run(second.argv(), capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("in use by another process (pid %d)" % first.proc.pid, p.stderr)
            feed = yjtest.Feed(first.ingest)
            self.assertEqual(feed.request("custody", yjtest.custody_event())[1], b"OK")
            feed.close()
            # Once the first has stopped, the store is free again.
            self.assertEqual(first.stop(), 0)
            again = yjtest.Daemon(workdir=tempfile.mkdtemp(prefix="yjops-"))
            again.sets["store.path"] = first.store
            try:
                again.start()
                code, body = again.ctl_request("status")
                self.assertEqual((code, body["store"]["events"]), (0, 1))
            finally:
                again.kill()
                shutil.rmtree(again.dir, ignore_errors=True)
        finally:
            first.cleanup()


class CtlTest(yjtest.DaemonTest):

    def send_one(self):
        feed = yjtest.Feed(self.daemon.ingest)
        try:
            return int(feed.request("custody", yjtest.custody_event())[3])
        finally:
            feed.close()

    def test_exit_codes_and_json(self):
        seq = self.send_one()
        for args in (["status"], ["events"], ["outbox"], ["dlq", "list"], ["holds", "list"], ["quarantine", "list"],
                     ["audit"], ["audit", "verify"], ["show", str(seq), "--reason", "ops test"]):
            code, out, err = self.daemon.ctl("--json", *args, check=False)
            self.assertEqual(code, 0, (args, err))
            json.loads(out)
        for args, want in ((["show"], 2), (["show", str(seq)], 2), (["bogus"], 2), (["dlq", "retry"], 2),
                           (["show", "99999999", "--reason", "x"], 1), (["holds", "release", str(seq), "--by", "x",
                                                                         "--reason", "y"], 1),
                           (["replay"], 2), (["digest", "preview", "yjs:nobody", "--reason", "x"], 1)):
            code, out, err = self.daemon.ctl(*args, check=False)
            self.assertEqual(code, want, (args, out, err))
        code, out, err = subprocess.run([yjtest.YJLINKCTL, "--control", "ipc:///nonexistent/x.sock", "--timeout", "1",
                                         "status"], capture_output=True, text=True).returncode, None, None
        self.assertEqual(code, 1)

    def test_quarantine_drop_and_purge_dry_run(self):
        feed = yjtest.Feed(self.daemon.ingest)
        r = feed.request("custody", b"{broken")
        feed.close()
        self.assertEqual(r[1], b"REJECT")
        code, out, _ = self.daemon.ctl("--json", "quarantine", "list", "--limit", "1")
        qid = json.loads(out)["entries"][0]["id"]
        code, _, _ = self.daemon.ctl("quarantine", "drop", str(qid), check=False)
        self.assertEqual(code, 2)
        self.daemon.ctl("quarantine", "drop", str(qid), "--reason", "test input, not a real message")
        code, _, _ = self.daemon.ctl("quarantine", "show", str(qid), "--reason", "x", check=False)
        self.assertEqual(code, 1)
        code, out, _ = self.daemon.ctl("--json", "audit")
        erasures = [a for a in json.loads(out)["records"] if a["action"] == "erasure"]
        self.assertTrue(erasures)
        self.assertNotIn("broken", json.dumps(erasures))
        code, out, _ = self.daemon.ctl("--json", "purge", "--dry-run")
        body = json.loads(out)
        self.assertEqual(body["events"], 0)   # everything here is new
        self.assertIn("events_stored_before", body)

    def test_consultation_is_audited_with_uid(self):
        seq = self.send_one()
        self.daemon.ctl("show", str(seq), "--reason", "checking a safeguarding referral")
        code, out, _ = self.daemon.ctl("--json", "audit")
        recs = [r for r in json.loads(out)["records"] if r["action"] == "consultation" and seq in r["seqs"]]
        self.assertEqual(len(recs), 1)
        self.assertEqual(recs[0]["actor"], "uid:%d" % os.getuid())
        log = self.daemon.read_log()
        self.assertNotIn("Alex", log)
        self.assertNotIn("Example", log)


class StoreModeTest(unittest.TestCase):
    """A store directory others can write is refused at start: they could
    swap its files (quality.md "Security": the store is 0700)."""

    def test_world_writable_store_refused(self):
        d = yjtest.Daemon()
        try:
            os.mkdir(d.store)
            os.chmod(d.store, 0o777)
            p = subprocess.run(d.argv(), capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("writable by group or others (mode 0777): chmod 700", p.stderr)
            os.chmod(d.store, 0o700)
            d.start()
            code, _, err = d.ctl("status")
            self.assertEqual(code, 0, err)
        finally:
            d.cleanup()


class ControlSocketTest(unittest.TestCase):
    """The control socket is a socket file, mode 0660: a local user outside
    its owner and group cannot connect (quality.md "Security")."""

    def test_mode_and_a_user_outside_the_group(self):
        d = yjtest.Daemon()
        # A directory anyone may enter: only the socket's own mode keeps them out.
        sock_dir = os.path.join(d.dir, "run")
        os.mkdir(sock_dir)
        os.chmod(d.dir, 0o755)
        os.chmod(sock_dir, 0o755)
        d.control = "ipc://%s/control.sock" % sock_dir
        d.sets["control.endpoint"] = d.control
        d.start()
        try:
            path = d.control[len("ipc://"):]
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o660)
            code, out, err = d.ctl("status")
            self.assertEqual(code, 0, err)
            p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", yjtest.YJLINKCTL,
                                "--control", d.control, "--timeout", "2", "status"],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertNotIn("uptime", p.stdout)
        finally:
            d.cleanup()


class ConsultationTest(yjtest.DaemonTest):
    """Every consultation of personal data names a reason and is audited
    with the caller (DPA 2018 s.62); a blank reason is no reason."""

    def setUp(self):
        self.feed = yjtest.Feed(self.daemon.ingest)

    def tearDown(self):
        self.feed.close()

    def send(self):
        ev = yjtest.custody_event()
        r = self.feed.request("custody", ev)
        self.assertEqual(r[1], b"OK", r)
        return ev, int(r[3])

    def consultations(self):
        code, out, _ = self.daemon.ctl("--json", "audit")
        return [r for r in json.loads(out)["records"] if r["action"] == "consultation"]

    def test_collection_is_audited_per_commit(self):
        evs = [yjtest.custody_event() for _ in range(3)]
        for ev in evs:
            self.feed.send("custody", ev)
        seqs = [int(self.feed.recv()[3]) for _ in evs]
        code, out, _ = self.daemon.ctl("--json", "audit")
        recs = [r for r in json.loads(out)["records"] if r["action"] == "collection"]
        covered = set()
        for r in recs:
            lo, hi = r["seqs"]
            covered |= set(range(lo, hi + 1))
            self.assertEqual(r["feeds"], ["custody"])
            self.assertRegex(r["reason"], r"^stored \d+ events, seqs \d+-\d+: custody \d+; from yjl1 \d+")
        self.assertTrue(set(seqs) <= covered, (seqs, recs))
        # Metadata only: no name, no person id.
        text = json.dumps(recs)
        for ev in evs:
            self.assertNotIn(ev["child"]["person_id"], text)

    def test_blank_reason_refused(self):
        _, seq = self.send()
        for blank in ("", " ", "  \t "):
            code, _, err = self.daemon.ctl("show", str(seq), "--reason", blank, check=False)
            self.assertEqual(code, 2, (blank, err))

    def test_child_history_needs_a_reason_and_is_audited(self):
        ev, seq = self.send()
        person = ev["child"]["person_id"]
        code, _, err = self.daemon.ctl("events", "--child", person, check=False)
        self.assertEqual(code, 2, err)
        code, out, _ = self.daemon.ctl("--json", "events", "--child", person, "--reason", "section 47 enquiry")
        self.assertEqual([e["seq"] for e in json.loads(out)["events"]], [seq])
        recs = [r for r in self.consultations() if r["reason"].startswith("events --child")]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["seqs"], [seq])
        self.assertEqual(recs[0]["actor"], "uid:%d" % os.getuid())
        self.assertIn("section 47 enquiry", recs[0]["reason"])
        # The subject-access view too.
        code, _, err = self.daemon.ctl("audit", "--child", person, check=False)
        self.assertEqual(code, 2, err)
        self.daemon.ctl("--json", "audit", "--child", person, "--reason", "subject access request")
        recs = [r for r in self.consultations() if r["reason"].startswith("audit --child")]
        self.assertEqual(len(recs), 1, recs)
        self.assertEqual(recs[0]["seqs"], [seq])
        # The reason never reaches the log (it may name a child).
        self.assertNotIn("section 47 enquiry", self.daemon.read_log())

    def test_every_listing_of_person_ids_is_audited(self):
        # `events` and `holds list` show person ids: each call is a consultation,
        # with the events it showed and the caller, the reason when given.
        ev, seq = self.send()
        before = len([r for r in self.consultations() if r["reason"].startswith("events:")])
        code, out, _ = self.daemon.ctl("--json", "events", "--limit", "1")
        self.assertEqual([e["seq"] for e in json.loads(out)["events"]], [seq])
        recs = [r for r in self.consultations() if r["reason"].startswith("events:")]
        self.assertEqual(len(recs), before + 1, recs)
        self.assertTrue(any(r["seqs"] == [seq] and r["actor"] == "uid:%d" % os.getuid() and
                            r["reason"] == "events: (no reason given)" for r in recs), recs)
        self.daemon.ctl("--json", "events", "--limit", "1", "--reason", "daily check of the feed")
        self.assertTrue(any("daily check of the feed" in r["reason"] for r in self.consultations()))
        self.daemon.ctl("--json", "holds", "list")
        self.assertTrue(any(r["reason"].startswith("holds list") for r in self.consultations()))

    def test_quarantine_show_audits_the_entry(self):
        r = self.feed.request("custody", b"{not json")
        self.assertEqual(r[1], b"REJECT")
        code, out, _ = self.daemon.ctl("--json", "quarantine", "list")
        qid = json.loads(out)["entries"][0]["id"]
        self.daemon.ctl("quarantine", "show", str(qid), "--reason", "feed fault ticket 1234")
        recs = [r for r in self.consultations() if r["reason"].startswith("quarantine show %d:" % qid)]
        self.assertEqual(len(recs), 1, self.consultations())

    def test_replay_needs_a_reason(self):
        code, _, err = self.daemon.ctl("replay", "--since", "2026-01-01T00:00:00Z", check=False)
        self.assertEqual(code, 2, err)
        code, _, err = self.daemon.ctl("replay", "--since", "2026-01-01T00:00:00Z", "--reason", " ", check=False)
        self.assertEqual(code, 2, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
