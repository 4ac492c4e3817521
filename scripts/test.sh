#!/usr/bin/env bash
# Builds hpo with its tests and runs them all with CTest; exits non-zero when any test fails.
#
# Usage: scripts/test.sh [--sanitize | --tsan]
#   (default)    build/       the project's default build type, tests on
#   --sanitize   build-asan/  the same with AddressSanitizer + UndefinedBehaviorSanitizer
#                             (-DHPO_SANITIZE=ON); any sanitizer report fails its test
#   --tsan       build-tsan/  the same with ThreadSanitizer (-DHPO_TSAN=ON, no CUDA, OpenMP off);
#                             any data race report, in a test or in a process it starts, fails it
#
# Environment: JOBS (build parallelism, default nproc), CTEST_JOBS (default 2), HPO_CMAKE_ARGS
# (extra configure arguments, e.g. "-DHPO_CUDA=OFF"), FUZZ_SECONDS (per fuzz target after the
# tests, default 30; 0 skips the fuzzers). Safe to re-run: an existing build
# directory is reconfigured and built incrementally.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=build
extra=()
for arg in "$@"; do
  case "$arg" in
    --sanitize) build="build-asan"; extra+=(-DHPO_SANITIZE=ON) ;;
    --tsan) build="build-tsan"; extra+=(-DHPO_TSAN=ON -DHPO_CUDA=OFF) ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

bash scripts/install-deps.sh --test

generator=()
[[ -f "$build/CMakeCache.txt" ]] || generator=(-G Ninja)  # keep whatever generator a build dir has
# shellcheck disable=SC2086  # HPO_CMAKE_ARGS is a list of words on purpose
cmake -S . -B "$build" "${generator[@]}" -DHPO_BUILD_TESTS=ON "${extra[@]}" ${HPO_CMAKE_ARGS:-}
cmake --build "$build" -j"${JOBS:-$(nproc)}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# ThreadSanitizer: libzmq, sqlite and the other system libraries are not instrumented; libzmq hands
# each message between its threads through lock-free pipes TSan cannot see, and its buffers would
# read as races (thousands per run, and minutes of checking per large message). Accesses made
# inside those libraries are left out; every access of hpo's code is checked.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1}"
ctest --test-dir "$build" --output-on-failure -j"${CTEST_JOBS:-2}"

# The libFuzzer targets (every wire message decoder and the spec parser), built with clang under
# ASan + UBSan and run for a bounded time: FUZZ_SECONDS each (default 30; 0 skips them).
if [[ "${FUZZ_SECONDS:-30}" != 0 ]]; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
