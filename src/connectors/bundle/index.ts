/**
 * The trackshift bundle: trackshift's own folder format (docs/bundle-format.md), the output of
 * `export` and the input of `import`. Both a Source and a Destination.
 */
import { mkdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UsageError } from '../../util/errors.js';
import type { ConnectorFactory } from '../types.js';
import { FORMAT_NAME, FORMAT_VERSION, ROOT_FILE, type RootFile } from './format.js';
import { BundleReader, readRootFile } from './read.js';
import { BundleDestination, isEmptyOrMissing } from './write.js';
import { writeJsonAtomic } from '../../util/fs.js';

export { BundleReader } from './read.js';
export { BundleDestination } from './write.js';
export { FORMAT_VERSION } from './format.js';

async function isBundle(location: string): Promise<boolean> {
  return (await stat(join(location, ROOT_FILE)).catch(() => undefined))?.isFile() ?? false;
}

/** Opens an existing bundle for reading, checking its root file (format, version) first. */
export async function openBundleSource(location: string): Promise<BundleReader> {
  if (!(await isBundle(location))) throw new UsageError(`${location} is not a trackshift bundle (no ${ROOT_FILE})`);
  await readRootFile(location);
  return new BundleReader(location, resolve(location));
}

/**
 * Opens a bundle for writing: an existing one is resumed, a missing or empty folder becomes one.
 * An older version's bundle is upgraded (its root file says the current version): every reader
 * of the current version reads the older runs it holds.
 */
export async function openBundleDestination(location: string, dryRun = false): Promise<BundleDestination> {
  if (await isBundle(location)) {
    const root = await readRootFile(location); // refuses a newer version before anything is written
    // runs written now are of this version: an older trackshift must refuse the bundle, not misread it
    if (root.version < FORMAT_VERSION && !dryRun) await writeJsonAtomic(join(location, ROOT_FILE), { ...root, version: FORMAT_VERSION });
  } else if (await isEmptyOrMissing(location)) {
    if (dryRun) return new BundleDestination(location, resolve(location)); // looked at, not made
    await mkdir(location, { recursive: true });
    const root: RootFile = { format: FORMAT_NAME, version: FORMAT_VERSION, created: new Date().toISOString(), sources: [] };
    await writeJsonAtomic(join(location, ROOT_FILE), root);
  } else {
    throw new UsageError(`${location} is not empty and not a trackshift bundle (no ${ROOT_FILE}): refusing to write a bundle into it`);
  }
  return new BundleDestination(location, resolve(location));
}

export const bundleConnector: ConnectorFactory = {
  name: 'bundle',
  description: `a trackshift bundle folder (holds ${ROOT_FILE}); export creates one`,
  importable: true,
  detect: isBundle,
  openSource: async (target) => openBundleSource(target.location),
  openDestination: async (target) => openBundleDestination(target.location, target.dryRun),
};
