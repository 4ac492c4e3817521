#include "coordinator/grid_strategy.h"

#include <utility>

namespace hpo::coordinator {

Result<std::unique_ptr<GridStrategy>> GridStrategy::Create(const proto::TuningJobSpec& spec) {
  Result<std::vector<DefinitionSpace>> spaces = DefinitionSpaces(spec);
  if (!spaces.ok()) return spaces.status();
  for (const DefinitionSpace& d : *spaces) {
    for (const Dimension& dim : d.space.dimensions()) {
      if (dim.kind != DimensionKind::kCategorical) {
        return Status::InvalidArgument("Grid search takes only categorical ranges; \"" + dim.name + "\" is " +
                                       (dim.kind == DimensionKind::kInteger ? "an integer" : "a continuous") +
                                       " range");
      }
    }
  }
  if (!TotalCardinality(*spaces)) {
    return Status::InvalidArgument("Grid search: the grid has more than 2^62 combinations");
  }
  return std::make_unique<GridStrategy>(std::move(spaces).value());
}

GridStrategy::GridStrategy(std::vector<DefinitionSpace> spaces) : spaces_(std::move(spaces)) {
  HPO_CHECK(!spaces_.empty());
  std::optional<uint64_t> total = TotalCardinality(spaces_);
  HPO_CHECK_MSG(total.has_value(), "GridStrategy needs finite search spaces");
  total_ = *total;
}

std::vector<Proposal> GridStrategy::Propose(size_t n, const std::vector<Observation>& history) {
  std::vector<Proposal> out;
  if (n == 0) return out;
  return keys_.With(spaces_, history, [&](const std::set<ConfigKey>& seen, const std::vector<uint64_t>& count) {
    if (seen.size() >= total_) return out;
    for (size_t d = 0; d < spaces_.size(); ++d) {
      const uint64_t size = *spaces_[d].space.Cardinality();
      if (count[d] >= size) continue;  // every one of this definition's has run
      for (uint64_t idx = 0; idx < size; ++idx) {
        if (seen.count({d, idx})) continue;
        out.push_back(Proposal{spaces_[d].name, spaces_[d].space.AtIndex(idx)});
        if (out.size() == n) return out;
      }
    }
    return out;
  });
}

bool GridStrategy::Exhausted(const std::vector<Observation>& history) const {
  return keys_.With(spaces_, history,
                    [&](const std::set<ConfigKey>& seen, const std::vector<uint64_t>&) { return seen.size() >= total_; });
}

}  // namespace hpo::coordinator
