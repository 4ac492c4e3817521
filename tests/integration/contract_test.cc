// The SageMaker training-container contract end to end (reference/sagemaker-semantics.md §4):
// a real `hpo coordinator` and `hpo worker`, and a trainer script that checks, from inside the
// trial, every file, directory and variable it relies on at the hard-coded /opt/ml paths, writes
// its model and output data there, and fails with output/failure naming the first check that did
// not hold. Runs as root (the worker then gives each trial a private mount namespace with its
// root on /opt/ml, and a network namespace for EnableNetworkIsolation, which has only lo: the
// network_interface_name it is told); skipped otherwise.
// The same trainer runs again inside a real podman container (an image imported from a busybox
// directory tree, no registry), where the runtime mounts /opt/ml and isolates the network; those
// tests skip when podman is not installed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "tests/integration/cluster.h"
#include "worker/orphans.h"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

using hpo::testing::Child;
using hpo::testing::FreePort;
using hpo::testing::Sh;

// Checks run inside the trial. `expect FILE TEXT` compares a file's exact content; `env NAME TEXT`
// a variable's. Every check names itself in output/failure when it fails.
constexpr const char* kTrainer = R"SH(#!/bin/sh
fail() { printf '%s\n' "$1" > /opt/ml/output/failure; echo "CHECK FAILED: $1"; exit 1; }
expect() { [ "$(cat "$1" 2>/dev/null)" = "$2" ] || fail "$1 is '$(cat "$1" 2>&1)', expected '$2'"; }
env_is() { eval "v=\${$1-unset}"; [ "$v" = "$2" ] || fail "$1 is '$v', expected '$2'"; }
[ "$1" = train ] || fail "argv[1] is '$1', expected 'train'"
[ "$(pwd)" = /opt/ml ] || fail "cwd is $(pwd)"
C=/opt/ml/input/config
case "$SM_HP_OPT" in adam|sgd) ;; *) fail "SM_HP_OPT is '$SM_HP_OPT'";; esac
expect $C/hyperparameters.json '{"_tuning_objective_metric":"loss","lr":"0.5","opt":"'$SM_HP_OPT'","sagemaker_program":"train.py"}'
expect $C/inputdataconfig.json '{"data":{"ContentType":"text/csv","RecordWrapperType":"None","S3DistributionType":"FullyReplicated","TrainingInputMode":"File"},"fs":{"RecordWrapperType":"None","S3DistributionType":"FullyReplicated","TrainingInputMode":"FastFile"}}'
expect $C/resourceconfig.json '{"current_group_name":"homogeneousCluster","current_host":"algo-1","current_instance_group":"homogeneousCluster","current_instance_type":"ml.m5.large","hosts":["algo-1"],"instance_groups":[{"hosts":["algo-1"],"instance_group_name":"homogeneousCluster","instance_type":"ml.m5.large"}],"network_interface_name":"lo"}'
for d in /opt/ml/model /opt/ml/output/data /opt/ml/output/intermediate /opt/ml/checkpoints /opt/ml/input/data/data /opt/ml/input/data/fs; do
  [ -d $d ] || fail "$d is not a directory"
