/**
 * Neptune 3.x offline runs, written during the test by the real neptune-scale client (pinned in
 * python/requirements-neptune3.txt) from test/fixtures/neptune3_offline.py, which prints what it
 * logged: the reader gives back every value, then the runs go into a bundle and into a real
 * MLflow server with `verify` equal at each hop. A database of another layout version and a
 * corrupt operation fail their run alone; a million points read in flat memory.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, type Dirent } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectorFor, openSource } from '../../src/connectors/resolve.js';
import type { ConfigEntry, MetricPoint, Run, TypedPoint } from '../../src/model/index.js';
import type { JobOptions } from '../../src/engine/job.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { pythonEnv, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { allRuns } from '../helpers/source-runs.js';
import { peakHeapGrowth } from '../helpers/heap.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

async function python(script: string, args: string[]): Promise<string> {
  const venv = await pythonEnv('neptune3');
  const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), [join(ROOT, script), ...args], { cwd: ROOT, maxBuffer: 100_000_000, env: { ...process.env, PYTHONUNBUFFERED: '1' } });
  return stdout;
}

/** JSON numbers as the fixture prints them: NaN and ±Infinity as strings */
const num = (v: number | string): number => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : (v as number));

interface Logged {
  project: string;
  parent: {
    id: string;
    experiment: string;
    creationTime: number;
    configs: Record<string, number | string | boolean | string[]>;
    nested: Record<string, number | string>;
    tags: string[];
    groupTags: string[];
    loss: Array<{ step: number; value: number | string; timestamp: number }>;
    notes: Array<{ step: number; value: string }>;
    acc: Array<{ step: number; value: number }>;
    stderr: string;
    histograms: Array<{ step: number; counts: [number[], number[]]; densities: [number[], number[]] }>;
    readme: string;
    fileSeries: Array<{ step: number; bytes: string; mimeType: string; size: number }>;
  };
  child: { id: string; experiment: string; forkParent: string; forkStep: number };
}

let tmp: string;
/** the folder above `.neptune`, as a user would name it */
let projectDir: string;
let logged: Logged;

/** the failures are the test's to check: some copies here fail runs on purpose */
const job = (command: JobOptions['command'], source: string, destination: string) => runJobIn(tmp, command, source, destination, true);
const expectEqual = (report: VerifyReport) => expectEqualRuns(report, 2);

async function list<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
const collect = async <T>(pages: AsyncIterable<T[]>): Promise<T[]> => (await list(pages)).flat() as T[];

const configAt = (run: Run, path: string): ConfigEntry['value'] | undefined => run.config?.find((e) => e.path.join('/') === path)?.value;

