// Coordinator recovery time: how long a coordinator restarted on an existing state directory
// takes to load what the store holds and answer for it.
//
// Builds a job store with one Random tuning job of N finished trials (each with M metric points,
// its log lines and events), written through the real CoordinatorCore with simulated worker
// messages, then measures, R times, what a restart does: open the SQLite store and construct
// the core (which loads every job and trial and rebuilds the strategies), then describe the job
// and list its trials. Prints one JSON line per phase with the median and max over the repeats.
// Then deletes the job (DeleteHyperParameterTuningJob) twice, on two copies of the store: with
// one Delete call, as the API did, and as the API does now, DeleteSlice calls then Delete; each
// call holds the coordinator's core (every worker's messages and API call wait), so the longest
// call is what the others wait for.
//
//   build-bench/bench/recovery/recovery_bench [--trials 10000] [--metrics 10] [--repeat 5]
//                                             [--dir /dev/shm/hpo-recovery]
//
// Goal (fault-tolerance issue): recovery of a store with 10,000 trials under 2 s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "coordinator/core.h"
#include "coordinator/job_store.h"
#include "proto/codec.h"

namespace {

using hpo::coordinator::CoordinatorCore;
using hpo::coordinator::CoreOptions;
using hpo::coordinator::Outgoing;
using hpo::coordinator::SqliteJobStore;
namespace wire = hpo::proto::wire;

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

hpo::proto::TuningJobSpec Spec(int trials) {
  std::string yaml = R"YAML(
hyperParameterTuningJobName: recovery
hyperParameterTuningJobConfig:
  strategy: Random
  hyperParameterTuningJobObjective: {type_: Minimize, metricName: loss}
  resourceLimits: {maxNumberOfTrainingJobs: TRIALS, maxParallelTrainingJobs: 100}
  parameterRanges:
    continuousParameterRanges:
    - {name: lr, minValue: "0.0001", maxValue: "1", scalingType: Logarithmic}
    - {name: momentum, minValue: "0", maxValue: "0.99"}
    integerParameterRanges:
    - {name: layers, minValue: "1", maxValue: "8"}
    categoricalParameterRanges:
    - {name: opt, values: [sgd, adam, rmsprop]}
trainingJobDefinition:
  staticHyperParameters: {epochs: "10"}
  algorithmSpecification:
    trainingImage: /bin/true
    trainingInputMode: File
    metricDefinitions: [{name: loss, regex: "loss=([0-9.]+)"}]
  roleARN: arn:aws:iam::123456789012:role/hpo-bench
  outputDataConfig: {s3OutputPath: /tmp/hpo-out}
  resourceConfig: {instanceType: ml.m5.large, instanceCount: 1, volumeSizeInGB: 10}
  stoppingCondition: {maxRuntimeInSeconds: 3600}
)YAML";
  yaml.replace(yaml.find("TRIALS"), 6, std::to_string(trials));
  auto spec = hpo::proto::ParseSpec(yaml);
  if (!spec.ok()) {
    std::fprintf(stderr, "recovery_bench: %s\n", spec.status().ToString().c_str());
    std::exit(1);
  }
  return spec->document.spec;
}

struct Stats {
  double median = 0, max = 0;
};
Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.back()};
}

}  // namespace

