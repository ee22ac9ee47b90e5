/**
 * Starts real MLflow tracking servers for tests, from the pinned Python environment: SQLite
 * backend (or the database given as backendStoreUri), artifacts served by the server, a free
 * loopback port, a temporary folder. Stopped (the whole process group) by stop(), and at the
 * latest when the test process exits.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { killGroup, track } from './process-groups.js';

const execFileAsync = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/** Which pinned environment: 3 is the main one (python/requirements.txt), 2 has an MLflow 2.x. */
export type MlflowMajor = 2 | 3;
/** the environments: MLflow 3 (main), MLflow 2, the Python mlflow-migration tools, the Neptune 2.x and 3.x clients (3.x: neptune-scale writes, neptune-query reads), the Comet client, the Comet client with cometx */
export type PythonEnvName = MlflowMajor | 'migration' | 'neptune2' | 'neptune3' | 'neptune-query' | 'comet' | 'cometx';
const PINS: Record<PythonEnvName, string> = {
  3: 'requirements.txt',
  2: 'requirements-mlflow2.txt',
  migration: 'requirements-migration.txt',
  neptune2: 'requirements-neptune2.txt',
  neptune3: 'requirements-neptune3.txt',
  'neptune-query': 'requirements-neptune-query.txt',
  comet: 'requirements-comet.txt',
  cometx: 'requirements-cometx.txt',
};
const venvs = new Map<PythonEnvName, Promise<string>>();

/** A pinned Python environment (created by scripts/python-env.sh the first time). */
export function pythonEnv(major: PythonEnvName = 3): Promise<string> {
  let venv = venvs.get(major);
  if (!venv) {
    venv = execFileAsync('bash', [join(ROOT, 'scripts/python-env.sh'), PINS[major]], { maxBuffer: 10_000_000 }).then((r) => r.stdout.trim());
    venvs.set(major, venv);
  }
  return venv;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface MlflowServer {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** `basic-auth` starts MLflow's own authentication app (admin / AUTH_ADMIN_PASSWORD) */
  appName?: 'basic-auth';
  /** the MLflow major version to run (default 3) */
  mlflow?: MlflowMajor;
  /** the server's database (default: mlflow.db in its folder), e.g. postgresql://… of test/harness/postgres.ts */
  backendStoreUri?: string;
  env?: NodeJS.ProcessEnv;
}


async function waitForHealth(url: string, child: ChildProcess, log: () => string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mlflow server exited with ${child.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`mlflow server at ${url} did not become healthy in ${timeoutMs / 1000}s:\n${log()}`);
}

/** the admin password of servers started with appName 'basic-auth' */
export const AUTH_ADMIN_PASSWORD = 'trackshift-admin-5678';

function writeAuthConfig(dir: string): string {
  const file = join(dir, 'basic_auth.ini');
  writeFileSync(
    file,
    [
      '[mlflow]',
      'default_permission = READ',
      `database_uri = sqlite:///${join(dir, 'basic_auth.db')}`,
      'admin_username = admin',
      `admin_password = ${AUTH_ADMIN_PASSWORD}`,
      'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
      '',
    ].join('\n'),
  );
  return file;
}

export async function startMlflowServer(options: ServerOptions = {}): Promise<MlflowServer> {
  const venv = await pythonEnv(options.mlflow);
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-mlflow-'));
  const port = await freePort();
  const args = [
    'server',
    '--host', '127.0.0.1',
    '--port', String(port),
    '--workers', '1',
    '--backend-store-uri', options.backendStoreUri ?? `sqlite:///${join(dir, 'mlflow.db')}`,
    '--artifacts-destination', join(dir, 'artifacts'),
    '--serve-artifacts',
  ];
  const appEnv: NodeJS.ProcessEnv = {};
  if (options.appName) {
    args.push('--app-name', options.appName);
    // the auth app keeps its users in its own database, and needs a key for CSRF protection
    appEnv.MLFLOW_FLASK_SERVER_SECRET_KEY = 'trackshift-tests';
    appEnv.MLFLOW_AUTH_CONFIG_PATH = writeAuthConfig(dir);
  }
  const child = spawn(join(venv, 'bin', 'mlflow'), args, {
    cwd: dir,
    detached: true, // its own process group, so that stop() takes the workers too
    stdio: ['ignore', 'pipe', 'pipe'],
    // no job runner: MLflow 3's seven huey consumers (GenAI jobs, nothing trackshift reads or
    // writes) cost ~20 s of CPU at every start, on machines of two cores
    env: { ...process.env, ...appEnv, MLFLOW_SERVER_ENABLE_JOB_EXECUTION: 'false', ...options.env, MLFLOW_TRACKING_URI: '', PYTHONUNBUFFERED: '1' },
  });
  const tracked = track(child);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    tracked.forget();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // a new database on a server gets all of MLflow's migrations first
    await waitForHealth(url, child, tracked.output, options.backendStoreUri ? 240_000 : 90_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, port, dir, stop };
}

/** Runs a command of a pinned environment's bin/ (e.g. the mlflow-migration tools); returns its output. */
export async function runTool(envName: PythonEnvName, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const venv = await pythonEnv(envName);
  try {
    const { stdout, stderr } = await execFileAsync(join(venv, 'bin', command), args, {
      cwd: ROOT,
      env: { ...process.env, PYTHONUNBUFFERED: '1', GIT_PYTHON_REFRESH: 'quiet', ...env },
      maxBuffer: 100_000_000,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** Runs a script of the repo with the pinned Python; returns its stdout. */
export async function runPython(script: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, mlflow: MlflowMajor = 3): Promise<string> {
  const venv = await pythonEnv(mlflow);
  try {
    const { stdout } = await execFileAsync(join(venv, 'bin', 'python'), [join(ROOT, script), ...args], {
      cwd: ROOT,
      env: { ...process.env, PYTHONUNBUFFERED: '1', GIT_PYTHON_REFRESH: 'quiet', ...env },
      maxBuffer: 100_000_000,
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${script} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
}
