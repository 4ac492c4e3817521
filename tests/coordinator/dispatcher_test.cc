// The dispatcher loop against a real ZeroMQ DEALER standing in for a worker: leases are judged
// at the time the socket was last read, never against time the loop spent inside the core, and
// a Bayesian proposal runs on a proposer thread while the loop and the core keep serving, and a
// small job's proposal does not wait behind a large job's.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
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
#include "tests/coordinator/core_fixture.h"
#include "tests/coordinator/fake_worker.h"

namespace hpo::coordinator {
namespace {

using namespace std::chrono_literals;

// Submits a job through the dispatcher, as the HTTP API does.
bool SubmitThrough(Dispatcher& d, const proto::TuningJobSpec& spec) {
  return d.WithCore([&](CoordinatorCore& c) {
    std::vector<Outgoing> out;
    const bool ok = c.Submit(spec, proto::Spelling::kCrd, d.Now(), &out).ok();
    d.Post(std::move(out));
    return ok;
  });
}

// A dispatcher on loopback over an in-memory store, running its loop on a thread, whose log lines
// are kept (Logged) until it is destroyed.
struct LoggingDispatcher {
  std::unique_ptr<SqliteJobStore> store = std::move(SqliteJobStore::Open(":memory:")).value();
  CoordinatorCore core{store.get(), CoreOptions{}};
  std::mutex log_mu;
  std::vector<std::string> logged;
  Dispatcher d{&core, [this] {
                 DispatcherOptions o = LoopbackOptions();
                 o.log = [this](const std::string& l) {
                   std::lock_guard<std::mutex> lock(log_mu);
                   logged.push_back(l);
                 };
                 return o;
               }()};
  std::atomic<bool> stop{false};
  std::thread loop;
  LoggingDispatcher() {
    EXPECT_TRUE(d.Bind().ok());
    loop = std::thread([this] { d.Run(stop); });
  }
  ~LoggingDispatcher() {
    stop = true;
    loop.join();
  }
  // The first line logged so far that holds `text` ("" when none does).
  std::string Logged(const std::string& text) {
    std::lock_guard<std::mutex> lock(log_mu);
    for (const auto& l : logged) {
      if (l.find(text) != std::string::npos) return l;
    }
    return "";
  }
};

// Holds the proposals of one job (every job: "") on the proposer thread until Release: a model
// fitted on thousands of trials, as long as the test says. Install with Hook().
class ProposalGate {
 public:
  explicit ProposalGate(std::string job = "") : job_(std::move(job)) {}
  std::function<void(const std::string&)> Hook() {
    return [this](const std::string& job) {
      if (!job_.empty() && job != job_) return;
      std::unique_lock<std::mutex> lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait_for(lock, 20s, [&] { return released_; });
    };
  }
  bool WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return entered_; });
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::string job_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false;
};

// A security pass: tcp://[::]:PORT and tcp://[::1]:PORT failed with "No such device" (ZeroMQ's
// IPv6 is off by default); a worker reaches it over IPv6. (Skipped where this machine has no IPv6
// loopback.)
TEST(Dispatcher, ListensOnAnIpv6AddressAndAWorkerRegistersOverIt) {
  zmq::context_t ctx;
  {
    zmq::socket_t probe(ctx, zmq::socket_type::router);
    probe.set(zmq::sockopt::ipv6, true);
    try {
      probe.bind("tcp://[::1]:*");
    } catch (const zmq::error_t&) {
      GTEST_SKIP() << "no IPv6 loopback here";
    }
  }
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoordinatorCore core(store->get(), CoreOptions{});
  DispatcherOptions dopt = LoopbackOptions();
  dopt.listen = "tcp://[::1]:0";
  Dispatcher d(&core, dopt);
  const Status bound = d.Bind();
  ASSERT_TRUE(bound.ok()) << bound.message();
  EXPECT_EQ(d.endpoint().rfind("tcp://[::1]:", 0), 0u) << d.endpoint();
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  FakeWorker w(ctx, d.endpoint(), "v6");
  w.Register();
  EXPECT_TRUE(WaitRegistered(d, "v6"));
  stop = true;
  loop.join();
}

TEST(Dispatcher, TimeSpentInsideTheCoreDoesNotCountAgainstAWorkersLease) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  co.heartbeat_interval_ms = 50;
  co.lease_ms = 300;
  CoordinatorCore core(store->get(), co);
  std::atomic<bool> stall{false};
  DispatcherOptions dopt = LoopbackOptions();
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
  ASSERT_TRUE(WaitRegistered(d, "w1"));

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

