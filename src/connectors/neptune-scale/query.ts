/**
 * The reading side of the Neptune 3.x API, as neptune-query 1.8 calls it (docs/neptune-server-api.md
 * §4): the runs a project (or an NQL query) holds; every attribute of some runs, with its value;
 * one page of a series — float series by `afterStep`, string, histogram and file series by
 * `searchAfter` token, both newest first, a run's own points only (lineage NONE); and a file's
 * bytes through a signed URL. Answers are checked at the boundary: JSON by zod (in api.ts),
 * protobuf by decoding it (a message that does not decode is named) and by the checks below.
 */
import type { Readable } from 'node:stream';
import { InvalidInputError, UsageError } from '../../util/errors.js';
import { HttpError } from '../../util/http.js';
import type { RetryContext, Side } from '../../util/retry.js';
import { SignedUrlClient, showUrl } from '../../util/signed-url.js';
import type { NeptuneScaleApi, ProtoAttribute } from './api.js';

const MODEL = 'neptune.api.v1.model.';
/** runs a search page holds, and attributes a page of values holds (neptune-query's batch sizes) */
const SEARCH_PAGE = 10_000;
const VALUES_PAGE = 10_000;
/** how often a file is signed again when storage says its URL has expired (neptune-query's tries) */
const SIGNING_TRIES = 3;

/** The attribute types neptune-query knows (its AttributeFilter's default: every one), as the API names them. */
export const ATTRIBUTE_TYPES = ['float', 'int', 'string', 'bool', 'datetime', 'floatSeries', 'stringSet', 'stringSeries', 'fileRef', 'fileRefSeries', 'histogramSeries'] as const;

export interface ProtoFileRef {
  path: string;
  sizeBytes: bigint;
  mimeType: string;
}
export interface ProtoHistogram {
  type: string;
  edges: number[];
  values: number[];
}

/** neptune.api.v1.model.ProtoAttributeDTO with the properties the reader takes */
export interface QueriedAttribute extends ProtoAttribute {
  intProperties?: { value: bigint };
  floatProperties?: { value: number };
  boolProperties?: { value: boolean };
  datetimeProperties?: { value: bigint };
  stringSetProperties?: { value: string[] };
  fileRefProperties?: ProtoFileRef;
}

/** neptune.api.v1.model.ProtoFloatPointValueDTO */
export interface FloatPoint {
  timestampMillis: bigint;
  step: number;
  value: number;
  isPreview: boolean;
}
/** neptune.api.v1.model.ProtoPointValueDTO */
export interface SeriesPoint {
  timestampMillis: bigint;
  step: number;
  isPreview: boolean;
  object?: { value: { case: 'stringValue'; value: string } | { case: 'histogram'; value: ProtoHistogram } | { case: 'fileRef'; value: ProtoFileRef } | { case: undefined; value?: undefined } };
}

interface SearchResult {
  entries: Array<{ attributes: QueriedAttribute[] }>;
}
interface AttributesResult {
  entries: Array<{ experimentShortId: string; attributes: QueriedAttribute[] }>;
  nextPage?: { nextPageToken?: string };
}
interface FloatSeriesResult {
  series: Array<{ requestId: string; series?: { values: FloatPoint[] } }>;
}
interface SeriesResult {
  /** `series` is a oneof: the deprecated `stringSeries`, which `useDeprecatedStringFields=false` turns off, or `seriesValues` */
  series: Array<{ requestId: string; searchAfter?: { finished: boolean; token: string }; series: { case: 'seriesValues' | 'stringSeries'; value: { values: SeriesPoint[] } } | { case: undefined } }>;
}

/** One search result: a run's Neptune id and the client's id for it. */
export interface FoundRun {
  sysId: string;
  customRunId?: string;
}

const REQUEST_ID = '0';

export class ScaleQuery {
  /** the storage signed URLs point at: no credentials of ours go with them */
  private readonly storage: SignedUrlClient;

  constructor(
    readonly api: NeptuneScaleApi,
    /** `workspace/project` */
    readonly project: string,
    retry: { retry?: RetryContext; side: Side },
  ) {
    this.storage = new SignedUrlClient(undefined, retry.retry, retry.side);
  }

