"""Processes for the Python integration tests (auth, aws_clients, dashboard).

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
