// coordinator/bayesian_strategy.h: SageMaker's Bayesian strategy, a Gaussian-process surrogate
// with log expected improvement (the engine is kernels/; this file maps a tuning job onto it).
//
// The unit cube: one coordinate per numeric range and one per categorical value (one-hot), per
// SearchSpace (coordinator/search_space.h: Linear, Logarithmic, ReverseLogarithmic, Auto; integers
// relaxed to [lo-0.5, hi+0.5] and rounded). With several TrainingJobDefinitions the cube is
// [definition one-hot | definition 1's coordinates | definition 2's | ...]: the definition is a
// categorical choice, and the coordinates of the definitions not chosen are 0 (inactive). The
// acquisition only ever looks at valid points: every candidate is projected (one-hot groups made
// one-hot, integers and the value text rounded exactly as the proposal will be, inactive blocks
// zeroed), and local refinement moves only the numeric coordinates of the active definition.
//
// The history (strategy.h's contract): trials that succeeded, or were stopped, with a finite
// objective are observations (Maximize objectives negated: the model minimises); running trials
// are pending and fantasised (Kriging believer by default) so a batch spreads around them; failed
// trials and trials without an objective are left out of the fit. Those that failed, or that
// succeeded without an objective, or ended with one that is not finite (NaN), are the
// configuration's fault as far as the model can tell: the acquisition fantasises them at the
// worst objective observed (kernels/acquisition.h, step 1; the latest kMaxFailedFantasies), so
// proposals move away from a region whose training jobs fail. Left out altogether, a learning
// rate whose upper end diverged drew 27 of a job's 30 training jobs there, 1e-3 apart, each
// failure leaving the model as hopeful as before. A trial stopped without an objective (by a
// user, or at the job's end) says nothing about its configuration and is left out. No
// configuration already in the history (any status) is proposed again while the space allows.
//
// The model: the objectives, with values far worse than the rest pulled to Tukey's fence
// (PullInOutliers), feed a Matern-5/2 ARD Gaussian process (kernels/gp_model.h) that reverts to
// their prior_mean_quantile away from the data. When the GP explains a monotone (Yeo-Johnson)
// transform of them better than the values as they are (options.output_warp_margin, in nats of
// marginal likelihood; kernels/output_warp.h), it models the transformed values: a plateau of
// poor configurations is compressed and the differences inside a good basin spread out. The
// order of the objectives, and so the incumbent, is kept. SuggestStats::output_lambda says which.
//
// The start: with fewer observations than min_observations (default max(3, min(D + 1, 20)),
// D = unit-cube dimensions; failed configurations count, once two have an objective to fit,
// when at most kFailuresStartMaxParallel training jobs are in flight with the ones asked for;
// the steering below too)
// proposals are space-filling: points history.size(), +1, ... of a
// scrambled Sobol sequence over the cube (seeded by the job's seed), projected and decoded as
// the acquisition's candidates are, so the first 2^k trials of a job form a (t,k,D)-net (every
// definition, categorical value and region of the ranges is covered evenly, where independent
// random draws leave gaps and clumps). A point whose configuration is already in the history
// (finite spaces) is skipped. With failures, a point whose nearest configuration tried failed
// goes after the others (a nearest-neighbour guess at where training jobs fail): a learning rate
// whose upper 90% diverged had 18 of 20 training jobs fail in the start, the model never
// reached. Measured (hpo bench optimize --fail-above, 30 evaluations, 20 seeds): Branin with 90%
// failing, failures 24.5 -> 15 of 30 and mean regret 15.3 -> 3.0; Hartmann6 with 75%, 19.5 ->
// 7 and median regret 2.03 -> 0.85. Measured on Hartmann6 (bench/RESULTS.md, 200 seeds): the runs that
// reach the global basin rose from 120 to 131 at batch 1 and from 115 to 125 at batch 8 against
// random starting points. options.start_design = kRandom restores the random start.
// With several training job definitions, each needs a start of its own too: while one has had
// fewer training jobs (any end, running included) than max(3, min(D_k + 1, 20)) for its own D_k
// coordinates (at most its configurations, for a finite space), the start points go to those,
// in turn. The shared start alone gave one definition of a
// two-definition job two points, 0.0004 and 0.64 on a range whose optimum was 0.3, and its model
// sent eight of the next ten trials to the range's edge.
//
// Parallel trials: when P = running trials + proposals asked for is 4 or more, one proposal in
// every P (history position h + b with (h + b) mod P == 1) is the posterior mean's minimiser
// (kernels/acquisition.h, exploit_member) rather than log EI's maximiser: a synchronous batch of
// 8 has one such member, and 8 slots proposing one at a time make every 8th proposal one.
// Measured on Hartmann6 (bench/RESULTS.md, paired seeds inside the global basin): regret 2.3x
// lower at batch 4 and 2.2-2.7x at batch 8, but 1.6x higher at batch 2, where the second
// member is the only one left for log EI; hence the threshold. A limit: in a job proposing one
// at a time, if the previous predicted-best trial is still running the next one lands next to
// it (Kriging believer fantasies leave the mean where it was); with trials of similar length
// that trial has finished by then. options.parallel_exploit = false turns it off.
//
// Random fallback (never a crash): when the space has no tunable coordinate, or when the fit or
// the acquisition fails numerically, proposals come from RandomStrategy with the same seed, and
// LastSuggestStats()->fallback says why (also logged with spdlog: at info for failures, at debug
// during the start). During the start `fallback` says so too ("... the model needs 7"): those
// proposals are not the model's. When the model yields fewer distinct points than asked (tiny
// finite spaces), the rest are random too.
//
// Reproducibility: Propose is a pure function of (spec, seed, history, options): the model is
// fitted from scratch each call with seed StreamSeed(seed, history.size()) (restarts, subsets,
// Sobol scrambling, sampled fantasies). With options.warm_start the previous call's
// hyperparameters are an extra start of the fit: faster to converge, but then the result also
// depends on the previous call, so a strategy rebuilt after a restart may propose differently
// (off by default for that reason). Same device, same results; CPU and CUDA agree within
// tolerances only.
//
// Latency: every Propose records its wall time split into fit and acquisition
// (LastSuggestStats), for the coordinator to log and export.
//
// Thread safety: as Strategy (one thread at a time); the engine may use several threads inside.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <Eigen/Core>

