/**
 * The REST v2 reads (`/api/rest/v2/…`, GET unless noted) comet_ml's RestApiClient / API and
 * cometx's download call, answered in the shapes comet_ml reads: values of parameters, others
 * and metric points as strings, summaries with valueCurrent/Min/Max and their timestamps, every
 * metric point in `get-metric` / `get-all` / `multi-metric-chart` with fetchFull.
 */
import { CometError, type Ctx, type Reply, type Route } from './http.js';
import { optNum } from './input.js';
import type { Asset, CometStore, Experiment, Logged, MetricPoint, Project } from './store.js';

export function projectJson(store: CometStore, p: Project): Record<string, unknown> {
  return {
    projectId: p.projectId,
    projectName: p.projectName,
    ownerUserName: p.workspaceName,
    projectDescription: p.projectDescription,
    workspaceName: p.workspaceName,
    numberOfExperiments: store.experimentsOf(p.projectId).length,
    lastUpdated: p.lastUpdated,
    public: p.public,
  };
}

export function metadataJson(store: CometStore, e: Experiment): Record<string, unknown> {
  const p = store.projects.get(e.projectId)!;
  return {
    experimentKey: e.key,
    experimentName: e.name,
    optimizationId: null,
    projectId: p.projectId,
    projectName: p.projectName,
    workspaceName: p.workspaceName,
    startTimeMillis: e.startTimeMillis,
    endTimeMillis: e.endTimeMillis,
    durationMillis: e.endTimeMillis - e.startTimeMillis,
    running: e.running,
    archived: e.archived,
    fileName: e.fileName,
    filePath: e.filePath,
    throttle: false,
  };
}

const numeric = (v: string): number | null => {
  const n = Number(v);
  return v.trim() !== '' && Number.isFinite(n) ? n : null;
};

/** Comet's summary of a logged series: the last value, and the least and greatest where numeric */
function summary(name: string, values: readonly Logged[], editable: boolean, current = values.at(-1)!): Record<string, unknown> {
  let min = current;
  let max = current;
  for (const v of values) {
    const n = numeric(v.value);
    if (n === null) continue;
    if (numeric(min.value) === null || n < numeric(min.value)!) min = v;
    if (numeric(max.value) === null || n > numeric(max.value)!) max = v;
  }
  return {
    name,
    valueMax: max.value,
    valueMin: min.value,
    valueCurrent: current.value,
    timestampMax: max.timestamp,
    timestampMin: min.timestamp,
    timestampCurrent: current.timestamp,
    stepMax: max.step,
    stepMin: min.step,
    stepCurrent: current.step,
    editable,
  };
}

const summaries = (map: Map<string, Logged[]>, editable: boolean) => [...map].map(([name, values]) => summary(name, values, editable));

const asLogged = (points: MetricPoint[]): Logged[] => points.map((p) => ({ value: p.metricValue, timestamp: p.timestamp ?? 0, step: p.step }));

/** a metric's current value is the one at the greatest step (the offline sampler sends points out of order), the later on a tie */
function metricSummary(name: string, points: MetricPoint[]): Record<string, unknown> {
  const values = asLogged(points);
  let at = 0;
  values.forEach((v, i) => {
    if ((v.step ?? -Infinity) >= (values[at]!.step ?? -Infinity)) at = i;
  });
  return summary(name, values, false, values[at]);
}

export function assetJson(ctx: Ctx, e: Experiment, a: Asset): Record<string, unknown> {
  const api = `${ctx.baseUrl}/api/rest/v2/experiment/asset/get-asset?experimentKey=${e.key}&assetId=${a.assetId}`;
  const image = a.type === 'image';
  return {
    assetId: a.assetId,
    fileName: a.fileName,
    fileSize: a.fileSize,
    runContext: a.runContext,
    step: a.step,
    epoch: a.epoch,
    remote: a.remote,
    link: a.remote ? a.link : api,
    compressedAssetLink: a.remote ? null : api,
    s3Link: null,
    createdAt: a.createdAt,
    dir: image ? 'images' : a.type === 'asset' ? 'assets' : a.type,
    canView: image,
    audio: a.type === 'audio',
    video: a.type === 'video',
    histogram: a.type === 'histogram_combined_3d',
    image,
    type: a.type,
    metadata: a.metadata,
    tags: [],
    curlDownload: `curl "${api}" -H"Authorization: <Your Api Key>" > ${a.fileName}`,
    experimentKey: e.key,
    items: [],
    etag: null,
  };
}

