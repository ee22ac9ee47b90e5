/**
 * The Neptune-shaped test server's 3.x API against the real clients: neptune-scale 0.30 creates a
 * project (twice: the second time it exists) and writes a run with every kind of value and a fork
 * of it; the server holds exactly what the client logged, with no ingest refusal. A run sent to a
 * project that does not exist is refused with PROJECT_NOT_FOUND, and the client reports it.
 * neptune-query 1.8 reads everything back (runs and experiments with filters, attributes, the runs
 * table, metrics with and without the fork's lineage, series, files). Injected 429 and 503 answers
 * are ridden out by both clients. What Neptune refuses (a duplicate run, a step that does not
 * increase, a timestamp that goes back, a type conflict, a fork of a missing run) comes back as
 * ingest codes that neptune-scale reports, and changes nothing. On the wire, without a client:
 * status order and UNAVAILABLE, RUN_NOT_FOUND, NaN refused when asked to, project creation.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pythonEnv } from './mlflow-server.js';
import { decodeMessage, encodeMessage, stepOf } from '../../src/connectors/neptune-common/scale-proto.js';
import { writeWithNeptuneScale as write, type LoggedPoint as Point, type Written } from '../helpers/neptune-scale-written.js';
import { startNeptuneServer, type NeptuneServer, type ScaleAttribute, type ScaleRun } from './neptune-server/index.js';

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-scale-server-'));


interface Read {
  experiments: string[];
  runs: string[];
  byOptimizer: string[];
  byNumber: string[];
  byRegex: string[];
  attributes: string[];
  table: Record<string, Record<string, unknown>>;
  metrics: { lineage: unknown[][]; own: unknown[][]; parent: unknown[][]; tail: unknown[][] };
  series: Record<string, unknown[][]>;
  downloaded: Record<string, string>;
  readme: string[];
}

const execFileAsync = promisify(execFile);
async function read(server: NeptuneServer, project: string): Promise<Read> {
  const venv = await pythonEnv('neptune-query');
  const env = {
    ...process.env,
    ...server.scaleEnv(),
    PYTHONUNBUFFERED: '1',
    // small pages, so that the client's paging of every call is exercised
    NEPTUNE_QUERY_ATTRIBUTE_DEFINITIONS_BATCH_SIZE: '3',
    NEPTUNE_QUERY_ATTRIBUTE_VALUES_BATCH_SIZE: '4',
    NEPTUNE_QUERY_EXPERIMENT_SYS_ATTRS_BATCH_SIZE: '1',
  };
  try {
    const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), ['test/fixtures/neptune_query_read.py', project, temp()], { env, maxBuffer: 100_000_000 });
    return JSON.parse(stdout) as Read;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`neptune_query_read.py failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

const value = (a: ScaleAttribute | undefined) => (a === undefined ? undefined : 'value' in a ? a.value : 'values' in a ? a.values : a.points);
const points = (run: ScaleRun, path: string) => {
  const a = run.attributes.get(path);
  return a && 'points' in a ? a.points : [];
};

describe('Neptune-shaped test server (3.x API), with the real neptune-scale and neptune-query clients', () => {
  let server: NeptuneServer;
  let written: Written;

  beforeAll(async () => {
    // every request is "not processed yet" at its first check, so that the client polls again
    // (and a string/histogram/file series page holds one point, so that the reader follows searchAfter)
    server = await startNeptuneServer({ workspaces: ['ws'], pendingChecks: 1, queryPageSize: 1 });
    server.failNext('ingest', { status: 429, retryAfter: 1 });
    server.failNext('checkStatus', { status: 503 });
    server.failNext('signedUrl', { status: 503 });
    written = await write(server, 'full', 'ws/srv');
  }, 240_000);
  afterAll(() => server?.close());

  it('holds what neptune-scale wrote, value by value, with no refusal', () => {
    expect(written.errors).toEqual([]);
    expect(server.scale.refusals()).toEqual([]);
    expect(server.unhandled).toEqual([]);
    for (const operation of ['ingest', 'checkStatus', 'signedUrl', 'createProject']) expect(server.calls.get(operation), operation).toBeGreaterThan(1);
    expect(server.store.project('ws/srv')).toMatchObject({ key: 'SRV', description: 'made by neptune-scale' });

    const [parent, child, ...others] = server.scale.runs('ws/srv');
    expect(others).toEqual([]);
    const p = written.parent;
    expect(parent).toMatchObject({ runId: p.id, sysId: 'SRV-1', experiment: p.experiment, created: p.creationTime });
    const attributes = server.scale.attributes(parent!);
    for (const [path, v] of Object.entries(p.configs)) {
      const a = attributes.get(path);
      const type = typeof v === 'boolean' ? 'bool' : typeof v === 'string' ? 'string' : Array.isArray(v) ? 'stringSet' : path === 'parameters/started' ? 'datetime' : Number.isInteger(v) ? 'int' : 'float';
      expect(a?.type, path).toBe(type);
      expect(value(a), path).toEqual(v);
    }
    expect(value(attributes.get('sys/tags'))).toEqual(p.tags);
    expect(value(attributes.get('sys/group_tags'))).toEqual(p.groupTags);
    expect(value(attributes.get('sys/name'))).toBe(p.experiment);
    expect(value(attributes.get('sys/custom_run_id'))).toBe(p.id);
    expect(value(attributes.get('sys/creation_time'))).toBe(p.creationTime);

    expect(points(parent!, 'train/loss').map((x) => ({ step: x.step, value: x.value, timestamp: x.timestampMillis }))).toEqual(p.loss);
    expect(points(parent!, 'train/notes').map((x) => ({ step: x.step, value: x.value, timestamp: x.timestampMillis }))).toEqual(p.notes);
    expect(points(parent!, 'dist/weights').map((x) => ({ step: x.step, ...(x.value as object) }))).toEqual(p.histograms.map((h) => ({ step: h.step, type: 'COUNTING', edges: h.edges, values: h.counts })));

    const readme = parent!.attributes.get('files/readme');
    expect(readme?.type).toBe('fileRef');
    const ref = readme?.type === 'fileRef' ? readme.value : undefined;
    expect(ref).toMatchObject({ sizeBytes: Buffer.byteLength(p.readme), mimeType: 'text/plain' });
    expect(server.scaleFile('ws/srv', ref!.path)?.toString('utf8')).toBe(p.readme);
    const samples = points(parent!, 'samples/text');
    expect(samples.map((x) => ({ step: x.step, text: server.scaleFile('ws/srv', (x.value as { path: string }).path)?.toString('utf8'), mimeType: (x.value as { mimeType: string }).mimeType, size: (x.value as { sizeBytes: number }).sizeBytes }))).toEqual(p.samples);

    const c = written.child;
    expect(child).toMatchObject({ runId: c.id, sysId: 'SRV-2', fork: { parent, step: c.forkStep } });
    expect(points(child!, 'train/loss').map((x) => ({ step: x.step, value: x.value, timestamp: x.timestampMillis }))).toEqual(c.loss);
    // with lineage, the parent's points up to the fork step come first
    expect(server.scale.seriesPoints(child!, 'train/loss', true).map((x) => x.step)).toEqual([...p.loss.filter((x) => x.step <= c.forkStep), ...c.loss].map((x) => x.step));
    expect(value(server.scale.attributes(child!).get('sys/forking/depth'))).toBe(1);
  });

  it('refuses a run sent to a project that does not exist (PROJECT_NOT_FOUND), and the client reports it', async () => {
    const result = await write(server, 'missing-project', 'ws/nowhere');
    expect(result.errors).toContain('NeptuneProjectNotFound');
    expect(server.scale.refusals().map((r) => r.code)).toContain('PROJECT_NOT_FOUND');
    expect(server.store.project('ws/nowhere')).toBeUndefined();
    expect(server.unhandled).toEqual([]);
  }, 120_000);

  it('answers neptune-query 1.8 with what was written: runs and experiments with filters, attributes, the runs table, metrics with and without lineage, series, files', async () => {
    server.failNext('searchEntries', { status: 429, retryAfter: 1 });
    server.failNext('queryAttributes', { status: 503 });
    server.failNext('floatSeries', { status: 503 });
    server.failNext('series', { status: 429, retryAfter: 1 });
    server.failNext('storageGet', { status: 503 });
    const got = await read(server, 'ws/srv');
    const p = written.parent;
    const c = written.child;

    // the fork took the experiment over: the parent is no longer its head
    expect(got.experiments).toEqual([p.experiment]);
    expect(got.runs).toEqual([c.id, p.id]);
    expect(got.byOptimizer).toEqual([p.id]);
    expect(got.byNumber).toEqual([p.id]);
    expect(got.byRegex).toEqual([c.id]);
    for (const path of [...Object.keys(p.configs), 'train/loss', 'train/notes', 'dist/weights', 'files/readme', 'samples/text', 'sys/tags', 'sys/custom_run_id']) expect(got.attributes, path).toContain(path);

    const row = got.table[p.id]!;
    for (const [path, v] of Object.entries(p.configs)) {
      const type = typeof v === 'boolean' ? 'bool' : typeof v === 'string' ? 'string' : Array.isArray(v) ? 'string_set' : path === 'parameters/started' ? 'datetime' : Number.isInteger(v) ? 'int' : 'float';
      expect(row[`${path}:${type}`], path).toEqual(v);
    }
    expect(row).toMatchObject({
      'sys/custom_run_id:string': p.id,
      'sys/id:string': 'SRV-1',
      'sys/name:string': p.experiment,
      'sys/tags:string_set': p.tags,
      'sys/group_tags:string_set': p.groupTags,
      'sys/creation_time:datetime': p.creationTime,
      'train/loss:float_series': p.loss[p.loss.length - 1]!.value,
      'files/readme:file': { size: Buffer.byteLength(p.readme), mimeType: 'text/plain' },
    });
    expect(got.table[c.id]).toMatchObject({ 'sys/id:string': 'SRV-2', 'train/loss:float_series': c.loss[c.loss.length - 1]!.value });

    const triple = (x: Point) => [x.step, x.value, x.timestamp];
    expect(got.metrics.parent).toEqual(p.loss.map(triple));
    expect(got.metrics.lineage).toEqual([...p.loss.filter((x) => x.step <= c.forkStep), ...c.loss].map(triple));
    expect(got.metrics.own).toEqual(c.loss.map((x) => [x.step, x.value]));
    expect(got.metrics.tail).toEqual(p.loss.slice(-3).map((x) => [x.step, x.value]));

    expect(got.series['train/notes']).toEqual(p.notes.map(triple));
    expect(got.series['dist/weights']!.map(([step, h]) => [step, h])).toEqual(p.histograms.map((h) => [h.step, { type: 'COUNTING', edges: h.edges, values: h.counts }]));
    expect(got.series['samples/text']!.map(([step, f]) => [step, { ...(f as object), path: undefined }])).toEqual(p.samples.map((s) => [s.step, { path: undefined, size: s.size, mimeType: s.mimeType }]));
    expect(Object.values(got.downloaded)).toEqual(p.samples.map((s) => s.text));
    expect(got.readme).toEqual([p.readme, p.readme]);

    for (const operation of ['searchEntries', 'queryAttributeDefinitions', 'queryAttributes', 'floatSeries', 'series', 'storageGet']) expect(server.calls.get(operation), operation).toBeGreaterThan(1);
    expect(server.unhandled).toEqual([]);
  }, 240_000);

  // last: it sends srv-parent again
  it('refuses what Neptune refuses, as ingest codes the client reports, and keeps the run as it was', async () => {
    const parent = server.scale.run('ws/srv', 'srv-parent')!;
    const loss = structuredClone(points(parent, 'train/loss'));
    const result = await write(server, 'refusals', 'ws/srv');
    const codes = (runId: string) => server.scale.refusals().filter((r) => r.runId === runId).map((r) => r.code);
    expect(codes('srv-parent')).toEqual(expect.arrayContaining(['RUN_DUPLICATE', 'SERIES_STEP_NON_INCREASING', 'SERIES_TIMESTAMP_DECREASING', 'FIELD_TYPE_CONFLICTING']));
    expect(codes('srv-orphan')).toContain('RUN_FORK_PARENT_NOT_FOUND');
    expect(result.warnings).toEqual(expect.arrayContaining(['NeptuneRunDuplicate', 'NeptuneRunForkParentNotFound']));
    expect(result.errors).toEqual(expect.arrayContaining(['NeptuneSeriesStepNonIncreasing', 'NeptuneSeriesTimestampDecreasing', 'NeptuneAttributeTypeMismatch']));
    expect(points(parent, 'train/loss')).toEqual(loss);
    expect(parent.attributes.get('parameters/lr')).toEqual({ type: 'float', value: written.parent.configs['parameters/lr'] });
    expect(server.scale.run('ws/srv', 'srv-orphan')).toBeUndefined();
    expect(server.unhandled).toEqual([]);
  }, 180_000);
});

describe('Neptune-shaped test server (3.x API), on the wire: what the clients do not send by themselves', () => {
  let server: NeptuneServer;
  let bearer: string;
  beforeAll(async () => {
    server = await startNeptuneServer({ projects: [['ws', 'raw', 'RAW']], refuseNanInf: true, pendingChecks: 2 });
    const exchanged = await fetch(`${server.url}/api/backend/v1/authorization/oauth-token`, { headers: { 'X-Neptune-Api-Token': server.token } });
    bearer = ((await exchanged.json()) as { accessToken: string }).accessToken;
  });
  afterAll(() => server?.close());

  const ingest = async (operation: object): Promise<string> => {
    const res = await fetch(`${server.url}/api/client/v1/ingest`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/x-protobuf' }, body: Buffer.from(encodeMessage('neptune.ingest.v1.pub.RunOperation', operation)) });
    expect(res.status).toBe(200);
    return decodeMessage<{ requestIds: string[] }>('neptune.ingest.v1.pub.SubmitResponse', new Uint8Array(await res.arrayBuffer())).requestIds[0]!;
  };
  const check = async (ids: string[]) => {
    const res = await fetch(`${server.url}/api/client/v1/ingest/check?projectIdentifier=ws/raw`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}` }, body: Buffer.from(encodeMessage('neptune.ingest.v1.pub.RequestIdList', { ids: ids.map((value) => ({ value })) })) });
    const statuses = decodeMessage<{ statuses: Array<{ codeByCount: Array<{ code: number; detail: number }> }> }>('neptune.ingest.v1.pub.BulkRequestStatus', new Uint8Array(await res.arrayBuffer())).statuses;
    return statuses.map((s) => s.codeByCount.map((c) => [c.code, c.detail]));
  };

  it('rejects an unknown API token (401) and answers statuses UNAVAILABLE until processed, in the order asked, with the codes of each request', async () => {
    const rejected = await fetch(`${server.url}/api/backend/v1/authorization/oauth-token`, { headers: { 'X-Neptune-Api-Token': Buffer.from(JSON.stringify({ api_address: server.url, api_url: server.url, api_key: 'x' })).toString('base64') } });
    expect(rejected.status).toBe(401);

    const created = await ingest({ project: 'ws/raw', runId: 'r1', operation: { case: 'create', value: { runId: 'r1', family: 'r1' } } });
    const nan = await ingest({ project: 'ws/raw', runId: 'r1', operation: { case: 'update', value: { step: stepOf(1), append: { m: { value: { case: 'float64', value: Number.NaN } }, n: { value: { case: 'float64', value: 2 } } } } } });
    const lost = await ingest({ project: 'ws/raw', runId: 'nobody', operation: { case: 'update', value: { assign: { a: { value: { case: 'int64', value: 1n } } } } } });
    const sys = await ingest({ project: 'ws/raw', runId: 'r1', operation: { case: 'update', value: { assign: { 'sys/id': { value: { case: 'string', value: 'X' } } } } } });
    const UNAVAILABLE = [[14, 0]];
    expect(await check([lost, created])).toEqual([UNAVAILABLE, UNAVAILABLE]);
    expect(await check([created, nan])).toEqual([UNAVAILABLE, UNAVAILABLE]);
    expect(await check([created, nan, lost, sys])).toEqual([[[0, 0]], UNAVAILABLE, UNAVAILABLE, UNAVAILABLE]);
    // google.rpc.Code, IngestCode
    expect(await check([nan, lost, sys])).toEqual([[[3, 32]], [[5, 10]], UNAVAILABLE]);
    expect(await check([sys])).toEqual([[[3, 19]]]);
    const run = server.scale.run('ws/raw', 'r1')!;
    expect([...run.attributes.keys()]).toEqual(['n']);
    expect(server.scale.refusals().map((r) => r.code)).toEqual(['FLOAT_VALUE_NAN_INF_UNSUPPORTED', 'RUN_NOT_FOUND', 'FIELD_PATH_NON_WRITABLE']);
  });

  it('creates a 3.x project once (409 when it exists, 404 "Organization … not found" for an unknown workspace) and lists it', async () => {
    const create = (organizationIdentifier: string) =>
      fetch(`${server.url}/api/backend/v1/projects`, { method: 'POST', headers: { Authorization: `Bearer ${bearer}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'made', projectKey: 'MADE', organizationIdentifier, visibility: 'priv', description: null }) });
    expect((await create('ws')).status).toBe(200);
    expect((await create('ws')).status).toBe(409);
    const unknown = await create('nowhere');
    expect([unknown.status, await unknown.text()]).toEqual([404, 'Organization nowhere not found']);
    const listed = (await (await fetch(`${server.url}/api/backend/v1/projects?userRelation=viewerOrHigher&sortBy=lastViewed`, { headers: { Authorization: `Bearer ${bearer}` } })).json()) as { entries: Array<{ name: string; organizationName: string; projectKey: string }> };
    expect(listed.entries.map((e) => [e.organizationName, e.name, e.projectKey])).toEqual([
      ['ws', 'raw', 'RAW'],
      ['ws', 'made', 'MADE'],
    ]);
    expect(server.unhandled).toEqual([]);
  });
});
