#!/usr/bin/env node
/**
 * trackshift against the Python mlflow-migration tools (the maintained fork of
 * mlflow-export-import) and against a raw loader (the ceiling of the destination server), in
 * one invocation on one machine (issue 7). Only the ratios mean much: the machines are shared.
 *
 *   npm run build && node bench/copy.mjs [workload flags] [--mode copy|export|import|mlruns|all] [--memory-check]
 *
 * Workload (bench/fill_workload.py, seeded, the real mlflow client):
 *   --runs 100 --metrics 10 --steps 2000 --params 50 --tags 20 --artifact-mb 5 --artifacts 5 --seed 7
 *   (2,000,000 metric points; --artifact-mb is per run, split over --artifacts files)
 *
 * Modes (--mode, comma-separated; default copy):
 *   copy    server → server. `trackshift copy SRC DST`; `mlflow-migration-export-experiment` then
 *           `mlflow-migration-import-experiment` (their staging on disk included); the raw loader.
 *   export  server → folder. `trackshift export SRC DIR` (a bundle) against the export half.
 *   import  folder → server. `trackshift import DIR DST` against the import half, each from its own
 *           export of the same source (made untimed when the export mode did not run first).
 *   mlruns  mlruns file store (written by the same workload generator) → server. `trackshift copy
 *           mlruns:DIR DST` against the Python tools' way of reading one: they have no reader of
 *           their own and fail on a file: tracking URI ('FileStore' object has no attribute
 *           'get_host_creds'), so the folder is served by `mlflow server --backend-store-uri DIR`
 *           (its start not timed), export-experiment reads it, import-experiment writes the
 *           destination; and the raw loader's ceiling.
 *   all     the four. The Python export and import halves are run once (in copy) and reported
 *           again in export and import: the same commands on the same data.
 *
 * Other flags:
 *   --memory-check        also copy, with trackshift only, a workload with 10× the steps per metric
 *                         (--steps-factor N for another factor) and --memory-runs runs (default
 *                         runs ÷ factor, at least 8, so that the points total stays about the same
 *                         and several runs are in flight); both peak RSS values are shown.
 *   --only trackshift,python,raw   the contenders to run (default all three)
 *   --raw-concurrency 1,2,4,8,16  the raw loader's levels: each is probed on --raw-probe-runs runs
 *                         (default runs ÷ 5, at least 10) into a fresh server; the best is then
 *                         run on the whole workload into another fresh server and reported
 *   --trackshift-args "…" extra flags for every trackshift command (e.g. "--workers 8")
 *   --server-workers 1    uvicorn workers of every MLflow server (the test harness uses 1)
 *   --fill-threads 8      writer threads of the filling
 *   --no-cache            fill afresh and keep nothing; otherwise a filled source (database and
 *                         artifacts, or the mlruns folder) is kept under
 *                         ~/.cache/trackshift/bench/<hash of workload and generator> and copied
 *                         for the next invocation (the output says which)
 *   --profile             run trackshift with node --cpu-prof; the profiles go to
 *                         bench/results/profiles/ and a summary (self time by module) is printed
 *   --keep                keep the temporary folders (server logs, exports) and print where
 *   --out FILE            the JSON results (default bench/results/copy.json)
 *
 * Every MLflow server: SQLite backend, artifacts served by the server (--serve-artifacts), a
 * free loopback port, a temporary folder, from the pinned environment (scripts/python-env.sh);
 * each contender writes into a fresh one; all are stopped at the end, on error and on Ctrl-C.
 * Peak RSS is that of the measured process tree (the node process for trackshift; each Python
 * command; the loader): the largest of GNU time's maximum RSS and the sums of VmRSS over the tree
 * sampled every 100 ms. Every destination is checked through its REST API afterwards (runs,
 * params, tags, every metric point, artifact files and bytes): a contender that did not copy
 * everything gets a loud warning in the table and complete: false in the JSON. The table also
 * has the CPU seconds of each contender and of the source and destination servers while it ran
 * (a destination busy as long as the wall time is the bottleneck), and the mean 1-minute load
 * average meanwhile (the machines are shared: a warning says when it differed between
 * contenders); the JSON has the requests each server received, per endpoint.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { buildInfo, BUILT_CLI, parseFlags, snapshotCli } from './lib/cli.mjs';
import { WORKLOAD_PARAM, WORKLOAD_TAG, check, countServer, expectedCounts } from './lib/counts.mjs';
import { loadSkew, machineEnd, machineInfo, measureWithServers as measure } from './lib/measure.mjs';
import { both, migrationEnv, pythonExport as exportExperiment, pythonImport as importExperiment } from './lib/migration.mjs';
import { EXPERIMENT, pinnedEnv, prepareSource as fillOrCached, startServer as startMlflow, withDestination as freshDestination, workloadFromFlags, workloadLine } from './lib/mlflow.mjs';
import { ROOT, dirBytes, fmt, groups, keepProcesses, killGroup, log, mb, run, tableLines, tempFolders, temp, walkFiles } from './lib/processes.mjs';

// the CLI run: a copy of dist/ taken at the start (others rebuild dist/ while this runs)
let CLI = BUILT_CLI;
const RAW = join(ROOT, 'bench', 'raw-loader.mjs');

// ---- flags ----

const BOOLEAN_FLAGS = new Set(['memory-check', 'no-cache', 'profile', 'keep']);
const args = parseFlags(BOOLEAN_FLAGS);
const num = (name, fallback) => (args[name] === undefined ? fallback : Number(args[name]));
const workload = workloadFromFlags(args, { runs: 100, metrics: 10, steps: 2000, params: 50, tags: 20, artifactMb: 5, artifacts: 5 });
const modes = String(args.mode ?? 'copy').split(',').flatMap((m) => (m === 'all' ? ['copy', 'export', 'import', 'mlruns'] : [m]));
for (const m of modes) if (!['copy', 'export', 'import', 'mlruns'].includes(m)) throw new Error(`unknown --mode ${m}`);
const stepsFactor = args['steps-factor'] !== undefined ? Number(args['steps-factor']) : args['memory-check'] ? 10 : 0;
const only = new Set(String(args.only ?? 'trackshift,python,raw').split(','));
const rawLevels = String(args['raw-concurrency'] ?? '1,2,4,8,16').split(',').map(Number);
const rawProbeRuns = Math.min(workload.runs, num('raw-probe-runs', Math.max(10, Math.ceil(workload.runs / 5))));
const trackshiftArgs = args['trackshift-args'] ? String(args['trackshift-args']).split(/\s+/).filter(Boolean) : [];
const serverWorkers = num('server-workers', 1);
const fillThreads = num('fill-threads', 8);
const useCache = !args['no-cache'];
const keep = Boolean(args.keep);
const profile = Boolean(args.profile);
const outFile = args.out ? String(args.out) : join(ROOT, 'bench', 'results', 'copy.json');

// ---- processes: everything started is stopped at the end, on error and on Ctrl-C ----

keepProcesses({ keep, prefix: 'trackshift-bench-', stopping: 'the servers and commands started' });

// ---- MLflow servers (bench/lib/mlflow.mjs) with this invocation's flags ----

let venv;
let migrationVenv;
const startServer = (dir, label, { backendStoreUri } = {}) => startMlflow(venv, dir, label, { workers: serverWorkers, backendStoreUri });
const withDestination = (label, ctx, fn) => freshDestination(venv, label, ctx.work, fn, { workers: serverWorkers, keep });
const prepareSource = (w, kind) => fillOrCached(venv, w, kind, { useCache, fillThreads, workers: serverWorkers });

// ---- checking what a contender wrote ----

const lineCount = (file) => {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (const line of text.split('\n')) if (line.trim()) n++;
  return n;
};

/** What a trackshift bundle holds: complete runs (run.json), params, tags, points (lines), files. */
function countBundle(dir) {
  const found = { runs: 0, params: 0, tags: 0, points: 0, artifactFiles: 0, artifactBytes: 0 };
  const experiments = join(dir, 'experiments');
  for (const exp of existsSync(experiments) ? readdirSync(experiments) : []) {
    const runsDir = join(experiments, exp, 'runs');
    for (const runDir of existsSync(runsDir) ? readdirSync(runsDir) : []) {
      const file = join(runsDir, runDir, 'run.json');
      if (!existsSync(file)) continue;
      const r = JSON.parse(readFileSync(file, 'utf8'));
      found.runs++;
      found.params += Object.keys(r.params ?? {}).filter((k) => WORKLOAD_PARAM.test(k)).length;
      found.tags += Object.keys(r.tags ?? {}).filter((k) => WORKLOAD_TAG.test(k)).length;
      // float series only: version 2 lists `series` (every type), version 1 `metrics`
      for (const m of r.series?.filter((s) => s.type === 'float') ?? r.metrics ?? []) found.points += lineCount(join(runsDir, runDir, m.file));
      for (const f of walkFiles(join(runsDir, runDir, 'artifacts'))) {
        found.artifactFiles++;
        found.artifactBytes += statSync(f).size;
      }
    }
  }
  return found;
}

