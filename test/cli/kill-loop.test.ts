/**
 * The kill loop: a copy between real MLflow servers is killed (SIGKILL) at seeded random points
 * — while runs are written (metric batches, artifact uploads), while registered model versions
 * are written — and re-run each time; after a final complete run no run or version is there
 * twice (counted through the REST API) and `trackshift verify` finds both ends equal.
 *
 * Kill points come from the resume journal, which is appended as each step finishes: a kill is
 * set off a seeded delay after the next `run-started` (the run's data and files are going up),
 * the next `version-done` (the next version is being registered), or after a few new entries.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPython, startMlflowServer, type MlflowServer } from '../harness/mlflow-server.js';
import { cli, startCli } from './run-cli.js';
import { seeded } from '../helpers/seeded.js';

const SEED = 14;
/** kills while runs are copied, then while versions are registered (the registry comes after the runs) */
const RUN_KILLS = 8;
const REGISTRY_KILLS = 3;
const KILLS = RUN_KILLS + REGISTRY_KILLS;
/** versions added to the registry fixture's five, so that the registry outlasts its kills */
const EXTRA_VERSIONS = 6;

type Trigger = 'run-started' | 'version-done' | 'entries';
interface Kill {
  trigger: Trigger;
  delayMs: number;
  killed: boolean;
  /** the journal's last entry when the kill was sent */
  after?: string;
}

function journalEntries(file: string): Array<{ type: string; source?: string }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return []; // a line cut short by an earlier kill
      }
    });
}

async function rest<T>(server: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const url = new URL(`${server}/api/2.0/mlflow/${path}`);
  if (method === 'GET') for (const [k, v] of Object.entries((body ?? {}) as Record<string, string>)) url.searchParams.set(k, v);
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? JSON.stringify(body) : undefined });
  expect(response.ok, `${path}: ${response.status}`).toBe(true);
  return (await response.json()) as T;
}

type Tagged = { tags?: Array<{ key: string; value: string }> };
const tag = (o: Tagged, key: string) => o.tags?.find((t) => t.key === key)?.value;

/** Through the REST API: every run of the server (deleted included, discarded partial copies left out), and every model version. */
async function inventory(server: string) {
  const { experiments = [] } = await rest<{ experiments?: Array<{ experiment_id: string }> }>(server, 'POST', 'experiments/search', { max_results: 1000, view_type: 'ALL' });
  const runs: Array<{ data: Tagged }> = [];
  for (const e of experiments) {
    let token: string | undefined;
    do {
      const page = await rest<{ runs?: Array<{ data: Tagged }>; next_page_token?: string }>(server, 'POST', 'runs/search', {
        experiment_ids: [e.experiment_id],
        run_view_type: 'ALL',
        max_results: 1000,
        page_token: token,
      });
      runs.push(...(page.runs ?? []));
      token = page.next_page_token;
    } while (token);
  }
  const { registered_models: models = [] } = await rest<{ registered_models?: Array<{ name: string }> }>(server, 'GET', 'registered-models/search', { max_results: '1000' });
  const versions: Array<Tagged & { name: string; version: string }> = [];
  for (const m of models) {
    const page = await rest<{ model_versions?: Array<Tagged & { name: string; version: string }> }>(server, 'GET', 'model-versions/search', { filter: `name='${m.name}'`, max_results: '1000' });
    versions.push(...(page.model_versions ?? []));
  }
  return { runs: runs.filter((r) => tag(r.data, 'trackshift.discarded') !== 'true'), versions };
}

/** source id → how many copies */
function countBy<T>(items: T[], key: (item: T) => string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) {
    const k = key(item);
    if (k !== undefined) counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  return counts;
}

