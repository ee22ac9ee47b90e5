/**
 * Reading one offline archive (a zip) with yauzl: its central directory is read once per use, and
 * each entry is streamed from the file, so `messages.json` (millions of points) is never held
 * whole and a large asset is piped, not staged.
 */
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { quoted } from '../../util/paths.js';

export class Archive {
  private constructor(
    readonly file: string,
    private readonly zip: ZipFile,
    private readonly entries: Map<string, Entry>,
  ) {}

  /** Opens `file` and reads its directory; close() it when done (streams opened before keep working until they end). */
  static async open(file: string): Promise<Archive> {
    let zip: ZipFile;
    try {
      zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, strictFileNames: true });
    } catch (err) {
      throw new InvalidInputError(file, `is not a readable zip archive (${errorMessage(err)})`);
    }
    const entries = new Map<string, Entry>();
    try {
      for await (const entry of zip.eachEntry()) if (!entry.fileName.endsWith('/')) entries.set(entry.fileName, entry);
    } catch (err) {
      zip.close();
      throw new InvalidInputError(file, `has an unreadable zip directory (${errorMessage(err)})`);
    }
    return new Archive(file, zip, entries);
  }

  /** `read` with the archive open, closed afterwards whatever happens. */
  static async using<T>(file: string, read: (archive: Archive) => Promise<T>): Promise<T> {
    const archive = await Archive.open(file);
    try {
      return await read(archive);
    } finally {
      archive.close();
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  size(name: string): number | undefined {
    return this.entries.get(name)?.uncompressedSize;
  }

  async stream(name: string): Promise<Readable> {
    const entry = this.entries.get(name);
    if (!entry) throw new InvalidInputError(this.file, `has no file ${quoted(name)}`);
    try {
      return await this.zip.openReadStreamPromise(entry);
    } catch (err) {
      throw new InvalidInputError(`${this.file}:${name}`, `cannot be read (${errorMessage(err)})`);
    }
  }

  async read(name: string): Promise<Buffer> {
    return buffer(await this.stream(name));
  }

  /** The lines of a text entry, with their 1-based numbers, streamed. */
  async *lines(name: string): AsyncGenerator<{ text: string; lineNo: number }> {
    const input = await this.stream(name);
    const lines = createInterface({ input, crlfDelay: Infinity });
    let lineNo = 0;
    try {
      for await (const text of lines) yield { text, lineNo: ++lineNo };
    } finally {
      lines.close();
      input.destroy();
    }
  }

  close(): void {
    this.zip.close();
  }
}
