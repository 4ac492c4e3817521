// kernels/acquisition.h: proposing a batch of q points by log expected improvement.
//
// SuggestBatch drives a GpEngine (gp_engine.h):
//   1. Load the posterior; condition it on the failed points (configurations whose training
//      jobs failed or gave no finite objective), each at the worst training target (max
//      posterior.y), so that log EI falls around them; then on the pending points (running
//      trials), one fantasy each, in the given order (Kriging believer: the posterior mean;
//      sampled: a draw from the posterior predictive, seeded). The failed points' values are
//      pessimistic on purpose: left out, a region whose training jobs all diverge looked as
//      promising after each failure as before it, and the model proposed near-duplicates there
//      (a learning rate's upper end: 27 of 30 training jobs NaN, 1e-3 apart). The fit is not
//      given them (its hyperparameters come from real objectives only).
//   2. Build the candidate pool (its size capped by max_pool_work): a scrambled Sobol set (kernels/sobol.h) plus Gaussian
//      perturbations (standard deviations 0.01, 0.05 and 0.15, in turn) of the best training points
//      (local_fraction of the pool), every candidate passed through `project`, exact duplicates
//      and points in `exclude` (or pending) removed.
//   3. Local refinement: the refine_starts best pool points by log EI climb it by projected
//      gradient ascent in the box (normalised gradient steps on the coordinates `project` marks
//      movable, step doubled on success and cut on failure; refine_iterations of them), in one
//      engine call (GpEngine::Ascend); the end points are projected and added to the pool. A
//      coordinate at a face of the box whose gradient points out of it is held there for the
//      step (its component zeroed before normalising), so the step slides along the face
//      instead of being clipped back to a fraction of its length.
//   4. The batch: q times, take the pool point of highest log EI not taken yet (and, where the top
//      of the pool offers one, not within kMinSeparation of a pending point or an earlier member:
//      a fantasy under a fitted noise left log EI high right beside it), then condition the
//      engine on a fantasy there (as in 1) so the next choice accounts for it. The incumbent
//      follows the fantasies (min of the incumbent and each fantasy value). After each of the
//      first max_refined_picks fantasies, step 3 runs again from the refine_starts_per_pick best
//      pool points (refine_iterations_per_pick iterations), so the next member is a local
//      maximum of the fantasised acquisition rather than the best point of a pool drawn before
//      the fantasies (bench/RESULTS.md: Ackley-10, batch 8, median regret 12.7 -> 8.5).
//      The member at position exploit_member (if any) is chosen by the posterior mean instead: the
//      model's predicted minimum under the fantasies so far, found by a refinement of its own
//      (exploit_refine_starts starts, ranked by the mean, of up to exploit_refine_iterations
//      steps, enough to reach the minimum rather than come near it; one GpEngine::DescendMean
//      call) and ranked by log EI taken at an incumbent kExploitOffset standard deviations above
//      the current one, where EI = (tau - mean) Phi(z) + sd phi(z) is tau - mean up to a
//      vanishing variance term. Log EI alone spends a batch's later members on the places
//      its fantasies leave uncertain; in a converged basin one member per batch that goes to the
//      predicted optimum brings the precision close to sequential (bench/RESULTS.md: Hartmann6,
//      batch 8, median regret inside the global basin 4.7e-6 -> 1.5e-6; reaching the minimum:
//      Branin, batch 8, 80 seeds, 7.0e-8 -> 2.6e-8).
// Fewer than q points come back only when the pool has fewer distinct admissible points.
//
// Determinism: a function of (posterior, q, options including seed) and the engine's arithmetic.
//
// Thread safety: uses `engine` exclusively for the duration of the call.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <Eigen/Core>

#include "kernels/gp_engine.h"