done
expect /opt/ml/input/data/data/a.csv '1,2'
expect /opt/ml/input/data/data/sub/b.csv '3,4'
[ -e /opt/ml/input/data/data/c.csv ] && fail "ASHA-10 data leaked into the channel"
expect /opt/ml/input/data/fs/shared.txt 'on the shared filesystem'
touch /opt/ml/input/data/fs/x 2>/dev/null && fail "the FastFile file-system channel is writable"
env_is SM_MODEL_DIR /opt/ml/model
env_is SM_OUTPUT_DATA_DIR /opt/ml/output/data
env_is SM_OUTPUT_DIR /opt/ml/output
env_is SM_INPUT_DIR /opt/ml/input
env_is SM_INPUT_CONFIG_DIR /opt/ml/input/config
env_is SM_CHANNELS '["data","fs"]'
env_is SM_CHANNEL_DATA /opt/ml/input/data/data
env_is SM_CHANNEL_FS /opt/ml/input/data/fs
env_is SM_HPS '{"lr":0.5,"opt":"'$SM_HP_OPT'"}'
env_is SM_HP_LR 0.5
env_is SM_HOSTS '["algo-1"]'
env_is SM_CURRENT_HOST algo-1
env_is SM_CURRENT_INSTANCE_TYPE ml.m5.large
env_is SM_NETWORK_INTERFACE_NAME lo
case "$SM_TRAINING_ENV" in *'"channel_input_dirs":{"data":"/opt/ml/input/data/data","fs":"/opt/ml/input/data/fs"}'*'"network_interface_name":"lo"'*) ;; *) fail "SM_TRAINING_ENV is '$SM_TRAINING_ENV'";; esac
env_is SM_NUM_GPUS 0
env_is SM_CURRENT_INSTANCE_GROUP homogeneousCluster
env_is SM_CURRENT_INSTANCE_GROUP_HOSTS '["algo-1"]'
env_is SM_INSTANCE_GROUPS '["homogeneousCluster"]'
env_is SM_INSTANCE_GROUPS_DICT '{"homogeneousCluster":{"hosts":["algo-1"],"instance_group_name":"homogeneousCluster","instance_type":"ml.m5.large"}}'
env_is SM_IS_HETERO false
env_is SM_RESOURCE_CONFIG "$(cat $C/resourceconfig.json)"
env_is SM_INPUT_DATA_CONFIG "$(cat $C/inputdataconfig.json)"
env_is MY_SETTING from-the-definition
[ "$SM_NUM_CPUS" -ge 1 ] 2>/dev/null || fail "SM_NUM_CPUS is '$SM_NUM_CPUS'"
case "$TRAINING_JOB_NAME" in contract-[0-9][0-9][0-9]-????????) ;; *) fail "TRAINING_JOB_NAME is '$TRAINING_JOB_NAME'";; esac
case "$TRAINING_JOB_ARN" in arn:aws:sagemaker:*:training-job/$TRAINING_JOB_NAME) ;; *) fail "TRAINING_JOB_ARN is '$TRAINING_JOB_ARN'";; esac
[ "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')" = lo ] || fail "network isolation: interfaces are $(tail -n +3 /proc/net/dev | cut -d: -f1)"
# The training toolkit resolves every host before it runs a script, single-host jobs too.
grep -Eq '^[0-9.]+[[:space:]]+algo-1([[:space:]]|$)' /etc/hosts || fail "algo-1 is not in /etc/hosts: $(tr '\n' ' ' < /etc/hosts)"
env_is SM_STUDIO_LOCAL_MODE unset
ck=$(cat $C/checkpointconfig.json 2>&1)
case "$ck" in '{"LocalPath":"/opt/ml/checkpoints","S3Uri":"file://'*"/checkpoints/$TRAINING_JOB_NAME"'"}') ;; *) fail "checkpointconfig.json is '$ck'";; esac
# SageMaker uploads output/intermediate to <S3OutputPath>/<job>/output/intermediate/.
mkdir -p /opt/ml/output/intermediate/sub || fail "cannot write output/intermediate"
echo step1 > /opt/ml/output/intermediate/step1.txt
echo two > /opt/ml/output/intermediate/sub/two.txt
# A checkpoint from an earlier attempt would be here; this one writes its own.
echo "step 7" > /opt/ml/checkpoints/ckpt || fail "cannot write a checkpoint"
# Parallel trials on this host each see their own /opt/ml.
echo "$TRAINING_JOB_NAME" > /opt/ml/model/who
sleep 1
expect /opt/ml/model/who "$TRAINING_JOB_NAME"
echo weights > /opt/ml/model/model.txt
echo eval > /opt/ml/output/data/eval.txt
echo "loss=0.25"
)SH";

