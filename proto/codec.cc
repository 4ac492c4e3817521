#include "proto/codec.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <set>
#include <type_traits>

#include "common/text.h"
#include "proto/schema.h"

namespace hpo::proto {

using Json = nlohmann::ordered_json;

namespace {

constexpr const char* kApiVersion = "sagemaker.services.k8s.aws/v1alpha1";
constexpr const char* kKind = "HyperParameterTuningJob";

// ---- names ------------------------------------------------------------------------------------

struct CrdException {
  const char* api;
  const char* crd;
};
// The CRD's spellings that are not "lower-case the first letter" (ACK's initialism rules).
constexpr CrdException kCrdExceptions[] = {
    {"Type", "type_"},
    {"S3Uri", "s3URI"},
    {"RoleArn", "roleARN"},
    {"KmsKeyId", "kmsKeyID"},
    {"VolumeKmsKeyId", "volumeKMSKeyID"},
    {"FileSystemId", "fileSystemID"},
    {"SecurityGroupIds", "securityGroupIDs"},
    {"TrainingJobArn", "trainingJobARN"},
};

template <class T, class M>
std::string FieldName(const schema::Field<T, M>& f, Spelling s) {
  if (s == Spelling::kApi) return f.api;
  return f.crd ? std::string(f.crd) : CrdName(f.api);
}

template <class T, class M>
bool InSpelling(const schema::Field<T, M>& f, Spelling s) {
  if (f.where == schema::Where::kApiOnly) return s == Spelling::kApi;
  if (f.where == schema::Where::kCrdOnly) return s == Spelling::kCrd;
  return true;
}

const char* TypeName(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::object: return "an object";
    case Json::value_t::array: return "a list";
    case Json::value_t::string: return "a string";
    case Json::value_t::boolean: return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "an integer";
    case Json::value_t::number_float: return "a number";
    default: return "a value";
  }
}

// ---- decoding context -------------------------------------------------------------------------

struct Ctx {
  Spelling spelling;
  bool text_scalars;  // YAML: scalars are text until the model says what they are
  FieldErrors* errors;
  // A CRD document's TextTree::yaml_kinds, and where the notes on them go (both or neither).
  const std::map<std::string, std::string>* yaml_kinds = nullptr;
  FieldErrors* kubectl_notes = nullptr;

