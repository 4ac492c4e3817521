#!/usr/bin/env python3
"""The peers' side of the adaptive tuning benchmark: Optuna's pruners, Ray Tune's ASHA and Syne
Tune's ASHA and BOHB on the learning-curve task of examples/trainers/curve.cc (the same function, bench/adaptive/curve.py).

Same shape as the hpo specs beside this file: TRIALS trials (60), 2 at a time, the same search
space (lr log-uniform in [1e-4, 1], momentum uniform in [0, 0.99], layers an integer in [1, 8]),
EPOCHS epochs (27) of SLEEP_MS (20 ms) each, the objective is the last reported loss (minimised).
Each epoch sleeps, then computes loss(k) and reports it; the trial's training seconds are from
its first line to its return (or to the report after which it was pruned / stopped).

  optuna  (run with bench/.venv-optuna/bin/python)  runs (--runs, comma-separated):
    random-none       RandomSampler(seed), no pruning (NopPruner): the peers' own baseline
    random-median     RandomSampler(seed) + MedianPruner() (defaults: n_startup_trials=5,
                      n_warmup_steps=0; prunes when the value at step k is worse than the median
                      of the completed trials' values at k): the counterpart of the median rule
    random-hyperband  RandomSampler(seed) + HyperbandPruner(min_resource=1, max_resource=27,
                      reduction_factor=3)
    With --configs FILE (a JSON list of {"lr", "momentum", "layers"}), the random-* configs
    evaluate exactly those configurations, in that order (study.enqueue_trial), instead of
    sampling: run.sh passes the ones hpo's Random strategy proposed for the same seed, so that
    every random-search row differs only in its stopping rule.
    tpe-hyperband     TPESampler(seed) + the same HyperbandPruner (Optuna's recommended pairing;
                      the counterpart of hpo's BOHB-style Hyperband)
    study.optimize(n_trials=TRIALS, n_jobs=2): two threads (the epochs sleep, so the GIL is free).
    Best = study.best_value (completed trials only: a pruned trial has no value).
  ray  (run with bench/.venv-ray/bin/python)  config:
    random-asha       BasicVariantGenerator(random_state=seed) + ASHAScheduler(time_attr=
                      "training_iteration", max_t=27, grace_period=1, reduction_factor=3,
                      brackets=1 (Tune's default)); with --configs, points_to_evaluate=those
                      configurations (all TRIALS of them), as Optuna's random-*; ray.init(num_cpus=2), 1 CPU per trial,
                      max_concurrent_trials=2, reuse_actors=True (a fresh actor per trial costs
                      ~1 s on this machine and is not what is measured here).
    Best = the lowest last-reported loss over all trials (ASHA-stopped ones included, as hpo does).
  syne  (run with bench/.venv-syne/bin/python)  runs (--runs, comma-separated; default both):
    random-asha       Syne Tune's ASHA(time_attr="epoch", max_t=27, grace_period=1,
                      reduction_factor=3, brackets=1) with random search; with --configs,
                      points_to_evaluate=those configurations, as the other random-* rows
    bohb              Syne Tune's BOHB (ASHA with its KDE searcher, the same rungs): the
                      counterpart of hpo's Hyperband and Optuna's tpe-hyperband
    LocalBackend starts bench/adaptive/syne_trial.py once per trial (a Python process, as Syne
    Tune runs trials); Tuner(n_workers=2, sleep_time=0.05: Syne Tune's default of 5 s would
    leave a slot idle for seconds after each trial); TRIALS trials started, then the running ones
    finish. Best = the lowest last-reported loss over all trials (ASHA-stopped ones included).

Writes one JSON object per config to --out (JSON lines): system, config, seed, trials,
epochs (total over trials), train_s (sum of trial seconds), best, best_config, wall_s, note.
"""
import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from curve import Curve  # noqa: E402

OPTUNA_CONFIGS = ["random-none", "random-median", "random-hyperband", "tpe-hyperband"]


def peer_row(system, config, seed, trials, stopped, epochs, train_s, best, best_config, wall, note):
    """One JSON row of a peer's run, as summarize.py reads them."""
    return {"system": system, "config": config, "seed": seed, "trials": trials, "stopped": stopped,
            "epochs": epochs, "train_s": round(train_s, 3), "best": best, "best_config": best_config,
            "wall_s": round(wall, 3), "note": note}


