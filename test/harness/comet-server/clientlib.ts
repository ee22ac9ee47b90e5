/**
 * The logger endpoints under `/clientlib/` that comet_ml's Experiment and its offline sender
 * (`comet upload`) call: the handshake with a client-chosen experiment key, heartbeats, tags,
 * batched metrics and parameters, file uploads with their query parameters, the offline start/end
 * times. Shapes from comet_ml 3.58.8 connection/connection_api.py, connection_url_helpers.py,
 * handshake.py and offline.py.
 */
import { CometError, type Ctx, type Reply, type Route } from './http.js';
import { optBool, optNum, optStr, record, strings, valueString } from './input.js';
import { newId, validKey, type Experiment } from './store.js';

/** sdk_error_code comet_ml turns into ExperimentAlreadyUploaded (a re-upload of the same key) */
const EXPERIMENT_ALREADY_EXISTS = 90999;
/** sdk_error_code comet_ml turns into ExperimentNotFound on `logger/get/run` */
const NO_WRITE_ACCESS_TO_EXPERIMENT = 90210;

function handshake(ctx: Ctx, e: Experiment): Reply {
  const p = ctx.store.projects.get(e.projectId)!;
  return {
    json: {
      runId: e.runId,
      project_id: e.projectId,
      experimentKey: e.key,
      githubEnabled: false,
      focusUrl: `${ctx.baseUrl}/${p.workspaceName}/${p.projectName}/`,
      lastOffset: 0,
      upload_file_size_limit_in_mb: 100_000,
      asset_upload_file_size_limit_in_mb: 100_000,
      uploadVideoMaxSizeMB: 100_000,
      s3DirectAccessEnabled: false,
      featureToggles: [],
      name: e.name,
    },
  };
}

async function addRun(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const key = optStr(body, 'experimentKey') ?? newId();
  if (!validKey(key)) throw new CometError(400, `Invalid experiment key ${key}: 32 to 50 alphanumeric characters`);
  const existing = ctx.store.experiments.get(key);
  if (existing) {
    // a re-upload of the same archive never makes a second experiment
    if (optBool(body.getOrCreateEnabled)) return handshake(ctx, existing);
    throw new CometError(400, `Experiment ${key} already exists`, EXPERIMENT_ALREADY_EXISTS);
  }
  const workspace = optStr(body, 'teamName') ?? ctx.store.defaultWorkspace;
  const project = ctx.store.ensureProject(workspace, optStr(body, 'projectName') ?? 'general');
  return handshake(ctx, ctx.store.createExperiment(key, project, optBool(body.offline)));
}

async function getRun(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const key = body.previousExperiment;
  const e = typeof key === 'string' ? ctx.store.experiments.get(key) : undefined;
  if (!e) throw new CometError(400, `Experiment ${String(key)} not found`, NO_WRITE_ACCESS_TO_EXPERIMENT);
  e.running = !e.offline;
  return handshake(ctx, e);
}

async function statusUpdate(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const e = ctx.experiment(body.experimentKey);
  const alive = optBool(body.is_alive);
  // an offline upload's times come from status-report/offline-metadata, not from when it is sent
  if (!e.offline) {
    e.running = alive;
    e.endTimeMillis = Date.now();
  }
  return {
    json: {
      is_alive_beat_duration_millis: 60_000,
      gpu_monitor_interval_millis: 60_000,
      cpu_monitor_interval_millis: 68_000,
      parameter_update_interval_millis: 1_000,
      pending_rpcs: false,
    },
  };
}

async function offlineTimes(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const e = ctx.experiment(body.experimentKey);
  const start = optNum(body.startTimestamp, 'startTimestamp');
  const end = optNum(body.endTimestamp, 'endTimestamp');
  if (start !== null) e.startTimeMillis = start;
  if (end !== null) e.endTimeMillis = end;
  e.running = false;
  return { json: {} };
}

async function addTags(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  ctx.store.addTags(ctx.experiment(body.experimentKey), strings(body.addedTags, 'addedTags'));
  return { json: {} };
}

async function metricBatch(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const e = ctx.experiment(body.experimentKey);
  if (!Array.isArray(body.values)) throw new CometError(400, 'values must be a list');
  for (const raw of body.values as unknown[]) {
    const v = record(raw, 'values[]');
    if (typeof v.metricName !== 'string') throw new CometError(400, 'metricName is required');
    ctx.store.addMetric(e, {
      metricName: v.metricName,
      metricValue: valueString(v.metricValue),
      timestamp: optNum(v.timestamp, 'timestamp'),
      step: optNum(v.step, 'step'),
      epoch: optNum(v.epoch, 'epoch'),
      runContext: optStr(v, 'context'),
    });
  }
  return { json: {} };
}

async function parameterBatch(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const e = ctx.experiment(body.experimentKey);
  if (!Array.isArray(body.values)) throw new CometError(400, 'values must be a list');
  for (const raw of body.values as unknown[]) {
    const v = record(raw, 'values[]');
    if (typeof v.parameterName !== 'string') throw new CometError(400, 'parameterName is required');
    ctx.store.addLogged(e.params, v.parameterName, valueString(v.parameterValue), optNum(v.timestamp, 'timestamp'), optNum(v.step, 'step'));
  }
  return { json: {} };
}

