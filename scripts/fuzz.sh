#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for SECONDS (default 60).
# Usage: scripts/fuzz.sh [SECONDS]    Fails when a fuzzer finds a crash or a sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
bash scripts/install-deps.sh --test
cmake -S . -B build-fuzz -G Ninja -DHPO_FUZZ=ON -DHPO_BUILD_TESTS=OFF -DHPO_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target spec_fuzz wire_fuzz api_fuzz pattern_fuzz
for target in spec_fuzz wire_fuzz api_fuzz pattern_fuzz; do
  name="${target%_fuzz}"
  corpus="build-fuzz/corpus/$name"  # grows across runs; the checked-in seeds stay read-only
  mkdir -p "$corpus"
  seeds=()
  if [[ -d "tests/fuzz/corpus/$name" ]]; then seeds=("tests/fuzz/corpus/$name"); fi
  log="build-fuzz/$target.log"
  echo "fuzz: $target for ${seconds}s (seeds: ${seeds[*]:-none}; log: $log)"
  # -timeout: one input running longer than 60 s is a finding (a hang), not something to wait
  # out; the outer timeout bounds the whole run, leak check at exit included, so CI cannot hang.
  rc=0
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 timeout --kill-after=30 $((seconds + 300)) \
    ./build-fuzz/tests/fuzz/"$target" -max_total_time="$seconds" -timeout=60 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/$target-" "$corpus" "${seeds[@]}" \
    >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 100 "$log" >&2
    if ((rc == 124 || rc == 137)); then
      echo "fuzz: $target did not finish within $((seconds + 300)) s and was killed" >&2
    fi
    echo "fuzz: $target FAILED (exit $rc); failing inputs are build-fuzz/$target-*, the log $log" >&2
    exit 1
  fi
  tail -n 12 "$log"
done
echo "fuzz: no crashes"
