#include "proto/validate.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include "common/text.h"
#include "proto/builtin_algorithms.h"

namespace hpo::proto {
namespace {

// The definition's objective: its own TuningObjective, else the job's; null if none.
const Objective* DefinitionObjective(const TuningJobSpec& spec, const TrainingJobDefinition& d) {
  if (d.tuning_objective) return &*d.tuning_objective;
  const TuningJobConfig* c = spec.hyper_parameter_tuning_job_config ? &*spec.hyper_parameter_tuning_job_config : nullptr;
  return c && c->hyper_parameter_tuning_job_objective ? &*c->hyper_parameter_tuning_job_objective : nullptr;
}

// SageMaker's fixed limits (section 1 and 2 of the reference); quotas are in ValidationLimits.
constexpr size_t kJobNameMax = 32;
constexpr size_t kDefinitionNameMax = 64;
constexpr size_t kMaxDefinitions = 10;
constexpr size_t kMetricNameMax = 255;
// The hyperparameter every training job gets, holding the objective metric's name.
const char* const kObjectiveHyperParameter = "_tuning_objective_metric";
constexpr int64_t kMaxExactInteger = int64_t{1} << 53;  // integer range bounds, in magnitude
constexpr size_t kMetricRegexMax = 500;
constexpr size_t kRangeValueMax = 256;
constexpr size_t kMaxRangesPerKind = 30;
constexpr size_t kMaxCategoricalValues = 30;
constexpr size_t kMaxAutoParameters = 100;
constexpr size_t kMaxHyperParameters = 100;  // static plus tunable
constexpr size_t kStaticKeyMax = 256;
constexpr size_t kStaticValueMax = 2500;
constexpr int64_t kTuningRuntimeMin = 120;
constexpr int64_t kMinNotImproving = 3;
constexpr int64_t kHyperbandMaxResource = 20000;
constexpr size_t kTrainingImageMax = 255;
constexpr size_t kS3UriMax = 1024;        // S3OutputPath, S3DataSource.S3Uri
constexpr size_t kAlgorithmNameMax = 170;
constexpr size_t kFileSystemIdMin = 11, kFileSystemIdMax = 21;
constexpr size_t kVpcIdMax = 32;          // a security group or subnet ID
constexpr size_t kContentTypeMax = 256;
constexpr size_t kPathMax = 4096;         // DirectoryPath, CheckpointConfig.LocalPath
constexpr size_t kAttributeNameMax = 256;
constexpr size_t kRoleArnMin = 20;
constexpr size_t kRoleArnMax = 2048;
// botocore 1.44.18's model (tests/.venv-sdk): 1800. It was 7200 in 1.43 and the reference of then,
// and 1800 before that: the service's current model decides (a pass ran 1800 and was refused).
constexpr int64_t kPendingMin = 1800;
constexpr int64_t kPendingMax = 2419200;
constexpr const char* kTrainingInstanceTypes[] = {
#include "proto/training_instance_types.inc"
};
constexpr size_t kMaxInstanceGroups = 5;
constexpr size_t kMaxInstanceConfigs = 6;
// SageMaker's `integer` members are 32-bit; larger values are refused (hpo's own arithmetic on
// times in milliseconds must never see them).
constexpr int64_t kIntMax = 2147483647;
// Hosts of one training job (hpo's limit, the wire carries at most this many).
constexpr int64_t kMaxHostsPerTrainingJob = 1024;  // HyperParameterTuningResourceConfig.InstanceConfigs
constexpr size_t kKmsKeyIdMax = 2048;
constexpr size_t kInstanceGroupNameMax = 64;
constexpr int64_t kKeepAliveMax = 21600;
constexpr int64_t kRetryMax = 30;
constexpr size_t kCheckpointUriMax = 1024;
constexpr size_t kMaxSecurityGroups = 5;
constexpr size_t kMaxSubnets = 16;
constexpr size_t kMaxEnvironment = 48;
constexpr size_t kEnvKeyMax = 512;
constexpr size_t kEnvValueMax = 512;
constexpr size_t kMaxTags = 50;
constexpr size_t kTagKeyMax = 128;
constexpr size_t kTagValueMax = 256;
constexpr size_t kMaxChannels = 20;
constexpr size_t kChannelNameMax = 64;
constexpr size_t kMaxAttributeNames = 16;
constexpr size_t kMaxChannelInstanceGroups = 5;
constexpr size_t kMaxParents = 5;

using Allowed = std::initializer_list<std::string_view>;

constexpr const char* kEpochsNames[] = {"epochs", "numepochs", "n-epochs", "n_epochs", "num_epochs"};

// A value quoted for a message: escaped, and cut at 80 characters (not bytes: a cut inside a
// multi-byte character wrote invalid UTF-8 to the terminal).
std::string Quote(std::string_view v) {
  constexpr size_t kMaxShown = 80;
  const std::string shown = Utf8Prefix(v, kMaxShown);
  std::string out = "\"";
  for (size_t i = 0; i < shown.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(shown[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown.size() < v.size()) out += "...";
  out += '"';
  return out;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

std::string JoinAllowed(Allowed allowed) {
  std::string out;
  for (auto a : allowed) {
    if (!out.empty()) out += ", ";
    out += a;
  }
  return out;
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }


// [A-Za-z0-9\.\-_]+
bool IsChannelName(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '.' || c == '-' || c == '_'; });
}

// [a-zA-Z_][a-zA-Z0-9_]*
bool IsEnvironmentKey(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '_'; });
}

std::string_view StripPlus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  return s;
}

