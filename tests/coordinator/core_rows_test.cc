// The stored form of jobs and trials (coordinator/core_rows.h): every stored field survives the
// round trip, the derived ones are left out, and a damaged row never throws.
#include "coordinator/core_rows.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

#include "proto/codec.h"
#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

Trial FullTrial() {
  Trial t;
  t.name = "job-007-1a2b3c4d";
  t.tuning_job = "job";
  t.index = 7;
  t.definition_name = "def-a";
  t.tuned = {{"lr", "0.01"}, {"opt", "adam"}};
  t.hyperparameters = {{"lr", "0.01"}, {"opt", "adam"}, {"epochs", "3"}};
  t.state = TrialState::kInProgress;
  t.secondary = {{"Starting", 10, "Launching"}, {"Training", 20, ""}};
  t.attempt = 3;
  t.worker_id = "w1";
  t.started = true;
  t.creation_ms = 5;
  t.start_ms = 11;
  t.end_ms = 0;
  t.objective = 0.125;
  t.final_metrics = {{"loss", 0.125}, {"acc", 0.9}};
  t.last_seq = 42;
  t.failure_reason = "earlier attempt: worker lost";
  t.infra_failures = 2;
  t.stop_requested = true;
  t.stop_reason = "early stopping";
  t.gpus = {1, 3};
  t.interruptions = 1;
  t.interrupted_on = "w0";
  t.gang = {{"w1", "g1", "ml.g5.xlarge", {1}, ""}, {"w2", "g2", "ml.m5.large", {}, "Completed", 7}};
  t.metric_host = {{"loss", 1}, {"throughput", 0}};
  t.gang_workers = {{1, {"w1", "w2"}}, {3, {"w2", "w1"}}};
  t.after_trial = "job-006-ffffffff";
  t.after_attempt = 2;
  t.assigned_ahead = true;
  t.training_ms = 9000;
  t.spot_training_ms = 4000;
  t.attempt_start_ms = 15;
  t.on_spot = true;
  t.counted = 7;
  return t;
}

void ExpectSameStoredFields(const Trial& a, const Trial& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.tuning_job, b.tuning_job);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.definition_name, b.definition_name);
  EXPECT_EQ(a.tuned, b.tuned);
  EXPECT_EQ(a.hyperparameters, b.hyperparameters);
  EXPECT_EQ(a.state, b.state);
  ASSERT_EQ(a.secondary.size(), b.secondary.size());
  for (size_t i = 0; i < a.secondary.size(); ++i) {
    EXPECT_EQ(a.secondary[i].status, b.secondary[i].status);
    EXPECT_EQ(a.secondary[i].start_ms, b.secondary[i].start_ms);
    EXPECT_EQ(a.secondary[i].message, b.secondary[i].message);
  }
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.worker_id, b.worker_id);
  EXPECT_EQ(a.started, b.started);
  EXPECT_EQ(a.creation_ms, b.creation_ms);
  EXPECT_EQ(a.start_ms, b.start_ms);
  EXPECT_EQ(a.end_ms, b.end_ms);
  EXPECT_EQ(a.objective, b.objective);
  EXPECT_EQ(a.final_metrics, b.final_metrics);
  EXPECT_EQ(a.last_seq, b.last_seq);
  EXPECT_EQ(a.failure_reason, b.failure_reason);
  EXPECT_EQ(a.infra_failures, b.infra_failures);
  EXPECT_EQ(a.stop_requested, b.stop_requested);
  EXPECT_EQ(a.stop_reason, b.stop_reason);
  EXPECT_EQ(a.gpus, b.gpus);
  EXPECT_EQ(a.interruptions, b.interruptions);
  EXPECT_EQ(a.interrupted_on, b.interrupted_on);
  EXPECT_EQ(a.counted, b.counted);
  ASSERT_EQ(a.gang.size(), b.gang.size());
  for (size_t i = 0; i < a.gang.size(); ++i) {
    EXPECT_EQ(a.gang[i].worker_id, b.gang[i].worker_id);
    EXPECT_EQ(a.gang[i].group, b.gang[i].group);
    EXPECT_EQ(a.gang[i].instance_type, b.gang[i].instance_type);
    EXPECT_EQ(a.gang[i].gpus, b.gang[i].gpus);
    EXPECT_EQ(a.gang[i].exit, b.gang[i].exit);
    EXPECT_EQ(a.gang[i].seq, b.gang[i].seq);
  }
  EXPECT_EQ(a.metric_host, b.metric_host);
  EXPECT_EQ(a.gang_workers, b.gang_workers);
  EXPECT_EQ(a.after_trial, b.after_trial);
  EXPECT_EQ(a.after_attempt, b.after_attempt);
  EXPECT_EQ(a.assigned_ahead, b.assigned_ahead);
  EXPECT_EQ(a.training_ms, b.training_ms);
  EXPECT_EQ(a.spot_training_ms, b.spot_training_ms);
  EXPECT_EQ(a.attempt_start_ms, b.attempt_start_ms);
  EXPECT_EQ(a.on_spot, b.on_spot);
}

