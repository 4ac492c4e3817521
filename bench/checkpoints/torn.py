#!/usr/bin/env python3
"""Torn checkpoints at the destination: what a worker's uploads leave at CheckpointConfig.S3Uri
while a trainer rewrites its checkpoint in place, as torch.save to the same name every epoch does.

One `hpo coordinator` and one `hpo worker` on loopback per setting of the worker's
--checkpoint-settle-ms (0: every pass sends each file as it is at that moment, which is what
SageMaker's uploads do; 200: hpo's default, a file goes once no process has it open for writing). The training job's
program saves SAVES times: each save truncates model.pt and writes SIZE_MB MiB in 1 MiB chunks
through one descriptor (a save of about SIZE_MB x CHUNK_MS), a header naming the save first; between saves it "trains"
EPOCH_S seconds. A sampler reads the destination (a file:// S3Uri, replaced atomically by each
upload) every SAMPLE_MS and counts, per setting:
  - uploads seen, and torn ones: a copy shorter than a whole save (a worker lost while it is
    there leaves the next attempt only that);
  - the time a torn copy stayed there (the window in which a lost worker loses the checkpoint);
  - lag: from a save's end (the trainer's own clock) to its whole copy at the destination.
Then the job is stopped in the middle of a save (SIGTERM; the trainer has no handler) and the
destination's last copy is checked: whole or torn.

Prints one table; -o json for the numbers. Run through bench/checkpoints/run.sh.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HEADER = 16  # b"save %010d\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url, action, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"SageMaker.{action}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


TRAINER = r"""#!/bin/sh
ck="$(dirname "$SM_MODEL_DIR")/checkpoints"
save() {  # torch.save to the same name: truncated, then written chunk by chunk through one descriptor
  exec 3> "$ck/model.pt"
  printf 'save %010d\n' $1 >&3
  c=1
  while [ $c -le {chunks} ]; do
    head -c 1048576 /dev/zero >&3
    sleep {chunk_s}
    [ $1 = 999 ] && [ $c = 2 ] && touch "{stop_now}"
    c=$((c + 1))
  done
  exec 3>&-
}
i=1
while [ $i -le {saves} ]; do
  save $i
  echo "$i $(date +%s.%N)" >> "{saves_log}"
  echo "loss=0.$i"
  sleep {epoch_s}
  i=$((i + 1))
