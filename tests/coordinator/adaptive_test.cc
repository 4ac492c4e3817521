// Adaptive tuning: the rules against hand-computed cases (coordinator/adaptive.h), the Hyperband
// strategy's model view, then the core acting on them (early stopping, Hyperband's rungs,
// completion criteria, warm start) with fake workers.
#include "coordinator/adaptive.h"

#include <gtest/gtest.h>

#include "coordinator/hyperband_strategy.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

using Curve = std::vector<double>;

std::vector<const std::vector<double>*> Ptrs(const std::vector<std::vector<double>>& curves) {
  std::vector<const std::vector<double>*> p;
  for (const auto& c : curves) p.push_back(&c);
  return p;
}

// ---- median rule -----------------------------------------------------------------------------

TEST(MedianRule, StopsAJobWorseThanTheMedianOfEarlierRunningAverages) {
  // Running averages at epoch 2: A (1+2)/2 = 1.5, B 2, C (3+4)/2 = 3.5; D has only 1 epoch.
  const std::vector<std::vector<double>> earlier = {{1, 2, 3}, {2, 2, 2}, {3, 4, 5}, {0.5}};
  MedianDecision d = MedianRule(Ptrs(earlier), Curve{2, 3.2}, /*maximize=*/false);
  EXPECT_EQ(d.epoch, 2u);
  EXPECT_EQ(d.peers, 3u);
  EXPECT_DOUBLE_EQ(d.median, 2.0);
  EXPECT_TRUE(d.stop) << "3.2 > 2 when minimizing";
  EXPECT_NE(d.Explain(false).find("median 2 of the running averages of 3 earlier"), std::string::npos);
  EXPECT_FALSE(MedianRule(Ptrs(earlier), Curve{2, 3.2}, /*maximize=*/true).stop) << "3.2 > 2 is better when maximizing";
  EXPECT_FALSE(MedianRule(Ptrs(earlier), Curve{2, 2.0}, false).stop) << "equal to the median is not worse";
  // Epoch 1: averages 1, 2, 3, 0.5 -> median (1 + 2) / 2 = 1.5.
  MedianDecision e1 = MedianRule(Ptrs(earlier), Curve{1.6}, false);
  EXPECT_EQ(e1.peers, 4u);
  EXPECT_DOUBLE_EQ(e1.median, 1.5);
  EXPECT_TRUE(e1.stop);
  // The report's ordinal in English ("the 71th value" was printed).
  for (const auto& [n, said] : std::vector<std::pair<size_t, std::string>>{
           {1, "1st"}, {2, "2nd"}, {3, "3rd"}, {4, "4th"}, {11, "11th"}, {12, "12th"}, {13, "13th"},
           {21, "21st"}, {71, "71st"}, {92, "92nd"}, {111, "111th"}, {123, "123rd"}}) {
    e1.epoch = n;
    EXPECT_NE(e1.Explain(false).find("(the " + said + " value it printed)"), std::string::npos) << e1.Explain(false);
  }
}

TEST(MedianRule, NeedsThreeEarlierJobsAtTheEpochAndAnEmission) {
  const std::vector<std::vector<double>> two = {{1, 1}, {1, 1}};
  MedianDecision d = MedianRule(Ptrs(two), Curve{9, 9}, false);
  EXPECT_EQ(d.peers, 2u);
  EXPECT_FALSE(d.stop);
  EXPECT_FALSE(MedianRule(Ptrs(two), Curve{}, false).stop);
  EXPECT_TRUE(MedianRule(Ptrs(two), Curve{9, 9}, false, /*min_peers=*/2).stop);
}

// ---- Hyperband -----------------------------------------------------------------------------

TEST(Hyperband, BracketsAndRungsFollowEta) {
  HyperbandSchedule s{1, 27, 3, true};
  EXPECT_EQ(s.Brackets(), 4);  // 1, 3, 9, 27
  EXPECT_EQ(s.Rungs(0), (std::vector<int64_t>{1, 3, 9}));
  EXPECT_EQ(s.Rungs(1), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(s.Rungs(2), (std::vector<int64_t>{9}));
  EXPECT_TRUE(s.Rungs(3).empty()) << "the last bracket runs every trial to MaxResource";
  EXPECT_EQ(s.AllRungs(), (std::vector<int64_t>{1, 3, 9, 27}));
  HyperbandSchedule odd{2, 20, 3, true};  // 2, 6, 18 < 20
  EXPECT_EQ(odd.Brackets(), 3);
  EXPECT_EQ(odd.Rungs(0), (std::vector<int64_t>{2, 6, 18}));
  EXPECT_EQ(odd.Rungs(2), (std::vector<int64_t>{18}));
  HyperbandSchedule flat{5, 5, 3, true};
  EXPECT_EQ(flat.Brackets(), 1);
  EXPECT_TRUE(flat.Rungs(0).empty());
}

TEST(Hyperband, TrialsAreSpreadOverBracketsByHyperbandsBudgetSplit) {
  HyperbandSchedule s{1, 27, 3, true};
  // Weights 27/4, 9/3, 3/2, 1/1 of 12.25: 55.1 %, 24.5 %, 12.2 %, 8.2 %.
  std::vector<int> count(4, 0);
  for (int i = 1; i <= 1000; ++i) ++count[static_cast<size_t>(s.BracketOf(i))];
  EXPECT_NEAR(count[0], 551, 15);
  EXPECT_NEAR(count[1], 245, 15);
  EXPECT_NEAR(count[2], 122, 15);
  EXPECT_NEAR(count[3], 82, 15);
  EXPECT_EQ(s.BracketOf(17), s.BracketOf(17)) << "a function of the index alone";
}

int FirstIndexIn(const HyperbandSchedule& s, int bracket) {
  for (int i = 1;; ++i) {
    if (s.BracketOf(i) == bracket) return i;
  }
}

TEST(Hyperband, AshaKeepsTheTopThirdAtARungAndNeverWaits) {
  HyperbandSchedule s{1, 27, 3, true};
  const int t = FirstIndexIn(s, 0);
  const std::vector<std::vector<double>> peers = {{1}, {2}, {3}, {4}, {5}};
  // Maximizing: the (1 - 1/3) quantile of 1..5 is 1 + (2/3) * 4 = 3.667.
  RungDecision d = AshaDecide(s, t, Curve{3.5}, Ptrs(peers), /*maximize=*/true);
  EXPECT_TRUE(d.at_rung);
  EXPECT_EQ(d.recorded, 5u);
  EXPECT_NEAR(d.cutoff, 3.6667, 1e-3);
  EXPECT_TRUE(d.stop);
  EXPECT_FALSE(AshaDecide(s, t, Curve{4}, Ptrs(peers), true).stop);
  // Minimizing: the 1/3 quantile, 1 + (1/3) * 4 = 2.333.
  EXPECT_NEAR(AshaDecide(s, t, Curve{2}, Ptrs(peers), false).cutoff, 2.3333, 1e-3);
  EXPECT_FALSE(AshaDecide(s, t, Curve{2}, Ptrs(peers), false).stop);
  EXPECT_TRUE(AshaDecide(s, t, Curve{2.5}, Ptrs(peers), false).stop);
  // The first at a rung goes on (asynchronous promotion: nobody waits for the rung to fill).
  EXPECT_FALSE(AshaDecide(s, t, Curve{100}, {}, true).stop);
  // Not a rung of its bracket: no decision.
  RungDecision between = AshaDecide(s, t, Curve{0, 0}, Ptrs(peers), true);
  EXPECT_FALSE(between.at_rung);
  EXPECT_FALSE(between.stop);
}

TEST(Hyperband, NeverStopsBeforeMinResourceAndStopsAtMaxResource) {
  HyperbandSchedule s{3, 9, 3, true};
  const int t = FirstIndexIn(s, 0);
  const std::vector<std::vector<double>> peers = {{9, 9, 9}, {9, 9, 9}, {9, 9, 9}};
  EXPECT_FALSE(AshaDecide(s, t, Curve{0}, Ptrs(peers), true).stop);
  EXPECT_FALSE(AshaDecide(s, t, Curve{0, 0}, Ptrs(peers), true).stop);
  EXPECT_TRUE(AshaDecide(s, t, Curve{0, 0, 0}, Ptrs(peers), true).stop) << "rung 3, worst of four";
  std::vector<double> full(9, 10.0);
  RungDecision at_max = AshaDecide(s, t, full, {}, true);
  EXPECT_TRUE(at_max.stop);
  EXPECT_TRUE(at_max.reached_max);
  EXPECT_NE(at_max.Explain(true).find("MaxResource (9 epochs)"), std::string::npos);
  s.stop_at_max = false;  // the program's own epochs end it there
  EXPECT_FALSE(AshaDecide(s, t, full, {}, true).stop);
  // Past MaxResource it did not end by itself (it ignores its epochs): stopped, at MaxResource's
  // name (a hyperband pass saw 12 values of a MaxResource 9 job and no stop).
  full.push_back(10.0);
  RungDecision past = AshaDecide(s, t, full, {}, true);
  EXPECT_TRUE(past.stop);
  EXPECT_NE(past.Explain(true).find("MaxResource (9 epochs)"), std::string::npos) << past.Explain(true);
}

TEST(Hyperband, ScheduleComesFromStrategyConfigOrTheEpochsHyperparameter) {
  proto::TuningJobSpec spec = Spec("hb", "Hyperband");
  auto& def = *spec.training_job_definition;
  def.static_hyper_parameters["epochs"] = "27";
  Result<HyperbandSchedule> from_epochs = HyperbandScheduleFor(spec, def);
  ASSERT_TRUE(from_epochs.ok());
  EXPECT_EQ(from_epochs->min_resource, 1);
  EXPECT_EQ(from_epochs->max_resource, 27);
  EXPECT_FALSE(from_epochs->stop_at_max) << "epochs=27 ends the program at MaxResource by itself";
  {  // fewer epochs than an explicit MaxResource: a program that reaches it ignores them
    proto::TuningJobSpec fewer = spec;
    fewer.hyper_parameter_tuning_job_config->strategy_config.emplace().hyperband_strategy_config =
        proto::HyperbandStrategyConfig{1, 30};
    Result<HyperbandSchedule> s = HyperbandScheduleFor(fewer, def);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->stop_at_max) << "epochs=27, MaxResource 30: one that gets to 30 is stopped there";
  }
  spec.hyper_parameter_tuning_job_config->strategy_config.emplace().hyperband_strategy_config =
      proto::HyperbandStrategyConfig{3, 9};
  Result<HyperbandSchedule> from_config = HyperbandScheduleFor(spec, def);
  ASSERT_TRUE(from_config.ok());
  EXPECT_EQ(from_config->min_resource, 3);
  EXPECT_EQ(from_config->max_resource, 9);
  EXPECT_TRUE(from_config->stop_at_max) << "the program would run 27 epochs: stop it at 9";
  def.static_hyper_parameters.clear();
  spec.hyper_parameter_tuning_job_config->strategy_config.reset();
  EXPECT_EQ(HyperbandScheduleFor(spec, def).status().code(), StatusCode::kInvalidArgument);
}

