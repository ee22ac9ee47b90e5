/**
 * The capability mapping: what a destination cannot hold natively (`Destination.holds`) goes
 * into the `.trackshift/` encoding (connectors/encoding/format.ts, docs/encoding.md), which the
 * same family's readers undo. Decided from `holds` alone, so a new destination needs no change
 * here; deterministic (the same run gives the same encoding) and reversible. For a destination
 * that holds everything the mapping is the identity: no manifest, no tag.
 *
 * Sidecars are staged in a temporary file (the destination's artifact writers want a size),
 * removed once written or when the series fails; memory stays one page per series. A natively
 * written series only turns out to need a sidecar once a point says so: it is then read from
 * the source a second time, so the common case (MLflow to MLflow) never touches the disk.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ArtifactFile, ForkPoint, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../model/index.js';
import { pointToLine, seriesFilePath } from '../model/json.js';
import type { DestinationHolds } from '../connectors/types.js';
import { ENCODED_TAG, isReservedArtifact, MANIFEST_PATH, manifestToJson, seriesFileArtifact, sidecarArtifact, sidecarName, type Manifest, type ManifestSeries } from '../connectors/encoding/format.js';
import { quoted } from '../util/paths.js';

/** What was encoded for one run, and how (the report's `encoded`). */
export interface EncodedRun {
  sourceId: string;
  destinationId: string;
  how: string[];
}

/** What the encoder needs of the transfer: writing into the run's artifacts, with its retries. */
export interface EncodingIo {
  /** writes `open()`'s bytes (exactly `size` of them) as the artifact `path` of the run */
  writeArtifact(path: string, open: () => Readable, size: number): Promise<void>;
  /** copies the file of a file series' point from the source into the run's artifact `path` */
  copySeriesFile(file: SeriesFile, path: string): Promise<void>;
  /** points moved (progress) */
  points(count: number): void;
}

type AnyPoint = MetricPoint | TypedPoint;

/** the integer steps every store with integer steps holds exactly (MLflow's are int64; JSON clients read doubles) */
const MIN_STEP = Number.MIN_SAFE_INTEGER;
const MAX_STEP = Number.MAX_SAFE_INTEGER;
const HASH_LENGTH = 10;
/** characters of a param written only to show typed config: plain ones, which every MLflow store takes as a key */
const VIEW_SEGMENT = /^[A-Za-z0-9_.: -]+$/;

const hashOf = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, HASH_LENGTH);
/** length in characters (code points), as the destinations count them */
const chars = (text: string) => [...text].length;
const cut = (text: string, max: number) => [...text].slice(0, max).join('');
const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

/** A key that fits `max`: cut, with a hash of the whole key so that two long keys stay apart. */
export function fitKey(key: string, max: number | undefined): string {
  if (max === undefined || chars(key) <= max) return key;
  return `${cut(key, Math.max(0, max - HASH_LENGTH - 1))}~${hashOf(key)}`;
}

/** A typed config value as a string param shows it. */
function viewValue(value: TypedValue): string {
  switch (value.type) {
    case 'string':
      return value.value;
    case 'datetime':
      return Number.isFinite(value.value) ? new Date(value.value).toISOString() : String(value.value);
    case 'stringSet':
      return JSON.stringify(value.value);
    default:
      return String(value.value);
  }
}

/** How a natively written series is read back without the encoding. */
function naturalSystem(holds: DestinationHolds, series: SeriesInfo, nativeKey: string): boolean | undefined {
  if (holds.systemSeries === true) return series.system;
  if (holds.systemSeries === false) return undefined;
  return nativeKey.startsWith(holds.systemSeries.prefix) ? true : undefined;
}

/** Counts of what one series' points needed. */
interface PointCounts {
  /** left out natively: the destination refuses them (`holds.pointRules`) */
  refused: number;
  fractional: number;
  clamped: number;
  noTimestamp: number;
  epochs: number;
  contexts: number;
}

/** A series written natively: its points mapped to what the destination holds, the exact ones kept as a sidecar when needed. */
export class NativeSeries {
  readonly counts: PointCounts = { refused: 0, fractional: 0, clamped: 0, noTimestamp: 0, epochs: 0, contexts: 0 };
  points = 0;
  /** the last point written natively, for `pointRules` */
  private last: { step: number; timestamp?: number } | undefined;

