// The CUDA engine against the CPU reference (built only when HPO_WITH_CUDA).
//
// Without a usable GPU the parity tests skip with the reason (the CUDA error string); the
// availability test always runs and checks what `cuda` and `auto` do then.
//
// Tolerances (both engines compute in double; they differ only in summation order and in how the
// squared distance is formed, so observed differences are ~1e-12):
//   mean, variance, log EI, pool scores:  |cuda - cpu| <= 1e-6 * max(1, |cpu|)
//   log EI gradients:                     |cuda - cpu| <= 1e-5 * max(1, |cpu|)
//   SuggestBatch points (end to end):     max |cuda - cpu| <= 1e-4 per coordinate
//   the fit's likelihood (LikelihoodDevice): value and gradient within 1e-7 relative of
//                                         NegLogMarginalLikelihood (cuSOLVER's factor and
//                                         inverse against the host's blocked ones)
//   FitGp on the device:                  the log posterior it reaches within 0.5 of the
//                                         host fit's (rounding moves L-BFGS's path, and may
//                                         end it in a neighbouring optimum)
//   Ascend (the device loop):             log EI at each end within 1e-6 of the CPU engine's
//                                         at the same end; for 3 in 4 starts, within 1e-6 of
//                                         the CPU loop's own end (a step kept or undone on a
//                                         tie of rounding may send a start elsewhere)
//   DescendMean (the default on the device:  the mean at each end within 1e-6 of the CPU
//   log EI at a far incumbent, against the   engine's at the same end, never above the
//   CPU engine's mean alone)                 start's; for 3 in 4 starts, within 1e-6 of the
//                                         CPU engine's own end
#include "kernels/gp_engine.h"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "kernels/acquisition.h"
#include "kernels/cuda_engine_module.h"
#include "kernels/gp_model.h"
#include "kernels/random.h"

