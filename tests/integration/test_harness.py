"""The suite's own helpers that the suite's soundness rests on.

tools/test runs its plain and sanitizer halves at the same time and gives
each its own port range (YJ_TEST_PORTS): free_port must keep to it, or a
port one half checked free can be bound by the other before its daemon
starts.
"""
import os
import socket
import subprocess
import sys
import unittest

import yjtest


def ports_in_child(spec, n):
    """n ports from free_port in a fresh process with YJ_TEST_PORTS=spec:
    the range is read where tools/test sets it, in the environment."""
    env = dict(os.environ, YJ_TEST_PORTS=spec)
    code = "import yjtest\nprint(' '.join(str(yjtest.free_port()) for _ in range(%d)))" % n
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                       cwd=os.path.dirname(os.path.abspath(__file__)))
    return p


class FreePortTest(unittest.TestCase):

    def test_ports_keep_to_the_range_and_never_repeat(self):
        p = ports_in_child("12300-12339", 25)
        self.assertEqual(p.returncode, 0, p.stderr)
        ports = [int(x) for x in p.stdout.split()]
        self.assertEqual(len(ports), 25)
        self.assertEqual(len(set(ports)), 25, ports)
        for port in ports:
            self.assertTrue(12300 <= port <= 12339, ports)

    def test_a_port_in_use_is_not_given(self):
        """A range of one port, bound here: free_port says so, and does not
        give it, nor one from outside the range."""
        held = socket.socket()
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        try:
            p = ports_in_child("%d-%d" % (port, port), 1)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertIn("no free port in YJ_TEST_PORTS=%d-%d" % (port, port), p.stderr)
        finally:
            held.close()
        p = ports_in_child("%d-%d" % (port, port), 1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(int(p.stdout), port)

    def test_a_bad_range_is_refused_by_name(self):
        for spec in ("10000", "a-b", "20000-10000", "80-90"):
            p = ports_in_child(spec, 1)
            self.assertNotEqual(p.returncode, 0, spec)
            self.assertIn("YJ_TEST_PORTS=%r" % spec, p.stderr)

    def test_without_the_setting_ports_are_below_the_ephemeral_range(self):
        env = dict(os.environ)
        env.pop("YJ_TEST_PORTS", None)
        code = "import yjtest\nprint(' '.join(str(yjtest.free_port()) for _ in range(20)))"
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
                           cwd=os.path.dirname(os.path.abspath(__file__)))
        self.assertEqual(p.returncode, 0, p.stderr)
        hi = max(yjtest._ephemeral_low(), 11000)
        for port in (int(x) for x in p.stdout.split()):
            self.assertTrue(10000 <= port < hi, port)


if __name__ == "__main__":
    unittest.main()
