#include "worker/trial_layout.h"

#include "worker/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

class TrialLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("hpo-layout-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "attempt-1").string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A two-host trial of a tuning job, with the reserved hyperparameters AMT adds.
  TrialLayoutSpec Spec() {
    TrialLayoutSpec s;
    s.job_name = "my-job-001-589e2e9f";
    s.job_arn = "arn:aws:sagemaker:local:000000000000:training-job/my-job-001-589e2e9f";
    s.root = root_;
    s.hyperparameters = {{"eta", "0.1"},
                         {"max_depth", "6"},
                         {"objective", "binary:logistic"},
                         {"_tuning_objective_metric", "validation:auc"},
                         {"sagemaker_program", "train.py"}};
    s.channels = {{"train", "text/csv", "", "", "", ""},
                  {"validation", "", "Pipe", "ShardedByS3Key", "RecordIO", "Gzip"}};
    s.current_host = "algo-2";
    s.hosts = {"algo-2", "algo-1"};
    s.instance_type = "ml.g5.xlarge";
    s.num_cpus = 4;
    s.gpus = {2, 3};
    s.environment = {{"MY_FLAG", "on"}, {"SM_NUM_GPUS", "99"}};
    return s;
  }

  Json ReadJson(const std::string& relative) {
    std::ifstream in(fs::path(root_) / relative);
    EXPECT_TRUE(in.good()) << relative;
    std::stringstream ss;
    ss << in.rdbuf();
    return Json::parse(ss.str());
  }

  std::string ReadText(const std::string& relative) {
    std::ifstream in(fs::path(root_) / relative);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  std::string root_;
};

TEST_F(TrialLayoutTest, CreatesEveryDirectoryOfTheOptMlTree) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  for (const char* d : {"input/config", "input/data/train", "input/data/validation", "model", "output/data",
                        "output/intermediate", "checkpoints"}) {
    EXPECT_TRUE(fs::is_directory(fs::path(root_) / d)) << d;
  }
}

TEST_F(TrialLayoutTest, HyperparametersJsonIsAFlatObjectOfStrings) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  EXPECT_EQ(ReadText("input/config/hyperparameters.json"),
            R"({"_tuning_objective_metric":"validation:auc","eta":"0.1","max_depth":"6",)"
            R"("objective":"binary:logistic","sagemaker_program":"train.py"})");
}

TEST_F(TrialLayoutTest, InputDataConfigHasEveryChannelWithItsModes) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  Json expected = Json::parse(R"({
    "train": {"ContentType": "text/csv", "TrainingInputMode": "File",
              "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"},
    "validation": {"TrainingInputMode": "Pipe", "S3DistributionType": "ShardedByS3Key",
                   "RecordWrapperType": "RecordIO", "CompressionType": "Gzip"}
  })");
  EXPECT_EQ(ReadJson("input/config/inputdataconfig.json"), expected);
}

TEST_F(TrialLayoutTest, ResourceConfigHasSortedHostsAndTheHomogeneousGroup) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  Json expected = Json::parse(R"({
    "current_host": "algo-2",
    "hosts": ["algo-1", "algo-2"],
    "network_interface_name": "eth0",
    "current_instance_type": "ml.g5.xlarge",
    "current_group_name": "homogeneousCluster",
    "current_instance_group": "homogeneousCluster",
    "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "ml.g5.xlarge",
                         "hosts": ["algo-1", "algo-2"]}]
  })");
  EXPECT_EQ(ReadJson("input/config/resourceconfig.json"), expected);
}

