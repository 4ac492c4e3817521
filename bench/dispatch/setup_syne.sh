#!/usr/bin/env bash
# Creates bench/.venv-syne (gitignored) with Syne Tune from PyPI, for the side-by-side dispatch
# benchmark (bench/dispatch/syne_bench.py) and the adaptive one. Idempotent (setup_peer.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/setup_peer.sh" "${SYNE_VENV:-$here/../.venv-syne}" syne-tune syne_tune syne-tune
