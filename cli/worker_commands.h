// cli/worker_commands.h: an operator's view of a cluster's workers.
//
//   hpo workers                   each worker: what it has, what runs there, whether it takes
//                                 new training jobs (and why not)
//   hpo workers cordon ID         no new training job goes to it (held across restarts)
//   hpo workers uncordon ID       it takes training jobs again
//   hpo workers drain ID          cordon, then wait until nothing runs there (maintenance)
//
// They ask a coordinator (--coordinator URL, as the client commands: cli/client.h) or a running
// hpo run (--state-dir DIR). Exit codes as in cli/cli_util.h; drain exits 1 when its --timeout
// passes first.
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddWorkersCommand(CLI::App& app);

}  // namespace hpo::cli
