/**
 * Starts a real PostgreSQL server for tests: initdb in a temporary folder (as the `postgres`
 * user when running as root), password authentication on 127.0.0.1 for the admin
 * `trackshift` (DB_PASSWORD), a free loopback port, its socket in the same folder. Installed
 * by scripts/db-servers.sh when absent.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chownTo, DB_PASSWORD, ensureDbServers, runAs, startDaemon, systemUser, waitUntilReady, type DatabaseServer } from './db-servers.js';
import { freePort } from './mlflow-server.js';

/** the newest installed server's bin/ (Debian keeps them in /usr/lib/postgresql/N/bin) */
function postgresBin(): string {
  const versions = existsSync('/usr/lib/postgresql')
    ? readdirSync('/usr/lib/postgresql')
        .filter((v) => existsSync(join('/usr/lib/postgresql', v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0]) return join('/usr/lib/postgresql', versions[0], 'bin');
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'initdb'))) return dir;
  throw new Error('PostgreSQL is not installed (initdb not found): scripts/db-servers.sh installs it');
}

export async function startPostgres(): Promise<DatabaseServer> {
  await ensureDbServers();
  const bin = postgresBin();
  const user = systemUser('postgres');
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-pg-'));
  chownTo(dir, user);
  const pwfile = join(dir, 'password');
  writeFileSync(pwfile, `${DB_PASSWORD}\n`);
  chownTo(pwfile, user);
  const admin = 'trackshift';
  await runAs(user, join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', admin, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], dir);
  const port = await freePort();
  const daemon = startDaemon(
    user,
    join(bin, 'postgres'),
    // a throwaway server: durability traded for speed
    ['-D', join(dir, 'data'), '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    dir,
  );
  const connect = async <T>(database: string, use: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: admin, password: DB_PASSWORD, database });
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };
  const stop = async () => {
    await daemon.stop('SIGINT'); // fast shutdown: clients are disconnected
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(daemon, 'postgres', () => connect('postgres', async () => undefined));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    host: '127.0.0.1',
    port,
    user: admin,
    password: DB_PASSWORD,
    dir,
    uri: (database, driver) => `postgresql${driver ? `+${driver}` : ''}://${admin}:${encodeURIComponent(DB_PASSWORD)}@127.0.0.1:${port}/${database}`,
    createDatabase: (name) => connect('postgres', async (c) => void (await c.query(`CREATE DATABASE "${name}"`))),
    exec: (database, sql) => connect(database, async (c) => void (await c.query(sql))),
    stop,
  };
}
