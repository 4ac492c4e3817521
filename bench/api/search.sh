#!/usr/bin/env bash
# Search over a large tuning job: `hpo run` runs TRIALS near-instant training jobs
# (bench/dispatch/sleep_trainer) into a fresh state directory, then `hpo coordinator` serves it and
# bench/api/search.py times SageMaker's Search beside ListTrainingJobsForHyperParameterTuningJob
# and DescribeTrainingJob, and what a DescribeTrainingJob waits for while Searches run.
#
#   bench/api/search.sh build/cli/hpo
#   TRIALS=20000 bench/api/search.sh build/cli/hpo
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[[ $# -ge 1 ]] || { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
hpo="$(realpath "$1")"
TRIALS="${TRIALS:-5000}"
OUT="${OUT:-/tmp/hpo-bench-search-$$}"
rm -rf "$OUT" && mkdir -p "$OUT"
cc -O2 -o "$OUT/sleep_trainer" "$root/bench/dispatch/sleep_trainer.c"
python3 "$root/bench/dispatch/gen_spec.py" --trials "$TRIALS" --parallel 16 --sleep-ms 1 \
  --trainer "$OUT/sleep_trainer" --name big --output-uri "file://$OUT/output" -o "$OUT/spec.json"
source "$root/bench/common.sh"
echo "## Search over $TRIALS training jobs ($(date -u +%FT%TZ))"
bench_machine
echo "- hpo: $hpo ($(git -C "$root" rev-parse --short HEAD)); TRIALS=$TRIALS"
start=$(date +%s)
"$hpo" run "$OUT/spec.json" --workers 4 --slots 4 --dashboard 0 --state-dir "$OUT/state" -o json \
  > "$OUT/run.json" 2> "$OUT/run.err" < /dev/null
echo "- the job: $TRIALS training jobs in $(( $(date +%s) - start )) s"
zmq=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
http=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$hpo" coordinator --listen "tcp://127.0.0.1:$zmq" --http "127.0.0.1:$http" --state-dir "$OUT/state" \
  > "$OUT/coordinator.log" 2>&1 &
coord=$!
trap 'kill $coord 2>/dev/null; wait $coord 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$http/hpo/v1/health" > /dev/null 2>&1 && break
  sleep 0.1
done
echo
python3 "$here/search.py" --url "http://127.0.0.1:$http" --job big
