#!/usr/bin/env bash
# Runs on the GPU machine, from anywhere in the repository (docs/gpu.md):
# builds imbench in build-cuda/ against the CUDA LibTorch of python3's PyTorch
# and the Debian libraries carried in .cuda-carry/prefix (made by
# scripts/cuda/prepare-carry.sh on a machine with apt), then runs every test.
# Prints the GPU, the toolchain, ctest's summary line; exits non-zero with a
# one-line reason on any failure.
#
# Usage: bash scripts/cuda/build.sh [extra cmake arguments]
# Environment (all optional):
#   IMBENCH_CARRY_PREFIX      the carried prefix (default: .cuda-carry/prefix)
#   IMBENCH_CUDA_BUILD_DIR    build folder (default: build-cuda)
#   IMBENCH_PYTHON            the python that has torch (default: python3)
#   IMBENCH_TORCH_PREFIX      folder that holds share/cmake/Torch (default:
#                             python's torch.utils.cmake_prefix_path, minus share/cmake)
#   IMBENCH_JOBS              parallel compile jobs (default: nproc)
#   IMBENCH_CTEST_ARGS        extra ctest arguments, e.g. "-E cli_smoke"
#   IMBENCH_CONFIGURE_ONLY=1  stop after cmake's configure step
#   IMBENCH_BUILD_ONLY=1      stop after the build, the ldd check and the CUDA smoke run
#                             (scripts/cuda/gpu-check.sh runs the tests itself)
#   IMBENCH_ALLOW_CPU_TORCH=1 accept a LibTorch without CUDA (to exercise this
#                             script on a machine with no GPU; the CUDA checks are skipped)
#   CUDACXX / TORCH_CUDA_ARCH_LIST  the nvcc and GPU architectures (found/detected otherwise)
# Logs: BUILD/logs/*.log, copied to $OUT too when $OUT is a folder (device tool).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${IMBENCH_CUDA_BUILD_DIR:-$root/build-cuda}
case $build in /*) ;; *) build=$root/$build ;; esac
prefix=${IMBENCH_CARRY_PREFIX:-$root/.cuda-carry/prefix}
python=${IMBENCH_PYTHON:-python3}
jobs=${IMBENCH_JOBS:-$(nproc)}
logs=$build/logs
mkdir -p "$logs"

copy_logs() {
  if [ -n "${OUT:-}" ] && [ -d "${OUT:-}" ]; then cp "$logs"/*.log "$OUT"/ 2>/dev/null || true; fi
}
trap copy_logs EXIT
die() { echo "cuda/build.sh: FAILED: $*" >&2; exit 1; }
say() { echo "cuda/build.sh: $*"; }
tail_log() { echo "--- last lines of $1:" >&2; tail -n "${2:-40}" "$1" >&2; }

# --- the carried Debian libraries --------------------------------------------
[ -f "$prefix/ENV" ] || die "no $prefix/ENV: run scripts/cuda/prepare-carry.sh on a Debian machine with apt, carry .cuda-carry/prefix"
# shellcheck source=/dev/null
. "$prefix/ENV" || die "sourcing $prefix/ENV failed"
prefix=$IMBENCH_CARRY_PREFIX
say "carried prefix $prefix ($(du -sh --apparent-size "$prefix" | cut -f1)); fallback libraries in use: ${IMBENCH_CARRY_ACTIVE_FALLBACKS:-none}"

# --- toolchain ---------------------------------------------------------------
cmake_bin=$(command -v cmake || true)
if [ -z "$cmake_bin" ]; then
  d=$("$python" -c 'import cmake; print(cmake.CMAKE_BIN_DIR)' 2>/dev/null || true)  # pip's cmake package
  if [ -n "$d" ] && [ -x "$d/cmake" ]; then cmake_bin=$d/cmake; export PATH="$d:$PATH"; fi
fi
[ -n "$cmake_bin" ] || die "no cmake on PATH nor in $python's cmake package (Debian's cmake is not carried: it needs libicu72, ~75 MiB)"
ctest_bin=$(dirname "$cmake_bin")/ctest
[ -x "$ctest_bin" ] || ctest_bin=$(command -v ctest || true)
[ -n "$ctest_bin" ] || die "no ctest beside $cmake_bin"
cxx=${CXX:-$(command -v c++ || command -v g++ || true)}
[ -n "$cxx" ] || die "no C++ compiler (c++/g++) on PATH"
if command -v make >/dev/null; then generator="Unix Makefiles"
elif command -v ninja >/dev/null; then generator=Ninja
else die "neither make nor ninja on PATH"; fi
say "$("$cmake_bin" --version | head -1), $("$cxx" --version | head -1), $generator, $jobs jobs"

# The carried libraries need this C and C++ run-time at least (prepare-carry.sh measured it).
need_glibc=$(sed -n 's/^requires GLIBC //p' "$prefix/MANIFEST")
need_glibcxx=$(sed -n 's/^requires GLIBCXX //p' "$prefix/MANIFEST")
have_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | grep -oE '[0-9]+\.[0-9]+' || true)
[ -n "$have_glibc" ] || have_glibc=$( (ldd --version 2>/dev/null || true) | sed -n '1s/.* \([0-9][0-9]*\.[0-9][0-9]*\)$/\1/p')
have_glibc=${have_glibc:-0}
[ "$(printf '%s\n%s\n' "$need_glibc" "$have_glibc" | sort -V | head -1)" = "$need_glibc" ] ||
  die "glibc $have_glibc is older than the $need_glibc the carried Debian bookworm libraries need"
libstdcxx=$("$cxx" -print-file-name=libstdc++.so.6)
have_glibcxx=$(grep -aoE 'GLIBCXX_3\.4\.[0-9]+' "$libstdcxx" 2>/dev/null | sed 's/GLIBCXX_//' | sort -uV | tail -1 || true)
[ -z "$have_glibcxx" ] || [ "$(printf '%s\n%s\n' "$need_glibcxx" "$have_glibcxx" | sort -V | head -1)" = "$need_glibcxx" ] ||
  die "libstdc++ ($libstdcxx) has GLIBCXX $have_glibcxx, the carried libraries need $need_glibcxx"
say "glibc $have_glibc (needs >= $need_glibc), GLIBCXX ${have_glibcxx:-?} (needs >= $need_glibcxx)"

# --- LibTorch -----------------------------------------------------------------
torch_info=""
if "$python" -c 'import torch' 2>/dev/null; then
  torch_info=$("$python" - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
libdirs = sorted({os.path.dirname(p) for p in glob.glob(os.path.join(site, "nvidia", "**", "lib*.so*"), recursive=True)})
cudnn_h = sorted(glob.glob(os.path.join(site, "nvidia", "**", "include", "cudnn.h"), recursive=True))
cudnn_so = sorted(glob.glob(os.path.join(site, "nvidia", "**", "lib", "libcudnn.so*"), recursive=True))
avail = torch.cuda.is_available()
print("version", torch.__version__)
print("cuda", torch.version.cuda or "none")
print("abi", int(torch.compiled_with_cxx11_abi()))
print("prefix", torch.utils.cmake_prefix_path)
print("available", int(avail))
print("device", torch.cuda.get_device_name(0) if avail else "none")
print("capability", "%d.%d" % torch.cuda.get_device_capability(0) if avail else "none")
print("libdirs", ":".join(libdirs))
print("cudnn_include", os.path.dirname(cudnn_h[0]) if cudnn_h else "")
print("cudnn_library", cudnn_so[0] if cudnn_so else "")
PY
) || die "$python could not describe its torch"
elif [ -z "${IMBENCH_TORCH_PREFIX:-}" ]; then
  die "$python has no torch, and IMBENCH_TORCH_PREFIX is not set"
fi
tget() { sed -n "s/^$1 //p" <<<"$torch_info"; }
torch_prefix=${IMBENCH_TORCH_PREFIX:-$(tget prefix)}
torch_prefix=${torch_prefix%/}
torch_prefix=${torch_prefix%/share/cmake}
torch_config=$(ls "$torch_prefix"/share/cmake/Torch/TorchConfig.cmake "$torch_prefix"/Torch/TorchConfig.cmake 2>/dev/null | head -1 || true)
[ -n "$torch_config" ] || die "no TorchConfig.cmake under $torch_prefix"
torch_cmake_dir=$(dirname "$(dirname "$torch_config")")   # the folder holding Torch/ and Caffe2/

# C++ ABI: the carried Debian libraries (fmt, Boost, GoogleTest, Benchmark,
# HDF5 C++) are built with _GLIBCXX_USE_CXX11_ABI=1; torch must match.
if [ -n "$torch_info" ]; then
  torch_abi=$(tget abi)
  abi_from="$python: torch.compiled_with_cxx11_abi() = $([ "$torch_abi" = 1 ] && echo True || echo False)"
else
  c10=$(ls "$torch_cmake_dir"/../../lib/libc10.so "$torch_cmake_dir"/../libc10.so 2>/dev/null | head -1 || true)
  torch_abi=0
  if [ -n "$c10" ] && [ "$(nm -DC "$c10" 2>/dev/null | grep -c '__cxx11' || true)" -gt 0 ]; then torch_abi=1; fi
  abi_from="nm of ${c10:-libc10.so (not found)}: std::__cxx11 symbols $([ "$torch_abi" = 1 ] && echo present || echo absent)"
fi
carry_abi=$(sed -n 's/^cxx11-abi //p' "$prefix/MANIFEST")
say "C++ ABI: $abi_from; carried Debian libraries: _GLIBCXX_USE_CXX11_ABI=$([ "$carry_abi" = yes ] && echo 1 || echo 0)"
[ "$torch_abi" = 1 ] && [ "$carry_abi" = yes ] ||
  die "C++ ABI mismatch: torch cxx11 ABI=$torch_abi, Debian libraries cxx11 ABI=$carry_abi (std::string symbols would not link)"

torch_cuda=$(tget cuda); torch_cuda=${torch_cuda:-none}   # without python's torch: none
torch_version=$(tget version)
[ -n "$torch_version" ] || torch_version=$(sed -n 's/.*PACKAGE_VERSION "\([^"]*\)".*/\1/p' "$(dirname "$torch_config")"/TorchConfigVersion.cmake 2>/dev/null | head -1)
say "torch ${torch_version:-?} (CUDA $torch_cuda) at $(dirname "$torch_config")"

