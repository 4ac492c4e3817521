// Spot capacity in the core: an interruption notice drains a worker, an Interrupted attempt is
// re-queued without spending a retry and placed elsewhere (on-demand first), and
// MaxWaitTimeInSeconds bounds a trial's whole time.
#include <gtest/gtest.h>
#include <algorithm>

#include <cmath>
#include <set>

#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

class SpotCoreTest : public CoreTest {
 protected:
  std::vector<Outgoing> Join(const std::string& id, bool spot) {
    proto::wire::Register r;
    r.protocol_version = proto::wire::kProtocolVersion;
    r.worker_id = id;
    r.host = id;
    r.slots = 1;
    r.cpus = 2;
    r.memory_mb = 16384;
    r.spot = spot;
    r.session = 1;
    return core_->OnMessage(id, r, now_);
  }
  // A job whose definition enables managed spot training (what spot workers run).
  static proto::TuningJobSpec SpotSpec(const std::string& name, int max_jobs = 1, int parallel = 1) {
    proto::TuningJobSpec spec = Spec(name, "Random", max_jobs, parallel);
    auto& def = *spec.training_job_definition;
    def.enable_managed_spot_training = true;
    def.stopping_condition->max_wait_time_in_seconds = 7200;
    return spec;
  }
  std::vector<Outgoing> Exit(const std::string& wid, const proto::wire::AssignTrial& a, const std::string& status,
                             const std::string& reason = "", uint64_t metric_batches = 0) {
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.seq = metric_batches;
    x.status = status;
    x.failure_reason = reason;
    return core_->OnMessage(wid, x, now_);
  }
};

// A worker that said it was going (SIGTERM sends the notice too: systemctl stop) and gave
// everything back has left: WorkerLeft, not WorkerLost, which operators alert on. One that said
// so but still held a training job when its lease ran out was lost.
TEST_F(SpotCoreTest, AWorkerThatSaidItWasGoingAndGaveEverythingBackLeftAndWasNotLost) {
  auto kinds = [&] {
    std::vector<std::string> out;
    auto rows = store_->LoadEvents("", 0, 10000);
    for (const auto& r : *rows) {
      if (r.kind == "WorkerLeft" || r.kind == "WorkerLost") out.push_back(r.kind + " " + r.message);
    }
    return out;
  };
  Join("calm", false);
  Join("busy", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("lv"))).at(0);
  ASSERT_EQ(core_->FindTrial(a.trial)->worker_id, "busy");
  Started("busy", a);
  for (const std::string w : {"calm", "busy"}) {
    proto::wire::InterruptionNotice n;
    n.worker_id = w;
    n.reason = "the worker " + w + " is shutting down";
    core_->OnMessage(w, n, now_);
  }
  now_ += options_.lease_ms + 1;
  core_->OnTick(now_);
  const auto seen = kinds();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(std::find(seen.begin(), seen.end(), "WorkerLeft calm left, as it said it would (the worker calm is shutting down)"),
            seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "WorkerLost busy missed its lease"), seen.end());
}

// Every worker says it is going when it shuts down (SIGTERM, the end of `hpo run`), and that was
// recorded as an InterruptionNotice, as a spot reclaim is: an alert on spot notices fired at the
// end of every run. A planned shutdown is a WorkerShuttingDown event; it drains alike.
TEST_F(SpotCoreTest, APlannedShutdownIsNoInterruptionNoticeInTheEventsButDrainsAlike) {
  Join("leaving", false);
  Join("reclaimed", true);
  auto count = [&](const std::string& kind) {
    int c = 0;
    const auto rows = store_->LoadEvents("", 0, 10000);  // named: a loop over a temporary's value dangles
    for (const auto& r : *rows) c += r.kind == kind;
    return c;
  };
  proto::wire::InterruptionNotice planned;
  planned.worker_id = "leaving";
  planned.reason = "the worker leaving is shutting down";
  planned.planned = true;
  core_->OnMessage("leaving", planned, now_);
  proto::wire::InterruptionNotice spot;
  spot.worker_id = "reclaimed";
  spot.reason = "spot instance-action: terminate";
  core_->OnMessage("reclaimed", spot, now_);
  EXPECT_EQ(count("WorkerShuttingDown"), 1);
  EXPECT_EQ(count("InterruptionNotice"), 1);
  const auto rows = store_->LoadEvents("", 0, 10000);
  for (const auto& r : *rows) {
    if (r.kind == "WorkerShuttingDown") {
      EXPECT_EQ(r.message, "leaving: the worker leaving is shutting down");
    }
    if (r.kind == "InterruptionNotice") {
      EXPECT_EQ(r.message, "reclaimed: spot instance-action: terminate");
    }
  }
  // `hpo workers` says which: a planned shutdown read as a spot reclaim there.
  for (const WorkerInfo* w : core_->Workers()) {
    if (w->reg.worker_id == "leaving") {
      EXPECT_EQ(w->draining, "shutting down: the worker leaving is shutting down");
    }
    if (w->reg.worker_id == "reclaimed") {
      EXPECT_EQ(w->draining, "interruption notice: spot instance-action: terminate");
    }
  }
  // Neither gets new work.
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(SpotSpec("after"))).empty());
}

