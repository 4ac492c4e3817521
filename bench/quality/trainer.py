#!/usr/bin/python3 -S
"""Trainer for bench/quality's real task, to the SageMaker training-container contract.

`trainer.py train`: reads C, gamma, epsilon and sock from SM_HP_* (set by the hpo worker), asks
the benchmark driver listening on the Unix socket `sock` to evaluate the configuration (the
driver holds the scikit-learn data, so the trial costs the model fit, not an sklearn import),
prints `rmse=V` and exits 0. -S keeps start-up to a few milliseconds.
"""
import json
import os
import socket
import sys

if len(sys.argv) < 2 or sys.argv[1] != "train":
    sys.stderr.write("usage: trainer.py train\n")
    sys.exit(2)
hp = {k: os.environ["SM_HP_" + k.upper()] for k in ("C", "gamma", "epsilon")}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(os.environ["SM_HP_SOCK"])
s.sendall((json.dumps(hp) + "\n").encode())
reply = b""
while not reply.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
value = float(reply)
model_dir = os.environ.get("SM_MODEL_DIR", "/opt/ml/model")
try:
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(hp, f)
except OSError:
    pass
print("rmse=%.17g" % value, flush=True)
