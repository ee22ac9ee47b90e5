#!/usr/bin/env node
/**
 * Comet instance → instance (issue 17): `trackshift copy comet://A/proj comet://B/proj` against
 * cometx's way, `cometx download A/proj` into a folder then `cometx copy` of that folder into
 * another workspace (both halves timed, summed, the split shown), on the same local Comet-shaped
 * server (test/harness/comet-server/, no live Comet instance) and the same data, in one
 * invocation. Only the ratios mean much: the machines are shared.
 *
 *   npm run build && node bench/comet.mjs [workload flags] [--only cometx,trackshift] [--cometx-sampling-size N]
 *
 * Workload (bench/fill_comet.py: the real comet_ml 3.58.8 OfflineExperiment, seeded; the archives
 * are then uploaded with `comet upload`, COMET_OFFLINE_SAMPLING_SIZE raised so that no point is
 * dropped — the way a user's offline runs reach a server; not timed):
 *   --experiments 20 --metrics 10 --steps 2000 --long-steps 16000 --params 20 --others 5 --tags 3
 *   --assets 3 --asset-kb 256 --seed 7 --fill-jobs 4 (processes writing, then uploading, side by side)
 *   (every experiment also has one metric `long_loss` of --long-steps points, over the 15,000
 *   points per name that comet_ml's offline uploader keeps by default; --long-steps 0 leaves it out)
 *
 * Other flags:
 *   --only cometx,trackshift   the contenders to run (default both; cometx runs first)
 *   --cometx-sampling-size N   also run cometx copy, from the same download, with
 *                              COMET_OFFLINE_SAMPLING_SIZE=N into another workspace (its offline
 *                              uploader keeps 15,000 points per metric name by default): an
 *                              all-points comparison, as a second cometx row. cometx always runs
 *                              once as a user runs it, with its defaults.
 *   --trackshift-args "…"      extra flags for the trackshift command (e.g. "--workers 8")
 *   --no-cache                 write the archives afresh and keep nothing; otherwise they are kept
 *                              under ~/.cache/trackshift/bench/comet-<hash of workload and
 *                              generator> for the next invocation (the output says which)
 *   --profile                  run trackshift with node --cpu-prof; the profiles go to
 *                              bench/results/profiles/ and a summary (self time by module) is printed
 *   --keep                     keep the temporary folders (logs, cometx's download) and print where
 *   --out FILE                 the JSON results (default bench/results/comet.json)
 *
 * One server (its own Node process, every key below accepted, its CPU measured per contender)
 * holds the source A/proj and every destination: cometx writes into cometx-dst/proj (and, with
 * --cometx-sampling-size, cometx-all-dst/proj), trackshift into trackshift-dst/proj; the
 * destination workspaces exist beforehand, the projects do not. Keys per side, as a migration has them: the source is read with one
 * key (COMET_API_KEY for cometx download; TRACKSHIFT_SRC_COMET_API_KEY for trackshift), the
 * destination written with another (COMET_API_KEY for cometx copy, after "reconfiguring the
 * credentials" as cometx's guide says; TRACKSHIFT_DST_COMET_API_KEY); COMET_URL_OVERRIDE points
 * both at the server; HOME is a temporary folder (no ~/.comet.config of the machine). The server,
 * and every command, are stopped at the end, on error and on Ctrl-C.
 *
 * Peak RSS is that of the measured process tree (the node process for trackshift; each cometx
 * command): the largest of GNU time's maximum RSS and the sums of VmRSS over the tree sampled every
 * 100 ms. Each destination is checked afterwards through the server's REST API against the
 * source: experiments (by name), every metric point (name, step, epoch, value, context), params,
 * others, tags, assets (type, name, step, size). A contender that did not copy everything gets a
 * loud warning and complete: false; what it lost is listed. Differences that do not make a copy
 * incomplete but that a user may care about (start/end times, asset metadata, point timestamps)
 * are listed too.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, homedir, loadavg, release, totalmem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInfo, BUILT_CLI, parseFlags, snapshotCli } from './lib/cli.mjs';
import { measure as measureCommand, treeCpu } from './lib/measure.mjs';
import { fmt, groups, keepProcesses, killGroup, log, run, sleep, tail, tempFolders, temp } from './lib/processes.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
// the CLI run: a copy of dist/ taken at the start (others rebuild dist/ while this runs)
let CLI = BUILT_CLI;
const FILL = join(ROOT, 'bench', 'fill_comet.py');
const SERVER_MODULE = join(ROOT, 'test', 'harness', 'comet-server', 'from-node.mjs');
const SOURCE = { workspace: 'A', project: 'proj' };
const DESTINATIONS = { cometx: { workspace: 'cometx-dst', project: 'proj' }, cometxAll: { workspace: 'cometx-all-dst', project: 'proj' }, trackshift: { workspace: 'trackshift-dst', project: 'proj' } };
// made up here, for this server only: a source key and a destination key, as a migration has
const SRC_KEY = 'benchSourceKey0123456789abcdef';
const DST_KEY = 'benchDestinationKey0123456789ab';

// ---- flags ----

const BOOLEAN_FLAGS = new Set(['no-cache', 'profile', 'keep']);
const args = parseFlags(BOOLEAN_FLAGS);
const num = (name, fallback) => {
  if (args[name] === undefined) return fallback;
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} ${args[name]}: give a whole number`);
  return n;
};
const workload = {
  experiments: num('experiments', 20),
  metrics: num('metrics', 10),
  steps: num('steps', 2000),
  longSteps: num('long-steps', 16000),
  params: num('params', 20),
  others: num('others', 5),
  tags: num('tags', 3),
  assets: num('assets', 3),
  assetKb: num('asset-kb', 256),
  seed: num('seed', 7),
};
const fillJobs = num('fill-jobs', 4);
const only = new Set(String(args.only ?? 'cometx,trackshift').split(','));
for (const o of only) if (!['cometx', 'trackshift'].includes(o)) throw new Error(`--only ${o}: give cometx, trackshift or both`);
const cometxSampling = args['cometx-sampling-size'] !== undefined ? num('cometx-sampling-size') : undefined;
const trackshiftArgs = args['trackshift-args'] ? String(args['trackshift-args']).split(/\s+/).filter(Boolean) : [];
const useCache = !args['no-cache'];
const keep = Boolean(args.keep);
const profile = Boolean(args.profile);
const outFile = args.out ? String(args.out) : join(ROOT, 'bench', 'results', 'comet.json');
for (const name of Object.keys(args))
  if (!['experiments', 'metrics', 'steps', 'long-steps', 'params', 'others', 'tags', 'assets', 'asset-kb', 'seed', 'fill-jobs', 'only', 'cometx-sampling-size', 'trackshift-args', 'no-cache', 'profile', 'keep', 'out'].includes(name))
    throw new Error(`unknown flag --${name} (see the header of bench/comet.mjs)`);

// ---- processes: everything started is stopped at the end, on error and on Ctrl-C ----

keepProcesses({ keep, prefix: 'trackshift-bench-comet-', stopping: 'the server and commands started' });

/**
 * Runs one measured command (bench/lib/measure.mjs): wall time, peak RSS of its process tree, CPU
 * of the tree, the CPU the server spent meanwhile and the calls it answered.
 */
