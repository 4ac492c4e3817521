// State-change notifications: what the core records (CoreOptions::notify), and how the Notifier
// delivers it to a real HTTP server on loopback (retries, order, drops, signatures).
#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/hmac.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/job_store.h"
#include "coordinator/notifier.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;
using Json = nlohmann::ordered_json;

// The state the core is in for a change, as the notifications see it.
std::string StateOf(CoordinatorCore& c, const StateChange& ch) {
  if (ch.kind == StateChange::Kind::kTuningJob) return c.FindJob(ch.name)->ShownStatus();
  const Trial* t = c.FindTrial(ch.name);
  return std::string(TrainingJobStatusOf(*t)) + "/" + t->SecondaryStatus();
}

class NotifyTest : public CoreTest {
 protected:
  // Notifications whose body is "KIND NAME STATE", to target "t".
  void RecordStates() {
    options_.notify = [](CoordinatorCore& c, const StateChange& ch) {
      const char* kind = ch.kind == StateChange::Kind::kTuningJob ? "job" : "trial";
      return std::vector<Notification>{{"t", std::string(kind) + " " + ch.name + " " + StateOf(c, ch), 0}};
    };
    MakeCore();
  }
  std::vector<std::string> Bodies() {
    auto rows = store_->LoadNotifications("", 0, 100000);
    EXPECT_TRUE(rows.ok());
    std::vector<std::string> out;
    for (const auto& r : *rows) out.push_back(r.body);
    return out;
  }
  // The states notified for `name`, in order.
  std::vector<std::string> StatesOf(const std::string& name) {
    std::vector<std::string> out;
    for (const std::string& b : Bodies()) {
      const size_t a = b.find(' '), z = b.rfind(' ');
      if (b.substr(a + 1, z - a - 1) == name) out.push_back(b.substr(z + 1));
    }
    return out;
  }
  // Runs a Random job of `n` training jobs to the end on worker w1; returns their names.
  std::vector<std::string> RunJob(const std::string& name, int n) {
    Register("w1", 1);
    std::vector<std::string> names;
    auto queue = Only<proto::wire::AssignTrial>(Submit(Spec(name, "Random", n, 1)));
    while (!queue.empty()) {
      proto::wire::AssignTrial a = queue.front();
      queue.erase(queue.begin());
      names.push_back(a.trial);
      now_ += 1000;
      for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, 0.5))) queue.push_back(m);
    }
    return names;
  }
};

TEST_F(NotifyTest, EachChangeOfATrainingJobOrTuningJobIsNotifiedOnceInOrder) {
  RecordStates();
  const std::vector<std::string> names = RunJob("notes", 2);
  ASSERT_EQ(names.size(), 2u);
  for (const std::string& n : names) {
    const std::vector<std::string> states = StatesOf(n);
    ASSERT_GE(states.size(), 2u) << n;
    EXPECT_EQ(states.front(), "InProgress/Starting");
    EXPECT_EQ(states.back(), "Completed/Completed");
    for (size_t i = 1; i < states.size(); ++i) EXPECT_NE(states[i], states[i - 1]) << "a state notified twice";
  }
  EXPECT_EQ(StatesOf("notes"), (std::vector<std::string>{"InProgress", "Completed"}));
  // The last training job's end is told before the tuning job's.
  const std::vector<std::string> all = Bodies();
  const auto trial_end = std::find(all.begin(), all.end(), "trial " + names[1] + " Completed/Completed");
  const auto job_end = std::find(all.begin(), all.end(), "job notes Completed");
  ASSERT_NE(trial_end, all.end());
  ASSERT_NE(job_end, all.end());
  EXPECT_LT(trial_end - all.begin(), job_end - all.begin());
}

