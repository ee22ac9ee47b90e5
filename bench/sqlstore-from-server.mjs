#!/usr/bin/env node
/**
 * Issue 18: an MLflow server copied straight into MLflow's database — `trackshift copy
 * http://SRC sqlite:///…` and `… postgresql://…` — against `trackshift copy http://SRC
 * http://DST` (server → server) and the Python mlflow-migration tools' export + import, in one
 * invocation on the same source. Only the ratios mean much: the machines are shared.
 *
 *   npm run build && node bench/sqlstore-from-server.mjs [workload flags] [--steps-factor 10]
 *
 * Workload (bench/fill_workload.py, seeded, the real mlflow client, as bench/copy.mjs fills it;
 * a filled source is kept under ~/.cache/trackshift/bench/ and copied next time):
 *   --runs 10 --metrics 5 --steps 2000 --params 20 --tags 10 --artifact-mb 0.5 --artifacts 2 --seed 7
 *
 * Contenders, each into a fresh destination, from one source MLflow server (SQLite backend):
 *   sqlite      trackshift copy → sqlite:///DIR/mlflow.db?artifacts=DIR/artifacts, a copy of an
 *               empty database made once by `mlflow db upgrade`
 *   postgresql  trackshift copy → postgresql://…/DB?artifacts=DIR, DB a copy (CREATE DATABASE …
 *               TEMPLATE) of a database made once by `mlflow db upgrade`, on a throwaway
 *               PostgreSQL server started here (bench/lib/postgres.mjs)
 *   server      trackshift copy → a fresh MLflow server (SQLite backend, artifacts served)
 *   migration   mlflow-migration-export-experiment then mlflow-migration-import-experiment into
 *               a fresh MLflow server, both halves timed and added (their staging on disk included)
 *   from-database  sqlite and postgresql again, the source read from the source server's own
 *               database (sqlite:///SRC/mlflow.db?artifacts=SRC/artifacts) instead of its REST
 *               API: what a migration reaches when the source's database is at hand — a copy
 *               from a server is bound by how fast that server answers (its CPU column)
 * Each is timed (wall time, peak RSS and CPU of its process tree, and the CPU the source server
 * spent meanwhile — a source busy for the whole copy is its limit: bench/lib/measure.mjs), then
 * its destination is checked, untimed: trackshift's compared with the source field by field by
 * `trackshift verify SRC DST --experiment bench` (reading the databases directly); the Python
 * tools' counted through REST (runs, params, tags, every metric point, artifact files and bytes:
 * verify pairs runs by trackshift's source tag, the run id, or name and start time, and finds
 * none of theirs).
 *
 * Other flags:
 *   --steps-factor N      then copy, into sqlite and postgresql only, a second source with N × the
 *                         steps per metric (the same runs: N × the points), to show whether the
 *                         peak RSS stays flat; both are in the table
 *   --only sqlite,postgresql,server,migration,from-database   the contenders to run (default all)
 *   --trackshift-args "…" extra flags for every trackshift copy (e.g. "--workers 8")
 *   --no-cache            fill afresh and keep nothing
 *   --keep                keep the temporary folders (logs, destinations) and print where
 *   --out FILE            the JSON results (default bench/results/sqlstore-from-server.json)
 *
 * The PostgreSQL password is made at random and given to the commands as PGPASSWORD, never in a
 * URI: nothing printed or written holds it.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { buildInfo, parseFlags, snapshotCli } from './lib/cli.mjs';
import { check, countServer, expectedCounts } from './lib/counts.mjs';
import { loadSkew, machineEnd, machineInfo, measure, measureWithServers } from './lib/measure.mjs';
import { both, pythonExport, pythonImport } from './lib/migration.mjs';
import { EXPERIMENT, pinnedEnv, prepareSource, startServer, withDestination, workloadFromFlags, workloadLine } from './lib/mlflow.mjs';
import { startPostgres } from './lib/postgres.mjs';
import { ROOT, fmt, keepProcesses, log, run, tableLines, tempFolders, temp } from './lib/processes.mjs';

const CONTENDERS = ['sqlite', 'postgresql', 'server', 'migration', 'from-database'];
const args = parseFlags(new Set(['no-cache', 'keep']));
const workload = workloadFromFlags(args, { runs: 10, metrics: 5, steps: 2000, params: 20, tags: 10, artifactMb: 0.5, artifacts: 2 });
const stepsFactor = Number(args['steps-factor'] ?? 0);
const only = new Set(String(args.only ?? CONTENDERS.join(',')).split(','));
for (const c of only) if (!CONTENDERS.includes(c)) throw new Error(`unknown contender ${c} in --only (${CONTENDERS.join(', ')})`);
const trackshiftArgs = args['trackshift-args'] ? String(args['trackshift-args']).split(/\s+/).filter(Boolean) : [];
const useCache = !args['no-cache'];
const keep = Boolean(args.keep);
const outFile = args.out ? String(args.out) : join(ROOT, 'bench', 'results', 'sqlstore-from-server.json');

keepProcesses({ keep, prefix: 'trackshift-bench-', stopping: 'the servers and commands started' });

let CLI;
let venv;
let logDir;

/**
 * `trackshift copy SRC DST` from the source server (or, `from`, its database), measured with the
 * CPU the servers spent meanwhile
 */
