// How long the coordinator keeps everyone waiting while a Bayesian or Hyperband job proposes.
//
// A Bayesian job warm-started (IdenticalDataAndAlgorithm) from a Random parent of N finished
// trials fits its model on N+ observations, so each proposal takes seconds on a CPU; so does a
// Hyperband job (--strategy Hyperband, MaxResource 9 epochs: its model is fitted on the parent's
// objectives and its own trials' values at a rung) once its rungs hold enough training jobs. The
// benchmark runs such a job through a real Dispatcher and CoordinatorCore on loopback, with an
// in-process worker (a ZeroMQ DEALER speaking the wire protocol) whose training jobs end
// --trial-ms after they start (0: at once; Hyperband's emit one loss per epoch over that time and
// end early when the core stops them at a rung), while a probe thread asks the core to describe the job every 20 ms, as
// the HTTP API does for `hpo describe`, Kubernetes controllers and dashboards. It does this
// twice on the same store: proposals inside the core's events (CoreOptions::propose_off_core
// off, as before; Hyperband's short training jobs then also get their successor assigned ahead)
// and off the core on the dispatcher's proposer thread (on, as `hpo run` and
// `hpo coordinator` run; a request there asks for every slot that could start a training job,
// so one model fit serves them all). Prints one JSON line per mode: the proposals' own seconds,
// how long a describe waited (median, 99th percentile, max), the job's time and the share of
// slot time spent training.
//
// With --small-trials K a small Bayesian job (K training jobs, one at a time, no warm start: its
// proposals take milliseconds) runs beside the large one on a slot of its own, and the modes are
// in the core, off it with one proposer thread, and off it with two (DispatcherOptions::
// proposer_threads): how long the small job takes when its proposals queue behind the large
// job's, and when they do not.
//
//   build-bench/bench/proposal_lock_bench [--strategy Bayesian|Hyperband] [--prior 734] [--trials 16]
//                                     [--parallel 4] [--trial-ms 0] [--small-trials 0]
//                                     [--dir /dev/shm/hpo-proposal-lock]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/job_store.h"
#include "proto/codec.h"
#include "proto/messages.h"

namespace {

using hpo::coordinator::CoordinatorCore;
using hpo::coordinator::CoreOptions;
using hpo::coordinator::Dispatcher;
using hpo::coordinator::DispatcherOptions;
using hpo::coordinator::Outgoing;
using hpo::coordinator::SqliteJobStore;
namespace wire = hpo::proto::wire;
using namespace std::chrono_literals;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "proposal_lock_bench: %s\n", what.c_str());
  std::exit(1);
}

constexpr int kDims = 5;
constexpr int kMaxEpochs = 9;  // Hyperband's MaxResource

// A job over x1..x5 in [0, 1]: Random (the parent) or Bayesian warm-started from `parent`.
hpo::proto::TuningJobSpec Spec(const std::string& name, const std::string& strategy, int trials, int parallel,
                               const std::string& parent) {
  std::string yaml = "hyperParameterTuningJobName: " + name + "\nhyperParameterTuningJobConfig:\n  strategy: " +
                     strategy +
                     "\n  hyperParameterTuningJobObjective: {type_: Minimize, metricName: loss}\n"
                     "  resourceLimits: {maxNumberOfTrainingJobs: " +
                     std::to_string(trials) + ", maxParallelTrainingJobs: " + std::to_string(parallel) +
                     "}\n  parameterRanges:\n    continuousParameterRanges:\n";
  for (int i = 1; i <= kDims; ++i) yaml += "    - {name: x" + std::to_string(i) + ", minValue: \"0\", maxValue: \"1\"}\n";
  if (strategy == "Hyperband") {
    yaml += "  strategyConfig: {hyperbandStrategyConfig: {minResource: 1, maxResource: " + std::to_string(kMaxEpochs) +
            "}}\n";
  }
  yaml += R"YAML(trainingJobDefinition:
  algorithmSpecification:
    trainingImage: /bin/true
    trainingInputMode: File
    metricDefinitions: [{name: loss, regex: "loss=([0-9.]+)"}]
  roleARN: arn:aws:iam::123456789012:role/hpo-bench
  outputDataConfig: {s3OutputPath: /tmp/hpo-out}
  resourceConfig: {instanceType: ml.m5.large, instanceCount: 1, volumeSizeInGB: 10}
  stoppingCondition: {maxRuntimeInSeconds: 3600}
)YAML";
  if (!parent.empty()) {
    yaml += "warmStartConfig:\n  warmStartType: IdenticalDataAndAlgorithm\n  parentHyperParameterTuningJobs:\n"
            "  - {hyperParameterTuningJobName: " + parent + "}\n";
  }
  auto spec = hpo::proto::ParseSpec(yaml);
  if (!spec.ok()) Die(spec.status().ToString());
  return spec->document.spec;
}

