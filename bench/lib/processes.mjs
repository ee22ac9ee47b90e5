/**
 * What the benchmark scripts share for the processes they start: every child is started
 * detached (a process group of its own) and its group is killed at the end, on error and on
 * Ctrl-C; the temporary folders go with them unless the script keeps them (--keep). Plus the
 * small helpers every script uses: log lines, sleeping, numbers for tables, a free port, an
 * untimed command.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** the repository: the default working folder of the commands run */
export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

// every mlflow a benchmark starts inherits this: MLflow 3's telemetry would call a host off loopback
process.env.MLFLOW_DISABLE_TELEMETRY ??= 'true';
process.env.DO_NOT_TRACK ??= 'true';

/** process group ids (every child is started detached, as a group leader) */
export const groups = new Set();
const tempDirs = [];
let tempPrefix = 'trackshift-bench-';

export const killGroup = (pgid, signal) => {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
};

/**
 * Stops every group started at exit (SIGKILL) and on SIGINT/SIGTERM/SIGHUP (SIGTERM, then exit
 * 130 after 3 s), and removes the temporary folders at exit unless `keep`. Call once, at start.
 * `prefix` starts the names of the temporary folders; `stopping` says what a signal stops.
 */
export function keepProcesses({ keep = false, prefix = 'trackshift-bench-', stopping = 'the servers and commands started' } = {}) {
  tempPrefix = prefix;
  process.on('exit', () => {
    for (const pgid of groups) killGroup(pgid, 'SIGKILL');
    if (!keep) for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping ${stopping}\n`);
      for (const pgid of groups) killGroup(pgid, 'SIGTERM');
      setTimeout(() => process.exit(130), 3000).unref();
    });
  }
}

/** a fresh temporary folder, removed at exit unless kept */
export const temp = (prefix) => {
  const d = mkdtempSync(join(tmpdir(), `${tempPrefix}${prefix}-`));
  tempDirs.push(d);
  return d;
};
export const log = (line) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const mb = (bytes) => bytes / 1024 / 1024;
export const fmt = (n, digits = 0) => (n === undefined || n === null || Number.isNaN(n) ? '–' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/** Runs a command to its end (untimed work); rejects with its output on failure. */
export function run(command, argv, { env = {}, cwd = ROOT, logFile } = {}) {
  return new Promise((resolve, reject) => {
    const out = logFile ? openSync(logFile, 'a') : 'pipe';
    const child = spawn(command, argv, { cwd, detached: true, stdio: ['ignore', 'pipe', out], env: { ...process.env, ...env } });
    groups.add(child.pid);
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.on('error', reject);
    child.on('close', (code) => {
      groups.delete(child.pid);
      if (logFile) closeSync(out);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${basename(command)} ${argv.join(' ')} exited with ${code}${logFile ? `; see ${logFile}:\n${tail(logFile)}` : ''}\n${stdout.slice(-2000)}`));
    });
  });
}

/** the end of a file ('' when it cannot be read) */
export const tail = (file, chars = 3000) => {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
};
