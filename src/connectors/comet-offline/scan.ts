/**
 * One pass over an archive's messages.json: what a run is (name, parameters, others, the list of
 * its series, its uploads and other messages), without the metric points, which are read later by
 * passing over the file again (read.ts). Messages are not in message_id order in the file (the
 * client's threads interleave): where one value wins, the highest message_id wins.
 */
import { basename } from 'node:path';
import type { ConfigEntry, SeriesType, TypedValue } from '../../model/index.js';
import { parseExtras, type RunExtras } from '../comet-common/extras.js';
import { ASSETS_MANIFEST, MANUAL_SOURCE, NAME_OTHER, PATH_META, RUN_OTHER, SERIES_META, SERIES_UPLOADS, STDERR_KEY, STDOUT_KEY, SYSTEM_PREFIX, TEXT_KEY, UPLOAD, otherMessagesPath, paramPath, uploadName } from '../comet-common/layout.js';
import { retyped, typedValue } from '../comet-common/values.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted, relativePathProblem } from '../../util/paths.js';
import { Archive } from './archive.js';
import { EXPERIMENT_FILE, MESSAGES_FILE, MESSAGE_TYPES, envelopeSchema, experimentSchema, fileUploadPayload, logOtherPayload, parameterPayload, standardOutputPayload, type ExperimentFile, type FileUpload } from './format.js';

/** A file the archive holds, as a `file_upload` message describes it. */
export interface Upload {
  /** the blob's name in the zip */
  blob: string;
  name: string;
  order: number;
  payload: FileUpload;
}

export interface UploadSeries {
  type: Exclude<SeriesType, 'float'>;
  uploads: Upload[];
}

export interface ScannedRun {
  file: string;
  key: string;
  experiment: ExperimentFile;
  name?: string;
  /** what a run written by trackshift from elsewhere keeps in the other `trackshift.run` */
  extras: RunExtras;
  /** MLflow params (named in `extras.params`) */
  params: Record<string, string>;
  config: ConfigEntry[];
  summary: ConfigEntry[];
  /** metric names, and whether each is a system series */
  metrics: Map<string, boolean>;
  /** how many standard_output chunks each stream has */
  output: { [STDOUT_KEY]: number; [STDERR_KEY]: number };
  series: Map<string, UploadSeries>;
  /** artifact path → the blob holding it, or its content (made from messages) */
  artifacts: Map<string, { blob: string } | { content: Buffer }>;
  warnings: string[];
}

/** The experiment key of an archive named `<key>.zip` or `<key>-<random>.zip` (offline_utils.py). */
export const keyOfFileName = (file: string): string => basename(file).replace(/\.zip$/i, '').split('-')[0]!;

/** The raw text of `"field": <number>` in a line, to tell ints from floats. */
const rawNumber = (line: string, field: string): string | undefined => new RegExp(`"${field}":\\s*(-?[0-9][0-9.eE+-]*)`).exec(line)?.[1];

/** The last value of a parameter (by name and source) or other (by key). */
interface Latest {
  order: number;
  name: string;
  source?: string | null | undefined;
  value: TypedValue;
}

function keepLatest(into: Map<string, Latest>, latest: Latest): void {
  const id = `${latest.source ?? ''}\u0000${latest.name}`;
  const old = into.get(id);
  if (!old || old.order <= latest.order) into.set(id, latest);
}

const byPath = (a: ConfigEntry, b: ConfigEntry): number => {
  const x = a.path.join('\u0000');
  const y = b.path.join('\u0000');
  return x < y ? -1 : x > y ? 1 : 0;
};

