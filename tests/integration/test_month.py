"""A simulated month of Thames Valley traffic through the real daemon on the
shipped config (routing.md "Practice rules"), and a one-year backfill.

The month: yjlink-sim writes 30 days of history (late messages, children
turning 18 in custody, unknown dates of birth, holds, out-of-area children);
the test sends it hour by hour with the daemon's clock moved to each hour,
each message in the hour it was sent (a late message after the later events
the simulator put before it). Then:
 - every looked-after-child and PACE transfer notice was delivered or
   reached the duty recipient, which is told at once of an unroutable one
   (escalate_after_s is far above what the loopback receivers take);
 - no liaison and diversion referral sent at an opening is about a record
   that had closed before it (status_now detained, and no closing message
   of that record was sent an hour or more before the opening);
 - the month's figures are printed (delivered, unroutable, escalated,
   stale, superseded).
The backfill: a year of history sent at once at today's clock: no immediate
notice is about an event older than max_age_s, and the outbox stays small."""
import calendar
import email
import email.policy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import zmq

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver

NOW = "2026-11-30T00:00:00Z"
NOW_T = calendar.timegm(time.strptime(NOW, "%Y-%m-%dT%H:%M:%SZ"))
DAYS = 30
DUTY = "yjs-police-duty@tvp.example"


def parse_t(s):
    """RFC 3339 (Z or +HH:MM, optional fraction) to a unix time."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    t = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    if m.group(3) != "Z":
        sign = 1 if m.group(3)[0] == "+" else -1
        t -= sign * (int(m.group(3)[1:3]) * 3600 + int(m.group(3)[4:6]) * 60)
    return t


def simulate(*extra):
    p = subprocess.run([yjtest.YJLINK_SIM, "--stdout", "--seed", "7", "--now", NOW] + list(extra),
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise AssertionError(p.stderr)
    out = []
    for line in p.stdout.splitlines():
        feed, js = line.split("\t", 1)
        out.append((feed, json.loads(js)))
    return out


class Daemon:
    """The daemon on the shipped config with this test's receivers."""

    def __init__(self, clock=None):
        self.http = HttpReceiver().start()
        self.smtp = SmtpReceiver().start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read()
        text = text.replace("http://127.0.0.1:8088", self.http.url.rstrip("/"))
        self.dir = tempfile.mkdtemp(prefix="yjmonth-")
        conf = os.path.join(self.dir, "yjlinkd.conf")
        with open(conf, "w") as f:
            f.write(text)
        sets = {"email.smtp_url": "smtp://127.0.0.1:%d" % self.smtp.port}
        if clock:
            sets.update({"testing.clock_control": "true", "testing.clock_start": clock})
        self.d = yjtest.Daemon(workdir=self.dir, config=conf, sets=sets).start()

    def close(self):
        self.d.kill()
        self.http.stop()
        self.smtp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def clock(self, t):
        code, r = self.d.ctl_request("clock", {"set": yjtest.utc(t)})
        if code != 0:
            raise AssertionError(r)

    def json(self, *args):
        return json.loads(self.d.ctl("--json", *args)[1])

    def settle(self, timeout=120):
        """Wait until nothing deliverable waits in the outbox."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.json("status")
            if st["delivery"]["outbox_depth"] == 0 and st["delivery"]["in_flight"] == 0:
                return st
            time.sleep(0.2)
        raise AssertionError("the outbox did not empty: %s" % self.json("outbox")["recipients"])

    def drain(self, now, timeout=60):
        """Wait until every job due at now is delivered: the receivers are
        quick, and the clock must not run ahead of them (an hour's step
        would make every job in flight look an hour late)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            code, r = self.d.ctl_request("outbox", {"full": True})
            due = [j for j in r.get("pending", []) if not j.get("not_before") or parse_t(j["not_before"]) <= now]
            if code == 0 and not due:
                return
            time.sleep(0.02)
        lines = [l for l in self.d.read_log().splitlines() if "digest" in l or "outbox" in l or "helper" in l]
        raise AssertionError("jobs due at %s still wait: %s; status: %s; the log's last digest/outbox lines:\n%s"
                             % (yjtest.utc(now), due[:5], self.json("status").get("delivery"),
                                "\n".join(lines[-40:])))

    def duty_mails(self):
        out = []
        for m in list(self.smtp.messages):
            if DUTY not in m["rcpt_tos"]:
                continue
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            d = {}
            for line in msg.get_body(preferencelist=("plain",)).get_content().splitlines():
                k, sep, v = line.partition(": ")
                if sep:
                    d[k.strip()] = v.strip()
            out.append(d)
        return out


