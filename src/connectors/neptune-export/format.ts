/**
 * neptune-exporter's output as it is documented (../shared/reference/neptune-facts.md §1,
 * neptune-exporter `model.py`, `storage/parquet_writer.py`):
 *
 *   <exports>/data/<sanitized project>-<digest>/<sanitized run>-<digest>_part_<n>.parquet
 *   <exports>/files/<sanitized project>-<digest>/…   (`file_value.path` is relative to it)
 *
 * One run per set of parts; parts are renamed into place with part_0 last, so a run without
 * part_0 was cut off. Ids come from the columns, never from the file names.
 */
import type { Histogram, SeriesType, TypedValue } from '../../model/index.js';

export const COLUMNS = [
  'project_id',
  'run_id',
  'attribute_path',
  'attribute_type',
  'step',
  'timestamp',
  'int_value',
  'float_value',
  'string_value',
  'bool_value',
  'datetime_value',
  'string_set_value',
  'file_value',
  'histogram_value',
] as const;
export type ColumnName = (typeof COLUMNS)[number];

export const DATA_DIR = 'data';
export const FILES_DIR = 'files';

/** `<stem>_part_<n>.parquet` (the `.parquet.tmp` of an export in progress does not match) */
export const PART_FILE = /^(.+)_part_(\d+)\.parquet$/;
/** a project folder: the sanitized project and `-` + 16 hex digits of BLAKE2b */
export const PROJECT_DIR = /-[0-9a-f]{16}$/;

/** Attributes that are values (their column by type), series (with steps), and files. */
export const PARAM_COLUMN: Record<string, ColumnName> = {
  float: 'float_value',
  int: 'int_value',
  string: 'string_value',
  bool: 'bool_value',
  datetime: 'datetime_value',
  string_set: 'string_set_value',
};
export const SERIES_TYPE: Record<string, SeriesType> = {
  float_series: 'float',
  string_series: 'string',
  histogram_series: 'histogram',
  file_series: 'file',
};
/** single files: a file, a file set's folder (2.x), an artifact's `files_list.json` (2.x) */
export const FILE_TYPES = new Set(['file', 'file_set', 'artifact']);

/** The typed value of a parameter row, or a problem. */
export function paramValue(type: string, raw: unknown): TypedValue | string {
  switch (type) {
    case 'float':
      return typeof raw === 'number' ? { type: 'float', value: raw } : 'float_value is not a double';
    case 'int':
      if (typeof raw === 'bigint') return { type: 'int', value: Number(raw) };
      return typeof raw === 'number' && Number.isInteger(raw) ? { type: 'int', value: raw } : 'int_value is not an integer';
    case 'string':
      return typeof raw === 'string' ? { type: 'string', value: raw } : 'string_value is not a string';
    case 'bool':
      return typeof raw === 'boolean' ? { type: 'bool', value: raw } : 'bool_value is not a boolean';
    case 'datetime':
      return typeof raw === 'number' && Number.isFinite(raw) ? { type: 'datetime', value: raw } : 'datetime_value is not a timestamp';
    case 'string_set':
      return Array.isArray(raw) && raw.every((s) => typeof s === 'string') ? { type: 'stringSet', value: raw as string[] } : 'string_set_value is not a list of strings';
    default:
      return `unknown attribute type "${type}"`;
  }
}

/** `histogram_value` {type counts|densities, edges, values} as the model's histogram, or a problem. */
export function histogramValue(raw: unknown): Histogram | string {
  if (typeof raw !== 'object' || raw === null) return 'histogram_value is missing';
  const { type, edges, values } = raw as { type?: unknown; edges?: unknown; values?: unknown };
  const kind = typeof type === 'string' ? (/^count/i.test(type) ? 'counts' : /^densit/i.test(type) ? 'densities' : undefined) : undefined;
  if (!kind) return `histogram_value.type ${JSON.stringify(type)} is neither counts nor densities`;
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');
  if (!numbers(edges) || !numbers(values)) return 'histogram_value.edges and .values must be lists of doubles';
  return { kind, edges, values };
}

/** `file_value.path`, or undefined. */
export function filePath(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const path = (raw as { path?: unknown }).path;
  return typeof path === 'string' ? path : undefined;
}

/** 3.x runs hold attributes 2.x never has (neptune-facts.md §4); histograms are 3.x only. */
const GENERATION_3_ATTRIBUTES = ['sys/experiment/name', 'sys/experiment/is_head', 'sys/family', 'sys/forking/parent', 'sys/forking/depth', 'sys/relative_creation_time_ms', 'sys/running_time_seconds'];
export const isGeneration3Attribute = (path: string, type: string): boolean => GENERATION_3_ATTRIBUTES.includes(path) || type === 'histogram_series';