// A batch of messages that carries a training job's whole life (a fast program, a busy
// coordinator) is still one event per state, each of the training job as it was in that state,
// as SageMaker sends EventBridge each; nothing was told twice or out of order.
TEST_F(NotifyTest, EveryStateIsToldEvenWhenOneBatchOfMessagesCarriesSeveral) {
  options_.notify = [](CoordinatorCore& c, const StateChange& ch) {
    std::string body = std::string(ch.kind == StateChange::Kind::kTuningJob ? "job" : "trial") + " " + ch.name + " " +
                       StateOf(c, ch);
    if (ch.kind == StateChange::Kind::kTrainingJob) {
      body += " transitions=" + std::to_string(c.FindTrial(ch.name)->secondary.size());
    }
    return std::vector<Notification>{{"t", body, 0}};
  };
  MakeCore();
  Register("w1", 1);
  auto assigned = Only<proto::wire::AssignTrial>(Submit(Spec("batched", "Random", 1, 1)));
  ASSERT_EQ(assigned.size(), 1u);
  const proto::wire::AssignTrial a = assigned[0];
  auto staging = [&](std::string_view status) {
    proto::wire::TrialStaging m;
    m.trial = a.trial;
    m.attempt = a.attempt;
    m.worker_id = "w1";
    m.status = std::string(status);
    m.what = "channels train";
    return m;
  };
  now_ += 1000;
  std::vector<CoordinatorCore::Incoming> batch;
  batch.push_back({"w1", staging(proto::wire::kDownloading)});
  batch.push_back({"w1", StartedMessage("w1", a)});
  batch.push_back({"w1", PointsMessage(a, {0.25})});
  batch.push_back({"w1", staging(proto::wire::kUploading)});
  batch.push_back({"w1", ExitedMessage(a, "Completed", 1)});
  core_->OnMessages(batch, now_);
  std::vector<std::string> trial_events;
  for (const std::string& b : Bodies()) {
    const std::string head = "trial " + a.trial + " ";
    if (b.rfind(head, 0) == 0) trial_events.push_back(b.substr(head.size()));
  }
  EXPECT_EQ(trial_events, (std::vector<std::string>{"InProgress/Starting transitions=1",
                                                    "InProgress/Downloading transitions=2",
                                                    "InProgress/Training transitions=3",
                                                    "InProgress/Uploading transitions=4",
                                                    "Completed/Completed transitions=5"}));
  EXPECT_EQ(StatesOf("batched"), (std::vector<std::string>{"InProgress", "Completed"}));
  // Told once more after a restart? No: what was told is what is stored.
  const size_t told = Bodies().size();
  MakeCore();
  core_->OnTick(now_ += 1000);
  EXPECT_EQ(Bodies().size(), told);
}

// A training job whose Uploading the coordinator heard of only with its exit report (the worker's
// word as it began went nowhere while the coordinator was down; the exit report is sent again to
// the restarted one) still has its Uploading told, as its own event before Completed's: it was
// folded into Completed's, and its event was lost.
TEST_F(NotifyTest, UploadingHeardOnlyWithTheExitReportIsStillItsOwnEvent) {
  RecordStates();
  Register("w1", 1);
  auto assigned = Only<proto::wire::AssignTrial>(Submit(Spec("upl", "Random", 1, 1)));
  ASSERT_EQ(assigned.size(), 1u);
  Emit("w1", assigned[0], {0.5});
  MakeCore();  // the coordinator restarts; the worker registers again and reports the end
  Register("w1", 1, {{assigned[0].trial, assigned[0].attempt}});
  now_ += 1000;
  Exit("w1", assigned[0], "Completed");
  const std::vector<std::string> states = StatesOf(assigned[0].trial);
  ASSERT_GE(states.size(), 3u);
  EXPECT_EQ(states[states.size() - 2], "InProgress/Uploading");
  EXPECT_EQ(states.back(), "Completed/Completed");
}

// A training job assigned ahead (queued on a busy worker's slot) is not a training job to the
// API until it starts: it was notified InProgress/Starting when it was made (past
// MaxParallelTrainingJobs, with a CreationTime that later moved).
TEST_F(NotifyTest, ATrainingJobAssignedAheadIsToldOfFromItsStartOnly) {
  options_.assign_ahead = true;
  RecordStates();
  Register("w1", 1);
  auto out = Submit(Spec("ahead", "Random", 2, 2));
  std::vector<proto::wire::AssignTrial> plain, ahead;
  for (const auto& a : Only<proto::wire::AssignTrial>(out)) (a.after_trial.empty() ? plain : ahead).push_back(a);
  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(ahead.size(), 1u);
  EXPECT_TRUE(StatesOf(ahead[0].trial).empty()) << "queued, not launched";
  Finish("w1", plain[0], 0.5);
  Started("w1", ahead[0]);
  const std::vector<std::string> states = StatesOf(ahead[0].trial);
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.front(), "InProgress/Starting");
}

