#!/usr/bin/env bash
# What `hpo coordinator --notify` costs: the same tuning job of TRIALS near-instant training jobs
# (4 workers x 4 slots, bench/dispatch/sleep_trainer) with notifications to a local receiver and
# without, RUNS times each in turn; prints each run and the medians (job wall time, events taken,
# how long after the job's end its Completed event arrived).
#
#   bench/notify/run.sh build/cli/hpo
#   TRIALS=3000 RUNS=5 bench/notify/run.sh build/cli/hpo
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
hpo="$(realpath "$1")"
TRIALS="${TRIALS:-1000}"
RUNS="${RUNS:-3}"
work="$(mktemp -d /tmp/hpo-bench-notify-XXXXXX)"
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/sleep_trainer" "$root/bench/dispatch/sleep_trainer.c"
source "$root/bench/common.sh"
echo "## What --notify costs a busy coordinator ($(date -u +%FT%TZ))"
bench_machine
echo "- hpo: $hpo ($(git -C "$root" rev-parse --short HEAD)); TRIALS=$TRIALS, RUNS=$RUNS, 4 workers x 4 slots"
for _ in $(seq 1 "$RUNS"); do
  for mode in off on; do
    python3 "$here/one.py" --hpo "$hpo" --trainer "$work/sleep_trainer" --trials "$TRIALS" --notify "$mode" \
      | tee -a "$work/runs.jsonl"
  done
done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, key):
    v = [r[key] for r in runs if r["notify"] == mode and r[key] is not None]
    return statistics.median(v) if v else None
off, on = med("off", "job_seconds"), med("on", "job_seconds")
print()
print("| | without --notify | with --notify |")
print("|---|---:|---:|")
print(f"| job wall time, median | {off:.2f} s | {on:.2f} s ({(on / off - 1) * 100:+.1f} %) |")
coff, con = med("off", "coordinator_cpu_seconds"), med("on", "coordinator_cpu_seconds")
print(f"| the coordinator's CPU time, median | {coff:.2f} s | {con:.2f} s ({(con / coff - 1) * 100:+.1f} %) |")
print(f"| events taken by the receiver, median | - | {med('on', 'events'):.0f} |")
print(f"| the job's Completed event, after its end, median | - | {med('on', 'job_completed_event_lag_seconds'):.3f} s |")
PY
