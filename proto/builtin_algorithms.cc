#include "proto/builtin_algorithms.h"

#include <algorithm>

namespace hpo::proto {
namespace {

constexpr const char* kMax = "Maximize";
constexpr const char* kMin = "Minimize";

// The repository of an image reference: what comes after the last '/', before a tag or digest.
std::string Repository(const std::string& image) {
  std::string r = image;
  if (const size_t at = r.find('@'); at != std::string::npos) r.resize(at);
  if (const size_t slash = r.rfind('/'); slash != std::string::npos) r = r.substr(slash + 1);
  if (const size_t colon = r.find(':'); colon != std::string::npos) r.resize(colon);
  return r;
}

// ---- XGBoost: any eval_metric, on the algorithm's round lines ----

bool IsEvalMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '@' || c == '_' || c == '.' || c == '-';
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
  return {channel + ":" + eval_metric, ".*\\[[0-9]+\\].*#011" + channel + "-" +
                                           RegexEscape(eval_metric) +
                                           ":([-+]?[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?).*"};
}

// The direction of an XGBoost eval_metric (XGBoost's own and those SageMaker's container adds);
// "ndcg@5", "error@0.7" by the name before '@'.
std::optional<std::string> XgboostDirection(const std::string& eval_metric) {
  const std::string base = eval_metric.substr(0, eval_metric.find('@'));
  static const char* const kMaximised[] = {
      "auc", "aucpr",     "map",      "ndcg", "pre", "accuracy", "balanced_accuracy",
      "f1",  "f1_binary", "f1_macro", "r2"};
  static const char* const kMinimised[] = {"rmse",
                                           "rmsle",
                                           "mae",
                                           "mape",
                                           "mphe",
                                           "mse",
                                           "logloss",
                                           "error",
                                           "merror",
                                           "mlogloss",
                                           "poisson-nloglik",
                                           "gamma-nloglik",
                                           "cox-nloglik",
                                           "gamma-deviance",
                                           "tweedie-nloglik",
                                           "aft-nloglik"};
  for (const char* m : kMaximised) {
    if (base == m) return kMax;
  }
  for (const char* m : kMinimised) {
    if (base == m) return kMin;
  }
  return std::nullopt;
}

// ---- The algorithms with a fixed list of metrics ----

struct Metric {
  std::string name;   // "validation:objective_loss"
  const char* type;   // kMax or kMin
  std::string regex;  // "" when hpo does not know the algorithm's line for it
};

struct Table {
  const char* key;
  const char* title;
  std::vector<const char*> repositories;
  std::vector<Metric> metrics;
  std::vector<const char*> tunable;  // the hyperparameters its documentation lists as tunable
};

// `#quality_metric: host=algo-1, [epoch=N, ]<channel> <name> <loss|score>=<value>`, the line of
// SageMaker's first-party algorithms. `name` is a regex (Linear Learner's objective_loss is logged
// under the loss function's name, `\S+_objective`).
std::string Quality(const std::string& channel, const std::string& name, const char* tag,
                    bool per_epoch = false) {
  return std::string("#quality_metric: host=\\S+, ") + (per_epoch ? "epoch=\\S+, " : "") + channel +
         " " + name + " <" + tag + ">=(\\S+)";
}

// The same test result, on its `#quality_metric` line or on the `#test_score (algo-1) : ('rmse',
// 0.19)` summary line the algorithm also prints.
std::string QualityOrTestScore(const std::string& name, const char* tag) {
  return "(?:#quality_metric: host=\\S+, test " + name + " <" + tag +
         ">=|#test_score \\(\\S+\\) : \\('" + name + "', )([^\\s)]+)";
}

Metric M(const std::string& name, const char* type, std::string regex) {
  return {name, type, std::move(regex)};
}

std::vector<Metric> LinearLearnerMetrics() {
  std::vector<Metric> out;
  for (const std::string channel : {"test", "validation"}) {
    const std::string c = channel + ":";
    // SageMaker's own definitions: the validation loss per epoch, the test loss at the end.
    out.push_back(M(c + "objective_loss", kMin,
                    Quality(channel, "\\S+_objective", "loss", channel == "validation")));
    out.push_back(M(c + "absolute_loss", kMin, Quality(channel, "absolute_loss", "loss")));
    out.push_back(M(c + "mse", kMin, Quality(channel, "mse", "loss")));
    out.push_back(M(c + "binary_classification_accuracy", kMax,
                    Quality(channel, "binary_classification_accuracy", "score")));
    out.push_back(M(c + "binary_f_beta", kMax,
                    Quality(channel, "binary_f_\\S+", "score")));  // binary_f_1.000
    out.push_back(M(c + "dcg", kMax, Quality(channel, "dcg", "score")));
    out.push_back(M(c + "macro_f_beta", kMax, Quality(channel, "macro_f_\\S+", "score")));
    out.push_back(M(c + "macro_precision", kMax, Quality(channel, "macro_precision", "score")));
    out.push_back(M(c + "macro_recall", kMax, Quality(channel, "macro_recall", "score")));
    out.push_back(
        M(c + "multiclass_accuracy", kMax, Quality(channel, "multiclass_accuracy", "score")));
    out.push_back(M(c + "multiclass_top_k_accuracy", kMax,  // multiclass_top_k_accuracy_3
                    Quality(channel, "multiclass_top_k_accuracy_\\S+", "score")));
    out.push_back(M(c + "precision", kMax, Quality(channel, "precision", "score")));
    out.push_back(M(c + "recall", kMax, Quality(channel, "recall", "score")));
    out.push_back(M(c + "roc_auc_score", kMax, Quality(channel, "roc_auc_score", "score")));
  }
  return out;
}

const std::vector<Table>& Tables() {
  static const std::vector<Table> tables = {
      {"linear-learner",
       "Linear Learner",
       {"linear-learner"},
       LinearLearnerMetrics(),
       {"wd", "l1", "learning_rate", "mini_batch_size", "use_bias",
        "positive_example_weight_mult"}},
      {"kmeans",
       "k-means",
       {"kmeans"},
       {M("test:msd", kMin, Quality("test", "msd", "loss")),
        M("test:ssd", kMin, Quality("test", "ssd", "loss"))},
       {"epochs", "extra_center_factor", "init_method", "mini_batch_size"}},
      {"factorization-machines",
       "Factorization Machines",
       {"factorization-machines"},
       {M("test:rmse", kMin, QualityOrTestScore("rmse", "loss")),
        M("test:binary_classification_accuracy", kMax,
          QualityOrTestScore("binary_classification_accuracy", "score")),
        M("test:binary_classification_cross_entropy", kMin,
          QualityOrTestScore("binary_classification_cross_entropy", "loss")),
        M("test:binary_f_beta", kMax, QualityOrTestScore("binary_f_[^\\s']+", "score"))},
       {"bias_init_scale", "bias_init_sigma", "bias_init_value", "bias_lr", "bias_wd", "epoch",
        "epochs", "factors_init_scale", "factors_init_sigma", "factors_init_value", "factors_lr",
        "factors_wd", "linear_init_scale", "linear_init_sigma", "linear_init_value", "linear_lr",
        "linear_wd", "mini_batch_size"}},
      {"knn",
       "k-NN",
       {"knn"},
       {M("test:accuracy", kMax, QualityOrTestScore("accuracy", "score")),
        M("test:mse", kMin, QualityOrTestScore("mse", "loss"))},
       {"k", "sample_size"}},
      {"forecasting-deepar",
       "DeepAR",
       {"forecasting-deepar"},
       {M("test:RMSE", kMin, Quality("test", "RMSE", "loss")),
        M("test:mean_wQuantileLoss", kMin, Quality("test", "mean_wQuantileLoss", "loss")),
        M("train:final_loss", kMin, Quality("train", "final_loss", "loss"))},
       {"mini_batch_size", "epochs", "context_length", "num_cells", "num_layers", "dropout_rate",
        "embedding_dimension", "learning_rate"}},
      {"object-detection",
       "Object Detection",
       {"object-detection"},
       {M("validation:mAP", kMax,
          "#quality_metric: host=\\S+, epoch=\\S+, validation mAP <score>=\\((\\S+)\\)")},
       {"learning_rate", "mini_batch_size", "momentum", "optimizer", "weight_decay"}},
      {"ipinsights",
       "IP Insights",
       {"ipinsights"},
       {M("validation:discriminator_auc", kMax,
          Quality("validation", "discriminator_auc", "score", true))},
       {"epochs", "learning_rate", "mini_batch_size", "num_entity_vectors", "num_ip_encoder_layers",
        "random_negative_sampling_rate", "shuffled_negative_sampling_rate", "vector_dim",
        "weight_decay"}},
      {"image-classification",
       "Image Classification",
       {"image-classification"},
       {M("validation:accuracy", kMax, "Epoch\\[[0-9]+\\] Validation-accuracy=(\\S+)")},
       {"beta_1", "beta_2", "eps", "gamma", "learning_rate", "mini_batch_size", "momentum",
        "optimizer", "weight_decay"}},
      {"blazingtext",
       "BlazingText",
       {"blazingtext"},
       {M("validation:accuracy", kMax, "#validation_accuracy: (\\S+)"),
        M("train:mean_rho", kMax, "")},
       {"batch_size", "buckets", "epochs", "learning_rate", "min_count", "mode", "negative_samples",
        "sampling_threshold", "vector_dim", "window_size", "word_ngrams"}},
      // Metric names and directions only: how these log is not known here.
      {"ntm",
       "NTM",
       {"ntm"},
       {M("validation:total_loss", kMin, "")},
       {"encoder_layers_activation", "learning_rate", "mini_batch_size", "optimizer",
        "rescale_gradient", "weight_decay"}},
      {"object2vec",
       "Object2Vec",
       {"object2vec"},
       {M("test:mean_squared_error", kMin, ""), M("validation:mean_squared_error", kMin, ""),
        M("test:accuracy", kMax, ""), M("validation:accuracy", kMax, ""),
        M("test:cross_entropy", kMin, ""), M("validation:cross_entropy", kMin, "")},
       {"dropout", "early_stopping_patience", "early_stopping_tolerance", "enc_dim",
        "enc0_cnn_filter_width", "enc0_layers", "enc0_token_embedding_dim", "enc1_cnn_filter_width",
        "enc1_layers", "enc1_token_embedding_dim", "epochs", "learning_rate", "mini_batch_size",
        "mlp_activation", "mlp_dim", "mlp_layers", "optimizer", "weight_decay"}},
      {"randomcutforest",
       "Random Cut Forest",
       {"randomcutforest"},
       {M("test:f1", kMax, "")},
       {"num_samples_per_tree", "num_trees"}},
      {"lda", "LDA", {"lda"}, {M("test:pwll", kMax, "")}, {"alpha0", "num_topics"}},
      {"semantic-segmentation",
       "Semantic Segmentation",
       {"semantic-segmentation"},
       {M("validation:mIOU", kMax, ""), M("validation:pixel_accuracy", kMax, "")},
       {"learning_rate", "mini_batch_size", "momentum", "optimizer", "weight_decay"}},
      {"seq2seq",
       "Sequence-to-Sequence",
       {"seq2seq"},
       {M("validation:accuracy", kMax, ""), M("validation:perplexity", kMin, ""),
        M("validation:bleu", kMax, "")},
       {"num_layers_encoder",
        "num_layers_decoder",
        "batch_size",
        "optimizer_type",
        "weight_init_type",
        "weight_init_scale",
        "learning_rate",
        "weight_decay",
        "momentum",
        "clip_gradient",
        "rnn_num_hidden",
        "cnn_num_hidden",
        "num_embed_source",
        "num_embed_target",
        "embed_dropout_source",
        "embed_dropout_target",
        "rnn_decoder_hidden_dropout",
        "cnn_hidden_dropout",
        "lr_scheduler_type",
        "plateau_reduce_lr_factor",
        "plateau_reduce_lr_threshold",
        "fixed_rate_lr_half_life"}},
      {"pca", "PCA", {"pca"}, {}, {}},
  };
  return tables;
}

const Table* TableFor(const std::string& training_image) {
  const std::string repo = Repository(training_image);
  for (const Table& t : Tables()) {
    if (std::find(t.repositories.begin(), t.repositories.end(), repo) != t.repositories.end())
      return &t;
  }
  return nullptr;
}

bool IsXgboost(const std::string& training_image) {
  const std::string repo = Repository(training_image);
  return repo == "sagemaker-xgboost" || repo == "xgboost";
}

// XGBoost's (channel, eval_metric) of `metric`, when it is one.
std::optional<std::pair<std::string, std::string>> XgboostMetricOf(const std::string& metric) {
  const size_t colon = metric.find(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string channel = metric.substr(0, colon), eval_metric = metric.substr(colon + 1);
  if ((channel != "train" && channel != "validation") || !IsEvalMetricName(eval_metric))
    return std::nullopt;
  return std::make_pair(std::move(channel), std::move(eval_metric));
}

}  // namespace

std::optional<BuiltInAlgorithm> BuiltInAlgorithmFor(const std::string& training_image) {
  if (IsXgboost(training_image)) {
    return BuiltInAlgorithm{
        "xgboost",
        "XGBoost",
        {"train:NAME or validation:NAME, NAME an eval_metric such as auc, rmse, logloss"},
        {},
        {"alpha", "colsample_bylevel", "colsample_bynode", "colsample_bytree", "eta", "gamma",
         "lambda", "max_delta_step", "max_depth", "min_child_weight", "num_round", "subsample"}};
  }
  const Table* t = TableFor(training_image);
  if (!t) return std::nullopt;
  BuiltInAlgorithm a{t->key, t->title, {}, {}, {t->tunable.begin(), t->tunable.end()}};
  for (const Metric& m : t->metrics) {
    a.metrics.push_back(m.name);
    if (m.regex.empty()) a.metrics_without_regex.push_back(m.name);
  }
  return a;
}

std::string BuiltInAlgorithmOf(const std::string& training_image) {
  const auto a = BuiltInAlgorithmFor(training_image);
  return a ? a->key : "";
}

std::vector<MetricDefinition> BuiltInMetricDefinitions(const std::string& training_image,
                                                       const std::string& metric) {
  if (IsXgboost(training_image)) {
    const auto m = XgboostMetricOf(metric);
    if (!m) return {};
    const auto& [channel, eval_metric] = *m;
    return {XgboostMetric(channel, eval_metric),
            XgboostMetric(channel == "train" ? "validation" : "train", eval_metric)};
  }
  const Table* t = TableFor(training_image);
  if (!t) return {};
  const auto objective = std::find_if(t->metrics.begin(), t->metrics.end(), [&](const Metric& m) {
    return m.name == metric && !m.regex.empty();
  });
  if (objective == t->metrics.end()) return {};
  std::vector<MetricDefinition> out{{objective->name, objective->regex}};
  for (const Metric& m : t->metrics) {
    if (m.name != metric && !m.regex.empty()) out.push_back({m.name, m.regex});
  }
  return out;
}

std::optional<std::string> BuiltInObjectiveType(const std::string& training_image,
                                                const std::string& metric) {
  if (IsXgboost(training_image)) {
    const auto m = XgboostMetricOf(metric);
    return m ? XgboostDirection(m->second) : std::nullopt;
  }
  const Table* t = TableFor(training_image);
  if (!t) return std::nullopt;
  for (const Metric& m : t->metrics) {
    if (m.name == metric) return std::string(m.type);
  }
  return std::nullopt;
}

}  // namespace hpo::proto
