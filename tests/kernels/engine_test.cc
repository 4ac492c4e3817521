#include "kernels/gp_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include <Eigen/LU>

#include "kernels/acquisition.h"
#include "kernels/ascent_step.h"  // the step lengths every Ascend and DescendMean share
#include "kernels/gp_model.h"
#include "kernels/log_ei.h"
#include "kernels/random.h"
#include "tests/kernels/test_data.h"

namespace hpo::kernels {
namespace {

using testing::RandomPoints;

Eigen::VectorXd Bowl(const Eigen::MatrixXd& x) {
  Eigen::VectorXd y(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) y[j] = (x.col(j).array() - 0.3).square().sum() + 0.1 * std::sin(9 * x(0, j));
  return y;
}

Posterior SomePosterior(int d, int n, bool warped, uint64_t seed) {
  const Eigen::MatrixXd x = RandomPoints(d, n, seed);
  Eigen::VectorXd y = Bowl(x);
  y = (y.array() - y.mean()) / 0.3;
  Hyperparameters hp;
  hp.log_lengthscale = Eigen::VectorXd::LinSpaced(d, std::log(0.2), std::log(0.6));
  hp.log_signal_variance = std::log(1.5);
  hp.log_noise_variance = std::log(1e-4);
  if (warped) {
    hp.log_warp_a = Eigen::VectorXd::LinSpaced(d, -0.5, 0.5);
    hp.log_warp_b = Eigen::VectorXd::LinSpaced(d, 0.4, -0.2);
  }
  Posterior p;
  EXPECT_TRUE(BuildPosterior(x, y, hp, 0.0, 1.0, &p).ok());
  return p;
}

std::unique_ptr<GpEngine> Cpu(int threads = 0) {
  std::unique_ptr<GpEngine> e;
  EngineOptions o;
  o.threads = threads;
  EXPECT_TRUE(MakeGpEngine(Device::kCpu, o, &e, nullptr).ok());
  return e;
}

// Reference: the dense formulas with an explicit inverse.
void DenseMeanVar(const Posterior& p, const Eigen::MatrixXd& q, Eigen::VectorXd* mean, Eigen::VectorXd* var) {
  Eigen::MatrixXd k = KernelMatrix(p.hp, p.inputs, p.inputs);
  k.diagonal().array() += p.noise_variance();
  const Eigen::MatrixXd kinv = k.inverse();
  const Eigen::MatrixXd ks = KernelMatrix(p.hp, p.inputs, q);
  *mean = ks.transpose() * kinv * p.y;
  var->resize(q.cols());
  for (Eigen::Index j = 0; j < q.cols(); ++j) (*var)[j] = std::exp(p.hp.log_signal_variance) - ks.col(j).dot(kinv * ks.col(j));
}

// Central differences (step 1e-6) of the engine's posterior mean and log EI below `tau` at x.
void CentralDifferences(GpEngine& e, const Eigen::VectorXd& x, double tau, Eigen::VectorXd* d_mean,
                        Eigen::VectorXd* d_log_ei) {
  const double h = 1e-6;
  d_mean->resize(x.size());
  d_log_ei->resize(x.size());
  for (Eigen::Index d = 0; d < x.size(); ++d) {
    Eigen::MatrixXd xp = x, xm = x;
    xp(d, 0) += h;
    xm(d, 0) -= h;
    PointScores sp, sm;
    ASSERT_TRUE(e.Evaluate(xp, tau, false, &sp).ok());
    ASSERT_TRUE(e.Evaluate(xm, tau, false, &sm).ok());
    (*d_mean)[d] = (sp.mean[0] - sm.mean[0]) / (2 * h);
    (*d_log_ei)[d] = (sp.log_ei[0] - sm.log_ei[0]) / (2 * h);
  }
}

TEST(CpuEngine, EvaluateMatchesTheDenseComputationOnManyChunks) {
  for (bool warped : {false, true}) {
    const Posterior p = SomePosterior(4, 60, warped, 1);
    auto e = Cpu();
    ASSERT_TRUE(e->Load(p, 0).ok());
    const Eigen::MatrixXd q = RandomPoints(4, 700, 2);  // three chunks
    PointScores s;
    ASSERT_TRUE(e->Evaluate(q, p.incumbent, false, &s).ok());
    Eigen::VectorXd mean, var;
    DenseMeanVar(p, q, &mean, &var);
    EXPECT_LT((s.mean - mean).cwiseAbs().maxCoeff(), 1e-7);
    EXPECT_LT((s.variance - var.cwiseMax(1e-12 * 1.5)).cwiseAbs().maxCoeff(), 1e-7);
    for (int j = 0; j < 700; j += 37) {
      EXPECT_NEAR(s.log_ei[j], LogExpectedImprovement(mean[j], std::max(var[j], 1e-12 * 1.5), p.incumbent, nullptr, nullptr),
                  1e-5 * std::max(1.0, std::fabs(s.log_ei[j])));
    }
  }
}

TEST(PosteriorMeanAlone, MatchesTheDenseComputationAndTheEngine) {
  for (bool warped : {false, true}) {
    const Posterior p = SomePosterior(5, 80, warped, 11);
    const Eigen::MatrixXd q = RandomPoints(5, 2500, 12);  // three chunks
    Eigen::MatrixXd edges = q.leftCols(8);
    edges.row(0).setZero();  // points on the faces of the cube and on a training input
    edges.row(1).setOnes();
    edges.col(7) = p.inputs.col(3);
    Eigen::VectorXd mean, var;
    DenseMeanVar(p, q, &mean, &var);
    const Eigen::VectorXd fast = PosteriorMean(p, q);
    ASSERT_EQ(fast.size(), 2500);
    EXPECT_LT((fast - mean).cwiseAbs().maxCoeff(), 1e-7);
    auto e = Cpu();
    ASSERT_TRUE(e->Load(p, 0).ok());
    PointScores s;
    ASSERT_TRUE(e->Evaluate(edges, p.incumbent, false, &s).ok());
    EXPECT_LT((PosteriorMean(p, edges) - s.mean).cwiseAbs().maxCoeff(), 1e-9);
  }
}

TEST(CpuEngine, LogEiGradientMatchesFiniteDifferences) {
  for (bool warped : {false, true}) {
    const Posterior p = SomePosterior(3, 40, warped, 3);
    auto e = Cpu();
    ASSERT_TRUE(e->Load(p, 0).ok());
    const Eigen::MatrixXd q = RandomPoints(3, 6, 4).array() * 0.8 + 0.1;
    PointScores s;
    ASSERT_TRUE(e->Evaluate(q, p.incumbent, true, &s).ok());
    ASSERT_EQ(s.log_ei_grad.rows(), 3);
    for (int j = 0; j < 6; ++j) {
      Eigen::VectorXd d_mean, d_log_ei;
      CentralDifferences(*e, q.col(j), p.incumbent, &d_mean, &d_log_ei);
      for (int d = 0; d < 3; ++d) {
        const double fd = d_log_ei[d];
        EXPECT_NEAR(s.log_ei_grad(d, j), fd, 1e-4 * std::max(1.0, std::fabs(fd))) << "point " << j << " dim " << d;
      }
    }
  }
}

TEST(CpuEngine, FantasiesUpdateThePoolLikeAFullRefit) {
  const Posterior p = SomePosterior(3, 50, true, 5);
  auto e = Cpu();
  ASSERT_TRUE(e->Load(p, 2).ok());
  const Eigen::MatrixXd pool = RandomPoints(3, 300, 6);
  ASSERT_TRUE(e->SetPool(pool).ok());
  const Eigen::MatrixXd f = RandomPoints(3, 3, 7);  // three fantasies: one more than reserved
  const double ys[3] = {-1.0, 0.5, -2.0};
  Posterior ref = p;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(e->Fantasize(f.col(i), ys[i]).ok());
    ASSERT_TRUE(AppendObservation(&ref, f.col(i), ys[i]).ok());
  }
  EXPECT_EQ(e->TrainingSize(), 53u);
  std::vector<RankedCandidate> top;
  ASSERT_TRUE(e->PoolTopK(ref.incumbent, 300, &top).ok());
  ASSERT_EQ(top.size(), 300u);
  Eigen::VectorXd mean, var;
  DenseMeanVar(ref, pool, &mean, &var);
  for (const RankedCandidate& c : top) {
    EXPECT_NEAR(c.mean, mean[c.index], 1e-7);
    EXPECT_NEAR(c.variance, std::max(var[c.index], 1.5e-12), 1e-7);
  }
  for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1].log_ei, top[i].log_ei);
  // Evaluate after fantasies agrees with the pool.
  PointScores s;
  ASSERT_TRUE(e->Evaluate(pool.col(top[0].index), ref.incumbent, false, &s).ok());
  EXPECT_NEAR(s.mean[0], top[0].mean, 1e-9);
  EXPECT_NEAR(s.variance[0], top[0].variance, 1e-9);
}

