"""Writes the shipped sample, sample/mlruns: a small MLflow file store made by the real mlflow
client, deterministic (seeded ids, a fixed clock), a few hundred KB.

    VENV=$(bash scripts/python-env.sh)
    $VENV/bin/python scripts/make-sample.py            # rewrites sample/mlruns

The store is written at /tmp/trackshift-sample/mlruns (a fixed place, so the absolute
artifact URIs MLflow records are the same on every machine) and then copied into the repo.
Those URIs point at /tmp after the copy: trackshift's mlruns reader then finds each run's
artifacts in the run's own artifacts/ folder (see docs/bundle-format.md).
"""
import json
import math
import os
import random
import shutil
import sys
import tempfile
import uuid

os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
WORK = "/tmp/trackshift-sample/mlruns"
os.environ["MLFLOW_TRACKING_URI"] = "file://" + WORK

# deterministic ids: MLflow makes run ids and experiment ids from uuid4
_rng = random.Random(20240601)
uuid.uuid4 = lambda: uuid.UUID(int=_rng.getrandbits(128), version=4)

import mlflow  # noqa: E402  (after the patches and the environment)
import mlflow.store.model_registry.file_store as registry_file_store  # noqa: E402
import mlflow.store.tracking.file_store as file_store  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

T0 = 1_717_200_000_000  # 2024-06-01T00:00:00Z
_clock = [T0 - 3_600_000]


def fixed_clock():
    # creation, update and deletion times MLflow stamps itself: one millisecond apart
    _clock[0] += 1
    return _clock[0]


file_store.get_current_time_millis = fixed_clock
registry_file_store.get_current_time_millis = fixed_clock

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "sample", "mlruns")


def log_metrics(client, run_id, metrics):
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i : i + 1000])


def log_files(client, run_id, files):
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in files.items():
            path = os.path.join(tmp, *rel.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        client.log_artifacts(run_id, tmp)


def curve(key, start, steps, f, every=1000):
    return [Metric(key, f(s), start + s * every, s) for s in range(steps)]


def main():
    shutil.rmtree(os.path.dirname(WORK), ignore_errors=True)
    client = MlflowClient()
    rng = random.Random(7)

    # --- experiment 1: an image classifier with a small sweep (nested runs) ---
    mnist = client.create_experiment(
        "mnist-classifier", tags={"team": "vision", "mlflow.note.content": "Digit classifier baselines and a learning-rate sweep."}
    )
    sweep = client.create_run(mnist, start_time=T0, run_name="lr-sweep", tags={"mlflow.user": "ana", "mlflow.note.content": "Parent of the sweep."}).info.run_id
    client.log_batch(sweep, params=[Param("model", "cnn-small"), Param("epochs", "300")])
    for i, lr in enumerate(["0.01", "0.1"]):
        start = T0 + 1000 + i * 400_000
        child = client.create_run(
            mnist, start_time=start, run_name=f"lr={lr}", tags={"mlflow.user": "ana", "mlflow.parentRunId": sweep, "sweep/index": str(i)}
        ).info.run_id
        client.log_batch(child, params=[Param("lr", lr), Param("batch_size", "64"), Param("optimizer", "adam")])
        decay = 0.01 if lr == "0.01" else 0.02
        log_metrics(client, child, curve("train/loss", start, 300, lambda s: round(2.3 * math.exp(-decay * s) + rng.random() * 0.02, 6)))
        log_metrics(client, child, curve("val/accuracy", start, 300, lambda s: round(1 - 0.9 * math.exp(-decay * s), 6)))
        log_files(client, child, {"config.json": json.dumps({"lr": float(lr), "batch_size": 64}, indent=2) + "\n"})
        client.set_terminated(child, "FINISHED", end_time=start + 300_000)
    log_files(client, sweep, {"summary.txt": "best lr: 0.1\nval/accuracy: 0.998\n", "plots/README.md": "# Plots\n\nNone yet.\n"})
    client.set_terminated(sweep, "FINISHED", end_time=T0 + 900_000)

    # --- experiment 2: text embeddings, with a failed run, a dataset input and a deleted run ---
    text = client.create_experiment("text-embeddings", tags={"team": "nlp"})
    good = client.create_run(text, start_time=T0 + 2_000_000, run_name="minilm-finetune", tags={"mlflow.user": "bo", "mlflow.note.content": "Fine-tuned MiniLM on the support tickets."}).info.run_id
    client.log_batch(good, params=[Param("base_model", "all-MiniLM-L6-v2"), Param("max_seq_len", "256"), Param("notes", "données ✓")], tags=[RunTag("stage", "candidate")])
    log_metrics(client, good, curve("loss", T0 + 2_000_000, 200, lambda s: round(1.0 / (1 + 0.05 * s), 6)))
    log_metrics(client, good, [Metric("eval/ndcg 10", v, T0 + 2_300_000 + i, i * 50) for i, v in enumerate([0.41, 0.52, 0.58, 0.61])])
    frame = pd.DataFrame({"ticket": ["a", "b", "c"], "label": [0, 1, 1]})
    dataset = mlflow.data.from_pandas(frame, source="s3://example-bucket/tickets.parquet", name="support-tickets")
    client.log_inputs(good, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", "training")])])
    log_files(client, good, {"model/card.md": "# minilm-finetune\n\nSample model card.\n"})
    client.set_terminated(good, "FINISHED", end_time=T0 + 2_400_000)

    bad = client.create_run(text, start_time=T0 + 3_000_000, run_name="minilm-lr-too-high", tags={"mlflow.user": "bo"}).info.run_id
    client.log_batch(bad, params=[Param("base_model", "all-MiniLM-L6-v2"), Param("lr", "0.5")])
    loss = [Metric("loss", 1.0 / (1 + 0.05 * s), T0 + 3_000_000 + s * 1000, s) for s in range(40)]
    loss += [Metric("loss", math.inf, T0 + 3_040_000, 40), Metric("loss", math.nan, T0 + 3_041_000, 41)]
    log_metrics(client, bad, loss)
    client.set_terminated(bad, "FAILED", end_time=T0 + 3_042_000)

    gone = client.create_run(text, start_time=T0 + 4_000_000, run_name="scratch", tags={"mlflow.user": "bo"}).info.run_id
    log_metrics(client, gone, [Metric("loss", 0.9, T0 + 4_000_001, 0)])
    client.set_terminated(gone, "KILLED", end_time=T0 + 4_001_000)
    client.delete_run(gone)

    # --- a registered model: two versions of the fine-tuned encoder's files, a stage and an alias ---
    client.create_registered_model("ticket-encoder", tags={"team": "nlp"}, description="Embeds support tickets.")
    source = f"{client.get_run(good).info.artifact_uri}/model"
    client.create_model_version("ticket-encoder", source=source, run_id=good, description="first fine-tune")
    v2 = client.create_model_version("ticket-encoder", source=source, run_id=good, tags={"validated": "yes"})
    client.transition_model_version_stage("ticket-encoder", "1", "Archived")
    client.transition_model_version_stage("ticket-encoder", v2.version, "Production")
    client.set_registered_model_alias("ticket-encoder", "champion", v2.version)

    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(WORK, TARGET)
    shutil.rmtree(os.path.dirname(WORK), ignore_errors=True)
    print(f"wrote {TARGET}", file=sys.stderr)


if __name__ == "__main__":
    main()
