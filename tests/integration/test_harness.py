"""The suite's own helpers that the suite's soundness rests on.

tools/test runs its plain and sanitizer halves at the same time and gives
each its own port range (YJ_TEST_PORTS): free_port must keep to it, or a
port one half checked free can be bound by the other before its daemon
starts.

When a test fails, the summary at the end of tools/test (the part CI
shows) says why, from ctest's record (tools/ctest-why.sh). Tests that poll
a growing daemon log read only what it gained (yjtest.LogFollower).
"""
import os
import socket
import subprocess
import sys
import tempfile
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


SOURCE_DIR = os.environ.get("YJ_SOURCE_DIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

CTEST_LOG = """\
96% tests passed, 2 tests failed out of 3

Total Test time (real) =   9.00 sec

The following tests FAILED:
\t  2 - integration.test_two (Failed)
\t  3 - unit.test_three (Failed)
Errors while running CTest
"""

LAST_TEST_LOG = """\
Start testing: Dec 03 09:00 UTC
----------------------------------------------------------
1/3 Testing: integration.test_one
1/3 Test: integration.test_one
Output:
----------------------------------------------------------
AssertionError: a line of a test that passed
<end of output>
Test time =   1.00 sec
Test Passed.
2/3 Testing: integration.test_two
2/3 Test: integration.test_two
Output:
----------------------------------------------------------
.F
======================================================================
FAIL: test_x (__main__.T.test_x)
----------------------------------------------------------------------
Traceback (most recent call last):
  File "t.py", line 3, in test_x
AssertionError: 40 not less than or equal to 32
<end of output>
Test time =   2.00 sec
Test Failed.
3/3 Testing: unit.test_three
3/3 Test: unit.test_three
Output:
----------------------------------------------------------
[ RUN      ] s_case
[  FAILED  ] s_case
<end of output>
Test time =   1.00 sec
Test Failed.
"""


class CtestWhyTest(unittest.TestCase):
    """tools/ctest-why.sh against a ctest record written here: each failed
    test's cause, and only its own."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="yjwhy-")
        os.makedirs(os.path.join(self.dir, "Testing", "Temporary"))
        with open(os.path.join(self.dir, "ctest.log"), "w") as f:
            f.write(CTEST_LOG)
        with open(os.path.join(self.dir, "Testing", "Temporary", "LastTest.log"), "w") as f:
            f.write(LAST_TEST_LOG)

    def tearDown(self):
        subprocess.run(["rm", "-rf", self.dir], check=False)

    def sh(self, script):
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", ". tools/ctest-why.sh\n" + script, "sh", self.dir],
                           cwd=SOURCE_DIR, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_the_failed_tests_are_named(self):
        self.assertEqual(self.sh('failed_tests "$1"').split(), ["integration.test_two", "unit.test_three"])

    def test_a_python_failure_says_its_assertion(self):
        out = self.sh('test_output "$1" integration.test_two | why').splitlines()
        self.assertEqual(out, ["FAIL: test_x (__main__.T.test_x)", "AssertionError: 40 not less than or equal to 32"])

    def test_a_cmocka_failure_says_its_case(self):
        self.assertEqual(self.sh('test_output "$1" unit.test_three | why').splitlines(), ["[  FAILED  ] s_case"])

    def test_without_a_known_line_the_output_tail(self):
        out = self.sh('printf "a\\nb\\nlast words\\n" | why').splitlines()
        self.assertEqual(out, ["a", "b", "last words"])

    def test_a_test_without_a_record_says_nothing_and_does_not_stop_the_summary(self):
        os.remove(os.path.join(self.dir, "Testing", "Temporary", "LastTest.log"))
        self.assertEqual(self.sh('test_output "$1" integration.test_two | why; echo still here').splitlines(),
                         ["(no output of it in ctest's record: see the half's whole log)", "still here"])


class LogFollowerTest(unittest.TestCase):

    def test_whole_lines_once_each_from_the_offset(self):
        with tempfile.NamedTemporaryFile("wb", delete=False) as f:
            path = f.name
        try:
            with open(path, "ab") as f:
                f.write(b"before\n")
            follow = yjtest.LogFollower(path, offset=os.path.getsize(path))
            self.assertEqual(follow.lines(), [])
            with open(path, "ab") as f:
                f.write(b"one\ntw")
            self.assertEqual(follow.lines(), ["one"])      # the unfinished line waits
            with open(path, "ab") as f:
                f.write(b"o\nthree\n")
            self.assertEqual(follow.lines(), ["two", "three"])
            self.assertEqual(follow.lines(), [])
        finally:
            os.remove(path)

    def test_a_missing_log_is_no_lines(self):
        self.assertEqual(yjtest.LogFollower("/nonexistent/yjlinkd.log").lines(), [])


if __name__ == "__main__":
    unittest.main()
