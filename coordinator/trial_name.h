// coordinator/trial_name.h: training job names of a tuning job.
//
// A trial is named like SageMaker names the training jobs of a tuning job:
// `<tuningJobName>-<NNN>-<8 hex>`, e.g. `my-job-001-589e2e9f`. NNN is the 1-based index of the
// trial in the job, zero-padded to three digits (wider from 1000 on: `my-job-1000-...`). The
// suffix is 8 lower-case hex digits of a 64-bit hash of (job name, index, seed, the job's creation
// time): FNV-1a over the name's bytes, mixed with the index, the seed and the time through
// SplitMix64's finalizer (coordinator/rng.h), high 32 bits. It is deterministic, so a restarted
// coordinator names a trial as before, and it differs between jobs that reuse a name, even with
// the same RandomSeed (a job deleted and submitted again: its training jobs must not write over
// the first one's output, nor share their names in its history).
//
// Length: a tuning job name has at most 32 characters (validation), so a name has at most
// 32 + 1 + 10 + 1 + 8 = 52 characters, inside SageMaker's 63 for training job names; exceeding
// 63 (a caller bug) fails an HPO_CHECK, as does index < 1.
//
// Thread safety: a pure function.
#pragma once

#include <cstdint>
#include <string>

namespace hpo::coordinator {

std::string TrialName(const std::string& tuning_job, int index, uint64_t seed, int64_t job_created_ms = 0);

// The tuning job a name of that shape belongs to (the part before -<NNN>-<8 hex>); "" when the
// name does not have that shape.
std::string TuningJobOfTrialName(const std::string& trial);

}  // namespace hpo::coordinator
