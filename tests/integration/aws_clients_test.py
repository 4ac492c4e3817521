#!/usr/bin/python3
"""The real AWS clients against a real hpo cluster on loopback.

Starts `hpo coordinator` (HPO_BINARY, default build/cli/hpo) on free loopback ports with a
temporary state directory and two `hpo worker` processes that map the training image
`quadratic` to the dependency-free trainer (HPO_QUADRATIC, default
build/examples/trainers/quadratic), then drives the coordinator's SageMaker API with the
unchanged AWS clients:

  * boto3/botocore (`boto3.client('sagemaker', endpoint_url=...)`): every request passes
    botocore's own client-side validation against the SageMaker service model, and every
    request body and raw response body on the wire is walked against the same model's
    input/output shape by ShapeChecker below (member names, types, enums, required members,
    min/max, patterns). Any member the model does not define is a failure.
  * the `aws` CLI (HPO_AWS_CLI, default /usr/bin/aws): describe, list (with its own
    pagination), stop, and the exit code of a service error.

Plain unittest; run it as `/usr/bin/python3 tests/integration/aws_clients_test.py [-v]`.
Exit status: 0 all passed, 1 a failure, 77 boto3 is not installed (CTest SKIP_RETURN_CODE).
Every process it starts is killed at the end, on failure too (and, through PR_SET_PDEATHSIG,
even if this script itself is killed).

The model is the one the installed botocore carries (botocore/data/sagemaker/2017-07-24/
service-2.json or .json.gz). An old botocore lacks members SageMaker added later that the
coordinator implements (e.g. DescribeHyperParameterTuningJobResponse.ConsumedResources);
those few are added from NEWER_MODEL (copied verbatim from botocore 1.43.11's model) only when
the installed model lacks them, and the test prints which were used. Set
HPO_STRICT_INSTALLED_MODEL=1 to check against the installed model alone.
"""

import contextlib
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

try:
    import boto3
    import botocore
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.model
    import botocore.session
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP: boto3/botocore are not importable ({e}); install python3-boto3", file=sys.stderr)
    sys.exit(77)

import procs
from procs import find as _find, free_port, kill_all, spawn

HPO = _find("HPO_BINARY", "build/cli/hpo")
QUADRATIC = _find("HPO_QUADRATIC", "build/examples/trainers/quadratic")
AWS_CLI = os.environ.get("HPO_AWS_CLI", "/usr/bin/aws")
STRICT = os.environ.get("HPO_STRICT_INSTALLED_MODEL", "") not in ("", "0")
KEEP = os.environ.get("HPO_KEEP_TMP", "") not in ("", "0")

MAIN = "aws-main"          # Random, 6 trials, 2 in parallel: runs to Completed
LONG_SDK = "aws-long-sdk"  # long trials, stopped through boto3
LONG_CLI = "aws-long-cli"  # long trials, stopped through the aws CLI
MAIN_TRIALS = 6
NAME_RE = re.compile(r"^(aws-[a-z-]+)-[0-9]{3}-[0-9a-f]{8}$")

# ---- the service model ------------------------------------------------------------------------

# Members SageMaker added after botocore 1.29.27 (Debian 12's python3-botocore) that the coordinator
# implements, with the shapes they need, verbatim from botocore 1.43.11's sagemaker/2017-07-24 model
# (documentation left out). Applied only where the installed model lacks them.
NEWER_MODEL = {
    "shapes": {
        "AutotuneMode": {"type": "string", "enum": ["Enabled"]},
        "Autotune": {"type": "structure", "required": ["Mode"], "members": {"Mode": {"shape": "AutotuneMode"}}},
        "HyperParameterTuningJobConsumedResources": {
            "type": "structure", "members": {"RuntimeInSeconds": {"shape": "Integer"}}},
        "HyperParameterTuningJobCompletionDetails": {
            "type": "structure",
            "members": {"NumberOfTrainingJobsObjectiveNotImproving": {"shape": "Integer"},
                        "ConvergenceDetectedTime": {"shape": "Timestamp"}}},
        "Integer": {"type": "integer"},
        "RandomSeed": {"type": "integer", "box": True, "min": 0},
        "HyperParameterTuningMaxRuntimeInSeconds": {"type": "integer", "box": True, "max": 15768000, "min": 120},
        "AutoParameter": {"type": "structure", "required": ["Name", "ValueHint"],
                          "members": {"Name": {"shape": "ParameterKey"}, "ValueHint": {"shape": "ParameterValue"}}},
        "AutoParameters": {"type": "list", "member": {"shape": "AutoParameter"}, "max": 100, "min": 0},
        "MaxNumberOfTrainingJobsNotImproving": {"type": "integer", "box": True, "min": 3},
        "BestObjectiveNotImproving": {
            "type": "structure",
            "members": {"MaxNumberOfTrainingJobsNotImproving": {"shape": "MaxNumberOfTrainingJobsNotImproving"}}},
        "CompleteOnConvergence": {"type": "string", "enum": ["Disabled", "Enabled"]},
        "ConvergenceDetected": {"type": "structure",
                                "members": {"CompleteOnConvergence": {"shape": "CompleteOnConvergence"}}},
        "HyperParameterTrainingJobEnvironmentKey": {"type": "string", "max": 512, "min": 0,
                                                    "pattern": "[a-zA-Z_][a-zA-Z0-9_]*"},
        "HyperParameterTrainingJobEnvironmentValue": {"type": "string", "max": 512, "min": 0,
                                                      "pattern": "[\\S\\s]*"},
        "HyperParameterTrainingJobEnvironmentMap": {
            "type": "map", "key": {"shape": "HyperParameterTrainingJobEnvironmentKey"},
            "value": {"shape": "HyperParameterTrainingJobEnvironmentValue"}, "max": 48, "min": 0},
        "OutputCompressionType": {"type": "string", "enum": ["GZIP", "NONE"]},
        "MaxPendingTimeInSeconds": {"type": "integer", "box": True, "max": 2419200, "min": 7200},
        "TrainingPlanArn": {"type": "string", "max": 2048, "min": 50,
                            "pattern": "arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:training-plan/.*"},
        "Long": {"type": "long"},
        "Relation": {"type": "string", "enum": ["EqualTo", "GreaterThanOrEqualTo"]},
        "TotalHits": {"type": "structure", "members": {"Value": {"shape": "Long", "box": True},
                                                       "Relation": {"shape": "Relation"}}},
        "CrossAccountFilterOption": {"type": "string", "enum": ["SameAccount", "CrossAccount"]},
        "VisibilityConditionsKey": {"type": "string", "max": 128, "min": 1,
                                    "pattern": "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"},
        "VisibilityConditionsValue": {"type": "string", "max": 256, "min": 0,
                                      "pattern": "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)"},
        "VisibilityConditions": {"type": "structure", "members": {"Key": {"shape": "VisibilityConditionsKey"},
                                                                  "Value": {"shape": "VisibilityConditionsValue"}}},
        "VisibilityConditionsList": {"type": "list", "member": {"shape": "VisibilityConditions"}, "max": 5, "min": 1},
    },
    "members": {
        "DescribeHyperParameterTuningJobResponse": {
            "Autotune": "Autotune", "ConsumedResources": "HyperParameterTuningJobConsumedResources",
            "TuningJobCompletionDetails": "HyperParameterTuningJobCompletionDetails"},
        "HyperParameterTuningJobConfig": {"RandomSeed": "RandomSeed"},
        "ResourceLimits": {"MaxRuntimeInSeconds": "HyperParameterTuningMaxRuntimeInSeconds"},
        "ParameterRanges": {"AutoParameters": "AutoParameters"},
        "TuningJobCompletionCriteria": {"BestObjectiveNotImproving": "BestObjectiveNotImproving",
                                        "ConvergenceDetected": "ConvergenceDetected"},
        "HyperParameterTrainingJobDefinition": {"Environment": "HyperParameterTrainingJobEnvironmentMap"},
        "OutputDataConfig": {"CompressionType": "OutputCompressionType"},
        "StoppingCondition": {"MaxPendingTimeInSeconds": "MaxPendingTimeInSeconds"},
        "TrainingJobSummary": {"SecondaryStatus": "SecondaryStatus"},
        "ListTrainingJobsRequest": {"TrainingPlanArnEquals": "TrainingPlanArn"},
        "SearchResponse": {"TotalHits": "TotalHits"},
        "SearchRequest": {"CrossAccountFilterOption": "CrossAccountFilterOption",
                          "VisibilityConditions": "VisibilityConditionsList"},
        "HyperParameterTuningJobSearchEntity": {
            "ConsumedResources": "HyperParameterTuningJobConsumedResources",
            "TuningJobCompletionDetails": "HyperParameterTuningJobCompletionDetails"},
    },
    # Enum values added since, and required lists the newer model relaxed.
    "enums": {"SecondaryStatus": ["Pending"]},
    # Operations added since (2023), with their input shapes; neither has an output.
    "operations": {
        "DeleteHyperParameterTuningJob": {
            "name": "DeleteHyperParameterTuningJob", "http": {"method": "POST", "requestUri": "/"},
            "input": {"shape": "DeleteHyperParameterTuningJobRequest"}},
    },
    "operation_shapes": {
        "DeleteHyperParameterTuningJobRequest": {
            "type": "structure", "required": ["HyperParameterTuningJobName"],
            "members": {"HyperParameterTuningJobName": {"shape": "HyperParameterTuningJobName"}}},
    },
    "required": {"TuningJobCompletionCriteria": []},
}


def load_model():
    """The SageMaker model botocore itself uses, its file, and the NEWER_MODEL entries applied."""
    loader = botocore.loaders.create_loader()
    version = loader.determine_latest_version("sagemaker", "service-2")
    raw = loader.load_service_model("sagemaker", "service-2", api_version=version)
    path = None
    for base in loader.search_paths:
        for ext in ("", ".gz"):
            p = os.path.join(base, "sagemaker", version, "service-2.json" + ext)
            if path is None and os.path.exists(p):
                path = p
    applied = []
    if not STRICT:
        raw = copy.deepcopy(raw)
        shapes = raw["shapes"]
        for owner, members in NEWER_MODEL["members"].items():
            for member, target in members.items():
                if member in shapes[owner]["members"]:
                    continue
                stack = [target]
                while stack:
                    n = stack.pop()
                    if n in shapes:
                        continue
                    s = NEWER_MODEL["shapes"][n]
                    shapes[n] = copy.deepcopy(s)
                    refs = [m["shape"] for m in s.get("members", {}).values()]
                    refs += [s[k]["shape"] for k in ("member", "key", "value") if k in s]
                    stack.extend(refs)
                shapes[owner]["members"][member] = {"shape": target}
                applied.append(f"{owner}.{member}")
        for name, values in NEWER_MODEL["enums"].items():
            for v in values:
                if v not in shapes[name]["enum"]:
                    shapes[name]["enum"].append(v)
                    applied.append(f"{name} enum value {v}")
        for name, req in NEWER_MODEL["required"].items():
            if shapes[name].get("required", []) != req:
                shapes[name]["required"] = req
                applied.append(f"{name} required members relaxed to {req}")
        for name, op in NEWER_MODEL["operations"].items():
            if name not in raw["operations"]:
                raw["operations"][name] = copy.deepcopy(op)
                shapes[op["input"]["shape"]] = copy.deepcopy(NEWER_MODEL["operation_shapes"][op["input"]["shape"]])
                applied.append(f"operation {name}")
    return botocore.model.ServiceModel(raw, "sagemaker"), path, version, applied, raw


