#!/usr/bin/env python3
"""Writes the SageMaker CreateHyperParameterTuningJob request of the dispatch benchmark.

A Random job of N training jobs, P in parallel, each one run of bench/dispatch/sleep_trainer
(sleeps --sleep-ms, prints bench_start_ms / loss / bench_end_ms). One continuous range (x) so
that Random has something to sample; the hyperparameter does not change the trial's duration.

  gen_spec.py --trials 2000 --parallel 16 --sleep-ms 200 --trainer /abs/sleep_trainer -o spec.json
"""
import argparse
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--parallel", type=int, default=16)
    ap.add_argument("--sleep-ms", type=int, default=200)
    ap.add_argument("--trainer", required=True, help="path of the trainer executable")
    ap.add_argument("--name", default="dispatch-bench")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--output-uri", default="file:///tmp/hpo-bench/output",
                    help="S3OutputPath: where the worker packs model.tar.gz / output.tar.gz (file:// or s3://)")
    ap.add_argument("-o", "--output", default="-")
    a = ap.parse_args()

    trainer = os.path.abspath(a.trainer)
    if a.output_uri.startswith("file://"):  # a relative file:// path is taken from the current directory
        a.output_uri = "file://" + os.path.abspath(a.output_uri[len("file://"):])
    spec = {
        "HyperParameterTuningJobName": a.name,
        "HyperParameterTuningJobConfig": {
            "Strategy": "Random",
            "RandomSeed": a.seed,
            "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
            "ResourceLimits": {"MaxNumberOfTrainingJobs": a.trials, "MaxParallelTrainingJobs": a.parallel},
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "x", "MinValue": "-1", "MaxValue": "1", "ScalingType": "Linear"}
                ]
            },
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sleep_ms": str(a.sleep_ms)},
            "AlgorithmSpecification": {
                "TrainingImage": "file://" + trainer,
                "TrainingInputMode": "File",
                "MetricDefinitions": [
                    {"Name": "loss", "Regex": "^loss=([0-9.eE+-]+)"},
                    {"Name": "bench_start_ms", "Regex": "^bench_start_ms=([0-9]+)"},
                    {"Name": "bench_end_ms", "Regex": "^bench_end_ms=([0-9]+)"},
                ],
            },
            "RoleArn": "arn:aws:iam::123456789012:role/hpo-bench",
            "OutputDataConfig": {"S3OutputPath": a.output_uri},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        },
    }
    text = json.dumps(spec, indent=2) + "\n"
    if a.output == "-":
        sys.stdout.write(text)
    else:
        with open(a.output, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
