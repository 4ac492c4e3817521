// Micro-benchmark of the worker's process launch (worker/process.h), without a coordinator: how
// long TrialProcess::Start() takes, how long after the program's exit the worker hears of it, and
// how much the launches stall other threads of a worker-like process (malloc in busy threads: a
// fork() takes every malloc arena lock of the process for its whole duration).
//
// The process first allocates and touches --rss-mb of small heap blocks (hpo run with its
// coordinator and 4 workers holds about 30 MB) and starts --threads threads that malloc/free in
// a loop and record their slowest iterations. Then it runs --n programs one after the other.
//
//   c++ -std=c++20 -O2 -I. bench/dispatch/spawn_bench.cc build-bench/worker/libhpo_worker.a \
//       build-bench/common/libhpo_common.a -pthread -o /tmp/spawn_bench
//   /tmp/spawn_bench --n 500 [--mounts] [--rss-mb 30] [--threads 4] [--program /bin/true]
//                    [--sleep-ms 0]   (SM_HP_SLEEP_MS: with build-bench/bench/sleep_trainer as the
//                                      program, how long each one runs)
//
// --mounts runs each program as a root worker does: private mount namespace, 2 bind mounts.
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "worker/process.h"

using Clock = std::chrono::steady_clock;

static double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

static double Pct(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(q / 100.0 * (v.size() - 1) + 0.5);
  return v[k];
}

static double Mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / v.size();
}