  void Error(const std::string& path, std::string message) const {
    errors->push_back({path, std::move(message)});
  }
  // A value of the wrong JSON type (FieldError::type).
  void TypeError(const std::string& path, std::string message) const {
    errors->push_back({path, std::move(message), false, !text_scalars});
  }
};

// What a value of the wrong type is, said to its writer: a YAML scalar is text until its field
// types it, so `resourceLimits: 5` or `tags: true` is shown as the value written ("got a string"
// described neither; a crd pass).
std::string Got(const Ctx& c, const Json& j) {
  if (!c.text_scalars || !j.is_string()) return TypeName(j);
  const std::string& t = j.get_ref<const std::string&>();
  return "a single value (" + (t.size() > 40 ? t.substr(0, 40) + "..." : t) + ")";
}

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

// ---- scalars ----------------------------------------------------------------------------------

// "an integer", "a number", "a boolean": a TextTree::yaml_kinds kind other than "string".
std::string KindWithArticle(const std::string& kind) { return (kind == "integer" ? "an " : "a ") + kind; }

// A YAML scalar read as `want` (a string, an integer, ...) that kubectl would send as another JSON
// type (TextTree::yaml_kinds): the API server would refuse the resource. A note says how to
// write it; hpo reads it either way.
void NoteKubectlType(const Ctx& c, const std::string& path, const std::string& text, const char* want) {
  if (!c.yaml_kinds || !c.kubectl_notes) return;
  const auto kind = c.yaml_kinds->find(path);
  if (kind == c.yaml_kinds->end()) return;
  const bool want_string = std::string_view(want) == "a string";
  if (want_string == (kind->second == "string")) return;
  const std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
  if (want_string) {
    c.kubectl_notes->push_back({path, shown + " is " + KindWithArticle(kind->second) +
                                          " to kubectl (YAML 1.1) and the CRD's schema has a string here: write it in "
                                          "quotes, \"" + shown + "\""});
  } else {
    c.kubectl_notes->push_back({path, "\"" + shown + "\" is quoted, a string to kubectl, and the CRD's schema has " +
                                          want + " here: write it without quotes, " + shown});
  }
}

void Decode(const Json& j, std::string& out, const Ctx& c, const std::string& path) {
  if (j.is_string()) {
    out = j.get<std::string>();
    if (c.text_scalars) NoteKubectlType(c, path, out, "a string");
    // No field holds one: a worker cannot pass it on (a path, an argument, a regex), and a
    // training image named with one was cut short at it and ran something else.
    if (out.find('\0') != std::string::npos) c.Error(path, "must not contain a NUL character (\\u0000)");
  } else if (j.is_number() || j.is_boolean()) {
    c.TypeError(path, std::string("expected a string, got ") + TypeName(j) + " " + j.dump() +
                      "; write it in quotes: \"" + j.dump() + "\"");
  } else {
    c.TypeError(path, std::string("expected a string, got ") + TypeName(j));
  }
}

void Decode(const Json& j, int64_t& out, const Ctx& c, const std::string& path) {
  if (j.is_number_unsigned()) {  // nlohmann reads every non-negative integer as unsigned
    if (j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      c.Error(path, "integer " + j.dump() + " is too large");
      return;
    }
    out = static_cast<int64_t>(j.get<uint64_t>());
    return;
  }
  if (j.is_number_integer()) {
    out = j.get<int64_t>();
    return;
  }
  if (j.is_string() && c.text_scalars) {
    const std::string& s = j.get_ref<const std::string&>();
    // A YAML scalar: an optional sign, then decimal digits. A leading zero is refused: YAML 1.1
    // readers (kubectl, PyYAML) take 010 for octal 8 where YAML 1.2 takes 10.
    const size_t digits = !s.empty() && (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (s.size() > digits + 1 && s[digits] == '0' &&
        std::all_of(s.begin() + static_cast<long>(digits), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      c.Error(path, "\"" + s + "\" has a leading zero, which YAML readers disagree on (kubectl and PyYAML read it as "
                    "octal); write the number without it");
      return;
    }
    int64_t v = 0;
    const char* first = s.data() + (digits == 1 && s[0] == '+' ? 1 : 0);
    auto [p, ec] = std::from_chars(first, s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size() && s.size() > digits) {
      out = v;
      NoteKubectlType(c, path, s, "an integer");
      return;
    }
    c.Error(path, ec == std::errc::result_out_of_range ? "integer \"" + s + "\" is too large"
                                                        : "expected an integer, got \"" + s + "\"");
    return;
  }
  if (j.is_number_float() && std::abs(j.get<double>()) >= 9.2e18 && std::floor(j.get<double>()) == j.get<double>()) {
    // A JSON integer literal past 64 bits, which the parser could keep only as a double (shown
    // as one: "integer 9.999999999999999e+22" for 99999999999999999999999 read as another number).
    char shown[32];
    std::snprintf(shown, sizeof shown, "%.3g", j.get<double>());
    c.Error(path, std::string("integer is too large (about ") + shown + ", past 64 bits)");
    return;
  }
  c.TypeError(path, std::string("expected an integer, got ") + TypeName(j) +
                    (j.is_primitive() && !j.is_null() ? " " + j.dump() : ""));
}

void Decode(const Json& j, double& out, const Ctx& c, const std::string& path) {
  if (j.is_number()) {
    out = j.get<double>();
    return;
  }
  if (j.is_string() && c.text_scalars) {
    const std::string& s = j.get_ref<const std::string&>();
    // Decimal text only, as range bounds are read: strtod also took hex floats (0x1p-2) and
    // leading spaces. A YAML + sign is allowed.
    const char* first = s.data() + (s.size() > 1 && s[0] == '+' && s[1] != '-' ? 1 : 0);
    const char* last = s.data() + s.size();
    double v = 0;
    const auto [end, ec] = std::from_chars(first, last, v, std::chars_format::general);
    if (!s.empty() && ec == std::errc() && end == last && std::isfinite(v)) {
      out = v;
      NoteKubectlType(c, path, s, "a number");
      return;
    }
    // 1e400 and 1e-400 are numbers, past what a double holds: said so, not "expected a number".
    c.Error(path, ec == std::errc::result_out_of_range
                      ? "number \"" + s + "\" is out of range (a double holds magnitudes from about 2.2e-308 to 1.8e308)"
                      : "expected a number, got \"" + s + "\"");
    return;
  }
  c.TypeError(path, std::string("expected a number, got ") + TypeName(j));
}

void Decode(const Json& j, bool& out, const Ctx& c, const std::string& path) {
  if (j.is_boolean()) {
    out = j.get<bool>();
    return;
  }
  if (j.is_string() && c.text_scalars) {
    const std::string& s = j.get_ref<const std::string&>();
    NoteKubectlType(c, path, s, "true or false");
    if (s == "true" || s == "True" || s == "TRUE") { out = true; return; }
    if (s == "false" || s == "False" || s == "FALSE") { out = false; return; }
    // YAML 1.1's other spellings, as kubectl reads them (its YAML reader turns `yes` into true
    // before the API server sees it): a manifest that kubectl applies is read the same here.
    for (const char* t : {"yes", "Yes", "YES", "on", "On", "ON", "y", "Y"}) {
      if (s == t) { out = true; return; }
    }
    for (const char* f : {"no", "No", "NO", "off", "Off", "OFF", "n", "N"}) {
      if (s == f) { out = false; return; }
    }
    c.Error(path, "expected true or false, got \"" + s + "\"");
    return;
  }
  c.TypeError(path, std::string("expected true or false, got ") + TypeName(j));
}

void Decode(const Json& j, Timestamp& out, const Ctx& c, const std::string& path) {
  if (j.is_number() && !c.text_scalars) {
    double secs = j.get<double>();
    if (!std::isfinite(secs) || std::fabs(secs) > 1e13) {
      c.Error(path, "timestamp " + j.dump() + " is out of range");
      return;
    }
    out.unix_millis = std::llround(secs * 1000.0);
    return;
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (c.text_scalars) {
      // YAML: either RFC 3339 text or epoch seconds.
      char* end = nullptr;
      double secs = std::strtod(s.c_str(), &end);
      if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(secs) && std::fabs(secs) < 1e13) {
        out.unix_millis = std::llround(secs * 1000.0);
        return;
      }
    }
    auto t = ParseRfc3339(s);
    if (t.ok()) {
      out = *t;
      return;
    }
    c.Error(path, t.status().message());
    return;
  }
  c.TypeError(path, std::string("expected a timestamp, got ") + TypeName(j));
}

void Decode(const Json& j, StringMap& out, const Ctx& c, const std::string& path) {
  if (j.is_null()) return;  // as for a list: no map at all
  if (!j.is_object()) {
    c.TypeError(path, std::string("expected a map of strings, got ") + Got(c, j));
    return;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string v;
    Decode(it.value(), v, c, path + "." + it.key());
    if (c.yaml_kinds && c.kubectl_notes && c.yaml_kinds->count(path + "." + it.key() + "#key")) {
      const std::string& k = it.key();
      // (YAML 1.1's booleans: y, yes, true, on and their cases are true; n, no, false, off false.)
      const bool yes = std::string_view("yYtT").find(k[0]) != std::string_view::npos || k[1] == 'n' || k[1] == 'N';
      c.kubectl_notes->push_back({path + "." + k, "the key " + k + " is a boolean to kubectl (YAML 1.1), which sends "
                                                  "it as the key \"" + (yes ? "true" : "false") +
                                                  "\": write the key in quotes, \"" + k + "\""});
    }
    out[it.key()] = std::move(v);
  }
}

template <class T>
void Decode(const Json& j, std::vector<T>& out, const Ctx& c, const std::string& path);
template <class T>
void Decode(const Json& j, std::optional<T>& out, const Ctx& c, const std::string& path);
template <class T, class = decltype(schema::Schema<T>::Fields())>
void Decode(const Json& j, T& out, const Ctx& c, const std::string& path);

template <class T>
void Decode(const Json& j, std::vector<T>& out, const Ctx& c, const std::string& path) {
  // null, or a YAML key with no value (`tags:`), is no list at all, as for an object member: the
  // Kubernetes API server drops such a member too.
  if (j.is_null()) return;
  if (!j.is_array()) {
    c.TypeError(path, std::string("expected a list, got ") + Got(c, j));
    return;
  }
  // A list SageMaker requires to be non-empty when given (botocore: min 1) whose empty form the
  // struct cannot tell from an absent one: refused here, where the difference is still seen.
  if (j.empty()) {
    const size_t dot = path.rfind('.');
    const std::string_view last = std::string_view(path).substr(dot == std::string::npos ? 0 : dot + 1);
    if (EqualsIgnoringCase(last, "InputDataConfig")) {
      c.Error(path, "must have 1-20 channels, or be left out (a training job without input data)");
      return;
    }
    if (EqualsIgnoringCase(last, "TrainingJobDefinitions")) {
      c.Error(path, "must have 1-10 training job definitions, or be left out (with TrainingJobDefinition instead)");
      return;
    }
  }
  out.resize(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    Decode(j[i], out[i], c, path + "[" + std::to_string(i) + "]");
  }
}

template <class T>
void Decode(const Json& j, std::optional<T>& out, const Ctx& c, const std::string& path) {
  if (j.is_null()) {
    out.reset();
    return;
  }
  out.emplace();
  Decode(j, *out, c, path);
}

// Members of SageMaker's current API (botocore's model of CreateHyperParameterTuningJob) that
// hpo does not implement, and why: named as such rather than as unknown. Matched without regard
// to case, so the CRD's camelCase spelling finds them too.
const char* UnsupportedSageMakerField(const std::string& key) {
  static const std::pair<const char*, const char*> kFields[] = {
      {"InstancePreferences", "a prioritized list of instance types; give one InstanceType, or the definition a HyperParameterTuningResourceConfig with InstanceConfigs"},
      {"SelectedInstanceType", "an output of InstancePreferences; leave it out"},
      {"SelectedInstanceCount", "an output of InstancePreferences; leave it out"},
      {"InstancePlacementConfig", "placement within SageMaker UltraServers; leave it out"},
      {"TrainingPlanArn", "SageMaker training plans reserve AWS capacity; leave it out"},
      {"ModelAccessConfig", "accepting a JumpStart model's license; leave it out"},
      {"HubAccessConfig", "SageMaker JumpStart hub model references; give the model's S3Uri instead"},
      {"DatasetSource", "SageMaker dataset resources; give an S3DataSource with the data's S3Uri instead"},
  };
  for (const auto& [name, why] : kFields) {
    if (EqualsIgnoringCase(key, name)) return why;
  }
  return nullptr;
}

// Reports an unknown key with the best hint: the other spelling's name, or a near miss.
// Members of DescribeHyperParameterTuningJob's answer (and the SDK's ResponseMetadata) that are
// no part of a CreateHyperParameterTuningJob request: a Describe output reused as a spec.
bool DescribeOnlyField(const std::string& key) {
  static const std::set<std::string> kNames = {
      "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus", "CreationTime", "HyperParameterTuningEndTime",
      "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters", "BestTrainingJob",
      "OverallBestTrainingJob", "FailureReason", "TuningJobCompletionDetails", "ConsumedResources",
      "ResponseMetadata"};
  return kNames.count(key) > 0;
}

template <class T>
void UnknownField(const std::string& key, const Ctx& c, const std::string& path) {
  if (const char* why = UnsupportedSageMakerField(key)) {
    c.Error(Join(path, key), std::string("is a SageMaker field that hpo does not support (") + why + ")");
    return;
  }
  if (path.empty() && c.spelling == Spelling::kApi && DescribeOnlyField(key)) {
    c.Error(key, "is part of DescribeHyperParameterTuningJob's answer, not of a CreateHyperParameterTuningJob "
                 "request; leave it out");
    return;
  }
  Spelling other = c.spelling == Spelling::kCrd ? Spelling::kApi : Spelling::kCrd;
  std::string hint;
  size_t best = 3;
  std::apply(
      [&](const auto&... f) {
        (
            [&] {
              if (!InSpelling(f, c.spelling)) return;
              std::string mine = FieldName(f, c.spelling);
              if (key == FieldName(f, other)) {
                hint = std::string("; that is the ") +
                       (other == Spelling::kApi ? "SageMaker API" : "Kubernetes (CRD)") +
                       " spelling, this document spells it \"" + mine + "\"";
                best = 0;
                return;
              }
              size_t d = EditDistance(key, mine);
              if (d < best) {
                best = d;
                hint = "; did you mean \"" + mine + "\"?";
              }
            }(),
            ...);
      },
      schema::Schema<T>::Fields());
  c.Error(Join(path, key), "unknown field" + hint);
}

template <class T, class>
void Decode(const Json& j, T& out, const Ctx& c, const std::string& path) {
  if (!j.is_object()) {
    c.TypeError(path, std::string("expected an object, got ") + Got(c, j));
    return;
  }
  constexpr auto fields = schema::Schema<T>::Fields();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    bool found = false;
    std::apply(
        [&](const auto&... f) {
          (
              [&] {
                if (found || !InSpelling(f, c.spelling) || FieldName(f, c.spelling) != key) return;
                found = true;
                Decode(it.value(), out.*(f.member), c, Join(path, key));
              }(),
              ...);
        },
        fields);
    if (!found) UnknownField<T>(key, c, path);
  }
}

// ---- encoding ---------------------------------------------------------------------------------

struct EncCtx {
  Spelling spelling;
};

// Returns false when the value is "absent" (empty optional, list or map) and must be left out.
bool Encode(const std::string& v, Json& out, const EncCtx&) { out = v; return true; }
bool Encode(int64_t v, Json& out, const EncCtx&) { out = v; return true; }
bool Encode(double v, Json& out, const EncCtx&) { out = v; return true; }
bool Encode(bool v, Json& out, const EncCtx&) { out = v; return true; }
bool Encode(const Timestamp& t, Json& out, const EncCtx& c) {
  if (c.spelling == Spelling::kCrd) {
    out = FormatRfc3339(t);
  } else if (t.unix_millis % 1000 == 0) {
    out = t.unix_millis / 1000;
  } else {
    out = static_cast<double>(t.unix_millis) / 1000.0;
  }
  return true;
}
bool Encode(const StringMap& m, Json& out, const EncCtx&) {
  if (m.empty()) return false;
  out = Json::object();
  for (const auto& [k, v] : m) out[k] = v;
  return true;
}
template <class T>
bool Encode(const std::vector<T>& v, Json& out, const EncCtx& c);
template <class T>
bool Encode(const std::optional<T>& v, Json& out, const EncCtx& c);
template <class T, class = decltype(schema::Schema<T>::Fields())>
bool Encode(const T& v, Json& out, const EncCtx& c);

template <class T>
bool Encode(const std::vector<T>& v, Json& out, const EncCtx& c) {
  if (v.empty()) return false;
  out = Json::array();
  for (const auto& e : v) {
    Json ej;
    if (!Encode(e, ej, c)) ej = Json::object();
    out.push_back(std::move(ej));
  }
  return true;
}

template <class T>
bool Encode(const std::optional<T>& v, Json& out, const EncCtx& c) {
  if (!v) return false;
  if (!Encode(*v, out, c)) out = Json::object();  // present but empty object stays present
  return true;
}

template <class T, class>
bool Encode(const T& v, Json& out, const EncCtx& c) {
  out = Json::object();
  std::apply(
      [&](const auto&... f) {
        (
            [&] {
              if (!InSpelling(f, c.spelling)) return;
              Json fj;
              if (Encode(v.*(f.member), fj, c)) out[FieldName(f, c.spelling)] = std::move(fj);
            }(),
            ...);
      },
      schema::Schema<T>::Fields());
  return true;
}

// ---- helpers for the top-level shapes ----------------------------------------------------------

template <class T>
Result<T> Finish(T value, FieldErrors& errs, FieldErrors* out) {
  if (out) *out = errs;
  if (!errs.empty()) return Status::InvalidArgument(JoinErrors(errs));
  return value;
}

// Splits `in` between the spec's and the status's fields (Describe response, flat).
void DecodeFlat(const Json& j, DescribeTuningJobResponse& out, const Ctx& c) {
  if (!j.is_object()) {
    c.TypeError("", std::string("expected an object, got ") + TypeName(j));
    return;
  }
  Json spec_part = Json::object(), status_part = Json::object();
  auto has = [](const auto& fields, const std::string& key, Spelling s) {
    bool found = false;
    std::apply([&](const auto&... f) { ((found = found || (InSpelling(f, s) && FieldName(f, s) == key)), ...); },
               fields);
    return found;
  };
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "Tags" && has(schema::Schema<TuningJobSpec>::Fields(), it.key(), c.spelling)) {
      spec_part[it.key()] = it.value();
    } else {
      status_part[it.key()] = it.value();  // unknown keys are reported by the status decoder
    }
  }
  Decode(spec_part, out.spec, c, "");
  Decode(status_part, out.status, c, "");
}

