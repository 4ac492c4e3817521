// The worker's lease (worker/agent_impl.h lease_anchor_ms): a real WorkerAgent against a
// coordinator played by the test on a ZeroMQ ROUTER socket, so that what the coordinator says,
// and when, is exact. An ended attempt's upload waits until the coordinator has acknowledged a
// heartbeat sent within half a lease; what it says before that ack (a revocation) is applied
// first. Hearing something, anything, is not enough: an ack of an old heartbeat (delivered late by
// a slow link, or read first after a pause) says nothing about whether the coordinator, which may
// have counted this worker lost since, still counts the attempt here.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "proto/messages.h"
#include "worker/agent.h"

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;
namespace wire = proto::wire;
using Clock = std::chrono::steady_clock;

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// A worker "w1" on `dir`/work connecting to `endpoint`, logging to `log`.
AgentOptions TestAgentOptions(const std::string& endpoint, const fs::path& dir, int64_t shutdown_extra_ms,
                              std::function<void(const std::string&)> log) {
  AgentOptions o;
  o.connect = endpoint;
  o.worker_id = "w1";
  o.host = "lease-host";
  o.work_dir = (dir / "work").string();
  o.namespaces = false;
  o.shutdown_extra_ms = shutdown_extra_ms;
  o.log = std::move(log);
  return o;
}

// The coordinator's side: one ROUTER socket, one worker.
class FakeCoordinator {
 public:
  FakeCoordinator() {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }

  // The next message within `ms`, or nothing.
  std::optional<wire::Message> Receive(int ms) {
    zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, std::chrono::milliseconds(ms)) <= 0) return std::nullopt;
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(router_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return std::nullopt;
    if (parts.size() < 2) return std::nullopt;
    peer_ = parts[0].to_string();
    std::vector<std::string> frames;
    for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
    auto m = wire::DecodeFrames(frames);
    if (!m.ok()) return std::nullopt;
    return std::move(m).value();
  }
  void Send(const wire::Message& m) {
    ASSERT_FALSE(peer_.empty()) << "nothing heard from the worker yet";
    std::vector<std::string> frames = wire::EncodeFrames(m);
    router_.send(zmq::buffer(peer_), zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      router_.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void AckHeartbeat(uint64_t seq) { Send(wire::Ack{static_cast<uint16_t>(wire::MsgType::kHeartbeat), "", 0, seq}); }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::string endpoint_;
  std::string peer_;
};

class Lease : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("hpo-lease-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
    // A training program: writes its model, prints its loss, ends after `SLEEP_S` seconds.
    program_ = dir_ / "train.sh";
    std::ofstream(program_) << "#!/bin/sh\n[ -z \"$LEDGER\" ] || echo \"start $NAME\" >> \"$LEDGER\"\n"
                               "echo weights > \"$SM_MODEL_DIR/weights.txt\"\necho loss=0.5\n"
                               "sleep \"$SLEEP_S\"\necho loss=0.25\n[ -z \"$LEDGER\" ] || echo \"end $NAME\" >> \"$LEDGER\"\n";
    fs::permissions(program_, fs::perms::owner_all);

    AgentOptions o = TestAgentOptions(coordinator_.endpoint(), dir_, 500, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_ += line + "\n";
    });
    o.stop_signal_unix_ns = &signalled_ns_;  // 0: no stop signal (a test sets it to play one)
    agent_ = std::make_unique<WorkerAgent>(std::move(o));
    thread_ = std::thread([this] { (void)agent_->Run(stop_); });

    // Registration: heartbeats every 100 ms, a lease of 4 s (uploads wait past 2 s without an ack).
    for (auto start = Clock::now(); MsSince(start) < 10000;) {
      auto m = coordinator_.Receive(100);
      if (m && std::holds_alternative<wire::Register>(*m)) {
        wire::RegisterAck ack;
        ack.protocol_version = wire::kProtocolVersion;
        ack.accepted = true;
        ack.heartbeat_interval_ms = 100;
        ack.lease_ms = kLeaseMs;
        coordinator_.Send(ack);
        return;
      }
    }
    FAIL() << "no Register within 10 s";
  }
  void TearDown() override {
    stop_ = true;
    // Its shutdown notice and reports are not answered: it gives up after shutdown_extra_ms.
    if (thread_.joinable()) thread_.join();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  wire::AssignTrial Assign(const std::string& trial, double seconds) {
    wire::AssignTrial a;
    a.trial = trial;
    a.attempt = 1;
    a.tuning_job = "lease";
    a.image = program_.string();
    a.metric_definitions = {{"loss", "loss=([0-9.]+)"}};
    a.objective_metric = "loss";
    a.environment = {{"SLEEP_S", std::to_string(seconds)}};
    a.max_runtime_s = 600;
    a.grace_period_s = 1;
    a.hosts = {"algo-1"};
    a.current_host = "algo-1";
    a.instance_type = "ml.m5.large";
    a.input_mode = "File";
    a.output_path = "file://" + (dir_ / "out").string();
    return a;
  }
  // The coordinator's "no longer yours" for attempt 1 of `trial` (its heartbeat reconciliation).
  static wire::StopTrial Revoke(const std::string& trial) {
    wire::StopTrial revoke;
    revoke.trial = trial;
    revoke.attempt = 1;
    revoke.reason = wire::kStopReasonRevoked;
    revoke.grace_period_s = 1;
    return revoke;
  }
  fs::path Model(const std::string& trial) const { return dir_ / "out" / trial / "output" / "model.tar.gz"; }
  std::string Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }

  // Plays the coordinator for `ms`: heartbeats are acknowledged when `ack` says so, and kept
  // (seq, when heard) either way; the exit report, if one comes, is returned.
  std::optional<wire::TrialExited> Serve(int ms, bool ack, std::deque<std::pair<uint64_t, Clock::time_point>>* held) {
    std::optional<wire::TrialExited> exited;
    for (auto start = Clock::now(); MsSince(start) < ms;) {
      auto m = coordinator_.Receive(20);
      if (!m) continue;
      if (const auto* h = std::get_if<wire::Heartbeat>(&*m)) {
        if (ack) coordinator_.AckHeartbeat(h->seq);
        if (held) held->emplace_back(h->seq, Clock::now());
      } else if (const auto* x = std::get_if<wire::TrialExited>(&*m)) {
        exited = *x;
        coordinator_.Send(wire::Ack{static_cast<uint16_t>(wire::MsgType::kTrialExited), x->trial, x->attempt, x->seq});
      }
    }
    return exited;
  }

  static constexpr uint32_t kLeaseMs = 4000;
  fs::path dir_, program_;
  FakeCoordinator coordinator_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> signalled_ns_{0};
  std::unique_ptr<WorkerAgent> agent_;
  std::thread thread_;
  std::mutex log_mu_;
  std::string log_;
};

