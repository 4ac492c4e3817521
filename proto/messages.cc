#include "proto/messages.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <exception>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/text.h"

namespace hpo::proto::wire {

// The variant's order is the MsgType order; TypeOf and the decoder table rely on it.
template <MsgType kType, class T>
constexpr bool kAt =
    std::is_same_v<std::variant_alternative_t<static_cast<size_t>(kType) - 1, Message>, T>;
static_assert(kAt<MsgType::kRegister, Register> && kAt<MsgType::kRegisterAck, RegisterAck> &&
              kAt<MsgType::kHeartbeat, Heartbeat> && kAt<MsgType::kAssignTrial, AssignTrial> &&
              kAt<MsgType::kTrialStarted, TrialStarted> &&
              kAt<MsgType::kMetricPoints, MetricPoints> &&
              kAt<MsgType::kTrialExited, TrialExited> && kAt<MsgType::kStopTrial, StopTrial> &&
              kAt<MsgType::kInterruptionNotice, InterruptionNotice> && kAt<MsgType::kAck, Ack> &&
              kAt<MsgType::kError, Error> && kAt<MsgType::kLogLines, LogLines> &&
              kAt<MsgType::kHeldTrials, HeldTrials> && kAt<MsgType::kReleaseTrials, ReleaseTrials> &&
              kAt<MsgType::kTrialStaging, TrialStaging> && kAt<MsgType::kGangPeersEnded, GangPeersEnded> &&
              kAt<MsgType::kDiscardHandOver, DiscardHandOver> && std::variant_size_v<Message> == 17);

const char* MsgTypeName(MsgType type) {
  switch (type) {
    case MsgType::kRegister:
      return "Register";
    case MsgType::kRegisterAck:
      return "RegisterAck";
    case MsgType::kHeartbeat:
      return "Heartbeat";
    case MsgType::kAssignTrial:
      return "AssignTrial";
    case MsgType::kTrialStarted:
      return "TrialStarted";
    case MsgType::kMetricPoints:
      return "MetricPoints";
    case MsgType::kTrialExited:
      return "TrialExited";
    case MsgType::kStopTrial:
      return "StopTrial";
    case MsgType::kInterruptionNotice:
      return "InterruptionNotice";
    case MsgType::kAck:
      return "Ack";
    case MsgType::kError:
      return "Error";
    case MsgType::kLogLines:
      return "LogLines";
    case MsgType::kHeldTrials:
      return "HeldTrials";
    case MsgType::kReleaseTrials:
      return "ReleaseTrials";
    case MsgType::kTrialStaging:
      return "TrialStaging";
    case MsgType::kGangPeersEnded:
      return "GangPeersEnded";
    case MsgType::kDiscardHandOver:
      return "DiscardHandOver";
    case MsgType::kInvalid:
      break;
  }
  return "Invalid";
}

MsgType TypeOf(const Message& message) { return static_cast<MsgType>(message.index() + 1); }

Status CheckProtocolVersion(uint32_t theirs) {
  if (theirs == kProtocolVersion) return Status::Ok();
  return Status::FailedPrecondition("protocol version mismatch: this build speaks " +
                                    std::to_string(kProtocolVersion) + ", peer speaks " +
                                    std::to_string(theirs) + "; upgrade the older side");
}

namespace {

// ---- UTF-8 ------------------------------------------------------------------------------------

// Code points in s if it is valid UTF-8 without NUL, else nullopt.
std::optional<size_t> CountChars(std::string_view s) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '\0') return std::nullopt;
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return std::nullopt;
    i += n;
    ++chars;
  }
  return chars;
}

// ---- field paths ------------------------------------------------------------------------------

// A field's path, rendered only when there is an error: Root("AssignTrial"), then .field, [i],
// ["key"].
struct Path {
  const Path* parent = nullptr;
  std::string_view name;  // root or field name, or map key
  size_t index = 0;
  enum class Kind { kRoot, kField, kIndex, kKey } kind = Kind::kRoot;

  std::string Render() const {
    std::string out = parent ? parent->Render() : std::string();
    switch (kind) {
      case Kind::kRoot:
        out += name;
        break;
      case Kind::kField:
        out += '.';
        out += name;
        break;
      case Kind::kIndex:
        out += '[' + std::to_string(index) + ']';
        break;
      case Kind::kKey: {
        out += "[\"";
        size_t shown = 0;
        for (unsigned char c : name) {
          if (++shown > 64) {
            out += "...";
            break;
          }
          if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out += static_cast<char>(c);
          } else {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          }
        }
        out += "\"]";
        break;
      }
    }
    return out;
  }
};

Path Root(std::string_view type_name) { return Path{nullptr, type_name, 0, Path::Kind::kRoot}; }
Path Field(const Path& p, std::string_view name) { return Path{&p, name, 0, Path::Kind::kField}; }
Path Index(const Path& p, size_t i) { return Path{&p, {}, i, Path::Kind::kIndex}; }
Path Key(const Path& p, std::string_view key) { return Path{&p, key, 0, Path::Kind::kKey}; }

Status Bad(const Path& p, std::string_view what) {
  return Status::InvalidArgument(p.Render() + ": " + std::string(what));
}

// ---- value checks (Validate) ------------------------------------------------------------------

Status Utf8(const Path& p, const std::string& s) {
  if (!CountChars(s)) return Bad(p, "must be valid UTF-8 without NUL bytes");
  return Status::Ok();
}

// Text measured in characters (code points).
Status Text(const Path& p, const std::string& s, size_t min_chars, size_t max_chars) {
  const std::optional<size_t> n = CountChars(s);
  if (!n) return Bad(p, "must be valid UTF-8 without NUL bytes");
  if (*n < min_chars)
    return Bad(p, min_chars == 1 ? "must not be empty"
                                 : "must be at least " + std::to_string(min_chars) + " characters");
  if (*n > max_chars) {
    return Bad(p, "must be at most " + std::to_string(max_chars) + " characters, got " +
                      std::to_string(*n));
  }
  return Status::Ok();
}