namespace hpo::kernels {
namespace {

constexpr double kValueTol = 1e-6;
constexpr double kGradTol = 1e-5;

Eigen::MatrixXd RandomPoints(int d, int n, Random& rng) {
  Eigen::MatrixXd x(d, n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < d; ++i) x(i, j) = rng.Uniform();
  return x;
}

Posterior RandomPosterior(int d, int n, bool warped, Random& rng) {
  const Eigen::MatrixXd x = RandomPoints(d, n, rng);
  Eigen::VectorXd y(n);
  for (int j = 0; j < n; ++j) y[j] = (x.col(j).array() - 0.3).square().sum() + 0.1 * std::sin(9 * x(0, j));
  const double mean = y.mean();
  const double sd = n > 1 ? std::sqrt((y.array() - mean).square().sum() / (n - 1)) : 1.0;
  y = (y.array() - mean) / (sd > 0 ? sd : 1.0);
  Hyperparameters hp;
  hp.log_lengthscale.resize(d);
  for (int i = 0; i < d; ++i) hp.log_lengthscale[i] = std::log(0.1 + 0.9 * rng.Uniform()) + 0.5 * std::log(double(d));
  hp.log_signal_variance = std::log(0.5 + 2.0 * rng.Uniform());
  hp.log_noise_variance = std::log(1e-4 + 1e-2 * rng.Uniform());
  if (warped) {
    hp.log_warp_a.resize(d);
    hp.log_warp_b.resize(d);
    for (int i = 0; i < d; ++i) {
      hp.log_warp_a[i] = i % 3 == 0 ? 0.0 : rng.Uniform() - 0.5;  // some coordinates not warped
      hp.log_warp_b[i] = i % 3 == 0 ? 0.0 : rng.Uniform() - 0.5;
    }
  }
  Posterior p;
  EXPECT_TRUE(BuildPosterior(x, y, hp, 0.0, 1.0, &p).ok());
  return p;
}

std::unique_ptr<GpEngine> Make(Device device) {
  std::unique_ptr<GpEngine> e;
  GpStatus st = MakeGpEngine(device, EngineOptions{}, &e, nullptr);
  EXPECT_TRUE(st.ok()) << st.message();
  return e;
}

bool Near(double cuda, double cpu, double tol) {
  if (cuda == cpu) return true;  // also equal infinities
  return std::abs(cuda - cpu) <= tol * std::max(1.0, std::abs(cpu));
}

void ExpectScoresNear(const PointScores& cuda, const PointScores& cpu, bool gradients, const std::string& what) {
  ASSERT_EQ(cuda.mean.size(), cpu.mean.size()) << what;
  int bad = 0;
  for (Eigen::Index j = 0; j < cpu.mean.size() && bad < 5; ++j) {
    const bool ok = Near(cuda.mean[j], cpu.mean[j], kValueTol) && Near(cuda.variance[j], cpu.variance[j], kValueTol) &&
                    Near(cuda.log_ei[j], cpu.log_ei[j], kValueTol);
    if (!ok) {
      ++bad;
      ADD_FAILURE() << what << " point " << j << ": mean " << cuda.mean[j] << " vs " << cpu.mean[j] << ", variance "
                    << cuda.variance[j] << " vs " << cpu.variance[j] << ", log EI " << cuda.log_ei[j] << " vs "
                    << cpu.log_ei[j];
    }
    if (!gradients) continue;
    for (Eigen::Index i = 0; i < cpu.log_ei_grad.rows(); ++i) {
      if (!Near(cuda.log_ei_grad(i, j), cpu.log_ei_grad(i, j), kGradTol)) {
        ++bad;
        ADD_FAILURE() << what << " gradient (" << i << ", " << j << "): " << cuda.log_ei_grad(i, j) << " vs "
                      << cpu.log_ei_grad(i, j);
        break;
      }
    }
  }
}

#define SKIP_WITHOUT_GPU()                                                         \
  do {                                                                             \
    const std::string reason = CudaUnavailableReason();                            \
    if (!reason.empty()) GTEST_SKIP() << "no usable GPU: " << reason;              \
  } while (0)

TEST(CudaEngine, SaysWhyWhenUnavailableAndAutoFallsBackToCpu) {
  const std::string reason = CudaUnavailableReason();
  std::unique_ptr<GpEngine> e;
  std::string note = "stale";
  GpStatus st = MakeGpEngine(Device::kCuda, EngineOptions{}, &e, &note);
  std::unique_ptr<GpEngine> a;
  GpStatus sa = MakeGpEngine(Device::kAuto, EngineOptions{}, &a, &note);
  ASSERT_TRUE(sa.ok()) << sa.message();
  if (reason.empty()) {
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(e->device(), Device::kCuda);
    EXPECT_NE(e->Describe().find("cuda"), std::string::npos) << e->Describe();
    EXPECT_EQ(a->device(), Device::kCuda);
    EXPECT_EQ(note, "");
  } else {
    // Here: the CUDA error (e.g. cudaErrorNoDevice / cudaErrorInsufficientDriver) is in the reason.
    EXPECT_NE(reason.find("CUDA"), std::string::npos) << reason;
    EXPECT_EQ(st.code(), GpStatus::Code::kUnavailable);
    EXPECT_NE(st.message().find(reason), std::string::npos) << st.message();
    EXPECT_EQ(a->device(), Device::kCpu);
    EXPECT_NE(note.find(reason), std::string::npos) << note;
  }
}

// Every /proc/self/maps line naming `what`.
int Mapped(const std::string& what) {
  std::ifstream maps("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(maps, line);) n += line.find(what) != std::string::npos;
  return n;
}

// The engine is a module (kernels/cuda_engine_module.h): nothing of cuBLAS is in a process until
// it asks for a GPU engine. Then, where the NVIDIA driver is, the module is loaded (here from the
// build tree) and answers for itself; where there is none (this CI machine), it is not loaded at
// all and the reason says so. Never "not found": the build tree's copy is found. Linked in,
// cuBLAS cost every hpo process about 220 MB resident and 80 ms at start.
TEST(CudaEngine, IsAModuleLoadedOnlyWhenAGpuEngineIsAskedForAndADriverIsThere) {
  // Where a GPU is, an earlier test of this process (the whole binary run at once, as
  // bench/gpu/run.sh does) has loaded the module: the check runs again in a fresh process.
  if (Mapped("hpo-cuda-engine.so") > 0 || Mapped("libcublas") > 0) {
    // (The path read here: in the shell std::system starts, /proc/self/exe is the shell.)
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    const int rc = std::system(("'" + self +
                                "' --gtest_filter=CudaEngine.IsAModuleLoadedOnlyWhenAGpuEngineIsAskedForAndADriverIsThere "
                                ">/dev/null 2>&1")
                                   .c_str());
    EXPECT_EQ(rc, 0) << "the check failed in a fresh process (run this test alone to see why)";
    return;
  }
  EXPECT_EQ(Mapped("libcublas"), 0) << "cuBLAS is mapped before any engine was asked for";
  EXPECT_EQ(Mapped("hpo-cuda-engine.so"), 0);
  std::unique_ptr<GpEngine> cpu;
  ASSERT_TRUE(MakeGpEngine(Device::kCpu, EngineOptions{}, &cpu, nullptr).ok());
  EXPECT_EQ(Mapped("hpo-cuda-engine.so"), 0) << "a CPU engine does not load the module";
  const std::string reason = CudaUnavailableReason();
  EXPECT_EQ(reason.find("not where it looks"), std::string::npos) << reason;
  EXPECT_EQ(reason.find("cannot load"), std::string::npos) << reason;
  if (reason.find("no NVIDIA driver") != std::string::npos) {
    EXPECT_EQ(Mapped("hpo-cuda-engine.so"), 0) << "loaded without a driver: " << reason;
    EXPECT_EQ(Mapped("libcublas"), 0) << reason;
  } else {
    EXPECT_GT(Mapped("hpo-cuda-engine.so"), 0) << reason;
    EXPECT_GT(Mapped("libcublas"), 0) << reason;
  }
}

// The module's one export, opened directly (whatever the driver): it is this build's (interface
// and sizes agree) and its functions answer. Without a device, making an engine says why, and
// the reason is the one CudaUnavailableReason gives once a driver is there.
TEST(CudaEngine, TheModulesEntryIsThisBuildsAndAnswers) {
  // The copy beside this program where there is one (bench/gpu/run.sh carries both in dist/ to
  // a machine without the build tree), else the build tree's.
  std::string path = HPO_CUDA_ENGINE_PATH;
  std::error_code ec;
  const std::filesystem::path beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / kCudaEngineModule;
  if (!ec && std::filesystem::exists(beside)) path = beside.string();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << ::dlerror();
  auto fn = reinterpret_cast<HpoCudaEngineEntryFn>(::dlsym(handle, kCudaEngineSymbol));
  ASSERT_NE(fn, nullptr);
  const CudaEngineEntry* entry = fn();
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->interface, kCudaEngineInterface);
  EXPECT_EQ(entry->options_size, sizeof(EngineOptions));
  EXPECT_EQ(entry->posterior_size, sizeof(Posterior));
  EXPECT_EQ(entry->engine_size, sizeof(GpEngine));
  const std::string reason = entry->unavailable_reason();
  std::unique_ptr<GpEngine> e;
  GpStatus st = entry->make(EngineOptions{}, &e);
  if (reason.empty()) {
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(e->device(), Device::kCuda);
  } else {
    EXPECT_NE(reason.find("CUDA"), std::string::npos) << reason;
    EXPECT_EQ(st.code(), GpStatus::Code::kUnavailable);
    EXPECT_NE(st.message().find(reason), std::string::npos) << st.message();
  }
}

TEST(CudaEngine, EvaluateMatchesCpuOnRandomShapes) {
  SKIP_WITHOUT_GPU();
  Random rng(11);
  const int shapes[][3] = {{1, 1, 1}, {1, 7, 300}, {3, 60, 700}, {7, 300, 1000}, {20, 1000, 4096}, {20, 2000, 512},
                           {5, 33, 70000}};  // the last crosses the 65535-column grid limit
  for (const auto& s : shapes) {
    for (bool warped : {false, true}) {
      const int d = s[0], n = s[1], m = s[2];
      const std::string what = "d=" + std::to_string(d) + " n=" + std::to_string(n) + " m=" + std::to_string(m) +
                               (warped ? " warped" : "");
      const Posterior p = RandomPosterior(d, n, warped, rng);
      auto cpu = Make(Device::kCpu);
      auto cuda = Make(Device::kCuda);
      ASSERT_TRUE(cpu->Load(p, 0).ok());
      GpStatus st = cuda->Load(p, 0);
      ASSERT_TRUE(st.ok()) << st.message();
      const Eigen::MatrixXd q = RandomPoints(d, m, rng);
      PointScores a, b;
      ASSERT_TRUE(cpu->Evaluate(q, p.incumbent, false, &a).ok());
      st = cuda->Evaluate(q, p.incumbent, false, &b);
      ASSERT_TRUE(st.ok()) << st.message();
      ExpectScoresNear(b, a, false, what);
      // Gradients on a small batch (as local refinement asks for them).
      const Eigen::MatrixXd qg = q.leftCols(std::min(m, 40));
      ASSERT_TRUE(cpu->Evaluate(qg, p.incumbent, true, &a).ok());
      st = cuda->Evaluate(qg, p.incumbent, true, &b);
      ASSERT_TRUE(st.ok()) << st.message();
      ExpectScoresNear(b, a, true, what + " gradients");
      // An incumbent far below the data: log EI deep in the asymptotic regime, still finite.
      ASSERT_TRUE(cpu->Evaluate(qg, p.incumbent - 80.0, false, &a).ok());
      ASSERT_TRUE(cuda->Evaluate(qg, p.incumbent - 80.0, false, &b).ok());
      ExpectScoresNear(b, a, false, what + " far incumbent");
    }
  }
}

TEST(CudaEngine, SmallBatchesGiveTheSameResults) {
  SKIP_WITHOUT_GPU();
  Random rng(12);
  const Posterior p = RandomPosterior(6, 150, true, rng);
  auto whole = Make(Device::kCuda);
  ::setenv("HPO_CUDA_BATCH_COLUMNS", "7", 1);  // read when the engine is made
  auto small = Make(Device::kCuda);
  ::unsetenv("HPO_CUDA_BATCH_COLUMNS");
  ASSERT_TRUE(whole->Load(p, 0).ok());
  ASSERT_TRUE(small->Load(p, 0).ok());
  const Eigen::MatrixXd q = RandomPoints(6, 100, rng);
  for (bool gradients : {false, true}) {
    PointScores a, b;
    ASSERT_TRUE(whole->Evaluate(q, p.incumbent, gradients, &a).ok());
    ASSERT_TRUE(small->Evaluate(q, p.incumbent, gradients, &b).ok());
    ExpectScoresNear(b, a, gradients, gradients ? "batches of 7, gradients" : "batches of 7");
  }
}

TEST(CudaEngine, PoolRankingAndFantasiesMatchCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(13);
  for (int n : {5, 200, 1200}) {
    const int d = 4 + n % 7;
    const Posterior p = RandomPosterior(d, n, n == 200, rng);
    auto cpu = Make(Device::kCpu);
    auto cuda = Make(Device::kCuda);
    // reserve 1: the second fantasy makes both engines grow their capacity.
    ASSERT_TRUE(cpu->Load(p, 1).ok());
    ASSERT_TRUE(cuda->Load(p, 1).ok());
    const Eigen::MatrixXd pool = RandomPoints(d, 3000, rng), more = RandomPoints(d, 500, rng);
    ASSERT_TRUE(cpu->SetPool(pool).ok());
    ASSERT_TRUE(cuda->SetPool(pool).ok());
    ASSERT_TRUE(cpu->ExtendPool(more).ok());
    ASSERT_TRUE(cuda->ExtendPool(more).ok());
    ASSERT_EQ(cuda->PoolSize(), 3500u);
    double incumbent = p.incumbent;
    for (int round = 0; round < 6; ++round) {
      const std::string what = "n=" + std::to_string(n) + " round " + std::to_string(round);
      std::vector<RankedCandidate> a, b;
      ASSERT_TRUE(cpu->PoolTopK(incumbent, 10, &a).ok());
      GpStatus st = cuda->PoolTopK(incumbent, 10, &b);
      ASSERT_TRUE(st.ok()) << st.message();
      ASSERT_EQ(a.size(), b.size()) << what;
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_EQ(b[i].index, a[i].index) << what << " rank " << i;
        EXPECT_TRUE(Near(b[i].log_ei, a[i].log_ei, kValueTol)) << what << ": " << b[i].log_ei << " vs " << a[i].log_ei;
        EXPECT_TRUE(Near(b[i].mean, a[i].mean, kValueTol)) << what;
        EXPECT_TRUE(Near(b[i].variance, a[i].variance, kValueTol)) << what;
      }
      // Fresh evaluation under the fantasies agrees too (alpha and the factor were extended).
      const Eigen::MatrixXd probe = RandomPoints(d, 64, rng);
      PointScores pa, pb;
      ASSERT_TRUE(cpu->Evaluate(probe, incumbent, round % 2 == 1, &pa).ok());
      ASSERT_TRUE(cuda->Evaluate(probe, incumbent, round % 2 == 1, &pb).ok());
      ExpectScoresNear(pb, pa, round % 2 == 1, what + " evaluate");
      // Kriging believer at the best pool point (the CPU's mean, so both condition on the same y).
      const Eigen::VectorXd x = (a[0].index < 3000 ? pool.col(a[0].index) : more.col(a[0].index - 3000));
      const double y = a[0].mean;
      ASSERT_TRUE(cpu->Fantasize(x, y).ok());
      st = cuda->Fantasize(x, y);
      ASSERT_TRUE(st.ok()) << st.message();
      incumbent = std::min(incumbent, y);
      EXPECT_EQ(cuda->TrainingSize(), cpu->TrainingSize());
    }
    // A duplicate of a training point with tiny noise is refused the same way by both.
    const Eigen::VectorXd dup = p.inputs.col(0);
    GpStatus sc = cpu->Fantasize(dup, p.y[0]);
    GpStatus sg = cuda->Fantasize(dup, p.y[0]);
    EXPECT_EQ(sc.code(), sg.code()) << sc.message() << " / " << sg.message();
  }
}

// ReleasePool gives the pool's device memory back (the strategy calls it after every batch; a
// job's engine lives as long as its record), and a fantasy and a new pool after it score as on
// the CPU engine. After a duplicate point is refused (a pivot that is not positive), the engine
// still holds its posterior.
TEST(CudaEngine, ReleasingThePoolFreesItAndTheNextPoolMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(18);
  const Posterior p = RandomPosterior(5, 300, true, rng);
  auto cpu = Make(Device::kCpu);
  auto cuda = Make(Device::kCuda);
  ASSERT_TRUE(cpu->Load(p, 2).ok());
  ASSERT_TRUE(cuda->Load(p, 2).ok());
  const Eigen::MatrixXd pool = RandomPoints(5, 2000, rng);
  ASSERT_TRUE(cuda->SetPool(pool).ok());
  cuda->ReleasePool();
  EXPECT_EQ(cuda->PoolSize(), 0u);
  std::vector<RankedCandidate> none;
  ASSERT_TRUE(cuda->PoolTopK(p.incumbent, 5, &none).ok());
  EXPECT_TRUE(none.empty());
  const Eigen::VectorXd f = RandomPoints(5, 1, rng).col(0);
  ASSERT_TRUE(cpu->Fantasize(f, p.incumbent - 0.2).ok());
  ASSERT_TRUE(cuda->Fantasize(f, p.incumbent - 0.2).ok());  // no pool to update
  EXPECT_EQ(cuda->Fantasize(p.inputs.col(0), p.y[0]).code(), cpu->Fantasize(p.inputs.col(0), p.y[0]).code());
  EXPECT_EQ(cuda->TrainingSize(), cpu->TrainingSize());
  ASSERT_TRUE(cpu->SetPool(pool).ok());
  ASSERT_TRUE(cuda->SetPool(pool).ok());
  ASSERT_EQ(cuda->PoolSize(), 2000u);
  std::vector<RankedCandidate> a, b;
  ASSERT_TRUE(cpu->PoolTopK(p.incumbent - 0.2, 10, &a).ok());
  ASSERT_TRUE(cuda->PoolTopK(p.incumbent - 0.2, 10, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].index, a[i].index) << "rank " << i;
    EXPECT_TRUE(Near(b[i].log_ei, a[i].log_ei, kValueTol)) << b[i].log_ei << " vs " << a[i].log_ei;
  }
}

