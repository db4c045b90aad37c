"""Feed health in the daily digest (routing.md "Feeds that go quiet are
noticed", docs/digest.md): an empty digest says whether the custody feed is
up ("no children in custody in this window") or quiet ("no custody messages
since ..."), in local time, and every digest says when each feed last
delivered.

A real daemon with two YJSs (Milton Keynes and Reading), a clock under the
test's control and a real SMTP server. Day 1: custody messages only for a
Reading child, so Milton Keynes' window is empty while the feed is up. Day
2: no message at all, so both windows are empty and the feed is quiet.
"""
import calendar
import email
import email.policy
import os
import re
import shutil
import tempfile
import time
import unittest

import yjtest
from smtp_receiver import SmtpReceiver

CONFIG = """
deployment = { id = "fh"; name = "Feed test"; force = "E23000029"; };
email = { smtp_url = "smtp://127.0.0.1:%(port)d"; from = "yjlink@test.example"; starttls = "off"; };
recipients = (
  { id = "yjs:mk"; kind = "yjs"; name = "Milton Keynes YJS"; local_authorities = [ "E06000042" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@mk.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*" ]; },
  { id = "yjs:rdg"; kind = "yjs"; name = "Reading YJS"; local_authorities = [ "E06000038" ];
    digest_times = [ "07:30" ]; transport = "email"; email = [ "yjs@reading.example" ];
    allow = [ "source_id", "force", "occurred_at", "child.*", "custody.*" ]; }
);
rules = (
  { id = "custody_digest"; feeds = [ "custody" ]; home_served = true; recipient = "yjs:home"; mode = "digest"; }
);
"""


def rfc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class DigestFeedHealthTest(unittest.TestCase):

    def setUp(self):
        self.smtp = SmtpReceiver().start()
        self.tmp = tempfile.mkdtemp(prefix="yjdf-")
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            self.daemon.cleanup()
        self.smtp.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def digest_text(self, to, n):
        """The text part of the n-th digest (0-based) sent to address to."""
        deadline = time.time() + 30
        while time.time() < deadline:
            got = [m for m in list(self.smtp.messages) if to in m["rcpt_tos"]]
            if len(got) > n:
                msg = email.message_from_bytes(got[n]["data"], policy=email.policy.default)
                return msg.get_body(preferencelist=("plain",)).get_content(), \
                    msg.get_body(preferencelist=("html",)).get_content()
            time.sleep(0.1)
        self.fail("digest %d to %s did not arrive:\n%s" % (n, to, self.daemon.read_log()[-3000:]))

    def test_up_and_quiet(self):
        conf = os.path.join(self.tmp, "f.conf")
        with open(conf, "w") as f:
            f.write(CONFIG % {"port": self.smtp.port})
        t0 = calendar.timegm((2026, 11, 24, 8, 0, 0))   # Tuesday 08:00 GMT: the first state
        self.daemon = d = yjtest.Daemon(workdir=self.tmp, config=conf, sets={
            "testing.clock_control": "true", "testing.clock_start": rfc(t0)}).start()
        d.ctl_request("clock", {"set": rfc(t0 + 3600 * 10)})       # 18:00
        feed = yjtest.Feed(d.ingest)
        ev = yjtest.custody_event(occurred_at=rfc(t0 + 3600 * 10 - 60))
        ev["child"].update({"home_la": "E06000038", "home_postcode": "RG1 1AA", "date_of_birth": "2011-06-01"})
        ev["custody"].update({"suite": "TVP-RDG", "arrived_at": rfc(t0 + 3600 * 9), "status_at": rfc(t0 + 3600 * 10 - 60)})
        r = feed.request("custody", ev)
        feed.close()
        self.assertEqual(r[1], b"OK", r)
        # Wednesday 07:31: both digests go; Milton Keynes' window is empty, the feed up.
        d.ctl_request("clock", {"set": rfc(calendar.timegm((2026, 11, 25, 7, 31, 0)))})
        text, html = self.digest_text("yjs@mk.example", 0)
        self.assertIn("Nothing happened in this window", text)
        self.assertIn("No children in custody in this window: the custody feed is up (last message "
                      "Tue 24 Nov 18:00)", text)
        self.assertIn("Custody: last message Tue 24 Nov 18:00", text)
        self.assertRegex(text, r"Outcome: no message ever \(nothing in this window\)")
        self.assertIn("the custody feed is up", html)
        rtext, _ = self.digest_text("yjs@reading.example", 0)
        self.assertIn("1 child", rtext)
        self.assertNotIn("Nothing happened", rtext)
        # Thursday 07:31: nothing for a day: the feed is quiet, and the digest says since when.
        d.ctl_request("clock", {"set": rfc(calendar.timegm((2026, 11, 26, 7, 31, 0)))})
        text, html = self.digest_text("yjs@mk.example", 1)
        self.assertIn("Nothing happened in this window", text)
        self.assertIn("No custody messages since Tue 24 Nov 18:00: check that the custody feed is running.", text)
        self.assertIn("Custody: last message Tue 24 Nov 18:00 (nothing in this window)", text)
        self.assertIsNone(re.search(r"\d{4}-\d\d-\d\dT", text))
        self.assertIn("No custody messages since Tue 24 Nov 18:00", html)


if __name__ == "__main__":
    unittest.main(verbosity=2)
