/**
 * What the Comet tests share: a fixture script run with a pinned Python environment (comet_ml,
 * cometx), and the git repository with an uncommitted change the client logs git metadata and a
 * patch from.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConfigEntry } from '../../src/model/index.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');

/**
 * `script` (a path from the repository root) run with the Python of `venv`, in `cwd` with `env`;
 * the last line it prints (the client echoes what the script prints: its JSON is the last line).
 */
export async function fixtureOutput(venv: string, script: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), [join(ROOT, script), ...args], { cwd, maxBuffer: 200_000_000, env });
  return stdout.trim().split('\n').at(-1)!;
}

/** What test/fixtures/comet_offline.py prints: what it logged (NaN and ±Infinity as strings). */
export interface OfflineLogged {
  key: string;
  workspace: string;
  project: string;
  name: string;
  tags: string[];
  params: Record<string, unknown>;
  loss: Array<{ step: number; epoch: number; value: number | string }>;
  texts: Array<{ step: number; value: string }>;
  histograms: Array<{ step: number; values: number[] }>;
}

/** A git repository at `dir` with one commit and an uncommitted change to it. */
export async function gitRepoWithChange(dir: string): Promise<void> {
  mkdirSync(dir);
  const git = (...args: string[]) => execFileAsync('git', ['-c', 'user.name=fixture', '-c', 'user.email=fixture@example.com', ...args], { cwd: dir });
  await git('init', '-q');
  writeFileSync(join(dir, 'train.txt'), 'one\n');
  await git('add', 'train.txt');
  await git('commit', '-q', '-m', 'first');
  writeFileSync(join(dir, 'train.txt'), 'one\ntwo\n');
}

/** Everything `items` gives, in order. */
export async function list<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** The points of every page, as one list. */
export const collect = async <T>(pages: AsyncIterable<T[]>): Promise<T[]> => (await list(pages)).flat() as T[];

/** The value of the config entry whose path, joined by `/`, is `path`. */
export const configAt = (entries: ConfigEntry[] | undefined, path: string): ConfigEntry['value'] | undefined => entries?.find((e) => e.path.join('/') === path)?.value;