// The pool's memory goes back between batches (a soak saw every ended Bayesian job keep its
// last pool, about 1.3 MiB each); a fantasy without a pool and a new pool after it still work,
// with the same scores as an engine that never released one.
TEST(CpuEngine, ReleasingThePoolFreesItAndTheNextPoolScoresTheSame) {
  const Posterior p = SomePosterior(3, 50, true, 5);
  auto e = Cpu();
  auto fresh = Cpu();
  ASSERT_TRUE(e->Load(p, 2).ok());
  ASSERT_TRUE(fresh->Load(p, 2).ok());
  const Eigen::MatrixXd pool = RandomPoints(3, 300, 6);
  ASSERT_TRUE(e->SetPool(pool).ok());
  e->ReleasePool();
  EXPECT_EQ(e->PoolSize(), 0u);
  const Eigen::MatrixXd f = RandomPoints(3, 1, 7);
  ASSERT_TRUE(e->Fantasize(f.col(0), -1.0).ok());
  ASSERT_TRUE(fresh->Fantasize(f.col(0), -1.0).ok());
  ASSERT_TRUE(e->SetPool(pool).ok());
  ASSERT_TRUE(fresh->SetPool(pool).ok());
  std::vector<RankedCandidate> a, b;
  ASSERT_TRUE(e->PoolTopK(p.incumbent, 20, &a).ok());
  ASSERT_TRUE(fresh->PoolTopK(p.incumbent, 20, &b).ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, b[i].index) << i;
    EXPECT_DOUBLE_EQ(a[i].log_ei, b[i].log_ei) << i;
  }
}

TEST(CpuEngine, ResultsDoNotDependOnTheThreadCount) {
  const Posterior p = SomePosterior(5, 80, true, 8);
  const Eigen::MatrixXd q = RandomPoints(5, 1000, 9);
  PointScores a, b;
  auto e1 = Cpu(1), e2 = Cpu(2);
  ASSERT_TRUE(e1->Load(p, 0).ok());
  ASSERT_TRUE(e2->Load(p, 0).ok());
  ASSERT_TRUE(e1->Evaluate(q, p.incumbent, true, &a).ok());
  ASSERT_TRUE(e2->Evaluate(q, p.incumbent, true, &b).ok());
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.variance, b.variance);
  EXPECT_EQ(a.log_ei_grad, b.log_ei_grad);
}

