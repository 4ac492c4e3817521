// kernels/gp_engine.h: the Gaussian-process engine: one interface, a CPU and a CUDA
// implementation, chosen at run time.
//
// What it is: the batch arithmetic of Bayesian optimisation over the unit cube [0,1]^D. A host-side
// fit (kernels/gp_model.h: hyperparameters by marginal likelihood, Cholesky factor; an engine may
// evaluate the fit's likelihood on its device, LikelihoodDevice below) produces a Posterior; an engine loads it and evaluates many candidate points against it at once (the
// cross-covariance of the candidates with the training inputs, triangular solves, posterior mean
// and variance, log expected improvement, top-k), and conditions it on fantasy observations
// (Kriging believer or sampled values for pending trials and batch members) by extending the
// Cholesky factor by one row. kernels/acquisition.h drives an engine to propose a batch.
//
// What it is not: it knows nothing of search spaces, trials, files, sockets or processes
// (coordinator/bayesian_strategy.h maps a tuning job onto the unit cube). It includes no CUDA
// header; the CUDA engine is a module loaded at run time behind MakeGpEngine
// (kernels/cuda_engine_module.h).
//
// Conventions, everywhere in kernels/:
//   - points are columns: a D x m Eigen::MatrixXd holds m points of the unit cube;
//   - the model minimises: targets are standardised (zero mean, unit variance) and smaller is
//     better; expected improvement is below the incumbent;
//   - kernel: Matern 5/2 with one lengthscale per coordinate (ARD), a signal variance and Gaussian
//     noise, evaluated on inputs warped per coordinate by the Kumaraswamy CDF
//     w(x) = 1 - (1 - x^a)^b (a = b = 1 is the identity);
//   - hyperparameters live in log space;
//   - errors are GpStatus values, never exceptions (Eigen and the standard library do not throw
//     here except std::bad_alloc, which is left to terminate).
//
// Determinism: every engine function is a deterministic function of its inputs; the CPU engine's
// results do not depend on the number of threads (work is split in fixed-size chunks, each computed
// by one thread with the same arithmetic). Different engines agree within stated tolerances, not
// bit for bit; the CPU engine is the reference.
//
// Thread safety: a GpEngine is stateful and not thread-safe; use one per thread (it may use
// several threads internally). Posterior and Hyperparameters are plain values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "kernels/ascent_step.h"  // the ascent's step lengths and its one-start step
#include "kernels/host_device.h"  // KumaraswamyWarp, KumaraswamyWarpDerivative

