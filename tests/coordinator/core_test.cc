// The coordinator core driven directly: fake workers are message sequences, time is a number.
#include "coordinator/core.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>

#include "common/text.h"
#include "coordinator/job_store.h"
#include "proto/codec.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::BayesSpec;
using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

TEST_F(CoreTest, RegistrationIsAcknowledgedWithTheLeaseAndAVersionMismatchIsRefused) {
  auto out = Register("w1", 2);
  auto acks = Only<proto::wire::RegisterAck>(out);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].accepted);
  EXPECT_EQ(acks[0].lease_ms, 1000u);

  proto::wire::Register old;
  old.protocol_version = proto::wire::kProtocolVersion + 7;
  old.worker_id = "w2";
  old.host = "w2";
  old.slots = 1;
  auto refused = Only<proto::wire::RegisterAck>(core_->OnMessage("w2", old, now_));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].accepted);
  EXPECT_NE(refused[0].reason.find("protocol version"), std::string::npos);
  EXPECT_EQ(core_->Workers().size(), 1u);
}

TEST_F(CoreTest, RandomJobRunsToItsLimitRespectingParallelismAndPicksTheBest) {
  Register("w1", 4);
  auto out = Submit(Spec("rand", "Random", 6, 2));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 2u) << "maxParallelTrainingJobs is 2";
  EXPECT_EQ(assigns[0].hyperparameters.at("_tuning_objective_metric"), "loss");
  EXPECT_EQ(assigns[0].hyperparameters.at("epochs"), "3");
  EXPECT_EQ(assigns[0].trial.rfind("rand-001-", 0), 0u);
  EXPECT_EQ(assigns[0].attempt, 1u);

  std::vector<double> losses = {0.9, 0.4, 0.7, 0.2, 0.8, 0.5};
  std::vector<proto::wire::AssignTrial> queue = assigns;
  size_t done = 0;
  std::string best_name;
  while (!queue.empty()) {
    proto::wire::AssignTrial a = queue.front();
    queue.erase(queue.begin());
    if (losses[done] == 0.2) best_name = a.trial;
    auto more = Only<proto::wire::AssignTrial>(Finish("w1", a, losses[done++]));
    EXPECT_LE(more.size(), 1u);
    for (auto& m : more) queue.push_back(m);
  }
  EXPECT_EQ(done, 6u);
  auto d = core_->Describe("rand");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->completed, 6);
  EXPECT_EQ(*d->status.objective_status_counters->succeeded, 6);
  ASSERT_TRUE(d->status.best_training_job);
  EXPECT_EQ(*d->status.best_training_job->training_job_name, best_name);
  EXPECT_DOUBLE_EQ(*d->status.best_training_job->final_hyper_parameter_tuning_job_objective_metric->value, 0.2);
}

TEST_F(CoreTest, ABayesianJobWithFourParallelCountsItsPredictedBestProposals) {
  // Four slots proposing one at a time: once the model runs (3 observations in 2-d), one
  // proposal in every 4 is the model's predicted best, counted apart from the others.
  Register("w1", 4);
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(BayesSpec("bayes", 20, 4)));
  ASSERT_EQ(queue.size(), 4u);
  size_t done = 0;
  while (!queue.empty()) {
    proto::wire::AssignTrial a = queue.front();
    queue.erase(queue.begin());
    const double x = std::stod(a.hyperparameters.at("x")), y = std::stod(a.hyperparameters.at("y"));
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, (x - 0.3) * (x - 0.3) + (y - 0.6) * (y - 0.6)))) {
      queue.push_back(m);
    }
    ++done;
  }
  EXPECT_EQ(done, 20u);
  const SuggestionStats* st = core_->Suggestions("bayes");
  ASSERT_NE(st, nullptr);
  EXPECT_EQ(st->count, 20u);
  // The space-filling start: the first 4, and the 5th and 6th, proposed with 1 and 2 results in.
  EXPECT_EQ(st->fallbacks, 6u);
  // Proposals 7..20 had the model, at history sizes 6..19 (3 running beside each): P = 4, and
  // sizes 9, 13 and 17 are 1 mod 4.
  EXPECT_EQ(st->exploits, 3u);
}

TEST_F(CoreTest, ASuggestionsEventSaysWhenTheObjectivesWereWarped) {
  // A narrow deep basin below a plateau (exp of a bowl: 1 at the optimum, up to e^10): the model
  // takes warped objectives, and the Suggestion events say so with the lambda.
  Register("w1", 1);
  std::vector<proto::wire::AssignTrial> queue = Only<proto::wire::AssignTrial>(Submit(BayesSpec("skew", 12, 1)));
  ASSERT_EQ(queue.size(), 1u);
  while (!queue.empty()) {
    proto::wire::AssignTrial a = queue.front();
    queue.erase(queue.begin());
    const double x = std::stod(a.hyperparameters.at("x")), y = std::stod(a.hyperparameters.at("y"));
    const double loss = std::exp(10.0 * ((x - 0.3) * (x - 0.3) + (y - 0.6) * (y - 0.6)));
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, loss))) queue.push_back(m);
  }
  auto events = core_->Events("skew", 0, 1000);
  ASSERT_TRUE(events.ok());
  size_t suggestions = 0, warped = 0;
  for (const EventRow& e : *events) {
    if (e.kind != "Suggestion") continue;
    ++suggestions;
    if (e.message.find("; objectives warped (Yeo-Johnson lambda ") != std::string::npos) ++warped;
  }
  EXPECT_EQ(suggestions, 12u);
  EXPECT_GT(warped, 0u);
  EXPECT_LT(warped, suggestions);  // never during the space-filling start
}

TEST_F(CoreTest, GridEnumeratesEveryCombinationOnceAndCompletes) {
  Register("w1", 8);
  auto spec = Spec("grid", "Grid", 6, 8);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigns.size(), 6u);
  std::set<std::pair<std::string, std::string>> seen;
  for (const auto& a : assigns) seen.insert({a.hyperparameters.at("opt"), a.hyperparameters.at("act")});
  EXPECT_EQ(seen.size(), 6u);
  for (const auto& a : assigns) Finish("w1", a, 1.0);
  EXPECT_EQ(*core_->Describe("grid")->status.hyper_parameter_tuning_job_status, "Completed");
}

// A Grid job warm-started from a Grid parent: IdenticalDataAndAlgorithm runs only the
// combinations the parent did not (refused when none are left); TransferLearning runs them all
// (the parent's ran on other data or another algorithm).
TEST_F(CoreTest, AWarmStartedGridSkipsItsParentsCombinationsOnlyForIdenticalData) {
  Register("w1", 8);
  auto parent = Spec("grid-parent", "Grid", 6, 8);
  auto& opt = parent.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0];
  opt.values = {"sgd", "adam"};
  parent.hyper_parameter_tuning_job_config->resource_limits->max_number_of_training_jobs = 4;
  auto pa = Only<proto::wire::AssignTrial>(Submit(parent));
  ASSERT_EQ(pa.size(), 4u);
  for (const auto& a : pa) Finish("w1", a, 1.0);
  ASSERT_EQ(*core_->Describe("grid-parent")->status.hyper_parameter_tuning_job_status, "Completed");

  auto child = [&](const std::string& name, const std::string& type, std::vector<std::string> opts) {
    auto c = Spec(name, "Grid", static_cast<int>(opts.size()) * 2, 8);
    c.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0].values = opts;
    c.warm_start_config.emplace();
    c.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"grid-parent"});
    c.warm_start_config->warm_start_type = type;
    return c;
  };
  auto identical = Only<proto::wire::AssignTrial>(Submit(child("grid-ident", "IdenticalDataAndAlgorithm", {"sgd", "adam", "rmsprop"})));
  ASSERT_EQ(identical.size(), 2u) << "only rmsprop x {relu, tanh} is new";
  for (const auto& a : identical) EXPECT_EQ(a.hyperparameters.at("opt"), "rmsprop");
  auto transfer = Only<proto::wire::AssignTrial>(Submit(child("grid-transfer", "TransferLearning", {"sgd", "adam", "rmsprop"})));
  EXPECT_EQ(transfer.size(), 6u) << "every combination runs again";

  std::vector<Outgoing> out;
  auto covered = core_->Submit(child("grid-covered", "IdenticalDataAndAlgorithm", {"sgd", "adam"}), proto::Spelling::kCrd,
                               now_, &out);
  ASSERT_FALSE(covered.ok());
  EXPECT_EQ(covered.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(covered.status().message().find("already ran every configuration"), std::string::npos)
      << covered.status().message();
  EXPECT_EQ(core_->FindJob("grid-covered"), nullptr) << "a refusal changes nothing";
  EXPECT_TRUE(core_->Submit(child("grid-covered", "TransferLearning", {"sgd", "adam"}), proto::Spelling::kCrd, now_, &out).ok())
      << "the name is still free";
}

// An AMT pass: the child's static hyperparameters were not compared, so a configuration its
// parents ran with other static values (epochs 3, or opt tuned there and fixed here at a value
// they never had) counted as run: the child skipped it, or was refused as having nothing to run.
TEST_F(CoreTest, AWarmStartedJobRunsWhatItsParentsRanWithOtherStaticValues) {
  Register("w1", 8);
  auto parent = Spec("st-parent", "Grid", 6, 8);
  auto pa = Only<proto::wire::AssignTrial>(Submit(parent));
  ASSERT_EQ(pa.size(), 6u);
  for (const auto& a : pa) Finish("w1", a, 1.0);
  auto child = [&](const std::string& name, const std::string& epochs) {
    auto c = Spec(name, "Grid", 6, 8);
    c.training_job_definition->static_hyper_parameters["epochs"] = epochs;
    c.warm_start_config.emplace();
    c.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"st-parent"});
    c.warm_start_config->warm_start_type = "IdenticalDataAndAlgorithm";
    return c;
  };
  std::vector<Outgoing> out;
  auto same = core_->Submit(child("st-same", "3.0"), proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(same.ok()) << "the same static values (3.0 is 3): every combination ran already";
  EXPECT_NE(same.status().message().find("already ran every configuration"), std::string::npos);
  auto longer = Only<proto::wire::AssignTrial>(Submit(child("st-longer", "8")));
  EXPECT_EQ(longer.size(), 6u) << "epochs 8 ran nowhere: all six combinations run";
  for (const auto& a : longer) Finish("w1", a, 1.0);

  // opt tuned by a parent over {sgd, adam}, fixed here at rmsprop: act's two values run again.
  auto fixed = Spec("st-fixed", "Grid", 2, 8);
  auto& ranges = fixed.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges;
  ranges.erase(ranges.begin());  // opt
  fixed.training_job_definition->static_hyper_parameters["opt"] = "rmsprop";
  fixed.warm_start_config.emplace();
  fixed.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"st-parent"});
  fixed.warm_start_config->warm_start_type = "IdenticalDataAndAlgorithm";
  auto parent2 = Spec("st-parent2", "Grid", 4, 8);
  parent2.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges[0].values = {"sgd", "adam"};
  for (const auto& a : Only<proto::wire::AssignTrial>(Submit(parent2))) Finish("w1", a, 1.0);
  fixed.warm_start_config->parent_hyper_parameter_tuning_jobs[0].hyper_parameter_tuning_job_name = "st-parent2";
  auto fa = Only<proto::wire::AssignTrial>(Submit(fixed));
  ASSERT_EQ(fa.size(), 2u) << "relu and tanh, with rmsprop, which the parent never ran";
  for (const auto& a : fa) EXPECT_EQ(a.hyperparameters.at("opt"), "rmsprop");
}

// SageMaker's limit of 10 changes from a warm start's parents (a tunable made static, or a static
// value changed, 2 each): 11 changed static values were taken (a warm-start pass).
TEST_F(CoreTest, AWarmStartThatChangesMoreThanTenHyperparametersIsRefused) {
  Register("w1", 8);
  auto parent = Spec("wc-parent", "Random", 2, 2);
  for (int i = 1; i <= 12; ++i) parent.training_job_definition->static_hyper_parameters["s" + std::to_string(i)] = "a";
  for (const auto& a : Only<proto::wire::AssignTrial>(Submit(parent))) Finish("w1", a, 1.0);
  auto child = [&](const std::string& name, int changed, const std::string& type) {
    auto c = parent;
    c.hyper_parameter_tuning_job_name = name;
    for (int i = 1; i <= changed; ++i) c.training_job_definition->static_hyper_parameters["s" + std::to_string(i)] = "b";
    c.warm_start_config.emplace();
    c.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"wc-parent"});
    c.warm_start_config->warm_start_type = type;
    return c;
  };
  for (const std::string type : {"IdenticalDataAndAlgorithm", "TransferLearning"}) {
    std::vector<Outgoing> out;
    auto many = core_->Submit(child("wc-many-" + std::to_string(type.size()), 6, type), proto::Spelling::kApi, now_, &out);
    ASSERT_FALSE(many.ok()) << type;
    EXPECT_EQ(many.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(many.status().message().find("\"wc-parent\": 12 changes of hyperparameters from it (s1 a there, b here; "),
              std::string::npos)
        << many.status().message();
    EXPECT_NE(many.status().message().find("at most 10"), std::string::npos) << many.status().message();
    EXPECT_TRUE(core_->Submit(child("wc-five-" + std::to_string(type.size()), 5, type), proto::Spelling::kApi, now_, &out)
                    .ok())
        << "5 changed values are 10 changes: allowed";
  }
  // A tunable made static counts 2 as well: opt fixed, 4 values changed (10) is allowed, 5 not.
  auto fixed = [&](const std::string& name, int changed) {
    auto c = child(name, changed, "TransferLearning");
    auto& ranges = c.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges;
    ranges.erase(ranges.begin());  // opt
    c.training_job_definition->static_hyper_parameters["opt"] = "sgd";
    return c;
  };
  std::vector<Outgoing> out;
  EXPECT_TRUE(core_->Submit(fixed("wc-fixed-ok", 4), proto::Spelling::kApi, now_, &out).ok());
  auto refused = core_->Submit(fixed("wc-fixed", 5), proto::Spelling::kApi, now_, &out);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("opt tunable there, static sgd here"), std::string::npos)
      << refused.status().message();
}

// An AMT pass: deleting a parent named one warm-start child per refusal, so a parent of five took
// five refusals to find them all. All are named at once now.
TEST_F(CoreTest, DeletingAParentNamesEveryJobThatWarmStartsFromIt) {
  Register("w1", 8);
  for (const auto& a : Only<proto::wire::AssignTrial>(Submit(Spec("p1", "Grid", 6, 8)))) Finish("w1", a, 1.0);
  for (const std::string name : {"kid-b", "kid-a"}) {
    auto c = Spec(name, "Random", 2, 1);
    c.warm_start_config.emplace();
    c.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"p1"});
    c.warm_start_config->warm_start_type = "TransferLearning";
    Submit(c);
  }
  Status refused = core_->Delete("p1", now_);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("2 tuning jobs warm-start from p1 and read its training jobs: kid-a (InProgress), "
                                   "kid-b (InProgress); delete them first (hpo delete kid-a kid-b)"),
            std::string::npos)
      << refused.message();
}

// SageMaker gives up on a tuning job whose training jobs keep failing before any succeeds ("No
// training job succeeded after 5 attempts"), instead of spending the whole budget on a broken
// trainer: the fifth failure stops the rest and fails the job.
// A spec SageMaker's rules take but the wire cannot carry (a static hyperparameter name of 200
// two-byte characters: SageMaker counts 256 characters, the wire 256 bytes): its training jobs
// fail, saying why, instead of being sent to a worker that refuses them, again and again.
TEST_F(CoreTest, ATrainingJobTheWireCannotCarryFailsInsteadOfBeingSentForever) {
  Register("w1", 2);
  proto::TuningJobSpec spec = coretest::Spec("widekey", "Random", 6, 2);
  std::string key;
  for (int i = 0; i < 200; ++i) key += "\xc3\xa9";  // é
  spec.training_job_definition->static_hyper_parameters[key] = "1";
  auto out = Submit(spec);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(out).empty()) << "nothing a worker would refuse is sent";
  const auto d = core_->Describe("widekey");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed") << "no training job can succeed: it gives up";
  const auto trials = core_->TrialsOf("widekey");
  ASSERT_FALSE(trials.empty());
  EXPECT_EQ(trials[0]->failure_reason.rfind("ClientError: hpo cannot send this training job to a worker: ", 0), 0u)
      << trials[0]->failure_reason;
  EXPECT_NE(trials[0]->failure_reason.find("hyperparameters"), std::string::npos) << trials[0]->failure_reason;
}

TEST_F(CoreTest, AJobGivesUpAfterFiveFailuresWithoutASuccess) {
  auto random = [](const std::string& name, int jobs, int parallel) {  // a continuous space: never exhausted
    auto spec = coretest::BayesSpec(name, jobs, parallel);
    spec.hyper_parameter_tuning_job_config->strategy = "Random";
    return spec;
  };
  Register("w1", 3);
  auto queue = Only<proto::wire::AssignTrial>(Submit(random("broken", 20, 3)));
  ASSERT_EQ(queue.size(), 3u);
  int failed = 0;
  std::vector<proto::wire::StopTrial> stops;
  while (failed < 5) {
    ASSERT_FALSE(queue.empty());
    auto a = queue.front();
    queue.erase(queue.begin());
    auto out = Finish("w1", a, 1.0, "Failed");
    ++failed;
    for (auto& m : Only<proto::wire::AssignTrial>(out)) queue.push_back(m);
    for (auto& m : Only<proto::wire::StopTrial>(out)) stops.push_back(m);
  }
  EXPECT_EQ(stops.size(), 2u) << "the two still running are stopped";
  // One of them fails on its way out (its program crashed on SIGTERM): the failure reason still
  // counts the five it gave up on, as the stop's message did ("its first 5"); it said 6.
  for (auto& a : queue) {
    if (a.trial == stops[0].trial) Finish("w1", a, 1.0, "Failed");
  }
  for (size_t i = 1; i < stops.size(); ++i) StoppedExit("w1", stops[i]);
  auto d = core_->Describe("broken");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
  EXPECT_EQ(*d->status.failure_reason,
            "No training job succeeded after 5 attempts. Please take a look at the training job failures to get "
            "more details.");
  EXPECT_EQ(core_->TrialsOf("broken").size(), 7u) << "5 failed, 2 stopped, none of the other 13 started";
  EXPECT_EQ(core_->FindJob("broken")->strategy, nullptr) << "an ended job's strategy is released";

  // One success among the first five: the job goes on to its budget.
  Register("w1", 1);
  auto next = Only<proto::wire::AssignTrial>(Submit(random("flaky", 8, 1)));
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(next.size(), 1u) << i;
    next = Only<proto::wire::AssignTrial>(Finish("w1", next[0], 1.0, i == 2 ? "Completed" : "Failed"));
  }
  EXPECT_EQ(*core_->Describe("flaky")->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(core_->TrialsOf("flaky").size(), 8u);
}

// Five failures while one training job still runs and has emitted the objective: that one works,
// so the job does not give up on it. It was stopped as "none succeeded", then counted as the
// succeeded best of a job that ended Completed.
TEST_F(CoreTest, AJobDoesNotGiveUpWhileARunningTrainingJobHasEmittedTheObjective) {
  auto spec = coretest::BayesSpec("slowgood", 20, 6);
  spec.hyper_parameter_tuning_job_config->strategy = "Random";
  Register("w1", 6);
  auto queue = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(queue.size(), 6u);
  const auto good = queue.front();
  queue.erase(queue.begin());
  Emit("w1", good, {0.5, 0.4});  // runs on, and has emitted the objective
  std::vector<proto::wire::StopTrial> stops;
  for (int failed = 0; failed < 5; ++failed) {
    auto a = queue.front();
    queue.erase(queue.begin());
    auto out = Finish("w1", a, 1.0, "Failed");
    // While it waits on the running one, it starts no new one: one was placed the moment the
    // fifth failed (and stopped when the job gave up: 7 training jobs "after 5 attempts").
    if (failed == 4) {
      EXPECT_TRUE(Only<proto::wire::AssignTrial>(out).empty()) << "a sixth started";
    }
    for (auto& m : Only<proto::wire::AssignTrial>(out)) queue.push_back(m);
    for (auto& m : Only<proto::wire::StopTrial>(out)) stops.push_back(m);
  }
  EXPECT_TRUE(stops.empty()) << "stopped " << stops.front().trial;
  EXPECT_EQ(*core_->Describe("slowgood")->status.hyper_parameter_tuning_job_status, "InProgress");
  // It completes: the job goes on to its budget with that success among the first.
  for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", good, "Completed"))) queue.push_back(m);
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, 2.0, "Failed"))) queue.push_back(m);
  }
  const auto d = core_->Describe("slowgood");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(core_->TrialsOf("slowgood").size(), 20u);
  EXPECT_EQ(d->status.best_training_job->training_job_name, good.trial);
}

// Over a quota of this coordinator (a value SageMaker's API takes): ResourceExhausted, which the
// HTTP API answers as ResourceLimitExceeded; a raised quota lets it through.
TEST_F(CoreTest, ASpecOverACoordinatorQuotaIsResourceExhaustedNotInvalid) {
  std::vector<Outgoing> out;
  auto wide = Spec("wide", "Random", 6, 101);
  auto over = core_->Submit(wide, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kResourceExhausted) << over.status().ToString();
  EXPECT_NE(over.status().message().find("--max-parallel-training-jobs"), std::string::npos) << over.status().message();
  auto both = wide;
  both.hyper_parameter_tuning_job_config->strategy = "Sideways";
  EXPECT_EQ(core_->Submit(both, proto::Spelling::kCrd, now_, &out).status().code(), StatusCode::kInvalidArgument)
      << "an invalid field besides: ValidationException";
  options_.limits.max_parallel_training_jobs = 200;
  MakeCore();
  EXPECT_TRUE(core_->Submit(wide, proto::Spelling::kCrd, now_, &out).ok());
}

