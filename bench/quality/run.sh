#!/usr/bin/env bash
# Optimisation quality side by side: hpo Bayesian (batch 1 and 8), Optuna TPE, Optuna GP, Random and
# Syne Tune's BOTorch (its GP searcher) on Branin, Hartmann6, Ackley-10 and a scikit-learn SVR
# tuning task (bench/quality/quality.py; other Syne Tune searchers with --methods syne-cqr,...).
#
#   bench/quality/run.sh [BUILD_DIR] [-- quality.py options]
#   e.g. bench/quality/run.sh build-q -- --evals 100 --seeds 20 --gp-seeds 5 --syne-seeds 5 --real-seeds 10
#
# Sets up bench/.venv-optuna (optuna, scikit-learn, matplotlib and, for Optuna's GPSampler,
# torch and greenlet, all from PyPI; gitignored) on first use, builds `hpo` in BUILD_DIR (default build-q,
# Release, CPU only), writes bench/quality/out/<UTC time>/ (raw.json, table.md, regret_*.png),
# and prints the markdown table with the machine, load and exact command.
set -euo pipefail
cd "$(dirname "$0")/../.."
# BUILD_DIR is optional: an option in its place is not one (it built in a directory named
# "--real", and ran the synthetic benchmark where --real was asked for).
BUILD=build-q
if [[ $# -gt 0 && $1 != -* ]]; then BUILD=$1; shift; fi
[[ ${1:-} == "--" ]] && shift
source bench/common.sh
VENV=$BENCH_VENV
bench_venv 'import optuna, sklearn, scipy, matplotlib, greenlet' 'optuna>=3.6' scikit-learn scipy matplotlib greenlet
if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  # CPU wheels where the PyTorch index is reachable, else PyPI's (which pulls the CUDA libraries);
  # when neither works the driver records that Optuna's GP could not run, and why.
  "$VENV/bin/pip" install -q torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null ||
    "$VENV/bin/pip" install -q torch || echo "torch could not be installed: Optuna GP will not run" >&2
fi
# Syne Tune's searchers (the syne- methods, syne-botorch among the defaults) run in their own venv,
# bench/.venv-syne (syne-tune, botorch for its GP searcher); when it cannot be set up, the
# driver records why and runs the rest.
if [[ " $* " != *" --methods "* || " $* " == *syne-* ]]; then
  bench_syne_venv || true
fi
HPO=$(bench_hpo "$BUILD")
OUT=bench/quality/out/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
# A private copy, so rebuilding during the run cannot change the binary under it.
cp "$HPO" "$OUT/hpo"
HPO=$OUT/hpo
{
  bench_machine
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Command: \`bench/quality/run.sh $BUILD -- $*\` (hpo: built in $BUILD, commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- coordinator kernels cli || echo ' + uncommitted changes'))"
} > "$OUT/header.md"
"$VENV/bin/python" bench/quality/quality.py --hpo "$HPO" --out "$OUT" "$@" | tee "$OUT/log.txt"
echo "- Load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/header.md"
echo
cat "$OUT/header.md"
echo "Results in $OUT"
