/**
 * Runs written into a Neptune 2.x project through its API, by the calls the neptune 1.14 client
 * makes (docs/neptune-server-api.md §2.3): `createExperiment` (with the custom run id, which makes
 * the server give the same run back), then the run's attributes and series as
 * `executeOperations` batches (1,000 operations at most, as the client sends them), files by
 * `fileAtomUpload` (multipart above the server's single-part size), image series as `logImages`.
 * The layout is the one every Neptune writer uses (neptune-common/target.ts, seed 000's rules
 * for runs from Neptune). A copy is found again by its provenance (`run_data/tags/trackshift.…`):
 * the completion tag is the last operation of a run.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import type { ArtifactFile, DatasetInput, Experiment, Run, SeriesFile, SeriesInfo, TypedPoint, TypedValue } from '../../model/index.js';
import { pointsByKey, SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../../model/index.js';
import { HttpError } from '../../util/http.js';
import { quoted } from '../../util/paths.js';
import { encodeEntry, pointToLine } from '../../model/json.js';
import { artifactAttributes, Paths } from '../neptune-common/attribute-paths.js';
import { EXACT_EXT, EXACT_PATH, imageExactLine, MAX_STRING_LENGTH, MAX_STRING_SERIES_LENGTH } from '../neptune-common/exact.js';
import { imageKind } from '../neptune-common/files.js';
import { NEPTUNE2_HOLDS } from '../neptune-common/holds.js';
import { EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute, failedOf, INPUTS_ATTRIBUTE, inputsAttribute, isNeptuneRun, neptuneTarget } from '../neptune-common/target.js';
import type { Destination, ExistingRun, RunBatch, RunWriteResult, WriteLimits } from '../types.js';
import type { NeptuneApi, ProjectInfo } from './api.js';

const LIMITS: WriteLimits = { metrics: 10_000, params: 1000, tags: 1000, entries: 20_000, bytes: 64 * 1024 * 1024 };
/** operations per executeOperations call (the client's NEPTUNE_ASYNC_BATCH_SIZE) */
const OPERATIONS_PER_CALL = 1000;
/** the client's version, sent on run creation */
const CLIENT_VERSION = '1.14.0.post2';
/** the single-part upload limit when the server's config does not say (the client's default) */
const SINGLE_PART_BYTES = 5 * 2 ** 20;
const PROVENANCE = `run_data/tags/${SOURCE_TAGS.id}`;
const COMPLETE = `run_data/tags/${SOURCE_TAGS.complete}`;
const EXPERIMENT = 'run_info/experiment_name';

const experiment = z.looseObject({ id: z.string(), shortId: z.string() });
const operationErrors = z.array(z.looseObject({ errorDescription: z.string().nullish() }));
const uploadErrors = z.looseObject({ errors: z.array(z.looseObject({ errorDescription: z.string().nullish() })).nullish() }).nullish();
const uploadStarted = z.looseObject({ uploadId: z.string() });
const searchPage = z.looseObject({ entries: z.array(z.looseObject({ experimentId: z.string(), attributes: z.array(z.looseObject({ name: z.string(), type: z.string() }).catchall(z.unknown())) })) });

type Operation = Record<string, unknown> & { path: string };

interface OpenRun {
  uuid: string;
  shortId: string;
  experiment: string;
  sourceId?: string;
  paths: Paths;
  ops: Operation[];
  images: Map<string, Buffer>;
  artifacts: Array<{ path: string; data: Buffer }>;
  inputs: DatasetInput[];
  warnings: string[];
  dropped: Map<string, number>;
  /** points given per series (those not written too), for the positions of exact lines */
  counts: Map<string, number>;
  /** lines of `trackshift/exact`: what Neptune cannot hold as given, kept exactly */
  exact: string[];
}

interface Copy {
  id: string;
  uuid: string;
  complete: boolean;
}

const stringOf = (attributes: Array<Record<string, unknown>>, name: string): string | undefined => {
  const a = attributes.find((x) => x.name === name);
  const value = (a?.stringProperties as { value?: unknown } | undefined)?.value;
  return typeof value === 'string' ? value : undefined;
};

