#!/usr/bin/env bash
# Dispatch-overhead benchmark, hpo vs Ray Tune and Syne Tune, side by side (the runtime issue's
# benchmark).
#
# Shape: TRIALS trials of a program that sleeps SLEEP_MS, CONCURRENCY slots at once. Ideal wall
# time = TRIALS x SLEEP_MS / CONCURRENCY (2000 x 0.2 s / 16 = 25 s). Reports wall time, overhead %
# against the ideal, and p50/p99 of the gap from one trial's exit to the next trial's start on
# the same slot (see analyze.py for how slots and gaps are reconstructed).
#
#   bench/dispatch/run.sh                 # build, run hpo (4x4 and 16x1), Ray Tune (fresh and reused
#                                         # actors) and Syne Tune (a Python trial, and hpo's own trainer
#                                         # program, each at Syne Tune's default sleep_time and at 0.05 s),
#                                         # print the table, append it to bench/RESULTS.md
#
# Takes about 30 minutes on a 2-core machine, most of it the peers (each variant stops at its
# time budget: with a fresh actor per trial Ray finishes only a few hundred trials in 300 s there).
#
# Knobs (environment):
#   TRIALS=2000 CONCURRENCY=16 SLEEP_MS=200
#   HPO_LAYOUTS="4x4 16x1"       hpo run --workers W --slots S for each WxS (W*S = CONCURRENCY);
#                                empty: skip hpo
#   HPO_RUN_ARGS=""             more `hpo run` options, e.g. "--max-parallel-training-jobs 400" for
#                                CONCURRENCY above SageMaker's quota of 100
#   HPO_STATE_ROOT=$OUT_DIR      where hpo's --state-dir goes (its SQLite db and the trial
#                                directories; the packed artifacts go beside it), e.g. /dev/shm/x
#                                to take fsync cost out of the run
#
# Diagnostics when hpo misses its goals: fsync_split.sh (disk vs tmpfs for the job db and the
# worker dirs), sync_trace.sh (fsync/fdatasync calls per trial, by file), thread_sample.py (CPU,
# CPU-wait and syscall share of hpo's coordinator and worker threads during a run), ab.sh (two or
# more hpo builds interleaved on a smaller shape, for a shared machine whose load moves),
# spawn_bench.cc (the worker's process launch and exit alone, without a coordinator).
#   RAY=1                        0: skip Ray Tune
#   RAY_TRIALS=$TRIALS           Ray's shape, when it has to be smaller
#   RAY_VARIANTS="fresh reuse"   (empty: skip Ray) fresh (Ray defaults: reuse_actors=False), reuse (reuse_actors=True),
#                                subprocess (function trainable that runs sleep_trainer)
#   RAY_TIME_BUDGET_S=300        Tune's time_budget_s: a Ray run stops after this long (0: none);
#                                the row then counts the trials that finished, and says so
#   SYNE=1                       0: skip Syne Tune (bench/.venv-syne, made by setup_syne.sh)
#   SYNE_TRIALS=$TRIALS          Syne Tune's shape, when it has to be smaller
#   SYNE_VARIANTS="python:default python:0.05 process:default process:0.05"   KIND:SLEEP_TIME each:
#                                KIND python (syne_trial.py, Syne Tune's Reporter) or process
#                                (syne_trial.sh running sleep_trainer, hpo's program); SLEEP_TIME
#                                Tuner's sleep_time while all workers are busy (default: Syne
#                                Tune's own, 5 s); empty: skip Syne Tune
#   SYNE_TIME_BUDGET_S=300       a Syne Tune run stops after this long (0: none), as Ray's
#   RECORD=1                     0: do not append to bench/RESULTS.md
#   OUT_DIR=build-bench/bench-dispatch/<time>   where state dirs and JSON summaries go
#   JOBS=2                       build parallelism
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
# The exact command, with the knobs that were set in the environment.
command_line="$(for v in TRIALS CONCURRENCY SLEEP_MS HPO_LAYOUTS HPO_RUN_ARGS HPO_STATE_ROOT RAY RAY_TRIALS RAY_VARIANTS RAY_TIME_BUDGET_S SYNE SYNE_TRIALS SYNE_VARIANTS SYNE_TIME_BUDGET_S; do
  if [[ -v $v ]]; then printf '%s=%q ' "$v" "${!v}"; fi; done)bench/dispatch/run.sh${*:+ $*}"