  constructor(
    private readonly encoder: RunEncoder,
    private readonly index: number,
    /** the series as the destination is given it (its native key) */
    readonly info: SeriesInfo,
    private readonly original: SeriesInfo,
  ) {}

  /** The page as the destination can hold it (what it changes is counted, for `finish`). */
  map<P extends AnyPoint>(page: P[]): P[] {
    const { holds, defaultTimestamp } = this.encoder;
    const exact = !this.encoder.pointsLossy;
    this.points += page.length;
    const key = this.info.key;
    const renamed = this.original.type === 'float' && key !== this.original.key;
    if (holds.pointRules) page = page.filter((point) => this.accepted(point));
    if (exact && !renamed) return page;
    const { counts } = this;
    return page.map((point) => {
      const step = holds.fractionalSteps ? point.step : Math.min(MAX_STEP, Math.max(MIN_STEP, Math.floor(point.step)));
      const noTimestamp = point.timestamp === undefined && !holds.pointsWithoutTimestamp;
      const epoch = point.epoch !== undefined && !holds.epochs;
      const context = point.context !== undefined && !holds.contexts;
      if (!renamed && step === point.step && !noTimestamp && !epoch && !context) return point; // held exactly: as it is
      const p = { ...point } as P & { key?: string };
      if (renamed) p.key = key;
      if (step !== point.step) {
        if (Number.isInteger(point.step)) counts.clamped++;
        else counts.fractional++;
        p.step = step;
      }
      if (noTimestamp) {
        counts.noTimestamp++;
        p.timestamp = defaultTimestamp;
      }
      if (epoch) {
        counts.epochs++;
        delete p.epoch;
      }
      if (context) {
        counts.contexts++;
        delete p.context;
      }
      return p;
    });
  }

  /** Whether the destination takes the point natively (`holds.pointRules`); counts those it refuses. */
  private accepted(point: AnyPoint): boolean {
    const { holds, defaultTimestamp } = this.encoder;
    const rules = holds.pointRules!;
    const last = this.last;
    // judged by the time it is written at: one without gets the run's start, which may go back
    const timestamp = point.timestamp ?? (holds.pointsWithoutTimestamp ? undefined : defaultTimestamp);
    const refused =
      (rules.finiteValues === true && typeof point.value === 'number' && !Number.isFinite(point.value)) ||
      (rules.minStep !== undefined && point.step < rules.minStep) ||
      (rules.maxStep !== undefined && point.step >= rules.maxStep) ||
      (rules.stepDecimals !== undefined && Number(point.step.toFixed(rules.stepDecimals)) !== point.step) ||
      (rules.increasingSteps === true && last !== undefined && point.step <= last.step) ||
      (rules.nonDecreasingTimestamps === true && last?.timestamp !== undefined && timestamp !== undefined && timestamp < last.timestamp);
    if (refused) this.counts.refused++;
    else this.last = { step: point.step, ...(timestamp !== undefined ? { timestamp } : {}) };
    return !refused;
  }

  private get approximated(): boolean {
    const c = this.counts;
    return c.refused + c.fractional + c.clamped + c.noTimestamp + c.epochs + c.contexts > 0;
  }

  /**
   * When a point was not held exactly, writes the exact points (`reread`: the series read from
   * the source again) as a sidecar; records the series in the manifest.
   */
  async finish(io: EncodingIo, reread: () => AsyncIterable<AnyPoint[]>): Promise<void> {
    let file: string | undefined;
    if (this.approximated) {
      file = sidecarName(this.index);
      const staged = await this.encoder.stage();
      try {
        for await (const page of reread()) await staged.write(page.map((p) => pointToLine(this.original.type, p)));
        await staged.upload(io, sidecarArtifact(file));
      } finally {
        await staged.remove();
      }
    }
    this.encoder.recordNative(this.original, this.info, this.points, file, this.counts);
  }
}

/** A sidecar being written to a temporary file. */
class Staged {
  private bytes = 0;
  private constructor(
    private readonly path: string,
    private readonly out: WriteStream,
  ) {}

  static async open(path: string): Promise<Staged> {
    const out = createWriteStream(path);
    out.on('error', () => undefined); // surfaced by the write or end that meets it
    await once(out, 'open');
    return new Staged(path, out);
  }

  async write(lines: string[]): Promise<void> {
    for (const line of lines) {
      const text = `${line}\n`;
      this.bytes += Buffer.byteLength(text);
      if (!this.out.write(text)) await once(this.out, 'drain');
    }
  }

