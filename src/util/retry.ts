/**
 * One retry policy for every call to another system: JSON calls, artifact transfers, signed
 * URLs, database connections. Exponential backoff with full jitter, a server's Retry-After
 * honoured, and two bounds: a number of retries and a total time window, long enough by
 * default to ride out a server restart. Every retry is counted, per side and per kind, so that
 * the summary can say what was absorbed.
 */

export interface RetryPolicy {
  /** retries after the first attempt */
  retries: number;
  /** no retry starts later than this after the first attempt */
  windowMs: number;
  /** the first backoff, doubled each retry (full jitter: a random delay up to it) */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** 2 minutes: a restarting server (or a load balancer swapping it) is back well within it. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 20, windowMs: 120_000, baseDelayMs: 500, maxDelayMs: 15_000 };

export type Side = 'source' | 'destination';

/** Why an error may be retried: its kind as the summary names it, and the server's wish. */
export interface RetryReason {
  /** `HTTP 503`, `connection reset`, `connection refused`, `timeout`, `connection lost` */
  kind: string;
  retryAfterMs?: number;
}

/** Connection-level error codes worth another attempt, and how the summary names them. */
const CONNECTION_CODES: Record<string, string> = {
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection reset',
  UND_ERR_CLOSED: 'connection reset',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
  EAI_AGAIN: 'name lookup failed',
  // database drivers
  PROTOCOL_CONNECTION_LOST: 'connection lost',
  '57P01': 'connection lost', // postgres: admin shutdown (a restarting server)
  '57P03': 'connection refused', // postgres: cannot connect now (starting up)
};

export const RETRIABLE_STATUS = new Set([408, 429, 500, 502, 503, 504]);

/** The first string `code` on an error or its causes (undici and drivers nest them). */
export function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; current && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The kind of a connection-level failure, or undefined when the code is not one. */
export const connectionKind = (code: string | undefined): string | undefined => (code ? CONNECTION_CODES[code] : undefined);

/**
 * The default judgement: an error that says it is retriable (`retryReason`, set by the HTTP
 * layer), or a connection error by its code. Anything else (a 404, a bad answer) is final.
 */
export function retryReasonOf(err: unknown): RetryReason | undefined {
  if (retriesExhausted(err)) return undefined;
  const own = (err as { retryReason?: RetryReason } | undefined)?.retryReason;
  if (own) return own;
  const kind = connectionKind(errorCode(err));
  return kind ? { kind } : undefined;
}

const EXHAUSTED = Symbol('retries exhausted');

/** Marks an error that went through the policy and still failed: no outer layer retries it again. */
function markExhausted(err: unknown): void {
  if (err && typeof err === 'object') (err as Record<symbol, boolean>)[EXHAUSTED] = true;
}

/** Whether a retriable error failed even after the policy's retries (the system is still failing). */
export const retriesExhausted = (err: unknown): boolean => Boolean(err && typeof err === 'object' && (err as Record<symbol, boolean>)[EXHAUSTED]);