const runFolders = (dir: string) => readdirSync(dir).filter((name) => name.startsWith('ws_proj_')).sort();

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune3-'));
  projectDir = join(tmp, 'project');
  logged = JSON.parse(await python('test/fixtures/neptune3_offline.py', [join(projectDir, '.neptune'), '3000'])) as Logged;
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('neptune3 reader', () => {
  it('is detected from the folder above .neptune, the .neptune folder, a run folder or the database; forced with neptune3:', async () => {
    const logs = join(projectDir, '.neptune');
    const runFolder = join(logs, runFolders(logs)[0]!);
    for (const location of [projectDir, logs, runFolder, join(runFolder, 'run_operations.sqlite3')]) expect((await connectorFor(location)).name).toBe('neptune3');
    expect((await connectorFor(`neptune3:${projectDir}`)).name).toBe('neptune3');
  });

  it('leaves the run folders as they were: no -wal or -shm file, the same bytes', async () => {
    const snapshot = () =>
      (readdirSync(projectDir, { recursive: true, withFileTypes: true }) as Dirent[])
        .filter((entry) => entry.isFile())
        .map((entry) => {
          const file = join(entry.parentPath, entry.name);
          return `${file} ${createHash('sha256').update(readFileSync(file)).digest('hex')}`;
        })
        .sort();
    const before = snapshot();
    const source = await openSource(`neptune3:${projectDir}`);
    try {
      for (const run of await allRuns(source)) for (const series of run.series) if (series.type === 'float') for await (const page of source.readMetric(run, series.key)) void page;
    } finally {
      await source.close?.();
    }
    expect(snapshot()).toEqual(before);
  });

  it('gives back every value the client logged', async () => {
    const source = await openSource(`neptune3:${projectDir}`);
    try {
      expect(source.unreadable).toEqual([]);
      const experiments = (await list(source.listExperiments())).map((e) => e.name);
      expect(experiments).toEqual([...new Set([logged.child.experiment, logged.parent.experiment])]);
      const runs = await allRuns(source);
      const parent = runs.find((r) => r.id === logged.parent.id)!;
      const child = runs.find((r) => r.id === logged.child.id)!;
      expect(parent).toMatchObject({ name: logged.parent.id, experimentId: logged.parent.experiment, startTime: logged.parent.creationTime, status: 'FINISHED' });
      expect(parent.endTime).toBeGreaterThan(parent.startTime!);

      // configs of every type, nested dicts as paths
      const p = logged.parent.configs;
      expect(configAt(parent, 'parameters/lr')).toEqual({ type: 'float', value: p['parameters/lr'] });
      expect(configAt(parent, 'parameters/epochs')).toEqual({ type: 'int', value: p['parameters/epochs'] });
      expect(configAt(parent, 'parameters/use_bn')).toEqual({ type: 'bool', value: true });
      expect(configAt(parent, 'parameters/optimizer')).toEqual({ type: 'string', value: 'adam' });
      expect(configAt(parent, 'parameters/started')).toEqual({ type: 'datetime', value: Date.parse(p['parameters/started'] as string) });
      expect(configAt(parent, 'parameters/layers')).toMatchObject({ type: 'stringSet' });
      expect((configAt(parent, 'parameters/layers')!.value as string[]).sort()).toEqual(p['parameters/layers']);
      expect(configAt(parent, 'model/dropout/p')).toEqual({ type: 'float', value: logged.parent.nested['model/dropout/p'] });
      expect(configAt(parent, 'model/name')).toEqual({ type: 'string', value: logged.parent.nested['model/name'] });
      expect(configAt(parent, 'sys/name')).toEqual({ type: 'string', value: logged.parent.experiment });

      // tags (one removed again) and group tags
      expect(Object.keys(parent.tags).sort()).toEqual(logged.parent.tags);
      expect(parent.group!.split(',').sort()).toEqual(logged.parent.groupTags);

      // the float series, point by point: fractional steps, NaN and ±Infinity, timestamps
      expect(parent.series.map((s) => `${s.key}:${s.type}${s.system ? ':system' : ''}`).sort()).toEqual([
        'dist/counts:histogram',
        'dist/densities:histogram',
        'runtime/stderr:string:system',
        'samples/text:file',
        'train/acc:float',
        'train/loss:float',
        'train/notes:string',
      ]);
      const loss: MetricPoint[] = await collect(source.readMetric(parent, 'train/loss'));
      expect(loss).toHaveLength(logged.parent.loss.length);
      loss.forEach((point, i) => {
        const want = logged.parent.loss[i]!;
        expect(point.step).toBe(want.step);
        expect(point.timestamp).toBe(want.timestamp);
        expect(Object.is(point.value, num(want.value)) || point.value === num(want.value)).toBe(true);
      });
      expect(loss.at(-1)!.step % 1).toBe(0.5);

      // a preview is left out (with a warning): only the committed value is read
      expect((await collect(source.readMetric(parent, 'train/acc'))).map((p) => ({ step: p.step, value: p.value }))).toEqual(logged.parent.acc);
      expect(source.warnings).toEqual([{ object: `run ${logged.parent.id}`, message: expect.stringMatching(/^1 preview point\(s\) left out/) }]);
      const stderr = await collect(source.readSeries!(parent, { key: 'runtime/stderr', type: 'string', system: true }));
      expect(stderr.map((p) => p.value).join('')).toContain(logged.parent.stderr);

      const notes = await collect(source.readSeries!(parent, { key: 'train/notes', type: 'string' }));
      expect(notes.map((n) => ({ step: n.step, value: n.value }))).toEqual(logged.parent.notes);

      for (const kind of ['counts', 'densities'] as const) {
        const points = await collect(source.readSeries!(parent, { key: `dist/${kind}`, type: 'histogram' }));
        expect(points.map((h) => ({ step: h.step, value: h.value }))).toEqual(
          logged.parent.histograms.map((h) => ({ step: h.step, value: { edges: h[kind][0], kind, values: h[kind][1] } })),
        );
      }

      // a file series: each point's bytes; a file from bytes assigned to an attribute: an artifact
      const files = (await collect(source.readSeries!(parent, { key: 'samples/text', type: 'file' }))) as Array<TypedPoint & { value: { path: string; size?: number; mimeType?: string } }>;
      expect(files.map((f) => f.step)).toEqual(logged.parent.fileSeries.map((f) => f.step));
      for (const [i, point] of files.entries()) {
        expect(point.value).toMatchObject({ size: logged.parent.fileSeries[i]!.size, mimeType: 'text/plain' });
        expect((await buffer(await source.readSeriesFile!(parent, point.value.path))).toString()).toBe(logged.parent.fileSeries[i]!.bytes);
      }
      expect(await list(source.listArtifacts(parent))).toEqual([{ path: 'files/readme', size: logged.parent.readme.length }]);
      expect((await buffer(await source.readArtifact(parent, 'files/readme'))).toString()).toBe(logged.parent.readme);

      // the forked run points at its parent, at a fractional step
      expect(child).toMatchObject({ name: logged.child.id, experimentId: logged.child.experiment, fork: { runId: logged.child.forkParent, step: logged.child.forkStep } });
    } finally {
      await source.close?.();
    }
  });
});