  async upload(io: EncodingIo, artifact: string): Promise<void> {
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const size = (await stat(this.path)).size;
    if (size !== this.bytes) throw new Error(`staged sidecar ${this.path}: ${size} bytes on disk, ${this.bytes} written`);
    await io.writeArtifact(artifact, () => createReadStream(this.path), size);
  }

  async remove(): Promise<void> {
    // ended, not destroyed: writes still queued would fail on a destroyed stream
    if (!this.out.writableEnded) await new Promise<void>((resolve) => this.out.end(() => resolve()));
    await rm(this.path, { force: true });
  }
}

/**
 * The encoding of one run into one destination: built before the run is created, fed while its
 * series stream, finished (manifest and tag) before the run is marked complete.
 */
export class RunEncoder {
  /** a point without a timestamp is written at the run's start (or 0) where one is required */
  readonly defaultTimestamp: number;
  /** some point property the destination cannot hold: every native series is staged */
  readonly pointsLossy: boolean;
  private readonly nativeKeys = new Map<string, string>();
  private readonly viewParams: Array<{ key: string; value: string }> = [];
  private readonly entries = new Map<string, ManifestSeries>();
  private readonly how: string[] = [];
  private needed = false;
  private readonly reserved: string[] = [];

  constructor(
    private readonly run: Run,
    readonly holds: DestinationHolds,
    /** the fork with the destination's id of its parent (transfer.ts resolves it) */
    private readonly fork: ForkPoint | undefined,
  ) {
    this.defaultTimestamp = run.startTime ?? 0;
    this.pointsLossy = !holds.fractionalSteps || !holds.pointsWithoutTimestamp || !holds.epochs || !holds.contexts;
    this.allocateKeys();
    this.chooseViewParams();
  }

  /** Whether the series is written natively (its type is held), or only as a sidecar. */
  isNative(series: SeriesInfo): boolean {
    return this.holds.seriesTypes.includes(series.type);
  }

  /** Native keys: a system prefix added, too long keys cut; a key never lands on another series' key. */
  private allocateKeys(): void {
    const { holds } = this;
    const native = this.run.series.filter((s) => this.isNative(s));
    const wanted = (s: SeriesInfo) => {
      const prefix = typeof holds.systemSeries === 'object' && s.system && !s.key.startsWith(holds.systemSeries.prefix) ? holds.systemSeries.prefix : '';
      return fitKey(prefix + s.key, holds.maxKeyLength);
    };
    const taken = new Set<string>();
    // series that keep their key first, so that a changed key never displaces an unchanged one
    for (const s of native) if (wanted(s) === s.key) taken.add(s.key);
    for (const s of native) {
      let key = wanted(s);
      if (key !== s.key) {
        for (let n = 0; taken.has(key); n++) key = fitKey(`${wanted(s)}~${hashOf(s.key)}${n > 0 ? `~${n}` : ''}`, holds.maxKeyLength);
        taken.add(key);
      }
      this.nativeKeys.set(s.key, key);
    }
  }

  /** Typed config the destination cannot hold is shown as string params, where that takes no one's place. */
  private chooseViewParams(): void {
    const { config } = this.run;
    if (!config || this.holds.typedConfig) return;
    const taken = new Set(Object.keys(this.run.params));
    for (const entry of config) {
      const key = entry.path.join('/');
      const value = viewValue(entry.value);
      if (taken.has(key) || !entry.path.every((s) => VIEW_SEGMENT.test(s) && s !== '.' && s !== '..')) continue;
      if (this.holds.maxKeyLength !== undefined && chars(key) > this.holds.maxKeyLength) continue;
      if (this.holds.maxParamValueLength !== undefined && chars(value) > this.holds.maxParamValueLength) continue;
      taken.add(key);
      this.viewParams.push({ key, value });
    }
  }

  /** The run as `createRun` gets it: series under their native keys, and only what the destination holds. */
  createdRun(run: Run): Run {
    const { holds } = this;
    const tags = { ...run.tags };
    delete tags[ENCODED_TAG]; // set again at the end, only with a manifest
    const series = run.series.filter((s) => this.isNative(s)).map((s) => this.nativeInfo(s));
    const created: Run = { ...run, tags, series };
    const held = { config: holds.typedConfig, summary: holds.summaries, fork: holds.forks, group: holds.groups, sourceState: holds.sourceStates };
    for (const [field, keep] of Object.entries(held)) if (!keep) delete created[field as keyof typeof held];
    if (holds.forks && this.fork) created.fork = this.fork;
    return created;
  }

