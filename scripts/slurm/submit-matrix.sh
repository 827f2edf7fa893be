#!/usr/bin/env bash
# Runs an imbench matrix on a Slurm cluster in one command: a job array with
# one shard per task (run-matrix.sbatch), then a merge + report job
# (merge-matrix.sbatch) that starts when every task has succeeded.
#
#   scripts/slurm/submit-matrix.sh MATRIX.toml SHARDS [OUT_DIR] [-- extra sbatch options]
#
# OUT_DIR (default: results) receives <matrix file name>-shard-i-of-SHARDS.h5,
# <matrix file name>.h5 and .md. Extra sbatch options (--partition,
# --account, --time, --cpus-per-task, ...) go to both jobs and override the
# scripts' #SBATCH lines. The binary: $IMBENCH (default: imbench on PATH),
# the device: $IMBENCH_DEVICE (default: the matrix's), both passed to the
# jobs with the rest of the environment. Prints the array job id and the
# merge job id, and how to re-run one failed task.
set -euo pipefail

usage() { echo "usage: $0 MATRIX.toml SHARDS [OUT_DIR] [-- extra sbatch options]" >&2; exit 2; }
[ $# -ge 2 ] || usage
matrix=$1
shards=$2
shift 2
out_dir=results
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out_dir=$1; shift; fi
if [ $# -gt 0 ]; then
  [ "$1" = "--" ] || usage
  shift
fi
extra=("$@")
[[ "$shards" =~ ^[1-9][0-9]*$ ]] || { echo "$0: SHARDS must be a positive integer, got '$shards'" >&2; exit 2; }
[ -f "$matrix" ] || { echo "$0: $matrix: no such file" >&2; exit 2; }
command -v sbatch >/dev/null || { echo "$0: sbatch not found (not on a Slurm cluster?)" >&2; exit 2; }
imbench=${IMBENCH:-imbench}
command -v "$imbench" >/dev/null || { echo "$0: $imbench not found: set IMBENCH to the imbench binary" >&2; exit 2; }
# Check the matrix, its models and data once here rather than in every task.
"$imbench" run "$matrix" --dry-run --shard "1/$shards" >/dev/null

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$out_dir"
array=$(sbatch --parsable --array="1-$shards" "${extra[@]}" "$here/run-matrix.sbatch" "$matrix" "$out_dir" "$shards")
array=${array%%;*}  # "id;cluster" on a federation
merge=$(sbatch --parsable --dependency="afterok:$array" "${extra[@]}" "$here/merge-matrix.sbatch" "$matrix" "$out_dir" "$shards")
merge=${merge%%;*}
echo "array job: $array (tasks 1-$shards: $out_dir/$(basename "$matrix" .toml)-shard-i-of-$shards.h5)"
echo "merge job: $merge (after the array: $out_dir/$(basename "$matrix" .toml).h5 and .md)"
echo "a failed task i: scancel $merge (it then waits forever: DependencyNeverSatisfied), and"
echo "  sbatch --array=i ${extra[*]:+${extra[*]} }$here/run-matrix.sbatch $matrix $out_dir $shards"
echo "  then: sbatch --dependency=afterok:<its id> ${extra[*]:+${extra[*]} }$here/merge-matrix.sbatch $matrix $out_dir $shards"
