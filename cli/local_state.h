// cli/local_state.h: a state directory read in this process, for the commands that only read.
//
// `hpo run` and `hpo coordinator` keep a tuning job's whole record in STATE_DIR/hpo.db. After a
// run has ended (or while a coordinator is serving it) `hpo list/describe/trials/logs/events/
// dashboard --state-dir DIR` answer from that file as a coordinator would: the store is opened
// read-only (coordinator/job_store.h OpenReadOnly), a coordinator core loads it, and the
// SageMaker actions run through the same handlers as the HTTP API (coordinator/http_api.h), so
// the answers are the same documents, byte for byte, without any process listening. Nothing is
// written: not the database, not the directory's lock. A directory in use shows the state as of
// the moment of opening.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "coordinator/dashboard.h"
#include "proto/tuning_job.h"

namespace hpo::cli {

class LocalState {
 public:
  // Opens DIR/hpo.db. Errors: InvalidArgument naming DIR when it holds no hpo.db; IoError /
  // FailedPrecondition from the store (unreadable, another schema version).
  static Result<std::unique_ptr<LocalState>> Open(const std::string& state_dir);
  ~LocalState();
  LocalState(const LocalState&) = delete;
  LocalState& operator=(const LocalState&) = delete;

  // The SageMaker actions, events, logs and curves, answered in process.
  coordinator::dashboard::Source& source();
  // The tuning job's CRD document with its status block (GET /hpo/v1/jobs/NAME). NotFound.
  Result<proto::TuningJobDocument> Document(const std::string& job);
  const std::string& db_path() const;

 private:
  struct Impl;
  explicit LocalState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace hpo::cli