TEST(HyperbandStrategy, ModelSeesObjectivesAtTheHighestWellFilledRung) {
  proto::TuningJobSpec spec = Spec("hb", "Hyperband");
  spec.training_job_definition->static_hyper_parameters["epochs"] = "27";
  auto s = HyperbandStrategy::Create(spec, 7);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  // Levels 1, 3, 9, 27; the model needs max(3, min(D + 1, 20)) observations; D = 5 one-hot
  // coordinates here, so 6: no level has 6 curves, and the view is the history unchanged.
  const std::vector<std::vector<double>> curves = {
      {5, 4, 3, 2, 1, 1, 1, 1, 1}, {6, 5, 4}, {7, 6, 5}, {8}, {}, {9, 9, 9}, {9, 8, 7}, {4, 4, 4}};
  std::vector<Observation> history;
  const char* opts[] = {"sgd", "adam", "rmsprop"};
  const char* acts[] = {"relu", "tanh"};
  for (size_t i = 0; i < curves.size(); ++i) {
    Observation o;
    o.trial = "t" + std::to_string(i);
    o.hyperparameters = {{"opt", opts[i % 3]}, {"act", acts[i % 2]}};
    o.curve = &curves[i];
    o.objective = curves[i].empty() ? std::nullopt : std::optional<double>(curves[i].back());
    o.status = i == 4 ? Observation::kRunning : Observation::kStopped;
    history.push_back(o);
  }
  // Level 3 is reached by t0, t1, t2, t5, t6, t7: six curves, the highest level with six.
  std::vector<Observation> view = (*s)->ModelView(history);
  ASSERT_EQ(view.size(), history.size());
  EXPECT_EQ(view[0].objective, 3.0) << "t0 at its 3rd emission, not its final 1";
  EXPECT_EQ(view[0].status, Observation::kSucceeded);
  EXPECT_EQ(view[1].objective, 4.0);
  EXPECT_EQ(view[3].objective, 8.0) << "stopped below the level: its last value stands in";
  EXPECT_EQ(view[3].status, Observation::kSucceeded);
  EXPECT_EQ(view[4].status, Observation::kRunning) << "running below the level: pending";
  history.pop_back();  // five curves at level 3; level 1 has six (t0-t3, t5, t6)
  view = (*s)->ModelView(history);
  EXPECT_EQ(view[0].objective, 5.0);
  EXPECT_EQ(view[3].objective, 8.0);
  EXPECT_EQ(view[3].status, Observation::kSucceeded);
  history.pop_back();  // five at level 1 too: the history goes to the model unchanged
  view = (*s)->ModelView(history);
  EXPECT_EQ(view[0].objective, 1.0);
  EXPECT_EQ(view[3].status, Observation::kStopped);
}

// ---- completion criteria ---------------------------------------------------------------------

TEST(NotImproving, CountsJobsThatDoNotBeatTheBestByMoreThanOnePercent) {
  NotImprovingTracker t;
  t.Add(10, false);
  EXPECT_EQ(t.not_improving, 0);
  t.Add(9.95, false);  // 0.5 % better: not an improvement, but the new best
  EXPECT_EQ(t.not_improving, 1);
  EXPECT_EQ(t.best, 9.95);
  t.Add(9.8, false);  // beats 9.95 by 1.5 %
  EXPECT_EQ(t.not_improving, 0);
  t.Add(11, false);
  t.Add(9.8, false);
  EXPECT_EQ(t.not_improving, 2);
  NotImprovingTracker zero;
  zero.Add(0, true);
  zero.Add(0.001, true);  // any strict gain over a best of 0 counts
  EXPECT_EQ(zero.not_improving, 0);
  zero.Add(-1, true);
  EXPECT_EQ(zero.not_improving, 1);
}

TEST(Convergence, TheLastFifthMovedTheBestByLessThanATenthOfAPercentOfTheSpread) {
  std::vector<double> v;
  for (int i = 10; i >= 1; --i) v.push_back(i);  // 10 .. 1, improving
  for (int i = 0; i < 9; ++i) v.push_back(5);
  EXPECT_FALSE(Converged(v, false)) << "19 < 2 W = 20";
  v.push_back(5);
  EXPECT_TRUE(Converged(v, false));
  v.back() = 0.5;  // the last job improved the best by 0.5 of a spread of 9.5
  EXPECT_FALSE(Converged(v, false));
  EXPECT_TRUE(Converged(std::vector<double>(20, 3.0), true)) << "a constant objective has converged";
}

// ---- the core acting on the rules --------------------------------------------------------------

