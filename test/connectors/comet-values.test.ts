import { describe, expect, it } from 'vitest';
import { inferredValue, metricNumber } from '../../src/connectors/comet-common/values.js';

describe('Comet values', () => {
  it('reads metric values given as text, the NaN/Infinity words included', () => {
    expect(metricNumber('0.25')).toBe(0.25);
    expect(metricNumber(3)).toBe(3);
    expect(metricNumber('NaN')).toBeNaN();
    expect(metricNumber('Infinity')).toBe(Number.POSITIVE_INFINITY);
    expect(metricNumber('-Infinity')).toBe(Number.NEGATIVE_INFINITY);
  });

  it('types a text value that names an Object property as the string it is', () => {
    // an object literal of the number words answered `'toString' in …` with true
    for (const text of ['toString', 'constructor', '__proto__', 'hasOwnProperty']) expect(inferredValue(text)).toEqual({ type: 'string', value: text });
    expect(inferredValue('NaN')).toEqual({ type: 'float', value: Number.NaN });
    expect(inferredValue('-Infinity')).toEqual({ type: 'float', value: Number.NEGATIVE_INFINITY });
    expect(inferredValue('12')).toEqual({ type: 'int', value: 12 });
  });
});
