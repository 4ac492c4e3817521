#include "cli/cli_util.h"

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common/file_util.h"
#include "proto/validate.h"

namespace hpo::cli {

namespace fs = std::filesystem;

namespace {

// Relative file:// training images resolve against the spec file's directory, so a spec and its
// trainer can travel together.
void ResolveImages(proto::TuningJobSpec& spec, const fs::path& spec_dir) {
  auto fix = [&](proto::TrainingJobDefinition& d) {
    if (!d.algorithm_specification || !d.algorithm_specification->training_image) return;
    std::string& img = *d.algorithm_specification->training_image;
    if (img.rfind("file://", 0) == 0 && img.size() > 7 && img[7] != '/') {
      img = "file://" + fs::weakly_canonical(spec_dir / img.substr(7)).string();
    }
  };
  if (spec.training_job_definition) fix(*spec.training_job_definition);
  for (auto& d : spec.training_job_definitions) fix(d);
}

}  // namespace

[[noreturn]] void Exit(int code) { throw CLI::RuntimeError(code); }

[[noreturn]] void Fail(int code, const std::string& message) {
  std::cerr << "hpo: " << message << "\n";
  Exit(code);
}

proto::ParsedSpec LoadSpec(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) Fail(2, text.status().message());
  proto::FieldErrors errs;
  auto parsed = proto::ParseSpec(*text, &errs);
  if (!parsed.ok()) {
    for (const auto& e : errs) std::cerr << path << ": " << e.ToString() << "\n";
    Exit(2);
  }
  ResolveImages(parsed->document.spec, fs::absolute(path).parent_path());
  auto verrs = proto::Validate(parsed->document.spec, parsed->spelling);
  if (!verrs.empty()) {
    for (const auto& e : verrs) std::cerr << path << ": " << e.ToString() << "\n";
    std::cerr << "hpo: " << path << " is not a valid tuning job (" << verrs.size() << " error"
              << (verrs.size() == 1 ? "" : "s") << "); nothing was started\n";
    Exit(2);
  }
  return std::move(parsed).value();
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// One line of progress from a Describe response.
}  // namespace hpo::cli
