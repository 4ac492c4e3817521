#include "coordinator/random_strategy.h"

#include <utility>

namespace hpo::coordinator {

Result<std::unique_ptr<RandomStrategy>> RandomStrategy::Create(const proto::TuningJobSpec& spec, uint64_t seed) {
  Result<std::vector<DefinitionSpace>> spaces = DefinitionSpaces(spec);
  if (!spaces.ok()) return spaces.status();
  return std::make_unique<RandomStrategy>(std::move(spaces).value(), seed);
}

RandomStrategy::RandomStrategy(std::vector<DefinitionSpace> spaces, uint64_t seed)
    : spaces_(std::move(spaces)), seed_(seed) {
  HPO_CHECK(!spaces_.empty());
}

std::vector<Proposal> RandomStrategy::Propose(size_t n, const std::vector<Observation>& history) {
  // Per definition: its cardinality (nullopt: not finite). Only finite definitions need the
  // history's keys; a continuous space skips them, so a proposal costs O(1) however long the
  // job's history is, and a finite one indexes only what is new since the last call.
  std::vector<std::optional<uint64_t>> size(spaces_.size());
  bool any_finite = false;
  for (size_t d = 0; d < spaces_.size(); ++d) {
    size[d] = spaces_[d].space.Cardinality();
    any_finite = any_finite || size[d].has_value();
  }
  if (!any_finite) return ProposeFrom(n, history.size(), size, {}, std::vector<uint64_t>(spaces_.size(), 0));
  return keys_.With(spaces_, history, [&](const std::set<ConfigKey>& known, const std::vector<uint64_t>& count) {
    return ProposeFrom(n, history.size(), size, known, count);
  });
}

std::vector<Proposal> RandomStrategy::ProposeFrom(size_t n, size_t history_size,
                                                  const std::vector<std::optional<uint64_t>>& size,
                                                  const std::set<ConfigKey>& known,
                                                  std::vector<uint64_t> seen_count) const {
  std::vector<Proposal> out;
  const std::optional<uint64_t> total = TotalCardinality(spaces_);
  std::set<ConfigKey> added;  // this call's proposals
  auto seen = [&](const ConfigKey& k) { return known.count(k) > 0 || added.count(k) > 0; };
  auto exhausted = [&](size_t d) { return size[d] && seen_count[d] >= *size[d]; };

  for (size_t i = 0; i < n; ++i) {
    if (total && known.size() + added.size() >= *total) break;  // the whole space is exhausted
    Rng rng(StreamSeed(seed_, static_cast<uint64_t>(history_size + i)));
    size_t def = spaces_.size() == 1 ? 0 : static_cast<size_t>(rng.Below(spaces_.size()));
    if (exhausted(def)) {
      // Uniformly among the definitions that still have unseen configurations (at least one has:
      // the whole space is not exhausted, or some definition is not finite).
      std::vector<size_t> open;
      for (size_t d = 0; d < spaces_.size(); ++d) {
        if (!exhausted(d)) open.push_back(d);
      }
      HPO_CHECK(!open.empty());
      def = open[rng.Below(open.size())];
    }
    const SearchSpace& space = spaces_[def].space;
    Config config = space.Sample(rng);
    if (size[def]) {
      std::optional<uint64_t> index = space.IndexOf(config);
      HPO_CHECK(index.has_value());  // a sample always lies in its space
      for (int draws = 1; seen({def, *index}) && draws < kMaxDraws; ++draws) {
        config = space.Sample(rng);
        index = space.IndexOf(config);
        HPO_CHECK(index.has_value());
      }
      if (seen({def, *index}) && *size[def] <= kEnumerateLimit) {
        // The r-th configuration of this definition not seen yet.
        uint64_t r = rng.Below(*size[def] - seen_count[def]);
        for (uint64_t idx = 0; idx < *size[def]; ++idx) {
          if (seen({def, idx})) continue;
          if (r-- == 0) {
            index = idx;
            break;
          }
        }
        HPO_CHECK(!seen({def, *index}));
        config = space.AtIndex(*index);
      }
      if (!seen({def, *index})) {
        added.insert({def, *index});
        ++seen_count[def];
      }
    }
    out.push_back(Proposal{spaces_[def].name, std::move(config)});
  }
  return out;
}

bool RandomStrategy::Exhausted(const std::vector<Observation>& history) const {
  const std::optional<uint64_t> total = TotalCardinality(spaces_);
  if (!total) return false;
  return keys_.With(spaces_, history, [&](const std::set<ConfigKey>& known, const std::vector<uint64_t>&) {
    return known.size() >= *total;
  });
}

}  // namespace hpo::coordinator
