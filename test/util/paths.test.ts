import { describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { idToFolderName, joinSegment, keyToFileName, relativePathProblem, removeInside, safeJoin } from '../../src/util/paths.js';
import { InvalidInputError } from '../../src/util/errors.js';

describe('safeJoin', () => {
  const root = '/data/bundle';

  it('joins plain relative paths, unicode and spaces included', () => {
    expect(safeJoin(root, 'a/b/c.txt')).toBe(join(resolve(root), 'a', 'b', 'c.txt'));
    expect(safeJoin(root, 'résumé 数据.txt')).toBe(join(resolve(root), 'résumé 数据.txt'));
    expect(safeJoin(root, '..hidden/x..y')).toBe(join(resolve(root), '..hidden', 'x..y'));
  });

  it.each([
    ['../x', '".." segment'],
    ['a/../../x', '".." segment'],
    ['a/..', '".." segment'],
    ['/etc/passwd', 'absolute'],
    ['C:/Windows', 'absolute'],
    ['c:x', 'absolute'],
    ['a\\..\\..\\x', 'backslash'],
    ['a\0b', 'NUL'],
    ['', 'empty'],
    ['a//b', 'empty or "."'],
    ['./a', 'empty or "."'],
    ['a/', 'empty or "."'],
  ])('refuses %j (%s) with an error naming the file and the path', (bad, why) => {
    let caught: unknown;
    try {
      safeJoin(root, bad, 'run.json');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidInputError);
    const message = (caught as Error).message;
    expect(message).toContain('run.json');
    expect(message).toContain(JSON.stringify(bad));
    expect(message).toContain(why);
  });

  it('reports no problem for good paths', () => {
    expect(relativePathProblem('x/y')).toBeUndefined();
  });
});

describe('keyToFileName', () => {
  it('makes portable, distinct names for keys with slashes, unicode and case differences', () => {
    const names = ['train/loss', 'train_loss', 'Train/Loss', 'précision é', '../../etc', '.hidden', '数据', ''].map((k) => keyToFileName(k, '.jsonl'));
    expect(new Set(names.map((n) => n.toLowerCase())).size).toBe(names.length);
    for (const name of names) {
      expect(name).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]*\.[0-9a-f]{10}\.jsonl$/);
      expect(relativePathProblem(name)).toBeUndefined();
    }
  });

  it('is deterministic and bounded in length', () => {
    expect(keyToFileName('a/b')).toBe(keyToFileName('a/b'));
    expect(keyToFileName('x'.repeat(1000)).length).toBeLessThan(100);
  });
});

describe('idToFolderName', () => {
  it('keeps plain ids and hashes the rest', () => {
    expect(idToFolderName('0')).toBe('0');
    expect(idToFolderName('4f1c9a2b')).toBe('4f1c9a2b');
    expect(idToFolderName('..')).not.toBe('..');
    expect(idToFolderName('a/b')).not.toContain('/');
  });
});

describe('joinSegment', () => {
  it('joins one plain name and refuses anything that is not one', () => {
    expect(joinSegment('/store/0', 'a1b2')).toBe(join(resolve('/store/0'), 'a1b2'));
    for (const bad of ['..', '.', 'a/b', '../../victim', '/tmp/x', 'nul\0id', 'a\\b', '']) {
      expect(() => joinSegment('/store/0', bad, 'run.json'), bad).toThrow(/run\.json/);
    }
  });
});

describe('removeInside', () => {
  async function area() {
    const root = await mkdtemp(join(tmpdir(), 'trackshift-rm-'));
    await mkdir(join(root, 'store', 'exp', 'run'), { recursive: true });
    await writeFile(join(root, 'store', 'exp', 'run', 'f'), 'x');
    await mkdir(join(root, 'victim'));
    await writeFile(join(root, 'victim', 'keep.txt'), 'keep');
    return root;
  }

  it('removes a folder inside the root', async () => {
    const root = await area();
    await removeInside(join(root, 'store'), join(root, 'store', 'exp', 'run'));
    expect(await readdir(join(root, 'store', 'exp'))).toEqual([]);
    await removeInside(join(root, 'store'), join(root, 'store', 'exp', 'missing')); // nothing there: no error
    await removeInside(join(root, 'no-store'), join(root, 'no-store', 'x')); // no root either
  });

  it.each([
    ['the root itself', (root: string) => join(root, 'store')],
    ['a sibling', (root: string) => join(root, 'victim')],
    ['a path that climbs out', (root: string) => join(root, 'store', 'exp', '..', '..', 'victim')],
  ])('refuses %s', async (_what, target) => {
    const root = await area();
    await expect(removeInside(join(root, 'store'), target(root))).rejects.toThrow(/refusing to remove/);
    expect(await readdir(join(root, 'victim'))).toEqual(['keep.txt']);
  });

  it('refuses to remove through a folder of the root that is a link elsewhere', async () => {
    const root = await area();
    await symlink(join(root, 'victim'), join(root, 'store', 'linked'));
    await writeFile(join(root, 'victim', 'inner'), 'x');
    await expect(removeInside(join(root, 'store'), join(root, 'store', 'linked', 'inner'))).rejects.toThrow(/symbolic link/);
    expect((await readdir(join(root, 'victim'))).sort()).toEqual(['inner', 'keep.txt']);
    // the link itself is inside: removing it removes the link, not what it points at
    await removeInside(join(root, 'store'), join(root, 'store', 'linked'));
    expect((await readdir(join(root, 'victim'))).sort()).toEqual(['inner', 'keep.txt']);
  });
});
