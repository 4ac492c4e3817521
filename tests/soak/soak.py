#!/usr/bin/python3
"""Long soak of a real hpo cluster under faults: `bash scripts/soak.sh [--minutes N] [--seed S]
[--workers W] [--hpo PATH]` (or run this file directly, same options; `--help` lists the rest).

What runs, for the whole duration, on loopback (python3 stdlib only; processes through
tests/integration/procs.py):
  * `hpo keygen` keys (one worker key per worker, so every worker speaks CurveZMQ with its own key)
    and one `hpo coordinator --keys` on its own --state-dir and free ports;
  * W `hpo worker`s, each on its own --work-dir with --slots 1 or 2, about a third of them --spot;
  * trainers that are real programs: tests/soak/trainer.py copied into the run directory (and a
    /bin/sh wrapper that runs it as a grandchild, as torchrun-style launchers do). They print
    `epoch=E loss=L acc=A`, sleep (0.5-1.3 s an epoch; 3-5 s for "long" jobs, which outlive a
    lease), checkpoint and resume where the job has a CheckpointConfig, fail on purpose where
    the job sets fail_rate, and write every start/tick/end to ledger.log (trainer.py's header);
  * a stream of tuning jobs, through `hpo submit` and raw CreateHyperParameterTuningJob calls:
    Random, Bayesian, Hyperband and Grid; early stopping Auto, RetryStrategy, CheckpointConfig
    (file:// or a plain path), InstanceCount 2 (gangs), completion criteria,
    EnableManagedSpotTraining (half of them: only those run on the --spot workers), 5-40 training
    jobs, several jobs at once;
  * faults on a schedule drawn from the seed, each logged with its time (faults.log): SIGKILL of
    the coordinator (restarted on its state dir), SIGKILL of a worker (restarted on its work
    dir, sometimes after the lease), SIGTERM of a worker (hand-back) and restart, spot notices
    (SIGUSR1 to a --spot worker, then SIGTERM or SIGKILL, then restart), `hpo stop
    --training-job` of a running training job, `hpo stop` of a running tuning job,
    SIGSTOP/SIGCONT of the coordinator (a stall of a few seconds), SIGSTOP of a worker for
    longer than the lease, and `hpo workers drain --now` of a worker (uncordoned after a while).
The last part of the run (--drain-minutes, default a quarter of it, 1.5-6 min) has no faults and
no new jobs: every job must end within it plus --end-grace-s.

What it checks, while it runs and at the end (each violation is printed at once, with evidence,
and kept in violations.log):
  job-vanished       a job the API accepted (or a training job it listed) is no longer there
  job-not-ended      a submitted job is not Completed/Stopped/Failed by the end of the drain
  status-regressed   a terminal tuning job or training job changed its status again
  counters           TrainingJobStatusCounters do not sum to / match the training jobs that
                     ListTrainingJobsForHyperParameterTuningJob lists (compared only between
                     two identical listings, so a transition in between is not taken for one)
  too-many-training-jobs   more training jobs than MaxNumberOfTrainingJobs (Grid: combinations)
  too-many-in-progress     more than 2 x MaxParallelTrainingJobs InProgress (the README's bound
                     with assign ahead), sampled from the API
  too-many-running   more than MaxParallelTrainingJobs trainers of one tuning job alive at once,
                     from the ledger, not counting attempts on a worker that a fault had just hit
  attempt-overlap    two processes of the same (training job, host, attempt) alive at once
  attempt-rerun      the same (training job, host, attempt) started by two processes
  ran-after-completed      a trainer of a training job started after the job was Completed
  started-after-stop a trainer started more than 10 s after `hpo stop` (of it or its tuning job)
                     was acknowledged
  completed-without-exit0  a Completed training job none of whose attempts exited 0 on every host
  rerun-after-exit0  a training job started again after an attempt whose trainers all exited 0,
                     with no fault on that attempt's workers around its end (with one: a note)
  training-job-overlap     two attempts of one training job alive at once with no fault on the
                     older one's worker (with one: a note, attempts-overlap-after-fault)
  no-objective       a Completed training job without FinalHyperParameterTuningJobObjectiveMetric
  no-model           a Completed training job without S3OutputPath/<job>/output/model.tar.gz
                     (CompressionType NONE: without .../output/model/)
  model-missing-host a Completed multi-host training job whose model lacks a host's file
                     (every host writes host-algo-N.txt; algo-1 merges them)
  model-of-several-attempts  a Completed training job whose model has files of more than one
                     attempt (every host writes attempt-A-algo-N.txt; uncompressed, algo-1 removes
                     an earlier attempt's files)
  hand-over-left     a multi-host training job whose output still has .hpo-hosts/ (the other
                     hosts' files, which the last host to hand over deletes) once it has ended,
                     and HANDOVER_GRACE_S later; for one not Completed with a fault on its
                     workers: a note; gone within the grace: the note hand-over-late (a lost
                     algo-1's hand-over is removed by another host's worker after the job ended)
  foreign-checkpoint a trainer found another training job's checkpoint in /opt/ml/checkpoints
  spot-without-managed-spot  a trainer of a job without EnableManagedSpotTraining ran on a --spot
                     worker (from the ledger)
  not-terminal       a training job of an ended tuning job that is not Completed/Failed/Stopped
  stop-not-stopped   a tuning job or training job whose stop the API acknowledged and that is
                     still not ended at the end
  api-slow / api-error     DescribeHyperParameterTuningJob (every 2 s) slower than --api-bound-s,
                     or failing, while the coordinator was not being killed or stalled; a call
                     out for over 3 s gets snapshots of the coordinator's threads from /proc
                     (state, syscall, kernel stack) and the machine's PSI in slow_calls.log
  process-died       a coordinator or worker exited with no fault taking it down (then restarted)
  worker-restart     a worker does not start again on its work directory
  submit-refused     CreateHyperParameterTuningJob / hpo submit refused a valid job
  rss / db-size      a process's RSS or the state database beyond --rss-bound-mb / --db-bound-mb
  notify-missing     the coordinator runs with --notify to a receiver in this process that
                     answers 503 to one request in 20: at the end, a tuning job or training job
                     whose last state the receiver got (event ids deduplicated) is not its final
                     status, or none came; notify-twice: one state told by two events in a row;
                     notify-backlog: events still waiting two minutes after the end
Notes (printed to soak.log, counted in the summary, not violations): the above explained by a
fault; stops that ended otherwise; CoordinatorStalled events (the coordinator's event loop read
nothing for --stall-note-s or more) that no SIGSTOP or kill of the soak explains, with the PSI.
At the end the coordinator is killed and started again on its state: the summary compares its RSS
then with the live process's (memory held beyond the data: a leak, or fragmentation).

Output: progress every 30 s, a summary table at the end (summary.txt), all logs in the run
directory it names (soak.log, faults.log, violations.log, ledger.log, resources.csv: time,
coordinator RSS kB, db bytes, training jobs, workers' RSS; latency.csv: time, seconds, ok,
excluded; slow_calls.log; specs/; logs/ of every process; state/ and work/ as they were left).
Exit 0 no violation, 1 violations, 2 usage, 3 the cluster could not start.

Replay: the seed is printed at the start and in the summary; `bash scripts/soak.sh --seed S
--minutes N --workers W` draws the same jobs and the same fault schedule (which training job a
stop picks, and the timing of everything, still depend on the run). --faults KIND,... limits the
fault kinds (another schedule from the same seed). A finding reduced to a script:
tests/soak/repro_restart_stall.py (a stall right after a coordinator restart).
"""

import argparse
import collections
import json
import math
import os
import queue
import random
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import procs  # noqa: E402  (tests/integration/procs.py)

TERMINAL_JOB = ("Completed", "Stopped", "Failed")
TERMINAL_TJ = ("Completed", "Stopped", "Failed")
INSTANCE_TYPE = "ml.m5.large"
# How long a multi-host training job's hand-over folder may outlive the job's end (a lost
# algo-1's is removed after its other hosts have exited: DiscardHandOver) before it counts as
# left behind.
HANDOVER_GRACE_S = 10.0


def now():
    return time.time()


def stamp(t=None):
    t = now() if t is None else t
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int((t % 1) * 1000):03d}"


def pct(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(math.ceil(q * len(s))) - 1))]


def tuning_job_of(training_job):
    # NAME-NNN-xxxxxxxx
    parts = training_job.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else training_job


# The faults the injector draws from, with their weights (Soak.f_<kind> injects each).
FAULT_KINDS = {"coord_kill": 2, "worker_kill": 3, "worker_term": 2, "spot": 2, "stop_training_job": 3,
               "stop_tuning_job": 0.7, "coord_stall": 2, "worker_stall": 1, "evict": 1.5}


class Proc:
    """One coordinator or worker: its argv, log, the running Popen (or None while it is down)."""

    def __init__(self, name, argv, log, spot=False, slots=1, env=None):
        self.name, self.argv, self.log, self.spot, self.slots = name, argv, log, spot, slots
        self.env = env or {}
        self.p = None
        self.starts = 0
        self.expect_exit = False  # a fault is taking it down: its exit is no violation

    def start(self):
        # Only ever on the main thread (Soak.spawn): procs.spawn's PR_SET_PDEATHSIG fires when the
        # *thread* that forked the child ends, so a process started by a helper thread was killed
        # with SIGKILL when that thread returned.
        assert threading.current_thread() is threading.main_thread()
        self.p = procs.spawn(self.argv, self.log, extra_env=self.env)
        self.starts += 1
        return self.p

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def pid(self):
        return self.p.pid if self.p is not None else None


class Job:
    def __init__(self, name, request, via):
        self.name, self.request, self.via = name, request, via
        cfg = request["HyperParameterTuningJobConfig"]
        self.strategy = cfg["Strategy"]
        limits = cfg["ResourceLimits"]
        self.max_parallel = limits["MaxParallelTrainingJobs"]
        self.max_jobs = limits.get("MaxNumberOfTrainingJobs")
        if self.max_jobs is None:  # Grid without it: the combinations
            n = 1
            for r in cfg["ParameterRanges"].get("CategoricalParameterRanges", []):
                n *= len(r["Values"])
            self.max_jobs = n
        tdef = request["TrainingJobDefinition"]
        self.output = tdef["OutputDataConfig"]["S3OutputPath"].removeprefix("file://")
        self.instance_count = tdef["ResourceConfig"]["InstanceCount"]
        self.compressed = tdef["OutputDataConfig"].get("CompressionType", "GZIP") != "NONE"
        self.managed_spot = bool(tdef.get("EnableManagedSpotTraining"))
        self.features = []
        self.submitted_at = None
        self.accepted = False
        self.status = None
        self.ended_at = None  # when the soak first saw it terminal
        self.end_checked = False
        self.stop_ack = None  # when `hpo stop NAME` was acknowledged
        self.tjs = {}  # training job -> last status seen
        self.tj_info = {}  # training job -> last summary seen
        self.counters = {}
        self.max_in_progress_seen = 0


