// The container runtime's command lines (what a trial gets: mounts, environment, GPUs, network,
// pull policy), the image check's reading of the runtime's answers, and stale-container cleanup
// against a real podman when one is installed. The end-to-end contract in a real container is
// tests/integration/contract_test.cc.
#include "worker/container.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;

bool Has(const std::vector<std::string>& argv, const std::vector<std::string>& seq) {
  return std::search(argv.begin(), argv.end(), seq.begin(), seq.end()) != argv.end();
}

ContainerSpec Spec() {
  ContainerSpec s;
  s.image = "123456789012.dkr.ecr.us-west-2.amazonaws.com/xgb:1.7";
  s.name = ContainerName("w1", "job-001-abcdef12", 2);
  s.worker_id = "w1";
  s.trial = "job-001-abcdef12";
  s.hostname = "algo-1";
  s.mounts = {{"/work/t/attempt-2/ml", "/opt/ml", false}, {"/shared/data", "/opt/ml/input/data/fs", true}};
  s.env = {{"SM_HP_LR", "0.1"}, {"TRAINING_JOB_NAME", "job-001-abcdef12"}, {"CUDA_VISIBLE_DEVICES", "2,3"}};
  return s;
}

ContainerConfig Config(const std::string& runtime) {
  ContainerConfig c;
  c.runtime = runtime;
  c.binary = "/usr/bin/" + runtime;
  return c;
}

// With an env file the trial's environment (its Environment's secrets, its hyperparameters) is
// not on the runtime client's command line, which every user reads in ps; a value with a newline
// (which an env file cannot hold) and CUDA_VISIBLE_DEVICES still go as -e.
TEST(ContainerEnvFile, TheEnvironmentGoesInTheFileNotOnTheCommandLine) {
  ContainerConfig c;
  c.runtime = "podman";
  c.binary = "/usr/bin/podman";
  ContainerSpec s;
  s.image = "img";
  s.name = "n";
  s.env = {{"API_KEY", "s3cr3t"}, {"MULTI", "a\nb"}};
  s.gpus = {3};
  s.env_file = "/w/attempt-1/container.env";
  const std::vector<std::string> argv = ContainerRunCommand(c, s);
  std::string all;
  for (const auto& a : argv) all += a + " ";
  EXPECT_NE(all.find("--env-file /w/attempt-1/container.env"), std::string::npos) << all;
  EXPECT_EQ(all.find("s3cr3t"), std::string::npos) << all;
  EXPECT_NE(all.find("-e MULTI=a\nb"), std::string::npos) << all;
  EXPECT_NE(all.find("-e CUDA_VISIBLE_DEVICES=0"), std::string::npos) << all;
  auto [text, apart] = EnvFileText(s.env);
  EXPECT_EQ(text, "API_KEY=s3cr3t\n");
  EXPECT_EQ(apart.size(), 1u);
}

TEST(ContainerRunCommand, PodmanRunsImageTrainWithTheTrialsMountsEnvironmentAndLabels) {
  ContainerConfig c = Config("podman");
  c.pull = "never";
  c.extra_args = {"--shm-size=8g"};
  const auto argv = ContainerRunCommand(c, Spec());
  ASSERT_GE(argv.size(), 4u);
  EXPECT_EQ(argv[0], "/usr/bin/podman");
  EXPECT_EQ(argv[1], "run");
  EXPECT_TRUE(Has(argv, {"--rm"}));
  EXPECT_TRUE(Has(argv, {"--name", "hpo-w1-job-001-abcdef12-2"}));
  EXPECT_TRUE(Has(argv, {"--label", "hpo.worker=w1"}));
  EXPECT_TRUE(Has(argv, {"--label", "hpo.trial=job-001-abcdef12"}));
  EXPECT_TRUE(Has(argv, {"--pull", "never"}));
  EXPECT_TRUE(Has(argv, {"--network", "host"}));
  EXPECT_TRUE(Has(argv, {"--hostname", "algo-1"}));
  EXPECT_TRUE(Has(argv, {"-v", "/work/t/attempt-2/ml:/opt/ml"}));
  EXPECT_TRUE(Has(argv, {"-v", "/shared/data:/opt/ml/input/data/fs:ro"}));
  EXPECT_TRUE(Has(argv, {"-e", "SM_HP_LR=0.1"}));
  EXPECT_TRUE(Has(argv, {"-e", "TRAINING_JOB_NAME=job-001-abcdef12"}));
  // No GPUs in the slot: none passed, the variable as the trial's environment has it.
  EXPECT_TRUE(Has(argv, {"-e", "CUDA_VISIBLE_DEVICES=2,3"}));
  EXPECT_FALSE(Has(argv, {"--device"}));
  // Extra arguments, then `<image> train` last.
  EXPECT_TRUE(Has(argv, {"--shm-size=8g", "123456789012.dkr.ecr.us-west-2.amazonaws.com/xgb:1.7", "train"}));
  EXPECT_EQ(argv.back(), "train");
  // The worker's own environment is not passed.
  EXPECT_FALSE(std::any_of(argv.begin(), argv.end(), [](const std::string& a) { return a.rfind("PATH=", 0) == 0; }));
}