// Text measured in bytes.
Status Bytes(const Path& p, const std::string& s, size_t min_bytes, size_t max_bytes) {
  HPO_RETURN_IF_ERROR(Utf8(p, s));
  if (s.size() < min_bytes)
    return Bad(p, min_bytes == 1 ? "must not be empty"
                                 : "must be at least " + std::to_string(min_bytes) + " bytes");
  if (s.size() > max_bytes) {
    return Bad(p, "must be at most " + std::to_string(max_bytes) + " bytes, got " +
                      std::to_string(s.size()));
  }
  return Status::Ok();
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// SageMaker resource names: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,max-1}. Also what keeps a trial name safe
// as a directory name.
Status ResourceName(const Path& p, const std::string& s, size_t max_len) {
  if (s.empty()) return Bad(p, "must not be empty");
  const bool ok = s.size() <= max_len && IsAlnum(s.front()) && IsAlnum(s.back()) &&
                  std::all_of(s.begin(), s.end(), [](char c) { return IsAlnum(c) || c == '-'; });
  if (!ok) {
    return Bad(p, "must be 1-" + std::to_string(max_len) +
                      " letters, digits and inner hyphens ([a-zA-Z0-9](-*[a-zA-Z0-9])*)");
  }
  return Status::Ok();
}

// 1-max_len characters, each alphanumeric or in `extra`.
Status Token(const Path& p, const std::string& s, size_t max_len, std::string_view extra) {
  if (s.empty()) return Bad(p, "must not be empty");
  const bool ok = s.size() <= max_len && std::all_of(s.begin(), s.end(), [&](char c) {
                    return IsAlnum(c) || extra.find(c) != std::string_view::npos;
                  });
  if (!ok) {
    return Bad(p, "must be 1-" + std::to_string(max_len) + " characters from [A-Za-z0-9" +
                      std::string(extra) + "]");
  }
  return Status::Ok();
}

constexpr size_t kMaxWorkerIdChars = 128;
constexpr std::string_view kWorkerIdExtra = "._:@-";
Status WorkerId(const Path& p, const std::string& s) { return Token(p, s, kMaxWorkerIdChars, kWorkerIdExtra); }
}  // namespace

bool IsWorkerId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxWorkerIdChars && std::all_of(id.begin(), id.end(), [](char c) {
           return IsAlnum(c) || kWorkerIdExtra.find(c) != std::string_view::npos;
         });
}

namespace {
Status HostLabel(const Path& p, const std::string& s) { return Token(p, s, 64, "._-"); }

// A host name or address as a peer dials it: 1-255 printable ASCII characters, no spaces.
Status HostAddress(const Path& p, const std::string& s) {
  if (s.empty()) return Bad(p, "must not be empty");
  const bool ok = s.size() <= 255 &&
                  std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (!ok) return Bad(p, "must be 1-255 printable ASCII characters without spaces");
  return Status::Ok();
}

Status OneOf(const Path& p, const std::string& s, std::initializer_list<std::string_view> allowed,
             bool empty_ok) {
  if (empty_ok && s.empty()) return Status::Ok();
  for (std::string_view a : allowed) {
    if (s == a) return Status::Ok();
  }
  std::string list;
  for (std::string_view a : allowed) {
    if (!list.empty()) list += ", ";
    list += a;
  }
  std::string shown = s.size() > 64 ? s.substr(0, 64) + "..." : s;
  if (!CountChars(shown)) shown = "(not UTF-8)";
  return Bad(
      p, "must be one of " + list + (empty_ok ? " (or empty)" : "") + ", got \"" + shown + "\"");
}

template <class T, class U>
Status AtLeast(const Path& p, T value, U min) {
  if (value < min)
    return Bad(p, "must be >= " + std::to_string(min) + ", got " + std::to_string(value));
  return Status::Ok();
}

template <class T, class U>
Status AtMost(const Path& p, T value, U max) {
  if (value > max)
    return Bad(p, "must be <= " + std::to_string(max) + ", got " + std::to_string(value));
  return Status::Ok();
}

Status MaxEntries(const Path& p, size_t n, size_t max) {
  if (n > max)
    return Bad(p,
               "must have at most " + std::to_string(max) + " entries, got " + std::to_string(n));
  return Status::Ok();
}

Status Finite(const Path& p, double v) {
  if (!std::isfinite(v)) return Bad(p, "must be finite");
  return Status::Ok();
}

// (trial, attempt) of a trial-scoped message.
Status TrialAttempt(const Path& root, const std::string& trial, uint32_t attempt) {
  HPO_RETURN_IF_ERROR(ResourceName(Field(root, "trial"), trial, 63));
  return AtLeast(Field(root, "attempt"), attempt, 1u);
}

// HeldTrials.trials, ReleaseTrials.trials: 1-kMaxHeldTrials unique training job names.
Status TrialNames(const Path& p, const std::vector<std::string>& names) {
  if (names.empty()) return Bad(p, "must not be empty");
  HPO_RETURN_IF_ERROR(MaxEntries(p, names.size(), limits::kMaxHeldTrials));
  std::set<std::string_view> seen;
  for (size_t i = 0; i < names.size(); ++i) {
    const Path item = Index(p, i);
    HPO_RETURN_IF_ERROR(ResourceName(item, names[i], 63));
    if (!seen.insert(names[i]).second) return Bad(item, "duplicate of an earlier entry (" + names[i] + ")");
  }
  return Status::Ok();
}

Status AttemptRefs(const Path& p, const std::vector<AttemptRef>& refs) {
  HPO_RETURN_IF_ERROR(MaxEntries(p, refs.size(), 4096));
  std::set<std::pair<std::string_view, uint32_t>> seen;
  for (size_t i = 0; i < refs.size(); ++i) {
    const Path item = Index(p, i);
    HPO_RETURN_IF_ERROR(TrialAttempt(item, refs[i].trial, refs[i].attempt));
    if (!seen.emplace(refs[i].trial, refs[i].attempt).second) {
      return Bad(item, "duplicate of an earlier entry (" + refs[i].trial + ", attempt " +
                           std::to_string(refs[i].attempt) + ")");
    }
  }
  return Status::Ok();
}

// A map's size, then each key and value with the given checks.
template <class KeyCheck, class ValueCheck>
Status Entries(const Path& p, const StringMap& map, size_t max, KeyCheck key_check,
               ValueCheck value_check) {
  HPO_RETURN_IF_ERROR(MaxEntries(p, map.size(), max));
  for (const auto& [key, value] : map) {
    const Path item = Key(p, key);
    HPO_RETURN_IF_ERROR(key_check(item, key));
    HPO_RETURN_IF_ERROR(value_check(item, value));
  }
  return Status::Ok();
}

// Names must be unique within a list: returns an error naming the first repeat.
class UniqueNames {
 public:
  Status Add(const Path& p, std::string_view name) {
    if (!seen_.insert(name).second) return Bad(p, "duplicate name \"" + std::string(name) + "\"");
    return Status::Ok();
  }
  bool Contains(std::string_view name) const { return seen_.count(name) > 0; }