TEST_F(CoreTest, FailedTrialsAreNotRetriedAndAJobWithoutSuccessFails) {
  Register("w1", 2);
  auto queue = Only<proto::wire::AssignTrial>(Submit(Spec("fails", "Random", 3, 2)));
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a, 1.0, "Failed"))) {
      EXPECT_EQ(m.attempt, 1u) << "an algorithm error is never retried";
      queue.push_back(m);
    }
  }
  auto d = core_->Describe("fails");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
  EXPECT_EQ(*d->status.training_job_status_counters->non_retryable_error, 3);
  EXPECT_EQ(*d->status.failure_reason,
            "No training job succeeded after 3 attempts. Please take a look at the training job failures to get "
            "more details.");
  auto trials = core_->TrialsOf("fails");
  EXPECT_EQ(trials[0]->failure_reason, "AlgorithmError: boom");
}

// A failure message in Chinese longer than FailureReason's 1,024 characters: the cut fell inside
// a character, and writing the training job's record threw (the coordinator aborted, and again
// on every restart as the worker re-sent the report). Cut between characters, at 1,024 of them.
TEST_F(CoreTest, ALongNonAsciiFailureReasonIsCutBetweenCharacters) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("utf8", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  std::string text;
  for (int i = 0; i < 150; ++i) text += "\u6570\u636e\u6587\u4ef6\u683c\u5f0f\u9519\u8bef";  // 8 characters, 24 bytes
  EXPECT_NO_THROW(EndWith("w1", a[0].trial, a[0].attempt, "Failed", "AlgorithmError: " + text));
  const std::string reason = core_->TrialsOf("utf8")[0]->failure_reason;
  EXPECT_EQ(InvalidUtf8At(reason), std::nullopt) << reason;
  EXPECT_EQ(Utf8Length(reason), 1024u);
  EXPECT_EQ(reason, Utf8Prefix("AlgorithmError: " + text, 1024));
}

// Training jobs that all complete without one line the objective's regex matches: SageMaker's
// failure text, then the likely cause and where to look.
TEST_F(CoreTest, AJobWhoseTrainingJobsNeverEmitTheObjectiveSaysSo) {
  Register("w1", 1);
  auto queue = Only<proto::wire::AssignTrial>(Submit(Spec("silent", "Random", 2, 1)));
  std::string first;
  while (!queue.empty()) {
    auto a = queue.front();
    queue.erase(queue.begin());
    if (first.empty()) first = a.trial;
    Started("w1", a);
    for (auto& m : Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed"))) queue.push_back(m);
  }
  auto d = core_->Describe("silent");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
  EXPECT_EQ(*d->status.failure_reason,
            "No training job succeeded after 2 attempts. Please take a look at the training job failures to get "
            "more details. 2 of them completed without emitting the objective metric: check its MetricDefinitions "
            "regex against their output, and that what it matched is a number (hpo logs " + first +
                "; a non-finite value such as nan is noted there).");

  // One training job: "1 attempt" (an AMT pass read "after 1 attempts").
  auto one = Only<proto::wire::AssignTrial>(Submit(Spec("silent1", "Random", 1, 1)));
  ASSERT_EQ(one.size(), 1u);
  Started("w1", one[0]);
  Exit("w1", one[0], "Completed");
  EXPECT_EQ(core_->Describe("silent1")->status.failure_reason->rfind("No training job succeeded after 1 attempt. ", 0), 0u)
      << *core_->Describe("silent1")->status.failure_reason;
}

TEST_F(CoreTest, ALostWorkersTrialIsRetriedElsewhereWithTheSameNameAndHyperparameters) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("lost", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Register("w2", 1);
  now_ += 500;
  core_->OnMessage("w2", proto::wire::Heartbeat{"w2", 1, 1, {}}, now_);
  now_ += 700;  // w1 silent for 1200 ms > lease 1000
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnTick(now_)).empty())
      << "not at once: w1, stopped but not gone, may still run it until its guard ends it";
  EXPECT_NE(core_->FindJob("lost")->waiting_reason.find("once its lost worker's guard has ended the program"),
            std::string::npos)
      << core_->FindJob("lost")->waiting_reason;
  std::vector<Outgoing> out;
  for (int i = 0; i < 20 && Only<proto::wire::AssignTrial>(out).empty(); ++i) {
    now_ += 500;
    out = core_->OnMessage("w2", proto::wire::Heartbeat{"w2", static_cast<uint64_t>(i + 2), 1, {}}, now_);
    for (auto& o : core_->OnTick(now_)) out.push_back(std::move(o));
  }
  // Once the lease and half again (at least 2 s more) and a margin have passed since w1's last word.
  EXPECT_GE(now_, 1000 + proto::wire::StallKillAfterMs(1000));
  auto re = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(re.size(), 1u);
  EXPECT_EQ(re[0].trial, a[0].trial);
  EXPECT_EQ(re[0].attempt, 2u);
  EXPECT_EQ(re[0].hyperparameters, a[0].hyperparameters);
  EXPECT_EQ(out[0].worker_id, "w2");
  Finish("w2", re[0], 0.3);
  auto d = core_->Describe("lost");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
}

// A worker keeps a training job's checkpoint directory after its attempt there ended (the
// retry may come back to it); the coordinator lets it go only once no attempt is to come.
TEST_F(CoreTest, HeldCheckpointsAreReleasedOnlyForTrainingJobsThatHaveEndedForGood) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("held", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  const proto::wire::HeldTrials held{"w1", {a[0].trial, "unknown-job-001-00000000"}};
  proto::wire::TrialExited x;
  x.trial = a[0].trial;
  x.attempt = a[0].attempt;
  x.status = "InfraError";
  x.failure_reason = "the node's disk went read-only";
  auto re = Only<proto::wire::AssignTrial>(core_->OnMessage("w1", x, now_));
  ASSERT_EQ(re.size(), 1u) << "retried";
  // While the retry runs (here on the same worker, which then would not ask about it, but another
  // worker holding the directory would): nothing to release.
  EXPECT_TRUE(Only<proto::wire::ReleaseTrials>(core_->OnMessage("w1", held, now_)).empty());
  Finish("w1", re[0], 0.3);
  auto rel = Only<proto::wire::ReleaseTrials>(core_->OnMessage("w1", held, now_));
  ASSERT_EQ(rel.size(), 1u);
  // Only the ended one: a name this coordinator does not know is not vouched for.
  EXPECT_EQ(rel[0].trials, std::vector<std::string>{a[0].trial});
  // An unregistered worker is asked to register, as for any other message.
  auto out = core_->OnMessage("stranger", proto::wire::HeldTrials{"stranger", {a[0].trial}}, now_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::get<proto::wire::Error>(out[0].message).code, "NotRegistered");
  // The job deleted before the worker asked (a fault pass: its directories stayed for good), and
  // its name used again: the deleted job's training jobs are released, the new job's are not.
  ASSERT_TRUE(core_->Delete("held", now_).ok());
  now_ += 1000;  // created later: its training jobs' names differ (coordinator/trial_name.h)
  auto again = Only<proto::wire::AssignTrial>(Submit(Spec("held", "Random", 1, 1)));
  ASSERT_EQ(again.size(), 1u);
  ASSERT_NE(again[0].trial, a[0].trial);
  // A name of the deleted job's shape that was never a training job here (another coordinator's
  // job of the same name) is not released: it was, by the tuning job's name alone.
  const std::string elsewhere = "held-001-0123abcd";
  ASSERT_NE(elsewhere, a[0].trial);
  const proto::wire::HeldTrials after{"w1", {a[0].trial, again[0].trial, elsewhere, "unknown-job-001-00000000"}};
  auto gone = Only<proto::wire::ReleaseTrials>(core_->OnMessage("w1", after, now_));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].trials, std::vector<std::string>{a[0].trial});
  MakeCore();  // and after a restart
  Register("w1", 1, {{again[0].trial, again[0].attempt}});
  gone = Only<proto::wire::ReleaseTrials>(core_->OnMessage("w1", after, now_));
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].trials, std::vector<std::string>{a[0].trial});
}

// One registered worker must not end, or score, a training job another one runs: a forged
// TrialExited with a low loss once became the tuning job's best and the real result was lost.
TEST_F(CoreTest, ReportsAboutAnotherWorkersAttemptAreAcknowledgedButNeverApplied) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("forged", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Register("rogue", 1);
  Started("w1", a[0]);
  Emit("rogue", a[0], {-12345}, 1);  // its TrialStarted and MetricPoints
  auto acks = Only<proto::wire::Ack>(Exit("rogue", a[0], "Completed"));
  ASSERT_EQ(acks.size(), 1u) << "acknowledged, so a straggler drops it";
  auto d = core_->Describe("forged");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "InProgress");
  EXPECT_EQ(*d->status.training_job_status_counters->completed, 0);
  auto events = core_->Events("forged", 0, 100);
  ASSERT_TRUE(events.ok());
  int refused = 0;
  for (const auto& e : *events) {
    if (e.kind != "ReportRefused") continue;
    ++refused;
    EXPECT_NE(e.message.find("worker rogue sent"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("which runs on w1"), std::string::npos) << e.message;
  }
  EXPECT_EQ(refused, 1) << "one event per (worker, training job, attempt), however many reports";
  // The real worker's result is the one that counts.
  sent_.clear();
  Emit("w1", a[0], {0.5, 0.25}, 1);
  Exit("w1", a[0], "Completed");
  d = core_->Describe("forged");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(d->status.best_training_job->final_hyper_parameter_tuning_job_objective_metric->value, 0.25);
}

TEST_F(CoreTest, RetriesStopAtMaximumRetryAttemptsAndCountAsRetryableErrors) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("infra", "Random", 1, 1)));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(a.size(), 1u) << "attempt " << i + 1;
    proto::wire::TrialExited x;
    x.trial = a[0].trial;
    x.attempt = a[0].attempt;
    x.status = "InfraError";
    x.failure_reason = "container runtime crashed";
    a = Only<proto::wire::AssignTrial>(core_->OnMessage("w1", x, now_));
  }
  EXPECT_TRUE(a.empty()) << "maximumRetryAttempts 2 allows 3 attempts in all";
  auto d = core_->Describe("infra");
  EXPECT_EQ(*d->status.training_job_status_counters->retryable_error, 1);
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Failed");
}

// A run whose objective's last value was "nan" (it diverged after good epochs) has no final
// objective: it was scored by its last finite value, and a NaN model became the job's best.
TEST_F(CoreTest, AFinalObjectiveOfNaNLeavesTheTrainingJobWithoutOne) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("diverged", "Random", 2, 1)))[0];
  Emit("w1", a, {0.9, 0.2});
  EXPECT_DOUBLE_EQ(*core_->FindTrial(a.trial)->objective, 0.2);
  proto::wire::TrialExited x = ExitedMessage(a, "Completed", 1);
  x.final_metrics = {{"loss", std::nan("")}, {"other", 3.0}};
  auto next = Only<proto::wire::AssignTrial>(core_->OnMessage("w1", x, now_));
  const Trial* t = core_->FindTrial(a.trial);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state, TrialState::kCompleted);
  EXPECT_FALSE(t->objective.has_value()) << *t->objective;
  EXPECT_EQ(t->final_metrics.count("loss"), 0u);
  EXPECT_DOUBLE_EQ(t->final_metrics.at("other"), 3.0);
  ASSERT_EQ(next.size(), 1u);
  Emit("w1", next[0], {0.5});
  Exit("w1", next[0], "Completed");
  const auto d = core_->Describe("diverged");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.best_training_job->training_job_name, next[0].trial) << "the diverged one is not the best";
}

TEST_F(CoreTest, DuplicateAndStaleMessagesChangeNothing) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dups", "Random", 2, 1)))[0];
  proto::wire::MetricPoints m;
  m.trial = a.trial;
  m.attempt = a.attempt;
  m.seq = 1;
  m.points = {{"loss", 0.5, now_, 0}};
  core_->OnMessage("w1", m, now_);
  m.points = {{"loss", 99.0, now_, 1}};  // same seq again: a duplicate batch
  auto acks = Only<proto::wire::Ack>(core_->OnMessage("w1", m, now_));
  ASSERT_EQ(acks.size(), 1u) << "duplicates are still acknowledged";
  EXPECT_DOUBLE_EQ(*core_->FindTrial(a.trial)->objective, 0.5);
  proto::wire::MetricPoints stale = m;
  stale.attempt = 9;
  stale.seq = 2;
  core_->OnMessage("w1", stale, now_);
  EXPECT_DOUBLE_EQ(*core_->FindTrial(a.trial)->objective, 0.5);
  EXPECT_EQ(store_->LoadMetrics(a.trial)->size(), 1u);
}

// The CRD status's ACK.ResourceSynced condition (hpo describe -o yaml): False while the job runs
// or stops, True once it has ended, the message naming the status.
void ExpectSynced(const CoordinatorCore& core, const std::string& name, const std::string& synced,
                  const std::string& status) {
  auto doc = core.DescribeDocument(name);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const auto& conditions = doc->status->conditions;
  auto c = std::find_if(conditions.begin(), conditions.end(),
                        [](const proto::Condition& c) { return c.type == "ACK.ResourceSynced"; });
  ASSERT_NE(c, conditions.end());
  EXPECT_EQ(c->status, synced) << status;
  EXPECT_EQ(c->message, "HyperParameterTuningJob is in " + status + " status.");
  EXPECT_EQ(doc->status->hyper_parameter_tuning_job_status, status);
  ASSERT_TRUE(doc->status->ack_resource_metadata.has_value());
  EXPECT_NE(doc->status->ack_resource_metadata->arn.value_or("").find(":hyper-parameter-tuning-job/" + name),
            std::string::npos);
}

TEST_F(CoreTest, StoppingAJobStopsItsRunningTrialsThenEndsStopped) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("halt", "Random", 6, 2)));
  ASSERT_EQ(a.size(), 2u);
  ExpectSynced(*core_, "halt", "False", "InProgress");
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("HALT", now_, &out).ok()) << "names are not case sensitive";
  auto stops = Only<proto::wire::StopTrial>(out);
  ASSERT_EQ(stops.size(), 2u);
  EXPECT_EQ(*core_->Describe("halt")->status.hyper_parameter_tuning_job_status, "Stopping");
  ExpectSynced(*core_, "halt", "False", "Stopping");
  for (const auto& s : stops) {
    auto more = StoppedExit("w1", s);
    EXPECT_TRUE(Only<proto::wire::AssignTrial>(more).empty()) << "nothing new starts while stopping";
  }
  ExpectSynced(*core_, "halt", "True", "Stopped");
  auto d = core_->Describe("halt");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Stopped");
  EXPECT_EQ(*d->status.training_job_status_counters->stopped, 2);
  EXPECT_FALSE(core_->Stop("nope", now_, &out).ok());
  // Stopping it again is refused as SageMaker refuses it (StopTrainingJob alike), naming its
  // status: it answered OK and changed nothing.
  Status again = core_->Stop("halt", now_, &out);
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(), "tuning job halt has already ended: it is Stopped; only an InProgress tuning job can be stopped");
}

// The worker starts an attempt (assigned ahead, or just assigned) before the coordinator's stop
// reaches it: the TrialStarted that follows the stop leaves it Stopping, and its status history
// never goes from Stopping back to Training (seen after a completion criterion stopped the rest).
TEST_F(CoreTest, AnAttemptThatStartsAfterItWasAskedToStopStaysStopping) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("late", "Random", 4, 1)));
  ASSERT_EQ(a.size(), 1u);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(a[0].trial, now_, &out).ok());
  Started("w1", a[0]);
  const Trial* t = core_->FindTrial(a[0].trial);
  EXPECT_EQ(t->state, TrialState::kStopping);
  std::vector<std::string> history;
  for (const auto& s : t->secondary) history.push_back(s.status);
  EXPECT_EQ(history, (std::vector<std::string>{"Starting", "Stopping"}));
  Exit("w1", a[0], "Stopped");
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kStopped);
}

// SageMaker's secondary status Downloading: while the worker fetches the attempt's input, between
// Starting and Training, said once (a gang's other hosts say it too), never after the start, and
// never on another worker's word.
TEST_F(CoreTest, AnAttemptFetchingItsInputIsDownloadingUntilItStarts) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dl", "Random", 4, 1)));
  ASSERT_EQ(a.size(), 1u);
  Register("rogue", 1);
  auto report = [&](const std::string& wid, const std::string& status, const std::string& what) {
    proto::wire::TrialStaging m;
    m.trial = a[0].trial;
    m.attempt = a[0].attempt;
    m.worker_id = wid;
    m.status = status;
    m.what = what;
    return core_->OnMessage(wid, m, now_);
  };
  auto staging = [&](const std::string& wid) {
    return report(wid, "Downloading", "channel train; checkpoints from s3://b/ck");
  };
  auto pulling = [&] { return report("w1", "DownloadingTrainingImage", "registry.local/xgb:1"); };
  EXPECT_TRUE(staging("rogue").empty()) << "not acknowledged: informational";
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_EQ(t->secondary.back().status, "Starting") << "another worker's report changes nothing";
  now_ += 100;
  staging("w1");
  now_ += 100;
  staging("w1");  // said again (a gang's second host): no second entry
  ASSERT_EQ(t->secondary.back().status, "Downloading");
  EXPECT_EQ(t->secondary.back().message,
            "Downloading input data on worker w1: channel train; checkpoints from s3://b/ck");
  pulling();
  staging("w1");  // never back from the image to the data
  pulling();
  EXPECT_EQ(t->secondary.back().message, "Downloading the training image on worker w1: registry.local/xgb:1");
  Started("w1", a[0]);
  staging("w1");  // late ones
  pulling();
  std::vector<std::string> history;
  for (const auto& s : t->secondary) history.push_back(s.status);
  EXPECT_EQ(history, (std::vector<std::string>{"Starting", "Downloading", "DownloadingTrainingImage", "Training"}));
  MakeCore();  // kept in the store
  t = core_->FindTrial(a[0].trial);
  ASSERT_EQ(t->secondary.size(), 4u);
  EXPECT_EQ(t->secondary[1].status, "Downloading");
}

// Uploading was recorded only when the exit report came, after the uploads: a long upload was
// shown, and counted in the timeline, as Training. The worker says Uploading when its program
// has completed; only after Training, only from the training job's worker, and once.
TEST_F(CoreTest, AnAttemptUploadingItsModelSaysSoUntilItsExitReport) {
  Register("w1", 1);
  Register("rogue", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("up", "Random", 4, 1)));
  ASSERT_EQ(a.size(), 1u);
  auto uploading = [&](const std::string& wid, const proto::wire::AssignTrial& of) {
    proto::wire::TrialStaging m;
    m.trial = of.trial;
    m.attempt = of.attempt;
    m.worker_id = wid;
    m.status = "Uploading";
    m.what = "model and output to s3://b/out";
    return core_->OnMessage(wid, m, now_);
  };
  const std::string worker = core_->FindTrial(a[0].trial)->worker_id;
  EXPECT_TRUE(uploading(worker, a[0]).empty()) << "not acknowledged: informational";
  const Trial* t = core_->FindTrial(a[0].trial);
  EXPECT_EQ(t->secondary.back().status, "Starting") << "not before its program started";
  Started(worker, a[0]);
  now_ += 1000;
  uploading(worker == "w1" ? "rogue" : "w1", a[0]);
  EXPECT_EQ(t->secondary.back().status, "Training") << "another worker's word changes nothing";
  uploading(worker, a[0]);
  const int64_t began = now_;
  ASSERT_EQ(t->secondary.back().status, "Uploading");
  EXPECT_EQ(t->secondary.back().message, "Uploading generated training model on worker " + worker +
                                             ": model and output to s3://b/out");
  now_ += 5000;  // the upload takes its time
  uploading(worker, a[0]);
  Exit(worker, a[0], "Completed");
  t = core_->FindTrial(a[0].trial);
  std::vector<std::string> history;
  for (const auto& s : t->secondary) history.push_back(s.status);
  EXPECT_EQ(history, (std::vector<std::string>{"Starting", "Training", "Uploading", "Completed"}));
  EXPECT_EQ(t->secondary[2].start_ms, began) << "Uploading from when the worker said so, not from its report";
  // A stop asked for while it uploads: its program has completed, and so does the training job,
  // with Uploading said once (it was said again at the report, for no time).
  auto b = Only<proto::wire::AssignTrial>(Submit(Spec("up2", "Random", 1, 1)));
  ASSERT_EQ(b.size(), 1u);
  const std::string on = core_->FindTrial(b[0].trial)->worker_id;
  Started(on, b[0]);
  uploading(on, b[0]);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(b[0].trial, now_, &out).ok());
  Exit(on, b[0], "Completed");
  history.clear();
  for (const auto& s : core_->FindTrial(b[0].trial)->secondary) history.push_back(s.status);
  EXPECT_EQ(history, (std::vector<std::string>{"Starting", "Training", "Uploading", "Stopping", "Completed"}));
}

