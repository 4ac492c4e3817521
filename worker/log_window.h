// worker/log_window.h: an attempt's output lines waiting to go to the coordinator.
//
// What it is: the lines the worker read from a training program (and its own notes about it),
// numbered from 0 in the order added, held until the agent sends them. The coordinator keeps
// only an attempt's first `head` lines and its last `tail` (proto::wire::kLogHeadLines,
// kLogTailLines), so the window leaves out what the coordinator would drop anyway: of the lines
// numbered `head` or more, it holds at most the newest `tail`, and at most `tail_bytes` bytes of
// them (at least the newest line). A program that prints faster than the coordinator stores
// costs the worker and the coordinator a bounded amount of memory; every line is still in the
// attempt's trial.log.
//
// What it is not: thread-safe (the agent holds the run's mutex), or a sender.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace hpo::worker {

class LogWindow {
 public:
  LogWindow(uint64_t head, uint64_t tail, size_t tail_bytes);

  // Numbers the line (the next number) and holds it; may leave out the oldest held lines
  // numbered `head` or more.
  void Add(std::string line);

  // Consecutive lines, oldest first: `first_line` is the number of lines[0].
  struct Batch {
    uint64_t first_line = 0;
    std::vector<std::string> lines;
  };
  // Takes the oldest held lines: at most `max_lines`, and no more once `max_bytes` is reached
  // (at least one line). Lines on either side of a gap left by the window come in separate
  // batches. Empty lines when none is held.
  Batch Take(size_t max_lines, size_t max_bytes);

  bool empty() const { return head_lines_.empty() && tail_lines_.empty(); }
  uint64_t lines_added() const { return next_; }
  uint64_t lines_left_out() const { return left_out_; }

 private:
  uint64_t head_;
  uint64_t tail_;
  size_t tail_bytes_;
  uint64_t next_ = 0;                   // the number the next line gets
  std::deque<std::string> head_lines_;  // numbered below head_, consecutive, up to next_ or head_
  uint64_t head_first_ = 0;             // the number of head_lines_.front()
  std::deque<std::string> tail_lines_;  // numbered head_ or more, consecutive, up to next_
  uint64_t tail_first_ = 0;             // the number of tail_lines_.front()
  size_t held_tail_bytes_ = 0;          // of tail_lines_
  uint64_t left_out_ = 0;
};

}  // namespace hpo::worker
