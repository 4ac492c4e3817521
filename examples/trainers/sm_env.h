// examples/trainers/sm_env.h: reading the SageMaker training contract's environment, for the
// example trainers (header-only, no dependencies, so each trainer still builds with one
// compiler call: `c++ -std=c++20 -O2 curve.cc`).
#pragma once

#include <cstdlib>
#include <string>

namespace sm_env {

// The environment variable, or `fallback` when unset.
inline std::string Env(const char* name, const char* fallback = "") {
  const char* v = std::getenv(name);
  return v ? v : fallback;
}

// Hyperparameter NAME as a number, from SM_HP_NAME (upper case, as the toolkit sets it), or
// `fallback` when unset or not a number.
inline double Hp(const char* name, double fallback) {
  std::string v = Env((std::string("SM_HP_") + name).c_str());
  if (v.empty()) return fallback;
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  return (end && *end == '\0') ? d : fallback;
}

}  // namespace sm_env
