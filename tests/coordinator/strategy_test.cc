#include "coordinator/strategy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "coordinator/grid_strategy.h"
#include "coordinator/random_strategy.h"
#include "coordinator/trial_name.h"
#include "tests/coordinator/ranges.h"

namespace hpo::coordinator {
namespace {

using test::Num;
using test::Cat;

// A single-definition spec whose ranges are in the tuning job config.
proto::TuningJobSpec Spec(const std::string& strategy, proto::ParameterRanges ranges) {
  proto::TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_name = "job";
  auto& config = spec.hyper_parameter_tuning_job_config.emplace();
  config.strategy = strategy;
  config.parameter_ranges = std::move(ranges);
  spec.training_job_definition.emplace().static_hyper_parameters = {{"epochs", "10"}};
  return spec;
}

proto::ParameterRanges MixedRanges() {
  proto::ParameterRanges r;
  r.integer_parameter_ranges.push_back(Num("layers", "1", "8"));
  r.continuous_parameter_ranges.push_back(Num("lr", "0.0001", "0.1", "Logarithmic"));
  r.continuous_parameter_ranges.push_back(Num("momentum", "0.5", "0.999", "ReverseLogarithmic"));
  r.categorical_parameter_ranges.push_back(Cat("opt", {"sgd", "adam"}));
  return r;
}

std::unique_ptr<Strategy> Make(const proto::TuningJobSpec& spec, uint64_t seed = 1) {
  Result<std::unique_ptr<Strategy>> s = MakeStrategy(spec, seed);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// The history a coordinator would pass after creating trials for `proposals` (all running).
std::vector<Observation> History(const std::vector<Proposal>& proposals) {
  std::vector<Observation> h;
  for (size_t i = 0; i < proposals.size(); ++i) {
    Observation o;
    o.trial = "job-" + std::to_string(i + 1);
    o.definition_name = proposals[i].definition_name;
    o.hyperparameters = proposals[i].hyperparameters;
    h.push_back(o);
  }
  return h;
}

void Append(std::vector<Proposal>* all, const std::vector<Proposal>& more) {
  all->insert(all->end(), more.begin(), more.end());
}

// ---- MakeStrategy ----------------------------------------------------------------------------------

TEST(MakeStrategy, BuildsEveryStrategy) {
  proto::ParameterRanges cats;
  cats.categorical_parameter_ranges.push_back(Cat("c", {"a", "b"}));
  EXPECT_EQ(Make(Spec("Random", MixedRanges()))->Name(), "Random");
  EXPECT_EQ(Make(Spec("Grid", cats))->Name(), "Grid");
  EXPECT_EQ(Make(Spec("Bayesian", MixedRanges()))->Name(), "Bayesian");
  // Hyperband needs a maximum resource: from StrategyConfig or an epochs static hyperparameter.
  proto::TuningJobSpec no_epochs = Spec("Hyperband", cats);
  no_epochs.training_job_definition->static_hyper_parameters.clear();
  Result<std::unique_ptr<Strategy>> no_max = MakeStrategy(no_epochs, 1);
  ASSERT_FALSE(no_max.ok());
  EXPECT_EQ(no_max.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_max.status().message().find("maximum resource"), std::string::npos);
  proto::TuningJobSpec hb = Spec("Hyperband", cats);
  hb.training_job_definition->static_hyper_parameters["epochs"] = "27";
  EXPECT_EQ(Make(hb)->Name(), "Hyperband");
  Result<std::unique_ptr<Strategy>> unknown = MakeStrategy(Spec("Annealing", cats), 1);
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  proto::TuningJobSpec no_definition = Spec("Random", cats);
  no_definition.training_job_definition.reset();
  EXPECT_EQ(MakeStrategy(no_definition, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST(MakeStrategy, GridRejectsNumericRanges) {
  Result<std::unique_ptr<Strategy>> s = MakeStrategy(Spec("Grid", MixedRanges()), 1);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("only categorical ranges"), std::string::npos) << s.status().message();
}

TEST(MakeStrategy, PassesSearchSpaceErrorsThrough) {
  proto::ParameterRanges bad;
  bad.continuous_parameter_ranges.push_back(Num("x", "0", "1", "Logarithmic"));
  Result<std::unique_ptr<Strategy>> s = MakeStrategy(Spec("Random", bad), 1);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("Logarithmic needs MinValue > 0"), std::string::npos);
}

// ---- Random ------------------------------------------------------------------------------------------

TEST(RandomStrategy, TheSameSeedGivesTheSameProposals) {
  const proto::TuningJobSpec spec = Spec("Random", MixedRanges());
  EXPECT_EQ(Make(spec, 42)->Propose(20, {}), Make(spec, 42)->Propose(20, {}));
}

TEST(RandomStrategy, DifferentSeedsGiveDifferentProposals) {
  const proto::TuningJobSpec spec = Spec("Random", MixedRanges());
  EXPECT_NE(Make(spec, 1)->Propose(20, {}), Make(spec, 2)->Propose(20, {}));
}

TEST(RandomStrategy, ARestartedCoordinatorContinuesTheSameSequence) {
  const proto::TuningJobSpec spec = Spec("Random", MixedRanges());
  const std::vector<Proposal> in_one_call = Make(spec, 7)->Propose(10, {});
  ASSERT_EQ(in_one_call.size(), 10u);

  // First coordinator proposes 4, "crashes"; a new one is built from (spec, seed) and the stored
  // history, and proposes the rest in two calls.
  std::vector<Proposal> in_three_calls = Make(spec, 7)->Propose(4, {});
  std::unique_ptr<Strategy> restarted = Make(spec, 7);
  Append(&in_three_calls, restarted->Propose(3, History(in_three_calls)));
  Append(&in_three_calls, restarted->Propose(3, History(in_three_calls)));
  EXPECT_EQ(in_three_calls, in_one_call);

  // Asking again with an unchanged history repeats the same proposals.
  EXPECT_EQ(restarted->Propose(2, History(in_three_calls)), restarted->Propose(2, History(in_three_calls)));
}

TEST(RandomStrategy, ValuesAreStringsInsideTheirRanges) {
  const proto::TuningJobSpec spec = Spec("Random", MixedRanges());
  Result<SearchSpace> space = SearchSpace::FromSpec(spec, *spec.training_job_definition);
  ASSERT_TRUE(space.ok());
  std::set<std::string> layers_seen;
  for (const Proposal& p : Make(spec, 3)->Propose(2000, {})) {
    EXPECT_EQ(p.definition_name, "");
    ASSERT_EQ(p.hyperparameters.size(), 4u);
    Result<Config> normal = space->Normalize(p.hyperparameters);
    ASSERT_TRUE(normal.ok()) << normal.status().ToString();
    EXPECT_EQ(*normal, p.hyperparameters);  // already canonical text
    const std::string& layers = p.hyperparameters.at("layers");
    EXPECT_TRUE(std::regex_match(layers, std::regex("[1-8]"))) << layers;
    layers_seen.insert(layers);
    const double lr = std::strtod(p.hyperparameters.at("lr").c_str(), nullptr);
    EXPECT_GE(lr, 0.0001);
    EXPECT_LE(lr, 0.1);
    const double momentum = std::strtod(p.hyperparameters.at("momentum").c_str(), nullptr);
    EXPECT_GE(momentum, 0.5);
    EXPECT_LE(momentum, 0.999);
  }
  EXPECT_EQ(layers_seen.size(), 8u);  // both ends reached
}

TEST(RandomStrategy, LogScaledSamplesHaveTheirMedianNearTheGeometricMean) {
  proto::ParameterRanges r;
  r.continuous_parameter_ranges.push_back(Num("lr", "0.0001", "1", "Logarithmic"));
  std::vector<double> values;
  for (const Proposal& p : Make(Spec("Random", r), 5)->Propose(4001, {})) {
    values.push_back(std::strtod(p.hyperparameters.at("lr").c_str(), nullptr));
  }
  std::nth_element(values.begin(), values.begin() + 2000, values.end());
  const double median = values[2000];
  // Geometric mean 0.01; the median of log10 should be within 0.1 decades of -2.
  EXPECT_NEAR(std::log10(median), -2.0, 0.1) << median;
}

proto::ParameterRanges NineConfigs() {
  proto::ParameterRanges r;
  r.integer_parameter_ranges.push_back(Num("n", "1", "3"));
  r.categorical_parameter_ranges.push_back(Cat("c", {"a", "b", "c"}));
  return r;
}

TEST(RandomStrategy, NeverRepeatsAConfigurationOfAFiniteSpaceAndStopsWhenExhausted) {
  const proto::TuningJobSpec spec = Spec("Random", NineConfigs());
  for (uint64_t seed : {1, 2, 3}) {
    std::unique_ptr<Strategy> s = Make(spec, seed);
    // One at a time, as slots free up.
    std::vector<Proposal> made;
    while (!s->Exhausted(History(made))) {
      std::vector<Proposal> p = s->Propose(1, History(made));
      ASSERT_EQ(p.size(), 1u);
      Append(&made, p);
      ASSERT_LE(made.size(), 9u);
    }
    std::set<Config> distinct;
    for (const Proposal& p : made) distinct.insert(p.hyperparameters);
    EXPECT_EQ(distinct.size(), 9u);
    EXPECT_TRUE(s->Propose(3, History(made)).empty());

    // All in one call: at most 9, all distinct.
    std::vector<Proposal> burst = Make(spec, seed)->Propose(20, {});
    EXPECT_EQ(burst.size(), 9u);
    std::set<Config> burst_distinct;
    for (const Proposal& p : burst) burst_distinct.insert(p.hyperparameters);
    EXPECT_EQ(burst_distinct.size(), 9u);
  }
}

// A job's history names its trials: the strategies then keep the keys they indexed from one call
// to the next (ProposedKeyCache), and must answer as if they had indexed it all again.
std::vector<Observation> Named(const std::vector<Proposal>& proposals, const std::string& prefix = "t") {
  std::vector<Observation> h = History(proposals);
  for (size_t i = 0; i < h.size(); ++i) h[i].trial = prefix + std::to_string(i + 1);
  return h;
}

TEST(RandomStrategy, ANamedHistoryIsNeverRepeatedAndExhaustsTheSpace) {
  proto::ParameterRanges categorical;  // Grid takes only categorical ranges
  categorical.categorical_parameter_ranges = {Cat("n", {"1", "2", "3"}), Cat("c", {"a", "b", "c"})};
  for (const char* strategy : {"Random", "Grid"}) {
    std::unique_ptr<Strategy> s = Make(Spec(strategy, std::string(strategy) == "Grid" ? categorical : NineConfigs()), 4);
    std::vector<Proposal> made;
    while (!s->Exhausted(Named(made))) {
      ASSERT_FALSE(s->Exhausted(Named(made))) << "asked twice, the same answer";
      std::vector<Proposal> p = s->Propose(2, Named(made));
      ASSERT_FALSE(p.empty());
      Append(&made, p);
      ASSERT_LE(made.size(), 9u) << strategy;
    }
    std::set<Config> distinct;
    for (const Proposal& p : made) distinct.insert(p.hyperparameters);
    EXPECT_EQ(distinct.size(), 9u) << strategy;
    // Another job's history (other names) that ran only the first three: not exhausted.
    std::vector<Proposal> few(made.begin(), made.begin() + 3);
    EXPECT_FALSE(s->Exhausted(Named(few, "u"))) << strategy;
    EXPECT_EQ(s->Propose(9, Named(few, "u")).size(), 6u) << strategy;
    EXPECT_TRUE(s->Exhausted(Named(made))) << strategy;
  }
}

TEST(ProposedKeyCache, AgreesWithProposedKeysAsAHistoryGrowsIsReplacedAndShrinks) {
  auto spaces = DefinitionSpaces(Spec("Random", NineConfigs()));
  ASSERT_TRUE(spaces.ok());
  std::vector<Proposal> all = Make(Spec("Random", NineConfigs()), 1)->Propose(9, {});
  ASSERT_EQ(all.size(), 9u);
  ProposedKeyCache cache;
  auto check = [&](const std::vector<Observation>& h) {
    cache.With(*spaces, h, [&](const std::set<ConfigKey>& keys, const std::vector<uint64_t>& count) {
      EXPECT_EQ(keys, ProposedKeys(*spaces, h));
      EXPECT_EQ(count.at(0), keys.size());
      return 0;
    });
  };
  for (size_t n = 0; n <= 9; ++n) check(Named({all.begin(), all.begin() + static_cast<long>(n)}));
  // The same length, other configurations under the same first name: rebuilt.
  std::vector<Proposal> other = {all[0], all[5], all[6], all[7], all[8], all[1], all[2], all[3], all[4]};
  std::vector<Observation> h = Named(other);
  h.back().trial = "elsewhere";
  check(h);
  check(Named({all.begin(), all.begin() + 4}));  // shorter
  check(History({all.begin(), all.begin() + 2}));  // unnamed: not kept
  check(Named({all.begin() + 3, all.end()}));
}

TEST(RandomStrategy, ProposesTheLastUnseenConfigurationOfAFiniteSpace) {
  const proto::TuningJobSpec spec = Spec("Random", NineConfigs());
  std::vector<Proposal> history;
  for (const char* n : {"1", "2", "3"}) {
    for (const char* c : {"a", "b", "c"}) {
      if (std::string(n) == "2" && std::string(c) == "b") continue;
      history.push_back(Proposal{"", {{"n", n}, {"c", c}}});
    }
  }
  std::unique_ptr<Strategy> s = Make(spec, 9);
  EXPECT_FALSE(s->Exhausted(History(history)));
  const std::vector<Proposal> p = s->Propose(4, History(history));
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].hyperparameters, (Config{{"n", "2"}, {"c", "b"}}));
}

proto::TuningJobSpec TwoDefinitions(const std::string& strategy) {
  proto::TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_name = "job";
  spec.hyper_parameter_tuning_job_config.emplace().strategy = strategy;
  proto::TrainingJobDefinition a, b;
  a.definition_name = "small";
  a.hyper_parameter_ranges.emplace().categorical_parameter_ranges.push_back(Cat("c", {"x", "y"}));
  b.definition_name = "large";
  auto& rb = b.hyper_parameter_ranges.emplace();
  rb.categorical_parameter_ranges.push_back(Cat("d", {"1", "2", "3"}));
  spec.training_job_definitions = {a, b};
  return spec;
}

TEST(RandomStrategy, PicksDefinitionsUniformlyAndSamplesTheChosenOnesSpace) {
  proto::TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_config.emplace().strategy = "Random";
  proto::TrainingJobDefinition a, b;
  a.definition_name = "cnn";
  a.hyper_parameter_ranges.emplace().continuous_parameter_ranges.push_back(Num("lr", "0.001", "0.1"));
  b.definition_name = "mlp";
  b.hyper_parameter_ranges.emplace().integer_parameter_ranges.push_back(Num("width", "1", "1000000"));
  spec.training_job_definitions = {a, b};
  int cnn = 0;
  const std::vector<Proposal> proposals = Make(spec, 11)->Propose(4000, {});
  for (const Proposal& p : proposals) {
    if (p.definition_name == "cnn") {
      ++cnn;
      EXPECT_EQ(p.hyperparameters.count("lr"), 1u);
      EXPECT_EQ(p.hyperparameters.size(), 1u);
    } else {
      EXPECT_EQ(p.definition_name, "mlp");
      EXPECT_EQ(p.hyperparameters.count("width"), 1u);
    }
  }
  EXPECT_NEAR(cnn / 4000.0, 0.5, 0.03);
}

TEST(RandomStrategy, AnExhaustedDefinitionIsNoLongerPickedAndTheOthersKeepGoing) {
  proto::TuningJobSpec spec = TwoDefinitions("Random");
  spec.training_job_definitions[1].hyper_parameter_ranges->continuous_parameter_ranges.push_back(
      Num("lr", "0.001", "0.1"));  // "large" is now infinite
  std::unique_ptr<Strategy> s = Make(spec, 8);
  const std::vector<Proposal> p = s->Propose(200, {});
  ASSERT_EQ(p.size(), 200u);
  std::vector<Config> small;
  for (const Proposal& q : p) {
    if (q.definition_name == "small") small.push_back(q.hyperparameters);
  }
  // "small" has two configurations; both are proposed, each once.
  ASSERT_EQ(small.size(), 2u);
  EXPECT_NE(small[0], small[1]);
  EXPECT_FALSE(s->Exhausted(History(p)));
}

TEST(RandomStrategy, AFiniteMultiDefinitionSpaceIsExhaustedAcrossDefinitions) {
  std::unique_ptr<Strategy> s = Make(TwoDefinitions("Random"), 4);
  const std::vector<Proposal> all = s->Propose(10, {});
  EXPECT_EQ(all.size(), 5u);
  std::set<std::pair<std::string, Config>> distinct;
  for (const Proposal& p : all) distinct.insert({p.definition_name, p.hyperparameters});
  EXPECT_EQ(distinct.size(), 5u);
  EXPECT_TRUE(s->Exhausted(History(all)));
}

// ---- Grid ------------------------------------------------------------------------------------------

proto::ParameterRanges TwelveCombinations() {
  proto::ParameterRanges r;
  r.categorical_parameter_ranges.push_back(Cat("opt", {"sgd", "adam", "rmsprop"}));
  r.categorical_parameter_ranges.push_back(Cat("bs", {"32", "64"}));
  r.categorical_parameter_ranges.push_back(Cat("act", {"relu", "gelu"}));
  return r;
}

TEST(GridStrategy, EnumeratesEveryCombinationExactlyOnceAcrossSeveralCalls) {
  std::unique_ptr<Strategy> s = Make(Spec("Grid", TwelveCombinations()));
  std::vector<Proposal> made;
  std::vector<size_t> batch_sizes;
  for (int call = 0; call < 5; ++call) {
    EXPECT_EQ(s->Exhausted(History(made)), made.size() == 12);
    std::vector<Proposal> p = s->Propose(5, History(made));
    batch_sizes.push_back(p.size());
    Append(&made, p);
  }
  EXPECT_EQ(batch_sizes, (std::vector<size_t>{5, 5, 2, 0, 0}));
  EXPECT_TRUE(s->Exhausted(History(made)));
  std::set<Config> distinct;
  for (const Proposal& p : made) distinct.insert(p.hyperparameters);
  EXPECT_EQ(distinct.size(), 12u);
  for (const char* opt : {"sgd", "adam", "rmsprop"}) {
    for (const char* bs : {"32", "64"}) {
      for (const char* act : {"relu", "gelu"}) {
        EXPECT_EQ(distinct.count({{"opt", opt}, {"bs", bs}, {"act", act}}), 1u) << opt << bs << act;
      }
    }
  }
}

TEST(GridStrategy, TheFirstRangeVariesSlowest) {
  const std::vector<Proposal> p = Make(Spec("Grid", TwelveCombinations()))->Propose(12, {});
  ASSERT_EQ(p.size(), 12u);
  EXPECT_EQ(p[0].hyperparameters, (Config{{"opt", "sgd"}, {"bs", "32"}, {"act", "relu"}}));
  EXPECT_EQ(p[1].hyperparameters, (Config{{"opt", "sgd"}, {"bs", "32"}, {"act", "gelu"}}));
  EXPECT_EQ(p[2].hyperparameters, (Config{{"opt", "sgd"}, {"bs", "64"}, {"act", "relu"}}));
  EXPECT_EQ(p[4].hyperparameters, (Config{{"opt", "adam"}, {"bs", "32"}, {"act", "relu"}}));
  EXPECT_EQ(p[11].hyperparameters, (Config{{"opt", "rmsprop"}, {"bs", "64"}, {"act", "gelu"}}));
}

TEST(GridStrategy, SkipsConfigurationsAlreadyInTheHistory) {
  std::unique_ptr<Strategy> s = Make(Spec("Grid", TwelveCombinations()));
  // A stored history may carry the merged hyperparameters (static ones, the objective metric),
  // and finished trials of any status.
  std::vector<Observation> history(2);
  history[0].hyperparameters = {{"opt", "sgd"}, {"bs", "32"}, {"act", "gelu"}, {"epochs", "10"},
                                {"_tuning_objective_metric", "loss"}};
  history[0].status = Observation::kFailed;
  history[1].hyperparameters = {{"opt", "adam"}, {"bs", "64"}, {"act", "relu"}};
  history[1].status = Observation::kSucceeded;
  history[1].objective = 0.5;
  const std::vector<Proposal> p = s->Propose(100, history);
  ASSERT_EQ(p.size(), 10u);
  EXPECT_EQ(p[0].hyperparameters, (Config{{"opt", "sgd"}, {"bs", "32"}, {"act", "relu"}}));
  EXPECT_EQ(p[1].hyperparameters, (Config{{"opt", "sgd"}, {"bs", "64"}, {"act", "relu"}}));
  for (const Proposal& q : p) {
    EXPECT_NE(q.hyperparameters, (Config{{"opt", "sgd"}, {"bs", "32"}, {"act", "gelu"}}));
    EXPECT_NE(q.hyperparameters, (Config{{"opt", "adam"}, {"bs", "64"}, {"act", "relu"}}));
  }
  EXPECT_FALSE(s->Exhausted(history));
}

TEST(GridStrategy, EnumeratesEachDefinitionInOrder) {
  std::unique_ptr<Strategy> s = Make(TwoDefinitions("Grid"));
  const std::vector<Proposal> p = s->Propose(10, {});
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0], (Proposal{"small", {{"c", "x"}}}));
  EXPECT_EQ(p[1], (Proposal{"small", {{"c", "y"}}}));
  EXPECT_EQ(p[2], (Proposal{"large", {{"d", "1"}}}));
  EXPECT_EQ(p[4], (Proposal{"large", {{"d", "3"}}}));
  // The same values under another definition's name are a different configuration.
  std::vector<Observation> h = History({Proposal{"large", {{"c", "x"}}}, Proposal{"small", {{"c", "x"}}}});
  EXPECT_EQ(s->Propose(1, h)[0], (Proposal{"small", {{"c", "y"}}}));
  EXPECT_TRUE(s->Exhausted(History(p)));
}

