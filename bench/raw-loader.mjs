#!/usr/bin/env node
/**
 * The raw loader of bench/copy.mjs: writes a workload into an MLflow server with as many
 * parallel requests as asked (--concurrency), and nothing else — no reading during the
 * timed part, no resume journal, no checks. The best rate it reaches over a range of
 * concurrency levels is the ceiling any client can reach on that server.
 *
 *   node bench/raw-loader.mjs --sqlite SRC/mlflow.db --artifacts SRC/artifacts --experiment bench \
 *        --dst http://127.0.0.1:5002 --concurrency 16 [--runs K]
 *
 * Reads the source's runs, params, tags and metric points straight from its SQLite file (the
 * database of the benchmark's source server, which is only read) into request bodies first,
 * untimed: reading is not what this measures, and any real client has to read, so counting
 * it here would lower the ceiling. Then, timed: creates the experiment and the runs, sends
 * every log-batch (1000 metric points each, the server's limit; params and tags 100 a call)
 * and every artifact file (PUT through the server's artifact proxy, read from the source's
 * artifacts folder as it goes) through one pool of --concurrency requests shared by all
 * runs, interleaved across runs, then marks each run finished with its end time. Failed
 * requests (connection errors, 429, 5xx, MLflow's 400 for a database pool or lock timeout) are retried up to 5 times with backoff and
 * counted; a request that still fails ends the load with exit 1.
 *
 * --runs K takes only the first K runs (by start time): bench/copy.mjs probes concurrency
 * levels with it. The last line of stdout is JSON: loadSeconds (untimed), writeSeconds
 * (timed), what was written, requests, retries.
 */
import { readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, i, all) => (value.startsWith('--') ? [...pairs, [value.slice(2), all[i + 1]]] : pairs), []),
);
for (const required of ['sqlite', 'artifacts', 'dst']) if (!args[required]) throw new Error(`--${required} is required`);
const concurrency = Number(args.concurrency ?? 8);
const experimentName = args.experiment ?? 'bench';
const dstExperimentName = args['dst-experiment'] ?? experimentName;
const dst = args.dst.replace(/\/$/, '');

// ---- untimed: read the source into request bodies ----

const loadStarted = process.hrtime.bigint();
const db = new Database(args.sqlite, { readonly: true, fileMustExist: true });
const experiment = db.prepare('SELECT experiment_id FROM experiments WHERE name = ?').get(experimentName);
if (!experiment) throw new Error(`no experiment "${experimentName}" in ${args.sqlite}`);
let runs = db
  .prepare("SELECT run_uuid, name, start_time, end_time, status, artifact_uri FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active' ORDER BY start_time, run_uuid")
  .all(experiment.experiment_id);
if (args.runs) runs = runs.slice(0, Number(args.runs));

const number = (value, isNan) => (isNan ? '"NaN"' : Number.isFinite(value) ? JSON.stringify(value) : value > 0 ? '"Infinity"' : '"-Infinity"');
const paramsOf = db.prepare('SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key');
const tagsOf = db.prepare('SELECT key, value FROM tags WHERE run_uuid = ? ORDER BY key');
const metricsOf = db.prepare('SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = ? ORDER BY key, step, timestamp');

/** files under a folder, with their paths relative to it */
function walk(root, dir = root, out = []) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const path = join(dir, e.name);
    if (e.isDirectory()) walk(root, path, out);
    else out.push({ rel: relative(root, path), abs: path, size: statSync(path).size });
  }
  return out;
}

