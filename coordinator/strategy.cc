#include "coordinator/strategy.h"

#include "coordinator/bayesian_strategy.h"
#include "coordinator/grid_strategy.h"
#include "coordinator/hyperband_strategy.h"
#include "coordinator/random_strategy.h"

namespace hpo::coordinator {

Strategy::~Strategy() = default;

Config MergeHyperParameters(const proto::TrainingJobDefinition& definition, const Config& tuned,
                            const std::string& objective_metric) {
  Config merged = definition.static_hyper_parameters;
  for (const auto& [name, value] : tuned) merged[name] = value;
  merged["_tuning_objective_metric"] = objective_metric;
  return merged;
}

Result<std::unique_ptr<Strategy>> MakeStrategy(const proto::TuningJobSpec& spec, uint64_t seed) {
  if (!spec.hyper_parameter_tuning_job_config || !spec.hyper_parameter_tuning_job_config->strategy) {
    return Status::InvalidArgument("HyperParameterTuningJobConfig.Strategy is missing");
  }
  const std::string& name = *spec.hyper_parameter_tuning_job_config->strategy;
  if (name == "Random") {
    Result<std::unique_ptr<RandomStrategy>> s = RandomStrategy::Create(spec, seed);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Strategy>(std::move(s).value());
  }
  if (name == "Grid") {
    Result<std::unique_ptr<GridStrategy>> s = GridStrategy::Create(spec);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Strategy>(std::move(s).value());
  }
  if (name == "Bayesian") {
    Result<std::unique_ptr<BayesianStrategy>> s = BayesianStrategy::Create(spec, seed);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Strategy>(std::move(s).value());
  }
  if (name == "Hyperband") {
    Result<std::unique_ptr<HyperbandStrategy>> s = HyperbandStrategy::Create(spec, seed);
    if (!s.ok()) return s.status();
    return std::unique_ptr<Strategy>(std::move(s).value());
  }
  return Status::InvalidArgument("HyperParameterTuningJobConfig.Strategy: unknown strategy \"" + name +
                                 "\" (allowed: Bayesian, Random, Hyperband, Grid)");
}

Result<std::vector<DefinitionSpace>> DefinitionSpaces(const proto::TuningJobSpec& spec) {
  std::vector<const proto::TrainingJobDefinition*> defs = spec.Definitions();
  if (defs.empty()) {
    return Status::InvalidArgument("the spec has no TrainingJobDefinition or TrainingJobDefinitions");
  }
  std::vector<DefinitionSpace> out;
  for (const proto::TrainingJobDefinition* def : defs) {
    Result<SearchSpace> space = SearchSpace::FromSpec(spec, *def);
    if (!space.ok()) return space.status();
    out.push_back({def->definition_name.value_or(""), std::move(space).value()});
  }
  return out;
}

std::optional<size_t> FindDefinition(const std::vector<DefinitionSpace>& spaces, const std::string& name) {
  if (spaces.size() == 1) return 0;
  for (size_t i = 0; i < spaces.size(); ++i) {
    if (spaces[i].name == name) return i;
  }
  return std::nullopt;
}

std::optional<uint64_t> TotalCardinality(const std::vector<DefinitionSpace>& spaces) {
  uint64_t total = 0;
  for (const DefinitionSpace& d : spaces) {
    std::optional<uint64_t> n = d.space.Cardinality();
    if (!n || *n > (uint64_t{1} << 62) - total) return std::nullopt;
    total += *n;
  }
  return total;
}

namespace {
// An observation's key as ProposedKeys counts it; nullopt when it has none (a prior, another
// definition, a configuration outside a finite space).
std::optional<ConfigKey> KeyOf(const std::vector<DefinitionSpace>& spaces, const Observation& o) {
  if (o.prior) return std::nullopt;
  std::optional<size_t> def = FindDefinition(spaces, o.definition_name);
  if (!def) return std::nullopt;
  std::optional<uint64_t> index = spaces[*def].space.IndexOf(o.hyperparameters);
  if (!index) return std::nullopt;
  return ConfigKey{*def, *index};
}
}  // namespace

void ProposedKeyCache::Update(const std::vector<DefinitionSpace>& spaces, const std::vector<Observation>& history) const {
  // Trials are named in a job's history; without names (a caller's own list) nothing is kept.
  const bool named = !history.empty() && !history.front().trial.empty() && !history.back().trial.empty();
  auto same = [](const Observation& o, const Observation& kept) {
    return o.trial == kept.trial && o.definition_name == kept.definition_name && o.hyperparameters == kept.hyperparameters;
  };
  const bool extends = named && seen_ <= history.size() &&
                       (seen_ == 0 || (same(history[0], first_) && same(history[seen_ - 1], last_))) &&
                       per_definition_.size() == spaces.size();
  if (!extends) {
    keys_.clear();
    per_definition_.assign(spaces.size(), 0);
    seen_ = 0;
  }
  for (size_t i = seen_; i < history.size(); ++i) {
    if (std::optional<ConfigKey> key = KeyOf(spaces, history[i]); key && keys_.insert(*key).second) {
      ++per_definition_[key->first];
    }
  }
  seen_ = history.size();
  if (seen_ > 0) {
    first_ = history[0];
    first_.curve = nullptr;
    last_ = history[seen_ - 1];
    last_.curve = nullptr;  // the caller's, valid only during the call
  }
}

std::set<ConfigKey> ProposedKeys(const std::vector<DefinitionSpace>& spaces, const std::vector<Observation>& history) {
  std::set<ConfigKey> keys;
  for (const Observation& o : history) {
    if (std::optional<ConfigKey> key = KeyOf(spaces, o)) keys.insert(*key);
  }
  return keys;
}

}  // namespace hpo::coordinator
