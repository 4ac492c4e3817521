#!/usr/bin/env python3
"""Checks deploy/kubernetes/ (called by tests/deploy/check.sh, CTest Deploy.Files).

    k8s_check.py HPO_BINARY [KUBERNETES_VALIDATE]

1. With KUBERNETES_VALIDATE (the PyPI tool), every manifest against Kubernetes' schemas, strictly
   (an unknown or misplaced field fails).
2. The wiring no schema sees: kustomization resources exist and its image is the one containers
   name; every volumeMount has its volume; probe and Service ports name container ports; the
   Service selects the coordinator's pods; every $(VAR) in args is in the container's env; every
   Secret the pods mount is one the header's steps create.
3. The command lines, run: the coordinator's args (as a non-root user, as its securityContext
   says) and the worker's, with the in-pod paths mapped to temporary ones and the Downward API
   values filled in. The coordinator must answer /healthz unsigned and refuse an unsigned API
   call; the worker must register with it over CurveZMQ.
Prints one line per check; exits 1 when one fails.
"""
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
K8S = os.path.join(ROOT, "deploy", "kubernetes")
failed = False


def say(ok, what):
    global failed
    failed |= not ok
    print(f"k8s-check: {'ok' if ok else 'FAIL'} {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pod_spec(doc):
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"], doc["spec"]["template"]["metadata"].get("labels", {})
    return None, None


def main():
    hpo = sys.argv[1]
    validator = sys.argv[2] if len(sys.argv) > 2 else ""
    kust = yaml.safe_load(open(os.path.join(K8S, "kustomization.yaml")))
    files = [os.path.join(K8S, r) for r in kust["resources"]]
    missing = [f for f in files if not os.path.exists(f)]
    say(not missing, "kustomization resources exist" + (f": missing {missing}" if missing else ""))
    listed = sorted(os.path.basename(f) for f in glob.glob(os.path.join(K8S, "*.yaml")) if not f.endswith("kustomization.yaml"))
    say(listed == sorted(kust["resources"]), f"kustomization lists every manifest ({listed})")
    files = [f for f in files if os.path.exists(f)]

    if validator:
        r = subprocess.run([validator, "--strict", "--quiet", *files], capture_output=True, text=True)
        say(r.returncode == 0, "schemas (kubernetes-validate --strict)" + ("" if r.returncode == 0 else ":\n" + r.stdout + r.stderr))
    else:
        print("k8s-check: skip schemas: kubernetes-validate is not installed (scripts/install-deps.sh --test puts it in tests/.venv-sdk)")

    docs = [d for f in files for d in yaml.safe_load_all(open(f)) if d]
    header = open(os.path.join(K8S, "hpo.yaml")).read().split("\napiVersion:")[0]
    created_secrets = set(re.findall(r"create secret generic (\S+)", header))
    image = kust["images"][0]["name"]
    pods = {}
    for d in docs:
        spec, labels = pod_spec(d)
        if spec is None:
            continue
        name = d["metadata"]["name"]
        pods[name] = (d, spec, labels)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for t in d["spec"].get("volumeClaimTemplates", []):
            volumes[t["metadata"]["name"]] = t
        for c in spec["containers"]:
            where = f"{name}/{c['name']}"
            say(c["image"] == image, f"{where}: image is kustomization's {image!r}")
            mounts = [m["name"] for m in c.get("volumeMounts", [])]
            say(all(m in volumes for m in mounts), f"{where}: every volumeMount has a volume ({mounts})")
            env = {e["name"] for e in c.get("env", [])}
            refs = set(re.findall(r"\$\((\w+)\)", " ".join(c.get("args", []))))
            say(refs <= env, f"{where}: $(VAR) in args defined in env ({sorted(refs)})")
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe"):
                p = c.get(probe)
                if p:
                    port = (p.get("httpGet") or p.get("tcpSocket") or {}).get("port")
                    say(port in ports or isinstance(port, int), f"{where}: {probe} port {port!r} is a container port")
        for v in volumes.values():
            if "secret" in v:
                s = v["secret"]["secretName"]
                say(s in created_secrets, f"{name}: secret {s} is one the steps in hpo.yaml create")
    for d in docs:
        if d.get("kind") != "Service":
            continue
        sel = d["spec"]["selector"]
        targets = [n for n, (_, _, labels) in pods.items() if all(labels.get(k) == v for k, v in sel.items())]
        say(len(targets) == 1, f"Service {d['metadata']['name']} selects one workload ({targets})")
        if targets:
            _, spec, _ = pods[targets[0]]
            names = {p["name"] for c in spec["containers"] for p in c.get("ports", [])}
            tp = [p["targetPort"] for p in d["spec"]["ports"]]
            say(all(t in names for t in tp), f"Service {d['metadata']['name']}: target ports {tp} are container ports")

    run_command_lines(hpo, pods, docs)
    return 1 if failed else 0


def args_of(pods, kind):
    for d, spec, _ in pods.values():
        if d["kind"] == kind:
            return d, spec, spec["containers"][0]["args"]
    raise SystemExit(f"no {kind} in deploy/kubernetes")


def run_command_lines(hpo, pods, docs):
    tmp = tempfile.mkdtemp(prefix="hpo-k8s-check-")
    procs = []
    try:
        keys = os.path.join(tmp, "keys")
        subprocess.run([hpo, "keygen", "--out", keys], check=True, capture_output=True)
        coord_keys, worker_keys = os.path.join(tmp, "ck"), os.path.join(tmp, "wk")
        os.makedirs(coord_keys)
        os.makedirs(worker_keys)
        for f in ("coordinator.secret", "authorized_workers"):
            shutil.copy(os.path.join(keys, f), coord_keys)
        for f in ("coordinator.pub", "worker.secret"):
            shutil.copy(os.path.join(keys, f), worker_keys)
        api = os.path.join(tmp, "api")
        os.makedirs(api)
        with open(os.path.join(api, "credentials"), "w") as f:
            f.write("AKIDK8SCHECK secretk8scheck\n")
        state = os.path.join(tmp, "state")
        os.makedirs(state)
        zmq_port, http_port = free_port(), free_port()

        d, spec, args = args_of(pods, "StatefulSet")
        sc = spec.get("securityContext", {})
        uid, gid = sc.get("runAsUser"), sc.get("runAsGroup")
        mapping = {"/etc/hpo/keys": coord_keys, "/var/lib/hpo": state, "/etc/hpo/api": api,
                   "tcp://0.0.0.0:7700": f"tcp://127.0.0.1:{zmq_port}", "0.0.0.0:7780": f"127.0.0.1:{http_port}"}
        line = [mapped(a, mapping) for a in args]
        prefix = []
        if uid is not None and os.geteuid() == 0 and shutil.which("setpriv"):
            # As the pod runs it: that user, owning only its volume (fsGroup) and readable secrets.
            for p in (tmp, coord_keys, api):
                os.chmod(p, 0o755)
            for root_dir, dirs, fs in os.walk(state):
                os.chown(root_dir, uid, gid)
            os.chown(state, uid, gid)
            for f in os.listdir(coord_keys):
                os.chmod(os.path.join(coord_keys, f), 0o644)
            os.chmod(os.path.join(api, "credentials"), 0o644)
            prefix = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        clog = open(os.path.join(tmp, "coordinator.log"), "w")
        procs.append(subprocess.Popen(prefix + [hpo] + line, stdout=clog, stderr=subprocess.STDOUT, cwd="/"))
        url = f"http://127.0.0.1:{http_port}"
        healthy = wait(lambda: http_status(url + "/healthz") == 200, 20)
        say(healthy, f"coordinator runs from its args{' as uid ' + str(uid) if prefix else ''} and answers /healthz unsigned")
        say(http_status(url + "/hpo/v1/health") == 403, "coordinator refuses an unsigned API call (SigV4 required)")

        d, spec, args = args_of(pods, "DaemonSet")
        env = {"NODE_NAME": "node-1", "NODE_IP": "127.0.0.1"}
        work = os.path.join(tmp, "work")
        os.makedirs(work, mode=0o755, exist_ok=True)  # as the kubelet makes a DirectoryOrCreate hostPath
        os.chmod(work, 0o755)
        # The worker connects to the coordinator's Service, in its namespace, on its workers port.
        service = next(d for d in docs if d.get("kind") == "Service")
        port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "workers")
        address = f"tcp://{service['metadata']['name']}.{service['metadata']['namespace']}.svc:{port}"
        say(any(a == "--connect=" + address for a in args), f"worker connects to the Service ({address})")
        mapping = {"/etc/hpo/keys": worker_keys, "/var/lib/hpo-worker": work, address: f"tcp://127.0.0.1:{zmq_port}"}
        line = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), mapped(a, mapping)) for a in args]
        wlog_path = os.path.join(tmp, "worker.log")
        wlog = open(wlog_path, "w")
        procs.append(subprocess.Popen([hpo] + line, stdout=wlog, stderr=subprocess.STDOUT, cwd=tmp))
        registered = wait(lambda: "registered with tcp://127.0.0.1:%d as node-1" % zmq_port in open(wlog_path).read(), 20)
        say(registered, "worker runs from its args and registers with the coordinator over CurveZMQ")
        # Its work directory (training logs, configs) is its own, 0700, under the 0755 hostPath.
        work_dir = next((mapped(a, mapping)[len("--work-dir="):] for a in args if a.startswith("--work-dir=")), "")
        mode = os.stat(work_dir).st_mode & 0o777 if work_dir and os.path.isdir(work_dir) else None
        say(mode == 0o700, f"the worker's work directory {work_dir} is 0700 under the hostPath (mode {mode and oct(mode)})")
        if not (healthy and registered):
            for n in ("coordinator.log", "worker.log"):
                print(f"--- {n}\n" + open(os.path.join(tmp, n)).read()[-3000:])
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def mapped(arg, mapping):
    for k in sorted(mapping, key=len, reverse=True):
        arg = arg.replace(k, mapping[k])
    return arg


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def wait(cond, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":
    sys.exit(main())