TEST(CudaEngine, RejectsBadInputLikeCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(14);
  auto cuda = Make(Device::kCuda);
  PointScores s;
  EXPECT_EQ(cuda->Evaluate(Eigen::MatrixXd::Zero(2, 3), 0.0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  Posterior p = RandomPosterior(3, 10, false, rng);
  ASSERT_TRUE(cuda->Load(p, 0).ok());
  EXPECT_EQ(cuda->Evaluate(Eigen::MatrixXd::Zero(2, 3), 0.0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  Eigen::MatrixXd bad = Eigen::MatrixXd::Zero(3, 2);
  bad(1, 1) = std::nan("");
  EXPECT_EQ(cuda->Evaluate(bad, 0.0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  p.alpha.resize(3);
  EXPECT_EQ(cuda->Load(p, 0).code(), GpStatus::Code::kInvalidArgument);
}

// The ascent of GpEngine::Ascend on the device (one call, no copy between rounds) against the
// CPU engine's host loop: the same climb, held coordinates held, and what it reports is what
// the CPU engine computes at the points it reached. Also through the fallbacks: starts that do
// not fit one batch of columns, and HPO_CUDA_ASCENT=host.
TEST(CudaEngine, AscendMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(16);
  struct Shape {
    int d, n, s;
    bool warped;
    int iterations;
  };
  const Shape shapes[] = {{1, 5, 1, false, 30}, {3, 50, 4, false, 10}, {8, 300, 16, true, 30},
                          {20, 1000, 16, true, 30}, {20, 1000, 4, false, 10}, {6, 120, 40, true, 15}};
  ::setenv("HPO_CUDA_ASCENT", "host", 1);  // read when the engine is made
  auto host_loop = Make(Device::kCuda);
  ::unsetenv("HPO_CUDA_ASCENT");
  ::setenv("HPO_CUDA_BATCH_COLUMNS", "7", 1);
  auto small = Make(Device::kCuda);  // 16 starts do not fit 7 columns: the host loop
  ::unsetenv("HPO_CUDA_BATCH_COLUMNS");
  for (const Shape& sh : shapes) {
    const std::string what = "d=" + std::to_string(sh.d) + " n=" + std::to_string(sh.n) + " s=" +
                             std::to_string(sh.s) + (sh.warped ? " warped" : "");
    const Posterior p = RandomPosterior(sh.d, sh.n, sh.warped, rng);
    auto cpu = Make(Device::kCpu);
    auto cuda = Make(Device::kCuda);
    const Eigen::VectorXd fantasy = RandomPoints(sh.d, 1, rng).col(0);
    for (GpEngine* e : {cpu.get(), cuda.get(), host_loop.get(), small.get()}) {
      ASSERT_TRUE(e->Load(p, 1).ok()) << what;
      ASSERT_TRUE(e->Fantasize(fantasy, p.incumbent - 0.1).ok()) << what;  // the loop runs on fantasies too
    }
    Eigen::MatrixXd starts = RandomPoints(sh.d, sh.s, rng);
    starts(0, 0) = 0.0;  // a start on a face
    std::vector<uint8_t> movable(static_cast<size_t>(sh.d * sh.s), 1);
    for (int i = 1; i < sh.s; i += 3) movable[static_cast<size_t>(i * sh.d + (i % sh.d))] = 0;
    const double tau = p.incumbent - 0.1;
    Eigen::MatrixXd a_end, b_end;
    Eigen::VectorXd a_f, b_f;
    ASSERT_TRUE(cpu->Ascend(starts, movable, tau, sh.iterations, &a_end, &a_f).ok()) << what;
    for (GpEngine* e : {cuda.get(), host_loop.get(), small.get()}) {
      const std::string which =
          what + (e == cuda.get() ? " device loop" : e == small.get() ? " batches of 7" : " host loop");
      GpStatus st = e->Ascend(starts, movable, tau, sh.iterations, &b_end, &b_f);
      ASSERT_TRUE(st.ok()) << which << ": " << st.message();
      ASSERT_EQ(b_end.rows(), sh.d) << which;
      ASSERT_EQ(b_end.cols(), sh.s) << which;
      ASSERT_EQ(b_f.size(), sh.s) << which;
      EXPECT_GE(b_end.minCoeff(), 0.0) << which;
      EXPECT_LE(b_end.maxCoeff(), 1.0) << which;
      PointScores at_start, at_end;
      ASSERT_TRUE(cpu->Evaluate(starts, tau, false, &at_start).ok());
      ASSERT_TRUE(cpu->Evaluate(b_end, tau, false, &at_end).ok());
      int same = 0;
      for (int i = 0; i < sh.s; ++i) {
        for (int c = 0; c < sh.d; ++c) {
          if (!movable[static_cast<size_t>(i * sh.d + c)]) {
            EXPECT_EQ(b_end(c, i), starts(c, i)) << which << " start " << i;
          }
        }
        EXPECT_TRUE(Near(b_f[i], at_end.log_ei[i], kValueTol)) << which << " start " << i << ": " << b_f[i] << " vs "
                                                               << at_end.log_ei[i];
        EXPECT_GE(b_f[i], at_start.log_ei[i] - kValueTol * std::max(1.0, std::abs(at_start.log_ei[i])))
            << which << " start " << i;
        if (Near(b_f[i], a_f[i], kValueTol)) ++same;
      }
      EXPECT_GE(4 * same, 3 * sh.s) << which << ": " << same << " of " << sh.s << " starts end where the CPU's do";
    }
  }
}

// The exploit member's refinement: the CUDA engine climbs log EI at the far incumbent in its
// device loop (GpEngine::DescendMean's default), the CPU engine follows the mean alone; both must
// reach the same minima of the mean.
TEST(CudaEngine, DescendMeanMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(17);
  struct Shape {
    int d, n, s;
    bool warped;
  };
  const Shape shapes[] = {{2, 30, 4, false}, {8, 300, 8, true}, {20, 1000, 8, true}};
  for (const Shape& sh : shapes) {
    const std::string what = "d=" + std::to_string(sh.d) + " n=" + std::to_string(sh.n) + (sh.warped ? " warped" : "");
    const Posterior p = RandomPosterior(sh.d, sh.n, sh.warped, rng);
    auto cpu = Make(Device::kCpu);
    auto cuda = Make(Device::kCuda);
    const Eigen::VectorXd fantasy = RandomPoints(sh.d, 1, rng).col(0);
    for (GpEngine* e : {cpu.get(), cuda.get()}) {
      ASSERT_TRUE(e->Load(p, 1).ok()) << what;
      ASSERT_TRUE(e->Fantasize(fantasy, p.incumbent - 0.1).ok()) << what;
    }
    Eigen::MatrixXd starts = RandomPoints(sh.d, sh.s, rng);
    starts(0, 0) = 0.0;  // a start on a face
    const double tau = p.incumbent + kExploitOffset;
    Eigen::MatrixXd a_end, b_end;
    Eigen::VectorXd a_mean, b_mean;
    ASSERT_TRUE(cpu->DescendMean(starts, {}, tau, 60, &a_end, &a_mean).ok()) << what;
    GpStatus st = cuda->DescendMean(starts, {}, tau, 60, &b_end, &b_mean);
    ASSERT_TRUE(st.ok()) << what << ": " << st.message();
    ASSERT_EQ(b_end.rows(), sh.d) << what;
    ASSERT_EQ(b_end.cols(), sh.s) << what;
    PointScores at_start, at_end;
    ASSERT_TRUE(cpu->Evaluate(starts, tau, false, &at_start).ok());
    ASSERT_TRUE(cpu->Evaluate(b_end, tau, false, &at_end).ok());
    int same = 0;
    for (int i = 0; i < sh.s; ++i) {
      EXPECT_TRUE(Near(b_mean[i], at_end.mean[i], kValueTol)) << what << " start " << i;
      EXPECT_LE(b_mean[i], at_start.mean[i] + kValueTol * std::max(1.0, std::abs(at_start.mean[i]))) << what;
      if (Near(b_mean[i], a_mean[i], kValueTol)) ++same;
    }
    EXPECT_GE(4 * same, 3 * sh.s) << what << ": " << same << " of " << sh.s << " starts end where the CPU's do";
  }
}

TEST(CudaEngine, SuggestBatchMatchesCpu) {
  SKIP_WITHOUT_GPU();
  Random rng(15);
  const Posterior p = RandomPosterior(8, 400, false, rng);
  AcquisitionOptions o;
  o.seed = 5;
  o.pending = {RandomPoints(8, 1, rng).col(0), RandomPoints(8, 1, rng).col(0)};
  auto cpu = Make(Device::kCpu);
  auto cuda = Make(Device::kCuda);
  for (size_t exploit : {AcquisitionOptions::kNoMember, size_t{2}}) {  // and with a member by the mean
    o.exploit_member = exploit;
    Batch a, b;
    ASSERT_TRUE(SuggestBatch(*cpu, p, 6, o, &a, nullptr).ok());
    GpStatus st = SuggestBatch(*cuda, p, 6, o, &b, nullptr);
    ASSERT_TRUE(st.ok()) << st.message();
    ASSERT_EQ(a.points.size(), b.points.size());
    for (size_t i = 0; i < a.points.size(); ++i) {
      EXPECT_LT((a.points[i] - b.points[i]).cwiseAbs().maxCoeff(), 1e-4) << "batch member " << i << " exploit " << exploit;
      EXPECT_TRUE(Near(b.log_ei[i], a.log_ei[i], 1e-4)) << b.log_ei[i] << " vs " << a.log_ei[i];
    }
  }
}

// The fit's likelihood on the device against the host's, with and without warping (one warped
// coordinate at the identity), value only and with the gradient, at fit sizes around a
// 256-thread block's edges.
TEST(CudaEngine, LikelihoodMatchesCpu) {
  SKIP_WITHOUT_GPU();
  auto cuda = Make(Device::kCuda);
  std::vector<LikelihoodDevice*> devices;
  std::string why;
  cuda->LikelihoodDevices(2, &devices, &why);
  ASSERT_EQ(devices.size(), 2u) << why;
  Random rng(23);
  for (const int n : {1, 37, 200, 257}) {
    for (const bool warped : {false, true}) {
      const int d = 6;
      const Eigen::MatrixXd x = RandomPoints(d, n, rng);
      Eigen::VectorXd y(n);
      for (int j = 0; j < n; ++j) y[j] = std::sin(4 * x(0, j)) + (x.col(j).array() - 0.5).square().sum();
      y = (y.array() - y.mean()).matrix();
      WarpMask mask;
      if (warped) mask = {1, 0, 1, 1, 0, 1};
      LikelihoodDevice* device = devices[warped ? 1 : 0];
      GpStatus st = device->Load(x, y, mask);
      ASSERT_TRUE(st.ok()) << st.message();
      Eigen::VectorXd lower, upper;
      HyperparameterBounds(d, mask, &lower, &upper);
      for (int trial = 0; trial < 3; ++trial) {
        SCOPED_TRACE("n " + std::to_string(n) + (warped ? ", warped" : "") + ", trial " + std::to_string(trial));
        Eigen::VectorXd theta(lower.size());
        for (Eigen::Index i = 0; i < theta.size(); ++i) {
          theta[i] = lower[i] + (upper[i] - lower[i]) * (0.3 + 0.4 * rng.Uniform());
        }
        theta[d + 1] = std::log(1e-3);
        if (warped && trial == 1) theta[d + 2] = theta[d + 2 + 4] = 0.0;  // the identity warp
        Eigen::VectorXd host_grad, device_grad;
        const double host = NegLogMarginalLikelihood(x, y, theta, mask, false, &host_grad);
        double value = 0;
        st = device->Evaluate(theta, &value, &device_grad);
        ASSERT_TRUE(st.ok()) << st.message();
        EXPECT_TRUE(Near(value, host, 1e-7)) << value << " vs " << host;
        ASSERT_EQ(device_grad.size(), host_grad.size());
        for (Eigen::Index i = 0; i < host_grad.size(); ++i) {
          EXPECT_TRUE(Near(device_grad[i], host_grad[i], 1e-7)) << "entry " << i << ": " << device_grad[i] << " vs "
                                                                << host_grad[i];
        }
        double value_only = 0;
        ASSERT_TRUE(device->Evaluate(theta, &value_only, nullptr).ok());
        EXPECT_TRUE(Near(value_only, host, 1e-7)) << value_only << " vs " << host;
      }
      double ignored = 0;
      Eigen::VectorXd g;
      EXPECT_EQ(device->Evaluate(Eigen::VectorXd::Zero(3), &ignored, &g).code(), GpStatus::Code::kInvalidArgument);
    }
  }
}

// FitGp with the CUDA engine: every start's evaluations on the device, the fit as good as the
// host's; HPO_CUDA_FIT=host keeps it on the host and says so.
TEST(CudaEngine, FitOnTheDeviceMatchesTheHostFit) {
  SKIP_WITHOUT_GPU();
  Random rng(29);
  const int d = 8, n = 300;
  const Eigen::MatrixXd x = RandomPoints(d, n, rng);
  Eigen::VectorXd y(n);
  for (int j = 0; j < n; ++j) y[j] = std::sin(6 * x(1, j)) + (x.col(j).array() - 0.3).square().sum();
  FitOptions o;
  o.seed = 4;
  o.warp_mask = WarpMask(d, 1);
  Posterior host, device;
  FitReport host_report, device_report;
  ASSERT_TRUE(FitGp(x, y, o, &host, &host_report).ok());
  auto cuda = Make(Device::kCuda);
  o.engine = cuda.get();
  GpStatus st = FitGp(x, y, o, &device, &device_report);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(device_report.device_note, "");
  EXPECT_EQ(device_report.device_evaluations, device_report.evaluations);
  EXPECT_NEAR(device_report.neg_log_posterior, host_report.neg_log_posterior, 0.5);
  // The same engine again (its devices kept), then with the switch.
  ASSERT_TRUE(FitGp(x, y, o, &device, &device_report).ok());
  EXPECT_EQ(device_report.device_evaluations, device_report.evaluations);
  setenv("HPO_CUDA_FIT", "host", 1);
  ASSERT_TRUE(FitGp(x, y, o, &device, &device_report).ok());
  unsetenv("HPO_CUDA_FIT");
  EXPECT_EQ(device_report.device_evaluations, 0);
  EXPECT_EQ(device_report.device_note, "HPO_CUDA_FIT=host");
}

}  // namespace
}  // namespace hpo::kernels
