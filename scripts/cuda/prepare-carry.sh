#!/usr/bin/env bash
# Runs on a Debian bookworm amd64 machine with apt (the development machine).
# Prepares the Debian libraries that a CUDA build of imbench needs on a
# machine that has PyTorch + CUDA but no package registry (the lent GPU
# machine, see docs/gpu.md): downloads the .deb files (apt-get download;
# nothing is installed), unpacks each with dpkg -x into PREFIX, drops what no
# build reads (docs, man pages, Fortran, static HDF5, Boost headers that
# program_options does not include), makes every symlink relative, checks that
# every library the carried libraries load is carried or part of any glibc
# system, and writes PREFIX/ENV (source it from bash) and PREFIX/MANIFEST.
#
# Usage: bash scripts/cuda/prepare-carry.sh [PREFIX]   (default: .cuda-carry/prefix)
# The .debs are cached beside PREFIX (.cuda-carry/debs); PREFIX is rebuilt from
# them on every run, so re-running is cheap and gives the same tree.
# IMBENCH_CARRY_LIMIT_MIB (default 56): fail when PREFIX is larger.
set -euo pipefail
die() { echo "prepare-carry.sh: $*" >&2; exit 1; }
say() { echo "prepare-carry.sh: $*"; }

root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${1:-$root/.cuda-carry/prefix}
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
debs=$(dirname "$prefix")/debs
limit_mib=${IMBENCH_CARRY_LIMIT_MIB:-56}
multiarch=x86_64-linux-gnu

# --- the packages ------------------------------------------------------------
# Headers, CMake package files and link-time files. Their own Depends are NOT
# followed: they pull compilers and -dev packages no build here reads
# (libhdf5-dev alone: Fortran, libjpeg-dev, libcurl-dev, libssl-dev, hdf5-helpers).
dev_packages=(
  libfmt-dev                       # fmt 9: headers, fmt::fmt CMake config, libfmt.so
  libboost1.74-dev                 # Boost headers + BoostConfig (headers pruned below)
  libboost-program-options1.74-dev # boost_program_options CMake config, libboost_program_options.so
  libhdf5-dev                      # HDF5 1.10 C/C++ headers, libhdf5_serial{,_cpp}.so (found by CMake's FindHDF5)
  zlib1g-dev                       # zlib.h, libz.so
  nlohmann-json3-dev               # header-only, nlohmann_json CMake config
  libtomlplusplus-dev              # toml++ 3.3: NOT header-only in Debian (TOML_HEADER_ONLY=0, libtomlplusplus.so.3)
  libgtest-dev libgmock-dev        # static libgtest*.a / libgmock*.a + GTest CMake config
  libbenchmark-dev                 # Google Benchmark CMake config, libbenchmark.so, libbenchmark_main.a
)
# Run-time libraries the binaries load; their Depends are followed recursively
# (apt-cache depends --recurse), minus the base system below.
runtime_roots=(libfmt9 libboost-program-options1.74.0 libhdf5-103-1 libhdf5-cpp-103-1
               libbenchmark1debian libtomlplusplus3)
# Loaded from PREFIX ahead of the system: their sonames are Debian's own
# (libfmt.so.9, libboost_program_options.so.1.74.0, libhdf5_serial.so.103, ...).
primary=(libfmt9 libboost-program-options1.74.0 libhdf5-103-1 libhdf5-cpp-103-1 libsz2 libaec0
         libbenchmark1debian libtomlplusplus3)
# Every other package of the closure (libcurl4, libssl3, zlib1g, Kerberos, ...)
# is a FALLBACK: unpacked to PREFIX/fallback/lib and put on the library path
# by ENV only for the sonames the machine itself lacks, so a newer system copy
# (libssl.so.3, libz.so.1 of Ubuntu 24.04, say) is never shadowed.
# Never carried: the C and C++ run-time of any glibc system.
base=(libc6 libgcc-s1 libstdc++6 gcc-12-base libcrypt1)
# Sonames any glibc system has (for the NEEDED check below).
base_sonames=" libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2 libutil.so.1 ld-linux-x86-64.so.2 libstdc++.so.6 libgcc_s.so.1 libcrypt.so.1 "

# --- checks ------------------------------------------------------------------
command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs apt-get and dpkg (Debian bookworm)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "the GPU machine is x86-64: run this on an amd64 machine"
codename=$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-unknown}")
[ "$codename" = bookworm ] || echo "prepare-carry.sh: warning: this is '$codename', not bookworm; the package names are bookworm's" >&2
for tool in readelf objdump g++; do
  command -v $tool >/dev/null || die "needs $tool (apt-get install binutils g++)"