std::optional<int64_t> ParseInteger(std::string_view text) {
  std::string_view s = StripPlus(text);
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseDecimal(std::string_view text) {
  std::string_view s = StripPlus(text);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// (https|s3)://([^/]+)/?(.*), as SageMaker; an https:// one must be an S3 object URL, which is
// what hpo reads (S3UriOfUrl); on premises also file:///abs/path and /abs/path.
bool IsStorageUri(std::string_view s) {
  if (StartsWith(s, "https://")) return S3UriOfUrl(std::string(s)).has_value();
  if (StartsWith(s, "s3://")) {
    std::string_view rest = s.substr(5);
    return !rest.empty() && rest[0] != '/';
  }
  if (StartsWith(s, "file://")) {
    std::string_view rest = s.substr(7);
    return rest.size() > 1 && rest[0] == '/';
  }
  return !s.empty() && s[0] == '/';
}

constexpr const char* kStorageUriForms =
    "an s3:// URI with a bucket (s3://bucket/prefix) or an S3 object URL "
    "(https://bucket.s3.region.amazonaws.com/prefix), a file:// URI or an absolute local path";

// What is wrong with a storage URI ("" when nothing). Beyond its form: a "." or ".." segment
// (and, in a local path, an empty one: "//"). Such a path was accepted and every training job
// failed after its program had run, its upload refused ("is not a clean relative path"); in an
// s3:// key the HTTP client resolved "..", so the artifact went to another key than the one
// DescribeTrainingJob names.
std::string StorageUriProblem(const std::string& uri) {
  if (!IsStorageUri(uri)) {
    if (StartsWith(uri, "https://")) {
      return "is an https:// URL that is not an S3 object URL (https://bucket.s3.region.amazonaws.com/prefix): for "
             "an S3-compatible store (MinIO, Ceph) give s3://bucket/prefix, and its address as the workers' S3 "
             "endpoint (hpo worker --s3-endpoint); got " + Quote(uri);
    }
    if (StartsWith(uri, "file://") && uri.size() > 7 && uri[7] != '/') {
      const std::string host = uri.substr(7, uri.find('/', 7) == std::string::npos ? std::string::npos
                                                                                    : uri.find('/', 7) - 7);
      return "names the host " + Quote(host) + " (file://HOST/PATH): a local directory is file:// and its " +
             "absolute path, three slashes in all (file:///data/out), or the absolute path alone; got " + Quote(uri);
    }
    return std::string("must be ") + kStorageUriForms + "; got " + Quote(uri);
  }
  std::string path;  // the part whose segments name files or keys
  bool local = false;
  if (StartsWith(uri, "https://") || StartsWith(uri, "s3://")) {
    const std::string s3 = StartsWith(uri, "s3://") ? uri : S3UriOfUrl(uri).value_or("");
    const size_t slash = s3.find('/', 5);
    path = slash == std::string::npos ? "" : s3.substr(slash + 1);
  } else {
    path = StartsWith(uri, "file://") ? uri.substr(8) : uri.substr(1);  // after the root's '/'
    local = true;
  }
  if (path.ends_with('/')) path.pop_back();  // a prefix's trailing '/' is fine
  for (size_t start = 0; !path.empty() && start <= path.size();) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = std::string_view(path).substr(start, end - start);
    if (part == "." || part == "..") {
      return "has a \"" + std::string(part) + "\" segment: write the " + (local ? "path" : "key") +
             " it stands for, without . or .. (hpo stores it as written and will not resolve it); got " + Quote(uri);
    }
    if (part.empty() && local) {
      return "has an empty segment (\"//\"), which no directory can be named: write the path with single slashes; "
             "got " + Quote(uri);
    }
    start = end + 1;
  }
  return "";
}

std::string ToLower(std::string_view s) { return AsciiLower(s); }

class Validator {
 public:
  Validator(Spelling spelling, const ValidationLimits& limits)
      : spelling_(spelling), limits_(limits), root_(spelling) {}

  FieldErrors Run(const TuningJobSpec& spec);
  FieldErrors RunTags(const std::vector<Tag>& tags) {
    CheckTags(tags, root_.Child("Tags"));
    return std::move(errors_);
  }

 private:
  // The user's spelling of an API member name, for messages.
  std::string N(std::string_view api) const { return spelling_ == Spelling::kCrd ? CrdName(api) : std::string(api); }

  void Add(const FieldPath& p, std::string message) { errors_.push_back({p.str(), std::move(message)}); }
  void AddQuota(const FieldPath& p, std::string message) { errors_.push_back({p.str(), std::move(message), true}); }

  template <class T>
  bool Required(const std::optional<T>& v, const FieldPath& p, std::string_view why = "") {
    if (v) return true;
    Add(p, why.empty() ? std::string("is required") : "is required " + std::string(why));
    return false;
  }

  // Length in [min, max]; the value is quoted. Returns true when within.
  bool Length(const std::string& v, const FieldPath& p, size_t min, size_t max) {
    const size_t chars = Utf8Length(v);
    if (chars >= min && chars <= max) return true;
    std::string bounds = min == 0 ? "at most " + std::to_string(max) : std::to_string(min) + "-" + std::to_string(max);
    Add(p, "must be " + bounds + " characters, got " + std::to_string(chars) + ": " + Quote(v));
    return false;
  }

  bool RequiredString(const std::optional<std::string>& v, const FieldPath& p, size_t min, size_t max) {
    if (!v) {
      Add(p, "is required (" + std::to_string(min) + "-" + std::to_string(max) + " characters)");
      return false;
    }
    return Length(*v, p, min, max);
  }

  void Enum(const std::optional<std::string>& v, const FieldPath& p, Allowed allowed, bool required) {
    if (!v) {
      if (required) Add(p, "is required: one of " + JoinAllowed(allowed));
      return;
    }
    if (std::find(allowed.begin(), allowed.end(), *v) != allowed.end()) return;
    std::string hint;
    for (auto a : allowed) {
      if (ToLower(a) == ToLower(*v)) hint = " (values are case-sensitive: " + std::string(a) + ")";
    }
    Add(p, "must be one of " + JoinAllowed(allowed) + "; got " + Quote(*v) + hint);
  }

  // An integer in [min, max] (max < 0: up to kIntMax, SageMaker's largest integer); `limit_hint`
  // explains where max comes from.
  void IntRange(const std::optional<int64_t>& v, const FieldPath& p, int64_t min, int64_t max, bool required,
                std::string_view limit_hint = "") {
    if (max == INT64_MAX) max = -1;  // an unlimited quota (ValidationLimits::Unlimited): no upper bound to name
    std::string bounds =
        max < 0 ? ">= " + std::to_string(min) : "between " + std::to_string(min) + " and " + std::to_string(max);
    if (!v) {
      if (required) Add(p, "is required: an integer " + bounds);
      return;
    }
    if (*v < min) {
      Add(p, "must be " + bounds + ", got " + std::to_string(*v));
    } else if (max < 0 && *v > kIntMax) {
      Add(p, "must be between " + std::to_string(min) + " and " + std::to_string(kIntMax) +
                 " (SageMaker's integers are 32-bit), got " + std::to_string(*v));
    } else if (max >= 0 && *v > max) {
      Add(p, "must be " + bounds + ", got " + std::to_string(*v) +
                 (limit_hint.empty() ? "" : "; " + std::string(limit_hint)));
    }
  }

  // SageMaker's pattern for the field (botocore's model), anchored; `shown` is how the message
  // writes it, `what` says it in words.
  void Pattern(const std::optional<std::string>& v, const FieldPath& p, const RE2& re, std::string_view shown,
               std::string_view what) {
    if (v && !RE2::FullMatch(*v, re)) {
      Add(p, "must match " + std::string(shown) + " (" + std::string(what) + "); got " + Quote(*v));
    }
  }

  void Count(size_t n, const FieldPath& p, size_t min, size_t max, std::string_view what) {
    if (n >= min && n <= max) return;
    std::string bounds = min == 0 ? "at most " + std::to_string(max) : std::to_string(min) + "-" + std::to_string(max);
    Add(p, "must have " + bounds + " " + std::string(what) + ", got " + std::to_string(n));
  }

  bool Mode(const std::optional<std::string>& v, std::string_view m) const { return v && *v == m; }

  // ---- parts ----
  void CheckJobName(const std::optional<std::string>& name, const FieldPath& p, bool required);
  void CheckConfig(const TuningJobSpec& spec, const FieldPath& p);
  // Grid searches categorical ranges only: an Integer or Continuous range in `r` (at `rp`) is an error.
  void GridRangesOnly(const ParameterRanges& r, const FieldPath& rp);
  void CheckObjective(const Objective& o, const FieldPath& p);
  void CheckResourceLimits(const TuningJobConfig& c, const FieldPath& p);
  void CheckHyperband(const TuningJobSpec& spec, const FieldPath& p);
  void CheckRanges(const ParameterRanges& r, const FieldPath& p);
  void CheckNumericRange(const NumericRange& r, const FieldPath& p, bool integer);
  void CheckDefinitions(const TuningJobSpec& spec);
  void CheckDefinition(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p, bool multi);
  void CheckDistributionGroups(const TrainingJobDefinition& d, const FieldPath& sp);
  void InstanceGroupDefined(const std::vector<InstanceGroup>& groups, const std::string& name, const FieldPath& at);
  void CheckHyperParameterNames(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p,
                                bool multi);
  void CheckObjectiveMetric(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p);
  void CheckAlgorithm(const AlgorithmSpecification& a, const FieldPath& p);
  void CheckChannels(const TrainingJobDefinition& d, const FieldPath& p);
  void CheckChannel(const TrainingJobDefinition& d, const Channel& c, const FieldPath& p);
  void CheckResourceConfig(const ResourceConfig& r, const FieldPath& p);
  void CheckTuningResourceConfig(const HyperParameterTuningResourceConfig& r, const FieldPath& p);
  void HostLimit(int64_t hosts, const FieldPath& p);
  void InstanceType(const std::optional<std::string>& type, const FieldPath& p);
  // A KMS key ID, alias or ARN (botocore: at most 2048 of [a-zA-Z0-9:/_-]).
  void KmsKey(const std::optional<std::string>& v, const FieldPath& p) {
    static const RE2 kKmsKey("[a-zA-Z0-9:/_-]*");
    if (v && Length(*v, p, 0, kKmsKeyIdMax)) Pattern(v, p, kKmsKey, "[a-zA-Z0-9:/_-]*", "a KMS key ID, alias or ARN");
  }
  void CheckStopping(const TrainingJobDefinition& d, const FieldPath& p);
  void CheckWarmStart(const TuningJobSpec& spec, const FieldPath& p);
  void CheckTags(const std::vector<Tag>& tags, const FieldPath& p);

  // Counts stop at this (2^40): "more than" it in messages (CombinationsText).
  static constexpr int64_t kCombinationsCap = int64_t{1} << 40;
  static std::string CombinationsText(int64_t n) {
    return n >= kCombinationsCap ? "more than " + std::to_string(kCombinationsCap) : std::to_string(n);
  }
  // Grid combinations of the job (sum over definitions of the product of categorical value
  // counts), or nullopt when a definition has no categorical range to count.
  std::optional<int64_t> GridCombinations(const TuningJobSpec& spec) const {
    return Combinations(spec, false);
  }
  // Distinct configurations of the job (sum over definitions of the product of its categorical
  // value counts and, with `integers`, integer range sizes), or nullopt when one is unbounded (a
  // continuous or Auto range) or has nothing to count.
  std::optional<int64_t> Combinations(const TuningJobSpec& spec, bool integers) const;

  const TuningJobConfig* Config(const TuningJobSpec& spec) const {
    return spec.hyper_parameter_tuning_job_config ? &*spec.hyper_parameter_tuning_job_config : nullptr;
  }
  std::string ObjectiveMetricOf(const TuningJobSpec& spec, const TrainingJobDefinition& d) const {
    const Objective* o = DefinitionObjective(spec, d);
    return o && o->metric_name ? *o->metric_name : "";
  }
  std::string Strategy(const TuningJobSpec& spec) const {
    const TuningJobConfig* c = Config(spec);
    return c && c->strategy ? *c->strategy : "";
  }
  // The ranges that apply to one definition, with where they are written.
  std::vector<std::pair<const ParameterRanges*, FieldPath>> RangeScope(const TuningJobSpec& spec,
                                                                       const TrainingJobDefinition& d,
                                                                       const FieldPath& def_path, bool multi) const;

  Spelling spelling_;
  const ValidationLimits& limits_;
  FieldPath root_;
  FieldErrors errors_;
  bool grid_range_refused_ = false;  // an Integer or Continuous range with Grid (GridRangesOnly)
  bool autotune_ = false;  // spec.Autotune is set: Autotune fills Strategy and ResourceLimits left out
};

FieldErrors Validator::Run(const TuningJobSpec& spec) {
  autotune_ = spec.autotune.has_value();
  CheckJobName(spec.hyper_parameter_tuning_job_name, root_.Child("HyperParameterTuningJobName"), true);
  FieldPath config_path = root_.Child("HyperParameterTuningJobConfig");
  if (Required(spec.hyper_parameter_tuning_job_config, config_path)) CheckConfig(spec, config_path);
  CheckDefinitions(spec);
  if (spec.warm_start_config) CheckWarmStart(spec, root_.Child("WarmStartConfig"));
  CheckTags(spec.tags, root_.Child("Tags"));
  if (spec.autotune) {
    FieldPath p = root_.Child("Autotune").Child("Mode");
    if (!spec.autotune->mode) {
      Add(p, "is required: Enabled");
    } else if (*spec.autotune->mode != "Enabled") {
      Add(p, "must be Enabled; got " + Quote(*spec.autotune->mode));
    }
  }
  return std::move(errors_);
}

void Validator::CheckJobName(const std::optional<std::string>& name, const FieldPath& p, bool required) {
  if (!name) {
    if (required) Add(p, "is required (1-32 characters: letters, digits and hyphens)");
    return;
  }
  Length(*name, p, 1, kJobNameMax);
  if (!name->empty() && !IsHyphenatedName(*name)) {
    Add(p,
        "must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31} (letters, digits and hyphens, starting and ending with a "
        "letter or digit); got " +
            Quote(*name));
  }
}

// ---- HyperParameterTuningJobConfig ------------------------------------------------------------

void Validator::CheckConfig(const TuningJobSpec& spec, const FieldPath& p) {
  const TuningJobConfig& c = *spec.hyper_parameter_tuning_job_config;
  Enum(c.strategy, p.Child("Strategy"), {"Bayesian", "Random", "Hyperband", "Grid"}, !autotune_);

  FieldPath objective_path = p.Child("HyperParameterTuningJobObjective");
  if (c.hyper_parameter_tuning_job_objective) {
    CheckObjective(*c.hyper_parameter_tuning_job_objective, objective_path);
  } else {
    auto defs = spec.Definitions();
    bool all_own = !defs.empty() && std::all_of(defs.begin(), defs.end(), [](const TrainingJobDefinition* d) {
      return d->tuning_objective.has_value();
    });
    // With both TrainingJobDefinition and TrainingJobDefinitions, that is the error (said in
    // CheckDefinitions): which definitions have objectives is not known (a multi-definition pass
    // got this one too, though every entry had its own).
    const bool both = spec.training_job_definition && !spec.training_job_definitions.empty();
    if (!all_own && !both) {
      Add(objective_path, "is required (" + N("Type") + " Maximize|Minimize and " + N("MetricName") +
                              ") unless every entry of " + N("TrainingJobDefinitions") + " has its own " +
                              N("TuningObjective"));
    }
  }
  // One best training job is chosen across the definitions, so they must agree on which way is
  // better (the SageMaker SDK's multi-algorithm tuner takes a single objective type).
  {
    auto defs = spec.Definitions();
    const Objective* first = nullptr;
    size_t first_i = 0;
    for (size_t i = 0; i < defs.size(); ++i) {
      const Objective* o = DefinitionObjective(spec, *defs[i]);
      if (!o || !o->type || (*o->type != "Maximize" && *o->type != "Minimize")) continue;
      if (!first) {
        first = o;
        first_i = i;
      } else if (*o->type != *first->type) {
        Add(root_.Child("TrainingJobDefinitions").Index(i).Child("TuningObjective").Child("Type"),
            "is " + *o->type + " but " + N("TrainingJobDefinitions") + "[" + std::to_string(first_i) + "]'s objective is " +
                *first->type + "; every definition must use the same " + N("Type") +
                " (the best training job is chosen across all of them)");
        break;
      }
    }
    // A job-level objective the definitions all override, pointing the other way: it was kept
    // and described, and silently not used.
    const Objective* job = c.hyper_parameter_tuning_job_objective ? &*c.hyper_parameter_tuning_job_objective : nullptr;
    if (first && job && job->type && (*job->type == "Maximize" || *job->type == "Minimize") &&
        *job->type != *first->type && !spec.training_job_definitions.empty() &&
        std::all_of(defs.begin(), defs.end(), [](const TrainingJobDefinition* d) { return d->tuning_objective.has_value(); })) {
      Add(objective_path.Child("Type"),
          "is " + *job->type + " but every entry of " + N("TrainingJobDefinitions") + " has its own " +
              N("TuningObjective") + " of " + N("Type") + " " + *first->type +
              ", which is used instead; make it " + *first->type + " or leave " + N("HyperParameterTuningJobObjective") +
              " out");
    }
  }

  FieldPath limits_path = p.Child("ResourceLimits");
  if (c.resource_limits) {
    CheckResourceLimits(c, limits_path);
  } else if (!autotune_) {
    Add(limits_path, "is required (" + N("MaxParallelTrainingJobs") + ", and " + N("MaxNumberOfTrainingJobs") +
                         " unless the strategy is Grid), unless Autotune is enabled");
  }

  if (c.parameter_ranges) CheckRanges(*c.parameter_ranges, p.Child("ParameterRanges"));

  FieldPath stopping_path = p.Child("TrainingJobEarlyStoppingType");
  Enum(c.training_job_early_stopping_type, stopping_path, {"Off", "Auto"}, false);
  if (Mode(c.training_job_early_stopping_type, "Auto")) {
    if (Mode(c.strategy, "Hyperband")) {
      Add(stopping_path,
          "must be Off with the Hyperband strategy (Hyperband has its own early stopping); got \"Auto\"");
    } else if (spec.training_job_definitions.size() > 1) {
      Add(stopping_path, "Auto is supported only with a single training job definition; this job has " +
                             std::to_string(spec.training_job_definitions.size()) + " " + N("TrainingJobDefinitions"));
    }
  }

  if (c.tuning_job_completion_criteria) {
    FieldPath cp = p.Child("TuningJobCompletionCriteria");
    const auto& cc = *c.tuning_job_completion_criteria;
    if (cc.best_objective_not_improving) {
      IntRange(cc.best_objective_not_improving->max_number_of_training_jobs_not_improving,
               cp.Child("BestObjectiveNotImproving").Child("MaxNumberOfTrainingJobsNotImproving"), kMinNotImproving, -1,
               false);
    }
    if (cc.convergence_detected) {
      Enum(cc.convergence_detected->complete_on_convergence,
           cp.Child("ConvergenceDetected").Child("CompleteOnConvergence"), {"Disabled", "Enabled"}, false);
    }
  }

  IntRange(c.random_seed, p.Child("RandomSeed"), 0, -1, false);

  if (c.strategy_config && !Mode(c.strategy, "Hyperband")) {
    Add(p.Child("StrategyConfig"),
        "is only allowed with the Hyperband strategy; " + N("Strategy") + " is " + Quote(c.strategy.value_or("")));
  }
  if (Mode(c.strategy, "Hyperband")) CheckHyperband(spec, p);

  if (Mode(c.strategy, "Grid") && c.parameter_ranges) GridRangesOnly(*c.parameter_ranges, p.Child("ParameterRanges"));
}

void Validator::GridRangesOnly(const ParameterRanges& r, const FieldPath& rp) {
  for (auto [list, api] : {std::pair{&r.integer_parameter_ranges, "IntegerParameterRanges"},
                           std::pair{&r.continuous_parameter_ranges, "ContinuousParameterRanges"}}) {
    if (!list->empty()) {
      Add(rp.Child(api), "is not allowed with the Grid strategy: Grid searches " + N("CategoricalParameterRanges") +
                             " only; got " + std::to_string(list->size()) + " range(s)");
      grid_range_refused_ = true;
    }
  }
}

void Validator::CheckObjective(const Objective& o, const FieldPath& p) {
  Enum(o.type, p.Child("Type"), {"Maximize", "Minimize"}, true);
  RequiredString(o.metric_name, p.Child("MetricName"), 1, kMetricNameMax);
}

void Validator::CheckResourceLimits(const TuningJobConfig& c, const FieldPath& p) {
  const ResourceLimits& r = *c.resource_limits;
  const FieldPath parallel_path = p.Child("MaxParallelTrainingJobs");
  if (r.max_parallel_training_jobs && *r.max_parallel_training_jobs > limits_.max_parallel_training_jobs) {
    AddQuota(parallel_path, "must be at most " + std::to_string(limits_.max_parallel_training_jobs) + ", got " +
                                std::to_string(*r.max_parallel_training_jobs) +
                                "; that is a quota (per account on SageMaker, an option here): raise it with --max-parallel-training-jobs "
                                "(hpo coordinator, hpo run, hpo validate) to run more training jobs in parallel");
  } else {
    IntRange(r.max_parallel_training_jobs, parallel_path, 1, limits_.max_parallel_training_jobs, !autotune_);
  }

  FieldPath number_path = p.Child("MaxNumberOfTrainingJobs");
  bool grid = Mode(c.strategy, "Grid");
  bool known = c.strategy && (*c.strategy == "Bayesian" || *c.strategy == "Random" || *c.strategy == "Hyperband" ||
                              *c.strategy == "Grid");
  if (!r.max_number_of_training_jobs) {
    if (!grid && !autotune_) {
      Add(number_path, "is required (an integer >= 1) unless the strategy is Grid or Autotune is enabled");
    }
  } else if (*r.max_number_of_training_jobs < 1) {
    Add(number_path, "must be >= 1, got " + std::to_string(*r.max_number_of_training_jobs));
  } else if (known) {
    bool random = *c.strategy == "Random";
    int64_t max = random ? limits_.max_training_jobs : limits_.max_training_jobs_bayesian;
    if (*r.max_number_of_training_jobs > max) {
      AddQuota(number_path, "must be <= " + std::to_string(max) + " for the " + *c.strategy + " strategy, got " +
                                std::to_string(*r.max_number_of_training_jobs) +
                                "; that is a quota (per account on SageMaker, an option here): raise it with " +
                                (random ? "--max-training-jobs-random" : "--max-training-jobs") +
                                " (hpo coordinator, hpo run, hpo validate)");
    }
  }

  IntRange(r.max_runtime_in_seconds, p.Child("MaxRuntimeInSeconds"), kTuningRuntimeMin,
           limits_.max_tuning_runtime_seconds, false, "SageMaker's limit, half a year");
}

void Validator::CheckHyperband(const TuningJobSpec& spec, const FieldPath& p) {
  const TuningJobConfig& c = *spec.hyper_parameter_tuning_job_config;
  std::optional<int64_t> min_resource, max_resource;
  FieldPath hp = p.Child("StrategyConfig").Child("HyperbandStrategyConfig");
  if (c.strategy_config && c.strategy_config->hyperband_strategy_config) {
    const auto& h = *c.strategy_config->hyperband_strategy_config;
    min_resource = h.min_resource;
    max_resource = h.max_resource;
    IntRange(h.min_resource, hp.Child("MinResource"), 1, -1, false);
    IntRange(h.max_resource, hp.Child("MaxResource"), 1, kHyperbandMaxResource, false);
    if (h.min_resource && h.max_resource && *h.min_resource > *h.max_resource && *h.max_resource >= 1) {
      Add(hp, N("MinResource") + " " + std::to_string(*h.min_resource) + " must be <= " + N("MaxResource") + " " +
                  std::to_string(*h.max_resource));
    }
  }
  if (max_resource) return;

  // MaxResource is inferred per definition from its epochs-type static hyperparameter.
  auto check = [&](const TrainingJobDefinition& d, const FieldPath& dp) {
    FieldPath sp = dp.Child("StaticHyperParameters");
    std::optional<std::string> key = EpochsHyperParameter(d);
    const TrainingJobDefinition* from = &d;
    // Autotune keeps an epochs-type AutoParameter of a Hyperband job static, its hint the value
    // (coordinator/autotune.h): that is the resource then.
    TrainingJobDefinition hinted;
    if (!key && spec.autotune && spec.autotune->mode.value_or("") == "Enabled") {
      for (const auto* r : {c.parameter_ranges ? &*c.parameter_ranges : nullptr,
                            d.hyper_parameter_ranges ? &*d.hyper_parameter_ranges : nullptr}) {
        if (!r) continue;
        for (const auto& a : r->auto_parameters) {
          if (a.name && a.value_hint) hinted.static_hyper_parameters[*a.name] = *a.value_hint;
        }
      }
      key = EpochsHyperParameter(hinted);
      from = &hinted;
    }
    if (!key) {
      // An epochs-type hyperparameter among the tuned ones: Hyperband gives each training job its
      // epochs itself (it said only "add a static hyperparameter epochs" for a spec that had one).
      // Found as EpochsHyperParameter finds a static one, among the ranges' names.
      TrainingJobDefinition ranged;
      for (const auto* r : {c.parameter_ranges ? &*c.parameter_ranges : nullptr,
                            d.hyper_parameter_ranges ? &*d.hyper_parameter_ranges : nullptr}) {
        if (!r) continue;
        for (const auto& x : r->integer_parameter_ranges) ranged.static_hyper_parameters[x.name.value_or("")];
        for (const auto& x : r->continuous_parameter_ranges) ranged.static_hyper_parameters[x.name.value_or("")];
        for (const auto& x : r->categorical_parameter_ranges) ranged.static_hyper_parameters[x.name.value_or("")];
      }
      const std::optional<std::string> tuned = EpochsHyperParameter(ranged);
      Add(sp, "the Hyperband strategy needs a maximum resource: " +
                  (tuned ? Quote(*tuned) + " is tuned here, and Hyperband gives each training job its " +
                               Quote(*tuned) + " itself: make it a static hyperparameter (its maximum)"
                         : std::string("add a static hyperparameter epochs, numepochs, n-epochs, n_epochs or "
                                       "num_epochs (a positive integer)")) +
                  " or set " + hp.Child("MaxResource").str());
      return;
    }
    const std::string& value = from->static_hyper_parameters.at(*key);
    std::optional<int64_t> epochs = ParseInteger(value);
    if (!epochs || *epochs < 1) {
      Add(sp.Key(*key),
          "must be a positive integer: the Hyperband strategy takes its maximum resource from it; got " + Quote(value));
    } else if (*epochs > kHyperbandMaxResource) {
      Add(sp.Key(*key), "must be <= " + std::to_string(kHyperbandMaxResource) +
                            ": the Hyperband strategy takes its maximum resource from it; got " + Quote(value));
    } else if (min_resource && *min_resource > *epochs) {
      Add(sp.Key(*key), "must be >= " + N("MinResource") + " " + std::to_string(*min_resource) +
                            ": the Hyperband strategy takes its maximum resource from it; got " + Quote(value));
    }
  };
  if (spec.training_job_definition) check(*spec.training_job_definition, root_.Child("TrainingJobDefinition"));
  for (size_t i = 0; i < spec.training_job_definitions.size(); ++i) {
    check(spec.training_job_definitions[i], root_.Child("TrainingJobDefinitions").Index(i));
  }
}

// ---- parameter ranges -------------------------------------------------------------------------

void Validator::CheckRanges(const ParameterRanges& r, const FieldPath& p) {
  FieldPath ip = p.Child("IntegerParameterRanges");
  Count(r.integer_parameter_ranges.size(), ip, 0, kMaxRangesPerKind, "ranges");
  for (size_t i = 0; i < r.integer_parameter_ranges.size(); ++i) {
    CheckNumericRange(r.integer_parameter_ranges[i], ip.Index(i), true);
  }
  FieldPath cp = p.Child("ContinuousParameterRanges");
  Count(r.continuous_parameter_ranges.size(), cp, 0, kMaxRangesPerKind, "ranges");
  for (size_t i = 0; i < r.continuous_parameter_ranges.size(); ++i) {
    CheckNumericRange(r.continuous_parameter_ranges[i], cp.Index(i), false);
  }
  FieldPath kp = p.Child("CategoricalParameterRanges");
  Count(r.categorical_parameter_ranges.size(), kp, 0, kMaxRangesPerKind, "ranges");
  for (size_t i = 0; i < r.categorical_parameter_ranges.size(); ++i) {
    const CategoricalRange& c = r.categorical_parameter_ranges[i];
    FieldPath ep = kp.Index(i);
    RequiredString(c.name, ep.Child("Name"), 1, kRangeValueMax);
    FieldPath vp = ep.Child("Values");
    if (c.values.empty()) {
      Add(vp, "is required: 1-30 values");
    } else {
      Count(c.values.size(), vp, 1, kMaxCategoricalValues, "values");
    }
    std::set<std::string> seen;
    for (size_t j = 0; j < c.values.size(); ++j) {
      // An empty value is one (botocore's ParameterValue: 0-256 characters): "no flag".
      if (!Length(c.values[j], vp.Index(j), 0, kRangeValueMax)) continue;
      if (!seen.insert(c.values[j]).second) {
        Add(vp.Index(j), "duplicates the value " + Quote(c.values[j]) + "; values must be unique");
      }
    }
  }
  FieldPath ap = p.Child("AutoParameters");
  Count(r.auto_parameters.size(), ap, 0, kMaxAutoParameters, "entries");
  if (!r.auto_parameters.empty() && !autotune_) {
    Add(ap, "needs Autotune: set " + root_.Child("Autotune").Child("Mode").str() +
                " to Enabled, or write these as Integer, Continuous or Categorical ranges");
  }
  for (size_t i = 0; i < r.auto_parameters.size(); ++i) {
    const AutoParameter& a = r.auto_parameters[i];
    RequiredString(a.name, ap.Index(i).Child("Name"), 1, kRangeValueMax);
    RequiredString(a.value_hint, ap.Index(i).Child("ValueHint"), 1, kRangeValueMax);
  }
}

void Validator::CheckNumericRange(const NumericRange& r, const FieldPath& p, bool integer) {
  RequiredString(r.name, p.Child("Name"), 1, kRangeValueMax);
  const char* kind = integer ? "an integer" : "a finite decimal number";
  std::optional<double> bounds[2];
  const std::optional<std::string>* values[2] = {&r.min_value, &r.max_value};
  const char* apis[2] = {"MinValue", "MaxValue"};
  for (int k = 0; k < 2; ++k) {
    FieldPath vp = p.Child(apis[k]);
    if (!*values[k]) {
      Add(vp, std::string("is required: ") + kind);
      continue;
    }
    const std::string& text = **values[k];
    if (!Length(text, vp, 1, kRangeValueMax)) continue;
    if (integer) {
      std::optional<int64_t> v = ParseInteger(text);
      // Digits past 64 bits are an integer too large, not "not an integer" (a limits pass).
      const size_t sign = !text.empty() && (text[0] == '-' || text[0] == '+') ? 1 : 0;
      const bool digits = text.size() > sign &&
                          text.find_first_not_of("0123456789", sign) == std::string::npos;
      // The strategies hold a value as a double, exact for integers up to 2^53 only.
      if ((v && (*v > kMaxExactInteger || *v < -kMaxExactInteger)) || (!v && digits)) {
        Add(vp, "must be an integer between -2^53 and 2^53 (" + std::to_string(kMaxExactInteger) + "), got " +
                    Quote(text));
        continue;
      }
      if (v) bounds[k] = static_cast<double>(*v);
    } else {
      bounds[k] = ParseDecimal(text);
    }
    if (!bounds[k]) Add(vp, std::string("must be ") + kind + ", got " + Quote(text));
  }
  bool have_both = bounds[0] && bounds[1];
  if (have_both) {
    bool greater = integer ? *ParseInteger(*r.min_value) > *ParseInteger(*r.max_value) : *bounds[0] > *bounds[1];
    if (greater) {
      Add(p, N("MinValue") + " " + Quote(*r.min_value) + " must be <= " + N("MaxValue") + " " + Quote(*r.max_value));
    }
  }
  FieldPath sp = p.Child("ScalingType");
  Enum(r.scaling_type, sp, {"Auto", "Linear", "Logarithmic", "ReverseLogarithmic"}, false);
  if (Mode(r.scaling_type, "Logarithmic") && bounds[0] && *bounds[0] <= 0) {
    Add(p, N("ScalingType") + " Logarithmic needs " + N("MinValue") + " > 0, got " + Quote(*r.min_value));
  }
  if (Mode(r.scaling_type, "ReverseLogarithmic")) {
    if (integer) {
      Add(sp, "ReverseLogarithmic is only allowed for " + N("ContinuousParameterRanges") +
                  "; use Auto, Linear or Logarithmic for an integer range");
    } else {
      if (bounds[0] && *bounds[0] < 0) {
        Add(p, N("ScalingType") + " ReverseLogarithmic needs " + N("MinValue") + " >= 0, got " + Quote(*r.min_value));
      }
      if (bounds[1] && *bounds[1] >= 1) {
        Add(p, N("ScalingType") + " ReverseLogarithmic needs " + N("MaxValue") + " < 1, got " + Quote(*r.max_value));
      }
    }
  }
}

std::vector<std::pair<const ParameterRanges*, FieldPath>> Validator::RangeScope(const TuningJobSpec& spec,
                                                                                const TrainingJobDefinition& d,
                                                                                const FieldPath& def_path,
                                                                                bool multi) const {
  std::vector<std::pair<const ParameterRanges*, FieldPath>> scope;
  const TuningJobConfig* c = Config(spec);
  if (!multi && c && c->parameter_ranges) {
    scope.emplace_back(&*c->parameter_ranges, root_.Child("HyperParameterTuningJobConfig").Child("ParameterRanges"));
  }
  if (d.hyper_parameter_ranges) scope.emplace_back(&*d.hyper_parameter_ranges, def_path.Child("HyperParameterRanges"));
  return scope;
}

// Ranges written out. AutoParameters are not counted: Autotune may keep some of them static, and
// the spec it resolves to is validated again, with its ranges counted.
size_t TunableCount(const ParameterRanges& r) {
  return r.integer_parameter_ranges.size() + r.continuous_parameter_ranges.size() +
         r.categorical_parameter_ranges.size();
}

void Validator::CheckHyperParameterNames(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p,
                                         bool multi) {
  auto scope = RangeScope(spec, d, p, multi);
  std::map<std::string, std::string> first;  // name -> path of its first range
  size_t tunable = 0;
  // `range`: false for AutoParameters, which Autotune keeps static when named _* (the static
  // check below then applies to the spec it resolves to).
  auto visit = [&](const std::optional<std::string>& name, const FieldPath& ep, bool range = true) {
    if (!name || name->empty()) return;
    if (range && *name == kObjectiveHyperParameter) {
      Add(ep.Child("Name"), Quote(*name) + " is reserved: every training job gets it, set to the objective metric's "
                                           "name (as on SageMaker); give the range another name");
      return;
    }
    auto [it, inserted] = first.emplace(*name, ep.str());
    if (!inserted) {
      Add(ep.Child("Name"), "duplicates the hyperparameter " + Quote(*name) + " of " + it->second +
                                "; every tuned hyperparameter needs a unique name");
    } else if (d.static_hyper_parameters.count(*name)) {
      Add(ep.Child("Name"), Quote(*name) + " is also in " + N("StaticHyperParameters") +
                                "; a hyperparameter is either static or tuned, not both");
    }
  };
  size_t autos = 0;  // each becomes a range or a static hyperparameter: counted in the total
  for (const auto& [r, rp] : scope) {
    tunable += TunableCount(*r);
    autos += r->auto_parameters.size();
    for (size_t i = 0; i < r->integer_parameter_ranges.size(); ++i) {
      visit(r->integer_parameter_ranges[i].name, rp.Child("IntegerParameterRanges").Index(i));
    }
    for (size_t i = 0; i < r->continuous_parameter_ranges.size(); ++i) {
      visit(r->continuous_parameter_ranges[i].name, rp.Child("ContinuousParameterRanges").Index(i));
    }
    for (size_t i = 0; i < r->categorical_parameter_ranges.size(); ++i) {
      visit(r->categorical_parameter_ranges[i].name, rp.Child("CategoricalParameterRanges").Index(i));
    }
    for (size_t i = 0; i < r->auto_parameters.size(); ++i) {
      visit(r->auto_parameters[i].name, rp.Child("AutoParameters").Index(i), /*range=*/false);
    }
  }

  if (multi) {
    bool has_own = d.hyper_parameter_ranges && TunableCount(*d.hyper_parameter_ranges) > 0;
    if (!has_own && !autotune_) {
      Add(p.Child("HyperParameterRanges"), "is required with at least one range when " + N("TrainingJobDefinitions") +
                                               " is used: each definition carries its own ranges");
    }
  } else if (tunable == 0 && !autotune_ && Config(spec) && spec.training_job_definitions.empty()) {
    Add(root_.Child("HyperParameterTuningJobConfig").Child("ParameterRanges"),
        "needs at least one range to tune (" + N("IntegerParameterRanges") + ", " + N("ContinuousParameterRanges") +
            " or " + N("CategoricalParameterRanges") + ", here or in the definition's " + N("HyperParameterRanges") +
            "), unless Autotune is enabled");
  }

  if (tunable > static_cast<size_t>(limits_.max_tunable_hyperparameters)) {
    Add(scope.front().second, "defines " + std::to_string(tunable) + " tunable hyperparameters; at most " +
                                  std::to_string(limits_.max_tunable_hyperparameters) +
                                  " are allowed (SageMaker's limit, a coordinator's --max-tunable-hyperparameters "
                                  "here; fix more of them as static hyperparameters)");
  }
  size_t statics = d.static_hyper_parameters.size();
  if (statics + tunable + autos > kMaxHyperParameters) {
    Add(p.Child("StaticHyperParameters"),
        "has " + std::to_string(statics) + " entries which with " + std::to_string(tunable + autos) +
            " tunable hyperparameters" + (autos ? " (" + N("AutoParameters") + " included)" : std::string()) +
            " makes " + std::to_string(statics + tunable + autos) + "; at most " +
            std::to_string(kMaxHyperParameters) + " hyperparameters in total are allowed");
  }
}

std::optional<int64_t> Validator::Combinations(const TuningJobSpec& spec, bool integers) const {
  static constexpr int64_t kCap = kCombinationsCap;
  // a x b, at most kCap, without overflowing on the way (two ranges of 2^40 values each wrapped
  // to 0 combinations, and a valid job was refused as having too few).
  auto times = [](int64_t a, int64_t b) { return b > 0 && a > kCap / b ? kCap : std::min<int64_t>(a * b, kCap); };
  auto count = [&](const TrainingJobDefinition& d, const FieldPath& dp, bool multi) -> std::optional<int64_t> {
    int64_t product = 1;
    size_t ranges = 0;
    for (const auto& [r, rp] : RangeScope(spec, d, dp, multi)) {
      for (const auto& c : r->categorical_parameter_ranges) {
        if (c.values.empty()) return std::nullopt;
        ++ranges;
        product = times(product, static_cast<int64_t>(c.values.size()));
      }
      if (!integers) continue;
      if (!r->auto_parameters.empty()) return std::nullopt;
      // A continuous range has no limit, unless its bounds are one number (MinValue 0.5 and
      // MaxValue 0.5, or bounds that round to the same double): that one value. Such a job
      // passed as "12 jobs" and ended after one, its search space exhausted.
      for (const auto& n : r->continuous_parameter_ranges) {
        const std::optional<double> lo = n.min_value ? ParseDecimal(*n.min_value) : std::nullopt;
        const std::optional<double> hi = n.max_value ? ParseDecimal(*n.max_value) : std::nullopt;
        if (!lo || !hi || *hi != *lo) return std::nullopt;
        ++ranges;
      }
      for (const auto& n : r->integer_parameter_ranges) {
        const std::optional<int64_t> lo = n.min_value ? ParseInteger(*n.min_value) : std::nullopt;
        const std::optional<int64_t> hi = n.max_value ? ParseInteger(*n.max_value) : std::nullopt;
        if (!lo || !hi || *hi < *lo) return std::nullopt;  // reported by the range checks
        ++ranges;
        const double size = static_cast<double>(*hi) - static_cast<double>(*lo) + 1.0;
        product = size >= static_cast<double>(kCap) ? kCap : times(product, static_cast<int64_t>(size));
      }
    }
    if (ranges == 0) return std::nullopt;
    return product;
  };
  int64_t total = 0;
  bool any = false;
  if (spec.training_job_definition) {
    auto n = count(*spec.training_job_definition, root_.Child("TrainingJobDefinition"), false);
    if (!n) return std::nullopt;
    total += *n;
    any = true;
  } else {
    for (size_t i = 0; i < spec.training_job_definitions.size(); ++i) {
      auto n = count(spec.training_job_definitions[i], root_.Child("TrainingJobDefinitions").Index(i), true);
      if (!n) return std::nullopt;
      total += *n;
      any = true;
    }
  }
  if (!any) {
    const TuningJobConfig* c = Config(spec);
    if (!c || !c->parameter_ranges) return std::nullopt;
    TrainingJobDefinition none;
    auto n = count(none, root_.Child("TrainingJobDefinition"), false);
    if (!n) return std::nullopt;
    total = *n;
  }
  return total;
}

// ---- training job definitions -----------------------------------------------------------------

void Validator::CheckDefinitions(const TuningJobSpec& spec) {
  FieldPath single = root_.Child("TrainingJobDefinition");
  FieldPath list = root_.Child("TrainingJobDefinitions");
  bool has_single = spec.training_job_definition.has_value();
  bool has_list = !spec.training_job_definitions.empty();
  if (has_single && has_list) {
    Add(list, "cannot be combined with " + N("TrainingJobDefinition") + ": set exactly one of them");
  } else if (!has_single && !has_list) {
    Add(single, "is required: set " + N("TrainingJobDefinition") + " or " + N("TrainingJobDefinitions") +
                    " (1-10 definitions)");
  }
  Count(spec.training_job_definitions.size(), list, 0, kMaxDefinitions, "definitions");

  if (has_single) CheckDefinition(spec, *spec.training_job_definition, single, false);
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < spec.training_job_definitions.size(); ++i) {
    const TrainingJobDefinition& d = spec.training_job_definitions[i];
    FieldPath dp = list.Index(i);
    if (d.definition_name && !d.definition_name->empty()) {
      auto [it, inserted] = names.emplace(*d.definition_name, i);
      if (!inserted) {
        Add(dp.Child("DefinitionName"), "duplicates the name " + Quote(*d.definition_name) + " of " +
                                            list.Index(it->second).str() + "; definition names must be unique");
      }
    } else if (!d.definition_name) {
      Add(dp.Child("DefinitionName"), "is required in every entry of " + N("TrainingJobDefinitions") +
                                          " (1-64 characters: letters, digits and hyphens)");
    }
    CheckDefinition(spec, d, dp, true);
  }

  const TuningJobConfig* c = Config(spec);
  if (has_list && !has_single && c && c->parameter_ranges && TunableCount(*c->parameter_ranges) > 0) {
    Add(root_.Child("HyperParameterTuningJobConfig").Child("ParameterRanges"),
        "must be empty when " + N("TrainingJobDefinitions") + " is used: put the ranges in each definition's " +
            N("HyperParameterRanges"));
  }

  // Grid: MaxNumberOfTrainingJobs, when given, equals the number of combinations.
  if (c && Mode(c->strategy, "Grid")) {
    std::optional<int64_t> combos = GridCombinations(spec);
    FieldPath np =
        root_.Child("HyperParameterTuningJobConfig").Child("ResourceLimits").Child("MaxNumberOfTrainingJobs");
    // (Not with a range Grid refuses: the count would leave it out; an SDK pass read "2" for 4.)
    if (combos && c->resource_limits && !grid_range_refused_) {
      const auto& n = c->resource_limits->max_number_of_training_jobs;
      if (n && *n >= 1 && *n != *combos) {
        Add(np, "must equal the number of Grid combinations, " + CombinationsText(*combos) + ", or be left out; got " +
                    std::to_string(*n));
      } else if (!n && *combos > limits_.max_training_jobs_bayesian) {
        AddQuota(root_.Child("HyperParameterTuningJobConfig").Child("ResourceLimits"),
                 "the Grid strategy would run " + CombinationsText(*combos) + " combinations; at most " +
                     std::to_string(limits_.max_training_jobs_bayesian) +
                     " training jobs are allowed (a quota, an option here: raise it with --max-training-jobs)");
      }
    }
  }
  // Random and Bayesian: as many distinct configurations as training jobs asked for, when the
  // ranges are all integer and categorical (SageMaker: "You don't have enough combinations of
  // hyperparameter ranges"). Here such a job ran out of configurations and ended Completed
  // early, saying nothing.
  // Hyperband too: it proposes from the same space, and ended as early.
  if (c && (Mode(c->strategy, "Random") || Mode(c->strategy, "Bayesian") || Mode(c->strategy, "Hyperband")) &&
      c->resource_limits && c->resource_limits->max_number_of_training_jobs) {
    const int64_t n = *c->resource_limits->max_number_of_training_jobs;
    std::optional<int64_t> combos = Combinations(spec, true);
    if (combos && n > *combos) {
      Add(root_.Child("HyperParameterTuningJobConfig").Child("ResourceLimits").Child("MaxNumberOfTrainingJobs"),
          "you don't have enough combinations of hyperparameter ranges: the integer and categorical ranges (and "
          "any continuous range whose MinValue equals its MaxValue) give " +
              std::to_string(*combos) + (*combos == 1 ? " combination" : " combinations") + ", fewer than the " +
              std::to_string(n) +
              " training jobs asked for; add values or ranges (a continuous range from one value to a greater one "
              "has no limit), or ask for at most " + std::to_string(*combos));
    }
  }
}

