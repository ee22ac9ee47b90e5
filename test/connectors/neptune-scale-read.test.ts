/**
 * `neptune-scale://WORKSPACE/PROJECT` read through the query API neptune-query 1.8 calls, from the
 * Neptune-shaped test server into which the real neptune-scale 0.30 client wrote a run with every
 * kind of value and a fork of it: what trackshift reads equals what the client logged, value by
 * value — configs with their types, tags and group tags, fractional-step metrics with their
 * timestamps, string series, histograms, the file attribute's and the file series' bytes, the
 * fork's own points with the fork recorded. `--filter` is NQL passed through; series longer than
 * a page are paged, by afterStep and by searchAfter token, and turned oldest first in bounded
 * memory; 429 and 5xx answers are ridden out; `ls` and `export` + `verify` work from the command
 * line; what trackshift wrote into neptune-scale:// reads back equal.
 */
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore } from '../../src/connectors/memory/index.js';
import { runJob } from '../../src/engine/job.js';
import { emptySelection } from '../../src/engine/plan.js';
import { runVerify } from '../../src/verify/index.js';
import { NeptuneScaleApi } from '../../src/connectors/neptune-scale/api.js';
import { encodeMessage, stepOf, timestampOf } from '../../src/connectors/neptune-common/scale-proto.js';
import { ScaleQuery } from '../../src/connectors/neptune-scale/query.js';
import { NeptuneScaleSource, oldestFirst, type ScaleReadOptions } from '../../src/connectors/neptune-scale/read.js';
import type { Histogram, Run, SeriesFile, TypedPoint } from '../../src/model/index.js';
import { cli } from '../cli/run-cli.js';
import { expectEqual } from '../helpers/jobs.js';
import { richStore } from '../helpers/rich-run.js';
import { writeWithNeptuneScale, type LoggedPoint as Point, type Written } from '../helpers/neptune-scale-written.js';
import { startNeptuneServer, type NeptuneServer } from '../harness/neptune-server/index.js';