// Training job names are matched as tuning job names are, whatever their case: a job named
// API3-Big has training jobs API3-Big-001-..., whose ARN is lower-cased, and DescribeTrainingJob or
// StopTrainingJob with the name taken from the ARN answered ResourceNotFound (an API pass).
TEST_F(CoreTest, TrainingJobNamesAreMatchedWhateverTheirCase) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("Big-Job", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0].trial.rfind("Big-Job-001-", 0), 0u) << a[0].trial;
  const std::string lower = hpo::AsciiLower(a[0].trial);
  const Trial* t = core_->FindTrial(lower);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, a[0].trial);
  Log("w1", a[0], {"hello"});
  auto logs = core_->Logs(lower, 0, 10);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->size(), 1u);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(lower, now_, &out).ok());
  auto stops = Only<proto::wire::StopTrial>(out);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].trial, a[0].trial) << "the stored name goes to the worker";
  EXPECT_EQ(core_->FindTrial("big-job-001-00000000"), nullptr);
  EXPECT_EQ(core_->FindTrial("no-such-job-001-00000000"), nullptr);
}

// A stop lost in transit is sent again: a chaos pass lost one with a coordinator killed right
// after the stop was saved (and once with a worker paused for a second), and the training job ran
// to its end, Completed; a stopped tuning job stayed Stopping until then.
TEST_F(CoreTest, AStopLostInTransitIsSentAgainUntilTheWorkerEndsTheAttempt) {
  options_.lease_ms = 60000;  // no lease runs out here
  MakeCore();
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("lost", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  Started("w1", a[0]);
  Started("w1", a[1]);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(a[0].trial, now_, &out).ok());
  ASSERT_EQ(Only<proto::wire::StopTrial>(out).size(), 1u);  // ... which never arrives
  const std::vector<proto::wire::AttemptRef> both = {{a[0].trial, a[0].attempt}, {a[1].trial, a[1].attempt}};
  now_ += 1000;
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Heartbeat("w1", both)).empty()) << "not at every heartbeat";
  now_ += 5000;
  auto again = Only<proto::wire::StopTrial>(Heartbeat("w1", both));
  ASSERT_EQ(again.size(), 1u) << "the worker still runs it 6 s later: the stop again";
  EXPECT_EQ(again[0].trial, a[0].trial);
  EXPECT_EQ(again[0].reason, "stopped by request (StopTrainingJob)");
  EXPECT_NE(again[0].reason, proto::wire::kStopReasonRevoked) << "a stop, with its upload; not a revocation";

  // The tuning job stopped too, and the coordinator restarts before any stop leaves: the worker
  // registering again holding both gets both stops.
  out.clear();
  ASSERT_TRUE(core_->Stop("lost", now_, &out).ok());
  MakeCore();
  auto reg = Register("w1", 2, both);
  auto ack = Only<proto::wire::RegisterAck>(reg);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_TRUE(ack[0].stop.empty()) << "not revoked: they are this worker's, being stopped";
  auto stops = Only<proto::wire::StopTrial>(reg);
  ASSERT_EQ(stops.size(), 2u);
  std::set<std::string> stopped;
  for (const auto& m : stops) stopped.insert(m.trial);
  EXPECT_EQ(stopped, (std::set<std::string>{a[0].trial, a[1].trial}));
  for (const auto& x : a) Exit("w1", x, "Stopped");
  EXPECT_EQ(*core_->Describe("lost")->status.hyper_parameter_tuning_job_status, "Stopped");
}

// SageMaker's StopTrainingJob on one training job of a running tuning job: only that one gets
// StopTrial, it ends Stopped with its last objective counted and no retry, the job starts the
// next one and runs to its limit; an ended or unknown training job is refused, changing nothing.
TEST_F(CoreTest, StoppingOneTrainingJobStopsOnlyItAndTheJobGoesOn) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("one", "Random", 4, 2)));
  ASSERT_EQ(a.size(), 2u);
  Emit("w1", a[0], {0.9, 0.6});
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->StopTrainingJob(a[0].trial, now_, &out).ok());
  auto stops = Only<proto::wire::StopTrial>(out);
  ASSERT_EQ(stops.size(), 1u) << "only the training job asked for";
  EXPECT_EQ(stops[0].trial, a[0].trial);
  EXPECT_EQ(stops[0].reason, "stopped by request (StopTrainingJob)");
  EXPECT_EQ(*core_->Summary(*core_->FindTrial(a[0].trial)).training_job_status, "Stopping");
  std::vector<Outgoing> again;
  EXPECT_TRUE(core_->StopTrainingJob(a[0].trial, now_, &again).ok()) << "a second stop is accepted";
  EXPECT_TRUE(Only<proto::wire::StopTrial>(again).empty()) << "... and sends nothing more";

  auto next = Only<proto::wire::AssignTrial>(Exit("w1", a[0], "Stopped"));
  ASSERT_EQ(next.size(), 1u) << "the tuning job goes on with its next training job";
  const Trial* stopped = core_->FindTrial(a[0].trial);
  EXPECT_EQ(stopped->state, TrialState::kStopped);
  EXPECT_EQ(stopped->attempt, 1u) << "not retried";
  ASSERT_TRUE(stopped->objective);
  EXPECT_DOUBLE_EQ(*stopped->objective, 0.6) << "its last value counts";

  std::vector<proto::wire::AssignTrial> queue = next;
  for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", a[1], 0.8))) queue.push_back(m);
  while (!queue.empty()) {
    auto n = queue.front();
    queue.erase(queue.begin());
    for (auto& m : Only<proto::wire::AssignTrial>(Finish("w1", n, 0.7))) queue.push_back(m);
  }
  auto d = core_->Describe("one");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->stopped, 1);
  EXPECT_EQ(*d->status.training_job_status_counters->completed, 3);
  EXPECT_EQ(*d->status.best_training_job->training_job_name, a[0].trial) << "0.6 is the best objective";

  std::vector<Outgoing> none;
  Status ended = core_->StopTrainingJob(a[1].trial, now_, &none);
  EXPECT_EQ(ended.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(ended.message().find("has already ended: it is Completed"), std::string::npos) << ended.message();
  EXPECT_EQ(core_->StopTrainingJob("one-099-00000000", now_, &none).code(), StatusCode::kNotFound);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(core_->FindTrial(a[1].trial)->state, TrialState::kCompleted);
}

TEST_F(CoreTest, ReachingTheTargetObjectiveStopsTheRestAndCompletes) {
  Register("w1", 2);
  auto spec = Spec("target", "Random", 20, 2);
  spec.hyper_parameter_tuning_job_config->tuning_job_completion_criteria =
      proto::TuningJobCompletionCriteria{0.1, std::nullopt, std::nullopt};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  auto out = Finish("w1", a[0], 0.05);
  auto stops = Only<proto::wire::StopTrial>(out);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].trial, a[1].trial);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(out).empty());
  proto::wire::TrialExited x;
  x.trial = a[1].trial;
  x.attempt = 1;
  x.status = "Stopped";
  core_->OnMessage("w1", x, now_);
  EXPECT_EQ(*core_->Describe("target")->status.hyper_parameter_tuning_job_status, "Completed");
}

TEST_F(CoreTest, TwoJobsShareTheWorkersFairly) {
  Register("w1", 4);
  auto first = Only<proto::wire::AssignTrial>(Submit(Spec("first", "Random", 10, 10)));
  EXPECT_EQ(first.size(), 4u) << "alone, the first job takes every slot";
  auto second = Only<proto::wire::AssignTrial>(Submit(Spec("second", "Random", 10, 10)));
  EXPECT_TRUE(second.empty()) << "no slot is free";
  // As slots free up, they go to the job with fewer running trials.
  int to_second = 0;
  for (int i = 0; i < 2; ++i) {
    for (const auto& m : Only<proto::wire::AssignTrial>(Finish("w1", first[i], 1.0))) to_second += m.tuning_job == "second";
  }
  EXPECT_EQ(to_second, 2);
}

// More jobs than slots: a freed slot goes to the job served longest ago, so they take turns. It
// went back to the oldest job (its running count fell to 0, as the waiting ones'), and a job
// submitted third got nothing until the first two had completed.
TEST_F(CoreTest, WithMoreJobsThanSlotsTheJobsTakeTurns) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("turn-a", "Random", 6, 1)));
  now_ += 10;
  auto b = Only<proto::wire::AssignTrial>(Submit(Spec("turn-b", "Random", 6, 1)));
  now_ += 10;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Spec("turn-c", "Random", 6, 1))).empty());
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  std::vector<std::string> served;  // the job each freed slot went to
  std::deque<proto::wire::AssignTrial> running = {a[0], b[0]};  // in the order they started
  for (int i = 0; i < 6; ++i) {  // the one that started first ends first
    const auto next = Only<proto::wire::AssignTrial>(Finish("w1", running.front(), 1.0));
    running.pop_front();
    ASSERT_EQ(next.size(), 1u) << i;
    served.push_back(next[0].tuning_job);
    running.push_back(next[0]);
    now_ += 10;
  }
  EXPECT_EQ(served[0], "turn-c") << "the job that has had nothing goes first";
  std::map<std::string, int> count;
  for (const auto& s : served) ++count[s];
  EXPECT_EQ(count["turn-a"], 2);
  EXPECT_EQ(count["turn-b"], 2);
  EXPECT_EQ(count["turn-c"], 2);
}

TEST_F(CoreTest, InvalidAndDuplicateSubmissionsChangeNothing) {
  auto bad = Spec("bad");
  bad.hyper_parameter_tuning_job_config->strategy = "Sometimes";
  std::vector<Outgoing> out;
  auto r = core_->Submit(bad, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("spec.hyperParameterTuningJobConfig.strategy"), std::string::npos);
  EXPECT_TRUE(core_->Jobs().empty());
  EXPECT_TRUE(store_->LoadJobs()->empty());
  Submit(Spec("dup"));
  auto again = core_->Submit(Spec("DUP"), proto::Spelling::kCrd, now_, &out);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
  // The message names the stored job as it is spelled, its status, and what to do.
  EXPECT_NE(again.status().message().find("a tuning job named DUP already exists as dup (InProgress; names are not "
                                           "case sensitive): choose another name, or delete it first"),
            std::string::npos)
      << again.status().message();
}

// A job that asks for what hpo keeps but does not enforce runs, and its events say so (hpo
// events, the dashboard), one NotEnforced event per field.
TEST_F(CoreTest, AJobAskingForEncryptionRunsAndItsEventsSayItIsNotEnforced) {
  Register("w1", 1);
  auto spec = Spec("vpc", "Random", 2, 1);
  spec.training_job_definition->vpc_config = proto::VpcConfig{{"sg-0123456789abcdef0"}, {"subnet-0123456789abcdef0"}};
  spec.training_job_definition->enable_inter_container_traffic_encryption = true;
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Submit(spec)).size(), 1u);
  auto events = core_->Events("vpc", 0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> notes;
  for (const auto& e : *events) {
    if (e.kind == "NotEnforced") notes.push_back(e.message);
  }
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0].rfind("VpcConfig: not enforced here", 0), 0u) << notes[0];
  EXPECT_EQ(notes[1].rfind("EnableInterContainerTrafficEncryption: not enforced here", 0), 0u) << notes[1];
}

// A built-in Linear Learner job (no MetricDefinitions): each AssignTrial carries the algorithm's
// definitions, the objective's first; an objective Type against the metric's documented
// direction runs as written and its events say so.
TEST_F(CoreTest, ABuiltInAlgorithmsTrialsGetItsMetricDefinitionsAndAContraryTypeIsAnEvent) {
  Register("w1", 1);
  auto spec = Spec("ll", "Random", 2, 1);
  auto& alg = *spec.training_job_definition->algorithm_specification;
  alg.training_image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1";
  alg.metric_definitions.clear();
  spec.hyper_parameter_tuning_job_config->hyper_parameter_tuning_job_objective =
      proto::Objective{"Maximize", "validation:objective_loss"};
  auto assigned = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigned.size(), 1u);
  const auto& defs = assigned[0].metric_definitions;
  ASSERT_EQ(defs.size(), 28u) << "14 metrics on each of validation and test";
  EXPECT_EQ(defs[0].name, "validation:objective_loss");
  EXPECT_EQ(defs[0].regex, "#quality_metric: host=\\S+, epoch=\\S+, validation \\S+_objective <loss>=(\\S+)");
  auto events = core_->Events("ll", 0, 100);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> notes;
  for (const auto& e : *events) {
    if (e.kind == "BuiltInAlgorithm") notes.push_back(e.message);
  }
  ASSERT_FALSE(notes.empty());
  EXPECT_EQ(notes[0].rfind("HyperParameterTuningJobObjective.Type: Maximize, but SageMaker's built-in Linear Learner "
                           "documents validation:objective_loss as lower is better",
                           0),
            0u)
      << notes[0];
  for (size_t i = 1; i < notes.size(); ++i) {  // the test spec's ranges are no Linear Learner hyperparameters
    EXPECT_NE(notes[i].find("is not among the hyperparameters SageMaker's built-in Linear Learner documents as "
                            "tunable"),
              std::string::npos)
        << notes[i];
  }
}

// AddTags/DeleteTags replace a job's tags: stored with its spec, kept across a restart, without
// touching LastModifiedTime; an unknown job is NotFound.
TEST_F(CoreTest, TagsSetOnAJobAreStoredAndSurviveARestart) {
  Submit(Spec("tagged"));
  const int64_t modified = core_->FindJob("tagged")->last_modified_ms;
  now_ += 5000;
  proto::Tag t;
  t.key = "team";
  t.value = "ml";
  ASSERT_TRUE(core_->SetTags("tagged", {t}).ok());
  EXPECT_EQ(core_->SetTags("missing", {t}).code(), StatusCode::kNotFound);
  MakeCore();
  const TuningJob* j = core_->FindJob("tagged");
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->spec.tags, std::vector<proto::Tag>{t});
  EXPECT_EQ(j->last_modified_ms, modified);
}

// Each training job gets a copy of its tuning job's tags when it is made (SageMaker tags every
// training job so): the tuning job's later changes reach only the training jobs made after
// them, a training job's own change only it, and both survive a restart.
TEST_F(CoreTest, TrainingJobsKeepTheTagsTheirTuningJobHadWhenTheyWereMade) {
  using Tags = std::vector<proto::Tag>;
  const Tags ml = {proto::Tag{"team", "ml"}}, research = {proto::Tag{"team", "research"}};
  const Tags best = {proto::Tag{"best", "yes"}};
  Register("w1", 1);
  auto spec = Spec("copied", "Random", 3, 1);
  spec.tags = ml;
  auto first = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(core_->SetTags("copied", research).ok());
  auto second = Only<proto::wire::AssignTrial>(Exit("w1", first[0], "Completed"));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(core_->FindTrial(first[0].trial)->tags, ml);
  EXPECT_EQ(core_->FindTrial(second[0].trial)->tags, research);
  ASSERT_TRUE(core_->SetTrainingJobTags(first[0].trial, best).ok());
  EXPECT_EQ(core_->SetTrainingJobTags("copied-999-nope", {}).code(), StatusCode::kNotFound);
  MakeCore();
  EXPECT_EQ(core_->FindTrial(first[0].trial)->tags, best);
  EXPECT_EQ(core_->FindTrial(second[0].trial)->tags, research);
  EXPECT_EQ(core_->FindJob("copied")->spec.tags, research);
}

TEST_F(CoreTest, ARestartedCoreReloadsJobsAndReattachesRunningTrials) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("durable", "Random", 4, 2)));
  Finish("w1", a[0], 0.3);
  MakeCore();  // the coordinator restarts on the same store
  const Trial* t0 = core_->FindTrial(a[0].trial);
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->state, TrialState::kCompleted);
  EXPECT_DOUBLE_EQ(*t0->objective, 0.3);
  // The worker re-registers with the attempts it still runs; they are re-attached, not restarted.
  std::vector<proto::wire::AttemptRef> running;
  for (const auto* t : core_->TrialsOf("durable")) {
    if (t->Active()) running.push_back({t->name, t->attempt});
  }
  ASSERT_FALSE(running.empty());
  auto out = Register("w1", 2, running);
  auto ack = Only<proto::wire::RegisterAck>(out);
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_TRUE(ack[0].stop.empty());
  for (const auto& re : Only<proto::wire::AssignTrial>(out)) {
    for (const auto& r : running) EXPECT_NE(re.trial, r.trial) << "a running trial was restarted";
  }
}

// A late report about a training job of a tuning job deleted here is this coordinator's to
// drop: acknowledged, so the worker does not keep sending it.
TEST_F(CoreTest, ALateReportOfADeletedTuningJobIsAcknowledged) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("gone", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Finish("w1", a[0], 0.5);
  ASSERT_EQ(*core_->Describe("gone")->status.hyper_parameter_tuning_job_status, "Completed");
  ASSERT_TRUE(core_->Delete("gone", now_).ok());
  proto::wire::TrialExited x;
  x.trial = a[0].trial;
  x.attempt = a[0].attempt;
  x.status = "Completed";
  x.seq = 99;
  EXPECT_EQ(Only<proto::wire::Ack>(core_->OnMessage("w1", x, now_)).size(), 1u);
}

// A coordinator started on an empty or other state directory (a typo'd path, a restored backup)
// that the workers reach: what they run of tuning jobs it has never heard of is another
// coordinator's, not its own lost attempts. It is left to finish (an operator pass saw such a
// coordinator stop every training job of the cluster within seconds) and holds its slots. Its
// reports are not acknowledged: the worker keeps them for the right coordinator (acknowledged,
// they were forgotten, and that coordinator, back, never finished the training job). An attempt of a job this coordinator does know is still
// stopped.
TEST_F(CoreTest, AttemptsOfTuningJobsThisCoordinatorNeverHeardOfAreLeftToFinish) {
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("mine", "Random", 4, 2)));
  EXPECT_TRUE(a.empty()) << "no worker yet";
  const std::vector<proto::wire::AttemptRef> running = {{"elsewhere-001-0123abcd", 1}, {"mine-009-ffffffff", 1}};
  auto out = Register("w1", 2, running);
  auto ack = Only<proto::wire::RegisterAck>(out);
  ASSERT_EQ(ack.size(), 1u);
  ASSERT_EQ(ack[0].stop.size(), 1u) << "only the unknown attempt of a job it knows is stopped";
  EXPECT_EQ(ack[0].stop[0].trial, "mine-009-ffffffff");
  auto placed = Only<proto::wire::AssignTrial>(out);
  EXPECT_EQ(placed.size(), 1u) << "the foreign attempt holds one of the two slots";
  bool said = false;
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) said = said || e.kind == "ForeignTrainingJobs";
  EXPECT_TRUE(said) << "the event says what runs there and what to do";
  EXPECT_TRUE(Only<proto::wire::StopTrial>(Heartbeat("w1", {running[0], {placed[0].trial, placed[0].attempt}})).empty())
      << "a heartbeat does not stop it either";
  proto::wire::TrialStarted started;
  started.trial = running[0].trial;
  started.attempt = 1;
  started.started_at_ms = now_;
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage("w1", started, now_)).empty())
      << "its start is kept for its coordinator (acknowledged, that coordinator never learnt when it started)";
  proto::wire::TrialExited x;
  x.trial = running[0].trial;
  x.attempt = 1;
  x.status = "Completed";
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage("w1", x, now_)).empty()) << "its exit is kept for its coordinator";
  proto::wire::MetricPoints m;
  m.trial = running[0].trial;
  m.attempt = 1;
  m.seq = 1;
  m.points.push_back({"loss", 0.5, now_, 0});
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage("w1", m, now_)).empty()) << "so are its metrics";
  proto::wire::LogLines l;
  l.trial = running[0].trial;
  l.attempt = 1;
  l.seq = 1;
  l.first_line = 1;
  l.lines = {"epoch 1"};
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage("w1", l, now_)).empty()) << "and its log lines";
  EXPECT_EQ(core_->FindTrial(running[0].trial), nullptr);
  // Its worker holds it no more (its program ended, and it gave up on this coordinator): the
  // slot is free again.
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Heartbeat("w1", {{placed[0].trial, placed[0].attempt}})).size(), 1u);
}

// An interruption heard late (the coordinator was down when the worker reported it) is dated by
// the worker's measure of the attempt, as TrainingEndTime is: the transitions said the program
// trained the whole outage (8 s that never happened, in a user pass).
TEST_F(CoreTest, AnInterruptionHeardLateIsDatedWhenTheAttemptEnded) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("late", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  proto::wire::TrialStarted s = StartedMessage("w1", a[0]);
  s.started_at_ms = now_;
  core_->OnMessage("w1", s, now_);
  const int64_t started = now_;
  now_ += 30'000;  // heard 30 s later; the worker measured 5 s
  proto::wire::TrialExited x = ExitedMessage(a[0], "Interrupted", 0);
  x.secondary_status = "Interrupted";
  x.failure_reason = "Interrupted: SIGUSR1 (spot interruption notice)";
  x.ended_at_ms = started + 5000;
  core_->OnMessage("w1", x, now_);
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  auto it = std::find_if(t->secondary.begin(), t->secondary.end(),
                         [](const SecondaryTransition& s) { return s.status == "Interrupted"; });
  ASSERT_NE(it, t->secondary.end());
  EXPECT_LE(it->start_ms, started + 5000 + 10) << "dated when it ended, not when heard";
}