def run_optuna(a, config, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler_name, pruner_name = config.split("-", 1)
    sampler = optuna.samplers.RandomSampler(seed=seed) if sampler_name == "random" else \
        optuna.samplers.TPESampler(seed=seed)
    if pruner_name == "none":
        pruner = optuna.pruners.NopPruner()
    elif pruner_name == "median":
        pruner = optuna.pruners.MedianPruner()
    else:
        pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=a.epochs, reduction_factor=3)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    if a.configs_list and sampler_name == "random":
        for c in a.configs_list[: a.trials]:
            study.enqueue_trial(c)
    lock = threading.Lock()
    totals = {"epochs": 0, "train_s": 0.0}

    def objective(trial):
        t0 = time.perf_counter()
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        momentum = trial.suggest_float("momentum", 0.0, 0.99)
        layers = trial.suggest_int("layers", 1, 8)
        c = Curve(lr, momentum, layers, a.noise, a.noise_seed)
        k = 0
        try:
            for k in range(1, a.epochs + 1):
                time.sleep(a.sleep_ms / 1000.0)
                v = c.loss(k)
                trial.report(v, k)
                if k < a.epochs and trial.should_prune():
                    raise optuna.TrialPruned()
            return v
        finally:
            with lock:
                totals["epochs"] += k
                totals["train_s"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    study.optimize(objective, n_trials=a.trials, n_jobs=2)
    wall = time.perf_counter() - t0
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return peer_row("optuna " + optuna.__version__, config, seed, len(study.trials), pruned, totals["epochs"],
                    totals["train_s"], study.best_value if complete else None,
                    dict(study.best_params) if complete else None, wall,
                    "same configurations as hpo Random" if a.configs_list and sampler_name == "random" else "")


def ray_trainable(config):
    from ray import tune

    t0 = time.time()
    c = Curve(config["lr"], config["momentum"], config["layers"], config["noise"], config["noise_seed"])
    for k in range(1, config["epochs"] + 1):
        time.sleep(config["sleep_ms"] / 1000.0)
        tune.report({"loss": c.loss(k), "t_start": t0, "t_now": time.time()})


def run_ray(a, seed):
    try:
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search import BasicVariantGenerator
    except Exception as e:  # noqa: BLE001 - any import failure means: skip, and say why
        return {"system": "ray", "config": "random-asha", "seed": seed, "skipped": f"ray is not importable: {e!r}"}

    storage = tempfile.mkdtemp(prefix="ray-adaptive-bench-")
    t_init = time.perf_counter()
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - t_init
    tuner = tune.Tuner(
        ray_trainable,
        param_space={
            "lr": tune.loguniform(1e-4, 1.0),
            "momentum": tune.uniform(0.0, 0.99),
            "layers": tune.randint(1, 9),  # upper bound exclusive: 1..8
            "epochs": a.epochs,
            "sleep_ms": a.sleep_ms,
            "noise": a.noise,
            "noise_seed": a.noise_seed,
        },
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=a.trials,
            max_concurrent_trials=2,
            reuse_actors=True,
            search_alg=BasicVariantGenerator(random_state=seed, points_to_evaluate=a.configs_list[: a.trials] or None),
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=a.epochs, grace_period=1,
                                    reduction_factor=3),
        ),
        run_config=tune.RunConfig(name=f"adaptive-{seed}", storage_path=storage, verbose=0),
    )
    t0 = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - t0
    epochs, train_s, stopped, best, best_config, errors = 0, 0.0, 0, None, None, 0
    for r in results:
        if r.error:
            errors += 1
        m = r.metrics or {}
        it = int(m.get("training_iteration") or 0)
        epochs += it
        if m.get("t_now") is not None:
            train_s += m["t_now"] - m["t_start"]
        if 0 < it < a.epochs:
            stopped += 1
        if m.get("loss") is not None and (best is None or m["loss"] < best):
            best = m["loss"]
            best_config = {k: r.config[k] for k in ("lr", "momentum", "layers")}
    ray.shutdown()
    return peer_row("ray " + ray.__version__, "random-asha", seed, len(results), stopped, epochs, train_s, best,
                    best_config, wall,
                    ("same configurations as hpo Random; " if a.configs_list else "") +
                    f"ray.init {init_s:.1f} s not in wall" + (f"; {errors} trials errored" if errors else ""))


SYNE_CONFIGS = ["random-asha", "bohb"]


