#!/usr/bin/env bash
# The bench scripts' arguments (bench/quality/run.sh, bench/importance/run.sh): BUILD_DIR is
# optional, and an option in its place is not taken for it (a user pass saw a build in a
# directory named "--real", and the synthetic benchmark run where --real was asked for). The
# scripts run in a copy of the tree whose bench/common.sh and python are stubs that record what
# they were given.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/tree/bench/quality" "$T/tree/bench/importance" "$T/venv/bin"
cp "$REPO/bench/quality/run.sh" "$T/tree/bench/quality/"
cp "$REPO/bench/importance/run.sh" "$T/tree/bench/importance/"
cat > "$T/venv/bin/python" <<'PY'
#!/bin/sh
echo "python $*" >> "$RECORD"
PY
chmod +x "$T/venv/bin/python"
cat > "$T/tree/bench/common.sh" <<SH
BENCH_VENV=$T/venv
bench_venv() { :; }
bench_hpo() { echo "build \$1" >> "\$RECORD"; echo /bin/true; }
bench_machine() { echo "- Machine: test"; }
SH
(cd "$T/tree" && git init -q && git -c user.email=t@t -c user.name=t commit -q --allow-empty -m t)
fail=0
check() {  # check NAME EXPECTED-SUBSTRING: the record holds it
  if ! grep -qF -- "$2" "$RECORD"; then
    echo "FAIL $1: expected '$2' in:"; cat "$RECORD"; fail=1
  fi
}
run() { RECORD=$T/record.$1; export RECORD; : > "$RECORD"; shift; (cd "$T/tree" && bash "$@" > /dev/null 2>&1) || true; }
run a bench/importance/run.sh --real -- --seeds 5
RECORD=$T/record.a; check "importance --real" "build build-q"; check "importance --real" "real_task.py"
check "importance --real" "--seeds 5"
run b bench/importance/run.sh mybuild --real -- --seeds 5
RECORD=$T/record.b; check "importance BUILD --real" "build mybuild"; check "importance BUILD --real" "real_task.py"
run c bench/quality/run.sh -- --seeds 2
RECORD=$T/record.c; check "quality --" "build build-q"; check "quality --" "--seeds 2"
run d bench/quality/run.sh qb -- --seeds 2
RECORD=$T/record.d; check "quality BUILD --" "build qb"
if grep -q "build --" "$T"/record.*; then echo "FAIL: an option was taken for BUILD_DIR"; fail=1; fi
[[ $fail == 0 ]] && echo "bench scripts: BUILD_DIR optional, options kept"
exit $fail