TEST(CoreRows, EveryStoredFieldOfATrialSurvivesTheRoundTrip) {
  Trial t = FullTrial();
  t.curve = {0.5, 0.25};  // rebuilt from the metric points, not stored
  t.assigned_ms = 99;     // per process, not stored
  const TrialRow row = TrialToRow(t);
  EXPECT_EQ(row.state, "InProgress");
  const Trial back = TrialFromRow(row);
  ExpectSameStoredFields(t, back);
  EXPECT_TRUE(back.curve.empty());
  EXPECT_EQ(back.assigned_ms, 0);
  EXPECT_EQ(TrialToRow(back), row);  // and the row again, byte for byte

  Trial plain;  // defaults: optional fields are left out of the detail and come back as defaults
  plain.name = "job-001-00000000";
  plain.tuning_job = "job";
  plain.index = 1;
  ExpectSameStoredFields(plain, TrialFromRow(TrialToRow(plain)));
}

// Given back before it started (its worker lost while it was queued ahead there): no longer
// queued, but still no training job. Before assigned_ahead was stored, a restart made it one,
// listed and counted InProgress. A row written before then infers it from its queue link.
TEST(CoreRows, ATrialGivenBackBeforeItStartedStaysUnlaunchedAcrossARestart) {
  Trial t;
  t.name = "job-007-00000000";
  t.tuning_job = "job";
  t.index = 7;
  t.state = TrialState::kPending;
  t.attempt = 1;
  t.assigned_ahead = true;
  ASSERT_TRUE(t.Unlaunched());
  EXPECT_TRUE(TrialFromRow(TrialToRow(t)).Unlaunched());
  Trial queued = FullTrial();
  TrialRow old = TrialToRow(queued);
  nlohmann::json d = nlohmann::json::parse(old.detail_json);
  d.erase("assigned_ahead");
  old.detail_json = d.dump();
  EXPECT_TRUE(TrialFromRow(old).assigned_ahead);
}

TEST(CoreRows, AnEndedTrialIsNoLongerQueuedBehindAnother) {
  Trial t = FullTrial();
  t.state = TrialState::kCompleted;
  const Trial back = TrialFromRow(TrialToRow(t));
  EXPECT_EQ(back.state, TrialState::kCompleted);
  EXPECT_FALSE(back.Queued());
}

