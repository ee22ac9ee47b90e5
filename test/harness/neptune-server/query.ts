/**
 * The Neptune 3.x query API as neptune-query 1.8 calls it (docs/neptune-server-api.md §4, rows
 * 1–5; row 6, the signed read URL, is scale.ts's): runs search with NQL, attribute definitions
 * (JSON) and values, float series and the other series (protobuf), over the 3.x runs of
 * scale-store.ts. A run is addressed as `ws/proj/SYS-ID`.
 */
import { encodeMessage } from '../../../src/connectors/neptune-common/scale-proto.js';
import { ApiError, type Handler, type Reply, type Request } from './legacy.js';
import { nqlMatches, NqlSyntaxError } from './nql.js';
import type { Route } from './scale.js';
import type { ScaleAttribute, ScaleFileRef, ScaleHistogram, ScalePoint, ScaleRun, ScaleStore } from './scale-store.js';

export const QUERY_ROUTES: Route[] = [
  { operation: 'searchEntries', method: 'POST', path: '/api/leaderboard/v1/proto/leaderboard/entries/search/', auth: true },
  { operation: 'queryAttributeDefinitions', method: 'POST', path: '/api/leaderboard/v1/leaderboard/attributes/definitions/query', auth: true },
  { operation: 'queryAttributes', method: 'POST', path: '/api/leaderboard/v1/proto/leaderboard/attributes/query', auth: true },
  { operation: 'floatSeries', method: 'POST', path: '/api/leaderboard/v1/proto/attributes/series/float', auth: true },
  { operation: 'series', method: 'POST', path: '/api/leaderboard/v1/proto/attributes/series', auth: true },
];

export interface QueryContext {
  scale: ScaleStore;
  /** the most points a page of a (non-float) series holds when the client sets no limit: the server's choice, which the client follows with searchAfter */
  pageSize: number;
}

const badRequest = (title: string) => new ApiError(400, { title, code: 400 });
const protobufReply = (name: string, message: object): Reply => ({ bytes: Buffer.from(encodeMessage(name, message)), headers: { 'Content-Type': 'application/x-protobuf' } });

type Json = Record<string, unknown>;
function jsonBody(req: Request): Json {
  try {
    const parsed = JSON.parse(req.body.toString('utf8')) as unknown;
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Json;
  } catch {
    // answered below
  }
  throw badRequest('the body is not a JSON object');
}
const object = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strings = (v: unknown): string[] => list(v).filter((x): x is string => typeof x === 'string');
const numberOr = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);

/** a page token is the offset of the page's first item */
const offsetOf = (token: unknown): number => (typeof token === 'string' && /^\d+$/.test(token) ? Number(token) : 0);

/** `{mustMatchAny:[{mustMatchRegexes, mustNotMatchRegexes}]}` and `[{attributeType}]`, as neptune-query sends them */
function attributeMatcher(body: Json): (name: string, type: string) => boolean {
  const alternatives = list(object(body.attributeNameFilter).mustMatchAny).map((a) => ({
    must: strings(object(a).mustMatchRegexes).map((r) => new RegExp(r)),
    mustNot: strings(object(a).mustNotMatchRegexes).map((r) => new RegExp(r)),
  }));
  const names = body.attributeNamesFilter === undefined ? undefined : new Set(strings(body.attributeNamesFilter));
  const types = list(body.attributeFilter).map((f) => object(f).attributeType).filter((t): t is string => typeof t === 'string');
  return (name, type) =>
    (names === undefined || names.has(name)) &&
    (alternatives.length === 0 || alternatives.some((a) => a.must.every((r) => r.test(name)) && !a.mustNot.some((r) => r.test(name)))) &&
    (types.length === 0 || types.includes(type));
}

function numbers(points: ScalePoint[]): number[] {
  return points.map((p) => p.value as number).filter((v) => Number.isFinite(v));
}