class AdaptiveCoreTest : public CoreTest {
 protected:
  // An early-stopping (Auto) Random job on one worker "w1" whose first three training jobs ran the
  // curve 3, 2, 1; its fourth assignment. Leases that outlast the fake worker's silence.
  proto::wire::AssignTrial FourthOfAnAutoJob(const std::string& name) {
    options_.lease_ms = 1'000'000;
    MakeCore();
    Register("w1", 1);
    proto::TuningJobSpec spec = Continuous(name, "Random", 8);
    spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
    auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
    for (int i = 0; i < 3; ++i) a = *Run("w1", a, {3, 2, 1});
    return a;
  }
  // Runs `a` through `losses` to the end; returns the next assignment, if any.
  std::optional<proto::wire::AssignTrial> Run(const std::string& wid, const proto::wire::AssignTrial& a,
                                              std::vector<double> losses) {
    Emit(wid, a, std::move(losses));
    auto next = Only<proto::wire::AssignTrial>(Exit(wid, a, "Completed"));
    if (next.empty()) return std::nullopt;
    return next[0];
  }
  // A Random job of 2 in parallel that completes after `jobs` training jobs not improving.
  static proto::TuningJobSpec NotImproving(const std::string& name, int max_jobs, int jobs) {
    proto::TuningJobSpec spec = Continuous(name, "Random", max_jobs);
    spec.hyper_parameter_tuning_job_config->resource_limits->max_parallel_training_jobs = 2;
    spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria.emplace()
        .best_objective_not_improving.emplace()
        .max_number_of_training_jobs_not_improving = jobs;
    return spec;
  }
  static proto::TuningJobSpec Continuous(const std::string& name, const std::string& strategy, int max_jobs) {
    proto::TuningJobSpec spec = Spec(name, strategy, max_jobs, 1);
    auto& ranges = *spec.hyper_parameter_tuning_job_config->parameter_ranges;
    ranges.categorical_parameter_ranges.clear();
    proto::NumericRange lr;
    lr.name = "lr";
    lr.min_value = "0.001";
    lr.max_value = "1";
    ranges.continuous_parameter_ranges.push_back(lr);
    return spec;
  }
};

// The parents' training jobs count against a warm-started job's quota. A Grid child that leaves
// MaxNumberOfTrainingJobs out runs every combination: those count (it was counted as 0, and ran
// past the quota). The advice is one that can be followed: never "at most 0", and for Grid, whose
// count is its combinations, fewer parents or a higher quota.
TEST_F(AdaptiveCoreTest, AWarmStartsQuotaCountsAGridChildsCombinationsAndAdvisesWhatCanChange) {
  options_.limits.max_training_jobs = options_.limits.max_training_jobs_bayesian = 8;
  MakeCore();
  Register("w1", 1);
  std::optional<proto::wire::AssignTrial> next =
      Only<proto::wire::AssignTrial>(Submit(Spec("gp", "Random", 4, 1))).at(0);
  double loss = 0.5;
  while (next) next = Run("w1", *next, {loss++});
  ASSERT_EQ(*core_->Describe("gp")->status.hyper_parameter_tuning_job_status, "Completed");
  auto child = [&](const std::string& name, const std::string& strategy, std::optional<int64_t> max_jobs) {
    proto::TuningJobSpec spec = Spec(name, strategy, 2, 1);
    spec.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = max_jobs;
    auto& w = spec.warm_start_config.emplace();
    w.parent_hyper_parameter_tuning_jobs.push_back({"gp"});
    w.warm_start_type = "TransferLearning";
    return spec;
  };
  std::vector<Outgoing> out;
  Result<std::string> grid =
      core_->Submit(child("gc", "Grid", std::nullopt), proto::Spelling::kApi, now_, &out);
  ASSERT_FALSE(grid.ok()) << "4 parents' training jobs and 6 combinations passed a quota of 8";
  EXPECT_EQ(grid.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(grid.status().message().find("plus this job's 6 (its Grid combinations) exceed the 8"), std::string::npos)
      << grid.status().message();
  EXPECT_NE(grid.status().message().find("a Grid job runs every combination: warm-start from fewer parents, or "
                                         "raise the quota"),
            std::string::npos)
      << grid.status().message();
  EXPECT_EQ(core_->FindJob("gc"), nullptr);

  options_.limits.max_training_jobs = options_.limits.max_training_jobs_bayesian = 4;
  MakeCore();
  Result<std::string> full = core_->Submit(child("gr", "Random", 1), proto::Spelling::kApi, now_, &out);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("the parents alone use 4 of the 4: warm-start from fewer parents, or raise"),
            std::string::npos)
      << full.status().message();
  EXPECT_EQ(full.status().message().find("at most 0"), std::string::npos) << full.status().message();
}

TEST_F(AdaptiveCoreTest, MedianRuleStopsALaggingTrialWhichKeepsItsObjective) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("es", "Random", 6);
  spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  std::string best;
  for (int i = 0; i < 3; ++i) {  // three full curves: running average at epoch 1 is 3 for each
    if (i == 1) best = a.trial;
    a = *Run("w1", a, {3, 2, i == 1 ? 0.5 : 1.0});
  }
  // Epoch 1: 2.5 is below the median 3 of the earlier running averages; epoch 2: 2.4 is below
  // their median (3 + 2) / 2 = 2.5. It goes on, and completes.
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Emit("w1", a, {2.5, 2.4})).empty());
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"));
  ASSERT_EQ(next.size(), 1u);
  const proto::wire::AssignTrial la = next[0];
  const std::string lagging = la.trial;
  auto stops = Only<proto::wire::StopTrial>(Emit("w1", la, {5}));
  ASSERT_EQ(stops.size(), 1u) << "5 at epoch 1 is above the median 3 of four earlier jobs (3, 3, 3, 2.5)";
  EXPECT_EQ(stops[0].trial, lagging);
  EXPECT_NE(stops[0].reason.find("median rule"), std::string::npos) << stops[0].reason;
  auto after = Only<proto::wire::AssignTrial>(Exit("w1", la, "Stopped"));
  const Trial* t = core_->FindTrial(lagging);
  EXPECT_EQ(t->state, TrialState::kStopped);
  EXPECT_EQ(t->objective, 5.0);
  auto d = core_->Describe("es");
  EXPECT_EQ(*d->status.objective_status_counters->succeeded, 5) << "a stopped trial's objective counts";
  EXPECT_EQ(*d->status.best_training_job->training_job_name, best);

  // A stop that comes after the program had ended (a trainer whose output came in one block at
  // its end): it completes, and its exit says the stop came too late (the history read as a
  // training job both stopped early and Completed).
  ASSERT_EQ(after.size(), 1u);
  ASSERT_EQ(Only<proto::wire::StopTrial>(Emit("w1", after[0], {6})).size(), 1u);
  Exit("w1", after[0], "Completed");
  EXPECT_EQ(core_->FindTrial(after[0].trial)->state, TrialState::kCompleted);
  std::string exited;
  for (const auto& e : *core_->Events("es", 0, 1000)) {
    if (e.kind == "TrialExited" && e.trial == after[0].trial) exited = e.message;
  }
  EXPECT_NE(exited.find("Completed objective=6: its program ended on its own before the stop (early stopping"),
            std::string::npos)
      << exited;
}

