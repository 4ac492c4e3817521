#include "worker/trial_layout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/text.h"

namespace hpo::worker {

namespace fs = std::filesystem;
using Json = nlohmann::json;  // objects keep their keys sorted

namespace {

// An attempt's configuration files are written again for every attempt (a crash of the worker
// ends the attempt), so they need no fsync: atomic replacement is enough.
constexpr Durability kAttemptFile = Durability::kAtomicOnly;

constexpr std::size_t kMaxFailureChars = 1024;

// Compact, sorted keys; invalid UTF-8 becomes U+FFFD instead of throwing.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The training toolkit's environment variables: its mapping.to_env_vars writes a non-string value
// as json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True): non-ASCII escaped.
std::string EnvDump(const Json& j) { return j.dump(-1, ' ', true, Json::error_handler_t::replace); }

// A hyperparameter as the toolkit reads it (environment.read_hyperparameters: json.loads of each
// value, the text itself where that fails): "0.1" is the number 0.1, "[1, 2]" a list, "true" a
// boolean, "\"x\"" the string x, "adam" stays "adam". (Python's json.loads also takes NaN and
// Infinity; those stay text here.) An integer past 64 bits, which Python keeps exact, also stays
// text: read as a double it reached the program rounded (123456789012345678901234567890 as
// 1.2345678901234568e+29, which argparse's type=int refuses; a contract pass).
// Such an integer's digits (the text trimmed); nullopt for any other text.
std::optional<std::string> BigInteger(const std::string& text) {
  if (text.find_first_not_of("-0123456789 \t\n\r") != std::string::npos) return std::nullopt;
  if (!Json::parse(text, nullptr, /*allow_exceptions=*/false).is_number_float()) return std::nullopt;
  const size_t b = text.find_first_not_of(" \t\n\r"), e = text.find_last_not_of(" \t\n\r");
  return text.substr(b, e - b + 1);
}

Json ToolkitValue(const std::string& text) {
  if (BigInteger(text)) return Json(text);
  Json v = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? Json(text) : v;
}

// In the JSON documents (SM_HPS, SM_TRAINING_ENV) such an integer is written as the toolkit's
// json.dumps writes Python's int: its digits, not a string. An object dumped as EnvDump does, the
// members named in `raw` written as the text given there.
std::string DumpWithRaw(const Json& object, const std::map<std::string, std::string>& raw) {
  if (raw.empty()) return EnvDump(object);
  std::string out = "{";
  for (const auto& [name, value] : object.items()) {  // sorted
    auto it = raw.find(name);
    out += (out.size() > 1 ? "," : "") + EnvDump(Json(name)) + ":" + (it != raw.end() ? it->second : EnvDump(value));
  }
  return out + "}";
}

// Python's repr() of a decoded hyperparameter value, as str() shows it inside a list or dict:
// None, True/False, numbers, 'quoted' strings, [a, b] and {'k': v}.
std::string PyRepr(const Json& v) {
  if (v.is_null()) return "None";
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_string()) {
    const std::string t = v.get<std::string>();
    // Python quotes with ' unless the text holds a ' and no ".
    const char q = t.find('\'') != std::string::npos && t.find('"') == std::string::npos ? '"' : '\'';
    std::string out(1, q);
    for (char c : t) {
      if (c == '\\' || c == q) out += '\\';
      if (c == '\n') {
        out += "\\n";
      } else if (c == '\t') {
        out += "\\t";
      } else if (c == '\r') {
        out += "\\r";
      } else {
        out += c;
      }
    }
    return out + q;
  }
  if (v.is_array()) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + PyRepr(v[i]);
    return out + "]";
  }
  if (v.is_object()) {
    std::string out = "{";
    bool first = true;
    for (const auto& [k, x] : v.items()) {
      out += (first ? "" : ", ") + PyRepr(Json(k)) + ": " + PyRepr(x);
      first = false;
    }
    return out + "}";
  }
  return v.dump();  // numbers: the shortest text that reads back the same, as Python's repr
}

// What the toolkit's to_cmd_args gives for one value: str(value), "" for None, and a dict as
// "k=v,k2=v2" (sorted by key).
std::string ToolkitArg(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) {
    std::string out;
    // "%s=%s" % (k, v): str(v), so None is "None" and a nested dict its repr.
    for (const auto& [k, x] : v.items()) out += (out.empty() ? "" : ",") + k + "=" + (x.is_string() ? x.get<std::string>() : PyRepr(x));
    return out;
  }
  return PyRepr(v);
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string Upper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