 private:
  std::set<std::string_view> seen_;
};

}  // namespace

// ---- Validate() -------------------------------------------------------------------------------

Status Register::Validate() const {
  const Path root = Root("Register");
  if (Status s = CheckProtocolVersion(protocol_version); !s.ok()) {
    return Status::FailedPrecondition("Register: " + s.message());
  }
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  if (session == 0) return Bad(Field(root, "session"), "must be >= 1");
  HPO_RETURN_IF_ERROR(HostAddress(Field(root, "host"), host));
  HPO_RETURN_IF_ERROR(Text(Field(root, "work_dir"), work_dir, 0, 4096));
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "instance_type"), instance_type, 0, 64));
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "instance_group"), instance_group, 0, 64));
  HPO_RETURN_IF_ERROR(Entries(
      Field(root, "labels"), labels, 64,
      [](const Path& p, const std::string& k) { return Bytes(p, k, 1, 253); },
      [](const Path& p, const std::string& v) { return Bytes(p, v, 0, 1024); }));
  const Path gpus_path = Field(root, "gpus");
  HPO_RETURN_IF_ERROR(MaxEntries(gpus_path, gpus.size(), 64));
  std::set<uint32_t> indices;
  for (size_t i = 0; i < gpus.size(); ++i) {
    const Path item = Index(gpus_path, i);
    if (!indices.insert(gpus[i].index).second) {
      return Bad(Field(item, "index"), "duplicate GPU index " + std::to_string(gpus[i].index));
    }
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "uuid"), gpus[i].uuid, 0, 128));
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "name"), gpus[i].name, 0, 256));
  }
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "cpus"), cpus, 1u));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "memory_mb"), memory_mb, 1u));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "slots"), slots, 1u));
  HPO_RETURN_IF_ERROR(AtMost(Field(root, "slots"), slots, 1024u));
  return AttemptRefs(Field(root, "running"), running);
}

Status RegisterAck::Validate() const {
  const Path root = Root("RegisterAck");
  if (Status s = CheckProtocolVersion(protocol_version); !s.ok()) {
    return Status::FailedPrecondition("RegisterAck: " + s.message());
  }
  HPO_RETURN_IF_ERROR(Text(Field(root, "reason"), reason, accepted ? 0 : 1, limits::kMaxTextChars));
  if (accepted) {
    HPO_RETURN_IF_ERROR(AtLeast(Field(root, "heartbeat_interval_ms"), heartbeat_interval_ms, 1u));
    HPO_RETURN_IF_ERROR(
        AtMost(Field(root, "heartbeat_interval_ms"), heartbeat_interval_ms, 3600000u));
    if (lease_ms <= heartbeat_interval_ms) {
      return Bad(Field(root, "lease_ms"), "must be > heartbeat_interval_ms (" +
                                              std::to_string(heartbeat_interval_ms) + "), got " +
                                              std::to_string(lease_ms));
    }
    HPO_RETURN_IF_ERROR(AtMost(Field(root, "lease_ms"), lease_ms, 86400000u));
  }
  return AttemptRefs(Field(root, "stop"), stop);
}

Status Heartbeat::Validate() const {
  const Path root = Root("Heartbeat");
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "seq"), seq, 1u));
  HPO_RETURN_IF_ERROR(AtMost(Field(root, "free_slots"), free_slots, 1024u));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "sent_ms"), sent_ms, int64_t{0}));
  return AttemptRefs(Field(root, "running"), running);
}