function trackshiftCopy(label, source, dst, { env = {}, servers = {}, from = source.url } = {}) {
  log(`${label}: trackshift copy ${from} → ${dst}`);
  const argv = [CLI, 'copy', from, dst, '--state-dir', join(temp('state'), 'state'), '--json', ...trackshiftArgs];
  return measureWithServers(label, process.execPath, argv, { env, logDir, servers: { src: source, ...servers } });
}

/** `trackshift verify SRC DST` of the bench experiment: ok when equal (exit 0), else what its report ends with */
async function verify(label, src, dst, env = {}) {
  const m = await measure(`${label} verify`, process.execPath, [CLI, 'verify', src, dst, '--experiment', EXPERIMENT], { env, logDir, failureOutput: 'both' });
  const summary = m.code === 0 ? 'verify: equal' : `verify: differs (exit ${m.code})`;
  return { by: 'verify', ok: m.code === 0, summary, exitCode: m.code, seconds: m.seconds, ...(m.code === 0 ? {} : { report: m.stdout.trim().split('\n').slice(-12).join('\n') }) };
}

/**
 * The counts of a destination server against the workload (bench/lib/counts.mjs): for the Python
 * tools' copy, whose runs `verify` does not pair with the source's (it pairs runs by
 * trackshift's source tag, the run id, or name and start time).
 */
async function counted(url, w) {
  const { found, complete, missing } = check(await countServer(url), expectedCounts(w));
  return { by: 'counts', ok: complete, summary: complete ? 'counts: complete' : `counts: ${missing.join(', ')}`, found };
}

function row(contender, m, points, checked, extra = {}) {
  return { contender, seconds: m.seconds, pointsPerSecond: points / m.seconds, peakRssMb: m.peakRssMb, cpuSeconds: m.cpuSeconds, serverCpuSeconds: m.serverCpuSeconds, loadAverage: m.loadAverage, exitCode: m.code, check: checked, ...extra };
}

/**
 * The database contenders on one source server: into a copy of the empty SQLite database and
 * into a copy of the empty PostgreSQL database; `suffix` names them apart. With `sourceDir` (the
 * folder of the server's own database and artifacts), the source is read from there, not
 * through the server.
 */
