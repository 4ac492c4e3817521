#include "worker/container.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cctype>
#include <filesystem>
#include <sstream>

namespace hpo::worker {

namespace {

namespace fs = std::filesystem;

// A runtime's executable in the worker's PATH; "" when not installed.
std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  return FindProgram(name, path ? path : "/usr/local/bin:/usr/bin:/bin");
}

}  // namespace

Result<ContainerConfig> ResolveContainerRuntime(const std::string& runtime, const std::string& pull,
                                                const std::string& network,
                                                const std::vector<std::string>& extra_args) {
  if (pull != "never" && pull != "missing" && pull != "always") {
    return Status::InvalidArgument("--container-pull must be never, missing or always, not \"" + pull + "\"");
  }
  if (network.empty()) return Status::InvalidArgument("--container-network must not be empty");
  ContainerConfig c;
  c.pull = pull;
  c.network = network;
  c.extra_args = extra_args;
  if (runtime.empty() || runtime == "none") {
    c.turned_off = runtime == "none";
    return c;
  }
  static const std::vector<std::string> kKnown = {"podman", "docker", "apptainer"};
  if (runtime == "auto") {
    for (const auto& k : kKnown) {
      std::string found = FindInPath(k);
      if (!found.empty()) {
        c.runtime = k;
        c.binary = found;
        return c;
      }
    }
    return c;  // none installed: container images are refused with a reason
  }
  std::string kind = runtime;
  std::string binary;
  if (runtime.find('/') != std::string::npos) {
    kind = fs::path(runtime).filename().string();
    binary = runtime;
    if (::access(binary.c_str(), X_OK) != 0) {
      return Status::NotFound("--container-runtime " + runtime + " is not an executable file");
    }
  }
  if (std::find(kKnown.begin(), kKnown.end(), kind) == kKnown.end()) {
    return Status::InvalidArgument("--container-runtime must be auto, none, podman, docker or apptainer (or a path to "
                                   "one of them), not \"" + runtime + "\"");
  }
  if (binary.empty()) {
    binary = FindInPath(kind);
    if (binary.empty()) {
      return Status::NotFound("--container-runtime " + kind + ": " + kind +
                              " is not installed (not found in PATH); install it or choose another runtime");
    }
  }
  c.runtime = kind;
  c.binary = binary;
  return c;
}

std::string ContainerOwner(const std::string& worker_id, const std::string& work_dir) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  for (unsigned char c : work_dir) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char tail[16];
  std::snprintf(tail, sizeof tail, ".%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return worker_id + tail;
}

std::string ContainerName(const std::string& worker_id, const std::string& trial, uint32_t attempt) {
  std::string raw = "hpo-" + worker_id + "-" + trial + "-" + std::to_string(attempt);
  std::string out;
  for (char ch : raw) {
    const unsigned char u = static_cast<unsigned char>(ch);
    out += (std::isalnum(u) || ch == '_' || ch == '.' || ch == '-') ? ch : '_';
  }
  return out;
}

std::vector<std::string> ContainerRunCommand(const ContainerConfig& config, const ContainerSpec& spec) {
  std::vector<std::string> a = {config.binary};
  std::map<std::string, std::string> env = spec.env;
  if (config.runtime == "apptainer") {
    a.insert(a.end(), {"run", "--containall", "--cleanenv", "--no-home", "--writable-tmpfs"});
    for (const auto& m : spec.mounts) a.insert(a.end(), {"--bind", m.source + ":" + m.target + (m.read_only ? ":ro" : "")});
    if (!spec.gpus.empty()) a.push_back("--nv");
    if (spec.network_none) a.insert(a.end(), {"--net", "--network", "none"});
    for (const auto& [k, v] : env) a.insert(a.end(), {"--env", k + "=" + v});
    a.insert(a.end(), config.extra_args.begin(), config.extra_args.end());
    a.insert(a.end(), {spec.image, "train"});
    return a;
  }
  a.insert(a.end(), {"run", "--rm", "--name", spec.name, "--label", "hpo.worker=" + spec.worker_id, "--label",
                     "hpo.trial=" + spec.trial, "--pull", config.pull == "always" ? "missing" : config.pull});
  a.insert(a.end(), {"--network", spec.network_none ? "none" : config.network});
  if (config.runtime == "podman" && !spec.hostname.empty()) a.insert(a.end(), {"--hostname", spec.hostname});
  for (const auto& m : spec.mounts) a.insert(a.end(), {"-v", m.source + ":" + m.target + (m.read_only ? ":ro" : "")});
  if (!spec.gpus.empty()) {
    std::string visible;
    for (size_t i = 0; i < spec.gpus.size(); ++i) {
      if (i > 0) visible += ',';
      visible += std::to_string(i);
    }
    env["CUDA_VISIBLE_DEVICES"] = visible;
    if (config.runtime == "podman") {
      for (int g : spec.gpus) a.insert(a.end(), {"--device", "nvidia.com/gpu=" + std::to_string(g)});
    } else {
      std::string devices;
      for (int g : spec.gpus) {
        if (!devices.empty()) devices += ',';
        devices += std::to_string(g);
      }
      a.insert(a.end(), {"--gpus", "\"device=" + devices + "\""});
    }
  }
  if (!spec.env_file.empty()) {
    a.insert(a.end(), {"--env-file", spec.env_file});
    auto [text, apart] = EnvFileText(spec.env);
    for (const auto& [k, v] : env) {
      if (apart.count(k) || !spec.env.count(k)) a.insert(a.end(), {"-e", k + "=" + v});  // and CUDA_VISIBLE_DEVICES
    }
  } else {
    for (const auto& [k, v] : env) a.insert(a.end(), {"-e", k + "=" + v});
  }
  a.insert(a.end(), config.extra_args.begin(), config.extra_args.end());
  a.insert(a.end(), {spec.image, "train"});
  return a;
}

