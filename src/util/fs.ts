/** Small file-system questions the folder-based connectors ask. */
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

/** Names of the sub-folders of `dir`, sorted; [] when there is no such folder. */
export async function listDirs(dir: string): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new InvalidInputError(dir, `cannot list: ${errorMessage(err)}`);
  }
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}
