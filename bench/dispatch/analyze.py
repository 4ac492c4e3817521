#!/usr/bin/env python3
"""Computes the dispatch-overhead numbers of one benchmark run (stdlib only).

  analyze.py hpo STATE_DIR/hpo.db --slots 16 --duration-ms 200 [--label 4x4] [--process-wall-s S]
  analyze.py ray RAY_TRIALS.json --slots 16 --duration-ms 200
  analyze.py syne SYNE_TRIALS.json --slots 16 --duration-ms 200   (syne_bench.py's output, same format)
  analyze.py table SUMMARY.json...      (markdown side-by-side table of the summaries)
  analyze.py details SUMMARY.json...    (one bullet per summary with the numbers behind its row)

Prints one JSON object: wall_s, ideal_s (= trials x duration / slots), overhead_pct, and the gaps
from one trial's exit to the next trial's start on the same slot (p50/p99 ms), plus breakdowns.

Slots. Neither system records which slot ran a trial, so slots are reconstructed by greedy
interval assignment: within a group of S slots (one hpo worker; for Ray the one node with its 16
logical CPUs; for Syne Tune its n_workers on this machine), trials are taken in start order and each goes to the free slot that was freed
earliest (a slot is free when its last trial's end <= this trial's start). The next trial on a
slot then gives one gap. Slots left idle at the end of the job give no gap.

Gap definition used for the table (the same on both sides): user-code exit to user-code start,
i.e. the timestamp the trial program / trainable function takes just before it ends, to the
timestamp the next one takes first thing on that slot.
  hpo: the bench_end_ms / bench_start_ms metric lines printed by sleep_trainer (metrics table).
  Ray: time.time() at the top and the bottom of the function trainable (reported metrics).
  Syne Tune: time.time() around the sleep of syne_trial.py (after its imports), or sleep_trainer's
  own bench_start_ms / bench_end_ms under syne_trial.sh (reported metrics).
hpo's coordinator timestamps give the breakdown of that gap:
  exit report  = trials.end_ms (coordinator received TrialExited) - bench_end_ms(prev)
  schedule     = trials.creation_ms of the next trial (= its Assigned event) - end_ms(prev)
  launch       = bench_start_ms(next) - creation_ms(next)  (AssignTrial on the wire, trial
                 directory laid out, fork/exec, libc loaded, main() running)
For hpo the pairing follows the coordinator's view: a slot is freed when the coordinator receives
TrialExited (end_ms) and taken when the trial is assigned (creation_ms) or, for a trial assigned
ahead (its assignment came before its predecessor's exit; the worker started it when that one's
program ended), when it started; grouped per worker. Gaps of trials assigned ahead are counted
apart: there the whole gap is the worker's (program end noticed -> next program's main()).
"""
import argparse
import json
import math
import sqlite3
import sys
from collections import defaultdict


def pct(values, q):
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(1, math.ceil(q / 100.0 * len(s)))
    return s[k - 1]


def stats(values):
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), 2),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values),
    }


def pair_slots(items, slots, start, end):
    """Greedy FIFO slot reconstruction. items: trials of one group; start/end: key functions.
    Returns (pairs [(prev, next)], overlaps) where overlaps counts trials that found no free slot
    (more than `slots` trials at once by these timestamps; they take the slot freed earliest)."""
    free_at = []  # per slot: the end of its last trial
    last = []     # per slot: its last trial
    pairs, overlaps = [], 0
    for it in sorted(items, key=lambda it: (start(it), str(it.get("name", it.get("trial_id"))))):
        s = start(it)
        if len(free_at) < slots:
            free_at.append(end(it))
            last.append(it)
            continue
        cands = [i for i, e in enumerate(free_at) if e <= s]
        if not cands:
            overlaps += 1
            cands = list(range(len(free_at)))
        i = min(cands, key=lambda k: free_at[k])
        pairs.append((last[i], it))
        free_at[i] = end(it)
        last[i] = it
    return pairs, overlaps


def max_concurrent(intervals):
    """Most intervals (start, end) open at one instant."""
    ev = sorted([(st, 1) for st, _ in intervals] + [(en, -1) for _, en in intervals])
    cur = best = 0
    for _, k in ev:
        cur += k
        best = max(best, cur)
    return best


def summarize(system, label, n, slots, duration_ms, wall_s, gaps, extra):
    ideal = n * duration_ms / 1000.0 / slots
    out = {
        "system": system,
        "label": label,
        "trials": n,
        "slots": slots,
        "wall_s": round(wall_s, 3),
        "ideal_s": round(ideal, 3),
        "overhead_pct": round((wall_s - ideal) / ideal * 100.0, 1),
        "gap_p50_ms": pct(gaps, 50),
        "gap_p99_ms": pct(gaps, 99),
        "gap_n": len(gaps),
    }
    out.update(extra)
    return out


