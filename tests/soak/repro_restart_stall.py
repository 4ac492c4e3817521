#!/usr/bin/python3
"""Reproduction of a soak finding: a coordinator that stalls (its disk, a pause) in the first lease
after a restart takes a live worker's running training job for lost, and runs it again.

After a restart the coordinator gives the attempts it finds running one lease (--lease-ms) from its
first tick for their workers to register again (coordinator/core.cc TickInTransaction, "Attempts
whose worker never came back"); a registered worker's lease is extended by the coordinator's own
stalls (CreditStall), but that deadline is not. So when the coordinator's event loop reads nothing
for a while right after a restart (in the soak: fdatasync under I/O pressure; here: SIGSTOP), a
worker that re-registers as soon as the loop reads again is already too late: its attempt ends
InfraError "did not come back" and runs again elsewhere while the first program still runs.

What it does (real processes, CurveZMQ keys, loopback, its own ports and temp dir):
  1. a coordinator (--lease-ms 10000) and two workers, one slot each;
  2. one tuning job of one training job whose program runs --program-s seconds (default 40);
  3. once the program has run 5 s: SIGKILL the coordinator, restart it after --down-s (1 s),
     wait until it answers, then SIGSTOP it for --stall-s (8 s; 0: no stall) and SIGCONT;
  4. waits for the job to end and prints the coordinator's events for the training job and the
     trainer ledger (every start/end of the program, with its worker).
Exit 1 when the attempt was taken for lost ("did not come back") though both workers ran all
along, or the program ran twice (the bug); 0 otherwise; 2 on a setup problem. With the default
--stall-s 11 (longer than the lease) it reproduces every time; shorter stalls reproduce when the
worker's re-registration lands after loaded_at + lease.

  /usr/bin/python3 tests/soak/repro_restart_stall.py --hpo /tmp/soak-bin/hpo [--stall-s 0]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import procs  # noqa: E402

TRAINER = r'''#!/usr/bin/python3
import os, sys, time
led = os.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ledger.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
w = os.path.basename(os.environ.get("HPO_WORKER_DIR", "?"))
def say(k): os.write(led, f"{time.time():.3f} {k} {os.environ.get('TRAINING_JOB_NAME')} pid {os.getpid()} worker {w}\n".encode())
say("start")
n = int(float(os.environ.get("SM_HP_SECONDS", "40")))
for i in range(n):
    time.sleep(1)
    print(f"epoch={i + 1} loss={1.0 / (i + 1):.4f}", flush=True)
say("end")
'''


def stamped(p, path):
    """Copies a child's output to `path`, each line prefixed with the time it was read."""
    def run():
        with open(path, "a", buffering=1) as f:
            for line in iter(p.stdout.readline, b""):
                f.write(f"{time.strftime('%H:%M:%S')}.{int(time.time() % 1 * 1000):03d} {line.decode(errors='replace')}")
    threading.Thread(target=run, daemon=True).start()


def spawn(argv, log):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         preexec_fn=procs._own_session_dying_with_parent)
    procs.children.append(p)
    stamped(p, log)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hpo", default=procs.find("HPO_BINARY", "build/cli/hpo"))
    ap.add_argument("--down-s", type=float, default=1.0)
    ap.add_argument("--stall-s", type=float, default=8.0)
    ap.add_argument("--program-s", type=int, default=40)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hpo-repro-stall-")
    procs.cleanup_on_exit(lambda: d)
    keys = os.path.join(d, "keys")
    subprocess.run([a.hpo, "keygen", "--out", keys], check=True, capture_output=True)
    subprocess.run([a.hpo, "keygen", "--worker", "--out", keys, "--name", "worker-2"], check=True, capture_output=True)
    trainer = os.path.join(d, "trainer.py")
    with open(trainer, "w") as f:
        f.write(TRAINER)
    os.chmod(trainer, 0o755)
    zport, hport = procs.free_port(), procs.free_port()
    url = f"http://127.0.0.1:{hport}"
    coord_argv = [a.hpo, "coordinator", "--keys", keys, "--listen", f"tcp://127.0.0.1:{zport}", "--http",
                  f"127.0.0.1:{hport}", "--state-dir", os.path.join(d, "state"), "--lease-ms", "10000"]
    coord = spawn(coord_argv, os.path.join(d, "coordinator.log"))
    for i, key in enumerate(["worker", "worker-2"]):
        spawn([a.hpo, "worker", "--keys", keys, "--key-name", key, "--connect", f"tcp://127.0.0.1:{zport}",
               "--work-dir", os.path.join(d, f"w{i}"), "--instance-type", "ml.m5.large"], os.path.join(d, f"w{i}.log"))
    procs.wait_for_workers(url, 2, d)
    req = {
        "HyperParameterTuningJobName": "repro",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random", "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}},
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"seconds": str(a.program_s)},
            "AlgorithmSpecification": {"TrainingImage": trainer, "TrainingInputMode": "File",
                                       "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
            "RoleArn": "arn:aws:iam::123456789012:role/x",
            "OutputDataConfig": {"S3OutputPath": "file://" + os.path.join(d, "out")},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
            "RetryStrategy": {"MaximumRetryAttempts": 1}}}

    def api(action, body):
        r = urllib.request.Request(url + "/", data=json.dumps(body).encode(), method="POST",
                                   headers={"Content-Type": "application/x-amz-json-1.1",
                                            "X-Amz-Target": "SageMaker." + action})
        with urllib.request.urlopen(r, timeout=30) as resp:
            return json.load(resp)

    api("CreateHyperParameterTuningJob", req)
    ledger = os.path.join(d, "ledger.log")
    deadline = time.time() + 60
    while "start" not in procs.read(ledger):
        if time.time() > deadline:
            print(f"the program did not start; logs in {d}")
            return 2
        time.sleep(0.2)
    time.sleep(5)
    print(f"{time.strftime('%T')} SIGKILL coordinator; restart after {a.down_s} s, then SIGSTOP it {a.stall_s} s")
    coord.kill()
    coord.wait()
    time.sleep(a.down_s)
    coord = spawn(coord_argv, os.path.join(d, "coordinator.log"))
    while True:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    if a.stall_s > 0:
        time.sleep(0.5)
        os.kill(coord.pid, signal.SIGSTOP)
        time.sleep(a.stall_s)
        os.kill(coord.pid, signal.SIGCONT)
    deadline = time.time() + a.program_s + 120
    status = None
    while time.time() < deadline:
        status = api("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": "repro"})["HyperParameterTuningJobStatus"]
        if status in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(1)
    time.sleep(2)
    ev = subprocess.run([a.hpo, "events", "repro", "--coordinator", url], capture_output=True, text=True).stdout
    print("tuning job:", status)
    print("events:\n" + "".join("  " + l + "\n" for l in ev.splitlines() if "Job" not in l.split()[2:3]))
    led = procs.read(ledger)
    print("trainer ledger (time, start/end, training job, pid, worker):\n" +
          "".join(f"  {time.strftime('%T', time.localtime(float(l.split()[0])))} {l}\n" for l in led.splitlines()))
    starts = sum(1 for l in led.splitlines() if l.split()[1] == "start")
    lost = "did not come back" in ev
    alive = all(p.poll() is None for p in procs.children[1:3])
    print(f"the program started {starts} time(s); 'did not come back': {lost}; both workers alive throughout: "
          f"{alive}; logs (worker output timestamped) in {d}")
    procs.kill_all()
    if lost and alive:
        print("REPRODUCED: a live worker's running attempt was taken for lost after the restart")
        return 1
    return 1 if starts > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
