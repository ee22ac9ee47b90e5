/**
 * Copying files (artifacts, a version's or logged model's files, series files, the encoding's
 * sidecars): under one limit across the whole transfer, each retried from a fresh source stream,
 * and — where the destination names objects by id in some files (MLflow's `MLmodel`) — with
 * the ids of the copies written in.
 */
import { Readable, Transform } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import type { ArtifactFile } from '../model/index.js';
import type { Destination, IdsInFiles } from '../connectors/types.js';
import { readSmall } from '../util/streams.js';
import { DEFAULT_RETRY_POLICY, retryReasonOf, withRetry, type RetryContext, type RetryReason } from '../util/retry.js';

/** Passes a stream through, counting its bytes (a 'data' listener would start it flowing early). */
function countBytes(body: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  body.on('error', (err) => counter.destroy(err));
  return { stream: body.pipe(counter), bytes: () => bytes };
}

/** One file as the listing `FileCopier.copy` takes. */
export async function* oneFile(file: { path: string; size?: number }): AsyncIterable<ArtifactFile> {
  yield { path: file.path, ...(file.size !== undefined ? { size: file.size } : {}) };
}

/** A failed file transfer is worth another try from the start when its error is retriable; a broken source stream too. */
const fileRetryReason = (err: unknown): RetryReason | undefined => retryReasonOf(err) ?? (err instanceof Error && /premature close|aborted|socket hang up|other side closed/i.test(err.message) ? { kind: 'connection reset' } : undefined);

export class FileCopier {
  private readonly limit: LimitFunction;

  constructor(
    private readonly destination: Destination,
    workers: number,
    private readonly retry: RetryContext | undefined,
    /** bytes moved, per file (progress) */
    private readonly onBytes: (count: number) => void,
  ) {
    this.limit = pLimit(Math.max(1, workers));
  }

  /**
   * Copies files under the limit; files that name objects by id (the destination's
   * `idsInFiles`) get the new ids of those objects (`ids`: source id → destination id).
   */
  async copy(
    files: AsyncIterable<ArtifactFile>,
    open: (path: string) => Promise<Readable>,
    write: (file: ArtifactFile, body: Readable) => Promise<void>,
    ids: ReadonlyMap<string, string> = new Map(),
  ): Promise<{ artifacts: number; bytes: number }> {
    const copies: Promise<number>[] = [];
    const rewriter = ids.size > 0 ? this.destination.idsInFiles : undefined;
    for await (const file of files) {
      copies.push(
        this.limit(() =>
          // a stream cannot be replayed by the HTTP layer: a failed file is read again from the start
          withRetry(this.retry?.policy ?? DEFAULT_RETRY_POLICY, async () => {
            const rewritten = rewriter?.holdsIds(file.path) ? await rewrittenFile(open, file.path, ids, rewriter) : undefined;
            if (rewritten) {
              await write({ path: file.path, size: rewritten.length }, Readable.from([rewritten]));
              return rewritten.length;
            }
            const body = await open(file.path);
            const counted = countBytes(body);
            try {
              await write(file, counted.stream);
            } catch (err) {
              body.destroy(); // release the source's file or connection before trying again
              throw err;
            }
            return counted.bytes();
          }, { side: 'destination', stats: this.retry?.stats, classify: fileRetryReason }),
        ).then((size) => {
          this.onBytes(size);
          return size;
        }),
      );
    }
    const sizes = await Promise.all(copies);
    return { artifacts: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0) };
  }
}

async function rewrittenFile(open: (path: string) => Promise<Readable>, path: string, ids: ReadonlyMap<string, string>, rewriter: IdsInFiles): Promise<Buffer | undefined> {
  const bytes = await readSmall(await open(path), rewriter.maxBytes);
  if (!bytes) return undefined;
  const text = bytes.toString('utf8');
  const changed = rewriter.rewriteIds(text, ids);
  return changed === text ? bytes : Buffer.from(changed);
}
