#include "coordinator/search_space.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <system_error>

namespace hpo::coordinator {
namespace {

constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53
constexpr uint64_t kMaxCardinality = uint64_t{1} << 62;

bool IsExactInteger(double v) { return std::floor(v) == v && std::fabs(v) <= kMaxExactInteger; }

// The interval the scaling maps onto [0,1]: the range, relaxed by half a step for integers.
void ScaledInterval(const Dimension& d, double* a, double* b) {
  if (d.kind == DimensionKind::kInteger) {
    *a = d.lo - 0.5;
    *b = d.hi + 0.5;
  } else {
    *a = d.lo;
    *b = d.hi;
  }
}

// x (inside [a,b]) -> u in [0,1]. Degenerate intervals give 0.5.
double Forward(const Dimension& d, double x) {
  if (d.lo == d.hi) return 0.5;
  double a, b;
  ScaledInterval(d, &a, &b);
  x = std::clamp(x, a, b);
  double u = 0.5;
  switch (d.scaling) {
    case Scaling::kLinear:
      // In halves: a range as wide as [-1e308, 1e308] overflows b - a to inf, and u was NaN
      // (the model then refused every point and fell back to random search).
      u = (x * 0.5 - a * 0.5) / (b * 0.5 - a * 0.5);
      break;
    case Scaling::kLogarithmic: {
      const double den = std::log(b) - std::log(a);
      if (den > 0) u = (std::log(x) - std::log(a)) / den;
      break;
    }
    case Scaling::kReverseLogarithmic: {
      const double den = std::log1p(-a) - std::log1p(-b);
      if (den > 0) u = 1.0 - (std::log1p(-x) - std::log1p(-b)) / den;
      break;
    }
  }
  return std::isnan(u) ? 0.5 : std::clamp(u, 0.0, 1.0);
}

// u in [0,1] -> x in [a,b], the ends mapped exactly.
double Inverse(const Dimension& d, double u) {
  double a, b;
  ScaledInterval(d, &a, &b);
  if (u <= 0) return a;
  if (u >= 1) return b;
  double x = a;
  switch (d.scaling) {
    case Scaling::kLinear:
      x = a * (1.0 - u) + b * u;
      break;
    case Scaling::kLogarithmic:
      x = std::exp(std::log(a) + u * (std::log(b) - std::log(a)));
      break;
    case Scaling::kReverseLogarithmic: {
      const double la = std::log1p(-a), lb = std::log1p(-b);
      x = -std::expm1(lb + (1.0 - u) * (la - lb));
      break;
    }
  }
  return std::clamp(x, a, b);
}

// The value of numeric dimension `d` at unit coordinate u: what NumericFromUnit writes, as the
// number it reads back as (FormatDouble writes the shortest text that reads back as the same
// double, and integers are written whole; "-0" is never written).
double NumericValueFromUnit(const Dimension& d, double u) {
  if (!(u >= 0)) u = 0;  // NaN too
  if (u > 1) u = 1;
  double v = d.lo;
  if (d.lo != d.hi) {
    v = d.kind == DimensionKind::kInteger ? std::clamp(std::round(Inverse(d, u)), d.lo, d.hi)
                                          : std::clamp(Inverse(d, u), d.lo, d.hi);
  }
  if (d.kind == DimensionKind::kInteger) v = static_cast<double>(static_cast<int64_t>(v));
  return v == 0 ? 0.0 : v;
}

// The value text of numeric dimension `d` at unit coordinate u.
std::string NumericFromUnit(const Dimension& d, double u) {
  if (!(u >= 0)) u = 0;  // NaN too
  if (u > 1) u = 1;
  if (d.kind == DimensionKind::kInteger) {
    if (d.lo == d.hi) return FormatInteger(static_cast<int64_t>(d.lo));
    const double v = std::clamp(std::round(Inverse(d, u)), d.lo, d.hi);
    return FormatInteger(static_cast<int64_t>(v));
  }
  if (d.lo == d.hi) return FormatDouble(d.lo);
  return FormatDouble(std::clamp(Inverse(d, u), d.lo, d.hi));
}

Result<Scaling> ResolveScaling(const std::optional<std::string>& text, DimensionKind kind, double lo, double hi,
                               const std::string& what) {
  const std::string s = text.value_or("Auto");
  if (s == "Auto") {
    // Logarithmic when the range is positive and spans at least two orders of magnitude.
    if (lo > 0 && hi / lo >= 100) return Scaling::kLogarithmic;
    return Scaling::kLinear;
  }
  if (s == "Linear") return Scaling::kLinear;
  if (s == "Logarithmic") {
    if (!(lo > 0)) {
      return Status::InvalidArgument(what + ": ScalingType Logarithmic needs MinValue > 0");
    }
    return Scaling::kLogarithmic;
  }
  if (s == "ReverseLogarithmic") {
    if (kind != DimensionKind::kContinuous) {
      return Status::InvalidArgument(what + ": ScalingType ReverseLogarithmic is only for continuous ranges");
    }
    if (!(lo >= 0 && hi < 1)) {
      return Status::InvalidArgument(what + ": ScalingType ReverseLogarithmic needs 0 <= MinValue and MaxValue < 1");
    }
    return Scaling::kReverseLogarithmic;
  }
  return Status::InvalidArgument(what + ": unknown ScalingType \"" + s +
                                 "\" (allowed: Auto, Linear, Logarithmic, ReverseLogarithmic)");
}

Result<Dimension> NumericDimension(const proto::NumericRange& r, DimensionKind kind, const std::string& what) {
  Dimension d;
  d.kind = kind;
  d.name = r.name.value_or("");
  const std::string kind_text = kind == DimensionKind::kInteger ? "integer" : "continuous";
  double* bounds[2] = {&d.lo, &d.hi};
  const std::optional<std::string>* texts[2] = {&r.min_value, &r.max_value};
  const char* fields[2] = {"MinValue", "MaxValue"};
  for (int i = 0; i < 2; ++i) {
    if (!texts[i]->has_value()) return Status::InvalidArgument(what + ": " + fields[i] + " is missing");
    std::optional<double> v = ParseNumber(**texts[i]);
    if (!v) {
      return Status::InvalidArgument(what + ": " + fields[i] + " \"" + **texts[i] + "\" is not a number");
    }
    if (kind == DimensionKind::kInteger && !IsExactInteger(*v)) {
      return Status::InvalidArgument(what + ": " + fields[i] + " \"" + **texts[i] +
                                     "\" is not an integer (of magnitude at most 2^53)");
    }
    *bounds[i] = *v;
  }
  if (d.lo > d.hi) {
    return Status::InvalidArgument(what + ": MinValue \"" + *r.min_value + "\" is greater than MaxValue \"" +
                                   *r.max_value + "\" in this " + kind_text + " range");
  }
  Result<Scaling> scaling = ResolveScaling(r.scaling_type, kind, d.lo, d.hi, what);
  if (!scaling.ok()) return scaling.status();
  d.scaling = *scaling;
  return d;
}

}  // namespace

std::optional<double> ParseNumber(const std::string& text) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;
  if (first == last) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(first, last, v, std::chars_format::general);
  if (ec != std::errc() || ptr != last || !std::isfinite(v)) return std::nullopt;
  return v;
}

