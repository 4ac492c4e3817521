#!/usr/bin/env python3
"""Syne Tune's searchers on the quality benchmark's tasks (bench/quality/quality.py runs this once
per task, method and seed, with bench/.venv-syne's interpreter, and reads one JSON line).

  python syne_peer.py --task branin|hartmann6|ackley10|svr_diabetes \
      --method botorch|cqr|bore|tpe|rea|random --seed S --evals E [--batch B]

Each searcher is Syne Tune's own baseline (syne_tune.optimizer.baselines) with its defaults,
driven by its AskTellScheduler in this process: the objective is evaluated here, in the order
asked, so there are no trial processes and no backend polling in the numbers. With --batch B
(B > 1) it asks B configurations before telling any of their values, the synchronous batches of
`hpo bench optimize --batch B`; a searcher that models pending trials (BOTorch registers each
configuration it suggests as pending until told, and fantasises it) sees the batch's others so. The tasks, boxes and log scales are quality.py's, imported from it.

Prints {"values": [...], "seconds": S, "max_suggest_seconds": S, "syne_tune": VERSION}.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from quality import SVR_RANGES, SYNTHETIC, svr_objective  # noqa: E402

METHODS = ("botorch", "cqr", "bore", "tpe", "rea", "random")


def space_and_objective(task):
    from syne_tune.config_space import loguniform, uniform
    if task in SYNTHETIC:
        t = SYNTHETIC[task]
        space = {"x%d" % i: uniform(lo, hi) for i, (lo, hi) in enumerate(t["box"])}
        return space, lambda c: t["fn"]([c["x%d" % i] for i in range(len(t["box"]))])
    if task == "svr_diabetes":
        space = {n: loguniform(lo, hi) for n, lo, hi in SVR_RANGES}
        return space, lambda c: svr_objective({n: float(c[n]) for n, _, _ in SVR_RANGES})
    raise SystemExit("unknown task %r (branin, hartmann6, ackley10, svr_diabetes)" % task)


def make_scheduler(method, space, seed):
    from syne_tune.optimizer import baselines
    cls = {"botorch": baselines.BOTorch, "cqr": baselines.CQR, "bore": baselines.BORE, "tpe": baselines.TPE,
           "rea": baselines.REA, "random": baselines.RandomSearch}[method]
    return cls(space, metric="y", do_minimize=True, random_seed=seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", required=True)
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    import syne_tune
    from syne_tune.optimizer.schedulers.ask_tell_scheduler import AskTellScheduler
    space, objective = space_and_objective(a.task)
    if a.task == "svr_diabetes":
        svr_objective({n: lo for n, lo, _ in SVR_RANGES})  # load the data before the clock starts
    sched = AskTellScheduler(make_scheduler(a.method, space, a.seed))
    values, slowest = [], 0.0
    t0 = time.time()
    while len(values) < a.evals:
        asked = []
        for _ in range(min(a.batch, a.evals - len(values))):
            s = time.time()
            trial = sched.ask()
            slowest = max(slowest, time.time() - s)
            asked.append(trial)
        for trial in asked:
            v = float(objective(trial.config))
            sched.tell(trial, {"y": v})
            values.append(v)
    print(json.dumps({"values": values, "seconds": time.time() - t0, "max_suggest_seconds": slowest,
                      "syne_tune": syne_tune.__version__}))


if __name__ == "__main__":
    main()
