/**
 * The Neptune 2.x offline/async reader against folders written during the test by the real
 * `neptune` client (1.14, offline mode; test/fixtures/neptune2_offline_run.py), compared value
 * by value with what the script says it logged; then copied into a bundle and into a real
 * MLflow server with `verify` equal at each hop; and hostile folders, each failing alone.
 */
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { buffer } from 'node:stream/consumers';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleConnector, openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import type { FilePoint, Run, StringPoint, TypedValue } from '../../src/model/index.js';
import { runJob, type JobOptions } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { runTool, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { cli } from '../cli/run-cli.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { allRuns as runsOf } from '../helpers/source-runs.js';

interface Logged {
  attributes: Record<string, TypedValue>;
  series: Record<string, { type: 'float' | 'string'; points: Array<[number, number | string, number]> }>;
  files: Record<string, string>;
  fileSets: Record<string, Record<string, string>>;
  fileSeries: Record<string, Array<{ step: number; timestamp: number; name: string; hex: string }>>;
  missing: string[];
  runName: string;
  second: { attributes: Record<string, TypedValue>; series: Logged['series'] };
}

let tmp: string;
/** the `.neptune` folder the client wrote */
let data: string;
let logged: Logged;
let jobs = 0;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune2-'));
  data = join(tmp, 'project', '.neptune');
  const out = join(tmp, 'logged.json');
  await runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', join(tmp, 'work'), out], { NEPTUNE_MODE: 'offline', NEPTUNE_DATA_DIRECTORY: data });
  logged = JSON.parse(readFileSync(out, 'utf8')) as Logged;
}, 180_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const byName = (runs: Run[], name: string): Run => runs.find((r) => r.name === name)!;
const runFolders = (root: string): string[] => readdirSync(join(root, 'offline')).map((n) => join(root, 'offline', n));

const job = (command: JobOptions['command'], source: string, destination: string) => runJobIn(tmp, command, source, destination);
const expectEqual = (report: VerifyReport) => expectEqualRuns(report, 2);

async function expectSeries(source: Source, run: Run, expected: Logged['series']): Promise<void> {
  for (const [key, { type, points }] of Object.entries(expected)) {
    const info = run.series.find((s) => s.key === key);
    expect(info, key).toEqual({ key, type });
    const read: Array<[number, number | string, number | undefined]> = [];
    if (type === 'float') for await (const page of source.readMetric(run, key)) for (const p of page) read.push([p.step, p.value, p.timestamp]);
    else for await (const page of source.readSeries!(run, info!)) for (const p of page as StringPoint[]) read.push([p.step, p.value, p.timestamp]);
    expect(read, key).toEqual(points);
  }
}

