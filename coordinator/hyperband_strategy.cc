#include "coordinator/hyperband_strategy.h"

#include <algorithm>

namespace hpo::coordinator {

Result<std::unique_ptr<HyperbandStrategy>> HyperbandStrategy::Create(const proto::TuningJobSpec& spec,
                                                                     uint64_t seed,
                                                                     const BayesianOptions& options) {
  std::vector<std::string> names;
  std::vector<HyperbandSchedule> schedules;
  for (const proto::TrainingJobDefinition* def : spec.Definitions()) {
    Result<HyperbandSchedule> s = HyperbandScheduleFor(spec, *def);
    if (!s.ok()) return s.status();
    names.push_back(def->definition_name.value_or(""));
    schedules.push_back(*s);
  }
  Result<std::unique_ptr<BayesianStrategy>> model = BayesianStrategy::Create(spec, seed, options);
  if (!model.ok()) return model.status();
  return std::unique_ptr<HyperbandStrategy>(
      new HyperbandStrategy(std::move(names), std::move(schedules), std::move(model).value()));
}

HyperbandStrategy::HyperbandStrategy(std::vector<std::string> names, std::vector<HyperbandSchedule> schedules,
                                     std::unique_ptr<BayesianStrategy> model)
    : names_(std::move(names)), schedules_(std::move(schedules)), model_(std::move(model)) {
  HPO_CHECK(!schedules_.empty() && names_.size() == schedules_.size());
  for (const HyperbandSchedule& s : schedules_) levels_.push_back(s.AllRungs());
}

const HyperbandSchedule& HyperbandStrategy::Schedule(const std::string& definition_name) const {
  for (size_t k = 0; k < names_.size(); ++k) {
    if (names_[k] == definition_name) return schedules_[k];
  }
  return schedules_[0];
}

size_t HyperbandStrategy::MinObservations() const {
  return std::max<size_t>(3, std::min<size_t>(model_->UnitDims() + 1, 20));
}

std::vector<Observation> HyperbandStrategy::ModelView(const std::vector<Observation>& history) const {
  auto def_of = [&](const Observation& o) {
    for (size_t k = 0; k < names_.size(); ++k) {
      if (names_[k] == o.definition_name) return k;
    }
    return size_t{0};
  };
  auto level_of = [&](size_t def, size_t k) {
    const std::vector<int64_t>& lv = levels_[def];
    return lv[std::min(k, lv.size() - 1)];
  };
  size_t max_levels = 0;
  for (const auto& lv : levels_) max_levels = std::max(max_levels, lv.size());
  // The highest level that enough curves reached.
  std::optional<size_t> chosen;
  for (size_t k = max_levels; k-- > 0;) {
    size_t reached = 0;
    for (const Observation& o : history) {
      if (o.curve && static_cast<int64_t>(o.curve->size()) >= level_of(def_of(o), k)) ++reached;
    }
    if (reached >= MinObservations()) {
      chosen = k;
      break;
    }
  }
  std::vector<Observation> view = history;
  if (!chosen) return view;  // too little data at any level: the model falls back to random
  for (Observation& o : view) {
    if (!o.curve) continue;  // no curve tracked (a warm-start parent): its final objective stands
    const int64_t level = level_of(def_of(o), *chosen);
    if (static_cast<int64_t>(o.curve->size()) >= level) {
      o.objective = (*o.curve)[static_cast<size_t>(level - 1)];
      o.status = Observation::kSucceeded;
    } else if (o.status != Observation::kRunning && !o.curve->empty()) {
      // Stopped below the level because it ranked low at a rung: its last value stands in for
      // the value at the level. That is pessimistic for a learning curve, which is the point:
      // left out, the region around it would look unexplored and the model would go back there.
      o.objective = o.curve->back();
      o.status = Observation::kSucceeded;
    } else if (o.status != Observation::kRunning) {
      o.status = Observation::kFailed;  // no value at all: out of the model, never re-proposed
      o.objective.reset();
    }
  }
  return view;
}

std::vector<Proposal> HyperbandStrategy::Propose(size_t n, const std::vector<Observation>& history) {
  return model_->Propose(n, ModelView(history));
}

}  // namespace hpo::coordinator