function listExperiments(ctx: Ctx): Reply {
  const q = ctx.query;
  const project = q.get('projectId')
    ? ctx.projectById(q.get('projectId'))
    : ctx.store.project(q.get('workspaceName') ?? '', q.get('projectName') ?? '');
  if (!project) throw new CometError(404, `Project ${q.get('workspaceName')}/${q.get('projectName')} not found`);
  const archived = q.get('archived') === 'true' || q.get('archived') === 'True';
  let list = ctx.store.experimentsOf(project.projectId).filter((e) => e.archived === archived);
  const sortBy = q.get('sortBy');
  if (sortBy) {
    if (sortBy !== 'startTime' && sortBy !== 'endTime') throw new CometError(400, 'sortBy must be startTime or endTime');
    const field = sortBy === 'startTime' ? 'startTimeMillis' : 'endTimeMillis';
    const sign = q.get('sortOrder') === 'desc' ? -1 : 1;
    list = [...list].sort((a, b) => sign * (a[field] - b[field]));
  }
  const page = optNum(q.get('page'), 'page');
  const size = optNum(q.get('size'), 'size');
  if (page !== null || size !== null) {
    const p = page ?? 1;
    const s = size ?? 100;
    if (!Number.isInteger(p) || p < 1 || !Number.isInteger(s) || s < 1) throw new CometError(400, 'page and size must be positive integers');
    list = list.slice((p - 1) * s, p * s);
  }
  return { json: { experiments: list.map((e) => metadataJson(ctx.store, e)) } };
}

function getProject(ctx: Ctx): Reply {
  const q = ctx.query;
  const p = q.get('projectId') ? ctx.projectById(q.get('projectId')) : ctx.store.project(q.get('workspaceName') ?? '', q.get('projectName') ?? '');
  if (!p) throw new CometError(404, `Project ${q.get('workspaceName')}/${q.get('projectName')} not found`);
  return { json: projectJson(ctx.store, p) };
}

function getProjects(ctx: Ctx): Reply {
  const ws = ctx.query.get('workspaceName') ?? '';
  if (!ctx.store.workspaces.has(ws)) throw new CometError(404, `Workspace ${ws} not found`);
  return { json: { projects: [...ctx.store.projects.values()].filter((p) => p.workspaceName === ws).map((p) => projectJson(ctx.store, p)) } };
}

const exp = (ctx: Ctx): Experiment => ctx.experiment(ctx.query.get('experimentKey'));

/** one experiment's series for multi-metric-chart: numbers, with NaN/±Infinity as strings */
function chartSeries(points: MetricPoint[], full: boolean): Record<string, unknown> {
  const every = full || points.length <= 15_000 ? 1 : Math.ceil(points.length / 15_000);
  const kept = points.filter((_, i) => i % every === 0 || i === points.length - 1);
  const first = kept[0]?.timestamp ?? 0;
  return {
    metricName: points[0]?.metricName,
    values: kept.map((p) => (Number.isFinite(Number(p.metricValue)) ? Number(p.metricValue) : p.metricValue)),
    steps: kept.map((p) => p.step),
    epochs: kept.map((p) => p.epoch),
    timestamps: kept.map((p) => p.timestamp),
    durations: kept.map((p) => (p.timestamp ?? first) - first),
    contexts: kept.map((p) => p.runContext),
  };
}

async function multiMetricChart(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const keys = body.targetedExperiments;
  const names = body.metrics;
  if (!Array.isArray(keys) || !Array.isArray(names)) throw new CometError(400, 'targetedExperiments and metrics must be lists');
  const params = Array.isArray(body.params) ? (body.params as unknown[]) : null;
  const experiments: Record<string, unknown> = {};
  for (const key of keys) {
    const e = ctx.experiment(key);
    const metrics = names.filter((n): n is string => typeof n === 'string' && e.metrics.has(n)).map((n) => chartSeries(e.metrics.get(n)!, body.fetchFull === true));
    const paramValues = params ? Object.fromEntries(params.filter((n): n is string => typeof n === 'string' && e.params.has(n)).map((n) => [n, e.params.get(n)!.at(-1)!.value])) : null;
    experiments[e.key] = { experimentKey: e.key, metrics, params: paramValues, empty: metrics.length === 0 };
  }
  return { json: { experiments, empty: Object.values(experiments).every((x) => (x as { empty: boolean }).empty) } };
}

function systemDetails(ctx: Ctx): Reply {
  const e = exp(ctx);
  const d = e.systemDetails;
  const f = (k: string, dflt: unknown = null) => (k in d ? d[k] : dflt);
  // every field comet_ml reads by name (it indexes the answer, so none may be missing)
  return {
    json: {
      experimentKey: e.key,
      user: f('user'),
      pythonVersion: f('pythonVersion'),
      pythonVersionVerbose: f('pythonVersionVerbose'),
      pid: f('pid'),
      osType: f('osType'),
      os: f('os'),
      osRelease: f('osRelease'),
      machine: f('machine'),
      processor: f('processor'),
      ip: f('ip'),
      hostname: f('hostname'),
      env: f('env'),
      gpuStaticInfoList: f('gpuStaticInfoList', []),
      logAdditionalSystemInfoList: f('logAdditionalSystemInfoList', []),
      systemMetricNames: [...e.metrics.keys()].filter((n) => n.startsWith('sys.')),
      maxTotalMemory: f('maxTotalMemory'),
      networkInterfaceIps: f('networkInterfaceIps', []),
      command: f('command', []),
      executable: f('executable'),
      osPackages: f('osPackages', []),
      installedPackages: f('installedPackages', []),
      totalRam: f('totalRam'),
    },
  };
}