// The coordinator goes quiet while the program runs (it has counted this worker lost, as it would
// behind a partition or a pause). The program ends; the upload waits. Then an ack of a heartbeat
// sent 3 s before arrives (a slow link's): the worker has heard something, but that heartbeat is
// older than half a lease (2 s), so nothing is uploaded. Then the coordinator answers a new
// heartbeat: the attempt is revoked (the StopTrial before the ack, as the coordinator sends them)
// and its model is never written, where the re-run elsewhere puts its own.
TEST_F(Lease, AnOldHeartbeatsAckDoesNotReleaseTheUploadAndARevocationBeforeTheAckCancelsIt) {
  // A control first: with the coordinator answering, a completed attempt's model goes up.
  coordinator_.Send(Assign("lease-control", 0.2));
  auto control = Serve(5000, /*ack=*/true, nullptr);
  ASSERT_TRUE(control.has_value()) << Log();
  EXPECT_EQ(control->status, "Completed") << Log();
  EXPECT_TRUE(fs::exists(Model("lease-control"))) << "a control: the upload works at all\n" << Log();

  coordinator_.Send(Assign("lease-stale", 2.6));
  Serve(300, /*ack=*/true, nullptr);  // it starts
  // The program ends meanwhile, over half a lease after the last acknowledged heartbeat.
  std::deque<std::pair<uint64_t, Clock::time_point>> held;
  auto quiet = Serve(3000, /*ack=*/false, &held);
  EXPECT_FALSE(quiet.has_value()) << "no report before its upload's fence is passed\n" << Log();
  ASSERT_GE(held.size(), 10u) << "heartbeats keep coming while it waits";
  ASSERT_GE(MsSince(held.front().second), 2500);
  coordinator_.AckHeartbeat(held.front().first);  // an old heartbeat's ack, arriving now
  Serve(500, /*ack=*/false, &held);  // under a lease (4 s) since the last message: no reconnection
  EXPECT_FALSE(fs::exists(Model("lease-stale"))) << "uploaded on an old heartbeat's ack\n" << Log();

  // The coordinator answers the newest heartbeat: it no longer runs the attempt here.
  coordinator_.Send(Revoke("lease-stale"));
  coordinator_.AckHeartbeat(held.back().first);
  auto report = Serve(3000, /*ack=*/true, nullptr);
  ASSERT_TRUE(report.has_value()) << "the revoked attempt is reported\n" << Log();
  EXPECT_FALSE(fs::exists(Model("lease-stale"))) << "a revoked attempt's model was uploaded\n" << Log();
  EXPECT_NE(Log().find("lease-stale attempt 1: not uploaded: the coordinator no longer counts this attempt"),
            std::string::npos)
      << Log();
}

