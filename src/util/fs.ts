/** Small file-system questions the folder-based connectors ask. */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
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
