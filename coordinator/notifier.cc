#include "coordinator/notifier.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string_view>
#include <thread>

#include "common/aws_sigv4.h"
#include "common/http_client.h"
#include "coordinator/http_api.h"
#include "proto/codec.h"

namespace hpo::coordinator {
namespace {

using Json = nlohmann::ordered_json;

// SageMaker's events carry the detail's times as epoch milliseconds, where the Describe answers
// have epoch seconds: every number under a key that ends in Time or Timestamp.
void TimesToMillis(Json& j) {
  if (j.is_array()) {
    for (Json& e : j) TimesToMillis(e);
    return;
  }
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const bool time = (key.size() >= 4 && key.compare(key.size() - 4, 4, "Time") == 0) ||
                      (key.size() >= 9 && key.compare(key.size() - 9, 9, "Timestamp") == 0);
    if (time && it->is_number()) {
      *it = static_cast<int64_t>(std::llround(it->get<double>() * 1000.0));
    } else {
      TimesToMillis(*it);
    }
  }
}

std::string NewEventId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const uint64_t a = rng(), b = rng();
  char id[40];
  // A version 4 UUID.
  std::snprintf(id, sizeof id, "%08x-%04x-4%03x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return id;
}

// The id of an event as StateChangeEvent writes it ({"version":"0","id":"...), read without
// parsing the body; "" for anything else (a chat's line).
std::string EventId(const std::string& body) {
  static constexpr std::string_view kHead = R"({"version":"0","id":")";
  if (body.compare(0, kHead.size(), kHead) != 0) return "";
  const size_t end = body.find('"', kHead.size());
  return end == std::string::npos ? "" : body.substr(kHead.size(), end - kHead.size());
}

// Whether an answer is worth trying again: what EventBridge retries for its API destinations.
bool Retryable(long status) {
  return status >= 500 || status == 429 || status == 408 || status == 409 || status == 401 || status == 407;
}

}  // namespace

std::optional<Json> StateChangeEvent(CoordinatorCore& c, const StateChange& change, int64_t now_ms,
                                     std::map<std::string, Json>* definitions) {
  const bool training = change.kind == StateChange::Kind::kTrainingJob;
  std::optional<Json> detail = ResourceDocument(c, training, change.name, now_ms, definitions);
  if (!detail) return std::nullopt;
  TimesToMillis(*detail);
  Json tags = Json::object();
  for (const Json& t : (*detail)["Tags"]) tags[t.value("Key", "")] = t.value("Value", "");
  (*detail)["Tags"] = std::move(tags);
  Json event;
  event["version"] = "0";
  event["id"] = NewEventId();
  event["detail-type"] =
      training ? "SageMaker Training Job State Change" : "SageMaker HyperParameter Tuning Job State Change";
  event["source"] = "aws.sagemaker";
  event["account"] = c.options().account_id;
  event["time"] = proto::FormatRfc3339(proto::Timestamp{now_ms / 1000 * 1000});
  event["region"] = c.options().region;
  event["resources"] = Json::array({training ? c.TrainingJobArn(change.name) : c.JobArn(change.name)});
  event["detail"] = std::move(*detail);
  return event;
}

namespace {

// "3m 12s", "1h 04m", "45s", from milliseconds.
std::string Took(int64_t ms) {
  const int64_t s = std::max<int64_t>(0, ms) / 1000;
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", static_cast<long long>(s / 3600), static_cast<long long>(s % 3600 / 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  }
  return buf;
}

}  // namespace

