// The `hpo` binary as a user meets it: real processes, real files, exit codes and the exact
// lines on stdout and stderr. HPO_BINARY and HPO_EXAMPLES_DIR come from tests/CMakeLists.txt.
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/mount.h>

#include <gtest/gtest.h>
#include <csignal>
#include <chrono>
#include <thread>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "proto/codec.h"
#include "tests/loopback.h"
#include "tests/shell.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void Spit(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
}

// A scratch directory per test, removed afterwards.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("hpo-cli-test-" + std::to_string(::getpid()) + "-" + std::string(info->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `hpo ARGS...` with stdin from /dev/null and stdout/stderr captured through files.
  // Runs hpo with `args`, standard input from `in`.
  Outcome Hpo(const std::vector<std::string>& args, const fs::path& in = "/dev/null") {
    const fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_s{HPO_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, HPO_BINARY, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    Outcome o;
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << HPO_BINARY << ": " << std::strerror(rc);
      return o;
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    o.out = Slurp(out);
    o.err = Slurp(err);
    return o;
  }

  // The exit status of `pid` once it ends within 10 s; else it is killed and -1 (and -2 for a
  // signal's end).
  static int StopsWithin10s(pid_t pid) {
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 100 && (done = ::waitpid(pid, &status, WNOHANG)) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (done == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
  }

  fs::path Write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    Spit(p, text);
    return p;
  }

  static fs::path Example(const std::string& name) { return fs::path(HPO_EXAMPLES_DIR) / name; }

  // A Random tuning job (SageMaker JSON) of `jobs` training jobs, `parallel` at a time, whose
  // training program is the shell script `script` (it sees SM_HP_X in [0, 1]; the objective is
  // loss, from lines "loss=VALUE"), written as NAME.sh beside NAME.json. Returns the spec's path.
  std::string ScriptJob(const std::string& name, const std::string& script, int jobs, int parallel,
                        const std::string& instance_type = "ml.m5.large", int max_runtime_s = 60) {
    const fs::path trainer = Write(name + ".sh", script);
    fs::permissions(trainer, fs::perms::owner_all);
    return Write(name + ".json", R"J({
    "HyperParameterTuningJobName": ")J" + name + R"J(",
    "HyperParameterTuningJobConfig": {
      "Strategy": "Random",
      "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
      "ResourceLimits": {"MaxNumberOfTrainingJobs": )J" + std::to_string(jobs) + R"J(, "MaxParallelTrainingJobs": )J" +
                                       std::to_string(parallel) + R"J(},
      "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}},
    "TrainingJobDefinition": {
      "AlgorithmSpecification": {"TrainingImage": "file://)J" + trainer.string() + R"J(", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": ")J" + instance_type + R"J(", "InstanceCount": 1, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": )J" + std::to_string(max_runtime_s) + R"J(}}})J")
        .string();
  }

  static std::vector<fs::path> AllExamples() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(HPO_EXAMPLES_DIR)) {
      std::string ext = e.path().extension().string();
      if (e.is_regular_file() && (ext == ".yaml" || ext == ".json")) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    return files;
  }

  // Starts `hpo ARGS` in the background, its stdout and stderr in `log`; the caller kills and
  // reaps it.
  static pid_t Spawn(const fs::path& log, std::vector<std::string> args) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1), ::dup2(out, 2);
      std::vector<char*> argv{const_cast<char*>(HPO_BINARY)};
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(HPO_BINARY, argv.data());
      ::_exit(127);
    }
    return pid;
  }
  // Spawned processes, killed (SIGKILL) and reaped when it goes.
  struct Reaper {
    std::vector<pid_t> pids;
    ~Reaper() {
      for (pid_t p : pids) ::kill(p, SIGKILL), ::waitpid(p, nullptr, 0);
    }
  };
  // `hpo coordinator --keys KEYS` on loopback ports of the kernel's choice, its state in `state`,
  // its output in `log`, reaped by `reaper`: the endpoint workers connect to ("" if it said none).
  static std::string KeyedCoordinator(const fs::path& keys, const fs::path& state, const fs::path& log,
                                      Reaper* reaper) {
    reaper->pids.push_back(Spawn(log, {"coordinator", "--keys", keys.string(), "--listen", "tcp://127.0.0.1:0",
                                       "--http", "127.0.0.1:0", "--state-dir", state.string()}));
    if (!WaitForText(log, "workers connect to tcp://127.0.0.1:", 100)) return "";
    const std::string text = Slurp(log);
    const size_t at = text.find("workers connect to ") + 19;
    return text.substr(at, text.find(' ', at) - at);
  }
  // Whether `text` appears in `log` within `tenths` tenths of a second.
  static bool WaitForText(const fs::path& log, const std::string& text, int tenths) {
    for (int i = 0; i < tenths && Slurp(log).find(text) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Slurp(log).find(text) != std::string::npos;
  }

  static std::vector<std::string> Lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  fs::path dir_;
};

// The line (1-based) of `text` where `needle` first occurs; 0 if nowhere.
int LineOf(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  return at == std::string::npos ? 0 : 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n'));
}
std::string Line(const std::string& text, const std::string& needle) { return std::to_string(LineOf(text, needle)); }

// A spec with exactly two rule violations, each in a different field.
std::string InvalidSpec() {
  std::string text = Slurp(fs::path(HPO_EXAMPLES_DIR) / "quickstart.yaml");
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  };
  replace("maxParallelTrainingJobs: 3", "maxParallelTrainingJobs: 0");
  replace("strategy: Random", "strategy: Randm");
  return text;
}

TEST_F(CliTest, EveryExampleValidatesOnItsOwn) {
  auto files = AllExamples();
  ASSERT_GE(files.size(), 6u) << "examples/ lost a spec";
  for (const auto& f : files) {
    Outcome o = Hpo({"validate", f.string()});
    EXPECT_EQ(o.exit_code, 0) << f << "\n" << o.err;
    EXPECT_EQ(o.err, "") << f;
    EXPECT_EQ(o.out.rfind(f.string() + ": valid (", 0), 0u) << o.out;
  }
}

TEST_F(CliTest, ValidatePrintsOneSummaryLinePerFile) {
  auto files = AllExamples();
  std::vector<std::string> args{"validate"};
  for (const auto& f : files) args.push_back(f.string());
  Outcome o = Hpo(args);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  size_t summaries = 0;  // Autotune's choices follow their file's line, indented
  for (const auto& l : Lines(o.out)) summaries += l.rfind("  ", 0) == 0 ? 0 : 1;
  EXPECT_EQ(summaries, files.size()) << o.out;
}

// A file with a field error (a typo, a value of the wrong type) had only that reported: the
// rules' errors came one round later. Every problem comes at once now, without a rule's "is
// required" for a field that could not be read.
TEST_F(CliTest, ValidateReportsFieldAndRuleErrorsAtOnce) {
  std::string yaml = Slurp(Example("quickstart.yaml").string());
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("maxNumberOfTrainingJobs: 12", "maxNumberOfTrainingJobs: {twelve: 12}");
  replace("strategy: Random", "strategy: random");
  replace("maxParallelTrainingJobs: 3", "maxParalelTrainingJobs: 3");
  const fs::path bad = Write("several.yaml", yaml);
  Outcome o = Hpo({"validate", bad.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  // Each error names its line as compilers do, FILE:LINE: (a crd pass: only YAML syntax errors had one).
  const std::string limits = ": spec.hyperParameterTuningJobConfig.resourceLimits.";
  EXPECT_NE(o.err.find(bad.string() + ":" + Line(yaml, "maxNumberOfTrainingJobs") + limits +
                       "maxNumberOfTrainingJobs: expected an integer"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(bad.string() + ":" + Line(yaml, "maxParalelTrainingJobs") + limits +
                       "maxParalelTrainingJobs: unknown field; did you mean \"maxParallelTrainingJobs\"?"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(":" + Line(yaml, "strategy: random") +
                       ": spec.hyperParameterTuningJobConfig.strategy: must be one of Bayesian, Random, Hyperband, "
                       "Grid; got \"random\""),
            std::string::npos)
      << o.err;
  EXPECT_EQ(o.err.find("maxNumberOfTrainingJobs: is required"), std::string::npos) << o.err;
}

// examples/autotune.yaml writes no strategy, limits or ranges, only hints: `hpo validate` shows
// the job Autotune makes of it, each choice with its reason.
TEST_F(CliTest, ValidateListsWhatAutotuneChose) {
  const std::string f = Example("autotune.yaml").string();
  Outcome o = Hpo({"validate", f});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out.rfind(f + ": valid (CRD, Bayesian, 4 ranges, 40 jobs, 4 parallel)\n  Autotune chose:\n", 0), 0u)
      << o.out;
  for (const char* want :
       {"    spec.hyperParameterTuningJobConfig.parameterRanges.autoParameters[0] (\"eta\"): "
        "ContinuousParameterRanges 0.01 .. 0.55, Logarithmic\n",  // paths in the file's spelling
        "autoParameters[2] (\"subsample\"): ContinuousParameterRanges 0.08 .. 0.9, ReverseLogarithmic\n",
        "autoParameters[4] (\"dataset\"): static breast_cancer\n      not tuned: the hint is not a number",
        "resourceLimits.maxNumberOfTrainingJobs: 40\n      left out; 10 per tuned hyperparameter (4)",
        "trainingJobEarlyStoppingType: Auto\n", "spec.trainingJobDefinition.retryStrategy.maximumRetryAttempts: 2\n",
        "convergenceDetected.completeOnConvergence: Enabled\n"}) {
    EXPECT_NE(o.out.find(want), std::string::npos) << want << "\n" << o.out;
  }

  // Hints that give nothing to tune: refused, saying why for each.
  std::string text = Slurp(Example("autotune.yaml"));
  for (const char* hint : {"\"0.1\"", "\"3\"", "\"0.8\"", "\"1\""}) {
    text.replace(text.find(hint), std::string(hint).size(), "off");
  }
  Outcome refused = Hpo({"validate", Write("nothing.yaml", text).string()});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("Autotune found nothing to tune"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("\"eta\": not a number or true/false"), std::string::npos) << refused.err;
}

TEST_F(CliTest, QuickstartSummaryNamesSpellingStrategyRangesAndLimits) {
  std::string yaml = Example("quickstart.yaml").string();
  std::string json = Example("quickstart.json").string();
  Outcome o = Hpo({"validate", yaml, json});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, yaml + ": valid (CRD, Random, 3 ranges, 12 jobs, 3 parallel)\n" + json +
                       ": valid (SageMaker JSON, Random, 3 ranges, 12 jobs, 3 parallel)\n");
}

// A valid spec that asks for what hpo does not enforce (encryption, a VPC) is valid, with a note
// per field under its summary, in the file's spelling.
TEST_F(CliTest, ValidateNotesWhatHpoKeepsButDoesNotEnforce) {
  std::string text = Slurp(Example("quickstart.yaml"));
  const std::string anchor = "    outputDataConfig:\n";
  ASSERT_NE(text.find(anchor), std::string::npos) << text;
  text.replace(text.find(anchor), anchor.size(),
               "    enableInterContainerTrafficEncryption: true\n" + anchor + "      kmsKeyID: alias/out\n");
  const fs::path f = Write("encrypted.yaml", text);
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find(f.string() + ": valid (CRD, Random, 3 ranges, 12 jobs, 3 parallel)\n"
                       "  note: outputDataConfig.kmsKeyID: not enforced here: "),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("  note: enableInterContainerTrafficEncryption: not enforced here: the hosts of a multi-host"),
            std::string::npos)
      << o.out;
}

// A spec copied away from its trainer (file://trainers/... now points at nothing): `hpo validate`
// notes it and `hpo submit` warns before sending it (the workers may have the file; here they did
// not, and every training job failed as an infrastructure error without a word at submit time).
TEST_F(CliTest, ValidateAndSubmitSayWhenALocalTrainingProgramIsNotHere) {
  const fs::path f = Write("away.yaml", Slurp(Example("quickstart.yaml")));
  const std::string missing = (dir_ / "trainers" / "sklearn_gbt.py").string();
  Outcome v = Hpo({"validate", f.string()});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("  note: the training program " + missing +
                       " does not exist on this machine: each worker must have it at that path, or its training jobs "
                       "fail (file://trainers/sklearn_gbt.py is taken from the spec's directory)"),
            std::string::npos)
      << v.out;
  Outcome here = Hpo({"validate", Example("quickstart.yaml").string()});
  EXPECT_EQ(here.out.find("the training program"), std::string::npos) << here.out;
  // From standard input there is no spec's directory: it says where it looked.
  Outcome piped = Hpo({"validate", "-"}, f);
  EXPECT_EQ(piped.exit_code, 0) << piped.err;
  EXPECT_NE(piped.out.find("(file://trainers/sklearn_gbt.py: the spec came from standard input, so from the current "
                           "directory)"),
            std::string::npos)
      << piped.out;
  // Warned before sending (nothing listens there: exit 3 after the warning).
  Outcome s = Hpo({"submit", f.string(), "--coordinator", "http://127.0.0.1:9"});
  EXPECT_EQ(s.exit_code, 3) << s.err;
  EXPECT_EQ(s.err.rfind("hpo: warning: the training program " + missing + " does not exist on this machine", 0), 0u)
      << s.err;
}

// A CRD that hpo runs but `kubectl apply` would refuse (an unquoted number where the CRD's schema
// has a string): valid, with a note naming each such value and how to write it.
TEST_F(CliTest, ValidateNotesWhatKubectlApplyWouldRefuse) {
  std::string text = Slurp(Example("quickstart.yaml"));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"num_round: \"50\"", "num_round: 50"}, {"maxNumberOfTrainingJobs: 12", "maxNumberOfTrainingJobs: \"12\""}}) {
    ASSERT_NE(text.find(from), std::string::npos) << from;
    text.replace(text.find(from), from.size(), to);
  }
  const fs::path f = Write("kubectl.yaml", text);
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find(f.string() + ": valid (CRD, Random, 3 ranges, 12 jobs, 3 parallel)\n"
                       "  note: `kubectl apply` would refuse this resource: kubectl reads 2 values as another type "
                       "than the CRD's schema has there"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find(": spec.trainingJobDefinition.staticHyperParameters.num_round: 50 is an integer to kubectl "
                       "(YAML 1.1) and the CRD's schema has a string here: write it in quotes, \"50\"\n"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find(": spec.hyperParameterTuningJobConfig.resourceLimits.maxNumberOfTrainingJobs: \"12\" is "
                       "quoted, a string to kubectl, and the CRD's schema has an integer here: write it without "
                       "quotes, 12\n"),
            std::string::npos)
      << o.out;
  EXPECT_EQ(Hpo({"validate", Example("quickstart.yaml")}).out.find("kubectl apply"), std::string::npos);
}

TEST_F(CliTest, ValidateTakesTheHyperparameterAndMetricLimits) {
  Outcome o = Hpo({"validate", "--max-tunable-hyperparameters", "2", "--max-metric-definitions", "1",
                   Example("quickstart.yaml").string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("defines 3 tunable hyperparameters; at most 2 are allowed"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("must have at most 1 metric definitions, got 3"), std::string::npos) << o.err;
  EXPECT_EQ(Hpo({"validate", "--max-metric-definitions", "101", Example("quickstart.yaml").string()}).exit_code, 2)
      << "an assignment carries at most 100";
}

TEST_F(CliTest, QuickstartYamlAndJsonAreTheSameJob) {
  auto yaml = hpo::proto::ParseSpec(Slurp(Example("quickstart.yaml")));
  auto json = hpo::proto::ParseSpec(Slurp(Example("quickstart.json")));
  ASSERT_TRUE(yaml.ok()) << yaml.status().message();
  ASSERT_TRUE(json.ok()) << json.status().message();
  EXPECT_EQ(yaml->spelling, hpo::proto::Spelling::kCrd);
  EXPECT_EQ(json->spelling, hpo::proto::Spelling::kApi);
  EXPECT_TRUE(yaml->document.spec == json->document.spec);
}

TEST_F(CliTest, MalformedYamlExitsTwoNamingFileAndLine) {
  fs::path f = Write("broken.yaml", "spec:\n  a: [1, 2\n  b: c\n");
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err.rfind(f.string() + ": malformed YAML at line ", 0), 0u) << o.err;
}

TEST_F(CliTest, MalformedJsonExitsTwoNamingFileAndLine) {
  fs::path f = Write("broken.json", "{\"HyperParameterTuningJobName\": \"x\",");
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.err.rfind(f.string() + ": malformed JSON at line 1", 0), 0u) << o.err;
}

TEST_F(CliTest, MissingFileExitsTwoWithTheOsReason) {
  fs::path f = dir_ / "no-such-spec.yaml";
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find(f.string()), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("No such file or directory"), std::string::npos) << o.err;
}

// A spec's Environment entry that hpo sets for every training job (SM_MODEL_DIR, TRAINING_JOB_NAME)
// is noted by validate and submit: the program gets hpo's value, and nothing said so (a security
// pass). Names of the spec's own pass without a word.
TEST_F(CliTest, ValidateNotesEnvironmentEntriesTheContractOverrides) {
  std::string yaml = Slurp(Example("quickstart.yaml").string());
  const size_t at = yaml.find("  trainingJobDefinition:\n");
  ASSERT_NE(at, std::string::npos);
  yaml.insert(at + std::string("  trainingJobDefinition:\n").size(),
              "    environment: {SM_MODEL_DIR: /etc, TRAINING_JOB_NAME: x, MY_FLAG: \"1\"}\n");
  const fs::path f = Write("env.yaml", yaml);
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("note: Environment sets SM_MODEL_DIR, TRAINING_JOB_NAME: hpo sets these for every training "
                       "job"),
            std::string::npos)
      << o.out;
  EXPECT_EQ(o.out.find("MY_FLAG"), std::string::npos) << o.out;
}

TEST_F(CliTest, InvalidSpecExitsTwoAndPrintsEveryErrorWithItsFieldPath) {
  fs::path f = Write("invalid.yaml", InvalidSpec());
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  auto lines = Lines(o.err);
  ASSERT_EQ(lines.size(), 2u) << o.err;
  const std::string spec = InvalidSpec(), prefix = ": spec.hyperParameterTuningJobConfig.";
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      f.string() + ":" + Line(spec, "strategy: Randm") + prefix +
                          "strategy: must be one of Bayesian, Random, Hyperband, Grid; got \"Randm\""),
            lines.end())
      << o.err;
  EXPECT_NE(std::find_if(lines.begin(), lines.end(),
                         [&](const std::string& l) {
                           return l.rfind(f.string() + ":" + Line(spec, "maxParallelTrainingJobs: 0") + prefix +
                                              "resourceLimits.maxParallelTrainingJobs: ",
                                          0) == 0;
                         }),
            lines.end())
      << o.err;
}

