/**
 * What a person sees: a progress bar on a terminal (cli-progress: runs done of planned, metric
 * points and bytes per second, an ETA) with warnings and failures printed as lines above it;
 * plain log lines otherwise; and a closing summary. Everything goes to stderr except the
 * summary/JSON, so that stdout stays parseable.
 */
import cliProgress from 'cli-progress';
import type { TransferEvent } from '../engine/events.js';
import type { Report } from '../engine/job.js';
import { describeRetries } from '../util/retry.js';

/** a retry is logged at most this often (plain lines): enough to see it happening, never per call */
const RETRY_LOG_INTERVAL_MS = 10_000;

/** 1234567 → "1.2 MB" */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export class ProgressPrinter {
  private planned = 0;
  private done = 0;
  private points = 0;
  private bytes = 0;
  private startedAt = 0;
  private retries = 0;
  private lastRetryLog = 0;
  private readonly tty: boolean;
  private bar?: cliProgress.SingleBar;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly quiet = false,
  ) {
    this.tty = Boolean(out.isTTY) && !quiet;
  }

  onEvent = (event: TransferEvent): void => {
    if (this.quiet) return;
    switch (event.type) {
      case 'planned':
        this.planned = event.runs;
        this.done = 0;
        this.line(`planned ${event.runs} run(s) in ${event.experiments} experiment(s)${event.versions ? `, ${event.versions} model version(s)` : ''}`);
        this.startBar();
        break;
      case 'logged-model':
        if (!this.tty) this.line(`${event.copied ? 'copied' : 'skipped'} logged model ${event.sourceId} → ${event.destinationId}`);
        break;
      case 'model':
        this.line(`model "${event.name}" → "${event.destinationName}": ${event.copied} version(s) copied, ${event.skipped} already there${event.failed ? `, ${event.failed} failed` : ''}`);
        break;
      case 'experiment':
        this.line(`experiment "${event.name}" → ${event.destinationId}`);
        break;
      case 'run-copied':
        this.done++;
        if (!this.tty) this.line(`copied run ${event.sourceId} → ${event.destinationId} (${event.points} points, ${event.artifacts} artifacts)${urlsOf(event)}`);
        break;
      case 'run-skipped':
        this.done++;
        if (!this.tty) this.line(`skipped run ${event.sourceId}: ${event.reason}${urlsOf(event)}`);
        break;
      case 'run-verified':
        this.done++;
        if (!this.tty) this.line(`verified run ${event.sourceId}: ${event.equal ? 'equal' : 'DIFFERENT'}`);
        break;
      case 'run-failed':
        this.done++;
        this.line(`FAILED run ${event.sourceId}: ${event.reason}`);
        break;
      case 'warning':
        this.line(`warning: ${event.object}: ${event.message}`);
        break;
      case 'note':
        this.line(`${event.object}: ${event.message}`);
        break;
      case 'points':
        this.points += event.count;
        break;
      case 'bytes':
        this.bytes += event.count;
        break;
      case 'retry': {
        this.retries++;
        const now = Date.now();
        if (now - this.lastRetryLog >= RETRY_LOG_INTERVAL_MS) {
          this.lastRetryLog = now;
          this.line(`retrying: ${event.side} answered ${event.kind} (${this.retries} retr${this.retries === 1 ? 'y' : 'ies'} so far)`);
        }
        break;
      }
      default:
        break;
    }
    this.bar?.update(this.done, this.rates());
  };

  private startBar(): void {
    if (!this.tty) return;
    this.startedAt = Date.now();
    this.points = 0;
    this.bytes = 0;
    if (this.bar) {
      // a second phase (copy --verify): the same bar counts again
      this.bar.setTotal(this.planned);
      this.bar.update(0, this.rates());
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.out,
        format: '{bar} {value}/{total} runs | {pointsRate} points/s | {bytesRate}/s | ETA {eta_formatted}',
        barsize: 24,
        etaBuffer: 20,
        etaAsynchronousUpdate: true, // the ETA moves while a long run is copied, not only when one ends
        clearOnComplete: true,
        // the terminal's modes stay as they are (a second Ctrl-C exits without restoring them); the bar is cut to its width
        hideCursor: false,
        linewrap: true,
        // before the first run ends there is no rate: "…" rather than cli-progress's INF/NULL
        formatTime: (t, options, round) => (typeof t === 'number' && Number.isFinite(t) ? cliProgress.Format.TimeFormat(t, options, round) : '…'),
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(this.planned, 0, this.rates());
  }

  private rates(): { pointsRate: string; bytesRate: string } {
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    return { pointsRate: Math.round(this.points / seconds).toLocaleString('en-US'), bytesRate: formatBytes(this.bytes / seconds) };
  }

  /** A line of its own; on a terminal above the bar, which is drawn again under it. */
  private line(text: string): void {
    if (this.bar) this.out.write('\r\x1b[K');
    this.out.write(text + '\n');
    this.bar?.render();
  }

  /** Removes the bar (and its timer, which would keep the process alive). */
  finish(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

const n = (value: number) => value.toLocaleString('en-US');

export function summary(report: Report): string {
  const lines: string[] = [];
  const seconds = (report.durationMs / 1000).toFixed(1);
  lines.push(`${report.command}: ${report.source} → ${report.destination}`);
  if (report.dryRun) {
    lines.push(`dry run: nothing was written. ${n(report.planned.runs)} run(s) in ${report.planned.experiments} experiment(s) planned:`);
    for (const item of report.dryRun) lines.push(`  ${item.action.padEnd(4)}  ${item.experiment} / ${item.name ?? ''} (${item.run})`);
    if (report.dryRunModels?.length) lines.push(`${n(report.planned.versions)} model version(s) in ${report.planned.models} model(s) planned:`);
    for (const item of report.dryRunModels ?? []) lines.push(`  ${item.action.padEnd(4)}  model ${item.model} version ${item.version} → ${item.destinationModel}`);
    return lines.join('\n');
  }
  const failedRuns = report.failed.filter((f) => f.type === 'run').length;
  lines.push(
    `planned ${n(report.planned.runs)} run(s) in ${report.planned.experiments} experiment(s); ` +
      `copied ${n(report.copied.runs)}, skipped ${n(report.skipped.runs)} (already there), failed ${n(failedRuns)}`,
  );
  if (report.planned.models > 0 || report.copied.loggedModels + report.skipped.loggedModels > 0) {
    const failedVersions = report.failed.filter((f) => f.type === 'version').length;
    lines.push(
      `planned ${n(report.planned.versions)} version(s) of ${report.planned.models} registered model(s); ` +
        `copied ${n(report.copied.versions)}, skipped ${n(report.skipped.versions)}, failed ${n(failedVersions)}; ` +
        `logged models copied ${n(report.copied.loggedModels)}, skipped ${n(report.skipped.loggedModels)}`,
    );
    for (const model of report.models) {
      const moved = Object.entries(model.versions).filter(([from, to]) => from !== to);
      if (model.model !== model.destinationModel || moved.length > 0) {
        lines.push(`  model ${model.model} → ${model.destinationModel}${moved.length ? `: versions ${moved.map(([a, b]) => `${a}→${b}`).join(', ')}` : ''}`);
      }
    }
  }
  if (report.interrupted) {
    lines.push(
      `INTERRUPTED: ${n(report.runsNotStarted ?? 0)} run(s) not started, ${n(report.runsAbandoned ?? 0)} cut off part way (discarded); ` +
        'run the same command again to copy the rest',
    );
  }
  lines.push(`moved ${n(report.copied.metricPoints)} metric points, ${n(report.copied.artifacts)} artifact files (${n(report.copied.artifactBytes)} bytes) in ${seconds}s`);
  lines.push(...describeRetries(report.retries));
  const encoded = report.encoded ?? [];
  if (encoded.length > 0) {
    lines.push(
      `${n(encoded.length)} run(s) hold what the destination cannot hold natively: kept in each run's .trackshift/ encoding, which trackshift reads back ` +
        '(docs/encoding.md; what and how, run by run: "encoded" in --report FILE)',
    );
  }
  for (const failure of report.failed) lines.push(`  failed ${failure.type} ${failure.sourceId}${failure.name ? ` (${failure.name})` : ''}: ${failure.reason}`);
  if (report.warnings.length > 0) lines.push(`${report.warnings.length} warning(s):`);
  for (const warning of report.warnings) lines.push(`  ${warning.object}: ${warning.message}`);
  lines.push(`id map: ${report.idMapFile}`);
  return lines.join('\n');
}

/** `: <source url> → <destination url>` when either end has a web app (seed 001's log has both) */
function urlsOf(event: { sourceUrl?: string; destinationUrl?: string }): string {
  if (event.sourceUrl === undefined && event.destinationUrl === undefined) return '';
  return ` — ${event.sourceUrl ?? '(no URL)'} → ${event.destinationUrl ?? '(no URL)'}`;
}
