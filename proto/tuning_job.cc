#include "proto/tuning_job.h"

#include <algorithm>

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

std::vector<ResourceConfig> ResourceOptions(const TrainingJobDefinition& d) {
  if (d.resource_config) return {*d.resource_config};
  std::vector<ResourceConfig> out;
  if (!d.hyper_parameter_tuning_resource_config) return out;
  const HyperParameterTuningResourceConfig& h = *d.hyper_parameter_tuning_resource_config;
  auto add = [&](const auto& c) {  // the single form, or one of InstanceConfigs
    ResourceConfig rc;
    rc.instance_type = c.instance_type;
    rc.instance_count = c.instance_count;
    rc.volume_size_in_gb = c.volume_size_in_gb;
    rc.volume_kms_key_id = h.volume_kms_key_id;
    out.push_back(std::move(rc));
  };
  if (h.instance_configs.empty()) add(h);
  for (const auto& c : h.instance_configs) add(c);
  return out;
}

void DropDescribedResourceConfig(TuningJobSpec& spec) {
  auto drop = [](TrainingJobDefinition& d) {
    if (!d.resource_config || !d.hyper_parameter_tuning_resource_config) return;
    TrainingJobDefinition without = d;
    without.resource_config.reset();
    const std::vector<ResourceConfig> options = ResourceOptions(without);
    if (!options.empty() && options[0] == *d.resource_config) d.resource_config.reset();
  };
  if (spec.training_job_definition) drop(*spec.training_job_definition);
  for (auto& d : spec.training_job_definitions) drop(d);
}

std::optional<ResourceConfig> ResourceOption(const TrainingJobDefinition& d, size_t index) {
  std::vector<ResourceConfig> options = ResourceOptions(d);
  if (options.empty()) return std::nullopt;
  return std::move(options[std::min(index, options.size() - 1)]);
}

TrainingJobDefinition WithResourceConfig(const TrainingJobDefinition& d, const ResourceConfig& rc) {
  TrainingJobDefinition one = d;
  one.resource_config = rc;
  one.hyper_parameter_tuning_resource_config.reset();
  return one;
}

}  // namespace hpo::proto
