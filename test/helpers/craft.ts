/**
 * Hand-made inputs for tests of hostile and malformed files: a trackshift bundle, an mlruns
 * store and an mlflow-export-import export, written file by file so that any field can be
 * wrong. Also a snapshot of a whole folder tree (paths, kinds, sizes, contents' digests) to
 * check that nothing around a destination changed.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { idToFolderName } from '../../src/util/paths.js';

export async function put(file: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
}

export const json = (value: unknown): string => JSON.stringify(value, null, 2);

// ---- bundle ----

export function bundleRun(id: string, experimentId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    experimentId,
    name: `run ${id.slice(0, 20)}`,
    status: 'FINISHED',
    startTime: 1_700_000_000_000,
    endTime: 1_700_000_001_000,
    lifecycle: 'active',
    params: { lr: '0.1' },
    tags: {},
    inputs: [],
    metrics: [],
    artifacts: { files: 0, bytes: 0 },
    ...extra,
  };
}

/** A bundle with one experiment per entry; each run's folder is named as the bundle writer names it. */
export async function writeBundle(
  root: string,
  experiments: Array<{ id: string; name: string; runs: Array<Record<string, unknown>>; folder?: string }>,
): Promise<void> {
  await put(join(root, 'trackshift-bundle.json'), json({ format: 'trackshift-bundle', version: 1, created: '2026-01-01T00:00:00Z', sources: [] }));
  for (const exp of experiments) {
    const expDir = join(root, 'experiments', exp.folder ?? idToFolderName(exp.id));
    await put(join(expDir, 'experiment.json'), json({ id: exp.id, name: exp.name, tags: {}, lifecycle: 'active' }));
    for (const run of exp.runs) {
      const folder = (run.__folder as string | undefined) ?? idToFolderName(String(run.id));
      const { __folder: _, ...record } = run;
      await put(join(expDir, 'runs', folder, 'run.json'), json(record));
    }
  }
}

export const bundleRunDir = (root: string, experimentId: string, runId: string): string =>
  join(root, 'experiments', idToFolderName(experimentId), 'runs', idToFolderName(runId));

// ---- mlruns ----

export async function writeMlrunsExperiment(root: string, id: string, name: string): Promise<void> {
  await put(
    join(root, id, 'meta.yaml'),
    `artifact_location: file://${join(root, id)}\ncreation_time: 1700000000000\nexperiment_id: '${id}'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: ${name}\n`,
  );
}

export async function writeMlrunsRun(root: string, experimentId: string, runId: string, extra: { meta?: string; folder?: string } = {}): Promise<string> {
  const dir = join(root, experimentId, extra.folder ?? runId);
  await put(
    join(dir, 'meta.yaml'),
    extra.meta ??
      `artifact_uri: file://${join(dir, 'artifacts')}\nend_time: 1700000001000\nentry_point_name: ''\nexperiment_id: '${experimentId}'\nlifecycle_stage: active\nrun_id: ${runId}\nrun_name: r-${runId.slice(0, 6)}\nrun_uuid: ${runId}\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: 1700000000000\nstatus: 3\ntags: []\nuser_id: me\n`,
  );
  await put(join(dir, 'params', 'lr'), '0.1');
  await put(join(dir, 'metrics', 'loss'), '1700000000000 0.5 0\n1700000000001 0.25 1\n');
  await put(join(dir, 'tags', 'mlflow.runName'), `r-${runId.slice(0, 6)}`);
  await mkdir(join(dir, 'artifacts'), { recursive: true });
  return dir;
}

// ---- mlflow-export-import ----

export function eximRun(runId: string, experimentId: string, extra: { info?: Record<string, unknown>; tags?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    system: { package_version: '1.2.0' },
    mlflow: {
      info: {
        run_id: runId,
        experiment_id: experimentId,
        user_id: 'me',
        status: 'FINISHED',
        start_time: 1_700_000_000_000,
        end_time: 1_700_000_001_000,
        lifecycle_stage: 'active',
        run_name: `run-${runId.slice(0, 6)}`,
        ...extra.info,
      },
      params: { lr: '0.1' },
      metrics: { loss: [{ value: 0.5, timestamp: 1_700_000_000_000, step: 0 }] },
      tags: { 'mlflow.runName': `run-${runId.slice(0, 6)}`, ...extra.tags },
      inputs: [],
    },
  };
}

export function eximExperiment(id: string, name: string, runIds: string[]): Record<string, unknown> {
  return {
    system: { package_version: '1.2.0' },
    mlflow: { experiment: { experiment_id: id, name, lifecycle_stage: 'active', tags: {} }, runs: runIds },
  };
}

/** A bulk export: experiments/<id>/experiment.json and experiments/<id>/<run>/run.json. */
export async function writeEximBulk(root: string, experiments: Array<{ id: string; name: string; runs: string[] }>): Promise<void> {
  await put(join(root, 'manifest.json'), json({ system: {}, info: {}, mlflow: {} }));
  await put(join(root, 'experiments', 'experiments.json'), json({ system: {}, info: {}, mlflow: { experiments: experiments.map((e) => ({ id: e.id, name: e.name })) } }));
  for (const exp of experiments) {
    await put(join(root, 'experiments', exp.id, 'experiment.json'), json(eximExperiment(exp.id, exp.name, exp.runs)));
    for (const run of exp.runs) await put(join(root, 'experiments', exp.id, run, 'run.json'), json(eximRun(run, exp.id)));
  }
}

// ---- looking around ----

/** Every entry under `dir` with its kind and content digest (links by their target, not followed). */
export async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const visit = async (folder: string): Promise<void> => {
    for (const name of (await readdir(folder)).sort()) {
      const full = join(folder, name);
      const path = relative(dir, full);
      const info = await lstat(full);
      if (info.isSymbolicLink()) out[path] = `link -> ${await readlink(full)}`;
      else if (info.isDirectory()) {
        out[path] = 'dir';
        await visit(full);
      } else out[path] = `file ${info.size} ${createHash('sha256').update(await readFile(full)).digest('hex').slice(0, 16)}`;
    }
  };
  await visit(dir);
  return out;
}
