// tests/coordinator/ranges.h: parameter ranges as a spec writes them, for the strategy and search
// space tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "proto/tuning_job.h"

namespace hpo::coordinator::test {

// An integer or continuous range (the list it goes into says which), bounds as the spec's text.
inline proto::NumericRange Num(const std::string& name, const std::string& lo, const std::string& hi,
                               const std::string& scaling = "Linear") {
  proto::NumericRange r;
  r.name = name;
  r.min_value = lo;
  r.max_value = hi;
  r.scaling_type = scaling;
  return r;
}

inline proto::CategoricalRange Cat(const std::string& name, std::vector<std::string> values) {
  proto::CategoricalRange r;
  r.name = name;
  r.values = std::move(values);
  return r;
}

}  // namespace hpo::coordinator::test
