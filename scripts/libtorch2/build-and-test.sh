#!/usr/bin/env bash
# Builds imbench against LibTorch 2.x (Debian trixie's libtorch-dev 2.6, GCC 14,
# CMake 3.31) and runs its whole ctest, on a Debian bookworm machine (issue 16).
#
# A Debian trixie root filesystem is made with debootstrap (or reused when it
# exists and is complete), imbench's packages are installed in it with apt,
# this repository is bind-mounted into it at its own path, and the project's
# own steps (scripts/build.sh, `imbench data fetch`, ctest -j2 as in
# scripts/test.sh) run there under chroot in build-torch2/ (never build/).
# Prints the wall time of each phase and ctest's summary line; exits non-zero
# when a phase or a test fails.
#
# Needs: root (debootstrap, mount, chroot), network to deb.debian.org, about
# 3 GB of disk for the root and the build.
#
# Usage: sudo bash scripts/libtorch2/build-and-test.sh [extra ctest arguments]
# Environment (all optional):
#   IMBENCH_TRIXIE_ROOT   the root filesystem (default /var/cache/imbench/trixie-root)
#   IMBENCH_TRIXIE_MIRROR Debian mirror (default http://deb.debian.org/debian)
#   IMBENCH_TORCH2_BUILD_DIR  build folder, relative to the repository (default build-torch2)
#   IMBENCH_JOBS          compile jobs (default 2)
#   IMBENCH_DATA_DIR      a data folder (MNIST ...) on this machine: bind-mounted at the
#                         same path, so the tests that need MNIST run (they skip without it)
#   IMBENCH_SKIP_APT=1    do not run apt in the root (it must already have the packages)
#   IMBENCH_PREPARE_ONLY=1  stop after the root and its packages (no build)
#   IMBENCH_BUILD_ONLY=1  stop after the build
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rootfs=${IMBENCH_TRIXIE_ROOT:-/var/cache/imbench/trixie-root}
rootfs=${rootfs%/}
mirror=${IMBENCH_TRIXIE_MIRROR:-http://deb.debian.org/debian}
build_rel=${IMBENCH_TORCH2_BUILD_DIR:-build-torch2}
jobs=${IMBENCH_JOBS:-2}

say() { echo "libtorch2: $*"; }
die() { echo "libtorch2: FAILED: $*" >&2; exit 1; }
t_all=$(date +%s)
phase_start() { phase=$1; t_phase=$(date +%s); say "--- $phase"; }
phase_end() { local s=$(( $(date +%s) - t_phase )); times+=("$phase: ${s} s"); say "--- $phase: ${s} s"; }
times=()

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, mount, chroot)"
case $rootfs in /|"") die "IMBENCH_TRIXIE_ROOT must not be /" ;; esac
[ "$root" != / ] || die "the repository cannot be /"

