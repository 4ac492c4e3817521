// kernels/gp_model.h: fitting the Gaussian process on the host: the Matern-5/2 ARD kernel with
// Kumaraswamy input warping, the log marginal likelihood and its analytic gradient,
// hyperparameters by maximum a posteriori (L-BFGS with restarts, warm start) or slice sampling,
// the Cholesky factorisation with jitter, and its rank-append extension by one observation.
//
// Model (see gp_engine.h for conventions): y_std ~ GP(0, k) + N(0, noise), with
//   k(x, x') = s2 (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r),  r^2 = sum_d (w_d(x_d) - w_d(x'_d))^2 / l_d^2,
//   w_d the Kumaraswamy CDF with exponents (a_d, b_d) on warped coordinates, the identity elsewhere.
// Targets are standardised by their mean and standard deviation (a constant target gets scale 1);
// the hyperparameters are fitted on those, and the posterior's targets are then shifted so that the
// GP's zero prior mean stands for FitOptions::prior_mean_quantile of them (Posterior::y_mean is
// that value). Output warping (FitOptions::output_warp_margin, kernels/output_warp.h): when the
// GP explains a Yeo-Johnson transform of the standardised targets better than the targets (its
// marginal likelihood with the Jacobian, on the plain fit's covariance), the hyperparameters are
// fitted again, from the plain ones, on the transformed targets, and the posterior models those.
// The transform is strictly increasing: the order of the targets and the incumbent's point are kept.
//
// Hyperparameter vector (log space), in this order: log l_1..l_D, log s2, log noise, then
// log a_d and log b_d for each warped coordinate d (a's first, then b's).
// Priors (independent normals in log space) and bounds keep the fit from diverging:
//   log l_d     ~ N(m, 3)                  in [log 0.01, log 100]
//       m = sqrt2 + 0.5 log D, the dimension-scaled prior (Hvarfner et al. 2024), or
//       m = log 0.5, the short prior (kShortLengthscaleLogMedian), chosen per fit by evidence:
//   log s2      ~ N(0, 1)                  in [log 0.05, log 20]
//   log noise   ~ N(-5, 4)                 in [log 1e-9, log 2]
//   log a, b    ~ N(0, 0.5625)             in [log 0.2, log 5]
// (second argument: variance).
// Which lengthscale prior (FitOptions::select_lengthscale_prior, on by default): the MAP is found
// under each, and the fit keeps the one whose log marginal likelihood (without the prior) is the
// higher, i.e. the data choose the prior by its evidence. Long lengthscales suit smooth,
// few-mode objectives (Branin, Hartmann6, most model-tuning surfaces: they win there ~85 % of
// the fits); the dimension-scaled prior alone makes a rugged surface such as Ackley-10 look
// nearly linear, and the acquisition then proposes the box's corners again and again (bench/
// RESULTS.md). The short prior's fit starts from fewer points (its default start and the warm
// start), so selection costs about half a fit more, not a whole one.
//
// Scale (the documented approximation): exact GP inference costs O(n^3) to factorise and
// O(m n^2) to evaluate m candidates. Beyond FitOptions::max_posterior_points observations the
// posterior is built on a subset of data: the best quarter of the budget by target value, plus a
// uniformly random sample (seeded) of the rest; beyond max_fit_points the hyperparameters are
// fitted on a subset chosen the same way from that. The incumbent (the best point) is always
// kept. What this costs in regret: `hpo bench optimize --max-posterior-points P --max-fit-points F`
// with the caps below the run's size (bench/RESULTS.md: the basin a run ends in unchanged, the
// final precision and a few per cent of Ackley-10's regret lost at half or a quarter of the data).
//
// Thread safety: pure functions of their arguments; FitGp may use several threads internally
// (restarts side by side on plain threads, each likelihood evaluation's blocks on OpenMP threads
// when built with it) and its result does not depend on how many.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "kernels/gp_engine.h"
#include "kernels/output_warp.h"