describe('neptune3 → bundle → MLflow server', () => {
  let server: MlflowServer | undefined;
  afterAll(async () => server?.stop());

  it('copies with verify equal at each hop, the fork pointing at the parent copy', async () => {
    const src = `neptune3:${projectDir}`;
    const bundle = join(tmp, 'bundle');
    const exported = await job('export', src, bundle);
    expect(exported.failed).toEqual([]);
    // the fork's parent is found (no warning about it); the preview left out is said
    expect(exported.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^1 preview point\(s\) left out/)]);
    expectEqual(await verify(src, `bundle:${bundle}`));

    server = await startMlflowServer();
    const imported = await job('import', `bundle:${bundle}`, server.url);
    expect(imported.failed).toEqual([]);
    expectEqual(await verify(`bundle:${bundle}`, server.url));

    // straight from the offline folder too, and once more: nothing copied again
    const direct = await job('copy', src, server.url);
    expect(direct.failed).toEqual([]);
    expectEqual(await verify(src, server.url));
    expect((await job('copy', src, server.url)).copied.runs).toBe(0);

    // the fork of the copy names the copy of its parent
    const copied = await openSource(server.url);
    try {
      const runs = await allRuns(copied);
      const copyOf = (id: string) => runs.filter((r) => r.tags['trackshift.source.id'] === id);
      const child = copyOf(logged.child.id)[0]!;
      expect(copyOf(logged.parent.id).map((r) => r.id)).toContain(child.fork?.runId);
      expect(child.fork?.step).toBe(logged.child.forkStep);
    } finally {
      await copied.close?.();
    }
  }, 600_000);
});

