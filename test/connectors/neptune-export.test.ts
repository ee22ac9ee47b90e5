/**
 * neptune-exporter parquet, written in the exporter's documented schema with pyarrow (the
 * exporter needs a live Neptune server) by test/fixtures/neptune_export.py, which prints what it
 * wrote: read back value by value, then copied into a bundle and a real MLflow server with
 * `verify` equal at each hop; hostile parts fail their run alone, naming the file.
 */
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import { decimalToNumber } from '../../src/connectors/neptune-export/parquet.js';
import type { Source } from '../../src/connectors/types.js';
import type { Run } from '../../src/model/index.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { expectEqual as expectEqualRuns, job as runJobIn, verify } from '../helpers/jobs.js';
import { allRuns } from '../helpers/source-runs.js';

interface Written {
  project: string;
  id: string;
  attributes: Record<string, { type: string; value: unknown }>;
  series: Record<string, { type: string; points: Array<{ step: number | string; timestamp?: number; value: unknown }> }>;
  artifacts: Record<string, string>;
  seriesFiles: Record<string, string>;
}

let tmp: string;
let exportsDir: string;
let written: { neptune2: Written[]; neptune3: Written[] };

const modelNumber = (v: unknown): unknown => (v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v);

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune-export-'));
  exportsDir = join(tmp, 'exports');
  written = JSON.parse(await runPython('test/fixtures/neptune_export.py', [exportsDir]));
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function check(source: Source, run: Run, expected: Written): Promise<void> {
  const config = Object.fromEntries((run.config ?? []).map((e) => [e.path.join('/'), e.value]));
  for (const [path, { type, value }] of Object.entries(expected.attributes)) {
    const got = config[path]!;
    expect(got?.type, path).toBe(type);
    expect(type === 'stringSet' ? [...(got.value as string[])].sort() : got.value, path).toEqual(modelNumber(value));
  }
  expect(run.series.map((s) => s.key).sort()).toEqual(Object.keys(expected.series).sort());
  for (const info of run.series) {
    const want = expected.series[info.key]!;
    expect(info.type).toBe(want.type);
    const got: Array<{ step: number; timestamp?: number; value: unknown }> = [];
    const pages = info.type === 'float' ? source.readMetric(run, info.key) : source.readSeries!(run, info);
    for await (const page of pages) {
      expect(page.length).toBeLessThanOrEqual(10_000);
      for (const p of page) got.push({ step: p.step, ...(p.timestamp !== undefined ? { timestamp: p.timestamp } : {}), value: p.value });
    }
    expect(got, info.key).toEqual(want.points.map((p) => ({ ...p, step: Number(p.step), value: modelNumber(p.value) })));
  }
  for (const [path, text] of Object.entries(expected.seriesFiles)) expect((await buffer(await source.readSeriesFile!(run, path))).toString()).toBe(text);
  const artifacts: Record<string, string> = {};
  for await (const file of source.listArtifacts(run)) artifacts[file.path] = (await buffer(await source.readArtifact(run, file.path))).toString();
  expect(artifacts).toEqual(expected.artifacts);
}

