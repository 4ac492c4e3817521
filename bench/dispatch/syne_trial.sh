#!/bin/sh
# A Syne Tune trial of the dispatch-overhead benchmark that runs the same program hpo runs,
# bench/dispatch/sleep_trainer (a real C process per trial), under LocalBackend(binary="/bin/sh"):
#   sh syne_trial.sh --x X --sleep_ms MS --st_checkpoint_dir DIR
# The trainer's path comes from SYNE_BENCH_TRAINER. Its bench_start_ms / bench_end_ms lines (the
# timestamps hpo's side of the benchmark reads from its stored metrics) become t_start / t_end,
# reported as Syne Tune's Reporter would: one `[tune-metric]: {json}` line on stdout.
set -eu
x=0
sleep_ms=200
while [ $# -gt 1 ]; do
  case "$1" in
    --x) x="$2" ;;
    --sleep_ms) sleep_ms="$2" ;;
  esac
  shift 2
done
out="$(SM_HP_X="$x" SM_HP_SLEEP_MS="$sleep_ms" "$SYNE_BENCH_TRAINER" train)"
val() { printf '%s\n' "$out" | sed -n "s/^$1=//p"; }
start="$(val bench_start_ms)"
end="$(val bench_end_ms)"
loss="$(val loss)"
now="$(date +%s.%N)"
printf '[tune-metric]: {"loss": %s, "t_start": %s.%03d, "t_end": %s.%03d, "pid": %d, "st_worker_timestamp": %s, "st_worker_iter": 0}\n' \
  "$loss" "$((start / 1000))" "$((start % 1000))" "$((end / 1000))" "$((end % 1000))" "$$" "$now"