// sagemaker_distribution_instance_groups (the SDK's distribution instance_groups, a JSON list
// of group names): distributed training targets one instance group, and it must be one of
// ResourceConfig's. Unchecked, a second group was ignored and an unknown one made the first host
// the launcher's master, silently.
void Validator::CheckDistributionGroups(const TrainingJobDefinition& d, const FieldPath& sp) {
  const auto it = d.static_hyper_parameters.find("sagemaker_distribution_instance_groups");
  if (it == d.static_hyper_parameters.end()) return;
  const FieldPath kp = sp.Key(it->first);
  // As the training toolkit decodes a hyperparameter: JSON when it parses, else the text itself.
  nlohmann::json v = nlohmann::json::parse(it->second, nullptr, false);
  if (v.is_discarded()) v = it->second;
  if (!v.is_array()) v = nlohmann::json::array({v});
  std::vector<std::string> named;
  for (const auto& g : v) {
    if (!g.is_string()) {
      Add(kp, "must name instance groups (a JSON list of names, e.g. [\"gpu\"]); got " + Quote(it->second));
      return;
    }
    named.push_back(g.get<std::string>());
  }
  if (named.size() != 1) {
    std::vector<std::string> quoted;
    for (const auto& g : named) quoted.push_back(Quote(g));
    Add(kp, "names " + std::to_string(named.size()) + " instance groups (" + Join(quoted) +
                "); distributed training targets one instance group");
    return;
  }
  const std::vector<InstanceGroup> none;
  const auto& groups = d.resource_config ? d.resource_config->instance_groups : none;
  if (groups.empty()) {
    Add(kp, "needs " + N("ResourceConfig") + "." + N("InstanceGroups") +
                ": distributed training can target an instance group only when the resource config defines them");
    return;
  }
  InstanceGroupDefined(groups, named[0], kp);
}

