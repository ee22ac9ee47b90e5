/**
 * Neptune 3.x protobuf: neptune-scale's operations (`neptune.ingest.v1.Run` (CreateRun) and
 * `UpdateRunSnapshot`, in offline databases and sent to the ingest API), the ingest API's own
 * messages and the query API's answers, read and written with @bufbuild/protobuf from the
 * clients' own descriptors (scale-descriptors.ts, dumped by scripts/neptune-scale-descriptors.py).
 * The interfaces below name the operation fields the connectors use, as @bufbuild/protobuf gives
 * them (camelCase, int64 as bigint).
 */
import { createRequire } from 'node:module';
import type { DescMessage } from '@bufbuild/protobuf';
import { SCALE_DESCRIPTORS } from './scale-descriptors.js';

export interface Timestamp {
  seconds: bigint;
  nanos: number;
}
export interface Step {
  whole: bigint;
  micro: bigint;
}
export interface FileRef {
  path: string;
  sizeBytes: bigint;
  mimeType: string;
}
export interface HistogramMessage {
  binEdges: number[];
  values: { case: 'counts'; value: { values: bigint[] } } | { case: 'densities'; value: { values: number[] } } | { case: undefined };
}
export type ValueCase =
  | { case: 'float64'; value: number }
  | { case: 'int64'; value: bigint }
  | { case: 'bool'; value: boolean }
  | { case: 'string'; value: string }
  | { case: 'timestamp'; value: Timestamp }
  | { case: 'stringSet'; value: { values: string[] } }
  | { case: 'fileRef'; value: FileRef }
  | { case: 'histogram'; value: HistogramMessage }
  | { case: undefined; value?: undefined };
export interface Value {
  value: ValueCase;
}
export interface CreateRun {
  runId: string;
  experimentId: string;
  family: string;
  creationTime?: Timestamp;
  forkPoint?: { parentProject: string; parentRunId: string; step?: Step };
}
/** SET_OPERATION */
export const SET_ADD = 1;
export const SET_REMOVE = 2;
export interface UpdateRunSnapshot {
  step?: Step;
  timestamp?: Timestamp;
  preview?: { isPreview: boolean };
  assign: Record<string, Value>;
  modifySets: Record<string, { type: { case: 'string'; value: { values: Record<string, number> } } | { case: undefined } }>;
  append: Record<string, Value>;
}

interface Codec {
  protobuf: typeof import('@bufbuild/protobuf');
  registry: import('@bufbuild/protobuf').FileRegistry;
  run: DescMessage;
  update: DescMessage;
}
let codec: Codec | undefined;

/**
 * protobuf and the Neptune 3.x descriptors, loaded when a Neptune 3.x message is first read or
 * written: ~10 MB of memory that other copies do not need (required, so that the codec stays sync)
 */
function scale(): Codec {
  if (codec) return codec;
  const require = createRequire(import.meta.url);
  const protobuf = require('@bufbuild/protobuf') as typeof import('@bufbuild/protobuf');
  const { FileDescriptorSetSchema } = require('@bufbuild/protobuf/wkt') as typeof import('@bufbuild/protobuf/wkt');
  const registry = protobuf.createFileRegistry(protobuf.fromBinary(FileDescriptorSetSchema, Buffer.from(SCALE_DESCRIPTORS, 'base64')));
  codec = { protobuf, registry, run: messageOf(registry, 'neptune.ingest.v1.Run'), update: messageOf(registry, 'neptune.ingest.v1.UpdateRunSnapshot') };
  return codec;
}

function messageOf(registry: import('@bufbuild/protobuf').FileRegistry, name: string): DescMessage {
  const desc = registry.getMessage(name);
  if (!desc) throw new Error(`the Neptune 3.x descriptors lack ${name} (regenerate src/connectors/neptune-common/scale-descriptors.ts)`);
  return desc;
}

