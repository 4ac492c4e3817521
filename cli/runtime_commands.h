// cli/runtime_commands.h: the subcommands that run tuning jobs.
//
//   hpo run SPEC          embedded coordinator + local workers, to completion, with progress
//   hpo coordinator       the coordinator of a cluster (ZeroMQ for workers, HTTP for clients)
//   hpo worker            one worker of a cluster
// (The clients of a coordinator, hpo submit/list/...: cli/client_commands.h.)
//
// Each Add* function registers one subcommand on the app; its callback throws
// CLI::RuntimeError(code) with the process exit code (0 ok, 1 job failed or stopped,
// 2 usage or validation error, 3 could not reach or start a service).
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddRunCommand(CLI::App& app);
void AddCoordinatorCommand(CLI::App& app);
void AddWorkerCommand(CLI::App& app);

}  // namespace hpo::cli
