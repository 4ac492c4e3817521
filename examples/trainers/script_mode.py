#!/usr/bin/python3
"""Script mode for local programs: what a SageMaker framework container does with its entry point.

A PyTorch, TensorFlow, scikit-learn, ... estimator of the SageMaker Python SDK sends its script's
name and code location as the hyperparameters `sagemaker_program` and
`sagemaker_submit_directory`; the training toolkit inside the framework container unpacks the
code and runs `python <program> --<name> <value> ...` with the other hyperparameters. hpo runs
no framework container unless a container runtime pulls it; map the image to this program
instead and the same tuning job runs the script on the worker's own Python:

    hpo run job.json --image 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1-gpu-py310=examples/trainers/script_mode.py

It reads $SM_INPUT_CONFIG_DIR/hyperparameters.json (default /opt/ml/input/config), decodes each
value as the toolkit does (JSON where it parses: the SDK sends "\"mnist.py\"", 0.01, ...), takes
`sagemaker_program` (required) and `sagemaker_submit_directory` (a directory or a .tar.gz, as a
path or a file:// URI, or an s3:// object, which the hpo worker downloads to
/opt/ml/code/sourcedir.tar.gz before the program starts; HPO_SOURCE_DIR, a local directory,
wins over all of them), leaves out the other `sagemaker_*`
keys and `_tuning_objective_metric`, and replaces itself with
`$HPO_PYTHON (default: this interpreter) <program> --name value ...` (`/bin/sh` for a .sh entry
point) in the code's directory, with the code's directory on PYTHONPATH and the toolkit's
SM_USER_ENTRY_POINT, SM_MODULE_NAME, SM_MODULE_DIR, SM_USER_ARGS, SM_LOG_LEVEL,
SM_FRAMEWORK_PARAMS set, SM_TRAINING_ENV the worker's with script mode's keys added (names sorted,
values written as the toolkit writes them: True, [1, 2], k=v,k2=v2), and PYTHONUNBUFFERED=1 unless
the definition's Environment sets it, as the framework images do
(a tar.gz is unpacked into $SM_MODEL_DIR/../code first). The `train` argument SageMaker passes
to a container is dropped. A requirements.txt at the code's root is pip-installed only with
HPO_INSTALL_REQUIREMENTS=1 in the definition's Environment (the worker's Python is shared;
otherwise a line says it was not); Debian's own python3 refuses pip installs (PEP 668), so point
HPO_PYTHON at a virtual environment's python for that.
Errors go to $SM_OUTPUT_DIR/failure, as a SageMaker container's do.
"""
import json
import os
import sys
import tarfile


def fail(message):
    out = os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output")
    try:
        with open(os.path.join(out, "failure"), "w") as f:
            f.write("ClientError: " + message)
    except OSError:
        pass
    print("script_mode.py: " + message, file=sys.stderr)
    sys.exit(1)


