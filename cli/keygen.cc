#include "cli/keygen.h"

#include <iostream>
#include <memory>
#include <string>

#include "coordinator/curve_auth.h"

namespace hpo::cli {

void AddKeygenCommand(CLI::App& app) {
  struct Args {
    std::string out;
    bool worker = false;
    std::string name;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("keygen", "Make the CurveZMQ keys that let workers connect to a coordinator");
  c->add_option("--out", a->out, "Key directory (created with mode 0700 when missing)")->required();
  c->add_flag("--worker", a->worker, "Add one more worker key pair to an existing key directory and allow it");
  c->add_option("--name", a->name, "With --worker: the new key's name, NAME.secret/NAME.pub (default worker-2, worker-3, ...)");
  c->footer(
      "Writes, as Z85 text (secret files with mode 0600):\n"
      "  coordinator.secret  coordinator.pub   the coordinator's key pair and public key\n"
      "  worker.secret       worker.pub        the first worker's key pair and public key\n"
      "  authorized_workers                    the workers the coordinator accepts (public keys)\n\n"
      "Then:\n"
      "  hpo coordinator --keys DIR                      (keeps coordinator.secret, authorized_workers)\n"
      "  hpo worker --keys DIR --connect tcp://HOST:7700  (needs coordinator.pub, worker.secret)\n"
      "  hpo keygen --worker --out DIR                   another worker: worker-2.secret, allowed at once;\n"
      "  hpo worker --keys DIR --key-name worker-2 ...   a coordinator re-reads authorized_workers when\n"
      "                                                  it changes and on SIGHUP");
  c->callback([a] {
    if (!a->worker && !a->name.empty()) {
      std::cerr << "hpo keygen: --name applies to --worker keys only\n";
      throw CLI::RuntimeError(2);
    }
    Result<std::string> r = a->worker ? coordinator::curve::AddWorkerKey(a->out, a->name)
                                      : coordinator::curve::GenerateClusterKeys(a->out);
    if (!r.ok()) {
      std::cerr << "hpo keygen: " << r.status().message() << "\n";
      StatusCode code = r.status().code();
      throw CLI::RuntimeError(code == StatusCode::kIoError || code == StatusCode::kFailedPrecondition ||
                                      code == StatusCode::kInternal
                                  ? 3
                                  : 2);
    }
    std::cout << *r;
    throw CLI::RuntimeError(0);
  });
}

}  // namespace hpo::cli
