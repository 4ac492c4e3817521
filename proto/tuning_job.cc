#include "proto/tuning_job.h"

namespace hpo::proto {

std::vector<const TrainingJobDefinition*> TuningJobSpec::Definitions() const {
  std::vector<const TrainingJobDefinition*> out;
  if (training_job_definition) {
    out.push_back(&*training_job_definition);
  } else {
    for (const auto& d : training_job_definitions) out.push_back(&d);
  }
  return out;
}

}  // namespace hpo::proto