/**
 * Any message of the descriptors by its full name (`neptune.ingest.v1.pub.RunOperation`,
 * `neptune.api.v1.model.ProtoQueryAttributesResultDTO`, …), as @bufbuild/protobuf gives it:
 * camelCase fields, int64 as bigint, oneofs as `{ case, value }`. Throws (protobuf's own error)
 * when the bytes are not such a message: callers name what they were reading.
 */
export function decodeMessage<T>(name: string, bytes: Uint8Array): T {
  const { protobuf, registry } = scale();
  return protobuf.fromBinary(messageOf(registry, name), bytes) as unknown as T;
}
export function encodeMessage(name: string, message: object): Uint8Array {
  const { protobuf, registry } = scale();
  const desc = messageOf(registry, name);
  return protobuf.toBinary(desc, protobuf.create(desc, message as never));
}
/** The name of an enum's value (`neptune.ingest.v1.pub.IngestCode`, 8 → `PROJECT_NOT_FOUND`), for messages a user reads. */
export function enumName(name: string, value: number): string {
  return scale().registry.getEnum(name)?.values.find((v) => v.number === value)?.name ?? String(value);
}

/** `operation_type` in run_operations */
export const OPERATION_UPDATE = 0;
export const OPERATION_CREATE = 1;

/** Throws (protobuf's own error) when the bytes are not such a message. */
export const decodeCreateRun = (bytes: Uint8Array): CreateRun => {
  const { protobuf, run } = scale();
  return protobuf.fromBinary(run, bytes) as unknown as CreateRun;
};
export const decodeUpdate = (bytes: Uint8Array): UpdateRunSnapshot => {
  const { protobuf, update } = scale();
  return protobuf.fromBinary(update, bytes) as unknown as UpdateRunSnapshot;
};

/** The bytes of a message as the client stores them: bare `Run` / `UpdateRunSnapshot` (fields as read above). */
export const encodeCreateRun = (message: Partial<CreateRun> & { inheritConfigs?: boolean }): Uint8Array => {
  const { protobuf, run } = scale();
  return protobuf.toBinary(run, protobuf.create(run, message as never));
};
export const encodeUpdate = (message: Partial<UpdateRunSnapshot>): Uint8Array => {
  const { protobuf, update } = scale();
  return protobuf.toBinary(update, protobuf.create(update, message as never));
};

/** The client's `datetime_to_proto` for a time in ms. */
export const timestampOf = (ms: number): Timestamp => {
  const seconds = Math.floor(ms / 1000);
  return { seconds: BigInt(seconds), nanos: Math.round((ms - seconds * 1000) * 1e6) };
};

/**
 * The client's `make_step`: whole and micro parts of the step rounded to six decimals, taken
 * from its decimal form so that 1000.5 and 0.1 are exact (steps are ≥ 0: the writer's rules).
 */
export function stepOf(step: number): Step {
  // the common case, without the decimal detour (the same parts)
  if (Number.isSafeInteger(step)) return { whole: BigInt(step), micro: 0n };
  const [whole, micro = '0'] = step.toFixed(6).split('.');
  return { whole: BigInt(whole!), micro: BigInt(micro) };
}

/** ms since the epoch, rounded to the nearest ms (the client's float seconds land a few ns off) */
export const timestampMs = (t: Timestamp): number => Number(t.seconds) * 1000 + Math.round(t.nanos / 1e6);

/**
 * The step as the client logged it: `whole` + `micro`/1e6, parsed from its decimal form so that
 * the result is the double nearest the exact decimal (1000.5 stays 1000.5, 0.1 stays 0.1).
 */
export function stepValue(step: Step): number {
  // micro is < 1e6 in every well-formed step; a crafted one is added as it is
  if (step.micro < 1_000_000n) return Number(`${step.whole}.${step.micro.toString().padStart(6, '0')}`);
  return Number(step.whole) + Number(step.micro) / 1e6;
}
