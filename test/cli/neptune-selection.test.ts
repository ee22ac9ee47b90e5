/**
 * `ls` and the selection flags on Neptune sources, through the built command line: one `.neptune`
 * folder written by both real clients in offline mode (Neptune 2.x operation logs and neptune-scale
 * databases) and a neptune-exporter export (written in its schema with pyarrow: the exporter needs a
 * live server). Each `copy` into a bundle takes exactly the runs its flags select, told by the
 * source run id every copied run carries; a selection that matches nothing says so, and `--filter`,
 * which Neptune's files have no search for, is refused with what to use instead.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPython, runTool } from '../harness/mlflow-server.js';
import { cli } from './run-cli.js';

interface RunListing {
  id: string;
  name?: string;
  status: string;
  startTime?: string;
  tags: Record<string, string>;
}
interface Listing {
  source: string;
  experiments: Array<{ id: string; name: string; runs: number; deletedRuns: number; runList: RunListing[] }>;
}

let tmp: string;
let project: string;
let exports: string;
/** before the clients wrote their runs: the runs logged "now" start after it */
let written: string;
const env = () => ({ XDG_STATE_HOME: join(tmp, 'state') });

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune-selection-'));
  project = join(tmp, 'project');
  exports = join(tmp, 'exports');
  const logs = join(project, '.neptune');
  written = new Date(Date.now() - 1000).toISOString();
  await Promise.all([
    runTool('neptune2', 'python', ['test/fixtures/neptune2_offline_run.py', join(tmp, 'work'), join(tmp, 'logged2.json')], { NEPTUNE_MODE: 'offline', NEPTUNE_DATA_DIRECTORY: logs }),
    runTool('neptune3', 'python', ['test/fixtures/neptune3_offline.py', logs, '50']).then(() =>
      runTool('neptune3', 'python', ['test/fixtures/neptune3_tagged_run.py', logs, 'tagged-run', 'exp-tagged', '2025-06-01T00:00:00+00:00', 'team=vision', 'baseline']),
    ),
    runPython('test/fixtures/neptune_export.py', [exports]),
  ]);
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function listing(location: string): Promise<Listing> {
  const ls = await cli(['ls', location, '--runs', '--json'], env());
  expect(ls.code, ls.stderr).toBe(0);
  return JSON.parse(ls.stdout) as Listing;
}

const runsOf = (l: Listing) => Object.fromEntries(l.experiments.map((e) => [e.name, e.runList.map((r) => r.name).sort()]));

/** The 2.x client names its offline runs by a random id: found by name. */
async function idOf(name: string): Promise<string> {
  const run = (await listing(project)).experiments.flatMap((e) => e.runList).find((r) => r.name === name);
  if (!run) throw new Error(`no run named ${name}`);
  return run.id;
}

let bundles = 0;
/** Copies `location` into a new bundle with `flags`; the source ids of the runs copied, sorted. */
async function selected(location: string, ...flags: string[]): Promise<{ ids: string[]; output: string }> {
  const bundle = join(tmp, `bundle-${++bundles}`);
  const copy = await cli(['copy', location, `bundle:${bundle}`, ...flags], env());
  const output = copy.stdout + copy.stderr;
  expect(copy.code, output).toBe(0);
  const copied = await listing(bundle);
  const ids = copied.experiments.flatMap((e) => e.runList.map((r) => r.tags['trackshift.source.id']!)).sort();
  return { ids, output };
}

describe('ls on Neptune sources', () => {
  it('lists a .neptune folder of both clients: experiments, runs with names, ids, start times and tags', async () => {
    const listed = await listing(project);
    expect(runsOf(listed)).toEqual({
      neptune: ['rich run', 'small run'], // the 2.x offline runs record no project
      'exp-scale': ['child-run', 'parent-run'],
      'exp-tagged': ['tagged-run'],
    });
    expect(listed.experiments.map((e) => [e.name, e.runs, e.deletedRuns])).toEqual(expect.arrayContaining([['neptune', 2, 0], ['exp-scale', 2, 0], ['exp-tagged', 1, 0]]));
    const runs = new Map(listed.experiments.flatMap((e) => e.runList).map((r) => [r.name, r]));
    expect(runs.get('rich run')!.tags).toEqual({ alpha: '', delta: '', gamma: '' });
    expect(runs.get('rich run')!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(runs.get('parent-run')).toMatchObject({ id: 'parent-run', startTime: '2026-03-01T12:00:00.000Z', tags: { baseline: '', scale: '' } });
    expect(runs.get('tagged-run')).toMatchObject({ startTime: '2025-06-01T00:00:00.000Z', tags: { 'team=vision': '', baseline: '' } });

    const text = await cli(['ls', project, '--runs'], env());
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/\(neptune\d\+neptune\d\)/);
    expect(text.stdout).toMatch(/exp-scale\n(    run .*\n){2}/);
    expect(text.stdout).toContain(`    run ${runs.get('rich run')!.id}  rich run  FINISHED`);
    expect(text.stdout).toContain('tagged-run  FINISHED  started 2025-06-01T00:00:00.000Z  tags: baseline, team=vision\n');
  });

  it('lists a neptune-exporter export: projects and experiments, runs with their names and ids', async () => {
    const listed = await listing(exports);
    expect(runsOf(listed)).toEqual({ 'exp-a': ['fork-run', 'parent-run'], 'ws/legacy-proj': ['baseline', 'second'] });
    const legacy = listed.experiments.find((e) => e.name === 'ws/legacy-proj')!;
    expect(legacy.runList.map((r) => [r.id, r.name, r.tags]).sort()).toEqual([
      ['LEG-1', 'baseline', { a: '', b: '' }],
      ['LEG-2', 'second', {}],
    ]);
  });
});