const measure = (label, command, argv, { env = {}, cwd = ROOT, logDir, server } = {}) =>
  measureCommand(label, command, argv, {
    env,
    cwd,
    logDir,
    failureOutput: 'both',
    watch: async () => {
      const serverCpu0 = treeCpu(server.pid);
      const calls0 = await server.calls();
      return async () => {
        const serverCpuSeconds = treeCpu(server.pid) - serverCpu0;
        const calls1 = await server.calls();
        return { serverCpuSeconds, serverRequests: Object.fromEntries(Object.entries(calls1).map(([k, n]) => [k, n - (calls0[k] ?? 0)]).filter(([, n]) => n > 0)) };
      };
    },
  });

// ---- the Comet-shaped server, in its own process ----

/** Started with both keys; prints its address; writes its call counts to a file on SIGUSR2. */
const SERVER_SCRIPT = `
import { writeFileSync } from 'node:fs';
import { loadCometServer } from ${JSON.stringify(SERVER_MODULE)};
const [keys, callsFile] = [process.argv[1].split(','), process.argv[2]];
const { startCometServer } = await loadCometServer();
const server = await startCometServer({ apiKeys: keys });
process.on('SIGUSR2', () => writeFileSync(callsFile, JSON.stringify(Object.fromEntries(server.calls))));
const stop = () => void server.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
console.log(JSON.stringify({ url: server.url, clientlibUrl: server.clientlibUrl }));
`;

