/**
 * The PostgreSQL writer stages a run's points with `COPY … FROM STDIN` (text format): what COPY
 * stores is what the multi-row INSERT stores, value for value (doubles exact, NULL apart from
 * the text `\N`), and keys with the characters COPY's text format gives a meaning to (tab,
 * newline, carriage return, backslash, `\.`) come back as they went in. MLflow's own
 * validation refuses such keys, but trackshift's other sources have them, and its writer takes
 * them as they are.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openSqlStoreDestination } from '../../src/connectors/sqlstore/index.js';
import { copyField, openPostgresForWriting } from '../../src/connectors/sqlstore/postgres.js';
import type { WriteParam } from '../../src/connectors/sqlstore/statements.js';
import type { Run } from '../../src/model/index.js';
import type { DatabaseServer } from '../harness/db-servers.js';
import { runTool } from '../harness/mlflow-server.js';
import { startPostgres } from '../harness/postgres.js';

// the COPY statements the driver sends, counted: the writer must take that path
const copies = vi.hoisted(() => [] as string[]);
vi.mock('pg-copy-streams', async (original) => {
  const real = await original<typeof import('pg-copy-streams')>();
  return { ...real, from: (text: string) => (copies.push(text), real.from(text)) };
});

const T0 = 1_700_000_000_000;
/** keys with every character COPY's text format reads specially, and text that looks like its NULL or its end of data */
const KEYS = ['tab\there', 'back\\slash', 'new\nline', 'carriage\rreturn', '\\N', '\\.', 'ünï/😀', 'plain'];
/** doubles whose shortest text is long, tiny, huge or subnormal, and -0 (whose String() is "0") */
const VALUES = [-0, 0.1 + 0.2, 1 / 3, 5e-324, -5e-324, 2.2250738585072014e-308, Number.MAX_VALUE, -Number.MAX_VALUE, 123456789.12345679, 1e21, 1e-7, -2.5];

describe('PostgreSQL: staged points by COPY', () => {
  let server: DatabaseServer;
  beforeAll(async () => {
    server = await startPostgres();
    await server.createDatabase('mlflow');
    await runTool(3, 'mlflow', ['db', 'upgrade', server.uri('mlflow', 'psycopg2')]);
  });
  afterAll(() => server?.stop());

  const query = async (sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> => {
    const client = new pg.Client({ connectionString: server.uri('mlflow') });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as Array<Record<string, unknown>>;
    } finally {
      await client.end();
    }
  };

  it('escapes a field as COPY text reads it', () => {
    expect(KEYS.map(copyField)).toEqual(['tab\\there', 'back\\\\slash', 'new\\nline', 'carriage\\rreturn', '\\\\N', '\\\\.', 'ünï/😀', 'plain']);
    expect([null, 0.1 + 0.2, -5e-324, 12n, 1700000000000, -0, 0].map(copyField)).toEqual(['\\N', '0.30000000000000004', '-5e-324', '12', '1700000000000', '-0', '0']);
  });

  it('stores by COPY exactly what the multi-row INSERT stores', async () => {
    const db = await openPostgresForWriting(server.uri('mlflow'), { connections: 2, dryRun: false });
    const session = await db.session();
    try {
      const [inserted, copied] = [db.stagingTable('by_insert'), db.stagingTable('by_copy')];
      await session.run(inserted.create);
      await session.run(copied.create);
      // random bit patterns too: every finite double must read back as itself
      const bits = new DataView(new ArrayBuffer(8));
      const values = [...VALUES];
      while (values.length < 3000) {
        bits.setUint32(0, Math.floor(Math.random() * 2 ** 32));
        bits.setUint32(4, Math.floor(Math.random() * 2 ** 32));
        if (Number.isFinite(bits.getFloat64(0))) values.push(bits.getFloat64(0));
      }
      const rows: WriteParam[][] = values.map((v, i) => [KEYS[i % KEYS.length]!, v, T0 + i, i - 1500, i % 2]);
      expect(session.copyRows).toBeTypeOf('function');
      await session.transaction((tx) => tx.insertRows(`INSERT INTO ${inserted.name} ("key", "value", "timestamp", step, is_nan)`, 5, rows, 2000));
      await session.transaction((tx) => tx.copyRows!(copied.name, ['key', 'value', 'timestamp', 'step', 'is_nan'], rows));
      // the value as its shortest text: PostgreSQL ≥ 12 prints a double so that it reads back exactly
      const read = (table: string) => session.all(`SELECT "key", "value"::text AS value, "timestamp", step, is_nan FROM ${table} ORDER BY seq`);
      const byCopy = await read(copied.name);
      expect(byCopy).toEqual(await read(inserted.name));
      expect(byCopy.map((r) => [r.key, Number(r.value), r.timestamp, r.step, r.is_nan ? 1 : 0])).toEqual(rows);
    } finally {
      await session.release();
      await db.close();
    }
  });

  it('writes points whose keys hold tabs, newlines and backslashes, and non-finite values as MLflow stores them', async () => {
    const destination = await openSqlStoreDestination(server.uri('mlflow'), undefined, 1);
    let runId: string;
    try {
      const experimentId = await destination.ensureExperiment({ id: 'e1', name: 'escapes', tags: {}, lifecycle: 'active' }, 'escapes');
      const run: Run = { id: 'r1', experimentId: 'e1', name: 'escapes', status: 'FINISHED', startTime: T0, endTime: T0 + 1, lifecycle: 'active', params: {}, tags: {}, inputs: [], series: [] };
      runId = await destination.createRun(experimentId, run);
      const metrics = KEYS.flatMap((key, k) => [...VALUES, NaN, Infinity, -Infinity].map((value, i) => ({ key, value, timestamp: T0 + i, step: i - k })));
      // two batches: the staging table takes more than one COPY
      copies.length = 0;
      await destination.writeBatch(runId, { params: [], tags: [], metrics: metrics.slice(0, 40) });
      await destination.writeBatch(runId, { params: [], tags: [], metrics: metrics.slice(40) });
      expect(copies).toEqual(new Array(2).fill(expect.stringMatching(/^COPY pg_temp\.staged_points_\d+ \("key", "value", "timestamp", "step", "is_nan"\) FROM STDIN$/)));
      await destination.finishRun(runId, run);
    } finally {
      await destination.close();
    }
    const stored = (v: number) => (Number.isNaN(v) ? 0 : v === Infinity ? Number.MAX_VALUE : v === -Infinity ? -Number.MAX_VALUE : v);
    const points = await query('SELECT "key", "value", "timestamp"::float8 AS "timestamp", step::float8 AS step, is_nan FROM metrics WHERE run_uuid = $1 ORDER BY "key", step', [runId]);
    const expected = KEYS.flatMap((key, k) => [...VALUES, NaN, Infinity, -Infinity].map((value, i) => ({ key, value: stored(value), timestamp: T0 + i, step: i - k, is_nan: Number.isNaN(value) })));
    const order = (a: Record<string, unknown>, b: Record<string, unknown>) => (a.key === b.key ? Number(a.step) - Number(b.step) : String(a.key) < String(b.key) ? -1 : 1);
    expect(points.sort(order)).toEqual(expected.sort(order));
    // the latest point of each key: its highest step, -Infinity
    const latest = await query('SELECT "key", "value", is_nan FROM latest_metrics WHERE run_uuid = $1', [runId]);
    expect(latest.sort((a, b) => (String(a.key) < String(b.key) ? -1 : 1))).toEqual([...KEYS].sort().map((key) => ({ key, value: -Number.MAX_VALUE, is_nan: false })));
  });
});
