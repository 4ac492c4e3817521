#!/usr/bin/env bash
# Creates bench/.venv-ray (gitignored) with Ray Tune from PyPI, for the side-by-side dispatch
# benchmark (bench/dispatch/ray_bench.py) and the adaptive one. Idempotent (setup_peer.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/setup_peer.sh" "${RAY_VENV:-$here/../.venv-ray}" "ray[tune]" "ray, ray.tune" ray
