/** Walking the plain files of a bundle (artifacts), refusing what could point outside it. */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArtifactFile } from '../../model/index.js';
import { InvalidInputError, errorMessage } from '../../util/errors.js';

/** Every regular file under `dir`, as `/`-separated paths, in a stable order. */
export async function* walkFiles(dir: string, prefix: string): AsyncIterable<ArtifactFile> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && prefix === '') return;
    throw new InvalidInputError(dir, `cannot list artifacts: ${errorMessage(err)}`);
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    const full = join(dir, entry.name);
    if (entry.isSymbolicLink()) throw new InvalidInputError(full, 'symbolic links are not allowed in a bundle (they could point anywhere)');
    if (entry.isDirectory()) yield* walkFiles(full, path);
    else if (entry.isFile()) yield { path, size: (await stat(full)).size };
  }
}

