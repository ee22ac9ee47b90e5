/**
 * verify on memory stores: a copy made by the engine compares equal; each kind of change to the
 * destination is found, named by its path, with both values; caps, sampling and matching by
 * name and start time behave as documented.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { memoryRun, type MemoryStore } from '../../src/connectors/memory/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer, type Selection } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import { verifySources, type VerifyOptions } from '../../src/verify/compare.js';
import { newStore, registrySource, sourceStore } from '../engine/fixture.js';

async function copied(selection: Partial<Selection> = {}, source: MemoryStore = sourceStore(), destination: MemoryStore = newStore({ pageSize: 1000 })) {
  const plan = await planTransfer(source, { ...emptySelection(), ...selection });
  const result = await transfer(source, destination, plan, { workers: 2, artifactWorkers: 2, dryRun: false, journal: new Journal(mkdtempSync(join(tmpdir(), 'trackshift-verify-'))) });
  expect(result.failed).toEqual([]);
  return { source, destination };
}

const verify = (source: MemoryStore, destination: MemoryStore, options: Partial<VerifyOptions> = {}, selection: Partial<Selection> = {}) =>
  verifySources(source, destination, { selection: { ...emptySelection(), ...selection }, workers: 2, artifactWorkers: 2, maxDifferences: 20, ...options });

/** the destination's copy of source run `id` */
const copyOf = (destination: MemoryStore, id: string) => [...destination.data.runs.values()].find((r) => r.run.tags['trackshift.source.id'] === id)!;