export class NeptuneApiDestination implements Destination {
  readonly kind = 'neptune-api';
  readonly limits = LIMITS;
  readonly holds = NEPTUNE2_HOLDS;
  readonly uri: string;
  readonly notes: Array<{ object: string; message: string }> = [];
  private lookup?: Promise<ProjectInfo | undefined>;
  private projectInfo?: Promise<ProjectInfo>;
  private copies?: Promise<Map<string, Copy>>;
  private readonly runs = new Map<string, OpenRun>();
  private readonly experimentTags = new Map<string, Record<string, string>>();
  /** runs cut off before and emptied (discardRun), by `experiment \0 source run id`: written again in place */
  private readonly emptied = new Map<string, { uuid: string; shortId: string }>();

  constructor(
    private readonly api: NeptuneApi,
    private readonly projectName: string,
  ) {
    this.uri = `neptune://${projectName}`;
  }

  /** The project, or undefined when it is not there yet (a dry run never creates it). */
  private known(): Promise<ProjectInfo | undefined> {
    this.lookup ??= this.api.findProject(this.projectName);
    return this.lookup;
  }

  /** The project, created when missing (seed 000/001: "the project is created if it doesn't exist"). */
  private project(): Promise<ProjectInfo> {
    this.projectInfo ??= (async () => {
      const found = await this.known();
      if (found) return found;
      let created: ProjectInfo;
      try {
        created = await this.api.createProject(this.projectName);
      } catch (err) {
        // made by another copy meanwhile, or our own creation whose answer was lost
        const there = await this.api.findProject(this.projectName);
        if (!there) throw err;
        created = there;
      }
      this.notes.push({ object: this.uri, message: `the project did not exist: created it${created.projectKey ? ` (key ${created.projectKey})` : ''}` });
      return created;
    })();
    this.projectInfo.catch(() => (this.projectInfo = undefined));
    return this.projectInfo;
  }

  /** The copies already in the project, by `experiment \0 source run id`, read once. */
  private index(): Promise<Map<string, Copy>> {
    this.copies ??= (async () => {
      const out = new Map<string, Copy>();
      const project = await this.known();
      if (!project) return out;
      const { id } = project;
      for (let offset = 0; ; offset += 100) {
        const body = { attributeFilters: [{ path: 'sys/id' }, { path: PROVENANCE }, { path: COMPLETE }, { path: EXPERIMENT }], pagination: { limit: 100, offset } };
        const page = await this.api.json('POST', 'api/leaderboard/v1/leaderboard/entries/search', searchPage, { query: { projectIdentifier: id, type: 'run' }, body });
        for (const entry of page.entries) {
          const source = stringOf(entry.attributes, PROVENANCE);
          const shortId = stringOf(entry.attributes, 'sys/id');
          if (!source || !shortId) continue;
          const key = `${stringOf(entry.attributes, EXPERIMENT) ?? this.projectName}\u0000${source}`;
          const copy = { id: shortId, uuid: entry.experimentId, complete: stringOf(entry.attributes, COMPLETE) === 'true' };
          if (!out.get(key)?.complete) out.set(key, copy);
        }
        if (page.entries.length === 0) return out;
      }
    })();
    return this.copies;
  }

  runUrl(_experimentId: string, runId: string): string | undefined {
    return this.api.runUrl(this.projectName, runId);
  }

  async findExperiment(name: string) {
    // an experiment is a name on runs: it "exists" where the project does
    return (await this.known()) ? { id: name, lifecycle: 'active' as const } : undefined;
  }

  async ensureExperiment(exp: Experiment, name: string): Promise<string> {
    await this.project();
    this.experimentTags.set(name, Object.fromEntries(Object.entries(exp.tags).filter(([key]) => !key.startsWith(SOURCE_TAG_PREFIX))));
    return name;
  }

  async finishExperiment(): Promise<void> {
    // a Neptune 2.x experiment is only a name on its runs
  }

  async findRun(experimentId: string, sourceRunId: string): Promise<ExistingRun | undefined> {
    const copy = (await this.index()).get(`${experimentId}\u0000${sourceRunId}`);
    return copy && { id: copy.id, complete: copy.complete, lifecycle: 'active' };
  }

