#!/usr/bin/env node
/**
 * Issue 19: a Neptune 2.x project copied into another on the same server — seed 000's approach
 * (bench/neptune2_migrate.py: the Python `neptune` 1.14 client, every run read whole and written
 * into a new run, a thread pool of --max-workers) against `trackshift copy neptune://ws/src
 * neptune://ws/trackshift --workers N`, on one local Neptune-shaped server (test/harness/
 * neptune-server; no live Neptune instance exists here) and the same data, in one invocation.
 * Only the ratios mean much: the machines are shared, and the server runs in this process.
 *
 *   npm run build && node bench/neptune-server.mjs [--runs 10 --metrics 5 --steps 2000 --params 20 --file-kb 256 --workers 4]
 *
 * The source is filled by the real client (test/fixtures/neptune2_api_fill.py, async mode, seeded; not
 * timed). Each destination is then counted in the server's own store: runs, float points,
 * string points, files and their bytes, against the source's. Prints a table and writes
 * bench/results/neptune-server.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { loadHarness } from '../test/harness/from-node.mjs';
import { buildInfo, parseFlags, snapshotCli } from './lib/cli.mjs';
import { machineEnd, machineInfo, measure } from './lib/measure.mjs';
import { pinnedEnv } from './lib/mlflow.mjs';
import { ROOT, fmt, keepProcesses, log, run, tableLines, temp } from './lib/processes.mjs';

const args = parseFlags(new Set(['keep']));
const workload = {
  runs: Number(args.runs ?? 10),
  metrics: Number(args.metrics ?? 5),
  steps: Number(args.steps ?? 2000),
  params: Number(args.params ?? 20),
  fileKb: Number(args['file-kb'] ?? 256),
};
const workers = Number(args.workers ?? 4);
const outFile = args.out ? String(args.out) : join(ROOT, 'bench', 'results', 'neptune-server.json');
keepProcesses({ keep: Boolean(args.keep), prefix: 'trackshift-bench-', stopping: 'the commands started' });

/** What a project of the server holds, counted in its store. */
function counted(server, project) {
  const out = { runs: 0, floatPoints: 0, stringPoints: 0, files: 0, fileBytes: 0 };
  for (const r of server.store.runs(server.store.project(project))) {
    out.runs += 1;
    for (const [path, a] of r.attributes) {
      if (path.startsWith('sys/') || path.startsWith('.trackshift')) continue;
      if (a.type === 'floatSeries') out.floatPoints += a.points.length;
      else if (a.type === 'stringSeries') out.stringPoints += a.points.length;
      else if (a.type === 'file') {
        out.files += 1;
        out.fileBytes += a.data.length;
      }
    }
  }
  return out;
}

async function main() {
  const { startNeptuneServer } = await loadHarness('neptune-server');
  const server = await startNeptuneServer({ projects: [['ws', 'src', 'SRC'], ['ws', 'seed', 'SEED'], ['ws', 'trackshift', 'TS']] });
  const env = server.clientEnv();
  const venv = pinnedEnv('requirements-neptune2.txt');
  const python = join(venv, 'bin', 'python');
  const work = temp('neptune-server');
  const logDir = join(work, 'logs');
  mkdirSync(logDir, { recursive: true });
  const machine = machineInfo();
  const CLI = snapshotCli();
  try {
    const points = workload.runs * workload.metrics * workload.steps;
    log(`filling ws/src: ${workload.runs} runs × ${workload.metrics} metrics × ${workload.steps} steps = ${fmt(points)} points, ${workload.params} params, a ${workload.fileKb} KB file each`);
    await run(python, [join(ROOT, 'test', 'fixtures', 'neptune2_api_fill.py'), 'ws/src', ...[workload.runs, workload.metrics, workload.steps, workload.params, workload.fileKb].map(String), join(work, 'fill')], {
      env,
      logFile: join(logDir, 'fill.log'),
    });
    const source = counted(server, 'ws/src');

    log(`seed 000's approach: neptune2_migrate.py ws/src ws/seed --max-workers ${workers}`);
    const seed = await measure('seed-000 approach', python, [join(ROOT, 'bench', 'neptune2_migrate.py'), 'ws/src', 'ws/seed', String(workers), temp('seed-work')], { env, logDir });
    log(`trackshift copy neptune://ws/src neptune://ws/trackshift --workers ${workers}`);
    const ours = await measure('trackshift copy', process.execPath, [CLI, 'copy', 'neptune://ws/src', 'neptune://ws/trackshift', '--workers', String(workers), '--state-dir', temp('state')], { env, logDir });

    const rows = [
      { contender: `seed 000's approach (neptune 1.14, ${workers} threads)`, m: seed, found: counted(server, 'ws/seed') },
      { contender: `trackshift copy --workers ${workers}`, m: ours, found: counted(server, 'ws/trackshift') },
    ].map(({ contender, m, found }) => ({
      contender,
      seconds: m.seconds,
      pointsPerSecond: points / m.seconds,
      peakRssMb: m.peakRssMb,
      cpuSeconds: m.cpuSeconds,
      exitCode: m.code,
      found,
      complete: JSON.stringify(found) === JSON.stringify(source),
    }));
    for (const r of rows) r.speedup = rows[0].seconds / r.seconds;
    const results = { workload, workers, points, source, machine: { ...machine, loadAverageAtEnd: machine.loadAverageAtEnd }, trackshift: buildInfo(), at: new Date().toISOString(), rows };

    console.log(`\nworkload: ${workload.runs} runs × ${workload.metrics} metrics × ${workload.steps} steps = ${fmt(points)} points, ${workload.params} params, a ${workload.fileKb} KB file per run`);
    console.log(machineEnd(machine));
    console.log(`one local Neptune-shaped server (test/harness/neptune-server), no live Neptune; source counted: ${JSON.stringify(source)}`);
    const head = ['contender', 'seconds', '× seed approach', 'points/s', 'peak RSS MB', 'CPU s', 'destination'];
    const cells = rows.map((r) => [r.contender, fmt(r.seconds, 1), `${fmt(r.speedup, 1)}×`, fmt(r.pointsPerSecond), fmt(r.peakRssMb), fmt(r.cpuSeconds, 1), r.exitCode !== 0 ? `exit ${r.exitCode}` : r.complete ? 'complete' : `differs: ${JSON.stringify(r.found)}`]);
    console.log('');
    for (const l of tableLines(head, cells)) console.log(`  ${l}`);
    mkdirSync(dirname(outFile), { recursive: true });
    writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
    console.log(`\nwritten: ${outFile.replace(`${ROOT}/`, '')}`);
    if (rows.some((r) => r.exitCode !== 0 || !r.complete)) process.exitCode = 1;
  } finally {
    await server.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