// Points that come seconds late (a coordinator outage) are not decided on: the program may have
// ended meanwhile, its exit report right behind them. A chaos pass saw a training job that had
// completed marked Stopping by the median rule first. The next point on time decides, if the
// program still runs.
TEST_F(AdaptiveCoreTest, EarlyStoppingWaitsForAPointThatComesOnTime) {
  auto a = FourthOfAnAutoJob("late-es");
  auto start = [&](const proto::wire::AssignTrial& x) {
    proto::wire::TrialStarted st;
    st.trial = x.trial;
    st.attempt = x.attempt;
    st.worker_id = "w1";
    st.started_at_ms = now_;  // heard at once: the worker's clock is the coordinator's
    core_->OnMessage("w1", st, now_);
  };
  auto points = [&](const proto::wire::AssignTrial& x, uint64_t seq, double loss, int64_t at) {
    proto::wire::MetricPoints m;
    m.trial = x.trial;
    m.attempt = x.attempt;
    m.seq = seq;
    m.points.push_back({"loss", loss, at, static_cast<uint32_t>(seq - 1)});
    sent_[x.trial] = seq;
    return Only<proto::wire::StopTrial>(core_->OnMessage("w1", m, now_));
  };
  // 5 at epoch 1 is above the median 3: stopped when heard on time (MedianRule... above). Heard
  // 30 s late, and the program then reports it completed.
  start(a);
  now_ += 30000;
  EXPECT_TRUE(points(a, 1, 5, now_ - 29000).empty()) << "heard 29 s late: not decided on";
  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"));
  const Trial* done = core_->FindTrial(a.trial);
  EXPECT_EQ(done->state, TrialState::kCompleted);
  for (const auto& st : done->secondary) EXPECT_NE(st.status, "Stopping") << st.message;
  // Late, then on time while the program still runs: decided on then.
  ASSERT_EQ(next.size(), 1u);
  start(next[0]);
  now_ += 30000;
  EXPECT_TRUE(points(next[0], 1, 5, now_ - 29000).empty());
  now_ += 500;
  auto stops = points(next[0], 2, 5, now_ - 100);
  ASSERT_EQ(stops.size(), 1u) << "the next point came on time";
  EXPECT_NE(stops[0].reason.find("median rule"), std::string::npos) << stops[0].reason;
}

// A Hyperband pass: a program completed during a coordinator outage; after the restart its worker
// registered again saying the attempt had ended (AttemptRef::ended), and its last points, a
// couple of seconds late, were decided on before its exit report: "EarlyStopped" and a Stopping
// step after its end. A program its worker says has ended is not stopped.
TEST_F(AdaptiveCoreTest, EarlyStoppingDoesNotStopAProgramItsWorkerSaysHasEnded) {
  const auto a = FourthOfAnAutoJob("ended-es");
  Started("w1", a);
  proto::wire::Heartbeat h;
  h.worker_id = "w1";
  h.seq = 1;
  h.sent_ms = now_;
  h.running.push_back({a.trial, a.attempt, /*ended=*/true});
  core_->OnMessage("w1", h, now_);
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Emit("w1", a, {5})).empty()) << "its program has ended";
  Exit("w1", a, "Completed");
  const Trial* done = core_->FindTrial(a.trial);
  EXPECT_EQ(done->state, TrialState::kCompleted);
  for (const auto& st : done->secondary) EXPECT_NE(st.status, "Stopping") << st.message;
  for (const auto& e : *core_->Events("ended-es", 0, 1000)) EXPECT_NE(e.kind, "EarlyStopped") << e.message;
}

// A two-host training job whose hosts both print the loss: algo-2's batch can arrive a flush
// before algo-1's. Early stopping waits a few seconds before deciding on a host other than
// algo-1 (algo-1's values, which take the metric over, count); a higher host that stays the
// metric's only source is decided on once settled.
TEST_F(AdaptiveCoreTest, TheMedianRuleDoesNotStopAGangOnAHigherHostsFirstValues) {
  Register("w1", 1);
  Register("w2", 1);
  proto::TuningJobSpec spec = Continuous("gang-es", "Random", 6);
  spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
  spec.training_job_definition->resource_config->instance_count = 2;
  std::map<std::string, std::string> host_of;  // worker -> its host of the current attempt
  proto::wire::AssignTrial a;
  auto take = [&](const std::vector<Outgoing>& out) {
    for (const auto& o : out) {
      if (const auto* x = std::get_if<proto::wire::AssignTrial>(&o.message)) {
        a = *x;
        host_of[o.worker_id] = x->current_host;
      }
    }
  };
  std::map<std::string, uint64_t> seq;  // per worker, this attempt
  auto worker = [&](const std::string& host) {
    for (const auto& [w, h] : host_of) {
      if (h == host) return w;
    }
    return std::string();
  };
  auto emit = [&](const std::string& host, std::vector<double> losses) {
    proto::wire::MetricPoints m;
    m.trial = a.trial;
    m.attempt = a.attempt;
    m.seq = ++seq[worker(host)];
    for (size_t i = 0; i < losses.size(); ++i) m.points.push_back({"loss", losses[i], now_, static_cast<uint32_t>(i)});
    return Only<proto::wire::StopTrial>(core_->OnMessage(worker(host), m, now_));
  };
  auto end = [&](const std::string& status) {
    std::vector<Outgoing> out;
    for (const char* host : {"algo-2", "algo-1"}) {
      proto::wire::TrialExited x;
      x.trial = a.trial;
      x.attempt = a.attempt;
      x.seq = seq[worker(host)];
      x.status = x.secondary_status = status;
      x.exit_code = 0;
      auto o = core_->OnMessage(worker(host), x, now_);
      out.insert(out.end(), o.begin(), o.end());
    }
    seq.clear();
    host_of.clear();
    take(out);
  };
  take(Submit(spec));
  for (int i = 0; i < 3; ++i) {  // three full curves, algo-1's: running average 3 at epoch 1
    for (const char* host : {"algo-1", "algo-2"}) Started(worker(host), a);
    emit("algo-1", {3, 2, 1});
    end("Completed");
  }
  // algo-2's 5 arrives first, algo-1's 2.5 a flush later: no stop on algo-2's value.
  for (const char* host : {"algo-1", "algo-2"}) Started(worker(host), a);
  const std::string good = a.trial;
  EXPECT_TRUE(emit("algo-2", {5}).empty()) << "algo-2's 5 is above the median, but not settled";
  now_ += 50;
  EXPECT_TRUE(emit("algo-1", {2.5}).empty()) << "algo-1's 2.5 is below the median 3";
  EXPECT_EQ(*core_->FindTrial(good)->objective, 2.5);
  end("Completed");
  // Only algo-2 prints the loss: once it has been the source for a few seconds, it is decided on.
  for (const char* host : {"algo-1", "algo-2"}) Started(worker(host), a);
  EXPECT_TRUE(emit("algo-2", {5}).empty());
  now_ += 3500;
  auto stops = emit("algo-2", {5});
  EXPECT_EQ(stops.size(), 2u) << "settled: stopped (both hosts are told)";
}

TEST_F(AdaptiveCoreTest, MedianRuleDoesNotStopATrialAtTheEpochThatEndsItAnyway) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("last", "Random", 6);  // static epochs = 3
  spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  for (int i = 0; i < 3; ++i) a = *Run("w1", a, {3, 2, 1});
  // Epochs 1 and 2 are below the medians (3, 2.5); epoch 3, the program's last, is far above
  // 2 but the program ends there: no stop to race its exit (found by bench/adaptive).
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Emit("w1", a, {2.9, 1.9, 100})).empty());
  Exit("w1", a, "Completed");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  EXPECT_FALSE(core_->FindTrial(a.trial)->stop_requested);
}

// A program that reports more often than its `epochs` (per step) is checked past it: every
// report from the third on was skipped, so such programs were never stopped early.

TEST_F(AdaptiveCoreTest, MedianRuleChecksReportsPastTheEpochsHyperparameter) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("steps", "Random", 6);  // static epochs = 3
  spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  for (int i = 0; i < 3; ++i) a = *Run("w1", a, {3, 2, 1, 1, 1, 1});
  // Six reports: the third (the `epochs` one) is not decided on, the fourth is, and 50 is far
  // worse than its peers' running medians.
  auto stops = Only<proto::wire::StopTrial>(Emit("w1", a, {2.9, 1.9, 100, 50}));
  EXPECT_EQ(stops.size(), 1u) << "stopped at report 4";
}

