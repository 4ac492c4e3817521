#!/usr/bin/env python3
"""Syne Tune side of the dispatch-overhead benchmark (run with bench/.venv-syne/bin/python).

The same shape as the hpo and Ray Tune runs: N trials, C at once, each trial sleeps 0.2 s and
reports one metric. Syne Tune's LocalBackend starts one process per trial on this machine, as
hpo's worker does; Tuner(n_workers=C) keeps C of them running. Random search (RandomSearch over
x ~ uniform(-1, 1)); everything else is Syne Tune's defaults unless a flag says otherwise.

Trial kinds:
  python   (default) bench/dispatch/syne_trial.py: a Python script reporting with
           syne_tune.Reporter, the way Syne Tune's docs write a trial.
  process  bench/dispatch/syne_trial.sh under LocalBackend(binary="/bin/sh"): it runs
           bench/dispatch/sleep_trainer, the very program hpo runs, and reports its
           bench_start_ms / bench_end_ms as the trial's timestamps.

--sleep-time is Tuner's sleep_time, how long the tuning loop sleeps when every worker is busy
(Syne Tune's default is 5 s); the run starts N trials, or as many as --time-budget-s lets it,
and ends when those have finished (only finished ones are counted). Each trial reports t_start / t_end
(Unix epoch seconds) and its pid; the script writes them to --out in ray_bench.py's format for
analyze.py.

  syne_bench.py --trials 2000 --concurrency 16 --sleep-ms 200 --out syne.json
"""
import argparse
import importlib.metadata
import json
import logging
import os
import sys
import time

PROCESS_START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sleep-ms", type=int, default=200)
    ap.add_argument("--kind", choices=["python", "process"], default="python")
    ap.add_argument("--trainer", default="", help="sleep_trainer executable (--kind process)")
    ap.add_argument("--sleep-time", type=float, default=None,
                    help="Tuner(sleep_time=...): seconds the loop sleeps while all workers are busy "
                         "(default: Syne Tune's own, 5 s)")
    ap.add_argument("--time-budget-s", type=float, default=0, help="stop after this long (0: no limit)")
    ap.add_argument("--folder", required=True, help="where Syne Tune writes its experiment (SYNETUNE_FOLDER)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.kind == "process" and not os.access(a.trainer, os.X_OK):
        sys.exit("syne_bench: --kind process needs --trainer PATH of sleep_trainer")
    os.makedirs(a.folder, exist_ok=True)
    os.environ["SYNETUNE_FOLDER"] = a.folder
    os.environ["SYNE_BENCH_TRAINER"] = os.path.abspath(a.trainer) if a.trainer else ""
    logging.getLogger().setLevel(logging.WARNING)

    from syne_tune import Tuner
    from syne_tune.backend import LocalBackend
    from syne_tune.config_space import uniform
    from syne_tune.experiments import load_experiment
    from syne_tune.optimizer.baselines import RandomSearch

    if a.kind == "python":
        backend = LocalBackend(entry_point=os.path.join(HERE, "syne_trial.py"))
    else:
        backend = LocalBackend(entry_point=os.path.join(HERE, "syne_trial.sh"), binary="/bin/sh")
    scheduler = RandomSearch({"x": uniform(-1.0, 1.0), "sleep_ms": a.sleep_ms}, metrics=["loss"],
                             do_minimize=True, random_seed=1)

    # N trials started, then the running ones finish (as hpo's job ends once its last training
    # job has); past the time budget, the same.
    def stop(status):
        if status.num_trials_started >= a.trials:
            return True
        return bool(a.time_budget_s) and status.wallclock_time > a.time_budget_s

    kwargs = {} if a.sleep_time is None else {"sleep_time": a.sleep_time}
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=stop, n_workers=a.concurrency,
                  tuner_name="dispatch-bench", wait_trial_completion_when_stopping=True, **kwargs)
    run_start = time.time()
    tuner.run()
    run_end = time.time()

    df = load_experiment(tuner.name, local_path=a.folder).results
    trials = []
    if df is not None and len(df):
        for trial_id, rows in df.groupby("trial_id"):
            r = rows.iloc[-1]
            trials.append({
                "trial_id": int(trial_id),
                "status": "TERMINATED",
                "t_start": float(r["t_start"]),
                "t_end": float(r["t_end"]),
                "pid": int(r["pid"]),
                "loss": float(r["loss"]),
            })
    out = {
        "syne_version": importlib.metadata.version("syne-tune"),
        "trial_kind": a.kind,
        "sleep_time": a.sleep_time if a.sleep_time is not None else tuner.sleep_time,
        "trials_requested": a.trials,
        "concurrency": a.concurrency,
        "sleep_ms": a.sleep_ms,
        "resources": f"LocalBackend, Tuner(n_workers={a.concurrency}) on {os.cpu_count()} cores",
        "time_budget_s": a.time_budget_s,
        "init_wall_s": round(run_start - PROCESS_START, 3),
        "fit_start": run_start,
        "fit_end": run_end,
        "fit_wall_s": round(run_end - run_start, 3),
        "process_wall_s": round(time.time() - PROCESS_START, 3),
        "storage_path": a.folder,
        "best_loss": min((t["loss"] for t in trials), default=None),
        "trials": trials,
    }
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(f"syne_bench: {len(trials)} trials finished, run {out['fit_wall_s']} s -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