bool IsReservedHyperparameter(const std::string& name) {
  return name.rfind("sagemaker_", 0) == 0 || name == "_tuning_objective_metric";
}

// The instance groups and current group, with the defaults of the header filled in.
struct Groups {
  std::vector<LayoutInstanceGroup> groups;
  std::string current;
};

Groups ResolveGroups(const TrialLayoutSpec& s) {
  Groups g;
  g.groups = s.instance_groups;
  g.current = s.current_group;
  if (g.current.empty()) {
    for (const auto& group : g.groups) {
      if (std::find(group.hosts.begin(), group.hosts.end(), s.current_host) != group.hosts.end()) {
        g.current = group.name;
        break;
      }
    }
  }
  if (g.current.empty()) g.current = "homogeneousCluster";
  if (g.groups.empty()) g.groups.push_back({g.current, s.instance_type, s.hosts});
  return g;
}

Json GroupJson(const LayoutInstanceGroup& g) {
  return Json{{"instance_group_name", g.name}, {"instance_type", g.instance_type}, {"hosts", Sorted(g.hosts)}};
}

Json ResourceConfig(const TrialLayoutSpec& s, const Groups& g) {
  Json groups = Json::array();
  for (const auto& group : g.groups) groups.push_back(GroupJson(group));
  return Json{{"current_host", s.current_host},
              {"hosts", Sorted(s.hosts)},
              {"network_interface_name", s.network_interface},
              {"current_instance_type", s.instance_type},
              {"current_group_name", g.current},
              {"current_instance_group", g.current},
              {"instance_groups", groups}};
}

Json InputDataConfig(const TrialLayoutSpec& s) {
  Json j = Json::object();
  for (const auto& c : s.channels) {
    Json e = Json::object();
    if (!c.content_type.empty()) e["ContentType"] = c.content_type;
    e["TrainingInputMode"] = c.input_mode.empty() ? s.training_input_mode : c.input_mode;
    e["S3DistributionType"] = c.distribution.empty() ? "FullyReplicated" : c.distribution;
    e["RecordWrapperType"] = c.record_wrapper.empty() ? "None" : c.record_wrapper;
    if (c.compression == "Gzip") e["CompressionType"] = "Gzip";
    j[c.name] = e;
  }
  return j;
}

Status CheckSpec(const TrialLayoutSpec& s) {
  if (s.root.empty()) return Status::InvalidArgument("the trial root directory is empty");
  std::set<std::string> seen;
  for (const auto& c : s.channels) {
    bool ok = !c.name.empty() && c.name != "." && c.name != ".." &&
              std::all_of(c.name.begin(), c.name.end(), [](char ch) {
                return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                       ch == '.' || ch == '-' || ch == '_';
              });
    if (!ok) {
      return Status::InvalidArgument("channel name \"" + c.name + "\" is not allowed: use [A-Za-z0-9._-]+");
    }
    if (!seen.insert(c.name).second) return Status::InvalidArgument("channel \"" + c.name + "\" appears twice");
  }
  return Status::Ok();
}

// Appends the code point cp as UTF-8.
void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// The first max_chars code points of text as valid UTF-8; each byte that does not start a valid
// sequence counts as one character and becomes U+FFFD.
std::string FirstChars(std::string_view text, std::size_t max_chars) {
  std::string out;
  std::size_t chars = 0;
  std::size_t i = 0;
  while (i < text.size() && chars < max_chars) {
    auto b = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    uint32_t cp = 0, min = 0;
    if (b < 0x80) len = 1, cp = b;
    else if ((b & 0xE0) == 0xC0) len = 2, cp = b & 0x1F, min = 0x80;
    else if ((b & 0xF0) == 0xE0) len = 3, cp = b & 0x0F, min = 0x800;
    else if ((b & 0xF8) == 0xF0) len = 4, cp = b & 0x07, min = 0x10000;
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      auto c = static_cast<unsigned char>(text[i + k]);
      if ((c & 0xC0) != 0x80) valid = false;
      cp = (cp << 6) | (c & 0x3F);
    }
    if (valid && (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) valid = false;
    if (valid) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      AppendUtf8(&out, 0xFFFD);
      i += 1;
    }
    ++chars;
  }
  return out;
}