// A spot worker gives its programs their grace period after the notice, but the instance goes
// when the notice's time is up: a program slow to save lost its worker. That was an
// infrastructure error, a spent retry, and a failed managed spot training job (it had no
// RetryStrategy). It is the interruption it was: re-queued without a retry, from its checkpoints.
TEST_F(SpotCoreTest, AWorkerLostAfterItsInterruptionNoticeInterruptsItsJobsWithoutARetry) {
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("gone"))).at(0);
  Started("spot1", a);
  proto::wire::InterruptionNotice n;
  n.worker_id = "spot1";
  n.reason = "spot instance-action: terminate";
  core_->OnMessage("spot1", n, now_);
  now_ += options_.lease_ms + 1;  // never heard again: the instance was terminated
  core_->OnTick(now_);
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->state, TrialState::kPending) << "re-queued, waiting for capacity";
  EXPECT_EQ(t->interruptions, 1);
  EXPECT_EQ(t->infra_failures, 0) << "no retry spent";
  EXPECT_EQ(*core_->Describe("gone")->status.hyper_parameter_tuning_job_status, "InProgress");
  auto next = Only<proto::wire::AssignTrial>(Join("spot2", true));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].trial, a.trial);
  EXPECT_EQ(next[0].attempt, 2u);
  // Without a notice, a lost worker is an infrastructure error as before.
  Started("spot2", next[0]);
  now_ += options_.lease_ms + 1;
  core_->OnTick(now_);
  EXPECT_EQ(core_->FindTrial(a.trial)->infra_failures, 1);
}

// A spot worker reclaimed (SIGTERM) while the coordinator was down: its notice and its
// Interrupted report went nowhere, and it never came back. That was an infrastructure error, and
// a managed spot training job without a RetryStrategy failed (and its tuning job with it). It is
// the interruption it most likely was. An on-demand worker that does not come back is still an
// infrastructure error.
TEST_F(SpotCoreTest, ASpotWorkerThatDidNotComeBackAfterARestartInterruptedItsJobWithoutARetry) {
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("reclaimed"))).at(0);
  Started("spot1", a);
  now_ += 4000;
  MakeCore();  // the coordinator restarts; spot1 was reclaimed meanwhile and never registers again
  Join("od", false);
  for (int i = 0; i < 100 && core_->FindTrial(a.trial)->state != TrialState::kPending; ++i) {
    now_ += 500;
    core_->OnMessage("od", proto::wire::Heartbeat{"od", static_cast<uint64_t>(i + 1), 1, {}}, now_);
    core_->OnTick(now_);
  }
  const Trial* t = core_->FindTrial(a.trial);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->interruptions, 1);
  EXPECT_EQ(t->infra_failures, 0) << "no retry spent";
  EXPECT_EQ(*core_->Describe("reclaimed")->status.hyper_parameter_tuning_job_status, "InProgress");
}

