/**
 * One series' point out of an UpdateRunSnapshot without decoding the rest of it. A series is read
 * by passing over every operation that holds its key; decoding each whole would decode the values
 * of every series logged with it as well (a pass per series: quadratic in series logged together).
 * Here the wire format is walked in place: the operation's step, timestamp and preview fields and
 * the append entries of that one key are kept as bytes, as they are — so protobuf's merge rules
 * still apply — and only they are decoded. Anything unusual (a group, a bad tag, a truncated
 * field) is left to the full decoder, which gives the exact result or protobuf's own error
 * (every operation was decoded whole once already, when the database was opened: scan.ts).
 */
import { decodeUpdate, type UpdateRunSnapshot } from '../neptune-common/scale-proto.js';

/** UpdateRunSnapshot's field numbers (neptune.ingest.v1, neptune-api's common.proto) */
const STEP = 1;
const TIMESTAMP = 2;
const APPEND = 8;
const PREVIEW = 10;
/** a map entry's key field */
const MAP_KEY = 1;
const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

class Unusual extends Error {}

/** A position in a message's bytes, up to `end`; the reads throw Unusual past it. */
class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** A varint that a double holds exactly: tags and lengths. */
  varint(): number {
    let value = 0;
    for (let scale = 1; scale < 2 ** 49; scale *= 128) {
      if (this.pos >= this.end) throw new Unusual();
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
    throw new Unusual();
  }

  /** A field's tag: anything protobuf refuses (field 0, beyond uint32) is Unusual. */
  tag(): number {
    const tag = this.varint();
    if (tag < 8 || tag > 0xffffffff) throw new Unusual();
    return tag;
  }

  /** Past the value of a field of this wire type; a length-delimited one's start is returned. */
  skip(wireType: number): number {
    let start = this.pos;
    if (wireType === VARINT) {
      while (this.pos < this.end && this.buf[this.pos]! >= 0x80) this.pos++;
      this.pos++;
    } else if (wireType === FIXED64) this.pos += 8;
    else if (wireType === FIXED32) this.pos += 4;
    else if (wireType === LENGTH_DELIMITED) {
      const length = this.varint();
      start = this.pos;
      this.pos += length;
    } else throw new Unusual(); // groups: deprecated, never written by neptune-scale
    if (this.pos > this.end) throw new Unusual();
    return start;
  }
}

/** The map entry in buf[start, end) has key `key`; an entry without a key field has key "". */
function entryKeyIs(buf: Uint8Array, start: number, end: number, key: Uint8Array): boolean {
  const cursor = new Cursor(buf, start, end);
  let keyStart = 0;
  let keyEnd = 0;
  while (cursor.pos < end) {
    const tag = cursor.tag();
    const from = cursor.skip(tag % 8);
    if (tag === MAP_KEY * 8 + LENGTH_DELIMITED) [keyStart, keyEnd] = [from, cursor.pos];
  }
  if (keyEnd - keyStart !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (buf[keyStart + i] !== key[i]) return false;
  return true;
}

function reduced(bytes: Uint8Array, key: Uint8Array): Uint8Array[] | undefined {
  const cursor = new Cursor(bytes, 0, bytes.length);
  const kept: Uint8Array[] = [];
  let appends = false;
  while (cursor.pos < bytes.length) {
    const start = cursor.pos;
    const tag = cursor.tag();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    const from = cursor.skip(wireType);
    if (field === APPEND && wireType === LENGTH_DELIMITED) {
      if (!entryKeyIs(bytes, from, cursor.pos, key)) continue;
      appends = true;
    } else if (field !== STEP && field !== TIMESTAMP && field !== PREVIEW) continue;
    kept.push(bytes.subarray(start, cursor.pos));
  }
  return appends ? kept : undefined;
}

/**
 * The operation reduced to its step, timestamp, preview and the append of `key` (utf-8), or
 * undefined when it appends nothing to `key`. Throws (protobuf's own error) on malformed bytes.
 */
export function decodeAppendOf(bytes: Uint8Array, key: Uint8Array): UpdateRunSnapshot | undefined {
  let kept: Uint8Array[] | undefined;
  try {
    kept = reduced(bytes, key);
  } catch (err) {
    if (!(err instanceof Unusual)) throw err;
    const whole = decodeUpdate(bytes);
    return whole.append[new TextDecoder().decode(key)] ? whole : undefined;
  }
  return kept && decodeUpdate(Buffer.concat(kept));
}
