"""The scheduled board pack (board reporting, item 5) against the real
daemon on the shipped config: on the 1st of the month at 08:00 the Milton
Keynes YJS gets the previous month's board report through the one outbox,
as an email with the HTML (inline SVG) and the CSV attached, audited as a
disclosure of aggregate data, once."""
import csv
import email
import email.policy
import io
import json
import os
import shutil
import tempfile
import time
import unittest

import yjtest
from http_receiver import HttpReceiver
from smtp_receiver import SmtpReceiver
from test_routing import event

YJS = "yjs.police@milton-keynes.example"


def at(t):
    return yjtest.utc(t)


class BoardPackTest(unittest.TestCase):

    def start(self, clock):
        self.http = HttpReceiver().start()
        self.smtp = SmtpReceiver().start()
        with open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")) as f:
            text = f.read().replace("http://127.0.0.1:8088", self.http.url.rstrip("/"))
        self.dir = tempfile.mkdtemp(prefix="yjboard-")
        conf = os.path.join(self.dir, "yjlinkd.conf")
        with open(conf, "w") as f:
            f.write(text)
        self.daemon = yjtest.Daemon(workdir=self.dir, config=conf, sets={
            "email.smtp_url": "smtp://127.0.0.1:%d" % self.smtp.port,
            "testing.clock_control": "true", "testing.clock_start": clock}).start()
        self.addCleanup(self.stop)

    def stop(self):
        self.daemon.kill()
        self.http.stop()
        self.smtp.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def packs(self):
        out = []
        for m in list(self.smtp.messages):
            msg = email.message_from_bytes(m["data"], policy=email.policy.default)
            if "board report" in (msg["Subject"] or ""):
                out.append((m["rcpt_tos"], msg))
        return out

    def wait(self, fn, what, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s\n%s" % (what, self.daemon.read_log()[-3000:]))

    def test_monthly_pack_sent_once_with_html_and_csv_and_audited(self):
        t0 = 1795694400                                   # 2026-11-26T10:00:00Z, a Thursday
        self.start(at(t0))
        feed = yjtest.Feed(self.daemon.ingest)
        self.addCleanup(feed.close)
        for i in range(7):
            ev = event(person="TVP-BP%d" % i)
            ev["occurred_at"] = at(t0 - 600 - i)
            ev["custody"].update({"record_id": "CR-BP-%d" % i, "arrived_at": at(t0 - 3600 - i),
                                  "status_at": at(t0 - 600 - i)})
            r = feed.request("custody", ev)
            self.assertEqual(r[1], b"OK", r)
        time.sleep(3)                                     # the planner's first look: the 1 Nov pack is long past
        self.assertEqual(self.packs(), [], "a pack due before the deployment began is not sent")
        self.daemon.ctl("clock", "set", "2026-12-01T07:59:00Z")
        time.sleep(1)
        self.assertEqual(self.packs(), [])
        self.daemon.ctl("clock", "set", "2026-12-01T08:01:00Z")
        rcpts, msg = self.wait(self.packs, "the December pack")[0]
        self.assertEqual(rcpts, [YJS])
        self.assertEqual(msg["Subject"], "[OFFICIAL-SENSITIVE] yjlink board report Milton Keynes YJS 2026-11")
        self.assertEqual(msg["X-Yjlink-Report-Id"], "tvp-board-milton-keynes-2026-11")
        self.assertEqual(msg["X-Yjlink-Period"], "2026-11-01/2026-11-30")
        html = msg.get_body(preferencelist=("html",)).get_content()
        self.assertIn("<svg", html)
        self.assertNotIn("<script", html.lower())
        att = [p for p in msg.iter_attachments() if p.get_content_type() == "text/csv"]
        self.assertEqual(len(att), 1)
        self.assertEqual(att[0].get_filename(), "yjlink-board-milton-keynes-2026-11.csv")
        rows = list(csv.reader(io.StringIO(att[0].get_content())))
        self.assertEqual(rows[0], ["dimension", "group", "figure", "value"])
        detentions = [r for r in rows if r[2] == "detentions" and r[0] in ("", "all")]
        self.assertTrue(detentions, rows[:5])
        self.assertEqual(detentions[0][3], "7")
        # Audited as a disclosure of aggregate data.
        def audited():
            _, out, _ = self.daemon.ctl("--json", "audit")
            return [r for r in json.loads(out)["records"]
                    if r["action"] == "disclosure" and r["notification_id"] == "tvp-board-milton-keynes-2026-11"]
        rec = self.wait(audited, "the audit record")[0]
        self.assertEqual(rec["rule"], "board_pack")
        self.assertEqual(rec["recipient"], "yjs:milton-keynes")
        self.assertEqual(rec["seqs"], [])
        self.assertEqual(rec["fields"], ["aggregate:board_report"])
        # Once: not again later that month, nor after a restart.
        self.daemon.ctl("clock", "set", "2026-12-05T09:00:00Z")
        time.sleep(1)
        self.assertEqual(len(self.packs()), 1)
        self.daemon.stop()
        self.daemon.sets["testing.clock_start"] = "2026-12-05T09:01:00Z"
        self.daemon.start()
        time.sleep(3)
        self.assertEqual(len(self.packs()), 1)

    def test_pack_missed_while_stopped_goes_at_start(self):
        # Stopped over the send time: sent on start, within the day.
        self.start("2026-11-30T12:00:00Z")
        time.sleep(3)
        self.daemon.stop()
        self.daemon.sets["testing.clock_start"] = "2026-12-01T11:00:00Z"
        self.daemon.start()
        _, msg = self.wait(self.packs, "the missed pack")[0]
        self.assertEqual(msg["X-Yjlink-Report-Id"], "tvp-board-milton-keynes-2026-11")


if __name__ == "__main__":
    unittest.main(verbosity=2)