async function databaseContenders(source, points, db, { suffix = '', sourceDir } = {}) {
  const rows = [];
  const from = sourceDir ? `sqlite:///${join(sourceDir, 'mlflow.db')}?artifacts=${join(sourceDir, 'artifacts')}` : source.url;
  const name = (engine) => `trackshift copy ${sourceDir ? 'sqlite:SRC ' : ''}→ ${engine}${suffix}`;
  if (only.has('sqlite')) {
    const dir = temp('dst-sqlite');
    copyFileSync(db.sqliteTemplate, join(dir, 'mlflow.db'));
    const uri = `sqlite:///${join(dir, 'mlflow.db')}?artifacts=${join(dir, 'artifacts')}`;
    const m = await trackshiftCopy(name('sqlite'), source, uri, { from });
    rows.push(row(name('sqlite'), m, points, await verify(name('sqlite'), source.url, uri)));
  }
  if (only.has('postgresql')) {
    const database = `dst_${rows.length}_${Date.now()}`;
    await db.postgres.createDatabase(database, db.postgresTemplate);
    const uri = `${db.postgres.uri(database)}?artifacts=${join(temp('dst-postgresql'), 'artifacts')}`;
    const m = await trackshiftCopy(name('postgresql'), source, uri, { env: db.postgres.env, from });
    rows.push(row(name('postgresql'), m, points, await verify(name('postgresql'), source.url, uri, db.postgres.env)));
  }
  return rows;
}

/** Empty MLflow databases at the pinned MLflow's schema: a SQLite file, and a PostgreSQL database on a server started here. */
async function emptyDatabases() {
  const db = {};
  const mlflow = join(venv, 'bin', 'mlflow');
  if (only.has('sqlite')) {
    db.sqliteTemplate = join(temp('template'), 'mlflow.db');
    await run(mlflow, ['db', 'upgrade', `sqlite:///${db.sqliteTemplate}`], { logFile: join(logDir, 'db-upgrade-sqlite.log') });
  }
  if (only.has('postgresql')) {
    db.postgres = await startPostgres();
    db.postgresTemplate = 'mlflow_template';
    await db.postgres.createDatabase(db.postgresTemplate);
    await run(mlflow, ['db', 'upgrade', db.postgres.uri(db.postgresTemplate, 'psycopg2')], { env: db.postgres.env, logFile: join(logDir, 'db-upgrade-postgresql.log') });
  }
  return db;
}

