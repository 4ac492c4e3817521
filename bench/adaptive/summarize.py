#!/usr/bin/env python3
"""Rows and tables for the adaptive tuning benchmark (bench/adaptive/run.sh). Standard library only.

  summarize.py hpo DB DESCRIBE_JSON --config C --seed S --wall W   one JSON row (stdout) for an
      `hpo run` state dir's database (DB = STATE/hpo.db) and its `-o json` output:
      trials, stopped (ended Stopped), failed, epochs (objective emissions stored, every trial and
      attempt), train_s (sum over trials of end_ms - start_ms: from the trial's "Training" status,
      i.e. its process was started, to its exit being recorded), best (BestTrainingJob's final
      objective), best_config
  summarize.py configs DB OUT_JSON      the tuned hyperparameters of every trial, in index order
  summarize.py table ROWS_JSONL [--tolerance T] [--epochs E] [--noise N] [--noise-seed S]
      the markdown tables: the mean over seeds per system/config, then every seed's row

Regret of a row = its best - the best of hpo's random-off (no early stopping) run with the same
seed. "loss@E of best" is what the best configuration reaches when trained for all E epochs
(curve.py, noise included), i.e. what the user gets from the configuration the job picked: for a
stopped trial the job's objective is its last value, which is not that.
"""
import argparse
import json
import os
import sqlite3
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from curve import Curve  # noqa: E402


