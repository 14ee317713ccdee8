#!/usr/bin/env bash
# run_bench.sh BENCH_EXE: runs normgrad's benchmark, then the libtorch reference in the same sitting on the
# same machine (../shared/anchors/libtorch, beside the checkout), and prints the ratio per case
# (normgrad / libtorch: below 1 means normgrad is faster). Without the reference, only normgrad's numbers.
set -euo pipefail
exe=$1
here=$(cd "$(dirname "$0")" && pwd)
anchors=$(cd "$here/../../.." && pwd)/shared/anchors
out=${NORMGRAD_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
echo "== normgrad"
"$exe" "$out/normgrad.csv"
if [ -x "$anchors/libtorch/run.sh" ] || [ -f "$anchors/libtorch/run.sh" ]; then
  echo "== libtorch reference (1 and 2 threads)"
  sh "$anchors/libtorch/run.sh" bench "$out/libtorch.csv" >/dev/null
  echo "== ratios, normgrad / libtorch (threads: libtorch's; normgrad is single-threaded)"
  python3 "$anchors/compare.py" "$out/normgrad.csv" "$out/libtorch.csv"
  # normgrad (1 thread) against libtorch with 2 threads, for the same cases
  sed 's/^\([^,]*\),1,/\1,2,/' "$out/normgrad.csv" > "$out/normgrad_as2.csv"
  python3 "$anchors/compare.py" "$out/normgrad_as2.csv" "$out/libtorch.csv" | grep -E '^bench| 2 ' | grep -v 'only in'
else
  echo "(no libtorch reference at $anchors/libtorch: ratios skipped)"
fi
echo "CSV files in $out"
