/**
 * Faults survived in one run: copy, export, import and verify through a fault-injecting proxy
 * (test/harness/fault-proxy.ts) in front of real MLflow servers, for each fault kind (503, 429
 * with Retry-After, connection resets, answers lost after the server acted) and for a mix;
 * a destination down for 15 s mid-copy; and verify through faults beyond the retry budget,
 * which is incomplete (exit 3), not different (1). Each ends with `verify` equal, no
 * duplicate, and the retries counted in the summary and the report.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryStore, memoryRun } from '../../src/connectors/memory/index.js';
import { openDestination, openSource } from '../../src/connectors/resolve.js';
import { Journal } from '../../src/engine/journal.js';
import type { Report } from '../../src/engine/job.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { MetricPoint, ModelVersion, Run } from '../../src/model/index.js';
import type { RetrySummary } from '../../src/util/retry.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { startFaultProxy, type FaultProxy, type FaultProxyOptions } from '../harness/fault-proxy.js';
import { startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { cli, startCli } from '../cli/run-cli.js';

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-faults-'));
/** a shorter window than the default: enough for these faults, and a failing test fails sooner */
const RETRY = ['--retry-window', '60'];
const RUNS = 6;

/** A small source with what a copy must carry: nesting, metric histories, artifacts, a registered model. */
function fixtureStore() {
  const store = memoryStore(`faults-${Date.now()}`);
  store.data.experiments.set('1', { id: '1', name: 'faults-a', tags: { team: 'x' }, lifecycle: 'active' });
  store.data.experiments.set('2', { id: '2', name: 'faults-b', tags: {}, lifecycle: 'active' });
  const add = (id: string, experimentId: string, extra: Partial<Run> = {}) => {
    const metrics = new Map<string, MetricPoint[]>();
    for (const key of ['loss', 'acc']) metrics.set(key, Array.from({ length: 150 }, (_, i) => ({ key, value: 1 / (i + 1), timestamp: 1_700_000_000_000 + i, step: i })));
    const artifacts = new Map<string, Buffer>([
      ['notes.txt', Buffer.from(`run ${id}`)],
      ['data/blob.bin', Buffer.alloc(40_000, id.charCodeAt(0))],
      ['model/MLmodel', Buffer.from(`artifact_path: model\nrun_id: ${id}\nflavors:\n  python_function: {}\n`)],
    ]);
    const run: Run = {
      id,
      experimentId,
      name: `run-${id}`,
      status: 'FINISHED',
      lifecycle: 'active',
      startTime: 1_700_000_000_000,
      endTime: 1_700_000_100_000,
      params: { lr: '0.1', id },
      tags: { owner: 'faults' },
      inputs: [],
      series: [...metrics.keys()].map((key) => ({ key, type: 'float' as const })),
      ...extra,
    };
    store.data.runs.set(id, memoryRun({ run, metrics, artifacts }));
  };
  add('r1', '1');
  add('r2', '1', { parentId: 'r1', tags: { owner: 'faults', 'mlflow.parentRunId': 'r1' } });
  add('r3', '1');
  add('r4', '2');
  add('r5', '2');
  add('r6', '2');
  const version = (v: string, runId: string, stage: ModelVersion['stage']): ModelVersion => ({
    modelName: 'faulty',
    version: v,
    source: `runs:/${runId}/model`,
    location: { type: 'run', runId, path: 'model' },
    runId,
    status: 'READY',
    stage,
    tags: { v },
    creationTime: 1_700_000_000_000 + Number(v),
  });
  store.registry.add({ name: 'faulty', tags: { team: 'x' }, aliases: { champion: '2' } }, [version('1', 'r1', 'Archived'), version('2', 'r4', 'Production')]);
  return store;
}

const totalRetries = (summary: RetrySummary, side: 'source' | 'destination') => summary.retries.filter((r) => r.side === side).reduce((n, r) => n + r.count, 0);

/** Every copy of a source run in `uri`, by source id: each must be there once, complete. */
async function copiesBySource(uri: string): Promise<Map<string, number>> {
  const source = await openSource(uri);
  const counts = new Map<string, number>();
  try {
    for await (const experiment of source.listExperiments()) {
      for await (const run of source.listRuns(experiment.id, { includeDeleted: false })) {
        const origin = run.tags['trackshift.source.id'];
        if (!origin) continue;
        expect(run.tags['trackshift.complete'], `run ${run.id} (copy of ${origin}) is complete`).toBe('true');
        counts.set(origin, (counts.get(origin) ?? 0) + 1);
      }
    }
    const versions = [];
    for await (const v of source.registry!.listVersions('faulty')) versions.push(v.version);
    expect(versions, 'no model version made twice').toEqual(['1', '2']);
  } finally {
    await source.close?.();
  }
  return counts;
}