TEST_F(AdaptiveCoreTest, HyperbandStopsAtARungAndTheCurvesSurviveARestart) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("hb", "Hyperband", 30);
  spec.training_job_definition->static_hyper_parameters["epochs"] = "9";
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  HyperbandSchedule s{1, 9, 3, false};  // rungs 1, 3 in bracket 0
  // Run trials to the end with a good curve until two bracket-0 trials have done so.
  int done_in_b0 = 0;
  while (done_in_b0 < 2) {
    const int index = core_->FindTrial(a.trial)->index;
    if (s.BracketOf(index) == 0) ++done_in_b0;
    a = *Run("w1", a, std::vector<double>(9, 1.0));
  }
  // Skip to the next bracket-0 trial.
  while (s.BracketOf(core_->FindTrial(a.trial)->index) != 0) a = *Run("w1", a, std::vector<double>(9, 1.0));
  MakeCore();  // a coordinator restart: the curves come back from the store
  Register("w1", 1, {{a.trial, a.attempt}});
  auto stops = Only<proto::wire::StopTrial>(Emit("w1", a, {2.0}));
  ASSERT_EQ(stops.size(), 1u) << "2.0 at rung 1 is worse than the bracket's 1.0s (minimizing)";
  EXPECT_NE(stops[0].reason.find("Hyperband"), std::string::npos) << stops[0].reason;
  Exit("w1", a, "Stopped");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped);
}

TEST_F(AdaptiveCoreTest, BestObjectiveNotImprovingCompletesTheJobAndStopsTheRest) {
  Register("w1", 2);
  std::vector<proto::wire::AssignTrial> running = Only<proto::wire::AssignTrial>(Submit(NotImproving("ni", 50, 3)));
  ASSERT_EQ(running.size(), 2u);
  // Finishing order: 10, 9 (improves), 8.95 (0.6 %: no), 9.5 (no), 9.0 (no) -> 3 in a row.
  std::vector<double> losses = {10, 9, 8.95, 9.5, 9.0};
  std::vector<Outgoing> last;
  for (double loss : losses) {
    proto::wire::AssignTrial a = running.front();
    running.erase(running.begin());
    Emit("w1", a, {loss});
    last = Exit("w1", a, "Completed");
    for (auto& n : Only<proto::wire::AssignTrial>(last)) running.push_back(n);
  }
  auto stops = Only<proto::wire::StopTrial>(last);
  ASSERT_EQ(stops.size(), 1u) << "the one trial still running is stopped";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(last).empty());
  // The one it stops reports a value that does not improve either: the count the decision was
  // made on stays (it went on to 4, where the criterion's message said 3).
  Emit("w1", running.back(), {9.7});
  Exit("w1", running.back(), "Stopped");
  auto d = core_->Describe("ni");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.tuning_job_completion_details->number_of_training_jobs_objective_not_improving, 3);
  EXPECT_NE(core_->FindJob("ni")->completion_reason.find("BestObjectiveNotImproving"), std::string::npos);
  MakeCore();
  EXPECT_EQ(*core_->Describe("ni")->status.tuning_job_completion_details->number_of_training_jobs_objective_not_improving,
            3)
      << "after a restart too";
}

// The completion criteria count objectives in the order they were heard, and a restart counts
// them in the same order. It replayed them by end time, which an end heard late moves back (to
// when the training job ended, by the worker's clock): the restarted coordinator counted 0
// training jobs not improving where it had counted 1.
TEST_F(AdaptiveCoreTest, ARestartCountsObjectivesNotImprovingInTheOrderTheyWereHeard) {
  Register("w1", 1);
  Register("w2", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(NotImproving("order", 20, 5)));
  ASSERT_EQ(a.size(), 2u);
  auto on = [&](const proto::wire::AssignTrial& x) {
    return core_->FindTrial(x.trial)->worker_id;
  };
  auto start = [&](const proto::wire::AssignTrial& x) {
    proto::wire::TrialStarted s;
    s.trial = x.trial;
    s.attempt = x.attempt;
    s.worker_id = on(x);
    s.started_at_ms = now_;  // the worker's clock agrees with the coordinator's
    core_->OnMessage(s.worker_id, s, now_);
  };
  auto end = [&](const proto::wire::AssignTrial& x, int64_t ended_at, double loss) {
    proto::wire::TrialExited e;
    e.trial = x.trial;
    e.attempt = x.attempt;
    e.status = "Completed";
    e.secondary_status = "Completed";
    e.ended_at_ms = ended_at;
    e.final_metrics = {{"loss", loss}};
    core_->OnMessage(on(x), e, now_);
  };
  start(a[0]);
  start(a[1]);
  const int64_t began = now_;
  now_ += 30000;
  end(a[1], now_, 9.0);           // heard first: the best so far
  now_ += 100;
  end(a[0], began + 5000, 10.0);  // heard next, ended 25 s before the first: not improving
  EXPECT_LT(core_->FindTrial(a[0].trial)->end_ms, core_->FindTrial(a[1].trial)->end_ms) << "dated back";
  auto counted = [&] {
    return *core_->Describe("order")->status.tuning_job_completion_details->number_of_training_jobs_objective_not_improving;
  };
  ASSERT_EQ(counted(), 1);
  MakeCore();  // a coordinator restart
  EXPECT_EQ(counted(), 1) << "replayed in the order heard (10 after 9), not by end time";
}

TEST_F(AdaptiveCoreTest, MaxRuntimeInSecondsEndsTheJobCompleted) {
  options_.lease_ms = 1'000'000;  // the fake worker sends no heartbeats over these two minutes
  MakeCore();
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("rt", "Random", 50);
  spec.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds = 120;
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  a = *Run("w1", a, {1.0});
  Emit("w1", a, {2.0});
  now_ += 119'000;
  EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnTick(now_)).empty());
  now_ += 1'000;
  auto stops = Only<proto::wire::StopTrial>(core_->OnTick(now_));
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_NE(stops[0].reason.find("MaxRuntimeInSeconds"), std::string::npos);
  Exit("w1", a, "Stopped");
  auto d = core_->Describe("rt");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->completed, 1);
  EXPECT_EQ(*d->status.training_job_status_counters->stopped, 1);
}

// Ended by its runtime limit before any training job emitted the objective: Failed, as a job
// with no successful training job is, and its reason says the limit stopped them (it said only
// "No training job succeeded after 1 attempt", though none had failed).
TEST_F(AdaptiveCoreTest, AJobEndedByItsRuntimeLimitBeforeAnyObjectiveSaysSo) {
  options_.lease_ms = 1'000'000;
  MakeCore();
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("rt0", "Random", 50);
  spec.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds = 120;
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  Started("w1", a);
  now_ += 120'000;
  ASSERT_EQ(Only<proto::wire::StopTrial>(core_->OnTick(now_)).size(), 1u);
  Exit("w1", a, "Stopped");
  auto d = core_->Describe("rt0");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
  EXPECT_NE(d->status.failure_reason->find("Its ResourceLimits.MaxRuntimeInSeconds (120 s) was reached: that stopped 1 "
                                           "running training job(s) before it emitted the objective metric"),
            std::string::npos)
      << *d->status.failure_reason;
}

// SageMaker ends a tuning job at 30 days; here that quota is CoreOptions::max_tuning_job_runtime_s
// (hpo coordinator --max-tuning-job-runtime), for jobs that give no limit of their own.
TEST_F(AdaptiveCoreTest, TheRuntimeQuotaEndsAJobThatGivesNoLimit) {
  options_.lease_ms = 1'000'000;
  options_.max_tuning_job_runtime_s = 600;
  MakeCore();
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("quota", "Random", 50);
  spec.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds.reset();
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  a = *Run("w1", a, {1.0});
  Emit("w1", a, {2.0});
  now_ += 599'000;
  EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnTick(now_)).empty());
  now_ += 1'000;
  auto stops = Only<proto::wire::StopTrial>(core_->OnTick(now_));
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_NE(stops[0].reason.find("hpo coordinator --max-tuning-job-runtime"), std::string::npos) << stops[0].reason;
  Exit("w1", a, "Stopped");
  auto d = core_->Describe("quota");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->stopped, 1);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnTick(now_ + 1000)).empty()) << "nothing more starts";
}

