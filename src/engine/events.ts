/** What the engine tells whoever watches it (the CLI's progress display, a report, a test). */

export type TransferEvent =
  | { type: 'planned'; experiments: number; runs: number; versions: number }
  | { type: 'experiment'; sourceId: string; name: string; destinationId?: string }
  | { type: 'run-started'; sourceId: string; name?: string }
  | { type: 'run-copied'; sourceId: string; destinationId: string; points: number; artifacts: number; bytes: number; sourceUrl?: string; destinationUrl?: string }
  | { type: 'run-skipped'; sourceId: string; destinationId: string; reason: string; sourceUrl?: string; destinationUrl?: string }
  | { type: 'run-failed'; sourceId: string; reason: string }
  | { type: 'points'; count: number }
  /** one artifact file written, its size */
  | { type: 'bytes'; count: number }
  | { type: 'logged-model'; sourceId: string; destinationId: string; copied: boolean }
  | { type: 'model'; name: string; destinationName: string; copied: number; skipped: number; failed: number }
  | { type: 'warning'; object: string; message: string }
  /** something the destination did or found that the user should know, not a problem */
  | { type: 'note'; object: string; message: string }
  /** a call to one end failed and is tried again (the CLI logs these rarely, the report counts them) */
  | { type: 'retry'; side: 'source' | 'destination'; kind: string }
  /** verify: one run compared */
  | { type: 'run-verified'; sourceId: string; equal: boolean };

export type EventListener = (event: TransferEvent) => void;
