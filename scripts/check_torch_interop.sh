#!/usr/bin/env bash
# check_torch_interop.sh [BUILD_DIR]: installs Debian's python3-torch if it is missing, builds, and runs the
# PyTorch interop tests (tests/interop/): PyTorch loads a checkpoint normgrad trained and computes the same
# outputs, and normgrad loads one PyTorch trained and computes the same outputs. The README's test command
# runs them too, with the rest of the suite, and reports them as skipped where python3-torch cannot be
# installed (a large package, as it brings libtorch and its libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
normgrad_install_deps python3-torch
dir=${1:-build}
normgrad_build "$dir"
normgrad_say "running the PyTorch interop tests (meson test -C $dir --suite torch_interop)"
meson test -C "$dir" --suite torch_interop --print-errorlogs --verbose
