// tests/coordinator/core_fixture.h: the coordinator core driven directly, for the core's tests:
// fake workers are message sequences, time is a number, the store is SQLite in memory.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/core.h"
#include "coordinator/job_store.h"
#include "proto/codec.h"

namespace hpo::coordinator::coretest {

inline proto::TuningJobSpec Spec(const std::string& name, const std::string& strategy = "Random", int max_jobs = 6,
                          int parallel = 2) {
  std::string yaml = R"YAML(
hyperParameterTuningJobName: NAME
hyperParameterTuningJobConfig:
  strategy: STRATEGY
  hyperParameterTuningJobObjective: {type_: Minimize, metricName: loss}
  resourceLimits: {maxNumberOfTrainingJobs: MAXJOBS, maxParallelTrainingJobs: PARALLEL}
  parameterRanges:
    categoricalParameterRanges:
    - {name: opt, values: [sgd, adam, rmsprop]}
    - {name: act, values: [relu, tanh]}
trainingJobDefinition:
  staticHyperParameters: {epochs: "3"}
  algorithmSpecification:
    trainingImage: /bin/true
    trainingInputMode: File
    metricDefinitions: [{name: loss, regex: "loss=([0-9.]+)"}]
  roleARN: arn:aws:iam::123456789012:role/hpo-test
  outputDataConfig: {s3OutputPath: /tmp/hpo-out}
  resourceConfig: {instanceType: ml.m5.large, instanceCount: 1, volumeSizeInGB: 10}
  stoppingCondition: {maxRuntimeInSeconds: 3600}
  retryStrategy: {maximumRetryAttempts: 2}
)YAML";
  auto rep = [&](const std::string& k, const std::string& v) {
    for (size_t p; (p = yaml.find(k)) != std::string::npos;) yaml.replace(p, k.size(), v);
  };
  rep("NAME", name);
  rep("STRATEGY", strategy);
  rep("MAXJOBS", std::to_string(max_jobs));
  rep("PARALLEL", std::to_string(parallel));
  auto parsed = proto::ParseSpec(yaml);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  proto::TuningJobSpec spec = parsed->document.spec;
  // More training jobs than the 6 combinations of the ranges: a continuous range too, as
  // SageMaker requires of Random and Bayesian jobs.
  if (max_jobs > 6 && (strategy == "Random" || strategy == "Bayesian")) {
    spec.hyper_parameter_tuning_job_config->parameter_ranges->continuous_parameter_ranges.push_back(
        {"dropout", "0", "0.5", std::nullopt});
  }
  return spec;
}

// A Bayesian job over two continuous hyperparameters x, y in [0, 1].
inline proto::TuningJobSpec BayesSpec(const std::string& name, int max_jobs, int parallel) {
  proto::TuningJobSpec spec = Spec(name, "Bayesian", max_jobs, parallel);
  auto& ranges = spec.hyper_parameter_tuning_job_config->parameter_ranges.emplace();
  for (const char* n : {"x", "y"}) {
    proto::NumericRange r;
    r.name = n;
    r.min_value = "0";
    r.max_value = "1";
    ranges.continuous_parameter_ranges.push_back(r);
  }
  return spec;
}

template <class T>
std::vector<T> Only(const std::vector<Outgoing>& out) {
  std::vector<T> v;
  for (const auto& o : out) {
    if (const auto* m = std::get_if<T>(&o.message)) v.push_back(*m);
  }
  return v;
}

class CoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = SqliteJobStore::Open(":memory:");
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
    MakeCore();
  }
  void MakeCore() { core_ = std::make_unique<CoordinatorCore>(store_.get(), options_); }
  // Rewrites the stored row of training job `trial` with `damage` applied, as a failing disk or a
  // hand in hpo.db would (the core reads it at its next MakeCore).
  void DamageRow(const std::string& trial, const std::function<void(TrialRow&)>& damage) {
    auto rows = store_->LoadTrials();
    ASSERT_TRUE(rows.ok());
    for (TrialRow r : *rows) {
      if (r.name != trial) continue;
      damage(r);
      ASSERT_TRUE(store_->PutTrial(r).ok());
    }
  }
  static CoreOptions TestOptions() {
    CoreOptions o;
    o.lease_ms = 1000;
    o.default_grace_period_s = 1;
    // The scheduler's own decisions, one assignment per free slot; tests of assigning ahead
    // (assign_ahead_test.cc) turn it on.
    o.assign_ahead = false;
    return o;
  }

  // A worker with 2 CPUs and 16 GiB.
  std::vector<Outgoing> Register(const std::string& id, uint32_t slots,
                                 std::vector<proto::wire::AttemptRef> running = {}) {
    proto::wire::Register r = Registration(id, slots);
    r.running = std::move(running);
    return core_->OnMessage(id, r, now_);
  }
  // A worker with `gpus` H200s (indices 0..gpus-1), 16 CPUs and 128 GiB.
  std::vector<Outgoing> RegisterGpuWorker(const std::string& id, uint32_t slots, uint32_t gpus) {
    proto::wire::Register r = Registration(id, slots);
    r.cpus = 16;
    r.memory_mb = 128 * 1024;
    for (uint32_t g = 0; g < gpus; ++g) r.gpus.push_back({g, "GPU-" + std::to_string(g), "NVIDIA H200", 141 * 1024});
    return core_->OnMessage(id, r, now_);
  }
  proto::wire::Register Registration(const std::string& id, uint32_t slots) const {
    proto::wire::Register r;
    r.protocol_version = proto::wire::kProtocolVersion;
    r.worker_id = id;
    r.host = id;
    r.slots = slots;
    r.cpus = 2;
    r.memory_mb = 16384;
    r.session = session_;
    return r;
  }
  std::vector<Outgoing> Submit(const proto::TuningJobSpec& spec) {
    std::vector<Outgoing> out;
    auto arn = core_->Submit(spec, proto::Spelling::kCrd, now_, &out);
    EXPECT_TRUE(arn.ok()) << arn.status().ToString();
    return out;
  }
  // The worker reports the attempt's program started.
  // A heartbeat from `wid` listing the attempts it holds.
  std::vector<Outgoing> Heartbeat(const std::string& wid, std::vector<proto::wire::AttemptRef> running) {
    proto::wire::Heartbeat h;
    h.worker_id = wid;
    h.seq = 1;
    h.running = std::move(running);
    return core_->OnMessage(wid, h, now_);
  }
  std::vector<Outgoing> Started(const std::string& wid, const proto::wire::AssignTrial& a) {
    return core_->OnMessage(wid, StartedMessage(wid, a), now_);
  }
  // The messages a worker sends about an attempt, for a batch (OnMessages) or one at a time.
  static proto::wire::TrialStarted StartedMessage(const std::string& wid, const proto::wire::AssignTrial& a) {
    proto::wire::TrialStarted s;
    s.trial = a.trial;
    s.attempt = a.attempt;
    s.worker_id = wid;
    return s;
  }
  proto::wire::MetricPoints PointsMessage(const proto::wire::AssignTrial& a, const std::vector<double>& losses,
                                          uint64_t seq = 1) const {
    proto::wire::MetricPoints m;
    m.trial = a.trial;
    m.attempt = a.attempt;
    m.seq = seq;
    for (size_t i = 0; i < losses.size(); ++i) m.points.push_back({"loss", losses[i], now_, static_cast<uint32_t>(i)});
    return m;
  }
  // Its exit with `status` (Completed: code 0), after metric batches up to `seq`.
  static proto::wire::TrialExited ExitedMessage(const proto::wire::AssignTrial& a, const std::string& status,
                                                uint64_t seq) {
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.seq = seq;
    x.status = status;
    x.secondary_status = status;
    x.exit_code = status == "Completed" ? 0 : 1;
    x.failure_reason = status == "Failed" ? "AlgorithmError: boom" : "";
    return x;
  }
  // The attempt starts (with its first batch) and emits `losses` as one MetricPoints batch.
  std::vector<Outgoing> Emit(const std::string& wid, const proto::wire::AssignTrial& a, std::vector<double> losses,
                             uint64_t seq = 1) {
    if (seq == 1) Started(wid, a);
    sent_[a.trial] = seq;
    return core_->OnMessage(wid, PointsMessage(a, losses, seq), now_);
  }
  // The attempt ends with `status`, reporting the metric batches Emit sent.
  std::vector<Outgoing> Exit(const std::string& wid, const proto::wire::AssignTrial& a, const std::string& status) {
    return core_->OnMessage(wid, ExitedMessage(a, status, sent_[a.trial]), now_);
  }
  // Sends log lines of an attempt.
  void Log(const std::string& wid, const proto::wire::AssignTrial& a, std::vector<std::string> lines, uint64_t seq = 1,
           uint64_t first = 0) {
    proto::wire::LogLines l;
    l.trial = a.trial;
    l.attempt = a.attempt;
    l.seq = seq;
    l.first_line = first;
    l.lines = std::move(lines);
    core_->OnMessage(wid, l, now_);
  }
  // The worker's report that attempt `attempt` of `trial` ended `status` with `reason` (an
  // InfraError, a start it could not make, a stop); its secondary status is `secondary`, else
  // Failed for errors and `status` otherwise.
  std::vector<Outgoing> EndWith(const std::string& wid, const std::string& trial, uint32_t attempt,
                                const std::string& status, const std::string& reason, std::string secondary = "") {
    proto::wire::TrialExited x;
    x.trial = trial;
    x.attempt = attempt;
    x.status = status;
    x.secondary_status = !secondary.empty() ? secondary
                         : status == "InfraError" || status == "Failed" ? std::string("Failed") : status;
    x.failure_reason = reason;
    return core_->OnMessage(wid, x, now_);
  }
  // The worker's report that an attempt it was told to stop has ended.
  std::vector<Outgoing> StoppedExit(const std::string& wid, const proto::wire::StopTrial& s) {
    proto::wire::TrialExited x;
    x.trial = s.trial;
    x.attempt = s.attempt;
    x.status = "Stopped";
    x.secondary_status = "Stopped";
    return core_->OnMessage(wid, x, now_);
  }
  // Runs one assignment to completion with the given loss.
  std::vector<Outgoing> Finish(const std::string& wid, const proto::wire::AssignTrial& a, double loss,
                               const std::string& status = "Completed") {
    Emit(wid, a, {loss + 1, loss});
    return Exit(wid, a, status);
  }

  std::map<std::string, uint64_t> sent_;  // last MetricPoints seq sent per trial
  CoreOptions options_ = TestOptions();  // change before MakeCore() to test other settings
  std::unique_ptr<SqliteJobStore> store_;
  std::unique_ptr<CoordinatorCore> core_;
  int64_t now_ = 1'000'000;
  uint64_t session_ = 1;  // a worker process; ++ for a restarted one
};

}  // namespace hpo::coordinator::coretest