// One worker flooding large messages made one batch of everything queued (up to 1000 messages of
// 4 MiB): the loop held the core for all of it while the ticks and every other worker waited.
// A batch now stops at DispatcherOptions::burst_bytes, and the rest comes in the next rounds.
TEST(Dispatcher, AFloodOfLargeMessagesIsTakenInBatchesOfBoundedSize) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoordinatorCore core(store->get(), CoreOptions{});
  std::atomic<bool> hold{true};
  std::atomic<Dispatcher*> dispatcher{nullptr};
  uint64_t counted = 0, largest = 0;  // messages so far; the most one batch took (loop thread)
  DispatcherOptions dopt = LoopbackOptions();
  dopt.after_batch = [&] {
    if (Dispatcher* dp = dispatcher.load()) {
      largest = std::max(largest, dp->messages_in() - counted);
      counted = dp->messages_in();
    }
    // The first batch (the Register) is held while the flood queues up behind it.
    for (int i = 0; i < 200 && hold.load(); ++i) std::this_thread::sleep_for(10ms);
  };
  Dispatcher d(&core, dopt);
  dispatcher = &d;
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  zmq::context_t ctx;
  FakeWorker w(ctx, d.endpoint(), "flood");
  w.Register();
  ASSERT_TRUE(WaitRegistered(d, "flood"));
  // 20 messages of about 3 MiB (48 lines of 64 KiB): 60 MiB, queued while the loop is held.
  proto::wire::LogLines l;
  l.trial = "nobody-001-0a1b2c3d";
  l.attempt = 1;
  l.lines.assign(48, std::string(64 << 10, 'x'));
  for (int i = 0; i < 20; ++i) {
    l.seq = static_cast<uint64_t>(i + 1);
    w.Send(l);
  }
  std::this_thread::sleep_for(500ms);  // most or all of it in the coordinator's queue
  hold = false;
  for (int i = 0; i < 500 && d.messages_in() < 21; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(100ms);
  stop = true;
  loop.join();
  EXPECT_EQ(d.messages_in(), 21u);
  // 16 MiB a batch: at most six 3 MiB messages (a batch ends with the message that passes it).
  // (Judged by the largest batch, not by their number: under load the flood may still be
  // arriving when the loop is let go, and then comes in more, smaller batches anyway.)
  EXPECT_LE(largest, 6u) << "one batch took " << largest << " of the 20 messages of the flood";
}

// Two processes under one worker id: a second worker started with a running worker's --id in
// another work directory. Both connected under the bare id, so ZeroMQ's handover gave the
// newcomer the running worker's connection before its Register was read (and refused): the
// running worker heard nothing until it reconnected, with its lease nearly out, and lost its
// training jobs when the newcomer was restarted again and again. Each process now has its own
// connection ("<id>/<session>"); the newcomer is refused on its own, and the running one goes on.
TEST(Dispatcher, ASecondProcessUnderARunningWorkersIdIsRefusedWithoutCuttingThatWorkerOff) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoordinatorCore core(store->get(), CoreOptions{});
  Dispatcher d(&core, LoopbackOptions());
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  zmq::context_t ctx;
  FakeWorker live(ctx, d.endpoint(), "wa", true, "wa/0000000000000007");
  proto::wire::Register first = RegisterOf("wa");
  first.work_dir = "/srv/a";
  live.Send(first);
  ASSERT_TRUE(WaitRegistered(d, "wa"));
  live.Heartbeat();
  // The newcomer, three times (as a service manager restarts a process that exits).
  for (int attempt = 1; attempt <= 3; ++attempt) {
    FakeWorker newcomer(ctx, d.endpoint(), "wa", true, "wa/00000000000000a" + std::to_string(attempt));
    proto::wire::Register second = RegisterOf("wa");
    second.work_dir = "/srv/b";
    second.session = 100 + static_cast<uint64_t>(attempt);
    newcomer.Send(second);
    const proto::wire::RegisterAck* refused = nullptr;
    for (int i = 0; i < 200 && refused == nullptr; ++i) {
      std::this_thread::sleep_for(10ms);
      newcomer.Drain();
      for (const auto& m : newcomer.received()) {
        if (const auto* ack = std::get_if<proto::wire::RegisterAck>(&m)) refused = ack;
      }
    }
    ASSERT_NE(refused, nullptr) << "the newcomer hears why (attempt " << attempt << ")";
    EXPECT_FALSE(refused->accepted);
    EXPECT_NE(refused->reason.find("held by a running worker on host 127.0.0.1 in /srv/a"), std::string::npos)
        << refused->reason;
    // The running worker's heartbeat is still answered, on its own connection.
    const size_t acks = live.Count<proto::wire::Ack>();
    live.Heartbeat();
    for (int i = 0; i < 200 && live.Count<proto::wire::Ack>() == acks; ++i) {
      std::this_thread::sleep_for(10ms);
      live.Drain();
    }
    EXPECT_GT(live.Count<proto::wire::Ack>(), acks) << "the running worker was cut off (attempt " << attempt << ")";
  }
  EXPECT_TRUE(Registered(d, "wa"));
  stop = true;
  loop.join();
}

