/**
 * The files of the Neptune 2.x client (`neptune` 1.x) in its `.neptune/offline` and
 * `.neptune/async` folders, as its own code writes them (neptune/internal/operation.py,
 * core/components/queue/disk_queue.py): validated at the boundary with zod.
 */
import { z } from 'zod';

/** `metadata.json` of an execution folder (client ≥ ~1.8.3); older folders have none. */
export const metadataSchema = z.looseObject({
  mode: z.string().optional(),
  containerId: z.string().optional(),
  containerType: z.string().optional(),
  createdAt: z.string().optional(),
});

/** One line of `data-<N>.log`: an operation, its version (1, 2, … within the folder) and when it was queued (epoch s). */
export const recordSchema = z.object({
  obj: z.looseObject({ type: z.string(), path: z.array(z.string()).min(1) }),
  version: z.number().int(),
  at: z.number().nullish(),
});
export type LogRecord = z.infer<typeof recordSchema>;

/** values may be NaN or ±Infinity (older clients wrote them; z.number() refuses them) */
const anyNumber = z.custom<number>((v) => typeof v === 'number', 'expected a number');

const seriesValue = <T extends z.ZodType>(value: T) => z.object({ value, step: z.number().nullish(), ts: z.number() });
const imageValue = z.union([z.string(), z.object({ data: z.string().nullish(), name: z.string().nullish(), description: z.string().nullish() }), z.null()]);

/** The fields each operation type carries besides `type` and `path`. */
export const OPERATION_FIELDS = {
  AssignFloat: z.object({ value: anyNumber }),
  AssignInt: z.object({ value: z.number().int() }),
  AssignBool: z.object({ value: z.boolean() }),
  AssignString: z.object({ value: z.string() }),
  /** epoch ms */
  AssignDatetime: z.object({ value: z.number() }),
  AssignArtifact: z.object({ hash: z.string() }),
  UploadFile: z.object({ ext: z.string().nullish(), file_path: z.string().nullish(), tmp_file_name: z.string().nullish() }),
  UploadFileContent: z.object({ ext: z.string().nullish(), file_content: z.string() }),
  UploadFileSet: z.object({ file_globs: z.array(z.string()), reset: z.union([z.string(), z.boolean()]) }),
  LogFloats: z.object({ values: z.array(seriesValue(anyNumber)) }),
  LogStrings: z.object({ values: z.array(seriesValue(z.string())) }),
  LogImages: z.object({ values: z.array(seriesValue(imageValue)) }),
  ClearFloatLog: z.object({}),
  ClearStringLog: z.object({}),
  ClearImageLog: z.object({}),
  ConfigFloatSeries: z.object({ min: z.number().nullish(), max: z.number().nullish(), unit: z.string().nullish() }),
  AddStrings: z.object({ values: z.array(z.string()) }),
  RemoveStrings: z.object({ values: z.array(z.string()) }),
  ClearStringSet: z.object({}),
  DeleteFiles: z.object({ file_paths: z.array(z.string()) }),
  DeleteAttribute: z.object({}),
  TrackFilesToArtifact: z.object({ project_id: z.string().nullish(), entries: z.array(z.array(z.string().nullable())) }),
  ClearArtifact: z.object({}),
  CopyAttribute: z.object({ container_id: z.string(), source_path: z.array(z.string()), source_attr_name: z.string() }),
} as const;
export type OperationType = keyof typeof OPERATION_FIELDS;
export type Fields<T extends OperationType> = z.infer<(typeof OPERATION_FIELDS)[T]>;
export type Operation<T extends OperationType> = Fields<T> & { type: T; path: string[] };

/** The series operations by the model's series type they make. */
export const LOG_TYPES = { LogFloats: 'float', LogStrings: 'string', LogImages: 'file' } as const;
export const CLEAR_TYPES = { ClearFloatLog: 'float', ClearStringLog: 'string', ClearImageLog: 'file' } as const;

const NAN_TOKEN = '\u0001trackshift:NaN';
const TOKENS: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

/**
 * A line as Python's `json` module reads it with `strict=False` (the client's JsonFileSplitter):
 * raw control characters inside strings, and the bare NaN / Infinity Python writes. Tried
 * strictly first; the slower tolerant pass only for lines that need it.
 */
export function parseLenient(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    let out = '';
    let inString = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i]!;
      if (inString) {
        if (c === '\\') {
          out += c + (line[i + 1] ?? '');
          i++;
        } else if (c === '"') {
          inString = false;
          out += c;
        } else if (c < ' ') out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
        else out += c;
      } else if (c === '"') {
        inString = true;
        out += c;
      } else {
        const token = /^(-Infinity|Infinity|NaN)/.exec(line.slice(i, i + 9))?.[1];
        if (token) {
          out += JSON.stringify(NAN_TOKEN + token);
          i += token.length - 1;
        } else out += c;
      }
    }
    return JSON.parse(out, (_key, value: unknown) => (typeof value === 'string' && value.startsWith(NAN_TOKEN) ? TOKENS[value.slice(NAN_TOKEN.length)] : value));
  }
}