/**
 * A file upload (`asset/upload`, `git-patch/upload`, `visualizations/upload`,
 * `asset/asset-item`): multipart `file` (and `metadata` as a JSON string); everything else in the
 * query — experimentId, projectId, runId, and the message's additional params (context, step,
 * epoch, assetId, fileName, extension, overwrite, type, groupingName, figName).
 */
function upload(kind: 'asset' | 'image' | 'git-patch'): (ctx: Ctx) => Promise<Reply> {
  return async (ctx) => {
    const q = ctx.query;
    const e = ctx.experiment(q.get('experimentId') ?? q.get('experimentKey'));
    const parts = await ctx.multipart();
    const file = parts.find((p) => p.name === 'file');
    const link = parts.find((p) => p.name === 'link')?.data.toString('utf8') ?? q.get('link');
    if (!file && !link) throw new CometError(400, 'No file in the upload');
    if (kind === 'git-patch') {
      e.gitPatch = file!.data;
      return { json: {} };
    }
    const metadata = parts.find((p) => p.name === 'metadata')?.data.toString('utf8') ?? q.get('metadata');
    const asset = ctx.store.addAsset(
      e,
      {
        // an image (visualizations/upload) is named by figName and identified by imageId
        assetId: q.get('assetId') || q.get('imageId') || newId(),
        fileName: q.get('fileName') ?? q.get('figName') ?? file?.filename ?? 'file',
        type: q.get('type') || kind,
        step: optNum(q.get('step'), 'step'),
        epoch: optNum(q.get('epoch'), 'epoch'),
        runContext: q.get('context') || null,
        metadata: metadata || null,
        remote: !file,
        link: file ? null : (link ?? null),
        groupingName: q.get('groupingName'),
      },
      file?.data ?? null,
      optBool(q.get('overwrite')),
    );
    return { json: { assetId: asset.assetId, web: `${ctx.baseUrl}/asset/${asset.assetId}`, api: `${ctx.baseUrl}/api/rest/v2/experiment/asset/get-asset?assetId=${asset.assetId}` } };
  };
}

async function createAsset(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const e = ctx.experiment(body.experimentKey);
  const asset = ctx.store.addAsset(
    e,
    {
      assetId: newId(),
      fileName: optStr(body, 'userFileName') ?? 'asset',
      type: optStr(body, 'assetType') ?? 'asset',
      step: optNum(body.step, 'step'),
      epoch: null,
      runContext: null,
      metadata: typeof body.metadata === 'string' ? body.metadata : null,
      remote: false,
      link: null,
      groupingName: null,
    },
    Buffer.alloc(0),
    false,
  );
  return { json: { assetId: asset.assetId } };
}

const ok = (): Reply => ({ json: {} });
const drained = (ctx: Ctx): Promise<Reply> => ctx.body().then(ok);

export const clientlibRoutes: Route[] = [
  { method: 'POST', base: 'clientlib', path: 'logger/add/run', handler: addRun },
  { method: 'POST', base: 'clientlib', path: 'logger/get/run', handler: getRun },
  { method: 'POST', base: 'clientlib', path: 'status-report/update', handler: statusUpdate },
  { method: 'POST', base: 'clientlib', path: 'status-report/offline-metadata', handler: offlineTimes },
  { method: 'POST', base: 'clientlib', path: 'tags/add-tags-to-experiment', handler: addTags },
  { method: 'POST', base: 'clientlib', path: 'batch/logger/experiment/metric', handler: metricBatch },
  { method: 'POST', base: 'clientlib', path: 'batch/logger/experiment/parameter', handler: parameterBatch },
  { method: 'POST', base: 'clientlib', path: 'asset/upload', handler: upload('asset') },
  { method: 'POST', base: 'clientlib', path: 'visualizations/upload', handler: upload('image') },
  { method: 'POST', base: 'clientlib', path: 'asset/asset-item', handler: upload('asset') },
  { method: 'POST', base: 'clientlib', path: 'git-patch/upload', handler: upload('git-patch') },
  { method: 'POST', base: 'clientlib', path: 'asset', handler: createAsset },
  { method: 'POST', base: 'clientlib', path: 'asset/3d-limits', handler: async (ctx) => (await ctx.body(), { json: {} }) },
  { method: 'GET', base: 'clientlib', path: 'rpc/get-pending-rpcs', handler: () => ({ json: { remoteProcedureCalls: [] } }) },
  { method: 'POST', base: 'clientlib', path: 'rpc/register-rpc', handler: drained },
  { method: 'POST', base: 'clientlib', path: 'notify/event', auth: false, handler: drained },
  // the online Experiment's end-of-run notification
  { method: 'POST', base: 'clientlib', path: 'notification/experiment', handler: drained },
  { method: 'GET', base: 'clientlib', path: 'health/ping', auth: false, handler: ok },
  // the backend version comet_ml checks features against (get-all metrics needs ≥ 3.20.60)
  { method: 'GET', base: 'clientlib', path: 'isAlive/ver', auth: false, handler: () => ({ json: { version: '3.40.0' } }) },
];
