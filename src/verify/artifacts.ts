/**
 * A run's (or logged model's) artifacts compared: the same paths, sizes and SHA-256 of the
 * content, streamed. `MLmodel` files are compared after applying to the source's the same id
 * rewriting a copy does (run and logged-model ids), since a deep copy names the copied run.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { LimitFunction } from 'p-limit';
import type { ArtifactFile } from '../model/index.js';
import { isMlmodelFile, readSmall, rewriteMlmodel } from '../connectors/mlflow-common/mlmodel.js';
import type { DifferenceList } from './report.js';

export interface ArtifactSide {
  list(): AsyncIterable<ArtifactFile>;
  read(path: string): Promise<Readable>;
}

export interface Digest {
  size: number;
  sha256: string;
}

/** A stream's length and SHA-256, read through once. */
export async function digest(body: Readable): Promise<Digest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { size, sha256: hash.digest('hex') };
}

export const describeDigest = (d: Digest) => `${d.size} bytes, sha256 ${d.sha256.slice(0, 16)}`;
export const sameDigest = (x: Digest, y: Digest) => x.size === y.size && x.sha256 === y.sha256;

async function listAll(side: ArtifactSide): Promise<Map<string, ArtifactFile>> {
  const files = new Map<string, ArtifactFile>();
  for await (const file of side.list()) files.set(file.path, file);
  return files;
}

export interface ArtifactComparison {
  files: number;
  bytes: number;
}

export async function compareArtifacts(
  src: ArtifactSide,
  dst: ArtifactSide,
  /** source id → destination id, for MLmodel files */
  ids: ReadonlyMap<string, string>,
  prefix: string,
  out: DifferenceList,
  limit: LimitFunction,
): Promise<ArtifactComparison> {
  const [a, b] = await Promise.all([listAll(src), listAll(dst)]);
  let bytes = 0;
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const checks = paths.map((path) =>
    limit(async () => {
      const here = a.get(path);
      const there = b.get(path);
      const where = `${prefix}artifact:${path}`;
      if (!here || !there) {
        out.add(where, here ? `${here.size ?? '?'} bytes` : undefined, there ? `${there.size ?? '?'} bytes` : undefined);
        return;
      }
      if (isMlmodelFile(path)) {
        const [x, y] = await Promise.all([src.read(path).then((s) => readSmall(s)), dst.read(path).then((s) => readSmall(s))]);
        if (x && y) {
          bytes += x.length;
          const expected = rewriteMlmodel(x.toString('utf8'), ids);
          if (expected !== y.toString('utf8')) out.add(where, `MLmodel (${x.length} bytes, ids mapped)`, `MLmodel (${y.length} bytes) with other content`);
          return;
        }
      }
      const [x, y] = await Promise.all([src.read(path).then(digest), dst.read(path).then(digest)]);
      bytes += x.size;
      if (!sameDigest(x, y)) out.add(where, describeDigest(x), describeDigest(y));
    }),
  );
  await Promise.all(checks);
  return { files: a.size, bytes };
}
