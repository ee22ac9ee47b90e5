/**
 * Comet's REST API v2 records (comet_ml/api.py, connection_api.py) and how they map onto the
 * model, the same way an offline archive's messages do (layout.ts): a cometx download folder is
 * saved REST responses, and the REST connector reads the same records over HTTP. Every record is
 * validated here, at the boundary, whether it came from a file line or an HTTP response.
 *
 * REST gives every parameter, other and metric value as a string: values are typed back from
 * their text (values.ts inferredValue), and the run extras say the type where the text cannot.
 */
import { z } from 'zod';
import type { ConfigEntry, MetricPoint, PointBase, Run, RunStatus, SeriesFile, SeriesInfo, SeriesType, TypedValue } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { keyToFileName, quoted, relativePathProblem } from '../../util/paths.js';
import { parseExtras, type RunExtras } from './extras.js';
import { ASSETS_MANIFEST, FILE_META, MANUAL_SOURCE, NAME_OTHER, PATH_META, RUN_OTHER, SERIES_META, SERIES_UPLOADS, STDERR_KEY, STDOUT_KEY, SYSTEM_PREFIX, TEXT_KEY, UPLOAD, paramPath, projectTags, uploadName } from './layout.js';
import { inferredValue, metricNumber, retyped, typedValue } from './values.js';

const nullishString = z.string().nullish();
const nullishNumber = z.number().nullish();

/** `experiment/metadata` (cometx adds `tags` and `cometDownloadVersion`). */
export const restMetadataSchema = z.looseObject({
  experimentKey: nullishString,
  experimentName: nullishString,
  projectName: nullishString,
  workspaceName: nullishString,
  userName: nullishString,
  startTimeMillis: nullishNumber,
  endTimeMillis: nullishNumber,
  running: z.boolean().nullish(),
  archived: z.boolean().nullish(),
  fileName: nullishString,
  filePath: nullishString,
  tags: z.array(z.string()).nullish(),
});
export type RestMetadata = z.infer<typeof restMetadataSchema>;

/** One point of `experiment/metrics/get-metric` / `get-all`. */
export const restMetricSchema = z.looseObject({
  metricName: z.string(),
  metricValue: z.union([z.string(), z.number(), z.null()]).optional(),
  timestamp: nullishNumber,
  step: nullishNumber,
  epoch: nullishNumber,
  runContext: nullishString,
});
export type RestMetric = z.infer<typeof restMetricSchema>;

/** One entry of `experiment/parameters` or `experiment/log-other` (values are strings; cometx's wandb export writes any JSON). */
export const restValueSchema = z.looseObject({
  name: z.string(),
  valueCurrent: z.unknown(),
  valueMin: z.unknown().optional(),
  valueMax: z.unknown().optional(),
  timestampCurrent: nullishNumber,
  timestampMin: nullishNumber,
  timestampMax: nullishNumber,
});
export type RestValue = z.infer<typeof restValueSchema>;

/** One entry of `experiment/asset/list` (cometx adds `logAsFileName` and `diskFileName`). */
export const restAssetSchema = z.looseObject({
  assetId: nullishString,
  fileName: z.string(),
  fileSize: nullishNumber,
  type: nullishString,
  step: nullishNumber,
  epoch: nullishNumber,
  runContext: nullishString,
  createdAt: nullishNumber,
  metadata: nullishString,
  remote: z.boolean().nullish(),
  link: nullishString,
  dir: nullishString,
  logAsFileName: nullishString,
  diskFileName: nullishString,
  /** what an archive's upload held beyond these fields, kept by trackshift's writers (UPLOAD_FIELD) */
  trackshiftUpload: z.record(z.string(), z.unknown()).nullish(),
});
export type RestAsset = z.infer<typeof restAssetSchema>;
/** the asset record field where trackshift keeps an archive upload's payload, so that it reads back the same */
export const UPLOAD_FIELD = 'trackshiftUpload';

/** `experiment/system-details`. */
export const restSystemDetailsSchema = z.looseObject({
  installedPackages: z.array(z.string()).nullish(),
  osPackages: z.array(z.string()).nullish(),
});
export type RestSystemDetails = z.infer<typeof restSystemDetailsSchema>;

/** `experiment/git/metadata`. */
export const restGitMetadataSchema = z.looseObject({ user: nullishString, root: nullishString, branch: nullishString, parent: nullishString, origin: nullishString });
export type RestGitMetadata = z.infer<typeof restGitMetadataSchema>;

