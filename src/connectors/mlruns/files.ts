/** Reading the plain files of an mlruns folder: key-value folders (params, tags). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tags } from '../../model/index.js';
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
