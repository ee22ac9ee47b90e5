/**
 * How the Neptune 2.x formats' files become the model's (the offline folders and the API alike):
 * a file attribute is the artifact `<path>.<ext>`, a file set's files are artifacts under the
 * set's path, an image series' points are files named `<key>/<index>.<ext>` — the extension from
 * the bytes, since neither the log nor the API says it.
 */
import type { SeriesFile } from '../../model/index.js';

/** The artifact path of a file attribute. */
export const fileArtifactPath = (key: string, ext: string): string => (ext ? `${key}.${ext}` : key);

const IMAGE_KINDS: Array<{ magic: number[]; ext: string; mimeType: string }> = [
  { magic: [0x89, 0x50, 0x4e, 0x47], ext: 'png', mimeType: 'image/png' },
  { magic: [0xff, 0xd8, 0xff], ext: 'jpg', mimeType: 'image/jpeg' },
  { magic: [0x47, 0x49, 0x46, 0x38], ext: 'gif', mimeType: 'image/gif' },
  { magic: [0x42, 0x4d], ext: 'bmp', mimeType: 'image/bmp' },
  { magic: [0x52, 0x49, 0x46, 0x46], ext: 'webp', mimeType: 'image/webp' },
  { magic: [0x49, 0x49, 0x2a, 0x00], ext: 'tiff', mimeType: 'image/tiff' },
];

/** The image format of `bytes` by their first bytes, or undefined when they are no image Neptune shows. */
export const imageKind = (bytes: Buffer) => IMAGE_KINDS.find((k) => k.magic.every((b, i) => bytes[i] === b));

/** The file of an image point: named `<key>/<index>.<ext>`. */
export function imageFile(key: string, index: number, bytes: Buffer, name?: string): SeriesFile {
  const kind = imageKind(bytes);
  return { path: `${key}/${index}${kind ? `.${kind.ext}` : ''}`, ...(name ? { name } : {}), size: bytes.length, ...(kind ? { mimeType: kind.mimeType } : {}) };
}