std::pair<std::string, std::map<std::string, std::string>> EnvFileText(const std::map<std::string, std::string>& env) {
  std::string text;
  std::map<std::string, std::string> apart;
  for (const auto& [k, v] : env) {
    if (v.find('\n') != std::string::npos || v.find('\r') != std::string::npos) {
      apart[k] = v;
      continue;
    }
    text += k + "=" + v + "\n";
  }
  return {text, apart};
}

std::vector<std::string> ContainerStopCommand(const ContainerConfig& config, const std::string& name, int64_t grace_s) {
  if (config.runtime == "apptainer" || !config.enabled()) return {};
  return {config.binary, "stop", "-t", std::to_string(std::max<int64_t>(0, grace_s)), name};
}

std::vector<std::string> ContainerRemoveCommand(const ContainerConfig& config, const std::string& name) {
  if (config.runtime != "podman" && config.runtime != "docker") return {};
  return {config.binary, "rm", "-f", name};
}

bool IsRuntimeFailure(const ContainerConfig& config, int exit_code, const std::string& last_line) {
  if (config.runtime != "podman" && config.runtime != "docker") return false;
  if (exit_code == 125) return true;
  // 126: the command in the container could not be invoked; from the OCI runtime (runc, crun)
  // failing to create the container (rlimits, cgroups, seccomp) too, which the runtime says on
  // its last line. A train entry point that is not executable is the image's fault.
  if (exit_code != 126) return false;
  for (const char* mark : {"OCI runtime", "runc create failed", "crun:", "runc:", "OCI permission denied",
                           "container_linux.go", "failed to create shim"}) {
    if (last_line.find(mark) != std::string::npos) return true;
  }
  return false;
}

namespace {
// The transports an image reference may start with, and whether what follows is a path on this
// host. A registry host with a port (`registry:5000/x`) has a digit after its colon, and a path
// or tag before any: it is none of these.
struct Transport {
  std::string_view prefix;
  bool local_path;
};
constexpr Transport kTransports[] = {{"oci-archive:", true}, {"docker-archive:", true}, {"oci:", true},
                                     {"dir:", true},         {"docker://", false},      {"docker-daemon:", false}};

const Transport* TransportOf(const std::string& image) {
  for (const Transport& t : kTransports) {
    if (image.rfind(t.prefix, 0) == 0) return &t;
  }
  return nullptr;
}
}  // namespace

bool IsImageSource(const std::string& image) { return TransportOf(image) != nullptr; }

Result<bool> ImagePresent(const ContainerConfig& config, const std::string& image) {
  if (IsImageSource(image)) return false;
  std::vector<std::string> argv = config.runtime == "podman"
                                      ? std::vector<std::string>{config.binary, "image", "exists", image}
                                      : std::vector<std::string>{config.binary, "image", "inspect", "--format", "{{.Id}}", image};
  auto r = RunTool(argv, std::chrono::seconds(30));
  if (!r.ok()) return Status::Unavailable("cannot run " + config.binary + ": " + r.status().message());
  if (r->exit_code == 0) return true;
  if (r->exit_code == 1) return false;
  // A name that is no image reference at all (upper case, an ARN) is the spec's fault, not this
  // worker's: taken for the runtime's, it failed as InternalServerError and, three in a row,
  // rested the worker for a minute with every other tuning job's work.
  std::string lower = r->LastLine();
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("invalid reference format") != std::string::npos || lower.find("must be lowercase") != std::string::npos) {
    return Status::InvalidArgument("trainingImage " + image + " is not an image reference " + config.runtime +
                                   " can read (" + r->LastLine() + "); give REGISTRY/REPOSITORY[:TAG] in lower case, "
                                   "as SageMaker's TrainingImage");
  }
  return Status::Unavailable(config.runtime + " cannot check image " + image + " (exit " +
                             std::to_string(r->exit_code) + "): " + r->LastLine());
}

