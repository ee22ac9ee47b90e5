/**
 * The retry policy on a fake clock: nothing sleeps for real. Attempts, the total window,
 * full-jitter backoff, Retry-After, what is retried, creating calls that look before creating
 * again, and the counts the summary prints.
 */
import { describe, expect, it } from 'vitest';
import { HttpError, ConnectionError } from '../../src/util/http.js';
import { UsageError } from '../../src/util/errors.js';
import { backoffMs, describeRetries, parseRetryAfter, retriesExhausted, RetryStats, withRetry, type Clock, type RetryPolicy } from '../../src/util/retry.js';

/** A clock whose sleeps only move time forward, and remember how long they were. */
function fakeClock(): Clock & { slept: number[] } {
  let now = 1_000_000;
  const slept: number[] = [];
  return {
    slept,
    now: () => now,
    sleep: async (ms) => {
      slept.push(ms);
      now += ms;
    },
  };
}

const policy: RetryPolicy = { retries: 10, windowMs: 60_000, baseDelayMs: 500, maxDelayMs: 8_000 };
const status = (code: number, retryAfterMs?: number) =>
  new HttpError(`failed with ${code}`, code, undefined, 'POST', '/x', code >= 500 || code === 429 ? { kind: `HTTP ${code}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) } : undefined);
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });

/** work that fails with `errors` in turn, then answers `ok` */
function failing(...errors: Error[]) {
  let calls = 0;
  const work = async () => {
    const error = errors[calls++];
    if (error) throw error;
    return 'ok';
  };
  return { work, calls: () => calls };
}

describe('withRetry', () => {
  it('retries retriable failures and returns the answer that follows', async () => {
    const clock = fakeClock();
    const { work, calls } = failing(status(503), reset(), new ConnectionError('refused', 'ECONNREFUSED'), status(429));
    expect(await withRetry(policy, work, { clock, random: () => 1 })).toBe('ok');
    expect(calls()).toBe(5);
    // full jitter over 500 ms doubling: with random() = 1 the caps themselves
    expect(clock.slept).toEqual([500, 1000, 2000, 4000]);
  });

  it('caps each delay at maxDelayMs and jitters below it', () => {
    expect(backoffMs(policy, 10, () => 1)).toBe(8_000);
    expect(backoffMs(policy, 3, () => 0.25)).toBe(500);
  });

  it('honours Retry-After exactly instead of its own backoff', async () => {
    const clock = fakeClock();
    const { work } = failing(status(429, 1000), status(503, 3000));
    await withRetry(policy, work, { clock, random: () => 0 });
    expect(clock.slept).toEqual([1000, 3000]);
  });

  it('does not retry a failure that is not retriable (a 404, a usage error)', async () => {
    for (const error of [status(404), new UsageError('bad flag'), new Error('plain')]) {
      const clock = fakeClock();
      const { work, calls } = failing(error);
      await expect(withRetry(policy, work, { clock })).rejects.toBe(error);
      expect(calls()).toBe(1);
      expect(clock.slept).toEqual([]);
    }
  });

  it('stops after the number of retries, and marks the error as exhausted', async () => {
    const clock = fakeClock();
    const errors = Array.from({ length: 10 }, () => status(503));
    const { work, calls } = failing(...errors);
    const error = await withRetry({ ...policy, retries: 3 }, work, { clock, random: () => 0 }).catch((e) => e);
    expect(error).toBe(errors[3]);
    expect(calls()).toBe(4);
    expect(retriesExhausted(error)).toBe(true);
  });

  it('stops when the total window is spent, the last wait cut to what is left of it', async () => {
    const clock = fakeClock();
    const errors = Array.from({ length: 50 }, () => status(503, 7_000));
    const { work, calls } = failing(...errors);
    await expect(withRetry({ ...policy, retries: 100, windowMs: 20_000 }, work, { clock })).rejects.toBeInstanceOf(HttpError);
    // 7 + 7 + 6 (what was left) seconds, then no more
    expect(clock.slept).toEqual([7000, 7000, 6000]);
    expect(calls()).toBe(4);
  });

  it('rides out a server down for 15 s with the default-sized window', async () => {
    const clock = fakeClock();
    const started = clock.now();
    let calls = 0;
    const work = async () => {
      calls++;
      if (clock.now() - started < 15_000) throw new ConnectionError('refused', 'ECONNREFUSED');
      return 'back';
    };
    expect(await withRetry({ retries: 20, windowMs: 120_000, baseDelayMs: 500, maxDelayMs: 15_000 }, work, { clock, random: () => 0.5 })).toBe('back');
    expect(calls).toBeGreaterThan(2);
  });

  it('looks before creating again, and uses what an attempt whose answer was lost made', async () => {
    const clock = fakeClock();
    let creates = 0;
    let lookups = 0;
    const result = await withRetry(
      policy,
      async () => {
        creates++;
        throw status(503); // the server made it, the answer was lost
      },
      {
        clock,
        beforeRetry: async () => {
          lookups++;
          return 'run-1';
        },
      },
    );
    expect(result).toBe('run-1');
    expect([creates, lookups]).toEqual([1, 1]);
  });

  it('creates again only after a look-up that found nothing succeeded; a failed look-up is retried too', async () => {
    const clock = fakeClock();
    const order: string[] = [];
    let lookups = 0;
    const result = await withRetry(
      policy,
      async (attempt) => {
        order.push(`create ${attempt}`);
        if (attempt === 1) throw reset();
        return 'created';
      },
      {
        clock,
        beforeRetry: async () => {
          order.push('lookup');
          if (++lookups === 1) throw status(502);
          return undefined;
        },
      },
    );
    expect(result).toBe('created');
    expect(order).toEqual(['create 1', 'lookup', 'lookup', 'create 3']);
  });

  it('counts calls and retries per side and kind, and what still failed', async () => {
    const stats = new RetryStats();
    const clock = fakeClock();
    await withRetry(policy, failing(status(503), status(503), status(429, 1000)).work, { clock, side: 'destination', stats });
    await withRetry(policy, failing(reset()).work, { clock, side: 'source', stats });
    await withRetry({ ...policy, retries: 1 }, failing(reset(), reset()).work, { clock, side: 'destination', stats }).catch(() => undefined);
    expect(stats.summary()).toEqual({
      calls: { source: 1, destination: 2 },
      retries: [
        { side: 'destination', kind: 'HTTP 503', count: 2, retryAfter: 0 },
        { side: 'destination', kind: 'HTTP 429', count: 1, retryAfter: 1 },
        { side: 'destination', kind: 'connection reset', count: 1, retryAfter: 0 },
        { side: 'source', kind: 'connection reset', count: 1, retryAfter: 0 },
      ],
      gaveUp: { source: 0, destination: 1 },
    });
    const lines = describeRetries(stats.summary());
    expect(lines[0]).toBe('source: retried 1× after connection reset');
    expect(lines[1]).toBe(
      'destination: retried 2× after HTTP 503, 1× after HTTP 429 (honouring Retry-After), 1× after connection reset; 1 call(s) still failed after retrying (--retries, --retry-window)',
    );
  });

  it('says the destination looks overloaded when many calls were answered 429/503', () => {
    const stats = new RetryStats();
    for (let i = 0; i < 100; i++) stats.called('destination');
    for (let i = 0; i < 30; i++) stats.retried('destination', { kind: 'HTTP 503' });
    expect(describeRetries(stats.summary()).at(-1)).toMatch(/destination looks overloaded \(30 retries over 100 calls, 30 answered 429 or 503\).*fewer --workers/);
    const calm = new RetryStats();
    for (let i = 0; i < 100; i++) calm.called('destination');
    calm.retried('destination', { kind: 'HTTP 503' });
    expect(describeRetries(calm.summary()).join('\n')).not.toMatch(/overloaded/);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