TEST(ContainerRunCommand, TheSlotsGpusOnlyAndRenumberedInside) {
  ContainerSpec s = Spec();
  s.gpus = {2, 3};
  const auto podman = ContainerRunCommand(Config("podman"), s);
  EXPECT_TRUE(Has(podman, {"--device", "nvidia.com/gpu=2"}));
  EXPECT_TRUE(Has(podman, {"--device", "nvidia.com/gpu=3"}));
  EXPECT_FALSE(Has(podman, {"--device", "nvidia.com/gpu=0"}));
  EXPECT_TRUE(Has(podman, {"-e", "CUDA_VISIBLE_DEVICES=0,1"}));
  const auto docker = ContainerRunCommand(Config("docker"), s);
  EXPECT_TRUE(Has(docker, {"--gpus", "\"device=2,3\""}));
  EXPECT_TRUE(Has(docker, {"-e", "CUDA_VISIBLE_DEVICES=0,1"}));
  EXPECT_FALSE(Has(docker, {"--hostname"}));  // docker refuses a hostname with the host network
  // Apptainer shares the host's device view: --nv and the host's indices.
  const auto apptainer = ContainerRunCommand(Config("apptainer"), s);
  EXPECT_TRUE(Has(apptainer, {"--nv"}));
  EXPECT_TRUE(Has(apptainer, {"--env", "CUDA_VISIBLE_DEVICES=2,3"}));
}

TEST(ContainerRunCommand, NetworkIsolationMeansNoNetwork) {
  ContainerSpec s = Spec();
  s.network_none = true;
  ContainerConfig c = Config("docker");
  c.network = "bridge";
  EXPECT_TRUE(Has(ContainerRunCommand(c, s), {"--network", "none"}));
  s.network_none = false;
  EXPECT_TRUE(Has(ContainerRunCommand(c, s), {"--network", "bridge"}));
  s.network_none = true;
  EXPECT_TRUE(Has(ContainerRunCommand(Config("apptainer"), s), {"--net", "--network", "none"}));
}

TEST(ContainerRunCommand, ApptainerRunsWithACleanEnvironmentAndBinds) {
  const auto argv = ContainerRunCommand(Config("apptainer"), Spec());
  EXPECT_EQ(argv[1], "run");
  EXPECT_TRUE(Has(argv, {"--containall", "--cleanenv"}));
  EXPECT_TRUE(Has(argv, {"--bind", "/work/t/attempt-2/ml:/opt/ml"}));
  EXPECT_TRUE(Has(argv, {"--bind", "/shared/data:/opt/ml/input/data/fs:ro"}));
  EXPECT_TRUE(Has(argv, {"--env", "SM_HP_LR=0.1"}));
  EXPECT_EQ(argv.back(), "train");
  EXPECT_FALSE(Has(argv, {"--pull"}));
}