Status AssignTrial::Validate() const {
  const Path root = Root("AssignTrial");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(ResourceName(Field(root, "tuning_job"), tuning_job, 32));
  if (!definition_name.empty()) {
    HPO_RETURN_IF_ERROR(ResourceName(Field(root, "definition_name"), definition_name, 64));
  }
  HPO_RETURN_IF_ERROR(Entries(
      Field(root, "hyperparameters"), hyperparameters, 256,
      [](const Path& p, const std::string& k) { return Bytes(p, k, 1, 256); },
      [](const Path& p, const std::string& v) { return Bytes(p, v, 0, 32768); }));
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "image"), image, 1, 4096));

  const Path defs = Field(root, "metric_definitions");
  HPO_RETURN_IF_ERROR(MaxEntries(defs, metric_definitions.size(), 100));
  UniqueNames metric_names;
  for (size_t i = 0; i < metric_definitions.size(); ++i) {
    const Path item = Index(defs, i);
    HPO_RETURN_IF_ERROR(Text(Field(item, "name"), metric_definitions[i].name, 1, 255));
    HPO_RETURN_IF_ERROR(metric_names.Add(Field(item, "name"), metric_definitions[i].name));
    HPO_RETURN_IF_ERROR(Text(Field(item, "regex"), metric_definitions[i].regex, 1, 1024));
  }
  HPO_RETURN_IF_ERROR(Text(Field(root, "objective_metric"), objective_metric, 1, 255));
  if (!metric_names.Contains(objective_metric)) {
    return Bad(Field(root, "objective_metric"),
               "\"" + objective_metric + "\" must name one of metric_definitions");
  }

  HPO_RETURN_IF_ERROR(Entries(
      Field(root, "environment"), environment, 256,
      [](const Path& p, const std::string& k) {
        if (k.empty() || k.size() > 512 || (k[0] >= '0' && k[0] <= '9') ||
            !std::all_of(k.begin(), k.end(), [](char c) { return IsAlnum(c) || c == '_'; })) {
          return Bad(p, "name must match [A-Za-z_][A-Za-z0-9_]{0,511}");
        }
        return Status::Ok();
      },
      [](const Path& p, const std::string& v) { return Bytes(p, v, 0, 32768); }));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "max_runtime_s"), max_runtime_s, 1u));
  HPO_RETURN_IF_ERROR(AtMost(Field(root, "grace_period_s"), grace_period_s, 86400u));

  const Path hosts_path = Field(root, "hosts");
  if (hosts.empty()) return Bad(hosts_path, "must not be empty");
  HPO_RETURN_IF_ERROR(MaxEntries(hosts_path, hosts.size(), 1024));
  UniqueNames host_names;
  for (size_t i = 0; i < hosts.size(); ++i) {
    HPO_RETURN_IF_ERROR(HostLabel(Index(hosts_path, i), hosts[i]));
    HPO_RETURN_IF_ERROR(host_names.Add(Index(hosts_path, i), hosts[i]));
  }
  HPO_RETURN_IF_ERROR(HostLabel(Field(root, "current_host"), current_host));
  if (!host_names.Contains(current_host)) {
    return Bad(Field(root, "current_host"), "\"" + current_host + "\" must be one of hosts");
  }
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "instance_type"), instance_type, 1, 64));

  // instance_groups partition hosts; instance_group names this host's group.
  const Path groups_path = Field(root, "instance_groups");
  HPO_RETURN_IF_ERROR(MaxEntries(groups_path, instance_groups.size(), 16));
  UniqueNames group_names;
  std::map<std::string_view, std::string_view> group_of_host;
  for (size_t i = 0; i < instance_groups.size(); ++i) {
    const InstanceGroupSpec& g = instance_groups[i];
    const Path item = Index(groups_path, i);
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "name"), g.name, 1, 64));
    HPO_RETURN_IF_ERROR(group_names.Add(Field(item, "name"), g.name));
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "instance_type"), g.instance_type, 1, 64));
    const Path group_hosts = Field(item, "hosts");
    if (g.hosts.empty()) return Bad(group_hosts, "must not be empty");
    for (size_t h = 0; h < g.hosts.size(); ++h) {
      const Path host = Index(group_hosts, h);
      HPO_RETURN_IF_ERROR(Utf8(host, g.hosts[h]));
      if (!host_names.Contains(g.hosts[h]))
        return Bad(host, "\"" + g.hosts[h] + "\" must be one of hosts");
      if (!group_of_host.emplace(g.hosts[h], g.name).second) {
        return Bad(host, "\"" + g.hosts[h] + "\" is already in instance group \"" +
                             std::string(group_of_host[g.hosts[h]]) + "\"");
      }
    }
  }
  if (!instance_groups.empty()) {
    for (const std::string& h : hosts) {
      if (!group_of_host.count(h)) {
        return Bad(groups_path, "host \"" + h + "\" is in no instance group");
      }
    }
    if (instance_group != group_of_host[current_host]) {
      return Bad(Field(root, "instance_group"), "must be \"" +
                                                    std::string(group_of_host[current_host]) +
                                                    "\", the instance group of current_host");
    }
  } else if (!instance_group.empty()) {
    return Bad(Field(root, "instance_group"), "must be empty when instance_groups is empty");
  }

  const Path gpus_path = Field(root, "gpus");
  HPO_RETURN_IF_ERROR(MaxEntries(gpus_path, gpus.size(), 64));
  std::set<uint32_t> gpu_set;
  for (size_t i = 0; i < gpus.size(); ++i) {
    if (!gpu_set.insert(gpus[i]).second) {
      return Bad(Index(gpus_path, i), "duplicate GPU index " + std::to_string(gpus[i]));
    }
  }
  HPO_RETURN_IF_ERROR(
      OneOf(Field(root, "input_mode"), input_mode, {"File", "Pipe", "FastFile"}, false));

  const Path channels_path = Field(root, "channels");
  HPO_RETURN_IF_ERROR(MaxEntries(channels_path, channels.size(), 100));
  UniqueNames channel_names;
  for (size_t i = 0; i < channels.size(); ++i) {
    const ChannelSpec& c = channels[i];
    const Path item = Index(channels_path, i);
    HPO_RETURN_IF_ERROR(Token(Field(item, "name"), c.name, 64, ".-_"));
    HPO_RETURN_IF_ERROR(channel_names.Add(Field(item, "name"), c.name));
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "uri"), c.uri, 1, 1024));
    HPO_RETURN_IF_ERROR(Bytes(Field(item, "content_type"), c.content_type, 0, 256));
    HPO_RETURN_IF_ERROR(
        OneOf(Field(item, "input_mode"), c.input_mode, {"File", "Pipe", "FastFile"}, true));
    HPO_RETURN_IF_ERROR(OneOf(Field(item, "s3_data_type"), c.s3_data_type,
                              {"S3Prefix", "ManifestFile", "AugmentedManifestFile"}, true));
    HPO_RETURN_IF_ERROR(OneOf(Field(item, "distribution_type"), c.distribution_type,
                              {"FullyReplicated", "ShardedByS3Key"}, true));
    HPO_RETURN_IF_ERROR(
        OneOf(Field(item, "compression_type"), c.compression_type, {"None", "Gzip"}, true));
    HPO_RETURN_IF_ERROR(OneOf(Field(item, "record_wrapper_type"), c.record_wrapper_type,
                              {"None", "RecordIO"}, true));
  }
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "output_path"), output_path, 1, 1024));
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "checkpoint_uri"), checkpoint_uri, 0, 1024));
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "checkpoint_local_path"), checkpoint_local_path, 0, 4096));
  if (!checkpoint_local_path.empty() && checkpoint_local_path[0] != '/') {
    return Bad(Field(root, "checkpoint_local_path"), "must be an absolute path");
  }
  HPO_RETURN_IF_ERROR(Bytes(Field(root, "spec_json"), spec_json, 0, 1u << 20));
  if (!spec_json.empty() && !nlohmann::json::accept(spec_json)) {
    return Bad(Field(root, "spec_json"), "must be JSON text");
  }
  const Path addresses = Field(root, "host_addresses");  // Paths point at their parent: keep it alive
  for (const auto& [host, address] : host_addresses) {
    const Path p = Key(addresses, host);
    if (!host_names.Contains(host)) return Bad(p, "must name one of hosts");
    if (address.empty() || address.size() > 255 ||
        !std::all_of(address.begin(), address.end(), [](char c) { return c > ' ' && c < 127; })) {
      return Bad(p, "must be 1-255 printable ASCII characters without spaces");
    }
  }
  if (after_trial.empty()) {
    if (after_attempt != 0) return Bad(Field(root, "after_attempt"), "must be 0 when after_trial is empty");
  } else {
    HPO_RETURN_IF_ERROR(ResourceName(Field(root, "after_trial"), after_trial, 63));
    HPO_RETURN_IF_ERROR(AtLeast(Field(root, "after_attempt"), after_attempt, 1u));
    if (after_trial == trial) return Bad(Field(root, "after_trial"), "must not be the trial itself");
  }
  return Status::Ok();
}

