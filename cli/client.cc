#include "cli/client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <map>
#include <ctime>
#include <sstream>

#include "cli/cli_util.h"
#include "cli/run_control.h"
#include "common/file_util.h"
#include "coordinator/sigv4.h"

namespace hpo::cli {

using Json = nlohmann::ordered_json;

std::string DefaultCoordinator() {
  const char* env = std::getenv("HPO_COORDINATOR");
  return env && *env ? env : "http://127.0.0.1:7780";
}

std::string ShellWord(const std::string& s) {
  const bool plain = !s.empty() && s.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                       "0123456789_./:@%+=,-") == std::string::npos;
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string CoordinatorFlag(const std::string& url) {
  return url == DefaultCoordinator() ? "" : " --coordinator " + ShellWord(url);
}

std::string WhereTheNamesAre(const std::string& flags) {
  return " (`hpo list" + flags + "` lists the tuning jobs, `hpo trials JOB" + flags + "` a tuning job's training jobs)";
}

void CheckCoordinatorUrl(std::string* url) {
  const std::string given = *url;
  auto bad = [&](const std::string& why) {
    Fail(2, "the coordinator URL " + given + " " + why + ": give its HTTP API, http://HOST:PORT (hpo coordinator --http; "
            "by default http://127.0.0.1:7780), with --coordinator or HPO_COORDINATOR");
  };
  const size_t sep = url->find("://");
  if (sep == std::string::npos) bad("has no scheme");
  const std::string scheme = url->substr(0, sep);
  if (scheme == "tcp" || scheme == "ipc") bad("is a ZeroMQ address (the one workers --connect to), not the HTTP API");
  if (scheme != "http" && scheme != "https") bad("has the scheme " + scheme + "://");
  // Host and port as for any URL hpo posts to (cli_util.h HttpUrlProblem); then no path.
  if (const std::string problem = HttpUrlProblem(*url); !problem.empty()) bad(problem);
  const std::string rest = url->substr(sep + 3);
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    if (slash + 1 != rest.size()) bad("has a path (" + rest.substr(slash) + ")");
    url->pop_back();
  }
}

const Json& Field(const Json& j, const char* key) {
  static const Json null;
  if (!j.is_object()) return null;
  const auto it = j.find(key);
  return it == j.end() ? null : *it;
}

std::string Text(const Json& j, const char* key) {
  const Json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : "";
}

std::string Snippet(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 120)) out += c == '\n' || c == '\r' || c == '\t' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.empty()) return "an empty body";  // (it read "HTTP 404, ; is that ...")
  return body.size() > 120 ? out + "..." : out;
}

std::string UnexpectedAnswer(const std::string& from, const std::string& what) {
  return "unexpected answer from " + from + ": " + what +
         "; is that an hpo coordinator of this version (its HTTP API, hpo coordinator --http)?";
}

void FailUnexpected(const std::string& from, const std::string& what) { Fail(3, UnexpectedAnswer(from, what)); }

const Json& Items(const Json& j, const char* key, const std::string& from) {
  static const Json empty = Json::array();
  const Json& v = Field(j, key);
  if (v.is_null()) return empty;
  if (!v.is_array()) FailUnexpected(from, std::string(key) + " is not a list");
  return v;
}

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The keys of one profile in an aws CLI file (~/.aws/credentials: [NAME]; ~/.aws/config: [default]
// or [profile NAME]), as `key = value` lines; empty when the file cannot be read.
std::map<std::string, std::string> AwsProfile(const std::string& file, const std::string& profile) {
  std::map<std::string, std::string> keys;
  auto text = file.empty() ? Result<std::string>(Status::NotFound("")) : ReadFile(file, 1u << 20);
  if (!text.ok()) return keys;
  auto trim = [](std::string t) {
    t.erase(0, t.find_first_not_of(" \t\r"));
    t.erase(t.find_last_not_of(" \t\r") + 1);
    return t;
  };
  std::istringstream in(*text);
  std::string line, section;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
      section = trim(line.substr(1, line.size() - 2));
      if (section.rfind("profile ", 0) == 0) section = trim(section.substr(8));
      continue;
    }
    const size_t eq = line.find('=');
    if (section == profile && eq != std::string::npos) keys[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return keys;
}

std::string AwsFile(const char* variable, const char* under_home) {
  std::string file = Env(variable);
  if (file.empty() && !Env("HOME").empty()) file = Env("HOME") + under_home;
  return file;
}

std::string AwsProfileName() { return Env("AWS_PROFILE").empty() ? "default" : Env("AWS_PROFILE"); }

}  // namespace