TEST(CpuEngine, RejectsBadInputWithoutCrashing) {
  auto e = Cpu();
  PointScores s;
  EXPECT_EQ(e->Evaluate(Eigen::MatrixXd::Zero(2, 1), 0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  const Posterior p = SomePosterior(2, 10, false, 10);
  ASSERT_TRUE(e->Load(p, 0).ok());
  EXPECT_EQ(e->Evaluate(Eigen::MatrixXd::Zero(3, 1), 0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  Eigen::MatrixXd nan = Eigen::MatrixXd::Zero(2, 1);
  nan(0, 0) = std::nan("");
  EXPECT_EQ(e->Evaluate(nan, 0, false, &s).code(), GpStatus::Code::kInvalidArgument);
  Posterior broken = p;
  broken.alpha.resize(3);
  EXPECT_EQ(e->Load(broken, 0).code(), GpStatus::Code::kInvalidArgument);
}

TEST(EngineFactory, CudaReportsWhyAndAutoFallsBackToCpu) {
  std::unique_ptr<GpEngine> e;
  std::string note;
  const std::string reason = CudaUnavailableReason();
  if (reason.empty()) GTEST_SKIP() << "a CUDA engine is available here";
  GpStatus st = MakeGpEngine(Device::kCuda, EngineOptions(), &e, &note);
  EXPECT_EQ(st.code(), GpStatus::Code::kUnavailable);
  EXPECT_NE(st.message().find(reason), std::string::npos);
  ASSERT_TRUE(MakeGpEngine(Device::kAuto, EngineOptions(), &e, &note).ok());
  EXPECT_EQ(e->device(), Device::kCpu);
  EXPECT_NE(note.find(reason), std::string::npos);
  Device d;
  EXPECT_TRUE(ParseDevice("auto", &d));
  EXPECT_EQ(d, Device::kAuto);
  EXPECT_FALSE(ParseDevice("gpu", &d));
}

// ---- acquisition --------------------------------------------------------------------------------

TEST(SuggestBatch, ProposesDistinctProjectedPointsDeterministically) {
  const Posterior p = SomePosterior(3, 30, false, 11);
  AcquisitionOptions o;
  o.seed = 5;
  o.pool_size = 1024;
  // Coordinate 2 is an integer with 4 values: cells centred at (k + 0.5) / 4.
  o.project = [](double* x, uint8_t* movable) {
    x[2] = (std::min(3.0, std::floor(x[2] * 4)) + 0.5) / 4;
    if (movable) {
      movable[0] = movable[1] = 1;
      movable[2] = 0;
    }
  };
  o.exclude = {p.inputs.col(0)};
  o.pending = {RandomPoints(3, 1, 99).col(0)};
  auto e = Cpu();
  Batch a, b;
  AcquisitionReport r;
  ASSERT_TRUE(SuggestBatch(*e, p, 8, o, &a, &r).ok());
  ASSERT_TRUE(SuggestBatch(*e, p, 8, o, &b, nullptr).ok());
  ASSERT_EQ(a.points.size(), 8u);
  EXPECT_EQ(r.pending, 1u);
  EXPECT_GT(r.pool, 900u);
  std::set<std::vector<double>> seen;
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(a.points[i], b.points[i]);
    const double c = a.points[i][2] * 4 - 0.5;
    EXPECT_DOUBLE_EQ(c, std::round(c));
    EXPECT_TRUE(seen.insert(std::vector<double>(a.points[i].data(), a.points[i].data() + 3)).second);
  }
}

TEST(SuggestBatch, FindsTheMinimumOfAKnownBowl) {
  // Exact fit to a smooth bowl: the first proposal is near the minimiser (0.3, 0.3) or better.
  const Eigen::MatrixXd x = RandomPoints(2, 40, 12);
  Eigen::VectorXd y(40);
  for (int j = 0; j < 40; ++j) y[j] = (x.col(j).array() - 0.3).square().sum();
  FitOptions fo;
  Posterior p;
  ASSERT_TRUE(FitGp(x, y, fo, &p, nullptr).ok());
  AcquisitionOptions o;
  auto e = Cpu();
  Batch b;
  ASSERT_TRUE(SuggestBatch(*e, p, 1, o, &b, nullptr).ok());
  ASSERT_EQ(b.points.size(), 1u);
  EXPECT_LT((b.points[0].array() - 0.3).square().sum(), std::max(0.002, y.minCoeff()));
}

// A bowl sampled 16 times, 4 of them near its minimum (a warm start's parents): the believer's
// fantasy leaves log EI high right beside the first member, and two members came out 8.5e-5 apart
// (a warm-start pass: two parallel training jobs at one configuration). Members keep
// kMinSeparation * sqrt(dims) from one another and from the pending points.
TEST(SuggestBatch, BatchMembersAndPendingPointsKeepTheirDistance) {
  Eigen::MatrixXd x = RandomPoints(2, 16, 25);
  for (int j = 0; j < 4; ++j) x.col(j) = 0.3 + 0.1 * (x.col(j).array() - 0.5);
  Eigen::VectorXd y(16);
  for (int j = 0; j < 16; ++j) y[j] = (x(0, j) - 0.3) * (x(0, j) - 0.3) + 16 * (x(1, j) - 0.5) * (x(1, j) - 0.5);
  FitOptions fo;
  Posterior p;
  ASSERT_TRUE(FitGp(x, y, fo, &p, nullptr).ok());
  auto e = Cpu();
  const double apart = kMinSeparation * std::sqrt(2.0);
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    AcquisitionOptions o;
    o.seed = seed;
    Batch b;
    ASSERT_TRUE(SuggestBatch(*e, p, 2, o, &b, nullptr).ok());
    ASSERT_EQ(b.points.size(), 2u);
    EXPECT_GE((b.points[1] - b.points[0]).norm(), apart) << "seed " << seed;
    // A third member, beside the two as pending points: apart from both.
    o.pending = b.points;
    Batch c;
    ASSERT_TRUE(SuggestBatch(*e, p, 1, o, &c, nullptr).ok());
    ASSERT_EQ(c.points.size(), 1u);
    for (const Eigen::VectorXd& q : b.points) EXPECT_GE((c.points[0] - q).norm(), apart) << "seed " << seed;
  }
}

TEST(SuggestBatch, KeepsAwayFromAFailedPointFantasisedAtTheWorstTarget) {
  // The bowl above, with the configuration at its minimiser failed: without it the proposal is
  // there (previous test); with it, the model is told the worst value was seen there, and log EI
  // moves away, though the fit is the same.
  const Eigen::MatrixXd x = RandomPoints(2, 40, 12);
  Eigen::VectorXd y(40);
  for (int j = 0; j < 40; ++j) y[j] = (x.col(j).array() - 0.3).square().sum();
  Posterior p;
  ASSERT_TRUE(FitGp(x, y, FitOptions(), &p, nullptr).ok());
  auto e = Cpu();
  Batch plain, steered;
  AcquisitionOptions o;
  ASSERT_TRUE(SuggestBatch(*e, p, 1, o, &plain, nullptr).ok());
  ASSERT_EQ(plain.points.size(), 1u);
  const Eigen::VectorXd bad = plain.points[0];
  o.failed = {bad};
  AcquisitionReport r;
  ASSERT_TRUE(SuggestBatch(*e, p, 1, o, &steered, &r).ok());
  EXPECT_EQ(r.failed, 1u);
  ASSERT_EQ(steered.points.size(), 1u);
  EXPECT_GT((steered.points[0] - bad).norm(), 0.02) << steered.points[0].transpose() << " vs " << bad.transpose();
  // A failed point is never proposed, and a malformed one is refused.
  o.failed = {Eigen::VectorXd::Constant(3, 0.5)};
  EXPECT_EQ(SuggestBatch(*e, p, 1, o, &steered, nullptr).code(), GpStatus::Code::kInvalidArgument);
}

// Step 3's direction: coordinates at a face whose gradient points out of the box are held (not
// clipped after the step), those the projection fixes too, and what is left has length 1.
TEST(SuggestBatch, TheAscentDirectionHoldsTheFacesTheGradientPointsOutOf) {
  const Eigen::Vector4d x(0.0, 0.5, 1.0, 0.3);
  const Eigen::Vector4d out(-5.0, 1.0, 2.0, -1.0);  // out of the box at x0 = 0 and x2 = 1
  const double h = 1.0 / std::sqrt(2.0);
  EXPECT_TRUE(AscentDirection(x, out, nullptr).isApprox(Eigen::Vector4d(0.0, h, 0.0, -h)));
  const Eigen::Vector4d in(3.0, 0.0, -4.0, 0.0);  // into the box at both faces: kept
  EXPECT_TRUE(AscentDirection(x, in, nullptr).isApprox(Eigen::Vector4d(0.6, 0.0, -0.8, 0.0)));
  const uint8_t fixed[] = {1, 0, 1, 1};  // x1 fixed by the projection
  EXPECT_TRUE(AscentDirection(x, out, fixed).isApprox(Eigen::Vector4d(0.0, 0.0, 0.0, -1.0)));
  // Nothing left (only faces pointing out, or a non-finite gradient): zeros, the start stops.
  EXPECT_EQ(AscentDirection(x, Eigen::Vector4d(-1.0, 0.0, 1.0, 0.0), nullptr), Eigen::Vector4d::Zero());
  EXPECT_EQ(AscentDirection(x, Eigen::Vector4d(0.0, std::nan(""), 0.0, 1.0), nullptr), Eigen::Vector4d::Zero());
}

// The objective falls steeply towards a face of the box (x0 = 0), so log EI's maximum is on that
// face: refinement ends there, at the face's maximum (found here on a grid).
TEST(SuggestBatch, RefinementSlidesAlongAFaceOfTheBox) {
  Eigen::MatrixXd x(2, 36);
  Eigen::VectorXd y(36);
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 6; ++j) {
      const int c = 6 * i + j;
      x(0, c) = 0.2 * i;
      x(1, c) = 0.2 * j;
      y[c] = 10.0 * x(0, c) + 5.0 * (x(1, c) - 0.3) * (x(1, c) - 0.3);
    }
  }
  Hyperparameters hp;
  hp.log_lengthscale.resize(2);
  hp.log_lengthscale << std::log(1.0), std::log(0.3);
  hp.log_signal_variance = std::log(1.0);
  hp.log_noise_variance = std::log(1e-6);
  Posterior p;
  ASSERT_TRUE(BuildPosterior(x, (y.array() - y.mean()) / 4.0, hp, 0.0, 1.0, &p).ok());
  AcquisitionOptions o;
  o.pool_size = 16;
  o.min_pool_size = 16;
  o.local_fraction = 0.0;
  o.refine_starts = 4;
  o.refine_iterations = 12;
  o.seed = 3;
  auto e = Cpu();
  // log EI along the face, on a grid: its maximum.
  ASSERT_TRUE(e->Load(p, 0).ok());
  Eigen::MatrixXd face(2, 201);
  face.row(0).setZero();
  face.row(1) = Eigen::RowVectorXd::LinSpaced(201, 0.0, 1.0);
  PointScores grid;
  ASSERT_TRUE(e->Evaluate(face, p.incumbent, false, &grid).ok());
  Eigen::Index best = 0;
  grid.log_ei.maxCoeff(&best);
  Batch b;
  ASSERT_TRUE(SuggestBatch(*e, p, 1, o, &b, nullptr).ok());
  ASSERT_EQ(b.points.size(), 1u);
  EXPECT_EQ(b.points[0][0], 0.0);
  EXPECT_NEAR(b.points[0][1], face(1, best), 0.02);
  EXPECT_GT(b.log_ei[0], grid.log_ei[best] - 1e-3);
}