TEST(GridStrategy, ASpaceWithoutRangesHasOneConfiguration) {
  std::unique_ptr<Strategy> s = Make(Spec("Grid", {}));
  const std::vector<Proposal> p = s->Propose(3, {});
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].hyperparameters.empty());
  EXPECT_TRUE(s->Exhausted(History(p)));
}

// ---- helpers -------------------------------------------------------------------------------------

TEST(MergeHyperParameters, AddsTheObjectiveMetricAndTunedValuesOverrideStaticOnes) {
  proto::TrainingJobDefinition def;
  def.static_hyper_parameters = {{"epochs", "10"}, {"lr", "0.5"}};
  const Config merged = MergeHyperParameters(def, {{"lr", "0.01"}, {"opt", "adam"}}, "validation:loss");
  EXPECT_EQ(merged, (Config{{"epochs", "10"},
                            {"lr", "0.01"},
                            {"opt", "adam"},
                            {"_tuning_objective_metric", "validation:loss"}}));
}

TEST(TrialName, IsJobNameIndexAndEightHexDigits) {
  const std::string name = TrialName("my-job", 1, 42);
  EXPECT_TRUE(std::regex_match(name, std::regex("my-job-001-[0-9a-f]{8}"))) << name;
  EXPECT_TRUE(std::regex_match(TrialName("my-job", 57, 42), std::regex("my-job-057-[0-9a-f]{8}")));
  EXPECT_TRUE(std::regex_match(TrialName("my-job", 1000, 42), std::regex("my-job-1000-[0-9a-f]{8}")));
}