TEST_F(NotifyTest, ACoordinatorStartedAgainNotifiesNothingTwice) {
  RecordStates();
  RunJob("again", 2);
  const size_t before = Bodies().size();
  MakeCore();
  now_ += 5000;
  core_->OnTick(now_);
  EXPECT_EQ(Bodies().size(), before);
}

TEST_F(NotifyTest, TurnedOnOverAStoreWithJobsItNotifiesOnlyWhatChangesFromThenOn) {
  RunJob("before", 1);  // notifications off
  EXPECT_TRUE(Bodies().empty());
  RecordStates();
  core_->OnTick(now_ += 1000);
  EXPECT_TRUE(Bodies().empty()) << "what was there when they were turned on is not told";
  const std::vector<std::string> names = RunJob("after", 1);
  EXPECT_EQ(StatesOf("after"), (std::vector<std::string>{"InProgress", "Completed"}));
  EXPECT_EQ(StatesOf(names[0]).back(), "Completed/Completed");
}

TEST_F(NotifyTest, AChangeStoredWithoutItsNotificationIsNotifiedWhenTheCoreLoads) {
  RecordStates();
  const std::vector<std::string> names = RunJob("gap", 1);
  // As if the last change had been written outside a transaction and the process had died before
  // its notification: the stored notified state is an older one.
  ASSERT_TRUE(store_->PutNotified("trial:" + names[0], "InProgress/Training").ok());
  const size_t before = Bodies().size();
  MakeCore();
  core_->OnTick(now_ += 1000);
  const std::vector<std::string> all = Bodies();
  ASSERT_EQ(all.size(), before + 1);
  EXPECT_EQ(all.back(), "trial " + names[0] + " Completed/Completed");
}

TEST_F(NotifyTest, ADeletedJobTakesItsNotifiedStatesWithItAndIsToldAsDeleting) {
  RecordStates();
  const std::vector<std::string> names = RunJob("gone", 1);
  ASSERT_TRUE(core_->Delete("gone", now_ += 1000).ok());
  EXPECT_EQ(StatesOf("gone").back(), "Deleting");
  auto notified = store_->LoadNotified();
  ASSERT_TRUE(notified.ok());
  EXPECT_EQ(notified->count("job:gone"), 0u);
  EXPECT_EQ(notified->count("trial:" + names[0]), 0u);
}

TEST_F(NotifyTest, AFailingNotifyFunctionLosesNoStateAndTriesAgainLater) {
  bool fail = true;
  options_.notify = [&fail](CoordinatorCore& c, const StateChange& ch) {
    if (fail && ch.kind == StateChange::Kind::kTuningJob) throw std::runtime_error("no disk for it");
    return std::vector<Notification>{{"t", ch.name + " " + StateOf(c, ch), 0}};
  };
  MakeCore();
  RunJob("flaky", 1);
  for (const std::string& b : Bodies()) EXPECT_EQ(b.rfind("flaky ", 0), std::string::npos) << b;
  fail = false;
  MakeCore();  // its state was not notified: told when the core loads
  core_->OnTick(now_ += 1000);
  const std::vector<std::string> all = Bodies();
  EXPECT_NE(std::find(all.begin(), all.end(), "flaky Completed"), all.end());
}

// ---- the Notifier, against a real HTTP server -------------------------------------------------

struct Receiver {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::vector<std::string> bodies;          // what it took
  std::vector<httplib::Headers> headers;
  std::vector<int> answers;                 // statuses to answer, in turn (then 200)
  Receiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu);
      int status = 200;
      if (!answers.empty()) {
        status = answers.front();
        answers.erase(answers.begin());
      }
      if (status == 200) {
        bodies.push_back(req.body);
        headers.push_back(req.headers);
      }
      res.status = status;
      res.set_content(status == 200 ? "ok" : "not now", "text/plain");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~Receiver() {
    server.stop();
    thread.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
  size_t taken() {
    std::lock_guard<std::mutex> lock(mu);
    return bodies.size();
  }
};

