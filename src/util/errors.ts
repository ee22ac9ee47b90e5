/**
 * Errors a user can act on. The CLI prints their message (never a stack trace) and exits with
 * `exitCode`: 2 for usage and configuration problems, 1 when some objects failed.
 */
export class TrackshiftError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad arguments, unreachable or misconfigured systems, unreadable input: exit 2. */
export class UsageError extends TrackshiftError {
  constructor(message: string) {
    super(message, 2);
  }
}

/** A file or response that does not have the expected shape. */
export class InvalidInputError extends TrackshiftError {
  constructor(
    readonly where: string,
    problem: string,
  ) {
    super(`${where}: ${problem}`, 2);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
