// coordinator/core_rows.h: the stored form of the core's tuning jobs and trials
// (coordinator/job_store.h's rows), both ways. The core writes a row on every change and reads
// them all back when it starts (CoordinatorCore's crash safety rests on this round trip).
//
// A job's row holds its spec (as a CreateHyperParameterTuningJob request), status, reasons,
// seed, times and the time convergence was first detected; what is derived from them (the
// strategy, the objective, the waiting reason, the list of trials) is not stored.
// A trial's row holds every field of Trial except `curve` (rebuilt from the stored metric points),
// `assigned_ms` (a restarted coordinator times assignment afresh) and `unstarted_assign` (a
// restarted coordinator sends an unstarted attempt again anyway: OnRegister); the columns of TrialRow
// carry the identity, state and times, `detail_json` the rest.
//
// Decoding is lenient where the data is the user's and strict where nothing can be done: a job
// whose spec does not parse, or lacks its strategy, resource limits or training job definition,
// is an error naming the job and the reason (the caller skips it, says so at start, and keeps
// its name from a new job: CoordinatorCore::UnreadableJobs); a trial's damaged `detail_json`
// leaves those fields at their defaults, and an unknown state reads as Failed, so one damaged row
// never stops a coordinator from starting.
//
// Thread safety: pure functions.
#pragma once

#include "common/status.h"
#include "coordinator/core.h"
#include "coordinator/job_store.h"

namespace hpo::coordinator {

JobRow JobToRow(const TuningJob& job);
// The stored fields of the job (not its strategy or objective: the core derives them).
Status JobFromRow(const JobRow& row, TuningJob* job);

// The TrialState a stored state column names (TrialStateName's text); nullopt for any other.
std::optional<TrialState> ParseTrialState(const std::string& name);

TrialRow TrialToRow(const Trial& trial);
// The queue link (after_trial, after_attempt) is restored only for a trial that has not ended.
// A damaged row (a state that is none of TrialState's, a detail that is not a JSON object) loads
// with defaults for what cannot be read (an unknown state as Failed), and `damage` (when given)
// says what was wrong; "" when nothing was.
Trial TrialFromRow(const TrialRow& row, std::string* damage = nullptr);

}  // namespace hpo::coordinator