// A limits pass: hpo run's quota was said to be hpo coordinator's option. The command that set it
// is named (CoreOptions::quota_command), also in the concurrent-jobs quota's refusal.
TEST_F(AdaptiveCoreTest, TheQuotasAreNamedAsTheCommandThatSetThemSpellsThem) {
  options_.lease_ms = 1'000'000;
  options_.max_tuning_job_runtime_s = 600;
  options_.max_concurrent_tuning_jobs = 1;
  options_.quota_command = "hpo run";
  MakeCore();
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("quota-run", "Random", 50);
  spec.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds.reset();
  Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  std::vector<Outgoing> out;
  const Result<std::string> second =
      core_->Submit(Continuous("quota-two", "Random", 5), proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(second.ok());
  const std::string said = second.status().message();
  EXPECT_EQ(said.find("this coordinator already runs 1 tuning job, its quota"), 0u) << said;
  EXPECT_NE(said.find("hpo run --max-concurrent-tuning-jobs"), std::string::npos) << said;
  now_ += 600'000;
  auto stops = Only<proto::wire::StopTrial>(core_->OnTick(now_));
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_NE(stops[0].reason.find("hpo run --max-tuning-job-runtime"), std::string::npos) << stops[0].reason;
}

// A job's own ResourceLimits.MaxRuntimeInSeconds wins over the quota, longer or shorter; 0 turns
// the quota off. Before any objective the quota's end says what to change.
TEST_F(AdaptiveCoreTest, AJobsOwnRuntimeLimitWinsOverTheQuota) {
  options_.lease_ms = 1'000'000'000'000;  // the fake workers send no heartbeats over these days
  options_.max_tuning_job_runtime_s = 600;
  MakeCore();
  Register("w1", 3);
  proto::TuningJobSpec own = Continuous("own", "Random", 50);
  own.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds = 1200;
  auto a = Only<proto::wire::AssignTrial>(Submit(own)).at(0);
  Started("w1", a);
  now_ += 700'000;
  EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnTick(now_)).empty()) << "its own 1200 s, not the quota's 600";
  now_ += 500'000;
  ASSERT_EQ(Only<proto::wire::StopTrial>(core_->OnTick(now_)).size(), 1u);

  options_.max_tuning_job_runtime_s = 0;
  MakeCore();
  Register("w2", 3);
  proto::TuningJobSpec none = Continuous("nolimit", "Random", 50);
  none.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds.reset();
  auto b = Only<proto::wire::AssignTrial>(Submit(none));
  ASSERT_FALSE(b.empty());
  Started("w2", b.at(0));
  now_ += 100LL * 86400 * 1000;
  for (const auto& stop : Only<proto::wire::StopTrial>(core_->OnTick(now_))) {
    EXPECT_NE(stop.trial, b.at(0).trial) << "no quota: " << stop.reason;
  }

  options_.max_tuning_job_runtime_s = 600;
  MakeCore();
  Register("w3", 3);
  proto::TuningJobSpec early = Continuous("early", "Random", 50);
  early.hyper_parameter_tuning_job_config->resource_limits->max_runtime_in_seconds.reset();
  auto c = Only<proto::wire::AssignTrial>(Submit(early)).at(0);
  Started("w3", c);
  now_ += 600'000;
  core_->OnTick(now_);
  Exit("w3", c, "Stopped");
  auto d = core_->Describe("early");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
  EXPECT_NE(d->status.failure_reason->find("The coordinator's runtime quota for a tuning job (600 s) was reached"),
            std::string::npos)
      << *d->status.failure_reason;
}

// A running training job's objective so far is not final: its summary has no
// FinalHyperParameterTuningJobObjectiveMetric until it ends (ObjectiveStatus Pending), as on
// SageMaker. Lists gave one, so a script picking the best mid-run took a running job and the
// SDK's analytics showed a FinalObjectiveValue that then changed.
TEST_F(AdaptiveCoreTest, ARunningTrainingJobShowsNoFinalObjectiveUntilItEnds) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Continuous("live", "Random", 2))).at(0);
  Emit("w1", a, {0.7, 0.4});
  proto::TrainingJobSummary running = core_->Summary(*core_->FindTrial(a.trial));
  EXPECT_EQ(*running.training_job_status, "InProgress");
  EXPECT_EQ(*running.objective_status, "Pending");
  EXPECT_FALSE(running.final_hyper_parameter_tuning_job_objective_metric.has_value());
  Exit("w1", a, "Completed");
  const proto::TrainingJobSummary done = core_->Summary(*core_->FindTrial(a.trial));
  ASSERT_TRUE(done.final_hyper_parameter_tuning_job_objective_metric.has_value());
  EXPECT_EQ(*done.final_hyper_parameter_tuning_job_objective_metric->value, 0.4);
  EXPECT_EQ(*done.objective_status, "Succeeded");
}

// A training job that reported its objective and then failed has no final objective, as on
// SageMaker: its summary gave one beside ObjectiveStatus Failed, so describe ranked it among the
// ten best and a list sorted by the objective mixed it in with the completed ones.
TEST_F(AdaptiveCoreTest, AFailedTrainingJobShowsNoFinalObjective) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Continuous("fo", "Random", 2))).at(0);
  auto next = Only<proto::wire::AssignTrial>(Finish("w1", a, 0.1, "Failed"));
  ASSERT_EQ(next.size(), 1u);
  Finish("w1", next[0], 0.5);
  const proto::TrainingJobSummary failed = core_->Summary(*core_->FindTrial(a.trial));
  EXPECT_EQ(*failed.training_job_status, "Failed");
  EXPECT_FALSE(failed.final_hyper_parameter_tuning_job_objective_metric.has_value());
  EXPECT_EQ(*failed.objective_status, "Failed");
  EXPECT_FALSE(core_->FindTrial(a.trial)->ShowsObjective());
  auto d = core_->Describe("fo");
  ASSERT_TRUE(d->status.best_training_job.has_value());
  EXPECT_EQ(*d->status.best_training_job->training_job_name, next[0].trial);
  EXPECT_EQ(*d->status.objective_status_counters->failed, 1);
}

// A lost attempt's training time ends when it was last heard of: its worker's last message, or
// the coordinator's last sign of life before a restart. The lease that declared it lost (10 s on
// a cluster) and a coordinator's downtime (hpo run killed overnight, then resumed) were billed.
TEST_F(AdaptiveCoreTest, ALostAttemptIsNotBilledForTheLeaseNorTheDowntime) {
  options_.lease_ms = 10'000;
  MakeCore();
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("lost", "Random", 4);
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  Started("w1", a);
  now_ += 3000;
  Emit("w1", a, {1.0}, 2);  // the last the coordinator hears of w1
  now_ += options_.lease_ms + 1;
  core_->OnTick(now_);
  const Trial* t = core_->FindTrial(a.trial);
  EXPECT_EQ(t->training_ms, 3000) << "not 3 s plus the 10 s lease";

  // Another attempt on w2, once w1's guard has ended the first (Trial::fenced_until_ms); the
  // coordinator ticks (its sign of life), then is down for an hour.
  Register("w2", 1);
  now_ += proto::wire::StallKillAfterMs(options_.lease_ms);
  core_->OnMessage("w2", proto::wire::Heartbeat{"w2", 1, 1, {}}, now_);
  core_->OnTick(now_);
  const Trial* u = nullptr;
  for (const Trial* x : core_->TrialsOf("lost")) {
    if (x->Active() && x->worker_id == "w2") u = x;
  }
  ASSERT_NE(u, nullptr);
  proto::wire::AssignTrial b;
  b.trial = u->name;
  b.attempt = u->attempt;
  Started("w2", b);
  const int64_t before = u->training_ms;
  now_ += 6000;
  core_->OnTick(now_);  // alive at start + 6 s (written at most every 5 s)
  now_ += 3'600'000;
  MakeCore();
  core_->OnTick(now_);
  now_ += options_.lease_ms + 1;
  core_->OnTick(now_);  // w2 did not come back
  u = core_->FindTrial(b.trial);
  EXPECT_EQ(u->training_ms - before, 6000) << "not the hour the coordinator was down";
}