const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-neptune-scale-read-'));
const text = async (body: AsyncIterable<unknown>) => {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

describe('oldestFirst: series the API gives newest first, given oldest first', () => {
  /** a series of `n` points as pages of `size`, newest first, counting the calls */
  function pages(n: number, size: number) {
    const steps = Array.from({ length: n }, (_, i) => i / 2);
    const calls: Array<number | undefined> = [];
    const fetch = async (after: number | undefined) => {
      calls.push(after);
      const below = steps.filter((s) => after === undefined || s < after).reverse().slice(0, size);
      return { points: below.map((step) => ({ step })), ...(below.length === size ? { next: below.at(-1)! } : {}) };
    };
    return { steps, calls, fetch };
  }
  const collect = async (it: AsyncIterable<Array<{ step: number }>>) => {
    const out: number[][] = [];
    for await (const page of it) out.push(page.map((p) => p.step));
    return out;
  };

  it('gives every page oldest first, asking again only for the pages it did not keep', async () => {
    const { steps, calls, fetch } = pages(23, 5);
    const all = await collect(oldestFirst(fetch, 1000, () => 1, () => 'test'));
    expect(all.flat()).toEqual(steps);
    expect(calls).toHaveLength(5); // 5, 5, 5, 5, 3: all kept
    const few = pages(23, 5);
    const out = await collect(oldestFirst(few.fetch, 8, () => 1, () => 'test'));
    expect(out.flat()).toEqual(steps);
    expect(out.every((page) => page.length <= 5)).toBe(true);
    // the two lowest pages (3 + 5 points) were kept; the three above were asked for again
    expect(few.calls).toHaveLength(5 + 3);
  });

  it('refuses a server that ignores the cursor, or whose series changes between the passes', async () => {
    const ignoring = async () => ({ points: [{ step: 3 }, { step: 2 }], next: 2 });
    await expect(collect(oldestFirst(ignoring, 10, () => 1, () => 'srv'))).rejects.toThrow(/step 3 after step 2/);
    let round = 0;
    const changing = async (after: number | undefined) => {
      if (after === undefined) round++;
      const top = round > 1 ? [{ step: 9 }, { step: 8 }] : [{ step: 8 }, { step: 7 }];
      return after === undefined ? { points: top, next: top[1]!.step } : { points: [{ step: 1 }] };
    };
    await expect(collect(oldestFirst(changing, 1, () => 1, () => 'srv'))).rejects.toThrow(/changed while it was read/);
  });
});

describe('neptune-scale:// answers that are not what Neptune answers', () => {
  /** a server that bootstraps as Neptune does and answers the query calls with `answers[path]` */
  async function serve(answers: Record<string, () => Buffer>) {
    let url = '';
    const jwt = `e30.${Buffer.from(JSON.stringify({ exp: Math.floor(Date.now() / 1000) + 3600 })).toString('base64url')}.c2ln`;
    const json: Record<string, () => unknown> = {
      '/api/backend/v1/clients/config': () => ({ apiUrl: url, pyLibVersions: {}, security: { clientId: 'c', openIdDiscovery: `${url}/discovery` } }),
      '/discovery': () => ({ authorization_endpoint: `${url}/auth`, token_endpoint: `${url}/token` }),
      '/api/backend/v1/authorization/oauth-token': () => ({ accessToken: jwt, refreshToken: jwt, username: 'u' }),
    };
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const path = new URL(req.url ?? '/', url).pathname;
        const reply = json[path];
        if (reply) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply()));
        const bytes = answers[path];
        if (bytes) return res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(bytes());
        res.writeHead(404).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const token = Buffer.from(JSON.stringify({ api_url: url, api_key: 'k' })).toString('base64');
    const api = new NeptuneScaleApi({ token, origin: 'NEPTUNE_API_TOKEN', side: 'source' });
    const source = new NeptuneScaleSource(new ScaleQuery(api, 'ws/proj', { side: 'source' }));
    return { source, close: async () => (await source.close(), await new Promise((resolve) => server.close(resolve))) };
  }
  const SEARCH = '/api/leaderboard/v1/proto/leaderboard/entries/search/';
  const ATTRIBUTES = '/api/leaderboard/v1/proto/leaderboard/attributes/query';
  const model = (name: string, message: object) => () => Buffer.from(encodeMessage(`neptune.api.v1.model.${name}`, message));
  const string = (name: string, value: string) => ({ name, type: 'string', stringProperties: { attributeName: name, attributeType: 'string', value } });
  const oneRun = model('ProtoLeaderboardEntriesSearchResultDTO', { entries: [{ attributes: [string('sys/id', 'P-1'), string('sys/custom_run_id', 'r1')] }] });
  const listed = async (source: NeptuneScaleSource) => {
    const runs: Run[] = [];
    for await (const e of source.listExperiments()) for await (const r of source.listRuns(e.id, { includeDeleted: true })) runs.push(r);
    return runs;
  };

  it('names an answer that is not protobuf, and an attribute without its value', async () => {
    const garbage = await serve({ [SEARCH]: () => Buffer.from('<html>maintenance</html>') });
    try {
      await expect(listed(garbage.source)).rejects.toThrow(/entries\/search.*not a ProtoLeaderboardEntriesSearchResultDTO message/);
    } finally {
      await garbage.close();
    }
    const valueless = await serve({
      [SEARCH]: oneRun,
      [ATTRIBUTES]: model('ProtoQueryAttributesResultDTO', { entries: [{ experimentShortId: 'P-1', attributes: [string('sys/custom_run_id', 'r1'), { name: 'lr', type: 'float' }] }] }),
    });
    try {
      await expect(listed(valueless.source)).rejects.toThrow(/run P-1: attribute lr of type float comes without its value/);
    } finally {
      await valueless.close();
    }
  });

  it('refuses a series that does not come newest first, or another series than the one asked for', async () => {
    const attributes = model('ProtoQueryAttributesResultDTO', { entries: [{ experimentShortId: 'P-1', attributes: [string('sys/custom_run_id', 'r1'), { name: 'm', type: 'floatSeries', floatSeriesProperties: {} }, { name: 'notes', type: 'stringSeries', stringSeriesProperties: {} }] }] });
    const point = (step: number) => ({ step, value: step, timestampMillis: 1n });
    const ascending = await serve({ [SEARCH]: oneRun, [ATTRIBUTES]: attributes, '/api/leaderboard/v1/proto/attributes/series/float': model('ProtoFloatSeriesValuesResponseDTO', { series: [{ requestId: '0', series: { values: [point(1), point(2)] } }] }) });
    try {
      const [run] = await listed(ascending.source);
      await expect(collectPoints(ascending.source.readMetric(run!, 'm'))).rejects.toThrow(/series m of run r1: the server gave step 2 after step 1/);
    } finally {
      await ascending.close();
    }
    const other = await serve({ [SEARCH]: oneRun, [ATTRIBUTES]: attributes, '/api/leaderboard/v1/proto/attributes/series': model('ProtoSeriesValuesResponseDTO', { series: [{ requestId: '7', series: { case: 'seriesValues', value: { values: [] } } }] }) });
    try {
      const [run] = await listed(other.source);
      await expect(collectPoints(other.source.readSeries(run!, { key: 'notes', type: 'string' }))).rejects.toThrow(/series other than the one asked for \(notes\)/);
    } finally {
      await other.close();
    }
  });
});

