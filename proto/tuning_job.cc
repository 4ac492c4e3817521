#include "proto/tuning_job.h"

#include <algorithm>
#include <cctype>

#include "common/text.h"

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

std::optional<std::string> S3UriOfUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.rfind(kScheme, 0) != 0) return std::nullopt;
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string host = AsciiLower(rest.substr(0, slash));
  std::string path = slash == std::string::npos ? "" : rest.substr(slash + 1);
  bool aws = false;
  for (const std::string zone : {".amazonaws.com", ".amazonaws.com.cn"}) {
    if (host.size() > zone.size() && host.compare(host.size() - zone.size(), zone.size(), zone) == 0) {
      host.resize(host.size() - zone.size());
      aws = true;
      break;
    }
  }
  if (!aws) return std::nullopt;
  // The endpoint part: "s3", or "s3.REGION" / "s3-REGION" (a region: letters, digits, '-').
  auto is_endpoint = [](std::string_view e) {
    if (e == "s3") return true;
    if (e.size() < 4 || e.substr(0, 2) != "s3" || (e[2] != '.' && e[2] != '-')) return false;
    return std::all_of(e.begin() + 3, e.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
  };
  std::string bucket;
  if (is_endpoint(host)) {  // path style: the bucket is the path's first segment
    const size_t cut = path.find('/');
    bucket = path.substr(0, cut);
    path = cut == std::string::npos ? "" : path.substr(cut + 1);
  } else {  // virtual-hosted: BUCKET.ENDPOINT (a bucket's name may hold dots)
    const size_t at = host.rfind(".s3");
    if (at == std::string::npos || !is_endpoint(std::string_view(host).substr(at + 1))) return std::nullopt;
    bucket = host.substr(0, at);
  }
  if (bucket.empty()) return std::nullopt;
  const std::string key = PercentDecode(path);
  return "s3://" + bucket + (key.empty() ? "" : "/" + key);
}

std::string StorageUri(const std::string& uri) {
  if (auto s3 = S3UriOfUrl(uri)) return *s3;
  return uri;
}

std::string SubmitDirectory(const StringMap& hyperparameters) {
  auto it = hyperparameters.find("sagemaker_submit_directory");
  if (it == hyperparameters.end()) return "";
  const std::string& v = it->second;
  return v.size() >= 2 && v.front() == '"' && v.back() == '"' ? v.substr(1, v.size() - 2) : v;
}

bool UsesS3(const TrainingJobDefinition& d) {
  auto s3 = [](const std::optional<std::string>& uri) { return uri && StorageUri(*uri).rfind("s3://", 0) == 0; };
  for (const Channel& c : d.input_data_config) {
    if (c.data_source && c.data_source->s3_data_source && s3(c.data_source->s3_data_source->s3_uri)) return true;
  }
  if (d.output_data_config && s3(d.output_data_config->s3_output_path)) return true;
  if (d.checkpoint_config && s3(d.checkpoint_config->s3_uri)) return true;
  return SubmitDirectory(d.static_hyper_parameters).rfind("s3://", 0) == 0;
}

}  // namespace hpo::proto
