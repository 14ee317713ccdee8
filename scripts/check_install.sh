#!/usr/bin/env bash
# check_install.sh BUILD_DIR: installs normgrad from BUILD_DIR into a temporary prefix that is not a system
# one, and uses it from outside the tree as the README's "Using normgrad from another project" says:
#   - the shared library carries its version (libnormgrad.so.X.Y.Z) and its soname (libnormgrad.so.X.Y
#     while the major version is 0), and a program linked with it asks for that soname;
#   - `pkg-config --cflags --libs normgrad` alone compiles a program, and its Cflags carry -std=c++20 (a
#     compiler's default is older: C++17 for g++ 12);
#   - that program, linked with the rpath the README shows, runs with no environment; linked without it,
#     it runs with LD_LIBRARY_PATH as the README shows.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install check: FAILED: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$work/root" >/dev/null
pc=$(find "$work/root" -name normgrad.pc | head -n 1)
[ -n "$pc" ] || fail "meson install wrote no normgrad.pc"
# The installed tree lives under $work/root; PKG_CONFIG_SYSROOT_DIR makes pkg-config's paths point there.
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR="$work/root"
libdir=$(pkg-config --variable=libdir normgrad)

version=$(pkg-config --modversion normgrad)
IFS=. read -r major minor _ <<<"$version"
if [ "$major" = 0 ]; then soname="libnormgrad.so.$major.$minor"; else soname="libnormgrad.so.$major"; fi
[ -f "$libdir/libnormgrad.so.$version" ] || fail "no $libdir/libnormgrad.so.$version"
[ -L "$libdir/$soname" ] && [ -L "$libdir/libnormgrad.so" ] || fail "the symbolic links $soname and libnormgrad.so are missing"
readelf -d "$libdir/libnormgrad.so.$version" | grep -q "SONAME.*\[$soname\]" ||
  fail "the soname of libnormgrad.so.$version is not $soname: $(readelf -d "$libdir/libnormgrad.so.$version" | grep SONAME)"
pkg-config --cflags normgrad | grep -q -- '-std=c++20' || fail "pkg-config --cflags normgrad lacks -std=c++20"

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
# The README's two ways, word for word but for the folder: an rpath, or LD_LIBRARY_PATH.
# shellcheck disable=SC2046
g++ "$work/use.cpp" -o "$work/use_rpath" $(pkg-config --cflags --libs normgrad) -Wl,-rpath,"$(pkg-config --variable=libdir normgrad)"
# shellcheck disable=SC2046
g++ "$work/use.cpp" -o "$work/use" $(pkg-config --cflags --libs normgrad)
readelf -d "$work/use" | grep -q "NEEDED.*\[$soname\]" || fail "the program does not ask for $soname"
env -u LD_LIBRARY_PATH "$work/use_rpath" || fail "the program linked with -Wl,-rpath did not run"
LD_LIBRARY_PATH="$(pkg-config --variable=libdir normgrad)" "$work/use" || fail "the program did not run with LD_LIBRARY_PATH"
echo "install check: OK ($soname, -std=c++20 from pkg-config, runs from a non-system prefix with an rpath or LD_LIBRARY_PATH)"
