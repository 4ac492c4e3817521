#include "coordinator/search.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "common/text.h"
#include "proto/codec.h"

namespace hpo::coordinator {

namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxListElements = 20;  // Filters, NestedFilters, SubExpressions (SageMaker)
constexpr size_t kMaxElements = 50;      // all of them, recursively
constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxValueLength = 1024;

enum class Op { kEquals, kNotEquals, kGreater, kGreaterOrEqual, kLess, kLessOrEqual, kContains, kIn, kExists, kNotExists };

struct OpName {
  const char* name;
  Op op;
};
constexpr OpName kOps[] = {{"Equals", Op::kEquals},
                           {"NotEquals", Op::kNotEquals},
                           {"GreaterThan", Op::kGreater},
                           {"GreaterThanOrEqualTo", Op::kGreaterOrEqual},
                           {"LessThan", Op::kLess},
                           {"LessThanOrEqualTo", Op::kLessOrEqual},
                           {"Contains", Op::kContains},
                           {"Exists", Op::kExists},
                           {"NotExists", Op::kNotExists},
                           {"In", Op::kIn}};

bool Ordering(Op op) {
  return op == Op::kGreater || op == Op::kGreaterOrEqual || op == Op::kLess || op == Op::kLessOrEqual;
}

// What kind of value a property holds, where that is known from its name alone.
enum class Kind { kUnknown, kNumber, kTime, kText, kBool, kHyperParameter };

// Where a property's values are found.
enum class Where { kPath, kMetric, kHyperParameter, kTag };

struct Property {
  Where where = Where::kPath;
  std::string key;                // the metric's name, the hyperparameter's or the tag's key
  std::vector<std::string> path;  // kPath: the segments
};

const std::vector<std::string>& TrainingJobMembers() {
  static const std::vector<std::string> m = {
      "TrainingJobName", "TrainingJobArn", "TuningJobArn", "LabelingJobArn", "AutoMLJobArn", "ModelArtifacts",
      "TrainingJobStatus", "SecondaryStatus", "FailureReason", "HyperParameters", "AlgorithmSpecification", "RoleArn",
      "InputDataConfig", "OutputDataConfig", "ResourceConfig", "WarmPoolStatus", "VpcConfig", "StoppingCondition",
      "CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime", "SecondaryStatusTransitions",
      "FinalMetricDataList", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
      "EnableManagedSpotTraining", "CheckpointConfig", "TrainingTimeInSeconds", "BillableTimeInSeconds",
      "DebugHookConfig", "ExperimentConfig", "DebugRuleConfigurations", "TensorBoardOutputConfig",
      "DebugRuleEvaluationStatuses", "OutputModelPackageArn", "ModelPackageConfig", "ProfilerConfig", "Environment",
      "RetryStrategy", "Tags"};
  return m;
}

const std::vector<std::string>& TuningJobMembers() {
  static const std::vector<std::string> m = {
      "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobConfig",
      "TrainingJobDefinition", "TrainingJobDefinitions", "HyperParameterTuningJobStatus", "CreationTime",
      "HyperParameterTuningEndTime", "LastModifiedTime", "TrainingJobStatusCounters", "ObjectiveStatusCounters",
      "BestTrainingJob", "OverallBestTrainingJob", "WarmStartConfig", "FailureReason", "TuningJobCompletionDetails",
      "ConsumedResources", "Tags"};
  return m;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool TimeName(std::string_view segment) { return EndsWith(segment, "Time") || EndsWith(segment, "Timestamp"); }

// The kind of a top-level or deeper property, where its name tells.
Kind KindOf(const Property& p) {
  switch (p.where) {
    case Where::kMetric:
      return Kind::kNumber;
    case Where::kHyperParameter:
      return Kind::kHyperParameter;
    case Where::kTag:
      return Kind::kText;
    case Where::kPath:
      break;
  }
  if (p.path.empty()) return Kind::kUnknown;
  const std::string& last = p.path.back();
  if (TimeName(last)) return Kind::kTime;
  static const char* const kText[] = {
      "TrainingJobName", "TrainingJobArn", "TuningJobArn", "TrainingJobStatus", "SecondaryStatus", "FailureReason",
      "RoleArn", "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "HyperParameterTuningJobStatus",
      "LabelingJobArn", "AutoMLJobArn", "OutputModelPackageArn", "InstanceType", "ChannelName", "S3Uri",
      "TrainingImage", "TrainingInputMode", "Strategy", "MetricName", "Status", "Type", "S3OutputPath"};
  for (const char* t : kText) {
    if (last == t) return Kind::kText;
  }
  static const char* const kNumber[] = {"TrainingTimeInSeconds", "BillableTimeInSeconds", "InstanceCount",
                                        "VolumeSizeInGB", "MaxRuntimeInSeconds", "MaxWaitTimeInSeconds",
                                        "MaximumRetryAttempts"};
  for (const char* n : kNumber) {
    if (last == n) return Kind::kNumber;
  }
  static const char* const kBool[] = {"EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                                      "EnableManagedSpotTraining"};
  for (const char* b : kBool) {
    if (last == b) return Kind::kBool;
  }
  return Kind::kUnknown;
}

const char* KindWord(Kind k) {
  switch (k) {
    case Kind::kNumber:
      return "a number";
    case Kind::kTime:
      return "a timestamp";
    case Kind::kText:
      return "text";
    case Kind::kBool:
      return "a Boolean";
    case Kind::kHyperParameter:
      return "a hyperparameter";
    case Kind::kUnknown:
      break;
  }
  return "a value";
}

std::vector<std::string> Split(std::string_view name) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = name.find('.', start);
    out.emplace_back(name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

// `name` as a property of resource `r` (or, `nested`, of an element of a nested list: any path).
Result<Property> ParseProperty(std::string_view name, SearchResource r, bool nested, const std::string& where) {
  if (name.empty() || name.size() > kMaxNameLength) {
    return Status::InvalidArgument(where + " must be 1 to 255 characters");
  }
  Property p;
  if (!nested) {
    const size_t dot = name.find('.');
    const std::string_view head = name.substr(0, dot);
    const std::string_view rest = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
    const bool training = r == SearchResource::kTrainingJob;
    if (dot != std::string_view::npos &&
        (head == "Tags" || (training && (head == "Metrics" || head == "HyperParameters")))) {
      if (rest.empty()) {
        return Status::InvalidArgument(where + " " + std::string(name) + " names no " +
                                       (head == "Tags" ? "tag key" : head == "Metrics" ? "metric" : "hyperparameter") +
                                       ": write " + std::string(head) + ".NAME");
      }
      p.where = head == "Tags" ? Where::kTag : head == "Metrics" ? Where::kMetric : Where::kHyperParameter;
      p.key = std::string(rest);
      return p;
    }
    const std::vector<std::string>& members = SearchResourceMembers(r);
    if (std::find(members.begin(), members.end(), head) == members.end()) {
      std::string near;
      size_t best = 4;
      for (const std::string& m : members) {
        const size_t d = EditDistance(AsciiLower(head), AsciiLower(m));
        if (d < best) best = d, near = m;
      }
      // Metric.loss, hyperparameters.lr, Tag.team: the special prefixes, misspelt.
      for (const char* special : {"Metrics", "HyperParameters", "Tags"}) {
        if ((training || std::string_view(special) == "Tags") &&
            EditDistance(AsciiLower(head), AsciiLower(special)) <= 2) {
          near = std::string(special) + (std::string_view(special) == "Tags" ? ".KEY" : ".NAME");
        }
      }
      std::string msg = where + " " + std::string(name) + " is not a property of a " + SearchRecordMember(r) + " (";
      msg += near.empty() ? std::string("its first part must be one of its members") : "did you mean " + near + "?";
      msg += training ? "; Metrics.NAME, HyperParameters.NAME and Tags.KEY name a metric, a hyperparameter, a tag)"
                      : "; Tags.KEY names a tag)";
      return Status::InvalidArgument(msg);
    }
  }
  p.path = Split(name);
  for (const std::string& s : p.path) {
    if (s.empty()) return Status::InvalidArgument(where + " " + std::string(name) + " has an empty part (two dots?)");
  }
  return p;
}

// YYYY-mm-ddTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM] as epoch seconds: RFC 3339 (proto/codec.h), whose
// zone SageMaker's form leaves out (UTC then).
std::optional<double> ParseIsoTime(std::string_view s) {
  std::string text(s);
  const bool zoned = !text.empty() && (text.back() == 'Z' || text.back() == 'z' ||
                                       (text.size() > 19 && (text[text.size() - 6] == '+' || text[text.size() - 6] == '-')));
  if (!zoned) text += 'Z';
  const Result<proto::Timestamp> t = proto::ParseRfc3339(text);
  if (!t.ok()) return std::nullopt;
  return static_cast<double>(t->unix_millis) / 1000.0;
}

// Every value `p` reaches in `doc` (several through lists); null values are left out.
void Collect(const Json& node, const std::vector<std::string>& path, size_t at, std::vector<const Json*>* out) {
  if (node.is_array()) {
    for (const Json& e : node) Collect(e, path, at, out);
    return;
  }
  if (at == path.size()) {
    if (!node.is_null()) out->push_back(&node);
    return;
  }
  if (!node.is_object()) return;
  auto it = node.find(path[at]);
  if (it == node.end()) return;
  Collect(*it, path, at + 1, out);
}

std::vector<const Json*> Values(const Json& doc, const Property& p) {
  std::vector<const Json*> out;
  auto pairs = [&](const char* list, const char* key_member, const char* value_member) {
    auto it = doc.find(list);
    if (it == doc.end() || !it->is_array()) return;
    for (const Json& e : *it) {
      if (!e.is_object()) continue;
      auto k = e.find(key_member);
      auto v = e.find(value_member);
      if (k != e.end() && k->is_string() && k->get_ref<const std::string&>() == p.key && v != e.end() &&
          !v->is_null()) {
        out.push_back(&*v);
      }
    }
  };
  switch (p.where) {
    case Where::kMetric:
      pairs("FinalMetricDataList", "MetricName", "Value");
      break;
    case Where::kTag:
      pairs("Tags", "Key", "Value");
      break;
    case Where::kHyperParameter:
      if (auto it = doc.find("HyperParameters"); it != doc.end() && it->is_object()) {
        if (auto v = it->find(p.key); v != it->end() && !v->is_null()) out.push_back(&*v);
      }
      break;
    case Where::kPath:
      Collect(doc, p.path, 0, &out);
      break;
  }
  return out;
}

struct Filter {
  Property property;
  Kind kind = Kind::kUnknown;
  Op op = Op::kEquals;
  std::string value;
  std::optional<double> number;  // the Value as a decimal
  bool integer = false;          // ... written as an integer (HyperParameters compare truncated)
  std::optional<double> time;    // the Value as an ISO 8601 date-time
  std::optional<bool> boolean;   // the Value as true or false
  std::vector<std::string> in;   // In's list

  int Compare(double have, double want) const { return have < want ? -1 : have > want ? 1 : 0; }
  bool Ordered(Op positive, int c) const {
    switch (positive) {
      case Op::kEquals:
        return c == 0;
      case Op::kGreater:
        return c > 0;
      case Op::kGreaterOrEqual:
        return c >= 0;
      case Op::kLess:
        return c < 0;
      case Op::kLessOrEqual:
        return c <= 0;
      default:
        return false;
    }
  }
  bool Text(Op positive, const std::string& have) const {
    switch (positive) {
      case Op::kEquals:
        return have == value;
      case Op::kContains:
        return have.find(value) != std::string::npos;
      case Op::kIn:
        return std::find(in.begin(), in.end(), have) != in.end();
      default:
        return false;
    }
  }
  // Whether one value satisfies the filter's positive form (Equals for NotEquals).
  bool Holds(const Json& v, bool time_leaf) const {
    const Op positive = op == Op::kNotEquals ? Op::kEquals : op;
    if (v.is_boolean()) return positive == Op::kEquals && boolean && *boolean == v.get<bool>();
    if (v.is_number()) {
      const std::optional<double>& want = time_leaf ? time : number;
      return want && Ordered(positive, Compare(v.get<double>(), *want));
    }
    if (!v.is_string()) return false;
    const std::string& s = v.get_ref<const std::string&>();
    if (property.where == Where::kHyperParameter && number && positive != Op::kContains && positive != Op::kIn) {
      if (std::optional<double> x = ParseDecimal(TrimSpace(s))) {
        return Ordered(positive, Compare(integer ? std::trunc(*x) : *x, *number));
      }
    }
    return Text(positive, s);
  }
  bool Matches(const Json& doc) const {
    const std::vector<const Json*> values = Values(doc, property);
    if (op == Op::kExists) return !values.empty();
    if (op == Op::kNotExists) return values.empty();
    const bool time_leaf = property.where == Where::kPath && TimeName(property.path.back());
    bool any = false;
    for (const Json* v : values) any = any || Holds(*v, time_leaf);
    return op == Op::kNotEquals ? !any : any;
  }
};

}  // namespace

struct SearchExpression::Node {
  bool any = false;  // Or
  std::vector<Filter> filters;
  struct Nested {
    Property list;
    std::vector<Filter> filters;
  };
  std::vector<Nested> nested;
  std::vector<Node> subexpressions;

  bool Matches(const Json& doc) const {
    // And: the first term that fails decides; Or: the first that holds. (Parse leaves no level
    // without a term.)
    for (const Filter& f : filters) {
      if (f.Matches(doc) == any) return any;
    }
    for (const Nested& n : nested) {
      std::vector<const Json*> elements;
      Collect(doc, n.list.path, 0, &elements);
      bool ok = false;
      for (const Json* e : elements) {
        ok = std::all_of(n.filters.begin(), n.filters.end(), [&](const Filter& f) { return f.Matches(*e); });
        if (ok) break;
      }
      if (ok == any) return any;
    }
    for (const Node& s : subexpressions) {
      if (s.Matches(doc) == any) return any;
    }
    return !any;
  }
};

namespace {

struct ParseState {
  SearchResource resource;
  size_t elements = 0;
  size_t contains = 0;
};

Status UnknownMembers(const Json& object, std::initializer_list<const char*> known, const std::string& where) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status::InvalidArgument(where + " has no member " + it.key() + " (it has " + list + ")");
    }
  }
  return Status::Ok();
}

Result<const Json*> List(const Json& object, const char* member, const std::string& where) {
  auto it = object.find(member);
  if (it == object.end() || it->is_null()) return static_cast<const Json*>(nullptr);
  if (!it->is_array()) return Status::InvalidArgument(where + "." + member + " must be a list");
  if (it->empty() || it->size() > kMaxListElements) {
    return Status::InvalidArgument(where + "." + member + " must hold 1 to 20 elements; it holds " +
                                   std::to_string(it->size()));
  }
  return &*it;
}

Status Count(ParseState& st, const std::string& where) {
  if (++st.elements > kMaxElements) {
    return Status::InvalidArgument("SearchExpression holds more than 50 filters, nested filters and subexpressions in "
                                   "all (at " + where + "): SageMaker's limit");
  }
  return Status::Ok();
}

Result<Filter> ParseFilter(const Json& j, ParseState& st, const std::string& where, const std::string& nested_in) {
  if (Status s = Count(st, where); !s.ok()) return s;
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object with Name, Operator and Value");
  if (Status s = UnknownMembers(j, {"Name", "Operator", "Value"}, where); !s.ok()) return s;
  auto name = j.find("Name");
  if (name == j.end() || !name->is_string()) return Status::InvalidArgument(where + ".Name is required (a string)");
  const std::string& n = name->get_ref<const std::string&>();
  Filter f;
  if (!nested_in.empty()) {
    if (n.size() <= nested_in.size() + 1 || n.compare(0, nested_in.size(), nested_in) != 0 ||
        n[nested_in.size()] != '.') {
      return Status::InvalidArgument(where + ".Name " + n + " must name a property of the nested list's elements: " +
                                     nested_in + ".SOMETHING");
    }
    auto p = ParseProperty(std::string_view(n).substr(nested_in.size() + 1), st.resource, true, where + ".Name");
    if (!p.ok()) return p.status();
    f.property = std::move(p).value();
  } else {
    auto p = ParseProperty(n, st.resource, false, where + ".Name");
    if (!p.ok()) return p.status();
    f.property = std::move(p).value();
  }
  f.kind = KindOf(f.property);
  const bool has_value = j.contains("Value") && !j["Value"].is_null();
  if (has_value) {
    if (!j["Value"].is_string()) return Status::InvalidArgument(where + ".Value must be a string");
    f.value = j["Value"].get<std::string>();
    if (f.value.empty() || f.value.size() > kMaxValueLength) {
      return Status::InvalidArgument(where + ".Value must be 1 to 1024 characters");
    }
  }
  if (j.contains("Operator") && !j["Operator"].is_null()) {
    const std::string o = j["Operator"].is_string() ? j["Operator"].get<std::string>() : j["Operator"].dump();
    bool found = false;
    for (const OpName& k : kOps) {
      if (o == k.name) f.op = k.op, found = true;
    }
    if (!found) {
      return Status::InvalidArgument(where + ".Operator must be one of Equals, NotEquals, GreaterThan, "
                                     "GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, Contains, Exists, "
                                     "NotExists, In; got " + o);
    }
  } else {
    f.op = has_value ? Op::kEquals : Op::kExists;
  }
  if (f.op == Op::kExists || f.op == Op::kNotExists) return f;
  if (!has_value) return Status::InvalidArgument(where + " needs a Value for its Operator");
  const std::string shown = n + " is " + KindWord(f.kind);
  if (f.op == Op::kContains && ++st.contains > 1) {
    return Status::InvalidArgument(where + ": 'CONTAINS' operator usage limit of 1 exceeded (a SearchExpression "
                                   "may use Contains once)");
  }
  f.number = ParseDecimal(f.value);
  f.integer = f.number && f.value.find_first_of(".eE") == std::string::npos;
  f.time = ParseIsoTime(f.value);
  if (f.value == "true" || f.value == "True" || f.value == "TRUE") f.boolean = true;
  if (f.value == "false" || f.value == "False" || f.value == "FALSE") f.boolean = false;
  if (f.op == Op::kIn) {
    std::string_view rest = f.value;
    while (true) {
      const size_t comma = rest.find(',');
      f.in.emplace_back(TrimSpace(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  const char* op_name = "";
  for (const OpName& k : kOps) {
    if (k.op == f.op) op_name = k.name;
  }
  switch (f.kind) {
    case Kind::kNumber:
    case Kind::kTime:
      if (f.op == Op::kContains || f.op == Op::kIn) {
        return Status::InvalidArgument(where + ": " + op_name + " is only for text properties, and " + shown);
      }
      if (f.kind == Kind::kNumber && !f.number) {
        return Status::InvalidArgument(where + ".Value " + f.value + " is not a number, and " + shown);
      }
      if (f.kind == Kind::kTime && !f.time) {
        return Status::InvalidArgument(where + ".Value " + f.value + " is not a date-time: " + n +
                                       " is a timestamp, written YYYY-mm-ddTHH:MM:SS (UTC, or with Z or +HH:MM)");
      }
      break;
    case Kind::kText:
      if (Ordering(f.op)) {
        return Status::InvalidArgument(where + ": " + op_name + " is not supported for text properties, and " + shown);
      }
      break;
    case Kind::kBool:
      if (f.op != Op::kEquals && f.op != Op::kNotEquals) {
        return Status::InvalidArgument(where + ": " + op_name + " does not apply to " + n +
                                       ", a Boolean (Equals or NotEquals true or false)");
      }
      if (!f.boolean) return Status::InvalidArgument(where + ".Value must be true or false: " + shown);
      break;
    case Kind::kHyperParameter:
      if (Ordering(f.op) && !f.number) {
        return Status::InvalidArgument(where + ": " + op_name + " compares a hyperparameter as a number, and " +
                                       f.value + " is not one");
      }
      break;
    case Kind::kUnknown:
      break;
  }
  return f;
}

Result<SearchExpression::Node> ParseNode(const Json& j, ParseState& st, const std::string& where) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  if (Status s = UnknownMembers(j, {"Filters", "NestedFilters", "SubExpressions", "Operator"}, where); !s.ok()) {
    return s;
  }
  SearchExpression::Node node;
  if (j.contains("Operator") && !j["Operator"].is_null()) {
    const std::string o = j["Operator"].is_string() ? j["Operator"].get<std::string>() : j["Operator"].dump();
    if (o != "And" && o != "Or") return Status::InvalidArgument(where + ".Operator must be And or Or; got " + o);
    node.any = o == "Or";
  }
  auto filters = List(j, "Filters", where);
  if (!filters.ok()) return filters.status();
  auto nested = List(j, "NestedFilters", where);
  if (!nested.ok()) return nested.status();
  auto subs = List(j, "SubExpressions", where);
  if (!subs.ok()) return subs.status();
  if (!*filters && !*nested && !*subs) {
    return Status::InvalidArgument(where + " needs at least one of Filters, NestedFilters and SubExpressions");
  }
  if (*filters) {
    for (size_t i = 0; i < (*filters)->size(); ++i) {
      auto f = ParseFilter((**filters)[i], st, where + ".Filters[" + std::to_string(i) + "]", "");
      if (!f.ok()) return f.status();
      node.filters.push_back(std::move(f).value());
    }
  }
  if (*nested) {
    for (size_t i = 0; i < (*nested)->size(); ++i) {
      const std::string at = where + ".NestedFilters[" + std::to_string(i) + "]";
      if (Status s = Count(st, at); !s.ok()) return s;
      const Json& n = (**nested)[i];
      if (!n.is_object()) return Status::InvalidArgument(at + " must be an object with NestedPropertyName and Filters");
      if (Status s = UnknownMembers(n, {"NestedPropertyName", "Filters"}, at); !s.ok()) return s;
      if (!n.contains("NestedPropertyName") || !n["NestedPropertyName"].is_string()) {
        return Status::InvalidArgument(at + ".NestedPropertyName is required (a list property, e.g. InputDataConfig)");
      }
      const std::string list = n["NestedPropertyName"].get<std::string>();
      auto p = ParseProperty(list, st.resource, false, at + ".NestedPropertyName");
      if (!p.ok()) return p.status();
      if (p->where != Where::kPath) {
        return Status::InvalidArgument(at + ".NestedPropertyName " + list +
                                       " is a single value, not a list of objects (InputDataConfig, "
                                       "FinalMetricDataList, SecondaryStatusTransitions, Tags, ...)");
      }
      auto fl = List(n, "Filters", at);
      if (!fl.ok()) return fl.status();
      if (!*fl) return Status::InvalidArgument(at + ".Filters is required (1 to 20 filters)");
      SearchExpression::Node::Nested out;
      out.list = std::move(p).value();
      for (size_t k = 0; k < (*fl)->size(); ++k) {
        auto f = ParseFilter((**fl)[k], st, at + ".Filters[" + std::to_string(k) + "]", list);
        if (!f.ok()) return f.status();
        out.filters.push_back(std::move(f).value());
      }
      node.nested.push_back(std::move(out));
    }
  }
  if (*subs) {
    for (size_t i = 0; i < (*subs)->size(); ++i) {
      const std::string at = where + ".SubExpressions[" + std::to_string(i) + "]";
      if (Status s = Count(st, at); !s.ok()) return s;
      auto sub = ParseNode((**subs)[i], st, at);
      if (!sub.ok()) return sub.status();
      node.subexpressions.push_back(std::move(sub).value());
    }
  }
  return node;
}

}  // namespace

Result<SearchResource> ParseSearchResource(std::string_view name) {
  if (name == "TrainingJob") return SearchResource::kTrainingJob;
  if (name == "HyperParameterTuningJob") return SearchResource::kHyperParameterTuningJob;
  static const char* const kOthers[] = {"Experiment", "ExperimentTrial", "ExperimentTrialComponent", "Endpoint",
                                        "Model", "ModelPackage", "ModelPackageGroup", "Pipeline",
                                        "PipelineExecution", "FeatureGroup", "FeatureMetadata", "Image",
                                        "ImageVersion", "Project", "ModelCard", "PipelineVersion", "Job",
                                        "HubContent"};
  for (const char* o : kOthers) {
    if (name == o) {
      return Status::InvalidArgument("Resource " + std::string(name) +
                                     ": hpo keeps tuning jobs and their training jobs only; search TrainingJob or "
                                     "HyperParameterTuningJob");
    }
  }
  return Status::InvalidArgument("Resource must be TrainingJob or HyperParameterTuningJob (the resources hpo keeps); "
                                 "got " + std::string(name));
}

const char* SearchRecordMember(SearchResource r) {
  return r == SearchResource::kTrainingJob ? "TrainingJob" : "HyperParameterTuningJob";
}

const std::vector<std::string>& SearchResourceMembers(SearchResource r) {
  return r == SearchResource::kTrainingJob ? TrainingJobMembers() : TuningJobMembers();
}

SearchExpression::SearchExpression() = default;
SearchExpression::SearchExpression(SearchExpression&&) noexcept = default;
SearchExpression& SearchExpression::operator=(SearchExpression&&) noexcept = default;
SearchExpression::~SearchExpression() = default;

Result<SearchExpression> SearchExpression::Parse(const Json& expression, SearchResource r) {
  ParseState st{r};
  auto node = ParseNode(expression, st, "SearchExpression");
  if (!node.ok()) return node.status();
  SearchExpression e;
  e.root_ = std::make_unique<Node>(std::move(node).value());
  return e;
}

struct SearchProperty::Impl {
  Property property;
};

Result<SearchProperty> SearchProperty::Parse(std::string_view name, SearchResource r, const std::string& where) {
  auto p = ParseProperty(name, r, false, where);
  if (!p.ok()) return p.status();
  SearchProperty out;
  out.impl_ = std::make_shared<const Impl>(Impl{std::move(p).value()});
  return out;
}

std::vector<const Json*> SearchProperty::Values(const Json& doc) const { return coordinator::Values(doc, impl_->property); }

SearchSortValue SearchProperty::SortValue(const Json& doc) const {
  SearchSortValue out;
  const std::vector<const Json*> values = Values(doc);
  if (values.empty()) return out;
  const Json& v = *values.front();
  if (v.is_number()) {
    out.present = true;
    out.number = v.get<double>();
  } else if (v.is_string()) {
    out.present = true;
    // A hyperparameter that reads as a number sorts as one ("10" after "9").
    const std::optional<double> x = impl_->property.where == Where::kHyperParameter
                                        ? ParseDecimal(TrimSpace(v.get_ref<const std::string&>()))
                                        : std::nullopt;
    if (x) {
      out.number = *x;
    } else {
      out.text = v.get<std::string>();
    }
  } else if (v.is_boolean()) {
    out.present = true;
    out.text = v.get<bool>() ? "true" : "false";
  }
  return out;
}

bool SearchExpression::Matches(const Json& doc) const { return !root_ || root_->Matches(doc); }

}  // namespace hpo::coordinator