Status TrialStarted::Validate() const {
  const Path root = Root("TrialStarted");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  return AtLeast(Field(root, "started_at_ms"), started_at_ms, 0);
}

Status TrialStaging::Validate() const {
  const Path root = Root("TrialStaging");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  if (status != kDownloading && status != kDownloadingTrainingImage && status != kUploading) {
    return Bad(Field(root, "status"), "must be Downloading, DownloadingTrainingImage or Uploading, got \"" +
                                          SanitizeText(status, 64) + "\"");
  }
  return Text(Field(root, "what"), what, 1, limits::kMaxTextChars);
}

Status GangPeersEnded::Validate() const { return TrialAttempt(Root("GangPeersEnded"), trial, attempt); }

Status DiscardHandOver::Validate() const {
  const Path root = Root("DiscardHandOver");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  return Bytes(Field(root, "output_path"), output_path, 1, 1024);
}

Status MetricPoints::Validate() const {
  const Path root = Root("MetricPoints");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "seq"), seq, 1u));
  const Path points_path = Field(root, "points");
  if (points.empty()) return Bad(points_path, "must not be empty");
  HPO_RETURN_IF_ERROR(MaxEntries(points_path, points.size(), limits::kMaxPointsPerBatch));
  std::map<std::string_view, uint32_t> last_step;
  for (size_t i = 0; i < points.size(); ++i) {
    const MetricPoint& pt = points[i];
    const Path item = Index(points_path, i);
    HPO_RETURN_IF_ERROR(Text(Field(item, "name"), pt.name, 1, 255));
    HPO_RETURN_IF_ERROR(Finite(Field(item, "value"), pt.value));
    HPO_RETURN_IF_ERROR(AtLeast(Field(item, "timestamp_ms"), pt.timestamp_ms, 0));
    auto [it, first] = last_step.emplace(pt.name, pt.step);
    if (!first) {
      if (pt.step <= it->second) {
        return Bad(Field(item, "step"), "must be > " + std::to_string(it->second) +
                                            ", the step of the previous \"" + pt.name +
                                            "\" point in this batch");
      }
      it->second = pt.step;
    }
  }
  return Status::Ok();
}

Status LogLines::Validate() const {
  const Path root = Root("LogLines");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "seq"), seq, 1u));
  const Path lines_path = Field(root, "lines");
  if (lines.empty()) return Bad(lines_path, "must not be empty");
  HPO_RETURN_IF_ERROR(MaxEntries(lines_path, lines.size(), limits::kMaxLogLinesPerBatch));
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].size() > limits::kMaxLogLineBytes) {
      return Bad(Index(lines_path, i), "must be at most " + std::to_string(limits::kMaxLogLineBytes) + " bytes");
    }
  }
  return Status::Ok();
}

Status TrialExited::Validate() const {
  const Path root = Root("TrialExited");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(OneOf(Field(root, "status"), status,
                            {exit_status::kCompleted, exit_status::kFailed, exit_status::kStopped,
                             exit_status::kInterrupted, exit_status::kInfraError},
                            false));
  HPO_RETURN_IF_ERROR(OneOf(Field(root, "secondary_status"), secondary_status,
                            {"Completed", "Failed", "Stopped", "MaxRuntimeExceeded",
                             "MaxWaitTimeExceeded", "Interrupted"},
                            false));
  const bool completed = status == exit_status::kCompleted;
  if (completed != (secondary_status == "Completed")) {
    return Bad(Field(root, "secondary_status"),
               "must be \"Completed\" exactly when status is \"Completed\" (status is \"" + status +
                   "\")");
  }
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "exit_code"), exit_code, -1));
  HPO_RETURN_IF_ERROR(AtMost(Field(root, "exit_code"), exit_code, 255));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "signal"), signal, 0));
  HPO_RETURN_IF_ERROR(AtMost(Field(root, "signal"), signal, 127));
  if (completed && (exit_code != 0 || signal != 0)) {
    return Bad(Field(root, "exit_code"), "must be 0 with no signal when status is \"Completed\"");
  }
  const bool needs_reason = status == exit_status::kFailed || status == exit_status::kInfraError;
  HPO_RETURN_IF_ERROR(Text(Field(root, "failure_reason"), failure_reason, needs_reason ? 1 : 0,
                           limits::kMaxFailureReasonChars));
  HPO_RETURN_IF_ERROR(AtLeast(Field(root, "ended_at_ms"), ended_at_ms, 0));
  const Path finals = Field(root, "final_metrics");
  HPO_RETURN_IF_ERROR(MaxEntries(finals, final_metrics.size(), 1000));
  UniqueNames names;
  for (size_t i = 0; i < final_metrics.size(); ++i) {
    const Path item = Index(finals, i);
    HPO_RETURN_IF_ERROR(Text(Field(item, "name"), final_metrics[i].name, 1, 255));
    HPO_RETURN_IF_ERROR(names.Add(Field(item, "name"), final_metrics[i].name));
    // NaN: the metric's last match was not a number (FinalMetric); infinities stay refused.
    if (!std::isnan(final_metrics[i].value)) HPO_RETURN_IF_ERROR(Finite(Field(item, "value"), final_metrics[i].value));
  }
  return Status::Ok();
}

