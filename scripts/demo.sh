#!/usr/bin/env bash
# demo.sh: the main demo. Installs what is missing, builds, and trains the BN paper's MLP on Fashion-MNIST
# with and without Batch Normalization (figures and metrics.csv land in bn_paper_out/).
# Extra arguments go to the demo: bash scripts/demo.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
normgrad_install_deps
normgrad_build build
normgrad_say "running build/examples/bn_paper${*:+ $*}"
exec build/examples/bn_paper "$@"