def analyze_hpo(a):
    db = sqlite3.connect(f"file:{a.path}?mode=ro", uri=True)
    job = db.execute("SELECT name, status, creation_ms, end_ms FROM jobs ORDER BY creation_ms DESC LIMIT 1").fetchone()
    if not job:
        sys.exit(f"analyze: no job in {a.path}")
    name, status, job_start, job_end = job
    trials = {}
    for row in db.execute(
        "SELECT name, worker_id, state, attempt, creation_ms, start_ms, end_ms FROM trials WHERE tuning_job=?",
        (name,),
    ):
        t = dict(zip(("name", "worker", "state", "attempt", "assign", "started", "end"), row))
        trials[t["name"]] = t
    for trial, metric, value in db.execute(
        "SELECT trial, name, value FROM metrics WHERE name IN ('bench_start_ms','bench_end_ms')"
    ):
        if trial in trials:
            trials[trial][metric] = value
    events = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
    # Assign times from the Assigned events too (they equal creation_ms for first attempts).
    assigned = defaultdict(list)
    for ts, trial in db.execute("SELECT ts_ms, trial FROM events WHERE kind='Assigned'"):
        assigned[trial].append(ts)

    ts = list(trials.values())
    complete = [t for t in ts if "bench_start_ms" in t and "bench_end_ms" in t and t["end"]]
    by_worker = defaultdict(list)
    for t in complete:
        by_worker[t["worker"]].append(t)
    per_worker_slots = a.slots // max(1, len(by_worker)) if a.slots_per_worker is None else a.slots_per_worker
    gaps, exit_report, schedule, launch, coord_gap, started_report = [], [], [], [], [], []
    ahead_gaps = []
    overlaps = 0
    for w, items in by_worker.items():
        pairs, ov = pair_slots(items, per_worker_slots, start=lambda t: max(t["assign"], min(t["started"], t["end"])),
                               end=lambda t: t["end"])
        overlaps += ov
        for p, n in pairs:
            gaps.append(n["bench_start_ms"] - p["bench_end_ms"])
            coord_gap.append(n["started"] - p["end"])
            if n["assign"] < p["end"]:  # assigned ahead: started by the worker on its own
                ahead_gaps.append(n["bench_start_ms"] - p["bench_end_ms"])
                continue
            exit_report.append(p["end"] - p["bench_end_ms"])
            schedule.append(n["assign"] - p["end"])
            launch.append(n["bench_start_ms"] - n["assign"])
    for t in complete:
        started_report.append(t["started"] - t["bench_start_ms"])
    user = [t["bench_end_ms"] - t["bench_start_ms"] for t in complete]
    span = [t["end"] - t["started"] for t in complete]
    first_start = min(t["bench_start_ms"] for t in complete)
    last_end = max(t["bench_end_ms"] for t in complete)
    wall_s = (job_end - job_start) / 1000.0
    extra = {
        "job_status": status,
        "completed": sum(1 for t in ts if t["state"] == "Completed"),
        "retried_attempts": sum(1 for t in ts if t["attempt"] > 1),
        "workers": len(by_worker),
        "slots_per_worker": per_worker_slots,
        "wall_definition": "jobs.end_ms - jobs.creation_ms (submit to Completed, coordinator clock)",
        "process_wall_s": a.process_wall_s,
        "makespan_s": round((last_end - first_start) / 1000.0, 3),
        "first_start_after_submit_ms": first_start - job_start,
        "job_end_after_last_exit_ms": job_end - last_end,
        "user_duration_ms": stats(user),
        "slot_utilization_pct": round(sum(user) / (a.slots * wall_s * 1000.0) * 100.0, 1),
        "gap_ms": stats(gaps),
        "gap_breakdown_ms": {
            "exit_report (bench_end -> coordinator got TrialExited)": stats(exit_report),
            "schedule (TrialExited received -> next Assigned)": stats(schedule),
            "launch (Assigned -> next bench_start)": stats(launch),
        },
        "assigned_ahead_gaps": len(ahead_gaps),
        "assigned_ahead_gap_ms (worker-local: program end -> next program start)": stats(ahead_gaps),
        "coordinator_gap_ms (end_ms -> next start_ms)": stats(coord_gap),
        "started_report_ms (bench_start -> coordinator got TrialStarted)": stats(started_report),
        "coordinator_span_ms (start_ms -> end_ms)": stats(span),
        "max_concurrent_bodies": max_concurrent([(t["bench_start_ms"], t["bench_end_ms"]) for t in complete]),
        "slot_overlaps": overlaps,
        "events": events,
        "multi_assigned": sum(1 for v in assigned.values() if len(v) > 1),
    }
    return summarize("hpo", a.label, len(ts), a.slots, a.duration_ms, wall_s, gaps, extra)


