/**
 * What the PostgreSQL and MariaDB harnesses share: the servers are installed by
 * scripts/db-servers.sh when absent (Debian's packages), run as their own system users when
 * the tests run as root (initdb and postgres refuse root), in a temporary folder, on a free
 * loopback port; stopped (their process group) by stop(), and at the latest when the test
 * process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { killGroup, track } from './process-groups.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** A database server started for a test. */
export interface DatabaseServer {
  host: string;
  port: number;
  /** an administrator of the server (it may create databases) */
  user: string;
  password: string;
  dir: string;
  /** a database's URI with the admin's credentials, as MLflow takes it (`driver` as in postgresql+psycopg2) */
  uri(database: string, driver?: string): string;
  /** creates an empty database */
  createDatabase(name: string): Promise<void>;
  /** runs statements on one database as the admin */
  exec(database: string, sql: string): Promise<void>;
  stop(): Promise<void>;
}

/** a password with characters a URI must encode, so that both drivers' decoding is tested */
export const DB_PASSWORD = 'Tr4ck:s3cret@pw';

let installed: Promise<void> | undefined;
/** Installs the servers when missing (once per test process). */
export function ensureDbServers(): Promise<void> {
  installed ??= execFileAsync('bash', [join(ROOT, 'scripts/db-servers.sh')], { maxBuffer: 50_000_000 }).then(
    () => undefined,
    (err: { stderr?: string; message: string }) => {
      throw new Error(`scripts/db-servers.sh failed: ${err.message}\n${err.stderr ?? ''}`);
    },
  );
  return installed;
}

/** uid and gid of a system user from /etc/passwd, or undefined when not running as root. */
export function systemUser(name: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no system user ${name}: its server package creates it (scripts/db-servers.sh)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export function chownTo(path: string, user: { uid: number; gid: number } | undefined): void {
  if (user) chownSync(path, user.uid, user.gid);
}

/** Runs a command to its end as the given user; its output in the error when it fails. */
export async function runAs(user: { uid: number; gid: number } | undefined, command: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(command, args, { cwd, maxBuffer: 50_000_000, ...(user ?? {}) });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}


export interface Daemon {
  child: ChildProcess;
  output(): string;
  /** signals the process group, waits for the exit (SIGKILL after 15 s) */
  stop(signal: NodeJS.Signals): Promise<void>;
}

/** Starts a long-running server as the given user, in its own process group. */
export function startDaemon(user: { uid: number; gid: number } | undefined, command: string, args: string[], cwd: string): Daemon {
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], ...(user ?? {}) });
  const tracked = track(child);
  return {
    child,
    output: tracked.output,
    stop: async (signal) => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        killGroup(child, signal);
        const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      tracked.forget();
    },
  };
}

/** Tries `attempt` until it resolves, failing early when the daemon exits. */
export async function waitUntilReady(daemon: Daemon, what: string, attempt: () => Promise<void>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) throw new Error(`${what} exited (${daemon.child.exitCode ?? daemon.child.signalCode}):\n${daemon.output()}`);
    try {
      await attempt();
      return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${what} did not accept connections in ${timeoutMs / 1000}s (${(last as Error)?.message}):\n${daemon.output()}`);
}
