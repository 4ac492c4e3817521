#!/usr/bin/env bash
# From a fresh Debian 12 machine to a first tuning job: installs the packages, builds `hpo`
# (Release, in build/), checks every example spec, then runs examples/quickstart.yaml.
# Safe to re-run: installed packages are skipped and the build is incremental.
#
# Usage: scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh --examples

generator=()
[[ -f build/CMakeCache.txt ]] || generator=(-G Ninja -DHPO_BUILD_TESTS=OFF)
cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)" --target hpo

echo
echo "== hpo validate examples/*.yaml examples/*.json"
build/cli/hpo validate examples/*.yaml examples/*.json

echo
echo "== hpo run examples/quickstart.yaml --workers 3   (state and trial logs under hpo-runs/)"
build/cli/hpo run examples/quickstart.yaml --workers 3
