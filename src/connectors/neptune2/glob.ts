/**
 * The files a Neptune file set names: its absolute globs expanded as the client does at sync
 * (Python's `glob(recursive=True)`, then folders walked), named relative to their common root
 * (neptune/internal/backends/hosted_file_operations.py `get_unique_upload_entries`).
 * Node 20 has no fs.glob; Python's rules (`*`, `?`, `[…]`, `**`, hidden names not matched by
 * wildcards) are few enough to follow here.
 */
import { readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';

const MAGIC = /[*?[]/;

function segmentRegex(pattern: string): RegExp {
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) out += '\\[';
      else {
        let body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = '^' + body.slice(1);
        out += `[${body}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

const entries = async (dir: string) => readdir(dir, { withFileTypes: true }).catch(() => []);

async function expand(base: string, segments: string[]): Promise<string[]> {
  if (segments.length === 0) return [base];
  const [head, ...rest] = segments as [string, ...string[]];
  if (!MAGIC.test(head)) {
    const next = join(base, head);
    return rest.length === 0 ? ((await stat(next).catch(() => undefined)) ? [next] : []) : expand(next, rest);
  }
  const found: string[] = [];
  if (head === '**') {
    found.push(...(await expand(base, rest)));
    for (const e of await entries(base)) if (e.isDirectory() && !e.name.startsWith('.')) found.push(...(await expand(join(base, e.name), segments)));
    return found;
  }
  const regex = segmentRegex(head);
  for (const e of await entries(base)) {
    if (e.name.startsWith('.') && !head.startsWith('.')) continue;
    if (regex.test(e.name)) found.push(...(await expand(join(base, e.name), rest)));
  }
  return found;
}

async function filesUnder(path: string): Promise<string[]> {
  const info = await stat(path).catch(() => undefined);
  if (!info) return [];
  if (!info.isDirectory()) return [path];
  const out: string[] = [];
  for (const e of await entries(path)) out.push(...(await filesUnder(join(path, e.name))));
  return out;
}

/** Every file the globs name, by its name in the file set (relative to their common root, `/`-separated). */
export async function fileSetFiles(globs: string[]): Promise<Map<string, string>> {
  const matched = new Set<string>();
  for (const pattern of globs) {
    const [root, ...segments] = pattern.split(sep);
    for (const path of await expand(root === '' ? sep : root!, segments.filter((s) => s !== ''))) matched.add(path);
  }
  const paths = [...matched];
  const files = new Map<string, string>();
  if (paths.length === 0) return files;
  let common = paths.reduce((a, b) => {
    const x = a.split(sep);
    const y = b.split(sep);
    let i = 0;
    while (i < x.length && i < y.length && x[i] === y[i]) i++;
    return x.slice(0, i).join(sep) || sep;
  });
  if ((await stat(common).catch(() => undefined))?.isFile()) common = dirname(common);
  for (const path of paths) {
    const name = relative(common, path).split(sep).join('/');
    for (const file of await filesUnder(path)) {
      const inner = relative(path, file).split(sep).join('/');
      files.set(inner ? (name ? `${name}/${inner}` : inner) : name, file);
    }
  }
  return files;
}
