// Placement: the instance-type catalog and the fit rule (coordinator/placement.h), then the
// core placing trials on a heterogeneous fleet: GPUs never double-booked (also across a
// coordinator restart), a type nobody can serve reported with the reason, MaxPendingTimeInSeconds.
#include "coordinator/placement.h"

#include <iterator>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/coordinator/core_fixture.h"

namespace hpo::coordinator {
namespace {

using coretest::CoreTest;
using coretest::Only;
using coretest::Spec;

proto::wire::Register Worker(const std::string& id, uint32_t slots, uint32_t cpus, uint64_t memory_gib,
                             std::vector<uint64_t> gpu_memory_gib = {}) {
  proto::wire::Register r;
  r.protocol_version = proto::wire::kProtocolVersion;
  r.worker_id = id;
  r.host = id;
  r.slots = slots;
  r.cpus = cpus;
  r.memory_mb = memory_gib * 1024;
  r.session = 1;
  for (size_t i = 0; i < gpu_memory_gib.size(); ++i) {
    r.gpus.push_back({static_cast<uint32_t>(i), "GPU-" + std::to_string(i), "NVIDIA H200", gpu_memory_gib[i] * 1024});
  }
  return r;
}

TEST(InstanceCatalog, ShipsTheCommonTypesAndReadsOverridesFromJson) {
  InstanceCatalog c = InstanceCatalog::Defaults();
  ASSERT_NE(c.Find("ml.g5.xlarge"), nullptr);
  EXPECT_EQ(c.Find("ml.g5.xlarge")->Describe(), "1 GPU (A10G, 24 GiB), 4 vCPUs, 16 GiB");
  EXPECT_EQ(c.Find("ml.p4d.24xlarge")->gpus, 8u);
  EXPECT_EQ(c.Find("ml.m5.large")->Describe(), "2 vCPUs, 8 GiB");
  EXPECT_EQ(c.Find("ml.x99.huge"), nullptr);

  auto custom = InstanceCatalog::FromJson(R"({"ml.x99.huge": {"gpus": 2, "gpu_model": "B200", "vcpus": 8,
                                               "memory_gib": 64, "gpu_memory_gib": 180}})");
  ASSERT_TRUE(custom.ok()) << custom.status().ToString();
  c.Merge(*custom);
  EXPECT_EQ(c.Find("ml.x99.huge")->Describe(), "2 GPUs (B200, 180 GiB), 8 vCPUs, 64 GiB");
  EXPECT_NE(c.Find("ml.g5.xlarge"), nullptr) << "merging keeps the defaults";

  auto typo = InstanceCatalog::FromJson(R"({"ml.a": {"gpu": 1}})");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("\"ml.a\": unknown key \"gpu\""), std::string::npos) << typo.status().message();
  EXPECT_FALSE(InstanceCatalog::FromJson("[1, 2]").ok());
  EXPECT_FALSE(InstanceCatalog::FromJson(R"({"ml.a": {"vcpus": -1}})").ok());
  EXPECT_FALSE(InstanceCatalog::FromJson(R"({"ml.a": {}})").ok());
  // A fraction of a GPU was truncated to none, and a repeated type kept its later, incomplete entry.
  auto half = InstanceCatalog::FromJson(R"({"ml.a": {"gpus": 0.5}})");
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("gpus must be a whole number, not 0.5"), std::string::npos)
      << half.status().message();
  auto twice = InstanceCatalog::FromJson(R"({"ml.x": {"gpus": 1, "vcpus": 4}, "ml.x": {"gpus": 2}})");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("ml.x"), std::string::npos) << twice.status().message();
}

// Every SageMaker training type has a built-in entry or is one of the few left out on purpose (placement.cc says
// why), so a type added to proto/training_instance_types.inc without an entry fails here by name; an entry that is not
// a SageMaker type is a typo. The spot checks are EC2's numbers, fractional memory included.
TEST(InstanceCatalog, KnowsEverySageMakerTrainingTypeButThoseLeftOutOnPurpose) {
  static constexpr const char* kSageMakerTypes[] = {
#include "proto/training_instance_types.inc"
  };
  // Trainium (no NVIDIA GPU); types whose numbers were not confirmed.
  const std::set<std::string> left_out = {
      "ml.trn1.2xlarge", "ml.trn1.32xlarge", "ml.trn1n.32xlarge", "ml.trn2.48xlarge",
      "ml.g7.2xlarge", "ml.g7.4xlarge", "ml.g7.8xlarge", "ml.g7.12xlarge", "ml.g7.24xlarge", "ml.g7.48xlarge",
      "ml.p6-b300.48xlarge", "ml.p6e-gb200.36xlarge",
  };
  const InstanceCatalog c = InstanceCatalog::Defaults();
  const std::set<std::string> sagemaker(std::begin(kSageMakerTypes), std::end(kSageMakerTypes));
  for (const std::string& type : sagemaker) {
    if (left_out.count(type)) {
      EXPECT_EQ(c.Find(type), nullptr) << type << " has an entry now: take it off the list left out";
    } else {
      EXPECT_NE(c.Find(type), nullptr) << type << " is a SageMaker training type without an entry in "
                                       << "InstanceCatalog::Defaults() (coordinator/placement.cc): add EC2's numbers, "
                                       << "or add it to the types left out there and here";
    }
  }
  for (const std::string& type : c.Types()) {
    EXPECT_TRUE(sagemaker.count(type)) << type << " is in the catalog but not a SageMaker training type";
  }
  for (const std::string& type : left_out) {
    EXPECT_TRUE(sagemaker.count(type)) << type << " is on the list left out but not a SageMaker training type";
  }

  auto describe = [&](const std::string& type) { return c.Find(type) ? c.Find(type)->Describe() : type + " missing"; };
  EXPECT_EQ(describe("ml.t3.medium"), "2 vCPUs, 4 GiB");
  EXPECT_EQ(describe("ml.c5n.9xlarge"), "36 vCPUs, 96 GiB");
  EXPECT_EQ(describe("ml.c5n.xlarge"), "4 vCPUs, 10.5 GiB");
  EXPECT_EQ(describe("ml.c4.xlarge"), "4 vCPUs, 7.5 GiB");
  EXPECT_EQ(describe("ml.m4.10xlarge"), "40 vCPUs, 160 GiB");
  EXPECT_EQ(describe("ml.r8i.96xlarge"), "384 vCPUs, 3072 GiB");
  EXPECT_EQ(describe("ml.g6e.xlarge"), "1 GPU (L40S, 48 GiB), 4 vCPUs, 32 GiB");
  EXPECT_EQ(describe("ml.g6e.12xlarge"), "4 GPUs (L40S, 48 GiB), 48 vCPUs, 384 GiB");
  EXPECT_EQ(describe("ml.p5.4xlarge"), "1 GPU (H100, 80 GiB), 16 vCPUs, 256 GiB");
}

TEST(Fit, AWorkerWithATypeServesExactlyThatType) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  proto::wire::Register w = Worker("w", 2, 2, 8);
  w.instance_type = "ml.m5.xlarge";  // it says so, whatever its CPUs
  EXPECT_TRUE(Fit(c, {"ml.m5.xlarge", ""}, w, 1, {}).now);
  FitResult other = Fit(c, {"ml.m5.large", ""}, w, 1, {});
  EXPECT_FALSE(other.ever);
  EXPECT_EQ(other.why, "worker w serves ml.m5.xlarge, not ml.m5.large");
  w.instance_type = "ml.custom.1";  // not in the catalog: advertised, so served
  EXPECT_TRUE(Fit(c, {"ml.custom.1", ""}, w, 1, {}).now);
}

TEST(Fit, AWorkerWithoutATypeServesWhatItsTotalsCover) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  const proto::wire::Register cpu = Worker("cpu", 2, 2, 24);
  EXPECT_TRUE(Fit(c, {"ml.m5.large", ""}, cpu, 2, {}).now);
  FitResult big = Fit(c, {"ml.m5.xlarge", ""}, cpu, 2, {});
  EXPECT_FALSE(big.ever);
  EXPECT_EQ(big.why, "ml.m5.xlarge needs 4 vCPUs, 16 GiB; worker cpu has 2 CPUs");
  FitResult gpu_type = Fit(c, {"ml.g5.xlarge", ""}, cpu, 2, {});
  EXPECT_FALSE(gpu_type.ever);
  EXPECT_NE(gpu_type.why.find("has 0 GPUs"), std::string::npos) << gpu_type.why;
  FitResult unknown = Fit(c, {"ml.x99.huge", ""}, cpu, 2, {});
  EXPECT_FALSE(unknown.ever);
  EXPECT_NE(unknown.why.find("--instance-catalog"), std::string::npos);

  const proto::wire::Register h200 = Worker("gpu", 4, 16, 128, {141, 141});
  FitResult g5 = Fit(c, {"ml.g5.xlarge", ""}, h200, 4, {});
  EXPECT_TRUE(g5.now) << g5.why;
  EXPECT_EQ(g5.gpus, 1u);
  FitResult busy = Fit(c, {"ml.g5.xlarge", ""}, h200, 4, {0, 1});
  EXPECT_TRUE(busy.ever);
  EXPECT_FALSE(busy.now) << "GPUs are never shared";
  EXPECT_EQ(busy.why, "worker gpu has 0 free GPUs of the 1 needed");
  EXPECT_FALSE(Fit(c, {"ml.g5.12xlarge", ""}, h200, 4, {}).ever) << "4 GPUs needed, 2 there";
  const proto::wire::Register small = Worker("small", 1, 16, 128, {16});
  EXPECT_FALSE(Fit(c, {"ml.g5.xlarge", ""}, small, 1, {}).ever) << "a 16 GiB GPU is not an A10G's 24 GiB";
  // A g4dn's own hardware fits its type: NVML says 15360 MiB for its 16 GiB T4, and the kernel
  // keeps some of its 16 GiB of memory (it was refused, needing 16 GiB of GPU memory).
  proto::wire::Register t4 = Worker("t4", 1, 4, 15, {15});
  EXPECT_TRUE(Fit(c, {"ml.g4dn.xlarge", ""}, t4, 1, {}).now) << Fit(c, {"ml.g4dn.xlarge", ""}, t4, 1, {}).why;
  t4.gpus[0].memory_mb = 12 * 1024;
  EXPECT_FALSE(Fit(c, {"ml.g4dn.xlarge", ""}, t4, 1, {}).ever) << "12 GiB is not a T4's 16";
  EXPECT_FALSE(Fit(c, {"ml.m5.large", ""}, cpu, 0, {}).now) << "no free slot";
}

TEST(Fit, AVolumeLargerThanTheWorkersFreeSpaceNeverFitsAndSaysSo) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  proto::wire::Register w = Worker("w", 1, 4, 16);
  w.disk_mb = 20 * 1024;
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 20}, w, 1, {}).now);
  FitResult f = Fit(c, {"ml.m5.large", "", 21}, w, 1, {});
  EXPECT_FALSE(f.ever);
  EXPECT_EQ(f.why, "worker w has 20 GiB free for trials, the training job asks VolumeSizeInGB 21");
  w.disk_mb = 0;  // not reported: not checked
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 500}, w, 1, {}).now);
}

TEST(Fit, ASpotWorkerServesOnlyHostsThatMayRunOnSpot) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  proto::wire::Register w = Worker("w", 1, 4, 16);
  w.spot = true;
  const FitResult f = Fit(c, {"ml.m5.large", "", 0}, w, 1, {});
  EXPECT_FALSE(f.ever);
  EXPECT_EQ(f.why,
            "worker w is a spot worker (hpo worker --spot), and the training job does not enable managed spot training "
            "(EnableManagedSpotTraining)");
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 0, true, true}, w, 1, {}).now) << "managed spot";
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 0, false, true}, w, 1, {}).now) << "--spot-workers-take all";
  EXPECT_FALSE(Fit(c, {"ml.p4d.24xlarge", "", 0, true, true}, w, 1, {}).ever) << "and still only types it fits";
  w.spot = false;
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 0, true, true}, w, 1, {}).now) << "on-demand serves both";
}

// A security pass: a worker without S3 credentials was given training jobs with s3:// output,
// each failed there as an infrastructure error, and after three it was put to rest, its other
// work blocked. It said so when it registered (Register.no_s3): such hosts do not go there.
TEST(Fit, AWorkerWithoutS3ServesNoTrainingJobThatUsesS3) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  proto::wire::Register w = Worker("w", 1, 4, 16);
  w.no_s3 = true;
  HostRequest s3{"ml.m5.large", "", 0};
  s3.needs_s3 = true;
  const FitResult f = Fit(c, s3, w, 1, {});
  EXPECT_FALSE(f.ever);
  EXPECT_NE(f.why.find("worker w has no S3 credentials"), std::string::npos) << f.why;
  EXPECT_NE(f.why.find("the training job reads or writes s3://"), std::string::npos) << f.why;
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "", 0}, w, 1, {}).now) << "local storage only";
  w.no_s3 = false;
  EXPECT_TRUE(Fit(c, s3, w, 1, {}).now);
}

TEST(Fit, AWorkerInAnInstanceGroupServesOnlyThatGroup) {
  const InstanceCatalog c = InstanceCatalog::Defaults();
  proto::wire::Register w = Worker("w", 1, 4, 16);
  w.instance_group = "train";
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "train"}, w, 1, {}).now);
  EXPECT_FALSE(Fit(c, {"ml.m5.large", "eval"}, w, 1, {}).ever);
  EXPECT_FALSE(Fit(c, {"ml.m5.large", ""}, w, 1, {}).ever);
  w.instance_group.clear();
  EXPECT_TRUE(Fit(c, {"ml.m5.large", "eval"}, w, 1, {}).now) << "a worker in no group serves any group it fits";
}

