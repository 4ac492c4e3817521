#!/usr/bin/python3
"""The SageMaker Python SDK v2 (`sagemaker<3`) against a real hpo cluster on loopback.

Drives hpo the way a SageMaker user does: `sagemaker.Session` with a boto3 SageMaker client on
the coordinator's endpoint, `Estimator(image_uri=...)`, `HyperparameterTuner(...).fit()`, and
what the SDK offers on a tuning job afterwards. Each of these once broke against hpo:

  * every `tuner.fit()` sends HyperParameterTuningResourceConfig (plain, or with
    `instance_configs`) instead of ResourceConfig;
  * `HyperparameterTuner.attach()` needs `_tuning_objective_metric` in the definition's
    StaticHyperParameters, all three range lists (Grid jobs: categorical only) and a
    ResourceConfig in DescribeHyperParameterTuningJob;
  * `tuner.best_estimator()` / `Estimator.attach()` need OutputDataConfig.KmsKeyId, ListTags and
    a StatusMessage on every SecondaryStatusTransition of DescribeTrainingJob.

Starts `hpo coordinator` (HPO_BINARY, default build/cli/hpo) on free loopback ports with a
temporary state directory and two `hpo worker` processes (ml.m5.large only) that map the images
`quadratic` and an ECR-style name to the dependency-free trainer (HPO_QUADRATIC, default
build/examples/trainers/quadratic). The SDK refuses file:// output paths outside local mode
(estimator.py: "The 'file://' output paths are only supported when using Local Mode"), so the
models go to a real S3: run it under tests/worker/with_radosgw.sh (CMake does).

The SDK is not packaged by Debian: `bash scripts/install-deps.sh --test` puts it in a virtual
environment at tests/.venv-sdk (HPO_SDK_VENV overrides). Started by any Python, this script
re-executes itself with that environment's interpreter; without it, it fails and says so.
HPO_SKIP_SDK_TEST=1 skips it (exit 77) instead, for machines that cannot reach PyPI.

Scenarios run concurrently (each SDK wait polls every 5 s, sleeping first), every one with its
own tuning jobs; each prints what it checked. Exit status: 0 all passed, 1 a failure, 77 skipped.
HPO_KEEP_TMP=1 keeps the state, trial directories and logs.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.environ.get("HPO_SDK_VENV") or os.path.join(REPO_ROOT, "tests", ".venv-sdk")


sys.path.insert(0, HERE)
import procs  # noqa: E402
from procs import find as _find, free_port, kill_all, spawn  # noqa: E402

procs.reexec_in_venv(VENV, "SageMaker Python SDK v2", __file__)

import atexit  # noqa: E402
import concurrent.futures  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import urllib.request  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

S3_ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
TMP = tempfile.mkdtemp(prefix="hpo-sdk-test-")
KEEP_TMP = [os.environ.get("HPO_KEEP_TMP", "") not in ("", "0")]  # or a scenario failed
atexit.register(lambda: KEEP_TMP[0] or shutil.rmtree(TMP, ignore_errors=True))
procs.isolate_sdk_environment(TMP, S3_ENV_KEYS)
os.environ["SAGEMAKER_SUPPRESS_V2_WARNING"] = "1"
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
# What tuner.fit() logs for every estimator it has not trained itself; expected here.
logging.getLogger("sagemaker.estimator").addFilter(lambda r: "No finished training job found" not in r.getMessage())

try:
    import boto3
    import botocore.config
    import sagemaker
    from sagemaker.analytics import TrainingJobAnalytics
    from sagemaker.estimator import Estimator
    from sagemaker.pytorch import PyTorch
    from sagemaker.inputs import TrainingInput
    from sagemaker.session_settings import SessionSettings
    from sagemaker.tuner import (CategoricalParameter, ContinuousParameter, HyperbandStrategyConfig,
                                 HyperparameterTuner, InstanceConfig, IntegerParameter, StrategyConfig,
                                 TuningJobCompletionCriteriaConfig, WarmStartTypes)
except ImportError as e:
    print(f"FAIL: {VENV} does not import the SageMaker Python SDK ({e}).\n"
          "Recreate it with:  rm -rf tests/.venv-sdk && bash scripts/install-deps.sh --test", file=sys.stderr)
    sys.exit(1)
if not sagemaker.__version__.startswith("2."):
    print(f"FAIL: {VENV} has sagemaker {sagemaker.__version__}; this test is for v2 (sagemaker<3)", file=sys.stderr)
    sys.exit(1)

HPO = _find("HPO_BINARY", "build/cli/hpo")
QUADRATIC = _find("HPO_QUADRATIC", "build/examples/trainers/quadratic")

BUCKET = "hpo-sdk-test"
OUTPUT = f"s3://{BUCKET}/output"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "quadratic"
ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/quadratic:latest"
# A framework image for script mode, mapped to examples/trainers/script_mode.py on the workers.
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-cpu-py310"
SCRIPT_MODE = os.path.join(procs.REPO, "examples", "trainers", "script_mode.py")
WORKER_TYPE = "ml.m5.large"     # what both workers serve, and nothing else
UNSERVED_TYPE = "ml.g5.xlarge"  # preferred by the instance_configs job; no worker has it
OBJECTIVE = "validation:loss"
METRICS = [{"Name": OBJECTIVE, "Regex": "loss=([0-9.eE+-]+)"}]
STATIC = {"epochs": 3, "sleep_ms": 20}
DF_COLUMNS = {"TrainingJobName", "TrainingJobStatus", "FinalObjectiveValue", "TrainingStartTime",
              "TrainingEndTime", "TrainingElapsedTimeSeconds"}
SCENARIO_TIMEOUT_S = 150      # all scenarios together; they take about 30 s
RUN = time.strftime("%H%M%S")   # keeps job names apart in a kept state directory


def quadratic_loss(hp):
    """The final loss examples/trainers/quadratic.cc prints for these hyperparameters."""
    x, y = float(hp.get("x", 0)), float(hp.get("y", 0))
    layers = int(float(hp.get("layers", 3)))
    opt = str(hp.get("optimizer", "adam")).strip('"')
    return (x - 0.3) ** 2 + (y + 0.2) ** 2 + (0 if opt == "adam" else 0.05) + abs(layers - 3) * 0.01


class Checks:
    """Collects what a scenario checked; a failed check raises (the scenario stops there)."""

    _lock = threading.Lock()

    def __init__(self, name):
        self.name, self.lines = name, []

    def ok(self, cond, what):
        if not cond:
            raise AssertionError(f"{self.name}: {what}")
        self.lines.append(what)

    def eq(self, got, want, what):
        self.ok(got == want, f"{what} == {want!r}" + ("" if got == want else f" (got {got!r})"))

    def print(self, status):
        with self._lock:
            print(f"[{status}] {self.name}", flush=True)
            for line in self.lines:
                print(f"    ok: {line}", flush=True)


class Cluster:
    """Coordinator + 2 workers on loopback, and the SDK session pointed at them."""

    def __init__(self):
        for path, env in ((HPO, "HPO_BINARY"), (QUADRATIC, "HPO_QUADRATIC")):
            if not os.access(path, os.X_OK):
                raise SystemExit(f"FAIL: {path} is not built (set {env})")
        s3_env = {k: os.environ[k] for k in S3_ENV_KEYS if k in os.environ}
        if "AWS_ENDPOINT_URL_S3" not in s3_env:
            print("SKIP: no S3 endpoint: run under tests/worker/with_radosgw.sh (the SDK needs s3:// output)",
                  file=sys.stderr)
            sys.exit(77)
        self.tmp = TMP
        procs.cleanup_on_exit(lambda: self.tmp)

        zmq_port, http_port = free_port(), free_port()
        while http_port == zmq_port:
            http_port = free_port()
        self.url = f"http://127.0.0.1:{http_port}"
        spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{zmq_port}", "--http", f"127.0.0.1:{http_port}",
               "--state-dir", os.path.join(self.tmp, "state"), "--lease-ms", "3000", "--grace", "1"],
              os.path.join(self.tmp, "coordinator.log"))
        for i in (1, 2):
            spawn([HPO, "worker", "--connect", f"tcp://127.0.0.1:{zmq_port}", "--id", f"w{i}", "--slots", "4",
                   "--instance-type", WORKER_TYPE, "--work-dir", os.path.join(self.tmp, f"w{i}"),
                   "--image", f"{IMAGE}={QUADRATIC}", "--image", f"{ECR_IMAGE}={QUADRATIC}",
                   "--image", f"{PYTORCH_IMAGE}={SCRIPT_MODE}"],
                  os.path.join(self.tmp, f"worker{i}.log"), extra_env=s3_env)
        procs.wait_for_workers(self.url, 2, self.tmp)

        # The training jobs' logs, as CloudWatch Logs serves them, from the same endpoint
        # (Session.logs_for_job, Estimator.logs(): boto3 reads this for its "logs" clients).
        os.environ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"] = self.url
        # ... and their metrics, as CloudWatch serves them (TrainingJobAnalytics).
        os.environ["AWS_ENDPOINT_URL_CLOUDWATCH"] = self.url
        # What a user writes: a boto3 session with credentials, the SageMaker client on hpo's endpoint.
        # The keys are radosgw's (the SDK's S3 calls need them); the loopback coordinator takes any.
        self.boto = boto3.Session(region_name="us-east-1")
        self.sm = self.boto.client("sagemaker", endpoint_url=self.url,
                                   config=botocore.config.Config(connect_timeout=5, read_timeout=30))
        self.s3 = self.boto.client("s3", config=botocore.config.Config(s3={"addressing_style": "path"}))
        self.s3.create_bucket(Bucket=BUCKET)
        for i in range(2):
            self.s3.put_object(Bucket=BUCKET, Key=f"data/train/part-{i}.csv", Body=b"1,2,3\n")
        self.inputs = {"train": TrainingInput(f"s3://{BUCKET}/data/train/", content_type="text/csv")}
        # What the SDK sent, per tuning job: to check the requests take the paths that once broke.
        self.created = {}
        self.sm.meta.events.register("provide-client-params.sagemaker.CreateHyperParameterTuningJob", self._record)
        self.session = sagemaker.Session(boto_session=self.boto, sagemaker_client=self.sm, default_bucket=BUCKET,
                                         settings=SessionSettings(encrypt_repacked_artifacts=False))

    def _record(self, params, **_):
        self.created[params["HyperParameterTuningJobName"]] = params

    def estimator(self, **kw):
        args = dict(image_uri=IMAGE, role=ROLE, instance_count=1, instance_type=WORKER_TYPE,
                    sagemaker_session=self.session, metric_definitions=METRICS, hyperparameters=dict(STATIC),
                    output_path=OUTPUT, max_run=600)
        args.update(kw)
        return Estimator(**args)

    def training_job(self, name):
        return self.sm.describe_training_job(TrainingJobName=name)


RANGES = {"x": ContinuousParameter(-1.0, 1.0), "y": ContinuousParameter(-1.0, 1.0),
          "layers": IntegerParameter(1, 6), "optimizer": CategoricalParameter(["adam", "sgd"])}


def tuner_for(c, strategy, max_jobs, ranges=RANGES, **kw):
    return HyperparameterTuner(c.estimator(), OBJECTIVE, ranges, metric_definitions=METRICS,
                               objective_type="Minimize", strategy=strategy, max_jobs=max_jobs,
                               max_parallel_jobs=kw.pop("max_parallel_jobs", 2), **kw)


def check_csv_is_the_dataframe(ck, c, name, df):
    """`hpo trials NAME -o csv`, read by pandas, is the SDK's analytics dataframe: same columns in the
    same order, same rows, the same values (times compared as times, to the millisecond)."""
    import io
    import pandas as pd
    out = subprocess.run([HPO, "trials", name, "-o", "csv", "--coordinator", c.url], capture_output=True, text=True,
                         timeout=60)
    ck.eq(out.returncode, 0, f"{name}: hpo trials -o csv exits 0 ({out.stderr.strip()})")
    ours = pd.read_csv(io.StringIO(out.stdout))
    ck.eq(list(ours.columns), list(df.columns), f"{name}: hpo trials -o csv has the dataframe's columns, in order")
    if list(ours.columns) != list(df.columns) or len(ours) != len(df):
        ck.eq(len(ours), len(df), f"{name}: hpo trials -o csv has the dataframe's rows")
        return
    ours = ours.sort_values("TrainingJobName").reset_index(drop=True)
    theirs = df.sort_values("TrainingJobName").reset_index(drop=True)
    differ = []
    for col in df.columns:
        for a, b in zip(ours[col], theirs[col]):
            if col in ("TrainingStartTime", "TrainingEndTime"):
                same = abs((pd.Timestamp(a) - pd.Timestamp(b)).total_seconds()) < 1e-3
            elif isinstance(b, (int, float)) and not isinstance(b, bool):
                same = (pd.isna(a) and pd.isna(b)) or abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
            else:
                same = str(a) == str(b)
            if not same:
                differ.append(f"{col}: {a!r} vs {b!r}")
    ck.ok(not differ, f"{name}: hpo trials -o csv holds the dataframe's values" + (f" ({differ[:3]})" if differ else ""))


def check_completed_job(ck, c, tuner, trials, tuned):
    """describe(), best_training_job(), analytics().dataframe() of a Completed single-definition job."""
    name = tuner.latest_tuning_job.name
    d = tuner.describe()
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"{name}: tuner.describe() status")
    ck.eq(d["TrainingJobStatusCounters"]["Completed"], trials, f"{name}: completed training jobs")
    best = tuner.best_training_job()
    ck.eq(best, d["BestTrainingJob"]["TrainingJobName"], f"{name}: tuner.best_training_job()")
    df = tuner.analytics().dataframe()
    ck.eq(len(df), trials, f"{name}: analytics().dataframe() rows")
    missing = (DF_COLUMNS | set(tuned)) - set(df.columns)
    ck.ok(not missing, f"{name}: dataframe columns include {sorted(DF_COLUMNS | set(tuned))}"
          + (f" (missing {sorted(missing)})" if missing else ""))
    ck.ok(set(df["TrainingJobStatus"]) == {"Completed"}, f"{name}: every dataframe row Completed")
    best_value = float(d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    ck.ok(abs(df["FinalObjectiveValue"].min() - best_value) < 1e-6,
          f"{name}: best objective {best_value:.6f} is the dataframe's minimum FinalObjectiveValue")
    row = df[df["TrainingJobName"] == best].iloc[0]
    want = quadratic_loss({k: row[k] for k in tuned})
    ck.ok(abs(want - best_value) < 1e-4,
          f"{name}: best objective matches the trainer's loss for its hyperparameters ({want:.6f})")
    check_csv_is_the_dataframe(ck, c, name, df)
    return d, df


# ---- scenarios --------------------------------------------------------------------------------

def scenario_random(c, ck):
    """Random with fit(wait=True); attach(); best_estimator(); both warm-start tuners."""
    tuner = tuner_for(c, "Random", 6, base_tuning_job_name="sdk-rand")
    t0 = time.monotonic()
    tuner.fit(c.inputs, wait=True)
    name = tuner.latest_tuning_job.name
    ck.ok(name.startswith("sdk-rand-"), f"tuner.fit(wait=True) Random job {name} returned in "
          f"{time.monotonic() - t0:.1f} s")
    sent = c.created[name]["TrainingJobDefinition"]
    ck.eq(("ResourceConfig" in sent, sent.get("HyperParameterTuningResourceConfig", {}).get("InstanceType")),
          (False, WORKER_TYPE), "the SDK sent HyperParameterTuningResourceConfig {InstanceType, ...}, "
          "no ResourceConfig, and hpo accepted it")
    d, _ = check_completed_job(ck, c, tuner, 6, RANGES)
    definition = d["TrainingJobDefinition"]
    ck.eq(definition["StaticHyperParameters"].get("_tuning_objective_metric"), OBJECTIVE,
          "Describe: StaticHyperParameters._tuning_objective_metric")
    ck.eq(definition.get("ResourceConfig", {}).get("InstanceType"), WORKER_TYPE,
          "Describe: TrainingJobDefinition.ResourceConfig.InstanceType")
    tj = c.training_job(d["BestTrainingJob"]["TrainingJobName"])
    ck.eq(tj["TrainingJobStatus"], "Completed", "DescribeTrainingJob(best) status")
    ck.eq(tj["ModelArtifacts"]["S3ModelArtifacts"], f"{OUTPUT}/{tj['TrainingJobName']}/output/model.tar.gz",
          "DescribeTrainingJob(best) S3ModelArtifacts")
    head = c.s3.head_object(Bucket=BUCKET, Key=f"output/{tj['TrainingJobName']}/output/model.tar.gz")
    ck.ok(head["ContentLength"] > 0, "the best training job's model.tar.gz is in S3")

    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session)
    ck.eq((attached.objective_metric_name, attached.strategy, attached.max_jobs, attached.max_parallel_jobs,
           attached.objective_type), (OBJECTIVE, "Random", 6, 2, "Minimize"),
          f"HyperparameterTuner.attach({name}): objective, strategy, max_jobs, max_parallel_jobs, objective_type")
    ranges = attached.hyperparameter_ranges()
    ck.eq(sorted(r["Name"] for r in ranges["ContinuousParameterRanges"]), ["x", "y"], "attach: continuous ranges")
    ck.eq([(r["Name"], r["MinValue"], r["MaxValue"]) for r in ranges["IntegerParameterRanges"]],
          [("layers", "1", "6")], "attach: integer range")
    ck.eq([r["Values"] for r in ranges["CategoricalParameterRanges"]], [["adam", "sgd"]], "attach: categorical range")
    ck.eq((attached.estimator.image_uri, attached.estimator.instance_type, attached.estimator.instance_count),
          (IMAGE, WORKER_TYPE, 1), "attach: estimator image, instance type and count")
    ck.eq(attached.best_training_job(), d["BestTrainingJob"]["TrainingJobName"], "attach: best_training_job()")

    best = attached.best_estimator()
    ck.eq(best.latest_training_job.name, d["BestTrainingJob"]["TrainingJobName"],
          "best_estimator(): attached to the best training job (ListTags, KmsKeyId, StatusMessage)")
    ck.eq((best.instance_type, best.instance_count, best.image_uri), (WORKER_TYPE, 1, IMAGE),
          "best_estimator(): instance type, count, image")
    hps = best.hyperparameters()
    tuned = d["BestTrainingJob"]["TunedHyperParameters"]
    ck.ok(all(hps.get(k) == v for k, v in tuned.items()) and hps.get("epochs") == str(STATIC["epochs"]),
          f"best_estimator().hyperparameters() carry the best tuned values {tuned} and the static ones")
    ck.eq(best.model_data, tj["ModelArtifacts"]["S3ModelArtifacts"], "best_estimator().model_data")
    # The best training job's output through the SDK's CloudWatch Logs reader.
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        best.logs()
    ck.ok("epoch=0 loss=" in shown.getvalue() and "epoch=2 loss=" in shown.getvalue(),
          "best_estimator().logs(): the trainer's lines from the coordinator's CloudWatch Logs actions")
    # Its learning curve through the SDK's CloudWatch reader: one datapoint a minute, the mean of
    # the values emitted in it (the trainer's three epochs fit in one).
    best_name = d["BestTrainingJob"]["TrainingJobName"]
    with urllib.request.urlopen(f"{c.url}/hpo/v1/curves?job={name}&trial={best_name}", timeout=10) as r:
        curve = json.loads(r.read())["Curves"][best_name]
    frame = TrainingJobAnalytics(best_name, metric_names=[OBJECTIVE], sagemaker_session=c.session).dataframe()
    values = list(frame["value"]) if "value" in frame else []
    ck.ok(len(values) >= 1 and abs(sum(values) / len(values) - sum(curve) / len(curve)) < 1e-9
          and set(frame["metric_name"]) == {OBJECTIVE},
          f"TrainingJobAnalytics({best_name}).dataframe(): the {len(curve)} values of its curve {curve} "
          f"as CloudWatch averages {values}")
    # The same curve through GetMetricData (what dashboards call), in this botocore's AWS
    # JSON 1.0: each value a datapoint of its own second at most, so SampleCount adds up to them.
    cw = c.session.boto_session.client("cloudwatch")
    tj = c.session.sagemaker_client.describe_training_job(TrainingJobName=best_name)
    data = cw.get_metric_data(
        MetricDataQueries=[{"Id": "n", "MetricStat": {"Metric": {
            "Namespace": "/aws/sagemaker/TrainingJobs", "MetricName": OBJECTIVE,
            "Dimensions": [{"Name": "TrainingJobName", "Value": best_name}]}, "Period": 1, "Stat": "SampleCount"}}],
        StartTime=tj["TrainingStartTime"], EndTime=tj["TrainingEndTime"] + datetime.timedelta(seconds=60))
    protocol = getattr(cw.meta.service_model, "resolved_protocol", cw.meta.service_model.protocol)
    ck.eq((protocol, sum(data["MetricDataResults"][0]["Values"])), ("json", len(curve)),
          f"cloudwatch.get_metric_data({best_name}): protocol, and the samples of its curve")

    # Warm start from the attached parent: both kinds the SDK has.
    child = attached.transfer_learning_tuner()
    child.metric_definitions = METRICS
    child.max_jobs = 4
    child.fit(c.inputs, job_name=f"sdk-tl-{RUN}", wait=True)
    cd = child.describe()
    ck.eq(cd["HyperParameterTuningJobStatus"], "Completed", f"attach(parent).transfer_learning_tuner().fit(): status")
    ck.eq((cd["WarmStartConfig"]["WarmStartType"], [p["HyperParameterTuningJobName"]
                                                    for p in cd["WarmStartConfig"]["ParentHyperParameterTuningJobs"]]),
          ("TransferLearning", [name]), "transfer_learning_tuner: WarmStartConfig type and parent")
    ck.eq(cd["TrainingJobStatusCounters"]["Completed"], 4, "transfer_learning_tuner: 4 training jobs completed")

    twin = attached.identical_dataset_and_algorithm_tuner()
    # The SDK leaves metric_definitions out of the new tuner (tuner.py _create_warm_start_tuner), so
    # a bring-your-own-image job gives them again, as on SageMaker.
    twin.metric_definitions = METRICS
    twin.max_jobs = 3
    twin.fit(c.inputs, job_name=f"sdk-ident-{RUN}", wait=True)
    td = twin.describe()
    ck.eq(td["HyperParameterTuningJobStatus"], "Completed", "identical_dataset_and_algorithm_tuner().fit(): status")
    ck.eq(td["WarmStartConfig"]["WarmStartType"], WarmStartTypes.IDENTICAL_DATA_AND_ALGORITHM.value,
          "identical_dataset_and_algorithm_tuner: WarmStartType")
    parent_best = float(d["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    overall = td.get("OverallBestTrainingJob")
    ck.ok(overall is not None and float(overall["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
          <= parent_best + 1e-9, "identical_dataset_and_algorithm_tuner: OverallBestTrainingJob at least as good "
          "as the parent's best")


def scenario_bayesian(c, ck):
    tuner = tuner_for(c, "Bayesian", 6, random_seed=7)
    tuner.fit(c.inputs, job_name=f"sdk-bayes-{RUN}", wait=True)
    d, _ = check_completed_job(ck, c, tuner, 6, RANGES)
    ck.eq(d["HyperParameterTuningJobConfig"]["Strategy"], "Bayesian", "Bayesian: strategy echoed")
    ck.eq(d["HyperParameterTuningJobConfig"].get("RandomSeed"), 7, "Bayesian: RandomSeed echoed")


def scenario_criteria(c, ck):
    """TuningJobCompletionCriteriaConfig, early_stopping_type and random_seed as the SDK sends them:
    the target ends the job at its first training job, and Describe / attach() give them back."""
    name = f"sdk-crit-{RUN}"
    criteria = TuningJobCompletionCriteriaConfig(max_number_of_training_jobs_not_improving=5,
                                                 complete_on_convergence=False, target_objective_metric_value=1e6)
    tuner = tuner_for(c, "Random", 8, max_parallel_jobs=1, early_stopping_type="Auto", random_seed=11,
                      completion_criteria_config=criteria)
    tuner.fit(c.inputs, job_name=name, wait=True)
    d = tuner.describe()
    cfg = d["HyperParameterTuningJobConfig"]
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"{name}: completion criteria: status")
    ck.eq(cfg.get("TuningJobCompletionCriteria"),
          {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 5},
           "TargetObjectiveMetricValue": 1e6, "ConvergenceDetected": {"CompleteOnConvergence": "Disabled"}},
          f"{name}: TuningJobCompletionCriteria echoed")
    ck.eq((cfg.get("TrainingJobEarlyStoppingType"), cfg.get("RandomSeed")), ("Auto", 11),
          f"{name}: TrainingJobEarlyStoppingType and RandomSeed echoed")
    ck.eq(sum(d["TrainingJobStatusCounters"].values()), 1,
          f"{name}: the first training job's objective (<= 1e6) reaches the target and ends the job (of 8)")
    ck.ok("TuningJobCompletionDetails" in d, f"{name}: TuningJobCompletionDetails present")
    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session)
    got = attached.completion_criteria_config
    ck.eq((got.max_number_of_training_jobs_not_improving, got.complete_on_convergence,
           got.target_objective_metric_value, attached.early_stopping_type),
          (5, False, 1e6, "Auto"), f"HyperparameterTuner.attach({name}): completion criteria and early stopping")


def scenario_hyperband(c, ck):
    """strategy="Hyperband" with the SDK's StrategyConfig(HyperbandStrategyConfig(...)): the job runs,
    Describe gives the config back, and attach() makes a Hyperband tuner of it."""
    name = f"sdk-hb-{RUN}"
    sc = StrategyConfig(hyperband_strategy_config=HyperbandStrategyConfig(min_resource=1, max_resource=3))
    tuner = tuner_for(c, "Hyperband", 6, strategy_config=sc)
    tuner.fit(c.inputs, job_name=name, wait=True)
    d = tuner.describe()
    cfg = d["HyperParameterTuningJobConfig"]
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"{name}: Hyperband: status")
    ck.eq(cfg.get("StrategyConfig"), {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 3}},
          f"{name}: StrategyConfig echoed")
    ck.eq(sum(d["TrainingJobStatusCounters"].values()), 6, f"{name}: 6 training jobs")
    ck.ok(d.get("BestTrainingJob") is not None, f"{name}: a best training job")
    # (The SDK's attach() reads no StrategyConfig back: _prepare_init_params_from_job_description
    # leaves it out, so the attached tuner's strategy_config is None, whatever the service says.)
    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session)
    ck.eq(attached.strategy, "Hyperband", f"HyperparameterTuner.attach({name}): strategy")


def scenario_autotune(c, ck):
    """autotune=True without ranges: the SDK sends the estimator's hyperparameters as AutoParameters
    (those in hyperparameters_to_keep_static stay static); hpo infers ranges around their values."""
    name = f"sdk-auto-{RUN}"
    est = c.estimator(hyperparameters=dict(STATIC, x="0.2", layers="2"))
    tuner = HyperparameterTuner(est, OBJECTIVE, None, metric_definitions=METRICS, objective_type="Minimize",
                                strategy="Random", max_jobs=4, max_parallel_jobs=2, autotune=True,
                                hyperparameters_to_keep_static=["epochs", "sleep_ms"])
    tuner.fit(c.inputs, job_name=name, wait=True)
    d = tuner.describe()
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"{name}: autotune: status")
    ck.eq(d.get("Autotune"), {"Mode": "Enabled"}, f"{name}: Autotune echoed")
    ranges = d["HyperParameterTuningJobConfig"]["ParameterRanges"]
    tuned = sorted(r["Name"] for kind in ("ContinuousParameterRanges", "IntegerParameterRanges",
                                          "CategoricalParameterRanges") for r in ranges.get(kind, []))
    ck.eq(tuned, ["layers", "x"], f"{name}: ranges inferred for x and layers, not for the static ones")
    statics = d["TrainingJobDefinition"]["StaticHyperParameters"]
    ck.eq((statics.get("epochs"), statics.get("sleep_ms")), ("3", "20"),
          f"{name}: hyperparameters_to_keep_static stay static")
    ck.eq(sum(d["TrainingJobStatusCounters"].values()), 4, f"{name}: max_jobs=4 training jobs")


def scenario_grid(c, ck):
    grid = {"optimizer": CategoricalParameter(["adam", "sgd"]), "layers": CategoricalParameter(["2", "3", "4"])}
    tuner = tuner_for(c, "Grid", 6, ranges=grid, max_parallel_jobs=3)
    name = f"sdk-grid-{RUN}"
    tuner.fit(c.inputs, job_name=name, wait=True)
    _, df = check_completed_job(ck, c, tuner, 6, grid)
    combos = {(str(o).strip('"'), str(l).strip('"')) for o, l in zip(df["optimizer"], df["layers"])}
    ck.eq(len(combos), 6, "Grid: the 6 training jobs ran the 6 distinct combinations")
    ck.eq(tuner.describe()["BestTrainingJob"]["TunedHyperParameters"], {"optimizer": "adam", "layers": "3"},
          "Grid: best combination")
    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session)
    ranges = attached.hyperparameter_ranges()
    ck.eq((attached.strategy, ranges["ContinuousParameterRanges"], ranges["IntegerParameterRanges"],
           sorted(r["Name"] for r in ranges["CategoricalParameterRanges"])),
          ("Grid", [], [], ["layers", "optimizer"]),
          f"HyperparameterTuner.attach({name}) of a Grid job: strategy and categorical-only ranges")
    # A job created without the SDK (boto3, the aws CLI, hpo submit) leaves TrainingJobEarlyStoppingType
    # out; SageMaker describes its default, Off, and attach() reads it without a fallback (it raised
    # KeyError on every such job).
    raw = json.loads(json.dumps(c.created[name]))
    raw["HyperParameterTuningJobName"] = f"sdk-raw-{RUN}"
    raw["HyperParameterTuningJobConfig"].pop("TrainingJobEarlyStoppingType", None)
    c.sm.create_hyper_parameter_tuning_job(**raw)
    try:
        attached = HyperparameterTuner.attach(raw["HyperParameterTuningJobName"], sagemaker_session=c.session)
        ck.eq(attached.early_stopping_type, "Off",
              "attach() of a job created by boto3 without TrainingJobEarlyStoppingType: early_stopping_type")
    except KeyError as e:
        ck.ok(False, f"attach() of a job created by boto3 without TrainingJobEarlyStoppingType: KeyError {e}")
    deadline = time.monotonic() + 60  # its six short training jobs end before the next scenario
    while time.monotonic() < deadline and c.sm.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=raw["HyperParameterTuningJobName"])["HyperParameterTuningJobStatus"] in (
                "InProgress", "Stopping"):
        time.sleep(0.2)


def scenario_instance_configs(c, ck):
    tuner = tuner_for(c, "Random", 3)
    tuner.override_resource_config(instance_configs=[
        InstanceConfig(instance_count=1, instance_type=UNSERVED_TYPE, volume_size=10),
        InstanceConfig(instance_count=1, instance_type=WORKER_TYPE, volume_size=20)])
    name = f"sdk-icfg-{RUN}"
    tuner.fit(c.inputs, job_name=name, wait=True)
    d, df = check_completed_job(ck, c, tuner, 3, RANGES)
    configs = d["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"]["InstanceConfigs"]
    ck.eq([(x["InstanceType"], x["VolumeSizeInGB"]) for x in configs], [(UNSERVED_TYPE, 10), (WORKER_TYPE, 20)],
          f"{name}: Describe echoes HyperParameterTuningResourceConfig.InstanceConfigs in order")
    for job in df["TrainingJobName"]:
        rc = c.training_job(job)["ResourceConfig"]
        ck.eq((rc["InstanceType"], rc["InstanceCount"], rc["VolumeSizeInGB"]), (WORKER_TYPE, 1, 20),
              f"DescribeTrainingJob({job}).ResourceConfig: the second InstanceConfig (no {UNSERVED_TYPE} worker)")
    sent = c.created[name]["TrainingJobDefinition"]["HyperParameterTuningResourceConfig"]
    ck.eq([x["InstanceType"] for x in sent["InstanceConfigs"]], [UNSERVED_TYPE, WORKER_TYPE],
          "the SDK sent HyperParameterTuningResourceConfig.InstanceConfigs")
    best = tuner.best_estimator()
    ck.eq(best.instance_type, WORKER_TYPE, "instance_configs job: best_estimator().instance_type")
    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session)
    ck.eq((attached.max_jobs, attached.estimator.image_uri), (3, IMAGE),
          f"HyperparameterTuner.attach({name}) of an instance_configs job")


def scenario_script_mode(c, ck):
    """A framework estimator (script mode): the SDK uploads source_dir to S3 and sends
    sagemaker_program / sagemaker_submit_directory; the worker downloads the code and
    script_mode.py runs the entry point with --name value arguments."""
    src = procs.write_script_mode_source(os.path.join(c.tmp, "pytorch-src"))
    est = PyTorch(entry_point="train.py", source_dir=src, image_uri=PYTORCH_IMAGE, role=ROLE, instance_count=1,
                  instance_type=WORKER_TYPE, sagemaker_session=c.session, output_path=OUTPUT, max_run=600,
                  hyperparameters={"epochs": 3, "batch-size": 32}, metric_definitions=METRICS)
    tuner = HyperparameterTuner(est, OBJECTIVE, {"lr": ContinuousParameter(0.001, 0.1)}, metric_definitions=METRICS,
                                objective_type="Minimize", strategy="Random", max_jobs=3, max_parallel_jobs=2)
    name = f"sdk-script-{RUN}"
    tuner.fit(job_name=name, wait=True)
    d = tuner.describe()
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"{name} completed")
    statics = c.created[name]["TrainingJobDefinition"]["StaticHyperParameters"]
    ck.ok(statics.get("sagemaker_submit_directory", "").startswith(f'"s3://{BUCKET}/'),
          "the SDK uploaded source_dir to S3 and sent sagemaker_submit_directory")
    best = d["BestTrainingJob"]
    lr = float(best["TunedHyperParameters"]["lr"])
    want = procs.script_mode_loss(lr, epochs=3, batch_size=32)
    ck.ok(abs(best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] - want) < 1e-5,
          f"best objective {best['FinalHyperParameterTuningJobObjectiveMetric']['Value']:.6f} is what train.py "
          f"prints for --lr {lr:.5f} --batch-size 32 on its last epoch ({want:.6f})")


def scenario_multi(c, ck):
    name = f"sdk-multi-{RUN}"
    tuner = HyperparameterTuner.create(
        estimator_dict={"quad-a": c.estimator(), "quad-b": c.estimator(image_uri=ECR_IMAGE)},
        objective_metric_name_dict={"quad-a": OBJECTIVE, "quad-b": OBJECTIVE},
        hyperparameter_ranges_dict={"quad-a": RANGES,
                                    "quad-b": {"x": ContinuousParameter(-1.0, 1.0),
                                               "optimizer": CategoricalParameter(["adam", "sgd"])}},
        metric_definitions_dict={"quad-a": METRICS, "quad-b": METRICS},
        objective_type="Minimize", strategy="Random", max_jobs=6, max_parallel_jobs=2)
    tuner.fit(inputs={"quad-a": c.inputs, "quad-b": c.inputs}, job_name=name,
              include_cls_metadata={"quad-a": False, "quad-b": False}, wait=True)
    d = tuner.describe()
    ck.eq(d["HyperParameterTuningJobStatus"], "Completed", f"HyperparameterTuner.create(two estimators).fit(): status")
    ck.eq(sorted(x["DefinitionName"] for x in d["TrainingJobDefinitions"]), ["quad-a", "quad-b"],
          "create: Describe has both TrainingJobDefinitions")
    ck.eq(d["TrainingJobStatusCounters"]["Completed"], 6, "create: 6 training jobs completed")
    df = tuner.analytics().dataframe()
    ck.eq(len(df), 6, "create: analytics().dataframe() rows")
    ck.ok("TrainingJobDefinitionName" in df.columns and set(df["TrainingJobDefinitionName"]) <= {"quad-a", "quad-b"},
          "create: dataframe has a TrainingJobDefinitionName column naming the definitions")
    check_csv_is_the_dataframe(ck, c, tuner.latest_tuning_job.name, df)
    images = {}
    for job, definition in zip(df["TrainingJobName"], df["TrainingJobDefinitionName"]):
        images[definition] = c.training_job(job)["AlgorithmSpecification"]["TrainingImage"]
    ck.ok(all(images[k] == {"quad-a": IMAGE, "quad-b": ECR_IMAGE}[k] for k in images),
          f"create: each training job ran its definition's image ({sorted(images)})")
    best_job = tuner.best_training_job()
    best = tuner.best_estimator()
    ck.eq(best.latest_training_job.name, best_job, "create: best_estimator() attached to the best training job")
    ck.eq(best.image_uri, images[d["BestTrainingJob"]["TrainingJobDefinitionName"]],
          "create: best_estimator() has its definition's image")
    attached = HyperparameterTuner.attach(name, sagemaker_session=c.session,
                                          estimator_cls={"quad-a": "sagemaker.estimator.Estimator",
                                                         "quad-b": "sagemaker.estimator.Estimator"})
    ck.eq((sorted(attached.estimator_dict), attached.objective_metric_name_dict),
          (["quad-a", "quad-b"], {"quad-a": OBJECTIVE, "quad-b": OBJECTIVE}),
          "HyperparameterTuner.attach(multi-definition job): estimators and objectives")
    ck.eq(attached.estimator_dict["quad-b"].image_uri, ECR_IMAGE, "attach(multi): quad-b's image")


def scenario_stop(c, ck):
    tuner = HyperparameterTuner(c.estimator(hyperparameters={"epochs": 600, "sleep_ms": 100}), OBJECTIVE, RANGES,
                                metric_definitions=METRICS, objective_type="Minimize", strategy="Random",
                                max_jobs=4, max_parallel_jobs=2)
    name = f"sdk-stop-{RUN}"
    tuner.fit(c.inputs, job_name=name, wait=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        d = tuner.describe()
        if d["TrainingJobStatusCounters"]["InProgress"] >= 1:
            break
        time.sleep(0.2)
    ck.ok(d["TrainingJobStatusCounters"]["InProgress"] >= 1, f"{name}: training jobs InProgress after fit(wait=False)")
    time.sleep(1.0)  # a few epochs, so the stopped training jobs have an objective
    tuner.stop_tuning_job()
    tuner.wait()
    d = tuner.describe()
    ck.eq(d["HyperParameterTuningJobStatus"], "Stopped", "stop_tuning_job() then wait(): status")
    df = tuner.analytics().dataframe()
    ck.ok(len(df) >= 1 and set(df["TrainingJobStatus"]) == {"Stopped"},
          f"stop_tuning_job(): the {len(df)} training jobs that ran are Stopped")
    ck.eq(d["TrainingJobStatusCounters"]["Completed"], 0, "stop_tuning_job(): none completed")
    started = [j for j in df["TrainingJobName"]
               if any(t["Status"] == "Training" for t in c.training_job(j)["SecondaryStatusTransitions"])]
    ck.ok(1 <= len(started) <= 2, f"stop_tuning_job(): {len(started)} of them had started training "
          "(max_parallel_jobs=2)")


SCENARIOS = [
    ("Random: fit(wait=True), describe, best, analytics, attach, best_estimator, warm starts", scenario_random),
    ("Bayesian: fit(wait=True), describe, best, analytics", scenario_bayesian),
    ("Grid: fit, analytics, attach", scenario_grid),
    ("completion criteria, early stopping, seed", scenario_criteria),
    ("Hyperband with StrategyConfig", scenario_hyperband),
    ("autotune=True with hyperparameters_to_keep_static", scenario_autotune),
    ("instance_configs: second InstanceConfig's type", scenario_instance_configs),
    ("HyperparameterTuner.create(estimator_dict=two estimators)", scenario_multi),
    ("stop_tuning_job()", scenario_stop),
    ("script mode: a PyTorch estimator's entry point from S3", scenario_script_mode),
]


def main():
    t0 = time.monotonic()
    print(f"hpo: {HPO}\nquadratic: {QUADRATIC}\nsagemaker {sagemaker.__version__} ({VENV}), boto3 {boto3.__version__}",
          flush=True)
    try:
        c = Cluster()
    except Exception:
        KEEP_TMP[0] = True
        raise
    print(f"cluster up in {time.monotonic() - t0:.1f} s: coordinator {c.url}, 2 workers ({WORKER_TYPE}); "
          f"S3 {os.environ['AWS_ENDPOINT_URL_S3']}", flush=True)
    failed = []
    # Not a `with` block: a scenario stuck in an SDK wait (they poll forever) must not keep us from exiting.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SCENARIOS))
    futures = {}
    for title, fn in SCENARIOS:
        ck = Checks(title)
        futures[pool.submit(fn, c, ck)] = ck
    try:
        for fut in concurrent.futures.as_completed(futures, timeout=SCENARIO_TIMEOUT_S):
            ck = futures[fut]
            try:
                fut.result()
                ck.print("PASS")
            except Exception:  # noqa: BLE001 - report every scenario
                ck.print("FAIL")
                print(traceback.format_exc(), file=sys.stderr, flush=True)
                failed.append(ck.name)
    except concurrent.futures.TimeoutError:
        for fut, ck in futures.items():
            if not fut.done():
                ck.print(f"FAIL: not done after {SCENARIO_TIMEOUT_S} s (checks so far below)")
                failed.append(ck.name)
    pool.shutdown(wait=False, cancel_futures=True)
    checks = sum(len(ck.lines) for ck in futures.values())
    print(f"{len(SCENARIOS) - len(failed)}/{len(SCENARIOS)} scenarios passed, {checks} checks, "
          f"{time.monotonic() - t0:.1f} s", flush=True)
    kill_all()
    if failed:
        KEEP_TMP[0] = True
        for log in sorted(os.listdir(TMP)):
            if log.endswith(".log"):
                with open(os.path.join(TMP, log), errors="replace") as f:
                    tail = f.readlines()[-15:]
                print(f"---- {log} (last {len(tail)} lines)\n" + "".join(tail), file=sys.stderr)
    if KEEP_TMP[0]:
        print(f"state, trial directories and logs kept in {TMP}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    if any(not f.done() for f in futures):
        # Threads still in an SDK wait: skip interpreter shutdown (it would join them), after atexit's work.
        atexit._run_exitfuncs()
        os._exit(1)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
