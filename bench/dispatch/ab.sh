#!/usr/bin/env bash
# A/B comparison of hpo builds on the dispatch benchmark's shape, interleaved so that both see the
# same background load (the development machine is shared): for each round, each binary runs one
# job of TRIALS sleep trials; prints one line per run (overhead, gap mean/p50/p99, exit-report and
# launch p50, CPU ms per trial, load average) and the median per binary at the end.
#
#   bench/dispatch/ab.sh BIN_A BIN_B ...      # e.g. a saved copy of build-bench/cli/hpo and the new one
#
# Knobs: TRIALS=500 ROUNDS=3 LAYOUT=4x4 SLEEP_MS=200 STATE_ROOT=/tmp/hpo-ab/<time> (put it on
# /dev/shm to take the disk out) TRAINER=build-bench/bench/sleep_trainer
#
# Nothing is deleted before or during the runs, and STATE_ROOT is new each time: on ext4 without a
# journal (this machine's disk) inodes deleted in the last 1-6 minutes are skipped one by one by
# every later allocation (ialloc.c recently_deleted()), so an `rm -rf` of an old state directory
# just before a run makes every mkdir of that run several times slower, in whichever run happens
# to allocate next to them. Remove old STATE_ROOTs well before measuring.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
TRIALS="${TRIALS:-500}"
ROUNDS="${ROUNDS:-3}"
LAYOUT="${LAYOUT:-4x4}"
SLEEP_MS="${SLEEP_MS:-200}"
STATE_ROOT="${STATE_ROOT:-/tmp/hpo-ab/$(date +%Y%m%d-%H%M%S)}"
TRAINER="${TRAINER:-$root/build-bench/bench/sleep_trainer}"
w="${LAYOUT%x*}" s="${LAYOUT#*x}"
(( $# > 0 )) || { echo "usage: $0 HPO_BINARY..." >&2; exit 2; }
[[ -x "$TRAINER" ]] || cc -O2 -o "$TRAINER" "$here/sleep_trainer.c"
mkdir -p "$STATE_ROOT"
results="$STATE_ROOT/results.tsv"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  i=0
  for bin in "$@"; do
    i=$((i + 1))
    dir="$STATE_ROOT/r$round-b$i"
    mkdir -p "$dir"
    python3 "$here/gen_spec.py" --trials "$TRIALS" --parallel $((w * s)) --sleep-ms "$SLEEP_MS" --trainer "$TRAINER" \
      --name "ab-$round-$i" --output-uri "file://$dir/output" -o "$dir/spec.json"
    load="$(cut -d' ' -f1 /proc/loadavg)"
    /usr/bin/time -f '%e %U %S' -o "$dir/time.txt" "$bin" run "$dir/spec.json" --workers "$w" --slots "$s" \
      --state-dir "$dir/state" -o json >/dev/null 2>"$dir/progress.log"
    python3 "$here/analyze.py" hpo "$dir/state/hpo.db" --slots $((w * s)) --slots-per-worker "$s" \
      --duration-ms "$SLEEP_MS" >"$dir/summary.json"
    python3 - "$dir/summary.json" "$dir/time.txt" "$i" "$bin" "$load" >>"$results" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); e, u, s = map(float, open(sys.argv[2]).read().split())
b = d["gap_breakdown_ms"]; er = [v for k, v in b.items() if k.startswith("exit")][0]; la = [v for k, v in b.items() if k.startswith("launch")][0]
print("\t".join(map(str, [sys.argv[3], sys.argv[4], d["overhead_pct"], d["gap_ms"]["mean"], d["gap_ms"]["p50"], d["gap_ms"]["p99"],
      er["mean"], er["p50"], la["mean"], la["p50"], round((u + s) / d["trials"] * 1000, 2), sys.argv[5]])))
PY
    tail -1 "$results" | awk -F'\t' '{printf "b%s overhead %5.1f %% gap mean %5.2f p50 %3s p99 %3s | exit mean %5.2f p50 %s | launch mean %5.2f p50 %s | cpu %5.2f ms/trial | load %s | %s\n", $1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $2}'
  done
done
python3 - "$results" <<'PY'
import sys, statistics
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t"); rows[(f[0], f[1])].append([float(x) for x in f[2:]])
print("median per binary: overhead %, gap mean, gap p50, gap p99, exit mean, exit p50, launch mean, launch p50, cpu ms/trial, load")
for (i, b), rs in sorted(rows.items()):
    med = [statistics.median(c) for c in zip(*rs)]
    print(f"b{i} " + " ".join(f"{m:.2f}" for m in med) + f"  ({len(rs)} runs) {b}")
PY
