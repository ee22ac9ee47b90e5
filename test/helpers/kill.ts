/**
 * Kills a running CLI copy with SIGKILL while a run is in flight: once its journal holds a
 * finished run and its last line starts another. Fails when the copy ends before that.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CliResult } from '../cli/run-cli.js';

export function killWhileRunInFlight(stateDir: string, child: ChildProcess, done: Promise<CliResult>): Promise<void> {
  const journal = join(stateDir, 'journal.jsonl');
  return new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (!existsSync(journal)) return;
      const lines = readFileSync(journal, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string });
      if (lines.some((l) => l.type === 'run-done') && lines[lines.length - 1]?.type === 'run-started') {
        clearInterval(timer);
        child.kill('SIGKILL');
        resolve();
      }
    }, 2);
    void done.then(() => {
      clearInterval(timer);
      reject(new Error('the copy finished before it could be killed'));
    });
  });
}