// Creates the directory d if it is not one already: one mkdir() when its parent exists, else
// with every missing parent.
Status MakeDirectory(const fs::path& d) {
  if (::mkdir(d.c_str(), 0777) == 0) return Status::Ok();
  const int e = errno;
  std::error_code ec;
  if (e == EEXIST) {
    if (fs::is_directory(d, ec)) return Status::Ok();
    return Status::IoError("cannot create the directory " + d.string() + ": " + std::strerror(EEXIST));
  }
  if (e == ENOENT) {
    fs::create_directories(d, ec);
    if (!ec) return Status::Ok();
    return Status::IoError("cannot create the directory " + d.string() + ": " + ec.message());
  }
  return Status::IoError("cannot create the directory " + d.string() + ": " + std::strerror(e));
}

constexpr const char* kConfigFiles[] = {"hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"};

// Writes data into path in place: a new file, or an empty one made with the tree ahead of time
// (then no directory changes at all). False, with nothing written, when path has content.
Result<bool> WriteNewFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 && errno == ELOOP) return false;  // a symbolic link: replaced the atomic way
  if (fd < 0) return Status::IoError("cannot write " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != 0) {
    ::close(fd);
    return false;
  }
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(path.c_str());
      return Status::IoError("cannot write " + path + ": " + std::strerror(e));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(path.c_str());
    return Status::IoError("cannot write " + path + ": " + std::strerror(e));
  }
  return true;
}

}  // namespace

Status MakeTrialTree(const std::string& root_dir, bool config_files) {
  if (root_dir.empty()) return Status::InvalidArgument("the trial root directory is empty");
  const fs::path root(root_dir);
  // Parents first, so that each is one mkdir().
  for (const fs::path& d : {root, root / "input", root / "input" / "config", root / "input" / "data", root / "model",
                            root / "output", root / "output" / "data", root / "output" / "intermediate",
                            root / "checkpoints"}) {
    HPO_RETURN_IF_ERROR(MakeDirectory(d));
  }
  if (!config_files) return Status::Ok();
  for (const char* name : kConfigFiles) {
    const fs::path f = root / "input" / "config" / name;
    int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IoError("cannot create " + f.string() + ": " + std::strerror(errno));
    ::close(fd);
  }
  return Status::Ok();
}

Status LayOutTrial(const TrialLayoutSpec& s) {
  HPO_RETURN_IF_ERROR(CheckSpec(s));
  const fs::path root(s.root);
  const fs::path config = root / "input" / "config";
  if (!s.tree_made) HPO_RETURN_IF_ERROR(MakeTrialTree(s.root));
  for (const auto& c : s.channels) HPO_RETURN_IF_ERROR(MakeDirectory(root / "input" / "data" / c.name));
  Json hp = Json::object();
  for (const auto& [k, v] : s.hyperparameters) hp[k] = v;
  const Groups groups = ResolveGroups(s);
  // In a tree made ahead of time the files are new (or empty ones made with it) and nothing reads
  // them before the program starts: they are written in place (a temporary name and a rename
  // each cost two more directory updates). Otherwise, or if one has content after all, they
  // replace the old ones atomically.
  auto write = [&](const char* name, const std::string& data) -> Status {
    const std::string path = (config / name).string();
    if (s.tree_made) {
      Result<bool> fresh = WriteNewFile(path, data);
      if (!fresh.ok() || *fresh) return fresh.status();
    }
    return WriteFileAtomically(path, data, kAttemptFile);
  };
  HPO_RETURN_IF_ERROR(write("hyperparameters.json", Dump(hp)));
  HPO_RETURN_IF_ERROR(write("inputdataconfig.json", Dump(InputDataConfig(s))));
  HPO_RETURN_IF_ERROR(write("resourceconfig.json", Dump(ResourceConfig(s, groups))));
  if (!s.checkpoint_uri.empty()) {
    Json ck = Json::object();
    ck["LocalPath"] = s.checkpoint_local_path.empty() ? (fs::path(s.visible_root.empty() ? s.root : s.visible_root) /
                                                         "checkpoints").string()
                                                      : s.checkpoint_local_path;
    ck["S3Uri"] = s.checkpoint_uri;
    HPO_RETURN_IF_ERROR(write("checkpointconfig.json", Dump(ck)));
  }
  return Status::Ok();
}