TEST(PickGpus, TakesTheLowestFreeIndices) {
  const proto::wire::Register w = Worker("gpu", 4, 16, 128, {80, 80, 80, 80});
  EXPECT_EQ(PickGpus(w, {0, 2}, 2), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(PickGpus(w, {0, 1, 2}, 2), (std::vector<uint32_t>{3}));
  EXPECT_TRUE(PickGpus(w, {}, 0).empty());
}

// ---- the core on a heterogeneous fleet ------------------------------------------------------

class PlacementCoreTest : public CoreTest {
 protected:
  // A Random job of two training job definitions, "p4" on ml.p4d.24xlarge and "m5" on ml.m5.large.
  static proto::TuningJobSpec P4AndM5(const std::string& name, int max_jobs, int parallel) {
    proto::TuningJobSpec spec = Spec(name, "Random", max_jobs, parallel);
    auto& cfg = *spec.hyper_parameter_tuning_job_config;
    for (const char* type : {"ml.p4d.24xlarge", "ml.m5.large"}) {
      proto::TrainingJobDefinition d = *spec.training_job_definition;
      d.definition_name = std::string(type).substr(3, 2);
      d.tuning_objective = *cfg.hyper_parameter_tuning_job_objective;
      d.hyper_parameter_ranges = *cfg.parameter_ranges;
      d.resource_config->instance_type = type;
      spec.training_job_definitions.push_back(d);
    }
    cfg.hyper_parameter_tuning_job_objective.reset();
    cfg.parameter_ranges.reset();
    spec.training_job_definition.reset();
    return spec;
  }
  std::vector<Outgoing> Join(const proto::wire::Register& r) { return core_->OnMessage(r.worker_id, r, now_); }
  static proto::TuningJobSpec Typed(const std::string& name, const std::string& type, int max_jobs, int parallel) {
    proto::TuningJobSpec spec = Spec(name, "Random", max_jobs, parallel);
    spec.training_job_definition->resource_config->instance_type = type;
    return spec;
  }
};

TEST_F(PlacementCoreTest, TrialsLandOnlyWhereTheyFitAndGpusAreNeverDoubleBooked) {
  Join(Worker("cpu", 4, 2, 24));
  Join(Worker("gpu", 5, 16, 128, {141, 141}));
  auto gpu_assigns = Only<proto::wire::AssignTrial>(Submit(Typed("g", "ml.g5.xlarge", 6, 4)));
  ASSERT_EQ(gpu_assigns.size(), 2u) << "two GPUs, one per ml.g5.xlarge trial, although 4 may run in parallel";
  std::set<uint32_t> gpus;
  for (const auto& a : gpu_assigns) {
    EXPECT_EQ(core_->FindTrial(a.trial)->worker_id, "gpu");
    ASSERT_EQ(a.gpus.size(), 1u);
    gpus.insert(a.gpus[0]);
  }
  EXPECT_EQ(gpus, (std::set<uint32_t>{0, 1}));
  EXPECT_EQ(core_->FindJob("g")->waiting_reason, "waiting for a free worker that can serve ml.g5.xlarge");

  // A CPU job takes four of the free slots, on either worker, with no GPU.
  auto cpu_assigns = Only<proto::wire::AssignTrial>(Submit(Typed("c", "ml.m5.large", 6, 4)));
  ASSERT_EQ(cpu_assigns.size(), 4u);
  for (const auto& a : cpu_assigns) EXPECT_TRUE(a.gpus.empty());

  // A coordinator restart: the GPU trials re-attach with their GPUs, still not free.
  MakeCore();
  proto::wire::Register again = Worker("gpu", 5, 16, 128, {141, 141});
  again.session = 2;
  for (const auto& a : gpu_assigns) again.running.push_back({a.trial, a.attempt});
  for (const auto& a : cpu_assigns) {
    if (core_->FindTrial(a.trial)->worker_id == "gpu") again.running.push_back({a.trial, a.attempt});
  }
  ASSERT_LT(again.running.size(), 5u) << "the GPU worker must have a free slot for this check";
  auto after = Only<proto::wire::AssignTrial>(Join(again));
  EXPECT_TRUE(after.empty()) << "a free slot but no free GPU: " << (after.empty() ? "" : after[0].trial)
                             << " was given a GPU still held";
  // One GPU trial ends: its GPU goes to the next ml.g5.xlarge trial.
  proto::wire::TrialExited x;
  x.trial = gpu_assigns[0].trial;
  x.attempt = gpu_assigns[0].attempt;
  x.seq = 0;  // no metric batch was sent
  x.status = "Completed";
  auto next = Only<proto::wire::AssignTrial>(core_->OnMessage("gpu", x, now_));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].gpus, std::vector<uint32_t>{gpu_assigns[0].gpus[0]});
}

TEST_F(PlacementCoreTest, ATypeNoWorkerCanServeWaitsWithTheReasonAndMaxPendingTimeEndsIt) {
  options_.lease_ms = 100'000'000;  // the fake worker sends no heartbeats for these two hours
  MakeCore();
  Join(Worker("cpu", 4, 2, 24));
  proto::TuningJobSpec spec = Typed("p4", "ml.p4d.24xlarge", 4, 2);
  spec.training_job_definition->stopping_condition->max_pending_time_in_seconds = 7200;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty());
  const TuningJob* j = core_->FindJob("p4");
  EXPECT_EQ(j->waiting_reason,
            "no registered worker can serve ml.p4d.24xlarge: ml.p4d.24xlarge needs 8 GPUs (A100, 40 GiB), 96 vCPUs, "
            "1152 GiB; worker cpu has 0 GPUs (start a worker on a machine that has that, or give a worker "
            "--instance-type ml.p4d.24xlarge)");
  EXPECT_TRUE(j->trials.empty()) << "no proposal is made for a job that cannot start";
  auto doc = core_->DescribeDocument("p4");
  ASSERT_TRUE(doc.ok());
  bool found = false;
  for (const auto& c : doc->status->conditions) {
    if (c.type == "Waiting") {
      found = true;
      EXPECT_EQ(c.message, j->waiting_reason);
    }
  }
  EXPECT_TRUE(found) << "the CRD status carries the reason (hpo describe -o yaml)";
  // A CPU job is not held up by it.
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Submit(Typed("c", "ml.m5.large", 2, 2))).size(), 2u);

  now_ += 7'199'000;
  core_->OnTick(now_);
  EXPECT_EQ(core_->FindJob("p4")->status, "InProgress");
  now_ += 1'000;
  core_->OnTick(now_);
  const TuningJob* failed = core_->FindJob("p4");
  EXPECT_EQ(failed->status, "Failed");
  EXPECT_NE(failed->failure_reason.find("MaxPendingTimeInSeconds (7200 s) exceeded: no registered worker"),
            std::string::npos)
      << failed->failure_reason;
}

// Every worker gone for MaxPendingTimeInSeconds after some training jobs succeeded: the job
// cannot go on, and ends Completed with its best, as a spent budget ends it. It ended Failed
// ("MaxPendingTimeInSeconds exceeded"), its results aside, and at once, before the training
// jobs it stopped had ended.
TEST_F(PlacementCoreTest, NoWorkerForMaxPendingTimeAfterSuccessesCompletesTheJobWithItsBest) {
  options_.lease_ms = 60'000;  // no heartbeats: the worker is lost a minute after its last word
  MakeCore();
  Join(Worker("cpu", 2, 2, 24));
  proto::TuningJobSpec spec = Typed("gone", "ml.m5.large", 6, 2);
  spec.training_job_definition->stopping_condition->max_pending_time_in_seconds = 7200;
  auto first = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(first.size(), 2u);
  auto next = Only<proto::wire::AssignTrial>(Finish("cpu", first[0], 0.5));
  Finish("cpu", first[1], 0.7);
  ASSERT_FALSE(next.empty());
  now_ += 61'000;
  core_->OnTick(now_);  // lost: what ran there goes back to the queue, and no worker is left
  const TuningJob* j = core_->FindJob("gone");
  ASSERT_EQ(j->waiting_reason.rfind("no registered worker", 0), 0u) << j->waiting_reason;
  now_ += 7'200'000;
  core_->OnTick(now_);
  j = core_->FindJob("gone");
  EXPECT_EQ(j->status, "Completed") << j->failure_reason;
  EXPECT_EQ(j->completion_reason.rfind("MaxPendingTimeInSeconds (7200 s) exceeded: no registered worker", 0), 0u)
      << j->completion_reason;
  const auto d = core_->Describe("gone");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d->status.best_training_job->training_job_name, first[0].trial);
  core_->OnTick(now_ + 1000);
  EXPECT_EQ(core_->FindJob("gone")->status, "Completed") << "it ends once";
}

// A restart: until the workers have had a lease to register again, a job that none registered
// can serve is not "waiting for a worker" yet. Each restart wrote that event for every job in
// progress, a second before the workers were back.
TEST_F(PlacementCoreTest, AfterARestartNoWaitingIsNotedUntilTheWorkersHadALeaseToComeBack) {
  Join(Worker("cpu", 1, 2, 24));
  auto first = Only<proto::wire::AssignTrial>(Submit(Typed("back", "ml.m5.large", 6, 2)));
  ASSERT_EQ(first.size(), 1u);
  MakeCore();  // restarted: no worker has registered again
  auto waiting_events = [&] {
    int n = 0;
    for (const auto& e : *store_->LoadEvents("back", 0, 1000)) n += e.kind == "Waiting";
    return n;
  };
  const int before = waiting_events();
  core_->OnTick(now_);
  now_ += options_.lease_ms / 2;
  core_->OnTick(now_);
  EXPECT_EQ(waiting_events(), before) << core_->FindJob("back")->waiting_reason;
  Join(Worker("cpu", 1, 2, 24));  // back within the lease: nothing was noted
  EXPECT_EQ(waiting_events(), before);
  // A worker that stays away is waited for, and said so, once the lease has passed.
  MakeCore();
  core_->OnTick(now_);
  now_ += options_.lease_ms + 1;
  core_->OnTick(now_);
  EXPECT_EQ(waiting_events(), before + 1);
  EXPECT_EQ(core_->FindJob("back")->waiting_reason.rfind("no registered worker", 0), 0u)
      << core_->FindJob("back")->waiting_reason;
}

// MaxPendingTimeInSeconds counts a retry's wait from when its attempt ended, not from when the
// training job was created: a job that trained for three hours and then met an infrastructure
// error or a spot interruption was failed at once as "pending for 7200 s", its retries unused.
TEST_F(PlacementCoreTest, ARetryAfterALongAttemptIsNotFailedAsPendingTooLong) {
  options_.lease_ms = 100'000'000;  // the fake worker sends no heartbeats for these hours
  MakeCore();
  Join(Worker("cpu", 1, 2, 24));
  proto::TuningJobSpec spec = Typed("long", "ml.m5.large", 1, 1);
  spec.training_job_definition->stopping_condition->max_pending_time_in_seconds = 7200;
  spec.training_job_definition->stopping_condition->max_runtime_in_seconds = 86400;
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{3};
  auto a = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(a.size(), 1u);
  now_ += 3 * 3600 * 1000;  // three hours of training
  auto retry = Only<proto::wire::AssignTrial>(
      EndWith("cpu", a[0].trial, a[0].attempt, "InfraError", "the node's disk went read-only"));
  ASSERT_EQ(retry.size(), 1u) << "retried on the free worker: " << core_->FindTrial(a[0].trial)->failure_reason;
  EXPECT_EQ(retry[0].attempt, a[0].attempt + 1);

  // The same after a spot interruption of the retry.
  now_ += 3 * 3600 * 1000;
  EndWith("cpu", a[0].trial, retry[0].attempt, "Interrupted", "spot capacity reclaimed", "Interrupted");
  const Trial* t = core_->FindTrial(a[0].trial);
  ASSERT_NE(t, nullptr);
  EXPECT_NE(t->state, TrialState::kFailed) << t->failure_reason;
  EXPECT_EQ(t->requeued_ms, now_);
  core_->OnTick(now_ + 1000);
  EXPECT_NE(core_->FindTrial(a[0].trial)->state, TrialState::kFailed) << core_->FindTrial(a[0].trial)->failure_reason;
  // Reloaded from the store, the re-queue time is kept.
  const int64_t requeued = t->requeued_ms;
  MakeCore();
  EXPECT_EQ(core_->FindTrial(a[0].trial)->requeued_ms, requeued);
}

// A type a few edits from one of SageMaker's is a typo: refused with the closest, as SageMaker
// refuses it (the coordinator accepted ml.m5.larg and the job waited for a worker that would
// never come, saying so only in its events). One a registered worker advertises is served.
TEST_F(PlacementCoreTest, ATypoOfASageMakerTypeIsRefusedUnlessAWorkerAdvertisesIt) {
  std::vector<Outgoing> out;
  auto typo = core_->Submit(Typed("typo", "ml.m5.larg", 2, 2), proto::Spelling::kApi, now_, &out);
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(typo.status().message().find("\"ml.m5.larg\" is not a SageMaker training instance type (did you mean "
                                         "\"ml.m5.large\"?)"),
            std::string::npos)
      << typo.status().message();
  EXPECT_EQ(core_->FindJob("typo"), nullptr) << "nothing was made";
  proto::wire::Register w = Worker("odd", 2, 2, 8);
  w.instance_type = "ml.m5.larg";
  Join(w);
  EXPECT_TRUE(core_->Submit(Typed("typo", "ml.m5.larg", 2, 2), proto::Spelling::kApi, now_, &out).ok());
}

// A type that is neither SageMaker's nor the catalog's nor a registered worker's is refused, as
// SageMaker refuses a value outside its list (it was taken for one of one's own "served by a worker
// to come", and `foo` waited with nothing said through the API). Once a worker advertises it, it
// is taken and served there; a catalog entry makes it known before any worker comes.
TEST_F(PlacementCoreTest, AnOwnTypeIsTakenOnceAWorkerAdvertisesItOrTheCatalogHasIt) {
  proto::wire::Register w = Worker("dgx", 2, 64, 512, {80, 80});
  Join(w);
  std::vector<Outgoing> out;
  for (const char* type : {"ml.trn9.huge", "foo"}) {
    auto refused = core_->Submit(Typed("x", type, 2, 2), proto::Spelling::kApi, now_, &out);
    ASSERT_FALSE(refused.ok()) << type;
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(refused.status().message().find("is not a SageMaker training instance type"), std::string::npos)
        << refused.status().message();
    EXPECT_EQ(core_->FindJob("x"), nullptr) << "nothing was made";
  }
  proto::wire::Register typed = Worker("trn", 2, 8, 32);
  typed.instance_type = "ml.trn9.huge";
  Join(typed);
  auto assigns = Only<proto::wire::AssignTrial>(Submit(Typed("x", "ml.trn9.huge", 2, 2)));
  ASSERT_EQ(assigns.size(), 2u);
  EXPECT_EQ(core_->FindTrial(assigns[0].trial)->worker_id, "trn");
  EXPECT_TRUE(core_->FindJob("x")->waiting_reason.empty());

}