// A failure reason counts every attempt, the interrupted ones too: it counted the infrastructure
// errors alone, and said "after 2 attempts" where the history showed 3.
TEST_F(SpotCoreTest, AFailureReasonCountsTheInterruptedAttemptsToo) {
  Join("spot1", true);
  proto::TuningJobSpec spec = SpotSpec("counted");
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{1};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  Started("spot1", a);
  auto next = Only<proto::wire::AssignTrial>(Exit("spot1", a, "Interrupted", "Interrupted: SIGUSR1"));
  for (const char* status : {"InfraError", "InfraError"}) {
    if (next.empty()) {
      now_ += 600'000;  // past any fence or rest
      core_->OnTick(now_);
      next = Only<proto::wire::AssignTrial>(Join("spot" + std::to_string(now_), true));
    }
    ASSERT_EQ(next.size(), 1u) << status;
    const auto attempt = next[0];
    Started(core_->FindTrial(a.trial)->worker_id, attempt);
    next = Only<proto::wire::AssignTrial>(Exit(core_->FindTrial(a.trial)->worker_id, attempt, status, "disk gone"));
  }
  const Trial* t = core_->FindTrial(a.trial);
  ASSERT_TRUE(t->Terminal());
  EXPECT_NE(t->failure_reason.find("(after 3 attempts)"), std::string::npos) << t->failure_reason;
}

TEST_F(SpotCoreTest, AnInterruptedAttemptIsRequeuedWithoutARetryAndMovesToOnDemandCapacity) {
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("sp"))).at(0);
  Started("spot1", a);
  Join("od", false);
  Join("spot2", true);
  proto::wire::InterruptionNotice n;
  n.worker_id = "spot1";
  n.reason = "spot instance-action: terminate";
  core_->OnMessage("spot1", n, now_);
  auto next = Only<proto::wire::AssignTrial>(Exit("spot1", a, "Interrupted", "spot reclaim"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].trial, a.trial) << "the same training job, same name";
  EXPECT_EQ(next[0].attempt, 2u);
  EXPECT_EQ(next[0].hyperparameters, a.hyperparameters);
  EXPECT_EQ(core_->FindTrial(a.trial)->worker_id, "od") << "on-demand before the other spot worker";
  // Interrupted three more times (more than maximumRetryAttempts 2): never failed for it.
  proto::wire::AssignTrial cur = next[0];
  for (int i = 0; i < 3; ++i) {
    const std::string on = core_->FindTrial(cur.trial)->worker_id;
    Started(on, cur);
    auto again = Only<proto::wire::AssignTrial>(Exit(on, cur, "Interrupted", "preempted"));
    ASSERT_EQ(again.size(), 1u) << "interruption " << i + 2;
    EXPECT_NE(core_->FindTrial(cur.trial)->worker_id, on) << "placed away from the worker that was interrupted";
    EXPECT_NE(core_->FindTrial(cur.trial)->worker_id, "spot1") << "spot1 is draining";
    cur = again[0];
  }
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->interruptions, 4);
  EXPECT_EQ(t->infra_failures, 0);
  bool saw_interrupted = false;
  for (const auto& s : t->secondary) saw_interrupted = saw_interrupted || s.status == "Interrupted";
  EXPECT_TRUE(saw_interrupted);
  Started(t->worker_id, cur);
  proto::wire::MetricPoints m;
  m.trial = cur.trial;
  m.attempt = cur.attempt;
  m.seq = 1;
  m.points = {{"loss", 0.5, now_, 0}};
  core_->OnMessage(t->worker_id, m, now_);
  Exit(t->worker_id, cur, "Completed", "", 1);
  auto d = core_->Describe("sp");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->retryable_error, 0);
  MakeCore();
  EXPECT_EQ(core_->FindTrial(a.trial)->interruptions, 4) << "kept in the store";
}

