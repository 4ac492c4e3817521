#!/usr/bin/python3
"""The SageMaker Python SDK v3 (`sagemaker-train`, `sagemaker-core`) against a real hpo cluster.

SDK v3 replaced v2's Estimator with `ModelTrainer` and reads every response through
sagemaker-core's typed shapes (pydantic models of the service's API): a DescribeHyperParameter-
TuningJob or DescribeTrainingJob field of the wrong type or a missing required one fails there,
where v2 read dictionaries. This drives hpo as a v3 user does:

  * `ModelTrainer(training_image=..., compute=Compute(...), hyperparameters=...)` and
    `HyperparameterTuner(model_trainer, ...).tune(inputs=...)`, waiting through
    `HyperParameterTuningJob.wait()` (its `refresh()` is the typed Describe);
  * `tuner.best_training_job()`, `tuner.describe()`, `tuner.analytics().dataframe()`;
  * script mode: `ModelTrainer(source_code=SourceCode(source_dir=..., entry_script=...))` on a
    framework image. The tuner uploads the code and an `sm_drivers` channel to S3 and sends
    `sagemaker_program` and `sagemaker_submit_directory` unquoted (v2 sends them JSON-encoded);
    the workers map the image to examples/trainers/script_mode.py, as a v2 user's do;
  * `tuner.stop_tuning_job()` on a running job;
  * a warm start from the first job (`warm_start_config=HyperParameterTuningJobWarmStartConfig`;
    the SDK's own `transfer_learning_tuner()` fails in sagemaker-train 1.27 before sending
    anything: it builds that shape with a field name the shape does not have).

Its setup is what an on-premises v3 user writes: AWS_ENDPOINT_URL_SAGEMAKER (boto3 reads it for
every SageMaker client sagemaker-core makes) and SAGEMAKER_VALIDATE_ROLE=false (ModelTrainer
otherwise asks IAM's SimulatePrincipalPolicy about the role, and there is no IAM here). Starts
`hpo coordinator` and two `hpo worker`s on loopback (HPO_BINARY, HPO_QUADRATIC), models to a real
S3: run it under tests/worker/with_radosgw.sh (CMake does).

The SDK lives in tests/.venv-sdk3 (`bash scripts/install-deps.sh --test` makes it; HPO_SDK3_VENV
overrides); started by any Python, this re-executes itself there; without it, it fails and says
so. HPO_SKIP_SDK_TEST=1 skips it (exit 77). Exit: 0 passed, 1 a failure, 77 skipped.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.environ.get("HPO_SDK3_VENV") or os.path.join(REPO_ROOT, "tests", ".venv-sdk3")

sys.path.insert(0, HERE)
import procs  # noqa: E402
from procs import find, free_port, spawn, wait_for_workers  # noqa: E402

procs.reexec_in_venv(VENV, "SageMaker Python SDK v3", __file__)

import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

S3_ENV_KEYS = ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")
TMP = tempfile.mkdtemp(prefix="hpo-sdk3-test-")
procs.isolate_sdk_environment(TMP, S3_ENV_KEYS)
# ModelTrainer otherwise asks AWS IAM's SimulatePrincipalPolicy about the role: there is no IAM here.
os.environ["SAGEMAKER_VALIDATE_ROLE"] = "false"
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING)

try:
    import boto3
    import botocore.config
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
    from sagemaker.core.resources import TrainingJob
    from sagemaker.core.shapes import HyperParameterTuningJobWarmStartConfig, ParentHyperParameterTuningJob
    from sagemaker.core.training.configs import Compute, OutputDataConfig, SourceCode, StoppingCondition
    from sagemaker.train.model_trainer import ModelTrainer
    from sagemaker.train.tuner import HyperparameterTuner
except ImportError as e:
    print(f"FAIL: {VENV} does not import the SageMaker Python SDK v3 ({e}).\n"
          "Recreate it with:  rm -rf tests/.venv-sdk3 && bash scripts/install-deps.sh --test", file=sys.stderr)
    sys.exit(1)

HPO = find("HPO_BINARY", "build/cli/hpo")
QUADRATIC = find("HPO_QUADRATIC", "build/examples/trainers/quadratic")
BUCKET = "hpo-sdk3-test"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/quadratic:latest"
# A framework image for script mode, mapped to examples/trainers/script_mode.py on the workers.
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311"
SCRIPT_MODE = os.path.join(REPO_ROOT, "examples", "trainers", "script_mode.py")
OBJECTIVE = "validation:loss"
METRICS = [{"Name": OBJECTIVE, "Regex": "loss=([0-9.eE+-]+)"}]
RANGES = {"x": ContinuousParameter(-1.0, 1.0), "y": ContinuousParameter(-1.0, 1.0),
          "layers": IntegerParameter(1, 6), "optimizer": CategoricalParameter(["adam", "sgd"])}
RUN = time.strftime("%H%M%S")


def quadratic_loss(hp):
    """The final loss examples/trainers/quadratic.cc prints for these hyperparameters."""
    x, y = float(hp.get("x", 0)), float(hp.get("y", 0))
    layers = int(float(hp.get("layers", 3)))
    opt = str(hp.get("optimizer", "adam")).strip('"')
    return (x - 0.3) ** 2 + (y + 0.2) ** 2 + (0 if opt == "adam" else 0.05) + abs(layers - 3) * 0.01


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"    ok: {what}", flush=True)


def main():
    for path, env in ((HPO, "HPO_BINARY"), (QUADRATIC, "HPO_QUADRATIC")):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"FAIL: {path} is not built (set {env})")
    s3_env = {k: os.environ[k] for k in S3_ENV_KEYS if k in os.environ}
    if "AWS_ENDPOINT_URL_S3" not in s3_env:
        print("SKIP: no S3 endpoint: run under tests/worker/with_radosgw.sh", file=sys.stderr)
        sys.exit(77)
    procs.cleanup_on_exit(lambda: TMP)
    zmq_port, http_port = free_port(), free_port()
    while http_port == zmq_port:
        http_port = free_port()
    url = f"http://127.0.0.1:{http_port}"
    spawn([HPO, "coordinator", "--listen", f"tcp://127.0.0.1:{zmq_port}", "--http", f"127.0.0.1:{http_port}",
           "--state-dir", os.path.join(TMP, "state"), "--grace", "1"], os.path.join(TMP, "coordinator.log"))
    for i in (1, 2):
        spawn([HPO, "worker", "--connect", f"tcp://127.0.0.1:{zmq_port}", "--id", f"w{i}", "--slots", "4",
               "--instance-type", "ml.m5.large", "--work-dir", os.path.join(TMP, f"w{i}"),
               "--image", f"{IMAGE}={QUADRATIC}", "--image", f"{PYTORCH_IMAGE}={SCRIPT_MODE}"],
              os.path.join(TMP, f"worker{i}.log"), extra_env=s3_env)
    wait_for_workers(url, 2, TMP)
    # What a v3 user sets: every SageMaker client boto3 makes (sagemaker-core's too) goes to hpo.
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = url
    boto = boto3.Session(region_name="us-east-1")
    s3 = boto.client("s3", config=botocore.config.Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="data/train/part-0.csv", Body=b"1,2,3\n")
    session = Session(boto_session=boto, default_bucket=BUCKET)
    sm = boto.client("sagemaker")

    def trainer(**static):
        hp = {"epochs": 3, "sleep_ms": 20}
        hp.update(static)
        return ModelTrainer(training_image=IMAGE, role=ROLE, compute=Compute(instance_type="ml.m5.large", instance_count=1),
                            hyperparameters=hp, output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/output"),
                            stopping_condition=StoppingCondition(max_runtime_in_seconds=600), sagemaker_session=session)

    def tuner(strategy, max_jobs, warm_start_config=None, **static):
        return HyperparameterTuner(trainer(**static), OBJECTIVE, RANGES, metric_definitions=METRICS,
                                   objective_type="Minimize", strategy=strategy, max_jobs=max_jobs, max_parallel_jobs=2,
                                   warm_start_config=warm_start_config)

    print("[run] Random, 4 training jobs, tune() waits through sagemaker-core's typed Describe", flush=True)
    first = tuner("Random", 4)
    name = f"sdk3-rand-{RUN}"
    first.tune(inputs={"train": f"s3://{BUCKET}/data/train/"}, job_name=name)
    d = first.describe()
    check(d.hyper_parameter_tuning_job_status == "Completed", "the job Completed")
    check(d.training_job_status_counters.completed == 4, "TrainingJobStatusCounters.Completed is 4 (typed)")
    summaries = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)["TrainingJobSummaries"]
    check(len(summaries) == 4 and all(s["TrainingJobName"].startswith(name + "-") for s in summaries),
          "four training jobs named after the tuning job")
    best = min(summaries, key=lambda s: quadratic_loss(s["TunedHyperParameters"]))
    check(first.best_training_job() == best["TrainingJobName"],
          f"best_training_job() is the one with the lowest loss ({best['TrainingJobName']})")
    value = d.best_training_job.final_hyper_parameter_tuning_job_objective_metric.value
    check(abs(value - quadratic_loss(best["TunedHyperParameters"])) < 1e-9, "its objective is the loss it printed")
    tj = TrainingJob.get(best["TrainingJobName"], session=boto, region="us-east-1")  # DescribeTrainingJob, typed
    check(tj.model_artifacts.s3_model_artifacts.startswith(f"s3://{BUCKET}/output/"), "its model went to S3Uri")
    check(tj.training_job_status == "Completed" and tj.final_metric_data_list[-1].metric_name == OBJECTIVE,
          "TrainingJob.get() reads it: Completed, its final metrics listed")
    df = first.analytics().dataframe()
    check(len(df) == 4 and {"TrainingJobName", "FinalObjectiveValue"} <= set(df.columns),
          "analytics().dataframe() has the four jobs")
    check(abs(df["FinalObjectiveValue"].min() - value) < 1e-9, "and the best value")

    print("[run] a warm start from it (TransferLearning)", flush=True)
    child = tuner("Bayesian", 3, warm_start_config=HyperParameterTuningJobWarmStartConfig(
        parent_hyper_parameter_tuning_jobs=[ParentHyperParameterTuningJob(hyper_parameter_tuning_job_name=name)],
        warm_start_type="TransferLearning"))
    child_name = f"sdk3-warm-{RUN}"
    child.tune(inputs={"train": f"s3://{BUCKET}/data/train/"}, job_name=child_name)
    cd = child.describe()
    check(cd.hyper_parameter_tuning_job_status == "Completed", "the warm-started job Completed")
    parents = [p.hyper_parameter_tuning_job_name for p in cd.warm_start_config.parent_hyper_parameter_tuning_jobs]
    check(parents == [name] and cd.warm_start_config.warm_start_type == "TransferLearning",
          "WarmStartConfig names the first job, TransferLearning")

    print("[run] script mode: ModelTrainer(source_code=SourceCode(...)) on a framework image", flush=True)
    src = procs.write_script_mode_source(os.path.join(TMP, "pytorch-src"))
    script = ModelTrainer(training_image=PYTORCH_IMAGE, role=ROLE, source_code=SourceCode(source_dir=src, entry_script="train.py"),
                          compute=Compute(instance_type="ml.m5.large", instance_count=1),
                          hyperparameters={"epochs": 3, "batch-size": 32},
                          output_data_config=OutputDataConfig(s3_output_path=f"s3://{BUCKET}/output"),
                          stopping_condition=StoppingCondition(max_runtime_in_seconds=600), sagemaker_session=session)
    script_tuner = HyperparameterTuner(script, OBJECTIVE, {"lr": ContinuousParameter(0.001, 0.1)}, metric_definitions=METRICS,
                                       objective_type="Minimize", strategy="Random", max_jobs=3, max_parallel_jobs=2)
    script_name = f"sdk3-script-{RUN}"
    script_tuner.tune(job_name=script_name)
    raw = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=script_name)
    check(raw["HyperParameterTuningJobStatus"] == "Completed", "the script-mode job Completed")
    statics = raw["TrainingJobDefinition"]["StaticHyperParameters"]
    check(statics.get("sagemaker_program") == "train.py" and
          statics.get("sagemaker_submit_directory", "").startswith(f"s3://{BUCKET}/"),
          "the SDK sent sagemaker_program and the uploaded source_dir, unquoted")
    channels = [c["ChannelName"] for c in raw["TrainingJobDefinition"]["InputDataConfig"]]
    check("sm_drivers" in channels, f"and its sm_drivers channel ({channels})")
    sbest = raw["BestTrainingJob"]
    lr = float(sbest["TunedHyperParameters"]["lr"])
    want = procs.script_mode_loss(lr, epochs=3, batch_size=32)
    got = sbest["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    check(abs(got - want) < 1e-5, f"the best objective {got:.6f} is what train.py prints for --lr {lr:.5f} "
          f"--batch-size 32 on its last epoch ({want:.6f})")
    check(script_tuner.best_training_job() == sbest["TrainingJobName"], "best_training_job() names it")

    print("[run] stop_tuning_job() on a running job", flush=True)
    slow = tuner("Random", 6, epochs=120, sleep_ms=500)
    slow_name = f"sdk3-stop-{RUN}"
    slow.tune(inputs={"train": f"s3://{BUCKET}/data/train/"}, job_name=slow_name, wait=False)
    deadline = time.time() + 60
    while time.time() < deadline:
        running = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=slow_name, StatusEquals="InProgress")["TrainingJobSummaries"]
        if running:
            break
        time.sleep(0.5)
    check(bool(running), "a training job of the slow job is running")
    slow.stop_tuning_job()
    slow.wait()
    sd = slow.describe()
    check(sd.hyper_parameter_tuning_job_status == "Stopped", "the job Stopped, and wait() returned")
    check(sd.training_job_status_counters.stopped >= 1, "its running training jobs were stopped")
    print("PASS", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a failed check or an SDK error: the logs are kept
        print(f"FAIL: {type(e).__name__}: {e} (logs kept in {TMP})", file=sys.stderr)
        procs.kill_all()
        sys.exit(1)
    procs.kill_all()
    shutil.rmtree(TMP, ignore_errors=True)