// A scale pass: a worker that reconnected under its id (ZeroMQ handover) had the Register still
// queued on its old connection read under the made-up id ZeroMQ gave that connection, and a
// phantom worker with 3 slots registered under it, answered with Errors that could not be sent.
// Such messages are dropped; and a Register whose worker id is not its connection's is refused.
TEST(Dispatcher, AMessageUnderAMadeUpRoutingIdIsDroppedAndRegistersNoPhantom) {
  LoggingDispatcher ld;
  Dispatcher& d = ld.d;
  zmq::context_t ctx;
  FakeWorker anonymous(ctx, d.endpoint(), "ghost", /*routing_id=*/false);
  anonymous.Register();
  FakeWorker other(ctx, d.endpoint(), "real");
  other.Register();
  ASSERT_TRUE(WaitRegistered(d, "real")) << "a worker with its id registers";
  for (int i = 0; i < 100 && d.anonymous_in() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(d.anonymous_in(), 1u);
  const size_t workers = d.WithCore([](CoordinatorCore& c) { return c.Workers().size(); });
  EXPECT_EQ(workers, 1u) << "no phantom worker";
  anonymous.Drain();
  EXPECT_EQ(anonymous.Count<proto::wire::Error>() + anonymous.Count<proto::wire::RegisterAck>(), 0u) << "not answered";
  EXPECT_NE(ld.Logged("dropped a message from a connection without a worker id"), "");
  // A Register claiming another id than its connection's: refused, nothing registered.
  const proto::wire::Register r = RegisterOf("someone-else");
  std::vector<Outgoing> out = d.WithCore([&](CoordinatorCore& c) { return c.OnMessage("conn-id", r, d.Now()); });
  ASSERT_EQ(out.size(), 1u);
  const auto* ack = std::get_if<proto::wire::RegisterAck>(&out[0].message);
  ASSERT_NE(ack, nullptr);
  EXPECT_FALSE(ack->accepted);
  EXPECT_NE(ack->reason.find("is not this connection's id"), std::string::npos) << ack->reason;
  EXPECT_EQ(d.WithCore([](CoordinatorCore& c) { return c.Workers().size(); }), 1u);
}

// A peer that is no worker (no keys on loopback, or a scanner) sends bytes of its choosing as
// its id and its frames: the log line that rejects them had them raw (bytes >= 0x80, tabs), and
// grep called the log a binary file. They are escaped, as the other lines about ids are.
TEST(Dispatcher, ARejectedMessagesIdIsEscapedInTheLog) {
  LoggingDispatcher ld;
  zmq::context_t ctx;
  zmq::socket_t peer(ctx, zmq::socket_type::dealer);
  peer.set(zmq::sockopt::routing_id, std::string("bad\xee\xff\tid"));
  peer.connect(ld.d.endpoint());
  for (const char* frame : {"a", "b", "c"}) {
    const auto more = std::string(frame) == "c" ? zmq::send_flags::none : zmq::send_flags::sndmore;
    peer.send(zmq::buffer(std::string(frame)), more);
  }
  std::string line;
  for (int i = 0; i < 200 && line.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    line = ld.Logged("rejected a message from worker");
  }
  ASSERT_FALSE(line.empty()) << "no rejection logged";
  EXPECT_NE(line.find("'bad\\xee\\xff\\x09id'"), std::string::npos) << line;
  EXPECT_TRUE(std::all_of(line.begin(), line.end(), [](char c) { return c >= 0x20 && c < 0x7f; })) << line;
}

TEST(Dispatcher, AProposalRunsOnTheProposerThreadWhileTheCoreKeepsServing) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  co.heartbeat_interval_ms = 50;
  co.lease_ms = 300;
  co.propose_off_core = true;
  CoordinatorCore core(store->get(), co);
  ProposalGate gate;
  DispatcherOptions dopt = LoopbackOptions();
  dopt.before_proposal = gate.Hook();
  Dispatcher d(&core, dopt);
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });

  zmq::context_t ctx;
  FakeWorker w(ctx, d.endpoint(), "w1");
  w.Register(2, 16384);
  ASSERT_TRUE(WaitRegistered(d, "w1"));

  ASSERT_TRUE(SubmitThrough(d, coretest::BayesSpec("bayes", 4, 1)));
  ASSERT_TRUE(gate.WaitEntered()) << "the proposal never reached the proposer thread";

  // Held for three leases: the worker's heartbeats are served, and the core answers at once
  // (were the proposal holding the core's mutex, WithCore would wait for the release below).
  const auto until = std::chrono::steady_clock::now() + 900ms;
  while (std::chrono::steady_clock::now() < until) {
    w.Heartbeat();
    std::this_thread::sleep_for(50ms);
  }
  std::future<size_t> trials = std::async(std::launch::async, [&] {
    return d.WithCore([](CoordinatorCore& c) { return c.TrialsOf("bayes").size(); });
  });
  EXPECT_EQ(trials.wait_for(5s), std::future_status::ready) << "the core was locked during the proposal";
  EXPECT_TRUE(Registered(d, "w1")) << "a worker heartbeating throughout was declared lost";
  EXPECT_EQ(w.Count<proto::wire::AssignTrial>(), 0u);

  gate.Release();
  EXPECT_EQ(trials.get(), 0u) << "a trial existed before its proposal was made";
  for (int i = 0; i < 500 && w.Count<proto::wire::AssignTrial>() == 0; ++i) {
    w.Heartbeat();
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(w.Count<proto::wire::AssignTrial>(), 1u) << "the proposal, once made, was not assigned";
  EXPECT_GE(d.proposals_run(), 1u);

  stop = true;
  loop.join();
  EXPECT_TRUE(core.TakeProposalRequests().empty());
}