// An assignment read while the lease is stale (a worker that was paused reads what waited in its
// socket) does not start: the coordinator may have given the attempt to another worker since.
// Revoked then, it never starts; its end is reported. (The program started as the worker woke,
// staged or not, and ran until its revocation arrived.)
TEST_F(Lease, AnAssignmentReadUnderAStaleLeaseStartsOnlyOnceTheCoordinatorConfirmsIt) {
  Serve(300, /*ack=*/true, nullptr);
  std::deque<std::pair<uint64_t, Clock::time_point>> held;
  Serve(2300, /*ack=*/false, &held);  // over half a lease (2 s) without an ack
  coordinator_.Send(Assign("lease-late", 0.2));
  // Watched for 600 ms: no TrialStarted, and nothing started in the log.
  bool started = false;
  for (auto start = Clock::now(); MsSince(start) < 600;) {
    auto m = coordinator_.Receive(20);
    if (!m) continue;
    started |= std::holds_alternative<wire::TrialStarted>(*m);
    if (const auto* h = std::get_if<wire::Heartbeat>(&*m)) held.emplace_back(h->seq, Clock::now());
  }
  EXPECT_FALSE(started) << Log();
  EXPECT_EQ(Log().find("started lease-late"), std::string::npos) << Log();
  coordinator_.Send(Revoke("lease-late"));
  coordinator_.AckHeartbeat(held.back().first);
  auto report = Serve(3000, /*ack=*/true, nullptr);
  ASSERT_TRUE(report.has_value()) << "its end is reported\n" << Log();
  EXPECT_EQ(report->exit_code, -1) << "no program ran\n" << Log();
  EXPECT_EQ(Log().find("started lease-late"), std::string::npos) << Log();

  // Confirmed instead, an assignment read so starts at once (a control: the fence lets go).
  coordinator_.Send(Assign("lease-on-time", 0.2));
  auto ran = Serve(5000, /*ack=*/true, nullptr);
  ASSERT_TRUE(ran.has_value()) << Log();
  EXPECT_EQ(ran->status, "Completed") << Log();
}

