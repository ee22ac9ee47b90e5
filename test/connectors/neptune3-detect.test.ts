/** A path to a file is a neptune-scale database only when the file is an SQLite database. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { neptune3Connector } from '../../src/connectors/neptune3/index.js';

describe('neptune3 detection of a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-n3-detect-'));

  it('takes an SQLite file, and no other file', async () => {
    const db = join(dir, 'any-name.sqlite3');
    new Database(db).exec('CREATE TABLE t (x)');
    const zip = join(dir, '0123456789abcdef0123456789abcdef.zip');
    writeFileSync(zip, Buffer.from('PK\u0003\u0004 not a database'));
    const short = join(dir, 'short');
    writeFileSync(short, 'SQLite');
    expect(await neptune3Connector.detect(db)).toBe(true);
    expect(await neptune3Connector.detect(zip)).toBe(false);
    expect(await neptune3Connector.detect(short)).toBe(false);
  });
});
