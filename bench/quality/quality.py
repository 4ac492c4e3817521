#!/usr/bin/env python3
"""Side-by-side optimisation quality: hpo's Bayesian strategy vs Optuna TPE, Optuna GP, Random and
Syne Tune's searchers.

Run by bench/quality/run.sh inside bench/.venv-optuna (optuna, scikit-learn, matplotlib from
PyPI). Every method sees the same objective, box and evaluation budget per seed:

  tasks    branin (2-d), hartmann6 (6-d), ackley10 (10-d, [-32.768, 32.768]^10): the exact
           definitions of `hpo bench optimize` (cli/bench_commands.cc), re-implemented below for
           Optuna; svr_diabetes: a real model-tuning task (scikit-learn SVR on its bundled
           diabetes dataset, C / gamma / epsilon on log scales, objective = 5-fold CV RMSE of
           the standardised target, deterministic given the configuration). With --tasks also
           branin_cliff, hartmann6_cliff: those functions with a region that fails (every point
           whose first coordinate lies above 60% / 30% of its range gives no value: a learning
           rate that diverges), where a method must keep away from failures it cannot model.
  methods  hpo-b1 / hpo-b8: hpo's Bayesian strategy, sequential and 8 at a time. Synthetic
           tasks: `hpo bench optimize --curves -o json` (real strategy in-process, synchronous
           batches of 8 in virtual time). svr_diabetes: `hpo run` on a SageMaker request whose
           trainer (trainer.py) asks this driver's evaluation server over a Unix socket, so
           every hpo trial is a real process through a real coordinator and workers
           (b8 = MaxParallelTrainingJobs 8: asynchronous, a new suggestion whenever a slot frees).
           tpe: optuna.samplers.TPESampler(seed) defaults. gp: optuna.samplers.GPSampler(seed)
           (needs torch; reported as not run when torch cannot be imported). random:
           optuna.samplers.RandomSampler(seed).
           syne-<searcher> (syne-botorch, syne-cqr, syne-bore, syne-tpe, syne-rea, syne-random):
           Syne Tune's baseline of that name with its defaults, driven ask/tell in one process
           by syne_peer.py under --syne-python (bench/.venv-syne, which run.sh sets up when a
           syne- method is asked for); syne-botorch-b8 asks 8 before telling any (BOTorch
           fantasises the pending ones), as hpo-b8 does on the synthetic tasks.
  regret   synthetic: best-so-far value - known optimum. svr_diabetes: best-so-far value - the
           best value any method reached in this run (the optimum is unknown).

Output (--out DIR): raw.json (every curve), table.md (median final regret per task and
method, with wall time), regret_<task>.png (median and quartiles of the best-so-far regret).
"""
import argparse
import concurrent.futures as cf
import json
import math
import os
import platform
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- test functions (as in cli/bench_commands.cc) ------------------------------------------------


def branin(x):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