MODEL, MODEL_PATH, MODEL_VERSION, MODEL_ADDITIONS, MODEL_RAW = load_model()


class ShapeChecker:
    """Walks a decoded JSON value against a botocore shape. Timestamps are epoch seconds on the
    wire (AWS JSON 1.1) and ISO 8601 strings in the aws CLI's output (timestamps='iso')."""

    def __init__(self, timestamps="epoch"):
        self.timestamps = timestamps
        self.unchecked_patterns = set()

    def check(self, value, shape, path="$"):
        errors = []
        self._walk(value, shape, path, errors)
        return errors

    def _pattern(self, shape):
        p = shape.metadata.get("pattern")
        if p is None:
            return None
        try:
            return re.compile(p)
        except re.error:
            self.unchecked_patterns.add(p)  # a Java-only construct such as \p{...}
            return None

    def _bounds(self, shape, size, what, path, errors):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and size < lo:
            errors.append(f"{path}: {what} {size} is below the model's min {lo} ({shape.name})")
        if hi is not None and size > hi:
            errors.append(f"{path}: {what} {size} is above the model's max {hi} ({shape.name})")

    def _walk(self, v, shape, path, errors):
        t = shape.type_name
        if v is None:
            errors.append(f"{path}: null, the model has no nulls ({shape.name}, {t})")
            return
        if t == "structure":
            if not isinstance(v, dict):
                errors.append(f"{path}: expected a structure ({shape.name}), got {type(v).__name__}")
                return
            for k in v:
                if k not in shape.members:
                    errors.append(f"{path}: member {k!r} is not in the model's {shape.name} "
                                  f"(members: {', '.join(shape.members)})")
            for k in shape.required_members:
                if k not in v:
                    errors.append(f"{path}: required member {k!r} of {shape.name} is missing")
            for k, sub in v.items():
                if k in shape.members:
                    self._walk(sub, shape.members[k], f"{path}.{k}", errors)
        elif t == "list":
            if not isinstance(v, list):
                errors.append(f"{path}: expected a list ({shape.name}), got {type(v).__name__}")
                return
            self._bounds(shape, len(v), "length", path, errors)
            for i, item in enumerate(v):
                self._walk(item, shape.member, f"{path}[{i}]", errors)
        elif t == "map":
            if not isinstance(v, dict):
                errors.append(f"{path}: expected a map ({shape.name}), got {type(v).__name__}")
                return
            self._bounds(shape, len(v), "size", path, errors)
            for k, item in v.items():
                self._walk(k, shape.key, f"{path} key {k!r}", errors)
                self._walk(item, shape.value, f"{path}[{k!r}]", errors)
        elif t == "string":
            if not isinstance(v, str):
                errors.append(f"{path}: expected a string ({shape.name}), got {type(v).__name__} {v!r}")
                return
            if shape.enum and v not in shape.enum:
                errors.append(f"{path}: {v!r} is not a value of the model's enum {shape.name} {shape.enum}")
            self._bounds(shape, len(v), "length", path, errors)
            rx = self._pattern(shape)
            if rx is not None and not rx.fullmatch(v):
                errors.append(f"{path}: {v!r} does not match {shape.name}'s pattern {rx.pattern!r}")
        elif t in ("integer", "long"):
            if isinstance(v, bool) or not isinstance(v, int):
                errors.append(f"{path}: expected an {t} ({shape.name}), got {type(v).__name__} {v!r}")
                return
            self._bounds(shape, v, "value", path, errors)
            if t == "integer" and not -2**31 <= v < 2**31:
                errors.append(f"{path}: {v} does not fit a 32-bit integer ({shape.name})")
        elif t in ("float", "double"):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                errors.append(f"{path}: expected a {t} ({shape.name}), got {type(v).__name__} {v!r}")
                return
            self._bounds(shape, v, "value", path, errors)
        elif t == "boolean":
            if not isinstance(v, bool):
                errors.append(f"{path}: expected a boolean ({shape.name}), got {type(v).__name__} {v!r}")
        elif t == "timestamp":
            if self.timestamps == "iso":
                try:
                    datetime.datetime.fromisoformat(v)
                except (TypeError, ValueError):
                    errors.append(f"{path}: expected an ISO 8601 timestamp, got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                errors.append(f"{path}: expected a timestamp in epoch seconds (a number), got {v!r}")
            elif not 1e9 <= v <= 4e9:
                errors.append(f"{path}: {v} is not a plausible epoch-seconds timestamp (milliseconds?)")
        elif t == "blob":
            if not isinstance(v, str):
                errors.append(f"{path}: expected a base64 string ({shape.name})")
        else:
            errors.append(f"{path}: the checker does not know the type {t} ({shape.name})")


def output_shape(op):
    return MODEL.operation_model(op).output_shape


# ---- the wire: every request and response boto3 sends and gets -----------------------------------

class Wire:
    """Hooks a boto3 client: checks each request body against the operation's input shape and
    each raw response against its output shape (or, for errors, the AWS JSON error form)."""

    def __init__(self, client, check_requests=True):
        self.checker = ShapeChecker()
        self.check_requests = check_requests
        self.requests = 0
        self.checked = {}  # operation -> responses checked
        self.last = None   # (status, json body) of the last response
        client.meta.events.register("before-send.sagemaker.*", self._before_send)
        client.meta.events.register("after-call.sagemaker.*", self._after_call)

    @contextlib.contextmanager
    def unchecked_requests(self):
        """For requests that break the model on purpose (botocore checks only required members,
        types and minimums, so a bad enum value, pattern or maximum reaches the coordinator)."""
        self.check_requests = False
        try:
            yield
        finally:
            self.check_requests = True

    def _before_send(self, request, **_):
        self.requests += 1
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        assert target.startswith("SageMaker."), f"X-Amz-Target is {target!r}"
        op = MODEL.operation_model(target[len("SageMaker."):])
        if not self.check_requests:
            return
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        errors = self.checker.check(json.loads(body or "{}"), op.input_shape, f"{op.name} request")
        assert not errors, "request does not conform to the model:\n  " + "\n  ".join(errors)

    def _after_call(self, http_response, model, **_):
        status = http_response.status_code
        raw = http_response.content.decode()
        ctype = http_response.headers.get("Content-Type", "")
        assert ctype.startswith("application/x-amz-json-1.1"), f"{model.name}: Content-Type {ctype!r}"
        body = json.loads(raw) if raw else {}
        self.last = (status, body)
        if status >= 300:
            assert status in (400, 500), f"{model.name}: status {status}"
            assert isinstance(body.get("__type"), str) and body["__type"], f"{model.name}: no __type in {raw}"
            assert isinstance(body.get("message"), str) and body["message"], f"{model.name}: no message in {raw}"
            code = body["__type"].split("#")[-1]
            allowed = {"__type", "message"}
            if code in MODEL.shape_names:
                allowed |= set(MODEL.shape_for(code).members)
            extra = set(body) - allowed
            assert not extra, f"{model.name}: error body has members {sorted(extra)}: {raw}"
            return
        assert status == 200, f"{model.name}: status {status}"
        shape = output_shape(model.name)  # MODEL's, not the client's: see NEWER_MODEL
        if shape is None:
            assert body == {}, f"{model.name} has no output in the model but answered {raw}"
        else:
            errors = self.checker.check(body, shape, f"{model.name} response")
            assert not errors, (f"{model.name} response does not conform to the model:\n  " + "\n  ".join(errors)
                                + f"\n  body: {raw[:3000]}")
        self.checked[model.name] = self.checked.get(model.name, 0) + 1


# ---- processes --------------------------------------------------------------------------------------

procs.cleanup_on_exit(lambda: getattr(AwsClients, "tmp", None))


# Where training jobs put their model. The workers upload it to a real S3: the radosgw that
# tests/worker/with_radosgw.sh starts around this test (CMake runs it that way).
OUTPUT_PATH = "s3://hpo-aws-clients-test/output"
S3_ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")


# What the SageMaker Python SDK v2 sends for every tuner.fit(): HyperParameterTuningResourceConfig
# with the estimator's instance type, in place of ResourceConfig.
SDK_V2_RESOURCES = {"HyperParameterTuningResourceConfig":
                    {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}}


def job_request(name, trials, parallel, statics, strategy="Random", ranges=None, resources=None):
    if ranges is None:
        ranges = {
            "ContinuousParameterRanges": [
                {"Name": "x", "MinValue": "-1", "MaxValue": "1", "ScalingType": "Linear"},
                {"Name": "y", "MinValue": "-1", "MaxValue": "1", "ScalingType": "Auto"}],
            "IntegerParameterRanges": [{"Name": "layers", "MinValue": "1", "MaxValue": "6"}],
            "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adam", "sgd"]}],
        }
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": trials, "MaxParallelTrainingJobs": parallel},
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": statics,
            "AlgorithmSpecification": {
                "TrainingImage": "quadratic",
                "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": "loss", "Regex": "loss=([0-9.eE+-]+)"}],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-aws-clients-test",
            "OutputDataConfig": {"S3OutputPath": OUTPUT_PATH},
            **(resources or {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                "VolumeSizeInGB": 1}}),
            "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        },
        "Tags": [{"Key": "suite", "Value": "aws-clients"}],
    }


def error_code(exc):
    return exc.response.get("Error", {}).get("Code")


