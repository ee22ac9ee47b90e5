/**
 * Reading one neptune-exporter parquet part with hyparquet, one row group at a time: memory holds
 * the asked-for columns of one row group (the exporter writes a row group per record batch), never
 * a whole file's rows.
 *
 * `step` is decimal(18,6); pyarrow stores it as fixed_len_byte_array(8) (int64 and int32 are
 * accepted too). hyparquet would turn the unscaled integer into a double before dividing, which
 * rounds twice past 2^53, so the step column is read raw and decoded here: an unscaled value
 * up to 2^53 divided by 10^scale (both exact, so the quotient is the double nearest the decimal),
 * a larger one through its decimal string (also correctly rounded). Timestamps stay ms numbers.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { AsyncBuffer, FileMetaData, SchemaElement } from 'hyparquet';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { COLUMNS, type ColumnName } from './format.js';

/** The decoded columns of one row group (each array as long as `rows`). */
export interface RowGroupColumns {
  rows: number;
  columns: Partial<Record<ColumnName, unknown[]>>;
}

const ms = (v: bigint): number => Number(v);
const PARSERS = { timestampFromMilliseconds: ms, timestampFromMicroseconds: (v: bigint) => Number(v / 1000n), timestampFromNanoseconds: (v: bigint) => Number(v / 1_000_000n) };
const MAX_EXACT = 2n ** 53n;