// A start heard a few milliseconds after it happened (every message takes some): the training
// job's TrainingStartTime stays when its Training transition says, as its Training event said.
// Moved back at the exit by those milliseconds, its last event carried another TrainingStartTime.
TEST_F(CoreTest, TrainingStartTimeDoesNotMoveAtTheExitByAMessagesDelay) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("steady", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  proto::wire::TrialStarted s = StartedMessage("w1", a[0]);
  s.started_at_ms = now_ - 47;  // the worker's clock agrees; the message took 47 ms
  core_->OnMessage("w1", s, now_);
  const int64_t heard = now_;
  ASSERT_EQ(core_->FindTrial(a[0].trial)->start_ms, heard);
  now_ += 5'000;
  proto::wire::TrialExited x = ExitedMessage(a[0], "Completed", 0);
  x.ended_at_ms = now_ - 40;
  core_->OnMessage("w1", x, now_);
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->start_ms, heard) << "moved by " << heard - t->start_ms << " ms";
  auto training = std::find_if(t->secondary.begin(), t->secondary.end(),
                               [](const SecondaryTransition& st) { return st.status == "Training"; });
  ASSERT_NE(training, t->secondary.end());
  EXPECT_EQ(training->start_ms, t->start_ms);
}

// A foreign attempt whose program has ended (its worker keeps only the exit report, for its own
// coordinator) holds no slot: counted, a worker that outlived its coordinator's state ran nothing
// new on those slots until that coordinator came back. One still running holds its slot until
// its worker says it ended.
TEST_F(CoreTest, AForeignAttemptThatEndedHoldsNoSlot) {
  Submit(Spec("mine", "Random", 6, 2));
  proto::wire::AttemptRef ended{"elsewhere-001-0123abcd", 1, /*ended=*/true};
  proto::wire::AttemptRef running{"elsewhere-002-0123abcd", 1};
  auto out = Register("w1", 2, {ended, running});
  ASSERT_EQ(Only<proto::wire::RegisterAck>(out).size(), 1u);
  EXPECT_TRUE(Only<proto::wire::RegisterAck>(out)[0].stop.empty()) << "neither is stopped";
  auto placed = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(placed.size(), 1u) << "the ended one left its slot free; the running one holds the other";
  bool said = false;
  for (const auto& e : *core_->Events("", 0, 100)) {
    said = said || (e.kind == "ForeignTrainingJobs" && e.message.find("1 more ended there") != std::string::npos);
  }
  EXPECT_TRUE(said) << "the event counts the ended one apart";
  // The running one ends there (its report still kept for its coordinator): its slot is free too.
  running.ended = true;
  auto next = Only<proto::wire::AssignTrial>(Heartbeat("w1", {ended, running, {placed[0].trial, placed[0].attempt}}));
  EXPECT_EQ(next.size(), 1u) << "the slot it held goes to this coordinator's own work";
}

// A restarted worker process that holds one running attempt and one that ended while it was away
// (its report follows) is registered with them said apart: re-attached=2 counted the ended one as
// running (a scale pass).
TEST_F(CoreTest, ARegisteredWorkersEventSaysApartTheAttemptsThatEndedWhileItWasAway) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("away", "Random", 4, 2)));
  ASSERT_EQ(a.size(), 2u);
  Started("w1", a[0]);
  Started("w1", a[1]);
  proto::wire::AttemptRef ended{a[0].trial, a[0].attempt, /*ended=*/true};
  proto::wire::AttemptRef running{a[1].trial, a[1].attempt};
  ++session_;  // the worker's new process
  Register("w1", 2, {ended, running});
  std::string said;
  for (const auto& e : *core_->Events("", 0, 100)) {
    if (e.kind == "WorkerRegistered") said = e.message;
  }
  EXPECT_NE(said.find("re-attached=1 ended-while-away=1 stopped=0"), std::string::npos) << said;
}

// Stopping (or deleting) a training job's name as a tuning job says whose training job it is and
// what takes it: `hpo stop NAME-004-...` said only "no tuning job named".
TEST_F(CoreTest, AStopOfATrainingJobsNameAsATuningJobSaysWhatItIs) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("owner", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  std::vector<Outgoing> out;
  const Status s = core_->Stop(a[0].trial, now_, &out);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find(a[0].trial + " is a training job of the tuning job owner"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("hpo stop --training-job " + a[0].trial), std::string::npos) << s.message();
  // `hpo stop` describes the tuning job first: the describe says so too (a spot pass got only
  // "no tuning job named").
  const auto d = core_->Describe(a[0].trial);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find(a[0].trial + " is a training job of the tuning job owner"), std::string::npos)
      << d.status().message();
}

// A training job stopped (early stopping, StopTrainingJob) ends with a Stopped transition whose
// message is the reason, not "Stopped: " and the reason again (describe -o table read "Stopped
// Stopped: early stopping ...").
TEST_F(CoreTest, AStoppedTransitionsMessageDoesNotSayStoppedTwice) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("stopmsg", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  EndWith("w1", a[0].trial, a[0].attempt, "Stopped", "Stopped: early stopping (median rule): objective 1.75");
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  ASSERT_FALSE(t->secondary.empty());
  EXPECT_EQ(t->secondary.back().status, "Stopped");
  EXPECT_EQ(t->secondary.back().message, "early stopping (median rule): objective 1.75");
}

// A coordinator that stalls right after a restart (a busy disk, a paused VM) does not count its
// stall against the workers that have yet to register again: a soak found a live worker's
// attempt declared lost ("did not come back") after an 8.7 s stall, and run a second time.
TEST_F(CoreTest, AStallRightAfterARestartDoesNotCountAgainstWorkersNotYetBack) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("restarted", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  MakeCore();  // the coordinator restarts on the same store
  core_->OnTick(now_);  // its first tick: the workers have a lease from here to come back
  const int64_t stall = 3 * options_.lease_ms;
  now_ += stall;
  core_->CreditStall(stall, now_);  // the dispatcher read nothing for that long
  core_->OnTick(now_);
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(t->Active()) << "lost during the coordinator's own stall: " << t->failure_reason;
  auto back = Register("w1", 1, {{a[0].trial, a[0].attempt}});
  EXPECT_TRUE(Only<proto::wire::RegisterAck>(back)[0].stop.empty()) << "re-attached, not stopped";
  now_ += options_.lease_ms / 2;
  Heartbeat("w1", {{a[0].trial, a[0].attempt}});
  now_ += options_.lease_ms;
  core_->OnTick(now_);
  EXPECT_TRUE(core_->FindTrial(a[0].trial)->Active()) << "it runs on, on the worker it ran on";
}

// A retry fenced for its lost worker's guard is one of the job's MaxParallelTrainingJobs: a new
// training job took its place in the free worker meanwhile, and the two ran at once.
TEST_F(CoreTest, AFencedRetryHoldsItsPlaceUnderMaxParallelTrainingJobs) {
  Register("w1", 1);
  Register("w2", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("fence-par", "Random", 3, 1)));
  ASSERT_EQ(a.size(), 1u);
  const std::string on = core_->FindTrial(a[0].trial)->worker_id, other = on == "w1" ? "w2" : "w1";
  Started(on, a[0]);
  std::vector<Outgoing> out;
  bool fenced = false;
  for (int i = 0; i < 80 && Only<proto::wire::AssignTrial>(out).empty(); ++i) {
    now_ += 250;  // the other worker beats; the first goes silent past its lease
    for (auto& o : core_->OnMessage(other, proto::wire::Heartbeat{other, static_cast<uint64_t>(i + 1), 1, {}}, now_)) {
      out.push_back(std::move(o));
    }
    for (auto& o : core_->OnTick(now_)) out.push_back(std::move(o));
    const Trial* t = core_->FindTrial(a[0].trial);
    fenced = fenced || (t->state == TrialState::kPending && t->fenced_until_ms > now_);
  }
  EXPECT_TRUE(fenced) << "the retry was never fenced";
  auto placed = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(placed.size(), 1u) << core_->FindJob("fence-par")->waiting_reason;
  EXPECT_GE(now_, core_->FindTrial(a[0].trial)->fenced_until_ms) << "placed within the fence";
  EXPECT_EQ(placed[0].trial, a[0].trial) << "the retry first";
  EXPECT_EQ(placed[0].attempt, 2u);
}

// A lost worker's training job waits for that worker's guard to end the program (the fence).
// The fence is stored: a coordinator restarted within the wait placed the re-run at once, beside
// the program the stopped worker may still run. And a worker that does not come back after a
// restart may have stalled as late as the restart: its attempt is fenced from then.
TEST_F(CoreTest, ALostWorkersFenceHoldsAcrossACoordinatorRestart) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("fenced", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  const int64_t last_word = now_;
  now_ += options_.lease_ms + 200;  // w1 silent past its lease: lost, its attempt fenced
  core_->OnTick(now_);
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_EQ(t->state, TrialState::kPending);
  const int64_t until =
      last_word + proto::wire::StallKillAfterMs(options_.lease_ms) + options_.heartbeat_interval_ms + 2000;
  EXPECT_EQ(t->fenced_until_ms, until);
  MakeCore();  // the coordinator restarts within the wait
  Register("w2", 1);
  auto early = Only<proto::wire::AssignTrial>(core_->OnTick(now_));
  EXPECT_TRUE(early.empty()) << "placed at once after the restart, within the fence";
  EXPECT_EQ(core_->FindTrial(a[0].trial)->fenced_until_ms, until);
  std::vector<Outgoing> out;
  for (int i = 0; i < 40 && Only<proto::wire::AssignTrial>(out).empty(); ++i) {
    now_ += 250;
    out = core_->OnMessage("w2", proto::wire::Heartbeat{"w2", static_cast<uint64_t>(i + 1), 1, {}}, now_);
    for (auto& o : core_->OnTick(now_)) out.push_back(std::move(o));
  }
  ASSERT_EQ(Only<proto::wire::AssignTrial>(out).size(), 1u);
  EXPECT_GE(now_, until);
  EXPECT_EQ(Only<proto::wire::AssignTrial>(out)[0].attempt, 2u);
}

TEST_F(CoreTest, AnAttemptWhoseWorkerDidNotComeBackAfterARestartIsFencedFromTheRestart) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("notback", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  MakeCore();  // the coordinator restarts; w1 never registers again
  const int64_t loaded = now_;
  core_->OnTick(now_);
  Register("w2", 1);
  std::vector<Outgoing> out;
  int64_t lost_at = 0;
  for (int i = 0; i < 80 && Only<proto::wire::AssignTrial>(out).empty(); ++i) {
    now_ += 250;
    out = core_->OnMessage("w2", proto::wire::Heartbeat{"w2", static_cast<uint64_t>(i + 1), 1, {}}, now_);
    for (auto& o : core_->OnTick(now_)) out.push_back(std::move(o));
    if (!lost_at && core_->FindTrial(a[0].trial)->state == TrialState::kPending) lost_at = now_;
  }
  ASSERT_GT(lost_at, 0) << "the attempt of the worker that did not come back was never lost";
  // Listed as lost (hpo workers), as one that missed its lease is (it was not listed at all).
  ASSERT_EQ(core_->Departed().count("w1"), 1u);
  EXPECT_FALSE(core_->Departed().at("w1").left);
  EXPECT_NE(core_->Departed().at("w1").why.find("did not come back after the coordinator restarted"),
            std::string::npos);
  auto re = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(re.size(), 1u);
  EXPECT_GE(now_, loaded + proto::wire::StallKillAfterMs(options_.lease_ms))
      << "re-run before w1's guard, stalled at the restart, could have ended the program";
  EXPECT_GT(now_, lost_at) << "placed as soon as it was lost";
}

// A damaged row (a field of the wrong type in a trial's detail, a job spec that does not parse)
// must not stop a coordinator from starting: before core_rows, nlohmann's value() threw there.
TEST_F(CoreTest, ARestartedCoreStartsDespiteDamagedRows) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("durable", "Random", 4, 2)));
  Finish("w1", a[0], 0.3);
  auto trials = store_->LoadTrials();
  ASSERT_TRUE(trials.ok());
  for (TrialRow r : *trials) {
    if (r.name != a[0].trial) continue;
    r.detail_json = R"({"tuned": 5, "final_metrics": "x", "objective": 0.3, "gang": [{"gpus": "x"}]})";
    ASSERT_TRUE(store_->PutTrial(r).ok());
  }
  JobRow broken;
  broken.name = "broken";
  broken.spec_json = "{\"HyperParameterTuningJobName\": 7}";
  broken.status = "InProgress";
  ASSERT_TRUE(store_->PutJob(broken).ok());
  ASSERT_NO_THROW(MakeCore());
  const Trial* t0 = core_->FindTrial(a[0].trial);
  ASSERT_NE(t0, nullptr);
  EXPECT_EQ(t0->state, TrialState::kCompleted);
  EXPECT_DOUBLE_EQ(*t0->objective, 0.3);
  EXPECT_TRUE(t0->tuned.empty());
  EXPECT_NE(core_->FindJob("durable"), nullptr);
  EXPECT_EQ(core_->FindJob("broken"), nullptr);
}

// A training job in progress whose stored detail is damaged lost its metric sequence (0 again),
// so its worker's exit report was refused for good and its tuning job waited for it forever,
// silently. It ends Failed at the restart, saying why, and the tuning job goes on.
TEST_F(CoreTest, ARunningTrainingJobWhoseRowIsDamagedEndsFailedAndItsJobGoesOn) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dmg", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  DamageRow(a[0].trial, [](TrialRow& r) { r.detail_json = "{"; });
  MakeCore();
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state, TrialState::kFailed);
  EXPECT_NE(t->failure_reason.find("stored record of this training job was damaged"), std::string::npos)
      << t->failure_reason;
  const auto notes = core_->LoadNotes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find(a[0].trial), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("ends Failed"), std::string::npos) << notes[0];
  // The worker's report of the old attempt changes nothing; the next training job runs.
  auto out = Register("w1", 1);
  Finish("w1", a[0], 0.5);
  auto next = Only<proto::wire::AssignTrial>(out);
  if (next.empty()) next = Only<proto::wire::AssignTrial>(core_->OnTick(now_ += 1000));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_NE(next[0].trial, a[0].trial);
  Started("w1", next[0]);
  Finish("w1", next[0], 0.25);
  auto d = core_->Describe("dmg");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kFailed);
  // After another restart the row reads well: nothing more to say.
  MakeCore();
  EXPECT_TRUE(core_->LoadNotes().empty());
}

// A state that is none of hpo's loads as Failed; one that had not ended (no end time) ends now,
// with its reason and event, as a damaged detail does.
TEST_F(CoreTest, ARunningTrainingJobWhoseStateIsDamagedEndsWithAReason) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dmgstate", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  DamageRow(a[0].trial, [](TrialRow& r) { r.state = "Bogus"; });
  MakeCore();
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->state, TrialState::kFailed);
  EXPECT_GT(t->end_ms, 0);
  EXPECT_NE(t->failure_reason.find("its state \"Bogus\" is none of hpo's"), std::string::npos) << t->failure_reason;
  ASSERT_EQ(core_->LoadNotes().size(), 1u);
  EXPECT_NE(core_->LoadNotes()[0].find("ends Failed"), std::string::npos) << core_->LoadNotes()[0];
}

TEST_F(CoreTest, AnAssignmentLostWithTheCoordinatorIsResentWithoutSpendingARetry) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("resend", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  MakeCore();  // the coordinator dies before the worker got the assignment
  auto out = Register("w1", 1);  // the worker comes back holding nothing
  auto re = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(re.size(), 1u) << "the lost assignment is sent again";
  EXPECT_EQ(re[0].trial, a[0].trial);
  EXPECT_EQ(re[0].hyperparameters, a[0].hyperparameters);
  EXPECT_EQ(core_->FindTrial(a[0].trial)->infra_failures, 0);
  Finish("w1", re[0], 0.2);
  auto d = core_->Describe("resend");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->retryable_error, 0);
}

TEST_F(CoreTest, ARepeatedRegistrationDoesNotTakeAwayAttemptsAssignedSinceTheFirst) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("repeat", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  // A copy of the first Register, queued before the assignments, arrives late: the unstarted
  // attempts it does not list are sent again, the same attempts (the worker ignores copies).
  auto out = Register("w1", 2);
  EXPECT_EQ(Only<proto::wire::RegisterAck>(out).size(), 1u);
  auto again = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(again.size(), 2u);
  for (const auto& x : again) EXPECT_EQ(x.attempt, 1u) << x.trial;
  for (const auto& x : a) {
    EXPECT_EQ(core_->FindTrial(x.trial)->state, TrialState::kInProgress) << x.trial;
    EXPECT_EQ(core_->FindTrial(x.trial)->attempt, 1u) << x.trial;
  }
  // Another copy, built a moment later: the free disk space changed meanwhile. The same process
  // (session) all the same: a chaos pass saw such a copy re-queue a started attempt, which then
  // ran twice at once on the worker.
  Started("w1", a[0]);
  proto::wire::Register copy = Registration("w1", 2);
  copy.disk_mb = 12345;
  out = core_->OnMessage("w1", copy, now_);
  EXPECT_EQ(Only<proto::wire::RegisterAck>(out).size(), 1u);
  again = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(again.size(), 1u) << "the started one is not sent again";
  EXPECT_EQ(again[0].trial, a[1].trial);
  for (const auto& x : a) {
    EXPECT_EQ(core_->FindTrial(x.trial)->attempt, 1u) << x.trial << " was not re-queued";
    EXPECT_TRUE(core_->FindTrial(x.trial)->Active()) << x.trial;
  }
}

// A worker that heard nothing for a lease (its coordinator paused 2.7 s, leases 3 s) reconnects
// under the same process: an AssignTrial the coordinator sent as it came back went to the
// connection the worker had just closed. Its Register on the new connection does not list it:
// the assignment is sent again at once, the same attempt, instead of its slot idling until a
// heartbeat a lease later re-queued it.
TEST_F(CoreTest, AnAssignmentLostWithAWorkersOldConnectionIsSentAgainWhenItRegistersAgain) {
  Register("w1", 1);
  const auto a = Only<proto::wire::AssignTrial>(Submit(Spec("reconnect", "Random", 2, 1))).at(0);
  now_ += 50;
  auto out = Register("w1", 1);  // the same session, holding nothing
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(std::holds_alternative<proto::wire::RegisterAck>(out[0].message)) << "the ack first";
  auto re = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(re.size(), 1u) << "sent again now, not a lease later";
  EXPECT_EQ(re[0].trial, a.trial);
  EXPECT_EQ(re[0].attempt, a.attempt) << "the same attempt: nothing was re-queued";
  EXPECT_EQ(re[0].spec_json, a.spec_json);
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 1u);
  // Its time in transit counts from the copy: a heartbeat sent a lease after the first one but
  // before the copy arrived does not re-queue it.
  now_ += 990;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Heartbeat("w1", {})).empty());
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 1u);
  // Received and started: nothing is sent again, even by a Register that misses it.
  Heartbeat("w1", {{a.trial, 1}});
  Started("w1", a);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Register("w1", 1, {{a.trial, 1}})).empty());
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Register("w1", 1)).empty());
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 1u);
  EXPECT_EQ(core_->FindTrial(a.trial)->infra_failures, 0);
  EXPECT_EQ(core_->FindTrial(a.trial)->unstarted_assign, nullptr);
  // One that ends without starting (its staging failed) keeps no copy either: every such
  // attempt's AssignTrial, spec and all, stayed in memory.
  const auto b = Only<proto::wire::AssignTrial>(Exit("w1", a, "Completed")).at(0);
  ASSERT_NE(core_->FindTrial(b.trial)->unstarted_assign, nullptr);
  Exit("w1", b, "Failed");
  EXPECT_EQ(core_->FindTrial(b.trial)->unstarted_assign, nullptr);
}

// A job waiting while one worker is cordoned and the open one lacks disk for its VolumeSizeInGB:
// the reason names both (it named only the cordoned one, and the idle open one looked free).
TEST_F(CoreTest, AWaitingReasonNamesAnOpenWorkerPassedOverForWantOfDisk) {
  proto::wire::Register big = Registration("w1", 1);
  big.disk_mb = 100 * 1024;
  core_->OnMessage("w1", big, now_);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Cordon("w1", "maintenance", now_, &out).ok());
  proto::wire::Register small = Registration("w2", 1);
  small.disk_mb = 39;
  core_->OnMessage("w2", small, now_);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Spec("disk2"))).empty());
  const std::string why = core_->FindJob("disk2")->waiting_reason;
  EXPECT_NE(why.find("worker w1 is cordoned"), std::string::npos) << why;
  EXPECT_NE(why.find("worker w2 has 39 MiB free for trials, the training job asks VolumeSizeInGB 10"), std::string::npos)
      << why;
}

// A spot pass: after an interruption the reason named the cordoned and resting workers but not
// the draining one, which was why the training job waited.
TEST_F(CoreTest, AWaitingReasonNamesADrainingWorker) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("drain1", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 1u);
  proto::wire::InterruptionNotice n;
  n.worker_id = "w1";
  n.reason = "spot instance-action: terminate";
  core_->OnMessage("w1", n, now_);
  core_->OnTick(now_);
  const std::string why = core_->FindJob("drain1")->waiting_reason;
  EXPECT_NE(why.find("worker w1 is draining (") , std::string::npos) << why;
}