// Training time counts every attempt; billable time counts spot seconds at spot_price_ratio, so
// SageMaker's savings figure (1 - billable / training) * 100 says what spot capacity saved.
TEST_F(SpotCoreTest, BillableTimeCountsSpotSecondsAtTheSpotPriceAndSurvivesARestart) {
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("bill"))).at(0);
  Started("spot1", a);
  now_ += 10000;  // 10 s on spot capacity, then interrupted
  Join("od", false);
  auto next = Only<proto::wire::AssignTrial>(Exit("spot1", a, "Interrupted", "preempted"));
  ASSERT_EQ(next.size(), 1u);
  ASSERT_EQ(core_->FindTrial(a.trial)->worker_id, "od");
  now_ += 2000;  // waiting and starting is not training
  Started("od", next[0]);
  now_ += 3000;
  const double ratio = core_->options().spot_price_ratio;
  EXPECT_EQ(core_->FindTrial(a.trial)->TrainingAndBillableSeconds(now_, ratio),
            (std::pair<int64_t, int64_t>{13, static_cast<int64_t>(std::ceil(3 + 10 * ratio))}))
      << "while it runs, the running attempt counts up to now";
  MakeCore();  // the running attempt's start survives a restart
  ++session_;
  Register("od", 1, {{next[0].trial, next[0].attempt}});
  now_ += 2000;
  Exit("od", next[0], "Completed");
  const auto [training, billable] = core_->FindTrial(a.trial)->TrainingAndBillableSeconds(now_ + 60000, ratio);
  EXPECT_EQ(training, 15) << "10 s interrupted on spot + 5 s on demand";
  EXPECT_EQ(billable, static_cast<int64_t>(std::ceil(5 + 10 * ratio)));
  const double savings = (1.0 - static_cast<double>(billable) / training) * 100;
  EXPECT_NEAR(savings, (1.0 - (5 + 10 * ratio) / 15) * 100, 100.0 / 15);
}

// SageMaker runs a training job without EnableManagedSpotTraining on on-demand capacity only: a
// spot worker never takes it (it could be interrupted, and without checkpoints lose its work),
// and the job says why it waits and what to do.
TEST_F(SpotCoreTest, AJobWithoutManagedSpotNeverRunsOnASpotWorkerAndSaysWhy) {
  Join("spot1", true);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Spec("od", "Random", 1, 1))).empty());
  const std::string why = core_->FindJob("od")->waiting_reason;
  EXPECT_EQ(why.rfind("no registered worker can serve ml.m5.large", 0), 0u) << why;
  EXPECT_NE(why.find("worker spot1 is a spot worker (hpo worker --spot), and the training job does not enable managed "
                     "spot training (EnableManagedSpotTraining)"),
            std::string::npos)
      << why;
  auto a = Only<proto::wire::AssignTrial>(Join("od1", false));
  ASSERT_EQ(a.size(), 1u) << "an on-demand worker takes it";
  EXPECT_EQ(core_->FindTrial(a[0].trial)->worker_id, "od1");
  Started("od1", a[0]);
  now_ += 10000;
  const auto [training, billable] =
      core_->FindTrial(a[0].trial)->TrainingAndBillableSeconds(now_, core_->options().spot_price_ratio);
  EXPECT_EQ(billable, training) << "on-demand seconds are billed in full";
}

// With it, spot workers come first (SageMaker runs it on spot capacity); an on-demand worker takes
// what no spot worker can start, since a free machine on-prem costs nothing more.
// A gangs pass: a 3-host job (not managed spot) on two on-demand workers and a spot one read "too
// few registered workers can serve ml.m5.large ... start more workers", the spot one unnamed; and a
// single-host one whose on-demand workers were cordoned named only those. Both say the spot one.
TEST_F(SpotCoreTest, AJobWaitingBesideASpotWorkerItMayNotUseNamesIt) {
  Join("od1", false);
  Join("od2", false);
  Join("spot1", true);
  proto::TuningJobSpec gang = Spec("gang", "Random", 1, 1);
  gang.training_job_definition->resource_config->instance_count = 3;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(gang)).empty());
  std::string why = core_->FindJob("gang")->waiting_reason;
  EXPECT_EQ(why.rfind("too few registered workers can serve ml.m5.large", 0), 0u) << why;
  EXPECT_NE(why.find("(worker spot1 would, but it is a spot worker: set EnableManagedSpotTraining"), std::string::npos)
      << why;
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Cordon("od1", "maintenance", now_, &out).ok());
  ASSERT_TRUE(core_->Cordon("od2", "maintenance", now_, &out).ok());
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Spec("single", "Random", 1, 1))).empty());
  why = core_->FindJob("single")->waiting_reason;
  EXPECT_NE(why.find("worker spot1 is a spot worker (hpo worker --spot)"), std::string::npos) << why;
  EXPECT_NE(why.find("worker od1"), std::string::npos) << why;
}