// `name` is one of `groups` (ResourceConfig.InstanceGroups); else an error at `at` listing them.
void Validator::InstanceGroupDefined(const std::vector<InstanceGroup>& groups, const std::string& name,
                                     const FieldPath& at) {
  std::vector<std::string> known;
  for (const auto& g : groups) {
    if (g.instance_group_name == name) return;
    if (g.instance_group_name) known.push_back(Quote(*g.instance_group_name));
  }
  Add(at, Quote(name) + " is not an instance group of " + N("ResourceConfig") + " (groups: " + Join(known) + ")");
}

void Validator::CheckDefinition(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p,
                                bool multi) {
  if (d.definition_name) {
    FieldPath np = p.Child("DefinitionName");
    Length(*d.definition_name, np, 1, kDefinitionNameMax);
    if (!d.definition_name->empty() && !IsHyphenatedName(*d.definition_name)) {
      Add(np,
          "must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,63} (letters, digits and hyphens, starting and ending with "
          "a letter or digit); got " +
              Quote(*d.definition_name));
    }
  }
  if (d.tuning_objective) CheckObjective(*d.tuning_objective, p.Child("TuningObjective"));

  if (d.hyper_parameter_ranges) {
    FieldPath rp = p.Child("HyperParameterRanges");
    CheckRanges(*d.hyper_parameter_ranges, rp);
    if (Strategy(spec) == "Grid") GridRangesOnly(*d.hyper_parameter_ranges, rp);
  }
  CheckHyperParameterNames(spec, d, p, multi);

  FieldPath sp = p.Child("StaticHyperParameters");
  if (auto it = d.static_hyper_parameters.find(kObjectiveHyperParameter); it != d.static_hyper_parameters.end()) {
    // Some tools write it out themselves; only a different value would be silently replaced.
    const std::string metric = ObjectiveMetricOf(spec, d);
    if (!metric.empty() && it->second != metric) {
      Add(sp.Key(it->first), "is set by the tuning job to the objective metric's name " + Quote(metric) + ", not " +
                                 Quote(it->second) + "; leave it out");
    }
  }
  for (const auto& [key, value] : d.static_hyper_parameters) {
    if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
      // hyperparameters.json and the SM_HP_* variables cannot carry it: every training job would fail.
      Add(sp.Key(key), "must not contain a NUL character (\\u0000) in its name or value");
      continue;
    }
    if (Utf8Length(key) > kStaticKeyMax) {
      Add(sp.Key(key), "has a name of " + std::to_string(Utf8Length(key)) + " characters; at most " +
                           std::to_string(kStaticKeyMax) + " are allowed");
    }
    if (Utf8Length(value) > kStaticValueMax) {
      Add(sp.Key(key), "must be at most " + std::to_string(kStaticValueMax) + " characters, got " +
                           std::to_string(Utf8Length(value)) + ": " + Quote(value));
    }
  }

  CheckDistributionGroups(d, sp);

  FieldPath ap = p.Child("AlgorithmSpecification");
  if (Required(d.algorithm_specification, ap)) CheckAlgorithm(*d.algorithm_specification, ap);
  CheckObjectiveMetric(spec, d, p);

  if (RequiredString(d.role_arn, p.Child("RoleArn"), kRoleArnMin, kRoleArnMax)) {
    static const RE2 kRoleArn(R"(arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)");
    Pattern(d.role_arn, p.Child("RoleArn"), kRoleArn, "arn:aws:iam::ACCOUNT:role/NAME",
            "an IAM role ARN: a 12-digit account and a role name; hpo does not use it, SageMaker does");
  }

  CheckChannels(d, p);

  if (d.vpc_config) {
    FieldPath vp = p.Child("VpcConfig");
    Count(d.vpc_config->security_group_ids.size(), vp.Child("SecurityGroupIds"), 1, kMaxSecurityGroups,
          "security group IDs");
    Count(d.vpc_config->subnets.size(), vp.Child("Subnets"), 1, kMaxSubnets, "subnets");
    static const RE2 kVpcId("[-0-9a-zA-Z]+");
    for (const auto& [list, name] : {std::pair{&d.vpc_config->security_group_ids, "SecurityGroupIds"},
                                     std::pair{&d.vpc_config->subnets, "Subnets"}}) {
      for (size_t i = 0; i < list->size(); ++i) {
        FieldPath ip = vp.Child(name).Index(i);
        if (Length((*list)[i], ip, 1, kVpcIdMax)) {
          Pattern((*list)[i], ip, kVpcId, "[-0-9a-zA-Z]+",
                  std::string("letters, digits and hyphens, e.g. ") +
                      (std::string_view(name) == "Subnets" ? "subnet-0123abcd" : "sg-0123abcd"));
        }
      }
    }
  }

  FieldPath op = p.Child("OutputDataConfig");
  if (Required(d.output_data_config, op)) {
    const OutputDataConfig& o = *d.output_data_config;
    FieldPath up = op.Child("S3OutputPath");
    if (!o.s3_output_path) {
      Add(up, std::string("is required: ") + kStorageUriForms);
    } else if (Length(*o.s3_output_path, up, 1, kS3UriMax)) {
      if (std::string why = StorageUriProblem(*o.s3_output_path); !why.empty()) Add(up, why);
    }
    KmsKey(o.kms_key_id, op.Child("KmsKeyId"));
    Enum(o.compression_type, op.Child("CompressionType"), {"GZIP", "NONE"}, false);
  }

  FieldPath rp = p.Child("ResourceConfig");
  FieldPath hp = p.Child("HyperParameterTuningResourceConfig");
  if (d.resource_config && d.hyper_parameter_tuning_resource_config) {
    Add(hp, "set either " + N("ResourceConfig") + " or " + N("HyperParameterTuningResourceConfig") + ", not both");
  } else if (d.hyper_parameter_tuning_resource_config) {
    CheckTuningResourceConfig(*d.hyper_parameter_tuning_resource_config, hp);
  } else if (!d.resource_config) {
    Add(rp, "is required (or " + N("HyperParameterTuningResourceConfig") + " with instance types to choose from)");
  } else {
    CheckResourceConfig(*d.resource_config, rp);
  }
  if (d.enable_network_isolation.value_or(false)) {
    // SageMaker isolates such a job from everything but its own hosts; hpo isolates each host's
    // program in a network of its own (loopback only), so the hosts of a multi-host job could not
    // reach each other and it hung until its rendezvous timed out. Refused here, clearly.
    int64_t hosts = 1;
    if (d.resource_config) {
      hosts = d.resource_config->instance_count.value_or(1);
      if (!d.resource_config->instance_groups.empty()) {
        hosts = 0;
        for (const auto& g : d.resource_config->instance_groups) hosts += g.instance_count.value_or(1);
      }
    } else if (d.hyper_parameter_tuning_resource_config) {
      const auto& h = *d.hyper_parameter_tuning_resource_config;
      hosts = h.instance_count.value_or(1);
      for (const auto& c : h.instance_configs) hosts = std::max<int64_t>(hosts, c.instance_count.value_or(1));
    }
    if (hosts > 1) {
      Add(p.Child("EnableNetworkIsolation"),
          "with more than one host is not supported by hpo: it isolates each host's program with loopback only, so "
          "the hosts could not reach each other (SageMaker lets them); set it to false, or use one host");
    }
  }

  CheckStopping(d, p);

  if (d.checkpoint_config) {
    FieldPath cp = p.Child("CheckpointConfig");
    const CheckpointConfig& c = *d.checkpoint_config;
    FieldPath up = cp.Child("S3Uri");
    if (!c.s3_uri) {
      Add(up, std::string("is required: ") + kStorageUriForms);
    } else if (Length(*c.s3_uri, up, 1, kCheckpointUriMax)) {
      if (std::string why = StorageUriProblem(*c.s3_uri); !why.empty()) Add(up, why);
    }
    if (c.local_path && c.local_path->size() > kPathMax) {
      Length(*c.local_path, cp.Child("LocalPath"), 1, kPathMax);
    } else if (c.local_path && (c.local_path->empty() || (*c.local_path)[0] != '/')) {
      Add(cp.Child("LocalPath"),
          "must be an absolute path (default /opt/ml/checkpoints/); got " + Quote(*c.local_path));
    } else if (c.local_path) {
      // What the worker refuses at the start of every training job (worker/agent_start.cc):
      // refused here, the job is not created to fail each of them.
      std::string local = *c.local_path;
      while (local.size() > 1 && local.back() == '/') local.pop_back();
      // (And no "//": /opt/ml//model passed the checks below and replaced the model directory, a
      // regression pass found.)
      if (local.find("/../") != std::string::npos || local.find("/./") != std::string::npos ||
          local.ends_with("/..") || local.ends_with("/.") || local.find("//") != std::string::npos) {
        Add(cp.Child("LocalPath"), "must be a clean absolute path, without . or .. components or //; got " +
                                       Quote(*c.local_path));
      } else if (local == "/opt/ml" || local == "/opt" || local == "/") {
        Add(cp.Child("LocalPath"), "must not be " + local + (local == "/opt/ml" ? " itself" : "") +
                                       " (/opt/ml's input, model and output directories are the container "
                                       "contract's); use a directory under /opt/ml, such as /opt/ml/checkpoints");
      } else {
        // A checkpoint directory is a directory of its own: at /opt/ml/model the program's model
        // went to the checkpoints only, and the training job Completed with an empty
        // model.tar.gz (a spot pass).
        for (const char* contract : {"/opt/ml/model", "/opt/ml/input", "/opt/ml/output", "/opt/ml/code"}) {
          if (local == contract || local.starts_with(std::string(contract) + "/")) {
            Add(cp.Child("LocalPath"), "must not be in " + std::string(contract) +
                                           " (the container contract's; hpo keeps checkpoints in a directory of "
                                           "their own, and the files there would not be where the contract says): "
                                           "use another directory, such as /opt/ml/checkpoints; got " +
                                           Quote(*c.local_path));
            break;
          }
        }
      }
    }
  }

  if (d.retry_strategy) {
    IntRange(d.retry_strategy->maximum_retry_attempts, p.Child("RetryStrategy").Child("MaximumRetryAttempts"), 1,
             kRetryMax, true);
  }

  FieldPath ep = p.Child("Environment");
  Count(d.environment.size(), ep, 0, kMaxEnvironment, "entries");
  for (const auto& [key, value] : d.environment) {
    if (key.size() > kEnvKeyMax || !IsEnvironmentKey(key)) {
      Add(ep.Key(key), "is not a valid variable name: it must match [a-zA-Z_][a-zA-Z0-9_]* and be at most " +
                           std::to_string(kEnvKeyMax) + " characters; got " + Quote(key));
    }
    if (value.find('\0') != std::string::npos) {
      Add(ep.Key(key), "must not contain a NUL character (\\u0000): an environment variable cannot hold one");
    } else if (Utf8Length(value) > kEnvValueMax) {
      Add(ep.Key(key), "must be at most " + std::to_string(kEnvValueMax) + " characters, got " +
                           std::to_string(Utf8Length(value)) + ": " + Quote(value));
    }
  }
}