  async createRun(experimentId: string, run: Run): Promise<string> {
    const p = await this.project();
    const target = neptuneTarget(run, experimentId, 2);
    const sourceId = run.tags[SOURCE_TAGS.id];
    const key = `${experimentId}\u0000${sourceId}`;
    const reused = sourceId !== undefined ? this.emptied.get(key) : undefined;
    this.emptied.delete(key);
    // the 2.x API cannot delete a run: one cut off before was emptied, and is written again
    const created = reused ? { id: reused.uuid, shortId: reused.shortId } : await this.create(p.id, target.runId);
    const open: OpenRun = { uuid: created.id, shortId: created.shortId, experiment: experimentId, paths: new Paths(), ops: [], images: new Map(), artifacts: [], inputs: [], warnings: [], dropped: new Map(), counts: new Map(), exact: [] };
    if (sourceId !== undefined) open.sourceId = sourceId;
    this.runs.set(created.shortId, open);

    const attributes = new Map(target.attributes);
    attributes.delete('sys/custom_run_id'); // the server's own, set by the creation
    attributes.delete(COMPLETE); // written last
    if (isNeptuneRun(run) || experimentId !== this.projectName) attributes.set(EXPERIMENT, { type: 'string', value: experimentId });
    const tags = this.experimentTags.get(experimentId) ?? {};
    if (Object.keys(tags).length > 0) attributes.set(EXPERIMENT_TAGS_ATTRIBUTE, experimentTagsAttribute(tags));
    // a config path segment holding "/" (W&B and Comet keys may) makes nested namespaces in Neptune: its exact path is kept
    for (const entry of run.config ?? []) if (entry.path.some((segment) => segment.includes('/'))) open.exact.push(JSON.stringify({ attribute: encodeEntry(entry) }));
    if (target.name !== undefined) this.assign(open, 'sys/name', { type: 'string', value: target.name });
    attributes.delete('sys/failed');
    for (const [path, value] of attributes) this.assign(open, path, value);
    await this.flush(open);
    return created.shortId;
  }

  /**
   * A new run. Repeated only when that cannot make two: after a 429 (not taken), or with a custom
   * run id (the server gives the same run back); else a failure fails the run, redone next time.
   */
  private async create(projectId: string, customId: string | undefined): Promise<z.infer<typeof experiment>> {
    const body = { projectIdentifier: projectId, parentId: projectId, type: 'run', cliVersion: CLIENT_VERSION, gitInfo: null, customId: customId ?? null };
    const call = (retry: boolean) => this.api.json('POST', 'api/leaderboard/v1/experiments', experiment, { body, retry });
    try {
      return await call(false);
    } catch (err) {
      if (!(err instanceof HttpError) || !(err.status === 429 || (customId !== undefined && err.retryReason))) throw err;
      return call(true);
    }
  }

  private open(runId: string): OpenRun {
    const open = this.runs.get(runId);
    if (!open) throw new Error(`neptune-api: run ${runId} is not being written`);
    return open;
  }

  private claim(open: OpenRun, path: string, kind: string): boolean {
    if (open.paths.claim(path, kind)) return true;
    open.warnings.push(`${kind} ${quoted(path)} is not written: its path is already an attribute or a namespace of the run (Neptune holds one or the other)`);
    return false;
  }

  private assign(open: OpenRun, path: string, value: TypedValue): void {
    if (!this.claim(open, path, value.type === 'stringSet' ? 'string set' : value.type)) return;
    switch (value.type) {
      case 'string': {
        // cut as the client cuts it; the whole value kept exactly
        const cut = value.value.length > MAX_STRING_LENGTH;
        if (cut) open.exact.push(JSON.stringify({ attribute: encodeEntry({ path: path.split('/'), value }) }));
        open.ops.push({ path, assignString: { value: cut ? value.value.slice(0, MAX_STRING_LENGTH) : value.value } });
        return;
      }
      case 'int':
        open.ops.push(Number.isSafeInteger(value.value) ? { path, assignInt: { value: value.value } } : { path, assignFloat: { value: value.value } });
        return;
      case 'float':
        if (Number.isFinite(value.value)) open.ops.push({ path, assignFloat: { value: value.value } });
        else open.exact.push(JSON.stringify({ attribute: encodeEntry({ path: path.split('/'), value }) }));
        return;
      case 'bool':
        open.ops.push({ path, assignBool: { value: value.value } });
        return;
      case 'datetime':
        open.ops.push({ path, assignDatetime: { valueMilliseconds: Math.trunc(value.value) } });
        return;
      case 'stringSet':
        open.ops.push({ path, insertStrings: { values: value.value } });
    }
  }