TEST_F(SpotCoreTest, AManagedSpotJobPrefersSpotWorkersAndTakesOnDemandOnesWhenNoneIsFree) {
  Join("a-od", false);  // first in the workers' order: chosen only by preference
  Join("b-spot", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("pref", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  std::set<std::string> on;
  for (const auto& x : a) on.insert(core_->FindTrial(x.trial)->worker_id);
  EXPECT_EQ(on, (std::set<std::string>{"a-od", "b-spot"}));
  EXPECT_EQ(core_->FindTrial(a[0].trial)->worker_id, "b-spot") << "the first goes to the spot worker";
}

// A cluster that is all preemptible: `hpo coordinator --spot-workers-take all` lets spot workers
// run every training job; one without managed spot is still billed at the on-demand price.
TEST_F(SpotCoreTest, SpotWorkersTakingAllRunAnyJobBilledOnDemandWithoutManagedSpot) {
  options_.spot_workers_take_all = true;
  MakeCore();
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("all", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("spot1", a[0]);
  now_ += 10000;
  const auto [training, billable] =
      core_->FindTrial(a[0].trial)->TrainingAndBillableSeconds(now_, core_->options().spot_price_ratio);
  EXPECT_EQ(training, 10);
  EXPECT_EQ(billable, 10) << "no managed spot, no spot discount";
}

// StoppingCondition.MaxRuntimeInSeconds covers all attempts together: a retry gets what is left.
TEST_F(SpotCoreTest, ARetryGetsTheMaxRuntimeTheEarlierAttemptsLeft) {
  Join("w1", false);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("rt", "Random", 1, 1))).at(0);
  EXPECT_EQ(a.max_runtime_s, 3600u);
  Started("w1", a);
  now_ += 1000 * 1000;  // 1000 s, then an infrastructure error
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "InfraError", "disk gone"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].attempt, 2u);
  EXPECT_EQ(next[0].max_runtime_s, 2600u);
  Started("w1", next[0]);
  now_ += 2600 * 1000 + 500;  // the budget is spent (the worker would have stopped it)
  auto last = Only<proto::wire::AssignTrial>(Exit("w1", next[0], "InfraError", "disk gone again"));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].max_runtime_s, 1u) << "nothing left: it ends as MaxRuntimeExceeded at once";
}

// What is left is given in whole seconds rounded down: rounded up, a retry trained up to a second
// past the limit (a user's pass: 2.9 s, then 2.0 s, of a 4 s MaxRuntimeInSeconds).
TEST_F(SpotCoreTest, ARetryNeverGetsMoreThanTheMaxRuntimeLeft) {
  Join("w1", false);
  proto::TuningJobSpec spec = Spec("rtf", "Random", 1, 1);
  spec.training_job_definition->stopping_condition->max_runtime_in_seconds = 4;
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  EXPECT_EQ(a.max_runtime_s, 4u);
  Started("w1", a);
  now_ += 2880;
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "InfraError", "disk gone"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].max_runtime_s, 1u) << "1.12 s left";
}

// ... and so does SageMaker's default of a day, when the definition gives none.
TEST_F(SpotCoreTest, TheDefaultMaxRuntimeOfADayCoversAllAttemptsToo) {
  Join("w1", false);
  proto::TuningJobSpec spec = Spec("rtd", "Random", 1, 1);
  spec.training_job_definition->stopping_condition->max_runtime_in_seconds.reset();
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  EXPECT_EQ(a.max_runtime_s, 86400u);
  Started("w1", a);
  now_ += 1000 * 1000;
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "InfraError", "disk gone"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].max_runtime_s, 85400u);
}

