/**
 * Decoding of neptune-scale's operation blobs: `neptune.ingest.v1.Run` (CreateRun) and
 * `UpdateRunSnapshot` messages, read with @bufbuild/protobuf from the client's own descriptors
 * (descriptors.ts, dumped by scripts/neptune3-descriptors.py). The interfaces below name the
 * fields this connector reads, as @bufbuild/protobuf gives them (camelCase, int64 as bigint).
 */
import { create, createFileRegistry, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { INGEST_DESCRIPTORS } from './descriptors.js';

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

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, Buffer.from(INGEST_DESCRIPTORS, 'base64')));
function message(name: string): DescMessage {
  const desc = registry.getMessage(`neptune.ingest.v1.${name}`);
  if (!desc) throw new Error(`neptune3: the descriptors lack neptune.ingest.v1.${name} (regenerate src/connectors/neptune3/descriptors.ts)`);
  return desc;
}
const RUN = message('Run');
const UPDATE = message('UpdateRunSnapshot');

/** `operation_type` in run_operations */
export const OPERATION_UPDATE = 0;
export const OPERATION_CREATE = 1;

/** Throws (protobuf's own error) when the bytes are not such a message. */
export const decodeCreateRun = (bytes: Uint8Array): CreateRun => fromBinary(RUN, bytes) as unknown as CreateRun;
export const decodeUpdate = (bytes: Uint8Array): UpdateRunSnapshot => fromBinary(UPDATE, bytes) as unknown as UpdateRunSnapshot;

/** The bytes of a message as the client stores them: bare `Run` / `UpdateRunSnapshot` (fields as read above). */
export const encodeCreateRun = (run: Partial<CreateRun> & { inheritConfigs?: boolean }): Uint8Array => toBinary(RUN, create(RUN, run as never));
export const encodeUpdate = (update: Partial<UpdateRunSnapshot>): Uint8Array => toBinary(UPDATE, create(UPDATE, update as never));

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
