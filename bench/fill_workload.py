"""Fills an MLflow tracking server with a seeded synthetic workload, through the real client.

    python fill_workload.py TRACKING_URI --runs 20 --metrics 5 --steps 2000 --params 20 --tags 10 --artifact-kb 64

One experiment "bench"; each run gets its params, tags, metric histories (explicit timestamps
and steps) and one artifact file of the given size. Prints a JSON summary as its last line.
"""
import argparse
import json
import os
import random
import tempfile
import time

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

parser = argparse.ArgumentParser()
parser.add_argument("uri")
parser.add_argument("--runs", type=int, default=20)
parser.add_argument("--metrics", type=int, default=5)
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--params", type=int, default=20)
parser.add_argument("--tags", type=int, default=10)
parser.add_argument("--artifact-kb", type=int, default=64)
parser.add_argument("--seed", type=int, default=7)
args = parser.parse_args()

rng = random.Random(args.seed)
client = MlflowClient(args.uri)
experiment = client.create_experiment("bench")
t0 = 1_700_000_000_000
started = time.time()
with tempfile.TemporaryDirectory() as tmp:
    blob = os.path.join(tmp, "weights.bin")
    with open(blob, "wb") as f:
        f.write(rng.randbytes(args.artifact_kb * 1024))
    for r in range(args.runs):
        run = client.create_run(experiment, start_time=t0 + r * 1000, run_name=f"run-{r}")
        rid = run.info.run_id
        params = [Param(f"p{i}", str(rng.random())) for i in range(args.params)]
        tags = [RunTag(f"t{i}", f"v{rng.randint(0, 9999)}") for i in range(args.tags)]
        for i in range(0, len(params), 100):
            client.log_batch(rid, params=params[i : i + 100])
        client.log_batch(rid, tags=tags)
        points = [Metric(f"m{m}", rng.random(), t0 + s, s) for m in range(args.metrics) for s in range(args.steps)]
        for i in range(0, len(points), 1000):
            client.log_batch(rid, metrics=points[i : i + 1000])
        if args.artifact_kb > 0:
            client.log_artifact(rid, blob)
        client.set_terminated(rid, "FINISHED", end_time=t0 + r * 1000 + 500)
print(json.dumps({"runs": args.runs, "points": args.runs * args.metrics * args.steps, "seconds": round(time.time() - started, 1)}))
