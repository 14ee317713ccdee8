#!/usr/bin/env bash
# deps.sh: the steps the quick-start scripts share, sourced by demo.sh, test.sh and the checks CI runs:
# installing the Debian 12 packages normgrad needs (only those missing), configuring a build folder, and
# building it. Each step prints one line saying what it does, so a first run on a fresh machine (apt-get,
# then 80 s of compiling on two idle cores, longer on busy ones) is never silent; compiler warnings show.
normgrad_packages=(meson ninja-build g++ pkg-config dpkg-dev doctest-dev libstb-dev zlib1g-dev librapidcheck-dev
                   dataset-fashion-mnist)

normgrad_say() { echo "normgrad: $*" >&2; }

# Installs the packages above and any given as arguments, if some are missing; does nothing otherwise.
# apt-get runs as root, through sudo when needed. Its output is summarized into one progress line (all
# of it is kept in a log shown if it fails).
normgrad_install_deps() {
  local missing=() p
  for p in "${normgrad_packages[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { normgrad_say "run as root, or install: ${missing[*]}"; return 1; }
    as_root=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  local log
  log=$(mktemp)
  normgrad_say "installing Debian packages: ${missing[*]} (apt-get update, then apt-get install)"
  if ! (set -o pipefail
        "${as_root[@]}" apt-get update -qq >"$log" 2>&1 &&
          "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" 2>&1 |
            tee -a "$log" | normgrad_apt_progress); then
    tail -n 20 "$log" >&2
    normgrad_say "apt-get failed (its output is above)"
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

# Reads apt-get install's output and shows one line: how many packages are fetched, unpacked and set up.
# On a terminal the line is rewritten in place; in a log (CI) it is printed at every 25%.
normgrad_apt_progress() {
  local tty=0
  [ -t 2 ] && tty=1
  awk -v tty="$tty" '
    function show(final) {
      line = sprintf("  apt-get: %d packages to install: %d fetched, %d unpacked, %d set up", total, got, unpacked, set_up)
      if (tty) { printf "\r%s%s", line, (final ? "\n" : "") > "/dev/stderr" }
      else if (line != printed && (final || set_up * 4 >= (shown + 1) * total)) {
        print line > "/dev/stderr"; printed = line; shown++
      }
      fflush("/dev/stderr")
    }
    /newly installed/ { total = $1 + $3 }
    /^Get:/           { got++; show(0) }
    /^Unpacking /     { unpacked++; show(0) }
    /^Setting up /    { set_up++; show(0) }
    END               { if (total) show(1) }'
}

# Configures (once) and builds a meson build folder: normgrad_build DIR [meson setup options...]
# meson's report goes to DIR/meson-logs/ (shown if it fails); ninja prints its own progress line
# ([done/total] and the file it compiles) and every compiler warning.
normgrad_build() {
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    normgrad_say "configuring $dir/ (meson setup${*:+ $*})"
    local out
    if ! out=$(meson setup "$dir" "$@" 2>&1); then
      echo "$out" >&2
      normgrad_say "meson setup failed (its output is above)"
      return 1
    fi
    # Show meson's warnings, if any; finding none is the normal case, not an error (callers run under set -e).
    grep -i 'warning' <<<"$out" >&2 || true
  fi
  normgrad_say "building $dir/ (ninja; a first build took 80 s on an idle 2-core machine, several minutes on a busy one)"
  ninja -C "$dir"
}
