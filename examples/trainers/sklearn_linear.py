#!/usr/bin/python3
"""A scikit-learn linear model that trains and logs as SageMaker's built-in Linear Learner.

Map the Linear Learner image to it, and a tuning job written for the built-in algorithm (no
MetricDefinitions: hpo knows the algorithm's, proto/builtin_algorithms.h) runs here as written:

    build/cli/hpo run examples/linear-learner.yaml \\
        --image 382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1=examples/trainers/sklearn_linear.py

Run as `sklearn_linear.py train`. It

  - reads its hyperparameters as the other example trainers do (sm_training.py);
  - trains by stochastic gradient descent, one pass over the data per epoch, and after each epoch
    prints the lines Linear Learner prints, e.g.
        [11/28/2026 10:00:01 INFO 140213] #quality_metric: host=algo-1, epoch=3, validation binary_classification_cross_entropy_objective <loss>=0.0912
    then, on the final model, its validation (and test) scores, as `#validation_score (algo-1) :
    ('recall', 0.97)` and `#quality_metric: host=algo-1, validation recall <score>=0.97` lines;
  - writes the model to $SM_MODEL_DIR/model.pkl; on error, the reason to $SM_OUTPUT_DIR/failure
    and exit 1; on SIGTERM, finishes the epoch, scores and saves the model so far and exits 0.

Data: the CSV files of the `train`, `validation` and `test` channels when there are any (label in
the first column, no header: Linear Learner's CSV convention), else a dataset bundled with
scikit-learn split 60/20/20.

Hyperparameters (Linear Learner's names; all optional):
  predictor_type            binary_classifier | multiclass_classifier | regressor
                            (default: the dataset's kind)
  epochs (15)               passes over the training data
  mini_batch_size (100)     rows per step
  learning_rate (auto)      a step size > 0, or auto (0.01)
  wd (0), l1 (0)            L2 and L1 regularisation
  dataset (breast_cancer)   breast_cancer | digits | wine | diabetes; seed (0)
"""

import glob
import json
import os
import sys
import threading
import time

import sm_training
from sm_training import Params, env_path, save

HOST = os.environ.get("SM_CURRENT_HOST", "algo-1")


def log(text):
    print("[%s INFO %d] %s" % (time.strftime("%m/%d/%Y %H:%M:%S"), threading.get_ident() % 1000000, text),
          flush=True)


def quality(channel, name, tag, value, epoch=None):
    at = "" if epoch is None else "epoch=%d, " % epoch
    log("#quality_metric: host=%s, %s%s %s <%s>=%r" % (HOST, at, channel, name, tag, float(value)))


