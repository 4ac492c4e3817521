// Autotune: the ranges built from AutoParameters hints, the fields filled when left out, and a job
// submitted with Autotune running, storing and describing the spec with those choices.
#include "coordinator/autotune.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "coordinator/search_space.h"
#include "proto/validate.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;

proto::AutoParameter Hint(const std::string& name, const std::string& hint) { return {name, hint}; }

// The core fixture's job with Autotune on, no strategy, no limits, and only these hints.
proto::TuningJobSpec AutoSpec(std::vector<proto::AutoParameter> hints, const std::string& name = "auto") {
  proto::TuningJobSpec s = coretest::Spec(name);
  s.autotune = proto::Autotune{"Enabled"};
  auto& cfg = *s.hyper_parameter_tuning_job_config;
  cfg.strategy.reset();
  cfg.resource_limits.reset();
  cfg.parameter_ranges = proto::ParameterRanges{};
  cfg.parameter_ranges->auto_parameters = std::move(hints);
  s.training_job_definition->retry_strategy.reset();
  return s;
}

AutotuneResult Resolve(const proto::TuningJobSpec& s, const proto::ValidationLimits& limits = {}) {
  EXPECT_TRUE(proto::Validate(s, proto::Spelling::kCrd, limits).empty())
      << proto::JoinErrors(proto::Validate(s, proto::Spelling::kCrd, limits));
  Result<AutotuneResult> r = ResolveAutotune(s, limits);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {s, {}};
  proto::FieldErrors errs = proto::Validate(r->spec, proto::Spelling::kCrd, limits);
  EXPECT_TRUE(errs.empty()) << "the resolved spec must be valid: " << proto::JoinErrors(errs);
  return std::move(r).value();
}

const proto::ParameterRanges& JobRanges(const AutotuneResult& r) {
  return *r.spec.hyper_parameter_tuning_job_config->parameter_ranges;
}

const proto::NumericRange* FindNumeric(const std::vector<proto::NumericRange>& list, const std::string& name) {
  auto it = std::find_if(list.begin(), list.end(), [&](const auto& r) { return r.name == name; });
  return it == list.end() ? nullptr : &*it;
}

void ExpectRange(const proto::NumericRange* r, const std::string& lo, const std::string& hi,
                 const std::string& scaling) {
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(*r->min_value, lo) << *r->name;
  EXPECT_EQ(*r->max_value, hi) << *r->name;
  EXPECT_EQ(*r->scaling_type, scaling) << *r->name;
}

const AutotuneChoice* Choice(const AutotuneResult& r, const std::string& field_part) {
  for (const auto& c : r.choices) {
    if (c.field.find(field_part) != std::string::npos) return &c;
  }
  return nullptr;
}

TEST(Autotune, WithoutAutotuneTheSpecComesBackUnchanged) {
  proto::TuningJobSpec s = coretest::Spec("plain");
  Result<AutotuneResult> r = ResolveAutotune(s, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->spec, s);
  EXPECT_TRUE(r->choices.empty());
}