void Validator::CheckObjectiveMetric(const TuningJobSpec& spec, const TrainingJobDefinition& d, const FieldPath& p) {
  const Objective* objective = DefinitionObjective(spec, d);
  const FieldPath op = d.tuning_objective
                           ? p.Child("TuningObjective")
                           : root_.Child("HyperParameterTuningJobConfig").Child("HyperParameterTuningJobObjective");
  if (!objective || !objective->metric_name || objective->metric_name->empty() ||
      Utf8Length(*objective->metric_name) > kMetricNameMax || !d.algorithm_specification) {
    return;
  }
  const AlgorithmSpecification& a = *d.algorithm_specification;
  FieldPath mp = p.Child("AlgorithmSpecification").Child("MetricDefinitions");
  const std::string& metric = *objective->metric_name;
  if (a.metric_definitions.empty()) {
    // Which program it is, and so which metrics it brings, is unknown while the image or algorithm
    // is in error (CheckAlgorithm says so): a second error here named the objective instead.
    if (a.training_image.has_value() == a.algorithm_name.has_value() ||
        (a.training_image && (a.training_image->empty() || Utf8Length(*a.training_image) > kTrainingImageMax))) {
      return;
    }
    // A built-in algorithm's image brings its metrics (proto/builtin_algorithms.h).
    const std::string image = a.training_image.value_or("");
    if (!BuiltInMetricDefinitions(image, metric).empty()) return;
    if (a.algorithm_name) {
      // SageMaker reads an algorithm resource's own metric definitions; hpo has no algorithm
      // resources to read them from (such a job used to validate and then never start).
      Add(mp, "is required with " + N("AlgorithmName") + " here: hpo cannot read the metric definitions of the "
                  "algorithm resource " + Quote(*a.algorithm_name) + "; add one named " + Quote(metric) +
                  " with a regex whose group 1 captures its value in the program's log");
      return;
    }
    if (const auto builtin = BuiltInAlgorithmFor(image)) {
      const std::string of = "SageMaker's built-in " + builtin->title;
      const auto& unread = builtin->metrics_without_regex;
      if (std::find(unread.begin(), unread.end(), metric) != unread.end()) {
        Add(mp, "is required for " + Quote(metric) + " of " + of + " here: SageMaker takes the spec without "
                    "(it reads its algorithms' logs itself), but hpo knows the metric and not how the algorithm "
                    "logs it; add a definition named " + Quote(metric) + " with a regex whose group 1 captures its "
                    "value in the algorithm's log (SageMaker refuses metric definitions for its built-in "
                    "algorithms: leave it out of the copy you send there)");
      } else if (builtin->metrics.empty()) {
        Add(op.Child("MetricName"), Quote(metric) + " is not a metric of " + of + ", which has none to tune; give " +
                                        mp.str() + " for a metric of its log");
      } else {
        std::vector<std::string> known;
        for (const auto& m : builtin->metrics) known.push_back(builtin->key == "xgboost" ? m : Quote(m));
        Add(op.Child("MetricName"), Quote(metric) + " is not a metric of " + of + " (" + Join(known) + "); give " +
                                        mp.str() + " for another");
      }
      return;
    }
  }
  std::vector<std::string> names;
  for (const auto& m : a.metric_definitions) {
    if (!m.name) continue;
    if (*m.name == metric) return;
    names.push_back(Quote(*m.name));
  }
  Add(op.Child("MetricName"),
      Quote(metric) + " is not defined in " + mp.str() +
          (names.empty() ? " (none defined)" : " (defined: " + Join(names) + ")") +
          "; add a metric definition with this name and a regex whose group 1 captures the value" +
          (names.empty() ? " (SageMaker's built-in algorithms bring theirs when the image is theirs: see "
                           "\"Migrating from SageMaker\" in the README)"
                         : ""));
}