bool LooksLikeApi(const Json& j) {
  if (!j.is_object()) return false;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.key().empty() && std::isupper(static_cast<unsigned char>(it.key()[0]))) return true;
  }
  return false;
}

}  // namespace

// ---- public -----------------------------------------------------------------------------------

std::string JoinErrors(const FieldErrors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += '\n';
    out += e.ToString();
  }
  return out;
}

bool IsNotFoundError(std::string_view type, std::string_view message) {
  return type == "ResourceNotFound" ||
         (type == "ValidationException" && message.starts_with(kRequestedResourceNotFound));
}

std::string CrdName(std::string_view api_name) {
  for (const auto& e : kCrdExceptions) {
    if (api_name == e.api) return e.crd;
  }
  std::string s(api_name);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

FieldPath::FieldPath(Spelling spelling)
    : spelling_(spelling), path_(spelling == Spelling::kCrd ? "spec" : "") {}

FieldPath FieldPath::Child(std::string_view api_name) const {
  std::string name = spelling_ == Spelling::kCrd ? CrdName(api_name) : std::string(api_name);
  return FieldPath(spelling_, path_.empty() ? name : path_ + "." + name);
}

FieldPath FieldPath::Index(size_t i) const {
  return FieldPath(spelling_, path_ + "[" + std::to_string(i) + "]");
}

FieldPath FieldPath::Key(std::string_view key) const {
  // A key is the user's text: control characters (a NUL in a hyperparameter's name) are shown
  // escaped, never written raw into an error message; a long one is cut, as values are (a
  // 2,500-character key filled the line it was named on).
  constexpr size_t kShown = 64;
  std::string shown;
  if (key.size() > kShown + 16) {
    size_t cut = kShown;
    while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;  // a whole UTF-8 character
    return Key(std::string(key.substr(0, cut)) + "...(" + std::to_string(key.size()) + " bytes)");
  }
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      shown += buf;
    } else {
      shown += c;
    }
  }
  return FieldPath(spelling_, path_.empty() ? shown : path_ + "." + shown);
}

