/**
 * The MLflow side of the benchmarks that copy from an MLflow server: the pinned Python
 * environments, MLflow servers (SQLite backend, artifacts served, a free loopback port, a
 * temporary folder, no job runner), and a source filled with bench/fill_workload.py (seeded,
 * through the real mlflow client), kept under ~/.cache/trackshift/bench/ for the next invocation.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { ROOT, fmt, freePort, log, run, sleep, startDaemon, tail, temp } from './processes.mjs';

export const FILL = join(ROOT, 'bench', 'fill_workload.py');
/** the experiment every workload is written into */
export const EXPERIMENT = 'bench';

/** The pinned Python environment of a pin file under python/ (made the first time): its folder. */
export const pinnedEnv = (requirements = 'requirements.txt') => execFileSync('bash', [join(ROOT, 'scripts/python-env.sh'), requirements], { encoding: 'utf8' }).trim();

/**
 * An MLflow server from `venv` on a folder of its own (mlflow.db and artifacts/ there unless
 * `backendStoreUri`), up and answering; stop() ends its process group.
 */
export async function startServer(venv, dir, label, { workers = 1, backendStoreUri } = {}) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, 'server.log');
  const daemon = startDaemon(
    join(venv, 'bin', 'mlflow'),
    ['server', '--host', '127.0.0.1', '--port', String(port), '--workers', String(workers), '--backend-store-uri', backendStoreUri ?? `sqlite:///${join(dir, 'mlflow.db')}`, '--artifacts-destination', join(dir, 'artifacts'), '--serve-artifacts'],
    // no job runner: MLflow 3's seven huey consumers (GenAI jobs, nothing of tracking) spend ~20 s
    // of CPU booting, which fell on the first contender's time and on the source's CPU column
    { cwd: dir, logFile, env: { MLFLOW_TRACKING_URI: '', PYTHONUNBUFFERED: '1', MLFLOW_ALLOW_FILE_STORE: 'true', MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false' } },
  );
  const stop = () => daemon.stop('SIGTERM');
  const deadline = Date.now() + 300_000; // a loaded machine takes its time over the imports and migrations
  for (;;) {
    if (daemon.exited()) throw new Error(`the ${label} MLflow server exited with ${daemon.exitCode()}:\n${tail(logFile)}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the ${label} MLflow server did not start in 300 s:\n${tail(logFile)}`);
    }
    await sleep(250);
  }
  // one cheap call through the store, so that no contender pays for the first one
  await fetch(`${url}/api/2.0/mlflow/experiments/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"max_results":1}' });
  return { url, dir, pid: daemon.pid, logFile, stop, label };
}

/** A fresh destination server in a folder of `work` for one contender, stopped (and removed unless `keep`) after `fn`. */
export async function withDestination(venv, label, work, fn, { workers = 1, keep = false } = {}) {
  const dst = await startServer(venv, join(work, `dst-${label.replace(/[^\w]+/g, '-')}`), `${label} destination`, { workers });
  try {
    return await fn(dst);
  } finally {
    await dst.stop();
    if (!keep) rmSync(dst.dir, { recursive: true, force: true });
  }
}

// ---- the workload ----

/**
 * The workload of bench/fill_workload.py from the flags --runs --metrics --steps --params --tags
 * --artifact-mb --artifacts --seed, each defaulting to the script's own default.
 */
export function workloadFromFlags(args, defaults) {
  const num = (flag, key) => (args[flag] === undefined ? defaults[key] : Number(args[flag]));
  return {
    runs: num('runs', 'runs'),
    metrics: num('metrics', 'metrics'),
    steps: num('steps', 'steps'),
    params: num('params', 'params'),
    tags: num('tags', 'tags'),
    artifactMb: num('artifact-mb', 'artifactMb'),
    artifacts: num('artifacts', 'artifacts'),
    seed: num('seed', 'seed') ?? 7,
  };
}

export function workloadLine(w) {
  const points = w.runs * w.metrics * w.steps;
  return `${w.runs} runs × ${w.metrics} metrics × ${fmt(w.steps)} steps = ${fmt(points)} points, ${w.params} params, ${w.tags} tags, ${w.artifacts} × ${fmt(w.artifactMb / Math.max(1, w.artifacts), 2)} MB of artifacts per run (seed ${w.seed})`;
}
const fillArgs = (w) =>
  ['--runs', w.runs, '--metrics', w.metrics, '--steps', w.steps, '--params', w.params, '--tags', w.tags, '--artifact-mb', w.artifactMb, '--artifacts', w.artifacts, '--seed', w.seed, '--experiment', EXPERIMENT].map(String);

/**
 * A folder holding the filled source: kind 'server' (mlflow.db + artifacts/, for a server to be
 * started on) or 'mlruns' (mlruns/). From the cache when it holds this workload (`useCache`),
 * else filled by `fillThreads` writer threads (through a server of `workers` workers) and kept
 * in the cache.
 */
export async function prepareSource(venv, w, kind, { useCache = true, fillThreads = 8, workers = 1 } = {}) {
  const key = createHash('sha256')
    .update(JSON.stringify({ w, kind, experiment: EXPERIMENT }))
    .update(readFileSync(FILL))
    .update(basename(venv))
    .digest('hex')
    .slice(0, 16);
  const cached = join(homedir(), '.cache', 'trackshift', 'bench', `${kind}-${key}`);
  const dir = temp(`src-${kind}`);
  if (useCache && existsSync(join(cached, 'summary.json'))) {
    const started = Date.now();
    cpSync(join(cached, 'data'), dir, { recursive: true });
    const summary = JSON.parse(readFileSync(join(cached, 'summary.json'), 'utf8'));
    log(`${kind} source: the cached fill ${cached} (filled in ${summary.seconds} s on ${summary.at}), copied in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { dir, summary: { ...summary, cached } };
  }
  log(`${kind} source: filling with ${workloadLine(w)}, ${fillThreads} threads …`);
  let summary;
  if (kind === 'server') {
    const filler = await startServer(venv, dir, 'filling', { workers });
    try {
      const out = await run(join(venv, 'bin', 'python'), [FILL, filler.url, ...fillArgs(w), '--threads', String(fillThreads)], { logFile: join(dir, 'fill.log') });
      summary = JSON.parse(out.trim().split('\n').pop());
    } finally {
      await filler.stop();
    }
    rmSync(join(dir, 'server.log'), { force: true });
  } else {
    const out = await run(join(venv, 'bin', 'python'), [FILL, `file://${join(dir, 'mlruns')}`, ...fillArgs(w), '--threads', String(fillThreads)], {
      logFile: join(dir, 'fill.log'),
      env: { MLFLOW_ALLOW_FILE_STORE: 'true' },
    });
    summary = JSON.parse(out.trim().split('\n').pop());
  }
  rmSync(join(dir, 'fill.log'), { force: true });
  summary.at = new Date().toISOString();
  log(`${kind} source: filled in ${summary.seconds} s`);
  if (useCache) {
    const partial = `${cached}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(dir, join(partial, 'data'), { recursive: true });
    writeFileSync(join(partial, 'summary.json'), JSON.stringify(summary, null, 2));
    rmSync(cached, { recursive: true, force: true });
    renameSync(partial, cached);
    log(`${kind} source: kept in ${cached} for the next invocation`);
  }
  return { dir, summary };
}
