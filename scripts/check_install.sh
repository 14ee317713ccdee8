#!/usr/bin/env bash
# check_install.sh BUILD_DIR: runs the README's install commands ("Using normgrad from another project",
# the two ```sh blocks marked "check_install.sh runs this block as it is") word for word, so that the check
# fails whenever a user copying them would:
#   1. as root: `meson install -C build`, ldconfig, g++ with pkg-config's flags alone, ./train, with the
#      system's default pkg-config and loader paths (nothing set); afterwards `ninja uninstall` and ldconfig
#      take the installed files away again. Not as root: said and skipped.
#   2. a prefix of one's own ($HOME/.local, with HOME a temporary folder here): meson setup, meson install,
#      PKG_CONFIG_PATH as the README writes it, g++ with an rpath, ./train.
# Each block runs under bash -e in a new temporary folder that stands for the user's checkout: links to the
# checkout's files, `build` a link to BUILD_DIR, and the user's program train.cpp.
# Beside that: the library carries its version and soname, and pkg-config's Cflags carry -std=c++20.
set -euo pipefail
checkout=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-build}" && pwd)
work=$(mktemp -d)
installed_system=0
cleanup() {
  if [ "$installed_system" = 1 ]; then ninja -C "$build" uninstall >/dev/null && ldconfig; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "install check: FAILED: $*" >&2; exit 1; }

# The README's blocks: the ```sh block after each marker line, in order.
mapfile -t blocks < <(awk '
  /<!-- check_install.sh runs this block as it is -->/ { marked = 1; next }
  marked && /^```sh/ { inside = 1; block = ""; next }
  inside && /^```/ { inside = 0; marked = 0; gsub(/\n/, "\\n", block); print block; next }
  inside { block = block $0 "\n" }' "$checkout/README.md")
[ "${#blocks[@]}" -eq 2 ] || fail "expected 2 marked sh blocks in README.md, found ${#blocks[@]}"

# A program of the user's: a gradient, checked.
write_program() {
  cat > "$1/train.cpp" <<'CPP'
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
}

# run_block NAME TEXT [env...]: the block's lines as a bash script under -e, in a folder of its own.
run_block() {
  local name=$1 text=$2; shift 2
  local dir="$work/$name"
  mkdir -p "$dir/home"
  write_program "$dir"
  local entry
  for entry in "$checkout"/*; do
    case $(basename "$entry") in build*) ;; *) ln -s "$entry" "$dir/" ;; esac
  done
  ln -s "$build" "$dir/build"
  printf '%b' "$text" > "$dir/block.sh"
  echo "install check, $name: running the README's block:"
  sed 's/^/    /' "$dir/block.sh"
  (cd "$dir" && env -u PKG_CONFIG_PATH -u LD_LIBRARY_PATH HOME="$dir/home" "$@" bash -euo pipefail block.sh) ||
    fail "$name: the README's block failed (above)"
}

# 1. The system prefix, as root.
if [ "$(id -u)" -eq 0 ]; then
  [ ! -e /usr/local/include/normgrad/normgrad.h ] ||
    fail "normgrad is already installed in /usr/local (ninja -C build uninstall); the check would overwrite it"
  installed_system=1
  run_block system "${blocks[0]}"
  ninja -C "$build" uninstall >/dev/null && ldconfig
  installed_system=0
  [ ! -e /usr/local/include/normgrad/normgrad.h ] || fail "ninja uninstall left /usr/local/include/normgrad"
else
  echo "install check, system: skipped (needs root: meson install into /usr/local)"
fi

# 2. A prefix of one's own.
run_block home "${blocks[1]}"
home="$work/home/home/.local"
libdir=$(PKG_CONFIG_PATH="$home/lib/x86_64-linux-gnu/pkgconfig" pkg-config --variable=libdir normgrad)
version=$(PKG_CONFIG_PATH="$home/lib/x86_64-linux-gnu/pkgconfig" pkg-config --modversion normgrad)
cflags=$(PKG_CONFIG_PATH="$home/lib/x86_64-linux-gnu/pkgconfig" pkg-config --cflags normgrad)
IFS=. read -r major minor _ <<<"$version" || true
if [ "$major" = 0 ]; then soname="libnormgrad.so.$major.$minor"; else soname="libnormgrad.so.$major"; fi
[ -f "$libdir/libnormgrad.so.$version" ] || fail "no $libdir/libnormgrad.so.$version"
[ -L "$libdir/$soname" ] && [ -L "$libdir/libnormgrad.so" ] || fail "the symbolic links $soname and libnormgrad.so are missing"
readelf -d "$libdir/libnormgrad.so.$version" | grep -q "SONAME.*\[$soname\]" ||
  fail "the soname of libnormgrad.so.$version is not $soname"
readelf -d "$work/home/train" | grep -q "NEEDED.*\[$soname\]" || fail "the program does not ask for $soname"
grep -q -- '-std=c++20' <<<"$cflags" || fail "pkg-config --cflags normgrad lacks -std=c++20"
echo "install check: OK (the README's blocks run as written; $soname, -std=c++20 from pkg-config)"
