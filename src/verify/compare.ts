/**
 * `verify`: reads both ends through the connector contract and compares them field by field.
 * The source side is selected exactly as `copy` selects (the same plan, renames included);
 * destination objects are found by the source id trackshift records on what it writes, else by
 * the same id, else (data another tool copied) by run name and start time.
 *
 * Compared: experiments (lifecycle, tags); runs (name, status, times, user, lifecycle, params,
 * tags, dataset inputs, parent, fork, group, source state, typed config and summary, the series
 * lists and every point of every series, file series' files and artifacts by size and SHA-256); registered
 * models (description, tags, aliases) and versions (stage, status, description, tags, run).
 * Tags under trackshift's own prefix are ignored, and nothing else is. Creation and update
 * times of experiments, models and versions are not compared: MLflow's API cannot set them, so
 * no copy into a server could match them (the copy keeps the source's in
 * `trackshift.source.creation_time`).
 */
import pLimit, { type LimitFunction } from 'p-limit';
import type { DatasetInput, Experiment, ForkPoint, ModelVersion, Run, Tags } from '../model/index.js';
import { MLFLOW_TAGS, SOURCE_TAG_PREFIX, SOURCE_TAGS } from '../model/index.js';
import type { Source } from '../connectors/types.js';
import type { EventListener } from '../engine/events.js';
import { stageAliases } from '../engine/models.js';
import { planTransfer, type ExperimentPlan, type ModelPlan, type Selection } from '../engine/plan.js';
import { TrackshiftError, errorMessage } from '../util/errors.js';
import { compareArtifacts } from './artifacts.js';
import { chartOf } from './charts.js';
import { compareEntries } from './config.js';
import { compareSeries } from './series.js';
import { DifferenceList, emptyCounts, show, type Matching, type MetricChart, type ObjectReport, type ObjectType, type VerifyReport } from './report.js';

export interface VerifyOptions {
  selection: Selection;
  /** runs compared at once */
  workers: number;
  /** artifact files read at once, across all runs */
  artifactWorkers: number;
  /** differences listed per object; the rest are counted */
  maxDifferences: number;
  /** compare the histories and artifacts of only this many runs, chosen at random */
  sample?: number;
  seed?: number;
  /** keep thinned histories of differing metrics for charts (the HTML report) */
  charts?: boolean;
  onEvent?: EventListener;
}

const CHARTS_PER_RUN = 6;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const userTags = (tags: Tags, drop: readonly string[] = []) => Object.fromEntries(Object.entries(tags).filter(([k]) => !k.startsWith(SOURCE_TAG_PREFIX) && !drop.includes(k)));

/** Keys of both maps, each compared; `kind` names them in paths (`param:lr`). */
function compareMaps(kind: string, a: Record<string, string>, b: Record<string, string>, prefix: string, out: DifferenceList): void {
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (a[key] !== b[key]) out.add(`${prefix}${kind}:${key}`, a[key], b[key]);
  }
}

function compareField(name: string, a: unknown, b: unknown, prefix: string, out: DifferenceList): void {
  if (!Object.is(a, b)) out.add(`${prefix}${name}`, show(a), show(b));
}

const inputKey = (input: DatasetInput) => `${input.dataset.name}@${input.dataset.digest}`;
const inputValue = (input: DatasetInput) => JSON.stringify({ dataset: Object.fromEntries(Object.entries(input.dataset).sort()), tags: Object.fromEntries(Object.entries(input.tags).sort()) });

function compareInputs(a: DatasetInput[], b: DatasetInput[], prefix: string, out: DifferenceList): void {
  const group = (inputs: DatasetInput[]) => {
    const m = new Map<string, string[]>();
    for (const i of inputs) m.set(inputKey(i), [...(m.get(inputKey(i)) ?? []), inputValue(i)].sort());
    return m;
  };
  const x = group(a);
  const y = group(b);
  for (const key of [...new Set([...x.keys(), ...y.keys()])].sort()) {
    const here = x.get(key)?.join('\n');
    const there = y.get(key)?.join('\n');
    if (here !== there) out.add(`${prefix}input:${key}`, here, there);
  }
}

