/**
 * Values as Comet holds them: metric values are numbers or the strings "NaN", "Infinity",
 * "-Infinity" (the client writes those; the REST API gives every value as a string); parameters
 * and others are scalars in an archive and strings over REST.
 */
import type { TypedValue } from '../../model/index.js';
import type { ValueType } from './extras.js';

// a Map, not an object literal: `'toString' in {…}` is true, and a keyed lookup of every point's text was a tenth of a copy's CPU
const NUMBER_WORDS = new Map<string, number>([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
]);

/** A metric value: a number, the NaN / Infinity strings, or a number written as text (Number reads the three words itself). */
export const metricNumber = (value: number | string): number => (typeof value === 'number' ? value : Number(value));

/** A double as Comet's text gives it: NaN and ±Infinity as their words, -0 kept, a float keeps a `.0`. */
export const floatText = (value: number): string => {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(value, -0)) return '-0.0';
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
};

/** A metric value as the REST API gives it (a string): integers without `.0`, as Comet prints them. */
export const metricText = (value: number): string => (Number.isFinite(value) && !Object.is(value, -0) ? String(value) : floatText(value));

/** A JSON number as the raw text wrote it: `12` is an int, `12.0` or `1e-05` a float. */
function typedNumber(value: number, raw: string | undefined): TypedValue {
  const float = raw !== undefined ? /[.eE]/.test(raw) : !Number.isInteger(value);
  return float ? { type: 'float', value } : { type: 'int', value };
}

/** A parameter or other value (an archive's scalar) as a typed value; what has no scalar type is kept as its JSON text. */
export function typedValue(value: unknown, raw?: string): TypedValue {
  if (typeof value === 'boolean') return { type: 'bool', value };
  if (typeof value === 'number') return typedNumber(value, raw);
  if (typeof value === 'string') return { type: 'string', value };
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return { type: 'stringSet', value };
  return { type: 'string', value: JSON.stringify(value) };
}

const INT_TEXT = /^-?(0|[1-9][0-9]*)$/;
/** a decimal number as Python, Java or JavaScript print one: `0.5`, `1e-05`, `1.0E-5`, `12.` */
const FLOAT_TEXT = /^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

/**
 * A value the REST API gives as a string, typed as the archive's scalar it came from would be:
 * `12` an int, `0.5` / `1e-05` / `NaN` a float, `true` / `True` a bool, else a string.
 */
export function inferredValue(text: string): TypedValue {
  if (INT_TEXT.test(text) && Number.isSafeInteger(Number(text))) return { type: 'int', value: Number(text) };
  const word = NUMBER_WORDS.get(text);
  if (word !== undefined) return { type: 'float', value: word };
  if (FLOAT_TEXT.test(text)) return { type: 'float', value: Number(text) };
  if (text === 'true' || text === 'True') return { type: 'bool', value: true };
  if (text === 'false' || text === 'False') return { type: 'bool', value: false };
  return { type: 'string', value: text };
}

/** A typed value as the text the REST API holds (inferredValue reads it back, with valueTypeOf's type where it cannot tell). */
export function valueText(value: TypedValue): string {
  switch (value.type) {
    case 'float':
      return floatText(value.value);
    case 'int':
      return String(value.value);
    case 'bool':
      return value.value ? 'true' : 'false';
    case 'datetime':
      return Number.isFinite(value.value) ? new Date(value.value).toISOString() : String(value.value);
    case 'stringSet':
      return JSON.stringify(value.value);
    default:
      return value.value;
  }
}

/** The type to record beside a value written as text, when reading the text back would not give it. */
export function valueTypeOf(value: TypedValue): ValueType | undefined {
  const back = inferredValue(valueText(value));
  if (back.type === value.type && (value.type === 'string' || Object.is(back.value, value.value))) return undefined;
  return value.type;
}

/** A value written as a string given back the type it stands for (extras paramTypes / otherTypes). */
export function retyped(value: TypedValue, type: ValueType | undefined): TypedValue {
  if (type === undefined || type === value.type) return value;
  const text = value.type === 'string' ? value.value : valueText(value);
  switch (type) {
    case 'string':
      return { type, value: text };
    case 'datetime':
      return { type, value: Date.parse(text) };
    case 'float':
      return { type, value: metricNumber(text) };
    case 'int':
      return { type, value: Number(text) };
    case 'bool':
      return { type, value: text === 'true' || text === 'True' };
    case 'stringSet': {
      try {
        const list: unknown = JSON.parse(text);
        if (Array.isArray(list) && list.every((v) => typeof v === 'string')) return { type, value: list };
      } catch {
        // not a list: kept as the string it is
      }
      return value;
    }
  }
}