void Validator::CheckAlgorithm(const AlgorithmSpecification& a, const FieldPath& p) {
  if (a.training_image && a.algorithm_name) {
    Add(p, "set exactly one of " + N("TrainingImage") + " and " + N("AlgorithmName") + ", not both");
  } else if (!a.training_image && !a.algorithm_name) {
    Add(p, "needs " + N("TrainingImage") + " (a container image) or " + N("AlgorithmName"));
  }
  if (a.training_image) Length(*a.training_image, p.Child("TrainingImage"), 1, kTrainingImageMax);
  if (a.algorithm_name && a.algorithm_name->empty()) {
    Add(p.Child("AlgorithmName"), "must not be empty");
  } else if (a.algorithm_name && Length(*a.algorithm_name, p.Child("AlgorithmName"), 1, kAlgorithmNameMax)) {
    static const RE2 kAlgorithm(
        R"((arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:[a-z\-]*/)?[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})");
    Pattern(a.algorithm_name, p.Child("AlgorithmName"), kAlgorithm, "[ARN/]NAME",
            "a SageMaker algorithm's name or ARN: up to 63 letters, digits and hyphens, not starting or ending with "
            "a hyphen");
  }
  Enum(a.training_input_mode, p.Child("TrainingInputMode"), {"Pipe", "File", "FastFile"}, true);

  FieldPath mp = p.Child("MetricDefinitions");
  if (static_cast<int64_t>(a.metric_definitions.size()) > limits_.max_metric_definitions) {
    Add(mp, "must have at most " + std::to_string(limits_.max_metric_definitions) + " metric definitions, got " +
                std::to_string(a.metric_definitions.size()) +
                " (SageMaker's limit, a coordinator's --max-metric-definitions here)");
  }
  std::map<std::string, size_t> names;
  for (size_t i = 0; i < a.metric_definitions.size(); ++i) {
    const MetricDefinition& m = a.metric_definitions[i];
    FieldPath ep = mp.Index(i);
    if (RequiredString(m.name, ep.Child("Name"), 1, kMetricNameMax)) {
      auto [it, inserted] = names.emplace(*m.name, i);
      if (!inserted) {
        Add(ep.Child("Name"), "duplicates the metric " + Quote(*m.name) + " of " + mp.Index(it->second).str() +
                                  "; metric names must be unique");
      }
    }
    FieldPath rp = ep.Child("Regex");
    if (RequiredString(m.regex, rp, 1, kMetricRegexMax)) {
      RE2::Options options;
      options.set_log_errors(false);
      RE2 re(*m.regex, options);
      if (!re.ok()) {
        // SageMaker's engine takes lookarounds and backreferences; RE2 has neither.
        const bool perl_only = re.error_code() == RE2::ErrorBadPerlOp || re.error_code() == RE2::ErrorBadEscape;
        Add(rp, "is not a valid regular expression (RE2 syntax): " + re.error() + "; got " + Quote(*m.regex) +
                    (perl_only ? ". hpo matches with RE2, which has no lookahead, lookbehind or backreferences: "
                                 "write the text around the value as plain pattern, e.g. \"auc: ([0-9.]+)\" for "
                                 "\"(?<=auc: )([0-9.]+)\""
                               : ""));
      } else if (re.NumberOfCapturingGroups() < 1) {
        Add(rp,
            "needs a capture group: group 1 holds the metric value, e.g. \"loss: ([0-9.]+)\"; got " + Quote(*m.regex));
      }
    }
  }
}

// ---- channels ---------------------------------------------------------------------------------

void Validator::CheckChannels(const TrainingJobDefinition& d, const FieldPath& p) {
  FieldPath cp = p.Child("InputDataConfig");
  Count(d.input_data_config.size(), cp, 0, kMaxChannels, "channels");
  std::map<std::string, size_t> names;
  std::vector<std::string> with_groups, without_groups;
  for (size_t i = 0; i < d.input_data_config.size(); ++i) {
    const Channel& c = d.input_data_config[i];
    FieldPath ep = cp.Index(i);
    if (c.channel_name && !c.channel_name->empty()) {
      auto [it, inserted] = names.emplace(*c.channel_name, i);
      if (!inserted) {
        Add(ep.Child("ChannelName"), "duplicates the channel " + Quote(*c.channel_name) + " of " +
                                         cp.Index(it->second).str() + "; channel names must be unique");
      }
    }
    CheckChannel(d, c, ep);
    std::string label = c.channel_name.value_or("#" + std::to_string(i));
    bool grouped =
        c.data_source && c.data_source->s3_data_source && !c.data_source->s3_data_source->instance_group_names.empty();
    (grouped ? with_groups : without_groups).push_back(label);
  }
  if (!with_groups.empty() && !without_groups.empty()) {
    Add(cp, "Some channels have assigned instance groups: [" + Join(with_groups) + "] while others not: [" +
                Join(without_groups) + "]; give every channel " + N("InstanceGroupNames") + " or none");
  }
}