// Every variable TrainingEnvironment sets is one SetForEveryTrainingJob names (what `hpo validate`
// notes when a spec's Environment sets it: such entries were dropped without a word; a security
// pass), and a name of the spec's own is not.
TEST_F(TrialLayoutTest, SetForEveryTrainingJobNamesEveryVariableTheContractSets) {
  TrialLayoutSpec s = Spec();
  s.environment = {{"MY_FLAG", "1"}};
  for (const auto& [name, value] : TrainingEnvironment(s)) {
    if (name == "MY_FLAG") continue;
    EXPECT_TRUE(SetForEveryTrainingJob(name)) << name;
  }
  EXPECT_FALSE(SetForEveryTrainingJob("MY_FLAG"));
  EXPECT_FALSE(SetForEveryTrainingJob("SM_STUDIO_LOCAL_MODE")) << "the spec's own value wins";
  EXPECT_FALSE(SetForEveryTrainingJob("PATH"));
  EXPECT_TRUE(SetForEveryTrainingJob("HPO_ATTEMPT"));
}

TEST_F(TrialLayoutTest, HostsSortLexicographicallyAsTheToolkitDocuments) {
  TrialLayoutSpec s = Spec();
  s.hosts = {"algo-2", "algo-10", "algo-1"};
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(ReadJson("input/config/resourceconfig.json")["hosts"], Json::parse(R"(["algo-1","algo-10","algo-2"])"));
  EXPECT_EQ(TrainingEnvironment(s)["SM_HOSTS"], R"(["algo-1","algo-10","algo-2"])");
}

TEST_F(TrialLayoutTest, HeterogeneousClusterNamesTheGroupOfTheCurrentHost) {
  TrialLayoutSpec s = Spec();
  s.hosts = {"algo-1", "algo-2", "algo-3"};
  s.current_host = "algo-3";
  s.instance_groups = {{"train1", "ml.p4d.24xlarge", {"algo-2", "algo-1"}}, {"train2", "ml.c5.xlarge", {"algo-3"}}};
  s.instance_type = "ml.c5.xlarge";
  ASSERT_TRUE(LayOutTrial(s).ok());
  Json rc = ReadJson("input/config/resourceconfig.json");
  EXPECT_EQ(rc["current_group_name"], "train2");
  EXPECT_EQ(rc["current_instance_group"], "train2");
  EXPECT_EQ(rc["instance_groups"], Json::parse(R"([
    {"instance_group_name": "train1", "instance_type": "ml.p4d.24xlarge", "hosts": ["algo-1", "algo-2"]},
    {"instance_group_name": "train2", "instance_type": "ml.c5.xlarge", "hosts": ["algo-3"]}])"));

  auto env = TrainingEnvironment(s);
  EXPECT_EQ(env["SM_CURRENT_INSTANCE_GROUP"], "train2");
  EXPECT_EQ(env["SM_CURRENT_INSTANCE_GROUP_HOSTS"], R"(["algo-3"])");
  EXPECT_EQ(env["SM_INSTANCE_GROUPS"], R"(["train1","train2"])");
  EXPECT_EQ(env["SM_INSTANCE_GROUPS_DICT"],
            R"({"train1":{"hosts":["algo-1","algo-2"],"instance_group_name":"train1",)"
            R"("instance_type":"ml.p4d.24xlarge"},"train2":{"hosts":["algo-3"],)"
            R"("instance_group_name":"train2","instance_type":"ml.c5.xlarge"}})");
  EXPECT_EQ(env["SM_IS_HETERO"], "true");
}