// Two Bayesian jobs; "big"'s proposal is held (a model on thousands of trials) until the test
// releases it. Returns whether "small" got its training job assigned while it was held.
bool SmallJobServedWhileBigProposes(int proposer_threads) {
  auto store = SqliteJobStore::Open(":memory:");
  EXPECT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  co.propose_off_core = true;
  CoordinatorCore core(store->get(), co);
  ProposalGate gate("big");
  DispatcherOptions dopt = LoopbackOptions();
  dopt.proposer_threads = proposer_threads;
  dopt.before_proposal = gate.Hook();
  Dispatcher d(&core, dopt);
  EXPECT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  zmq::context_t ctx;
  FakeWorker w1(ctx, d.endpoint(), "w1"), w2(ctx, d.endpoint(), "w2");
  w1.Register(2, 16384);
  w2.Register(2, 16384);
  EXPECT_TRUE(WaitRegistered(d, "w1") && WaitRegistered(d, "w2"));

  EXPECT_TRUE(SubmitThrough(d, coretest::BayesSpec("big", 4, 1)));
  EXPECT_TRUE(gate.WaitEntered()) << "big's proposal never started";
  EXPECT_TRUE(SubmitThrough(d, coretest::BayesSpec("small", 4, 1)));
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {  // up to 1 s: small's own proposal takes milliseconds
    std::this_thread::sleep_for(10ms);
    served = d.WithCore([](CoordinatorCore& c) { return c.TrialsOf("small").size(); }) == 1;
  }
  gate.Release();
  for (int i = 0; i < 500 && d.WithCore([](CoordinatorCore& c) { return c.TrialsOf("big").size(); }) == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(d.WithCore([](CoordinatorCore& c) { return c.TrialsOf("big").size(); }), 1u)
      << "big's proposal, once released, was not placed";
  stop = true;
  loop.join();
  return served;
}

TEST(Dispatcher, ASmallJobsProposalDoesNotWaitBehindALargeJobs) {
  EXPECT_TRUE(SmallJobServedWhileBigProposes(2)) << "small waited for big's proposal with two proposer threads";
  EXPECT_FALSE(SmallJobServedWhileBigProposes(1)) << "one proposer thread makes one proposal at a time, in order";
}

// A worker that heard nothing for a lease (its coordinator paused) closes its connection and opens
// another under the same routing id. An AssignTrial sent in between went nowhere, and the training
// job's slot idled until a heartbeat a lease later re-queued it (a reviewer pausing a coordinator
// 2.6-3.0 s lost 18 assignments in 20 pauses, each 3.1 s late). Its Register on the new connection
// now brings the assignment again, at once and as the same attempt.
TEST(Dispatcher, AnAssignmentSentWhileAWorkerReconnectedReachesItsNewConnection) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  co.lease_ms = 3000;
  CoordinatorCore core(store->get(), co);
  Dispatcher d(&core, LoopbackOptions());
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  zmq::context_t ctx;
  auto old = std::make_unique<FakeWorker>(ctx, d.endpoint(), "w1", true, "w1/7");
  old->Register(2, 16384);
  ASSERT_TRUE(WaitRegistered(d, "w1"));
  old.reset();  // its connection is gone
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(SubmitThrough(d, coretest::Spec("lost", "Random", 1, 1)));
  std::this_thread::sleep_for(200ms);  // the AssignTrial went to the connection that is gone
  FakeWorker fresh(ctx, d.endpoint(), "w1", true, "w1/7");
  fresh.Register(2, 16384);  // the same process (session 7), holding nothing
  const auto until = std::chrono::steady_clock::now() + 1s;
  while (fresh.Count<proto::wire::AssignTrial>() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
    fresh.Drain();
  }
  ASSERT_EQ(fresh.Count<proto::wire::AssignTrial>(), 1u) << "not within a second (a lease is 3 s)";
  for (const auto& m : fresh.received()) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&m)) {
      EXPECT_EQ(a->attempt, 1u) << "the same attempt";
    }
  }
  stop = true;
  loop.join();
}

