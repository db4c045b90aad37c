"""yjlinkd --check and --set: every mistake is FILE:LINE: message and exit 1
(interfaces.md §6; quality.md "Bad config")."""
import os
import re
import subprocess
import tempfile
import unittest

import yjtest


def check(text=None, sets=(), path=None):
    with tempfile.TemporaryDirectory() as d:
        argv = [yjtest.YJLINKD]
        if text is not None:
            path = os.path.join(d, "y.conf")
            with open(path, "w") as f:
                f.write(text)
        if path:
            argv += ["--config", path]
        for s in sets:
            argv += ["--set", s]
        p = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr.replace(path or "\0", "F")


class ConfigCheckTest(unittest.TestCase):

    def test_embedded_default_and_shipped_file_are_valid(self):
        code, out, err = check()
        self.assertEqual(code, 0, err)
        code, out, err = check(path=os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf"))
        self.assertEqual(code, 0, err)

    def test_every_error_named_with_file_and_line(self):
        text = "\n".join([
            'deployment = { id = "TVP!"; force = "E23000029"; };',   # 1: bad id
            'store = { path = "/tmp/x"; map_size_mb = "64"; };',     # 2: wrong type
            'ingest = { endpont = "tcp://127.0.0.1:1"; };',          # 3: unknown setting
            'bogus = 1;',                                             # 4: unknown top level
            'custody = { overnight_hours = 99; };',                   # 5: out of range
            'log = { level = "loud"; };',                             # 6: bad value
        ])
        code, out, err = check(text)
        self.assertEqual(code, 1)
        lines = [l for l in err.splitlines() if l.startswith("F:")]
        self.assertTrue(any(l.startswith("F:1: ") and "deployment.id" in l for l in lines), err)
        self.assertTrue(any(l.startswith("F:2: ") and "store.map_size_mb" in l for l in lines), err)
        self.assertTrue(any(l.startswith("F:3: ") and "ingest.endpont" in l for l in lines), err)
        self.assertTrue(any(l.startswith("F:4: ") and "bogus" in l for l in lines), err)
        self.assertTrue(any(l.startswith("F:5: ") and "overnight_hours" in l for l in lines), err)
        self.assertTrue(any(l.startswith("F:6: ") and "log.level" in l for l in lines), err)

    def test_syntax_error_has_line(self):
        code, out, err = check('deployment = {\n id = "x";\n force = ;\n};\n')
        self.assertEqual(code, 1)
        self.assertRegex(err, r"F:3: ")

    def test_non_loopback_needs_curve_or_insecure(self):
        code, _, err = check('ingest = { endpoint = "tcp://0.0.0.0:7401"; };\n')
        self.assertEqual(code, 1)
        self.assertIn("F:1: ", err)
        self.assertIn("insecure", err)
        code, _, err = check('ingest = { endpoint = "tcp://0.0.0.0:7401"; insecure = true; };\n'
                             'notify = { endpoint = "tcp://127.0.0.1:7402"; };\n')
        self.assertEqual(code, 0, err)

    def test_metrics_endpoint_only_loopback_unless_public(self):
        # /metrics has no authentication: anything but loopback is refused, with its line.
        for ep in ("0.0.0.0:9402", "192.0.2.7:9402", "[::]:9402"):
            code, _, err = check('deployment = { id = "tvp"; };\nmetrics = { endpoint = "%s"; };\n' % ep)
            self.assertEqual(code, 1, ep)
            self.assertIn("F:2: ", err)
            self.assertIn("metrics.public", err)
        for text in ('metrics = { endpoint = "127.0.0.1:9402"; };\n', 'metrics = { endpoint = "[::1]:9402"; };\n',
                     'metrics = { endpoint = "0.0.0.0:9402"; public = true; };\n', 'metrics = { endpoint = ""; };\n'):
            code, _, err = check(text)
            self.assertEqual(code, 0, (text, err))

    def test_control_socket_is_a_socket_file(self):
        # tcp:// and abstract sockets let any local user in: refused, with the line.
        for ep in ("tcp://127.0.0.1:7403", "ipc://@yjlink-control", "ipc://relative/control.sock"):
            code, _, err = check('deployment = { id = "tvp"; };\ncontrol = { endpoint = "%s"; };\n' % ep)
            self.assertEqual(code, 1, ep)
            self.assertIn("F:2: ", err)
            self.assertIn("control.endpoint", err)
        code, _, err = check('control = { endpoint = "ipc:///run/yjlink/control.sock"; };\n')
        self.assertEqual(code, 0, err)

    def test_plain_http_webhook_only_to_loopback(self):
        base = open(os.path.join(yjtest.SOURCE, "conf", "yjlinkd.conf")).read()
        remote = base.replace("http://127.0.0.1:8088/children-services/E06000042",
                              "http://mosaic.mk.example/children-services/E06000042", 1)
        self.assertNotEqual(remote, base)
        code, _, err = check(remote)
        self.assertEqual(code, 1, err)
        self.assertIn("https://", err)
        self.assertRegex(err, r"F:\d+: recipient 'children_services:E06000042'")
        https = remote.replace('url = "http://mosaic.mk.example', 'url = "https://mosaic.mk.example', 1)
        # An inline key is for loopback demos only.
        code, _, err = check(https)
        self.assertEqual(code, 1, err)
        self.assertIn("webhook.secret inline is for loopback demos only", err)
        with tempfile.TemporaryDirectory() as d:
            key = os.path.join(d, "mk.key")
            with open(key, "w") as f:
                f.write("a-key-for-milton-keynes\n")
            os.chmod(key, 0o600)
            from_file = 'secret_file = "%s"' % key
            code, _, err = check(https.replace('secret = "demo-secret-mk"', from_file, 1))
            self.assertEqual(code, 0, err)
            code, _, err = check(remote.replace('secret = "demo-secret-mk"', from_file, 1)
                                 .replace('timeout_ms = 5000; };', 'timeout_ms = 5000; insecure = true; };', 1))
            self.assertEqual(code, 0, err)

    def test_starttls_optional_to_a_remote_relay_warns(self):
        code, _, err = check('email = { smtp_url = "smtp://relay.example.org:587"; starttls = "optional"; };\n')
        self.assertEqual(code, 0, err)
        self.assertIn("F:1: email.starttls", err)
        self.assertIn("in clear", err)
        # Unsaid, it is required: nothing to warn about.
        code, _, err = check('email = { smtp_url = "smtp://relay.example.org:587"; };\n')
        self.assertEqual(code, 0, err)
        self.assertNotIn("in clear", err)

    def test_set_overrides_and_unknown_set(self):
        code, _, err = check(sets=["store.path=/tmp/s", "ingest.endpoint=tcp://127.0.0.1:17401",
                                   "ingest.max_message_bytes=1024", "ingest.insecure=true"])
        self.assertEqual(code, 0, err)
        code, _, err = check(sets=["store.nope=1"])
        self.assertEqual(code, 1)
        self.assertIn("unknown setting 'store.nope'", err)
        code, _, err = check(sets=["ingest.max_message_bytes=big"])
        self.assertEqual(code, 1)
        self.assertIn("ingest.max_message_bytes", err)
        code, _, err = check(sets=["deployment.force=E23999999"])
        self.assertEqual(code, 1)
        self.assertIn("E23999999", err)

    def test_unreadable_file(self):
        code, _, err = check(path="/nonexistent/yjlinkd.conf")
        self.assertEqual(code, 1)
        self.assertIn("cannot read", err)
        self.assertTrue(err.startswith("F: "), err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
