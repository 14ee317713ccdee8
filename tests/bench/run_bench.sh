#!/usr/bin/env bash
# run_bench.sh BENCH_EXE: runs normgrad's benchmark (BENCH_EXE writes a CSV with the columns
# bench,threads,median_us,...), then, when NORMGRAD_REFERENCE_BENCH names a reference program, runs it in the
# same sitting on the same machine and prints the ratio per case (normgrad / reference: below 1 means normgrad
# is faster). The reference is any program that takes an output path and writes a CSV with the same columns
# and case names, for example one written against libtorch:
#   NORMGRAD_REFERENCE_BENCH="path/to/reference bench" meson test -C build --benchmark
# Without it, only normgrad's numbers are printed.
set -euo pipefail
exe=$1
here=$(cd "$(dirname "$0")" && pwd)
out=${NORMGRAD_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "== normgrad"
"$exe" "$out/normgrad.csv"
if [ -n "${NORMGRAD_REFERENCE_BENCH:-}" ]; then
  echo "== reference: $NORMGRAD_REFERENCE_BENCH"
  # shellcheck disable=SC2086
  $NORMGRAD_REFERENCE_BENCH "$out/reference.csv" >/dev/null
  echo "== ratios, normgrad (1 thread) / reference (at its own thread counts)"
  python3 "$here/compare.py" "$out/normgrad.csv" "$out/reference.csv"
  echo "== normgrad (1 thread) / reference with 2 threads"
  sed 's/^\([^,]*\),1,/\1,2,/' "$out/normgrad.csv" > "$out/normgrad_as2.csv"
  python3 "$here/compare.py" "$out/normgrad_as2.csv" "$out/reference.csv" | grep -E '^bench| 2 ' | grep -v 'only in'
else
  echo "(NORMGRAD_REFERENCE_BENCH is not set: no reference, no ratios)"
fi
echo "CSV files in $out"
