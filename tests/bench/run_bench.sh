#!/usr/bin/env bash
# run_bench.sh BENCH_EXE [BUILD_DIR REFERENCE_TARGET]: what `meson test -C build --benchmark` runs. Times
# normgrad's cases (BENCH_EXE, bench.cpp) and, where libtorch is installed, the same cases in libtorch
# (REFERENCE_TARGET, libtorch_reference.cpp, built here with ninja in BUILD_DIR), then prints one table: per
# case and thread count, normgrad's median, libtorch's and normgrad / libtorch (below 1: normgrad is faster).
#
# The two programs take turns per thread count (normgrad 1, libtorch 1, normgrad 2, libtorch 2), so both
# sides of a ratio are measured minutes apart rather than tens of minutes.
#
# Debian's libtorch calls whatever libblas.so.3 the loader finds. That is the reference BLAS (netlib),
# many times slower at matmul than OpenBLAS, unless OpenBLAS is installed (Debian's libopenblas0-openmp
# registers itself as libblas.so.3) or its folder is put first on LD_LIBRARY_PATH. This script puts it
# first, for the reference process only: NORMGRAD_OPENBLAS_DIR if set, else the folder Debian's
# libopenblas0-openmp (or -pthread, -serial) installs. It prints which libblas.so.3 the reference uses.
#
# Settings (environment): NORMGRAD_BENCH_THREADS (default "1,2"), NORMGRAD_BENCH_ONLY (run the cases whose
# name contains it), NORMGRAD_BENCH_OUT (folder for the CSV files; default a new temporary folder).
set -euo pipefail
bench=$1
reference=""
if [ $# -ge 3 ]; then
  echo "building the libtorch reference (about a minute the first time)"
  ninja -C "$2" "$3" >/dev/null || { echo "run_bench.sh: could not build $3 in $2" >&2; exit 1; }
  reference=$2/$3
fi
here=$(cd "$(dirname "$0")" && pwd)
out=${NORMGRAD_BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
IFS=, read -r -a thread_counts <<< "${NORMGRAD_BENCH_THREADS:-1,2}"
only=()
[ -n "${NORMGRAD_BENCH_ONLY:-}" ] && only=("--only=$NORMGRAD_BENCH_ONLY")

blas_note=""
if [ -n "$reference" ]; then
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
  openblas=${NORMGRAD_OPENBLAS_DIR:-}
  if [ -z "$openblas" ]; then
    for variant in openmp pthread serial; do
      if [ -e "/usr/lib/$multiarch/openblas-$variant/libblas.so.3" ]; then
        openblas=/usr/lib/$multiarch/openblas-$variant
        break
      fi
    done
  fi
  # Some machines set OPENBLAS_CORETYPE (and OPENBLAS_L2_SIZE) for older OpenBLAS builds; a forced core can
  # make OpenBLAS several times slower (a 512x512 matmul at 18 instead of 90 GFLOP/s), which flatters
  # normgrad. The reference runs with both unset, in its own process only; it prints the kernels it chose.
  if [ -n "${OPENBLAS_CORETYPE:-}${OPENBLAS_L2_SIZE:-}" ]; then
    echo "note: OPENBLAS_CORETYPE='${OPENBLAS_CORETYPE:-}' OPENBLAS_L2_SIZE='${OPENBLAS_L2_SIZE:-}' are set here; unset for the reference"
  fi
  reference_env=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE)
  # glibc's malloc gives large buffers fresh pages from the system (each page a fault when first touched) or
  # keeps them, depending on what the process freed before: libtorch's convolution case took 3.5 ms run
  # alone and 1.6 ms after the other cases, its CNN steps 4.6 to 13 ms. Told to keep its memory, libtorch
  # takes its fast times whatever ran before (1.64 ms alone), so that no ratio depends on the order of the
  # cases or on NORMGRAD_BENCH_ONLY. normgrad keeps its large buffers itself (autograd/buffer_cache.h).
  reference_env+=("GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864")
  [ -n "$openblas" ] && reference_env+=("LD_LIBRARY_PATH=$openblas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
  blas=$("${reference_env[@]}" ldd "$reference" | awk '$1 == "libblas.so.3" { print $3 }')
  blas_real=$(readlink -f "$blas" 2>/dev/null || echo "$blas")
  echo "libtorch reference uses libblas.so.3 = $blas_real"
  if [[ "$blas_real" != *openblas* ]]; then
    blas_note="WARNING: libtorch ran with the reference BLAS ($blas_real), not OpenBLAS: its matmul-bound cases are
many times slower than libtorch can be, so these ratios flatter normgrad. Install Debian's libopenblas0-openmp,
or set NORMGRAD_OPENBLAS_DIR to a folder holding OpenBLAS's libblas.so.3 (README, 'Tests, CI and benchmarks')."
    echo "$blas_note"
  fi
fi

# Other processes on the machine slow both sides, and threads far more than one thread: a thread that waits
# for a busy core stalls the whole op. The load is printed before and after so a reader can judge the table.
machine_load() { echo "machine: $(nproc) cores, load average (1, 5, 15 min) $(cut -d' ' -f1-3 /proc/loadavg)"; }
machine_load
for t in "${thread_counts[@]}"; do
  echo "== normgrad, $t thread(s)"
  "$bench" "$out/normgrad_$t.csv" "--threads=$t" "${only[@]}"
  if [ -n "$reference" ]; then
    echo "== libtorch, $t thread(s)"
    "${reference_env[@]}" "$reference" "$out/libtorch_$t.csv" "--threads=$t" "${only[@]}" | tee "$out/libtorch_$t.log"
  fi
done

# One table per side: the header of the first file, then every file's rows.
join_tables() {
  local side=$1 first=1 t
  for t in "${thread_counts[@]}"; do
    if [ $first -eq 1 ]; then cat "$out/${side}_$t.csv"; first=0; else tail -n +2 "$out/${side}_$t.csv"; fi
  done > "$out/$side.csv"
}
join_tables normgrad
echo
machine_load
if [ -n "$reference" ]; then
  join_tables libtorch
  grep -h "BLAS kernels" "$out"/libtorch_*.log | sort -u
  echo "== normgrad / libtorch (median us per call; ratio below 1: normgrad is faster)"
  /usr/bin/python3 "$here/compare.py" "$out/normgrad.csv" "$out/libtorch.csv"
  [ -n "$blas_note" ] && echo "$blas_note"
else
  echo "== normgrad (median us per call)"
  /usr/bin/python3 "$here/compare.py" "$out/normgrad.csv"
  echo "No libtorch reference: it is built where Debian's libtorch-dev is installed (apt install libtorch-dev"
  echo "libopenblas0-openmp, then meson setup --reconfigure on this build folder), and then runs beside normgrad."
fi
echo "CSV files in $out"