const plan = runs.map((run) => {
  const params = paramsOf.all(run.run_uuid);
  const tags = tagsOf.all(run.run_uuid);
  // log-batch bodies: the run id is spliced in when it is known (`{"run_id":"…",` + rest)
  const batches = [];
  for (let i = 0; i < Math.max(params.length, tags.length); i += 100) {
    batches.push({ kind: 'params', points: 0, rest: JSON.stringify({ params: params.slice(i, i + 100), tags: tags.slice(i, i + 100) }).slice(1) });
  }
  let chunk = [];
  const flush = () => {
    if (chunk.length) batches.push({ kind: 'metrics', points: chunk.length, rest: `"metrics":[${chunk.join(',')}]}` });
    chunk = [];
  };
  for (const m of metricsOf.iterate(run.run_uuid)) {
    chunk.push(`{"key":${JSON.stringify(m.key)},"value":${number(m.value, m.is_nan)},"timestamp":${m.timestamp},"step":${m.step}}`);
    if (chunk.length === 1000) flush();
  }
  flush();
  // the source server keeps run artifacts under <artifacts>/<path of mlflow-artifacts:/…>
  const artifactPath = String(run.artifact_uri ?? '').replace(/^mlflow-artifacts:(\/\/[^/]*)?\//, '');
  const files = walk(join(args.artifacts, artifactPath));
  return { run, batches, files, params: params.length, tags: tags.length };
});
db.close();
const loadSeconds = Number(process.hrtime.bigint() - loadStarted) / 1e9;

// ---- timed: write ----

const dispatcher = new Agent({ connections: concurrency, keepAliveTimeout: 60_000, headersTimeout: 600_000, bodyTimeout: 600_000 });
let requests = 0;
let retries = 0;

async function call(method, path, body, contentType = 'application/json') {
  for (let attempt = 0; ; attempt++) {
    requests++;
    try {
      const res = await request(`${dst}${path}`, { method, body, headers: { 'content-type': contentType }, dispatcher });
      const text = await res.body.text();
      if (res.statusCode < 300) return text ? JSON.parse(text) : {};
      // overload: 429, 5xx, and the 400s MLflow answers when its database pool or SQLite lock times out
      const overloaded = res.statusCode === 429 || res.statusCode >= 500 || /QueuePool limit|database is locked/.test(text);
      if (overloaded && attempt < 5) throw Object.assign(new Error(`${res.statusCode}`), { retry: true });
      throw new Error(`${method} ${path}: HTTP ${res.statusCode} ${text.slice(0, 300)}`);
    } catch (err) {
      if (attempt >= 5 || (!err.retry && !err.code)) throw err;
      retries++;
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt * (0.5 + Math.random())));
    }
  }
}

/** runs fn on every item, n at a time */
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const item = items[next++];
        await fn(item);
      }
    }),
  );
}

const started = process.hrtime.bigint();
const API = '/api/2.0/mlflow';
let experimentId;
try {
  experimentId = (await call('POST', `${API}/experiments/create`, JSON.stringify({ name: dstExperimentName }))).experiment_id;
} catch (err) {
  if (!/RESOURCE_ALREADY_EXISTS/.test(String(err.message))) throw err;
  experimentId = (await call('GET', `${API}/experiments/get-by-name?experiment_name=${encodeURIComponent(dstExperimentName)}`)).experiment.experiment_id;
}
await pool(plan, concurrency, async (p) => {
  const created = await call('POST', `${API}/runs/create`, JSON.stringify({ experiment_id: experimentId, start_time: p.run.start_time, run_name: p.run.name }));
  p.runId = created.run.info.run_id;
  p.artifactPath = created.run.info.artifact_uri.replace(/^mlflow-artifacts:(\/\/[^/]*)?\//, '');
});
// every log-batch and file of every run, interleaved across runs, through one pool
const tasks = [];
for (let i = 0; ; i++) {
  let any = false;
  for (const p of plan) {
    const n = p.batches.length;
    if (i < n) tasks.push({ p, batch: p.batches[i] });
    else if (i - n < p.files.length) tasks.push({ p, file: p.files[i - n] });
    else continue;
    any = true;
  }
  if (!any) break;
}
let points = 0;
let artifactBytes = 0;
await pool(tasks, concurrency, async ({ p, batch, file }) => {
  if (batch) {
    await call('POST', `${API}/runs/log-batch`, `{"run_id":"${p.runId}",${batch.rest}`);
    points += batch.points;
  } else {
    const path = [...p.artifactPath.split('/'), ...file.rel.split('/')].map(encodeURIComponent).join('/');
    await call('PUT', `/api/2.0/mlflow-artifacts/artifacts/${path}`, await readFile(file.abs), 'application/octet-stream');
    artifactBytes += file.size;
  }
});
await pool(plan, concurrency, (p) =>
  call('POST', `${API}/runs/update`, JSON.stringify({ run_id: p.runId, status: p.run.status ?? 'FINISHED', end_time: p.run.end_time ?? undefined })),
);
const writeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
await dispatcher.close();

console.log(
  JSON.stringify({
    concurrency,
    loadSeconds,
    writeSeconds,
    runs: plan.length,
    params: plan.reduce((n, p) => n + p.params, 0),
    tags: plan.reduce((n, p) => n + p.tags, 0),
    points,
    artifactFiles: plan.reduce((n, p) => n + p.files.length, 0),
    artifactBytes,
    requests,
    retries,
  }),
);
