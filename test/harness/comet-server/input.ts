/** Reading what clients send: typed fields or Comet's 400, and values as Comet stores them (strings). */
import { CometError } from './http.js';

export function str(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || v === '') throw new CometError(400, `${field} is required`);
  return v;
}

export function optStr(body: Record<string, unknown>, field: string): string | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new CometError(400, `${field} must be a string`);
  return v;
}

/** a number from JSON or a query string; null when absent */
export function optNum(v: unknown, field: string): number | null {
  if (v === undefined || v === null || v === '') return null;
  const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new CometError(400, `${field} must be a number`);
  return n;
}

export function optBool(v: unknown): boolean {
  return v === true || v === 'true' || v === 'True';
}

/** A logged value as Comet's REST reads give it back: always a string. */
export function valueString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  return JSON.stringify(v);
}

export function strings(v: unknown, field: string): string[] {
  if (!Array.isArray(v) || !v.every((t) => typeof t === 'string')) throw new CometError(400, `${field} must be a list of strings`);
  return v as string[];
}

export function record(v: unknown, field: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CometError(400, `${field} must be an object`);
  return v as Record<string, unknown>;
}