class Sender:
    """A pipelined YJL1 client: sends a batch, then takes every reply."""

    def __init__(self, endpoint):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send_all(self, batch):
        for feed, ev in batch:
            self.sock.send_multipart([b"YJL1", feed.encode(), b"application/json", json.dumps(ev).encode()])
        replies = []
        for _ in batch:
            if not self.sock.poll(30000):
                raise AssertionError("no reply")
            replies.append(self.sock.recv_multipart())
        return replies

    def close(self):
        self.sock.close()


def opening_after(t):
    """The L&D service's next opening (the shipped hours: 08:00 weekdays, 09:00
    at weekends; Europe/London is UTC in November) at or after t."""
    day = t - t % 86400
    for k in range(0, 8):
        d = day + k * 86400
        wd = time.gmtime(d).tm_wday
        o = d + (8 if wd < 5 else 9) * 3600
        c = d + 20 * 3600 if wd < 5 else d + 17 * 3600
        if k == 0 and o <= t < c:
            return t
        if o > t:
            return o
    raise AssertionError("no opening")


class MonthTest(unittest.TestCase):

    def test_a_simulated_month(self):
        events = simulate("--days", str(DAYS), "--per-day", "60")
        start = NOW_T - DAYS * 86400
        # When each message is sent: in file order, no earlier than the
        # messages before it (a late one goes after later events).
        sent_at, latest = [], start
        for _, ev in events:
            latest = max(latest, parse_t(ev["occurred_at"]))
            sent_at.append(latest)
        d = Daemon(clock=yjtest.utc(start))
        self.addCleanup(d.close)
        s = Sender(d.d.ingest)
        self.addCleanup(s.close)
        by_hour = {}
        for (feed, ev), t in zip(events, sent_at):
            by_hour.setdefault(int(t // 3600), []).append((feed, ev))
        refused = []
        for h in range(start // 3600, NOW_T // 3600 + 1):
            d.clock(h * 3600 + 3599)
            batch = by_hour.get(h, [])
            if batch:
                for r, (feed, ev) in zip(s.send_all(batch), batch):
                    if r[1] not in (b"OK", b"DUP"):
                        refused.append((r, feed, ev["source_id"]))
            d.drain(h * 3600 + 3599)
        # Out-of-scope children are refused by design (the simulator makes none).
        self.assertEqual(refused, [])
        d.clock(NOW_T + 8 * 3600 + 1800)     # Monday 08:30: the L&D service is open again
        st = d.settle()
        pr = st["practice"]

        audit = d.json("audit", "--limit", "10000000")
        records = audit.get("records", audit.get("audit", []))
        delivered = {}
        for a in records:
            if a["action"] == "disclosure" and a["notification_id"]:
                delivered[a["notification_id"]] = a
        ob = d.json("outbox")
        unroutable = ob["unroutable"]
        dlq = d.json("dlq", "list")
        dead = dlq.get("dead_letters", dlq.get("dlq", []))
        escalated = {m.get("about.notification_id") for m in d.duty_mails()
                     if m.get("about.reason") in ("unroutable", "dead_letter", "undelivered")}

        # Every LAC and PACE notice: delivered, or the duty recipient told.
        urgent = [j for j in unroutable + dead if j["rule"] in ("lac_in_custody", "pace_transfer")]
        for j in urgent:
            self.assertIn(j["id"], escalated, "not delivered and nobody told: %s" % j)
        self.assertTrue(urgent, "the month should have out-of-area looked-after children")
        delivered_urgent = [a for a in delivered.values() if a["rule"] in ("lac_in_custody", "pace_transfer")]
        self.assertTrue(delivered_urgent)

        # L&D: what went at an opening was open then.
        closings = {}
        for (feed, ev), t in zip(events, sent_at):
            if feed == "custody" and ev["custody"]["status"] != "detained":
                closings.setdefault(ev["custody"]["record_id"], []).append(t)
        ooh = []
        for r in d.http.snapshot():
            if "liaison-diversion" not in r["path"] or r.get("status") != 200:
                continue
            b = json.loads(r["body"])
            if b["kind"] != "liaison_diversion" or not b.get("out_of_hours"):
                continue
            ooh.append(b)
            self.assertEqual(b["status_now"], "detained", b["notification_id"])
            opened = opening_after(parse_t(b["created_at"]))
            rec = b["event"]["custody"]["record_id"]
            early = [t for t in closings.get(rec, []) if t <= opened - 3600]
            self.assertEqual(early, [], "referral %s about record %s that closed before the opening"
                             % (b["notification_id"], rec))
        self.assertGreater(pr["ld_superseded"], 0)
        self.assertTrue(ooh)

        figures = {
            "messages": len(events),
            "delivered": len(delivered),
            "delivered_lac_pace": len(delivered_urgent),
            "unroutable": len(unroutable),
            "unroutable_lac_pace": len([j for j in unroutable if j["rule"] in ("lac_in_custody", "pace_transfer")]),
            "dead_letters": len(dead),
            "escalated": sum(v for k, v in pr["escalations"].items() if k != "feed_resumed"),
            "escalations": pr["escalations"],
            "stale": sum(pr["stale"].values()),
            "ld_superseded": pr["ld_superseded"],
            "ld_sent_at_opening": len(ooh),
            "ld_updates": pr["ld_updates"],
            "undelivered_told": sorted({(m.get("about.rule", ""), m.get("about.recipient", ""))
                                        for m in d.duty_mails() if m.get("about.reason") == "undelivered"}),
        }
        sys.stderr.write("simulated month: %s\n" % json.dumps(figures, sort_keys=True))

    def test_a_year_of_backfill_sends_no_stale_notice(self):
        # A Wednesday at 10:00 in London, within the L&D service's hours: at
        # the wall clock's evening its fresh referrals would wait for 08:00
        # and the outbox would never empty while the test looks.
        start = "2026-11-04T10:00:00Z"
        d = Daemon(clock=start)
        self.addCleanup(d.close)
        now = parse_t(start)
        p = subprocess.run([yjtest.YJLINK_SIM, "--endpoint", d.d.ingest, "--seed", "11", "--now", start,
                            "--days", "365", "--per-day", "40", "--quiet"], capture_output=True, text=True,
                           timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        st = d.settle()
        self.assertGreater(sum(st["practice"]["stale"].values()), 1000)
        # What was queued is about the last 12 hours only.
        self.assertLess(st["delivery"]["unroutable"] + len(d.http.snapshot()), 400)
        for r in d.http.snapshot():
            b = json.loads(r["body"])
            if "event" not in b or b["kind"] == "daily_digest":
                continue
            age = parse_t(b["created_at"]) - parse_t(b["event"]["occurred_at"])
            self.assertLessEqual(age, 43200, b["notification_id"])
        for j in d.json("outbox")["unroutable"]:
            self.assertLessEqual(parse_t(j["created_at"]), now + 60)


if __name__ == "__main__":
    unittest.main(verbosity=2)
