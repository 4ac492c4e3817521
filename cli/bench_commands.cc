#include "cli/bench_commands.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <limits>
#include <string>
#include <vector>

#include "cli/cli_util.h"
#include "coordinator/bayesian_strategy.h"
#include "coordinator/importance.h"
#include "coordinator/random_strategy.h"
#include "coordinator/rng.h"
#include "coordinator/strategy.h"

namespace hpo::cli {
namespace {

using Json = nlohmann::ordered_json;
using coordinator::Observation;
using coordinator::Proposal;

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

double Round(double v, int digits) {
  const double s = std::pow(10.0, digits);
  return std::round(v * s) / s;
}

// Regrets span many orders of magnitude (0.4 for random search on Branin, 1e-7 for a converged
// model): rounded to significant digits, not decimals, so that small ones still compare.
double RoundSignificant(double v, int digits) {
  if (v == 0 || !std::isfinite(v)) return v;
  const int exponent = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  return Round(v, digits - 1 - exponent);
}

proto::NumericRange Range(const std::string& name, double lo, double hi) {
  proto::NumericRange r;
  r.name = name;
  r.min_value = coordinator::FormatDouble(lo);
  r.max_value = coordinator::FormatDouble(hi);
  r.scaling_type = "Linear";
  return r;
}

proto::TuningJobSpec BoxSpec(const std::string& strategy, const std::vector<std::pair<double, double>>& box) {
  proto::TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_name = "bench";
  auto& cfg = spec.hyper_parameter_tuning_job_config.emplace();
  cfg.strategy = strategy;
  cfg.hyper_parameter_tuning_job_objective.emplace().type = "Minimize";
  cfg.hyper_parameter_tuning_job_objective->metric_name = "objective";
  auto& ranges = cfg.parameter_ranges.emplace();
  for (size_t i = 0; i < box.size(); ++i) {
    ranges.continuous_parameter_ranges.push_back(Range("x" + std::to_string(i), box[i].first, box[i].second));
  }
  spec.training_job_definition.emplace();
  return spec;
}

std::vector<double> Point(const coordinator::Config& c, size_t dims) {
  std::vector<double> x(dims);
  for (size_t i = 0; i < dims; ++i) {
    const std::string& t = c.at("x" + std::to_string(i));
    std::from_chars(t.data(), t.data() + t.size(), x[i]);
  }
  return x;
}

Result<kernels::Device> Device(const std::string& text) {
  kernels::Device d;
  if (!kernels::ParseDevice(text, &d)) return Status::InvalidArgument("--device must be cpu, cuda or auto");
  return d;
}

// ---- test functions ---------------------------------------------------------------------------

struct TestFunction {
  std::string name;
  std::vector<std::pair<double, double>> box;
  double optimum;
  double (*f)(const std::vector<double>&);
};

double Branin(const std::vector<double>& x) {
  const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, t = 1 / (8 * M_PI);
  return std::pow(x[1] - b * x[0] * x[0] + c * x[0] - 6, 2) + 10 * (1 - t) * std::cos(x[0]) + 10;
}

double Hartmann6(const std::vector<double>& x) {
  static constexpr double kAlpha[4] = {1.0, 1.2, 3.0, 3.2};
  static constexpr double kA[4][6] = {{10, 3, 17, 3.5, 1.7, 8},
                                      {0.05, 10, 17, 0.1, 8, 14},
                                      {3, 3.5, 1.7, 10, 17, 8},
                                      {17, 8, 0.05, 10, 0.1, 14}};
  static constexpr double kP[4][6] = {{0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886},
                                      {0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991},
                                      {0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650},
                                      {0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381}};
  double s = 0;
  for (int i = 0; i < 4; ++i) {
    double e = 0;
    for (int j = 0; j < 6; ++j) e += kA[i][j] * (x[j] - kP[i][j]) * (x[j] - kP[i][j]);
    s += kAlpha[i] * std::exp(-e);
  }
  return -s;
}

double Ackley(const std::vector<double>& x) {
  double sq = 0, cs = 0;
  for (double v : x) {
    sq += v * v;
    cs += std::cos(2 * M_PI * v);
  }
  const double d = static_cast<double>(x.size());
  return -20 * std::exp(-0.2 * std::sqrt(sq / d)) - std::exp(cs / d) + 20 + M_E;
}

Result<TestFunction> Function(const std::string& name, int dims) {
  if (name == "branin") {
    if (dims != 0 && dims != 2) return Status::InvalidArgument("branin is 2-dimensional (--dims 2)");
    return TestFunction{name, {{-5, 10}, {0, 15}}, 0.397887357729738, Branin};
  }
  if (name == "hartmann6") {
    if (dims != 0 && dims != 6) return Status::InvalidArgument("hartmann6 is 6-dimensional (--dims 6)");
    return TestFunction{name, std::vector<std::pair<double, double>>(6, {0.0, 1.0}), -3.32236801141551, Hartmann6};
  }
  if (name == "ackley") {
    const int d = dims == 0 ? 10 : dims;
    if (d < 1 || d > 100) return Status::InvalidArgument("ackley: --dims must be 1..100");
    return TestFunction{name, std::vector<std::pair<double, double>>(static_cast<size_t>(d), {-32.768, 32.768}), 0.0,
                        Ackley};
  }
  return Status::InvalidArgument("--function must be branin, hartmann6 or ackley");
}

// ---- hpo bench importance: test functions whose Sobol indices are known in closed form -------

struct SobolFunction {
  std::string name;
  std::vector<std::pair<double, double>> box;
  std::vector<double> first, total;  // the exact indices, one per input
  std::function<double(const std::vector<double>&)> f;
};

// Ishigami (a = 7, b = 0.1) on [-pi, pi]^3: the classic check of sensitivity estimators, with an
// interaction (x1 with x3) and an input (x3) that explains nothing alone.
// Sobol's G function on [0, 1]^6 with a = (0, 1, 4.5, 9, 99, 99): importances from large to nil.
Result<SobolFunction> SensitivityFunction(const std::string& name) {
  if (name == "ishigami") {
    constexpr double a = 7, b = 0.1;
    const double v1 = 0.5 * std::pow(1 + b * std::pow(M_PI, 4) / 5, 2), v2 = a * a / 8;
    const double v13 = std::pow(b, 2) * std::pow(M_PI, 8) * (1.0 / 18 - 1.0 / 50);
    const double v = v1 + v2 + v13;
    return SobolFunction{name,
                         std::vector<std::pair<double, double>>(3, {-M_PI, M_PI}),
                         {v1 / v, v2 / v, 0.0},
                         {(v1 + v13) / v, v2 / v, v13 / v},
                         [](const std::vector<double>& x) {
                           return std::sin(x[0]) + a * std::pow(std::sin(x[1]), 2) + b * std::pow(x[2], 4) * std::sin(x[0]);
                         }};
  }
  if (name == "gfunction") {
    static constexpr std::array<double, 6> kA = {0, 1, 4.5, 9, 99, 99};
    std::vector<double> vi;
    double prod = 1;
    for (double a : kA) {
      vi.push_back(1.0 / (3 * (1 + a) * (1 + a)));
      prod *= 1 + vi.back();
    }
    const double v = prod - 1;
    SobolFunction g{name, std::vector<std::pair<double, double>>(6, {0.0, 1.0}), {}, {}, nullptr};
    for (double x : vi) {
      g.first.push_back(x / v);
      g.total.push_back(x * prod / (1 + x) / v);
    }
    g.f = [](const std::vector<double>& x) {
      double p = 1;
      for (size_t i = 0; i < kA.size(); ++i) p *= (std::fabs(4 * x[i] - 2) + kA[i]) / (1 + kA[i]);
      return p;
    };
    return g;
  }
  return Status::InvalidArgument("--function must be ishigami or gfunction");
}

struct ImportanceArgs {
  std::string function = "ishigami", output = "table";
  int evaluations = 100, seeds = 5;
  uint64_t first_seed = 1;
};

void RunImportance(const ImportanceArgs& a) {
  auto fn = SensitivityFunction(a.function);
  if (!fn.ok()) Fail(2, fn.status().message());
  if (a.evaluations < 1 || a.seeds < 1) Fail(2, "--evaluations and --seeds must be at least 1");
  proto::ParameterRanges ranges;
  std::vector<std::string> names;
  for (size_t i = 0; i < fn->box.size(); ++i) {
    proto::NumericRange r;
    r.name = "x" + std::to_string(i + 1);
    r.min_value = coordinator::FormatDouble(fn->box[i].first);
    r.max_value = coordinator::FormatDouble(fn->box[i].second);
    r.scaling_type = "Linear";
    names.push_back(*r.name);
    ranges.continuous_parameter_ranges.push_back(std::move(r));
  }
  auto space = coordinator::SearchSpace::FromRanges(ranges);
  if (!space.ok()) Fail(1, space.status().message());
  Json runs = Json::array();
  std::vector<double> errors;
  for (int k = 0; k < a.seeds; ++k) {
    const uint64_t seed = a.first_seed + static_cast<uint64_t>(k);
    // The training jobs a Random search of `evaluations` would run.
    coordinator::Rng rng(seed);
    std::vector<std::pair<coordinator::Config, double>> obs;
    Json points = Json::array(), values = Json::array();
    for (int e = 0; e < a.evaluations; ++e) {
      coordinator::Config c = space->Sample(rng);
      std::vector<double> x;
      for (const auto& n : names) x.push_back(std::stod(c.at(n)));
      const double y = fn->f(x);
      points.push_back(x);
      values.push_back(y);
      obs.emplace_back(std::move(c), y);
    }
    coordinator::ImportanceOptions io;
    io.seed = seed;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = coordinator::EstimateImportance(*space, obs, false, io);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!rep.ok()) Fail(1, "seed " + std::to_string(seed) + ": " + rep.status().message());
    std::vector<double> first(names.size()), total(names.size());
    for (const auto& p : rep->parameters) {
      const size_t i = static_cast<size_t>(std::find(names.begin(), names.end(), p.name) - names.begin());
      first[i] = p.first_order;
      total[i] = p.total;
    }
    double err = 0;
    for (size_t i = 0; i < names.size(); ++i) err += std::fabs(first[i] - fn->first[i]);
    err /= static_cast<double>(names.size());
    errors.push_back(err);
    runs.push_back({{"seed", seed}, {"first", first}, {"total", total}, {"first_mae", err}, {"seconds", secs},
                    {"points", points}, {"values", values}});
  }
  const double median = Median(errors);
  if (a.output == "json") {
    Json out = {{"function", a.function}, {"names", names}, {"box", fn->box}, {"evaluations", a.evaluations},
                {"true_first", fn->first}, {"true_total", fn->total}, {"median_first_mae", median}, {"seeds", runs}};
    std::cout << out.dump() << "\n";
    return;
  }
  std::printf("%s, %d evaluations (Random search's points), %d seeds: median mean |error| of the first-order indices %.3f\n",
              a.function.c_str(), a.evaluations, a.seeds, median);
  std::printf("  %-4s %8s %8s %10s %10s\n", "", "first", "total", "true first", "true total");
  const Json& r0 = runs.front();
  for (size_t i = 0; i < names.size(); ++i) {
    std::printf("  %-4s %8.3f %8.3f %10.3f %10.3f\n", names[i].c_str(), r0["first"][i].get<double>(),
                r0["total"][i].get<double>(), fn->first[i], fn->total[i]);
  }
  std::printf("  (the estimates of seed %llu)\n", static_cast<unsigned long long>(a.first_seed));
}

Result<std::unique_ptr<coordinator::Strategy>> MakeBenchStrategy(const proto::TuningJobSpec& spec, uint64_t seed,
                                                                 const coordinator::BayesianOptions& o) {
  if (*spec.hyper_parameter_tuning_job_config->strategy == "Bayesian") {
    auto s = coordinator::BayesianStrategy::Create(spec, seed, o);
    if (!s.ok()) return s.status();
    return std::unique_ptr<coordinator::Strategy>(std::move(s).value());
  }
  return coordinator::MakeStrategy(spec, seed);
}

void Print(const Json& j, const std::string& format) {
  if (format == "json") {
    std::cout << j.dump() << "\n";
    return;
  }
  size_t width = 0;  // the longest key and two spaces: max_posterior_points was glued to its value
  for (const auto& [k, v] : j.items()) width = std::max(width, k.size() + 2);
  for (const auto& [k, v] : j.items()) {
    if (v.is_array()) continue;
    std::cout << std::left << std::setw(static_cast<int>(width)) << k << (v.is_string() ? v.get<std::string>() : v.dump())
              << "\n";
  }
}

// ---- hpo bench suggest ------------------------------------------------------------------------

constexpr int kSuggestMaxN = 200000, kSuggestMaxD = 200, kSuggestMaxQ = 1000;

struct SuggestArgs {
  int n = 750, d = 20, q = 32, repeat = 3, threads = 0;
  uint64_t seed = 1;
  std::string device = "auto", output = "table";
};

// A smooth multimodal synthetic objective on the unit cube, with a little noise.
double Synthetic(const std::vector<double>& u, coordinator::Rng& rng) {
  double v = 0;
  for (size_t i = 0; i < u.size(); ++i) {
    v += (u[i] - 0.35) * (u[i] - 0.35) + 0.1 * std::sin(7.0 * u[i] + static_cast<double>(i));
  }
  return v + 0.01 * (rng.Uniform() - 0.5);
}

void RunSuggest(const SuggestArgs& a) {
  spdlog::set_level(spdlog::level::warn);
  Result<kernels::Device> device = Device(a.device);
  if (!device.ok()) {
    std::cerr << "hpo bench suggest: " << device.status().message() << "\n";
    Exit(2);
  }
  if (a.n < 1 || a.d < 1 || a.q < 1 || a.repeat < 1) {
    std::cerr << "hpo bench suggest: --n, --d, --q and --repeat must be at least 1\n";
    Exit(2);
  }
  // Sizes the model serves (a q of 100000 ran out of memory and aborted; a d of 100000 ran on
  // with no end): a tuning job has at most 30 ranges and 100 parallel training jobs.
  if (a.n > kSuggestMaxN || a.d > kSuggestMaxD || a.q > kSuggestMaxQ || a.repeat > 1000) {
    std::cerr << "hpo bench suggest: --n must be at most " << kSuggestMaxN << ", --d at most " << kSuggestMaxD
              << ", --q at most " << kSuggestMaxQ << " and --repeat at most 1000 (a tuning job has at most 30 "
              << "ranges and 100 parallel training jobs)\n";
    Exit(2);
  }
  // Fewer observations than the model waits for: its space-filling start answers, not the model
  // (it exited 1 with the strategy's words, naming no option).
  if (const size_t need = coordinator::BayesianStartSize(static_cast<size_t>(a.d)); static_cast<size_t>(a.n) < need) {
    std::cerr << "hpo bench suggest: --n " << a.n << " is fewer observations than the model needs over --d " << a.d
              << " dimensions (" << need << ": max(3, min(d + 1, 20)), the space-filling start's size); give --n "
              << need << " or more\n";
    Exit(2);
  }
  const proto::TuningJobSpec spec =
      BoxSpec("Bayesian", std::vector<std::pair<double, double>>(static_cast<size_t>(a.d), {0.0, 1.0}));
  // Synthetic history: N completed trials at uniform points.
  std::vector<Observation> history;
  coordinator::Rng rng(a.seed);
  for (int i = 0; i < a.n; ++i) {
    std::vector<double> u(static_cast<size_t>(a.d));
    for (double& v : u) v = rng.Uniform();
    Observation o;
    o.trial = "bench-" + std::to_string(i);
    for (int k = 0; k < a.d; ++k) o.hyperparameters["x" + std::to_string(k)] = coordinator::FormatDouble(u[k]);
    o.objective = Synthetic(u, rng);
    o.status = Observation::kSucceeded;
    history.push_back(std::move(o));
  }
  std::vector<double> fit, acq, total;
  std::string used_device, description;
  size_t engine_calls = 0, fit_device_evaluations = 0;
  std::string fit_device_note;
  std::vector<std::string> kinds;                  // the engine's call kinds, in the strategy's order
  std::map<std::string, std::vector<double>> in_engine;  // seconds by kind, one per repeat
  std::vector<double> acq_host;                    // acquisition seconds outside the engine
  for (int r = 0; r < a.repeat; ++r) {
    coordinator::BayesianOptions o;
    o.device = *device;
    o.threads = a.threads;
    auto s = coordinator::BayesianStrategy::Create(spec, a.seed, o);
    if (!s.ok()) {
      std::cerr << "hpo bench suggest: " << s.status().message() << "\n";
      Exit(s.status().code() == StatusCode::kUnavailable ? 3 : 1);
    }
    if (r == 0 && !(*s)->EngineNote().empty()) std::cerr << "hpo bench suggest: " << (*s)->EngineNote() << "\n";
    description = (*s)->EngineDescription();
    const std::vector<Proposal> p = (*s)->Propose(static_cast<size_t>(a.q), history);
    const coordinator::SuggestStats& st = *(*s)->LastSuggestStats();
    if (!st.fallback.empty() || p.size() != static_cast<size_t>(a.q)) {
      std::cerr << "hpo bench suggest: the model did not propose (" << st.fallback << ")\n";
      Exit(1);
    }
    used_device = st.device;
    engine_calls = st.engine_calls;  // the same every repeat (a function of the seed)
    fit_device_evaluations = st.fit_device_evaluations;
    fit_device_note = st.fit_device_note;
    double engine_total = 0;
    for (const auto& [kind, seconds] : st.engine_seconds) {
      if (!in_engine.count(kind)) kinds.push_back(kind);
      in_engine[kind].push_back(seconds);
      engine_total += seconds;
    }
    acq_host.push_back(st.acq_seconds - engine_total);
    fit.push_back(st.fit_seconds);
    acq.push_back(st.acq_seconds);
    total.push_back(st.seconds);
  }
  Json j;
  j["n"] = a.n;
  j["d"] = a.d;
  j["q"] = a.q;
  j["device"] = used_device;
  j["fit_seconds"] = Round(Median(fit), 4);
  j["acq_seconds"] = Round(Median(acq), 4);
  j["seconds"] = Round(Median(total), 4);
  j["engine_calls"] = engine_calls;
  Json by_kind = Json::object();
  for (const std::string& kind : kinds) by_kind[kind] = Round(Median(in_engine[kind]), 4);
  if (a.output == "json") {
    j["engine_seconds"] = by_kind;
  } else {  // one line for people: "ascend 0.104, pool 0.075, ..."
    std::string line;
    for (const std::string& kind : kinds) {
      char v[32];
      std::snprintf(v, sizeof v, "%.4f", by_kind[kind].get<double>());
      line += (line.empty() ? "" : ", ") + kind + " " + v;
    }
    j["engine_seconds"] = line;
  }
  j["acq_host_seconds"] = Round(Median(acq_host), 4);
  j["fit_device_evaluations"] = fit_device_evaluations;
  if (!fit_device_note.empty()) j["fit_device_note"] = fit_device_note;
  j["engine"] = description;  // (in -o json too: the thread count is recorded with the numbers)
  Print(j, a.output);
  Exit(0);
}

// ---- hpo bench optimize -----------------------------------------------------------------------

struct OptimizeArgs {
  std::string function = "branin", strategy = "Bayesian", device = "auto", output = "table", start = "sobol",
              parallel_exploit = "on", output_warping = "on", failed_fantasies = "on";
  double fail_above = 1.0;  // the first coordinate's fraction above which training jobs fail; 1: none
  int dims = 0, evaluations = 100, batch = 1, seeds = 5;
  // Warm start: each seed's job starts from a parent job's `parents` training jobs (0: cold).
  int parents = 0;
  std::string warm_start_type = "IdenticalDataAndAlgorithm", parent_strategy = "Random";
  double parent_ranges = 1.0;  // the middle fraction of each range the parent searched
  double parent_shift = 0.0;   // TransferLearning's related task: the parent saw f at x + shift * width
  uint64_t first_seed = 1;
  bool curves = false;
  size_t warp_min = 0;
  size_t max_fit_points = coordinator::BayesianOptions().max_fit_points;
  double prior_mean_quantile = coordinator::BayesianOptions().prior_mean_quantile;
  size_t max_posterior_points = coordinator::BayesianOptions().max_posterior_points;
};

// The warm-start parent of one seed's job (hpo bench optimize --parents): `a.parents` training
// jobs of a.parent_strategy over the middle a.parent_ranges of each range, each evaluated at its
// point moved by a.parent_shift of the range (clamped): the parents' observations as the
// coordinator gives them to a child (coordinator/core_tuning.cc, BuildPrior), `prior` for
// TransferLearning. Their best regret on the child's function goes to *best.
std::vector<Observation> ParentHistory(const OptimizeArgs& a, const TestFunction& fn, uint64_t seed,
                                       const coordinator::BayesianOptions& options, double* best) {
  std::vector<std::pair<double, double>> box = fn.box;
  for (auto& [lo, hi] : box) {
    const double cut = (1.0 - a.parent_ranges) / 2.0 * (hi - lo);
    lo += cut;
    hi -= cut;
  }
  auto s = MakeBenchStrategy(BoxSpec(a.parent_strategy, box), seed ^ 0x9e3779b97f4a7c15ULL, options);
  if (!s.ok()) {
    std::cerr << "hpo bench optimize: the parent job: " << s.status().message() << "\n";
    Exit(1);
  }
  std::vector<Observation> history;
  *best = INFINITY;
  while (static_cast<int>(history.size()) < a.parents) {
    const size_t want = static_cast<size_t>(std::min(a.batch, a.parents - static_cast<int>(history.size())));
    std::vector<Proposal> props = (*s)->Propose(want, history);
    if (props.empty()) break;
    for (Proposal& p : props) {
      std::vector<double> x = Point(p.hyperparameters, fn.box.size());
      *best = std::min(*best, fn.f(x));
      for (size_t i = 0; i < x.size(); ++i) {
        const auto [lo, hi] = fn.box[i];
        x[i] = std::clamp(x[i] + a.parent_shift * (hi - lo), lo, hi);
      }
      Observation o;
      o.trial = "parent-" + std::to_string(history.size());
      o.definition_name = p.definition_name;
      o.hyperparameters = std::move(p.hyperparameters);
      o.objective = fn.f(x);
      o.status = Observation::kSucceeded;
      history.push_back(std::move(o));
    }
  }
  for (Observation& o : history) o.prior = a.warm_start_type == "TransferLearning";
  *best -= fn.optimum;
  return history;
}

void RunOptimize(const OptimizeArgs& a) {
  spdlog::set_level(spdlog::level::warn);
  Result<TestFunction> fn = Function(a.function, a.dims);
  Result<kernels::Device> device = Device(a.device);
  if (!fn.ok() || !device.ok()) {
    std::cerr << "hpo bench optimize: " << (!fn.ok() ? fn.status() : device.status()).message() << "\n";
    Exit(2);
  }
  if (a.strategy != "Bayesian" && a.strategy != "Random") {
    std::cerr << "hpo bench optimize: --strategy must be Bayesian or Random\n";
    Exit(2);
  }
  if (a.evaluations < 1 || a.batch < 1 || a.seeds < 1) {
    std::cerr << "hpo bench optimize: --evaluations, --batch and --seeds must be at least 1\n";
    Exit(2);
  }
  if (a.max_fit_points < 2 || a.max_posterior_points < 2) {
    std::cerr << "hpo bench optimize: --max-fit-points and --max-posterior-points must be at least 2\n";
    Exit(2);
  }
  if (a.parents < 0 || !(a.parent_ranges > 0.0 && a.parent_ranges <= 1.0)) {
    std::cerr << "hpo bench optimize: --parents must be at least 0 and --parent-ranges in (0, 1]\n";
    Exit(2);
  }
  // (Each parent option without --parents was ignored: a cold start ran under a warm start's name.)
  if (a.parents == 0 && (a.parent_ranges != 1.0 || a.parent_shift != 0.0 ||
                         a.warm_start_type != "IdenticalDataAndAlgorithm" || a.parent_strategy != "Random")) {
    std::cerr << "hpo bench optimize: --parent-ranges, --parent-shift, --warm-start-type and --parent-strategy "
                 "describe the parent job: give --parents too (e.g. --parents 30)\n";
    Exit(2);
  }
  coordinator::BayesianOptions options;
  options.device = *device;
  options.warp_min_observations = a.warp_min;
  if (a.start == "random") options.start_design = coordinator::BayesianOptions::StartDesign::kRandom;
  options.parallel_exploit = a.parallel_exploit == "on";
  options.max_fit_points = a.max_fit_points;
  options.prior_mean_quantile = a.prior_mean_quantile;
  if (a.output_warping == "off") options.output_warp_margin = std::numeric_limits<double>::quiet_NaN();
  options.max_posterior_points = a.max_posterior_points;
  options.fantasize_failed = a.failed_fantasies == "on";
  options.start_counts_failures = options.fantasize_failed;
  proto::TuningJobSpec spec = BoxSpec(a.strategy, fn->box);
  if (a.parents > 0) {  // as the child's spec says it (the Bayesian model takes its task coordinate from it)
    auto& w = spec.warm_start_config.emplace();
    w.warm_start_type = a.warm_start_type;
    w.parent_hyper_parameter_tuning_jobs.emplace_back().hyper_parameter_tuning_job_name = "bench-parent";
  }
  const double fail_at = fn->box[0].first + a.fail_above * (fn->box[0].second - fn->box[0].first);
  const auto t0 = std::chrono::steady_clock::now();
  Json seeds = Json::array();
  std::vector<double> regrets, parent_regrets;
  double max_suggest = 0;
  std::string used_device, engine;  // Bayesian's: where the model ran
  for (int k = 0; k < a.seeds; ++k) {
    const uint64_t seed = a.first_seed + static_cast<uint64_t>(k);
    auto s = MakeBenchStrategy(spec, seed, options);
    if (!s.ok()) {
      std::cerr << "hpo bench optimize: " << s.status().message() << "\n";
      Exit(s.status().code() == StatusCode::kUnavailable ? 3 : 1);
    }
    // Which engine ran, said as `hpo bench suggest` says it (--device auto ran on the CPU without
    // a word, and a GPU run could not be told from a CPU one).
    if (const auto* bayes = dynamic_cast<const coordinator::BayesianStrategy*>(s->get()); bayes && k == 0) {
      if (!bayes->EngineNote().empty()) std::cerr << "hpo bench optimize: " << bayes->EngineNote() << "\n";
      engine = bayes->EngineDescription();
    }
    double parent_regret = INFINITY;
    std::vector<Observation> history;
    if (a.parents > 0) {
      history = ParentHistory(a, *fn, seed, options, &parent_regret);
      parent_regrets.push_back(parent_regret);
    }
    const int own_start = static_cast<int>(history.size());  // the regret is of the job's own training jobs
    double best = INFINITY;
    size_t failed = 0;
    Json curve = Json::array();
    const auto ts = std::chrono::steady_clock::now();
    while (static_cast<int>(history.size()) - own_start < a.evaluations) {
      const size_t want = static_cast<size_t>(
          std::min(a.batch, a.evaluations - (static_cast<int>(history.size()) - own_start)));
      std::vector<Proposal> props = (*s)->Propose(want, history);
      if (const coordinator::SuggestStats* st = (*s)->LastSuggestStats()) {
        max_suggest = std::max(max_suggest, st->seconds);
        if (!st->device.empty()) used_device = st->device;
      }
      if (props.empty()) break;
      // Virtual time: the whole batch runs at once and completes together.
      for (Proposal& p : props) {
        const std::vector<double> x = Point(p.hyperparameters, fn->box.size());
        Observation o;
        o.trial = "bench-" + std::to_string(history.size());
        o.definition_name = p.definition_name;
        o.hyperparameters = std::move(p.hyperparameters);
        if (a.fail_above < 1.0 && x[0] > fail_at) {  // --fail-above: the training job fails, no objective
          o.status = Observation::kFailed;
          ++failed;
        } else {
          o.objective = fn->f(x);
          best = std::min(best, *o.objective);
          o.status = Observation::kSucceeded;
        }
        history.push_back(std::move(o));
        curve.push_back(RoundSignificant(best - fn->optimum, 4));
      }
    }
    const double regret = best - fn->optimum;
    regrets.push_back(regret);
    Json one;
    one["seed"] = seed;
    one["best"] = Round(best, 9);
    one["regret"] = RoundSignificant(regret, 4);
    if (a.fail_above < 1.0) one["failed"] = failed;
    if (a.parents > 0) one["parent_regret"] = RoundSignificant(parent_regret, 4);
    one["seconds"] = Round(std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count(), 3);
    if (a.curves) one["curve"] = curve;
    seeds.push_back(one);
  }
  double mean = 0;
  for (double r : regrets) mean += r / static_cast<double>(regrets.size());
  Json j;
  j["function"] = fn->name;
  j["dims"] = fn->box.size();
  j["strategy"] = a.strategy;
  if (a.strategy == "Bayesian") {
    // "none": the model never proposed (every proposal from the start; a bayes pass read "").
    j["device"] = used_device.empty() ? "none" : used_device;
    if (!engine.empty()) j["engine"] = engine;
    j["start"] = a.start;
    j["parallel_exploit"] = a.parallel_exploit;
    j["max_fit_points"] = a.max_fit_points;
    j["prior_mean_quantile"] = a.prior_mean_quantile;
    j["output_warping"] = a.output_warping;
    j["max_posterior_points"] = a.max_posterior_points;
    j["failed_fantasies"] = a.failed_fantasies;
  }
  if (a.fail_above < 1.0) j["fail_above"] = a.fail_above;
  if (a.parents > 0) {
    j["parents"] = a.parents;
    j["warm_start_type"] = a.warm_start_type;
    j["parent_strategy"] = a.parent_strategy;
    j["parent_ranges"] = a.parent_ranges;
    j["parent_shift"] = a.parent_shift;
    j["median_parent_regret"] = RoundSignificant(Median(parent_regrets), 4);  // the parents' best, on this function
  }
  j["evaluations"] = a.evaluations;
  j["batch"] = a.batch;
  j["optimum"] = fn->optimum;
  j["median_regret"] = RoundSignificant(Median(regrets), 4);
  j["mean_regret"] = RoundSignificant(mean, 4);
  j["max_suggest_seconds"] = Round(max_suggest, 4);
  j["seconds"] = Round(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 3);
  j["seeds"] = seeds;
  Print(j, a.output);
  if (a.output != "json") {
    for (const Json& s : seeds) {
      std::cout << "seed " << s["seed"].dump() << ": best " << s["best"].dump() << ", regret " << s["regret"].dump()
                << (s.contains("failed") ? ", " + s["failed"].dump() + " failed" : std::string())
                << (s.contains("parent_regret") ? " (its parent's: " + s["parent_regret"].dump() + ")" : std::string())
                << "\n";
      // --curves in a table: the best-so-far regret at ten evenly spaced evaluations (all of them
      // are in -o json); the flag printed nothing here before.
      if (s.contains("curve") && !s["curve"].empty()) {
        const Json& c = s["curve"];
        const size_t n = c.size(), marks = std::min<size_t>(10, n);
        std::cout << "  regret after";
        for (size_t m = 1; m <= marks; ++m) {
          const size_t i = (n * m + marks - 1) / marks;  // 1-based evaluation count, the last = n
          std::cout << " " << i << ": " << c[i - 1].dump() << (m < marks ? "," : "\n");
        }
      }
    }
  }
  Exit(0);
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Benchmarks of the search strategies, run in-process");
  bench->require_subcommand(1);
  bench->footer(
      "hpo bench suggest    how long one Bayesian suggestion takes (fit + acquisition)\n"
      "hpo bench optimize   how good a strategy is on a test function, over several seeds\n"
      "hpo bench importance how close hyperparameter importance comes to known Sobol indices\n"
      "All run the real code in this process: no coordinator, no workers.");

  auto sa = std::make_shared<SuggestArgs>();
  CLI::App* suggest = bench->add_subcommand("suggest", "Latency of one Bayesian suggestion");
  suggest->add_option("--n", sa->n, "Observations (completed trials) the model is fitted on")->capture_default_str();
  suggest->add_option("--d", sa->d, "Dimensions (continuous ranges in [0,1])")->capture_default_str();
  suggest->add_option("--q", sa->q, "Batch size: configurations proposed at once")->capture_default_str();
  suggest->add_option("--device", sa->device, "cpu, cuda or auto (cuda when available)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  suggest->add_option("--repeat", sa->repeat, "Repeats; the median is reported")->capture_default_str();
  suggest->add_option("--seed", sa->seed, "Seed of the synthetic data and the strategy")->capture_default_str();
  suggest
      ->add_option("--threads", sa->threads,
                   "Threads for the fit and the CPU engine (0: OMP_NUM_THREADS, else all cores)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  suggest->add_option("-o,--output", sa->output, "table or json (default: table)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  suggest->footer(
      "Builds a space of D continuous ranges, N completed trials at uniform random points with a smooth\n"
      "multimodal objective, and asks the Bayesian strategy for Q configurations, R times with a fresh\n"
      "strategy. Reports the median fit time (hyperparameters + Cholesky), acquisition time (candidates,\n"
      "refinement, fantasies) and total, in seconds, and how many calls the acquisition made to the GP\n"
      "engine (on a GPU each is a device round trip, so their number sets much of its time), the\n"
      "seconds inside those calls by kind, the acquisition's seconds outside them (host work:\n"
      "candidates, projection, duplicates), and how many of the fit's likelihood evaluations ran on\n"
      "the device (0 on the CPU engine; with cuda, \"fit_device_note\" says why when the fit stayed\n"
      "on the host):\n"
      "  {\"n\":750,\"d\":20,\"q\":32,\"device\":\"cpu\",\"fit_seconds\":..,\"acq_seconds\":..,\"seconds\":..,\n"
      "   \"engine_calls\":..,\"engine_seconds\":{\"load\":..,\"evaluate\":..,\"pool\":..,\"top_k\":..,\n"
      "   \"fantasize\":..,\"ascend\":..,\"descend\":..},\"acq_host_seconds\":..,\"fit_device_evaluations\":0}\n\n"
      "Examples:\n"
      "  hpo bench suggest --n 750 --d 20 --q 32 --device cpu -o json\n"
      "  hpo bench suggest --n 5000 --d 20 --q 32 --device auto --repeat 5\n\n"
      "Beyond 2000 observations the model uses a subset of data (the best quarter plus a random\n"
      "sample), so latency stays bounded. Exit 3 when --device cuda is unavailable (the reason is printed).");
  suggest->callback([sa] { RunSuggest(*sa); });

  auto oa = std::make_shared<OptimizeArgs>();
  CLI::App* optimize = bench->add_subcommand("optimize", "Simple regret of a strategy on a test function");
  optimize->add_option("--function", oa->function, "branin (2-d), hartmann6 (6-d) or ackley (any dims)")
      ->check(CLI::IsMember({"branin", "hartmann6", "ackley"}))
      ->capture_default_str();
  optimize->add_option("--dims", oa->dims, "Dimensions (ackley; default 10)")->check(CLI::Range(1, 100));
  optimize->add_option("--strategy", oa->strategy, "Bayesian or Random")
      ->check(CLI::IsMember({"Bayesian", "Random"}))
      ->capture_default_str();
  optimize->add_option("--evaluations", oa->evaluations, "Function evaluations (trials) per seed")->capture_default_str();
  optimize->add_option("--batch", oa->batch, "Trials proposed and run together (parallel slots)")->capture_default_str();
  optimize->add_option("--seeds", oa->seeds, "Number of seeds (independent runs)")->capture_default_str();
  optimize->add_option("--first-seed", oa->first_seed, "Seeds are first-seed, first-seed+1, ...")->capture_default_str();
  optimize->add_option("--device", oa->device, "cpu, cuda or auto (Bayesian)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}))
      ->capture_default_str();
  optimize->add_option("--warp-min", oa->warp_min,
                       "Input warping from this many observations on (0: the default, 10 per numeric coordinate)")
      ->capture_default_str();
  optimize->add_option("--start", oa->start,
                       "Bayesian's first D + 1 proposals: sobol (space-filling, the default) or random")
      ->check(CLI::IsMember({"sobol", "random"}))
      ->capture_default_str();
  optimize->add_option("--parallel-exploit", oa->parallel_exploit,
                       "Bayesian with --batch 4 or more: one member of each batch is the model's predicted best "
                       "(the posterior mean's minimiser) rather than expected improvement's choice: on (the default) "
                       "or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  optimize->add_option("--max-posterior-points", oa->max_posterior_points,
                       "Bayesian: the posterior uses at most this many observations (the best quarter of them and "
                       "a seeded sample of the rest); set it below --evaluations to measure what the approximation "
                       "costs")
      ->capture_default_str();
  optimize->add_option("--max-fit-points", oa->max_fit_points,
                       "Bayesian: the kernel's hyperparameters are fitted on at most this many of those")
      ->capture_default_str();
  optimize->add_option("--prior-mean-quantile", oa->prior_mean_quantile,
                       "Bayesian: the model predicts this quantile of the objectives seen where it has no data "
                       "(the functions are minimised: 0.75, the default, leans pessimistic, so unexplored corners "
                       "do not look better than most trials; 0.5 is the median)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  optimize->add_option("--output-warping", oa->output_warping,
                       "Bayesian: on (the default), the model fits a monotone transform of the objectives "
                       "(Yeo-Johnson) when that explains them better than the values as they are, which spreads "
                       "out a narrow good basin below a plateau of poor values; off models the values as they are")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  optimize->add_option("--fail-above", oa->fail_above,
                       "Training jobs whose first coordinate lies above this fraction of its range fail, with no "
                       "objective (a learning rate that diverges): measures how well a strategy keeps away from a "
                       "region that fails. The regret is the best value of those that did not fail; 1 (the "
                       "default): none fail")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  optimize->add_option("--failed-fantasies", oa->failed_fantasies,
                       "Bayesian: on (the default), the acquisition treats each failed configuration as one that "
                       "gave the worst objective seen, so proposals move away from it, and failures count towards "
                       "the space-filling start (two objectives are needed still), whose points near one go last; off leaves failures out altogether")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  optimize->add_option("--parents", oa->parents,
                       "Warm start: each seed's job starts from a parent job of this many training jobs on the "
                       "same function (0, the default: a cold start); the regret is of the job's own training jobs")
      ->capture_default_str();
  optimize->add_option("--warm-start-type", oa->warm_start_type,
                       "With --parents: IdenticalDataAndAlgorithm (the default: the parents' results are the "
                       "job's own) or TransferLearning (the model keeps them apart by a task coordinate)")
      ->check(CLI::IsMember({"IdenticalDataAndAlgorithm", "TransferLearning"}));
  optimize->add_option("--parent-strategy", oa->parent_strategy, "With --parents: the parent job's strategy")
      ->check(CLI::IsMember({"Bayesian", "Random"}))
      ->capture_default_str();
  optimize->add_option("--parent-ranges", oa->parent_ranges,
                       "With --parents: the parent searched this middle fraction of each range (the child's "
                       "ranges are wider); 1, the default: the same ranges")
      ->capture_default_str();
  optimize->add_option("--parent-shift", oa->parent_shift,
                       "With --parents: a related task (TransferLearning's case): the parent's objective at x was "
                       "the function at x moved by this fraction of each range; 0, the default: the same function")
      ->capture_default_str();
  optimize->add_flag("--curves", oa->curves,
                     "Each seed's best-so-far regret: after every evaluation (-o json), at ten of them (table)");
  optimize->add_option("-o,--output", oa->output, "table or json (default: table)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  optimize->footer(
      "Runs the strategy against the function in virtual time: each round proposes --batch configurations\n"
      "given everything finished so far, evaluates them, and reports them complete. The simple regret is\n"
      "the best value found minus the known optimum (0 is perfect).\n\n"
      "Examples:\n"
      "  hpo bench optimize --function branin --strategy Bayesian --evaluations 50 --seeds 5\n"
      "  hpo bench optimize --function ackley --dims 10 --strategy Random --evaluations 100 --batch 8 -o json\n"
      "  hpo bench optimize --function hartmann6 --evaluations 20 --parents 40 --seeds 10   (warm start)\n\n"
      "JSON: {\"function\",\"dims\",\"strategy\",[\"start\",\"parallel_exploit\",\"max_fit_points\",\"max_posterior_points\",\n"
      "\"prior_mean_quantile\",\"output_warping\",\"failed_fantasies\",][\"fail_above\",][\"parents\",\"warm_start_type\",\n"
      "\"parent_strategy\",\"parent_ranges\",\"parent_shift\",\"median_parent_regret\",]\"evaluations\",\"batch\",\"optimum\",\n"
      "\"median_regret\",\"mean_regret\",\"max_suggest_seconds\",\"seconds\",\n"
      "\"seeds\":[{\"seed\",\"best\",\"regret\"[,\"failed\"][,\"parent_regret\"],\"seconds\"[,\"curve\"]}]}\n\n"
      "With --parents, each seed's job is warm-started (WarmStartConfig) from a parent job run first on the same\n"
      "function: its training jobs are in the history as the coordinator gives them to a child job; the regret,\n"
      "the curve and --evaluations are the job's own training jobs. Compare with --parents 0 at the same seeds.");
  optimize->callback([oa] { RunOptimize(*oa); });

  auto ia = std::make_shared<ImportanceArgs>();
  CLI::App* importance = bench->add_subcommand(
      "importance", "Accuracy of the hyperparameter importance against functions whose Sobol indices are known");
  importance->add_option("--function", ia->function,
                         "ishigami (3-d: an interaction, and an input that matters only through it) or gfunction "
                         "(6-d, Sobol's G: importances from large to nil)")
      ->check(CLI::IsMember({"ishigami", "gfunction"}))
      ->capture_default_str();
  importance->add_option("--evaluations", ia->evaluations, "Training jobs the estimate sees (Random search's points)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  importance->add_option("--seeds", ia->seeds, "Number of seeds (independent sets of points)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  importance->add_option("--first-seed", ia->first_seed, "Seeds are first-seed, first-seed+1, ...")->capture_default_str();
  importance->add_option("-o,--output", ia->output, "table or json (default: table)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  importance->footer(
      "Draws --evaluations points as Random search would, evaluates the function there, and estimates\n"
      "each input's first-order and total Sobol index as hpo describe's \"what mattered\" does\n"
      "(coordinator/importance.h); prints them beside the exact ones, and the mean absolute error of\n"
      "the first-order indices. bench/importance/run.sh sets the same points before Optuna's fANOVA.\n\n"
      "Examples:\n"
      "  hpo bench importance --function ishigami --evaluations 100 --seeds 10\n"
      "  hpo bench importance --function gfunction --evaluations 200 -o json\n\n"
      "JSON: {\"function\",\"names\",\"box\",\"evaluations\",\"true_first\",\"true_total\",\"median_first_mae\",\n"
      "\"seeds\":[{\"seed\",\"first\",\"total\",\"first_mae\",\"seconds\",\"points\",\"values\"}]}");
  importance->callback([ia] { RunImportance(*ia); });
}

}  // namespace hpo::cli