// The training job's loss: a smooth bowl with a ripple, from its hyperparameters.
double Loss(const hpo::proto::StringMap& hp) {
  double s = 0;
  for (int i = 1; i <= kDims; ++i) {
    const double x = std::stod(hp.at("x" + std::to_string(i)));
    s += (x - 0.3) * (x - 0.3) + 0.05 * std::sin(12 * x);
  }
  return s + 1.0;  // positive, for the metric regex
}

wire::Register Registration(const std::string& id, uint32_t slots) {
  wire::Register r;
  r.protocol_version = wire::kProtocolVersion;
  r.worker_id = id;
  r.host = "127.0.0.1";
  r.cpus = 2 * slots;
  r.memory_mb = 16384ull * slots;
  r.slots = slots;
  r.session = 1;
  return r;
}

// The loss an attempt emits at `epoch` of `epochs`: falls towards Loss as training goes on.
wire::MetricPoints Epoch(const wire::AssignTrial& a, int epoch, int epochs, int64_t now) {
  wire::MetricPoints m;
  m.trial = a.trial;
  m.attempt = a.attempt;
  m.seq = static_cast<uint64_t>(epoch);
  const double loss = Loss(a.hyperparameters) * (1.0 + 2.0 * (epochs - epoch) / (epochs * (epoch + 1.0)));
  m.points.push_back({"loss", loss, now, static_cast<uint32_t>(epoch - 1)});
  return m;
}

// seq: the last MetricPoints seq sent for the attempt.
wire::TrialExited Exit(const wire::AssignTrial& a, const std::string& status, uint64_t seq, int64_t now) {
  wire::TrialExited x;
  x.trial = a.trial;
  x.attempt = a.attempt;
  x.seq = seq;
  x.status = status;
  x.secondary_status = status;
  x.exit_code = status == "Completed" ? 0 : 143;
  x.ended_at_ms = now;
  return x;
}

// What a worker reports for an attempt that ends the moment it starts.
std::vector<wire::Message> Reports(const wire::AssignTrial& a, const std::string& wid, int64_t now) {
  return {wire::TrialStarted{a.trial, a.attempt, wid, now}, Epoch(a, 1, 1, now), Exit(a, "Completed", 1, now)};
}

// The parent: a Random job of `n` trials, run through the core directly (no sockets).
void BuildParent(CoordinatorCore& core, int n) {
  int64_t now = hpo::coordinator::SystemNowMs() - 3'600'000;
  core.OnMessage("builder", Registration("builder", 100), now);
  std::vector<Outgoing> out;
  if (auto arn = core.Submit(Spec("parent", "Random", n, 100, ""), hpo::proto::Spelling::kCrd, now, &out); !arn.ok()) {
    Die(arn.status().ToString());
  }
  std::vector<wire::AssignTrial> queue;
  for (auto& o : out) {
    if (auto* a = std::get_if<wire::AssignTrial>(&o.message)) queue.push_back(*a);
  }
  while (!queue.empty()) {
    const wire::AssignTrial a = queue.back();
    queue.pop_back();
    now += 1;
    for (const wire::Message& m : Reports(a, "builder", now)) {
      for (auto& o : core.OnMessage("builder", m, now)) {
        if (auto* next = std::get_if<wire::AssignTrial>(&o.message)) queue.push_back(*next);
      }
    }
  }
  auto d = core.Describe("parent");
  if (!d.ok() || d->status.hyper_parameter_tuning_job_status.value_or("") != "Completed") Die("the parent did not complete");
}