  /** The operations gathered so far, sent in order. */
  private async flush(open: OpenRun): Promise<void> {
    while (open.ops.length > 0) {
      const batch = open.ops.splice(0, OPERATIONS_PER_CALL);
      const errors = await this.api.json('POST', 'api/leaderboard/v1/attributes/operations', operationErrors, { query: { experimentId: open.uuid }, body: batch });
      for (const e of errors) open.warnings.push(`the server refused an operation: ${e.errorDescription ?? 'no reason given'}`);
    }
  }

  async writeBatch(runId: string, batch: RunBatch): Promise<void> {
    const open = this.open(runId);
    for (const { key, value } of batch.params) this.assign(open, `run_data/params/${key}`, { type: 'string', value });
    for (const { key, value } of batch.tags) {
      if (key === SOURCE_TAGS.complete) continue;
      if (value === '') open.ops.push({ path: 'sys/tags', insertStrings: { values: [key] } });
      else this.assign(open, `run_data/tags/${key}`, { type: 'string', value });
    }
    for (const [key, points] of pointsByKey(batch.metrics)) {
      if (!this.claim(open, key, 'float series')) continue;
      const entries = [];
      let index = open.counts.get(key) ?? 0;
      for (const p of points) {
        if (Number.isFinite(p.value)) entries.push({ value: p.value, step: p.step, timestampMilliseconds: p.timestamp ?? Date.now() });
        else open.exact.push(JSON.stringify({ series: key, type: 'float', index, insert: true, point: JSON.parse(pointToLine('float', p)) as object }));
        index++;
      }
      open.counts.set(key, index);
      if (entries.length > 0) open.ops.push({ path: key, logFloats: { entries } });
    }
    if (open.ops.length >= OPERATIONS_PER_CALL) await this.flush(open);
  }

  async writeSeries(runId: string, series: SeriesInfo, points: TypedPoint[]): Promise<void> {
    const open = this.open(runId);
    if (!this.claim(open, series.key, `${series.type} series`)) return;
    if (series.type === 'string') {
      let index = open.counts.get(series.key) ?? 0;
      const entries = points.map((p) => {
        const text = p.value as string;
        // cut as the client cuts it; the whole value kept exactly
        if (text.length > MAX_STRING_SERIES_LENGTH) open.exact.push(JSON.stringify({ series: series.key, type: 'string', index, insert: false, point: JSON.parse(pointToLine('string', p)) as object }));
        index++;
        return { value: text.slice(0, MAX_STRING_SERIES_LENGTH), step: p.step, timestampMilliseconds: p.timestamp ?? Date.now() };
      });
      open.counts.set(series.key, index);
      open.ops.push({ path: series.key, logStrings: { entries } });
    } else if (series.type === 'file') {
      for (const p of points) {
        const file = p.value as SeriesFile;
        const bytes = open.images.get(file.path);
        open.images.delete(file.path);
        if (!bytes || !imageKind(bytes)) {
          open.dropped.set(series.key, (open.dropped.get(series.key) ?? 0) + 1);
          continue;
        }
        // the reader names an image `<key>/<index>.<ext>`: a point named otherwise is kept exactly
        const index = open.counts.get(series.key) ?? 0;
        open.counts.set(series.key, index + 1);
        const exact = imageExactLine(series.key, index, bytes, p);
        if (exact) open.exact.push(JSON.stringify(exact));
        open.ops.push({ path: series.key, logImages: { entries: [{ value: { data: bytes.toString('base64'), name: file.name ?? null, description: null }, step: p.step, timestampMilliseconds: p.timestamp ?? Date.now() }] } });
      }
    } else {
      throw new Error(`neptune-api: a ${series.type} series cannot be written natively`);
    }
    await this.flush(open);
  }

  async writeSeriesFile(runId: string, file: SeriesFile, body: Readable): Promise<void> {
    this.open(runId).images.set(file.path, await bytesOf(body));
  }

  async writeInputs(runId: string, inputs: DatasetInput[]): Promise<void> {
    this.open(runId).inputs.push(...inputs);
  }

  async writeArtifact(runId: string, file: ArtifactFile, body: Readable): Promise<void> {
    this.open(runId).artifacts.push({ path: file.path, data: await bytesOf(body) });
  }

