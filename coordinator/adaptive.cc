#include "coordinator/adaptive.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "kernels/quantile.h"
#include "proto/validate.h"

namespace hpo::coordinator {

namespace {

bool Worse(double a, double b, bool maximize) { return maximize ? a < b : a > b; }

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::optional<int64_t> ParsePositive(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v >= 1 ? std::optional<int64_t>(v) : std::nullopt;
}

}  // namespace

// ---- median rule ---------------------------------------------------------------------------

MedianDecision MedianRule(std::span<const std::vector<double>* const> earlier, std::span<const double> current,
                          bool maximize, size_t min_peers) {
  MedianDecision d;
  d.epoch = current.size();
  if (d.epoch == 0) return d;
  d.value = current.back();
  std::vector<double> averages;
  for (const std::vector<double>* c : earlier) {
    if (c == nullptr || c->size() < d.epoch) continue;
    double sum = 0;
    for (size_t i = 0; i < d.epoch; ++i) sum += (*c)[i];
    averages.push_back(sum / static_cast<double>(d.epoch));
  }
  d.peers = averages.size();
  if (averages.empty()) return d;
  d.median = Quantile(std::move(averages), 0.5);
  d.stop = d.peers >= std::max<size_t>(min_peers, 1) && Worse(d.value, d.median, maximize);
  return d;
}

namespace {
// "st", "nd", "rd" or "th": 1st, 2nd, 3rd, 11th, 12th, 13th, 21st, 71st, 111th ("the 71th value").
const char* OrdinalSuffix(uint64_t n) {
  if (n % 100 >= 11 && n % 100 <= 13) return "th";
  switch (n % 10) {
    case 1: return "st";
    case 2: return "nd";
    case 3: return "rd";
    default: return "th";
  }
}
}  // namespace

std::string MedianDecision::Explain(bool maximize) const {
  // "Report", not "epoch": a trainer counting epochs from 0 printed "epoch=0" for report 1.
  return "early stopping (median rule): objective " + Num(value) + " at its report " + std::to_string(epoch) +
         " (the " + std::to_string(epoch) + OrdinalSuffix(epoch) +
         " value it printed) is " + (maximize ? "below" : "above") + " the median " + Num(median) +
         " of the running averages of " + std::to_string(peers) + " earlier training jobs over as many reports";
}

double Quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return kernels::QuantileOfSorted(values, q);
}

// ---- Hyperband -------------------------------------------------------------------------------

int HyperbandSchedule::Brackets() const {
  int s = 0;
  // Integer arithmetic: min * eta^(s+1) <= max.
  for (int64_t r = min_resource; eta > 1 && r <= max_resource / eta; r *= eta) ++s;
  return s + 1;
}

int HyperbandSchedule::BracketOf(int trial_index) const {
  const int n = Brackets();
  if (n <= 1) return 0;
  const int s_max = n - 1;
  std::vector<double> weight(static_cast<size_t>(n));
  double total = 0;
  for (int b = 0; b < n; ++b) {
    weight[static_cast<size_t>(b)] = std::pow(static_cast<double>(eta), s_max - b) / static_cast<double>(s_max - b + 1);
    total += weight[static_cast<size_t>(b)];
  }
  // A low-discrepancy walk (golden-ratio steps) through the cumulative weights: every prefix of
  // trials is split close to the weights, and the split is a function of the index alone.
  const double golden = 0.6180339887498949;
  double u = std::fmod(static_cast<double>(trial_index) * golden, 1.0) * total;
  for (int b = 0; b < n; ++b) {
    u -= weight[static_cast<size_t>(b)];
    if (u < 0) return b;
  }
  return s_max;
}

std::vector<int64_t> HyperbandSchedule::Rungs(int bracket) const {
  std::vector<int64_t> rungs;
  int64_t r = min_resource;
  for (int b = 0; b < bracket && r <= max_resource / eta; ++b) r *= eta;
  for (; r < max_resource; r = (r > max_resource / eta) ? max_resource : r * eta) rungs.push_back(r);
  return rungs;
}