const char* DimensionKindName(DimensionKind kind) {
  switch (kind) {
    case DimensionKind::kInteger: return "Integer";
    case DimensionKind::kContinuous: return "Continuous";
    case DimensionKind::kCategorical: return "Categorical";
  }
  return "?";
}

const char* ScalingName(Scaling scaling) {
  switch (scaling) {
    case Scaling::kLinear: return "Linear";
    case Scaling::kLogarithmic: return "Logarithmic";
    case Scaling::kReverseLogarithmic: return "ReverseLogarithmic";
  }
  return "?";
}

size_t Dimension::UnitWidth() const { return kind == DimensionKind::kCategorical ? values.size() : 1; }

std::optional<uint64_t> Dimension::Cardinality() const {
  switch (kind) {
    case DimensionKind::kCategorical: return values.size();
    // In integers: hi - lo in doubles rounds above 2^53 (a range of -(2^53-1) .. 2^53 counted
    // one value too many).
    case DimensionKind::kInteger: return static_cast<uint64_t>(static_cast<int64_t>(hi) - static_cast<int64_t>(lo)) + 1;
    case DimensionKind::kContinuous:
      if (lo == hi) return 1;
      return std::nullopt;
  }
  return std::nullopt;
}

std::string FormatInteger(int64_t v) { return std::to_string(v); }