std::string FormatRfc3339(const Timestamp& t) {
  int64_t secs = t.unix_millis / 1000;
  int64_t ms = t.unix_millis % 1000;
  if (ms < 0) {
    ms += 1000;
    secs -= 1;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (ms != 0) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(ms));
    out += frac;
  }
  return out + "Z";
}

Result<Timestamp> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("expected an RFC 3339 time such as \"2026-11-28T23:50:33Z\", got \"" +
                                   std::string(text) + "\"");
  };
  // YYYY-MM-DDTHH:MM:SS[.fff...](Z|+HH:MM|-HH:MM)
  auto num = [&](size_t pos, size_t len, int& out) {
    if (pos + len > text.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int Y, M, D, h, m, s;
  if (text.size() < 20 || !num(0, 4, Y) || text[4] != '-' || !num(5, 2, M) || text[7] != '-' ||
      !num(8, 2, D) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !num(11, 2, h) ||
      text[13] != ':' || !num(14, 2, m) || text[16] != ':' || !num(17, 2, s)) {
    return bad();
  }
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || s > 60) return bad();
  // The month's own length: 2026-02-30 was taken, and read as March 2.
  static const int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
  if (D > kDaysIn[M - 1] + (M == 2 && leap ? 1 : 0)) return bad();
  size_t pos = 19;
  int ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      if (digits < 3) ms = ms * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad();
    for (int i = digits; i < 3; ++i) ms *= 10;
  }
  int offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh, om;
    if (!num(pos + 1, 2, oh) || pos + 3 >= text.size() || text[pos + 3] != ':' || !num(pos + 4, 2, om)) {
      return bad();
    }
    offset_min = (oh * 60 + om) * (text[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  // Days from civil (Howard Hinnant's algorithm).
  int y = Y - (M <= 2);
  int era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = static_cast<unsigned>(y - era * 400);
  unsigned doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = static_cast<int64_t>(era) * 146097 + static_cast<int64_t>(doe) - 719468;
  int64_t secs = days * 86400 + h * 3600 + m * 60 + s - offset_min * 60;
  return Timestamp{secs * 1000 + ms};
}

namespace {

// Labels and annotations are text to Kubernetes (a job keeps only those: KeptKubernetesMetadata):
// a note for each value that is not, or that kubectl's YAML 1.1 reader types otherwise (`yes`).
void NoteKubernetesMetadata(const Json& metadata, const std::map<std::string, std::string>& yaml_kinds,
                            FieldErrors* notes) {
  for (const char* key : {"labels", "annotations"}) {
    auto m = metadata.find(key);
    if (m == metadata.end() || !m->is_object()) continue;
    for (auto it = m->begin(); it != m->end(); ++it) {
      const std::string path = std::string("metadata.") + key + "." + it.key();
      const auto kind = yaml_kinds.find(path);
      if (!it.value().is_string()) {
        const std::string v = it.value().is_primitive() ? it.value().dump() : TypeName(it.value());
        notes->push_back({path, v + " is not text, and Kubernetes takes only text there: write it in quotes, \"" + v +
                                    "\" (hpo leaves it out)"});
      } else if (kind != yaml_kinds.end() && kind->second != "string") {
        const std::string& v = it.value().get_ref<const std::string&>();
        notes->push_back({path, v + " is " + KindWithArticle(kind->second) +
                                    " to kubectl (YAML 1.1), and Kubernetes takes only text there: write it in "
                                    "quotes, \"" + v + "\""});
      }
    }
  }
}

// A CRD document decoded as far as it goes: a field with an error is left at its default, and
// the error is added to `errs`. `kubectl_notes` (if given): ParsedSpec::kubectl_notes.
TuningJobDocument DecodeCrdInto(const TextTree& in, FieldErrors& errs, FieldErrors* kubectl_notes = nullptr) {
  Ctx c{Spelling::kCrd, in.from_yaml, &errs, kubectl_notes ? &in.yaml_kinds : nullptr, kubectl_notes};
  TuningJobDocument doc;
  const Json& j = in.tree;
  if (!j.is_object()) {
    errs.push_back({"", std::string("expected a HyperParameterTuningJob document (an object), got ") + TypeName(j)});
    return doc;
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "apiVersion") {
      Decode(it.value(), doc.api_version, c, key);
      if (doc.api_version != kApiVersion) {
        errs.push_back({key, "must be \"" + std::string(kApiVersion) + "\", got \"" + doc.api_version + "\""});
      }
    } else if (key == "kind") {
      Decode(it.value(), doc.kind, c, key);
      if (doc.kind != kKind) {
        errs.push_back({key, "must be \"" + std::string(kKind) + "\", got \"" + doc.kind + "\""});
      }
    } else if (key == "metadata") {
      if (!it.value().is_object()) {
        errs.push_back({key, std::string("expected an object, got ") + Got(c, it.value())});
      } else {
        // Kubernetes' ObjectMeta fields, as `kubectl get -o yaml` writes them: another name (a
        // `lables:` typo) is refused as kubectl's strict field validation refuses it; it was
        // accepted, and the labels were lost without a word.
        static constexpr const char* kObjectMeta[] = {
            "name",      "generateName",      "namespace",         "selfLink",
            "uid",       "resourceVersion",   "generation",        "creationTimestamp",
            "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
            "ownerReferences",   "finalizers",        "managedFields"};
        for (auto m = it.value().begin(); m != it.value().end(); ++m) {
          if (std::find(std::begin(kObjectMeta), std::end(kObjectMeta), m.key()) != std::end(kObjectMeta)) continue;
          std::string hint;
          for (const char* k : kObjectMeta) {
            if (EditDistance(m.key(), k) <= 2) hint = std::string("; did you mean \"") + k + "\"?";
          }
          errs.push_back({"metadata." + m.key(), "unknown field of Kubernetes' object metadata (name, namespace, "
                                                 "labels, annotations, ...)" + hint});
        }
        doc.metadata = it.value();
      }
    } else if (key == "spec") {
      Decode(it.value(), doc.spec, c, "spec");
    } else if (key == "status") {
      Decode(it.value(), doc.status, c, "status");
    } else {
      std::string hint;
      for (const char* k : {"apiVersion", "kind", "metadata", "spec", "status"}) {
        if (EditDistance(key, k) <= 2) hint = std::string("; did you mean \"") + k + "\"?";
      }
      errs.push_back({key, "unknown field; a HyperParameterTuningJob document has apiVersion, kind, "
                           "metadata, spec and status" + hint});
    }
  }
  if (!j.contains("spec")) errs.push_back({"spec", "is required"});
  DropDescribedResourceConfig(doc.spec);
  return doc;
}

TuningJobSpec DecodeCreateRequestInto(const TextTree& in, FieldErrors& errs) {
  TuningJobSpec spec;
  Decode(in.tree, spec, Ctx{Spelling::kApi, in.from_yaml, &errs}, "");
  DropDescribedResourceConfig(spec);
  return spec;
}

}  // namespace

