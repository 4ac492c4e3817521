// TrialProcess isolation (worker/process.h "Isolation"): private mount namespaces with bind
// mounts, and network namespaces with only loopback. These need root; elsewhere they are skipped
// (and the refusal itself is tested).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "worker/process.h"

namespace hpo::worker {
namespace {

namespace fs = std::filesystem;

class Isolation : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("hpo-iso-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "src");
    fs::create_directories(dir_ / "target");
    std::ofstream(dir_ / "src" / "hello.txt") << "from the source\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `sh -c script` with the isolation; returns its exit code and fills lines_.
  Result<int> RunSh(const std::string& script, worker::Isolation iso) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.env = {{"PATH", "/usr/sbin:/usr/bin:/bin"}};
    spec.isolation = std::move(iso);
    lines_.clear();
    auto p = TrialProcess::Start(spec, [this](Stream, const std::string& l) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(l);
    });
    if (!p.ok()) return p.status();
    return (*p)->Wait().exit_code;
  }
  std::string Output() {
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }

  fs::path dir_;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

bool Root() { return ::geteuid() == 0; }

TEST_F(Isolation, ABindMountShowsTheSourceInsideAndLeavesTheHostUntouched) {
  if (!Root()) GTEST_SKIP() << "needs root";
  worker::Isolation iso;
  iso.mount_namespace = true;
  iso.mounts = {{(dir_ / "src").string(), (dir_ / "target").string(), false}};
  auto rc = RunSh("cat " + (dir_ / "target" / "hello.txt").string() + " && echo new > " +
                      (dir_ / "target" / "written.txt").string(),
                  iso);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_EQ(*rc, 0) << Output();
  EXPECT_EQ(Output(), "from the source\n");
  EXPECT_TRUE(fs::is_empty(dir_ / "target"));                // the mount did not leak to the host
  EXPECT_TRUE(fs::exists(dir_ / "src" / "written.txt"));     // a rw bind writes through
}

TEST_F(Isolation, AReadOnlyBindMountRefusesWrites) {
  if (!Root()) GTEST_SKIP() << "needs root";
  worker::Isolation iso;
  iso.mount_namespace = true;
  iso.mounts = {{(dir_ / "src").string(), (dir_ / "target").string(), true}};
  auto rc = RunSh("cat " + (dir_ / "target" / "hello.txt").string() + " && touch " +
                      (dir_ / "target" / "nope").string() + " 2>&1",
                  iso);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_NE(*rc, 0);
  EXPECT_NE(Output().find("Read-only file system"), std::string::npos) << Output();
  EXPECT_FALSE(fs::exists(dir_ / "src" / "nope"));
}

TEST_F(Isolation, AMissingMountPointIsAnErrorNamingTheMount) {
  if (!Root()) GTEST_SKIP() << "needs root";
  worker::Isolation iso;
  iso.mount_namespace = true;
  iso.mounts = {{(dir_ / "src").string(), (dir_ / "no-such-dir").string(), false}};
  auto rc = RunSh("true", iso);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(rc.status().message().find("cannot bind-mount " + (dir_ / "src").string() + " on " +
                                       (dir_ / "no-such-dir").string()),
            std::string::npos)
      << rc.status().message();
}

TEST_F(Isolation, MountsWithoutAMountNamespaceAreRefused) {
  worker::Isolation iso;
  iso.mounts = {{(dir_ / "src").string(), (dir_ / "target").string(), false}};
  auto rc = RunSh("true", iso);
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(Isolation, ANetworkNamespaceHasOnlyLoopbackAndItIsUp) {
  if (!Root()) GTEST_SKIP() << "needs root";
  worker::Isolation iso;
  iso.network_namespace = true;
  // /proc/net/dev lists the interfaces of the reader's namespace; `ip` shows lo's state.
  auto rc = RunSh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ip -o link show lo | grep -c 'UP'", iso);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_EQ(*rc, 0) << Output();
  EXPECT_EQ(Output(), "lo\n1\n");
  // Without the namespace the host's interfaces show (at least lo and one more is typical, but
  // the only certain difference is that the namespace has nothing but lo).
}

TEST_F(Isolation, WithoutRootANamespaceIsRefusedWithAClearError) {
  if (Root()) GTEST_SKIP() << "runs as root: the refusal cannot happen here";
  worker::Isolation iso;
  iso.network_namespace = true;
  auto rc = RunSh("true", iso);
  ASSERT_FALSE(rc.ok());
  EXPECT_NE(rc.status().message().find("CLONE_NEWNET"), std::string::npos) << rc.status().message();
}

// Isolation::namespace_record: the child writes it before the program runs, so the program's
// first instruction already finds it; named after the namespace's inode, holding the text.
TEST_F(Isolation, TheNamespaceRecordIsThereBeforeTheProgramRuns) {
  if (!Root()) GTEST_SKIP() << "needs root";
  fs::create_directories(dir_ / "records");
  worker::Isolation iso;
  iso.mount_namespace = true;
  iso.mounts = {{(dir_ / "src").string(), (dir_ / "target").string(), false}};
  iso.namespace_record_dir = (dir_ / "records").string();
  iso.namespace_record = "1 2 /opt/ml\n";
  ProcessSpec spec;
  spec.argv = {"/bin/sh", "-c", "cat \"$0/$(readlink /proc/self/ns/mnt | tr -dc 0-9)\"; ls \"$0\" | wc -l",
               (dir_ / "records").string()};
  spec.env = {{"PATH", "/usr/bin:/bin"}};
  spec.isolation = iso;
  auto p = TrialProcess::Start(spec, [this](Stream, const std::string& l) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(l);
  });
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->namespace_record_error(), "");
  const ExitInfo exit = (*p)->Wait();
  EXPECT_EQ(exit.exit_code, 0) << Output();
  EXPECT_EQ(Output(), "1 2 /opt/ml\n1\n") << "the record, and nothing beside it (no temporary file)";
  ASSERT_NE(exit.mount_ns, 0u);
  EXPECT_TRUE(fs::exists(dir_ / "records" / std::to_string(exit.mount_ns))) << "its owner removes it, not the exit";
}

