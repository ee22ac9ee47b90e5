/**
 * The runs a log directory already holds, indexed once when the destination opens: by the
 * source run each was copied from (its `run_data/tags/trackshift.source.id`), whether it is
 * complete (a run folder) or was cut off (a `.trackshift-partial-…` folder, never read as a run).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { SOURCE_TAGS } from '../../model/index.js';
import { DATABASE_FILE, PARTIAL_FOLDER_PREFIX, RunDatabase } from './db.js';
import { OPERATION_UPDATE, decodeUpdate } from '../neptune-common/scale-proto.js';

const SOURCE_ID_ATTRIBUTE = `run_data/tags/${SOURCE_TAGS.id}`;

export interface ExistingCopy {
  /** the Neptune run id: the destination's id of the run */
  runId: string;
  folder: string;
  complete: boolean;
}

/** What one database says about its run, or undefined when it is not trackshift's copy (or cannot be read). */
function describe(file: string): { runId: string; sourceId: string } | undefined {
  let db: RunDatabase;
  try {
    db = RunDatabase.open(file);
  } catch {
    return undefined;
  }
  try {
    // the provenance is among the first operations a copy writes; only rows holding its name are decoded
    for (const page of db.operations(Buffer.from(SOURCE_ID_ATTRIBUTE, 'utf8'))) {
      for (const row of page) {
        if (row.operation_type !== OPERATION_UPDATE) continue;
        const value = decodeUpdate(row.operation).assign[SOURCE_ID_ATTRIBUTE]?.value;
        if (value?.case === 'string') return { runId: db.metadata.run_id, sourceId: value.value };
      }
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    db.close();
  }
}

/** Source run id → its copy in `dir`; a complete copy wins over a partial one. */
export async function indexCopies(dir: string): Promise<Map<string, ExistingCopy>> {
  const copies = new Map<string, ExistingCopy>();
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const folder = join(dir, entry.name);
    const found = describe(join(folder, DATABASE_FILE));
    if (!found) continue;
    const complete = !entry.name.startsWith(PARTIAL_FOLDER_PREFIX);
    const known = copies.get(found.sourceId);
    if (known?.complete && !complete) continue;
    copies.set(found.sourceId, { runId: found.runId, folder, complete });
  }
  return copies;
}
