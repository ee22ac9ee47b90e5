/**
 * Servers the tests start run in process groups of their own (spawned detached), so that
 * stopping one takes its workers too (an MLflow server's uvicorn and job consumers, a
 * database's children). Every group still running is killed when the test process exits.
 */
import type { ChildProcess } from 'node:child_process';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Kills `child`'s group when the test process exits, until `forget` is called; keeps the last
 * 20 kB it printed (stdout and stderr, when piped), for the error when it fails to start.
 */
export function track(child: ChildProcess): { forget: () => void; output: () => string } {
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { forget: () => running.delete(child), output: () => output };
}
