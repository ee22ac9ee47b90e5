"""Fills a Neptune 2.x project with the real `neptune` 1.14 client in async mode, seeded: RUNS runs,
each with PARAMS params, METRICS float series of STEPS points (explicit steps and timestamps), a
string series of 20 lines and one file of FILE_KB kilobytes. For bench/neptune-server.mjs.

Usage: fill_neptune2.py WS/PROJECT RUNS METRICS STEPS PARAMS FILE_KB WORK_DIR
(NEPTUNE_API_TOKEN names the server; OAUTHLIB_INSECURE_TRANSPORT=1 for a plain-HTTP one)
"""
import os
import random
import sys

import neptune

T0 = 1_700_000_000.0


def main():
    project, runs, metrics, steps, params, file_kb, work = sys.argv[1], *map(int, sys.argv[2:7]), sys.argv[7]
    rng = random.Random(7)
    os.makedirs(work, exist_ok=True)
    for r in range(runs):
        run = neptune.init_run(project=project, name=f"run-{r}", tags=["bench"], capture_hardware_metrics=False, capture_stdout=False,
                               capture_stderr=False, capture_traceback=False, git_ref=False, source_files=[])
        run["parameters"] = {f"p{i}": rng.random() for i in range(params)}
        for m in range(metrics):
            values = [rng.random() for _ in range(steps)]
            run[f"metrics/m{m}"].extend(values, steps=list(range(steps)), timestamps=[T0 + s for s in range(steps)])
        run["logs/out"].extend([f"line {i}" for i in range(20)], steps=list(range(20)), timestamps=[T0 + i for i in range(20)])
        path = os.path.join(work, f"weights-{r}.bin")
        with open(path, "wb") as f:
            f.write(rng.randbytes(file_kb * 1024))
        run["files/weights"].upload(path)
        run.stop()


if __name__ == "__main__":
    main()
