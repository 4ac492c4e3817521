#include "proto/builtin_metrics.h"

namespace hpo::proto {
namespace {

// The repository of an image reference: what comes after the last '/', before a tag or digest.
std::string Repository(const std::string& image) {
  std::string r = image;
  if (const size_t at = r.find('@'); at != std::string::npos) r.resize(at);
  if (const size_t slash = r.rfind('/'); slash != std::string::npos) r = r.substr(slash + 1);
  if (const size_t colon = r.find(':'); colon != std::string::npos) r.resize(colon);
  return r;
}

bool IsEvalMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '@' ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string RegexEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '.' || c == '-' || c == '@') out += '\\';
    out += c;
  }
  return out;
}

MetricDefinition XgboostMetric(const std::string& channel, const std::string& eval_metric) {
  return {channel + ":" + eval_metric, ".*\\[[0-9]+\\].*#011" + channel + "-" + RegexEscape(eval_metric) +
                                           ":([-+]?[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"};
}

}  // namespace

std::string BuiltInAlgorithmOf(const std::string& training_image) {
  const std::string repo = Repository(training_image);
  return repo == "sagemaker-xgboost" || repo == "xgboost" ? "xgboost" : "";
}

std::vector<MetricDefinition> BuiltInMetricDefinitions(const std::string& training_image, const std::string& metric) {
  if (BuiltInAlgorithmOf(training_image) != "xgboost") return {};
  const size_t colon = metric.find(':');
  if (colon == std::string::npos) return {};
  const std::string channel = metric.substr(0, colon), eval_metric = metric.substr(colon + 1);
  if ((channel != "train" && channel != "validation") || !IsEvalMetricName(eval_metric)) return {};
  return {XgboostMetric(channel, eval_metric), XgboostMetric(channel == "train" ? "validation" : "train", eval_metric)};
}

}  // namespace hpo::proto
