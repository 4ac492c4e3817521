#!/usr/bin/env bash
# Adaptive tuning benchmark (issue 8): does early stopping / Hyperband reach the same best
# objective as running every trial to the end, with fewer epochs? hpo side by side with Optuna's
# pruners and Ray Tune's ASHA on the same learning-curve task (examples/trainers/curve.cc, crossing
# curves; bench/adaptive/curve.py is the same function for the peers).
#
#   bench/adaptive/run.sh            # build, run every system for SEEDS, print the tables
#
# Per seed:
#   hpo     the specs beside this file (random-off, random-auto, hyperband, bayesian-auto), each a
#           copy with randomSeed=seed, run by `hpo run --workers 2`; random-off runs first and the
#           60 configurations its Random strategy proposed are written to configs.json
#   optuna  peers.py optuna (bench/.venv-optuna): random-none, random-median, random-hyperband on
#           exactly those configurations, tpe-hyperband with its own sampler
#   ray     peers.py ray (bench/.venv-ray): ASHA on those configurations; skipped, with the reason,
#           when ray is not importable there (bench/dispatch/setup_ray.sh creates that venv)
#   syne    peers.py syne (bench/.venv-syne): Syne Tune's ASHA on those configurations and its BOHB;
#           skipped, with the reason, without that venv (bench/dispatch/setup_syne.sh creates it)
# Then summarize.py prints the mean over seeds and every run, with the machine, load and command.
# About 5 minutes on a 2-core machine with the defaults (3 seeds: 308 s measured), plus the build,
# plus about 2 minutes a seed for Syne Tune (each trial a Python process that imports it).
#
# Knobs (environment):
#   SEEDS="1 2 3" TRIALS=60 EPOCHS=27 SLEEP_MS=20 TOLERANCE=0.01
#   HPO_CONFIGS="random-off random-auto hyperband bayesian-auto"   (random-off is the baseline)
#   OPTUNA_CONFIGS="random-none,random-median,random-hyperband,tpe-hyperband"   (empty: skip Optuna)
#   RAY=1                  0: skip Ray Tune
#   SYNE_CONFIGS="random-asha,bohb"   (empty: skip Syne Tune)
#   OPTUNA_PY=bench/.venv-optuna/bin/python  RAY_PY=bench/.venv-ray/bin/python
#   SYNE_PY=bench/.venv-syne/bin/python   the peers' interpreters
#   HPO=path               an hpo binary to use instead of building one
#   HPO_SRC=tree           build hpo from the working tree (BUILD/tree); `head`: from a clean export
#                          of git HEAD (BUILD/src, BUILD/head), leaving uncommitted changes out
#   BUILD=build-adaptive   JOBS=1 (build parallelism)
#   OUT_DIR=BUILD/runs/<UTC time>   specs, state dirs, rows.jsonl, table.md
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
source bench/common.sh  # bench_machine
command_line="$(for v in SEEDS TRIALS EPOCHS SLEEP_MS TOLERANCE HPO_CONFIGS OPTUNA_CONFIGS RAY SYNE_CONFIGS OPTUNA_PY RAY_PY SYNE_PY HPO HPO_SRC BUILD JOBS; do
  if [[ -v $v ]]; then printf '%s=%q ' "$v" "${!v}"; fi; done)bench/adaptive/run.sh${*:+ $*}"

SEEDS="${SEEDS:-1 2 3}"
TRIALS="${TRIALS:-60}"
EPOCHS="${EPOCHS:-27}"
SLEEP_MS="${SLEEP_MS:-20}"
TOLERANCE="${TOLERANCE:-0.01}"
HPO_CONFIGS="${HPO_CONFIGS-random-off random-auto hyperband bayesian-auto}"
OPTUNA_CONFIGS="${OPTUNA_CONFIGS-random-none,random-median,random-hyperband,tpe-hyperband}"
RAY="${RAY:-1}"
SYNE_CONFIGS="${SYNE_CONFIGS-random-asha,bohb}"
HPO_SRC="${HPO_SRC:-tree}"
BUILD="${BUILD:-build-adaptive}"
JOBS="${JOBS:-1}"
OUT_DIR="${OUT_DIR:-$BUILD/runs/$(date -u +%Y%m%dT%H%M%SZ)}"
OPTUNA_PY="${OPTUNA_PY:-bench/.venv-optuna/bin/python}"
RAY_PY="${RAY_PY:-bench/.venv-ray/bin/python}"
SYNE_PY="${SYNE_PY:-bench/.venv-syne/bin/python}"

