/**
 * Reading one series out of an operation walks its wire format instead of decoding it whole
 * (src/connectors/neptune3/append.ts): checked here against the full decoder on what the client
 * writes and on what protobuf allows but the client never writes.
 */
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { decodeAppendOf } from '../../src/connectors/neptune3/append.js';
import { decodeUpdate } from '../../src/connectors/neptune-common/scale-proto.js';

const key = (k: string) => Buffer.from(k, 'utf8');

/** an append map entry (field 8) of a float64 value; `keyField: false` leaves the key out (key "") */
function appendEntry(w: BinaryWriter, k: string, value: number, keyField = true): BinaryWriter {
  w.tag(8, WireType.LengthDelimited).fork();
  if (keyField) w.tag(1, WireType.LengthDelimited).string(k);
  w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.Bit64).double(value).join();
  return w.join();
}
const step = (w: BinaryWriter, whole: number, micro: number) => w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).uint64(whole).tag(2, WireType.Varint).uint64(micro).join();
const timestamp = (w: BinaryWriter, seconds: number) => w.tag(2, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int64(seconds).join();
const assign = (w: BinaryWriter, k: string) => w.tag(4, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).string(k).tag(2, WireType.LengthDelimited).fork().tag(6, WireType.LengthDelimited).string('x').join().join();

describe('decodeAppendOf', () => {
  it('gives what the full decoder gives for one key, and nothing for a key the operation lacks', () => {
    const w = new BinaryWriter();
    step(w, 1000, 500_000);
    timestamp(w, 1_772_366_400);
    assign(w, 'parameters/name');
    for (const k of ['train/loss', 'train/loss2', 'train/acc']) appendEntry(w, k, k.length);
    w.tag(99, WireType.Varint).uint32(7); // an unknown field
    const bytes = w.finish();
    const whole = decodeUpdate(bytes);
    for (const k of ['train/loss', 'train/loss2', 'train/acc']) {
      const one = decodeAppendOf(bytes, key(k))!;
      expect(one.step).toEqual(whole.step);
      expect(one.timestamp).toEqual(whole.timestamp);
      expect(Object.keys(one.append)).toEqual([k]);
      expect(one.append[k]).toEqual(whole.append[k]);
    }
    expect(decodeAppendOf(bytes, key('train/los'))).toBeUndefined();
  });

  it('follows protobuf where the client never goes: a key twice (the last wins), an entry without key, a preview', () => {
    const w = new BinaryWriter();
    appendEntry(w, 'k', 1);
    appendEntry(w, 'k', 2);
    appendEntry(w, '', 3, false);
    w.tag(10, WireType.LengthDelimited).fork().tag(1, WireType.Varint).bool(true).join();
    const bytes = w.finish();
    expect(decodeAppendOf(bytes, key('k'))!.append.k).toEqual(decodeUpdate(bytes).append.k);
    expect(decodeAppendOf(bytes, key('k'))!.append.k!.value).toEqual({ case: 'float64', value: 2 });
    expect(decodeAppendOf(bytes, key(''))!.append['']!.value).toEqual({ case: 'float64', value: 3 });
    expect(decodeAppendOf(bytes, key('k'))!.preview?.isPreview).toBe(true);
  });

  it('leaves groups to the full decoder and throws, as it does, on truncated bytes', () => {
    const w = new BinaryWriter();
    w.tag(50, WireType.StartGroup).tag(1, WireType.Varint).uint32(1).tag(50, WireType.EndGroup);
    appendEntry(w, 'k', 4);
    const bytes = w.finish();
    expect(decodeAppendOf(bytes, key('k'))!.append.k!.value).toEqual({ case: 'float64', value: 4 });
    const truncated = bytes.subarray(0, bytes.length - 3);
    expect(() => decodeUpdate(truncated)).toThrow();
    expect(() => decodeAppendOf(truncated, key('k'))).toThrow();
  });
});