done
save 999   # stopped in the middle of this one (it has no SIGTERM handler)
sleep 3600
"""


def run_setting(a, settle_ms, work):
    d = os.path.join(work, f"settle-{settle_ms}")
    os.makedirs(d)
    dest = os.path.join(d, "dest")
    saves_log = os.path.join(d, "saves.log")
    trainer = os.path.join(d, "trainer.sh")
    with open(trainer, "w") as f:
        f.write(TRAINER.replace("{chunks}", str(a.size_mb)).replace("{chunk_s}", str(a.chunk_ms / 1000))
                .replace("{saves}", str(a.saves)).replace("{epoch_s}", str(a.epoch_s))
                .replace("{saves_log}", saves_log).replace("{stop_now}", os.path.join(d, "stop-now")))
    os.chmod(trainer, 0o755)
    zport, hport = free_port(), free_port()
    url = f"http://127.0.0.1:{hport}"
    logs = open(os.path.join(d, "cluster.log"), "w")
    coord = subprocess.Popen([a.hpo, "coordinator", "--listen", f"tcp://127.0.0.1:{zport}", "--http",
                              f"127.0.0.1:{hport}", "--state-dir", os.path.join(d, "state"), "--grace", "5"],
                             stdout=logs, stderr=subprocess.STDOUT)
    worker = subprocess.Popen([a.hpo, "worker", "--connect", f"tcp://127.0.0.1:{zport}", "--slots", "1",
                               "--work-dir", os.path.join(d, "work"), "--checkpoint-sync-ms", str(a.sync_ms),
                               "--checkpoint-settle-ms", str(settle_ms), "--instance-type", "ml.m5.large"],
                              stdout=logs, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if api(url, "ListHyperParameterTuningJobs", {}) is not None:
                    break
            except OSError:
                time.sleep(0.1)
        name = f"torn-{settle_ms}"
        spec = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobConfig": {
                "Strategy": "Random",
                "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 1, "MaxParallelTrainingJobs": 1},
                "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]}},
            "TrainingJobDefinition": {
                "AlgorithmSpecification": {"TrainingImage": "file://" + trainer, "TrainingInputMode": "File",
                                           "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.]+)"}]},
                "RoleArn": "arn:aws:iam::123456789012:role/bench",
                "OutputDataConfig": {"S3OutputPath": "file://" + os.path.join(d, "out")},
                "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                "CheckpointConfig": {"S3Uri": "file://" + dest}}}
        for _ in range(100):
            try:
                api(url, "CreateHyperParameterTuningJob", spec)
                break
            except OSError:
                time.sleep(0.2)
        whole = HEADER + a.size_mb * 1048576
        seen = {}      # (ino, mtime_ns) -> (first seen, size, save)
        torn_since = None
        torn_time = 0.0
        path = None
        deadline = time.time() + a.saves * (a.epoch_s + a.size_mb * a.chunk_ms / 1000 * 2) + 120
        while time.time() < deadline and not os.path.exists(os.path.join(d, "stop-now")):
            t = time.time()
            if path is None and os.path.isdir(dest):
                for sub in os.listdir(dest):
                    p = os.path.join(dest, sub, "model.pt")
                    if os.path.exists(p):
                        path = p
            if path is not None:
                try:
                    with open(path, "rb") as f:
                        st = os.fstat(f.fileno())
                        head = f.read(HEADER)
                    key = (st.st_ino, st.st_mtime_ns)
                    if key not in seen:
                        save = int(head[5:15]) if head.startswith(b"save ") and len(head) == HEADER else -1
                        seen[key] = (t, st.st_size, save)
                    torn = st.st_size != whole
                    if torn and torn_since is None:
                        torn_since = t
                    if not torn and torn_since is not None:
                        torn_time += t - torn_since
                        torn_since = None
                except FileNotFoundError:
                    pass
            time.sleep(max(0.0, a.sample_ms / 1000 - (time.time() - t)))
        if torn_since is not None:
            torn_time += time.time() - torn_since
        # The stop, in the middle of the extra save.
        tjs = api(url, "ListTrainingJobsForHyperParameterTuningJob", {"HyperParameterTuningJobName": name})
        tj = tjs["TrainingJobSummaries"][0]["TrainingJobName"]
        api(url, "StopTrainingJob", {"TrainingJobName": tj})
        status = ""
        for _ in range(600):
            status = api(url, "DescribeTrainingJob", {"TrainingJobName": tj})["TrainingJobStatus"]
            if status in ("Stopped", "Failed", "Completed"):
                break
            time.sleep(0.1)
        final, final_head = -1, b""
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                final, final_head = os.fstat(f.fileno()).st_size, f.read(HEADER)
        ends = {}
        with open(saves_log) as f:
            for line in f:
                i, ts = line.split()
                ends[int(i)] = float(ts)
        firsts = {}
        for (first, size, save) in seen.values():
            if size == whole and save in ends:
                firsts[save] = min(first, firsts.get(save, first))
        lags = [firsts[s] - ends[s] for s in firsts]
        uploads = len(seen)
        torn_uploads = sum(1 for (_, size, _) in seen.values() if size != whole)
        return {
            "settle_ms": settle_ms, "saves": a.saves, "uploads_seen": uploads, "torn_uploads": torn_uploads,
            "torn_seconds": round(torn_time, 2), "saves_whole_at_dest": len(firsts),
            "lag_p50_s": round(statistics.median(lags), 2) if lags else None,
            "lag_max_s": round(max(lags), 2) if lags else None,
            "stop_status": status, "after_stop": "whole" if final == whole else f"torn ({final} of {whole} bytes)",
            "after_stop_save": final_head.decode(errors="replace").strip(),
        }
    finally:
        for p in (worker, coord):
            p.terminate()
        for p in (worker, coord):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        logs.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hpo", required=True)
    ap.add_argument("--settle-ms", default="0,200", help="worker --checkpoint-settle-ms values to compare (0,200)")
    ap.add_argument("--saves", type=int, default=20)
    ap.add_argument("--size-mb", type=int, default=64)
    ap.add_argument("--chunk-ms", type=float, default=5)
    ap.add_argument("--epoch-s", type=float, default=1.0)
    ap.add_argument("--sync-ms", type=int, default=1000, help="worker --checkpoint-sync-ms (1000)")
    ap.add_argument("--sample-ms", type=float, default=10)
    ap.add_argument("-o", "--output", choices=["table", "json"], default="table")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hpo-torn-")
    try:
        rows = [run_setting(a, int(s), work) for s in a.settle_ms.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if a.output == "json":
        print(json.dumps(rows, indent=1))
        return
    cols = [("settle_ms", "settle ms"), ("saves", "saves"), ("uploads_seen", "uploads"),
            ("torn_uploads", "torn"), ("torn_seconds", "torn for s"), ("saves_whole_at_dest", "whole saves up"),
            ("lag_p50_s", "lag p50 s"), ("lag_max_s", "lag max s"), ("after_stop", "after a stop mid-save")]
    table = [[str(r[k]) for k, _ in cols] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, (_, h) in enumerate(cols)]
    print("  ".join(h.ljust(w) for (_, h), w in zip(cols, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))


if __name__ == "__main__":
    sys.exit(main())
