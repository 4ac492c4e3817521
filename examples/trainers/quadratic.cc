// A dependency-free training program for tests and benchmarks, written to the SageMaker
// training-container contract: run as `quadratic train`, it reads its hyperparameters from the
// SM_HP_<NAME> variables, prints one `epoch=N loss=V` line per epoch (the metric regex
// `loss=([0-9.eE+-]+)` picks them up), writes its model to SM_MODEL_DIR and exits 0.
//
// The loss is a known function of the hyperparameters, so tests can check that the tuning job's
// best training job is the one with the lowest final loss:
//   final = (x - 0.3)^2 + (y + 0.2)^2 + (optimizer == "adam" ? 0 : 0.05) + |layers - 3| * 0.01
// and epoch e of E prints final + 0.5 / (e + 1) for e < E - 1, then exactly `final`.
//
// Knobs (hyperparameters, all optional): epochs (5), sleep_ms per epoch (0), fail ("true": write
// /opt/ml/output/failure and exit 3), ignore_sigterm ("true": keep running after SIGTERM),
// print_times ("true": print `start_ms=T` first and `end_ms=T` last, Unix epoch milliseconds, so
// tests can see when the program ran), checkpoint ("true": resume from and save to
// <SM_MODEL_DIR>/../checkpoints/state.txt, i.e. /opt/ml/checkpoints, after every epoch; a resumed
// run prints `resumed from epoch=N` and continues with epoch N+1).
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sm_env.h"
#include <thread>

namespace {

std::atomic<bool> g_term{false};

using sm_env::Env;
using sm_env::Hp;

bool WriteFile(const std::string& path, const std::string& text) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return false;
  std::fputs(text.c_str(), f);
  return std::fclose(f) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "train") != 0) {
    std::fprintf(stderr, "usage: %s train   (run by an hpo worker, as SageMaker runs a container)\n", argv[0]);
    return 2;
  }
  std::signal(SIGTERM, [](int) { g_term = true; });
  const bool print_times = Env("SM_HP_PRINT_TIMES") == "true";
  auto wall_ms = [] {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count());
  };
  if (print_times) std::printf("start_ms=%lld\n", wall_ms());
  const double x = Hp("X", 0.0), y = Hp("Y", 0.0), layers = Hp("LAYERS", 3);
  const std::string optimizer = Env("SM_HP_OPTIMIZER", "adam");
  const int epochs = static_cast<int>(Hp("EPOCHS", 5));
  const int sleep_ms = static_cast<int>(Hp("SLEEP_MS", 0));
  const bool ignore_term = Env("SM_HP_IGNORE_SIGTERM") == "true";
  const std::string output_dir = Env("SM_OUTPUT_DIR", "/opt/ml/output");
  if (Env("SM_HP_FAIL") == "true") {
    WriteFile(output_dir + "/failure", "AlgorithmError: asked to fail (hyperparameter fail=true)");
    std::fprintf(stderr, "failing on purpose\n");
    return 3;
  }
  const double final_loss = (x - 0.3) * (x - 0.3) + (y + 0.2) * (y + 0.2) + (optimizer == "adam" ? 0.0 : 0.05) +
                            std::fabs(layers - 3) * 0.01;
  const std::string model_dir = Env("SM_MODEL_DIR", "/opt/ml/model");
  const bool checkpoint = Env("SM_HP_CHECKPOINT") == "true";
  const std::string state = model_dir + "/../checkpoints/state.txt";
  int first = 0;
  if (checkpoint) {
    if (FILE* f = std::fopen(state.c_str(), "r")) {
      int done = -1;
      if (std::fscanf(f, "epoch=%d", &done) == 1 && done >= 0) {
        first = done + 1;
        std::printf("resumed from epoch=%d\n", done);
        std::fflush(stdout);
      }
      std::fclose(f);
    }
  }
  for (int e = first; e < epochs; ++e) {
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    if (g_term && !ignore_term) {
      std::printf("terminated at epoch=%d\n", e);
      std::fflush(stdout);
      return 143;
    }
    double loss = e + 1 < epochs ? final_loss + 0.5 / (e + 1) : final_loss;
    std::printf("epoch=%d loss=%.17g\n", e, loss);
    std::fflush(stdout);
    if (checkpoint) {  // written whole, then renamed: a reader never sees half of it
      const std::string tmp = state + ".tmp";
      if (!WriteFile(tmp, "epoch=" + std::to_string(e) + "\n") || std::rename(tmp.c_str(), state.c_str()) != 0) {
        std::fprintf(stderr, "cannot write %s: %s\n", state.c_str(), std::strerror(errno));
        return 5;
      }
    }
  }
  char buf[128];
  std::snprintf(buf, sizeof buf, "x=%.17g y=%.17g loss=%.17g\n", x, y, final_loss);
  if (!WriteFile(model_dir + "/model.txt", buf)) {
    std::fprintf(stderr, "cannot write %s/model.txt: %s\n", model_dir.c_str(), std::strerror(errno));
    return 4;
  }
  if (print_times) std::printf("end_ms=%lld\n", wall_ms());
  return 0;
}
