#!/usr/bin/env bash
# Diagnostic for the dispatch benchmark: where does hpo's per-trial time go between the
# coordinator's SQLite database and the workers' trial directories? Runs the same `hpo run`
# (Release build from bench/dispatch/run.sh) four times with the job database (STATE/hpo.db) and
# the worker directories (STATE/local-N, symlinked) each on disk or on tmpfs (/dev/shm, where
# fsync costs nothing), and prints one line per placement. The trials' packed artifacts
# (S3OutputPath file://...) go with the worker directories.
#
#   bench/dispatch/fsync_split.sh            # TRIALS=2000 LAYOUT=4x4 by default
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
TRIALS="${TRIALS:-2000}"
LAYOUT="${LAYOUT:-4x4}"
BUILD="${BUILD:-build-bench}"
W="${LAYOUT%x*}" S="${LAYOUT#*x}"
hpo="$root/$BUILD/cli/hpo"
trainer="$root/$BUILD/bench/sleep_trainer"
[[ -x "$hpo" && -x "$trainer" ]] || { echo "fsync_split: run bench/dispatch/run.sh first (it builds $hpo and $trainer)" >&2; exit 2; }
disk_root="$root/$BUILD/bench-dispatch/fsync-split"
shm_root="/dev/shm/hpo-fsync-split-$$"
trap 'rm -rf "$shm_root"' EXIT

run() {  # run NAME DB_ON WORK_ON
  local name=$1 db_on=$2 work_on=$3
  local disk="$disk_root/$name" shm="$shm_root/$name"
  rm -rf "$disk" "$shm"
  mkdir -p "$disk" "$shm"
  local base work
  base=$([[ $db_on == disk ]] && echo "$disk" || echo "$shm")
  work=$([[ $work_on == disk ]] && echo "$disk" || echo "$shm")
  mkdir -p "$base/state"
  if [[ "$work" != "$base" ]]; then
    for i in $(seq 1 "$W"); do mkdir -p "$work/local-$i"; ln -s "$work/local-$i" "$base/state/local-$i"; done
  fi
  python3 bench/dispatch/gen_spec.py --trials "$TRIALS" --parallel $((W * S)) --trainer "$trainer" --name "split-$name" \
    --output-uri "file://$work/output" -o "$base/spec.json"
  local load fs
  load="$(cut -d' ' -f1 /proc/loadavg)"
  fs="$(python3 -c 'import os,sys,time
p=os.path.join(sys.argv[1],".probe"); fd=os.open(p,os.O_WRONLY|os.O_CREAT,0o644); ts=[]
for _ in range(100):
    t=time.perf_counter(); os.write(fd,b"x"*4096); os.fdatasync(fd); ts.append((time.perf_counter()-t)*1000)
os.close(fd); os.unlink(p); ts.sort(); print("%.2f" % ts[49])' "$disk")"
  /usr/bin/time -f '%U %S' -o "$base/time.txt" "$hpo" run "$base/spec.json" --workers "$W" --slots "$S" \
    --state-dir "$base/state" -o json >/dev/null 2>"$base/progress.log"
  python3 bench/dispatch/analyze.py hpo "$base/state/hpo.db" --slots $((W * S)) --slots-per-worker "$S" \
    --label "$name" >"$base/summary.json"
  python3 - "$base/summary.json" "$base/time.txt" "$db_on" "$work_on" "$load" "$fs" <<'PY'
import json, sys
p, t, db, work, load, fs = sys.argv[1:]
d = json.load(open(p))
b = d["gap_breakdown_ms"]
er = b["exit_report (bench_end -> coordinator got TrialExited)"]
la = b["launch (Assigned -> next bench_start)"]
u, s = open(t).read().split()
print(f"| {db} | {work} | {d['wall_s']:.1f} | {d['overhead_pct']:.0f} | {d['gap_p50_ms']:.0f} | {d['gap_p99_ms']:.0f} "
      f"| {er['p50']:.0f} / {er['p99']:.0f} | {la['p50']:.0f} / {la['p99']:.0f} | {float(u) + float(s):.1f} | {load} | {fs} |")
PY
}

echo "hpo run, $TRIALS trials, --workers $W --slots $S ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo "| job db | worker dirs | wall s | overhead % | p50 gap ms | p99 gap ms | exit report p50/p99 ms | launch p50/p99 ms | CPU s | load | disk fdatasync p50 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
run disk-disk disk disk
run disk-shm disk shm
run shm-disk shm disk
run shm-shm shm shm
