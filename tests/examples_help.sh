#!/usr/bin/env bash
# examples_help.sh EXAMPLE...: every example answers --help with its usage on stdout and exit code 0, and
# writes nothing: each runs in a new empty folder, which must still be empty afterwards. An unknown
# option must fail (exit code not 0) with a message on stderr, also without writing anything.
# Run by meson (examples/meson.build) with the built examples as arguments.
set -uo pipefail
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }
for exe in "$@"; do
  exe=$(realpath "$exe")  # meson passes paths relative to the build folder; each run is in another folder
  name=$(basename "$exe")
  before=$failures
  dir=$(mktemp -d)
  out=$(cd "$dir" && timeout 60 "$exe" --help 2>"$dir.err")
  status=$?
  [ "$status" -eq 0 ] || fail "$name --help exited with $status: $(cat "$dir.err")"
  grep -q "usage: $name" <<<"$out" || fail "$name --help printed no 'usage: $name' line: ${out:0:200}"
  [ -z "$(ls -A "$dir")" ] || fail "$name --help wrote files: $(ls -A "$dir" | head -n 5 | tr '\n' ' ')"
  (cd "$dir" && timeout 60 "$exe" --no-such-option >/dev/null 2>"$dir.err")
  status=$?
  [ "$status" -ne 0 ] || fail "$name --no-such-option exited with 0"
  [ -s "$dir.err" ] || fail "$name --no-such-option printed nothing on stderr"
  [ -z "$(ls -A "$dir")" ] || fail "$name --no-such-option wrote files: $(ls -A "$dir" | head -n 5 | tr '\n' ' ')"
  rm -rf "$dir" "$dir.err"
  [ "$failures" -eq "$before" ] && echo "$name: --help prints its usage and exits 0, an unknown option is refused, no file written"
done
[ "$failures" -eq 0 ]
