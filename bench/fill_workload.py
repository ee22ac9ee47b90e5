"""Fills an MLflow tracking server (or an mlruns file store) with a seeded synthetic workload,
through the real mlflow client.

    python fill_workload.py TRACKING_URI --runs 100 --metrics 10 --steps 2000 --params 50 --tags 20 \
        --artifact-mb 5 --artifacts 5 [--threads 8] [--seed 7] [--experiment bench]

TRACKING_URI is http://… (a server; artifacts go through its artifact proxy) or file:///abs/mlruns
(a file store, written in-process; MLFLOW_ALLOW_FILE_STORE is set for it).

One experiment; run r gets --params params p0…, --tags tags t0…, --metrics metric histories
m0… of --steps points each (value from the run's seeded generator, step s, timestamp
1,700,000,000,000 + s ms), --artifacts files model/weights-<i>.bin holding --artifact-mb MB in
all (--artifact-kb is the older spelling, in kB, one file), start time 1,700,000,000,000 + r s,
status FINISHED. Every run draws from its own generator, seeded with (--seed, r), so the data is
the same whatever order the --threads writer threads take the runs in (only the ids MLflow gives
differ). Metric points are sent in log_batch calls of 1000 (the server's limit), generated as
they are sent, so memory stays small however long the histories are.

Prints a JSON summary as its last line: the counts a complete copy must hold.
"""
import argparse
import itertools
import json
import os
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

parser = argparse.ArgumentParser()
parser.add_argument("uri")
parser.add_argument("--runs", type=int, default=20)
parser.add_argument("--metrics", type=int, default=5)
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--params", type=int, default=20)
parser.add_argument("--tags", type=int, default=10)
parser.add_argument("--artifact-mb", type=float, default=None, help="MB of artifacts per run, split over --artifacts files")
parser.add_argument("--artifact-kb", type=int, default=64, help="older spelling: kB of artifacts per run (when --artifact-mb is not given)")
parser.add_argument("--artifacts", type=int, default=1, help="artifact files per run")
parser.add_argument("--threads", type=int, default=1, help="runs written at once")
parser.add_argument("--seed", type=int, default=7)
parser.add_argument("--experiment", default="bench")
args = parser.parse_args()

if args.uri.startswith("file:"):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"

from mlflow import MlflowClient  # noqa: E402  (after the environment is set)
from mlflow.entities import Metric, Param, RunTag  # noqa: E402

T0 = 1_700_000_000_000
BATCH = 1000
artifact_bytes = int(args.artifact_mb * 1024 * 1024) if args.artifact_mb is not None else args.artifact_kb * 1024
files = args.artifacts if artifact_bytes > 0 else 0
sizes = [artifact_bytes // files + (1 if i < artifact_bytes % files else 0) for i in range(files)] if files else []

local = threading.local()


def client():
    # one client per thread (each keeps its own connections)
    if not hasattr(local, "client"):
        local.client = MlflowClient(args.uri)
    return local.client


def fill_run(r, experiment, tmp):
    c = client()
    rng = random.Random(f"{args.seed}:{r}")
    start = T0 + r * 1000
    run = c.create_run(experiment, start_time=start, run_name=f"run-{r}")
    rid = run.info.run_id
    params = [Param(f"p{i}", str(rng.random())) for i in range(args.params)]
    tags = [RunTag(f"t{i}", f"v{rng.randint(0, 9999)}") for i in range(args.tags)]
    for i in range(0, len(params), 100):
        c.log_batch(rid, params=params[i : i + 100])
    for i in range(0, len(tags), 100):
        c.log_batch(rid, tags=tags[i : i + 100])
    points = (Metric(f"m{m}", rng.random(), T0 + s, s) for m in range(args.metrics) for s in range(args.steps))
    while batch := list(itertools.islice(points, BATCH)):
        c.log_batch(rid, metrics=batch)
    if files:
        folder = os.path.join(tmp, f"run-{r}", "model")
        os.makedirs(folder)
        for i, size in enumerate(sizes):
            with open(os.path.join(folder, f"weights-{i}.bin"), "wb") as f:
                f.write(rng.randbytes(size))
        c.log_artifacts(rid, folder, artifact_path="model")
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
    c.set_terminated(rid, "FINISHED", end_time=start + 500)


started = time.time()
experiment = client().create_experiment(args.experiment)
with tempfile.TemporaryDirectory() as tmp:
    with ThreadPoolExecutor(max(1, args.threads)) as pool:
        # list(): re-raises the first failure
        list(pool.map(lambda r: fill_run(r, experiment, tmp), range(args.runs)))
print(
    json.dumps(
        {
            "experiment": args.experiment,
            "runs": args.runs,
            "params": args.runs * args.params,
            "tags": args.runs * args.tags,
            "points": args.runs * args.metrics * args.steps,
            "artifactFiles": args.runs * files,
            "artifactBytes": args.runs * artifact_bytes,
            "seconds": round(time.time() - started, 1),
        }
    )
)