std::vector<int64_t> HyperbandSchedule::AllRungs() const {
  std::vector<int64_t> all;
  for (int b = 0; b < Brackets(); ++b) {
    for (int64_t r : Rungs(b)) all.push_back(r);
  }
  all.push_back(max_resource);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

Result<HyperbandSchedule> HyperbandScheduleFor(const proto::TuningJobSpec& spec,
                                               const proto::TrainingJobDefinition& definition) {
  HyperbandSchedule s;
  std::optional<int64_t> max_from_config;
  const auto& cfg = spec.hyper_parameter_tuning_job_config;
  if (cfg && cfg->strategy_config && cfg->strategy_config->hyperband_strategy_config) {
    const auto& h = *cfg->strategy_config->hyperband_strategy_config;
    if (h.min_resource) s.min_resource = *h.min_resource;
    max_from_config = h.max_resource;
  }
  const std::optional<int64_t> epochs = ProgramEpochs(definition);
  if (max_from_config) {
    s.max_resource = *max_from_config;
  } else if (epochs) {
    s.max_resource = *epochs;
  } else {
    return Status::InvalidArgument(
        "the Hyperband strategy needs a maximum resource: set StrategyConfig.HyperbandStrategyConfig.MaxResource "
        "or a static hyperparameter epochs (a positive integer)");
  }
  if (s.min_resource < 1 || s.max_resource < s.min_resource) {
    return Status::InvalidArgument("Hyperband resources must satisfy 1 <= MinResource (" +
                                   std::to_string(s.min_resource) + ") <= MaxResource (" +
                                   std::to_string(s.max_resource) + ")");
  }
  // A program whose own epochs end it at max_resource completes by itself there; stopping it at
  // that very emission would only race its normal exit. One whose epochs are fewer and that still
  // reaches max_resource does not heed them, and is stopped there (it ran on past MaxResource: a
  // hyperband pass); so is any past max_resource (AshaDecide).
  s.stop_at_max = !(epochs && *epochs == s.max_resource);
  return s;
}

std::optional<int64_t> ProgramEpochs(const proto::TrainingJobDefinition& definition) {
  std::optional<std::string> key = proto::EpochsHyperParameter(definition);
  if (!key) return std::nullopt;
  return ParsePositive(definition.static_hyper_parameters.at(*key));
}

RungDecision AshaDecide(const HyperbandSchedule& schedule, int trial_index, std::span<const double> current,
                        std::span<const std::vector<double>* const> bracket_peers, bool maximize) {
  RungDecision d;
  d.bracket = schedule.BracketOf(trial_index);
  const int64_t r = static_cast<int64_t>(current.size());
  if (r == 0 || r < schedule.min_resource) return d;
  d.value = current.back();
  d.rung = r;
  if (r >= schedule.max_resource) {
    d.at_rung = true;
    d.reached_max = schedule.stop_at_max || r > schedule.max_resource;  // past it, it did not end by itself
    d.stop = d.reached_max;
    d.rung = schedule.max_resource;
    return d;
  }
  const std::vector<int64_t> rungs = schedule.Rungs(d.bracket);
  if (!std::binary_search(rungs.begin(), rungs.end(), r)) return d;
  d.at_rung = true;
  std::vector<double> recorded;
  for (const std::vector<double>* c : bracket_peers) {
    if (c != nullptr && static_cast<int64_t>(c->size()) >= r) recorded.push_back((*c)[static_cast<size_t>(r - 1)]);
  }
  d.recorded = recorded.size();
  if (recorded.empty()) return d;
  const double keep = 1.0 / static_cast<double>(schedule.eta);
  d.cutoff = Quantile(std::move(recorded), maximize ? 1.0 - keep : keep);
  d.stop = Worse(d.value, d.cutoff, maximize);
  return d;
}

std::string RungDecision::Explain(bool maximize) const {
  if (reached_max) {
    return "Hyperband: reached MaxResource (" + std::to_string(rung) + " epochs)";
  }
  return "Hyperband: objective " + Num(value) + " at resource " + std::to_string(rung) + " (bracket " +
         std::to_string(bracket) + ") is not in the top of " + std::to_string(recorded + 1) +
         " training jobs at that rung (cutoff " + Num(cutoff) + ", " + (maximize ? "higher" : "lower") +
         " is better)";
}

// ---- completion criteria -----------------------------------------------------------------------

void NotImprovingTracker::Add(double value, bool maximize) {
  if (!best) {
    best = value;
    not_improving = 0;
    return;
  }
  const double margin = 0.01 * std::fabs(*best);
  const bool improves = maximize ? value > *best + margin : value < *best - margin;
  if (improves) {
    not_improving = 0;
  } else {
    ++not_improving;
  }
  if (!Worse(value, *best, maximize) && value != *best) best = value;
}

bool Converged(std::span<const double> objectives, bool maximize) {
  const size_t n = objectives.size();
  const size_t w = std::max<size_t>(10, (n + 4) / 5);
  if (n < 2 * w) return false;
  auto better = [&](double a, double b) { return maximize ? a > b : a < b; };
  double best_before = objectives[0];
  for (size_t i = 1; i < n - w; ++i) {
    if (better(objectives[i], best_before)) best_before = objectives[i];
  }
  double best_all = best_before, lo = objectives[0], hi = objectives[0];
  for (size_t i = 0; i < n; ++i) {
    if (better(objectives[i], best_all)) best_all = objectives[i];
    lo = std::min(lo, objectives[i]);
    hi = std::max(hi, objectives[i]);
  }
  const double spread = hi - lo;
  return std::fabs(best_all - best_before) <= 0.001 * spread;
}

}  // namespace hpo::coordinator
