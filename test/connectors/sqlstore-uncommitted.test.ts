/**
 * The SQL-store writer puts a run's artifacts in its folder before the transaction that makes
 * the run: a writer killed in between leaves a folder no run names. The next writer into that
 * experiment removes it — and nothing else: not a folder the server made, not one of a writer
 * still running, not a committed run's.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { openSqlStoreDestination } from '../../src/connectors/sqlstore/index.js';
import type { Run } from '../../src/model/index.js';
import { runTool } from '../harness/mlflow-server.js';

const DIST = fileURLToPath(new URL('../../dist/connectors/sqlstore/index.js', import.meta.url));
const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-uncommitted-'));
const run = (id: string): Run => ({ id, experimentId: '1', status: 'FINISHED', lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [], startTime: 1, endTime: 2 });

/** In a process of its own: an experiment, a run with one artifact, then SIGKILL before the commit. Prints the run id. */
const KILLED_WRITER = `
import { Readable } from 'node:stream';
const { openSqlStoreDestination } = await import(process.argv[1]);
const destination = await openSqlStoreDestination(process.argv[2]);
const experiment = await destination.ensureExperiment({ id: 'e', name: 'killed', tags: {}, lifecycle: 'active' }, 'killed');
const run = { id: 'source-run', experimentId: 'e', status: 'FINISHED', lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [] };
const id = await destination.createRun(experiment, run);
await destination.writeArtifact(id, { path: 'model/weights.bin', size: 3 }, Readable.from([Buffer.from('abc')]));
process.stdout.write(JSON.stringify({ experiment, id }), () => process.kill(process.pid, 'SIGKILL'));
`;

describe('SQL store: artifact folders of runs never committed', () => {
  let template: string;
  beforeAll(async () => {
    template = join(temp(), 'template.db');
    await runTool(3, 'mlflow', ['db', 'upgrade', `sqlite:///${template}`]);
  });

  it('are removed by the next writer into the experiment; the server’s folders, a live writer’s and committed runs’ stay', async () => {
    const dir = temp();
    copyFileSync(template, join(dir, 'mlflow.db'));
    const artifacts = join(dir, 'artifacts');
    const location = `sqlite:///${join(dir, 'mlflow.db')}?artifacts=${artifacts}`;

    const killed = spawnSync(process.execPath, ['--input-type=module', '-e', KILLED_WRITER, DIST, location], { encoding: 'utf8' });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const { experiment, id: orphan } = JSON.parse(killed.stdout) as { experiment: string; id: string };
    const experimentFolder = join(artifacts, experiment);
    expect(readFileSync(join(experimentFolder, orphan, 'artifacts', 'model', 'weights.bin'), 'utf8')).toBe('abc');

    // beside it: a folder the server made (no mark), and one marked by a writer still running (this process)
    const serversOwn = join(experimentFolder, 'a'.repeat(32));
    mkdirSync(join(serversOwn, 'artifacts'), { recursive: true });
    const live = join(experimentFolder, 'b'.repeat(32));
    mkdirSync(live, { recursive: true });
    writeFileSync(join(live, '.trackshift-uncommitted'), JSON.stringify({ host: hostname(), pid: process.pid }));

    const destination = await openSqlStoreDestination(location);
    try {
      const id = await destination.createRun(experiment, run('next'));
      expect(existsSync(join(experimentFolder, orphan))).toBe(false);
      expect(existsSync(serversOwn)).toBe(true);
      expect(existsSync(live)).toBe(true);
      // a run committed keeps its files and loses its mark
      await destination.writeArtifact(id, { path: 'a.txt', size: 1 }, Readable.from([Buffer.from('x')]));
      expect(existsSync(join(experimentFolder, id, '.trackshift-uncommitted'))).toBe(true);
      await destination.finishRun(id, run('next'));
      expect(readdirSync(join(experimentFolder, id))).toEqual(['artifacts']);
      expect(readFileSync(join(experimentFolder, id, 'artifacts', 'a.txt'), 'utf8')).toBe('x');
    } finally {
      await destination.close();
    }
    // what the database holds: the committed run only
    const db = new Database(join(dir, 'mlflow.db'), { readonly: true });
    const runs = db.prepare('SELECT run_uuid FROM runs').pluck().all();
    db.close();
    expect(runs).toHaveLength(1);
    expect(runs[0]).not.toBe(orphan);
  });
});
