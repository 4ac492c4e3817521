#include "coordinator/importance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/rng.h"
#include "tests/coordinator/core_fixture.h"
#include "tests/coordinator/ranges.h"

namespace hpo::coordinator {
namespace {

using test::Num;

SearchSpace Space(const proto::ParameterRanges& ranges) {
  auto s = SearchSpace::FromRanges(ranges);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return *s;
}

double Get(const Config& c, const std::string& name) { return std::stod(c.at(name)); }

// `n` configurations as Random search draws them, with f's value.
std::vector<std::pair<Config, double>> Observe(const SearchSpace& space, size_t n,
                                               const std::function<double(const Config&)>& f, uint64_t seed = 7) {
  Rng rng(seed);
  std::vector<std::pair<Config, double>> obs;
  for (size_t i = 0; i < n; ++i) {
    Config c = space.Sample(rng);
    const double v = f(c);
    obs.emplace_back(std::move(c), v);
  }
  return obs;
}

const ParameterImportance& Of(const ImportanceReport& r, const std::string& name) {
  for (const auto& p : r.parameters) {
    if (p.name == name) return p;
  }
  ADD_FAILURE() << "no " << name;
  return r.parameters.front();
}

TEST(Importance, AnAdditiveObjectiveSplitsItsVarianceAsItsTermsDo) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "0", "1"), Num("b", "0", "1"), Num("c", "0", "1")};
  const SearchSpace space = Space(r);
  // Var(4a) = 16/12, Var(2b) = 4/12, c does nothing: a 0.8, b 0.2, c 0.
  auto f = [](const Config& c) { return 4 * Get(c, "a") + 2 * Get(c, "b"); };
  auto rep = EstimateImportance(space, Observe(space, 60, f), false);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_FALSE(rep->flat);
  EXPECT_EQ(rep->observations, 60u);
  ASSERT_EQ(rep->parameters.size(), 3u);
  EXPECT_EQ(rep->parameters[0].name, "a");
  EXPECT_EQ(rep->parameters[1].name, "b");
  EXPECT_EQ(rep->parameters[2].name, "c");
  EXPECT_NEAR(Of(*rep, "a").first_order, 0.8, 0.06);
  EXPECT_NEAR(Of(*rep, "b").first_order, 0.2, 0.06);
  EXPECT_LT(Of(*rep, "c").total, 0.03);
  // No interaction: each total is its first order.
  EXPECT_NEAR(Of(*rep, "a").total, Of(*rep, "a").first_order, 0.06);
}

// A total share below its first order read as a contradiction ("99 % alone, 98 % with
// interactions"), and a definition's only hyperparameter showed neither at 100 %.
TEST(Importance, ATotalIsNeverBelowItsFirstOrderAndOneHyperparameterHoldsAll) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "0", "1"), Num("b", "0", "1"), Num("c", "0", "1")};
  const SearchSpace space = Space(r);
  auto f = [](const Config& c) { return 4 * Get(c, "a") + 2 * Get(c, "b") + 0.1 * Get(c, "c"); };
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto rep = EstimateImportance(space, Observe(space, 30, f, seed), false);
    ASSERT_TRUE(rep.ok()) << rep.status().message();
    for (const auto& p : rep->parameters) EXPECT_GE(p.total, p.first_order) << p.name << " seed " << seed;
  }
  proto::ParameterRanges one;
  one.continuous_parameter_ranges = {Num("y", "0", "1")};
  const SearchSpace alone = Space(one);
  auto rep = EstimateImportance(alone, Observe(alone, 20, [](const Config& c) { return std::sin(3 * Get(c, "y")); }),
                                false);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  ASSERT_EQ(rep->parameters.size(), 1u);
  EXPECT_EQ(rep->parameters[0].first_order, 1.0);
  EXPECT_EQ(rep->parameters[0].total, 1.0);
}

TEST(Importance, AnInteractionShowsInTheTotalsNotTheFirstOrders) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "-1", "1"), Num("b", "-1", "1"), Num("c", "-1", "1")};
  const SearchSpace space = Space(r);
  // a * b: neither explains anything alone, each all of it with the other.
  auto f = [](const Config& c) { return Get(c, "a") * Get(c, "b"); };
  auto rep = EstimateImportance(space, Observe(space, 80, f), false);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_LT(Of(*rep, "a").first_order, 0.1);
  EXPECT_LT(Of(*rep, "b").first_order, 0.1);
  EXPECT_GT(Of(*rep, "a").total, 0.85);
  EXPECT_GT(Of(*rep, "b").total, 0.85);
  EXPECT_LT(Of(*rep, "c").total, 0.05);
}

