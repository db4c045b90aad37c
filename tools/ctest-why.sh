# Sourced by tools/test (and tests/integration/test_harness.py): what a
# ctest run says about its failed tests, so that the summary at the end of
# a run, the part CI shows, names the cause and not only the test.

# The names of a half's failed tests, from ctest's own list.
failed_tests() {
  sed -n '/^The following tests FAILED:/,$p' "$1/ctest.log" |
    sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) \(.*$/\1/p'
}

# One test's whole output, from ctest's record of the run.
test_output() {
  awk -v want="$2" '
    /^[0-9]+\/[0-9]+ Testing: / { name = $3; grab = 0 }
    name == want && /^<end of output>/ { grab = 0 }
    grab { print }
    name == want && /^Output:/ { grab = 1; getline }
  ' "$1/Testing/Temporary/LastTest.log" 2>/dev/null || true
}

# The lines that say why a test failed: a Python assertion or exception, a
# cmocka failure, a sanitizer report, a ctest timeout; at most 12, or the
# output's last 12 lines if none of those is there.
why() {
  local out
  out=$(cat)
  if [ -z "$out" ]; then
    echo "(no output of it in ctest's record: see the half's whole log)"
    return 0
  fi
  local lines
  lines=$(printf '%s\n' "$out" | grep -E '^(FAIL|ERROR): |^[A-Za-z_.]*(Error|Exception)(: |$)|\[  (FAILED|ERROR) +\]|^[^ ]*: (FAILED|ERROR)|AddressSanitizer|runtime error:|LeakSanitizer|Timeout|not within' | head -12 || true)
  if [ -n "$lines" ]; then
    printf '%s\n' "$lines" | cut -c1-300
  else
    printf '%s\n' "$out" | tail -12 | cut -c1-300
  fi
}