Status StopTrial::Validate() const {
  const Path root = Root("StopTrial");
  HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
  HPO_RETURN_IF_ERROR(Text(Field(root, "reason"), reason, 1, limits::kMaxTextChars));
  return AtMost(Field(root, "grace_period_s"), grace_period_s, 86400u);
}

Status InterruptionNotice::Validate() const {
  const Path root = Root("InterruptionNotice");
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  HPO_RETURN_IF_ERROR(Text(Field(root, "reason"), reason, 1, limits::kMaxTextChars));
  return AtLeast(Field(root, "deadline_ms"), deadline_ms, 0);
}

Status Ack::Validate() const {
  const Path root = Root("Ack");
  const MsgType t = static_cast<MsgType>(type);
  switch (t) {
    case MsgType::kAssignTrial:
    case MsgType::kTrialStarted:
    case MsgType::kMetricPoints:
    case MsgType::kTrialExited:
    case MsgType::kStopTrial:
    case MsgType::kLogLines:
      HPO_RETURN_IF_ERROR(TrialAttempt(root, trial, attempt));
      if (t == MsgType::kMetricPoints || t == MsgType::kLogLines) return AtLeast(Field(root, "seq"), seq, 1u);
      if (t != MsgType::kTrialExited && seq != 0) {
        return Bad(Field(root, "seq"), std::string("must be 0 in an Ack of ") + MsgTypeName(t));
      }
      return Status::Ok();
    case MsgType::kHeartbeat:
    case MsgType::kInterruptionNotice:
      if (!trial.empty())
        return Bad(Field(root, "trial"),
                   std::string("must be empty in an Ack of ") + MsgTypeName(t));
      if (attempt != 0)
        return Bad(Field(root, "attempt"), std::string("must be 0 in an Ack of ") + MsgTypeName(t));
      if (t == MsgType::kHeartbeat) return AtLeast(Field(root, "seq"), seq, 1u);
      if (seq != 0) return Bad(Field(root, "seq"), "must be 0 in an Ack of InterruptionNotice");
      return Status::Ok();
    default:
      return Bad(Field(root, "type"), std::to_string(type) + " (" + MsgTypeName(t) +
                                          ") is not a message that is acknowledged with Ack");
  }
}

Status HeldTrials::Validate() const {
  const Path root = Root("HeldTrials");
  HPO_RETURN_IF_ERROR(WorkerId(Field(root, "worker_id"), worker_id));
  return TrialNames(Field(root, "trials"), trials);
}

Status ReleaseTrials::Validate() const {
  const Path root = Root("ReleaseTrials");
  return TrialNames(Field(root, "trials"), trials);
}

Status Error::Validate() const {
  const Path root = Root("Error");
  HPO_RETURN_IF_ERROR(Token(Field(root, "code"), code, 64, ""));
  return Text(Field(root, "message"), message, 1, limits::kMaxTextChars);
}

Status Validate(const Message& message) {
  return std::visit([](const auto& m) { return m.Validate(); }, message);
}

// ---- encoding ---------------------------------------------------------------------------------

std::vector<std::string> EncodeFrames(const Message& message) {
  const auto type = static_cast<uint16_t>(TypeOf(message));
  std::string type_frame{static_cast<char>(type >> 8), static_cast<char>(type & 0xff)};
  msgpack::sbuffer body;
  std::visit([&](const auto& m) { msgpack::pack(body, m); }, message);
  return {std::move(type_frame), std::string(body.data(), body.size())};
}

// ---- decoding ---------------------------------------------------------------------------------

namespace {

const char* Describe(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "a boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "an integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "a float";
    case msgpack::type::STR:
      return "a string";
    case msgpack::type::BIN:
      return "binary data";
    case msgpack::type::ARRAY:
      return "an array";
    case msgpack::type::MAP:
      return "a map";
    case msgpack::type::EXT:
      return "an extension value";
  }
  return "an unknown msgpack type";
}

Status WrongType(const Path& p, std::string_view expected, const msgpack::object& o) {
  return Bad(p, "expected " + std::string(expected) + ", got " + Describe(o));
}

template <class T>
concept WireRecord = requires(T t) {
  t.WireFields();
};

// Every reader is declared before any template uses it: the overloads live in an unnamed
// namespace that argument-dependent lookup does not search.
Status ReadValue(const msgpack::object& o, std::string& out, const Path& p);
Status ReadValue(const msgpack::object& o, bool& out, const Path& p);
Status ReadValue(const msgpack::object& o, double& out, const Path& p);
Status ReadValue(const msgpack::object& o, StringMap& out, const Path& p);
template <std::integral T>
Status ReadValue(const msgpack::object& o, T& out, const Path& p);
template <class T>
Status ReadValue(const msgpack::object& o, std::vector<T>& out, const Path& p);
template <WireRecord T>
Status ReadValue(const msgpack::object& o, T& out, const Path& p);

Status ReadValue(const msgpack::object& o, std::string& out, const Path& p) {
  if (o.type != msgpack::type::STR) return WrongType(p, "a string", o);
  const std::string_view s(o.via.str.ptr, o.via.str.size);
  if (!CountChars(s)) return Bad(p, "must be valid UTF-8 without NUL bytes");
  out.assign(s);
  return Status::Ok();
}

Status ReadValue(const msgpack::object& o, bool& out, const Path& p) {
  if (o.type != msgpack::type::BOOLEAN) return WrongType(p, "a boolean", o);
  out = o.via.boolean;
  return Status::Ok();
}

Status ReadValue(const msgpack::object& o, double& out, const Path& p) {
  switch (o.type) {
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      out = o.via.f64;
      return Status::Ok();
    case msgpack::type::POSITIVE_INTEGER:
      out = static_cast<double>(o.via.u64);
      return Status::Ok();
    case msgpack::type::NEGATIVE_INTEGER:
      out = static_cast<double>(o.via.i64);
      return Status::Ok();
    default:
      return WrongType(p, "a number", o);
  }
}

