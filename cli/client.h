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

#include "common/status.h"

namespace hpo::cli {

std::string DefaultCoordinator();
// `s` as one shell word: as it is when it holds only letters, digits and _./:@%+=,-; else in
// single quotes (a ' as '\'').
std::string ShellWord(const std::string& s);
// What a suggested command needs to reach the coordinator at `url`: "" for the default one
// (DefaultCoordinator), else " --coordinator URL".
std::string CoordinatorFlag(const std::string& url);
// Where a name that was not found can be looked up: " (`hpo list FLAGS` lists the tuning jobs,
// `hpo trials JOB FLAGS` a tuning job's training jobs)"; `flags` as CoordinatorFlag or
// " --state-dir DIR".
std::string WhereTheNamesAre(const std::string& flags);

// Checks a coordinator URL given to a client command (--coordinator, $HPO_COORDINATOR) and drops
// a trailing '/': http(s)://HOST[:PORT] and nothing else. Exits 2 saying what is wrong and what
// to give instead (a tcp:// URL is the workers' ZeroMQ address, not the HTTP API).
void CheckCoordinatorUrl(std::string* url);

// The field `key` of an answer, or null when `j` is not an object or has no such field (a const
// json's operator[] on a missing key is undefined behaviour, and an answer is not to be trusted).
const nlohmann::ordered_json& Field(const nlohmann::ordered_json& j, const char* key);
// The string field `key` of an answer, or "" when it is missing or not a string.
std::string Text(const nlohmann::ordered_json& j, const char* key);
// The array field `key` of an answer (empty when missing); exits 3 when it is there and is not an
// array: the answer is not one an hpo coordinator sends.
const nlohmann::ordered_json& Items(const nlohmann::ordered_json& j, const char* key, const std::string& from);
// The start of an answer's body for a message: at most 120 characters, on one line.
std::string Snippet(const std::string& body);
// What to say when `from` answered with something that is not what an hpo coordinator sends;
// FailUnexpected says it and exits 3.
std::string UnexpectedAnswer(const std::string& from, const std::string& what);
[[noreturn]] void FailUnexpected(const std::string& from, const std::string& what);

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
  std::string flags;                     // what a suggested command needs to reach it (" --state-dir DIR")
};
// Exits 2 when `url` is not a coordinator's HTTP API URL (CheckCoordinatorUrl).
Endpoint CoordinatorAt(std::string url);
// What to say when a request to `url` failed after its connection was taken (httplib's Read or
// Write): when what listens there greets as ZeroMQ does (a coordinator's --listen port, where
// workers connect), that commands want its --http address; else "". Looks for at most a second.
std::string ZmqPortHint(const std::string& url);
// The hpo run of `state_dir`; exits 2 (no run there) or 3 (the run was killed) saying so.
Endpoint RunOf(const std::string& state_dir);

// One SageMaker action (POST / with X-Amz-Target); its answer, or the process exits saying why.
nlohmann::ordered_json Call(const Endpoint& at, const std::string& action, const nlohmann::ordered_json& body);
// One request to hpo's own API (GET, or POST of a JSON body, to /hpo/v1/...): its JSON answer, or
// the process exits saying why.
nlohmann::ordered_json Request(const Endpoint& at, const std::string& method, const std::string& target,
                               const nlohmann::ordered_json& body = nlohmann::ordered_json::object());

// A read-only SageMaker action (Describe..., List...) for the commands that wait (delete --stop):
// Unavailable when nothing answers at at.url, where Call exits 3; every other failure exits as
// Call's does. Never for an action that changes something (it may be sent again).
Result<nlohmann::ordered_json> CallUnlessAway(const Endpoint& at, const std::string& action,
                                              const nlohmann::ordered_json& body);
// A GET of hpo's own API, for the commands that wait (-f, drain): Unavailable when nothing
// answers at at.url (the coordinator restarts), where Request exits 3; every other failure exits
// as Request's does.
Result<nlohmann::ordered_json> GetUnlessAway(const Endpoint& at, const std::string& target);

// For the commands that follow or wait (events -f, logs -f, workers drain): a coordinator that
// stops answering (it restarts; its machine reboots) is waited for, not given up on. Says once on
// stderr that it waits, and once that the coordinator answers again.
class AwayWaiter {
 public:
  // `doing`: what the command goes on doing, for its messages ("following my-job's events").
  explicit AwayWaiter(std::string doing) : doing_(std::move(doing)) {}
  // After a failed request: true, after a pause of a second, when `s` says nothing answers
  // (Unavailable) and the coordinator has answered before: the caller asks again. False for any
  // other failure, and for a coordinator that never answered (a wrong URL is not waited for).
  bool Wait(const Status& s);
  // After an answer: true when the coordinator had been away (and it says it is back).
  bool Answered();

 private:
  std::string doing_;
  bool answered_ = false;
  bool away_ = false;
};

}  // namespace hpo::cli