log() { echo "run.sh: $*" >&2; }
now() { date +%s.%N; }
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

# ---- build -----------------------------------------------------------------------------------
# The trainer is one dependency-free file (also the `curve` target of examples/CMakeLists.txt).
${CXX:-c++} -O2 -std=c++20 -o "$OUT_DIR/curve" examples/trainers/curve.cc
# The C++ trainer and curve.py must print the same curve, bit for bit.
for args in "0.01 0.9 4" "0.00031 0.12 1" "0.73 0.5 8"; do
  set -- $args
  if ! diff -q <(SM_HP_LR=$1 SM_HP_MOMENTUM=$2 SM_HP_LAYERS=$3 SM_HP_EPOCHS=$EPOCHS SM_MODEL_DIR=/nonexistent \
                 "$OUT_DIR/curve" train 2>/dev/null) <(python3 bench/adaptive/curve.py "$1" "$2" "$3" "$EPOCHS") >/dev/null; then
    log "curve.cc and curve.py disagree for lr=$1 momentum=$2 layers=$3"; exit 1
  fi
done
hpo_source="given as HPO=${HPO:-}"
if [[ -z ${HPO:-} ]]; then
  if [[ $HPO_SRC == head ]]; then
    # A clean export of HEAD; files whose content did not change keep their mtime (no rebuild).
    tmp="$(mktemp -d)"
    git archive --format=tar HEAD | tar -x -C "$tmp"
    mkdir -p "$BUILD/src"
    (cd "$tmp" && find . -type f) | while read -r f; do
      if ! cmp -s "$tmp/$f" "$BUILD/src/$f"; then mkdir -p "$(dirname "$BUILD/src/$f")"; cp "$tmp/$f" "$BUILD/src/$f"; fi
    done
    rm -rf "$tmp"
    src="$BUILD/src" obj="$BUILD/head"
    hpo_source="built from a clean export of HEAD ($(git rev-parse --short HEAD))"
  else
    src=. obj="$BUILD/tree"
    hpo_source="built from the working tree at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- common proto kernels coordinator worker cli || echo ' + uncommitted changes in its sources')"
  fi
  if [[ ! -f $obj/build.ninja ]]; then
    cmake -S "$src" -B "$obj" -G Ninja -DHPO_CUDA=OFF -DHPO_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  log "building hpo in $obj (-j$JOBS)"
  cmake --build "$obj" -j"$JOBS" --target hpo >/dev/null
  HPO="$obj/cli/hpo"
fi
# A private copy, so a rebuild during the run cannot change the binary under it.
cp "$HPO" "$OUT_DIR/hpo"
HPO="$OUT_DIR/hpo"

