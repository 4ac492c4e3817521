#include "worker/log_window.h"

#include <utility>

namespace hpo::worker {

LogWindow::LogWindow(uint64_t head, uint64_t tail, size_t tail_bytes)
    : head_(head), tail_(tail == 0 ? 1 : tail), tail_bytes_(tail_bytes) {}

void LogWindow::Add(std::string line) {
  const uint64_t number = next_++;
  if (number < head_) {
    if (head_lines_.empty()) head_first_ = number;
    head_lines_.push_back(std::move(line));
    return;
  }
  if (tail_lines_.empty()) tail_first_ = number;
  held_tail_bytes_ += line.size();
  tail_lines_.push_back(std::move(line));
  while (tail_lines_.size() > 1 && (tail_lines_.size() > tail_ || held_tail_bytes_ > tail_bytes_)) {
    held_tail_bytes_ -= tail_lines_.front().size();
    tail_lines_.pop_front();
    ++tail_first_;
    ++left_out_;
  }
}

LogWindow::Batch LogWindow::Take(size_t max_lines, size_t max_bytes) {
  Batch b;
  const bool from_head = !head_lines_.empty();
  std::deque<std::string>& from = from_head ? head_lines_ : tail_lines_;
  uint64_t& first = from_head ? head_first_ : tail_first_;
  b.first_line = first;
  size_t bytes = 0;
  while (!from.empty() && b.lines.size() < max_lines && (b.lines.empty() || bytes < max_bytes)) {
    bytes += from.front().size();
    if (!from_head) held_tail_bytes_ -= from.front().size();
    b.lines.push_back(std::move(from.front()));
    from.pop_front();
    ++first;
  }
  return b;
}

}  // namespace hpo::worker
