#!/usr/bin/env bash
# A matrix run as a real Slurm job array (issue 16): a private munged,
# slurmctld and slurmd on this machine (no systemd; a slurm.conf, a munge key,
# sockets, state, spool and logs in a temporary folder), then the
# repository's scripts/slurm/submit-matrix.sh: one shard per array task and a
# merge + report job after them. The merged file must equal a single-process
# run of the same matrix value by value (timings aside). Then the same array
# again with one task cancelled (scancel) while it runs: the merge job never
# starts, the cancelled shard's file is partial (or absent), and re-running
# that one task (sbatch --array=k scripts/slurm/run-matrix.sbatch) plus a
# merge (scripts/slurm/merge-matrix.sbatch) gives the same file again.
# Every daemon and job is stopped and the folder removed at exit, whatever
# ends the test (EXIT, INT, TERM). Skipped (77) unless root with slurmctld,
# slurmd, munged and sbatch installed (scripts/setup.sh installs them).
# Usage: cli_slurm.sh IMBENCH SOURCE_DIR
set -u
bin=$1
src=$2
py=${IMBENCH_PYTHON:-/usr/bin/python3}  # Debian's python3 has h5py
h5="$py $src/tests/h5_results.py"
PATH=$PATH:/usr/sbin:/sbin

if [ "$(id -u)" != 0 ]; then
  echo "skip: cli_slurm needs root (it starts munged, slurmctld and slurmd as root)"
  exit 77
fi
for c in slurmctld slurmd munged mungekey munge sbatch squeue scontrol scancel sinfo; do
  if ! command -v "$c" >/dev/null; then
    echo "skip: $c not found (scripts/setup.sh installs slurmctld slurmd slurm-client munge)"
    exit 77
  fi
done

