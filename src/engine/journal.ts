/**
 * The resume journal: one JSON line per finished step, appended synchronously as work
 * finishes, so a `kill -9` loses at most the objects in flight. Read back on the next run to
 * skip what is done and to map source ids to destination ids.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InvalidInputError } from '../util/errors.js';

const Entry = z.discriminatedUnion('type', [
  z.object({ type: z.literal('experiment'), source: z.string(), destination: z.string(), name: z.string() }),
  z.object({ type: z.literal('run-started'), source: z.string(), destination: z.string() }),
  z.object({ type: z.literal('run-done'), source: z.string(), destination: z.string() }),
  /** a done run the destination no longer holds (emptied, or another server at the same address) */
  z.object({ type: z.literal('run-forgotten'), source: z.string() }),
  z.object({ type: z.literal('logged-model-done'), source: z.string(), destination: z.string() }),
  /** `--delete-model`: the destination model was deleted once by this job, not again on a re-run */
  z.object({ type: z.literal('model-deleted'), name: z.string() }),
  /** versions as `model/number` on both sides */
  z.object({ type: z.literal('version-done'), source: z.string(), destination: z.string() }),
]);
type Entry = z.infer<typeof Entry>;

export interface IdMap {
  experiments: Record<string, string>;
  runs: Record<string, string>;
  loggedModels: Record<string, string>;
  /** `model/version` → `model/version` */
  modelVersions: Record<string, string>;
}

export class Journal {
  readonly experiments = new Map<string, string>();
  /** source run id → destination run id, for runs written completely */
  readonly doneRuns = new Map<string, string>();
  /** runs started but not finished by an earlier attempt */
  readonly startedRuns = new Map<string, string>();
  readonly doneLoggedModels = new Map<string, string>();
  readonly doneVersions = new Map<string, string>();
  readonly deletedModels = new Set<string>();
  private readonly file: string;

  constructor(readonly dir: string) {
    this.file = join(dir, 'journal.jsonl');
    if (existsSync(this.file)) this.load();
  }

  private load(): void {
    const bytes = readFileSync(this.file);
    // a line cut short by a kill is dropped, so that the next entry starts on a line of its own
    const end = bytes.lastIndexOf(0x0a) + 1;
    if (end < bytes.length) truncateSync(this.file, end);
    const lines = bytes.subarray(0, end).toString('utf8').split('\n');
    lines.forEach((line, index) => {
      if (!line.trim()) return;
      let entry: Entry;
      try {
        entry = Entry.parse(JSON.parse(line));
      } catch {
        throw new InvalidInputError(this.file, `line ${index + 1} is not a journal entry; remove the state folder ${this.dir} to start afresh`);
      }
      this.apply(entry);
    });
  }

  private apply(entry: Entry): void {
    if (entry.type === 'experiment') this.experiments.set(entry.source, entry.destination);
    else if (entry.type === 'run-started') this.startedRuns.set(entry.source, entry.destination);
    else if (entry.type === 'run-done') {
      this.startedRuns.delete(entry.source);
      this.doneRuns.set(entry.source, entry.destination);
    } else if (entry.type === 'run-forgotten') {
      this.doneRuns.delete(entry.source);
      this.startedRuns.delete(entry.source);
    } else if (entry.type === 'logged-model-done') this.doneLoggedModels.set(entry.source, entry.destination);
    else if (entry.type === 'model-deleted') this.deletedModels.add(entry.name);
    else this.doneVersions.set(entry.source, entry.destination);
  }

  private append(entry: Entry): void {
    mkdirSync(this.dir, { recursive: true });
    appendFileSync(this.file, JSON.stringify(entry) + '\n');
    this.apply(entry);
  }

  experimentMapped(source: string, destination: string, name: string): void {
    if (this.experiments.get(source) !== destination) this.append({ type: 'experiment', source, destination, name });
  }

  runStarted(source: string, destination: string): void {
    this.append({ type: 'run-started', source, destination });
  }

  runDone(source: string, destination: string): void {
    this.append({ type: 'run-done', source, destination });
  }

  runForgotten(source: string): void {
    if (this.doneRuns.has(source) || this.startedRuns.has(source)) this.append({ type: 'run-forgotten', source });
  }

  loggedModelDone(source: string, destination: string): void {
    this.append({ type: 'logged-model-done', source, destination });
  }

  modelDeleted(name: string): void {
    this.append({ type: 'model-deleted', name });
  }

  versionDone(source: string, destination: string): void {
    this.append({ type: 'version-done', source, destination });
  }

  idMap(): IdMap {
    return {
      experiments: Object.fromEntries(this.experiments),
      runs: Object.fromEntries(this.doneRuns),
      loggedModels: Object.fromEntries(this.doneLoggedModels),
      modelVersions: Object.fromEntries(this.doneVersions),
    };
  }

  writeIdMap(file: string): void {
    writeFileSync(file, JSON.stringify(this.idMap(), null, 2) + '\n');
  }
}