TEST(Importance, ACategoricalIsOneHyperparameterAndALogRangeIsJudgedInItsScale) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("lr", "0.0001", "1", "Logarithmic"), Num("noise", "0", "1")};
  proto::CategoricalRange opt;
  opt.name = "optimizer";
  opt.values = {"sgd", "adam", "rmsprop"};
  r.categorical_parameter_ranges = {opt};
  const SearchSpace space = Space(r);
  // The loss depends on log10(lr) (uniform over [-4, 0] as Random draws it) and on the optimizer.
  auto f = [](const Config& c) {
    const double l = std::log10(Get(c, "lr")) + 2;  // -2 .. 2
    const std::string o = c.at("optimizer");
    return l * l + (o == "sgd" ? 3.0 : o == "adam" ? 0.0 : 1.0);
  };
  auto rep = EstimateImportance(space, Observe(space, 90, f), false);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  ASSERT_EQ(rep->parameters.size(), 3u);
  // Var(l^2), l uniform on [-2, 2]: 16/5 - (4/3)^2 = 1.42; the optimizer's: 1.56.
  EXPECT_NEAR(Of(*rep, "optimizer").first_order, 1.56 / 2.98, 0.1);
  EXPECT_NEAR(Of(*rep, "lr").first_order, 1.42 / 2.98, 0.1);
  EXPECT_LT(Of(*rep, "noise").total, 0.05);
}

TEST(Importance, MaximisingGivesTheSameSharesAndTheSeedMakesThemReproducible) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "0", "1"), Num("b", "0", "1")};
  const SearchSpace space = Space(r);
  auto f = [](const Config& c) { return std::sin(3 * Get(c, "a")) + 0.5 * Get(c, "b"); };
  const auto obs = Observe(space, 40, f);
  auto min = EstimateImportance(space, obs, false);
  auto again = EstimateImportance(space, obs, false);
  std::vector<std::pair<Config, double>> negated = obs;
  for (auto& [c, v] : negated) v = -v;
  auto max = EstimateImportance(space, negated, true);
  ASSERT_TRUE(min.ok() && again.ok() && max.ok());
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(min->parameters[i].name, again->parameters[i].name);
    EXPECT_EQ(min->parameters[i].first_order, again->parameters[i].first_order);
    EXPECT_EQ(min->parameters[i].total, again->parameters[i].total);
    EXPECT_EQ(min->parameters[i].name, max->parameters[i].name);
    EXPECT_NEAR(min->parameters[i].first_order, max->parameters[i].first_order, 1e-6);
  }
}

TEST(Importance, OneDivergedRunDoesNotMakeItsHyperparameterTheOnlyOneThatMatters) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "0", "1"), Num("b", "0", "1")};
  const SearchSpace space = Space(r);
  auto obs = Observe(space, 50, [](const Config& c) { return Get(c, "a"); });
  // A run that diverged at a large b: without the outlier fence its 1e12 would be all the
  // variance the model sees, and b would take it.
  Config diverged = obs.front().first;
  diverged["b"] = "0.99";
  obs.emplace_back(diverged, 1e12);
  auto rep = EstimateImportance(space, obs, false);
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_EQ(rep->parameters.front().name, "a");
  EXPECT_GT(Of(*rep, "a").first_order, 0.6);
}