def hpo_row(a):
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    trials = db.execute("select name, state, start_ms, end_ms, detail_json from trials").fetchall()
    objective = "loss"
    epochs = db.execute("select count(*) from metrics where name = ?", (objective,)).fetchone()[0]
    train_s = sum((end - start) / 1000.0 for _, _, start, end, _ in trials if end > 0 and start > 0)
    best, best_config = None, None
    with open(a.describe) as f:
        text = f.read()
    # `hpo run -o json` with the Bayesian or Hyperband strategy prints a log line ("[info] Bayesian
    # strategy: ...") on stdout before the JSON: take the document from its first line that is "{".
    start = 0 if text.startswith("{") else text.find("\n{") + 1
    d = json.loads(text[start:])
    bt = d.get("BestTrainingJob") or {}
    if bt:
        best = bt["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        best_config = bt["TunedHyperParameters"]
    states = [s for _, s, _, _, _ in trials]
    return {
        "system": "hpo",
        "config": a.config,
        "seed": a.seed,
        "trials": len(trials),
        "stopped": states.count("Stopped"),
        "failed": states.count("Failed"),
        "epochs": epochs,
        "train_s": round(train_s, 3),
        "best": best,
        "best_config": best_config,
        "wall_s": a.wall,
        "status": d.get("HyperParameterTuningJobStatus"),
        "note": "",
    }


def configs(a):
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    rows = db.execute("select detail_json from trials order by idx").fetchall()
    out = [json.loads(r[0])["tuned"] for r in rows]
    with open(a.out, "w") as f:
        json.dump(out, f)


def fmt(v, spec=".4f"):
    return "-" if v is None else format(v, spec)


def table(a):
    rows = [json.loads(line) for line in open(a.rows) if line.strip()]
    skipped = [r for r in rows if r.get("skipped")]
    rows = [r for r in rows if not r.get("skipped")]
    base = {r["seed"]: r for r in rows if r["system"] == "hpo" and r["config"] == "random-off"}
    for r in rows:
        b = base.get(r["seed"])
        r["regret"] = r["best"] - b["best"] if b and b["best"] is not None and r["best"] is not None else None
        r["epochs_vs_off"] = r["epochs"] / b["epochs"] if b and b["epochs"] else None
        r["train_vs_off"] = r["train_s"] / b["train_s"] if b and b["train_s"] else None
        c = r.get("best_config")
        r["loss_at_end"] = Curve(c["lr"], c["momentum"], c["layers"], a.noise, a.noise_seed).loss(a.epochs) if c else None
    groups = {}
    for r in rows:
        groups.setdefault((r["system"], r["config"]), []).append(r)

    def mean(rs, k):
        vs = [r[k] for r in rs if r.get(k) is not None]
        return statistics.fmean(vs) if vs else None

    out = []
    out.append(f"Mean over seeds. Regret = best - best of hpo random-off with the same seed; tolerance "
               f"{a.tolerance}; \"within tol.\" counts the seeds with regret <= tolerance. Epochs and training "
               f"seconds are totals over all trials of one run.")
    out.append("")
    out.append("| system | config | seeds | trials | stopped early | epochs run | epochs vs Off | training s | "
               "training s vs Off | best objective | regret mean / max | within tol. | loss@%d of best | wall s |"
               % a.epochs)
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (system, config), rs in groups.items():
        regrets = [r["regret"] for r in rs if r["regret"] is not None]
        within = f"{sum(x <= a.tolerance for x in regrets)}/{len(regrets)}" if regrets else "-"
        out.append(
            f"| {system} | {config} | {len(rs)} | {fmt(mean(rs, 'trials'), '.0f')} | {fmt(mean(rs, 'stopped'), '.1f')} | "
            f"{fmt(mean(rs, 'epochs'), '.0f')} | {fmt(mean(rs, 'epochs_vs_off'), '.0%')} | "
            f"{fmt(mean(rs, 'train_s'), '.1f')} | {fmt(mean(rs, 'train_vs_off'), '.0%')} | {fmt(mean(rs, 'best'))} | "
            f"{fmt(statistics.fmean(regrets) if regrets else None)} / {fmt(max(regrets) if regrets else None)} | "
            f"{within} | {fmt(mean(rs, 'loss_at_end'))} | {fmt(mean(rs, 'wall_s'), '.1f')} |")
    out.append("")
    out.append("Every run:")
    out.append("")
    out.append("| seed | system | config | trials | stopped | epochs | training s | best | regret | loss@%d of best | "
               "best configuration | wall s | note |" % a.epochs)
    out.append("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in sorted(rows, key=lambda r: r["seed"]):
        c = r.get("best_config")
        cs = ("lr=%.4g momentum=%.3f layers=%d" % (float(c["lr"]), float(c["momentum"]), int(float(c["layers"])))
              if c else "-")
        note = r.get("note", "")
        if r.get("failed"):
            note = (note + "; " if note else "") + f"{r['failed']} failed"
        if r.get("status") and r["status"] != "Completed":
            note = (note + "; " if note else "") + f"job {r['status']}"
        out.append(f"| {r['seed']} | {r['system']} | {r['config']} | {r['trials']} | {r['stopped']} | {r['epochs']} | "
                   f"{r['train_s']:.1f} | {fmt(r['best'])} | {fmt(r['regret'])} | {fmt(r['loss_at_end'])} | {cs} | "
                   f"{fmt(r['wall_s'], '.1f')} | {note} |")
    for s in skipped:
        out.append("")
        out.append(f"{s['system']} {s['config']} skipped: {s['skipped']}")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hpo")
    h.add_argument("db")
    h.add_argument("describe")
    h.add_argument("--config", required=True)
    h.add_argument("--seed", type=int, required=True)
    h.add_argument("--wall", type=float, required=True)
    c = sub.add_parser("configs")
    c.add_argument("db")
    c.add_argument("out")
    t = sub.add_parser("table")
    t.add_argument("rows")
    t.add_argument("--tolerance", type=float, default=0.01)
    t.add_argument("--epochs", type=int, default=27)
    t.add_argument("--noise", type=float, default=0.01)
    t.add_argument("--noise-seed", type=int, default=0)
    a = ap.parse_args()
    if a.cmd == "hpo":
        print(json.dumps(hpo_row(a)))
    elif a.cmd == "configs":
        configs(a)
    else:
        table(a)


if __name__ == "__main__":
    main()