// In the catalog, with no worker serving it yet: taken, and the job says what it waits for.
TEST_F(PlacementCoreTest, AnOwnTypeInTheCatalogIsTakenBeforeAnyWorkerServesIt) {
  auto catalog = InstanceCatalog::FromJson(R"({"ml.rack7.a100": {"gpus": 8, "vcpus": 96, "memory_gib": 1024}})");
  ASSERT_TRUE(catalog.ok()) << catalog.status().message();
  options_.catalog.Merge(*catalog);
  MakeCore();
  Join(Worker("dgx", 2, 64, 512, {80, 80}));
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Typed("y", "ml.rack7.a100", 1, 1))).empty());
  EXPECT_NE(core_->FindJob("y")->waiting_reason.find("ml.rack7.a100"), std::string::npos)
      << "[" << core_->FindJob("y")->waiting_reason << "]";
}

// HyperParameterTuningResourceConfig.InstanceConfigs (the SDK's instance_configs): each training
// job runs on the first instance config that can start now, and is given that config.
TEST_F(PlacementCoreTest, InstanceConfigsArePlacedInOrderOfPreferenceAndEachTrainingJobKeepsItsOwn) {
  options_.lease_ms = 100'000'000;  // the fake workers send no heartbeats
  MakeCore();
  Join(Worker("gpu", 4, 16, 128, {141}));  // one GPU: one ml.g5.xlarge at a time
  Join(Worker("cpu", 4, 2, 24));
  proto::TuningJobSpec spec = Spec("ic", "Random", 6, 3);
  auto& d = *spec.training_job_definition;
  d.resource_config.reset();
  auto& h = d.hyper_parameter_tuning_resource_config.emplace();
  h.allocation_strategy = "Prioritized";
  h.instance_configs = {{"ml.g5.xlarge", 1, 50}, {"ml.m5.large", 1, 30}};
  auto assigns = Only<proto::wire::AssignTrial>(Submit(spec));
  ASSERT_EQ(assigns.size(), 3u);
  std::map<std::string, int> types;
  for (const auto& a : assigns) {
    ++types[a.instance_type];
    const Trial* t = core_->FindTrial(a.trial);
    EXPECT_EQ(t->resource_option, a.instance_type == "ml.g5.xlarge" ? 0u : 1u);
    // The worker sees the chosen config as the training job's ResourceConfig.
    const auto def = nlohmann::json::parse(a.spec_json);
    EXPECT_FALSE(def.contains("HyperParameterTuningResourceConfig")) << a.spec_json;
    EXPECT_EQ(def["ResourceConfig"]["InstanceType"], a.instance_type);
    EXPECT_EQ(def["ResourceConfig"]["VolumeSizeInGB"], a.instance_type == "ml.g5.xlarge" ? 50 : 30);
    EXPECT_EQ(a.gpus.size(), a.instance_type == "ml.g5.xlarge" ? 1u : 0u);
    if (a.instance_type == "ml.g5.xlarge") {
      EXPECT_EQ(t->worker_id, "gpu");
    }
  }
  EXPECT_EQ(types, (std::map<std::string, int>{{"ml.g5.xlarge", 1}, {"ml.m5.large", 2}}))
      << "the first goes to the preferred type; the others fall back while its only GPU is taken";

  // After a coordinator restart each training job still has its own instance config.
  MakeCore();
  for (const auto& a : assigns) {
    EXPECT_EQ(core_->FindTrial(a.trial)->resource_option, a.instance_type == "ml.g5.xlarge" ? 0u : 1u) << a.trial;
  }

  // No worker can serve either type: the reason names both.
  Only<proto::wire::AssignTrial>(Join(Worker("cpu", 4, 2, 24)));
  proto::TuningJobSpec big = Spec("big", "Random", 2, 1);
  big.training_job_definition->resource_config.reset();
  big.training_job_definition->hyper_parameter_tuning_resource_config.emplace().instance_configs = {
      {"ml.p4d.24xlarge", 1, 50}, {"ml.p5.48xlarge", 1, 50}};
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(big)).empty());
  core_->OnTick(now_);
  now_ += options_.lease_ms + 1;  // past the restart's lease, in which other workers may come back
  Heartbeat("cpu", {});
  core_->OnTick(now_);
  const std::string why = core_->FindJob("big")->waiting_reason;
  EXPECT_EQ(why.rfind("no registered worker can serve ml.p4d.24xlarge: ml.p4d.24xlarge: ", 0), 0u) << why;
  EXPECT_NE(why.find("; ml.p5.48xlarge: "), std::string::npos) << why;
}

// ---- warm reuse: KeepAlivePeriodInSeconds --------------------------------------------------

TEST_F(PlacementCoreTest, AKeptAliveSlotIsPreferredByItsJobAndHeldFromOthersUntilItExpires) {
  Join(Worker("w1", 1, 2, 24));
  proto::TuningJobSpec a = Typed("keep", "ml.m5.large", 3, 1);
  a.training_job_definition->resource_config->keep_alive_period_in_seconds = 30;
  auto first = Only<proto::wire::AssignTrial>(Submit(a));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(core_->FindTrial(first[0].trial)->worker_id, "w1");
  Join(Worker("w2", 2, 2, 24));  // more free slots, but cold
  proto::wire::TrialExited x;
  x.trial = first[0].trial;
  x.attempt = 1;
  x.status = "Completed";
  x.final_metrics = {{"loss", 1.0}};
  auto next = Only<proto::wire::AssignTrial>(core_->OnMessage("w1", x, now_));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(core_->FindTrial(next[0].trial)->worker_id, "w1") << "the warm host, not the emptier cold one";

  // A second job cannot take a slot kept warm for the first: w1's next free slot stays "keep"'s.
  x.trial = next[0].trial;
  now_ += 1000;
  auto after = core_->OnMessage("w1", x, now_);  // keep's second ends: w1 warm again, keep's third goes there
  auto third = Only<proto::wire::AssignTrial>(after);
  ASSERT_EQ(third.size(), 1u);
  EXPECT_EQ(core_->FindTrial(third[0].trial)->worker_id, "w1");
  proto::TuningJobSpec b = Typed("other", "ml.m5.large", 4, 3);
  auto others = Only<proto::wire::AssignTrial>(Submit(b));
  EXPECT_EQ(others.size(), 2u) << "w2's two slots; w1 is busy";
  x.trial = third[0].trial;  // keep's last training job ends: its job completes, the slot goes
  auto last = core_->OnMessage("w1", x, now_);
  EXPECT_EQ(core_->FindJob("keep")->status, "Completed");
  ASSERT_EQ(others.size(), 2u);
  Heartbeat("w2", {{others[0].trial, others[0].attempt}, {others[1].trial, others[1].attempt}});  // w2 is not lost
  auto freed = Only<proto::wire::AssignTrial>(core_->OnTick(now_ + 10));
  ASSERT_EQ(freed.size(), 1u) << "a completed job keeps nothing warm";
  EXPECT_EQ(core_->FindTrial(freed[0].trial)->worker_id, "w1");
}

TEST_F(PlacementCoreTest, AWarmSlotIsHeldFromOtherJobsUntilTheKeepAlivePeriodEnds) {
  options_.lease_ms = 60000;  // no heartbeats in this test
  MakeCore();
  Join(Worker("w1", 1, 2, 24));
  Join(Worker("w2", 1, 2, 24));
  proto::TuningJobSpec a = Typed("grid", "ml.m5.large", 2, 2);
  a.hyper_parameter_tuning_job_config->strategy = "Grid";
  a.hyper_parameter_tuning_job_config->parameter_ranges->categorical_parameter_ranges = {{"opt", {"sgd", "adam"}}};
  a.training_job_definition->resource_config->keep_alive_period_in_seconds = 5;
  auto both = Only<proto::wire::AssignTrial>(Submit(a));
  ASSERT_EQ(both.size(), 2u);
  const std::string on = core_->FindTrial(both[0].trial)->worker_id;
  proto::wire::TrialExited x;
  x.trial = both[0].trial;
  x.attempt = 1;
  x.status = "Completed";
  core_->OnMessage(on, x, now_);  // the grid has nothing more to propose; its other trial still runs
  auto waiting = Only<proto::wire::AssignTrial>(Submit(Typed("other", "ml.m5.large", 2, 1)));
  EXPECT_TRUE(waiting.empty()) << "the idle slot is kept warm for grid";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnTick(now_ + 4000)).empty());
  auto later = Only<proto::wire::AssignTrial>(core_->OnTick(now_ + 5001));
  ASSERT_EQ(later.size(), 1u) << "the keep-alive period is over";
  EXPECT_EQ(core_->FindTrial(later[0].trial)->tuning_job, "other");
  EXPECT_EQ(core_->FindTrial(later[0].trial)->worker_id, on);
}

// A job of two training job definitions, one for a type no worker has and one for a type whose
// worker is busy, waited "for a free worker that can serve" the type no worker has.
TEST_F(PlacementCoreTest, AJobOfTwoDefinitionsWaitsForTheTypeThatCanRunNamingIt) {
  auto m = Worker("m", 1, 8, 32);
  m.instance_type = "ml.m5.large";
  Join(m);
  proto::TuningJobSpec busy = Spec("busy", "Random", 1, 1);
  busy.training_job_definition->resource_config->instance_type = "ml.m5.large";
  ASSERT_EQ(Only<proto::wire::AssignTrial>(Submit(busy)).size(), 1u);
  proto::TuningJobSpec spec = P4AndM5("two", 2, 1);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty());
  EXPECT_EQ(core_->FindJob("two")->waiting_reason, "waiting for a free worker that can serve ml.m5.large");
}

// A multi-definition pass: one definition's type no worker serves (ml.p4d.24xlarge) held the
// whole job: its first such training job waited, and no other was created while both ml.m5.large
// workers stood idle; then (a regression pass) two such training jobs held both of its slots.
// They hold none of the others': the other definition's go on to the end, and the job says why.
TEST_F(PlacementCoreTest, ATrainingJobNoWorkerServesHoldsNoSlotOfTheOtherDefinitions) {
  for (const char* id : {"m1", "m2"}) {
    auto m = Worker(id, 1, 8, 32);
    m.instance_type = "ml.m5.large";
    Join(m);
  }
  proto::TuningJobSpec spec = P4AndM5("two", 12, 2);
  std::vector<proto::wire::AssignTrial> running = Only<proto::wire::AssignTrial>(Submit(spec));
  size_t ran = 0;
  for (int round = 0; round < 40 && !running.empty(); ++round) {
    ASSERT_LE(running.size(), 2u);
    const proto::wire::AssignTrial a = running.front();
    running.erase(running.begin());
    EXPECT_EQ(core_->FindTrial(a.trial)->definition_name, "m5");
    ++ran;
    for (const auto& next : Only<proto::wire::AssignTrial>(Finish(core_->FindTrial(a.trial)->worker_id, a, 1.0))) {
      running.push_back(next);
    }
  }
  const TuningJob* j = core_->FindJob("two");
  size_t p4 = 0;
  for (const Trial* t : core_->TrialsOf("two")) p4 += t->definition_name == "p4";
  ASSERT_GE(p4, 1u) << "(Random picks either definition)";
  // The p4 training jobs wait; every m5 one ran, two at a time at most, to MaxNumberOfTrainingJobs.
  const size_t created = core_->TrialsOf("two").size();
  EXPECT_EQ(created, 12u) << p4 << " p4 training jobs wait";
  EXPECT_EQ(ran + p4, created) << "every m5 one ran";
  EXPECT_GE(ran, 2u);
  EXPECT_EQ(j->waiting_reason.rfind("no registered worker can serve ml.p4d.24xlarge", 0), 0u) << j->waiting_reason;
  EXPECT_EQ(j->status, "InProgress");
  // A worker that serves them joins: they run, within MaxParallelTrainingJobs, and the job ends.
  auto p4d = Worker("p4", 4, 96, 1152, std::vector<uint64_t>(8, 40));
  p4d.instance_type = "ml.p4d.24xlarge";
  std::vector<proto::wire::AssignTrial> waiting = Only<proto::wire::AssignTrial>(Join(p4d));
  for (int round = 0; round < 40 && !waiting.empty(); ++round) {
    ASSERT_LE(waiting.size(), 2u);
    const proto::wire::AssignTrial a = waiting.front();
    waiting.erase(waiting.begin());
    for (const auto& next : Only<proto::wire::AssignTrial>(Finish("p4", a, 2.0))) waiting.push_back(next);
  }
  EXPECT_EQ(core_->FindJob("two")->status, "Completed");
}

// ---- multi-host training jobs: gangs -------------------------------------------------------