TEST(Autotune, NumericHintsGetARangeAroundThem) {
  AutotuneResult r = Resolve(AutoSpec({Hint("batch", "64"), Hint("layers", "1"), Hint("depth", "3"),
                                       Hint("lr", "0.1"), Hint("tiny", "1e-3"), Hint("momentum", "0.9"),
                                       Hint("c", "10.0"), Hint("dropout", "0.5")}));
  const auto& ints = JobRanges(r).integer_parameter_ranges;
  const auto& conts = JobRanges(r).continuous_parameter_ranges;
  ExpectRange(FindNumeric(ints, "batch"), "16", "256", "Logarithmic");
  ExpectRange(FindNumeric(ints, "layers"), "1", "4", "Linear");
  ExpectRange(FindNumeric(ints, "depth"), "1", "12", "Logarithmic");
  ExpectRange(FindNumeric(conts, "lr"), "0.01", "0.55", "Logarithmic");  // a rate stays below 1
  ExpectRange(FindNumeric(conts, "tiny"), "0.0001", "0.01", "Logarithmic");
  ExpectRange(FindNumeric(conts, "momentum"), "0.09", "0.95", "ReverseLogarithmic");
  ExpectRange(FindNumeric(conts, "c"), "1", "100", "Logarithmic");
  ExpectRange(FindNumeric(conts, "dropout"), "0.05", "0.75", "Logarithmic");
  EXPECT_TRUE(JobRanges(r).auto_parameters.empty());
  EXPECT_TRUE(r.spec.training_job_definition->static_hyper_parameters.count("lr") == 0);
  const AutotuneChoice* c = Choice(r, "(\"batch\")");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->value, "IntegerParameterRanges 16 .. 256, Logarithmic");
  EXPECT_NE(c->reason.find("hint 64"), std::string::npos) << c->reason;

  // Every value the search space can produce lies in the range the hint asked for.
  Result<SearchSpace> space = SearchSpace::FromRanges(JobRanges(r));
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  Config lowest = space->FromUnit(std::vector<double>(space->UnitDims(), 0.0));
  Config highest = space->FromUnit(std::vector<double>(space->UnitDims(), 1.0));
  EXPECT_EQ(lowest.at("batch"), "16");
  EXPECT_EQ(highest.at("batch"), "256");
  EXPECT_EQ(highest.at("momentum"), "0.95");
}

TEST(Autotune, TrueAndFalseBecomeBothValuesInTheHintsCase) {
  AutotuneResult r = Resolve(AutoSpec({Hint("bias", "true"), Hint("shuffle", "False"), Hint("amp", "TRUE")}));
  const auto& cats = JobRanges(r).categorical_parameter_ranges;
  ASSERT_EQ(cats.size(), 3u);
  EXPECT_EQ(cats[0].values, (std::vector<std::string>{"true", "false"}));
  EXPECT_EQ(cats[1].values, (std::vector<std::string>{"False", "True"}));
  EXPECT_EQ(cats[2].values, (std::vector<std::string>{"TRUE", "FALSE"}));
}

TEST(Autotune, HintsThatCannotBeScaledStayStaticWithTheirValueAndAReason) {
  AutotuneResult r = Resolve(AutoSpec({Hint("lr", "0.1"), Hint("optimizer", "adam"), Hint("quoted", "\"sgd\""),
                                       Hint("max_depth", "-1"), Hint("warmup", "0"), Hint("l2", "0.0"),
                                       Hint("sagemaker_container_log_level", "20"),
                                       Hint("_tuning_objective_metric", "loss")}));
  const auto& statics = r.spec.training_job_definition->static_hyper_parameters;
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"optimizer", "adam"}, {"quoted", "\"sgd\""}, {"max_depth", "-1"}, {"warmup", "0"}, {"l2", "0.0"},
           {"sagemaker_container_log_level", "20"}, {"_tuning_objective_metric", "loss"}}) {
    ASSERT_TRUE(statics.count(k)) << k;
    EXPECT_EQ(statics.at(k), v) << k;
    const AutotuneChoice* c = Choice(r, "(\"" + k + "\")");
    ASSERT_NE(c, nullptr) << k;
    EXPECT_EQ(c->value, "static " + v);
    EXPECT_NE(c->reason.find("not tuned"), std::string::npos) << c->reason;
  }
  EXPECT_NE(Choice(r, "(\"sagemaker_container_log_level\")")->reason.find("reserved"), std::string::npos);
  EXPECT_NE(Choice(r, "(\"max_depth\")")->reason.find("below 1"), std::string::npos);
  EXPECT_EQ(JobRanges(r).continuous_parameter_ranges.size(), 1u);
  EXPECT_EQ(statics.at("epochs"), "3");  // the statics written stay
}