// A security pass: a worker without S3 credentials (it said so in its log at the start) was given
// each training job with s3:// output while another worker was free; each failed there as an
// infrastructure error, and after three the worker was put to rest, its other work blocked. It
// says so in its registration now: s3:// training jobs go to the other, local ones still come.
TEST_F(CoreTest, ATrainingJobThatUsesS3GoesToAWorkerWithS3Credentials) {
  proto::wire::Register bare = Registration("bare", 1);
  bare.no_s3 = true;
  core_->OnMessage("bare", bare, now_);
  proto::TuningJobSpec s3 = Spec("s3out", "Random", 1, 1);
  s3.training_job_definition->output_data_config->s3_output_path = "s3://bucket/out";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(s3)).empty());
  const std::string why = core_->FindJob("s3out")->waiting_reason;
  EXPECT_NE(why.find("worker bare has no S3 credentials"), std::string::npos) << why;
  EXPECT_NE(why.find("(give a worker S3 credentials and start it again, or use file:// paths)"), std::string::npos)
      << why << " (not --instance-type advice)";
  const auto a = Only<proto::wire::AssignTrial>(Register("keyed", 1));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(core_->FindTrial(a[0].trial)->worker_id, "keyed");
  // The one with credentials busy: the reason names the idle one without (it read "waiting for a
  // free worker" while that one stood idle, a regression pass).
  proto::TuningJobSpec more = Spec("s3more", "Random", 1, 1);
  more.training_job_definition->output_data_config->s3_output_path = "s3://bucket/out";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(more)).empty());
  const std::string busy = core_->FindJob("s3more")->waiting_reason;
  EXPECT_NE(busy.find("waiting for a free worker"), std::string::npos) << busy;
  EXPECT_NE(busy.find("worker bare has no S3 credentials"), std::string::npos) << busy;
  const auto local = Only<proto::wire::AssignTrial>(Submit(Spec("local", "Random", 1, 1)));
  ASSERT_EQ(local.size(), 1u);
  EXPECT_EQ(core_->FindTrial(local[0].trial)->worker_id, "bare");
}

// A worker's disk that fills after it registered: placement follows each heartbeat's free space
// (protocol 7), so a training job asking more VolumeSizeInGB than is left waits, naming why,
// instead of failing there for want of space; freed again, the disk takes it.
TEST_F(CoreTest, PlacementFollowsTheFreeDiskEachHeartbeatReports) {
  proto::wire::Register r = Registration("w1", 2);
  r.disk_mb = 100 * 1024;
  core_->OnMessage("w1", r, now_);
  proto::wire::Heartbeat h;
  h.worker_id = "w1";
  h.seq = 1;
  h.disk_mb = 5 * 1024;  // the spec's VolumeSizeInGB is 10
  core_->OnMessage("w1", h, now_);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Spec("disk"))).empty());
  const std::string why = core_->FindJob("disk")->waiting_reason;
  EXPECT_NE(why.find("worker w1 has 5 GiB free for trials, the training job asks VolumeSizeInGB 10"), std::string::npos)
      << why;
  h.seq = 2;
  h.disk_mb = 0;  // could not tell: the last figure stands
  core_->OnMessage("w1", h, now_);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnTick(now_ += 100)).empty());
  h.seq = 3;
  h.disk_mb = 50 * 1024;
  auto placed = Only<proto::wire::AssignTrial>(core_->OnMessage("w1", h, now_));
  for (auto& a : Only<proto::wire::AssignTrial>(core_->OnTick(now_ += 100))) placed.push_back(a);
  EXPECT_EQ(placed.size(), 2u);
}

TEST_F(CoreTest, AnAttemptThatEndedWhileTheCoordinatorWasDownIsReattachedThenReported) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("ended", "Random", 1, 1)));
  proto::wire::TrialStarted st;
  st.trial = a[0].trial;
  st.attempt = a[0].attempt;
  st.worker_id = "w1";
  core_->OnMessage("w1", st, now_);
  MakeCore();
  // The worker still answers for the attempt (its exit report is not acknowledged yet).
  auto out = Register("w1", 1, {{a[0].trial, a[0].attempt}});
  EXPECT_TRUE(Only<proto::wire::RegisterAck>(out)[0].stop.empty());
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(out).empty());
  Finish("w1", a[0], 0.1);
  auto d = core_->Describe("ended");
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(*d->status.training_job_status_counters->retryable_error, 0);
  EXPECT_EQ(core_->FindTrial(a[0].trial)->attempt, 1u);
}

TEST_F(CoreTest, AWorkerThatRestartedUnderTheSameIdLosesTheAttemptsItNoLongerHolds) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("restarted", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  proto::wire::TrialStarted st;
  st.trial = a[0].trial;
  st.attempt = a[0].attempt;
  st.worker_id = "w1";
  core_->OnMessage("w1", st, now_);
  ++session_;  // the worker process was killed and started again: same id, nothing running
  auto out = Register("w1", 2);
  auto re = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(re.size(), 2u) << "both trials are placed again";
  EXPECT_EQ(core_->FindTrial(a[0].trial)->infra_failures, 1) << "it had started: a retry is spent";
  EXPECT_EQ(core_->FindTrial(a[1].trial)->infra_failures, 0) << "it never started: re-sent for free";
  for (const auto& x : re) EXPECT_EQ(x.attempt, 2u);
}

// One metric of one attempt, in emission order, read by the index (a curve of a job reporting many
// metrics read every metric's rows, under the core's lock); the same as filtering LoadMetrics,
// which other stores inherit.
TEST(JobStoreTest, OneMetricOfOneAttemptIsReadInEmissionOrder) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  std::vector<MetricRow> rows;
  for (uint32_t attempt : {1u, 2u}) {
    for (uint64_t seq = 0; seq < 50; ++seq) {
      for (const char* name : {"loss", "acc", "lr"}) {
        rows.push_back({"t1", attempt, 1000 - seq, name, attempt * 1000.0 + seq, 0, 0});  // written newest first
      }
    }
  }
  rows.push_back({"t2", 2, 5, "loss", -1, 0, 0});
  ASSERT_TRUE((*store)->AppendMetrics(rows).ok());
  auto loss = (*store)->LoadMetricValues("t1", 2, "loss");
  ASSERT_TRUE(loss.ok()) << loss.status().ToString();
  ASSERT_EQ(loss->size(), 50u);
  EXPECT_EQ(loss->front(), 2049.0) << "the lowest seq first";
  EXPECT_EQ(loss->back(), 2000.0);
  auto by_default = static_cast<JobStore&>(**store).JobStore::LoadMetricValues("t1", 2, "loss");
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(*by_default, *loss);
  EXPECT_TRUE((*store)->LoadMetricValues("t1", 3, "loss")->empty());
  EXPECT_TRUE((*store)->LoadMetricValues("t9", 1, "loss")->empty());
}

TEST(JobStoreTest, NestedTransactionsAreSavepointsAndOnlyTheOutermostCommits) {
  auto store = SqliteJobStore::Open(":memory:");
  ASSERT_TRUE(store.ok());
  JobStore* st = store->get();
  auto row = [](const std::string& name) {
    JobRow r;
    r.name = name;
    r.spec_json = "{}";
    r.spelling = "api";
    r.metadata_json = "{}";
    r.status = "InProgress";
    return r;
  };
  ASSERT_TRUE(st->Begin().ok());
  ASSERT_TRUE(st->PutJob(row("kept")).ok());
  ASSERT_TRUE(st->Begin().ok());
  ASSERT_TRUE(st->PutJob(row("undone")).ok());
  st->Rollback();  // the inner one only
  ASSERT_TRUE(InTransaction(st, [&] { return st->PutJob(row("inner")); }).ok());
  ASSERT_TRUE(st->Commit().ok());
  auto jobs = st->LoadJobs();
  ASSERT_TRUE(jobs.ok());
  std::set<std::string> names;
  for (const auto& j : *jobs) names.insert(j.name);
  EXPECT_EQ(names, (std::set<std::string>{"kept", "inner"}));
}

TEST_F(CoreTest, ABatchOfMessagesIsHandledAsOneAndAcknowledgedLikeSingleMessages) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("batch", "Random", 2, 1)))[0];
  auto out = core_->OnMessages(
      {{"w1", StartedMessage("w1", a)}, {"w1", PointsMessage(a, {0.25})}, {"w1", ExitedMessage(a, "Completed", 1)}}, now_);
  EXPECT_EQ(Only<proto::wire::Ack>(out).size(), 3u) << "start, metrics and exit are each acknowledged";
  auto next = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(next.size(), 1u) << "the freed slot gets the next trial in the same batch";
  EXPECT_NE(next[0].trial, a.trial);
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  EXPECT_DOUBLE_EQ(*core_->FindTrial(a.trial)->objective, 0.25);
  MakeCore();  // what the batch acknowledged is in the store
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
}


// A connection reset can lose a metric batch while the next one gets through: the later batch
// is not applied or acknowledged until the lost one is re-sent, and the exit waits for both, so
// no point is lost and the worker's cumulative reading of acknowledgements stays true.
TEST_F(CoreTest, MetricBatchesApplyInOrderAndTheExitWaitsForTheMissingOnes) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("order", "Random", 1, 1))).at(0);
  auto batch = [&](uint64_t seq, double loss) {
    proto::wire::MetricPoints m;
    m.trial = a.trial;
    m.attempt = a.attempt;
    m.seq = seq;
    m.points = {{"loss", loss, now_, static_cast<uint32_t>(seq)}};
    return Only<proto::wire::Ack>(core_->OnMessage("w1", m, now_));
  };
  proto::wire::TrialExited x;
  x.trial = a.trial;
  x.attempt = a.attempt;
  x.seq = 2;
  x.status = "Completed";
  x.secondary_status = "Completed";
  x.exit_code = 0;
  EXPECT_TRUE(batch(2, 0.2).empty()) << "seq 2 before seq 1: not acknowledged";
  EXPECT_FALSE(core_->FindTrial(a.trial)->objective) << "and not applied";
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage("w1", x, now_)).empty()) << "the exit waits for batch 2";
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kInProgress);
  EXPECT_EQ(batch(1, 0.5).size(), 1u);
  EXPECT_EQ(batch(2, 0.2).size(), 1u);
  EXPECT_EQ(batch(2, 0.2).size(), 1u) << "a duplicate is acknowledged again";
  EXPECT_EQ(core_->FindTrial(a.trial)->objective, 0.2);
  EXPECT_EQ(Only<proto::wire::Ack>(core_->OnMessage("w1", x, now_)).size(), 1u);
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  auto rows = store_->LoadMetrics(a.trial);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), 2u) << "each point once";
}


// A program that prints its loss every step: the first kMetricHeadPoints points of a metric are
// stored, then fewer and fewer (a scale pass stored 1.5 million rows for 30 training jobs that
// printed 50,000 each, and the coordinator stalled). The objective still follows every point.
TEST_F(CoreTest, AMetricFloodIsStoredThinnedAndTheObjectiveFollowsEveryPoint) {
  Register("w1", 1);
  constexpr uint32_t kPoints = 10'000;
  auto flood = [&](const std::string& job, bool early_stopping) {
    proto::TuningJobSpec spec = Spec(job, "Random", 1, 1);
    if (early_stopping) spec.hyper_parameter_tuning_job_config->training_job_early_stopping_type = "Auto";
    auto a = Only<proto::wire::AssignTrial>(Submit(spec)).at(0);
    Started("w1", a);
    for (uint32_t batch = 0; batch < kPoints / 500; ++batch) {
      proto::wire::MetricPoints m;
      m.trial = a.trial;
      m.attempt = a.attempt;
      m.seq = batch + 1;
      for (uint32_t i = batch * 500; i < (batch + 1) * 500; ++i) m.points.push_back({"loss", 1.0 / (1 + i), now_, i});
      EXPECT_EQ(Only<proto::wire::Ack>(core_->OnMessage("w1", m, now_)).size(), 1u);
    }
    EXPECT_EQ(core_->FindTrial(a.trial)->objective, 1.0 / kPoints) << "the last point, stored or not";
    auto rows = store_->LoadMetrics(a.trial);
    EXPECT_TRUE(rows.ok());
    const size_t stored = rows.ok() ? rows->size() : 0;
    sent_[a.trial] = kPoints / 500;
    Exit("w1", a, "Completed");  // the slot for the next job
    return stored;
  };
  // 2,000 + every 2nd of [2000, 4000) + every 4th of [4000, 8000) + every 8th of [8000, 10000).
  EXPECT_EQ(flood("flood", false), 2000u + 1000u + 1000u + 250u);
  // Early stopping reads the objective's curve by emission, and a restart rebuilds it from the
  // store: kept whole.
  EXPECT_EQ(flood("flood-es", true), kPoints);
  EXPECT_TRUE(CoordinatorCore::KeepsMetricPoint(1999));
  EXPECT_FALSE(CoordinatorCore::KeepsMetricPoint(2001));
  EXPECT_TRUE(CoordinatorCore::KeepsMetricPoint(4004));
  EXPECT_FALSE(CoordinatorCore::KeepsMetricPoint(4002));
}

// Heartbeats reconcile what a worker holds: an assignment lost in transit is re-queued after a
// lease (no retry spent, it never started), and an attempt the coordinator moved elsewhere is
// stopped where it still runs.
TEST_F(CoreTest, HeartbeatsRequeueLostAssignmentsAndStopStaleAttempts) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("hb", "Random", 1, 1))).at(0);
  // The AssignTrial never arrived: the worker's heartbeats do not list it.
  now_ += 500;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Heartbeat("w1", {})).empty()) << "within a lease it may still be on its way";
  now_ += 600;  // a lease (1000 ms) after it was sent
  auto again = Only<proto::wire::AssignTrial>(Heartbeat("w1", {}));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].trial, a.trial);
  EXPECT_EQ(again[0].attempt, 2u);
  EXPECT_EQ(core_->FindTrial(a.trial)->infra_failures, 0) << "no retry spent: it never started";
  // The first assignment shows up late after all: the worker runs attempt 1, which is stale.
  const auto replies = Heartbeat("w1", {{a.trial, 1}, {a.trial, 2}});
  auto stops = Only<proto::wire::StopTrial>(replies);
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].attempt, 1u);
  EXPECT_EQ(stops[0].reason, proto::wire::kStopReasonRevoked);
  // The revocation before the heartbeat's ack: the worker's lease runs from an acknowledged
  // heartbeat (worker/agent_impl.h lease_anchor_ms), and an ack read first let a worker paused
  // past its lease upload the stale attempt's model over the re-run's.
  size_t stop_at = replies.size(), ack_at = replies.size();
  for (size_t i = 0; i < replies.size(); ++i) {
    if (std::holds_alternative<proto::wire::StopTrial>(replies[i].message)) stop_at = std::min(stop_at, i);
    const auto* ack = std::get_if<proto::wire::Ack>(&replies[i].message);
    if (ack && ack->type == static_cast<uint16_t>(proto::wire::MsgType::kHeartbeat)) ack_at = std::min(ack_at, i);
  }
  ASSERT_LT(ack_at, replies.size()) << "the heartbeat is acknowledged";
  EXPECT_LT(stop_at, ack_at) << "the revoking stop leaves before the heartbeat's ack";
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 2u);
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kInProgress);
}

// A scale pass: a worker flooding metric batches had its heartbeats read seconds after it sent
// them (behind the batches), so a heartbeat sent before an assignment reached it, read over a
// lease after that assignment, counted it as lost in transit: re-queued, it ran twice. A
// heartbeat is judged at its own time (Heartbeat.sent_ms on the worker's learnt clock).
TEST_F(CoreTest, AHeartbeatHeardLateDoesNotCountAnAssignmentSentAfterItAsLost) {
  Register("w1", 1);
  const int64_t worker_clock = -1'000'000'000'000;  // the worker's clock runs 1e9 s ahead of ours
  auto beat = [&](int64_t sent_on_worker, std::vector<proto::wire::AttemptRef> running) {
    proto::wire::Heartbeat h;
    h.worker_id = "w1";
    h.seq = 1;
    h.running = std::move(running);
    h.sent_ms = sent_on_worker;
    return core_->OnMessage("w1", h, now_);
  };
  beat(now_ - worker_clock, {});  // heard at once: the offset
  now_ += 100;
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("late", "Random", 1, 1))).at(0);
  const int64_t assigned = now_;
  // Heartbeats sent just after the assignment, before it arrived, heard one every 400 ms over
  // five leases (each 4 s or more after it was sent): the worker is in touch all along.
  for (int i = 1; i <= 12; ++i) {
    now_ = assigned + i * 400;
    auto requeued = Only<proto::wire::AssignTrial>(beat(assigned - worker_clock + i * 10, {}));
    EXPECT_TRUE(requeued.empty()) << "a heartbeat sent " << i * 10 << " ms after the assignment, heard late";
  }
  EXPECT_EQ(core_->FindTrial(a.trial)->attempt, 1u);
  // One sent a lease after the assignment that still does not hold it: lost in transit after all.
  now_ += 10;
  auto again = Only<proto::wire::AssignTrial>(beat(assigned + 1500 - worker_clock, {}));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempt, 2u);
  // A heartbeat heard 70 s late (a long stall) that does not hold attempt 2 yet: not judged.
  now_ += 70'000;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(beat(now_ - 70'000 - worker_clock, {})).empty())
      << "a minute late or a clock stepped back: cannot be told, so not taken as lost";
  beat(now_ - worker_clock, {{a.trial, 2}});
  // The worker's clock steps back two minutes (NTP) and attempt 2 is gone from its heartbeats:
  // for two minutes they are not judged (a clock step or heartbeats a minute late?); then the
  // new offset is learnt, and the next heartbeat finds attempt 2 lost.
  const int64_t step_at = now_;
  int64_t found_at = 0;
  for (int i = 0; i < 30 && found_at == 0; ++i) {
    now_ += 5000;
    auto requeued = Only<proto::wire::AssignTrial>(beat(now_ - worker_clock - 120'000, {}));
    if (!requeued.empty()) {
      EXPECT_EQ(requeued[0].attempt, 3u);
      found_at = now_;
    }
  }
  EXPECT_GE(found_at - step_at, 120'000) << "not judged while it could be a stall";
  EXPECT_LE(found_at - step_at, 130'000) << "judged once the new offset is learnt";
}

// Every channel setting the worker acts on travels in the AssignTrial itself (the worker falls
// back to spec_json only for what the message lacks).
TEST_F(CoreTest, AssignmentsCarryEachChannelsDataTypeDistributionCompressionAndWrapper) {
  Register("w1", 1);
  auto spec = Spec("chan", "Random", 1, 1);
  auto& def = *spec.training_job_definition;
  def.algorithm_specification->training_input_mode = "Pipe";
  proto::Channel train;
  train.channel_name = "train";
  train.compression_type = "Gzip";
  train.record_wrapper_type = "RecordIO";
  train.data_source = proto::DataSource{};
  train.data_source->s3_data_source = proto::S3DataSource{};
  train.data_source->s3_data_source->s3_data_type = "ManifestFile";
  train.data_source->s3_data_source->s3_uri = "s3://bucket/manifest";
  train.data_source->s3_data_source->s3_data_distribution_type = "ShardedByS3Key";
  proto::Channel plain = train;
  plain.channel_name = "plain";
  plain.input_mode = "File";
  plain.compression_type.reset();
  plain.record_wrapper_type.reset();
  plain.data_source->s3_data_source->s3_data_type = "S3Prefix";
  plain.data_source->s3_data_source->s3_data_distribution_type.reset();
  def.input_data_config = {train, plain};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0].channels.size(), 2u);
  const auto& c = a[0].channels[0];
  EXPECT_EQ(c.name, "train");
  EXPECT_EQ(c.uri, "s3://bucket/manifest");
  EXPECT_EQ(c.input_mode, "Pipe");
  EXPECT_EQ(c.s3_data_type, "ManifestFile");
  EXPECT_EQ(c.distribution_type, "ShardedByS3Key");
  EXPECT_EQ(c.compression_type, "Gzip");
  EXPECT_EQ(c.record_wrapper_type, "RecordIO");
  const auto& p = a[0].channels[1];
  EXPECT_EQ(p.input_mode, "File");
  EXPECT_EQ(p.s3_data_type, "S3Prefix");
  EXPECT_EQ(p.distribution_type, "");
  EXPECT_EQ(p.compression_type, "");
  EXPECT_EQ(p.record_wrapper_type, "");
  EXPECT_TRUE(a[0].Validate().ok()) << a[0].Validate().ToString();
}

// S3 object URLs (https://, which SageMaker's pattern admits) reach the worker as the s3:// URIs
// they name, for channels, output and checkpoints: as given they validated, then failed every
// training job ("is not an s3://bucket/prefix URI").
TEST_F(CoreTest, AssignmentsGiveS3ObjectUrlsAsS3Uris) {
  Register("w1", 1);
  auto spec = Spec("https", "Random", 1, 1);
  auto& def = *spec.training_job_definition;
  proto::Channel train;
  train.channel_name = "train";
  train.data_source = proto::DataSource{};
  train.data_source->s3_data_source = proto::S3DataSource{};
  train.data_source->s3_data_source->s3_data_type = "S3Prefix";
  train.data_source->s3_data_source->s3_uri = "https://data.s3.us-east-1.amazonaws.com/val/";
  def.input_data_config = {train};
  def.output_data_config->s3_output_path = "https://s3.eu-west-1.amazonaws.com/out/jobs";
  def.checkpoint_config = proto::CheckpointConfig{"https://out.s3.amazonaws.com/ckpt/", std::nullopt};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(a[0].channels.size(), 1u);
  EXPECT_EQ(a[0].channels[0].uri, "s3://data/val/");
  EXPECT_EQ(a[0].output_path, "s3://out/jobs");
  EXPECT_EQ(a[0].checkpoint_uri, "s3://out/ckpt/" + a[0].trial);
}

}  // namespace
}  // namespace hpo::coordinator

