"""The approach of seed 001's runs_migrator.py (Neptune 2.x → 3.x), written for
bench/neptune-server.mjs to compare against: the runs of a 2.x project listed with the `neptune`
1.x client, each opened read-only in a thread of a pool of --max-workers, every attribute fetched
(series with fetch_values, files downloaded to a temporary folder) and logged into a neptune-scale
`Run` of the 3.x project, with the seed's rules: run id = `sys/custom_run_id`, else `sys/id`;
experiment = `sys/name`; `monitoring/` → `runtime/`; `sys` attributes other than state,
description, name, custom_run_id, tags and group_tags → `legacy_sys/` (running_time and
monitoring_time as float seconds, size as an int of bytes); tags and group tags added; the project
created first when missing.

Usage: neptune_legacy_to_scale.py LEGACY_WS/PROJ NEW_WS/PROJ MAX_WORKERS WORK_DIR
(both tokens are NEPTUNE_API_TOKEN: the bench's server hosts both projects)
"""
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import neptune
from neptune.attributes import Boolean, Datetime, File, Float, FloatSeries, Integer, String, StringSeries, StringSet
from neptune_scale import Run
from neptune_scale.projects import create_project

KEPT_IN_SYS = {"description", "name", "custom_run_id", "tags", "group_tags"}
SECONDS = {"running_time", "monitoring_time"}


def walk(structure, prefix=""):
    for key, value in structure.items():
        if isinstance(value, dict):
            yield from walk(value, f"{prefix}{key}/")
        else:
            yield f"{prefix}{key}", value


def target_path(path):
    if path.startswith("monitoring/"):
        return "runtime/" + path[len("monitoring/"):]
    if path.startswith("sys/"):
        name = path[4:]
        if name == "state":
            return None
        return path if name in KEPT_IN_SYS else f"legacy_sys/{name}"
    return path


def copy_run(legacy_project, new_project, short_id, work):
    src = neptune.init_run(project=legacy_project, with_id=short_id, mode="read-only")
    structure = list(walk(src.get_structure()))
    sys_values = {path[4:]: attribute.fetch() for path, attribute in structure if path in ("sys/custom_run_id", "sys/id", "sys/name")}
    run_id = sys_values.get("custom_run_id") or sys_values["id"]
    folder = tempfile.mkdtemp(dir=work, prefix=".tmp_")
    with Run(run_id=run_id, project=new_project, experiment_name=sys_values.get("name") or None, enable_console_log_capture=False) as dst:
        configs = {}
        for path, attribute in structure:
            target = target_path(path)
            if target is None or path in ("sys/custom_run_id", "sys/name"):
                continue
            if isinstance(attribute, StringSet):
                values = list(attribute.fetch())
                if path in ("sys/tags", "sys/group_tags"):
                    if values:
                        dst.add_tags(values, group_tags=path == "sys/group_tags")
                elif values:
                    configs[target] = values
            elif isinstance(attribute, (Float, Integer, Boolean, String, Datetime)):
                value = attribute.fetch()
                name = path[4:] if path.startswith("sys/") else None
                if name in SECONDS:
                    value = float(value)
                elif name == "size":
                    value = int(value)
                configs[target] = value
            elif isinstance(attribute, FloatSeries):
                values = attribute.fetch_values(include_timestamp=True)
                for step, value, timestamp in zip(values["step"], values["value"], values["timestamp"]):
                    dst.log_metrics(data={target: value}, step=step, timestamp=timestamp.to_pydatetime())
            elif isinstance(attribute, StringSeries):
                values = attribute.fetch_values(include_timestamp=True)
                for step, value, timestamp in zip(values["step"], values["value"], values["timestamp"]):
                    dst.log_string_series(data={target: value}, step=step, timestamp=timestamp.to_pydatetime())
            elif isinstance(attribute, File):
                where = os.path.join(folder, path.replace("/", "_"))
                os.makedirs(where, exist_ok=True)
                attribute.download(where)
                (name,) = os.listdir(where)
                dst.assign_files({target: os.path.join(where, name)})
        if configs:
            dst.log_configs(configs)
        dst.wait_for_processing(verbose=False)
    src.stop()


def main():
    legacy_project, new_project, workers, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    workspace, name = new_project.split("/")
    create_project(workspace=workspace, name=name)  # exists already: nothing happens
    with neptune.init_project(project=legacy_project, mode="read-only") as project:
        ids = project.fetch_runs_table(columns=[]).to_pandas()["sys/id"].tolist()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(copy_run, legacy_project, new_project, short_id, work) for short_id in ids]:
            future.result()


if __name__ == "__main__":
    main()
