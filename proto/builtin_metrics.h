// proto/builtin_metrics.h: the metrics of SageMaker's built-in algorithms.
//
// A tuning job of a built-in algorithm names it by its training image and gives no
// MetricDefinitions: SageMaker knows how that algorithm logs its metrics. hpo knows XGBoost's, the
// built-in algorithm most tuning jobs use: an image whose repository is `sagemaker-xgboost` or
// `xgboost` (any registry, any tag, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1). Its metrics are named
// `train:<eval_metric>` and `validation:<eval_metric>` (validation:auc, train:rmse,
// validation:ndcg@5, ...), and the algorithm logs each round as
// `[12]#011train-rmse:0.41#011validation-rmse:0.52`; the definition's regex finds the value of
// that metric on such a line (the regex SageMaker's own definitions use).
//
// Where it is used: validation accepts such a definition without MetricDefinitions when its
// objective is one of these metrics, and the coordinator gives the worker the definition of the
// objective (and of its train/validation twin) for each of its training jobs. What runs is
// whatever `hpo worker --image` (or a container runtime) makes of the image: a program that logs
// as XGBoost does.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proto/tuning_job.h"

namespace hpo::proto {

// "xgboost" for an XGBoost image, "" for any other.
std::string BuiltInAlgorithmOf(const std::string& training_image);

// The definitions of `metric` (and its train/validation twin) for the built-in algorithm of
// `training_image`; empty when the image is not one hpo knows or the metric is not one of its.
std::vector<MetricDefinition> BuiltInMetricDefinitions(const std::string& training_image, const std::string& metric);

}  // namespace hpo::proto
