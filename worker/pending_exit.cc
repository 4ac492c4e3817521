#include "worker/pending_exit.h"

#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace hpo::worker {

namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr int kVersion = 1;

std::string PathOf(const std::string& attempt_dir) { return (fs::path(attempt_dir) / kPendingExitFile).string(); }

}  // namespace

Status WritePendingExit(const std::string& attempt_dir, const PendingExit& p) {
  const proto::wire::TrialExited& x = p.exit;
  Json metrics = Json::array();
  for (const auto& m : x.final_metrics) metrics.push_back({m.name, m.value});
  Json j = {{"version", kVersion},
            {"trial", x.trial},
            {"attempt", x.attempt},
            {"seq", x.seq},
            {"status", x.status},
            {"secondary_status", x.secondary_status},
            {"exit_code", x.exit_code},
            {"signal", x.signal},
            {"failure_reason", x.failure_reason},
            {"ended_at_ms", x.ended_at_ms},
            {"final_metrics", metrics},
            {"intermediate", p.intermediate},
            {"checkpoint_uri", p.checkpoint_uri},
            {"checkpoint_dir", p.checkpoint_dir}};
  if (p.artifacts) {
    const ArtifactSpec& a = *p.artifacts;
    j["artifacts"] = {{"root", a.root},       {"output_path", a.output_path}, {"job_name", a.job_name},
                      {"compress", a.compress}, {"scratch_dir", a.scratch_dir}, {"replace", a.replace},
                      {"primary", a.primary}, {"host", a.host}, {"hosts", a.hosts}, {"attempt", a.attempt}};
  }
  return WriteFileAtomically(PathOf(attempt_dir), j.dump(-1, ' ', false, Json::error_handler_t::replace),
                             Durability::kAtomicOnly);
}

Result<std::optional<PendingExit>> ReadPendingExit(const std::string& attempt_dir) {
  const std::string path = PathOf(attempt_dir);
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::optional<PendingExit>{};
  auto text = ReadFile(path, 1u << 20);
  if (!text.ok()) return Status::InvalidArgument(text.status().message());
  Json j = Json::parse(*text, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(path + " is not a pending exit report this worker can read: " + why);
  };
  if (!j.is_object()) return bad("not JSON");
  try {
    if (j.at("version").get<int>() != kVersion) return bad("version " + j.at("version").dump());
    PendingExit p;
    proto::wire::TrialExited& x = p.exit;
    x.trial = j.at("trial").get<std::string>();
    x.attempt = j.at("attempt").get<uint32_t>();
    x.seq = j.at("seq").get<uint64_t>();
    x.status = j.at("status").get<std::string>();
    x.secondary_status = j.at("secondary_status").get<std::string>();
    x.exit_code = j.at("exit_code").get<int32_t>();
    x.signal = j.at("signal").get<int32_t>();
    x.failure_reason = j.at("failure_reason").get<std::string>();
    x.ended_at_ms = j.at("ended_at_ms").get<int64_t>();
    for (const auto& m : j.at("final_metrics")) x.final_metrics.push_back({m.at(0).get<std::string>(), m.at(1).get<double>()});
    p.intermediate = j.at("intermediate").get<bool>();
    p.checkpoint_uri = j.at("checkpoint_uri").get<std::string>();
    p.checkpoint_dir = j.at("checkpoint_dir").get<std::string>();
    if (auto a = j.find("artifacts"); a != j.end()) {
      ArtifactSpec s;
      s.root = a->at("root").get<std::string>();
      s.output_path = a->at("output_path").get<std::string>();
      s.job_name = a->at("job_name").get<std::string>();
      s.compress = a->at("compress").get<bool>();
      s.scratch_dir = a->at("scratch_dir").get<std::string>();
      s.replace = a->at("replace").get<bool>();
      s.primary = a->at("primary").get<bool>();
      // Absent in reports written before multi-host merges: one host's archives, as then.
      s.host = a->value("host", std::string());
      s.hosts = a->value("hosts", std::vector<std::string>{});
      s.attempt = a->value("attempt", uint32_t{0});
      p.artifacts = std::move(s);
    }
    if (Status v = x.Validate(); !v.ok()) return bad(v.message());
    return std::optional<PendingExit>(std::move(p));
  } catch (const Json::exception& e) {
    return bad(e.what());
  }
}

void RemovePendingExit(const std::string& attempt_dir) {
  std::error_code ec;
  fs::remove(PathOf(attempt_dir), ec);
}

}  // namespace hpo::worker
