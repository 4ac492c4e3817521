// worker/handshake_monitor.h: says, in the worker's log, why a connection to the coordinator
// does not come up.
//
// ZeroMQ reconnects silently; when the coordinator refuses this worker's CurveZMQ key (its ZAP
// handler answers 400), or the two sides disagree on security (one uses CURVE, the other not; a
// wrong coordinator public key), the worker would otherwise just wait forever. A
// HandshakeMonitor watches one socket's handshake events (zmq_socket_monitor) on its own thread
// and logs each kind of failure with what to do about it: the first time, when the kind changes,
// and then at most every 30 s; and one line when a handshake succeeds after failures.
//
// Lifetime and threads: construct it on the thread that owns the socket, right after the socket
// is created (before connect); destroy it on that thread before the socket is closed and before
// the context is terminated. The log callback is called from the monitor's thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace hpo::worker {

class HandshakeMonitor {
 public:
  // zmq_context / zmq_socket: raw libzmq handles (zmq::context_t::handle(), socket_t::handle()).
  // endpoint: what the socket connects to; public_key: this worker's CurveZMQ public key ("" when
  // CurveZMQ is off), both for the messages.
  HandshakeMonitor(void* zmq_context, void* zmq_socket, std::string endpoint, std::string public_key,
                   std::function<void(const std::string&)> log);
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // Handshakes that failed since construction (all kinds). Thread-safe.
  uint64_t failures() const { return failures_.load(); }
  // Handshakes that succeeded since construction: a connection is up. Thread-safe. The worker
  // registers at once on a new one (its Register retries wait up to a second apart, and a copy
  // sent while no connection was up went nowhere).
  uint64_t successes() const { return successes_.load(); }

 private:
  void Loop(void* pair);
  void* socket_;
  std::string endpoint_, public_key_;
  std::function<void(const std::string&)> log_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> failures_{0}, successes_{0};
  std::thread thread_;
};

}  // namespace hpo::worker
