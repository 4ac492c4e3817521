// Proposals off the core (CoreOptions::propose_off_core): a Bayesian or Hyperband job's proposal
// leaves the core as a request, is made by whoever takes it (here the test, as the dispatcher's
// proposer thread would), and comes back as the job's next trial; meanwhile the core serves
// everything else and asks that job for nothing more.

#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "coordinator/adaptive.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator::coretest {
namespace {

double Loss(const proto::wire::AssignTrial& a) {
  const double x = std::stod(a.hyperparameters.at("x")), y = std::stod(a.hyperparameters.at("y"));
  return (x - 0.3) * (x - 0.3) + (y - 0.6) * (y - 0.6);
}

class ProposeOffCoreTest : public CoreTest {
 protected:
  void SetUp() override {
    options_ = TestOptions();
    options_.propose_off_core = true;
    CoreTest::SetUp();
  }
  // Makes every request out and hands the results back, as the dispatcher does.
  // *requests and *proposals: how many requests were out and how many configurations came back.
  std::vector<Outgoing> RunRequests(size_t* requests = nullptr, size_t* proposals = nullptr) {
    std::vector<ProposalResult> results;
    for (ProposalRequest& r : core_->TakeProposalRequests()) {
      results.push_back(CoordinatorCore::RunProposal(r));
      if (proposals) *proposals += results.back().proposals.size();
    }
    if (requests) *requests += results.size();
    return core_->OnProposals(std::move(results), now_);
  }
};

TEST_F(ProposeOffCoreTest, TheProposalLeavesTheCoreAsARequestAndComesBackAsTheJobsNextTrial) {
  Register("w1", 2);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(BayesSpec("bayes", 6, 2))).empty())
      << "a Bayesian proposal was made inside the event";
  EXPECT_TRUE(core_->TrialsOf("bayes").empty());

  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u) << "one request per job at a time";
  EXPECT_EQ(reqs[0].job, "bayes");
  EXPECT_EQ(reqs[0].n, 2u) << "one request for both free slots";
  EXPECT_TRUE(reqs[0].history.empty());
  ASSERT_NE(reqs[0].strategy, nullptr);
  EXPECT_EQ(reqs[0].strategy->Name(), "Bayesian");
  // While it is out, ticks and messages ask that job for nothing more.
  now_ += 500;
  EXPECT_TRUE(core_->OnTick(now_).empty());
  Heartbeat("w1", {});
  EXPECT_TRUE(core_->TakeProposalRequests().empty());

  ProposalResult res = CoordinatorCore::RunProposal(reqs[0]);
  ASSERT_EQ(res.proposals.size(), 2u);
  std::vector<proto::wire::AssignTrial> a = Only<proto::wire::AssignTrial>(core_->OnProposals({res}, now_));
  ASSERT_EQ(a.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(a[i].hyperparameters.at("x"), res.proposals[i].hyperparameters.at("x"));
    EXPECT_EQ(a[i].hyperparameters.at("y"), res.proposals[i].hyperparameters.at("y"));
  }
  ASSERT_EQ(core_->TrialsOf("bayes").size(), 2u);
  const SuggestionStats* st = core_->Suggestions("bayes");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->count, 1u);
  EXPECT_TRUE(core_->TakeProposalRequests().empty()) << "no slot is free";

  // A slot frees: the next request is for it, and its history has both trials.
  Finish("w1", a[0], Loss(a[0]));
  reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].n, 1u);
  ASSERT_EQ(reqs[0].history.size(), 2u);
  EXPECT_EQ(reqs[0].history[0].status, Observation::kSucceeded);
  EXPECT_EQ(reqs[0].history[1].status, Observation::kRunning);
  EXPECT_EQ(reqs[0].history[1].trial, a[1].trial);
}

TEST_F(ProposeOffCoreTest, ARequestAsksForNoMoreThanTheWorkersCanStartNow) {
  // Eight parallel allowed; the worker has 3 slots, then another with 2 registers.
  Register("w1", 3);
  Submit(BayesSpec("bayes", 20, 8));
  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].n, 3u);
  EXPECT_EQ(Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_)).size(),
            3u);
  Register("w2", 2);
  reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].n, 2u);
  // ...and never for more than the job's limit: 20 - 3 - 2 = 15 left, so 2 here.
  EXPECT_EQ(Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_)).size(),
            2u);
  EXPECT_EQ(core_->TrialsOf("bayes").size(), 5u);
}