template <std::integral T>
Status ReadValue(const msgpack::object& o, T& out, const Path& p) {
  static_assert(!std::is_same_v<T, bool>);
  constexpr const char* kKind = std::is_signed_v<T> ? "an integer" : "an unsigned integer";
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Bad(p, std::to_string(o.via.u64) + " is out of range (at most " +
                        std::to_string(std::numeric_limits<T>::max()) + ")");
    }
    out = static_cast<T>(o.via.u64);
    return Status::Ok();
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    if constexpr (std::is_unsigned_v<T>) {
      return Bad(p, "must be >= 0, got " + std::to_string(o.via.i64));
    } else {
      if (o.via.i64 < static_cast<int64_t>(std::numeric_limits<T>::min())) {
        return Bad(p, std::to_string(o.via.i64) + " is out of range (at least " +
                          std::to_string(std::numeric_limits<T>::min()) + ")");
      }
      out = static_cast<T>(o.via.i64);
      return Status::Ok();
    }
  }
  return WrongType(p, kKind, o);
}

template <class T>
Status ReadValue(const msgpack::object& o, std::vector<T>& out, const Path& p) {
  if (o.type != msgpack::type::ARRAY) return WrongType(p, "an array", o);
  out.clear();
  out.resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    HPO_RETURN_IF_ERROR(ReadValue(o.via.array.ptr[i], out[i], Index(p, i)));
  }
  return Status::Ok();
}

// The string keys of a map, sorted; an error for a non-string or repeated key.
Result<std::vector<std::pair<std::string_view, const msgpack::object*>>> MapEntries(
    const msgpack::object& o, const Path& p) {
  std::vector<std::pair<std::string_view, const msgpack::object*>> entries;
  entries.reserve(o.via.map.size);
  for (uint32_t i = 0; i < o.via.map.size; ++i) {
    const msgpack::object_kv& kv = o.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) {
      return Bad(p, "map key #" + std::to_string(i) + " is " + Describe(kv.key) + ", not a string");
    }
    entries.emplace_back(std::string_view(kv.key.via.str.ptr, kv.key.via.str.size), &kv.val);
  }
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].first == entries[i - 1].first)
      return Bad(Key(p, entries[i].first), "duplicate key");
  }
  return entries;
}

Status ReadValue(const msgpack::object& o, StringMap& out, const Path& p) {
  if (o.type != msgpack::type::MAP) return WrongType(p, "a map", o);
  Result<std::vector<std::pair<std::string_view, const msgpack::object*>>> entries =
      MapEntries(o, p);
  if (!entries.ok()) return entries.status();
  out.clear();
  for (const auto& [key, value] : *entries) {
    const Path item = Key(p, key);
    if (!CountChars(key)) return Bad(item, "key must be valid UTF-8 without NUL bytes");
    std::string v;
    HPO_RETURN_IF_ERROR(ReadValue(*value, v, item));
    out.emplace_hint(out.end(), std::string(key), std::move(v));
  }
  return Status::Ok();
}

template <class Tuple, class F, size_t... I>
void ForEachFieldImpl(Tuple& fields, F& f, std::index_sequence<I...>) {
  (f(std::get<2 * I>(fields), std::get<2 * I + 1>(fields)), ...);
}

// Calls f(name, member) for each field of a WireFields() tuple, in declaration order.
template <class Tuple, class F>
void ForEachField(Tuple&& fields, F f) {
  constexpr size_t kSize = std::tuple_size_v<std::remove_cvref_t<Tuple>>;
  static_assert(kSize % 2 == 0);
  ForEachFieldImpl(fields, f, std::make_index_sequence<kSize / 2>{});
}

// Every declared field must be present; keys this build does not know are ignored.
template <WireRecord T>
Status ReadValue(const msgpack::object& o, T& out, const Path& p) {
  if (o.type != msgpack::type::MAP) return WrongType(p, "a map", o);
  Result<std::vector<std::pair<std::string_view, const msgpack::object*>>> entries =
      MapEntries(o, p);
  if (!entries.ok()) return entries.status();
  Status status;
  ForEachField(out.WireFields(), [&](std::string_view name, auto& member) {
    if (!status.ok()) return;
    auto it = std::lower_bound(entries->begin(), entries->end(), name,
                               [](const auto& e, std::string_view n) { return e.first < n; });
    if (it == entries->end() || it->first != name) {
      status = Bad(Field(p, name), "required field is missing");
      return;
    }
    status = ReadValue(*it->second, member, Field(p, name));
  });
  return status;
}

struct Failure {
  std::string_view code;  // error_code::k*
  Status status;
};

// Register and RegisterAck: the version is looked at before anything else, so that a peer of
// another version hears about the version and not about a field that moved.
template <class T>
std::optional<Status> VersionMismatch(const msgpack::object& body, const char* type_name) {
  if constexpr (std::is_same_v<T, Register> || std::is_same_v<T, RegisterAck>) {
    for (uint32_t i = 0; i < body.via.map.size; ++i) {
      const msgpack::object_kv& kv = body.via.map.ptr[i];
      if (kv.key.type == msgpack::type::STR &&
          std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == "protocol_version" &&
          kv.val.type == msgpack::type::POSITIVE_INTEGER && kv.val.via.u64 != kProtocolVersion) {
        const auto theirs = static_cast<uint32_t>(std::min<uint64_t>(kv.val.via.u64, UINT32_MAX));
        return Status::FailedPrecondition(std::string(type_name) + ": " +
                                          CheckProtocolVersion(theirs).message());
      }
    }
  }
  return std::nullopt;
}

template <size_t I>
Result<Message> DecodeBody(const msgpack::object& body, Failure* failure) {
  using T = std::variant_alternative_t<I, Message>;
  const char* type_name = MsgTypeName(static_cast<MsgType>(I + 1));
  failure->code = error_code::kInvalidField;
  if (body.type != msgpack::type::MAP) {
    failure->code = error_code::kMalformedMessage;
    return Status::InvalidArgument(std::string(type_name) + ": body must be a msgpack map, got " +
                                   Describe(body));
  }
  if (std::optional<Status> mismatch = VersionMismatch<T>(body, type_name)) {
    failure->code = error_code::kProtocolVersionMismatch;
    return *std::move(mismatch);
  }
  T out;
  const Path root = Root(type_name);
  HPO_RETURN_IF_ERROR(ReadValue(body, out, root));
  Status valid = out.Validate();
  if (!valid.ok()) {
    if (valid.code() == StatusCode::kFailedPrecondition)
      failure->code = error_code::kProtocolVersionMismatch;
    return valid;
  }
  return Message(std::move(out));
}