// The region requests are signed for, found as the aws CLI finds it: $AWS_REGION, else
// $AWS_DEFAULT_REGION, else `region` of profile $AWS_PROFILE (default "default") in
// $AWS_CONFIG_FILE (default ~/.aws/config), else us-east-1.
std::string ClientRegion() {
  if (!Env("AWS_REGION").empty()) return Env("AWS_REGION");
  if (!Env("AWS_DEFAULT_REGION").empty()) return Env("AWS_DEFAULT_REGION");
  const auto keys = AwsProfile(AwsFile("AWS_CONFIG_FILE", "/.aws/config"), AwsProfileName());
  const auto region = keys.find("region");
  return region != keys.end() && !region->second.empty() ? region->second : "us-east-1";
}

// What to do about a refused signature (HTTP 403), after the coordinator's own message.
std::string AuthHint(const std::string& message) {
  if (message.find("scoped to a valid region") != std::string::npos) {
    return " (this request was signed for region " + ClientRegion() +
           "; set AWS_REGION, or region in ~/.aws/config, to the coordinator's --region)";
  }
  // No credentials at all: the request went unsigned (a security pass: AWS_PROFILE named a
  // profile that does not exist, and only "Missing Authentication Token" was said).
  if (Env("AWS_ACCESS_KEY_ID").empty() || Env("AWS_SECRET_ACCESS_KEY").empty()) {
    const std::string file = AwsFile("AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials");
    auto keys = AwsProfile(file, AwsProfileName());
    if (keys["aws_access_key_id"].empty() || keys["aws_secret_access_key"].empty()) {
      return " (the request went unsigned: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, and " +
             (file.empty() ? std::string("no credentials file was found")
                           : file + " holds no keys for the profile " + AwsProfileName() +
                                 (Env("AWS_PROFILE").empty() ? "" : " (AWS_PROFILE)")) +
             ": set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or that profile, to keys the coordinator accepts)";
    }
  }
  return " (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile the coordinator accepts)";
}

namespace {

// The caller's AWS credentials, found as the aws CLI finds them: $AWS_ACCESS_KEY_ID and
// $AWS_SECRET_ACCESS_KEY, else profile $AWS_PROFILE (default "default") of
// $AWS_SHARED_CREDENTIALS_FILE (default ~/.aws/credentials). nullopt when there are none.
std::optional<ClientCredentials> FindClientCredentials() {
  ClientCredentials c{Env("AWS_ACCESS_KEY_ID"), Env("AWS_SECRET_ACCESS_KEY"), ClientRegion()};
  if (!c.id.empty() && !c.secret.empty()) return c;
  auto keys = AwsProfile(AwsFile("AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials"), AwsProfileName());
  c.id = keys["aws_access_key_id"];
  c.secret = keys["aws_secret_access_key"];
  if (c.id.empty() || c.secret.empty()) return std::nullopt;
  return c;
}

}  // namespace

// The headers of a request to the coordinator: signed with AWS Signature V4 (service sagemaker)
// when the caller has credentials, so a coordinator that requires signatures accepts them.
// `own` (a running hpo run's keys) wins over the caller's.
httplib::Headers ClientHeaders(const std::string& url, const std::string& method, const std::string& target,
                               const std::string& body, std::vector<std::pair<std::string, std::string>> headers,
                               const ClientCredentials* own) {
  static const std::optional<ClientCredentials> found = FindClientCredentials();
  const ClientCredentials* creds = own ? own : found ? &*found : nullptr;
  httplib::Headers out;
  if (creds) {
    std::string authority = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
    authority = authority.substr(0, authority.find('/'));
    coordinator::sigv4::Request r;
    r.method = method;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    r.query = q == std::string::npos ? "" : target.substr(q + 1);
    r.body = body;
    r.headers = std::move(headers);
    r.headers.emplace_back("Host", authority);
    coordinator::sigv4::Sign(r, creds->id, creds->secret, creds->region, "sagemaker", std::time(nullptr));
    headers = std::move(r.headers);
  }
  for (auto& [k, v] : headers) out.emplace(k, v);
  return out;
}

