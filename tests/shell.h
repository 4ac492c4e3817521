// tests/shell.h: what a shell command prints, for tests that check files with standard tools
// (`tar -tzf`, `ls -A`, `ldd`) rather than re-implement them.
#pragma once

#include <cstdio>
#include <string>

namespace hpo::testing {

// What `cmd`, run by /bin/sh, printed on stdout ("" when it could not be started).
inline std::string Sh(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

}  // namespace hpo::testing