describe('Neptune 2.x offline folders written by the real client', () => {
  it('gives exactly what the client logged: attributes, tags, group, series, files, file sets, file series', async () => {
    const source = await openSource(data);
    expect(source.kind).toBe('neptune2');
    const runs = await runsOf(source);
    expect(runs).toHaveLength(2);
    const rich = byName(runs, logged.runName);
    // offline runs have no sys/id: the folder's uuid is the id
    expect(runFolders(data).some((dir) => dir.includes(`run__${rich.id}__`))).toBe(true);
    expect(rich.experimentId).toBe('neptune');
    expect(rich.status).toBe('FINISHED');
    expect(rich.startTime).toBeGreaterThan(0);
    expect(rich.endTime).toBeGreaterThanOrEqual(rich.startTime!);
    expect(rich.tags).toEqual({ alpha: '', delta: '', gamma: '' });
    expect(rich.group).toBe('group-a,group-b');
    const config = new Map(rich.config!.map((c) => [c.path.join('/'), c.value]));
    for (const [path, value] of Object.entries(logged.attributes)) expect(config.get(path), path).toEqual(value);
    expect(config.get('sys/name')).toEqual({ type: 'string', value: 'rich run' });
    expect(config.get('sys/description')).toEqual({ type: 'string', value: 'a run with everything' });
    expect(config.has('scratch/tmp')).toBe(false); // deleted
    await expectSeries(source, rich, logged.series);
    // the client's own captured stderr: a system series
    const stderr = rich.series.find((s) => s.key.endsWith('/stderr'))!;
    expect(stderr).toMatchObject({ type: 'string', system: true });
    const stderrText: string[] = [];
    for await (const page of source.readSeries!(rich, stderr)) for (const p of page as StringPoint[]) stderrText.push(p.value);
    expect(stderrText[0]).toBe('hello from the run');

    // the image file series: steps, timestamps, names and bytes
    const images = rich.series.find((s) => s.key === 'images/samples')!;
    expect(images.type).toBe('file');
    const points: FilePoint[] = [];
    for await (const page of source.readSeries!(rich, images)) points.push(...(page as FilePoint[]));
    expect(points.map((p) => [p.step, p.timestamp, p.value.name, p.value.mimeType])).toEqual(logged.fileSeries['images/samples']!.map((i) => [i.step, i.timestamp, i.name, 'image/png']));
    for (const [i, p] of points.entries()) expect((await buffer(await source.readSeriesFile!(rich, p.value.path))).toString('hex')).toBe(logged.fileSeries['images/samples']![i]!.hex);

    // files from content and from a path, a file set less its deleted file, the script itself as source code
    const artifacts = new Map<string, string>();
    for await (const file of source.listArtifacts(rich)) artifacts.set(file.path, (await buffer(await source.readArtifact(rich, file.path))).toString('hex'));
    for (const [path, hex] of Object.entries(logged.files)) expect(artifacts.get(path), path).toBe(hex);
    for (const [key, set] of Object.entries(logged.fileSets)) for (const [name, hex] of Object.entries(set)) expect(artifacts.get(`${key}/${name}`), name).toBe(hex);
    expect(artifacts.has('files/set/two.txt')).toBe(false);
    expect(artifacts.get('source_code/files/neptune2_offline_run.py')).toBe(readFileSync('test/fixtures/neptune2_offline_run.py').toString('hex'));
    // a file recorded by a path that no longer exists: a warning naming it, not a failure
    expect([...artifacts.keys()].some((p) => p.startsWith('files/gone'))).toBe(false);
    expect(source.warnings!.some((w) => w.object === `run ${rich.id}` && w.message.includes(logged.missing[0]!))).toBe(true);
    expect(source.unreadable).toEqual([]);

    const small = byName(runs, 'small run');
    await expectSeries(source, small, logged.second.series);
    expect(new Map(small.config!.map((c) => [c.path.join('/'), c.value])).get('score')).toEqual(logged.second.attributes.score);
  });

  it('is found from the folder above .neptune and from one run folder; ls shows the runs', async () => {
    expect((await runsOf(await openSource(join(data, '..')))).length).toBe(2);
    const single = runFolders(data)[0]!;
    const runs = await runsOf(await openSource(single));
    expect(runs).toHaveLength(1);
    expect((await runsOf(await openSource(`neptune2:${single}`))).map((r) => r.id)).toEqual(runs.map((r) => r.id));
    const ls = await cli(['ls', data, '--json']);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout).experiments).toEqual([{ id: 'neptune', name: 'neptune', lifecycle: 'active', runs: 2, deletedRuns: 0 }]);
  });

  describe('copies', () => {
    let server: MlflowServer;
    beforeAll(async () => {
      server = await startMlflowServer();
    }, 180_000);
    afterAll(async () => server?.stop());

    it('Neptune offline → bundle → MLflow server, verify equal at each hop', async () => {
      const bundle = join(tmp, 'bundle');
      const exported = await job('export', data, bundle);
      // the file recorded by a path that no longer exists is named in the report
      expect(exported.warnings.some((w) => w.message.includes(logged.missing[0]!))).toBe(true);
      expectEqual(await verify(data, `bundle:${bundle}`));
      await job('import', `bundle:${bundle}`, server.url);
      expectEqual(await verify(`bundle:${bundle}`, server.url));
      expectEqual(await verify(data, server.url));
    }, 300_000);
  });

  it('reads a log split over several data-<N>.log files, in the older exec-… layouts, and operations older clients wrote', async () => {
    const root = join(tmp, 'layouts', '.neptune');
    const rich = runFolders(data).find((d) => readFileSync(join(d, 'data-1.log'), 'utf8').includes('"rich run"'))!;
    const id = rich.split('/').pop()!.split('__')[1]!;
    // run__<uuid>/exec-…/ with the log split in the middle of train/loss, as the client rolls files
    const exec = join(root, 'offline', `run__${id}`, 'exec-0-2023-11-14_22.13.20.000000-1');
    cpSync(rich, exec, { recursive: true });
    const lines = readFileSync(join(exec, 'data-1.log'), 'utf8').trimEnd().split('\n');
    const cut = 2500;
    const firstOfSecond = (JSON.parse(lines[cut]!) as { version: number }).version;
    writeFileSync(join(exec, 'data-1.log'), lines.slice(0, cut).join('\n') + '\n');
    writeFileSync(join(exec, `data-${firstOfSecond}.log`), lines.slice(cut).join('\n') + '\n');
    // <uuid>/exec-…/ (the oldest layout), with operations the 1.14 client no longer writes:
    // a file's bytes inline, a raw control character, NaN, a copy within the run
    const old = join(root, 'offline', '0b0e6b5a-95a1-4e5c-9a59-3a7b7b2a1f00', 'exec-1');
    mkdirSync(old, { recursive: true });
    const record = (version: number, obj: object) => JSON.stringify({ obj, version, at: 1_700_000_000 + version });
    writeFileSync(
      join(old, 'data-1.log'),
      [
        record(1, { type: 'AssignString', path: ['sys', 'name'], value: 'old run' }),
        record(2, { type: 'UploadFileContent', path: ['files', 'inline'], ext: 'txt', file_content: Buffer.from('inline bytes').toString('base64') }),
        record(3, { type: 'AssignFloat', path: ['lr'], value: 0.5 }),
        record(4, { type: 'CopyAttribute', path: ['lr_copy'], container_id: '0b0e6b5a-95a1-4e5c-9a59-3a7b7b2a1f00', container_type: 'run', source_path: ['lr'], source_attr_name: 'Float' }),
        record(5, { type: 'AssignString', path: ['note'], value: 'TAB' }).replace('TAB', 'a\tb'),
        record(6, { type: 'LogFloats', path: ['m'], values: [{ value: 1, step: null, ts: 1_700_000_000.5 }] }).replace('"value":1', '"value":NaN'),
      ].join('\n') + '\n',
    );
    const source = await openSource(root);
    const runs = await runsOf(source);
    expect(source.unreadable).toEqual([]);
    expect(runs.map((r) => r.name).sort()).toEqual(['old run', 'rich run']);
    await expectSeries(source, byName(runs, 'rich run'), logged.series);
    const oldRun = byName(runs, 'old run');
    const config = new Map(oldRun.config!.map((c) => [c.path.join('/'), c.value]));
    expect(config.get('lr_copy')).toEqual({ type: 'float', value: 0.5 });
    expect(config.get('note')).toEqual({ type: 'string', value: 'a\tb' });
    const points = [];
    for await (const page of source.readMetric(oldRun, 'm')) points.push(...page);
    expect(points).toEqual([{ key: 'm', step: 0, timestamp: 1_700_000_000_500, value: Number.NaN }]);
    expect((await buffer(await source.readArtifact(oldRun, 'files/inline.txt'))).toString()).toBe('inline bytes');
  });

  describe('hostile and damaged folders: one bad run fails alone, naming its file', () => {
    /** a `.neptune` copy with the rich run changed by `damage` (given its folder) */
    function damaged(name: string, damage: (runDir: string) => void): { root: string; runDir: string } {
      const root = join(tmp, name, '.neptune');
      mkdirSync(join(root, 'offline'), { recursive: true });
      for (const dir of runFolders(data)) cpSync(dir, join(root, 'offline', dir.split('/').pop()!), { recursive: true });
      const runDir = runFolders(root).find((d) => readFileSync(join(d, 'data-1.log'), 'utf8').includes('"rich run"'))!;
      damage(runDir);
      return { root, runDir };
    }

    it('a last line cut short is skipped with a warning, as the client skips it', async () => {
      const { root } = damaged('truncated', (dir) => appendFileSync(join(dir, 'data-1.log'), '{"obj": {"type": "AssignFloat", "path": ["late"], "val'));
      const source = await openSource(root);
      const runs = await runsOf(source);
      expect(runs).toHaveLength(2);
      expect(source.unreadable).toEqual([]);
      expect(source.warnings!.some((w) => /data-1\.log:\d+: the last line is cut short/.test(w.message))).toBe(true);
      expect(byName(runs, 'rich run').config!.some((c) => c.path[0] === 'late')).toBe(false);
    });

    it('a line that is not JSON fails its run with the file and line', async () => {
      const { root, runDir } = damaged('not-json', (dir) => {
        const lines = readFileSync(join(dir, 'data-1.log'), 'utf8').split('\n');
        lines.splice(5, 0, 'this is not json');
        writeFileSync(join(dir, 'data-1.log'), lines.join('\n'));
      });
      const source = await openSource(root);
      const runs = await runsOf(source);
      expect(runs.map((r) => r.name)).toEqual(['small run']);
      expect(source.unreadable).toHaveLength(1);
      expect(source.unreadable![0]!.reason).toContain(`${join(runDir, 'data-1.log')}:6`);
      // the engine reports it failed and copies the other
      const report = await runJob({
        command: 'export',
        source: root,
        destination: join(tmp, 'bundle-not-json'),
        selection: emptySelection(),
        workers: 1,
        artifactWorkers: 1,
        dryRun: false,
        stateDir: join(tmp, `state-${jobs++}`),
        newFolderFormat: bundleConnector,
        env: {},
      });
      expect(report.failed).toHaveLength(1);
      expect(JSON.stringify(report.failed)).toContain('data-1.log:6');
    });

    it('a file name with ".." fails its run, and nothing outside the folder is read', async () => {
      const { root, runDir } = damaged('dotdot', (dir) => {
        const log = readFileSync(join(dir, 'data-1.log'), 'utf8').replace(/"tmp_file_name": "files_notes-[^"]*"/, '"tmp_file_name": "../../../../etc/passwd"');
        writeFileSync(join(dir, 'data-1.log'), log);
      });
      const source = await openSource(root);
      expect((await runsOf(source)).map((r) => r.name)).toEqual(['small run']);
      expect(source.unreadable![0]!.reason).toContain(join(runDir, 'data-1.log'));
      expect(source.unreadable![0]!.reason).toContain('..');
    });

    it('an async folder: operations up to last_ack_version were sent and are skipped; the run says it is partial', async () => {
      const root = join(tmp, 'async', '.neptune');
      mkdirSync(join(root, 'async'), { recursive: true });
      const small = runFolders(data).find((d) => readFileSync(join(d, 'data-1.log'), 'utf8').includes('"small run"'))!;
      const target = join(root, 'async', small.split('/').pop()!);
      cpSync(small, target, { recursive: true });
      const versions = readFileSync(join(target, 'data-1.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { version: number; obj: { path: string[] } });
      const score = versions.find((v) => v.obj.path.join('/') === 'score')!.version;
      writeFileSync(join(target, 'last_ack_version'), String(score));
      const source = await openSource(root);
      const [run] = await runsOf(source);
      const config = new Map((run!.config ?? []).map((c) => [c.path.join('/'), c.value]));
      expect(config.has('score')).toBe(false);
      expect(config.has('sys/name')).toBe(false);
      expect(run!.series.map((s) => s.key)).toEqual(['curve']);
      expect(source.warnings!.some((w) => w.message.includes('not yet sent'))).toBe(true);
    });
  });
});
