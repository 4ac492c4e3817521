#!/usr/bin/python3
"""The web dashboard against real processes on loopback, looked at by a real browser.

Starts (HPO_BINARY, default build/cli/hpo; HPO_QUADRATIC the `quadratic` trainer):
  * an open coordinator (`hpo coordinator --http 127.0.0.1:PORT`, no signatures on loopback) with
    one worker, and runs a Random job of a few training jobs to the end;
  * a coordinator that requires AWS Signature V4 (`--http 0.0.0.0:PORT --credentials FILE`) with
    a job submitted by `hpo submit` and no worker, so it waits;
  * `hpo dashboard` in front of the signed one, once with the right keys and once with a wrong
    secret.
Checks: the pages over plain HTTP (redirect, list, job page with one point per objective and one
learning curve per training job, training job page with its log); headless Chromium loads the
job page, its DOM has the charts, a link leads to a training job's page, and a screenshot is a
PNG; a browser's unsigned request to the signed coordinator is refused with a page that says to
run `hpo dashboard`; through `hpo dashboard` the same pages work, and with a wrong secret the page
names the signature error; bad paths are 404 pages with nothing of the path unescaped.

Plain unittest: `/usr/bin/python3 tests/integration/dashboard_test.py [-v]`.
Exit 0 passed, 1 failed, 77 Chromium missing (scripts/install-deps.sh installs it).
"""

import csv
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from procs import cleanup_on_exit, find, free_port, kill_all, read, spawn

HPO = find("HPO_BINARY", "build/cli/hpo")
QUADRATIC = find("HPO_QUADRATIC", "build/examples/trainers/quadratic")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
KEEP = os.environ.get("HPO_KEEP_TMP", "") not in ("", "0")
if not CHROMIUM:
    print("SKIP: chromium is not installed (apt-get install chromium; scripts/install-deps.sh does)", file=sys.stderr)
    sys.exit(77)

KEY_ID, SECRET = "AKIAHPODASHBOARD0001", "dashboard/Secret+Key/0123456789abcdefgh"
JOB, WAITING_JOB = "dash-main", "dash-signed"
TRIALS, EPOCHS = 4, 5


def get(url):
    """(status, headers, body) of a GET, without following redirects."""
    m = re.match(r"http://([^/]+)(/.*)", url)
    conn = http.client.HTTPConnection(m.group(1), timeout=30)
    conn.request("GET", m.group(2))
    r = conn.getresponse()
    body = r.read().decode("utf-8", "replace")
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def wait_http(url, deadline_s, what):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url} within {deadline_s} s")


def job_request(name, output, epochs):
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": TRIALS, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {
                "ContinuousParameterRanges": [{"Name": "x", "MinValue": "-2", "MaxValue": "2"}],
                "CategoricalParameterRanges": [{"Name": "tag", "Values": ["<b>bold</b>", "a&b"]}],
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"epochs": str(epochs), "sleep_ms": "30"},
            "AlgorithmSpecification": {
                "TrainingImage": "quadratic",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-dashboard-test",
            "OutputDataConfig": {"S3OutputPath": "file://" + output},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }


def chromium(args, tmp):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"] + args
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path, env in ((HPO, "HPO_BINARY"), (QUADRATIC, "HPO_QUADRATIC")):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest(f"{path} is not built (set {env})")
        cls.tmp = tempfile.mkdtemp(prefix="hpo-dashboard-")
        cleanup_on_exit(lambda: cls.tmp)
        for var in list(os.environ):
            if var.startswith("AWS_") or var.lower() in ("http_proxy", "https_proxy", "all_proxy"):
                del os.environ[var]
        os.environ.update({"AWS_SHARED_CREDENTIALS_FILE": os.path.join(cls.tmp, "none"),
                           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
        cls.out = os.path.join(cls.tmp, "output")

        # The open coordinator, one worker, one job run to its end.
        zmq, http = free_port(), free_port()
        cls.url = f"http://127.0.0.1:{http}"
        cls.coordinator_log = os.path.join(cls.tmp, "coordinator.log")
        spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{zmq}", "--http", f"127.0.0.1:{http}",
               "--state-dir", os.path.join(cls.tmp, "state"), "--lease-ms", "3000", "--grace", "1"],
              cls.coordinator_log)
        spawn([HPO, "worker", "--connect", f"tcp://127.0.0.1:{zmq}", "--id", "w1", "--slots", "2",
               "--work-dir", os.path.join(cls.tmp, "w1"), "--image", f"quadratic={QUADRATIC}"],
              os.path.join(cls.tmp, "worker.log"))
        wait_http(cls.url + "/hpo/v1/health", 30, "the coordinator")
        req = urllib.request.Request(cls.url + "/", data=json.dumps(job_request(JOB, cls.out, EPOCHS)).encode(),
                                     headers={"X-Amz-Target": "SageMaker.CreateHyperParameterTuningJob",
                                              "Content-Type": "application/x-amz-json-1.1"})
        urllib.request.urlopen(req, timeout=30).read()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, _, body = get(cls.url + f"/hpo/v1/jobs/{JOB}")
            if status == 200 and json.loads(body).get("status", {}).get("hyperParameterTuningJobStatus") in (
                    "Completed", "Failed", "Stopped"):
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{JOB} did not end in 180 s; coordinator log:\n{read(cls.coordinator_log)[-3000:]}")

        # The signed coordinator: a job that waits (no worker).
        szmq, shttp = free_port(), free_port()
        cls.signed_url = f"http://127.0.0.1:{shttp}"
        cls.credentials = os.path.join(cls.tmp, "credentials")
        with open(cls.credentials, "w") as f:
            f.write(f"[team]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n")
        spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{szmq}", "--http", f"0.0.0.0:{shttp}",
               "--credentials", cls.credentials, "--state-dir", os.path.join(cls.tmp, "signed-state")],
              os.path.join(cls.tmp, "signed-coordinator.log"))
        wait_http(cls.signed_url + "/hpo/v1/health", 30, "the signed coordinator")
        cls.good_env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET)
        spec = os.path.join(cls.tmp, "waiting.json")
        with open(spec, "w") as f:
            json.dump(job_request(WAITING_JOB, cls.out, EPOCHS), f)
        r = subprocess.run([HPO, "submit", spec, "--coordinator", cls.signed_url], env=cls.good_env,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"hpo submit to the signed coordinator failed: {r.stderr}")

    @classmethod
    def tearDownClass(cls):
        kill_all()
        if not KEEP:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def trials(self):
        _, _, body = get(self.url + f"/ui/jobs/{JOB}")
        return sorted(set(re.findall(rf'href="/ui/trials/({JOB}-\d{{3}}-[0-9a-f]{{8}})"', body)))

    # ---- the open coordinator over HTTP -----------------------------------------------------------

    def test_1_pages_over_http(self):
        status, headers, _ = get(self.url + "/")
        self.assertEqual(status, 302)
        self.assertEqual(headers.get("location"), "/ui/")
        status, headers, body = get(self.url + "/ui/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn(f'<a href="/ui/jobs/{JOB}">{JOB}</a>', body)
        self.assertIn("Completed", body)

        status, _, body = get(self.url + f"/ui/jobs/{JOB}")
        self.assertEqual(status, 200, body)
        # One point per training job on the objective chart and on each of the two hyperparameters'.
        self.assertEqual(body.count('class="pt"'), 3 * TRIALS, body)
        self.assertEqual(body.count('class="curve"'), TRIALS, "one learning curve per training job")
        self.assertIn("&lt;b&gt;bold&lt;/b&gt;", body)
        self.assertNotIn("<b>bold", body)
        self.assertEqual(len(self.trials()), TRIALS)

        trial = self.trials()[0]
        status, _, body = get(self.url + f"/ui/trials/{trial}")
        self.assertEqual(status, 200)
        self.assertIn("loss=", body, "the log's lines")
        self.assertIn(f'<a href="/ui/jobs/{JOB}">{JOB}</a>', body)

        curves = json.loads(get(self.url + f"/hpo/v1/curves?job={JOB}")[2])
        self.assertEqual(curves["MetricName"], "loss")
        self.assertEqual(sorted(curves["Curves"]), self.trials())
        for name, values in curves["Curves"].items():
            self.assertEqual(len(values), EPOCHS, name)
        status, _, body = get(self.url + "/hpo/v1/curves?job=nope")
        self.assertEqual((status, json.loads(body)["__type"]), (400, "ResourceNotFound"))

    def test_1b_training_jobs_as_csv(self):
        status, headers, body = get(self.url + f"/ui/jobs/{JOB}/trials.csv")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(body, newline="")))
        self.assertEqual(len(rows), TRIALS)
        self.assertEqual(sorted(r["TrainingJobName"] for r in rows), self.trials())
        # By name, as `hpo trials -o csv` and the SDK's analytics list them
        # (ListTrainingJobsForHyperParameterTuningJob's default SortBy is Name): by creation time, a
        # training job queued ahead came before an older one, and the two tables differed in order.
        self.assertEqual([r["TrainingJobName"] for r in rows], self.trials(), "by name")
        for r in rows:
            self.assertEqual(r["TrainingJobStatus"], "Completed")
            self.assertLessEqual(abs(float(r["x"])), 2)
            self.assertIn(r["tag"], ("<b>bold</b>", "a&b"))
            self.assertGreaterEqual(float(r["FinalObjectiveValue"]), 0)
            self.assertGreaterEqual(float(r["TrainingElapsedTimeSeconds"]), 0)
            self.assertRegex(r["TrainingStartTime"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\+00:00$")
        cli = subprocess.run([HPO, "trials", JOB, "-o", "csv", "--coordinator", self.url], capture_output=True,
                             text=True, timeout=30)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertEqual(list(csv.reader(io.StringIO(cli.stdout, newline=""))),
                         list(csv.reader(io.StringIO(body, newline=""))), "hpo trials -o csv: the same table, in order")

    def test_1c_compare_the_ticked_jobs(self):
        # The jobs page's form sends each ticked job as jobs=NAME; the server joins repeated names.
        _, _, body = get(self.url + "/ui/")
        self.assertIn('<form method="get" action="/ui/compare">', body)
        self.assertIn(f'<input type="checkbox" name="jobs" value="{JOB}"', body)
        status, _, body = get(self.url + f"/ui/compare?jobs={JOB}&jobs={JOB}")
        self.assertEqual(status, 200, body)
        self.assertIn("Comparing 1 tuning job<", body, "a name ticked twice is one job")
        self.assertIn(f"Each judged by its first {TRIALS} training jobs", body)
        self.assertEqual(body.count('class="job-best"'), 1, "one best-so-far line")
        self.assertIn(f"hpo compare {JOB}", body)
        status, _, body = get(self.url + "/ui/compare")
        self.assertEqual(status, 400, body)
        self.assertIn("tick two or more tuning jobs", body)
        status, _, body = get(self.url + f"/ui/compare?jobs={JOB},nope")
        self.assertEqual(status, 404, body)
        r = chromium(["--dump-dom", self.url + f"/ui/compare?jobs={JOB}"], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn('class="job-best"', r.stdout)

    def test_2_bad_paths_are_not_found_pages(self):
        for path in ("/ui/jobs/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "/ui/jobs/nope", "/ui/trials/x-1",
                     "/ui/nothing-here"):
            status, headers, body = get(self.url + path)
            self.assertEqual(status, 404, path)
            self.assertTrue(headers["content-type"].startswith("text/html"), path)
            self.assertNotIn("<script", body, path)
            self.assertIn('href="/ui/"', body, path)

    # ---- a real browser -----------------------------------------------------------------------------

    def test_3_chromium_renders_the_charts_and_follows_a_link(self):
        r = chromium(["--dump-dom", self.url + f"/ui/jobs/{JOB}"], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        dom = r.stdout
        self.assertGreaterEqual(dom.count("<svg"), 4, "objective, curves and one chart per hyperparameter")
        self.assertEqual(dom.count('class="pt"'), 3 * TRIALS)
        link = re.search(r'href="(/ui/trials/[^"]+)"', dom).group(1)
        r = chromium(["--dump-dom", self.url + link], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn("Status history", r.stdout)
        png = os.path.join(self.tmp, "job.png")
        r = chromium([f"--screenshot={png}", "--window-size=1280,1600", self.url + f"/ui/jobs/{JOB}"], self.tmp)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        with open(png, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 20000, "a screenshot with charts in it, not a blank page")

    # ---- a coordinator that requires signatures, and hpo dashboard ----------------------------------

    def test_4_a_signed_coordinator_tells_a_browser_to_run_hpo_dashboard(self):
        status, headers, body = get(self.signed_url + "/ui/")
        self.assertEqual(status, 403)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn("hpo dashboard --coordinator", body)
        self.assertIn("MissingAuthenticationTokenException", body)

    def dashboard(self, env, port):
        log = os.path.join(self.tmp, f"dashboard-{port}.log")
        p = spawn([HPO, "dashboard", "--coordinator", self.signed_url, "--listen", f"127.0.0.1:{port}"], log, env=env)
        wait_http(f"http://127.0.0.1:{port}/ui/", 30, "hpo dashboard")
        return p, log

    def test_5_hpo_dashboard_signs_for_the_browser(self):
        port = free_port()
        p, log = self.dashboard(self.good_env, port)
        base = f"http://127.0.0.1:{port}"
        status, _, body = get(base + "/ui/")
        self.assertEqual(status, 200, body)
        self.assertIn(f'<a href="/ui/jobs/{WAITING_JOB}">{WAITING_JOB}</a>', body)
        self.assertIn("coordinator " + self.signed_url, body, "the header names the coordinator shown")
        status, _, body = get(base + f"/ui/jobs/{WAITING_JOB}")
        self.assertEqual(status, 200, body)
        self.assertIn("InProgress", body)
        self.assertIn('http-equiv="refresh"', body, "a running job's page reloads")
        self.assertIn("class=\"warn\">Waiting since", body, "why nothing runs: no worker")
        # The table says why too (only -o yaml and the pages did).
        described = subprocess.run([HPO, "describe", WAITING_JOB, "-o", "table", "--coordinator", self.signed_url],
                                   capture_output=True, text=True, timeout=30, env=self.good_env)
        self.assertEqual(described.returncode, 0, described.stderr)
        self.assertRegex(described.stdout, r"\n  waiting: no registered worker", described.stdout)
        status, _, body = get(base + "/ui/jobs/nope")
        self.assertEqual(status, 404)
        self.assertIn(f"dashboard of {self.signed_url}", read(log))
        p.terminate()
        p.wait(10)

    def test_6_hpo_dashboard_with_a_wrong_secret_names_the_signature_error(self):
        port = free_port()
        p, _ = self.dashboard(dict(self.good_env, AWS_SECRET_ACCESS_KEY="wrong"), port)
        status, _, body = get(f"http://127.0.0.1:{port}/ui/")
        self.assertEqual(status, 502)
        self.assertIn("InvalidSignatureException", body)
        p.terminate()
        p.wait(10)

    def test_7_hpo_dashboard_refuses_a_bad_listen_address(self):
        r = subprocess.run([HPO, "dashboard", "--listen", "nonsense"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--listen wants HOST:PORT", r.stderr)
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = subprocess.run([HPO, "dashboard", "--listen", f"127.0.0.1:{busy.getsockname()[1]}"], capture_output=True,
                           text=True, timeout=30)
        busy.close()
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot listen on", r.stderr)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2 if "-v" in sys.argv else 1).result
    sys.exit(0 if result.wasSuccessful() else 1)
