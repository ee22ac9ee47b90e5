/**
 * `--tag KEY[=VALUE]`: only runs holding every given tag (with that value, when one is given).
 * Trackers whose tags are labels (Neptune) hold them as keys with an empty value: `--tag best`.
 */
import { describe, expect, it } from 'vitest';
import { selectionFrom } from '../../src/cli/options.js';
import { memoryRun } from '../../src/connectors/memory/index.js';
import { planTransfer } from '../../src/engine/plan.js';
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
