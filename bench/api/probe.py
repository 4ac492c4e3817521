#!/usr/bin/env python3
"""Describes a tuning job every --interval-ms through the SageMaker API until it ends, and prints
one JSON line: how long each DescribeHyperParameterTuningJob took (p50, p90, p99, max, count),
how long the job ran (its CreationTime to its HyperParameterTuningEndTime), and its
training jobs' count. Used by bench/api/run.sh against `hpo run --dashboard` (unsigned loopback).

  probe.py --url http://127.0.0.1:PORT --job NAME [--interval-ms 20] [--timeout-s 900]
"""
import argparse
import json
import time
import urllib.error
import urllib.request


def describe(url, job, timeout):
    req = urllib.request.Request(
        url + "/", data=json.dumps({"HyperParameterTuningJobName": job}).encode(), method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1",
                 "X-Amz-Target": "SageMaker.DescribeHyperParameterTuningJob"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--interval-ms", type=float, default=20)
    ap.add_argument("--timeout-s", type=float, default=900)
    a = ap.parse_args()
    lat, errors = [], 0
    job_s = None
    status, counts = "", {}
    deadline = time.monotonic() + a.timeout_s
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            d = describe(a.url, a.job, 30)
        except (urllib.error.URLError, OSError, ValueError):
            errors += 1
            time.sleep(a.interval_ms / 1000)
            continue
        t1 = time.monotonic()
        lat.append((t1 - t0) * 1000)
        status = d.get("HyperParameterTuningJobStatus", "")
        counts = d.get("TrainingJobStatusCounters", {})
        if status in ("Completed", "Failed", "Stopped"):
            # The job's own time, creation to end, as the coordinator recorded it.
            created, end = d.get("CreationTime"), d.get("HyperParameterTuningEndTime")
            job_s = (end - created) if isinstance(created, (int, float)) and isinstance(end, (int, float)) else None
            break
        time.sleep(max(0.0, a.interval_ms / 1000 - (time.monotonic() - t0)))
    print(json.dumps({
        "status": status, "describes": len(lat), "errors": errors,
        "p50_ms": pct(lat, 0.5), "p90_ms": pct(lat, 0.9), "p99_ms": pct(lat, 0.99), "max_ms": max(lat) if lat else None,
        "job_s": job_s,
        "completed": counts.get("Completed"),
    }))


if __name__ == "__main__":
    main()
