#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
# Usage: scripts/fuzz.sh [SECONDS]    Fails when a fuzzer finds a crash or a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/install-deps.sh --test
cmake -S . -B build-fuzz -G Ninja -DHPO_FUZZ=ON -DHPO_BUILD_TESTS=OFF -DHPO_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target spec_fuzz wire_fuzz
for target in spec_fuzz wire_fuzz; do
  corpus="build-fuzz/corpus/${target%_fuzz}"
  mkdir -p "$corpus"
  seeds="tests/fuzz/corpus/${target%_fuzz}"
  echo "fuzz: $target for ${seconds}s (seeds: $seeds)"
  UBSAN_OPTIONS=halt_on_error=1 ./build-fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" "$corpus" $( [ -d "$seeds" ] && echo "$seeds" ) \
    2>&1 | tail -n 12
done
echo "fuzz: no crashes"