class AwsClients(unittest.TestCase):
    """The tests run in name order (test_NN_...) against one cluster; later ones use the jobs
    the earlier ones created."""

    @classmethod
    def setUpClass(cls):
        for path, env in ((HPO, "HPO_BINARY"), (QUADRATIC, "HPO_QUADRATIC")):
            if not os.access(path, os.X_OK):
                raise unittest.SkipTest(f"{path} is not built (set {env})")
        cls.tmp = tempfile.mkdtemp(prefix="hpo-aws-clients-")
        # The S3 the workers upload to (only they see its keys; the clients under test get none).
        s3_env = {k: os.environ[k] for k in S3_ENV_KEYS if k in os.environ}
        if "AWS_ENDPOINT_URL_S3" not in s3_env:
            raise unittest.SkipTest("no S3 endpoint: run under tests/worker/with_radosgw.sh")
        s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1",
                          aws_access_key_id=s3_env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=s3_env["AWS_SECRET_ACCESS_KEY"],
                          config=botocore.config.Config(s3={"addressing_style": "path"}))
        s3.create_bucket(Bucket=OUTPUT_PATH.split("/")[2])
        # Keep the user's AWS configuration, proxies and Python path out of both clients.
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
        zmq_port, http_port = free_port(), free_port()
        while http_port == zmq_port:
            http_port = free_port()
        cls.url = f"http://127.0.0.1:{http_port}"
        spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{zmq_port}", "--http", f"127.0.0.1:{http_port}",
               "--state-dir", os.path.join(cls.tmp, "state"), "--lease-ms", "3000", "--grace", "1"],
              os.path.join(cls.tmp, "coordinator.log"))
        for i in (1, 2):
            spawn([HPO, "worker", "--connect", f"tcp://127.0.0.1:{zmq_port}", "--id", f"w{i}", "--slots", "2",
                   "--work-dir", os.path.join(cls.tmp, f"w{i}"), "--image", f"quadratic={QUADRATIC}"],
                  os.path.join(cls.tmp, f"worker{i}.log"), extra_env=s3_env)
        procs.wait_for_workers(cls.url, 2, cls.tmp)
        cls.sm = cls.client()
        cls.wire = Wire(cls.sm)
        cls.state = {}

    @classmethod
    def client(cls, **config):
        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                     read_timeout=30, **config)
        return boto3.client("sagemaker", endpoint_url=cls.url, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="y", config=cfg)

    @classmethod
    def newer_client(cls):
        """A boto3 client whose botocore reads the model with NEWER_MODEL applied (what a newer
        botocore ships), through botocore's own data path: for the operations Debian's lacks."""
        data = os.path.join(cls.tmp, "botocore-data")
        os.makedirs(os.path.join(data, "sagemaker", MODEL_VERSION), exist_ok=True)
        with open(os.path.join(data, "sagemaker", MODEL_VERSION, "service-2.json"), "w") as f:
            json.dump(MODEL_RAW, f)
        session = botocore.session.Session()
        session.get_component("data_loader").search_paths.insert(0, data)
        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                                     read_timeout=30)
        return boto3.Session(botocore_session=session).client(
            "sagemaker", endpoint_url=cls.url, region_name="us-east-1", aws_access_key_id="x",
            aws_secret_access_key="y", config=cfg)

    @classmethod
    def tearDownClass(cls):
        kill_all()

    # ---- helpers ----------------------------------------------------------------------------------

    def need(self, key):
        if key not in self.state:
            self.fail(f"an earlier step did not get as far as {key!r}")
        return self.state[key]

    def describe(self, name):
        return self.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)

    def wait_for(self, name, statuses, seconds=60):
        deadline = time.monotonic() + seconds
        seen = []
        while True:
            d = self.describe(name)
            st = d["HyperParameterTuningJobStatus"]
            if not seen or seen[-1] != st:
                seen.append(st)
            if st in statuses:
                return d, seen
            if time.monotonic() > deadline:
                self.fail(f"{name} is still {st} after {seconds} s (went {' -> '.join(seen)})")
            time.sleep(0.25)

    def pages(self, name, **kw):
        """Every page of ListTrainingJobsForHyperParameterTuningJob, followed by hand."""
        out, token = [], None
        while True:
            req = dict(HyperParameterTuningJobName=name, **kw)
            if token:
                req["NextToken"] = token
            page = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(**req)
            out.append(page["TrainingJobSummaries"])
            token = page.get("NextToken")
            if not token:
                return out
            self.assertLess(len(out), 100, "pagination does not end")

    def aws(self, *args, expect_rc=0, service="sagemaker", raw=False):
        """Runs `aws SERVICE ARGS` against the coordinator; returns (rc, stdout parsed as JSON, or
        as text when raw, stderr)."""
        if not os.access(AWS_CLI, os.X_OK):
            self.skipTest(f"{AWS_CLI} is not installed (package awscli; or set HPO_AWS_CLI)")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="dummy-key", AWS_SECRET_ACCESS_KEY="dummy-secret",
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_MAX_ATTEMPTS="1", AWS_RETRY_MODE="standard")
        argv = [AWS_CLI, service, *args, "--endpoint-url", self.url] + ([] if raw else ["--output", "json"])
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
        if expect_rc is not None:
            self.assertEqual(p.returncode, expect_rc, f"{' '.join(argv)}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        out = p.stdout if raw else json.loads(p.stdout) if p.stdout.strip() else None
        return p.returncode, out, p.stderr

    def check_cli(self, value, op):
        errors = ShapeChecker(timestamps="iso").check(value, output_shape(op), f"aws CLI {op} output")
        self.assertEqual(errors, [], "\n".join(errors))

    # ---- the tests ----------------------------------------------------------------------------------

    def test_00_botocore_validates_requests_against_the_model_before_sending(self):
        before = self.wire.requests
        with self.assertRaises(botocore.exceptions.ParamValidationError):
            self.sm.describe_hyper_parameter_tuning_job()
        with self.assertRaises(botocore.exceptions.ParamValidationError):
            self.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=MAIN, MaxResults=0)
        with self.assertRaises(botocore.exceptions.ParamValidationError):
            self.sm.create_hyper_parameter_tuning_job(**dict(job_request(MAIN, 1, 1, {}), NoSuchMember=1))
        self.assertEqual(self.wire.requests, before, "invalid requests must not reach the coordinator")

    def test_01_create_three_jobs(self):
        arn_shape = output_shape("CreateHyperParameterTuningJob").members["HyperParameterTuningJobArn"]
        fast = {"epochs": "3", "sleep_ms": "50"}
        slow = {"epochs": "120", "sleep_ms": "500"}  # a minute a trial: only a stop ends them in time
        t0 = time.time()
        only_x = {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "-1", "MaxValue": "1"}]}
        for name, trials, parallel, statics, extra in (
                (MAIN, MAIN_TRIALS, 2, fast, {"resources": SDK_V2_RESOURCES}),
                (LONG_SDK, 5, 1, slow, {"ranges": only_x}), (LONG_CLI, 5, 1, slow, {})):
            r = self.sm.create_hyper_parameter_tuning_job(**job_request(name, trials, parallel, statics, **extra))
            arn = r["HyperParameterTuningJobArn"]
            self.assertTrue(re.fullmatch(arn_shape.metadata["pattern"], arn), arn)
            self.assertTrue(arn.endswith(":hyper-parameter-tuning-job/" + name), arn)
            self.state[name] = arn
        self.state["created_at"] = t0

    def test_02_describe_until_completed(self):
        arn = self.need(MAIN)
        d, seen = self.wait_for(MAIN, ("Completed", "Failed", "Stopped"), seconds=90)
        self.assertEqual(d["HyperParameterTuningJobStatus"], "Completed", d)
        self.assertEqual(d["HyperParameterTuningJobName"], MAIN)
        self.assertEqual(d["HyperParameterTuningJobArn"], arn)
        self.assertEqual(d["TrainingJobStatusCounters"],
                         {"Completed": MAIN_TRIALS, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0,
                          "Stopped": 0})
        self.assertEqual(d["ObjectiveStatusCounters"], {"Succeeded": MAIN_TRIALS, "Pending": 0, "Failed": 0})
        cfg = d["HyperParameterTuningJobConfig"]
        self.assertEqual(cfg["Strategy"], "Random")
        self.assertEqual(cfg["ResourceLimits"], {"MaxNumberOfTrainingJobs": MAIN_TRIALS, "MaxParallelTrainingJobs": 2})
        self.assertEqual(d["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"], "quadratic")
        # What the SDK's HyperparameterTuner.attach() reads without a fallback: the reserved static
        # hyperparameter, and a ResourceConfig beside the HyperParameterTuningResourceConfig it sent.
        definition = d["TrainingJobDefinition"]
        self.assertEqual(definition["StaticHyperParameters"]["_tuning_objective_metric"], "loss")
        self.assertEqual(definition["HyperParameterTuningResourceConfig"],
                         SDK_V2_RESOURCES["HyperParameterTuningResourceConfig"])
        self.assertEqual(definition["ResourceConfig"],
                         {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
        # Each answer names itself as AWS's do (x-amzn-RequestId): a UUID that differs per call.
        ids = {self.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=MAIN)["ResponseMetadata"]
               .get("RequestId") for _ in range(3)}
        self.assertEqual(len(ids), 3, ids)
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertIsInstance(d["CreationTime"], datetime.datetime)  # boto3 parsed the epoch seconds
        self.assertLessEqual(d["CreationTime"], d["HyperParameterTuningEndTime"])
        self.assertLessEqual(d["HyperParameterTuningEndTime"], d["LastModifiedTime"])
        self.assertLess(abs(d["CreationTime"].timestamp() - self.state["created_at"]), 60)
        best = d["BestTrainingJob"]
        self.assertRegex(best["TrainingJobName"], NAME_RE)
        self.assertEqual(best["TrainingJobStatus"], "Completed")
        self.assertEqual(best["FinalHyperParameterTuningJobObjectiveMetric"]["MetricName"], "loss")
        self.assertEqual(set(best["TunedHyperParameters"]), {"x", "y", "layers", "optimizer"})
        self.assertEqual(self.wire.last[0], 200)
        self.assertNotIn("Tags", self.wire.last[1], "Describe has no Tags member")
        self.state["main_done"] = d
        print(f"\n    {MAIN} went {' -> '.join(seen)}", file=sys.stderr)

    def test_03_list_training_jobs_every_sort_and_page(self):
        d = self.need("main_done")
        full = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=MAIN,
                                                                         MaxResults=100)
        self.assertNotIn("NextToken", full)
        rows = full["TrainingJobSummaries"]
        self.assertEqual(len(rows), MAIN_TRIALS)
        names = [r["TrainingJobName"] for r in rows]
        self.assertEqual(len(set(names)), MAIN_TRIALS)
        for r in rows:
            self.assertRegex(r["TrainingJobName"], NAME_RE)
            self.assertEqual(r["TuningJobName"], MAIN)
            self.assertEqual(r["TrainingJobStatus"], "Completed")
            self.assertEqual(r["ObjectiveStatus"], "Succeeded")
            self.assertTrue(r["TrainingJobArn"].endswith(":training-job/" + r["TrainingJobName"].lower()))
            self.assertLessEqual(r["CreationTime"], r["TrainingStartTime"])
            self.assertLessEqual(r["TrainingStartTime"], r["TrainingEndTime"])
        objective = lambda r: r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        self.assertEqual(min(rows, key=objective)["TrainingJobName"], d["BestTrainingJob"]["TrainingJobName"])

        keys = {"Name": lambda r: r["TrainingJobName"], "CreationTime": lambda r: r["CreationTime"],
                "Status": lambda r: r["TrainingJobStatus"], "FinalObjectiveMetricValue": objective}
        sort_by = MODEL.operation_model("ListTrainingJobsForHyperParameterTuningJob").input_shape.members["SortBy"]
        self.assertEqual(set(sort_by.enum), set(keys), "the model's SortBy values")
        for by in sort_by.enum:
            for order in ("Ascending", "Descending"):
                with self.subTest(SortBy=by, SortOrder=order):
                    pages = self.pages(MAIN, MaxResults=2, SortBy=by, SortOrder=order)
                    self.assertEqual([len(p) for p in pages], [2, 2, 2])
                    got = [r for p in pages for r in p]
                    self.assertEqual(sorted(r["TrainingJobName"] for r in got), sorted(names))
                    vals = [keys[by](r) for r in got]
                    self.assertEqual(vals, sorted(vals, reverse=order == "Descending"))
                    one = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
                        HyperParameterTuningJobName=MAIN, MaxResults=100, SortBy=by, SortOrder=order)
                    self.assertEqual([r["TrainingJobName"] for r in one["TrainingJobSummaries"]],
                                     [r["TrainingJobName"] for r in got], "pages and one call agree")
        # Ordering defaults: SortBy Name, Ascending.
        self.assertEqual([r["TrainingJobName"] for r in rows], sorted(names))
        # boto3's own paginator (paginators-1.json: NextToken / MaxResults).
        paginator = self.sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job")
        sizes, got = [], []
        for page in paginator.paginate(HyperParameterTuningJobName=MAIN, PaginationConfig={"PageSize": 4}):
            sizes.append(len(page["TrainingJobSummaries"]))
            got += page["TrainingJobSummaries"]
        self.assertEqual(sizes, [4, 2])
        self.assertEqual([r["TrainingJobName"] for r in got], sorted(names))
        # StatusEquals.
        done = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=MAIN,
                                                                         StatusEquals="Completed", MaxResults=100)
        self.assertEqual(len(done["TrainingJobSummaries"]), MAIN_TRIALS)
        none = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=MAIN,
                                                                         StatusEquals="InProgress")
        self.assertEqual(none["TrainingJobSummaries"], [])
        self.assertNotIn("NextToken", none)
        self.state["main_rows"] = rows

    def test_04_describe_training_jobs(self):
        d = self.need("main_done")
        rows = self.need("main_rows")
        for r in rows:
            with self.subTest(training_job=r["TrainingJobName"]):
                tj = self.sm.describe_training_job(TrainingJobName=r["TrainingJobName"])
                self.assertEqual(tj["TrainingJobName"], r["TrainingJobName"])
                self.assertEqual(tj["TrainingJobArn"], r["TrainingJobArn"])
                self.assertEqual(tj["TuningJobArn"], d["HyperParameterTuningJobArn"])
                self.assertEqual(tj["TrainingJobStatus"], "Completed")
                self.assertEqual(tj["SecondaryStatus"], "Completed")
                self.assertEqual(tj["SecondaryStatusTransitions"][-1]["Status"], "Completed")
                # Every transition has a message (the SDK's log waiter reads each), and
                # OutputDataConfig a KmsKeyId ("" for none), as SageMaker describes them.
                for st in tj["SecondaryStatusTransitions"]:
                    self.assertTrue(st.get("StatusMessage"), st)
                self.assertEqual(tj["OutputDataConfig"]["KmsKeyId"], "")
                # Booleans the request left out are false, as SageMaker describes them.
                for k in ("EnableNetworkIsolation", "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining"):
                    self.assertIs(tj[k], False, k)
                self.assertEqual(tj["ResourceConfig"], {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                        "VolumeSizeInGB": 1})
                for k, v in r["TunedHyperParameters"].items():
                    self.assertEqual(tj["HyperParameters"][k], v)
                self.assertEqual(tj["HyperParameters"]["_tuning_objective_metric"], "loss")
                self.assertEqual(tj["HyperParameters"]["epochs"], "3")
                self.assertEqual(tj["AlgorithmSpecification"]["TrainingImage"], "quadratic")
                self.assertEqual(tj["RoleArn"], "arn:aws:iam::123456789012:role/hpo-aws-clients-test")
                self.assertEqual(tj["ModelArtifacts"]["S3ModelArtifacts"],
                                 f"{OUTPUT_PATH}/{r['TrainingJobName']}/output/model.tar.gz")
                losses = [m for m in tj["FinalMetricDataList"] if m["MetricName"] == "loss"]
                self.assertEqual(len(losses), 1)
                self.assertAlmostEqual(losses[0]["Value"], r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                                       places=5)
                self.assertEqual(tj["TrainingStartTime"], r["TrainingStartTime"])
                self.assertEqual(tj["TrainingEndTime"], r["TrainingEndTime"])
                # When the algorithm emitted it: inside the training, not stamped at its start.
                self.assertGreater(losses[0]["Timestamp"], tj["TrainingStartTime"])
                self.assertLessEqual(losses[0]["Timestamp"], tj["LastModifiedTime"])

    def test_05_list_tuning_jobs_with_filters(self):
        d = self.need("main_done")
        for name in (LONG_SDK, LONG_CLI):
            self.need(name)
        sort_by = MODEL.operation_model("ListHyperParameterTuningJobs").input_shape.members["SortBy"]
        keys = {"Name": "HyperParameterTuningJobName", "Status": "HyperParameterTuningJobStatus",
                "CreationTime": "CreationTime"}
        self.assertEqual(set(sort_by.enum), set(keys), "the model's SortBy values")
        all_names = sorted([MAIN, LONG_SDK, LONG_CLI])
        for by in sort_by.enum:
            for order in ("Ascending", "Descending"):
                with self.subTest(SortBy=by, SortOrder=order):
                    got, token, calls = [], None, 0
                    while True:
                        kw = {"MaxResults": 1, "SortBy": by, "SortOrder": order}
                        if token:
                            kw["NextToken"] = token
                        page = self.sm.list_hyper_parameter_tuning_jobs(**kw)
                        calls += 1
                        self.assertLessEqual(len(page["HyperParameterTuningJobSummaries"]), 1)
                        got += page["HyperParameterTuningJobSummaries"]
                        token = page.get("NextToken")
                        if not token:
                            break
                        self.assertLess(calls, 10)
                    self.assertEqual(sorted(s["HyperParameterTuningJobName"] for s in got), all_names)
                    vals = [s[keys[by]] for s in got]
                    self.assertEqual(vals, sorted(vals, reverse=order == "Descending"))
        paginator = self.sm.get_paginator("list_hyper_parameter_tuning_jobs")
        got = [s for page in paginator.paginate(PaginationConfig={"PageSize": 2})
               for s in page["HyperParameterTuningJobSummaries"]]
        self.assertEqual([s["HyperParameterTuningJobName"] for s in got], all_names)

        main = self.sm.list_hyper_parameter_tuning_jobs(NameContains="main")["HyperParameterTuningJobSummaries"]
        self.assertEqual([s["HyperParameterTuningJobName"] for s in main], [MAIN])
        s = main[0]
        self.assertEqual(s["HyperParameterTuningJobArn"], d["HyperParameterTuningJobArn"])
        self.assertEqual(s["HyperParameterTuningJobStatus"], "Completed")
        self.assertEqual(s["Strategy"], "Random")
        self.assertEqual(s["CreationTime"], d["CreationTime"])
        self.assertEqual(s["HyperParameterTuningEndTime"], d["HyperParameterTuningEndTime"])
        self.assertEqual(s["TrainingJobStatusCounters"], d["TrainingJobStatusCounters"])
        self.assertEqual(s["ObjectiveStatusCounters"], d["ObjectiveStatusCounters"])
        self.assertEqual(s["ResourceLimits"], d["HyperParameterTuningJobConfig"]["ResourceLimits"])

        long_jobs = self.sm.list_hyper_parameter_tuning_jobs(NameContains="-long-", SortBy="Name")
        self.assertEqual([s["HyperParameterTuningJobName"] for s in long_jobs["HyperParameterTuningJobSummaries"]],
                         [LONG_CLI, LONG_SDK])
        self.assertEqual(self.sm.list_hyper_parameter_tuning_jobs(NameContains="nothing-like-it")
                         ["HyperParameterTuningJobSummaries"], [])
        completed = self.sm.list_hyper_parameter_tuning_jobs(StatusEquals="Completed")
        self.assertEqual([s["HyperParameterTuningJobName"] for s in completed["HyperParameterTuningJobSummaries"]],
                         [MAIN])
        running = self.sm.list_hyper_parameter_tuning_jobs(StatusEquals="InProgress", SortBy="Name")
        self.assertEqual([s["HyperParameterTuningJobName"] for s in running["HyperParameterTuningJobSummaries"]],
                         [LONG_CLI, LONG_SDK])
        # Time filters: boto3 serializes datetimes as epoch seconds.
        created = d["CreationTime"]
        second = datetime.timedelta(seconds=1)
        after = self.sm.list_hyper_parameter_tuning_jobs(CreationTimeAfter=created - 60 * second,
                                                         CreationTimeBefore=created + 600 * second)
        self.assertEqual(len(after["HyperParameterTuningJobSummaries"]), 3)
        self.assertEqual(self.sm.list_hyper_parameter_tuning_jobs(CreationTimeBefore=created - 60 * second)
                         ["HyperParameterTuningJobSummaries"], [])
        self.assertEqual(self.sm.list_hyper_parameter_tuning_jobs(CreationTimeAfter=created + 600 * second)
                         ["HyperParameterTuningJobSummaries"], [])
        mod = self.sm.list_hyper_parameter_tuning_jobs(LastModifiedTimeBefore=d["LastModifiedTime"] + 600 * second,
                                                       LastModifiedTimeAfter=created - 60 * second, NameContains="main")
        self.assertEqual(len(mod["HyperParameterTuningJobSummaries"]), 1)

    def test_06_errors_are_the_codes_botocore_knows(self):
        self.need("main_done")
        listed = len(self.sm.list_hyper_parameter_tuning_jobs(MaxResults=100)["HyperParameterTuningJobSummaries"])
        sm = self.sm

        def raises(code, call, modeled=True):
            with self.assertRaises(botocore.exceptions.ClientError) as cm, self.wire.unchecked_requests():
                call()
            self.assertEqual(error_code(cm.exception), code, cm.exception.response)
            self.assertTrue(cm.exception.response["Error"]["Message"])
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            self.assertTrue(cm.exception.response["ResponseMetadata"].get("RequestId"), "errors name themselves too")
            if modeled:  # the model's exception class for the code, e.g. client.exceptions.ResourceNotFound
                self.assertIsInstance(cm.exception, getattr(sm.exceptions, code))
            return cm.exception

        raises("ResourceNotFound", lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope"))
        raises("ResourceNotFound", lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="nope"))
        raises("ResourceNotFound", lambda: sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope"))
        # SageMaker's DescribeTrainingJob answers an unknown name with ValidationException "Requested resource
        # not found." (its model lists ResourceNotFound); code written against SageMaker catches that.
        unknown = raises("ValidationException", lambda: sm.describe_training_job(TrainingJobName="nope-001-00000000"),
                         modeled=False)
        self.assertTrue(unknown.response["Error"]["Message"].startswith("Requested resource not found."),
                        unknown.response["Error"])
        raises("ResourceInUse", lambda: sm.create_hyper_parameter_tuning_job(**job_request(MAIN, 2, 1, {})))
        raises("ResourceInUse", lambda: sm.create_hyper_parameter_tuning_job(**job_request(MAIN.upper(), 2, 1, {})))

        # Requests botocore lets through (it checks required members, types and minimums, not enums,
        # maximums or meaning) that the coordinator must refuse.
        grid = job_request("aws-bad-grid", 2, 1, {}, strategy="Grid")
        raises("ValidationException", lambda: sm.create_hyper_parameter_tuning_job(**grid), modeled=False)
        bad_range = job_request("aws-bad-range", 2, 1, {}, ranges={
            "ContinuousParameterRanges": [{"Name": "x", "MinValue": "1", "MaxValue": "-1"}]})
        raises("ValidationException", lambda: sm.create_hyper_parameter_tuning_job(**bad_range), modeled=False)
        bad_strategy = job_request("aws-bad-strategy", 2, 1, {}, strategy="Annealing")
        raises("ValidationException", lambda: sm.create_hyper_parameter_tuning_job(**bad_strategy), modeled=False)
        bad_name = job_request("bad_name!", 2, 1, {})
        raises("ValidationException", lambda: sm.create_hyper_parameter_tuning_job(**bad_name), modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, MaxResults=101), modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, SortBy="Bogus"), modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, NextToken="not-a-token"), modeled=False)
        raises("ValidationException", lambda: sm.list_hyper_parameter_tuning_jobs(SortOrder="Sideways"),
               modeled=False)
        raises("ValidationException", lambda: sm.list_hyper_parameter_tuning_jobs(SortBy="Bogus"), modeled=False)
        raises("ValidationException", lambda: sm.list_hyper_parameter_tuning_jobs(StatusEquals="Bogus"), modeled=False)
        # NameContains is [a-zA-Z0-9\-]+ (botocore does not check patterns): another character
        # listed nothing where SageMaker answers a ValidationException (a user's boto3 pass).
        raises("ValidationException", lambda: sm.list_hyper_parameter_tuning_jobs(NameContains="a_b"), modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs(NameContains="a b"), modeled=False)
        # Nor its length (at most 63) or emptiness: 64 characters listed nothing, "" everything.
        raises("ValidationException", lambda: sm.list_hyper_parameter_tuning_jobs(NameContains="a" * 64),
               modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs(NameContains=""), modeled=False)
        raises("ValidationException", lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, StatusEquals="Bogus"), modeled=False)

        # With botocore's validation off, wrongly typed members reach the coordinator: a
        # SerializationException naming the member, as SageMaker's deserializer answers, never a 500.
        loose = self.client(parameter_validation=False)
        Wire(loose, check_requests=False)  # the wrongly typed request is the point; its answer is checked
        for op, kw in (("list_hyper_parameter_tuning_jobs", {"SortBy": 7}),
                       ("list_hyper_parameter_tuning_jobs", {"NameContains": 7}),
                       ("list_hyper_parameter_tuning_jobs", {"StatusEquals": ["Completed"]}),
                       ("list_hyper_parameter_tuning_jobs", {"MaxResults": "5"}),
                       ("list_training_jobs_for_hyper_parameter_tuning_job",
                        {"HyperParameterTuningJobName": MAIN, "SortBy": 7}),
                       ("list_training_jobs_for_hyper_parameter_tuning_job",
                        {"HyperParameterTuningJobName": MAIN, "StatusEquals": 7}),
                       ("describe_hyper_parameter_tuning_job", {"HyperParameterTuningJobName": 7}),
                       ("stop_hyper_parameter_tuning_job", {"HyperParameterTuningJobName": [MAIN]}),
                       ("describe_training_job", {"TrainingJobName": {"name": MAIN}}),
                       ("create_hyper_parameter_tuning_job",
                        dict(job_request("aws-bad-types", 2, 1, {}), HyperParameterTuningJobConfig={
                            "Strategy": "Random", "ResourceLimits": {"MaxParallelTrainingJobs": "2"}}))):
            with self.subTest(op=op, request=kw):
                with self.assertRaises(botocore.exceptions.ClientError) as cm:
                    getattr(loose, op)(**kw)
                self.assertEqual(error_code(cm.exception), "SerializationException", cm.exception.response)
                self.assertRegex(cm.exception.response["Error"]["Message"], "must be|expected")

        # Below botocore (whose serializer would refuse these): raw AWS JSON 1.1 requests.
        for action, body in (("ListHyperParameterTuningJobs", {"CreationTimeAfter": "yesterday"}),
                             ("ListHyperParameterTuningJobs", {"LastModifiedTimeBefore": [1]}),
                             ("ListTrainingJobsForHyperParameterTuningJob",
                              {"HyperParameterTuningJobName": MAIN, "SortOrder": 1})):
            with self.subTest(action=action, raw=body):
                req = urllib.request.Request(self.url + "/", data=json.dumps(body).encode(), method="POST", headers={
                    "X-Amz-Target": "SageMaker." + action, "Content-Type": "application/x-amz-json-1.1"})
                with self.assertRaises(urllib.error.HTTPError) as cm:
                    urllib.request.urlopen(req, timeout=10)
                self.assertEqual(cm.exception.code, 400)
                self.assertTrue(cm.exception.headers.get("Content-Type", "").startswith("application/x-amz-json-1.1"))
                self.assertEqual(json.loads(cm.exception.read())["__type"], "SerializationException")

        after = len(self.sm.list_hyper_parameter_tuning_jobs(MaxResults=100)["HyperParameterTuningJobSummaries"])
        self.assertEqual(after, listed, "refused requests changed nothing")

    def test_07_stop_a_running_job(self):
        self.need(LONG_SDK)
        deadline = time.monotonic() + 30
        while True:
            running = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=LONG_SDK, StatusEquals="InProgress")["TrainingJobSummaries"]
            if running and "TrainingStartTime" in running[0]:
                break
            self.assertLess(time.monotonic(), deadline, "no training job of the long job started")
            time.sleep(0.25)
        self.assertEqual(self.describe(LONG_SDK)["HyperParameterTuningJobStatus"], "InProgress")
        tj = self.sm.describe_training_job(TrainingJobName=running[0]["TrainingJobName"])
        self.assertEqual(tj["TrainingJobStatus"], "InProgress")
        self.assertEqual(tj["SecondaryStatus"], "Training")
        self.assertNotIn("TrainingEndTime", tj)
        # StopTrainingJob on the running one: it ends Stopped and the tuning job goes on with the next.
        first = running[0]["TrainingJobName"]
        r = self.sm.stop_training_job(TrainingJobName=first)
        self.assertEqual(set(r), {"ResponseMetadata"}, "StopTrainingJob has no output")
        self.assertEqual(self.wire.last, (200, {}))
        deadline = time.monotonic() + 30
        while self.sm.describe_training_job(TrainingJobName=first)["TrainingJobStatus"] != "Stopped":
            self.assertLess(time.monotonic(), deadline, f"{first} did not stop")
            time.sleep(0.25)
        deadline = time.monotonic() + 30
        while True:
            running = [s for s in self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=LONG_SDK, StatusEquals="InProgress")["TrainingJobSummaries"]
                if s["TrainingJobName"] != first]
            if running:
                break
            self.assertLess(time.monotonic(), deadline, "the tuning job did not go on after StopTrainingJob")
            time.sleep(0.25)
        self.assertEqual(self.describe(LONG_SDK)["HyperParameterTuningJobStatus"], "InProgress")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.stop_training_job(TrainingJobName=first)
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("has already ended", str(cm.exception))
        r = self.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=LONG_SDK)
        self.assertEqual(set(r), {"ResponseMetadata"}, "StopHyperParameterTuningJob has no output")
        self.assertEqual(self.wire.last, (200, {}))
        d, seen = self.wait_for(LONG_SDK, ("Stopped",), seconds=30)
        self.assertIn(seen[0], ("Stopping", "Stopped"))
        self.assertGreaterEqual(d["TrainingJobStatusCounters"]["Stopped"], 1)
        self.assertEqual(d["TrainingJobStatusCounters"]["InProgress"], 0)
        self.assertIn("HyperParameterTuningEndTime", d)
        # Stopping it again is refused, as SageMaker refuses StopTrainingJob of an ended training
        # job ("The request was rejected because the training job is in status Stopped").
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=LONG_SDK)
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("has already ended: it is Stopped", str(cm.exception))
        stopped = [r for p in self.pages(LONG_SDK, MaxResults=1, StatusEquals="Stopped") for r in p]
        self.assertEqual(len(stopped), d["TrainingJobStatusCounters"]["Stopped"])
        for row in stopped:
            self.assertEqual(row["TrainingJobStatus"], "Stopped")
            tj = self.sm.describe_training_job(TrainingJobName=row["TrainingJobName"])
            self.assertEqual(tj["TrainingJobStatus"], "Stopped")
            self.assertEqual(tj["SecondaryStatus"], "Stopped")
            self.assertIn("TrainingEndTime", tj)
        every = [r for p in self.pages(LONG_SDK, MaxResults=1, SortBy="Status", SortOrder="Descending") for r in p]
        vals = [r["TrainingJobStatus"] for r in every]
        self.assertEqual(vals, sorted(vals, reverse=True))
        listed = self.sm.list_hyper_parameter_tuning_jobs(StatusEquals="Stopped")["HyperParameterTuningJobSummaries"]
        self.assertEqual([s["HyperParameterTuningJobName"] for s in listed], [LONG_SDK])

    def test_08_aws_cli_describe(self):
        self.need("main_done")
        _, out, _ = self.aws("describe-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", MAIN)
        self.check_cli(out, "DescribeHyperParameterTuningJob")
        self.assertEqual(out["HyperParameterTuningJobName"], MAIN)
        self.assertEqual(out["HyperParameterTuningJobStatus"], "Completed")
        self.assertEqual(out["TrainingJobStatusCounters"]["Completed"], MAIN_TRIALS)
        self.assertEqual(out["BestTrainingJob"]["TrainingJobName"],
                         self.state["main_done"]["BestTrainingJob"]["TrainingJobName"])
        rc, out, err = self.aws("describe-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", "nope",
                                expect_rc=None)
        self.assertNotEqual(rc, 0)
        self.assertIn("ResourceNotFound", err)
        self.assertIsNone(out)

    def test_09_aws_cli_list_training_jobs(self):
        rows = self.need("main_rows")
        names = sorted(r["TrainingJobName"] for r in rows)
        # The CLI follows NextToken itself; --page-size 2 makes it take three pages.
        _, out, _ = self.aws("list-training-jobs-for-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name",
                             MAIN, "--page-size", "2")
        self.check_cli(out, "ListTrainingJobsForHyperParameterTuningJob")
        self.assertEqual([r["TrainingJobName"] for r in out["TrainingJobSummaries"]], names)
        self.assertNotIn("NextToken", out)
        _, out, _ = self.aws("list-training-jobs-for-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name",
                             MAIN, "--sort-by", "FinalObjectiveMetricValue", "--sort-order", "Descending",
                             "--page-size", "4")
        vals = [r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for r in out["TrainingJobSummaries"]]
        self.assertEqual(len(vals), MAIN_TRIALS)
        self.assertEqual(vals, sorted(vals, reverse=True))
        # --max-items stops early and hands out the CLI's own resume token.
        _, first, _ = self.aws("list-training-jobs-for-hyper-parameter-tuning-job",
                               "--hyper-parameter-tuning-job-name", MAIN, "--page-size", "2", "--max-items", "3")
        self.assertEqual(len(first["TrainingJobSummaries"]), 3)
        self.assertIn("NextToken", first)
        _, rest, _ = self.aws("list-training-jobs-for-hyper-parameter-tuning-job",
                              "--hyper-parameter-tuning-job-name", MAIN, "--page-size", "2", "--starting-token",
                              first["NextToken"])
        self.assertEqual([r["TrainingJobName"] for r in first["TrainingJobSummaries"] + rest["TrainingJobSummaries"]],
                         names)
        _, out, _ = self.aws("list-hyper-parameter-tuning-jobs", "--name-contains", "aws-", "--sort-by", "Name")
        self.check_cli(out, "ListHyperParameterTuningJobs")
        self.assertEqual([s["HyperParameterTuningJobName"] for s in out["HyperParameterTuningJobSummaries"]],
                         sorted([MAIN, LONG_SDK, LONG_CLI]))
        _, out, _ = self.aws("describe-training-job", "--training-job-name", names[0])
        self.check_cli(out, "DescribeTrainingJob")
        self.assertEqual(out["TrainingJobStatus"], "Completed")

    def test_10_aws_cli_stop(self):
        self.need(LONG_CLI)
        _, out, _ = self.aws("describe-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", LONG_CLI)
        self.check_cli(out, "DescribeHyperParameterTuningJob")
        self.assertEqual(out["HyperParameterTuningJobStatus"], "InProgress")
        rc, out, err = self.aws("stop-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", LONG_CLI)
        self.assertIsNone(out, "stop prints nothing")
        deadline = time.monotonic() + 30
        while True:
            _, out, _ = self.aws("describe-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", LONG_CLI)
            self.check_cli(out, "DescribeHyperParameterTuningJob")
            if out["HyperParameterTuningJobStatus"] == "Stopped":
                break
            self.assertIn(out["HyperParameterTuningJobStatus"], ("InProgress", "Stopping"))
            self.assertLess(time.monotonic(), deadline, f"{LONG_CLI} did not stop: {out}")
            time.sleep(0.5)
        self.assertEqual(out["TrainingJobStatusCounters"]["InProgress"], 0)
        rc, _, err = self.aws("stop-hyper-parameter-tuning-job", "--hyper-parameter-tuning-job-name", "nope",
                              expect_rc=None)
        self.assertNotEqual(rc, 0)
        self.assertIn("ResourceNotFound", err)

    def test_11_a_job_whose_training_jobs_fail(self):
        self.need("main_done")
        name = "aws-fail"
        self.sm.create_hyper_parameter_tuning_job(**job_request(name, 2, 2, {"fail": "true"}))
        d, _ = self.wait_for(name, ("Completed", "Failed", "Stopped"))
        self.assertEqual(d["HyperParameterTuningJobStatus"], "Failed")
        self.assertTrue(d["FailureReason"])
        self.assertEqual(d["TrainingJobStatusCounters"]["NonRetryableError"], 2)
        self.assertEqual(d["ObjectiveStatusCounters"], {"Succeeded": 0, "Pending": 0, "Failed": 2})
        self.assertNotIn("BestTrainingJob", d)
        rows = [r for p in self.pages(name, MaxResults=1) for r in p]
        self.assertEqual(len(rows), 2)
        for r in rows:
            self.assertEqual(r["TrainingJobStatus"], "Failed")
            self.assertEqual(r["ObjectiveStatus"], "Failed")
            self.assertEqual(r["FailureReason"], "AlgorithmError: asked to fail (hyperparameter fail=true)")
            self.assertNotIn("FinalHyperParameterTuningJobObjectiveMetric", r)
            tj = self.sm.describe_training_job(TrainingJobName=r["TrainingJobName"])
            self.assertEqual((tj["TrainingJobStatus"], tj["SecondaryStatus"]), ("Failed", "Failed"))
            self.assertEqual(tj["FailureReason"], r["FailureReason"])
        # Sorting by the objective leaves out training jobs without one.
        by_objective = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue")
        self.assertEqual(by_objective["TrainingJobSummaries"], [])
        failed = self.sm.list_hyper_parameter_tuning_jobs(StatusEquals="Failed")["HyperParameterTuningJobSummaries"]
        self.assertEqual([s["HyperParameterTuningJobName"] for s in failed], [name])

    def test_12_delete_a_job_once_it_has_ended(self):
        self.need("main_done")
        if "DeleteHyperParameterTuningJob" not in MODEL.operation_names:
            self.skipTest("the installed botocore model has no DeleteHyperParameterTuningJob (HPO_STRICT_INSTALLED_MODEL)")
        sm = self.newer_client()
        wire = Wire(sm)
        name = "aws-delete"
        sm.create_hyper_parameter_tuning_job(**job_request(name, 3, 1, {"epochs": "120", "sleep_ms": "500"}))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("stop it", str(cm.exception))
        self.assertEqual(self.describe(name)["HyperParameterTuningJobStatus"], "InProgress", "the refusal changed nothing")
        sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        self.wait_for(name, ("Stopped",), seconds=30)
        r = sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        self.assertEqual(set(r), {"ResponseMetadata"}, "DeleteHyperParameterTuningJob has no output")
        self.assertEqual(wire.last, (200, {}))
        for call in (lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
                     lambda: sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
                     lambda: sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                call()
            self.assertEqual(error_code(cm.exception), "ResourceNotFound")
        names = [s["HyperParameterTuningJobName"] for s in
                 sm.list_hyper_parameter_tuning_jobs(MaxResults=100)["HyperParameterTuningJobSummaries"]]
        self.assertNotIn(name, names)
        # The name is free again.
        sm.create_hyper_parameter_tuning_job(**job_request(name, 2, 2, {"epochs": "2", "sleep_ms": "20"}))
        d, _ = self.wait_for(name, ("Completed", "Failed", "Stopped"))
        self.assertEqual(d["HyperParameterTuningJobStatus"], "Completed")
        sm.delete_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        self.assertGreater(wire.checked.get("DeleteHyperParameterTuningJob", 0), 0)
        self.wire.checked["DeleteHyperParameterTuningJob"] = wire.checked["DeleteHyperParameterTuningJob"]

    def test_13_list_tags_and_every_range_kind(self):
        d = self.need("main_done")
        rows = self.need("main_rows")
        want = [{"Key": "suite", "Value": "aws-clients"}]
        self.assertEqual(self.sm.list_tags(ResourceArn=d["HyperParameterTuningJobArn"])["Tags"], want)
        # A tuning job's training jobs carry its tags (the SDK's Estimator.attach() asks).
        self.assertEqual(self.sm.list_tags(ResourceArn=rows[0]["TrainingJobArn"])["Tags"], want)
        # ListTags' MaxResults is 50 and up with no maximum: a paginator's page size of 200 was
        # refused "from 1 to 100".
        pages = self.sm.get_paginator("list_tags").paginate(ResourceArn=d["HyperParameterTuningJobArn"],
                                                            PaginationConfig={"PageSize": 200})
        self.assertEqual([t for p in pages for t in p["Tags"]], want)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.list_tags(ResourceArn=d["HyperParameterTuningJobArn"] + "-nope")
        self.assertEqual(error_code(cm.exception), "ResourceNotFound")
        # A job with continuous ranges only is described with the other two kinds empty, as
        # SageMaker does (HyperparameterTuner.attach() reads all three).
        ranges = self.describe(LONG_SDK)["HyperParameterTuningJobConfig"]["ParameterRanges"]
        self.assertEqual(ranges["IntegerParameterRanges"], [])
        self.assertEqual(ranges["CategoricalParameterRanges"], [])
        self.assertEqual(len(ranges["ContinuousParameterRanges"]), 1)

    def test_14_list_training_jobs_across_tuning_jobs(self):
        self.need("main_done")
        rows = self.need("main_rows")
        mine = self.sm.list_training_jobs(NameContains=MAIN.upper(), MaxResults=100)["TrainingJobSummaries"]
        self.assertEqual(sorted(r["TrainingJobName"] for r in mine), sorted(r["TrainingJobName"] for r in rows),
                         "NameContains, case-insensitive, finds a tuning job's training jobs")
        self.assertEqual([r["CreationTime"] for r in mine], sorted(r["CreationTime"] for r in mine),
                         "SortBy CreationTime, Ascending by default")
        for r in mine:
            self.assertEqual(r["TrainingJobStatus"], "Completed")
            self.assertLessEqual(r["CreationTime"], r["TrainingEndTime"])
            self.assertLessEqual(r["TrainingEndTime"], r["LastModifiedTime"])
        paginator = self.sm.get_paginator("list_training_jobs")
        got = [r["TrainingJobName"] for p in paginator.paginate(NameContains=MAIN, SortBy="Name", SortOrder="Descending",
                                                              PaginationConfig={"PageSize": 4})
               for r in p["TrainingJobSummaries"]]
        self.assertEqual(got, sorted((r["TrainingJobName"] for r in rows), reverse=True))
        everything = [r["TrainingJobName"] for p in paginator.paginate(PaginationConfig={"PageSize": 50})
                      for r in p["TrainingJobSummaries"]]
        self.assertEqual(len(everything), len(set(everything)))
        self.assertTrue(set(r["TrainingJobName"] for r in rows) <= set(everything))
        # No training job here has a warm pool status of its own, none is ever Deleting: filters
        # botocore's model allows give an empty list (they were refused), values it does not, an error.
        self.assertEqual(self.sm.list_training_jobs(WarmPoolStatusEquals="Available")["TrainingJobSummaries"], [])
        # Members of the newer model, which this botocore would drop or refuse, raw: a summary's
        # SecondaryStatus, and a training plan filter (refused as unknown before; none runs on one).
        def raw_list(body):
            req = urllib.request.Request(self.url + "/", data=json.dumps(body).encode(), method="POST",
                                         headers={"X-Amz-Target": "SageMaker.ListTrainingJobs",
                                                  "Content-Type": "application/x-amz-json-1.1"})
            with urllib.request.urlopen(req, timeout=10) as res:
                return json.loads(res.read())["TrainingJobSummaries"]
        raw = raw_list({"NameContains": MAIN, "MaxResults": 100})
        self.assertEqual(len(raw), len(rows))
        self.assertTrue(all(r["SecondaryStatus"] == "Completed" for r in raw), raw)
        plan = "arn:aws:sagemaker:us-east-1:123456789012:training-plan/p1"
        self.assertEqual(raw_list({"TrainingPlanArnEquals": plan}), [])
        self.assertEqual(raw_list({"StatusEquals": "Deleting"}), [])  # in the newer model's enum
        with self.assertRaises(urllib.error.HTTPError) as cm:
            raw_list({"WarmPoolStatusEquals": "Warm"})
        self.assertIn("WarmPoolStatusEquals", json.loads(cm.exception.read())["message"])

    def test_15_add_and_delete_tags(self):
        # AddTags/DeleteTags on a tuning job (what the ACK controller and tagging scripts call),
        # and on a training job: each training job has its own copy of its tuning job's tags,
        # made when it was created (as SageMaker tags them), which the tuning job's later
        # changes do not touch.
        d = self.need("main_done")
        rows = self.need("main_rows")
        arn = d["HyperParameterTuningJobArn"]
        added = self.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ml"},
                                                        {"Key": "suite", "Value": "renamed"}])
        self.assertEqual(added["Tags"], [{"Key": "team", "Value": "ml"}, {"Key": "suite", "Value": "renamed"}])
        want = [{"Key": "suite", "Value": "renamed"}, {"Key": "team", "Value": "ml"}]
        self.assertEqual(self.sm.list_tags(ResourceArn=arn)["Tags"], want, "a key already there takes the new value")
        created_with = [{"Key": "suite", "Value": "aws-clients"}]
        tj = rows[0]["TrainingJobArn"]
        self.assertEqual(self.sm.list_tags(ResourceArn=tj)["Tags"], created_with, "copied when it was created")
        self.sm.add_tags(ResourceArn=tj, Tags=[{"Key": "x", "Value": "y"}])
        self.assertEqual(self.sm.list_tags(ResourceArn=tj)["Tags"], created_with + [{"Key": "x", "Value": "y"}])
        self.assertEqual(self.sm.list_tags(ResourceArn=rows[1]["TrainingJobArn"])["Tags"], created_with,
                         "one training job's tags are its own")
        self.assertEqual(self.sm.list_tags(ResourceArn=arn)["Tags"], want, "and not its tuning job's")
        self.sm.delete_tags(ResourceArn=tj, TagKeys=["x"])
        self.assertEqual(self.sm.list_tags(ResourceArn=tj)["Tags"], created_with)
        with self.assertRaises(botocore.exceptions.ClientError) as cm:  # the whole request is refused
            self.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "ok", "Value": "1"}, {"Key": "bad#key", "Value": "1"}])
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("Tags[1].Key", str(cm.exception))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(49)])
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("at most 50", str(cm.exception))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.add_tags(ResourceArn=arn + "-nope", Tags=[{"Key": "x", "Value": "y"}])
        self.assertEqual(error_code(cm.exception), "ResourceNotFound")
        # AWS reserves the aws: prefix; what is not an ARN at all is the request's fault.
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "AWS:team", "Value": "ml"}])
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("must not begin with aws:", str(cm.exception))
        bad = urllib.request.Request(self.url + "/", data=json.dumps({"ResourceArn": "not-an-arn"}).encode(),
                                     method="POST", headers={"X-Amz-Target": "SageMaker.ListTags",
                                                             "Content-Type": "application/x-amz-json-1.1"})
        with self.assertRaises(urllib.error.HTTPError) as cm:  # raw: botocore refuses it before sending
            urllib.request.urlopen(bad, timeout=10)
        self.assertEqual(json.loads(cm.exception.read())["__type"], "ValidationException")
        self.assertEqual(self.sm.list_tags(ResourceArn=arn)["Tags"], want, "refused requests changed nothing")
        self.sm.delete_tags(ResourceArn=arn, TagKeys=["team", "never-there"])
        self.sm.delete_tags(ResourceArn=arn, TagKeys=["suite"])
        self.assertEqual(self.sm.list_tags(ResourceArn=arn)["Tags"], [])
        self.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "suite", "Value": "aws-clients"}])  # as it was
        self.assertEqual(self.describe(MAIN)["HyperParameterTuningJobStatus"], d["HyperParameterTuningJobStatus"])

    def test_16_a_next_token_belongs_to_its_sort_order(self):
        # A token from one order, sent with another, is refused naming both (it was ignored and
        # page 1 came back).
        self.need("main_done")
        first = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, SortBy="Name", MaxResults=2)
        token = first["NextToken"]
        same = self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=MAIN, SortBy="Name", MaxResults=2, NextToken=token)
        self.assertTrue(set(r["TrainingJobName"] for r in same["TrainingJobSummaries"]).isdisjoint(
            r["TrainingJobName"] for r in first["TrainingJobSummaries"]))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            self.sm.list_training_jobs_for_hyper_parameter_tuning_job(
                HyperParameterTuningJobName=MAIN, SortBy="FinalObjectiveMetricValue", MaxResults=2, NextToken=token)
        self.assertEqual(error_code(cm.exception), "ValidationException")
        self.assertIn("NextToken was issued for SortBy Name", str(cm.exception))

    def test_17_names_are_checked_before_they_are_looked_up(self):
        # As SageMaker: a name over the length limit or outside the pattern is a
        # ValidationException, not "no tuning job named" (ResourceNotFound).
        sm = self.client(parameter_validation=False)
        for call, member, value, words in (
                (sm.describe_hyper_parameter_tuning_job, "HyperParameterTuningJobName", "a" * 33,
                 "length less than or equal to 32"),
                (sm.stop_hyper_parameter_tuning_job, "HyperParameterTuningJobName", "bad_name",
                 "regular expression pattern"),
                (sm.describe_training_job, "TrainingJobName", "t" * 64, "length less than or equal to 63")):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                call(**{member: value})
            self.assertEqual(error_code(cm.exception), "ValidationException", str(cm.exception))
            self.assertIn(words, str(cm.exception))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="a" * 32)
        self.assertEqual(error_code(cm.exception), "ResourceNotFound")

    def test_18_training_job_logs_through_cloudwatch_logs_clients(self):
        # The training jobs' output as CloudWatch Logs serves it (coordinator/cloudwatch_logs.h),
        # with boto3's "logs" client and the aws CLI: every response checked against botocore's
        # CloudWatch Logs model, as the SageMaker ones are.
        self.need("main_done")
        model = botocore.session.get_session().get_service_model("logs")
        checker, checked = ShapeChecker(), {}

        def after_call(http_response, model=None, **_):
            if model is None or model.service_model.service_name != "logs":
                return
            body = json.loads(http_response.content.decode() or "{}")
            if http_response.status_code == 200:
                errors = checker.check(body, model.output_shape, f"{model.name} response")
                self.assertEqual(errors, [], "\n".join(errors))
                checked[model.name] = checked.get(model.name, 0) + 1
            else:
                self.assertTrue(body.get("__type") and body.get("message"), body)

        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
        logs = boto3.client("logs", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
                            aws_secret_access_key="y", config=cfg)
        logs.meta.events.register("after-call", after_call)
        group = "/aws/sagemaker/TrainingJobs"
        trials = [t["TrainingJobName"] for page in self.pages(MAIN) for t in page]
        self.assertEqual(len(trials), MAIN_TRIALS)
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=trials[0] + "/")["logStreams"]
        self.assertEqual(len(streams), 1, streams)
        events = logs.get_log_events(logGroupName=group, logStreamName=streams[0]["logStreamName"],
                                     startFromHead=True)
        lines = [e["message"] for e in events["events"]]
        self.assertTrue(lines and all("loss=" in line for line in lines), lines)
        listed = [s["logStreamName"] for page in logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, logStreamNamePrefix=MAIN, PaginationConfig={"PageSize": 4}) for s in page["logStreams"]]
        self.assertEqual(len(listed), MAIN_TRIALS, listed)
        found = [e for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, logStreamNamePrefix=MAIN, filterPattern="loss") for e in page["events"]]
        self.assertEqual(len(found), MAIN_TRIALS * len(lines), "every training job prints as many lines")
        self.assertEqual([g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]], [group])
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            logs.get_log_events(logGroupName=group, logStreamName=trials[0] + "/algo-9-1")
        self.assertEqual(error_code(cm.exception), "ResourceNotFoundException")
        self.assertEqual(set(checked), {"DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "DescribeLogGroups"})

        # The aws CLI: its own paging of filter-log-events, and get-log-events.
        cli = lambda *args: self.aws(*args, service="logs")[1]
        out = cli("get-log-events", "--log-group-name", group, "--log-stream-name", streams[0]["logStreamName"],
                  "--start-from-head")
        self.assertEqual([e["message"] for e in out["events"]], lines)
        out = cli("filter-log-events", "--log-group-name", group, "--log-stream-name-prefix", MAIN,
                  "--filter-pattern", "loss", "--page-size", "5")
        self.assertEqual(len(out["events"]), len(found))
        # A space-delimited pattern through the CLI, as a user types it: lines are "epoch=N loss=X".
        out = cli("filter-log-events", "--log-group-name", group, "--log-stream-name-prefix", MAIN,
                  "--filter-pattern", '[e = "epoch=1", l = "loss=*"]')
        self.assertEqual(len(out["events"]), MAIN_TRIALS, out["events"])
        # `aws logs tail` (aws CLI v2, Debian 12's too), which pages FilterLogEvents itself.
        rc, text, err = self.aws("tail", group, "--log-stream-name-prefix", trials[0], "--since", "1d",
                                 "--format", "short", service="logs", raw=True, expect_rc=None)
        if rc == 2 and "invalid choice" in err:
            self.skipTest(f"{AWS_CLI} has no `logs tail` (aws CLI v1)")
        self.assertEqual(rc, 0, f"aws logs tail\nstdout: {text}\nstderr: {err}")
        tailed = [line.split(" ", 1)[1] for line in text.splitlines() if line]
        self.assertEqual(tailed, lines, text)

    def test_19_training_job_metrics_through_cloudwatch_clients(self):
        # The training jobs' metrics as CloudWatch serves them (coordinator/cloudwatch_metrics.h),
        # with boto3's "cloudwatch" client and the aws CLI, in the protocol the installed botocore
        # speaks to CloudWatch: the query protocol (form in, XML out) for Debian 12's 1.29, AWS
        # JSON 1.0 for 1.32 and later. What they read is checked against the values hpo stored.
        self.need("main_done")
        cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
        cw = boto3.client("cloudwatch", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="y", config=cfg)
        # (botocore 1.3x+ lists several protocols; resolved_protocol is the one it sends.)
        protocol = getattr(cw.meta.service_model, "resolved_protocol", cw.meta.service_model.protocol)
        print(f"\n    CloudWatch protocol of botocore {botocore.__version__}: {protocol}", file=sys.stderr)
        sm = self.client()
        trial = [t["TrainingJobName"] for page in self.pages(MAIN) for t in page][0]
        described = sm.describe_training_job(TrainingJobName=trial)
        with urllib.request.urlopen(f"{self.url}/hpo/v1/curves?job={MAIN}&trial={trial}", timeout=10) as r:
            curve = json.loads(r.read())["Curves"][trial]
        self.assertTrue(curve, "the training job's loss values")
        dims = [{"Name": "TrainingJobName", "Value": trial}]
        ns = "/aws/sagemaker/TrainingJobs"

        listed = cw.list_metrics(Namespace=ns, Dimensions=dims)["Metrics"]
        self.assertEqual({m["MetricName"] for m in listed}, {m["MetricName"] for m in described["FinalMetricDataList"]})
        every = [m for page in cw.get_paginator("list_metrics").paginate(Namespace=ns) for m in page["Metrics"]]
        self.assertGreaterEqual(len({m["Dimensions"][0]["Value"] for m in every}), MAIN_TRIALS)
        # A dimension filter without a Value matches every metric with that dimension (it matched none).
        named = cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "TrainingJobName"}])["Metrics"]
        self.assertEqual(len(named), len(cw.list_metrics(Namespace=ns)["Metrics"]))
        self.assertEqual(cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host"}])["Metrics"], [])

        # The SDK's window (TrainingJobAnalytics): TrainingStartTime to a minute past the end.
        start = described["TrainingStartTime"] - datetime.timedelta(seconds=1)
        end = described["TrainingEndTime"] + datetime.timedelta(seconds=60)
        stats = cw.get_metric_statistics(Namespace=ns, MetricName="loss", Dimensions=dims, StartTime=start,
                                         EndTime=end, Period=60, Statistics=["SampleCount", "Sum", "Minimum", "Maximum"])
        points = stats["Datapoints"]
        self.assertEqual(stats["Label"], "loss")
        self.assertEqual(sum(p["SampleCount"] for p in points), len(curve), points)
        self.assertAlmostEqual(sum(p["Sum"] for p in points), sum(curve), places=9)
        self.assertEqual(min(p["Minimum"] for p in points), min(curve))
        self.assertEqual(max(p["Maximum"] for p in points), max(curve))
        # Stored with the unit None: another unit has no datapoints (they came back regardless).
        for unit, n in (("None", len(points)), ("Seconds", 0)):
            self.assertEqual(len(cw.get_metric_statistics(Namespace=ns, MetricName="loss", Dimensions=dims,
                                                          StartTime=start, EndTime=end, Period=60, Unit=unit,
                                                          Statistics=["Sum"])["Datapoints"]), n, unit)
        # Periods from StartTime rounded down to the minute, as CloudWatch's.
        minute = start.replace(second=0, microsecond=0)
        self.assertTrue(all(isinstance(p["Timestamp"], datetime.datetime) and minute <= p["Timestamp"] < end
                            and p["Timestamp"].second == 0 and p["Timestamp"].microsecond == 0
                            for p in points), points)

        # GetMetricData through botocore's own paginator, one datapoint a page, oldest first.
        queries = [{"Id": "n", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "loss", "Dimensions": dims},
                                              "Period": 1, "Stat": "SampleCount"}},
                   {"Id": "best", "Label": "lowest loss", "MetricStat": {
                       "Metric": {"Namespace": ns, "MetricName": "loss", "Dimensions": dims},
                       "Period": 3600, "Stat": "Minimum"}}]
        pages = list(cw.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending",
            PaginationConfig={"PageSize": 1}))
        by_id = {}
        for page in pages:
            for result in page["MetricDataResults"]:
                got = by_id.setdefault(result["Id"], {"Label": result["Label"], "Timestamps": [], "Values": []})
                got["Timestamps"] += result["Timestamps"]
                got["Values"] += result["Values"]
        self.assertEqual(len(pages), sum(len(r["Values"]) for r in by_id.values()), "one datapoint a page")
        self.assertEqual(sum(by_id["n"]["Values"]), len(curve))
        self.assertEqual(by_id["n"]["Timestamps"], sorted(by_id["n"]["Timestamps"]))
        self.assertEqual((by_id["best"]["Label"], by_id["best"]["Values"]), ("lowest loss", [min(curve)]))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            cw.get_metric_data(MetricDataQueries=[{"Id": "e", "Expression": "SUM(METRICS())"}], StartTime=start,
                               EndTime=end)
        self.assertEqual(error_code(cm.exception), "InvalidParameterValue")
        self.assertIn("metric math", str(cm.exception))
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            cw.get_metric_statistics(Namespace=ns, MetricName="loss", Dimensions=dims, StartTime=end, EndTime=start,
                                     Period=60, Statistics=["Sum"])
        self.assertEqual(error_code(cm.exception), "InvalidParameterCombination")
        with self.assertRaises(botocore.exceptions.ClientError) as cm:
            cw.describe_alarms()
        self.assertIn(error_code(cm.exception), {"InvalidAction", "UnknownOperationException"})

        # The aws CLI, which speaks what its own botocore does (Debian's: the query protocol).
        cli = lambda *args: self.aws(*args, service="cloudwatch")[1]
        window = ["--start-time", start.isoformat(), "--end-time", end.isoformat()]
        out = cli("get-metric-statistics", "--namespace", ns, "--metric-name", "loss", "--dimensions",
                  f"Name=TrainingJobName,Value={trial}", "--period", "3600", "--statistics", "Maximum", *window)
        self.assertEqual([p["Maximum"] for p in out["Datapoints"]], [max(curve)], out)
        out = cli("get-metric-data", "--metric-data-queries", json.dumps(queries[1:]), *window)
        self.assertEqual(out["MetricDataResults"][0]["Values"], [min(curve)], out)
        out = cli("list-metrics", "--namespace", ns, "--dimensions", f"Name=TrainingJobName,Value={trial}")
        self.assertEqual(sorted(m["MetricName"] for m in out["Metrics"]), sorted(m["MetricName"] for m in listed))

    def test_20_search(self):
        # SageMaker's Search over the training jobs and tuning jobs here (coordinator/search.h);
        # every response is walked against the model's SearchResponse by the Wire.
        self.need("main_done")
        rows = self.need("main_rows")
        arn = self.need(MAIN)
        loss = {r["TrainingJobName"]: r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for r in rows}
        layers = {r["TrainingJobName"]: int(r["TunedHyperParameters"]["layers"]) for r in rows}
        mine = {"Name": "TuningJobArn", "Operator": "Equals", "Value": arn}

        def search(expression=None, **kw):
            if expression is not None:
                kw["SearchExpression"] = expression
            return self.sm.search(Resource=kw.pop("Resource", "TrainingJob"), **kw)

        def names(out, member="TrainingJob", key="TrainingJobName"):
            return [r[member][key] for r in out["Results"]]

        out = search({"Filters": [mine]}, MaxResults=100)
        self.assertEqual(sorted(names(out)), sorted(loss))
        job = out["Results"][0]["TrainingJob"]
        self.assertEqual(job["TuningJobArn"], arn)
        self.assertIn("loss", [m["MetricName"] for m in job["FinalMetricDataList"]])
        self.assertIn("Tags", job)
        self.assertEqual(out["ResponseMetadata"]["HTTPStatusCode"], 200)
        modified = [r["TrainingJob"]["LastModifiedTime"] for r in out["Results"]]
        self.assertEqual(modified, sorted(modified, reverse=True), "LastModifiedTime, Descending by default")
        # A metric: filtered and sorted by its final value.
        cut = sorted(loss.values())[len(loss) // 2]
        out = search({"Filters": [mine, {"Name": "Metrics.loss", "Operator": "LessThan", "Value": repr(cut)}]},
                     SortBy="Metrics.loss", SortOrder="Ascending", MaxResults=100)
        want = sorted((n for n in loss if loss[n] < cut), key=lambda n: loss[n])
        self.assertEqual(names(out), want)
        # A hyperparameter, compared as a number; Or over subexpressions.
        out = search({"Filters": [mine, {"Name": "HyperParameters.layers", "Operator": "GreaterThanOrEqualTo",
                                         "Value": "3"}]}, MaxResults=100)
        self.assertEqual(sorted(names(out)), sorted(n for n in layers if layers[n] >= 3))
        two = sorted(loss)[:2]
        out = search({"Operator": "Or", "SubExpressions": [
            {"Filters": [{"Name": "TrainingJobName", "Value": two[0]}]},
            {"Filters": [{"Name": "TrainingJobName", "Operator": "In", "Value": f"{two[1]}, nothing-here"}]}]})
        self.assertEqual(sorted(names(out)), two)
        # A nested filter: one element of the list satisfies all its filters.
        out = search({"Filters": [mine], "NestedFilters": [{"NestedPropertyName": "SecondaryStatusTransitions",
                                                            "Filters": [{"Name": "SecondaryStatusTransitions.Status",
                                                                         "Value": "Completed"}]}]}, MaxResults=100)
        self.assertEqual(len(out["Results"]), len(loss))
        # Pages by hand: each training job once, in one order; TotalHits counts them all.
        got, token, pages = [], None, 0
        while True:
            kw = {"SortBy": "TrainingJobName", "SortOrder": "Ascending", "MaxResults": 4}
            if token:
                kw["NextToken"] = token
            page = search({"Filters": [mine]}, **kw)
            got += names(page)
            pages += 1
            token = page.get("NextToken")
            if not token:
                break
            self.assertLess(pages, 10, "pagination does not end")
        self.assertEqual(got, sorted(loss))
        # TotalHits is newer than Debian's botocore, which drops it: read through the newer model.
        page = self.newer_client().search(Resource="TrainingJob", SearchExpression={"Filters": [mine]}, MaxResults=2)
        self.assertEqual((len(page["Results"]), page["TotalHits"]), (2, {"Value": len(loss), "Relation": "EqualTo"}))
        # VisibilityConditions and CrossAccountFilterOption (newer than Debian's botocore too): a
        # resource with the tag shows only with that value; none here is shared from elsewhere.
        newer = self.newer_client()
        def visible(conditions, **kw):
            return len(newer.search(Resource="TrainingJob", SearchExpression={"Filters": [mine]}, MaxResults=100,
                                    VisibilityConditions=conditions, **kw)["Results"])
        self.assertEqual(visible([{"Key": "Tags.suite", "Value": "aws-clients"}]), len(loss))
        self.assertEqual(visible([{"Key": "Tags.suite", "Value": "elsewhere"}]), 0)
        self.assertEqual(visible([{"Key": "Tags.absent", "Value": "x"}]), len(loss), "without the tag: shown")
        self.assertEqual(visible([{"Key": "Tags.suite", "Value": "aws-clients"}], CrossAccountFilterOption="CrossAccount"),
                         0)
        # Tuning jobs.
        out = search({"Filters": [{"Name": "HyperParameterTuningJobName", "Operator": "In",
                                   "Value": f"{MAIN},{LONG_SDK}"}]}, Resource="HyperParameterTuningJob")
        recs = {r["HyperParameterTuningJob"]["HyperParameterTuningJobName"]: r["HyperParameterTuningJob"]
                for r in out["Results"]}
        self.assertEqual(sorted(recs), sorted([MAIN, LONG_SDK]))
        self.assertEqual(recs[MAIN]["HyperParameterTuningJobStatus"], "Completed")
        self.assertEqual(recs[MAIN]["BestTrainingJob"]["TrainingJobName"], min(loss, key=loss.get))
        out = search({"Filters": [{"Name": "BestTrainingJob.FinalHyperParameterTuningJobObjectiveMetric.Value",
                                   "Operator": "LessThanOrEqualTo", "Value": repr(min(loss.values()))},
                                  {"Name": "HyperParameterTuningJobName", "Value": MAIN}]},
                     Resource="HyperParameterTuningJob")
        self.assertEqual(names(out, "HyperParameterTuningJob", "HyperParameterTuningJobName"), [MAIN])
        # What SageMaker refuses is refused, saying what is wrong.
        for kw, says in (
                ({"SearchExpression": {"Filters": [{"Name": "TrainingJobStatus", "Operator": "GreaterThan",
                                                    "Value": "A"}]}}, "not supported for text properties"),
                ({"SearchExpression": {"Filters": [{"Name": "Metric.loss", "Value": "1"}]}}, "Metrics.NAME"),
                ({"SearchExpression": {"Filters": [{"Name": "TrainingJobName", "Operator": "Contains", "Value": "a"},
                                                   {"Name": "RoleArn", "Operator": "Contains", "Value": "b"}]}},
                 "'CONTAINS' operator usage limit of 1 exceeded"),
                ({"SearchExpression": {"Filters": [{"Name": "CreationTime", "Operator": "GreaterThan",
                                                    "Value": "yesterday"}]}}, "YYYY-mm-ddTHH:MM:SS"),
                ({"Resource": "Experiment"}, "TrainingJob or HyperParameterTuningJob"),
                ({"SortBy": "Metrics"}, "not a property")):
            with self.assertRaises(botocore.exceptions.ClientError) as cm:
                search(**kw)
            self.assertEqual(error_code(cm.exception), "ValidationException")
            self.assertIn(says, cm.exception.response["Error"]["Message"])
        # The aws CLI (which follows NextToken itself).
        _, out, _ = self.aws("search", "--resource", "TrainingJob", "--search-expression",
                             json.dumps({"Filters": [mine]}), "--sort-by", "Metrics.loss", "--sort-order", "Ascending")
        self.check_cli(out, "Search")
        self.assertEqual(names(out), sorted(loss, key=loss.get))

    def test_99_every_response_was_checked(self):
        checked = self.wire.checked
        for op in ("CreateHyperParameterTuningJob", "DescribeHyperParameterTuningJob", "ListHyperParameterTuningJobs",
                   "ListTrainingJobsForHyperParameterTuningJob", "StopHyperParameterTuningJob",
                   "DescribeTrainingJob", "StopTrainingJob", "DeleteHyperParameterTuningJob", "ListTags",
                   "ListTrainingJobs", "AddTags", "DeleteTags", "Search"):
            self.assertGreater(checked.get(op, 0), 0, f"no {op} response was checked")
        print("\n    responses checked against the model: "
              + ", ".join(f"{op} {n}" for op, n in sorted(checked.items())), file=sys.stderr)
        if self.wire.checker.unchecked_patterns:
            print("    patterns Python's re cannot compile, not checked: "
                  + ", ".join(sorted(self.wire.checker.unchecked_patterns)), file=sys.stderr)


def main():
    print(f"hpo: {HPO}\nquadratic: {QUADRATIC}\naws CLI: {AWS_CLI}\n"
          f"boto3 {boto3.__version__}, botocore {botocore.__version__}, "
          f"model {MODEL_PATH} ({MODEL_VERSION})", file=sys.stderr)
    if MODEL_ADDITIONS:
        print("members from the newer SageMaker model (absent from the installed one): "
              + ", ".join(MODEL_ADDITIONS), file=sys.stderr)
    prog = unittest.main(exit=False, verbosity=2 if "-v" in sys.argv else 1)
    ok = prog.result.wasSuccessful()
    tmp = getattr(AwsClients, "tmp", None)
    kill_all()
    if tmp:
        if ok and not KEEP:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for log in sorted(os.listdir(tmp)):
                if log.endswith(".log"):
                    with open(os.path.join(tmp, log), errors="replace") as f:
                        tail = f.readlines()[-15:]
                    print(f"---- {log} (last {len(tail)} lines)\n" + "".join(tail), file=sys.stderr)
            print(f"state, trial directories and logs kept in {tmp}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
