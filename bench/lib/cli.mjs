/**
 * What the benchmark scripts that time trackshift share around it: their flags, the copy of the
 * built CLI they run, and which build that was.
 */
import { cpSync, existsSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './processes.mjs';

export const BUILT_CLI = join(ROOT, 'dist', 'cli', 'main.js');

/**
 * `--name value`, `--name=value`, and the names in booleanFlags alone (true). Every other flag
 * takes the next word as its value, even one starting with -- (--trackshift-args "--workers 8").
 */
export function parseFlags(booleanFlags) {
  const args = {};
  for (let i = 2; i < process.argv.length; i++) {
    const flag = process.argv[i];
    if (!flag.startsWith('--')) throw new Error(`unexpected argument ${flag}`);
    const [name, inline] = flag.slice(2).split(/=(.*)/s);
    if (inline !== undefined) args[name] = inline;
    else if (booleanFlags.has(name)) args[name] = true;
    else if (i + 1 < process.argv.length) args[name] = process.argv[++i];
    else throw new Error(`--${name} needs a value`);
  }
  return args;
}

/**
 * A copy of dist/ taken now, removed at exit (others rebuild dist/ while a benchmark runs); the
 * path of its CLI.
 */
export function snapshotCli() {
  if (!existsSync(BUILT_CLI)) throw new Error(`${BUILT_CLI} is missing: run npm run build first`);
  // dist/cli/main.js reads ../../package.json, and its imports resolve from ROOT/node_modules
  const snapshot = join(ROOT, 'bench', 'results', `.dist-${process.pid}`);
  cpSync(join(ROOT, 'dist'), join(snapshot, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(snapshot, 'package.json'));
  process.on('exit', () => rmSync(snapshot, { recursive: true, force: true }));
  return join(snapshot, 'dist', 'cli', 'main.js');
}

/** the commit, whether src/ differs from it, and when dist/ was built */
export function buildInfo() {
  const git = (a) => {
    try {
      return execFileSync('git', a, { cwd: ROOT, encoding: 'utf8' }).trim();
    } catch {
      return undefined;
    }
  };
  return { commit: git(['rev-parse', '--short', 'HEAD']), srcChanged: Boolean(git(['status', '--porcelain', 'src'])), built: statSync(BUILT_CLI).mtime.toISOString() };
}
