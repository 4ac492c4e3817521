#!/usr/bin/env bash
# Diagnostic for the dispatch benchmark: counts and times every fsync/fdatasync an `hpo run` makes
# per trial, split by the file it syncs (the job database's WAL = the coordinator's commits; the
# trial's config/*.json and their directories = the worker's trial layout). Runs a small job under
# strace (which slows the run itself: read the counts and the per-call times, not the wall time).
#
#   bench/dispatch/sync_trace.sh             # TRIALS=200 LAYOUT=4x4; after bench/dispatch/run.sh built hpo
#   STATE_ROOT=/dev/shm/x bench/dispatch/sync_trace.sh   # the same with everything on tmpfs
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
TRIALS="${TRIALS:-200}"
LAYOUT="${LAYOUT:-4x4}"
BUILD="${BUILD:-build-bench}"
W="${LAYOUT%x*}" S="${LAYOUT#*x}"
hpo="$root/$BUILD/cli/hpo"
trainer="$root/$BUILD/bench/sleep_trainer"
[[ -x "$hpo" && -x "$trainer" ]] || { echo "sync_trace: run bench/dispatch/run.sh first (it builds $hpo and $trainer)" >&2; exit 2; }
command -v strace >/dev/null || { echo "sync_trace: needs strace (apt-get install -y strace)" >&2; exit 2; }
base="${STATE_ROOT:-$root/$BUILD/bench-dispatch/sync-trace}"
rm -rf "$base"
mkdir -p "$base"
python3 bench/dispatch/gen_spec.py --trials "$TRIALS" --parallel $((W * S)) --trainer "$trainer" --name "sync-trace" \
  --output-uri "file://$base/output" -o "$base/spec.json"
strace -f -qq -y -T -e trace=fsync,fdatasync -o "$base/strace.txt" \
  "$hpo" run "$base/spec.json" --workers "$W" --slots "$S" --state-dir "$base/state" -o json >/dev/null 2>"$base/progress.log"
python3 - "$base/strace.txt" "$TRIALS" <<'PY'
import re, sys
from collections import defaultdict
path, trials = sys.argv[1], int(sys.argv[2])
# With -f a call that another thread interrupts is split in two lines: "TID call(FD<PATH>
# <unfinished ...>" then "TID <... call resumed>) = RC <SECS>"; join them by thread.
whole = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)>\)\s+=\s+(-?\d+).*<([\d.]+)>")
begun = re.compile(r"^(\d+)\s+(fsync|fdatasync)\((\d+)<([^>]*)> <unfinished")
ended = re.compile(r"^(\d+)\s+<\.\.\. (fsync|fdatasync) resumed>.*=\s+(-?\d+).*<([\d.]+)>")
groups = defaultdict(list)
tids = defaultdict(set)
pending = {}
calls = []
for line in open(path):
    if m := whole.match(line):
        calls.append(m.groups())
    elif m := begun.match(line):
        pending[m.group(1)] = m.groups()
    elif (m := ended.match(line)) and m.group(1) in pending:
        tid, call, fd, f = pending.pop(m.group(1))
        calls.append((tid, call, fd, f, m.group(3), m.group(4)))
for tid, call, _fd, f, _rc, secs in calls:
    if f.endswith("hpo.db-wal") or f.endswith("hpo.db"):
        key = f"coordinator: {call} {f.rsplit('/', 1)[-1]} (SQLite commit)"
    elif "/config/" in f or f.endswith("/config"):
        key = f"worker: {call} " + ("config/*.json.tmp (WriteFileAtomically)" if ".json" in f else "config/ directory (WriteFileAtomically)")
    else:
        key = f"other: {call} " + re.sub(r"[^/]*-\d{3}-[0-9a-f]{8}", "<trial>", f)
    groups[key].append(float(secs) * 1000)
    tids[key].add(tid)
def pct(v, q):
    s = sorted(v); return s[max(0, int(round(q / 100 * len(s))) - 1)]
print(f"{trials} trials; per kind of sync: calls per trial, per-call p50/p90 ms, total ms per trial, threads")
print("| synced file | calls/trial | p50 ms | p90 ms | ms/trial | threads |")
print("|---|---|---|---|---|---|")
for k, v in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
    print(f"| {k} | {len(v) / trials:.2f} | {pct(v, 50):.2f} | {pct(v, 90):.2f} | {sum(v) / trials:.1f} | {len(tids[k])} |")
PY