# --- CUDA: what PyTorch's Caffe2/public/cuda.cmake needs ----------------------
# A CUDA LibTorch's TorchConfig.cmake runs find_package(CUDA) (PyTorch's own
# FindCUDA, which wants nvcc), enable_language(CUDA), find_package(CUDAToolkit)
# and a try_run against cuda.h: configuring needs the CUDA toolkit, nvcc
# included, of the same major version as torch.version.cuda.
cmake_args=(-G "$generator" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx"
            -DCMAKE_PREFIX_PATH="$torch_cmake_dir;$prefix/usr" -DTorch_DIR="$(dirname "$torch_config")"
            -DIMBENCH_BUILD_TESTS=ON -DIMBENCH_BUILD_BENCHMARKS=ON
            # FindHDF5: only the carried HDF5 (HDF5_ROOT makes it search nowhere else), so a
            # system libhdf5-dev of another version cannot mix its headers with our library.
            -DHDF5_ROOT="$prefix/usr/lib/x86_64-linux-gnu/hdf5/serial")
gpu=none
if [ "$torch_cuda" = none ]; then
  [ "${IMBENCH_ALLOW_CPU_TORCH:-0}" = 1 ] || die "$python's torch has no CUDA (torch.version.cuda is None); set IMBENCH_ALLOW_CPU_TORCH=1 to build anyway"
  say "warning: CPU-only LibTorch (IMBENCH_ALLOW_CPU_TORCH=1): the CUDA steps are skipped"
