/**
 * Where a run's values go among Neptune attribute paths: a path is an attribute or a namespace,
 * never both; and the attribute a run's artifact becomes.
 */

/** The attribute paths of a run being written. */
export class Paths {
  private readonly leaves = new Map<string, string>();
  private readonly namespaces = new Set<string>();

  /** true when `path` may hold an attribute of `kind` (it does already, or nothing is in its way) */
  free(path: string, kind: string): boolean {
    const held = this.leaves.get(path);
    if (held !== undefined) return held === kind;
    if (this.namespaces.has(path)) return false;
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) if (this.leaves.has(parts.slice(0, i).join('/'))) return false;
    return true;
  }

  claim(path: string, kind: string): boolean {
    if (!this.free(path, kind)) return false;
    this.leaves.set(path, kind);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) this.namespaces.add(parts.slice(0, i).join('/'));
    return true;
  }
}


const splitExtension = (path: string) => {
  const slash = path.lastIndexOf('/');
  const dot = path.lastIndexOf('.');
  return dot > slash + 1 && dot < path.length - 1 ? { stem: path.slice(0, dot), ext: path.slice(dot + 1) } : { stem: path, ext: '' };
};

/**
 * The file attributes of a run's artifacts, in their order: `a/b.txt` becomes `a/b` with
 * extension `txt` (what the reader names `a/b.txt` again, and what Neptune downloads as
 * `b.txt`), unless that path is taken — by another artifact (`a/b.csv`, a folder `a/b/`) or an
 * attribute of the run — and then `a/b.txt` without an extension.
 */
export function artifactAttributes(artifacts: readonly string[], paths: Paths): Array<{ attribute: string; ext: string }> {
  const stems = new Map<string, number>();
  const taken = new Set<string>();
  for (const path of artifacts) {
    const { stem } = splitExtension(path);
    stems.set(stem, (stems.get(stem) ?? 0) + 1);
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) taken.add(parts.slice(0, i).join('/'));
  }
  return artifacts.map((path) => {
    const { stem, ext } = splitExtension(path);
    const own = ext !== '' && stems.get(stem) === 1 && !taken.has(stem) && paths.free(stem, 'file');
    return own ? { attribute: stem, ext } : { attribute: path, ext: '' };
  });
}