// The SDK's distribution instance_groups (sagemaker_distribution_instance_groups): the launcher's
// hosts are those groups', and the master their first host, as the training toolkit reads them.
// Every host was told algo-1 was the master, a host outside the training group: a rendezvous
// there never completes.
TEST_F(TrialLayoutTest, TheMasterIsTheFirstHostOfTheDistributionGroups) {
  TrialLayoutSpec s = Spec();
  s.hosts = {"algo-1", "algo-2", "algo-3"};
  s.instance_groups = {{"data", "ml.c5.xlarge", {"algo-1"}}, {"train", "ml.p4d.24xlarge", {"algo-2", "algo-3"}}};
  s.hyperparameters["sagemaker_distribution_instance_groups"] = R"(["train"])";
  for (const std::string host : {"algo-1", "algo-2", "algo-3"}) {
    s.current_host = host;
    auto env = TrainingEnvironment(s);
    const Json t = Json::parse(env["SM_TRAINING_ENV"]);
    EXPECT_EQ(t["distribution_instance_groups"], Json({"train"})) << host;
    EXPECT_EQ(t["distribution_hosts"], Json({"algo-2", "algo-3"})) << host;
    EXPECT_EQ(t["master_hostname"], "algo-2") << host;
    EXPECT_EQ(t["is_master"], host == "algo-2") << host;
    EXPECT_EQ(env["SM_DISTRIBUTION_INSTANCE_GROUPS"], R"(["train"])");
  }
  // Without it and without a distribution: none, and the master is the first host.
  s.hyperparameters.erase("sagemaker_distribution_instance_groups");
  Json t = Json::parse(TrainingEnvironment(s)["SM_TRAINING_ENV"]);
  EXPECT_EQ(t["distribution_instance_groups"], Json::array());
  EXPECT_EQ(t["distribution_hosts"], Json::array());
  EXPECT_EQ(t["master_hostname"], "algo-1");
  // A distribution turned on spans the current group.
  s.hyperparameters["sagemaker_pytorch_ddp_enabled"] = "true";
  s.current_host = "algo-3";
  t = Json::parse(TrainingEnvironment(s)["SM_TRAINING_ENV"]);
  EXPECT_EQ(t["distribution_instance_groups"], Json({"train"}));
  EXPECT_EQ(t["master_hostname"], "algo-2");
  // The keys every toolkit environment has.
  for (const char* key : {"num_neurons", "is_smddprun_installed", "is_smddpmprun_installed", "topology", "framework_module"}) {
    EXPECT_TRUE(t.contains(key)) << key;
  }
}