describe('kill -9 at random points of a copy, then re-run', () => {
  const servers: MlflowServer[] = [];
  let source: MlflowServer;
  let destination: MlflowServer;
  beforeAll(async () => {
    [source, destination] = await Promise.all([startMlflowServer(), startMlflowServer()]);
    servers.push(source, destination);
    // several runs with histories and artifacts (one of 5 MB), nested and deleted ones; registered models with versions from logged models and from run files
    await runPython('test/fixtures/write_rich_fixture.py', [], { MLFLOW_TRACKING_URI: source.url });
    await runPython('test/fixtures/registry_fixture.py', [], { MLFLOW_TRACKING_URI: source.url });
    // more versions than registry kills can use up: each kill lets a version or two finish before it lands
    // (from version 5's files in its run: the MLflow 2 way, which needs no logged model)
    const { model_version: files } = await rest<{ model_version: { source: string; run_id: string } }>(source.url, 'GET', 'model-versions/get', { name: 'fraud-classifier', version: '5' });
    await rest(source.url, 'POST', 'registered-models/create', { name: 'retrained' });
    for (let i = 0; i < EXTRA_VERSIONS; i++) {
      await rest(source.url, 'POST', 'model-versions/create', { name: 'retrained', source: files.source, run_id: files.run_id, description: `retrain ${i + 1}` });
    }
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it(`survives ${KILLS} kills (seed ${SEED}): no duplicate runs or versions, verify equal`, async () => {
    const random = seeded(SEED);
    const state = mkdtempSync(join(tmpdir(), 'trackshift-kill-'));
    const journal = join(state, 'journal.jsonl');
    const args = ['copy', source.url, destination.url, '--include-deleted', '--workers', '1', '--state-dir', state];
    const kills: Kill[] = [];
    while (kills.length < KILLS) {
      // runs first, then the registry: a version trigger waits for every run to be copied
      const registryTurn = kills.length >= RUN_KILLS || journalEntries(journal).some((e) => e.type === 'version-done');
      const triggers: Trigger[] = registryTurn ? ['version-done'] : ['run-started', 'entries'];
      const kill: Kill = { trigger: triggers[Math.floor(random() * triggers.length)]!, delayMs: Math.floor(random() * 250), killed: false };
      const newEntries = 1 + Math.floor(random() * 3);
      const seen = journalEntries(journal).length;
      const { child, done } = startCli(args);
      let finished = false;
      void done.then(() => (finished = true));
      // wait for the trigger in the journal, then the delay, then kill
      while (!finished) {
        const fresh = journalEntries(journal).slice(seen);
        // a run trigger once the registry's turn has come: the next version instead
        const wanted = kill.trigger === 'run-started' && fresh.some((e) => e.type === 'version-done') ? 'version-done' : kill.trigger;
        const hit = wanted === 'entries' ? fresh.length >= newEntries : fresh.some((e) => e.type === wanted);
        if (hit) {
          await new Promise((resolve) => setTimeout(resolve, kill.delayMs));
          const last = journalEntries(journal).pop();
          kill.after = last ? `${last.type} ${last.source ?? ''}` : undefined;
          kill.killed = child.kill('SIGKILL');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const result = await done;
      kill.killed = result.signal === 'SIGKILL';
      kills.push(kill);
      if (!kill.killed) {
        // the copy finished before its kill point: nothing is left to interrupt
        expect(result.code, result.stderr).toBe(0);
        break;
      }
    }
    console.log(`kill points (seed ${SEED}):\n${kills.map((k, i) => `  ${i + 1}. ${k.trigger} +${k.delayMs}ms → ${k.killed ? `killed after ${k.after}` : 'finished first'}`).join('\n')}`);
    const killed = kills.filter((k) => k.killed);
    expect(killed.length).toBeGreaterThanOrEqual(10);
    // among them, kills while runs were going up and while versions were being registered
    expect(killed.filter((k) => k.after?.startsWith('run-started')).length).toBeGreaterThan(0);
    expect(killed.filter((k) => k.after?.startsWith('version-done')).length).toBeGreaterThan(0);

    const final = await cli([...args, '--json']);
    expect(final.code, final.stderr).toBe(0);
    expect(JSON.parse(final.stdout).failed).toEqual([]);

    const [from, to] = await Promise.all([inventory(source.url), inventory(destination.url)]);
    const runCopies = countBy(to.runs, (r) => tag(r.data, 'trackshift.source.id'));
    expect(runCopies.size).toBe(from.runs.length);
    expect([...runCopies].filter(([, n]) => n !== 1)).toEqual([]);
    expect(to.runs.length).toBe(from.runs.length);
    const versionCopies = countBy(to.versions, (v) => tag(v, 'trackshift.source.id'));
    expect(versionCopies.size).toBe(from.versions.length);
    expect([...versionCopies].filter(([, n]) => n !== 1)).toEqual([]);
    expect(to.versions.length).toBe(from.versions.length);

    const verify = await cli(['verify', source.url, destination.url, '--include-deleted']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