TEST_F(ProposeOffCoreTest, AJobRunsToCompletionWithEveryProposalMadeOffTheCore) {
  Register("w1", 3);
  Submit(BayesSpec("bayes", 12, 3));
  std::vector<proto::wire::AssignTrial> running;
  size_t requests = 0, made = 0, finished = 0;
  for (int round = 0; round < 100; ++round) {
    for (auto& a : Only<proto::wire::AssignTrial>(RunRequests(&requests, &made))) running.push_back(a);
    if (running.empty()) break;
    const proto::wire::AssignTrial a = running.front();
    running.erase(running.begin());
    now_ += 1000;
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, Loss(a)))) running.push_back(m);
    ++finished;
  }
  EXPECT_EQ(made, 12u);
  EXPECT_EQ(finished, 12u);
  EXPECT_EQ(*core_->Describe("bayes")->status.hyper_parameter_tuning_job_status, "Completed");
  // The first request filled all three slots; then one per finished training job.
  EXPECT_EQ(requests, 10u);
  EXPECT_EQ(core_->Suggestions("bayes")->count, requests);
  EXPECT_TRUE(core_->TakeProposalRequests().empty());
  // The model ran (more than the space-filling start) and every configuration is new.
  EXPECT_LT(core_->Suggestions("bayes")->fallbacks, 12u);
  std::set<std::pair<std::string, std::string>> seen;
  for (const Trial* t : core_->TrialsOf("bayes")) seen.insert({t->tuned.at("x"), t->tuned.at("y")});
  EXPECT_EQ(seen.size(), 12u);
  // Its strategy (and the GP's Cholesky factor) went with the end; a restarted core makes none
  // for it either. (The soak saw a coordinator grow with every finished Bayesian job.)
  EXPECT_EQ(core_->FindJob("bayes")->strategy, nullptr);
  MakeCore();
  EXPECT_EQ(core_->FindJob("bayes")->strategy, nullptr);
  EXPECT_EQ(*core_->Describe("bayes")->status.hyper_parameter_tuning_job_status, "Completed");
}

TEST_F(ProposeOffCoreTest, ARequestCountsTheGpusTheTrainingJobsNeed) {
  // Four slots but two GPUs, one GPU per training job: two can start.
  RegisterGpuWorker("gpu", 4, 2);
  proto::TuningJobSpec spec = BayesSpec("bayes", 10, 4);
  spec.training_job_definition->resource_config->instance_type = "ml.g5.xlarge";
  Submit(spec);
  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].n, 2u);
  std::vector<proto::wire::AssignTrial> a =
      Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_NE(a[0].gpus, a[1].gpus);
  EXPECT_TRUE(core_->TakeProposalRequests().empty()) << "both GPUs are taken";
}

TEST_F(ProposeOffCoreTest, OtherJobsAreServedWhileAProposalIsOut) {
  Register("w1", 4);
  Submit(BayesSpec("bayes", 6, 2));
  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  // A Random job proposes inside the event, as before, and takes the free slots.
  std::vector<proto::wire::AssignTrial> r = Only<proto::wire::AssignTrial>(Submit(Spec("rand", "Random", 6, 2)));
  EXPECT_EQ(r.size(), 2u);
  EXPECT_TRUE(core_->TakeProposalRequests().empty()) << "Random is never asked off the core";
  Finish("w1", r[0], 1.0);
  EXPECT_EQ(core_->TrialsOf("rand").size(), 3u);
  // The Bayesian result (two configurations, for the two slots free when it was asked) lands.
  EXPECT_EQ(Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_)).size(),
            2u);
}