  /** how a run is named in the query API: `workspace/project/SYS-ID` */
  private holder(sysId: string): string {
    return `${this.project}/${sysId}`;
  }

  private where(call: string): string {
    return `${this.api.displayUrl} ${call}`;
  }

  /** The runs of the project, or those `nql` matches, oldest first; offset paging as neptune-query pages. */
  async *searchRuns(nql?: string): AsyncGenerator<FoundRun> {
    for (let offset = 0; ; offset += SEARCH_PAGE) {
      const json = {
        attributeFilters: [{ path: 'sys/custom_run_id' }, { path: 'sys/id' }],
        experimentLeader: false,
        pagination: { limit: SEARCH_PAGE, offset },
        sorting: { sortBy: { name: 'sys/creation_time', type: 'datetime' }, dir: 'ascending' },
        ...(nql ? { query: { query: nql } } : {}),
      };
      let page: SearchResult;
      try {
        page = await this.api.message<SearchResult>(`${MODEL}ProtoLeaderboardEntriesSearchResultDTO`, 'POST', 'api/leaderboard/v1/proto/leaderboard/entries/search/', { query: { projectIdentifier: this.project, type: 'run' }, json });
      } catch (err) {
        if (err instanceof HttpError && err.status === 404) throw this.noProject();
        throw err;
      }
      for (const entry of page.entries) {
        const value = (name: string) => entry.attributes.find((a) => a.name === name)?.stringProperties?.value;
        const sysId = value('sys/id');
        if (!sysId) throw new InvalidInputError(this.where('POST /api/leaderboard/v1/proto/leaderboard/entries/search/'), 'a run was found without its sys/id');
        const customRunId = value('sys/custom_run_id');
        yield { sysId, ...(customRunId ? { customRunId } : {}) };
      }
      if (page.entries.length < SEARCH_PAGE) return;
    }
  }

  /** What a user is told when the project is not there (or the token cannot see it). */
  noProject(): UsageError {
    return new UsageError(`neptune-scale://${this.project}: the Neptune server at ${this.api.displayUrl} has no project ${this.project} (or the token cannot see it)`);
  }

  /**
   * Every attribute of the runs `sysIds`, with its value (series with their last values), by run:
   * neptune-query's values call with an attribute filter that takes every type it knows.
   */
  async attributes(sysIds: string[]): Promise<Map<string, QueriedAttribute[]>> {
    const out = new Map<string, QueriedAttribute[]>(sysIds.map((id) => [id, []]));
    let nextPageToken: string | undefined;
    do {
      const json = {
        experimentIdsFilter: sysIds.map((id) => this.holder(id)),
        attributeNameFilter: {},
        attributeFilter: ATTRIBUTE_TYPES.map((attributeType) => ({ attributeType })),
        nextPage: { limit: VALUES_PAGE, ...(nextPageToken ? { nextPageToken } : {}) },
      };
      const page = await this.api.message<AttributesResult>(`${MODEL}ProtoQueryAttributesResultDTO`, 'POST', 'api/leaderboard/v1/proto/leaderboard/attributes/query', { query: { projectIdentifier: this.project }, json });
      for (const entry of page.entries) {
        const held = out.get(entry.experimentShortId);
        if (!held) throw new InvalidInputError(this.where('POST /api/leaderboard/v1/proto/leaderboard/attributes/query'), `the answer holds run ${entry.experimentShortId}, which was not asked for`);
        held.push(...entry.attributes);
      }
      const next = page.nextPage?.nextPageToken || undefined;
      if (next !== undefined && next === nextPageToken) throw new InvalidInputError(this.where('POST /api/leaderboard/v1/proto/leaderboard/attributes/query'), 'the server gave the same page token twice');
      nextPageToken = page.entries.length > 0 ? next : undefined;
    } while (nextPageToken);
    return out;
  }