async function startServer(dir) {
  const logFile = join(dir, 'server.log');
  const callsFile = join(dir, 'calls.json');
  const out = openSync(logFile, 'a');
  // the store holds every point of the source and of both copies in its heap
  const child = spawn(process.execPath, ['--max-old-space-size=8192', '--input-type=module', '-e', SERVER_SCRIPT, `${SRC_KEY},${DST_KEY}`, callsFile], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', out],
  });
  closeSync(out);
  groups.add(child.pid);
  const address = await new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (c) => {
      buffered += c;
      if (buffered.includes('\n')) resolve(JSON.parse(buffered.split('\n')[0]));
    });
    child.once('exit', (code) => reject(new Error(`the Comet-shaped server exited with ${code}:\n${tail(logFile)}`)));
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    ...address,
    pid: child.pid,
    dir,
    /** calls per `METHOD /path` so far */
    async calls() {
      rmSync(callsFile, { force: true });
      process.kill(child.pid, 'SIGUSR2');
      for (let i = 0; i < 100 && !existsSync(callsFile); i++) await sleep(20);
      try {
        return JSON.parse(readFileSync(callsFile, 'utf8'));
      } catch {
        return {};
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child.pid, 'SIGTERM');
        const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      groups.delete(child.pid);
    },
  };
}

// ---- REST reads: what a workspace/project holds ----