bool SetForEveryTrainingJob(const std::string& name) {
  static const std::set<std::string> kSet = {
      "TRAINING_JOB_NAME", "TRAINING_JOB_ARN", "HPO_ATTEMPT", "HPO_WORKER_DIR", "CUDA_VISIBLE_DEVICES",
      "SM_CHANNELS", "SM_CURRENT_HOST",
      "SM_CURRENT_INSTANCE_GROUP", "SM_CURRENT_INSTANCE_GROUP_HOSTS", "SM_CURRENT_INSTANCE_TYPE",
      "SM_DISTRIBUTION_INSTANCE_GROUPS", "SM_FRAMEWORK_MODULE", "SM_FRAMEWORK_PARAMS", "SM_HOSTS", "SM_HPS",
      "SM_INPUT_CONFIG_DIR", "SM_INPUT_DATA_CONFIG", "SM_INPUT_DIR", "SM_INSTANCE_GROUPS", "SM_INSTANCE_GROUPS_DICT",
      "SM_IS_HETERO", "SM_LOG_LEVEL", "SM_MODEL_DIR", "SM_MODULE_DIR", "SM_MODULE_NAME", "SM_NETWORK_INTERFACE_NAME",
      "SM_NUM_CPUS", "SM_NUM_GPUS", "SM_NUM_NEURONS", "SM_OUTPUT_DATA_DIR", "SM_OUTPUT_DIR",
      "SM_OUTPUT_INTERMEDIATE_DIR", "SM_RESOURCE_CONFIG", "SM_TRAINING_ENV", "SM_USER_ARGS", "SM_USER_ENTRY_POINT"};
  return kSet.count(name) > 0 || name.rfind("SM_HP_", 0) == 0 || name.rfind("SM_CHANNEL_", 0) == 0;
}