/** A fork as the report prints it; `origin`: the source run a destination's parent stands for */
function forkText(fork: ForkPoint | undefined, origin?: string): string | undefined {
  if (!fork) return undefined;
  const copyOf = origin !== undefined && origin !== fork.runId ? ` (the copy of ${origin})` : '';
  return `run ${fork.runId}${copyOf}${fork.step !== undefined ? ` at step ${fork.step}` : ''}`;
}

/** A small seeded generator (mulberry32), so that a sample can be drawn again with --seed. */
function random(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function sampleOf(ids: string[], count: number, seed: number): Set<string> {
  const next = random(seed);
  const pool = [...ids];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return new Set(pool.slice(0, count));
}

/** Destination runs of one experiment, findable the three ways. */
class RunIndex {
  readonly byProvenance = new Map<string, Run>();
  readonly byId = new Map<string, Run>();
  readonly byNameAndStart = new Map<string, Run>();
  /** destination run id → the source run it was matched with */
  readonly matched = new Map<string, string>();

  constructor(readonly runs: Run[]) {
    for (const run of runs) {
      const origin = run.tags[SOURCE_TAGS.id];
      if (origin) this.byProvenance.set(origin, run);
      this.byId.set(run.id, run);
      if (run.name !== undefined && run.startTime !== undefined) this.byNameAndStart.set(`${run.name}\u0000${run.startTime}`, run);
    }
  }

  /** the destination run copied from `run`, and how it was found */
  find(run: Run): { run: Run; by: keyof Matching } | undefined {
    const candidates: Array<[Run | undefined, keyof Matching]> = [
      [this.byProvenance.get(run.id), 'provenance'],
      [this.byId.get(run.id), 'id'],
      [this.byNameAndStart.get(`${run.name}\u0000${run.startTime}`), 'nameAndStartTime'],
    ];
    for (const [found, by] of candidates) {
      if (found && !this.matched.has(found.id)) {
        // a destination run that is itself the copy of another source run is not this one's
        if (by !== 'provenance' && found.tags[SOURCE_TAGS.id] && found.tags[SOURCE_TAGS.id] !== run.id) continue;
        this.matched.set(found.id, run.id);
        return { run: found, by };
      }
    }
    return undefined;
  }

  /** the source id a destination run stands for */
  originOf(runId: string): string {
    return this.matched.get(runId) ?? this.byId.get(runId)?.tags[SOURCE_TAGS.id] ?? runId;
  }
}

export class Verifier {
  private readonly report: VerifyReport;
  private readonly artifactLimit: LimitFunction;
  /** source run id → destination run id, for model versions */
  private readonly runIds = new Map<string, string>();
  /** source id → destination id of runs and logged models, as a copy rewrites them in MLmodel files */
  private readonly ids = new Map<string, string>();
  private sampled?: Set<string>;

  constructor(
    private readonly src: Source,
    private readonly dst: Source,
    private readonly options: VerifyOptions,
  ) {
    this.artifactLimit = pLimit(options.artifactWorkers);
    const counts = () => emptyCounts();
    this.report = {
      source: src.uri,
      destination: dst.uri,
      startedAt: new Date().toISOString(),
      finishedAt: '',
      durationMs: 0,
      equal: true,
      summary: { experiment: counts(), run: counts(), model: counts(), version: counts() },
      matching: { provenance: 0, id: 0, nameAndStartTime: 0 },
      compared: { metricPoints: 0, seriesPoints: { string: 0, file: 0, histogram: 0 }, seriesFiles: 0, seriesFileBytes: 0, artifacts: 0, artifactBytes: 0 },
      notes: [],
      incomplete: [],
      objects: [],
    };
  }

  async run(): Promise<VerifyReport> {
    const started = Date.now();
    const plan = await planTransfer(this.src, this.options.selection);
    this.options.onEvent?.({ type: 'planned', experiments: plan.experiments.length, runs: plan.runCount, versions: plan.versionCount });
    const { sample } = this.options;
    if (sample !== undefined && sample < plan.runCount) {
      const seed = this.options.seed ?? Math.floor(Math.random() * 2 ** 31);
      this.sampled = sampleOf(plan.experiments.flatMap((e) => e.runs.map((r) => r.id)), sample, seed);
      this.report.sample = { runs: sample, of: plan.runCount, seed };
    }
    const dstExperiments = await collect(this.dst.listExperiments());
    for (const experimentPlan of plan.experiments) await this.guarded(experimentPlan.destinationName, () => this.compareExperiment(experimentPlan, dstExperiments));
    if (plan.models.length > 0) {
      if (!this.dst.registry) this.note(`${this.dst.uri} (${this.dst.kind}) has no model registry: ${plan.models.length} registered model(s) not compared`);
      else for (const modelPlan of plan.models) await this.guarded(`model:${modelPlan.destinationName}`, () => this.compareModel(modelPlan));
    }
    // what a file source could not read was left out of its listing: not compared, so never equal
    for (const [side, end] of [['source', this.src], ['destination', this.dst]] as const) {
      for (const object of end.unreadable ?? []) this.report.incomplete.push({ path: `${side} ${object.type} ${object.sourceId}`, reason: object.reason });
    }
    const { summary } = this.report;
    this.report.equal = this.report.incomplete.length === 0 && Object.values(summary).every((c) => c.equal === c.compared);
    this.report.objects.sort((a, b) => a.path.localeCompare(b.path));
    this.report.finishedAt = new Date().toISOString();
    this.report.durationMs = Date.now() - started;
    return this.report;
  }

  /** Counts an object and, unless it is equal, keeps its report. */
  private record(type: ObjectType, object: Omit<ObjectReport, 'type' | 'state' | 'differences' | 'omitted'>, diffs: DifferenceList, missing?: 'missing-in-destination' | 'missing-in-source'): void {
    const counts = this.report.summary[type];
    counts.compared++;
    const state = missing ?? (diffs.count > 0 ? 'different' : 'equal');
    if (state === 'equal') {
      counts.equal++;
      return;
    }
    if (state === 'different') counts.different++;
    else if (state === 'missing-in-destination') counts.missingInDestination++;
    else counts.missingInSource++;
    this.report.objects.push({ type, state, ...object, differences: [...diffs.kept].sort((a, b) => a.path.localeCompare(b.path)), omitted: diffs.omitted });
  }

  /**
   * Compares one object; a read that fails (after the retries of the HTTP or database layer)
   * leaves it uncompared and the report incomplete, and the rest is still compared. A usage
   * error (refused credentials) stops everything.
   */
  private async guarded(path: string, compare: () => Promise<void>): Promise<void> {
    try {
      await compare();
    } catch (err) {
      if (err instanceof TrackshiftError && err.exitCode === 2) throw err;
      this.report.incomplete.push({ path, reason: errorMessage(err) });
    }
  }

  private note(text: string): void {
    if (!this.report.notes.includes(text)) this.report.notes.push(text);
  }

  private diffs(): DifferenceList {
    return new DifferenceList(this.options.maxDifferences);
  }

  private async compareExperiment(plan: ExperimentPlan, dstExperiments: Experiment[]): Promise<void> {
    const { experiment } = plan;
    const name = plan.destinationName;
    const prefix = `${name}/`;
    const there = dstExperiments.find((e) => e.name === name);
    if (!there) {
      const diffs = this.diffs();
      for (const run of plan.runs) {
        diffs.add(`${prefix}${run.id}`, run.name ?? run.id, undefined);
        this.report.summary.run.compared++;
        this.report.summary.run.missingInDestination++;
      }
      this.record('experiment', { path: name, experiment: name, sourceId: experiment.id, name }, diffs, 'missing-in-destination');
      return;
    }
    const diffs = this.diffs();
    compareField('lifecycle', experiment.lifecycle, there.lifecycle, prefix, diffs);
    compareMaps('tag', userTags(experiment.tags), userTags(there.tags), prefix, diffs);
    this.record('experiment', { path: name, experiment: name, sourceId: experiment.id, destinationId: there.id, name }, diffs);

    const { selection } = this.options;
    const index = new RunIndex(await collect(this.dst.listRuns(there.id, { includeDeleted: true })));
    const pairs = plan.runs.map((run) => {
      const found = index.find(run);
      if (found) {
        this.report.matching[found.by]++;
        this.runIds.set(run.id, found.run.id);
        this.ids.set(run.id, found.run.id);
      }
      return { run, there: found?.run };
    });
    await this.mapLoggedModels(plan, there.id);
    const limit = pLimit(this.options.workers);
    await Promise.all(pairs.map(({ run, there: match }) => limit(() => this.guarded(`${name}/${run.id}`, () => this.compareRun(name, run, match, index)))));

    // runs only the destination has, when whole experiments were selected (not runs, not a window)
    const wholeExperiment =
      selection.runIds.length === 0 && selection.statuses.length === 0 && selection.tags.length === 0 && selection.runNames.length === 0 && selection.startAfter === undefined && selection.startBefore === undefined && !selection.filter &&
      (selection.experiments.length > 0 || selection.models.length === 0);
    if (wholeExperiment && selection.scope !== 'models') {
      for (const run of index.runs) {
        if (index.matched.has(run.id) || (run.lifecycle === 'deleted' && !selection.includeDeleted)) continue;
        const extra = this.diffs();
        extra.add(`${prefix}${run.id}`, undefined, run.name ?? run.id);
        this.record('run', { path: `${prefix}${run.id}`, experiment: name, destinationId: run.id, name: run.name }, extra, 'missing-in-source');
      }
    }
  }

  /** logged models' ids on both sides (by provenance), for the MLmodel files that name them */
  private async mapLoggedModels(plan: ExperimentPlan, destinationExperimentId: string): Promise<void> {
    if (plan.loggedModels.length === 0 || !this.dst.loggedModels) return;
    const wanted = new Set(plan.loggedModels.map((m) => m.id));
    for await (const model of this.dst.loggedModels.listLoggedModels(destinationExperimentId)) {
      const origin = model.tags[SOURCE_TAGS.id];
      if (origin && wanted.has(origin)) this.ids.set(origin, model.id);
    }
  }

  /**
   * The source run a destination run stands for when it is in another experiment (a fork's
   * parent may be): its provenance tag, looked up directly where the destination can.
   */
  private async originOfElsewhere(id: string): Promise<string> {
    const found = this.dst.getRun ? await this.dst.getRun(id).catch(() => undefined) : undefined;
    return found?.tags[SOURCE_TAGS.id] ?? id;
  }

  private async compareRun(experimentName: string, run: Run, there: Run | undefined, index: RunIndex): Promise<void> {
    const path = `${experimentName}/${run.id}`;
    const prefix = `${path}/`;
    const diffs = this.diffs();
    const object = { path, experiment: experimentName, sourceId: run.id, name: run.name, ...(there ? { destinationId: there.id } : {}) };
    if (!there) {
      this.record('run', object, diffs, 'missing-in-destination');
      this.options.onEvent?.({ type: 'run-verified', sourceId: run.id, equal: false });
      return;
    }
    compareField('name', run.name, there.name, prefix, diffs);
    compareField('status', run.status, there.status, prefix, diffs);
    compareField('start_time', run.startTime, there.startTime, prefix, diffs);
    compareField('end_time', run.endTime, there.endTime, prefix, diffs);
    compareField('user', run.user, there.user, prefix, diffs);
    compareField('lifecycle', run.lifecycle, there.lifecycle, prefix, diffs);
    // the parent as the source id it stands for: a copy's parent is the copy of the source's parent
    compareField('parent', run.parentId, there.parentId === undefined ? undefined : index.originOf(there.parentId), prefix, diffs);
    // the fork's parent too: the source run the destination's parent is the copy of
    const forkOrigin = there.fork && (index.byId.has(there.fork.runId) ? index.originOf(there.fork.runId) : await this.originOfElsewhere(there.fork.runId));
    if (run.fork?.runId !== forkOrigin || run.fork?.step !== there.fork?.step) diffs.add(`${prefix}fork`, forkText(run.fork), forkText(there.fork, forkOrigin));
    compareField('group', run.group, there.group, prefix, diffs);
    compareField('source_state', run.sourceState, there.sourceState, prefix, diffs);
    compareMaps('param', run.params, there.params, prefix, diffs);
    compareEntries('config', run.config, there.config, prefix, diffs);
    compareEntries('summary', run.summary, there.summary, prefix, diffs);
    // MLflow keeps the run name in a tag as well: one that repeats the name is the name (compared above)
    const nameTag = (r: Run) => (r.tags[MLFLOW_TAGS.runName] === r.name ? [MLFLOW_TAGS.runName] : []);
    compareMaps('tag', userTags(run.tags, [MLFLOW_TAGS.parentRunId, ...nameTag(run)]), userTags(there.tags, [MLFLOW_TAGS.parentRunId, ...nameTag(there)]), prefix, diffs);
    compareInputs(run.inputs, there.inputs, prefix, diffs);

    const charts: MetricChart[] = [];
    const histories = !this.sampled || this.sampled.has(run.id);
    const series = await compareSeries({ source: this.src, run }, { source: this.dst, run: there }, { points: histories, fileLimit: this.artifactLimit }, prefix, diffs);
    const { compared } = this.report;
    compared.metricPoints += series.points.float;
    for (const type of ['string', 'file', 'histogram'] as const) compared.seriesPoints[type] += series.points[type];
    compared.seriesFiles += series.files;
    compared.seriesFileBytes += series.fileBytes;
    if (this.options.charts) {
      for (const key of series.differingFloats.slice(0, CHARTS_PER_RUN)) charts.push(await chartOf(key, { source: this.src, run }, { source: this.dst, run: there }));
    }
    if (histories) {
      const artifacts = await compareArtifacts(
        { list: () => this.src.listArtifacts(run), read: (p) => this.src.readArtifact(run, p) },
        { list: () => this.dst.listArtifacts(there), read: (p) => this.dst.readArtifact(there, p) },
        this.ids,
        prefix,
        diffs,
        this.artifactLimit,
      );
      compared.artifacts += artifacts.files;
      compared.artifactBytes += artifacts.bytes;
    }
    this.record('run', { ...object, ...(charts.length > 0 ? { charts } : {}) }, diffs);
    this.options.onEvent?.({ type: 'run-verified', sourceId: run.id, equal: diffs.count === 0 });
  }

  private async compareModel(plan: ModelPlan): Promise<void> {
    const registry = this.dst.registry!;
    const name = plan.destinationName;
    const path = `model:${name}`;
    const prefix = `${path}/`;
    const there = await registry.getModel(name);
    const diffs = this.diffs();
    if (!there) {
      for (const v of plan.versions) {
        diffs.add(`${prefix}version:${v.version}`, v.stage, undefined);
        this.report.summary.version.compared++;
        this.report.summary.version.missingInDestination++;
      }
      this.record('model', { path, model: name, sourceId: plan.model.name, name }, diffs, 'missing-in-destination');
      return;
    }
    const versions = await collect(registry.listVersions(name));
    // source version number → the destination version copied from it
    const numbers = new Map<string, ModelVersion>();
    const taken = new Set<string>();
    for (const v of plan.versions) {
      const key = `${plan.model.name}/${v.version}`;
      const found = versions.find((d) => d.tags[SOURCE_TAGS.id] === key) ?? versions.find((d) => d.version === v.version && !d.tags[SOURCE_TAGS.id] && !taken.has(d.version));
      if (found) {
        numbers.set(v.version, found);
        taken.add(found.version);
      }
    }
    compareField('description', plan.model.description || undefined, there.description || undefined, prefix, diffs);
    compareMaps('tag', userTags(plan.model.tags), userTags(there.tags), prefix, diffs);
    const wholeModel = this.options.selection.versions.length === 0 && this.options.selection.stages.length === 0 && !this.options.selection.latestVersions;
    // a registry without stages holds them as the aliases a copy makes of them
    const stageless = registry.hasStages === false && this.src.registry?.hasStages !== false;
    const expectedAliases = { ...plan.model.aliases };
    if (stageless) {
      const copied = plan.versions.filter((v) => numbers.has(v.version));
      for (const [alias, newest] of stageAliases(copied, (a) => a in plan.model.aliases)) expectedAliases[alias] = newest.version;
      if (plan.versions.some((v) => v.stage !== 'None')) this.note(`${this.dst.uri} has no stages: stages were compared as the aliases a copy makes of them (the newest version in each stage)`);
    }
    const aliases = new Set([...Object.keys(expectedAliases), ...(wholeModel ? Object.keys(there.aliases) : [])]);
    for (const alias of [...aliases].sort()) {
      const sourceNumber = expectedAliases[alias];
      // an alias on a version that was not selected is not expected on the destination
      if (sourceNumber !== undefined && !wholeModel && !numbers.has(sourceNumber)) continue;
      const expected = sourceNumber === undefined ? undefined : (numbers.get(sourceNumber)?.version ?? sourceNumber);
      if (expected !== there.aliases[alias]) diffs.add(`${prefix}alias:${alias}`, sourceNumber === undefined ? undefined : `version ${sourceNumber}${expected !== sourceNumber ? ` (copied as ${expected})` : ''}`, there.aliases[alias] === undefined ? undefined : `version ${there.aliases[alias]}`);
    }
    this.record('model', { path, model: name, sourceId: plan.model.name, name }, diffs);

    for (const v of plan.versions) {
      const match = numbers.get(v.version);
      const vPath = `${prefix}version:${v.version}`;
      const vDiffs = this.diffs();
      const object = { path: vPath, model: name, sourceId: v.version, ...(match ? { destinationId: match.version } : {}) };
      if (!match) {
        this.record('version', object, vDiffs, 'missing-in-destination');
        continue;
      }
      const at = `${vPath}/`;
      if (!stageless) compareField('stage', v.stage, match.stage, at, vDiffs);
      compareField('status', v.status, match.status, at, vDiffs);
      compareField('description', v.description || undefined, match.description || undefined, at, vDiffs);
      compareMaps('tag', userTags(v.tags), userTags(match.tags), at, vDiffs);
      // deep copies point at the copied run, shallow ones at the source's
      const expectedRun = v.runId === undefined ? undefined : (this.runIds.get(v.runId) ?? v.runId);
      if (expectedRun !== match.runId) vDiffs.add(`${at}run`, v.runId === undefined ? undefined : `${v.runId}${expectedRun !== v.runId ? ` (copied as ${expectedRun})` : ''}`, match.runId);
      this.record('version', object, vDiffs);
    }
    if (wholeModel) {
      const copies = new Set([...numbers.values()].map((v) => v.version));
      for (const v of versions) {
        if (copies.has(v.version)) continue;
        const extra = this.diffs();
        extra.add(`${prefix}version:${v.version}`, undefined, v.stage);
        this.record('version', { path: `${prefix}version:${v.version}`, model: name, destinationId: v.version }, extra, 'missing-in-source');
      }
    }
  }
}

export function verifySources(src: Source, dst: Source, options: VerifyOptions): Promise<VerifyReport> {
  return new Verifier(src, dst, options).run();
}