else
  nvcc=${CUDACXX:-$(command -v nvcc || true)}
  if [ -z "$nvcc" ]; then
    for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
      if [ -x "$c" ]; then nvcc=$c; break; fi
    done
  fi
  if [ -z "$nvcc" ] && [ -n "$torch_info" ]; then  # nvidia-cuda-nvcc wheel, if installed
    nvcc=$("$python" -c 'import glob,os,torch; s=os.path.dirname(os.path.dirname(torch.__file__)); g=sorted(glob.glob(s+"/nvidia/**/bin/nvcc", recursive=True)); print(g[0] if g else "")' || true)
  fi
  [ -n "$nvcc" ] && [ -x "$nvcc" ] || die "no nvcc (PATH, CUDACXX, /usr/local/cuda*): a CUDA LibTorch's TorchConfig.cmake needs the CUDA toolkit with nvcc"
  nvcc=$(readlink -f "$nvcc")
  cuda_root=$(dirname "$(dirname "$nvcc")")
  nvcc_version=$("$nvcc" --version 2>/dev/null | grep -oE 'release [0-9]+\.[0-9]+' | cut -d' ' -f2 || true)
  [ -n "$nvcc_version" ] || die "$nvcc --version does not run or names no release"
  say "nvcc $nvcc_version at $nvcc (torch was built with CUDA $torch_cuda)"
  [ "${nvcc_version%%.*}" = "${torch_cuda%%.*}" ] || [ "$torch_cuda" = unknown ] ||
    die "nvcc is CUDA $nvcc_version, torch needs CUDA ${torch_cuda%%.*}.x: set CUDACXX to a matching nvcc"
  PATH="$(dirname "$nvcc"):$PATH"
  export CUDACXX=$nvcc PATH CUDA_HOME=$cuda_root CUDA_PATH=$cuda_root
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    cap=$(tget capability)
    [ "$cap" = none ] || [ -z "$cap" ] || export TORCH_CUDA_ARCH_LIST=$cap
  fi
  # imbench compiles no CUDA sources: the CUDA compiler only runs CMake's own
  # checks, so a host g++ newer than this nvcc supports must not stop them.
  cmake_args+=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_FLAGS=-allow-unsupported-compiler
               -DCUDAToolkit_ROOT="$cuda_root" -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root")
  # cuDNN of the pip wheel (nvidia-cudnn-*): its libcudnn.so.N has no unversioned
  # link, so PyTorch's FindCUDNN misses it; name both paths (a miss is only a warning).
  if [ -n "$(tget cudnn_include)" ] && [ -n "$(tget cudnn_library)" ]; then
    cmake_args+=(-DCUDNN_INCLUDE_PATH="$(tget cudnn_include)" -DCUDNN_LIBRARY_PATH="$(tget cudnn_library)")
  fi
  # The executables load the CUDA libraries python's torch loads (the nvidia-*
  # wheels), not another copy from the toolkit; ld also resolves libtorch_cuda.so's
  # own NEEDED entries (cuDNN, NCCL, ...) through this path.
  if [ -n "$(tget libdirs)" ]; then LD_LIBRARY_PATH="$(tget libdirs):$LD_LIBRARY_PATH"; export LD_LIBRARY_PATH; fi
  gpu=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1 || true)
  [ -n "$gpu" ] || gpu="$(tget device) (nvidia-smi gave nothing)"
  [ "$(tget available)" = 1 ] || die "torch.cuda.is_available() is False in $python: no usable GPU or driver"
  say "GPU: $gpu; TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-unset}"
