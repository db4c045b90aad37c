"""Quarantine quota and retention against the real daemon (issue 11 item 3,
docs/limits.md): a flood of refused messages over YJL1 stops at
quarantine.max_bytes (answered REJECT all the same, counted, warned about at
most once a minute) while valid events sent in between keep getting OK; and
entries older than quarantine.retention_days are erased, audited, the
younger ones kept.

Retention is tested on the daemon's own test clock (testing.clock_control):
entries are refused at T0, the clock is moved two days on, more are refused,
and the periodic job (every 10 s) must erase exactly the first ones. Then
retention_days = 0 ("at the next run") by a reload erases the rest."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from prometheus_client.parser import text_string_to_metric_families

import yjtest
from test_metrics import http_get

MINIMAL = """
deployment = { id = "qt"; name = "Quarantine test"; force = "E23000029"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "MK YJS"; local_authorities = [ "E06000042" ];
    transport = "none"; allow = [ "child.*" ]; }
);
rules = ( );
"""

DEFAULT_QUOTA = 64 << 20        # quarantine.max_bytes when the config says nothing
FLOOD_PAYLOAD = 60000            # bytes of each refused message: under ingest.max_message_bytes
WAIT_S = 40                      # the retention job runs every 10 s; metrics every 1 s


def metrics(daemon):
    """{sample name: value} of the unlabelled samples of GET /metrics."""
    status, text = http_get(daemon, "/metrics", timeout=10)
    assert status == 200, (status, text)
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


def poll(fn, pred, timeout=WAIT_S):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if pred(v) or time.time() > deadline:
            return v
        time.sleep(0.25)


def invalid(i):
    # Not JSON: REJECT syntax, kept whole in quarantine (under ingest.quarantine_max_bytes).
    return b'{"source_id": "flood-%d", ' % i + b"x" * (FLOOD_PAYLOAD - 32)


class Client:
    """A YJL1 feed that pipelines a window and resends what is answered
    RETRY overloaded (a fair-share limit of the ingest endpoint, not a
    failure); any other RETRY is a final answer. Replies are told apart by
    their source id: a valid event's is its own, a refused message's is ""
    (unreadable), and every refused message of a window is alike."""

    def __init__(self, daemon):
        self.feed = yjtest.Feed(daemon.ingest)

    def window(self, valid, invalid):
        """Send valid ({source_id: body}) and invalid ([body]) interleaved;
        return ({source_id: final reply}, [final replies to the invalid])."""
        got_valid, got_invalid = {}, []
        todo_valid, todo_invalid = dict(valid), list(invalid)
        for _ in range(50):
            bodies = list(todo_invalid)
            half = len(bodies) // 2
            bodies[half:half] = list(todo_valid.values())
            for body in bodies:
                self.feed.send_frames([b"YJL1", b"custody", b"application/json", body])
            retry_invalid = []
            for _ in bodies:
                r = self.feed.recv(timeout_ms=60000)
                sid = r[2].decode()
                overloaded = r[1] == b"RETRY" and r[3].startswith(b"overloaded")
                if sid in todo_valid:
                    if not overloaded:
                        got_valid[sid] = r
                        del todo_valid[sid]
                elif overloaded:
                    retry_invalid.append(r)
                else:
                    got_invalid.append(r)
            todo_invalid = todo_invalid[:len(retry_invalid)]
            if not todo_valid and not todo_invalid:
                return got_valid, got_invalid
            time.sleep(0.2)
        raise AssertionError("still RETRY overloaded after 50 rounds")

    def close(self):
        self.feed.close()


class QuarantineTest(unittest.TestCase):

    def start(self, extra="", sets=None):
        self.dir = tempfile.mkdtemp(prefix="yjquar-")
        self.conf = os.path.join(self.dir, "y.conf")
        with open(self.conf, "w") as f:
            f.write(MINIMAL + extra)
        self.d = yjtest.Daemon(workdir=self.dir, config=self.conf, sets=sets)
        self.d.start()

    def tearDown(self):
        self.d.cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)

    def listed(self):
        _, out, _ = self.d.ctl("--json", "quarantine", "list", "--limit", "1000000")
        return [e["id"] for e in json.loads(out)["entries"]]

    def test_flood_stops_at_quota(self):
        """The shipped default quota (the config says nothing of it)."""
        self.start()
        c = Client(self.d)
        sent_bad = ok = 0
        used_at_full = None
        rounds = 0
        t0 = time.time()
        # 2.2 x the quota offered, 20 refused messages and one valid event per window.
        while sent_bad * FLOOD_PAYLOAD < 2.2 * DEFAULT_QUOTA:
            rounds += 1
            ev = yjtest.custody_event()
            valid, bad = c.window({ev["source_id"]: json.dumps(ev).encode()},
                                  [invalid(sent_bad + i) for i in range(20)])
            r = valid[ev["source_id"]]
            self.assertEqual(r[1], b"OK", "valid event in round %d: %s" % (rounds, r))
            ok += 1
            self.assertEqual(len(bad), 20)
            for r in bad:
                self.assertEqual(r[1], b"REJECT", r[:2])
                self.assertEqual(json.loads(r[3])["error"], "syntax", r[3])
            sent_bad += 20
            if used_at_full is None and sent_bad * FLOOD_PAYLOAD > 1.1 * DEFAULT_QUOTA:
                # Past the quota by now: remember how big the store is.
                m = poll(lambda: metrics(self.d), lambda m: m.get("yjlink_quarantine_dropped_total", 0) > 0)
                self.assertGreater(m.get("yjlink_quarantine_dropped_total", 0), 0,
                                   "%d refused messages of %d bytes offered and none dropped: no quota" %
                                   (sent_bad, FLOOD_PAYLOAD))
                used_at_full = m["yjlink_store_used_bytes"]
        c.close()
        elapsed = time.time() - t0

        # The metrics settle within a second or two of the last commit.
        ids = self.listed()
        m = poll(lambda: metrics(self.d),
                 lambda m: m.get("yjlink_quarantine_entries") == len(ids) and
                 m.get("yjlink_quarantine_dropped_total", 0) + len(ids) == sent_bad)
        self.assertEqual(m["yjlink_quarantine_max_bytes"], DEFAULT_QUOTA)
        self.assertEqual(m["yjlink_quarantine_entries"], len(ids))
        # Full, not over: within one entry of the quota.
        self.assertLessEqual(m["yjlink_quarantine_bytes"], DEFAULT_QUOTA)
        self.assertGreater(m["yjlink_quarantine_bytes"], DEFAULT_QUOTA - 2 * FLOOD_PAYLOAD)
        self.assertLessEqual(len(ids), DEFAULT_QUOTA // FLOOD_PAYLOAD)
        self.assertEqual(m["yjlink_quarantine_dropped_total"] + len(ids), sent_bad)
        # The store stopped growing with the quarantine: after it was full,
        # 1.1 x the quota more was offered; the valid events take a few kB.
        self.assertLess(m["yjlink_store_used_bytes"] - used_at_full, 8 << 20,
                        "the store grew by %d bytes after the quarantine was full" %
                        (m["yjlink_store_used_bytes"] - used_at_full))
        self.assertEqual(ok, rounds)
        self.assertEqual(m["yjlink_store_events"], ok)

        # yjlinkctl status says so.
        _, out, _ = self.d.ctl("--json", "status")
        q = json.loads(out)["quarantine"]
        self.assertEqual(q["max_bytes"], DEFAULT_QUOTA)
        self.assertEqual(q["entries"], len(ids))
        self.assertEqual(q["bytes"], m["yjlink_quarantine_bytes"])
        self.assertEqual(q["dropped"], m["yjlink_quarantine_dropped_total"])
        self.assertEqual(q["retention_days"], 30)
        _, text, _ = self.d.ctl("status")
        self.assertIn("dropped: %d" % q["dropped"], text)

        # Warned, at most once a minute (the first drop warns at once).
        warnings = [l for l in self.d.read_log().splitlines() if "quarantine full" in l]
        self.assertGreaterEqual(len(warnings), 1)
        self.assertLessEqual(len(warnings), 1 + int(elapsed // 60) + 1, warnings)
        self.assertTrue(all(l.startswith("<4>") for l in warnings), warnings)

        # An operator drops one: there is room for one more refused message.
        self.d.ctl("quarantine", "drop", str(ids[0]), "--reason", "dealt with")
        c = Client(self.d)
        _, bad = c.window({}, [invalid(10 ** 6)])
        c.close()
        self.assertEqual(bad[0][1], b"REJECT")
        after = self.listed()
        self.assertEqual(len(after), len(ids))
        self.assertNotIn(ids[0], after)
        self.assertGreater(max(after), max(ids))

    def test_retention_erases_only_what_is_due(self):
        t0 = 1795600800   # 2026-11-25T10:00:00Z
        self.start(extra="quarantine = { retention_days = 1; };\n",
                   sets={"testing.clock_control": "true", "testing.clock_start": yjtest.utc(t0)})
        c = Client(self.d)
        _, old = c.window({}, [invalid(i) for i in range(5)])
        self.assertTrue(all(r[1] == b"REJECT" for r in old), old)
        old_ids = self.listed()
        self.assertEqual(len(old_ids), 5)
        before = poll(lambda: metrics(self.d), lambda m: m.get("yjlink_quarantine_entries") == 5)
        self.assertEqual(before["yjlink_quarantine_entries"], 5)

        # Two days on: the five are due; three more refused now are not.
        self.d.ctl("clock", "set", yjtest.utc(t0 + 2 * 86400))
        _, young = c.window({}, [invalid(100 + i) for i in range(3)])
        self.assertTrue(all(r[1] == b"REJECT" for r in young), young)
        c.close()
        ids = poll(self.listed, lambda ids: len(ids) == 3)
        self.assertEqual(len(ids), 3, "retention did not erase the five entries older than one day: %s" % ids)
        self.assertTrue(all(i not in old_ids for i in ids), (ids, old_ids))
        self.assertGreater(min(ids), max(old_ids))

        m = poll(lambda: metrics(self.d), lambda m: m.get("yjlink_quarantine_entries") == 3)
        self.assertEqual(m["yjlink_quarantine_expired_total"], 5)
        self.assertEqual(m["yjlink_quarantine_entries"], 3)
        self.assertLess(m["yjlink_quarantine_bytes"], before["yjlink_quarantine_bytes"])

        # Audited: an erasure by the daemon itself, and the chain intact.
        _, out, _ = self.d.ctl("--json", "audit")
        erasures = [a for a in json.loads(out)["records"] if a["action"] == "erasure" and a["actor"] == "yjlinkd"]
        self.assertEqual(len(erasures), 1, out)
        self.assertEqual(erasures[0]["seqs"], [])
        self.d.ctl("audit", "verify")
        # The log says what the audit record says: a count and an id range, no content.
        self.assertRegex(self.d.read_log(), r"retention erased 5 entries, ids %d-%d" % (min(old_ids), max(old_ids)))
        self.assertNotIn("flood-", self.d.read_log())

        # retention_days = 0: everything at the next run.
        with open(self.conf, "w") as f:
            f.write(MINIMAL + "quarantine = { retention_days = 0; };\n")
        self.d.ctl("reload")
        ids = poll(self.listed, lambda ids: not ids)
        self.assertEqual(ids, [])
        _, out, _ = self.d.ctl("--json", "audit")
        erasures = [a for a in json.loads(out)["records"] if a["action"] == "erasure" and a["actor"] == "yjlinkd"]
        self.assertEqual(len(erasures), 2, out)
        m = poll(lambda: metrics(self.d), lambda m: m.get("yjlink_quarantine_expired_total") == 8)
        self.assertEqual(m["yjlink_quarantine_expired_total"], 8)
        self.assertEqual(m["yjlink_quarantine_bytes"], 0)

    def test_config_checks(self):
        """Both settings are checked with file:line, like every other."""
        self.dir = tempfile.mkdtemp(prefix="yjquar-")
        self.d = yjtest.Daemon(workdir=self.dir)
        for bad, word in (("quarantine = { max_bytes = -1; };", "max_bytes"),
                          ("quarantine = { retention_days = 40000; };", "retention_days"),
                          ("quarantine = { retention_days = \"30\"; };", "retention_days"),
                          ("quarantine = { quota = 5; };", "quota")):
            conf = os.path.join(self.dir, "bad.conf")
            with open(conf, "w") as f:
                f.write(MINIMAL + bad + "\n")
            p = subprocess.run([yjtest.YJLINKD, "--config", conf, "--check"], capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, (bad, p.stdout, p.stderr))
            line = len(MINIMAL.splitlines()) + 1
            self.assertTrue(re.search(r"%s:%d: .*%s" % (re.escape(conf), line, word), p.stderr + p.stdout),
                            (bad, p.stderr))
        conf = os.path.join(self.dir, "good.conf")
        with open(conf, "w") as f:
            f.write(MINIMAL + "quarantine = { max_bytes = 0; retention_days = 0; };\n")
        p = subprocess.run([yjtest.YJLINKD, "--config", conf, "--check"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
