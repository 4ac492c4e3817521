#!/usr/bin/env bash
# Creates bench/.venv-syne (gitignored) with Syne Tune from PyPI, for the side-by-side dispatch
# benchmark (bench/dispatch/syne_bench.py). Idempotent: an existing venv with syne_tune importable
# is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${SYNE_VENV:-$here/../.venv-syne}"
py="${PYTHON:-python3}"
version() { "$venv/bin/python" -c 'import importlib.metadata as m; print("syne-tune", m.version("syne-tune"))'; }
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import syne_tune' 2>/dev/null; then
  echo "setup_syne: $venv already has $(version)"
  exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet syne-tune
echo "setup_syne: installed $(version) into $venv"
