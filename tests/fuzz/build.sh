#!/usr/bin/env bash
# tests/fuzz/build.sh: build the libFuzzer targets of tests/fuzz/ with clang,
# straight from the daemon sources (no CMake).
#
#   tests/fuzz/build.sh [--coverage] [BUILD_DIR]
#
# BUILD_DIR defaults to $YJ_FUZZ_BUILD, else <repo>/build-fuzz. It receives
#   gen/           yjlink.pb-c.[ch] (protoc-c) and embedded.c (tools/embed.cmake)
#   obj/           the daemon's objects, -fsanitize=fuzzer-no-link,address,undefined
#   fuzz_json fuzz_protobuf fuzz_framing   the targets (-fsanitize=fuzzer,address,undefined)
#   fz_pbpack      the seed-corpus helper (JSON events -> packed yjlink.v1.Event)
# With --coverage, also cov/<target>: the same targets built with clang
# source-based coverage (no sanitizers), for `tools/fuzz --coverage`.
#
# YJ_FUZZ_EXTRA_CFLAGS is added to every compile (e.g.
# -fno-sanitize=signed-integer-overflow, to fuzz past an open finding in a
# build directory of its own).
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-14-dev) and
# the daemon's own build dependencies (tools/install-deps.sh). Rebuilds only
# what changed; safe to run every time.
set -euo pipefail

COVERAGE=0
if [ "${1:-}" = "--coverage" ]; then
	COVERAGE=1
	shift
fi
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${1:-${YJ_FUZZ_BUILD:-$SRC/build-fuzz}}
CC=${YJ_FUZZ_CC:-/usr/bin/clang}
JOBS=${YJ_FUZZ_JOBS:-$(nproc)}
TARGETS=(fuzz_json fuzz_protobuf fuzz_framing)

die() { echo "build.sh: $*" >&2; exit 1; }

[ -x "$CC" ] || die "$CC not found (Debian: apt-get install clang)"
RT="$("$CC" -print-resource-dir)/lib/linux/libclang_rt.fuzzer-$(uname -m).a"
[ -f "$RT" ] || die "no libFuzzer runtime at $RT (Debian: apt-get install libclang-rt-14-dev)"
command -v protoc-c >/dev/null || die "protoc-c not found (tools/install-deps.sh)"
command -v cmake >/dev/null || die "cmake not found (tools/install-deps.sh)"

PKGS="libzmq libprotobuf-c libconfig libsystemd libcurl libcjson libmicrohttpd libsodium"
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || die "pkg-config: missing development packages (tools/install-deps.sh)"
PKG_LIBS="$(pkg-config --libs $PKGS) -llmdb -lm"

mkdir -p "$B/gen" "$B/obj"

# --- generated sources, only when their inputs changed
newer() { # newer OUT IN...: true when OUT is missing or older than any IN
	local out=$1
	shift
	[ -e "$out" ] || return 0
	local f
	for f in "$@"; do
		[ "$f" -nt "$out" ] && return 0
	done
	return 1
}
if newer "$B/gen/yjlink.pb-c.c" "$SRC/proto/yjlink.proto"; then
	echo "build.sh: protoc-c yjlink.proto"
	protoc-c --proto_path="$SRC/proto" --c_out="$B/gen" "$SRC/proto/yjlink.proto"