TEST(SuggestBatch, SampledFantasiesAreSeededAndSpreadTheBatch) {
  const Posterior p = SomePosterior(2, 20, false, 13);
  AcquisitionOptions o;
  o.fantasy = FantasyMode::kSampled;
  o.pool_size = 512;
  o.seed = 1;
  auto e = Cpu();
  Batch a, b, c;
  ASSERT_TRUE(SuggestBatch(*e, p, 4, o, &a, nullptr).ok());
  ASSERT_TRUE(SuggestBatch(*e, p, 4, o, &b, nullptr).ok());
  o.seed = 2;
  ASSERT_TRUE(SuggestBatch(*e, p, 4, o, &c, nullptr).ok());
  EXPECT_EQ(a.points, b.points);
  EXPECT_NE(a.points, c.points);
  for (size_t i = 1; i < a.points.size(); ++i) EXPECT_GT((a.points[i] - a.points[0]).norm(), 1e-6);
}

// GpEngine::Ascend (the host loop every engine may fall back to): each start climbs, held
// coordinates stay, the ends are in the box, and the log EI reported is the engine's at the ends.
TEST(Ascend, ClimbsHoldsWhatIsHeldAndReportsTheEndsLogEi) {
  const Posterior p = SomePosterior(5, 60, true, 23);
  auto e = Cpu();
  ASSERT_TRUE(e->Load(p, 0).ok());
  Eigen::MatrixXd starts = RandomPoints(5, 8, 24);
  starts(0, 1) = 0.0;  // a start on a face
  starts(4, 2) = 1.0;
  std::vector<uint8_t> movable(5 * 8, 1);
  movable[3 * 5 + 2] = 0;  // start 3 holds coordinate 2
  movable[6 * 5 + 0] = movable[6 * 5 + 4] = 0;
  PointScores before;
  ASSERT_TRUE(e->Evaluate(starts, p.incumbent, false, &before).ok());
  Eigen::MatrixXd ends;
  Eigen::VectorXd log_ei;
  ASSERT_TRUE(e->Ascend(starts, movable, p.incumbent, 30, &ends, &log_ei).ok());
  ASSERT_EQ(ends.rows(), 5);
  ASSERT_EQ(ends.cols(), 8);
  ASSERT_EQ(log_ei.size(), 8);
  EXPECT_GE(ends.minCoeff(), 0.0);
  EXPECT_LE(ends.maxCoeff(), 1.0);
  EXPECT_EQ(ends(2, 3), starts(2, 3));
  EXPECT_EQ(ends(0, 6), starts(0, 6));
  EXPECT_EQ(ends(4, 6), starts(4, 6));
  PointScores after;
  ASSERT_TRUE(e->Evaluate(ends, p.incumbent, false, &after).ok());
  int moved = 0;
  for (int i = 0; i < 8; ++i) {
    EXPECT_GE(log_ei[i], before.log_ei[i]) << i;
    EXPECT_NEAR(log_ei[i], after.log_ei[i], 1e-9 * std::abs(after.log_ei[i])) << i;
    if (log_ei[i] > before.log_ei[i] + 1e-3) ++moved;
  }
  EXPECT_GE(moved, 6);
  // No iterations: the starts themselves, and their log EI.
  ASSERT_TRUE(e->Ascend(starts, {}, p.incumbent, 0, &ends, &log_ei).ok());
  EXPECT_EQ(ends, starts);
  EXPECT_TRUE(log_ei.isApprox(before.log_ei, 1e-9));
  // A held mask of the wrong size is refused, and nothing is evaluated.
  const GpStatus st = e->Ascend(starts, std::vector<uint8_t>(7, 1), p.incumbent, 5, &ends, &log_ei);
  EXPECT_EQ(st.code(), GpStatus::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("movable has 7 entries for 5 x 8 starts"), std::string::npos) << st.message();
}

