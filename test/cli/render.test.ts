/** The progress display: a bar with counts, rates and an ETA on a terminal; plain lines otherwise. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProgressPrinter, formatBytes, summary } from '../../src/cli/render.js';
import type { Report } from '../../src/engine/job.js';

/** What a terminal would receive: isTTY and columns are all the printer looks at. */
function fakeStream(isTTY: boolean) {
  const stream = {
    isTTY,
    columns: 120,
    text: '',
    write(chunk: string | Uint8Array) {
      stream.text += chunk.toString();
      return true;
    },
  };
  return stream;
}

/** the text as it stands on the screen: escape sequences and carriage-return redraws removed */
const screen = (text: string) =>
  text
    .replace(/\x1b\[\d*G/g, '\r') // back to the line's start: a redraw
    .replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '')
    .split('\n')
    .map((line) => line.split('\r').filter(Boolean).pop() ?? '');

describe('progress display', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('on a terminal: runs done of planned, points and bytes per second, an ETA; warnings as lines above', () => {
    const out = fakeStream(true);
    const printer = new ProgressPrinter(out as unknown as NodeJS.WriteStream);
    printer.onEvent({ type: 'planned', experiments: 1, runs: 10, versions: 0 });
    expect(screen(out.text).pop()).toMatch(/0\/10 runs \| 0 points\/s \| 0 B\/s \| ETA …$/); // no rate yet, no made-up ETA
    for (let i = 0; i < 4; i++) {
      vi.advanceTimersByTime(1000);
      printer.onEvent({ type: 'points', count: 5000 });
      printer.onEvent({ type: 'bytes', count: 2_000_000 });
      printer.onEvent({ type: 'run-copied', sourceId: `r${i}`, destinationId: `d${i}`, points: 5000, artifacts: 1, bytes: 2_000_000 });
    }
    printer.onEvent({ type: 'warning', object: 'run r9', message: 'something to know' });
    vi.advanceTimersByTime(200); // the bar redraws on its own schedule
    const lines = screen(out.text);
    expect(lines).toContain('warning: run r9: something to know');
    const bar = lines.filter((l) => l.includes('runs |')).pop()!;
    expect(bar).toMatch(/4\/10 runs \| 5,000 points\/s \| 2\.0 MB\/s \| ETA \d+s/);
    const eta = Number(/ETA (\d+)s/.exec(bar)![1]);
    expect(eta).toBeGreaterThanOrEqual(2); // 6 runs left at about one a second (an estimate over the latest updates)
    expect(eta).toBeLessThanOrEqual(9);
    // the per-run lines are the bar's job on a terminal
    expect(out.text).not.toContain('copied run r0');
    printer.finish();
    vi.advanceTimersByTime(1000);
    const after = out.text.length;
    vi.advanceTimersByTime(1000);
    expect(out.text.length).toBe(after); // stopped: no timer left drawing
  });

  it('not on a terminal: the plain lines, as before, and no bar', () => {
    const out = fakeStream(false);
    const printer = new ProgressPrinter(out as unknown as NodeJS.WriteStream);
    printer.onEvent({ type: 'planned', experiments: 1, runs: 2, versions: 0 });
    printer.onEvent({ type: 'run-copied', sourceId: 'r1', destinationId: 'd1', points: 3, artifacts: 1, bytes: 10 });
    printer.onEvent({ type: 'run-skipped', sourceId: 'r2', destinationId: 'd2', reason: 'already in the destination' });
    printer.onEvent({ type: 'warning', object: 'run r2', message: 'note' });
    printer.finish();
    expect(out.text).toBe(
      'planned 2 run(s) in 1 experiment(s)\n' + 'copied run r1 → d1 (3 points, 1 artifacts)\n' + 'skipped run r2: already in the destination\n' + 'warning: run r2: note\n',
    );
  });

  it('formats byte rates', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1234)).toBe('1.2 kB');
    expect(formatBytes(5_600_000_000)).toBe('5.6 GB');
  });

  it('the closing summary says, in one line, how many runs hold encoded data', () => {
    const report = {
      command: 'copy',
      source: 'memory:a',
      destination: '/tmp/mlruns',
      durationMs: 1000,
      planned: { experiments: 1, runs: 2, models: 0, versions: 0 },
      copied: { runs: 2, metricPoints: 10, artifacts: 0, artifactBytes: 0, loggedModels: 0, versions: 0 },
      skipped: { runs: 0, loggedModels: 0, versions: 0 },
      failed: [],
      warnings: [],
      models: [],
      encoded: [{ sourceId: 'r1', destinationId: 'r1', how: ['string series "log" (3 points) kept as .trackshift/series/0.jsonl'] }],
      idMapFile: '/tmp/id-map.json',
    } as unknown as Report;
    const lines = summary(report).split('\n');
    expect(lines.filter((l) => l.includes('.trackshift/'))).toEqual([
      `1 run(s) hold what the destination cannot hold natively: kept in each run's .trackshift/ encoding, which trackshift reads back (docs/encoding.md; what and how, run by run: "encoded" in --report FILE)`,
    ]);
    expect(summary({ ...report, encoded: [] }).split('\n').filter((l) => l.includes('.trackshift/'))).toEqual([]);
  });
});
