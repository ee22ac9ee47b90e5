/**
 * What the benchmark scripts share for the processes they start: every child is started
 * detached (a process group of its own) and its group is killed at the end, on error and on
 * Ctrl-C; the temporary folders go with them unless the script keeps them (--keep). Plus the
 * small helpers every script uses: log lines, sleeping, numbers and tables, a free port, an
 * untimed command, a long-running server, the files of a folder.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
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

/** the temporary folders made so far (to say where they are when kept) */
export const tempFolders = () => [...tempDirs];

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

/** A table as lines: the first column left-aligned, the others right-aligned, two spaces apart. */
export function tableLines(head, cells) {
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [line(head), ...cells.map(line)];
}

export const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

/**
 * Runs a command to its end (untimed work); rejects with its output on failure. `user`
 * ({ uid, gid }) runs it as another system user.
 */
export function run(command, argv, { env = {}, cwd = ROOT, logFile, user } = {}) {
  return new Promise((resolve, reject) => {
    const out = logFile ? openSync(logFile, 'a') : 'pipe';
    const child = spawn(command, argv, { cwd, detached: true, stdio: ['ignore', 'pipe', out], env: { ...process.env, ...env }, ...user });
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

/**
 * Starts a long-running server (its own process group, output appended to logFile, `user` as in
 * run()). `exited()`: whether it has; `stop(signal)`: signals its group and waits for the exit
 * (SIGKILL after `graceMs`), then kills what is left of the group.
 */
export function startDaemon(command, argv, { env = {}, cwd = ROOT, logFile, user, graceMs = 5000 }) {
  const out = openSync(logFile, 'a');
  const child = spawn(command, argv, { cwd, detached: true, stdio: ['ignore', out, out], env: { ...process.env, ...env }, ...user });
  closeSync(out);
  groups.add(child.pid);
  const exit = new Promise((r) => child.once('exit', r));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const stop = async (signal = 'SIGTERM') => {
    if (!exited()) {
      killGroup(child.pid, signal);
      const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    }
    killGroup(child.pid, 'SIGKILL'); // children left behind
    groups.delete(child.pid);
  };
  return { pid: child.pid, exited, exitCode: () => child.exitCode ?? child.signalCode, stop };
}

/** the end of a file ('' when it cannot be read) */
export const tail = (file, chars = 3000) => {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
};

/** every file below a folder (none when it does not exist) */
export function walkFiles(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walkFiles(p, out);
    else out.push(p);
  }
  return out;
}
export const dirBytes = (dir) => walkFiles(dir).reduce((s, f) => s + statSync(f).size, 0);