TEST_F(CliTest, ApiSpellingErrorsUseApiFieldPaths) {
  std::string text = Slurp(Example("quickstart.json"));
  text.replace(text.find("\"MaxParallelTrainingJobs\": 3"), 28, "\"MaxParallelTrainingJobs\": 0");
  fs::path f = Write("invalid.json", text);
  Outcome o = Hpo({"validate", f.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(
      o.err.rfind(
          f.string() + ": HyperParameterTuningJobConfig.ResourceLimits.MaxParallelTrainingJobs: ",
          0),
      0u)
      << o.err;
}

TEST_F(CliTest, OneBadFileAmongGoodOnesExitsTwoAndStillReportsTheGoodOnes) {
  fs::path bad = Write("invalid.yaml", InvalidSpec());
  std::string good = Example("quickstart.yaml").string();
  Outcome o = Hpo({"validate", good, bad.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out.rfind(good + ": valid (", 0), 0u) << o.out;
  EXPECT_NE(o.err.find(bad.string() + ":"), std::string::npos);
}

TEST_F(CliTest, ConvertCrdToApiAndBackGivesAnEqualDocument) {
  Outcome api = Hpo({"convert", Example("quickstart.yaml").string(), "--to", "api"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  EXPECT_EQ(api.out, Slurp(Example("quickstart.json")));  // the checked-in request is this output
  // Its program is relative to the spec's directory: fine for hpo submit and hpo run, refused by a
  // coordinator from the aws CLI or boto3, as the note says.
  EXPECT_NE(api.err.find("note: TrainingImage file://trainers/sklearn_gbt.py is relative to the spec file's directory"),
            std::string::npos)
      << api.err;
  fs::path json = Write("quickstart.json", api.out);
  Outcome crd = Hpo({"convert", json.string(), "--to", "crd"});
  ASSERT_EQ(crd.exit_code, 0) << crd.err;

  auto original = hpo::proto::ParseSpec(Slurp(Example("quickstart.yaml")));
  auto back = hpo::proto::ParseSpec(crd.out);
  ASSERT_TRUE(original.ok()) << original.status().message();
  ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << crd.out;
  EXPECT_EQ(back->spelling, hpo::proto::Spelling::kCrd);
  EXPECT_TRUE(back->document == original->document) << crd.out;
}

TEST_F(CliTest, ConvertEveryCrdExampleToApiAndBackKeepsTheSpec) {
  for (const auto& f : AllExamples()) {
    if (f.extension() != ".yaml") continue;
    Outcome api = Hpo({"convert", f.string(), "--to", "api"});
    ASSERT_EQ(api.exit_code, 0) << f << "\n" << api.err;
    Outcome crd = Hpo({"convert", Write("api.json", api.out).string(), "--to", "crd"});
    ASSERT_EQ(crd.exit_code, 0) << f << "\n" << crd.err;
    auto original = hpo::proto::ParseSpec(Slurp(f));
    auto back = hpo::proto::ParseSpec(crd.out);
    ASSERT_TRUE(original.ok() && back.ok()) << f;
    EXPECT_TRUE(back->document.spec == original->document.spec) << f << "\n" << crd.out;
    // What a SageMaker request cannot hold is named on stderr (instance-groups.yaml has a namespace).
    auto metadata = original->document.metadata;
    metadata.erase("name");
    EXPECT_EQ(api.err.find("(Kubernetes only) left out") != std::string::npos, !metadata.empty()) << f << api.err;
    if (metadata.contains("namespace")) {
      EXPECT_NE(api.err.find("metadata.namespace"), std::string::npos) << api.err;
    }
  }
}

TEST_F(CliTest, ConvertDefaultsToTheOtherSpellingAndFormat) {
  Outcome to_api = Hpo({"convert", Example("quickstart.yaml").string()});
  ASSERT_EQ(to_api.exit_code, 0) << to_api.err;
  EXPECT_EQ(to_api.out.rfind("{\n  \"HyperParameterTuningJobName\": \"quickstart\"", 0), 0u)
      << to_api.out;
  Outcome to_crd = Hpo({"convert", Example("quickstart.json").string()});
  ASSERT_EQ(to_crd.exit_code, 0) << to_crd.err;
  EXPECT_EQ(
      to_crd.out.rfind(
          "apiVersion: sagemaker.services.k8s.aws/v1alpha1\nkind: HyperParameterTuningJob\n", 0),
      0u)
      << to_crd.out;
  Outcome crd_json =
      Hpo({"convert", Example("quickstart.json").string(), "--to", "crd", "-o", "json"});
  ASSERT_EQ(crd_json.exit_code, 0) << crd_json.err;
  auto parsed = hpo::proto::ParseSpec(crd_json.out);
  ASSERT_TRUE(parsed.ok()) << crd_json.out;
  EXPECT_EQ(parsed->spelling, hpo::proto::Spelling::kCrd);
}

// What kubectl would do with the converted document is said: a capitalised job name (SageMaker
// allows it) gets a lower-case metadata.name, as Kubernetes requires; every field the ACK CRD has
// no place for is named, not only one of them; a CRD whose metadata.name Kubernetes would refuse
// gets a note, and is read all the same.
TEST_F(CliTest, ConvertToCrdWritesAKubernetesNameAndNamesEveryFieldAClusterWouldDrop) {
  std::string text = Slurp(Example("quickstart.json"));
  text.replace(text.find("\"quickstart\""), 12, "\"Quick-Start-01\"");
  text.replace(text.find("\"Strategy\""), 10, "\"RandomSeed\": 7, \"Strategy\"");
  const std::string f = Write("Upper.json", text).string();
  Outcome crd = Hpo({"convert", f, "--to", "crd"});
  ASSERT_EQ(crd.exit_code, 0) << crd.err;
  EXPECT_NE(crd.out.find("metadata:\n  name: quick-start-01\n"), std::string::npos) << crd.out;
  EXPECT_NE(crd.out.find("hyperParameterTuningJobName: Quick-Start-01"), std::string::npos) << crd.out;
  EXPECT_NE(crd.err.find("the ACK controller's HyperParameterTuningJob CRD has no randomSeed; hpo reads it, but a "
                         "Kubernetes cluster would refuse it"),
            std::string::npos)
      << crd.err;
  // Autotune and its autoParameters are in the ACK CRD (the note said a cluster would drop them).
  Outcome autotune = Hpo({"convert", Example("autotune.yaml").string(), "--to", "crd"});
  ASSERT_EQ(autotune.exit_code, 0) << autotune.err;
  EXPECT_EQ(autotune.err.find("autotune"), std::string::npos) << autotune.err;
  EXPECT_EQ(autotune.err.find("autoParameters"), std::string::npos) << autotune.err;
  // Two fields of a definition are named.
  std::string more = Slurp(Example("quickstart.json"));
  more.replace(more.find("\"MaxRuntimeInSeconds\""), 21, "\"MaxPendingTimeInSeconds\": 7200, \"MaxRuntimeInSeconds\"");
  more.replace(more.find("\"S3OutputPath\""), 14, "\"CompressionType\": \"NONE\", \"S3OutputPath\"");
  Outcome two = Hpo({"convert", Write("more.json", more).string(), "--to", "crd"});
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("CRD has no outputDataConfig.compressionType, stoppingCondition.maxPendingTimeInSeconds;"),
            std::string::npos)
      << two.err;
  // ... and back: the lower-cased name is the job's, not Kubernetes metadata left out.
  Outcome api = Hpo({"convert", Write("back.yaml", crd.out).string(), "--to", "api"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  EXPECT_EQ(api.err.find("left out"), std::string::npos) << api.err;
  EXPECT_EQ(api.out, Hpo({"convert", f, "--to", "api"}).out);

  std::string yaml = Slurp(Example("quickstart.yaml"));
  yaml.replace(yaml.find("  name: quickstart"), 18, "  name: Quick_Start");
  Outcome noted = Hpo({"validate", Write("badname.yaml", yaml).string()});
  EXPECT_EQ(noted.exit_code, 0) << noted.err;
  EXPECT_NE(noted.err.find("note: metadata.name \"Quick_Start\" is not a Kubernetes name"), std::string::npos)
      << noted.err;

  // Managed spot without checkpoints is valid, and starts over after every interruption: a note.
  std::string spot = Slurp(Example("quickstart.yaml"));
  spot.replace(spot.find("  trainingJobDefinition:\n"), 25,
               "  trainingJobDefinition:\n    enableManagedSpotTraining: true\n");
  Outcome spot_noted = Hpo({"validate", Write("spot.yaml", spot).string()});
  EXPECT_EQ(spot_noted.exit_code, 0) << spot_noted.err;
  EXPECT_NE(spot_noted.err.find("note: EnableManagedSpotTraining is true without a CheckpointConfig: a training job "
                                "interrupted on a spot worker starts over from the beginning"),
            std::string::npos)
      << spot_noted.err;
  // ... and without MaxWaitTimeInSeconds, which SageMaker expects with managed spot.
  EXPECT_NE(spot_noted.err.find("note: EnableManagedSpotTraining is true without StoppingCondition.MaxWaitTimeInSeconds"),
            std::string::npos)
      << spot_noted.err;
  EXPECT_EQ(Hpo({"validate", Example("quickstart.yaml")}).err.find("EnableManagedSpotTraining"), std::string::npos);
}

// SageMaker's quotas are this coordinator's to set: a spec over the default is refused naming the
// option, and passes with the quota raised (hpo run and hpo coordinator take the same options).
TEST_F(CliTest, QuotasAreOptionsNotHardWired) {
  std::string text = Slurp(Example("quickstart.yaml"));
  text.replace(text.find("maxParallelTrainingJobs: 3"), 26, "maxParallelTrainingJobs: 150");
  const std::string f = Write("wide.yaml", text).string();
  Outcome refused = Hpo({"validate", f});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("maxParallelTrainingJobs: must be at most 100, got 150; that is a quota (per account on SageMaker, an option here): "
                             "raise it with --max-parallel-training-jobs"),
            std::string::npos)
      << refused.err;
  Outcome raised = Hpo({"validate", f, "--max-parallel-training-jobs", "200"});
  EXPECT_EQ(raised.exit_code, 0) << raised.err;
  EXPECT_NE(raised.out.find("150 parallel"), std::string::npos) << raised.out;
  Outcome converted = Hpo({"convert", f, "--to", "api"});
  EXPECT_EQ(converted.exit_code, 0) << "converting runs nothing: no quota applies; " << converted.err;
}

// "-" reads the spec from standard input, so conversions pipe into validate and convert.
TEST_F(CliTest, ADashReadsTheSpecFromStandardInput) {
  Outcome api = Hpo({"convert", Example("quickstart.yaml").string(), "--to", "api"});
  ASSERT_EQ(api.exit_code, 0) << api.err;
  const fs::path piped = Write("piped.json", api.out);
  Outcome valid = Hpo({"validate", "-"}, piped);
  EXPECT_EQ(valid.exit_code, 0) << valid.err;
  EXPECT_EQ(valid.out.rfind("-: valid (SageMaker JSON, Random", 0), 0u) << valid.out;
  Outcome crd = Hpo({"convert", "-"}, piped);
  ASSERT_EQ(crd.exit_code, 0) << crd.err;
  EXPECT_EQ(crd.out, Hpo({"convert", piped.string()}).out);
  Outcome empty = Hpo({"validate", "-"});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("-: "), std::string::npos) << empty.err;
}

TEST_F(CliTest, ConvertRefusesAnInvalidSpec) {
  fs::path f = Write("invalid.yaml", InvalidSpec());
  Outcome o = Hpo({"convert", f.string(), "--to", "api"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find(f.string() + ":" + Line(InvalidSpec(), "strategy: Randm") +
                       ": spec.hyperParameterTuningJobConfig.strategy: "),
            std::string::npos)
      << o.err;
  // No quota applies to a conversion: the bound it names is the rule's, not INT64_MAX.
  EXPECT_NE(o.err.find("resourceLimits.maxParallelTrainingJobs: must be >= 1, got 0"), std::string::npos) << o.err;
}

// The quickstart as a new user runs it: `hpo run` with local workers, Debian's python3 running
// the scikit-learn trainer, and SageMaker's own XGBoost metric regexes ("#011" for the tab)
// picking the objective out of every training job's log.
TEST_F(CliTest, QuickstartRunsToCompletionWithTheSklearnTrainer) {
  if (std::system("/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-sklearn (bash scripts/install-deps.sh --examples)";
  }
  // With the dashboard on (any free port): stdin is not a terminal, so it goes when the job ends.
  Outcome o = Hpo({"run", Example("quickstart.yaml").string(), "--workers", "3", "--state-dir",
                   (dir_ / "state").string(), "-o", "json", "--dashboard", "0"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("hpo: dashboard at http://127.0.0.1:"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("/ui/jobs/quickstart\n"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("stays at"), std::string::npos) << "no terminal: nobody to wait for";
  auto j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  EXPECT_EQ(j["HyperParameterTuningJobStatus"], "Completed") << o.err;
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 12) << o.err;
  EXPECT_EQ(j["ObjectiveStatusCounters"]["Succeeded"], 12) << o.err;
  const auto& best = j["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"];
  EXPECT_EQ(best["MetricName"], "validation:auc");
  ASSERT_TRUE(best["Value"].is_number()) << o.out;
  EXPECT_GT(best["Value"].get<double>(), 0.9);
  EXPECT_LE(best["Value"].get<double>(), 1.0);

  // After the run, its state directory answers the reading commands as a coordinator would,
  // and nothing in it changes (no -wal/-shm files either: the store is read as immutable).
  const std::string state = (dir_ / "state").string();
  const std::string db_before = Slurp(dir_ / "state" / "hpo.db");
  Outcome d = Hpo({"describe", "quickstart", "--state-dir", state});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  EXPECT_EQ(nlohmann::json::parse(d.out), j) << "the same DescribeHyperParameterTuningJob document";
  Outcome table = Hpo({"describe", "quickstart", "--state-dir", state, "-o", "table"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("Tuning job quickstart: Completed"), std::string::npos) << table.out;
  // Failed counts both kinds, as hpo list does (it said "0 failed, 2 infrastructure errors").
  EXPECT_NE(table.out.find("training jobs: 12 completed, 0 stopped, 0 failed\n"), std::string::npos) << table.out;
  // The ranges in columns (a usability pass found them ragged).
  EXPECT_NE(table.out.find("  ranges:\n"
                           "    max_depth  integer     2 .. 6       Linear\n"
                           "    eta        continuous  0.01 .. 0.5  Logarithmic\n"
                           "    subsample  continuous  0.5 .. 1.0   Linear\n"),
            std::string::npos)
      << table.out;
  Outcome yaml = Hpo({"describe", "quickstart", "--state-dir", state, "-o", "yaml"});
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_NE(yaml.out.find("kind: HyperParameterTuningJob"), std::string::npos) << yaml.out;
  Outcome t = Hpo({"trials", "quickstart", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_EQ(nlohmann::json::parse(t.out)["TrainingJobSummaries"].size(), 12u) << t.out;
  // -o names, as hpo list and hpo search have (a usability pass reached for it).
  Outcome tn = Hpo({"trials", "quickstart", "--state-dir", state, "-o", "names"});
  ASSERT_EQ(tn.exit_code, 0) << tn.err;
  ASSERT_EQ(Lines(tn.out).size(), 12u) << tn.out;
  EXPECT_EQ(Lines(tn.out)[0].rfind("quickstart-", 0), 0u) << tn.out;
  // The table's columns hold whatever the names' length: each row's status starts under STATUS
  // (a 32-character job's 45-character names overflowed a fixed 40).
  ::unsetenv("COLUMNS");  // (to a file: no width)
  Outcome tt = Hpo({"trials", "quickstart", "--state-dir", state});
  ASSERT_EQ(tt.exit_code, 0) << tt.err;
  const auto rows = Lines(tt.out);
  ASSERT_EQ(rows.size(), 13u) << tt.out;
  const size_t status_at = rows[0].find("STATUS");
  for (size_t i = 1; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i].find(" Completed ") + 1, status_at) << tt.out;
    EXPECT_GT(status_at, rows[i].find(' ')) << "a name runs into the status: " << rows[i];
  }
  // At a terminal's width ($COLUMNS) the hyperparameters wrap, whole, under their column (the
  // terminal wrapping a long line broke the table; a dashboard pass): the same pairs, no line wider.
  ::setenv("COLUMNS", "80", 1);  // the common terminal (it wrapped only from 86 on; a regression pass)
  Outcome narrow = Hpo({"trials", "quickstart", "--state-dir", state});
  ::unsetenv("COLUMNS");
  ASSERT_EQ(narrow.exit_code, 0) << narrow.err;
  const auto wrapped = Lines(narrow.out);
  const size_t hps_at = rows[0].find("HYPERPARAMETERS");
  ASSERT_GT(wrapped.size(), rows.size()) << narrow.out;
  std::string pairs, pairs_wrapped;
  for (size_t i = 1; i < rows.size(); ++i) pairs += " " + rows[i].substr(hps_at);
  for (size_t i = 1; i < wrapped.size(); ++i) {
    // No line wider, but for a pair longer than the room, alone on its line.
    EXPECT_TRUE(wrapped[i].size() <= 80u || wrapped[i].substr(hps_at).find(' ') == std::string::npos) << narrow.out;
    if (wrapped[i][0] == ' ') {
      EXPECT_EQ(wrapped[i].find_first_not_of(' '), hps_at) << narrow.out;
    }
    pairs_wrapped += " " + wrapped[i].substr(hps_at);
  }
  EXPECT_EQ(pairs_wrapped, pairs);
  const std::string best_name = j["BestTrainingJob"]["TrainingJobName"].get<std::string>();
  // hpo search (SageMaker's Search) on the same state: the best training job sorts first, with
  // the columns the conditions name; names for scripts; a condition in no known form exits 2.
  Outcome found = Hpo({"search", "Metrics.validation:auc >= 0", "HyperParameters.max_depth>=2",
                       "--sort-by", "Metrics.validation:auc", "--state-dir", state});
  ASSERT_EQ(found.exit_code, 0) << found.err;
  const auto found_rows = Lines(found.out);
  ASSERT_EQ(found_rows.size(), 13u) << found.out;
  EXPECT_EQ(found_rows[0].rfind("TRAINING JOB", 0), 0u) << found.out;
  EXPECT_NE(found_rows[0].find("Metrics.validation:auc"), std::string::npos) << found.out;
  EXPECT_NE(found_rows[0].find("HyperParameters.max_depth"), std::string::npos) << found.out;
  // Descending by the metric: a best one first (another training job may tie with the best).
  std::set<std::string> best_ones;
  const nlohmann::json summaries = nlohmann::json::parse(t.out)["TrainingJobSummaries"];
  for (const auto& s : summaries) {
    if (s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == best["Value"]) {
      best_ones.insert(s["TrainingJobName"].get<std::string>());
    }
  }
  EXPECT_TRUE(best_ones.count(found_rows[1].substr(0, found_rows[1].find(' ')))) << found.out << best.dump();
  Outcome names = Hpo({"search", "TrainingJobStatus = Completed", "--max", "5", "-o", "names", "--state-dir", state});
  ASSERT_EQ(names.exit_code, 0) << names.err;
  EXPECT_EQ(Lines(names.out).size(), 5u) << names.out;
  EXPECT_NE(names.err.find("5 of 12 shown"), std::string::npos) << names.err;
  Outcome jobs = Hpo({"search", "--tuning-jobs", "HyperParameterTuningJobConfig.Strategy = Random", "-o", "json",
                      "--state-dir", state});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_EQ(nlohmann::json::parse(jobs.out)["Results"][0]["HyperParameterTuningJob"]["HyperParameterTuningJobName"],
            "quickstart")
      << jobs.out;
  Outcome none = Hpo({"search", "Tags.team = nobody", "--state-dir", state});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(none.out, "");
  EXPECT_NE(none.err.find("nothing matched"), std::string::npos) << none.err;
  // A word after an operator belongs to the value: these are Contains, not In or Exists (which
  // would name the property "TrainingJobName ~ 0" and be refused).
  for (const char* contains : {"TrainingJobName ~ 0 in 1", "FailureReason ~ file exists"}) {
    Outcome c = Hpo({"search", contains, "--state-dir", state});
    EXPECT_EQ(c.exit_code, 0) << contains << ": " << c.err;
    EXPECT_NE(c.err.find("nothing matched"), std::string::npos) << contains << ": " << c.err;
  }
  Outcome no_op = Hpo({"search", "max_depth", "--state-dir", state});
  EXPECT_EQ(no_op.exit_code, 2);
  EXPECT_NE(no_op.err.find("has no operator: write NAME OP VALUE"), std::string::npos) << no_op.err;
  // An operator it does not know is named as one (">>" read as ">" and a value "> 0.9" was "not
  // a number"); "==" is "=".
  Outcome doubled = Hpo({"search", "Metrics.validation:auc >> 0.9", "--state-dir", state});
  EXPECT_EQ(doubled.exit_code, 2);
  EXPECT_NE(doubled.err.find("has an operator hpo does not know (>>): write NAME OP VALUE"), std::string::npos)
      << doubled.err;
  Outcome equals = Hpo({"search", "TrainingJobStatus == Completed", "-o", "names", "--state-dir", state});
  EXPECT_EQ(equals.exit_code, 0) << equals.err;
  EXPECT_EQ(std::count(equals.out.begin(), equals.out.end(), '\n'), 12) << equals.out;
  Outcome refused = Hpo({"search", "Metric.auc > 1", "--state-dir", state});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("did you mean Metrics.NAME?"), std::string::npos) << refused.err;
  Outcome logs = Hpo({"logs", best_name, "--state-dir", state});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("validation-auc"), std::string::npos) << logs.out;
  Outcome job_logs = Hpo({"logs", "quickstart", "--state-dir", state});
  EXPECT_EQ(job_logs.exit_code, 1);
  EXPECT_NE(job_logs.err.find("quickstart is a tuning job; hpo logs takes one of its training jobs (hpo trials quickstart"),
            std::string::npos)
      << job_logs.err;
  Outcome list = Hpo({"list", "--state-dir", state, "-o", "names"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out, "quickstart\n");
  // The winning configuration, every hyperparameter, ready to train with (a usability pass found
  // only the tuned ones, and no way to describe a training job from the command line).
  Outcome bestcfg = Hpo({"describe", "quickstart", "--best", "--state-dir", state});
  ASSERT_EQ(bestcfg.exit_code, 0) << bestcfg.err;
  auto hp = nlohmann::json::parse(bestcfg.out, nullptr, false);
  ASSERT_TRUE(hp.is_object()) << bestcfg.out;
  EXPECT_EQ(hp["dataset"], "breast_cancer") << "static hyperparameters too: " << bestcfg.out;
  EXPECT_TRUE(hp.contains("eta") && hp.contains("max_depth")) << bestcfg.out;
  EXPECT_FALSE(hp.contains("_tuning_objective_metric")) << bestcfg.out;
  // hpo compare: a state directory names every job in it; a name reads --state-dir.
  Outcome cmp = Hpo({"compare", state, "quickstart", "--state-dir", state});
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  EXPECT_NE(cmp.out.find("Objective: Maximize validation:auc\n"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("Each judged by its first 12 training jobs"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("\nstate       Random    Completed  12 (12 scored)"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("\nquickstart  Random    Completed  12 (12 scored)"), std::string::npos) << cmp.out;
  EXPECT_NE(cmp.out.find("Best so far (higher is better), by training job:"), std::string::npos)
      << "and the plot: " << cmp.out;
  EXPECT_NE(cmp.out.find("  A  state\n  B  quickstart\n"), std::string::npos) << cmp.out;
  Outcome cmpj = Hpo({"compare", state, "--budget", "5", "-o", "json"});
  ASSERT_EQ(cmpj.exit_code, 0) << cmpj.err;
  auto cj = nlohmann::json::parse(cmpj.out, nullptr, false);
  ASSERT_TRUE(cj.is_object()) << cmpj.out;
  EXPECT_EQ(cj["Budget"], 5);
  EXPECT_EQ(cj["Jobs"][0]["Best"], best["Value"]);
  EXPECT_EQ(cj["Jobs"][0]["BestTrainingJob"], j["BestTrainingJob"]["TrainingJobName"]);
  EXPECT_EQ(cj["Jobs"][0]["BestSoFar"].size(), 12u);
  Outcome nodir = Hpo({"compare", state + "-nope"});
  EXPECT_EQ(nodir.exit_code, 2);
  EXPECT_NE(nodir.err.find("no state directory " + state + "-nope"), std::string::npos) << nodir.err;
  Outcome noname = Hpo({"compare", "nope", "--state-dir", state});
  EXPECT_EQ(noname.exit_code, 1);
  EXPECT_NE(noname.err.find("nope: no tuning job"), std::string::npos) << noname.err;
  Outcome tj = Hpo({"describe", best_name, "--state-dir", state, "-o", "table"});
  ASSERT_EQ(tj.exit_code, 0) << tj.err;
  EXPECT_NE(tj.out.find("Training job     " + best_name), std::string::npos) << tj.out;
  EXPECT_NE(tj.out.find("Status history (UTC)"), std::string::npos) << tj.out;
  EXPECT_NE(tj.out.find("validation:auc"), std::string::npos) << tj.out;
  // -o yaml of a training job's name (without --training-job): its DescribeTrainingJob as YAML
  // (it used to ask for a tuning job's CRD document by that name and exit 1).
  Outcome tyaml = Hpo({"describe", best_name, "--state-dir", state, "-o", "yaml"});
  ASSERT_EQ(tyaml.exit_code, 0) << tyaml.err;
  EXPECT_NE(tyaml.out.find("TrainingJobName: " + best_name), std::string::npos) << tyaml.out;
  Outcome nyaml = Hpo({"describe", "nope", "--state-dir", state, "-o", "yaml"});
  EXPECT_EQ(nyaml.exit_code, 1);
  EXPECT_NE(nyaml.err.find("no tuning job or training job named nope"), std::string::npos) << nyaml.err;
  Outcome tjson = Hpo({"describe", best_name, "--training-job", "--state-dir", state});
  ASSERT_EQ(tjson.exit_code, 0) << tjson.err;
  EXPECT_EQ(nlohmann::json::parse(tjson.out)["TrainingJobName"], best_name);
  Outcome missing = Hpo({"describe", "nope", "--state-dir", state});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("ResourceNotFound: no tuning job or training job named nope on " + state + "/hpo.db"),
            std::string::npos)
      << missing.err;
  EXPECT_NE(missing.err.find("`hpo trials JOB --state-dir " + state + "`"), std::string::npos)
      << "says where the names are, in the same place: " << missing.err;
  // Not found from the other commands: the same pointer (hpo logs said nothing more).
  Outcome nologs = Hpo({"logs", "nope-001-deadbeef", "--state-dir", state});
  EXPECT_EQ(nologs.exit_code, 1) << nologs.err;
  EXPECT_NE(nologs.err.find("`hpo trials JOB --state-dir " + state + "`"), std::string::npos) << nologs.err;
  Outcome nostop = Hpo({"stop", "--training-job", "nope-001-deadbeef", "--state-dir", state});
  EXPECT_EQ(nostop.exit_code, 1) << "no such job: refused, not a usage error: " << nostop.err;
  EXPECT_NE(nostop.err.find("`hpo trials JOB --state-dir " + state + "`"), std::string::npos) << nostop.err;
  // A mistyped training job's name is too long for a tuning job's: not found as either, too.
  Outcome typo = Hpo({"describe", "quickstart-001-0000000x-something", "--state-dir", state});
  EXPECT_EQ(typo.exit_code, 1) << typo.err;
  EXPECT_NE(typo.err.find("no tuning job or training job named quickstart-001-0000000x-something"),
            std::string::npos)
      << typo.err;
  Outcome nowhere = Hpo({"trials", "quickstart", "--state-dir", (dir_ / "nowhere").string()});
  EXPECT_EQ(nowhere.exit_code, 2);
  EXPECT_NE(nowhere.err.find("no hpo.db there"), std::string::npos) << nowhere.err;
  Outcome both = Hpo({"describe", "quickstart", "--state-dir", state, "--coordinator", "http://127.0.0.1:1"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_EQ(Slurp(dir_ / "state" / "hpo.db"), db_before);
  EXPECT_FALSE(fs::exists(dir_ / "state" / "hpo.db-wal"));
  EXPECT_FALSE(fs::exists(dir_ / "state" / "hpo.db-shm"));
}

// An Autotune job through `hpo run` with the scikit-learn trainer: every training job gets values
// inside the ranges Autotune chose and the hint it could not scale as a static hyperparameter.
TEST_F(CliTest, AnAutotuneJobRunsWithTheRangesItChose) {
  if (std::system("/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-sklearn (bash scripts/install-deps.sh --examples)";
  }
  std::string text = Slurp(Example("autotune.yaml"));
  const std::string at = "    parameterRanges:";
  text.insert(text.find(at), "    resourceLimits: {maxNumberOfTrainingJobs: 6}\n");  // kept short; parallel chosen
  text.replace(text.find("file://trainers/"), 16, "file://" + Example("trainers/").string());
  const fs::path state = dir_ / "state";
  Outcome o = Hpo({"run", Write("autotune.yaml", text).string(), "--state-dir", state.string(), "-o", "json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("hpo: Autotune chose spec.hyperParameterTuningJobConfig.strategy: Bayesian"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("maxParallelTrainingJobs: 2"), std::string::npos) << o.err;
  auto j = nlohmann::json::parse(o.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  EXPECT_EQ(j["HyperParameterTuningJobStatus"], "Completed") << o.err;
  EXPECT_EQ(j["HyperParameterTuningJobConfig"]["Strategy"], "Bayesian");
  EXPECT_EQ(j["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"].size(), 2u) << o.out;
  const auto& counters = j["TrainingJobStatusCounters"];
  EXPECT_EQ(counters["Completed"].get<int>() + counters["Stopped"].get<int>(), 6) << o.out;
  const auto& best = j["BestTrainingJob"];
  const auto& hps = best["TunedHyperParameters"];
  const double eta = std::stod(hps["eta"].get<std::string>());
  EXPECT_GE(eta, 0.01);
  EXPECT_LE(eta, 0.55);
  const int depth = std::stoi(hps["max_depth"].get<std::string>());
  EXPECT_GE(depth, 1);
  EXPECT_LE(depth, 12);
  EXPECT_FALSE(hps.contains("dataset"));  // static, not tuned
  // The trainer read dataset=breast_cancer from hyperparameters.json (it prints its source).
  bool saw_dataset = false;
  for (const auto& e : fs::recursive_directory_iterator(state)) {
    if (e.path().filename() != "trial.log") continue;
    saw_dataset = saw_dataset || Slurp(e.path()).find("\"dataset\": \"breast_cancer\"") != std::string::npos;
  }
  EXPECT_TRUE(saw_dataset);

  // The job's history, read from its state directory after the run: Autotune's choices first.
  Outcome ev = Hpo({"events", "autotune", "--state-dir", state.string(), "--kind", "AutotuneChose"});
  ASSERT_EQ(ev.exit_code, 0) << ev.err;
  auto lines = Lines(ev.out);
  ASSERT_GE(lines.size(), 2u) << ev.out;
  EXPECT_EQ(lines[0].rfind("TIME (UTC)", 0), 0u) << ev.out;
  // The TRAINING JOB column is as wide as this job's training job names can be ("autotune" + 15),
  // not 46 for every job (MESSAGE began at column 95).
  // TIME 23, 2 spaces, KIND 20 (TrainingJobWithdrawn), a space, TRAINING JOB 8 + 15, a space.
  EXPECT_EQ(lines[0].find("MESSAGE"), 23u + 2 + 20 + 1 + (8 + 15) + 1) << lines[0];
  EXPECT_NE(lines[1].find("AutotuneChose"), std::string::npos) << ev.out;
  EXPECT_NE(ev.out.find("spec.hyperParameterTuningJobConfig.strategy = Bayesian (left out;"), std::string::npos)
      << ev.out;
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_NE(lines[i].find("AutotuneChose"), std::string::npos) << lines[i];
  Outcome json = Hpo({"events", "autotune", "--state-dir", state.string(), "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto first = nlohmann::json::parse(Lines(json.out).at(0), nullptr, false);
  EXPECT_EQ(first["kind"], "JobCreated") << json.out;
  // Submitted once its local workers had registered: its history does not open with a wait for
  // workers that was only ever true for milliseconds.
  EXPECT_EQ(json.out.find("no worker is registered"), std::string::npos) << json.out;
  Outcome missing = Hpo({"events", "nope", "--state-dir", state.string()});
  EXPECT_EQ(missing.exit_code, 1) << "as describe, trials and logs answer a name they do not know";
  Outcome bogus = Hpo({"events", "autotune", "--state-dir", state.string(), "--kind", "Bogus"});
  EXPECT_EQ(bogus.exit_code, 0);
  EXPECT_NE(bogus.err.find("no events of the kind(s) asked for; this history has: "), std::string::npos) << bogus.err;
  EXPECT_NE(bogus.err.find("AutotuneChose"), std::string::npos) << bogus.err;
  EXPECT_NE(missing.err.find("no events of a tuning job named nope in " + (state / "hpo.db").string() + "\n"), std::string::npos)
      << missing.err;  // the path itself: it was read through a dangling reference
}

// A spec whose instance type this machine cannot cover: `hpo run` says so once its workers have
// registered, naming --instance-type; with --instance-type the local workers serve the type and
// the job runs (the examples other than the quickstart name ml.m5.xlarge: 4 vCPUs, 16 GiB).
// hpo run --notify / --notify-chat: the events reach a receiver, the job's end included, before
// hpo run exits; bad notification options exit 2 before anything is made.
// A job ended by the runtime quota (hpo run --max-tuning-job-runtime) says so in the summary and
// in describe -o table, as one ended by its own MaxRuntimeInSeconds does (it said nothing, and
// read like a job that had run its training jobs: a limits pass).
TEST_F(CliTest, AJobEndedByTheRuntimeQuotaSaysSo) {
  std::string text = Slurp(Example("quickstart.yaml"));
  const size_t trainer = text.find("file://trainers/sklearn_gbt.py");
  ASSERT_NE(trainer, std::string::npos);
  const fs::path program = Write("slow.sh", "#!/bin/sh\nsleep 2\nprintf '[0]\\tvalidation-auc:0.75\\n'\n");
  fs::permissions(program, fs::perms::owner_all);
  text.replace(trainer, std::string("file://trainers/sklearn_gbt.py").size(), "file://" + program.string());
  const std::string spec = Write("quota.yaml", text).string();
  const std::string state = (dir_ / "quota").string();
  Outcome o = Hpo({"run", spec, "--workers", "1", "--state-dir", state, "--max-tuning-job-runtime", "3"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("  ended: the coordinator's runtime quota (3 s, hpo run --max-tuning-job-runtime"),
            std::string::npos)
      << o.out;
  Outcome d = Hpo({"describe", "quickstart", "--state-dir", state, "-o", "table"});
  EXPECT_NE(d.out.find("  ended: the coordinator's runtime quota (3 s"), std::string::npos) << d.out;
}

TEST_F(CliTest, RunNotifiesTheJobsEndBeforeItExits) {
  if (std::system("/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-sklearn (bash scripts/install-deps.sh --examples)";
  }
  httplib::Server receiver;
  std::mutex mu;
  std::vector<nlohmann::json> events, chat, ends;
  receiver.Post(".*", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    (req.path == "/chat" ? chat : req.path == "/ends" ? ends : events).push_back(nlohmann::json::parse(req.body));
    res.status = 200;
  });
  const int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { receiver.listen_after_bind(); });
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  std::string text = Slurp(Example("quickstart.yaml"));
  const size_t at = text.find("maxNumberOfTrainingJobs: 12");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, std::string("maxNumberOfTrainingJobs: 12").size(), "maxNumberOfTrainingJobs: 3");
  const size_t trainer = text.find("file://trainers/sklearn_gbt.py");
  ASSERT_NE(trainer, std::string::npos);
  text.replace(trainer, std::string("file://trainers/sklearn_gbt.py").size(),
               "file://" + Example("trainers/sklearn_gbt.py").string());
  const std::string spec = Write("notified.yaml", text).string();
  // A third URL with a pattern of its own (URL=PATTERN): only the tuning job's end; the others
  // get everything.
  Outcome o = Hpo({"run", spec, "--workers", "2", "--state-dir", (dir_ / "notified").string(), "--notify",
                   url + "/events", "--notify-chat", url + "/chat", "--notify", url + "/ends", "--notify-pattern",
                   url + "/ends=" + R"({"detail": {"HyperParameterTuningJobStatus": ["Completed", "Failed", "Stopped"]}})"});
  receiver.stop();
  serving.join();
  ASSERT_EQ(o.exit_code, 0) << o.err;
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back()["detail-type"], "SageMaker HyperParameter Tuning Job State Change");
  EXPECT_EQ(events.back()["detail"]["HyperParameterTuningJobStatus"], "Completed") << "the end, before hpo run exits";
  size_t completed = 0;
  for (const auto& e : events) completed += e["detail"].value("SecondaryStatus", "") == "Completed";
  EXPECT_EQ(completed, 3u) << "each training job's end";
  // Each state a training job was in was told, in order, each once: its events' secondary
  // statuses are its SecondaryStatusTransitions (they were ~3 of 5, a step's states merged).
  std::map<std::string, std::vector<std::string>> told;
  std::map<std::string, std::vector<std::string>> lived;
  for (const auto& e : events) {
    if (e["detail-type"] != "SageMaker Training Job State Change") continue;
    const std::string name = e["detail"]["TrainingJobName"];
    told[name].push_back(e["detail"]["SecondaryStatus"]);
    lived[name].clear();
    for (const auto& st : e["detail"]["SecondaryStatusTransitions"]) lived[name].push_back(st["Status"]);
  }
  ASSERT_EQ(told.size(), 3u);
  for (const auto& [name, statuses] : told) EXPECT_EQ(statuses, lived[name]) << name;
  ASSERT_EQ(chat.size(), 1u);
  EXPECT_EQ(chat[0]["text"].get<std::string>().rfind("Tuning job quickstart Completed after ", 0), 0u) << chat[0];
  ASSERT_EQ(ends.size(), 1u) << "only what its own pattern matches";
  EXPECT_EQ(ends[0]["detail"]["HyperParameterTuningJobStatus"], "Completed");

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--notify", "ftp://x"}, {"--notify", "http://127.0.0.1:99999/x"},
        {"--notify", url, "--notify-pattern", "[]"}, {"--notify", url, "--notify-pattern", ""},
        {"--notify", url, "--notify-pattern", "{\"detail\": 1}"},
        {"--notify-pattern", "{\"source\": [\"aws.sagemaker\"]}"}, {"--notify", url, "--notify-chat", url},
        {"--notify", url, "--notify-secret-file", (dir_ / "no-such-file").string()},
        // URL=PATTERN for a URL not given, and two patterns for the same URLs.
        {"--notify", url, "--notify-pattern", "http://elsewhere:1/x={\"source\": [\"aws.sagemaker\"]}"},
        {"--notify", url, "--notify-pattern", "{\"source\": [\"a\"]}", "--notify-pattern", "{\"source\": [\"b\"]}"}}) {
    std::vector<std::string> argv = {"run", spec, "--state-dir", (dir_ / "refused").string()};
    argv.insert(argv.end(), bad.begin(), bad.end());
    Outcome refused = Hpo(argv);
    EXPECT_EQ(refused.exit_code, 2) << bad[1] << ": " << refused.err;
    EXPECT_NE(refused.err.find("--notify"), std::string::npos) << refused.err;
    EXPECT_FALSE(fs::exists(dir_ / "refused")) << "nothing is made before the options are checked";
  }
}

TEST_F(CliTest, RunServesAnInstanceTypeThisMachineCannotCoverOnlyWhenToldTo) {
  if (std::system("/usr/bin/python3 -c 'import sklearn' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs Debian's python3-sklearn (bash scripts/install-deps.sh --examples)";
  }
  std::string text = Slurp(Example("quickstart.yaml"));
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
  };
  replace("instanceType: ml.m5.large", "instanceType: ml.m5.24xlarge");  // 96 vCPUs, 384 GiB
  replace("maxNumberOfTrainingJobs: 12", "maxNumberOfTrainingJobs: 3");
  replace("file://trainers/sklearn_gbt.py", "file://" + Example("trainers/sklearn_gbt.py").string());
  const std::string spec = Write("big.yaml", text).string();

  Outcome refused = Hpo({"run", spec, "--state-dir", (dir_ / "refused").string()});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("cannot run on this machine"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("ml.m5.24xlarge needs 96 vCPUs"), std::string::npos) << refused.err;
  // (And the --state-dir given: a job interrupted there and refused at its resume was started
  // anew elsewhere by the advice without it; a CLI pass.)
  EXPECT_NE(refused.err.find(" --instance-type ml.m5.24xlarge --state-dir " + (dir_ / "refused").string() +
                             " (worker i serves the i-th type"),
            std::string::npos)
      << "the command to run names every type the spec asks for: " << refused.err;
  // In a --state-dir of the user's, a job that never ran leaves no record: run there again with
  // the advice, it starts afresh instead of "resuming" a job that was never interrupted. The
  // directory the run made goes with it (left empty, it broke hpo compare on it).
  EXPECT_FALSE(fs::exists(dir_ / "refused")) << "the refused run's own directory was left behind";
  fs::create_directories(dir_ / "kept");  // one the user made stays, without the job
  Outcome again = Hpo({"run", spec, "--state-dir", (dir_ / "kept").string()});
  EXPECT_EQ(again.exit_code, 2) << again.err;
  Outcome left = Hpo({"list", "--state-dir", (dir_ / "kept").string(), "-o", "names"});
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_EQ(left.out, "") << "a usability pass found the refused job InProgress there";

  // A job of two definitions, one of them a type this machine cannot cover: refused before any
  // training job starts (those of the other definition ran first, and the refused job was left
  // InProgress with "2 running" that nothing ran), naming the definition, saying once what the
  // type needs, and giving both types' flags.
  std::string multi = Slurp(Example("multi-definition.yaml"));
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"maxNumberOfTrainingJobs: 30", "maxNumberOfTrainingJobs: 4"},
           {"instanceType: ml.m5.xlarge", "instanceType: ml.m5.24xlarge"},
           {"file://trainers/sklearn_gbt.py", "file://" + Example("trainers/sklearn_gbt.py").string()},
           {"file://trainers/sklearn_gbt.py", "file://" + Example("trainers/sklearn_gbt.py").string()}}) {
    const size_t at = multi.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    multi.replace(at, from.size(), to);
  }
  Outcome two = Hpo({"run", Write("multi.yaml", multi).string(), "--workers", "2", "--state-dir", (dir_ / "multi").string()});
  EXPECT_EQ(two.exit_code, 2) << two.err;
  EXPECT_NE(two.err.find("cannot run on this machine: no registered worker can serve ml.m5.24xlarge (training job "
                         "definition gbt-trees): ml.m5.24xlarge needs "),
            std::string::npos)
      << two.err;
  EXPECT_EQ(two.err.find("running"), std::string::npos) << "no progress line: nothing started: " << two.err;
  const size_t needs = two.err.find("ml.m5.24xlarge needs ");
  ASSERT_NE(needs, std::string::npos) << two.err;
  EXPECT_EQ(two.err.find("ml.m5.24xlarge needs ", needs + 1), std::string::npos) << "said once: " << two.err;
  EXPECT_NE(two.err.find("--instance-type ml.m5.large --instance-type ml.m5.24xlarge"), std::string::npos) << two.err;
  Outcome none_left = Hpo({"list", "--state-dir", (dir_ / "multi").string(), "-o", "names"});
  EXPECT_EQ(none_left.out, "") << none_left.err;

  // A multi-host training job with fewer local workers than hosts: the advice is more workers,
  // not --instance-type (which it was).
  std::string gang = Slurp(fs::path(spec));
  const size_t type_at = gang.find("instanceType: ml.m5.24xlarge");
  ASSERT_NE(type_at, std::string::npos);
  gang.replace(type_at, std::string("instanceType: ml.m5.24xlarge").size(), "instanceType: ml.m5.large");
  const size_t count_at = gang.find("instanceCount: 1");
  ASSERT_NE(count_at, std::string::npos) << gang;
  gang.replace(count_at, std::string("instanceCount: 1").size(), "instanceCount: 3");
  Outcome few = Hpo({"run", Write("gang.yaml", gang).string(), "--workers", "2", "--state-dir", (dir_ / "few").string()});
  EXPECT_EQ(few.exit_code, 2) << few.err;
  EXPECT_NE(few.err.find("--workers 3 --state-dir " + (dir_ / "few").string() + " (each local worker is one host)"),
            std::string::npos)
      << few.err;

  // Without --state-dir the directory made for a job that never ran is not left behind.
  const fs::path cwd = fs::current_path();
  fs::create_directories(dir_ / "cwd");
  fs::current_path(dir_ / "cwd");
  Outcome refused_default = Hpo({"run", spec});
  fs::current_path(cwd);
  EXPECT_EQ(refused_default.exit_code, 2) << refused_default.err;
  EXPECT_FALSE(fs::exists(dir_ / "cwd" / "hpo-runs")) << "nothing kept for a job that never ran";

  Outcome served = Hpo({"run", spec, "--instance-type", "ml.m5.24xlarge", "--state-dir", (dir_ / "served").string(),
                        "-o", "json"});
  ASSERT_EQ(served.exit_code, 0) << served.err;
  auto j = nlohmann::json::parse(served.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << served.out;
  EXPECT_EQ(j["HyperParameterTuningJobStatus"], "Completed") << served.err;
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 3) << served.err;
}

// A program whose objective's last line reads "loss=nan" (it diverged after a good epoch), with a
// regex that captures it: the training job has no objective, and is not the best (it was scored
// by its last finite value, 0.01, the best of the job).
TEST_F(CliTest, ATrainingJobWhoseObjectiveEndsInNaNHasNoObjective) {
  std::string text = Slurp(fs::path(ScriptJob(
      "nan", "#!/bin/bash\necho loss=0.01\nif [ \"$SM_HP_X\" \\> 0.5 ]; then echo loss=nan; else echo loss=0.5; fi\n",
      4, 2)));
  const std::string regex = R"(loss=([0-9.]+))";
  const size_t at = text.find(regex);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, regex.size(), R"(loss=(\\S+))");
  text.replace(text.find("\"Strategy\""), 10, "\"RandomSeed\": 3, \"Strategy\"");  // some of each
  const std::string spec = Write("nan.json", text).string();
  Outcome ran = Hpo({"run", spec, "--state-dir", (dir_ / "st").string(), "-o", "json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  auto j = nlohmann::json::parse(ran.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << ran.out;
  Outcome trials = Hpo({"trials", "nan", "--state-dir", (dir_ / "st").string(), "-o", "json"});
  ASSERT_EQ(trials.exit_code, 0) << trials.err;
  auto t = nlohmann::json::parse(trials.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(t.is_object()) << trials.out;
  int diverged = 0;
  for (const auto& s : t["TrainingJobSummaries"]) {
    const double x = std::stod(s["TunedHyperParameters"]["x"].get<std::string>());
    if (x > 0.5) {
      ++diverged;
      EXPECT_FALSE(s.contains("FinalHyperParameterTuningJobObjectiveMetric")) << s.dump();
    } else {
      EXPECT_EQ(s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], 0.5) << s.dump();
    }
  }
  ASSERT_GT(diverged, 0) << t.dump();
  ASSERT_LT(diverged, 4) << t.dump();
  EXPECT_EQ(j["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], 0.5) << j.dump();
  EXPECT_EQ(j["ObjectiveStatusCounters"]["Failed"], diverged) << j.dump();
}

// A heterogeneous spec's hints took turns: "--instance-type A --instance-type B" (2 workers: too
// few for 3 hosts), then "--workers 3" without the types, then the first again. Each hint now
// gives one flag per host (round robin serves each group its count) and enough workers, and the
// command it gives runs the job.
TEST_F(CliTest, RunHintsForAHeterogeneousSpecGiveOneCommandThatWorks) {
  std::string text = Slurp(fs::path(ScriptJob("het", "#!/bin/bash\necho loss=$SM_HP_X\n", 1, 1)));
  const std::string plain = R"("ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})";
  const size_t at = text.find(plain);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, plain.size(),
               R"("ResourceConfig": {"VolumeSizeInGB": 1, "InstanceGroups": [)"
               R"({"InstanceGroupName": "data", "InstanceType": "ml.m5.24xlarge", "InstanceCount": 2},)"
               R"({"InstanceGroupName": "train", "InstanceType": "ml.m5.large", "InstanceCount": 1}]})");
  const std::string spec = Write("het.json", text).string();
  const std::string works = " --workers 3 --instance-type ml.m5.24xlarge --instance-type ml.m5.24xlarge "
                            "--instance-type ml.m5.large";
  Outcome first = Hpo({"run", spec, "--state-dir", (dir_ / "h1").string()});
  EXPECT_EQ(first.exit_code, 2) << first.err;
  EXPECT_NE(first.err.find("hpo run " + spec + works + " --state-dir " + (dir_ / "h1").string() + " (worker i serves"),
            std::string::npos)
      << first.err;
  EXPECT_NE(first.err.find("the spec's instance types (ResourceConfig.InstanceGroups)"), std::string::npos)
      << first.err;
  Outcome second = Hpo({"run", spec, "--instance-type", "ml.m5.24xlarge", "--instance-type", "ml.m5.large",
                        "--state-dir", (dir_ / "h2").string()});
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("hpo run " + spec + works + " --state-dir " + (dir_ / "h2").string() +
                            " (each local worker is one host"),
            std::string::npos)
      << second.err;
  Outcome ran = Hpo({"run", spec, "--workers", "3", "--instance-type", "ml.m5.24xlarge", "--instance-type",
                     "ml.m5.24xlarge", "--instance-type", "ml.m5.large", "--state-dir", (dir_ / "h3").string(), "-o",
                     "json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  auto j = nlohmann::json::parse(ran.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 1) << ran.out;
}

// `hpo instance-types` lists the catalog with what each type needs and whether this machine
// covers it (the messages that said "see the catalog in docs/architecture.md" pointed nowhere);
// a catalog file of one's own adds types to it, and `hpo run --instance-catalog` runs a spec that
// names such a type, as `hpo validate` and `hpo coordinator` take it.
TEST_F(CliTest, InstanceTypesListsTheCatalogAndRunTakesACatalogOfOnesOwn) {
  const fs::path catalog = Write("types.json", R"({"ml.own.tiny": {"vcpus": 1, "memory_gib": 1}})");
  Outcome listed = Hpo({"instance-types", "--instance-catalog", catalog.string(), "-o", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  auto j = nlohmann::json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << listed.out;
  std::map<std::string, nlohmann::json> by_type;
  for (const auto& t : j["InstanceTypes"]) by_type[t["InstanceType"]] = t;
  ASSERT_TRUE(by_type.count("ml.own.tiny")) << listed.out;
  EXPECT_TRUE(by_type["ml.own.tiny"]["ThisMachine"].get<bool>()) << "1 vCPU and 1 GiB fit any test machine";
  ASSERT_TRUE(by_type.count("ml.p5.48xlarge"));
  EXPECT_EQ(by_type["ml.p5.48xlarge"]["Gpus"], 8);
  EXPECT_EQ(by_type["ml.p5.48xlarge"]["GpuModel"], "H100");
  EXPECT_FALSE(by_type["ml.p5.48xlarge"]["ThisMachine"].get<bool>());
  EXPECT_EQ(by_type["ml.p5.48xlarge"]["Why"].get<std::string>().rfind("has ", 0), 0u) << by_type["ml.p5.48xlarge"];
  Outcome table = Hpo({"instance-types"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_LT(table.out.find("ml.c5.xlarge "), table.out.find("ml.c5.2xlarge ")) << "sizes in order:\n" << table.out;
  EXPECT_LT(table.out.find("ml.c5.2xlarge "), table.out.find("ml.c5.18xlarge ")) << table.out;
  EXPECT_NE(table.out.find("this machine: "), std::string::npos) << table.out;
  Outcome bad = Hpo({"instance-types", "--instance-catalog", Write("bad.json", "{\"ml.x\": {\"gpu\": 1}}").string()});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;

  const std::string spec = ScriptJob("own-type", "#!/bin/sh\necho loss=$SM_HP_X\n", 2, 2, "ml.own.tiny");
  Outcome unknown = Hpo({"run", spec, "--state-dir", (dir_ / "unknown").string()});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.err;
  EXPECT_NE(unknown.err.find("--instance-catalog FILE"), std::string::npos) << unknown.err;
  Outcome ran = Hpo({"run", spec, "--instance-catalog", catalog.string(), "--state-dir", (dir_ / "ran").string(), "-o",
                     "json"});
  ASSERT_EQ(ran.exit_code, 0) << ran.err;
  auto done = nlohmann::json::parse(ran.out, nullptr, false);
  ASSERT_TRUE(done.is_object()) << ran.out;
  EXPECT_EQ(done["TrainingJobStatusCounters"]["Completed"], 2) << ran.out;
}

// `hpo run` holds its state directory: a second run on it is refused while the first runs; the
// same command after the first was killed resumes the interrupted job (nothing run twice); once
// the job has ended, the directory is not run again.
// A built-in XGBoost tuning job as SageMaker users write it (no MetricDefinitions: the image
// brings them), run with the image mapped to a local program (hpo run --image). The program gets
// every SM_HP_ variable, also one whose name is not a shell name (batch-size): a plain --image
// command runs without /bin/sh, which drops such variables. Found by a migration pass.
TEST_F(CliTest, ABuiltInXgboostJobRunsWithTheImageMappedToALocalProgram) {
  const fs::path trainer = Write("xgb.py",
                                 "#!/usr/bin/python3\n"
                                 "import os, sys\n"
                                 "assert sys.argv[-1] == 'train', sys.argv\n"
                                 "eta = float(os.environ['SM_HP_ETA'])\n"
                                 "batch = int(os.environ['SM_HP_BATCH-SIZE'])\n"
                                 "for r in range(3):\n"
                                 "    print('[%d]#011train-rmse:%.4f#011validation-rmse:%.4f' % (r, eta + batch, "
                                 "(eta - 0.2) ** 2 + batch / 1000 + 0.1 / (r + 1)))\n");
  fs::permissions(trainer, fs::perms::owner_all);
  const std::string image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1";
  const std::string spec = Write("xgb.json", R"J({
    "HyperParameterTuningJobName": "xgb-builtin",
    "HyperParameterTuningJobConfig": {
      "Strategy": "Random",
      "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:rmse"},
      "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 1},
      "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.1", "MaxValue": "0.5"}]}},
    "TrainingJobDefinition": {
      "StaticHyperParameters": {"batch-size": "32", "num_round": "3"},
      "AlgorithmSpecification": {"TrainingImage": ")J" + image + R"J(", "TrainingInputMode": "File"},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": 60}}})J").string();
  Outcome valid = Hpo({"validate", spec});
  EXPECT_EQ(valid.exit_code, 0) << valid.err;
  Outcome run = Hpo({"run", spec, "--workers", "1", "--state-dir", (dir_ / "state").string(), "--image",
                     image + "=" + trainer.string(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 3) << run.err;
  EXPECT_EQ(j["ObjectiveStatusCounters"]["Succeeded"], 3) << run.err;
  const double best = j["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"];
  const double eta = std::stod(j["BestTrainingJob"]["TunedHyperParameters"]["eta"].get<std::string>());
  EXPECT_NEAR(best, (eta - 0.2) * (eta - 0.2) + 0.032 + 0.1 / 3, 1e-3) << "the last round's validation-rmse";
}

// examples/linear-learner.yaml, a built-in Linear Learner tuning job as SageMaker users write it,
// run with the image mapped to examples/trainers/sklearn_linear.py: the algorithm's definitions
// (proto/builtin_algorithms.h) find its per-epoch validation loss, the objective is the last epoch's,
// and the final model's validation and test scores are the training job's metrics, as SageMaker
// lists them. An objective Type against the metric's direction is noted, not refused.
TEST_F(CliTest, TheLinearLearnerExampleRunsWithTheBuiltInsMetrics) {
  std::string yaml = Slurp(Example("linear-learner.yaml"));
  auto replace = [&](const std::string& from, const std::string& to) {
    const size_t at = yaml.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    yaml.replace(at, from.size(), to);
  };
  replace("maxNumberOfTrainingJobs: 20", "maxNumberOfTrainingJobs: 4");
  replace("maxParallelTrainingJobs: 4", "maxParallelTrainingJobs: 2");
  replace("epochs: \"15\"", "epochs: \"4\"");
  // Every training job runs to its last epoch (the median rule could stop one of four).
  replace("trainingJobEarlyStoppingType: Auto", "trainingJobEarlyStoppingType: \"Off\"");
  replace("file:///tmp/hpo/linear-learner/output", "file://" + (dir_ / "out").string());
  const fs::path spec = Write("ll.yaml", yaml);
  const std::string image = "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1";
  const std::string state = (dir_ / "state").string();
  Outcome run = Hpo({"run", spec.string(), "--workers", "2", "--state-dir", state, "--image",
                     image + "=" + Example("trainers/sklearn_linear.py").string(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err.find("note:"), std::string::npos) << run.err;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 4) << run.err;
  EXPECT_EQ(j["ObjectiveStatusCounters"]["Succeeded"], 4) << run.err;
  const std::string best = j["BestTrainingJob"]["TrainingJobName"];
  const double objective = j["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"];

  // The objective is the last epoch's validation loss, as the program logged it.
  Outcome logs = Hpo({"logs", best, "--state-dir", state});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  const std::string last_epoch = "epoch=3, validation binary_classification_cross_entropy_objective <loss>=";
  const size_t at = logs.out.find(last_epoch);
  ASSERT_NE(at, std::string::npos) << logs.out;
  EXPECT_DOUBLE_EQ(objective, std::stod(logs.out.substr(at + last_epoch.size())));

  Outcome described = Hpo({"describe", best, "--training-job", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(described.exit_code, 0) << described.err;
  auto d = nlohmann::json::parse(described.out, nullptr, false);
  ASSERT_FALSE(d.is_discarded()) << described.out;
  std::set<std::string> names;
  for (const auto& m : d["FinalMetricDataList"]) names.insert(m["MetricName"].get<std::string>());
  for (const char* m : {"validation:objective_loss", "validation:binary_classification_accuracy",
                        "validation:binary_f_beta", "validation:roc_auc_score", "test:objective_loss",
                        "test:precision", "test:recall"}) {
    EXPECT_TRUE(names.count(m)) << m << " in " << described.out;
  }
  EXPECT_EQ(d["HyperParameters"]["_tuning_objective_metric"], "validation:objective_loss");

  replace("type_: Minimize", "type_: Maximize");
  Outcome noted = Hpo({"validate", Write("ll-max.yaml", yaml).string()});
  EXPECT_EQ(noted.exit_code, 0) << noted.err;
  EXPECT_NE(noted.out.find("note: hyperParameterTuningJobObjective.type_: Maximize, but SageMaker's built-in Linear "
                           "Learner documents validation:objective_loss as lower is better"),
            std::string::npos)
      << noted.out;
}

// A two-host training job through hpo run: the objective comes from algo-2, the only host that
// prints it (the last host does); hpo logs shows both hosts' lines, each tagged with its host; and, as root (where the
// names are mounted), algo-1 and algo-2 resolve to different loopback addresses, so programs that
// bind their own host's address and a fixed port do not collide (every local worker was
// "localhost").
TEST_F(CliTest, ATwoHostJobThroughHpoRunReportsEveryHostAndGivesEachItsOwnAddress) {
  const fs::path trainer = Write("hosts.sh",
                                 "#!/bin/sh\n"
                                 "echo \"host $SM_CURRENT_HOST at $(getent hosts \"$SM_CURRENT_HOST\" | cut -d' ' -f1)\"\n"
                                 "last=$(echo \"$SM_HOSTS\" | tr -d '[]\" ' | tr ',' '\\n' | tail -1)\n"
                                 "if [ \"$SM_CURRENT_HOST\" = \"$last\" ]; then echo loss=$SM_HP_X; fi\n"
                                 "if [ \"$last\" = algo-1 ]; then sleep 1; fi\n");  // single-host: both workers busy
  fs::permissions(trainer, fs::perms::owner_all);
  const std::string spec = Write("two.json", R"J({
    "HyperParameterTuningJobName": "two-hosts",
    "HyperParameterTuningJobConfig": {
      "Strategy": "Random",
      "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
      "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
      "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0.1", "MaxValue": "0.5"}]}},
    "TrainingJobDefinition": {
      "AlgorithmSpecification": {"TrainingImage": "file://)J" + trainer.string() + R"J(", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": 60}}})J").string();
  const std::string state = (dir_ / "state").string();
  Outcome run = Hpo({"run", spec, "--workers", "2", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  ASSERT_EQ(j["TrainingJobStatusCounters"]["Completed"], 1) << run.err;
  const auto& best = j["BestTrainingJob"];
  EXPECT_EQ(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"].get<double>(),
            std::stod(best["TunedHyperParameters"]["x"].get<std::string>()))
      << "algo-2's loss";
  Outcome logs = Hpo({"logs", best["TrainingJobName"], "--state-dir", state});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("[algo-1] host algo-1 at"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("[algo-2] host algo-2 at"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("[algo-2] loss="), std::string::npos) << logs.out;
  if (::geteuid() == 0) {  // the names resolve inside the trials
    auto address = [&](const std::string& host) {
      const std::string tag = "[" + host + "] host " + host + " at ";
      const size_t at = logs.out.find(tag);
      return at == std::string::npos ? "" : logs.out.substr(at + tag.size(), logs.out.find('\n', at) - at - tag.size());
    };
    const std::set<std::string> addresses = {address("algo-1"), address("algo-2")};
    EXPECT_EQ(addresses, (std::set<std::string>{"127.0.0.1", "127.0.0.2"})) << logs.out;

    // Single-host training jobs on the two local workers: algo-1 is each worker's own address.
    std::string single = Slurp(fs::path(spec));
    auto replace = [&](const std::string& from, const std::string& to) {
      const size_t at = single.find(from);
      ASSERT_NE(at, std::string::npos) << from;
      single.replace(at, from.size(), to);
    };
    replace("\"InstanceCount\": 2", "\"InstanceCount\": 1");
    // (Four: the first two may both go to the worker that registered first.)
    replace("\"MaxNumberOfTrainingJobs\": 1, \"MaxParallelTrainingJobs\": 1",
            "\"MaxNumberOfTrainingJobs\": 4, \"MaxParallelTrainingJobs\": 2");
    const std::string state1 = (dir_ / "state1").string();
    Outcome run1 = Hpo({"run", Write("one.json", single).string(), "--workers", "2", "--state-dir", state1, "-o", "json"});
    ASSERT_EQ(run1.exit_code, 0) << run1.err;
    std::set<std::string> seen;
    for (const auto& t : fs::recursive_directory_iterator(state1)) {
      if (t.path().filename() != "trial.log") continue;
      const std::string text = Slurp(t.path());
      const size_t at = text.find("host algo-1 at ");
      if (at != std::string::npos) seen.insert(text.substr(at + 15, text.find('\n', at) - at - 15));
    }
    EXPECT_EQ(seen, (std::set<std::string>{"127.0.0.1", "127.0.0.2"})) << "one on each local worker";
  }
}

// A framework estimator's tuning job (script mode) as the SageMaker SDK sends it: the entry point
// and its code location as JSON-encoded sagemaker_* hyperparameters, the framework image mapped to
// examples/trainers/script_mode.py, which runs the script with --name value arguments in the
// code's directory, as the training toolkit in the framework container does.
TEST_F(CliTest, AScriptModeJobRunsItsEntryPointWithTheHyperparametersAsArguments) {
  fs::create_directories(dir_ / "src" / "pkg");
  // In a subdirectory, importing a module at the code's root (the toolkit puts the code on
  // PYTHONPATH), reading SM_TRAINING_ENV as toolkit scripts do.
  Write("src/pkg/train_mnist.py",
        "import argparse, json, os\n"
        "import helper_module\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('--lr', type=float)\n"
        "p.add_argument('--epochs', type=int)\n"
        "p.add_argument('--batch-size', type=int)\n"
        "a = p.parse_args()\n"
        "env = json.loads(os.environ['SM_TRAINING_ENV'])\n"
        "assert float(env['hyperparameters']['lr']) == a.lr, env\n"
        "assert os.environ['SM_USER_ENTRY_POINT'] == 'pkg/train_mnist.py'\n"
        // The worker's SM_TRAINING_ENV with script mode's keys added (a reduced copy broke
        // distributed set-up code), and unbuffered output, as the framework images set it.
        "assert env['current_host'] == 'algo-1' and env['resource_config']['current_host'] == 'algo-1', env\n"
        "assert env['master_hostname'] == 'algo-1' and env['is_master'], env\n"
        "assert os.environ['PYTHONUNBUFFERED'] == '1'\n"
        "for e in range(a.epochs):\n"
        "    print('epoch=%d loss=%.5f' % (e, (a.lr - 0.01) ** 2 + a.batch_size / 1e4 + helper_module.X / (e + 1)))\n");
  Write("src/helper_module.py", "X = 1.0\n");
  const std::string image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310";
  const std::string spec = Write("mnist.json", R"J({
    "HyperParameterTuningJobName": "mnist-script",
    "HyperParameterTuningJobConfig": {
      "Strategy": "Random",
      "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
      "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1},
      "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0.001", "MaxValue": "0.1"}]}},
    "TrainingJobDefinition": {
      "StaticHyperParameters": {"epochs": "3", "batch-size": "32", "sagemaker_program": "\"pkg/train_mnist.py\"",
        "sagemaker_submit_directory": "\"file://)J" + (dir_ / "src").string() + R"J(\"",
        "sagemaker_container_log_level": "20", "sagemaker_region": "\"us-east-1\""},
      "AlgorithmSpecification": {"TrainingImage": ")J" + image + R"J(", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": 60}}})J").string();
  Outcome run = Hpo({"run", spec, "--workers", "1", "--state-dir", (dir_ / "state").string(), "--image",
                     image + "=" + Example("trainers/script_mode.py").string(), "-o", "json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 2) << run.err;
  const double best = j["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"];
  const double lr = std::stod(j["BestTrainingJob"]["TunedHyperParameters"]["lr"].get<std::string>());
  EXPECT_NEAR(best, (lr - 0.01) * (lr - 0.01) + 0.0032 + 1.0 / 3, 1e-4) << "the last epoch's loss, from --lr";

  // A script that fails: its error's last line is in the failure reason (SageMaker's toolkit puts
  // the script's error message there); the traceback stays in the log.
  Write("src/pkg/train_mnist.py", "raise ValueError('bad shape (3, 4)')\n");
  Outcome failed = Hpo({"run", spec, "--workers", "1", "--state-dir", (dir_ / "state-failed").string(), "--image",
                        image + "=" + Example("trainers/script_mode.py").string(), "-o", "json"});
  EXPECT_EQ(failed.exit_code, 1) << failed.err;
  Outcome trials = Hpo({"trials", "mnist-script", "--state-dir", (dir_ / "state-failed").string(), "-o", "json"});
  ASSERT_EQ(trials.exit_code, 0) << trials.err;
  EXPECT_NE(trials.out.find("its last output line: ValueError: bad shape (3, 4)"), std::string::npos) << trials.out;
}

// A review: `hpo describe JOB --best` of a job with TrainingJobDefinitions (each its own
// TuningObjective, none in the job's config) and no best training job read a null objective and
// terminated with an uncaught JSON type error.
TEST_F(CliTest, DescribeBestOfAMultiDefinitionJobWithoutABestSaysSo) {
  const fs::path trainer = Write("fails.sh", "#!/bin/bash\necho broken >&2\nexit 3\n");
  fs::permissions(trainer, fs::perms::owner_all);
  std::string defs;
  for (const char* name : {"a", "b"}) {
    defs += std::string(defs.empty() ? "" : ",") + R"J({"DefinitionName": ")J" + name + R"J(",
      "TuningObjective": {"Type": "Minimize", "MetricName": "loss"},
      "HyperParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]},
      "AlgorithmSpecification": {"TrainingImage": "file://)J" + trainer.string() + R"J(", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": 60}})J";
  }
  const std::string spec = Write("multi.json", R"J({
    "HyperParameterTuningJobName": "multi",
    "HyperParameterTuningJobConfig": {"Strategy": "Random",
      "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 1}},
    "TrainingJobDefinitions": [)J" + defs + "]}").string();
  const std::string state = (dir_ / "state").string();
  Outcome run = Hpo({"run", spec, "--workers", "1", "--state-dir", state});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  // Its table says which definition each training job ran (only the JSON and CSV said).
  EXPECT_NE(run.out.find("OBJECTIVE  DEFINITION"), std::string::npos) << run.out;
  Outcome best = Hpo({"describe", "multi", "--best", "--state-dir", state});
  EXPECT_EQ(best.exit_code, 1) << best.err;
  // Ended: not "yet".
  EXPECT_NE(best.err.find("multi ended (Failed) without a best training job (none completed with its objective loss)"),
            std::string::npos)
      << best.err;
}

// Which hyperparameters mattered: after the run and in describe -o table, from 8 training jobs
// with an objective; fewer are named with the reason, in describe only.
TEST_F(CliTest, TheSummarySaysWhichHyperparametersMatteredOnceThereAreEnoughTrainingJobs) {
  // The loss moves with a, a little with b, and not at all with the optimizer.
  const fs::path trainer = Write("importance.sh",
                                 "#!/bin/bash\n"
                                 "awk -v a=$SM_HP_A -v b=$SM_HP_B 'BEGIN { printf \"loss=%.6f\\n\", "
                                 "20 * (a - 0.3) ^ 2 + 0.5 * b + 5 }'\n");
  fs::permissions(trainer, fs::perms::owner_all);
  auto spec = [&](const std::string& name, int jobs) {
    return Write(name + ".json", R"J({
    "HyperParameterTuningJobName": ")J" + name + R"J(",
    "HyperParameterTuningJobConfig": {
      "Strategy": "Random", "RandomSeed": 3,
      "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
      "ResourceLimits": {"MaxNumberOfTrainingJobs": )J" + std::to_string(jobs) + R"J(, "MaxParallelTrainingJobs": 4},
      "ParameterRanges": {
        "ContinuousParameterRanges": [{"Name": "a", "MinValue": "0", "MaxValue": "1"},
                                      {"Name": "b", "MinValue": "0", "MaxValue": "1"}],
        "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["sgd", "adam", "rmsprop"]}]}},
    "TrainingJobDefinition": {
      "AlgorithmSpecification": {"TrainingImage": "file://)J" + trainer.string() + R"J(", "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
      "RoleArn": "arn:aws:iam::123456789012:role/hpo-local",
      "OutputDataConfig": {"S3OutputPath": "file://)J" + (dir_ / "out").string() + R"J("},
      "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
      "StoppingCondition": {"MaxRuntimeInSeconds": 60}}})J")
        .string();
  };
  const std::string state = (dir_ / "state").string();
  Outcome run = Hpo({"run", spec("matters", 24), "--workers", "2", "--state-dir", state});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("what mattered: each hyperparameter's share of the objective's variation over the ranges\n"
                         "  (a model of 24 training jobs; # alone, + with its interactions):\n"),
            std::string::npos)
      << run.out;
  Outcome table = Hpo({"describe", "matters", "--state-dir", state, "-o", "table"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  // Most important first: a, then b, then the optimizer, which explains nothing.
  const size_t at = table.out.find("what mattered");
  ASSERT_NE(at, std::string::npos) << table.out;
  std::vector<std::string> rows;
  for (const auto& line : Lines(table.out.substr(at))) {
    if (line.find("% alone") != std::string::npos) rows.push_back(line);
  }
  ASSERT_EQ(rows.size(), 3u) << table.out;
  EXPECT_EQ(rows[0].rfind("    a          ", 0), 0u) << table.out;
  EXPECT_EQ(rows[1].rfind("    b          ", 0), 0u) << table.out;
  EXPECT_EQ(rows[2].rfind("    optimizer  ....................    0 % alone,   0 % with interactions", 0), 0u)
      << table.out;
  // a's share: 20 (a - 0.3)^2 varies far more than 0.5 b over [0, 1].
  const double a_share = std::stod(rows[0].substr(rows[0].find(' ', 15)));
  EXPECT_GT(a_share, 90) << rows[0];

  Outcome few = Hpo({"run", spec("few", 3), "--workers", "2", "--state-dir", state});
  ASSERT_EQ(few.exit_code, 0) << few.err;
  // Why not, as hpo describe says it (it said nothing, where describe and the dashboard said why).
  EXPECT_NE(few.out.find("what mattered: not estimated: 3 training jobs reported the objective"), std::string::npos)
      << few.out;
  Outcome few_table = Hpo({"describe", "few", "--state-dir", state, "-o", "table"});
  ASSERT_EQ(few_table.exit_code, 0) << few_table.err;
  EXPECT_NE(few_table.out.find("what mattered: not estimated: 3 training jobs reported the objective; the importance "
                               "model needs at least 8\n"),
            std::string::npos)
      << few_table.out;

  // --importance alone, for a script (JSON) or a person (bars); never with --best.
  Outcome js = Hpo({"describe", "matters", "--state-dir", state, "--importance", "-o", "json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  auto j = nlohmann::json::parse(js.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1u) << js.out;
  EXPECT_EQ(j[0]["TrainingJobs"], 24) << js.out;
  EXPECT_EQ(j[0]["Flat"], false);
  ASSERT_EQ(j[0]["HyperParameters"].size(), 3u) << js.out;
  EXPECT_EQ(j[0]["HyperParameters"][0]["Name"], "a");
  EXPECT_GT(j[0]["HyperParameters"][0]["FirstOrder"].get<double>(), 0.9) << js.out;
  EXPECT_EQ(j[0]["HyperParameters"][2]["Name"], "optimizer");
  EXPECT_EQ(j[0].contains("DefinitionName"), false) << "one definition: no name";
  Outcome few_js = Hpo({"describe", "few", "--state-dir", state, "--importance", "-o", "json"});
  ASSERT_EQ(few_js.exit_code, 0) << few_js.err;
  EXPECT_NE(nlohmann::json::parse(few_js.out)[0].value("NotEstimated", "").find("3 training jobs"), std::string::npos)
      << few_js.out;
  Outcome bars = Hpo({"describe", "matters", "--state-dir", state, "--importance", "-o", "table"});
  ASSERT_EQ(bars.exit_code, 0) << bars.err;
  EXPECT_EQ(bars.out.rfind("\n  what mattered: each hyperparameter's share", 0), 0u) << bars.out;
  EXPECT_NE(bars.out.find("    optimizer  ....................    0 % alone"), std::string::npos) << bars.out;
  EXPECT_EQ(bars.out.find("TRAINING JOB"), std::string::npos) << "only the importance";
  Outcome both = Hpo({"describe", "matters", "--state-dir", state, "--importance", "--best"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
}

TEST_F(CliTest, RunHoldsItsStateDirectoryAndResumesAnInterruptedJob) {
  const std::string spec = ScriptJob("resume", "#!/bin/bash\necho loss=$SM_HP_X\nsleep 1\necho loss=$SM_HP_X\n", 4, 1);
  const std::string state = (dir_ / "state").string();

  // The first run, in the background, killed -9 once its first training job is under way.
  pid_t first = ::fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "run", spec.c_str(), "--workers", "1", "--state-dir", state.c_str(), nullptr);
    ::_exit(127);
  }
  const fs::path log = fs::path(state) / "local-1" / "trials";
  for (int i = 0; i < 200 && !fs::exists(log); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(log)) << "the first run started no training job";

  Outcome busy = Hpo({"run", spec, "--workers", "1", "--state-dir", state});
  EXPECT_EQ(busy.exit_code, 2) << busy.err;
  EXPECT_NE(busy.err.find("the state directory " + state + " is in use by pid " + std::to_string(first) + " (hpo run " +
                          spec + ")"),
            std::string::npos)
      << busy.err;

  ::kill(first, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(first, &status, 0), first);
  Outcome orphaned = Hpo({"stop", "resume", "--state-dir", state});
  EXPECT_EQ(orphaned.exit_code, 3) << orphaned.err;
  EXPECT_NE(orphaned.err.find("(pid " + std::to_string(first) + ") is not running: it was killed; run the same hpo "
                              "run command with --state-dir " + state + " to resume it"),
            std::string::npos)
      << orphaned.err;

  Outcome resumed = Hpo({"run", spec, "--workers", "1", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("hpo: resuming resume from " + state), std::string::npos) << resumed.err;
  auto j = nlohmann::json::parse(resumed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << resumed.out;
  EXPECT_EQ(j["HyperParameterTuningJobStatus"], "Completed");
  const auto& counts = j["TrainingJobStatusCounters"];
  EXPECT_EQ(counts["Completed"].get<int>() + counts["NonRetryableError"].get<int>() +
                counts["RetryableError"].get<int>() + counts["Stopped"].get<int>(),
            4)
      << "four training jobs in all, none run twice: " << counts;

  Outcome again = Hpo({"run", spec, "--workers", "1", "--state-dir", state});
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find(state + " already holds the tuning job resume (Completed)"), std::string::npos) << again.err;
}

// The terminal or the SSH session going away (SIGHUP) stopped the job for good, and the same
// command was then refused ("already holds the tuning job (Stopped)"), though the README promises
// it resumes. The job is now left InProgress: its running training job gets SIGTERM and its grace
// period, ends Interrupted (no retry spent), and the same command finishes the job.
// hpo run's progress line at 80 columns: the whole line was cut from the right, inside the best
// value ("best 0.985..." for 0.98512, which reads as another number). The best training job's
// name and the other optional parts go first; the value stays whole. (In a terminal: script(1).)
TEST_F(CliTest, RunProgressAtEightyColumnsKeepsTheBestValueWhole) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs script(1) for a terminal";
  const std::string name = "progress80";  // 10 characters, as quickstart: the line fits without the best one's name
  const std::string spec =
      ScriptJob(name, "#!/bin/bash\necho loss=0.98512$RANDOM\nsleep 0.3\n", 4, 2);
  const fs::path typescript = dir_ / "typescript";
  const std::string cmd = "stty cols 80; " + std::string(HPO_BINARY) + " run " + spec + " --workers 2 --state-dir " +
                          (dir_ / "state").string() + " >/dev/null";
  ASSERT_EQ(std::system(("script -qec '" + cmd + "' " + typescript.string() + " >/dev/null 2>&1").c_str()), 0)
      << Slurp(typescript);
  const std::string text = Slurp(typescript);
  size_t with_best = 0;
  std::string line;
  for (char ch : text + "\r") {
    if (ch != '\r' && ch != '\n') {
      line += ch;
      continue;
    }
    if (line.rfind("\033[K", 0) == 0) line = line.substr(3);
    if (line.rfind(name + "  InProgress", 0) == 0) {
      EXPECT_LT(line.size(), 80u) << line;
      if (const size_t at = line.find(", best "); at != std::string::npos) {
        ++with_best;
        EXPECT_EQ(line.find("..."), std::string::npos) << "cut: " << line;
        EXPECT_NE(line.find(", best 0.98512"), std::string::npos) << line;
      }
    }
    line.clear();
  }
  EXPECT_GT(with_best, 0u) << text;
}

TEST_F(CliTest, RunWhoseTerminalWentAwayLeavesTheJobToBeResumed) {
  const std::string spec = ScriptJob("hup", "#!/bin/bash\necho loss=$SM_HP_X\nsleep 2\necho loss=$SM_HP_X\n", 3, 1);
  const std::string state = (dir_ / "state").string();
  const fs::path err = dir_ / "first.err";
  pid_t first = ::fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(e, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "run", spec.c_str(), "--workers", "1", "--state-dir", state.c_str(), "--grace",
            "5", nullptr);
    ::_exit(127);
  }
  const fs::path trials = fs::path(state) / "local-1" / "trials";
  for (int i = 0; i < 200 && !fs::exists(trials); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(trials)) << "the first run started no training job";
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(first, SIGHUP);
  int status = 0;
  ASSERT_EQ(::waitpid(first, &status, 0), first);
  const std::string said = Slurp(err);
  ASSERT_TRUE(WIFEXITED(status)) << said;
  EXPECT_EQ(WEXITSTATUS(status), 3) << said;
  // The command as it was given, its options too (without --workers, --grace, --instance-type the
  // resume ran otherwise, or was refused; a CLI pass).
  EXPECT_NE(said.find("hpo: hup stays InProgress in " + state + "; to resume it: hpo run " + spec +
                      " --workers 1 --state-dir " + state + " --grace 5\n"),
            std::string::npos)
      << said;
  // `hpo stop` there says the job may wait to be resumed (it said only "its job has ended").
  Outcome stop = Hpo({"stop", "hup", "--state-dir", state});
  EXPECT_NE(stop.exit_code, 0);
  EXPECT_NE(stop.err.find("or was left to be resumed when its terminal went away: run the same hpo run command"),
            std::string::npos)
      << stop.err;
  // `hpo list` there still shows it InProgress (it is), and says that nothing runs it.
  Outcome listed = Hpo({"list", "--state-dir", state});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("InProgress"), std::string::npos) << listed.out;
  // As wide as its names: padded to 32, every line of a short name wrapped at 80 columns.
  for (size_t at = 0, end; (end = listed.out.find('\n', at)) != std::string::npos; at = end + 1) {
    EXPECT_LE(end - at, 80u) << listed.out;
  }
  EXPECT_NE(listed.err.find("note: no hpo run or hpo coordinator is running on " + state +
                            ", so its InProgress job waits: run the same hpo run command to resume it"),
            std::string::npos)
      << listed.err;

  Outcome resumed = Hpo({"run", spec, "--workers", "1", "--state-dir", state, "-o", "json"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  auto j = nlohmann::json::parse(resumed.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << resumed.out;
  EXPECT_EQ(j["HyperParameterTuningJobStatus"], "Completed");
  EXPECT_EQ(j["TrainingJobStatusCounters"]["Completed"], 3) << "the interrupted one ran again: " << j.dump();
  EXPECT_EQ(j["TrainingJobStatusCounters"]["RetryableError"], 0) << "and spent no retry";
}

// hpo run killed -9 (or by the OOM killer) took only its training programs along
// (PR_SET_PDEATHSIG): what they started (a daemon, a background job in their own process group)
// ran on under init, and since each run makes a new directory, no later worker swept it. The
// worker's guard (worker/orphans.h OrphanGuard) kills them when the process ends.
TEST_F(CliTest, WhatTrainingJobsStartedDiesWithAKilledRun) {
  const fs::path pids = dir_ / "pids";
  fs::create_directories(pids);
  const std::string spec = ScriptJob(
      "guarded",
      "#!/bin/bash\nsetsid sleep 311 &\necho $! > " + pids.string() + "/daemon-$SM_HP_X\nsleep 312 &\necho $! > " +
          pids.string() + "/child-$SM_HP_X\necho loss=$SM_HP_X\nexec sleep 313\n",
      2, 2);
  const std::string state = (dir_ / "state").string();
  pid_t run = ::fork();
  ASSERT_GE(run, 0);
  if (run == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "run", spec.c_str(), "--workers", "2", "--state-dir", state.c_str(), nullptr);
    ::_exit(127);
  }
  auto count = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(pids)) n += e.is_regular_file() && fs::file_size(e.path()) > 0 ? 1 : 0;
    return n;
  };
  for (int i = 0; i < 400 && count() < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(count(), 4u) << "two training jobs, each with a daemon and a background child";
  std::vector<pid_t> left;
  for (const auto& e : fs::directory_iterator(pids)) {
    std::ifstream in(e.path());
    pid_t pid = 0;
    in >> pid;
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, 0), 0) << e.path() << " runs";
    left.push_back(pid);
  }
  ::kill(run, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(run, &status, 0), run);
  // Gone (or a zombie its new parent has yet to reap) within a few seconds.
  auto alive = [](pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return false;
    const auto close = text.rfind(')');
    return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
  };
  for (int i = 0; i < 200 && std::any_of(left.begin(), left.end(), alive); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (pid_t pid : left) {
    EXPECT_FALSE(alive(pid)) << "process " << pid << " outlived the killed run";
    if (alive(pid)) ::kill(pid, SIGKILL);
  }
}

// A worker without S3 credentials failed every training job with an s3:// path as a ClientError,
// which sank the tuning job: it is this worker's lack, a refusal to start it, which another worker
// takes; when every worker refuses, it fails as an InternalServerError at once.
TEST_F(CliTest, AWorkerWithoutS3CredentialsFailsNoTrainingJobAsTheUsers) {
  std::string spec = Slurp(ScriptJob("nos3", "#!/bin/bash\necho loss=$SM_HP_X\n", 6, 2));
  const std::string out = "\"S3OutputPath\": \"file://" + (dir_ / "out").string() + "\"";
  const size_t at = spec.find(out);
  ASSERT_NE(at, std::string::npos) << spec;
  spec.replace(at, out.size(), "\"S3OutputPath\": \"s3://hpo-test-bucket/out\"");
  const fs::path file = Write("nos3.json", spec);
  // No credentials anywhere: not in the environment, not in a profile.
  std::map<std::string, std::string> saved;
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE", "HOME",
                        "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"}) {
    if (const char* value = std::getenv(v)) saved[v] = value;
    ::unsetenv(v);
  }
  ::setenv("HOME", dir_.c_str(), 1);
  Outcome o = Hpo({"run", file.string(), "--workers", "2", "--state-dir", (dir_ / "state").string(), "-o", "json"});
  ::unsetenv("HOME");
  for (const auto& [k, v] : saved) ::setenv(k.c_str(), v.c_str(), 1);
  // Its local workers share this environment, and a worker without S3 credentials is given no
  // training job that uses S3 (each failed there as an infrastructure error, and the workers'
  // rests stalled the job for minutes): refused before anything starts, saying what to do.
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("its training jobs read or write s3:// (data, output, checkpoints or code), and "),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("give S3 credentials (and --s3-endpoint for a store other than AWS), or use file:// paths; "
                       "nothing was started"),
            std::string::npos)
      << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "state" / "hpo.db")) << "nothing was started";
}

// A container image that nothing here can run (containers turned off, no --image mapping) is
// refused before anything starts, saying what to do; it failed every training job within a second
// of starting, with advice for `hpo worker`. Mapped with --image, the same spec runs.
TEST_F(CliTest, RunRefusesAContainerImageItHasNoWayToRun) {
  std::string spec = Slurp(ScriptJob("boxed", "#!/bin/bash\necho loss=$SM_HP_X\n", 2, 2));
  const std::string trainer = "file://" + (dir_ / "boxed.sh").string();
  const size_t at = spec.find(trainer);
  ASSERT_NE(at, std::string::npos) << spec;
  const std::string image = "registry.example.invalid/boxed:1";
  spec.replace(at, trainer.size(), image);
  const fs::path file = Write("boxed-image.json", spec);
  Outcome refused = Hpo({"run", file.string(), "--container-runtime", "none", "--state-dir", (dir_ / "off").string()});
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("the training image " + image + " is a container image, and --container-runtime none "
                             "turned containers off; map it to a program here with --image " + image + "=COMMAND"),
            std::string::npos)
      << refused.err;
  EXPECT_FALSE(fs::exists(dir_ / "off")) << "nothing is made before the spec is checked";
  Outcome mapped = Hpo({"run", file.string(), "--container-runtime", "none", "--image",
                        image + "=" + (dir_ / "boxed.sh").string(), "--state-dir", (dir_ / "mapped").string(), "-o",
                        "json"});
  ASSERT_EQ(mapped.exit_code, 0) << mapped.err;
  EXPECT_EQ(nlohmann::json::parse(mapped.out)["TrainingJobStatusCounters"]["Completed"], 2) << mapped.out;
  // A mapping's program is checked as the spec's is (a typo in its path failed every training job
  // as an infrastructure error, resting the workers), and a NAME no TrainingImage has is said (a
  // tag left off mapped nothing).
  Outcome typo = Hpo({"run", file.string(), "--container-runtime", "none", "--image",
                      image + "=" + (dir_ / "boxd.sh").string(), "--state-dir", (dir_ / "typo").string()});
  EXPECT_EQ(typo.exit_code, 2) << typo.err;
  EXPECT_NE(typo.err.find("--image " + image + ": the training program " + (dir_ / "boxd.sh").string() +
                          " does not exist; nothing was started"),
            std::string::npos)
      << typo.err;
  Outcome untagged =
      Hpo({"run", file.string(), "--image", "registry.example.invalid/boxed=" + (dir_ / "boxed.sh").string(),
           "--image", image + "=" + (dir_ / "boxed.sh").string(), "--state-dir", (dir_ / "untagged").string()});
  EXPECT_NE(untagged.err.find("note: --image registry.example.invalid/boxed matches no TrainingImage of " +
                              file.string() + " (it has " + image + "): a mapping applies to the exact name, tag "
                              "included"),
            std::string::npos)
      << untagged.err;
}

// From another terminal, `hpo stop ... --state-dir DIR` reaches the hpo run that keeps DIR:
// one runaway training job, then the whole job. The run's API takes only requests signed with
// the keys in DIR/control.json (mode 0600), which go when the run ends.
TEST_F(CliTest, StopReachesARunningHpoRunThroughItsStateDirectory) {
  const std::string spec = ScriptJob("stoppable", "#!/bin/bash\necho loss=$SM_HP_X\nexec sleep 120\n", 2, 2, "ml.m5.large", 300);
  const std::string state = (dir_ / "state").string();
  const fs::path control = fs::path(state) / "control.json";

  Outcome none = Hpo({"stop", "stoppable", "--state-dir", state});
  EXPECT_EQ(none.exit_code, 2) << none.err;
  EXPECT_NE(none.err.find("--state-dir " + state + ": no hpo run keeps its state there"), std::string::npos)
      << none.err;

  pid_t run = ::fork();
  ASSERT_GE(run, 0);
  if (run == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "run", spec.c_str(), "--workers", "2", "--state-dir", state.c_str(), "--grace",
            "5", nullptr);
    ::_exit(127);
  }
  // Both training jobs started, each printed its loss.
  std::vector<std::string> names;
  for (int i = 0; i < 600 && names.size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(control)) continue;
    Outcome t = Hpo({"trials", "stoppable", "--state-dir", state, "-o", "json"});
    auto j = nlohmann::json::parse(t.out, nullptr, false);
    if (t.exit_code != 0 || !j.is_object()) continue;
    names.clear();
    for (const auto& s : j["TrainingJobSummaries"]) {
      if (s["TrainingJobStatus"] != "InProgress") continue;
      // Its loss so far is among its metrics (a running job's objective is not final yet).
      Outcome d = Hpo({"describe", "--training-job", s["TrainingJobName"], "--state-dir", state, "-o", "json"});
      auto dj = nlohmann::json::parse(d.out, nullptr, false);
      if (dj.is_object() && !dj.value("FinalMetricDataList", nlohmann::json::array()).empty()) {
        names.push_back(s["TrainingJobName"]);
      }
    }
  }
  ASSERT_EQ(names.size(), 2u) << "the run's two training jobs did not both start";
  // The table's count line has them (it read "0 completed, 0 stopped, 0 failed" above them).
  Outcome table = Hpo({"describe", "stoppable", "--state-dir", state, "-o", "table"});
  EXPECT_NE(table.out.find("training jobs: 2 in progress, 0 completed, 0 stopped, 0 failed\n"), std::string::npos)
      << table.out;
  EXPECT_EQ(fs::status(control).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none)
      << "control.json holds the run's keys: only its owner may read it";

  // Signed with anything but the run's keys (here: no keys at all), a request is refused.
  const auto url = nlohmann::json::parse(Slurp(control))["url"].get<std::string>();
  for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"}) ::unsetenv(v);
  ::setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
  Outcome unsigned_stop = Hpo({"stop", "--training-job", names[0], "--coordinator", url});
  EXPECT_EQ(unsigned_stop.exit_code, 1) << unsigned_stop.err;
  EXPECT_NE(unsigned_stop.err.find("MissingAuthenticationToken"), std::string::npos) << unsigned_stop.err;
  // And it says the request went unsigned, and why (a security pass: a profile that does not
  // exist got only "Missing Authentication Token").
  ::setenv("AWS_PROFILE", "nosuch", 1);
  Outcome no_profile = Hpo({"stop", "--training-job", names[0], "--coordinator", url});
  ::unsetenv("AWS_PROFILE");
  EXPECT_NE(no_profile.err.find("the request went unsigned: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set, and "
                                "/dev/null holds no keys for the profile nosuch (AWS_PROFILE)"),
            std::string::npos)
      << no_profile.err;

  // Its workers' port takes only this run's own workers (keys of its own): a worker anyone on
  // the machine started there registered, took training jobs and read their Environment.
  const int api_port = std::stoi(url.substr(url.rfind(':') + 1));
  std::set<std::string> sockets;  // the run's sockets' inodes
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(run) + "/fd")) {
    std::error_code ec;
    const std::string target = fs::read_symlink(e.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) sockets.insert(target.substr(8, target.size() - 9));
  }
  int worker_port = 0;
  {
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    std::getline(tcp, line);  // the header
    while (std::getline(tcp, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, state_hex, queues, tr, retr, uid, timeout, inode;
      f >> sl >> local >> remote >> state_hex >> queues >> tr >> retr >> uid >> timeout >> inode;
      const int port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
      if (state_hex == "0A" && sockets.count(inode) && port != api_port) worker_port = port;
    }
  }
  ASSERT_NE(worker_port, 0) << "the run's workers' port";
  const fs::path rogue_log = dir_ / "rogue.log";
  const pid_t rogue = Spawn(rogue_log, {"worker", "--connect", "tcp://127.0.0.1:" + std::to_string(worker_port),
                                        "--id", "rogue", "--work-dir", (dir_ / "rogue").string(), "--gpus", "none"});
  std::this_thread::sleep_for(std::chrono::seconds(3));
  Outcome workers = Hpo({"workers", "--state-dir", state, "-o", "json"});
  ::kill(rogue, SIGKILL);
  ::waitpid(rogue, nullptr, 0);
  EXPECT_EQ(workers.out.find("rogue"), std::string::npos) << workers.out << Slurp(rogue_log);
  EXPECT_NE(workers.out.find("local-1"), std::string::npos) << workers.out;
  EXPECT_EQ(Slurp(rogue_log).find("registered with"), std::string::npos) << Slurp(rogue_log);

  Outcome one = Hpo({"stop", "--training-job", names[0], "--state-dir", state});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "stopping " + names[0] + "\n");
  std::string first_status, second_status;
  for (int i = 0; i < 300 && first_status != "Stopped"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Outcome d = Hpo({"describe", "--training-job", names[0], "--state-dir", state, "-o", "json"});
    auto j = nlohmann::json::parse(d.out, nullptr, false);
    if (j.is_object()) first_status = j.value("TrainingJobStatus", "");
  }
  EXPECT_EQ(first_status, "Stopped") << "the stopped training job did not end";
  Outcome d2 = Hpo({"describe", "--training-job", names[1], "--state-dir", state, "-o", "json"});
  auto second = nlohmann::json::parse(d2.out, nullptr, false);
  ASSERT_TRUE(second.is_object()) << d2.out << d2.err;
  EXPECT_EQ(second.value("TrainingJobStatus", ""), "InProgress") << "the other training job goes on";
  Outcome ended = Hpo({"stop", "--training-job", names[0], "--state-dir", state});
  EXPECT_EQ(ended.exit_code, 0) << ended.err;
  EXPECT_EQ(ended.out, names[0] + " has already ended (Stopped); nothing to stop\n") << "as for a tuning job";

  Outcome all = Hpo({"stop", "stoppable", "--state-dir", state});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "stopping stoppable\n");
  int status = 0;
  ASSERT_EQ(::waitpid(run, &status, 0), run);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << "a stopped job's hpo run exits 1: " << status;
  EXPECT_FALSE(fs::exists(control)) << "the run's keys go with it";

  Outcome again = Hpo({"stop", "stoppable", "--state-dir", state});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, "stoppable has already ended (Stopped); nothing to stop\n");

  // Being deleted (a coordinator stopped part-way leaves it so) counts as ended too: hpo stop
  // tried a StopHyperParameterTuningJob and failed (exit 2), and hpo list --status refused the
  // status.
  const std::string mark = "python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("
                           "'UPDATE jobs SET metadata_json=? WHERE name=?', ('{\\\"deleting\\\":true}', 'stoppable')); "
                           "c.commit()\" " + (fs::path(state) / "hpo.db").string();
  ASSERT_EQ(std::system(mark.c_str()), 0) << mark;
  Outcome deleting = Hpo({"stop", "stoppable", "--state-dir", state});
  EXPECT_EQ(deleting.exit_code, 0) << deleting.err;
  EXPECT_EQ(deleting.out, "stoppable has already ended (Deleting); nothing to stop\n");
  Outcome listed = Hpo({"list", "--status", "Deleting", "--state-dir", state, "-o", "names"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out, "stoppable\n");
}

// `--config FILE` sets a long-running command's options from YAML; its HPO_* variable wins over
// the file, and the command line over both. A mistake in the file names the file and key.
TEST_F(CliTest, AConfigFileSetsOptionsAndTheEnvironmentAndCommandLineWinOverIt) {
  const std::string spec = ScriptJob("configured", "#!/bin/sh\necho loss=$SM_HP_X\n", 1, 1);
  const std::string config = Write("run.yaml", "# hpo run's options\nworkers: 1\nstate-dir: " + (dir_ / "from-file").string() +
                                                   "\noutput: json\nkeep-trial-files: true\n")
                                 .string();
  auto ran_in = [&](const Outcome& o, const std::string& name) {
    EXPECT_EQ(o.exit_code, 0) << o.err;
    EXPECT_TRUE(nlohmann::json::parse(o.out, nullptr, false).is_object()) << "output: json from the file: " << o.out;
    return fs::exists(dir_ / name / "hpo.db");
  };
  Outcome file_only = Hpo({"run", spec, "--config", config});
  EXPECT_TRUE(ran_in(file_only, "from-file")) << file_only.err;
  EXPECT_TRUE(fs::exists(dir_ / "from-file" / "local-1")) << "workers: 1";
  bool kept = false;  // keep-trial-files: true keeps the /opt/ml tree of the ended training job
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "from-file" / "local-1")) {
    kept = kept || e.path().filename() == "hyperparameters.json";
  }
  EXPECT_TRUE(kept) << "the flag keep-trial-files: true was not set";

  ::setenv("HPO_STATE_DIR", (dir_ / "from-env").c_str(), 1);
  Outcome env = Hpo({"run", spec, "--config=" + config});
  EXPECT_TRUE(ran_in(env, "from-env")) << "HPO_STATE_DIR wins over the file: " << env.err;
  Outcome flag = Hpo({"run", spec, "--config", config, "--state-dir", (dir_ / "from-flag").string()});
  EXPECT_TRUE(ran_in(flag, "from-flag")) << "--state-dir wins over both: " << flag.err;
  EXPECT_NE(flag.err.find("hpo run: note: state-dir in " + config + " (--state-dir on the command line wins)"),
            std::string::npos)
      << "a value of the file that is not used is said: " << flag.err;
  EXPECT_NE(env.err.find("hpo run: note: state-dir in " + config + " (HPO_STATE_DIR in the environment wins)"),
            std::string::npos)
      << env.err;
  ::unsetenv("HPO_STATE_DIR");

  auto refused = [&](const std::string& yaml, const std::string& command, const std::string& says) {
    const std::string file = Write("bad.yaml", yaml).string();
    Outcome o = Hpo({command, "--config", file});
    EXPECT_EQ(o.exit_code, 2) << yaml << o.err;
    EXPECT_NE(o.err.find(says), std::string::npos) << yaml << "\n" << o.err;
  };
  const std::string bad = (dir_ / "bad.yaml").string();
  refused("slots: 2\nsport: true\n", "worker",
          "hpo worker: --config " + bad + ": sport is no option of hpo worker; did you mean spot?");
  refused("slots: [1, 2]\n", "worker", "hpo worker: --config " + bad + ": slots takes one value, not a list");
  refused("spot: maybe\n", "worker", "hpo worker: --config " + bad + ": spot is a flag: true or false, not maybe");
  refused("slots: 0\n", "worker", "hpo worker: --slots: Value 0 not in range 1 to 1024 (--slots came from slots in " + bad + ")");
  refused("- slots\n", "coordinator", "hpo coordinator: --config " + bad + ": wants a mapping of option names to values");
  refused("slots: 2\n  x: [\n", "worker", "hpo worker: --config " + bad + ": not YAML: line ");
  Outcome missing = Hpo({"coordinator", "--config", (dir_ / "nope.yaml").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("hpo coordinator: --config: cannot open " + (dir_ / "nope.yaml").string()), std::string::npos)
      << missing.err;
  ::setenv("HPO_SLOTS", "0", 1);
  Outcome from_env = Hpo({"worker"});
  ::unsetenv("HPO_SLOTS");
  EXPECT_EQ(from_env.exit_code, 2);
  EXPECT_NE(from_env.err.find("(--slots came from HPO_SLOTS in the environment)"), std::string::npos) << from_env.err;
  Outcome help = Hpo({"worker", "--help"});
  EXPECT_NE(help.out.find("(Env:HPO_SLOTS)"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("--config"), std::string::npos) << help.out;
}

// A local training program that is missing or cannot run would fail every training job one by
// one: hpo run refuses the job before starting anything.
// A warm start whose parent this run's state directory has not run: `hpo run` is a coordinator of
// its own, so the advice is the state directory, not `hpo list` (which asks a coordinator).
TEST_F(CliTest, RunOfAWarmStartWithoutItsParentSaysToRunTheParentInTheSameStateDirectory) {
  const fs::path state = dir_ / "no-parent";
  Outcome o = Hpo({"run", Example("warm-start.yaml").string(), "--instance-type", "ml.m5.xlarge", "--state-dir",
                   state.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("\"quickstart\": no such tuning job"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("with hpo run, run the parent job first with the same --state-dir (" + state.string() + ")"),
            std::string::npos)
      << o.err;
  // The directory it made for the refused run goes (left empty, it broke hpo compare hpo-runs/*).
  EXPECT_FALSE(fs::exists(state)) << "a refused run left its state directory behind";
}

// A warm start whose parents' training jobs plus its own pass the quota is refused as the same
// quota checked before a job starts: exit 2 (it exited 3, "a service could not be reached",
// which scripts retry).
TEST_F(CliTest, RunOfAWarmStartOverTheQuotaWithItsParentsExitsTwo) {
  const fs::path state = dir_ / "quota";
  const std::string parent = ScriptJob("qparent", "#!/bin/sh\necho loss=$SM_HP_X\n", 2, 2);
  Outcome first = Hpo({"run", parent, "--state-dir", state.string()});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  std::string child = Slurp(ScriptJob("qchild", "#!/bin/sh\necho loss=$SM_HP_X\n", 4, 2));
  child.replace(child.rfind('}'), 1, R"J(, "WarmStartConfig": {"WarmStartType": "IdenticalDataAndAlgorithm",
    "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "qparent"}]}})J");
  const std::string spec = Write("qchild-warm.json", child).string();
  Outcome o = Hpo({"run", spec, "--state-dir", state.string(), "--max-training-jobs-random", "5"});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("set it to at most 3"), std::string::npos) << o.err;
}

// A job that reached its TargetObjectiveMetricValue says so in its summary: its stopped or
// never-run training jobs otherwise went unexplained under "Completed" (a stopping-criteria pass).
TEST_F(CliTest, RunSaysAJobEndedAtItsTargetObjective) {
  std::string spec = Slurp(ScriptJob("target", "#!/bin/sh\necho loss=0.25\n", 6, 1));
  const std::string from = R"("ResourceLimits")";
  spec.replace(spec.find(from), 0, R"("TuningJobCompletionCriteria": {"TargetObjectiveMetricValue": 0.5}, )");
  Outcome o = Hpo({"run", Write("target-crit.json", spec).string(), "--state-dir", (dir_ / "target").string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE((o.out + o.err).find("ended early: the best reached TargetObjectiveMetricValue 0.5"), std::string::npos)
      << o.out << o.err;
}

// hpo run's local workers take --s3-endpoint as hpo worker's do (it had none: only the
// environment's AWS_ENDPOINT_URL_S3 reached them, and the hint named hpo worker's option).
TEST_F(CliTest, RunGivesItsWorkersTheS3Endpoint) {
  std::string spec = Slurp(ScriptJob("s3ep", "#!/bin/sh\necho loss=0.5\n", 1, 1));
  const std::string out = "file://" + (dir_ / "out").string();
  spec.replace(spec.find(out), out.size(), "s3://hpo-no-bucket/out");
  ::setenv("AWS_ACCESS_KEY_ID", "x", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "y", 1);
  Outcome o = Hpo({"run", Write("s3ep-s3.json", spec).string(), "--workers", "1", "--s3-endpoint",
                   "http://127.0.0.1:9", "--state-dir", (dir_ / "s3ep").string()});
  ::unsetenv("AWS_ACCESS_KEY_ID");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_NE(o.out.find("127.0.0.1:9"), std::string::npos) << "the endpoint given is the one tried: " << o.out << o.err;
}

TEST_F(CliTest, RunRefusesATrainingProgramThatCannotRun) {
  std::string text = Slurp(Example("quickstart.yaml"));
  const std::string from = "file://trainers/sklearn_gbt.py";
  text.replace(text.find(from), from.size(), "file:///nonexistent/train.py");
  const fs::path state = dir_ / "state";
  Outcome o = Hpo({"run", Write("missing.yaml", text).string(), "--state-dir", state.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("the training program /nonexistent/train.py does not exist; nothing was started"),
            std::string::npos)
      << o.err;
  EXPECT_FALSE(fs::exists(state)) << "nothing was started, not even the state directory";

  // A persona pass: a script whose #! line names an interpreter this machine lacks failed every
  // training job, each after all its retries, as an InternalServerError.
  const fs::path bad = Write("train.py", "#!/usr/bin/python3.99 -u\nprint('loss=1')\n");
  fs::permissions(bad, fs::perms::owner_all);
  text = Slurp(Example("quickstart.yaml"));
  text.replace(text.find(from), from.size(), "file://" + bad.string());
  Outcome shebang = Hpo({"run", Write("shebang.yaml", text).string(), "--state-dir", state.string()});
  EXPECT_EQ(shebang.exit_code, 2) << shebang.err;
  EXPECT_NE(shebang.err.find("its interpreter /usr/bin/python3.99 (its #! line) is not an executable program here; "
                             "nothing was started"),
            std::string::npos)
      << shebang.err;
  EXPECT_FALSE(fs::exists(state));
}

// A persona pass: with a relative state directory (hpo run's default, hpo-runs/...) every SM_*
// path was relative to where hpo started while the program ran in its own directory: it could not
// read its hyperparameters.json, and its model went to a directory nobody packed.
TEST_F(CliTest, ARelativeStateDirectoryGivesTheProgramPathsThatWorkFromItsOwnDirectory) {
  const std::string spec = ScriptJob("relative",
                                     "#!/bin/bash\nset -e\ncase \"$SM_MODEL_DIR\" in /*) ;; *) exit 7;; esac\n"
                                     "grep -q '\"x\"' \"$SM_INPUT_CONFIG_DIR/hyperparameters.json\"\n"
                                     "echo kept > \"$SM_MODEL_DIR/model.txt\"\necho loss=$SM_HP_X\n",
                                     1, 1);
  const fs::path before = fs::current_path();
  fs::current_path(dir_);
  Outcome run = Hpo({"run", spec, "--workers", "1", "--state-dir", "rel-state", "-o", "json"});
  fs::current_path(before);
  ASSERT_EQ(run.exit_code, 0) << run.err << run.out;
  auto j = nlohmann::json::parse(run.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << run.out;
  ASSERT_EQ(j["TrainingJobStatusCounters"]["Completed"], 1) << run.out;
  const std::string best = j["BestTrainingJob"]["TrainingJobName"];
  const fs::path archive = dir_ / "out" / best / "output" / "model.tar.gz";
  ASSERT_TRUE(fs::exists(archive)) << archive;
  const std::string listing = dir_.string() + "/listing";
  ASSERT_EQ(std::system(("tar tzf " + archive.string() + " > " + listing).c_str()), 0);
  EXPECT_NE(Slurp(listing).find("model.txt"), std::string::npos) << Slurp(listing);

  // An operator pass: the state directory and its database were world-readable, and with them every
  // spec's Environment secrets and the training logs the API refuses an unsigned reader.
  EXPECT_EQ(fs::status(dir_ / "rel-state").permissions(), fs::perms::owner_all);
  EXPECT_EQ(fs::status(dir_ / "rel-state" / "hpo.db").permissions(), fs::perms::owner_read | fs::perms::owner_write);
}

// An operator pass: the coordinator refused a non-loopback --listen without keys, but a worker,
// which runs whatever it is sent, connected to any address in plaintext without a word.
TEST_F(CliTest, AWorkerRefusesAnUnencryptedCoordinatorOffLoopbackUnlessToldInsecure) {
  Outcome plain = Hpo({"worker", "--connect", "tcp://192.0.2.1:7700", "--work-dir", (dir_ / "w").string()});
  EXPECT_EQ(plain.exit_code, 2) << plain.err;
  EXPECT_NE(plain.err.find("whoever answers there decides what this worker runs"), std::string::npos) << plain.err;
  EXPECT_NE(plain.err.find("--insecure"), std::string::npos) << plain.err;
  EXPECT_FALSE(fs::exists(dir_ / "w")) << "refused before anything was made";
  Outcome both = Hpo({"worker", "--connect", "tcp://192.0.2.1:7700", "--keys", dir_.string(), "--insecure"});
  EXPECT_EQ(both.exit_code, 2) << both.err;
  EXPECT_NE(both.err.find("--keys and --insecure contradict each other"), std::string::npos) << both.err;
}

// An operator pass: a credentials file other users could read was taken without a word.
TEST_F(CliTest, ACredentialsFileOthersCanReadIsWarnedAbout) {
  const fs::path creds = Write("creds", "AKIDEXAMPLE secretsecret\n");
  fs::permissions(creds, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  // A port in use ends the coordinator once its options are read (the warning comes before).
  const hpo::testing::LoopbackSocket in_use = hpo::testing::BindLoopback(/*backlog=*/1);
  ASSERT_GE(in_use.fd, 0);
  Outcome o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:" + std::to_string(in_use.port),
                   "--credentials", creds.string(), "--state-dir", (dir_ / "state").string()});
  ::close(in_use.fd);
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_NE(o.err.find(creds.string() + " holds secrets and is readable by other users (mode 0644); chmod 600"),
            std::string::npos)
      << o.err;

  // Readable by its group on a read-only mount (a Kubernetes Secret with an fsGroup: 0440), it is
  // as given, and `chmod 600` cannot be done: no warning. (A user's pass emulating kubelet's layout.)
  const fs::path secret = dir_ / "secret";
  fs::create_directories(secret);
  Spit(secret / "creds", "AKIDEXAMPLE secretsecret\n");
  fs::permissions(secret / "creds", fs::perms::owner_read | fs::perms::group_read);
  if (::mount(secret.c_str(), secret.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    GTEST_SKIP() << "cannot bind-mount (needs root)";
  }
  const int ro = ::mount(nullptr, secret.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr);
  const hpo::testing::LoopbackSocket busy = hpo::testing::BindLoopback(/*backlog=*/1);
  o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:" + std::to_string(busy.port),
           "--credentials", (secret / "creds").string(), "--state-dir", (dir_ / "state2").string()});
  ::close(busy.fd);
  ::umount2(secret.c_str(), MNT_DETACH);
  ASSERT_EQ(ro, 0) << "cannot make the bind mount read-only";
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_EQ(o.err.find("holds secrets"), std::string::npos) << o.err;
}

// An operator pass: workers kept every training job's trial.log forever, even after hpo delete.
// A training job's directory unchanged for --trial-log-days goes (at start, then hourly); one with
// a checkpoint directory, or changed since, stays.
TEST_F(CliTest, AWorkerRemovesTrialDirectoriesUnchangedForItsRetentionPeriod) {
  const fs::path work = dir_ / "work";
  for (const std::string t : {"old-001-aaaaaaaa", "fresh-001-bbbbbbbb", "held-001-cccccccc"}) {
    fs::create_directories(work / "trials" / t / "attempt-1");
    Spit(work / "trials" / t / "attempt-1" / "trial.log", "loss=1\n");
  }
  fs::create_directories(work / "trials" / "held-001-cccccccc" / "checkpoints");
  const auto old = fs::file_time_type::clock::now() - std::chrono::hours(24 * 40);
  for (const std::string t : {"old-001-aaaaaaaa", "held-001-cccccccc"}) {
    for (const auto& e : fs::recursive_directory_iterator(work / "trials" / t)) fs::last_write_time(e.path(), old);
  }
  const fs::path log = dir_ / "worker.log";
  const pid_t worker = ::fork();
  if (worker == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1), ::dup2(out, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "worker", "--connect", "tcp://127.0.0.1:9", "--work-dir", work.c_str(),
            "--trial-log-days", "30", "--gpus", "none", nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 100 && fs::exists(work / "trials" / "old-001-aaaaaaaa"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  EXPECT_FALSE(fs::exists(work / "trials" / "old-001-aaaaaaaa")) << Slurp(log);
  EXPECT_TRUE(fs::exists(work / "trials" / "fresh-001-bbbbbbbb" / "attempt-1" / "trial.log"));
  EXPECT_TRUE(fs::exists(work / "trials" / "held-001-cccccccc" / "attempt-1" / "trial.log")) << "its checkpoints hold it";
  EXPECT_NE(Slurp(log).find("removing 1 training job directory (their trial.log files) unchanged for 30 day(s)"),
            std::string::npos)
      << Slurp(log);
}

// A worker pointed at a port where nothing listens: after a lease of silence it names the
// endpoint and what to check. It said only "no word from the coordinator ... (trials keep
// running)", with no endpoint, and no training job running.
TEST_F(CliTest, AWorkerThatNeverHearsFromACoordinatorNamesTheEndpointAndWhatToCheck) {
  const fs::path log = dir_ / "lonely.log";
  const pid_t worker = Spawn(log, {"worker", "--connect", "tcp://127.0.0.1:9", "--work-dir",
                                   (dir_ / "lonely").string(), "--gpus", "none"});
  const std::string want = "no answer from a coordinator at tcp://127.0.0.1:9 for 10 s: is one running and listening "
                           "there (hpo coordinator --listen), and is --connect right?";
  WaitForText(log, want, 150);
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  EXPECT_NE(Slurp(log).find(want), std::string::npos) << Slurp(log);
  EXPECT_EQ(Slurp(log).find("trials keep running"), std::string::npos) << Slurp(log);
}

// SIGUSR1 is the interruption notice of a worker started with --spot; one without it died of the
// signal's default action, with its training programs and without a word.
TEST_F(CliTest, AWorkerWithoutSpotIgnoresSigusr1AndSaysSo) {
  const fs::path log = dir_ / "ondemand.log";
  const pid_t worker = Spawn(log, {"worker", "--connect", "tcp://127.0.0.1:9", "--work-dir",
                                   (dir_ / "ondemand").string(), "--gpus", "none"});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // its handlers are installed by then
  ::kill(worker, SIGUSR1);
  const bool said = WaitForText(log, "SIGUSR1 ignored", 50);
  int status = 0;
  EXPECT_EQ(::waitpid(worker, &status, WNOHANG), 0) << "it died: " << Slurp(log);
  ::kill(worker, SIGKILL);
  ::waitpid(worker, nullptr, 0);
  EXPECT_TRUE(said) << Slurp(log);
}

// hpo run died of SIGUSR1 (exit 138) and took its training job with it: it says it ignores it.
TEST_F(CliTest, RunIgnoresSigusr1AndSaysSo) {
  const std::string spec = ScriptJob("usr1", "#!/bin/bash\nsleep 2\necho loss=$SM_HP_X\n", 1, 1);
  const fs::path err = dir_ / "usr1.err";
  const pid_t run = Spawn(err, {"run", spec, "--workers", "1", "--state-dir", (dir_ / "st").string()});
  const fs::path trials = dir_ / "st" / "local-1" / "trials";
  for (int i = 0; i < 100 && !fs::exists(trials); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(run, SIGUSR1);
  int status = 0;
  ASSERT_EQ(::waitpid(run, &status, 0), run);
  ASSERT_TRUE(WIFEXITED(status)) << "signalled " << WTERMSIG(status) << ": " << Slurp(err);
  EXPECT_EQ(WEXITSTATUS(status), 0) << Slurp(err);
  EXPECT_NE(Slurp(err).find("hpo: SIGUSR1 ignored"), std::string::npos) << Slurp(err);
}

// An hpo run refused (its state directory holds the job, ended) sends nothing: it posted the chat
// lines a run before had left undelivered. The listener here counts the connections made to it.
TEST_F(CliTest, ARefusedRunDeliversNoNotificationsLeftByAnEarlierOne) {
  const std::string spec = ScriptJob("refused", "#!/bin/sh\necho loss=$SM_HP_X\n", 1, 1);
  const std::string state = (dir_ / "st").string();
  ASSERT_EQ(Hpo({"run", spec, "--state-dir", state, "--workers", "1"}).exit_code, 0);
  hpo::testing::LoopbackSocket listener = hpo::testing::BindLoopback(4);
  ASSERT_GE(listener.fd, 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(listener.port) + "/chat";
  // An event of the job's end, left waiting for that chat by an earlier run.
  const std::string insert =
      "/usr/bin/python3 -c \"import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("
      "'INSERT INTO notifications(target,body,created_ms,attempts,next_ms,last_error) VALUES(?,?,0,0,0,\\'\\')',"
      "(sys.argv[2], sys.argv[3])); c.commit()\" " +
      state + "/hpo.db '" + url + "' '{\"detail-type\": \"SageMaker HyperParameter Tuning Job State Change\", "
      "\"detail\": {\"HyperParameterTuningJobName\": \"refused\", \"HyperParameterTuningJobStatus\": \"Completed\"}}'";
  ASSERT_EQ(std::system(insert.c_str()), 0) << insert;
  std::atomic<int> connections{0};
  std::atomic<bool> done{false};
  std::thread server([&, fd = listener.fd] {
    while (!done.load()) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const int c = ::accept(fd, nullptr, nullptr);
      if (c >= 0) ++connections, ::close(c);
    }
  });
  Outcome again = Hpo({"run", spec, "--state-dir", state, "--workers", "1", "--notify-chat", url});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  done = true;
  server.join();
  ::close(listener.fd);
  EXPECT_EQ(again.exit_code, 2) << again.err;
  EXPECT_NE(again.err.find("already holds the tuning job refused (Completed)"), std::string::npos) << again.err;
  EXPECT_EQ(connections.load(), 0) << "a refused run posted a notification";
}

// A coordinator that reads a submitted spec and drops the connection before it answers (it
// stopped on a full disk after committing the job): "cannot reach the coordinator" sent users to
// submit again, into ResourceInUse. The request may have been applied, and the message says so.
TEST_F(CliTest, ASubmitWhoseConnectionDropsBeforeTheAnswerSaysItMayHaveBeenApplied) {
  hpo::testing::LoopbackSocket listener = hpo::testing::BindLoopback(4);
  ASSERT_GE(listener.fd, 0);
  std::thread server([fd = listener.fd] {
    const int c = ::accept(fd, nullptr, nullptr);
    if (c < 0) return;
    // The whole request (headers, then Content-Length bytes of body), then no answer: closed
    // after the headers alone, the client could still be writing the body (a Write error: not
    // sent, so not applied).
    char buf[65536];
    std::string got;
    size_t want = std::string::npos;
    while (want == std::string::npos || got.size() < want) {
      const ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      const size_t end = got.find("\r\n\r\n");
      if (want == std::string::npos && end != std::string::npos) {
        std::string headers = got.substr(0, end);
        for (char& ch : headers) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        const size_t at = headers.find("content-length:");
        want = end + 4 + (at == std::string::npos ? 0 : std::stoul(headers.substr(at + 15)));
      }
    }
    ::close(c);
  });
  const std::string spec = ScriptJob("dropped", "#!/bin/sh\necho loss=1\n", 1, 1);
  Outcome o = Hpo({"submit", spec, "--coordinator", "http://127.0.0.1:" + std::to_string(listener.port)});
  server.join();
  ::close(listener.fd);
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_NE(o.err.find("closed the connection before it answered"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("the request may have been applied or not"), std::string::npos) << o.err;
  // Not the advice for a coordinator that cannot be reached (a scale pass: "start one with
  // `hpo coordinator`" after it had answered the connection).
  EXPECT_EQ(o.err.find("start one with"), std::string::npos) << o.err;
}

// hpo run's local worker refused its work directory (writable by others) and went; the run
// said "no worker is registered" and waited until killed, the worker's reason nowhere. It says
// the reason and stops (exit 3) before the job is submitted.
TEST_F(CliTest, HpoRunWhoseLocalWorkerCannotRunSaysWhyAndStops) {
  const fs::path state = dir_ / "open";
  fs::create_directories(state / "local-1");
  fs::permissions(state / "local-1", fs::perms::all, fs::perm_options::replace);
  Outcome o = Hpo({"run", Example("quickstart.yaml").string(), "--workers", "1", "--state-dir", state.string()});
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_NE(o.err.find("local worker local-1 stopped: the work directory " + (state / "local-1").string() +
                       " (mode 0777) is writable by other users"),
            std::string::npos)
      << o.err;
}

// --coordinator given the coordinator's ZeroMQ port (--listen, where workers connect) rather
// than its HTTP one: "cannot reach the coordinator (Read)", and "start one with hpo coordinator",
// beside the running coordinator. What listens there greets as ZeroMQ does: said so, exit 2.
TEST_F(CliTest, ACommandPointedAtTheWorkersZeroMqPortIsToldToUseTheHttpOne) {
  Reaper reaper;
  const fs::path log = dir_ / "c.log";
  reaper.pids.push_back(Spawn(log, {"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                                    "--state-dir", (dir_ / "cs").string()}));
  ASSERT_TRUE(WaitForText(log, "workers connect to tcp://127.0.0.1:", 100)) << Slurp(log);
  const std::string text = Slurp(log);
  const size_t at = text.find("workers connect to tcp://127.0.0.1:") + 35;
  const std::string port = text.substr(at, text.find_first_not_of("0123456789", at) - at);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list"}, std::vector<std::string>{"describe", "some-job"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"--coordinator", "http://127.0.0.1:" + port});
    auto o = Hpo(argv);
    EXPECT_EQ(o.exit_code, 2) << o.err;
    EXPECT_NE(o.err.find("is a ZeroMQ port, most likely the coordinator's --listen address"), std::string::npos)
        << o.err;
  }
}

// A worker whose key is not in the allow-list is told so by its handshake's failure; it was also
// told every 10 s that nothing answered ("is one running there, and is --connect right?"),
// sending its operator after the wrong thing.
TEST_F(CliTest, AWorkerWithARefusedKeyIsNotToldNothingAnswers) {
  const fs::path keys = dir_ / "keys", other = dir_ / "other";
  ASSERT_EQ(Hpo({"keygen", "--out", keys.string()}).exit_code, 0);
  ASSERT_EQ(Hpo({"keygen", "--out", other.string()}).exit_code, 0);
  fs::copy_file(keys / "coordinator.pub", other / "coordinator.pub", fs::copy_options::overwrite_existing);
  Reaper reaper;
  const fs::path clog = dir_ / "c.log", wlog = dir_ / "w.log";
  const std::string endpoint = KeyedCoordinator(keys, dir_ / "cs", clog, &reaper);
  ASSERT_FALSE(endpoint.empty()) << Slurp(clog);
  reaper.pids.push_back(Spawn(wlog, {"worker", "--keys", other.string(), "--connect", endpoint, "--work-dir",
                              (dir_ / "wd").string(), "--gpus", "none"}));
  ASSERT_TRUE(WaitForText(wlog, "the coordinator refused this worker's key", 100)) << Slurp(wlog);
  std::this_thread::sleep_for(std::chrono::milliseconds(11500));  // past the worker's 10 s lease
  EXPECT_EQ(Slurp(wlog).find("no answer from a coordinator"), std::string::npos) << Slurp(wlog);
}

// An empty --connect (the systemd unit's ${HPO_COORDINATOR_ENDPOINT} unset) said only
// "--connect : wants a ZeroMQ endpoint" (a deploy pass): it says it is empty and where the unit
// takes it from.
TEST_F(CliTest, AnEmptyConnectSaysSoAndWhereTheUnitTakesItFrom) {
  Outcome o = Hpo({"worker", "--connect", "", "--work-dir", (dir_ / "w").string(), "--gpus", "none"});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("--connect is empty: give the coordinator's ZeroMQ endpoint"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("HPO_COORDINATOR_ENDPOINT in /etc/default/hpo-worker"), std::string::npos) << o.err;
}

// A broken allow-list stops the coordinator naming the line; its error ended "give another
// --listen (what listens there: ss -ltnp)", which sent the operator after a port (a deploy pass).
TEST_F(CliTest, ABrokenAllowListIsNamedWithoutAdviceAboutTheListenAddress) {
  const fs::path keys = dir_ / "keys";
  ASSERT_EQ(Hpo({"keygen", "--out", keys.string()}).exit_code, 0);
  {
    std::ofstream(keys / "authorized_workers") << "garbage\n";
  }
  Outcome o = Hpo({"coordinator", "--keys", keys.string(), "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                   "--state-dir", (dir_ / "cs").string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("authorized_workers:1: 'garbage' is not a CurveZMQ public key"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("--listen"), std::string::npos) << o.err;
}

// A second worker under an id in use (a cloned machine image with its work directory's
// worker-id file): a coordinator with keys keeps the first connection. ZeroMQ dropped the other
// without a word (both connected under the bare id), and the second worker could only guess;
// each process has a connection of its own now, and the coordinator tells it the id is another
// key's.
TEST_F(CliTest, ASecondWorkerWithAnIdInUseSaysItMayBeADuplicate) {
  const fs::path keys = dir_ / "keys";
  ASSERT_EQ(Hpo({"keygen", "--out", keys.string()}).exit_code, 0);
  ASSERT_EQ(Hpo({"keygen", "--worker", "--out", keys.string()}).exit_code, 0);
  Reaper reaper;
  std::vector<pid_t>& pids = reaper.pids;
  const fs::path clog = dir_ / "c.log", w1 = dir_ / "w1.log", w2 = dir_ / "w2.log";
  const std::string endpoint = KeyedCoordinator(keys, dir_ / "cs", clog, &reaper);
  ASSERT_FALSE(endpoint.empty()) << Slurp(clog);
  pids.push_back(Spawn(w1, {"worker", "--keys", keys.string(), "--connect", endpoint, "--id", "gpu-node-7",
                            "--work-dir", (dir_ / "wd1").string(), "--gpus", "none"}));
  ASSERT_TRUE(WaitForText(w1, "registered with", 100)) << Slurp(w1);
  pids.push_back(Spawn(w2, {"worker", "--keys", keys.string(), "--key-name", "worker-2", "--connect", endpoint,
                            "--id", "gpu-node-7", "--work-dir", (dir_ / "wd2").string(), "--gpus", "none"}));
  EXPECT_TRUE(WaitForText(w2, "the worker id gpu-node-7 belongs to another worker's key on this coordinator; give "
                              "each worker its own --id", 150))
      << Slurp(w2);
  // Never accepted, it exits 3 (it waited forever, saying "no word from the coordinator", under a
  // service manager that saw it up).
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 100 && done == 0; ++i) {
    done = ::waitpid(pids.back(), &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(done, pids.back()) << "still running:\n" << Slurp(w2);
  pids.pop_back();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << status << "\n" << Slurp(w2);
  EXPECT_NE(Slurp(w2).find("the coordinator refused this worker: the worker id gpu-node-7 belongs to another"),
            std::string::npos)
      << Slurp(w2);
  EXPECT_TRUE(WaitForText(w1, "registered with", 10)) << Slurp(w1);
  EXPECT_EQ(Slurp(w1).find("no word from the coordinator"), std::string::npos) << "the first one is not cut off\n"
                                                                                << Slurp(w1);
}

// The state database deleted under a running coordinator (an operator's rm): it kept answering
// and acknowledging into a file that was gone, and every job vanished at the next start. It now
// saves what its open connection still reads beside it, says where, and stops (exit 3).
TEST_F(CliTest, ACoordinatorWhoseDatabaseIsDeletedSavesItAndStops) {
  const fs::path state = dir_ / "gone";
  const fs::path log = dir_ / "gone.log";
  const pid_t coord = Spawn(log, {"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                                  "--state-dir", state.string()});
  ASSERT_TRUE(WaitForText(log, "workers connect to", 100)) << Slurp(log);
  fs::remove(state / "hpo.db");
  EXPECT_EQ(StopsWithin10s(coord), 3) << "it kept running without its database, or crashed: " << Slurp(log);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find((state / "hpo.db").string() + " was deleted while in use"), std::string::npos) << text;
  fs::path saved;
  for (const auto& e : fs::directory_iterator(state)) {
    if (e.path().filename().string().rfind("hpo.db.recovered-", 0) == 0) saved = e.path();
  }
  ASSERT_FALSE(saved.empty()) << text;
  // The write-ahead log of the file that went is moved aside: replayed into the recovered copy
  // once it is moved back, it would corrupt it.
  EXPECT_FALSE(fs::exists(state / "hpo.db-wal"));
  EXPECT_FALSE(fs::exists(state / "hpo.db-shm"));
  EXPECT_NE(text.find("every record it still held is saved in " + saved.string()), std::string::npos) << text;
  const std::string tables = hpo::testing::Sh("python3 -c \"import sqlite3; print(sorted(r[0] for r in sqlite3.connect('" +
                                saved.string() + "').execute('select name from sqlite_master where type=\\'table\\'')))\"");
  EXPECT_NE(tables.find("'jobs'"), std::string::npos) << tables;
}

// A durability pass: another store's backup copied over hpo.db under a running coordinator
// (`cp backup.db hpo.db`: the same file) went unseen; it acknowledged jobs into a store that
// could not be opened again (its log replayed onto the other pages). It stops, and moves its log
// aside, so that the file copied in opens as it is.
TEST_F(CliTest, ACoordinatorWhoseDatabaseIsOverwrittenInPlaceStopsAndTheCopyOpens) {
  const fs::path other = dir_ / "other", state = dir_ / "over";
  const fs::path log = dir_ / "over.log";
  // Another store, made by a coordinator and stopped (its file whole, its identity its own).
  const pid_t first = Spawn(dir_ / "other.log", {"coordinator", "--listen", "tcp://127.0.0.1:0", "--http",
                                                 "127.0.0.1:0", "--state-dir", other.string()});
  ASSERT_TRUE(WaitForText(dir_ / "other.log", "workers connect to", 100)) << Slurp(dir_ / "other.log");
  ::kill(first, SIGTERM);
  ::waitpid(first, nullptr, 0);
  const pid_t coord = Spawn(log, {"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0",
                                  "--state-dir", state.string()});
  ASSERT_TRUE(WaitForText(log, "workers connect to", 100)) << Slurp(log);
  {  // in place: opened for writing and truncated, as cp does
    std::ofstream out(state / "hpo.db", std::ios::binary | std::ios::trunc);
    out << Slurp(other / "hpo.db");
  }
  EXPECT_EQ(StopsWithin10s(coord), 3) << "it kept running on an overwritten database, or crashed: " << Slurp(log);
  const std::string text = Slurp(log);
  EXPECT_NE(text.find((state / "hpo.db").string() + " was overwritten in place while in use: it now holds another "
                                                    "store"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Start again to use the file copied in"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(state / "hpo.db-wal")) << "its log, moved aside, is not replayed onto the copy";
  Outcome list = Hpo({"list", "--state-dir", state.string()});
  EXPECT_EQ(list.exit_code, 0) << list.err;
}

TEST_F(CliTest, AStateDirectoryThatCannotBeWrittenIsNamedAsSuchNotAsInUse) {
  const fs::path ro = dir_ / "ro";
  fs::create_directories(ro);
  if (::mount("tmpfs", ro.c_str(), "tmpfs", MS_RDONLY, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{ro};
  Outcome o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir", ro.string()});
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_NE(o.err.find("must be writable by this user"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("stop that coordinator"), std::string::npos) << "no other coordinator is involved: " << o.err;
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  std::string spec = Example("quickstart.yaml").string();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {},
           {"no-such-command"},
           {"validate"},
           {"validate", "--no-such-flag", spec},
           {"convert", spec, "--to", "xml"},
           {"convert", spec, "-o", "toml"},
           // each local worker serves one type: two types need two workers
           {"run", spec, "--workers", "1", "--instance-type", "ml.m5.large", "--instance-type", "ml.m5.xlarge"},
           {"run", spec, "--dashboard", "70000"},
           // out of range: the worker would drop every assignment (grace <= 86400 on the wire)
           {"run", spec, "--grace", "-5"},
           {"run", spec, "--grace", "100000"},
           {"run", spec, "--workers", "-1"},
           {"run", spec, "--slots", "0"},
           {"worker", "--slots", "0"},
           {"worker", "--slots", "-3"},
           {"coordinator", "--grace", "100000"},
           {"coordinator", "--heartbeat-ms", "20000"},  // not shorter than the lease (10000)
           {"worker", "--connect", "bogus", "--work-dir", (dir_ / "w").string()},  // names the endpoint
           {"dashboard", "--listen", "7790"},
           {"dashboard", "--refresh", "-1"},
           {"bench", "optimize", "--start", "latin"},
           {"bench", "optimize", "--parallel-exploit", "sometimes"},
           {"bench", "optimize", "--prior-mean-quantile", "1.5"},
           {"bench", "optimize", "--output-warping", "maybe"},
           {"bench", "optimize", "--max-posterior-points", "1"},
           {"bench", "optimize", "--function", "ackley", "--dims", "0"},  // ran 10 dimensions
           {"bench", "suggest", "--q", "100000", "--n", "5", "--d", "2"},  // aborted out of memory
           {"bench", "suggest", "--d", "100000", "--n", "5"},              // ran on without end
           {"bench", "suggest", "--threads", "-1"},
           {"bench", "suggest", "--n", "19", "--d", "20"},  // fewer than the model needs: exit 1, no option named
           {"compare", "a", "--budget", "0"},               // the message printed 1.797e308 in full
           {"search", "--max", "-1"},
           {"compare", "a", "--budget", "99999999999999999999"},  // taken as 2^64 - 1
           // ports out of range wrapped around (99999 bound 34463) or were retried forever
           {"coordinator", "--listen", "tcp://127.0.0.1:99999", "--state-dir", (dir_ / "c1").string()},
           {"coordinator", "--http", "127.0.0.1:99999", "--state-dir", (dir_ / "c2").string()},
           {"coordinator", "--http", "127.0.0.1:", "--state-dir", (dir_ / "c3").string()},
           {"coordinator", "--spot-price-ratio", "nan", "--state-dir", (dir_ / "c4").string()},  // passed CLI::Range
           {"worker", "--connect", "tcp://127.0.0.1:99999", "--work-dir", (dir_ / "w1").string()},
           {"worker", "--connect", "tcp://127.0.0.1:0", "--work-dir", (dir_ / "w2").string()},
           // what the coordinator refuses in a registration, refused here at once instead of
           // logged several times a second, forever
           {"worker", "--id", "a b", "--connect", "tcp://127.0.0.1:1", "--work-dir", (dir_ / "w3").string()},
           {"worker", "--id", std::string(5000, 'x'), "--connect", "tcp://127.0.0.1:1", "--work-dir",
            (dir_ / "w4").string()},
           {"worker", "--host", "bad host!", "--connect", "tcp://127.0.0.1:1", "--work-dir", (dir_ / "w5").string()},
           {"worker", "--instance-type", std::string(300, 'm'), "--connect", "tcp://127.0.0.1:1", "--work-dir",
            (dir_ / "w6").string()},
       }) {
    Outcome o = Hpo(args);
    std::string joined;
    for (const auto& a : args) joined += " " + a;
    EXPECT_EQ(o.exit_code, 2) << "hpo" << joined << "\n" << o.out << o.err;
  }
  Outcome zero = Hpo({"compare", "a", "--budget", "0"});
  EXPECT_LT(zero.err.size(), 300u) << zero.err;
  Outcome few = Hpo({"bench", "suggest", "--n", "19", "--d", "20"});
  EXPECT_NE(few.err.find("give --n 20 or more"), std::string::npos) << few.err;
}

// The client commands' --coordinator is the HTTP API: a ZeroMQ address (what workers connect to),
// a path, or a port out of range is a usage error that says what to give, not an abort
// ("'tcp' scheme is not supported" from std::terminate) or a "cannot reach".
TEST_F(CliTest, AClientCommandRefusesACoordinatorUrlThatIsNotTheHttpApi) {
  for (const auto& [url, says] : std::vector<std::pair<std::string, std::string>>{
           {"tcp://127.0.0.1:7700", "ZeroMQ address"},
           {"http://127.0.0.1:7780/ui/", "has a path (/ui/)"},
           {"http://127.0.0.1:99999", "not one of 1-65535"},
           {"127.0.0.1:7780", "has no scheme"},
           {"ftp://127.0.0.1:7780", "scheme ftp://"},
           {"http://", "has no host"},
           {"http://127.0.0.1:7780 ", "no spaces"},
       }) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"list", "--coordinator", url},
                                                 {"events", "--coordinator", url},
                                                 {"delete", "x", "--coordinator", url},
                                                 {"workers", "--coordinator", url},
                                                 {"submit", Example("quickstart.yaml").string(), "--coordinator", url}}) {
      Outcome o = Hpo(args);
      EXPECT_EQ(o.exit_code, 2) << args[0] << " " << url << "\n" << o.err;
      EXPECT_NE(o.err.find(says), std::string::npos) << o.err;
      EXPECT_NE(o.err.find("http://HOST:PORT"), std::string::npos) << o.err;
    }
  }
  setenv("HPO_COORDINATOR", "tcp://127.0.0.1:7700", 1);
  Outcome o = Hpo({"list"});
  unsetenv("HPO_COORDINATOR");
  EXPECT_EQ(o.exit_code, 2) << o.err;
}

// A server at --coordinator that answers 200 with what an hpo coordinator never sends (an HTML
// page, a list, null, objects missing their fields, a pager that never ends): every client
// command exits 3 saying the answer is unexpected, or copes; none aborts or crashes, and delete
// does not say "deleted" unless the answer is an object (SageMaker's own answer to it is {}).
// The same with an error status (another server at a wrong --coordinator port: 501 to a POST):
// its HTML page was printed as the coordinator's refusal, exit 1.
TEST_F(CliTest, ClientCommandsSurviveAServerThatAnswersNonsense) {
  httplib::Server server;
  std::string body;
  int code = 200;
  std::mutex mu;
  auto answer = [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mu);
    res.status = code;
    res.set_content(body, "application/x-amz-json-1.1");
  };
  server.Post(".*", answer);
  server.Get(".*", answer);
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread serving([&] { server.listen_after_bind(); });
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  const std::string spec = Example("quickstart.yaml").string();
  const std::vector<std::vector<std::string>> commands = {
      {"list"}, {"trials", "qa1"}, {"workers"}, {"stop", "qa1"}, {"submit", spec}, {"describe", "qa1", "--best"},
      {"describe", "qa1"}, {"describe", "qa1-001-abcdefgh", "--training-job"}, {"events", "qa1"},
      {"logs", "qa1-001-abcdefgh"}, {"delete", "qa1"}, {"stop", "--training-job", "qa1-001-abcdefgh"}};
  for (const std::string& nonsense :
       {std::string("<html><body>a proxy's page</body></html>"), std::string("[]"), std::string("null"),
        std::string(R"({"HyperParameterTuningJobSummaries":[{}],"TrainingJobSummaries":[{}],"events":[{}],)"
                    R"("lines":[{}],"next":1})"),
        std::string(R"({"HyperParameterTuningJobSummaries":{},"TrainingJobSummaries":7,"events":"x","lines":null})"),
        std::string(R"({"HyperParameterTuningJobSummaries":[],"TrainingJobSummaries":[],"NextToken":"again"})"),
        std::string("{}"), std::string("<!DOCTYPE HTML><html>501 Unsupported method ('POST')</html>")}) {
   for (int status : {200, 501}) {
    {
      std::lock_guard<std::mutex> lock(mu);
      body = nonsense;
      code = status;
    }
    if (status != 200 && nonsense.front() == '{') continue;  // an error object: a refusal
    for (std::vector<std::string> args : commands) {
      args.insert(args.end(), {"--coordinator", url});
      Outcome o = Hpo(args);
      std::string joined;
      for (const auto& a : args) joined += " " + a;
      EXPECT_LT(o.exit_code, 128) << "hpo" << joined << " crashed on " << nonsense << "\n" << o.err;
      EXPECT_EQ(o.err.find("terminate called"), std::string::npos) << "hpo" << joined << "\n" << o.err;
      if (nonsense.front() != '{') {
        EXPECT_EQ(o.exit_code, 3) << "hpo" << joined << " on " << nonsense << "\n" << o.out << o.err;
        EXPECT_NE(o.err.find("unexpected answer"), std::string::npos) << "hpo" << joined << "\n" << o.err;
        EXPECT_EQ(o.out.find("deleted"), std::string::npos) << "hpo" << joined << " on " << nonsense;
      }
    }
   }
  }
  // An empty 404 (a dashboard's port, another server): said as such, not "HTTP 404, ;".
  {
    std::lock_guard<std::mutex> lock(mu);
    body.clear();
    code = 404;
  }
  Outcome empty = Hpo({"list", "--coordinator", url});
  EXPECT_NE(empty.err.find("an empty body"), std::string::npos) << empty.err;
  EXPECT_EQ(empty.err.find(", ;"), std::string::npos) << empty.err;
  server.stop();
  serving.join();
}

// ARNs name the coordinator's --region and --account-id, so that one a SageMaker user builds from
// their own region and account (ListTags, a warm start's parent) matches; they said local and
// 000000000000 whatever the coordinator was told.
// Usage errors name what was not understood and offer the closest command: "hpo --bogus" said
// "missing A subcommand", "hpo bench sugest" the same, "hpo workers drian x" offered nothing.
TEST_F(CliTest, UsageErrorsNameTheUnknownWordAndTheClosestCommand) {
  Outcome o = Hpo({"--bogus"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("hpo: unknown option '--bogus' (hpo takes one of: validate,"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("worker-guard"), std::string::npos) << "hidden commands are not offered";
  o = Hpo({"bench", "sugest"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("hpo bench: unknown command 'sugest'; did you mean 'suggest'? (hpo bench takes one of: "
                       "suggest, optimize, importance)"),
            std::string::npos)
      << o.err;
  o = Hpo({"workers", "drian", "x"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("did you mean 'drain' for 'drian'?"), std::string::npos) << o.err;
  o = Hpo({});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("hpo [OPTIONS] SUBCOMMAND"), std::string::npos) << o.err.substr(0, 400);
}

TEST_F(CliTest, ACoordinatorsArnsNameItsRegionAndAccount) {
  const hpo::testing::LoopbackSocket free_port = hpo::testing::BindLoopback();
  ASSERT_GE(free_port.fd, 0);
  ::close(free_port.fd);
  const int port = free_port.port;
  const std::string http = "127.0.0.1:" + std::to_string(port), url = "http://" + http;
  const pid_t coordinator = ::fork();
  if (coordinator == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
    ::execl(HPO_BINARY, HPO_BINARY, "coordinator", "--listen", "tcp://127.0.0.1:0", "--http", http.c_str(),
            "--state-dir", (dir_ / "state").c_str(), "--region", "eu-west-1", "--account-id", "123456789012",
            nullptr);
    ::_exit(127);
  }
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    up = Hpo({"list", "--coordinator", url}).exit_code == 0;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Outcome submitted = Hpo({"submit", Example("quickstart.yaml").string(), "--coordinator", url});
  // Not found on a coordinator that is not the default: the commands suggested reach it too (they
  // asked the default one, which is not there).
  Outcome missing = Hpo({"stop", "--training-job", "nope-001-deadbeef", "--coordinator", url});
  Outcome nologs = Hpo({"logs", "nope-001-deadbeef", "--coordinator", url});
  ::kill(coordinator, SIGTERM);
  ::waitpid(coordinator, nullptr, 0);
  ASSERT_TRUE(up) << "the coordinator did not answer on " << url;
  EXPECT_EQ(missing.exit_code, 1) << missing.err;
  EXPECT_NE(missing.err.find("`hpo trials JOB --coordinator " + url + "`"), std::string::npos) << missing.err;
  EXPECT_EQ(nologs.exit_code, 1) << nologs.err;
  EXPECT_NE(nologs.err.find("`hpo list --coordinator " + url + "`"), std::string::npos) << nologs.err;
  EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
  EXPECT_EQ(submitted.out.rfind("arn:aws:sagemaker:eu-west-1:123456789012:hyper-parameter-tuning-job/", 0), 0u)
      << submitted.out;
  EXPECT_EQ(Hpo({"coordinator", "--account-id", "12345", "--state-dir", (dir_ / "s2").string()}).exit_code, 2);
}

// A Kubernetes resource submitted to a coordinator keeps its metadata's name, namespace and the
// labels and annotations with text values, across a restart: `hpo describe -o yaml` prints them
// again, and nothing the cluster writes (uid, resourceVersion). A SageMaker request's resource
// has the job's name alone. (Before, the namespace and labels were dropped at submission.)
TEST_F(CliTest, ASubmittedResourceKeepsItsNamespaceLabelsAndAnnotations) {
  const hpo::testing::LoopbackSocket free_port = hpo::testing::BindLoopback();
  ASSERT_GE(free_port.fd, 0);
  ::close(free_port.fd);
  const std::string http = "127.0.0.1:" + std::to_string(free_port.port), url = "http://" + http;
  auto start = [&] {
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
      ::execl(HPO_BINARY, HPO_BINARY, "coordinator", "--listen", "tcp://127.0.0.1:0", "--http", http.c_str(),
              "--state-dir", (dir_ / "state").c_str(), nullptr);
      ::_exit(127);
    }
    bool up = false;
    for (int i = 0; i < 100 && !up; ++i) {
      up = Hpo({"list", "--coordinator", url}).exit_code == 0;
      if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(up) << "the coordinator did not answer on " << url;
    return pid;
  };
  std::string yaml = Slurp(Example("quickstart.yaml"));
  const std::string from = "metadata:\n  name: quickstart\n";
  ASSERT_NE(yaml.find(from), std::string::npos);
  yaml.replace(yaml.find(from), from.size(),
               "metadata:\n  name: quickstart\n  namespace: ml-team\n  uid: 0b6c-11\n  resourceVersion: \"42\"\n"
               "  labels:\n    app: churn\n    tier: \"2\"\n    count: 3\n"
               "  annotations:\n    owner: ana@example.com\n");
  const std::string labelled = Write("labelled.yaml", yaml).string();
  pid_t coordinator = start();
  Outcome submitted = Hpo({"submit", labelled, "--coordinator", url});
  Outcome plain = Hpo({"submit", ScriptJob("Plain-Request", "#!/bin/sh\necho loss=1\n", 1, 1), "--coordinator", url});
  ::kill(coordinator, SIGTERM);
  ::waitpid(coordinator, nullptr, 0);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  coordinator = start();  // kept in the state database
  Outcome described = Hpo({"describe", "quickstart", "-o", "yaml", "--coordinator", url});
  Outcome plain_described = Hpo({"describe", "Plain-Request", "-o", "yaml", "--coordinator", url});
  ::kill(coordinator, SIGTERM);
  ::waitpid(coordinator, nullptr, 0);
  ASSERT_EQ(described.exit_code, 0) << described.err;
  EXPECT_NE(described.out.find("metadata:\n  name: quickstart\n  namespace: ml-team\n  labels:\n    app: churn\n"
                               "    tier: \"2\"\n  annotations:\n    owner: ana@example.com\nspec:\n"),
            std::string::npos)
      << described.out;
  ASSERT_EQ(plain_described.exit_code, 0) << plain_described.err;
  EXPECT_NE(plain_described.out.find("metadata:\n  name: plain-request\nspec:\n"), std::string::npos)
      << plain_described.out;
  // The label Kubernetes would refuse is noted by validate (and left out above).
  Outcome v = Hpo({"validate", labelled});
  EXPECT_NE(v.out.find(": metadata.labels.count: 3 is not text, and Kubernetes takes only text there: write it in "
                       "quotes, \"3\" (hpo leaves it out)\n"),
            std::string::npos)
      << v.out;
}

// A bad address changes nothing: no state directory is made, and the message names the option.
TEST_F(CliTest, ACoordinatorWithABadAddressSaysWhichAndMakesNoStateDirectory) {
  const fs::path state = dir_ / "state";
  Outcome o = Hpo({"coordinator", "--listen", "tcp://0.0.0.0:70000", "--state-dir", state.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("--listen tcp://0.0.0.0:70000: wants tcp://HOST:PORT with a port of 0-65535"), std::string::npos)
      << o.err;
  EXPECT_FALSE(fs::exists(state));
  // An endpoint without its transport was called reachable from other machines, and the user
  // sent off to make keys; --insecure then failed to bind with exit 3.
  for (const char* extra : {"", "--insecure"}) {
    std::vector<std::string> args = {"coordinator", "--listen", "127.0.0.1:7700", "--state-dir", state.string()};
    if (*extra) args.push_back(extra);
    o = Hpo(args);
    EXPECT_EQ(o.exit_code, 2) << o.err;
    EXPECT_NE(o.err.find("--listen 127.0.0.1:7700: wants a ZeroMQ endpoint, tcp://HOST:PORT (or ipc://PATH); did you "
                         "mean tcp://127.0.0.1:7700?"),
              std::string::npos)
        << o.err;
    EXPECT_FALSE(fs::exists(state));
  }
  o = Hpo({"worker", "--connect", "127.0.0.1:7700", "--work-dir", (dir_ / "w").string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("did you mean tcp://127.0.0.1:7700?"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "w"));
  // Keys, credentials and a port in use: refused with nothing made (hpo.db and the lock were).
  o = Hpo({"coordinator", "--keys", (dir_ / "nokeys").string(), "--state-dir", state.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_FALSE(fs::exists(state));
  o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "0.0.0.0:0", "--state-dir", state.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("give --credentials FILE"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(state));
  {
    const hpo::testing::LoopbackSocket listening = hpo::testing::BindLoopback(/*backlog=*/1);
    ASSERT_GE(listening.fd, 0);
    const int busy = listening.fd;
    const std::string taken = "127.0.0.1:" + std::to_string(listening.port);
    const fs::path nested = dir_ / "p" / "q" / "state";  // its missing parents too
    o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", taken, "--state-dir", nested.string()});
    EXPECT_EQ(o.exit_code, 3) << o.err;
    EXPECT_NE(o.err.find("give another --http"), std::string::npos) << o.err;
    EXPECT_FALSE(fs::exists(dir_ / "p")) << "a state directory this command made goes again, with its parents";
    o = Hpo({"coordinator", "--listen", "tcp://" + taken, "--http", "127.0.0.1:0", "--state-dir", state.string()});
    EXPECT_NE(o.exit_code, 0) << o.err;
    EXPECT_NE(o.err.find("give another --listen"), std::string::npos) << o.err;
    EXPECT_FALSE(fs::exists(state));
    ::close(busy);
  }
  o = Hpo({"worker", "--id", "../../etc", "--connect", "tcp://127.0.0.1:1", "--work-dir", (dir_ / "w").string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("--id: must be 1-128 characters from [A-Za-z0-9._:@-] (the coordinator would refuse this "
                       "worker)"),
            std::string::npos)
      << o.err;
}

// An empty value in a --config file was an option without its value, and CLI11 took the next
// option for it: work-dir: "" made a directory named "--slots=2" and slots fell back to 1.
TEST_F(CliTest, AnEmptyValueInAConfigFileIsRefusedByName) {
  const fs::path config = Write("w.yaml", "work-dir: \"\"\nslots: 2\nconnect: tcp://127.0.0.1:1\n");
  Outcome o = Hpo({"worker", "--config", config.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("work-dir is empty; give it a value, or leave work-dir out for the default"), std::string::npos)
      << o.err;
  EXPECT_FALSE(fs::exists(fs::current_path() / "--slots=2"));
  const fs::path list = Write("c.yaml", "image: [\"a=/bin/true\", \"\"]\n");
  o = Hpo({"worker", "--config", list.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("image is empty"), std::string::npos) << o.err;
}

// `hpo bench optimize ARGS... -o json`: exit 0 and a JSON object, else a test failure and null.
#define OPTIMIZE_JSON(j, ...)                                                                    \
  nlohmann::json j;                                                                              \
  {                                                                                              \
    std::vector<std::string> args_{"bench", "optimize"};                                         \
    for (const std::string& a_ : std::vector<std::string>{__VA_ARGS__}) args_.push_back(a_);     \
    args_.insert(args_.end(), {"-o", "json"});                                                   \
    Outcome o_ = Hpo(args_);                                                                     \
    ASSERT_EQ(o_.exit_code, 0) << o_.out << o_.err;                                              \
    j = nlohmann::json::parse(o_.out, nullptr, /*allow_exceptions=*/false);                       \
    ASSERT_TRUE(j.is_object()) << o_.out;                                                        \
  }

// hpo bench importance: the estimate against Ishigami's exact Sobol indices, and what it refuses.
TEST_F(CliTest, BenchImportanceComesCloseToIshigamisExactIndices) {
  Outcome o = Hpo({"bench", "importance", "--function", "ishigami", "--evaluations", "120", "--seeds", "2", "-o", "json"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << o.out;
  ASSERT_EQ(j["true_first"].size(), 3u);
  EXPECT_NEAR(j["true_first"][0].get<double>(), 0.3139, 1e-4);
  EXPECT_NEAR(j["true_first"][1].get<double>(), 0.4424, 1e-4);
  EXPECT_NEAR(j["true_total"][2].get<double>(), 0.2437, 1e-4);
  ASSERT_EQ(j["seeds"].size(), 2u);
  for (const auto& s : j["seeds"]) {
    EXPECT_EQ(s["points"].size(), 120u);
    EXPECT_LT(s["first_mae"].get<double>(), 0.06) << s["first"].dump();
    EXPECT_GT(s["first"][1].get<double>(), s["first"][0].get<double>()) << "x2 matters most alone";
    EXPECT_GT(s["total"][2].get<double>(), 0.1) << "x3 matters through its interaction with x1";
  }
  Outcome table = Hpo({"bench", "importance", "--function", "gfunction", "--evaluations", "60", "--seeds", "1"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("gfunction, 60 evaluations"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("  x6 "), std::string::npos) << table.out;
  Outcome bad = Hpo({"bench", "importance", "--function", "branin"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("ishigami"), std::string::npos) << bad.err;
}

TEST_F(CliTest, BenchOptimizeRunsEitherStartDesignAndSaysWhich) {
  for (const std::string start : {"sobol", "random"}) {
    OPTIMIZE_JSON(j, "--function", "branin", "--evaluations", "6", "--batch", "3", "--seeds", "2", "--start", start);
    EXPECT_EQ(j["start"], start);
    ASSERT_EQ(j["seeds"].size(), 2u);
    for (const auto& seed : j["seeds"]) EXPECT_GE(seed["regret"].get<double>(), 0.0) << j.dump();
  }
  // A converged run's regret is about 1e-6: it keeps its significant digits (it was once rounded
  // to 6 decimals, which made 2e-6 and 3e-6 look like a 1.5x difference).
  OPTIMIZE_JSON(j, "--function", "branin", "--evaluations", "50", "--seeds", "1");
  // Where the model ran is said (--device auto on a machine without a GPU ran on the CPU without a
  // word, as a GPU run would read).
  EXPECT_TRUE(j["device"] == "cpu" || j["device"] == "cuda") << j.dump();
  EXPECT_TRUE(j.contains("engine")) << j.dump();
  {
    OPTIMIZE_JSON(on_cpu, "--function", "branin", "--evaluations", "8", "--seeds", "1", "--device", "cpu");
    EXPECT_EQ(on_cpu["device"], "cpu") << on_cpu.dump();
    // The model never proposed (one batch: every point from the start): "none", not "" (a bayes pass).
    OPTIMIZE_JSON(start_only, "--function", "branin", "--evaluations", "6", "--batch", "6", "--seeds", "1",
                  "--device", "cpu");
    EXPECT_EQ(start_only["device"], "none") << start_only.dump();
  }
  const double regret = j["seeds"][0]["regret"], exact = j["seeds"][0]["best"].get<double>() - j["optimum"].get<double>();
  EXPECT_LT(regret, 1e-4) << j.dump();
  EXPECT_NEAR(regret, exact, 1e-3 * regret + 2e-9) << j.dump();
  // --curves in a table prints the curve at ten evaluations, the last one the seed's regret (it
  // printed nothing: the curve was only in -o json).
  Outcome t = Hpo({"bench", "optimize", "--function", "branin", "--evaluations", "20", "--seeds", "1", "--curves"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("regret after 2: "), std::string::npos) << t.out;
  EXPECT_NE(t.out.find(", 20: "), std::string::npos) << t.out;
}

TEST_F(CliTest, BenchOptimizeWarmStartsFromAParentJobAndCountsOnlyTheJobsOwnTrainingJobs) {
  // Branin, 8 training jobs of the job's own after 20 Random ones of its parent: the warm-started
  // job's regret (of its own training jobs only) is far below a cold start's at the same seeds
  // (median 0.02 against 1.5 at 10 evaluations and 20 seeds, bench/RESULTS.md).
  OPTIMIZE_JSON(cold, "--function", "branin", "--evaluations", "8", "--seeds", "3", "--curves");
  OPTIMIZE_JSON(warm, "--function", "branin", "--evaluations", "8", "--seeds", "3", "--curves", "--parents", "20");
  EXPECT_FALSE(cold.contains("parents")) << cold.dump();
  EXPECT_EQ(warm["parents"], 20) << warm.dump();
  EXPECT_EQ(warm["warm_start_type"], "IdenticalDataAndAlgorithm");
  ASSERT_EQ(warm["seeds"].size(), 3u);
  for (const auto& seed : warm["seeds"]) {
    EXPECT_EQ(seed["curve"].size(), 8u) << "the parent's training jobs are not the job's own: " << seed.dump();
    EXPECT_GT(seed["parent_regret"].get<double>(), 0.0) << seed.dump();
  }
  EXPECT_LT(warm["median_regret"].get<double>(), cold["median_regret"].get<double>() / 5) << warm.dump() << cold.dump();
  // TransferLearning from a related task (the parent saw the function moved by 5% of each range):
  // said in the JSON, and the job still counts only its own.
  OPTIMIZE_JSON(tl, "--function", "branin", "--evaluations", "4", "--seeds", "1", "--parents", "10", "--parent-shift",
                "0.05", "--parent-ranges", "0.5", "--warm-start-type", "TransferLearning", "--curves");
  EXPECT_EQ(tl["warm_start_type"], "TransferLearning");
  EXPECT_EQ(tl["parent_shift"].get<double>(), 0.05);
  EXPECT_EQ(tl["seeds"][0]["curve"].size(), 4u) << tl.dump();
  // What describes a parent needs one.
  Outcome bad = Hpo({"bench", "optimize", "--parent-shift", "0.1"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("give --parents too"), std::string::npos) << bad.err;
  // (A warm start's type alone ran a cold start; a bench pass.)
  bad = Hpo({"bench", "optimize", "--warm-start-type", "TransferLearning"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("give --parents too"), std::string::npos) << bad.err;
  bad = Hpo({"bench", "optimize", "--parents", "5", "--parent-ranges", "0"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--parent-ranges in (0, 1]"), std::string::npos) << bad.err;
}

TEST_F(CliTest, BenchOptimizeTurnsTheParallelExploitMemberOnAndOff) {
  // Batches of 8 from the second round on (the model needs 3): one member is the posterior
  // mean's minimiser (on, the default) or not (off); the runs differ from then on and the JSON
  // says which ran.
  std::vector<std::vector<double>> best;
  for (const std::string v : {"on", "off"}) {
    OPTIMIZE_JSON(j, "--function", "branin", "--evaluations", "24", "--batch", "8", "--seeds", "2",
                  "--parallel-exploit", v);
    EXPECT_EQ(j["parallel_exploit"], v);
    best.emplace_back();
    for (const auto& seed : j["seeds"]) best.back().push_back(seed["best"].get<double>());
  }
  EXPECT_NE(best[0], best[1]);
}

TEST_F(CliTest, BenchOptimizeSetsThePriorMeanQuantileAndSaysWhich) {
  // The model's prior mean (where it reverts away from the data): the runs differ from the first
  // fitted proposal on, and the JSON says which ran.
  std::vector<std::vector<double>> best;
  for (const std::string q : {"0.75", "0.25"}) {
    OPTIMIZE_JSON(j, "--function", "branin", "--evaluations", "12", "--seeds", "2", "--prior-mean-quantile", q);
    EXPECT_EQ(j["prior_mean_quantile"].get<double>(), std::stod(q));
    best.emplace_back();
    for (const auto& seed : j["seeds"]) best.back().push_back(seed["best"].get<double>());
  }
  EXPECT_NE(best[0], best[1]);
}

TEST_F(CliTest, BenchOptimizeTurnsOutputWarpingOffAndSaysWhich) {
  // Branin's values (0.4 to 300, most of the box far above the optimum) are what the warping is
  // for: with it the runs differ once it is chosen, and the JSON says which ran.
  std::vector<std::vector<double>> best;
  for (const std::string w : {"on", "off"}) {
    OPTIMIZE_JSON(j, "--function", "branin", "--evaluations", "20", "--seeds", "2", "--output-warping", w);
    EXPECT_EQ(j["output_warping"].get<std::string>(), w);
    best.emplace_back();
    for (const auto& seed : j["seeds"]) best.back().push_back(seed["best"].get<double>());
  }
  EXPECT_NE(best[0], best[1]);
}

TEST_F(CliTest, VersionPrintsTheVersionAndExitsZero) {
  Outcome cmd = Hpo({"version"});
  EXPECT_EQ(cmd.exit_code, 0);
  EXPECT_EQ(cmd.out.rfind("hpo ", 0), 0u) << cmd.out;
  Outcome flag = Hpo({"--version"});
  EXPECT_EQ(flag.exit_code, 0);
  EXPECT_EQ(flag.out, cmd.out) << "hpo version says it prints what hpo --version does";
}

TEST_F(CliTest, HelpTeachesExitCodesAndEverySpecCommandHasAnExample) {
  Outcome top = Hpo({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("Exit codes"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("validate"), std::string::npos);
  EXPECT_NE(top.out.find("convert"), std::string::npos);
  for (const std::string cmd : {"validate", "convert"}) {
    Outcome o = Hpo({cmd, "--help"});
    EXPECT_EQ(o.exit_code, 0) << cmd;
    EXPECT_NE(o.out.find("Example"), std::string::npos) << cmd << ":\n" << o.out;
    EXPECT_NE(o.out.find("hpo " + cmd + " "), std::string::npos) << cmd << ":\n" << o.out;
  }
}

// --help fits 80 columns when it is not printed to a terminal (and a terminal's width when it
// is): descriptions wrap under their column and prose paragraphs flow again; option names and
// indented examples stay as written. (Half of `hpo run --help` ran past 80 columns.)
TEST_F(CliTest, HelpWrapsDescriptionsAndProseAtEightyColumns) {
  const char* columns = std::getenv("COLUMNS");
  const std::string saved = columns ? columns : "";
  ::unsetenv("COLUMNS");
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"--help"}, {"run", "--help"}, {"coordinator", "--help"}, {"worker", "--help"}, {"workers", "--help"}}) {
    Outcome o = Hpo(cmd);
    EXPECT_EQ(o.exit_code, 0) << cmd[0];
    std::istringstream in(o.out);
    int lines = 0;
    for (std::string line; std::getline(in, line); ++lines) {
      // (A word longer than the column, a URL, has a line of its own.)
      const bool description =
          line.rfind(std::string(30, ' '), 0) == 0 && line.find(' ', line.find_first_not_of(' ')) != std::string::npos;
      const bool prose = !line.empty() && line[0] != ' ';
      if (description || prose) {
        EXPECT_LE(line.size(), 80u) << cmd[0] << ": " << line;
      }
    }
    EXPECT_GT(lines, 10) << o.out;
  }
  // A table in a footer (hpo bench's commands and what each measures) stays a table.
  Outcome bench = Hpo({"bench", "--help"});
  EXPECT_NE(bench.out.find("\nhpo bench suggest    how long one Bayesian suggestion takes"), std::string::npos)
      << bench.out;
  ::setenv("COLUMNS", "120", 1);
  Outcome wide = Hpo({"run", "--help"});
  if (!saved.empty()) {
    ::setenv("COLUMNS", saved.c_str(), 1);
  } else {
    ::unsetenv("COLUMNS");
  }
  size_t widest = 0;
  std::istringstream in(wide.out);
  for (std::string line; std::getline(in, line);) widest = std::max(widest, line.size());
  EXPECT_GT(widest, 100u) << "a wider terminal gets wider lines:\n" << wide.out;
}

// Too few open files for --slots: said at start, naming ulimit -n (training jobs used to fail
// with "Too many open files" as fast as they were given, using up a tuning job in a second).
TEST_F(CliTest, AWorkerWhoseFileLimitIsTooSmallForItsSlotsSaysSoAtStart) {
  if (std::system("command -v prlimit >/dev/null 2>&1") != 0) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  const fs::path err = dir_ / "worker.err";
  const std::string cmd = "prlimit --nofile=64:64 " + std::string(HPO_BINARY) +
                          " worker --connect tcp://127.0.0.1:9 --slots 24 --gpus none --container-runtime none "
                          "--work-dir " + (dir_ / "w").string() + " 2>" + err.string() + " & p=$!; sleep 1; kill $p; wait $p";
  (void)std::system(cmd.c_str());
  const std::string text = Slurp(err);
  EXPECT_NE(text.find("may open only 64 files (ulimit -n), and a worker of 24 slot(s) needs about 416"), std::string::npos)
      << text;
  EXPECT_NE(text.find("or use fewer --slots"), std::string::npos) << text;
  // --gpus none does not look for GPUs: no NVML message on a machine without a driver.
  EXPECT_NE(text.find("worker: --gpus none: using no GPUs"), std::string::npos) << text;
  EXPECT_EQ(text.find("NVML"), std::string::npos) << text;
  EXPECT_EQ(text.find("libnvidia-ml"), std::string::npos) << text;
}


// A coordinator started on a full disk says where and what to do (it said only "job store:
// database or disk is full").
TEST_F(CliTest, ACoordinatorOnAFullDiskSaysWhichDirectoryAndWhatToDo) {
  const fs::path small = dir_ / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k") != 0) GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  (void)std::system(("dd if=/dev/zero of=" + (small / "fill").string() + " bs=4k 2>/dev/null").c_str());
  const std::string state = (small / "st").string();
  Outcome o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:0", "--state-dir", state});
  EXPECT_EQ(o.exit_code, 3) << o.err;
  EXPECT_NE(o.err.find("in " + state + ": "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("free space on that file system (df -h " + state + ")"), std::string::npos) << o.err;
}

// The CUDA engine is a module found at run time (kernels/cuda_engine_module.h). One that is not
// where HPO_CUDA_ENGINE says, or is not a module at all, is named with what to do: `cuda` fails,
// `auto` runs on the CPU; and hpo itself starts without any CUDA library.
TEST_F(CliTest, AMissingOrBrokenCudaEngineModuleIsNamedAndAutoRunsOnTheCpu) {
  const std::vector<std::string> suggest = {"bench", "suggest", "--n", "30", "--d", "2", "--q", "2", "-o", "json"};
  auto with = [&](const std::string& module, const std::string& device) {
    ::setenv("HPO_CUDA_ENGINE", module.c_str(), 1);
    std::vector<std::string> args = suggest;
    args.insert(args.end(), {"--device", device});
    Outcome o = Hpo(args);
    ::unsetenv("HPO_CUDA_ENGINE");
    return o;
  };
  const std::string missing = (dir_ / "missing.so").string();
  Outcome o = with(missing, "cuda");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find(missing), std::string::npos) << o.err;
  o = with(missing, "auto");
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("\"device\":\"cpu\""), std::string::npos) << o.out;
  // Where the acquisition's time went: inside the engine by kind, and outside it; the fit on the
  // host (the CPU engine has no likelihood devices).
  for (const char* key : {"\"engine_seconds\":{\"load\":", "\"ascend\":", "\"descend\":", "\"acq_host_seconds\":",
                          "\"fit_device_evaluations\":0"}) {
    EXPECT_NE(o.out.find(key), std::string::npos) << key << " in " << o.out;
  }
  const fs::path broken = dir_ / "broken.so";
  Spit(broken, "not a shared object");
  o = with(broken.string(), "cuda");
  EXPECT_NE(o.exit_code, 0);
  EXPECT_NE(o.err.find(broken.string() + " is not a shared object"), std::string::npos) << o.err;
  const std::string libs = hpo::testing::Sh("ldd " + std::string(HPO_BINARY) + " 2>&1");
  ASSERT_FALSE(libs.empty());
  EXPECT_EQ(libs.find("libcublas"), std::string::npos) << "hpo links cuBLAS:\n" << libs;
  EXPECT_EQ(libs.find("libcudart"), std::string::npos) << "hpo links the CUDA runtime:\n" << libs;
}

// A mistyped command is named, with the closest one; a bare `hpo` shows what each command does.
// CLI11 said only "A subcommand is required" to both.
TEST_F(CliTest, AnUnknownCommandIsNamedWithTheClosestOneAndABareHpoShowsTheCommands) {
  Outcome typo = Hpo({"valdate", "spec.yaml"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("unknown command 'valdate'; did you mean 'validate'?"), std::string::npos) << typo.err;
  Outcome far = Hpo({"frobnicate"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_NE(far.err.find("unknown command 'frobnicate' (hpo --help lists the commands)"), std::string::npos) << far.err;
  Outcome bare = Hpo({});
  EXPECT_EQ(bare.exit_code, 2);
  EXPECT_NE(bare.err.find("validate"), std::string::npos) << bare.err;
  EXPECT_NE(bare.err.find("a command is required"), std::string::npos) << bare.err;
  EXPECT_EQ(Hpo({"--version"}).exit_code, 0);
}

// A usage error names its command, says what a missing argument is, offers the closest option
// for a mistyped one, and shows the command's usage line. CLI11's own said "names is required"
// and "Run with --help for more information", naming no command.
TEST_F(CliTest, AUsageErrorNamesTheCommandWhatIsMissingAndTheClosestOption) {
  Outcome missing = Hpo({"trials"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("hpo trials: missing name (Tuning job name)"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("Usage: hpo trials [OPTIONS] name"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("`hpo trials --help`"), std::string::npos) << missing.err;
  // `hpo delete $(hpo list --status Completed -o names)` with nothing listed: nothing to do,
  // not a usage error (no coordinator is asked).
  Outcome none = Hpo({"delete", "--coordinator", "http://127.0.0.1:1"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.err.find("hpo delete: no names given: nothing deleted"), std::string::npos) << none.err;
  Outcome typo = Hpo({"run", "--slot", "2", "--dashbord=0", "spec.yaml"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("hpo run: "), std::string::npos) << typo.err;
  EXPECT_NE(typo.err.find("did you mean --slots for --slot, --dashboard for --dashbord?"), std::string::npos)
      << typo.err;
  Outcome range = Hpo({"run", "--workers", "0", "spec.yaml"});
  EXPECT_EQ(range.exit_code, 2);
  EXPECT_NE(range.err.find("hpo run: --workers: Value 0 not in range"), std::string::npos) << range.err;
  // CLI11 checks the range before the number: "Value abc not in range" did not say what was wrong.
  Outcome word = Hpo({"run", "--workers", "three", "spec.yaml"});
  EXPECT_EQ(word.exit_code, 2);
  EXPECT_NE(word.err.find("hpo run: --workers: \"three\" is not a number (it wants a number in range 1 to "),
            std::string::npos)
      << word.err;
}

// An instance type that is not SageMaker's is refused by validate and run, with the closest
// SageMaker type (it validated, and then the job waited for a worker nobody would start); one of
// your own passes once named (--instance-type, or an --instance-catalog file).
TEST_F(CliTest, AMisspeltInstanceTypeIsRefusedWithTheClosestOneAndAnOwnTypePassesOnceNamed) {
  std::string spec = Slurp(fs::path(HPO_EXAMPLES_DIR) / "quickstart.json");
  const size_t at = spec.find("ml.m5.large");
  ASSERT_NE(at, std::string::npos);
  const fs::path typo = dir_ / "typo.json", own = dir_ / "own.json", catalog = dir_ / "catalog.json";
  Spit(typo, std::string(spec).replace(at, 11, "ml.m5.larg"));
  Spit(own, std::string(spec).replace(at, 11, "ml.rack7.a100"));
  Outcome o = Hpo({"validate", typo.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("TrainingJobDefinition.ResourceConfig.InstanceType: \"ml.m5.larg\" is not a SageMaker training "
                       "instance type (did you mean \"ml.m5.large\"?)"),
            std::string::npos)
      << o.err;
  o = Hpo({"run", typo.string(), "--state-dir", (dir_ / "st").string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("did you mean \"ml.m5.large\"?"), std::string::npos) << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "st" / "hpo.db")) << "refused before anything started";
  EXPECT_EQ(Hpo({"validate", own.string()}).exit_code, 2);
  EXPECT_EQ(Hpo({"validate", own.string(), "--instance-type", "ml.rack7.a100"}).exit_code, 0);
  Spit(catalog, R"({"ml.rack7.a100": {"gpus": 8, "gpu_model": "A100", "vcpus": 96, "memory_gib": 1024}})");
  o = Hpo({"validate", own.string(), "--instance-catalog", catalog.string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
}

// An S3 service no worker can reach (a wrong AWS_ENDPOINT_URL, a network without a route to it)
// is the workers' lack, not a broken worker: each training job fails as an InternalServerError
// that says what to check, and no worker rests. Three such failures rested hpo run's workers for
// a minute, doubling, while the job stood at "0 running".
TEST_F(CliTest, RunWithAnS3EndpointNoWorkerReachesRestsNoWorker) {
  std::string spec = Slurp(ScriptJob("nos3", "#!/bin/sh\necho loss=$SM_HP_X\n", 3, 1));
  const std::string local = "\"file://" + (dir_ / "out").string() + "\"";
  spec.replace(spec.find(local), local.size(), "\"s3://hpo-bucket/out\"");
  Spit(dir_ / "nos3.json", spec);
  ::setenv("AWS_ACCESS_KEY_ID", "hpo-test", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "hpo-test-secret", 1);
  ::setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);  // nothing listens there
  const std::string state = (dir_ / "st").string();
  Outcome o = Hpo({"run", (dir_ / "nos3.json").string(), "--state-dir", state, "--workers", "2"});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.out.find("no worker could start it (every worker that can serve it refused: local-1, local-2): "
                       "OutputDataConfig.S3OutputPath cannot be used (S3 ListObjectsV2 s3://hpo-bucket/out/"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("check the workers' S3 endpoint"), std::string::npos) << o.out;
  Outcome events = Hpo({"events", "nos3", "--state-dir", state});
  EXPECT_EQ(events.out.find("WorkerResting"), std::string::npos) << events.out;
  // Its model was never written: the table says where it would go, and that it may be missing
  // (a CLI pass followed the path to nothing).
  Outcome names = Hpo({"trials", "nos3", "--state-dir", state, "-o", "names"});
  Outcome tj = Hpo({"describe", names.out.substr(0, names.out.find('\n')), "--state-dir", state, "-o", "table"});
  EXPECT_NE(tj.out.find("(may be missing: the training job ended with an infrastructure error)"), std::string::npos)
      << tj.out;
}

// A worker that rests after infrastructure errors leaves hpo run with nothing to run: its
// progress line read "0 running" for a minute, as a hang would. It says why (the rest's reason)
// once that has lasted a moment. The container runtime here fails every `run` (exit 126, as an
// OCI runtime that cannot create a container does): an infrastructure error each time.
TEST_F(CliTest, RunSaysWhyNothingRunsWhileItsWorkerRests) {
  fs::create_directories(dir_ / "bin");
  const fs::path runtime = Write("bin/podman",
                                 "#!/bin/sh\ncase \"$1\" in\n  run) echo 'Error: OCI runtime error: cannot set limits' >&2; "
                                 "exit 126;;\nesac\nexit 0\n");
  fs::permissions(runtime, fs::perms::owner_all);
  std::string spec = Slurp(ScriptJob("rests", "#!/bin/sh\necho loss=$SM_HP_X\n", 6, 1));
  const std::string trainer = "\"file://" + (dir_ / "rests.sh").string() + "\"";
  spec.replace(spec.find(trainer), trainer.size(), "\"localhost/hpo-trainer:1\"");
  Spit(dir_ / "rests.json", spec);
  const fs::path log = dir_ / "run.log";
  const pid_t run = Spawn(log, {"run", (dir_ / "rests.json").string(), "--state-dir", (dir_ / "st").string(),
                                "--workers", "1", "--container-runtime", runtime.string()});
  const bool said = WaitForText(log, "hpo: nothing runs: waiting for a free worker that can serve ml.m5.large; worker "
                                     "local-1 rests (3 infrastructure errors in a row, the last: InternalServerError: "
                                     "the container runtime podman failed (exit 126)",
                                300);
  ::kill(run, SIGINT);
  ::kill(run, SIGINT);
  int status = 0;
  ::waitpid(run, &status, 0);
  EXPECT_TRUE(said) << Slurp(log);
  const std::string text = Slurp(log);
  const size_t first = text.find("hpo: nothing runs:");
  EXPECT_EQ(text.find("hpo: nothing runs:", first + 1), std::string::npos) << "said once while it lasts:\n" << text;
}

// Long output lines: a metric at the end of a line of 64-128 KiB is read (the line was cut at
// 64 KiB, between "loss=" and "0.75", and the training job had no objective), and `hpo logs`
// says how much of a long line the coordinator left out (it said 12288 bytes for any line over
// 16 KiB: its count was of a copy the worker had cut already).
TEST_F(CliTest, AMetricAtTheEndOfALongLineCountsAndLogsSayWhatALongLineLeftOut) {
  const std::string spec = ScriptJob("longline",
                                     "#!/bin/sh\nhead -c 20009 /dev/zero | tr '\\0' A; echo\n"
                                     "head -c 65530 /dev/zero | tr '\\0' C; echo ' loss=0.75'\n",
                                     1, 1);
  const std::string state = (dir_ / "st").string();
  Outcome o = Hpo({"run", spec, "--state-dir", state, "--workers", "1"});
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_NE(o.out.find("loss = 0.75"), std::string::npos) << o.out;
  Outcome names = Hpo({"trials", "longline", "--state-dir", state, "-o", "names"});
  const std::string name = names.out.substr(0, names.out.find('\n'));
  ASSERT_FALSE(name.empty()) << names.err;
  Outcome logs = Hpo({"logs", name, "--state-dir", state});
  EXPECT_NE(logs.out.find("AAAA ... [15913 more bytes in the worker's trial.log"), std::string::npos)
      << logs.out.substr(0, 300);
  EXPECT_NE(logs.out.find("CCCC ... [61444 more bytes in the worker's trial.log"), std::string::npos);
}

// A Grid job without MaxNumberOfTrainingJobs: validate says how many it runs (it knew, and said
// nothing).
TEST_F(CliTest, ValidateSaysHowManyTrainingJobsAGridRuns) {
  std::string spec = Slurp(ScriptJob("gridn", "#!/bin/sh\necho loss=1\n", 1, 2));
  spec.replace(spec.find("\"Strategy\": \"Random\""), 20, "\"Strategy\": \"Grid\"");
  const std::string limits = "\"MaxNumberOfTrainingJobs\": 1, ";
  spec.replace(spec.find(limits), limits.size(), "");
  const std::string ranges = R"({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]})";
  spec.replace(spec.find(ranges), ranges.size(),
               R"({"CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2", "3"]}, )"
               R"({"Name": "b", "Values": ["x", "y"]}]})");
  Spit(dir_ / "gridn.json", spec);
  Outcome o = Hpo({"validate", (dir_ / "gridn.json").string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("Grid, 2 ranges, 6 jobs (every Grid combination), 2 parallel"), std::string::npos) << o.out;
}

// trainingJobDefinitions written as a map (as the seed's summary draws it) is that one error:
// two more followed it, that the objective and a definition were missing, though both were there.
TEST_F(CliTest, ADefinitionsListWrittenAsAMapIsOneErrorWithoutFollowOns) {
  const fs::path file = Write("defmap.yaml", R"Y(apiVersion: sagemaker.services.k8s.aws/v1alpha1
kind: HyperParameterTuningJob
metadata:
  name: defmap
spec:
  hyperParameterTuningJobName: defmap
  hyperParameterTuningJobConfig:
    strategy: Random
    resourceLimits: {maxNumberOfTrainingJobs: 2, maxParallelTrainingJobs: 1}
    parameterRanges:
      continuousParameterRanges: [{name: x, minValue: "0", maxValue: "1"}]
  trainingJobDefinitions:
    definitionName: a
    tuningObjective: {type_: Minimize, metricName: loss}
    algorithmSpecification:
      trainingImage: /bin/true
      trainingInputMode: File
      metricDefinitions: [{name: loss, regex: "loss=([0-9.]+)"}]
    roleARN: arn:aws:iam::123456789012:role/x
    outputDataConfig: {s3OutputPath: "s3://b/o"}
    resourceConfig: {instanceType: ml.m5.large, instanceCount: 1, volumeSizeInGB: 1}
    stoppingCondition: {maxRuntimeInSeconds: 60}
)Y");
  Outcome o = Hpo({"validate", file.string()});
  EXPECT_EQ(o.exit_code, 2) << o.err;
  EXPECT_NE(o.err.find("spec.trainingJobDefinitions: expected a list, got an object"), std::string::npos) << o.err;
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
}

// A training image that is no image reference (upper case), and an AlgorithmName (an algorithm
// resource, whose image hpo cannot look up), are the spec's faults: each training job fails at
// once saying what to give instead, and no worker rests. Both failed as InternalServerError,
// and three in a row rested the worker for a minute with every other tuning job's work. The
// runtime here answers as podman does (exit 125 "invalid reference format" for a bad name).
TEST_F(CliTest, ABadImageNameOrAnAlgorithmResourceFailsAsTheSpecsFaultAndRestsNoWorker) {
  fs::create_directories(dir_ / "bin");
  const fs::path runtime =
      Write("bin/podman",
            "#!/bin/sh\ncase \"$1 $2\" in\n  'image exists') case \"$3\" in *[A-Z]*|arn:*) "
            "echo 'Error: invalid reference format' >&2; exit 125;; esac; exit 0;;\nesac\nexit 0\n");
  fs::permissions(runtime, fs::perms::owner_all);
  std::string spec = Slurp(ScriptJob("badimage", "#!/bin/sh\necho loss=$SM_HP_X\n", 4, 1));
  const std::string trainer = "\"TrainingImage\": \"file://" + (dir_ / "badimage.sh").string() + "\"";
  std::string upper = spec;
  upper.replace(upper.find(trainer), trainer.size(), "\"TrainingImage\": \"localhost/MyTrainer:1\"");
  Spit(dir_ / "upper.json", upper);
  std::string algorithm = spec;
  algorithm.replace(algorithm.find(trainer), trainer.size(), "\"AlgorithmName\": \"my-algo\"");
  Spit(dir_ / "algorithm.json", algorithm);
  const auto started = std::chrono::steady_clock::now();
  Outcome o = Hpo({"run", (dir_ / "upper.json").string(), "--state-dir", (dir_ / "st1").string(), "--workers", "1",
                   "--container-runtime", runtime.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.out.find("ClientError: trainingImage localhost/MyTrainer:1 is not an image reference podman can read"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("4 failed (4 by the program or spec"), std::string::npos) << o.out;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(40)) << "a worker rested:\n" << o.out;
  Outcome events = Hpo({"events", "badimage", "--state-dir", (dir_ / "st1").string()});
  EXPECT_EQ(events.out.find("WorkerResting"), std::string::npos) << events.out;

  Outcome a = Hpo({"run", (dir_ / "algorithm.json").string(), "--state-dir", (dir_ / "st2").string(), "--workers",
                   "1", "--container-runtime", runtime.string()});
  EXPECT_EQ(a.exit_code, 1) << a.err;
  EXPECT_NE(a.out.find("AlgorithmName names a SageMaker algorithm resource, whose image hpo cannot look up; map it "
                       "to a program on the workers (--image my-algo=COMMAND"),
            std::string::npos)
      << a.out;
  events = Hpo({"events", "badimage", "--state-dir", (dir_ / "st2").string()});
  EXPECT_EQ(events.out.find("WorkerResting"), std::string::npos) << events.out;
}

// A program that completed and whose model could not be uploaded (here it made its own output
// destination a file) has the only copy of the trained model: it stays on the worker, under
// not-uploaded/, and the training job's FailureReason says where. It went with the /opt/ml tree.
TEST_F(CliTest, AModelWhoseUploadFailedStaysOnTheWorkerAndTheFailureSaysWhere) {
  const std::string out = (dir_ / "out").string();
  ScriptJob("kept",
            "#!/bin/sh\necho trained > \"$SM_MODEL_DIR/m.bin\"\nmkdir -p \"$SM_OUTPUT_DATA_DIR\"\n"
            "echo preds > \"$SM_OUTPUT_DATA_DIR/p.csv\"\nd=\"" + out + "/$TRAINING_JOB_NAME\"\n"
            // (The worker's upload of output/intermediate may make the directory again meanwhile.)
            "until [ -f \"$d\" ]; do rm -rf \"$d\"; echo x > \"$d\"; done\necho loss=$SM_HP_X\n",
            1, 1);
  const std::string state = (dir_ / "st").string();
  Outcome o = Hpo({"run", (dir_ / "kept.json").string(), "--state-dir", state, "--workers", "1"});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  Outcome names = Hpo({"trials", "kept", "--state-dir", state, "-o", "names"});
  const std::string name = names.out.substr(0, names.out.find('\n'));
  ASSERT_FALSE(name.empty()) << names.err;
  const fs::path kept = fs::path(state) / "local-1" / "trials" / name / "attempt-1" / "not-uploaded";
  Outcome d = Hpo({"describe", "--training-job", name, "--state-dir", state, "-o", "json"});
  const auto j = nlohmann::json::parse(d.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << d.out << d.err;
  // (Either the model's upload or the last pass of output/intermediate's finds a file there.)
  const std::string why = j.value("FailureReason", "");
  EXPECT_EQ(why.rfind("InternalServerError: cannot upload ", 0), 0u) << why;
  EXPECT_NE(why.find("(its model and output stay on worker local-1 in " + kept.string() + ")"), std::string::npos)
      << why;
  EXPECT_EQ(Slurp(kept / "model" / "m.bin"), "trained\n");
  EXPECT_EQ(Slurp(kept / "output" / "data" / "p.csv"), "preds\n");
  EXPECT_FALSE(fs::exists(kept.parent_path() / "ml")) << "the rest of the /opt/ml tree goes";
}

// A trainer that calls boto3 or the aws CLI itself gets what SageMaker's containers get: a region,
// and credentials (the worker's, as its own S3 access uses them, and its S3 endpoint). It got
// none ("Unable to locate credentials"). The spec's Environment wins; with EnableNetworkIsolation
// nothing is given, as SageMaker gives an isolated container no credentials.
TEST_F(CliTest, ATrainingProgramGetsTheWorkersAwsCredentialsAndARegion) {
  ScriptJob("awsenv", "#!/bin/sh\nenv | grep '^AWS_' | sort\necho loss=$SM_HP_X\n", 1, 1);
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDHPOTEST", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "hpo-test-secret", 1);
  ::setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:7480", 1);
  ::unsetenv("AWS_REGION");
  ::setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
  auto logs_of = [&](const std::string& spec, const std::string& state) {
    Outcome o = Hpo({"run", spec, "--state-dir", state, "--workers", "1"});
    EXPECT_EQ(o.exit_code, 0) << o.err;
    Outcome names = Hpo({"trials", "awsenv", "--state-dir", state, "-o", "names"});
    return Hpo({"logs", names.out.substr(0, names.out.find('\n')), "--state-dir", state}).out;
  };
  std::string log = logs_of((dir_ / "awsenv.json").string(), (dir_ / "st").string());
  for (const char* line : {"AWS_ACCESS_KEY_ID=AKIDHPOTEST\n", "AWS_SECRET_ACCESS_KEY=hpo-test-secret\n",
                           "AWS_ENDPOINT_URL_S3=http://127.0.0.1:7480\n", "AWS_REGION=eu-west-1\n",
                           "AWS_DEFAULT_REGION=eu-west-1\n"}) {
    EXPECT_NE(log.find(line), std::string::npos) << line << " in:\n" << log;
  }
  std::string spec = Slurp(dir_ / "awsenv.json");
  spec.replace(spec.find("\"RoleArn\""), 9,
               "\"Environment\": {\"AWS_REGION\": \"ap-south-1\", \"AWS_ENDPOINT_URL_S3\": \"http://own:9000\"}, "
               "\"RoleArn\"");
  Spit(dir_ / "own.json", spec);
  log = logs_of((dir_ / "own.json").string(), (dir_ / "st2").string());
  EXPECT_NE(log.find("AWS_REGION=ap-south-1\n"), std::string::npos) << "the spec's Environment wins:\n" << log;
  EXPECT_NE(log.find("AWS_ENDPOINT_URL_S3=http://own:9000\n"), std::string::npos) << log;
  // The region it names is both variables' (AWS_DEFAULT_REGION kept the worker's eu-west-1, and
  // boto3, which reads it, went there; a contract pass).
  EXPECT_NE(log.find("AWS_DEFAULT_REGION=ap-south-1\n"), std::string::npos) << log;
  spec.replace(spec.find("\"RoleArn\""), 9, "\"EnableNetworkIsolation\": true, \"RoleArn\"");
  Spit(dir_ / "isolated.json", spec);
  log = logs_of((dir_ / "isolated.json").string(), (dir_ / "st3").string());
  EXPECT_EQ(log.find("AWS_SECRET_ACCESS_KEY"), std::string::npos) << "isolated: no credentials:\n" << log;
  EXPECT_NE(log.find("AWS_REGION=ap-south-1\n"), std::string::npos) << "only what the spec gives:\n" << log;
}

// describe --best gives the tuning job's own best (as SageMaker's SDK does); when a warm start's
// parent did better (OverallBestTrainingJob), a note on stderr names it and how to get its
// hyperparameters (a user's pass took a configuration 57 times worse than one already found).
TEST_F(CliTest, DescribeBestOfAWarmStartNotesAParentThatDidBetter) {
  const fs::path state = dir_ / "warm";
  // The parent's loss is x; the child's is 10 + x: every parent's training job is better.
  const std::string parent = ScriptJob("bparent", "#!/bin/sh\necho loss=$SM_HP_X\n", 2, 2);
  ASSERT_EQ(Hpo({"run", parent, "--state-dir", state.string()}).exit_code, 0);
  std::string child = Slurp(ScriptJob("bchild", "#!/bin/sh\necho loss=1$SM_HP_X\n", 2, 2));
  child.replace(child.rfind('}'), 1, R"J(, "WarmStartConfig": {"WarmStartType": "IdenticalDataAndAlgorithm",
    "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "bparent"}]}})J");
  Outcome run = Hpo({"run", Write("bchild-warm.json", child).string(), "--state-dir", state.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Outcome best = Hpo({"describe", "bchild", "--best", "--state-dir", state.string()});
  EXPECT_EQ(best.exit_code, 0) << best.err;
  EXPECT_NE(best.out.find("\"x\""), std::string::npos) << "the child's own best, as before: " << best.out;
  EXPECT_NE(best.err.find("hpo: note: a parent of this warm start did better: bparent-"), std::string::npos)
      << best.err;
  EXPECT_NE(best.err.find("hpo describe --best bparent"), std::string::npos) << best.err;
  Outcome plain = Hpo({"describe", "bparent", "--best", "--state-dir", state.string()});
  EXPECT_EQ(plain.err.find("note:"), std::string::npos) << "no parents, no note: " << plain.err;
  // A child with no best of its own names its parents' (it said only that it had none).
  std::string failing = Slurp(ScriptJob("bfail", "#!/bin/sh\nexit 1\n", 2, 2));
  failing.replace(failing.rfind('}'), 1, R"J(, "WarmStartConfig": {"WarmStartType": "IdenticalDataAndAlgorithm",
    "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "bparent"}]}})J");
  EXPECT_EQ(Hpo({"run", Write("bfail-warm.json", failing).string(), "--state-dir", state.string()}).exit_code, 1);
  Outcome none = Hpo({"describe", "bfail", "--best", "--state-dir", state.string()});
  EXPECT_EQ(none.exit_code, 1) << none.err;
  EXPECT_NE(none.err.find("without a best training job"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("its warm-start parents' best is bparent-"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("hpo describe --best bparent --state-dir"), std::string::npos) << none.err;
}

// SageMaker allows 100 static hyperparameters of 2,500 characters; SM_HPS and SM_USER_ARGS, which
// carry them all, then pass Linux's 128 KiB for one environment variable, and every training job
// failed unstarted ("Argument list too long"), charged to the program as an AlgorithmError (a
// user's pass). They are left out, said in the log, and the program runs; the file has them all.
TEST_F(CliTest, HyperparametersPastTheEnvironmentsLimitStillRun) {
  std::string spec = Slurp(ScriptJob(
      "bighp",
      "#!/bin/sh\ntest -n \"$SM_HP_S0\" && grep -q s94 /opt/ml/input/config/hyperparameters.json && "
      "echo loss=$SM_HP_X\n",
      1, 1));
  std::string statics = "\"StaticHyperParameters\": {";
  for (int i = 0; i < 95; ++i) statics += (i ? ", " : "") + std::string("\"s") + std::to_string(i) + "\": \"" +
                                          std::string(2500, 'v') + "\"";
  statics += "}, ";
  spec.replace(spec.find("\"AlgorithmSpecification\""), 0, statics);
  Spit(dir_ / "bighp.json", spec);
  ASSERT_EQ(Hpo({"validate", (dir_ / "bighp.json").string()}).exit_code, 0);
  const std::string state = (dir_ / "st").string();
  Outcome o = Hpo({"run", (dir_ / "bighp.json").string(), "--state-dir", state, "--workers", "1"});
  EXPECT_EQ(o.exit_code, 0) << o.err << o.out;
  Outcome names = Hpo({"trials", "bighp", "--state-dir", state, "-o", "names"});
  Outcome log = Hpo({"logs", names.out.substr(0, names.out.find('\n')), "--state-dir", state});
  EXPECT_NE(log.out.find("hpo: left out of the program's environment, past Linux's 128 KiB for one variable: SM_HPS ("),
            std::string::npos)
      << log.out;
}

// An hpo.db of 0 bytes (a crash can leave one so) was taken for a new store without a word: the
// directory's jobs were gone silently (a user's fault pass). It is said, at start.
TEST_F(CliTest, AnEmptyStateDatabaseIsSaidAtStart) {
  const fs::path state = dir_ / "st";
  fs::create_directories(state);
  Spit(state / "hpo.db", "");
  const hpo::testing::LoopbackSocket busy = hpo::testing::BindLoopback(/*backlog=*/1);
  Outcome o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:" + std::to_string(busy.port),
                   "--state-dir", state.string()});
  ::close(busy.fd);
  EXPECT_NE(o.err.find("hpo: warning: " + (state / "hpo.db").string() + " is empty (0 bytes): starting with no tuning "
                       "jobs"),
            std::string::npos)
      << o.err;
  Outcome fresh = Hpo({"run", ScriptJob("fresh", "#!/bin/sh\necho loss=1\n", 1, 1), "--state-dir",
                       (dir_ / "new").string()});
  EXPECT_EQ(fresh.err.find("is empty (0 bytes)"), std::string::npos) << "a new state directory: " << fresh.err;
}

// A durability pass: a log damaged in its middle lost every record after the damage at the next
// start, without a word (SQLite keeps the frames before the first bad one). The start says so,
// keeps a copy of the whole log, and says what to do (after a power loss, nothing: such records
// were never acknowledged).
TEST_F(CliTest, AStateLogDamagedInItsMiddleIsSaidAndKeptAtStart) {
  const fs::path state = dir_ / "st";
  Outcome made = Hpo({"run", ScriptJob("walled", "#!/bin/sh\necho loss=1\n", 1, 1), "--state-dir", state.string()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // Records in the log, the process gone without its checkpoint (as after kill -9).
  const std::string db = (state / "hpo.db").string();
  ASSERT_EQ(std::system(("python3 -c \"import os, sqlite3\nc = sqlite3.connect('" + db +
                         "', isolation_level=None)\nc.execute('PRAGMA wal_autocheckpoint=0')\n"
                         "for i in range(60): c.execute('INSERT INTO meta VALUES (?, ?)', ('x%d' % i, 'v' * 3000))\n"
                         "os._exit(0)\"")
                            .c_str()),
            0);
  const std::string wal = db + "-wal";
  std::string log = Slurp(wal);
  ASSERT_GT(log.size(), 60u * 4096);
  for (size_t i = 0; i < 64; ++i) log[log.size() / 3 + i] = static_cast<char>(log[log.size() / 3 + i] ^ 0x5a);
  Spit(wal, log);
  const hpo::testing::LoopbackSocket busy = hpo::testing::BindLoopback(/*backlog=*/1);
  Outcome o = Hpo({"coordinator", "--listen", "tcp://127.0.0.1:0", "--http", "127.0.0.1:" + std::to_string(busy.port),
                   "--state-dir", state.string()});
  ::close(busy.fd);
  EXPECT_NE(o.err.find("hpo: warning: " + wal + "'s frame "), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("If this machine lost power, those records were never acknowledged"), std::string::npos)
      << o.err;
  bool kept = false;
  for (const auto& e : fs::directory_iterator(state)) {
    kept = kept || e.path().filename().string().rfind("hpo.db-wal.damaged-", 0) == 0;
  }
  EXPECT_TRUE(kept) << "the whole log is kept beside it";
}

// hpo run stops when it cannot write its state database, and its training programs go with it.
// Run again, it ran them as infrastructure errors (a retry spent each, or the training job lost
// without a RetryStrategy: two of three in a user's fault pass). They are interruptions now: they
// run again for free, as after the terminal went away.
TEST_F(CliTest, RunStoppedByAFullDiskResumesItsTrainingJobsWithoutSpendingThem) {
  const fs::path small = dir_ / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=16m") != 0) GTEST_SKIP() << "cannot mount a tmpfs (needs root)";
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  const fs::path flag = dir_ / "second-run";
  std::string text = Slurp(ScriptJob(
      "full", "#!/bin/sh\nif [ -f " + flag.string() + " ]; then echo loss=$SM_HP_X; exit 0; fi\n"
              "i=0; while [ $i -lt 300 ]; do echo loss=$SM_HP_X; i=$((i+1)); sleep 0.05; done\n",
      2, 2));
  text.replace(text.find("\"VolumeSizeInGB\": 1"), 19, "\"VolumeSizeInGB\": 0");  // a 16 MB disk serves it
  const std::string spec = Write("full-small.json", text).string();
  const std::string state = (small / "st").string();
  const fs::path log = dir_ / "run1.log";
  const pid_t run = Spawn(log, {"run", spec, "--state-dir", state, "--workers", "2"});
  ASSERT_TRUE(WaitForText(log, "2 running", 300)) << Slurp(log);
  (void)std::system(("dd if=/dev/zero of=" + (small / "fill").string() + " bs=64k 2>/dev/null").c_str());
  int status = 0;
  ::waitpid(run, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 3) << Slurp(log);
  EXPECT_NE(Slurp(log).find("cannot write the state database"), std::string::npos) << Slurp(log);
  fs::remove(small / "fill");
  Spit(flag, "");
  Outcome again = Hpo({"run", spec, "--state-dir", state, "--workers", "2"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("2 completed, 0 stopped, 0 failed"), std::string::npos) << again.out << again.err;
  Outcome events = Hpo({"events", "full", "--state-dir", state});
  EXPECT_NE(events.out.find("state database unwritable"), std::string::npos) << events.out;
  EXPECT_EQ(events.out.find("InfraError"), std::string::npos) << events.out;
}

}  // namespace