TEST(ContainerStopCommand, StopsByNameWithTheGracePeriod) {
  EXPECT_EQ(ContainerStopCommand(Config("podman"), "hpo-w1-x-1", 120),
            (std::vector<std::string>{"/usr/bin/podman", "stop", "-t", "120", "hpo-w1-x-1"}));
  EXPECT_EQ(ContainerRemoveCommand(Config("docker"), "hpo-w1-x-1"),
            (std::vector<std::string>{"/usr/bin/docker", "rm", "-f", "hpo-w1-x-1"}));
  EXPECT_TRUE(ContainerStopCommand(Config("apptainer"), "x", 10).empty());
  EXPECT_TRUE(IsRuntimeFailure(Config("podman"), 125));
  EXPECT_FALSE(IsRuntimeFailure(Config("podman"), 1));
  EXPECT_FALSE(IsRuntimeFailure(Config("apptainer"), 125));
  // 126 is the runtime's when the OCI runtime could not create the container (a broken
  // containers.conf failed every training job as the algorithm's, never retried elsewhere) ...
  EXPECT_TRUE(IsRuntimeFailure(Config("podman"), 126,
                               "Error: runc: runc create failed: unable to start container process: error during "
                               "container init: error setting rlimits for ready process: OCI permission denied"));
  EXPECT_TRUE(IsRuntimeFailure(Config("docker"), 126, "docker: Error response from daemon: failed to create shim task"));
  // ... and the image's when its train command cannot be run.
  EXPECT_FALSE(IsRuntimeFailure(Config("podman"), 126, "/bin/sh: 1: train: Permission denied"));
  EXPECT_FALSE(IsRuntimeFailure(Config("podman"), 126));
}

TEST(ContainerName, OnlyCharactersRuntimesAccept) {
  EXPECT_EQ(ContainerName("host:1/a", "job 1", 3), "hpo-host_1_a-job_1-3");
  // Two hpo runs on one machine both have a worker local-1: their containers are told apart by
  // the work directory, so neither sweeps (nor collides with) the other's.
  const std::string a = ContainerOwner("local-1", "/home/u/hpo-runs/a/local-1");
  const std::string b = ContainerOwner("local-1", "/home/u/hpo-runs/b/local-1");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, ContainerOwner("local-1", "/home/u/hpo-runs/a/local-1"));
  EXPECT_EQ(a.rfind("local-1.", 0), 0u) << a;
  EXPECT_EQ(a.size(), std::string("local-1.").size() + 8) << a;
}

TEST(ResolveContainerRuntime, NamesWhatIsWrong) {
  auto none = ResolveContainerRuntime("none", "missing", "host", {});
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->enabled());
  auto bad = ResolveContainerRuntime("rkt", "missing", "host", {});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not \"rkt\""), std::string::npos);
  auto pull = ResolveContainerRuntime("none", "sometimes", "host", {});
  ASSERT_FALSE(pull.ok());
  EXPECT_NE(pull.status().message().find("--container-pull"), std::string::npos);
  auto missing = ResolveContainerRuntime("/nonexistent/podman", "missing", "host", {});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// A stand-in runtime (a shell script) answers the image check with each exit code a real one
