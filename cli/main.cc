// hpo: runs SageMaker hyperparameter tuning jobs on your own machines.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "cli/bench_commands.h"
#include "cli/cli_util.h"
#include "cli/client_commands.h"
#include "cli/config_file.h"
#include "cli/keygen.h"
#include "cli/runtime_commands.h"
#include "cli/spec_commands.h"
#include "cli/worker_commands.h"
#include "common/text.h"

#ifndef HPO_VERSION
#define HPO_VERSION "0.1.0"
#endif

namespace {

// The options a --config file set (cli/config_file.h), for usage errors: "--slots" -> "slots in FILE".
std::map<std::string, std::string> g_config_origin;

// The commands `cmd` offers people (hidden ones, with no group, left out).
std::vector<std::string> SubcommandNames(const CLI::App* cmd) {
  std::vector<std::string> names;
  for (const CLI::App* sub :
       const_cast<CLI::App*>(cmd)->get_subcommands([](CLI::App* a) { return !a->get_group().empty(); })) {
    names.push_back(sub->get_name());
  }
  return names;
}

// Of `names`, the one closest to `word` within two edits; "" when none is.
std::string Closest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = 3;
  for (const std::string& n : names) {
    const size_t d = hpo::EditDistance(word, n);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

// A usage error as people read it: which command it is about, what is missing or wrong (a
// missing argument with what it is; a mistyped option with the closest one), that command's
// usage line, and where its examples are. CLI11's own said only "names is required" and "Run with
// --help for more information", without the command.
std::string UsageError(const CLI::App* top, const CLI::Error& e) {
  const CLI::App* cmd = top;
  std::string path = "hpo";
  for (auto subs = cmd->get_subcommands(); !subs.empty(); subs = cmd->get_subcommands()) {
    cmd = subs.front();
    path += " " + cmd->get_name();
  }
  std::string what = e.what();
  const std::string required = " is required";
  if (dynamic_cast<const CLI::RequiredError*>(&e) && what == "A subcommand is required") {
    // "hpo bench sugest", "hpo --bogus": CLI11 said "A subcommand is required" (printed as
    // "missing A subcommand"), naming neither the word it did not know nor the commands.
    const std::vector<std::string> names = SubcommandNames(cmd);
    const std::vector<std::string> left = cmd->remaining();
    what = "a command is required";
    if (!left.empty()) {
      const std::string& word = left.front();
      const std::string best = Closest(word, names);
      what = (word.rfind("-", 0) == 0 ? "unknown option '" : "unknown command '") + word + "'" +
             (best.empty() ? std::string() : "; did you mean '" + best + "'?");
    }
    std::string list;
    for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
    if (!list.empty()) what += " (" + path + " takes one of: " + list + ")";
  } else if (dynamic_cast<const CLI::RequiredError*>(&e) && what.size() > required.size() &&
      what.compare(what.size() - required.size(), required.size(), required) == 0) {
    const std::string name = what.substr(0, what.size() - required.size());
    const CLI::Option* opt = cmd->get_option_no_throw(name);
    what = "missing " + name;
    if (opt && !opt->get_description().empty()) what += " (" + opt->get_description() + ")";
  } else if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    // "The following argument(s) were not expected: --wrkers 3": offer the option closest to
    // each unknown one.
    const size_t colon = what.find(": ");
    std::vector<std::string> hints;
    for (size_t at = colon == std::string::npos ? what.size() : colon + 2; at < what.size();) {
      size_t end = what.find(' ', at);
      if (end == std::string::npos) end = what.size();
      const std::string arg = what.substr(at, end - at);
      at = end + 1;
      if (!arg.empty() && arg[0] != '-') {  // a mistyped command of a command that has some
        const std::string best = Closest(arg, SubcommandNames(cmd));
        if (!best.empty()) hints.push_back("'" + best + "' for '" + arg + "'");
        continue;
      }
      if (arg.size() < 3) continue;
      const std::string flag = arg.substr(0, arg.find('='));
      std::string best;
      size_t best_d = 3;  // at most two edits away
      for (const CLI::Option* o : cmd->get_options()) {
        for (const std::string& l : o->get_lnames()) {
          const size_t d = hpo::EditDistance(flag, "--" + l);
          if (d < best_d) best_d = d, best = "--" + l;
        }
      }
      if (!best.empty()) hints.push_back(best + " for " + flag);
    }
    std::reverse(hints.begin(), hints.end());  // CLI11 lists them last first
    for (size_t i = 0; i < hints.size(); ++i) what += (i == 0 ? "; did you mean " : ", ") + hints[i];
    if (!hints.empty()) what += "?";
  }
  // CLI11 checks a range before the value is a number: "Value abc not in range 1 to 1024".
  if (const size_t v = what.find("Value "), r = what.find(" not in range "); v != std::string::npos &&
                                                                             r != std::string::npos && v < r) {
    const std::string value = what.substr(v + 6, r - v - 6);
    char* end = nullptr;
    (void)std::strtod(value.c_str(), &end);
    if (value.empty() || end == nullptr || *end != '\0') {
      what.replace(v, what.size() - v, "\"" + value + "\" is not a number (it wants a number" + what.substr(r + 4) + ")");
    }
  }
  for (const auto& [flag, where] : g_config_origin) {
    if (what.find(flag) != std::string::npos) what += " (" + flag + " came from " + where + ")";
  }
  std::string out = path + ": " + what + "\n";
  if (cmd != top) {  // its help's "Usage: hpo delete [OPTIONS] names..." line
    const std::string help = cmd->help(path.substr(0, path.rfind(' ')));
    if (const size_t at = help.find("Usage:"); at != std::string::npos) {
      out += help.substr(at, help.find('\n', at) + 1 - at);
    }
  }
  return out + "(`" + path + " --help` explains each argument, with examples)\n";
}

}  // namespace