class Contract : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the /opt/ml mount namespace needs root";
    dir_ = fs::path(::testing::TempDir()) / ("hpo-contract-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "train.sh") << kTrainer;
    fs::permissions(dir_ / "train.sh", fs::perms::owner_all | fs::perms::group_read | fs::perms::others_read);
    for (auto [path, text] : std::vector<std::pair<fs::path, std::string>>{
             {dir_ / "data" / "ASHA-1" / "a.csv", "1,2\n"},
             {dir_ / "data" / "ASHA-1" / "sub" / "b.csv", "3,4\n"},
             {dir_ / "data" / "ASHA-10" / "c.csv", "no\n"},
             {dir_ / "shared" / "shared.txt", "on the shared filesystem\n"}}) {
      fs::create_directories(path.parent_path());
      std::ofstream(path) << text;
    }
    zmq_port_ = FreePort();
    http_port_ = FreePort();
    coordinator_ = std::make_unique<Child>(
        std::vector<std::string>{HPO_BINARY, "coordinator", "--listen", "tcp://127.0.0.1:" + std::to_string(zmq_port_),
                                 "--http", "127.0.0.1:" + std::to_string(http_port_), "--state-dir",
                                 (dir_ / "state").string(), "--grace", "1"},
        (dir_ / "coordinator.log").string());
  }
  void StartWorker(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {HPO_BINARY, "worker", "--connect", "tcp://127.0.0.1:" + std::to_string(zmq_port_),
                                     "--id", worker_id_, "--slots", "2", "--gpus", "auto", "--work-dir", (dir_ / "w1").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    worker_ = std::make_unique<Child>(argv, (dir_ / "worker.log").string());
    for (int i = 0; i < 100; ++i) {
      httplib::Client probe("127.0.0.1", http_port_);
      auto res = probe.Get("/hpo/v1/health");
      if (res && res->status == 200 && Json::parse(res->body)["workers"] == 1) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "the cluster did not come up; see " << dir_;
  }
  void TearDown() override {
    worker_.reset();
    coordinator_.reset();
    for (const auto& image : images_) Sh("podman rmi -f " + image + " >/dev/null 2>&1");
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Starts a one-training-job tuning job whose container never ends, and waits until it runs.
  void StartEndlessContainerJob(const std::string& image) {
    Json job = OneTrainingJob(image);
    job["TrainingJobDefinition"].erase("InputDataConfig");
    job["TrainingJobDefinition"].erase("CheckpointConfig");
    Call("CreateHyperParameterTuningJob", job);
    std::string running;
    for (int i = 0; i < 200 && running.empty(); ++i) {
      running = Sh("podman ps -q --filter name=hpo-" + worker_id_ + ".");
      if (running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(running.empty()) << "the container never ran; " << Sh("cat " + (dir_ / "worker.log").string());
  }

  // Podman set up for this machine's kernel (reference/test-components.md: crun fails on its
  // rlimits and hybrid cgroups, runc with explicit ulimits works); false when not installed.
  bool PodmanWorks() {
    if (Sh("command -v podman").empty()) return false;
    // Set here by an earlier test of this process (whose directory is gone), or not at all.
    if (const char* set = std::getenv("CONTAINERS_CONF"); set == nullptr || !fs::exists(set)) {
      const fs::path conf = dir_ / "containers.conf";
      std::ofstream(conf) << "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"
                          << (Sh("command -v runc").empty() ? "" : "[engine]\nruntime = \"runc\"\n");
      ::setenv("CONTAINERS_CONF", conf.c_str(), 1);  // the worker inherits it
    }
    return true;
  }

  // An image made from a directory tree (no registry): static busybox and its applets in /bin,
  // `script` as /trainer.sh, run as `sh /trainer.sh train` from /opt/ml, like a SageMaker image
  // whose ENTRYPOINT takes the `train` argument.
  std::string ImportImage(const std::string& name, const std::string& script) {
    const fs::path rootfs = dir_ / ("rootfs-" + name);
    fs::create_directories(rootfs / "bin");
    fs::create_directories(rootfs / "opt" / "ml");
    fs::create_directories(rootfs / "tmp");
    fs::create_directories(rootfs / "etc");
    fs::copy_file("/bin/busybox", rootfs / "bin" / "busybox");
    std::stringstream applets(Sh("/bin/busybox --list"));
    std::string applet;
    while (applets >> applet) {
      if (applet != "busybox") fs::create_symlink("busybox", rootfs / "bin" / applet);
    }
    std::ofstream(rootfs / "trainer.sh") << script;
    const std::string image = "localhost/hpo-" + name + "-" + std::to_string(::getpid()) + ":test";
    const std::string out = Sh("tar -C " + rootfs.string() + " -cf - . | podman import --change 'ENTRYPOINT [\"/bin/sh\", "
                               "\"/trainer.sh\"]' --change 'WORKDIR /opt/ml' --change 'ENV PATH=/bin' - " + image +
                               " 2>&1");
    images_.push_back(image);
    EXPECT_EQ(Sh("podman image exists " + image + " && echo yes"), "yes\n") << out;
    return image;
  }

  Json Call(const std::string& action, const Json& body) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(30, 0);
    auto res = c.Post("/", {{"X-Amz-Target", "SageMaker." + action}}, body.dump(), "application/x-amz-json-1.1");
    EXPECT_TRUE(res && res->status == 200) << action << ": " << (res ? res->body : "no answer");
    return res ? Json::parse(res->body, nullptr, false) : Json();
  }

  // StopHyperParameterTuningJob unless the job has ended. An ended job's stop is refused, and the
  // job can end between a Describe and the Stop (CI saw it fail just then), so the refusal that
  // says it has already ended is taken as well as a 200.
  void StopIfRunning(const std::string& job) {
    httplib::Client c("127.0.0.1", http_port_);
    c.set_read_timeout(30, 0);
    auto res = c.Post("/", {{"X-Amz-Target", "SageMaker.StopHyperParameterTuningJob"}},
                      Json{{"HyperParameterTuningJobName", job}}.dump(), "application/x-amz-json-1.1");
    ASSERT_TRUE(res) << "StopHyperParameterTuningJob: no answer";
    if (res->status == 200) return;
    EXPECT_NE(res->body.find("has already ended"), std::string::npos) << "StopHyperParameterTuningJob: " << res->body;
  }

  // The contract job: two training jobs of `image` (Grid over opt), every channel kind, an output
  // path, checkpoints, network isolation and the definition's environment.
  Json ContractJob(const std::string& image) {
    return {
      {"HyperParameterTuningJobName", "contract"},
      {"HyperParameterTuningJobConfig",
       {{"Strategy", "Grid"},
        {"HyperParameterTuningJobObjective", {{"Type", "Minimize"}, {"MetricName", "loss"}}},
        {"ResourceLimits", {{"MaxNumberOfTrainingJobs", 2}, {"MaxParallelTrainingJobs", 2}}},
        {"ParameterRanges", {{"CategoricalParameterRanges", {{{"Name", "opt"}, {"Values", {"adam", "sgd"}}}}}}}}},
      {"TrainingJobDefinition",
       {{"StaticHyperParameters", {{"lr", "0.5"}, {"sagemaker_program", "train.py"}}},
        {"AlgorithmSpecification",
         {{"TrainingImage", image},
          {"TrainingInputMode", "File"},
          {"MetricDefinitions", {{{"Name", "loss"}, {"Regex", "loss=([0-9.]+)"}}}}}},
        {"RoleArn", "arn:aws:iam::123456789012:role/hpo-contract"},
        {"InputDataConfig",
         {{{"ChannelName", "data"},
           {"ContentType", "text/csv"},
           {"DataSource",
            {{"S3DataSource",
              {{"S3DataType", "S3Prefix"},
               {"S3Uri", "file://" + (dir_ / "data" / "ASHA-1").string()},
               {"S3DataDistributionType", "FullyReplicated"}}}}}},
          {{"ChannelName", "fs"},
           {"InputMode", "FastFile"},
           {"DataSource",
            {{"FileSystemDataSource",
              {{"FileSystemId", "fs-0123456789abcdef0"},
               {"FileSystemAccessMode", "ro"},
               {"FileSystemType", "EFS"},
               {"DirectoryPath", (dir_ / "shared").string()}}}}}}}},
        {"OutputDataConfig", {{"S3OutputPath", "file://" + (dir_ / "out").string()}}},
        {"ResourceConfig", {{"InstanceType", "ml.m5.large"}, {"InstanceCount", 1}, {"VolumeSizeInGB", 1}}},
        {"StoppingCondition", {{"MaxRuntimeInSeconds", 60}}},
        {"EnableNetworkIsolation", true},
        {"CheckpointConfig", {{"S3Uri", "file://" + (dir_ / "checkpoints").string()}}},
        {"Environment", {{"MY_SETTING", "from-the-definition"}}}}}};
  }

  // The contract job with one training job (opt=adam).
  Json OneTrainingJob(const std::string& image) {
    Json job = ContractJob(image);
    job["HyperParameterTuningJobConfig"]["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"] = {"adam"};
    job["HyperParameterTuningJobConfig"]["ResourceLimits"]["MaxNumberOfTrainingJobs"] = 1;
    return job;
  }

  // The summary of the contract job's one training job (null, and a failure, unless it has one).
  Json OnlySummary() {
    Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
    EXPECT_EQ(trials["TrainingJobSummaries"].size(), 1u) << trials.dump();
    return trials["TrainingJobSummaries"].size() == 1 ? trials["TrainingJobSummaries"][0] : Json();
  }

  Json WaitForJob(const std::string& name, int tenths = 300) {
    Json d;
    for (int i = 0; i < tenths; ++i) {
      d = Call("DescribeHyperParameterTuningJob", {{"HyperParameterTuningJobName", name}});
      std::string st = d.value("HyperParameterTuningJobStatus", "");
      if (st == "Completed" || st == "Failed" || st == "Stopped") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return d;
  }

  // Both training jobs completed with every check of the trainer, and left their model, output
  // data and checkpoint where SageMaker would.
  void ExpectContractHeld(const Json& d) {
    Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
    ASSERT_EQ(trials["TrainingJobSummaries"].size(), 2u) << trials.dump();
    for (const auto& t : trials["TrainingJobSummaries"]) {
      const std::string name = t["TrainingJobName"];
      EXPECT_EQ(t["TrainingJobStatus"], "Completed") << name << ": " << t.value("FailureReason", "") << "\n"
                                                     << Sh("cat " + (dir_ / "w1" / "trials" / name / "attempt-1" / "trial.log").string());
      EXPECT_EQ(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], 0.25) << name;
      // The model and output data at the SageMaker keys of the output path.
      const fs::path out = dir_ / "out" / name / "output";
      EXPECT_EQ(Sh("tar -xzOf " + (out / "model.tar.gz").string() + " ./model.txt model.txt 2>/dev/null"), "weights\n");
      EXPECT_EQ(Sh("tar -xzOf " + (out / "model.tar.gz").string() + " who"), name + "\n");
      EXPECT_EQ(Sh("tar -tzf " + (out / "output.tar.gz").string()), "eval.txt\n");
      EXPECT_EQ(Sh("cat " + (out / "intermediate" / "step1.txt").string()), "step1\n") << name;
      EXPECT_EQ(Sh("cat " + (out / "intermediate" / "sub" / "two.txt").string()), "two\n") << name;
      // The checkpoint is at CheckpointConfig.S3Uri, under the training job's own prefix.
      std::ifstream ck(dir_ / "checkpoints" / name / "ckpt");
      std::string line;
      std::getline(ck, line);
      EXPECT_EQ(line, "step 7") << name;
      // On the worker the attempt's /opt/ml tree (input data copies, model, output) goes once
      // it ended (AgentOptions::keep_trial_files), after the report, so wait a little; its
      // trial.log and the training job's local checkpoints stay (the latter until the worker's
      // next question whether the training job has ended, a minute later).
      const fs::path trial = dir_ / "w1" / "trials" / name;
      for (int i = 0; i < 100 && fs::exists(trial / "attempt-1" / "ml"); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      EXPECT_FALSE(fs::exists(trial / "attempt-1" / "ml")) << name;
      EXPECT_TRUE(fs::exists(trial / "attempt-1" / "trial.log")) << name;
      std::ifstream kept(trial / "checkpoints" / "ckpt");
      std::string step;
      std::getline(kept, step);
      EXPECT_EQ(step, "step 7") << name;
    }
    EXPECT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump();
    // The host's own /opt/ml saw none of it.
    EXPECT_FALSE(fs::exists("/opt/ml/model/who"));
  }

  fs::path dir_;
  std::vector<std::string> images_;
  // Unique per test process: a worker removes the containers labelled with its id when it
  // starts, so tests running side by side must not share one.
  const std::string worker_id_ = "w1-" + std::to_string(::getpid());
  int zmq_port_ = 0, http_port_ = 0;
  std::unique_ptr<Child> coordinator_, worker_;
};

TEST_F(Contract, ATrainerThatHardCodesOptMlFindsEverythingWhereSageMakerPutsIt) {
  StartWorker({"--container-runtime", "none"});
  Call("CreateHyperParameterTuningJob", ContractJob((dir_ / "train.sh").string()));
  ExpectContractHeld(WaitForJob("contract"));
  EXPECT_NE(Sh("cat " + (dir_ / "worker.log").string()).find("/opt/ml in a private mount namespace"), std::string::npos);
}

// OutputDataConfig.CompressionType NONE: the model's files themselves, where DescribeTrainingJob's
// S3ModelArtifacts says they are (the SageMaker SDK deploys that prefix as an uncompressed S3Prefix).
TEST_F(Contract, WithCompressionTypeNoneTheModelsFilesAreWhereS3ModelArtifactsSays) {
  StartWorker({"--container-runtime", "none"});
  Json job = OneTrainingJob((dir_ / "train.sh").string());
  job["TrainingJobDefinition"]["OutputDataConfig"]["CompressionType"] = "NONE";
  Call("CreateHyperParameterTuningJob", job);
  Json d = WaitForJob("contract");
  EXPECT_EQ(d["HyperParameterTuningJobStatus"], "Completed") << d.dump();
  Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  ASSERT_EQ(trials["TrainingJobSummaries"].size(), 1u) << trials.dump();
  const std::string name = trials["TrainingJobSummaries"][0]["TrainingJobName"];
  Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", name}});
  const std::string model = tj["ModelArtifacts"]["S3ModelArtifacts"];
  EXPECT_EQ(model, "file://" + (dir_ / "out" / name / "output" / "model").string() + "/");
  const fs::path at = model.substr(7);
  EXPECT_EQ(Sh("cat " + (at / "model.txt").string()), "weights\n");
  EXPECT_EQ(Sh("cat " + (at / "who").string()), name + "\n");
  EXPECT_EQ(Sh("cat " + (dir_ / "out" / name / "output" / "data" / "eval.txt").string()), "eval\n");
  EXPECT_EQ(Sh("ls " + (dir_ / "out" / name / "output").string()), "data\nintermediate\nmodel\n") << "no archive";
}

TEST_F(Contract, TheSameTrainerInAPodmanContainerFindsEverythingWhereSageMakerPutsIt) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed (scripts/install-deps.sh --test installs it)";
  const std::string image = ImportImage("contract", kTrainer);
  // Offline: the image must be used as it is here, never looked up in a registry.
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  Call("CreateHyperParameterTuningJob", ContractJob(image));
  ExpectContractHeld(WaitForJob("contract"));
  const std::string log = Sh("cat " + (dir_ / "worker.log").string());
  // Named after the worker's id and work directory (ContainerOwner: <id>.<8 hex digits>).
  EXPECT_NE(log.find("(podman container hpo-" + worker_id_ + "."), std::string::npos) << log;
  EXPECT_NE(log.find("-contract-"), std::string::npos) << log;
  // --rm: nothing of this worker's is left in the runtime.
  EXPECT_EQ(Sh("podman ps -a -q --filter name=hpo-" + worker_id_ + "."), "");
}

TEST_F(Contract, AContainerIsStoppedByTheRuntimeWithTheGracePeriod) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  // It goes on for a second after a SIGTERM (a save under way; short sleeps, so that two signals do
  // not fall in one and run the trap once): a second one, from the runtime's
  // client forwarding the worker's own SIGTERM, came within 100 ms (a pass; `docker stop`, as
  // SageMaker stops a container, sends one).
  const std::string image = ImportImage("sleeper", R"SH(
left=-1
trap 'echo "got SIGTERM"; echo "loss=0.5"; [ $left -lt 0 ] && left=100' TERM
echo "loss=1"
while [ $left -ne 0 ]; do sleep 0.01; [ $left -gt 0 ] && left=$((left-1)); done
exit 143
)SH");
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  Json job = OneTrainingJob(image);
  job["TrainingJobDefinition"].erase("InputDataConfig");
  job["TrainingJobDefinition"].erase("CheckpointConfig");
  Call("CreateHyperParameterTuningJob", job);
  std::string name;
  for (int i = 0; i < 200 && name.empty(); ++i) {
    Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
    for (const auto& t : trials["TrainingJobSummaries"]) {
      const std::string n = t["TrainingJobName"];
      if (Sh("podman ps -q --filter label=hpo.trial=" + n) != "" &&
          Sh("cat " + (dir_ / "w1" / "trials" / n / "attempt-1" / "trial.log").string() + " 2>/dev/null").find("loss=1") !=
              std::string::npos) {
        name = n;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(name.empty()) << "the container never ran; " << Sh("cat " + (dir_ / "worker.log").string());
  Call("StopHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  Json d = WaitForJob("contract");
  EXPECT_EQ(d["HyperParameterTuningJobStatus"], "Stopped") << d.dump();
  Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  ASSERT_EQ(trials["TrainingJobSummaries"].size(), 1u);
  EXPECT_EQ(trials["TrainingJobSummaries"][0]["TrainingJobStatus"], "Stopped");
  // The program saw SIGTERM (the runtime's stop) and could report its last metric.
  const std::string log = Sh("cat " + (dir_ / "w1" / "trials" / name / "attempt-1" / "trial.log").string());
  EXPECT_NE(log.find("got SIGTERM"), std::string::npos) << log;
  EXPECT_EQ(log.find("got SIGTERM"), log.rfind("got SIGTERM")) << "more than one SIGTERM:\n" << log;
  EXPECT_EQ(Sh("podman ps -a -q --filter name=hpo-" + worker_id_ + "."), "");
}

// A program the kernel's out-of-memory killer ends (here a container's --memory limit) fails as
// SageMaker says it, OutOfMemoryError (it read "exited with code 137", and the README's
// `hpo search 'FailureReason ~ OutOfMemory'` found nothing; a containers pass).
TEST_F(Contract, AProgramTheOutOfMemoryKillerEndsFailsWithOutOfMemoryError) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  const std::string image = ImportImage("hungry", R"SH(
echo "loss=1"
x=$(head -c 400000000 /dev/zero | tr '\0' a)
echo "survived ${#x}"
)SH");
  StartWorker({"--container-runtime", "podman", "--container-pull", "never", "--container-arg=--memory=64m",
               "--container-arg=--memory-swap=64m"});
  Json job = OneTrainingJob(image);
  job["TrainingJobDefinition"].erase("InputDataConfig");
  job["TrainingJobDefinition"].erase("CheckpointConfig");
  Call("CreateHyperParameterTuningJob", job);
  WaitForJob("contract");
  Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  ASSERT_EQ(trials["TrainingJobSummaries"].size(), 1u) << trials.dump();
  const std::string name = trials["TrainingJobSummaries"][0]["TrainingJobName"];
  Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", name}});
  const std::string reason = tj.value("FailureReason", "");
  if (reason.find("survived") != std::string::npos || tj["TrainingJobStatus"] == "Completed") {
    GTEST_SKIP() << "the runtime set no memory limit here: " << reason;
  }
  EXPECT_EQ(tj["TrainingJobStatus"], "Failed") << tj.dump(2);
  EXPECT_EQ(reason.rfind("OutOfMemoryError: the training program was killed by SIGKILL, which hpo did not send, "
                         "while the kernel's out-of-memory killer ended ", 0), 0u)
      << reason;
}

// A worker killed -9 leaves its containers running under the runtime's monitor, out of reach of
// any signal to its processes. Its successor removed them only when a container training job came
// to it, which may never happen: they kept their GPUs while the worker, having reported the
// attempt ended, placed new jobs on them. They go at the successor's start, and, before that,
// with the killed worker's guard (next test); here the guard was killed too.
TEST_F(Contract, AKilledWorkersContainerIsRemovedWhenTheWorkerStartsAgain) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  const std::string image = ImportImage("orphan", "echo loss=1\nwhile :; do sleep 0.1; done\n");
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  StartEndlessContainerJob(image);
  // The guard first: it would sweep the moment the worker is gone.
  // ("[w]orker-guard" does not match the shell that runs pkill, whose command line holds it.)
  const std::string guard = std::string(hpo::worker::kOrphanGuardCommand);
  ASSERT_EQ(std::system(("pkill -9 -f -- '[" + guard.substr(0, 1) + "]" + guard.substr(1) + " --work-dir " +
                         fs::weakly_canonical(dir_ / "w1").string() + "'")
                            .c_str()),
            0)
      << "no guard found";
  worker_->Kill(SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_NE(Sh("podman ps -q --filter name=hpo-" + worker_id_ + "."), "") << "it outlives its worker";
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  // Gone at the start, before any other container training job.
  std::string left = "?";
  for (int i = 0; i < 100 && !left.empty(); ++i) {
    left = Sh("podman ps -a -q --filter name=hpo-" + worker_id_ + ".");
    if (!left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, "") << Sh("cat " + (dir_ / "worker.log").string());
  StopIfRunning("contract");  // its training job was lost with the killed worker: it may have failed
  WaitForJob("contract");
}

// `hpo run` makes a new work directory each time, so no worker starts again on a killed one's:
// its containers ran on for good. The worker's guard (worker/orphans.h) now removes them when the
// worker is gone, however it ended.
TEST_F(Contract, AKilledWorkersGuardRemovesItsContainers) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  const std::string image = ImportImage("guarded", "echo loss=1\nwhile :; do sleep 0.1; done\n");
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  StartEndlessContainerJob(image);
  worker_->Kill(SIGKILL);
  std::string left = "?";
  bool said = false;  // the guard's line comes after the runtime's rm has returned
  for (int i = 0; i < 300 && (!left.empty() || !said); ++i) {
    left = Sh("podman ps -a -q --filter name=hpo-" + worker_id_ + ".");
    said = Sh("cat " + (dir_ / "worker.log").string()).find("removed 1 container(s) they ran in") != std::string::npos;
    if (!left.empty() || !said) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(left, "") << "the killed worker's container still runs; " << Sh("cat " + (dir_ / "worker.log").string());
  EXPECT_TRUE(said) << Sh("cat " + (dir_ / "worker.log").string());
  // A worker restarted at once on that directory waits for the guard rather than failing.
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  StopIfRunning("contract");  // its training job was lost with the killed worker: it may have failed
  WaitForJob("contract");
}

// With pulls on, the worker pulls the image before the program starts (its download is not
// training time) and the training job says DownloadingTrainingImage meanwhile, after Downloading
// its data, as on SageMaker. No registry here: the image comes from an OCI archive, as an
// air-gapped cluster ships its images (`oci-archive:` is pulled, a copy, every time).
TEST_F(Contract, AnImageIsPulledBeforeTheProgramStartsAndTheTrainingJobSaysSo) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  const std::string image = ImportImage("pulled", kTrainer);
  const fs::path archive = dir_ / "pulled.tar";
  ASSERT_EQ(Sh("podman save --format oci-archive -o " + archive.string() + " " + image + " >/dev/null 2>&1 && podman rmi " +
               image + " >/dev/null 2>&1 && echo ok"),
            "ok\n");
  ASSERT_EQ(Sh("podman image exists " + image + " || echo gone"), "gone\n");
  StartWorker({"--container-runtime", "podman", "--container-pull", "missing"});
  Call("CreateHyperParameterTuningJob", ContractJob("oci-archive:" + archive.string()));
  ExpectContractHeld(WaitForJob("contract"));
  Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  for (const auto& t : trials["TrainingJobSummaries"]) {
    Json tj = Call("DescribeTrainingJob", {{"TrainingJobName", t["TrainingJobName"]}});
    std::vector<std::string> history;
    for (const auto& st : tj["SecondaryStatusTransitions"]) {
      history.push_back(st["Status"]);
      if (st["Status"] == "DownloadingTrainingImage") {
        EXPECT_EQ(st["StatusMessage"], "Downloading the training image on worker " + worker_id_ + ": oci-archive:" +
                                           archive.string());
      }
    }
    EXPECT_EQ(history, (std::vector<std::string>{"Starting", "Downloading", "DownloadingTrainingImage", "Training",
                                                 "Uploading", "Completed"}))
        << tj.dump(2);
  }
  const std::string log = Sh("cat " + (dir_ / "worker.log").string());
  // Pulled once per training job, and run as what was pulled (the archive is not copied again).
  int pulled = 0, ran_pulled = 0;
  std::stringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    pulled += line.find("pulled trainingImage oci-archive:" + archive.string() + " (") != std::string::npos;
    ran_pulled += line.find("image oci-archive:" + archive.string() + " as pulled, ") != std::string::npos;
  }
  EXPECT_EQ(pulled, 2) << log;
  EXPECT_EQ(ran_pulled, 2) << log;
}

// An image that can never be pulled (here: no such archive) is the spec's fault: the training
// job fails as a ClientError that names the image and what to check, and is not retried.
TEST_F(Contract, AnImageThatCannotBePulledFailsTheTrainingJobAsAClientError) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  StartWorker({"--container-runtime", "podman", "--container-pull", "missing"});
  const std::string image = "oci-archive:" + (dir_ / "no-such-image.tar").string();
  Json job = OneTrainingJob(image);
  job["TrainingJobDefinition"]["RetryStrategy"] = {{"MaximumRetryAttempts", 2}};
  Call("CreateHyperParameterTuningJob", job);
  WaitForJob("contract");
  const Json t = OnlySummary();
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["TrainingJobStatus"], "Failed");
  const std::string why = t.value("FailureReason", "");
  EXPECT_EQ(why, "ClientError: cannot pull trainingImage " + image + ": " + (dir_ / "no-such-image.tar").string() +
                     " does not exist on this worker; check the image name in the training job definition");
  EXPECT_EQ(Sh("grep -c 'pulling trainingImage' " + (dir_ / "worker.log").string()), "1\n") << "not retried";
}

// An image in a registry the worker cannot reach (a name that does not resolve: an ECR image on a
// cluster without a route to it) is this worker's lack, not a broken worker: the training jobs
// fail as InternalServerErrors that say what to check, and the worker does not rest. Three such
// failures rested it for a minute, doubling, and every other tuning job waited with it.
TEST_F(Contract, AnImageInARegistryNoWorkerCanReachRestsNoWorker) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  StartWorker({"--container-runtime", "podman", "--container-pull", "missing"});
  const std::string image = "hpo-no-such-registry.invalid/trainer:1";
  Json job = ContractJob(image);
  job["HyperParameterTuningJobConfig"]["Strategy"] = "Random";
  job["HyperParameterTuningJobConfig"]["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"] = {"adam", "sgd",
                                                                                                       "rmsprop"};
  job["HyperParameterTuningJobConfig"]["ResourceLimits"] = {{"MaxNumberOfTrainingJobs", 3},
                                                            {"MaxParallelTrainingJobs", 1}};
  Call("CreateHyperParameterTuningJob", job);
  const Json d = WaitForJob("contract", 600);
  EXPECT_EQ(d.value("HyperParameterTuningJobStatus", ""), "Failed") << d.dump();
  Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
  ASSERT_EQ(trials["TrainingJobSummaries"].size(), 3u) << trials.dump();
  for (const auto& t : trials["TrainingJobSummaries"]) {
    const std::string why = t.value("FailureReason", "");
    EXPECT_EQ(why.rfind("InternalServerError: no worker could start it (every worker that can serve it refused: " +
                            worker_id_ + "): cannot pull trainingImage " + image,
                        0),
              0u)
        << why;
    EXPECT_NE(why.find("check the image's name and the workers' access to its registry"), std::string::npos) << why;
  }
  const std::string log = Sh("cat " + (dir_ / "coordinator.log").string());
  EXPECT_EQ(log.find("WorkerResting"), std::string::npos) << log;
}

// A registry that accepts connections and never answers keeps a pull waiting (for the worker's
// hour of pull timeout). Stopping the training job meanwhile stops the pull: the training job
// ends Stopped, never started, without waiting for the download.
TEST_F(Contract, StoppingATrainingJobWhileItsImageIsPulledStopsThePull) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  const int registry = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(registry, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(registry, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(registry, 16), 0);  // connections complete in the backlog; nothing is read
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(registry, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string image = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/hpo-hangs:1";
  StartWorker({"--container-runtime", "podman", "--container-pull", "missing"});
  Json job = OneTrainingJob(image);
  Call("CreateHyperParameterTuningJob", job);
  std::string name, secondary;
  for (int i = 0; i < 300 && secondary != "DownloadingTrainingImage"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Json trials = Call("ListTrainingJobsForHyperParameterTuningJob", {{"HyperParameterTuningJobName", "contract"}});
    if (trials["TrainingJobSummaries"].empty()) continue;
    name = trials["TrainingJobSummaries"][0]["TrainingJobName"];
    secondary = Call("DescribeTrainingJob", {{"TrainingJobName", name}}).value("SecondaryStatus", "");
  }
  ASSERT_EQ(secondary, "DownloadingTrainingImage") << Sh("cat " + (dir_ / "worker.log").string());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the pull is under way
  Call("StopTrainingJob", {{"TrainingJobName", name}});
  std::string status;
  for (int i = 0; i < 300 && status != "Stopped"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    status = Call("DescribeTrainingJob", {{"TrainingJobName", name}}).value("TrainingJobStatus", "");
  }
  ::close(registry);
  EXPECT_EQ(status, "Stopped") << "30 s after the stop: the pull was not stopped; "
                               << Sh("cat " + (dir_ / "worker.log").string());
  const std::string log = Sh("cat " + (dir_ / "worker.log").string());
  EXPECT_EQ(log.find("worker: started " + name), std::string::npos) << "it never ran: " << log;
  // Its log says it was stopped during the pull ("while staging data" alone misled).
  EXPECT_NE(log.find("ended Stopped while staging its data and pulling its image"), std::string::npos) << log;
}

TEST_F(Contract, AnImageThatIsNotHereFailsTheTrainingJobWhenPullsAreOff) {
  if (!PodmanWorks()) GTEST_SKIP() << "podman is not installed";
  StartWorker({"--container-runtime", "podman", "--container-pull", "never"});
  Json job = OneTrainingJob("localhost/hpo-no-such-image:never");
  Call("CreateHyperParameterTuningJob", job);
  WaitForJob("contract");
  const Json t = OnlySummary();
  ASSERT_FALSE(t.is_null());
  EXPECT_EQ(t["TrainingJobStatus"], "Failed");
  EXPECT_NE(t.value("FailureReason", "").find("localhost/hpo-no-such-image:never is not present on this worker and "
                                               "pulls are off"),
            std::string::npos)
      << t.dump();
}

// A contract pass: a container the runtime could not start (podman's exit 125) is an
// infrastructure error and runs again, yet its empty model.tar.gz and output.tar.gz were uploaded
// to the training job's output path first.
TEST_F(Contract, AContainerTheRuntimeCannotStartUploadsNoModel) {
  fs::create_directories(dir_ / "fakebin");
  const fs::path podman = dir_ / "fakebin" / "podman";
  std::ofstream(podman) << "#!/bin/sh\n"
                           "case \"$1\" in run) echo 'Error: crun: cannot create the cgroup' >&2; exit 125;; esac\n"
                           "exit 0\n";
  fs::permissions(podman, fs::perms::owner_all);
  const std::string path = "PATH=" + (dir_ / "fakebin").string() + ":/usr/bin:/bin";
  worker_ = std::make_unique<Child>(
      std::vector<std::string>{"/usr/bin/env", path, HPO_BINARY, "worker", "--connect",
                               "tcp://127.0.0.1:" + std::to_string(zmq_port_), "--id", worker_id_, "--work-dir",
                               (dir_ / "w1").string(), "--container-runtime", "podman", "--container-pull", "never"},
      (dir_ / "worker.log").string());
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    auto res = httplib::Client("127.0.0.1", http_port_).Get("/hpo/v1/health");
    up = res && res->status == 200 && Json::parse(res->body)["workers"] == 1;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(up) << "the cluster did not come up; see " << dir_;
  Call("CreateHyperParameterTuningJob", OneTrainingJob("localhost/hpo-contract:latest"));
  std::string log;
  for (int i = 0; i < 200 && log.find("the container runtime could not start it") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = Sh("cat " + (dir_ / "worker.log").string());
  }
  EXPECT_NE(log.find("the container runtime could not start it: no model uploaded (it runs again)"), std::string::npos)
      << log;
  EXPECT_EQ(Sh("find " + (dir_ / "out").string() + " -name '*.tar.gz' 2>/dev/null"), "") << "no archive was uploaded";
}

}  // namespace
