/**
 * Artifact folders of runs not yet committed. A run's files reach its folder before the one
 * transaction that makes the run (files have no transaction), so a kill in between leaves a
 * folder no run names. The writer marks the folder (`.trackshift-uncommitted`: this host and
 * process) before its first file and takes the mark off after the commit; the next writer into
 * the same experiment removes every marked folder whose run is not in the database and whose
 * process has ended on this host. Folders without the mark (the server's own) are never touched,
 * nor those of a writer still running or on another host.
 */
import { hostname } from 'node:os';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { removeInside } from '../../util/paths.js';

const MARK = '.trackshift-uncommitted';
/** MLflow's run ids: uuid4 hex */
const RUN_FOLDER = /^[0-9a-f]{32}$/;
const Writer = z.object({ host: z.string(), pid: z.number().int().positive() });

export async function markUncommitted(runFolder: string): Promise<void> {
  await mkdir(runFolder, { recursive: true });
  await writeFile(join(runFolder, MARK), JSON.stringify({ host: hostname(), pid: process.pid }));
}

export async function unmarkCommitted(runFolder: string): Promise<void> {
  await rm(join(runFolder, MARK), { force: true });
}

/** Removes the folders of runs a stopped writer left uncommitted; returns their run ids. */
export async function sweepUncommitted(experimentFolder: string, committed: (runId: string) => Promise<boolean>): Promise<string[]> {
  const names = await readdir(experimentFolder).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!RUN_FOLDER.test(name)) continue;
    const folder = join(experimentFolder, name);
    const mark = await readFile(join(folder, MARK), 'utf8').catch(() => undefined);
    if (mark === undefined) continue;
    if (await committed(name)) {
      await unmarkCommitted(folder); // stopped between its commit and the mark's removal
    } else if (writerEnded(mark)) {
      await removeInside(experimentFolder, folder);
      removed.push(name);
    }
  }
  return removed;
}

/** Whether the process that wrote the mark has ended: only decidable on this host. */
function writerEnded(mark: string): boolean {
  let writer: z.infer<typeof Writer>;
  try {
    writer = Writer.parse(JSON.parse(mark));
  } catch {
    return false; // not ours to judge
  }
  if (writer.host !== hostname()) return false;
  if (writer.pid === process.pid) return false;
  try {
    process.kill(writer.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