/** A decimal's unscaled two's-complement big-endian bytes, or an int, as the nearest double of value / 10^scale. */
export function decimalToNumber(raw: unknown, scale: number): number | null {
  if (raw === null || raw === undefined) return null;
  if (raw instanceof Uint8Array && raw.length === 8) {
    // the common case without BigInt: the high word small enough that hi * 2^32 + lo is exact
    const view = new DataView(raw.buffer, raw.byteOffset, 8);
    const hi = view.getInt32(0);
    if (hi >= -0x200000 && hi < 0x200000) return (hi * 0x1_0000_0000 + view.getUint32(4)) / 10 ** scale;
  }
  let unscaled: bigint;
  if (raw instanceof Uint8Array) {
    unscaled = 0n;
    for (const byte of raw) unscaled = (unscaled << 8n) | BigInt(byte);
    if (raw.length > 0 && raw[0]! & 0x80) unscaled -= 1n << BigInt(raw.length * 8);
  } else if (typeof raw === 'bigint') unscaled = raw;
  else if (typeof raw === 'number' && Number.isInteger(raw)) unscaled = BigInt(raw);
  else throw new Error(`not a decimal: ${String(raw)}`);
  const magnitude = unscaled < 0n ? -unscaled : unscaled;
  if (magnitude <= MAX_EXACT) return Number(unscaled) / 10 ** scale;
  const digits = magnitude.toString().padStart(scale + 1, '0');
  const text = `${unscaled < 0n ? '-' : ''}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
  return Number(text);
}

/** A file as hyparquet's AsyncBuffer, read through one open handle. */
function fileBuffer(handle: FileHandle, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const length = (end ?? size) - start;
      const bytes = new Uint8Array(length);
      let read = 0;
      while (read < length) {
        const { bytesRead } = await handle.read(bytes, read, length - read, start + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      return bytes.buffer;
    },
  };
}

/** One part file, opened: its metadata checked against the exporter's schema. */
export class ParquetPart {
  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly buffer: AsyncBuffer,
    /** the metadata hyparquet reads with: `step` without its decimal annotation, so it comes raw */
    private readonly metadata: FileMetaData,
    private readonly stepScale: number,
  ) {}

  static async open(file: string): Promise<ParquetPart> {
    const handle = await open(file, 'r').catch((err: unknown) => {
      throw new InvalidInputError(file, `cannot open: ${errorMessage(err)}`);
    });
    try {
      const { size } = await handle.stat();
      const buffer = fileBuffer(handle, size);
      const { parquetMetadataAsync } = await import('hyparquet');
      const metadata = await parquetMetadataAsync(buffer).catch((err: unknown) => {
        throw new InvalidInputError(file, `is not a readable parquet file: ${errorMessage(err)}`);
      });
      const { rawMetadata, scale } = checkSchema(file, metadata);
      return new ParquetPart(file, handle, buffer, rawMetadata, scale);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  get rowGroups(): number {
    return this.metadata.row_groups.length;
  }

  /**
   * False when row group `index`'s statistics show that `column` never equals `value` there
   * (min/max compared as parquet does, by UTF-8 bytes); true when it may, or nothing is known.
   */
  mayHold(index: number, column: ColumnName, value: string): boolean {
    const stats = this.statistics(index, column);
    if (!stats || typeof stats.min_value !== 'string' || typeof stats.max_value !== 'string') return true;
    if (stats.is_min_value_exact === false || stats.is_max_value_exact === false) return true;
    const key = Buffer.from(value);
    return Buffer.compare(key, Buffer.from(stats.min_value)) >= 0 && Buffer.compare(key, Buffer.from(stats.max_value)) <= 0;
  }

  /** The one value `column` has in every row of row group `index`, when its statistics say so. */
  constantIn(index: number, column: ColumnName): string | undefined {
    const stats = this.statistics(index, column);
    if (!stats || stats.null_count !== 0n || typeof stats.min_value !== 'string' || stats.min_value !== stats.max_value) return undefined;
    return stats.is_min_value_exact === false || stats.is_max_value_exact === false ? undefined : stats.min_value;
  }

  private statistics(index: number, column: ColumnName) {
    const chunk = this.metadata.row_groups[index]!.columns.find((c) => c.meta_data?.path_in_schema.length === 1 && c.meta_data.path_in_schema[0] === column);
    return chunk?.meta_data?.statistics;
  }

  /** The asked-for columns of row group `index`, decoded (steps as doubles, times as ms). */
  async readRowGroup(index: number, columns: readonly ColumnName[]): Promise<RowGroupColumns> {
    let rowStart = 0;
    for (let i = 0; i < index; i++) rowStart += Number(this.metadata.row_groups[i]!.num_rows);
    const rows = Number(this.metadata.row_groups[index]!.num_rows);
    const out: Partial<Record<ColumnName, unknown[]>> = {};
    for (const c of columns) out[c] = new Array<unknown>(rows);
    // loaded when a parquet file is read: the readers and decompressors weigh ~10 MB that other copies do not need
    const [{ parquetRead }, { compressors }] = await Promise.all([import('hyparquet'), import('hyparquet-compressors')]);
    try {
      await parquetRead({
        file: this.buffer,
        metadata: this.metadata,
        columns: [...columns],
        rowStart,
        rowEnd: rowStart + rows,
        compressors,
        parsers: PARSERS,
        onChunk: ({ columnName, columnData, rowStart: chunkStart }) => {
          const target = out[columnName as ColumnName];
          if (!target) return;
          for (let i = 0; i < columnData.length; i++) {
            const row = chunkStart + i - rowStart;
            if (row >= 0 && row < rows) target[row] = columnData[i];
          }
        },
      });
    } catch (err) {
      throw new InvalidInputError(this.file, `cannot read row group ${index}: ${errorMessage(err)}`);
    }
    const steps = out.step;
    if (steps) {
      for (let i = 0; i < rows; i++) {
        try {
          steps[i] = decimalToNumber(steps[i], this.stepScale);
        } catch (err) {
          throw new InvalidInputError(this.file, `row ${rowStart + i}: step ${errorMessage(err)}`);
        }
      }
    }
    return { rows, columns: out };
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** The exporter's columns must be there with their types; `step` must be a decimal. */
function checkSchema(file: string, metadata: FileMetaData): { rawMetadata: FileMetaData; scale: number } {
  const top = topLevel(metadata.schema);
  for (const name of COLUMNS) if (!top.has(name)) throw new InvalidInputError(file, `has no column "${name}": not a neptune-exporter parquet file`);
  const step = top.get('step')!;
  const decimal = step.converted_type === 'DECIMAL' || step.logical_type?.type === 'DECIMAL';
  const physical = step.type === 'FIXED_LEN_BYTE_ARRAY' || step.type === 'BYTE_ARRAY' || step.type === 'INT64' || step.type === 'INT32';
  const scale = step.scale ?? (step.logical_type?.type === 'DECIMAL' ? step.logical_type.scale : undefined);
  if (!decimal || !physical || scale === undefined || scale < 0 || scale > 18) {
    throw new InvalidInputError(file, `column "step" is ${step.logical_type?.type ?? step.converted_type ?? step.type}, not the decimal(18,6) neptune-exporter writes`);
  }
  const rawStep: SchemaElement = { ...step, converted_type: undefined, logical_type: undefined };
  const rawMetadata: FileMetaData = { ...metadata, schema: metadata.schema.map((e) => (e === step ? rawStep : e)) };
  return { rawMetadata, scale };
}

/** The top-level fields of a flattened parquet schema, by name. */
function topLevel(schema: SchemaElement[]): Map<string, SchemaElement> {
  const out = new Map<string, SchemaElement>();
  let i = 1;
  const skip = (index: number): number => {
    let next = index + 1;
    for (let c = 0; c < (schema[index]!.num_children ?? 0); c++) next = skip(next);
    return next;
  };
  while (i < schema.length) {
    out.set(schema[i]!.name, schema[i]!);
    i = skip(i);
  }
  return out;
}
