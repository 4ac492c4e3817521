// coordinator/aws_request.h: reading an AWS request and writing its answers, for the services the
// HTTP API speaks beside SageMaker's (coordinator/cloudwatch_logs.h, cloudwatch_metrics.h), in
// the two protocols their clients use:
//
//   AWS JSON (1.0, 1.1)  the body a JSON object (within the spec parser's limits, UTF-8); the
//                        answer JSON; errors `{"__type", "message"}` in the service's content type.
//                        A member of the wrong JSON type is a SerializationException naming it;
//                        null reads as absent; a timestamp is epoch seconds.
//   AWS query            CloudWatch's protocol for older clients (botocore before 1.32, so Debian
//                        12's python3-boto3 and aws CLI 2.9, and SDKs of that age): the body
//                        form-encoded, `Action=A&Version=V&Name=v&List.member.1=x&Obj.Sub=y`. It
//                        is read as the JSON the same request would carry (`.member.N` lists
//                        become arrays, dotted names nested objects, every value a string, an
//                        empty value where a list is wanted an empty list) through the same typed
//                        readers, which convert the strings (an integer, a number, `true`/`false`,
//                        an RFC 3339 timestamp). The answer is XML,
//                        `<AResponse xmlns=...><AResult>members</AResult></AResponse>`, written
//                        from the same JSON answer (a list's items as `<member>`; the members
//                        `Timestamp` and `Timestamps` as RFC 3339 times); errors are
//                        `<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..`.
//                        A malformed body is MalformedQueryString; a value the readers cannot
//                        convert InvalidParameterValue.
//
// So one action handler serves both protocols: it reads members through AwsRequest (or a nested
// structure's AwsRequest::Object) and answers with Ok(json) or Error(type, message).
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
// An AWS query error answer (XML), in the service's namespace `xmlns`.
ApiResponse AwsQueryError(int status, const std::string& type, const std::string& message, const std::string& xmlns);

class AwsRequest {
 public:
  using Json = nlohmann::ordered_json;

  // One structure of the request (the body, or one nested in it), read member by member. Each
  // reader returns nullopt when the member is absent, and also when it cannot be read: then the
  // request's error() says why (the first such problem is kept), naming the member's path.
  class Object {
   public:
    std::optional<std::string> String(const char* name) const;
    std::optional<int64_t> Integer(const char* name) const;
    std::optional<double> Number(const char* name) const;
    std::optional<double> Timestamp(const char* name) const;  // epoch seconds, years 0000 to 9999
    std::optional<bool> Bool(const char* name) const;
    std::optional<std::vector<std::string>> Strings(const char* name) const;
    std::optional<Object> Structure(const char* name) const;
    std::optional<std::vector<Object>> Structures(const char* name) const;
    // A member's name as the request's protocol spells it: `A.member.1.B` or `A[0].B`.
    std::string PathOf(const char* name) const;

   private:
    friend class AwsRequest;
    Object(AwsRequest* r, const Json* j, std::string path) : r_(r), j_(j), path_(std::move(path)) {}
    const Json* Member(const char* name, bool (*ok)(const Json&), const char* type) const;
    std::optional<std::string> Text(const char* name, const char* type) const;  // a query value
    AwsRequest* r_;
    const Json* j_;
    std::string path_;
  };

  // An AWS JSON request: `body` ("" reads as {}); error() is set when it is not UTF-8, not
  // accepted JSON or not an object.
  AwsRequest(const std::string& body, std::string content_type);
  // An AWS query request: `form` the form-encoded body (its Action and Version are read, not
  // members); answers in XML with the namespace `xmlns`. error() is set when it is malformed.
  static AwsRequest Query(const std::string& form, std::string xmlns);

  AwsRequest(AwsRequest&&) = default;
  AwsRequest& operator=(AwsRequest&&) = default;
  AwsRequest(const AwsRequest&) = delete;
  AwsRequest& operator=(const AwsRequest&) = delete;

  bool query() const { return query_; }
  // A query request's Action and Version ("" for JSON requests, whose action is in a header).
  const std::string& action() const { return action_; }
  const std::string& version() const { return version_; }

  // The first problem found: the body's, or the first member that could not be read.
  const std::optional<ApiResponse>& error() const { return error_; }
  // An error answer in this request's protocol.
  ApiResponse Error(const std::string& type, const std::string& message, int status = 400) const;
  // An answer in this request's protocol.
  ApiResponse Ok(const Json& answer) const;

  // The body's members (Body()'s readers).
  Object Body() { return Object(this, &body_, ""); }
  std::optional<std::string> String(const char* name) { return Body().String(name); }
  std::optional<int64_t> Integer(const char* name) { return Body().Integer(name); }
  std::optional<double> Number(const char* name) { return Body().Number(name); }
  std::optional<double> Timestamp(const char* name) { return Body().Timestamp(name); }
  std::optional<bool> Bool(const char* name) { return Body().Bool(name); }
  std::optional<std::vector<std::string>> Strings(const char* name) { return Body().Strings(name); }
  std::optional<std::vector<Object>> Structures(const char* name) { return Body().Structures(name); }

 private:
  AwsRequest() = default;
  void Fail(const std::string& type, const std::string& message);

  bool query_ = false;
  std::string content_type_;  // JSON: the service's; query: text/xml
  std::string xmlns_;
  std::string action_, version_;
  Json body_ = Json::object();
  std::optional<ApiResponse> error_;
};

}  // namespace hpo::coordinator