#include "common/status.h"
#include "coordinator/random_strategy.h"
#include "coordinator/strategy.h"
#include "kernels/acquisition.h"
#include "kernels/gp_engine.h"
#include "kernels/gp_model.h"
#include "kernels/sobol.h"

namespace hpo::coordinator {

// Objectives worse than Tukey's far-out fence (upper quartile + 3 interquartile ranges; lower is
// better here) are pulled to the fence: one diverged run's 1e10 loss stretched the
// standardisation so that every other value looked alike, and the model never beat its start
// again (a helper's job: best 1.11 instead of 0.08; at 1e300 the spread overflowed and every
// target became 0). The order of the rest is kept, and the outlier still reads as the worst.
// With half the values tied (no interquartile range, to 1e-9 of their size) the good side's
// spread stands in; with none either, the outliers go just above the tied rest (1e-9 of its size
// apart: still the worst). Returns how many were pulled. (Also the importance model's,
// coordinator/importance.h.)
size_t PullInOutliers(Eigen::VectorXd* y);

// Observations the model waits for over `dims` unit-cube coordinates (BayesianOptions::
// min_observations' default): max(3, min(D + 1, 20)).
size_t BayesianStartSize(size_t dims);

struct BayesianOptions {
  kernels::Device device = kernels::Device::kAuto;
  int threads = 0;                 // the fit's and the CPU engine's threads; 0: all cores
  size_t min_observations = 0;     // 0: max(3, min(D + 1, 20))
  enum class StartDesign { kSobol, kRandom };
  StartDesign start_design = StartDesign::kSobol;  // the proposals before min_observations (above)
  bool input_warping = true;       // Kumaraswamy warping of the numeric coordinates...
  size_t warp_min_observations = 0;  // ...once the model has this many; 0: 10 per warped coordinate
  kernels::HyperFit hyper_fit = kernels::HyperFit::kMaximumPosterior;
  kernels::FantasyMode fantasy = kernels::FantasyMode::kKrigingBeliever;
  bool warm_start = false;         // see Reproducibility above
  int random_restarts = 1;
  size_t pool_size = 4096;         // Sobol + local candidates per suggestion
  size_t refine_starts = 16;
  size_t refine_starts_per_pick = 4;  // kernels/acquisition.h, step 4; 0: off
  bool parallel_exploit = true;    // "Parallel trials" above
  bool fantasize_failed = true;    // "The history" above; false leaves failed trials out altogether
  bool start_counts_failures = true;  // "The start" above: failed trials count towards its size...
  static constexpr size_t kFailuresStartMaxParallel = 3;  // ...when proposing for at most this many slots
  static constexpr size_t kExploitMinParallel = 4;
  double prior_mean_quantile = kernels::FitOptions().prior_mean_quantile;  // where the model reverts to
  double output_warp_margin = kernels::FitOptions().output_warp_margin;    // "The model" above; NaN: off
  // Proposing for several slots at once (a batch, or beside running trials), the long
  // lengthscale prior must beat the short one by this many nats of evidence (kernels/gp_model.h,
  // FitOptions::short_prior_margin; sequential proposals use 0). A batch's fantasy-driven picks
  // spread to the box's faces, such data favour the long prior, and its next batch went to the
  // corners again (bench/RESULTS.md, 2026-11-29). 0, 4 and 8 measured against 2 on svr_diabetes
  // at 8 parallel (2026-12-05): no difference beyond the seeds' noise.
  double parallel_short_prior_margin = 2.0;
  size_t max_fit_points = 200;     // kernels/gp_model.h: subset for the hyperparameters
  size_t max_posterior_points = 2000;  // subset of data for the posterior (the approximation)
  // Warm start TransferLearning (set by Create from the spec): one more cube coordinate, the
  // task: 0 for the parents' observations (Observation::prior), 1 for this job's and for every
  // candidate. Its ARD length scale, fitted with the rest, learns how far the parents' results
  // carry over: a long one pools them with the job's own, a short one lets the job's data
  // override them.
  bool task_coordinate = false;
};

// Cube points of failed configurations and of the others tried (ended with an objective, or
// running), for the start design (BayesianStrategy::Start).
struct NearFailures {
  const std::vector<Eigen::VectorXd>* failed = nullptr;
  const std::vector<Eigen::VectorXd>* fine = nullptr;
};

class BayesianStrategy : public Strategy {
 public:
  // Failed configurations fantasised (the latest): each is an O(n^2) update of the factor.
  static constexpr size_t kMaxFailedFantasies = 256;

