/** Small helpers for byte streams. */
import type { Readable } from 'node:stream';

/** Reads a small stream whole; undefined (and the stream destroyed) when it is larger than `max` bytes. */
export async function readSmall(body: Readable, max: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
