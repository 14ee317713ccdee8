#!/usr/bin/env bash
# fuzz.sh: runs each libFuzzer target of tests/fuzz/ for a while and fails if any of them finds a crash.
#   bash scripts/fuzz.sh [BUILD_DIR [SECONDS]]        (defaults: build-clang, 30 seconds per target)
# BUILD_DIR must be configured with Debian's clang and -Dfuzz=true, under AddressSanitizer and UBSan:
#   CC=clang CXX=clang++ meson setup build-clang -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
#     -Dbuildtype=plain -Doptimization=1 -Ddebug=true -Dexamples=false -Dbenchmarks=false
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/) plus what earlier runs found
# (BUILD_DIR/fuzz/<target>/corpus/, kept between runs). A crash is saved as BUILD_DIR/fuzz/<target>/crash-*;
# replay it with  BUILD_DIR/tests/fuzz/<target> <that file>,  fix the code, and add the input to a test.
# The random seed is fixed (NORMGRAD_FUZZ_SEED, default 1) so that a run can be repeated as it was;
# NORMGRAD_FUZZ_SEED=0 lets libFuzzer pick a new one each run, which explores more over many runs.
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-clang}
seconds=${2:-30}
targets=(fuzz_idx fuzz_safetensors_header fuzz_safetensors fuzz_image_folder fuzz_op_args)
ninja -C "$build" "${targets[@]/#/tests/fuzz/}" >/dev/null || { echo "fuzz: building the targets in $build failed"; exit 1; }

# Leaks are findings too; undefined behaviour stops the run as a crash would.
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=0
for target in "${targets[@]}"; do
  work="$build/fuzz/$target"
  mkdir -p "$work/corpus"
  cp -n tests/fuzz/corpus/"$target"/* "$work/corpus/"
  dictionary=()
  [ -f "tests/fuzz/$target.dict" ] && dictionary=(-dict="tests/fuzz/$target.dict")
  # 4 KB inputs at most; one input may take 10 s and 1 GB before it counts as a hang or a blow-up.
  mkdir -p "$work/tmp"
  rm -rf "$work/tmp"/*  # scratch folders of earlier runs (a timed run ends without removing its own)
  TMPDIR="$work/tmp" "$build/tests/fuzz/$target" "${dictionary[@]}" -max_total_time="$seconds" -seed="${NORMGRAD_FUZZ_SEED:-1}" -max_len=4096 -timeout=10 \
    -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  echo "fuzz: $target: ${runs:-?} executions in $seconds s, corpus of $(ls "$work/corpus" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $target FAILED (exit $status); the end of $work/log:"
    tail -n 40 "$work/log"
    failed=1
  fi
done
exit $failed
