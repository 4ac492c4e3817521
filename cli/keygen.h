// cli/keygen.h: `hpo keygen`, the CurveZMQ keys of a cluster (coordinator/curve_auth.h).
//
//   hpo keygen --out DIR                 coordinator and first worker key pairs + allow-list
//   hpo keygen --worker --out DIR [--name NAME]
//                                        one more worker key pair, appended to the allow-list
//
// Exit codes: 0 written, 2 usage error or refusal to overwrite keys, 3 the keys could not be
// written (I/O) or libzmq lacks CURVE.
#pragma once

#include <CLI/CLI.hpp>

namespace hpo::cli {

void AddKeygenCommand(CLI::App& app);

}  // namespace hpo::cli
