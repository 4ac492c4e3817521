"""Hyperparameter importance on a real model-tuning task: hpo's against Optuna's fANOVA and
PED-ANOVA, scored against the task's own Sobol indices.

The task is bench/quality's svr_diabetes: 5-fold CV RMSE of an RBF SVR on scikit-learn's diabetes
data over C, gamma and epsilon, each log-scaled. Its first-order Sobol indices over the search
space (uniform in each range's log) have no closed form, so they are estimated here from the
objective itself: Saltelli's estimator on two scrambled Sobol designs of N points each (N (k + 2)
fits per design, both cores), cached in svr_truth.json beside this file; the two designs' spread
is shown as the reference's own uncertainty. Then, per number of training jobs and seed:

  * `hpo run` runs a Random tuning job of that many training jobs through real processes (the
    trainer asks this process to evaluate, as in bench/quality), and `hpo describe NAME
    --importance -o json` gives hpo's first-order indices, as a user reads them;
  * the same configurations and RMSEs go into an Optuna study (log-scaled FloatDistributions),
    whose fANOVA and PED-ANOVA importances are read as in importance.py.

Usage (bench/importance/run.sh [BUILD_DIR] --real [-- options] sets up the environment and runs it):
  python real_task.py --hpo PATH [--evaluations 50,100] [--seeds 5] [--truth-n 2048] [--out DIR]
"""
import argparse
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "quality"))
import quality  # noqa: E402
from importance import markdown_table, ped_evaluator, score, summarize, write_out  # noqa: E402

NAMES = [n for n, _, _ in quality.SVR_RANGES]
LOG_BOX = [(math.log(lo), math.log(hi)) for _, lo, hi in quality.SVR_RANGES]
TRUTH = os.path.join(HERE, "svr_truth.json")


def _evaluate(u):
    """The objective at a point of the unit cube (each coordinate a range's log-uniform share)."""
    return quality.svr_objective({n: math.exp(lo + x * (hi - lo)) for n, x, (lo, hi) in zip(NAMES, u, LOG_BOX)})


def saltelli_first(n, seed, pool):
    """First-order and total indices from one scrambled Sobol design of n base points."""
    from scipy.stats import qmc
    k = len(NAMES)
    ab = qmc.Sobol(2 * k, scramble=True, seed=seed).random(n)
    a, b = ab[:, :k], ab[:, k:]
    rows = [list(r) for r in a] + [list(r) for r in b]
    for i in range(k):
        rows += [[b[j][c] if c == i else a[j][c] for c in range(k)] for j in range(n)]
    ys = pool.map(_evaluate, rows, chunksize=64)
    fa, fb = ys[:n], ys[n:2 * n]
    var = statistics.pvariance(fa + fb)
    first, total = [], []
    for i in range(k):
        fab = ys[(2 + i) * n:(3 + i) * n]
        first.append(sum(fb[j] * (fab[j] - fa[j]) for j in range(n)) / n / var)
        total.append(sum((fa[j] - fab[j]) ** 2 for j in range(n)) / (2 * n) / var)
    return first, total


def truth(n, recompute):
    if os.path.exists(TRUTH) and not recompute:
        with open(TRUTH) as f:
            t = json.load(f)
        if t["n"] == n:
            return t
    t0 = time.time()
    quality.svr_objective({m: lo for m, lo, _ in quality.SVR_RANGES})
    with multiprocessing.Pool(os.cpu_count()) as pool:
        designs = [saltelli_first(n, seed, pool) for seed in (1, 2)]
    t = {"task": "svr_diabetes", "names": NAMES, "n": n, "fits": 2 * n * (len(NAMES) + 2),
         "designs": [{"first": f, "total": tt} for f, tt in designs],
         "first": [(designs[0][0][i] + designs[1][0][i]) / 2 for i in range(len(NAMES))],
         "total": [(designs[0][1][i] + designs[1][1][i]) / 2 for i in range(len(NAMES))],
         "seconds": round(time.time() - t0, 1)}
    with open(TRUTH, "w") as f:
        json.dump(t, f, indent=1)
        f.write("\n")
    return t


def hpo_importance(hpo, job):
    out = subprocess.run([hpo, "describe", job["name"], "--state-dir", job["state"], "--importance", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    d = json.loads(out)
    entry = d[0] if isinstance(d, list) else d
    if "HyperParameters" not in entry:
        raise RuntimeError("hpo estimated nothing: " + out[:500])
    by = {h["Name"]: h for h in entry["HyperParameters"]}
    return [by[n]["FirstOrder"] for n in NAMES], entry


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hpo", required=True)
    ap.add_argument("--evaluations", default="50,100")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--truth-n", type=int, default=2048, help="base points of each Saltelli design (svr_truth.json holds 2048)")
    ap.add_argument("--recompute-truth", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    import optuna
    t = truth(a.truth_n, a.recompute_truth)
    ref = t["first"]
    spread = max(abs(t["designs"][0]["first"][i] - t["designs"][1]["first"][i]) for i in range(len(NAMES)))
    print("svr_diabetes first-order indices (reference, %d fits): %s; the two designs differ by at most %.3f" %
          (t["fits"], ", ".join("%s %.3f" % (n, v) for n, v in zip(NAMES, ref)), spread), file=sys.stderr)
    dists = {n: optuna.distributions.FloatDistribution(lo, hi, log=True) for n, lo, hi in quality.SVR_RANGES}
    ped = ped_evaluator()
    rows, raw = [], []
    for n in [int(v) for v in a.evaluations.split(",")]:
        res = {"hpo": [], "fanova": [], "pedanova": []}
        for seed in range(1, a.seeds + 1):
            job = quality.run_hpo_svr_job(a.hpo, 2, seed, n, "Random")
            try:
                t0 = time.perf_counter()
                h, entry = hpo_importance(a.hpo, job)
                ht = time.perf_counter() - t0
            finally:
                subprocess.run(["rm", "-rf", job["tmp"]])
            points = [[p[m] for m in NAMES] for p in job["points"]]
            f, p = score(res, ref, h, ht, NAMES, dists, points, job["values"], seed, ped)
            raw.append({"evaluations": n, "seed": seed, "reference": ref, "hpo": h, "fanova": f, "pedanova": p,
                        "hpo_training_jobs": entry.get("TrainingJobs")})
            print(f"svr_diabetes n={n} seed={seed}: hpo {h}, fANOVA {f}", file=sys.stderr)
        rows.append({"evaluations": n, **summarize(res)})
    table = markdown_table(rows, lambda r: "svr_diabetes", "task", "hpo describe s")
    print(table)
    print(f"\nreference first-order indices ({t['fits']} fits of the real objective, two Saltelli designs "
          f"averaged, differing by at most {spread:.3f}): " + ", ".join(f"{n} {v:.3f}" for n, v in zip(NAMES, ref)))
    print(f"error: median over {a.seeds} seeds of the mean |estimate - reference| of the first-order indices; "
          f"hpo describe s includes the process start; optuna {optuna.__version__}")
    write_out(a.out, raw, table, "-svr")


if __name__ == "__main__":
    main()