class NotifierTest : public CoreTest {
 protected:
  // A URL on a port that was just free: nothing listens there now.
  static std::string UnreachableUrl() {
    Receiver gone;
    return gone.url();
  }
  void SetUp() override {
    CoreTest::SetUp();
    MakeDispatcher([this] { return clock_; });
  }
  void MakeDispatcher(std::function<int64_t()> clock) {
    DispatcherOptions o;
    o.now_ms = std::move(clock);
    o.log = [](const std::string&) {};
    dispatcher_ = std::make_unique<Dispatcher>(core_.get(), o);
  }
  std::unique_ptr<Notifier> MakeNotifier(std::vector<NotifyTarget> targets) {
    NotifierOptions o;
    o.targets = std::move(targets);
    o.timeout_ms = 2000;
    o.log = [this](const std::string& l) { logged_.push_back(l); };
    return std::make_unique<Notifier>(dispatcher_.get(), store_.get(), o);
  }
  void Queue(const std::string& target, const std::string& id) {
    ASSERT_TRUE(store_->AppendNotification(target, Json{{"version", "0"}, {"id", id}}.dump(), clock_).ok());
  }
  size_t Waiting(const std::string& target = "") {
    auto rows = store_->LoadNotifications(target, 0, 1000);
    return rows.ok() ? rows->size() : 0;
  }
  int64_t clock_ = 1'000'000;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::vector<std::string> logged_;
};

TEST_F(NotifierTest, EventsAreDeliveredInOrderWithTheirIdAndSignature) {
  Receiver r;
  NotifyTarget t{r.url(), std::nullopt, "s3cret"};
  auto n = MakeNotifier({t});
  for (const char* id : {"e1", "e2", "e3"}) Queue(r.url(), id);
  EXPECT_EQ(n->DeliverDue(t), 3u);
  ASSERT_EQ(r.taken(), 3u);
  EXPECT_EQ(Waiting(), 0u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Json::parse(r.bodies[i])["id"], "e" + std::to_string(i + 1));
    EXPECT_EQ(r.headers[i].find("X-Hpo-Event-Id")->second, "e" + std::to_string(i + 1));
    EXPECT_EQ(r.headers[i].find("Content-Type")->second, "application/json");
    // The receiver's check: HMAC-SHA256 of the body under the shared secret.
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), "s3cret", 6, reinterpret_cast<const unsigned char*>(r.bodies[i].data()), r.bodies[i].size(),
         mac, &len);
    std::string hex;
    char b[3];
    for (unsigned k = 0; k < len; ++k) {
      std::snprintf(b, sizeof b, "%02x", mac[k]);
      hex += b;
    }
    EXPECT_EQ(r.headers[i].find("X-Hpo-Signature-256")->second, "sha256=" + hex);
  }
}

TEST_F(NotifierTest, AFiveHundredIsTriedAgainLaterAndTheEventsBehindItWait) {
  Receiver r;
  r.answers = {500, 503};
  NotifyTarget t{r.url(), std::nullopt, ""};
  auto n = MakeNotifier({t});
  Queue(r.url(), "a");
  Queue(r.url(), "b");
  EXPECT_EQ(n->DeliverDue(t), 0u);
  EXPECT_EQ(r.taken(), 0u);
  auto rows = store_->LoadNotifications(r.url(), 0, 10);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].attempts, 1);
  EXPECT_EQ((*rows)[0].next_ms, clock_ + 1000);
  EXPECT_NE((*rows)[0].last_error.find("answered 500: not now"), std::string::npos) << (*rows)[0].last_error;
  EXPECT_EQ(n->DeliverDue(t), 0u) << "not due yet: nothing is sent";
  clock_ += 1000;
  EXPECT_EQ(n->DeliverDue(t), 0u);  // the 503
  EXPECT_EQ(store_->LoadNotifications(r.url(), 0, 1)->front().next_ms, clock_ + 2000) << "the wait doubles";
  clock_ += 2000;
  EXPECT_EQ(n->DeliverDue(t), 2u);
  ASSERT_EQ(r.taken(), 2u);
  EXPECT_EQ(Json::parse(r.bodies[0])["id"], "a");
  EXPECT_EQ(Json::parse(r.bodies[1])["id"], "b");
  EXPECT_EQ(n->retried(), 2u);
}

