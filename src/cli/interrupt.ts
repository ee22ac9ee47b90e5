/**
 * Ctrl-C and SIGTERM while a job runs: the first asks the job to stop (its AbortSignal), which
 * then ends with a summary and a report; a second one exits at once.
 */
const EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

export interface Interruption {
  readonly signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM; undefined while no signal came */
  readonly exitCode: number | undefined;
  /** back to Node's own handling (a signal then ends the process) */
  dispose(): void;
}

export function watchInterruptions(out: NodeJS.WritableStream = process.stderr): Interruption {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (name: NodeJS.Signals) => {
    if (received) {
      out.write(`\ntrackshift: ${name} again: stopping at once (runs in flight are left partial; a re-run redoes them)\n`);
      process.exit(EXIT_CODES[name] ?? 130);
    }
    received = name;
    out.write(`\ntrackshift: ${name}: stopping. No new runs start; runs in flight get a few seconds to finish. Press Ctrl-C again to stop at once.\n`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    get exitCode() {
      return received ? (EXIT_CODES[received] ?? 130) : undefined;
    },
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