// The CPU engine's DescendMean follows the mean alone: one step from each start goes down the
// mean's gradient (central differences of Evaluate's mean) by the first step's length, through
// the warping and past held coordinates.
TEST(DescendMean, OneStepGoesDownTheMeansGradient) {
  for (bool warped : {false, true}) {
    SCOPED_TRACE(warped);
    const Posterior p = SomePosterior(4, 50, warped, 31);
    auto e = Cpu();
    ASSERT_TRUE(e->Load(p, 0).ok());
    const Eigen::MatrixXd starts = RandomPoints(4, 6, 32).array() * 0.8 + 0.1;  // a step stays inside
    std::vector<uint8_t> movable(4 * 6, 1);
    movable[2 * 4 + 1] = 0;  // start 2 holds coordinate 1
    Eigen::MatrixXd ends;
    Eigen::VectorXd means;
    ASSERT_TRUE(e->DescendMean(starts, movable, p.incumbent + 10, 1, &ends, &means).ok());
    PointScores at_ends;
    ASSERT_TRUE(e->Evaluate(ends, p.incumbent, false, &at_ends).ok());
    EXPECT_LT((means - at_ends.mean).cwiseAbs().maxCoeff(), 1e-10);
    int moved = 0;
    for (int j = 0; j < 6; ++j) {
      Eigen::VectorXd g, d_log_ei;
      CentralDifferences(*e, starts.col(j), p.incumbent, &g, &d_log_ei);
      for (int d = 0; d < 4; ++d) {
        if (!movable[static_cast<size_t>(j * 4 + d)]) g[d] = 0.0;
      }
      if (ends.col(j) == starts.col(j)) continue;  // the step raised the mean: undone
      ++moved;
      const Eigen::VectorXd expected = starts.col(j) - kAscentFirstStep * g.normalized();
      EXPECT_LT((ends.col(j) - expected).cwiseAbs().maxCoeff(), 1e-7) << "start " << j;
    }
    EXPECT_GE(moved, 5);
    EXPECT_EQ(ends(1, 2), starts(1, 2));
  }
}

