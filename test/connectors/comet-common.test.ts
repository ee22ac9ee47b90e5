/**
 * comet-common's value rules, which every Comet connector relies on: REST gives parameters,
 * others and metric values as strings; a typed value written as REST's text and read back (with
 * the type the extras record where the text cannot tell) is the value it was.
 */
import { describe, expect, it } from 'vitest';
import { metricPointOf, parseRecord, restMetricSchema } from '../../src/connectors/comet-common/rest.js';
import { inferredValue, metricNumber, metricText, retyped, valueText, valueTypeOf } from '../../src/connectors/comet-common/values.js';
import type { TypedValue } from '../../src/model/index.js';

describe('comet-common values', () => {
  it('types REST strings as the archive scalars they came from', () => {
    expect(inferredValue('12')).toEqual({ type: 'int', value: 12 });
    expect(inferredValue('-3')).toEqual({ type: 'int', value: -3 });
    expect(inferredValue('0.001')).toEqual({ type: 'float', value: 0.001 });
    expect(inferredValue('1e-05')).toEqual({ type: 'float', value: 1e-5 });
    expect(inferredValue('12.0')).toEqual({ type: 'float', value: 12 });
    expect(inferredValue('1.0E-5')).toEqual({ type: 'float', value: 1e-5 });
    expect(inferredValue('NaN').value).toBeNaN();
    expect(inferredValue('-Infinity')).toEqual({ type: 'float', value: -Infinity });
    expect(inferredValue('True')).toEqual({ type: 'bool', value: true });
    expect(inferredValue('false')).toEqual({ type: 'bool', value: false });
    for (const text of ['adam', '', '1.2.3', '0x10', '12abc', 'e5', '.', '-']) expect(inferredValue(text)).toEqual({ type: 'string', value: text });
  });

  it('writes every typed value as text that reads back the same, with the type recorded only where the text cannot tell', () => {
    const values: TypedValue[] = [
      { type: 'int', value: 12 },
      { type: 'int', value: 2 ** 60 },
      { type: 'float', value: 0.1 },
      { type: 'float', value: 12 },
      { type: 'float', value: -0 },
      { type: 'float', value: 1e21 },
      { type: 'float', value: NaN },
      { type: 'float', value: -Infinity },
      { type: 'bool', value: false },
      { type: 'string', value: 'adam' },
      { type: 'string', value: '12' },
      { type: 'string', value: 'NaN' },
      { type: 'string', value: 'true' },
      { type: 'datetime', value: Date.UTC(2024, 0, 2, 3, 4, 5, 6) },
      { type: 'stringSet', value: ['a', 'b'] },
    ];
    for (const value of values) {
      const back = retyped(inferredValue(valueText(value)), valueTypeOf(value));
      expect(back.type).toBe(value.type);
      expect(Object.is(back.value, value.value) || JSON.stringify(back.value) === JSON.stringify(value.value)).toBe(true);
    }
    expect(values.filter((v) => valueTypeOf(v) !== undefined).map((v) => `${v.type}:${String(v.value)}`)).toEqual(['int:1152921504606847000', 'string:12', 'string:NaN', 'string:true', 'datetime:1704164645006', 'stringSet:a,b']);
  });

  it('reads and writes metric values as REST gives them', () => {
    for (const value of [0.5, 3, -0, 1e-7, NaN, Infinity, -Infinity]) expect(Object.is(metricNumber(metricText(value)), value)).toBe(true);
    expect([NaN, Infinity, -Infinity].map(metricText)).toEqual(['NaN', 'Infinity', '-Infinity']);
    const record = parseRecord(restMetricSchema, { metricName: 'loss', metricValue: 'Infinity', timestamp: 5, step: null, epoch: 2, runContext: 'train' }, 'here');
    expect(metricPointOf(record)).toEqual({ key: 'loss', step: 0, timestamp: 5, epoch: 2, context: 'train', value: Infinity });
    expect(metricPointOf({ ...record, metricValue: null })).toBeUndefined();
    expect(() => parseRecord(restMetricSchema, { metricName: 3 }, 'metrics.jsonl:7')).toThrow(/metrics\.jsonl:7.*metricName/);
  });
});
