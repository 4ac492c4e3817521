#!/usr/bin/env bash
# Creates a peer's virtual environment (gitignored) from PyPI for the side-by-side benchmarks:
#   setup_peer.sh VENV PIP_SPEC MODULE DISTRIBUTION
# e.g. setup_peer.sh bench/.venv-ray "ray[tune]" ray.tune ray. Idempotent: an existing venv where
# MODULE imports is kept. Prints the distribution's version either way. PYTHON picks the interpreter.
set -euo pipefail
venv="$1" spec="$2" module="$3" dist="$4"
py="${PYTHON:-python3}"
version() { "$venv/bin/python" -c "import importlib.metadata as m; print('$dist', m.version('$dist'))"; }
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c "import $module" 2>/dev/null; then
  echo "setup: $venv already has $(version)"
  exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "$spec"
echo "setup: installed $(version) into $venv"