bool PullsBeforeStart(const ContainerConfig& config) {
  return (config.runtime == "podman" || config.runtime == "docker") && config.pull != "never";
}

std::string ImageIdInPullOutput(const std::string& output) {
  std::string id;
  std::stringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    const bool hex = line.size() == 64 && std::all_of(line.begin(), line.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    });
    if (hex) id = line;
  }
  return id;
}

Result<std::string> PullImage(const ContainerConfig& config, const std::string& image, std::chrono::seconds timeout,
                              const std::atomic<bool>* cancel) {
  // An archive or directory that is not there is the reference's fault (podman's own "no such
  // file" could as well be its configuration's).
  if (const Transport* t = TransportOf(image); t && t->local_path) {
    std::string path = image.substr(t->prefix.size());
    std::error_code ec;
    if (!std::filesystem::exists(path, ec) && path.find(':') != std::string::npos) {
      path = path.substr(0, path.rfind(':'));  // oci-archive:/x.tar:name:tag
    }
    if (!std::filesystem::exists(path, ec)) {
      return Status::NotFound("cannot pull trainingImage " + image + ": " + path +
                              " does not exist on this worker; check the image name in the training job definition");
    }
  }
  auto r = RunTool({config.binary, "pull", image}, timeout, cancel);
  if (!r.ok()) return Status::Unavailable("cannot pull trainingImage " + image + ": " + r.status().message());
  if (r->exit_code == 0) return ImageIdInPullOutput(r->output);
  const std::string last = r->LastLine();
  std::string lower = last;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool never = false;
  for (const char* s : {"invalid reference format", "must be lowercase", "manifest unknown", "name unknown",
                        "not found", "repository does not exist"}) {
    never = never || lower.find(s) != std::string::npos;
  }
  const std::string why = "cannot pull trainingImage " + image + " (" + config.runtime + " exit " +
                          std::to_string(r->exit_code) + "): " + last;
  // A short name ("my-algo") no registry of this worker's resolves: SageMaker takes full names only.
  if (lower.find("short-name") != std::string::npos && lower.find("did not resolve") != std::string::npos) {
    return Status::NotFound(why + "; give the image's full name (REGISTRY/REPOSITORY[:TAG]), as SageMaker needs, or "
                                  "map the name to a program on the workers (--image NAME=COMMAND)");
  }
  return never ? Status::NotFound(why + "; check the image name in the training job definition")
               : Status::Unavailable(why);
}

Status CheckImage(const ContainerConfig& config, const std::string& image) {
  if (config.pull != "never") return Status::Ok();
  const std::string why = "trainingImage " + image +
                          " is not present on this worker and pulls are off (--container-pull never); load it "
                          "here first (" + config.runtime + (config.runtime == "apptainer" ? " build" : " load/pull") + ")";
  if (config.runtime == "apptainer") {
    if (image.find("://") != std::string::npos) return Status::FailedPrecondition(why);
    return ::access(image.c_str(), R_OK) == 0 ? Status::Ok() : Status::FailedPrecondition(why);
  }
  auto present = ImagePresent(config, image);
  if (!present.ok()) return present.status();
  return *present ? Status::Ok() : Status::FailedPrecondition(why);
}

Result<int> RemoveStaleContainers(const ContainerConfig& config, const std::string& worker_id) {
  if (config.runtime != "podman" && config.runtime != "docker") return 0;
  auto listed = RunTool({config.binary, "ps", "-a", "-q", "--filter", "label=hpo.worker=" + worker_id},
                        std::chrono::seconds(30));
  if (!listed.ok()) return listed.status();
  if (listed->exit_code != 0) {
    return Status::Unavailable(config.runtime + " ps failed (exit " + std::to_string(listed->exit_code) +
                               "): " + listed->LastLine());
  }
  // The IDs alone (hex, 12 characters or the full 64): the tool's output has its stderr too, and
  // rootless podman warns there ("\"/\" is not a shared mount ..."); its words were taken for 69
  // container IDs, said as removed, and given to `rm -f` (where any word could prefix-match a
  // container that is not ours).
  std::vector<std::string> ids;
  std::stringstream ss(listed->output);
  for (std::string line; std::getline(ss, line);) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    const bool hex = line.size() >= 12 && line.size() <= 64 && std::all_of(line.begin(), line.end(), [](char ch) {
                       return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
                     });
    if (hex) ids.push_back(line);
  }
  if (ids.empty()) return 0;
  std::vector<std::string> rm = {config.binary, "rm", "-f"};
  rm.insert(rm.end(), ids.begin(), ids.end());
  auto removed = RunTool(rm, std::chrono::seconds(60));
  if (!removed.ok()) return removed.status();
  if (removed->exit_code != 0) {
    return Status::Unavailable(config.runtime + " rm failed (exit " + std::to_string(removed->exit_code) +
                               "): " + removed->LastLine());
  }
  return static_cast<int>(ids.size());
}

}  // namespace hpo::worker