export async function scanArchive(file: string): Promise<ScannedRun> {
  return Archive.using(file, async (archive) => {
    let json: unknown;
    try {
      json = JSON.parse((await archive.read(EXPERIMENT_FILE)).toString('utf8'));
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
      throw new InvalidInputError(`${file}:${EXPERIMENT_FILE}`, 'is not JSON');
    }
    const parsed = experimentSchema.safeParse(json);
    if (!parsed.success) throw new InvalidInputError(`${file}:${EXPERIMENT_FILE}`, `${parsed.error.issues[0]?.message} at ${parsed.error.issues[0]?.path.join('.')}`);
    const experiment = parsed.data;
    const run: ScannedRun = {
      file,
      key: experiment.offline_id || keyOfFileName(file),
      experiment,
      extras: {},
      params: {},
      config: [],
      summary: [],
      metrics: new Map(),
      output: { [STDOUT_KEY]: 0, [STDERR_KEY]: 0 },
      series: new Map(),
      artifacts: new Map(),
      warnings: [],
    };
    const params = new Map<string, Latest>();
    const others = new Map<string, Latest>();
    const uploads: Upload[] = [];
    const otherMessages = new Map<string, Array<{ order: number; payload: Record<string, unknown> }>>();
    let name: { order: number; value: string } | undefined;
    let runOther: { order: number; value: string } | undefined;
    if (!archive.has(MESSAGES_FILE)) run.warnings.push(`${file} has no ${MESSAGES_FILE}: the experiment has no data`);
    else {
      for await (const { text, lineNo } of archive.lines(MESSAGES_FILE)) {
        if (text.trim() === '') continue;
        const where = `${file}:${MESSAGES_FILE}:${lineNo}`;
        const skip = (why: string) => run.warnings.push(`${where}: ${why}: skipped, as Comet's uploader skips it`);
        let envelope;
        try {
          envelope = envelopeSchema.safeParse(JSON.parse(text));
        } catch {
          skip('not JSON');
          continue;
        }
        if (!envelope.success) {
          skip('not a message');
          continue;
        }
        const { type, payload } = envelope.data;
        const order = payload.message_id ?? lineNo;
        if (type === MESSAGE_TYPES.metric) {
          const name = (payload as { metric?: { metricName?: unknown } }).metric?.metricName;
          if (typeof name === 'string') run.metrics.set(name, name.startsWith(SYSTEM_PREFIX));
          else skip('a metric without a name');
        } else if (type === MESSAGE_TYPES.parameter) {
          const p = parameterPayload.safeParse(payload);
          if (!p.success) skip('a malformed parameter');
          else if (p.data.param) {
            const { paramName, paramValue, source } = p.data.param;
            keepLatest(params, { order, name: paramName, source, value: typedValue(paramValue, rawNumber(text, 'paramValue')) });
          } else if (p.data.params) {
            const { paramName, paramValue, source } = p.data.params;
            keepLatest(params, { order, name: paramName, source, value: typedValue(paramValue) });
          }
        } else if (type === MESSAGE_TYPES.logOther) {
          const o = logOtherPayload.safeParse(payload);
          if (!o.success) skip('a malformed log_other');
          else {
            const key = typeof o.data.key === 'string' ? o.data.key : JSON.stringify(o.data.key);
            if (key === NAME_OTHER && typeof o.data.value === 'string') {
              if (!name || name.order <= order) name = { order, value: o.data.value };
            } else if (key === RUN_OTHER && typeof o.data.value === 'string') {
              if (!runOther || runOther.order <= order) runOther = { order, value: o.data.value };
            } else keepLatest(others, { order, name: key, value: typedValue(o.data.value, rawNumber(text, 'value')) });
          }
        } else if (type === MESSAGE_TYPES.standardOutput) {
          const o = standardOutputPayload.safeParse(payload);
          if (!o.success) skip('a malformed standard_output');
          else run.output[o.data.stderr ? STDERR_KEY : STDOUT_KEY]++;
        } else if (type === MESSAGE_TYPES.fileUpload) {
          const u = fileUploadPayload.safeParse(payload);
          if (!u.success) skip(`a malformed file_upload (${u.error.issues[0]?.message} at ${u.error.issues[0]?.path.join('.')})`);
          else if (!archive.has(u.data.file_path)) skip(`its file ${quoted(u.data.file_path)} is not in the archive`);
          else {
            const extra = u.data.additional_params;
            uploads.push({ blob: u.data.file_path, name: uploadName(extra?.fileName, extra?.figName, u.data.file_path), order, payload: u.data });
          }
        } else {
          const { message_id: _id, ...rest } = payload;
          let list = otherMessages.get(type);
          if (!list) otherMessages.set(type, (list = []));
          list.push({ order, payload: rest });
        }
      }
    }
    if (name) run.name = name.value;
    if (runOther) run.extras = parseExtras(runOther.value, `${file}:${MESSAGES_FILE}: the other ${RUN_OTHER}`);
    const { extras } = run;
    const mlflowParams = new Set(extras.params ?? []);
    for (const p of params.values()) {
      if (mlflowParams.has(p.name) && (p.source ?? MANUAL_SOURCE) === MANUAL_SOURCE && p.value.type === 'string') run.params[p.name] = p.value.value;
      else run.config.push({ path: extras.paramPaths?.[p.name] ?? paramPath(p.name, p.source), value: retyped(p.value, extras.paramTypes?.[p.name]) });
    }
    run.config.sort(byPath);
    run.summary = [...others.values()].map((o) => ({ path: extras.otherPaths?.[o.name] ?? [o.name], value: retyped(o.value, extras.otherTypes?.[o.name]) })).sort(byPath);
    placeUploads(run, uploads);
    for (const [type, list] of otherMessages) {
      list.sort((a, b) => a.order - b.order);
      run.artifacts.set(otherMessagesPath(type), { content: Buffer.from(JSON.stringify(list.map((m) => m.payload), null, 1)) });
    }
    return run;
  });
}