using BodyDecoder = Result<Message> (*)(const msgpack::object&, Failure*);

template <size_t... I>
constexpr std::array<BodyDecoder, sizeof...(I)> MakeDecoders(std::index_sequence<I...>) {
  return {&DecodeBody<I>...};
}

constexpr std::array<BodyDecoder, std::variant_size_v<Message>> kDecoders =
    MakeDecoders(std::make_index_sequence<std::variant_size_v<Message>>{});

// Strings and binary data are referenced in the received buffer, not copied: the buffer outlives
// the unpacked object in Decode below.
bool ReferenceBuffer(msgpack::type::object_type, std::size_t, void*) { return true; }

Result<Message> Decode(std::string_view type_frame, std::string_view body, Failure* failure) {
  failure->code = error_code::kMalformedMessage;
  if (type_frame.size() != 2) {
    return Status::InvalidArgument("message type frame must be 2 bytes, got " +
                                   std::to_string(type_frame.size()));
  }
  const auto type = static_cast<uint16_t>((static_cast<unsigned char>(type_frame[0]) << 8) |
                                          static_cast<unsigned char>(type_frame[1]));
  if (type == 0 || type > kDecoders.size()) {
    failure->code = error_code::kUnknownMessageType;
    return Status::InvalidArgument("unknown message type " + std::to_string(type) +
                                   " (this build knows 1-" + std::to_string(kDecoders.size()) +
                                   ")");
  }
  const std::string type_name = MsgTypeName(static_cast<MsgType>(type));
  if (body.size() > limits::kMaxBodyBytes) {
    return Status::InvalidArgument(type_name + ": body of " + std::to_string(body.size()) +
                                   " bytes exceeds the limit of " +
                                   std::to_string(limits::kMaxBodyBytes));
  }
  const msgpack::unpack_limit limit(limits::kMaxArrayEntries, limits::kMaxMapEntries,
                                    limits::kMaxStringBytes, limits::kMaxStringBytes,
                                    limits::kMaxStringBytes, limits::kMaxDepth);
  msgpack::object_handle handle;
  size_t offset = 0;
  try {
    handle = msgpack::unpack(body.data(), body.size(), offset, &ReferenceBuffer, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    return Status::InvalidArgument(type_name + ": body is truncated msgpack (" +
                                   std::to_string(body.size()) + " bytes)");
  } catch (const std::exception& e) {
    return Status::InvalidArgument(type_name + ": body is not valid msgpack within the limits (" +
                                   e.what() + ")");
  } catch (...) {
    return Status::InvalidArgument(type_name + ": body is not valid msgpack");
  }
  if (offset != body.size()) {
    return Status::InvalidArgument(type_name + ": " + std::to_string(body.size() - offset) +
                                   " trailing bytes after the msgpack map");
  }
  try {
    return kDecoders[type - 1](handle.get(), failure);
  } catch (const std::exception& e) {  // only allocation failure can get here
    failure->code = error_code::kMalformedMessage;
    return Status::InvalidArgument(type_name + ": cannot decode body (" + e.what() + ")");
  }
}

}  // namespace

Result<Message> DecodeFrames(std::string_view type_frame, std::string_view body, Error* reply) {
  Failure failure;
  Result<Message> result = Decode(type_frame, body, &failure);
  if (!result.ok() && reply != nullptr) {
    reply->code = std::string(failure.code);
    reply->message = SanitizeText(result.status().message(), limits::kMaxTextChars);
    reply->in_reply_to =
        type_frame.size() == 2
            ? static_cast<uint16_t>((static_cast<unsigned char>(type_frame[0]) << 8) |
                                    static_cast<unsigned char>(type_frame[1]))
            : 0;
  }
  return result;
}

Result<Message> DecodeFrames(const std::vector<std::string>& frames, Error* reply) {
  if (frames.size() != 2) {
    Status status = Status::InvalidArgument("a message must be 2 frames (type, body), got " +
                                            std::to_string(frames.size()));
    if (reply != nullptr) {
      reply->code = std::string(error_code::kMalformedMessage);
      reply->message = status.message();
      reply->in_reply_to = 0;
      if (!frames.empty() && frames[0].size() == 2) {
        reply->in_reply_to = static_cast<uint16_t>((static_cast<unsigned char>(frames[0][0]) << 8) |
                                                   static_cast<unsigned char>(frames[0][1]));
      }
    }
    return status;
  }
  return DecodeFrames(frames[0], frames[1], reply);
}

std::string SanitizeText(std::string_view raw, size_t max_chars) {
  std::string out;
  out.reserve(std::min(raw.size(), max_chars));
  size_t chars = 0;
  for (size_t i = 0; i < raw.size() && chars < max_chars;) {
    if (raw[i] == '\0') {
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(raw, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(raw.substr(i, n));
      i += n;
    }
    ++chars;
  }
  return out;
}

namespace {
constexpr std::string_view kCutLineEnd = " more bytes in the worker's trial.log, which keeps a line's first and last 64 KiB]";
}  // namespace

std::string StoredLogLine(std::string_view line) {
  if (line.size() <= kStoredLogLineBytes) return SanitizeText(line, kStoredLogLineBytes);
  if (line.size() <= kStoredLogLineBytes + 128 && line.size() > kCutLineEnd.size() &&
      line.substr(line.size() - kCutLineEnd.size()) == kCutLineEnd) {
    return std::string(line);  // cut by its worker already
  }
  size_t cut = kStoredLogLineBytes;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // at a character
  std::string kept = SanitizeText(line.substr(0, cut), cut);
  while (kept.size() > kStoredLogLineBytes) {  // invalid bytes became U+FFFD (3 bytes each)
    size_t at = kStoredLogLineBytes;
    while (at > 0 && (static_cast<unsigned char>(kept[at]) & 0xC0) == 0x80) --at;
    kept.resize(at);
  }
  return kept + " ... [" + std::to_string(line.size() - cut) + std::string(kCutLineEnd);
}

}  // namespace hpo::proto::wire
