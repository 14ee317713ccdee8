#!/usr/bin/env bash
# check_install.sh BUILD_DIR: installs normgrad from BUILD_DIR into a temporary prefix and compiles and runs a
# small program outside the tree with `pkg-config --cflags --libs normgrad`, as a user of the library would.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
meson install -C "$build" --destdir "$prefix" >/dev/null
root="$prefix/usr/local"
libdir=$(dirname "$(find "$root" -name normgrad.pc | head -n 1)")
export PKG_CONFIG_PATH="$libdir" PKG_CONFIG_SYSROOT_DIR="$prefix"
cat > "$prefix/use.cpp" <<'CPP'
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
# shellcheck disable=SC2046
g++ -std=c++20 "$prefix/use.cpp" -o "$prefix/use" $(pkg-config --cflags --libs normgrad)
LD_LIBRARY_PATH="$(dirname "$(find "$root" -name 'libnormgrad.so' | head -n 1)")" "$prefix/use"
echo "install check: OK (headers, libnormgrad and normgrad.pc usable from outside the tree)"
