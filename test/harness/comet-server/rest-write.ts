/**
 * The REST v2 writes of comet_ml's RestApiClient (`/api/rest/v2/write/…`; output and
 * system-details also under `/clientlib/rest/v2/`), with the payloads comet_ml 3.58.8 sends.
 */
import { CometError, type Ctx, type Reply, type Route } from './http.js';
import { optBool, optNum, optStr, record, str, strings, valueString } from './input.js';
import { projectJson } from './rest-read.js';
import { newId, type Experiment } from './store.js';

const done = (): Reply => ({ json: {} });

async function withExperiment(ctx: Ctx, act: (e: Experiment, body: Record<string, unknown>) => void): Promise<Reply> {
  const body = await ctx.json();
  act(ctx.experiment(body.experimentKey), body);
  return done();
}

async function createProject(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const ws = str(body, 'workspaceName');
  const name = str(body, 'projectName');
  if (ctx.store.project(ws, name)) throw new CometError(400, `Project ${ws}/${name} already exists`);
  const p = ctx.store.ensureProject(ws, name, optStr(body, 'projectDescription'), optBool(body.isPublic));
  return { json: projectJson(ctx.store, p) };
}

async function updateProject(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const p = body.projectId !== undefined ? ctx.projectById(body.projectId) : ctx.store.project(str(body, 'workspaceName'), str(body, 'projectName'));
  if (!p) throw new CometError(404, 'Project not found');
  const name = optStr(body, 'newProjectName');
  if (name) p.projectName = name;
  if (body.newProjectDescription !== undefined) p.projectDescription = optStr(body, 'newProjectDescription');
  if (body.isPublic !== undefined) p.public = optBool(body.isPublic);
  return { json: projectJson(ctx.store, p) };
}

async function projectNotes(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const p = ctx.projectById(body.projectId);
  p.notes = optStr(body, 'notes') ?? '';
  return { json: { notes: p.notes } };
}

async function createExperiment(ctx: Ctx): Promise<Reply> {
  const body = await ctx.json();
  const p = ctx.store.ensureProject(str(body, 'workspaceName'), str(body, 'projectName'));
  const e = ctx.store.createExperiment(newId(), p, false);
  const name = optStr(body, 'experimentName');
  if (name !== null) {
    e.name = name;
    ctx.store.addLogged(e.others, 'Name', name, null, null);
  }
  return { json: { experimentKey: e.key, link: `${ctx.baseUrl}/${p.workspaceName}/${p.projectName}/${e.key}` } };
}

function logOther(ctx: Ctx, e: Experiment, body: Record<string, unknown>): void {
  const key = str(body, 'key');
  const value = valueString(body.value);
  // Comet keeps the experiment's name as the other `Name`
  if (key === 'Name') e.name = value;
  ctx.store.addLogged(e.others, key, value, optNum(body.timestamp, 'timestamp'), null);
}

function output(e: Experiment, body: Record<string, unknown>): void {
  if (!Array.isArray(body.outputLines)) throw new CometError(400, 'outputLines must be a list');
  const context = optStr(body, 'runContext');
  for (const raw of body.outputLines as unknown[]) {
    const l = record(raw, 'outputLines[]');
    e.output.push({ output: valueString(l.output), stderr: optBool(l.stderr), localTimestamp: optNum(l.localTimestamp, 'localTimestamp'), offset: optNum(l.offset, 'offset') ?? e.output.length, runContext: context });
  }
}

/** the partial writes of system details merge into what is there; additional info is appended */
function systemDetails(e: Experiment, body: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(body)) {
    if (k === 'experimentKey' || v === undefined) continue;
    if (k === 'logAdditionalSystemInfoList' && Array.isArray(v)) {
      const had = Array.isArray(e.systemDetails[k]) ? (e.systemDetails[k] as unknown[]) : [];
      e.systemDetails[k] = [...had, ...v];
    } else e.systemDetails[k] = v;
  }
}

/** `write/experiment/upload-asset` and `write/experiment/git/patch`: multipart `file`, the rest in the query */
function multipartUpload(kind: 'asset' | 'git-patch'): (ctx: Ctx) => Promise<Reply> {
  return async (ctx) => {
    const q = ctx.query;
    const e = ctx.experiment(q.get('experimentKey'));
    const parts = await ctx.multipart();
    const file = parts.find((p) => p.name === 'file');
    if (!file) throw new CometError(400, 'No file in the upload');
    if (kind === 'git-patch') {
      e.gitPatch = file.data;
      return done();
    }
    const metadata = parts.find((p) => p.name === 'metadata')?.data.toString('utf8') ?? q.get('metadata');
    const asset = ctx.store.addAsset(
      e,
      {
        assetId: q.get('assetId') || newId(),
        fileName: q.get('fileName') ?? file.filename ?? 'file',
        type: q.get('type') || 'asset',
        step: optNum(q.get('step'), 'step'),
        epoch: optNum(q.get('epoch'), 'epoch'),
        runContext: q.get('context') || null,
        metadata: metadata || null,
        remote: false,
        link: null,
        groupingName: q.get('groupingName'),
      },
      file.data,
      optBool(q.get('overwrite')),
    );
    return { json: { assetId: asset.assetId, web: asset.link, api: `${ctx.baseUrl}/api/rest/v2/experiment/asset/get-asset?experimentKey=${e.key}&assetId=${asset.assetId}` } };
  };
}

