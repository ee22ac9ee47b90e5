/**
 * A database source rides out a dropped connection: a query whose server process is
 * terminated mid-query (what a restarting PostgreSQL does to its clients) is run again on a
 * new connection, under the one retry policy, and counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryingDatabase } from '../../src/connectors/sqlstore/db.js';
import { openPostgres } from '../../src/connectors/sqlstore/postgres.js';
import { RetryStats } from '../../src/util/retry.js';
import { startPostgres } from '../harness/postgres.js';
import type { DatabaseServer } from '../harness/db-servers.js';

describe('database queries under the retry policy (real PostgreSQL)', () => {
  let server: DatabaseServer;
  beforeAll(async () => {
    server = await startPostgres();
    await server.createDatabase('retries');
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  const terminateReaders = () =>
    server.exec('postgres', "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'trackshift' AND query LIKE '%pg_sleep%'");

  it('runs a query again when its connection is terminated mid-query, and counts it', async () => {
    const stats = new RetryStats();
    const db = retryingDatabase(await openPostgres(server.uri('retries')), { policy: { retries: 5, windowMs: 30_000, baseDelayMs: 50, maxDelayMs: 200 }, stats }, 'source');
    try {
      let terminated = false;
      const query = db.all('SELECT 42 AS answer, pg_sleep(1.5) AS slept');
      // while the first attempt sleeps on the server, its connection is terminated
      await new Promise((r) => setTimeout(r, 500));
      await terminateReaders().then(() => (terminated = true));
      const rows = await query;
      expect(terminated).toBe(true);
      expect(rows[0]!.answer).toBe(42);
      const retries = stats.summary().retries;
      expect(retries).toEqual([expect.objectContaining({ side: 'source', kind: 'connection lost', count: expect.any(Number) })]);
      expect(retries[0]!.count).toBeGreaterThanOrEqual(1);
    } finally {
      await db.close();
    }
  });

  it('does not retry a query that is wrong (it fails at once, with the reason)', async () => {
    const stats = new RetryStats();
    const db = retryingDatabase(await openPostgres(server.uri('retries')), { policy: { retries: 5, windowMs: 30_000, baseDelayMs: 50, maxDelayMs: 200 }, stats }, 'source');
    try {
      await expect(db.all('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
      expect(stats.summary().retries).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
