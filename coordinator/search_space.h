// coordinator/search_space.h: the tunable hyperparameters of one training job definition.
//
// What it is: the parameter ranges of a tuning job, parsed once from the spec's strings into
// numbers, with the three things every strategy needs:
//   - sampling (Random search, SageMaker semantics: uniform in the *scaled* space, so a
//     Logarithmic range is sampled log-uniformly),
//   - a bijection-up-to-rounding with the unit cube [0,1]^d for a Gaussian process,
//   - an enumeration of finite spaces (Grid, and Random's duplicate avoidance),
// plus the text formatting of values (hyperparameters reach the training program as strings).
//
// What it is not: a validator of the whole spec (proto/validate.h does that; FromSpec only
// re-checks what it needs to compute safely and reports it as InvalidArgument), and nothing here
// touches files, sockets, clocks or processes.
//
// Dimensions, in this order: the tuning job config's ParameterRanges, then the definition's
// HyperParameterRanges (SageMaker puts them in one place or the other); within each, the
// integer ranges, then the continuous ranges, then the categorical ranges, each in spec order.
// A name may appear only once.
//
// Scaling (ScalingType):
//   Linear               u = (x - lo) / (hi - lo)
//   Logarithmic          u = (log x - log lo) / (log hi - log lo)             (needs lo > 0)
//   ReverseLogarithmic   u = 1 - (log(1-x) - log(1-hi)) / (log(1-lo) - log(1-hi))
//                        (continuous only, needs 0 <= lo <= hi < 1; dense near 1)
//   Auto (or absent)     resolved here, once: Logarithmic when lo > 0 and hi / lo >= 100
//                        (the range spans at least two orders of magnitude), else Linear.
//                        (SageMaker does not publish its rule; this one is ours.)
// Integer ranges are relaxed to [lo - 0.5, hi + 0.5] before scaling, so that after rounding
// every integer owns an equal share of the scaled interval (lo and hi are as likely as the
// others under Linear); a unit value maps back by scaling, rounding to nearest, clamping to
// [lo, hi]. Categorical ranges take one unit coordinate per value (one-hot); a unit vector maps
// back to the value of the largest coordinate (the first one on ties).
// Degenerate ranges (lo == hi, or one categorical value) always yield that value; the unit
// coordinate of a degenerate numeric range is 0.5 (no division by a zero width anywhere).
//
// Value text (Config): integers as decimal integer text ("42", "-3"); continuous values as the
// shortest text that reads back as the same double (std::to_chars, e.g. "0.1", "1e-05");
// categoricals as the value text exactly as written in the spec.
//
// Thread safety: an immutable value after construction; const methods may be called from any
// number of threads (Sample mutates only the Rng passed in).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/rng.h"
#include "proto/tuning_job.h"

namespace hpo::coordinator {

// Hyperparameter values by name, as the training program receives them (all strings).
using Config = std::map<std::string, std::string>;
// The same type under the name proto/ uses (TunedHyperParameters, static hyperparameters).
using StringMap = proto::StringMap;

enum class DimensionKind { kInteger, kContinuous, kCategorical };
enum class Scaling { kLinear, kLogarithmic, kReverseLogarithmic };

const char* DimensionKindName(DimensionKind kind);  // "Integer", "Continuous", "Categorical"
const char* ScalingName(Scaling scaling);           // "Linear", "Logarithmic", "ReverseLogarithmic"

struct Dimension {
  std::string name;
  DimensionKind kind = DimensionKind::kContinuous;
  Scaling scaling = Scaling::kLinear;  // Auto already resolved; Linear for categoricals
  double lo = 0;                       // numeric kinds: MinValue, parsed from its exact text
  double hi = 0;                       // numeric kinds: MaxValue
  std::vector<std::string> values;     // categorical only, in spec order
  size_t unit_offset = 0;              // index of this dimension's first unit coordinate