# ---- run ---------------------------------------------------------------------------------------
{
  bench_machine
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Command: \`$command_line\`; commit $(git log --oneline | head -1)"
  echo "- hpo: $hpo_source"
  echo "- Task: $TRIALS trials, 2 at a time, $EPOCHS epochs of $SLEEP_MS ms, seeds: $SEEDS"
} > "$OUT_DIR/header.md"
rows="$OUT_DIR/rows.jsonl"
: > "$rows"
t_all=$(now)
for seed in $SEEDS; do
  dir="$OUT_DIR/s$seed"
  mkdir -p "$dir"
  for cfg in $HPO_CONFIGS; do
    spec="$dir/$cfg.yaml"
    sed -e "s|^  name: adaptive-.*|  name: adaptive-$cfg-s$seed|" \
        -e "s|^  hyperParameterTuningJobName: .*|  hyperParameterTuningJobName: adaptive-$cfg-s$seed|" \
        -e "s|^    randomSeed: .*|    randomSeed: $seed|" \
        -e "s|^      maxNumberOfTrainingJobs: .*|      maxNumberOfTrainingJobs: $TRIALS|" \
        -e "s|^      epochs: \"[0-9]*\"|      epochs: \"$EPOCHS\"|" \
        -e "s|^      sleep_ms: \"[0-9]*\"|      sleep_ms: \"$SLEEP_MS\"|" \
        -e "s|trainingImage: file://.*|trainingImage: file://$OUT_DIR/curve|" \
        "bench/adaptive/$cfg.yaml" > "$spec"
    log "seed $seed: hpo $cfg"
    rm -rf "${dir:?}/$cfg"
    t0=$(now)
    rc=0
    "$HPO" run "$spec" --workers 2 --state-dir "$dir/$cfg" -o json > "$dir/$cfg.json" 2> "$dir/$cfg.log" || rc=$?
    wall=$(echo "$(now) - $t0" | bc)
    [[ $rc -eq 0 ]] || log "hpo run exited $rc for $cfg (see $dir/$cfg.log)"
    python3 bench/adaptive/summarize.py hpo "$dir/$cfg/hpo.db" "$dir/$cfg.json" --config "$cfg" --seed "$seed" \
      --wall "$wall" >> "$rows"
    if [[ $cfg == random-off ]]; then
      python3 bench/adaptive/summarize.py configs "$dir/$cfg/hpo.db" "$dir/configs.json"
    fi
  done
  configs_arg=()
  [[ -f $dir/configs.json ]] && configs_arg=(--configs "$dir/configs.json")
  if [[ -n $OPTUNA_CONFIGS ]]; then
    if [[ -x $OPTUNA_PY ]] && "$OPTUNA_PY" -c 'import optuna' 2>/dev/null; then
      log "seed $seed: optuna $OPTUNA_CONFIGS"
      "$OPTUNA_PY" bench/adaptive/peers.py optuna --runs "$OPTUNA_CONFIGS" --seeds "$seed" --trials "$TRIALS" \
        --epochs "$EPOCHS" --sleep-ms "$SLEEP_MS" "${configs_arg[@]}" --out "$rows" >> "$dir/optuna.log" 2>&1
    else
      echo '{"system": "optuna", "config": "all", "seed": '"$seed"', "skipped": "optuna is not importable from '"$OPTUNA_PY"' (bench/quality/run.sh creates that venv)"}' >> "$rows"
    fi
  fi
  if [[ $RAY == 1 ]]; then
    if [[ -x $RAY_PY ]]; then
      log "seed $seed: ray ASHA"
      "$RAY_PY" bench/adaptive/peers.py ray --seeds "$seed" --trials "$TRIALS" --epochs "$EPOCHS" --sleep-ms "$SLEEP_MS" \
        "${configs_arg[@]}" --out "$rows" >> "$dir/ray.log" 2>&1 || log "ray failed (see $dir/ray.log)"
    else
      echo '{"system": "ray", "config": "random-asha", "seed": '"$seed"', "skipped": "no '"$RAY_PY"' (bench/dispatch/setup_ray.sh creates it)"}' >> "$rows"
    fi
  fi
  if [[ -n $SYNE_CONFIGS ]]; then
    if [[ -x $SYNE_PY ]]; then
      log "seed $seed: syne $SYNE_CONFIGS"
      "$SYNE_PY" bench/adaptive/peers.py syne --runs "$SYNE_CONFIGS" --seeds "$seed" --trials "$TRIALS" \
        --epochs "$EPOCHS" --sleep-ms "$SLEEP_MS" "${configs_arg[@]}" --out "$rows" >> "$dir/syne.log" 2>&1 ||
        log "syne failed (see $dir/syne.log)"
    else
      echo '{"system": "syne", "config": "all", "seed": '"$seed"', "skipped": "no '"$SYNE_PY"' (bench/dispatch/setup_syne.sh creates it)"}' >> "$rows"
    fi
  fi
done
echo "- Load average after: $(cut -d' ' -f1-3 /proc/loadavg); whole run $(printf '%.0f' "$(echo "$(now) - $t_all" | bc)") s" >> "$OUT_DIR/header.md"
python3 bench/adaptive/summarize.py table "$rows" --tolerance "$TOLERANCE" --epochs "$EPOCHS" > "$OUT_DIR/table.md"
echo
cat "$OUT_DIR/header.md"
echo
cat "$OUT_DIR/table.md"
echo
echo "Results in $OUT_DIR"
