"""A Syne Tune trial of the dispatch-overhead benchmark, written the way Syne Tune's docs write one:
a Python script that LocalBackend starts once per trial (`python syne_trial.py --x X --sleep_ms MS
--st_checkpoint_dir DIR`) and that reports with syne_tune.Reporter.

t_start is taken after the imports, just before the sleep (the user code's start; the interpreter's
start and the imports are the backend's cost of starting a trial, as hpo's exec of its trainer
is), t_end after the sleep. They are reported with the pid, as ray_bench.py's trainable does.
"""
import argparse
import os
import time

from syne_tune import Reporter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--x", type=float, required=True)
    ap.add_argument("--sleep_ms", type=float, default=200)
    ap.add_argument("--st_checkpoint_dir", default="")
    a, _ = ap.parse_known_args()
    t_start = time.time()
    time.sleep(a.sleep_ms / 1000.0)
    t_end = time.time()
    Reporter()(loss=(a.x - 0.3) ** 2, t_start=t_start, t_end=t_end, pid=os.getpid())


if __name__ == "__main__":
    main()