/** What an mlflow-migration export-experiment folder holds: <run id>/run.json and <run id>/artifacts/. */
function countEximExperiment(dir) {
  const found = { runs: 0, params: 0, tags: 0, points: 0, artifactFiles: 0, artifactBytes: 0 };
  for (const e of existsSync(dir) ? readdirSync(dir, { withFileTypes: true }) : []) {
    const file = join(dir, e.name, 'run.json');
    if (!e.isDirectory() || !existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, 'utf8'));
    const data = r.mlflow ?? r;
    found.runs++;
    found.params += Object.keys(data.params ?? {}).filter((k) => WORKLOAD_PARAM.test(k)).length;
    found.tags += Object.keys(data.tags ?? {}).filter((k) => WORKLOAD_TAG.test(k)).length;
    for (const history of Object.values(data.metrics ?? {})) found.points += history.length;
    for (const f of walkFiles(join(dir, e.name, 'artifacts'))) {
      found.artifactFiles++;
      found.artifactBytes += statSync(f).size;
    }
  }
  return found;
}

// ---- contenders ----

function row(name, m, w, validation, extra = {}) {
  const points = w.runs * w.metrics * w.steps;
  return {
    contender: name,
    seconds: m.seconds,
    runsPerSecond: w.runs / m.seconds,
    pointsPerSecond: points / m.seconds,
    peakRssMb: m.peakRssMb,
    cpuSeconds: m.cpuSeconds,
    loadAverage: m.loadAverage,
    serverCpuSeconds: m.serverCpuSeconds,
    serverRequests: m.serverRequests,
    exitCode: m.code,
    complete: validation.complete && m.code === 0,
    missing: [...(m.code === 0 ? [] : [`exit code ${m.code}`]), ...validation.missing],
    found: validation.found,
    ...extra,
  };
}

