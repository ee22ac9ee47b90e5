#!/usr/bin/env node
/**
 * Issue 19: a Neptune 2.x project copied on one local Neptune-shaped server (test/harness/
 * neptune-server; no live Neptune instance exists here), the seeds' approach against trackshift on
 * the same data, in one invocation. Only the ratios mean much: the machines are shared, and the
 * server runs in this process.
 *
 * --to 2 (default), seed 000: bench/neptune2_migrate.py (the Python `neptune` 1.14 client, every
 * run read whole and written into a new run, a thread pool of --max-workers) against
 * `trackshift copy neptune://ws/src neptune://ws/trackshift --workers N`.
 * --to 3, seed 001: bench/neptune_legacy_to_scale.py (read with `neptune` 1.14, written with
 * neptune-scale 0.30, a thread pool of --max-workers) against `trackshift copy neptune://ws/src
 * neptune-scale://ws/trackshift --workers N`; the destination projects are made by each contender.
 *
 *   npm run build && node bench/neptune-server.mjs [--to 2|3 --runs 10 --metrics 5 --steps 2000 --params 20 --file-kb 256 --workers 4]
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
const to = String(args.to ?? '2');
if (to !== '2' && to !== '3') throw new Error('--to is 2 (Neptune 2.x → 2.x, seed 000) or 3 (2.x → 3.x, seed 001)');
const outFile = args.out ? String(args.out) : join(ROOT, 'bench', 'results', to === '2' ? 'neptune-server.json' : 'neptune-server-3x.json');
keepProcesses({ keep: Boolean(args.keep), prefix: 'trackshift-bench-', stopping: 'the commands started' });

/** Paths that are not the source's data: the server's own, and what each copy adds beside it. */
const BOOKKEEPING = /^(sys|legacy_sys|old_sys|run_data|run_info|\.trackshift|trackshift)\//;

/** What a 3.x project of the server holds, counted as `counted` counts a 2.x one. */
function countedScale(server, project) {
  const out = { runs: 0, floatPoints: 0, stringPoints: 0, files: 0, fileBytes: 0 };
  for (const r of server.scale.runs(project)) {
    out.runs += 1;
    for (const [path, a] of r.attributes) {
      if (BOOKKEEPING.test(path)) continue;
      if (a.type === 'floatSeries') out.floatPoints += a.points.length;
      else if (a.type === 'stringSeries') out.stringPoints += a.points.length;
      else if (a.type === 'fileRef') {
        out.files += 1;
        out.fileBytes += server.scaleFile(project, a.value.path)?.length ?? 0;
      }
    }
  }
  return out;
}

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

    let contenders;
    if (to === '2') {
      log(`seed 000's approach: neptune2_migrate.py ws/src ws/seed --max-workers ${workers}`);
      const seed = await measure('seed-000 approach', python, [join(ROOT, 'bench', 'neptune2_migrate.py'), 'ws/src', 'ws/seed', String(workers), temp('seed-work')], { env, logDir });
      log(`trackshift copy neptune://ws/src neptune://ws/trackshift --workers ${workers}`);
      const ours = await measure('trackshift copy', process.execPath, [CLI, 'copy', 'neptune://ws/src', 'neptune://ws/trackshift', '--workers', String(workers), '--state-dir', temp('state')], { env, logDir });
      contenders = [
        { contender: `seed 000's approach (neptune 1.14, ${workers} threads)`, m: seed, found: counted(server, 'ws/seed') },
        { contender: `trackshift copy --workers ${workers}`, m: ours, found: counted(server, 'ws/trackshift') },
      ];
    } else {
      const both = join(pinnedEnv('requirements-neptune-migrate.txt'), 'bin', 'python');
      const scaleEnv = { ...env, ...server.scaleEnv() };
      log(`seed 001's approach: neptune_legacy_to_scale.py ws/src ws/seed3 --max-workers ${workers}`);
      const seed = await measure('seed-001 approach', both, [join(ROOT, 'bench', 'neptune_legacy_to_scale.py'), 'ws/src', 'ws/seed3', String(workers), temp('seed-work')], { env: scaleEnv, logDir });
      log(`trackshift copy neptune://ws/src neptune-scale://ws/trackshift3 --workers ${workers}`);
      const ours = await measure('trackshift copy', process.execPath, [CLI, 'copy', 'neptune://ws/src', 'neptune-scale://ws/trackshift3', '--workers', String(workers), '--state-dir', temp('state')], { env: scaleEnv, logDir });
      contenders = [
        { contender: `seed 001's approach (neptune 1.14 + neptune-scale 0.30, ${workers} threads)`, m: seed, found: countedScale(server, 'ws/seed3') },
        { contender: `trackshift copy --workers ${workers}`, m: ours, found: countedScale(server, 'ws/trackshift3') },
      ];
    }
    const rows = contenders.map(({ contender, m, found }) => ({
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
    const results = { to: to === '2' ? 'Neptune 2.x → 2.x (seed 000)' : 'Neptune 2.x → 3.x (seed 001)', workload, workers, points, source, machine: { ...machine, loadAverageAtEnd: machine.loadAverageAtEnd }, trackshift: buildInfo(), at: new Date().toISOString(), rows };

    console.log(`\nworkload: ${workload.runs} runs × ${workload.metrics} metrics × ${workload.steps} steps = ${fmt(points)} points, ${workload.params} params, a ${workload.fileKb} KB file per run`);
    console.log(machineEnd(machine));
    console.log(`one local Neptune-shaped server (test/harness/neptune-server), no live Neptune; source counted: ${JSON.stringify(source)}`);
    console.log(results.to);
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