/** Why an HTTP answer with this status is worth another attempt (with the server's Retry-After), or undefined. */
export function statusRetryReason(status: number, retryAfter: string | string[] | undefined): RetryReason | undefined {
  if (!RETRIABLE_STATUS.has(status)) return undefined;
  const retryAfterMs = parseRetryAfter(retryAfter);
  return { kind: `HTTP ${status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

/** Retry-After in milliseconds: seconds or an HTTP date. */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export interface RetryCount {
  side: Side;
  kind: string;
  count: number;
  /** of those, how many waited as the server's Retry-After asked */
  retryAfter: number;
}

/** What the retries of a job add up to, for the summary and the report. */
export interface RetrySummary {
  /** calls made (first attempts), per side */
  calls: Record<Side, number>;
  retries: RetryCount[];
  /** calls that failed even after retrying, per side */
  gaveUp: Record<Side, number>;
}

/** Counts calls and retries across a job (shared by both ends and every worker). */
export class RetryStats {
  private readonly counts = new Map<string, RetryCount>();
  private readonly calls: Record<Side, number> = { source: 0, destination: 0 };
  private readonly gaveUp: Record<Side, number> = { source: 0, destination: 0 };
  /** told of each retry (progress lines) */
  onRetry?: (side: Side, reason: RetryReason) => void;

  called(side: Side): void {
    this.calls[side]++;
  }

  retried(side: Side, reason: RetryReason): void {
    const key = `${side}\t${reason.kind}`;
    const count = this.counts.get(key) ?? { side, kind: reason.kind, count: 0, retryAfter: 0 };
    count.count++;
    if (reason.retryAfterMs !== undefined) count.retryAfter++;
    this.counts.set(key, count);
    this.onRetry?.(side, reason);
  }

  failed(side: Side): void {
    this.gaveUp[side]++;
  }

  summary(): RetrySummary {
    const retries = [...this.counts.values()].sort((a, b) => a.side.localeCompare(b.side) || b.count - a.count);
    return { calls: { ...this.calls }, retries: retries.map((r) => ({ ...r })), gaveUp: { ...this.gaveUp } };
  }
}

/** What one end of a job retries with: the policy, where it counts, and which side it is. */
export interface RetryContext {
  policy: RetryPolicy;
  stats?: RetryStats;
}

/**
 * A job's retry context: the policy (default unless given) and fresh counts, each retry also
 * told to `onEvent` (the progress display logs a few of them).
 */
export function jobRetries(policy: RetryPolicy | undefined, onEvent?: (event: { type: 'retry'; side: Side; kind: string }) => void): RetryContext {
  const stats = new RetryStats();
  if (onEvent) stats.onRetry = (side, reason) => onEvent({ type: 'retry', side, kind: reason.kind });
  return { policy: policy ?? DEFAULT_RETRY_POLICY, stats };
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetryOptions<T> {
  side?: Side;
  stats?: RetryStats;
  /** which errors are retried (default: retryReasonOf) */
  classify?: (err: unknown) => RetryReason | undefined;
  /**
   * Before a retry: a call that creates something may have acted before its answer was lost.
   * A value returned here is the result (the object is there), and nothing is created again.
   */
  beforeRetry?: () => Promise<T | undefined>;
  clock?: Clock;
  random?: () => number;
}

/** The delay before retry number `retry` (1-based): full jitter over an exponential cap. */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  return random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
}

/** Runs `work` until it succeeds, fails for good, or the policy's retries or window are spent. */
export async function withRetry<T>(policy: RetryPolicy, work: (attempt: number) => Promise<T>, options: RetryOptions<T> = {}): Promise<T> {
  const clock = options.clock ?? realClock;
  const classify = options.classify ?? retryReasonOf;
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    if (options.side && attempt === 1) options.stats?.called(options.side);
    try {
      // looking first is part of the attempt: nothing is created again before the look-up succeeded
      if (attempt > 1 && options.beforeRetry) {
        const found = await options.beforeRetry();
        if (found !== undefined) return found;
      }
      return await work(attempt);
    } catch (err) {
      const reason = classify(err);
      const remaining = policy.windowMs - (clock.now() - started);
      if (!reason || attempt > policy.retries || remaining <= 0) {
        if (reason && policy.retries > 0) {
          if (options.side) options.stats?.failed(options.side);
          markExhausted(err);
        }
        throw err;
      }
      // Retry-After is the server's wish; within the window it is honoured exactly
      const delay = Math.min(reason.retryAfterMs ?? backoffMs(policy, attempt, options.random), remaining);
      if (options.side) options.stats?.retried(options.side, reason);
      await clock.sleep(delay);
    }
  }
}

const OVERLOAD_KINDS = new Set(['HTTP 429', 'HTTP 503']);

/**
 * The retries as a person reads them, one line per side that had any ("destination: retried
 * 63× after HTTP 503, 19× after HTTP 429 (honouring Retry-After), …"), and a hint when the
 * destination looks overloaded: many 429/503 answers, or a large share of its calls retried.
 */
export function describeRetries(summary: RetrySummary | undefined): string[] {
  if (!summary) return [];
  const lines: string[] = [];
  for (const side of ['source', 'destination'] as const) {
    const counts = summary.retries.filter((r) => r.side === side);
    if (counts.length === 0 && summary.gaveUp[side] === 0) continue;
    const parts = counts.map((r) => `${r.count}× after ${r.kind}${r.retryAfter > 0 ? ` (${r.retryAfter === r.count ? '' : `${r.retryAfter} `}honouring Retry-After)` : ''}`);
    const gaveUp = summary.gaveUp[side] > 0 ? `; ${summary.gaveUp[side]} call(s) still failed after retrying (--retries, --retry-window)` : '';
    lines.push(`${side}: retried ${parts.join(', ') || 'nothing'}${gaveUp}`);
  }
  const dst = summary.retries.filter((r) => r.side === 'destination');
  const overloaded = dst.filter((r) => OVERLOAD_KINDS.has(r.kind)).reduce((n, r) => n + r.count, 0);
  const retried = dst.reduce((n, r) => n + r.count, 0);
  const calls = summary.calls.destination;
  if ((overloaded >= 20 && overloaded >= calls * 0.05) || (calls >= 20 && retried >= calls * 0.2)) {
    lines.push(
      `the destination looks overloaded (${retried} retries over ${calls} calls${overloaded ? `, ${overloaded} answered 429 or 503` : ''}): ` +
        'a re-run with fewer --workers and --artifact-workers goes easier on it',
    );
  }
  return lines;
}
