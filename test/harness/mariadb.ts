/**
 * Starts a real MariaDB server (MySQL's protocol and dialect) for tests: mariadb-install-db in a
 * temporary folder (run as the `mysql` user when running as root), the admin `trackshift`
 * (DB_PASSWORD) on TCP 127.0.0.1 at a free port, utf8mb4 as MLflow wants it. Installed by
 * scripts/db-servers.sh (Debian's mariadb-server) when absent.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { chownTo, DB_PASSWORD, ensureDbServers, runAs, startDaemon, systemUser, waitUntilReady, type DatabaseServer } from './db-servers.js';
import { freePort } from './mlflow-server.js';

/** a program of the server package: /usr/sbin is not on every PATH */
function program(name: string): string {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin']) if (dir && existsSync(join(dir, name))) return join(dir, name);
  throw new Error(`MariaDB is not installed (${name} not found): scripts/db-servers.sh installs it`);
}

export async function startMariadb(): Promise<DatabaseServer> {
  await ensureDbServers();
  const user = systemUser('mysql');
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-mariadb-'));
  chownTo(dir, user);
  const admin = 'trackshift';
  const datadir = join(dir, 'data');
  await runAs(user, program('mariadb-install-db'), ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db'], dir);
  // run at every start: the admin, reachable over TCP with a password
  const init = join(dir, 'init.sql');
  writeFileSync(init, `CREATE USER IF NOT EXISTS '${admin}'@'%' IDENTIFIED BY '${DB_PASSWORD}';\nGRANT ALL PRIVILEGES ON *.* TO '${admin}'@'%' WITH GRANT OPTION;\n`);
  chownTo(init, user);
  const port = await freePort();
  const daemon = startDaemon(
    user,
    program('mariadbd'),
    [
      '--no-defaults',
      `--datadir=${datadir}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${join(dir, 'mariadb.sock')}`,
      `--pid-file=${join(dir, 'mariadb.pid')}`,
      `--init-file=${init}`,
      '--skip-name-resolve',
      '--character-set-server=utf8mb4',
      // a throwaway server: durability traded for speed
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-buffer-pool-size=128M',
    ],
    dir,
  );
  const connect = async <T>(database: string | undefined, use: (c: mysql.Connection) => Promise<T>): Promise<T> => {
    const c = await mysql.createConnection({ host: '127.0.0.1', port, user: admin, password: DB_PASSWORD, ...(database ? { database } : {}), multipleStatements: true });
    try {
      return await use(c);
    } finally {
      await c.end();
    }
  };
  const stop = async () => {
    await daemon.stop('SIGTERM'); // a clean shutdown
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilReady(daemon, 'mariadbd', () => connect(undefined, async () => undefined));
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
    uri: (database, driver) => `mysql${driver ? `+${driver}` : ''}://${admin}:${encodeURIComponent(DB_PASSWORD)}@127.0.0.1:${port}/${database}`,
    createDatabase: (name) => connect(undefined, async (c) => void (await c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`))),
    exec: (database, sql) => connect(database, async (c) => void (await c.query(sql))),
    stop,
  };
}