// Hyperband takes its maximum resource from an epochs-type static hyperparameter: an epochs
// hint became an integer range, and the job was refused for lacking the hyperparameter its hint
// gave ("the Hyperband strategy needs a maximum resource: add a static hyperparameter epochs").
TEST(Autotune, WithHyperbandAnEpochsHintStaysStaticAsItsMaximumResource) {
  proto::TuningJobSpec s = AutoSpec({Hint("num_epochs", "9"), Hint("lr", "0.1")});
  s.hyper_parameter_tuning_job_config->strategy = "Hyperband";
  s.training_job_definition->static_hyper_parameters.erase("epochs");
  AutotuneResult r = Resolve(s);
  EXPECT_EQ(r.spec.training_job_definition->static_hyper_parameters.at("num_epochs"), "9");
  const AutotuneChoice* c = Choice(r, "(\"num_epochs\")");
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->reason.find("Hyperband's maximum resource"), std::string::npos) << c->reason;
  EXPECT_EQ(JobRanges(r).continuous_parameter_ranges.size(), 1u) << "lr is still tuned";
  // With MaxResource written, the epochs hint is an ordinary one.
  s.hyper_parameter_tuning_job_config->strategy_config.emplace().hyperband_strategy_config.emplace().max_resource = 27;
  s.hyper_parameter_tuning_job_config->strategy_config->hyperband_strategy_config->min_resource = 1;
  AutotuneResult written = Resolve(s);
  EXPECT_EQ(JobRanges(written).integer_parameter_ranges.size(), 1u);
}

TEST(Autotune, NothingEligibleIsAnErrorNamingEachHint) {
  proto::TuningJobSpec s = AutoSpec({Hint("optimizer", "adam"), Hint("seed", "0")});
  Result<AutotuneResult> r = ResolveAutotune(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"optimizer\": not a number"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("\"seed\": an integer below 1"), std::string::npos) << r.status().message();

  s = AutoSpec({});
  r = ResolveAutotune(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("neither ranges nor AutoParameters"), std::string::npos);
}

TEST(Autotune, FillsTheFieldsLeftOut) {
  AutotuneResult r = Resolve(AutoSpec({Hint("lr", "0.1"), Hint("batch", "32"), Hint("bias", "true")}));
  const auto& cfg = *r.spec.hyper_parameter_tuning_job_config;
  EXPECT_EQ(cfg.strategy, "Bayesian");
  EXPECT_EQ(cfg.resource_limits->max_number_of_training_jobs, 30);  // 10 per tuned hyperparameter
  EXPECT_EQ(cfg.resource_limits->max_parallel_training_jobs, 3);
  EXPECT_EQ(cfg.training_job_early_stopping_type, "Auto");
  EXPECT_EQ(r.spec.training_job_definition->retry_strategy->maximum_retry_attempts, 2);
  EXPECT_EQ(cfg.tuning_job_completion_criteria->convergence_detected->complete_on_convergence, "Enabled");
  for (const char* f : {"Strategy", "MaxNumberOfTrainingJobs", "MaxParallelTrainingJobs", "TrainingJobEarlyStoppingType",
                        "RetryStrategy", "CompleteOnConvergence"}) {
    EXPECT_NE(Choice(r, f), nullptr) << f;
  }
  EXPECT_EQ(r.spec.autotune, proto::Autotune{"Enabled"});  // Describe still says Autotune ran

  // One hyperparameter: at least 20 jobs; many: at most 100.
  EXPECT_EQ(Resolve(AutoSpec({Hint("lr", "0.1")})).spec.hyper_parameter_tuning_job_config->resource_limits
                ->max_number_of_training_jobs,
            20);
  std::vector<proto::AutoParameter> many;
  for (int i = 0; i < 12; ++i) many.push_back(Hint("h" + std::to_string(i), "0.1"));
  const AutotuneResult twelve = Resolve(AutoSpec(many));
  const auto& rl = *twelve.spec.hyper_parameter_tuning_job_config->resource_limits;
  EXPECT_EQ(rl.max_number_of_training_jobs, 100);
  EXPECT_EQ(rl.max_parallel_training_jobs, 10);

  // ... and at most the coordinator's parallel limit.
  proto::ValidationLimits limits;
  limits.max_parallel_training_jobs = 2;
  EXPECT_EQ(Resolve(AutoSpec(many), limits).spec.hyper_parameter_tuning_job_config->resource_limits
                ->max_parallel_training_jobs,
            2);
}

