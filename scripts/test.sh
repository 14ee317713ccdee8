#!/usr/bin/env bash
# test.sh: the whole test suite. Installs what is missing, builds, runs every test program with meson,
# and ends with one line "N passed, N failed" counting test cases over all programs.
# Usage: bash scripts/test.sh [BUILD_DIR [meson setup options...]]   (default folder: build)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
normgrad_install_deps || { echo "0 passed, 1 failed"; exit 1; }
# python3-torch is for the PyTorch interop tests only (tests/interop/): where it cannot be installed, they
# are reported as skipped and everything else still runs.
normgrad_install_deps python3-torch || normgrad_say "python3-torch is not installed: the PyTorch interop tests will be skipped"
dir=${1:-build}
shift $(( $# > 0 ? 1 : 0 ))
normgrad_build "$dir" "$@" || { echo "0 passed, 1 failed"; exit 1; }
normgrad_say "running the tests (meson test -C $dir)"
meson test -C "$dir" --print-errorlogs --num-processes 2
status=$?
python3 scripts/count_tests.py "$dir/meson-logs/testlog.json"
exit $status