def analyze_ray(a, system="ray"):
    """Ray Tune's run (ray_bench.py), or Syne Tune's (syne_bench.py) in the same format."""
    with open(a.path) as f:
        run = json.load(f)
    trials = [t for t in run["trials"] if t.get("t_start") is not None and t.get("t_end") is not None]
    for t in trials:
        t["s_ms"] = t["t_start"] * 1000.0
        t["e_ms"] = t["t_end"] * 1000.0
    pairs, overlaps = pair_slots(trials, a.slots, start=lambda t: t["s_ms"], end=lambda t: t["e_ms"])
    gaps = [round(n["s_ms"] - p["e_ms"], 1) for p, n in pairs]
    user = [t["e_ms"] - t["s_ms"] for t in trials]
    first_start = min(t["s_ms"] for t in trials)
    last_end = max(t["e_ms"] for t in trials)
    wall_s = run["fit_wall_s"]
    pids = {t.get("pid") for t in trials}
    # Per process: with reuse_actors a process runs many trials back to back; its gaps are the
    # warm-path transition between two trials on one actor.
    by_pid = defaultdict(list)
    for t in trials:
        by_pid[t.get("pid")].append(t)
    pid_gaps = []
    for items in by_pid.values():
        items.sort(key=lambda t: t["s_ms"])
        pid_gaps += [round(n["s_ms"] - p["e_ms"], 1) for p, n in zip(items, items[1:])]
    versions = ({"syne_version": run.get("syne_version"), "syne_sleep_time": run.get("sleep_time")}
                if system == "syne" else {"ray_version": run.get("ray_version"), "reuse_actors": run.get("reuse_actors"),
                                          "ray_init_s": run.get("init_wall_s")})
    extra = {
        **versions,
        "trial_kind": run.get("trial_kind"),
        "completed": sum(1 for t in run["trials"] if t.get("status") == "TERMINATED"),
        "errored": sum(1 for t in run["trials"] if t.get("status") == "ERROR"),
        "wall_definition": ("Tuner.run()" if system == "syne" else
                            "Tuner.fit() (ray.init excluded; it is reported separately)"),
        "process_wall_s": run.get("process_wall_s"),
        "makespan_s": round((last_end - first_start) / 1000.0, 3),
        "first_start_after_fit_ms": round(first_start - run["fit_start"] * 1000.0, 1),
        "fit_end_after_last_exit_ms": round(run["fit_end"] * 1000.0 - last_end, 1),
        "user_duration_ms": stats([round(u, 1) for u in user]),
        "slot_utilization_pct": round(sum(user) / (a.slots * wall_s * 1000.0) * 100.0, 1),
        "gap_ms": stats(gaps),
        "distinct_trial_pids": len(pids),
        "max_concurrent_bodies": max_concurrent([(t["s_ms"], t["e_ms"]) for t in trials]),
        "same_process_gap_ms": stats(pid_gaps),
        "slot_overlaps": overlaps,
    }
    extra["trials_requested"] = run.get("trials_requested", len(run["trials"]))
    extra["time_budget_s"] = run.get("time_budget_s")
    extra["stopped_by_time_budget"] = len(trials) < extra["trials_requested"]
    # trials = the ones that finished (with both timestamps); the ideal is computed for those.
    return summarize(system, a.label, len(trials), a.slots, a.duration_ms, wall_s, gaps, extra)


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def table(paths):
    """Markdown side-by-side table of summaries written by the hpo/ray subcommands."""
    rows = [json.load(open(p)) for p in paths]
    head = ["system", "config", "trials completed", "slots", "wall s", "ideal s", "overhead %",
            "p50 gap ms", "p99 gap ms", "load avg (1 min) before"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        requested = r.get("trials_requested") or r["trials"]
        done = f"{r.get('completed', r['trials'])} of {requested}"
        if r.get("stopped_by_time_budget"):
            done += f" (stopped by time budget {fmt(r.get('time_budget_s'), 0)} s)"
        name = {"hpo": "hpo", "syne": "Syne Tune " + str(r.get("syne_version", ""))}.get(
            r["system"], "Ray Tune " + str(r.get("ray_version", "")))
        load = (r.get("loadavg_before") or "-").split()[0]
        cells = [name, r.get("label", ""), done, str(r["slots"]), fmt(r["wall_s"], 2), fmt(r["ideal_s"], 2),
                 fmt(r["overhead_pct"]), fmt(r["gap_p50_ms"]), fmt(r["gap_p99_ms"]), load]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def details(paths):
    """One bullet per summary with the numbers behind the table row."""
    out = []
    for p in paths:
        d = json.load(open(p))
        g = d["gap_ms"]
        line = (f"- {d['system']} {d['label']}: {d['trials']} trials, wall {d['wall_s']} s "
                f"(process {d.get('process_wall_s')} s), makespan first start -> last exit {d['makespan_s']} s, "
                f"slot utilization {d['slot_utilization_pct']} %, at most {d.get('max_concurrent_bodies')} trial "
                f"bodies at once, trial body p50 {d['user_duration_ms']['p50']} ms; "
                f"gaps n={g['n']} mean {g.get('mean')} p90 {g.get('p90')} max {g.get('max')} ms; "
                f"load average {d.get('loadavg_before')} -> {d.get('loadavg_after')}")
        if d["system"] == "hpo":
            b = d["gap_breakdown_ms"]
            parts = "; ".join(f"{k.split(' (')[0]} p50 {v.get('p50')} / p99 {v.get('p99')}" for k, v in b.items())
            cg = d["coordinator_gap_ms (end_ms -> next start_ms)"]
            n_ahead = d.get("assigned_ahead_gaps", 0)
            if n_ahead:
                ag = d["assigned_ahead_gap_ms (worker-local: program end -> next program start)"]
                line += (f"\n  - {n_ahead} of {g['n']} gaps had the next trial assigned ahead (started by the worker "
                         f"when the slot freed): gap p50 {ag.get('p50')} / p99 {ag.get('p99')} ms")
            if b and any(v.get("n") for v in b.values()):
                line += f"\n  - gap breakdown of the other gaps (ms): {parts}"
            line += f"\n  - coordinator-clock gap (end_ms -> next start_ms) p50 {cg.get('p50')} / p99 {cg.get('p99')}"
            if "cpu_s" in d:
                line += (f"\n  - CPU {d['cpu_s']['user']} s user + {d['cpu_s']['sys']} s sys "
                         f"({d['cpu_s']['per_trial_ms']} ms/trial, trial processes included), max RSS {d['max_rss_mb']} MB")
            if d.get("fsync_probe_ms_p50_p90"):
                line += f"; fdatasync in the state dir just before the run: p50/p90 {d['fsync_probe_ms_p50_p90']} ms"
            line += (f"; first trial started {d['first_start_after_submit_ms']} ms after submit; "
                     f"{d['completed']} completed, {d['retried_attempts']} retried")
        elif d["system"] == "syne":
            line += (f"\n  - Tuner(sleep_time={d.get('syne_sleep_time')}); first trial body started "
                     f"{d['first_start_after_fit_ms']} ms after run(); {d['completed']} finished; "
                     f"{d['distinct_trial_pids']} distinct trial processes")
            if d.get("stopped_by_time_budget"):
                line += (f"\n  - **stopped by the time budget of {d['time_budget_s']} s**: {d['trials']} of "
                         f"{d['trials_requested']} trials finished; ideal and overhead are for the {d['trials']} that did")
        else:
            line += (f"\n  - ray.init {d['ray_init_s']} s (not in wall); first trial body started "
                     f"{d['first_start_after_fit_ms']} ms after fit(); {d['completed']} finished, {d['errored']} errored; "
                     f"{d['distinct_trial_pids']} distinct trial processes")
            sp = d.get("same_process_gap_ms") or {}
            if sp.get("n"):
                line += (f"; gap between consecutive trials in the same process (warm actor) p50 {sp['p50']} / "
                         f"p99 {sp['p99']} ms (n={sp['n']})")
            if d.get("stopped_by_time_budget"):
                line += (f"\n  - **stopped by Tune's time_budget_s={d['time_budget_s']}**: {d['trials']} of "
                         f"{d['trials_requested']} trials finished; ideal and overhead are for the {d['trials']} that did")
        out.append(line)
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "details":
        sys.stdout.write(details(sys.argv[2:]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "table":
        sys.stdout.write(table(sys.argv[2:]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("system", choices=["hpo", "ray", "syne"])
    ap.add_argument("path")
    ap.add_argument("--slots", type=int, default=16, help="total concurrent slots")
    ap.add_argument("--slots-per-worker", type=int, default=None, help="hpo: slots of each worker")
    ap.add_argument("--duration-ms", type=float, default=200)
    ap.add_argument("--label", default="")
    ap.add_argument("--process-wall-s", type=float, default=None)
    a = ap.parse_args()
    out = analyze_hpo(a) if a.system == "hpo" else analyze_ray(a, a.system)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