namespace hpo::coordinator {
namespace {
using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

// The training jobs' final exit, as the worker reports a stop.
void ExitStopped(CoordinatorCore& core, const proto::wire::StopTrial& s, int64_t now) {
  proto::wire::TrialExited x;
  x.trial = s.trial;
  x.attempt = s.attempt;
  x.status = "Stopped";
  x.secondary_status = "Stopped";
  core.OnMessage("w1", x, now);
}

// Deleting a Stopping job: it said "stop it" of a job already stopping.
TEST_F(CoreTest, DeletingAStoppingJobSaysToWaitForItsEndNotToStopIt) {
  Register("w1", 1);
  auto b = Only<proto::wire::AssignTrial>(Submit(Spec("halting", "Random", 2, 1))).at(0);
  Started("w1", b);
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("halting", now_, &out).ok());
  Status halting = core_->Delete("halting", now_);
  EXPECT_EQ(halting.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(halting.message().find("is Stopping (its training jobs are ending); delete it once it has ended"),
            std::string::npos)
      << halting.message();
  EXPECT_EQ(halting.message().find("stop it"), std::string::npos) << halting.message();
}

TEST_F(CoreTest, DeletingAJobRemovesItsRecordsOnlyOnceItHasEndedAndFreesItsName) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("gone", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  Status running = core_->Delete("gone", now_);
  EXPECT_EQ(running.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(running.message().find("is InProgress; stop it"), std::string::npos) << running.message();
  Finish("w1", a[0], 0.5);
  Finish("w1", a[1], 0.25);
  ASSERT_EQ(*core_->Describe("gone")->status.hyper_parameter_tuning_job_status, "Completed");
  const std::vector<std::string> trial_names = {a[0].trial, a[1].trial};

  // A job that warm-starts from it keeps it.
  proto::TuningJobSpec child = Spec("child", "Random", 4, 2);
  child.warm_start_config.emplace();
  child.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"GONE"});
  child.warm_start_config->warm_start_type = "IdenticalDataAndAlgorithm";
  auto c = Only<proto::wire::AssignTrial>(Submit(child));
  ASSERT_EQ(c.size(), 2u);
  Status parent = core_->Delete("gone", now_);
  EXPECT_EQ(parent.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(parent.message().find("child (InProgress) warm-starts from gone"), std::string::npos) << parent.message();
  EXPECT_EQ(core_->Delete("nope", now_).code(), StatusCode::kNotFound);
  ASSERT_NE(core_->FindJob("gone"), nullptr) << "refusals change nothing";
  EXPECT_EQ(core_->TrialsOf("gone").size(), 2u);

  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("child", now_, &out).ok());
  for (const auto& s : Only<proto::wire::StopTrial>(out)) ExitStopped(*core_, s, now_);
  ASSERT_EQ(*core_->Describe("child")->status.hyper_parameter_tuning_job_status, "Stopped");
  ASSERT_TRUE(core_->Delete("Child", now_).ok()) << "names are not case sensitive";
  Submit(Spec("gone-2", "Random", 1, 1));  // a neighbour whose name starts the same stays
  Register("w1", 2);
  ASSERT_EQ(core_->TrialsOf("gone-2").size(), 1u);
  ASSERT_TRUE(core_->Delete("gone", now_).ok());

  EXPECT_EQ(core_->FindJob("gone"), nullptr);
  EXPECT_EQ(core_->Describe("gone").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(core_->TrialsOf("gone").empty());
  auto trials = store_->LoadTrials();
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u) << "only gone-2's training job is left";
  EXPECT_EQ(trials->at(0).tuning_job, "gone-2");
  for (const auto& t : trial_names) EXPECT_TRUE(store_->LoadMetrics(t)->empty()) << t;

  // Gone for good: a restarted core does not bring it back, and the name is free again.
  MakeCore();
  EXPECT_EQ(core_->FindJob("gone"), nullptr);
  EXPECT_EQ(core_->FindJob("child"), nullptr);
  EXPECT_EQ(core_->TrialsOf("gone-2").size(), 1u);
  Submit(Spec("gone", "Random", 2, 2));
  Register("w1", 4);
  EXPECT_EQ(core_->TrialsOf("gone").size(), 2u);
  EXPECT_EQ(core_->TrialsOf("gone")[0]->name.rfind("gone-001-", 0), 0u) << core_->TrialsOf("gone")[0]->name;
}

// A large job's deletion goes a slice of rows at a time (DeleteSlice), so that its caller can let
// go of the core between slices: one Delete held it, and every worker's messages, for seconds.
// Until the last step the job is whole to everyone else: listed, described, its name taken.
TEST_F(CoreTest, ALargeJobIsDeletedASliceAtATimeAndStaysWholeUntilTheLastStep) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("big", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  auto early = core_->DeleteSlice("big", now_);
  ASSERT_FALSE(early.ok()) << "refused as Delete is";
  EXPECT_EQ(early.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(early.status().message().find("is InProgress; stop it"), std::string::npos) << early.status().message();
  for (const auto& x : a) {
    Emit("w1", x, std::vector<double>(1500, 0.5));
    Log("w1", x, std::vector<std::string>(1500, "epoch"));
    Exit("w1", x, "Completed");
  }
  ASSERT_EQ(*core_->Describe("big")->status.hyper_parameter_tuning_job_status, "Completed");
  ASSERT_GE(store_->LoadMetrics(a[0].trial)->size(), 1500u);
  EXPECT_FALSE(*core_->DeleteSlice("nope", now_)) << "unknown: nothing to slice (Delete says NotFound)";
  auto first = core_->DeleteSlice("BIG", now_);  // names are not case sensitive
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(*first) << "it deleted something";
  // Begun: shown as SageMaker's Deleting; no job may take it as a warm-start parent now (the
  // deletion was then refused half done, its logs gone), nor its name.
  ASSERT_TRUE(core_->Describe("big").ok());
  EXPECT_EQ(*core_->Describe("big")->status.hyper_parameter_tuning_job_status, "Deleting");
  proto::TuningJobSpec child = Spec("child", "Random", 2, 1);
  child.warm_start_config.emplace();
  child.warm_start_config->parent_hyper_parameter_tuning_jobs.push_back({"big"});
  child.warm_start_config->warm_start_type = "IdenticalDataAndAlgorithm";
  std::vector<Outgoing> ignored;
  auto refused_child = core_->Submit(child, proto::Spelling::kCrd, now_, &ignored);
  ASSERT_FALSE(refused_child.ok());
  EXPECT_NE(refused_child.status().message().find("is being deleted"), std::string::npos)
      << refused_child.status().message();
  auto same_name = core_->Submit(Spec("big", "Random", 1, 1), proto::Spelling::kCrd, now_, &ignored);
  ASSERT_FALSE(same_name.ok()) << "its name is still taken";
  EXPECT_NE(same_name.status().message().find("is being deleted"), std::string::npos) << same_name.status().message();
  int calls = 1;
  for (;; ++calls) {
    auto more = core_->DeleteSlice("big", now_);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_LT(calls, 1000) << "it ends";
    EXPECT_NE(core_->FindJob("big"), nullptr) << "the job stays until Delete";
    EXPECT_EQ(core_->TrialsOf("big").size(), 2u);
  }
  EXPECT_TRUE(store_->LoadMetrics(a[0].trial)->empty());
  EXPECT_NE(core_->FindJob("big"), nullptr);
  ASSERT_TRUE(core_->Delete("big", now_).ok());
  EXPECT_EQ(core_->FindJob("big"), nullptr);
  EXPECT_EQ(core_->Delete("big", now_).code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->LoadTrials()->empty());
}

// A deletion is stored as begun before its first row goes. A coordinator stopped part-way came
// back serving the job as Completed without the logs and curves already gone, and nothing said
// so; now the job comes back Deleting, the start says so, and the caller finishes it.
TEST_F(CoreTest, AnInterruptedDeletionComesBackDeletingAndIsFinished) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("big", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  for (const auto& x : a) {
    Emit("w1", x, std::vector<double>(3000, 0.5));
    Exit("w1", x, "Completed");
  }
  Submit(Spec("other", "Random", 1, 1));
  ASSERT_TRUE(core_->TakeInterruptedDeletions().empty());
  auto first = core_->DeleteSlice("big", now_ += 1000);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(*first);
  bool begun = false;
  for (const auto& e : *core_->Events("big", 0, 1000)) begun = begun || e.kind == "JobDeleting";
  EXPECT_TRUE(begun) << "the history says the deletion began";
  const size_t left = store_->LoadMetrics(a[0].trial)->size() + store_->LoadMetrics(a[1].trial)->size();
  ASSERT_LT(left, 6000u) << "part of it went";

  MakeCore();  // the coordinator stopped part-way, and starts again
  ASSERT_TRUE(core_->LoadStatus().ok());
  auto d = core_->Describe("big");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "Deleting") << "not back as Completed";
  EXPECT_EQ(*core_->Describe("other")->status.hyper_parameter_tuning_job_status, "InProgress");
  bool noted = false;
  for (const auto& n : core_->LoadNotes()) noted = noted || n.find("big: its deletion was interrupted") != std::string::npos;
  EXPECT_TRUE(noted) << "the start says so";
  std::vector<Outgoing> ignored;
  auto same_name = core_->Submit(Spec("BIG", "Random", 1, 1), proto::Spelling::kCrd, now_, &ignored);
  ASSERT_FALSE(same_name.ok());
  EXPECT_NE(same_name.status().message().find("is being deleted"), std::string::npos) << same_name.status().message();
  const Status stop = core_->Stop("big", now_, &ignored);
  EXPECT_NE(stop.message().find("it is Deleting"), std::string::npos) << stop.message();
  EXPECT_EQ(core_->TakeInterruptedDeletions(), std::vector<std::string>{"big"});
  EXPECT_TRUE(core_->TakeInterruptedDeletions().empty()) << "named once";

  for (int calls = 0;; ++calls) {
    auto more = core_->DeleteSlice("big", now_);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_LT(calls, 1000);
  }
  ASSERT_TRUE(core_->Delete("big", now_).ok());
  EXPECT_EQ(core_->FindJob("big"), nullptr);
  MakeCore();
  EXPECT_EQ(core_->FindJob("big"), nullptr);
  EXPECT_TRUE(core_->TakeInterruptedDeletions().empty());
  EXPECT_TRUE(core_->LoadNotes().empty());
  EXPECT_NE(core_->FindJob("other"), nullptr);
}

TEST_F(CoreTest, EventsTellAJobsHistoryInOrderAndOutliveItsDeletion) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("hist", "Random", 2, 2)));
  ASSERT_EQ(a.size(), 2u);
  Submit(Spec("other", "Random", 1, 1));
  Finish("w1", a[0], 0.5);
  Finish("w1", a[1], 0.25);

  auto all = core_->Events("HIST", 0, 1000);  // names are not case sensitive
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_GE(all->size(), 2u);
  EXPECT_EQ(all->front().kind, "JobCreated");
  EXPECT_EQ(all->front().message, "strategy Random");
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].job, "hist") << (*all)[i].kind;
    if (i > 0) {
      EXPECT_LT((*all)[i - 1].id, (*all)[i].id);
    }
  }
  // A cursor and a limit page through them.
  auto page = core_->Events("hist", all->front().id, 1);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ(page->front(), (*all)[1]);
  // Without a job: every job's, the other's among them.
  auto everything = core_->Events("", 0, 1000);
  ASSERT_TRUE(everything.ok());
  EXPECT_TRUE(std::any_of(everything->begin(), everything->end(), [](const EventRow& e) { return e.job == "other"; }));
  EXPECT_EQ(core_->Events("nope", 0, 10).status().code(), StatusCode::kNotFound);

  ASSERT_TRUE(core_->Delete("hist", now_).ok());
  auto after = core_->Events("hist", all->back().id, 1000);
  ASSERT_TRUE(after.ok()) << "a deleted job's history stays";
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ(after->front().kind, "JobDeleting");  // begun (stored before the first row went)
  EXPECT_EQ(after->back().kind, "JobDeleted");
  EXPECT_TRUE(core_->Events("hist", after->back().id, 10).ok()) << "nothing new is not an error";
  auto deleted = core_->Events("hist", 0, 1000);
  ASSERT_TRUE(deleted.ok());
  // Its own history, up to its deletion; the events of its training jobs went with them (they
  // grew a benchmark coordinator's store without bound).
  size_t own = 0;
  for (const EventRow& e : *all) own += e.trial.empty();
  ASSERT_LT(own, all->size()) << "the job had events of training jobs";
  EXPECT_EQ(deleted->size(), own + 2) << "a deleted job's own history, up to its deletion (JobDeleting, JobDeleted)";
  for (const EventRow& e : *deleted) EXPECT_EQ(e.trial, "") << e.kind;

  // The name used again: its history is the new job's, not the deleted one's.
  auto b = Only<proto::wire::AssignTrial>(Submit(Spec("Hist", "Random", 1, 1)));
  ASSERT_EQ(b.size(), 1u);
  auto reborn = core_->Events("hist", 0, 1000);
  ASSERT_TRUE(reborn.ok());
  ASSERT_FALSE(reborn->empty());
  EXPECT_EQ(reborn->front().kind, "JobCreated");
  EXPECT_GT(reborn->front().id, after->front().id);
  for (const EventRow& e : *reborn) EXPECT_NE(e.kind, "JobDeleted");
  // Deleted again: the second job's history, still without the first's.
  Finish("w1", b[0], 0.75);
  ASSERT_TRUE(core_->Delete("Hist", now_).ok());
  auto second = core_->Events("hist", 0, 1000);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->front().id, reborn->front().id);
  EXPECT_EQ(second->back().kind, "JobDeleted");
}


// A long log keeps its first and its last 100,000 lines (final metrics and tracebacks are at the
// end); the middle goes, re-sent middle lines stay out, and readers see the gap in the numbers.
TEST_F(CoreTest, ALongLogKeepsItsHeadAndItsTail) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("chatty", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  const uint64_t head = CoordinatorCore::kLogHeadLines, tail = CoordinatorCore::kLogTailLines;
  const uint64_t total = head + tail + 50000;
  auto send = [&](uint64_t first, uint64_t n, uint64_t seq) {
    proto::wire::LogLines l;
    l.trial = a[0].trial;
    l.attempt = a[0].attempt;
    l.seq = seq;
    l.first_line = first;
    for (uint64_t i = 0; i < n; ++i) l.lines.push_back("line " + std::to_string(first + i));
    core_->OnMessage("w1", l, now_);
  };
  uint64_t seq = 0;
  for (uint64_t first = 0; first < total; first += 5000) send(first, 5000, ++seq);
  send(head + 10, 3, ++seq);  // a re-sent batch from the dropped middle
  std::vector<uint64_t> lines;
  for (int64_t after = 0;;) {
    auto page = core_->Logs(a[0].trial, after, 50000);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    if (page->empty()) break;
    for (const auto& r : *page) lines.push_back(r.line), after = std::max(after, r.id);
  }
  std::sort(lines.begin(), lines.end());
  ASSERT_EQ(lines.size(), head + tail);
  EXPECT_EQ(lines[head - 1], head - 1) << "the head is whole";
  EXPECT_EQ(lines[head], total - tail) << "then the tail: the last line's number tells how many were printed";
  EXPECT_EQ(lines.back(), total - 1);
}

// One attempt's share of the state database is bounded in bytes, not only in lines: a line is
// kept up to kLogLineBytes, cut at a character, saying how much is left out.
TEST_F(CoreTest, ALongLogLineIsKeptCutWithANote) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("wide", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  proto::wire::LogLines l;
  l.trial = a[0].trial;
  l.attempt = a[0].attempt;
  l.seq = 1;
  const std::string wide = std::string(CoordinatorCore::kLogLineBytes - 1, 'x') + "\xc3\xa9" + std::string(60000, 'y');
  l.lines = {"short", wide};
  core_->OnMessage("w1", l, now_);
  auto page = core_->Logs(a[0].trial, 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].text, "short");
  const std::string& kept = (*page)[1].text;
  EXPECT_EQ(kept.substr(0, CoordinatorCore::kLogLineBytes - 1), std::string(CoordinatorCore::kLogLineBytes - 1, 'x'));
  EXPECT_EQ(kept.find("\xc3"), std::string::npos) << "not cut inside a character";
  EXPECT_NE(kept.find("... [60002 more bytes in the worker's trial.log, which keeps a line's first and last 64 KiB]"), std::string::npos) << kept.substr(4000);
}

// Two live workers started with the same --id: the newer one's registration takes the id (as a
// restart would); when the older one registers again (its heartbeats found it unknown), it is
// refused with the reason, instead of the two taking each other's attempts every lease.
TEST_F(CoreTest, TwoLiveWorkersWithOneIdAreToldSoAndTheOlderIsRefused) {
  auto first = Only<proto::wire::RegisterAck>(Register("w1", 1));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(first[0].accepted);
  const uint64_t older = session_;
  ++session_;
  auto newer = Only<proto::wire::RegisterAck>(Register("w1", 1));
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_TRUE(newer[0].accepted) << "a new session under a known id is a restart, as far as anyone can tell";
  session_ = older;
  auto again = Only<proto::wire::RegisterAck>(Register("w1", 1));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(again[0].accepted);
  EXPECT_NE(again[0].reason.find("two live workers share the id; give each its own --id"), std::string::npos)
      << again[0].reason;
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [](const EventRow& e) { return e.kind == "WorkerIdConflict"; }));
  session_ = older + 1;
  auto newer_again = Only<proto::wire::RegisterAck>(Register("w1", 1));
  ASSERT_EQ(newer_again.size(), 1u);
  EXPECT_TRUE(newer_again[0].accepted) << "the newer one keeps the id";
}

// A second worker started on another machine under a running worker's id (a copied config file's
// `id:`) took the id: the running worker's training jobs failed as lost, then it was refused. The
// newcomer is refused now, naming the host that holds the id, and nothing of the running worker
// changes; once that worker's lease has run out (it is gone), the id is free for the new one.
TEST_F(CoreTest, AWorkerOnAnotherHostUnderALiveWorkersIdIsRefusedAndTheRunningOneKeepsItsJobs) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dup", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  proto::wire::Register copy = Registration("w1", 1);
  copy.host = "other-machine";
  copy.session = session_ + 1;
  auto refused = Only<proto::wire::RegisterAck>(core_->OnMessage("w1", copy, now_ + 100));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].accepted);
  EXPECT_NE(refused[0].reason.find("the id w1 is held by a running worker on host w1 (heard 0 s ago): give each "
                                   "worker its own --id"),
            std::string::npos)
      << refused[0].reason;
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kInProgress) << "the running worker's job goes on";
  EXPECT_EQ(core_->FindTrial(a[0].trial)->attempt, a[0].attempt);
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [](const EventRow& e) { return e.kind == "WorkerIdConflict"; }));
  // The holder gone (its lease run out), the id is the new machine's.
  now_ += 5000;
  core_->OnTick(now_);
  auto later = Only<proto::wire::RegisterAck>(core_->OnMessage("w1", copy, now_));
  ASSERT_EQ(later.size(), 1u);
  EXPECT_TRUE(later[0].accepted) << later[0].reason;
}

// On one machine, a second worker in another work directory under a running worker's id took
// the id as a restart would (the work directory was not in the registration), and the running
// worker's training jobs were lost. It is refused now; a restart in the same directory is not.
TEST_F(CoreTest, ASecondWorkerOnTheSameHostInAnotherDirectoryUnderALiveIdIsRefused) {
  proto::wire::Register first = Registration("w1", 1);
  first.work_dir = "/srv/hpo/a";
  ASSERT_TRUE(Only<proto::wire::RegisterAck>(core_->OnMessage("w1", first, now_)).at(0).accepted);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dir", "Random", 2, 1)));
  ASSERT_EQ(a.size(), 1u);
  Started("w1", a[0]);
  proto::wire::Register second = first;
  second.work_dir = "/srv/hpo/b";
  second.session = first.session + 1;
  auto refused = Only<proto::wire::RegisterAck>(core_->OnMessage("w1", second, now_ + 100));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].accepted);
  EXPECT_NE(refused[0].reason.find("the id w1 is held by a running worker on host w1 in /srv/hpo/a (heard 0 s ago)"),
            std::string::npos)
      << refused[0].reason;
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kInProgress) << "the running worker's job goes on";
  auto events = core_->Events("", 0, 100);
  ASSERT_TRUE(events.ok());
  EXPECT_TRUE(std::any_of(events->begin(), events->end(), [](const EventRow& e) {
    return e.kind == "WorkerIdConflict" &&
           e.message == "w1: a process on w1 in /srv/hpo/b asked for the id held by the running worker on w1 in "
                        "/srv/hpo/a; refused it";
  }));
  // The worker restarted on its own directory is that worker: accepted, as before.
  proto::wire::Register restarted = first;
  restarted.session = first.session + 2;
  restarted.running = {{a[0].trial, a[0].attempt}};
  auto again = Only<proto::wire::RegisterAck>(core_->OnMessage("w1", restarted, now_ + 200));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].accepted) << again[0].reason;
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kInProgress);
}

