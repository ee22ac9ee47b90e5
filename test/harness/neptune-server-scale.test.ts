/**
 * The Neptune-shaped test server's 3.x API against the real clients: neptune-scale 0.30 creates a
 * project (twice: the second time it exists) and writes a run with every kind of value and a fork
 * of it; the server holds exactly what the client logged, with no ingest refusal. A run sent to a
 * project that does not exist is refused with PROJECT_NOT_FOUND, and the client reports it.
 * neptune-query 1.8 reads everything back (runs and experiments with filters, attributes, the runs
 * table, metrics with and without the fork's lineage, series, files). Injected 429 and 503 answers
 * are ridden out by both clients.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from './mlflow-server.js';
import { startNeptuneServer, type NeptuneServer, type ScaleAttribute, type ScaleRun } from './neptune-server/index.js';

interface Point {
  step: number;
  value: number | string;
  timestamp: number;
}
interface Written {
  errors: string[];
  warnings: string[];
  parent: {
    id: string;
    experiment: string;
    creationTime: number;
    configs: Record<string, number | boolean | string | string[]>;
    tags: string[];
    groupTags: string[];
    loss: Point[];
    notes: Point[];
    histograms: Array<{ step: number; edges: number[]; counts: number[] }>;
    readme: string;
    samples: Array<{ step: number; text: string; mimeType: string; size: number }>;
  };
  child: { id: string; forkParent: string; forkStep: number; loss: Point[] };
}

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-scale-server-'));

async function write(server: NeptuneServer, mode: 'full' | 'missing-project', project: string): Promise<Written> {
  const out = await runTool('neptune3', 'python', ['test/fixtures/neptune3_server_write.py', temp(), mode, project], server.scaleEnv());
  const line = out.split('\n').find((l) => l.startsWith('{"errors"'));
  if (!line) throw new Error(`the writer printed no result:\n${out}`);
  return JSON.parse(line) as Written;
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
    server = await startNeptuneServer({ workspaces: ['ws'], pendingChecks: 1 });
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
});