class GangTest : public PlacementCoreTest {
 protected:
  // Two groups: "train" (2 x ml.m5.large) and "eval" (1 x ml.m5.large): a three-host gang.
  static proto::TuningJobSpec Groups(const std::string& name, int max_jobs = 2, int parallel = 1) {
    proto::TuningJobSpec spec = Spec(name, "Random", max_jobs, parallel);
    auto& rc = *spec.training_job_definition->resource_config;
    rc.instance_type.reset();
    rc.instance_count.reset();
    rc.instance_groups = {{"ml.m5.large", 2, "train"}, {"ml.m5.large", 1, "eval"}};
    return spec;
  }
  // Two groups of different types: "train" (1 x ml.m5.large) and "eval" (1 x ml.c5.xlarge).
  static proto::TuningJobSpec MixedGroups(const std::string& name) {
    proto::TuningJobSpec spec = Spec(name, "Random", 1, 1);
    auto& rc = *spec.training_job_definition->resource_config;
    rc.instance_type.reset();
    rc.instance_count.reset();
    rc.instance_groups = {{"ml.m5.large", 1, "train"}, {"ml.c5.xlarge", 1, "eval"}};
    return spec;
  }
  // A worker of 1 slot that says it is `type`.
  std::vector<Outgoing> JoinTyped(const std::string& id, const std::string& type) {
    auto w = Worker(id, 1, 8, 32);
    w.instance_type = type;
    return Join(w);
  }
  std::vector<Outgoing> Exited(const std::string& wid, const proto::wire::AssignTrial& a, const std::string& status,
                               std::vector<proto::wire::FinalMetric> finals = {}) {
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.status = status;
    x.secondary_status = status;
    x.exit_code = status == "Completed" ? 0 : 1;
    x.failure_reason = status == "Completed" ? "" : status + " on " + wid;
    x.final_metrics = std::move(finals);
    return core_->OnMessage(wid, x, now_);
  }
  // A host's start and its Completed report, dated `worker_ms` by its worker's clock.
  void StartedAt(const std::string& wid, const proto::wire::AssignTrial& a, int64_t worker_ms) {
    proto::wire::TrialStarted st = StartedMessage(wid, a);
    st.started_at_ms = worker_ms;
    core_->OnMessage(wid, st, now_);
  }
  void CompletedAt(const std::string& wid, const proto::wire::AssignTrial& a, int64_t worker_ms) {
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.status = x.secondary_status = "Completed";
    x.exit_code = 0;
    x.ended_at_ms = worker_ms;
    core_->OnMessage(wid, x, now_);
  }
  std::string WorkerOf(const std::vector<Outgoing>& out, const std::string& host) {
    for (const auto& o : out) {
      if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message); a && a->current_host == host) {
        return o.worker_id;
      }
    }
    return "";
  }  // A job `name` of three two-host training jobs, one at a time, whose first attempt started on
  // the joined workers: its assignments and the workers of algo-1 and algo-2.
  struct TwoHosts {
    std::vector<proto::wire::AssignTrial> first;
    std::string w1, w2;
  };
  TwoHosts StartTwoHostGang(const std::string& name) {
    proto::TuningJobSpec spec = Spec(name, "Random", 3, 1);
    spec.training_job_definition->resource_config->instance_count = 2;
    auto out = Submit(spec);
    TwoHosts g{Only<proto::wire::AssignTrial>(out), WorkerOf(out, "algo-1"), WorkerOf(out, "algo-2")};
    EXPECT_EQ(g.first.size(), 2u) << core_->FindJob(name)->waiting_reason;
    if (g.first.size() == 2) {
      for (const std::string& w : {g.w1, g.w2}) Started(w, g.first[0]);
    }
    return g;
  }
  // What `wid`'s exit report of `a` and the tick after it assign.
  std::vector<proto::wire::AssignTrial> AssignedAfterExit(const std::string& wid, const proto::wire::AssignTrial& a) {
    auto assigned = Only<proto::wire::AssignTrial>(Exited(wid, a, "Stopped"));
    for (const auto& n : Only<proto::wire::AssignTrial>(core_->OnTick(now_))) assigned.push_back(n);
    return assigned;
  }

  // The fleet joined and one three-host training job of a job `name` started on every host.
  struct RunningGang {
    proto::wire::AssignTrial a;
    std::string w1, w2, w3;  // the workers of algo-1, algo-2, algo-3
  };
  // `retries`: RetryStrategy.MaximumRetryAttempts (none: no RetryStrategy).
  RunningGang StartGang(const std::string& name, std::optional<int> retries = 2) {
    for (const auto& w : Fleet()) Join(w);
    proto::TuningJobSpec spec = Groups(name, 1, 1);
    spec.training_job_definition->retry_strategy.reset();
    if (retries) spec.training_job_definition->retry_strategy = proto::RetryStrategy{*retries};
    auto out = Submit(spec);
    auto assigns = Only<proto::wire::AssignTrial>(out);
    EXPECT_EQ(assigns.size(), 3u);
    if (assigns.empty()) return {};
    RunningGang g{assigns[0], WorkerOf(out, "algo-1"), WorkerOf(out, "algo-2"), WorkerOf(out, "algo-3")};
    for (const std::string& w : {g.w1, g.w2, g.w3}) Started(w, g.a);
    return g;
  }
  // The hosts' workers `alive` of the running gang attempt `a` heart-beat through a lease and the
  // others' do not: the tick that finds those lost, and what it sent.
  std::vector<Outgoing> LoseAllBut(const proto::wire::AssignTrial& a, const std::vector<std::string>& alive) {
    now_ += options_.lease_ms / 2;
    for (const auto& w : alive) core_->OnMessage(w, proto::wire::Heartbeat{w, 2, 0, {{a.trial, a.attempt}}}, now_);
    now_ += options_.lease_ms / 2 + 10;
    return core_->OnTick(now_);
  }
  // The workers told GangPeersEnded in `sent`, in order.
  static std::vector<std::string> Told(const std::vector<Outgoing>& sent) {
    std::vector<std::string> to;
    for (const auto& o : sent) {
      if (std::get_if<proto::wire::GangPeersEnded>(&o.message)) to.push_back(o.worker_id);
    }
    return to;
  }
  std::vector<proto::wire::Register> Fleet() {
    auto a = Worker("a", 1, 2, 8);
    a.instance_group = "train";
    auto b = Worker("b", 1, 2, 8);
    b.instance_group = "train";
    auto c = Worker("c", 1, 2, 8);
    c.instance_group = "eval";
    auto d = Worker("d", 1, 2, 8);  // no group: serves any it fits
    return {a, b, c, d};
  }
};

TEST_F(GangTest, AThreeHostTwoGroupTrialStartsOnDistinctFittingWorkersAllAtOnce) {
  auto fleet = Fleet();
  for (size_t i = 0; i < 2; ++i) Join(fleet[i]);  // a, b: too few for three hosts
  auto out = Submit(Groups("gang"));
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(out).empty()) << "no partial gang";
  EXPECT_NE(core_->FindJob("gang")->waiting_reason.find("worker a serves only instance group train"), std::string::npos)
      << core_->FindJob("gang")->waiting_reason;
  out = Join(fleet[2]);  // c (eval): now it fits
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  std::set<std::string> workers, hosts;
  for (const auto& o : out) {
    const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message);
    if (!a) continue;
    workers.insert(o.worker_id);
    hosts.insert(a->current_host);
    EXPECT_EQ(a->trial, assigns[0].trial);
    EXPECT_EQ(a->attempt, 1u);
    EXPECT_EQ(a->hosts, (std::vector<std::string>{"algo-1", "algo-2", "algo-3"}));
    ASSERT_EQ(a->instance_groups.size(), 2u);
    EXPECT_EQ(a->instance_groups[0].name, "train");
    EXPECT_EQ(a->instance_groups[0].hosts, (std::vector<std::string>{"algo-1", "algo-2"}));
    EXPECT_EQ(a->instance_groups[1].hosts, (std::vector<std::string>{"algo-3"}));
    EXPECT_EQ(a->instance_group, a->current_host == "algo-3" ? "eval" : "train");
    EXPECT_EQ(a->host_addresses.size(), 3u);
  }
  EXPECT_EQ(workers, (std::set<std::string>{"a", "b", "c"}));
  EXPECT_EQ(hosts, (std::set<std::string>{"algo-1", "algo-2", "algo-3"}));
  EXPECT_EQ(WorkerOf(out, "algo-3"), "c") << "the eval host on the eval worker";
  EXPECT_EQ(assigns[0].host_addresses.at("algo-3"), "c");
  EXPECT_EQ(core_->FindTrial(assigns[0].trial)->gang.size(), 3u);
}

TEST_F(GangTest, ItCompletesWhenEveryHostHasWithAlgo1sMetricsWhereItHasThemAndEndsAtTheFirstFailure) {
  for (const auto& w : Fleet()) Join(w);
  auto out = Submit(Groups("gang", 2, 1));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const std::string trial = assigns[0].trial;
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2"), w3 = WorkerOf(out, "algo-3");
  for (const std::string& w : {w1, w2, w3}) Started(w, assigns[0]);
  Exited(w2, assigns[0], "Completed", {{"loss", 9.0}});  // counts until a lower host reports it
  EXPECT_EQ(core_->FindTrial(trial)->state, TrialState::kInProgress);
  EXPECT_EQ(*core_->FindTrial(trial)->objective, 9.0);
  Exited(w1, assigns[0], "Completed", {{"loss", 0.25}});  // algo-1's takes it over
  EXPECT_EQ(core_->FindTrial(trial)->state, TrialState::kInProgress) << "algo-3 still runs";
  auto next = Exited(w3, assigns[0], "Completed");
  EXPECT_EQ(core_->FindTrial(trial)->state, TrialState::kCompleted);
  EXPECT_EQ(*core_->FindTrial(trial)->objective, 0.25);
  // The next gang starts at once; its algo-2 fails: the attempt fails and the others are stopped.
  auto second = Only<proto::wire::AssignTrial>(next);
  ASSERT_EQ(second.size(), 3u);
  std::string s2;
  for (const auto& o : next) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message); a && a->current_host == "algo-2") s2 = o.worker_id;
  }
  auto stops = Only<proto::wire::StopTrial>(Exited(s2, second[0], "Failed"));
  EXPECT_EQ(stops.size(), 2u) << "the other two hosts are stopped";
  EXPECT_EQ(core_->FindTrial(second[0].trial)->state, TrialState::kFailed);
  EXPECT_EQ(core_->Workers().size(), Fleet().size());
}

