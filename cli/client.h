// cli/client.h: how the client commands reach a coordinator's HTTP API, or a running hpo run's.
//
// The coordinator is --coordinator URL, else $HPO_COORDINATOR, else http://127.0.0.1:7780; a
// running hpo run is found by its state directory (cli/run_control.h) and called with its own
// keys. Requests are signed with AWS Signature V4 (service sagemaker) when the caller has AWS
// credentials, found as the aws CLI finds them ($AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY, else
// profile $AWS_PROFILE of ~/.aws/credentials; the region from $AWS_REGION, $AWS_DEFAULT_REGION or
// ~/.aws/config, else us-east-1). The calls that end the process on failure say what to do and
// exit with cli/cli_util.h's codes: 3 nothing answers, 2 a ValidationException, 1 otherwise.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace hpo::cli {

std::string DefaultCoordinator();

// What to do about a refused signature (HTTP 403), to follow the coordinator's own message.
std::string AuthHint(const std::string& message);

struct ClientCredentials {
  std::string id, secret, region;
};

// The headers of a request: signed when the caller has credentials; `own` (a running hpo run's
// keys) wins over the caller's.
httplib::Headers ClientHeaders(const std::string& url, const std::string& method, const std::string& target,
                               const std::string& body, std::vector<std::pair<std::string, std::string>> headers,
                               const ClientCredentials* own = nullptr);

// Where a command that acts sends its request: a coordinator (--coordinator), or the running hpo
// run of a state directory (--state-dir), with that run's own keys.
struct Endpoint {
  std::string url;
  std::optional<ClientCredentials> own;  // the run's keys; none: the caller's, if any
  std::string who;                       // for messages: "the coordinator", "the hpo run of DIR (pid N)"
  std::string unreachable;               // what to do when nothing answers at url
};
Endpoint CoordinatorAt(const std::string& url);
// The hpo run of `state_dir`; exits 2 (no run there) or 3 (the run was killed) saying so.
Endpoint RunOf(const std::string& state_dir);

// One SageMaker action (POST / with X-Amz-Target); its answer, or the process exits saying why.
nlohmann::ordered_json Call(const Endpoint& at, const std::string& action, const nlohmann::ordered_json& body);
// One request to hpo's own API (GET, or POST of a JSON body, to /hpo/v1/...): its JSON answer, or
// the process exits saying why.
nlohmann::ordered_json Request(const Endpoint& at, const std::string& method, const std::string& target,
                               const nlohmann::ordered_json& body = nlohmann::ordered_json::object());

}  // namespace hpo::cli