  // Errors as DefinitionSpaces; Unavailable when options.device is cuda and no CUDA engine can
  // run here (the message says why). With device auto the CPU engine runs and the reason is in
  // EngineNote().
  static Result<std::unique_ptr<BayesianStrategy>> Create(const proto::TuningJobSpec& spec, uint64_t seed,
                                                          const BayesianOptions& options = BayesianOptions());

  std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) override;
  bool Exhausted(const std::vector<Observation>& history) const override;
  std::string Name() const override { return "Bayesian"; }
  // A proposal one training job early fantasises up to twice the parallel trials and misses a
  // result: svr_diabetes at 8 parallel, median regret 2-3e-4 without, 6e-4 to 1e-3 with
  // (bench/RESULTS.md). The round trip it would save is not worth that.
  Ahead ProposeAhead() const override { return Ahead::kNever; }
  const SuggestStats* LastSuggestStats() const override { return &stats_; }
  bool ProposesOffCore() const override { return true; }

  // ---- the unit cube (exposed for tests and benchmarks) ----------------------------------------
  size_t UnitDims() const { return dims_; }
  // The cube point of an observation's configuration; nullopt when its definition is unknown.
  // `prior`: a warm-start parent's observation (the task coordinate is 0; see task_coordinate).
  std::optional<std::vector<double>> Encode(const std::string& definition_name, const Config& config,
                                            bool prior = false) const;
  // The proposal a cube point stands for (u has UnitDims() entries, HPO_CHECK).
  Proposal Decode(std::span<const double> u) const;
  // The projection the acquisition uses (kernels::ProjectFn semantics).
  void Project(double* u, uint8_t* movable) const;
  // The engine in use ("cpu (Eigen 3.4, OpenMP, 2 threads)") and why CUDA was not used ("" if it was).
  std::string EngineDescription() const { return engine_->Describe(); }
  const std::string& EngineNote() const { return engine_note_; }

  BayesianStrategy(std::vector<DefinitionSpace> spaces, std::vector<bool> maximize, uint64_t seed,
                   const BayesianOptions& options, std::unique_ptr<kernels::GpEngine> engine, std::string engine_note);

 private:
  std::vector<Proposal> Fallback(size_t n, const std::vector<Observation>& history, const std::string& reason,
                                 bool failure);
  // The start design's n proposals (the header's "The start"); random ones where Sobol points
  // run into configurations the history has.
  // `only`: with several definitions, the start points go to these (definition indices) only.
  // `near`: a start point whose nearest tried configuration failed goes after the others (the
  // header's "The start").
  std::vector<Proposal> Start(size_t n, const std::vector<Observation>& history, const std::vector<size_t>& only = {},
                              const NearFailures& near = {});
  // Appends to *out, in order, the proposals that `points` (projected cube points) stand for,
  // skipping configurations of a finite space already in `history` or taken earlier, up to n in
  // all; fills up to n from random search. Returns how many came from random search.
  size_t Distinct(const std::vector<Eigen::VectorXd>& points, size_t n, const std::vector<Observation>& history,
                  std::vector<Proposal>* out);

  std::vector<DefinitionSpace> spaces_;
  std::vector<bool> maximize_;  // per definition
  uint64_t seed_;
  BayesianOptions options_;
  std::unique_ptr<kernels::GpEngine> engine_;
  std::string engine_note_;
  RandomStrategy random_;
  kernels::SobolSequence start_points_;  // scrambled with the job's seed
  size_t def_width_ = 0;            // one-hot coordinates for the definition (0 with one definition)
  std::vector<size_t> offsets_;     // first coordinate of each definition's block
  size_t dims_ = 0;
  kernels::WarpMask warp_mask_;     // numeric coordinates
  std::optional<kernels::Hyperparameters> last_hp_;
  SuggestStats stats_;
};

}  // namespace hpo::coordinator