// A Bayesian job and its warm-start parents may have 750 training jobs in all (SageMaker's
// limit); beyond it (--prior 3000: the size of a large benchmark's history) the limit is raised.
int g_limit = 750;
std::string g_strategy = "Bayesian";
int g_epochs = 1;  // loss points per training job: kMaxEpochs for Hyperband
CoreOptions Options(bool off_core) {
  CoreOptions co;
  co.propose_off_core = off_core;
  co.limits.max_training_jobs_bayesian = g_limit;
  return co;
}

struct Run {
  std::vector<double> describe_ms;
  double job_seconds = 0;
  uint64_t suggestions = 0;
  double suggest_mean = 0, suggest_max = 0;
  uint64_t proposals_on_thread = 0;
  double utilisation = 0;  // training time / (job time x slots)
  double small_seconds = 0;  // the small job's time, submit to Completed (--small-trials)
  int stopped = 0;         // attempts the core stopped at a rung (Hyperband)
  int ahead = 0;           // assignments that waited on the worker for a running predecessor
};

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct Mode {
  std::string name;
  bool off_core = false;
  int proposer_threads = 2;
};

Run RunChild(const std::string& db, const std::string& name, const Mode& mode, int trials, int parallel, int trial_ms,
             int small_trials) {
  auto store = SqliteJobStore::Open(db);
  if (!store.ok()) Die(store.status().ToString());
  CoordinatorCore core(store->get(), Options(mode.off_core));
  DispatcherOptions dopt;
  dopt.listen = "tcp://127.0.0.1:*";
  dopt.log = [](const std::string&) {};
  dopt.proposer_threads = mode.proposer_threads;
  const int slots = parallel + (small_trials > 0 ? 1 : 0);
  Dispatcher d(&core, dopt);
  if (auto s = d.Bind(); !s.ok()) Die(s.message());
  std::atomic<bool> stop{false};
  std::thread loop([&] { d.Run(stop); });

  // The worker: registers, heartbeats every second, runs every attempt for trial_ms (emitting
  // g_epochs losses evenly over that time), ends it when the core stops it, and starts an
  // attempt assigned ahead (after_trial) when its predecessor ends.
  std::atomic<bool> worker_stop{false};
  std::atomic<int64_t> busy_ms{0};
  std::atomic<int> stopped{0}, ahead{0};
  std::thread worker([&] {
    zmq::context_t ctx;
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::routing_id, "w1");
    sock.set(zmq::sockopt::linger, 0);
    sock.connect(d.endpoint());
    auto send = [&](const wire::Message& m) {
      const std::vector<std::string> frames = wire::EncodeFrames(m);
      for (size_t i = 0; i < frames.size(); ++i) {
        sock.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    };
    send(Registration("w1", static_cast<uint32_t>(slots)));
    using Clock = std::chrono::steady_clock;
    struct Attempt {
      wire::AssignTrial a;
      Clock::time_point start;
      int emitted = 0;
    };
    uint64_t seq = 0;
    std::vector<Attempt> running;
    std::vector<wire::AssignTrial> queued;  // assigned ahead: start when after_trial ends
    auto start = [&](const wire::AssignTrial& a) {
      send(wire::TrialStarted{a.trial, a.attempt, "w1", hpo::coordinator::SystemNowMs()});
      running.push_back({a, Clock::now()});
    };
    auto finish = [&](size_t i, const std::string& status) {
      const Attempt done = running[i];
      running.erase(running.begin() + static_cast<long>(i));
      send(Exit(done.a, status, static_cast<uint64_t>(done.emitted), hpo::coordinator::SystemNowMs()));
      busy_ms += std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - done.start).count();
      for (auto q = queued.begin(); q != queued.end(); ++q) {
        if (q->after_trial == done.a.trial && q->after_attempt == done.a.attempt) {
          const wire::AssignTrial next = *q;
          queued.erase(q);
          start(next);
          break;
        }
      }
    };
    auto next_beat = Clock::now();
    while (!worker_stop) {
      if (Clock::now() >= next_beat) {
        wire::Heartbeat h;
        h.worker_id = "w1";
        h.seq = ++seq;
        h.free_slots = static_cast<uint32_t>(std::max(0, slots - static_cast<int>(running.size())));
        for (const auto& r : running) h.running.push_back({r.a.trial, r.a.attempt});
        send(h);
        next_beat += 1s;
      }
      zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 1, 2ms);
      std::vector<zmq::message_t> parts;
      while (zmq::recv_multipart(sock, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        std::vector<std::string> frames;
        for (const auto& p : parts) frames.push_back(p.to_string());
        parts.clear();
        auto m = wire::DecodeFrames(frames);
        if (!m.ok()) continue;
        if (auto* a = std::get_if<wire::AssignTrial>(&*m)) {
          const bool waits = !a->after_trial.empty() && std::any_of(running.begin(), running.end(), [&](const Attempt& r) {
            return r.a.trial == a->after_trial && r.a.attempt == a->after_attempt;
          });
          if (waits) {
            ++ahead;
            queued.push_back(*a);
          } else {
            start(*a);
          }
        } else if (auto* st = std::get_if<wire::StopTrial>(&*m)) {
          for (size_t i = 0; i < running.size(); ++i) {
            if (running[i].a.trial == st->trial && running[i].a.attempt == st->attempt) {
              ++stopped;
              finish(i, "Stopped");
              break;
            }
          }
          std::erase_if(queued, [&](const wire::AssignTrial& q) { return q.trial == st->trial && q.attempt == st->attempt; });
        }
      }
      // Emit the epochs whose time has come; attempts whose time is up end.
      const auto now = Clock::now();
      for (size_t i = 0; i < running.size();) {
        Attempt& r = running[i];
        const double share = trial_ms > 0 ? std::chrono::duration<double, std::milli>(now - r.start).count() / trial_ms : 1.0;
        const int due = std::min(g_epochs, static_cast<int>(share * g_epochs));
        while (r.emitted < due) {
          ++r.emitted;
          send(Epoch(r.a, r.emitted, g_epochs, hpo::coordinator::SystemNowMs()));
        }
        if (r.emitted >= g_epochs) {
          finish(i, "Completed");
        } else {
          ++i;
        }
      }
    }
  });
  for (int i = 0; i < 1000; ++i) {
    if (d.WithCore([](CoordinatorCore& c) { return !c.Workers().empty(); })) break;
    std::this_thread::sleep_for(10ms);
  }

  const auto t0 = std::chrono::steady_clock::now();
  d.WithCore([&](CoordinatorCore& c) {
    std::vector<Outgoing> out;
    if (auto arn = c.Submit(Spec(name, g_strategy, trials, parallel, "parent"), hpo::proto::Spelling::kCrd, d.Now(),
                            &out);
        !arn.ok()) {
      Die(arn.status().ToString());
    }
    if (small_trials > 0) {
      if (auto arn = c.Submit(Spec("small-" + name, "Bayesian", small_trials, 1, ""), hpo::proto::Spelling::kCrd,
                              d.Now(), &out);
          !arn.ok()) {
        Die(arn.status().ToString());
      }
    }
    d.Post(std::move(out));
    return 0;
  });
  Run run;
  auto status_of = [](CoordinatorCore& c, const std::string& job) {
    auto desc = c.Describe(job);
    return desc.ok() ? desc->status.hyper_parameter_tuning_job_status.value_or("") : std::string("?");
  };
  bool small_done = small_trials == 0;
  for (;;) {
    const auto a = std::chrono::steady_clock::now();
    const std::string status = d.WithCore([&](CoordinatorCore& c) { return status_of(c, name); });
    run.describe_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
    if (!small_done && d.WithCore([&](CoordinatorCore& c) { return status_of(c, "small-" + name); }) != "InProgress") {
      small_done = true;
      run.small_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    if (status != "InProgress" && small_done) break;
    std::this_thread::sleep_for(20ms);
  }
  run.job_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  d.WithCore([&](CoordinatorCore& c) {
    if (const auto* s = c.Suggestions(name)) {
      run.suggestions = s->count;
      run.suggest_mean = s->count ? s->seconds_sum / static_cast<double>(s->count) : 0;
      run.suggest_max = s->seconds_max;
    }
    return 0;
  });
  run.proposals_on_thread = d.proposals_run();
  worker_stop = true;
  worker.join();
  run.utilisation = static_cast<double>(busy_ms) / (1000.0 * run.job_seconds * slots);
  run.stopped = stopped;
  run.ahead = ahead;
  stop = true;
  loop.join();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("proposal_lock_bench"));  // stdout is the JSON lines
  int prior = 734, trials = 16, parallel = 4, trial_ms = 0, small_trials = 0;
  std::string dir = "/dev/shm/hpo-proposal-lock";
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i], v = i + 1 < argc ? argv[i + 1] : "";
    if (k == "--strategy") g_strategy = v;
    else if (k == "--prior") prior = std::atoi(v.c_str());
    else if (k == "--trials") trials = std::atoi(v.c_str());
    else if (k == "--parallel") parallel = std::atoi(v.c_str());
    else if (k == "--trial-ms") trial_ms = std::atoi(v.c_str());
    else if (k == "--small-trials") small_trials = std::atoi(v.c_str());
    else if (k == "--dir") dir = v;
    else {
      std::fprintf(stderr, "usage: proposal_lock_bench [--strategy Bayesian|Hyperband] [--prior N] [--trials T] [--parallel P]\n"
                           "                           [--trial-ms MS] [--small-trials K] [--dir DIR]\n");
      return 2;
    }
  }
  if (prior < 1 || trials < 1 || parallel < 1 || trial_ms < 0 || small_trials < 0) {
    std::fprintf(stderr, "proposal_lock_bench: --prior, --trials and --parallel must be >= 1, --trial-ms and "
                         "--small-trials >= 0\n");
    return 2;
  }
  if (g_strategy != "Bayesian" && g_strategy != "Hyperband") {
    std::fprintf(stderr, "proposal_lock_bench: --strategy must be Bayesian or Hyperband, got '%s'\n", g_strategy.c_str());
    return 2;
  }
  g_epochs = g_strategy == "Hyperband" ? kMaxEpochs : 1;
  g_limit = std::max({750, prior + trials, small_trials});
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string db = dir + "/hpo.db";
  {
    auto store = SqliteJobStore::Open(db);
    if (!store.ok()) Die(store.status().ToString());
    CoordinatorCore core(store->get(), Options(false));
    const auto t0 = std::chrono::steady_clock::now();
    BuildParent(core, prior);
    std::fprintf(stderr, "proposal_lock_bench: parent of %d trials built in %.1f s\n", prior,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::vector<Mode> modes = {{"in-core", false, 1}, {"off-core", true, 2}};
  if (small_trials > 0) modes = {{"in-core", false, 1}, {"off-core-1-thread", true, 1}, {"off-core-2-threads", true, 2}};
  for (const Mode& mode : modes) {
    const std::string name = "child-" + mode.name;
    std::fprintf(stderr, "proposal_lock_bench: %s: %d %s trials, %d parallel%s...\n", name.c_str(), trials,
                 g_strategy.c_str(), parallel, small_trials > 0 ? ", and a small Bayesian job" : "");
    const Run r = RunChild(db, name, mode, trials, parallel, trial_ms, small_trials);
    std::printf(
        "{\"mode\":\"%s\",\"strategy\":\"%s\",\"prior\":%d,\"trials\":%d,\"parallel\":%d,\"suggestions\":%llu,"
        "\"suggest_seconds_mean\":%.3f,\"suggest_seconds_max\":%.3f,\"proposals_on_proposer_thread\":%llu,"
        "\"describes\":%zu,\"describe_ms_p50\":%.2f,\"describe_ms_p99\":%.1f,\"describe_ms_max\":%.1f,"
        "\"trial_ms\":%d,\"job_seconds\":%.1f,\"slot_utilisation\":%.2f,\"stopped\":%d,\"assigned_ahead\":%d,"
        "\"small_trials\":%d,\"small_job_seconds\":%.1f,\"limit\":%d}\n",
        mode.name.c_str(), g_strategy.c_str(), prior, trials, parallel, static_cast<unsigned long long>(r.suggestions),
        r.suggest_mean, r.suggest_max, static_cast<unsigned long long>(r.proposals_on_thread), r.describe_ms.size(),
        Quantile(r.describe_ms, 0.5), Quantile(r.describe_ms, 0.99), Quantile(r.describe_ms, 1.0), trial_ms, r.job_seconds, r.utilisation, r.stopped, r.ahead, small_trials, r.small_seconds, g_limit);
    std::fflush(stdout);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
