"""The learning curve of examples/trainers/curve.cc, in Python, for the peers (Optuna, Ray Tune).

Same function, same deterministic noise (see curve.cc's header comment for the definition):

    b = 3 lr^0.25 (0.6 + 0.6 momentum) (1 - 0.06 (layers - 1))
    f = 0.10 + 0.5 sqrt(lr) + 0.4 momentum^4 + 0.03 (8 - layers)
    loss(k) = f + 2 (k + 1)^(-b) + noise (2 U(k) - 1),  k = 1 .. epochs

`python3 curve.py LR MOMENTUM LAYERS [EPOCHS [NOISE [NOISE_SEED]]]` prints the curve as the
trainer does (`epoch=K loss=V`, %.17g), so run.sh can diff the two implementations.
"""
import math
import struct
import sys

MASK = (1 << 64) - 1

# The search space every system in the benchmark uses.
SPACE = {
    "lr": ("log", 1e-4, 1.0),
    "momentum": ("linear", 0.0, 0.99),
    "layers": ("int", 1, 8),
}


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def bits(d):
    return struct.unpack("<Q", struct.pack("<d", float(d)))[0]


class Curve:
    """loss(k) for one configuration; k = 1 .. epochs."""

    def __init__(self, lr, momentum, layers, noise=0.01, noise_seed=0):
        lr = float(lr)
        momentum = float(momentum)
        layers = int(float(layers))
        if not lr > 0:
            raise ValueError("lr must be > 0")
        self.b = 3 * math.pow(lr, 0.25) * (0.6 + 0.6 * momentum) * (1 - 0.06 * float(layers - 1))
        self.f = 0.10 + 0.5 * math.sqrt(lr) + 0.4 * math.pow(momentum, 4) + 0.03 * float(8 - layers)
        self.noise = float(noise)
        h = splitmix64(int(noise_seed) & MASK)
        h = splitmix64(h ^ bits(lr))
        h = splitmix64(h ^ bits(momentum))
        self.h0 = splitmix64(h ^ bits(float(layers)))

    def loss(self, k):
        h = splitmix64(self.h0 ^ k)
        unit = float(h >> 11) * 2.0 ** -53
        return self.f + 2.0 * math.pow(float(k + 1), -self.b) + self.noise * (2 * unit - 1)


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    lr, momentum, layers = argv[1], argv[2], argv[3]
    epochs = int(argv[4]) if len(argv) > 4 else 27
    noise = float(argv[5]) if len(argv) > 5 else 0.01
    seed = int(argv[6]) if len(argv) > 6 else 0
    c = Curve(lr, momentum, layers, noise, seed)
    for k in range(1, epochs + 1):
        print("epoch=%d loss=%.17g" % (k, c.loss(k)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