  private nativeInfo(s: SeriesInfo): SeriesInfo {
    const key = this.nativeKeys.get(s.key) ?? s.key;
    const system = naturalSystem(this.holds, s, key);
    return { key, type: s.type, ...(system !== undefined ? { system } : {}) };
  }

  /** The params to write: the run's own, and the views of its typed config. */
  params(): Array<{ key: string; value: string }> {
    return [...Object.entries(this.run.params).map(([key, value]) => ({ key, value })), ...this.viewParams];
  }

  /** A natively written series, to feed page by page and finish. */
  nativeSeries(series: SeriesInfo): NativeSeries {
    return new NativeSeries(this, this.indexOf(series), this.nativeInfo(series), series);
  }

  private indexOf(series: SeriesInfo): number {
    const index = this.run.series.findIndex((s) => s.key === series.key);
    if (index < 0) throw new Error(`series "${series.key}" is not listed on run ${this.run.id}`);
    return index;
  }

  /** A temporary file for a sidecar (its owner removes it, whatever happens). */
  async stage(): Promise<Staged> {
    return Staged.open(join(tmpdir(), `trackshift-sidecar-${process.pid}-${randomUUID()}.jsonl`));
  }

  recordNative(original: SeriesInfo, info: SeriesInfo, points: number, file: string | undefined, counts: PointCounts): void {
    const entry: ManifestSeries = { ...original, ...(points > 0 ? { native: info.key } : {}), ...(file ? { file } : {}) };
    this.entries.set(original.key, entry);
    const name = quoted(original.key);
    const unlisted = points === 0 && !this.holds.emptySeries;
    if (file || unlisted || info.key !== original.key || info.system !== original.system) this.needed = true;
    const sidecar = file && sidecarArtifact(file);
    if (counts.refused) this.how.push(`${plural(counts.refused, 'point')} of ${name} the destination refuses (a non-finite value, a step out of its range, finer than it keeps or not above the one before, a timestamp going back): left out of the native series, exact points in the sidecar ${sidecar}`);
    if (counts.fractional) this.how.push(`${plural(counts.fractional, 'fractional step')} in ${name}: integer steps written, exact steps in the sidecar ${sidecar}`);
    if (counts.clamped) this.how.push(`${plural(counts.clamped, 'step')} of ${name} beyond ±${MAX_STEP}: clamped, exact steps in the sidecar ${sidecar}`);
    if (counts.noTimestamp) this.how.push(`${plural(counts.noTimestamp, 'point')} of ${name} without a timestamp: written at ${this.run.startTime !== undefined ? "the run's start time" : '0'}, exact points in the sidecar ${sidecar}`);
    if (counts.epochs) this.how.push(`${plural(counts.epochs, 'point')} of ${name} with an epoch: written without it, exact points in the sidecar ${sidecar}`);
    if (counts.contexts) this.how.push(`${plural(counts.contexts, 'point')} of ${name} with a context: written without it, exact points in the sidecar ${sidecar}`);
    if (points === 0) this.how.push(`series ${name} has no points: listed in ${MANIFEST_PATH}`);
    if (info.key !== original.key) {
      const why = chars(original.key) > (this.holds.maxKeyLength ?? Infinity) ? ` (${chars(original.key)} characters; the destination takes ${this.holds.maxKeyLength})` : original.system ? ' (a system series)' : '';
      this.how.push(`series ${name} written as ${quoted(info.key)}${why}`);
    } else if (original.system) {
      if (!info.system) this.how.push(`system series ${name} written as a series (the destination does not mark system series): marked in ${MANIFEST_PATH}`);
    } else if (info.system) {
      this.how.push(`series ${name} is no system series, though its key says so to the destination: marked in ${MANIFEST_PATH}`);
    } else if (info.system !== original.system) {
      this.how.push(`series ${name} is marked "system: false": kept in ${MANIFEST_PATH}`);
    }
  }

