#!/usr/bin/env bash
# Hyperparameter importance side by side: hpo's against Optuna's fANOVA and PED-ANOVA, on the same
# points of functions whose Sobol indices are known exactly (bench/importance/importance.py), or
# with --real on a real model-tuning task, svr_diabetes, run as Random tuning jobs through `hpo run`
# and read back with `hpo describe --importance`, scored against Sobol indices estimated from the
# task's own objective (bench/importance/real_task.py; cached in svr_truth.json).
#
#   bench/importance/run.sh [BUILD_DIR] [--real] [-- importance.py or real_task.py options]
#   e.g. bench/importance/run.sh build-q -- --evaluations 50,100,200 --seeds 10
#        bench/importance/run.sh build-q --real -- --evaluations 50,100 --seeds 5
#
# Uses bench/.venv-optuna (bench/common.sh: optuna, scikit-learn from PyPI), builds
# `hpo` in BUILD_DIR (default build-q, Release, CPU only), writes bench/importance/out/<UTC time>/
# (raw.json, table.md) and prints the markdown table with the machine and exact command.
set -euo pipefail
cd "$(dirname "$0")/../.."
# BUILD_DIR is optional: an option in its place is not one (it built in a directory named
# "--real", and ran the synthetic benchmark where --real was asked for).
BUILD=build-q
if [[ $# -gt 0 && $1 != -* ]]; then BUILD=$1; shift; fi
SCRIPT=bench/importance/importance.py
if [[ ${1:-} == "--real" ]]; then
  SCRIPT=bench/importance/real_task.py
  shift
fi
[[ ${1:-} == "--" ]] && shift
source bench/common.sh
VENV=$BENCH_VENV
bench_venv 'import optuna, sklearn, scipy' 'optuna>=3.6' scikit-learn scipy
HPO=$(bench_hpo "$BUILD")
OUT=bench/importance/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
{
  bench_machine
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); command: \`bench/importance/run.sh $BUILD $([[ $SCRIPT == *real_task.py ]] && echo '--real ')-- $*\` (hpo commit $(git rev-parse --short HEAD))"
} > "$OUT/header.md"
"$VENV/bin/python" "$SCRIPT" --hpo "$HPO" --out "$OUT" "$@" | tee "$OUT/log.txt"
echo
cat "$OUT/header.md"
echo "Results in $OUT"