// Fair share with a proposal out: a slot freed by a Random job goes to the Bayesian job that has
// fewer running, even though its configuration takes a while to be made. The Random job took
// every slot the Bayesian one asked for while its proposal was out (and, assigning ahead, queued
// a successor behind each of its own), and held three quarters of a shared cluster.
TEST_F(ProposeOffCoreTest, ASlotAJobWithFewerRunningAskedForIsKeptForItWhileItsProposalIsOut) {
  for (const bool ahead : {false, true}) {
    SCOPED_TRACE(ahead ? "assigning ahead" : "not assigning ahead");
    options_.assign_ahead = ahead;
    auto fresh = SqliteJobStore::Open(":memory:");
    ASSERT_TRUE(fresh.ok());
    core_.reset();
    store_ = std::move(fresh).value();
    MakeCore();
    Register("w1", 4);
    const std::string rand = ahead ? "rand-a" : "rand", bayes = ahead ? "bayes-a" : "bayes";
    std::vector<proto::wire::AssignTrial> all = Only<proto::wire::AssignTrial>(Submit(Spec(rand, "Random", 40, 4)));
    std::vector<proto::wire::AssignTrial> r, queued;
    for (const auto& a : all) (a.after_trial.empty() ? r : queued).push_back(a);
    ASSERT_EQ(r.size(), 4u);
    ASSERT_EQ(queued.size(), ahead ? 4u : 0u) << "alone, it queues a successor behind each";
    std::vector<Outgoing> out = Submit(BayesSpec(bayes, 20, 4));
    EXPECT_TRUE(core_->TakeProposalRequests().empty()) << "no slot is free";
    // The successors are asked back (fair share) and the worker gives them back unstarted.
    EXPECT_EQ(Only<proto::wire::StopTrial>(out).size(), queued.size());
    for (const auto& q : queued) EndWith("w1", q.trial, q.attempt, "Stopped", "");
    // Each Random training job that ends frees a slot for the Bayesian job, until they share;
    // no successor of the Random job is queued ahead while the Bayesian job has fewer running.
    for (int i = 0; i < 2; ++i) {
      std::vector<proto::wire::AssignTrial> next = Only<proto::wire::AssignTrial>(Finish("w1", r[i], 1.0));
      EXPECT_TRUE(next.empty()) << rand << " took the slot " << bayes << " asked for: " << next[0].trial
                                << (next[0].after_trial.empty() ? "" : " (queued ahead)");
      std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
      ASSERT_EQ(reqs.size(), 1u);
      EXPECT_EQ(reqs[0].job, bayes);
      std::vector<ProposalResult> res;
      res.push_back(CoordinatorCore::RunProposal(reqs[0]));
      std::vector<proto::wire::AssignTrial> b = Only<proto::wire::AssignTrial>(core_->OnProposals(std::move(res), now_));
      ASSERT_EQ(b.size(), 1u);
      EXPECT_EQ(core_->FindTrial(b[0].trial)->tuning_job, bayes);
    }
    EXPECT_EQ(core_->Describe(rand)->status.training_job_status_counters->in_progress, 2);
    EXPECT_EQ(core_->Describe(bayes)->status.training_job_status_counters->in_progress, 2);
  }
}

TEST_F(ProposeOffCoreTest, AResultForAJobStoppedMeanwhileIsDroppedAndTheJobStops) {
  Register("w1", 2);
  Submit(BayesSpec("bayes", 6, 2));
  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("bayes", now_, &out).ok());
  EXPECT_EQ(*core_->Describe("bayes")->status.hyper_parameter_tuning_job_status, "Stopped");
  EXPECT_NE(core_->FindJob("bayes")->strategy, nullptr) << "its proposal is out: kept until it is back";
  EXPECT_TRUE(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_).empty());
  EXPECT_EQ(core_->FindJob("bayes")->strategy, nullptr) << "back, and the job has ended: released";
  EXPECT_TRUE(core_->TrialsOf("bayes").empty());
  EXPECT_TRUE(core_->TakeProposalRequests().empty());
}

TEST_F(ProposeOffCoreTest, CancelledRequestsAreAskedAgainAndTheirLateResultsIgnored) {
  Register("w1", 1);
  Submit(BayesSpec("bayes", 6, 1));
  std::vector<ProposalRequest> first = core_->TakeProposalRequests();
  ASSERT_EQ(first.size(), 1u);
  core_->CancelProposals();  // the dispatcher shut down with it out
  now_ += 500;
  core_->OnTick(now_);
  std::vector<ProposalRequest> again = core_->TakeProposalRequests();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].id, first[0].id);
  // The first request's result arrives late: ignored, the job still waits for the second.
  EXPECT_TRUE(core_->OnProposals({CoordinatorCore::RunProposal(first[0])}, now_).empty());
  EXPECT_TRUE(core_->TrialsOf("bayes").empty());
  ProposalResult unknown;
  unknown.job = "no-such-job";
  unknown.id = again[0].id;
  EXPECT_TRUE(core_->OnProposals({unknown}, now_).empty());
  EXPECT_EQ(Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(again[0])}, now_)).size(),
            1u);
}

// Records the curves its history showed it.
class CurveSpy : public Strategy {
 public:
  std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) override {
    seen.clear();
    for (const Observation& o : history) seen.push_back(o.curve ? std::optional<std::vector<double>>(*o.curve) : std::nullopt);
    return {};
  }
  bool Exhausted(const std::vector<Observation>&) const override { return false; }
  std::string Name() const override { return "Spy"; }
  Ahead ProposeAhead() const override { return Ahead::kNever; }
  std::vector<std::optional<std::vector<double>>> seen;
};

TEST(RunProposal, ShowsTheStrategyTheRequestsOwnCopiesOfTheCurves) {
  auto spy = std::make_shared<CurveSpy>();
  ProposalRequest r;
  r.strategy = spy;
  r.history.resize(3);
  r.curves = {std::vector<double>{3, 2, 1}, std::nullopt, std::vector<double>{}};
  const ProposalRequest copy = r;  // a request may be copied or moved: its history holds no pointer
  CoordinatorCore::RunProposal(r);
  EXPECT_EQ(spy->seen, r.curves) << "a parent's trial (nullopt) has no curve; a trial that emitted nothing an empty one";
  for (const Observation& o : r.history) EXPECT_EQ(o.curve, nullptr) << "no pointer into the request is left behind";
  ProposalRequest moved = copy;
  CoordinatorCore::RunProposal(moved);
  EXPECT_EQ(spy->seen, copy.curves);
}

