/**
 * Kills a running CLI copy with SIGKILL at a chosen moment (`killWhen`), or while a run is in
 * flight: once its journal holds a finished run and its last line starts another.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliResult } from '../cli/run-cli.js';

/** Kills the copy with SIGKILL as soon as `ready()` says so (asked every 2 ms); fails when the copy ends before that. */
export function killWhen(ready: () => boolean, child: ChildProcess, done: Promise<CliResult>): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (!ready()) return;
      clearInterval(timer);
      child.kill('SIGKILL');
      resolve();
    }, 2);
    void done.then(() => {
      clearInterval(timer);
      reject(new Error('the copy finished before it could be killed'));
    });
  });
}

export function killWhileRunInFlight(stateDir: string, child: ChildProcess, done: Promise<CliResult>): Promise<void> {
  const journal = join(stateDir, 'journal.jsonl');
  return killWhen(
    () => {
      if (!existsSync(journal)) return false;
      const lines = readFileSync(journal, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string });
      return lines.some((l) => l.type === 'run-done') && lines[lines.length - 1]?.type === 'run-started';
    },
    child,
    done,
  );
}