// A multi-host training job whose hosts ended while the coordinator was down: it ends when its
// last host did, by the workers' clocks (each shifted by the offset learnt from its start), not
// when the reports came (a CloudWatch pass: TrainingEndTime at the restart, 12 s of training for
// 3). A single-host job was already dated so.
TEST_F(GangTest, AMultiHostTrainingJobHeardLateEndsWhenItsLastHostDid) {
  for (const auto& w : Fleet()) Join(w);
  auto out = Submit(Groups("late", 1, 1));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2"), w3 = WorkerOf(out, "algo-3");
  const int64_t skew = 7'000;  // each worker's clock is 7 s behind the coordinator's
  for (const std::string& w : {w1, w2, w3}) StartedAt(w, assigns[0], now_ - skew);
  const int64_t started = now_;
  now_ += 12'000;  // the reports come 12 s on; the hosts ended 2, 3 and 2.5 s after the start
  const std::vector<std::pair<std::string, int64_t>> ends = {{w1, 2'000}, {w2, 3'000}, {w3, 2'500}};
  for (const auto& [w, after] : ends) CompletedAt(w, assigns[0], started - skew + after);
  const Trial* t = core_->FindTrial(assigns[0].trial);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->state, TrialState::kCompleted);
  std::string transitions;
  for (const auto& st : t->secondary) transitions += st.status + "@" + std::to_string(st.start_ms - started) + " ";
  EXPECT_EQ(t->training_ms, 3'000) << "from the start to algo-2's end, not to the reports: " << transitions;
  ASSERT_FALSE(t->secondary.empty());
  EXPECT_EQ(t->secondary.back().start_ms, started + 3'000) << "TrainingEndTime: when the last host ended";
}

// As above, the coordinator restarted between the start and the reports (it forgets what it
// learnt of the workers' clocks): each host's run, start and end by its own worker's clock, kept
// with the attempt, places its end (a regression pass: 20 s of training for 6 across an outage).
TEST_F(GangTest, AMultiHostTrainingJobEndedInAnOutageEndsWhenItsLastHostDidAcrossARestart) {
  for (const auto& w : Fleet()) Join(w);
  auto out = Submit(Groups("late", 1, 1));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2"), w3 = WorkerOf(out, "algo-3");
  const std::map<std::string, int64_t> skew = {{w1, 7'000}, {w2, -3'000}, {w3, 11'000}};  // clocks disagree
  for (const std::string& w : {w1, w2, w3}) StartedAt(w, assigns[0], now_ - skew.at(w));
  const int64_t started = now_;
  now_ += 2'000;
  MakeCore();  // killed and started again 18 s on
  now_ += 18'000;
  for (const auto& w : Fleet()) {
    auto r = w;
    if (skew.count(w.worker_id)) r.running = {{assigns[0].trial, assigns[0].attempt}};
    core_->OnMessage(w.worker_id, r, now_);
  }
  for (const auto& [w, after] : std::vector<std::pair<std::string, int64_t>>{{w2, 5'000}, {w3, 6'000}, {w1, 6'500}}) {
    CompletedAt(w, assigns[0], started - skew.at(w) + after);
  }
  const Trial* t = core_->FindTrial(assigns[0].trial);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->state, TrialState::kCompleted);
  EXPECT_EQ(t->training_ms, 6'500) << "to algo-1's end, not to the reports after the restart";
  ASSERT_FALSE(t->secondary.empty());
  EXPECT_EQ(t->secondary.back().start_ms, started + 6'500);
}

// A heterogeneous cluster's trainers are often a later instance group than its data hosts (as in
// examples/instance-groups.yaml): only algo-1's metrics used to count, so such a job never had an
// objective. Every host reports; each numbers its own batches and lines; a metric's values are
// those of the lowest host that reports it, also after a restart of the coordinator.
TEST_F(GangTest, EveryHostReportsAndAMetricIsTheLowestReportingHostsAcrossARestart) {
  const auto [a, w1, w2, w3] = StartGang("gang");
  ASSERT_FALSE(a.trial.empty());
  auto batch = [&](const std::string& wid, uint64_t seq, std::vector<std::pair<std::string, double>> points) {
    proto::wire::MetricPoints m;
    m.trial = a.trial;
    m.attempt = a.attempt;
    m.seq = seq;
    for (const auto& [name, v] : points) m.points.push_back({name, v, now_, 0});
    return !Only<proto::wire::Ack>(core_->OnMessage(wid, m, now_)).empty();  // acknowledged
  };
  // algo-3 (the eval group, listed second) prints the objective, algo-2 another metric.
  EXPECT_TRUE(batch(w3, 1, {{"loss", 0.9}}));
  EXPECT_TRUE(batch(w3, 2, {{"loss", 0.7}}));
  EXPECT_TRUE(batch(w2, 1, {{"throughput", 1200}})) << "algo-2's first batch is not a repeat of algo-3's";
  const Trial* t = core_->FindTrial(a.trial);
  ASSERT_TRUE(t->objective);
  EXPECT_EQ(*t->objective, 0.7);
  EXPECT_EQ(t->final_metrics.at("throughput"), 1200);
  EXPECT_FALSE(batch(w3, 4, {{"loss", 0.1}})) << "a gap in algo-3's batches waits for the missing one";
  EXPECT_EQ(*t->objective, 0.7);
  // algo-2 starts printing the loss too: the lower host takes it over, algo-3's points go.
  EXPECT_TRUE(batch(w2, 2, {{"loss", 0.5}}));
  EXPECT_TRUE(batch(w3, 3, {{"loss", 0.3}}));
  EXPECT_EQ(*t->objective, 0.5) << "algo-3's later values no longer count";
  auto stored = store_->LoadMetrics(a.trial);
  ASSERT_TRUE(stored.ok());
  std::vector<double> losses;
  for (const auto& r : *stored) {
    if (r.name == "loss") losses.push_back(r.value);
  }
  EXPECT_EQ(losses, std::vector<double>{0.5});
  // Log lines: each host's own numbers, kept apart.
  for (const std::string& w : {w1, w3}) Log(w, a, {"hello from " + w});
  auto logs = core_->Logs(a.trial, 0, 100);
  ASSERT_TRUE(logs.ok());
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ(LogLineHost((*logs)[0].line), 1u);
  EXPECT_EQ(LogLineHost((*logs)[1].line), 3u);
  EXPECT_EQ(LogLineNumber((*logs)[1].line), 0u);
  EXPECT_EQ((*logs)[1].text, "hello from " + w3);

  // The coordinator restarts: each host's count and each metric's host are kept.
  MakeCore();
  for (const auto& w : Fleet()) {
    auto r = w;
    r.running = {{a.trial, a.attempt}};
    if (w.worker_id != w1 && w.worker_id != w2 && w.worker_id != w3) r.running.clear();
    core_->OnMessage(w.worker_id, r, now_);
  }
  t = core_->FindTrial(a.trial);
  ASSERT_EQ(t->state, TrialState::kInProgress);
  EXPECT_TRUE(batch(w3, 3, {{"loss", 0.3}})) << "a repeat of an applied batch is acknowledged again";
  EXPECT_TRUE(batch(w3, 4, {{"loss", 0.1}}));
  EXPECT_EQ(*t->objective, 0.5);
  // algo-3's exit waits for its fifth batch, which it says it sent.
  proto::wire::TrialExited x;
  x.trial = a.trial;
  x.attempt = a.attempt;
  x.seq = 5;
  x.status = x.secondary_status = "Completed";
  x.exit_code = 0;
  x.final_metrics = {{"loss", 0.05}};
  EXPECT_TRUE(Only<proto::wire::Ack>(core_->OnMessage(w3, x, now_)).empty());
  EXPECT_TRUE(batch(w3, 5, {{"loss", 0.05}}));
  EXPECT_FALSE(Only<proto::wire::Ack>(core_->OnMessage(w3, x, now_)).empty());
  Exited(w2, a, "Completed");
  Exited(w1, a, "Completed");
  EXPECT_EQ(t->state, TrialState::kCompleted);
  EXPECT_EQ(*t->objective, 0.5) << "algo-2's, the lowest host that printed the loss";
  EXPECT_EQ(t->final_metrics.at("throughput"), 1200);
  // A host's last lines that arrive after the attempt ended (and after another restart) still go
  // under its own numbers.
  MakeCore();
  core_->OnMessage(w3, Registration(w3, 1), now_);
  Log(w3, a, {"late from " + w3}, /*seq=*/2, /*first=*/1);
  logs = core_->Logs(a.trial, 0, 100);
  ASSERT_TRUE(logs.ok());
  ASSERT_EQ(logs->size(), 3u);
  EXPECT_EQ((*logs)[2].text, "late from " + w3);
  EXPECT_EQ(LogLineHost((*logs)[2].line), 3u);
  EXPECT_EQ(LogLineNumber((*logs)[2].line), 1u);
}

// Hosts of a distributed job end at different times (rank 0 saves the model while the others
// have exited; a data group ends before the trainers). The host that ended no longer lists the
// attempt in its heartbeats: that once counted as an assignment lost in transit, once the
// attempt was older than the lease, and every attempt of such a job failed the same way.
TEST_F(GangTest, AHostThatEndedBeforeTheOthersIsNotLostWhileTheyRunOn) {
  const auto [a, w1, w2, w3] = StartGang("gang");
  ASSERT_FALSE(a.trial.empty());
  const std::string trial = a.trial;
  Exited(w3, a, "Completed");  // the eval host is done
  for (int i = 0; i < 5; ++i) {  // 5 leases go by with the others still training
    now_ += 1000;
    for (const std::string& w : {w1, w2}) {
      proto::wire::Heartbeat h{w, static_cast<uint64_t>(i + 2), 0, {{trial, 1}}};
      EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnMessage(w, h, now_)).empty());
    }
    proto::wire::Heartbeat h3{w3, static_cast<uint64_t>(i + 2), 1, {}};
    EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnMessage(w3, h3, now_)).empty()) << "nothing to stop";
    EXPECT_EQ(core_->FindTrial(trial)->attempt, 1u) << "not retried";
    EXPECT_EQ(core_->FindTrial(trial)->state, TrialState::kInProgress);
  }
  // A restart of the ended host's worker does not lose the attempt either.
  auto again = Fleet()[2];
  again.session = 99;
  core_->OnMessage(w3, again, now_);
  EXPECT_EQ(core_->FindTrial(trial)->attempt, 1u);
  Exited(w2, a, "Completed");
  Exited(w1, a, "Completed", {{"loss", 0.5}});
  EXPECT_EQ(core_->FindTrial(trial)->state, TrialState::kCompleted);
}

// Algo-1's upload waits to merge the other hosts' model files: its worker is told once every
// other host has ended (GangPeersEnded), again with the answer to each of its heartbeats that
// still lists the attempt (the message is not acknowledged), also after a restart; never before,
// never to another host, and not once algo-1 has ended.
TEST_F(GangTest, Algo1sWorkerIsToldWhenTheOtherHostsHaveEndedUntilAlgo1Ends) {
  const auto [a, w1, w2, w3] = StartGang("gang");
  ASSERT_FALSE(a.trial.empty());
  auto told = [&](const std::vector<Outgoing>& sent) {
    for (const auto& g : Only<proto::wire::GangPeersEnded>(sent)) EXPECT_EQ(g, (proto::wire::GangPeersEnded{a.trial, a.attempt}));
    return Told(sent);
  };
  auto heartbeat = [&](const std::string& w, uint64_t seq, bool holds) {
    proto::wire::Heartbeat h{w, seq, 0, {}};
    if (holds) h.running = {{a.trial, a.attempt}};
    return core_->OnMessage(w, h, now_);
  };
  EXPECT_TRUE(told(Exited(w3, a, "Completed")).empty()) << "algo-2 still runs";
  EXPECT_TRUE(told(heartbeat(w1, 2, true)).empty());
  EXPECT_EQ(told(Exited(w2, a, "Completed")), std::vector<std::string>{w1});
  now_ += 1000;
  EXPECT_EQ(told(heartbeat(w1, 3, true)), std::vector<std::string>{w1}) << "said again: it may have been lost";
  EXPECT_TRUE(told(heartbeat(w2, 3, false)).empty());
  // The coordinator restarts: the hosts' exits were kept, and algo-1's worker is told again.
  MakeCore();
  for (const auto& w : Fleet()) {
    auto r = w;
    r.running.clear();
    if (w.worker_id == w1) r.running = {{a.trial, a.attempt}};
    core_->OnMessage(w.worker_id, r, now_);
  }
  now_ += 1000;
  EXPECT_EQ(told(heartbeat(w1, 1, true)), std::vector<std::string>{w1});
  Exited(w1, a, "Completed", {{"loss", 0.5}});
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  EXPECT_TRUE(told(heartbeat(w1, 2, true)).empty()) << "algo-1 has ended";
}

// A stopped gang's attempt ends with algo-1's report, which comes once it has merged what the
// others handed over and uploaded: the training job reads Stopped once its model is up, as on
// SageMaker (it read Stopped at the first host's report, while algo-1 still packed). Once every
// host but algo-1 has reported, algo-1's worker is told, and again with each heartbeat that
// still lists the attempt.
TEST_F(GangTest, AStoppedGangsAlgo1IsToldOnceTheOtherHostsHaveReportedTheirExit) {
  const auto [a, w1, w2, w3] = StartGang("gang");
  ASSERT_FALSE(a.trial.empty());
  auto heartbeat = [&](const std::string& w, uint64_t seq) {
    proto::wire::Heartbeat h{w, seq, 0, {{a.trial, a.attempt}}};
    return core_->OnMessage(w, h, now_);
  };
  std::vector<Outgoing> stops;
  ASSERT_TRUE(core_->StopTrainingJob(a.trial, now_, &stops).ok());
  EXPECT_TRUE(Told(Exited(w2, a, "Stopped")).empty()) << "algo-3 still stops";
  EXPECT_FALSE(core_->FindTrial(a.trial)->Terminal()) << "algo-1 has not uploaded yet";
  EXPECT_TRUE(Told(heartbeat(w1, 2)).empty());
  EXPECT_EQ(Told(Exited(w3, a, "Stopped")), std::vector<std::string>{w1});
  EXPECT_FALSE(core_->FindTrial(a.trial)->Terminal());
  now_ += 1000;
  EXPECT_EQ(Told(heartbeat(w1, 3)), std::vector<std::string>{w1}) << "said again: it may have been lost";
  Exited(w1, a, "Stopped");
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped) << "ended with algo-1's report";
  EXPECT_TRUE(Told(heartbeat(w1, 4)).empty()) << "algo-1 has reported";
}

// Stopped while algo-1 had already completed its part: algo-1's report ends the attempt as it
// ended (Completed), the other hosts' Stopped reports having ended nothing; a stopped gang whose
// algo-1 reports first ends at once, the others lingering.
TEST_F(GangTest, AStoppedGangEndsWithAlgo1sReportWhateverItSays) {
  {
    const auto [a, w1, w2, w3] = StartGang("gang");
    ASSERT_FALSE(a.trial.empty());
    std::vector<Outgoing> stops;
    ASSERT_TRUE(core_->StopTrainingJob(a.trial, now_, &stops).ok());
    Exited(w2, a, "Stopped");
    Exited(w3, a, "Stopped");
    EXPECT_FALSE(core_->FindTrial(a.trial)->Terminal());
    Exited(w1, a, "Completed", {{"loss", 0.25}});
    EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kCompleted);
  }
  MakeCore();
  {
    const auto [a, w1, w2, w3] = StartGang("gang2");
    ASSERT_FALSE(a.trial.empty());
    std::vector<Outgoing> stops;
    ASSERT_TRUE(core_->StopTrainingJob(a.trial, now_, &stops).ok());
    Exited(w1, a, "Stopped");
    EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped);
    Exited(w2, a, "Stopped");  // a lingering host's report
    EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped);
  }
}

// A host other than algo-1 runs out MaxRuntimeInSeconds first (every host's worker keeps the
// limit): the training job is stopped, not ended. The other hosts are told to stop, it reads
// Stopping, and algo-1's report (once it has uploaded) ends it Stopped with SecondaryStatus
// MaxRuntimeExceeded and the reason, whatever algo-1 said. Before, algo-2's report ended it at
// once, while algo-1 still packed the model. Algo-1 running it out first ends it at once.
TEST_F(GangTest, AnotherHostsMaxRuntimeEndsTheGangWithAlgo1sReport) {
  auto max_runtime = [&](const std::string& wid, const proto::wire::AssignTrial& a) {
    proto::wire::TrialExited x;
    x.trial = a.trial;
    x.attempt = a.attempt;
    x.status = "Stopped";
    x.secondary_status = "MaxRuntimeExceeded";
    x.exit_code = 143;
    x.failure_reason = "MaxRuntimeExceeded: the training job ran longer than its max runtime of 60 s";
    return core_->OnMessage(wid, x, now_);
  };
  {
    const auto [a, w1, w2, w3] = StartGang("gang");
    ASSERT_FALSE(a.trial.empty());
    now_ += 60000;
    const auto out = max_runtime(w2, a);
    std::set<std::string> stopped;
    for (const auto& o : out) {
      if (std::get_if<proto::wire::StopTrial>(&o.message)) stopped.insert(o.worker_id);
    }
    EXPECT_EQ(stopped, (std::set<std::string>{w1, w3})) << "the hosts still running are stopped";
    const Trial* t = core_->FindTrial(a.trial);
    EXPECT_EQ(t->state, TrialState::kStopping) << "algo-1 has not uploaded yet";
    Exited(w3, a, "Stopped");
    EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopping);
    now_ += 2000;
    Exited(w1, a, "Stopped");  // the coordinator's stop reached it before its own limit
    t = core_->FindTrial(a.trial);
    EXPECT_EQ(t->state, TrialState::kStopped);
    ASSERT_FALSE(t->secondary.empty());
    EXPECT_EQ(t->secondary.back().status, "MaxRuntimeExceeded");
    EXPECT_NE(t->secondary.back().message.find("algo-2 (worker " + w2 + "): the training job ran longer than its max "
                                               "runtime of 60 s"),
              std::string::npos)
        << t->secondary.back().message;
    EXPECT_EQ(t->end_ms, now_) << "ended at algo-1's report";
  }
  MakeCore();
  {
    const auto [a, w1, w2, w3] = StartGang("gang2");
    ASSERT_FALSE(a.trial.empty());
    const auto out = max_runtime(w1, a);
    EXPECT_EQ(Only<proto::wire::StopTrial>(out).size(), 2u);
    const Trial* t = core_->FindTrial(a.trial);
    EXPECT_EQ(t->state, TrialState::kStopped) << "algo-1 has uploaded when it reports";
    EXPECT_EQ(t->secondary.back().status, "MaxRuntimeExceeded");
    max_runtime(w2, a);  // a lingering host's report
    EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kStopped);
  }
}

// The DiscardHandOver messages in `sent`, with their workers.
std::vector<std::pair<std::string, proto::wire::DiscardHandOver>> Discards(const std::vector<Outgoing>& sent) {
  std::vector<std::pair<std::string, proto::wire::DiscardHandOver>> v;
  for (const auto& o : sent) {
    if (const auto* d = std::get_if<proto::wire::DiscardHandOver>(&o.message)) v.push_back({o.worker_id, *d});
  }
  return v;
}

