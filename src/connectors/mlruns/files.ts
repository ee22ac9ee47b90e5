/** Reading the plain files of an mlruns folder: key-value folders and artifact trees. */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactFile, Tags } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { listEntries } from '../../util/fs.js';

/** A folder of one file per key (params, tags); `/` in keys are sub-folders. */
export async function readKeyValueFolder(dir: string): Promise<Tags> {
  const out: Tags = {};
  for (const key of (await listFilesDeep(dir, '')).sort()) {
    out[key] = await readFile(join(dir, ...key.split('/')), 'utf8');
  }
  return out;
}

/** Relative paths (with `/`) of every file under `dir`; [] when there is no such folder. */
export async function listFilesDeep(dir: string, prefix: string): Promise<string[]> {
  const entries = await listEntries(dir);
  const out: string[] = [];
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFilesDeep(join(dir, entry.name), path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/**
 * Every file under `dir`. `links`: in the user's own store symbolic links are followed, as MLflow
 * would; in files received from elsewhere (an export) they are refused.
 */
export async function* walkFiles(dir: string, prefix: string, links: 'follow' | 'refuse' = 'follow'): AsyncIterable<ArtifactFile> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new InvalidInputError(dir, `cannot list artifacts: ${errorMessage(err)}`);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    if (links === 'refuse' && entry.isSymbolicLink()) throw new InvalidInputError(full, 'is a symbolic link; symbolic links are not allowed in an export (they could point anywhere)');
    const info = await stat(full).catch(() => undefined);
    if (info?.isDirectory()) yield* walkFiles(full, path, links);
    else if (info?.isFile()) yield { path, size: info.size };
  }
}

