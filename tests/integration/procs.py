"""Processes for the Python integration tests (auth, aws_clients, dashboard, the SageMaker SDKs).

find(ENV, default): a built binary, from $ENV or a path relative to the repository.
spawn(argv, log): a child with its output appended to `log`, stdin from /dev/null, in its own
  session (so stopping it stops what it started, e.g. a worker's trainers) and killed by the
  kernel if this test process dies (PR_SET_PDEATHSIG).
kill_all(): SIGTERM to every child's process group, SIGKILL to what is left after 10 s.
cleanup_on_exit(where): kill_all at exit and on SIGTERM/SIGHUP (then exit 128+signal, saying
  where the logs are: where() returns the folder).
free_port(), read(path): a free loopback TCP port; a file's text, "" while it does not exist.
wait_for_workers(url, n, logs): until the coordinator at `url` reports `n` registered workers
  (30 s), failing early when a child exits; RuntimeError naming `logs` otherwise.
reexec_in_venv(venv, what, script): for the SageMaker SDK tests, re-executes `script` with the
  virtual environment's interpreter unless already running in it (exit 77 when
  HPO_SKIP_SDK_TEST is set; exit 1 saying how to make it when it is missing).
isolate_sdk_environment(tmp, s3_keys): keeps the user's AWS and SDK configuration, proxies and
  Python path out of the SDK (before it is imported: it reads them then), with the region, the
  checksums radosgw takes and telemetry off; the S3 endpoint and keys in `s3_keys` stay.
"""

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

children = []


def find(env, default):
    path = os.environ.get(env, default)
    if not os.path.isabs(path) and not os.path.exists(path):
        path = os.path.join(REPO, path)
    return os.path.abspath(path)


def _own_session_dying_with_parent():
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def spawn(argv, log, extra_env=None, env=None):
    env = dict(env if env is not None else os.environ, **(extra_env or {}))
    with open(log, "ab") as out:  # the child keeps its own descriptor
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             preexec_fn=_own_session_dying_with_parent, close_fds=True, env=env)
    children.append(p)
    return p


def kill_all():
    for p in children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                p.terminate()
    deadline = time.monotonic() + 10
    for p in children:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the group: a worker's trainers too
        except (ProcessLookupError, PermissionError):
            pass
        if p.poll() is None:
            p.kill()
            p.wait()
    children.clear()


def cleanup_on_exit(where=lambda: None):
    def on_signal(signum, _frame):
        # Not sys.exit: unittest would record the SystemExit as a test error and go on.
        kill_all()
        print(f"killed by signal {signum}; stopped the processes it started; logs in {where()}", file=sys.stderr)
        os._exit(128 + signum)

    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_for_workers(url, n, logs, seconds=30):
    deadline, health = time.monotonic() + seconds, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/hpo/v1/health", timeout=1) as r:
                health = json.load(r)
            if health.get("workers") == n:
                return
        except OSError:
            pass
        for p in children:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[:2]} exited with {p.returncode}; logs in {logs}")
        time.sleep(0.1)
    raise RuntimeError(f"the cluster did not come up in {seconds} s (health {health}); logs in {logs}")


def reexec_in_venv(venv, what, script):
    if os.environ.get("HPO_SKIP_SDK_TEST", "") not in ("", "0"):
        print("SKIP: HPO_SKIP_SDK_TEST is set", file=sys.stderr)
        sys.exit(77)
    venv_python = os.path.join(venv, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(venv):
        return
    if not os.access(venv_python, os.X_OK):
        print(f"FAIL: the {what} virtual environment {venv} is missing.\n"
              "Create it with:  bash scripts/install-deps.sh --test\n"
              "(or set HPO_SKIP_SDK_TEST=1 to skip this test where PyPI cannot be reached)", file=sys.stderr)
        sys.exit(1)
    os.execv(venv_python, [venv_python, os.path.abspath(script)] + sys.argv[1:])


def isolate_sdk_environment(tmp, s3_keys):
    for var in list(os.environ):
        if (var.startswith("AWS_") and var not in s3_keys) or var.startswith("SAGEMAKER_") \
                or var.lower() in ("http_proxy", "https_proxy", "all_proxy") or var in ("PYTHONPATH", "PYTHONHOME"):
            del os.environ[var]
    open(os.path.join(tmp, "aws-config"), "w").close()
    with open(os.path.join(tmp, "sagemaker-config.yaml"), "w") as f:
        f.write("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    os.environ.update({
        "AWS_CONFIG_FILE": os.path.join(tmp, "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp, "aws-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        # radosgw refuses the CRC checksums boto3 >= 1.36 adds by default.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": os.path.join(tmp, "sagemaker-config.yaml"),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": os.path.join(tmp, "sagemaker-config.yaml"),
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })


def write_script_mode_source(directory):
    """A framework estimator's source_dir for the SDK tests' script mode: train.py (importing a
    helper module beside it, as real source directories do) prints `epoch=E loss=L` for
    --lr, --epochs and --batch-size; script_mode_loss() is the last line's loss."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "train.py"), "w") as f:
        f.write("import argparse\n"
                "from helper import offset\n"
                "p = argparse.ArgumentParser()\n"
                "p.add_argument('--lr', type=float)\n"
                "p.add_argument('--epochs', type=int)\n"
                "p.add_argument('--batch-size', type=int)\n"
                "a = p.parse_args()\n"
                "for e in range(a.epochs):\n"
                "    print('epoch=%d loss=%.6f' % (e, (a.lr - 0.02) ** 2 + offset(a.batch_size) + 0.1 / (e + 1)))\n")
    with open(os.path.join(directory, "helper.py"), "w") as f:
        f.write("def offset(batch):\n    return batch / 10000.0\n")
    return directory


def script_mode_loss(lr, epochs, batch_size):
    """The loss write_script_mode_source's train.py prints on its last epoch."""
    return (lr - 0.02) ** 2 + batch_size / 10000.0 + 0.1 / epochs
