#!/usr/bin/env python3
"""A training program for multi-host tests, run as `gang_trainer.py train` on every host of a gang.

Checks what SageMaker gives each host (SM_* variables, resourceconfig.json) against the layout
the test asks for (instance groups "train": algo-1, algo-2 and "eval": algo-3), then proves that
host names resolve to the right machines: algo-1 listens on its own address, every other host
connects to "algo-1" by name from its own address and says who it is, and algo-1 checks that
each peer came from the address its name resolves to. Prints `check NAME ok|BAD ...` lines,
then, on the "eval" host only (as the trainers of a heterogeneous cluster are often a later group
than its data hosts), `loss=0.5` (everything right) or `loss=9`; exits 0 or 1.
"""
import json
import os
import socket
import sys
import time

env = os.environ
hosts = json.loads(env["SM_HOSTS"])
current = env["SM_CURRENT_HOST"]
port = int(env.get("SM_HP_PORT", "29400"))
groups = {"train": ["algo-1", "algo-2"], "eval": ["algo-3"]}
mine = "train" if current in groups["train"] else "eval"
results = []


def check(name, got, want):
    ok = got == want
    print(f"check {name} {'ok' if ok else 'BAD'} got={got!r} want={want!r}", flush=True)
    results.append(ok)


with open("/opt/ml/input/config/resourceconfig.json") as f:
    rc = json.load(f)
check("hosts", hosts, ["algo-1", "algo-2", "algo-3"])
check("resourceconfig.current_host", rc.get("current_host"), current)
check("resourceconfig.hosts", rc.get("hosts"), hosts)
check("resourceconfig.current_group_name", rc.get("current_group_name"), mine)
check("resourceconfig.instance_groups",
      sorted((g["instance_group_name"], sorted(g["hosts"])) for g in rc.get("instance_groups", [])),
      [("eval", ["algo-3"]), ("train", ["algo-1", "algo-2"])])
check("SM_CURRENT_INSTANCE_GROUP", env.get("SM_CURRENT_INSTANCE_GROUP"), mine)
check("SM_CURRENT_INSTANCE_GROUP_HOSTS", json.loads(env.get("SM_CURRENT_INSTANCE_GROUP_HOSTS", "null")), groups[mine])
check("SM_INSTANCE_GROUPS", sorted(json.loads(env.get("SM_INSTANCE_GROUPS", "[]"))), ["eval", "train"])
check("SM_IS_HETERO", env.get("SM_IS_HETERO"), "true")
check("SM_NUM_GPUS", env.get("SM_NUM_GPUS"), "0")
# Channels: "common" everywhere; "evaldata" (S3DataSource.InstanceGroupNames ["eval"]) only there.
check("channel common staged", os.path.isfile("/opt/ml/input/data/common/data.txt"), True)
check("channel evaldata only on eval hosts", os.path.isfile("/opt/ml/input/data/evaldata/data.txt"), mine == "eval")
check("SM_CHANNELS", sorted(json.loads(env.get("SM_CHANNELS", "[]"))),
      ["common", "evaldata"] if mine == "eval" else ["common", "shards"])
# "shards" (ShardedByS3Key, InstanceGroupNames ["train"]): this host's share; the test checks that
# the train hosts' shares are disjoint and together complete.
if mine == "train":
    for name in sorted(os.listdir("/opt/ml/input/data/shards")):
        print(f"shard {name}", flush=True)

me = socket.gethostbyname(current)
if current == hosts[0]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((me, port))
    server.listen(8)
    server.settimeout(30)
    peers = {}
    while len(peers) < len(hosts) - 1:
        conn, addr = server.accept()
        name = conn.recv(64).decode()
        peers[name] = addr[0]
        conn.sendall(b"welcome")
        conn.close()
    for host in hosts[1:]:
        check(f"{host} connected from the address its name resolves to", peers.get(host), socket.gethostbyname(host))
else:
    for _ in range(200):
        try:
            conn = socket.create_connection(("algo-1", port), timeout=2, source_address=(me, 0))
            break
        except OSError:
            time.sleep(0.1)
    else:
        check("connect to algo-1", "failed", "connected")
        conn = None
    if conn is not None:
        conn.sendall(current.encode())
        check("algo-1 answered", conn.recv(64), b"welcome")
        conn.close()

passed = all(results)
print("checks", "passed" if passed else "FAILED", flush=True)
if mine == "eval":
    print("loss=%s" % ("0.5" if passed else "9"), flush=True)
sys.exit(0 if passed else 1)
