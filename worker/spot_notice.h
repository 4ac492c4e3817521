// worker/spot_notice.h: spot interruption notices read from a metadata URL.
//
// What it is: cloud nodes learn that their capacity is being reclaimed from an instance metadata
// endpoint; `hpo worker --spot --spot-notice-url URL` polls one and treats a notice like SIGUSR1
// (worker/agent.h: the worker drains, its trials stop with their grace period and end
// Interrupted). One poll, by these rules, which cover the common endpoints without settings:
//   - HTTP 404: no notice (EC2's /latest/meta-data/spot/instance-action before a notice).
//   - HTTP 200 whose body, trimmed, is empty or "false" (any case): no notice (GCE's
//     /computeMetadata/v1/instance/preempted answers FALSE / TRUE).
//   - HTTP 200 with any other body: a notice; the body (cut to 1 KiB) is its text.
//   - HTTP 401: the endpoint wants an EC2 IMDSv2 session token: it is fetched with
//     `PUT <scheme>://<host>/latest/api/token` (X-aws-ec2-metadata-token-ttl-seconds: 300), kept,
//     and the poll repeated with X-aws-ec2-metadata-token.
//   Every request carries `Metadata-Flavor: Google` (GCE requires it; others ignore it).
//   Anything else (another status, no answer within the timeout) is an error: the caller logs it
//   and polls again; an unreachable endpoint is never taken for a notice.
//
// Thread safety: a NoticeUrl is used by one thread at a time (the agent's poller thread).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace hpo::worker {

class NoticeUrl {
 public:
  explicit NoticeUrl(std::string url, int64_t timeout_ms = 2000) : url_(std::move(url)), timeout_ms_(timeout_ms) {}
  // One poll: the notice's text, or "" when there is none. Errors: Unavailable (no answer, an
  // unexpected status, a failed token request), naming the URL and what happened.
  [[nodiscard]] Result<std::string> Poll();
  const std::string& url() const { return url_; }

 private:
  struct Answer {
    long code = 0;
    std::string body;
  };
  Result<Answer> Request(const std::string& method, const std::string& url, const std::string& header) const;
  std::string url_;
  int64_t timeout_ms_;
  std::string token_;  // IMDSv2 session token, once one was needed
};

}  // namespace hpo::worker
