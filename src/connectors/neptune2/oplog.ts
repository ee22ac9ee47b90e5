/**
 * Replaying a Neptune 2.x operation log to a run's final state, in one streaming pass.
 *
 * Attributes that are not series end up in memory (they are small). Series do not: for each,
 * the replay keeps its type, how many points it has and where in the log its first and last
 * point after its last clear are; `points.ts` reads them again from there. A series cleared (or
 * deleted) and logged again keeps only what came after. Files are kept as where their bytes
 * are: a path (the user's own, or a copy in `upload_path/`) or a line holding them in base64.
 */
import { join } from 'node:path';
import { fileArtifactPath } from '../neptune-common/files.js';
import type { NeptuneAttribute } from '../neptune-common/run.js';
import type { SeriesType } from '../../model/index.js';
import { InvalidInputError } from '../../util/errors.js';
import { quoted, relativePathProblem, safeJoin } from '../../util/paths.js';
import { CLEAR_TYPES, LOG_TYPES, type Fields, type Operation, type OperationType } from './format.js';
import { fileSetFiles } from './glob.js';
import { readRecords, type LogFile, type Position, type ReadLine } from './lines.js';

export interface SeriesState {
  type: Exclude<SeriesType, 'histogram'>;
  points: number;
  /** the first and last line holding points since the last clear */
  start?: Position;
  end?: Position;
}

export type FileSource = { kind: 'path'; file: string } | { kind: 'content'; at: Position };

export interface RunState {
  attributes: Map<string, NeptuneAttribute>;
  series: Map<string, SeriesState>;
  /** file attributes by path: their artifact is the path plus the extension */
  files: Map<string, { ext: string; source: FileSource }>;
  /** file sets by path: name in the set → absolute path */
  fileSets: Map<string, Map<string, string>>;
  /** epoch ms of the first and last operation */
  firstAt?: number;
  lastAt?: number;
  warnings: string[];
}

const UPLOAD_PATH = 'upload_path';


function checkedPath(path: string, where: string, what: string): string {
  const problem = relativePathProblem(path);
  if (problem) throw new InvalidInputError(where, `${what} ${quoted(path)} cannot name a file: ${problem}`);
  return path;
}

/** Replays the log files of one run (its execution folders' files, in order) to its final state. */
export async function replay(files: LogFile[], containerId: string): Promise<RunState> {
  const state: RunState = { attributes: new Map(), series: new Map(), files: new Map(), fileSets: new Map(), warnings: [] };
  const warnOnce = new Set<string>();
  const warn = (message: string) => {
    if (!warnOnce.has(message)) state.warnings.push(message);
    warnOnce.add(message);
  };
  const onTruncated = (where: string) => warn(`${where}: the last line is cut short (the client stopped while writing it); skipped, as neptune sync does`);
  for await (const line of readRecords(files, undefined, undefined, onTruncated)) {
    const at = line.record.at;
    if (typeof at === 'number' && Number.isFinite(at)) {
      state.firstAt ??= Math.trunc(at * 1000);
      state.lastAt = Math.trunc(at * 1000);
    }
    await apply(state, line, files, containerId, warn);
  }
  return state;
}

function remove(state: RunState, key: string): void {
  state.attributes.delete(key);
  state.series.delete(key);
  state.files.delete(key);
  state.fileSets.delete(key);
}

/** What kind of attribute a path holds now, to refuse operations of another kind as Neptune does. */
function kindOf(state: RunState, key: string): string | undefined {
  if (state.attributes.has(key)) return state.attributes.get(key)!.type;
  if (state.series.has(key)) return `${state.series.get(key)!.type} series`;
  if (state.files.has(key)) return 'file';
  if (state.fileSets.has(key)) return 'file set';
  return undefined;
}

const ATOM_TYPES: Partial<Record<OperationType, NeptuneAttribute['type']>> = {
  AssignFloat: 'float',
  AssignInt: 'int',
  AssignBool: 'bool',
  AssignString: 'string',
  AssignDatetime: 'datetime',
  AssignArtifact: 'string',
};

