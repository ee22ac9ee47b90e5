#!/usr/bin/env node
/**
 * Reading an MLflow store directly from its SQLite file versus through the REST API of a server
 * on the same database, in one invocation on one machine (this machine is noisy: only the ratio
 * means something).
 *
 *   npm run build && node bench/sqlstore-vs-rest.mjs [--runs 20 --metrics 5 --steps 2000 --params 20 --tags 10 --artifact-kb 64 --repeat 3]
 *
 * Starts one MLflow server (SQLite backend, served artifacts) from the pinned environment,
 * fills it with bench/fill_workload.py, then times `trackshift export` of everything into a
 * fresh bundle: from http://… and from sqlite:///…, alternating, --repeat times each. Prints a
 * table (wall time, runs/s, points/s, ratio) and writes it as JSON to bench/results/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './lib/processes.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, i, all) => (value.startsWith('--') ? [...pairs, [value.slice(2), all[i + 1]]] : pairs), []),
);
const workload = {
  runs: Number(args.runs ?? 20),
  metrics: Number(args.metrics ?? 5),
  steps: Number(args.steps ?? 2000),
  params: Number(args.params ?? 20),
  tags: Number(args.tags ?? 10),
  artifactKb: Number(args['artifact-kb'] ?? 64),
};
const repeat = Number(args.repeat ?? 3);

async function main() {
  const venv = execFileSync('bash', [join(ROOT, 'scripts/python-env.sh')], { encoding: 'utf8' }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(
    join(venv, 'bin', 'mlflow'),
    ['server', '--host', '127.0.0.1', '--port', String(port), '--workers', '1', '--backend-store-uri', `sqlite:///${join(dir, 'mlflow.db')}`, '--artifacts-destination', join(dir, 'artifacts'), '--serve-artifacts'],
    { cwd: dir, detached: true, stdio: 'ignore', env: { ...process.env, MLFLOW_TRACKING_URI: '', MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' } }, // no job runner (see copy.mjs)
  );
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      // gone
    }
  };
  process.on('exit', stop);
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${url}/health`)).ok) break;
      } catch {
        if (i > 300) throw new Error('the MLflow server did not start');
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    process.stderr.write(`filling ${url} with ${JSON.stringify(workload)} …\n`);
    const filled = execFileSync(
      join(venv, 'bin', 'python'),
      [join(ROOT, 'bench/fill_workload.py'), url, '--runs', workload.runs, '--metrics', workload.metrics, '--steps', workload.steps, '--params', workload.params, '--tags', workload.tags, '--artifact-kb', workload.artifactKb].map(String),
      { encoding: 'utf8' },
    );
    const points = JSON.parse(filled.trim().split('\n').pop()).points;

    const sources = { rest: url, sqlite: `sqlite:///${join(dir, 'mlflow.db')}?artifacts=${join(dir, 'artifacts')}` };
    const times = { rest: [], sqlite: [] };
    for (let round = 0; round < repeat; round++) {
      for (const [name, source] of Object.entries(sources)) {
        const out = mkdtempSync(join(tmpdir(), 'trackshift-bench-out-'));
        const started = process.hrtime.bigint();
        execFileSync(process.execPath, [CLI, 'export', source, join(out, 'bundle'), '--state-dir', join(out, 'state'), '--json'], { stdio: ['ignore', 'ignore', 'inherit'] });
        times[name].push(Number(process.hrtime.bigint() - started) / 1e9);
        rmSync(out, { recursive: true, force: true });
      }
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const rows = Object.entries(times).map(([name, xs]) => ({ source: name, seconds: median(xs), runsPerSecond: workload.runs / median(xs), pointsPerSecond: points / median(xs) }));
    const ratio = median(times.rest) / median(times.sqlite);
    const line = (cells) => cells.map((c, i) => String(c).padStart(i === 0 ? 8 : 14)).join('  ');
    console.log(`workload: ${workload.runs} runs × ${workload.metrics} metrics × ${workload.steps} steps = ${points.toLocaleString('en-US')} points, ${workload.params} params, ${workload.tags} tags, ${workload.artifactKb} kB of artifacts per run`);
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; median of ${repeat} alternating rounds each`);
    console.log(line(['source', 'seconds', 'runs/s', 'points/s']));
    for (const r of rows) console.log(line([r.source, r.seconds.toFixed(2), r.runsPerSecond.toFixed(1), Math.round(r.pointsPerSecond).toLocaleString('en-US')]));
    console.log(`sqlite is ${ratio.toFixed(1)}× faster than REST on the same database`);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'sqlstore-vs-rest.json'), JSON.stringify({ workload, points, repeat, rows, ratio, at: new Date().toISOString() }, null, 2) + '\n');
  } finally {
    stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