std::string ChatText(const Json& event) {
  const Json& d = event.value("detail", Json::object());
  if (event.value("detail-type", "") == "SageMaker Training Job State Change") {
    if (d.value("TrainingJobStatus", "") != "Failed") return "";
    const std::string arn = d.value("TuningJobArn", "");
    return "Training job " + d.value("TrainingJobName", "") +
           (arn.empty() ? "" : " of tuning job " + arn.substr(arn.rfind('/') + 1)) +
           " Failed: " + d.value("FailureReason", "no reason given");
  }
  const std::string status = d.value("HyperParameterTuningJobStatus", "");
  if (status != "Completed" && status != "Failed" && status != "Stopped") return "";
  std::string text = "Tuning job " + d.value("HyperParameterTuningJobName", "") + " " + status;
  if (d.contains("HyperParameterTuningEndTime") && d.contains("CreationTime")) {
    text += " after " + Took(d.value("HyperParameterTuningEndTime", int64_t{0}) - d.value("CreationTime", int64_t{0}));
  }
  const Json& counters = d.value("TrainingJobStatusCounters", Json::object());
  int64_t total = 0;
  std::string parts;
  for (const auto& [name, label] : std::vector<std::pair<std::string, std::string>>{
           {"Completed", "Completed"}, {"InProgress", "InProgress"}, {"Stopped", "Stopped"},
           {"NonRetryableError", "Failed"}, {"RetryableError", "Failed, retryable"}}) {
    const int64_t n = counters.value(name, int64_t{0});
    total += n;
    if (n > 0) parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " " + label;
  }
  text += ": " + std::to_string(total) + " training job" + (total == 1 ? "" : "s") +
          (parts.empty() ? "" : " (" + parts + ")");
  if (d.contains("BestTrainingJob")) {
    const Json& best = d["BestTrainingJob"];
    const Json& metric = best.value("FinalHyperParameterTuningJobObjectiveMetric", Json::object());
    char value[32];
    std::snprintf(value, sizeof value, "%.6g", metric.value("Value", 0.0));
    const std::string type =
        d.value("HyperParameterTuningJobConfig", Json::object()).value("HyperParameterTuningJobObjective", Json::object())
            .value("Type", "");
    text += "; best " + best.value("TrainingJobName", "") + ", " + metric.value("MetricName", "") + " " + value +
            (type.empty() ? "" : " (" + type + ")");
  }
  if (!d.value("FailureReason", "").empty()) text += "; " + d.value("FailureReason", "");
  // One full stop: SageMaker's own reasons end with theirs ("... to get more details.").
  return text.back() == '.' ? text : text + ".";
}

std::string ChatBody(const std::string& url, const std::string& text) {
  // The host, lower-cased: between "://" and the first '/', ':' or '?' (no user info in a webhook).
  const size_t scheme = url.find("://");
  const size_t from = scheme == std::string::npos ? 0 : scheme + 3;
  std::string host = url.substr(from, url.find_first_of("/:?#", from) - from);
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto is = [&](const std::string& domain) {
    return host == domain || (host.size() > domain.size() && host.ends_with("." + domain));
  };
  std::string path = url.substr(std::min(url.size(), from + host.size()));
  path = path.substr(0, path.find_first_of("?#"));  // .../slack?wait=true is still the /slack form
  auto dump = [](const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); };
  if ((is("discord.com") || is("discordapp.com")) && !path.ends_with("/slack")) {
    std::string content = text;
    if (content.size() > 2000) {  // Discord refuses more; cut at a character, not inside one
      size_t cut = 1997;
      while (cut > 0 && (static_cast<unsigned char>(content[cut]) & 0xC0) == 0x80) --cut;
      content = content.substr(0, cut) + "...";
    }
    return dump(Json{{"content", content}});
  }
  if (is("logic.azure.com") || is("powerplatform.com")) {
    const Json card = {{"$schema", "http://adaptivecards.io/schemas/adaptive-card.json"},
                       {"type", "AdaptiveCard"},
                       {"version", "1.4"},
                       {"body", Json::array({Json{{"type", "TextBlock"}, {"text", text}, {"wrap", true}}})}};
    return dump(Json{{"type", "message"},
                     {"attachments", Json::array({Json{{"contentType", "application/vnd.microsoft.card.adaptive"},
                                                       {"contentUrl", nullptr},
                                                       {"content", card}}})}});
  }
  // Slack reads <...> as a link or mention and & as an escape in `text`: its message-formatting
  // rules ask for &amp;, &lt; and &gt; (a failure reason with <b> lost text there; a notify pass).
  if (is("slack.com")) {
    std::string escaped;
    for (char c : text) escaped += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    return dump(Json{{"text", escaped}});
  }
  // Nothing but the text: Google Chat refuses a member it does not know.
  return dump(Json{{"text", text}});
}

std::function<std::vector<Notification>(CoordinatorCore&, const StateChange&)> NotifyFunction(
    std::vector<NotifyTarget> targets, std::function<int64_t()> now_ms) {
  // Each definition's request form, kept between calls (the core calls this under its lock, one
  // at a time): encoded again for every event, it was most of an event's cost. Bounded: a
  // coordinator's definitions come and go with its jobs.
  auto definitions = std::make_shared<std::map<std::string, Json>>();
  return [targets = std::move(targets), now_ms = std::move(now_ms), definitions](CoordinatorCore& c,
                                                                                  const StateChange& change) {
    std::vector<Notification> out;
    const int64_t now = now_ms();
    if (definitions->size() > 256) definitions->clear();
    std::optional<Json> event = StateChangeEvent(c, change, now, definitions.get());
    if (!event) return out;
    std::string body;
    std::optional<std::string> chat;  // the line, made once (ChatText) for every chat target
    for (const NotifyTarget& t : targets) {
      if (t.pattern && !t.pattern->Matches(*event)) continue;
      if (t.format == NotifyTarget::Format::kChat) {
        if (!chat) chat = ChatText(*event);
        if (chat->empty()) continue;
        out.push_back({t.url, ChatBody(t.url, *chat), now});
        continue;
      }
      if (body.empty()) body = event->dump(-1, ' ', false, Json::error_handler_t::replace);
      out.push_back({t.url, body, now});
    }
    return out;
  };
}