// A usability pass: attempt 2 of a training job with MaxRuntimeInSeconds 3600 ended "ran longer
// than its max runtime of 2600 s", a limit the user never set (the worker knows only what the
// attempt was given). The reason names the limit and what the earlier attempts used of it.
TEST_F(SpotCoreTest, AResumedAttemptsMaxRuntimeExceededNamesTheJobsLimitAndWhatWasLeft) {
  Join("w1", false);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("rt2", "Random", 1, 1))).at(0);
  Started("w1", a);
  now_ += 1000 * 1000;
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "InfraError", "disk gone")).at(0);
  Started("w1", next);
  now_ += 2600 * 1000;
  EndWith("w1", next.trial, next.attempt, "Stopped",
          "MaxRuntimeExceeded: the training job ran longer than its max runtime of 2600 s", "MaxRuntimeExceeded");
  const Trial* t = core_->FindTrial(a.trial);
  ASSERT_EQ(t->state, TrialState::kStopped);
  ASSERT_FALSE(t->secondary.empty());
  EXPECT_EQ(t->secondary.back().status, "MaxRuntimeExceeded");
  EXPECT_EQ(t->secondary.back().message,
            "MaxRuntimeExceeded: the training job ran longer than its max runtime of 3600 s, which covers all its "
            "attempts together: the attempts before this one (attempt 2) trained 1000.0 s of it, and this one had the "
            "2600.0 s left");
}

TEST_F(SpotCoreTest, MaxWaitTimeStopsATrialWithMaxWaitTimeExceeded) {
  options_.lease_ms = 100'000'000;  // the fake worker sends no heartbeats for these two hours
  MakeCore();
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("mw"))).at(0);
  Started("spot1", a);
  now_ += 7'199'000;
  EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnTick(now_)).empty());
  now_ += 1'000;
  auto stops = Only<proto::wire::StopTrial>(core_->OnTick(now_));
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].reason.rfind("MaxWaitTimeExceeded", 0), 0u) << stops[0].reason;
  Exit("spot1", a, "Stopped");
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->state, TrialState::kStopped);
  EXPECT_EQ(t->SecondaryStatus(), "MaxWaitTimeExceeded");
}

// A spot notice stops the program (its grace period running), then MaxWaitTimeInSeconds runs out
// meanwhile: the coordinator's stop wins. An Interrupted report (a worker that heard the notice
// first) ends the training job Stopped, MaxWaitTimeExceeded, with no infrastructure error and no
// re-run (it was an InfraError whose re-run never came: a spot pass).
TEST_F(SpotCoreTest, ANoticeDuringAMaxWaitStopStillEndsMaxWaitTimeExceeded) {
  options_.lease_ms = 100'000'000;
  MakeCore();
  Join("spot1", true);
  auto a = Only<proto::wire::AssignTrial>(Submit(SpotSpec("mwn"))).at(0);
  Started("spot1", a);
  now_ += 7'199'000;
  proto::wire::InterruptionNotice n;
  n.worker_id = "spot1";
  n.reason = "spot instance-action: terminate";
  core_->OnMessage("spot1", n, now_);
  now_ += 1'000;
  ASSERT_EQ(Only<proto::wire::StopTrial>(core_->OnTick(now_)).size(), 1u);
  auto after = Exit("spot1", a, "Interrupted", "Interrupted: SIGUSR1 (spot interruption notice)");
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->state, TrialState::kStopped);
  EXPECT_EQ(t->SecondaryStatus(), "MaxWaitTimeExceeded");
  EXPECT_EQ(t->infra_failures, 0);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(after).empty());
  for (const auto& e : *store_->LoadEvents("", 0, 1000)) EXPECT_NE(e.kind, "InfraError") << e.message;
}

}  // namespace
}  // namespace hpo::coordinator

// ---- evicting a worker (hpo workers drain --now) ------------------------------------------------

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

class EvictTest : public CoreTest {
 protected:
  // w1 runs the one training job of a Random job with retries left at 0; w2 is free.
  proto::wire::AssignTrial RunOnW1() {
    options_.lease_ms = 60000;
    MakeCore();
    Register("w1", 1);
    auto a = Only<proto::wire::AssignTrial>(Submit(Spec("ev", "Random", 1, 1)));
    EXPECT_EQ(a.size(), 1u);
    Started("w1", a.at(0));
    Register("w2", 1);
    return a.at(0);
  }
  std::vector<Outgoing> Evict(const std::string& wid, std::vector<std::string>* names = nullptr) {
    std::vector<Outgoing> out;
    std::vector<std::string> evicted;
    EXPECT_TRUE(core_->Evict(wid, "kernel upgrade", now_, &out, &evicted).ok());
    if (names) *names = evicted;
    return out;
  }
};

