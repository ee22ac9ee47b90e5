/**
 * A run's series, copied: float series (metrics) several keys at a time into batches that fit
 * the destination, the other types one after another page by page; what the destination does
 * not hold goes through the run's encoder (encoding.ts) into the `.trackshift/` encoding.
 */
import type { Readable } from 'node:stream';
import type { ArtifactFile, MetricPoint, Run, SeriesFile, SeriesInfo, TypedPoint } from '../model/index.js';
import type { Destination, Source } from '../connectors/types.js';
import type { AdaptiveLimit } from './adaptive-limit.js';
import { MetricBatcher } from './batching.js';
import type { NativeSeries, RunEncoder, EncodingIo } from './encoding.js';
import type { TransferEvent } from './events.js';
import { oneFile, type FileCopier } from './file-copy.js';
import type { PointBudget } from './point-budget.js';

/** metric keys of one run read (and written) at once */
export const METRIC_READERS = 4;

/** What the transfer shares with every run's series copy: the ends, the limits, the file copier. */
export interface SeriesCopyContext {
  source: Source;
  destination: Destination;
  /** metric batches written at once, across all runs */
  metricWrites: AdaptiveLimit;
  /** history pages read at once, across all runs */
  metricReads: AdaptiveLimit;
  /** metric points held at once, across all runs */
  points: PointBudget;
  files: FileCopier;
  emit(event: TransferEvent): void;
}

export class SeriesCopy {
  /** how the encoding writes into the run: through the file copier, so with its limit and retries */
  readonly io: EncodingIo;

  constructor(
    private readonly context: SeriesCopyContext,
    private readonly run: Run,
    private readonly runId: string,
    private readonly encoder: RunEncoder,
  ) {
    const { source, destination, files, emit } = context;
    const write = (file: ArtifactFile, body: Readable) => destination.writeArtifact(runId, file, body);
    this.io = {
      writeArtifact: async (path, open, size) => {
        await files.copy(oneFile({ path, size }), async () => open(), write);
      },
      copySeriesFile: async (file, path) => {
        if (!source.readSeriesFile) throw new Error(`${source.uri} cannot read the files of file series`);
        await files.copy(oneFile({ ...file, path }), () => source.readSeriesFile!(run, file.path), write);
      },
      points: (count) => emit({ type: 'points', count }),
    };
  }

  /** Every series of the run; returns the points copied. */
  async copyAll(): Promise<number> {
    return (await this.copyMetrics()) + (await this.copyTypedSeries());
  }

  /**
   * The float series held natively, several keys at a time: each reader takes the next key,
   * streams its pages into its own batcher and awaits its own writes, so a key's points keep
   * their order and no two writes of one run touch the same key at once. Each reader holds what
   * it took from the transfer's point budget: the page in hand and its partial batch.
   */
  private async copyMetrics(): Promise<number> {
    const { source, destination, metricWrites, metricReads, points, emit } = this.context;
    const { run, runId, encoder } = this;
    let count = 0;
    const keys = run.series.filter((s) => s.type === 'float' && encoder.isNative(s));
    const reader = async () => {
      const batcher = new MetricBatcher(destination.limits);
      let holding = 0;
      let nextPage = points.pageGuess;
      /** gives back all but the partial batch */
      const release = () => {
        points.give(holding - batcher.pending);
        holding = batcher.pending;
      };
      const write = async (metrics: MetricPoint[]) => {
        await metricWrites.run(metrics.length, () => destination.writeBatch(runId, { params: [], tags: [], metrics }));
        count += metrics.length;
        emit({ type: 'points', count: metrics.length });
      };
      const flush = async () => {
        const rest = batcher.flush();
        if (rest) await write(rest);
        release();
      };
      try {
        for (let series = keys.shift(); series !== undefined; series = keys.shift()) {
          const pages = source.readMetric(run, series.key)[Symbol.asyncIterator]();
          const native = encoder.nativeSeries(series);
          try {
            for (;;) {
              // waiting for the budget while holding a partial batch could deadlock: write it first
              if (!points.tryTake(nextPage)) {
                await flush();
                await points.take(nextPage);
              }
              holding += nextPage;
              const page = await metricReads.run((r) => (r.done ? 0 : r.value.length), () => pages.next());
              if (page.done) break;
              const size = page.value.length;
              // what was asked for was a guess: the page's real size is held
              if (size > nextPage) points.force(size - nextPage);
              else points.give(nextPage - size);
              holding += size - nextPage;
              nextPage = points.pageGuess = Math.max(1, size);
              for (const full of batcher.add(native.map(page.value))) await write(full);
              release();
            }
            release();
            await native.finish(this.io, () => this.readSeries(series));
          } finally {
            await pages.return?.(); // a failed write: let the source release its connection or file
          }
        }
        await flush();
      } finally {
        points.give(holding);
      }
    };
    await Promise.all(Array.from({ length: Math.min(METRIC_READERS, keys.length) }, reader));
    return count;
  }

  /**
   * The string, file and histogram series, one after another, page by page; a file series'
   * files are written before the page that names them, so a page never points at a missing file.
   * A series of a type the destination does not hold goes into the encoding instead.
   */
  private async copyTypedSeries(): Promise<number> {
    const { destination } = this.context;
    let count = 0;
    for (const series of this.run.series) {
      if (series.type === 'float' && this.encoder.isNative(series)) continue;
      const pages = this.readSeries(series);
      if (!this.encoder.isNative(series)) {
        count += await this.encoder.encodeSeries(series, pages, this.io);
        continue;
      }
      if (!destination.writeSeries) throw new Error(`${destination.uri} cannot write the ${series.type} series "${series.key}"`);
      const native = this.encoder.nativeSeries(series);
      count += await this.copyNativeSeries(native, pages);
      await native.finish(this.io, () => this.readSeries(series));
    }
    return count;
  }

  /** The pages of any series of the run. */
  private readSeries(series: SeriesInfo): AsyncIterable<MetricPoint[] | TypedPoint[]> {
    const { source } = this.context;
    if (series.type === 'float') return source.readMetric(this.run, series.key);
    if (!source.readSeries) throw new Error(`${source.uri} lists the ${series.type} series "${series.key}" but cannot read it`);
    return source.readSeries(this.run, series);
  }

  private async copyNativeSeries(native: NativeSeries, pages: AsyncIterable<MetricPoint[] | TypedPoint[]>): Promise<number> {
    const { source, destination, files, emit } = this.context;
    const { run, runId } = this;
    const series = native.info;
    let count = 0;
    for await (const read of pages) {
      const page = native.map(read as TypedPoint[]);
      if (series.type === 'file') {
        // every point's file, also of points the destination refuses natively: the encoding's sidecar names them
        for (const point of read as TypedPoint[]) {
          const file = point.value as SeriesFile;
          if (!source.readSeriesFile || !destination.writeSeriesFile) throw new Error(`the files of series "${series.key}" cannot be copied from ${source.uri} into ${destination.uri}`);
          await files.copy(oneFile(file), () => source.readSeriesFile!(run, file.path), (f, body) => destination.writeSeriesFile!(runId, { ...file, ...(f.size !== undefined ? { size: f.size } : {}) }, body));
        }
      }
      await destination.writeSeries!(runId, series, page);
      count += page.length;
      emit({ type: 'points', count: page.length });
    }
    return count;
  }
}