// Under fantasies, DescendMean reaches the points the log-EI ascent at a far incumbent (the
// default every engine without a mean descent uses, the CUDA engine's) reaches, with the mean
// there, at a fraction of its cost.
TEST(DescendMean, AgreesWithTheFarIncumbentAscentItReplaces) {
  for (bool warped : {false, true}) {
    SCOPED_TRACE(warped);
    const Posterior p = SomePosterior(5, 80, warped, 33);
    auto e = Cpu();
    ASSERT_TRUE(e->Load(p, 2).ok());
    ASSERT_TRUE(e->Fantasize(Eigen::VectorXd::Constant(5, 0.3), -1.0).ok());
    ASSERT_TRUE(e->Fantasize(Eigen::VectorXd::Constant(5, 0.6), -0.5).ok());
    Eigen::MatrixXd starts = RandomPoints(5, 8, 34);
    starts(0, 1) = 0.0;  // on a face
    const double tau = p.incumbent + kExploitOffset;
    Eigen::MatrixXd ends, ref_ends;
    Eigen::VectorXd means, ref_means;
    ASSERT_TRUE(e->DescendMean(starts, {}, tau, 60, &ends, &means).ok());
    ASSERT_TRUE(e->GpEngine::DescendMean(starts, {}, tau, 60, &ref_ends, &ref_means).ok());
    // Near a minimum the last steps are a few kAscentMinStep long and one kept or undone on a
    // tie of rounding moves an end by that much; the mean there differs by far less (measured:
    // ends within 1.3e-6 and 3.3e-9, means within 9.1e-10 and 1.3e-11).
    EXPECT_LT((ends - ref_ends).cwiseAbs().maxCoeff(), 10 * kAscentMinStep);
    EXPECT_LT((means - ref_means).cwiseAbs().maxCoeff(), 1e-8);
    PointScores before;
    ASSERT_TRUE(e->Evaluate(starts, p.incumbent, false, &before).ok());
    for (int i = 0; i < 8; ++i) EXPECT_LT(means[i], before.mean[i] - 1e-3) << i;
    // Without `means` (the acquisition's call), the same ends.
    Eigen::MatrixXd bare, ref_bare;
    ASSERT_TRUE(e->DescendMean(starts, {}, tau, 60, &bare, nullptr).ok());
    ASSERT_TRUE(e->GpEngine::DescendMean(starts, {}, tau, 60, &ref_bare, nullptr).ok());
    EXPECT_EQ(bare, ends);
    EXPECT_EQ(ref_bare, ref_ends);
  }
  // Bad input is refused, as by Ascend.
  const Posterior p = SomePosterior(3, 20, false, 35);
  auto e = Cpu();
  ASSERT_TRUE(e->Load(p, 0).ok());
  Eigen::MatrixXd ends;
  Eigen::VectorXd means;
  GpStatus st = e->DescendMean(RandomPoints(3, 4, 36), std::vector<uint8_t>(5, 1), 0.0, 5, &ends, &means);
  EXPECT_EQ(st.code(), GpStatus::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("movable has 5 entries for 3 x 4 starts"), std::string::npos) << st.message();
  st = e->DescendMean(RandomPoints(2, 4, 36), {}, 0.0, 5, &ends, &means);
  EXPECT_EQ(st.code(), GpStatus::Code::kInvalidArgument);
}

