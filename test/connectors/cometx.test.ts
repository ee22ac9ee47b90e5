/**
 * cometx download folders, written during the test in cometx's documented layout by
 * test/fixtures/cometx_download.py (what download_manager.py and the `--from wandb` export save,
 * with no Comet server), and offline archives written by the real comet_ml client
 * (test/fixtures/comet_offline.py): the reader gives back every record; folders trackshift
 * writes read back equal — from a download, through a bundle, and from the client's archive
 * (the same model as the archive gives) — and cometx's own copy code reads them
 * (test/fixtures/cometx_copy.py); a re-run adds nothing; a copy killed part way is redone;
 * hostile names are refused or made safe; metric files are streamed.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cometxConnector } from '../../src/connectors/cometx/index.js';
import { memoryRun, memoryStore } from '../../src/connectors/memory/index.js';
import { connectorFor, openDestination, openSource } from '../../src/connectors/resolve.js';
import type { Source } from '../../src/connectors/types.js';
import type { Histogram, MetricPoint, Run, TypedPoint } from '../../src/model/index.js';
import { pythonEnv } from '../harness/mlflow-server.js';
import { startCli, type CliResult } from '../cli/run-cli.js';
import { collect, configAt, fixtureOutput, gitRepoWithChange, list } from '../helpers/comet.js';
import { peakHeapGrowth } from '../helpers/heap.js';
import { richStore } from '../helpers/rich-run.js';
import { expectEqual, job as runJobIn, verify } from '../helpers/jobs.js';


async function python(env: 'comet' | 'cometx', script: string, args: string[], cwd = tmp): Promise<string> {
  return fixtureOutput(await pythonEnv(env), script, args, cwd, { ...process.env, PYTHONUNBUFFERED: '1', MPLCONFIGDIR: join(tmp, 'mpl'), COMET_API_KEY: '' });
}

interface Written {
  key: string;
  workspace: string;
  project: string;
  start: number;
  loss: Array<{ step: number; epoch: number; timestamp: number; value: string }>;
  git: Record<string, string>;
  requirements: string[];
  wandbLoss: string[];
}

let tmp: string;
let download: string;
let written: Written;

const job = (command: 'copy' | 'export', source: string, destination: string) => runJobIn(tmp, command, source, destination);
const words: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };
const restNumber = (text: string): number => words[text] ?? Number(text);

const text = async (source: Source, run: Run, path: string): Promise<string> => (await buffer(await source.readArtifact(run, path))).toString('utf8');

async function runsOf(source: Source): Promise<Run[]> {
  const runs: Run[] = [];
  for (const exp of await list(source.listExperiments())) runs.push(...(await list(source.listRuns(exp.id, { includeDeleted: true }))));
  return runs;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-cometx-'));
  download = join(tmp, 'download');
  written = JSON.parse(await python('comet', 'test/fixtures/cometx_download.py', [download, '3000'])) as Written;
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('cometx reader', () => {
  it('is detected at every level of a download, forced with cometx:, and leaves other formats\' folders alone', async () => {
    const experiment = join(download, written.workspace, written.project, written.key);
    for (const location of [download, join(download, written.workspace), join(download, written.workspace, written.project), experiment, `cometx:${download}`]) {
      expect((await connectorFor(location)).name).toBe('cometx');
    }
    // a bundle, an empty folder and a folder of offline archives are not cometx downloads
    const bundle = join(tmp, 'detect-bundle');
    await job('export', experiment, bundle);
    const mlruns = join(tmp, 'detect-mlruns');
    await job('copy', experiment, `mlruns:${mlruns}`);
    const empty = join(tmp, 'detect-empty');
    mkdirSync(empty);
    for (const other of [bundle, mlruns, empty, join(tmp, 'no-such-folder')]) expect(await cometxConnector.detect(other)).toBe(false);
    expect((await connectorFor(bundle)).name).toBe('bundle');
    expect((await connectorFor(mlruns)).name).toBe('mlruns');
  });

  it('gives back every record of the download: metadata, metrics, parameters, others, system details, assets, run files, project files', async () => {
    const source = await openSource(join(download, written.workspace));
    try {
      expect(source.unreadable).toEqual([]);
      // the asset whose name leaves its folder even after cometx's sanitize_filename is refused, named
      expect(source.warnings).toEqual([{ object: `run ${written.key}`, message: expect.stringMatching(/asset "\.\.\/\.\.\/escape\.txt" has an unsafe path .*: left out/) }]);
      const [exp] = await list(source.listExperiments());
      expect(exp).toEqual({ id: 'proj', name: 'proj', lifecycle: 'active', tags: { 'comet.workspace': 'ws', 'comet.description': 'the project', 'comet.notes': '# notes\nkept\n' } });
      const [run] = await list(source.listRuns('proj', { includeDeleted: true }));
      expect(run).toMatchObject({ id: written.key, name: 'first run', status: 'FINISHED', startTime: written.start, endTime: written.start + 60000, lifecycle: 'active', params: {} });
      expect(run!.tags).toEqual({ baseline: '', comet: '' });

      // parameters typed back from REST's strings, nested ones rebuilt from `|`; others: the summary
      expect(configAt(run!.config, 'lr')).toEqual({ type: 'float', value: 0.001 });
      expect(configAt(run!.config, 'epochs')).toEqual({ type: 'int', value: 12 });
      expect(configAt(run!.config, 'use_bn')).toEqual({ type: 'bool', value: true });
      expect(configAt(run!.config, 'optimizer')).toEqual({ type: 'string', value: 'adam' });
      expect(configAt(run!.config, 'model/dropout/p')).toEqual({ type: 'float', value: 0.25 });
      expect(configAt(run!.config, 'model/name')).toEqual({ type: 'string', value: 'resnet' });
      expect(run!.summary).toEqual([
        { path: ['dataset'], value: { type: 'string', value: 'mnist' } },
        { path: ['seed'], value: { type: 'int', value: 42 } },
      ]);

      expect(run!.series).toEqual([
        { key: 'loss', type: 'float' },
        { key: 'train_acc', type: 'float' },
        { key: 'sys.cpu.percent.avg', type: 'float', system: true },
        { key: 'stdout', type: 'string' },
        { key: 'visualization/dot.png', type: 'file' },
        { key: 'audio/sound.wav', type: 'file' },
        { key: 'text', type: 'string' },
        { key: 'histogram3d/weights', type: 'histogram' },
      ]);
      // every point with its step, epoch and time; "NaN" and "Infinity" as REST gives them; the point without a value left out
      const loss: MetricPoint[] = await collect(source.readMetric(run!, 'loss'));
      expect(loss).toHaveLength(written.loss.length);
      loss.forEach((point, i) => {
        const want = written.loss[i]!;
        expect([point.step, point.epoch, point.timestamp]).toEqual([want.step, want.epoch, want.timestamp]);
        expect(Object.is(point.value, restNumber(want.value))).toBe(true);
      });
      expect(loss.slice(10, 13).map((p) => p.value)).toEqual([NaN, Infinity, -Infinity]);
      expect((await collect(source.readMetric(run!, 'train_acc'))).map((p) => [p.step, p.value, p.context])).toEqual([
        [0, 0.5, 'train'],
        [1, 0.6, 'train'],
        [2, 0.7, 'train'],
      ]);
      expect((await collect(source.readMetric(run!, 'sys.cpu.percent.avg'))).map((p) => [p.step, p.value])).toEqual([
        [0, 12],
        [0, 12],
        [0, 12],
      ]);

      // output.txt: one point per line, as cometx copy logs it
      expect((await collect(source.readSeries!(run!, { key: 'stdout', type: 'string' }))).map((p) => p.value)).toEqual(['hello from stdout\n', 'second line\n']);
      const texts = await collect(source.readSeries!(run!, { key: 'text', type: 'string' }));
      expect(texts.map((t) => [t.step, t.value])).toEqual([0, 1, 2].map((i) => [i, `sample text ${i} ✓`]));
      // the combined 3D histogram: one point per step it holds, in Comet's buckets
      const histograms = await collect(source.readSeries!(run!, { key: 'histogram3d/weights', type: 'histogram' }));
      expect(histograms.map((h) => [h.step, (h.value as Histogram).values.reduce((a, b) => a + b, 0)])).toEqual([
        [0, 3],
        [1, 3],
      ]);
      // images (two logged as dot.png, the second saved as dot_1.png) and audio saved as sound-2.wav: file series under their logged names
      const images = (await collect(source.readSeries!(run!, { key: 'visualization/dot.png', type: 'file' }))) as Array<TypedPoint & { value: { path: string; name: string; size: number } }>;
      expect(images.map((p) => [p.step, p.value.name, p.value.size])).toEqual([
        [0, 'dot.png', 67],
        [1, 'dot.png', 67],
      ]);
      expect((await buffer(await source.readSeriesFile!(run!, images[1]!.value.path))).subarray(1, 4).toString()).toBe('PNG');
      const audio = (await collect(source.readSeries!(run!, { key: 'audio/sound.wav', type: 'file' }))) as Array<TypedPoint & { value: { path: string } }>;
      expect((await buffer(await source.readSeriesFile!(run!, audio[0]!.value.path))).toString()).toBe('RIFF0000WAVE');

      // assets and the other records: artifacts, as an archive's messages give them
      const paths = (await list(source.listArtifacts(run!))).map((a) => a.path);
      expect(paths.sort()).toEqual(
        [
          'assets/asset/data.json',
          'assets/asset/inside.txt',
          'assets/asset/notes.txt',
          'assets/escape.txt',
          'assets/source_code/train.py',
          'comet/assets.json',
          'comet/file_name.json',
          'comet/git_metadata.json',
          'comet/graph.json',
          'comet/html.json',
          'comet/installed_packages.json',
          'comet/remote_file.json',
          'comet/rest/system_details.json',
          'comet/system_details.json',
          'run/README.md',
          'run/git_diff.patch',
          'run/script.py',
        ].sort(),
      );
      expect(await text(source, run!, 'assets/asset/notes.txt')).toBe('hello asset\n');
      expect(await text(source, run!, 'assets/asset/inside.txt')).toBe('inside');
      expect(await text(source, run!, 'run/git_diff.patch')).toContain('+two');
      expect(JSON.parse(await text(source, run!, 'comet/html.json'))).toEqual([{ html: '<h1>report</h1>' }]);
      expect(JSON.parse(await text(source, run!, 'comet/graph.json'))).toEqual([{ graph: 'Sequential(Linear(4, 2))' }]);
      expect(JSON.parse(await text(source, run!, 'comet/file_name.json'))).toEqual([{ file_name: '/home/alice/train.py' }]);
      expect(JSON.parse(await text(source, run!, 'comet/git_metadata.json'))).toEqual([{ git_metadata: written.git }]);
      expect(JSON.parse(await text(source, run!, 'comet/installed_packages.json'))).toEqual([{ installed_packages: written.requirements }]);
      expect(JSON.parse(await text(source, run!, 'comet/remote_file.json'))).toEqual([expect.objectContaining({ remote_uri: 's3://bucket/data.csv', upload_type: 'asset' })]);
      // system details as comet_ml's system_details message has them; what REST has beyond, kept beside
      expect(JSON.parse(await text(source, run!, 'comet/system_details.json'))).toEqual([
        expect.objectContaining({ python_exe: '/usr/bin/python3', os_release: '6.1.0', os_type: 'Linux', python_version: '3.11.4', user: 'alice', command: ['train.py', '--lr', '0.001'], pid: 4242 }),
      ]);
      expect(JSON.parse(await text(source, run!, 'comet/rest/system_details.json'))).toMatchObject({ experimentKey: written.key, totalRam: 1.6e10 });
      const manifest = JSON.parse(await text(source, run!, 'comet/assets.json')) as Array<{ path: string; metadata: unknown; upload_type: string; additional_params: Record<string, unknown> }>;
      expect(manifest.find((m) => m.path === 'assets/asset/notes.txt')).toMatchObject({ upload_type: 'asset', metadata: { kind: 'notes' } });
      expect(manifest.find((m) => m.path === 'assets/asset/data.json')?.additional_params).toMatchObject({ step: 3, epoch: 1 });
    } finally {
      await source.close?.();
    }
  });

  it('reads the --from wandb variant: metrics split in files (bare Infinity), a combined histogram, renamed images', async () => {
    const source = await openSource(join(download, 'wbws', 'wbproj', 'run8abc'));
    try {
      expect(source.unreadable).toEqual([]);
      const [run] = await runsOf(source);
      expect(run).toMatchObject({ id: 'run8abc', experimentId: 'wbproj', name: 'wandb run', user: 'bob' });
      expect(run!.series.map((s) => s.key)).toEqual(['system/cpu', 'loss', 'histogram3d/w', 'visualization/img.png']);
      expect((await collect(source.readMetric(run!, 'loss'))).map((p) => p.value)).toEqual(written.wandbLoss.map(restNumber));
      expect((await collect(source.readMetric(run!, 'system/cpu'))).map((p) => [p.step, p.value])).toEqual([
        [1, 10],
        [2, 11],
      ]);
      expect((await collect(source.readSeries!(run!, { key: 'histogram3d/w', type: 'histogram' }))).map((p) => [p.step, (p.value as Histogram).values])).toEqual([
        [0, [1]],
        [5, [6]],
      ]);
      expect((await collect(source.readSeries!(run!, { key: 'visualization/img.png', type: 'file' }))).map((p) => p.step)).toEqual([3]);
      expect(configAt(run!.config, 'config')).toEqual({ type: 'string', value: '{"batch":32}' });
      expect(configAt(run!.summary, 'origin')).toEqual({ type: 'string', value: 'https://wandb.ai/bob/wbproj/runs/run8abc' });
    } finally {
      await source.close?.();
    }
  });

  it('reads one experiment folder outside WS/PROJ (a --flat download) under the project its metadata names', async () => {
    const flat = join(tmp, 'flat');
    cpSync(join(download, written.workspace, written.project, written.key), flat, { recursive: true });
    const source = await openSource(flat);
    try {
      expect(await list(source.listExperiments())).toEqual([expect.objectContaining({ id: 'proj', name: 'proj', tags: { 'comet.workspace': 'ws' } })]);
      expect((await runsOf(source)).map((r) => [r.id, r.experimentId])).toEqual([[written.key, 'proj']]);
    } finally {
      await source.close?.();
    }
  });

  it('refuses what is not safe or not valid: a symbolic link, a record of the wrong shape (that experiment alone fails)', async () => {
    const root = join(tmp, 'hostile');
    const exp = join(root, 'ws', 'proj');
    mkdirSync(join(exp, 'good'), { recursive: true });
    writeFileSync(join(exp, 'good', 'others.jsonl'), JSON.stringify({ name: 'Name', valueCurrent: 'ok' }) + '\n');
    mkdirSync(join(exp, 'linked', 'run'), { recursive: true });
    writeFileSync(join(exp, 'linked', 'others.jsonl'), '');
    symlinkSync('/etc/passwd', join(exp, 'linked', 'run', 'output.txt'));
    mkdirSync(join(exp, 'badshape'), { recursive: true });
    writeFileSync(join(exp, 'badshape', 'metrics.jsonl'), JSON.stringify({ metricName: 3, metricValue: '1' }) + '\n');
    const source = await openSource(root);
    try {
      expect((await runsOf(source)).map((r) => r.id)).toEqual(['good']);
      expect(source.unreadable!.map((u) => [u.sourceId, u.reason])).toEqual(
        expect.arrayContaining([
          ['linked', expect.stringMatching(/output\.txt: is a symbolic link/)],
          ['badshape', expect.stringMatching(/metrics\.jsonl:1: .*metricName/)],
        ]),
      );
    } finally {
      await source.close?.();
    }
  });

  it('streams metrics.jsonl: 50,000 points read page by page in flat memory, copied whole; kill -9 during a write leaves no folder', async () => {
    async function reading(points: number) {
      const dir = join(tmp, `big-${points}`);
      await python('comet', 'test/fixtures/cometx_download.py', [dir, String(points)]);
      return peakHeapGrowth(async (measure) => {
        const source = await openSource(join(dir, 'ws'));
        let read = 0;
        let maxPage = 0;
        const [run] = await runsOf(source);
        for await (const page of source.readMetric(run!, 'loss')) {
          read += page.length;
          maxPage = Math.max(maxPage, page.length);
          measure();
        }
        return { read, maxPage, dir };
      });
    }
    const small = await reading(5_000);
    const large = await reading(50_000);
    expect([small.result.read, large.result.read]).toEqual([5_000, 50_000]);
    expect(large.result.maxPage).toBeLessThanOrEqual(1000);
    console.log(`cometx: peak live heap growth ${(small.peak / 2 ** 20).toFixed(1)} MB for 5,000 points, ${(large.peak / 2 ** 20).toFixed(1)} MB for 50,000`);
    // metrics.jsonl of 50,000 points is ~7 MB of text: it is never held
    expect(large.peak).toBeLessThan(Math.max(small.peak, 0) + 16 * 1024 * 1024);
    const out = join(tmp, 'big-written');
    await job('copy', join(large.result.dir, 'ws'), `cometx:${out}`);
    expectEqual(await verify(join(large.result.dir, 'ws'), `cometx:${out}`), 1);

    // kill -9 while the folder is being written: no experiment folder at all, and a re-run writes it whole
    const killed = join(tmp, 'big-killed');
    const { child, done } = startCli(['copy', join(large.result.dir, 'ws'), `cometx:${killed}`, '--state-dir', join(tmp, 'state-killed')]);
    const staging = join(killed, '.trackshift-staging');
    let ended: CliResult | undefined;
    void done.then((r) => (ended = r));
    for (let waited = 0; !existsSync(staging) || readdirSync(staging).length === 0; waited += 5) {
      if (ended) throw new Error(`the copy ended before it was killed (exit ${ended.code}): ${ended.stderr}`);
      if (waited > 60_000) throw new Error('the copy never started writing');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    expect((await done).signal).toBe('SIGKILL');
    expect(existsSync(join(killed, 'ws', 'proj', written.key))).toBe(false);
    expect((await job('copy', join(large.result.dir, 'ws'), `cometx:${killed}`)).copied.runs).toBe(1);
    expect(readdirSync(staging)).toEqual([]);
    expectEqual(await verify(join(large.result.dir, 'ws'), `cometx:${killed}`), 1);
  }, 300_000);
});

describe('cometx writer', () => {
  it('download → bundle → cometx folder → bundle with verify equal at each hop; a re-run adds nothing; a killed copy is redone', async () => {
    const src = join(download, written.workspace);
    const bundle = join(tmp, 'bundle-w');
    await job('export', src, bundle);
    expectEqual(await verify(src, `bundle:${bundle}`), 1);

    const out = join(tmp, 'written');
    await job('copy', `bundle:${bundle}`, `cometx:${out}`);
    // the source's workspace and project, the source's experiment key as folder name
    const folder = join(out, 'ws', 'proj', written.key);
    expect(readdirSync(join(out, 'ws', 'proj')).sort()).toEqual([written.key, 'project_metadata.json', 'project_notes.md']);
    expectEqual(await verify(`bundle:${bundle}`, `cometx:${out}`), 1);
    expectEqual(await verify(src, `cometx:${out}`), 1);
    // metric values written as REST gives them
    const lines = readFileSync(join(folder, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { metricName: string; metricValue: unknown });
    expect(lines.filter((l) => l.metricName === 'loss').slice(10, 13).map((l) => l.metricValue)).toEqual(['NaN', 'Infinity', '-Infinity']);
    expect(lines.every((l) => typeof l.metricValue === 'string')).toBe(true);

    // a re-run finds the folder complete and adds nothing
    const before = statSync(join(folder, 'metadata.json')).mtimeMs;
    expect((await job('copy', `bundle:${bundle}`, `cometx:${out}`)).copied.runs).toBe(0);
    expect(statSync(join(folder, 'metadata.json')).mtimeMs).toBe(before);
    expect(readdirSync(join(out, 'ws', 'proj')).length).toBe(3);

    // a copy stopped part way leaves only its staging folder, which the next run discards and redoes
    rmSync(folder, { recursive: true });
    const staging = join(out, '.trackshift-staging', written.key);
    mkdirSync(staging, { recursive: true });
    writeFileSync(join(staging, 'metrics.jsonl'), '{"metricName": "loss", "metricVal');
    expect((await job('copy', `bundle:${bundle}`, `cometx:${out}`)).copied.runs).toBe(1);
    expect(readdirSync(join(out, '.trackshift-staging'))).toEqual([]);
    expectEqual(await verify(src, `cometx:${out}`), 1);
  }, 300_000);

  it('a Comet offline archive written by comet_ml → cometx folder: the same model as the archive; cometx\'s own copy code reads the folder', async () => {
    const repo = join(tmp, 'repo');
    await gitRepoWithChange(repo);
    const archives = join(tmp, 'archives');
    const logged = JSON.parse(await python('comet', 'test/fixtures/comet_offline.py', [archives, '2000'], repo)) as { key: string; loss: unknown[] };

    // a folder of offline archives is comet-offline's
    expect(await cometxConnector.detect(archives)).toBe(false);
    const out = join(tmp, 'from-archive');
    await job('copy', archives, `cometx:${out}`);
    const folder = join(out, 'ws', 'proj', logged.key);
    expect(existsSync(join(folder, 'metadata.json'))).toBe(true);
    expectEqual(await verify(archives, `cometx:${out}`), 1);
    expectEqual(await verify(`cometx:${out}`, archives), 1);
    // and back: cometx folder → archive is the client's archive again
    const back = join(tmp, 'back-to-archive');
    await job('copy', `cometx:${out}`, `comet-offline:${back}`);
    expectEqual(await verify(archives, `comet-offline:${back}`), 1);
    expect((await job('copy', archives, `cometx:${out}`)).copied.runs).toBe(0);

    // cometx copy's own reading code turns the folder into the archive it would upload
    const copied = JSON.parse(await python('cometx', 'test/fixtures/cometx_copy.py', [folder, 'ws2', 'proj2', join(tmp, 'cometx-copy')])) as { archives: string[]; missing: number };
    expect(copied.missing).toBe(0);
    expect(copied.archives).toHaveLength(1);
    const source = await openSource(`comet-offline:${copied.archives[0]}`);
    const original = await openSource(archives);
    try {
      const [run] = await runsOf(source);
      const [want] = await runsOf(original);
      expect(run!.name).toBe(want!.name);
      expect([run!.startTime, run!.endTime]).toEqual([want!.startTime, want!.endTime]);
      expect(Object.keys(run!.tags).filter((t) => want!.tags[t] !== undefined).sort()).toEqual(Object.keys(want!.tags).sort());
      // every metric point, with its step, epoch, context and time
      for (const key of ['loss', 'acc', 'sys.ram.total']) {
        const got = await collect(source.readMetric(run!, key));
        const expected = await collect(original.readMetric(want!, key));
        expect(got.length).toBeGreaterThan(0);
        expect(got.map((p) => [p.step, p.epoch, p.context, p.timestamp, String(p.value)])).toEqual(expected.map((p) => [p.step, p.epoch, p.context, p.timestamp, String(p.value)]));
      }
      // parameters and others by name (cometx logs REST's strings)
      for (const path of ['lr', 'epochs', 'optimizer', 'model/dropout/p']) expect(String(configAt(run!.config, path)?.value)).toBe(String(configAt(want!.config, path)?.value));
      expect(configAt(run!.summary, 'dataset')).toEqual(configAt(want!.summary, 'dataset'));
      // the assets and files it uploads
      const artifacts = (await list(source.listArtifacts(run!))).map((a) => a.path);
      expect(artifacts).toEqual(expect.arrayContaining(['assets/asset/notes.txt', 'comet/html.json', 'comet/git_metadata.json', 'comet/installed_packages.json', 'comet/graph.json']));
      expect((await text(source, run!, 'assets/asset/notes.txt'))).toBe('hello asset\n');
      // cometx logs an image back as an `image` upload, not the client's `visualization`
      expect(run!.series.map((s) => s.key)).toEqual(expect.arrayContaining(['image/dot.png', 'text', 'histogram3d/weights', 'stdout']));
    } finally {
      await source.close?.();
      await original.close?.();
    }
  }, 600_000);

  it('memory (every series type, fractional steps, forks, typed config and summary of every type) → cometx folder → bundle, verify equal', async () => {
    const src = richStore(memoryStore(`rich-cometx-${process.pid}`)).uri;
    const out = join(tmp, 'from-memory');
    await job('copy', src, `cometx:${out}?workspace=team`);
    expectEqual(await verify(src, `cometx:${out}`), 2);
    const bundle = join(tmp, 'bundle-from-cometx');
    await job('export', `cometx:${out}`, bundle);
    expectEqual(await verify(`cometx:${out}`, `bundle:${bundle}`), 2);
  }, 300_000);

  it('makes hostile names safe: workspace and project settings refused, ids that are no key hashed, names that are no folder name hashed', async () => {
    await expect(openDestination(`cometx:${join(tmp, 'h')}?workspace=../up`)).rejects.toThrow(/no folder name/);
    await expect(openDestination(`cometx:${join(tmp, 'h')}?project=a/b`)).rejects.toThrow(/no folder name/);
    await expect(openDestination(`cometx:${join(tmp, 'h')}?colour=red`)).rejects.toThrow(/unknown setting/);

    const store = memoryStore(`cometx-hostile-${process.pid}`);
    store.data.experiments.set('1', { id: '1', name: '../../escape', tags: { 'comet.workspace': '/abs' }, lifecycle: 'active' });
    const run: Run = { id: '../run', experimentId: '1', status: 'FINISHED', startTime: 1, endTime: 2, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [{ key: 'loss', type: 'float' }] };
    store.data.runs.set('../run', memoryRun({ run, metrics: new Map([['loss', [{ key: 'loss', step: 0, value: 1, timestamp: 1 }]]]) }));
    const out = join(tmp, 'hostile-out');
    await job('copy', store.uri, `cometx:${out}`);
    const workspaces = readdirSync(out).filter((n) => !n.startsWith('.'));
    expect(workspaces).toHaveLength(1);
    expect(workspaces[0]).toMatch(/^_abs\.[0-9a-f]{10}$/);
    const [project] = readdirSync(join(out, workspaces[0]!)).filter((n) => !n.endsWith('.json') && !n.endsWith('.md'));
    expect(project).toMatch(/escape\.[0-9a-f]{10}$/);
    expect(readdirSync(join(out, workspaces[0]!, project!)).filter((n) => /^[0-9a-f]{40}$/.test(n))).toHaveLength(1);
    expect(existsSync(join(tmp, 'escape'))).toBe(false);
    expectEqual(await verify(store.uri, `cometx:${out}`), 1);
  });
});
