/** Small file-system questions the folder-based connectors ask. */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { lstat, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, errorMessage } from './errors.js';

const statOf = (path: string) => stat(path).catch(() => undefined);

export async function exists(path: string): Promise<boolean> {
  return (await statOf(path)) !== undefined;
}

export async function isFile(path: string): Promise<boolean> {
  return (await statOf(path))?.isFile() ?? false;
}

export async function isDir(path: string): Promise<boolean> {
  return (await statOf(path))?.isDirectory() ?? false;
}

/**
 * Refuses a symbolic link: files received from elsewhere (a bundle, an export) must be their
 * own, not a way to read whatever a link points at. A missing file is left to the reader.
 */
export async function refuseLink(path: string, what: string): Promise<void> {
  const info = await lstat(path).catch(() => undefined);
  if (info?.isSymbolicLink()) throw new InvalidInputError(path, `is a symbolic link; symbolic links are not allowed in ${what} (they could point anywhere)`);
}

/** The entries of `dir`; [] when there is no such folder. */
export async function listEntries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new InvalidInputError(dir, `cannot list: ${errorMessage(err)}`);
  }
}

/** Names of the sub-folders of `dir`, sorted; [] when there is no such folder. */
export async function listDirs(dir: string): Promise<string[]> {
  return (await listEntries(dir))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** Names of the plain files in `dir`, sorted; [] when there is no such folder. */
export async function listFiles(dir: string): Promise<string[]> {
  return (await listEntries(dir))
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

/**
 * Every regular file under `dir`, as `/`-separated paths in a stable order; nothing when `dir`
 * does not exist. `links`: in a user's own store symbolic links are followed, as MLflow would; in
 * files received from elsewhere (a bundle, an export) they are refused, since they could point
 * anywhere.
 */
export async function* walkFiles(dir: string, links: 'follow' | 'refuse', prefix = ''): AsyncIterable<{ path: string; size: number }> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && prefix === '') return;
    throw new InvalidInputError(dir, `cannot list files: ${errorMessage(err)}`);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    if (links === 'refuse' && entry.isSymbolicLink()) {
      throw new InvalidInputError(full, 'is a symbolic link; symbolic links are not allowed in files received from elsewhere (they could point anywhere)');
    }
    const info = await stat(full).catch(() => undefined);
    if (info?.isDirectory()) yield* walkFiles(full, links, path);
    else if (info?.isFile()) yield { path, size: info.size };
  }
}

/**
 * Writes JSON so that a reader sees the old file or the new one, never half of one: a temporary
 * file in the same folder, then a rename (atomic on one file system).
 */
export async function writeJsonAtomic(file: string, data: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(data, null, 2) + '\n', { flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