// Algo-1's worker is lost and no retry follows (no RetryStrategy): what the other hosts hand over
// for it to merge never will be. Once they have both reported their exit (none hands over after
// that), algo-2's worker is told to remove it, once. (A worker restarting without algo-1 ends the
// attempt the same way.)
TEST_F(GangTest, ALostAlgo1WithNoRetryHasTheHandOverDiscardedOnceTheOtherHostsHaveExited) {
  const auto [a, w1, w2, w3] = StartGang("gang", std::nullopt);
  ASSERT_FALSE(a.trial.empty());
  ASSERT_FALSE(a.output_path.empty());
  auto tick = LoseAllBut(a, {w2, w3});  // algo-1's worker is lost
  EXPECT_EQ(Only<proto::wire::StopTrial>(tick).size(), 2u);
  EXPECT_TRUE(Discards(tick).empty()) << "the other hosts still hand over";
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kFailed);
  EXPECT_TRUE(Discards(Exited(w2, a, "Stopped")).empty()) << "algo-3 still stops";
  const auto last = Discards(Exited(w3, a, "Stopped"));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].first, w2);
  EXPECT_EQ(last[0].second, (proto::wire::DiscardHandOver{a.trial, a.attempt, a.output_path}));
  now_ += 10;
  EXPECT_TRUE(Discards(core_->OnTick(now_)).empty()) << "once";
}

// The coordinator restarts after algo-1 was lost and before the other hosts exited: the hand-over
// to discard is in the store. Algo-2's worker registers still running the attempt (stopped again
// by the registration's answer), algo-3's has ended it: nothing is sent while algo-2 runs, even
// a lease on, and at its exit report the first of the attempt's workers still registered
// (algo-2's) is told, once, also across another restart. Before, the restart forgot it and the
// folder stayed.
TEST_F(GangTest, AHandOverToDiscardOutlivesACoordinatorRestart) {
  const auto [a, w1, w2, w3] = StartGang("gang", std::nullopt);
  ASSERT_FALSE(a.trial.empty());
  auto heartbeat = [&](const std::string& w, uint64_t seq) {
    proto::wire::Heartbeat h{w, seq, 0, {{a.trial, a.attempt}}};
    return core_->OnMessage(w, h, now_);
  };
  EXPECT_TRUE(Discards(LoseAllBut(a, {w2, w3})).empty()) << "the other hosts still hand over";  // algo-1 lost
  ASSERT_EQ(core_->FindTrial(a.trial)->state, TrialState::kFailed);

  MakeCore();  // the restart
  now_ += 100;
  EXPECT_TRUE(Discards(core_->OnTick(now_)).empty()) << "no host has registered";
  auto w2_again = Worker(w2, 1, 2, 8);
  w2_again.instance_group = "train";
  w2_again.running = {{a.trial, a.attempt}};
  auto out = core_->OnMessage(w2, w2_again, now_);
  EXPECT_TRUE(Discards(out).empty()) << "algo-2 still runs it";
  auto w3_again = Worker(w3, 1, 2, 8);
  w3_again.instance_group = w3 == "c" ? "eval" : "train";
  EXPECT_TRUE(Discards(core_->OnMessage(w3, w3_again, now_)).empty()) << "algo-2 still runs it";
  for (int i = 0; i < 3; ++i) {  // a lease and a half on, both heart-beating
    now_ += options_.lease_ms / 2;
    EXPECT_TRUE(Discards(heartbeat(w2, 10 + i)).empty());
    EXPECT_TRUE(Discards(core_->OnMessage(w3, proto::wire::Heartbeat{w3, uint64_t(10 + i), 0, {}}, now_)).empty());
    EXPECT_TRUE(Discards(core_->OnTick(now_)).empty()) << "algo-2 still runs it";
  }
  const auto last = Discards(Exited(w2, a, "Stopped"));
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].first, w2);
  EXPECT_EQ(last[0].second, (proto::wire::DiscardHandOver{a.trial, a.attempt, a.output_path}));
  now_ += 10;
  EXPECT_TRUE(Discards(core_->OnTick(now_)).empty()) << "once";
  MakeCore();  // and not again after another restart
  now_ += options_.lease_ms + 10;
  core_->OnMessage(w2, Worker(w2, 1, 2, 8), now_);
  EXPECT_TRUE(Discards(core_->OnTick(now_)).empty()) << "told once, across restarts";
}

// After a restart, a hand-over to discard waits a lease for the attempt's hosts to register (one
// that has not may still be handing over), then goes to a registered one.
TEST_F(GangTest, ARestoredHandOverToDiscardWaitsALeaseForTheHostsToRegister) {
  const auto [a, w1, w2, w3] = StartGang("gang", std::nullopt);
  ASSERT_FALSE(a.trial.empty());
  LoseAllBut(a, {w2, w3});  // algo-1 lost
  MakeCore();
  now_ += 100;
  core_->OnTick(now_);
  auto w3_again = Worker(w3, 1, 2, 8);
  EXPECT_TRUE(Discards(core_->OnMessage(w3, w3_again, now_)).empty());
  EXPECT_TRUE(Discards(core_->OnTick(now_ + options_.lease_ms / 2)).empty()) << "algo-2's worker may still hand over";
  now_ += options_.lease_ms + 10;
  core_->OnMessage(w3, proto::wire::Heartbeat{w3, 2, 0, {}}, now_);
  const auto told = Discards(core_->OnTick(now_));
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].first, w3) << "the only one registered";
}

// A lost algo-2 leaves the hand-over to algo-1, which packs what arrived and removes the folder
// (worker/artifacts.h, peers_ended): the coordinator sends no DiscardHandOver.
TEST_F(GangTest, ALostAlgo2LeavesTheHandOverToAlgo1) {
  const auto [a, w1, w2, w3] = StartGang("gang", std::nullopt);
  ASSERT_FALSE(a.trial.empty());
  std::vector<Outgoing> sent = LoseAllBut(a, {w1, w3});  // algo-2's worker is lost
  EXPECT_EQ(core_->FindTrial(a.trial)->state, TrialState::kFailed);
  for (const auto& m : {Exited(w3, a, "Stopped"), Exited(w1, a, "Stopped"), core_->OnTick(now_ + 10)}) {
    sent.insert(sent.end(), m.begin(), m.end());
  }
  EXPECT_TRUE(Discards(sent).empty());
}

// A gang whose lost host leaves too few workers of its type: while the other hosts were being
// stopped, a Waiting event of the same words was written at every tick (57 in 8 s, in the
// events and the log). Said once.
TEST_F(GangTest, AGangLeftWithTooFewWorkersSaysSoOnceWhileItsHostsStop) {
  options_.lease_ms = 60'000;
  MakeCore();
  auto typed = [](const std::string& id, const std::string& type, const std::string& group) {
    auto w = Worker(id, 1, 8, 32);
    w.instance_type = type;
    w.instance_group = group;
    return w;
  };
  for (const auto& w : {typed("w1", "ml.c5.xlarge", "data"), typed("w4", "ml.c5.xlarge", ""),
                        typed("w3", "ml.m5.large", "train")}) {
    Join(w);
  }
  proto::TuningJobSpec spec = Spec("flood", "Random", 2, 1);
  auto& rc = *spec.training_job_definition->resource_config;
  rc.instance_type.reset();
  rc.instance_count.reset();
  rc.instance_groups = {{"ml.c5.xlarge", 2, "data"}, {"ml.m5.large", 1, "train"}};
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{1};
  auto out = Submit(spec);
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const proto::wire::AssignTrial a = assigns[0];
  for (const auto& o : out) {
    if (const auto* x = std::get_if<proto::wire::AssignTrial>(&o.message)) Started(o.worker_id, *x);
  }
  const std::string w1 = WorkerOf(out, "algo-1"), w3 = WorkerOf(out, "algo-3");
  ASSERT_EQ(WorkerOf(out, "algo-2"), "w4");
  LoseAllBut(a, {w1, w3});  // w4 is lost; the others are told to stop, and take 8 s to
  for (int i = 0; i < 40; ++i) {
    now_ += 200;
    for (const auto& w : {w1, w3}) {
      core_->OnMessage(w, proto::wire::Heartbeat{w, static_cast<uint64_t>(3 + i), 0, {{a.trial, a.attempt}}}, now_);
    }
    core_->OnTick(now_);
  }
  Exited(w1, a, "Stopped");
  Exited(w3, a, "Stopped");
  for (int i = 0; i < 10; ++i) core_->OnTick(now_ += 200);
  auto events = core_->Events("flood", 0, 1000);
  ASSERT_TRUE(events.ok());
  std::vector<std::string> waiting;
  for (const auto& e : *events) {
    if (e.kind == "Waiting") waiting.push_back(e.message);
  }
  ASSERT_FALSE(waiting.empty()) << "it is said";
  EXPECT_EQ(waiting.size(), 1u) << waiting.front();
  EXPECT_EQ(waiting.front().rfind("too few registered workers can serve ml.c5.xlarge", 0), 0u) << waiting.front();
}

// Only workers started with --instance-group, and a job with no InstanceGroups: the advice was
// "give a worker --instance-type ml.c5.xlarge", which both had.
TEST_F(GangTest, WorkersThatServeOnlyTheirGroupAreNamedAndTheAdviceIsToStartOneWithout) {
  for (const char* id : {"w1", "w2"}) {
    auto w = Worker(id, 1, 8, 32);
    w.instance_type = "ml.c5.xlarge";
    w.instance_group = "data";
    Join(w);
  }
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Typed("plain", "ml.c5.xlarge", 1, 1))).empty());
  const std::string reason = core_->FindJob("plain")->waiting_reason;
  EXPECT_NE(reason.find("(workers w1, w2 would, but they serve only the instance group of its --instance-group: "
                        "start a worker without --instance-group, with --instance-type ml.c5.xlarge)"),
            std::string::npos)
      << reason;
  EXPECT_EQ(reason.find("give a worker --instance-type"), std::string::npos) << reason;
}

TEST_F(GangTest, ALostHostEndsTheAttemptWhichIsRetriedAsAUnit) {
  for (const auto& w : Fleet()) Join(w);
  auto out = Submit(Groups("gang", 1, 1));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const std::string trial = assigns[0].trial;
  const std::string lost = WorkerOf(out, "algo-2");
  for (const auto& o : out) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message)) Started(o.worker_id, *a);
  }
  // Every worker but the lost one keeps heart-beating.
  now_ += options_.lease_ms / 2;
  for (const auto& w : Fleet()) {
    if (w.worker_id == lost) continue;
    proto::wire::Heartbeat h;
    h.worker_id = w.worker_id;
    h.seq = 1;
    h.free_slots = 0;
    for (const auto& o : out) {
      if (o.worker_id == w.worker_id && std::holds_alternative<proto::wire::AssignTrial>(o.message)) {
        h.running.push_back({trial, 1});
      }
    }
    core_->OnMessage(w.worker_id, h, now_);
  }
  now_ += options_.lease_ms / 2 + 10;
  auto tick = core_->OnTick(now_);
  auto stops = Only<proto::wire::StopTrial>(tick);
  EXPECT_EQ(stops.size(), 2u) << "the surviving hosts of the attempt are stopped";
  auto retry = Only<proto::wire::AssignTrial>(tick);
  const Trial* t = core_->FindTrial(trial);
  EXPECT_EQ(t->infra_failures, 1);
  EXPECT_TRUE(Discards(tick).empty()) << "a retry's algo-1 removes the earlier attempts' hand-over";
  if (retry.empty()) {  // three workers are left (a gang of three fits again only if they are free)
    EXPECT_EQ(t->state, TrialState::kPending);
  } else {
    ASSERT_EQ(retry.size(), 3u) << "retried as a unit";
    EXPECT_EQ(retry[0].attempt, 2u);
    for (const auto& o : tick) {
      if (std::holds_alternative<proto::wire::AssignTrial>(o.message)) {
        EXPECT_NE(o.worker_id, lost);
      }
    }
  }
}

// One host of a two-host attempt is interrupted (its worker got SIGTERM); the other is told to
// stop and saves its last checkpoint in its grace period. Its heartbeats still list the attempt:
// they revoked it, so it uploaded nothing, and the retry, placed at once in the free slots beside
// it, resumed from an older checkpoint (a user's gang lost an epoch on two hosts of three). The
// retry now waits for the other host's exit, and no new training job takes its place meanwhile
// (MaxParallelTrainingJobs 1 had two running).
TEST_F(GangTest, AGangsRetryWaitsForItsOtherHostsLastCheckpointsWhichAreNotRevoked) {
  for (const char* id : {"a", "b", "c", "d"}) Join(Worker(id, 2, 8, 32));
  const TwoHosts g = StartTwoHostGang("linger");
  ASSERT_EQ(g.first.size(), 2u);
  const auto& first = g.first;
  const std::string &w1 = g.w1, &w2 = g.w2;
  auto after = Exited(w2, first[0], "Interrupted");
  EXPECT_EQ(Only<proto::wire::StopTrial>(after).size(), 1u) << "algo-1 is told to stop";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(after).empty()) << "algo-1 still saves on " << w1;
  for (int i = 0; i < 4; ++i) {
    now_ += 500;
    for (const char* id : {"a", "b", "c", "d"}) {  // every worker beats; w1 still runs attempt 1
      proto::wire::Heartbeat h{id, static_cast<uint64_t>(2 + i), id == w1 ? 1u : 2u, {}};
      if (id == w1) h.running.push_back({first[0].trial, 1});
      auto beat = core_->OnMessage(id, h, now_);
      for (const auto& s : Only<proto::wire::StopTrial>(beat)) {
        EXPECT_NE(s.reason, proto::wire::kStopReasonRevoked) << "its last checkpoints would not be uploaded";
      }
    }
    auto tick = core_->OnTick(now_);
    EXPECT_TRUE(Only<proto::wire::AssignTrial>(tick).empty())
        << "placed while attempt 1's algo-1 still stops on " << w1 << " (or a new training job in its place)";
  }
  EXPECT_NE(core_->FindJob("linger")->waiting_reason.find("once the other hosts of attempt 1 have stopped"),
            std::string::npos)
      << core_->FindJob("linger")->waiting_reason;
  const auto retry = AssignedAfterExit(w1, first[0]);
  ASSERT_EQ(retry.size(), 2u) << "its exit lets the retry start; " << core_->FindJob("linger")->waiting_reason;
  for (const auto& a : retry) {
    EXPECT_EQ(a.trial, first[0].trial);
    EXPECT_EQ(a.attempt, 2u);
  }
}