  /** One file attribute, uploaded as the client uploads it: in one part, or in parts above the single-part size. */
  private async upload(open: OpenRun, attribute: string, ext: string, data: Buffer): Promise<void> {
    const query = { experimentIdentifier: open.uuid, attribute };
    if (data.length <= SINGLE_PART_BYTES) {
      await this.api.json('POST', 'api/leaderboard/v1/attributes/storage/file/upload', uploadErrors, { query: { ...query, ext }, body: data });
      return;
    }
    const { uploadId } = await this.api.json('POST', 'api/leaderboard/v1/attributes/storage/file/upload/start', uploadStarted, { query: { ...query, ext, totalLength: data.length }, retry: false });
    for (let part = 0, at = 0; at < data.length; part++, at += SINGLE_PART_BYTES) {
      await this.api.json('POST', 'api/leaderboard/v1/attributes/storage/file/upload/part', uploadErrors, { query: { ...query, uploadId, uploadPartIdx: part }, body: data.subarray(at, at + SINGLE_PART_BYTES) });
    }
    await this.api.json('POST', 'api/leaderboard/v1/attributes/storage/file/upload/finish', uploadErrors, { query: { ...query, uploadId } });
  }

  async finishRun(runId: string, run: Run): Promise<RunWriteResult> {
    const open = this.runs.get(runId);
    if (!open) return { warnings: [] };
    if (open.inputs.length > 0) this.assign(open, INPUTS_ATTRIBUTE, inputsAttribute(open.inputs));
    await this.flush(open);
    const attributes = artifactAttributes(open.artifacts.map((a) => a.path), open.paths);
    for (const [i, { attribute, ext }] of attributes.entries()) {
      if (this.claim(open, attribute, 'file')) await this.upload(open, attribute, ext, open.artifacts[i]!.data);
    }
    for (const [key, count] of open.dropped) open.warnings.push(`${count} point(s) of file series ${quoted(key)} are not written: Neptune 2.x file series hold images only`);
    if (open.exact.length > 0 && this.claim(open, EXACT_PATH, 'file')) {
      await this.upload(open, EXACT_PATH, EXACT_EXT, Buffer.from(open.exact.join('\n') + '\n'));
      open.warnings.push(`${open.exact.length} value(s) Neptune 2.x does not take as they are (NaN, ±Infinity, strings past its length limits) are kept exactly in the file attribute ${EXACT_PATH}, which trackshift reads back`);
    }
    // last: the run's end, then the tag that makes it a complete copy
    open.ops.push({ path: 'sys/failed', assignBool: { value: failedOf(run) } });
    if (open.sourceId !== undefined) open.ops.push({ path: COMPLETE, assignString: { value: 'true' } });
    await this.flush(open);
    this.runs.delete(runId);
    if (open.sourceId !== undefined) (await this.index()).set(`${open.experiment}\u0000${open.sourceId}`, { id: runId, uuid: open.uuid, complete: true });
    return { warnings: open.warnings };
  }

  /**
   * A run cut off part way: every attribute it was given is deleted, so that nothing of it counts,
   * and the emptied run is written again when its source run is (the 2.x API has no call to
   * delete a run).
   */
  async discardRun(runId: string): Promise<void> {
    const open = this.runs.get(runId);
    this.runs.delete(runId);
    const index = await this.index();
    const entry = [...index].find(([, copy]) => copy.id === runId);
    if (entry) index.delete(entry[0]);
    const uuid = entry?.[1].uuid ?? open?.uuid;
    if (!uuid) return;
    const key = entry?.[0] ?? (open?.sourceId !== undefined ? `${open.experiment}\u0000${open.sourceId}` : undefined);
    if (key) this.emptied.set(key, { uuid, shortId: runId });
    const attributes = await this.api.json('GET', 'api/leaderboard/v1/attributes', z.looseObject({ attributes: z.array(z.looseObject({ name: z.string() })) }), { query: { experimentId: uuid } });
    const ops: Operation[] = attributes.attributes.filter((a) => !a.name.startsWith('sys/')).map((a) => ({ path: a.name, deleteAttribute: {} }));
    for (const path of ['sys/tags', 'sys/group_tags']) ops.push({ path, clearStringSet: {} });
    for (let i = 0; i < ops.length; i += OPERATIONS_PER_CALL) await this.api.json('POST', 'api/leaderboard/v1/attributes/operations', operationErrors, { query: { experimentId: uuid }, body: ops.slice(i, i + OPERATIONS_PER_CALL) });
  }

  async close(): Promise<void> {
    this.runs.clear();
    await this.api.close();
  }
}

async function bytesOf(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