class Soak:
    def __init__(self, a):
        self.a = a
        self.seed = a.seed
        self.hpo = a.hpo
        self.dir = a.dir
        self.lock = threading.RLock()
        self.stop_event = threading.Event()
        self.t0 = now()
        self.total_s = a.minutes * 60.0
        self.drain_s = a.drain_minutes * 60.0 if a.drain_minutes is not None else min(360.0, max(90.0, self.total_s / 4))
        self.drain_s = min(self.drain_s, self.total_s * 0.8)
        self.active_end = self.t0 + self.total_s - self.drain_s  # faults and submissions stop here
        self.jobs = collections.OrderedDict()
        self.job_counter = 0
        self.faults = []  # (t, kind, detail)
        self.fault_counts = collections.Counter()
        self.violations = collections.OrderedDict()  # key -> (t, kind, message)
        self.notes = collections.OrderedDict()
        self.latency = []  # (t, seconds, ok, excluded)
        self.resources = []  # (t, coord_rss_kb, {worker: rss_kb}, db_bytes)
        # [t0, t1 (None while it lasts), kind]: the coordinator killed or stopped on purpose, and per
        # worker the same for its faults (open_window / close_window).
        self.coord_windows = []
        self.worker_windows = collections.defaultdict(list)
        self.tj_stops = {}  # training job -> ack time
        self.ledger_summary = {}
        self.phase = "setup"
        self.rng_jobs = random.Random(f"{self.seed}/jobs")
        self.rng_faults = random.Random(f"{self.seed}/faults")
        self.rng_cluster = random.Random(f"{self.seed}/cluster")
        self.rng_misc = random.Random(f"{self.seed}/misc")
        for sub in ("logs", "specs", "output", "ckpt", "work", "state"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        self.log_f = open(os.path.join(self.dir, "soak.log"), "a", buffering=1)
        self.fault_f = open(os.path.join(self.dir, "faults.log"), "a", buffering=1)
        self.viol_f = open(os.path.join(self.dir, "violations.log"), "a", buffering=1)
        self.lat_f = open(os.path.join(self.dir, "latency.csv"), "a", buffering=1)
        self.res_f = open(os.path.join(self.dir, "resources.csv"), "a", buffering=1)
        self.ledger = os.path.join(self.dir, "ledger.log")
        self.spawn_q = queue.Queue()
        self.slow_calls = []  # (t, seconds, coordinator cpu seconds, thread snapshots)
        self.event_cursor = 0
        self.event_kinds = collections.Counter()
        # Training job -> [(time, worker id)] of the coordinator's "worker ... was lost" InfraErrors:
        # an attempt's host can be placed on a worker the soak has just killed, which then never
        # starts it and so never appears in the ledger.
        self.lost_workers = collections.defaultdict(list)
        self.worker_names = {}  # worker id -> the soak's name, see worker_name_of
        self.stalls = []  # (t, seconds, explained) from the coordinator's CoordinatorStalled events
        self.psi = []  # (t, {"cpu": avg10, "io": avg10})
        self.rss_fresh = None  # (live kB, fresh kB, training jobs) from fresh_rss_check

    # ----------------------------------------------------------------------------- spawning

    def spawn(self, proc):
        """Starts `proc` on the main thread (see Proc.start) and waits for it."""
        if threading.current_thread() is threading.main_thread():
            return proc.start()
        req = {"proc": proc, "done": threading.Event()}
        self.spawn_q.put(req)
        req["done"].wait()  # the main thread pumps whenever helper threads run (run())
        if "error" in req:
            raise req["error"]
        return proc.p

    def pump(self, seconds):
        """The main thread's wait: serves spawn requests of the other threads meanwhile."""
        deadline = now() + seconds
        while True:
            try:
                req = self.spawn_q.get(timeout=max(0.01, min(1.0, deadline - now())))
            except queue.Empty:
                if now() >= deadline:
                    return
                continue
            try:
                req["proc"].start()
            except Exception as e:  # handed to the requesting thread
                req["error"] = e
            req["done"].set()

    # ----------------------------------------------------------------------------- output

    def say(self, msg, quiet=False):
        line = f"[{stamp()} +{now() - self.t0:6.0f}s] {msg}"
        with self.lock:
            self.log_f.write(line + "\n")
            if not quiet:
                print(line, flush=True)

    def violation(self, kind, key, msg, evidence=None):
        with self.lock:
            if (kind, key) in self.violations:
                return
            self.violations[(kind, key)] = (now(), kind, msg)
            rec = {"time": stamp(), "kind": kind, "key": key, "message": msg, "evidence": evidence}
            self.viol_f.write(json.dumps(rec, default=str) + "\n")
        self.say(f"VIOLATION {kind}: {msg}" + (f"\n    evidence: {json.dumps(evidence, default=str)[:2000]}" if evidence else ""))

    def note(self, kind, key, msg):
        with self.lock:
            if (kind, key) in self.notes:
                return
            self.notes[(kind, key)] = (now(), kind, msg)
        self.say(f"note {kind}: {msg}", quiet=True)

    def fault(self, kind, detail):
        t = now()
        with self.lock:
            self.faults.append((t, kind, detail))
            self.fault_counts[kind] += 1
            self.fault_f.write(f"{stamp(t)} {t:.3f} {kind} {detail}\n")
        self.say(f"fault {kind}: {detail}")

    # ----------------------------------------------------------------------------- API

    def api(self, action, body, timeout=30):
        req = urllib.request.Request(
            self.url + "/", data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker." + action})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                return r.status, (json.loads(data) if data else {})
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                return e.code, json.loads(data)
            except ValueError:
                return e.code, {"raw": data.decode(errors="replace")}

    def list_training_jobs(self, name):
        out, token = [], None
        for _ in range(200):
            body = {"HyperParameterTuningJobName": name, "MaxResults": 100}
            if token:
                body["NextToken"] = token
            st, r = self.api("ListTrainingJobsForHyperParameterTuningJob", body)
            if st != 200:
                raise RuntimeError(f"ListTrainingJobsForHyperParameterTuningJob {name}: {st} {r}")
            out.extend(r.get("TrainingJobSummaries", []))
            token = r.get("NextToken")
            if not token:
                return out
        raise RuntimeError("ListTrainingJobsForHyperParameterTuningJob: too many pages")

    def healthy(self, timeout=2):
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as r:
                return r.status == 200
        except OSError:
            return False

    def hpo_cli(self, *args, timeout=60):
        try:
            r = subprocess.run([self.hpo, *args, "--coordinator", self.url], capture_output=True, text=True,
                               timeout=timeout)
            return r.returncode, (r.stdout + r.stderr).strip()
        except subprocess.TimeoutExpired:
            return 124, "timed out"

    # ----------------------------------------------------------------------------- cluster

    def setup(self):
        keys = os.path.join(self.dir, "keys")
        self.run_checked([self.hpo, "keygen", "--out", keys])
        for i in range(2, self.a.workers + 1):
            self.run_checked([self.hpo, "keygen", "--worker", "--out", keys, "--name", f"worker-{i}"])
        src = open(os.path.join(HERE, "trainer.py")).read()
        self.trainer = os.path.join(self.dir, "trainer.py")
        with open(self.trainer, "w") as f:
            f.write(src)
        os.chmod(self.trainer, 0o755)
        self.wrapper = os.path.join(self.dir, "trainer-wrapper.sh")
        with open(self.wrapper, "w") as f:
            # No exec: python is the wrapper's child, the worker's grandchild (a launcher's ranks).
            f.write(f'#!/bin/sh\nSOAK_VARIANT=wrapper /usr/bin/python3 {self.trainer} "$@"\nexit $?\n')
        os.chmod(self.wrapper, 0o755)
        open(self.ledger, "a").close()
        os.chmod(self.ledger, 0o666)

        self.zport, self.hport = procs.free_port(), procs.free_port()
        while self.hport == self.zport:
            self.hport = procs.free_port()
        self.start_notify_receiver()
        self.url = f"http://127.0.0.1:{self.hport}"
        self.state_dir = os.path.join(self.dir, "state")
        self.coord = Proc("coordinator", [
            self.hpo, "coordinator", "--keys", keys, "--listen", f"tcp://127.0.0.1:{self.zport}",
            "--http", f"127.0.0.1:{self.hport}", "--state-dir", self.state_dir,
            "--lease-ms", str(int(self.a.lease_s * 1000)), "--grace", str(self.a.grace_s),
            "--notify", f"http://127.0.0.1:{self.notify_port}/soak"],
            os.path.join(self.dir, "logs", "coordinator.log"),
            env=dict(kv.split("=", 1) for kv in self.a.coordinator_env))
        self.spawn(self.coord)
        if not self.wait_healthy(60):
            raise RuntimeError(f"the coordinator did not answer; see {self.coord.log}")
        self.workers = []
        nspot = max(1, self.a.workers // 3)
        for i in range(self.a.workers):
            slots = self.rng_cluster.choice([1, 2])
            spot = i >= self.a.workers - nspot
            wd = os.path.join(self.dir, "work", f"w{i}")
            argv = [self.hpo, "worker", "--keys", keys, "--key-name", "worker" if i == 0 else f"worker-{i + 1}",
                    "--connect", f"tcp://127.0.0.1:{self.zport}", "--slots", str(slots), "--work-dir", wd,
                    "--instance-type", INSTANCE_TYPE, "--host", f"127.0.0.{i + 2}",
                    "--checkpoint-release-ms", "15000"]
            if spot:
                argv.append("--spot")
            w = Proc(f"w{i}", argv, os.path.join(self.dir, "logs", f"w{i}.log"), spot=spot, slots=slots)
            self.spawn(w)
            self.workers.append(w)
        procs.wait_for_workers(self.url, self.a.workers, self.dir, seconds=60)
        desc = ", ".join(f"{w.name}(slots={w.slots}{',spot' if w.spot else ''})" for w in self.workers)
        self.say(f"cluster up: coordinator pid {self.coord.pid()} api {self.url} zmq {self.zport}; workers {desc}")

    def start_notify_receiver(self):
        """The --notify target: takes the coordinator's state-change events, refusing one request in
        20 with a 503 (delivery must retry, in order), and keeps (id, resource, state) of each."""
        self.notified, self.notify_refused = [], 0
        self.notify_lock = threading.Lock()
        self.rng_notify = random.Random(f"{self.seed}/notify")
        soak = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with soak.notify_lock:
                    refuse = soak.rng_notify.random() < 0.05
                    soak.notify_refused += refuse
                if refuse:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    e = json.loads(body)
                    d = e["detail"]
                    if e["detail-type"] == "SageMaker Training Job State Change":
                        item = (e["id"], d["TrainingJobName"], f"{d['TrainingJobStatus']}/{d['SecondaryStatus']}")
                    else:
                        item = (e["id"], d["HyperParameterTuningJobName"], d["HyperParameterTuningJobStatus"])
                except (ValueError, KeyError, TypeError) as err:
                    soak.violation("notify-body", "receiver", f"an event the receiver cannot read: {err}",
                                   evidence={"body": body[:2000].decode("utf-8", "replace")})
                    self.send_response(400)
                    self.end_headers()
                    return
                with soak.notify_lock:
                    soak.notified.append(item)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.notify_port = procs.free_port()
        self.notify_server = ThreadingHTTPServer(("127.0.0.1", self.notify_port), Hook)
        threading.Thread(target=self.notify_server.serve_forever, name="notify-receiver", daemon=True).start()

    def notifications_waiting(self):
        try:
            with urllib.request.urlopen(self.url + "/hpo/v1/metrics", timeout=10) as r:
                m = re.search(r"^hpo_notifications_waiting (\S+)$", r.read().decode(), re.M)
            return float(m.group(1)) if m else None
        except (OSError, ValueError):
            return None

    def check_notifications(self, jobs):
        deadline = now() + 120
        while now() < deadline and self.notifications_waiting() != 0:
            time.sleep(1)
        waiting = self.notifications_waiting()
        if waiting != 0:
            self.violation("notify-backlog", "final", f"{waiting} notifications still wait two minutes after the end")
        with self.notify_lock:
            events = list(self.notified)
            refused = self.notify_refused
        ids, last = set(), {}
        repeats = 0
        for eid, name, state in events:
            if eid in ids:
                repeats += 1  # delivered, then the coordinator died before it could record that
                continue
            ids.add(eid)
            if last.get(name) == state:
                self.violation("notify-twice", f"{name}/{state}", f"{name}: {state} told by two events in a row")
            last[name] = state
        checked = 0
        for j in jobs:
            try:
                _, d = self.api("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": j.name})
                tjs = self.list_training_jobs(j.name)
            except (OSError, RuntimeError) as e:
                self.violation("api-error", f"notify-{j.name}", f"reading {j.name} for the notification check: {e}")
                continue
            finals = [(j.name, d.get("HyperParameterTuningJobStatus"), lambda s: s)]
            finals += [(t["TrainingJobName"], t["TrainingJobStatus"], lambda s: s.split("/")[0]) for t in tjs]
            for name, status, of in finals:
                checked += 1
                if name not in last or of(last[name]) != status:
                    self.violation("notify-missing", name,
                                   f"{name} is {status}, but the last state notified was {last.get(name, 'none')}")
        self.say(f"notifications: {len(ids)} events taken ({repeats} repeats, {refused} refused with 503), "
                 f"{checked} final states checked")
        with self.lock:
            self.ledger_summary["notifications"] = len(ids)

    def run_checked(self, argv):
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stdout}{r.stderr}")

    def wait_healthy(self, seconds):
        deadline = now() + seconds
        while now() < deadline:
            if self.healthy():
                return True
            if self.coord.p is not None and self.coord.p.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    def restart_coordinator(self, why):
        for attempt in range(5):
            if self.coord.alive():
                break
            self.spawn(self.coord)
            if self.wait_healthy(90):
                return True
            self.say(f"coordinator restart {attempt + 1} after {why} did not come up (exit {self.coord.p.poll()}); "
                     f"see {self.coord.log}")
            time.sleep(2)
        return self.healthy()

    def restart_worker(self, w):
        for attempt in range(5):
            self.spawn(w)
            time.sleep(1.5)
            if w.alive():
                w.expect_exit = False
                return True
            self.say(f"worker {w.name} restart {attempt + 1} exited {w.p.poll()}; see {w.log}")
            time.sleep(2)
        self.violation("worker-restart", w.name, f"worker {w.name} does not start again on its work dir; see {w.log}")
        return False

    # ----------------------------------------------------------------------------- jobs

    def make_job(self, n):
        rng = self.rng_jobs
        names, weights = ["Random", "Bayesian", "Hyperband", "Grid"], [4, 3, 2, 1.5]
        if self.a.strategies != "all":
            weights = [w if n in self.a.strategies.split(",") else 0 for n, w in zip(names, weights)]
        strategy = rng.choices(names, weights)[0]
        name = f"soak{n:03d}-{strategy.lower()[:4]}-{self.seed % 100000}"
        feats = [strategy]
        gang = rng.random() < 0.12
        max_parallel = rng.randint(1, 2) if gang else rng.randint(2, 4)
        epochs = 9 if strategy == "Hyperband" else rng.randint(3, 7)
        statics = {"epochs": str(epochs), "epoch_s": f"{rng.uniform(0.5, 1.3):.2f}"}
        if rng.random() < 0.15:  # training jobs longer than the lease: a stalled worker's outlive it
            statics["epoch_s"] = f"{rng.uniform(3, 5):.2f}"
            feats.append("long")
        if rng.random() < 0.3:
            statics["fail_rate"] = f"{rng.uniform(0.1, 0.25):.2f}"
            feats.append(f"fail_rate={statics['fail_rate']}")
        cfg = {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxParallelTrainingJobs": max_parallel},
            "TrainingJobEarlyStoppingType": "Off",
        }
        if strategy == "Grid":
            k = rng.randint(2, 10)
            xs = sorted({f"{rng.uniform(-1, 1):.2f}" for _ in range(k)})
            opts = ["adam", "sgd", "rms"][:rng.randint(1, 3)]
            while len(xs) * len(opts) < 5:
                xs.append(f"{0.9 + len(xs) / 100:.2f}")
            while len(xs) * len(opts) > 40:
                xs.pop()
            cfg["ParameterRanges"] = {"CategoricalParameterRanges": [
                {"Name": "x", "Values": xs}, {"Name": "opt", "Values": opts}]}
            if rng.random() < 0.5:
                cfg["ResourceLimits"]["MaxNumberOfTrainingJobs"] = len(xs) * len(opts)
        else:
            cfg["ResourceLimits"]["MaxNumberOfTrainingJobs"] = rng.randint(5, 12 if "long" in feats else 40)
            cfg["ParameterRanges"] = {
                "ContinuousParameterRanges": [{"Name": "x", "MinValue": "-1", "MaxValue": "1", "ScalingType": "Linear"}],
                "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "8"}],
                "CategoricalParameterRanges": [{"Name": "opt", "Values": ["adam", "sgd", "rms"]}],
            }
        if strategy == "Hyperband":
            cfg["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": epochs}}
        if strategy in ("Random", "Bayesian") and rng.random() < 0.35:
            cfg["TrainingJobEarlyStoppingType"] = "Auto"
            feats.append("early-stop")
        if strategy != "Grid" and rng.random() < 0.2:
            kind = rng.choice(["target", "not-improving", "convergence"])
            cc = {"target": {"TargetObjectiveMetricValue": 0.35},
                  "not-improving": {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": rng.randint(3, 6)}},
                  "convergence": {"ConvergenceDetected": {"CompleteOnConvergence": "Enabled"}}}[kind]
            cfg["TuningJobCompletionCriteria"] = cc
            feats.append("completion:" + kind)
        variant = "wrapper" if rng.random() < 0.3 else "python"
        if variant == "wrapper":
            feats.append("wrapper")
        tdef = {
            "StaticHyperParameters": statics,
            "AlgorithmSpecification": {
                "TrainingImage": self.wrapper if variant == "wrapper" else self.trainer,
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"},
                                      {"Name": "acc", "Regex": "acc=([0-9.eE+-]+)"}],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-soak",
            "OutputDataConfig": {"S3OutputPath": "file://" + os.path.join(self.dir, "output", name)},
            "ResourceConfig": {"InstanceType": INSTANCE_TYPE, "InstanceCount": 2 if gang else 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
        if gang:
            feats.append("gang")
        if rng.random() < 0.25:  # files under output/model/ instead of model.tar.gz
            tdef["OutputDataConfig"]["CompressionType"] = "NONE"
            feats.append("uncompressed")
        if rng.random() < 0.4:
            ck = os.path.join(self.dir, "ckpt", name)
            tdef["CheckpointConfig"] = {"S3Uri": ("file://" + ck) if rng.random() < 0.5 else ck}
            feats.append("checkpoints")
        if rng.random() < 0.4:
            tdef["RetryStrategy"] = {"MaximumRetryAttempts": rng.randint(1, 3)}
            feats.append(f"retry={tdef['RetryStrategy']['MaximumRetryAttempts']}")
        if rng.random() < 0.5:  # what the --spot workers may run
            tdef["EnableManagedSpotTraining"] = True
            feats.append("managed-spot")
        req = {"HyperParameterTuningJobName": name, "HyperParameterTuningJobConfig": cfg,
               "TrainingJobDefinition": tdef, "Tags": [{"Key": "soak-seed", "Value": str(self.seed)}]}
        via = "hpo-submit" if rng.random() < 0.5 else "http"
        job = Job(name, req, via)
        job.features = feats
        return job

    def submit(self, job):
        path = os.path.join(self.dir, "specs", job.name + ".json")
        with open(path, "w") as f:
            json.dump(job.request, f, indent=1)
        job.submitted_at = now()
        deadline = now() + 120
        tries = 0
        while now() < deadline and not self.stop_event.is_set():
            tries += 1
            try:
                if job.via == "hpo-submit":
                    rc, out = self.hpo_cli("submit", path)
                    if rc == 0:
                        job.accepted = True
                        break
                    if rc == 3:  # no coordinator there (being restarted)
                        time.sleep(2)
                        continue
                    if "ResourceInUse" in out and tries > 1:  # an earlier try got through
                        job.accepted = True
                        break
                    self.violation("submit-refused", job.name, f"hpo submit {job.name} refused: rc={rc}: {out[-600:]}")
                    return False
                st, r = self.api("CreateHyperParameterTuningJob", job.request)
                if st == 200 and "HyperParameterTuningJobArn" in r:
                    job.accepted = True
                    break
                if st == 400 and r.get("__type", "").endswith("ResourceInUse") and tries > 1:
                    job.accepted = True
                    break
                self.violation("submit-refused", job.name, f"CreateHyperParameterTuningJob {job.name}: {st} {r}")
                return False
            except OSError as e:  # the coordinator is down or stalled: try again
                self.say(f"submit {job.name}: {e}; retrying", quiet=True)
                time.sleep(2)
        if not job.accepted:
            self.say(f"submit {job.name}: not accepted within 120 s (coordinator down?); dropped")
            return False
        with self.lock:
            self.jobs[job.name] = job
        self.say(f"submitted {job.name} via {job.via}: max {job.max_jobs} training jobs, {job.max_parallel} parallel, "
                 f"{' '.join(job.features)}")
        return True

    def submitter(self):
        rng = self.rng_jobs
        while not self.stop_event.is_set() and now() < self.active_end:
            with self.lock:
                active = sum(1 for j in self.jobs.values() if j.status not in TERMINAL_JOB)
            target = self.a.max_active_jobs
            if active < target:
                self.job_counter += 1
                self.submit(self.make_job(self.job_counter))
                gap = rng.uniform(3, 25)
            else:
                gap = 3
            self.stop_event.wait(max(0.0, min(gap, self.active_end - now())))

    # ----------------------------------------------------------------------------- faults

    def pick(self, items, u):
        items = sorted(items)
        return items[min(len(items) - 1, int(u * len(items)))] if items else None

    def injector(self):
        rng = self.rng_faults
        kinds = list(FAULT_KINDS)
        weights = [FAULT_KINDS[k] for k in kinds]
        if self.a.faults != "all":
            allowed = set(self.a.faults.split(","))
            unknown = allowed - set(kinds)
            if unknown:
                self.say(f"--faults: unknown kinds {sorted(unknown)} (known: {','.join(kinds)})")
            weights = [w if k in allowed else 0 for k, w in zip(kinds, weights)]
            if not any(weights):
                return
        self.stop_event.wait(min(20.0, self.a.fault_mean_s))
        while not self.stop_event.is_set() and now() < self.active_end:
            kind = rng.choices(kinds, weights)[0]
            u = rng.random()
            d1, d2, coin = rng.random(), rng.random(), rng.random()
            try:
                getattr(self, "f_" + kind)(u, d1, d2, coin)
            except Exception as e:  # a fault that could not be injected is logged, not fatal
                self.say(f"fault {kind} could not be injected: {type(e).__name__}: {e}")
            gap = min(90.0, max(4.0, rng.expovariate(1.0 / self.a.fault_mean_s)))
            self.stop_event.wait(max(0.0, min(gap, self.active_end - now())))

    def f_coord_kill(self, u, d1, d2, coin):
        t0 = now()
        win = self.open_window(self.coord_windows, "kill")
        pid = self.coord.pid()
        self.coord.expect_exit = True
        os.kill(pid, signal.SIGKILL)
        self.coord.p.wait()
        down = 0.2 + d1 * 6
        self.fault("coord_kill", f"SIGKILL coordinator pid {pid}; restart after {down:.1f} s")
        time.sleep(down)
        ok = self.restart_coordinator("SIGKILL")
        self.coord.expect_exit = False
        self.say(f"coordinator restarted (pid {self.coord.pid()}, healthy={ok}) {now() - t0:.1f} s after the kill")
        self.close_window(win)

    def f_coord_stall(self, u, d1, d2, coin):
        win = self.open_window(self.coord_windows, "stall")
        pid = self.coord.pid()
        length = 2 + d1 * 8
        self.fault("coord_stall", f"SIGSTOP coordinator pid {pid} for {length:.1f} s")
        os.kill(pid, signal.SIGSTOP)
        time.sleep(length)
        os.kill(pid, signal.SIGCONT)
        self.close_window(win)

    def live_workers(self):
        return [w for w in self.workers if w.alive()]

    def f_worker_kill(self, u, d1, d2, coin):
        w = self.pick_worker(u)
        if not w:
            return
        win = self.open_window(self.worker_windows[w.name], "kill")
        down = 0.5 + d1 * 5 if coin < 0.7 else self.a.lease_s + 2 + d1 * 10  # sometimes past the lease
        pid = w.pid()
        w.expect_exit = True
        os.kill(pid, signal.SIGKILL)
        w.p.wait()
        self.fault("worker_kill", f"SIGKILL {w.name} pid {pid}; restart after {down:.1f} s")
        time.sleep(down)
        self.restart_worker(w)
        self.close_window(win)

    def f_worker_term(self, u, d1, d2, coin):
        w = self.pick_worker(u)
        if not w:
            return
        win = self.open_window(self.worker_windows[w.name], "term")
        pid = w.pid()
        self.fault("worker_term", f"SIGTERM {w.name} pid {pid} (hand-back), then restart")
        w.expect_exit = True
        os.kill(pid, signal.SIGTERM)
        self.wait_exit(w, self.a.grace_s + 30)
        time.sleep(0.5 + d1 * 3)
        self.restart_worker(w)
        self.close_window(win)

    def f_spot(self, u, d1, d2, coin):
        spots = [w for w in self.live_workers() if w.spot]
        w = self.pick([x.name for x in spots], u)
        if not w:
            return
        w = next(x for x in spots if x.name == w)
        win = self.open_window(self.worker_windows[w.name], "spot")
        pid = w.pid()
        wait = 2 + d1 * 12
        how = "SIGTERM" if coin < 0.5 else "SIGKILL"
        self.fault("spot", f"SIGUSR1 (spot notice) to {w.name} pid {pid}; {how} after {wait:.1f} s; restart")
        w.expect_exit = True  # a spot worker may leave by itself once its trials are gone
        os.kill(pid, signal.SIGUSR1)
        time.sleep(wait)
        if w.alive():
            os.kill(pid, signal.SIGTERM if how == "SIGTERM" else signal.SIGKILL)
            self.wait_exit(w, self.a.grace_s + 30)
        time.sleep(0.5 + d2 * 3)
        self.restart_worker(w)
        self.close_window(win)

    def f_worker_stall(self, u, d1, d2, coin):
        w = self.pick_worker(u)
        if not w:
            return
        win = self.open_window(self.worker_windows[w.name], "stall")
        pid = w.pid()
        length = self.a.lease_s + 3 + d1 * 12
        self.fault("worker_stall", f"SIGSTOP {w.name} pid {pid} for {length:.1f} s (lease {self.a.lease_s:.0f} s)")
        os.kill(pid, signal.SIGSTOP)
        time.sleep(length)
        os.kill(pid, signal.SIGCONT)
        self.close_window(win, extra_s=5.0)

    def f_stop_training_job(self, u, d1, d2, coin):
        with self.lock:
            running = [tj for j in self.jobs.values() for tj, s in j.tjs.items() if s == "InProgress"]
        tj = self.pick(running, u)
        if not tj:
            return
        self.fault("stop_training_job", f"hpo stop --training-job {tj}")
        rc, out = self.hpo_cli("stop", "--training-job", tj)
        if rc == 0:
            with self.lock:
                self.tj_stops[tj] = now()
        self.say(f"hpo stop --training-job {tj}: rc={rc} {out[-300:]}", quiet=rc == 0)

    def f_stop_tuning_job(self, u, d1, d2, coin):
        with self.lock:
            running = [j.name for j in self.jobs.values() if j.status == "InProgress"]
        name = self.pick(running, u)
        if not name:
            return
        self.fault("stop_tuning_job", f"hpo stop {name}")
        rc, out = self.hpo_cli("stop", name)
        if rc == 0:
            with self.lock:
                self.jobs[name].stop_ack = now()
        self.say(f"hpo stop {name}: rc={rc} {out[-300:]}", quiet=rc == 0)

    def f_evict(self, u, d1, d2, coin):
        """hpo workers drain --now: what runs on the worker stops and runs again elsewhere, then the
        worker is uncordoned after a while."""
        w = self.pick_worker(u)
        if not w:
            return
        try:  # the id the worker made on its first start (hpo worker without --id)
            with open(os.path.join(self.dir, "work", w.name, "worker-id")) as f:
                wid = f.read().strip()
        except OSError as e:
            self.say(f"evict: no worker id for {w.name} yet ({e})")
            return
        win = self.open_window(self.worker_windows[w.name], "evict")
        self.fault("evict", f"hpo workers drain {wid} --now ({w.name}), uncordon after {2 + d1 * 20:.1f} s")
        rc, out = self.hpo_cli("workers", "drain", wid, "--now", "--reason", "soak eviction", "--timeout",
                               str(int(self.a.grace_s) + 60), timeout=self.a.grace_s + 90)
        self.say(f"hpo workers drain {wid} --now: rc={rc} {out[-300:]}", quiet=rc == 0)
        time.sleep(2 + d1 * 20)
        rc, out = self.hpo_cli("workers", "uncordon", wid)
        self.say(f"hpo workers uncordon {wid}: rc={rc} {out[-300:]}", quiet=rc == 0)
        self.close_window(win)

    def pick_worker(self, u):
        names = [w.name for w in self.live_workers()]
        n = self.pick(names, u)
        return next((w for w in self.workers if w.name == n), None)

    def wait_exit(self, w, seconds):
        try:
            w.p.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.say(f"{w.name} did not exit within {seconds} s of its signal; SIGKILL")
            w.p.kill()
            w.p.wait()

    # ----------------------------------------------------------------------------- monitoring

    def in_coord_window(self, t0, t1):
        with self.lock:
            return any(w[0] <= t1 and t0 <= (w[1] if w[1] is not None else math.inf) for w in self.coord_windows)

    def open_window(self, windows, kind):
        w = [now(), None, kind]
        with self.lock:
            windows.append(w)
        return w

    def close_window(self, w, extra_s=2.0):
        with self.lock:
            w[1] = now() + extra_s

    @staticmethod
    def pressure():
        """The machine's PSI, 'some avg10' of cpu and io (percent of the last 10 s something waited)."""
        out = {}
        for k in ("cpu", "io"):
            try:
                with open(f"/proc/pressure/{k}") as f:
                    out[k] = float(f.readline().split()[1].split("=")[1])
            except (OSError, IndexError, ValueError):
                pass
        return out

    @staticmethod
    def cpu_s(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError, TypeError):
            return None

    @staticmethod
    def threads_snapshot(pid):
        """What the coordinator's threads are doing, from /proc (no ptrace: gdb takes 10 s to
        attach to its ~130 threads): the threads that are running (R), in the disk (D), or in a
        syscall other than the usual waits, with their kernel stack's top frames."""
        waits = {"7", "202", "232", "281", "270", "23", "0", "230", "35"}  # poll futex epoll_wait epoll_pwait pselect6 select read nanosleep clock_nanosleep
        out, idle = [], collections.Counter()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return ["(no process)"]
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                state = open(base + "/stat").read().rsplit(")", 1)[1].split()[0]
                sysc = open(base + "/syscall").read().split()
                wchan = open(base + "/wchan").read().strip()
            except OSError:
                continue
            nr = sysc[0] if sysc else "?"
            if state in ("R", "D") or nr not in waits:
                try:
                    kstack = " < ".join(l.split()[-1].split("+")[0] for l in open(base + "/stack").read().splitlines()[:6])
                except OSError:
                    kstack = ""
                out.append(f"tid {tid}{' (main)' if tid == str(pid) else ''} state {state} syscall {nr} wchan {wchan} "
                           f"kstack {kstack}")
            else:
                idle[f"{state}/syscall {nr}"] += 1
        out.append(f"idle threads: {dict(idle)}")
        return out

    def prober(self):
        """DescribeHyperParameterTuningJob of a job every 2 s: the API latency. A call still out
        after 3 s gets snapshots of the coordinator's threads (threads_snapshot), for evidence."""
        while not self.stop_event.is_set():
            with self.lock:
                names = list(self.jobs)
            if names:
                name = names[self.rng_misc.randrange(len(names))]
                t0 = now()
                res = {"ok": True, "err": ""}

                def call():
                    try:
                        st, r = self.api("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": name},
                                         timeout=60)
                        res["ok"] = st == 200
                        res["err"] = "" if res["ok"] else f"{st} {r}"
                    except OSError as e:
                        res["ok"], res["err"] = False, str(e)

                pid = self.coord.pid()
                cpu0 = self.cpu_s(pid)
                th = threading.Thread(target=call, daemon=True)
                th.start()
                snaps = []
                th.join(3)
                while th.is_alive():
                    if len(snaps) < 6 and not self.in_coord_window(now() - 1, now()):
                        snaps.append((round(now() - t0, 1), self.pressure(), self.threads_snapshot(pid)))
                    th.join(1.5)
                ok, err = res["ok"], res["err"]
                cpu1 = self.cpu_s(pid)
                t1 = now()
                dt = t1 - t0
                excluded = self.in_coord_window(t0 - 1, t1) or not self.coord.alive()
                with self.lock:
                    self.latency.append((t0, dt, ok, excluded))
                    self.lat_f.write(f"{t0:.3f},{dt:.4f},{int(ok)},{int(excluded)}\n")
                if not excluded:
                    if not ok:
                        self.violation("api-error", f"{t0:.0f}", f"DescribeHyperParameterTuningJob {name} failed after "
                                       f"{dt:.2f} s with no coordinator fault in progress: {err}")
                    elif dt > self.a.api_bound_s:
                        with self.lock:
                            recent = [(stamp(t), k, d) for t, k, d in self.faults if t > t0 - 60]
                        self.violation("api-slow", f"{t0:.0f}", f"DescribeHyperParameterTuningJob {name} took {dt:.2f} s "
                                       f"(bound {self.a.api_bound_s} s) with no coordinator fault in progress; "
                                       f"load {os.getloadavg()}", evidence={"faults in the minute before": recent})
                    if snaps:
                        cpu = f"{cpu1 - cpu0:.2f}" if cpu0 is not None and cpu1 is not None else "?"
                        self.slow_calls.append((t0, dt, cpu, snaps))
                        self.say(f"slow DescribeHyperParameterTuningJob {name}: {dt:.2f} s (coordinator CPU meanwhile "
                                 f"{cpu} s, psi {snaps[0][1]}); thread snapshots in slow_calls.log", quiet=True)
                        with open(os.path.join(self.dir, "slow_calls.log"), "a") as f:
                            f.write(f"== {stamp(t0)} {name} {dt:.2f} s, coordinator pid {pid} CPU {cpu} s\n")
                            for at, psi, lines in snaps:
                                f.write(f"  +{at} s psi {psi}\n" + "".join(f"    {x}\n" for x in lines))
            self.stop_event.wait(2)

    def rss_kb(self, pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except (OSError, TypeError):
            pass
        return None

    def db_bytes(self):
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(os.path.join(self.state_dir, "hpo.db" + suffix))
            except OSError:
                pass
        return total

    def follow_events(self):
        """The coordinator's own history: counts by kind, and its CoordinatorStalled events (its
        event loop read nothing for N s) that no SIGSTOP or kill of the soak explains."""
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"{self.url}/hpo/v1/events?after={self.event_cursor}&limit=1000",
                                            timeout=30) as r:
                    page = json.load(r)
            except (OSError, ValueError):
                return
            evs = page.get("events", [])
            for e in evs:
                self.event_kinds[e["kind"]] += 1
                if e["kind"] == "InfraError" and e.get("trial"):
                    m = re.search(r"worker (\S+) was lost", e.get("message", ""))
                    if m:
                        self.lost_workers[e["trial"]].append((float(e["time"]), m.group(1)))
                if e["kind"] == "CoordinatorStalled":
                    m = re.search(r"for ([0-9.]+) s", e["message"])
                    gap = float(m.group(1)) if m else 0.0
                    t = float(e["time"])
                    explained = self.in_coord_window(t - gap, t)
                    self.stalls.append((t, gap, explained))
                    if not explained and gap >= self.a.stall_note_s:
                        psi = [p for (pt, p) in self.psi if t - gap - 10 <= pt <= t + 10]
                        self.note("coordinator-stalled", f"{t:.0f}", f"the coordinator's event loop read no message "
                                  f"for {gap:.1f} s until {stamp(t)} (no SIGSTOP/kill by the soak); machine psi then "
                                  f"{psi}")
            self.event_cursor = max(self.event_cursor, page.get("next", self.event_cursor))
            if len(evs) < 1000:
                return

    def sample_resources(self):
        c = self.rss_kb(self.coord.pid()) if self.coord.alive() else None
        ws = {w.name: self.rss_kb(w.pid()) for w in self.workers if w.alive()}
        db = self.db_bytes()
        t = now()
        with self.lock:
            ntj = sum(len(j.tjs) for j in self.jobs.values())
            self.resources.append((t, c, ws, db))
            self.res_f.write(f"{t:.0f},{c},{db},{ntj}," + ",".join(f"{k}={v}" for k, v in sorted(ws.items())) + "\n")
        if c and c > self.a.rss_bound_mb * 1024:
            self.violation("rss", "coordinator", f"coordinator RSS {c / 1024:.0f} MiB > {self.a.rss_bound_mb} MiB")
        for k, v in ws.items():
            if v and v > self.a.rss_bound_mb * 1024:
                self.violation("rss", k, f"worker {k} RSS {v / 1024:.0f} MiB > {self.a.rss_bound_mb} MiB")
        if db > self.a.db_bound_mb * 1 << 20:
            self.violation("db-size", "db", f"state db {db / (1 << 20):.1f} MiB > {self.a.db_bound_mb} MiB")

    def monitor(self):
        last_res = last_ledger = last_progress = 0
        while not self.stop_event.is_set():
            with self.lock:
                jobs = [j for j in self.jobs.values() if not j.end_checked]
            for j in jobs:
                if self.stop_event.is_set():
                    break
                try:
                    self.check_job(j)
                except (OSError, RuntimeError) as e:
                    self.say(f"check {j.name}: {e}", quiet=True)
            self.watch_processes()
            t = now()
            self.psi.append((t, self.pressure()))
            if t - last_res >= 15:
                last_res = t
                self.sample_resources()
                self.follow_events()
            if t - last_ledger >= 30:
                last_ledger = t
                self.check_ledger(final=False)
            if t - last_progress >= 30:
                last_progress = t
                self.progress()
            self.stop_event.wait(3)

    def watch_processes(self):
        """A coordinator or worker that exited with no fault taking it down: a violation (with its
        exit status and the end of its log), then it is started again so the soak goes on."""
        for p in [self.coord] + self.workers:
            if p.p is None or p.expect_exit or p.p.poll() is None:
                continue
            rc = p.p.poll()
            tail = procs.read(p.log)[-1500:]
            self.violation("process-died", f"{p.name}@{p.starts}", f"{p.name} (pid {p.p.pid}) exited by itself with "
                           f"status {rc} (negative: signal); log tail:\n{tail}")
            if p is self.coord:
                self.restart_coordinator("its own exit")
            else:
                self.restart_worker(p)

    def check_job(self, j, final=False):
        """One consistency pass over a tuning job (see the docstring's list)."""
        tjs1 = self.list_training_jobs(j.name)
        st, d = self.api("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": j.name})
        if st != 200:
            if "ResourceNotFound" in str(d.get("__type", "")):
                self.violation("job-vanished", j.name, f"{j.name} was accepted at {stamp(j.submitted_at)} and is "
                               f"now unknown to DescribeHyperParameterTuningJob: {d}")
            return
        tjs2 = self.list_training_jobs(j.name)
        status = d["HyperParameterTuningJobStatus"]
        t = now()
        with self.lock:
            if j.status in TERMINAL_JOB and status != j.status:
                self.violation("status-regressed", j.name, f"tuning job {j.name} was {j.status}, now {status}")
            if status in TERMINAL_JOB and j.ended_at is None:
                j.ended_at = t
                self.say(f"{j.name} ended {status} after {t - j.submitted_at:.0f} s: "
                         f"{d.get('TrainingJobStatusCounters')} {d.get('FailureReason', '')}")
            j.status = status
            j.counters = d.get("TrainingJobStatusCounters", {})
            seen_before = dict(j.tjs)
            for s in tjs2:
                name, s_status = s["TrainingJobName"], s["TrainingJobStatus"]
                prev = j.tjs.get(name)
                if prev in TERMINAL_TJ and s_status != prev:
                    self.violation("status-regressed", name, f"training job {name} was {prev}, now {s_status}",
                                   evidence=s)
                j.tjs[name] = s_status
                j.tj_info[name] = s
        names2 = {s["TrainingJobName"] for s in tjs2}
        for name in seen_before:
            if name not in names2:
                self.violation("job-vanished", name, f"training job {name} of {j.name} was listed before "
                               f"({seen_before[name]}) and is no longer listed")
        # Counts
        if len(tjs2) > j.max_jobs:
            self.violation("too-many-training-jobs", j.name, f"{j.name} lists {len(tjs2)} training jobs, "
                           f"MaxNumberOfTrainingJobs {j.max_jobs}", evidence=sorted(names2))
        in_progress = sum(1 for s in tjs2 if s["TrainingJobStatus"] in ("InProgress", "Stopping"))
        j.max_in_progress_seen = max(j.max_in_progress_seen, in_progress)
        if in_progress > 2 * j.max_parallel:
            self.violation("too-many-in-progress", j.name, f"{j.name} lists {in_progress} training jobs InProgress, "
                           f"more than 2 x MaxParallelTrainingJobs ({j.max_parallel})",
                           evidence=[s["TrainingJobName"] for s in tjs2 if s["TrainingJobStatus"] == "InProgress"])
        # Counters against the listing, when the listing did not change around the describe.
        key = lambda lst: sorted((s["TrainingJobName"], s["TrainingJobStatus"]) for s in lst)
        if key(tjs1) == key(tjs2):
            by = collections.Counter(s["TrainingJobStatus"] for s in tjs2)
            c = d.get("TrainingJobStatusCounters", {})
            total = sum(c.get(k, 0) for k in ("Completed", "InProgress", "RetryableError", "NonRetryableError", "Stopped"))
            want = {"Completed": by["Completed"], "Stopped": by["Stopped"],
                    "InProgress": by["InProgress"] + by["Stopping"], "Failed": by["Failed"]}
            got = {"Completed": c.get("Completed", 0), "Stopped": c.get("Stopped", 0),
                   "InProgress": c.get("InProgress", 0),
                   "Failed": c.get("RetryableError", 0) + c.get("NonRetryableError", 0)}
            if total != len(tjs2) or want != got:
                self.violation("counters", f"{j.name}@{len(tjs2)}",
                               f"{j.name}: TrainingJobStatusCounters {c} (sum {total}) vs the {len(tjs2)} training "
                               f"jobs listed twice around it {dict(by)}")
        if status in TERMINAL_JOB:
            self.check_ended_job(j, tjs2, final)

    def check_ended_job(self, j, tjs, final):
        pending = [s["TrainingJobName"] for s in tjs if s["TrainingJobStatus"] not in TERMINAL_TJ]
        if pending:
            age = now() - (j.ended_at or now())
            if final or age > 60:
                self.violation("not-terminal", j.name, f"{j.name} is {j.status} since {age:.0f} s but lists training "
                               f"jobs not ended: {pending}",
                               evidence=[s for s in tjs if s["TrainingJobStatus"] not in TERMINAL_TJ])
            if not final:
                return
        for s in tjs:
            name = s["TrainingJobName"]
            left = os.path.join(j.output, name, "output", ".hpo-hosts")
            if s["TrainingJobStatus"] != "Completed":
                if j.instance_count > 1 and os.path.exists(left):  # the last host to hand over removes it
                    # A lost algo-1's folder is removed once the other hosts have exited, after the
                    # job's end: a look right at the end can see it. Left means still there
                    # HANDOVER_GRACE_S later.
                    seen = time.monotonic()
                    while os.path.exists(left) and time.monotonic() - seen < HANDOVER_GRACE_S:
                        time.sleep(0.1)
                    if not os.path.exists(left):
                        self.note("hand-over-late", name, f"{name} read {s['TrainingJobStatus']} while its hosts' "
                                  f"hand-over folder was still there; gone {time.monotonic() - seen:.2f} s later")
                        continue
                    why = [f for r in self.ledger_records(name)
                           for f in self.worker_fault_near(r["worker"], r["start"], r["last"] + 10)]
                    self.follow_events()  # the InfraErrors up to now
                    why += self.lost_worker_faults(name)
                    msg = f"{name} is {s['TrainingJobStatus']} but {left} is still there: {sorted(os.listdir(left))}"
                    if why:
                        self.note("hand-over-left-after-fault", name, msg + f"; fault: {why}")
                    else:
                        self.violation("hand-over-left", name, msg + "; no fault hit its workers",
                                       evidence=sorted(os.listdir(left)))
                continue
            if "FinalHyperParameterTuningJobObjectiveMetric" not in s:
                self.violation("no-objective", name, f"{name} is Completed without "
                               "FinalHyperParameterTuningJobObjectiveMetric", evidence=s)
            model = os.path.join(j.output, name, "output", "model.tar.gz" if j.compressed else "model")
            if not os.path.exists(model):
                self.violation("no-model", name, f"{name} is Completed but {model} does not exist", evidence=s)
                continue
            if j.compressed:
                try:
                    with tarfile.open(model) as tar:
                        members = set(tar.getnames())
                except (OSError, tarfile.TarError) as e:
                    members = {f"unreadable: {e}"}
            else:
                members = {os.path.relpath(os.path.join(d, f), model) for d, _, fs in os.walk(model) for f in fs}
            attempts = {m.split("-")[1] for m in members if re.fullmatch(r"attempt-[^-]+-algo-\d+\.txt", m)}
            if len(attempts) > 1:
                self.violation("model-of-several-attempts", name, f"{name}'s model {model} has files of attempts "
                               f"{sorted(attempts)}", evidence=sorted(members))
            if j.instance_count > 1:
                want = {f"host-algo-{i}.txt" for i in range(1, j.instance_count + 1)}
                if not want <= members:
                    self.violation("model-missing-host", name, f"{name}'s model {model} lacks "
                                   f"{sorted(want - members)}", evidence=sorted(members))
                if os.path.exists(left):
                    self.violation("hand-over-left", name, f"{name} is Completed but {left} is still there",
                                   evidence=sorted(os.listdir(left)))
        j.end_checked = True

    # ----------------------------------------------------------------------------- the ledger

    def read_ledger(self):
        procs_ = {}  # (tj, host, attempt, pid) -> record
        foreign = []
        with open(self.ledger, errors="replace") as f:
            for line in f:
                p = line.split()
                if len(p) < 7:
                    continue
                kind, tj, host, attempt, pid, t, worker = p[:7]
                extra = " ".join(p[7:])
                try:
                    t = float(t)
                except ValueError:
                    continue
                k = (tj, host, attempt, pid)
                r = procs_.get(k)
                if r is None:
                    r = procs_[k] = {"tj": tj, "host": host, "attempt": attempt, "pid": pid, "worker": worker,
                                     "start": None, "last": t, "end": None, "rc": None, "extra": ""}
                if kind == "start":
                    r["start"] = t
                    r["extra"] = extra
                elif kind == "end":
                    r["end"] = t
                    m = re.search(r"rc=(\d+)", extra)
                    r["rc"] = int(m.group(1)) if m else None
                elif kind == "ckpt-foreign":
                    foreign.append((tj, host, attempt, worker, t, extra))
                r["last"] = max(r["last"], t)
                if r["start"] is None:
                    r["start"] = t
        return list(procs_.values()), foreign

    def ledger_records(self, tj):
        try:
            records, _ = self.read_ledger()
        except OSError:
            return []
        return [r for r in records if r["tj"] == tj]

    def worker_name_of(self, worker_id):
        """The soak's name (w3) of the worker that registered as worker_id (vm-...), from its log;
        remembered (a worker keeps its id across restarts), so each log is read once per id."""
        if worker_id in self.worker_names:
            return self.worker_names[worker_id]
        for w in self.workers:
            try:
                with open(w.log, errors="replace") as f:
                    if f" as {worker_id}\n" in f.read():
                        self.worker_names[worker_id] = w.name
                        return w.name
            except OSError:
                pass
        return None

    def lost_worker_faults(self, tj):
        """Faults of the soak on the workers the coordinator reported lost for training job tj, in
        the lease before the report (a lost worker the soak did not kill or pause is no excuse)."""
        out = []
        with self.lock:
            lost = list(self.lost_workers.get(tj, []))
        for t, worker_id in lost:
            name = self.worker_name_of(worker_id)
            if name is not None:
                out += self.worker_fault_near(name, t - self.a.lease_s - 5, t)
        return out

    def worker_fault_near(self, worker, t0, t1):
        with self.lock:
            return [(stamp(w[0]), w[2]) for w in self.worker_windows.get(worker, [])
                    if w[0] <= t1 + 2 and t0 - 2 <= (w[1] if w[1] is not None else math.inf)]

    def check_ledger(self, final):
        try:
            records, foreign = self.read_ledger()
        except OSError as e:
            self.say(f"ledger: {e}")
            return
        for (tj, host, attempt, worker, t, extra) in foreign:
            self.violation("foreign-checkpoint", f"{tj}/{attempt}/{host}",
                           f"{tj} attempt {attempt} {host} on {worker} at {stamp(t)} found another training job's "
                           f"checkpoint: {extra}")
        # A training job without EnableManagedSpotTraining never runs on a --spot worker.
        spot_workers = {w.name for w in self.workers if w.spot}
        for r in records:
            job = self.jobs.get(tuning_job_of(r["tj"]))
            if r["worker"] in spot_workers and job is not None and not job.managed_spot:
                self.violation("spot-without-managed-spot", r["tj"],
                               f"{r['tj']} attempt {r['attempt']} ran on spot worker {r['worker']} at "
                               f"{stamp(r['start'])}, but {job.name} does not enable managed spot training")
        by_attempt = collections.defaultdict(list)
        by_tj = collections.defaultdict(list)
        for r in records:
            by_attempt[(r["tj"], r["host"], r["attempt"])].append(r)
            by_tj[r["tj"]].append(r)
        for key, rs in by_attempt.items():
            if len(rs) < 2:
                continue
            rs.sort(key=lambda r: r["start"])
            for a, b in zip(rs, rs[1:]):
                if b["start"] < a["last"] - 0.5:
                    self.violation("attempt-overlap", "/".join(key),
                                   f"{key[0]} {key[1]} attempt {key[2]} ran in two processes at once: pid {a['pid']} on "
                                   f"{a['worker']} {stamp(a['start'])}-{stamp(a['last'])} and pid {b['pid']} on "
                                   f"{b['worker']} from {stamp(b['start'])}", evidence=[a, b])
                else:
                    self.violation("attempt-rerun", "/".join(key),
                                   f"{key[0]} {key[1]} attempt {key[2]} was started twice: pid {a['pid']} on "
                                   f"{a['worker']} {stamp(a['start'])}-{stamp(a['last'])} (rc {a['rc']}) and pid "
                                   f"{b['pid']} on {b['worker']} at {stamp(b['start'])}", evidence=[a, b])
        # Attempts of one training job overlapping (same host): a note when a fault explains it.
        for tj, rs in by_tj.items():
            rs = sorted(rs, key=lambda r: r["start"])
            for i, a in enumerate(rs):
                for b in rs[i + 1:]:
                    if b["host"] != a["host"] or b["attempt"] == a["attempt"] or b["start"] >= a["last"] - 0.5:
                        continue
                    why = self.worker_fault_near(a["worker"], a["start"], a["last"])
                    key = f"{tj}/{a['host']}/{a['attempt']}+{b['attempt']}"
                    msg = (f"{tj} {a['host']}: attempt {a['attempt']} (pid {a['pid']} on {a['worker']}, "
                           f"{stamp(a['start'])}-{stamp(a['last'])}, {a['extra']}) still ran when attempt "
                           f"{b['attempt']} started (pid {b['pid']} on {b['worker']}, {stamp(b['start'])})")
                    if why:
                        self.note("attempts-overlap-after-fault", key, msg + f"; fault on {a['worker']}: {why}")
                    elif final or now() - b["start"] > 30:
                        self.violation("training-job-overlap", key, msg + "; no fault hit the older attempt's worker",
                                       evidence=[a, b])
        # A training job started again after an attempt whose trainers all exited 0: a note when a
        # fault hit that attempt's worker near its end (killed before it reported, SIGTERM racing the
        # exit), else a violation.
        for tj, rs in by_tj.items():
            attempts = collections.defaultdict(list)
            for r in rs:
                attempts[r["attempt"]].append(r)
            for a, ars in attempts.items():
                if not all(r["rc"] == 0 for r in ars):
                    continue
                end = max(r["last"] for r in ars)
                later = [r for r in rs if r["attempt"] != a and r["start"] > end]
                if not later:
                    continue
                why = [f for r in ars for f in self.worker_fault_near(r["worker"], end - 5, end + 5)]
                key = f"{tj}/{a}"
                msg = (f"{tj}: attempt {a} exited 0 on {sorted((r['host'], r['worker']) for r in ars)} by {stamp(end)}, "
                       f"and attempt {later[0]['attempt']} started at {stamp(later[0]['start'])} on {later[0]['worker']}")
                if why:
                    self.note("rerun-after-exit0", key, msg + f"; fault: {why}")
                else:
                    self.violation("rerun-after-exit0", key, msg + "; no fault hit its workers", evidence=ars + later)
        # Per tuning job: trainers alive at once vs MaxParallelTrainingJobs.
        with self.lock:
            jobs = dict(self.jobs)
        per_job = collections.defaultdict(list)
        for r in records:
            per_job[tuning_job_of(r["tj"])].append(r)
        for jn, rs in per_job.items():
            j = jobs.get(jn)
            if not j:
                continue
            events = []
            for r in rs:
                if r["last"] <= r["start"]:
                    continue  # no time alive (a resumed attempt with nothing left to do)
                if self.worker_fault_near(r["worker"], r["start"], r["last"]):
                    continue  # a stalled/killed worker's trainers may legitimately overlap their retry
                events.append((r["start"], 1, r["tj"]))
                events.append((r["last"], -1, r["tj"]))
            events.sort(key=lambda e: (e[0], e[1]))  # at one instant, ends before starts
            live = collections.Counter()  # training job -> its processes alive (gang hosts: several)
            worst = (0, None, [])
            for t, delta, tj in events:
                live[tj] += delta
                if live[tj] == 0:
                    del live[tj]
                if len(live) > worst[0]:
                    worst = (len(live), t, sorted(live))
            if worst[0] > j.max_parallel:
                self.violation("too-many-running", jn, f"{jn}: {worst[0]} training jobs' trainers alive at "
                               f"{stamp(worst[1])}, MaxParallelTrainingJobs {j.max_parallel}", evidence=worst[2])
        # Against the API: Completed jobs, stops.
        with self.lock:
            infos = {tj: (j, s) for j in jobs.values() for tj, s in j.tj_info.items()}
            stops = dict(self.tj_stops)
        for tj, rs in by_tj.items():
            info = infos.get(tj)
            if not info:
                continue
            j, s = info
            if s["TrainingJobStatus"] == "Completed":
                end = s.get("TrainingEndTime")
                if isinstance(end, (int, float)):
                    late = [r for r in rs if r["start"] > end + 2]
                    if late:
                        self.violation("ran-after-completed", tj, f"{tj} Completed at {stamp(end)} but a trainer "
                                       f"started after: {[(r['attempt'], r['worker'], stamp(r['start'])) for r in late]}",
                                       evidence={"summary": s, "late": late})
                hosts = {r["host"] for r in rs}
                attempts = collections.defaultdict(dict)
                for r in rs:
                    attempts[r["attempt"]][r["host"]] = r["rc"]
                clean = [a for a, h in attempts.items() if set(h) == hosts and all(rc == 0 for rc in h.values())]
                if not clean and (final or now() - (end or 0) > 10):
                    self.violation("completed-without-exit0", tj, f"{tj} is Completed but no attempt's trainers "
                                   f"exited 0 on every host {sorted(hosts)}: {dict(attempts)}", evidence=rs)
            ack = stops.get(tj)
            if ack is None and j.stop_ack is not None:
                ack = j.stop_ack
            if ack is not None:
                late = [r for r in rs if r["start"] > ack + 10]
                if late:
                    self.violation("started-after-stop", tj, f"{tj}: stop acknowledged at {stamp(ack)}, a trainer started "
                                   f"after: {[(r['attempt'], r['worker'], stamp(r['start'])) for r in late]}",
                                   evidence=late)
        for jn, j in jobs.items():
            if j.stop_ack is None:
                continue
            late = [r for r in per_job.get(jn, []) if r["start"] > j.stop_ack + 10 and r["attempt"] == "1"]
            if late:
                self.violation("started-after-stop", jn, f"{jn}: hpo stop acknowledged at {stamp(j.stop_ack)}, new "
                               f"training jobs started after: {sorted({r['tj'] for r in late})}", evidence=late)
        self.ledger_summary = {
            "processes": len(records),
            "attempts": len(by_attempt),
            "training_jobs": len(by_tj),
            "exit0": sum(1 for r in records if r["rc"] == 0),
            "failed_on_purpose": sum(1 for r in records if r["rc"] == 1),
            "signalled": sum(1 for r in records if r["rc"] is not None and r["rc"] > 128),
            "vanished": sum(1 for r in records if r["rc"] is None and (final or now() - r["last"] > 10)),
            "resumed": sum(1 for r in records if "resume=0" not in r["extra"] and "resume=" in r["extra"]),
        }

    def check_stops(self):
        with self.lock:
            stopped = [j for j in self.jobs.values() if j.stop_ack is not None]
            tj_stops = dict(self.tj_stops)
            infos = {tj: s for j in self.jobs.values() for tj, s in j.tj_info.items()}
        for j in stopped:
            if j.status not in ("Stopped", "Completed", "Failed"):
                self.violation("stop-not-stopped", j.name, f"{j.name}: hpo stop acknowledged at {stamp(j.stop_ack)}, "
                               f"status now {j.status}")
            elif j.status != "Stopped" and (j.ended_at or 0) > j.stop_ack + 5:
                self.note("stop-ended-otherwise", j.name, f"{j.name}: stopped at {stamp(j.stop_ack)}, ended {j.status}")
        for tj, ack in tj_stops.items():
            s = infos.get(tj)
            # A training job whose program had ended before the stop was acknowledged (its end
            # reached the coordinator just after the request) ended as it did: nothing to note.
            end = s.get("TrainingEndTime") if s else None
            if isinstance(end, (int, float)) and end <= ack:
                continue
            if s and s["TrainingJobStatus"] in ("Completed", "Failed"):
                self.note("stop-ended-otherwise", tj, f"{tj}: StopTrainingJob acknowledged at {stamp(ack)}, ended "
                          f"{s['TrainingJobStatus']} at {stamp(s.get('TrainingEndTime') or 0)}")
        for tj, ack in tj_stops.items():
            s = infos.get(tj)
            if s and s["TrainingJobStatus"] not in TERMINAL_TJ:
                self.violation("stop-not-stopped", tj, f"{tj}: StopTrainingJob acknowledged at {stamp(ack)}, "
                               f"status now {s['TrainingJobStatus']}", evidence=s)

    # ----------------------------------------------------------------------------- reporting

    def progress(self):
        with self.lock:
            jobs = list(self.jobs.values())
            nfaults = len(self.faults)
            nviol = len(self.violations)
        ended = sum(1 for j in jobs if j.status in TERMINAL_JOB)
        tj = collections.Counter(s for j in jobs for s in j.tjs.values())
        lat = [x[1] for x in self.latency if x[2] and not x[3]]
        c = self.resources[-1] if self.resources else None
        self.say(f"progress [{self.phase}]: jobs {len(jobs)} submitted, {ended} ended; training jobs "
                 f"{dict(tj)}; faults {nfaults}; violations {nviol}; api p50 {pct(lat, .5):.3f} s max "
                 f"{max(lat) if lat else float('nan'):.3f} s; coordinator rss "
                 f"{(c[1] or 0) / 1024 if c else 0:.0f} MiB, db {(c[3] if c else 0) / (1 << 20):.1f} MiB; "
                 f"load {os.getloadavg()[0]:.1f}")

    def summary(self):
        with self.lock:
            jobs = list(self.jobs.values())
        lines = []
        add = lines.append
        add("=" * 100)
        add(f"hpo soak summary  seed {self.seed}  minutes {self.a.minutes}  workers {self.a.workers}  "
            f"lease {self.a.lease_s:.0f} s  hpo {self.hpo}")
        add(f"run directory: {self.dir}")
        add(f"wall time {now() - self.t0:.0f} s (drain {self.drain_s:.0f} s); load average now {os.getloadavg()}")
        by_status = collections.Counter(j.status for j in jobs)
        by_strategy = collections.Counter(j.strategy for j in jobs)
        add(f"tuning jobs: {len(jobs)} submitted {dict(by_strategy)}; ended {dict(by_status)}")
        feats = collections.Counter(f.split("=")[0] for j in jobs for f in j.features[1:])
        add(f"  features: {dict(feats)}")
        tj = collections.Counter(s for j in jobs for s in j.tjs.values())
        add(f"training jobs: {sum(tj.values())} {dict(tj)}")
        add(f"trainer processes (ledger): {self.ledger_summary}")
        add(f"faults: {len(self.faults)} {dict(self.fault_counts)}")
        good = [x[1] for x in self.latency if x[2] and not x[3]]
        allok = [x[1] for x in self.latency if x[2]]
        errs = sum(1 for x in self.latency if not x[2])
        errs_bad = sum(1 for x in self.latency if not x[2] and not x[3])
        add(f"API DescribeHyperParameterTuningJob, outside coordinator faults: n {len(good)} p50 {pct(good, .5):.3f} s "
            f"p99 {pct(good, .99):.3f} s max {max(good) if good else float('nan'):.3f} s")
        add(f"  all answered calls: n {len(allok)} p50 {pct(allok, .5):.3f} s p99 {pct(allok, .99):.3f} s max "
            f"{max(allok) if allok else float('nan'):.3f} s; failed calls {errs} ({errs_bad} outside coordinator faults)")
        if self.resources:
            cr = [r[1] for r in self.resources if r[1]]
            wr = [v for r in self.resources for v in r[2].values() if v]
            db = [r[3] for r in self.resources]
            q = max(1, len(self.resources) // 4)
            add(f"RSS coordinator: first {cr[0] / 1024:.0f} MiB, peak {max(cr) / 1024:.0f} MiB, last {cr[-1] / 1024:.0f} MiB;"
                f" workers: peak {max(wr) / 1024:.0f} MiB" if cr and wr else "RSS: no samples")
            if self.rss_fresh:
                add(f"RSS coordinator at the end {self.rss_fresh[0] / 1024:.0f} MiB vs started again on the same state "
                    f"{self.rss_fresh[1] / 1024:.0f} MiB ({self.rss_fresh[2]} training jobs)")
            add(f"state db (hpo.db+wal+shm): first {db[0] / (1 << 20):.2f} MiB, peak {max(db) / (1 << 20):.2f} MiB, last "
                f"{db[-1] / (1 << 20):.2f} MiB")
            marks = self.resources[::q]
            add("  over time: " + "; ".join(f"+{(r[0] - self.t0) / 60:.0f}m coord {(r[1] or 0) / 1024:.0f}MiB "
                                           f"workers<= {max([v for v in r[2].values() if v] or [0]) / 1024:.0f}MiB "
                                           f"db {r[3] / (1 << 20):.1f}MiB" for r in marks))
        add(f"{'job':32} {'strategy':9} {'status':9} {'tjs':>4} {'max':>4} {'par':>3}  counters / features")
        for j in jobs:
            c = j.counters
            add(f"{j.name:32} {j.strategy:9} {str(j.status):9} {len(j.tjs):4} {j.max_jobs:4} {j.max_parallel:3}  "
                f"C{c.get('Completed', 0)} I{c.get('InProgress', 0)} S{c.get('Stopped', 0)} "
                f"F{c.get('RetryableError', 0) + c.get('NonRetryableError', 0)}  {' '.join(j.features[1:])}"
                + ("  [stopped by soak]" if j.stop_ack else ""))
        unexplained = [g for (_, g, e) in self.stalls if not e]
        add(f"coordinator CoordinatorStalled events: {len(self.stalls)}, {len(unexplained)} not caused by the soak "
            f"(max {max(unexplained) if unexplained else 0:.1f} s, >= 5 s: {sum(1 for g in unexplained if g >= 5)}); "
            f"slow API calls with thread snapshots: {len(self.slow_calls)} (slow_calls.log)")
        add(f"coordinator events: {dict(self.event_kinds.most_common())}")
        add(f"notes: {len(self.notes)} " + str(dict(collections.Counter(k for (k, _) in self.notes))))
        add(f"VIOLATIONS: {len(self.violations)} " + str(dict(collections.Counter(k for (k, _) in self.violations))))
        for (kind, key), (t, _, msg) in self.violations.items():
            add(f"  [{stamp(t)}] {kind}: {msg[:400]}")
        add(f"replay: bash scripts/soak.sh --seed {self.seed} --minutes {self.a.minutes} --workers {self.a.workers}"
            f" --hpo {self.hpo}")
        add(f"logs: {self.dir}")
        text = "\n".join(lines)
        with open(os.path.join(self.dir, "summary.txt"), "w") as f:
            f.write(text + "\n")
        print(text, flush=True)

    # ----------------------------------------------------------------------------- main

    def run(self):
        self.say(f"soak seed {self.seed}, {self.a.minutes} min ({self.drain_s:.0f} s drain), {self.a.workers} workers, "
                 f"hpo {self.hpo}, run directory {self.dir}")
        self.setup()
        self.phase = "faults"
        threads = [threading.Thread(target=f, name=f.__name__, daemon=True)
                   for f in (self.submitter, self.injector, self.prober, self.monitor)]
        for t in threads:
            t.start()
        while now() < self.active_end:
            self.pump(1)
        self.phase = "drain"
        self.say(f"drain: no more faults or jobs; every job must end within {self.drain_s + self.a.end_grace_s:.0f} s")
        while threads[0].is_alive() or threads[1].is_alive():  # the fault in progress finishes, with its restart
            self.pump(0.5)
        for w in self.workers:  # everything up again
            if not w.alive():
                self.restart_worker(w)
        if not self.coord.alive():
            self.restart_coordinator("drain")
        deadline = now() + self.drain_s + self.a.end_grace_s
        while now() < deadline:
            with self.lock:
                open_ = [j for j in self.jobs.values() if j.status not in TERMINAL_JOB]
            if not open_ and now() >= self.t0 + self.total_s - 5:
                break
            if not open_ and now() > self.active_end + 30:
                break
            self.pump(2)
        self.pump(5)  # the last training jobs' ends
        self.phase = "final"
        self.stop_event.set()
        for t in threads[2:]:
            deadline = now() + 90
            while t.is_alive() and now() < deadline:
                self.pump(0.5)
        self.final_checks()
        self.summary()
        return 1 if self.violations else 0

    def final_checks(self):
        self.say("final checks")
        self.sample_resources()
        with self.lock:
            jobs = list(self.jobs.values())
        for j in jobs:
            try:
                self.check_job(j, final=True)
            except (OSError, RuntimeError) as e:
                self.violation("api-error", f"final-{j.name}", f"final check of {j.name}: {e}")
            if j.status not in TERMINAL_JOB:
                try:
                    _, d = self.api("DescribeHyperParameterTuningJob", {"HyperParameterTuningJobName": j.name})
                except OSError as e:
                    d = str(e)
                self.violation("job-not-ended", j.name, f"{j.name} ({' '.join(j.features)}) is still {j.status} "
                               f"{now() - self.active_end:.0f} s after faults stopped",
                               evidence={"describe": d, "training_jobs": {k: v for k, v in j.tjs.items()
                                                                           if v not in TERMINAL_TJ}})
        self.check_ledger(final=True)
        self.check_stops()
        self.check_notifications(jobs)
        self.follow_events()
        self.fresh_rss_check()
        with self.lock:
            self.ledger_summary["stops_of_training_jobs"] = len(self.tj_stops)

    def fresh_rss_check(self):
        """The coordinator's RSS now against a coordinator freshly started on the same state: what
        the live process holds beyond its data (a leak, or fragmentation) over the run."""
        live = self.rss_kb(self.coord.pid())
        self.coord.expect_exit = True
        os.kill(self.coord.pid(), signal.SIGKILL)
        self.coord.p.wait()
        if not self.restart_coordinator("the final RSS check"):
            self.say("the final RSS check: the coordinator did not start again")
            return
        self.coord.expect_exit = False
        time.sleep(10)
        fresh = self.rss_kb(self.coord.pid())
        with self.lock:
            ntj = sum(len(j.tjs) for j in self.jobs.values())
        self.rss_fresh = (live, fresh, ntj)
        self.say(f"coordinator RSS at the end {live / 1024:.0f} MiB; started again on the same state "
                 f"({ntj} training jobs) {fresh / 1024:.0f} MiB")

    def cleanup(self):
        procs.kill_all()
        # Trainers a wrapper left (grandchildren in their own sessions) and that name our work dirs.
        me = os.path.join(self.dir, "work")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if any(e.startswith(b"HPO_WORKER_DIR=" + me.encode()) for e in env):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--seed", type=int, default=None, help="default: from the time, printed")
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--hpo", default=None, help="the hpo binary (default $HPO_BINARY, else build/cli/hpo)")
    ap.add_argument("--dir", default=None, help="run directory (default /tmp/hpo-soak-SEED-TIME)")
    ap.add_argument("--lease-s", type=float, default=10.0, help="the coordinator's --lease-ms, in seconds")
    ap.add_argument("--grace-s", type=int, default=20, help="the coordinator's --grace")
    ap.add_argument("--fault-mean-s", type=float, default=20.0, help="mean time between faults")
    ap.add_argument("--max-active-jobs", type=int, default=4, help="tuning jobs in progress at once")
    ap.add_argument("--strategies", default="all",
                    help="comma-separated strategies of the jobs (default all: Random,Bayesian,Hyperband,Grid)")
    ap.add_argument("--coordinator-env", action="append", default=[], metavar="NAME=VALUE",
                    help="an environment variable for the coordinator (repeatable), e.g. MALLOC_ARENA_MAX=2")
    ap.add_argument("--faults", default="all",
                    help=f"comma-separated fault kinds to inject (default all: {', '.join(FAULT_KINDS)}; 'none' for "
                         "none); a subset draws another schedule from the same seed")
    ap.add_argument("--drain-minutes", type=float, default=None)
    ap.add_argument("--end-grace-s", type=float, default=300.0, help="after the drain, before job-not-ended")
    ap.add_argument("--api-bound-s", type=float, default=10.0)
    ap.add_argument("--stall-note-s", type=float, default=5.0,
                    help="a CoordinatorStalled event this long that the soak did not cause is noted")
    ap.add_argument("--rss-bound-mb", type=float, default=1024)
    ap.add_argument("--db-bound-mb", type=float, default=1024)
    a = ap.parse_args()
    if a.seed is None:
        a.seed = int(time.time()) % 1000000
    a.hpo = os.path.abspath(a.hpo) if a.hpo else procs.find("HPO_BINARY", "build/cli/hpo")
    if not os.access(a.hpo, os.X_OK):
        print(f"no hpo binary at {a.hpo} (--hpo PATH or HPO_BINARY)", file=sys.stderr)
        return 2
    if a.strategies != "all" and not set(a.strategies.split(",")) <= {"Random", "Bayesian", "Hyperband", "Grid"}:
        print("--strategies: a comma-separated subset of Random,Bayesian,Hyperband,Grid", file=sys.stderr)
        return 2
    if a.faults not in ("all", "none") and not set(a.faults.split(",")) <= set(FAULT_KINDS):
        print("--faults: 'all', 'none' or a comma-separated subset of the kinds --help lists", file=sys.stderr)
        return 2
    if a.workers < 2:
        print("--workers must be at least 2 (gangs need two)", file=sys.stderr)
        return 2
    a.dir = os.path.abspath(a.dir or f"/tmp/hpo-soak-{a.seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(a.dir, exist_ok=True)
    print(f"soak: seed {a.seed} (replay with --seed {a.seed}); logs in {a.dir}", flush=True)
    s = Soak(a)
    procs.cleanup_on_exit(lambda: a.dir)
    try:
        rc = s.run()
    except RuntimeError as e:
        print(f"soak: {e}; logs in {a.dir}", file=sys.stderr)
        rc = 3
    except KeyboardInterrupt:
        print(f"soak: interrupted; logs in {a.dir}", file=sys.stderr)
        rc = 130
    finally:
        s.stop_event.set()
        s.cleanup()
    print(f"soak: exit {rc}; logs in {a.dir}", flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