// gives: 0 present, 1 absent, anything else an error of the runtime itself.
TEST(CheckImage, ReadsTheRuntimesAnswer) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("hpo-ctr-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path podman = dir / "podman";
  std::ofstream(podman) << "#!/bin/sh\n[ \"$1 $2\" = 'image exists' ] || exit 9\n"
                           "case \"$3\" in here) exit 0;; absent) exit 1;; *) echo 'cannot connect' >&2; exit 125;; esac\n";
  fs::permissions(podman, fs::perms::owner_all);
  auto c = ResolveContainerRuntime(podman.string(), "never", "host", {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->runtime, "podman");
  EXPECT_TRUE(CheckImage(*c, "here").ok());
  Status absent = CheckImage(*c, "absent");
  EXPECT_EQ(absent.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(absent.message().find("trainingImage absent is not present on this worker and pulls are off"),
            std::string::npos);
  Status broken = CheckImage(*c, "other");
  EXPECT_EQ(broken.code(), StatusCode::kUnavailable);
  EXPECT_NE(broken.message().find("cannot connect"), std::string::npos);
  c->pull = "missing";  // the runtime pulls what is missing: nothing to check
  EXPECT_TRUE(CheckImage(*c, "absent").ok());
  fs::remove_all(dir);
}

// What a failed pull means, from podman's real answers (no registry here): a reference that can
// never be pulled is the spec's fault (NotFound: a ClientError), an unreachable registry is not
// (Unavailable: the attempt is retried, perhaps elsewhere). Both name the image and carry
// podman's last line.
TEST(PullImage, TellsAReferenceThatCanNeverBePulledFromAnUnreachableRegistry) {
  if (::geteuid() != 0 || std::system("command -v podman >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs podman as root";
  }
  auto c = ResolveContainerRuntime("podman", "missing", "host", {});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(PullsBeforeStart(*c));
  const Status archive = PullImage(*c, "oci-archive:/nonexistent/hpo.tar", std::chrono::seconds(60)).status();
  EXPECT_EQ(archive.code(), StatusCode::kNotFound) << archive.message();
  EXPECT_EQ(archive.message(),
            "cannot pull trainingImage oci-archive:/nonexistent/hpo.tar: /nonexistent/hpo.tar does not exist on this "
            "worker; check the image name in the training job definition");
  const Status bad = PullImage(*c, "Not A Reference", std::chrono::seconds(60)).status();
  EXPECT_EQ(bad.code(), StatusCode::kNotFound) << bad.message();
  EXPECT_NE(bad.message().find("invalid reference format"), std::string::npos) << bad.message();
  const Status down = PullImage(*c, "127.0.0.1:1/hpo-none:1", std::chrono::seconds(60)).status();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable) << down.message();
  EXPECT_NE(down.message().find("connection refused"), std::string::npos) << down.message();
  // A source named with its transport is never in the image store: it is pulled.
  EXPECT_TRUE(IsImageSource("oci-archive:/x.tar"));
  EXPECT_FALSE(IsImageSource("registry.local:5000/xgb:1"));
  auto present = ImagePresent(*c, "oci-archive:/nonexistent/hpo.tar");
  ASSERT_TRUE(present.ok());
  EXPECT_FALSE(*present);
  // A name that is no image reference is the spec's fault before any pull: asked whether it is
  // present, podman exits 125, which was taken for the runtime's failure (InternalServerError;
  // three in a row rested the worker for a minute).
  for (const char* name : {"arn:aws:sagemaker:us-east-1:123456789012:algorithm/my-algo",
                           "123456789012.dkr.ecr.us-east-1.amazonaws.com/MyImage:latest"}) {
    const Status s = ImagePresent(*c, name).status();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name << ": " << s.message();
    EXPECT_NE(s.message().find("is not an image reference podman can read"), std::string::npos) << s.message();
  }
  const Status upper = PullImage(*c, "localhost/MyImage:1", std::chrono::seconds(60)).status();
  EXPECT_EQ(upper.code(), StatusCode::kNotFound) << upper.message();
  // A short name no registry resolves (this host has no unqualified-search registries).
  if (std::system("grep -q '^unqualified-search-registries *= *\\[ *\\]' /etc/containers/registries.conf 2>/dev/null"
                  " || ! grep -q '^unqualified-search-registries' /etc/containers/registries.conf 2>/dev/null") == 0) {
    const Status shortname = PullImage(*c, "hpo-no-such-short-name", std::chrono::seconds(60)).status();
    EXPECT_EQ(shortname.code(), StatusCode::kNotFound) << shortname.message();
    EXPECT_NE(shortname.message().find("give the image's full name"), std::string::npos) << shortname.message();
  }
  c->pull = "never";
  EXPECT_FALSE(PullsBeforeStart(*c));
}

TEST(RemoveStaleContainers, RemovesOnlyThisWorkersContainers) {
  if (::geteuid() != 0 || std::system("command -v podman >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs podman as root";
  }
  // A one-file image of our own (no registry): the containers are created, never started.
  if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "needs /bin/busybox (busybox-static) for a test image";
  const fs::path rootfs = fs::path(::testing::TempDir()) / ("hpo-stale-" + std::to_string(::getpid()));
  fs::create_directories(rootfs / "bin");
  fs::copy_file("/bin/busybox", rootfs / "bin" / "true", fs::copy_options::overwrite_existing);
  const std::string image = "localhost/hpo-stale-test:" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("tar -C " + rootfs.string() + " -cf - . | podman import - " + image + " >/dev/null").c_str()), 0);
  fs::remove_all(rootfs);
  const std::string me = "stale-test-" + std::to_string(::getpid());
  const std::string other = "other-test-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("podman create --label hpo.worker=" + me + " " + image + " true >/dev/null").c_str()), 0);
  ASSERT_EQ(std::system(("podman create --label hpo.worker=" + me + " " + image + " true >/dev/null").c_str()), 0);
  ASSERT_EQ(std::system(("podman create --label hpo.worker=" + other + " " + image + " true >/dev/null").c_str()), 0);
  auto c = ResolveContainerRuntime("podman", "missing", "host", {});
  ASSERT_TRUE(c.ok());
  auto removed = RemoveStaleContainers(*c, me);
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 2);
  EXPECT_EQ(*RemoveStaleContainers(*c, me), 0);
  EXPECT_EQ(*RemoveStaleContainers(*c, other), 1);
  EXPECT_EQ(std::system(("podman rmi -f " + image + " >/dev/null").c_str()), 0);
}

