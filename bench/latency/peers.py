#!/usr/bin/env python3
"""One suggestion of a peer's Gaussian-process searcher after N completed trials, timed.

  python peers.py optuna-gp|syne-botorch|syne-botorch-all --n N --d D [--seed S] [--repeat R]

Run with the interpreter that has the peer (bench/.venv-optuna for optuna-gp, bench/.venv-syne for
the syne- ones; bench/latency/run.sh does). The history is `hpo bench suggest`'s
(cli/bench_commands.cc): N points uniform on [0,1]^D, objective sum_i (u_i - 0.35)^2 +
0.1 sin(7 u_i + i) plus uniform noise of width 0.01 (numpy's generator, so the points differ from
hpo's; the function and its scale are the same). Each repeat starts a fresh searcher, loads the
history, and times one suggestion; as `hpo bench suggest`, no warm start from an earlier fit.

  optuna-gp         optuna.samplers.GPSampler(seed) with its defaults; the history added with
                    study.add_trials; the time is one study.ask() (GPSampler fits and optimises
                    its acquisition there).
  syne-botorch      Syne Tune's BOTorch baseline with its defaults: the GP sees at most 200
                    observations (max_num_observations=200, a uniform random subsample above it).
  syne-botorch-all  the same with max_num_observations=None: the GP sees all N, as hpo's does up
                    to 2000.

Prints {"peer","n","d","seconds" (median),"each":[...],"version"} as one JSON line.
"""
import argparse
import json
import logging
import statistics
import time

import numpy as np


def history(n, d, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(n, d))
    i = np.arange(d)
    y = ((u - 0.35) ** 2 + 0.1 * np.sin(7.0 * u + i)).sum(axis=1) + 0.01 * (rng.uniform(size=n) - 0.5)
    return u, y


def optuna_gp(u, y, seed):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    d = u.shape[1]
    dists = {"x%d" % k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in range(d)}
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.GPSampler(seed=seed))
    study.add_trials([optuna.trial.create_trial(params={"x%d" % k: float(row[k]) for k in range(d)},
                                                distributions=dists, value=float(v)) for row, v in zip(u, y)])
    t0 = time.perf_counter()
    trial = study.ask(dists)
    took = time.perf_counter() - t0
    assert len(trial.params) == d
    return took, optuna.__version__


def syne_botorch(u, y, seed, cap):
    import syne_tune
    from syne_tune.config_space import uniform
    from syne_tune.optimizer.schedulers.searchers.botorch.botorch_searcher import BoTorchSearcher
    d = u.shape[1]
    space = {"x%d" % k: uniform(0.0, 1.0) for k in range(d)}
    s = BoTorchSearcher(space, random_seed=seed, max_num_observations=cap)
    for t, (row, v) in enumerate(zip(u, y)):  # what its on_trial_complete and suggest record
        s.trial_configs[t] = {"x%d" % k: float(row[k]) for k in range(d)}
        s.trial_observations[t] = float(v)
    # On a failed fit or acquisition it logs a warning and returns a random configuration: a time
    # that measures no model, so it is refused rather than reported.
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logging.getLogger().addHandler(handler)
    t0 = time.perf_counter()
    config = s.suggest()
    took = time.perf_counter() - t0
    logging.getLogger().removeHandler(handler)
    assert config is not None and len(config) == d
    if any("randomly" in w for w in warnings):
        raise SystemExit("BOTorch fell back to a random configuration: " + "; ".join(warnings))
    return took, syne_tune.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("peer", choices=("optuna-gp", "syne-botorch", "syne-botorch-all"))
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--d", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    u, y = history(a.n, a.d, a.seed)
    each, version = [], ""
    for r in range(a.repeat):
        if a.peer == "optuna-gp":
            took, version = optuna_gp(u, y, a.seed + r)
        else:
            took, version = syne_botorch(u, y, a.seed + r, 200 if a.peer == "syne-botorch" else None)
        each.append(round(took, 4))
    print(json.dumps({"peer": a.peer, "n": a.n, "d": a.d, "seconds": statistics.median(each), "each": each,
                      "version": version}))


if __name__ == "__main__":
    main()