async function main() {
  CLI = snapshotCli();
  venv = pinnedEnv();
  const migrationVenv = only.has('migration') ? pinnedEnv('requirements-migration.txt') : undefined;
  const machine = { ...machineInfo(), mlflow: basename(venv) };
  const work = temp('work');
  logDir = join(work, 'logs');
  mkdirSync(logDir, { recursive: true });
  const points = workload.runs * workload.metrics * workload.steps;
  log(`workload: ${workloadLine(workload)}`);
  const results = { workload, points, machine, trackshift: buildInfo(), trackshiftArgs, at: new Date().toISOString(), rows: [] };
  const db = await emptyDatabases();

  const filled = await prepareSource(venv, workload, 'server', { useCache });
  results.source = { filledSeconds: filled.summary.seconds, cached: filled.summary.cached ?? null };
  const source = await startServer(venv, filled.dir, 'source');
  try {
    results.rows.push(...(await databaseContenders(source, points, db)));
    if (only.has('from-database')) results.rows.push(...(await databaseContenders(source, points, db, { sourceDir: filled.dir })));
    if (only.has('server')) {
      results.rows.push(
        await withDestination(venv, 'trackshift-server', work, async (dst) => {
          const m = await trackshiftCopy('trackshift copy → server', source, dst.url, { servers: { dst } });
          return row('trackshift copy → server', m, points, await verify('server', source.url, dst.url));
        }, { keep }),
      );
    }
    if (only.has('migration')) {
      results.rows.push(
        await withDestination(venv, 'migration', work, async (dst) => {
          const staging = join(temp('migration-export'), EXPERIMENT);
          const exportM = await pythonExport(migrationVenv, 'mlflow-migration export', source.url, staging, { logDir, servers: { src: source } });
          const importM = await pythonImport(migrationVenv, 'mlflow-migration import', staging, dst, { logDir, servers: { dst } });
          return row('mlflow-migration export+import', both(exportM, importM), points, await counted(dst.url, workload), {
            exportSeconds: exportM.seconds,
            importSeconds: importM.seconds,
            stagedMb: exportM.stagedBytes / 2 ** 20,
          });
        }, { keep }),
      );
    }
  } finally {
    await source.stop();
  }
  saveResults(results);

  if (stepsFactor > 1) {
    const bigger = { ...workload, steps: workload.steps * stepsFactor };
    const biggerPoints = bigger.runs * bigger.metrics * bigger.steps;
    log(`steps ×${stepsFactor}: ${workloadLine(bigger)}`);
    const filled2 = await prepareSource(venv, bigger, 'server', { useCache });
    const source2 = await startServer(venv, filled2.dir, `steps ×${stepsFactor} source`);
    try {
      const rows = await databaseContenders(source2, biggerPoints, db, { suffix: ` (steps ×${stepsFactor})` });
      results.stepsFactor = { factor: stepsFactor, workload: bigger, points: biggerPoints, source: { filledSeconds: filled2.summary.seconds, cached: filled2.summary.cached ?? null }, rows };
    } finally {
      await source2.stop();
    }
  }
  await db.postgres?.stop();

  // ---- print ----
  const migration = results.rows.find((r) => r.contender.startsWith('mlflow-migration'));
  for (const r of results.rows) if (migration) r.speedup = migration.seconds / r.seconds;
  console.log(`\nworkload: ${workloadLine(workload)}`);
  console.log(machineEnd(machine));
  console.log(`trackshift ${results.trackshift.commit}${results.trackshift.srcChanged ? ' (src/ has uncommitted changes)' : ''}, built ${results.trackshift.built}; MLflow servers: SQLite, served artifacts, 1 uvicorn worker`);
  console.log(`source: ${results.source.cached ? `the cached fill ${results.source.cached} (copied)` : `filled in ${results.source.filledSeconds} s`}`);
  const allRows = [...results.rows, ...(results.stepsFactor?.rows ?? [])];
  const head = ['contender', 'points', 'seconds', '× mlflow-migration', 'points/s', 'peak RSS MB', 'CPU s', 'src CPU s', 'load', 'destination'];
  const cells = allRows.map((r) => [
    r.contender,
    fmt(r.contender.includes('(steps ×') ? results.stepsFactor.points : points),
    fmt(r.seconds, 1),
    r.speedup === undefined ? '–' : `${fmt(r.speedup, 1)}×`,
    fmt(r.pointsPerSecond),
    fmt(r.peakRssMb),
    fmt(r.cpuSeconds, 1),
    fmt(r.serverCpuSeconds?.src, 1),
    fmt(r.loadAverage, 1),
    r.exitCode !== 0 ? `exit ${r.exitCode}` : r.check.summary,
  ]);
  console.log('');
  for (const l of tableLines(head, cells)) console.log(`  ${l}`);
  const skew = loadSkew(allRows);
  if (skew) console.log(`  ${skew}`);
  if (migration) console.log(`  mlflow-migration: export ${fmt(migration.exportSeconds, 1)} s + import ${fmt(migration.importSeconds, 1)} s, ${fmt(migration.stagedMb)} MB staged on disk`);
  const best = results.rows.filter((r) => r.contender.includes('→ sqlite') || r.contender.includes('→ postgresql'));
  if (migration && best.length) console.log(`  goal: database destinations ≥ 10× mlflow-migration end to end: ${best.map((r) => `${r.contender.replace('trackshift copy ', '')} ${fmt(r.speedup, 1)}×`).join(', ')}`);
  console.log(`  goal: trackshift peak RSS < 200 MB${stepsFactor > 1 ? `, flat when steps ×${stepsFactor}` : ''}: ${allRows.filter((r) => r.contender.startsWith('trackshift')).map((r) => `${fmt(r.peakRssMb)} MB`).join(', ')}`);
  for (const r of allRows) if (r.check.report) console.log(`\n  verify of ${r.contender} ends with:\n${r.check.report.replace(/^/gm, '    ')}`);
  if (keep) console.log(`\nkept: ${tempFolders().join(' ')}`);
  saveResults(results);
  console.log(`\nwritten: ${outFile.replace(`${ROOT}/`, '')}`);
  if (allRows.some((r) => r.exitCode !== 0 || !r.check.ok)) process.exitCode = 1;
}

function saveResults(results) {
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
