#!/usr/bin/env python3
"""Diagnostic for the dispatch benchmark: where do hpo's threads spend the run? (stdlib only)

Starts the command after `--`, then samples /proc/PID/task/*/syscall and .../stat of every
thread of it every --interval-ms until it exits, and prints, per thread that ever synced a file
(the coordinator's dispatcher thread commits with fdatasync; the workers' threads lay out trials
with fsync), its CPU time and its time runnable but waiting for a CPU
(/proc/.../schedstat), and the share of samples spent in each state: in fdatasync/fsync, in another syscall
(e.g. poll = idle, waiting for a message), or running user code. Thread roles are named by what
they were seen doing: "coordinator dispatcher" = the one thread in fdatasync; "worker loop" =
threads in fsync.

  thread_sample.py [--interval-ms 1] -- build-bench/cli/hpo run spec.json --workers 4 --slots 4 ...
"""
import argparse
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict

NAMES = {0: "read", 1: "write", 7: "poll", 74: "fsync", 75: "fdatasync", 61: "wait4", 202: "futex",
         232: "epoll_wait", 281: "epoll_pwait", 56: "clone", 435: "clone3", 59: "execve", 230: "clock_nanosleep",
         271: "ppoll", 18: "pwrite64", 17: "pread64", 257: "openat", 3: "close", 82: "rename", 83: "mkdir",
         87: "unlink", 4: "stat", 262: "newfstatat", 9: "mmap", 11: "munmap", 16: "ioctl", 20: "writev",
         44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 72: "fcntl", 217: "getdents64"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval-ms", type=float, default=1.0)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        sys.exit("thread_sample: give the command after --")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    per = defaultdict(Counter)  # tid -> Counter(state)
    sched = {}  # tid -> (ns on CPU, ns waiting for a CPU) from /proc/.../schedstat, last seen
    t0 = time.time()
    n = 0
    while proc.poll() is None:
        try:
            tids = os.listdir(f"/proc/{proc.pid}/task")
        except OSError:
            break
        for tid in tids:
            try:
                with open(f"/proc/{proc.pid}/task/{tid}/stat") as f:
                    st = f.read().rsplit(")", 1)[1].split()[0]
                with open(f"/proc/{proc.pid}/task/{tid}/syscall") as f:
                    sc = f.read().split()[0]
                with open(f"/proc/{proc.pid}/task/{tid}/schedstat") as f:
                    on, wait, _ = f.read().split()
                    sched[tid] = (int(on), int(wait))
            except OSError:
                continue
            if sc == "running" or st == "R":
                key = "running (user code or runnable)"
            else:
                try:
                    key = "in " + NAMES.get(int(sc), f"syscall {sc}")
                except ValueError:
                    key = "in ?"
            per[tid][key] += 1
        n += 1
        time.sleep(a.interval_ms / 1000.0)
    wall = time.time() - t0
    proc.wait()
    print(f"{n} samples over {wall:.1f} s ({wall / max(n, 1) * 1000:.2f} ms apart), exit {proc.returncode}")
    rows = []
    for tid, c in per.items():
        total = sum(c.values())
        if c["in fdatasync"]:
            role = "coordinator dispatcher"
        elif c["in fsync"]:
            role = "worker loop"
        else:
            continue
        rows.append((role, tid, total, c))
    rows.sort(key=lambda r: (r[0], -r[2]))
    for role, tid, total, c in rows:
        top = ", ".join(f"{k} {v / total * 100:.1f} %" for k, v in c.most_common(6))
        on, wait = sched.get(tid, (0, 0))
        print(f"- {role} (tid {tid}, {total} samples): on CPU {on / 1e9:.2f} s, waiting for a CPU {wait / 1e9:.2f} s "
              f"(of {wall:.1f} s); {top}")


if __name__ == "__main__":
    main()