async function rest(server, path, params) {
  const url = `${server.url}/api/rest/v2/${path}?${new URLSearchParams(params)}`;
  const res = await fetch(url, { headers: { Authorization: SRC_KEY } });
  if (!res.ok) throw new Error(`GET ${path} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  return res.json();
}

/** parameters comet_ml logs by itself (offline_experiment.py / experiment.py: the current step and epoch) */
const CLIENT_PARAMS = new Set(['curr_step', 'curr_epoch']);

/** A metric value as a comparable string: numbers by value, NaN/±Infinity by name. */
const valueKey = (v) => {
  const n = Number(v);
  return Number.isNaN(n) ? String(v) : String(n);
};
const same = (a, b) => a === b || (a !== null && b !== null && a !== undefined && b !== undefined && a.trim?.() !== '' && Number(a) === Number(b));

/** Everything of one project the check compares, experiments by name. */
async function readProject(server, { workspace, project }) {
  let listed;
  try {
    listed = (await rest(server, 'experiments', { workspaceName: workspace, projectName: project })).experiments;
  } catch (err) {
    if (/answered 404/.test(err.message)) return { experiments: new Map(), duplicates: [], missingProject: true };
    throw err;
  }
  const experiments = new Map();
  const duplicates = [];
  for (const meta of listed) {
    const key = meta.experimentKey;
    const [metrics, params, others, tags, assets] = await Promise.all([
      rest(server, 'experiment/metrics/get-all', { experimentKey: key }),
      rest(server, 'experiment/parameters', { experimentKey: key }),
      rest(server, 'experiment/log-other', { experimentKey: key }),
      rest(server, 'experiment/tags', { experimentKey: key }),
      rest(server, 'experiment/asset/list', { experimentKey: key, type: 'all' }),
    ]);
    const series = new Map();
    const timestamps = new Map();
    for (const p of metrics.metrics) {
      const id = `${p.step}|${p.epoch}|${valueKey(p.metricValue)}|${p.runContext ?? ''}`;
      if (!series.has(p.metricName)) series.set(p.metricName, new Map());
      const m = series.get(p.metricName);
      m.set(id, (m.get(id) ?? 0) + 1);
      timestamps.set(`${p.metricName}|${id}`, p.timestamp);
    }
    const e = {
      key,
      name: meta.experimentName,
      start: meta.startTimeMillis,
      end: meta.endTimeMillis,
      series,
      timestamps,
      points: metrics.metrics.length,
      params: new Map(params.values.map((p) => [p.name, p.valueCurrent])),
      others: new Map(others.values.map((p) => [p.name, p.valueCurrent])),
      tags: new Set(tags.tags),
      assets: assets.assets.map((a) => ({ id: `${a.type} ${a.fileName} step=${a.step}`, size: a.fileSize, epoch: a.epoch ?? null, metadata: a.metadata ?? null })),
    };
    if (experiments.has(e.name)) duplicates.push(e.name);
    else experiments.set(e.name, e);
  }
  return { experiments, duplicates, pointCount: [...experiments.values()].reduce((s, e) => s + e.points, 0) };
}

/**
 * What a destination lacks against the source. `lost` makes the copy incomplete (experiments,
 * points, params, others, tags, assets); `differs` does not (times, asset epoch and metadata,
 * point timestamps), but is reported.
 */
function compare(source, dest, clientMetrics = new Set()) {
  const lost = [];
  const differs = [];
  const examples = new Map();
  const example = (what, text) => examples.has(what) || examples.set(what, text);
  const add = (list, what, n) => n > 0 && list.push(`${what}: ${fmt(n)}${examples.has(what) ? ` (e.g. ${examples.get(what)})` : ''}`);
  let missingExperiments = 0;
  let missingPoints = 0;
  let extraPoints = 0;
  let clientExtra = 0;
  let clientParams = 0;
  const lostPerMetric = new Map();
  let missingParams = 0;
  let wrongParams = 0;
  let missingOthers = 0;
  let missingTags = 0;
  let missingAssets = 0;
  let startEnd = 0;
  let assetEpoch = 0;
  let assetMetadata = 0;
  let timestampDiffers = 0;
  for (const [name, s] of source.experiments) {
    const d = dest.experiments.get(name);
    if (!d) {
      missingExperiments++;
      continue;
    }
    for (const [metric, points] of s.series) {
      const dp = d.series.get(metric) ?? new Map();
      let lostHere = 0;
      for (const [id, n] of points) {
        const have = dp.get(id) ?? 0;
        if (have < n) lostHere += n - have;
        else if (have === n && d.timestamps.get(`${metric}|${id}`) !== s.timestamps.get(`${metric}|${id}`)) {
          example('metric points with another timestamp', `${metric} ${id}: ${s.timestamps.get(`${metric}|${id}`)} became ${d.timestamps.get(`${metric}|${id}`)}`);
          timestampDiffers++;
        }
      }
      for (const [id, n] of dp) {
        const extra = Math.max(0, n - (points.get(id) ?? 0));
        if (!extra) continue;
        // the copier's own client logging its own metric (comet_ml's `process duration`) is no loss
        const what = clientMetrics.has(metric) ? "points of the client's own metrics added" : 'metric points that are not in the source';
        example(what, `${metric} step|epoch|value|context ${id}`);
        if (clientMetrics.has(metric)) clientExtra += extra;
        else extraPoints += extra;
      }
      if (lostHere) lostPerMetric.set(metric, (lostPerMetric.get(metric) ?? 0) + lostHere);
      missingPoints += lostHere;
    }
    for (const [k, v] of s.params) {
      if (!d.params.has(k)) {
        example('params missing', k);
        missingParams++;
      } else if (!same(String(v), String(d.params.get(k)))) {
        // comet_ml's own curr_step/curr_epoch (the last step any call was given) are no user data
        const what = CLIENT_PARAMS.has(k) ? "the client's own curr_step/curr_epoch params with another value" : 'params with another value';
        example(what, `${k}: ${v} became ${d.params.get(k)}`);
        if (CLIENT_PARAMS.has(k)) clientParams++;
        else wrongParams++;
      }
    }
    for (const [k, v] of s.others) if (!d.others.has(k) || !same(String(v), String(d.others.get(k)))) missingOthers++;
    for (const t of s.tags) if (!d.tags.has(t)) missingTags++;
    const dAssets = new Map(d.assets.map((a) => [a.id, a]));
    for (const a of s.assets) {
      const da = dAssets.get(a.id);
      if (!da || da.size !== a.size) {
        example('assets missing or of another size', a.id);
        missingAssets++;
        continue;
      }
      if (da.epoch !== a.epoch) assetEpoch++;
      if (JSON.stringify(JSON.parse(da.metadata ?? 'null')) !== JSON.stringify(JSON.parse(a.metadata ?? 'null'))) {
        example('assets with other metadata', `${a.id}: ${a.metadata} became ${da.metadata}`);
        assetMetadata++;
      }
    }
    if (d.start !== s.start || d.end !== s.end) {
      example('experiments with other start/end times', `${name}: ${s.start}–${s.end} became ${d.start}–${d.end}`);
      startEnd++;
    }
  }
  add(lost, 'experiments missing', missingExperiments);
  add(lost, 'experiments duplicated', dest.duplicates.length);
  add(lost, 'metric points missing', missingPoints);
  if (lostPerMetric.size) lost.push(`(${[...lostPerMetric].map(([m, n]) => `${m}: ${fmt(n)}`).join(', ')})`);
  add(lost, 'metric points that are not in the source', extraPoints);
  add(lost, 'params missing', missingParams);
  add(lost, 'params with another value', wrongParams);
  add(lost, 'others missing or changed', missingOthers);
  add(lost, 'tags missing', missingTags);
  add(lost, 'assets missing or of another size', missingAssets);
  add(differs, 'experiments with other start/end times', startEnd);
  add(differs, 'assets with another epoch', assetEpoch);
  add(differs, 'assets with other metadata', assetMetadata);
  add(differs, 'metric points with another timestamp', timestampDiffers);
  add(differs, "points of the client's own metrics added", clientExtra);
  add(differs, "the client's own curr_step/curr_epoch params with another value", clientParams);
  return {
    complete: lost.length === 0,
    lost,
    differs,
    found: { experiments: dest.experiments.size + dest.duplicates.length, points: dest.pointCount },
    missingPoints,
  };
}

// ---- the source: archives written by comet_ml (cached), uploaded by `comet upload` ----

const workloadPoints = (w) => w.experiments * (w.metrics * w.steps + w.longSteps);
function workloadLine(w) {
  return `${w.experiments} experiments × (${w.metrics} metrics × ${fmt(w.steps)} steps + long_loss × ${fmt(w.longSteps)}) = ${fmt(workloadPoints(w))} points, ${w.params} params, ${w.others} others, ${w.tags} tags, ${w.assets} assets × ${fmt(w.assetKb)} KB per experiment (seed ${w.seed})`;
}

/** A folder of `<key>.zip` archives, from the cache when it holds this workload. */
async function prepareArchives(python, w, clientEnv) {
  const key = createHash('sha256').update(JSON.stringify({ w, SOURCE })).update(readFileSync(FILL)).update(basename(dirname(dirname(python)))).digest('hex').slice(0, 16);
  const cached = join(homedir(), '.cache', 'trackshift', 'bench', `comet-${key}`);
  if (useCache && existsSync(join(cached, 'summary.json'))) {
    const summary = JSON.parse(readFileSync(join(cached, 'summary.json'), 'utf8'));
    log(`source: the cached archives ${cached} (written in ${summary.seconds} s on ${summary.at})`);
    return { dir: join(cached, 'archives'), summary: { ...summary, cached } };
  }
  const dir = temp('archives');
  log(`source: writing ${workloadLine(w)} with comet_ml's OfflineExperiment, ${fillJobs} processes …`);
  const out = await run(
    python,
    [FILL, dir, '--workspace', SOURCE.workspace, '--project', SOURCE.project, ...Object.entries({ experiments: w.experiments, metrics: w.metrics, steps: w.steps, 'long-steps': w.longSteps, params: w.params, others: w.others, tags: w.tags, assets: w.assets, 'asset-kb': w.assetKb, seed: w.seed, jobs: fillJobs }).flatMap(([k, v]) => [`--${k}`, String(v)])],
    { env: clientEnv, logFile: join(dirname(dir), `${basename(dir)}.fill.log`) },
  );
  const summary = { ...JSON.parse(out.trim().split('\n').pop()), at: new Date().toISOString() };
  rmSync(join(dir, 'asset-files'), { recursive: true, force: true });
  log(`source: written in ${summary.seconds} s`);
  if (!useCache) return { dir, summary };
  mkdirSync(cached, { recursive: true });
  cpSync(dir, join(cached, 'archives'), { recursive: true });
  writeFileSync(join(cached, 'summary.json'), JSON.stringify(summary, null, 2));
  return { dir: join(cached, 'archives'), summary: { ...summary, cached, fresh: true } };
}

// ---- profiles ----

const PROFILES = join(ROOT, 'bench', 'results', 'profiles');
const profileFiles = () => (existsSync(PROFILES) ? readdirSync(PROFILES).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(PROFILES, f)) : []);
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
      const url = cf.url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
      const module = !url
        ? cf.functionName || '(native)'
        : url.startsWith('node:')
          ? 'node: internals'
          : url.startsWith('node_modules/')
            ? `node_modules/${url.split('/')[1]}`
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