// A retry's algo-1 resumes past its last epoch and prints nothing; algo-2 prints its own loss.
// The training job's objective stays algo-1's from the first attempt: it became algo-2's
// (200.9 where algo-1 had printed 0.9; a gang-faults pass), against "a metric's value is that of
// the lowest-numbered host that prints it".
TEST_F(GangTest, ARetrysHigherHostDoesNotReplaceAMetricALowerHostPrintedInAnEarlierAttempt) {
  for (const char* id : {"a", "b", "c", "d"}) Join(Worker(id, 2, 8, 32));
  const TwoHosts g = StartTwoHostGang("carry");
  ASSERT_EQ(g.first.size(), 2u);
  const std::string trial = g.first[0].trial;
  auto batch = [&](const std::string& wid, uint32_t attempt, uint64_t seq, double loss) {
    proto::wire::MetricPoints m;
    m.trial = trial;
    m.attempt = attempt;
    m.seq = seq;
    m.points.push_back({"loss", loss, now_, 0});
    core_->OnMessage(wid, m, now_);
  };
  batch(g.w1, 1, 1, 0.9);
  batch(g.w2, 1, 1, 200.9);
  const Trial* t = core_->FindTrial(trial);
  ASSERT_TRUE(t->objective);
  EXPECT_EQ(*t->objective, 0.9);
  Exited(g.w2, g.first[0], "Interrupted");
  auto out = Exited(g.w1, g.first[0], "Stopped");
  for (auto& o : core_->OnTick(now_)) out.push_back(std::move(o));
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2");
  ASSERT_FALSE(w1.empty() || w2.empty()) << core_->FindJob("carry")->waiting_reason;
  for (const auto& a : Only<proto::wire::AssignTrial>(out)) {
    ASSERT_EQ(a.attempt, 2u);
    Started(a.current_host == "algo-1" ? w1 : w2, a);
  }
  batch(w2, 2, 1, 200.5);
  EXPECT_EQ(*t->objective, 0.9) << "algo-2's value replaced algo-1's";
  EXPECT_EQ(t->final_metrics.at("loss"), 0.9);
  // algo-1 printing again in the retry counts, as ever.
  batch(w1, 2, 1, 0.8);
  EXPECT_EQ(*t->objective, 0.8);
}

// One host's worker is shutting down (SIGTERM) or got a spot notice: the other hosts are told to
// stop at once, not after that host's grace period and exit report (they trained on alone for
// it: a gang-faults pass). Stopped so, a host reads Interrupted: the retry spends nothing.
TEST_F(GangTest, AHostsWorkerShuttingDownStopsTheOtherHostsAtOnceWithoutSpendingARetry) {
  for (const bool planned : {true, false}) {
    SCOPED_TRACE(planned ? "planned" : "spot notice");
    MakeCore();
    for (const char* id : {"a", "b", "c", "d"}) Join(Worker(id, 2, 8, 32));
    const std::string name = planned ? "shutdown" : "notice";
    const TwoHosts g = StartTwoHostGang(name);
    ASSERT_EQ(g.first.size(), 2u);
    proto::wire::InterruptionNotice n;
    n.worker_id = g.w2;
    n.reason = planned ? "SIGTERM" : "spot instance-action: terminate";
    n.planned = planned;
    auto out = core_->OnMessage(g.w2, n, now_);
    auto stops = Only<proto::wire::StopTrial>(out);
    ASSERT_EQ(stops.size(), 1u) << "algo-1 is told to stop now";
    for (const auto& o : out) {
      if (std::holds_alternative<proto::wire::StopTrial>(o.message)) EXPECT_EQ(o.worker_id, g.w1);
    }
    EXPECT_NE(stops[0].reason.find("algo-2's worker " + g.w2), std::string::npos) << stops[0].reason;
    EXPECT_TRUE(Only<proto::wire::StopTrial>(core_->OnMessage(g.w2, n, now_)).empty()) << "asked once";
    Exited(g.w1, g.first[0], "Stopped");
    Exited(g.w2, g.first[0], "Interrupted");
    const Trial* t = core_->FindTrial(g.first[0].trial);
    EXPECT_EQ(t->infra_failures, 0);
    EXPECT_FALSE(t->Terminal()) << "it runs again";
  }
}

// The same across a coordinator restart, which forgets which hosts linger: the retry was placed
// 4.5 s after it, beside the old attempt's algo-1 on its own worker (two copies of a host writing
// checkpoints). A host that registers again still running the ended attempt lingers again, is
// told to stop (not revoked), and the retry waits for it; one that never comes back holds it up
// for a lease at most.
TEST_F(GangTest, AGangsRetryWaitsForItsStoppingHostsAcrossACoordinatorRestart) {
  for (const char* id : {"a", "b", "c", "d"}) Join(Worker(id, 1, 8, 32));
  const TwoHosts g = StartTwoHostGang("linger2");
  ASSERT_EQ(g.first.size(), 2u);
  const auto& first = g.first;
  const std::string &w1 = g.w1, &w2 = g.w2;
  Exited(w2, first[0], "Interrupted");  // algo-1 told to stop, saving
  MakeCore();                            // the coordinator restarts
  for (const char* id : {"a", "b", "c", "d"}) {
    proto::wire::Register r = Worker(id, 1, 8, 32);
    if (id == w1) r.running.push_back({first[0].trial, 1});
    for (const auto& o : Join(r)) {
      if (const auto* stop = std::get_if<proto::wire::StopTrial>(&o.message)) {
        EXPECT_EQ(o.worker_id, w1);
        EXPECT_NE(stop->reason, proto::wire::kStopReasonRevoked) << "its last checkpoints would not go up";
      }
      if (const auto* ack = std::get_if<proto::wire::RegisterAck>(&o.message)) {
        EXPECT_TRUE(ack->stop.empty()) << "revoked at its registration";
      }
    }
  }
  for (int i = 0; i < 40; ++i) {  // past a lease: w1's algo-1 still stops
    now_ += 250;
    for (const char* id : {"a", "b", "c", "d"}) {
      proto::wire::Heartbeat h{id, static_cast<uint64_t>(2 + i), id == w1 ? 0u : 1u, {}};
      if (id == w1) h.running.push_back({first[0].trial, 1});
      core_->OnMessage(id, h, now_);
    }
    auto tick = core_->OnTick(now_);
    ASSERT_TRUE(Only<proto::wire::AssignTrial>(tick).empty())
        << "placed while attempt 1's algo-1 still runs on " << w1 << " at " << i;
  }
  const auto retry = AssignedAfterExit(w1, first[0]);
  ASSERT_EQ(retry.size(), 2u) << "its exit lets the retry start; " << core_->FindJob("linger2")->waiting_reason;
  EXPECT_EQ(retry[0].attempt, 2u);
}

// Stopped while the retry waits for the other host: the job read Stopped at once, while that
// host's program ran on for its grace period. It is Stopping until the host has exited.
TEST_F(GangTest, AJobStoppedWhileItsGangsRetryWaitsIsStoppingUntilTheHostsHaveExited) {
  for (const char* id : {"a", "b", "c"}) Join(Worker(id, 1, 8, 32));
  const TwoHosts g = StartTwoHostGang("linger3");
  ASSERT_EQ(g.first.size(), 2u);
  const auto& first = g.first;
  const std::string &w1 = g.w1, &w2 = g.w2;
  Exited(w2, first[0], "Interrupted");
  std::vector<Outgoing> stop;
  ASSERT_TRUE(core_->Stop("linger3", now_, &stop).ok());
  EXPECT_EQ(core_->FindJob("linger3")->status, "Stopping") << "algo-1 still saves on " << w1;
  core_->OnTick(now_ += 500);
  EXPECT_EQ(core_->FindJob("linger3")->status, "Stopping");
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Exited(w1, first[0], "Stopped")).empty());
  EXPECT_EQ(core_->FindJob("linger3")->status, "Stopped");
}

TEST_F(GangTest, TwoJobsWhoseGangsAreLargerThanHalfTheClusterBothFinish) {
  for (const auto& w : Fleet()) Join(w);
  // Each job's training jobs need 3 of the 4 workers: only one gang fits at a time.
  auto out = Submit(Groups("g1", 2, 2));
  now_ += 1;
  auto more = Submit(Groups("g2", 2, 2));
  out.insert(out.end(), more.begin(), more.end());
  std::map<std::string, int> completed;
  for (int round = 0; round < 10 && completed.size() < 4; ++round) {
    std::map<std::pair<std::string, uint32_t>, std::vector<std::string>> running;  // attempt -> workers
    for (const auto& o : out) {
      if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message)) running[{a->trial, a->attempt}].push_back(o.worker_id);
    }
    ASSERT_LE(running.size(), 1u) << "two gangs of three at once on four workers";
    out.clear();
    for (const auto& [key, ws] : running) {
      ASSERT_EQ(ws.size(), 3u);
      proto::wire::AssignTrial a;
      a.trial = key.first;
      a.attempt = key.second;
      for (const auto& w : ws) {
        auto o = Exited(w, a, "Completed", {{"loss", 1.0}});
        out.insert(out.end(), o.begin(), o.end());
      }
      ++completed[key.first];
    }
  }
  EXPECT_EQ(completed.size(), 4u);
  EXPECT_EQ(core_->FindJob("g1")->status, "Completed");
  EXPECT_EQ(core_->FindJob("g2")->status, "Completed");
}

// A gang attempt ends at its first failed host, and the other hosts are told to stop: they keep
// their slots (and GPUs) for their grace period, until each reports its exit. The next training
// job used to start at once in a slot whose program was still running.
TEST_F(GangTest, AStoppedGangsHostsKeepTheirSlotsUntilTheyHaveExited) {
  for (const char* id : {"a", "b"}) Join(Worker(id, 1, 8, 32, {80}));
  proto::TuningJobSpec spec = Spec("grace", "Random", 2, 1);
  spec.training_job_definition->resource_config->instance_type = "ml.g5.xlarge";
  spec.training_job_definition->resource_config->instance_count = 2;
  auto out = Submit(spec);
  auto first = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(first.size(), 2u) << core_->FindJob("grace")->waiting_reason;
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2");
  for (const std::string& w : {w1, w2}) Started(w, first[0]);
  auto after_fail = Exited(w2, first[0], "Failed");
  EXPECT_EQ(Only<proto::wire::StopTrial>(after_fail).size(), 1u) << "algo-1 is told to stop";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(after_fail).empty()) << "algo-1 still runs on " << w1;
  EXPECT_EQ(core_->FindTrial(first[0].trial)->failure_reason, "algo-2 (worker " + w2 + "): Failed on " + w2)
      << "the failure reason names the host that failed";
  now_ += 500;
  proto::wire::Heartbeat h{w1, 2, 0, {{first[0].trial, 1}}};
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(core_->OnMessage(w1, h, now_)).empty()) << "it still holds its slot";
  auto next = Only<proto::wire::AssignTrial>(Exited(w1, first[0], "Stopped"));
  EXPECT_EQ(next.size(), 2u) << "its exit frees the slot: the next gang starts";
  for (const auto& a : next) EXPECT_NE(a.trial, first[0].trial);
}

// A soak: a gang host's worker was killed and restarted; its registration (without the attempt)
// ended the attempt, but the other host was not told to stop, ran on to its own end beside the
// next training job, and a MaxParallelTrainingJobs 1 job had two running. It is stopped, as when
// a worker is lost, and keeps its slot until it has exited.
TEST_F(GangTest, AGangHostsWorkerRestartingWithoutItStopsTheOtherHosts) {
  for (const char* id : {"a", "b"}) Join(Worker(id, 1, 8, 32, {80}));
  proto::TuningJobSpec spec = Spec("restart", "Random", 2, 1);
  spec.training_job_definition->resource_config->instance_type = "ml.g5.xlarge";
  spec.training_job_definition->resource_config->instance_count = 2;
  auto out = Submit(spec);
  auto first = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(first.size(), 2u);
  const std::string w1 = WorkerOf(out, "algo-1"), w2 = WorkerOf(out, "algo-2");
  for (const std::string& w : {w1, w2}) Started(w, first[0]);
  proto::wire::Register again = Worker(w1, 1, 8, 32, {80});
  again.session = 777;  // another process under the same id, holding nothing
  auto after = Join(again);
  auto stops = Only<proto::wire::StopTrial>(after);
  ASSERT_EQ(stops.size(), 1u) << "the host on " << w2 << " is told to stop";
  EXPECT_EQ(stops[0].trial, first[0].trial);
  bool to_w2 = false;
  for (const auto& o : after) to_w2 = to_w2 || (o.worker_id == w2 && std::holds_alternative<proto::wire::StopTrial>(o.message));
  EXPECT_TRUE(to_w2);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(after).empty()) << "the stopped host still holds its slot on " << w2;
  auto next = Only<proto::wire::AssignTrial>(Exited(w2, first[0], "Stopped"));
  EXPECT_EQ(next.size(), 2u) << "once it has exited, the next gang starts";
}

// Enough workers are registered, but too few serve the gang's instance type: that can never
// change by waiting, so it is said (a Waiting event naming what to start) instead of waiting
// as if the cluster were busy.
TEST_F(GangTest, AGangTooFewWorkersCanServeIsNeverPlacedAndSaysWhatToStart) {
  auto c5 = Worker("c5", 2, 8, 32);
  c5.instance_type = "ml.c5.xlarge";
  Join(c5);
  for (const char* id : {"m1", "m2", "m3"}) {
    auto m = Worker(id, 2, 8, 32);
    m.instance_type = "ml.m5.large";
    Join(m);
  }
  proto::TuningJobSpec spec = Spec("c5pair", "Random", 1, 1);
  spec.training_job_definition->resource_config->instance_type = "ml.c5.xlarge";
  spec.training_job_definition->resource_config->instance_count = 2;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty());
  const std::string reason = core_->FindJob("c5pair")->waiting_reason;
  // Too few, not none (it read "no registered worker can serve", then "1 of them can"), and the
  // hint once (it gave two).
  EXPECT_EQ(reason.rfind("too few registered workers can serve ml.c5.xlarge", 0), 0u) << reason;
  EXPECT_NE(reason.find("needs 2 distinct workers that serve ml.c5.xlarge, and 1 of the registered workers can"),
            std::string::npos)
      << reason;
  EXPECT_EQ(reason.find("(start", reason.find("(start") + 1), std::string::npos) << "one hint: " << reason;
  auto events = core_->Events("c5pair", 0, 100);
  ASSERT_TRUE(events.ok());
  bool waiting = false;
  for (const auto& e : *events) waiting = waiting || e.kind == "Waiting";
  EXPECT_TRUE(waiting) << "an event says so";
  // A second c5 worker: now it can run.
  auto more = Worker("c5b", 2, 8, 32);
  more.instance_type = "ml.c5.xlarge";
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Join(more)).size(), 2u);
}