TEST(Importance, EqualObjectivesAreFlatAndTooFewAreRefusedWithTheCount) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges = {Num("a", "0", "1")};
  const SearchSpace space = Space(r);
  auto flat = EstimateImportance(space, Observe(space, 12, [](const Config&) { return 0.5; }), false);
  ASSERT_TRUE(flat.ok()) << flat.status().message();
  EXPECT_TRUE(flat->flat);
  EXPECT_EQ(flat->parameters.size(), 1u);
  EXPECT_EQ(flat->parameters[0].total, 0.0);

  auto few = EstimateImportance(space, Observe(space, 3, [](const Config& c) { return Get(c, "a"); }), false);
  ASSERT_FALSE(few.ok());
  EXPECT_EQ(few.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(few.status().message().find("3 training jobs reported the objective"), std::string::npos)
      << few.status().message();
  EXPECT_NE(few.status().message().find("at least 8"), std::string::npos);

  auto bad = Observe(space, 10, [](const Config& c) { return Get(c, "a"); });
  bad[4].second = std::nan("");
  auto nan = EstimateImportance(space, bad, false);
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(nan.status().message().find("observation 5"), std::string::npos) << nan.status().message();

  auto empty = EstimateImportance(Space(proto::ParameterRanges{}), {}, false);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

// A job that stops training jobs early (Hyperband, rungs 1, 3, 9): the loss after e epochs is
// (x - 0.3)^2 + 1/e, and y does nothing, but the training jobs with y above 0.5 were stopped at
// the first rung. By their final objectives y looked like it mattered as much as x (a user's
// Hyperband job read 49% for a hyperparameter without effect); compared at the largest rung that
// eight of them reached, it does not.
TEST(Importance, AJobThatStopsTrainingJobsEarlyComparesThemAtOneBudget) {
  proto::TuningJobSpec spec = coretest::Spec("hb", "Hyperband");
  auto& config = *spec.hyper_parameter_tuning_job_config;
  config.parameter_ranges = proto::ParameterRanges{};
  config.parameter_ranges->continuous_parameter_ranges = {Num("x", "0", "1"), Num("y", "0", "1")};
  config.strategy_config.emplace().hyperband_strategy_config = proto::HyperbandStrategyConfig{1, 9};
  const SearchSpace space = Space(*config.parameter_ranges);
  std::vector<ObservedTrainingJob> jobs;
  for (const auto& [c, unused] : Observe(space, 40, [](const Config&) { return 0.0; })) {
    const bool stopped = Get(c, "y") > 0.5;
    ObservedTrainingJob j{"", stopped ? "Stopped" : "Completed", c, 0, {}};
    for (int e = 1; e <= (stopped ? 1 : 9); ++e) j.curve.push_back(std::pow(Get(c, "x") - 0.3, 2) + 1.0 / e);
    j.objective = j.curve.back();
    jobs.push_back(std::move(j));
  }
  std::vector<ObservedTrainingJob> finals = jobs;  // as the estimate read them before
  for (auto& j : finals) j.curve.clear();
  config.strategy = "Bayesian";  // (no early stopping: final objectives, as before)
  auto mixed = EstimateJobImportance(spec, finals);
  ASSERT_EQ(mixed.size(), 1u);
  ASSERT_TRUE(mixed[0].second.ok()) << mixed[0].second.status().message();
  EXPECT_GT(Of(*mixed[0].second, "y").first_order, 0.3) << "the budgets mixed: y looks important";
  config.strategy = "Hyperband";

  auto at_rung = EstimateJobImportance(spec, jobs);
  ASSERT_EQ(at_rung.size(), 1u);
  ASSERT_TRUE(at_rung[0].second.ok()) << at_rung[0].second.status().message();
  const ImportanceReport& r = *at_rung[0].second;
  EXPECT_EQ(r.budget, 9);
  size_t full = 0;
  for (const auto& j : jobs) full += j.curve.size() == 9;
  EXPECT_EQ(r.observations, full);
  EXPECT_LT(Of(r, "y").total, 0.1);
  EXPECT_GT(Of(r, "x").first_order, 0.8);

  // Without curves (a reader that could not get them), only those that Completed: the same.
  auto completed = EstimateJobImportance(spec, finals);
  ASSERT_TRUE(completed[0].second.ok()) << completed[0].second.status().message();
  EXPECT_EQ(completed[0].second->budget, 0);
  EXPECT_EQ(completed[0].second->observations, full);
  EXPECT_LT(Of(*completed[0].second, "y").total, 0.1);

  // Fewer than eight at the top rung: the next rung down that eight reached (here the first).
  std::vector<ObservedTrainingJob> few_full;
  size_t kept = 0;
  for (const auto& j : jobs) {
    if (j.curve.size() == 9 && ++kept > 5) continue;
    few_full.push_back(j);
  }
  auto lower = EstimateJobImportance(spec, few_full);
  ASSERT_TRUE(lower[0].second.ok()) << lower[0].second.status().message();
  EXPECT_EQ(lower[0].second->budget, 1);
  EXPECT_EQ(lower[0].second->observations, few_full.size());

  // Early stopping Auto (no rungs): the curves' own lengths are the budgets.
  config.strategy = "Bayesian";
  config.training_job_early_stopping_type = "Auto";
  auto median = EstimateJobImportance(spec, jobs);
  ASSERT_TRUE(median[0].second.ok()) << median[0].second.status().message();
  EXPECT_EQ(median[0].second->budget, 9);

  // Too few anywhere: why, in the user's terms.
  std::vector<ObservedTrainingJob> five(jobs.begin(), jobs.begin() + 5);
  auto none = EstimateJobImportance(spec, five);
  ASSERT_FALSE(none[0].second.ok());
  EXPECT_NE(none[0].second.status().message().find("5 training jobs reached a common budget"), std::string::npos)
      << none[0].second.status().message();
  for (auto& j : five) j.curve.clear();
  auto none_completed = EstimateJobImportance(spec, five);
  ASSERT_FALSE(none_completed[0].second.ok());
  EXPECT_NE(none_completed[0].second.status().message().find("ran to completion"), std::string::npos)
      << none_completed[0].second.status().message();
}

}  // namespace
}  // namespace hpo::coordinator