describe('selection flags on a .neptune folder of both clients', () => {
  it('--run-id takes runs of either kind, by the id ls shows', async () => {
    const rich = await idOf('rich run');
    expect((await selected(project, '--run-id', 'parent-run')).ids).toEqual(['parent-run']);
    expect((await selected(project, '--run-id', rich)).ids).toEqual([rich]);
    expect((await selected(project, '--run-id', `${rich},tagged-run`)).ids).toEqual([rich, 'tagged-run'].sort());
    const missing = await cli(['copy', project, `bundle:${join(tmp, 'missing')}`, '--run-id', 'no-such-run'], env());
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('run not found');
    expect(missing.stderr).toContain('no-such-run');
  });

  it('--experiment takes a 3.x experiment or the 2.x project', async () => {
    expect((await selected(project, '--experiment', 'exp-scale')).ids).toEqual(['child-run', 'parent-run']);
    expect((await selected(project, '--experiment', 'neptune')).ids).toEqual([await idOf('rich run'), await idOf('small run')].sort());
  });

  it('--start-after takes the runs created at or after that time', async () => {
    // the 2.x runs and the fork were created now; parent-run on 2026-03-01, tagged-run on 2025-06-01
    expect((await selected(project, '--start-after', written)).ids).toEqual([await idOf('rich run'), await idOf('small run'), 'child-run'].sort());
    expect((await selected(project, '--start-after', '2026-01-01')).ids).toContain('parent-run');
    expect((await selected(project, '--start-after', '2026-01-01')).ids).not.toContain('tagged-run');
  });

  it('--tag KEY takes runs holding that label; KEY=VALUE a label written so; several: all of them', async () => {
    expect((await selected(project, '--tag', 'alpha')).ids).toEqual([await idOf('rich run')]);
    expect((await selected(project, '--tag', 'baseline')).ids).toEqual(['parent-run', 'tagged-run']);
    expect((await selected(project, '--tag', 'baseline', '--tag', 'scale')).ids).toEqual(['parent-run']);
    expect((await selected(project, '--tag', 'team=vision')).ids).toEqual(['tagged-run']);
    expect((await selected(project, '--tag', 'team=vision', '--experiment', 'exp-scale')).ids).toEqual([]);
  });

  it('says so when the selection matches nothing, and copies nothing', async () => {
    for (const flags of [['--tag', 'no-such-tag'], ['--tag', 'alpha', '--tag', 'baseline'], ['--start-after', '2100-01-01']]) {
      const { ids, output } = await selected(project, ...flags);
      expect(ids).toEqual([]);
      expect(output).toContain('the selection matches no run and no model version: nothing to copy');
    }
  });

  it('refuses --filter, which Neptune files have no search for, saying what to use instead', async () => {
    const filtered = await cli(['copy', project, `bundle:${join(tmp, 'filtered')}`, '--filter', 'metrics.acc > 0.9'], env());
    expect(filtered.code).not.toBe(0);
    expect(filtered.stderr).toMatch(/--filter is not supported by neptune\d\+neptune\d sources/);
    expect(filtered.stderr).toContain('select with --experiment, --run-id, --tag, --status, --start-after and --start-before');
  });
});

describe('selection flags on a neptune-exporter export', () => {
  it('--run-id, --experiment, --tag and --start-after each take exactly their runs', async () => {
    expect((await selected(exports, '--run-id', 'LEG-1')).ids).toEqual(['LEG-1']);
    expect((await selected(exports, '--experiment', 'exp-a')).ids).toEqual(['fork-run', 'parent-run']);
    expect((await selected(exports, '--experiment', 'ws/legacy-proj')).ids).toEqual(['LEG-1', 'LEG-2']);
    expect((await selected(exports, '--tag', 'a')).ids).toEqual(['LEG-1']);
    expect((await selected(exports, '--tag', 't1')).ids).toEqual(['fork-run', 'parent-run']);
    // parent-run and LEG-1 at 22:13:20.000, LEG-2 at .010, fork-run at .100
    expect((await selected(exports, '--start-after', '2023-11-14T22:13:20.005Z')).ids).toEqual(['LEG-2', 'fork-run']);
    const filtered = await cli(['copy', exports, `bundle:${join(tmp, 'filtered-export')}`, '--filter', 'x'], env());
    expect(filtered.code).not.toBe(0);
    expect(filtered.stderr).toContain('--filter is not supported by neptune-export sources');
  });
});
