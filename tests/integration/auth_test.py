#!/usr/bin/python3
"""Who may connect: a real secured hpo cluster on loopback, driven by the unchanged AWS clients.

Starts, with real processes (HPO_BINARY, default build/cli/hpo):
  * `hpo keygen --out keys` and, for a stranger, `hpo keygen --out stranger` (its coordinator.pub
    replaced by the real one, so only its own key pair is unknown to the coordinator);
  * `hpo coordinator --keys keys --http 0.0.0.0:PORT --credentials FILE`: workers over CurveZMQ
    with the allow-list, and, since the API listens beyond loopback, AWS Signature V4 required;
  * a worker with the right keys and a worker with the stranger's keys, both mapping the image
    `quadratic` to HPO_QUADRATIC.
Then checks: the stranger is refused and both sides log why, the good worker completes a job
that boto3 created with the right keys; boto3, the aws CLI (HPO_AWS_CLI, default /usr/bin/aws)
and `hpo` itself succeed with the right keys and get AWS's errors (MissingAuthenticationToken-
Exception, InvalidSignatureException, UnrecognizedClientException, "Signature expired") without
any change on the coordinator otherwise; a key appended to the allow-list admits the stranger
without a restart; SIGHUP reloads the access keys; a coordinator without keys on a non-loopback
endpoint, or a non-loopback API without credentials, refuses to start.

Plain unittest, tests run in name order against one cluster:
`/usr/bin/python3 tests/integration/auth_test.py [-v]`. Exit 0 passed, 1 failed, 77 boto3 missing.
"""

import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request
import warnings
from unittest import mock

try:
    import boto3
    import botocore
    import botocore.auth
    import botocore.awsrequest
    import botocore.config
    import botocore.credentials
    import botocore.exceptions
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: boto3/botocore are not importable ({e}); install python3-boto3", file=sys.stderr)
    sys.exit(77)

from procs import find as _find, free_port, kill_all, read, spawn

HPO = _find("HPO_BINARY", "build/cli/hpo")
QUADRATIC = _find("HPO_QUADRATIC", "build/examples/trainers/quadratic")
AWS_CLI = os.environ.get("HPO_AWS_CLI", "/usr/bin/aws")
KEEP = os.environ.get("HPO_KEEP_TMP", "") not in ("", "0")

GOOD_ID, GOOD_SECRET = "AKIAHPOAUTHTEST00001", "good/Secret+Key/0123456789abcdefghijklm"
LATE_ID, LATE_SECRET = "AKIAHPOAUTHTEST00002", "added-on-sighup"
JOB = "auth-main"
TRIALS = 4

def job_request(name, output):
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": TRIALS, "MaxParallelTrainingJobs": 2},
            "ParameterRanges": {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "-2", "MaxValue": "2"}]},
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"epochs": "3", "sleep_ms": "50"},
            "AlgorithmSpecification": {
                "TrainingImage": "quadratic",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-auth-test",
            "OutputDataConfig": {"S3OutputPath": "file://" + output},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
    }


def error_of(exc):
    return exc.response.get("Error", {}).get("Code"), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