// An engine that counts what SuggestBatch asks of it.
class CountingEngine : public GpEngine {
 public:
  explicit CountingEngine(std::unique_ptr<GpEngine> e) : e_(std::move(e)) {}
  Device device() const override { return e_->device(); }
  std::string Describe() const override { return e_->Describe(); }
  GpStatus Load(const Posterior& p, size_t reserve) override { return ++calls, e_->Load(p, reserve); }
  GpStatus Evaluate(const Eigen::MatrixXd& x, double tau, bool gradients, PointScores* out) override {
    if (!ascending_) ++calls;  // an Ascend is one call, whatever it does inside
    if (gradients) ++gradient_calls;
    return e_->Evaluate(x, tau, gradients, out);
  }
  // The default loop, on this engine, so that its Evaluate calls are seen.
  GpStatus Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double tau,
                  int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei) override {
    ++calls;
    ++ascents;
    ascending_ = true;
    GpStatus st = GpEngine::Ascend(starts, movable, tau, iterations, ends, log_ei);
    ascending_ = false;
    return st;
  }
  GpStatus SetPool(const Eigen::MatrixXd& x) override { return ++calls, e_->SetPool(x); }
  GpStatus ExtendPool(const Eigen::MatrixXd& x) override { return ++calls, e_->ExtendPool(x); }
  size_t PoolSize() const override { return e_->PoolSize(); }
  GpStatus PoolTopK(double tau, size_t k, std::vector<RankedCandidate>* out) override {
    return ++calls, e_->PoolTopK(tau, k, out);
  }
  GpStatus Fantasize(const Eigen::VectorXd& x, double y) override { return ++calls, e_->Fantasize(x, y); }
  size_t TrainingSize() const override { return e_->TrainingSize(); }
  size_t calls = 0, gradient_calls = 0, ascents = 0;

 private:
  std::unique_ptr<GpEngine> e_;
  bool ascending_ = false;
};