std::map<std::string, std::string> TrainingEnvironment(const TrialLayoutSpec& s) {
  const fs::path root(s.visible_root.empty() ? s.root : s.visible_root);
  const Groups groups = ResolveGroups(s);
  std::map<std::string, std::string> env = s.environment;

  env["TRAINING_JOB_NAME"] = s.job_name;
  env["TRAINING_JOB_ARN"] = s.job_arn;
  env["SM_HOSTS"] = EnvDump(Json(Sorted(s.hosts)));
  env["SM_CURRENT_HOST"] = s.current_host;
  env["SM_CURRENT_INSTANCE_TYPE"] = s.instance_type;
  env["SM_NETWORK_INTERFACE_NAME"] = s.network_interface;

  Json hps = Json::object();
  std::map<std::string, std::string> big_integers;  // exact in SM_HPS and SM_TRAINING_ENV
  for (const auto& [name, value] : s.hyperparameters) {
    if (IsReservedHyperparameter(name)) continue;
    Json v = ToolkitValue(value);
    if (name.find('=') == std::string::npos) {
      env["SM_HP_" + Upper(name)] = v.is_string() ? v.get<std::string>() : EnvDump(v);
    }
    if (auto digits = BigInteger(value)) big_integers[name] = *digits;
    hps[name] = std::move(v);
  }
  env["SM_HPS"] = DumpWithRaw(hps, big_integers);

  Json channels = Json::array();
  std::vector<std::string> names;
  for (const auto& c : s.channels) names.push_back(c.name);
  for (const auto& name : Sorted(names)) {
    channels.push_back(name);
    env["SM_CHANNEL_" + Upper(name)] = (root / "input" / "data" / name).string();
  }
  env["SM_CHANNELS"] = EnvDump(channels);

  env["SM_MODEL_DIR"] = (root / "model").string();
  env["SM_OUTPUT_DIR"] = (root / "output").string();
  env["SM_OUTPUT_DATA_DIR"] = (root / "output" / "data").string();
  env["SM_OUTPUT_INTERMEDIATE_DIR"] = (root / "output" / "intermediate").string();
  env["SM_INPUT_DIR"] = (root / "input").string();
  env["SM_INPUT_CONFIG_DIR"] = (root / "input" / "config").string();
  env["SM_NUM_CPUS"] = std::to_string(s.num_cpus);
  env["SM_NUM_GPUS"] = std::to_string(s.gpus.size());
  const Json resource_config = ResourceConfig(s, groups);
  env["SM_RESOURCE_CONFIG"] = EnvDump(resource_config);
  env["SM_INPUT_DATA_CONFIG"] = EnvDump(InputDataConfig(s));

  Json group_names = Json::array();
  Json groups_dict = Json::object();
  Json current_hosts = Json::array();
  for (const auto& g : groups.groups) {
    group_names.push_back(g.name);
    groups_dict[g.name] = GroupJson(g);
    if (g.name == groups.current) current_hosts = Json(Sorted(g.hosts));
  }
  env["SM_CURRENT_INSTANCE_GROUP"] = groups.current;
  env["SM_CURRENT_INSTANCE_GROUP_HOSTS"] = EnvDump(current_hosts);
  env["SM_INSTANCE_GROUPS"] = EnvDump(group_names);
  env["SM_INSTANCE_GROUPS_DICT"] = EnvDump(groups_dict);
  env["SM_IS_HETERO"] = groups.groups.size() > 1 ? "true" : "false";

  // What the SageMaker training toolkit of a framework container sets besides: the entry point's
  // variables (from the script-mode hyperparameters; empty without them), the arguments it is
  // given, and SM_TRAINING_ENV, everything in one JSON document, which scripts read whole.
  Json framework = Json::object(), user_hps = Json::object();
  for (const auto& [name, value] : s.hyperparameters) {
    if (name == "_tuning_objective_metric") continue;
    (name.rfind("sagemaker_", 0) == 0 ? framework : user_hps)[name] = ToolkitValue(value);
  }
  auto framework_text = [&](const std::string& key, const std::string& otherwise) {
    auto it = framework.find(key);
    return it == framework.end() ? otherwise : it->is_string() ? it->get<std::string>() : EnvDump(*it);
  };
  const std::string entry_point = framework_text("sagemaker_program", "");
  std::string module_name = entry_point.substr(0, entry_point.rfind('.') == std::string::npos ? entry_point.size()
                                                                                              : entry_point.rfind('.'));
  std::replace(module_name.begin(), module_name.end(), '/', '.');
  const std::string log_level = framework_text("sagemaker_container_log_level", "20");
  Json user_args = Json::array();
  for (const auto& [name, v] : user_hps.items()) {  // sorted, as the toolkit's to_cmd_args
    user_args.push_back((Utf8Length(name) > 1 ? "--" : "-") + name);  // len() counts characters
    user_args.push_back(ToolkitArg(v));
  }
  Json framework_params = Json::object();
  for (const auto& [name, v] : framework.items()) {
    if (name != "sagemaker_program" && name != "sagemaker_submit_directory" && name != "sagemaker_region" &&
        name != "sagemaker_job_name" && name != "sagemaker_container_log_level") {
      framework_params[name] = v;
    }
  }
  env["SM_USER_ENTRY_POINT"] = entry_point;
  env["SM_MODULE_NAME"] = module_name;
  env["SM_MODULE_DIR"] = framework_text("sagemaker_submit_directory", "");
  env["SM_USER_ARGS"] = EnvDump(user_args);
  env["SM_LOG_LEVEL"] = log_level;
  env["SM_FRAMEWORK_PARAMS"] = EnvDump(framework_params);
  Json channel_dirs = Json::object();
  for (const auto& name : names) channel_dirs[name] = (root / "input" / "data" / name).string();
  const std::vector<std::string> hosts = Sorted(s.hosts);
  // The hosts a distributed launcher (torchrun, MPI, smddp) spans, as the toolkit reads them: the
  // groups named by sagemaker_distribution_instance_groups (the SDK's distribution
  // instance_groups), else the current group when a distribution is on; the first of their hosts
  // is the master. In a heterogeneous job that is not algo-1 when the data hosts come first.
  auto truthy = [](const Json& v) {  // Python's bool() of a decoded hyperparameter
    return (v.is_boolean() && v.get<bool>()) || (v.is_string() && !v.get<std::string>().empty()) ||
           (v.is_number() && v.get<double>() != 0);
  };
  Json distribution_groups = Json::array();
  if (auto it = framework.find("sagemaker_distribution_instance_groups"); it != framework.end()) {
    distribution_groups = it->is_array() ? *it : Json::array({*it});
  } else {
    for (const char* flag : {"sagemaker_mpi_enabled", "sagemaker_parameter_server_enabled",
                             "sagemaker_distributed_dataparallel_enabled", "sagemaker_pytorch_ddp_enabled",
                             "sagemaker_pytorch_xla_multi_worker_enabled",
                             "sagemaker_multi_worker_mirrored_strategy_enabled", "sagemaker_torch_distributed_enabled"}) {
      if (auto f = framework.find(flag); f != framework.end() && truthy(*f)) {
        distribution_groups.push_back(groups.current);
        break;
      }
    }
  }
  std::vector<std::string> distribution_hosts;  // in resourceconfig.json's order (groups, sorted hosts)
  for (const auto& g : groups.groups) {
    if (std::find(distribution_groups.begin(), distribution_groups.end(), Json(g.name)) == distribution_groups.end()) continue;
    for (const auto& h : Sorted(g.hosts)) distribution_hosts.push_back(h);
  }
  const std::string master = !distribution_hosts.empty() ? distribution_hosts.front()
                             : hosts.empty()             ? s.current_host
                                                         : hosts.front();
  env["SM_DISTRIBUTION_INSTANCE_GROUPS"] = EnvDump(distribution_groups);
  env["SM_NUM_NEURONS"] = "0";
  env["SM_FRAMEWORK_MODULE"] = "";
  Json training_env = {
      {"additional_framework_parameters", framework_params},
      {"channel_input_dirs", channel_dirs},
      {"current_host", s.current_host},
      {"current_instance_group", groups.current},
      {"current_instance_group_hosts", current_hosts},
      {"current_instance_type", s.instance_type},
      {"distribution_hosts", distribution_hosts},
      {"distribution_instance_groups", distribution_groups},
      {"framework_module", nullptr},
      {"hosts", hosts},
      {"hyperparameters", user_hps},
      {"input_config_dir", (root / "input" / "config").string()},
      {"input_data_config", InputDataConfig(s)},
      {"input_dir", (root / "input").string()},
      {"instance_groups", group_names},
      {"instance_groups_dict", groups_dict},
      {"is_hetero", groups.groups.size() > 1},
      {"is_master", s.current_host == master},
      {"is_smddpmprun_installed", false},
      {"is_smddprun_installed", false},
      {"job_name", s.job_name},
      {"log_level", std::atoi(log_level.c_str()) > 0 ? std::atoi(log_level.c_str()) : 20},
      {"master_hostname", master},
      {"model_dir", (root / "model").string()},
      {"module_dir", env["SM_MODULE_DIR"]},
      {"module_name", module_name},
      {"network_interface_name", s.network_interface},
      {"num_cpus", s.num_cpus},
      {"num_gpus", static_cast<int>(s.gpus.size())},
      {"num_neurons", 0},
      {"output_data_dir", (root / "output" / "data").string()},
      {"output_dir", (root / "output").string()},
      {"output_intermediate_dir", (root / "output" / "intermediate").string()},
      {"resource_config", resource_config},
      {"topology", Json::array()},
      {"user_entry_point", entry_point},
  };
  std::map<std::string, std::string> user_big;
  for (const auto& [name, text] : big_integers) {
    if (user_hps.contains(name)) user_big[name] = text;
  }
  env["SM_TRAINING_ENV"] =
      DumpWithRaw(training_env, user_big.empty() ? std::map<std::string, std::string>{}
                                                 : std::map<std::string, std::string>{
                                                       {"hyperparameters", DumpWithRaw(user_hps, user_big)}});

  std::string devices;
  for (int g : s.gpus) {
    if (!devices.empty()) devices += ',';
    devices += std::to_string(g);
  }
  env["CUDA_VISIBLE_DEVICES"] = devices;
  return env;
}