int main(int argc, char** argv) {
  // Diagnostics go to stderr: stdout carries results (`hpo run -o json`, `hpo describe`) that
  // other programs parse.
  spdlog::set_default_logger(spdlog::stderr_color_mt("hpo"));
  // As the services' own lines (cli_util.h LogLine): UTC time first, then what happened.
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$: %v", spdlog::pattern_time_type::utc);
  CLI::App app("hpo " HPO_VERSION
               ": run Amazon SageMaker hyperparameter tuning jobs on your own GPU machines.\n"
               "Specs are the HyperParameterTuningJob Kubernetes resource (YAML/JSON) or the SageMaker\n"
               "CreateHyperParameterTuningJob request (JSON), unchanged.");
  app.formatter(std::make_shared<hpo::cli::HelpFormatter>());  // (the subcommands take it up)
  app.set_version_flag("--version", "hpo " HPO_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Start here:\n"
      "  hpo validate examples/quickstart.yaml     check a spec\n"
      "  hpo run examples/quickstart.yaml          run it on this machine, with progress\n\n"
      "A cluster:\n"
      "  hpo keygen --out keys                      (CurveZMQ keys: copy coordinator.pub, worker.secret)\n"
      "  hpo coordinator --keys keys --state-dir /var/lib/hpo   (ZeroMQ :7700, HTTP 127.0.0.1:7780)\n"
      "  hpo worker --keys keys --connect tcp://HOST:7700 --slots 4\n"
      "  hpo submit spec.yaml; hpo list; hpo describe NAME; hpo trials NAME; hpo events NAME\n"
      "  hpo compare NAME NAME (or hpo run state directories): best, best at equal budget, a plot\n"
      "  hpo search 'Metrics.validation:auc > 0.9' 'Tags.team = vision': training jobs across tuning jobs\n"
      "  hpo stop NAME; hpo delete NAME; hpo workers (cordon, drain, uncordon)\n\n"
      "Exit codes: 0 ok; 1 the job failed or was stopped, the coordinator refused the request (no\n"
      "such job, a name in use), or a wait ran out (hpo workers drain --timeout); 2 usage or\n"
      "validation error, the coordinator's ValidationException (deleting a job that has not ended),\n"
      "or a directory another hpo process holds; 3 a service could not be reached or started, or\n"
      "hpo run left its job to be resumed (SIGHUP). `hpo COMMAND --help` explains each command.");
  hpo::cli::AddValidateCommand(app);
  hpo::cli::AddConvertCommand(app);
  hpo::cli::AddInstanceTypesCommand(app);
  hpo::cli::AddRunCommand(app);
  hpo::cli::AddCoordinatorCommand(app);
  hpo::cli::AddWorkerCommand(app);
  hpo::cli::AddKeygenCommand(app);
  hpo::cli::AddClientCommands(app);
  hpo::cli::AddWorkersCommand(app);
  hpo::cli::AddBenchCommands(app);
  app.add_subcommand("version", "Print the version")->footer("Prints \"hpo VERSION\", as hpo --version does.")->callback([] {
    std::cout << "hpo " HPO_VERSION "\n";
    throw CLI::RuntimeError(0);
  });
  // A mistyped or missing command: CLI11 says only "A subcommand is required". Name it, and
  // offer the closest command.
  if (argc == 1) {
    app.name(argv[0]);  // "Usage: hpo [OPTIONS] SUBCOMMAND", not "Usage: [OPTIONS] ..."
    std::cerr << app.help() << "\nhpo: a command is required (above: what each does)\n";
    return 2;
  }
  const auto subs = app.get_subcommands([](CLI::App*) { return true; });
  auto known = [&](const std::string& name) {
    return std::any_of(subs.begin(), subs.end(), [&](const CLI::App* sub) { return sub->get_name() == name; });
  };
  if (const std::string first = argv[1]; !first.empty() && first[0] != '-' && !known(first)) {
    const std::string best = Closest(first, SubcommandNames(&app));
    std::cerr << "hpo: unknown command '" << first << "'"
              << (best.empty() ? std::string() : "; did you mean '" + best + "'?")
              << " (hpo --help lists the commands)\n";
    return 2;
  }
  // The long-running commands take a configuration file and HPO_* variables (cli/config_file.h).
  std::vector<std::string> args(argv + 1, argv + argc);
  for (const char* name : {"run", "coordinator", "worker"}) {
    CLI::App* command = app.get_subcommand(name);
    // Read here, before CLI11 parses (it is taken out of the arguments): declared for --help.
    command->add_option("--config", "A YAML file mapping this command's options, named without the dashes "
                        "(slots: 4; a list for a repeatable option; true/false for a flag). An option given on the "
                        "command line, or its HPO_* variable (each option's Env:), wins over the file")
        ->type_name("FILE");
    hpo::cli::AddEnvironmentNames(command);
    if (args.front() != name) continue;
    auto expanded = hpo::cli::ExpandConfig(*command, std::vector<std::string>(args.begin() + 1, args.end()));
    if (!expanded.ok()) {
      std::cerr << "hpo " << name << ": " << expanded.status().message() << "\n";
      return 2;
    }
    for (const std::string& o : expanded->overridden) std::cerr << "hpo " << name << ": note: " << o << "\n";
    args.resize(1);
    args.insert(args.end(), expanded->args.begin(), expanded->args.end());
    g_config_origin = std::move(expanded->origin);
  }
  app.failure_message(UsageError);
  app.name(argv[0]);  // as parse(argc, argv) would: the usage lines of --help name the binary
  try {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    app.parse(args);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command finished with this exit code
  } catch (const CLI::Error& e) {
    // Help and version exit 0; every usage error exits 2, hpo's contract.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const nlohmann::json::exception& e) {
    // The client commands read what a coordinator answers, and check its shape where they walk it;
    // a field of another type than they expect ends here, not in std::terminate.
    std::cerr << "hpo: unexpected answer (" << e.what() << "): is --coordinator (or HPO_COORDINATOR) an hpo "
              << "coordinator of this version, at its HTTP API (hpo coordinator --http)?\n";
    return 3;
  }
  return 0;
}
