/**
 * Lines of messages.json as comet_ml writes them (`{"payload": {…, "message_id": n}, "type": T}`),
 * for the writer. Numbers keep their kind: a float parameter 1.0 is written `1.0` (the reader,
 * like Python, tells it from the int 1); NaN and ±Infinity metric values are the client's strings.
 */
import type { TypedValue } from '../../model/index.js';

/** A number to be written with exactly this text. */
class RawNumber {
  constructor(readonly text: string) {}
}

const RAW_MARK = '\u0001raw:';

export const floatText = (value: number): RawNumber | string => {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(value, -0)) return new RawNumber('-0.0');
  const text = String(value);
  return new RawNumber(/[.e]/.test(text) ? text : `${text}.0`);
};

/** A metric value: a number, -0 kept, NaN and ±Infinity as the client's strings. */
export const metricValue = (value: number): RawNumber | string | number => (Number.isFinite(value) && !Object.is(value, -0) ? value : floatText(value));

/** A typed value as a Comet parameter or other holds it. */
export function scalarOf(value: TypedValue): unknown {
  switch (value.type) {
    case 'float':
      return floatText(value.value);
    case 'datetime':
      return Number.isFinite(value.value) ? new Date(value.value).toISOString() : String(value.value);
    default:
      return value.value;
  }
}

/** One line (without its newline). */
export function messageLine(type: string, payload: Record<string, unknown>, messageId: number): string {
  const json = JSON.stringify({ payload: { ...payload, message_id: messageId }, type }, (_key, value: unknown) => (value instanceof RawNumber ? RAW_MARK + value.text : value));
  return json.replace(/"\\u0001raw:([^"]*)"/g, '$1');
}