void Validator::CheckChannel(const TrainingJobDefinition& d, const Channel& c, const FieldPath& p) {
  FieldPath np = p.Child("ChannelName");
  if (RequiredString(c.channel_name, np, 1, kChannelNameMax) && !IsChannelName(*c.channel_name)) {
    Add(np, "must match [A-Za-z0-9\\.\\-_]+ (letters, digits, '.', '-' and '_'); got " + Quote(*c.channel_name));
  } else if (c.channel_name && (*c.channel_name == "." || *c.channel_name == "..")) {
    // SageMaker's pattern allows them, but the channel is the directory input/data/<name>.
    Add(np, "must not be " + Quote(*c.channel_name) + ": a channel is the directory /opt/ml/input/data/" +
                *c.channel_name + ", which this name cannot be");
  }
  FieldPath dp = p.Child("DataSource");
  if (Required(c.data_source, dp, "with one of " + N("S3DataSource") + " or " + N("FileSystemDataSource"))) {
    const DataSource& ds = *c.data_source;
    if (ds.s3_data_source && ds.file_system_data_source) {
      Add(dp, "set exactly one of " + N("S3DataSource") + " and " + N("FileSystemDataSource") + ", not both");
    } else if (!ds.s3_data_source && !ds.file_system_data_source) {
      Add(dp, "needs one of " + N("S3DataSource") + " or " + N("FileSystemDataSource"));
    }
    if (ds.s3_data_source) {
      const S3DataSource& s = *ds.s3_data_source;
      FieldPath sp = dp.Child("S3DataSource");
      if (s.s3_data_type && *s.s3_data_type == "Converse") {
        Add(sp.Child("S3DataType"), "Converse is a SageMaker value that hpo does not support (conversation data for "
                                    "SageMaker's model customization); use S3Prefix, ManifestFile or "
                                    "AugmentedManifestFile");
      } else {
        Enum(s.s3_data_type, sp.Child("S3DataType"), {"ManifestFile", "S3Prefix", "AugmentedManifestFile"}, true);
      }
      FieldPath up = sp.Child("S3Uri");
      if (!s.s3_uri) {
        Add(up, std::string("is required: ") + kStorageUriForms);
      } else if (Length(*s.s3_uri, up, 1, kS3UriMax)) {
        if (std::string why = StorageUriProblem(*s.s3_uri); !why.empty()) Add(up, why);
      }
      Enum(s.s3_data_distribution_type, sp.Child("S3DataDistributionType"), {"FullyReplicated", "ShardedByS3Key"},
           false);
      FieldPath anp = sp.Child("AttributeNames");
      Count(s.attribute_names.size(), anp, 0, kMaxAttributeNames, "attribute names");
      for (size_t i = 0; i < s.attribute_names.size(); ++i) Length(s.attribute_names[i], anp.Index(i), 1, kAttributeNameMax);
      if (!s.attribute_names.empty() && s.s3_data_type && *s.s3_data_type != "AugmentedManifestFile") {
        Add(anp, "is only allowed with " + N("S3DataType") + " AugmentedManifestFile; got " + Quote(*s.s3_data_type));
      }
      FieldPath gp = sp.Child("InstanceGroupNames");
      Count(s.instance_group_names.size(), gp, 0, kMaxChannelInstanceGroups, "instance group names");
      if (!s.instance_group_names.empty() && (d.resource_config || d.hyper_parameter_tuning_resource_config)) {
        static const std::vector<InstanceGroup> kNone;
        const auto& groups = d.resource_config ? d.resource_config->instance_groups : kNone;
        if (groups.empty()) {
          Add(gp, "needs " + N("ResourceConfig") + "." + N("InstanceGroups") +
                      ": a channel can name instance groups only when the resource config defines them");
        } else {
          for (size_t j = 0; j < s.instance_group_names.size(); ++j) {
            InstanceGroupDefined(groups, s.instance_group_names[j], gp.Index(j));
          }
        }
      }
    }
    if (ds.file_system_data_source) {
      const FileSystemDataSource& f = *ds.file_system_data_source;
      FieldPath fp = dp.Child("FileSystemDataSource");
      if (!f.file_system_id || f.file_system_id->empty()) {
        Add(fp.Child("FileSystemId"), "is required");
      } else if (Length(*f.file_system_id, fp.Child("FileSystemId"), kFileSystemIdMin, kFileSystemIdMax)) {
        static const RE2 kFileSystemId("fs-[0-9a-f]{8,}");
        Pattern(f.file_system_id, fp.Child("FileSystemId"), kFileSystemId, "fs-[0-9a-f]{8,}",
                "an EFS or FSx file system ID, e.g. fs-0123456789abcdef0");
      }
      Enum(f.file_system_access_mode, fp.Child("FileSystemAccessMode"), {"rw", "ro"}, true);
      Enum(f.file_system_type, fp.Child("FileSystemType"), {"EFS", "FSxLustre"}, true);
      if (!f.directory_path || f.directory_path->empty()) {
        Add(fp.Child("DirectoryPath"), "is required");
      } else {
        Length(*f.directory_path, fp.Child("DirectoryPath"), 1, kPathMax);
      }
    }
  }

  if (c.content_type) Length(*c.content_type, p.Child("ContentType"), 0, kContentTypeMax);
  FieldPath mp = p.Child("InputMode");
  Enum(c.input_mode, mp, {"Pipe", "File", "FastFile"}, false);
  FieldPath zp = p.Child("CompressionType");
  Enum(c.compression_type, zp, {"None", "Gzip"}, false);
  if (Mode(c.compression_type, "Gzip")) {
    std::optional<std::string> mode = c.input_mode;
    if (!mode && d.algorithm_specification) mode = d.algorithm_specification->training_input_mode;
    if (mode && *mode != "Pipe") {
      Add(zp, "Gzip is only supported in Pipe input mode; this channel's input mode is " + Quote(*mode) +
                  " (use None, or set " + N("InputMode") + " Pipe)");
    }
  }
  // SageMaker: "AugmentedManifestFile can only be used if the Channel's input mode is Pipe". A
  // File-mode one passed here and failed on SageMaker.
  if (c.data_source && c.data_source->s3_data_source && c.data_source->s3_data_source->s3_data_type &&
      *c.data_source->s3_data_source->s3_data_type == "AugmentedManifestFile") {
    std::optional<std::string> mode = c.input_mode;
    if (!mode && d.algorithm_specification) mode = d.algorithm_specification->training_input_mode;
    if (mode && *mode != "Pipe") {
      Add(p.Child("DataSource").Child("S3DataSource").Child("S3DataType"),
          "AugmentedManifestFile can only be used in Pipe input mode; this channel's input mode is " + Quote(*mode) +
              " (set " + N("InputMode") + " Pipe, or use ManifestFile)");
    }
    // What the worker refuses when it stages the channel: accepted here, every training job
    // failed on it, and the tuning job with them.
    if (c.data_source->s3_data_source->attribute_names.empty()) {
      Add(p.Child("DataSource").Child("S3DataSource").Child("AttributeNames"),
          "is required with " + N("S3DataType") +
              " AugmentedManifestFile: the attributes of each manifest line to feed, e.g. [\"source-ref\", "
              "\"class\"]");
    }
    if (Mode(c.compression_type, "Gzip")) {
      Add(zp, "Gzip cannot be used with " + N("S3DataType") +
                  " AugmentedManifestFile (its lines are fed as records, not read as compressed objects); use None");
    }
  }
  Enum(c.record_wrapper_type, p.Child("RecordWrapperType"), {"None", "RecordIO"}, false);
  if (c.shuffle_config && !c.shuffle_config->seed) {
    Add(p.Child("ShuffleConfig").Child("Seed"), "is required when " + N("ShuffleConfig") + " is given (an integer)");
  }
}

// ---- resources and stopping -------------------------------------------------------------------

void Validator::CheckResourceConfig(const ResourceConfig& r, const FieldPath& p) {
  FieldPath gp = p.Child("InstanceGroups");
  if (r.instance_groups.empty()) {
    if (!r.instance_type || r.instance_type->empty()) {
      Add(p.Child("InstanceType"), "is required (or " + N("InstanceGroups") + ")");
    }
    InstanceType(r.instance_type, p.Child("InstanceType"));
    IntRange(r.instance_count, p.Child("InstanceCount"), 1, -1, true);
  } else {
    if (r.instance_type || r.instance_count) {
      Add(p, "set either " + N("InstanceType") + " and " + N("InstanceCount") + " or " + N("InstanceGroups") +
                 ", not both");
    }
    Count(r.instance_groups.size(), gp, 1, kMaxInstanceGroups, "instance groups");
    std::map<std::string, size_t> names;
    for (size_t i = 0; i < r.instance_groups.size(); ++i) {
      const InstanceGroup& g = r.instance_groups[i];
      FieldPath ep = gp.Index(i);
      if (!g.instance_type || g.instance_type->empty()) Add(ep.Child("InstanceType"), "is required");
      InstanceType(g.instance_type, ep.Child("InstanceType"));
      IntRange(g.instance_count, ep.Child("InstanceCount"), 1, -1, true);
      FieldPath np = ep.Child("InstanceGroupName");
      if (RequiredString(g.instance_group_name, np, 1, kInstanceGroupNameMax)) {
        auto [it, inserted] = names.emplace(*g.instance_group_name, i);
        if (!inserted) {
          Add(np, "duplicates the name " + Quote(*g.instance_group_name) + " of " + gp.Index(it->second).str() +
                      "; instance group names must be unique");
        }
      }
    }
  }
  // 0 is SageMaker's too (OptionalVolumeSizeInGB): instance storage only, no volume asked for.
  IntRange(r.volume_size_in_gb, p.Child("VolumeSizeInGB"), 0, -1, false);
  IntRange(r.keep_alive_period_in_seconds, p.Child("KeepAlivePeriodInSeconds"), 0, kKeepAliveMax, false);
  KmsKey(r.volume_kms_key_id, p.Child("VolumeKmsKeyId"));
  if (r.instance_groups.empty()) {
    HostLimit(r.instance_count.value_or(1), p.Child("InstanceCount"));
  } else {
    int64_t hosts = 0;
    for (const auto& g : r.instance_groups) hosts += std::clamp<int64_t>(g.instance_count.value_or(1), 0, kIntMax);
    HostLimit(hosts, gp);
  }
}

void Validator::InstanceType(const std::optional<std::string>& type, const FieldPath& p) {
  if (!limits_.known_instance_types || !type || type->empty()) return;
  if (IsSageMakerTrainingInstanceType(*type) || limits_.known_instance_types->count(*type)) return;
  std::string closest;
  size_t best = 4;  // at most three edits away ("m5.large" for "ml.m5.large")
  for (const char* t : kTrainingInstanceTypes) {
    const size_t d = EditDistance(*type, t);
    if (d < best) best = d, closest = t;
  }
  Add(p, Quote(*type) + " is not a SageMaker training instance type" +
             (closest.empty() ? std::string() : " (did you mean " + Quote(closest) + "?)") +
             "; a type of your own must be named where it is served (--instance-catalog FILE, or --instance-type "
             "TYPE)");
}

void Validator::HostLimit(int64_t hosts, const FieldPath& p) {
  if (hosts > kMaxHostsPerTrainingJob) {
    Add(p, "asks for " + std::to_string(hosts) + " hosts per training job; hpo runs at most " +
               std::to_string(kMaxHostsPerTrainingJob) + " (one worker each)");
  }
}

void Validator::CheckTuningResourceConfig(const HyperParameterTuningResourceConfig& r, const FieldPath& p) {
  Enum(r.allocation_strategy, p.Child("AllocationStrategy"), {"Prioritized"}, false);
  KmsKey(r.volume_kms_key_id, p.Child("VolumeKmsKeyId"));
  FieldPath cp = p.Child("InstanceConfigs");
  if (r.instance_configs.empty()) {
    if (!r.instance_type || r.instance_type->empty()) {
      Add(p.Child("InstanceType"), "is required (or " + N("InstanceConfigs") + ": 1-6 instance types in order of preference)");
    }
    InstanceType(r.instance_type, p.Child("InstanceType"));
    IntRange(r.instance_count, p.Child("InstanceCount"), 1, -1, true);
    IntRange(r.volume_size_in_gb, p.Child("VolumeSizeInGB"), 0, -1, false);
    HostLimit(r.instance_count.value_or(1), p.Child("InstanceCount"));
    return;
  }
  if (r.instance_type || r.instance_count || r.volume_size_in_gb) {
    Add(p, "set either " + N("InstanceConfigs") + " or " + N("InstanceType") + ", " + N("InstanceCount") + " and " +
               N("VolumeSizeInGB") + ", not both");
  }
  Count(r.instance_configs.size(), cp, 1, kMaxInstanceConfigs, "instance configs");
  for (size_t i = 0; i < r.instance_configs.size(); ++i) {
    const HyperParameterTuningInstanceConfig& c = r.instance_configs[i];
    FieldPath ep = cp.Index(i);
    if (!c.instance_type || c.instance_type->empty()) Add(ep.Child("InstanceType"), "is required");
    InstanceType(c.instance_type, ep.Child("InstanceType"));
    IntRange(c.instance_count, ep.Child("InstanceCount"), 1, -1, true);
    IntRange(c.volume_size_in_gb, ep.Child("VolumeSizeInGB"), 1, -1, true);
    HostLimit(c.instance_count.value_or(1), ep.Child("InstanceCount"));
  }
}

void Validator::CheckStopping(const TrainingJobDefinition& d, const FieldPath& dp) {
  FieldPath p = dp.Child("StoppingCondition");
  if (!Required(d.stopping_condition, p)) return;
  const StoppingCondition& s = *d.stopping_condition;
  IntRange(s.max_runtime_in_seconds, p.Child("MaxRuntimeInSeconds"), 1, -1, false);
  if (s.max_wait_time_in_seconds) {
    FieldPath wp = p.Child("MaxWaitTimeInSeconds");
    const int64_t runtime = s.MaxRuntimeSeconds();
    if (d.enable_managed_spot_training != true) {
      Add(wp, "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true");
    } else if (*s.max_wait_time_in_seconds > kIntMax) {
      IntRange(s.max_wait_time_in_seconds, wp, 1, -1, false);
    } else if (*s.max_wait_time_in_seconds < runtime) {
      Add(wp, "must be >= " + N("MaxRuntimeInSeconds") + " (" + std::to_string(runtime) +
                  (s.max_runtime_in_seconds ? "" : ", the default") + "), got " +
                  std::to_string(*s.max_wait_time_in_seconds));
    }
  }
  IntRange(s.max_pending_time_in_seconds, p.Child("MaxPendingTimeInSeconds"), kPendingMin, kPendingMax, false);
}