Result<TuningJobDocument> DecodeCrdDocument(const TextTree& in, FieldErrors* errors) {
  FieldErrors errs;
  TuningJobDocument doc = DecodeCrdInto(in, errs);
  return Finish(std::move(doc), errs, errors);
}

Result<TuningJobSpec> DecodeCreateRequest(const TextTree& in, FieldErrors* errors) {
  FieldErrors errs;
  TuningJobSpec spec = DecodeCreateRequestInto(in, errs);
  return Finish(std::move(spec), errs, errors);
}

Result<DescribeTuningJobResponse> DecodeDescribeResponse(const TextTree& in, FieldErrors* errors) {
  FieldErrors errs;
  DescribeTuningJobResponse resp;
  DecodeFlat(in.tree, resp, Ctx{Spelling::kApi, in.from_yaml, &errs});
  return Finish(std::move(resp), errs, errors);
}

Result<ListTrainingJobsResponse> DecodeListTrainingJobsResponse(const TextTree& in, FieldErrors* errors) {
  FieldErrors errs;
  ListTrainingJobsResponse resp;
  Decode(in.tree, resp, Ctx{Spelling::kApi, in.from_yaml, &errs}, "");
  return Finish(std::move(resp), errs, errors);
}

namespace {
bool KindIs(const Json& j, std::string_view kind) {
  if (!j.is_object()) return false;
  auto k = j.find("kind");
  return k != j.end() && k->is_string() && k->get_ref<const std::string&>() == kind;
}

// `kubectl get hyperparametertuningjobs -o yaml` writes a List: its one HyperParameterTuningJob
// item is the spec (its kubectl notes' paths made the item's own). An error names how many there
// are when not one. A tree that is no List is left as it is.
Status UnwrapKubernetesList(TextTree* tree) {
  if (!KindIs(tree->tree, "List") || !tree->tree.contains("items") || !tree->tree["items"].is_array()) {
    return Status::Ok();
  }
  const Json& items = tree->tree["items"];
  std::vector<size_t> jobs;
  for (size_t i = 0; i < items.size(); ++i) {
    if (KindIs(items[i], "HyperParameterTuningJob")) jobs.push_back(i);
  }
  if (jobs.size() != 1) {
    return Status::InvalidArgument("the file is a Kubernetes List of " + std::to_string(items.size()) + " items, " +
                                   std::to_string(jobs.size()) +
                                   " of them of kind HyperParameterTuningJob; give one tuning job per file");
  }
  const std::string prefix = "items[" + std::to_string(jobs[0]) + "].";
  std::map<std::string, std::string> kinds;
  for (const auto& [path, kind] : tree->yaml_kinds) {
    if (path.rfind(prefix, 0) == 0) kinds[path.substr(prefix.size())] = kind;
  }
  Json one = items[jobs[0]];
  tree->tree = std::move(one);
  tree->yaml_kinds = std::move(kinds);
  return Status::Ok();
}
}  // namespace

