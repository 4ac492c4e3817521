// worker/spare_dirs.h: empty trial directory trees made ahead of time.
//
// Laying out an attempt makes a dozen directories, each a mkdir() of 50-80 us on ext4, which
// delayed every launch by about a millisecond. So a worker keeps `count` (its slots) empty trial
// trees ready, made on pool threads while trials run: <work_dir>/spares/<tag>-<n>/ holds
// checkpoints/ and attempt-1/ with an empty trial.log and the ml/ tree with empty config files
// (worker/trial_layout.h's MakeTrialTree). The first attempt of a trial on this worker renames one
// to <work_dir>/trials/<trial> (RENAME_NOREPLACE, so an existing trial directory is never
// replaced); an attempt of a trial that has a directory here already is laid out the plain way.
// When a spare cannot be made or moved (no RENAME_NOREPLACE, spares/ and trials/ on different
// file systems, the spare removed behind the worker's back) spares are switched off for good,
// with one logged line, and the caller lays trees out itself.
//
// Spares of a worker process that is gone (a crash leaves them) are removed by Start; Stop
// removes this object's own (those still being made remove themselves).
//
// Threads: Start, Refill, Take and Stop on one thread (the agent's loop); the making runs on the
// pool, which must end (join) before this object is destroyed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

#include "worker/task_pool.h"

namespace hpo::worker {

class SpareTrialDirs {
 public:
  // `tag`: unique per agent in this process, starting with "<pid>-" (Start keeps the spares of
  // live processes). `log`: one line per fallback to the plain way.
  SpareTrialDirs(std::filesystem::path work_dir, std::string tag, size_t count, TaskPool* pool,
                 std::function<void(const std::string&)> log);
  SpareTrialDirs(const SpareTrialDirs&) = delete;
  SpareTrialDirs& operator=(const SpareTrialDirs&) = delete;

  // Once (later calls do nothing): removes the spares of processes that are gone, then Refill.
  void Start();
  // Makes spares on pool threads until `count` are ready or being made.
  void Refill();
  // Moves a spare to trial_dir, with its attempt-1 renamed to attempt-<attempt>. False when there
  // is none, spares are off, or trial_dir exists already (the spare is kept for the next trial).
  // The caller refills once its program has started.
  bool Take(const std::filesystem::path& trial_dir, uint32_t attempt);
  // Removes the ready spares and makes no more.
  void Stop();

  size_t Ready() const;  // spares ready now
  bool Off() const;      // switched off after a failure

 private:
  std::filesystem::path SpareRoot() const { return work_dir_ / "spares"; }
  std::filesystem::path TrialsRoot() const { return work_dir_ / "trials"; }

  const std::filesystem::path work_dir_;
  const std::string tag_;
  const size_t count_;
  TaskPool* const pool_;
  const std::function<void(const std::string&)> log_;
  mutable std::mutex mu_;
  std::deque<std::string> ready_;  // guarded by mu_, as are the next three
  size_t making_ = 0;
  bool off_ = false;
  bool closing_ = false;  // stopping: a spare made now is removed again
  uint64_t seq_ = 0;              // loop thread
  bool started_ = false;          // loop thread
  bool trials_root_made_ = false;  // loop thread
};

}  // namespace hpo::worker