/** `project` (cometx's project_metadata.json). */
export const restProjectSchema = z.looseObject({
  projectId: nullishString,
  projectName: nullishString,
  projectDescription: nullishString,
  workspaceName: nullishString,
  ownerUserName: nullishString,
  public: z.boolean().nullish(),
  numberOfExperiments: nullishNumber,
  lastUpdated: nullishNumber,
});
export type RestProject = z.infer<typeof restProjectSchema>;

/**
 * A record validated, or an error naming where it came from. The record is given back as it
 * came, fields in their order (the schemas above have no defaults or transforms, so it is what
 * the parse would give, but a parse puts known fields first, and records are kept verbatim).
 */
export function parseRecord<T>(schema: z.ZodType<T>, json: unknown, where: string): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidInputError(where, `${issue?.message}${issue?.path.length ? ` at ${issue.path.join('.')}` : ''}`);
  }
  return json as T;
}

/** Step, epoch, context and time as the model's point has them (a null step is 0, as in an archive). */
export function pointBase(step: number | null | undefined, timestamp: number | null | undefined, epoch?: number | null, context?: string | null): PointBase {
  return {
    step: step ?? 0,
    ...(timestamp !== null && timestamp !== undefined ? { timestamp } : {}),
    ...(epoch !== null && epoch !== undefined ? { epoch } : {}),
    ...(context ? { context } : {}),
  };
}

/** A metric record as a point; one without a value is no point (cometx copy drops it too). */
export function metricPointOf(record: RestMetric): MetricPoint | undefined {
  if (record.metricValue === null || record.metricValue === undefined) return undefined;
  return { key: record.metricName, ...pointBase(record.step, record.timestamp, record.epoch, record.runContext), value: metricNumber(record.metricValue) };
}

/** A parameter's or other's value: REST's string typed from its text; any other JSON as an archive's scalar. */
export const restValueOf = (value: unknown): TypedValue => (typeof value === 'string' ? inferredValue(value) : typedValue(value));

/** REST asset types that are not the upload type the client sent (images are uploaded as `visualization`). */
const REST_TYPE_OF_UPLOAD: Record<string, string> = { [UPLOAD.image]: 'image' };
const UPLOAD_OF_REST_TYPE: Record<string, string> = Object.fromEntries(Object.entries(REST_TYPE_OF_UPLOAD).map(([upload, rest]) => [rest, upload]));
export const restTypeOf = (uploadType: string): string => REST_TYPE_OF_UPLOAD[uploadType] ?? uploadType;
export const uploadTypeOf = (restType: string | null | undefined): string => (restType ? (UPLOAD_OF_REST_TYPE[restType] ?? restType) : UPLOAD.asset);
/** the REST type of 3D histograms: one asset per name holding every step (`{"histograms": [{step, histogram}]}`) */
export const COMBINED_HISTOGRAM = 'histogram_combined_3d';

/** system-details fields whose name in comet_ml's system_details message is not the REST one */
const SYSTEM_FIELDS: Record<string, string> = { executable: 'python_exe', osRelease: 'os_release', osType: 'os_type', pythonVersion: 'python_version', pythonVersionVerbose: 'python_version_verbose' };
/** the fields of comet_ml's system_details message (messages.py SystemDetailsMessage) */
const MESSAGE_SYSTEM_FIELDS = new Set(['command', 'env', 'hostname', 'ip', 'machine', 'os', 'os_release', 'os_type', 'pid', 'processor', 'python_exe', 'python_version', 'python_version_verbose', 'user']);
/** REST system-details fields the message has no place for: kept whole in this artifact */
export const REST_SYSTEM_DETAILS = 'comet/rest/system_details.json';

/** The artifact `comet/<type>.json` as the archive reader writes it: the list of payloads. */
export const messagesContent = (payloads: unknown[]): Buffer => Buffer.from(JSON.stringify(payloads, null, 1));

/**
 * A REST system-details record without what belongs to its experiment: the key it answers for and
 * the names of its sys.* metrics are no details of their own (a copy has another key; its metrics
 * say their names).
 */
export function withoutExperimentFields<T extends Record<string, unknown>>(record: T): T {
  const { experimentKey: _key, systemMetricNames: _names, ...rest } = record;
  return rest as T;
}

/** whether a REST field says anything: not null, nor an empty text, list or object */
const holdsSomething = (value: unknown): boolean =>
  value !== null && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0) && !(typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);

/** A system-details record as comet_ml's system_details message payload, and what REST has beyond it. */
export function systemDetailsPayload(record: RestSystemDetails): { payload: Record<string, unknown>; rest: Record<string, unknown> } {
  const payload: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(record)) {
    if (field === 'installedPackages' || field === 'osPackages') continue;
    const name = SYSTEM_FIELDS[field] ?? field;
    if (MESSAGE_SYSTEM_FIELDS.has(name)) payload[name] = value;
    else if (value !== null && value !== undefined) rest[field] = value;
  }
  return { payload, rest };
}