H_ALPHA = [1.0, 1.2, 3.0, 3.2]
H_A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
H_P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
       [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def hartmann6(x):
    s = 0.0
    for i in range(4):
        e = sum(H_A[i][j] * (x[j] - H_P[i][j]) ** 2 for j in range(6))
        s += H_ALPHA[i] * math.exp(-e)
    return -s


def ackley(x):
    d = len(x)
    sq = sum(v * v for v in x)
    cs = sum(math.cos(2 * math.pi * v) for v in x)
    return -20 * math.exp(-0.2 * math.sqrt(sq / d)) - math.exp(cs / d) + 20 + math.e


SYNTHETIC = {
    "branin": dict(fn=branin, box=[(-5, 10), (0, 15)], optimum=0.397887357729738, hpo=["--function", "branin"]),
    "hartmann6": dict(fn=hartmann6, box=[(0.0, 1.0)] * 6, optimum=-3.32236801141551, hpo=["--function", "hartmann6"]),
    "ackley10": dict(fn=ackley, box=[(-32.768, 32.768)] * 10, optimum=0.0,
                     hpo=["--function", "ackley", "--dims", "10"]),
}
# The same functions with a region that fails (a learning rate that diverges): every evaluation
# whose first coordinate lies above `fail_above` of its range fails, with no value (Optuna: a
# FAIL trial; hpo: a Failed training job). Both functions' global minima lie below the cliff.
SYNTHETIC["branin_cliff"] = dict(SYNTHETIC["branin"], fail_above=0.6,
                                 hpo=["--function", "branin", "--fail-above", "0.6"])
SYNTHETIC["hartmann6_cliff"] = dict(SYNTHETIC["hartmann6"], fail_above=0.3,
                                    hpo=["--function", "hartmann6", "--fail-above", "0.3"])


def fails(task, x):
    t = SYNTHETIC[task]
    lo, hi = t["box"][0]
    return "fail_above" in t and x[0] > lo + t["fail_above"] * (hi - lo)

# ---- the real model-tuning task ------------------------------------------------------------------

SVR_RANGES = [("C", 1e-2, 1e2), ("gamma", 1e-4, 1.0), ("epsilon", 1e-3, 1.0)]  # all log-scaled
_SVR_DATA = None


def svr_objective(params):
    """5-fold CV RMSE (standardised target) of an RBF SVR on scikit-learn's diabetes data."""
    global _SVR_DATA
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import KFold
    from sklearn.svm import SVR
    if _SVR_DATA is None:
        X, y = load_diabetes(return_X_y=True)
        X = (X - X.mean(0)) / X.std(0)
        y = (y - y.mean()) / y.std()
        _SVR_DATA = (X, y, list(KFold(5, shuffle=True, random_state=0).split(X)))
    X, y, folds = _SVR_DATA
    se, n = 0.0, 0
    for tr, te in folds:
        m = SVR(C=params["C"], gamma=params["gamma"], epsilon=params["epsilon"]).fit(X[tr], y[tr])
        se += float(((m.predict(X[te]) - y[te]) ** 2).sum())
        n += len(te)
    return math.sqrt(se / n)


# ---- methods -------------------------------------------------------------------------------------


def best_so_far(values):
    out, b = [], math.inf
    for v in values:
        b = min(b, v)
        out.append(b)
    return out


def run_optuna(task, method, seed, evals):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if method == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed)
    elif method == "gp":
        sampler = optuna.samplers.GPSampler(seed=seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    values = []
    if task in SYNTHETIC:
        t = SYNTHETIC[task]

        def objective(trial):
            x = [trial.suggest_float("x%d" % i, lo, hi) for i, (lo, hi) in enumerate(t["box"])]
            return None if fails(task, x) else t["fn"](x)
    else:

        def objective(trial):
            return svr_objective({n: trial.suggest_float(n, lo, hi, log=True) for n, lo, hi in SVR_RANGES})

    for _ in range(evals):
        tr = study.ask()
        v = objective(tr)
        if v is None:  # a failed evaluation (the _cliff tasks)
            study.tell(tr, state=optuna.trial.TrialState.FAIL)
            values.append(math.inf)
            continue
        study.tell(tr, v)
        values.append(v)
    return values


def run_syne(python, task, method, seed, evals):
    """Syne Tune's searcher `method` (syne-NAME or syne-NAME-bB) in its own interpreter: (values,
    longest suggestion in seconds)."""
    name, _, batch = method[len("syne-"):].partition("-b")
    cmd = [python, os.path.join(HERE, "syne_peer.py"), "--task", task, "--method", name, "--seed", str(seed),
           "--evals", str(evals), "--batch", batch or "1"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("syne_peer.py failed (%d): %s" % (r.returncode, r.stderr[-2000:]))
    j = json.loads(r.stdout.strip().splitlines()[-1])
    return j["values"], j["max_suggest_seconds"], j["syne_tune"]


def run_hpo_synthetic(hpo, task, batch, seed, evals):
    cmd = [hpo, "bench", "optimize", *SYNTHETIC[task]["hpo"], "--strategy", "Bayesian", "--evaluations", str(evals),
           "--batch", str(batch), "--seeds", "1", "--first-seed", str(seed), "--device", "cpu", "--curves", "-o", "json"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    j = json.loads(out)
    curve = j["seeds"][0]["curve"]  # best-so-far regret; null while every evaluation has failed
    return ([math.inf if c is None else c + SYNTHETIC[task]["optimum"] for c in curve], j["max_suggest_seconds"],
            j["seeds"][0].get("failed", 0))


class _EvalHandler(socketserver.StreamRequestHandler):
    def handle(self):
        req = json.loads(self.rfile.readline())
        params = {n: float(req[n]) for n, _, _ in SVR_RANGES}
        v = svr_objective(params)
        with self.server.lock:
            self.server.values.append(v)
            self.server.points.append(params)
        self.wfile.write(("%.17g\n" % v).encode())


def run_hpo_real(hpo, batch, seed, evals):
    """`hpo run` on a SageMaker request; the trainer asks this process to evaluate."""
    job = run_hpo_svr_job(hpo, batch, seed, evals, "Bayesian")
    subprocess.run(["rm", "-rf", job["tmp"]])
    return job["values"]


def run_hpo_svr_job(hpo, batch, seed, evals, strategy):
    """`hpo run` of a `strategy` job on svr_diabetes: {name, state, tmp, points, values} (the
    configurations and RMSEs in the order the trainers asked); the caller removes tmp."""
    tmp = tempfile.mkdtemp(prefix="hpo-quality-")
    sock = os.path.join(tmp, "eval.sock")
    server = socketserver.ThreadingUnixStreamServer(sock, _EvalHandler)
    server.values, server.points, server.lock = [], [], threading.Lock()
    th = threading.Thread(target=server.serve_forever, daemon=True)
    th.start()
    svr_objective({n: lo for n, lo, _ in SVR_RANGES})  # load the data before the clock matters
    name = "quality-svr-%s-b%d-s%d" % (strategy.lower(), batch, seed)
    req = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy, "RandomSeed": seed,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "rmse"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": evals, "MaxParallelTrainingJobs": batch},
            "ParameterRanges": {"ContinuousParameterRanges": [
                {"Name": n, "MinValue": repr(lo), "MaxValue": repr(hi), "ScalingType": "Logarithmic"}
                for n, lo, hi in SVR_RANGES]},
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sock": sock},
            "AlgorithmSpecification": {
                "TrainingImage": "file://" + os.path.join(HERE, "trainer.py"), "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "rmse", "Regex": "rmse=([0-9.eE+-]+)"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-quality",
            "OutputDataConfig": {"S3OutputPath": "file://" + os.path.join(tmp, "out")},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }
    spec = os.path.join(tmp, "job.json")
    with open(spec, "w") as f:
        json.dump(req, f)
    workers, slots = (1, 1) if batch == 1 else (2, (batch + 1) // 2)
    state = os.path.join(tmp, "state")
    r = subprocess.run([hpo, "run", spec, "--workers", str(workers), "--slots", str(slots), "--state-dir", state,
                        "-o", "json"], capture_output=True, text=True)
    server.shutdown()
    server.server_close()
    if r.returncode != 0:
        raise RuntimeError("hpo run failed (%d): %s" % (r.returncode, (r.stderr or r.stdout)[-2000:]))
    if len(server.values) != evals:  # the state directory stays, to see which attempts ran twice
        raise RuntimeError("hpo run evaluated %d configurations, expected %d (state kept in %s)"
                           % (len(server.values), evals, tmp))
    return {"name": name, "state": state, "tmp": tmp, "points": list(server.points), "values": list(server.values)}


def work(item):
    task, method, seed, evals, hpo, syne_python, deadline = item
    t0 = time.time()
    extra = {}
    if t0 > deadline:
        return dict(task=task, method=method, seed=seed, skipped="time budget (--budget-minutes) spent", seconds=0.0)
    try:
        if method.startswith("hpo-b"):
            batch = int(method[5:])
            if task in SYNTHETIC:
                values, extra["max_suggest_seconds"], extra["failed"] = run_hpo_synthetic(hpo, task, batch, seed,
                                                                                            evals)
            else:
                values = run_hpo_real(hpo, batch, seed, evals)
        elif method.startswith("syne-"):
            values, extra["max_suggest_seconds"], extra["syne_tune"] = run_syne(syne_python, task, method, seed, evals)
        else:
            values = run_optuna(task, method, seed, evals)
            extra["failed"] = sum(1 for v in values if v == math.inf)
        return dict(task=task, method=method, seed=seed, values=values, seconds=time.time() - t0, **extra)
    except Exception as e:  # recorded, not fatal: the table says which runs failed and why
        return dict(task=task, method=method, seed=seed, error="%s: %s" % (type(e).__name__, e),
                    seconds=time.time() - t0)


def gp_available():
    try:
        import optuna
        import torch  # noqa: F401
        optuna.samplers.GPSampler
        return True, "torch %s" % torch.__version__
    except Exception as e:
        return False, "%s: %s" % (type(e).__name__, e)


def syne_available(python):
    if not os.access(python, os.X_OK):
        return False, "no interpreter %s (bench/quality/run.sh sets up bench/.venv-syne)" % python
    r = subprocess.run([python, "-c", "import syne_tune; print(syne_tune.__version__)"], capture_output=True, text=True)
    if r.returncode != 0:
        return False, "syne_tune is not importable by %s: %s" % (python, r.stderr.strip()[-300:])
    return True, "syne_tune %s" % r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hpo", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--gp-seeds", type=int, default=20, help="seeds for Optuna GP (the slowest method)")
    ap.add_argument("--syne-seeds", type=int, default=20, help="seeds for each syne- method")
    ap.add_argument("--syne-python", default=os.path.join(HERE, "..", ".venv-syne", "bin", "python"),
                    help="the interpreter with syne_tune (and botorch for syne-botorch)")
    ap.add_argument("--real-seeds", type=int, default=20, help="seeds on svr_diabetes")
    ap.add_argument("--first-seed", type=int, default=1,
                    help="seeds run are first-seed, first-seed + 1, ... (a second sample of seeds for an A/B)")
    ap.add_argument("--tasks", default="branin,hartmann6,ackley10,svr_diabetes")
    ap.add_argument("--methods", default="hpo-b1,hpo-b8,tpe,gp,random,syne-botorch",
                    help="also: syne-cqr, syne-bore, syne-tpe, syne-rea, syne-random, syne-botorch-b8")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--budget-minutes", type=float, default=1e9,
                    help="runs not started by then are skipped (and counted in the table)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    tasks, methods = a.tasks.split(","), a.methods.split(",")
    gp_ok, gp_why = gp_available()
    syne = [m for m in methods if m.startswith("syne-")]
    syne_ok, syne_why = syne_available(a.syne_python) if syne else (False, "not asked for")
    if syne and not syne_ok:
        print("Syne Tune methods not run: %s" % syne_why, flush=True)
    items = []
    for task in tasks:
        n = a.real_seeds if task == "svr_diabetes" else a.seeds
        for method in methods:
            if (method == "gp" and not gp_ok) or (method.startswith("syne-") and not syne_ok):
                continue
            if method.startswith("syne-") and "fail_above" in SYNTHETIC.get(task, {}):
                continue  # syne_peer.py has no failing region
            m = min(n, a.gp_seeds) if method == "gp" else min(n, a.syne_seeds) if method.startswith("syne-") else n
            items += [(task, method, s, a.evals, a.hpo, a.syne_python) for s in range(a.first_seed, a.first_seed + m)]
    # Seed by seed (so a spent time budget cuts seeds evenly across methods), the GP peers (Optuna
    # GP: about 30-100 s per 100-evaluation run here; Syne Tune's BOTorch) after all the others, so
    # the budget cuts their seeds first.
    items.sort(key=lambda it: (it[1] in ("gp",) or it[1].startswith("syne-botorch"), it[2], it[0] != "svr_diabetes"))
    t0 = time.time()
    items = [it + (t0 + 60 * a.budget_minutes,) for it in items]
    results = []
    with cf.ProcessPoolExecutor(a.jobs) as ex:
        for fut in cf.as_completed([ex.submit(work, it) for it in items]):
            r = fut.result()
            results.append(r)
            status = ("error " + r["error"] if "error" in r else "skipped" if "skipped" in r
                      else "best %.6g" % min(r["values"]))
            print("[%6.0fs] %-13s %-7s seed %2d %s (%.1f s)" % (
                time.time() - t0, r["task"], r["method"], r["seed"], status, r["seconds"]), flush=True)
    wall = time.time() - t0
    # Reference optimum of the real task: the best value seen by anyone in this run.
    ref = {t: SYNTHETIC[t]["optimum"] for t in SYNTHETIC}
    real = [min(r["values"]) for r in results if r["task"] == "svr_diabetes" and "values" in r]
    if real:
        ref["svr_diabetes"] = min(real)
    for r in results:
        if "values" in r:
            r["regret_curve"] = [v - ref[r["task"]] for v in best_so_far(r["values"])]
    meta = dict(evals=a.evals, seeds=a.seeds, gp_seeds=a.gp_seeds if gp_ok else 0, real_seeds=a.real_seeds,
                gp=("ran (%s)" % gp_why) if gp_ok else ("not run: %s" % gp_why), wall_seconds=wall,
                syne=("ran (%s)" % syne_why) if syne_ok else ("not run: %s" % syne_why), syne_seeds=a.syne_seeds,
                reference=ref, python=sys.version.split()[0], machine=platform.machine())
    try:
        import optuna
        import sklearn
        meta["optuna"], meta["sklearn"] = optuna.__version__, sklearn.__version__
    except Exception:
        pass
    with open(os.path.join(a.out, "raw.json"), "w") as f:
        json.dump(dict(meta=meta, results=results), f)
    table = make_table(results, tasks, methods, meta)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(table)
    print(table)
    plot(results, tasks, methods, a.out)


def med(xs):
    return float(np.median(xs)) if xs else float("nan")


def make_table(results, tasks, methods, meta):
    def fmt(v):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else "%.3g" % v

    lines = ["| task | " + " | ".join(methods) + " | goals: < TPE, <= GP, b8 <= 1.5x b1 |",
             "| --- | " + " | ".join("---:" for _ in methods) + " | --- |"]
    for task in tasks:
        cells, finals = [], {}
        for m in methods:
            rs = [r for r in results if r["task"] == task and r["method"] == m]
            ok = [r["regret_curve"][-1] for r in rs if "regret_curve" in r]
            err = [r for r in rs if "error" in r]
            skipped = [r for r in rs if "skipped" in r]
            finals[m] = med(ok) if ok else None
            c = "%s (n=%d)" % (fmt(finals[m]), len(ok)) if ok else "not run"
            if err:
                c += ", %d failed" % len(err)
            if skipped:
                c += ", %d skipped (time)" % len(skipped)
            cells.append(c)
        goals = []
        b1, b8, tpe, gp = (finals.get(k) for k in ("hpo-b1", "hpo-b8", "tpe", "gp"))
        if b1 is not None and tpe is not None:
            goals.append("< TPE: %s" % ("yes" if b1 < tpe else "NO"))
        if b1 is not None and gp is not None:
            goals.append("<= GP: %s" % ("yes" if b1 <= gp else "NO"))
        syne_gp = finals.get("syne-botorch")
        if b1 is not None and syne_gp is not None:  # not one of issue 5's goals: the other GP peer
            goals.append("<= Syne BOTorch: %s" % ("yes" if b1 <= syne_gp else "NO"))
        if b1 is not None and b8 is not None:
            goals.append("b8/b1 = %s: %s" % (fmt(b8 / b1) if b1 > 0 else ("1" if b8 == 0 else "inf"),
                                             "yes" if b8 <= 1.5 * b1 else "NO"))
        lines.append("| %s | %s | %s |" % (task, " | ".join(cells), "; ".join(goals)))
    lines.append("")
    lines.append("Median simple regret after %d evaluations (n = seeds). Wall seconds per run (median): %s." % (
        meta["evals"], ", ".join("%s %s" % (m, fmt(med([r["seconds"] for r in results
                                                          if r["method"] == m and "values" in r])))
                                 for m in methods)))
    ms = [r.get("max_suggest_seconds", 0) for r in results if r["method"].startswith("hpo-b")]
    lines.append("Run wall time: %.0f s." % meta["wall_seconds"])
    if ms:
        lines.append("hpo's longest single suggestion (synthetic tasks): %.3f s." % max(ms))
    if "gp" in methods:
        lines.append("Optuna GP: %s." % meta["gp"])
    for m in methods:
        ss = [r["max_suggest_seconds"] for r in results if r["method"] == m and m.startswith("syne-") and "values" in r]
        if ss:
            lines.append("%s's longest single suggestion: %.3f s." % (m, max(ss)))
    if any(m.startswith("syne-") for m in methods):
        lines.append("Syne Tune: %s." % meta["syne"])
    if "svr_diabetes" in tasks:
        lines.append("svr_diabetes regret is relative to the best RMSE any method reached in this run (%.6g)." %
                     meta["reference"].get("svr_diabetes", float("nan")))
    cliffs = [t for t in tasks if "fail_above" in SYNTHETIC.get(t, {})]
    for t in cliffs:
        counts = ["%s %s" % (m, fmt(med([r["failed"] for r in results if r["task"] == t and r["method"] == m
                                         and "failed" in r]))) for m in methods]
        lines.append("%s: failed evaluations of %d, median per run: %s." % (t, meta["evals"], ", ".join(counts)))
    return "\n".join(lines) + "\n"


def plot(results, tasks, methods, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for task in tasks:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for m in methods:
            cs = [r["regret_curve"] for r in results if r["task"] == task and r["method"] == m and "regret_curve" in r]
            if not cs:
                continue
            arr = np.maximum(np.array(cs), 1e-9)
            x = np.arange(1, arr.shape[1] + 1)
            q25, q50, q75 = np.percentile(arr, [25, 50, 75], axis=0)
            ax.plot(x, q50, label="%s (n=%d)" % (m, len(cs)))
            ax.fill_between(x, q25, q75, alpha=0.15)
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_ylabel("simple regret (median, IQR)")
        ax.set_title(task)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, "regret_%s.png" % task), dpi=110)
        plt.close(fig)


if __name__ == "__main__":
    main()
