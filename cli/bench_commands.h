// cli/bench_commands.h: benchmarks of the strategies, run in-process (no coordinator, no workers).
//
//   hpo bench suggest    latency of one Bayesian suggestion: fit on N synthetic observations in D
//                        dimensions, propose a batch of Q; the median of R repeats
//   hpo bench optimize   the real strategy code against a test function (Branin, Hartmann6,
//                        Ackley) in virtual time: per-seed best values and simple regret
//
// Exit codes: 0 ok, 1 the benchmark ran but the model did not (fallback to random search where
// a model was measured), 2 usage error, 3 the requested device is unavailable.
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddBenchCommands(CLI::App& app);

}  // namespace hpo::cli