TRIALS="${TRIALS:-2000}"
CONCURRENCY="${CONCURRENCY:-16}"
SLEEP_MS="${SLEEP_MS:-200}"
HPO_LAYOUTS="${HPO_LAYOUTS-4x4 16x1}"
RAY="${RAY:-1}"
RAY_TRIALS="${RAY_TRIALS:-$TRIALS}"
RAY_VARIANTS="${RAY_VARIANTS-fresh reuse}"
RAY_TIME_BUDGET_S="${RAY_TIME_BUDGET_S:-300}"
SYNE="${SYNE:-1}"
SYNE_TRIALS="${SYNE_TRIALS:-$TRIALS}"
SYNE_VARIANTS="${SYNE_VARIANTS-python:default python:0.05 process:default process:0.05}"
SYNE_TIME_BUDGET_S="${SYNE_TIME_BUDGET_S:-300}"
RECORD="${RECORD:-1}"
JOBS="${JOBS:-2}"
BUILD="${BUILD:-build-bench}"
stamp="$(date +%Y%m%d-%H%M%S)"
OUT_DIR="${OUT_DIR:-$BUILD/bench-dispatch/$stamp}"
RESULTS="${RESULTS:-bench/RESULTS.md}"
HPO_STATE_ROOT="${HPO_STATE_ROOT:-}"
read -r -a hpo_run_args <<<"${HPO_RUN_ARGS:-}"

log() { echo "run.sh: $*" >&2; }
now() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# A peer's run into DIR/summary.json for the table: analyze.py SYSTEM over its DIR/trials.json,
# with the load average before (given) and after (now) it ran; the summary joins `summaries`.
summarize_peer() {
  local system="$1" dir="$2" label="$3" load_before="$4"
  python3 bench/dispatch/analyze.py "$system" "$dir/trials.json" --slots "$CONCURRENCY" --duration-ms "$SLEEP_MS" \
    --label "$label" >"$dir/summary.json"
  python3 - "$dir/summary.json" "$load_before" "$(loadavg)" <<'EOF'
import json, sys
p, lb, la = sys.argv[1:]
d = json.load(open(p))
d["loadavg_before"], d["loadavg_after"] = lb, la
json.dump(d, open(p, "w"), indent=2)
EOF
  summaries+=("$dir/summary.json")
}
# Median and p90 ms of 100 small write+fdatasync calls in a directory: what one SQLite WAL commit
# costs there right now (the coordinator commits several times per trial; see analyze.py).
fsync_probe() {
  python3 - "$1" <<'EOF'
import os, sys, time
p = os.path.join(sys.argv[1], ".fsync-probe")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
ts = []
for _ in range(100):
    t = time.perf_counter()
    os.write(fd, b"x" * 4096)
    os.fdatasync(fd)
    ts.append((time.perf_counter() - t) * 1000)
os.close(fd)
os.unlink(p)
ts.sort()
print(f"{ts[49]:.2f}/{ts[89]:.2f}")
EOF
}

# What was measured: the commit, and a digest of uncommitted changes to the runtime's sources.
tree_state="commit $(git rev-parse --short HEAD)"
if ! git diff --quiet HEAD -- common proto coordinator worker cli 2>/dev/null; then
  tree_state+=" + uncommitted changes to $(git diff --name-only HEAD -- common proto coordinator worker cli | tr '\n' ' ' | sed 's/ $//') (diff sha256 $(git diff HEAD -- common proto coordinator worker cli | sha256sum | cut -c1-12))"
fi

# ---- build -----------------------------------------------------------------------------------
if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
  log "configuring $BUILD (Release)"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHPO_BUILD_TESTS=OFF -DHPO_CUDA=OFF >/dev/null
fi
log "building hpo in $BUILD (-j$JOBS)"
cmake --build "$BUILD" --target hpo -j"$JOBS" >/dev/null
mkdir -p "$OUT_DIR" "$BUILD/bench"
trainer="$root/$BUILD/bench/sleep_trainer"
cc -O2 -Wall -Wextra -o "$trainer" bench/dispatch/sleep_trainer.c
hpo="$root/$BUILD/cli/hpo"

summaries=()
notes=()

