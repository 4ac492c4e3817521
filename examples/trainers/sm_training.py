"""What the example trainers share: the SageMaker training-container contract's plumbing.

Imported by sklearn_gbt.py and sklearn_linear.py, which sit beside it (Python puts a script's own
directory first on its import path). It

  - reads the hyperparameters (SM_HPS, else $SM_INPUT_CONFIG_DIR/hyperparameters.json, every value
    a string; `--name value` arguments after `train` override both, for running by hand);
  - notes SIGTERM (a stopped or interrupted training job): the trainer finishes its current step,
    saves its model and exits 0;
  - writes an exception's reason to $SM_OUTPUT_DIR/failure (the training job's FailureReason) and
    exits 1.
"""

import json
import os
import pickle
import signal
import sys
import traceback

_stop_requested = False


def _on_sigterm(signum, frame):
    global _stop_requested
    _stop_requested = True


def stop_requested():
    """Whether SIGTERM has arrived since main() started."""
    return _stop_requested


def env_path(name, default):
    value = os.environ.get(name)
    return value if value else default


def read_hyperparameters(argv):
    hps = {}
    if os.environ.get("SM_HPS"):
        hps = json.loads(os.environ["SM_HPS"])
    else:
        config_dir = env_path("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
        path = os.path.join(config_dir, "hyperparameters.json")
        if os.path.exists(path):
            with open(path) as f:
                hps = json.load(f)
    args = list(argv)
    while args:
        key = args.pop(0)
        if not key.startswith("--") or not args:
            raise ValueError("expected --name value pairs after 'train', got %r" % key)
        hps[key[2:]] = args.pop(0)
    return {k: str(v) for k, v in hps.items()}


class Params:
    """Typed access to the string hyperparameters; a value that does not convert is an error
    naming it."""

    def __init__(self, hps):
        self.hps = hps

    def get(self, name, default, convert=str):
        text = self.hps.get(name)
        if text is None or text == "":
            return default
        try:
            return convert(text)
        except ValueError:
            raise ValueError("hyperparameter %s=%r is not a valid %s" % (name, text, convert.__name__))


def save(path, obj):
    """Pickles obj to path atomically (a reader sees the old file or the whole new one)."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv, train):
    """Runs train(hyperparameters) as `<program> train [--name value ...]`; returns the exit code."""
    if len(argv) < 2 or argv[1] != "train":
        sys.stderr.write("usage: %s train [--name value ...]   (run by an hpo worker, as SageMaker "
                         "runs a training container)\n" % os.path.basename(argv[0]))
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        train(read_hyperparameters(argv[2:]))
    except Exception as e:  # the contract: the reason goes to /opt/ml/output/failure
        traceback.print_exc()
        output_dir = env_path("SM_OUTPUT_DIR", "/opt/ml/output")
        try:
            os.makedirs(output_dir, exist_ok=True)
            with open(os.path.join(output_dir, "failure"), "w") as f:
                f.write(("AlgorithmError: %s: %s" % (type(e).__name__, e))[:1024])
        except OSError:
            pass
        return 1
    return 0
