#!/usr/bin/env bash
# Creates bench/.venv-ray (gitignored) with Ray Tune from PyPI, for the side-by-side dispatch
# benchmark (bench/dispatch/ray_bench.py). Idempotent: an existing venv with ray importable is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RAY_VENV:-$here/../.venv-ray}"
py="${PYTHON:-python3}"
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import ray, ray.tune' 2>/dev/null; then
  echo "setup_ray: $venv already has $("$venv/bin/python" -c 'import ray; print("ray", ray.__version__)')"
  exit 0
fi
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "ray[tune]"
echo "setup_ray: installed $("$venv/bin/python" -c 'import ray; print("ray", ray.__version__)') into $venv"