TEST_F(AdaptiveCoreTest, ConvergenceDetectedCompletesAndRecordsTheTime) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Continuous("cv", "Random", 100);
  spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria.emplace()
      .convergence_detected.emplace()
      .complete_on_convergence = "Enabled";
  auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
  std::optional<proto::wire::AssignTrial> next = a;
  int ran = 0;
  while (next) {
    ++ran;
    now_ += 1000;
    next = Run("w1", *next, {ran <= 10 ? 11.0 - ran : 5.0});
  }
  EXPECT_EQ(ran, 20) << "10 improving jobs, then 10 that do not move the best";
  auto d = core_->Describe("cv");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  ASSERT_TRUE(d->status.tuning_job_completion_details->convergence_detected_time);
  EXPECT_EQ(d->status.tuning_job_completion_details->convergence_detected_time->unix_millis, now_);
  MakeCore();
  EXPECT_EQ(core_->Describe("cv")->status.tuning_job_completion_details->convergence_detected_time->unix_millis, now_)
      << "kept across a restart";
}

TEST_F(AdaptiveCoreTest, WarmStartChecksParentsFeedsTheModelAndReportsTheOverallBest) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Continuous("parent", "Random", 4))).at(0);
  std::optional<proto::wire::AssignTrial> next = a;
  std::string parent_best;
  double loss = 0.5;
  while (next) {
    if (loss == 0.5) parent_best = next->trial;
    next = Run("w1", *next, {loss});
    loss += 1;
  }
  ASSERT_EQ(*core_->Describe("parent")->status.hyper_parameter_tuning_job_status, "Completed");

  auto child = [&](const std::string& name, const std::string& parent, const std::string& type) {
    proto::TuningJobSpec spec = Continuous(name, "Bayesian", 3);
    auto& w = spec.warm_start_config.emplace();
    w.parent_hyper_parameter_tuning_jobs.push_back({parent});
    w.warm_start_type = type;
    return spec;
  };
  std::vector<Outgoing> out;
  Result<std::string> missing = core_->Submit(child("c0", "nope", "IdenticalDataAndAlgorithm"), proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("\"nope\": no such tuning job"), std::string::npos)
      << missing.status().message();
  // In the spelling the spec came in: a Kubernetes resource's field (it named SageMaker's).
  EXPECT_EQ(missing.status().message().rfind("spec.warmStartConfig.parentHyperParameterTuningJobs[0] ", 0), 0u)
      << missing.status().message();
  proto::TuningJobSpec other_metric = child("c1", "parent", "IdenticalDataAndAlgorithm");
  other_metric.hyper_parameter_tuning_job_config->hyper_parameter_tuning_job_objective->type = "Maximize";
  Result<std::string> bad = core_->Submit(other_metric, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("same objective metric and type"), std::string::npos);
  proto::TuningJobSpec too_many = child("c2", "parent", "IdenticalDataAndAlgorithm");
  too_many.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 747;
  Result<std::string> over = core_->Submit(too_many, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("set it to at most 746"), std::string::npos) << over.status().message();
  // The same quota as MaxNumberOfTrainingJobs alone: ResourceLimitExceeded, naming the option
  // (an AMT pass found a ValidationException that did not say the limit can be raised).
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.status().message().find("raise the quota (per account on SageMaker, an option here) with "
                                         "--max-training-jobs (hpo coordinator"),
            std::string::npos)
      << over.status().message();
  // Warm start needs the same hyperparameters: as many, the same names, a tunable one keeping
  // its type; and a parent that has ended.
  auto refused = [&](proto::TuningJobSpec spec, const std::string& why) {
    std::vector<Outgoing> ignored;
    Result<std::string> r = core_->Submit(spec, proto::Spelling::kCrd, now_, &ignored);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().message();
    EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status().message();
    EXPECT_EQ(core_->FindJob(*spec.hyper_parameter_tuning_job_name), nullptr);
  };
  proto::TuningJobSpec extra = child("c4", "parent", "IdenticalDataAndAlgorithm");
  extra.training_job_definition->static_hyper_parameters["momentum"] = "0.9";
  refused(extra, "warm start needs the same number of hyperparameters");
  proto::TuningJobSpec renamed = child("c5", "parent", "IdenticalDataAndAlgorithm");
  renamed.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges[0].name = "rate";
  refused(renamed, "it has no hyperparameter \"rate\"; warm start needs the same hyperparameters");
  proto::TuningJobSpec retyped = child("c6", "parent", "IdenticalDataAndAlgorithm");
  auto& rr = *retyped.hyper_parameter_tuning_job_config->parameter_ranges;
  proto::NumericRange lr_int = rr.continuous_parameter_ranges[0];
  lr_int.min_value = "1";
  lr_int.max_value = "10";
  rr.continuous_parameter_ranges.clear();
  rr.integer_parameter_ranges.push_back(lr_int);
  refused(retyped, "a tunable hyperparameter keeps its type");
  auto held = Only<proto::wire::AssignTrial>(Submit(Continuous("running", "Random", 5)));
  refused(child("c7", "running", "IdenticalDataAndAlgorithm"),
          "\"running\": is InProgress; a parent must be Completed, Stopped or Failed");
  std::vector<Outgoing> running_stops;
  ASSERT_TRUE(core_->Stop("running", now_, &running_stops).ok());  // it gives the slot back
  for (const auto& a : held) Exit("w1", a, "Stopped");
  EXPECT_EQ(core_->FindJob("c0"), nullptr);
  // A new image with identical data: SageMaker allows a new version that leaves the algorithm as
  // it is (logging, a data format), which only its author can tell: accepted, and noted.
  proto::TuningJobSpec new_image = child("c3", "parent", "IdenticalDataAndAlgorithm");
  new_image.training_job_definition->algorithm_specification->training_image = "/bin/false";
  Result<std::string> other_image = core_->Submit(new_image, proto::Spelling::kCrd, now_, &out);
  ASSERT_TRUE(other_image.ok()) << other_image.status().message();
  auto noted = core_->Events("c3", 0, 100);
  ASSERT_TRUE(noted.ok());
  EXPECT_TRUE(std::any_of(noted->begin(), noted->end(), [](const EventRow& e) {
    return e.kind == "WarmStart" && e.message.find("ran the training image") != std::string::npos;
  }));
  std::vector<Outgoing> c3_stops;
  ASSERT_TRUE(core_->Stop("c3", now_, &c3_stops).ok());  // it gives the slot back
  for (const auto& a : Only<proto::wire::AssignTrial>(out)) Exit("w1", a, "Stopped");
  new_image.warm_start_config->warm_start_type = "TransferLearning";
  new_image.hyper_parameter_tuning_job_name = "c3-transfer";
  out.clear();
  EXPECT_TRUE(core_->Submit(new_image, proto::Spelling::kCrd, now_, &out).ok()) << "a new algorithm: TransferLearning";
  std::vector<Outgoing> stops;
  ASSERT_TRUE(core_->Stop("c3-transfer", now_, &stops).ok());  // it gives the slot back
  for (const auto& a : Only<proto::wire::AssignTrial>(out)) Exit("w1", a, "Stopped");

  // The parent's four observations reach the model on the child's very first suggestion.
  auto first = Only<proto::wire::AssignTrial>(Submit(child("kid", "parent", "IdenticalDataAndAlgorithm")));
  ASSERT_EQ(first.size(), 1u);
  const SuggestionStats* st = core_->Suggestions("kid");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->last.observations, 4u);
  EXPECT_TRUE(st->last.fallback.empty()) << st->last.fallback;
  Run("w1", first[0], {7.0});
  auto d = core_->Describe("kid");
  ASSERT_TRUE(d->status.overall_best_training_job);
  EXPECT_EQ(*d->status.overall_best_training_job->training_job_name, parent_best);
  EXPECT_NE(*d->status.best_training_job->training_job_name, parent_best);

  // TransferLearning: the parents enter with a task coordinate of their own.
  Register("w2", 1);  // w1 runs kid's next trial
  auto tl = Only<proto::wire::AssignTrial>(Submit(child("tl", "parent", "TransferLearning")));
  ASSERT_EQ(tl.size(), 1u);
  EXPECT_EQ(core_->Suggestions("tl")->last.observations, 4u) << core_->Suggestions("tl")->last.fallback;
  Run("w2", tl[0], {7.0});
  EXPECT_FALSE(core_->Describe("tl")->status.overall_best_training_job)
      << "SageMaker gives OverallBestTrainingJob for IdenticalDataAndAlgorithm only";
}