// Training time is what the worker measured (its clock at start and end), not the time between
// the coordinator hearing of the start and of the end: a coordinator that was down when the
// program started, or when it ended, no longer squeezes or stretches it; a worker clock far off
// from the coordinator's does not matter; a figure longer than since the assignment is not believed.
TEST_F(CoreTest, TrainingTimeIsWhatTheWorkerMeasured) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("timed", "Random", 3, 1)));
  ASSERT_EQ(a.size(), 1u);
  const int64_t worker_clock = 3600000;  // an hour ahead of the coordinator's
  auto start = [&](const proto::wire::AssignTrial& x, int64_t at) {
    proto::wire::TrialStarted s;
    s.trial = x.trial;
    s.attempt = x.attempt;
    s.worker_id = "w1";
    s.started_at_ms = at;
    core_->OnMessage("w1", s, now_);
  };
  auto exit = [&](const proto::wire::AssignTrial& x, int64_t at) {
    proto::wire::TrialExited e;
    e.trial = x.trial;
    e.attempt = x.attempt;
    e.status = "Completed";
    e.secondary_status = "Completed";
    e.exit_code = 0;
    e.ended_at_ms = at;
    e.final_metrics = {{"loss", 0.5}};
    return Only<proto::wire::AssignTrial>(core_->OnMessage("w1", e, now_));
  };
  // Heard of the start 20 s late (the coordinator was down), of the end 1 s after that: it ran 6 s.
  now_ += 20000;
  start(a[0], worker_clock + now_ - 20000);
  now_ += 1000;
  auto next = exit(a[0], worker_clock + now_ - 20000 - 1000 + 6000);
  const Trial* t = core_->FindTrial(a[0].trial);
  EXPECT_EQ(t->TrainingAndBillableSeconds(now_, 1.0).first, 6);
  EXPECT_EQ(t->start_ms, now_ - 6000) << "the start moved back to when it ran";
  ASSERT_EQ(next.size(), 1u);

  // Heard of the start at once, of the end 30 s late: it ran 4 s.
  const int64_t began = now_;
  start(next[0], worker_clock + began);
  now_ += 34000;
  auto last = exit(next[0], worker_clock + began + 4000);
  t = core_->FindTrial(next[0].trial);
  EXPECT_EQ(t->TrainingAndBillableSeconds(now_, 1.0).first, 4);
  EXPECT_EQ(t->start_ms, began) << "a start is never moved forward";
  // Its last transitions are dated by its end, not by when it was heard of: Training closed 30 s
  // after TrainingEndTime.
  EXPECT_EQ(t->end_ms, began + 4000);
  ASSERT_GE(t->secondary.size(), 2u);
  EXPECT_EQ(t->secondary.back().status, "Completed");
  EXPECT_EQ(t->secondary.back().start_ms, began + 4000);
  EXPECT_EQ(t->secondary[t->secondary.size() - 2].status, "Uploading");
  EXPECT_EQ(t->secondary[t->secondary.size() - 2].start_ms, began + 4000);

  // A worker clock that jumped an hour: not believed, the coordinator's own figure stands.
  ASSERT_EQ(last.size(), 1u);
  const int64_t third = now_;
  start(last[0], worker_clock + third);
  now_ += 5000;
  exit(last[0], worker_clock + third + 3600000);
  EXPECT_EQ(core_->FindTrial(last[0].trial)->TrainingAndBillableSeconds(now_, 1.0).first, 5);
}

// A relative file:// program names a file beside a spec file, which hpo submit and hpo run resolve;
// sent as it is (the aws CLI, boto3) every training job failed with "cannot run". Refused, naming
// the field and what to do; an absolute one is taken.
TEST_F(CoreTest, ARelativeFileProgramIsRefusedAtSubmit) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Spec("relative", "Random", 2, 1);
  spec.training_job_definition->algorithm_specification->training_image = "file://trainers/sklearn_gbt.py";
  std::vector<Outgoing> out;
  auto refused = core_->Submit(spec, proto::Spelling::kApi, now_, &out);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("TrainingJobDefinition.AlgorithmSpecification.TrainingImage: "
                                            "file://trainers/sklearn_gbt.py is a relative path"),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("hpo submit"), std::string::npos) << refused.status().message();
  EXPECT_EQ(core_->FindJob("relative"), nullptr) << "nothing made";
  EXPECT_TRUE(out.empty());
  spec.training_job_definition->algorithm_specification->training_image = "file:///opt/trainers/sklearn_gbt.py";
  EXPECT_TRUE(core_->Submit(spec, proto::Spelling::kApi, now_, &out).ok());
}

// The retry of an attempt that ended in an infrastructure error goes to another worker when one
// is free: a worker whose disk was full got every retry back within milliseconds while another
// sat idle, and the training job failed after spending them all there.
TEST_F(CoreTest, AnInfrastructureErrorsRetryIsPlacedOnAnotherWorker) {
  Register("w1", 1);
  Register("w2", 1);
  proto::TuningJobSpec spec = Spec("infra", "Random", 1, 1);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{2};
  std::string where;
  proto::wire::AssignTrial a;
  auto take = [&](const std::vector<Outgoing>& out) {
    std::string to;
    for (const auto& o : out) {
      if (const auto* x = std::get_if<proto::wire::AssignTrial>(&o.message)) {
        a = *x;
        to = o.worker_id;
      }
    }
    return to;
  };
  where = take(Submit(spec));
  ASSERT_FALSE(where.empty());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    Started(where, a);
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.status = "InfraError";
    x.secondary_status = "Failed";
    x.failure_reason = "InternalServerError: no space left on " + where;
    const std::string next = take(core_->OnMessage(where, x, now_));
    ASSERT_FALSE(next.empty()) << "retried at once";
    EXPECT_NE(next, where) << "attempt " << attempt + 1 << " goes to the other worker";
    where = next;
  }
}

// A worker whose training jobs keep ending InfraError (its disk filled after it registered) got
// every new training job and every retry it had a slot for, burning each job's retries (a fault
// pass). Three in a row and it rests: nothing new goes there for 60 s, then 120 s if it fails
// again; a training job that ends otherwise there, or a new registration, makes it whole.
TEST_F(CoreTest, AWorkerWhoseTrainingJobsKeepFailingOnItsInfrastructureRests) {
  Register("w1", 1);
  proto::TuningJobSpec spec = Spec("rest", "Random", 20, 1);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{10};
  auto assigned = [](const std::vector<Outgoing>& out) {
    std::vector<proto::wire::AssignTrial> v;
    for (const auto& o : out) {
      if (const auto* x = std::get_if<proto::wire::AssignTrial>(&o.message)) v.push_back(*x);
    }
    return v;
  };
  auto fail = [&](const proto::wire::AssignTrial& a) {
    Started("w1", a);
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.status = "InfraError";
    x.secondary_status = "Failed";
    x.failure_reason = "InternalServerError: no space left on device";
    return core_->OnMessage("w1", x, now_);
  };
  auto later = [&](int64_t ms) {  // time passes; the worker keeps its heartbeats
    now_ += ms;
    auto v = assigned(Heartbeat("w1", {}));
    for (const auto& x : assigned(core_->OnTick(now_))) v.push_back(x);
    return v;
  };
  auto a = assigned(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  auto next = assigned(fail(a[0]));
  ASSERT_EQ(next.size(), 1u) << "one InfraError: the retry goes where there is a slot";
  next = assigned(fail(next[0]));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_TRUE(assigned(fail(next[0])).empty()) << "the third in a row: w1 rests";
  EXPECT_NE(core_->FindJob("rest")->waiting_reason.find("rests (3 infrastructure errors in a row"), std::string::npos)
      << core_->FindJob("rest")->waiting_reason;
  EXPECT_TRUE(later(30'000).empty()) << "still resting";
  next = later(31'000);
  ASSERT_EQ(next.size(), 1u) << "back after 60 s";
  EXPECT_TRUE(assigned(fail(next[0])).empty()) << "one more failure: resting again at once";
  EXPECT_TRUE(later(61'000).empty()) << "120 s this time";
  next = later(60'000);
  ASSERT_EQ(next.size(), 1u);
  Started("w1", next[0]);
  Finish("w1", next[0], 0.5);  // a success makes it whole: the next failure does not rest it
  EXPECT_TRUE(core_->FindJob("rest")->waiting_reason.find("rests") == std::string::npos);
  auto events = core_->Events("", 0, 1000);
  int rests = 0;
  for (const auto& e : *events) rests += e.kind == "WorkerResting";
  EXPECT_EQ(rests, 2);
}

// A worker process killed -9 with three training jobs running: its successor reports each ended
// with the process; that is one fault, not three in a row, and the restarted worker does not rest
// (it rested 60 s, its slots idle; a scale pass).
TEST_F(CoreTest, TrainingJobsThatEndedWithTheirWorkersProcessCountAsOneInfrastructureError) {
  Register("w1", 3);
  proto::TuningJobSpec spec = Spec("crash", "Random", 12, 3);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{3};
  auto running = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(running.size(), 3u);
  for (const auto& a : running) Started("w1", a);
  ++session_;  // the successor process on the same work directory, which reports them
  std::vector<proto::wire::AttemptRef> refs;
  for (const auto& a : running) refs.push_back({a.trial, a.attempt});
  Register("w1", 3, refs);
  for (const auto& a : running) {
    EndWith("w1", a.trial, a.attempt, "InfraError", std::string(proto::wire::kEndedWithWorkerProcess));
  }
  for (const WorkerInfo* w : core_->Workers()) {
    if (w->reg.worker_id == "w1") {
      EXPECT_TRUE(w->resting.empty()) << w->resting;
    }
  }
  EXPECT_EQ(core_->FindJob("crash")->waiting_reason.find("rests"), std::string::npos)
      << core_->FindJob("crash")->waiting_reason;
}

// A fault pass: one worker whose work directory turned read-only (or that lacks the training
// program) failed every attempt it got before the program ran, in milliseconds; assign ahead
// had handed it twice its slots, and without a RetryStrategy the tuning job failed ("No training
// job succeeded after 7 attempts") and stopped the healthy worker's training job. An attempt a
// worker could not start runs again without spending a retry while another worker has not
// refused it; refused by every worker (one alone, here), it fails as before, naming why.
TEST_F(CoreTest, AnAttemptAWorkerCouldNotStartRunsElsewhereWithoutSpendingARetry) {
  Register("bad", 2);
  Register("good", 1);
  proto::TuningJobSpec spec = Spec("setup", "Random", 6, 3);
  spec.training_job_definition->retry_strategy.reset();
  Submit(spec);
  auto refuse = [&](const std::string& wid) {
    int n = 0;
    std::vector<std::pair<std::string, uint32_t>> mine;
    for (const Trial* x : core_->TrialsOf("setup")) {
      if (x->worker_id == wid && x->state == TrialState::kInProgress && !x->started && !x->Queued()) {
        mine.emplace_back(x->name, x->attempt);
      }
    }
    for (const auto& [name, attempt] : mine) {
      proto::wire::TrialExited e;
      e.trial = name;
      e.attempt = attempt;
      e.status = "InfraError";
      e.secondary_status = "Failed";
      e.failure_reason = "InternalServerError: on worker " + wid + ": cannot run \"/opt/trainer\": No such file";
      core_->OnMessage(wid, e, now_);
      ++n;
    }
    return n;
  };
  std::set<std::string> refused;
  for (int round = 0; round < 6; ++round) {
    for (const Trial* x : core_->TrialsOf("setup")) {
      if (x->worker_id == "bad" && !x->started) refused.insert(x->name);
    }
    if (refuse("bad") == 0) break;
    now_ += 10;
  }
  ASSERT_FALSE(refused.empty());
  EXPECT_NE(core_->FindJob("setup")->waiting_reason.find("rests"), std::string::npos)
      << "bad rests after 3 in a row: " << core_->FindJob("setup")->waiting_reason;
  for (const Trial* x : core_->TrialsOf("setup")) {
    EXPECT_NE(x->state, TrialState::kFailed) << x->name << ": " << x->failure_reason;
    EXPECT_EQ(x->infra_failures, 0) << x->name << ": no retry spent";
  }
  // The good worker runs the job to its end, the refused training jobs among them.
  std::set<std::string> done;
  for (int i = 0; i < 20 && core_->FindJob("setup")->status == "InProgress"; ++i) {
    for (const Trial* x : core_->TrialsOf("setup")) {
      if (x->worker_id != "good" || x->state != TrialState::kInProgress || x->Queued()) continue;
      proto::wire::AssignTrial a;
      a.trial = x->name;
      a.attempt = x->attempt;
      done.insert(x->name);
      Finish("good", a, 0.5);
      break;
    }
    now_ += 10;
  }
  EXPECT_EQ(core_->FindJob("setup")->status, "Completed");
  for (const auto& name : refused) EXPECT_TRUE(done.count(name)) << name << " ran on the good worker";

}

// Refused by every worker (one alone here): it fails at once naming why (an infrastructure
// error: RetryStrategy retries it), not a wait for a worker that does not exist.
TEST_F(CoreTest, AnAttemptNoWorkerCouldStartFailsNamingWhy) {
  Register("solo", 1);
  proto::TuningJobSpec spec = Spec("alone", "Random", 1, 1);
  spec.training_job_definition->retry_strategy.reset();
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  proto::wire::TrialExited e;
  e.trial = a[0].trial;
  e.attempt = a[0].attempt;
  e.status = "InfraError";
  e.secondary_status = "Failed";
  e.failure_reason = "InternalServerError: on worker solo: cannot run \"/opt/trainer\": No such file";
  core_->OnMessage("solo", e, now_);
  const Trial* t = core_->FindTrial(a[0].trial);
  EXPECT_EQ(t->state, TrialState::kFailed);
  EXPECT_EQ(t->failure_reason,
            "InternalServerError: no worker could start it (every worker that can serve it refused: solo): cannot "
            "run \"/opt/trainer\": No such file; check the training image or program path");
  EXPECT_EQ(core_->FindJob("alone")->status, "Failed");
}

// A review: a mistyped program path is missing on every worker. Each training job was refused by
// every worker, each refusal counted against the worker, and after three training jobs every
// worker rested (60 s, then doubling) and the tuning job stalled. Refusals that every worker
// shares are more likely the job's fault: its training jobs fail (after their retries) naming
// it, and the workers are back at once.
TEST_F(CoreTest, AProgramMissingOnEveryWorkerFailsItsTrainingJobsAndRestsNoWorker) {
  Register("w1", 1);
  Register("w2", 1);
  proto::TuningJobSpec spec = Spec("typo", "Random", 4, 2);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{2};
  Submit(spec);
  for (int round = 0; round < 40 && core_->FindJob("typo")->status == "InProgress"; ++round) {
    bool any = false;
    for (const Trial* x : core_->TrialsOf("typo")) {
      if (x->state != TrialState::kInProgress || x->started || x->Queued()) continue;
      const std::string wid = x->worker_id, name = x->name;
      EndWith(wid, name, x->attempt, "InfraError",
              proto::wire::CannotStartReason(wid, "cannot run \"/opt/tranier\": No such file"));
      any = true;
      break;
    }
    if (!any) core_->OnTick(now_ += 1000);
    now_ += 10;
  }
  EXPECT_EQ(core_->FindJob("typo")->status, "Failed");
  ASSERT_EQ(core_->TrialsOf("typo").size(), 4u);
  for (const Trial* x : core_->TrialsOf("typo")) {
    EXPECT_EQ(x->state, TrialState::kFailed) << x->name;
    EXPECT_EQ(x->failure_reason.rfind("InternalServerError: no worker could start it", 0), 0u) << x->failure_reason;
  }
  // A worker that rested for the refusals (they came before anyone knew whose fault they were)
  // is back: a next job with a correct program starts at once.
  auto next = Only<proto::wire::AssignTrial>(Submit(Spec("fixed", "Random", 2, 2)));
  EXPECT_EQ(next.size(), 2u) << core_->FindJob("fixed")->waiting_reason;
}

// A new-user pass (a mistyped --image program, two local workers with attempts queued ahead):
// w1 rests after three refusals of one training job while w2 is busy; then w2
// refuses another of the job's training jobs, which w1 never saw. No worker that can serve it is
// left (w1 rests): the job's own mistake, and w1, resting for the same mistake, is back too (it
// rested the full minute, then longer each time it came back and refused again).
TEST_F(CoreTest, ATrainingJobNoWorkerCouldStartForgivesWorkersRestingForTheSameJobsRefusals) {
  Register("w1", 1);
  Register("w2", 2);
  proto::TuningJobSpec spec = Spec("same", "Random", 6, 3);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{3};
  Submit(spec);
  auto on = [&](const std::string& wid, bool started) {
    std::vector<const Trial*> found;
    for (const Trial* x : core_->TrialsOf("same")) {
      if (x->worker_id == wid && x->state == TrialState::kInProgress && x->started == started) found.push_back(x);
    }
    return found;
  };
  ASSERT_EQ(on("w2", false).size(), 2u);
  const Trial* b = on("w2", false)[0];
  proto::wire::AssignTrial ab;
  ab.trial = b->name;
  ab.attempt = b->attempt;
  Started("w2", ab);  // w2 busy: one running, one not yet started
  auto resting = [&](const std::string& wid) {
    for (const WorkerInfo* w : core_->Workers()) {
      if (w->reg.worker_id == wid) return !w->resting.empty();
    }
    return false;
  };
  const std::string refused = proto::wire::CannotStartReason("w1", "cannot run \"/opt/tranier\": No such file");
  for (int i = 0; i < 5 && !resting("w1"); ++i) {
    auto mine = on("w1", false);
    ASSERT_EQ(mine.size(), 1u) << "round " << i;
    EndWith("w1", mine[0]->name, mine[0]->attempt, "InfraError", refused);
    now_ += 10;
  }
  ASSERT_TRUE(resting("w1"));
  auto other = on("w2", false);
  ASSERT_EQ(other.size(), 1u);
  EXPECT_TRUE(other[0]->setup_refused_by.empty()) << "one w1 never refused";
  EndWith("w2", other[0]->name, other[0]->attempt, "InfraError",
          proto::wire::CannotStartReason("w2", "cannot run \"/opt/tranier\": No such file"));
  EXPECT_FALSE(resting("w1")) << "w1 rests on for the job's own mistake";
}

// A fault pass: a worker whose image mapping is broken was alone for a moment; what it refused
// is retried (RetryStrategy) once a worker that can run it registers.
TEST_F(CoreTest, WhatABrokenWorkerAloneRefusedRunsOnTheWorkerThatComesNext) {
  Register("bad", 1);
  proto::TuningJobSpec spec = Spec("later", "Random", 1, 1);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{1};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  const std::string missing = proto::wire::CannotStartReason("bad", "cannot run \"/opt/trainer\": No such file");
  auto again = Only<proto::wire::AssignTrial>(EndWith("bad", a[0].trial, a[0].attempt, "InfraError", missing));
  ASSERT_EQ(again.size(), 1u) << "retried at once, on the one worker there is";
  Register("good", 1);
  auto moved = Only<proto::wire::AssignTrial>(EndWith("bad", a[0].trial, again[0].attempt, "InfraError", missing));
  ASSERT_EQ(moved.size(), 1u) << "refused again: the worker that came runs it, spending no retry";
  EXPECT_EQ(core_->FindTrial(a[0].trial)->worker_id, "good");
  Finish("good", moved[0], 0.5);
  EXPECT_EQ(core_->FindJob("later")->status, "Completed");
}

// A review: a worker that can never serve the training job (a CPU worker, for a GPU job) is no
// second opinion: the one GPU worker's refusal fails it at once, not after ten requeues to itself.
TEST_F(CoreTest, OnlyWorkersThatCanServeATrainingJobCountAsNotYetTried) {
  RegisterGpuWorker("gpu", 1, 1);
  Register("cpu", 4);
  proto::TuningJobSpec spec = Spec("g5", "Random", 1, 1);
  spec.training_job_definition->resource_config->instance_type = "ml.g5.xlarge";
  spec.training_job_definition->retry_strategy.reset();
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(core_->FindTrial(a[0].trial)->worker_id, "gpu");
  EndWith("gpu", a[0].trial, a[0].attempt, "InfraError",
          proto::wire::CannotStartReason("gpu", "cannot run \"/opt/trainer\": No such file"));
  const Trial* t = core_->FindTrial(a[0].trial);
  EXPECT_EQ(t->state, TrialState::kFailed);
  EXPECT_EQ(t->setup_requeues, 0);
  EXPECT_EQ(core_->FindJob("g5")->status, "Failed");
}

// The attempts a worker had when it began to rest fail in the same instant: one fault, one rest
// of 60 s (a fault pass saw 480 s after one burst).
TEST_F(CoreTest, ABurstOfInfraErrorsWhileAWorkerRestsDoesNotLengthenItsRest) {
  Register("w1", 6);
  proto::TuningJobSpec spec = Spec("burst", "Random", 20, 6);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{10};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_GE(a.size(), 6u);
  for (const auto& x : a) {
    Started("w1", x);
    proto::wire::TrialExited e;
    e.trial = x.trial;
    e.attempt = x.attempt;
    e.status = "InfraError";
    e.secondary_status = "Failed";
    e.failure_reason = "InternalServerError: no space left on device";
    core_->OnMessage("w1", e, now_);
  }
  auto events = core_->Events("", 0, 1000);
  int rests = 0;
  std::string said;
  for (const auto& e : *events) {
    if (e.kind == "WorkerResting") {
      ++rests;
      said = e.message;
    }
  }
  EXPECT_EQ(rests, 1);
  EXPECT_NE(said.find("no new training job for 60 s"), std::string::npos) << said;
  // In the history of the tuning job whose training job's failure began it, too.
  rests = 0;
  for (const auto& e : *core_->Events(spec.hyper_parameter_tuning_job_name.value_or(""), 0, 1000)) {
    rests += e.kind == "WorkerResting";
  }
  EXPECT_EQ(rests, 1);
}

// A review: a worker restarted while it rested (perhaps on a repaired machine) is new capacity,
// but its old rest's deadline stayed and kept a new rest from starting: failing again at once,
// it took and failed work until the old deadline passed.
TEST_F(CoreTest, AWorkerRestartedWhileItRestsRestsAgainWhenItFailsAgain) {
  Register("w1", 3);
  proto::TuningJobSpec spec = Spec("again", "Random", 20, 3);
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{10};
  auto fail_all = [&](const std::vector<proto::wire::AssignTrial>& as) {
    for (const auto& x : as) {
      Started("w1", x);
      EndWith("w1", x.trial, x.attempt, "InfraError", "InternalServerError: no space left on device");
    }
  };
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 3u);
  fail_all(a);  // rests 60 s
  now_ += 10'000;
  ++session_;
  auto b = Only<proto::wire::AssignTrial>(Register("w1", 3));
  ASSERT_EQ(b.size(), 3u) << "restarted: new capacity at once";
  now_ += 10'000;
  fail_all(b);
  int rests = 0;
  for (const auto& e : *core_->Events("", 0, 1000)) rests += e.kind == "WorkerResting";
  EXPECT_EQ(rests, 2) << "it failed again: it rests again";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnTick(now_ += 1000)).empty());
}

// A store whose disk fills up: every write is refused from `full` on (reads still work).
class FillingStore : public JobStore {
 public:
  explicit FillingStore(JobStore* inner) : inner_(inner) {}
  bool full = false;
  bool trials_unreadable = false;  // LoadTrials fails (a disk error while reading)
  bool trials_unwritable = false;  // PutTrial fails, other writes work
  bool slices_fail = false;  // DeleteJobSlice and DeleteJob fail, other writes work
  Status Begin() override { return full ? Full() : inner_->Begin(); }
  Status Commit() override { return full ? Full() : inner_->Commit(); }
  void Rollback() override { inner_->Rollback(); }
  Status PutJob(const JobRow& r) override { return full ? Full() : inner_->PutJob(r); }
  Status PutTrial(const TrialRow& r) override { return full || trials_unwritable ? Full() : inner_->PutTrial(r); }
  Status AppendMetrics(const std::vector<MetricRow>& r) override { return full ? Full() : inner_->AppendMetrics(r); }
  Status AppendEvent(int64_t ts, const std::string& k, const std::string& j, const std::string& t,
                     const std::string& m) override {
    return full ? Full() : inner_->AppendEvent(ts, k, j, t, m);
  }
  Result<std::vector<JobRow>> LoadJobs() override { return inner_->LoadJobs(); }
  Result<std::vector<TrialRow>> LoadTrials() override {
    if (trials_unreadable) return Status::IoError("job store: disk I/O error");
    return inner_->LoadTrials();
  }
  Result<std::vector<MetricRow>> LoadMetrics(const std::string& t) override { return inner_->LoadMetrics(t); }
  Status AppendLogs(const std::vector<LogRow>& r) override { return full ? Full() : inner_->AppendLogs(r); }
  Result<std::vector<LogRow>> LoadLogs(const std::string& t, int64_t a, size_t l) override {
    return inner_->LoadLogs(t, a, l);
  }
  Status TrimLogs(const std::string& t, uint32_t a, uint64_t f, uint64_t l) override {
    return full ? Full() : inner_->TrimLogs(t, a, f, l);
  }
  Status DeleteMetrics(const std::string& t, uint32_t a, const std::string& n) override {
    return full ? Full() : inner_->DeleteMetrics(t, a, n);
  }
  Status DeleteJob(const std::string& n) override { return full || slices_fail ? Full() : inner_->DeleteJob(n); }
  Result<bool> DeleteJobSlice(const std::string& n) override {
    if (full || slices_fail) return Full();
    return inner_->DeleteJobSlice(n);
  }
  Status DeleteTrial(const std::string& n) override { return full ? Full() : inner_->DeleteTrial(n); }
  Result<std::set<std::string>> DeletedTrials(const std::vector<std::string>& n) override {
    return inner_->DeletedTrials(n);
  }
  Result<bool> DeletedUnrecorded(const std::string& j) override { return inner_->DeletedUnrecorded(j); }
  Result<std::vector<EventRow>> LoadEvents(const std::string& j, int64_t a, size_t l) override {
    return inner_->LoadEvents(j, a, l);
  }
  Status PutCordon(const CordonRow& r) override { return full ? Full() : inner_->PutCordon(r); }
  Status DeleteCordon(const std::string& w) override { return full ? Full() : inner_->DeleteCordon(w); }
  Result<std::vector<CordonRow>> LoadCordons() override { return inner_->LoadCordons(); }
  Status PutAlive(int64_t ms) override { return full ? Full() : inner_->PutAlive(ms); }
  Result<int64_t> LoadAlive() override { return inner_->LoadAlive(); }

 private:
  static Status Full() { return Status::IoError("job store: database or disk is full"); }
  JobStore* inner_;
};

// A store error part-way through a deletion (a full or failing disk) leaves the job as SageMaker
// shows it, DeleteFailed with the reason, never back to Completed without what went; deleting it
// again goes on. A failure to store the deletion as begun changes nothing.
TEST_F(CoreTest, ADeletionTheStoreFailsIsDeleteFailedAndGoesOnWhenAskedAgain) {
  FillingStore disk(store_.get());
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("df", "Random", 1, 1)));
  ASSERT_EQ(a.size(), 1u);
  Emit("w1", a[0], std::vector<double>(100, 0.5));
  Exit("w1", a[0], "Completed");
  ASSERT_EQ(*core_->Describe("df")->status.hyper_parameter_tuning_job_status, "Completed");

  disk.full = true;  // the deletion cannot even be stored as begun: nothing changes
  auto refused = core_->DeleteSlice("df", now_);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(*core_->Describe("df")->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_FALSE(core_->Delete("df", now_).ok());
  EXPECT_EQ(*core_->Describe("df")->status.hyper_parameter_tuning_job_status, "Completed");
  EXPECT_EQ(store_->LoadMetrics(a[0].trial)->size(), 100u);

  disk.full = false;
  disk.slices_fail = true;  // begun, then the rows cannot be deleted
  auto failed = core_->DeleteSlice("df", now_);
  ASSERT_FALSE(failed.ok());
  auto d = core_->Describe("df");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.hyper_parameter_tuning_job_status, "DeleteFailed");
  ASSERT_TRUE(d->status.failure_reason.has_value());
  EXPECT_NE(d->status.failure_reason->find("database or disk is full"), std::string::npos) << *d->status.failure_reason;
  EXPECT_NE(d->status.failure_reason->find("hpo delete df"), std::string::npos) << *d->status.failure_reason;
  EXPECT_FALSE(core_->Delete("df", now_).ok());
  EXPECT_EQ(*core_->Describe("df")->status.hyper_parameter_tuning_job_status, "DeleteFailed");

  disk.slices_fail = false;  // asked again once the disk has room
  for (int calls = 0;; ++calls) {
    auto more = core_->DeleteSlice("df", now_);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    EXPECT_EQ(*core_->Describe("df")->status.hyper_parameter_tuning_job_status, "Deleting");
    if (!*more) break;
    ASSERT_LT(calls, 1000);
  }
  ASSERT_TRUE(core_->Delete("df", now_).ok());
  EXPECT_EQ(core_->FindJob("df"), nullptr);
  EXPECT_TRUE(store_->LoadMetrics(a[0].trial)->empty());
}

// A write the store refuses is reported to on_store_failure at once (hpo coordinator and hpo run
// stop there: the core's memory would otherwise run ahead of its disk, acknowledging exit
// reports that a restart would not know).
TEST_F(CoreTest, AWriteTheStoreRefusesIsReportedAtOnce) {
  FillingStore disk(store_.get());
  std::vector<std::string> failures;
  options_.on_store_failure = [&](const Status& s) { failures.push_back(s.message()); };
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("full", "Random", 3, 1)));
  ASSERT_EQ(a.size(), 1u);
  Emit("w1", a[0], {0.5});
  EXPECT_TRUE(failures.empty());
  disk.full = true;
  Exit("w1", a[0], "Completed");
  ASSERT_FALSE(failures.empty()) << "the exit report could not be stored";
  EXPECT_EQ(failures.front(), "job store: database or disk is full");
}