std::string FormatDouble(double v) {
  if (v == 0) v = 0.0;  // no "-0"
  char buf[64];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  HPO_CHECK(ec == std::errc());
  return std::string(buf, ptr);
}

Result<SearchSpace> SearchSpace::FromSpec(const proto::TuningJobSpec& spec,
                                          const proto::TrainingJobDefinition& definition) {
  SearchSpace space;
  if (spec.hyper_parameter_tuning_job_config && spec.hyper_parameter_tuning_job_config->parameter_ranges) {
    HPO_RETURN_IF_ERROR(space.Add(*spec.hyper_parameter_tuning_job_config->parameter_ranges,
                                  "HyperParameterTuningJobConfig.ParameterRanges"));
  }
  if (definition.hyper_parameter_ranges) {
    std::string where = "TrainingJobDefinition";
    if (definition.definition_name) where += " \"" + *definition.definition_name + "\"";
    HPO_RETURN_IF_ERROR(space.Add(*definition.hyper_parameter_ranges, where + " HyperParameterRanges"));
  }
  return space;
}

Result<SearchSpace> SearchSpace::FromRanges(const proto::ParameterRanges& ranges) {
  SearchSpace space;
  HPO_RETURN_IF_ERROR(space.Add(ranges, "ParameterRanges"));
  return space;
}

Status SearchSpace::Add(const proto::ParameterRanges& ranges, const std::string& where) {
  if (!ranges.auto_parameters.empty()) {
    return Status::InvalidArgument(where +
                                   ".AutoParameters: unresolved; Autotune (coordinator/autotune.h) turns them into "
                                   "ranges when the job is submitted");
  }
  std::vector<Dimension> added;
  auto label = [&](const char* list, size_t i, const std::optional<std::string>& name) {
    std::string s = where + "." + list + "[" + std::to_string(i) + "]";
    if (name) s += " (\"" + *name + "\")";
    return s;
  };
  auto numeric = [&](const std::vector<proto::NumericRange>& list, const char* list_name,
                     DimensionKind kind) -> Status {
    for (size_t i = 0; i < list.size(); ++i) {
      Result<Dimension> d = NumericDimension(list[i], kind, label(list_name, i, list[i].name));
      if (!d.ok()) return d.status();
      added.push_back(std::move(d).value());
    }
    return Status::Ok();
  };
  HPO_RETURN_IF_ERROR(numeric(ranges.integer_parameter_ranges, "IntegerParameterRanges", DimensionKind::kInteger));
  HPO_RETURN_IF_ERROR(
      numeric(ranges.continuous_parameter_ranges, "ContinuousParameterRanges", DimensionKind::kContinuous));
  for (size_t i = 0; i < ranges.categorical_parameter_ranges.size(); ++i) {
    const proto::CategoricalRange& r = ranges.categorical_parameter_ranges[i];
    const std::string what = label("CategoricalParameterRanges", i, r.name);
    if (r.values.empty()) return Status::InvalidArgument(what + ": Values is empty");
    std::set<std::string> distinct(r.values.begin(), r.values.end());
    if (distinct.size() != r.values.size()) {
      return Status::InvalidArgument(what + ": Values lists a value more than once");
    }
    Dimension d;
    d.name = r.name.value_or("");
    d.kind = DimensionKind::kCategorical;
    d.values = r.values;
    added.push_back(std::move(d));
  }
  for (Dimension& d : added) {
    if (d.name.empty()) return Status::InvalidArgument(where + ": a range has no Name");
    if (Find(d.name) != nullptr) {
      return Status::InvalidArgument(where + ": hyperparameter \"" + d.name + "\" has more than one range");
    }
    d.unit_offset = unit_dims_;
    unit_dims_ += d.UnitWidth();
    dims_.push_back(std::move(d));
  }
  return Status::Ok();
}

