// cli/spec_commands.h: subcommands that read specs without running them.
//
//   hpo validate FILE...   check specs against SageMaker's rules (exit 0 valid, 2 not)
//   hpo convert FILE       print a spec in the other spelling (CRD YAML <-> SageMaker JSON)
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddValidateCommand(CLI::App& app);
void AddConvertCommand(CLI::App& app);

}  // namespace hpo::cli
