#!/usr/bin/env bash
# Warm reuse benchmark (the heterogeneous-cluster issue): training job start latency with
# ResourceConfig.KeepAlivePeriodInSeconds (warm: the next training job on the same worker takes
# the File-mode channel data staged for the previous one) versus without (cold: staged again).
#
#   bench/warm/run.sh            # 8 training jobs one after another, a DATA_MB channel, both ways
#
# Start latency = the coordinator's Assigned event -> TrialStarted received (the worker laid out
# the trial, staged its data, started the program), from the job's SQLite store; the first
# training job is cold in both runs and left out. Assign-ahead is off (--no-assign-ahead): with
# it, a successor stages its copy while its predecessor runs and the latency hides either way.
# Knobs: DATA_MB=512 TRIALS=8 RECORD=1 (append to bench/RESULTS.md) BUILD=build
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
DATA_MB="${DATA_MB:-512}"
TRIALS="${TRIALS:-8}"
RECORD="${RECORD:-1}"
BUILD="${BUILD:-build}"
cmake --build "$BUILD" --target hpo quadratic >/dev/null
out="$(mktemp -d "${TMPDIR:-/tmp}/hpo-warm.XXXXXX")"
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/data"
head -c $((DATA_MB << 20)) /dev/urandom > "$out/data/train.bin"
results=()
for keep in 0 300; do
  /usr/bin/python3 - "$out" "$keep" "$TRIALS" "$root/$BUILD/examples/trainers/quadratic" > "$out/spec-$keep.json" <<'PY'
import json, sys
out, keep, trials, trainer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rc = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10}
if keep:
    rc["KeepAlivePeriodInSeconds"] = keep
print(json.dumps({
  "HyperParameterTuningJobName": f"warm-{keep}",
  "HyperParameterTuningJobConfig": {
    "Strategy": "Random",
    "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": 1},
    "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}},
  "TrainingJobDefinition": {
    "StaticHyperParameters": {"epochs": "2", "sleep_ms": "50"},
    "AlgorithmSpecification": {"TrainingImage": "file://" + trainer, "TrainingInputMode": "File",
                               "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}]},
    "RoleArn": "arn:aws:iam::123456789012:role/bench",
    "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": "file://" + out + "/data"}}}],
    "OutputDataConfig": {"S3OutputPath": "file://" + out + "/output"},
    "ResourceConfig": rc,
    "StoppingCondition": {"MaxRuntimeInSeconds": 600}}}))
PY
  sync
  "$BUILD/cli/hpo" run "$out/spec-$keep.json" --workers 1 --slots 1 --no-assign-ahead --state-dir "$out/state-$keep" \
    -o json > "$out/result-$keep.json" 2> "$out/run-$keep.log"
  results+=("$(/usr/bin/python3 - "$out/state-$keep/hpo.db" "$keep" <<'PY'
import sqlite3, statistics, sys
db, keep = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db)
assigned = {}
for trial, ts in c.execute("SELECT trial, MIN(ts_ms) FROM events WHERE kind='Assigned' GROUP BY trial"):
    assigned[trial] = ts
rows = c.execute("SELECT name, idx, start_ms FROM trials WHERE state='Completed' ORDER BY idx").fetchall()
lat = [start - assigned[name] for name, idx, start in rows if name in assigned and idx > 1]
mode = "warm (KeepAlivePeriodInSeconds %s)" % keep if keep != "0" else "cold (no keep-alive)"
print("| %s | %d | %.0f | %.0f | %.0f |" % (mode, len(lat), statistics.median(lat), min(lat), max(lat)))
PY
)")
done
table="| mode | training jobs measured | start latency p50 ms | min ms | max ms |
|---|---|---|---|---|
$(printf '%s\n' "${results[@]}")"
echo "$table"
if [[ "$RECORD" == 1 ]]; then
  {
    echo
    echo "## Warm reuse: training job start latency, warm vs cold ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), load average $(cut -d' ' -f1-3 /proc/loadavg) after the runs"
    echo "- Command: \`DATA_MB=$DATA_MB TRIALS=$TRIALS bench/warm/run.sh\` (commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . || echo ' + uncommitted changes'))"
    echo "- Shape: $TRIALS training jobs one after another on one worker (\`hpo run --workers 1 --no-assign-ahead\`), a ${DATA_MB} MiB File-mode channel (file:// source: copied per training job when cold); start latency = Assigned event -> TrialStarted received; the first training job (cold in both) is left out"
    echo
    echo "$table"
  } >> bench/RESULTS.md
  echo "run.sh: appended to bench/RESULTS.md"
fi
