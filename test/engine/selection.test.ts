/**
 * `--tag KEY[=VALUE]`: only runs holding every given tag (with that value, when one is given).
 * Trackers whose tags are labels (Neptune) hold them as keys with an empty value: `--tag best`.
 * `--run-name NAME`: only runs of that name, `*` matching any characters. `verify` with either
 * compares the runs selected and does not count the destination's other runs as extra.
 */
import { describe, expect, it } from 'vitest';
import { selectionFrom } from '../../src/cli/options.js';
import { memoryRun } from '../../src/connectors/memory/index.js';
import { planTransfer } from '../../src/engine/plan.js';
import { verifySources } from '../../src/verify/compare.js';
import type { Run } from '../../src/model/index.js';
import { UsageError } from '../../src/util/errors.js';
import { newStore } from './fixture.js';

const run = (id: string, tags: Record<string, string>): Run => ({ id, experimentId: '1', name: id, status: 'FINISHED', startTime: 1, lifecycle: 'active', params: {}, tags, inputs: [], series: [] });

describe('selection by tags', () => {
  const source = newStore();
  source.data.experiments.set('1', { id: '1', name: 'e', tags: {}, lifecycle: 'active' });
  source.data.runs.set('a', memoryRun({ run: run('a', { best: '', team: 'vision' }) }));
  source.data.runs.set('b', memoryRun({ run: run('b', { team: 'vision' }) }));
  source.data.runs.set('c', memoryRun({ run: run('c', { best: '', team: 'nlp' }) }));
  const chosen = async (...tags: string[]) => (await planTransfer(source, selectionFrom({ tag: tags }))).experiments.flatMap((e) => e.runs.map((r) => r.id)).sort();

  it('takes runs holding a tag, one with a value, or all of several', async () => {
    expect(await chosen()).toEqual(['a', 'b', 'c']);
    expect(await chosen('best')).toEqual(['a', 'c']);
    expect(await chosen('team=vision')).toEqual(['a', 'b']);
    expect(await chosen('best', 'team=vision')).toEqual(['a']);
    expect(await chosen('team=')).toEqual([]);
    expect(await chosen('a=b=c')).toEqual([]);
  });

  it('takes a label written KEY=VALUE (a Neptune tag) for --tag KEY=VALUE', async () => {
    const labels = newStore();
    labels.data.experiments.set('1', { id: '1', name: 'e', tags: {}, lifecycle: 'active' });
    labels.data.runs.set('n', memoryRun({ run: run('n', { 'team=nlp': '' }) }));
    labels.data.runs.set('m', memoryRun({ run: run('m', { team: 'nlp' }) }));
    const ids = async (tag: string) => (await planTransfer(labels, selectionFrom({ tag: [tag] }))).experiments.flatMap((e) => e.runs.map((r) => r.id)).sort();
    expect(await ids('team=nlp')).toEqual(['m', 'n']);
    expect(await ids('team')).toEqual(['m']);
    expect(await ids('team=vision')).toEqual([]);
  });

  it('refuses a tag without a key', () => {
    expect(() => selectionFrom({ tag: ['=x'] })).toThrow(UsageError);
  });
});

describe('selection by run name', () => {
  const source = newStore();
  source.data.experiments.set('1', { id: '1', name: 'e', tags: {}, lifecycle: 'active' });
  for (const name of ['lr=0.1', 'lr=0.01', 'sweep', 'a.b', 'a+b']) source.data.runs.set(name, memoryRun({ run: { ...run(name, {}), name } }));
  const chosen = async (...names: string[]) => (await planTransfer(source, selectionFrom({ runName: names }))).experiments.flatMap((e) => e.runs.map((r) => r.id)).sort();

  it('takes runs of a name, of a pattern with *, or of any of several', async () => {
    expect(await chosen()).toHaveLength(5);
    expect(await chosen('sweep')).toEqual(['sweep']);
    expect(await chosen('lr=*')).toEqual(['lr=0.01', 'lr=0.1']);
    expect(await chosen('*0.1')).toEqual(['lr=0.1']);
    expect(await chosen('sweep', 'a.b')).toEqual(['a.b', 'sweep']);
    // other characters stand for themselves
    expect(await chosen('a?b')).toEqual([]);
    expect(await chosen('a+b')).toEqual(['a+b']);
    expect(await chosen('swee')).toEqual([]);
  });

  it('refuses an empty name', () => {
    expect(() => selectionFrom({ runName: [''] })).toThrow(UsageError);
  });

  it('verify compares the runs selected by name or tag, and the destination\'s others are not extra', async () => {
    const destination = newStore();
    destination.data.experiments.set('1', { id: '1', name: 'e', tags: {}, lifecycle: 'active' });
    for (const [id, data] of source.data.runs) destination.data.runs.set(id, data);
    destination.data.runs.set('only-there', memoryRun({ run: run('only-there', { best: '' }) }));
    for (const selection of [selectionFrom({ runName: ['lr=*'] }), selectionFrom({ tag: ['missing-everywhere'] })]) {
      const report = await verifySources(source, destination, { selection, workers: 1, artifactWorkers: 1, maxDifferences: 20 });
      expect(report.objects).toEqual([]);
      expect(report.equal).toBe(true);
    }
  });
});