TEST(CoreRows, ADamagedTrialRowKeepsItsColumnsAndDefaultsTheRestWithoutThrowing) {
  TrialRow row = TrialToRow(FullTrial());
  row.state = "Exploded";
  for (const std::string& detail : {
           std::string("not json"), std::string("[1, 2]"), std::string("null"),
           std::string(R"({"tuned": 5, "hyperparameters": [1], "secondary": [3, {"status": 7}], "final_metrics": "x",
               "objective": "0.5", "last_seq": "many", "started": "yes", "gpus": {"a": 1}, "gang": [{"gpus": "x"}, 4],
               "after": {"trial": 12, "attempt": "two"}, "training_ms": [], "on_spot": {}})"),
       }) {
    row.detail_json = detail;
    Trial t;
    std::string damage;
    ASSERT_NO_THROW(t = TrialFromRow(row, &damage)) << detail;
    EXPECT_NE(damage.find("its state \"Exploded\" is none of hpo's"), std::string::npos) << damage;
    EXPECT_EQ(damage.find("not a JSON object") != std::string::npos, detail.front() != '{') << damage;
    EXPECT_EQ(t.name, "job-007-1a2b3c4d") << detail;
    EXPECT_EQ(t.attempt, 3u) << detail;
    EXPECT_EQ(t.worker_id, "w1") << detail;
    EXPECT_EQ(t.state, TrialState::kFailed) << detail;  // an unknown state
    EXPECT_TRUE(t.tuned.empty()) << detail;
    EXPECT_FALSE(t.objective.has_value()) << detail;
    EXPECT_EQ(t.last_seq, 0u) << detail;
    EXPECT_TRUE(t.gpus.empty()) << detail;
    EXPECT_FALSE(t.Queued()) << detail;
  }
  // What is well-formed in a partly damaged detail is kept.
  row.detail_json = R"({"tuned": {"lr": "0.1"}, "secondary": [3, {"status": "Training", "start_ms": 4}],
                        "gang": [{"worker": "w9", "gpus": "x"}]})";
  const Trial t = TrialFromRow(row);
  EXPECT_EQ(t.tuned, (proto::StringMap{{"lr", "0.1"}}));
  ASSERT_EQ(t.secondary.size(), 1u);
  EXPECT_EQ(t.secondary[0].status, "Training");
  EXPECT_EQ(t.secondary[0].start_ms, 4);
  ASSERT_EQ(t.gang.size(), 1u);
  EXPECT_EQ(t.gang[0].worker_id, "w9");
  EXPECT_TRUE(t.gang[0].gpus.empty());
}

TEST(CoreRows, AJobsStoredFieldsSurviveTheRoundTrip) {
  TuningJob j;
  j.name = "job";
  j.spec = coretest::Spec("job", "Bayesian", 9, 3);
  j.status = "Stopping";
  j.failure_reason = "none yet";
  j.completion_reason = "target";
  j.seed = 12345678901234ull;
  j.creation_ms = 1;
  j.end_ms = 2;
  j.last_modified_ms = 3;
  j.convergence_ms = 4;
  const JobRow row = JobToRow(j);
  TuningJob back;
  ASSERT_TRUE(JobFromRow(row, &back).ok());
  EXPECT_EQ(back.name, j.name);
  EXPECT_EQ(proto::EncodeCreateRequest(back.spec), proto::EncodeCreateRequest(j.spec));
  EXPECT_EQ(back.status, j.status);
  EXPECT_EQ(back.failure_reason, j.failure_reason);
  EXPECT_EQ(back.completion_reason, j.completion_reason);
  EXPECT_EQ(back.seed, j.seed);
  EXPECT_EQ(back.creation_ms, j.creation_ms);
  EXPECT_EQ(back.end_ms, j.end_ms);
  EXPECT_EQ(back.last_modified_ms, j.last_modified_ms);
  EXPECT_EQ(back.convergence_ms, j.convergence_ms);
  EXPECT_EQ(JobToRow(back), row);
}

TEST(CoreRows, AJobWhoseStoredSpecIsDamagedIsAnErrorNamingIt) {
  TuningJob j;
  j.name = "job";
  j.spec = coretest::Spec("job");
  JobRow row = JobToRow(j);
  row.spec_json = "{\"HyperParameterTuningJobName\": ";
  TuningJob back;
  Status st = JobFromRow(row, &back);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("tuning job job: stored spec"), std::string::npos) << st.message();
  row = JobToRow(j);
  row.metadata_json = R"({"convergence_ms": "soon"})";  // damaged metadata: the default
  ASSERT_TRUE(JobFromRow(row, &back).ok());
  EXPECT_EQ(back.convergence_ms, 0);
}

}  // namespace
}  // namespace hpo::coordinator