describe('verify', () => {
  it('finds a fresh copy equal, matched by provenance, every point and byte compared', async () => {
    const { source, destination } = await copied({ includeDeleted: true });
    const report = await verify(source, destination, {}, { includeDeleted: true });
    expect(report.objects).toEqual([]);
    expect(report.equal).toBe(true);
    expect(report.summary.run).toEqual({ compared: 6, equal: 6, different: 0, missingInDestination: 0, missingInSource: 0 });
    expect(report.matching).toEqual({ provenance: 6, id: 0, nameAndStartTime: 0 });
    expect(report.compared.metricPoints).toBe(2505);
    expect(report.compared.artifactBytes).toBe(70_000 + 2);
  });

  it('names each change with its path and both values', async () => {
    const { source, destination } = await copied();
    const parent = copyOf(destination, 'parent');
    parent.run.params.extra = '1';
    parent.run.tags.team = 'y';
    parent.run.endTime = 41;
    const loss = parent.metrics.get('loss')!;
    const nan = loss.findIndex((p) => Number.isNaN(p.value));
    loss[nan] = { ...loss[nan]!, value: 0 };
    loss.splice(loss.findIndex((p) => p.step === 7), 1);
    const weights = Buffer.from(parent.artifacts.get('model/weights.bin')!);
    weights[5] = 8;
    parent.artifacts.set('model/weights.bin', weights);
    copyOf(destination, 'grandchild').run.lifecycle = 'deleted';

    const report = await verify(source, destination);
    expect(report.equal).toBe(false);
    const run = report.objects.find((o) => o.sourceId === 'parent')!;
    expect(run.state).toBe('different');
    const byPath = Object.fromEntries(run.differences.map((d) => [d.path, [d.source, d.destination]]));
    expect(byPath).toEqual({
      'alpha/parent/param:extra': [undefined, '1'],
      'alpha/parent/tag:team': ['x', 'y'],
      'alpha/parent/end_time': ['40', '41'],
      'alpha/parent/metric:loss@3': ['NaN (timestamp 1)', '0 (timestamp 1)'],
      'alpha/parent/metric:loss@7': [`${1 / 8} (timestamp 1600000000007)`, undefined],
      'alpha/parent/artifact:model/weights.bin': [expect.stringMatching(/^70000 bytes, sha256 /), expect.stringMatching(/^70000 bytes, sha256 /)],
    });
    const grandchild = report.objects.find((o) => o.sourceId === 'grandchild')!;
    expect(grandchild.differences).toEqual([{ path: 'alpha/grandchild/lifecycle', source: 'active', destination: 'deleted' }]);
    expect(report.summary.run).toMatchObject({ compared: 4, equal: 2, different: 2 });
  });

  it('reports runs missing on either side, and a missing experiment', async () => {
    const { source, destination } = await copied();
    destination.data.runs.delete(copyOf(destination, 'child').run.id);
    const alpha = [...destination.data.experiments.values()].find((e) => e.name === 'alpha')!;
    destination.data.runs.set('stray', memoryRun({ run: { id: 'stray', experimentId: alpha.id, name: 'stray', status: 'FINISHED', lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [] }, metrics: new Map(), artifacts: new Map() }));
    const beta = [...destination.data.experiments.values()].find((e) => e.name === 'beta')!;
    destination.data.experiments.delete(beta.id);
    const report = await verify(source, destination);
    const states = report.objects.map((o) => [o.type, o.path, o.state]);
    expect(states).toEqual([
      ['run', 'alpha/child', 'missing-in-destination'],
      // the grandchild's parent is gone from the destination
      ['run', 'alpha/grandchild', 'different'],
      ['run', 'alpha/stray', 'missing-in-source'],
      ['experiment', 'beta', 'missing-in-destination'],
    ]);
    expect(report.summary.run).toMatchObject({ missingInDestination: 2, missingInSource: 1 });
  });

  it('caps the differences listed per run and counts the rest', async () => {
    const { source, destination } = await copied();
    for (const p of copyOf(destination, 'parent').metrics.get('loss')!) p.value += 1;
    const report = await verify(source, destination, { maxDifferences: 5 });
    const run = report.objects.find((o) => o.sourceId === 'parent')!;
    expect(run.differences).toHaveLength(5);
    // every step differs once (at step 3 only the finite point changed: NaN and ±Infinity stay)
    expect(run.omitted).toBe(2500 - 5);
  });

  it('matches by name and start time when there is no provenance, and says so', async () => {
    const { source, destination } = await copied();
    for (const { run } of destination.data.runs.values()) delete run.tags['trackshift.source.id'];
    const report = await verify(source, destination);
    expect(report.matching).toEqual({ provenance: 0, id: 0, nameAndStartTime: 4 });
    expect(report.equal).toBe(true);
  });

  it('compares histories and artifacts of a seeded sample only, saying so', async () => {
    const { source, destination } = await copied();
    for (const p of copyOf(destination, 'parent').metrics.get('loss')!) p.value += 1;
    const a = await verify(source, destination, { sample: 1, seed: 3 });
    const b = await verify(source, destination, { sample: 1, seed: 3 });
    expect(a.sample).toEqual({ runs: 1, of: 4, seed: 3 });
    expect(b.compared).toEqual(a.compared);
    // the changed history is found exactly when its run is drawn; every run's fields are compared
    const drawsParent = a.compared.metricPoints === 2504;
    expect(a.equal).toBe(!drawsParent);
    expect(a.summary.run.compared).toBe(4);
    let seed = 0;
    while ((await verify(source, destination, { sample: 1, seed })).equal && seed < 100) seed++;
    const found = await verify(source, destination, { sample: 1, seed });
    expect(found.objects.map((o) => o.path)).toEqual(['alpha/parent']);
  });

  it('keeps a thinned chart of each differing metric when asked', async () => {
    const { source, destination } = await copied();
    copyOf(destination, 'parent').metrics.get('loss')![100]!.value = 5;
    const report = await verify(source, destination, { charts: true });
    const [chart] = report.objects.find((o) => o.sourceId === 'parent')!.charts!;
    expect(chart!.key).toBe('loss');
    expect(chart!.source.length).toBeLessThanOrEqual(600);
    expect(chart!.nonFinite).toEqual({ source: 3, destination: 3 });
  });

  it('compares registered models: versions by provenance, their runs through the copies, aliases and stages', async () => {
    const { source, destination } = await copied({}, registrySource());
    const equal = await verify(source, destination);
    expect(equal.objects).toEqual([]);
    expect(equal.summary.version).toMatchObject({ compared: 4, equal: 4 });
    expect(equal.summary.model).toMatchObject({ compared: 1, equal: 1 });
    const held = destination.registry.models.get('fraud')!;
    held.model.aliases.champion = '2';
    held.versions.get('3')!.stage = 'Production';
    held.versions.get('2')!.runId = 'elsewhere';
    const report = await verify(source, destination);
    expect(report.objects.map((o) => [o.path, o.differences])).toEqual([
      ['model:fraud', [{ path: 'model:fraud/alias:champion', source: 'version 1', destination: 'version 2' }]],
      ['model:fraud/version:2', [{ path: 'model:fraud/version:2/run', source: `b1 (copied as ${copyOf(destination, 'b1').run.id})`, destination: 'elsewhere' }]],
      ['model:fraud/version:3', [{ path: 'model:fraud/version:3/stage', source: 'Archived', destination: 'Production' }]],
    ]);
  });

  it('checks stages as aliases in a registry without stages, as a copy makes them', async () => {
    const { source, destination } = await copied({}, registrySource(), newStore({ stages: false }));
    const report = await verify(source, destination);
    expect(report.objects).toEqual([]);
    expect(report.notes).toEqual([expect.stringMatching(/has no stages: stages were compared as the aliases/)]);
    delete destination.registry.models.get('fraud')!.model.aliases.production;
    const changed = await verify(source, destination);
    expect(changed.objects.flatMap((o) => o.differences)).toEqual([{ path: 'model:fraud/alias:production', source: 'version 1' }]);
  });
});
