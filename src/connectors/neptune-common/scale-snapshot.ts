/**
 * UpdateRunSnapshots to bytes, fast for the most common kind: a metric step (`step`,
 * `timestamp` and float64 `append`s, nothing else), written field by field in the order and
 * form protobuf's own encoder writes them (its bytes exactly: test/connectors/neptune-scale-
 * snapshot.test.ts); every other snapshot goes through the descriptors (scale-proto.ts). A copy
 * of millions of points otherwise spends most of its time building and collecting the generic
 * encoder's objects.
 */
import { encodeUpdate, type UpdateRunSnapshot } from './scale-proto.js';

/** field numbers: UpdateRunSnapshot.step, .timestamp, .append; map entry key and value; Value.float64 */
const STEP = 1;
const TIMESTAMP = 2;
const APPEND = 8;
const LEN = 2;
const VARINT = 0;
const FIXED64 = 1;

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private at = 0;

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /** a non-negative integer below 2^53 as a varint */
  varint(value: number): void {
    this.room(10);
    let rest = value;
    while (rest > 127) {
      this.buf[this.at++] = (rest % 128) | 128;
      rest = Math.floor(rest / 128);
    }
    this.buf[this.at++] = rest;
  }

  key(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** a proto3 integer field: left out when zero */
  scalar(field: number, value: number): void {
    if (value === 0) return;
    this.key(field, VARINT);
    this.varint(value);
  }

  double(value: number): void {
    this.room(8);
    this.buf.writeDoubleLE(value, this.at);
    this.at += 8;
  }

  bytes(bytes: Buffer): void {
    this.room(bytes.length);
    bytes.copy(this.buf, this.at);
    this.at += bytes.length;
  }

  done(): Uint8Array {
    return this.buf.subarray(0, this.at);
  }
}

const varintLength = (value: number): number => {
  let n = 1;
  for (let rest = value; rest > 127; rest = Math.floor(rest / 128)) n++;
  return n;
};

/** a bigint as a number, when it is one a varint above can write exactly */
const small = (value: bigint): number | undefined => (value >= 0n && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined);

/** The bytes of a snapshot; the fast way when it is a metric step. */
export function encodeSnapshot(update: Partial<UpdateRunSnapshot>): Uint8Array {
  return encodeMetricStep(update) ?? encodeUpdate(update);
}

/** A metric step's bytes, or undefined when the snapshot is anything else (or holds numbers this writer does not take). */
function encodeMetricStep(update: Partial<UpdateRunSnapshot>): Uint8Array | undefined {
  const { step, timestamp, append } = update;
  if (!step || !timestamp || !append || update.preview || (update.assign && Object.keys(update.assign).length > 0) || (update.modifySets && Object.keys(update.modifySets).length > 0)) return undefined;
  if (Object.keys(update).some((k) => k !== 'step' && k !== 'timestamp' && k !== 'append' && k !== 'assign' && k !== 'modifySets')) return undefined;
  const whole = small(step.whole);
  const micro = small(step.micro);
  const seconds = small(timestamp.seconds);
  if (whole === undefined || micro === undefined || seconds === undefined || !Number.isInteger(timestamp.nanos) || timestamp.nanos < 0) return undefined;
  const out = new Writer();
  // proto3 leaves zero scalars out; a present message is written even when empty
  const stepLength = (whole ? 1 + varintLength(whole) : 0) + (micro ? 1 + varintLength(micro) : 0);
  out.key(STEP, LEN);
  out.varint(stepLength);
  out.scalar(1, whole);
  out.scalar(2, micro);
  const timeLength = (seconds ? 1 + varintLength(seconds) : 0) + (timestamp.nanos ? 1 + varintLength(timestamp.nanos) : 0);
  out.key(TIMESTAMP, LEN);
  out.varint(timeLength);
  out.scalar(1, seconds);
  out.scalar(2, timestamp.nanos);
  for (const [path, value] of Object.entries(append)) {
    if (value.value.case !== 'float64') return undefined;
    const key = Buffer.from(path, 'utf8');
    // Value{float64}: its key and 8 bytes
    const valueLength = 9;
    const entryLength = 1 + varintLength(key.length) + key.length + 1 + varintLength(valueLength) + valueLength;
    out.key(APPEND, LEN);
    out.varint(entryLength);
    out.key(1, LEN);
    out.varint(key.length);
    out.bytes(key);
    out.key(2, LEN);
    out.varint(valueLength);
    out.key(1, FIXED64);
    out.double(value.value.value);
  }
  return out.done();
}
