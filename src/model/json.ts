/**
 * The JSON form of the model's typed values, shared by every file trackshift writes them into
 * (bundle format 2, the `.trackshift/` encoding): one point per JSON line, schemas to validate
 * what is read back. JSON has no NaN or ±Infinity, and JSON.stringify(-0) is "0": those travel
 * as the strings "NaN", "Infinity", "-Infinity", "-0".
 */
import { z } from 'zod';
import type { ConfigEntry, ForkPoint, Histogram, MetricPoint, SeriesFile, SeriesType, TypedPoint, TypedValue } from './index.js';

export const jsonNumber = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity', '-0'])]);
export type JsonNumber = z.infer<typeof jsonNumber>;

export function encodeNumber(v: number): JsonNumber {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (Object.is(v, -0)) return '-0';
  return v;
}

export function decodeNumber(v: JsonNumber): number {
  if (typeof v === 'number') return v;
  return { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity, '-0': -0 }[v];
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');

export const seriesInfoSchema = z.object({
  key: z.string().min(1),
  type: z.enum(['float', 'string', 'file', 'histogram']),
  system: z.boolean().optional(),
});

/** A series file's path: relative, `/` separated, no empty, `.` or `..` segment, no NUL. */
export const seriesFilePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && !p.includes('\0') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'must be a relative path inside the run (no "..", no leading "/")');

export const seriesFileSchema = z.object({
  path: seriesFilePath,
  name: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
  mimeType: z.string().optional(),
});

export const histogramSchema = z
  .object({ edges: z.array(jsonNumber), kind: z.enum(['counts', 'densities']), values: z.array(jsonNumber) })
  .refine((h) => h.edges.length === h.values.length + 1, 'a histogram has one more edge than values');

/** One point per line: s step, t timestamp, e epoch, c context, v value (by the series' type). */
const pointBase = {
  s: finite,
  t: z.number().optional(),
  e: z.number().optional(),
  c: z.string().optional(),
};
export const pointLineSchemas = {
  float: z.object({ ...pointBase, v: jsonNumber }),
  string: z.object({ ...pointBase, v: z.string() }),
  file: z.object({ ...pointBase, v: seriesFileSchema }),
  histogram: z.object({ ...pointBase, v: histogramSchema }),
} as const;

type Line = { s: number; t?: number; e?: number; c?: string; v: unknown };

function baseLine(p: { step: number; timestamp?: number; epoch?: number; context?: string }): Omit<Line, 'v'> {
  return {
    s: p.step,
    ...(p.timestamp !== undefined ? { t: p.timestamp } : {}),
    ...(p.epoch !== undefined ? { e: p.epoch } : {}),
    ...(p.context !== undefined ? { c: p.context } : {}),
  };
}

const encodeHistogram = (h: Histogram) => ({ edges: h.edges.map(encodeNumber), kind: h.kind, values: h.values.map(encodeNumber) });

/** A point of a series of `type` as one JSON line (no newline). */
export function pointToLine(type: SeriesType, p: MetricPoint | TypedPoint): string {
  const v = type === 'float' ? encodeNumber(p.value as number) : type === 'histogram' ? encodeHistogram(p.value as Histogram) : p.value;
  return JSON.stringify({ ...baseLine(p), v });
}

/** Parses a line of a series of `type`; throws a ZodError or SyntaxError on a bad line. */
export function lineToPoint(type: 'float', line: string, key: string): MetricPoint;
export function lineToPoint(type: Exclude<SeriesType, 'float'>, line: string): TypedPoint;
export function lineToPoint(type: SeriesType, line: string, key?: string): MetricPoint | TypedPoint {
  const raw: unknown = JSON.parse(line);
  const parsed = pointLineSchemas[type].parse(raw) as Line;
  const base = {
    step: parsed.s,
    ...(parsed.t !== undefined ? { timestamp: parsed.t } : {}),
    ...(parsed.e !== undefined ? { epoch: parsed.e } : {}),
    ...(parsed.c !== undefined ? { context: parsed.c } : {}),
  };
  switch (type) {
    case 'float':
      return { key: key!, ...base, value: decodeNumber(parsed.v as JsonNumber) };
    case 'histogram': {
      const h = parsed.v as { edges: JsonNumber[]; kind: Histogram['kind']; values: JsonNumber[] };
      return { ...base, value: { edges: h.edges.map(decodeNumber), kind: h.kind, values: h.values.map(decodeNumber) } };
    }
    case 'file':
      return { ...base, value: parsed.v as SeriesFile };
    default:
      return { ...base, value: parsed.v as string };
  }
}

/** Typed values: floats may be non-finite. */
export const typedValueSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('string'), value: z.string() }),
  z.object({ type: z.literal('int'), value: z.number().int() }),
  z.object({ type: z.literal('float'), value: jsonNumber }),
  z.object({ type: z.literal('bool'), value: z.boolean() }),
  z.object({ type: z.literal('datetime'), value: z.number() }),
  z.object({ type: z.literal('stringSet'), value: z.array(z.string()) }),
]);

export const configEntrySchema = z.object({ path: z.array(z.string()).min(1), value: typedValueSchema });

export const encodeEntry = (e: ConfigEntry) => ({ path: e.path, value: e.value.type === 'float' ? { type: 'float' as const, value: encodeNumber(e.value.value) } : e.value });
export const decodeEntry = (e: z.infer<typeof configEntrySchema>): ConfigEntry => ({
  path: e.path,
  value: (e.value.type === 'float' ? { type: 'float', value: decodeNumber(e.value.value) } : e.value) as TypedValue,
});

export const forkSchema = z.object({ runId: z.string().min(1), step: finite.optional() }) satisfies z.ZodType<ForkPoint>;

/** A run's dataset input (bundle files, and the Neptune writers' `run_info/inputs`). */
export const datasetInputSchema = z.object({
  dataset: z.object({
    name: z.string(),
    digest: z.string(),
    sourceType: z.string(),
    source: z.string(),
    schema: z.string().optional(),
    profile: z.string().optional(),
  }),
  tags: z.record(z.string(), z.string()),
});