/** A system_details message payload (and the REST fields kept beside it) as the REST record. */
export function systemDetailsRecord(payload: Record<string, unknown>, rest: Record<string, unknown> = {}): Record<string, unknown> {
  const back = Object.fromEntries(Object.entries(SYSTEM_FIELDS).map(([field, name]) => [name, field]));
  return { ...rest, ...Object.fromEntries(Object.entries(payload).map(([name, value]) => [back[name] ?? name, value])) };
}

/** What a REST experiment is made of, as read from the API or a cometx folder. */
export interface RestRunInput {
  /** the experiment key (for a folder without metadata, its name) */
  key: string;
  experimentId: string;
  metadata?: RestMetadata | undefined;
  /** `experiment/tags`, when not in the metadata */
  tags?: string[] | undefined;
  parameters: RestValue[];
  others: RestValue[];
  /** the metric names, in the order first met */
  metricNames: Iterable<string>;
  /** the output streams that have text */
  outputs: Array<typeof STDOUT_KEY | typeof STDERR_KEY>;
  assets: RestAsset[];
  systemDetails?: RestSystemDetails | undefined;
  /** requirements (installed packages), when not in the system details */
  installedPackages?: string[] | undefined;
  gitMetadata?: RestGitMetadata | undefined;
  html?: string | undefined;
  graph?: string | undefined;
  /** `where` for warnings and errors */
  where: string;
}

/** The assets of a series: each one point (a combined 3D histogram: one point per step it holds). */
export interface AssetSeries {
  type: Exclude<SeriesType, 'float'>;
  assets: RestAsset[];
}

export interface RestRun {
  run: Run;
  extras: RunExtras;
  series: Map<string, AssetSeries>;
  /** artifact path → the asset holding it, or its content (made from records) */
  artifacts: Map<string, { asset: RestAsset } | { content: Buffer }>;
  warnings: string[];
}

