/**
 * Typed configuration and summary entries compared by path: the type and the value must both
 * be the same (`int 1` is not `float 1`). Floats compare exactly: NaN equals NaN, -0 is not 0.
 * A string set is a set: its order does not count. Differences are named `config:a/b`,
 * `summary:loss/min`.
 */
import type { ConfigEntry, TypedValue } from '../model/index.js';
import { encodeNumber } from '../model/json.js';
import type { DifferenceList } from './report.js';

/** A typed value as the report prints it, and as it is compared. */
function valueText(v: TypedValue): string {
  switch (v.type) {
    case 'string':
      return `string ${JSON.stringify(v.value)}`;
    case 'int':
    case 'float':
      return `${v.type} ${encodeNumber(v.value)}`;
    case 'bool':
      return `bool ${v.value}`;
    case 'datetime':
      return `datetime ${v.value}${Number.isFinite(v.value) ? ` (${new Date(v.value).toISOString()})` : ''}`;
    case 'stringSet':
      return `stringSet ${JSON.stringify([...new Set(v.value)].sort())}`;
  }
}

/** The entries by path; a path given twice keeps both values (and so differs from a side that has it once). */
function byPath(entries: ConfigEntry[]): Map<string, { path: string[]; values: string[] }> {
  const out = new Map<string, { path: string[]; values: string[] }>();
  for (const entry of entries) {
    const key = JSON.stringify(entry.path);
    const found = out.get(key);
    if (found) found.values.push(valueText(entry.value));
    else out.set(key, { path: entry.path, values: [valueText(entry.value)] });
  }
  return out;
}

export function compareEntries(kind: 'config' | 'summary', a: ConfigEntry[] | undefined, b: ConfigEntry[] | undefined, prefix: string, out: DifferenceList): void {
  const here = byPath(a ?? []);
  const there = byPath(b ?? []);
  for (const key of [...new Set([...here.keys(), ...there.keys()])].sort()) {
    const x = here.get(key)?.values.sort().join(', ');
    const y = there.get(key)?.values.sort().join(', ');
    if (x !== y) out.add(`${prefix}${kind}:${(here.get(key) ?? there.get(key))!.path.join('/')}`, x, y);
  }
}
