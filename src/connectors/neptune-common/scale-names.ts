/**
 * The names neptune-scale 0.30 gives what it writes, computed as its own code does:
 * the run folder `<project>_<run id>_<ns>` (api/run.py `_resolve_run_storage_directory_path`) and
 * the remote path of a logged file, `file_ref.path` (sync/files.py `generate_destination`).
 */
import { blake2b } from '@noble/hashes/blake2.js';

/** Lengths in code points, as Python slices strings. */
const head = (text: string, max: number) => Array.from(text).slice(0, Math.max(0, max)).join('');
const length = (text: string) => Array.from(text).length;

/** `_sanitize_path_component`: characters file systems refuse → `_`, runs of `_` collapsed, 64 code points. */
export const folderComponent = (component: string): string =>
  head(
    component.replace(/[<>:" /\\|?*\x00-\x1F]/g, '_').replace(/_{2,}/g, '_'),
    64,
  );

/** The folder the client gives a run: `<project>_<run id>_<ns>`. */
export const runFolderName = (project: string, runId: string, ns: bigint): string => `${folderComponent(project)}_${folderComponent(runId)}_${ns}`;

/** `_digest_suffix`: `-` and the 8-byte BLAKE2b of the text, in hex. */
const digestSuffix = (text: string) => `-${Buffer.from(blake2b(Buffer.from(text, 'utf8'), { dkLen: 8 })).toString('hex')}`;

/** `_sanitize_and_trim`: `/` and `.` → `_`, cut to `max` with the digest when cut (or always, `forceSuffix`). */
function sanitizeAndTrim(text: string, max: number, forceSuffix: boolean): string {
  const sanitized = text.replace(/[/.]/g, '_');
  const suffix = forceSuffix || length(sanitized) > max ? digestSuffix(text) : '';
  return head(sanitized, max - suffix.length) + suffix;
}

const MAX_RUN_ID_COMPONENT_LENGTH = 300;
const MAX_ATTRIBUTE_PATH_COMPONENT_LENGTH = 280;
const MAX_SERIES_STEP_PATH_COMPONENT_LENGTH = 19;
const MAX_FILENAME_PATH_COMPONENT_LENGTH = 180;
const MAX_FILENAME_EXTENSION_LENGTH = 18;
/** parameters.py `MAX_FILE_DESTINATION_LENGTH` */
export const MAX_FILE_DESTINATION_LENGTH = 800;

/** The first part of every file_ref path of a run: its id, sanitized, with its digest. */
export const runComponent = (runId: string): string => sanitizeAndTrim(runId, MAX_RUN_ID_COMPONENT_LENGTH, true);

/** Python's `pathlib.PurePath.suffix`: the last `.ext` of a name that is not only an extension. */
function suffixOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 && dot < name.length - 1 ? name.slice(dot) : '';
}

/** Python's `f"{step:019.6f}"` for the steps the client takes (0 ≤ step < 10^12). */
const stepText = (step: number) => step.toFixed(6).padStart(19, '0');

/** `generate_destination(run_id, attribute, filename, step)`: `<run>/<attribute>/<step|none>/<file>`. */
export function fileDestination(runId: string, attribute: string, fileName: string, step: number | undefined): string {
  const stepPart = step === undefined ? 'none' : sanitizeAndTrim(stepText(step), MAX_SERIES_STEP_PATH_COMPONENT_LENGTH, false);
  const extension = suffixOf(fileName);
  const stem = sanitizeAndTrim(extension ? fileName.slice(0, -extension.length) : fileName, MAX_FILENAME_PATH_COMPONENT_LENGTH, false);
  const file = stem + head(extension, MAX_FILENAME_EXTENSION_LENGTH);
  return `${runComponent(runId)}/${sanitizeAndTrim(attribute, MAX_ATTRIBUTE_PATH_COMPONENT_LENGTH, true)}/${stepPart}/${file}`;
}

/** The client's fallback MIME type (files.py `DEFAULT_MIME_TYPE`) for a file whose type is unknown. */
const DEFAULT_MIME_TYPE = 'application/octet-stream';

/** What Python's `mimetypes` (with the client's EXTRA_TYPES) says of the common extensions; the rest is the default. */
const MIME_TYPES: Record<string, string> = {
  '.txt': 'text/plain', '.log': 'text/plain', '.csv': 'text/csv', '.html': 'text/html', '.htm': 'text/html', '.json': 'application/json',
  '.yaml': 'application/yaml', '.yml': 'application/yaml', '.md': 'text/markdown', '.py': 'text/x-python', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.svg': 'image/svg+xml', '.webp': 'image/webp', '.pdf': 'application/pdf',
  '.zip': 'application/zip', '.gz': 'application/gzip', '.ipynb': 'application/x-ipynb+json', '.mp4': 'video/mp4', '.wav': 'audio/x-wav',
};

/** The MIME type the client would give a file of that name (`guess_mime_type_from_file`, by its extension). */
export const mimeTypeOf = (name: string): string => MIME_TYPES[suffixOf(name).toLowerCase()] ?? DEFAULT_MIME_TYPE;