int main(int argc, char** argv) {
  int trials = 10000, metrics = 10, repeat = 5;
  std::string dir = "/dev/shm/hpo-recovery";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--trials") trials = std::atoi(v.c_str());
    else if (k == "--metrics") metrics = std::atoi(v.c_str());
    else if (k == "--repeat") repeat = std::atoi(v.c_str());
    else if (k == "--dir") dir = v;
    else {
      std::fprintf(stderr, "usage: recovery_bench [--trials N] [--metrics M] [--repeat R] [--dir DIR]\n");
      return 2;
    }
  }
  if (trials < 1 || metrics < 1 || repeat < 1) {
    std::fprintf(stderr, "recovery_bench: --trials, --metrics and --repeat must be >= 1\n");
    return 2;
  }
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/hpo.db";
  CoreOptions opt;
  opt.lease_ms = 1'000'000'000;

  // ---- build the store -----------------------------------------------------------------------
  auto t0 = std::chrono::steady_clock::now();
  {
    auto store = SqliteJobStore::Open(db);
    if (!store.ok()) {
      std::fprintf(stderr, "recovery_bench: %s\n", store.status().ToString().c_str());
      return 1;
    }
    CoordinatorCore core(store->get(), opt);
    int64_t now = 1'000'000;
    std::vector<Outgoing> out;
    wire::Register r;
    r.protocol_version = wire::kProtocolVersion;  // else refused, and nothing is assigned
    r.worker_id = "w1";
    r.host = "bench";
    r.cpus = 2;
    r.memory_mb = 16384;  // ml.m5.large's 8 GiB fits (with 1 GiB nothing was placed)
    r.slots = 100;
    r.session = 1;
    out = core.OnMessage("w1", r, now);
    for (const auto& o : out) {
      if (const auto* ack = std::get_if<wire::RegisterAck>(&o.message); ack && !ack->accepted) {
        std::fprintf(stderr, "recovery_bench: the worker was refused: %s\n", ack->reason.c_str());
        return 1;
      }
    }
    std::vector<Outgoing> more;
    auto arn = core.Submit(Spec(trials), hpo::proto::Spelling::kCrd, now, &more);
    if (!arn.ok()) {
      std::fprintf(stderr, "recovery_bench: %s\n", arn.status().ToString().c_str());
      return 1;
    }
    std::vector<wire::AssignTrial> queue;
    for (auto& o : more) {
      if (auto* a = std::get_if<wire::AssignTrial>(&o.message)) queue.push_back(*a);
    }
    int done = 0;
    while (!queue.empty()) {
      wire::AssignTrial a = queue.back();
      queue.pop_back();
      now += 10;
      core.OnMessage("w1", wire::TrialStarted{a.trial, a.attempt, "w1", now}, now);
      wire::MetricPoints m;
      m.trial = a.trial;
      m.attempt = a.attempt;
      m.seq = 1;
      double loss = 1.0 + (done % 97) / 97.0;
      for (int e = 0; e < metrics; ++e) m.points.push_back({"loss", loss + 1.0 / (e + 1), now, static_cast<uint64_t>(e)});
      core.OnMessage("w1", m, now);
      wire::LogLines l;
      l.trial = a.trial;
      l.attempt = a.attempt;
      l.seq = 1;
      for (int e = 0; e < metrics; ++e) l.lines.push_back("epoch=" + std::to_string(e) + " loss=" + std::to_string(loss));
      core.OnMessage("w1", l, now);
      wire::TrialExited x;
      x.trial = a.trial;
      x.attempt = a.attempt;
      x.seq = 1;
      x.status = "Completed";
      x.secondary_status = "Completed";
      for (auto& o : core.OnMessage("w1", x, now)) {
        if (auto* n = std::get_if<wire::AssignTrial>(&o.message)) queue.push_back(*n);
      }
      if (++done % 1000 == 0) std::fprintf(stderr, "recovery_bench: %d/%d trials written\n", done, trials);
    }
    auto d = core.Describe("recovery");
    if (!d.ok() || d->status.hyper_parameter_tuning_job_status.value_or("") != "Completed") {
      std::fprintf(stderr, "recovery_bench: the job did not complete (%d trials)\n", done);
      return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  std::fprintf(stderr, "recovery_bench: store built in %.1f s (%.1f MB)\n", Seconds(t0, t1),
               std::filesystem::file_size(db) / 1e6);

  // ---- restart, R times ----------------------------------------------------------------------
  std::vector<double> load, query, total;
  for (int i = 0; i < repeat; ++i) {
    auto a = std::chrono::steady_clock::now();
    auto store = SqliteJobStore::Open(db);
    CoordinatorCore core(store->get(), opt);
    auto b = std::chrono::steady_clock::now();
    auto d = core.Describe("recovery");
    size_t listed = core.TrialsOf("recovery").size();
    auto c = std::chrono::steady_clock::now();
    if (!d.ok() || listed != static_cast<size_t>(trials) ||
        d->status.training_job_status_counters->completed.value_or(0) != trials) {
      std::fprintf(stderr, "recovery_bench: the restarted core does not hold the %d trials (%zu)\n", trials, listed);
      return 1;
    }
    load.push_back(Seconds(a, b));
    query.push_back(Seconds(b, c));
    total.push_back(Seconds(a, c));
  }
  auto L = Summarize(load), Q = Summarize(query), T = Summarize(total);
  const double db_mb = std::filesystem::file_size(db) / 1e6;

  // ---- delete: one call, then slices ---------------------------------------------------------
  double whole = 0, slice_max = 0, final_call = 0, sliced_total = 0;
  int slices = 0;
  for (const bool sliced : {false, true}) {
    const std::string copy = dir + (sliced ? "/sliced.db" : "/whole.db");
    std::filesystem::copy_file(db, copy, std::filesystem::copy_options::overwrite_existing);
    auto store = SqliteJobStore::Open(copy);
    CoordinatorCore core(store->get(), opt);
    const auto begin = std::chrono::steady_clock::now();
    if (sliced) {
      for (;;) {
        const auto a = std::chrono::steady_clock::now();
        auto more = core.DeleteSlice("recovery", 0);
        slice_max = std::max(slice_max, Seconds(a, std::chrono::steady_clock::now()));
        if (!more.ok()) {
          std::fprintf(stderr, "recovery_bench: %s\n", more.status().ToString().c_str());
          return 1;
        }
        if (!*more) break;
        ++slices;
      }
    }
    const auto a = std::chrono::steady_clock::now();
    if (auto s = core.Delete("recovery", 2'000'000); !s.ok()) {
      std::fprintf(stderr, "recovery_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    const auto b = std::chrono::steady_clock::now();
    (sliced ? final_call : whole) = Seconds(a, b);
    if (sliced) sliced_total = Seconds(begin, b);
  }
  std::printf(
      "{\"trials\":%d,\"metrics_per_trial\":%d,\"repeat\":%d,\"db_mb\":%.1f,"
      "\"load_seconds\":%.4f,\"load_seconds_max\":%.4f,\"describe_seconds\":%.4f,"
      "\"recovery_seconds\":%.4f,\"recovery_seconds_max\":%.4f,"
      "\"delete_one_call_seconds\":%.4f,\"delete_slices\":%d,\"delete_longest_slice_seconds\":%.4f,"
      "\"delete_last_call_seconds\":%.4f,\"delete_sliced_total_seconds\":%.4f}\n",
      trials, metrics, repeat, db_mb, L.median, L.max, Q.median, T.median, T.max, whole, slices, slice_max,
      final_call, sliced_total);
  return 0;
}