// ---- contenders ----

function row(name, m, validation, extra = {}) {
  return {
    contender: name,
    seconds: m.seconds,
    pointsPerSecond: workloadPoints(workload) / m.seconds,
    peakRssMb: m.peakRssMb,
    cpuSeconds: m.cpuSeconds,
    serverCpuSeconds: m.serverCpuSeconds,
    loadAverage: m.loadAverage,
    exitCode: m.code,
    complete: validation.complete && m.code === 0,
    lost: [...(m.code === 0 ? [] : [`exit code ${m.code}`]), ...validation.lost],
    differs: validation.differs,
    found: validation.found,
    serverRequests: m.serverRequests,
    ...extra,
  };
}

/** Two measurements one after the other, as one (times and CPU added, the larger peak RSS). */
const sum = (a, b) => ({
  code: a.code || b.code,
  seconds: a.seconds + b.seconds,
  peakRssMb: Math.max(a.peakRssMb, b.peakRssMb),
  cpuSeconds: a.cpuSeconds + b.cpuSeconds,
  serverCpuSeconds: a.serverCpuSeconds + b.serverCpuSeconds,
  loadAverage: (a.loadAverage * a.seconds + b.loadAverage * b.seconds) / (a.seconds + b.seconds),
  serverRequests: Object.fromEntries([...new Set([...Object.keys(a.serverRequests), ...Object.keys(b.serverRequests)])].map((k) => [k, (a.serverRequests[k] ?? 0) + (b.serverRequests[k] ?? 0)])),
});

