#!/usr/bin/env bash
# Issue 16 item 4 (groundwork, no GPU needed): configures, compiles and links
# imbench's CUDA build against Debian trixie's libtorch-cuda-dev 2.6 (contrib)
# and the CUDA 12.4 toolkit of non-free, inside the trixie root that
# scripts/libtorch2/build-and-test.sh makes (run that first, at least with
# IMBENCH_PREPARE_ONLY=1). Nothing CUDA is installed: the .debs are fetched
# with `apt-get download` and unpacked with `dpkg -x` into /opt/torch-cuda of
# the root (nvidia-cudnn, a downloader that cannot work offline, is left out:
# the build then has no cuDNN). Only g++-13 is installed with apt (nvcc 12.4
# accepts GCC <= 13; imbench's own C++ is still compiled by GCC 14).
#
# The unpacked toolkit is relocated and patched (docs/gpu.md, "Debian trixie's
# CUDA LibTorch"): its nvcc wrapper and nvcc.profile name /opt/torch-cuda,
# Debian's g++/gcc wrappers beside nvcc are moved aside, and the copy of
# crt/math_functions.h gets `noexcept(true)` on sinpi/cospi/sinpif/cospif,
# which glibc 2.41 declares so (CUDA 12.9 has the same fix).
#
# Usage: sudo bash scripts/libtorch2/cuda-try.sh   (build folder: build-torch2-cuda)
# Environment: IMBENCH_TRIXIE_ROOT, IMBENCH_JOBS (2), TORCH_CUDA_ARCH_LIST (9.0),
#   IMBENCH_CONFIGURE_ONLY=1 (stop after cmake's configure step),
#   IMBENCH_CUDA_NO_CUDNN_LINK=1 (link while leaving cuDNN's symbols unresolved)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
rootfs=${IMBENCH_TRIXIE_ROOT:-/var/cache/imbench/trixie-root}
rootfs=${rootfs%/}
jobs=${IMBENCH_JOBS:-2}
T=/opt/torch-cuda            # inside the root
X=$rootfs$T                  # on this machine
debs=$rootfs/var/cache/imbench-cuda/debs
build=$root/build-torch2-cuda
say() { echo "libtorch2-cuda: $*"; }
die() { echo "libtorch2-cuda: FAILED: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$rootfs/usr/bin/cmake" ] || die "no cmake in $rootfs: run scripts/libtorch2/build-and-test.sh first (IMBENCH_PREPARE_ONLY=1 is enough)"
in_root() { chroot "$rootfs" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
t0=$(date +%s)

# --- download and unpack (contrib + non-free, with a sources list and lists of their own) ---
apt_opts=(-o Dir::Etc::SourceList=/etc/apt/cuda-sources.list -o Dir::Etc::SourceParts=/nonexistent
          -o Dir::State::Lists=/var/lib/apt/lists-cuda)
if [ ! -e "$X/.complete" ]; then
  echo "deb http://deb.debian.org/debian trixie main contrib non-free" > "$rootfs/etc/apt/cuda-sources.list"
  mkdir -p "$rootfs/var/lib/apt/lists-cuda/partial" "$debs"
  in_root apt-get "${apt_opts[@]}" update -q > /dev/null
  # What apt would install for the CUDA LibTorch and nvcc, less the driver-side,
  # GL/OpenCL, profiler and downloader packages and the compilers it pulls.
  mapfile -t pkgs < <(in_root apt-get "${apt_opts[@]}" -s install --no-install-recommends libtorch-cuda-dev nvidia-cuda-toolkit |
    awk '/^Inst /{print $2}' | grep -vE '^(update-glx|glx-|nvidia-installer-cleanup|libkmod2|pci\.ids|libpci3|pciutils|nvidia-legacy-check|nvidia-support|nvidia-alternative|libnvidia-pkcs11|gcc-13|cpp-13|curl|libgcc-13|libstdc\+\+-13|g\+\+-13|nvidia-cudnn|nvidia-profiler|opencl|ocl-icd|nvidia-opencl)' | sort -u)
  [ ${#pkgs[@]} -gt 10 ] || die "apt found no CUDA packages to download"
  say "downloading ${#pkgs[@]} packages into $debs"
  in_root bash -c 'cd /var/cache/imbench-cuda/debs && apt-get "$@" download '"${pkgs[*]}" apt "${apt_opts[@]}" > "$debs.log" 2>&1 ||
    { tail "$debs.log" >&2; die "apt-get download failed"; }
  rm -rf "$X"; mkdir -p "$X"
  for d in "$debs"/*.deb; do dpkg -x "$d" "$X"; done
  # Relocate: nvcc's wrapper and profile name /usr; cudafe++, ptxas, fatbinary live in usr/bin.
  sed -i "s#/usr/lib/nvidia-cuda-toolkit#$T/usr/lib/nvidia-cuda-toolkit#g" "$X/usr/bin/nvcc"
  rm -f "$X/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile"
  cat > "$X/usr/lib/nvidia-cuda-toolkit/bin/nvcc.profile" <<EOF
# Debian's /etc/nvcc.profile, relocated to $T (dpkg -x, not installed)
NVVMIR_LIBRARY_DIR = $T/usr/lib/cuda/nvvm/libdevice
PATH		+= $T/usr/lib/nvidia-cuda-toolkit/bin:$T/usr/bin:
INCLUDES	+= -I$T/usr/include \$(_SPACE_)
LIBRARIES	=+ \$(_SPACE_) -L$T/usr/lib/x86_64-linux-gnu/stubs -L$T/usr/lib/x86_64-linux-gnu
EOF
  # Debian's g++/gcc wrappers look for g++-13..g++-6 by name; -ccbin names g++-13 instead.
  for w in g++ gcc; do mv "$X/usr/lib/nvidia-cuda-toolkit/bin/$w" "$X/usr/lib/nvidia-cuda-toolkit/bin/$w.debian-wrapper"; done
  # glibc 2.41 declares sinpi/cospi noexcept; CUDA 12.4's declarations must match.
  sed -i -E 's/(__device_builtin__ (double|float) +(sinpif?|cospif?)\((double|float) x\));/\1 noexcept(true);/' "$X/usr/include/crt/math_functions.h"
  touch "$X/.complete"
fi
say "unpacked: $(du -sh "$X" | cut -f1) in $T; libtorch-cuda $(dpkg-deb -f "$debs"/libtorch-cuda-2.6_*.deb Version)"
if ! in_root dpkg-query -W -f='${Status}' g++-13 2>/dev/null | grep -q "install ok installed"; then
  say "installing g++-13 in the root (nvcc 12.4's host compiler)"
  in_root apt-get install -y -q --no-install-recommends g++-13 > /dev/null
fi

# --- configure and build, in a mount namespace of its own ---------------------------------
# libgloo_cuda.so.0 (libgloo-cuda-0) lies in usr/lib, not in the multiarch folder.
libdirs="$T/usr/lib/x86_64-linux-gnu;$T/usr/lib/x86_64-linux-gnu/nvidia/current;$T/usr/lib"
# Without nvidia-cudnn there is no libcudnn.so.9, which libtorch_cuda.so needs:
# IMBENCH_CUDA_NO_CUDNN_LINK=1 lets ld leave those symbols unresolved, to see
# whether everything else links (such binaries cannot run).
link_flags=""
[ "${IMBENCH_CUDA_NO_CUDNN_LINK:-0}" = 1 ] && link_flags="-Wl,--unresolved-symbols=ignore-in-shared-libs"
cat > "$rootfs/tmp/imbench-cuda-build.sh" <<EOF
set -eu
export TORCH_CUDA_ARCH_LIST=\${TORCH_CUDA_ARCH_LIST:-9.0}
export LD_LIBRARY_PATH='${libdirs//;/:}'
cmake -S /src -B /src/build-torch2-cuda -DCMAKE_BUILD_TYPE=Release -DIMBENCH_BUILD_TESTS=ON -DIMBENCH_BUILD_BENCHMARKS=ON \\
  -DTorch_DIR=$T/usr/lib/x86_64-linux-gnu/cmake/Torch -DCaffe2_DIR=$T/usr/lib/x86_64-linux-gnu/cmake/Caffe2 \\
  -DCMAKE_CUDA_COMPILER=$T/usr/lib/nvidia-cuda-toolkit/bin/nvcc -DCMAKE_CUDA_HOST_COMPILER=/usr/bin/g++-13 \\
  -DCUDAToolkit_ROOT=$T/usr -DCUDA_TOOLKIT_ROOT_DIR=$T/usr -DCUDAToolkit_INCLUDE_DIR=$T/usr/include \\
  -DCMAKE_LIBRARY_PATH='$libdirs' -DCMAKE_EXE_LINKER_FLAGS='$link_flags' > /src/build-torch2-cuda.configure.log 2>&1 ||
  { tail -40 /src/build-torch2-cuda.configure.log; echo "configure failed"; exit 1; }
grep -E 'CUDA detected|Header version|cuDNN|Found Torch' /src/build-torch2-cuda.configure.log || true
[ "\${IMBENCH_CONFIGURE_ONLY:-0}" = 1 ] && exit 0
cmake --build /src/build-torch2-cuda -j $jobs -- -k > /src/build-torch2-cuda.log 2>&1 ||
  { grep -E 'error|undefined reference' /src/build-torch2-cuda.log | sort | uniq -c | sort -rn | head -20; echo "build failed"; exit 1; }
for b in imbench test_models; do ldd /src/build-torch2-cuda/\$b | grep -E 'libtorch_cuda|libc10_cuda|libcudart|not found' || true; done
EOF
mkdir -p "$rootfs/src"
say "configure + build in $build (logs: $build.configure.log, $build.log)"
unshare -m --propagation private bash -c '
  set -e; r=$1
  mount --bind "$2" "$r/src"
  mount -t proc proc "$r/proc"
  mount --rbind /dev "$r/dev"
  chroot "$r" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin IMBENCH_CONFIGURE_ONLY="${3:-0}" \
    TORCH_CUDA_ARCH_LIST="${4:-9.0}" bash /tmp/imbench-cuda-build.sh' ns "$rootfs" "$root" "${IMBENCH_CONFIGURE_ONLY:-0}" "${TORCH_CUDA_ARCH_LIST:-9.0}" ||
  die "see above ($(( $(date +%s) - t0 )) s)"
say "ok in $(( $(date +%s) - t0 )) s"