def decode(value):
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def main():
    config = os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")
    try:
        with open(os.path.join(config, "hyperparameters.json")) as f:
            hps = {k: decode(v) for k, v in json.load(f).items()}
    except (OSError, ValueError) as e:
        fail(f"cannot read {config}/hyperparameters.json: {e}")
    program = hps.get("sagemaker_program")
    if not program:
        fail("no sagemaker_program hyperparameter: script mode needs the entry point's name "
             "(the SDK sets it from entry_point)")
    source = os.environ.get("HPO_SOURCE_DIR") or str(hps.get("sagemaker_submit_directory") or "")
    if source.startswith("file://"):
        source = source[len("file://"):]
    if source.startswith("s3://"):
        # The worker downloaded it (with its S3 endpoint and credentials) next to the model dir.
        staged = os.path.join(os.path.dirname(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")), "code",
                              "sourcedir.tar.gz")
        if not os.path.isfile(staged):
            fail(f"sagemaker_submit_directory {source} is in S3 and the worker did not stage it; set "
                 "HPO_SOURCE_DIR to a local copy")
        source = staged
    if not source:
        source = os.getcwd()
    if os.path.isfile(source) and (source.endswith(".tar.gz") or source.endswith(".tgz")):
        code = os.path.join(os.path.dirname(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")), "code")
        os.makedirs(code, exist_ok=True)
        with tarfile.open(source) as tar:
            try:
                tar.extractall(code, filter="data")  # no links out of it, no absolute paths
            except TypeError:  # a Python without extraction filters
                tar.extractall(code)
        source = code
    if not os.path.isfile(os.path.join(source, program)):
        fail(f"the entry point {program} is not in {source}")
    # As the toolkit writes them: names in sorted order, "-x" for a one-letter name; a value as
    # Python prints it (True, 0.1, [1, 2]), a mapping as k=v pairs joined by commas, none as "".
    args = []
    for name in sorted(hps):
        if name.startswith("sagemaker_") or name == "_tuning_objective_metric":
            continue
        value = hps[name]
        if isinstance(value, dict):
            text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            text = "" if value is None else str(value)
        args += [("--" if len(name) > 1 else "-") + name, text]
    python = os.environ.get("HPO_PYTHON", sys.executable)
    if program.endswith(".sh"):
        command = ["/bin/sh", program]  # as the toolkit runs a shell entry point
    elif program.endswith(".py"):
        command = [python, program]
    else:
        fail(f"the entry point {program} is neither a .py nor a .sh file; script_mode.py runs only those "
             "(a package with setup.py, which the toolkit installs, is not supported here)")
    # The toolkit pip-installs the code's requirements.txt into the container first. Into this
    # machine's Python only when asked (HPO_INSTALL_REQUIREMENTS=1): it is shared by every job.
    requirements = os.path.join(source, "requirements.txt")
    if os.path.isfile(requirements):
        if os.environ.get("HPO_INSTALL_REQUIREMENTS", "") == "1":
            import subprocess
            done = subprocess.run([python, "-m", "pip", "install", "-q", "-r", requirements],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                said = (done.stderr or done.stdout).strip().splitlines()
                hint = (" (this Python is managed by the system: set HPO_PYTHON in the definition's Environment "
                        "to a virtual environment's python)" if "externally-managed-environment" in done.stderr else "")
                fail(f"pip install -r {requirements} failed (exit {done.returncode}){hint}: "
                     + " / ".join(said[-3:]))
        else:
            print(f"script_mode.py: {requirements} is not installed (a framework container would pip install it; "
                  "set HPO_INSTALL_REQUIREMENTS=1 to, or install it into the worker's Python beforehand)",
                  file=sys.stderr)
    os.chdir(source)
    # What the toolkit exports for an entry point: the code directory on PYTHONPATH (an entry point
    # in a subdirectory imports modules at the code's root), and the SM_* variables of script mode.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([source] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # The framework images set it (ENV PYTHONUNBUFFERED=1): each line reaches the log as printed,
    # so a training job stopped (MaxRuntime, a spot notice, StopTrainingJob) keeps its last metrics.
    env.setdefault("PYTHONUNBUFFERED", "1")
    user_args = args
    env.update({
        "SM_USER_ENTRY_POINT": program,
        "SM_MODULE_NAME": os.path.splitext(program)[0].replace("/", "."),
        "SM_MODULE_DIR": str(hps.get("sagemaker_submit_directory") or source),
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_LOG_LEVEL": str(hps.get("sagemaker_container_log_level", 20)),
        "SM_FRAMEWORK_PARAMS": json.dumps({k: v for k, v in hps.items() if k.startswith("sagemaker_")
                                            and k not in ("sagemaker_program", "sagemaker_submit_directory",
                                                          "sagemaker_region", "sagemaker_job_name",
                                                          "sagemaker_container_log_level")}),
    })
    # The worker's SM_TRAINING_ENV (resource_config, master_hostname, is_master, input_data_config,
    # instance groups, ...), with what script mode adds: a reduced copy broke the distributed
    # set-up code that reads those keys.
    given = decode(env.get("SM_TRAINING_ENV", "{}"))
    training_env = given if isinstance(given, dict) else {}
    training_env.update({
        "user_entry_point": program, "module_name": env["SM_MODULE_NAME"], "module_dir": env["SM_MODULE_DIR"],
        "hyperparameters": {k: v for k, v in hps.items() if not k.startswith("sagemaker_")
                            and k != "_tuning_objective_metric"},
        "log_level": int(env["SM_LOG_LEVEL"]) if env["SM_LOG_LEVEL"].isdigit() else 20,
    })
    for key, var in (("hosts", "SM_HOSTS"), ("channel_input_dirs", None), ("current_host", "SM_CURRENT_HOST"),
                     ("model_dir", "SM_MODEL_DIR"), ("output_data_dir", "SM_OUTPUT_DATA_DIR"),
                     ("output_dir", "SM_OUTPUT_DIR"), ("input_dir", "SM_INPUT_DIR"),
                     ("input_config_dir", "SM_INPUT_CONFIG_DIR"), ("num_gpus", "SM_NUM_GPUS"),
                     ("num_cpus", "SM_NUM_CPUS"), ("job_name", "TRAINING_JOB_NAME"),
                     ("network_interface_name", "SM_NETWORK_INTERFACE_NAME")):
        if var is None:
            channels = decode(env.get("SM_CHANNELS", "[]"))
            training_env[key] = {c: env.get("SM_CHANNEL_" + c.upper(), "") for c in (channels or [])}
        elif var in env:
            training_env[key] = decode(env[var])
    env["SM_TRAINING_ENV"] = json.dumps(training_env, sort_keys=True)
    sys.stdout.flush()
    os.execvpe(command[0], command + args, env)


if __name__ == "__main__":
    main()
