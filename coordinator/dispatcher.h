// coordinator/dispatcher.h: the ZeroMQ adapter of the coordinator core.
//
// A ROUTER socket; each worker connects a DEALER whose routing id is its worker id. Incoming
// frames [id, type, body] are decoded (proto/messages.h) and handed to the core with the current
// time; the core's Outgoing messages are encoded and sent. A frame that does not decode is logged
// and answered with an Error message; the dispatcher keeps serving. Every tick_ms the core's
// OnTick runs (leases, scheduling).
//
// Threads: Run() is the dispatcher's own loop and the only user of the socket. Other threads
// (the HTTP API, `hpo run`'s progress display) reach the core through WithCore(), which holds
// the core's mutex, and any Outgoing messages they produce are queued with Post() and sent by the
// loop within one poll interval.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/core.h"

namespace hpo::coordinator {

struct DispatcherOptions {
  std::string listen = "tcp://127.0.0.1:7700";  // ZeroMQ endpoint; "tcp://127.0.0.1:*" picks a port
  int64_t tick_ms = 200;                        // how often the core's OnTick runs
  int64_t poll_ms = 5;                          // how long the loop waits for a message
  std::function<int64_t()> now_ms;              // the clock; defaults to the system clock
  std::function<void(const std::string&)> log;  // one line per noteworthy event; default stderr
};

class Dispatcher {
 public:
  Dispatcher(CoordinatorCore* core, DispatcherOptions options);
  ~Dispatcher();

  // Binds the socket. Errors: the endpoint is malformed or in use.
  Status Bind();
  // The endpoint actually bound (with the port chosen for "*").
  std::string endpoint() const;
  // Serves until `stop` becomes true.
  void Run(const std::atomic<bool>& stop);

  // Runs f with the core locked; queues what it returns for sending.
  template <class F>
  auto WithCore(F&& f) {
    std::lock_guard<std::mutex> lock(core_mu_);
    return f(*core_);
  }
  // Queues messages for sending by the loop (thread-safe).
  void Post(std::vector<Outgoing> out);
  int64_t Now() const { return options_.now_ms(); }

  // Counters for progress and metrics pages.
  uint64_t messages_in() const { return messages_in_; }
  uint64_t malformed_in() const { return malformed_in_; }

 private:
  void Send(const Outgoing& o);
  void Log(const std::string& line) const;

  CoordinatorCore* core_;
  DispatcherOptions options_;
  std::mutex core_mu_;
  std::mutex post_mu_;
  std::vector<Outgoing> posted_;
  struct Sock;
  std::unique_ptr<Sock> sock_;
  std::atomic<uint64_t> messages_in_{0}, malformed_in_{0};
};

// Milliseconds since the Unix epoch from the system clock.
int64_t SystemNowMs();

}  // namespace hpo::coordinator