// Only container IDs are removed: rootless podman's warnings on stderr (which the tool's output
// holds too) were taken for 69 IDs and handed to `podman rm -f`.
TEST(RemoveStaleContainers, TakesOnlyContainerIdsFromWhatTheRuntimeSays) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("hpo-stale-words-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path runtime = dir / "podman", calls = dir / "calls";
  std::ofstream(runtime) << "#!/bin/sh\necho \"$*\" >> " << calls.string()
                         << "\ncase \"$1\" in\n  ps) echo 'time=\"2026-12-06T21:49:46Z\" level=warning msg=\"\\\"/\\\" is not a "
                            "shared mount, this could cause issues\"' >&2\n      echo 3f2a9c81b7d0\n"
                            "      echo 'a warning: cgroupv2 manager is set to systemd' >&2;;\nesac\nexit 0\n";
  fs::permissions(runtime, fs::perms::owner_all);
  auto c = ResolveContainerRuntime(runtime.string(), "missing", "host", {});
  ASSERT_TRUE(c.ok()) << c.status().message();
  auto removed = RemoveStaleContainers(*c, "me");
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 1);
  std::ifstream in(calls);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(all.find("rm -f 3f2a9c81b7d0\n"), std::string::npos) << all;
  EXPECT_EQ(all.find("warning"), std::string::npos) << "no word of the warnings went to rm: " << all;
  fs::remove_all(dir);
}

// The pulled image's ID is read wherever podman's shared stdout/stderr put it: a progress line
// written after it (the second of two concurrent pulls of one archive once showed no ID, and its
// training job ran from the archive again).
TEST(Container, APullsImageIdIsReadWhereverItLandsInTheOutput) {
  const std::string id = "47d3657e556c06be6b542aa251aad295151c7eee172037ad4b7e978dce730295";
  EXPECT_EQ(ImageIdInPullOutput("Getting image source signatures\nStoring signatures\n" + id + "\n"), id);
  EXPECT_EQ(ImageIdInPullOutput("Getting image source signatures\n" + id + "\nStoring signatures\n"), id);
  EXPECT_EQ(ImageIdInPullOutput(id + "\r\nWARN[0000] a late warning\n"), id);
  EXPECT_EQ(ImageIdInPullOutput("docker.io/library/busybox:latest\n"), "");
  EXPECT_EQ(ImageIdInPullOutput(id.substr(1) + "\n"), "") << "63 digits are no ID";
  EXPECT_EQ(ImageIdInPullOutput(""), "");
}

}  // namespace
}  // namespace hpo::worker