  /**
   * A series the destination holds no type for: its exact points as a sidecar, and a file
   * series' files under `.trackshift/files/`.
   */
  async encodeSeries(series: SeriesInfo, pages: AsyncIterable<AnyPoint[]>, io: EncodingIo): Promise<number> {
    const index = this.indexOf(series);
    const staged = await this.stage();
    let points = 0;
    try {
      for await (const page of pages) {
        if (series.type === 'file') {
          for (const point of page as TypedPoint[]) {
            const file = point.value as SeriesFile;
            const valid = seriesFilePath.safeParse(file.path);
            if (!valid.success) throw new Error(`series ${quoted(series.key)} names the file ${quoted(String(file.path))}: ${valid.error.issues[0]?.message ?? 'not a safe path'}`);
            await io.copySeriesFile(file, seriesFileArtifact(file.path));
          }
        }
        await staged.write(page.map((p) => pointToLine(series.type, p)));
        points += page.length;
        io.points(page.length);
      }
      const file = sidecarName(index);
      await staged.upload(io, sidecarArtifact(file));
      this.entries.set(series.key, { ...series, file });
      this.needed = true;
      const files = series.type === 'file' ? `, its files under ${seriesFileArtifact('')}` : '';
      this.how.push(`${series.type} series ${quoted(series.key)} (${plural(points, 'point')}) kept as ${sidecarArtifact(file)}${files}`);
    } finally {
      await staged.remove();
    }
    return points;
  }

  /** The run's artifacts as listed, watched for paths the encoding owns. */
  async *watchArtifacts(files: AsyncIterable<ArtifactFile>): AsyncIterable<ArtifactFile> {
    for await (const file of files) {
      if (isReservedArtifact(file.path)) this.reserved.push(file.path);
      yield file;
    }
  }

  /**
   * Writes the manifest and sets the tag when anything was encoded, before the run is marked
   * complete; returns the tag to set and what was done (undefined: nothing was encoded).
   */
  async finish(io: EncodingIo): Promise<{ tags: Array<{ key: string; value: string }>; how: string[] } | undefined> {
    const { run, holds } = this;
    const manifest: Manifest = { series: run.series.map((s) => this.entries.get(s.key) ?? { ...s }) };
    const kept = (what: string) => this.how.push(`${what} kept in ${MANIFEST_PATH}`);
    const separator = holds.configPathSeparator;
    const joined = separator !== undefined && run.config?.find((entry) => entry.path.some((segment) => segment.includes(separator)));
    if (run.config !== undefined && holds.typedConfig && joined) {
      // written as it can be (the paths joined); read back from here
      manifest.config = run.config;
      kept(`typed config (the key ${quoted(joined.path.join(' › '))} holds "${separator}", which paths here are joined with)`);
    } else if (run.config !== undefined && !holds.typedConfig) {
      manifest.config = run.config;
      if (this.viewParams.length > 0) manifest.viewParams = this.viewParams.map((p) => p.key);
      const shown = this.viewParams.length;
      kept(`typed config (${plural(run.config.length, 'entry', 'entries')}; ${shown === run.config.length ? 'each' : `${shown} of them`} also written as a string param for viewing)`);
    }
    if (run.summary !== undefined && !holds.summaries) {
      manifest.summary = run.summary;
      kept(`summary (${plural(run.summary.length, 'entry', 'entries')})`);
    }
    if (this.fork && !holds.forks) {
      manifest.fork = this.fork;
      kept(`fork (from run ${this.fork.runId}${this.fork.step !== undefined ? ` at step ${this.fork.step}` : ''})`);
    }
    if (run.group !== undefined && !holds.groups) {
      manifest.group = run.group;
      kept(`group ${quoted(run.group)}`);
    }
    if (run.sourceState !== undefined && !holds.sourceStates) {
      manifest.sourceState = run.sourceState;
      kept(`source state ${quoted(run.sourceState)}`);
    }
    const needed = this.needed || manifest.config || manifest.summary || manifest.fork || manifest.group !== undefined || manifest.sourceState !== undefined;
    if (!needed) return undefined;
    if (this.reserved.length > 0) {
      throw new Error(
        `its artifact ${quoted(this.reserved[0]!)} is in ${ENCODED_FOLDER_NOTE}, which the destination needs for what it cannot hold natively; rename that artifact in the source`,
      );
    }
    const bytes = Buffer.from(manifestToJson(manifest));
    await io.writeArtifact(MANIFEST_PATH, () => Readable.from([bytes]), bytes.length);
    return { tags: [{ key: ENCODED_TAG, value: '1' }], how: this.how };
  }

}

const ENCODED_FOLDER_NOTE = 'the reserved folder .trackshift/ (run.json, series/, files/)';
