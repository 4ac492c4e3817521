// Placement: the instance-type catalog and the fit rule (coordinator/placement.h), then the
// core placing trials on a heterogeneous fleet: GPUs never double-booked (also across a
// coordinator restart), a type nobody can serve reported with the reason, MaxPendingTimeInSeconds.
#include "coordinator/placement.h"

#include <gtest/gtest.h>

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
  EXPECT_FALSE(Fit(c, {"ml.m5.large", ""}, cpu, 0, {}).now) << "no free slot";
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
            "1152 GiB; worker cpu has 0 GPUs");
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

TEST_F(PlacementCoreTest, AnUnknownTypeIsServedByAWorkerThatAdvertisesIt) {
  proto::wire::Register w = Worker("dgx", 2, 64, 512, {80, 80});
  Join(w);
  EXPECT_TRUE(Only<proto::wire::AssignTrial>(Submit(Typed("x", "ml.trn9.huge", 2, 2))).empty());
  EXPECT_NE(core_->FindJob("x")->waiting_reason.find("start a worker with --instance-type ml.trn9.huge"),
            std::string::npos)
      << core_->FindJob("x")->waiting_reason;
  proto::wire::Register typed = Worker("trn", 2, 8, 32);
  typed.instance_type = "ml.trn9.huge";
  auto assigns = Only<proto::wire::AssignTrial>(Join(typed));
  ASSERT_EQ(assigns.size(), 2u);
  EXPECT_EQ(core_->FindTrial(assigns[0].trial)->worker_id, "trn");
  EXPECT_TRUE(core_->FindJob("x")->waiting_reason.empty());
}

TEST_F(PlacementCoreTest, AMultiHostTrainingJobIsRefusedWithAClearErrorAndChangesNothing) {
  Join(Worker("cpu", 4, 2, 24));
  proto::TuningJobSpec spec = Typed("gang", "ml.m5.large", 2, 1);
  spec.training_job_definition->resource_config->instance_count = 2;
  std::vector<Outgoing> out;
  Result<std::string> r = core_->Submit(spec, proto::Spelling::kCrd, now_, &out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("asks for 2 hosts per training job"), std::string::npos) << r.status().message();
  EXPECT_EQ(core_->FindJob("gang"), nullptr);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace hpo::coordinator
