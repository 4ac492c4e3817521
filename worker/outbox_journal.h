// worker/outbox_journal.h: a worker's unacknowledged reports, kept on disk.
//
// What it is: every report the coordinator must acknowledge (TrialStarted, MetricPoints,
// LogLines, TrialExited) is appended here before it is sent, one file per attempt
// (<dir>/<trial>.<attempt>.log, the encoded frames, length-prefixed), and the file goes once the
// attempt's last report is acknowledged. A worker process that dies while its coordinator is
// away (or before the acknowledgements came) leaves the files behind; the next process on the
// same work directory loads them and delivers the reports of the attempts that ended, so a
// finished training job is never run again because its result was only in memory.
//
// Durability: appends are write(2)s without fsync: they survive the worker process (the page
// cache holds them), not a power cut. A write that fails part-way (a full disk) is cut off again,
// so the records appended after it can be read back; one cut short by a crash in the middle of
// a write is ignored on load, and cut off then, as is everything after it.
//
// Thread safety: none; the agent's loop thread owns it.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace hpo::worker {

class OutboxJournal {
 public:
  // `dir` is created when missing. Errors: IoError naming it.
  [[nodiscard]] static Result<OutboxJournal> Open(const std::string& dir);
  OutboxJournal(OutboxJournal&& other) noexcept;
  OutboxJournal& operator=(OutboxJournal&& other) noexcept;
  OutboxJournal(const OutboxJournal&) = delete;
  OutboxJournal& operator=(const OutboxJournal&) = delete;
  ~OutboxJournal();

  // Appends one report (its frames) of the attempt. Errors: IoError (the report is then only in
  // memory; the caller logs it).
  [[nodiscard]] Status Append(const std::string& trial, uint32_t attempt, const std::vector<std::string>& frames);
  // Every report of the attempt is acknowledged: its file goes.
  void Drop(const std::string& trial, uint32_t attempt);

  // What earlier worker processes left, per attempt (possibly with no whole report), in the order
  // it was written. The files stay until Drop (the caller re-sends the reports and drops each
  // attempt once acknowledged).
  struct Leftover {
    std::string trial;
    uint32_t attempt = 0;
    std::vector<std::vector<std::string>> reports;  // each: the frames of one message
  };
  [[nodiscard]] Result<std::vector<Leftover>> Load() const;

 private:
  explicit OutboxJournal(std::string dir) : dir_(std::move(dir)) {}
  std::string Path(const std::string& trial, uint32_t attempt) const;
  void CloseAll();
  std::string dir_;
  std::map<std::pair<std::string, uint32_t>, int> fds_;  // open files of live attempts
  std::set<std::pair<std::string, uint32_t>> broken_;     // ending in a torn record: no more appends
};

}  // namespace hpo::worker
