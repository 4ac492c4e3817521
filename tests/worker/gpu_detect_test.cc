#include "worker/gpu_detect.h"

#include <sched.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "worker/agent.h"

namespace hpo::worker {
namespace {

TEST(GpuDetect, AMissingLibraryMeansNoGpusAndSaysWhy) {
  GpuDetection d = DetectGpus("libhpo-no-such-nvml.so.1");
  EXPECT_TRUE(d.devices.empty());
  EXPECT_NE(d.reason.find("libhpo-no-such-nvml.so.1 cannot be loaded"), std::string::npos) << d.reason;
}

TEST(GpuDetect, TheRealNvmlIsAbsentHereOrReportsItsDevices) {
  // On the build machines there is no driver: no devices, and the reason names the library.
  // On a GPU machine every device has a name.
  GpuDetection d = DetectGpus();
  if (d.devices.empty()) {
    EXPECT_NE(d.reason.find("no GPUs"), std::string::npos) << d.reason;
  } else {
    for (const auto& g : d.devices) EXPECT_FALSE(g.name.empty()) << g.index;
  }
}

TEST(GpuDetect, ReadsNameMemoryAndUuidOfEveryDeviceThroughNvml) {
  ::unsetenv("FAKE_NVML_FAIL_INIT");
  GpuDetection d = DetectGpus(HPO_FAKE_NVML);
  ASSERT_EQ(d.devices.size(), 2u) << d.reason;
  EXPECT_EQ(d.devices[0], (GpuDevice{0, "GPU-00000000-aaaa", "NVIDIA H200", 143771}));
  EXPECT_EQ(d.devices[1], (GpuDevice{1, "GPU-11111111-bbbb", "NVIDIA L4", 0}));  // memory unknown
  EXPECT_NE(d.reason.find("2 GPU(s)"), std::string::npos);
}

TEST(GpuDetect, AFailingNvmlInitMeansNoGpusWithTheNvmlError) {
  ::setenv("FAKE_NVML_FAIL_INIT", "1", 1);
  GpuDetection d = DetectGpus(HPO_FAKE_NVML);
  ::unsetenv("FAKE_NVML_FAIL_INIT");
  EXPECT_TRUE(d.devices.empty());
  EXPECT_NE(d.reason.find("nvmlInit failed: NVML error 9 (Driver Not Loaded)"), std::string::npos) << d.reason;
}

TEST(GpuDetect, ALibraryWithoutNvmlSymbolsIsNotTakenForNvml) {
  GpuDetection d = DetectGpus("libz.so.1");
  EXPECT_TRUE(d.devices.empty());
  EXPECT_NE(d.reason.find("not an NVML library"), std::string::npos) << d.reason;
}

TEST(GpuList, ParsesCommaSeparatedIndices) {
  auto l = ParseGpuList("0,1,3");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(*l, (std::vector<int>{0, 1, 3}));
}

TEST(GpuList, RejectsBlanksSignsWordsDuplicatesAndHugeIndices) {
  for (const char* bad : {"", "0,,1", "0, 1", "-1", "a", "1,1", "1024", "0x1", "1,"}) {
    auto l = ParseGpuList(bad);
    EXPECT_FALSE(l.ok()) << bad;
    if (!l.ok()) {
      EXPECT_NE(l.status().message().find("--gpus"), std::string::npos);
    }
  }
}

TEST(GpuList, AutoTakesEveryDetectedDeviceAndNoneTakesNothing) {
  GpuDetection two{{{0, "u0", "A", 1}, {1, "u1", "B", 2}}, "2 GPU(s)"};
  EXPECT_EQ(ResolveGpus("auto", two)->size(), 2u);
  EXPECT_TRUE(ResolveGpus("auto", GpuDetection{{}, "no GPUs"})->empty());
  EXPECT_TRUE(ResolveGpus("none", two)->empty());
}

TEST(GpuList, AListIsAnnotatedFromDetectionAndAnUnknownIndexIsRefused) {
  GpuDetection two{{{0, "u0", "A", 1}, {1, "u1", "B", 2}}, "2 GPU(s)"};
  auto one = ResolveGpus("1", two);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, (std::vector<GpuDevice>{{1, "u1", "B", 2}}));
  auto bad = ResolveGpus("0,2", two);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("device 2 does not exist"), std::string::npos);
  // Without NVML the list is taken as given.
  auto blind = ResolveGpus("4,5", GpuDetection{{}, "no GPUs"});
  ASSERT_TRUE(blind.ok());
  EXPECT_EQ(blind->size(), 2u);
  EXPECT_EQ((*blind)[1].index, 5);
}

// A worker given one CPU (a Slurm step under task/affinity, taskset) advertised every CPU of the
// machine, and its training jobs were told SM_NUM_CPUS of them while they shared one.
TEST(DetectCpus, CountsTheCpusThisProcessMayRunOn) {
  cpu_set_t saved;
  CPU_ZERO(&saved);
  ASSERT_EQ(::sched_getaffinity(0, sizeof saved, &saved), 0);
  EXPECT_EQ(DetectCpus(), static_cast<uint32_t>(CPU_COUNT(&saved)));
  int first = 0;
  while (!CPU_ISSET(first, &saved)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
  EXPECT_EQ(DetectCpus(), 1u);
  ASSERT_EQ(::sched_setaffinity(0, sizeof saved, &saved), 0);
}

}  // namespace
}  // namespace hpo::worker