// A start that fails after the record was written leaves none; one that cannot write it runs
// anyway and says why.
TEST_F(Isolation, TheNamespaceRecordGoesWithAFailedStartAndItsOwnFailureIsOnlyReported) {
  if (!Root()) GTEST_SKIP() << "needs root";
  fs::create_directories(dir_ / "records");
  const fs::path script = dir_ / "no-interpreter-line";
  std::ofstream(script) << "echo this has no #! line\n";
  fs::permissions(script, fs::perms::owner_all);
  ProcessSpec spec;
  spec.argv = {script.string()};
  spec.isolation.mount_namespace = true;
  spec.isolation.namespace_record_dir = (dir_ / "records").string();
  spec.isolation.namespace_record = "1 2 /opt/ml\n";
  auto failed = TrialProcess::Start(spec, [](Stream, const std::string&) {});
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kInvalidArgument) << failed.status().ToString();
  EXPECT_TRUE(fs::is_empty(dir_ / "records")) << "exec failed: no program ran in that namespace";

  spec.argv = {"/bin/true"};
  spec.isolation.namespace_record_dir = (dir_ / "no-such-dir").string();
  auto p = TrialProcess::Start(spec, [](Stream, const std::string&) {});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_NE((*p)->namespace_record_error().find("cannot record the mount namespace of \"/bin/true\" in " +
                                                (dir_ / "no-such-dir").string() + " (create): No such file"),
            std::string::npos)
      << (*p)->namespace_record_error();
  EXPECT_EQ((*p)->Wait().exit_code, 0);
}

}  // namespace
}  // namespace hpo::worker