async function apply(state: RunState, line: ReadLine, files: LogFile[], containerId: string, warn: (message: string) => void): Promise<void> {
  const op = line.record.obj as Operation<OperationType>;
  const key = op.path.join('/');
  const where = `${files[line.position.file]!.path}:${line.lineNo ?? `byte ${line.position.offset}`}`;
  const kind = kindOf(state, key);
  /** an operation on an attribute of another kind: the server refuses it, so the replay skips it */
  const conflicts = (wanted: string): boolean => {
    if (kind === undefined || kind === wanted) return false;
    warn(`${where}: ${op.type} on ${quoted(key)}, which is a ${kind}: skipped, as Neptune refuses it`);
    return true;
  };
  const type = op.type as OperationType;
  const atom = ATOM_TYPES[type];
  if (atom) {
    if (conflicts(atom)) return;
    const o = op as unknown as Partial<Fields<'AssignFloat'> & Fields<'AssignArtifact'>>;
    state.attributes.set(key, { type: atom, value: type === 'AssignArtifact' ? o.hash : o.value } as NeptuneAttribute);
    return;
  }
  switch (type) {
    case 'AddStrings':
    case 'RemoveStrings':
    case 'ClearStringSet': {
      if (conflicts('stringSet')) return;
      const current = new Set(state.attributes.get(key)?.value as string[] | undefined);
      const values = (op as Operation<'AddStrings'>).values ?? [];
      if (type === 'AddStrings') for (const v of values) current.add(v);
      else if (type === 'RemoveStrings') for (const v of values) current.delete(v);
      else current.clear();
      state.attributes.set(key, { type: 'stringSet', value: [...current].sort() });
      return;
    }
    case 'LogFloats':
    case 'LogStrings':
    case 'LogImages': {
      const seriesType = LOG_TYPES[type];
      if (conflicts(`${seriesType} series`)) return;
      const series = state.series.get(key) ?? { type: seriesType, points: 0 };
      state.series.set(key, series);
      const count = (op as Operation<'LogFloats'>).values.length;
      if (count === 0) return;
      if (type === 'LogImages') checkedPath(`${key}/0.png`, where, 'file series');
      series.start ??= line.position;
      series.end = line.position;
      series.points += count;
      return;
    }
    case 'ClearFloatLog':
    case 'ClearStringLog':
    case 'ClearImageLog': {
      const seriesType = CLEAR_TYPES[type];
      if (conflicts(`${seriesType} series`)) return;
      state.series.set(key, { type: seriesType, points: 0 });
      return;
    }
    case 'ConfigFloatSeries': {
      if (conflicts('float series')) return;
      if (!state.series.has(key)) state.series.set(key, { type: 'float', points: 0 });
      const o = op as Operation<'ConfigFloatSeries'>;
      if (o.min != null || o.max != null || o.unit != null) warn(`the display settings of float series ${quoted(key)} (min, max, unit) are not kept`);
      return;
    }
    case 'UploadFile':
    case 'UploadFileContent': {
      if (conflicts('file')) return;
      const o = op as unknown as Fields<'UploadFile'>;
      const ext = o.ext ?? '';
      checkedPath(fileArtifactPath(key, ext), where, 'file attribute');
      let source: FileSource;
      if (type === 'UploadFileContent') source = { kind: 'content', at: line.position };
      else if (o.tmp_file_name) source = { kind: 'path', file: safeJoin(join(files[line.position.file]!.dir, UPLOAD_PATH), o.tmp_file_name, where) };
      else if (o.file_path) source = { kind: 'path', file: o.file_path };
      else throw new InvalidInputError(where, `UploadFile of ${quoted(key)} names no file (neither file_path nor tmp_file_name)`);
      state.files.set(key, { ext, source });
      return;
    }
    case 'UploadFileSet': {
      if (conflicts('file set')) return;
      const o = op as Operation<'UploadFileSet'>;
      const set = o.reset === true || o.reset === 'True' ? new Map<string, string>() : (state.fileSets.get(key) ?? new Map<string, string>());
      const found = await fileSetFiles(o.file_globs);
      if (o.file_globs.length > 0 && found.size === 0) warn(`${where}: the files of file set ${quoted(key)} (${o.file_globs.map((g) => quoted(g)).join(', ')}) no longer exist`);
      for (const [name, file] of found) set.set(checkedPath(`${key}/${name}`, where, 'file set file').slice(key.length + 1), file);
      state.fileSets.set(key, set);
      return;
    }
    case 'DeleteFiles': {
      const set = state.fileSets.get(key);
      if (!set) return;
      for (const gone of (op as Operation<'DeleteFiles'>).file_paths) for (const name of [...set.keys()]) if (name === gone || name.startsWith(`${gone}/`)) set.delete(name);
      return;
    }
    case 'DeleteAttribute':
      remove(state, key);
      return;
    case 'ClearArtifact':
      state.attributes.delete(key);
      return;
    case 'TrackFilesToArtifact': {
      if (conflicts('string')) return;
      const entries = (op as Operation<'TrackFilesToArtifact'>).entries;
      state.attributes.set(key, { type: 'string', value: JSON.stringify(entries) });
      warn(`artifact ${quoted(key)} tracks files by reference (its hash is computed by neptune sync): kept as the list of tracked locations, the files are not copied`);
      return;
    }
    case 'CopyAttribute': {
      const o = op as Operation<'CopyAttribute'>;
      const source = o.source_path.join('/');
      const value = o.container_id === containerId ? state.attributes.get(source) : undefined;
      if (value) state.attributes.set(key, structuredClone(value));
      else warn(`${where}: ${quoted(key)} is a copy of ${quoted(source)} of ${o.container_id === containerId ? 'this run, which has no such attribute' : `run ${o.container_id}, which neptune sync reads from the server`}: not kept`);
      return;
    }
    default:
      warn(`${where}: unknown operation ${quoted(op.type)}: skipped`);
  }
}