TEST(Autotune, NeverChangesAValueTheUserWrote) {
  proto::TuningJobSpec s = AutoSpec({Hint("lr", "0.1")});
  auto& cfg = *s.hyper_parameter_tuning_job_config;
  cfg.strategy = "Random";
  cfg.resource_limits = proto::ResourceLimits{7, 1, std::nullopt};
  cfg.training_job_early_stopping_type = "Off";
  cfg.tuning_job_completion_criteria = proto::TuningJobCompletionCriteria{};
  cfg.tuning_job_completion_criteria->convergence_detected = proto::ConvergenceDetected{"Disabled"};
  s.training_job_definition->retry_strategy = proto::RetryStrategy{5};
  cfg.parameter_ranges->categorical_parameter_ranges.push_back({"opt", {"sgd", "adam"}});

  AutotuneResult r = Resolve(s);
  const auto& out = *r.spec.hyper_parameter_tuning_job_config;
  EXPECT_EQ(out.strategy, "Random");
  EXPECT_EQ(out.resource_limits, cfg.resource_limits);
  EXPECT_EQ(out.training_job_early_stopping_type, "Off");
  EXPECT_EQ(out.tuning_job_completion_criteria, cfg.tuning_job_completion_criteria);
  EXPECT_EQ(r.spec.training_job_definition->retry_strategy->maximum_retry_attempts, 5);
  EXPECT_EQ(out.parameter_ranges->categorical_parameter_ranges.size(), 1u);
  ASSERT_EQ(r.choices.size(), 1u);  // only the range for the hint
  EXPECT_NE(r.choices[0].field.find("AutoParameters[0]"), std::string::npos);
}

// A MaxNumberOfTrainingJobs the spec wrote, more than the ranges Autotune made from integer and
// true/false hints have configurations: refused in Autotune's terms, naming the ranges it made
// and what to do (validation told a spec that wrote no range to "add values or ranges").
TEST(Autotune, AWrittenJobCountAboveTheCombinationsOfItsRangesNamesThemAndWhatToDo) {
  proto::TuningJobSpec s = AutoSpec({Hint("max_depth", "3"), Hint("use_gpu", "true")});
  auto& cfg = *s.hyper_parameter_tuning_job_config;
  cfg.strategy = "Random";
  cfg.resource_limits = proto::ResourceLimits{50, 2, std::nullopt};
  Result<AutotuneResult> r = ResolveAutotune(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("ResourceLimits.MaxNumberOfTrainingJobs: "), std::string::npos) << m;
  EXPECT_NE(m.find("the ranges Autotune made from the hints (max_depth 1 .. 12, Logarithmic, use_gpu [true, false]) "
                   "give 24 combinations, fewer than the 50"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("Leave MaxNumberOfTrainingJobs out (Autotune then asks for 20), ask for at most 24"),
            std::string::npos)
      << m;
  // Left out, Autotune asks for the 20 it says; a continuous hint lifts the limit.
  cfg.resource_limits->max_number_of_training_jobs.reset();
  EXPECT_EQ(Resolve(s).spec.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs, 20);
  cfg.resource_limits->max_number_of_training_jobs = 50;
  cfg.parameter_ranges->auto_parameters.push_back(Hint("eta", "0.1"));
  EXPECT_EQ(Resolve(s).spec.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs, 50);
}

TEST(Autotune, ChoicesNameTheirFieldsInTheSpellingTheSpecWasWrittenIn) {
  proto::TuningJobSpec s = AutoSpec({Hint("lr", "0.1")});
  Result<AutotuneResult> crd = ResolveAutotune(s, {}, proto::Spelling::kCrd);
  Result<AutotuneResult> api = ResolveAutotune(s, {});
  ASSERT_TRUE(crd.ok() && api.ok());
  ASSERT_EQ(crd->choices.size(), api->choices.size());
  EXPECT_EQ(crd->spec, api->spec);
  std::vector<std::string> fields;
  for (const auto& c : crd->choices) fields.push_back(c.field);
  EXPECT_NE(std::find(fields.begin(), fields.end(), "spec.hyperParameterTuningJobConfig.strategy"), fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(),
                      "spec.hyperParameterTuningJobConfig.parameterRanges.autoParameters[0] (\"lr\")"),
            fields.end());
  EXPECT_NE(std::find(fields.begin(), fields.end(), "spec.trainingJobDefinition.retryStrategy.maximumRetryAttempts"),
            fields.end());
  EXPECT_EQ(api->choices[0].field, "HyperParameterTuningJobConfig.Strategy");
}

