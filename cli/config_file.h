// cli/config_file.h: the configuration of a long-running hpo process (DESIGN.md, "Interfaces
// people use"): `hpo coordinator`, `hpo worker` and `hpo run` take `--config FILE`, a YAML
// mapping of their long option names (without the dashes) to values, and an `HPO_<NAME>`
// environment variable for every option (`--state-dir`: HPO_STATE_DIR).
//
//   # /etc/hpo/worker.yaml
//   connect: tcp://gpu-head:7700
//   keys: /etc/hpo/keys
//   slots: 4
//   image:                      # a repeatable option takes a list
//     - my-image=/opt/train.py
//   spot: true                  # a flag: true sets it, false leaves it off
//
// Precedence: a flag on the command line, then its environment variable, then the file, then
// the option's default. A file is read before anything starts; a key that is no option of the
// command (with the closest one), a value of the wrong shape (a mapping, an empty value, a list
// for an option that takes one value) or an unreadable file is a usage error naming the file
// and key (exit 2), and a value the option refuses names where it came from.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/status.h"

namespace hpo::cli {

// Gives every long option of `command` (but --help and --config) its environment variable,
// HPO_ and the name upper-cased with '-' as '_'. CLI11 reads it when the flag is not given.
void AddEnvironmentNames(CLI::App* command);

struct ConfigExpansion {
  // The command's arguments (those after its name) with the file's settings added as options,
  // ahead of the user's own.
  std::vector<std::string> args;
  // For messages, where an option's value came from when not from the command line: "--slots" ->
  // "slots in /etc/hpo/worker.yaml" or "HPO_SLOTS in the environment".
  std::map<std::string, std::string> origin;
  // Keys of the file that the command line or the environment override, said on stderr: "connect
  // in FILE (--connect on the command line wins)".
  std::vector<std::string> overridden;
};

// Expands `--config FILE` (or `--config=FILE`) among `args`, the arguments after `command`'s
// name. Without one, returns `args` as they are (and the origins of the environment's). InvalidArgument, naming the file (and the key),
// for what the header says is a usage error.
Result<ConfigExpansion> ExpandConfig(const CLI::App& command, const std::vector<std::string>& args);

}  // namespace hpo::cli
