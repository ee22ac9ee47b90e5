/**
 * Safe relative paths. Every path that comes from data (an artifact path, a metric file named in a
 * bundle's run.json, a key turned into a file name) goes through here before it touches the disk,
 * so a crafted input can never read or write outside the folder it belongs to.
 */
import { createHash } from 'node:crypto';
import { realpath, rm } from 'node:fs/promises';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { InvalidInputError } from './errors.js';

/** Why `relPath` is not a plain relative path with `/` separators, or undefined when it is. */
export function relativePathProblem(relPath: string): string | undefined {
  if (typeof relPath !== 'string' || relPath.length === 0) return 'empty path';
  if (relPath.includes('\0')) return 'contains a NUL character';
  // a backslash is a separator on Windows: `a\..\..\x` must not become a way out
  if (relPath.includes('\\')) return 'contains a backslash';
  if (relPath.startsWith('/') || isAbsolute(relPath) || /^[a-zA-Z]:/.test(relPath)) return 'is absolute';
  for (const segment of relPath.split('/')) {
    if (segment === '..') return 'contains a ".." segment';
    if (segment === '' || segment === '.') return 'contains an empty or "." segment';
    // no file system takes a longer name; say so rather than fail later with ENAMETOOLONG
    if (Buffer.byteLength(segment) > 255) return 'has a name longer than 255 bytes';
  }
  return undefined;
}

/** A path or name as quoted in messages: JSON-quoted, cut short when long (a hostile name may be megabytes). */
export function quoted(text: string, max = 120): string {
  return JSON.stringify(text.length > max ? text.slice(0, max) : text) + (text.length > max ? `… (${text.length} characters)` : '');
}

/**
 * `root` joined with `relPath`, refusing anything that is not a plain relative path inside `root`.
 * `where` names the file (or object) the path came from, for the error message.
 */
export function safeJoin(root: string, relPath: string, where: string = root): string {
  const problem = relativePathProblem(relPath);
  if (problem) throw new InvalidInputError(where, `unsafe path ${quoted(relPath)}: ${problem}`);
  const base = resolve(root);
  const full = resolve(base, ...relPath.split('/'));
  // belt and braces: the checks above should make this impossible
  if (full !== base && !full.startsWith(base + sep)) {
    throw new InvalidInputError(where, `unsafe path ${quoted(relPath)}: resolves outside ${base}`);
  }
  return full;
}

/**
 * `root` joined with one file or folder name taken from data (a run id kept as a folder name):
 * refused unless it is a single plain segment, no `/`, `..`, NUL or absolute path.
 */
export function joinSegment(root: string, name: string, where: string = root): string {
  if (typeof name === 'string' && name.includes('/')) throw new InvalidInputError(where, `unsafe name ${quoted(name)}: contains a "/"`);
  return safeJoin(root, name, where);
}

/** Whether `path` is strictly inside `root` (not `root` itself), as written. */
function strictlyInside(root: string, path: string): boolean {
  const base = resolve(root);
  return resolve(path).startsWith(base + sep);
}

/**
 * `rm -r` that cannot reach outside `root`: `path` must be strictly inside it, also once the
 * links on the way are followed (a folder of the store that is a link elsewhere is not removed
 * through). A missing `path` is no error, as with `force`.
 */
export async function removeInside(root: string, path: string): Promise<void> {
  if (!strictlyInside(root, path)) throw new Error(`refusing to remove ${resolve(path)}: it is not inside ${resolve(root)}`);
  const [realRoot, realParent] = await Promise.all([realpath(root).catch(() => undefined), realpath(dirname(resolve(path))).catch(() => undefined)]);
  if (realRoot === undefined || realParent === undefined) return; // its folder does not exist, so neither does it
  if (realParent !== realRoot && !strictlyInside(realRoot, realParent)) {
    throw new Error(`refusing to remove ${resolve(path)}: it leads outside ${realRoot} through a symbolic link`);
  }
  await rm(path, { recursive: true, force: true });
}

const PLAIN = /^[A-Za-z0-9._-]+$/;
const MAX_STEM = 80;

/**
 * A portable file name for an arbitrary key (metric keys hold `/`, spaces, unicode, and may differ
 * only in case). The readable part is the key with unsafe characters replaced; the hash suffix keeps
 * distinct keys distinct on every file system. The real key is always stored next to the name.
 */
export function keyToFileName(key: string, extension = ''): string {
  const stem = key
    .normalize('NFC')
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\.+/, '_')
    .slice(0, MAX_STEM);
  const hash = createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 10);
  return `${stem || '_'}.${hash}${extension}`;
}

/**
 * A folder name for an id: the id itself when it is already plain (MLflow ids are digits or hex),
 * otherwise a hashed name as for keys. Deterministic, so the folder can be found from the id.
 */
export function idToFolderName(id: string): string {
  if (PLAIN.test(id) && id.length <= 100 && id !== '.' && id !== '..') return id;
  return keyToFileName(id);
}
