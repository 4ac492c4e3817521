#include "coordinator/aws_json.h"

#include <string_view>
#include <utility>

#include "common/text.h"
#include "proto/codec.h"

namespace hpo::coordinator {

namespace {
std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}
}  // namespace

ApiResponse AwsJsonError(int status, const std::string& type, const std::string& message,
                         const std::string& content_type) {
  return {status, Dump({{"__type", type}, {"message", message}}), content_type};
}

AwsJsonRequest::AwsJsonRequest(const std::string& body, std::string content_type)
    : content_type_(std::move(content_type)), body_(Json::object()) {
  if (auto bad = InvalidUtf8At(body)) {
    error_ = Error("SerializationException",
                   "the request body is not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
    return;
  }
  // The spec parser's limits (64 levels, 50,000 nodes, unique keys), as the SageMaker actions'.
  auto parsed = proto::ParseJson(body.empty() ? std::string_view("{}") : std::string_view(body));
  if (!parsed.ok()) {
    error_ = Error("SerializationException", "the request body is not accepted JSON: " + parsed.status().message());
    return;
  }
  body_ = std::move(parsed).value();
  if (!body_.is_object()) {
    error_ = Error("SerializationException", "the request body must be a JSON object");
    body_ = Json::object();
  }
}

ApiResponse AwsJsonRequest::Ok(const Json& answer) const { return {200, Dump(answer), content_type_}; }

const AwsJsonRequest::Json* AwsJsonRequest::Member(const char* name, bool (*ok)(const Json&), const char* type) {
  auto it = body_.find(name);
  if (it == body_.end() || it->is_null()) return nullptr;
  if (!ok(*it)) {
    if (!error_) {
      error_ = Error("SerializationException", std::string("member ") + name + " must be " + type + ", got " +
                                                   it->type_name());
    }
    return nullptr;
  }
  return &*it;
}

std::optional<std::string> AwsJsonRequest::String(const char* name) {
  const Json* v = Member(name, [](const Json& x) { return x.is_string(); }, "a string");
  return v ? std::optional<std::string>(v->get<std::string>()) : std::nullopt;
}

std::optional<int64_t> AwsJsonRequest::Integer(const char* name) {
  const Json* v = Member(name, [](const Json& x) { return x.is_number_integer(); }, "an integer");
  return v ? std::optional<int64_t>(v->get<int64_t>()) : std::nullopt;
}

std::optional<double> AwsJsonRequest::Number(const char* name) {
  const Json* v = Member(name, [](const Json& x) { return x.is_number(); }, "a number");
  return v ? std::optional<double>(v->get<double>()) : std::nullopt;
}

std::optional<bool> AwsJsonRequest::Bool(const char* name) {
  const Json* v = Member(name, [](const Json& x) { return x.is_boolean(); }, "a boolean");
  return v ? std::optional<bool>(v->get<bool>()) : std::nullopt;
}

std::optional<std::vector<std::string>> AwsJsonRequest::Strings(const char* name) {
  const Json* v = Member(name, [](const Json& x) { return x.is_array(); }, "a list of strings");
  if (!v) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& e : *v) {
    if (!e.is_string()) {
      if (!error_) error_ = Error("SerializationException", std::string("member ") + name + " must hold strings");
      return std::nullopt;
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

const AwsJsonRequest::Json* AwsJsonRequest::Array(const char* name) {
  return Member(name, [](const Json& x) { return x.is_array(); }, "a list");
}

}  // namespace hpo::coordinator
