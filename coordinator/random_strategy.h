// coordinator/random_strategy.h: SageMaker's Random search.
//
// Each proposal picks one training job definition uniformly, then samples its search space
// uniformly in the scaled space (SearchSpace::Sample: log-uniform for Logarithmic ranges).
//
// Reproducibility: proposal number j of a job (j = history.size() + i for the i-th proposal of
// a Propose call) draws from its own stream, Rng(StreamSeed(seed, j)). The proposals are thus a
// pure function of (spec, seed, number of proposals made so far, and, for duplicate avoidance,
// which configurations the history holds): a coordinator restarted from its store, given the
// same history, continues the very same sequence, and proposals made in two calls equal those
// made in one. The Rng is specified bit for bit (coordinator/rng.h), so this holds across
// platforms and compilers.
//
// Duplicates: a proposal is never a configuration of a finite definition space already in the
// history (or earlier in the same call) while that definition has unseen configurations: a
// drawn duplicate is redrawn from the same stream and the same definition, up to kMaxDraws
// draws; after that one of the definition's remaining configurations is chosen uniformly by
// enumeration when it has at most kEnumerateLimit configurations, else the duplicate is accepted
// (in practice unreachable: 100 misses need a history covering nearly all of a space of over a
// million configurations). A definition whose finite space is exhausted is no longer picked:
// the pick falls uniformly on the definitions that still have unseen configurations. Once every
// definition is finite and exhausted, Propose returns no more proposals.
//
// Thread safety: none needed beyond the Strategy contract; Propose keeps no state between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/strategy.h"

namespace hpo::coordinator {

class RandomStrategy : public Strategy {
 public:
  static constexpr int kMaxDraws = 100;
  static constexpr uint64_t kEnumerateLimit = uint64_t{1} << 20;

  // Errors as DefinitionSpaces.
  static Result<std::unique_ptr<RandomStrategy>> Create(const proto::TuningJobSpec& spec, uint64_t seed);
  // `spaces` must not be empty (HPO_CHECK).
  RandomStrategy(std::vector<DefinitionSpace> spaces, uint64_t seed);

  std::vector<Proposal> Propose(size_t n, const std::vector<Observation>& history) override;
  bool Exhausted(const std::vector<Observation>& history) const override;
  std::string Name() const override { return "Random"; }
  Ahead ProposeAhead() const override { return Ahead::kAlways; }  // results change nothing

 private:
  // The proposals of one call, given the history's keys (`known`) and how many each definition
  // has; the RNG streams are numbered from `history_size`.
  std::vector<Proposal> ProposeFrom(size_t n, size_t history_size, const std::vector<std::optional<uint64_t>>& size,
                                    const std::set<ConfigKey>& known, std::vector<uint64_t> seen_count) const;
  std::vector<DefinitionSpace> spaces_;
  uint64_t seed_;
  ProposedKeyCache keys_;
};

}  // namespace hpo::coordinator
