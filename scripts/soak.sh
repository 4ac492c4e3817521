#!/usr/bin/env bash
# Long soak: a real coordinator, workers and trainers on loopback for N minutes, with tuning jobs
# submitted all along and faults injected on a seeded schedule (coordinator and worker kills,
# hand-backs, spot notices, stops, stalls); checks that no job or training job is lost, doubled or
# left unfinished, that the API answers and that memory and the database stay bounded. See the
# header of tests/soak/soak.py for every check and how to read its output.
#
# Usage: scripts/soak.sh [--minutes N] [--seed S] [--workers W] [--hpo PATH] [soak.py options]
#   --minutes N   how long, drain included (default 20)
#   --seed S      replay a schedule (default: from the time, printed at the start and the end)
#   --workers W   hpo worker processes (default 6)
#   --hpo PATH    the hpo binary (default $HPO_BINARY, else build/cli/hpo)
#   other options go to tests/soak/soak.py (--help lists them: --lease-s, --fault-mean-s, --dir, ...)
#
# Exit 0: no violation; 1: violations (printed with evidence, kept in RUN_DIR/violations.log);
# 2: usage; 3: the cluster did not start. Logs: the run directory printed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for arg in "$@"; do
  case "$arg" in
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
               echo; exec /usr/bin/python3 tests/soak/soak.py --help ;;
  esac
done
exec /usr/bin/python3 tests/soak/soak.py "$@"