TEST_F(EvictTest, TheRunningTrainingJobIsStoppedAndRunsAgainElsewhereWithoutARetry) {
  const auto a = RunOnW1();
  std::vector<std::string> names;
  auto stops = Only<proto::wire::StopTrial>(Evict("w1", &names));
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].trial, a.trial);
  EXPECT_EQ(stops[0].attempt, a.attempt);
  EXPECT_GT(stops[0].grace_period_s, 0u) << "the program gets its grace period to checkpoint";
  EXPECT_NE(stops[0].reason.find("evicted from worker w1 (kernel upgrade)"), std::string::npos) << stops[0].reason;
  EXPECT_EQ(names, std::vector<std::string>{a.trial});
  ASSERT_EQ(core_->Cordons().size(), 1u);
  EXPECT_EQ(core_->Cordons()[0].reason, "kernel upgrade");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kInProgress) << "it is not being stopped for good";
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "Stopped"));
  ASSERT_EQ(next.size(), 1u) << "the stopped attempt was not re-queued";
  EXPECT_EQ(next[0].trial, a.trial);
  EXPECT_EQ(next[0].attempt, 2u);
  EXPECT_EQ(next[0].hyperparameters, a.hyperparameters);
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->worker_id, "w2");
  EXPECT_EQ(t->interruptions, 1);
  EXPECT_EQ(t->infra_failures, 0) << "a retry was spent";
  EXPECT_TRUE(t->evicted.empty());
  // As after a spot notice: Training, then Interrupted; no Stopping, which says a user asked.
  std::vector<std::string> seen;
  for (const auto& s : t->secondary) seen.push_back(s.status);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), "Stopping"), 0) << ::testing::PrintToString(seen);
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[seen.size() - 3], "Training") << ::testing::PrintToString(seen);
  EXPECT_EQ(seen[seen.size() - 2], "Interrupted") << ::testing::PrintToString(seen);
  // The new attempt on w2 completes as any would.
  Started("w2", next[0]);
  Exit("w2", next[0], "Completed");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
}

TEST_F(EvictTest, TheEvictionOutlivesACoordinatorRestartAndItsStopIsSentAgain) {
  const auto a = RunOnW1();
  ASSERT_EQ(Only<proto::wire::StopTrial>(Evict("w1")).size(), 1u);  // ... which never arrives
  MakeCore();
  auto again = Only<proto::wire::StopTrial>(Register("w1", 1, {{a.trial, a.attempt}}));
  ASSERT_EQ(again.size(), 1u) << "the owed stop was not sent again to the worker that holds it";
  EXPECT_NE(again[0].reason.find("evicted"), std::string::npos);
  Register("w2", 1);
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "Stopped"));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(core_->FindTrial(a.trial)->worker_id, "w2") << "w1 stays cordoned across the restart";
  EXPECT_EQ(core_->FindTrial(a.trial)->infra_failures, 0);
}

TEST_F(EvictTest, AStopOfItsOwnOrAnEndOfItsOwnComesFirst) {
  const auto a = RunOnW1();
  Evict("w1");
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(a.trial, now_, &out).ok());
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Exit("w1", a, "Stopped")).empty());
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped) << "a user's stop was undone by the eviction";
}

TEST_F(EvictTest, ATrainingJobThatCompletesMeanwhileIsCompleted) {
  const auto a = RunOnW1();
  Evict("w1");
  Exit("w1", a, "Completed");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 1u);
}

TEST_F(EvictTest, AnUnknownOrMalformedWorkerIsRefusedAndNothingChanges) {
  RunOnW1();
  std::vector<Outgoing> out;
  std::vector<std::string> names;
  Status s = core_->Evict("w9", "", now_, &out, &names);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("w9"), std::string::npos) << s.message();
  s = core_->Evict("bad id!", "", now_, &out, &names);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(names.empty());
  EXPECT_TRUE(core_->Cordons().empty());
  // A worker with nothing running: cordoned, nothing stopped.
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Evict("w2", &names)).empty());
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(core_->Cordons().size(), 1u);
}

}  // namespace
}  // namespace hpo::coordinator
