#!/usr/bin/env bash
# tests/fuzz/run_corpus.sh: replay the checked-in corpus once through each
# fuzz target (no fuzzing): a quick regression check for CI.
#
#   tests/fuzz/run_corpus.sh [--no-build] [BUILD_DIR]
#
# Builds the targets (tests/fuzz/build.sh) unless --no-build, then runs
# every file of tests/fuzz/corpus/<x>/ through fuzz_<x> (json, protobuf,
# framing), each file once, with every invariant of the targets checked
# strictly. Exit status 0 when every input passes; 1 and the failing
# target's report otherwise; 2 when the targets cannot be built.
# Takes a few seconds.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=1
if [ "${1:-}" = "--no-build" ]; then
	BUILD=0
	shift
fi
B=${1:-${YJ_FUZZ_BUILD:-$SRC/build-fuzz}}
if [ $BUILD -eq 1 ]; then
	"$HERE/build.sh" "$B" >/dev/null || { echo "run_corpus.sh: build failed" >&2; exit 2; }
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
unset YJ_FUZZ_ALLOW YJ_FUZZ_LOG

fail=0
for t in json protobuf framing; do
	files=("$HERE/corpus/$t"/*)
	if [ ! -e "${files[0]}" ]; then
		echo "run_corpus.sh: corpus/$t is empty" >&2
		fail=1
		continue
	fi
	log=$(mktemp)
	# artifact_prefix: a failing input is named in the log, not copied around
	if "$B/fuzz_$t" -artifact_prefix="$(dirname "$log")/yjlink-fuzz-" "${files[@]}" >"$log" 2>&1; then
		echo "run_corpus.sh: fuzz_$t: ${#files[@]} inputs passed"
	else
		echo "run_corpus.sh: fuzz_$t FAILED:" >&2
		awk '/^Running: /{last=$0} /invariant broken|ERROR: |SUMMARY: |runtime error/{if(last){print last; last=""} print}' \
			"$log" | head -20 >&2
		echo "run_corpus.sh: full report: $log" >&2
		fail=1
		continue
	fi
	rm -f "$log"
done
exit $fail