Result<ParsedSpec> ParseSpec(std::string_view text, FieldErrors* errors, ParsedSpec* partial) {
  auto tree = ParseText(text);
  if (tree.ok()) {
    if (Status s = UnwrapKubernetesList(&*tree); !s.ok()) tree = s;
  }
  if (!tree.ok()) {
    if (errors) *errors = {{"", tree.status().message()}};
    return tree.status();
  }
  const Json& j = tree->tree;
  ParsedSpec out;
  FieldErrors errs;
  bool bare = false;  // a bare CRD spec, read as the document's spec
  auto name_from_spec = [&] {
    if (out.document.spec.hyper_parameter_tuning_job_name) {
      // Kubernetes names are lower-case (a job name allows capitals: XGBoost-Tuning-01).
      out.document.metadata["name"] = AsciiLower(*out.document.spec.hyper_parameter_tuning_job_name);
    }
  };
  if (j.is_object() && (j.contains("apiVersion") || j.contains("kind") || j.contains("spec"))) {
    out.spelling = Spelling::kCrd;
    out.document = DecodeCrdInto(*tree, errs, &out.kubectl_notes);
    NoteKubernetesMetadata(out.document.metadata, tree->yaml_kinds, &out.kubectl_notes);
  } else if (LooksLikeApi(j)) {
    out.spelling = Spelling::kApi;
    out.document.spec = DecodeCreateRequestInto(*tree, errs);
    name_from_spec();
  } else if (!j.is_object()) {
    // YAML leaves plain scalars untyped: `42` reads as the text "42", which is no "string" to its writer.
    std::string got = tree->from_yaml && j.is_string() ? "a single value, not a mapping of fields" : TypeName(j);
    errs.push_back({"", "expected a tuning job (a mapping of fields such as apiVersion, kind and spec, or "
                        "HyperParameterTuningJobName), got " + got});
  } else {
    // A bare CRD spec: wrap it so paths still read spec.<field>.
    bare = true;
    TextTree wrapped{Json::object(), tree->from_yaml, {}, {}};
    wrapped.tree["spec"] = j;
    out.spelling = Spelling::kCrd;
    out.document = DecodeCrdInto(wrapped, errs);
    name_from_spec();
  }
  if (!bare) out.yaml_lines = tree->yaml_lines;
  for (const auto& [path, line] : bare ? tree->yaml_lines : std::map<std::string, int>{}) {
    out.yaml_lines.emplace(path.empty() ? "spec" : "spec." + path, line);  // a bare spec's paths read spec.<field>
  }
  AddYamlLines(out.yaml_lines, errs);
  AddYamlLines(out.yaml_lines, out.kubectl_notes);
  if (partial) *partial = out;
  return Finish(std::move(out), errs, errors);
}

