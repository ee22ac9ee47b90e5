/**
 * The first pass over one database: the run's attributes (assign, modify_sets), the list of its
 * series, its fork and its assigned files, without keeping any point. Points are read later,
 * series by series (read.ts).
 */
import { existsSync } from 'node:fs';
import type { SeriesInfo, TypedValue } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { neptuneSeries, type NeptuneRun } from '../neptune-common/run.js';
import type { FileUpload, RunDatabase } from './db.js';
import { OPERATION_CREATE, OPERATION_UPDATE, SET_ADD, SET_REMOVE, decodeCreateRun, decodeUpdate, stepValue, timestampMs, type CreateRun, type Value } from '../neptune-common/scale-proto.js';

export interface ScannedRun {
  neptune: NeptuneRun;
  /** file attributes (assign of a file_ref): attribute path → file_ref path */
  assignedFiles: Map<string, string>;
  /** the local copies of logged files, by file_ref path */
  uploads: Map<string, FileUpload>;
  /** file_ref paths whose local copy is gone (their points and artifacts are left out) */
  missingFiles: Set<string>;
  warnings: string[];
}

const SERIES_TYPE: Partial<Record<NonNullable<Value['value']['case']>, SeriesInfo['type']>> = {
  float64: 'float',
  int64: 'float',
  string: 'string',
  histogram: 'histogram',
  fileRef: 'file',
};

/** A decoded operation, or an InvalidInputError naming the database and the operation. */
export function decodeOperation<T>(db: RunDatabase, sequenceId: number, decode: (b: Uint8Array) => T, bytes: Uint8Array): T {
  try {
    return decode(bytes);
  } catch (err) {
    throw new InvalidInputError(db.file, `operation ${sequenceId} of run_operations cannot be decoded: ${errorMessage(err)}`);
  }
}

/** An assigned value as a typed attribute, or undefined for what attributes do not hold (files, histograms). */
function attributeOf(value: Value, path: string, warnings: string[]): TypedValue | undefined {
  const v = value.value;
  switch (v.case) {
    case 'float64':
      return { type: 'float', value: v.value };
    case 'int64':
      if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < BigInt(Number.MIN_SAFE_INTEGER)) {
        warnings.push(`attribute ${path}: int ${v.value} is beyond what a double holds exactly; kept as ${Number(v.value)}`);
      }
      return { type: 'int', value: Number(v.value) };
    case 'bool':
      return { type: 'bool', value: v.value };
    case 'string':
      return { type: 'string', value: v.value };
    case 'timestamp':
      return { type: 'datetime', value: timestampMs(v.value) };
    case 'stringSet':
      return { type: 'stringSet', value: [...new Set(v.value.values)] };
    default:
      return undefined;
  }
}

function applyCreate(run: NeptuneRun, create: CreateRun): void {
  if (create.runId) run.attributes.set('sys/custom_run_id', { type: 'string', value: create.runId });
  if (create.experimentId) run.attributes.set('sys/name', { type: 'string', value: create.experimentId });
  if (create.family) run.attributes.set('sys/family', { type: 'string', value: create.family });
  if (create.creationTime) run.attributes.set('sys/creation_time', { type: 'datetime', value: timestampMs(create.creationTime) });
  const fork = create.forkPoint;
  if (fork?.parentRunId) run.fork = { runId: fork.parentRunId, ...(fork.step ? { step: stepValue(fork.step) } : {}) };
}

/** Reads every operation once; throws an InvalidInputError (naming the database) when one is malformed. */
export function scanRun(db: RunDatabase): ScannedRun {
  const { metadata } = db;
  const neptune: NeptuneRun = { id: metadata.run_id, project: metadata.project, generation: 3, attributes: new Map(), series: [] };
  // in 3.x the run id is sys/custom_run_id (the client keeps it in the metadata, not in CreateRun)
  neptune.attributes.set('sys/custom_run_id', { type: 'string', value: metadata.run_id });
  const seriesTypes = new Map<string, SeriesInfo['type']>();
  const assignedFiles = new Map<string, string>();
  const fileRefs = new Set<string>();
  const warnings: string[] = [];
  let previews = 0;
  for (const page of db.operations()) {
    for (const row of page) {
      neptune.lastOperationTime = row.timestamp;
      if (row.operation_type === OPERATION_CREATE) {
        applyCreate(neptune, decodeOperation(db, row.sequence_id, decodeCreateRun, row.operation));
        continue;
      }
      if (row.operation_type !== OPERATION_UPDATE) throw new InvalidInputError(db.file, `operation ${row.sequence_id} has unknown operation_type ${row.operation_type}`);
      const update = decodeOperation(db, row.sequence_id, decodeUpdate, row.operation);
      for (const [path, value] of Object.entries(update.assign)) {
        if (value.value.case === 'fileRef') {
          assignedFiles.set(path, value.value.value.path);
          fileRefs.add(value.value.value.path);
          continue;
        }
        const attribute = attributeOf(value, path, warnings);
        if (attribute) neptune.attributes.set(path, attribute);
        else warnings.push(`attribute ${path}: a ${value.value.case ?? 'empty'} value cannot be an attribute; left out`);
      }
      for (const [path, modify] of Object.entries(update.modifySets)) {
        const current = neptune.attributes.get(path);
        const set = new Set(current?.type === 'stringSet' ? current.value : []);
        for (const [item, op] of Object.entries(modify.type.case === 'string' ? modify.type.value.values : {})) {
          if (op === SET_ADD) set.add(item);
          else if (op === SET_REMOVE) set.delete(item);
        }
        neptune.attributes.set(path, { type: 'stringSet', value: [...set] });
      }
      if (update.preview?.isPreview) {
        previews += Object.keys(update.append).length;
        continue;
      }
      for (const [key, value] of Object.entries(update.append)) {
        const type = value.value.case && SERIES_TYPE[value.value.case];
        if (!type) {
          warnings.push(`series ${key}: a ${value.value.case ?? 'empty'} value cannot be appended to a series; left out`);
          continue;
        }
        const known = seriesTypes.get(key);
        if (known === undefined) seriesTypes.set(key, type);
        else if (known !== type) warnings.push(`series ${key}: a ${type} point in a ${known} series (operation ${row.sequence_id}); left out`);
        if (value.value.case === 'fileRef') fileRefs.add(value.value.value.path);
      }
    }
  }
  if (previews > 0) warnings.push(`${previews} preview point(s) left out: previews are values Neptune had not committed`);
  neptune.series = [...seriesTypes].map(([key, type]) => neptuneSeries(key, type));
  const uploads = db.fileUploads();
  const missingFiles = new Set<string>();
  for (const ref of fileRefs) {
    const upload = uploads.get(ref);
    if (!upload || !existsSync(upload.sourcePath)) {
      missingFiles.add(ref);
      warnings.push(`file ${ref}: its local copy ${upload ? upload.sourcePath : '(not recorded)'} is gone; left out`);
    }
  }
  return { neptune, assignedFiles, uploads, missingFiles, warnings };
}