std::string ZmqPortHint(const std::string& url) {
  HttpUrlParts parts = ParseHttpUrl(url);
  if (!parts.problem.empty() || parts.port.empty()) return "";
  if (parts.host.size() > 1 && parts.host.front() == '[') parts.host = parts.host.substr(1, parts.host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(parts.host.c_str(), parts.port.c_str(), &hints, &found) != 0 || !found) return "";
  std::string hint;
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    // A ZeroMQ peer (ZMTP 3) sends its greeting at once, unasked: 0xFF, eight bytes, 0x7F. An
    // HTTP server says nothing until asked.
    pollfd p{fd, POLLOUT, 0};
    if ((::connect(fd, found->ai_addr, found->ai_addrlen) == 0 || errno == EINPROGRESS) && ::poll(&p, 1, 500) == 1) {
      p.events = POLLIN;
      unsigned char greeting[10] = {0};
      size_t got = 0;
      while (got < sizeof greeting && ::poll(&p, 1, 300) == 1) {
        const ssize_t n = ::read(fd, greeting + got, sizeof greeting - got);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      if (got == sizeof greeting && greeting[0] == 0xFF && greeting[9] == 0x7F) {
        hint = url + " is a ZeroMQ port, most likely the coordinator's --listen address, where workers connect; "
                     "commands use its HTTP API: the --http address (hpo coordinator prints both as it starts)";
      }
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return hint;
}

Endpoint CoordinatorAt(std::string url) {
  CheckCoordinatorUrl(&url);
  return Endpoint{url, std::nullopt, "the coordinator",
                  "start one with `hpo coordinator`, or point --coordinator / HPO_COORDINATOR at it",
                  CoordinatorFlag(url)};
}

// The hpo run of `state_dir`; exits 2 (no run there) or 3 (the run was killed) saying so.
Endpoint RunOf(const std::string& state_dir) {
  auto control = ReadRunControl(state_dir);
  if (!control.ok()) Fail(control.status().code() == StatusCode::kFailedPrecondition ? 3 : 2, control.status().message());
  Endpoint e{control->url, std::nullopt, "the hpo run of " + state_dir + " (pid " + std::to_string(control->pid) + ")",
             "it may be ending, or be stopped (kill -STOP); try again in a moment", " --state-dir " + ShellWord(state_dir)};
  if (!control->access_key_id.empty()) e.own = ClientCredentials{control->access_key_id, control->secret_access_key, "us-east-1"};
  return e;
}

// Calls one SageMaker action; exits with a clear message when it cannot.
namespace {

// Sends one signed request to `at` (a POST when `payload` is given, else a GET); exits 3 saying
// what to do when nothing answers.
// `away_ok`: a request that nothing answers is returned as it is (the caller waits for a
// coordinator that restarts), not an exit; only for requests that change nothing (GETs, and the
// read-only actions of CallUnlessAway), which are safe to send again.
httplib::Result Send(const Endpoint& at, const std::string& target, const std::optional<std::string>& payload,
                     std::vector<std::pair<std::string, std::string>> headers, const char* content_type,
                     bool away_ok = false, int read_timeout_s = 30) {
  httplib::Client client(at.url);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(read_timeout_s, 0);
  httplib::Headers h = ClientHeaders(at.url, payload ? "POST" : "GET", target, payload.value_or(""), std::move(headers),
                                     at.own ? &*at.own : nullptr);
  auto res = payload ? client.Post(target, h, *payload, content_type) : client.Get(target, h);
  if (!res && away_ok) return res;
  if (!res) {
    // Sent, and the connection dropped before the answer (the coordinator stopped on a full
    // disk, or restarted): the request may have been applied. "Cannot reach" sent users to
    // submit again, into ResourceInUse.
    const bool sent = res.error() == httplib::Error::Read;
    if (sent || res.error() == httplib::Error::Write) {
      if (std::string zmq = ZmqPortHint(at.url); !zmq.empty()) Fail(2, zmq);
    }
    if (payload && sent) {
      Fail(3, at.who + " at " + at.url + " closed the connection before it answered (" +
                  httplib::to_string(res.error()) +
                  "): the request may have been applied or not; once it answers again, look before sending it "
                  "again (hpo list, hpo describe NAME)");
    }
    Fail(3, "cannot reach " + at.who + " at " + at.url + " (" + httplib::to_string(res.error()) + "); " + at.unreachable);
  }
  return res;
}

// An error answer: "Type: message" (with the credentials hint on a 403), exit 2 for a request
// the coordinator found invalid, else 1.
// `names_hint`: a not-found names where the tuning jobs are listed (not for workers' requests,
// whose not-found says how to list the workers).
[[noreturn]] void FailAnswer(const Endpoint& at, int status, const std::string& type, std::string msg,
                             bool names_hint = true) {
  if (status == 403 && !at.own) msg += AuthHint(msg);
  // No such job: the coordinator refused the request (1), whatever the error type SageMaker gives.
  if (proto::IsNotFoundError(type, msg)) {
    Fail(1, type + ": " + msg + (names_hint ? WhereTheNamesAre(at.flags) : std::string()));
  }
  Fail(type == "ValidationException" || type == "SerializationException" ? 2 : 1, type + ": " + msg);
}

// A SageMaker action's answer: its JSON object, or the process exits saying why.
Json ActionAnswer(const Endpoint& at, const httplib::Result& res) {
  Json j = Json::parse(res->body, nullptr, false);
  // An error that is no JSON object is no coordinator's: another server at that address (a
  // wrong --coordinator port) answered, and its HTML page was printed as "the refusal" (exit 1).
  if (res->status != 200 && !j.is_object()) {
    FailUnexpected(at.who + " at " + at.url, "HTTP " + std::to_string(res->status) + ", " + Snippet(res->body));
  }
  if (res->status != 200) {
    const std::string type = Text(j, "__type");
    FailAnswer(at, res->status, type.empty() ? "Error" : type,
               j.contains("message") ? Text(j, "message") : res->body.substr(0, 300));
  }
  if (!j.is_object()) FailUnexpected(at.who + " at " + at.url, "not a JSON object (" + Snippet(res->body) + ")");
  return j;
}

// What CallUnlessAway and GetUnlessAway return when nothing answered.
Status Unreachable(const Endpoint& at, const httplib::Result& res) {
  return Status::Unavailable("cannot reach " + at.who + " at " + at.url + " (" + httplib::to_string(res.error()) +
                             "); " + at.unreachable);
}

httplib::Result SendAction(const Endpoint& at, const std::string& action, const Json& body, bool away_ok) {
  // A large job's deletion takes a while (a slice at a time, the coordinator serving others
  // between slices): 30 s gave up on a 3,000-training-job job while it was still being deleted.
  const int read_timeout_s = action == "DeleteHyperParameterTuningJob" ? 1800 : 30;
  return Send(at, "/", body.dump(), {{"X-Amz-Target", "SageMaker." + action}}, "application/x-amz-json-1.1", away_ok,
              read_timeout_s);
}

}  // namespace

Json Call(const Endpoint& at, const std::string& action, const Json& body) {
  return ActionAnswer(at, SendAction(at, action, body, /*away_ok=*/false));
}

Result<Json> CallUnlessAway(const Endpoint& at, const std::string& action, const Json& body) {
  auto res = SendAction(at, action, body, /*away_ok=*/true);
  if (!res) return Unreachable(at, res);
  return ActionAnswer(at, res);
}

namespace {

Json Answer(const Endpoint& at, const std::string& target, const httplib::Result& res) {
  Json j = Json::parse(res->body, nullptr, false);
  if (res->status == 200 && !j.is_object()) {
    FailUnexpected(at.who + " at " + at.url, "not a JSON object (" + Snippet(res->body) + ")");
  }
  if (res->status != 200) {
    std::string msg = j.is_object() && j.contains("message") ? Text(j, "message") : res->body.substr(0, 300);
    if (res->status == 404 && !j.is_object()) {
      msg = at.who + " at " + at.url + " does not serve " + target + " (an older hpo?)";
    } else if (!j.is_object()) {  // as in Call: another server answered
      FailUnexpected(at.who + " at " + at.url, "HTTP " + std::to_string(res->status) + ", " + Snippet(res->body));
    }
    const std::string type = Text(j, "__type");
    FailAnswer(at, res->status, !type.empty() ? type : "HTTP " + std::to_string(res->status), msg,
               /*names_hint=*/target.rfind("/hpo/v1/workers", 0) != 0);
  }
  return j;
}

}  // namespace

Json Request(const Endpoint& at, const std::string& method, const std::string& target, const Json& body) {
  return Answer(at, target,
                Send(at, target, method == "GET" ? std::nullopt : std::optional<std::string>(body.dump()), {},
                     "application/json"));
}

Result<Json> GetUnlessAway(const Endpoint& at, const std::string& target) {
  auto res = Send(at, target, std::nullopt, {}, "application/json", /*away_ok=*/true);
  if (!res) return Unreachable(at, res);
  return Answer(at, target, res);
}

bool AwayWaiter::Wait(const Status& s) {
  // One that never answered is more likely a wrong URL than a restart: not waited for.
  if (s.code() != StatusCode::kUnavailable || !answered_) return false;
  if (!away_) {
    std::cerr << "hpo: " << s.message() << "\nhpo: waiting for it to answer again, to go on " << doing_
              << " (a coordinator that restarts keeps its history; Ctrl-C stops)\n";
    away_ = true;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  return true;
}

bool AwayWaiter::Answered() {
  answered_ = true;
  if (!away_) return false;
  std::cerr << "hpo: it answers again\n";
  away_ = false;
  return true;
}

}  // namespace hpo::cli