fi
REF_FILES=("$SRC"/conf/ref/*.csv)
EMBED_FILES=("$SRC/conf/yjlinkd.conf" "${REF_FILES[@]}")
if newer "$B/gen/embedded.c" "${EMBED_FILES[@]}" "$SRC/tools/embed.cmake"; then
	echo "build.sh: embedding conf/yjlinkd.conf and conf/ref/*.csv"
	FILES=$(IFS='|'; echo "${EMBED_FILES[*]}")
	cmake -DOUT="$B/gen/embedded.c" "-DFILES=$FILES" -P "$SRC/tools/embed.cmake"
fi

INCLUDES="-I$SRC/daemon -I$SRC/adapters -I$B/gen $PKG_CFLAGS"
BASE="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra"
# extra flags last, so they can turn off part of what SAN turns on
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all ${YJ_FUZZ_EXTRA_CFLAGS:-}"

# --- objects: compile what is older than its source or any header
SOURCES=()
for f in "$SRC"/daemon/*.c "$SRC"/daemon/db/*.c "$SRC"/adapters/*.c; do
	[ "$(basename "$f")" = main.c ] || SOURCES+=("$f")
done
SOURCES+=("$B/gen/yjlink.pb-c.c" "$B/gen/embedded.c")
HEADERS=("$SRC"/daemon/*.h "$SRC"/daemon/db/*.h "$SRC"/adapters/*.h "$B/gen/yjlink.pb-c.h")

compile_set() { # compile_set DIR FLAGS: every source into DIR/*.o, then DIR/libyjfuzz.a
	local dir=$1 flags=$2 stale=() objs=() s o
	mkdir -p "$dir"
	for s in "${SOURCES[@]}"; do
		o="$dir/$(basename "${s%.c}").o"
		objs+=("$o")
		if newer "$o" "$s" "${HEADERS[@]}" "${BASH_SOURCE[0]}"; then
			stale+=("$s")
		fi
	done
	if [ ${#stale[@]} -gt 0 ]; then
		echo "build.sh: compiling ${#stale[@]} daemon sources into $dir"
		printf '%s\n' "${stale[@]}" |
			xargs -P "$JOBS" -I{} sh -c 'exec "$0" $1 -c "$2" -o "$3/$(basename "$2" .c).o"' "$CC" "$flags $INCLUDES" {} "$dir" ||
			die "compiling the daemon sources failed"
		rm -f "$dir/libyjfuzz.a"
	fi
	# only the objects of today's sources: one of a removed file stays out
	if [ ! -e "$dir/libyjfuzz.a" ] || [ "$(ar t "$dir/libyjfuzz.a" | wc -l)" -ne ${#objs[@]} ]; then
		rm -f "$dir/libyjfuzz.a"
		ar rcs "$dir/libyjfuzz.a" "${objs[@]}"
	fi
}

compile_set "$B/obj" "$BASE $SAN -fsanitize=fuzzer-no-link"

# --- targets
for t in "${TARGETS[@]}"; do
	if newer "$B/$t" "$SRC/tests/fuzz/$t.c" "$SRC/tests/fuzz/fuzz_common.h" "$B/obj/libyjfuzz.a"; then
		echo "build.sh: linking $t"
		"$CC" $BASE -Werror $SAN -fsanitize=fuzzer $INCLUDES "$SRC/tests/fuzz/$t.c" "$B/obj/libyjfuzz.a" \
			$PKG_LIBS -o "$B/$t"
	fi
done

# --- the corpus helper: plain build, sanitizers kept, no fuzzer runtime
if newer "$B/fz_pbpack" "$SRC/tests/fuzz/fz_pbpack.c" "$SRC/tests/fuzz/fuzz_common.h" "$B/obj/libyjfuzz.a"; then
	echo "build.sh: linking fz_pbpack"
	"$CC" $BASE -Werror $SAN -fsanitize=fuzzer-no-link $INCLUDES "$SRC/tests/fuzz/fz_pbpack.c" \
		"$B/obj/libyjfuzz.a" $PKG_LIBS -o "$B/fz_pbpack"
fi

# --- coverage builds: libFuzzer's driver without sanitizers, clang
# source-based coverage on the daemon sources only
if [ $COVERAGE -eq 1 ]; then
	COV="-fprofile-instr-generate -fcoverage-mapping"
	compile_set "$B/cov/obj" "$BASE $COV"
	for t in "${TARGETS[@]}"; do
		if newer "$B/cov/$t" "$SRC/tests/fuzz/$t.c" "$SRC/tests/fuzz/fuzz_common.h" "$B/cov/obj/libyjfuzz.a"; then
			echo "build.sh: linking cov/$t"
			"$CC" $BASE -fsanitize=fuzzer $COV $INCLUDES "$SRC/tests/fuzz/$t.c" "$B/cov/obj/libyjfuzz.a" \
				$PKG_LIBS -o "$B/cov/$t"
		fi
	done
fi
echo "build.sh: targets in $B: ${TARGETS[*]}"