// A deletion a stopped coordinator left part-way is finished by the next one's dispatcher, beside
// its loop, and said so in its log. Before, the job came back Completed without the logs and curves already gone.
TEST(Dispatcher, ADeletionLeftPartWayIsFinishedWhenTheCoordinatorStartsAgain) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok()) << store.status().message();
  CoreOptions co;
  int64_t now = 1'000'000;
  {
    CoordinatorCore first(store->get(), co);
    std::vector<Outgoing> out;
    for (const char* name : {"gone", "kept"}) {
      ASSERT_TRUE(first.Submit(coretest::Spec(name, "Random", 2, 1), proto::Spelling::kCrd, now, &out).ok());
      ASSERT_TRUE(first.Stop(name, now, &out).ok());  // nothing ran: it ends Stopped at once
      ASSERT_EQ(*first.Describe(name)->status.hyper_parameter_tuning_job_status, "Stopped");
    }
    ASSERT_TRUE(first.DeleteSlice("gone", now).ok());  // begun; the coordinator stops here
  }
  CoordinatorCore core(store->get(), co);
  ASSERT_EQ(*core.Describe("gone")->status.hyper_parameter_tuning_job_status, "Deleting");
  DispatcherOptions dopt = LoopbackOptions();
  std::mutex log_mu;
  std::vector<std::string> log;
  dopt.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    log.push_back(line);
  };
  Dispatcher d(&core, dopt);
  ASSERT_TRUE(d.Bind().ok());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });
  const auto until = std::chrono::steady_clock::now() + 10s;
  bool gone = false;
  while (!gone && std::chrono::steady_clock::now() < until) {
    gone = d.WithCore([](CoordinatorCore& c) { return c.FindJob("gone") == nullptr; });
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(gone);
  bool said = false;
  for (int i = 0; i < 500 && !said; ++i) {
    {
      std::lock_guard<std::mutex> lock(log_mu);
      for (const auto& l : log) said = said || l.find("finished deleting tuning job gone") != std::string::npos;
    }
    if (!said) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(said) << "the log says so: " << testing::PrintToString(log);
  EXPECT_TRUE(d.WithCore([](CoordinatorCore& c) { return c.FindJob("kept") != nullptr; }));
  EXPECT_EQ(d.DeleteTuningJob("nope").code(), StatusCode::kNotFound);
  // Once the process is stopping, a deletion gives up before its next slice (an API call deleting
  // a large job held a graceful stop for its whole length), changing nothing more.
  d.BeginShutdown();
  const Status late = d.DeleteTuningJob("kept");
  EXPECT_EQ(late.code(), StatusCode::kUnavailable) << late.ToString();
  EXPECT_NE(late.message().find("goes on when it starts again"), std::string::npos) << late.message();
  EXPECT_EQ(d.WithCore([](CoordinatorCore& c) { return c.FindJob("kept")->ShownStatus(); }), "Stopped");
  stop = true;
  loop.join();
}

}  // namespace
}  // namespace hpo::coordinator