// A fault pass: a heterogeneous gang (ml.m5.large for "train", ml.c5.xlarge for "eval") that no
// worker could serve for "eval" said "no registered worker can serve ml.m5.large", the first
// host's type, which the cluster had; one that waited for busy workers named only that type too.
TEST_F(GangTest, AHeterogeneousGangsWaitingReasonNamesTheTypeMissingOrAllItsTypes) {
  JoinTyped("m1", "ml.m5.large");
  JoinTyped("m2", "ml.m5.large");
  proto::TuningJobSpec spec = MixedGroups("hetero");
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty());
  std::string reason = core_->FindJob("hetero")->waiting_reason;
  EXPECT_EQ(reason.rfind("no registered worker can serve ml.c5.xlarge: ", 0), 0u) << reason;
  EXPECT_NE(reason.find("worker m1 serves ml.m5.large, not ml.c5.xlarge"), std::string::npos) << reason;
  // A c5 worker joins: the gang starts (both types are there). A second such job waits for
  // busy workers, and says it waits for both types.
  ASSERT_EQ(Only<proto::wire::AssignTrial>(JoinTyped("c5", "ml.c5.xlarge")).size(), 2u);
  ASSERT_EQ(core_->FindJob("hetero")->waiting_reason, "") << core_->FindJob("hetero")->waiting_reason;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(MixedGroups("hetero2"))).empty());
  reason = core_->FindJob("hetero2")->waiting_reason;
  EXPECT_NE(reason.find("(ml.m5.large + ml.c5.xlarge, all at once)"), std::string::npos) << reason;
}

// A review: a mixed gang's waiting reason looked for resting workers that could serve its first
// host only (and, for a moment, none fit the types' names put in that request): the c5 worker
// resting for the second host went unmentioned.
TEST_F(GangTest, AHeterogeneousGangWaitingForARestingWorkerSaysWhichAndWhy) {
  JoinTyped("m", "ml.m5.large");
  JoinTyped("c5", "ml.c5.xlarge");
  proto::TuningJobSpec spec = MixedGroups("resting");
  spec.training_job_definition->retry_strategy = proto::RetryStrategy{5};
  auto out = Submit(spec);
  for (int i = 0; i < 3; ++i) {  // three infrastructure errors in a row on c5: it rests
    std::string trial;
    uint32_t attempt = 0;
    for (const auto& a : Only<proto::wire::AssignTrial>(out)) {
      trial = a.trial;
      attempt = a.attempt;
    }
    ASSERT_FALSE(trial.empty()) << "round " << i << ": " << core_->FindJob("resting")->waiting_reason;
    out = EndWith("c5", trial, attempt, "InfraError", "InternalServerError: the disk went read-only");
    for (auto& o : EndWith("m", trial, attempt, "InfraError", "InternalServerError: stopped with its peer")) {
      out.push_back(o);  // its peer's end
    }
    now_ += 10;
  }
  const std::string reason = core_->FindJob("resting")->waiting_reason;
  EXPECT_NE(reason.find("worker c5 rests (3 infrastructure errors in a row"), std::string::npos) << reason;
}

// On a cluster kept busy by single-host training jobs, a freed slot went to one of them at once,
// every time: a two-host job never found two free workers and waited forever. Once it has waited
// CoreOptions::gang_hold_after_ms, workers are held for its hosts as they free up; before that,
// freed slots still go to whoever can use them.
TEST_F(GangTest, AGangThatWaitedLongEnoughHoldsWorkersAsTheyFreeUpAndStarts) {
  options_.gang_hold_after_ms = 5000;
  MakeCore();
  std::map<std::string, proto::wire::AssignTrial> running;  // worker -> the singles' attempt there
  auto take = [&](const std::vector<Outgoing>& out) {
    std::vector<std::string> pair_on;
    for (const auto& o : out) {
      const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message);
      if (!a) continue;
      if (a->trial.rfind("singles-", 0) == 0) running[o.worker_id] = *a;
      else pair_on.push_back(o.worker_id);
    }
    return pair_on;
  };
  for (const char* id : {"w1", "w2", "w3"}) Join(Worker(id, 1, 8, 32));
  take(Submit(Spec("singles", "Random", 30, 3)));
  ASSERT_EQ(running.size(), 3u);
  proto::TuningJobSpec pair = Spec("pair", "Random", 1, 1);
  pair.training_job_definition->resource_config->instance_count = 2;
  EXPECT_TRUE(take(Submit(pair)).empty()) << "every worker is busy";
  // Before the hold: the freed slot goes to the single-host job.
  now_ += 1000;
  const std::string first = running.at("w1").trial;
  EXPECT_TRUE(take(Finish("w1", running.at("w1"), 1.0)).empty());
  EXPECT_NE(running.at("w1").trial, first) << "w1 took the next single-host training job";
  // After 5 s of waiting, freed workers are held for the pair and it starts once two are free.
  now_ += 5000;
  std::vector<std::string> pair_on;
  int finished = 0;
  for (const char* id : {"w2", "w3", "w1"}) {
    const std::string before = running.at(id).trial;
    pair_on = take(Finish(id, running.at(id), 1.0));
    ++finished;
    if (!pair_on.empty()) break;
    EXPECT_EQ(running.at(id).trial, before) << id << " is held for the pair, not given to the single-host job";
    const std::string reason = core_->FindJob("pair")->waiting_reason;
    EXPECT_NE(reason.find("holding worker(s) "), std::string::npos) << reason;
  }
  EXPECT_EQ(pair_on.size(), 2u) << "the pair started";
  EXPECT_EQ(finished, 2) << "on the first two workers that freed up";
  EXPECT_EQ(std::set<std::string>(pair_on.begin(), pair_on.end()), (std::set<std::string>{"w2", "w3"}));
  // The single-host job goes on on the third.
  EXPECT_EQ(Only<proto::wire::AssignTrial>(Finish("w1", running.at("w1"), 1.0)).size(), 1u);
}

// The same with the single-host job older and as idle as the gang whenever a slot frees: it was
// looked at first in the pass, before the gang had held anything in it, and took every freed slot.
TEST_F(GangTest, AGangHoldsItsWorkersBeforeAnOlderSingleHostJobIsPlaced) {
  options_.gang_hold_after_ms = 5000;
  MakeCore();
  for (const char* id : {"w1", "w2"}) Join(Worker(id, 1, 8, 32));
  std::map<std::string, proto::wire::AssignTrial> running;
  for (const auto& o : Submit(Spec("singles", "Random", 30, 2))) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message)) running[o.worker_id] = *a;
  }
  ASSERT_EQ(running.size(), 2u);
  now_ += 100;  // "singles" is the older job
  proto::TuningJobSpec pair = Spec("pair", "Random", 1, 1);
  pair.training_job_definition->resource_config->instance_count = 2;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(pair)).empty());
  now_ += 6000;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Finish("w1", running.at("w1"), 1.0)).empty()) << "w1 is held";
  auto out = Finish("w2", running.at("w2"), 1.0);  // both idle now, the single-host job as much as the pair
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 2u);
  EXPECT_EQ(assigns[0].trial.rfind("pair-", 0), 0u) << assigns[0].trial;
  EXPECT_EQ(assigns[1].trial, assigns[0].trial);
}

// A held worker is not kept warm for the job whose training job ended there
// (KeepAlivePeriodInSeconds): that job may not use it while it is held, the gang could not use the
// warm slot either, and it sat idle for the whole keep-alive period.
TEST_F(GangTest, AHeldWorkerIsNotKeptWarmForAnotherJob) {
  options_.gang_hold_after_ms = 5000;
  MakeCore();
  for (const char* id : {"w1", "w2"}) Join(Worker(id, 1, 8, 32));
  std::map<std::string, proto::wire::AssignTrial> running;
  proto::TuningJobSpec singles = Spec("singles", "Random", 30, 2);
  singles.training_job_definition->resource_config->keep_alive_period_in_seconds = 600;
  for (const auto& o : Submit(singles)) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message)) running[o.worker_id] = *a;
  }
  ASSERT_EQ(running.size(), 2u);
  now_ += 100;
  proto::TuningJobSpec pair = Spec("pair", "Random", 1, 1);
  pair.training_job_definition->resource_config->instance_count = 2;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(pair)).empty());
  now_ += 6000;
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Finish("w1", running.at("w1"), 1.0)).empty()) << "w1 is held";
  auto assigns = Only<proto::wire::AssignTrial>(Finish("w2", running.at("w2"), 1.0));
  ASSERT_EQ(assigns.size(), 2u) << "the pair starts at once, not after the keep-alive period";
  EXPECT_EQ(assigns[0].trial.rfind("pair-", 0), 0u) << assigns[0].trial;
}

// A held worker keeps only what the held host needs: on workers of two slots, the single-host job
// goes on using the second slot while the first stays free for the gang.
TEST_F(GangTest, AHeldWorkerKeepsOnlyTheHeldHostsSlot) {
  options_.gang_hold_after_ms = 5000;
  MakeCore();
  for (const char* id : {"w1", "w2"}) Join(Worker(id, 2, 8, 32));
  std::multimap<std::string, proto::wire::AssignTrial> running;
  auto take = [&](const std::vector<Outgoing>& out) {
    std::vector<std::string> pair_on, singles_on;
    for (const auto& o : out) {
      const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message);
      if (!a) continue;
      if (a->trial.rfind("singles-", 0) == 0) {
        running.insert({o.worker_id, *a});
        singles_on.push_back(o.worker_id);
      } else {
        pair_on.push_back(o.worker_id);
      }
    }
    return std::make_pair(pair_on, singles_on);
  };
  auto finish_one = [&](const std::string& w) {
    auto it = running.find(w);
    const proto::wire::AssignTrial a = it->second;
    running.erase(it);
    return take(Finish(w, a, 1.0));
  };
  take(Submit(Spec("singles", "Random", 30, 4)));
  ASSERT_EQ(running.size(), 4u);
  now_ += 100;
  proto::TuningJobSpec pair = Spec("pair", "Random", 1, 1);
  pair.training_job_definition->resource_config->instance_count = 2;
  EXPECT_TRUE(take(Submit(pair)).first.empty());
  now_ += 6000;
  auto [p1, s1] = finish_one("w1");
  EXPECT_TRUE(p1.empty());
  EXPECT_TRUE(s1.empty()) << "w1's one free slot is kept for the pair's host";
  auto [p2, s2] = finish_one("w1");
  EXPECT_TRUE(p2.empty()) << "w2 has no free slot yet";
  EXPECT_EQ(s2, std::vector<std::string>{"w1"}) << "w1's second free slot goes on serving the single-host job";
  auto [p3, s3] = finish_one("w2");
  EXPECT_EQ(p3.size(), 2u) << "one slot free on each: the pair starts";
}

// A gang's Training status names the gang and algo-1's worker (it named whichever host
// reported its start first); a long list of workers that cannot serve a job ends with how many
// more there are (the ones the user meant were cut off without a word).
TEST_F(GangTest, TrainingNamesTheGangAndLongWaitingReasonsSayHowManyMore) {
  for (const auto& w : Fleet()) Join(w);
  auto out = Submit(Groups("named", 1, 1));
  auto assigns = Only<proto::wire::AssignTrial>(out);
  ASSERT_EQ(assigns.size(), 3u);
  const std::string w1 = WorkerOf(out, "algo-1"), w3 = WorkerOf(out, "algo-3");
  Started(w3, assigns[0]);  // not algo-1 first
  const Trial* t = core_->FindTrial(assigns[0].trial);
  ASSERT_FALSE(t->secondary.empty());
  EXPECT_EQ(t->secondary.back().message, "Training in progress on 3 hosts (algo-1 on " + w1 + ")");

  for (int i = 0; i < 8; ++i) {
    auto m = Worker("m" + std::to_string(i), 2, 8, 32);
    m.instance_type = "ml.m5.large";
    Join(m);
  }
  auto gpu = Worker("gpu", 2, 8, 32, {24});
  gpu.instance_type = "ml.g5.xlarge";
  gpu.instance_group = "other";  // refused for its group
  Join(gpu);
  proto::TuningJobSpec spec = Spec("g5", "Random", 1, 1);
  spec.training_job_definition->resource_config->instance_type = "ml.g5.xlarge";
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(spec)).empty());
  const std::string reason = core_->FindJob("g5")->waiting_reason;
  EXPECT_NE(reason.find("more workers that cannot"), std::string::npos) << reason;
}

// Two gangs must not share workers even when those have free slots: both jobs' algo-N would be
// the same addresses, and a fixed rendezvous port collided or joined the other job's algo-1.
TEST_F(GangTest, TwoGangsNeverShareAWorkerEvenWithFreeSlots) {
  for (const char* id : {"a", "b", "c"}) Join(Worker(id, 4, 8, 32));
  proto::TuningJobSpec spec = Spec("pair", "Random", 2, 2);
  spec.training_job_definition->resource_config->instance_count = 2;
  auto out = Submit(spec);
  std::map<std::string, std::set<std::string>> hosts;  // training job -> its workers
  for (const auto& o : out) {
    if (const auto* a = std::get_if<proto::wire::AssignTrial>(&o.message)) hosts[a->trial].insert(o.worker_id);
  }
  ASSERT_EQ(hosts.size(), 1u) << "three 4-slot workers hold one 2-host gang at a time";
  const std::string first = hosts.begin()->first;
  const std::set<std::string> used = hosts.begin()->second;
  EXPECT_NE(core_->FindJob("pair")->waiting_reason.find("run a host of another multi-host training job"),
            std::string::npos)
      << core_->FindJob("pair")->waiting_reason;
  // When it ends, the second one starts.
  proto::wire::AssignTrial a;
  a.trial = first;
  a.attempt = 1;
  std::vector<Outgoing> next;
  for (const auto& w : used) {
    auto o = Exited(w, a, "Completed", {{"loss", 1.0}});
    next.insert(next.end(), o.begin(), o.end());
  }
  EXPECT_EQ(Only<proto::wire::AssignTrial>(next).size(), 2u);
}

}  // namespace
}  // namespace hpo::coordinator
