/**
 * The model's values as neptune-scale's `Value`s and UpdateRunSnapshots, split as the client's
 * MetadataSplitter splits them: assigns and string-set additions fill one snapshot up to the
 * client's 2 MiB, then the next one starts.
 */
import type { Histogram, TypedValue } from '../../model/index.js';
import { SET_ADD, stepOf, timestampOf, type UpdateRunSnapshot, type Value } from './scale-proto.js';

/** parameters.py `MAX_SINGLE_OPERATION_SIZE_BYTES` */
export const MAX_OPERATION_BYTES = 2 * 1024 * 1024;

/** An operation to send or store, with the ms it is stamped with (an offline database's `timestamp` column). */
export interface Pending {
  update: Partial<UpdateRunSnapshot>;
  time: number;
}

/** `sys/tags` and `sys/group_tags` are string sets the client changes with modify_sets, never assigns. */
const SET_ATTRIBUTES = new Set(['sys/tags', 'sys/group_tags']);

/** A typed attribute as the client's `_stream_configs` makes it. */
function valueOf(value: TypedValue): Value {
  switch (value.type) {
    case 'string':
      return { value: { case: 'string', value: value.value } };
    case 'int':
      return { value: { case: 'int64', value: BigInt(Math.trunc(value.value)) } };
    case 'float':
      return { value: { case: 'float64', value: value.value } };
    case 'bool':
      return { value: { case: 'bool', value: value.value } };
    case 'datetime':
      return { value: { case: 'timestamp', value: timestampOf(value.value) } };
    case 'stringSet':
      return { value: { case: 'stringSet', value: { values: [...value.value] } } };
  }
}

export function histogramOf(h: Histogram, where: string): Value {
  if (h.kind === 'counts') {
    const bad = h.values.find((v) => !Number.isSafeInteger(v) || v < 0);
    if (bad !== undefined) throw new Error(`${where}: histogram count ${bad} is not a whole number ≥ 0, which Neptune's counts are`);
    return { value: { case: 'histogram', value: { binEdges: [...h.edges], values: { case: 'counts', value: { values: h.values.map(BigInt) } } } } };
  }
  return { value: { case: 'histogram', value: { binEdges: [...h.edges], values: { case: 'densities', value: { values: [...h.values] } } } } };
}

/** An estimate of an entry's encoded size, a little above protobuf's (the splitter's `+ 6` per entry, and more). */
const entrySize = (key: string, value: Value): number => {
  const v = value.value;
  const payload =
    v.case === 'string' ? Buffer.byteLength(v.value) : v.case === 'stringSet' ? v.value.values.reduce((n, s) => n + Buffer.byteLength(s) + 4, 0) : v.case === 'histogram' ? 9 * (v.value.binEdges.length * 2) : v.case === 'fileRef' ? Buffer.byteLength(v.value.path) + Buffer.byteLength(v.value.mimeType) + 16 : 16;
  return Buffer.byteLength(key) + payload + 16;
};

/** Snapshots for attributes, at `time` (ms, when known) and without a step, as `log_configs` writes them. */
export function attributeSnapshots(attributes: Iterable<[string, TypedValue]>, time: number | undefined, rowTime: number): Pending[] {
  const snapshots: Pending[] = [];
  let current: Partial<UpdateRunSnapshot> | undefined;
  let size = 0;
  const open = () => {
    current = { assign: {}, modifySets: {}, ...(time !== undefined ? { timestamp: timestampOf(time) } : {}) };
    snapshots.push({ update: current, time: rowTime });
    size = 32;
  };
  const fits = (bytes: number) => {
    if (!current || size + bytes > MAX_OPERATION_BYTES) open();
    size += bytes;
  };
  for (const [path, value] of attributes) {
    if (SET_ATTRIBUTES.has(path) && value.type === 'stringSet') {
      for (const tag of value.value) {
        fits(Buffer.byteLength(path) + Buffer.byteLength(tag) + 12);
        const sets = current!.modifySets!;
        const entry = (sets[path] ??= { type: { case: 'string', value: { values: {} } } });
        if (entry.type.case === 'string') entry.type.value.values[tag] = SET_ADD;
      }
      continue;
    }
    const encoded = valueOf(value);
    fits(entrySize(path, encoded));
    current!.assign![path] = encoded;
  }
  return snapshots;
}

/** A snapshot that appends one point of each of `values` at `step`, `time`. */
export const appendSnapshot = (step: number, time: number, values: Record<string, Value>): Pending => ({
  update: { step: stepOf(step), timestamp: timestampOf(time), append: values },
  time,
});
