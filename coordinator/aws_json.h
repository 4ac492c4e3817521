// coordinator/aws_json.h: reading an AWS JSON request and writing its errors, for the services
// the HTTP API speaks beside SageMaker's (coordinator/cloudwatch_logs.h, cloudwatch_metrics.h).
//
// What it is: the body checks every such service makes before its own rules (UTF-8, JSON within
// the spec parser's limits, an object), and typed access to the request's members where a member
// of the wrong JSON type is a SerializationException naming it (null reads as absent), as AWS's
// deserializers answer. Errors are `{"__type", "message"}` with the service's content type.
//
// Thread safety: a request reader belongs to one call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/http_api.h"

namespace hpo::coordinator {

// An AWS JSON error answer.
ApiResponse AwsJsonError(int status, const std::string& type, const std::string& message,
                         const std::string& content_type);

class AwsJsonRequest {
 public:
  using Json = nlohmann::ordered_json;

  // Parses `body` ("" reads as {}): error() is set when it is not UTF-8, not accepted JSON or not
  // an object.
  AwsJsonRequest(const std::string& body, std::string content_type);

  // The first problem found: the body's, or the first member of the wrong type.
  const std::optional<ApiResponse>& error() const { return error_; }
  // An error answer in this service's content type.
  ApiResponse Error(const std::string& type, const std::string& message, int status = 400) const {
    return AwsJsonError(status, type, message, content_type_);
  }
  // An answer in this service's content type.
  ApiResponse Ok(const Json& answer) const;

  // Members: nullopt when absent (or null, or of the wrong type: then error() says so).
  std::optional<std::string> String(const char* name);
  std::optional<int64_t> Integer(const char* name);
  std::optional<double> Number(const char* name);  // a timestamp's epoch seconds, too
  std::optional<bool> Bool(const char* name);
  std::optional<std::vector<std::string>> Strings(const char* name);
  const Json* Array(const char* name);  // a list of any members, checked by the caller

 private:
  const Json* Member(const char* name, bool (*ok)(const Json&), const char* type);

  std::string content_type_;
  Json body_;
  std::optional<ApiResponse> error_;
};

}  // namespace hpo::coordinator