Result<std::string> ReadFailureReason(const std::string& root) {
  // The program owns output/: a FIFO there blocked the worker's whole loop in open(), and a link
  // (of output/ or of the file) would have the worker read a file of the host into the reason.
  // Neither is followed or waited on (common/file_util.h OpenRegularFileBeneath).
  uint64_t size = 0;
  auto in = OpenRegularFileBeneath(root, "output/failure", &size);
  if (!in.ok() && in.status().code() == StatusCode::kNotFound) return std::string();
  if (!in.ok()) return Status::IoError(in.status().message());
  // 1024 characters are at most 4096 bytes of UTF-8; the rest of a long file is never read.
  std::string bytes(static_cast<std::size_t>(std::min<uint64_t>(size, 4 * kMaxFailureChars)), '\0');
  HPO_RETURN_IF_ERROR(ReadExactly(in->get(), bytes.data(), bytes.size(), root + "/output/failure"));
  std::string reason = FirstChars(bytes, kMaxFailureChars);
  while (!reason.empty() && (reason.back() == '\n' || reason.back() == '\r' || reason.back() == ' ' ||
                             reason.back() == '\t')) {
    reason.pop_back();
  }
  // As SageMaker reports it ("AlgorithmError: ExecuteUserScriptError: ..."): code sorting
  // failures by their prefix read a failure file's text as no algorithm error (a contract pass).
  constexpr std::string_view kPrefix = "AlgorithmError: ";
  if (!reason.empty() && reason.rfind("AlgorithmError:", 0) != 0) {
    reason = FirstChars(std::string(kPrefix) + reason, kMaxFailureChars);
  }
  return reason;
}

}  // namespace hpo::worker
