"""The README's configuration reference is the daemon's own settings table."""
import os
import subprocess
import unittest

import yjtest


class DocsTest(unittest.TestCase):

    def test_readme_config_reference_matches_binary(self):
        ref = subprocess.run([yjtest.YJLINKD, "--config-reference"], capture_output=True, text=True,
                             check=True).stdout
        rows = [l for l in ref.splitlines() if l.startswith("| `")]
        self.assertGreater(len(rows), 10)
        with open(os.path.join(yjtest.SOURCE, "README.md")) as f:
            readme = f.read()
        for row in rows:
            self.assertIn(row, readme, "README.md is missing or has an old line for: " + row.split("|")[1])

    def test_help_and_version(self):
        for argv in ([yjtest.YJLINKD, "--help"], [yjtest.YJLINKD, "--version"], [yjtest.YJLINKCTL, "--help"],
                     [yjtest.YJLINK_SIM, "--help"]):
            p = subprocess.run(argv, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, argv)
            self.assertTrue(p.stdout.strip(), argv)

    def test_usage_errors_exit_2(self):
        for argv in ([yjtest.YJLINKD, "--bogus"], [yjtest.YJLINKCTL], [yjtest.YJLINKCTL, "show"],
                     [yjtest.YJLINK_SIM, "--bogus"]):
            p = subprocess.run(argv, capture_output=True, text=True)
            self.assertEqual(p.returncode, 2, argv)


if __name__ == "__main__":
    unittest.main(verbosity=2)