async function collectPoints<P>(pages: AsyncIterable<P[]>): Promise<P[]> {
  const out: P[] = [];
  for await (const page of pages) out.push(...page);
  return out;
}

describe('neptune-scale:// (Neptune 3.x query API) as a source', () => {
  let server: NeptuneServer;
  let written: Written;

  const openSource = (options: ScaleReadOptions = {}, env: NodeJS.ProcessEnv = server.scaleEnv()) => {
    const api = new NeptuneScaleApi({ token: env.NEPTUNE_API_TOKEN!, origin: 'NEPTUNE_API_TOKEN', side: 'source' });
    return new NeptuneScaleSource(new ScaleQuery(api, 'ws/srv', { side: 'source' }), options);
  };
  async function runsOf(source: NeptuneScaleSource, filter?: string): Promise<Run[]> {
    const runs: Run[] = [];
    for await (const e of source.listExperiments()) for await (const r of source.listRuns(e.id, { includeDeleted: true, ...(filter ? { filter } : {}) })) runs.push(r);
    return runs;
  }
  const metric = async (source: NeptuneScaleSource, run: Run, key: string) => {
    const out: Point[] = [];
    for await (const page of source.readMetric(run, key)) for (const p of page) out.push({ step: p.step, value: p.value, timestamp: p.timestamp! });
    return out;
  };
  const series = async (source: NeptuneScaleSource, run: Run, key: string, type: 'string' | 'histogram' | 'file') => {
    const out: TypedPoint[] = [];
    for await (const page of source.readSeries(run, { key, type })) out.push(...page);
    return out;
  };

  beforeAll(async () => {
    // two points a page of string, histogram and file series (the server's choice, which the client follows by searchAfter)
    server = await startNeptuneServer({ workspaces: ['ws'], queryPageSize: 2 });
    written = await writeWithNeptuneScale(server, 'full', 'ws/srv');
    expect(written.errors).toEqual([]);
  }, 240_000);
  afterAll(() => server?.close());

  it('reads what neptune-scale logged, value by value', async () => {
    const source = openSource();
    try {
      const experiments = [];
      for await (const e of source.listExperiments()) experiments.push(e.name);
      expect(experiments).toEqual([written.parent.experiment]);
      const runs = await runsOf(source);
      expect(runs.map((r) => r.id)).toEqual([written.parent.id, written.child.id]);
      const [parent, child] = runs as [Run, Run];
      const p = written.parent;
      expect(parent.name).toBe(p.id);
      expect(parent.startTime).toBe(p.creationTime);
      expect(parent.tags).toEqual(Object.fromEntries(p.tags.map((t) => [t, ''])));
      expect(parent.group).toBe(p.groupTags.join(','));
      expect(parent.status).toBe('FINISHED');
      // configs with the types the client gave them
      const config = new Map(parent.config!.map((c) => [c.path.join('/'), c.value]));
      for (const [path, v] of Object.entries(p.configs)) {
        const type = typeof v === 'boolean' ? 'bool' : typeof v === 'string' ? 'string' : Array.isArray(v) ? 'stringSet' : path === 'parameters/started' ? 'datetime' : Number.isInteger(v) ? 'int' : 'float';
        expect(config.get(path), path).toEqual({ type, value: v });
      }
      expect(config.get('sys/custom_run_id')).toEqual({ type: 'string', value: p.id });
      expect(config.get('sys/name')).toEqual({ type: 'string', value: p.experiment });
      // the series, listed with their types, point by point
      expect(parent.series.map((s) => [s.key, s.type]).sort()).toEqual([['dist/weights', 'histogram'], ['samples/text', 'file'], ['train/loss', 'float'], ['train/notes', 'string']]);
      expect(await metric(source, parent, 'train/loss')).toEqual(p.loss);
      expect((await series(source, parent, 'train/notes', 'string')).map((x) => ({ step: x.step, value: x.value, timestamp: x.timestamp }))).toEqual(p.notes);
      const histograms = await series(source, parent, 'dist/weights', 'histogram');
      expect(histograms.map((x) => ({ step: x.step, ...(x.value as Histogram) }))).toEqual(p.histograms.map((h) => ({ step: h.step, edges: h.edges, kind: 'counts', values: h.counts })));
      // the file series: its files keep the client's paths (without the run's own first component), with their bytes
      const samples = await series(source, parent, 'samples/text', 'file');
      expect(samples.map((x) => x.step)).toEqual(p.samples.map((s) => s.step));
      for (const [i, x] of samples.entries()) {
        const file = x.value as SeriesFile;
        expect(file.path).toMatch(/^samples_text-[0-9a-f]{16}\/\d{12}_\d{6}\/[\w-]+\.txt$/);
        expect(file, file.path).toMatchObject({ size: p.samples[i]!.size, mimeType: p.samples[i]!.mimeType });
        expect(await text(await source.readSeriesFile(parent, file.path))).toBe(p.samples[i]!.text);
      }
      // the file attribute is an artifact at its path
      const artifacts = [];
      for await (const a of source.listArtifacts(parent)) artifacts.push(a);
      expect(artifacts).toEqual([{ path: 'files/readme', size: Buffer.byteLength(p.readme) }]);
      expect(await text(await source.readArtifact(parent, 'files/readme'))).toBe(p.readme);

      // the fork: its own points only (its parent and step: below)
      const c = written.child;
      expect(await metric(source, child, 'train/loss')).toEqual(c.loss);
      expect(source.runUrl('exp-srv', p.id)).toBe(`${server.url}/ws/srv/-/run/?customId=${p.id}`);
      expect(source.warnings).toEqual([]);
      expect(server.unhandled).toEqual([]);
    } finally {
      await source.close();
    }
  });

  it("records a fork's parent and fork step, as Neptune gives them (sys/forking/parent, sys/forking/step)", async () => {
    const source = openSource();
    try {
      const child = (await runsOf(source)).find((r) => r.id === written.child.id)!;
      expect(child.fork).toEqual({ runId: written.child.forkParent, step: written.child.forkStep });
    } finally {
      await source.close();
    }
  });

  it('pages series longer than a page, asking again for the pages it does not keep', async () => {
    const source = openSource({ floatPage: 7, heldBytes: 1000 });
    try {
      const [parent] = await runsOf(source);
      const before = server.calls.get('floatSeries') ?? 0;
      expect(await metric(source, parent!, 'train/loss')).toEqual(written.parent.loss);
      // 41 points: pages of 7, 7, 7, 7, 7, 6 down; only the lowest (6 points) fits in the 1,000 bytes kept (about 100 a point), the 5 above are asked for again
      expect((server.calls.get('floatSeries') ?? 0) - before).toBe(6 + 5);
    } finally {
      await source.close();
    }
  });

  it('reads a long series in pages of 10,000, oldest first, asking again for what it does not keep', async () => {
    // 25,000 points with fractional steps, ingested as neptune-scale sends them (a snapshot a step)
    server.store.addProject('ws', 'long', 'LONG');
    server.scale.ingest({ project: 'ws/long', runId: 'long-run', create: { runId: 'long-run', experimentId: 'long', family: 'long-run', creationTime: timestampOf(1772366400000) }, snapshots: [] });
    const points = Array.from({ length: 25_000 }, (_, i) => ({ step: i / 4, value: Math.sin(i), timestamp: 1772366400000 + i }));
    server.scale.ingest({ project: 'ws/long', runId: 'long-run', snapshots: points.map((p) => ({ step: stepOf(p.step), timestamp: timestampOf(p.timestamp), assign: {}, modifySets: {}, append: { 'train/long': { value: { case: 'float64', value: p.value } } } })) });
    expect(server.scale.refusals()).toEqual([]);
    for (const [heldBytes, calls] of [[undefined, 3], [1_000_000, 3 + 2]] as const) {
      const api = new NeptuneScaleApi({ token: server.token, origin: 'NEPTUNE_API_TOKEN', side: 'source' });
      const source = new NeptuneScaleSource(new ScaleQuery(api, 'ws/long', { side: 'source' }), heldBytes ? { heldBytes } : {});
      try {
        const [run] = await runsOf(source);
        const before = server.calls.get('floatSeries') ?? 0;
        const pages: number[] = [];
        const read: Point[] = [];
        for await (const page of source.readMetric(run!, 'train/long')) {
          pages.push(page.length);
          for (const p of page) read.push({ step: p.step, value: p.value, timestamp: p.timestamp! });
        }
        expect(read).toEqual(points);
        expect(pages).toEqual([5_000, 10_000, 10_000]);
        // 10,000 points weigh about 1 MB: with that kept, the two pages above the lowest are asked for again
        expect((server.calls.get('floatSeries') ?? 0) - before, `heldBytes ${heldBytes}`).toBe(calls);
      } finally {
        await source.close();
      }
    }
  });

  it('pages the other series by their searchAfter tokens, asking again for the pages it does not keep', async () => {
    const source = openSource({ heldBytes: 150 });
    try {
      const [parent] = await runsOf(source);
      const before = server.calls.get('series') ?? 0;
      expect((await series(source, parent!, 'train/notes', 'string')).map((x) => ({ step: x.step, value: x.value, timestamp: x.timestamp }))).toEqual(written.parent.notes);
      // 3 points: pages of 2 and 1 down; only the lowest fits in 150 bytes, the page above is asked for again
      expect((server.calls.get('series') ?? 0) - before).toBe(2 + 1);
    } finally {
      await source.close();
    }
  });

  it('passes --filter through as NQL', async () => {
    const source = openSource();
    try {
      expect((await runsOf(source, '`sys/custom_run_id`:string = "srv-child"')).map((r) => r.id)).toEqual([written.child.id]);
      expect((await runsOf(source, '`sys/tags`:stringSet CONTAINS "baseline" AND `parameters/lr`:float > "0.0001"')).map((r) => r.id)).toEqual([written.parent.id]);
    } finally {
      await source.close();
    }
  });

  it('rides out rate limits and server errors on every query call', async () => {
    const operations = ['searchEntries', 'queryAttributes', 'floatSeries', 'series', 'signedUrl', 'storageGet'];
    const before = new Map(operations.map((o) => [o, server.calls.get(o) ?? 0]));
    for (const operation of operations) {
      server.failNext(operation, { status: 429, retryAfter: 0 });
      server.failNext(operation, { status: 503 });
    }
    const source = openSource();
    try {
      const [parent] = await runsOf(source);
      expect(await metric(source, parent!, 'train/loss')).toEqual(written.parent.loss);
      expect((await series(source, parent!, 'train/notes', 'string')).map((x) => x.value)).toEqual(written.parent.notes.map((n) => n.value));
      expect(await text(await source.readArtifact(parent!, 'files/readme'))).toBe(written.parent.readme);
      // each call was answered 429, then 503, then taken (the notes come in two pages)
      for (const operation of operations) expect((server.calls.get(operation) ?? 0) - before.get(operation)!, operation).toBe(operation === 'series' ? 4 : 3);
    } finally {
      await source.close();
    }
  });

  it('lists from the command line, and copies into a bundle and an MLflow file store that verify finds equal', async () => {
    const env = server.scaleEnv();
    const listed = await cli(['ls', 'neptune-scale://ws/srv', '--runs'], env);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(written.parent.id);
    expect(listed.stdout).toContain(written.child.id);
    const bundle = join(temp(), 'bundle');
    const copied = await cli(['export', 'neptune-scale://ws/srv', bundle, '--state-dir', temp()], env);
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    const verified = await cli(['verify', 'neptune-scale://ws/srv', bundle], env);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    // and into an MLflow file store, which keeps in the .trackshift/ encoding what it cannot hold (typed config, string series, histograms, fractional steps)
    const mlruns = join(temp(), 'mlruns');
    const intoMlruns = await cli(['copy', 'neptune-scale://ws/srv', `mlruns:${mlruns}`, '--state-dir', temp()], env);
    expect(intoMlruns.code, intoMlruns.stdout + intoMlruns.stderr).toBe(0);
    const verifiedMlruns = await cli(['verify', 'neptune-scale://ws/srv', mlruns], env);
    expect(verifiedMlruns.code, verifiedMlruns.stdout + verifiedMlruns.stderr).toBe(0);
    expect(verifiedMlruns.stdout).toContain('EQUAL: no differences');
    for (const out of [listed, copied, verified, intoMlruns, verifiedMlruns]) expect(out.stdout + out.stderr).not.toContain(server.token);
    const missing = await cli(['ls', 'neptune-scale://ws/nothing'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('has no project ws/nothing');
  }, 180_000);

  it('reads back what trackshift wrote: the rich memory runs → neptune-scale:// → verify equal, and on into a bundle, verify equal', async () => {
    richStore(memoryStore('scale-read-rich'));
    const env = server.scaleEnv();
    const common = { source: 'memory:scale-read-rich', destination: 'neptune-scale://ws/rich', selection: emptySelection(), workers: 2, artifactWorkers: 2, env };
    const report = await runJob({ ...common, command: 'copy', dryRun: false, stateDir: temp() });
    expect(report.failed).toEqual([]);
    expectEqual(await runVerify({ ...common, maxDifferences: 50 }));
    const bundle = join(temp(), 'bundle');
    const onward = { source: 'neptune-scale://ws/rich', destination: `bundle:${bundle}`, selection: emptySelection(), workers: 2, artifactWorkers: 2, env };
    const exported = await runJob({ ...onward, command: 'export', dryRun: false, stateDir: temp() });
    expect(exported.failed).toEqual([]);
    expectEqual(await runVerify({ ...onward, maxDifferences: 50 }));
  }, 240_000);
});