tmp=$(mktemp -d)
chmod 700 "$tmp"
daemons=()  # pids of munged, slurmctld, slurmd (children of this script)
cleanup() {
  trap - EXIT INT TERM
  # Jobs first (their slurmstepd is not our child), while the daemons still run.
  if [ -f "$tmp/slurm.conf" ] && kill -0 "${daemons[1]:-0}" 2>/dev/null; then
    scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 1 30); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  local p
  for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do  # slurmd, slurmctld, then munged
    p=${daemons[$i]}
    kill "$p" 2>/dev/null || continue
    for _ in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # Anything still working in the folder (a job the scancel missed), this script aside.
  cd / || true
  local cwd
  for d in /proc/[0-9]*; do
    [ "${d#/proc/}" = "$$" ] && continue
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    case "$cwd" in
      "$tmp" | "$tmp"/*) kill -9 "${d#/proc/}" 2>/dev/null ;;
    esac
  done
  # A job's slurmstepd is reparented to init, which may reap it a moment later.
  for _ in $(seq 1 20); do
    ps -C slurmstepd -o stat= 2>/dev/null | grep -q Z || break
    sleep 0.25
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$tmp" || exit 1
fail=0
source "$src/tests/cli_lib.sh"
start=$SECONDS
# Every wait ends by this deadline, well within ctest's TIMEOUT (180 s; the
# test takes about 50 s on 2 busy cores): a test killed by ctest (SIGKILL)
# could not stop the jobs or remove its folder.
deadline=$((start + 120))

logs() {  # the daemons' and jobs' logs, last lines
  for f in "$tmp"/munged.log "$tmp"/slurmctld.log "$tmp"/slurmd.log "$tmp"/slurm-*.out; do
    [ -f "$f" ] || continue
    echo "  --- ${f#"$tmp"/} (last lines)"
    tail -n 12 "$f" | sed 's/^/  | /'
  done
}
die() {  # the cluster did not come up: no point in going on
  echo "FAIL: $*"
  logs
  exit 1
}

# munge: its own key, socket, pid, seed and log files.
mkdir -m 700 "$tmp/munge"
mungekey --create --keyfile="$tmp/munge/munge.key" 2>"$tmp/err" || die "mungekey: $(cat "$tmp/err")"
sock=$tmp/munge/munge.socket
munged --foreground --force --key-file="$tmp/munge/munge.key" --socket="$sock" \
  --pid-file="$tmp/munge/munged.pid" --seed-file="$tmp/munge/munged.seed" \
  --log-file="$tmp/munged.log" --num-threads=2 >"$tmp/munged.out" 2>&1 &
daemons+=($!)
for _ in $(seq 1 50); do
  munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 && break
  sleep 0.2
done
munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1 || die "munged did not answer on $sock"
echo "ok: munged answers on its own socket"

# Two free TCP ports for slurmctld and slurmd.
read -r ctld_port slurmd_port < <("$py" - <<'PY'
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
PY
)
host=$(hostname -s)
cpus=$(getconf _NPROCESSORS_ONLN)  # not nproc: it follows OMP_NUM_THREADS
mkdir -p "$tmp/state" "$tmp/spool"
: >"$tmp/plugstack.conf"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=imbenchtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
PlugStackConfig=$tmp/plugstack.conf
TmpFS=$tmp
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=500 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$tmp/slurmctld.out" 2>&1 &
daemons+=($!)
slurmd -D -f "$SLURM_CONF" -N "$host" >"$tmp/slurmd.out" 2>&1 &
daemons+=($!)
state=
for _ in $(seq 1 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null)
  [ "$state" = idle ] && break
  kill -0 "${daemons[1]}" 2>/dev/null || break
  kill -0 "${daemons[2]}" 2>/dev/null || break
  sleep 0.5
done
if [ "$state" != idle ]; then
  cat "$tmp/slurmctld.out" "$tmp/slurmd.out"
  die "the node is not idle after 60 s (sinfo state '$state')"
fi
echo "ok: slurmctld and slurmd up, node $host idle with $cpus CPUs (ports $ctld_port, $slurmd_port)"

# Three cascade groups (one per eps), one per shard; shard 3's group has a
# slow third cell, so that its task can be cancelled with a partial file.
expect 0 "train a tiny DET" -- "$bin" train --dataset synthetic --epochs 1 --hidden 16 --threads 1 --quiet --out det.ckpt
cat >slurm-test.toml <<'EOF'
name = "slurm-test"
dataset = "synthetic"
examples = 40
seed = 3
batch_size = 40
cascade = false

[[models]]
name = "det"
family = "det"
checkpoint = "det.ckpt"

[[attacks]]
name = "fgsm"
eps = [0.05, 0.1, 0.15]

[[attacks]]
name = "pgd"
eps = [0.05, 0.1, 0.15]
options = { steps = 5 }

[[attacks]]
name = "pgd-long"
attack = "pgd"
eps = [0.15]
options = { steps = 6000, restarts = 5 }
EOF
expect 0 "the matrix in one process" -- "$bin" run slurm-test.toml --out single.h5 --report - --threads 1 --quiet
expect 0 "h5py reads it" -- $h5 summary single.h5
contains out "models=1 cells=7" "7 cells: fgsm and pgd at 3 eps, pgd-long at one"

ids_of() {  # ids_of FILE: "array job: ID" and "merge job: ID" of submit-matrix.sh
  array=$(sed -n 's/^array job: \([0-9]*\) .*/\1/p' "$tmp/$1")
  merge=$(sed -n 's/^merge job: \([0-9]*\) .*/\1/p' "$tmp/$1")
}
states() {  # states JOBID...: the state of each job or array task, one a line
  local id
  for id in "$@"; do
    scontrol -o show job "$id" 2>/dev/null | sed -nE 's/.* JobState=([A-Z_]+) .*/\1/p'
  done
}
active() {  # active JOBID...: 0 while one of them is not finished
  states "$@" | grep -qE "PENDING|RUNNING|CONFIGURING|COMPLETING|SUSPENDED|REQUEUE|RESIZING|SIGNALING|STAGE_OUT"
}
wait_jobs() {  # wait_jobs JOBID...: 0 once none is pending or running, 1 at the deadline
  while [ $SECONDS -lt $deadline ]; do
    active "$@" || return 0
    sleep 0.5
  done
  return 1
}
ended() {  # ended DESCRIPTION WANT JOBID...: every task ended in state WANT
  local what=$1 want=$2
  shift 2
  local s
  s=$(states "$@")
  if [ -n "$s" ] && ! grep -qvx "$want" <<<"$s"; then
    echo "ok: $what"
  else
    echo "FAIL: $what: states '$(tr '\n' ' ' <<<"$s")', expected all $want"
    logs
    fail=1
  fi
}

# 1. The array and its merge job, submitted by the helper.
export IMBENCH=$bin
expect 0 "submit-matrix.sh submits 3 shards and the merge" -- \
  env IMBENCH_DEVICE=cpu bash "$src/scripts/slurm/submit-matrix.sh" slurm-test.toml 3 run1 -- --cpus-per-task=1 --time=10
cp out submit1.txt
ids_of submit1.txt
if [ -z "$array" ] || [ -z "$merge" ]; then die "no job ids in the helper's output: $(cat submit1.txt)"; fi
echo "note: array job $array, merge job $merge"
wait_jobs "$array" "$merge" || { echo "FAIL: jobs still running at the deadline: $(states "$array" "$merge" | tr '\n' ' ')"; fail=1; }
ended "the 3 array tasks completed" COMPLETED "${array}_1" "${array}_2" "${array}_3"
ended "the merge job ran after them and completed" COMPLETED "$merge"
for i in 1 2 3; do
  [ -f "run1/slurm-test-shard-$i-of-3.h5" ] && echo "ok: task $i wrote run1/slurm-test-shard-$i-of-3.h5" ||
    { echo "FAIL: run1/slurm-test-shard-$i-of-3.h5 missing"; fail=1; }
  contains "slurm-${array}_$i.out" "imbench shard $i/3 of slurm-test.toml" "task $i's log slurm-${array}_$i.out names its shard"
