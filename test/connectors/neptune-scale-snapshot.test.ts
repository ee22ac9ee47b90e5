/**
 * The fast encoding of metric steps (neptune-common/scale-snapshot.ts) gives protobuf's own bytes
 * for every kind of step, time and value, and leaves every other snapshot to protobuf.
 */
import { describe, expect, it } from 'vitest';
import { encodeSnapshot } from '../../src/connectors/neptune-common/scale-snapshot.js';
import { decodeUpdate, encodeUpdate, stepOf, timestampOf, type UpdateRunSnapshot } from '../../src/connectors/neptune-common/scale-proto.js';
import { appendSnapshot, attributeSnapshots } from '../../src/connectors/neptune-common/scale-values.js';

const floats = (values: Record<string, number>) => Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { value: { case: 'float64' as const, value: v } }]));

describe('encodeSnapshot', () => {
  it('writes a metric step as protobuf does, byte for byte', () => {
    const steps = [0, 1, 0.5, 1.000001, 127, 128, 16383, 16384, 123456789.123456, 999_999_999_999.999999, 2 ** 40];
    const times = [0, 1, 999, 1000, 1_767_000_000_000, 1_767_000_000_123.456, 4_102_444_800_000];
    const values = [0, -0, 1.5, -2.25, 1e-300, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];
    const keys = ['a', 'train/loss', 'é/ü/日本', 'x'.repeat(200)];
    for (const step of steps) {
      for (const time of times) {
        const update = appendSnapshot(step, time, floats(Object.fromEntries(keys.map((k, i) => [k, values[(i + steps.indexOf(step)) % values.length]!])))).update;
        const fast = encodeSnapshot(update);
        expect(Buffer.from(fast).equals(Buffer.from(encodeUpdate(update))), `step ${step} time ${time}`).toBe(true);
        const back = decodeUpdate(fast);
        expect(back.step).toMatchObject(stepOf(step));
        expect(back.timestamp).toMatchObject(timestampOf(time));
      }
    }
    // no values at all, and an empty step
    const empty = { step: { whole: 0n, micro: 0n }, timestamp: { seconds: 0n, nanos: 0 }, append: {} };
    expect(Buffer.from(encodeSnapshot(empty)).equals(Buffer.from(encodeUpdate(empty)))).toBe(true);
  });

  it('leaves every other snapshot to protobuf', () => {
    const others: Array<Partial<UpdateRunSnapshot>> = [
      ...attributeSnapshots([['a', { type: 'string', value: 'x' }], ['sys/tags', { type: 'stringSet', value: ['t'] }]], 1000, 1000).map((p) => p.update),
      appendSnapshot(1, 1000, { s: { value: { case: 'string', value: 'line' } } }).update,
      appendSnapshot(1, 1000, { a: { value: { case: 'float64', value: 1 } }, s: { value: { case: 'string', value: 'line' } } }).update,
      { ...appendSnapshot(1, 1000, floats({ a: 1 })).update, preview: { isPreview: true } },
      // numbers beyond what the fast writer takes
      { step: { whole: 2n ** 60n, micro: 0n }, timestamp: { seconds: 1n, nanos: 0 }, append: floats({ a: 1 }) },
      { step: { whole: 1n, micro: 0n }, timestamp: { seconds: -5n, nanos: 0 }, append: floats({ a: 1 }) },
    ];
    for (const update of others) expect(Buffer.from(encodeSnapshot(update)).equals(Buffer.from(encodeUpdate(update)))).toBe(true);
  });
});
