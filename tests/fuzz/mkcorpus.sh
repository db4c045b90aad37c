#!/usr/bin/env bash
# tests/fuzz/mkcorpus.sh: regenerate the seed corpus in tests/fuzz/corpus/.
#
#   tests/fuzz/mkcorpus.sh [BUILD_DIR]
#
# The seeds are checked in; run this only when the event format or the
# catalogue changes. It writes
#   corpus/{json,protobuf,framing}/sim-NNN  varied events of every feed from
#       yjlink-sim --stdout at the fuzz clock (2026-11-22T12:00:00Z), packed
#       for protobuf by fz_pbpack (what yjlink-sim --protobuf sends), and as
#       whole YJL1 requests for framing
#   corpus/*/cat-CODE-NAME  tests/integration/test_ingest.py's catalogue of
#       malformed requests (the 1 MiB case left out)
#   corpus/framing/shape-*  framing shapes the catalogue lacks
# Files of other names (inputs kept from fuzzing runs, min-*) are left alone.
# Needs yjlink-sim from the CMake build ($YJ_SIM, default build/yjlink-sim).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
B=${1:-${YJ_FUZZ_BUILD:-$SRC/build-fuzz}}
SIM=${YJ_SIM:-$SRC/build/yjlink-sim}
[ -x "$SIM" ] || { echo "mkcorpus.sh: no yjlink-sim at $SIM (build the project, or set YJ_SIM)" >&2; exit 1; }
"$HERE/build.sh" "$B" >/dev/null
C="$HERE/corpus"
mkdir -p "$C/json" "$C/protobuf" "$C/framing"
rm -f "$C"/*/sim-* "$C"/*/cat-* "$C"/*/shape-*
"$SIM" --stdout --now 2026-11-22T12:00:00Z --days 3 --per-day 40 --seed 11 2>/dev/null |
	/usr/bin/python3 "$HERE/mkcorpus.py" select 30 |
	ASAN_OPTIONS=detect_leaks=0 "$B/fz_pbpack" "$C/json" "$C/protobuf" "$C/framing" sim
/usr/bin/python3 "$HERE/mkcorpus.py" catalogue "$C"
for d in json protobuf framing; do
	echo "mkcorpus.sh: corpus/$d: $(ls "$C/$d" | wc -l) files, $(du -sk "$C/$d" | cut -f1) KiB"
done
