#!/usr/bin/env bash
# Runs deploy/slurm/hpo-workers.sbatch under a real Slurm (CTest Deploy.Slurm).
#   tests/deploy/slurm_test.sh HPO_BINARY QUADRATIC_TRAINER
#
# What it proves, with real processes only (munged, slurmctld, slurmd, an hpo coordinator with
# CurveZMQ keys, the workers the batch script starts through srun, the quadratic trainer):
#  1. sbatch of the script starts a worker that registers with the coordinator (the id it names in
#     the job's output is one the coordinator has a WorkerRegistered event for), and a tuning job
#     run on it completes: every training job Completed, launched on that worker, with the
#     objective the trainer's formula gives for its hyperparameters.
#  2. What the script's header promises for scancel: while two training jobs run on its worker,
#     scancel of the Slurm job hands both back (Interrupted events, reported by the worker before
#     it exits, no second signal that would skip their grace period), and the tuning job stays
#     InProgress with nothing failed.
#  3. Two fresh allocations of the script on the same node are two workers (both register), the
#     handed-back training jobs run again there, one on each, and complete: attempt 2, with no
#     retry spent (no InfraError event, although the job's RetryStrategy would allow one).
#
# The Slurm cluster is private to this run: a single node in a temporary directory, with its own
# munged (--socket there, AuthInfo=socket=...), its own SlurmctldPort/SlurmdPort (free ports),
# state, spool, pid and log files there, and SLURM_CONF pointing at its slurm.conf. Every daemon
# and every process of its jobs carries HPO_SLURM_TEST=<that directory> in its environment; on
# exit (failure included) the jobs are cancelled, the daemons stopped by PID, and whatever still
# carries that mark is killed. On failure the daemon, coordinator and worker logs are printed.
# HPO_KEEP_TMP=1 keeps the directory.
#
# Exit 77 (CTest skip) only when Slurm or munge is not installed (scripts/install-deps.sh --test
# installs slurm-wlm and munge) or when not run as root (the private slurmd runs as root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
hpo="${1:?usage: slurm_test.sh HPO_BINARY QUADRATIC_TRAINER}"
quadratic="${2:?usage: slurm_test.sh HPO_BINARY QUADRATIC_TRAINER}"
batch="$here/deploy/slurm/hpo-workers.sbatch"
t0=$SECONDS
say() { echo "slurm-test [$((SECONDS - t0))s]: $*"; }
fail() { say "FAIL: $*" >&2; exit 1; }

for tool in munged munge unmunge slurmctld slurmd sbatch squeue sinfo scancel; do
  if ! command -v "$tool" >/dev/null; then
    echo "slurm-test: SKIP: $tool is not installed (scripts/install-deps.sh --test installs slurm-wlm and munge)"
    exit 77
  fi
done
if [[ $(id -u) -ne 0 ]]; then
  echo "slurm-test: SKIP: needs root (the private slurmctld and slurmd run as SlurmUser=root, SlurmdUser=root)"
  exit 77
fi
[[ -x "$hpo" ]] || fail "no hpo binary at $hpo"
[[ -x "$quadratic" ]] || fail "no quadratic trainer at $quadratic (build the quadratic target)"
command -v python3 >/dev/null || fail "python3 is needed to pick free ports and read JSON"
hpo="$(cd "$(dirname "$hpo")" && pwd)/$(basename "$hpo")"
quadratic="$(cd "$(dirname "$quadratic")" && pwd)/$(basename "$quadratic")"

# What a caller's environment might carry into the batch script or the clients.
unset HPO_BIN HPO_SLOTS HPO_WORK_DIR HPO_WORKER_ARGS HPO_COORDINATOR SLURM_CONF SLURM_JOB_ID \
      SBATCH_PARTITION SBATCH_TIMELIMIT SLURM_TIME_FORMAT

