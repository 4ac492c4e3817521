// tests/coordinator/fake_worker.h: a ZeroMQ DEALER speaking the wire protocol as a worker would,
// against a real Dispatcher on loopback, and the helpers the dispatcher's tests share.
#pragma once

#include <chrono>
#include <iterator>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "proto/messages.h"

namespace hpo::coordinator {

// A worker's Register under `id`, protocol of this build.
inline proto::wire::Register RegisterOf(const std::string& id, uint32_t cpus = 1, uint64_t memory_mb = 1024) {
  proto::wire::Register r;
  r.protocol_version = proto::wire::kProtocolVersion;
  r.worker_id = id;
  r.host = "127.0.0.1";
  r.cpus = cpus;
  r.memory_mb = memory_mb;
  r.slots = 1;
  r.session = 7;
  return r;
}

class FakeWorker {
 public:
  // `routing_id` false: the socket sets none, and ZeroMQ makes one up (a NUL byte first).
  // `connection`: the routing id, when not the worker id (a worker connects as "<id>/<session>").
  FakeWorker(zmq::context_t& ctx, const std::string& endpoint, const std::string& id, bool routing_id = true,
             const std::string& connection = "")
      : sock_(ctx, zmq::socket_type::dealer), id_(id) {
    if (routing_id) sock_.set(zmq::sockopt::routing_id, connection.empty() ? id : connection);
    sock_.set(zmq::sockopt::linger, 0);
    if (endpoint.find('[') != std::string::npos) sock_.set(zmq::sockopt::ipv6, true);  // tcp://[::1]:PORT
    sock_.connect(endpoint);
  }
  void Send(const proto::wire::Message& m) {
    const std::vector<std::string> frames = proto::wire::EncodeFrames(m);
    for (size_t i = 0; i < frames.size(); ++i) {
      sock_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void Register(uint32_t cpus = 1, uint64_t memory_mb = 1024) { Send(RegisterOf(id_, cpus, memory_mb)); }
  void Send(proto::wire::Register r) { Send(proto::wire::Message(std::move(r))); }
  void Heartbeat() {
    proto::wire::Heartbeat h;
    h.worker_id = id_;
    h.seq = ++seq_;
    h.free_slots = 1;
    Send(h);
    Drain();
  }
  // Reads every message waiting at the socket into received().
  void Drain() {
    std::vector<zmq::message_t> parts;
    while (zmq::recv_multipart(sock_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      std::vector<std::string> frames;
      for (const auto& p : parts) frames.push_back(p.to_string());
      if (Result<proto::wire::Message> m = proto::wire::DecodeFrames(frames); m.ok()) received_.push_back(std::move(*m));
      parts.clear();
    }
  }
  const std::vector<proto::wire::Message>& received() const { return received_; }
  template <class T>
  size_t Count() const {
    size_t n = 0;
    for (const auto& m : received_) n += std::holds_alternative<T>(m) ? 1 : 0;
    return n;
  }

 private:
  zmq::socket_t sock_;
  std::string id_;
  uint64_t seq_ = 0;
  std::vector<proto::wire::Message> received_;
};

inline bool Registered(Dispatcher& d, const std::string& id) {
  return d.WithCore([&](CoordinatorCore& core) {
    for (const WorkerInfo* w : core.Workers()) {
      if (w->reg.worker_id == id) return true;
    }
    return false;
  });
}

// A worker registered within two seconds.
inline bool WaitRegistered(Dispatcher& d, const std::string& id) {
  for (int i = 0; i < 200 && !Registered(d, id); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return Registered(d, id);
}

// Any free loopback port, a 10 ms tick, no log.
inline DispatcherOptions LoopbackOptions() {
  DispatcherOptions dopt;
  dopt.listen = "tcp://127.0.0.1:*";
  dopt.tick_ms = 10;
  dopt.log = [](const std::string&) {};
  return dopt;
}

}  // namespace hpo::coordinator