  /** The body both series calls take: one series, newest first, the run's own points (no fork parent's). */
  private seriesRequest(sysId: string, attribute: string, extra: object, series: object = {}) {
    return {
      requests: [{ requestId: REQUEST_ID, series: { holder: { identifier: this.holder(sysId), type: 'experiment' }, attribute, lineage: 'NONE', lineageEntityType: 'RUN', ...series }, ...extra }],
      stepRange: { from: null, to: null },
      order: 'descending',
    };
  }

  /** Up to `limit` points of a float series, newest first: those below `afterStep` when given. */
  async floatPage(sysId: string, attribute: string, limit: number, afterStep?: number): Promise<FloatPoint[]> {
    const json = { ...this.seriesRequest(sysId, attribute, afterStep !== undefined ? { afterStep } : {}, { includePreview: false }), perSeriesPointsLimit: limit };
    const call = 'POST /api/leaderboard/v1/proto/attributes/series/float';
    const answer = await this.api.message<FloatSeriesResult>(`${MODEL}ProtoFloatSeriesValuesResponseDTO`, 'POST', call.slice(6), { json });
    const series = answer.series.filter((s) => s.requestId === REQUEST_ID);
    if (series.length > 1 || answer.series.length > series.length) throw new InvalidInputError(this.where(call), `the answer holds series other than the one asked for (${attribute})`);
    const points = series[0]?.series?.values ?? [];
    if (points.length > limit) throw new InvalidInputError(this.where(call), `${points.length} points of ${attribute} where at most ${limit} were asked for`);
    return points;
  }

  /** One page of a string, histogram or file series, newest first, and the token of the next page (none: the last). */
  async seriesPage(sysId: string, attribute: string, token?: string): Promise<{ points: SeriesPoint[]; next?: string }> {
    const json = this.seriesRequest(sysId, attribute, token !== undefined ? { searchAfter: { finished: false, token } } : {});
    const call = 'POST /api/leaderboard/v1/proto/attributes/series';
    const answer = await this.api.message<SeriesResult>(`${MODEL}ProtoSeriesValuesResponseDTO`, 'POST', call.slice(6), { query: { useDeprecatedStringFields: false }, json });
    const series = answer.series.filter((s) => s.requestId === REQUEST_ID);
    if (series.length > 1 || answer.series.length > series.length) throw new InvalidInputError(this.where(call), `the answer holds series other than the one asked for (${attribute})`);
    const one = series[0];
    if (one?.series.case === 'stringSeries') throw new InvalidInputError(this.where(call), `the answer holds ${attribute} in the deprecated string_series field, which was not asked for`);
    const next = one?.searchAfter && !one.searchAfter.finished ? one.searchAfter.token : undefined;
    return { points: one?.series.case === 'seriesValues' ? one.series.value.values : [], ...(next !== undefined ? { next } : {}) };
  }

  /**
   * The bytes of a file the project holds at storage path `path`, streamed: a signed read URL
   * (signed again when storage says it expired, as neptune-query does), then a plain GET.
   */
  async download(path: string): Promise<Readable> {
    for (let attempt = 1; ; attempt++) {
      const signed = (await this.api.signedUrls(this.project, [{ path }], 'read')).get(path)!;
      let protocol: string;
      try {
        protocol = new URL(signed.url).protocol;
      } catch {
        throw new InvalidInputError(this.where('POST /api/storagebridge/v1/signedUrl'), `the signed URL for ${path} is not a URL`);
      }
      if (protocol !== 'https:' && protocol !== 'http:') throw new InvalidInputError(this.where('POST /api/storagebridge/v1/signedUrl'), `the signed URL for ${path} is not http(s)`);
      try {
        return await this.storage.download(signed.url);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        if (err.status === 404) throw new InvalidInputError(`${showUrl(signed.url)}`, `storage has no file ${path} (the run names it, but its bytes were never uploaded)`);
        // S3 answers an expired URL with 400 (neptune-query's reading) or 403
        if ((err.status !== 400 && err.status !== 403) || attempt >= SIGNING_TRIES) throw err;
      }
    }
  }

  async close(): Promise<void> {
    await this.storage.close();
  }
}
