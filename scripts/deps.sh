#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages normgrad needs, if any are missing (sourced by demo.sh and test.sh).
# Idempotent: when everything is installed it does nothing. apt-get runs as root, through sudo when needed.
normgrad_packages=(meson ninja-build g++ pkg-config doctest-dev libstb-dev zlib1g-dev librapidcheck-dev
                   dataset-fashion-mnist)

normgrad_install_deps() {
  local missing=() p
  for p in "${normgrad_packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "normgrad: installing missing Debian packages: ${missing[*]}" >&2
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "normgrad: run as root, or install: ${missing[*]}" >&2; return 1; }
    as_root=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update -qq &&
    "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures (once) and builds a meson build folder: normgrad_build DIR [meson setup options...]
normgrad_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || return 1
  fi
  ninja -C "$dir" >/dev/null || ninja -C "$dir"
}
