/**
 * neptune-exporter's parquet export (Neptune 2.x and 3.x projects), read only.
 *
 * `neptune-export:PATH`, or a bare PATH detected by its content: PATH is the folder the exporter
 * wrote into (its `data/` and `files/`, ./exports by default), or its data folder itself, whose
 * files are then in the `files` folder beside it. A data folder holds project folders named
 * `<sanitized project>-<16 hex digits>` with `*_part_<n>.parquet` files.
 */
import { dirname, join } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { isDir, listDirs, listFiles } from '../../util/fs.js';
import type { ConnectorFactory } from '../types.js';
import { DATA_DIR, FILES_DIR, PART_FILE, PROJECT_DIR } from './format.js';

/** how many project folders detection looks into before saying no */
const DETECT_LIMIT = 50;

async function isDataDir(path: string): Promise<boolean> {
  const projects = (await listDirs(path).catch(() => [])).filter((d) => PROJECT_DIR.test(d)).slice(0, DETECT_LIMIT);
  for (const project of projects) if ((await listFiles(join(path, project)).catch(() => [])).some((f) => PART_FILE.test(f))) return true;
  return false;
}

/** The data and files folders for a path, or undefined when it is no export. */
export async function exportFolders(location: string): Promise<{ data: string; files: string } | undefined> {
  if (!(await isDir(location))) return undefined;
  if (await isDataDir(join(location, DATA_DIR))) return { data: join(location, DATA_DIR), files: join(location, FILES_DIR) };
  if (await isDataDir(location)) return { data: location, files: join(dirname(location), FILES_DIR) };
  return undefined;
}

export const neptuneExportConnector: ConnectorFactory = {
  name: 'neptune-export',
  description: 'a neptune-exporter export: the folder holding data/ and files/, or its data folder (read only)',
  detect: async (location) => (await exportFolders(location)) !== undefined,
  openSource: async (target) => {
    const folders = await exportFolders(target.location);
    if (!folders) {
      throw new UsageError(
        `${target.location} is not a neptune-exporter export: expected data/<project>-<digest>/<run>_part_<n>.parquet inside it (or give the data folder itself)`,
      );
    }
    const { NeptuneExportSource } = await import('./read.js');
    return new NeptuneExportSource(folders.data, folders.files, target.location);
  },
};