// SM_USER_ARGS is the toolkit's to_cmd_args: Python's str() of each decoded value ("True",
// "[1, 2]"), a dict as k=v pairs, and one dash before a one-letter name.
TEST_F(TrialLayoutTest, UserArgsAreWhatTheToolkitsToCmdArgsGives) {
  TrialLayoutSpec s = Spec();
  s.hyperparameters = {{"flag", "true"}, {"layers", "[1, 2]"}, {"k", "3"}, {"names", R"(["a", "it's"])"},
                       {"opts", R"({"b": {"x": 1}, "a": false, "c": null})"}, {"lr", "0.001"}, {"text", "plain words"},
                       {"\xce\xb1", "1"}};
  const Json args = Json::parse(TrainingEnvironment(s)["SM_USER_ARGS"]);
  EXPECT_EQ(args, Json({"--flag", "True", "-k", "3", "--layers", "[1, 2]", "--lr", "0.001", "--names",
                        "['a', \"it's\"]", "--opts", "a=False,b={'x': 1},c=None", "--text", "plain words", "-\xce\xb1",
                        "1"}));
}

// The training toolkit json.loads each hyperparameter (the text where that fails) and writes
// SM_HPS with json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True).
TEST_F(TrialLayoutTest, SmHpsLeavesOutReservedKeysAndHoldsValuesAsTheToolkitReadsThem) {
  auto env = TrainingEnvironment(Spec());
  EXPECT_EQ(env["SM_HPS"], R"({"eta":0.1,"max_depth":6,"objective":"binary:logistic"})");
  TrialLayoutSpec s = Spec();
  s.hyperparameters = {{"layers", "[64, 32]"}, {"flag", "true"}, {"quoted", "\"sgd\""}, {"name", "caf\xC3\xA9"},
                       {"nan", "NaN"}, {"cfg", "{\"b\": 1, \"a\": null}"}};
  EXPECT_EQ(TrainingEnvironment(s)["SM_HPS"],
            R"({"cfg":{"a":null,"b":1},"flag":true,"layers":[64,32],"name":"caf\u00e9","nan":"NaN","quoted":"sgd"})");
}

TEST_F(TrialLayoutTest, SmHpVariablesAreUpperCasedAndWrittenAsTheToolkitWritesThem) {
  TrialLayoutSpec s = Spec();
  s.hyperparameters["Learning-Rate"] = "1e-3";
  s.hyperparameters["layers"] = "[64, 32]";
  s.hyperparameters["quoted"] = "\"sgd\"";
  auto env = TrainingEnvironment(s);
  EXPECT_EQ(env["SM_HP_ETA"], "0.1");
  EXPECT_EQ(env["SM_HP_MAX_DEPTH"], "6");
  EXPECT_EQ(env["SM_HP_OBJECTIVE"], "binary:logistic");
  EXPECT_EQ(env["SM_HP_LEARNING-RATE"], "0.001") << "json.dumps(json.loads(\"1e-3\"))";
  EXPECT_EQ(env["SM_HP_LAYERS"], "[64,32]");
  EXPECT_EQ(env["SM_HP_QUOTED"], "sgd") << "a JSON string is its text";
  // An integer past 64 bits reaches the program exact, as Python keeps it (it came rounded to a
  // double, 1.2345678901234568e+29, which argparse's type=int refuses; a contract pass).
  s.hyperparameters["big"] = "123456789012345678901234567890";
  env = TrainingEnvironment(s);
  EXPECT_EQ(env["SM_HP_BIG"], "123456789012345678901234567890");
  EXPECT_NE(env["SM_USER_ARGS"].find(R"("--big","123456789012345678901234567890")"), std::string::npos)
      << env["SM_USER_ARGS"];
  // In the JSON documents a number, as json.dumps writes Python's int (it was a string there).
  EXPECT_NE(env["SM_HPS"].find(R"("big":123456789012345678901234567890)"), std::string::npos) << env["SM_HPS"];
  EXPECT_NE(env["SM_TRAINING_ENV"].find(R"("big":123456789012345678901234567890)"), std::string::npos);
  s.hyperparameters["big"] = " -98765432109876543210987654321 ";
  s.hyperparameters["dash"] = "-";  // text, as are these
  s.hyperparameters["empty"] = "";
  env = TrainingEnvironment(s);
  EXPECT_NE(env["SM_HPS"].find(R"("big":-98765432109876543210987654321,)"), std::string::npos) << env["SM_HPS"];
  EXPECT_NE(env["SM_HPS"].find(R"("dash":"-","empty":"")"), std::string::npos) << env["SM_HPS"];
  EXPECT_NO_THROW(Json::parse(env["SM_TRAINING_ENV"])) << env["SM_TRAINING_ENV"];
  EXPECT_EQ(env.count("SM_HP__TUNING_OBJECTIVE_METRIC"), 0u);
  EXPECT_EQ(env.count("SM_HP_SAGEMAKER_PROGRAM"), 0u);
  EXPECT_EQ(env.count("SM_HP_eta"), 0u);
}

TEST_F(TrialLayoutTest, EnvironmentHasTheWholeSageMakerSetWithPathsIntoTheRoot) {
  TrialLayoutSpec s = Spec();
  auto env = TrainingEnvironment(s);
  EXPECT_EQ(env["TRAINING_JOB_NAME"], "my-job-001-589e2e9f");
  EXPECT_EQ(env["TRAINING_JOB_ARN"], s.job_arn);
  EXPECT_EQ(env["SM_HOSTS"], R"(["algo-1","algo-2"])");
  EXPECT_EQ(env["SM_CURRENT_HOST"], "algo-2");
  EXPECT_EQ(env["SM_CURRENT_INSTANCE_TYPE"], "ml.g5.xlarge");
  EXPECT_EQ(env["SM_NETWORK_INTERFACE_NAME"], "eth0");
  EXPECT_EQ(env["SM_CHANNELS"], R"(["train","validation"])");
  EXPECT_EQ(env["SM_CHANNEL_TRAIN"], root_ + "/input/data/train");
  EXPECT_EQ(env["SM_CHANNEL_VALIDATION"], root_ + "/input/data/validation");
  EXPECT_EQ(env["SM_MODEL_DIR"], root_ + "/model");
  EXPECT_EQ(env["SM_OUTPUT_DIR"], root_ + "/output");
  EXPECT_EQ(env["SM_OUTPUT_DATA_DIR"], root_ + "/output/data");
  EXPECT_EQ(env["SM_OUTPUT_INTERMEDIATE_DIR"], root_ + "/output/intermediate");
  EXPECT_EQ(env["SM_INPUT_DIR"], root_ + "/input");
  EXPECT_EQ(env["SM_INPUT_CONFIG_DIR"], root_ + "/input/config");
  EXPECT_EQ(env["SM_NUM_CPUS"], "4");
  EXPECT_EQ(env["SM_NUM_GPUS"], "2") << "the slot's GPUs win over the definition's Environment";
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "2,3");
  EXPECT_EQ(env["SM_CURRENT_INSTANCE_GROUP"], "homogeneousCluster");
  EXPECT_EQ(env["SM_CURRENT_INSTANCE_GROUP_HOSTS"], R"(["algo-1","algo-2"])");
  EXPECT_EQ(env["SM_INSTANCE_GROUPS"], R"(["homogeneousCluster"])");
  EXPECT_EQ(env["SM_IS_HETERO"], "false");
  EXPECT_EQ(env["MY_FLAG"], "on");
  EXPECT_EQ(env.count("PATH"), 0u);

  // The JSON variables say what the files say.
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(Json::parse(env["SM_RESOURCE_CONFIG"]), ReadJson("input/config/resourceconfig.json"));
  EXPECT_EQ(Json::parse(env["SM_INPUT_DATA_CONFIG"]), ReadJson("input/config/inputdataconfig.json"));
  EXPECT_EQ(env["SM_RESOURCE_CONFIG"], ReadText("input/config/resourceconfig.json"));
}

