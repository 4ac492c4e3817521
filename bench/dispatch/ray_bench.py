#!/usr/bin/env python3
"""Ray Tune side of the dispatch-overhead benchmark (run with bench/.venv-ray/bin/python).

The same shape as the hpo run: N trials, 16 at once, each trial sleeps 0.2 s and reports one
metric. Resources, stated honestly: ray.init(num_cpus=16) declares 16 *logical* CPUs on this
2-core machine, and each trial asks for Ray's default of 1 CPU, so exactly 16 trials run at once
(max_concurrent_trials=16 as well). Random search: tune.uniform over x with the default
BasicVariantGenerator, num_samples=N. Everything else is Ray Tune's defaults (reuse_actors=False:
every trial gets a fresh actor, i.e. a fresh worker process; per-trial result logging on).

Trial kinds:
  function    (default) a function trainable: time.sleep(0.2), then tune.report(...).
  subprocess  the function trainable runs bench/dispatch/sleep_trainer (a real process per trial,
              as hpo does) and takes its bench_start_ms / bench_end_ms lines as the timestamps.

Each trial reports t_start / t_end (Unix epoch seconds, taken first thing and last thing in the
user code) and its pid; the script writes them with the wall times to --out (JSON) for
analyze.py.

  ray_bench.py --trials 2000 --concurrency 16 --sleep-ms 200 --out ray.json
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

PROCESS_START = time.time()


def trainable(config):
    from ray import tune

    if config["kind"] == "subprocess":
        env = dict(os.environ, SM_HP_SLEEP_MS=str(config["sleep_ms"]), SM_HP_X=repr(config["x"]))
        out = subprocess.run([config["trainer"], "train"], env=env, capture_output=True, text=True, check=True).stdout
        vals = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        t_start = int(vals["bench_start_ms"]) / 1000.0
        t_end = int(vals["bench_end_ms"]) / 1000.0
        loss = float(vals["loss"])
    else:
        t_start = time.time()
        time.sleep(config["sleep_ms"] / 1000.0)
        loss = (config["x"] - 0.3) ** 2
        t_end = time.time()
    tune.report({"loss": loss, "t_start": t_start, "t_end": t_end, "pid": os.getpid()})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--sleep-ms", type=int, default=200)
    ap.add_argument("--kind", choices=["function", "subprocess"], default="function")
    ap.add_argument("--trainer", default="", help="sleep_trainer executable (--kind subprocess)")
    ap.add_argument("--reuse-actors", action="store_true", help="TuneConfig(reuse_actors=True); default False")
    ap.add_argument("--time-budget-s", type=float, default=0,
                    help="TuneConfig(time_budget_s): stop the experiment after this long (0: no limit)")
    ap.add_argument("--storage", default="", help="Ray Tune storage_path (default: a fresh temp dir)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.kind == "subprocess" and not os.access(a.trainer, os.X_OK):
        sys.exit("ray_bench: --kind subprocess needs --trainer PATH of sleep_trainer")

    import ray
    from ray import tune

    storage = a.storage or tempfile.mkdtemp(prefix="ray-dispatch-bench-")
    t0 = time.time()
    ray.init(num_cpus=a.concurrency, num_gpus=0, include_dashboard=False, log_to_driver=False)
    init_wall = time.time() - t0

    tuner = tune.Tuner(
        trainable,
        param_space={
            "x": tune.uniform(-1.0, 1.0),
            "sleep_ms": a.sleep_ms,
            "kind": a.kind,
            "trainer": os.path.abspath(a.trainer) if a.trainer else "",
        },
        tune_config=tune.TuneConfig(
            metric="loss",
            mode="min",
            num_samples=a.trials,
            max_concurrent_trials=a.concurrency,
            reuse_actors=a.reuse_actors,
            time_budget_s=a.time_budget_s or None,
        ),
        run_config=tune.RunConfig(name="dispatch-bench", storage_path=storage, verbose=0),
    )
    fit_start = time.time()
    results = tuner.fit()
    fit_end = time.time()

    trials = []
    for r in results:
        m = r.metrics or {}
        trials.append(
            {
                "trial_id": m.get("trial_id"),
                "status": "ERROR" if r.error else ("TERMINATED" if m.get("t_end") is not None else "UNFINISHED"),
                "t_start": m.get("t_start"),
                "t_end": m.get("t_end"),
                "pid": m.get("pid"),
                "loss": m.get("loss"),
            }
        )
    try:
        best = results.get_best_result()
    except Exception:  # noqa: BLE001 - no finished trial
        best = None
    ray.shutdown()
    out = {
        "ray_version": ray.__version__,
        "trial_kind": a.kind,
        "reuse_actors": a.reuse_actors,
        "trials_requested": a.trials,
        "concurrency": a.concurrency,
        "sleep_ms": a.sleep_ms,
        "resources": f"ray.init(num_cpus={a.concurrency}) logical CPUs on {os.cpu_count()} cores; 1 CPU per trial",
        "time_budget_s": a.time_budget_s,
        "init_wall_s": round(init_wall, 3),
        "fit_start": fit_start,
        "fit_end": fit_end,
        "fit_wall_s": round(fit_end - fit_start, 3),
        "process_wall_s": round(time.time() - PROCESS_START, 3),
        "storage_path": storage,
        "best_loss": best.metrics.get("loss") if best and best.metrics else None,
        "trials": trials,
    }
    with open(a.out, "w") as f:
        json.dump(out, f)
    print(
        f"ray_bench: {len(trials)} trials ({sum(t['status'] == 'TERMINATED' for t in trials)} ok), "
        f"fit {out['fit_wall_s']} s, ray.init {out['init_wall_s']} s -> {a.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
