/**
 * A throwaway PostgreSQL server for a benchmark, as test/harness/postgres.ts starts one for the
 * tests: initdb in a temporary folder (as the `postgres` system user when running as root, which
 * initdb refuses to be), password authentication on 127.0.0.1 for the admin `trackshift`, a free
 * loopback port, durability traded for speed. Installed by scripts/db-servers.sh when absent.
 *
 * The password is made at random for each server and never put in a URI: the commands that
 * connect get it as PGPASSWORD (`env`), which both libpq (MLflow's psycopg2) and node-postgres
 * (trackshift) read, so that no command line, log or table shows it.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ROOT, freePort, run, sleep, startDaemon, tail, temp } from './processes.mjs';

/** the newest installed server's bin/ (Debian keeps them in /usr/lib/postgresql/N/bin) */
function postgresBin() {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions[0]) return join(base, versions[0], 'bin');
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'initdb'))) return dir;
  throw new Error('PostgreSQL is not installed (initdb not found): scripts/db-servers.sh installs it');
}

/** uid and gid of the `postgres` system user when running as root, else undefined */
function postgresUser() {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no system user postgres: its server package creates it (scripts/db-servers.sh)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Starts the server. Returns `uri(database, driver?)` (no password in it), `env` (PGPASSWORD, for the
 * commands that connect), `createDatabase(name, template?)`, `port`, `dir` and `stop()`.
 */
export async function startPostgres() {
  await run('bash', [join(ROOT, 'scripts/db-servers.sh')]);
  const bin = postgresBin();
  const user = postgresUser();
  const dir = temp('postgres');
  const own = (path) => user && chownSync(path, user.uid, user.gid);
  own(dir);
  const admin = 'trackshift';
  const password = randomBytes(18).toString('base64url');
  const pwfile = join(dir, 'password');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  own(pwfile);
  const logFile = join(dir, 'postgres.log');
  await run(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', admin, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { cwd: dir, user, logFile });
  const port = await freePort();
  const daemon = startDaemon(
    join(bin, 'postgres'),
    ['-D', join(dir, 'data'), '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    { cwd: dir, logFile, user, graceMs: 15_000 },
  );
  const stop = () => daemon.stop('SIGINT'); // fast shutdown: clients are disconnected
  const query = async (sql) => {
    const client = new pg.Client({ host: '127.0.0.1', port, user: admin, password, database: 'postgres' });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (daemon.exited()) throw new Error(`postgres exited with ${daemon.exitCode()}:\n${tail(logFile)}`);
    try {
      await query('SELECT 1');
      break;
    } catch (err) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`postgres did not accept connections in 60 s (${err.message}):\n${tail(logFile)}`);
      }
    }
    await sleep(250);
  }
  return {
    port,
    dir,
    env: { PGPASSWORD: password },
    /** `driver` as SQLAlchemy takes it: MLflow 3.17 wants postgresql+psycopg2 (plain postgresql means psycopg 3 to it) */
    uri: (database, driver) => `postgresql${driver ? `+${driver}` : ''}://${admin}@127.0.0.1:${port}/${database}`,
    /** an empty database, or a copy of `template` (a database nobody is connected to) */
    createDatabase: (name, template) => query(`CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`),
    stop,
  };
}