// A notifications pass: a coordinator started again while the receiver was back waited out the
// old process's back-off (up to 5 minutes) before trying, and said nothing. A new process (a new
// Notifier on the same store) tries at once, and says what waits.
TEST_F(NotifierTest, ANewProcessTriesAtOnceWhatAnEarlierOneWasBackingOffFrom) {
  Receiver r;
  r.answers = {500, 500, 500};
  NotifyTarget t{r.url(), std::nullopt, ""};
  {
    auto n = MakeNotifier({t});
    Queue(r.url(), "a");
    for (int i = 0; i < 3; ++i) {
      if (i > 0) clock_ += 10'000;  // due again
      EXPECT_EQ(n->DeliverDue(t), 0u);
    }
  }
  ASSERT_GT(store_->LoadNotifications(r.url(), 0, 1)->front().next_ms, clock_) << "backing off";
  auto again = MakeNotifier({t});
  EXPECT_EQ(again->DeliverDue(t), 1u) << "the receiver is back: tried at once";
  EXPECT_EQ(Waiting(), 0u);
  Queue(r.url(), "b");
  std::atomic<bool> stop{true};
  auto third = MakeNotifier({t});
  third->Run(stop);  // (stopped at once: the start's note only)
  bool said = false;
  for (const std::string& l : logged_)
    said = said || l.find("1 event(s) wait for " + r.url() + " from before") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST_F(NotifierTest, ANotFoundDropsTheEventAtOnceAndTheNextGoesOn) {
  Receiver r;
  r.answers = {404};
  NotifyTarget t{r.url(), std::nullopt, ""};
  auto n = MakeNotifier({t});
  Queue(r.url(), "lost");
  Queue(r.url(), "kept");
  EXPECT_EQ(n->DeliverDue(t), 1u);
  ASSERT_EQ(r.taken(), 1u);
  EXPECT_EQ(Json::parse(r.bodies[0])["id"], "kept");
  EXPECT_EQ(n->dropped(), 1u);
  ASSERT_FALSE(logged_.empty());
  EXPECT_NE(logged_[0].find("answered 404"), std::string::npos) << logged_[0];
  EXPECT_NE(logged_[0].find("not tried again"), std::string::npos) << logged_[0];
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  EXPECT_EQ(events->back().kind, "NotificationDropped");
  EXPECT_NE(events->back().message.find("answered 404"), std::string::npos) << events->back().message;
}

// A notifications pass: a receiver that takes the connection and never answers held the
// coordinator's shutdown for the whole POST timeout (10 s). The POST is abandoned at the stop; its
// event waits for the next start, no attempt counted.
TEST_F(NotifierTest, AShutdownDoesNotWaitForAReceiverThatNeverAnswers) {
  std::atomic<bool> release{false};  // (before the server: its handler reads it until the end)
  Receiver r;
  r.server.Post("/hang", [&](const httplib::Request&, httplib::Response& res) {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    res.status = 200;
  });
  const std::string url = "http://127.0.0.1:" + std::to_string(r.port) + "/hang";
  NotifierOptions o;
  o.targets = {NotifyTarget{url, std::nullopt, ""}};
  o.timeout_ms = 60'000;
  o.log = [](const std::string&) {};
  Notifier n(dispatcher_.get(), store_.get(), o);
  Queue(url, "held");
  std::atomic<bool> stop{false};
  std::atomic<bool> returned{false};
  std::thread run([&] {
    n.Run(stop);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the POST is in flight
  stop = true;
  const auto stopped = std::chrono::steady_clock::now();
  while (!returned.load() && std::chrono::steady_clock::now() - stopped < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool in_time = returned.load();
  release = true;
  run.join();
  EXPECT_TRUE(in_time) << "Run waited for the receiver (the POST's timeout is 60 s)";
  auto rows = store_->LoadNotifications(url, 0, 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u) << "the abandoned event waits for the next start";
  EXPECT_EQ((*rows)[0].attempts, 0) << "a shutdown is not the receiver's failure";
  EXPECT_EQ(n.retried(), 0u);
}

TEST_F(NotifierTest, ARunOfExpiredEventsIsToldAsItsFirstThreeAndACount) {
  const std::string url = UnreachableUrl();
  NotifyTarget t{url, std::nullopt, ""};
  auto n = MakeNotifier({t});
  for (int i = 0; i < 10; ++i) Queue(url, "x" + std::to_string(i));
  // And of a tuning job: the count of those is in its own history too (`hpo events JOB` left it
  // out: the count was one record of no job).
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(store_->AppendNotification(url, Json{{"version", "0"}, {"id", "j" + std::to_string(i)},
                                                     {"detail", {{"HyperParameterTuningJobName", "tj"},
                                                                 {"HyperParameterTuningJobStatus", "Completed"}}}}
                                                    .dump(),
                                           clock_)
                    .ok());
  }
  EXPECT_EQ(n->DeliverDue(t), 0u);  // the first fails, the rest wait behind it
  clock_ += 24 * 3600000LL;
  n->DeliverDue(t);
  EXPECT_EQ(Waiting(), 0u);
  EXPECT_EQ(n->dropped(), 12u);
  ASSERT_EQ(logged_.size(), 5u);
  EXPECT_NE(logged_[3].find("dropped 7 more event(s) for " + url), std::string::npos) << logged_[3];
  EXPECT_NE(logged_[4].find("dropped 2 more event(s) of tj for " + url + ", the last: the Completed event of tj"),
            std::string::npos)
      << logged_[4];
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 5u);
  size_t of_tj = 0;
  for (const auto& e : *events) of_tj += e.job == "tj";
  EXPECT_EQ(of_tj, 1u);
}

TEST_F(NotifierTest, AnUnreachableTargetIsTriedForADayThenItsEventIsDropped) {
  const std::string url = UnreachableUrl();
  NotifyTarget t{url, std::nullopt, ""};
  auto n = MakeNotifier({t});
  Queue(url, "x");
  EXPECT_EQ(n->DeliverDue(t), 0u);
  EXPECT_EQ(Waiting(), 1u);
  clock_ += 24 * 3600000LL;
  EXPECT_EQ(n->DeliverDue(t), 0u);
  EXPECT_EQ(Waiting(), 0u);
  EXPECT_EQ(n->dropped(), 1u);
}

TEST_F(NotifierTest, EventsForATargetNoLongerConfiguredAreDroppedAtTheStart) {
  Receiver r;
  Queue("http://127.0.0.1:1/old", "o1");
  Queue("http://127.0.0.1:1/old", "o2");
  Queue(r.url(), "n1");
  auto n = MakeNotifier({{r.url(), std::nullopt, ""}});
  EXPECT_EQ(n->DropUnconfigured(), 2u);
  EXPECT_EQ(Waiting(), 1u);
  ASSERT_EQ(logged_.size(), 1u);
  EXPECT_NE(logged_[0].find("dropped 2 event(s) waiting for http://127.0.0.1:1/old"), std::string::npos);
}

TEST_F(NotifierTest, ATuningJobsEventsReachTheTargetInEventBridgesForm) {
  Receiver r;
  auto pattern = EventPattern::Parse(R"({"source": ["aws.sagemaker"], "detail": {"TrainingJobStatus": ["Completed"]}})");
  ASSERT_TRUE(pattern.ok()) << pattern.status().ToString();
  std::vector<NotifyTarget> targets = {{r.url(), std::nullopt, ""}, {r.url() + "?done", *pattern, ""}};
  options_.notify = NotifyFunction(targets, [this] { return now_; });
  options_.region = "eu-west-1";
  options_.account_id = "123456789012";
  MakeCore();
  MakeDispatcher([this] { return now_; });
  Register("w1", 1);
  proto::TuningJobSpec spec = Spec("eb", "Random", 1, 1);
  spec.tags.push_back({"team", "vision"});
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  now_ += 2000;
  Finish("w1", a[0], 0.25);
  auto n = MakeNotifier(targets);
  const size_t all = Waiting(r.url()), completed = Waiting(r.url() + "?done");
  EXPECT_EQ(completed, 1u) << "the pattern lets only the training job's Completed through";
  EXPECT_EQ(n->DeliverDue(targets[0], 1000) + n->DeliverDue(targets[1], 1000), all + completed);
  ASSERT_EQ(r.taken(), all + completed);
  Json first = Json::parse(r.bodies.front()), last_trial, job_end;
  EXPECT_EQ(first["version"], "0");
  EXPECT_EQ(first["source"], "aws.sagemaker");
  EXPECT_EQ(first["account"], "123456789012");
  EXPECT_EQ(first["region"], "eu-west-1");
  EXPECT_EQ(first["id"].get<std::string>().size(), 36u);
  for (const std::string& b : r.bodies) {
    Json e = Json::parse(b);
    if (e["detail-type"] == "SageMaker Training Job State Change") last_trial = e;
    if (e["detail-type"] == "SageMaker HyperParameter Tuning Job State Change" &&
        e["detail"]["HyperParameterTuningJobStatus"] == "Completed") {
      job_end = e;
    }
  }
  ASSERT_FALSE(last_trial.is_null());
  EXPECT_EQ(last_trial["detail"]["TrainingJobStatus"], "Completed");
  EXPECT_EQ(last_trial["detail"]["TrainingJobName"], a[0].trial);
  EXPECT_EQ(last_trial["resources"][0], "arn:aws:sagemaker:eu-west-1:123456789012:training-job/" + a[0].trial);
  EXPECT_EQ(last_trial["detail"]["CreationTime"], now_ - 2000) << "epoch milliseconds, as SageMaker's events";
  EXPECT_TRUE(last_trial["detail"]["TrainingEndTime"].is_number_integer());
  EXPECT_EQ(last_trial["detail"]["Tags"], Json({{"team", "vision"}}));
  EXPECT_EQ(last_trial["detail"]["FinalMetricDataList"][0]["MetricName"], "loss");
  ASSERT_FALSE(job_end.is_null());
  EXPECT_EQ(job_end["resources"][0], "arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/eb");
  EXPECT_EQ(job_end["detail"]["BestTrainingJob"]["TrainingJobName"], a[0].trial);
  EXPECT_EQ(job_end["detail"]["Tags"], Json({{"team", "vision"}}));
}

TEST_F(NotifierTest, AChatTargetGetsALineForAJobsEndAndATrainingJobsFailureOnly) {
  Receiver r;
  NotifyTarget chat{r.url(), std::nullopt, "", NotifyTarget::Format::kChat};
  options_.notify = NotifyFunction({chat}, [this] { return now_; });
  MakeCore();
  MakeDispatcher([this] { return now_; });
  Register("w1", 1);
  auto queue = Only<proto::wire::AssignTrial>(Submit(Spec("chatty", "Random", 3, 1)));
  std::vector<std::string> names;
  for (int i = 0; !queue.empty(); ++i) {
    proto::wire::AssignTrial a = queue.front();
    queue.erase(queue.begin());
    names.push_back(a.trial);
    now_ += 61000;
    auto more = Finish("w1", a, 0.5 - 0.1 * i, i == 1 ? "Failed" : "Completed");
    for (auto& m : Only<proto::wire::AssignTrial>(more)) queue.push_back(m);
  }
  auto n = MakeNotifier({chat});
  EXPECT_EQ(n->DeliverDue(chat, 1000), 2u);
  ASSERT_EQ(r.taken(), 2u);
  EXPECT_EQ(Json::parse(r.bodies[0]),
            Json({{"text", "Training job " + names[1] + " of tuning job chatty Failed: AlgorithmError: boom"}}));
  EXPECT_EQ(Json::parse(r.bodies[1])["text"],
            "Tuning job chatty Completed after 3m 03s: 3 training jobs (2 Completed, 1 Failed); best " + names[2] +
                ", loss 0.3 (Minimize).");
}

}  // namespace
// A reason that ends a sentence (SageMaker's "... to get more details.") is not given a second
// full stop (a usability pass found "details.." in a channel).
TEST(ChatTextTest, AFailedTuningJobsLineEndsWithOneFullStop) {
  const Json event = {{"detail-type", "SageMaker HyperParameter Tuning Job State Change"},
                      {"detail",
                       {{"HyperParameterTuningJobName", "sunk"},
                        {"HyperParameterTuningJobStatus", "Failed"},
                        {"TrainingJobStatusCounters", {{"RetryableError", 5}}},
                        {"FailureReason", "No training job succeeded after 5 attempts. Please take a look at the "
                                          "training job failures to get more details."}}}};
  EXPECT_EQ(ChatText(event),
            "Tuning job sunk Failed: 5 training jobs (5 Failed, retryable); No training job succeeded after 5 attempts. "
            "Please take a look at the training job failures to get more details.");
  Json other = event;
  other["detail"]["FailureReason"] = "MaxPendingTimeInSeconds (60 s) exceeded";
  EXPECT_EQ(ChatText(other), "Tuning job sunk Failed: 5 training jobs (5 Failed, retryable); MaxPendingTimeInSeconds "
                             "(60 s) exceeded.");
}

// Each chat takes its own shape: Discord "content", Teams' Workflows an Adaptive Card, the rest
// (Slack, Mattermost, Google Chat, Discord's /slack form, Teams' older connectors) "text".
TEST(ChatBodyTest, EachChatGetsTheShapeItTakes) {
  const std::string line = "Tuning job t Completed after 3s: 1 training job (1 Completed).";
  EXPECT_EQ(Json::parse(ChatBody("https://discord.com/api/webhooks/1/abc", line)), Json({{"content", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://PTB.Discordapp.com/api/webhooks/1/abc", line)), Json({{"content", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://discord.com/api/webhooks/1/abc/slack", line)), Json({{"text", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://discord.com/api/webhooks/1/abc/slack?wait=true", line)), Json({{"text", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://discord.com/api/webhooks/1/abc?wait=true", line)), Json({{"content", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://hooks.slack.com/services/T/B/x", line)), Json({{"text", line}}));
  // Slack's &, < and > escaped, as its formatting rules ask (a <b> in a failure reason became markup).
  EXPECT_EQ(Json::parse(ChatBody("https://hooks.slack.com/services/T/B/x", "a <b> & c")),
            Json({{"text", "a &lt;b&gt; &amp; c"}}));
  EXPECT_EQ(Json::parse(ChatBody("http://127.0.0.1:8080/chat", "a <b> & c")), Json({{"text", "a <b> & c"}}));
  EXPECT_EQ(Json::parse(ChatBody("https://example.webhook.office.com/webhookb2/x", line)), Json({{"text", line}}));
  EXPECT_EQ(Json::parse(ChatBody("http://127.0.0.1:8080/chat", line)), Json({{"text", line}}));
  // Not fooled by a look-alike host or a path that names one.
  EXPECT_EQ(Json::parse(ChatBody("https://notdiscord.com/api/webhooks/1", line)), Json({{"text", line}}));
  EXPECT_EQ(Json::parse(ChatBody("https://x.example/discord.com/api", line)), Json({{"text", line}}));
  const Json teams = Json::parse(ChatBody("https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers", line));
  EXPECT_EQ(teams["type"], "message");
  ASSERT_EQ(teams["attachments"].size(), 1u);
  EXPECT_EQ(teams["attachments"][0]["contentType"], "application/vnd.microsoft.card.adaptive");
  EXPECT_EQ(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
  EXPECT_EQ(teams["attachments"][0]["content"]["body"][0]["text"], line);
  EXPECT_EQ(Json::parse(ChatBody("https://x.environment.api.powerplatform.com/powerautomate/1", line))["type"],
            "message");
  // Discord takes 2000 characters at most: a longer line is cut, not refused (a 400 dropped it).
  std::string long_line(2500, 'x');
  long_line.replace(1990, 2, "\xc3\xa9");  // a 2-byte character across the cut
  const std::string cut = Json::parse(ChatBody("https://discord.com/api/webhooks/1/abc", long_line))["content"];
  EXPECT_LE(cut.size(), 2000u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
}

}  // namespace hpo::coordinator
