#!/usr/bin/env bash
# What an API call waits for while the coordinator is busy: `hpo run` runs TRIALS short training
# jobs (bench/dispatch/sleep_trainer, SLEEP_MS each) on WORKERSxSLOTS local slots, and a probe
# (probe.py) describes the job every 20 ms through the SageMaker API until it ends. The state
# database sits on this machine's disk, made slower by SLOW_SYNC_MS per fsync/fdatasync of
# hpo.db and hpo.db-wal (slow_sync.c by LD_PRELOAD; 0: the disk as it is), as a network volume
# would be. Each LABEL=HPO_BINARY is run REPEAT times, alternating, for each delay; one line per
# run and the medians per binary.
#
#   bench/api/run.sh before=/tmp/hpo-before after=build/cli/hpo
#   TRIALS=600 SLEEP_MS=100 LAYOUT=4x4 SLOW_SYNC_MS="0 20" REPEAT=3 bench/api/run.sh ...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
TRIALS="${TRIALS:-600}"
SLEEP_MS="${SLEEP_MS:-100}"
LAYOUT="${LAYOUT:-4x4}"
SLOW_SYNC_MS="${SLOW_SYNC_MS:-0 20}"
REPEAT="${REPEAT:-3}"
OUT="${OUT:-/tmp/hpo-bench-api-$$}"
W="${LAYOUT%x*}" S="${LAYOUT#*x}"
[[ $# -ge 1 ]] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
mkdir -p "$OUT"
cc -O2 -shared -fPIC -o "$OUT/slow_sync.so" "$here/slow_sync.c" -ldl
cc -O2 -o "$OUT/sleep_trainer" "$root/bench/dispatch/sleep_trainer.c"
echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); TRIALS=$TRIALS SLEEP_MS=$SLEEP_MS LAYOUT=$LAYOUT"
printf '%-10s %8s %4s %9s %9s %9s %9s %9s %7s %6s\n' binary sync_ms run describes p50_ms p90_ms p99_ms max_ms job_s done
rm -f "$OUT/runs.jsonl"
for delay in $SLOW_SYNC_MS; do
  for rep in $(seq 1 "$REPEAT"); do
    for pair in "$@"; do
      label="${pair%%=*}" bin="${pair#*=}"
      dir="$OUT/$label-$delay-$rep"
      rm -rf "$dir" && mkdir -p "$dir/state"
      python3 "$root/bench/dispatch/gen_spec.py" --trials "$TRIALS" --parallel $((W * S)) --sleep-ms "$SLEEP_MS" \
        --trainer "$OUT/sleep_trainer" --name "api-bench" --output-uri "file://$dir/output" -o "$dir/spec.json"
      preload=""
      [[ "$delay" != 0 ]] && preload="$OUT/slow_sync.so"
      LD_PRELOAD="$preload" SLOW_SYNC_MS="$delay" "$bin" run "$dir/spec.json" --workers "$W" --slots "$S" \
        --dashboard 0 --state-dir "$dir/state" -o json > "$dir/run.json" 2> "$dir/run.err" < /dev/null &
      pid=$!
      url=""
      for _ in $(seq 1 200); do
        url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$dir/state/control.json" 2>/dev/null || true)"
        [[ -n "$url" ]] && break
        sleep 0.05
      done
      [[ -n "$url" ]] || { echo "no control.json from $label (see $dir/run.err)" >&2; kill $pid; exit 1; }
      line="$(python3 "$here/probe.py" --url "$url" --job api-bench)"
      wait $pid || true
      python3 - "$label" "$delay" "$rep" "$line" "$OUT/runs.jsonl" <<'PY'
import json, sys
label, delay, rep, line, store = sys.argv[1:6]
r = json.loads(line)
r.update(binary=label, sync_ms=int(delay), run=int(rep))
open(store, "a").write(json.dumps(r) + "\n")
f = lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
print(f"{label:<10} {delay:>8} {rep:>4} {r['describes']:>9} {f(r['p50_ms']):>9} {f(r['p90_ms']):>9} {f(r['p99_ms']):>9} {f(r['max_ms']):>9} {f(r['job_s']):>7} {f(r['completed']):>6}")
PY
    done
  done
done
echo "# medians over the runs"
python3 - "$OUT/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = []
for r in rows:
    if (r["binary"], r["sync_ms"]) not in keys:
        keys.append((r["binary"], r["sync_ms"]))
for b, d in sorted(keys, key=lambda k: (k[1], k[0])):
    rs = [r for r in rows if r["binary"] == b and r["sync_ms"] == d]
    def med(k):
        v = [r[k] for r in rs if r[k] is not None]
        return statistics.median(v) if v else float("nan")
    print(f"{b} sync +{d} ms: describe p50 {med('p50_ms'):.1f} ms, p90 {med('p90_ms'):.1f} ms, "
          f"p99 {med('p99_ms'):.1f} ms, max {med('max_ms'):.1f} ms; job {med('job_s'):.1f} s ({len(rs)} runs)")
PY