def run_syne(a, config, seed):
    try:
        import importlib.metadata
        import logging

        from syne_tune import Tuner
        from syne_tune.backend import LocalBackend
        from syne_tune.config_space import loguniform, randint, uniform
        from syne_tune.experiments import load_experiment
        from syne_tune.optimizer.baselines import ASHA, BOHB
    except Exception as e:  # noqa: BLE001 - any import failure means: skip, and say why
        return {"system": "syne", "config": config, "seed": seed, "skipped": f"syne_tune is not importable: {e!r}"}
    logging.getLogger().setLevel(logging.WARNING)
    folder = tempfile.mkdtemp(prefix="syne-adaptive-bench-")
    os.environ["SYNETUNE_FOLDER"] = folder
    space = {
        "lr": loguniform(1e-4, 1.0),
        "momentum": uniform(0.0, 0.99),
        "layers": randint(1, 8),  # both bounds included
        "epochs": a.epochs,
        "sleep_ms": a.sleep_ms,
        "noise": a.noise,
        "noise_seed": a.noise_seed,
    }
    common = dict(config_space=space, metric="loss", time_attr="epoch", max_t=a.epochs, do_minimize=True,
                  random_seed=seed, grace_period=1, reduction_factor=3, brackets=1)
    if config == "random-asha":
        scheduler = ASHA(points_to_evaluate=a.configs_list[: a.trials] or None, **common)
    elif config == "bohb":
        scheduler = BOHB(**common)
    else:
        raise SystemExit(f"peers.py: unknown Syne Tune run {config} (one of {', '.join(SYNE_CONFIGS)})")
    backend = LocalBackend(entry_point=os.path.join(os.path.dirname(os.path.abspath(__file__)), "syne_trial.py"))
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, n_workers=2, sleep_time=0.05,
                  stop_criterion=lambda status: status.num_trials_started >= a.trials,
                  wait_trial_completion_when_stopping=True, tuner_name=f"adaptive-{config}-{seed}",
                  print_update_interval=3600)
    cwd = os.getcwd()
    os.chdir(folder)  # Syne Tune leaves files (std.out) in the working directory
    try:
        t0 = time.perf_counter()
        tuner.run()
        wall = time.perf_counter() - t0
    finally:
        os.chdir(cwd)
    df = load_experiment(tuner.name, local_path=folder).results
    epochs, train_s, stopped, best, best_config, trials = 0, 0.0, 0, None, None, 0
    for _, rows in df.groupby("trial_id"):
        trials += 1
        last = rows.sort_values("epoch").iloc[-1]
        it = int(last["epoch"])
        epochs += it
        train_s += float(last["t_now"]) - float(last["t_start"])
        if it < a.epochs:
            stopped += 1
        if best is None or float(last["loss"]) < best:
            best = float(last["loss"])
            best_config = {"lr": float(last["config_lr"]), "momentum": float(last["config_momentum"]),
                           "layers": int(last["config_layers"])}
    return peer_row("syne " + importlib.metadata.version("syne-tune"), config, seed, trials, stopped, epochs, train_s,
                    best, best_config, wall,
                    "same configurations as hpo Random" if a.configs_list and config == "random-asha" else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("system", choices=["optuna", "ray", "syne"])
    ap.add_argument("--runs", default="", help="optuna or syne runs, comma-separated (default: all of them)")
    ap.add_argument("--seeds", default="1", help="comma-separated")
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--epochs", type=int, default=27)
    ap.add_argument("--sleep-ms", type=int, default=20)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--noise-seed", type=int, default=0)
    ap.add_argument("--configs", default="", help="JSON list of configurations for the random-search rows "
                    "({seed} in the name is replaced by the seed)")
    ap.add_argument("--out", required=True, help="JSON lines, appended")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s]
    with open(a.out, "a") as out:
        for seed in seeds:
            a.configs_list = []
            if a.configs:
                with open(a.configs.replace("{seed}", str(seed))) as f:
                    a.configs_list = [{"lr": float(c["lr"]), "momentum": float(c["momentum"]),
                                       "layers": int(float(c["layers"]))} for c in json.load(f)]
            if a.system == "optuna":
                rows = [run_optuna(a, c, seed) for c in (a.runs or ",".join(OPTUNA_CONFIGS)).split(",") if c]
            elif a.system == "syne":
                rows = [run_syne(a, c, seed) for c in (a.runs or ",".join(SYNE_CONFIGS)).split(",") if c]
            else:
                rows = [run_ray(a, seed)]
            for row in rows:
                out.write(json.dumps(row) + "\n")
                out.flush()
                print("peers.py: " + json.dumps({k: v for k, v in row.items() if k != "best_config"}), file=sys.stderr)
                if row.get("skipped"):
                    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