namespace hpo::kernels {

enum class FantasyMode { kKrigingBeliever, kSampled };

// How far above the incumbent (in standard deviations of the standardised objective) the
// exploit member's log EI is taken (step 4): far enough that EI ranks by the mean alone.
inline constexpr double kExploitOffset = 10.0;

// A batch member keeps at least kMinSeparation * sqrt(dims) (unit-cube distance) from the pending
// points and the members before it, when one of the kSeparationLookahead pool points ranked next
// does (step 4); else it is the best one not chosen, as before.
inline constexpr double kMinSeparation = 1e-3;
inline constexpr size_t kSeparationLookahead = 16;

// Maps a point of the unit cube to the valid point it stands for, in place (integers rounded,
// one-hot groups made one-hot, inactive coordinates fixed), and, when `movable` is not null,
// writes 1 for every coordinate local refinement may move at this point and 0 for the others.
// Should be idempotent (points are compared exactly after projection). An empty ProjectFn is the identity with every coordinate movable.
using ProjectFn = std::function<void(double* x, uint8_t* movable)>;

struct AcquisitionOptions {
  size_t pool_size = 4096;
  // Bound on pool_size x training points (the O(m n^2) solve is the dominant cost): with more
  // training points than max_pool_work / pool_size the pool shrinks to max_pool_work / n
  // candidates, but never below min_pool_size. Keeps latency bounded on large histories.
  size_t max_pool_work = size_t{4096} * 1000;
  size_t min_pool_size = 1024;
  double local_fraction = 0.25;
  size_t local_centres = 5;
  // Step 3: starts and iterations (one GpEngine::Ascend call; with the default loop each
  // iteration is one Evaluate).
  size_t refine_starts = 16;
  int refine_iterations = 30;
  // Step 4's refinement after each fantasy: starts per member, iterations, and for how many
  // members (the cost grows with q x starts x n^2; 8 members keep q = 32 at n = 750 within the
  // 1 s budget). Its starts are pool points near a maximum already (refined before the
  // fantasy moved it a little): 10 iterations lose nothing measurable against 30 with the faces
  // held (bench/RESULTS.md, 2026-12-04 19:40), and they were 248 of a batch's 279 Evaluate calls
  // at q = 32 (each a device round trip on the GPU, before the ascent became one call).
  size_t refine_starts_per_pick = 4;
  int refine_iterations_per_pick = 10;
  size_t max_refined_picks = 8;
  // Step 4's exploit member's refinement. A start stops once its step falls below
  // kAscentMinStep (kernels/ascent_step.h), so the iterations are a ceiling. The other members'
  // 4 starts and 10 iterations left it 1e-3 to 4e-3 short of the minimum in the unit cube; these
  // reach it within 2e-5 (kernels_engine_test). Branin, batch 8, 80 seeds: 60 iterations as good
  // as 100 or 200, 30 not. Cost, one such refinement per batch: on the CPU engine, which follows
  // the mean alone, O(n D) per start and step (0.012 s at n = 2000, d = 20, 2 cores;
  // bench/RESULTS.md). The CUDA engine ascends log EI at the far incumbent
  // (GpEngine::DescendMean's default) in its device loop, which looks every 8 rounds whether
  // every start has stopped: not measured on a device yet.
  size_t exploit_refine_starts = 8;
  int exploit_refine_iterations = 60;
  FantasyMode fantasy = FantasyMode::kKrigingBeliever;
  // Step 4's member (0-based) chosen by the posterior mean; kNoMember: none.
  static constexpr size_t kNoMember = static_cast<size_t>(-1);
  size_t exploit_member = kNoMember;
  uint64_t seed = 0;
  ProjectFn project;
  std::vector<Eigen::VectorXd> failed;   // fantasised at the worst target first (step 1); never proposed
  std::vector<Eigen::VectorXd> pending;  // fantasised before choosing; never proposed
  std::vector<Eigen::VectorXd> exclude;  // never proposed (compared after projection, exactly)
};

struct Batch {
  std::vector<Eigen::VectorXd> points;  // unit cube, projected
  std::vector<double> log_ei;           // at the time of choice (after the earlier fantasies)
  std::vector<double> mean;             // standardised posterior mean at the time of choice
  std::vector<double> variance;
};

// Wall seconds spent inside the engine's calls, by kind; what the acquisition took beyond their
// sum is host work (candidates, projection, duplicates, bookkeeping).
struct EngineSeconds {
  double load = 0;       // Load (the CUDA engine: the inverse factor)
  double evaluate = 0;   // Evaluate (pending fantasies, batch members' scores)
  double pool = 0;       // SetPool, ExtendPool
  double top_k = 0;      // PoolTopK
  double fantasize = 0;  // Fantasize
  double ascend = 0;     // Ascend (the refinements)
  double descend = 0;    // DescendMean (the exploit member's refinement)
  double total() const { return load + evaluate + pool + top_k + fantasize + ascend + descend; }
};

struct AcquisitionReport {
  size_t pool = 0;          // distinct admissible candidates evaluated
  size_t refined = 0;       // refined points added to the pool (distinct, new)
  size_t failed = 0;        // failed points fantasised at the worst target
  size_t pending = 0;       // pending points fantasised
  size_t engine_calls = 0;  // calls made to the engine (each a device round trip on the GPU)
  EngineSeconds engine_seconds;
};

// InvalidArgument for q == 0 or mismatched shapes; engine errors are passed on.
GpStatus SuggestBatch(GpEngine& engine, const Posterior& posterior, size_t q, const AcquisitionOptions& options,
                      Batch* out, AcquisitionReport* report);

}  // namespace hpo::kernels