/** ProtoAttributeDTO: the value in the properties of its type (series: their aggregates) */
function attributeDto(name: string, a: ScaleAttribute): Json {
  const common = { attributeName: name, attributeType: a.type };
  switch (a.type) {
    case 'float':
      return { name, type: a.type, floatProperties: { ...common, value: a.value } };
    case 'int':
      return { name, type: a.type, intProperties: { ...common, value: BigInt(a.value) } };
    case 'bool':
      return { name, type: a.type, boolProperties: { ...common, value: a.value } };
    case 'string':
      return { name, type: a.type, stringProperties: { ...common, value: a.value } };
    case 'datetime':
      return { name, type: a.type, datetimeProperties: { ...common, value: BigInt(a.value) } };
    case 'stringSet':
      return { name, type: a.type, stringSetProperties: { ...common, value: a.values } };
    case 'fileRef':
      return { name, type: a.type, fileRefProperties: { ...common, ...fileRefDto(a.value) } };
    case 'floatSeries': {
      const last = a.points[a.points.length - 1];
      const values = numbers(a.points);
      const average = values.reduce((s, v) => s + v, 0) / (values.length || 1);
      const aggregates = last
        ? { lastStep: last.step, last: last.value as number, min: Math.min(...values), max: Math.max(...values), average, variance: values.reduce((s, v) => s + (v - average) ** 2, 0) / (values.length || 1) }
        : {};
      return { name, type: a.type, floatSeriesProperties: { ...common, ...aggregates, hasPreview: a.previews.length > 0 } };
    }
    case 'stringSeries': {
      const last = a.points[a.points.length - 1];
      return { name, type: a.type, stringSeriesProperties: { ...common, ...(last ? { lastStep: last.step, last: last.value as string } : {}) } };
    }
    case 'fileRefSeries': {
      const last = a.points[a.points.length - 1];
      return { name, type: a.type, fileRefSeriesProperties: { ...common, ...(last ? { lastStep: last.step, last: fileRefDto(last.value as ScaleFileRef) } : {}) } };
    }
    case 'histogramSeries': {
      const last = a.points[a.points.length - 1];
      return { name, type: a.type, histogramSeriesProperties: { ...common, ...(last ? { lastStep: last.step, last: histogramDto(last.value as ScaleHistogram) } : {}) } };
    }
  }
}
const fileRefDto = (f: ScaleFileRef) => ({ path: f.path, sizeBytes: BigInt(f.sizeBytes), mimeType: f.mimeType });
const histogramDto = (h: ScaleHistogram) => ({ type: h.type, edges: h.edges, values: h.values });

/** the value NQL compares (see nql.ts) */
function nqlValue(a: ScaleAttribute): unknown {
  switch (a.type) {
    case 'datetime':
      return new Date(a.value);
    case 'stringSet':
      return a.values;
    case 'fileRef':
      return a.value.path;
    case 'floatSeries':
    case 'stringSeries':
      return a.points[a.points.length - 1]?.value;
    case 'histogramSeries':
    case 'fileRefSeries':
      return undefined;
    default:
      return a.value;
  }
}
function sortValue(a: ScaleAttribute | undefined): number | string {
  const v = a === undefined ? undefined : nqlValue(a);
  return v instanceof Date ? v.getTime() : typeof v === 'number' ? v : typeof v === 'boolean' ? Number(v) : String(v ?? '');
}

function projectOf(ctx: QueryContext, identifier: string | null): string {
  if (!identifier || !ctx.scale.projects.project(identifier)) throw new ApiError(404, { title: `project ${identifier ?? ''} not found`, code: 404, errorType: 'PROJECT_NOT_FOUND' });
  return identifier;
}

/** the runs named by `ws/proj/SYS-ID`s, or every run of the projects */
function runsOf(ctx: QueryContext, projects: string[], ids: string[] | undefined): ScaleRun[] {
  if (ids) return ids.map((id) => ctx.scale.runBySysId(id)).filter((r): r is ScaleRun => r !== undefined);
  return projects.flatMap((p) => ctx.scale.runs(p));
}

