#include "cli/run_control.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/file_util.h"

namespace hpo::cli {
namespace {

Result<std::string> RandomHex(size_t bytes) {
  std::FILE* f = std::fopen("/dev/urandom", "rb");
  if (!f) return Status::IoError("cannot open /dev/urandom for the run's API keys");
  std::string raw(bytes, '\0');
  const size_t got = std::fread(raw.data(), 1, bytes, f);
  std::fclose(f);
  if (got != bytes) return Status::IoError("cannot read /dev/urandom for the run's API keys");
  static const char* digits = "0123456789ABCDEF";
  std::string hex;
  for (unsigned char c : raw) {
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  return hex;
}

}  // namespace

std::string RunControlPath(const std::string& state_dir) {
  return (std::filesystem::path(state_dir) / "control.json").string();
}

Result<RunControl> NewRunKeys() {
  auto id = RandomHex(7);
  if (!id.ok()) return id.status();
  auto secret = RandomHex(20);
  if (!secret.ok()) return secret.status();
  RunControl c;
  c.access_key_id = "HPORUN" + *id;
  c.secret_access_key = *secret;
  return c;
}

Status WriteRunControl(const std::string& state_dir, const RunControl& control) {
  nlohmann::json j = {{"url", control.url}, {"pid", control.pid}};
  if (!control.access_key_id.empty()) {
    j["access_key_id"] = control.access_key_id;
    j["secret_access_key"] = control.secret_access_key;
  }
  return WriteFileAtomically(RunControlPath(state_dir), j.dump(2) + "\n", Durability::kAtomicOnly, 0600);
}

void RemoveRunControl(const std::string& state_dir) {
  std::error_code ec;
  std::filesystem::remove(RunControlPath(state_dir), ec);
}

Result<RunControl> ReadRunControl(const std::string& state_dir) {
  const std::string path = RunControlPath(state_dir);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    const bool has_db = std::filesystem::exists(std::filesystem::path(state_dir) / "hpo.db", ec);
    if (!has_db) {
      return Status::InvalidArgument("--state-dir " + state_dir +
                                     ": no hpo run keeps its state there (hpo run prints its state directory when it "
                                     "starts)");
    }
    // (A run whose terminal went away, SIGHUP, left its job InProgress to be resumed: it said
    // only "has ended".)
    return Status::FailedPrecondition("no hpo run is running on " + state_dir +
                                      " (its job has ended, or was left to be resumed when its terminal went away: "
                                      "run the same hpo run command to resume it; or a coordinator serves that "
                                      "directory: point --coordinator at it); what it did: hpo describe NAME "
                                      "--state-dir " + state_dir);
  }
  auto text = ReadFile(path, 1u << 16);
  if (!text.ok()) return text.status();
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("url") || !j["url"].is_string() || !j.contains("pid") ||
      !j["pid"].is_number_integer()) {
    return Status::InvalidArgument(path + " is not what hpo run writes (url and pid); remove it if no hpo run "
                                   "is running there");
  }
  RunControl c;
  c.url = j["url"].get<std::string>();
  c.pid = j["pid"].get<long>();
  if (j.contains("access_key_id") && j["access_key_id"].is_string()) c.access_key_id = j["access_key_id"];
  if (j.contains("secret_access_key") && j["secret_access_key"].is_string()) {
    c.secret_access_key = j["secret_access_key"];
  }
  if (c.pid <= 0 || (::kill(static_cast<pid_t>(c.pid), 0) != 0 && errno == ESRCH)) {
    return Status::FailedPrecondition("the hpo run of " + state_dir + " (pid " + std::to_string(c.pid) +
                                      ") is not running: it was killed; run the same hpo run command with "
                                      "--state-dir " + state_dir + " to resume it");
  }
  return c;
}

}  // namespace hpo::cli
