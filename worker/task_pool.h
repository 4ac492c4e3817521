// worker/task_pool.h: a pool of threads for the worker's slow steps.
#pragma once

#include <sys/resource.h>
#include <pthread.h>
#include <unistd.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace hpo::worker {

// Threads for the slow steps of an attempt (staging its channels; preparing directories ahead of
// time), kept for the next attempt instead of one new thread per step: a task starts on an idle
// thread, or on a new one when none is idle, so a long step never delays another attempt's. The
// destructor runs what is still queued, then joins. A pool made with a nice value runs its
// threads at that lower priority: background work that must not take a CPU from a launch.
class TaskPool {
 public:
  explicit TaskPool(int nice = 0) : nice_(nice) {}
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;
  ~TaskPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // Runs fn on a pool thread; its result (or exception) arrives through the future.
  template <typename Fn>
  auto Post(Fn fn) -> std::future<decltype(fn())> {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(fn));
    std::future<R> result = task->get_future();
    std::unique_lock<std::mutex> lock(mu_);
    queue_.emplace_back([task] { (*task)(); });
    if (queue_.size() > idle_) {
      try {
        threads_.emplace_back([this] {
          ::pthread_setname_np(::pthread_self(), nice_ > 0 ? "hpo-worker-bg" : "hpo-worker-job");  // top -H, perf
          if (nice_ > 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice_);  // this thread only
          Loop();
        });
      } catch (const std::system_error&) {
        if (threads_.empty()) {  // no thread at all: run it here rather than never
          auto job = std::move(queue_.back());
          queue_.pop_back();
          lock.unlock();
          job();
          return result;
        }
      }
    } else {
      cv_.notify_one();
    }
    return result;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      ++idle_;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping, and nothing left to run
      auto job = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      job();  // a packaged_task: exceptions end up in its future
      lock.lock();
    }
  }

  const int nice_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace hpo::worker