interface SeriesRequest {
  requestId: string;
  run?: ScaleRun;
  attribute: string;
  lineage: boolean;
  includePreview: boolean;
  /** (float series) steps strictly below this, in descending order */
  afterStep?: number;
  /** (other series) where the previous page ended */
  token?: string;
}
function seriesRequests(ctx: QueryContext, body: Json): SeriesRequest[] {
  return list(body.requests).map((r) => {
    const request = object(r);
    const series = object(request.series);
    const requestId = request.requestId;
    const attribute = series.attribute;
    if (typeof requestId !== 'string' || typeof attribute !== 'string') throw badRequest('each request needs requestId and series.attribute');
    const run = ctx.scale.runBySysId(String(object(series.holder).identifier ?? ''));
    const searchAfter = object(request.searchAfter);
    return {
      requestId,
      ...(run ? { run } : {}),
      attribute,
      lineage: series.lineage !== 'NONE',
      includePreview: series.includePreview === true,
      ...(typeof request.afterStep === 'number' ? { afterStep: request.afterStep } : {}),
      ...(typeof searchAfter.token === 'string' ? { token: searchAfter.token } : {}),
    };
  });
}

/** the points of a request's series in descending step order, within the step range */
function descending(ctx: QueryContext, request: SeriesRequest & { run: ScaleRun }, stepRange: Json): ScalePoint[] {
  const from = typeof stepRange.from === 'number' ? stepRange.from : -Infinity;
  const to = typeof stepRange.to === 'number' ? stepRange.to : Infinity;
  const own = request.run.attributes.get(request.attribute);
  const previews = request.includePreview && own && 'previews' in own ? own.previews : [];
  return [...ctx.scale.seriesPoints(request.run, request.attribute, request.lineage), ...previews].filter((p) => p.step >= from && p.step <= to).reverse();
}