int main(int argc, char** argv) {
  int n = 300, threads = 4, rss_mb = 30, sleep_ms = 0;
  bool mounts = false;
  std::string program = "/bin/true";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
    if (a == "--n") n = std::atoi(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--rss-mb") rss_mb = std::atoi(next().c_str());
    else if (a == "--mounts") mounts = true;
    else if (a == "--sleep-ms") sleep_ms = std::atoi(next().c_str());
    else if (a == "--program") program = next();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  // A worker-like heap: many small blocks, all touched.
  std::vector<std::unique_ptr<char[]>> heap;
  for (size_t done = 0; done < static_cast<size_t>(rss_mb) << 20; done += 512) {
    heap.emplace_back(new char[512]);
    std::memset(heap.back().get(), 1, 512);
  }
  std::atomic<bool> stop{false};
  std::mutex stalls_mu;
  std::vector<double> stalls;  // per background thread iteration over 0.2 ms
  std::vector<std::thread> bg;
  for (int t = 0; t < threads; ++t) {
    bg.emplace_back([&] {
      std::vector<double> mine;
      while (!stop.load(std::memory_order_relaxed)) {
        auto t0 = Clock::now();
        void* p = std::malloc(4000);  // above tcache's sizes: takes the arena lock
        std::memset(p, 2, 4000);
        std::free(p);
        double ms = Ms(Clock::now() - t0);
        if (ms > 0.2) mine.push_back(ms);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      std::lock_guard<std::mutex> lock(stalls_mu);
      stalls.insert(stalls.end(), mine.begin(), mine.end());
    });
  }
  const std::string dir = "/tmp/spawn-bench-" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  ::mkdir((dir + "/src").c_str(), 0755);
  ::mkdir((dir + "/dst").c_str(), 0755);

  hpo::worker::ProcessSpec spec;
  spec.argv = {program, "train"};
  spec.env = {{"PATH", "/usr/bin:/bin"}, {"SM_HP_SLEEP_MS", std::to_string(sleep_ms)}};
  spec.cwd = dir;
  spec.log_path = dir + "/trial.log";
  if (mounts) {
    spec.isolation.mount_namespace = true;
    spec.isolation.mounts = {{dir + "/src", dir + "/dst", false}, {dir + "/src", dir + "/dst", true}};
  }
  std::vector<double> start_ms, exit_ms, total_ms;
  // With a program that prints "us <start> <end>" (epoch microseconds at the top of main() and
  // just before it exits), the two ends of a launch measured from the program's side.
  std::vector<double> to_main_ms, end_to_noticed_ms;
  auto epoch_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  rusage r0{};
  ::getrusage(RUSAGE_SELF, &r0);
  rusage c0{};
  ::getrusage(RUSAGE_CHILDREN, &c0);
  auto wall0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    std::mutex mu;
    std::condition_variable cv;
    bool exited = false;
    Clock::time_point exit_at;
    int64_t exit_us = 0, main_us = 0, end_us = 0;
    hpo::worker::ProcessOptions po;
    po.on_exit = [&](const hpo::worker::ExitInfo&) {
      std::lock_guard<std::mutex> lock(mu);
      exited = true;
      exit_at = Clock::now();
      exit_us = epoch_us();
      cv.notify_all();
    };
    const int64_t t0_us = epoch_us();
    auto t0 = Clock::now();
    auto p = hpo::worker::TrialProcess::Start(spec, [&](auto, const std::string& line) {
      long long a = 0, b = 0;
      if (std::sscanf(line.c_str(), "us %lld %lld", &a, &b) == 2) main_us = a, end_us = b;
    }, po);
    auto t1 = Clock::now();
    if (!p.ok()) {
      std::fprintf(stderr, "start failed: %s\n", p.status().message().c_str());
      return 1;
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return exited; });
    }
    (*p)->Wait();
    start_ms.push_back(Ms(t1 - t0));
    total_ms.push_back(Ms(exit_at - t0));
    if (end_us) {
      to_main_ms.push_back((main_us - t0_us) / 1000.0);
      end_to_noticed_ms.push_back((exit_us - end_us) / 1000.0);
    }
    p->reset();
  }
  double wall = Ms(Clock::now() - wall0);
  stop = true;
  for (auto& t : bg) t.join();
  rusage r1{}, c1{};
  ::getrusage(RUSAGE_SELF, &r1);
  ::getrusage(RUSAGE_CHILDREN, &c1);
  auto cpu = [](const rusage& a, const rusage& b) {
    return (b.ru_utime.tv_sec - a.ru_utime.tv_sec + b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1e3 +
           (b.ru_utime.tv_usec - a.ru_utime.tv_usec + b.ru_stime.tv_usec - a.ru_stime.tv_usec) / 1e3;
  };
  std::printf("%d launches of %s%s, rss %d MB, %d busy threads, wall %.0f ms\n", n, program.c_str(),
              mounts ? " (mount namespace, 2 bind mounts)" : "", rss_mb, threads, wall);
  std::printf("  Start(): mean %.3f p50 %.3f p99 %.3f ms\n", Mean(start_ms), Pct(start_ms, 50), Pct(start_ms, 99));
  std::printf("  Start() -> exit noticed: mean %.3f p50 %.3f p99 %.3f ms\n", Mean(total_ms), Pct(total_ms, 50),
              Pct(total_ms, 99));
  if (!to_main_ms.empty()) {
    std::printf("  Start() called -> program's main(): mean %.3f p50 %.3f p99 %.3f ms\n", Mean(to_main_ms),
                Pct(to_main_ms, 50), Pct(to_main_ms, 99));
    std::printf("  program's last instruction -> exit noticed (on_exit): mean %.3f p50 %.3f p99 %.3f ms\n",
                Mean(end_to_noticed_ms), Pct(end_to_noticed_ms, 50), Pct(end_to_noticed_ms, 99));
  }
  std::printf("  CPU per launch: worker %.3f ms, programs %.3f ms (background threads included in worker)\n",
              cpu(r0, r1) / n, cpu(c0, c1) / n);
  std::printf("  background malloc+free iterations over 0.2 ms: %zu, p99 of those %.2f ms, max %.2f ms\n",
              stalls.size(), Pct(stalls, 99), stalls.empty() ? 0.0 : *std::max_element(stalls.begin(), stalls.end()));
  std::string cleanup = "rm -rf " + dir;
  return std::system(cleanup.c_str()) == 0 ? 0 : 1;
}