fi

# --- configure ---------------------------------------------------------------
say "configuring $build"
if ! "$cmake_bin" -S "$root" -B "$build" "${cmake_args[@]}" "$@" > "$logs/configure.log" 2>&1; then
  tail_log "$logs/configure.log" 60
  die "cmake configure failed (full log: $logs/configure.log)"
fi
# Every carried package must come from the prefix, not from the machine.
cache=$build/CMakeCache.txt
for v in fmt_DIR Boost_DIR boost_program_options_DIR GTest_DIR benchmark_DIR nlohmann_json_DIR tomlplusplus_DIR HDF5_hdf5_LIBRARY_RELEASE \
         HDF5_hdf5_cpp_LIBRARY_RELEASE HDF5_CXX_INCLUDE_DIR ZLIB_INCLUDE_DIR ZLIB_LIBRARY_RELEASE; do
  val=$(sed -n "s/^$v:[A-Z]*=//p" "$cache" | head -1)
  [ -n "$val" ] || continue
  case $val in "$prefix"/*) ;; *) say "warning: $v=$val is not from the carried prefix" ;; esac
done
grep -E 'CUDA detected|CUDA nvcc is|Header version is|cuDNN|Found Torch|Found HDF5|Found Boost|Found ZLIB' \
  "$logs/configure.log" | sed 's/^/  | /' || true
say "configure: ok"
# For running the binaries by hand: the same library path as the tests get.
{
  echo "# Written by scripts/cuda/build.sh: '. $build/env.sh' before running $build/imbench by hand."
  echo ". '$prefix/ENV'"
  echo "export LD_LIBRARY_PATH='$LD_LIBRARY_PATH'"
} > "$build/env.sh"
if [ "${IMBENCH_CONFIGURE_ONLY:-0}" = 1 ]; then say "IMBENCH_CONFIGURE_ONLY=1: stopping"; exit 0; fi

# --- build -------------------------------------------------------------------
say "building with $jobs jobs (log: $logs/build.log)"
start=$(date +%s)
if ! "$cmake_bin" --build "$build" -j "$jobs" > "$logs/build.log" 2>&1; then
  grep -E 'error|Error' "$logs/build.log" | head -20 >&2 || true
  tail_log "$logs/build.log" 30
  die "build failed (full log: $logs/build.log)"
fi
say "build: ok in $(( $(date +%s) - start )) s"

# --- what the binaries load --------------------------------------------------
ldd "$build/imbench" > "$logs/ldd-imbench.log" 2>&1 || true
if grep -q 'not found' "$logs/ldd-imbench.log"; then
  grep 'not found' "$logs/ldd-imbench.log" >&2
  die "build-cuda/imbench has unresolved libraries (see above)"
fi
grep -E 'libtorch|libc10|libcudart|libcublas|libcudnn|libhdf5|libfmt|libboost|libcurl|libssl' "$logs/ldd-imbench.log" |
  sed 's/ (0x.*//; s/^\s*/  | /' || true