TEST(TrialName, IsDeterministicAndDependsOnJobIndexAndSeed) {
  EXPECT_EQ(TrialName("my-job", 3, 42), TrialName("my-job", 3, 42));
  // A job submitted again under a deleted one's name, with the same RandomSeed, names its
  // training jobs anew (their output must not land on the first one's).
  EXPECT_EQ(TrialName("my-job", 3, 42, 1764373833000), TrialName("my-job", 3, 42, 1764373833000));
  EXPECT_NE(TrialName("my-job", 3, 42, 1764373833000), TrialName("my-job", 3, 42, 1764373833001));
  const std::string suffix = TrialName("my-job", 3, 42).substr(11);
  EXPECT_NE(suffix, TrialName("my-job", 3, 43).substr(11));
  EXPECT_NE(suffix, TrialName("my-joc", 3, 42).substr(11));
  EXPECT_NE(TrialName("my-job", 3, 42).substr(11), TrialName("my-job", 4, 42).substr(11));
}

TEST(TrialName, StaysWithinSageMakersSixtyThreeCharacters) {
  const std::string longest_job(32, 'a');
  EXPECT_LE(TrialName(longest_job, 2147483647, ~uint64_t{0}).size(), 63u);
  EXPECT_LE(TrialName(longest_job, 1, 0).size(), 63u);
}

TEST(TrialNameDeathTest, RejectsIndexZeroAndOverlongNames) {
  EXPECT_DEATH((void)TrialName("job", 0, 1), "index >= 1");
  EXPECT_DEATH((void)TrialName(std::string(60, 'a'), 1, 1), "63");
}

}  // namespace
}  // namespace hpo::coordinator