namespace hpo::kernels {

// ---- errors ---------------------------------------------------------------------------------

// kernels/ may not include common/ (DESIGN.md dependency rules); the coordinator turns a GpStatus
// into an hpo::Status at its edge.
class [[nodiscard]] GpStatus {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // shapes, empty data, non-finite values: the caller's input is wrong
    kUnavailable,      // the requested device or implementation cannot be used here
    kNumerical,        // a factorisation failed even with jitter, or no finite likelihood
  };
  GpStatus() = default;
  static GpStatus Ok() { return GpStatus(); }
  static GpStatus InvalidArgument(std::string m) { return GpStatus(Code::kInvalidArgument, std::move(m)); }
  static GpStatus Unavailable(std::string m) { return GpStatus(Code::kUnavailable, std::move(m)); }
  static GpStatus Numerical(std::string m) { return GpStatus(Code::kNumerical, std::move(m)); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  GpStatus(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// ---- devices --------------------------------------------------------------------------------

enum class Device { kCpu, kCuda, kAuto };
const char* DeviceName(Device device);  // "cpu", "cuda", "auto"
// "cpu" | "cuda" | "auto" -> true and *out; anything else -> false.
bool ParseDevice(std::string_view text, Device* out);

// ---- the model ------------------------------------------------------------------------------

// Hyperparameters of the GP in log space. All vectors have one entry per input coordinate.
struct Hyperparameters {
  Eigen::VectorXd log_lengthscale;
  double log_signal_variance = 0.0;
  double log_noise_variance = -7.0;
  // Kumaraswamy warping exponents (log a, log b). Empty: no warping. Coordinates not warped hold 0.
  Eigen::VectorXd log_warp_a;
  Eigen::VectorXd log_warp_b;

  bool warped() const { return log_warp_a.size() > 0; }
};

// A fitted GP, ready to evaluate: produced by FitGp / BuildPosterior (kernels/gp_model.h).
// Invariants (HPO-level checks in the engines): inputs is D x n, chol n x n lower triangular with
// positive diagonal, alpha and y have n entries, n >= 1.
struct Posterior {
  Hyperparameters hp;
  Eigen::MatrixXd inputs;  // D x n training inputs in the unit cube (not warped)
  Eigen::MatrixXd chol;    // lower Cholesky factor of K(inputs, inputs) + (noise + jitter) I
  Eigen::VectorXd alpha;   // (K + (noise + jitter) I)^-1 y
  Eigen::VectorXd y;       // standardised targets (minimised)
  double jitter = 0.0;     // added to the diagonal beyond the noise variance to factorise
  double incumbent = 0.0;  // min(y): the value expected improvement is measured against
  double y_mean = 0.0;     // raw target = y * y_scale + y_mean; NaN both when the targets are
  double y_scale = 1.0;    // warped (kernels/gp_model.h: the order of y is the raw order then)

  size_t dims() const { return static_cast<size_t>(inputs.rows()); }
  size_t size() const { return static_cast<size_t>(inputs.cols()); }
  double noise_variance() const { return std::exp(hp.log_noise_variance) + jitter; }
};

// ---- the engine -----------------------------------------------------------------------------

// Per-point results of Evaluate, standardised units. mean/variance describe the latent function
// (variance excludes the noise), floored at 1e-12 * signal variance.
struct PointScores {
  Eigen::VectorXd mean;
  Eigen::VectorXd variance;
  Eigen::VectorXd log_ei;        // log expected improvement below the incumbent (finite or -inf)
  Eigen::MatrixXd log_ei_grad;   // D x m, d log_ei / d point; only filled when asked for
};

// One entry of a pool ranking.
struct RankedCandidate {
  size_t index = 0;  // column of the pool
  double log_ei = 0;
  double mean = 0;
  double variance = 0;
};

struct EngineOptions {
  int threads = 0;  // 0: the machine's hardware concurrency (CPU engine)
};

// The fit's likelihood on a device (FitOptions::engine, kernels/gp_model.h): the negative log
// marginal likelihood of one fit's data and its gradient by the hyperparameters, without the
// prior (the host adds it). Offered by an engine that can compute it faster than the host
// (GpEngine::LikelihoodDevices); the host fit (NegLogMarginalLikelihood) is the reference it
// agrees with within rounding.
class LikelihoodDevice {
 public:
  virtual ~LikelihoodDevice() = default;
  // Copies one fit's inputs (D x n, unit cube) and standardised targets (n) to the device;
  // `warp_mask`: empty (no warping) or D entries, 1 for a warped coordinate, as the packed
  // hyperparameters will have them. InvalidArgument for shapes; Unavailable on a device error.
  virtual GpStatus Load(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const std::vector<uint8_t>& warp_mask) = 0;
  // At theta (packed as kernels/gp_model.h's PackHyperparameters, for the loaded mask): *value
  // and, when grad is not null, *grad. *value is +infinity (grad left as it is) when K + noise I
  // cannot be factorised. InvalidArgument for a theta of the wrong size; Unavailable on a device
  // error (the caller goes on on the host).
  virtual GpStatus Evaluate(const Eigen::VectorXd& theta, double* value, Eigen::VectorXd* grad) = 0;
};

class GpEngine {
 public:
  virtual ~GpEngine() = default;

  virtual Device device() const = 0;
  // One line for logs: "cpu (Eigen, 2 threads)", "cuda (NVIDIA H200, ...)".
  virtual std::string Describe() const = 0;

  // Copies `posterior` into the engine (device memory for CUDA) and forgets earlier fantasies and
  // the pool. `reserve`: number of Fantasize calls to expect (capacity; more are allowed but may
  // reallocate). InvalidArgument when the posterior breaks its invariants.
  virtual GpStatus Load(const Posterior& posterior, size_t reserve) = 0;

  // The batch kernel. For every column of `points` (D x m, unit cube, unwarped): posterior mean,
  // variance and log EI below `incumbent`, under the loaded posterior conditioned on the fantasies
  // added since Load. With `gradients`, also d log EI / d point (through the warping). Points are
  // independent of each other; m may be anything from 1 to millions (the engine chunks).
  // InvalidArgument for a wrong number of rows or a non-finite coordinate; FailedPrecondition-like
  // InvalidArgument when nothing is loaded.
  virtual GpStatus Evaluate(const Eigen::MatrixXd& points, double incumbent, bool gradients, PointScores* out) = 0;

  // The pool: a large candidate set kept by the engine, with its cross solves, so that Fantasize
  // updates its mean and variance by a rank-one correction (O(m n)) instead of a new solve
  // (O(m n^2)). SetPool replaces it, ExtendPool appends columns (both under the current
  // fantasies). Errors as Evaluate.
  virtual GpStatus SetPool(const Eigen::MatrixXd& points) = 0;
  virtual GpStatus ExtendPool(const Eigen::MatrixXd& points) = 0;
  virtual size_t PoolSize() const = 0;
  // Gives the pool's memory back (PoolSize() becomes 0; the next SetPool builds a new one). The
  // pool is rebuilt for every batch, and a tuning job's engine lives as long as the job's record:
  // kept between batches it held (n + reserve) x 4096 doubles per job, ended ones included.
  virtual void ReleasePool() {}
  // The k pool entries of highest log EI below `incumbent`, best first; ties (and -inf) ordered
  // by lower index. Fewer when the pool is smaller.
  virtual GpStatus PoolTopK(double incumbent, size_t k, std::vector<RankedCandidate>* out) = 0;

  // Conditions on an observation `y` (standardised) at `x` (unit cube) with the model's noise:
  // the Cholesky factor is extended by one row (rank-append), alpha recomputed, the pool's mean
  // and variance updated. Used for Kriging-believer (y = mean) and sampled fantasies.
  virtual GpStatus Fantasize(const Eigen::VectorXd& x, double y) = 0;

  // Number of training points including fantasies.
  virtual size_t TrainingSize() const = 0;

  // Local refinement (kernels/acquisition.h, step 3) in one call: projected gradient ascent of
  // log EI below `incumbent`, under the loaded posterior and its fantasies, from every column of
  // `starts` (D x s, unit cube). `movable`: empty (every coordinate may move) or D x s entries,
  // column-major, 0 for a coordinate held at its start. Each start's iteration
  // (kernels/ascent_step.h, shared by every implementation): the ascent direction
  // (AscentDirection below) from its current point, a step of its current length
  // (kAscentFirstStep at first) clipped to the box, kept when it raises log EI (the length then
  // doubles, up to kAscentMaxStep) and undone otherwise (the length shrinks by kAscentShrink);
  // a start stops when its direction vanishes, its log EI is not finite or its length falls
  // below kAscentMinStep. *ends (D x s): the points reached; *log_ei (s): log EI there.
  // Errors as Evaluate, and InvalidArgument for a `movable` of another size.
  //
  // The default runs the loop on the host, one Evaluate of the starts still moving per
  // iteration; an engine that can keep it on its device overrides it (the CUDA engine: one
  // device round trip per ascent instead of one per iteration). Overrides agree with the
  // default within the engines' tolerances, not bit for bit: their scores differ by rounding,
  // and a step kept or undone on a tie of rounding moves a start differently.
  virtual GpStatus Ascend(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double incumbent,
                          int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* log_ei);

  // The exploit member's refinement (kernels/acquisition.h, step 4): projected descent of the
  // posterior mean (under the loaded posterior and its fantasies) from every column of `starts`,
  // with Ascend's steps, stopping rules and `movable`, the score being minus the mean. *ends
  // (D x s): the points reached; *means (s): the mean there, unless `means` is null (the
  // acquisition, whose pool scores the ends anyway: the default then makes no extra call).
  // Errors as Ascend.
  //
  // The default is Ascend of log EI below `tau`, an incumbent the caller puts far above every
  // mean (kExploitOffset above the incumbent, kernels/acquisition.h): there EI = (tau - mean)
  // Phi(z) + sd phi(z) is tau - mean up to a vanishing variance term, so log EI orders points
  // and picks directions as the mean does, at the cost of the variance's two solves against the
  // factor per point and step. An engine that can follow the mean alone overrides it (the CPU
  // engine: O(n D) per point and step instead of O(n^2)); `tau` is then unused. The two reach
  // the same points within the engines' tolerances (kernels_engine_test).
  virtual GpStatus DescendMean(const Eigen::MatrixXd& starts, const std::vector<uint8_t>& movable, double tau,
                               int iterations, Eigen::MatrixXd* ends, Eigen::VectorXd* means);

  // Up to `count` likelihood devices for one fit (FitOptions::engine), owned by the engine and
  // kept for its next fits; *out is left empty when the engine has none (the default: the CPU
  // engine, whose fit is the host's) or they cannot be made here (a note in *why, may be null).
  // Each device may be used from its own thread, side by side with the others, but not while
  // another call runs on the engine. The pointers stay valid until the next call of this
  // function or the engine's end.
  virtual void LikelihoodDevices(size_t count, std::vector<LikelihoodDevice*>* out, std::string* why) {
    out->clear();
    (void)count;
    if (why != nullptr) why->clear();
  }
};

// The ascent direction at x (unit cube) for the gradient g of log EI (the same size): g with 0
// for every coordinate that `movable` (null, or as many entries) marks 0 and for every
// coordinate at a face of the box whose gradient points out of it, scaled to length 1; all
// zeros when nothing is left or a coordinate left is not finite (the start stops). Holding the
// outward components lets a start slide along a face; clipping the whole step instead moved it
// by a sliver of the step's length.
Eigen::VectorXd AscentDirection(const Eigen::VectorXd& x, const Eigen::VectorXd& g, const uint8_t* movable);

// The engine for `device`:
//   cpu  -> the Eigen engine (always built).
//   cuda -> the CUDA engine, or Unavailable with the reason (not built with CUDA, its module
//           hpo-cuda-engine.so missing or unloadable, no device, a driver error, ...). The module
//           is loaded on the first call that asks for cuda or auto (kernels/cuda_engine_module.h).
//   auto -> cuda when available, else cpu; *note then says why CUDA was not used ("" when it was).
// `note` may be null.
GpStatus MakeGpEngine(Device device, const EngineOptions& options, std::unique_ptr<GpEngine>* out,
                      std::string* note);

// Why the CUDA engine cannot run here, or "" when it can.
std::string CudaUnavailableReason();

}  // namespace hpo::kernels