// ---- the table ----

function printTable(title, rows, notes) {
  const head = ['contender', 'seconds', 'points/s', 'peak RSS MB', 'CPU s', 'server CPU s', 'load'];
  const cells = rows.map((r) => [r.contender, fmt(r.seconds, 1), fmt(r.pointsPerSecond), fmt(r.peakRssMb), fmt(r.cpuSeconds, 1), fmt(r.serverCpuSeconds, 1), fmt(r.loadAverage, 1)]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  const out = [title, `  ${line(head)}`, ...cells.map((c) => `  ${line(c)}`)];
  for (const r of rows) {
    if (!r.complete) out.push(`  !!! WARNING: ${r.contender} did NOT copy everything: ${r.lost.join(', ')}`);
    if (r.differs.length) out.push(`  ${r.contender}: also differs from the source: ${r.differs.join(', ')}`);
  }
  const loads = rows.map((r) => r.loadAverage).filter((l) => l !== undefined);
  if (loads.length > 1 && Math.max(...loads) - Math.min(...loads) > Math.max(1, 0.25 * cpus().length))
    out.push(`  !!! the machine's load differed between the contenders (load column: mean 1-minute load average while each ran, on ${cpus().length} CPUs): the ratios are skewed`);
  out.push(...notes.map((n) => `  ${n}`));
  console.log(`\n${out.join('\n')}`);
  return out;
}

// ---- main ----

async function main() {
  CLI = snapshotCli();
  const venv = execFileSync('bash', [join(ROOT, 'scripts/python-env.sh'), 'requirements-cometx.txt'], { encoding: 'utf8' }).trim();
  const python = join(venv, 'bin', 'python');
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGb: Math.round(totalmem() / 1024 ** 3), kernel: release(), node: process.version, loadAverageAtStart: loadavg()[0] };
  const build = buildInfo();
  const versions = execFileSync(python, ['-c', 'import importlib.metadata as m; print(m.version("comet_ml"), m.version("cometx"))'], { encoding: 'utf8' }).trim().split(' ');
  const work = temp('work');
  const logDir = join(work, 'logs');
  mkdirSync(logDir);
  const home = join(work, 'home');
  mkdirSync(home);
  // the clients' environment: no ~/.comet.config of the machine, no matplotlib cache in HOME
  const clientEnv = (server, key, extra = {}) => ({ HOME: home, MPLCONFIGDIR: join(home, 'mpl'), PYTHONUNBUFFERED: '1', COMET_DISABLE_ANNOUNCEMENT: '1', ...(server ? { COMET_URL_OVERRIDE: server.clientlibUrl, COMET_API_KEY: key } : {}), ...extra });
  const archives = await prepareArchives(python, workload, clientEnv());

  const server = await startServer(work);
  const results = { benchmark: 'comet', date: new Date().toISOString(), machine, trackshift: build, comet_ml: versions[0], cometx: versions[1], workload, source: archives.summary, rows: [] };
  try {
    // ---- fill: comet upload, every point kept ----
    const zips = readdirSync(archives.dir).filter((f) => f.endsWith('.zip')).map((f) => join(archives.dir, f));
    log(`source: comet upload of ${zips.length} archives into ${SOURCE.workspace}/${SOURCE.project} …`);
    const uploadStarted = Date.now();
    const uploadLog = join(logDir, 'comet-upload.log');
    // --fill-jobs uploads side by side, each with its share of the archives
    const shares = Array.from({ length: Math.max(1, Math.min(fillJobs, zips.length)) }, (_, i) => zips.filter((_, j) => j % Math.max(1, Math.min(fillJobs, zips.length)) === i));
    await Promise.all(shares.map((share) => run(join(venv, 'bin', 'comet'), ['upload', ...share], { cwd: work, env: clientEnv(server, SRC_KEY, { COMET_OFFLINE_SAMPLING_SIZE: String(10 ** 9) }), logFile: uploadLog })));
    results.source.uploadSeconds = (Date.now() - uploadStarted) / 1000;
    const source = await readProject(server, SOURCE);
    // every point of the workload's metrics arrived (the client may log a few of its own besides)
    const short = [];
    for (const e of source.experiments.values())
      for (const [name, points] of e.series) {
        const expected = name === 'long_loss' ? workload.longSteps : /^metric_\d+$/.test(name) ? workload.steps : undefined;
        const n = [...points.values()].reduce((a, b) => a + b, 0);
        if (expected !== undefined && n !== expected) short.push(`${e.name} ${name}: ${n} of ${expected}`);
      }
    const extraNames = [...new Set([...source.experiments.values()].flatMap((e) => [...e.series.keys()].filter((n) => n !== 'long_loss' && !/^metric_\d+$/.test(n))))];
    if (source.experiments.size !== workload.experiments || short.length)
      throw new Error(`the source holds ${source.experiments.size} experiments of ${workload.experiments} after comet upload${short.length ? `, and too few points: ${short.slice(0, 5).join('; ')}` : ''}; see ${uploadLog}:\n${tail(uploadLog)}`);
    results.source.points = source.pointCount;
    results.source.clientMetrics = extraNames;
    log(`source: uploaded in ${results.source.uploadSeconds.toFixed(1)} s; the server holds every point (${fmt(source.pointCount)}${extraNames.length ? `, with the client's own ${extraNames.join(', ')}` : ''})`);

    // the destination workspaces exist, as on Comet (made in its UI; neither tool makes one by default)
    for (const { workspace } of Object.values(DESTINATIONS)) {
      const res = await fetch(`${server.url}/api/rest/v2/write/project/create`, { method: 'POST', headers: { Authorization: DST_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ workspaceName: workspace, projectName: 'existing' }) });
      if (!res.ok) throw new Error(`making the workspace ${workspace}: ${res.status} ${await res.text()}`);
    }

    // ---- cometx: download, then copy from the folder (as a user runs it; then, asked, with every point kept) ----
    if (only.has('cometx')) {
      const folder = join(work, 'cometx-download');
      log(`cometx download ${SOURCE.workspace}/${SOURCE.project} --output ${folder}`);
      const down = await measure('cometx download', join(venv, 'bin', 'cometx'), ['download', `${SOURCE.workspace}/${SOURCE.project}`, '--output', folder], { env: clientEnv(server, SRC_KEY), logDir, server });
      const stagedMb = existsSync(folder) ? Number(execFileSync('du', ['-sm', folder], { encoding: 'utf8' }).split('\t')[0]) : 0;
      for (const sampling of [undefined, ...(cometxSampling !== undefined ? [cometxSampling] : [])]) {
        const dst = sampling === undefined ? DESTINATIONS.cometx : DESTINATIONS.cometxAll;
        const copyEnv = clientEnv(server, DST_KEY, sampling !== undefined ? { COMET_OFFLINE_SAMPLING_SIZE: String(sampling) } : {});
        log(`cometx copy ${SOURCE.workspace}/${SOURCE.project} ${dst.workspace}/${dst.project}${sampling !== undefined ? ` (COMET_OFFLINE_SAMPLING_SIZE=${sampling})` : ''}`);
        const label = sampling === undefined ? 'cometx copy' : 'cometx copy all points';
        const copy = down.code === 0 ? await measure(label, join(venv, 'bin', 'cometx'), ['copy', `${SOURCE.workspace}/${SOURCE.project}`, `${dst.workspace}/${dst.project}`], { env: copyEnv, cwd: folder, logDir, server }) : undefined;
        const m = copy ? sum(down, copy) : down;
        const validation = compare(source, await readProject(server, dst), new Set(results.source.clientMetrics));
        const name = `cometx download + copy${sampling !== undefined ? ` (sampling ${fmt(sampling)})` : ''}`;
        results.rows.push(
          row(name, m, validation, {
            downloadSeconds: down.seconds,
            copySeconds: copy?.seconds,
            downloadPeakRssMb: down.peakRssMb,
            copyPeakRssMb: copy?.peakRssMb,
            stagedMb,
            samplingSize: sampling ?? null,
            ...(sampling !== undefined ? { downloadReused: true } : {}),
          }),
        );
      }
    }

    // ---- trackshift: one command, one key per side ----
    if (only.has('trackshift')) {
      const dst = DESTINATIONS.trackshift;
      const src = `comet://${SOURCE.workspace}/${SOURCE.project}`;
      const to = `comet://${dst.workspace}/${dst.project}`;
      log(`trackshift copy ${src} ${to}`);
      const before = profile ? profileFiles() : [];
      const argv = [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`] : []), CLI, 'copy', src, to, '--state-dir', join(work, 'trackshift-state'), '--json', ...trackshiftArgs];
      const env = { HOME: home, COMET_URL_OVERRIDE: server.clientlibUrl, TRACKSHIFT_SRC_COMET_API_KEY: SRC_KEY, TRACKSHIFT_DST_COMET_API_KEY: DST_KEY };
      const m = await measure('trackshift copy', process.execPath, argv, { env, logDir, server });
      const validation = compare(source, await readProject(server, dst), new Set(results.source.clientMetrics));
      const extra = {};
      if (profile) extra.profile = summarizeProfiles(profileFiles().filter((f) => !before.includes(f)));
      results.rows.push(row('trackshift copy', m, validation, extra));
    }
  } finally {
    await server.stop();
  }

  // ---- print ----
  machine.loadAverageAtEnd = loadavg()[0];
  const notes = [];
  const cx = results.rows.find((r) => r.contender.startsWith('cometx') && r.samplingSize === null);
  const cxAll = results.rows.find((r) => r.contender.startsWith('cometx') && r.samplingSize !== null);
  const ts = results.rows.find((r) => r.contender.startsWith('trackshift'));
  if (cx) notes.push(`cometx: download ${fmt(cx.downloadSeconds, 1)} s (peak ${fmt(cx.downloadPeakRssMb)} MB) + copy ${fmt(cx.copySeconds, 1)} s (peak ${fmt(cx.copyPeakRssMb)} MB), ${fmt(cx.stagedMb)} MB staged on disk`);
  if (cxAll) notes.push(`cometx with COMET_OFFLINE_SAMPLING_SIZE=${cxAll.samplingSize}: the same download (run once, counted in both rows) + copy ${fmt(cxAll.copySeconds, 1)} s (peak ${fmt(cxAll.copyPeakRssMb)} MB)`);
  if (cx && !cx.complete && cx.lost.every((l) => /^metric points missing|^\(/.test(l)))
    notes.push(`cometx ran with its defaults: its offline uploader keeps 15,000 points per metric name${cxAll ? '' : '; --cometx-sampling-size N raises that for an all-points comparison'}`);
  const ratioLine = (label, c) => {
    const r = { time: c.seconds / ts.seconds, peakRss: c.peakRssMb / ts.peakRssMb, cpu: c.cpuSeconds / ts.cpuSeconds };
    const valid = c.complete && ts.complete ? '' : ' — a contender is incomplete: it did less work';
    notes.push(`ratios ${label} ÷ trackshift: time ${r.time.toFixed(2)}×, peak RSS ${r.peakRss.toFixed(2)}×, CPU ${r.cpu.toFixed(2)}×${valid}`);
    return r;
  };
  if (ts && cx) results.ratios = ratioLine('cometx', cx);
  if (ts && cxAll) results.ratiosAllPoints = ratioLine(`cometx (sampling ${fmt(cxAll.samplingSize)})`, cxAll);
  console.log(`\nworkload: ${workloadLine(workload)}`);
  console.log(`machine: ${machine.cpus} × ${machine.cpu}, ${machine.memoryGb} GB, Linux ${machine.kernel}, Node ${machine.node}; load average ${machine.loadAverageAtStart.toFixed(1)} at start, ${machine.loadAverageAtEnd.toFixed(1)} at end`);
  console.log(`trackshift ${build.commit}${build.srcChanged ? ' (src/ has uncommitted changes)' : ''}; comet_ml ${results.comet_ml}, cometx ${results.cometx}; one local Comet-shaped server (test/harness/comet-server), no live Comet`);
  console.log(`source: ${archives.summary.cached && !archives.summary.fresh ? `the cached archives ${archives.summary.cached}` : `archives written in ${archives.summary.seconds} s`}, comet upload ${fmt(results.source.uploadSeconds, 1)} s`);
  results.table = printTable('Comet → Comet on one server (A/proj → a new workspace each)', results.rows, notes);
  for (const r of results.rows) {
    if (!r.profile) continue;
    console.log(`\nCPU profile of ${r.contender}: busy ${fmt(r.profile.busySeconds, 1)} s, idle (waiting on the server) ${fmt(r.profile.idleSeconds, 1)} s, of ${fmt(r.seconds, 1)} s wall; self time of the busy part:`);
    for (const e of r.profile.byModule) console.log(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
    console.log('  heaviest functions (self time):');
    for (const e of r.profile.byFunction.slice(0, 10)) console.log(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`);
  }
  if (keep) console.log(`\nkept: ${tempFolders().join(' ')}`);
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwritten: ${outFile.replace(`${ROOT}/`, '')}`);
  if (results.rows.some((r) => r.contender.startsWith('trackshift') && !r.complete)) process.exitCode = 1;
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const pgid of groups) killGroup(pgid, 'SIGTERM');
  });
