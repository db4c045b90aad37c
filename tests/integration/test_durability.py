"""Nothing acknowledged is ever lost (interfaces.md §1 "OK is a promise";
quality.md "Crash", "Full map").

kill -9 of the daemon while yjlink-sim pipelines thousands of messages,
repeated at random moments: every OK seen before the kill must still be
there after restart, and nothing half-written may be visible. The check
resends the very same messages (same seed, same clock): each one
acknowledged before the crash must now come back DUP with the same sequence
number, and every sequence number from 1 to the last is one whole event."""
import os
import random
import subprocess
import time
import unittest

import yjtest

NOW = "2026-11-20T12:00:00Z"


def run_sim(daemon, seed, count, acks, timeout=60, extra=()):
    argv = [yjtest.YJLINK_SIM, "--endpoint", daemon.ingest, "--seed", str(seed), "--now", NOW,
            "--days", "30", "--per-day", str(count // 25 + 1), "--count", str(count), "--window", "1000", "--acks", acks, "--timeout", "5"]
    return subprocess.Popen(argv + list(extra), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def read_acks(path):
    acks = {}
    if not os.path.exists(path):
        return acks
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3:
                acks[parts[2]] = (parts[0], parts[1])
    return acks


class CrashTest(unittest.TestCase):

    def setUp(self):
        self.daemon = yjtest.Daemon()
        self.rng = random.Random(int(os.environ.get("YJ_TEST_SEED", "20261124")))

    def tearDown(self):
        self.daemon.cleanup()

    def test_kill9_loses_nothing_acknowledged(self):
        rounds = int(os.environ.get("YJ_CRASH_ROUNDS", "12"))
        total_ok = 0
        for r in range(rounds):
            self.daemon.start()
            acks = os.path.join(self.daemon.dir, "acks-%d" % r)
            sim = run_sim(self.daemon, seed=100 + r, count=40000, acks=acks)
            time.sleep(self.rng.uniform(0.3, 1.5))
            self.daemon.kill()
            sim.communicate(timeout=60)
            before = {s: v for s, v in read_acks(acks).items() if v[0] == "OK"}
            total_ok += len(before)

            # Restart and resend the same messages: every OK must be a DUP of the same seq.
            self.daemon.start()
            acks2 = os.path.join(self.daemon.dir, "acks-%d-again" % r)
            sim = run_sim(self.daemon, seed=100 + r, count=40000, acks=acks2)
            out, _ = sim.communicate(timeout=300)
            sim.stdout.close()
            self.assertEqual(sim.returncode, 0, out)
            after = read_acks(acks2)
            for sid, (status, seq) in before.items():
                self.assertEqual(after.get(sid), ("DUP", seq), "round %d: %s acknowledged as %s before the crash" % (r, sid, seq))
            # No gap, no half-written event: seqs are 1..last, each one a whole event.
            seqs = sorted(int(v[1]) for v in after.values() if v[0] in ("OK", "DUP"))
            self.assertEqual(len(seqs), 40000)
            _, st = self.daemon.ctl_request("status")
            self.assertEqual(st["store"]["events"], st["ingest"]["last_seq"])
            for seq in self.rng.sample(seqs, 5):
                code, body = self.daemon.ctl_request("show", {"seq": seq, "reason": "crash test"})
                self.assertEqual(code, 0, body)
            self.daemon.kill()
        self.assertGreater(total_ok, 0, "the kills all came before any OK: the test proved nothing")


class MapGrowthTest(unittest.TestCase):

    def test_tiny_map_takes_100k_events_without_retry(self):
        d = yjtest.Daemon(sets={"store.map_size_mb": "1"}).start()
        try:
            acks = os.path.join(d.dir, "acks")
            sim = run_sim(d, seed=5, count=100000, acks=acks, extra=["--no-retry"])
            out, _ = sim.communicate(timeout=600)
            self.assertEqual(sim.returncode, 0, out)
            self.assertIn("ok=100000 ", out + " ")
            self.assertIn("retry=0", out)
            _, st = d.ctl_request("status")
            self.assertEqual(st["store"]["events"], 100000)
            self.assertGreater(st["store"]["map_grows"], 0)
        finally:
            d.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
