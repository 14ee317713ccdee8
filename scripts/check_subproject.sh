#!/usr/bin/env bash
# check_subproject.sh: uses this checkout as a meson subproject, as the README's "Using normgrad from another
# project" says, from a project of three files in a temporary folder:
#   meson.build            dependency('normgrad'), found in the subproject (meson.override_dependency)
#   use.cpp                a program that computes a gradient with normgrad
#   subprojects/normgrad   this checkout (a symbolic link, where a user would have a wrap file or a clone)
# It configures, builds and runs that program with meson and ninja alone, and checks that normgrad as a
# subproject configured and built only its library: no tests (so no doctest or RapidCheck), no examples.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "subproject check: FAILED: $*" >&2; exit 1; }

mkdir "$work/subprojects"
ln -s "$checkout" "$work/subprojects/normgrad"
cat > "$work/meson.build" <<'MESON'
project('uses_normgrad', 'cpp', default_options : ['cpp_std=c++20'])
executable('use', 'use.cpp', dependencies : dependency('normgrad'))
MESON
cat > "$work/use.cpp" <<'CPP'
#include <normgrad.h>
#include <iostream>
int main() {
  ng::Tensor w = ng::tensor({2.0, -1.0}).requires_grad_();
  ng::Tensor loss = (w * w).sum();
  loss.backward();
  std::cout << "grad " << w.grad().at({0}) << " " << w.grad().at({1}) << "\n";
  return w.grad().at({0}) == 4.0 && w.grad().at({1}) == -2.0 ? 0 : 1;
}
CPP

# --force-fallback-for: take normgrad from subprojects/ even if an installed normgrad.pc could be found.
# buildtype plain (no optimization, no debug information) compiles fastest; the check is about the build.
meson setup "$work/build" "$work" --force-fallback-for=normgrad --buildtype=plain >"$work/setup.log" 2>&1 ||
  { cat "$work/setup.log"; fail "meson setup failed"; }
grep -qi 'doctest\|rapidcheck' "$work/build/meson-logs/meson-log.txt" &&
  fail "the subproject looked for doctest or RapidCheck: its tests were configured"
targets=$(ninja -C "$work/build" -t targets all)
grep -q 'subprojects/normgrad/tests/\|subprojects/normgrad/examples/' <<<"$targets" &&
  fail "the subproject has test or example targets: $(grep -m 3 'tests/\|examples/' <<<"$targets")"
ninja -C "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "ninja failed"; }
"$work/build/use" || fail "the program built against the subproject did not run correctly"
echo "subproject check: OK (dependency('normgrad') from subprojects/, library only, no doctest or RapidCheck)"