# ---- hpo ------------------------------------------------------------------------------------
for layout in $HPO_LAYOUTS; do
  w="${layout%x*}"
  s="${layout#*x}"
  if (( w * s != CONCURRENCY )); then
    log "skipping layout $layout: $w x $s != $CONCURRENCY"
    continue
  fi
  dir="$OUT_DIR/hpo-$layout"
  state="${HPO_STATE_ROOT:-$OUT_DIR}/hpo-$layout/state"
  rm -rf "$dir" "$state"
  mkdir -p "$dir"
  label="${w}x${s} (workers x slots)${HPO_STATE_ROOT:+, state in $HPO_STATE_ROOT}"
  python3 bench/dispatch/gen_spec.py --trials "$TRIALS" --parallel "$CONCURRENCY" --sleep-ms "$SLEEP_MS" \
    --trainer "$trainer" --name "dispatch-$layout" --output-uri "file://$(dirname "$state")/output" -o "$dir/spec.json"
  log "hpo run: $TRIALS trials, --workers $w --slots $s (load average $(loadavg))"
  load_before="$(loadavg)"
  mkdir -p "$(dirname "$state")"
  fsync_ms="$(fsync_probe "$(dirname "$state")")"
  t0="$(now)"
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time.txt" \
    "$hpo" run "$dir/spec.json" --workers "$w" --slots "$s" --state-dir "$state" -o json "${hpo_run_args[@]}" \
    >"$dir/describe.json" 2>"$dir/progress.log" || { log "hpo run failed; see $dir/progress.log"; exit 1; }
  t1="$(now)"
  wall="$(python3 -c "print(round($t1 - $t0, 3))")"
  read -r _e cpu_user cpu_sys maxrss_kb <"$dir/time.txt"
  python3 bench/dispatch/analyze.py hpo "$state/hpo.db" --slots "$CONCURRENCY" --slots-per-worker "$s" \
    --duration-ms "$SLEEP_MS" --label "$label" --process-wall-s "$wall" >"$dir/summary.json"
  python3 - "$dir/summary.json" "$cpu_user" "$cpu_sys" "$maxrss_kb" "$load_before" "$(loadavg)" "$fsync_ms" <<'EOF'
import json, sys
p, u, s, rss, lb, la, fs = sys.argv[1:]
d = json.load(open(p))
d["fsync_probe_ms_p50_p90"] = fs
d["cpu_s"] = {"user": float(u), "sys": float(s), "per_trial_ms": round((float(u) + float(s)) / d["trials"] * 1000, 2)}
d["max_rss_mb"] = round(int(rss) / 1024, 1)
d["loadavg_before"], d["loadavg_after"] = lb, la
json.dump(d, open(p, "w"), indent=2)
EOF
  summaries+=("$dir/summary.json")
done
# A layout list that matched no CONCURRENCY ran no hpo at all: an error, not an empty table (one
# was appended to RESULTS.md with exit 0).
if (( ${#summaries[@]} == 0 )); then
  log "no HPO_LAYOUTS entry WxS has W*S = CONCURRENCY ($CONCURRENCY): give e.g. HPO_LAYOUTS=\"${CONCURRENCY}x1\" (layouts: $HPO_LAYOUTS)"
  exit 2
fi

# ---- Ray Tune -------------------------------------------------------------------------------
if [[ "$RAY" == "1" && -n "$RAY_VARIANTS" ]]; then
  bench/dispatch/setup_ray.sh >&2
  py="$root/bench/.venv-ray/bin/python"
  for variant in $RAY_VARIANTS; do
    dir="$OUT_DIR/ray-$variant"
    rm -rf "$dir"
    mkdir -p "$dir"
    args=(--trials "$RAY_TRIALS" --concurrency "$CONCURRENCY" --sleep-ms "$SLEEP_MS" --storage "$root/$dir/storage"
          --time-budget-s "$RAY_TIME_BUDGET_S" --out "$dir/trials.json")
    case "$variant" in
      fresh) label="function, reuse_actors=False (default)" ;;
      reuse) label="function, reuse_actors=True"; args+=(--reuse-actors) ;;
      subprocess) label="subprocess per trial, reuse_actors=False"; args+=(--kind subprocess --trainer "$trainer") ;;
      *) log "unknown Ray variant $variant"; exit 2 ;;
    esac
    log "Ray Tune ($variant): $RAY_TRIALS trials, $CONCURRENCY concurrent, budget ${RAY_TIME_BUDGET_S}s (load average $(loadavg))"
    load_before="$(loadavg)"
    "$py" bench/dispatch/ray_bench.py "${args[@]}" >"$dir/ray.log" 2>&1 || { log "ray_bench failed; see $dir/ray.log"; exit 1; }
    summarize_peer ray "$dir" "$label" "$load_before"
  done
fi

