"""Syne Tune's trial of the adaptive benchmark (bench/adaptive/peers.py syne): the learning curve
of curve.py, as a script that Syne Tune's LocalBackend starts once per trial and that reports each
epoch with syne_tune.Reporter, the way Syne Tune's docs write one. An ASHA stop kills it.

  python syne_trial.py --lr LR --momentum M --layers L --epochs 27 --sleep_ms 20 --noise 0.01 --noise_seed 0
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from curve import Curve  # noqa: E402
from syne_tune import Reporter  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for name, kind in (("lr", float), ("momentum", float), ("layers", int), ("epochs", int),
                       ("sleep_ms", float), ("noise", float), ("noise_seed", int)):
        ap.add_argument("--" + name, type=kind, required=True)
    a, _ = ap.parse_known_args()  # and --st_checkpoint_dir
    t0 = time.time()  # after the imports: the training seconds are the epochs', as the other peers'
    c = Curve(a.lr, a.momentum, a.layers, a.noise, a.noise_seed)
    report = Reporter()
    for k in range(1, a.epochs + 1):
        time.sleep(a.sleep_ms / 1000.0)
        report(epoch=k, loss=c.loss(k), t_start=t0, t_now=time.time())


if __name__ == "__main__":
    main()