// Assigned under a stale lease (as after a coordinator restart, before the first heartbeat's ack),
// an attempt waits; one assigned ahead to start after it waits for it in turn. Taken for not
// running (it had no program yet), the successor started beside it once the lease was fresh: two
// programs in one slot, past the job's MaxParallelTrainingJobs (a soak caught it).
TEST_F(Lease, AnAttemptAssignedAheadOfOneAwaitingItsLeaseWaitsForIt) {
  Serve(300, /*ack=*/true, nullptr);
  std::deque<std::pair<uint64_t, Clock::time_point>> held;
  Serve(2300, /*ack=*/false, &held);  // over half a lease (2 s) without an ack
  const std::string ledger = (dir_ / "ledger").string();  // the programs' own starts and ends
  wire::AssignTrial first = Assign("lease-first", 0.6);
  first.environment["LEDGER"] = ledger;
  first.environment["NAME"] = "first";
  coordinator_.Send(first);
  wire::AssignTrial second = Assign("lease-second", 0.2);
  second.environment["LEDGER"] = ledger;
  second.environment["NAME"] = "second";
  second.after_trial = "lease-first";
  second.after_attempt = 1;
  coordinator_.Send(second);
  Serve(300, /*ack=*/false, &held);
  EXPECT_NE(Log().find("lease-second attempt 1 queued to start when lease-first attempt 1 ends"), std::string::npos)
      << Log();
  coordinator_.AckHeartbeat(held.back().first);  // the lease: both run, one after the other
  int reports = 0;
  for (auto start = Clock::now(); MsSince(start) < 8000 && reports < 2;) {
    auto m = coordinator_.Receive(20);
    if (!m) continue;
    if (const auto* h = std::get_if<wire::Heartbeat>(&*m)) coordinator_.AckHeartbeat(h->seq);
    if (const auto* x = std::get_if<wire::TrialExited>(&*m)) {
      ++reports;
      coordinator_.Send(wire::Ack{static_cast<uint16_t>(wire::MsgType::kTrialExited), x->trial, x->attempt, x->seq});
    }
  }
  ASSERT_EQ(reports, 2) << Log();
  std::ifstream in(ledger);
  std::string order((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(order, "start first\nend first\nstart second\nend second\n") << "one program at a time\n" << Log();
}

// Heartbeats say which held attempts have ended: a program that ran is listed as running, then,
// once it ended and only its exit report waits for an acknowledgement, as ended. A coordinator
// that does not know the attempt (one started on another state directory) counted a slot for it
// for as long as the worker kept the report: until the right coordinator came back.
TEST_F(Lease, HeartbeatsSayWhichHeldAttemptsHaveEndedAndOnlyWaitForTheirExitsAcknowledgement) {
  Serve(300, /*ack=*/true, nullptr);
  coordinator_.Send(Assign("lease-held", 0.3));
  bool seen_running = false, seen_ended = false, exited = false;
  for (auto start = Clock::now(); MsSince(start) < 8000 && !seen_ended;) {
    auto m = coordinator_.Receive(20);
    if (!m) continue;
    if (std::holds_alternative<wire::TrialExited>(*m)) exited = true;  // never acknowledged
    const auto* h = std::get_if<wire::Heartbeat>(&*m);
    if (!h) continue;
    coordinator_.AckHeartbeat(h->seq);
    for (const auto& r : h->running) {
      if (r.trial != "lease-held") continue;
      if (!r.ended) {
        EXPECT_FALSE(exited) << "listed as running after its exit report was sent\n" << Log();
        seen_running = true;
      } else {
        EXPECT_TRUE(exited) << "listed as ended before its exit report was sent\n" << Log();
        EXPECT_EQ(h->free_slots, 1u) << "an ended attempt holds no slot here either";
        seen_ended = true;
      }
    }
  }
  EXPECT_TRUE(seen_running) << Log();
  EXPECT_TRUE(seen_ended) << "held, unacknowledged, marked ended\n" << Log();
}

// A worker whose coordinator is away (paused, restarting) retries its Register up to a second
// apart. Its connection coming up once the coordinator is back now brings the Register at once:
// the training jobs the coordinator would give it waited for the next retry (a reviewer measured
// up to 1.0 s after each pause).
TEST(LeaseRegister, AWorkerRegistersAsSoonAsItsConnectionComesUp) {
  std::string endpoint;
  {
    zmq::context_t probe_ctx{1};
    zmq::socket_t probe{probe_ctx, zmq::socket_type::router};
    probe.set(zmq::sockopt::linger, 0);
    probe.bind("tcp://127.0.0.1:*");
    endpoint = probe.get(zmq::sockopt::last_endpoint);
  }  // nothing listens there now
  const fs::path dir = fs::path(::testing::TempDir()) / ("hpo-lease-reg-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  WorkerAgent agent(TestAgentOptions(endpoint, dir, 200, [](const std::string&) {}));
  std::atomic<bool> stop{false};
  std::thread run([&] { (void)agent.Run(stop); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // its retries are a second apart by now

  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  router.set(zmq::sockopt::linger, 0);
  ASSERT_EQ(zmq_socket_monitor(router.handle(), "inproc://register-monitor", ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
  zmq::socket_t monitor{ctx, zmq::socket_type::pair};
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect("inproc://register-monitor");
  router.bind(endpoint);
  std::optional<Clock::time_point> up, registered;
  for (auto start = Clock::now(); MsSince(start) < 10000 && !registered;) {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {monitor.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 2, std::chrono::milliseconds(20)) <= 0) continue;
    if (items[1].revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> event;
      (void)zmq::recv_multipart(monitor, std::back_inserter(event), zmq::recv_flags::dontwait);
      if (!up) up = Clock::now();
    }
    if (items[0].revents & ZMQ_POLLIN) {
      std::vector<zmq::message_t> parts;
      (void)zmq::recv_multipart(router, std::back_inserter(parts), zmq::recv_flags::dontwait);
      std::vector<std::string> frames;
      for (size_t i = 1; i < parts.size(); ++i) frames.push_back(parts[i].to_string());
      auto m = wire::DecodeFrames(frames);
      if (m.ok() && std::holds_alternative<wire::Register>(*m)) registered = Clock::now();
    }
  }
  stop = true;
  run.join();
  fs::remove_all(dir);
  ASSERT_TRUE(up) << "the connection never came up";
  ASSERT_TRUE(registered) << "no Register within 10 s";
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(*registered - *up).count();
  EXPECT_LT(after, 300) << "the Register came " << after << " ms after the connection, at a retry";
}

// A coordinator slow to answer (a restart) gets the Register again and again; it answers every
// copy. The first answer registers the worker; the others are copies: the worker logged
// "registered" and re-sent every unacknowledged report once per copy (up to 9 times a restart).
TEST(LeaseRegister, AnswersToRegistersSentAgainRegisterOnce) {
  FakeCoordinator coordinator;
  const fs::path dir = fs::path(::testing::TempDir()) / ("hpo-lease-dup-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::mutex mu;
  std::string log;
  WorkerAgent agent(TestAgentOptions(coordinator.endpoint(), dir, 200, [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    log += line + "\n";
  }));
  std::atomic<bool> stop{false};
  std::thread run([&] { (void)agent.Run(stop); });
  int registers = 0;
  for (auto start = Clock::now(); MsSince(start) < 2500;) {  // unanswered: it sends copies
    auto m = coordinator.Receive(50);
    registers += m && std::holds_alternative<wire::Register>(*m);
  }
  wire::RegisterAck ack;
  ack.protocol_version = wire::kProtocolVersion;
  ack.accepted = true;
  ack.heartbeat_interval_ms = 100;
  ack.lease_ms = 4000;
  for (int i = 0; i < 4; ++i) coordinator.Send(ack);  // an answer to each copy
  int heartbeats = 0;
  for (auto start = Clock::now(); MsSince(start) < 500;) {
    auto m = coordinator.Receive(20);
    heartbeats += m && std::holds_alternative<wire::Heartbeat>(*m);
  }
  stop = true;
  run.join();
  fs::remove_all(dir);
  EXPECT_GE(registers, 3) << "copies sent while unanswered";
  size_t said = 0;
  for (size_t at = log.find("registered with"); at != std::string::npos; at = log.find("registered with", at + 1)) ++said;
  EXPECT_EQ(said, 1u) << log;
  EXPECT_LE(heartbeats, 8) << "one heartbeat per answer on top of the 100 ms ones";
}

// The signal that stops this worker (a scancel's SIGTERM) has come, and its loop has yet to act
// on it, when an assignment with nothing to stage arrives: the program is not started (it was, 5
// ms after the worker's own interruption report, and came back Interrupted at once, spending an
// attempt in a cancelled allocation). The stop hands it back as not started.
TEST_F(Lease, AnAssignmentThatComesAfterTheStopSignalIsNotStarted) {
  Serve(500, true, nullptr);  // a fresh lease: an assignment with nothing to stage would start at once
  signalled_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  coordinator_.Send(Assign("late", 5));
  Serve(1500, true, nullptr);
  EXPECT_EQ(Log().find("worker: started late"), std::string::npos) << Log();
  EXPECT_FALSE(fs::exists(dir_ / "work" / "trials" / "late" / "attempt-1" / "trial.log") &&
               fs::file_size(dir_ / "work" / "trials" / "late" / "attempt-1" / "trial.log") > 0)
      << "its program ran";
}

}  // namespace
}  // namespace hpo::worker