namespace hpo::kernels {

// ---- the kernel -----------------------------------------------------------------------------

// Applies the warping of `hp` to points (D x m columns); identity when hp is not warped.
Eigen::MatrixXd WarpInputs(const Hyperparameters& hp, const Eigen::MatrixXd& points);

// The dense kernel matrix K(a, b) (a: D x n, b: D x m, unwarped points), computed directly pair
// by pair: the reference that engines and tests compare against. No noise added.
Eigen::MatrixXd KernelMatrix(const Hyperparameters& hp, const Eigen::MatrixXd& a, const Eigen::MatrixXd& b);

// The posterior mean alone (standardised units, no fantasies) at every column of `points`
// (D x m, unit cube, unwarped): K(points, inputs) alpha, the squared distances by one matrix
// product per chunk of points, so O(m n D) with no solve (coordinator/importance.h evaluates it
// at some 10^5 points). Agrees with the engines' Evaluate mean within rounding.
Eigen::VectorXd PosteriorMean(const Posterior& posterior, const Eigen::MatrixXd& points);

// ---- the likelihood -------------------------------------------------------------------------

// Which input coordinates may be warped (1) when warping is on; size D.
using WarpMask = std::vector<uint8_t>;

// Packing of Hyperparameters into the optimiser's vector (see the order above). `mask` selects
// the warped coordinates; with an empty mask the warping parameters are absent.
Eigen::VectorXd PackHyperparameters(const Hyperparameters& hp, const WarpMask& mask);
Hyperparameters UnpackHyperparameters(const Eigen::VectorXd& theta, size_t dims, const WarpMask& mask);
// Bounds and prior of the packed vector.
void HyperparameterBounds(size_t dims, const WarpMask& mask, Eigen::VectorXd* lower, Eigen::VectorXd* upper);
Hyperparameters DefaultHyperparameters(size_t dims, const WarpMask& mask);

// The n x n matrices one likelihood evaluation works in, kept between the evaluations of one
// optimiser run: allocated afresh each time, they cost a page fault per 4 KiB, and threads
// optimising side by side queued for the kernel's memory map (about 5 % of a fit's samples here,
// more in a virtual machine). One evaluation at a time: its own team shares it (each thread in
// its own columns and blocks), evaluations running side by side need one each.
// `threads`: how many OpenMP threads one evaluation may use (its independent columns and
// blocks); the value does not depend on it. FitGp gives each L-BFGS start the cores the starts
// leave idle.
struct LikelihoodWorkspace {
  Eigen::MatrixXd k, radial, linv, kinv, c, dwa, dwb, rhs, prod, chol;
  Eigen::VectorXd signal_part, diag_part;
  int threads = 1;
};

// The negative log marginal likelihood of standardised targets y at inputs x (D x n) under
// theta (packed), plus the negative log prior when `with_prior`, and its gradient with respect
// to theta when grad is not null. +infinity when K + noise I cannot be factorised.
// `lengthscale_log_median`: the lengthscale prior's m (above); NaN = the dimension-scaled one.
// `workspace`: optional, see LikelihoodWorkspace (the result does not depend on it).
inline constexpr double kShortLengthscaleLogMedian = -0.6931471805599453;  // log 0.5
double NegLogMarginalLikelihood(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& theta,
                                const WarpMask& mask, bool with_prior, Eigen::VectorXd* grad,
                                double lengthscale_log_median = std::numeric_limits<double>::quiet_NaN(),
                                LikelihoodWorkspace* workspace = nullptr);

// ---- fitting --------------------------------------------------------------------------------

enum class HyperFit {
  kMaximumPosterior,  // L-BFGS on the log posterior from several starts (default)
  kSliceSampling,     // a slice-sampling chain started at the MAP estimate; its last state
                      // (one posterior draw of the hyperparameters) is used
  kFixed,             // use FitOptions::initial as is (tests, warm reuse)
};

struct FitOptions {
  HyperFit method = HyperFit::kMaximumPosterior;
  // Warping: on when `warp_mask` has a 1 anywhere (size D; empty: off).
  WarpMask warp_mask;
  int random_restarts = 1;       // starts drawn from the prior, besides the default start
  bool select_lengthscale_prior = true;  // the dimension-scaled or the short prior, by evidence
  // How many nats of log marginal likelihood the long prior must win by (0: the better one
  // wins). Batch proposals use 2: a batch's fantasy-driven picks spread to the box's faces, and
  // such data favour the long prior, whose next batch goes to the corners again (bench/RESULTS.md).
  double short_prior_margin = 0.0;
  // The constant prior mean, the value the model reverts to away from the data: this quantile of
  // the targets (the model minimises: 0.75 is between the median and the worst quarter); NaN:
  // their mean. With the mean, once a run's trials cluster near good values an unexplored corner
  // predicted at the average observation looked good, and the acquisition spent trials on the
  // box's corners. Measured (bench/RESULTS.md, 2026-12-05): median regret at 100 evaluations,
  // 40 seeds, Ackley-10 8.1 -> 6.4 (batch 1) and 9.5 -> 7.9 (batch 8), Hartmann6 batch 8
  // 2.9e-6 -> 1.7e-6. The hyperparameters are fitted on the centred targets all the same.
  double prior_mean_quantile = 0.75;
  // Output warping (above; kernels/output_warp.h): used when it gains more than this many nats
  // of log marginal likelihood over the plain targets; NaN: never considered. It adds one
  // triangular solve per candidate lambda, and a second fit of the hyperparameters when used.
  // Measured (bench/RESULTS.md, 2026-12-05): svr_diabetes median regret 10-12 % lower at batch 1
  // and 8, Branin 25 % lower, Hartmann6 and Ackley-10 nearly unchanged (the identity wins there).
  double output_warp_margin = 0.0;
  double output_warp_min_lambda = kMinOutputLambda;  // lambdas searched: [this, 1]
  int max_iterations = 50;       // per L-BFGS run
  int slice_sweeps = 4;          // kSliceSampling: sweeps over all coordinates after the MAP
  size_t max_fit_points = 200;   // hyperparameters fitted on at most this many points
  size_t max_posterior_points = 2000;  // posterior built on at most this many points
  uint64_t seed = 0;             // restarts, subsets, slice sampling
  // Cores for the fit and the posterior's factorisation; 0: OpenMP's team (OMP_NUM_THREADS, else
  // every core). The starts run side by side and each likelihood evaluation splits over the
  // cores they leave (from 128 fit points). The result does not depend on it.
  int threads = 0;
  // Warm start: when set (size matching), an additional start (kMaximumPosterior) or the value
  // used (kFixed).
  const Hyperparameters* initial = nullptr;
  // The engine the posterior is for. When it offers likelihood devices
  // (GpEngine::LikelihoodDevices: the CUDA engine), each L-BFGS start evaluates its likelihood
  // there, one start per host thread, and the host adds the prior; a start whose device fails
  // goes on on the host. Null, or an engine without them: the host computes everything. The
  // engine is only borrowed for the fit (no other call may run on it meanwhile). The result
  // then agrees with the host fit's within rounding, not bit for bit.
  GpEngine* engine = nullptr;
  // Fewer fit points than this stay on the host even with such an engine: a device evaluation
  // costs its launches and one copy back (tens of microseconds) whatever n, a host one at 64
  // points about as much. (A starting value, to be set by the device benchmark's A/B:
  // bench/gpu/run.sh, HPO_CUDA_FIT=host.)
  size_t device_min_fit_points = 128;
};

struct FitReport {
  size_t observations = 0;      // n given
  size_t fit_points = 0;        // used for the hyperparameters
  size_t posterior_points = 0;  // used for the posterior
  int starts = 0;               // L-BFGS starts (of both fits when the targets were warped)
  int evaluations = 0;          // likelihood evaluations (likewise)
  double neg_log_posterior = 0; // at the chosen hyperparameters (on the fit subset)
  bool short_lengthscale_prior = false;  // the short prior won the selection
  int device_evaluations = 0;   // of `evaluations`, those a likelihood device computed
  std::string device_note;      // why the fit stayed on the host although an engine was given
  double output_lambda = 1.0;   // the output warping's lambda (1: the targets were not warped)
  double output_warp_gain = 0;  // the best lambda's gain over the identity, nats (0: not considered)
};

// Fits a GP to raw targets y (minimised) at inputs x (D x n, unit cube) and factorises its
// posterior. InvalidArgument: n == 0, shapes, non-finite values, D == 0. Numerical: no start gave
// a finite likelihood, or the final factorisation failed with the largest jitter.
GpStatus FitGp(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const FitOptions& options, Posterior* out,
               FitReport* report);

// The indices FitGp keeps when it must reduce n observations with targets y to `budget` (all of
// them, in order, when n <= budget): sorted ascending.
std::vector<size_t> SelectSubset(const Eigen::VectorXd& y, size_t budget, uint64_t seed);

// Factorises the posterior of standardised targets y at inputs x under hp: K + (noise + jitter) I,
// jitter 0 first, then 1e-10, 1e-8, ... up to 1e-2 times the signal variance. Numerical when even
// that fails. y_mean/y_scale are copied into the result. `threads`: as FitOptions::threads.
GpStatus BuildPosterior(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Hyperparameters& hp, double y_mean,
                        double y_scale, Posterior* out, int threads = 0);

// Adds one observation (standardised target y at x) to a posterior with unchanged
// hyperparameters by extending its Cholesky factor by one row (O(n^2)); alpha and the incumbent
// are updated. Numerical when the new pivot is not positive (the point duplicates the data
// beyond what noise + jitter allow).
GpStatus AppendObservation(Posterior* posterior, const Eigen::VectorXd& x, double y);

// Makes the OpenMP parallel regions the calling thread starts from now on (a fit's, Eigen's
// products) run on it alone. For long-lived threads that fit small models now and then (the
// HTTP server's pool, for the dashboard's importance): each such thread kept a team of
// (cores - 1) idle OpenMP threads of its own, and a coordinator's threads and memory grew with
// every page viewed (128 pool threads: 263 threads on 2 cores; a scale pass). No-op without
// OpenMP.
void UseOneOpenMpThreadHere();

}  // namespace hpo::kernels