# Everything mounted under the root, innermost last; unmounted in reverse
# order whatever happens (lazily when busy), so that a root left behind never
# holds this repository or the host's /dev.
mounts=()
cleanup() {
  local rc=$? i
  for (( i=${#mounts[@]}-1; i>=0; i-- )); do
    umount -R "${mounts[$i]}" 2>/dev/null || umount -R -l "${mounts[$i]}" 2>/dev/null ||
      echo "libtorch2: warning: could not unmount ${mounts[$i]}" >&2
  done
  mounts=()
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mounted_under() { awk -v r="$1" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts; }
bind() {  # bind SRC [ro]: SRC at the same path inside the root
  local src=$1 dst=$rootfs$1
  mkdir -p "$dst"
  mount --bind "$src" "$dst"
  mounts+=("$dst")
  if [ "${2:-}" = ro ]; then mount -o remount,bind,ro "$dst"; fi
}
mount_system() {
  [ ${#mounts[@]} = 0 ] || return 0
  [ -z "$(mounted_under "$rootfs")" ] || die "something is already mounted under $rootfs: $(mounted_under "$rootfs" | tr '\n' ' ')"
  mount -t proc proc "$rootfs/proc"; mounts+=("$rootfs/proc")
  mount -t sysfs sysfs "$rootfs/sys"; mounts+=("$rootfs/sys")
  mount --rbind /dev "$rootfs/dev"; mount --make-rslave "$rootfs/dev"; mounts+=("$rootfs/dev")
  cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
}
in_root() { chroot "$rootfs" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
              LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# --- 1. the trixie root ---------------------------------------------------------
phase_start debootstrap
complete() { [ -x "$rootfs/usr/bin/apt-get" ] && [ ! -e "$rootfs/debootstrap" ] && grep -qs '^13' "$rootfs/etc/debian_version"; }
if complete; then
  say "reusing the trixie root $rootfs (Debian $(cat "$rootfs/etc/debian_version"))"
else
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; } ||
      die "apt-get install debootstrap failed"
  fi
  [ -e /usr/share/debootstrap/scripts/trixie ] || die "this debootstrap ($(debootstrap --version)) does not know trixie"
  if [ -e "$rootfs" ]; then
    [ -z "$(mounted_under "$rootfs")" ] || die "$rootfs is incomplete and has mounts under it: unmount them first"
    say "removing the incomplete root $rootfs"
    rm -rf --one-file-system "$rootfs"
  fi
  mkdir -p "$(dirname "$rootfs")"
  say "debootstrap --variant=minbase trixie $rootfs $mirror (log: $rootfs.debootstrap.log)"
  debootstrap --variant=minbase trixie "$rootfs" "$mirror" > "$rootfs.debootstrap.log" 2>&1 ||
    { tail -20 "$rootfs.debootstrap.log" >&2; die "debootstrap failed (log: $rootfs.debootstrap.log)"; }
  complete || die "debootstrap finished but $rootfs is not a complete trixie root"
fi
phase_end

# --- 2. imbench's packages (scripts/packages.sh: the same names in trixie; this
# machine's extras of setup.sh, clang and Slurm, are not needed in the root) ----------
# shellcheck source=scripts/packages.sh
. "$root/scripts/packages.sh"
packages=("${build_packages[@]}")
phase_start apt
mount_system
if [ "${IMBENCH_SKIP_APT:-0}" = 1 ]; then
  say "IMBENCH_SKIP_APT=1: not running apt"
else
  missing=()
  for p in "${packages[@]}"; do
    in_root dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${#missing[@]} packages: ${missing[*]} (log: $rootfs.apt.log)"
    # No daemons started by maintainer scripts inside the root.
    printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"; chmod +x "$rootfs/usr/sbin/policy-rc.d"
    { in_root apt-get update -q && in_root apt-get install -y -q --no-install-recommends "${missing[@]}"; } > "$rootfs.apt.log" 2>&1 ||
      { tail -30 "$rootfs.apt.log" >&2; die "apt-get install in the trixie root failed (log: $rootfs.apt.log)"; }
    in_root apt-get clean
  else
    say "all ${#packages[@]} packages present"
  fi
  # Torch must use OpenMP OpenBLAS, as scripts/setup.sh pins it on bookworm.
  arch=$(in_root dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  for lib in libblas.so.3 liblapack.so.3; do
    target=/usr/lib/$arch/openblas-openmp/$lib
    [ -e "$rootfs$target" ] || die "$target not found in the root after installing libopenblas0-openmp"
    in_root update-alternatives --set "$lib-$arch" "$target" >/dev/null
  done
fi
say "$(in_root dpkg-query -W -f='${Package} ${Version}\n' libtorch-dev cmake g++ libhdf5-dev 2>/dev/null | tr '\n' ';' | sed 's/;/; /g')"
phase_end
if [ "${IMBENCH_PREPARE_ONLY:-0}" = 1 ]; then say "IMBENCH_PREPARE_ONLY=1: stopping before the build"; exit 0; fi

# --- 3. build ----------------------------------------------------------------------
# The repository at its own path, so every path in the build tree is the same
# inside and outside; a git worktree's shared .git folder too (read-only), so
# cmake/Version.cmake records the revision.
bind "$root"
common=$(git -C "$root" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)
case $common in ""|"$root"/*) ;; *) [ -d "$common" ] && bind "$common" ro ;; esac
if [ -n "${IMBENCH_DATA_DIR:-}" ]; then
  [ -d "$IMBENCH_DATA_DIR" ] || die "IMBENCH_DATA_DIR=$IMBENCH_DATA_DIR is not a folder"
  IMBENCH_DATA_DIR=$(cd "$IMBENCH_DATA_DIR" && pwd)
  case $IMBENCH_DATA_DIR in "$root"|"$root"/*) ;; *) bind "$IMBENCH_DATA_DIR" ;; esac
fi
build=$root/$build_rel
run_env=(IMBENCH_BUILD_DIR="$build" IMBENCH_JOBS="$jobs" CCACHE_DIR=/var/cache/ccache)
[ -z "${IMBENCH_DATA_DIR:-}" ] || run_env+=(IMBENCH_DATA_DIR="$IMBENCH_DATA_DIR")

phase_start build
say "$(in_root g++ --version | head -1); $(in_root cmake --version | head -1); log: $build.log"
if ! in_root "${run_env[@]}" bash "$root/scripts/build.sh" -DIMBENCH_BUILD_TESTS=ON -DIMBENCH_BUILD_BENCHMARKS=ON > "$build.log" 2>&1; then
  grep -E 'error|Error' "$build.log" | head -30 >&2 || true
  tail -30 "$build.log" >&2
  die "build failed (log: $build.log)"
fi
phase_end
if [ "${IMBENCH_BUILD_ONLY:-0}" = 1 ]; then say "IMBENCH_BUILD_ONLY=1: stopping after the build"; exit 0; fi

# --- 4. data and tests (scripts/test.sh's steps) ------------------------------------------
phase_start ctest
in_root "${run_env[@]}" timeout 300 "$build/imbench" data fetch --dataset mnist > "$build.fetch.log" 2>&1 ||
  say "warning: MNIST could not be fetched; tests that need it will be skipped (log: $build.fetch.log)"
set +e
in_root "${run_env[@]}" bash -c 'cd "$1" && shift && ctest --output-on-failure -j2 "$@"' ctest "$build" "$@" > "$build.ctest.log" 2>&1
ctest_rc=$?
set -e
phase_end

say "torch: $(in_root dpkg-query -W -f='${Version}' libtorch-dev)"
for t in "${times[@]}"; do say "time $t"; done
say "time total: $(( $(date +%s) - t_all )) s"
grep -E 'tests passed|tests failed out of' "$build.ctest.log" | tail -1 | sed 's/^/libtorch2: ctest: /' ||
  say "ctest: no summary line (log: $build.ctest.log)"
if [ "$ctest_rc" != 0 ]; then
  sed -n '/The following tests FAILED/,$p' "$build.ctest.log" >&2
  die "ctest exit $ctest_rc (log: $build.ctest.log)"
fi
say "all tests passed"
