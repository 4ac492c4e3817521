#!/usr/bin/env python3
"""One run of the notification benchmark: `hpo coordinator` (with --notify to a receiver in this
process, or without), W `hpo worker`s of S slots, and one tuning job of N near-instant training
jobs (bench/dispatch/sleep_trainer). Prints one JSON line: the job's wall time (create to
Completed), the events the receiver took, and how long after the job ended its Completed event
arrived.

  one.py --hpo build/cli/hpo --trainer /tmp/sleep_trainer --trials 1000 --notify on
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import procs  # noqa: E402


def api(url, action, body):
    req = urllib.request.Request(url + "/", data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Amz-Target": "SageMaker." + action,
                                          "Content-Type": "application/x-amz-json-1.1"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hpo", required=True)
    ap.add_argument("--trainer", required=True, help="a built bench/dispatch/sleep_trainer")
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--slots", type=int, default=4)
    ap.add_argument("--notify", choices=["on", "off"], default="on")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hpo-bench-notify-")
    events, done_at = [], {}
    lock = threading.Lock()

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver would

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            e = json.loads(body)
            with lock:
                events.append(e["id"])
                if e["detail"].get("HyperParameterTuningJobStatus") == "Completed":
                    done_at["t"] = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    rport = procs.free_port()
    server = ThreadingHTTPServer(("127.0.0.1", rport), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    zport, hport = procs.free_port(), procs.free_port()
    url = f"http://127.0.0.1:{hport}"
    argv = [a.hpo, "coordinator", "--listen", f"tcp://127.0.0.1:{zport}", "--http", f"127.0.0.1:{hport}",
            "--state-dir", os.path.join(tmp, "state"), "--log-events", "none"]
    if a.notify == "on":
        argv += ["--notify", f"http://127.0.0.1:{rport}/events"]
    try:
        coord = procs.spawn(argv, os.path.join(tmp, "coordinator.log"))
        for i in range(a.workers):
            procs.spawn([a.hpo, "worker", "--connect", f"tcp://127.0.0.1:{zport}", "--id", f"w{i}",
                         "--slots", str(a.slots), "--work-dir", os.path.join(tmp, f"w{i}")],
                        os.path.join(tmp, f"w{i}.log"))
        procs.wait_for_workers(url, a.workers, tmp, seconds=60)
        spec = subprocess.run([sys.executable, os.path.join(HERE, "..", "dispatch", "gen_spec.py"), "--trials",
                               str(a.trials), "--parallel", str(a.workers * a.slots), "--sleep-ms", "1",
                               "--trainer", a.trainer, "--name", "notified", "--output-uri",
                               "file://" + os.path.join(tmp, "out")], capture_output=True, text=True, check=True)
        t0 = time.time()
        api(url, "CreateHyperParameterTuningJob", json.loads(spec.stdout))
        while True:
            d = api(url, "DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": "notified"})
            if d["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
                break
            time.sleep(0.05)
        ended = time.time()
        if a.notify == "on":
            while "t" not in done_at and time.time() < ended + 120:
                time.sleep(0.01)
        # The coordinator's own CPU time over the run (the receiver and the workers share the
        # machine's cores: the wall times include what they took).
        with open(f"/proc/{coord.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        with lock:
            out = {"notify": a.notify, "trials": a.trials, "status": d["HyperParameterTuningJobStatus"],
                   "job_seconds": round(ended - t0, 3), "coordinator_cpu_seconds": round(cpu, 2),
                   "events": len(events),
                   "distinct_events": len(set(events)),
                   "job_completed_event_lag_seconds": round(done_at["t"] - ended, 3) if "t" in done_at else None}
        print(json.dumps(out), flush=True)
    finally:
        procs.kill_all()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
