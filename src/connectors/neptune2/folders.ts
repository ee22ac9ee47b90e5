/**
 * Where the Neptune 2.x client's runs are on disk (neptune/cli/utils.py `detect_offline_dir`,
 * `detect_async_dir`; metadata_containers/structure_version.py):
 *
 *   .neptune/offline/run__<uuid>__<pid>__<key>/data-1.log   (≥ 1.9; offline: <uuid> is random)
 *   .neptune/async/run__<uuid>__<pid>__<key>/…              (unsent operations of a server run)
 *   .neptune/{offline,async}/run__<uuid>/exec-<…>/…         (older: one folder per process)
 *   .neptune/async/<uuid>/exec-<…>/…                        (oldest)
 *
 * One run may have several execution folders (several processes logged to it): they are read
 * one after the other, oldest first. neptune-scale (3.x) folders in the same `.neptune` are not
 * this connector's and are passed over.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isDir, listDirs } from '../../util/fs.js';
import { metadataSchema } from './format.js';
import { logFilesOf } from './lines.js';

export interface ExecutionDir {
  dir: string;
  /** from metadata.json, ms; undefined for folders older than it */
  createdAt?: number;
  mode: 'offline' | 'async';
}

export interface Container {
  type: string;
  id: string;
  dirs: ExecutionDir[];
}

const MODES = ['offline', 'async'] as const;

/** The type and id a container folder's name gives, or undefined when it is no such folder. */
export function parseContainerName(name: string): { type: string; id: string } | undefined {
  const parts = name.split('__');
  if (parts.length === 1) return /^[0-9a-f-]{32,36}$/i.test(name) ? { type: 'run', id: name } : undefined;
  if (parts.length === 2 || parts.length === 4 || parts.length === 5) return parts[0] && parts[1] ? { type: parts[0], id: parts[1] } : undefined;
  return undefined;
}

const hasLog = async (dir: string): Promise<boolean> => (await logFilesOf(dir).catch(() => [])).length > 0;

async function createdAt(dir: string): Promise<number | undefined> {
  try {
    const meta = metadataSchema.safeParse(JSON.parse(await readFile(join(dir, 'metadata.json'), 'utf8')));
    const time = meta.success && meta.data.createdAt ? Date.parse(meta.data.createdAt) : Number.NaN;
    return Number.isFinite(time) ? time : undefined;
  } catch {
    return undefined;
  }
}

/** The execution folders of a container folder: itself, or its `exec-…` sub-folders. */
async function executionDirs(dir: string, mode: ExecutionDir['mode']): Promise<ExecutionDir[]> {
  const dirs = (await hasLog(dir)) ? [dir] : [];
  if (dirs.length === 0) for (const child of await listDirs(dir)) if (await hasLog(join(dir, child))) dirs.push(join(dir, child));
  const found = await Promise.all(dirs.map(async (d) => ({ dir: d, mode, createdAt: await createdAt(d) })));
  return found.sort((a, b) => (a.createdAt ?? 0) - (b.createdAt ?? 0) || (a.dir < b.dir ? -1 : a.dir > b.dir ? 1 : 0)).map((e) => (e.createdAt === undefined ? { dir: e.dir, mode } : e));
}

/** Every container under a `.neptune` folder (both modes), execution folders of one container together. */
export async function containersIn(root: string): Promise<Container[]> {
  const byId = new Map<string, Container>();
  for (const mode of MODES) {
    for (const name of await listDirs(join(root, mode))) {
      const parsed = parseContainerName(name);
      if (!parsed) continue;
      const dirs = await executionDirs(join(root, mode, name), mode);
      if (dirs.length === 0) continue;
      const key = `${parsed.type}/${parsed.id}`;
      const known = byId.get(key);
      if (known) known.dirs.push(...dirs);
      else byId.set(key, { ...parsed, dirs });
    }
  }
  return [...byId.values()];
}

/** The container a single run folder is (`run__…` given directly), or undefined. */
export async function singleContainer(dir: string): Promise<Container | undefined> {
  const parsed = parseContainerName(basename(dir));
  if (!parsed) return undefined;
  const mode = basename(join(dir, '..')) === 'async' ? 'async' : 'offline';
  const dirs = await executionDirs(dir, mode);
  return dirs.length > 0 ? { ...parsed, dirs } : undefined;
}

/** The `.neptune` folder a path is or holds, when it has at least one 2.x container. */
export async function dataRoot(path: string): Promise<string | undefined> {
  if (!(await isDir(path))) return undefined;
  for (const candidate of [path, join(path, '.neptune')]) if ((await containersIn(candidate)).length > 0) return candidate;
  return undefined;
}