// A contract pass: scripts written for framework containers read SM_TRAINING_ENV whole
// (json.loads(os.environ["SM_TRAINING_ENV"])) and failed with a KeyError unless run in script mode.
TEST_F(TrialLayoutTest, SmTrainingEnvHoldsWhatTheToolkitsDocumentHolds) {
  TrialLayoutSpec s = Spec();
  s.hyperparameters["sagemaker_program"] = "\"pkg/train.py\"";
  s.hyperparameters["sagemaker_container_log_level"] = "10";
  s.hyperparameters["sagemaker_distributed_dataparallel_enabled"] = "false";
  s.network_interface = "ens5";
  auto env = TrainingEnvironment(s);
  ASSERT_TRUE(LayOutTrial(s).ok());
  const Json t = Json::parse(env["SM_TRAINING_ENV"]);
  EXPECT_EQ(t["channel_input_dirs"], Json({{"train", root_ + "/input/data/train"},
                                           {"validation", root_ + "/input/data/validation"}}));
  EXPECT_EQ(t["hyperparameters"], Json::parse(env["SM_HPS"]));
  EXPECT_EQ(t["hosts"], Json({"algo-1", "algo-2"}));
  EXPECT_EQ(t["current_host"], "algo-2");
  EXPECT_EQ(t["master_hostname"], "algo-1");
  EXPECT_EQ(t["is_master"], false);
  EXPECT_EQ(t["model_dir"], env["SM_MODEL_DIR"]);
  EXPECT_EQ(t["output_data_dir"], env["SM_OUTPUT_DATA_DIR"]);
  EXPECT_EQ(t["num_gpus"], 2);
  EXPECT_EQ(t["num_cpus"], 4);
  EXPECT_EQ(t["log_level"], 10);
  EXPECT_EQ(t["user_entry_point"], "pkg/train.py");
  EXPECT_EQ(t["module_name"], "pkg.train");
  EXPECT_EQ(t["network_interface_name"], "ens5");
  EXPECT_EQ(t["resource_config"], ReadJson("input/config/resourceconfig.json"));
  EXPECT_EQ(t["input_data_config"], ReadJson("input/config/inputdataconfig.json"));
  EXPECT_EQ(t["additional_framework_parameters"], Json({{"sagemaker_distributed_dataparallel_enabled", false}}));
  EXPECT_EQ(env["SM_USER_ENTRY_POINT"], "pkg/train.py");
  EXPECT_EQ(env["SM_LOG_LEVEL"], "10");
  EXPECT_EQ(env["SM_NETWORK_INTERFACE_NAME"], "ens5");
  EXPECT_EQ(ReadJson("input/config/resourceconfig.json")["network_interface_name"], "ens5");
  const Json args = Json::parse(env["SM_USER_ARGS"]);
  ASSERT_TRUE(args.is_array());
  ASSERT_GE(args.size(), 2u);
  EXPECT_EQ(args[0].get<std::string>().rfind("--", 0), 0u) << args.dump();
}