/** An asset's metadata (a JSON string over REST) as an object. */
export function assetMetadata(asset: RestAsset): Record<string, unknown> | undefined {
  if (!asset.metadata) return undefined;
  try {
    const parsed: unknown = JSON.parse(asset.metadata);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The name an asset is logged as (cometx renames stepped audio on disk and keeps the name in logAsFileName). */
export const assetName = (asset: RestAsset): string => uploadName(asset.logAsFileName ?? asset.fileName, null, asset.assetId ?? 'asset');

/** An asset's step, epoch, context and time as a point's. */
export const assetPointBase = (asset: RestAsset): PointBase => pointBase(asset.step, asset.createdAt, asset.epoch, asset.runContext);

const keptFile = z.object({ path: z.string(), name: z.string().optional(), mimeType: z.string().optional(), size: z.number().int().nonnegative().optional() });
const safeArtifactPath = (path: string): string => (relativePathProblem(path) === undefined ? path : `comet-files/${keyToFileName(path)}`);

/** A file series point's file: as the writer was given it (kept in the metadata), else named by series, index and name. */
export function seriesFileOf(key: string, index: number, name: string, metadata: Record<string, unknown> | null | undefined): SeriesFile {
  const kept = keptFile.safeParse(metadata?.[FILE_META]);
  if (kept.success && relativePathProblem(kept.data.path) === undefined) {
    const { path, name, mimeType, size } = kept.data;
    return { path, ...(name ? { name } : {}), ...(mimeType ? { mimeType } : {}), ...(size !== undefined ? { size } : {}) };
  }
  return { path: safeArtifactPath(`${key}/${index}/${name}`), name };
}

const byPath = (a: ConfigEntry, b: ConfigEntry): number => {
  const x = a.path.join('\u0000');
  const y = b.path.join('\u0000');
  return x < y ? -1 : x > y ? 1 : 0;
};

/** The run a REST experiment is, with its series and artifacts placed as layout.ts says. */
export function restRunOf(input: RestRunInput): RestRun {
  const warnings: string[] = [];
  const { metadata } = input;
  let extras: RunExtras = {};
  let name: string | undefined;
  const others: RestValue[] = [];
  for (const other of input.others) {
    if (other.name === NAME_OTHER && typeof other.valueCurrent === 'string') name = other.valueCurrent;
    else if (other.name === RUN_OTHER && typeof other.valueCurrent === 'string') extras = parseExtras(other.valueCurrent, `${input.where}: the other ${RUN_OTHER}`);
    else others.push(other);
  }
  const params: Record<string, string> = {};
  const config: ConfigEntry[] = [];
  const mlflowParams = new Set(extras.params ?? []);
  for (const p of input.parameters) {
    if (mlflowParams.has(p.name) && typeof p.valueCurrent === 'string') params[p.name] = p.valueCurrent;
    else config.push({ path: extras.paramPaths?.[p.name] ?? paramPath(p.name, MANUAL_SOURCE), value: retyped(restValueOf(p.valueCurrent), extras.paramTypes?.[p.name]) });
  }
  const summary = others.map((o) => ({ path: extras.otherPaths?.[o.name] ?? [o.name], value: retyped(restValueOf(o.valueCurrent), extras.otherTypes?.[o.name]) }));
  const placed = placeAssets(input, warnings);
  const artifacts = placed.artifacts;
  const remote = input.assets.filter((a) => a.remote);
  if (remote.length > 0) artifacts.set('comet/remote_file.json', { content: messagesContent(remote.map(remoteFilePayload)) });
  const addMessages = (type: string, payloads: unknown[]) => artifacts.set(`comet/${type}.json`, { content: messagesContent(payloads) });
  if (input.html) addMessages('html', [{ html: input.html }]);
  if (input.graph) addMessages('graph', [{ graph: input.graph }]);
  const fileName = metadata?.filePath ?? metadata?.fileName;
  if (fileName) addMessages('file_name', [{ file_name: fileName }]);
  if (input.gitMetadata && Object.values(input.gitMetadata).some((v) => v !== null && v !== undefined)) addMessages('git_metadata', [{ git_metadata: input.gitMetadata }]);
  const installed = input.systemDetails?.installedPackages ?? input.installedPackages;
  if (installed && installed.length > 0) addMessages('installed_packages', [{ installed_packages: installed }]);
  if (input.systemDetails?.osPackages && input.systemDetails.osPackages.length > 0) addMessages('os_packages', [{ os_packages: input.systemDetails.osPackages }]);
  if (input.systemDetails) {
    const { payload, rest } = systemDetailsPayload(input.systemDetails);
    // Comet answers every experiment with a record, all nulls and empty lists when nothing was logged
    if (Object.values(payload).some(holdsSomething)) addMessages('system_details', [payload]);
    if (Object.values(rest).some(holdsSomething)) artifacts.set(REST_SYSTEM_DETAILS, { content: Buffer.from(JSON.stringify(rest, null, 1)) });
  }

  const series: SeriesInfo[] = [];
  for (const key of input.metricNames) series.push(key.startsWith(SYSTEM_PREFIX) ? { key, type: 'float', system: true } : { key, type: 'float' });
  for (const key of input.outputs) if (!placed.series.has(key)) series.push({ key, type: 'string' });
  for (const [key, s] of placed.series) series.push({ key, type: s.type });
  const seen = new Set<string>();
  const unique = series.filter((s) => {
    if (!seen.has(s.key)) return seen.add(s.key);
    warnings.push(`${input.where}: two series are named ${quoted(s.key)}: the ${s.type} one is left out`);
    return false;
  });

  const start = metadata?.startTimeMillis ?? undefined;
  const end = extras.noEndTime ? undefined : (metadata?.endTimeMillis ?? undefined);
  const status: RunStatus = extras.status ?? (metadata?.running ? 'RUNNING' : 'FINISHED');
  const user = extras.user ?? metadata?.userName ?? undefined;
  const tags = input.tags ?? metadata?.tags ?? [];
  const run: Run = {
    id: input.key,
    experimentId: input.experimentId,
    ...(name !== undefined ? { name } : metadata?.experimentName ? { name: metadata.experimentName } : {}),
    status,
    ...(start !== undefined ? { startTime: start } : {}),
    ...(end !== undefined ? { endTime: end } : {}),
    ...(user !== undefined ? { user } : {}),
    lifecycle: extras.lifecycle ?? (metadata?.archived ? 'deleted' : 'active'),
    ...(extras.parentId !== undefined ? { parentId: extras.parentId } : {}),
    params,
    tags: { ...Object.fromEntries(tags.map((t) => [t, ''])), ...extras.tags },
    inputs: structuredClone(extras.inputs ?? []),
    series: unique,
    ...(config.length > 0 ? { config: config.sort(byPath) } : {}),
    ...(summary.length > 0 ? { summary: summary.sort(byPath) } : {}),
    ...(extras.sourceState !== undefined ? { sourceState: extras.sourceState } : {}),
  };
  return { run, extras, series: placed.series, artifacts, warnings };
}

/** The experiment's tags: what the run extras kept, else its workspace. */
export const experimentTagsOf = (extras: RunExtras, workspace: string | null | undefined): Record<string, string> => ({ ...(extras.experimentTags ?? projectTags(workspace)) });

/** A remote asset as the `remote_file` message the client writes for it. */
function remoteFilePayload(asset: RestAsset): Record<string, unknown> {
  const kept = asset.trackshiftUpload;
  if (kept) return { ...kept };
  return {
    remote_uri: asset.link ?? null,
    upload_type: uploadTypeOf(asset.type),
    metadata: assetMetadata(asset) ?? null,
    additional_params: { fileName: asset.fileName, step: asset.step ?? null, context: asset.runContext ?? null, ...(asset.epoch !== null && asset.epoch !== undefined ? { epoch: asset.epoch } : {}) },
  };
}

/** The manifest entry (comet/assets.json) of an asset kept as an artifact, as the archive reader makes it from the upload. */
function manifestEntry(path: string, asset: RestAsset, name: string): Record<string, unknown> {
  if (asset.trackshiftUpload) return { path, ...asset.trackshiftUpload };
  const epoch = asset.epoch !== null && asset.epoch !== undefined ? { epoch: asset.epoch } : {};
  return {
    path,
    upload_type: uploadTypeOf(asset.type),
    local_timestamp: asset.createdAt ?? 0,
    metadata: assetMetadata(asset) ?? null,
    additional_params: { context: asset.runContext ?? null, step: asset.step ?? null, ...epoch, fileName: name },
  };
}

/** Assets into series and artifacts as the archive reader places uploads (layout.ts), in listing order. */
function placeAssets(input: RestRunInput, warnings: string[]): { series: Map<string, AssetSeries>; artifacts: Map<string, { asset: RestAsset } | { content: Buffer }> } {
  const series = new Map<string, AssetSeries>();
  const artifacts = new Map<string, { asset: RestAsset } | { content: Buffer }>();
  const groups = new Map<string, RestAsset[]>();
  for (const asset of input.assets) {
    if (asset.remote) continue;
    const metadata = assetMetadata(asset);
    const kept = metadata?.[PATH_META];
    if (typeof kept === 'string' && relativePathProblem(kept) === undefined) {
      // an artifact from elsewhere: its path is kept in the metadata
      artifacts.set(kept, { asset });
      continue;
    }
    const type = asset.type === COMBINED_HISTOGRAM ? COMBINED_HISTOGRAM : uploadTypeOf(asset.type);
    const id = `${type}/${assetName(asset)}`;
    const group = groups.get(id);
    if (group) group.push(asset);
    else groups.set(id, [asset]);
  }
  const manifest: unknown[] = [];
  for (const [id, group] of groups) {
    const type = uploadTypeOf(group[0]!.type);
    for (const asset of group) {
      const named = assetMetadata(asset)?.[SERIES_META];
      const combined = asset.type === COMBINED_HISTOGRAM;
      const seriesType = type === UPLOAD.text ? 'string' : type === UPLOAD.histogram || combined ? 'histogram' : SERIES_UPLOADS.has(type) || group.length > 1 || typeof named === 'string' ? 'file' : undefined;
      if (seriesType) {
        const key = typeof named === 'string' ? named : type === UPLOAD.text ? TEXT_KEY : combined ? `${UPLOAD.histogram}/${combinedName(assetName(asset))}` : id;
        let s = series.get(key);
        if (!s) series.set(key, (s = { type: seriesType, assets: [] }));
        if (s.type === seriesType) s.assets.push(asset);
        else warnings.push(`${input.where}: ${quoted(key)} names assets of two kinds: the ${type} asset ${quoted(asset.fileName)} is left out`);
        continue;
      }
      const path = `assets/${id}`;
      artifacts.set(path, { asset });
      manifest.push(manifestEntry(path, asset, assetName(asset)));
    }
  }
  if (manifest.length > 0) artifacts.set(ASSETS_MANIFEST, { content: Buffer.from(JSON.stringify(manifest, null, 1)) });
  return { series, artifacts };
}

/** A combined histogram's name: its file name without `.json` (and cometx's wandb `_summary` / `_history`). */
const combinedName = (fileName: string): string => fileName.replace(/\.json$/i, '').replace(/_(summary|history)$/, '');

/** The points a combined 3D histogram file holds: `{"histograms": [{"step": n, "histogram": <histogram3d blob>}]}`. */
export const combinedHistogramSchema = z.object({ histograms: z.array(z.object({ step: nullishNumber, histogram: z.unknown() })) });