/** Uploads into series and artifacts (layout.ts), each series in message order. */
function placeUploads(run: ScannedRun, uploads: Upload[]): void {
  uploads.sort((a, b) => a.order - b.order);
  const groups = new Map<string, Upload[]>();
  for (const upload of uploads) {
    const id = `${upload.payload.upload_type}/${upload.name}`;
    const group = groups.get(id);
    if (group) group.push(upload);
    else groups.set(id, [upload]);
  }
  const manifest: unknown[] = [];
  for (const [id, group] of groups) {
    const type = group[0]!.payload.upload_type;
    for (const upload of group) {
      const named = upload.payload.metadata?.[SERIES_META];
      const seriesType = type === UPLOAD.text ? 'string' : type === UPLOAD.histogram ? 'histogram' : SERIES_UPLOADS.has(type) || group.length > 1 || typeof named === 'string' ? 'file' : undefined;
      if (seriesType) {
        const key = typeof named === 'string' ? named : type === UPLOAD.text ? TEXT_KEY : id;
        let series = run.series.get(key);
        if (!series) run.series.set(key, (series = { type: seriesType, uploads: [] }));
        if (series.type === seriesType) series.uploads.push(upload);
        else run.warnings.push(`${run.file}: ${quoted(key)} names uploads of two kinds: the ${type} upload ${upload.blob} is left out`);
        continue;
      }
      const kept = upload.payload.metadata?.[PATH_META];
      if (typeof kept === 'string' && relativePathProblem(kept) === undefined) {
        // an artifact from elsewhere: how it is uploaded follows from its path alone
        run.artifacts.set(kept, { blob: upload.blob });
        continue;
      }
      const path = `assets/${id}`;
      run.artifacts.set(path, { blob: upload.blob });
      const { file_path: _blob, clean: _clean, message_id: _id, ...rest } = upload.payload;
      manifest.push({ path, ...rest });
    }
  }
  if (manifest.length > 0) run.artifacts.set(ASSETS_MANIFEST, { content: Buffer.from(JSON.stringify(manifest, null, 1)) });
}