const Dimension* SearchSpace::Find(const std::string& name) const {
  for (const Dimension& d : dims_) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

namespace {

// The value a categorical's one-hot block of u stands for: the first largest coordinate
// (negative and NaN count as 0).
size_t CategoricalArgmax(const Dimension& d, std::span<const double> u) {
  size_t best = 0;
  double best_value = -1;
  for (size_t k = 0; k < d.values.size(); ++k) {
    double v = u[d.unit_offset + k];
    if (!(v >= 0)) v = 0;
    if (v > best_value) {
      best_value = v;
      best = k;
    }
  }
  return best;
}

}  // namespace

Config SearchSpace::FromUnit(std::span<const double> u) const {
  HPO_CHECK_MSG(u.size() == unit_dims_, "unit vector of " + std::to_string(u.size()) + " coordinates for a space of " +
                                            std::to_string(unit_dims_));
  Config config;
  for (const Dimension& d : dims_) {
    if (d.kind == DimensionKind::kCategorical) {
      const size_t best = CategoricalArgmax(d, u);
      config[d.name] = d.values[best];
    } else {
      config[d.name] = NumericFromUnit(d, u[d.unit_offset]);
    }
  }
  return config;
}

std::vector<double> SearchSpace::ToUnit(const Config& config) const {
  std::vector<double> u(unit_dims_, 0.0);
  for (const Dimension& d : dims_) {
    auto it = config.find(d.name);
    if (d.kind == DimensionKind::kCategorical) {
      if (it == config.end()) continue;
      auto pos = std::find(d.values.begin(), d.values.end(), it->second);
      if (pos != d.values.end()) u[d.unit_offset + static_cast<size_t>(pos - d.values.begin())] = 1.0;
      continue;
    }
    std::optional<double> x = it == config.end() ? std::nullopt : ParseNumber(it->second);
    u[d.unit_offset] = x ? Forward(d, std::clamp(*x, d.lo, d.hi)) : 0.5;
  }
  return u;
}

void SearchSpace::ProjectUnit(std::span<double> u) const {
  HPO_CHECK_MSG(u.size() == unit_dims_, "unit vector of " + std::to_string(u.size()) + " coordinates for a space of " +
                                            std::to_string(unit_dims_));
  for (const Dimension& d : dims_) {
    if (d.kind == DimensionKind::kCategorical) {
      const size_t best = CategoricalArgmax(d, u);
      // As ToUnit: the first of equal values is the one set.
      const size_t first =
          static_cast<size_t>(std::find(d.values.begin(), d.values.end(), d.values[best]) - d.values.begin());
      for (size_t k = 0; k < d.values.size(); ++k) u[d.unit_offset + k] = k == first ? 1.0 : 0.0;
      continue;
    }
    // As ToUnit(FromUnit(u)) without the text: formatting and parsing every coordinate of every
    // candidate was a twelfth of a small job's proposal time.
    u[d.unit_offset] = Forward(d, std::clamp(NumericValueFromUnit(d, u[d.unit_offset]), d.lo, d.hi));
  }
}

Config SearchSpace::Sample(Rng& rng) const {
  Config config;
  for (const Dimension& d : dims_) {
    if (d.kind == DimensionKind::kCategorical) {
      config[d.name] = d.values[rng.Below(d.values.size())];
    } else {
      config[d.name] = NumericFromUnit(d, rng.Uniform());
    }
  }
  return config;
}

std::optional<uint64_t> SearchSpace::Cardinality() const {
  uint64_t n = 1;
  for (const Dimension& d : dims_) {
    std::optional<uint64_t> c = d.Cardinality();
    if (!c || *c == 0 || *c > kMaxCardinality / n) return std::nullopt;
    n *= *c;
  }
  return n;
}

Config SearchSpace::AtIndex(uint64_t index) const {
  std::optional<uint64_t> total = Cardinality();
  HPO_CHECK(total.has_value() && index < *total);
  Config config;
  for (size_t i = dims_.size(); i-- > 0;) {
    const Dimension& d = dims_[i];
    const uint64_t radix = *d.Cardinality();
    const uint64_t digit = index % radix;
    index /= radix;
    switch (d.kind) {
      case DimensionKind::kCategorical:
        config[d.name] = d.values[digit];
        break;
      case DimensionKind::kInteger:
        config[d.name] = FormatInteger(static_cast<int64_t>(d.lo) + static_cast<int64_t>(digit));
        break;
      case DimensionKind::kContinuous:
        config[d.name] = FormatDouble(d.lo);
        break;
    }
  }
  return config;
}

std::optional<uint64_t> SearchSpace::IndexOf(const Config& config) const {
  if (!Cardinality()) return std::nullopt;
  Result<Config> normal = Normalize(config);
  if (!normal.ok()) return std::nullopt;
  uint64_t index = 0;
  for (const Dimension& d : dims_) {
    const uint64_t radix = *d.Cardinality();
    const std::string& v = normal->at(d.name);
    uint64_t digit = 0;
    switch (d.kind) {
      case DimensionKind::kCategorical:
        digit = static_cast<uint64_t>(std::find(d.values.begin(), d.values.end(), v) - d.values.begin());
        break;
      case DimensionKind::kInteger:
        digit = static_cast<uint64_t>(static_cast<int64_t>(*ParseNumber(v)) - static_cast<int64_t>(d.lo));
        break;
      case DimensionKind::kContinuous:
        digit = 0;
        break;
    }
    index = index * radix + digit;
  }
  return index;
}

Result<Config> SearchSpace::Normalize(const Config& config) const {
  Config out;
  for (const Dimension& d : dims_) {
    auto it = config.find(d.name);
    if (it == config.end()) return Status::InvalidArgument("hyperparameter \"" + d.name + "\" is missing");
    const std::string& text = it->second;
    if (d.kind == DimensionKind::kCategorical) {
      if (std::find(d.values.begin(), d.values.end(), text) == d.values.end()) {
        return Status::InvalidArgument("hyperparameter \"" + d.name + "\": \"" + text +
                                       "\" is not one of its categorical values");
      }
      out[d.name] = text;
      continue;
    }
    std::optional<double> v = ParseNumber(text);
    if (!v) return Status::InvalidArgument("hyperparameter \"" + d.name + "\": \"" + text + "\" is not a number");
    if (d.kind == DimensionKind::kInteger && !IsExactInteger(*v)) {
      return Status::InvalidArgument("hyperparameter \"" + d.name + "\": \"" + text + "\" is not an integer");
    }
    if (*v < d.lo || *v > d.hi) {
      return Status::InvalidArgument("hyperparameter \"" + d.name + "\": " + text + " is outside [" +
                                     FormatDouble(d.lo) + ", " + FormatDouble(d.hi) + "]");
    }
    out[d.name] = d.kind == DimensionKind::kInteger ? FormatInteger(static_cast<int64_t>(*v)) : FormatDouble(*v);
  }
  return out;
}

}  // namespace hpo::coordinator