describe('faults survived in one run, through a fault-injecting proxy in front of real MLflow servers', () => {
  let src: MlflowServer;
  const servers: MlflowServer[] = [];
  const proxies: FaultProxy[] = [];
  const proxy = async (target: MlflowServer, rates: FaultProxyOptions['rates'], seed: number, only?: RegExp) => {
    const started = await startFaultProxy({ target: target.url, rates, seed, only, retryAfterSeconds: 1 });
    proxies.push(started);
    return started;
  };
  let destinations: MlflowServer[];
  /** the source server's runs, as `experiment/run id` */
  const sourceRuns: string[] = [];
  /** each source run copied exactly once */
  const once = () => new Map(sourceRuns.map((path) => [path.split('/')[1]!, 1]));

  beforeAll(async () => {
    const started = await Promise.all(Array.from({ length: 7 }, () => startMlflowServer()));
    servers.push(...started);
    [src, ...destinations] = started as [MlflowServer, ...MlflowServer[]];
    // the source: written by trackshift's engine from memory (fast), read back as any MLflow data
    const store = fixtureStore();
    const destination = await openDestination(src.url);
    try {
      const plan = await planTransfer(store, emptySelection());
      const result = await transfer(store, destination, plan, { workers: 4, artifactWorkers: 4, dryRun: false, journal: new Journal(temp()) });
      expect(result.failed).toEqual([]);
    } finally {
      await destination.close?.();
    }
    const written = await openSource(src.url);
    for await (const experiment of written.listExperiments()) {
      for await (const run of written.listRuns(experiment.id, { includeDeleted: false })) sourceRuns.push(`${experiment.name}/${run.id}`);
    }
    await written.close?.();
    expect(sourceRuns).toHaveLength(RUNS);
  }, 600_000);
  afterAll(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('copy through a mix (20% 503, 5% 429, 5% resets, 3% answers lost) completes in one run, counted; verify through it finds it equal', async () => {
    const dst = destinations[0]!;
    const faulty = await proxy(dst, { '503': 0.2, '429': 0.05, reset: 0.05, lost: 0.03 }, 1);
    const report = join(temp(), 'report.json');
    const copied = await cli(['copy', src.url, faulty.url, ...RETRY, '--state-dir', temp(), '--report', report]);
    expect(copied.stderr).not.toMatch(/FAILED|shallow/);
    expect(copied.code, copied.stdout + copied.stderr).toBe(0);
    const json = JSON.parse(readFileSync(report, 'utf8')) as Report;
    expect(json.failed).toEqual([]);
    expect(json.copied.runs).toBe(RUNS);
    const injected = faulty.injected;
    expect(injected['503'] + injected['429'] + injected.reset + injected.lost).toBeGreaterThan(10);
    // every fault injected was retried, and counted on the destination's side by kind
    const kinds = new Map(json.retries.retries.filter((r) => r.side === 'destination').map((r) => [r.kind, r]));
    expect(kinds.get('HTTP 503')!.count).toBeGreaterThanOrEqual(injected['503']);
    expect(kinds.get('HTTP 429')!.count).toBe(injected['429']);
    expect(kinds.get('HTTP 429')!.retryAfter).toBe(injected['429']);
    expect(kinds.get('connection reset')!.count).toBeGreaterThan(0);
    expect(copied.stdout).toMatch(/destination: retried \d+× after HTTP 503, .*\d+× after HTTP 429 \(honouring Retry-After\)/);
    expect(copied.stdout).toMatch(/\d+× after connection reset/);
    // progress lines mention retries, rarely (at most one per 10 s), never one per call
    const logged = copied.stderr.match(/^retrying: destination answered /gm) ?? [];
    expect(logged.length).toBeGreaterThanOrEqual(1);
    expect(logged.length).toBeLessThanOrEqual(Math.ceil(json.durationMs / 10_000) + 1);
    expect(await copiesBySource(dst.url)).toEqual(once());

    const verified = await cli(['verify', src.url, faulty.url, ...RETRY, '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    const verification = JSON.parse(verified.stdout) as VerifyReport;
    expect(verification.equal).toBe(true);
    expect(verification.incomplete).toEqual([]);
    expect(totalRetries(verification.retries!, 'destination')).toBeGreaterThan(0);
  });

  const kinds: Array<[string, FaultProxyOptions['rates'], RegExp | undefined, string]> = [
    ['503', { '503': 0.3 }, undefined, 'HTTP 503'],
    ['429 with Retry-After: 1', { '429': 0.1 }, undefined, 'HTTP 429'],
    ['connection reset', { reset: 0.15 }, undefined, 'connection reset'],
    // every creating call's answer lost half the time, after the server made the object
    ['answer lost after the server acted', { lost: 0.5 }, /^POST \S*\/(runs\/create|experiments\/create|registered-models\/create|model-versions\/create)/, 'HTTP 503'],
  ];
  for (const [index, [name, rates, only, kind]] of kinds.entries()) {
    it(`export and import through ${name} complete in one run, with no duplicate and verify equal`, async () => {
      const dst = destinations[1 + index]!;
      const bundle = join(temp(), 'bundle');
      // export: the faults on the source (reads), except the lost answers, which only creating calls have
      const reading = await proxy(src, only ? { '503': 0.3 } : rates, 10 + index);
      const exported = await cli(['export', reading.url, bundle, ...RETRY, '--json', '--state-dir', temp()]);
      expect(exported.code, exported.stderr).toBe(0);
      const exportReport = JSON.parse(exported.stdout) as Report;
      expect(exportReport.failed).toEqual([]);
      expect(exportReport.copied.runs).toBe(RUNS);
      expect(exportReport.retries.retries.find((r) => r.side === 'source' && r.kind === (only ? 'HTTP 503' : kind))?.count).toBeGreaterThan(0);

      const writing = await proxy(dst, rates, 20 + index, only);
      const imported = await cli(['import', bundle, writing.url, ...RETRY, '--json', '--state-dir', temp()]);
      expect(imported.code, imported.stderr).toBe(0);
      const importReport = JSON.parse(imported.stdout) as Report;
      expect(importReport.failed).toEqual([]);
      expect(importReport.warnings.filter((w) => /shallow/.test(w.message))).toEqual([]);
      expect(importReport.copied.runs).toBe(RUNS);
      expect(importReport.retries.retries.find((r) => r.side === 'destination' && r.kind === kind)?.count).toBeGreaterThan(0);
      if (only) expect(writing.injected.lost).toBeGreaterThan(2);
      expect(await copiesBySource(dst.url)).toEqual(once());

      const verified = await cli(['verify', src.url, writing.url, ...RETRY]);
      expect(verified.stdout).toMatch(/EQUAL: no differences/);
      expect(verified.code, verified.stderr).toBe(0);
    });
  }

  it('survives the destination down for 15 s mid-copy, in one run', async () => {
    const dst = destinations[5]!;
    const faulty = await proxy(dst, {}, 30);
    const running = startCli(['copy', src.url, faulty.url, '--state-dir', temp(), '--json', '--workers', '2']);
    // down once the copy is under way (runs created, artifacts going)
    const deadline = Date.now() + 60_000;
    while (faulty.forwarded < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const wentDown = Date.now();
    await faulty.down(15_000);
    const done = await running.done;
    expect(done.code, done.stderr).toBe(0);
    expect(Date.now() - wentDown).toBeGreaterThanOrEqual(14_000);
    const report = JSON.parse(done.stdout) as Report;
    expect(report.failed).toEqual([]);
    expect(report.copied.runs).toBe(RUNS);
    const retried = report.retries.retries.filter((r) => r.side === 'destination');
    expect(retried.some((r) => r.kind === 'connection refused' || r.kind === 'connection reset')).toBe(true);
    expect(await copiesBySource(dst.url)).toEqual(once());
    const verified = await cli(['verify', src.url, dst.url]);
    expect(verified.stdout).toMatch(/EQUAL: no differences/);
    expect(verified.code).toBe(0);
  });

  it('verify through faults beyond the retry budget is incomplete (exit 3) and says what was not compared, never 1', async () => {
    // a destination holding the copy (made here if the first test did not run) answers every metric history read with 503
    const copied = await cli(['copy', src.url, destinations[0]!.url, '--state-dir', temp()]);
    expect(copied.code, copied.stderr).toBe(0);
    const failing = await proxy(destinations[0]!, { '503': 1 }, 40, /metrics\/get-history/);
    const verified = await cli(['verify', src.url, failing.url, '--retries', '2', '--retry-window', '2', '--json']);
    expect(verified.code, verified.stdout.slice(0, 3000) + verified.stderr).toBe(3);
    const report = JSON.parse(verified.stdout) as VerifyReport;
    expect(report.equal).toBe(false);
    expect(report.objects).toEqual([]);
    expect(report.incomplete.map((i) => i.path).sort()).toEqual([...sourceRuns].sort());
    expect(report.incomplete[0]!.reason).toMatch(/503/);
    expect(report.retries!.gaveUp.destination).toBeGreaterThan(0);

    const text = await cli(['verify', src.url, failing.url, '--retries', '1', '--retry-window', '1']);
    expect(text.code, text.stdout + text.stderr).toBe(3);
    expect(text.stdout).toMatch(/INCOMPLETE: 6 object\(s\) could not be compared/);
    expect(text.stdout).toContain(`${sourceRuns[0]}: GET`);
    expect(text.stdout).toMatch(/failed with 503/);
    expect(text.stdout).not.toMatch(/DIFFERENT/);
  });
});