done
if ! apt-cache show --no-all-versions libfmt-dev >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "apt lists are missing: run 'apt-get update' as root first"
  say "apt lists missing: apt-get update"
  apt-get update -q >/dev/null
fi

in_list() { local x=$1; shift; local y; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances "${runtime_roots[@]}" | grep -E '^[a-z0-9]' | sort -u)
fallback=()
for p in $closure; do
  in_list "$p" "${base[@]}" || in_list "$p" "${primary[@]}" || fallback+=("$p")
done
for p in "${primary[@]}"; do
  grep -qx "$p" <<<"$closure" || die "$p is no longer in the run-time closure: update the package lists in $0"
done
all=("${dev_packages[@]}" "${primary[@]}" "${fallback[@]}")
say "${#dev_packages[@]} -dev packages, ${#primary[@]} primary and ${#fallback[@]} fallback run-time packages"

# --- download (cached) -------------------------------------------------------
mkdir -p "$debs"
declare -A file_of
todo=()
while read -r _uri file size _; do
  pkg=${file%%_*}
  file_of[$pkg]=$file
  if [ ! -f "$debs/$file" ] || [ "$(stat -c %s "$debs/$file")" != "$size" ]; then todo+=("$pkg"); fi
done < <(apt-get download --print-uris "${all[@]}" 2>/dev/null)
for p in "${all[@]}"; do [ -n "${file_of[$p]:-}" ] || die "apt-get has no candidate for $p"; done
if [ ${#todo[@]} -gt 0 ]; then
  say "downloading ${#todo[@]} .deb files into $debs"
  # As root, apt warns that it cannot drop privileges to _apt; the download is the same.
  (cd "$debs" && apt-get download -q "${todo[@]}" 2>&1 | grep -v -e '^W: Download is performed unsandboxed' -e '^Get:' || true)
  for p in "${todo[@]}"; do [ -f "$debs/${file_of[$p]}" ] || die "download of $p failed"; done
else
  say "all ${#all[@]} .deb files already in $debs"
fi

# --- unpack into a fresh staging tree ----------------------------------------
stage=$prefix.tmp
rm -rf "$stage"
mkdir -p "$stage/fallback/lib" "$stage/.fallback-root"
for p in "${dev_packages[@]}" "${primary[@]}"; do dpkg -x "$debs/${file_of[$p]}" "$stage"; done
for p in "${fallback[@]}"; do dpkg -x "$debs/${file_of[$p]}" "$stage/.fallback-root"; done

# Fallback libraries, flattened: the shared objects and their soname links only.
for d in "$stage/.fallback-root/lib/$multiarch" "$stage/.fallback-root/usr/lib/$multiarch"; do
  [ -d "$d" ] || continue
  find "$d" -maxdepth 1 \( -type f -o -type l \) -name 'lib*.so*' -exec mv -t "$stage/fallback/lib" {} +
done
rm -rf "$stage/.fallback-root"
# Merged /usr: bookworm still ships a few files under /lib.
if [ -d "$stage/lib" ]; then
  mkdir -p "$stage/usr/lib"
  cp -a "$stage/lib/." "$stage/usr/lib/" && rm -rf "${stage:?}/lib"
fi

# --- prune -------------------------------------------------------------------
libdir=$stage/usr/lib/$multiarch
rm -rf "$stage"/usr/share/{doc,doc-base,man,info,lintian,bug,locale} "${stage:?}/usr/src" "${stage:?}/etc"
# h5cc/h5c++ wrappers hard-code /usr paths; FindHDF5 must search PREFIX instead.
rm -f "$stage"/usr/bin/h5*
rmdir "$stage/usr/bin" 2>/dev/null || true
# HDF5: only the serial C and C++ shared libraries are linked (no Fortran, no HL, no static).
rm -f "$libdir"/libhdf5*fortran* "$libdir"/libhdf5*_hl* "$libdir"/libhdf5*.a "$libdir"/libhdf5*.settings
rm -rf "$libdir"/hdf5/serial/*fortran* "$libdir"/hdf5/serial/*_hl* "$libdir"/hdf5/serial/*.a \
       "$libdir"/hdf5/serial/*.settings
find "$stage/usr/include/hdf5" -name '*.mod' -delete
rm -f "$stage"/usr/include/hdf5/serial/{H5IM,H5LT,H5PT,H5TB,H5DS,hdf5_hl,H5LD,H5DO,H5Packet,H5Table}*.h
# Boost.Program_options: the shared library only (its static variant file goes with the .a).
rm -f "$libdir/libboost_program_options.a" \
      "$libdir"/cmake/boost_program_options-*/libboost_program_options-variant-static.cmake
# Boost headers: the closure of the Boost headers that imbench's sources include,
# under C++17 and C++20, plus all of boost/config (compiler-specific branches).
mapfile -t boost_includes < <(cd "$root" && git ls-files -co --exclude-standard -- '*.cpp' '*.h' '*.hpp' 2>/dev/null |
  xargs -r grep -hoE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<boost/[^>]+>' | sed -E 's/.*<(boost\/[^>]+)>/\1/' | sort -u)
[ ${#boost_includes[@]} -gt 0 ] || boost_includes=(boost/program_options.hpp)
probe=$(mktemp --suffix=.cpp)
printf '#include <%s>\n' "${boost_includes[@]}" boost/version.hpp > "$probe"
keep=$(mktemp)
for std in c++17 c++20; do
  g++ -std=$std -M -MT x -I "$stage/usr/include" "$probe" 2>/dev/null | tr ' \\' '\n\n' |
    sed -n "s|^$stage/usr/include/||p" >> "$keep" || die "g++ -M failed on the Boost headers ($std)"
done
(cd "$stage/usr/include" && find boost/config -type f) >> "$keep"
sort -u -o "$keep" "$keep"
boost_before=$(du -sm "$stage/usr/include/boost" | cut -f1)
(cd "$stage/usr/include" && find boost -type f | sort | comm -23 - "$keep" | xargs -r rm -f)
find "$stage/usr/include/boost" -depth -type d -empty -delete
say "Boost headers: ${#boost_includes[@]} included by imbench (${boost_includes[*]}), $(grep -c '^boost/' "$keep") kept, ${boost_before} MiB -> $(du -sm "$stage/usr/include/boost" | cut -f1) MiB"
# Check: every Boost header the probe needs now resolves inside the pruned tree.
if [ "$(g++ -std=c++17 -M -MT x -I "$stage/usr/include" "$probe" 2>/dev/null | tr ' \\' '\n\n' | grep -c '^/usr/include/boost/' || true)" != 0 ]; then
  die "pruned Boost tree is missing headers (g++ -M fell back to /usr/include/boost)"
fi
rm -f "$probe" "$keep"

# --- symlinks: relative, inside the prefix -----------------------------------
# Debian links such as libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13 are
# absolute; they are re-pointed inside PREFIX (merged /usr, or the flattened
# fallback folder). Links left dangling by pruning are removed.
resolve_inside() {  # prints the path inside $stage a link target names, or nothing
  local link=$1 target=$2 c
  if [[ $target == /* ]]; then
    for c in "$stage$target" "$stage/usr$target" "$stage/fallback/lib/${target##*/}"; do
      [ -e "$c" ] && { echo "$c"; return; }
    done
  else
    c=$(dirname "$link")/$target
    [ -e "$c" ] && { echo "$c"; return; }
    c=$stage/fallback/lib/${target##*/}
    [ -e "$c" ] && { echo "$c"; return; }
  fi
  return 0
}
fixed=0 dropped=0
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  if [[ $target != /* ]] && [ -e "$link" ]; then continue; fi
  dest=$(resolve_inside "$link" "$target")
  if [ -n "$dest" ]; then
    ln -sfn "$(realpath -s --relative-to="$(dirname "$link")" "$dest")" "$link"; fixed=$((fixed + 1))
  else
    rm -f "$link"; dropped=$((dropped + 1))
  fi
done < <(find "$stage" -type l -print0)
find "$stage" -depth -type d -empty -delete
mkdir -p "$stage/fallback/lib"
outside=$(find "$stage" -type l -lname '/*' | wc -l)
[ "$outside" = 0 ] || die "$outside absolute symlinks left in the prefix"
dangling=$(find "$stage" -xtype l | wc -l)
[ "$dangling" = 0 ] || die "$dangling dangling symlinks left in the prefix"
say "symlinks: $fixed re-pointed inside the prefix, $dropped dangling removed, none absolute"

# --- fallback libraries: only those the carried libraries reach -------------
# The package closure over-approximates (libsasl2-modules-db pulls libdb5.3, a
# plug-in's dependency): keep the fallback libraries reachable through ELF
# NEEDED entries from the primary ones, and note their sonames for ENV.
soname_of() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p' || true; }
needed_of() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' || true; }
declare -A fb_file=()
for f in "$stage"/fallback/lib/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  s=$(soname_of "$f"); [ -n "$s" ] || s=${f##*/}
  fb_file[$s]=$f
done
declare -A reached=()
queue=()
while IFS= read -r -d '' f; do
  readelf -h "$f" >/dev/null 2>&1 || continue
  for n in $(needed_of "$f"); do queue+=("$n"); done
done < <(find "$libdir" -maxdepth 1 -type f -name 'lib*.so*' -print0)
while [ ${#queue[@]} -gt 0 ]; do
  n=${queue[0]}; queue=("${queue[@]:1}")
  [ -n "${fb_file[$n]:-}" ] && [ -z "${reached[$n]:-}" ] || continue
  reached[$n]=1
  for m in $(needed_of "${fb_file[$n]}"); do queue+=("$m"); done
done
: > "$stage/fallback/SONAMES"
unused=()
for s in "${!fb_file[@]}"; do
  f=${fb_file[$s]}
  if [ -n "${reached[$s]:-}" ]; then
    [ -e "$stage/fallback/lib/$s" ] || ln -s "${f##*/}" "$stage/fallback/lib/$s"
    echo "$s" >> "$stage/fallback/SONAMES"
  else
    unused+=("$s"); rm -f "$f"
  fi
done
find "$stage/fallback/lib" -xtype l -delete
sort -o "$stage/fallback/SONAMES" "$stage/fallback/SONAMES"
say "fallback libraries: $(wc -l < "$stage/fallback/SONAMES") reachable from the primary ones, ${#unused[@]} dropped (${unused[*]:-none})"

# --- check what the carried libraries load -----------------------------------
missing=() glibc_max=0 glibcxx_max=0
while IFS= read -r -d '' f; do
  readelf -h "$f" >/dev/null 2>&1 || continue
  for n in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [[ $base_sonames == *" $n "* ]] && continue
    [ -e "$libdir/$n" ] || [ -e "$stage/fallback/lib/$n" ] || missing+=("${f##*/} needs $n")
  done
  v=$(objdump -T "$f" | grep -oE 'GLIBC_[0-9.]+' | sed 's/GLIBC_//' | sort -V | tail -1 || true)
  if [ -n "$v" ]; then glibc_max=$(printf '%s\n%s\n' "$glibc_max" "$v" | sort -V | tail -1); fi
  v=$(objdump -T "$f" | grep -oE 'GLIBCXX_[0-9.]+' | sed 's/GLIBCXX_//' | sort -V | tail -1 || true)
  if [ -n "$v" ]; then glibcxx_max=$(printf '%s\n%s\n' "$glibcxx_max" "$v" | sort -V | tail -1); fi
done < <(find "$libdir" "$stage/fallback/lib" -maxdepth 1 -type f -name 'lib*.so*' -print0)
[ ${#missing[@]} = 0 ] || die "libraries not carried: ${missing[*]}"
dangling=$(find "$stage" -xtype l | wc -l)
[ "$dangling" = 0 ] || die "$dangling dangling symlinks left in the prefix"
abi=no
[ "$(nm -DC "$libdir"/libboost_program_options.so.* 2>/dev/null | grep -c '__cxx11' || true)" -gt 0 ] && abi=yes
say "every NEEDED library is carried or glibc/libstdc++; needs GLIBC >= $glibc_max, GLIBCXX >= $glibcxx_max; C++11 ABI: $abi"

# --- ENV and MANIFEST --------------------------------------------------------
cat > "$stage/ENV" <<'EOF'
# shellcheck shell=bash
# Source from bash: `. .cuda-carry/prefix/ENV` (written by scripts/cuda/prepare-carry.sh).
# Puts the carried Debian libraries on CMAKE_PREFIX_PATH and LD_LIBRARY_PATH,
# relative to where this file lies. Fallback libraries (PREFIX/fallback/lib) are
# linked into PREFIX/fallback/active, and so put on the path, only for the
# sonames this machine's own libraries (ldconfig -p) lack; set
# IMBENCH_CARRY_ALL_FALLBACKS=1 to use all of them.
if [ -z "${BASH_VERSION:-}" ]; then echo "ENV: source it from bash" >&2; return 1 2>/dev/null || exit 1; fi
IMBENCH_CARRY_PREFIX=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export IMBENCH_CARRY_PREFIX
_imb_lib=$IMBENCH_CARRY_PREFIX/usr/lib/x86_64-linux-gnu
_imb_active=$IMBENCH_CARRY_PREFIX/fallback/active
if ! { rm -rf "$_imb_active" && mkdir -p "$_imb_active"; } 2>/dev/null; then
  _imb_active=$(mktemp -d "${TMPDIR:-/tmp}/imbench-fallback.XXXXXX")
fi
_imb_have=$( { /sbin/ldconfig -p || /usr/sbin/ldconfig -p || ldconfig -p; } 2>/dev/null || true)
while IFS= read -r _imb_so; do
  [ -n "$_imb_so" ] || continue
  if [ "${IMBENCH_CARRY_ALL_FALLBACKS:-0}" = 1 ] || [ -z "$_imb_have" ] ||
     ! grep -qF -- $'\t'"$_imb_so (libc6,x86-64" <<<"$_imb_have"; then
    ln -sfn "$IMBENCH_CARRY_PREFIX/fallback/lib/$_imb_so" "$_imb_active/$_imb_so"
  fi
done < "$IMBENCH_CARRY_PREFIX/fallback/SONAMES"
IMBENCH_CARRY_ACTIVE_FALLBACKS=$(ls "$_imb_active" | tr '\n' ' ')
export IMBENCH_CARRY_ACTIVE_FALLBACKS
_imb_prepend() {  # _imb_prepend VAR DIR SEP: DIR first in VAR, once
  local cur=${!1:-}
  case "$3$cur$3" in *"$3$2$3"*) ;; *) export "$1=$2${cur:+$3$cur}" ;; esac
}
_imb_append() {
  local cur=${!1:-}
  case "$3$cur$3" in *"$3$2$3"*) ;; *) export "$1=${cur:+$cur$3}$2" ;; esac
}
_imb_prepend CMAKE_PREFIX_PATH "$IMBENCH_CARRY_PREFIX/usr" :
_imb_prepend LD_LIBRARY_PATH "$_imb_lib" :
_imb_append LD_LIBRARY_PATH "$_imb_active" :
[ -d "$IMBENCH_CARRY_PREFIX/usr/bin" ] && _imb_append PATH "$IMBENCH_CARRY_PREFIX/usr/bin" :
unset -f _imb_prepend _imb_append
unset _imb_lib _imb_active _imb_have _imb_so
EOF

{
  echo "# imbench CUDA carry, written by scripts/cuda/prepare-carry.sh on $(date -u +%Y-%m-%dT%H:%MZ) ($codename)"
  echo "requires GLIBC $glibc_max"
  echo "requires GLIBCXX $glibcxx_max"
  echo "cxx11-abi $abi"
  for p in "${dev_packages[@]}"; do echo "dev      ${file_of[$p]%.deb}"; done
  for p in "${primary[@]}"; do echo "primary  ${file_of[$p]%.deb}"; done
  for p in "${fallback[@]}"; do echo "fallback ${file_of[$p]%.deb}"; done
} > "$stage/MANIFEST"

rm -rf "$prefix.old"
[ -e "$prefix" ] && mv "$prefix" "$prefix.old"
mv "$stage" "$prefix"
rm -rf "$prefix.old"

# --- size --------------------------------------------------------------------
bytes=$(du -sb "$prefix" | cut -f1)
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
tree=$(cd "$root" && git ls-files -co --exclude-standard -z 2>/dev/null | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
tree_mib=$(awk -v b="${tree:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')
say "$prefix: $mib MiB in $(find "$prefix" -type f | wc -l) files (working tree without it: $tree_mib MiB; the device tool carries 64 MiB in all)"
say "largest: $(cd "$prefix" && du -sm usr/include/* usr/lib/$multiarch fallback/lib 2>/dev/null | sort -rn | head -4 | awk '{printf "%s %s MiB; ", $2, $1}')"
awk -v m="$mib" -v l="$limit_mib" 'BEGIN { exit !(m > l) }' && die "$mib MiB is over IMBENCH_CARRY_LIMIT_MIB=$limit_mib"
say "done: carry '${prefix#$root/}' with the device tool, then run scripts/cuda/build.sh there"