// A child whose range is narrower than its parent's (allowed for a warm start): the parent's
// training jobs outside it are left out of the child's model. They were clamped onto the
// child's boundary, as if their results had been seen there.
TEST_F(AdaptiveCoreTest, AWarmStartLeavesOutParentsTrainingJobsOutsideTheChildsRanges) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Continuous("wide", "Random", 6))).at(0);
  std::optional<proto::wire::AssignTrial> next = a;
  size_t inside = 0;
  while (next) {
    if (std::stod(next->hyperparameters.at("lr")) >= 0.5) ++inside;
    next = Run("w1", *next, {1.0});
  }
  ASSERT_EQ(*core_->Describe("wide")->status.hyper_parameter_tuning_job_status, "Completed");
  proto::TuningJobSpec child = Continuous("narrow", "Bayesian", 3);
  child.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges[0].min_value = "0.5";
  auto& w = child.warm_start_config.emplace();
  w.parent_hyper_parameter_tuning_jobs.push_back({"wide"});
  w.warm_start_type = "IdenticalDataAndAlgorithm";
  ASSERT_EQ(Only<proto::wire::AssignTrial>(Submit(child)).size(), 1u);
  ASSERT_LT(inside, 6u) << "the test needs parent points below 0.5";
  EXPECT_EQ(core_->Suggestions("narrow")->last.observations, inside);
}

// A parent with two definitions, each with its own objective (defA: loss, defB: lossB): only
// defA's training jobs measured a child's loss. defB's used to enter the child's model as loss
// values, and its best (lossB 0.01) was the child's OverallBestTrainingJob.
TEST_F(AdaptiveCoreTest, AWarmStartFromAMultiDefinitionParentTakesOnlyTheTrainingJobsOfItsObjective) {
  Register("w1", 1);
  proto::TuningJobSpec parent = Continuous("mdparent", "Random", 6);
  auto& cfg = *parent.hyper_parameter_tuning_job_config;
  proto::TrainingJobDefinition a = *parent.training_job_definition;
  a.definition_name = "defA";
  a.hyper_parameter_ranges = cfg.parameter_ranges;
  a.tuning_objective = cfg.hyper_parameter_tuning_job_objective;
  proto::TrainingJobDefinition b = a;
  b.definition_name = "defB";
  b.tuning_objective->metric_name = "lossB";
  b.algorithm_specification->metric_definitions = {{"lossB", "lossB=([0-9.]+)"}};
  // defC measures loss too, but tunes one more hyperparameter: it does not fit the child either.
  proto::TrainingJobDefinition c = a;
  c.definition_name = "defC";
  c.hyper_parameter_ranges->continuous_parameter_ranges.push_back({"extra", "0", "1", std::nullopt});
  parent.training_job_definition.reset();
  cfg.parameter_ranges.reset();
  cfg.hyper_parameter_tuning_job_objective.reset();
  parent.training_job_definitions = {a, b, c};
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Submit(parent, proto::Spelling::kCrd, now_, &out).ok());
  std::optional<proto::wire::AssignTrial> next = Only<proto::wire::AssignTrial>(out).at(0);
  std::string best_a;
  double best_a_loss = 1e9;
  int ran_a = 0, ran_c = 0;
  for (double v = 5; next; v -= 0.5) {
    const proto::wire::AssignTrial at = *next;
    Started("w1", at);
    proto::wire::MetricPoints m;
    m.trial = at.trial;
    m.attempt = at.attempt;
    m.seq = 1;
    const bool other = at.definition_name != "defA";  // the best values, of defB's and defC's
    ran_c += at.definition_name == "defC";
    m.points.push_back({at.objective_metric, other ? 0.01 : v, now_, 0});
    sent_[at.trial] = 1;
    core_->OnMessage("w1", m, now_);
    if (!other) {
      ++ran_a;
      if (v < best_a_loss) best_a_loss = v, best_a = at.trial;
    }
    auto more = Only<proto::wire::AssignTrial>(Exit("w1", at, "Completed"));
    next = more.empty() ? std::nullopt : std::optional(more[0]);
  }
  ASSERT_EQ(*core_->Describe("mdparent")->status.hyper_parameter_tuning_job_status, "Completed");
  ASSERT_GT(ran_a, 0);
  ASSERT_LT(ran_a, 6) << "other definitions ran";
  ASSERT_GT(ran_c, 0) << "defC ran";

  proto::TuningJobSpec child = Continuous("mdchild", "Bayesian", 3);
  child.warm_start_config.emplace().parent_hyper_parameter_tuning_jobs.push_back({"mdparent"});
  child.warm_start_config->warm_start_type = "IdenticalDataAndAlgorithm";
  auto first = Only<proto::wire::AssignTrial>(Submit(child));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(core_->Suggestions("mdchild")->last.observations, static_cast<size_t>(ran_a))
      << "only defA's training jobs measured loss on the child's hyperparameters";
  auto events = core_->Events("mdchild", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [](const EventRow& e) {
    return e.kind == "WarmStart" && e.message.find("only the training jobs of defA") != std::string::npos;
  }));
  Run("w1", first[0], {7.0});
  auto d = core_->Describe("mdchild");
  ASSERT_TRUE(d->status.overall_best_training_job);
  EXPECT_EQ(*d->status.overall_best_training_job->training_job_name, best_a);
  EXPECT_EQ(*d->status.overall_best_training_job->final_hyper_parameter_tuning_job_objective_metric->metric_name,
            "loss");

  // A child whose objective none of the parent's definitions measured is refused, naming both.
  proto::TuningJobSpec other = Continuous("mdother", "Bayesian", 3);
  other.hyper_parameter_tuning_job_config->hyper_parameter_tuning_job_objective->metric_name = "acc";
  other.training_job_definition->algorithm_specification->metric_definitions = {{"acc", "acc=([0-9.]+)"}};
  other.warm_start_config = child.warm_start_config;
  Result<std::string> refused = core_->Submit(other, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("its definition \"defA\"'s objective is Minimize loss, this job's is "
                                            "Minimize acc"),
            std::string::npos)
      << refused.status().message();
}

// ConsumedResources.RuntimeInSeconds is the job's wall time (SageMaker: "the wall clock runtime
// in seconds used by your hyperparameter tuning job"), not the sum of its training jobs' times.
TEST_F(AdaptiveCoreTest, ConsumedRuntimeIsTheTuningJobsWallTime) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Continuous("wall", "Random", 2)));
  ASSERT_EQ(a.size(), 1u);
  now_ += 30'000;
  EXPECT_EQ(*core_->Describe("wall", now_)->status.consumed_resources->runtime_in_seconds, 30) << "while it runs";
  auto b = Run("w1", a[0], {1.0});
  ASSERT_TRUE(b);
  now_ += 20'000;
  EXPECT_FALSE(Run("w1", *b, {2.0}));
  ASSERT_EQ(*core_->Describe("wall")->status.hyper_parameter_tuning_job_status, "Completed");
  now_ += 100'000;
  EXPECT_EQ(*core_->Describe("wall", now_)->status.consumed_resources->runtime_in_seconds, 50)
      << "ended: from its creation to its end, whenever asked";
}

}  // namespace
}  // namespace hpo::coordinator
