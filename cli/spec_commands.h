// cli/spec_commands.h: subcommands that read specs without running them.
//
//   hpo validate FILE...   check specs against SageMaker's rules (exit 0 valid, 2 not)
//   hpo convert FILE       print a spec in the other spelling (CRD YAML <-> SageMaker JSON)
//   hpo instance-types     the instance catalog specs name types from, and which this machine covers
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddValidateCommand(CLI::App& app);
void AddConvertCommand(CLI::App& app);
void AddInstanceTypesCommand(CLI::App& app);

}  // namespace hpo::cli