def read_channel(name):
    import numpy as np

    directory = os.environ.get("SM_CHANNEL_" + name.upper(), "")
    files = sorted(glob.glob(os.path.join(directory, "*.csv"))) if directory else []
    if not files:
        return None
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def load_data(dataset, seed):
    """(train, validation, test or None, kind of the data, where it came from)."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    train = read_channel("train")
    if train is not None:
        return train, read_channel("validation"), read_channel("test"), None, "the train channel's CSV files"
    loaders = {"breast_cancer": (datasets.load_breast_cancer, "binary_classifier"),
               "digits": (datasets.load_digits, "multiclass_classifier"),
               "wine": (datasets.load_wine, "multiclass_classifier"),
               "diabetes": (datasets.load_diabetes, "regressor")}
    if dataset not in loaders:
        raise ValueError("dataset must be one of %s, got %r" % (", ".join(sorted(loaders)), dataset))
    loader, kind = loaders[dataset]
    x, y = loader(return_X_y=True)
    stratify = None if kind == "regressor" else y
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, random_state=seed, stratify=stratify)
    stratify = None if kind == "regressor" else y_rest
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed,
                                                    stratify=stratify)
    return (x_train, y_train), (x_val, y_val), (x_test, y_test), kind, "scikit-learn's bundled %s dataset" % dataset


def objective(kind):
    return {"binary_classifier": "binary_classification_cross_entropy_objective",
            "multiclass_classifier": "multiclass_cross_entropy_objective",
            "regressor": "squared_loss_objective"}[kind]


def loss(model, kind, x, y, classes):
    from sklearn.metrics import log_loss, mean_squared_error

    if kind == "regressor":
        return mean_squared_error(y, model.predict(x))
    return log_loss(y, model.predict_proba(x), labels=classes)


def final_scores(model, kind, x, y, classes):
    """The scores Linear Learner reports on a channel after training, (name, tag, value)."""
    import numpy as np
    from sklearn import metrics

    out = [(objective(kind), "loss", loss(model, kind, x, y, classes))]
    if kind == "regressor":
        pred = model.predict(x)
        return out + [("mse", "loss", metrics.mean_squared_error(y, pred)),
                      ("absolute_loss", "loss", metrics.mean_absolute_error(y, pred))]
    pred = model.predict(x)
    proba = model.predict_proba(x)
    if kind == "binary_classifier":
        return out + [("binary_classification_accuracy", "score", metrics.accuracy_score(y, pred)),
                      ("binary_f_1.000", "score", metrics.f1_score(y, pred)),
                      ("precision", "score", metrics.precision_score(y, pred, zero_division=0)),
                      ("recall", "score", metrics.recall_score(y, pred)),
                      ("roc_auc_score", "score", metrics.roc_auc_score(y, proba[:, 1]))]
    top3 = np.argsort(-proba, axis=1)[:, :3]
    in_top3 = np.mean([yi in [classes[j] for j in row] for yi, row in zip(y, top3)])
    return out + [("multiclass_accuracy", "score", metrics.accuracy_score(y, pred)),
                  ("multiclass_top_k_accuracy_3", "score", in_top3),
                  ("dcg", "score", metrics.ndcg_score(np.eye(len(classes))[np.searchsorted(classes, y)], proba)),
                  ("macro_recall", "score", metrics.recall_score(y, pred, average="macro", zero_division=0)),
                  ("macro_precision", "score", metrics.precision_score(y, pred, average="macro", zero_division=0)),
                  ("macro_f_1.000", "score", metrics.f1_score(y, pred, average="macro"))]


def train(hps):
    import numpy as np
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.preprocessing import StandardScaler

    p = Params(hps)
    seed = p.get("seed", 0, int)
    epochs = p.get("epochs", 15, int)
    batch = p.get("mini_batch_size", 100, int)
    rate_text = p.get("learning_rate", "auto")
    rate = 0.01 if rate_text == "auto" else float(rate_text)
    wd, l1 = p.get("wd", 0.0, float), p.get("l1", 0.0, float)
    if epochs < 1 or batch < 1 or rate <= 0 or wd < 0 or l1 < 0:
        raise ValueError("epochs and mini_batch_size must be at least 1, learning_rate above 0, wd and l1 at "
                         "least 0; got %s" % json.dumps(hps, sort_keys=True))
    (x_train, y_train), validation, test, kind, source = load_data(p.get("dataset", "breast_cancer"), seed)
    kind = p.get("predictor_type", kind or "binary_classifier")
    if kind not in ("binary_classifier", "multiclass_classifier", "regressor"):
        raise ValueError("predictor_type must be binary_classifier, multiclass_classifier or regressor, got %r"
                         % kind)
    scaler = StandardScaler().fit(x_train)
    x_train = scaler.transform(x_train)
    channels = [(name, scaler.transform(data[0]), data[1]) for name, data in (("validation", validation),
                                                                              ("test", test)) if data is not None]
    classes = None if kind == "regressor" else np.unique(y_train)
    alpha = wd + l1
    common = dict(penalty="elasticnet", alpha=alpha, l1_ratio=(l1 / alpha if alpha > 0 else 0.0),
                  learning_rate="constant", eta0=rate, random_state=seed)
    model = SGDRegressor(**common) if kind == "regressor" else SGDClassifier(loss="log_loss", **common)
    log("sklearn_linear: %s on %d training rows from %s; hyperparameters %s"
        % (kind, len(y_train), source, json.dumps(hps, sort_keys=True)))

    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(y_train))
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            if kind == "regressor":
                model.partial_fit(x_train[rows], y_train[rows])
            else:
                model.partial_fit(x_train[rows], y_train[rows], classes=classes)
        quality("train", objective(kind), "loss", loss(model, kind, x_train, y_train, classes), epoch)
        for name, x, y in channels:
            if name == "validation":
                quality(name, objective(kind), "loss", loss(model, kind, x, y, classes), epoch)
        log("#progress_metric: host=%s, completed %d %% of epochs" % (HOST, (epoch + 1) * 100 // epochs))
        if sm_training.stop_requested():
            log("sklearn_linear: SIGTERM received, stopping after epoch %d" % epoch)
            break

    for name, x, y in channels:
        for metric, tag, value in final_scores(model, kind, x, y, classes):
            log("#%s_score (%s) : (%r, %r)" % (name, HOST, metric, float(value)))
            quality(name, metric, tag, value)
    model_dir = env_path("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(model_dir, exist_ok=True)
    save(os.path.join(model_dir, "model.pkl"), {"scaler": scaler, "model": model})
    log("sklearn_linear: model written to %s" % os.path.join(model_dir, "model.pkl"))


if __name__ == "__main__":
    sys.exit(sm_training.main(sys.argv, train))
