#include "cli/config_file.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <yaml-cpp/yaml.h>

#include "common/file_util.h"
#include "common/text.h"

namespace hpo::cli {
namespace {

bool Skipped(const CLI::Option* o) {
  for (const std::string& l : o->get_lnames()) {
    if (l == "help" || l == "config" || l == "help-all") return true;
  }
  return o->get_lnames().empty();  // a positional (hpo run's spec) or a short-only option
}

// The option a command-line argument names ("--slots", "--slots=4", "-o"), or nullptr.
const CLI::Option* Named(const CLI::App& command, const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return nullptr;
  const std::string name = arg.substr(0, arg.find('='));
  if (name == "--" || name == "-") return nullptr;
  return command.get_option_no_throw(name);
}

std::string Closest(const CLI::App& command, const std::string& key) {
  std::string best;
  size_t best_d = 3;  // at most two edits away
  for (const CLI::Option* o : command.get_options()) {
    if (Skipped(o)) continue;
    for (const std::string& l : o->get_lnames()) {
      const size_t d = EditDistance(key, l);
      if (d < best_d) best_d = d, best = l;
    }
  }
  return best;
}

bool IsFlag(const CLI::Option* o) { return o->get_expected_max() == 0; }

}  // namespace

void AddEnvironmentNames(CLI::App* command) {
  for (CLI::Option* o : command->get_options()) {
    if (Skipped(o) || !o->get_envname().empty()) continue;
    std::string env = "HPO_";
    for (char c : o->get_lnames().front()) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    o->envname(env);
  }
}

Result<ConfigExpansion> ExpandConfig(const CLI::App& command, const std::vector<std::string>& args) {
  ConfigExpansion out;
  std::string file;
  std::vector<std::string> rest;
  std::set<const CLI::Option*> given;  // on the command line: they win over the file
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {  // what follows is not options
      rest.insert(rest.end(), args.begin() + static_cast<long>(i), args.end());
      break;
    }
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      if (!file.empty()) return Status::InvalidArgument("--config given twice; give one configuration file");
      if (a == "--config") {
        if (i + 1 >= args.size()) return Status::InvalidArgument("--config needs a file (a YAML mapping of options)");
        file = args[++i];
      } else {
        file = a.substr(std::string("--config=").size());
      }
      if (file.empty()) return Status::InvalidArgument("--config needs a file (a YAML mapping of options)");
      continue;
    }
    if (const CLI::Option* o = Named(command, a)) given.insert(o);
    rest.push_back(a);
  }
  for (const CLI::Option* o : command.get_options()) {
    const std::string& env = o->get_envname();
    const char* value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (value && *value && !given.count(o)) out.origin["--" + o->get_lnames().front()] = env + " in the environment";
  }
  if (file.empty()) {
    out.args = args;
    return out;
  }
  auto text = ReadFile(file, 1u << 20);
  if (!text.ok()) return Status::InvalidArgument("--config: " + text.status().message());
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("--config " + file + ": not YAML: line " + std::to_string(e.mark.line + 1) + ": " +
                                   e.msg);
  }
  if (root.IsNull()) {  // an empty file sets nothing
    out.args = rest;
    return out;
  }
  if (!root.IsMap()) {
    return Status::InvalidArgument("--config " + file + ": wants a mapping of option names to values (slots: 4), " +
                                   "not a " + (root.IsSequence() ? "list" : "single value"));
  }
  std::vector<std::string> added;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const std::string where = key + " in " + file;
    const CLI::Option* o = key.empty() || key[0] == '-' ? nullptr : command.get_option_no_throw("--" + key);
    if (!o || Skipped(o)) {
      const std::string near = Closest(command, key);
      return Status::InvalidArgument("--config " + file + ": " + key + " is no option of hpo " + command.get_name() +
                                     (near.empty() ? "" : "; did you mean " + near + "?") + " (hpo " +
                                     command.get_name() + " --help lists them; write names without the dashes)");
    }
    const std::string flag = "--" + o->get_lnames().front();
    if (given.count(o)) {  // the command line says otherwise
      out.overridden.push_back(key + " in " + file + " (" + flag + " on the command line wins)");
      continue;
    }
    if (!o->get_envname().empty() && std::getenv(o->get_envname().c_str()) != nullptr &&
        *std::getenv(o->get_envname().c_str()) != '\0') {
      out.overridden.push_back(key + " in " + file + " (" + o->get_envname() + " in the environment wins)");
      continue;
    }
    const YAML::Node& v = kv.second;
    std::vector<std::string> values;
    if (v.IsScalar()) {
      values.push_back(v.Scalar());
    } else if (v.IsSequence()) {
      if (o->get_expected_max() <= 1 || IsFlag(o)) {
        return Status::InvalidArgument("--config " + file + ": " + key + " takes one value, not a list");
      }
      for (const auto& e : v) {
        if (!e.IsScalar()) return Status::InvalidArgument("--config " + file + ": " + key + ": each item must be a value");
        values.push_back(e.Scalar());
      }
    } else {
      return Status::InvalidArgument("--config " + file + ": " + key + " has no value" +
                                     (v.IsMap() ? " it can take (a mapping)" : "") + "; write " + key + ": VALUE");
    }
    // An empty value ("" or nothing after the colon) would be an option without its value, and
    // CLI11 takes the next option as the value: work-dir: "" became a directory "--slots=2".
    if (std::any_of(values.begin(), values.end(), [](const std::string& s) { return s.empty(); })) {
      return Status::InvalidArgument("--config " + file + ": " + key + " is empty; give it a value, or leave " + key +
                                     " out for the default");
    }
    if (IsFlag(o)) {
      std::string b = values.front();
      for (char& c : b) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (b == "true" || b == "yes" || b == "on") {
        added.push_back(flag);
      } else if (b != "false" && b != "no" && b != "off") {
        return Status::InvalidArgument("--config " + file + ": " + key + " is a flag: true or false, not " + values.front());
      }
    } else {
      for (const std::string& s : values) added.push_back(flag + "=" + s);  // "=": a value may start with '-' 
    }
    out.origin[flag] = where;
  }
  out.args = added;
  out.args.insert(out.args.end(), rest.begin(), rest.end());
  return out;
}

}  // namespace hpo::cli