function getAsset(ctx: Ctx): Reply {
  const id = ctx.query.get('assetId');
  const key = ctx.query.get('experimentKey');
  const owners = key ? [ctx.experiment(key)] : [...ctx.store.experiments.values()];
  for (const e of owners) {
    const a = e.assets.find((x) => x.assetId === id);
    if (a) return { bytes: ctx.store.assetBytes(a) };
  }
  throw new CometError(404, `Asset ${String(id)} not found`);
}

function assetList(ctx: Ctx, byName: boolean): Reply {
  const e = exp(ctx);
  const type = ctx.query.get('type');
  const name = ctx.query.get('assetName');
  const assets = e.assets.filter((a) => (!type || type === 'all' || a.type === type) && (!byName || a.fileName === name));
  return { json: { assets: assets.map((a) => assetJson(ctx, e, a)) } };
}

export const restReadRoutes: Route[] = [
  { method: 'GET', base: 'rest', path: 'account-details', handler: (ctx) => ({ json: { userName: ctx.store.defaultWorkspace, defaultWorkspaceName: ctx.store.defaultWorkspace } }) },
  { method: 'GET', base: 'rest', path: 'workspaces', handler: (ctx) => ({ json: { workspaceNames: [...ctx.store.workspaces] } }) },
  { method: 'GET', base: 'rest', path: 'projects', handler: getProjects },
  { method: 'GET', base: 'rest', path: 'project', handler: getProject },
  { method: 'GET', base: 'rest', path: 'project/notes', handler: (ctx) => ({ json: { notes: ctx.projectById(ctx.query.get('projectId')).notes } }) },
  { method: 'GET', base: 'rest', path: 'experiments', handler: listExperiments },
  { method: 'GET', base: 'rest', path: 'experiment/metadata', handler: (ctx) => ({ json: metadataJson(ctx.store, exp(ctx)) }) },
  { method: 'GET', base: 'rest', path: 'experiment/tags', handler: (ctx) => ({ json: { tags: exp(ctx).tags } }) },
  { method: 'GET', base: 'rest', path: 'experiment/parameters', handler: (ctx) => ({ json: { values: summaries(exp(ctx).params, true) } }) },
  { method: 'GET', base: 'rest', path: 'experiment/log-other', handler: (ctx) => ({ json: { values: summaries(exp(ctx).others, true) } }) },
  {
    method: 'GET',
    base: 'rest',
    path: 'experiment/metrics/summary',
    handler: (ctx) => ({ json: { values: [...exp(ctx).metrics].map(([name, points]) => metricSummary(name, points)) } }),
  },
  {
    method: 'GET',
    base: 'rest',
    path: 'experiment/metrics/get-metric',
    handler: (ctx) => {
      const e = exp(ctx);
      const name = ctx.query.get('metricName') ?? '';
      return { json: { experimentKey: e.key, metricName: name, metrics: e.metrics.get(name) ?? [] } };
    },
  },
  { method: 'GET', base: 'rest', path: 'experiment/metrics/get-all', handler: (ctx) => ({ json: { metrics: [...exp(ctx).metrics.values()].flat() } }) },
  { method: 'POST', base: 'rest', path: 'experiments/multi-metric-chart', handler: multiMetricChart },
  { method: 'GET', base: 'rest', path: 'experiment/system-details', handler: systemDetails },
  {
    method: 'GET',
    base: 'rest',
    path: 'experiment/git/metadata',
    handler: (ctx) => {
      const g = exp(ctx).gitMetadata ?? {};
      return { json: { user: g.user ?? null, root: g.root ?? null, branch: g.branch ?? null, parent: g.parent ?? null, origin: g.origin ?? null } };
    },
  },
  {
    method: 'GET',
    base: 'rest',
    path: 'experiment/git/patch',
    // no patch: a JSON message (comet_ml checks for the `{"msg"` prefix)
    handler: (ctx) => {
      const patch = exp(ctx).gitPatch;
      return patch ? { bytes: patch } : { json: { msg: 'No git patch' } };
    },
  },
  { method: 'GET', base: 'rest', path: 'experiment/code', handler: (ctx) => ({ json: { code: exp(ctx).code } }) },
  { method: 'GET', base: 'rest', path: 'experiment/output', handler: (ctx) => ({ json: { output: exp(ctx).output.map((l) => l.output).join('') } }) },
  { method: 'GET', base: 'rest', path: 'experiment/html', handler: (ctx) => ({ json: { html: exp(ctx).html } }) },
  { method: 'GET', base: 'rest', path: 'experiment/graph', handler: (ctx) => ({ json: { graph: exp(ctx).graph } }) },
  { method: 'GET', base: 'rest', path: 'experiment/asset/list', handler: (ctx) => assetList(ctx, false) },
  { method: 'GET', base: 'rest', path: 'experiment/asset/get-by-name', handler: (ctx) => assetList(ctx, true) },
  { method: 'GET', base: 'rest', path: 'experiment/asset/get-asset', handler: getAsset },
];