// The newest events of a job, oldest first, read from the newest end (the dashboard read a job's
// whole history from the first event on every render, and past 500,000 showed old ones).
TEST_F(CoreTest, LastEventsAreTheNewestInOrder) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("tail", "Random", 3, 1)));
  ASSERT_EQ(a.size(), 1u);
  Finish("w1", a[0], 0.5);
  auto all = core_->Events("tail", 0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_GE(all->size(), 3u);
  auto last = core_->LastEvents("tail", 2);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->size(), 2u);
  EXPECT_EQ((*last)[0].id, (*all)[all->size() - 2].id);
  EXPECT_EQ((*last)[1].id, all->back().id);
  EXPECT_EQ(core_->LastEvents("nope", 2).status().code(), StatusCode::kNotFound);
  // The store's default (paging through LoadEvents), which other stores inherit, agrees.
  FillingStore paged(store_.get());
  auto by_default = static_cast<JobStore&>(paged).JobStore::LoadLastEvents("tail", 2);
  ASSERT_TRUE(by_default.ok());
  ASSERT_EQ(by_default->size(), 2u);
  EXPECT_EQ((*by_default)[1].id, all->back().id);
}

// A store whose training jobs cannot be read when the core loads it: the core says so
// (LoadStatus), and hpo coordinator and hpo run refuse to serve it. A core that loaded the jobs
// without their training jobs made new ones under the stored names, overwriting completed ones.
TEST_F(CoreTest, AStoreWhoseTrainingJobsCannotBeReadIsNotServed) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("partial", "Random", 3, 1)));
  ASSERT_EQ(a.size(), 1u);
  Emit("w1", a[0], {0.5});
  Exit("w1", a[0], "Completed");
  EXPECT_TRUE(core_->LoadStatus().ok());
  FillingStore disk(store_.get());
  disk.trials_unreadable = true;
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  const Status s = core_->LoadStatus();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "cannot read the training jobs from the state database: job store: disk I/O error");
  disk.trials_unreadable = false;
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  EXPECT_TRUE(core_->LoadStatus().ok());
  EXPECT_EQ(core_->FindTrial(a[0].trial)->state, TrialState::kCompleted) << "nothing was overwritten";
}

// A stop whose training jobs' rows were not written (the coordinator died part-way, or the disk
// refused them) left the job Stopping with those training jobs running on after a restart, and
// asking again did nothing: the job was Stopping. Asked again, it tells them now.
TEST_F(CoreTest, AStopAskedAgainReachesTrainingJobsAnEarlierStopDidNotRecord) {
  Register("w1", 2);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("halt", "Random", 4, 2)));
  ASSERT_EQ(a.size(), 2u);
  for (const auto& x : a) Started("w1", x);
  std::vector<proto::wire::AttemptRef> running;
  for (const auto& x : a) running.push_back({x.trial, x.attempt});
  FillingStore disk(store_.get());
  std::vector<std::string> failures;
  options_.on_store_failure = [&](const Status& s) { failures.push_back(s.message()); };
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  Register("w1", 2, running);
  disk.trials_unwritable = true;
  std::vector<Outgoing> out;
  ASSERT_TRUE(core_->Stop("halt", now_, &out).ok());
  EXPECT_FALSE(failures.empty());
  disk.trials_unwritable = false;
  // The restart: the job row says Stopping, the training jobs' rows say InProgress.
  core_ = std::make_unique<CoordinatorCore>(&disk, options_);
  ASSERT_EQ(core_->FindJob("halt")->status, "Stopping");
  Register("w1", 2, running);
  out.clear();
  ASSERT_TRUE(core_->Stop("halt", now_, &out).ok());
  EXPECT_EQ(Only<proto::wire::StopTrial>(out).size(), 2u) << "both running training jobs are told";
  for (const auto& x : a) EXPECT_EQ(core_->FindTrial(x.trial)->state, TrialState::kStopping);
}

// quick_check when a coordinator opens its store: a damaged file is refused with what to do, not
// read as a store with fewer jobs and trials.
// Someone else's SQLite database in hpo.db's place is refused and left as it was (hpo used to add
// its tables to it, or fail with "no such column: tuning_job").
TEST(JobStoreFile, AForeignSqliteDatabaseIsRefusedAndNotWrittenTo) {
  const std::string path = ::testing::TempDir() + "hpo-foreign-" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE foo(x); CREATE TABLE trials(y); INSERT INTO foo VALUES (1);", nullptr,
                           nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto foreign = SqliteJobStore::Open(path);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(foreign.status().message().find("is an SQLite database but not an hpo job store (its tables: foo, trials)"),
            std::string::npos)
      << foreign.status().message();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table'", -1, &q, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(q), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(q, 0), 2) << "no table of hpo's was added";
  sqlite3_finalize(q);
  sqlite3_close(db);
  std::remove(path.c_str());
  // An empty file (a new store) is still fine.
  {
    auto fresh = SqliteJobStore::Open(path);
    EXPECT_TRUE(fresh.ok()) << fresh.status().ToString();
  }
  // Closed first: removed while open, the store left its -wal and -shm files behind.
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

// A store of an older build kept no names of deleted training jobs: a job deleted then still has
// its training jobs' checkpoints released by its name; one deleted after the upgrade, only by
// the training jobs' own names.
TEST(JobStoreFile, DeletionsFromBeforeTheStoreKeptTrainingJobNamesAreMatchedByTheTuningJob) {
  const std::string path = ::testing::TempDir() + "hpo-older-" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  {
    auto store = SqliteJobStore::Open(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->AppendEvent(1, "JobCreated", "old", "", "").ok());
    ASSERT_TRUE((*store)->AppendEvent(2, "JobDeleted", "old", "", "3 training job records removed").ok());
  }
  {  // as an older build left it
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "DROP TABLE deleted_trials; DELETE FROM meta WHERE key = 'deleted_trials_from';",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = SqliteJobStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto old = (*store)->DeletedUnrecorded("OLD");
  ASSERT_TRUE(old.ok());
  EXPECT_TRUE(*old);
  TrialRow t;
  t.name = "new-001-0000abcd";
  t.tuning_job = "new";
  t.state = "Completed";
  t.detail_json = "{}";
  ASSERT_TRUE((*store)->PutTrial(t).ok());
  ASSERT_TRUE((*store)->DeleteJob("new").ok());
  ASSERT_TRUE((*store)->AppendEvent(3, "JobDeleted", "new", "", "1 training job records removed").ok());
  auto fresh = (*store)->DeletedUnrecorded("new");
  ASSERT_TRUE(fresh.ok());
  EXPECT_FALSE(*fresh) << "deleted after the upgrade: its names are kept";
  auto names = (*store)->DeletedTrials({"new-001-0000abcd", "new-002-0000abcd", "old-001-0000abcd"});
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::set<std::string>{"new-001-0000abcd"});
  store->reset();
  std::remove(path.c_str());
}

// Deleting a job gives its space back to the file system: a long-lived coordinator whose users
// delete old jobs to free the state disk saw hpo.db stay as large as it ever was.
TEST(JobStoreFile, DeletingAJobShrinksTheFile) {
  const std::string path = ::testing::TempDir() + "hpo-shrink-" + std::to_string(::getpid()) + ".db";
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
  auto size = [&] {
    std::error_code ec;
    uintmax_t total = 0;
    for (const char* suffix : {"", "-wal"}) {
      const uintmax_t s = std::filesystem::file_size(path + suffix, ec);
      if (!ec) total += s;
    }
    return total;
  };
  auto s = SqliteJobStore::Open(path);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  JobStore& store = **s;
  for (int i = 0; i < 20; ++i) {
    TrialRow r;
    r.name = "big-" + std::to_string(i);
    r.tuning_job = "big";
    ASSERT_TRUE(store.PutTrial(r).ok());
    std::vector<LogRow> lines;
    for (uint64_t l = 0; l < 500; ++l) lines.push_back({0, r.name, 1, l, std::string(400, 'x')});
    ASSERT_TRUE(store.AppendLogs(lines).ok());
  }
  const uintmax_t before = size();
  EXPECT_GT(before, 4u << 20) << "about 4 MB of log lines";
  // The API deletes a slice at a time first (DeleteJobSlice): the rows, then the pages they
  // freed, so the last call (DeleteJob) has little left to give back; it held the coordinator's
  // core for most of a second per 100 MB when it gave back everything.
  int slices = 0;
  for (;; ++slices) {
    auto more = store.DeleteJobSlice("big");
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ASSERT_LT(slices, 1000);
  }
  EXPECT_GE(slices, 5) << "10,000 log lines at 2,000 a slice, then the pages";
  EXPECT_LT(std::filesystem::file_size(path), before / 2) << "the freed pages went back before DeleteJob";
  ASSERT_TRUE(store.DeleteJob("big").ok());
  const uintmax_t after = size();
  EXPECT_LT(after, before / 8) << before << " -> " << after << " bytes";
  s->reset();
  for (const char* suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
}

TEST(JobStoreFile, ADamagedFileIsRefusedWithWhatToDo) {
  const std::string path = ::testing::TempDir() + "hpo-damaged-" + std::to_string(::getpid()) + ".db";
  std::remove(path.c_str());
  {
    auto s = SqliteJobStore::Open(path);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    for (int i = 0; i < 300; ++i) {
      TrialRow r;
      r.name = "job-" + std::to_string(i);
      r.tuning_job = "job";
      r.detail_json = std::string(200, 'x');
      ASSERT_TRUE((*s)->PutTrial(r).ok());
    }
  }
  ASSERT_TRUE(SqliteJobStore::Open(path).ok()) << "a sound file opens";
  {  // a page in the middle overwritten
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 4096 * 3, SEEK_SET);
    const std::string junk(4096, '\x5a');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto damaged = SqliteJobStore::Open(path);
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(damaged.status().message().find("the job store " + path + " is damaged"), std::string::npos)
      << damaged.status().message();
  EXPECT_NE(damaged.status().message().find("restore it from a backup"), std::string::npos);
  EXPECT_TRUE(SqliteJobStore::Open(path, /*check_integrity=*/false).ok()) << "a read-only look may skip the check";
  std::remove(path.c_str());
  std::remove((path + "-wal").c_str());
  std::remove((path + "-shm").c_str());
}

// A job row whose spec cannot be read was skipped without a word at start; a new job of that
// name then took over its training jobs' rows (Completed 15/15 after the next restart, trials it
// never ran). Now the coordinator names it, refuses the name, and deletes what is left on request.
TEST_F(CoreTest, AJobWhoseRowCannotBeReadIsNamedAndKeepsItsNameUntilDeleted) {
  Register("w1", 1);
  auto a = Only<proto::wire::AssignTrial>(Submit(Spec("dmg", "Random", 2, 1))).at(0);
  Finish("w1", a, 0.5);
  for (const std::string& damage : {std::string("{garbage"), std::string("{}")}) {
    auto rows = store_->LoadJobs();
    ASSERT_TRUE(rows.ok());
    bool found = false;
    for (JobRow r : *rows) {
      if (r.name != "dmg") continue;
      found = true;
      r.spec_json = damage;
      ASSERT_TRUE(store_->PutJob(r).ok());
    }
    ASSERT_TRUE(found) << damage;
    MakeCore();
    EXPECT_FALSE(core_->Describe("dmg").ok()) << damage;
    const auto lines = core_->UnreadableJobs();
    ASSERT_EQ(lines.size(), 1u) << damage;
    EXPECT_NE(lines[0].find("tuning job dmg: stored spec:"), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find("hpo delete dmg"), std::string::npos) << lines[0];
    std::vector<Outgoing> out;
    auto again = core_->Submit(Spec("DMG", "Random", 2, 1), proto::Spelling::kCrd, now_, &out);
    ASSERT_FALSE(again.ok()) << damage;
    EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
    EXPECT_NE(again.status().message().find("cannot be read"), std::string::npos) << again.status().message();
  }
  // Its remains go a slice at a time too (they went in one call, holding the core throughout).
  ASSERT_FALSE(store_->LoadMetrics(a.trial)->empty());
  auto slice = core_->DeleteSlice("dmg", now_);
  ASSERT_TRUE(slice.ok()) << slice.status().ToString();
  EXPECT_TRUE(*slice) << "something of it was deleted";
  EXPECT_TRUE(store_->LoadMetrics(a.trial)->empty());
  EXPECT_EQ(core_->UnreadableJobs().size(), 1u) << "named until Delete";
  ASSERT_TRUE(core_->Delete("dmg", now_).ok());
  EXPECT_TRUE(core_->UnreadableJobs().empty());
  Submit(Spec("dmg", "Random", 2, 1));
  MakeCore();
  EXPECT_EQ(core_->FindTrial(a.trial), nullptr) << "the old job's training job went with it";
  EXPECT_EQ(*core_->Describe("dmg")->status.training_job_status_counters->completed, 0);
}

}  // namespace
}  // namespace hpo::coordinator
