/**
 * The operation log of one Neptune 2.x run, read line by line with each line's position, so a
 * second pass can start where a series' points start. Lines are never gathered: a log of
 * millions of points is streamed.
 */
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { OPERATION_FIELDS, parseLenient, recordSchema, type LogRecord } from './format.js';

/** Where a line is: the index of its log file in the run's list, and its byte offset there. */
export interface Position {
  file: number;
  offset: number;
}

export interface LogFile {
  path: string;
  /** `last_ack_version` of its folder: records up to it were already sent (async folders) */
  acked: number;
  /** the folder the file belongs to (its upload_path/ is beside it) */
  dir: string;
}

/** `data-<N>.log` files of an execution folder, by N (the first version each holds). */
export async function logFilesOf(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => /^data-\d+\.log$/.test(n));
  return names.sort((a, b) => Number(a.slice(5, -4)) - Number(b.slice(5, -4))).map((n) => join(dir, n));
}

export interface ReadLine {
  position: Position;
  /** 1-based, when read from the start of the file */
  lineNo?: number;
  record: LogRecord;
}

/**
 * The records of `files` from `from` on (to `to` included), parsed and validated. A line that
 * is not a record fails with its file and line; a last line cut short (a client killed while
 * writing) is skipped and reported through `onTruncated`, as the client's own reader drops it.
 */
export async function* readRecords(files: LogFile[], from: Position = { file: 0, offset: 0 }, to?: Position, onTruncated?: (where: string) => void): AsyncGenerator<ReadLine> {
  for (let f = from.file; f < files.length && (!to || f <= to.file); f++) {
    const { path, acked } = files[f]!;
    const start = f === from.file ? from.offset : 0;
    let offset = start;
    let lineNo = start === 0 ? 0 : undefined;
    let pending: Buffer[] = [];
    const emit = (bytes: Buffer, last: boolean): ReadLine | undefined => {
      const position = { file: f, offset };
      offset += bytes.length + (last ? 0 : 1);
      if (lineNo !== undefined) lineNo++;
      const text = bytes.toString('utf8');
      if (text.trim() === '') return undefined;
      const where = `${path}:${lineNo ?? `byte ${position.offset}`}`;
      let parsed: unknown;
      try {
        parsed = parseLenient(text);
      } catch (err) {
        if (last && f === files.length - 1) {
          onTruncated?.(where);
          return undefined;
        }
        throw new InvalidInputError(where, `is not a JSON operation record (${errorMessage(err)})`);
      }
      const record = recordSchema.safeParse(parsed);
      if (!record.success) throw new InvalidInputError(where, `is not an operation record: ${record.error.issues[0]?.message ?? 'wrong shape'} at ${record.error.issues[0]?.path.join('.')}`);
      if (record.data.version <= acked) return undefined;
      const fields = OPERATION_FIELDS[record.data.obj.type as keyof typeof OPERATION_FIELDS];
      if (fields) {
        const checked = fields.safeParse(record.data.obj);
        if (!checked.success) throw new InvalidInputError(where, `${record.data.obj.type}: ${checked.error.issues[0]?.message} at ${checked.error.issues[0]?.path.join('.')}`);
      }
      return { position, ...(lineNo !== undefined ? { lineNo } : {}), record: record.data };
    };
    const stream = createReadStream(path, { start, highWaterMark: 1 << 20 });
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        let from = 0;
        for (let nl = chunk.indexOf(10, from); nl !== -1; nl = chunk.indexOf(10, from)) {
          const piece = chunk.subarray(from, nl);
          const line = pending.length > 0 ? Buffer.concat([...pending, piece]) : piece;
          pending = [];
          from = nl + 1;
          const out = emit(line, false);
          if (out) yield out;
          if (to && f === to.file && offset > to.offset) return;
        }
        if (from < chunk.length) pending.push(chunk.subarray(from));
      }
      if (pending.length > 0) {
        const out = emit(Buffer.concat(pending), true);
        if (out) yield out;
      }
    } catch (err) {
      if (err instanceof InvalidInputError) throw err;
      throw new InvalidInputError(path, `cannot be read: ${errorMessage(err)}`);
    } finally {
      stream.destroy();
    }
  }
}