void AddYamlLines(const std::map<std::string, int>& lines, FieldErrors& errors) {
  if (lines.empty()) return;
  for (FieldError& e : errors) {
    if (e.line > 0 || e.path.empty()) continue;
    for (std::string p = e.path; !p.empty();) {
      if (auto it = lines.find(p); it != lines.end()) {
        e.line = it->second;
        break;
      }
      const size_t cut = p.find_last_of(".[");
      if (cut == std::string::npos) break;
      p.resize(cut);
    }
  }
}

Json KeptKubernetesMetadata(const Json& metadata) {
  Json kept = Json::object();
  if (!metadata.is_object()) return kept;
  for (const char* key : {"name", "namespace"}) {
    if (auto v = metadata.find(key); v != metadata.end() && v->is_string()) kept[key] = *v;
  }
  for (const char* key : {"labels", "annotations"}) {
    auto m = metadata.find(key);
    if (m == metadata.end() || !m->is_object()) continue;
    Json texts = Json::object();
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (it.value().is_string()) texts[it.key()] = it.value();
    }
    if (!texts.empty()) kept[key] = std::move(texts);
  }
  return kept;
}

Json EncodeCrdDocument(const TuningJobDocument& doc) {
  EncCtx c{Spelling::kCrd};
  Json out = Json::object();
  out["apiVersion"] = doc.api_version;
  out["kind"] = doc.kind;
  out["metadata"] = doc.metadata.is_object() ? doc.metadata : Json::object();
  Json spec;
  Encode(doc.spec, spec, c);
  out["spec"] = std::move(spec);
  if (doc.status) {
    Json status;
    Encode(*doc.status, status, c);
    out["status"] = std::move(status);
  }
  return out;
}

Json EncodeCreateRequest(const TuningJobSpec& spec) {
  Json out;
  Encode(spec, out, EncCtx{Spelling::kApi});
  return out;
}

Json EncodeDescribeResponse(const DescribeTuningJobResponse& resp) {
  EncCtx c{Spelling::kApi};
  TuningJobSpec spec = resp.spec;
  spec.tags.clear();
  Json out;
  Encode(spec, out, c);
  Json status;
  Encode(resp.status, status, c);
  for (auto it = status.begin(); it != status.end(); ++it) out[it.key()] = it.value();
  return out;
}

Json EncodeListTrainingJobsResponse(const ListTrainingJobsResponse& resp) {
  Json out;
  Encode(resp, out, EncCtx{Spelling::kApi});
  if (!out.contains("TrainingJobSummaries")) out["TrainingJobSummaries"] = Json::array();
  return out;
}

Json EncodeTrainingJobSummary(const TrainingJobSummary& s, Spelling spelling) {
  Json out;
  Encode(s, out, EncCtx{spelling});
  return out;
}

}  // namespace hpo::proto