/** GET writes that take only `experimentKey` in the query */
function byKey(act: (e: Experiment, ctx: Ctx) => void): (ctx: Ctx) => Reply {
  return (ctx) => {
    const e = ctx.experiment(ctx.query.get('experimentKey'));
    act(e, ctx);
    return done();
  };
}

export const restWriteRoutes: Route[] = [
  { method: 'POST', base: 'rest', path: 'write/project/create', handler: createProject },
  { method: 'POST', base: 'rest', path: 'write/project/update', handler: updateProject },
  { method: 'POST', base: 'rest', path: 'write/project/notes', handler: projectNotes },
  { method: 'POST', base: 'rest', path: 'write/experiment/create', handler: createExperiment },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/set-start-end-time',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        const start = optNum(b.startTimeMillis, 'startTimeMillis');
        const end = optNum(b.endTimeMillis, 'endTimeMillis');
        if (start !== null) e.startTimeMillis = start;
        if (end !== null) e.endTimeMillis = end;
      }),
  },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/metric',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) =>
        ctx.store.addMetric(e, {
          metricName: str(b, 'metricName'),
          metricValue: valueString(b.metricValue),
          timestamp: optNum(b.timestamp, 'timestamp') ?? Date.now(),
          step: optNum(b.step, 'step'),
          epoch: optNum(b.epoch, 'epoch'),
          runContext: optStr(b, 'context'),
        }),
      ),
  },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/parameter',
    handler: (ctx) => withExperiment(ctx, (e, b) => ctx.store.addLogged(e.params, str(b, 'parameterName'), valueString(b.parameterValue), optNum(b.timestamp, 'timestamp'), optNum(b.step, 'step'))),
  },
  { method: 'POST', base: 'rest', path: 'write/experiment/log-other', handler: (ctx) => withExperiment(ctx, (e, b) => logOther(ctx, e, b)) },
  { method: 'POST', base: 'rest', path: 'write/experiment/tags', handler: (ctx) => withExperiment(ctx, (e, b) => ctx.store.addTags(e, strings(b.addedTags, 'addedTags'))) },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/tags/delete',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        const gone = new Set(strings(b.tags, 'tags'));
        e.tags = e.tags.filter((t) => !gone.has(t));
      }),
  },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/html',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        const html = optStr(b, 'html') ?? '';
        e.html = optBool(b.override) ? html : e.html + html;
      }),
  },
  { method: 'POST', base: 'rest', path: 'write/experiment/code', handler: (ctx) => withExperiment(ctx, (e, b) => (e.code = optStr(b, 'code'))) },
  { method: 'POST', base: 'rest', path: 'write/experiment/graph', handler: (ctx) => withExperiment(ctx, (e, b) => (e.graph = optStr(b, 'graph'))) },
  { method: 'POST', base: 'rest', path: 'write/experiment/file-path', handler: (ctx) => withExperiment(ctx, (e, b) => (e.filePath = e.fileName = optStr(b, 'filePath'))) },
  { method: 'POST', base: 'rest', path: 'write/experiment/output', handler: (ctx) => withExperiment(ctx, (e, b) => output(e, b)) },
  { method: 'POST', base: 'rest', path: 'write/experiment/system-details', handler: (ctx) => withExperiment(ctx, (e, b) => systemDetails(e, b)) },
  { method: 'POST', base: 'rest', path: 'write/experiment/cloud-details', handler: (ctx) => withExperiment(ctx, (e, b) => (e.cloudDetails = b)) },
  {
    method: 'PUT',
    base: 'rest',
    path: 'write/experiment/dependencies',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        for (const d of Array.isArray(b.logDependencies) ? (b.logDependencies as unknown[]) : []) {
          const r = record(d, 'logDependencies[]');
          e.dependencies.push({ name: valueString(r.name), version: valueString(r.version) });
        }
      }),
  },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/git/metadata',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        e.gitMetadata = { user: b.user ?? null, root: b.root ?? null, branch: b.branch ?? null, parent: b.parent ?? null, origin: b.origin ?? null };
      }),
  },
  { method: 'POST', base: 'rest', path: 'write/experiment/git/patch', handler: multipartUpload('git-patch') },
  { method: 'POST', base: 'rest', path: 'write/experiment/upload-asset', handler: multipartUpload('asset') },
  {
    method: 'POST',
    base: 'rest',
    path: 'write/experiment/update-status',
    handler: (ctx) =>
      withExperiment(ctx, (e, b) => {
        e.running = optBool(b.isAlive);
        if (typeof b.error === 'string') ctx.store.addLogged(e.others, 'error', b.error, null, null);
      }),
  },
  { method: 'GET', base: 'rest', path: 'write/experiment/set-status', handler: byKey((e) => (e.running = true)) },
  {
    method: 'GET',
    base: 'rest',
    path: 'write/experiment/stop',
    handler: byKey((e) => {
      e.running = false;
      e.endTimeMillis = Date.now();
    }),
  },
  { method: 'GET', base: 'rest', path: 'write/experiment/archive', handler: byKey((e) => (e.archived = true)) },
  { method: 'GET', base: 'rest', path: 'write/experiment/restore', handler: byKey((e) => (e.archived = false)) },
  { method: 'GET', base: 'rest', path: 'write/experiment/delete', handler: byKey((e, ctx) => ctx.store.experiments.delete(e.key)) },
];