TEST(InterfaceOf, LoopbackAddressesAreOnLoAndAnUnknownHostTakesTheDefaultRoute) {
  EXPECT_EQ(InterfaceOf("127.0.0.1"), "lo");
  EXPECT_EQ(InterfaceOf("127.0.0.7"), "lo") << "all of 127.0.0.0/8 is lo's";
  EXPECT_FALSE(InterfaceOf("192.0.2.77").empty());
}

TEST_F(TrialLayoutTest, NoGpusGiveAnEmptyCudaVisibleDevices) {
  TrialLayoutSpec s = Spec();
  s.gpus.clear();
  auto env = TrainingEnvironment(s);
  ASSERT_EQ(env.count("CUDA_VISIBLE_DEVICES"), 1u);
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], "");
  EXPECT_EQ(env["SM_NUM_GPUS"], "0");
}

TEST_F(TrialLayoutTest, NoChannelsGiveAnEmptyObjectAndList) {
  TrialLayoutSpec s = Spec();
  s.channels.clear();
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(ReadText("input/config/inputdataconfig.json"), "{}");
  EXPECT_EQ(TrainingEnvironment(s)["SM_CHANNELS"], "[]");
  EXPECT_TRUE(fs::is_directory(fs::path(root_) / "input/data"));
}

TEST_F(TrialLayoutTest, LayingOutAgainKeepsCheckpointsAndReplacesConfig) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  { std::ofstream(fs::path(root_) / "checkpoints" / "ckpt-1") << "state"; }
  TrialLayoutSpec s = Spec();
  s.hyperparameters = {{"eta", "0.2"}};
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_TRUE(fs::exists(fs::path(root_) / "checkpoints" / "ckpt-1"));
  EXPECT_EQ(ReadText("input/config/hyperparameters.json"), R"({"eta":"0.2"})");
}

// A tree made ahead of time (MakeTrialTree, then moved into place) and completed by LayOutTrial
// with tree_made is the same tree, with the same files, as one laid out in one go.
TEST_F(TrialLayoutTest, ATreeMadeAheadOfTimeIsCompletedToTheSameLayout) {
  auto listing = [](const fs::path& root) {
    std::string out;
    std::vector<std::string> entries;
    for (auto& e : fs::recursive_directory_iterator(root)) {
      std::string rel = fs::relative(e.path(), root).string();
      if (e.is_regular_file()) {
        std::ifstream in(e.path());
        std::stringstream ss;
        ss << in.rdbuf();
        rel += " = " + ss.str();
      }
      entries.push_back(rel);
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& e : entries) out += e + "\n";
    return out;
  };
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  const std::string plain = listing(root_);

  const fs::path early = dir_ / "made-early";
  ASSERT_TRUE(MakeTrialTree(early.string()).ok());
  for (const char* d : {"input/config", "input/data", "model", "output/data", "output/intermediate", "checkpoints"}) {
    EXPECT_TRUE(fs::is_directory(early / d)) << d;
  }
  EXPECT_TRUE(fs::is_empty(early / "input" / "data")) << "channels are the layout's";
  EXPECT_TRUE(fs::is_empty(early / "input" / "config")) << "files are the layout's";
  const fs::path moved = dir_ / "attempt-2";
  fs::rename(early, moved);
  TrialLayoutSpec s = Spec();
  s.root = moved.string();
  s.tree_made = true;
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(listing(moved), plain);
  EXPECT_EQ(MakeTrialTree("").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(MakeTrialTree(moved.string()).ok()) << "existing directories are kept";
  EXPECT_EQ(listing(moved), plain);

  // With empty config files made ahead too, the layout only fills them in.
  const fs::path with_files = dir_ / "with-files";
  ASSERT_TRUE(MakeTrialTree(with_files.string(), /*config_files=*/true).ok());
  for (const char* f : {"hyperparameters.json", "inputdataconfig.json", "resourceconfig.json"}) {
    EXPECT_TRUE(fs::is_regular_file(with_files / "input" / "config" / f)) << f;
    EXPECT_EQ(fs::file_size(with_files / "input" / "config" / f), 0u) << f;
  }
  s.root = with_files.string();
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(listing(with_files), plain);
  // Laid out again over files with content: they are replaced.
  s.hyperparameters = {{"eta", "0.3"}};
  ASSERT_TRUE(LayOutTrial(s).ok());
  std::ifstream in(with_files / "input" / "config" / "hyperparameters.json");
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), R"({"eta":"0.3"})");
}

