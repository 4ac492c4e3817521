// coordinator/core_tuning.cc: CoordinatorCore::Impl, what the tuning rules see: early stopping, warm start priors, the objective (coordinator/core_impl.h).
#include "coordinator/core_impl.h"
#include "coordinator/grid_strategy.h"

namespace hpo::coordinator {

using core_detail::Lower;
using core_detail::Truncate;
using proto::StringMap;

bool CoordinatorCore::Impl::MedianRuleOn(const TuningJob& j) {
  const auto& c = j.spec.hyper_parameter_tuning_job_config;
  return c && c->training_job_early_stopping_type.value_or("Off") == "Auto";
}

const HyperbandStrategy* CoordinatorCore::Impl::HyperbandOf(const TuningJob& j) {
  return dynamic_cast<const HyperbandStrategy*>(j.strategy.get());
}

void CoordinatorCore::Impl::MaybeStopEarly(TuningJob& j, Trial& t, size_t old_len, int64_t now, std::vector<Outgoing>* out) {
  if (t.state != TrialState::kInProgress || t.stop_requested || j.status != "InProgress") return;
  if (t.ended_attempt == t.attempt) return;  // its program has ended: nothing left to stop
  const bool maximize = MaximizeFor(j, t.definition_name);
  const HyperbandStrategy* hb = HyperbandOf(j);
  std::vector<const std::vector<double>*> peers;
  const HyperbandSchedule* schedule = hb ? &hb->Schedule(t.definition_name) : nullptr;
  const int bracket = schedule ? schedule->BracketOf(t.index) : 0;
  for (const auto& name : j.trials) {
    const Trial& u = trials.at(name);
    if (u.name == t.name || u.curve.empty()) continue;
    if (schedule) {
      if (u.definition_name == t.definition_name && schedule->BracketOf(u.index) == bracket) peers.push_back(&u.curve);
    } else if (u.index < t.index) {
      peers.push_back(&u.curve);
    }
  }
  // The program's own epochs, when its definition says: the median rule does not stop a trial
  // at the emission that would end it anyway (the stop would only race its normal exit). Only
  // that one: a program that reports per step, or more than once an epoch, goes on past it, and
  // skipping every later report left such programs without early stopping.
  const auto* def = Definition(j, t.definition_name);
  const std::optional<int64_t> last_epoch = def ? ProgramEpochs(*def) : std::nullopt;
  for (size_t k = old_len + 1; k <= t.curve.size(); ++k) {
    if (!schedule && last_epoch && static_cast<int64_t>(k) == *last_epoch) continue;
    const std::span<const double> prefix(t.curve.data(), k);
    std::string reason;
    if (schedule) {
      RungDecision d = AshaDecide(*schedule, t.index, prefix, peers, maximize);
      if (d.stop) reason = d.Explain(maximize);
    } else {
      MedianDecision d = MedianRule(peers, prefix, maximize);
      if (d.stop) reason = d.Explain(maximize);
    }
    if (reason.empty()) continue;
    Event(now, "EarlyStopped", j.name, t.name, reason);
    StopTrialMsg(t, reason, now, out);
    return;
  }
}

void CoordinatorCore::Impl::BuildPrior(TuningJob& j) {
  JobIndex& ix = Index(j);
  ix.prior.clear();
  ix.combined_stale = true;
  const auto& w = *j.spec.warm_start_config;
  const bool transfer = w.warm_start_type.value_or("") == "TransferLearning";
  auto defs = j.spec.Definitions();
  if (defs.empty()) return;
  std::vector<std::string> names;  // this job's tunable hyperparameters
  for (const auto& [name, kind] : HyperParameterKinds(j.spec)) {
    if (kind != 's') names.push_back(name);
  }
  // This job's static values: a parent's training job that ran with others (a static value
  // changed, or a tuned one made static at a value it did not have) did not run this job's
  // configuration. It still informs the model, as a TransferLearning parent's does, but does not
  // count as run (ProposedKeys): the configuration runs here under this job's settings.
  StringMap statics = defs[0]->static_hyper_parameters;
  statics.erase("_tuning_objective_metric");
  auto same = [](const std::string& a, const std::string& b) {
    if (a == b) return true;
    char *ea = nullptr, *eb = nullptr;
    const double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    return !a.empty() && !b.empty() && *ea == '\0' && *eb == '\0' && x == y;  // "4" and "4.0"
  };
  // Only configurations inside this job's ranges: a parent's point outside them (a range
  // narrowed, a categorical value left out) was clamped onto the boundary, as if its result had
  // been seen there, and the model sent this job's training jobs to corners its parents had
  // shown were bad.
  const Result<SearchSpace> space = SearchSpace::FromSpec(j.spec, *defs[0]);
  for (const auto& p : w.parent_hyper_parameter_tuning_jobs) {
    const TuningJob* parent = Job(p.hyper_parameter_tuning_job_name.value_or(""));
    if (!parent) continue;
    const std::set<std::string> fitting = WarmFitting(j, *parent);
    for (const auto& tn : parent->trials) {
      const Trial& u = trials.at(tn);
      if (!ObjectiveSucceeded(u) || !fitting.count(u.definition_name)) continue;
      Observation o;
      o.trial = u.name;
      o.definition_name = defs[0]->definition_name.value_or("");
      bool complete = true;
      for (const auto& n : names) {
        const StringMap& from = u.tuned.count(n) ? u.tuned : u.hyperparameters;  // else the parent had it static
        auto v = from.find(n);
        if (v == from.end()) {
          complete = false;
          break;
        }
        o.hyperparameters[n] = v->second;
      }
      if (!complete) continue;
      if (space.ok()) {
        Result<Config> inside = space->Normalize(o.hyperparameters);
        if (!inside.ok()) continue;
        o.hyperparameters = std::move(inside).value();
      }
      bool same_statics = true;
      for (const auto& [n, value] : statics) {
        const StringMap& from = u.tuned.count(n) ? u.tuned : u.hyperparameters;
        auto v = from.find(n);
        if (v == from.end() || !same(v->second, value)) {
          same_statics = false;
          break;
        }
      }
      o.objective = u.objective;
      o.status = Observation::kSucceeded;
      o.prior = transfer || !same_statics;
      ix.prior.push_back(std::move(o));
    }
  }
}

std::pair<std::string, bool> CoordinatorCore::Impl::WarmObjective(const TuningJob& j) const {
  auto defs = j.spec.Definitions();
  const std::string def = defs.empty() ? "" : defs[0]->definition_name.value_or("");
  return {ObjectiveMetricFor(j, def), MaximizeFor(j, def)};
}

std::map<std::string, char> CoordinatorCore::Impl::HyperParameterKinds(const proto::TuningJobSpec& spec,
                                                                     const proto::TrainingJobDefinition* def) {
  std::map<std::string, char> kinds;
  auto defs = spec.Definitions();
  if (!def && !defs.empty()) def = defs[0];
  if (!def) return kinds;
  for (const auto& [k, v] : def->static_hyper_parameters) kinds[k] = 's';
  if (Result<SearchSpace> space = SearchSpace::FromSpec(spec, *def); space.ok()) {
    for (const Dimension& d : space->dimensions()) {
      kinds[d.name] = d.kind == DimensionKind::kInteger ? 'i' : d.kind == DimensionKind::kContinuous ? 'c' : 'k';
    }
  }
  kinds.erase("_tuning_objective_metric");
  return kinds;
}

// A definition's training image (or algorithm resource): what IdenticalDataAndAlgorithm compares.
static std::string ImageOf(const proto::TrainingJobDefinition* def) {
  if (!def || !def->algorithm_specification) return "";
  const auto& a = *def->algorithm_specification;
  return a.training_image.value_or(a.algorithm_name.value_or(""));
}

std::string CoordinatorCore::Impl::WarmStartMismatch(const TuningJob& parent, const proto::TrainingJobDefinition& def,
                                                    const std::string& mine_metric, bool mine_maximize,
                                                    const std::map<std::string, char>& kinds) const {
  static const std::map<char, std::string> kind_name = {
      {'i', "an integer range"}, {'c', "a continuous range"}, {'k', "a categorical range"}, {'s', "static"}};
  const bool many = parent.spec.Definitions().size() > 1;
  const std::string def_name = def.definition_name.value_or("");
  const std::string of = many ? "its definition \"" + def_name + "\"" : "it";
  const std::string metric = ObjectiveMetricFor(parent, def_name);
  const bool maximize = MaximizeFor(parent, def_name);
  if (metric != mine_metric || maximize != mine_maximize) {
    return (many ? of + "'s objective is " : std::string("its objective is ")) + (maximize ? "Maximize " : "Minimize ") +
           metric + ", this job's is " + (mine_maximize ? "Maximize " : "Minimize ") + mine_metric +
           "; warm start needs the same objective metric and type";
  }
  const std::map<std::string, char> pk = HyperParameterKinds(parent.spec, &def);
  if (pk.size() != kinds.size()) {
    return of + " has " + std::to_string(pk.size()) + " static and tunable hyperparameters, this job " +
           std::to_string(kinds.size()) + "; warm start needs the same number of hyperparameters";
  }
  for (const auto& [hp, kind] : kinds) {
    auto it = pk.find(hp);
    if (it == pk.end()) {
      return of + " has no hyperparameter \"" + hp +
             "\"; warm start needs the same hyperparameters (static ones may become tunable and the other way round)";
    }
    if (kind != 's' && it->second != 's' && kind != it->second) {
      return (many ? of + ": " : std::string()) + "\"" + hp + "\" is " + kind_name.at(it->second) + " there and " +
             kind_name.at(kind) + " here; a tunable hyperparameter keeps its type";
    }
  }
  return "";
}

std::set<std::string> CoordinatorCore::Impl::WarmFitting(const TuningJob& child, const TuningJob& parent) const {
  const auto [metric, maximize] = WarmObjective(child);
  const std::map<std::string, char> kinds = HyperParameterKinds(child.spec);
  std::set<std::string> names;
  for (const proto::TrainingJobDefinition* def : parent.spec.Definitions()) {
    if (WarmStartMismatch(parent, *def, metric, maximize, kinds).empty()) names.insert(def->definition_name.value_or(""));
  }
  return names;
}

// SageMaker's limit on what a warm start changes: "the number of total changes from tunable
// hyperparameters in the parent jobs to static hyperparameters in the new tuning job, plus the
// number of changes in the values of static hyperparameters cannot be more than 10", each such
// change counted as 2 (its example: a tunable categorical of red and blue made static, or a static
// red made blue). The SDK's own sagemaker_* values (its job name, its upload's path) are left out:
// they differ between any two tuning jobs it makes. The changes from definition `def` of a parent
// to this job's hyperparameters `kinds` and statics `mine`, each named in `what`.
static int WarmStartChanges(const proto::TrainingJobDefinition& def, const std::map<std::string, char>& theirs,
                            const std::map<std::string, char>& kinds, const proto::StringMap& mine,
                            std::string* what) {
  int changes = 0;
  for (const auto& [hp, kind] : kinds) {
    if (kind != 's' || hp.rfind("sagemaker_", 0) == 0) continue;
    auto their = theirs.find(hp);
    if (their == theirs.end()) continue;
    auto value = mine.find(hp);
    const std::string now = value == mine.end() ? "" : value->second;
    std::string change;
    if (their->second != 's') {
      change = hp + " tunable there, static " + now + " here";
    } else if (auto before = def.static_hyper_parameters.find(hp);
               before != def.static_hyper_parameters.end() && before->second != now) {
      change = hp + " " + before->second + " there, " + now + " here";
    }
    if (change.empty()) continue;
    changes += 2;
    *what += (what->empty() ? "" : "; ") + change;
  }
  return changes;
}

Status CoordinatorCore::Impl::CheckWarmStart(const proto::TuningJobSpec& spec, proto::Spelling spelling,
                                             std::vector<std::string>* notes) {
  const auto& w = *spec.warm_start_config;
  // In the spelling the spec came in (a Kubernetes resource's refusal named its SageMaker field).
  const proto::FieldPath base = proto::FieldPath(spelling).Child("WarmStartConfig").Child("ParentHyperParameterTuningJobs");
  TuningJob probe;
  probe.spec = spec;
  InitObjective(probe);
  const auto [mine_metric, mine_maximize] = WarmObjective(probe);
  const std::map<std::string, char> kinds = HyperParameterKinds(spec);
  const auto mine_defs = spec.Definitions();
  const std::string mine_image = ImageOf(mine_defs.empty() ? nullptr : mine_defs[0]);
  int64_t parent_trials = 0;
  for (size_t i = 0; i < w.parent_hyper_parameter_tuning_jobs.size(); ++i) {
    const std::string name = w.parent_hyper_parameter_tuning_jobs[i].hyper_parameter_tuning_job_name.value_or("");
    const std::string at = base.Index(i).str() + " \"" + name + "\": ";
    const TuningJob* parent = Job(name);
    if (!parent) {
      return Status::InvalidArgument(at + "no such tuning job on this coordinator (parents must be jobs it ran; "
                                          "`hpo list` shows them)");
    }
    if (parent->deleting) return Status::InvalidArgument(at + "is being deleted");
    if (!parent->Terminal()) {
      return Status::InvalidArgument(at + "is " + parent->status +
                                     "; a parent must be Completed, Stopped or Failed (wait for it, or stop it)");
    }
    // Each of the parent's definitions (one, or several with TrainingJobDefinitions) that
    // measured this job's objective, on the same hyperparameters, informs it; the first reason
    // another does not is the refusal when none does.
    std::string why;
    std::vector<std::string> fitting;  // their names
    const auto pdefs = parent->spec.Definitions();
    for (const proto::TrainingJobDefinition* def : pdefs) {
      const std::string def_name = def->definition_name.value_or("");
      std::string not_fit = WarmStartMismatch(*parent, *def, mine_metric, mine_maximize, kinds);
      std::string changed;
      const int changes =
          not_fit.empty() && !mine_defs.empty()
              ? WarmStartChanges(*def, HyperParameterKinds(parent->spec, def), kinds,
                                 mine_defs[0]->static_hyper_parameters, &changed)
              : 0;
      if (changes > 10) {
        not_fit = (pdefs.size() > 1 ? "its definition \"" + def_name + "\": " : std::string()) +
                  std::to_string(changes) + " changes of hyperparameters from it (" + changed +
                  "), and a warm start allows at most 10: a tunable hyperparameter made static, or a static value "
                  "changed, counts 2 (as SageMaker counts them); change fewer, or start a new tuning job without "
                  "WarmStartConfig";
      }
      if (!not_fit.empty()) {
        if (why.empty()) why = not_fit;
        continue;
      }
      fitting.push_back(def_name);
      // IdenticalDataAndAlgorithm: "the same input data and training image as the parent tuning
      // jobs", but "a new version of the training algorithm" whose changes "do not affect the
      // algorithm itself" (logging, a data format) is allowed (SageMaker's WarmStartConfig), which
      // no one but its author can tell: a new image is noted, not refused (a re-tagged image was).
      if (w.warm_start_type.value_or("") == "IdenticalDataAndAlgorithm" && notes) {
        const std::string theirs = ImageOf(def);
        if (theirs != mine_image) {
          notes->push_back("parent " + name + (pdefs.size() > 1 ? " (definition " + def_name + ")" : "") +
                           " ran the training image \"" + theirs + "\", this job runs \"" + mine_image +
                           "\": IdenticalDataAndAlgorithm takes its results as this algorithm's; if the new image "
                           "changes the algorithm itself, use WarmStartType TransferLearning");
        }
      }
    }
    if (fitting.empty()) return Status::InvalidArgument(at + why);
    if (fitting.size() < pdefs.size() && notes) {
      std::string list;
      for (const auto& f : fitting) list += (list.empty() ? "" : ", ") + f;
      notes->push_back("parent " + name + " has " + std::to_string(pdefs.size()) +
                       " training job definitions; only the training jobs of " + list + " (" +
                       (mine_maximize ? "Maximize " : "Minimize ") + mine_metric +
                       ", the same hyperparameters) inform this job and compete for its OverallBestTrainingJob");
    }
    parent_trials += static_cast<int64_t>(parent->trials.size());
  }
  const auto& cfg = *spec.hyper_parameter_tuning_job_config;
  const int64_t limit = cfg.strategy.value_or("") == "Random" ? opt.limits.max_training_jobs
                                                              : opt.limits.max_training_jobs_bayesian;
  const bool grid = cfg.strategy.value_or("") == "Grid";
  const std::optional<int64_t> asked =
      cfg.resource_limits ? cfg.resource_limits->max_number_of_training_jobs : std::nullopt;
  const bool combinations = !asked && grid;  // left out: every combination runs
  int64_t own = asked.value_or(0);
  if (combinations) {
    if (auto g = GridStrategy::Create(spec); g.ok()) own = static_cast<int64_t>((*g)->Size());
  }
  if (parent_trials + own > limit) {
    // The same quota as MaxNumberOfTrainingJobs alone (proto/validate.cc): ResourceLimitExceeded.
    const bool random = cfg.strategy.value_or("") == "Random";
    const int64_t room = limit - parent_trials;
    // What can change: this job's count (not Grid's, which is its combinations), else the parents.
    const std::string instead =
        room >= 1 && !grid ? "set it to at most " + std::to_string(room) + ", "
        : room >= 1        ? "a Grid job runs every combination: warm-start from fewer parents, "
                           : "the parents alone use " + std::to_string(parent_trials) + " of the " +
                                 std::to_string(limit) + ": warm-start from fewer parents, ";
    return Status::ResourceExhausted(
        "HyperParameterTuningJobConfig.ResourceLimits.MaxNumberOfTrainingJobs: the parents' " +
        std::to_string(parent_trials) + " training jobs plus this job's " + std::to_string(own) +
        (combinations ? " (its Grid combinations)" : "") +
        " exceed the " + std::to_string(limit) +
        " a tuning job may have (parents' training jobs count against the limit); " + instead +
        "or raise the quota (per account on SageMaker, an option here) with " +
        (random ? "--max-training-jobs-random" : "--max-training-jobs") + " (hpo coordinator, hpo run)");
  }
  return Status::Ok();
}

void CoordinatorCore::Impl::InitObjective(TuningJob& j) {
  const auto& cfg = j.spec.hyper_parameter_tuning_job_config;
  std::optional<proto::Objective> obj;
  if (cfg && cfg->hyper_parameter_tuning_job_objective) obj = cfg->hyper_parameter_tuning_job_objective;
  auto defs = j.spec.Definitions();
  if (!obj && !defs.empty() && defs[0]->tuning_objective) obj = defs[0]->tuning_objective;
  if (obj) {
    j.objective_metric = obj->metric_name.value_or("");
    j.maximize = obj->type.value_or("") == "Maximize";
  }
}

}  // namespace hpo::coordinator
