#include "coordinator/trial_name.h"

#include <cstdio>

#include "common/status.h"
#include "coordinator/rng.h"

namespace hpo::coordinator {

std::string TrialName(const std::string& tuning_job, int index, uint64_t seed, int64_t job_created_ms) {
  HPO_CHECK(index >= 1);
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : tuning_job) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h = SplitMix64Mix(h ^ SplitMix64Mix(static_cast<uint64_t>(index)));
  h = SplitMix64Mix(h ^ seed);
  if (job_created_ms != 0) h = SplitMix64Mix(h ^ static_cast<uint64_t>(job_created_ms));
  char tail[32];
  std::snprintf(tail, sizeof tail, "-%03d-%08x", index, static_cast<unsigned>(h >> 32));
  std::string name = tuning_job + tail;
  HPO_CHECK_MSG(name.size() <= 63, "training job name longer than 63 characters: " + name);
  return name;
}

std::string TuningJobOfTrialName(const std::string& trial) {
  const size_t hash_at = trial.rfind('-');
  if (hash_at == std::string::npos || hash_at == 0 || trial.size() - hash_at != 9) return "";
  const size_t index_at = trial.rfind('-', hash_at - 1);
  if (index_at == std::string::npos || index_at == 0 || hash_at - index_at < 4) return "";
  return trial.substr(0, index_at);
}

}  // namespace hpo::coordinator