// The report counts every engine call (on a GPU each is a device round trip), and each
// refinement takes at most its iterations' Evaluate calls: refine_iterations for the pool's,
// refine_iterations_per_pick after each fantasy.
TEST(SuggestBatch, TheReportCountsTheEngineCallsAndTheRefinementsKeepToTheirIterations) {
  const Posterior p = SomePosterior(6, 50, true, 19);
  AcquisitionOptions o;
  o.pool_size = 512;
  o.seed = 4;
  o.pending = {Eigen::VectorXd::Constant(6, 0.5)};
  for (const int per_pick : {10, 3}) {
    o.refine_iterations_per_pick = per_pick;
    CountingEngine e(Cpu());
    Batch b;
    AcquisitionReport r;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(SuggestBatch(e, p, 5, o, &b, &r).ok());
    EXPECT_LE(r.engine_seconds.total(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_EQ(b.points.size(), 5u);
    EXPECT_EQ(r.engine_calls, e.calls);
    EXPECT_EQ(e.ascents, 5u);  // the pool's refinement and one after each of 4 fantasies
    // Every kind of call was made, and its time counted; together no more than the whole.
    for (const double seconds : {r.engine_seconds.load, r.engine_seconds.evaluate, r.engine_seconds.pool,
                                 r.engine_seconds.top_k, r.engine_seconds.fantasize, r.engine_seconds.ascend}) {
      EXPECT_GT(seconds, 0.0);
    }
    // 1 + refine_iterations for the pool's refinement, 1 + per_pick after each of 4 fantasies.
    EXPECT_LE(e.gradient_calls, size_t(1 + o.refine_iterations + 4 * (1 + per_pick))) << per_pick;
    EXPECT_GT(e.gradient_calls, size_t(4 * (1 + per_pick))) << per_pick;
  }
}

// The exploit member's refinement is one DescendMean call, timed as its own kind; the CPU
// engine's mean descent proposes the batch the far-incumbent ascent it replaced proposed (the
// CountingEngine keeps GpEngine's defaults for Ascend and DescendMean).
TEST(SuggestBatch, TheMeanDescentProposesWhatTheFarIncumbentAscentDid) {
  for (uint64_t seed : {41u, 42u, 43u}) {
    SCOPED_TRACE(seed);
    const Posterior p = SomePosterior(6, 60, seed % 2 == 1, seed);
    AcquisitionOptions o;
    o.pool_size = 512;
    o.seed = seed;
    o.exploit_member = 2;
    auto cpu = Cpu();
    CountingEngine by_log_ei(Cpu());
    Batch a, b;
    AcquisitionReport ra, rb;
    ASSERT_TRUE(SuggestBatch(*cpu, p, 6, o, &a, &ra).ok());
    ASSERT_TRUE(SuggestBatch(by_log_ei, p, 6, o, &b, &rb).ok());
    EXPECT_GT(ra.engine_seconds.descend, 0.0);
    EXPECT_GT(rb.engine_seconds.descend, 0.0);
    ASSERT_EQ(a.points.size(), b.points.size());
    double worst = 0;
    for (size_t i = 0; i < a.points.size(); ++i) worst = std::max(worst, (a.points[i] - b.points[i]).cwiseAbs().maxCoeff());
    EXPECT_LT(worst, 1e-6);
    EXPECT_NEAR(a.mean[2], b.mean[2], 1e-9);
  }
}

TEST(SuggestBatch, LaterMembersAreRefinedUnderTheEarlierFantasies) {
  // Per-member refinement only adds candidates after the first fantasy: the first member is the
  // same with and without it, and the second is at least as good under the same fantasy.
  const Posterior p = SomePosterior(4, 40, false, 17);
  AcquisitionOptions off;
  off.pool_size = 512;
  off.seed = 3;
  off.refine_starts_per_pick = 0;
  AcquisitionOptions on = off;
  on.refine_starts_per_pick = 4;
  auto e = Cpu();
  Batch a, b;
  AcquisitionReport ra, rb;
  ASSERT_TRUE(SuggestBatch(*e, p, 2, off, &a, &ra).ok());
  ASSERT_TRUE(SuggestBatch(*e, p, 2, on, &b, &rb).ok());
  ASSERT_EQ(a.points.size(), 2u);
  ASSERT_EQ(b.points.size(), 2u);
  EXPECT_EQ(a.points[0], b.points[0]);
  EXPECT_GE(b.log_ei[1], a.log_ei[1] - 1e-12);
  EXPECT_GT(rb.refined, ra.refined);
  // Only the first max_refined_picks fantasies trigger a refinement.
  on.max_refined_picks = 2;
  Batch c;
  AcquisitionReport rc;
  ASSERT_TRUE(SuggestBatch(*e, p, 10, on, &c, &rc).ok());
  EXPECT_EQ(c.points.size(), 10u);
  EXPECT_LE(rc.refined, on.refine_starts + 2 * on.refine_starts_per_pick);
}

TEST(SuggestBatch, TheExploitMemberIsThePosteriorMeansMinimiser) {
  // Kriging believer fantasies leave the mean unchanged, so the exploit member must sit at the
  // minimum of the posterior mean over the cube (a dense grid here), wherever log EI would go.
  const Posterior p = SomePosterior(2, 25, false, 19);
  Eigen::MatrixXd grid(2, 201 * 201);
  for (int i = 0; i < 201; ++i)
    for (int j = 0; j < 201; ++j) grid.col(i * 201 + j) << i / 200.0, j / 200.0;
  Eigen::VectorXd mean, var;
  DenseMeanVar(p, grid, &mean, &var);
  AcquisitionOptions o;
  o.pool_size = 512;
  o.seed = 4;
  AcquisitionOptions x = o;
  x.exploit_member = 1;
  auto e = Cpu();
  Batch a, b;
  ASSERT_TRUE(SuggestBatch(*e, p, 3, o, &a, nullptr).ok());
  ASSERT_TRUE(SuggestBatch(*e, p, 3, x, &b, nullptr).ok());
  ASSERT_EQ(b.points.size(), 3u);
  EXPECT_EQ(a.points[0], b.points[0]);  // members before it are unchanged
  Eigen::VectorXd m1, v1;
  DenseMeanVar(p, b.points[1], &m1, &v1);
  EXPECT_LE(m1[0], mean.minCoeff() + 1e-3);
  EXPECT_NEAR(b.mean[1], m1[0], 1e-6);
  Eigen::VectorXd m0, v0;
  DenseMeanVar(p, a.points[1], &m0, &v0);
  EXPECT_GT(m0[0], m1[0] + 1e-3);  // log EI's second member is elsewhere, at a higher mean
  EXPECT_GT((a.points[1] - b.points[1]).norm(), 0.01);
  EXPECT_TRUE(std::isfinite(b.log_ei[1]));
  // Out of range: no member is chosen by the mean.
  x.exploit_member = 5;
  Batch c;
  ASSERT_TRUE(SuggestBatch(*e, p, 3, x, &c, nullptr).ok());
  EXPECT_EQ(c.points, a.points);
}

// The posterior mean's local minimum near `from` by compass search (steps down to 1e-7), and
// how far below `from`'s mean it lies: an independent check of where an ascent stopped.
double MeanGapToLocalMinimum(const Posterior& p, const Eigen::VectorXd& from, Eigen::VectorXd* at) {
  auto mean_at = [&](const Eigen::VectorXd& x) {
    Eigen::VectorXd m, v;
    DenseMeanVar(p, x, &m, &v);
    return m[0];
  };
  Eigen::VectorXd x = from;
  double f = mean_at(x);
  const double f0 = f;
  for (double step = 0.02; step > 1e-7;) {
    bool moved = false;
    for (Eigen::Index d = 0; d < x.size(); ++d) {
      for (double sign : {1.0, -1.0}) {
        Eigen::VectorXd y = x;
        y[d] = std::clamp(y[d] + sign * step, 0.0, 1.0);
        if (const double fy = mean_at(y); fy < f) {
          x = y;
          f = fy;
          moved = true;
        }
      }
    }
    if (!moved) step /= 2;
  }
  *at = x;
  return f0 - f;
}

TEST(SuggestBatch, TheExploitMemberReachesTheMeansMinimumNotJustNearIt) {
  // Its refinement runs to convergence (AcquisitionOptions::exploit_refine_iterations): a compass
  // search on the dense posterior mean from the member's point finds almost nothing lower. With
  // the other members' refinement (4 starts, 10 iterations) it stopped short.
  for (uint64_t seed : {21u, 22u, 23u}) {
    SCOPED_TRACE(seed);
    const Posterior p = SomePosterior(4, 40, false, seed);
    AcquisitionOptions o;
    o.pool_size = 512;
    o.seed = seed;
    o.exploit_member = 0;
    AcquisitionOptions short_refine = o;
    short_refine.exploit_refine_starts = o.refine_starts_per_pick;
    short_refine.exploit_refine_iterations = o.refine_iterations_per_pick;
    auto e = Cpu();
    Batch b, s;
    ASSERT_TRUE(SuggestBatch(*e, p, 2, o, &b, nullptr).ok());
    ASSERT_TRUE(SuggestBatch(*e, p, 2, short_refine, &s, nullptr).ok());
    Eigen::VectorXd at_b, at_s;
    const double gap = MeanGapToLocalMinimum(p, b.points[0], &at_b);
    const double short_gap = MeanGapToLocalMinimum(p, s.points[0], &at_s);
    // Measured: gaps below 1e-9 within 2.1e-5 of the minimum; stopped short, 3e-6 to 9e-5 and
    // 0.9e-3 to 3.9e-3 from it.
    EXPECT_LE(gap, 1e-8);
    EXPECT_LE((at_b - b.points[0]).norm(), 1e-4);
    EXPECT_GT(short_gap, 100 * gap);
    EXPECT_GT((at_s - s.points[0]).norm(), 5e-4);
  }
}

}  // namespace
}  // namespace hpo::kernels
