// proto/builtin_algorithms.h: what SageMaker's built-in algorithms bring that a spec does not say:
// their metrics, the metrics' directions, and which hyperparameters they let a tuning job tune.
//
// A tuning job of a built-in algorithm names it by its training image and gives no
// MetricDefinitions: SageMaker knows how that algorithm logs its metrics. An image is a built-in
// algorithm's when its repository (what follows the last '/', before the tag or digest; any
// registry, any tag) is one of SageMaker's, e.g.
// 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1 or
// 382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1.
//
// What hpo knows, per algorithm:
//   - XGBoost (`sagemaker-xgboost`, `xgboost`): any `train:<eval_metric>` or
//     `validation:<eval_metric>` (validation:auc, train:rmse, validation:ndcg@5, ...), read from the
//     algorithm's round lines `[12]#011train-rmse:0.41#011validation-rmse:0.52` with the regex
//     SageMaker's own definitions use.
//   - The algorithms that log `#quality_metric: host=algo-1, [epoch=N, [batch=M ]]<channel> <name>
//     <loss|score>=<value>` lines: Linear Learner, k-means, Factorization Machines, k-NN, DeepAR,
//     Object Detection, IP Insights; and Image Classification (`Epoch[N] Validation-accuracy=v`)
//     and BlazingText's supervised mode (`#validation_accuracy: v`). Their tunable metrics are the
//     ones SageMaker's documentation lists for each (e.g. Linear Learner's
//     validation:objective_loss, test:binary_f_beta; k-means' test:msd), each with the regex that
//     finds it on the algorithm's lines. Where SageMaker's own definitions are known they are
//     used as they are (Linear Learner's validation:objective_loss takes the per-epoch lines, whose
//     name is the loss function's, `binary_classification_cross_entropy_objective`;
//     Object Detection's mAP is written in parentheses); Factorization Machines' and k-NN's also
//     accept the `#test_score (algo-1) : ('rmse', 0.19)` summary their logs show.
//   - The other built-ins (NTM, Object2Vec, Random Cut Forest, LDA, Semantic Segmentation,
//     Sequence-to-Sequence, PCA, and BlazingText's train:mean_rho): their metric names and
//     directions, not their log lines; a tuning job of theirs must give MetricDefinitions, and
//     validation says so by name.
//
// Where it is used: validation accepts a definition without MetricDefinitions when its objective
// is one of these metrics (and names the algorithm's metrics when it is not); the coordinator gives
// the worker the objective's definition and the algorithm's other known ones for each training job,
// so its metrics show as SageMaker's would; `hpo validate` and `hpo run` note an objective whose
// Type is the opposite of the metric's documented direction, and a tuned hyperparameter the
// algorithm's documentation does not list as tunable (a misspelt one, most often). What runs is whatever `hpo worker
// --image` (or a container runtime) makes of the image: a program that logs as the algorithm does
// (examples/trainers/sklearn_linear.py logs as Linear Learner).
//
// Thread safety: pure functions over constant tables.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "proto/tuning_job.h"

namespace hpo::proto {

// A built-in algorithm as hpo knows it.
struct BuiltInAlgorithm {
  std::string key;    // its repository's canonical name: "xgboost", "linear-learner", "kmeans", ...
  std::string title;  // as SageMaker's documentation names it: "XGBoost", "Linear Learner", "k-means"
  // Its tunable metrics ("validation:objective_loss", ...); for XGBoost, whose metrics are any
  // eval_metric's, a description ("train:NAME or validation:NAME, ...").
  std::vector<std::string> metrics;
  // The metrics of `metrics` whose log lines hpo does not know (all of NTM's, BlazingText's
  // train:mean_rho).
  std::vector<std::string> metrics_without_regex;
  // The hyperparameters its documentation lists as tunable (Linear Learner: wd, l1,
  // learning_rate, mini_batch_size, use_bias, positive_example_weight_mult). SageMaker refuses to
  // tune others of a built-in; hpo notes them (proto/validate.h BuiltInAlgorithmNotes).
  std::vector<std::string> tunable_hyperparameters;
};

// The built-in algorithm of `training_image`; nullopt for any other image.
std::optional<BuiltInAlgorithm> BuiltInAlgorithmFor(const std::string& training_image);

// Its key ("xgboost", "linear-learner", ...), "" for any other image.
std::string BuiltInAlgorithmOf(const std::string& training_image);

// The definition of `metric` for the built-in algorithm of `training_image`, first, then those of
// the algorithm's other metrics whose lines hpo knows (for XGBoost, the train/validation twin);
// empty when the image is not one hpo knows, the metric is not one of its, or hpo does not know
// how the algorithm logs it.
std::vector<MetricDefinition> BuiltInMetricDefinitions(const std::string& training_image, const std::string& metric);

// The documented direction of `metric` for the built-in algorithm of `training_image`:
// "Maximize" or "Minimize"; nullopt when the image is not a built-in, the metric is not one of its,
// or (XGBoost) its eval_metric is not one whose direction hpo knows.
std::optional<std::string> BuiltInObjectiveType(const std::string& training_image, const std::string& metric);

}  // namespace hpo::proto