describe('neptune3 refuses what it cannot read, run by run', () => {
  /** a copy of the fixture's log folder, with the parent's database handed to `alter` */
  function alteredCopy(name: string, alter: (db: Database.Database) => void): string {
    const dir = join(tmp, name, '.neptune');
    cpSync(join(projectDir, '.neptune'), dir, { recursive: true });
    const parentFolder = runFolders(dir).find((f) => f.includes(logged.parent.id))!;
    const db = new Database(join(dir, parentFolder, 'run_operations.sqlite3'));
    alter(db);
    db.close();
    return join(tmp, name);
  }

  it('refuses a database of layout version v4, naming the file, the version and what to do; the other run is copied', async () => {
    const folder = alteredCopy('v4', (db) => db.prepare("UPDATE metadata SET version = 'v4'").run());
    const report = await job('export', `neptune3:${folder}`, join(tmp, 'bundle-v4'));
    expect(report.failed).toHaveLength(1);
    const reason = report.failed[0]!.reason;
    expect(reason).toContain('run_operations.sqlite3');
    expect(reason).toContain('"v4"');
    expect(reason).toContain('"v5"');
    expect(reason).toMatch(/neptune-scale client that writes v5/);
    expect(report.copied.runs).toBe(1);
  });

  it('reads a run found twice once, with a warning naming both databases', async () => {
    const folder = alteredCopy('twice', () => {});
    const logs = join(folder, '.neptune');
    const child = runFolders(logs).find((f) => f.includes(logged.child.id))!;
    cpSync(join(logs, child), join(logs, `${child}9`), { recursive: true });
    const source = await openSource(`neptune3:${folder}`);
    try {
      expect((await allRuns(source)).map((r) => r.id).sort()).toEqual([logged.child.id, logged.parent.id]);
      expect(source.warnings).toContainEqual({ object: `run ${logged.child.id}`, message: expect.stringMatching(new RegExp(`found twice, in .*${child}/run_operations.sqlite3 and .*${child}9/run_operations.sqlite3`)) });
    } finally {
      await source.close?.();
    }
  });

  it('fails the run of a corrupt operation alone', async () => {
    const folder = alteredCopy('corrupt', (db) => db.prepare('UPDATE run_operations SET operation = ? WHERE sequence_id = 2').run(Buffer.from([0x0f, 0xff, 0xff])));
    const report = await job('export', `neptune3:${folder}`, join(tmp, 'bundle-corrupt'));
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]!.reason).toMatch(/operation 2 of run_operations cannot be decoded/);
    expect(report.copied.runs).toBe(1);
  });

  it('reads files logged from bytes from the moved folder; one whose local copy is gone is a warning, and the rest is copied', async () => {
    let gone = '';
    const folder = alteredCopy('gone', (db) => {
      gone = (db.prepare("SELECT source_path FROM file_upload_requests WHERE destination LIKE '%samples_text%' ORDER BY id LIMIT 1").get() as { source_path: string }).source_path;
    });
    const parentFolder = join(folder, '.neptune', runFolders(join(folder, '.neptune')).find((f) => f.includes(logged.parent.id))!);
    // the original stays where the database says it is: the copy in the moved folder is the one read
    rmSync(join(parentFolder, gone.split('/').pop()!));
    const report = await job('export', `neptune3:${folder}`, join(tmp, 'bundle-gone'));
    expect(report.failed).toEqual([]);
    expect(report.warnings.filter((w) => /is gone/.test(w.message))).toEqual([{ object: `run ${logged.parent.id}`, message: expect.stringContaining(gone.split('/').pop()!) }]);
    expect(report.copied.runs).toBe(2);
    const copied = await openSource(`bundle:${join(tmp, 'bundle-gone')}`);
    try {
      const parent = (await allRuns(copied)).find((r) => r.name === logged.parent.id)!;
      const files = await collect(copied.readSeries!(parent, { key: 'samples/text', type: 'file' }));
      expect(files.map((f) => f.step)).toEqual(logged.parent.fileSeries.slice(1).map((f) => f.step));
    } finally {
      await copied.close?.();
    }
  });
});

describe('neptune3 memory', () => {
  async function peakHeapReading(points: number): Promise<{ peak: number; read: number }> {
    const dir = join(tmp, `big-${points}`, '.neptune');
    const logs = join(projectDir, '.neptune');
    const folder = runFolders(logs).find((f) => f.includes(logged.child.id))!;
    mkdirSync(join(dir, folder), { recursive: true });
    copyFileSync(join(logs, folder, 'run_operations.sqlite3'), join(dir, folder, 'run_operations.sqlite3'));
    await python('test/fixtures/neptune3_many_points.py', [join(dir, folder, 'run_operations.sqlite3'), String(points)]);
    const { result: read, peak } = await peakHeapGrowth(async (measure) => {
      const source = await openSource(`neptune3:${dir}`);
      let read = 0;
      let last = -1;
      try {
        const [run] = await allRuns(source);
        expect(run!.series.map((s) => s.key).sort()).toEqual(['train/big', 'train/loss']);
        for await (const page of source.readMetric(run!, 'train/big')) {
          for (const point of page) {
            expect(point.step).toBeGreaterThan(last);
            last = point.step;
          }
          read += page.length;
          measure();
        }
      } finally {
        await source.close?.();
      }
      return read;
    });
    return { peak, read };
  }

  it('reads a million points in flat memory', async () => {
    const small = await peakHeapReading(100_000);
    const large = await peakHeapReading(1_000_000);
    expect(small.read).toBe(100_000);
    expect(large.read).toBe(1_000_000);
    console.log(`neptune3: peak live heap growth ${(small.peak / 2 ** 20).toFixed(1)} MB for 100,000 points, ${(large.peak / 2 ** 20).toFixed(1)} MB for 1,000,000`);
    expect(large.peak).toBeLessThan(Math.max(small.peak, 0) + 32 * 1024 * 1024);
    expect(large.peak).toBeLessThan(64 * 1024 * 1024);
  }, 600_000);
});
