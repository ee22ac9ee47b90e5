/**
 * A file set's globs name the same files, with the same names in the set, as the neptune
 * client's own expansion at sync (`get_unique_upload_entries`), run on the same tree.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fileSetFiles } from '../../src/connectors/neptune2/glob.js';
import { runTool } from '../harness/mlflow-server.js';

const CLIENT_EXPANSION = `
import json, sys
from neptune.internal.backends.hosted_file_operations import get_unique_upload_entries
cases = json.loads(sys.argv[1])
print("RESULT" + json.dumps([[[e.target_path, e.source] for e in get_unique_upload_entries(globs)] for globs in cases]))
`;

let tmp: string;
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('expands globs as the neptune client does', async () => {
  tmp = mkdtempSync(join(tmpdir(), 'trackshift-neptune2-glob-'));
  const tree = ['a/x.txt', 'a/y.txt', 'a/.hidden.txt', 'a/b/z.txt', 'a/b/c/w.md', 'a/[odd].txt', 'd/e.csv', 'd/f/g.csv'];
  for (const file of tree) {
    mkdirSync(join(tmp, file, '..'), { recursive: true });
    writeFileSync(join(tmp, file), file);
  }
  const cases = [['a/*.txt'], ['a/**/*.txt'], ['a/b'], ['a/?.txt', 'd/*.csv'], ['d'], ['a/[xz].txt'], ['a/[!x].txt'], ['a/b/c/w.md'], ['nothing/*'], ['a/**']];
  const absolute = cases.map((globs) => globs.map((g) => join(tmp, g)));
  const output = await runTool('neptune2', 'python', ['-c', CLIENT_EXPANSION, JSON.stringify(absolute)]);
  const results = JSON.parse(output.slice(output.indexOf('RESULT') + 6).split('\n')[0]!) as Array<Array<[string, string]>>;
  for (const [i, globs] of cases.entries()) {
    const expected = results[i]!;
    const byName = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);
    const ours = [...(await fileSetFiles(absolute[i]!))].sort(byName);
    // the client names the files of a folder given alone `./name` (the server's name is `name`),
    // and may list a file twice (`a/**` names it and its folders): the same name, the same file
    const names = new Map(expected.map(([name, source]) => [name.replace(/^\.\//, ''), source]));
    expect(ours, globs.join(' ')).toEqual([...names].sort(byName));
  }
}, 120_000);
