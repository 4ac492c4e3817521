// The dispatcher loop against a real ZeroMQ DEALER standing in for a worker: leases are judged
// at the time the socket was last read, never against time the loop spent inside the core.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/job_store.h"
#include "proto/messages.h"

namespace hpo::coordinator {
namespace {

using namespace std::chrono_literals;

class FakeWorker {
 public:
  FakeWorker(zmq::context_t& ctx, const std::string& endpoint, const std::string& id) : sock_(ctx, zmq::socket_type::dealer), id_(id) {
    sock_.set(zmq::sockopt::routing_id, id);
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect(endpoint);
  }
  void Send(const proto::wire::Message& m) {
    const std::vector<std::string> frames = proto::wire::EncodeFrames(m);
    for (size_t i = 0; i < frames.size(); ++i) {
      sock_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void Register() {
    proto::wire::Register r;
    r.worker_id = id_;
    r.host = "127.0.0.1";
    r.cpus = 1;
    r.memory_mb = 1024;
    r.slots = 1;
    r.session = 7;
    Send(r);
  }
  void Heartbeat() {
    proto::wire::Heartbeat h;
    h.worker_id = id_;
    h.seq = ++seq_;
    h.free_slots = 1;
    Send(h);
    // Replies are not needed; keep the socket's queue short.
    std::vector<zmq::message_t> parts;
    while (zmq::recv_multipart(sock_, std::back_inserter(parts), zmq::recv_flags::dontwait)) parts.clear();
  }

 private:
  zmq::socket_t sock_;
  std::string id_;
  uint64_t seq_ = 0;
};

bool Registered(Dispatcher& d, const std::string& id) {
  return d.WithCore([&](CoordinatorCore& core) {
    for (const WorkerInfo* w : core.Workers()) {
      if (w->reg.worker_id == id) return true;
    }
    return false;
  });
}

TEST(Dispatcher, TimeSpentInsideTheCoreDoesNotCountAgainstAWorkersLease) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  co.heartbeat_interval_ms = 50;
  co.lease_ms = 300;
  CoordinatorCore core(store->get(), co);
  std::atomic<bool> stall{false};
  DispatcherOptions dopt;
  dopt.listen = "tcp://127.0.0.1:*";
  dopt.tick_ms = 10;
  dopt.log = [](const std::string&) {};
  // A slow batch (a proposal on a loaded machine, a slow fsync): well over the lease.
  dopt.after_batch = [&] {
    if (stall.exchange(false)) std::this_thread::sleep_for(900ms);
  };
  Dispatcher d(&core, dopt);
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });

  zmq::context_t ctx;
  FakeWorker w(ctx, d.endpoint(), "w1");
  w.Register();
  for (int i = 0; i < 200 && !Registered(d, "w1"); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(Registered(d, "w1"));

  // Heartbeats every 50 ms throughout; the core stalls once for three leases.
  stall = true;
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    w.Heartbeat();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_FALSE(stall.load()) << "the stall never ran";
  EXPECT_TRUE(Registered(d, "w1")) << "a worker heartbeating throughout was declared lost";

  // The lease still ends for a worker that really went silent.
  std::this_thread::sleep_for(800ms);
  EXPECT_FALSE(Registered(d, "w1"));

  stop = true;
  loop.join();
}

}  // namespace
}  // namespace hpo::coordinator