// ---- warm start and tags ----------------------------------------------------------------------

void Validator::CheckWarmStart(const TuningJobSpec& spec, const FieldPath& p) {
  const WarmStartConfig& w = *spec.warm_start_config;
  if (spec.training_job_definitions.size() > 1) {
    Add(p, "warm start is supported only with a single training job definition; this job has " +
               std::to_string(spec.training_job_definitions.size()) + " " + N("TrainingJobDefinitions"));
  }
  FieldPath pp = p.Child("ParentHyperParameterTuningJobs");
  if (w.parent_hyper_parameter_tuning_jobs.empty()) {
    Add(pp, "is required: 1-5 parent tuning jobs");
  } else {
    Count(w.parent_hyper_parameter_tuning_jobs.size(), pp, 1, kMaxParents, "parent tuning jobs");
  }
  std::map<std::string, size_t> seen;  // lower-cased: tuning job names are not case sensitive
  for (size_t i = 0; i < w.parent_hyper_parameter_tuning_jobs.size(); ++i) {
    const auto& name = w.parent_hyper_parameter_tuning_jobs[i].hyper_parameter_tuning_job_name;
    FieldPath np = pp.Index(i).Child("HyperParameterTuningJobName");
    CheckJobName(name, np, true);
    if (!name || name->empty()) continue;
    std::string key = ToLower(*name);
    if (spec.hyper_parameter_tuning_job_name && ToLower(*spec.hyper_parameter_tuning_job_name) == key) {
      Add(np, Quote(*name) + " is this tuning job itself; a job cannot warm start from itself");
    }
    auto [it, inserted] = seen.emplace(key, i);
    if (!inserted) {
      // Named as the earlier entry spells it (names are case-insensitive: "P1" repeats "p1").
      const auto& first = w.parent_hyper_parameter_tuning_jobs[it->second].hyper_parameter_tuning_job_name;
      Add(np, "duplicates the parent " + Quote(first.value_or(*name)) + " of " + pp.Index(it->second).str() +
                  (first && *first != *name ? " (tuning job names are case-insensitive)" : "") +
                  "; parent tuning jobs must be unique");
    }
  }
  Enum(w.warm_start_type, p.Child("WarmStartType"), {"IdenticalDataAndAlgorithm", "TransferLearning"}, true);
}

void Validator::CheckTags(const std::vector<Tag>& tags, const FieldPath& p) {
  Count(tags.size(), p, 0, kMaxTags, "tags");
  std::map<std::string, size_t> keys;
  for (size_t i = 0; i < tags.size(); ++i) {
    FieldPath ep = p.Index(i);
    if (RequiredString(tags[i].key, ep.Child("Key"), 1, kTagKeyMax)) {
      if (AsciiLower(tags[i].key->substr(0, 4)) == "aws:") {
        Add(ep.Child("Key"), "must not begin with aws: (AWS reserves the prefix for its own tags); got " +
                                 Quote(*tags[i].key));
      }
      auto [it, inserted] = keys.emplace(*tags[i].key, i);
      if (!inserted) {
        Add(ep.Child("Key"), "duplicates the key " + Quote(*tags[i].key) + " of " + p.Index(it->second).str() +
                                 "; tag keys must be unique");
      }
    }
    RequiredString(tags[i].value, ep.Child("Value"), 0, kTagValueMax);  // required, may be empty
    static const RE2 kTagText(R"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)");
    constexpr std::string_view kTagRule = "letters, digits, spaces and _ . : / = + - @";
    Pattern(tags[i].key, ep.Child("Key"), kTagText, "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", kTagRule);
    Pattern(tags[i].value, ep.Child("Value"), kTagText, "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", kTagRule);
  }
}

}  // namespace

FieldErrors Validate(const TuningJobSpec& spec, Spelling spelling, const ValidationLimits& limits) {
  return Validator(spelling, limits).Run(spec);
}

std::vector<std::string> NotEnforced(const TuningJobSpec& spec, Spelling spelling) {
  auto n = [&](std::string_view api) { return spelling == Spelling::kCrd ? CrdName(api) : std::string(api); };
  std::vector<std::string> out;
  const auto defs = spec.Definitions();
  for (const TrainingJobDefinition* d : defs) {
    const std::string of = defs.size() > 1 ? " (definition \"" + d->definition_name.value_or("") + "\")" : "";
    auto say = [&](const std::string& field, const std::string& what) { out.push_back(field + of + ": " + what); };
    if (d->vpc_config) {
      say(n("VpcConfig"), "not enforced here: training jobs run on the workers' own network, not in the subnets "
                          "and security groups given");
    }
    if (d->output_data_config && d->output_data_config->kms_key_id) {
      say(n("OutputDataConfig") + "." + n("KmsKeyId"),
          "not enforced here: the model and output archives are written without SSE-KMS (use a bucket whose "
          "default encryption you set)");
    }
    std::string volume_field;  // the field that names a volume key, if one does
    if (d->resource_config && d->resource_config->volume_kms_key_id) {
      volume_field = n("ResourceConfig") + "." + n("VolumeKmsKeyId");
    } else if (d->hyper_parameter_tuning_resource_config &&
               d->hyper_parameter_tuning_resource_config->volume_kms_key_id) {
      volume_field = n("HyperParameterTuningResourceConfig") + "." + n("VolumeKmsKeyId");
    }
    if (!volume_field.empty()) {
      say(volume_field, "not enforced here: a training job's files are on the worker's own disk, encrypted "
                        "only if that disk is");
    }
    if (d->enable_inter_container_traffic_encryption.value_or(false)) {
      say(n("EnableInterContainerTrafficEncryption"),
          "not enforced here: the hosts of a multi-host training job talk over the network unencrypted");
    }
  }
  return out;
}

std::vector<std::string> BuiltInAlgorithmNotes(const TuningJobSpec& spec, Spelling spelling) {
  auto n = [&](std::string_view api) {
    return spelling == Spelling::kCrd ? CrdName(api) : std::string(api);
  };
  std::vector<std::string> out;
  const auto defs = spec.Definitions();
  const TuningJobConfig* config =
      spec.hyper_parameter_tuning_job_config ? &*spec.hyper_parameter_tuning_job_config : nullptr;
  for (const TrainingJobDefinition* d : defs) {
    if (!d->algorithm_specification) continue;
    const std::string image = d->algorithm_specification->training_image.value_or("");
    const auto algorithm = BuiltInAlgorithmFor(image);
    if (!algorithm) continue;
    const std::string of =
        d->definition_name ? " (definition \"" + *d->definition_name + "\")" : "";
    const std::string builtin = "SageMaker's built-in " + algorithm->title;

    // The objective's direction, for a metric the algorithm's own definitions find.
    const Objective* o = DefinitionObjective(spec, *d);
    if (o && o->type && o->metric_name && d->algorithm_specification->metric_definitions.empty()) {
      const auto documented = BuiltInObjectiveType(image, *o->metric_name);
      if (documented && *documented != *o->type) {
        const std::string field = d->tuning_objective
                                      ? n("TuningObjective") + "." + n("Type") + of
                                      : n("HyperParameterTuningJobObjective") + "." + n("Type") +
                                            (defs.size() > 1 ? of : "");
        out.push_back(field + ": " + *o->type + ", but " + builtin + " documents " +
                      *o->metric_name + " as " + (*documented == "Minimize" ? "lower" : "higher") +
                      " is better: the search will look for the worst models; set it to " +
                      *documented + " unless that is what you want");
      }
    }

    // MetricDefinitions with a built-in algorithm (not a framework image in script mode, whose
    // script logs what it likes): SageMaker refuses them ("You can't override the metric
    // definitions for Amazon SageMaker algorithms"), so such a spec runs here and not there. Where
    // hpo reads the objective from the algorithm's own lines, they can go; where it does not (NTM,
    // ...), hpo needs them (CheckObjectiveMetric says so) and SageMaker's copy must leave them out.
    const bool script_mode = d->static_hyper_parameters.count("sagemaker_program") > 0;
    if (!d->algorithm_specification->metric_definitions.empty() && !script_mode) {
      const bool hpo_reads = o && o->metric_name && !BuiltInMetricDefinitions(image, *o->metric_name).empty();
      out.push_back(n("AlgorithmSpecification") + "." + n("MetricDefinitions") + of + ": SageMaker refuses metric " +
                    "definitions for its built-in algorithms (\"You can't override the metric definitions for " +
                    "Amazon SageMaker algorithms\"): " +
                    (hpo_reads ? "hpo reads " + *o->metric_name + " from " + builtin +
                                     "'s own log lines, so leave them out and this spec runs on both (given, "
                                     "they are used here in place of " + builtin + "'s)"
                               : "hpo needs them here, as it does not know how " + builtin +
                                     " logs its metrics; leave them out of the copy you send to SageMaker"));
    }

    // Tuned hyperparameters the algorithm does not list as tunable. A framework image run in
    // script mode (sagemaker_program) tunes the script's own.
    const auto& tunable = algorithm->tunable_hyperparameters;
    if (tunable.empty() || d->static_hyper_parameters.count("sagemaker_program")) continue;
    const ParameterRanges* ranges = d->hyper_parameter_ranges ? &*d->hyper_parameter_ranges
                                    : defs.size() == 1 && config && config->parameter_ranges
                                        ? &*config->parameter_ranges
                                        : nullptr;
    if (!ranges) continue;
    const std::string rp = d->hyper_parameter_ranges ? n("HyperParameterRanges") + of : n("ParameterRanges");
    std::vector<std::string> quoted;
    for (const auto& t : tunable) quoted.push_back(Quote(t));
    auto check = [&](const std::optional<std::string>& name, const std::string& kind, size_t i) {
      if (!name || name->empty() || std::find(tunable.begin(), tunable.end(), *name) != tunable.end()) {
        return;
      }
      std::string closest;
      size_t best = 3;  // at most two edits away
      for (const auto& t : tunable) {
        if (const size_t dist = EditDistance(*name, t); dist < best) best = dist, closest = t;
      }
      out.push_back(rp + "." + n(kind) + "[" + std::to_string(i) + "]." + n("Name") + ": " +
                    Quote(*name) + " is not among the hyperparameters " + builtin +
                    " documents as tunable" +
                    (closest.empty() ? " (" + Join(quoted) + ")"
                                     : " (did you mean " + Quote(closest) + "?)") +
                    "; SageMaker refuses to tune it, hpo runs the job as written");
    };
    for (size_t i = 0; i < ranges->continuous_parameter_ranges.size(); ++i) {
      check(ranges->continuous_parameter_ranges[i].name, "ContinuousParameterRanges", i);
    }
    for (size_t i = 0; i < ranges->integer_parameter_ranges.size(); ++i) {
      check(ranges->integer_parameter_ranges[i].name, "IntegerParameterRanges", i);
    }
    for (size_t i = 0; i < ranges->categorical_parameter_ranges.size(); ++i) {
      check(ranges->categorical_parameter_ranges[i].name, "CategoricalParameterRanges", i);
    }
    for (size_t i = 0; i < ranges->auto_parameters.size(); ++i) {
      check(ranges->auto_parameters[i].name, "AutoParameters", i);
    }
  }
  return out;
}

bool IsSageMakerTrainingInstanceType(std::string_view type) {
  return std::binary_search(std::begin(kTrainingInstanceTypes), std::end(kTrainingInstanceTypes), type,
                            [](std::string_view a, std::string_view b) { return a < b; });
}

FieldErrors ValidateTags(const std::vector<Tag>& tags, Spelling spelling) {
  return Validator(spelling, ValidationLimits()).RunTags(tags);
}

std::optional<std::string> EpochsHyperParameter(const TrainingJobDefinition& def) {
  for (const char* name : kEpochsNames) {
    for (const auto& [key, value] : def.static_hyper_parameters) {
      if (ToLower(key) == name) return key;
    }
  }
  return std::nullopt;
}

bool IsHyphenatedName(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '-'; });
}

}  // namespace hpo::proto