# ---- Syne Tune ------------------------------------------------------------------------------
if [[ "$SYNE" == "1" && -n "$SYNE_VARIANTS" ]]; then
  bench/dispatch/setup_syne.sh >&2
  py="$root/bench/.venv-syne/bin/python"
  for variant in $SYNE_VARIANTS; do
    kind="${variant%%:*}"
    sleep_time="${variant#*:}"
    [[ "$variant" == *:* ]] || sleep_time=default
    dir="$OUT_DIR/syne-$kind-$sleep_time"
    rm -rf "$dir"
    mkdir -p "$dir"
    args=(--trials "$SYNE_TRIALS" --concurrency "$CONCURRENCY" --sleep-ms "$SLEEP_MS" --kind "$kind"
          --trainer "$trainer" --folder "$root/$dir/experiment" --time-budget-s "$SYNE_TIME_BUDGET_S"
          --out "$root/$dir/trials.json")
    case "$kind" in
      python) label="Python trial (Reporter)" ;;
      process) label="sleep_trainer process" ;;
      *) log "unknown Syne Tune trial kind $kind (python or process)"; exit 2 ;;
    esac
    if [[ "$sleep_time" == "default" ]]; then
      label+=", sleep_time default (5 s)"
    else
      label+=", sleep_time=$sleep_time"
      args+=(--sleep-time "$sleep_time")
    fi
    log "Syne Tune ($variant): $SYNE_TRIALS trials, $CONCURRENCY workers, budget ${SYNE_TIME_BUDGET_S}s (load average $(loadavg))"
    load_before="$(loadavg)"
    (cd "$dir" && "$py" "$root/bench/dispatch/syne_bench.py" "${args[@]}") >"$dir/syne.log" 2>&1 ||
      { log "syne_bench failed; see $dir/syne.log"; exit 1; }
    summarize_peer syne "$dir" "$label" "$load_before"
  done
fi

# ---- report ---------------------------------------------------------------------------------
table="$(python3 bench/dispatch/analyze.py table "${summaries[@]}")"
details="$(python3 bench/dispatch/analyze.py details "${summaries[@]}")"
echo
echo "$table"
echo "$details"
echo
echo "summaries: ${summaries[*]}"

if [[ "$RECORD" == "1" ]]; then
  if [[ ! -f "$RESULTS" ]]; then
    cat >"$RESULTS" <<'EOF'
# Benchmark results

Results of the benchmarks under bench/, newest section last. Each section names the machine, the
date and the exact command; numbers from a shared or loaded machine say so.
EOF
  fi
  mem_gb="$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  model="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  {
    echo
    # The peers that ran (RAY=0, SYNE=0 leave them out of the title and the notes).
    peers=""
    [[ "$RAY" == "1" && -n "$RAY_VARIANTS" ]] && peers="Ray Tune"
    [[ "$SYNE" == "1" && -n "$SYNE_VARIANTS" ]] && peers+="${peers:+ and }Syne Tune"
    echo "## Dispatch overhead: hpo${peers:+ vs $peers} ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    echo "- Machine: $(nproc) cores ($model), $mem_gb memory, $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -sr); shared with other engineers compiling in parallel: load average (1/5/15 min) before and after each run is given per row"
    echo "- Command: \`$command_line\`; source: $tree_state"
    echo "- Shape: $TRIALS trials${peers:+ (}$([[ "$RAY" == "1" && -n "$RAY_VARIANTS" ]] && echo "Ray: $RAY_TRIALS")$([[ "$RAY" == "1" && -n "$RAY_VARIANTS" && "$SYNE" == "1" && -n "$SYNE_VARIANTS" ]] && echo ", ")$([[ "$SYNE" == "1" && -n "$SYNE_VARIANTS" ]] && echo "Syne Tune: $SYNE_TRIALS")${peers:+)} of a ${SLEEP_MS} ms sleep, $CONCURRENCY slots; ideal = trials x ${SLEEP_MS} ms / $CONCURRENCY"
    echo "- hpo: \`hpo run\` (Release) with in-process workers; each trial is a real process (bench/dispatch/sleep_trainer.c) with the SageMaker trial layout; wall = job submit to Completed (jobs table)"
    if [[ "$RAY" == "1" && -n "$RAY_VARIANTS" ]]; then
      echo "- Ray Tune: ray.init(num_cpus=$CONCURRENCY) = $CONCURRENCY *logical* CPUs on $(nproc) cores, 1 CPU per trial, max_concurrent_trials=$CONCURRENCY, Random (tune.uniform); wall = Tuner.fit() (ray.init excluded)"
    fi
    if [[ "$SYNE" == "1" && -n "$SYNE_VARIANTS" ]]; then
      echo "- Syne Tune: LocalBackend (one process per trial on this machine), Tuner(n_workers=$CONCURRENCY), RandomSearch (uniform); trial \"python\" is bench/dispatch/syne_trial.py reporting with syne_tune.Reporter (its interpreter start and imports fall in the gap), \"process\" is bench/dispatch/syne_trial.sh under binary=/bin/sh running sleep_trainer, hpo's own program; sleep_time is how long Tuner's loop sleeps while all workers are busy; wall = Tuner.run()"
    fi
    echo "- Gap = user-code exit (the trial's last timestamp) to the next trial's first timestamp on the same slot, slots reconstructed greedily (bench/dispatch/analyze.py)"
    echo
    echo "$table"
    echo "$details"
  } >>"$RESULTS"
  log "appended to $RESULTS"
fi