dir=$(mktemp -d /tmp/hpo-slurm-test.XXXXXX)
chmod 755 "$dir"  # munged wants its socket's directory searchable by all
mkdir -p "$dir/munge-run" "$dir/munge-key" "$dir/state" "$dir/spool" "$dir/log" "$dir/work" "$dir/output"
chmod 755 "$dir/munge-run"
chmod 700 "$dir/munge-key"
mark="HPO_SLURM_TEST=$dir"
export SLURM_CONF="$dir/slurm.conf"

daemon_pids=()   # munged, slurmctld, slurmd, coordinator: stopped in reverse order
ended=0
dump_logs() {
  say "--- diagnostics (test directory $dir) ---"
  if [[ -n "${HPO_COORDINATOR:-}" ]]; then
    echo "=== hpo events (every job, the coordinator's own)"
    timeout 10 "$hpo" events 2>&1 | tail -n 60 || true
  fi
  echo "=== squeue / sinfo"
  timeout 10 squeue 2>&1 || true
  timeout 10 sinfo 2>&1 || true
  local f
  for f in "$dir"/log/*; do
    [[ -f "$f" ]] || continue
    echo "=== $f (last 80 lines)"
    tail -n 80 "$f" || true
  done
}
cleanup() {
  local rc=$?
  set +e
  ((ended)) && return
  ended=1
  ((rc != 0)) && dump_logs
  # The jobs first (their workers and trainers), while the controller is there to cancel them.
  if [[ -n "${ctld_pid:-}" ]] && kill -0 "$ctld_pid" 2>/dev/null; then
    local ids
    ids=$(timeout 10 squeue -h -o %i 2>/dev/null)
    if [[ -n "$ids" ]]; then
      # shellcheck disable=SC2086
      timeout 10 scancel $ids 2>/dev/null
      local until=$((SECONDS + 20))
      while ((SECONDS < until)) && [[ -n "$(timeout 5 squeue -h -o %i 2>/dev/null)" ]]; do sleep 0.3; done
    fi
  fi
  local i pid
  for ((i = ${#daemon_pids[@]} - 1; i >= 0; i--)); do
    pid=${daemon_pids[i]}
    kill -TERM "$pid" 2>/dev/null || continue
    local until=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < until)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  # Whatever this run started and is still there (a slurmstepd, a worker, a trainer): it carries
  # the mark in its environment.
  local p environ
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid == "$$" ]] && continue
    environ=$( { tr '\0' '\n' <"$p/environ"; } 2>/dev/null) || continue
    if grep -qxF "$mark" <<<"$environ"; then
      say "killing leftover process $pid ($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null | cut -c1-100))"
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [[ "${HPO_KEEP_TMP:-0}" != 0 ]]; then
    say "kept $dir"
  else
    rm -rf "$dir"
  fi
  if ((rc == 0)); then say "PASS"; else say "failed (exit $rc); HPO_KEEP_TMP=1 keeps the test directory"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Polls COMMAND until it succeeds, LIMIT seconds at most (and never past the whole test's
# budget, so that it fails and cleans up before CTest's TIMEOUT would kill it), saying what it
# waits for.
budget=${HPO_SLURM_TEST_BUDGET_S:-200}
wait_for() {
  local what=$1 limit=$2 start=$SECONDS
  shift 2
  ((limit <= budget - (SECONDS - t0))) || limit=$((budget - (SECONDS - t0)))
  say "waiting (up to ${limit}s) for $what"
  until "$@"; do
    ((SECONDS - start < limit)) || fail "timed out after ${limit}s waiting for $what (the test's budget: ${budget}s)"
    sleep 0.25
  done
  say "  ok after $((SECONDS - start))s: $what"
}
alive() { local pid=$1 name=$2; kill -0 "$pid" 2>/dev/null || fail "$name (pid $pid) exited; see its log below"; }

read -r ctld_port slurmd_port zmq_port http_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
say "test directory $dir; ports: slurmctld $ctld_port, slurmd $slurmd_port, coordinator $zmq_port (ZeroMQ) $http_port (HTTP)"

# --- munge and Slurm ---
dd if=/dev/urandom of="$dir/munge-key/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge-key/munge.key"
socket="$dir/munge-run/munge.socket"
env "$mark" munged -F --socket="$socket" --key-file="$dir/munge-key/munge.key" \
  --pid-file="$dir/munge-run/munged.pid" --seed-file="$dir/munge-key/munged.seed" \
  --log-file="$dir/log/munged.log" >"$dir/log/munged.out" 2>&1 &
munged_pid=$!
daemon_pids+=("$munged_pid")
munge_works() { alive "$munged_pid" munged; munge -S "$socket" -n 2>/dev/null | unmunge -S "$socket" >/dev/null 2>&1; }
wait_for "munged to answer on $socket" 30 munge_works

cat >"$SLURM_CONF" <<EOF
ClusterName=hpotest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=300
KillWait=30
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
env "$mark" slurmctld -D -i >"$dir/log/slurmctld.out" 2>&1 &
ctld_pid=$!
daemon_pids+=("$ctld_pid")
env "$mark" slurmd -D -N localhost >"$dir/log/slurmd.out" 2>&1 &
slurmd_pid=$!
daemon_pids+=("$slurmd_pid")
node_idle() {
  alive "$ctld_pid" slurmctld
  alive "$slurmd_pid" slurmd
  [[ "$(timeout 10 sinfo -h -o %T 2>/dev/null)" == idle ]]
}
wait_for "the Slurm node to be idle (sinfo -h -o %T)" 60 node_idle

# --- the coordinator ---
"$hpo" keygen --out "$dir/keys" >"$dir/log/keygen.log" 2>&1 || fail "hpo keygen --out $dir/keys failed: $(cat "$dir/log/keygen.log")"
env "$mark" "$hpo" coordinator --keys "$dir/keys" --state-dir "$dir/coordinator" \
  --listen "tcp://127.0.0.1:$zmq_port" --http "127.0.0.1:$http_port" >"$dir/log/coordinator.log" 2>&1 &
coord_pid=$!
daemon_pids+=("$coord_pid")
export HPO_COORDINATOR="http://127.0.0.1:$http_port"
coordinator_answers() { alive "$coord_pid" "hpo coordinator"; timeout 10 "$hpo" list >/dev/null 2>&1; }
wait_for "the coordinator's HTTP API ($HPO_COORDINATOR)" 30 coordinator_answers

# --- helpers ---
json() {  # json EXPR: evaluates EXPR with d = the JSON document on stdin, prints the result
  python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}
# sbatch of the repository's batch script; prints the Slurm job id.
start_workers() {
  local slots=$1 out
  out=$(env "$mark" HPO_BIN="$hpo" HPO_WORK_DIR="$dir/work" HPO_SLOTS="$slots" \
        sbatch --parsable --chdir="$dir" --output="$dir/log/slurm-%j.out" "$batch" "tcp://127.0.0.1:$zmq_port" "$dir/keys" 2>&1) \
    || fail "sbatch $batch refused: $out"
  echo "${out%%;*}"
}
registered() {  # registered WORKER_ID: the coordinator has a WorkerRegistered event for it
  local events
  events=$(timeout 10 "$hpo" events --kind WorkerRegistered -o json 2>/dev/null) || return 1
  [[ "$events" == *"\"message\":\"$1 "* ]]
}
# worker_up SLURM_JOB VAR: the job runs, its worker says (in the job's output) it registered, and
# the coordinator agrees; VAR gets the worker's id.
worker_up() {
  local line id
  [[ "$(slurm_state "$1")" == RUNNING ]] || return 1
  # (each line starts with its UTC time)
  line=$(grep -m1 -E "^([0-9T:.Z-]+ )?worker: registered with .* as " "$dir/log/slurm-$1.out" 2>/dev/null) || return 1
  id=${line##* as }
  registered "$id" || return 1
  printf -v "$2" '%s' "$id"
}
slurm_state() { timeout 10 squeue -h -j "$1" -o %T 2>/dev/null || true; }
job_status() { timeout 10 "$hpo" describe "$1" -o json 2>/dev/null | json 'd["HyperParameterTuningJobStatus"]' 2>/dev/null; }
job_ended() {
  local s
  s=$(job_status "$1") || return 1
  case "$s" in
    Completed) return 0 ;;
    Failed | Stopped) fail "tuning job $1 ended $s" ;;
    *) return 1 ;;
  esac
}
counters() { "$hpo" describe "$1" -o json | json 'json.dumps(d["TrainingJobStatusCounters"], sort_keys=True)'; }
spec() {  # spec NAME TRAINING_JOBS EPOCHS SLEEP_MS > file
  cat <<EOF
{
  "HyperParameterTuningJobName": "$1",
  "HyperParameterTuningJobConfig": {
    "Strategy": "Random",
    "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": $2, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "-2", "MaxValue": "2"}]},
    "TrainingJobEarlyStoppingType": "Off"
  },
  "TrainingJobDefinition": {
    "StaticHyperParameters": {"epochs": "$3", "sleep_ms": "$4"},
    "AlgorithmSpecification": {
      "TrainingImage": "file://$quadratic",
      "TrainingInputMode": "File",
      "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}]
    },
    "RoleArn": "arn:aws:iam::123456789012:role/hpo-slurm-test",
    "OutputDataConfig": {"S3OutputPath": "file://$dir/output"},
    "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
    "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    "RetryStrategy": {"MaximumRetryAttempts": 1}
  }
}
EOF
}
# Every training job of JOB completed with the objective quadratic's formula gives for its x
# (y, optimizer and layers at their defaults: (x - 0.3)^2 + 0.04), and ran on one of WORKERS;
# prints "training-job worker" lines (the worker of its last attempt).
check_trials() {
  local job=$1 workers=$2 tj out
  "$hpo" trials "$job" -o json >"$dir/trials-$job.json" || fail "hpo trials $job failed"
  for tj in $(json '" ".join(t["TrainingJobName"] for t in d["TrainingJobSummaries"])' <"$dir/trials-$job.json"); do
    "$hpo" describe "$tj" -o json >"$dir/describe-$tj.json" || fail "hpo describe $tj failed"
    out=$( (python3 - "$dir/describe-$tj.json" "$workers" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
workers = sys.argv[2].split()
name = d["TrainingJobName"]
if d["TrainingJobStatus"] != "Completed":
    sys.exit(f"{name} is {d['TrainingJobStatus']}: {d.get('FailureReason', '')}")
launches = [t["StatusMessage"] for t in d["SecondaryStatusTransitions"] if t["Status"] == "Starting"]
if not launches or not launches[-1].startswith("Launching on worker "):
    sys.exit(f"{name}: no 'Launching on worker' transition: {d['SecondaryStatusTransitions']}")
worker = launches[-1][len("Launching on worker "):].split(" ")[0]  # "... (X, queued ahead of it, ended)"
if worker not in workers:
    sys.exit(f"{name} ran on {worker}, not on the Slurm workers {workers}")
x = float(d["HyperParameters"]["x"])
want = (x - 0.3) ** 2 + 0.04
got = d["FinalMetricDataList"][-1]["Value"] if d.get("FinalMetricDataList") else None
if got is None or abs(got - want) > 1e-6:
    sys.exit(f"{name}: final loss {got}, the trainer's formula gives {want} for x={x}")
print(name, worker)
EOF
) 2>&1) || fail "training job $tj of $job: $out"
    echo "$out"
  done
}

# --- 1. a worker from the batch script runs a tuning job ---
worker_a="" worker_b="" worker_c=""  # the ids the workers of the Slurm jobs registered under
job_a=$(start_workers 2)
say "submitted the batch script as Slurm job $job_a (HPO_SLOTS=2)"
wait_for "Slurm job $job_a to run and its worker to register with the coordinator" 60 worker_up "$job_a" worker_a
say "the worker of Slurm job $job_a registered as $worker_a"

spec slurm-quick 4 3 50 >"$dir/slurm-quick.json"
"$hpo" submit "$dir/slurm-quick.json" >"$dir/log/submit-quick.log" 2>&1 || fail "hpo submit slurm-quick: $(cat "$dir/log/submit-quick.log")"
wait_for "tuning job slurm-quick (4 training jobs, 2 at a time) to complete on $worker_a" 90 job_ended slurm-quick
c=$(counters slurm-quick)
[[ "$c" == '{"Completed": 4, "InProgress": 0, "NonRetryableError": 0, "RetryableError": 0, "Stopped": 0}' ]] ||
  fail "slurm-quick's training job counters are $c, want 4 Completed and nothing else"
check_trials slurm-quick "$worker_a" >/dev/null
say "slurm-quick: 4 training jobs Completed on $worker_a with the trainer's objectives"

# --- 2. scancel while training jobs run ---
spec slurm-handback 2 20 1000 >"$dir/slurm-handback.json"  # about 20 s per training job
"$hpo" submit "$dir/slurm-handback.json" >"$dir/log/submit-handback.log" 2>&1 ||
  fail "hpo submit slurm-handback: $(cat "$dir/log/submit-handback.log")"
both_training() {  # both training jobs InProgress and past their first epoch (a loss among their metrics)
  local names name n=0
  names=$(timeout 10 "$hpo" trials slurm-handback -o json 2>/dev/null |
      json '" ".join(t["TrainingJobName"] for t in d["TrainingJobSummaries"] if t["TrainingJobStatus"] == "InProgress")' 2>/dev/null) || return 1
  for name in $names; do
    timeout 10 "$hpo" describe --training-job "$name" -o json 2>/dev/null |
      json 'len(d.get("FinalMetricDataList", []))' 2>/dev/null | grep -qv '^0$' && n=$((n + 1))
  done
  [[ "$n" == 2 ]]
}
wait_for "both training jobs of slurm-handback to be training on $worker_a (a first loss reported)" 60 both_training
say "scancel $job_a while they run"
scancel "$job_a" || fail "scancel $job_a failed"
interrupted() {
  local events
  events=$(timeout 10 "$hpo" events slurm-handback -o json 2>/dev/null) || return 1
  if [[ "$events" == *'"kind":"InfraError"'* ]]; then  # the worker went without handing them back
    fail "a training job of slurm-handback ended InfraError (a retry spent) instead of being handed back: $(grep '"InfraError"' <<<"$events")"
  fi
  [[ "$(grep -c '"kind":"Interrupted".*"message":"attempt 1: Interrupted' <<<"$events")" == 2 ]]
}
wait_for "the worker to hand both training jobs back (2 Interrupted events)" 45 interrupted
job_a_gone() { [[ -z "$(slurm_state "$job_a")" ]]; }
wait_for "Slurm job $job_a to end (gone from squeue)" 60 job_a_gone
out_a="$dir/log/slurm-$job_a.out"
for tj in $("$hpo" trials slurm-handback -o json | json '" ".join(t["TrainingJobName"] for t in d["TrainingJobSummaries"])'); do
  grep -q "$tj attempt 1 ended Interrupted" "$out_a" ||
    fail "the worker's output ($out_a) does not say $tj attempt 1 ended Interrupted"
done
grep -q "hpo worker: stopping; running training jobs get SIGTERM and their grace period" "$out_a" ||
  fail "the worker of Slurm job $job_a did not say it got SIGTERM and stopped its training jobs"
if grep -q "quitting now" "$out_a"; then
  fail "the worker of Slurm job $job_a got a second signal from scancel and killed its training jobs without their grace period"
fi
[[ "$(job_status slurm-handback)" == InProgress ]] || fail "slurm-handback is $(job_status slurm-handback) after scancel, want InProgress"
c=$(counters slurm-handback)
[[ "$c" == *'"NonRetryableError": 0, "RetryableError": 0, "Stopped": 0'* && "$c" != *'"Completed": 1'* && "$c" != *'"Completed": 2'* ]] ||
  fail "slurm-handback's counters after scancel are $c: something ended instead of being handed back"
say "scancel $job_a: both training jobs handed back (Interrupted), the worker exited, slurm-handback still InProgress"

# --- 3. two fresh allocations take the handed-back training jobs ---
job_b=$(start_workers 1)
job_c=$(start_workers 1)
say "submitted the batch script again as Slurm jobs $job_b and $job_c (HPO_SLOTS=1 each, same node)"
both_up() { worker_up "$job_b" worker_b && worker_up "$job_c" worker_c; }
wait_for "the workers of Slurm jobs $job_b and $job_c to register (two allocations on one node must be two workers: a second one under an id in use waits idle)" 60 both_up
[[ "$worker_b" != "$worker_c" && "$worker_b" != "$worker_a" && "$worker_c" != "$worker_a" ]] ||
  fail "the workers of Slurm jobs $job_a, $job_b, $job_c registered as $worker_a, $worker_b, $worker_c: not three ids"
say "they registered as $worker_b and $worker_c"
wait_for "slurm-handback's handed-back training jobs to run again and the job to complete" 90 job_ended slurm-handback
c=$(counters slurm-handback)
[[ "$c" == '{"Completed": 2, "InProgress": 0, "NonRetryableError": 0, "RetryableError": 0, "Stopped": 0}' ]] ||
  fail "slurm-handback's training job counters are $c, want 2 Completed and nothing else"
ran=$(check_trials slurm-handback "$worker_b $worker_c")
"$hpo" events slurm-handback -o json >"$dir/events-handback.json"
python3 - "$dir/events-handback.json" "$worker_a" <<'EOF' || fail "slurm-handback's events do not show a clean hand-back (above; all: $dir/events-handback.json)"
import json, sys
events = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
worker_a = sys.argv[2]
bad = [e for e in events if e["kind"] in ("InfraError", "TrainingJobStopped", "JobFailed")]
if bad:
    sys.exit(f"a retry was spent or something failed: {bad}")
for tj in sorted({e["trial"] for e in events if e["trial"]}):
    mine = [(e["kind"], e["message"]) for e in events if e["trial"] == tj]
    kinds = [k for k, _ in mine]
    if kinds.count("Interrupted") != 1 or kinds.count("TrialExited") != 1:
        sys.exit(f"{tj}: want one Interrupted and one TrialExited event: {mine}")
    cut = kinds.index("Interrupted")
    before = [m for k, m in mine[:cut] if k.startswith("Assigned")]
    after = [m for k, m in mine[cut:] if k.startswith("Assigned")]
    if before != [f"attempt 1 on worker {worker_a}"]:
        sys.exit(f"{tj}: before the interruption, want attempt 1 assigned to {worker_a}: {mine}")
    if not mine[cut][1].startswith("attempt 1: Interrupted"):
        sys.exit(f"{tj}: the interruption is not attempt 1's: {mine}")
    if not after or not after[-1].startswith("attempt 2 on worker "):
        sys.exit(f"{tj}: after the interruption, want attempt 2 assigned to a new worker: {mine}")
    if mine[-1][0] != "TrialExited" or not mine[-1][1].startswith("Completed"):
        sys.exit(f"{tj}: want it to end Completed last: {mine}")
EOF
ran_on=$(awk '{print $2}' <<<"$ran" | sort | tr '\n' ' ')
want_on=$(printf '%s\n' "$worker_b" "$worker_c" | sort | tr '\n' ' ')
[[ "$ran_on" == "$want_on" ]] ||
  fail "the handed-back training jobs ran on: $ran_on; want one on each new worker ($want_on): $ran"
say "slurm-handback: both training jobs ran again (attempt 2, no retry spent), one on each new worker, and Completed"
say "all checks passed"
