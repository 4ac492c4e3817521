#!/usr/bin/env bash
# Suggestion latency side by side: hpo's Bayesian strategy vs the peers' Gaussian-process searchers
# (Optuna's GPSampler, Syne Tune's BOTorch) after N completed trials in D dimensions, one
# configuration asked (q = 1, what the peers propose at a time), and hpo's batch of Q beside it.
#
#   bench/latency/run.sh [BUILD_DIR] [--ns "100 250 500 1000 2000"] [--d 20] [--q 32]
#                        [--repeat 3] [--timeout 300]
#
# BUILD_DIR (default build-q) gets a Release, CPU-only `hpo` on first use. The peers run in their
# benchmark venvs (bench/.venv-optuna: optuna + torch, set up by bench/quality/run.sh;
# bench/.venv-syne: syne-tune + botorch, set up here); a peer whose venv is missing is reported
# as not run. Every measurement is one process under `timeout`: one that runs past it is reported
# as "> T s" (the limit covers the interpreter start, imports and all repeats) and the peer's larger
# N are skipped. Prints a markdown table with the machine, load
# and command; bench/latency/peers.py says exactly what each peer's figure is.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=build-q
if [[ $# -gt 0 && $1 != --* ]]; then BUILD=$1; shift; fi
NS="100 250 500 1000 2000" D=20 Q=32 REPEAT=3 TIMEOUT=300
while [[ $# -gt 0 ]]; do
  case $1 in
    --ns) NS=$2; shift 2 ;;
    --d) D=$2; shift 2 ;;
    --q) Q=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/latency/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
source bench/common.sh
OPTUNA_PY=${OPTUNA_PY:-bench/.venv-optuna/bin/python}
SYNE_PY=${SYNE_PY:-bench/.venv-syne/bin/python}
bench_syne_venv || true
HPO=$(bench_hpo "$BUILD")
header="$(bench_machine)
- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)
- Command: \`bench/latency/run.sh $BUILD --ns \"$NS\" --d $D --q $Q --repeat $REPEAT --timeout $TIMEOUT\` (hpo built in $BUILD at $(git rev-parse --short HEAD))"

# cell PEER N: sets CELL to the median seconds, "> T s" past the timeout, or why it did not run.
declare -A over  # a peer past the timeout at some N is not run at larger ones
err=$(mktemp)
trap 'rm -f "$err"' EXIT
cell() {
  local peer=$1 n=$2 py out rc=0
  if [[ -n ${over[$peer]:-} ]]; then CELL="skipped (> $TIMEOUT s at n=${over[$peer]})"; return; fi
  case $peer in
    hpo-q1|hpo-qQ)
      out=$(timeout "$TIMEOUT" "$HPO" bench suggest --n "$n" --d "$D" --q "$([[ $peer == hpo-q1 ]] && echo 1 || echo "$Q")" \
        --device cpu --repeat "$REPEAT" -o json 2>"$err") || rc=$? ;;
    *)
      py=$([[ $peer == optuna-gp ]] && echo "$OPTUNA_PY" || echo "$SYNE_PY")
      if [[ ! -x $py ]]; then CELL="not run (no $py)"; return; fi
      out=$(timeout "$TIMEOUT" "$py" bench/latency/peers.py "$peer" --n "$n" --d "$D" --repeat "$REPEAT" 2>"$err") || rc=$? ;;
  esac
  if [[ $rc == 124 ]]; then over[$peer]=$n; CELL="> $TIMEOUT s"; return; fi
  if [[ $rc != 0 ]]; then CELL="failed ($(grep -v -i warn "$err" | tail -1 | cut -c1-80))"; return; fi
  CELL=$(python3 -c 'import json,sys; print("%.3g" % json.loads(sys.argv[1].splitlines()[-1])["seconds"])' "$out")
}
peers="hpo-q1 hpo-qQ optuna-gp syne-botorch syne-botorch-all"
echo "| n | hpo q=1 | hpo q=$Q | Optuna GP | Syne Tune BOTorch (GP on <= 200) | Syne Tune BOTorch (GP on all n) |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |"
for n in $NS; do
  row="| $n |"
  for p in $peers; do cell "$p" "$n"; row+=" $CELL |"; done
  echo "$row"
done
echo
echo "Seconds for one suggestion (median of $REPEAT, each a fresh searcher), d = $D."
echo "$header"
echo "- Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# versions PY MODULE...: each module's version in that interpreter, or what is missing (optuna
# without torch read "optuna: none", as if optuna were not there; a bench pass).
versions() {
  local py=$1; shift
  if [[ ! -x $py ]]; then echo "$* (no $py)"; return; fi
  "$py" -c 'import importlib, sys
out = []
for m in sys.argv[1:]:
    try:
        out.append(m + " " + getattr(importlib.import_module(m), "__version__", "?"))
    except Exception as e:
        out.append(m + " not importable (" + type(e).__name__ + ")")
print(", ".join(out))' "$@" 2>/dev/null || echo "$* (the interpreter failed)"
}
echo "- Versions: $(versions "$OPTUNA_PY" optuna torch); $(versions "$SYNE_PY" syne_tune botorch)"
