import { describe, expect, it } from 'vitest';
import { toMetricPoints } from '../../src/connectors/mlflow-common/schemas.js';

describe('toMetricPoints (get-history pages, checked by hand)', () => {
  it('reads numbers, int64 strings, non-finite strings and left-out fields as protobuf JSON writes them', () => {
    const points = toMetricPoints(
      [
        { key: 'loss', value: 0.5, timestamp: 1700000000123, step: 3 },
        { key: 'loss', value: 'NaN', timestamp: '1700000000124', step: '-4' },
        { key: 'loss', value: 'Infinity', timestamp: 1 },
        { key: 'loss', value: '-Infinity' },
        { key: 'loss' },
      ],
      'loss',
    );
    expect(points).toEqual([
      { key: 'loss', value: 0.5, timestamp: 1700000000123, step: 3 },
      { key: 'loss', value: NaN, timestamp: 1700000000124, step: -4 },
      { key: 'loss', value: Infinity, timestamp: 1, step: 0 },
      { key: 'loss', value: -Infinity, timestamp: 0, step: 0 },
      { key: 'loss', value: 0, timestamp: 0, step: 0 },
    ]);
  });

  it('names the point and field of a bad answer', () => {
    expect(() => toMetricPoints([{ value: 1 }, { value: 'high' }], 'k')).toThrow('metrics.1.value: not a number ("high")');
    expect(() => toMetricPoints([{ value: 1, step: '1.5' }], 'k')).toThrow('metrics.0.step: not an integer ("1.5")');
    expect(() => toMetricPoints([{ value: 1, timestamp: true }], 'k')).toThrow('metrics.0.timestamp: not an integer (true)');
    expect(() => toMetricPoints([null], 'k')).toThrow('metrics.0: not an object');
  });
});
