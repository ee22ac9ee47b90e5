"""Writes the Comet benchmark's workload as the real comet_ml client writes it: one offline archive
(`<key>.zip`) per experiment, seeded, into OUT. `comet upload` (bench/comet.mjs runs it, with
COMET_OFFLINE_SAMPLING_SIZE raised so that no point is dropped) then puts them into a server the
way a user's offline runs get there. Prints, as one JSON line, what it wrote and how long it took.

    python fill_comet.py OUT --workspace A --project proj --experiments 20 --metrics 10 --steps 2000
        --long-steps 16000 --params 20 --others 5 --tags 3 --assets 3 --asset-kb 256 --seed 7 --jobs 4
"""
import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import comet_ml

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--workspace", required=True)
parser.add_argument("--project", required=True)
for name, default in [("experiments", 20), ("metrics", 10), ("steps", 2000), ("long-steps", 16000), ("params", 20), ("others", 5), ("tags", 3), ("assets", 3), ("asset-kb", 256), ("seed", 7), ("jobs", 4)]:
    parser.add_argument("--" + name, type=int, default=default)
args = parser.parse_args()

asset_dir = os.path.join(args.out, "asset-files")


def write_one(i):
    """One experiment's archive; its own random stream, so that the jobs' order does not matter."""
    rng = random.Random("%d-%d" % (args.seed, i))
    exp = comet_ml.OfflineExperiment(
        project_name=args.project,
        workspace=args.workspace,
        offline_directory=args.out,
        # a bench run logs only what it is told: no host, code, git, system metrics or output capture
        log_env_host=False,
        log_env_gpu=False,
        log_env_cpu=False,
        log_env_network=False,
        log_env_disk=False,
        log_env_details=False,
        log_code=False,
        log_git_metadata=False,
        log_git_patch=False,
        log_graph=False,
        auto_param_logging=False,
        auto_metric_logging=False,
        auto_output_logging=None,
        parse_args=False,
        display_summary_level=0,
    )
    exp.set_name("run-%03d" % i)
    exp.add_tags(["tag-%d" % t for t in range(args.tags)])
    params = {"param_%02d" % p: rng.choice([rng.random(), rng.randint(0, 1000), "choice-%d" % rng.randint(0, 9)]) for p in range(args.params)}
    params["model"] = {"layers": rng.randint(1, 12), "activation": "relu"}
    exp.log_parameters(params)
    exp.log_others({"other_%d" % o: "value-%d" % rng.randint(0, 10**6) for o in range(args.others)})
    for m in range(args.metrics):
        name = "metric_%02d" % m
        value = rng.random()
        for s in range(args.steps):
            value += rng.gauss(0, 0.01)
            exp.log_metric(name, value, step=s, epoch=s // 100)
    for s in range(args.long_steps):
        exp.log_metric("long_loss", 1.0 / (s + 1) + rng.random() * 1e-3, step=s, epoch=s // 1000)
    for a in range(args.assets):
        path = os.path.join(asset_dir, "exp%03d-file%d.bin" % (i, a))
        with open(path, "wb") as f:
            f.write(rng.randbytes(args.asset_kb * 1024))
        exp.log_asset(path, file_name="file-%d.bin" % a, step=a, metadata={"index": a})
    # end() mostly waits for the client's writer thread: the jobs overlap those waits
    exp.end()


if __name__ == "__main__":
    os.makedirs(asset_dir, exist_ok=True)
    started = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(write_one, range(args.experiments)))
    points = args.experiments * (args.metrics * args.steps + args.long_steps)
    print(json.dumps({"experiments": args.experiments, "points": points, "seconds": round(time.time() - started, 1)}))
