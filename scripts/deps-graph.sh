#!/usr/bin/env bash
# imbench's target graph as CMake sees it: one line per imbench target with
# the imbench targets it links directly ("reports -> core"). Configures a
# scratch build tree (tests and benchmarks on, so every target exists; the
# shared precompiled header off, because its build-order edges are not
# dependencies) with `cmake --graphviz` and reads the graph from it.
#
#   scripts/deps-graph.sh                    print the graph
#   scripts/deps-graph.sh --check FILE       exit 1 if FILE's block between
#                                            <!-- deps-graph:begin --> and
#                                            <!-- deps-graph:end --> differs
#   scripts/deps-graph.sh --update FILE      rewrite that block
#
# Arguments after `--` go to cmake (e.g. -DTorch_DIR=...); $CMAKE names the
# cmake to run. Library targets are shown without their imbench_ prefix;
# imbench_settings (linked by everything) is left out; imbench_torch is the
# interface target that brings LibTorch, its flags and OpenMP.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmake=${CMAKE:-cmake}
begin='<!-- deps-graph:begin -->'
end='<!-- deps-graph:end -->'

mode=print file=
case "${1:-}" in
  --check | --update)
    mode=${1#--}
    file=${2:?"deps-graph.sh: $1 needs a file, e.g. $1 ARCHITECTURE.md"}
    shift 2 ;;
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
if [[ ${1:-} == -- ]]; then shift; fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/imbench-deps-graph.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

graph() {
  "$cmake" -S "$root" -B "$scratch/build" -DIMBENCH_BUILD_TESTS=ON -DIMBENCH_BUILD_BENCHMARKS=ON -DIMBENCH_PCH=OFF \
    "$@" --graphviz="$scratch/graph/deps.dot" >"$scratch/configure.log" 2>&1 || {
    cat "$scratch/configure.log" >&2; echo "deps-graph.sh: cmake configure failed" >&2; return 1; }
  # Nodes: "node3" [ label = "imbench_cli\n(imbench::cli)", ... ]; edges: "node3" -> "node4" ...
  awk '
    function short(t) {
      if (t == "imbench_settings") return ""
      if (t == "imbench" || t == "imbench_torch" || t == "imbench_bench" || t ~ /^test_/) return t
      if (t ~ /^imbench_/) return substr(t, 9)
      return ""
    }
    match($0, /^ *"node[0-9]+" \[ label = "[^"\\]*/) {
      split($0, q, "\""); name = q[4]; sub(/\\n.*/, "", name); label[q[2]] = short(name); next
    }
    match($0, /^ *"node[0-9]+" -> "node[0-9]+"/) {
      split($0, q, "\""); from = label[q[2]]; to = label[q[4]]
      if (from != "" && to != "" && from != to) print from, to
      next
    }
  ' "$scratch/graph/deps.dot" | sort -u | awk '
    BEGIN {
      n = split("core h5guard data models attacks reports harness cli imbench imbench_bench imbench_torch " \
                "test_data test_models test_attacks test_reports test_harness", order, " ")
      for (i = 1; i <= n; ++i) rank[order[i]] = i
    }
    function r(t) { return (t in rank) ? sprintf("%03d", rank[t]) : "999" t }
    { seen[$1] = 1; seen[$2] = 1; deps[$1] = deps[$1] " " $2 }
    END {
      for (t in seen) {
        m = split(deps[t], d, " "); line = ""
        # insertion sort of the dependencies by rank
        for (i = 2; i <= m; ++i) { x = d[i]; j = i - 1; while (j >= 1 && r(d[j]) > r(x)) { d[j + 1] = d[j]; --j } d[j + 1] = x }
        for (i = 1; i <= m; ++i) line = line (i > 1 ? ", " : "") d[i]
        print r(t) "\t" t " -> " (m ? line : "(nothing in imbench)")
      }
    }
  ' | sort | cut -f2-
}

block() {  # the lines between the markers of $1
  awk -v b="$begin" -v e="$end" '$0 == e { inside = 0 } inside && !/^```/ { print } $0 == b { inside = 1 }' "$1"
}

current=$(graph "$@")
case $mode in
  print) printf '%s\n' "$current" ;;
  check)
    grep -qxF "$begin" "$file" && grep -qxF "$end" "$file" || {
      echo "deps-graph.sh: $file has no '$begin' ... '$end' block" >&2; exit 1; }
    if ! diff -u --label "$file" --label "CMake (scripts/deps-graph.sh)" <(block "$file") <(printf '%s\n' "$current"); then
      echo "deps-graph.sh: the dependency graph in $file differs from the CMake build; regenerate it with:" >&2
      echo "  scripts/deps-graph.sh --update $file" >&2
      exit 1
    fi
    echo "deps-graph.sh: $file matches the CMake build" ;;
  update)
    grep -qxF "$begin" "$file" && grep -qxF "$end" "$file" || {
      echo "deps-graph.sh: $file has no '$begin' ... '$end' block" >&2; exit 1; }
    printf '%s\n' "$current" >"$scratch/graph.txt"
    awk -v b="$begin" -v e="$end" -v g="$scratch/graph.txt" '
      $0 == e { print "```"; while ((getline l < g) > 0) print l; print "```"; skip = 0 }
      !skip { print }
      $0 == b { skip = 1 }
    ' "$file" >"$scratch/updated"
    cat "$scratch/updated" >"$file"
    echo "deps-graph.sh: updated the block in $file" ;;
esac