if [ "$torch_cuda" != none ]; then
  grep -q 'libtorch_cuda.so' "$logs/ldd-imbench.log" ||
    die "imbench does not load libtorch_cuda.so (dropped by --as-needed?): torch::cuda::is_available() would be false"
  # One short training run on the GPU, end to end through the CLI.
  smoke=$(mktemp -d)
  if ! "$build/imbench" train --dataset synthetic --device cuda --epochs 1 --hidden 64,64 --quiet --seed 1 \
        --out "$smoke/m.ckpt" > "$logs/smoke-cuda.log" 2>&1; then
    tail_log "$logs/smoke-cuda.log" 20; rm -rf "$smoke"
    die "imbench train --device cuda failed"
  fi
  grep -E 'test accuracy|device' "$logs/smoke-cuda.log" | head -3 | sed 's/^/  | /' || true
  rm -rf "$smoke"
fi

if [ "${IMBENCH_BUILD_ONLY:-0}" = 1 ]; then say "IMBENCH_BUILD_ONLY=1: stopping before the tests"; exit 0; fi

# --- tests -------------------------------------------------------------------
say "running ctest (log: $logs/ctest.log)"
read -r -a ctest_extra <<<"${IMBENCH_CTEST_ARGS:-}"
set +e
# The CLI tests read HDF5 files with $IMBENCH_PYTHON's h5py (default /usr/bin/python3).
if "$python" -c 'import h5py' 2>/dev/null; then export IMBENCH_PYTHON=$(command -v "$python"); fi
(cd "$build" && "$ctest_bin" --output-on-failure -j "$(( jobs < 8 ? jobs : 8 ))" "${ctest_extra[@]}") > "$logs/ctest.log" 2>&1
ctest_rc=$?
set -e
summary=$(grep -E '[0-9]+% tests passed' "$logs/ctest.log" | tail -1 || true)
# The _CUDA tests skip (pass) without a GPU: on this machine they must really run.
cuda_report=""
if [ "$torch_cuda" != none ]; then
  ran=0 skipped=0
  for t in "$build"/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    out=$("$t" --gtest_filter='*_CUDA*' 2>&1 || true)
    ran=$(( ran + $(grep -c '^\[       OK \]' <<<"$out" || true) ))
    skipped=$(( skipped + $(grep -c '^\[  SKIPPED \]' <<<"$out" || true) ))
    if grep -q '^\[  FAILED  \]' <<<"$out"; then echo "$out" >> "$logs/ctest.log"; cuda_report="failed in ${t##*/}"; fi
  done
  cuda_report="_CUDA tests: $ran ran, $skipped skipped${cuda_report:+, $cuda_report}"
fi
echo "================================================================"
say "device: $gpu"
say "ctest: ${summary:-no summary line (see $logs/ctest.log)}"
[ -z "$cuda_report" ] || say "$cuda_report"
if [ "$ctest_rc" != 0 ]; then
  grep -E '^\s*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Not Run)' "$logs/ctest.log" >&2 || true
  die "ctest: $(grep -oE '[0-9]+ tests failed out of [0-9]+' "$logs/ctest.log" | tail -1 || echo "exit $ctest_rc") (log: $logs/ctest.log)"
fi
if [ "$torch_cuda" != none ] && [[ $cuda_report != *" 0 skipped"* || $cuda_report == *failed* || $cuda_report == *" 0 ran"* ]]; then
  die "$cuda_report"
fi
say "all tests passed"
