// A dependency-free synthetic learning-curve trainer with CROSSING curves, for the adaptive
// tuning benchmark (bench/adaptive/): a task where early stopping can be wrong, because the
// configurations that look best after a few epochs are not the ones that end best.
//
// Contract (as examples/trainers/quadratic.cc): run as `curve train`, it reads its
// hyperparameters from the SM_HP_<NAME> variables, prints one `epoch=K loss=V` line per epoch
// (K = 1..epochs; the metric regex `loss=([0-9.eE+-]+)` picks them up), writes
// SM_MODEL_DIR/model.txt and exits 0. On SIGTERM it exits 143 at once (also in the middle of an
// epoch's sleep), without printing another epoch.
//
// Hyperparameters (all optional):
//   lr        learning rate, > 0 (default 0.01); searched log-uniformly in [1e-4, 1]
//   momentum  (default 0.9); searched in [0, 0.99]
//   layers    (default 4); searched as an integer in [1, 8]
//   epochs    (default 27), sleep_ms per epoch (default 0)
//   noise     amplitude of the deterministic noise (default 0.01; 0 turns it off)
//   noise_seed  an integer (default 0)
//
// The curve, exactly (bench/adaptive/curve.py implements the same function; peers use it):
//   b     = 3 lr^0.25 (0.6 + 0.6 momentum) (1 - 0.06 (layers - 1))              speed
//   f     = 0.10 + 0.5 sqrt(lr) + 0.4 momentum^4 + 0.03 (8 - layers)          floor
//   loss(k) = f + 2 (k + 1)^(-b) + noise (2 U(k) - 1),   k = 1 .. epochs
// Every hyperparameter trades a fast start for a worse floor: a larger learning rate, more
// momentum and fewer layers learn faster (larger b) towards a worse final value, so the curves
// cross. Over the search space above (noise-free), the best loss after 1 epoch is 1.086 at
// lr = 0.41, momentum = 0.63, 1 layer; after 3 epochs 0.715 at lr = 0.21, momentum 0.57, 3
// layers; after 9 epochs 0.511 at lr = 0.13, 6 layers; after 27 epochs the optimum is 0.389 at
// lr = 0.10, momentum = 0.51, 8 layers (that configuration reads 1.37 after 1 epoch, 0.87 after 3).
// Over 60 random configurations (noise 0.01, 50 draws) the Spearman correlation of the losses
// after 1 (3, 9) epochs with those after 27 is about 0.73 (0.80, 0.93), and the configuration
// that is best after 27 epochs ranks 9th to 21st of 60 after the first epoch (10 % to 90 %;
// median 15th), 5th to 20th after 3, 1st to 11th after 9: a rule that keeps only the top third
// early on can stop the eventual winner.
//
// U(k) in [0, 1) is a hash of the hyperparameters and the epoch, so the same configuration
// always prints the same curve. With splitmix64(x) = { z = x + 0x9E3779B97F4A7C15;
// z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
// return z ^ (z >> 31); } (uint64 arithmetic, wrapping) and bits(x) the IEEE-754 bits of the
// double x:
//   h = splitmix64(noise_seed); h = splitmix64(h ^ bits(lr)); h = splitmix64(h ^ bits(momentum));
//   h = splitmix64(h ^ bits((double) layers)); h = splitmix64(h ^ k);  U(k) = (h >> 11) * 2^-53
// where lr and momentum are the doubles parsed from their SM_HP_ strings (strtod) and layers is
// the integer parsed from its string (a non-integer value is truncated towards zero).
//
// Printed with %.17g, so a Python implementation with the same libm reproduces the values bit
// for bit (bench/adaptive/run.sh checks that before it benchmarks).
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "sm_env.h"

namespace {

volatile std::sig_atomic_t g_term = 0;

using sm_env::Env;
using sm_env::Hp;

uint64_t SplitMix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t Bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

// Sleeps ms milliseconds; returns early (false) when SIGTERM arrived.
bool SleepMs(long ms) {
  struct timespec req{ms / 1000, (ms % 1000) * 1000000L}, rem{};
  while (!g_term && nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  return !g_term;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "train") != 0) {
    std::fprintf(stderr, "usage: %s train   (run by an hpo worker, as SageMaker runs a container)\n", argv[0]);
    return 2;
  }
  struct sigaction sa{};
  sa.sa_handler = [](int) { g_term = 1; };
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a sleep is interrupted
  sigaction(SIGTERM, &sa, nullptr);

  const double lr = Hp("LR", 0.01), momentum = Hp("MOMENTUM", 0.9);
  const long layers = static_cast<long>(Hp("LAYERS", 4));
  const int epochs = static_cast<int>(Hp("EPOCHS", 27));
  const long sleep_ms = static_cast<long>(Hp("SLEEP_MS", 0));
  const double noise = Hp("NOISE", 0.01);
  const uint64_t noise_seed = static_cast<uint64_t>(Hp("NOISE_SEED", 0));
  if (!(lr > 0)) {
    std::fprintf(stderr, "lr must be > 0 (got %g)\n", lr);
    return 3;
  }
  const double b = 3 * std::pow(lr, 0.25) * (0.6 + 0.6 * momentum) * (1 - 0.06 * static_cast<double>(layers - 1));
  const double f = 0.10 + 0.5 * std::sqrt(lr) + 0.4 * std::pow(momentum, 4) + 0.03 * static_cast<double>(8 - layers);
  uint64_t h0 = SplitMix64(noise_seed);
  h0 = SplitMix64(h0 ^ Bits(lr));
  h0 = SplitMix64(h0 ^ Bits(momentum));
  h0 = SplitMix64(h0 ^ Bits(static_cast<double>(layers)));

  double loss = 0;
  for (int k = 1; k <= epochs; ++k) {
    if (sleep_ms > 0 && !SleepMs(sleep_ms)) return 143;
    if (g_term) return 143;
    const uint64_t h = SplitMix64(h0 ^ static_cast<uint64_t>(k));
    const double unit = static_cast<double>(h >> 11) * 0x1.0p-53;
    loss = f + 2.0 * std::pow(static_cast<double>(k + 1), -b) + noise * (2 * unit - 1);
    std::printf("epoch=%d loss=%.17g\n", k, loss);
    std::fflush(stdout);
  }
  const std::string model_dir = Env("SM_MODEL_DIR", "/opt/ml/model");
  if (FILE* out = std::fopen((model_dir + "/model.txt").c_str(), "w")) {
    std::fprintf(out, "lr=%.17g momentum=%.17g layers=%ld loss=%.17g\n", lr, momentum, layers, loss);
    std::fclose(out);
  } else {
    std::fprintf(stderr, "cannot write %s/model.txt: %s (ignored)\n", model_dir.c_str(), std::strerror(errno));
  }
  return 0;
}