done
contains "slurm-${array}_1.out" "with 1 threads on cpu" "the task runs with its CPU count as --threads, on \$IMBENCH_DEVICE"
expect 0 "merged file equals the single run, value by value (timings aside)" -- $h5 same single.h5 run1/slurm-test.h5
contains run1/slurm-test.md "# imbench report" "the merge job rendered the report"

# 2. Again, with task 3 cancelled while it runs.
expect 0 "submit-matrix.sh again (run2)" -- \
  bash "$src/scripts/slurm/submit-matrix.sh" slurm-test.toml 3 run2 -- --cpus-per-task=1 --time=10
cp out submit2.txt
ids_of submit2.txt
if [ -z "$array" ] || [ -z "$merge" ]; then die "no job ids in the helper's output: $(cat submit2.txt)"; fi
shard3=run2/slurm-test-shard-3-of-3.h5
task_state=
while [ $SECONDS -lt $deadline ]; do  # until task 3 runs and has saved its first cell
  task_state=$(states "${array}_3")
  [ "$task_state" = RUNNING ] && [ -f "$shard3" ] && break
  case "$task_state" in "" | PENDING | CONFIGURING | RUNNING) ;; *) break ;; esac
  sleep 0.2
done
if [ "$task_state" = RUNNING ]; then
  scancel "${array}_3"
  echo "ok: task ${array}_3 cancelled while running (its file: $([ -f "$shard3" ] && echo present || echo absent))"
else
  echo "FAIL: task ${array}_3 was not caught running with its file (state '$task_state')"
  fail=1
fi
wait_jobs "$array" || { echo "FAIL: tasks still running at the deadline"; fail=1; }
ended "task 3 ended cancelled" CANCELLED "${array}_3"
ended "tasks 1 and 2 completed" COMPLETED "${array}_1" "${array}_2"
reason=$(scontrol -o show job "$merge" 2>/dev/null | sed -nE 's/.* JobState=([A-Z_]+) Reason=([A-Za-z_]+).*/\1 \2/p')
if [ "$reason" = "PENDING DependencyNeverSatisfied" ]; then
  echo "ok: the merge job waits forever (DependencyNeverSatisfied): cancelled"
else
  echo "FAIL: merge job $merge: '$reason', expected PENDING DependencyNeverSatisfied"
  fail=1
fi
scancel "$merge"
[ -f run2/slurm-test.h5 ] && { echo "FAIL: a merged file exists though a task was cancelled"; fail=1; }
if [ -f "$shard3" ]; then
  cells=$($h5 summary "$shard3" 2>/dev/null | sed -n 's/.*cells=\([0-9]*\).*/\1/p')
  if [ -n "$cells" ] && [ "$cells" -lt 3 ]; then
    echo "ok: the cancelled task's file is partial ($cells of 3 cells)"
  else
    echo "FAIL: the cancelled task's file is not partial (cells '$cells' of 3)"
    fail=1
  fi
else
  echo "ok: the cancelled task left no file (absent)"
fi

# Re-run task 3 alone and merge again, as submit-matrix.sh says.
sub=(--cpus-per-task=1 --time=10)
rerun=$(sbatch --parsable --array=3 "${sub[@]}" "$src/scripts/slurm/run-matrix.sbatch" slurm-test.toml run2 3)
remerge=$(sbatch --parsable --dependency="afterok:$rerun" "${sub[@]}" "$src/scripts/slurm/merge-matrix.sbatch" slurm-test.toml run2 3)
if [ -z "$rerun" ] || [ -z "$remerge" ]; then die "sbatch of the re-run gave no job id"; fi
wait_jobs "$rerun" "$remerge" || { echo "FAIL: re-run still running at the deadline"; fail=1; }
ended "the re-run of task 3 completed" COMPLETED "$rerun"
ended "the second merge completed" COMPLETED "$remerge"
[ -n "${cells:-}" ] && contains "slurm-${rerun}_3.out" "done earlier, kept" "the re-run resumed the partial file"
expect 0 "merged after cancel + re-run equals the single run" -- $h5 same single.h5 run2/slurm-test.h5

echo "note: $((SECONDS - start)) s"
[ "$fail" = 0 ] && echo "cli_slurm: all checks passed"
exit "$fail"
