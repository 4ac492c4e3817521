#include "coordinator/autotune.h"

#include <algorithm>
#include <set>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

#include "common/text.h"
#include "coordinator/search_space.h"

namespace hpo::coordinator {
namespace {

using proto::AutoParameter;
using proto::CategoricalRange;
using proto::NumericRange;
using proto::ParameterRanges;
using proto::TrainingJobDefinition;
using proto::TuningJobSpec;

constexpr int64_t kMaxScalableInteger = int64_t{1} << 48;  // 4h stays exact in a double

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

bool IsIntegerText(const std::string& text) {
  size_t i = (!text.empty() && (text[0] == '+' || text[0] == '-')) ? 1 : 0;
  if (i == text.size()) return false;
  return std::all_of(text.begin() + static_cast<std::ptrdiff_t>(i), text.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

// Six significant digits, so that h/10 of "0.3" reads "0.03", not "0.030000000000000002".
std::string Decimal(double v, int digits = 6) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

// The shortest of v's decimal forms, from `from` significant digits up to 17, whose value `keeps`
// accepts; "" when none does.
template <typename Keeps>
std::string ShortestDecimal(double v, int from, Keeps keeps) {
  for (int digits = from; digits <= 17; ++digits) {
    std::string t = Decimal(v, digits);
    if (std::optional<double> x = ParseNumber(t); x && keeps(*x)) return t;
  }
  return std::string();
}


// "true" -> "false" keeping the case style of the hint ("True" -> "False", "TRUE" -> "FALSE").
std::string OtherBoolean(const std::string& hint) {
  const bool is_true = AsciiLower(hint) == "true";
  std::string other = is_true ? "false" : "true";
  if (hint == AsciiLower(hint)) return other;
  std::string upper = other;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (std::all_of(hint.begin(), hint.end(), [](char c) { return std::isupper(static_cast<unsigned char>(c)); })) {
    return upper;
  }
  other[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(other[0])));
  return other;
}

// What one AutoParameter becomes.
struct Inferred {
  std::optional<NumericRange> integer;
  std::optional<NumericRange> continuous;
  std::optional<CategoricalRange> categorical;
  std::string kept_static_because;  // set: not eligible, stays static with the hint as value
};

Inferred InferNumeric(const std::string& name, const std::string& hint) {
  Inferred r;
  if (IsIntegerText(hint)) {
    std::optional<double> h = ParseNumber(hint);
    if (!h || *h < 1) {
      r.kept_static_because = "an integer below 1 (0 or a negative value often means off or unlimited)";
      return r;
    }
    if (*h > static_cast<double>(kMaxScalableInteger)) {
      r.kept_static_because = "an integer too large to scale";
      return r;
    }
    const auto v = static_cast<int64_t>(*h);
    const int64_t lo = std::max<int64_t>(1, v / 4), hi = 4 * v;
    r.integer = NumericRange{name, std::to_string(lo), std::to_string(hi),
                             hi >= 10 * lo ? "Logarithmic" : "Linear"};
    return r;
  }
  std::optional<double> h = ParseNumber(hint);
  if (!h || hint.find_first_of(".eE") == std::string::npos) {
    r.kept_static_because = "not a number or true/false";
    return r;
  }
  if (*h <= 0) {
    r.kept_static_because = "a number <= 0 (no scale to search around)";
    return r;
  }
  double lo = *h / 10, hi = 10 * *h;
  std::string scaling = "Logarithmic";
  if (*h < 1) {
    hi = std::min(hi, (1 + *h) / 2);  // a value in (0,1) stays in (0,1): a rate, a probability
    if (*h > 0.5) scaling = "ReverseLogarithmic";
  }
  // Rounded, but never onto a bound the scaling forbids: 0.9999999's upper end is 0.99999995,
  // not "1" (ReverseLogarithmic needs it below 1).
  std::string lo_text = ShortestDecimal(lo, 6, [](double x) { return x > 0; });
  std::string hi_text = ShortestDecimal(hi, 6, [&](double x) { return *h >= 1 || x < 1; });
  if (lo_text.empty()) {
    r.kept_static_because = "a number too small to scale";
    return r;
  }
  if (hi_text.empty()) {
    r.kept_static_because = "a number that cannot be scaled (too large, or too close to 1)";
    return r;
  }
  r.continuous = NumericRange{name, lo_text, hi_text, scaling};
  return r;
}

// Grid searches categorical ranges only: a numeric range becomes up to five of its values.
CategoricalRange ToGridValues(const NumericRange& range, bool integer, const std::string& hint) {
  // An integer range's points are placed as a continuous range's and rounded to the nearest
  // integer: its own scale maps a unit point to the bucket below (100's lower halfway point in
  // 25 .. 400, log, came out 49, and 2 in 1 .. 16 came out 1, a duplicate; a limits pass).
  ParameterRanges one;
  one.continuous_parameter_ranges.push_back(range);
  Result<SearchSpace> space = SearchSpace::FromRanges(one);
  std::vector<std::pair<double, std::string>> values;
  auto add = [&](const std::string& text) {
    std::optional<double> v = ParseNumber(text);
    if (!v) return;
    for (const auto& [x, t] : values) {
      if (x == *v) return;
    }
    values.push_back({*v, text});
  };
  add(hint);
  if (space.ok()) {
    // The ends, and halfway from the hint to each (in the range's scaling): the values spread on
    // both sides of the hint. Fixed quarter points put one next to a hint near the 3/4 point
    // (0.3 and 0.301 in 0.03 .. 0.65), a wasted combination.
    double h = 0.5;
    if (std::vector<double> u = space->ToUnit({{*range.name, hint}}); u.size() == 1 && std::isfinite(u[0])) {
      h = std::clamp(u[0], 0.0, 1.0);
    }
    std::vector<double> at = {0.0, h / 2, (h + 1) / 2, 1.0};
    // A hint at an end leaves one side empty: the quarter points of the other instead. (Told by
    // its value too: an integer's unit point is the middle of its bucket, 0.125 for 1 in 1 .. 4,
    // and halfway to the end fell back on the hint, so Grid got 1, 3, 4 and never 2.)
    const std::optional<double> hv = ParseNumber(hint), lo = ParseNumber(*range.min_value),
                                hi = ParseNumber(*range.max_value);
    if (h < 0.05 || (hv && lo && *hv <= *lo)) at = {0.25, 0.5, 0.75, 1.0};
    if (h > 0.95 || (hv && hi && *hv >= *hi)) at = {0.0, 0.25, 0.5, 0.75};
    // Three significant digits, or as many more as keep the value inside the range: 0.9995 at
    // three digits is "1", outside a range below 1 (a momentum or Adam's beta2 of 1, which
    // PyTorch refuses).
    auto short_text = [&](const std::string& text) {
      const std::optional<double> x = ParseNumber(text);
      if (integer && x && lo && hi) {
        return std::to_string(std::clamp(std::llround(*x), std::llround(*lo), std::llround(*hi)));
      }
      if (integer || !x || !lo || !hi) return text;
      std::string t = ShortestDecimal(*x, 3, [&](double y) { return y >= *lo && y <= *hi; });
      return t.empty() ? text : t;
    };
    for (double u : at) add(short_text(space->FromUnit(std::vector<double>{u}).at(*range.name)));
  }
  std::sort(values.begin(), values.end());
  CategoricalRange c{range.name, {}};
  for (const auto& [x, t] : values) c.values.push_back(t);
  return c;
}

std::string Describe(const NumericRange& r) { return *r.min_value + " .. " + *r.max_value + ", " + *r.scaling_type; }

std::string Describe(const CategoricalRange& c) {
  std::string s;
  for (const auto& v : c.values) s += (s.empty() ? "" : ", ") + v;
  return "[" + s + "]";
}

size_t Tuned(const std::optional<ParameterRanges>& r) {
  if (!r) return 0;
  return r->integer_parameter_ranges.size() + r->continuous_parameter_ranges.size() +
         r->categorical_parameter_ranges.size();
}

class Resolver {
 public:
  Resolver(const TuningJobSpec& spec, const proto::ValidationLimits& limits, proto::Spelling spelling)
      : out_{spec, {}}, limits_(limits), root_(spelling) {}

  Result<AutotuneResult> Run() {
    TuningJobSpec& s = out_.spec;
    if (!s.autotune) return std::move(out_);
    if (!s.hyper_parameter_tuning_job_config) s.hyper_parameter_tuning_job_config.emplace();
    auto& cfg = *s.hyper_parameter_tuning_job_config;
    const proto::FieldPath c = root_.Child("HyperParameterTuningJobConfig");

    if (!cfg.strategy) {
      cfg.strategy = "Bayesian";
      Choose(c.Child("Strategy"), "Bayesian", "left out; Bayesian search models the results so far");
    }
    grid_ = *cfg.strategy == "Grid";
    // Hyperband takes its maximum resource from an epochs-type static hyperparameter unless
    // MaxResource is written: such a hint stays static, or Autotune would make it a range and the
    // job would be refused for lacking the very hyperparameter its hint gave.
    hyperband_epochs_ = *cfg.strategy == "Hyperband" &&
                        !(cfg.strategy_config && cfg.strategy_config->hyperband_strategy_config &&
                          cfg.strategy_config->hyperband_strategy_config->max_resource);

    std::vector<TrainingJobDefinition*> defs;
    if (s.training_job_definition) defs.push_back(&*s.training_job_definition);
    for (auto& d : s.training_job_definitions) defs.push_back(&d);

    if (cfg.parameter_ranges) Ranges(*cfg.parameter_ranges, c.Child("ParameterRanges"), defs);
    for (size_t i = 0; i < defs.size(); ++i) {
      if (!defs[i]->hyper_parameter_ranges) continue;
      Ranges(*defs[i]->hyper_parameter_ranges, DefinitionPath(i).Child("HyperParameterRanges"), {defs[i]});
    }

    size_t tuned = 0;
    for (const TrainingJobDefinition* d : defs) {
      tuned = std::max(tuned, Tuned(cfg.parameter_ranges) + Tuned(d->hyper_parameter_ranges));
    }
    if (tuned == 0 && ineligible_.empty()) {
      return Status::InvalidArgument(
          "Autotune found nothing to tune: the spec has neither ranges nor AutoParameters. Add AutoParameters "
          "(each a Name and a ValueHint, an example value such as the one you train with now) or write a range");
    }
    if (tuned == 0) {
      std::string why;
      for (const auto& [name, because] : ineligible_) why += "; " + Quote(name) + ": " + because;
      return Status::InvalidArgument("Autotune found nothing to tune: no AutoParameters hint is eligible for a range" +
                                     why + ". Give a positive number or true/false as a hint, or write a range");
    }

    if (grid_ && !(cfg.resource_limits && cfg.resource_limits->max_number_of_training_jobs)) FitGrid(cfg, defs);
    HPO_RETURN_IF_ERROR(Limits(cfg, defs, tuned, c.Child("ResourceLimits")));
    if (!cfg.training_job_early_stopping_type && (*cfg.strategy == "Bayesian" || *cfg.strategy == "Random") &&
        defs.size() == 1) {
      cfg.training_job_early_stopping_type = "Auto";
      Choose(c.Child("TrainingJobEarlyStoppingType"), "Auto",
             "left out; stops training jobs whose objective trails the median of earlier ones at the same step");
    }
    for (size_t i = 0; i < defs.size(); ++i) {
      if (defs[i]->retry_strategy && defs[i]->retry_strategy->maximum_retry_attempts) continue;
      defs[i]->retry_strategy = proto::RetryStrategy{2};
      Choose(DefinitionPath(i).Child("RetryStrategy").Child("MaximumRetryAttempts"), "2",
             "left out; a training job lost to an infrastructure failure runs again, up to twice");
    }
    auto& cc = cfg.tuning_job_completion_criteria;
    if (!cc) cc.emplace();
    if (!cc->convergence_detected) cc->convergence_detected.emplace();
    if (!cc->convergence_detected->complete_on_convergence) {
      cc->convergence_detected->complete_on_convergence = "Enabled";
      Choose(c.Child("TuningJobCompletionCriteria").Child("ConvergenceDetected").Child("CompleteOnConvergence"),
             "Enabled",
             "left out; the job ends early once its best objective has converged");
    }
    return std::move(out_);
  }

 private:
  proto::FieldPath DefinitionPath(size_t i) const {
    return out_.spec.training_job_definition ? root_.Child("TrainingJobDefinition")
                                             : root_.Child("TrainingJobDefinitions").Index(i);
  }

  void Choose(const proto::FieldPath& field, std::string value, std::string reason) {
    Choose(field.str(), std::move(value), std::move(reason));
  }
  void Choose(std::string field, std::string value, std::string reason) {
    out_.choices.push_back({std::move(field), std::move(value), std::move(reason)});
  }

  // Replaces the block's AutoParameters by ranges, or by static hyperparameters of `statics`.
  void Ranges(ParameterRanges& r, const proto::FieldPath& path, const std::vector<TrainingJobDefinition*>& statics) {
    std::vector<AutoParameter> autos = std::move(r.auto_parameters);
    r.auto_parameters.clear();
    for (size_t i = 0; i < autos.size(); ++i) {
      const std::string name = autos[i].name.value_or("");
      const std::string hint = autos[i].value_hint.value_or("");
      const std::string field = path.Child("AutoParameters").Index(i).str() + " (" + Quote(name) + ")";
      Inferred inf;
      TrainingJobDefinition epochs_probe;
      epochs_probe.static_hyper_parameters[name] = hint;
      if (name.rfind("sagemaker_", 0) == 0 || name.rfind('_', 0) == 0) {
        inf.kept_static_because = "a reserved name (sagemaker_* and _* are settings, not hyperparameters to tune)";
      } else if (hyperband_epochs_ && proto::EpochsHyperParameter(epochs_probe)) {
        inf.kept_static_because =
            "Hyperband's maximum resource (the epochs a training job may run at most; Hyperband chooses how many "
            "each one runs)";
      } else if (AsciiLower(hint) == "true" || AsciiLower(hint) == "false") {
        inf.categorical = CategoricalRange{name, {hint, OtherBoolean(hint)}};
      } else {
        inf = InferNumeric(name, hint);
      }
      if (grid_ && (inf.integer || inf.continuous)) {
        const bool integer = inf.integer.has_value();
        inf.categorical = ToGridValues(integer ? *inf.integer : *inf.continuous, integer, hint);
        grid_made_.push_back({&r, name, hint, field});
        inf.integer.reset();
        inf.continuous.reset();
      }
      if (inf.integer) {
        made_.push_back(name + " " + Describe(*inf.integer));
        Choose(field, "IntegerParameterRanges " + Describe(*inf.integer), "a factor of 4 either side of the hint " + hint + ", at least 1");
        r.integer_parameter_ranges.push_back(std::move(*inf.integer));
      } else if (inf.continuous) {
        Choose(field, "ContinuousParameterRanges " + Describe(*inf.continuous),
               "a factor of 10 either side of the hint " + hint +
                   (*ParseNumber(hint) < 1 ? ", at most halfway from it to 1 (a rate or a probability stays below 1)"
                                           : ""));
        r.continuous_parameter_ranges.push_back(std::move(*inf.continuous));
      } else if (inf.categorical) {
        made_.push_back(name + " " + Describe(*inf.categorical));
        Choose(field, "CategoricalParameterRanges " + Describe(*inf.categorical),
               grid_ ? "values around the hint " + hint + " (Grid searches categorical ranges)"
                     : "both values of the hint " + hint);
        r.categorical_parameter_ranges.push_back(std::move(*inf.categorical));
      } else {
        Choose(field, "static " + hint, "not tuned: the hint is " + inf.kept_static_because);
        ineligible_.push_back({name, inf.kept_static_because});
        for (TrainingJobDefinition* d : statics) d->static_hyper_parameters[name] = hint;
      }
    }
  }

  // The distinct configurations of ranges that are all integer and categorical (summed over
  // definitions); nullopt when a range is continuous (no limit).
  static std::optional<int64_t> FiniteCombinations(const proto::TuningJobConfig& cfg,
                                                   const std::vector<TrainingJobDefinition*>& defs) {
    constexpr int64_t kCap = int64_t{1} << 40;
    int64_t total = 0;
    for (const TrainingJobDefinition* d : defs) {
      int64_t n = 1;
      for (const auto* r : {cfg.parameter_ranges ? &*cfg.parameter_ranges : nullptr,
                            d->hyper_parameter_ranges ? &*d->hyper_parameter_ranges : nullptr}) {
        if (!r) continue;
        if (!r->continuous_parameter_ranges.empty() || !r->auto_parameters.empty()) return std::nullopt;
        for (const auto& c : r->categorical_parameter_ranges) n = std::min<int64_t>(n * c.values.size(), kCap);
        for (const auto& i : r->integer_parameter_ranges) {
          const double lo = i.min_value ? std::strtod(i.min_value->c_str(), nullptr) : 0;
          const double hi = i.max_value ? std::strtod(i.max_value->c_str(), nullptr) : 0;
          if (!(hi >= lo)) return std::nullopt;
          n = static_cast<int64_t>(std::min(static_cast<double>(n) * (hi - lo + 1), static_cast<double>(kCap)));
        }
      }
      total = std::min(total + n, kCap);
    }
    return total;
  }

  Status Limits(proto::TuningJobConfig& cfg, const std::vector<TrainingJobDefinition*>& defs, size_t tuned,
                const proto::FieldPath& path) {
    if (!cfg.resource_limits) cfg.resource_limits.emplace();
    auto& rl = *cfg.resource_limits;
    // What Autotune asks for when the spec leaves it out: 10 per tuned hyperparameter, no more
    // than the ranges have configurations (SageMaker refuses more).
    const int64_t cap = *cfg.strategy == "Random" ? limits_.max_training_jobs : limits_.max_training_jobs_bayesian;
    int64_t n = std::min<int64_t>(cap, std::clamp<int64_t>(10 * static_cast<int64_t>(tuned), 20, 100));
    std::string why = "left out; 10 per tuned hyperparameter (" + std::to_string(tuned) + "), between 20 and 100";
    const auto combos = FiniteCombinations(cfg, defs);
    if (combos && *combos < n) {
      n = std::max<int64_t>(1, *combos);
      why = "left out; the " + std::to_string(n) + " combinations the integer and categorical ranges have";
    }
    if (rl.max_number_of_training_jobs && !grid_ && !made_.empty() && combos &&
        *combos < *rl.max_number_of_training_jobs) {
      // The spec's own number, more than the ranges Autotune made have configurations: said in
      // Autotune's terms (validation would say "add values or ranges" to a spec that wrote none).
      std::string made;
      for (const auto& m : made_) made += (made.empty() ? "" : ", ") + m;
      return Status::InvalidArgument(
          path.Child("MaxNumberOfTrainingJobs").str() + ": you don't have enough combinations of hyperparameter " +
          "ranges: the ranges Autotune made from the hints (" + made + ") give " + std::to_string(*combos) +
          " combinations, fewer than the " + std::to_string(*rl.max_number_of_training_jobs) +
          " training jobs asked for. Leave MaxNumberOfTrainingJobs out (Autotune then asks for " + std::to_string(n) +
          "), ask for at most " + std::to_string(*combos) +
          ", or give a hint with a decimal point (0.5: a continuous range, no limit)");
    }
    if (!rl.max_number_of_training_jobs && !grid_) {
      rl.max_number_of_training_jobs = n;
      Choose(path.Child("MaxNumberOfTrainingJobs"), std::to_string(n), why);
    }
    if (!rl.max_parallel_training_jobs) {
      int64_t p = grid_ ? 10 : std::clamp<int64_t>(rl.max_number_of_training_jobs.value_or(20) / 10, 2, 10);
      p = std::max<int64_t>(1, std::min(p, limits_.max_parallel_training_jobs));
      rl.max_parallel_training_jobs = p;
      Choose(path.Child("MaxParallelTrainingJobs"), std::to_string(p),
             grid_ ? "left out; 10 for Grid"
                   : "left out; a tenth of MaxNumberOfTrainingJobs, between 2 and 10, so each batch learns from "
                     "the ones before");
    }
    return Status::Ok();
  }

  // Grid values Autotune made from numeric hints: fewer of them where the combinations would
  // exceed what a Grid job may run (limits_.max_training_jobs_bayesian), the values farthest
  // from the hint first, the range with the most values first. Ranges the spec wrote stay whole.
  void FitGrid(proto::TuningJobConfig& cfg, const std::vector<TrainingJobDefinition*>& defs) {
    const int64_t cap = limits_.max_training_jobs_bayesian;
    std::set<std::string> trimmed;
    for (TrainingJobDefinition* d : defs) {
      std::vector<ParameterRanges*> scope;
      if (cfg.parameter_ranges) scope.push_back(&*cfg.parameter_ranges);
      if (d->hyper_parameter_ranges) scope.push_back(&*d->hyper_parameter_ranges);
      auto combinations = [&] {
        int64_t n = 1;
        for (ParameterRanges* r : scope) {
          for (const auto& c : r->categorical_parameter_ranges) n = std::min<int64_t>(n * c.values.size(), cap + 1);
        }
        return n;
      };
      while (combinations() > cap) {
        proto::CategoricalRange* widest = nullptr;
        const GridMade* made = nullptr;
        for (const GridMade& g : grid_made_) {
          if (std::find(scope.begin(), scope.end(), g.ranges) == scope.end()) continue;
          for (auto& c : g.ranges->categorical_parameter_ranges) {
            if (c.name == g.name && c.values.size() > 1 && (!widest || c.values.size() > widest->values.size())) {
              widest = &c;
              made = &g;
            }
          }
        }
        if (!widest) break;  // nothing of Autotune's left to trim: validation says what is wrong
        // Values are sorted; drop the one farthest from the hint (the later one on a tie).
        const auto hint_at = std::find(widest->values.begin(), widest->values.end(), made->hint);
        const long h = hint_at == widest->values.end() ? 0 : static_cast<long>(hint_at - widest->values.begin());
        const long last = static_cast<long>(widest->values.size()) - 1;
        widest->values.erase(widest->values.begin() + (last - h >= h ? last : 0));
        trimmed.insert(made->field);
      }
    }
    for (const GridMade& g : grid_made_) {
      if (!trimmed.count(g.field)) continue;
      for (const auto& c : g.ranges->categorical_parameter_ranges) {
        if (c.name != g.name) continue;
        for (AutotuneChoice& choice : out_.choices) {  // the choice made for it, restated
          if (choice.field != g.field) continue;
          choice.value = "CategoricalParameterRanges " + Describe(c);
          choice.reason = "values around the hint " + g.hint + " (Grid searches categorical ranges), fewer of them so "
                          "that the Grid's combinations stay within " + std::to_string(cap) + " training jobs";
        }
      }
    }
  }
  struct GridMade {
    ParameterRanges* ranges;
    std::string name, hint, field;
  };
  std::vector<GridMade> grid_made_;
  std::vector<std::string> made_;  // the integer and categorical ranges made from hints, described

  AutotuneResult out_;
  const proto::ValidationLimits& limits_;
  proto::FieldPath root_;
  bool grid_ = false;
  bool hyperband_epochs_ = false;  // Hyperband without MaxResource: an epochs hint stays static
  std::vector<std::pair<std::string, std::string>> ineligible_;  // name, why
};

}  // namespace

Result<AutotuneResult> ResolveAutotune(const proto::TuningJobSpec& spec, const proto::ValidationLimits& limits,
                                       proto::Spelling spelling) {
  return Resolver(spec, limits, spelling).Run();
}

}  // namespace hpo::coordinator