const cliArgs = (argv) => (profile ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'results', 'profiles')}`, CLI, ...argv] : [CLI, ...argv]);

async function trackshift(label, verb, src, dst, ctx, servers) {
  const out = temp('ts');
  log(`${label}: trackshift ${verb} ${src} ${dst}`);
  const before = profile ? profileFiles() : [];
  const m = await measure(label, process.execPath, cliArgs([verb, src, dst, '--state-dir', join(out, 'state'), '--json', ...trackshiftArgs]), { logDir: ctx.logDir, servers });
  if (profile) m.profile = summarizeProfiles(profileFiles().filter((f) => !before.includes(f)));
  try {
    m.report = JSON.parse(m.stdout);
  } catch {
    // not JSON: the exit code says what happened
  }
  return m;
}

const pythonExport = (label, trackingUri, outDir, ctx, servers) => exportExperiment(migrationVenv, label, trackingUri, outDir, { logDir: ctx.logDir, servers });
const pythonImport = (label, inDir, dst, ctx, servers) => importExperiment(migrationVenv, label, inDir, dst, { logDir: ctx.logDir, servers });

/** The raw loader: probes of each concurrency level on part of the runs, then the best on all of them. */
async function ceiling(source, w, expected, ctx) {
  const loaderArgs = ['--sqlite', join(source.dir, 'mlflow.db'), '--artifacts', join(source.dir, 'artifacts'), '--experiment', EXPERIMENT];
  const probes = [];
  let best;
  for (const c of rawLevels) {
    const probe = await withDestination(`raw-probe-c${c}`, ctx, async (dst) => {
      log(`raw loader probe: ${rawProbeRuns} runs at concurrency ${c}`);
      const m = await measure(`raw-probe-c${c}`, process.execPath, [RAW, ...loaderArgs, '--dst', dst.url, '--concurrency', String(c), '--runs', String(rawProbeRuns)], { logDir: ctx.logDir, servers: { dst } });
      const r = m.code === 0 ? JSON.parse(m.stdout.trim().split('\n').pop()) : undefined;
      return { concurrency: c, ok: Boolean(r), pointsPerSecond: r ? r.points / r.writeSeconds : 0, writeSeconds: r?.writeSeconds, retries: r?.retries };
    });
    probes.push(probe);
    log(`  concurrency ${c}: ${probe.ok ? `${fmt(probe.pointsPerSecond)} points/s, ${probe.retries} retries` : 'failed'}`);
    if (probe.ok && (!best || probe.pointsPerSecond > best.pointsPerSecond)) best = probe;
    // two levels in a row below the best so far: higher ones will not do better
    const lastTwo = probes.slice(-2);
    if (best && lastTwo.length === 2 && lastTwo.every((p) => p !== best && (!p.ok || p.pointsPerSecond < best.pointsPerSecond)) && probes.indexOf(best) < probes.length - 2) break;
  }
  if (!best) throw new Error('the raw loader failed at every concurrency level');
  return withDestination('raw', ctx, async (dst) => {
    log(`raw loader: all ${w.runs} runs at concurrency ${best.concurrency}`);
    const m = await measure('raw', process.execPath, [RAW, ...loaderArgs, '--dst', dst.url, '--concurrency', String(best.concurrency)], { logDir: ctx.logDir, servers: { dst } });
    const r = m.code === 0 ? JSON.parse(m.stdout.trim().split('\n').pop()) : undefined;
    // the loader's own timing: its writing, without its untimed reading of the source
    const timed = { ...m, seconds: r?.writeSeconds ?? m.seconds };
    const validation = check(await countServer(dst.url), expected);
    return row(`raw loader (c=${best.concurrency})`, timed, w, validation, { concurrency: best.concurrency, loadSeconds: r?.loadSeconds, totalSeconds: m.seconds, retries: r?.retries, requests: r?.requests, probes, probeRuns: rawProbeRuns });
  });
}

// ---- profiles ----

const profileFiles = () => {
  const d = join(ROOT, 'bench', 'results', 'profiles');
  return existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(d, f)) : [];
};
/** Self time by module and the heaviest functions of V8 CPU profiles. */
function summarizeProfiles(files) {
  const byModule = new Map();
  const byFunction = new Map();
  let total = 0;
  let idle = 0;
  for (const file of files) {
    const p = JSON.parse(readFileSync(file, 'utf8'));
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const selfUs = new Map();
    for (let i = 0; i < p.samples.length; i++) selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
    for (const [id, us] of selfUs) {
      const cf = nodes.get(id).callFrame;
      if (cf.functionName === '(idle)') {
        idle += us;
        continue;
      }
      const url = cf.url.replace(`file://${ROOT}/`, '');
      const module = !url
        ? cf.functionName || '(native)'
        : url.startsWith('node:')
          ? 'node: internals'
          : url.includes('node_modules/')
            ? `node_modules/${url.split('node_modules/').pop().split('/')[0]}`
            : url.split('/').slice(0, 3).join('/');
      byModule.set(module, (byModule.get(module) ?? 0) + us);
      const fn = `${cf.functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
      total += us;
    }
  }
  const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({ name, seconds: us / 1e6, share: us / total }));
  return { files: files.map((f) => f.replace(`${ROOT}/`, '')), busySeconds: total / 1e6, idleSeconds: idle / 1e6, byModule: top(byModule, 12), byFunction: top(byFunction, 15) };
}

// ---- the table ----

function printTable(title, rows, notes = []) {
  const head = ['contender', 'seconds', 'runs/s', 'points/s', 'peak RSS MB', 'CPU s', 'src CPU s', 'dst CPU s', 'load'];
  const cells = rows.map((r) => [
    r.contender,
    fmt(r.seconds, 1),
    fmt(r.runsPerSecond, 2),
    fmt(r.pointsPerSecond),
    fmt(r.peakRssMb),
    fmt(r.cpuSeconds, 1),
    fmt(r.serverCpuSeconds?.src, 1),
    fmt(r.serverCpuSeconds?.dst, 1),
    fmt(r.loadAverage, 1),
  ]);
  console.log(`\n${title}`);
  for (const l of tableLines(head, cells)) console.log(`  ${l}`);
  for (const r of rows) if (!r.complete) console.log(`  !!! WARNING: ${r.contender} did NOT copy everything: ${r.missing.join(', ')} — its numbers do not count`);
  const skew = loadSkew(rows);
  if (skew) console.log(`  ${skew}`);
  for (const n of notes) console.log(`  ${n}`);
}

function ratios(rows) {
  const ts = rows.find((r) => r.contender.startsWith('trackshift'));
  const py = rows.find((r) => r.contender.startsWith('mlflow-migration'));
  const raw = rows.find((r) => r.contender.startsWith('raw loader'));
  const out = {};
  const notes = [];
  if (ts && py) {
    out.speedup = py.seconds / ts.seconds;
    notes.push(`trackshift / mlflow-migration: ${out.speedup.toFixed(2)}× faster (goal ≥ 5×)${ts.complete && py.complete ? '' : ' — NOT VALID, a contender is incomplete'}`);
  }
  if (ts && raw) {
    out.fractionOfCeiling = raw.seconds / ts.seconds;
    notes.push(`trackshift / raw ceiling: ${(out.fractionOfCeiling * 100).toFixed(0)}% of the ceiling (goal ≥ 80%)${ts.complete && raw.complete ? '' : ' — NOT VALID, a contender is incomplete'}`);
  }
  if (ts) notes.push(`trackshift peak RSS: ${fmt(ts.peakRssMb)} MB (goal < 200 MB)`);
  return { ...out, notes };
}

// ---- main ----

async function main() {
  CLI = snapshotCli();
  venv = pinnedEnv();
  if (only.has('python')) migrationVenv = pinnedEnv('requirements-migration.txt');
  const machine = { ...machineInfo(), mlflow: basename(venv) };
  const trackshiftBuild = buildInfo();
  const work = temp('work');
  const ctx = { work, logDir: join(work, 'logs') };
  mkdirSync(ctx.logDir, { recursive: true });
  const points = workload.runs * workload.metrics * workload.steps;
  log(`workload: ${workloadLine(workload)}`);
  const results = { workload, points, modes, machine, trackshift: trackshiftBuild, serverWorkers, trackshiftArgs, at: new Date().toISOString(), results: {} };

  const needServerSource = modes.some((m) => m !== 'mlruns') || (modes.includes('mlruns') && only.has('raw'));
  let source;
  let sourceServer;
  let rawRow;
  let pythonHalves; // { exportM, importM, dir } from the copy mode, reused by export and import
  if (needServerSource) {
    source = await prepareSource(workload, 'server');
    results.source = { filledSeconds: source.summary.seconds, cached: source.summary.cached ?? null };
    sourceServer = await startServer(source.dir, 'source');
  }
  const expected = expectedCounts(workload);
  const getCeiling = async () => (rawRow ??= await ceiling(source, workload, expected, ctx));

  try {
    for (const mode of modes) {
      const rows = [];
      if (mode === 'copy') {
        if (only.has('trackshift')) {
          rows.push(
            await withDestination('trackshift-copy', ctx, async (dst) => {
              const m = await trackshift('trackshift copy', 'copy', sourceServer.url, dst.url, ctx, { src: sourceServer, dst });
              return row('trackshift copy', m, workload, check(await countServer(dst.url), expected), { profile: m.profile });
            }),
          );
        }
        if (only.has('python')) {
          rows.push(
            await withDestination('python-copy', ctx, async (dst) => {
              const dir = join(temp('py-export'), EXPERIMENT);
              const exportM = await pythonExport('mlflow-migration export', sourceServer.url, dir, ctx, { src: sourceServer });
              const importM = await pythonImport('mlflow-migration import', dir, dst, ctx, { dst });
              pythonHalves = { exportM, importM, dir };
              return row('mlflow-migration export+import', both(exportM, importM), workload, check(await countServer(dst.url), expected), {
                exportSeconds: exportM.seconds,
                importSeconds: importM.seconds,
                stagedMb: mb(exportM.stagedBytes),
              });
            }),
          );
        }
        if (only.has('raw')) rows.push(await getCeiling());
      }

      if (mode === 'export') {
        if (only.has('trackshift')) {
          const dir = join(temp('ts-bundle'), 'bundle');
          const m = await trackshift('trackshift export', 'export', sourceServer.url, dir, ctx, { src: sourceServer });
          results.bundleDir = dir;
          rows.push(row('trackshift export (bundle)', m, workload, check(countBundle(dir), expected), { stagedMb: mb(dirBytes(dir)), profile: m.profile }));
        }
        if (only.has('python')) {
          let exportM = pythonHalves?.exportM;
          let dir = pythonHalves?.dir;
          if (!exportM) {
            dir = join(temp('py-export'), EXPERIMENT);
            exportM = await pythonExport('mlflow-migration export', sourceServer.url, dir, ctx, { src: sourceServer });
            pythonHalves = { exportM, dir };
          }
          rows.push(row('mlflow-migration export', exportM, workload, check(countEximExperiment(dir), expected), { stagedMb: mb(exportM.stagedBytes), reused: Boolean(pythonHalves.importM) }));
        }
      }

      if (mode === 'import') {
        if (only.has('trackshift')) {
          let bundle = results.bundleDir;
          if (!bundle) {
            bundle = join(temp('ts-bundle'), 'bundle');
            log('import: making the bundle first (untimed)');
            await run(process.execPath, [CLI, 'export', sourceServer.url, bundle, '--state-dir', join(temp('ts'), 'state'), '--json'], { logFile: join(ctx.logDir, 'untimed-export.log') });
          }
          rows.push(
            await withDestination('trackshift-import', ctx, async (dst) => {
              const m = await trackshift('trackshift import', 'import', bundle, dst.url, ctx, { dst });
              return row('trackshift import (bundle)', m, workload, check(await countServer(dst.url), expected), { profile: m.profile });
            }),
          );
        }
        if (only.has('python')) {
          if (pythonHalves?.importM) {
            // the import half of the copy mode's Python contender: its destination was checked there
            const copied = results.results.copy.rows.find((r) => r.contender.startsWith('mlflow-migration'));
            rows.push({ ...row('mlflow-migration import', pythonHalves.importM, workload, copied), reused: true });
          } else {
            let dir = pythonHalves?.dir;
            if (!dir) {
              dir = join(temp('py-export'), EXPERIMENT);
              log('import: making the mlflow-migration export first (untimed)');
              await run(join(migrationVenv, 'bin', 'mlflow-migration-export-experiment'), ['--experiment', EXPERIMENT, '--output-dir', dir], { env: migrationEnv(sourceServer.url), logFile: join(ctx.logDir, 'untimed-py-export.log') });
            }
            rows.push(
              await withDestination('python-import', ctx, async (dst) => {
                const m = await pythonImport('mlflow-migration import', dir, dst, ctx, { dst });
                return row('mlflow-migration import', m, workload, check(await countServer(dst.url), expected));
              }),
            );
          }
        }
        if (only.has('raw')) rows.push({ ...(await getCeiling()), reused: true });
      }

      if (mode === 'mlruns') {
        const mlrunsSource = await prepareSource(workload, 'mlruns');
        const mlruns = join(mlrunsSource.dir, 'mlruns');
        results.mlrunsSource = { filledSeconds: mlrunsSource.summary.seconds, cached: mlrunsSource.summary.cached ?? null };
        if (only.has('trackshift')) {
          rows.push(
            await withDestination('trackshift-mlruns', ctx, async (dst) => {
              const m = await trackshift('trackshift copy mlruns', 'copy', `mlruns:${mlruns}`, dst.url, ctx, { dst });
              return row('trackshift copy (from mlruns)', m, workload, check(await countServer(dst.url), expected), { profile: m.profile });
            }),
          );
        }
        if (only.has('python')) {
          rows.push(
            await withDestination('python-mlruns', ctx, async (dst) => {
              const dir = join(temp('py-export-mlruns'), EXPERIMENT);
              // mlflow-migration reads through a tracking server only (with a file: tracking URI it
              // fails: 'FileStore' object has no attribute 'get_host_creds'): the folder is served
              // by `mlflow server --backend-store-uri DIR`, started before the clock starts
              const served = await startServer(join(ctx.work, 'mlruns-server'), 'mlruns', { backendStoreUri: mlruns });
              let exportM;
              try {
                exportM = await pythonExport('mlflow-migration export (mlruns)', served.url, dir, ctx, { src: served });
              } finally {
                await served.stop();
              }
              const importM = await pythonImport('mlflow-migration import (mlruns)', dir, dst, ctx, { dst });
              return row('mlflow-migration export+import (served mlruns)', both(exportM, importM), workload, check(await countServer(dst.url), expected), {
                exportSeconds: exportM.seconds,
                importSeconds: importM.seconds,
                stagedMb: mb(exportM.stagedBytes),
              });
            }),
          );
        }
        if (only.has('raw')) rows.push({ ...(await getCeiling()), reused: true });
      }
      const r = ratios(rows);
      results.results[mode] = { rows, ...r };
      saveResults(results, outFile, { partial: true });
      for (const line of [...rows.map((x) => `${x.contender}: ${fmt(x.seconds, 1)} s, peak RSS ${fmt(x.peakRssMb)} MB`), ...r.notes]) log(`  ${mode}: ${line}`);
    }

    if (stepsFactor > 1 && only.has('trackshift')) {
      const w2 = { ...workload, steps: workload.steps * stepsFactor, runs: Math.min(workload.runs, num('memory-runs', Math.max(8, Math.ceil(workload.runs / stepsFactor)))) };
      const points2 = w2.runs * w2.metrics * w2.steps;
      log(`memory check: ${workloadLine(w2)}`);
      await sourceServer?.stop();
      sourceServer = undefined;
      const source2 = await prepareSource(w2, 'server');
      const server2 = await startServer(source2.dir, 'memory-check source');
      try {
        const expected2 = expectedCounts(w2);
        const r2 = await withDestination('trackshift-memory', ctx, async (dst) => {
          const m = await trackshift(`trackshift copy (steps ×${stepsFactor})`, 'copy', server2.url, dst.url, ctx, { src: server2, dst });
          return row(`trackshift copy (steps ×${stepsFactor})`, m, w2, check(await countServer(dst.url), expected2), { profile: m.profile });
        });
        const base = results.results.copy?.rows.find((r) => r.contender === 'trackshift copy');
        results.memory = { workload: w2, points: points2, row: r2, baselinePeakRssMb: base?.peakRssMb, source: { filledSeconds: source2.summary.seconds, cached: source2.summary.cached ?? null } };
        saveResults(results, outFile, { partial: true });
      } finally {
        await server2.stop();
      }
    }
  } finally {
    await sourceServer?.stop();
  }

  // ---- print ----
  console.log(`\nworkload: ${workloadLine(workload)}`);
  console.log(machineEnd(machine));
  console.log(`trackshift ${trackshiftBuild.commit}${trackshiftBuild.srcChanged ? ' (src/ has uncommitted changes)' : ''}, built ${trackshiftBuild.built}; MLflow servers: SQLite, served artifacts, ${serverWorkers} uvicorn worker(s)`);
  if (results.source) console.log(`source: ${results.source.cached ? `the cached fill ${results.source.cached} (copied)` : `filled in ${results.source.filledSeconds} s`}`);
  const titles = {
    copy: 'copy, server → server',
    export: 'export, server → folder (trackshift bundle / mlflow-migration folder)',
    import: 'import, folder → server',
    mlruns: 'mlruns folder → server',
  };
  for (const [mode, res] of Object.entries(results.results)) {
    const notes = [...res.notes];
    const raw = res.rows.find((r) => r.probes);
    if (raw) notes.push('raw loader: holds every request body of the workload in memory, so its RSS is not comparable');
    if (raw) notes.push(`raw loader: concurrency probes on ${raw.probeRuns} runs: ${raw.probes.map((p) => `${p.concurrency}: ${p.ok ? fmt(p.pointsPerSecond) : 'failed'}`).join(', ')} points/s; best ${raw.concurrency}; its reading of the source (${fmt(raw.loadSeconds, 1)} s) is not counted`);
    const py = res.rows.find((r) => r.exportSeconds !== undefined);
    if (py) notes.push(`mlflow-migration: export ${fmt(py.exportSeconds, 1)} s + import ${fmt(py.importSeconds, 1)} s, ${fmt(py.stagedMb)} MB staged on disk`);
    if (res.rows.some((r) => r.reused)) notes.push('rows marked reused in the JSON are the same measurement as in another mode of this invocation');
    printTable(titles[mode], res.rows, notes);
  }
  if (results.memory) {
    const base = results.memory.baselinePeakRssMb;
    printTable(`memory: trackshift copy of ${workloadLine(results.memory.workload)}`, [results.memory.row], [
      `peak RSS ${fmt(base)} MB at ${fmt(workload.steps)} steps per metric, ${fmt(results.memory.row.peakRssMb)} MB at ${fmt(results.memory.workload.steps)} (goal: under 200 MB, not growing)`,
    ]);
  }
  for (const [mode, res] of Object.entries(results.results)) {
    for (const r of res.rows) {
      if (!r.profile) continue;
      console.log(`\nCPU profile of ${r.contender} (${mode}): busy ${fmt(r.profile.busySeconds, 1)} s, idle (waiting on servers or disk) ${fmt(r.profile.idleSeconds, 1)} s, of ${fmt(r.seconds, 1)} s wall; self time of the busy part:`);
      for (const e of r.profile.byModule) console.log(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
      console.log('  heaviest functions (self time):');
      for (const e of r.profile.byFunction.slice(0, 10)) console.log(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
    }
  }
  if (keep) console.log(`\nkept: ${tempFolders().join(' ')}`);
  saveResults(results, outFile, { partial: false });
  console.log(`\nwritten: ${outFile.replace(`${ROOT}/`, '')}`);
  const incomplete = [...Object.values(results.results).flatMap((r) => r.rows), ...(results.memory ? [results.memory.row] : [])].filter((r) => !r.complete);
  if (incomplete.length) process.exitCode = 1;
}

/**
 * The JSON, written after every mode too (`partial: true` until the end), so that a run cut
 * off part way — these runs take an hour and more — keeps what it measured.
 */
function saveResults(results, file, { partial }) {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...results, partial }, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
}).finally(async () => {
  // servers still up after an error
  for (const pgid of groups) killGroup(pgid, 'SIGTERM');
});