export function queryHandlers(ctx: QueryContext): Record<string, Handler> {
  return {
    searchEntries: (req) => {
      const project = projectOf(ctx, req.query.get('projectIdentifier'));
      const body = jsonBody(req);
      const query = object(body.query).query;
      const leaderOnly = body.experimentLeader === true;
      let matching: ScaleRun[];
      try {
        matching = ctx.scale.runs(project).filter((run) => (!leaderOnly || ctx.scale.isHead(run)) && nqlMatches(typeof query === 'string' ? query : undefined, ctx.scale.attributes(run), nqlValue));
      } catch (err) {
        if (err instanceof NqlSyntaxError) throw new ApiError(400, { title: 'Syntax error', message: err.message, code: 400 });
        throw err;
      }
      const sorting = object(body.sorting);
      const sortBy = String(object(sorting.sortBy).name ?? 'sys/creation_time');
      const direction = sorting.dir === 'ascending' ? 1 : -1;
      const keyed = matching.map((run) => ({ run, key: sortValue(ctx.scale.attributes(run).get(sortBy)) }));
      keyed.sort((x, y) => (x.key < y.key ? -direction : x.key > y.key ? direction : 0));
      const pagination = object(body.pagination);
      const offset = numberOr(pagination.offset, 0);
      const limit = numberOr(pagination.limit, 100);
      const wanted = body.attributeFilters === undefined ? undefined : new Set(list(body.attributeFilters).map((f) => String(object(f).path)));
      const [workspace] = project.split('/');
      const entries = keyed.slice(offset, offset + limit).map(({ run }) => ({
        experimentId: run.uuid,
        type: 'run',
        projectId: run.project.id,
        organizationId: ctx.scale.projects.workspaces.get(workspace!) ?? '',
        projectName: run.project.name,
        organizationName: run.project.workspace,
        attributes: [...ctx.scale.attributes(run)].filter(([name]) => !wanted || wanted.has(name)).map(([name, a]) => attributeDto(name, a)),
      }));
      return protobufReply('neptune.api.v1.model.ProtoLeaderboardEntriesSearchResultDTO', { matchingItemCount: BigInt(matching.length), entries });
    },

    queryAttributeDefinitions: (req) => {
      const body = jsonBody(req);
      const projects = strings(body.projectIdentifiers).map((p) => projectOf(ctx, p));
      const ids = body.experimentIdsFilter === undefined ? undefined : strings(body.experimentIdsFilter);
      const matches = attributeMatcher(body);
      const definitions = new Map<string, string>();
      for (const run of runsOf(ctx, projects, ids)) for (const [name, a] of ctx.scale.attributes(run)) if (matches(name, a.type)) definitions.set(`${name}\u0000${a.type}`, name);
      const all = [...definitions].map(([key, name]) => ({ name, type: key.slice(name.length + 1) })).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
      const page = object(body.nextPage);
      const offset = offsetOf(page.nextPageToken);
      const limit = Math.max(1, numberOr(page.limit, 10_000));
      const next = offset + limit < all.length ? String(offset + limit) : undefined;
      return { json: { entries: all.slice(offset, offset + limit), nextPage: { limit, ...(next ? { nextPageToken: next } : {}) } } };
    },

    queryAttributes: (req) => {
      const project = projectOf(ctx, req.query.get('projectIdentifier'));
      const body = jsonBody(req);
      const ids = body.experimentIdsFilter === undefined ? undefined : strings(body.experimentIdsFilter);
      const matches = attributeMatcher(body);
      const values = runsOf(ctx, [project], ids).flatMap((run) => [...ctx.scale.attributes(run)].filter(([name, a]) => matches(name, a.type)).map(([name, a]) => ({ run, name, a })));
      const page = object(body.nextPage);
      const offset = offsetOf(page.nextPageToken);
      const limit = Math.max(1, numberOr(page.limit, 10_000));
      const entries: Array<{ experimentId: string; experimentShortId: string; attributes: Json[] }> = [];
      for (const { run, name, a } of values.slice(offset, offset + limit)) {
        const last = entries[entries.length - 1];
        const entry = last?.experimentShortId === run.sysId ? last : { experimentId: run.uuid, experimentShortId: run.sysId, attributes: [] };
        if (entry !== last) entries.push(entry);
        entry.attributes.push(attributeDto(name, a));
      }
      const next = offset + limit < values.length ? String(offset + limit) : undefined;
      return protobufReply('neptune.api.v1.model.ProtoQueryAttributesResultDTO', { entries, nextPage: { limit, ...(next ? { nextPageToken: next } : {}) } });
    },

    floatSeries: (req) => {
      const body = jsonBody(req);
      const limit = numberOr(body.perSeriesPointsLimit, 10_000);
      const series = seriesRequests(ctx, body).map((request) => {
        const a = request.run?.attributes.get(request.attribute);
        if (!request.run || (a && a.type !== 'floatSeries')) return { requestId: request.requestId, series: { totalItemCount: 0n, values: [] } };
        const all = descending(ctx, { ...request, run: request.run }, object(body.stepRange));
        const after = request.afterStep;
        const values = (after === undefined ? all : all.filter((p) => p.step < after)).slice(0, limit);
        return {
          requestId: request.requestId,
          series: {
            totalItemCount: BigInt(all.length),
            values: values.map((p) => ({ timestampMillis: BigInt(p.timestampMillis), step: p.step, value: p.value as number, isPreview: p.completionRatio !== undefined, completionRatio: p.completionRatio ?? 1 })),
          },
        };
      });
      return protobufReply('neptune.api.v1.model.ProtoFloatSeriesValuesResponseDTO', { series });
    },

    series: (req) => {
      const body = jsonBody(req);
      const limit = Math.min(numberOr(body.perSeriesPointsLimit, 10_000), ctx.pageSize);
      const series = seriesRequests(ctx, body).flatMap((request) => {
        const a = request.run?.attributes.get(request.attribute);
        // a series that does not exist is left out of the reply
        if (!request.run || !a || !('points' in a) || a.type === 'floatSeries') return [];
        const all = descending(ctx, { ...request, run: request.run }, object(body.stepRange));
        const offset = offsetOf(request.token);
        const values = all.slice(offset, offset + limit).map((p) => ({ timestampMillis: BigInt(p.timestampMillis), step: p.step, isPreview: false, completionRatio: 1, object: { value: objectOf(a.type, p.value) } }));
        return [{ requestId: request.requestId, searchAfter: { finished: offset + limit >= all.length, token: String(offset + limit) }, series: { case: 'seriesValues', value: { values } } }];
      });
      return protobufReply('neptune.api.v1.model.ProtoSeriesValuesResponseDTO', { series });
    },
  };
}

function objectOf(type: string, value: ScalePoint['value']): Json {
  if (type === 'stringSeries') return { case: 'stringValue', value };
  if (type === 'histogramSeries') return { case: 'histogram', value: histogramDto(value as ScaleHistogram) };
  return { case: 'fileRef', value: fileRefDto(value as ScaleFileRef) };
}