class Auth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for path, env in ((HPO, "HPO_BINARY"), (QUADRATIC, "HPO_QUADRATIC")):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest(f"{path} is not built (set {env})")
        cls.tmp = tempfile.mkdtemp(prefix="hpo-auth-")
        for var in list(os.environ):
            if var.startswith("AWS_") or var.lower() in ("http_proxy", "https_proxy", "all_proxy") \
                    or var in ("PYTHONPATH", "PYTHONHOME"):
                del os.environ[var]
        open(os.path.join(cls.tmp, "aws-config"), "w").close()
        os.environ.update({
            "AWS_CONFIG_FILE": os.path.join(cls.tmp, "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(cls.tmp, "aws-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        })
        cls.keys = os.path.join(cls.tmp, "keys")
        cls.stranger = os.path.join(cls.tmp, "stranger")
        for d in (cls.keys, cls.stranger):
            r = subprocess.run([HPO, "keygen", "--out", d], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"hpo keygen --out {d} failed: {r.stderr}")
        shutil.copy(os.path.join(cls.keys, "coordinator.pub"), os.path.join(cls.stranger, "coordinator.pub"))
        cls.out = os.path.join(cls.tmp, "output")
        cls.credentials = os.path.join(cls.tmp, "credentials")
        with open(cls.credentials, "w") as f:
            f.write(f"# access keys the coordinator accepts\n[team]\naws_access_key_id = {GOOD_ID}\n"
                    f"aws_secret_access_key = {GOOD_SECRET}\n")
        zmq_port, http_port = free_port(), free_port()
        while http_port == zmq_port:
            http_port = free_port()
        cls.zmq = f"tcp://127.0.0.1:{zmq_port}"
        cls.url = f"http://127.0.0.1:{http_port}"
        cls.coordinator_log = os.path.join(cls.tmp, "coordinator.log")
        cls.coordinator = spawn(
            [HPO, "coordinator", "--listen", cls.zmq, "--keys", cls.keys, "--http", f"0.0.0.0:{http_port}",
             "--credentials", cls.credentials, "--state-dir", os.path.join(cls.tmp, "state"), "--lease-ms", "3000",
             "--grace", "1"], cls.coordinator_log)
        cls.worker_logs = {}
        cls.workers = {}
        for name, keydir in (("good", cls.keys), ("stranger", cls.stranger)):
            cls.worker_logs[name] = os.path.join(cls.tmp, f"{name}.log")
            cls.workers[name] = spawn([HPO, "worker", "--keys", keydir, "--connect", cls.zmq, "--id", name, "--slots", "2",
                   "--work-dir", os.path.join(cls.tmp, name), "--image", f"quadratic={QUADRATIC}"],
                  cls.worker_logs[name])
        cls.wait_for_workers(1, 30)
        # An impostor: a worker with a key of its own, on the allow-list, that claims the good
        # worker's id. It must not take the id, its connection or its training jobs.
        r = subprocess.run([HPO, "keygen", "--worker", "--out", cls.keys, "--name", "impostor"], capture_output=True,
                           text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"hpo keygen --worker failed: {r.stderr}")
        cls.worker_logs["impostor"] = os.path.join(cls.tmp, "impostor.log")
        spawn([HPO, "worker", "--keys", cls.keys, "--key-name", "impostor", "--connect", cls.zmq, "--id", "good",
               "--slots", "2", "--work-dir", os.path.join(cls.tmp, "impostor"), "--image", f"quadratic={QUADRATIC}"],
              cls.worker_logs["impostor"])
        time.sleep(1)
        cls.state = {}

    @classmethod
    def tearDownClass(cls):
        kill_all()
        if not KEEP:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # ---- helpers ----------------------------------------------------------------------------------

    @classmethod
    def signed(cls, method, path, body=b"", headers=None, key=(GOOD_ID, GOOD_SECRET), when=None, service="sagemaker"):
        """A raw request signed by botocore's SigV4Auth (optionally at another time); returns
        (status, parsed JSON body)."""
        req = botocore.awsrequest.AWSRequest(method=method, url=cls.url + path, data=body, headers=headers or {})
        signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials(*key), service, "us-east-1")
        if when is None:
            signer.add_auth(req)
        else:
            fake = mock.Mock(wraps=datetime.datetime)
            fake.utcnow.return_value = when
            with mock.patch("botocore.auth.datetime.datetime", fake):
                signer.add_auth(req)
        raw = urllib.request.Request(cls.url + path, data=body if method != "GET" else None, method=method,
                                     headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(raw, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    @classmethod
    def health(cls):
        status, body = cls.signed("GET", "/hpo/v1/health")
        if status != 200:
            raise RuntimeError(f"signed health check answered {status}: {body}")
        return body

    @classmethod
    def wait_for_workers(cls, n, seconds):
        deadline = time.monotonic() + seconds
        health = None
        while time.monotonic() < deadline:
            try:
                health = cls.health()
                if health.get("workers") == n:
                    return health
            except (OSError, RuntimeError):
                pass
            if cls.coordinator.poll() is not None:
                raise RuntimeError(f"the coordinator exited with {cls.coordinator.returncode}: "
                                   f"{read(cls.coordinator_log)}")
            time.sleep(0.1)
        raise RuntimeError(f"{n} worker(s) not registered in {seconds} s (health {health}); logs in {cls.tmp}")

    @classmethod
    def client(cls, key_id=GOOD_ID, secret=GOOD_SECRET, **config):
        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                     read_timeout=30, **config)
        return boto3.client("sagemaker", endpoint_url=cls.url, region_name="us-east-1", aws_access_key_id=key_id,
                            aws_secret_access_key=secret, config=cfg)

    def job_names(self):
        page = self.client().list_hyper_parameter_tuning_jobs(MaxResults=100)
        return sorted(s["HyperParameterTuningJobName"] for s in page["HyperParameterTuningJobSummaries"])

    def assert_refused(self, call, code, status, message_start=None):
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            call()
        got_code, got_status = error_of(cm.exception)
        self.assertEqual((got_code, got_status), (code, status), cm.exception.response)
        if message_start:
            self.assertTrue(cm.exception.response["Error"]["Message"].startswith(message_start),
                            cm.exception.response["Error"]["Message"])

    def env(self, **extra):
        e = dict(os.environ)
        e.update(extra)
        return e

    # ---- the cluster ------------------------------------------------------------------------------

    def test_00_a_coordinator_without_keys_or_credentials_refuses_to_start_beyond_loopback(self):
        r = subprocess.run([HPO, "coordinator", "--listen", f"tcp://0.0.0.0:{free_port()}", "--http",
                            f"127.0.0.1:{free_port()}", "--state-dir", os.path.join(self.tmp, "nokeys")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("hpo keygen --out", r.stderr)
        self.assertIn("--insecure", r.stderr)
        r = subprocess.run([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{free_port()}", "--http",
                            f"0.0.0.0:{free_port()}", "--state-dir", os.path.join(self.tmp, "nocreds")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--credentials FILE", r.stderr)
        r = subprocess.run([HPO, "coordinator", "--listen", f"tcp://0.0.0.0:{free_port()}", "--keys",
                            os.path.join(self.tmp, "no-such-dir"), "--state-dir", os.path.join(self.tmp, "badkeys")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("coordinator.secret", r.stderr)

    def test_01_keygen_files(self):
        for name in ("coordinator.secret", "worker.secret"):
            self.assertEqual(os.stat(os.path.join(self.keys, name)).st_mode & 0o777, 0o600, name)
        self.assertEqual(os.stat(self.keys).st_mode & 0o777, 0o700)
        r = subprocess.run([HPO, "keygen", "--out", self.keys], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, "keygen never overwrites a cluster's keys")
        self.assertIn("refusing to replace", r.stderr)

    def test_02_the_stranger_is_refused_and_both_sides_say_why(self):
        stranger_pub = [line.split('"')[1] for line in read(os.path.join(self.stranger, "worker.pub")).splitlines()
                        if "public-key" in line][0]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if stranger_pub in read(self.coordinator_log) and "refused this worker's key" in read(
                    self.worker_logs["stranger"]):
                break
            time.sleep(0.2)
        coordinator_log = read(self.coordinator_log)
        self.assertIn("refused a worker from", coordinator_log)
        self.assertIn(stranger_pub, coordinator_log)
        self.assertIn("refused this worker's key", read(self.worker_logs["stranger"]))
        self.assertEqual(self.health()["workers"], 1, "only the good worker registered")

    def test_03_boto3_with_the_right_keys_runs_a_job_on_the_good_worker(self):
        sm = self.client()
        arn = sm.create_hyper_parameter_tuning_job(**job_request(JOB, self.out))["HyperParameterTuningJobArn"]
        self.assertIn(JOB, arn)
        deadline = time.monotonic() + 90
        while True:
            d = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=JOB)
            if d["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped"):
                break
            self.assertLess(time.monotonic(), deadline, f"still {d['HyperParameterTuningJobStatus']}")
            time.sleep(0.3)
        self.assertEqual(d["HyperParameterTuningJobStatus"], "Completed", d.get("FailureReason"))
        self.assertEqual(d["TrainingJobStatusCounters"]["Completed"], TRIALS)
        trials = os.listdir(os.path.join(self.tmp, "good", "trials"))
        self.assertEqual(len(trials), TRIALS, "every training job ran on the good worker")
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "stranger", "trials")))
        # The impostor under the good worker's id got nothing, and the good worker was never
        # refused or cut off (with ZeroMQ's handover it used to be both).
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "impostor", "trials")), read(self.worker_logs["impostor"]))
        self.assertNotIn("refused this worker", read(self.worker_logs["good"]))
        self.assertNotIn("reconnecting", read(self.worker_logs["good"]))
        self.state["jobs"] = self.job_names()

    def test_03b_the_logs_client_signs_for_its_own_service(self):
        # CloudWatch Logs' actions (the training jobs' output) take signatures scoped to "logs", as
        # AWS does; a logs request signed for "sagemaker", a wrong secret or none is refused.
        self.assertIn("jobs", self.state, "test_03 did not run its job")
        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})

        def logs(key_id=GOOD_ID, secret=GOOD_SECRET, **config):
            return boto3.client("logs", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key_id,
                                aws_secret_access_key=secret, config=cfg.merge(botocore.config.Config(**config)))
        group = "/aws/sagemaker/TrainingJobs"
        streams = logs().describe_log_streams(logGroupName=group, logStreamNamePrefix=JOB)["logStreams"]
        self.assertEqual(len(streams), TRIALS, streams)
        events = logs().get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"],
                                       startFromHead=True)["events"]
        self.assertTrue(events, "the training job's output")
        self.assert_refused(lambda: logs(secret="wrong").describe_log_groups(), "InvalidSignatureException", 403)
        self.assert_refused(lambda: logs(signature_version=botocore.UNSIGNED).describe_log_groups(),
                            "MissingAuthenticationTokenException", 403)
        status, body = self.signed("POST", "/", b"{}", headers={"X-Amz-Target": "Logs_20140328.DescribeLogGroups",
                                                                   "Content-Type": "application/x-amz-json-1.1"})
        self.assertEqual(status, 403, body)
        self.assertIn("Credential should be scoped to correct service: 'logs'", body["message"])
        # CloudWatch's (the metrics) likewise, scoped to "monitoring": through boto3's client, in the
        # protocol the installed botocore speaks (Debian 12's: the query protocol, whose errors are
        # XML), and by hand in AWS JSON 1.0 (botocore 1.32 and later).
        def cloudwatch(key_id=GOOD_ID, secret=GOOD_SECRET, **config):
            return boto3.client("cloudwatch", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key_id,
                                aws_secret_access_key=secret, config=cfg.merge(botocore.config.Config(**config)))
        self.assertTrue(cloudwatch().list_metrics(Namespace=group)["Metrics"], "the training jobs' metrics")
        self.assert_refused(lambda: cloudwatch(secret="wrong").list_metrics(Namespace=group),
                            "InvalidSignatureException", 403)
        self.assert_refused(lambda: cloudwatch(signature_version=botocore.UNSIGNED).list_metrics(Namespace=group),
                            "MissingAuthenticationTokenException", 403)
        list_metrics = {"X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics",
                        "Content-Type": "application/x-amz-json-1.0"}
        status, body = self.signed("POST", "/", json.dumps({"Namespace": group}).encode(), headers=list_metrics,
                                   service="monitoring")
        self.assertEqual(status, 200, body)
        self.assertTrue(body["Metrics"], "the training jobs' metrics")
        status, body = self.signed("POST", "/", b"{}", headers=list_metrics)
        self.assertEqual(status, 403, body)
        self.assertIn("Credential should be scoped to correct service: 'monitoring'", body["message"])

    def test_04_unsigned_requests_are_missing_the_token_and_change_nothing(self):
        before = self.job_names()
        unsigned = self.client(signature_version=botocore.UNSIGNED)
        self.assert_refused(lambda: unsigned.create_hyper_parameter_tuning_job(**job_request("auth-unsigned", self.out)),
                            "MissingAuthenticationTokenException", 403, "Missing Authentication Token")
        self.assert_refused(lambda: unsigned.list_hyper_parameter_tuning_jobs(),
                            "MissingAuthenticationTokenException", 403)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(self.url + "/hpo/v1/health", timeout=5)
        self.assertEqual(cm.exception.code, 403)
        self.assertEqual(json.loads(cm.exception.read())["__type"], "MissingAuthenticationTokenException")
        # Probes cannot sign: /healthz answers them, and says nothing but "ok".
        with urllib.request.urlopen(self.url + "/healthz", timeout=5) as r:
            self.assertEqual((r.status, r.read()), (200, b"ok\n"))
        self.assertEqual(self.job_names(), before)

    def test_05_a_wrong_secret_is_an_invalid_signature_and_changes_nothing(self):
        before = self.job_names()
        wrong = self.client(secret=GOOD_SECRET + "x")
        self.assert_refused(lambda: wrong.create_hyper_parameter_tuning_job(**job_request("auth-wrong", self.out)),
                            "InvalidSignatureException", 403,
                            "The request signature we calculated does not match the signature you provided.")
        self.assert_refused(lambda: wrong.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=JOB),
                            "InvalidSignatureException", 403)
        self.assertEqual(self.job_names(), before)
        d = self.client().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=JOB)
        self.assertEqual(d["HyperParameterTuningJobStatus"], "Completed")

    def test_06_an_unknown_access_key_is_unrecognized(self):
        before = self.job_names()
        stranger = self.client(key_id="AKIAUNKNOWN000000000", secret=GOOD_SECRET)
        self.assert_refused(lambda: stranger.create_hyper_parameter_tuning_job(**job_request("auth-unknown", self.out)),
                            "UnrecognizedClientException", 403, "The security token included in the request is invalid.")
        self.assertEqual(self.job_names(), before)

    def test_07_an_expired_signature_is_refused_with_awss_message(self):
        before = self.job_names()
        body = json.dumps(job_request("auth-expired", self.out)).encode()
        headers = {"X-Amz-Target": "SageMaker.CreateHyperParameterTuningJob",
                   "Content-Type": "application/x-amz-json-1.1"}
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        status, err = self.signed("POST", "/", body, headers, when=old)
        self.assertEqual(status, 403, err)
        self.assertEqual(err["__type"], "InvalidSignatureException")
        self.assertTrue(err["message"].startswith("Signature expired: " + old.strftime("%Y%m%dT%H%M%SZ") +
                                                  " is now earlier than "), err["message"])
        status, _ = self.signed("POST", "/", body, headers, when=datetime.datetime.utcnow() - datetime.timedelta(minutes=5))
        self.assertEqual(status, 200, "within 15 minutes is fine")
        self.client().stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="auth-expired")
        self.assertNotIn("auth-expired", before)

    def test_08_the_aws_cli_authenticates_as_with_aws(self):
        def aws(*args, key_id=GOOD_ID, secret=GOOD_SECRET):
            env = self.env(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="eu-west-1")
            return subprocess.run([AWS_CLI, "sagemaker", *args, "--endpoint-url", self.url, "--output", "json"],
                                  capture_output=True, text=True, timeout=60, env=env)
        r = aws("describe-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", JOB)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["HyperParameterTuningJobStatus"], "Completed")
        r = aws("list-hyper-parameter-tuning-jobs", secret="wrong")
        self.assertEqual(r.returncode, 254, r.stderr)
        self.assertIn("(InvalidSignatureException)", r.stderr)
        r = aws("list-hyper-parameter-tuning-jobs", "--no-sign-request")
        self.assertEqual(r.returncode, 254, r.stderr)
        self.assertIn("(MissingAuthenticationTokenException)", r.stderr)
        r = aws("stop-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", JOB, key_id="AKIANOBODY")
        self.assertEqual(r.returncode, 254, r.stderr)
        self.assertIn("(UnrecognizedClientException)", r.stderr)

    def test_09_hpo_client_commands_sign_with_the_callers_aws_credentials(self):
        r = subprocess.run([HPO, "describe", JOB, "-o", "yaml", "--coordinator", self.url], capture_output=True,
                           text=True, timeout=30,
                           env=self.env(AWS_ACCESS_KEY_ID=GOOD_ID, AWS_SECRET_ACCESS_KEY=GOOD_SECRET))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(JOB, r.stdout)
        r = subprocess.run([HPO, "list", "--coordinator", self.url], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("MissingAuthenticationTokenException", r.stderr)
        # Every command that acts says what to do, as the reading ones do (hpo submit said nothing).
        spec = os.path.join(self.tmp, "unsigned.json")
        with open(spec, "w") as f:
            json.dump(job_request("auth-unsigned-submit", self.out), f)
        r = subprocess.run([HPO, "submit", spec, "--coordinator", self.url], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("MissingAuthenticationTokenException", r.stderr)
        self.assertIn("set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", r.stderr)

    def test_09b_the_region_comes_from_the_aws_config_file_and_a_wrong_one_is_named(self):
        # A coordinator that checks one region (--region), as AWS scopes signatures per region.
        http_port = free_port()
        url = f"http://127.0.0.1:{http_port}"
        spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{free_port()}", "--http", f"127.0.0.1:{http_port}",
               "--credentials", self.credentials, "--region", "eu-west-1", "--public-metrics", "--state-dir",
               os.path.join(self.tmp, "state-region")], os.path.join(self.tmp, "coordinator-region.log"))
        creds = dict(AWS_ACCESS_KEY_ID=GOOD_ID, AWS_SECRET_ACCESS_KEY=GOOD_SECRET)
        config = os.path.join(self.tmp, "aws-config")
        with open(config, "w") as f:
            f.write("[default]\nregion = us-west-2\n[profile team]\nregion = eu-west-1\n")
        base = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE")}
        for _ in range(100):  # until it answers
            r = subprocess.run([HPO, "list", "--coordinator", url], capture_output=True, text=True, timeout=30,
                               env={**base, **creds, "AWS_CONFIG_FILE": config, "AWS_PROFILE": "team"})
            if r.returncode != 3:
                break
            time.sleep(0.1)
        self.assertEqual(r.returncode, 0, "region of profile team in AWS_CONFIG_FILE: " + r.stderr)
        r = subprocess.run([HPO, "list", "--coordinator", url], capture_output=True, text=True, timeout=30,
                           env={**base, **creds, "AWS_CONFIG_FILE": config})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("signed for region us-west-2; set AWS_REGION", r.stderr)
        # --public-metrics: Prometheus scrapes unsigned; everything else still needs a signature.
        with urllib.request.urlopen(url + "/hpo/v1/metrics", timeout=10) as m:
            self.assertEqual(m.status, 200)
            self.assertIn("# TYPE hpo_workers gauge", m.read().decode())
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(self.url + "/hpo/v1/metrics", timeout=10)
        self.assertEqual(refused.exception.code, 403, "without --public-metrics the metrics need a signature")

    def test_10_a_key_added_to_the_allow_list_admits_the_stranger_without_a_restart(self):
        pub = read(os.path.join(self.stranger, "worker.pub"))
        key = [line.split('"')[1] for line in pub.splitlines() if "public-key" in line][0]
        path = os.path.join(self.keys, "authorized_workers")
        text = read(path)
        with open(path + ".new", "w") as f:
            f.write(text + f"{key} stranger\n")
        os.replace(path + ".new", path)
        self.wait_for_workers(2, 30)
        self.assertIn("reloaded", read(self.coordinator_log))

    def test_11_sighup_reloads_the_access_keys(self):
        late = self.client(key_id=LATE_ID, secret=LATE_SECRET)
        self.assert_refused(lambda: late.list_hyper_parameter_tuning_jobs(), "UnrecognizedClientException", 403)
        with open(self.credentials, "a") as f:
            f.write(f"\n[late]\naws_access_key_id = {LATE_ID}\naws_secret_access_key = {LATE_SECRET}\n")
        self.coordinator.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "2 access key(s)" not in read(self.coordinator_log):
            self.assertLess(time.monotonic(), deadline, read(self.coordinator_log))
            time.sleep(0.1)
        self.assertIn(JOB, [s["HyperParameterTuningJobName"]
                            for s in late.list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]])
        self.assertIsNone(self.coordinator.poll(), "SIGHUP does not stop the coordinator")

    def test_12_a_worker_rekeyed_in_the_allow_list_keeps_its_id_without_a_restart(self):
        # The stranger (admitted in test_10) gets a new key: the operator adds the new key, removes
        # the old one, and restarts the worker with the new key under the same id and work
        # directory. The id belonged to the old key: the new one was refused as an impostor until
        # the coordinator restarted. Now the id passes to the new key once the old one is gone.
        r = subprocess.run([HPO, "keygen", "--worker", "--out", self.keys, "--name", "stranger-2"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        path = os.path.join(self.keys, "authorized_workers")
        kept = [line for line in read(path).splitlines(keepends=True) if line.split()[1:2] != ["stranger"]]
        reloads = read(self.coordinator_log).count("reloaded")
        with open(path + ".new", "w") as f:
            f.write("".join(kept))
        os.replace(path + ".new", path)
        deadline = time.monotonic() + 10
        while read(self.coordinator_log).count("reloaded") == reloads:
            self.assertLess(time.monotonic(), deadline, read(self.coordinator_log))
            time.sleep(0.1)
        old = self.workers["stranger"]
        os.killpg(old.pid, signal.SIGKILL)
        old.wait(timeout=10)
        log = os.path.join(self.tmp, "stranger-2.log")
        spawn([HPO, "worker", "--keys", self.keys, "--key-name", "stranger-2", "--connect", self.zmq, "--id",
               "stranger", "--slots", "2", "--work-dir", os.path.join(self.tmp, "stranger"), "--image",
               f"quadratic={QUADRATIC}"], log)
        deadline = time.monotonic() + 30
        while "registered with" not in read(log):
            self.assertLess(time.monotonic(), deadline, read(log) + "\n---\n" + read(self.coordinator_log))
            time.sleep(0.1)
        self.assertIn("worker 'stranger' now has the key", read(self.coordinator_log))
        self.assertNotIn("dropped a message from worker 'stranger': that id belongs", read(self.coordinator_log))
        self.assertEqual(self.wait_for_workers(2, 30)["workers"], 2)
        # The impostor is still refused: the good worker's key never left the list.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "impostor", "trials")), read(self.worker_logs["impostor"]))


def main():
    warnings.simplefilter("ignore", ResourceWarning)  # boto3 clients made per test keep their sockets
    signal.signal(signal.SIGTERM, lambda *_: (kill_all(), sys.exit(1)))
    result = unittest.main(exit=False, verbosity=2 if "-v" in sys.argv else 1).result
    kill_all()
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
