/**
 * A crafted bundle must not make an import reach outside its destination: run ids that climb
 * (`../../victim`, `..`), absolute ids, NUL, a symbolic link out of the bundle, and a model
 * version whose path climbs. Each hostile object fails alone (exit 1); the good run beside them
 * is imported; a "victim" folder next to the destination and the destination's own experiments
 * are untouched.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleRun, bundleRunDir, json, put, tree, writeBundle } from '../helpers/craft.js';
import { cli } from '../cli/run-cli.js';
import { MlrunsSource } from '../../src/connectors/mlruns/read.js';
import { writeMlrunsExperiment, writeMlrunsRun } from '../helpers/craft.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'trackshift-paths-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('a hostile bundle imported into mlruns:DIR', () => {
  it('writes and removes nothing outside DIR, and imports the good run', async () => {
    const victim = join(tmp, 'victim');
    await put(join(victim, 'keep.txt'), 'precious');
    const outside = join(tmp, 'outside.txt');
    await writeFile(outside, 'secret outside the bundle');
    const dst = join(tmp, 'mlruns');

    // the destination already holds an experiment with a run
    const first = join(tmp, 'first-bundle');
    await writeBundle(first, [{ id: '7', name: 'existing', runs: [bundleRun('a'.repeat(32), '7')] }]);
    const seeded = await cli(['import', first, `mlruns:${dst}`]);
    expect(seeded.code).toBe(0);
    const before = { victim: await tree(victim), dst: await tree(dst) };

    const good = 'b'.repeat(32);
    const linked = 'c'.repeat(32);
    const bundle = join(tmp, 'hostile-bundle');
    await writeBundle(bundle, [
      {
        id: '1',
        name: 'hostile',
        runs: [
          bundleRun('../../victim', '1'),
          bundleRun('..', '1'),
          bundleRun('../7', '1'),
          bundleRun('/tmp/abs-run', '1'),
          bundleRun('nul\u0000id', '1'),
          bundleRun(good, '1'),
          bundleRun(linked, '1', { artifacts: { files: 1, bytes: 25 } }),
        ],
      },
    ]);
    // an artifact that is a symbolic link to a file outside the bundle
    await mkdir(join(bundleRunDir(bundle, '1', linked), 'artifacts'), { recursive: true });
    await symlink(outside, join(bundleRunDir(bundle, '1', linked), 'artifacts', 'data.txt'));
    // a model version whose files are said to be above its run's artifacts
    await put(join(bundle, 'models', 'm', 'model.json'), json({ name: 'm', tags: {}, aliases: {} }));
    await put(
      join(bundle, 'models', 'm', 'versions', '1.json'),
      json({
        modelName: 'm',
        version: '1',
        source: `runs:/${good}/../../../../victim`,
        location: { type: 'run', runId: good, path: '../../../../victim' },
        runId: good,
        status: 'READY',
        stage: 'None',
        tags: { 'trackshift.complete': 'true' },
      }),
    );

    const result = await cli(['import', bundle, `mlruns:${dst}`, '--json']);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { failed: Array<{ type: string; sourceId: string; reason: string }>; copied: { runs: number } };

    // nothing outside DIR changed, and DIR's own experiment is as it was
    expect(await tree(victim)).toEqual(before.victim);
    const after = await tree(dst);
    for (const [path, what] of Object.entries(before.dst)) if (path !== '.trash') expect(after[path], path).toBe(what);
    expect((await tree(tmp))['outside.txt']).toBeDefined();
    expect(Object.keys(after).some((p) => p.includes('abs-run') || p.includes('victim'))).toBe(false);

    // the good run is there; each hostile run and the version failed, naming why
    expect(after[`1/${good}/meta.yaml`]).toBeDefined();
    expect(Object.keys(after).some((p) => p.endsWith('data.txt'))).toBe(false);
    const failedIds = report.failed.map((f) => f.sourceId);
    for (const id of ['../../victim', '..', '../7', '/tmp/abs-run', 'nul\u0000id', linked]) expect(failedIds, id).toContain(id);
    expect(report.failed.find((f) => f.sourceId === linked)?.reason).toMatch(/symbolic link/);
    expect(report.failed.find((f) => f.sourceId === '../../victim')?.reason).toMatch(/run\.json|"\.\.\/\.\.\/victim"/);
    expect(report.failed.some((f) => f.type === 'version' || f.type === 'model')).toBe(true);
  });
});

describe('an mlruns source asked for a run id that climbs', () => {
  it('finds nothing, and reads nothing outside its experiments', async () => {
    const root = join(tmp, 'lookup', 'mlruns');
    await writeMlrunsExperiment(root, '1', 'exp');
    // a run folder outside the store, one level up from an experiment folder's sibling
    await writeMlrunsRun(join(tmp, 'lookup'), 'elsewhere', 'f'.repeat(32));
    await writeMlrunsRun(root, '1', 'a'.repeat(32));
    const source = new MlrunsSource(root);
    expect(await source.getRun(`../../elsewhere/${'f'.repeat(32)}`)).toBeUndefined();
    expect(await source.getRun('..')).toBeUndefined();
    expect((await source.getRun('a'.repeat(32)))?.id).toBe('a'.repeat(32));
  });
});
