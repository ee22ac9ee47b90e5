/**
 * verify against real MLflow servers: data written by the real client is copied server to
 * server (copy --verify finds it equal), then the destination is changed one way at a time
 * and verify must find each change, name it by its path with both values, and exit 1.
 *
 * Most changes go through the real mlflow client. MLflow's API can neither remove nor rewrite
 * a metric point, so those three changes are made in the destination server's database.
 * The HTML report of the result is opened in headless Chromium (Debian's), its DOM checked and
 * a screenshot taken (TRACKSHIFT_KEEP_SCREENSHOT=FILE keeps it).
 */
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource } from '../../src/connectors/resolve.js';
import type { VerifyReport } from '../../src/verify/report.js';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { cli } from '../cli/run-cli.js';
import { openPage } from '../harness/chromium.js';

const T0 = 1_700_000_000_000;
type Found = Array<{ path: string; source?: string; destination?: string }>;

const differences = (report: VerifyReport): Found => report.objects.flatMap((o) => (o.differences.length > 0 ? o.differences : [{ path: `${o.path} (${o.state})` }]));

describe('verify between real MLflow servers', () => {
  let src: MlflowServer;
  let dst: MlflowServer;
  let ids: Record<string, string>;
  /** source run id → its copy's id in the destination */
  const copies = new Map<string, string>();

  beforeAll(async () => {
    [src, dst] = await Promise.all([startMlflowServer(), startMlflowServer()]);
    const out = await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: src.url });
    ids = JSON.parse(out.trim().split('\n').pop()!) as Record<string, string>;
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: src.url });
  });
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop()]);
  });

  it('copy --verify finds the copy equal, models and MLmodel files included', async () => {
    const copied = await cli(['copy', src.url, dst.url, '--include-deleted', '--verify', '--state-dir', join(dst.dir, 'state')]);
    expect(copied.stderr).not.toMatch(/FAILED/);
    expect(copied.stdout).toMatch(/EQUAL: no differences/);
    expect(copied.code).toBe(0);
    const destination = await openSource(dst.url);
    for await (const experiment of destination.listExperiments()) {
      for await (const run of destination.listRuns(experiment.id, { includeDeleted: true })) copies.set(run.tags['trackshift.source.id']!, run.id);
    }
    await destination.close?.();
    const verified = await cli(['verify', src.url, dst.url, '--include-deleted', '--json']);
    const report = JSON.parse(verified.stdout) as VerifyReport;
    expect(report.objects).toEqual([]);
    expect(verified.code).toBe(0);
    expect(report.summary.version.equal).toBeGreaterThanOrEqual(5);
    expect(report.matching.provenance).toBe(report.summary.run.compared);
    expect(report.compared.metricPoints).toBeGreaterThan(10_000);
  });

  it('finds each change to the destination, one at a time, and names it exactly', async () => {
    const parent = ids.parent!;
    const dstParent = copies.get(parent)!;
    const db = () => new Database(join(dst.dir, 'mlflow.db'));
    const alter = (op: Record<string, unknown>) => runPython('test/fixtures/alter_destination.py', [JSON.stringify(op)], { MLFLOW_TRACKING_URI: dst.url });
    const sql = (statement: string, ...args: unknown[]) => {
      const d = db();
      try {
        expect(d.prepare(statement).run(...args).changes).toBe(1);
      } finally {
        d.close();
      }
    };
    const at = (run: string, rest: string) => `rich/${run}/${rest}`;
    const changes: Array<[string, () => Promise<unknown> | void, Found]> = [
      ['an extra param', () => alter({ op: 'log_param', run: dstParent, key: 'extra', value: '1' }), [{ path: at(parent, 'param:extra'), destination: '1' }]],
      ['a changed tag', () => alter({ op: 'set_tag', run: dstParent, key: 'stage', value: 'eval' }), [{ path: at(parent, 'tag:stage'), source: 'train', destination: 'eval' }]],
      [
        'a metric point removed',
        () => sql("DELETE FROM metrics WHERE run_uuid = ? AND key = 'loss' AND step = 17", dstParent),
        [{ path: at(parent, 'metric:loss@17'), source: `${1 / 18} (timestamp ${T0 + 1000 + 17 * 7})` }],
      ],
      [
        'a metric point altered',
        () => sql("UPDATE metrics SET value = 0.5 WHERE run_uuid = ? AND key = 'loss' AND step = 42", dstParent),
        [{ path: at(parent, 'metric:loss@42'), source: `${1 / 43} (timestamp ${T0 + 1000 + 42 * 7})`, destination: `0.5 (timestamp ${T0 + 1000 + 42 * 7})` }],
      ],
      [
        'a NaN turned into 0',
        () => sql("UPDATE metrics SET value = 0, is_nan = 0 WHERE run_uuid = ? AND key = 'special' AND step = 0", dstParent),
        [{ path: at(parent, 'metric:special@0'), source: `NaN (timestamp ${T0 + 1})`, destination: `0 (timestamp ${T0 + 1})` }],
      ],
      [
        'an artifact byte changed',
        () => alter({ op: 'log_artifact', run: dstParent, path: 'model/deep/er/config.json', content: '{"layers": 4}' }),
        [{ path: at(parent, 'artifact:model/deep/er/config.json'), source: expect.stringMatching(/^13 bytes, sha256 /) as unknown as string, destination: expect.stringMatching(/^13 bytes, sha256 /) as unknown as string }],
      ],
      ['a run deleted', () => alter({ op: 'delete_run', run: copies.get(ids.child!)! }), [{ path: at(ids.child!, 'lifecycle'), source: 'active', destination: 'deleted' }]],
      [
        'an end time moved',
        () => alter({ op: 'set_terminated', run: copies.get(ids.grandchild!)!, status: 'KILLED', end_time: T0 + 40_001 }),
        [{ path: at(ids.grandchild!, 'end_time'), source: String(T0 + 40_000), destination: String(T0 + 40_001) }],
      ],
      [
        'a version moved to another stage',
        () => alter({ op: 'transition_stage', model: 'fraud-classifier', version: '5', stage: 'Archived' }),
        [{ path: 'model:fraud-classifier/version:5/stage', source: 'None', destination: 'Archived' }],
      ],
    ];
    let before: Found = [];
    for (const [what, change, expected] of changes) {
      await change();
      const result = await cli(['verify', src.url, dst.url, '--include-deleted', '--json']);
      expect(result.code, `${what}: exit code`).toBe(1);
      const now = differences(JSON.parse(result.stdout) as VerifyReport);
      const added = now.filter((d) => !before.some((b) => b.path === d.path));
      expect(added, what).toEqual(expected);
      expect(now, `${what}: the earlier differences are still reported`).toHaveLength(before.length + expected.length);
      before = now;
    }
    // the text summary names them too
    const text = await cli(['verify', src.url, dst.url, '--include-deleted']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/DIFFERENT: 4 object\(s\) differ/);
    expect(text.stdout).toContain(`rich/${parent}/metric:special@0\n      source:      NaN (timestamp ${T0 + 1})\n      destination: 0 (timestamp ${T0 + 1})`);

    // the same report as JSON and as an HTML page, opened in a real headless browser
    const html = join(dst.dir, 'report.html');
    const json = join(dst.dir, 'report.json');
    const reported = await cli(['verify', src.url, dst.url, '--include-deleted', '--report', html, '--report', json]);
    expect(reported.code).toBe(1);
    const fromFile = JSON.parse(readFileSync(json, 'utf8')) as VerifyReport;
    expect(differences(fromFile)).toEqual(before);
    const screenshot = join(dst.dir, 'report.png');
    const dom = await openPage(html, screenshot);
    expect(dom).toContain('DIFFERENT: 4 object(s) differ');
    const runs = fromFile.summary.run;
    expect(runs.different).toBe(3);
    expect(dom).toContain(`<td>runs</td><td>${runs.compared}</td><td>${runs.equal}</td><td>3</td><td>0</td><td>0</td>`);
    // a chart for each differing metric of the parent, and its differences in rows
    expect([...dom.matchAll(/<figure class="chart" data-metric="([^"]+)"/g)].map((m) => m[1])).toEqual(['loss', 'special']);
    expect(dom).toMatch(/<polyline[^>]+points="[\d., ]{200,}"/);
    for (const d of before) expect(dom).toContain(`<td class="path">${d.path}</td>`);
    const png = readFileSync(screenshot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(20_000);
    if (process.env.TRACKSHIFT_KEEP_SCREENSHOT) copyFileSync(screenshot, process.env.TRACKSHIFT_KEEP_SCREENSHOT);
  });
});