// smdebug's state_store reads LocalPath from /opt/ml/input/config/checkpointconfig.json, which
// SageMaker writes when the job has a CheckpointConfig.
TEST_F(TrialLayoutTest, CheckpointConfigJsonNamesTheLocalPathAndUriOnlyWithACheckpointConfig) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  EXPECT_FALSE(fs::exists(fs::path(root_) / "input" / "config" / "checkpointconfig.json"));

  TrialLayoutSpec s = Spec();
  s.visible_root = "/opt/ml";
  s.checkpoint_uri = "s3://bucket/ckpt/my-job-001-589e2e9f";
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(ReadText("input/config/checkpointconfig.json"),
            R"({"LocalPath":"/opt/ml/checkpoints","S3Uri":"s3://bucket/ckpt/my-job-001-589e2e9f"})");
  s.checkpoint_local_path = "/scratch/ckpt";
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(ReadJson("input/config/checkpointconfig.json")["LocalPath"], "/scratch/ckpt");
  // Without a mount namespace the program's paths are the root's own.
  s.visible_root.clear();
  s.checkpoint_local_path.clear();
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_EQ(ReadJson("input/config/checkpointconfig.json")["LocalPath"], (fs::path(root_) / "checkpoints").string());
  // In a tree made ahead of time it is written like the other files.
  const fs::path early = dir_ / "made-early";
  ASSERT_TRUE(MakeTrialTree(early.string(), /*config_files=*/true).ok());
  s.root = early.string();
  s.tree_made = true;
  ASSERT_TRUE(LayOutTrial(s).ok());
  EXPECT_TRUE(fs::is_regular_file(early / "input" / "config" / "checkpointconfig.json"));
}

TEST_F(TrialLayoutTest, UnsafeOrDuplicateChannelNamesAreRejectedBeforeAnythingIsCreated) {
  for (const char* bad : {"../escape", "a/b", "..", ".", "", "sp ace"}) {
    TrialLayoutSpec s = Spec();
    s.channels = {{bad, "", "", "", "", ""}};
    Status st = LayOutTrial(s);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << '"' << bad << '"';
    EXPECT_FALSE(fs::exists(root_)) << "no side effect for \"" << bad << '"';
  }
  TrialLayoutSpec s = Spec();
  s.channels = {{"train", "", "", "", "", ""}, {"train", "", "", "", "", ""}};
  EXPECT_EQ(LayOutTrial(s).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(root_));
}

TEST_F(TrialLayoutTest, UnwritableRootIsAnIoErrorNamingThePath) {
  fs::path file = dir_ / "a-file";
  { std::ofstream(file) << "x"; }
  TrialLayoutSpec s = Spec();
  s.root = (file / "root").string();
  Status st = LayOutTrial(s);
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find(file.string()), std::string::npos) << st.message();
}