  // Unit coordinates this dimension takes: values.size() for categoricals, else 1.
  size_t UnitWidth() const;
  // Number of distinct values, or nullopt for a continuous range with lo < hi.
  std::optional<uint64_t> Cardinality() const;
};

// Text of an integer / a continuous value as it goes into a Config (see above).
std::string FormatInteger(int64_t v);
std::string FormatDouble(double v);
// The whole of `text` as a finite double (decimal or exponent form, an optional leading '+'), or
// nullopt: how range bounds and numeric values are read.
std::optional<double> ParseNumber(const std::string& text);

class SearchSpace {
 public:
  // The space of one definition: spec.HyperParameterTuningJobConfig.ParameterRanges plus
  // definition.HyperParameterRanges. InvalidArgument (naming the range) for: a name used twice,
  // a bound that is not a number (integer ranges: not an integer; |bound| <= 2^53), lo > hi,
  // Logarithmic with lo <= 0, ReverseLogarithmic on an integer range or outside [0, 1),
  // an unknown ScalingType, a categorical range without values or with a repeated value,
  // AutoParameters left in (coordinator/autotune.h turns them into ranges before a job starts).
  static Result<SearchSpace> FromSpec(const proto::TuningJobSpec& spec,
                                      const proto::TrainingJobDefinition& definition);
  // The space of one ParameterRanges block alone (same rules).
  static Result<SearchSpace> FromRanges(const proto::ParameterRanges& ranges);

  const std::vector<Dimension>& dimensions() const { return dims_; }
  // The dimension called `name`, or nullptr.
  const Dimension* Find(const std::string& name) const;

  // ---- unit cube -----------------------------------------------------------------------------
  // Number of unit coordinates: one per numeric dimension, k per categorical with k values.
  size_t UnitDims() const { return unit_dims_; }
  // The configuration at a point of the unit cube. `u` must have UnitDims() entries
  // (HPO_CHECK); coordinates outside [0,1] are clamped, NaN counts as 0. Every value returned
  // lies in its range.
  Config FromUnit(std::span<const double> u) const;
  // The unit-cube point of a configuration (keys not in the space are ignored). Lenient, for
  // history that may come from elsewhere: a numeric value outside its range is clamped; a
  // missing or unparseable numeric value maps to 0.5; an unknown or missing categorical value
  // maps to all zeros. Use Normalize first to reject such configurations instead.
  std::vector<double> ToUnit(const Config& config) const;
  // ToUnit(FromUnit(u)), in place and without building the configuration: the nearest point
  // whose values a trial can be given (formatted as FromUnit formats them). The Bayesian strategy
  // projects every candidate of its pool so (thousands per proposal).
  void ProjectUnit(std::span<double> u) const;

  // ---- sampling ------------------------------------------------------------------------------
  // One configuration drawn uniformly in the scaled space (SageMaker's random search): numeric
  // dimensions in dimension order each consume one Rng::Uniform(), categoricals one
  // Rng::Below(k). Deterministic given the Rng's state.
  Config Sample(Rng& rng) const;

  // ---- finite spaces -------------------------------------------------------------------------
  // Number of configurations when every dimension is finite (categorical, integer, or a
  // degenerate continuous range) and the count fits in 2^62; else nullopt. An empty space has
  // exactly one configuration (the empty Config).
  std::optional<uint64_t> Cardinality() const;
  // The configuration with index `index` in [0, Cardinality()) (HPO_CHECK): mixed radix with the
  // first dimension varying slowest, each dimension's values in ascending / spec order.
  Config AtIndex(uint64_t index) const;
  // The index of a configuration of a finite space, or nullopt when the space is not finite or
  // the configuration is not in it (Normalize fails).
  std::optional<uint64_t> IndexOf(const Config& config) const;

  // ---- checking ------------------------------------------------------------------------------
  // The configuration restricted to this space's names, each value in canonical text (integers
  // "5.0" -> "5", continuous values re-formatted with FormatDouble). InvalidArgument naming the
  // hyperparameter when one is missing, unparseable, not an integer where one is needed,
  // outside its range, or not one of the categorical values.
  Result<Config> Normalize(const Config& config) const;

 private:
  Status Add(const proto::ParameterRanges& ranges, const std::string& where);

  std::vector<Dimension> dims_;
  size_t unit_dims_ = 0;
};

}  // namespace hpo::coordinator