Notifier::Notifier(Dispatcher* dispatcher, JobStore* store, NotifierOptions options)
    : d_(dispatcher), store_(store), options_(std::move(options)) {}

void Notifier::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << line << "\n";
  }
}

size_t Notifier::DropUnconfigured() {
  size_t dropped = 0;
  std::map<std::string, size_t> per_target;
  d_->WithCore([&](CoordinatorCore&) {
    auto targets = store_->NotificationTargets();
    if (!targets.ok()) return;
    for (const auto& waiting : *targets) {
      const std::string& url = waiting.first;  // (clang 14 captures no structured binding)
      const bool known = std::any_of(options_.targets.begin(), options_.targets.end(),
                                     [&](const NotifyTarget& t) { return t.url == url; });
      if (!known && store_->DeleteNotificationsOf(url).ok()) per_target[url] = static_cast<size_t>(waiting.second);
    }
  });
  for (const auto& [target, n] : per_target) {
    Log("hpo coordinator: notifications: dropped " + std::to_string(n) + " event(s) waiting for " + target +
        ", which is no longer a --notify target");
    dropped += n;
  }
  dropped_ += dropped;
  return dropped;
}

size_t Notifier::DeliverDue(const NotifyTarget& target, size_t max, const std::atomic<bool>* stop) {
  // In rounds: the target's oldest rows read at once, posted in order over one connection until
  // one fails, then what came of them written at once, so the state database takes one sync per
  // round, not one per event (a sync per event held delivery to a few hundred a second).
  constexpr size_t kRound = 64;
  HttpClient client;
  size_t delivered = 0;
  while (delivered < max && !(stop && stop->load())) {
    std::vector<NotificationRow> rows;
    d_->WithCore([&](CoordinatorCore&) {
      auto loaded = store_->LoadNotifications(target.url, 0, std::min(kRound, max - delivered));
      if (loaded.ok()) rows = std::move(loaded).value();
    });
    // The oldest waits: those behind it too. Not at a process's first round for the target: a
    // coordinator started again (the receiver back meanwhile) waited out the old process's
    // back-off, up to 5 minutes, saying nothing (a notifications pass).
    const bool first_round = [&] {
      std::lock_guard<std::mutex> lock(rounds_mu_);
      return rounds_.insert(target.url).second;
    }();
    if (rows.empty() || (!first_round && rows.front().next_ms > d_->Now())) break;
    struct Dropped {
      std::string job, trial, message;
    };
    std::vector<int64_t> done;  // taken, or dropped
    std::vector<Dropped> dropped;
    std::optional<NotificationRow> retry;  // failed, to be tried again (rows behind it wait)
    for (NotificationRow& row : rows) {
      std::vector<std::string> headers = {"Content-Type: application/json", "User-Agent: hpo-notifier"};
      if (const std::string id = EventId(row.body); !id.empty()) {
        headers.push_back("X-Hpo-Event-Id: " + id);  // a chat's line has none
      }
      if (!target.secret.empty()) {
        const std::string mac = aws::HmacSha256(target.secret, row.body);
        headers.push_back("X-Hpo-Signature-256: sha256=" +
                          aws::Hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size()));
      }
      Result<HttpReply> reply = client.Post(target.url, headers, row.body, options_.timeout_ms, stop);
      if (!reply.ok() && stop && stop->load()) break;  // abandoned for a shutdown: waits, as it was
      const bool taken = reply.ok() && reply->status >= 200 && reply->status < 300;
      const bool again = !reply.ok() || Retryable(reply->status);
      const int64_t after = d_->Now();
      if (taken) {
        done.push_back(row.id);
        ++delivered;
        ++delivered_;
        continue;
      }
      std::string error;
      if (!reply.ok()) {
        error = reply.status().message();
      } else {
        std::string said = reply->body.substr(0, 200);
        std::replace(said.begin(), said.end(), '\n', ' ');
        error = target.url + " answered " + std::to_string(reply->status) + (said.empty() ? "" : ": " + said);
      }
      if (again && after - row.created_ms < options_.give_up_after_ms) {
        ++retried_;
        row.last_error = error;
        ++row.attempts;
        row.next_ms = after + std::min<int64_t>(options_.max_retry_ms,
                                                options_.first_retry_ms << std::min(row.attempts - 1, 20));
        // A hiccup is not worth a line; a URL failing for seconds is (its 3rd attempt, then every 10th).
        if (row.attempts == 3 || row.attempts % 10 == 0) {
          Log("hpo coordinator: notifications: " + error + " (attempt " + std::to_string(row.attempts) + ", for " +
              std::to_string((after - row.created_ms) / 1000) + " s); trying again, the events behind it wait");
        }
        retry = row;
        break;
      }
      ++dropped_;
      done.push_back(row.id);
      // Said in the log and the history (hpo events, the metrics), under the job and training job
      // it told of.
      const Json event = Json::parse(row.body, nullptr, false);
      const Json detail = event.is_object() ? event.value("detail", Json::object()) : Json::object();
      Dropped d{detail.value("HyperParameterTuningJobName", ""), detail.value("TrainingJobName", ""), ""};
      if (d.job.empty()) {
        const std::string arn = detail.value("TuningJobArn", "");
        d.job = arn.substr(arn.rfind('/') + 1);
      }
      const std::string state = detail.value("HyperParameterTuningJobStatus", detail.value("TrainingJobStatus", "")) +
                                (detail.contains("SecondaryStatus") ? "/" + detail.value("SecondaryStatus", "") : "");
      d.message = (state.empty() ? std::string("an event") : "the " + state + " event of " +
                                                              (d.trial.empty() ? d.job : d.trial)) +
                  " for " + target.url + ", after " + std::to_string(row.attempts + 1) + " attempt(s): " + error +
                  (again ? " (tried for " + std::to_string(options_.give_up_after_ms / 1000) + " s)"
                         : " (not tried again: only connection failures, timeouts, 5xx, 429, 408, 409, 401 and "
                           "407 are)");
      dropped.push_back(std::move(d));
    }
    // Told one by one, but a round's run of them (a URL down for a day: its events expire in a row)
    // as its first few and a count.
    constexpr size_t kToldEach = 3;
    for (size_t i = 0; i < dropped.size() && i < kToldEach; ++i) {
      Log("hpo coordinator: notifications: dropped " + dropped[i].message);
    }
    // The rest counted per tuning job, each count in that job's history (one record for them all,
    // of no job, was missing from `hpo events JOB`).
    std::map<std::string, std::pair<size_t, std::string>> rest;  // job -> count, the last message
    for (size_t i = kToldEach; i < dropped.size(); ++i) {
      auto& [count, last] = rest[dropped[i].job];
      ++count;
      last = dropped[i].message;
    }
    for (const auto& [job, counted] : rest) {
      Log("hpo coordinator: notifications: dropped " + std::to_string(counted.first) + " more event(s)" +
          (job.empty() ? "" : " of " + job) + " for " + target.url + ", the last: " + counted.second);
    }
    const int64_t now = d_->Now();
    d_->WithCore([&](CoordinatorCore& c) {
      // What was taken or dropped is the head of the target's queue, in order: one statement.
      if (!done.empty()) (void)store_->DeleteNotificationsOf(target.url, done.back());
      if (retry) (void)store_->UpdateNotification(retry->id, retry->attempts, retry->next_ms, retry->last_error);
      for (size_t i = 0; i < dropped.size() && i < kToldEach; ++i) {
        c.RecordEvent(now, "NotificationDropped", dropped[i].job, dropped[i].trial, "dropped " + dropped[i].message);
      }
      for (const auto& [job, counted] : rest) {
        c.RecordEvent(now, "NotificationDropped", job, "",
                      "dropped " + std::to_string(counted.first) + " more event(s)" +
                          (job.empty() ? "" : " of " + job) + " for " + target.url + ", the last: " + counted.second);
      }
    });
    if (retry || rows.size() < kRound) break;
  }
  return delivered;
}

void Notifier::Run(const std::atomic<bool>& stop) {
  DropUnconfigured();
  // What an earlier process left undelivered, said once (its back-off is not waited out).
  std::map<std::string, int64_t> waiting;
  d_->WithCore([&](CoordinatorCore&) {
    if (auto targets = store_->NotificationTargets(); targets.ok()) waiting = std::move(targets).value();
  });
  for (const auto& [url, n] : waiting) {
    if (n > 0) {
      Log("hpo coordinator: notifications: " + std::to_string(n) + " event(s) wait for " + url +
          " from before this start; trying them now");
    }
  }
  std::vector<std::thread> threads;
  for (const NotifyTarget& t : options_.targets) {
    threads.emplace_back([this, &t, &stop] {
      while (!stop.load()) {
        DeliverDue(t, 100, &stop);
        for (int64_t waited = 0; waited < options_.poll_ms && !stop.load(); waited += 50) {
          std::this_thread::sleep_for(std::chrono::milliseconds(std::min<int64_t>(50, options_.poll_ms)));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}

}  // namespace hpo::coordinator