TEST_F(TrialLayoutTest, FailureReasonIsEmptyWithoutAFailureFile) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  auto r = ReadFailureReason(root_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "");
  auto missing_root = ReadFailureReason((dir_ / "never-created").string());
  ASSERT_TRUE(missing_root.ok());
  EXPECT_EQ(*missing_root, "");
}

TEST_F(TrialLayoutTest, FailureReasonIsTheFileWithoutTrailingNewline) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  { std::ofstream(fs::path(root_) / "output" / "failure") << "ValueError: bad eta\n"; }
  auto r = ReadFailureReason(root_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "AlgorithmError: ValueError: bad eta") << "as SageMaker reports it (a contract pass)";
  { std::ofstream(fs::path(root_) / "output" / "failure") << "AlgorithmError: said already\n"; }
  EXPECT_EQ(*ReadFailureReason(root_), "AlgorithmError: said already");
}

TEST_F(TrialLayoutTest, FailureReasonIsTruncatedTo1024Characters) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  { std::ofstream(fs::path(root_) / "output" / "failure") << std::string(3000, 'x'); }
  auto r = ReadFailureReason(root_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "AlgorithmError: " + std::string(1024 - 16, 'x'));
}

TEST_F(TrialLayoutTest, FailureReasonCountsUtf8CharactersAndNeverSplitsOne) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  std::string e_acute = "\xc3\xa9";
  std::string text;
  for (int i = 0; i < 2000; ++i) text += e_acute;
  { std::ofstream(fs::path(root_) / "output" / "failure") << text; }
  auto r = ReadFailureReason(root_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size(), 16u + 2 * (1024 - 16));
  EXPECT_EQ(r->substr(16, 4), e_acute + e_acute);

  { std::ofstream(fs::path(root_) / "output" / "failure") << "bad \xff byte"; }
  auto bad = ReadFailureReason(root_);
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(*bad, "AlgorithmError: bad \xef\xbf\xbd byte");
}

TEST_F(TrialLayoutTest, UnreadableFailureFileIsAnIoError) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  fs::create_directories(fs::path(root_) / "output" / "failure");
  auto r = ReadFailureReason(root_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
}

// The program owns output/: a FIFO named failure blocked the worker's loop in open() for good
// (its heartbeats stopped, it was lost, and SIGTERM could not end it), and a link had the
// worker read a file of the host into the FailureReason.
TEST_F(TrialLayoutTest, AFailureFileThatIsAFifoOrALinkIsNeitherWaitedOnNorFollowed) {
  ASSERT_TRUE(LayOutTrial(Spec()).ok());
  const fs::path failure = fs::path(root_) / "output" / "failure";
  ASSERT_EQ(::mkfifo(failure.c_str(), 0600), 0);
  auto fifo = std::async(std::launch::async, [&] { return ReadFailureReason(root_); });
  ASSERT_EQ(fifo.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "blocked on the FIFO";
  auto r = fifo.get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a regular file"), std::string::npos) << r.status().message();

  fs::remove(failure);
  const fs::path secret = dir_ / "host-secret";
  { std::ofstream(secret) << "root:x:0:0"; }
  fs::create_symlink(secret, failure);
  auto linked = ReadFailureReason(root_);
  ASSERT_FALSE(linked.ok());
  EXPECT_NE(linked.status().message().find("symbolic link"), std::string::npos) << linked.status().message();

  fs::remove(failure);
  const fs::path elsewhere = dir_ / "elsewhere";
  fs::create_directories(elsewhere);
  { std::ofstream(elsewhere / "failure") << "root:x:0:0"; }
  fs::remove_all(fs::path(root_) / "output");
  fs::create_directory_symlink(elsewhere, fs::path(root_) / "output");
  auto through = ReadFailureReason(root_);
  ASSERT_FALSE(through.ok()) << *through;
  EXPECT_NE(through.status().message().find("not a directory"), std::string::npos) << through.status().message();
}

}  // namespace
}  // namespace hpo::worker
