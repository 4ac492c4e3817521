#!/usr/bin/python3
"""A scikit-learn gradient-boosting trainer written to the SageMaker training-container contract.

The interpreter is Debian's /usr/bin/python3, the one python3-sklearn installs into
(scripts/install-deps.sh --examples); run it as `python3 sklearn_gbt.py train` to use another.

Run as `sklearn_gbt.py train` (the way SageMaker runs `<image> train`). It

  - reads its hyperparameters from SM_HPS (JSON), else from
    $SM_INPUT_CONFIG_DIR/hyperparameters.json (default /opt/ml/input/config), every value a
    string; `--name value` arguments after `train` override both, for running it by hand;
  - trains a GradientBoostingClassifier one boosting round at a time and prints one line per round
    in the form SageMaker's built-in XGBoost uses (a real tab between fields; in CloudWatch the
    tab shows as "#011", and hpo's metric parser accepts either):
        [12]\ttrain-auc:0.99342\ttrain-logloss:0.12345\tvalidation-auc:0.98811\tvalidation-logloss:0.15432
  - writes the model to $SM_MODEL_DIR/model.pkl (default /opt/ml/model), and on error the reason
    to $SM_OUTPUT_DIR/failure (default /opt/ml/output) and exits 1;
  - on SIGTERM (a stopped or interrupted training job) finishes the current round, saves the
    model trained so far and exits 0;
  - when $SM_CHECKPOINT_DIR (or /opt/ml/checkpoints) exists, saves a checkpoint every
    `checkpoint_every` rounds and resumes from it, so managed-spot interruptions lose little work.

Data: the CSV files of the `train` channel ($SM_CHANNEL_TRAIN) when there are any (label in the
first column, no header: the SageMaker XGBoost CSV convention), else a dataset bundled with
scikit-learn (`dataset`: breast_cancer or digits), so the example needs no download.

Hyperparameters (all optional; XGBoost names where sklearn has the same knob):
  num_round (50)            boosting rounds
  eta (0.1)                 learning rate
  max_depth (3)             depth of each tree
  subsample (1.0)           fraction of rows per tree, (0, 1]
  min_child_weight (1)      minimum samples per leaf (sklearn's min_samples_leaf)
  max_features (all)        all | sqrt | log2 | a fraction in (0, 1]
  loss (log_loss)           log_loss | exponential (exponential: binary datasets only)
  dataset (breast_cancer)   breast_cancer | digits
  validation_fraction (0.25), seed (0), checkpoint_every (10)
"""

import glob
import json
import os
import pickle
import sys

import sm_training
from sm_training import Params, env_path, save

def load_data(dataset):
    import numpy as np

    channel = os.environ.get("SM_CHANNEL_TRAIN", "")
    files = sorted(glob.glob(os.path.join(channel, "*.csv"))) if channel else []
    if files:
        data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
        return data[:, 1:], data[:, 0].astype(int), "channel train (%d CSV files)" % len(files)
    from sklearn import datasets

    loaders = {"breast_cancer": datasets.load_breast_cancer, "digits": datasets.load_digits}
    if dataset not in loaders:
        raise ValueError("dataset must be one of %s, got %r" % (", ".join(sorted(loaders)), dataset))
    bunch = loaders[dataset]()
    return bunch.data, bunch.target, "scikit-learn's bundled %s dataset" % dataset


def scores(model, x, y, classes):
    from sklearn.metrics import log_loss, roc_auc_score

    proba = model.predict_proba(x)
    if len(classes) == 2:
        auc = roc_auc_score(y, proba[:, 1])
    else:
        auc = roc_auc_score(y, proba, multi_class="ovr", labels=classes)
    return auc, log_loss(y, proba, labels=classes)


def parse_max_features(text):
    if text in ("all", "None", "none"):
        return None
    if text in ("sqrt", "log2"):
        return text
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise ValueError("max_features must be all, sqrt, log2 or a fraction in (0, 1], got %r" % text)
    return value


def train(hps):
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    p = Params(hps)
    num_round = p.get("num_round", 50, int)
    seed = p.get("seed", 0, int)
    checkpoint_every = max(1, p.get("checkpoint_every", 10, int))
    x, y, source = load_data(p.get("dataset", "breast_cancer"))
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=p.get("validation_fraction", 0.25, float), random_state=seed, stratify=y)
    classes = sorted(set(y.tolist()))
    print("sklearn_gbt: %d training and %d validation rows from %s; hyperparameters %s"
          % (len(y_train), len(y_val), source, json.dumps(hps, sort_keys=True)), flush=True)

    checkpoint_dir = env_path("SM_CHECKPOINT_DIR", "/opt/ml/checkpoints")
    checkpoint = os.path.join(checkpoint_dir, "sklearn_gbt.pkl") if os.path.isdir(checkpoint_dir) else None
    model, start = None, 0
    if checkpoint and os.path.exists(checkpoint):
        with open(checkpoint, "rb") as f:
            saved = pickle.load(f)
        if saved.get("hyperparameters") == hps:
            model, start = saved["model"], saved["rounds"]
            print("sklearn_gbt: resuming from checkpoint %s at round %d" % (checkpoint, start), flush=True)
    if model is None:
        model = GradientBoostingClassifier(
            learning_rate=p.get("eta", 0.1, float),
            max_depth=p.get("max_depth", 3, int),
            subsample=p.get("subsample", 1.0, float),
            min_samples_leaf=p.get("min_child_weight", 1, int),
            max_features=parse_max_features(p.get("max_features", "all")),
            loss=p.get("loss", "log_loss"),
            n_estimators=1,
            warm_start=True,
            random_state=seed,
        )

    for rnd in range(start, num_round):
        model.set_params(n_estimators=rnd + 1)
        model.fit(x_train, y_train)  # warm_start: adds one tree to the ones fitted before
        train_auc, train_loss = scores(model, x_train, y_train, classes)
        val_auc, val_loss = scores(model, x_val, y_val, classes)
        print("[%d]\ttrain-auc:%.5f\ttrain-logloss:%.5f\tvalidation-auc:%.5f\tvalidation-logloss:%.5f"
              % (rnd, train_auc, train_loss, val_auc, val_loss), flush=True)
        if checkpoint and ((rnd + 1) % checkpoint_every == 0 or sm_training.stop_requested()):
            save(checkpoint, {"model": model, "rounds": rnd + 1, "hyperparameters": hps})
        if sm_training.stop_requested():
            print("sklearn_gbt: SIGTERM received, stopping after round %d" % rnd, flush=True)
            break

    model_dir = env_path("SM_MODEL_DIR", "/opt/ml/model")
    os.makedirs(model_dir, exist_ok=True)
    save(os.path.join(model_dir, "model.pkl"), model)
    print("sklearn_gbt: model written to %s" % os.path.join(model_dir, "model.pkl"), flush=True)


if __name__ == "__main__":
    sys.exit(sm_training.main(sys.argv, train))
