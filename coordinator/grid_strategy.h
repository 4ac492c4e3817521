// coordinator/grid_strategy.h: SageMaker's Grid search.
//
// Enumerates the Cartesian product of the categorical ranges of each training job definition
// exactly once, definitions in spec order, and within a definition in SearchSpace::AtIndex
// order: the first range (dimension order, see search_space.h) varies slowest, each range's
// values in spec order. Configurations already in the history are skipped, so Propose is a pure
// function of the history (restart-safe) and never proposes a configuration twice. Exhausted
// when every combination is in the history.
//
// Thread safety: none needed beyond the Strategy contract; Propose keeps no state between calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/strategy.h"

namespace hpo::coordinator {

class GridStrategy : public Strategy {
 public:
  // Errors as DefinitionSpaces, plus InvalidArgument when a range is not categorical (Grid
  // takes only categorical ranges) or the grid has more than 2^62 combinations.
  static Result<std::unique_ptr<GridStrategy>> Create(const proto::TuningJobSpec& spec);
  // Every space must be finite (HPO_CHECK); `spaces` must not be empty.
  explicit GridStrategy(std::vector<DefinitionSpace> spaces);

  std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) override;
  bool Exhausted(const std::vector<Observation>& history) const override;
  std::string Name() const override { return "Grid"; }
  Ahead ProposeAhead() const override { return Ahead::kAlways; }  // results change nothing

  // Number of combinations over all definitions.
  uint64_t Size() const { return total_; }

 private:
  std::vector<DefinitionSpace> spaces_;
  uint64_t total_ = 0;
  ProposedKeyCache keys_;
};

}  // namespace hpo::coordinator