TEST(Autotune, ResolvingTheResultAgainChangesNothing) {
  AutotuneResult once = Resolve(AutoSpec({Hint("lr", "0.1"), Hint("optimizer", "adam"), Hint("batch", "32")}));
  AutotuneResult twice = Resolve(once.spec);
  EXPECT_EQ(twice.spec, once.spec);
  EXPECT_TRUE(twice.choices.empty());
}

TEST(Autotune, GridGetsCategoricalValuesAroundTheHint) {
  proto::TuningJobSpec s = AutoSpec({Hint("batch", "64"), Hint("lr", "0.1"), Hint("bias", "true")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);
  const auto& ranges = JobRanges(r);
  EXPECT_TRUE(ranges.integer_parameter_ranges.empty());
  EXPECT_TRUE(ranges.continuous_parameter_ranges.empty());
  ASSERT_EQ(ranges.categorical_parameter_ranges.size(), 3u);
  const auto& batch = ranges.categorical_parameter_ranges[0].values;
  ASSERT_EQ(batch.size(), 5u);
  EXPECT_EQ(batch.front(), "16");
  EXPECT_EQ(batch[2], "64");  // the hint itself, in numeric order
  EXPECT_EQ(batch.back(), "256");
  const auto& lr = ranges.categorical_parameter_ranges[1].values;
  ASSERT_EQ(lr.size(), 5u);
  EXPECT_EQ(lr.front(), "0.01");
  EXPECT_NE(std::find(lr.begin(), lr.end(), "0.1"), lr.end());
  EXPECT_EQ(lr.back(), "0.55");
  // Grid runs every combination: no MaxNumberOfTrainingJobs is chosen for it.
  EXPECT_FALSE(r.spec.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs);
  EXPECT_EQ(r.spec.hyper_parameter_tuning_job_config->resource_limits->max_parallel_training_jobs, 10);
}

// An AMT pass: the quarter points of x's range 0.03 .. 0.65 (hint 0.3) put 0.301 beside the hint,
// a combination in five spent on a near-repeat, and nothing between 0.065 and 0.3.
TEST(Autotune, GridValuesSpreadOnBothSidesOfTheHintWithoutANearRepeat) {
  proto::TuningJobSpec s = AutoSpec({Hint("x", "0.3")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);
  const auto& x = JobRanges(r).categorical_parameter_ranges.at(0).values;
  ASSERT_EQ(x.size(), 5u);
  std::vector<double> v;
  for (const auto& t : x) v.push_back(std::stod(t));
  EXPECT_EQ(v[2], 0.3) << "the hint in the middle";
  for (size_t i = 1; i < v.size(); ++i) EXPECT_GT(v[i] / v[i - 1], 1.2) << x[i - 1] << " and " << x[i];
}

// A small integer hint at its range's low end (1 in 1 .. 4): the quarter points of the rest, so
// Grid gets every integer of the range. The end was told by the hint's unit point, the middle
// of its integer's bucket (0.125), which missed it: 1, 3, 4, and 2 never tried.
TEST(Autotune, GridValuesOfASmallIntegerHintAtTheLowEndCoverTheRange) {
  proto::TuningJobSpec s = AutoSpec({Hint("k", "1")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);
  const auto& k = JobRanges(r).categorical_parameter_ranges.at(0).values;
  EXPECT_EQ(k, (std::vector<std::string>{"1", "2", "3", "4"}));
}

// An integer hint's Grid values are the halfway points of its log range, rounded to the nearest
// integer: 100 in 25 .. 400 gave 49 (the bucket below), and 4 in 1 .. 16 lost 2 (a limits pass).
TEST(Autotune, GridValuesOfAnIntegerHintAreTheNearestIntegersToTheHalfwayPoints) {
  proto::TuningJobSpec s = AutoSpec({Hint("p", "100"), Hint("q", "4")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);
  const auto& ranges = JobRanges(r).categorical_parameter_ranges;
  ASSERT_EQ(ranges.size(), 2u);
  for (const auto& c : ranges) {
    if (*c.name == "p") EXPECT_EQ(c.values, (std::vector<std::string>{"25", "50", "100", "200", "400"}));
    if (*c.name == "q") EXPECT_EQ(c.values, (std::vector<std::string>{"1", "2", "4", "8", "16"}));
  }
}

// A hint close to 1 (Adam's beta2 0.999, a momentum of 0.9999) gets a range below 1; its Grid
// values, rounded to three digits, put its upper end at "1", outside that range (PyTorch refuses
// a beta of 1). Every value stays in the range, below 1.
TEST(Autotune, GridValuesNearOneStayBelowOne) {
  proto::TuningJobSpec s = AutoSpec({Hint("beta2", "0.999"), Hint("momentum", "0.9999")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);
  for (const auto& c : JobRanges(r).categorical_parameter_ranges) {
    for (const auto& v : c.values) {
      EXPECT_LT(std::stod(v), 1.0) << *c.name << " = " << v;
      EXPECT_GT(std::stod(v), 0.0) << *c.name << " = " << v;
    }
  }
}

// Five numeric hints would make 5^5 = 3,125 Grid combinations, past the 750 a Grid job may run:
// Autotune trims its own values (farthest from each hint first, widest range first) until the
// grid fits, keeps every hint among them, and says so in the choice.
TEST(Autotune, GridValuesAreTrimmedUntilTheCombinationsFitTheLimit) {
  proto::TuningJobSpec s = AutoSpec({Hint("a", "64"), Hint("b", "0.1"), Hint("c", "8"), Hint("d", "0.01"),
                                     Hint("e", "32")});
  s.hyper_parameter_tuning_job_config->strategy = "Grid";
  AutotuneResult r = Resolve(s);  // valid: it fits
  int64_t combinations = 1;
  for (const auto& c : JobRanges(r).categorical_parameter_ranges) {
    combinations *= static_cast<int64_t>(c.values.size());
    EXPECT_GE(c.values.size(), 3u) << *c.name << ": trimmed evenly, not one range to a single value";
  }
  EXPECT_LE(combinations, 750);
  EXPECT_GT(combinations, 750 / 5) << "no more trimming than needed";
  const auto& a = JobRanges(r).categorical_parameter_ranges[0].values;
  EXPECT_NE(std::find(a.begin(), a.end(), "64"), a.end()) << "the hint stays";
  const AutotuneChoice* choice = Choice(r, "(\"a\")");
  ASSERT_NE(choice, nullptr);
  EXPECT_NE(choice->reason.find("stay within 750 training jobs"), std::string::npos) << choice->reason;
}

TEST(Autotune, EachDefinitionsHintsStayInThatDefinition) {
  proto::TuningJobSpec s = AutoSpec({});
  s.hyper_parameter_tuning_job_config->parameter_ranges.reset();  // with several definitions, ranges are theirs
  proto::TrainingJobDefinition a = *s.training_job_definition, b = a;
  s.training_job_definition.reset();
  a.definition_name = "small";
  a.hyper_parameter_ranges = proto::ParameterRanges{};
  a.hyper_parameter_ranges->auto_parameters = {Hint("optimizer", "adam"), Hint("lr", "0.1")};
  b.definition_name = "large";
  b.hyper_parameter_ranges = proto::ParameterRanges{};
  b.hyper_parameter_ranges->auto_parameters = {Hint("layers", "8"), Hint("lr", "0.01")};
  s.training_job_definitions = {a, b};

  AutotuneResult r = Resolve(s);
  const auto& defs = r.spec.training_job_definitions;
  ASSERT_EQ(defs.size(), 2u);
  EXPECT_EQ(defs[0].static_hyper_parameters.at("optimizer"), "adam");
  EXPECT_EQ(defs[1].static_hyper_parameters.count("optimizer"), 0u);
  ExpectRange(FindNumeric(defs[0].hyper_parameter_ranges->continuous_parameter_ranges, "lr"), "0.01", "0.55",
              "Logarithmic");
  ExpectRange(FindNumeric(defs[1].hyper_parameter_ranges->continuous_parameter_ranges, "lr"), "0.001", "0.1",
              "Logarithmic");
  ExpectRange(FindNumeric(defs[1].hyper_parameter_ranges->integer_parameter_ranges, "layers"), "2", "32",
              "Logarithmic");
  EXPECT_NE(Choice(r, "TrainingJobDefinitions[1].HyperParameterRanges.AutoParameters[0]"), nullptr);
  EXPECT_NE(Choice(r, "TrainingJobDefinitions[0].RetryStrategy"), nullptr);
  EXPECT_NE(Choice(r, "TrainingJobDefinitions[1].RetryStrategy"), nullptr);
  // Early stopping (Auto) supports one definition only: not chosen here.
  EXPECT_FALSE(r.spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type);
  // 10 per tuned hyperparameter of the definition with the most (lr and layers).
  EXPECT_EQ(r.spec.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs, 20);
}

// Whatever the hint, resolving gives a valid spec (or a clear refusal), and resolving that again
// changes nothing: edge cases by hand, then strings made of the characters numbers are made of.
TEST(Autotune, AnyHintGivesAValidSpecOrAClearRefusal) {
  std::vector<std::string> hints = {"1e308", "1.7e308", "1e-320", "4e-324", "0.9999999", "0.99999999999999994",
                                    "0.5000001", "+5", "-0", "007", ".5", "5.", "1e5", "1E-3", "-0.5", "nan", "inf",
                                    "-inf", "99999999999999999999", "281474976710656", "281474976710657", "0x10",
                                    "1,000", " 5", "5 ", "", "e", "1e", "TRUE", "tRuE", "yes"};
  uint64_t state = 42;
  const std::string alphabet = "0123456789.eE+-x ";
  for (int i = 0; i < 3000; ++i) {
    std::string h;
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const size_t len = 1 + (state >> 60);
    for (size_t k = 0; k < len; ++k) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      h += alphabet[(state >> 33) % alphabet.size()];
    }
    hints.push_back(h);
  }
  for (const std::string& hint : hints) {
    if (hint.empty()) continue;  // the validator refuses an empty ValueHint
    for (const char* strategy : {"Bayesian", "Grid"}) {
      proto::TuningJobSpec s = AutoSpec({Hint("p", hint)});
      s.hyper_parameter_tuning_job_config->strategy = strategy;
      ASSERT_TRUE(proto::Validate(s, proto::Spelling::kCrd).empty()) << hint;
      Result<AutotuneResult> r = ResolveAutotune(s, {});
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << hint;
        EXPECT_NE(r.status().message().find("\"p\": "), std::string::npos) << hint << ": " << r.status().message();
        continue;
      }
      proto::FieldErrors errs = proto::Validate(r->spec, proto::Spelling::kCrd);
      ASSERT_TRUE(errs.empty()) << strategy << " hint \"" << hint << "\": " << proto::JoinErrors(errs);
      Result<AutotuneResult> again = ResolveAutotune(r->spec, {});
      ASSERT_TRUE(again.ok()) << hint;
      EXPECT_EQ(again->spec, r->spec) << hint;
      ASSERT_TRUE(SearchSpace::FromSpec(r->spec, *r->spec.training_job_definition).ok()) << hint;
    }
  }
}

// Through the core: the job runs, stores and describes the spec with Autotune's choices.
TEST_F(CoreTest, AnAutotuneJobRunsTheRangesAutotuneChoseAndKeepsIneligibleHintsStatic) {
  proto::TuningJobSpec s = AutoSpec({Hint("lr", "0.1"), Hint("optimizer", "adam"), Hint("batch", "32")}, "autojob");
  s.hyper_parameter_tuning_job_config->strategy = "Random";
  Submit(s);

  auto d = core_->Describe("autojob");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const auto& cfg = *d->spec.hyper_parameter_tuning_job_config;
  EXPECT_EQ(cfg.strategy, "Random");
  EXPECT_EQ(cfg.resource_limits->max_number_of_training_jobs, 20);
  EXPECT_TRUE(cfg.parameter_ranges->auto_parameters.empty());
  EXPECT_EQ(cfg.parameter_ranges->continuous_parameter_ranges.size(), 1u);
  EXPECT_EQ(d->spec.autotune, proto::Autotune{"Enabled"});

  // A restarted coordinator reads the same spec back.
  MakeCore();
  auto again = core_->Describe("autojob");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->spec, d->spec);
}

TEST_F(CoreTest, AnAutotuneJobsTrainingJobsGetValuesInTheChosenRangesAndTheStaticHints) {
  proto::TuningJobSpec s = AutoSpec({Hint("lr", "0.1"), Hint("optimizer", "adam"), Hint("batch", "32")}, "autorun");
  s.hyper_parameter_tuning_job_config->strategy = "Random";
  Submit(s);
  auto assigned = Only<proto::wire::AssignTrial>(Register("w1", 3));
  ASSERT_EQ(assigned.size(), 2u);  // MaxParallelTrainingJobs: a tenth of the 20 jobs Autotune chose
  for (const auto& a : assigned) {
    EXPECT_EQ(a.hyperparameters.at("optimizer"), "adam");
    EXPECT_EQ(a.hyperparameters.at("epochs"), "3");
    const double lr = std::stod(a.hyperparameters.at("lr"));
    EXPECT_GE(lr, 0.01);
    EXPECT_LE(lr, 0.55);
    const int batch = std::stoi(a.hyperparameters.at("batch"));
    EXPECT_GE(batch, 8);
    EXPECT_LE(batch, 128);
  }
}

// The SDK sends every estimator hyperparameter as a hint; the limit of 30 tunable hyperparameters
// applies to the ranges Autotune makes of them, not to the hints.
TEST_F(CoreTest, TheTunableLimitCountsTheRangesAutotuneMadeNotTheHints) {
  std::vector<proto::AutoParameter> hints;
  for (int i = 0; i < 30; ++i) hints.push_back(Hint("x" + std::to_string(i), "0.1"));
  for (int i = 0; i < 10; ++i) hints.push_back(Hint("name" + std::to_string(i), "text"));
  Submit(AutoSpec(hints, "forty"));
  ASSERT_NE(core_->FindJob("forty"), nullptr);

  hints.push_back(Hint("x30", "0.1"));
  std::vector<Outgoing> out;
  auto arn = core_->Submit(AutoSpec(hints, "fortyone"), proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(arn.ok());
  EXPECT_NE(arn.status().message().find("with Autotune's choices: "), std::string::npos) << arn.status().message();
  EXPECT_NE(arn.status().message().find("defines 31 tunable hyperparameters; at most 30"), std::string::npos)
      << arn.status().message();
  EXPECT_EQ(core_->FindJob("fortyone"), nullptr);
}

TEST_F(CoreTest, AnAutotuneJobWithNothingToTuneIsRefusedAndNothingIsStored) {
  std::vector<Outgoing> out;
  auto arn = core_->Submit(AutoSpec({Hint("optimizer", "adam")}, "nothing"), proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(arn.ok());
  EXPECT_EQ(arn.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(arn.status().message().find("Autotune found nothing to tune"), std::string::npos);
  EXPECT_EQ(core_->FindJob("nothing"), nullptr);
  MakeCore();
  EXPECT_EQ(core_->FindJob("nothing"), nullptr);
}

}  // namespace
}  // namespace hpo::coordinator
