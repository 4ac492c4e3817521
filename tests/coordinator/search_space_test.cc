#include "coordinator/search_space.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "coordinator/rng.h"

namespace hpo::coordinator {
namespace {

proto::NumericRange Num(const std::string& name, const std::string& lo, const std::string& hi,
                        std::optional<std::string> scaling = std::nullopt) {
  proto::NumericRange r;
  r.name = name;
  r.min_value = lo;
  r.max_value = hi;
  r.scaling_type = std::move(scaling);
  return r;
}

proto::CategoricalRange Cat(const std::string& name, std::vector<std::string> values) {
  proto::CategoricalRange r;
  r.name = name;
  r.values = std::move(values);
  return r;
}

SearchSpace Continuous(const std::string& lo, const std::string& hi, const std::string& scaling) {
  proto::ParameterRanges ranges;
  ranges.continuous_parameter_ranges.push_back(Num("x", lo, hi, scaling));
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

SearchSpace Integer(const std::string& lo, const std::string& hi, const std::string& scaling) {
  proto::ParameterRanges ranges;
  ranges.integer_parameter_ranges.push_back(Num("n", lo, hi, scaling));
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

double At(const SearchSpace& space, double u, const std::string& name = "x") {
  std::vector<double> v{u};
  return std::strtod(space.FromUnit(v).at(name).c_str(), nullptr);
}

Status RangesError(const proto::ParameterRanges& ranges) {
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  return s.ok() ? Status::Ok() : s.status();
}

// ---- rng ---------------------------------------------------------------------------------------

TEST(Rng, MatchesTheSpecifiedSplitMix64AndXoshiro256StarStar) {
  // Reference values from an independent implementation of the algorithms in rng.h.
  EXPECT_EQ(SplitMix64Mix(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
  Rng r42(42);
  EXPECT_EQ(r42.Next(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(r42.Next(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(r42.Next(), 0xae17533239e499a1ULL);
  Rng r0(0);
  EXPECT_EQ(r0.Next(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(r0.Next(), 0xbf6e1f784956452aULL);
}

TEST(Rng, UniformIsTheTop53BitsAndBelowStaysBelow) {
  Rng a(7), b(7);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t raw = a.Next();
    const double u = b.Uniform();
    EXPECT_EQ(u, static_cast<double>(raw >> 11) / 9007199254740992.0);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
  Rng c(9);
  std::vector<int> counts(3, 0);
  for (int i = 0; i < 30000; ++i) ++counts[c.Below(3)];
  for (int k : counts) EXPECT_NEAR(k, 10000, 500);
  EXPECT_EQ(c.Below(1), 0u);
}

TEST(Rng, StreamsOfOneSeedDiffer) {
  EXPECT_NE(Rng(StreamSeed(1, 0)).Next(), Rng(StreamSeed(1, 1)).Next());
  EXPECT_NE(Rng(StreamSeed(1, 0)).Next(), Rng(StreamSeed(2, 0)).Next());
  EXPECT_EQ(Rng(StreamSeed(1, 5)).Next(), Rng(StreamSeed(1, 5)).Next());
}

// ---- unit cube: continuous ------------------------------------------------------------------------

TEST(SearchSpace, EveryContinuousScalingMapsLoToZeroAndHiToOneAndBack) {
  struct Case { std::string lo, hi, scaling; };
  for (const Case& c : {Case{"-2", "3", "Linear"}, Case{"0.0001", "1", "Logarithmic"},
                        Case{"0.5", "0.999", "ReverseLogarithmic"}, Case{"0", "0.9999", "ReverseLogarithmic"},
                        Case{"1e-6", "10", "Auto"}}) {
    SCOPED_TRACE(c.scaling + " [" + c.lo + ", " + c.hi + "]");
    SearchSpace s = Continuous(c.lo, c.hi, c.scaling);
    const double lo = std::stod(c.lo), hi = std::stod(c.hi);
    EXPECT_NEAR(s.ToUnit({{"x", c.lo}})[0], 0.0, 1e-12);
    EXPECT_NEAR(s.ToUnit({{"x", c.hi}})[0], 1.0, 1e-12);
    EXPECT_EQ(At(s, 0.0), lo);
    EXPECT_EQ(At(s, 1.0), hi);
    for (double u : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) {
      const Config config = s.FromUnit(std::vector<double>{u});
      EXPECT_NEAR(s.ToUnit(config)[0], u, 1e-12) << "u=" << u;
    }
  }
}

TEST(SearchSpace, LogarithmicMidpointIsTheGeometricMean) {
  SearchSpace s = Continuous("0.0001", "1", "Logarithmic");
  EXPECT_NEAR(At(s, 0.5), 0.01, 1e-12);
  EXPECT_NEAR(At(s, 0.25), 0.001, 1e-14);
}

TEST(SearchSpace, ReverseLogarithmicIsDenseNearOne) {
  SearchSpace s = Continuous("0", "0.99", "ReverseLogarithmic");
  // 1 - x is log-uniform between 1 - hi = 0.01 and 1 - lo = 1: the midpoint has 1 - x = 0.1.
  EXPECT_NEAR(At(s, 0.5), 0.9, 1e-12);
  EXPECT_GT(At(s, 0.75), 0.96);
}

TEST(SearchSpace, UnitCoordinatesOutsideTheCubeAreClamped) {
  SearchSpace s = Continuous("1", "2", "Linear");
  EXPECT_EQ(At(s, -3.0), 1.0);
  EXPECT_EQ(At(s, 7.0), 2.0);
  EXPECT_EQ(At(s, std::nan("")), 1.0);
  EXPECT_EQ(s.ToUnit({{"x", "5"}})[0], 1.0);
}

// ---- unit cube: integers ----------------------------------------------------------------------------

TEST(SearchSpace, IntegerValuesSurviveTheRoundTripThroughTheUnitInterval) {
  for (const char* scaling : {"Linear", "Logarithmic"}) {
    SCOPED_TRACE(scaling);
    SearchSpace s = Integer("1", "300", scaling);
    for (int v = 1; v <= 300; ++v) {
      const Config config{{"n", std::to_string(v)}};
      EXPECT_EQ(s.FromUnit(s.ToUnit(config)), config);
    }
    EXPECT_EQ(s.FromUnit(std::vector<double>{0.0}).at("n"), "1");
    EXPECT_EQ(s.FromUnit(std::vector<double>{1.0}).at("n"), "300");
    EXPECT_EQ(s.FromUnit(std::vector<double>{-1.0}).at("n"), "1");
    EXPECT_EQ(s.FromUnit(std::vector<double>{2.0}).at("n"), "300");
  }
}

TEST(SearchSpace, IntegerRelaxationGivesEachValueAnEqualShareUnderLinearScaling) {
  SearchSpace s = Integer("-2", "2", "Linear");
  // Relaxed interval [-2.5, 2.5]: each integer owns a fifth of [0, 1].
  EXPECT_EQ(s.FromUnit(std::vector<double>{0.19}).at("n"), "-2");
  EXPECT_EQ(s.FromUnit(std::vector<double>{0.21}).at("n"), "-1");
  EXPECT_EQ(s.FromUnit(std::vector<double>{0.5}).at("n"), "0");
  EXPECT_EQ(s.FromUnit(std::vector<double>{0.79}).at("n"), "1");
  EXPECT_EQ(s.FromUnit(std::vector<double>{0.81}).at("n"), "2");
  EXPECT_NEAR(s.ToUnit({{"n", "-2"}})[0], 0.1, 1e-12);
  EXPECT_NEAR(s.ToUnit({{"n", "2"}})[0], 0.9, 1e-12);
}

TEST(SearchSpace, IntegerSamplesReachBothEndsWithFairProbabilityAndNeverLeaveTheRange) {
  SearchSpace s = Integer("0", "4", "Linear");
  Rng rng(3);
  std::map<std::string, int> counts;
  const int kDraws = 50000;
  for (int i = 0; i < kDraws; ++i) ++counts[s.Sample(rng).at("n")];
  ASSERT_EQ(counts.size(), 5u);
  for (const char* v : {"0", "1", "2", "3", "4"}) EXPECT_NEAR(counts[v] / double(kDraws), 0.2, 0.01) << v;
}

TEST(SearchSpace, LogScaledIntegerSamplesReachBothEnds) {
  SearchSpace s = Integer("1", "1000", "Logarithmic");
  Rng rng(4);
  int ones = 0, thousands = 0;
  const int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    const int v = std::stoi(s.Sample(rng).at("n"));
    ASSERT_GE(v, 1);
    ASSERT_LE(v, 1000);
    ones += v == 1;
    thousands += v == 1000;
  }
  // Relaxed [0.5, 1000.5] in log space: P(1) = log(3) / log(2001), P(1000) = log(1000.5/999.5) / log(2001).
  EXPECT_NEAR(ones / double(kDraws), std::log(3.0) / std::log(2001.0), 0.01);
  EXPECT_GT(thousands, 0);
}

// ---- categorical ---------------------------------------------------------------------------------

TEST(SearchSpace, CategoricalsAreOneHotAndMapBackByArgmax) {
  proto::ParameterRanges ranges;
  ranges.integer_parameter_ranges.push_back(Num("n", "1", "5", "Linear"));
  ranges.continuous_parameter_ranges.push_back(Num("x", "0", "1", "Linear"));
  ranges.categorical_parameter_ranges.push_back(Cat("opt", {"sgd", "adam", "rmsprop"}));
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->UnitDims(), 5u);
  EXPECT_EQ(s->Find("opt")->unit_offset, 2u);

  EXPECT_EQ(s->FromUnit(std::vector<double>{0, 0, 0.1, 0.7, 0.2}).at("opt"), "adam");
  EXPECT_EQ(s->FromUnit(std::vector<double>{0, 0, 0.3, 0.2, 0.9}).at("opt"), "rmsprop");
  EXPECT_EQ(s->FromUnit(std::vector<double>{0, 0, 0.5, 0.5, 0.5}).at("opt"), "sgd");  // first on ties
  const std::vector<double> u = s->ToUnit({{"n", "3"}, {"x", "0.25"}, {"opt", "adam"}});
  EXPECT_EQ(std::vector<double>(u.begin() + 2, u.end()), (std::vector<double>{0, 1, 0}));
  EXPECT_NEAR(u[0], 0.5, 1e-12);
  EXPECT_NEAR(u[1], 0.25, 1e-12);
  // An unknown value is all zeros; a missing numeric value the centre.
  const std::vector<double> lenient = s->ToUnit({{"opt", "lbfgs"}});
  EXPECT_EQ(lenient, (std::vector<double>{0.5, 0.5, 0, 0, 0}));
}

// ProjectUnit is the round trip through a configuration, in place: the same point for every
// kind of range, scaling and value, the cube's faces and coordinates outside it included.
TEST(SearchSpace, ProjectUnitIsToUnitOfFromUnit) {
  proto::ParameterRanges ranges;
  ranges.continuous_parameter_ranges.push_back(Num("lr", "1e-5", "0.3", "Logarithmic"));
  ranges.continuous_parameter_ranges.push_back(Num("momentum", "0.5", "0.999", "ReverseLogarithmic"));
  ranges.continuous_parameter_ranges.push_back(Num("dropout", "0", "0.7", "Linear"));
  ranges.continuous_parameter_ranges.push_back(Num("fixed", "2.5", "2.5", "Auto"));
  ranges.integer_parameter_ranges.push_back(Num("layers", "1", "12", "Linear"));
  ranges.integer_parameter_ranges.push_back(Num("batch", "16", "4096", "Logarithmic"));
  ranges.categorical_parameter_ranges.push_back(Cat("opt", {"sgd", "adam", "rmsprop"}));
  ranges.categorical_parameter_ranges.push_back(Cat("act", {"relu", "gelu"}));
  // Ranges through zero (no "-0" is ever written, so none may come back) and a wide one.
  ranges.continuous_parameter_ranges.push_back(Num("shift", "-1", "1", "Linear"));
  ranges.continuous_parameter_ranges.push_back(Num("from_minus_zero", "-0", "1", "Linear"));
  ranges.integer_parameter_ranges.push_back(Num("offset", "-3", "3", "Linear"));
  ranges.integer_parameter_ranges.push_back(Num("seed", "-4000000000000", "9000000000000000", "Linear"));
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Rng rng(5);
  for (int i = 0; i < 2000; ++i) {
    std::vector<double> u(s->UnitDims());
    for (double& v : u) {
      const uint64_t pick = rng.Below(10);
      v = pick == 0 ? 0.0 : pick == 1 ? 1.0 : pick == 2 ? -0.25 : pick == 3 ? 1.5 : rng.Uniform();
    }
    const std::vector<double> expect = s->ToUnit(s->FromUnit(u));
    std::vector<double> got = u;
    s->ProjectUnit(got);
    ASSERT_EQ(got, expect) << "draw " << i;
    for (size_t k = 0; k < got.size(); ++k) {  // bit for bit: 0 and -0 too
      ASSERT_EQ(std::memcmp(&got[k], &expect[k], sizeof(double)), 0) << "draw " << i << " coordinate " << k;
    }
  }
}

TEST(SearchSpace, CategoricalSamplesAreUniformOverTheValues) {
  proto::ParameterRanges ranges;
  ranges.categorical_parameter_ranges.push_back(Cat("c", {"a", "b", "c", "d"}));
  SearchSpace s = *SearchSpace::FromRanges(ranges);
  Rng rng(5);
  std::map<std::string, int> counts;
  for (int i = 0; i < 40000; ++i) ++counts[s.Sample(rng).at("c")];
  for (const auto& [v, k] : counts) EXPECT_NEAR(k / 40000.0, 0.25, 0.01) << v;
}

// ---- scaling resolution --------------------------------------------------------------------------

TEST(SearchSpace, AutoIsLogarithmicForPositiveRangesSpanningTwoOrdersOfMagnitude) {
  auto scaling_of = [](const std::string& lo, const std::string& hi, std::optional<std::string> scaling,
                       bool integer = false) {
    proto::ParameterRanges ranges;
    (integer ? ranges.integer_parameter_ranges : ranges.continuous_parameter_ranges)
        .push_back(Num("x", lo, hi, std::move(scaling)));
    Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s->dimensions().at(0).scaling;
  };
  EXPECT_EQ(scaling_of("0.001", "0.1", "Auto"), Scaling::kLogarithmic);
  EXPECT_EQ(scaling_of("1", "100", std::nullopt), Scaling::kLogarithmic);  // absent means Auto
  EXPECT_EQ(scaling_of("1", "99", "Auto"), Scaling::kLinear);
  EXPECT_EQ(scaling_of("0", "1000", "Auto"), Scaling::kLinear);  // not positive
  EXPECT_EQ(scaling_of("-1", "1000", "Auto"), Scaling::kLinear);
  EXPECT_EQ(scaling_of("1", "1000", "Auto", /*integer=*/true), Scaling::kLogarithmic);
  EXPECT_EQ(scaling_of("1", "50", "Auto", /*integer=*/true), Scaling::kLinear);
  EXPECT_EQ(scaling_of("1", "1000", "Linear"), Scaling::kLinear);  // explicit choice kept
  EXPECT_EQ(scaling_of("0.1", "0.2", "Logarithmic"), Scaling::kLogarithmic);
}

// ---- degenerate ranges ---------------------------------------------------------------------------

TEST(SearchSpace, DegenerateRangesAlwaysYieldTheirValue) {
  proto::ParameterRanges ranges;
  ranges.integer_parameter_ranges.push_back(Num("n", "7", "7", "Logarithmic"));
  ranges.continuous_parameter_ranges.push_back(Num("x", "0.5", "0.5", "Logarithmic"));
  ranges.continuous_parameter_ranges.push_back(Num("r", "0.25", "0.25", "ReverseLogarithmic"));
  ranges.continuous_parameter_ranges.push_back(Num("z", "3", "3", "Linear"));
  ranges.categorical_parameter_ranges.push_back(Cat("c", {"only"}));
  Result<SearchSpace> s = SearchSpace::FromRanges(ranges);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const Config expected{{"n", "7"}, {"x", "0.5"}, {"r", "0.25"}, {"z", "3"}, {"c", "only"}};
  for (double u : {0.0, 0.3, 1.0}) {
    EXPECT_EQ(s->FromUnit(std::vector<double>(s->UnitDims(), u)), expected);
  }
  Rng rng(1);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s->Sample(rng), expected);
  const std::vector<double> u = s->ToUnit(expected);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(u[i], 0.5);
  for (double v : u) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(s->Cardinality(), 1u);
}

// ---- formatting ----------------------------------------------------------------------------------

TEST(SearchSpace, ValuesAreFormattedAsShortestRoundTripText) {
  EXPECT_EQ(FormatInteger(42), "42");
  EXPECT_EQ(FormatInteger(-3), "-3");
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(1e-5), "1e-05");
  EXPECT_EQ(FormatDouble(2.0), "2");
  EXPECT_EQ(FormatDouble(-0.0), "0");
  SearchSpace s = Continuous("0.0001", "1", "Logarithmic");
  Rng rng(11);
  for (int i = 0; i < 1000; ++i) {
    const std::string text = s.Sample(rng).at("x");
    const double v = std::strtod(text.c_str(), nullptr);
    EXPECT_EQ(FormatDouble(v), text);
  }
}

// ---- building from a spec ------------------------------------------------------------------------

TEST(SearchSpace, FromSpecTakesTheConfigRangesAndTheDefinitionRanges) {
  proto::TuningJobSpec spec;
  spec.hyper_parameter_tuning_job_config.emplace().parameter_ranges.emplace().continuous_parameter_ranges.push_back(
      Num("lr", "0.001", "0.1", "Logarithmic"));
  proto::TrainingJobDefinition def;
  def.hyper_parameter_ranges.emplace().categorical_parameter_ranges.push_back(Cat("opt", {"sgd", "adam"}));
  Result<SearchSpace> s = SearchSpace::FromSpec(spec, def);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->dimensions().size(), 2u);
  EXPECT_EQ(s->dimensions()[0].name, "lr");
  EXPECT_EQ(s->dimensions()[0].kind, DimensionKind::kContinuous);
  EXPECT_EQ(s->dimensions()[0].lo, 0.001);
  EXPECT_EQ(s->dimensions()[1].name, "opt");
  EXPECT_EQ(s->UnitDims(), 3u);

  // The same name in both places is an error.
  def.hyper_parameter_ranges->continuous_parameter_ranges.push_back(Num("lr", "0.01", "0.1"));
  Result<SearchSpace> dup = SearchSpace::FromSpec(spec, def);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.status().message().find("\"lr\" has more than one range"), std::string::npos)
      << dup.status().message();
}

TEST(SearchSpace, RejectsRangesItCannotComputeWithAndNamesThem) {
  struct Case {
    const char* what;
    proto::ParameterRanges ranges;
    const char* message;
  };
  std::vector<Case> cases;
  auto add = [&](const char* what, const char* message, auto fill) {
    proto::ParameterRanges r;
    fill(r);
    cases.push_back({what, r, message});
  };
  add("not a number", "MinValue \"abc\" is not a number",
      [](auto& r) { r.continuous_parameter_ranges.push_back(Num("x", "abc", "1")); });
  add("integer bound with a fraction", "is not an integer",
      [](auto& r) { r.integer_parameter_ranges.push_back(Num("n", "1.5", "3")); });
  add("lo above hi", "is greater than MaxValue",
      [](auto& r) { r.continuous_parameter_ranges.push_back(Num("x", "2", "1")); });
  add("log of a non-positive range", "Logarithmic needs MinValue > 0",
      [](auto& r) { r.continuous_parameter_ranges.push_back(Num("x", "0", "1", "Logarithmic")); });
  add("reverse log on integers", "only for continuous ranges",
      [](auto& r) { r.integer_parameter_ranges.push_back(Num("n", "0", "1", "ReverseLogarithmic")); });
  add("reverse log reaching 1", "MaxValue < 1",
      [](auto& r) { r.continuous_parameter_ranges.push_back(Num("x", "0", "1", "ReverseLogarithmic")); });
  add("unknown scaling", "unknown ScalingType \"Cubic\"",
      [](auto& r) { r.continuous_parameter_ranges.push_back(Num("x", "0", "1", "Cubic")); });
  add("empty categorical", "Values is empty", [](auto& r) { r.categorical_parameter_ranges.push_back(Cat("c", {})); });
  add("repeated categorical value", "more than once",
      [](auto& r) { r.categorical_parameter_ranges.push_back(Cat("c", {"a", "a"})); });
  add("auto parameters", "AutoParameters",
      [](auto& r) { r.auto_parameters.push_back(proto::AutoParameter{"x", "0.1"}); });
  add("unnamed range", "has no Name", [](auto& r) {
    proto::NumericRange n = Num("x", "0", "1");
    n.name.reset();
    r.continuous_parameter_ranges.push_back(n);
  });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Status st = RangesError(c.ranges);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find(c.message), std::string::npos) << st.message();
  }
}

// ---- enumeration and normalisation --------------------------------------------------------------

TEST(SearchSpace, FiniteSpacesEnumerateWithTheFirstRangeVaryingSlowest) {
  proto::ParameterRanges ranges;
  ranges.integer_parameter_ranges.push_back(Num("n", "1", "3", "Linear"));
  ranges.categorical_parameter_ranges.push_back(Cat("c", {"a", "b"}));
  SearchSpace s = *SearchSpace::FromRanges(ranges);
  ASSERT_EQ(s.Cardinality(), 6u);
  EXPECT_EQ(s.AtIndex(0), (Config{{"n", "1"}, {"c", "a"}}));
  EXPECT_EQ(s.AtIndex(1), (Config{{"n", "1"}, {"c", "b"}}));
  EXPECT_EQ(s.AtIndex(2), (Config{{"n", "2"}, {"c", "a"}}));
  EXPECT_EQ(s.AtIndex(5), (Config{{"n", "3"}, {"c", "b"}}));
  for (uint64_t i = 0; i < 6; ++i) EXPECT_EQ(s.IndexOf(s.AtIndex(i)), i);
  // Extra keys are ignored; "2.0" is the integer 2; values outside the space have no index.
  EXPECT_EQ(s.IndexOf({{"n", "2.0"}, {"c", "b"}, {"epochs", "10"}}), 3u);
  EXPECT_EQ(s.IndexOf({{"n", "4"}, {"c", "b"}}), std::nullopt);
  EXPECT_EQ(s.IndexOf({{"n", "2"}, {"c", "z"}}), std::nullopt);
  EXPECT_EQ(s.IndexOf({{"n", "2"}}), std::nullopt);

  EXPECT_EQ(Continuous("0", "1", "Linear").Cardinality(), std::nullopt);
  EXPECT_EQ(SearchSpace::FromRanges({})->Cardinality(), 1u);
}

// Ranges at the edges of what doubles hold: a Linear range as wide as [-1e308, 1e308] (its
// width overflows) maps to and from the unit interval without NaN, and an integer range around
// 2^53 counts its values in integers, its last index being its MaxValue.
TEST(SearchSpace, RangesAtTheEdgesOfDoublesMapAndCountExactly) {
  SearchSpace wide = Continuous("-1e308", "1e308", "Linear");
  for (double u : {0.0, 0.25, 0.5, 0.9999999999999999, 1.0}) {
    const Config c = wide.FromUnit(std::vector<double>{u});
    const std::vector<double> back = wide.ToUnit(c);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_FALSE(std::isnan(back[0])) << c.at("x");
    EXPECT_NEAR(back[0], u, 1e-12) << c.at("x");
  }
  SearchSpace big = Integer("-9007199254740991", "9007199254740992", "Linear");
  ASSERT_EQ(big.Cardinality(), 18014398509481984u);
  EXPECT_EQ(big.AtIndex(*big.Cardinality() - 1).at("n"), "9007199254740992");
}

TEST(SearchSpace, NormalizeCanonicalisesValuesAndRejectsOnesOutsideTheSpace) {
  proto::ParameterRanges ranges;
  ranges.integer_parameter_ranges.push_back(Num("n", "1", "10"));
  ranges.continuous_parameter_ranges.push_back(Num("x", "0", "1"));
  ranges.categorical_parameter_ranges.push_back(Cat("c", {"a", "b"}));
  SearchSpace s = *SearchSpace::FromRanges(ranges);
  Result<Config> ok = s.Normalize({{"n", "5.0"}, {"x", "0.50"}, {"c", "a"}, {"static", "1"}});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, (Config{{"n", "5"}, {"x", "0.5"}, {"c", "a"}}));
  EXPECT_FALSE(s.Normalize({{"n", "5.5"}, {"x", "0.5"}, {"c", "a"}}).ok());
  EXPECT_FALSE(s.Normalize({{"n", "11"}, {"x", "0.5"}, {"c", "a"}}).ok());
  EXPECT_FALSE(s.Normalize({{"n", "5"}, {"x", "1.5"}, {"c", "a"}}).ok());
  EXPECT_FALSE(s.Normalize({{"n", "5"}, {"x", "abc"}, {"c", "a"}}).ok());
  EXPECT_FALSE(s.Normalize({{"n", "5"}, {"x", "0.5"}, {"c", "z"}}).ok());
  Result<Config> missing = s.Normalize({{"n", "5"}, {"c", "a"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("\"x\" is missing"), std::string::npos);
}

}  // namespace
}  // namespace hpo::coordinator
