// cli/client_commands.h: the clients of a coordinator's HTTP API (the SageMaker API).
//
//   hpo submit/list/describe/trials/logs/events/stop/delete
//
// The coordinator is --coordinator URL, else $HPO_COORDINATOR, else http://127.0.0.1:7780.
// Requests are signed with AWS Signature V4 when the caller has AWS credentials (found as the aws
// CLI finds them), so a coordinator that requires signatures accepts them. Exit codes as in
// cli/cli_util.h; a ValidationException from the coordinator is exit code 2.
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddClientCommands(CLI::App& app);

}  // namespace hpo::cli
