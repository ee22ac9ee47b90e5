/** Small file-system questions the folder-based connectors ask. */
import type { Dirent } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
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
