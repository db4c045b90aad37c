#!/usr/bin/env bash
# check_layers.sh: two rules of the layering that the compiler cannot see.
#
#  (a) The tools (yjlinkctl, yjlink-sim) link the common library only, never
#      the daemon's core: neither defines a global symbol that an object of
#      libyjcore.a defines (a tool that pulled in the config loader would read
#      secret files, one that copied a core function would drift from it).
#  (b) Only the store's own files use its generic key/value API (store.h):
#      no C file of daemon/ other than daemon/store.c and daemon/db/*.c, nor
#      of adapters/ or tools/, names a YJ_DB_* table or a yj_txn_* data call.
#      Comments and string literals are not code: they are left out.
#
# Usage: tests/check_layers.sh SOURCE_DIR BUILD_DIR   (from any directory; ctest "layers")
# Prints one line per check and, last, "N passed, N failed"; exits 1 if any failed.
set -uo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2
  exit 2
fi
src=$(cd "$1" && pwd) || exit 2
build=$(cd "$2" && pwd) || exit 2
passed=0
failed=0

pass() { echo "ok: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1"; failed=$((failed + 1)); }

# Global symbols defined, one "name" a line. Names the implementation
# reserves (a leading "__", or "_" and a capital: sanitizer and libc
# bookkeeping every object or binary may carry) are no project code.
defined_syms() {
  nm --defined-only --extern-only "$1" 2>/dev/null | awk 'NF == 3 { print $3 }' | grep -Ev '^(__|_[A-Z])' | sort -u
}

# --- (a) the tools share no object with the core
core="$build/libyjcore.a"
core_syms=$(mktemp)
trap 'rm -f "$core_syms"' EXIT
if [ ! -f "$core" ] || ! defined_syms "$core" >"$core_syms" || [ ! -s "$core_syms" ]; then
  core=""
fi
for tool in yjlinkctl yjlink-sim; do
  if [ -z "$core" ]; then
    fail "$tool: not checked: cannot list the symbols of $build/libyjcore.a (build it first)"
    continue
  fi
  bin="$build/$tool"
  if [ ! -x "$bin" ]; then
    fail "$tool: no $bin (build it first)"
    continue
  fi
  tool_syms=$(defined_syms "$bin")
  if [ -z "$tool_syms" ]; then
    fail "$tool: $bin has no symbol table (stripped?)"
    continue
  fi
  shared=$(comm -12 "$core_syms" <(printf '%s\n' "$tool_syms"))
  if [ -n "$shared" ]; then
    fail "$tool defines symbols of libyjcore.a (it must link yjcommon only):"
    # Name the core object each comes from, so the fix is plain.
    nm --defined-only --extern-only "$core" 2>/dev/null |
      awk -v want="$shared" 'BEGIN { n = split(want, w, "\n"); for (i = 1; i <= n; i++) s[w[i]] = 1 }
        /:$/ { obj = substr($0, 1, length($0) - 1) }
        NF == 3 && ($3 in s) { print "  " $3 " (" obj ")" }' | sort -u
  else
    pass "$tool links nothing of libyjcore.a"
  fi
done

# --- (b) the store's tables and data calls stay in daemon/store.c and daemon/db/
files=$(cd "$src" && find daemon adapters tools -type f -name '*.c' 2>/dev/null |
  grep -v -e '^daemon/store\.c$' -e '^daemon/db/' | sort)
if [ -z "$files" ]; then
  fail "no C files found under $src/daemon, adapters, tools"
else
  # shellcheck disable=SC2086  # one file name a word
  uses=$(cd "$src" && perl -e '
    my $re = qr/\b(YJ_DB_[A-Z0-9_]+|yj_txn_(?:get|put|put_new|append|del|iter|iter_dups|count|last_u64|next_id))\b/;
    for my $f (@ARGV) {
      open(my $fh, "<", $f) or die "$f: $!\n";
      local $/;
      my $text = <$fh>;
      close $fh;
      my @orig = split /\n/, $text, -1;
      # Blank string and character literals and comments, keeping every newline.
      $text =~ s{("(?:\\.|[^"\\\n])*")|(\x27(?:\\.|[^\x27\\\n])*\x27)|(/\*.*?\*/)|(//[^\n]*)}
                {defined $1 ? "\"\"" : defined $2 ? "\x27\x27" : defined $3 ? ($3 =~ tr/\n//cdr) : ""}gse;
      my $n = 0;
      for my $l (split /\n/, $text, -1) {
        $n++;
        while ($l =~ /$re/g) {
          my $name = $1;
          (my $o = $orig[$n - 1]) =~ s/^\s+//;
          print "  $f:$n: $name: $o\n";
        }
      }
    }' $files)
  if [ $? -ne 0 ]; then
    fail "could not scan the sources (perl)"
  elif [ -n "$uses" ]; then
    fail "only daemon/store.c and daemon/db/ may name YJ_DB_* or call yj_txn_get/put/put_new/append/del/iter/iter_dups/count/last_u64/next_id:"
    printf '%s\n' "$uses"
  else
    pass "only daemon/store.c and daemon/db/ use the store's tables and data calls"
  fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
