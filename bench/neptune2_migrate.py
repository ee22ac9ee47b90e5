"""The approach of seed 000's runs_migrator.py (the Python `neptune` client, a thread pool of
--max-workers), written for bench/neptune-server.mjs to compare against: every run of the source
project is opened read-only, each attribute fetched (series with fetch_values, files downloaded)
and written into a new run of the destination project — `sys/name`, `description`, `tags` kept in
`sys`, the other `sys` attributes in `old_sys`, as the seed does.

Usage: neptune2_migrate.py SRC_WS/PROJ DST_WS/PROJ MAX_WORKERS WORK_DIR
"""
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import neptune
from neptune.attributes import Boolean, Datetime, File, Float, FloatSeries, Integer, String, StringSeries, StringSet

KEPT_IN_SYS = {"name", "description", "tags"}


def walk(structure, prefix=""):
    for key, value in structure.items():
        if isinstance(value, dict):
            yield from walk(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


def copy_run(src_project, dst_project, short_id, work):
    src = neptune.init_run(project=src_project, with_id=short_id, mode="read-only")
    dst = neptune.init_run(project=dst_project, capture_hardware_metrics=False, capture_stdout=False, capture_stderr=False,
                           capture_traceback=False, git_ref=False, source_files=[])
    folder = tempfile.mkdtemp(dir=work)
    for path, attribute in walk(src.get_structure()):
        target = path
        if path.startswith("sys/"):
            name = path[4:]
            if name == "state":
                continue
            target = path if name in KEPT_IN_SYS else f"old_sys/{name}"
        if isinstance(attribute, StringSet):
            values = attribute.fetch()
            if target == "sys/tags":
                dst["sys/tags"].add(list(values))
            elif values:
                dst[target].add(list(values))
        elif isinstance(attribute, (Float, Integer, Boolean, String, Datetime)):
            dst[target] = attribute.fetch()
        elif isinstance(attribute, (FloatSeries, StringSeries)):
            values = attribute.fetch_values(include_timestamp=True)
            dst[target].extend(values["value"].tolist(), steps=values["step"].tolist(), timestamps=[t.timestamp() for t in values["timestamp"]])
        elif isinstance(attribute, File):
            where = os.path.join(folder, path.replace("/", "_"))
            os.makedirs(where, exist_ok=True)
            attribute.download(where)
            (name,) = os.listdir(where)
            dst[target].upload(os.path.join(where, name), wait=True)
    src.stop()
    dst.stop()


def main():
    src_project, dst_project, workers, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with neptune.init_project(project=src_project, mode="read-only") as project:
        ids = project.fetch_runs_table(columns=[]).to_pandas()["sys/id"].tolist()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(copy_run, src_project, dst_project, short_id, work) for short_id in ids]:
            future.result()


if __name__ == "__main__":
    main()
