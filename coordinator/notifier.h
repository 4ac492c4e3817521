// coordinator/notifier.h: state-change notifications, sent to webhooks in Amazon EventBridge's form.
//
// What it is: SageMaker tells EventBridge of every change of a training job's or tuning job's
// status ("SageMaker Training Job State Change", "SageMaker HyperParameter Tuning Job State
// Change"), and users hang their automation on those events (a Lambda that registers the best
// model, a message when a job fails). A coordinator started with `--notify URL` POSTs the same
// events, as JSON, to each URL:
//   {"version": "0", "id": UUID, "detail-type": ..., "source": "aws.sagemaker", "account": ...,
//    "time": "2026-12-06T15:04:05Z", "region": ..., "resources": [ARN],
//    "detail": DescribeTrainingJob's or DescribeHyperParameterTuningJob's answer}
// with, as in SageMaker's events, the detail's times in epoch milliseconds and its Tags as an
// object of key: value. A training job is notified at each change of its TrainingJobStatus or
// SecondaryStatus (Starting, Downloading, Training, ..., Completed), a tuning job at each change
// of its status (Deleting included). An EventPattern (coordinator/event_pattern.h), the JSON of an
// EventBridge rule, chooses the events a target gets.
//
// Delivery: at least once, in order per target, surviving crashes. The core writes each event to
// its store in the transaction of the change it tells (CoreOptions::notify, made by
// NotifyFunction); the Notifier's thread per target POSTs the oldest waiting one, and deletes it
// once the target answered 2xx. A refused connection, a timeout, 5xx, 429, 408, 409, 401 or 407
// is tried again after 1 s, doubling to 5 min, for 24 h from the event, as EventBridge retries
// (the events behind it wait: order is kept); another answer (a 404, a 400) drops the event at
// once, logged with what the target said. Receivers tell repeats apart by the event's `id` (also
// the X-Hpo-Event-Id header). With a secret, every request carries X-Hpo-Signature-256:
// sha256=HEX, the HMAC-SHA256 of the body under the secret (as GitHub signs its webhooks).
// A chat target (`--notify-chat`, NotifyTarget::Format::kChat) gets a line of text instead, for
// the events a person wants in a channel: a tuning job's end, a training job's failure.
// Events waiting for a target that is no longer configured are dropped when the Notifier starts
// (DropUnconfigured; the commands call it also when no target is given).
//
// Threads: a Notifier runs one thread per target (Run), reaching the store only through the
// dispatcher's WithCore (the core's mutex); POSTs happen without it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/core.h"
#include "coordinator/dispatcher.h"
#include "coordinator/event_pattern.h"

namespace hpo::coordinator {

struct NotifyTarget {
  std::string url;                      // http:// or https://
  std::optional<EventPattern> pattern;  // only the events it matches; none: every event
  std::string secret;                   // HMAC-SHA256 key of X-Hpo-Signature-256; "": unsigned
  // kChat: a chat's incoming webhook (Slack, Mattermost, Google Chat, Rocket.Chat, Discord,
  // Microsoft Teams; ChatBody): only a tuning job's end (Completed, Failed, Stopped) and a
  // training job's failure, each as one line a person reads (ChatText), and only those the
  // pattern matches.
  enum class Format { kEventBridge, kChat };
  Format format = Format::kEventBridge;
};

// The line a chat target gets for `event` (StateChangeEvent's), or "" when it gets none:
//   Tuning job NAME Completed after 3m 12s: 12 training jobs (11 Completed, 1 Failed); best
//   NAME-007-1a2b3c4d, validation:auc 0.98742 (Maximize).
//   Training job NAME-003-... of tuning job NAME Failed: AlgorithmError: ...
std::string ChatText(const nlohmann::ordered_json& event);

// The body a chat webhook at `url` takes for `text`, by the URL's host:
//   discord.com, discordapp.com (…/api/webhooks/…, not its /slack form) {"content": text}, cut to
//                                          Discord's 2000 characters;
//   *.logic.azure.com, *.powerplatform.com (Microsoft Teams' Workflows webhooks) a message with
//                                          one Adaptive Card holding the text;
//   anything else (Slack, Mattermost, Google Chat, Rocket.Chat, Teams' older connectors at
//   *.webhook.office.com, Discord's …/slack)  {"text": text}.
std::string ChatBody(const std::string& url, const std::string& text);

struct NotifierOptions {
  std::vector<NotifyTarget> targets;
  int64_t poll_ms = 200;                      // how often a target's thread looks for events
  int64_t timeout_ms = 10000;                 // one POST, connecting included
  int64_t first_retry_ms = 1000;              // then doubling,
  int64_t max_retry_ms = 300000;              // up to this,
  int64_t give_up_after_ms = 24 * 3600000LL;  // for this long after the event
  std::function<void(const std::string&)> log;  // deliveries dropped, targets failing; default stderr
};

// The EventBridge event of `change` as the core is now (the detail's document as
// http_api.h ResourceDocument builds it, with its `definitions` cache; region and account from
// the core's options), at `now_ms`; nullopt when the resource is gone.
std::optional<nlohmann::ordered_json> StateChangeEvent(CoordinatorCore& c, const StateChange& change, int64_t now_ms,
                                                       std::map<std::string, nlohmann::ordered_json>* definitions =
                                                           nullptr);

// CoreOptions::notify for these targets: the change's event, one Notification per target whose
// pattern it matches (a chat target: {"text": ChatText}, when there is a line).
std::function<std::vector<Notification>(CoordinatorCore&, const StateChange&)> NotifyFunction(
    std::vector<NotifyTarget> targets, std::function<int64_t()> now_ms);

class Notifier {
 public:
  // `store` is the core's (reached under the dispatcher's WithCore only).
  Notifier(Dispatcher* dispatcher, JobStore* store, NotifierOptions options);
  // Delivers until `stop`: first drops what waits for targets not configured, then one thread
  // per target. Returns once they have ended: a POST in flight is abandoned within about a second
  // of `stop` (a receiver that hangs held a shutdown for the whole timeout_ms), its event left
  // waiting, no attempt counted, for the next start (the receiver may have it: at least once).
  void Run(const std::atomic<bool>& stop);
  // One round for one target (tests; Run's threads loop over it): posts its waiting events in
  // order while they are due and taken (at most `max`), records the outcome of each. Returns how
  // many were delivered. A target's first round in this process does not wait for the back-off
  // an earlier process set (the receiver may be back since). `stop` as Run's.
  size_t DeliverDue(const NotifyTarget& target, size_t max = 100, const std::atomic<bool>* stop = nullptr);
  // Drops the waiting events of targets not in the options (logged per target). Returns how many.
  size_t DropUnconfigured();

  uint64_t delivered() const { return delivered_; }
  uint64_t retried() const { return retried_; }  // failed attempts that will be tried again
  uint64_t dropped() const { return dropped_; }

 private:
  void Log(const std::string& line) const;
  Dispatcher* d_;
  JobStore* store_;
  NotifierOptions options_;
  std::atomic<uint64_t> delivered_{0}, retried_{0}, dropped_{0};
  std::mutex rounds_mu_;
  std::set<std::string> rounds_;  // targets that had a round in this process (DeliverDue)
};

}  // namespace hpo::coordinator
