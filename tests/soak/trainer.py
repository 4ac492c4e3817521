#!/usr/bin/python3
"""The soak's training program (tests/soak/soak.py copies it into its run directory).

A real SageMaker-contract program, stdlib only: reads /opt/ml/input/config/hyperparameters.json,
prints `epoch=E loss=L acc=A` once per epoch (the jobs' MetricDefinitions match `loss=` and
`acc=`), sleeps `epoch_s` seconds per epoch, writes /opt/ml/model/model.txt and exits 0; with a
CheckpointConfig it keeps /opt/ml/checkpoints/state-HOST.json (its training job's name and the
last epoch; one file per host, as a multi-host program writes per-rank files) and resumes from it; with `fail_rate` > 0 it sometimes exits 1 mid-way (writing
/opt/ml/output/failure), deterministically from (training job, attempt, host).

It runs as `trainer.py train` (SageMaker's argument). Every process appends one line per event to
the soak's ledger, ledger.log beside this file ($SOAK_LEDGER overrides), with one os.write on an
O_APPEND descriptor per line, so lines of concurrent writers never mix:

  KIND TRAINING_JOB HOST ATTEMPT PID UNIX_TIME WORKER EXTRA...

KIND: start (EXTRA: resume=EPOCH variant=V), tick (every second while it runs), ckpt-foreign
(a checkpoint of another training job was found: EXTRA names it), end (EXTRA: rc=N why).
ATTEMPT is read from the mount of /opt/ml (WORK_DIR/trials/JOB/attempt-N/ml), WORKER is the
basename of $HPO_WORKER_DIR (the worker's --work-dir).
"""

import json
import os
import random
import re
import signal
import sys
import time

LEDGER = os.environ.get("SOAK_LEDGER") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "ledger.log")
VARIANT = os.environ.get("SOAK_VARIANT", "python")  # the shell wrapper sets "wrapper"
TJ = os.environ.get("TRAINING_JOB_NAME", "?")
HOST = os.environ.get("SM_CURRENT_HOST", "algo-1")
WORKER = os.path.basename(os.environ.get("HPO_WORKER_DIR", "?").rstrip("/")) or "?"
PID = os.getpid()


def attempt_number():
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 4 and parts[4] == "/opt/ml":
                    m = re.search(r"/attempt-(\d+)/", parts[3] + "/")
                    if m:
                        return m.group(1)
    except OSError:
        pass
    m = re.search(r"/attempt-(\d+)/", os.getcwd() + "/")
    return m.group(1) if m else "?"


ATTEMPT = attempt_number()
FD = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)


def ledger(kind, extra=""):
    line = f"{kind} {TJ} {HOST} {ATTEMPT} {PID} {time.time():.3f} {WORKER} {extra}".rstrip() + "\n"
    os.write(FD, line.encode())


def on_term(signum, _frame):
    ledger("end", f"rc={128 + signum} signal={signum}")
    os._exit(128 + signum)


def main():
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        with open("/opt/ml/input/config/hyperparameters.json") as f:
            hp = json.load(f)
    except (OSError, ValueError):
        hp = {}
    epochs = int(float(hp.get("epochs", 5)))
    epoch_s = float(hp.get("epoch_s", 1.0))
    fail_rate = float(hp.get("fail_rate", 0))
    x = float(hp.get("x", 0.0))
    depth = int(float(hp.get("depth", 4)))
    opt = str(hp.get("opt", "adam"))
    rnd = random.Random(f"{TJ}/{ATTEMPT}/{HOST}")

    ckdir, start_epoch = None, 0
    try:
        with open("/opt/ml/input/config/checkpointconfig.json") as f:
            ckdir = json.load(f).get("LocalPath") or "/opt/ml/checkpoints"
    except (OSError, ValueError):
        pass
    if ckdir:
        try:
            with open(os.path.join(ckdir, f"state-{HOST}.json")) as f:
                state = json.load(f)
            if state.get("job") != TJ:
                ledger("ckpt-foreign", f"found={state.get('job')} host={state.get('host')}")
            else:
                start_epoch = int(state.get("epoch", 0))
        except (OSError, ValueError):
            pass
    ledger("start", f"resume={start_epoch} variant={VARIANT} epochs={epochs}")

    base = (x - 0.3) ** 2 + 0.05 * abs(depth - 5) + {"adam": 0.0, "sgd": 0.1, "rms": 0.05}.get(opt, 0.2)
    fail_at = -1
    if fail_rate > 0 and rnd.random() < fail_rate:
        fail_at = rnd.randint(start_epoch, max(start_epoch, epochs - 1))
    for e in range(start_epoch, epochs):
        t_end = time.time() + epoch_s
        while True:
            left = t_end - time.time()
            if left <= 0:
                break
            time.sleep(min(1.0, left))
            ledger("tick")
        if e == fail_at:
            with open("/opt/ml/output/failure", "w") as f:
                f.write(f"soak: injected failure at epoch {e + 1}\n")
            print(f"failing on purpose at epoch {e + 1}", flush=True)
            ledger("end", "rc=1 injected-failure")
            return 1
        loss = base + 0.5 / (e + 1) + rnd.gauss(0, 0.01)
        print(f"epoch={e + 1} loss={loss:.6f} acc={1.0 / (1.0 + loss):.6f}", flush=True)
        if ckdir:
            tmp = os.path.join(ckdir, f".state.{PID}")
            with open(tmp, "w") as f:
                json.dump({"job": TJ, "host": HOST, "epoch": e + 1}, f)
            os.replace(tmp, os.path.join(ckdir, f"state-{HOST}.json"))
    os.makedirs("/opt/ml/model", exist_ok=True)
    with open("/opt/ml/model/model.txt", "w") as f:
        f.write(json.dumps({"job": TJ, "x": x, "depth": depth, "opt": opt}) + "\n")
    with open(f"/opt/ml/model/host-{HOST}.txt", "w") as f:  # every host's lands in model.tar.gz
        f.write(HOST + "\n")
    # Which attempt wrote the model: one attempt's files only, also uncompressed across hosts.
    with open(f"/opt/ml/model/attempt-{ATTEMPT}-{HOST}.txt", "w") as f:
        f.write(ATTEMPT + "\n")
    ledger("end", "rc=0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
