#!/usr/bin/env python3
"""How long SageMaker's Search takes over a large tuning job, and what a DescribeTrainingJob waits
for while Searches run. Against a coordinator serving a state directory that holds the job (made by
bench/api/search.sh): each request below REPEAT times (the median), then DescribeTrainingJob
--describes times while another process runs Searches back to back (p50, p99, max).

  search.py --url http://127.0.0.1:PORT --job NAME [--repeat 5] [--describes 400]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
import urllib.request


def call(url, action, body):
    req = urllib.request.Request(url + "/", data=json.dumps(body).encode(), method="POST",
                                 headers={"X-Amz-Target": "SageMaker." + action,
                                          "Content-Type": "application/x-amz-json-1.1"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        out = json.loads(r.read())
    return time.perf_counter() - t, out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--describes", type=int, default=400)
    p.add_argument("--search-loop", action="store_true", help=argparse.SUPPRESS)  # the second process
    a = p.parse_args()
    busy = {"Resource": "TrainingJob", "MaxResults": 100,
            "SearchExpression": {"Filters": [{"Name": "Metrics.loss", "Operator": "LessThan", "Value": "0.01"}]}}
    if a.search_loop:
        while True:
            call(a.url, "Search", busy)
    _, first = call(a.url, "ListTrainingJobsForHyperParameterTuningJob",
                    {"HyperParameterTuningJobName": a.job, "MaxResults": 1})
    trial = first["TrainingJobSummaries"][0]["TrainingJobName"]
    cases = [
        ("ListTrainingJobsForHyperParameterTuningJob, 100 rows", "ListTrainingJobsForHyperParameterTuningJob",
         {"HyperParameterTuningJobName": a.job, "MaxResults": 100}),
        ("DescribeTrainingJob", "DescribeTrainingJob", {"TrainingJobName": trial}),
        ("Search TrainingJob, no filter, 100 rows", "Search", {"Resource": "TrainingJob", "MaxResults": 100}),
        ("Search Metrics.loss < 0.01, by Metrics.loss", "Search",
         dict(busy, SortBy="Metrics.loss", SortOrder="Ascending")),
        ("Search HyperParameters.x > 0.5 and Completed", "Search",
         {"Resource": "TrainingJob", "MaxResults": 10, "SearchExpression": {"Filters": [
             {"Name": "HyperParameters.x", "Operator": "GreaterThan", "Value": "0.5"},
             {"Name": "TrainingJobStatus", "Value": "Completed"}]}}),
        ("Search HyperParameterTuningJob", "Search", {"Resource": "HyperParameterTuningJob"}),
    ]
    print(f"| request | median (ms) | matched |\n|---|---:|---:|")
    for label, action, body in cases:
        times, out = [], {}
        for _ in range(a.repeat):
            t, out = call(a.url, action, body)
            times.append(t)
        hits = out.get("TotalHits", {}).get("Value", "")
        print(f"| {label} | {statistics.median(times) * 1000:.1f} | {hits} |", flush=True)
    loop = subprocess.Popen([sys.executable, __file__, "--url", a.url, "--job", a.job, "--search-loop"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        waits = sorted(call(a.url, "DescribeTrainingJob", {"TrainingJobName": trial})[0] for _ in range(a.describes))
    finally:
        loop.kill()
    pick = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))] * 1000
    print(f"\nDescribeTrainingJob x{len(waits)} while another process searches back to back: "
          f"p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {waits[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