describe('reading a neptune-exporter export', () => {
  it('decodes decimal(18,6) steps exactly, as closely as a double can past 2^53', () => {
    const bytes = (n: bigint) => Uint8Array.from({ length: 8 }, (_, i) => Number((BigInt.asUintN(64, n) >> BigInt(8 * (7 - i))) & 0xffn));
    expect(decimalToNumber(bytes(1_000_500_000n), 6)).toBe(1000.5);
    expect(decimalToNumber(bytes(999_999_999_999_999_999n), 6)).toBe(Number('999999999999.999999'));
    expect(decimalToNumber(bytes(-5_000_001n), 6)).toBe(-5.000001);
    expect(decimalToNumber(null, 6)).toBeNull();
  });

  it('reads 2.x and 3.x runs value by value: params, series with exact steps, files, a fork', async () => {
    const source = await openSource(exportsDir);
    expect(source.kind).toBe('neptune-export');
    const runs = await allRuns(source);
    expect(source.unreadable).toEqual([]);
    expect(runs.map((r) => r.id).sort()).toEqual(['LEG-1', 'LEG-2', 'fork-run', 'parent-run']);
    for (const expected of [...written.neptune2, ...written.neptune3]) await check(source, runs.find((r) => r.id === expected.id)!, expected);
    const leg = runs.find((r) => r.id === 'LEG-1')!;
    expect(leg).toMatchObject({ experimentId: 'ws/legacy-proj', name: 'baseline', user: 'alice', startTime: 1_700_000_000_000, endTime: 1_700_003_600_000, tags: { a: '', b: '' }, group: 'grp' });
    expect(leg.series.find((s) => s.key === 'monitoring/abc123/cpu')?.system).toBe(true);
    const fork = runs.find((r) => r.id === 'fork-run')!;
    expect(fork).toMatchObject({ experimentId: 'exp-a', name: 'fork-run', fork: { runId: 'parent-run', step: 5.5 } });
    expect(runs.find((r) => r.id === 'parent-run')!.fork).toBeUndefined();
    // the data folder alone works too: its files are in the files folder beside it
    const fromData = await openSource(`neptune-export:${join(exportsDir, 'data')}`);
    expect((await allRuns(fromData)).length).toBe(4);
  });

  it('a part with a step of the wrong type, or a file path with "..", fails that run alone, naming the file', async () => {
    const dir = join(tmp, 'hostile');
    await runPython('test/fixtures/neptune_export.py', [dir]);
    const legacy = join(dir, 'data', readdirSync(join(dir, 'data')).find((d) => d.startsWith('ws_legacy'))!);
    const part = (prefix: string, n: number) => join(legacy, readdirSync(legacy).find((f) => f.startsWith(prefix) && f.endsWith(`_part_${n}.parquet`))!);
    await runPython('test/fixtures/neptune_export_spoil.py', [part('LEG-2', 0), 'step']);
    // LEG-1's files are listed in its second part
    await runPython('test/fixtures/neptune_export_spoil.py', [part('LEG-1', 1), 'file_value']);
    // a run whose part_0 is missing was cut off by the exporter: left out with a warning
    const scale = join(dir, 'data', readdirSync(join(dir, 'data')).find((d) => d.startsWith('ws_scale'))!);
    copyFileSync(join(scale, readdirSync(scale).find((f) => f.startsWith('fork-run'))!), join(scale, 'cut-off-0123456789abcdef_part_1.parquet'));
    const source = await openSource(`neptune-export:${dir}`);
    const runs = await allRuns(source);
    expect(source.warnings).toEqual([{ object: join(scale, 'cut-off-0123456789abcdef'), message: expect.stringContaining('has no part_0') }]);
    expect(runs.map((r) => r.id).sort()).toEqual(['fork-run', 'parent-run']);
    const unreadable = source.unreadable ?? [];
    expect(unreadable).toHaveLength(2);
    expect(unreadable.find((u) => u.reason.includes('LEG-2'))?.reason).toMatch(/column "step" is .*not the decimal\(18,6\)/);
    expect(unreadable.find((u) => u.reason.includes('LEG-1'))?.reason).toMatch(/file_value\.path "\.\.\/\.\.\/\.\.\/etc\/passwd" contains a "\.\." segment/);
  }, 120_000);

  describe('copied on', () => {
    let server: MlflowServer;
    beforeAll(async () => {
      server = await startMlflowServer();
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
    });

    const job = (command: 'copy' | 'export', source: string, destination: string) => runJobIn(tmp, command, source, destination);
    const expectEqual = async (source: string, destination: string) => expectEqualRuns(await verify(source, destination), 4);

    it('export → bundle → MLflow server, verify equal at each hop', async () => {
      const bundle = join(tmp, 'bundle');
      await job('export', exportsDir, bundle);
      await expectEqual(exportsDir, `bundle:${bundle}`);
      await job('copy', `bundle:${bundle}`, server.url);
      await expectEqual(`bundle:${bundle}`, server.url);
    }, 300_000);
  });
});
