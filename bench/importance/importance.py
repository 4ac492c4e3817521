"""Hyperparameter importance side by side: hpo's (Sobol indices of a GP, `hpo bench importance`)
and Optuna's fANOVA and PED-ANOVA, on the same points of test functions whose Sobol indices are
known exactly (Ishigami, Sobol's G function).

Usage (bench/importance/run.sh sets up the environment):
  python importance.py --hpo PATH [--evaluations 50,100,200] [--seeds 10] [--out DIR]

For each function, number of evaluations and seed, `hpo bench importance -o json` draws the points
(as Random search would), evaluates the function and gives hpo's first-order indices; the same
points and values go into an Optuna study (create_trial with FloatDistributions), whose
get_param_importances(normalize=False) gives fANOVA's individual importances (the first-order
share of a random forest's variance; FanovaImportanceEvaluator) and PED-ANOVA's. The error is the
mean absolute difference from the exact first-order indices, over the inputs; the table shows its
median over seeds, and whether the most important input came out first. PED-ANOVA measures
something else (how the top quantile's density differs), so only its ranking is comparable.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

import optuna
from optuna.importance import FanovaImportanceEvaluator, get_param_importances

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def hpo_run(hpo, function, evaluations, seeds):
    out = subprocess.run([hpo, "bench", "importance", "--function", function, "--evaluations", str(evaluations),
                          "--seeds", str(seeds), "-o", "json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def ped_evaluator():
    """Optuna's PED-ANOVA evaluator class, or None where this Optuna lacks it."""
    try:
        from optuna.importance import PedAnovaImportanceEvaluator
        return PedAnovaImportanceEvaluator
    except ImportError:
        return None


def optuna_importances(names, dists, points, values, evaluator):
    """Importances (not normalised) of a study holding these points, by `evaluator`, and its seconds."""
    study = optuna.create_study(direction="minimize")
    for x, y in zip(points, values):
        study.add_trial(optuna.trial.create_trial(params=dict(zip(names, x)), distributions=dists, value=y))
    t = time.perf_counter()
    imp = get_param_importances(study, evaluator=evaluator, normalize=False)
    return [imp.get(n, 0.0) for n in names], time.perf_counter() - t


def score(res, reference, hpo_first, hpo_seconds, names, dists, points, values, seed, ped):
    """Appends each method's (error or None, top input right, seconds) on one seed's points to
    `res`; returns fANOVA's and PED-ANOVA's estimates (None where Optuna lacks PED-ANOVA)."""
    top = max(range(len(reference)), key=lambda i: reference[i])
    err = lambda est: sum(abs(e - r) for e, r in zip(est, reference)) / len(reference)
    right = lambda est: max(range(len(est)), key=lambda i: est[i]) == top
    res["hpo"].append((err(hpo_first), right(hpo_first), hpo_seconds))
    f, ft = optuna_importances(names, dists, points, values, FanovaImportanceEvaluator(seed=seed))
    res["fanova"].append((err(f), right(f), ft))
    p = None
    if ped is not None:
        p, pt = optuna_importances(names, dists, points, values, ped())
        res["pedanova"].append((None, right(p), pt))
    return f, p


def write_out(out, raw, table, suffix=""):
    """raw{suffix}.json and table{suffix}.md in `out` (nothing without one)."""
    if not out:
        return
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"raw{suffix}.json"), "w") as fh:
        json.dump(raw, fh)
    with open(os.path.join(out, f"table{suffix}.md"), "w") as fh:
        fh.write(table + "\n")


def summarize(res):
    """Per method, from its (error or None, top input right, seconds) per seed: the row's cells."""
    row = {}
    for k, v in res.items():
        if v:
            errs = [e for e, _, _ in v if e is not None]
            row[k] = {"median_error": statistics.median(errs) if errs else None,
                      "top_right": sum(1 for _, r, _ in v if r), "seeds": len(v),
                      "median_seconds": statistics.median(t for _, _, t in v)}
    return row


def markdown_table(rows, first, first_header, hpo_seconds_header="hpo s"):
    """The side-by-side table; `first(row)` is the first column's cell."""
    lines = [f"| {first_header} | training jobs | hpo: first-order error | Optuna fANOVA: error | "
             f"hpo: top input right | fANOVA: top right | PED-ANOVA: top right | {hpo_seconds_header} | fANOVA s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        pa = r.get("pedanova")
        lines.append(f"| {first(r)} | {r['evaluations']} | {r['hpo']['median_error']:.3f} | "
                     f"{r['fanova']['median_error']:.3f} | {r['hpo']['top_right']}/{r['hpo']['seeds']} | "
                     f"{r['fanova']['top_right']}/{r['fanova']['seeds']} | "
                     f"{(str(pa['top_right']) + '/' + str(pa['seeds'])) if pa else 'n/a'} | "
                     f"{r['hpo']['median_seconds']:.3f} | {r['fanova']['median_seconds']:.3f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hpo", required=True)
    ap.add_argument("--evaluations", default="50,100,200")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    ped = ped_evaluator()
    rows, raw = [], []
    for function in ("ishigami", "gfunction"):
        for n in [int(v) for v in a.evaluations.split(",")]:
            h = hpo_run(a.hpo, function, n, a.seeds)
            truth = h["true_first"]
            dists = {n: optuna.distributions.FloatDistribution(lo, hi) for n, (lo, hi) in zip(h["names"], h["box"])}
            res = {"hpo": [], "fanova": [], "pedanova": []}
            for s in h["seeds"]:
                f, p = score(res, truth, s["first"], s["seconds"], h["names"], dists, s["points"], s["values"],
                             s["seed"], ped)
                raw.append({"function": function, "evaluations": n, "seed": s["seed"], "truth": truth,
                            "hpo": s["first"], "fanova": f, "pedanova": p})
            row = {"function": function, "evaluations": n, **summarize(res)}
            rows.append(row)
            print(f"{function} n={n} done", file=sys.stderr)
    table = markdown_table(rows, lambda r: r["function"], "function")
    print(table)
    print(f"\nerror: median over {a.seeds} seeds of the mean |estimate - exact| of the first-order indices; "
          f"optuna {optuna.__version__}")
    write_out(a.out, raw, table)


if __name__ == "__main__":
    main()