TEST_F(ProposeOffCoreTest, AHyperbandJobProposesOffTheCoreAndStillStopsAtRungsWhileItsProposalIsOut) {
  Register("w1", 2);
  proto::TuningJobSpec spec = BayesSpec("hb", 40, 2);
  spec.hyper_parameter_tuning_job_config->strategy = "Hyperband";
  spec.training_job_definition->static_hyper_parameters["epochs"] = "9";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty()) << "a Hyperband proposal was made inside the event";
  const HyperbandSchedule s{1, 9, 3, false};  // rungs 1 and 3 in bracket 0
  auto bracket = [&](const proto::wire::AssignTrial& a) { return s.BracketOf(core_->FindTrial(a.trial)->index); };

  // Training jobs run one at a time to the end with a flat curve near 1.0 (1.00, 1.01, ...: all
  // equal would be nothing to model, and the strategy says so) until two of bracket 0 have, and
  // the one still running is of bracket 0 too; the request the last exit made stays out.
  std::vector<proto::wire::AssignTrial> running = Only<proto::wire::AssignTrial>(RunRequests());
  ASSERT_EQ(running.size(), 2u);
  int done_b0 = 0;
  std::map<std::string, double> level;
  for (int round = 0; round < 40; ++round) {
    const proto::wire::AssignTrial a = running.front();
    running.erase(running.begin());
    if (bracket(a) == 0) ++done_b0;
    now_ += 1000;
    level[a.trial] = 1.0 + 0.01 * round;
    Emit("w1", a, std::vector<double>(9, level[a.trial]));
    EXPECT_TRUE(Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed")).empty());
    if (done_b0 >= 2 && bracket(running.front()) == 0) break;
    for (auto& n : Only<proto::wire::AssignTrial>(RunRequests())) running.push_back(n);
  }
  ASSERT_GE(done_b0, 2);
  ASSERT_EQ(running.size(), 1u);
  const proto::wire::AssignTrial lagging = running.front();
  ASSERT_EQ(bracket(lagging), 0);
  ASSERT_TRUE(core_->FindJob("hb")->Proposing());

  // The core decides the rung by the job's schedule while the strategy is out.
  std::vector<proto::wire::StopTrial> stops = Only<proto::wire::StopTrial>(Emit("w1", lagging, {2.0}));
  ASSERT_EQ(stops.size(), 1u) << "2.0 at rung 1 is worse than the bracket's 1.0s";
  EXPECT_NE(stops[0].reason.find("Hyperband"), std::string::npos) << stops[0].reason;

  // The request carries copies of what each training job emitted.
  std::vector<ProposalRequest> reqs = core_->TakeProposalRequests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].strategy->Name(), "Hyperband");
  ASSERT_EQ(reqs[0].curves.size(), reqs[0].history.size());
  size_t full = 0;
  for (size_t i = 0; i < reqs[0].history.size(); ++i) {
    const Observation& o = reqs[0].history[i];
    EXPECT_EQ(o.curve, nullptr);
    ASSERT_TRUE(reqs[0].curves[i].has_value()) << o.trial;
    if (o.trial == lagging.trial) {
      EXPECT_EQ(*reqs[0].curves[i], std::vector<double>({})) << "asked for before it emitted";
    } else {
      EXPECT_EQ(*reqs[0].curves[i], std::vector<double>(9, level.at(o.trial))) << o.trial;
      ++full;
    }
  }
  EXPECT_GE(full, 3u);
  Exit("w1", lagging, "Stopped");
  EXPECT_EQ(Only<proto::wire::AssignTrial>(core_->OnProposals({CoordinatorCore::RunProposal(reqs[0])}, now_)).size(), 1u);
  const SuggestionStats* st = core_->Suggestions("hb");
  ASSERT_NE(st, nullptr);
  EXPECT_LT(st->fallbacks, st->count) << "the model proposed, not only random search";
  EXPECT_EQ(core_->FindTrial(lagging.trial)->state, TrialState::kStopped);
}

TEST_F(ProposeOffCoreTest, WithoutTheOptionTheProposalIsMadeInsideTheEvent) {
  options_.propose_off_core = false;
  MakeCore();
  Register("w1", 2);
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Submit(BayesSpec("bayes", 6, 2))).size(), 2u);
  EXPECT_TRUE(core_->TakeProposalRequests().empty());
}

}  // namespace
}  // namespace hpo::coordinator::coretest
