/**
 * Writing a Neptune 2.x operation log as the client's DiskQueue writes it
 * (neptune/core/components/queue/disk_queue.py, log_file.py): one `json.dumps` line per operation,
 * `{"obj": op, "version": n, "at": epoch seconds}`, versions 1, 2, … ; a new `data-<version>.log`
 * when the current file would pass 64 MiB; `last_put_version` holds the last version (no
 * newline) and `last_ack_version` is left empty, as an offline client leaves it (nothing acked).
 *
 * Lines are Python's `json.dumps` text: `", "` and `": "` separators, non-ASCII escaped, floats as
 * Python's `repr` (so `2.0` stays a float when the client's `Operation.from_dict` reads it).
 * Writes are synchronous and buffered, so concurrent callers of one run keep their order.
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const MAX_LOG_FILE_SIZE = 64 * 1024 ** 2;
const FLUSH_BYTES = 1 << 20;

/** A number the log holds as a Python float (an int otherwise). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Python's `repr(float)`: the shortest digits that read back exactly, in Python's notation. */
export function pythonFloatRepr(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mantissa, exp] = v.toExponential().split('e') as [string, string];
  const exponent = Number(exp);
  if (exponent < -4 || exponent >= 16) {
    const digits = mantissa.replace(/\.?0+$/, '');
    return `${digits}e${exponent < 0 ? '-' : '+'}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const text = String(v);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

const escapeChar = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** `json.dumps(value)` with Python's defaults (ensure_ascii, separators `, ` and `: `). */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (value instanceof PyFloat) return pythonFloatRepr(value.value);
  if (typeof value === 'number') return Number.isSafeInteger(value) && !Object.is(value, -0) ? String(value) : pythonFloatRepr(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u0080-\uffff]/g, escapeChar);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
  return `{${entries.map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`).join(', ')}}`;
}

/** The epoch seconds the client would have written for `ms`: `int(seconds * 1000)` gives `ms` back. */
export function secondsOf(ms: number): number {
  let seconds = ms / 1000;
  // ms / 1000 may be a hair below, and int(s * 1000) then one ms short: take the next double up
  for (let i = 0; i < 4 && Math.trunc(seconds * 1000) < ms; i++) seconds = nextUp(seconds);
  return seconds;
}

function nextUp(x: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  view.setBigUint64(0, view.getBigUint64(0) + (x >= 0 ? 1n : -1n));
  return view.getFloat64(0);
}

/** The operation log of one execution folder being written. */
export class OperationLog {
  private version = 0;
  private fd: number;
  private fileSize = 0;
  private pending: string[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly dir: string,
    /** the client's size at which a new file starts (smaller only in tests) */
    private readonly maxFileSize = MAX_LOG_FILE_SIZE,
  ) {
    this.fd = openSync(join(dir, 'data-1.log'), 'a');
  }

  get lastVersion(): number {
    return this.version;
  }

  /** Appends an operation queued at `at` (epoch seconds, or null when unknown); returns its version. */
  put(op: Record<string, unknown>, at: number | null): number {
    const version = this.version + 1;
    const line = pythonJson({ obj: op, version, at: at === null ? null : new PyFloat(at) });
    // the client's check: the file's size so far plus this line (without its newline)
    if (this.fileSize + line.length > this.maxFileSize && this.fileSize > 0) {
      this.flush();
      closeSync(this.fd);
      this.fd = openSync(join(this.dir, `data-${version}.log`), 'a');
      this.fileSize = 0;
    }
    this.pending.push(line, '\n');
    this.fileSize += line.length + 1;
    this.pendingBytes += line.length + 1;
    this.version = version;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    return version;
  }

  /** Writes what is buffered to the file. */
  flush(): void {
    if (this.pending.length === 0) return;
    writeSync(this.fd, this.pending.join(''));
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Writes what is buffered and the version files; the log stays complete on disk. */
  close(): void {
    this.flush();
    closeSync(this.fd);
    writeFileSync(join(this.dir, 'last_put_version'), String(this.version));
    writeFileSync(join(this.dir, 'last_ack_version'), '');
  }

  /** Closes the file without writing the version files (a run being discarded). */
  abandon(): void {
    this.pending = [];
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}
