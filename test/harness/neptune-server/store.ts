/**
 * What the Neptune-shaped test server holds: workspaces' projects and their containers (runs, and
 * the project itself, which the 2.x client reads as a container whose id is the project's),
 * each a map of attribute path → typed attribute, changed by the operations the 2.x client
 * sends (`executeOperations`), as Neptune applies them. The `sys/*` attributes the server owns
 * are computed when read.
 */
import { randomUUID } from 'node:crypto';

export interface SeriesPoint {
  step: number;
  value: number | string;
  timestampMillis: number;
}
export interface ImagePoint {
  step: number;
  data: Buffer;
  name?: string;
  description?: string;
  timestampMillis: number;
}

export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'experimentState'; value: string }
  /** epoch milliseconds */
  | { type: 'datetime'; value: number }
  | { type: 'floatSeries'; points: SeriesPoint[]; config?: Record<string, unknown> }
  | { type: 'stringSeries'; points: SeriesPoint[] }
  | { type: 'imageSeries'; points: ImagePoint[] }
  | { type: 'stringSet'; values: string[] }
  | { type: 'file'; name: string; ext: string; data: Buffer }
  | { type: 'fileSet'; files: Map<string, Buffer> }
  | { type: 'artifact'; hash: string }
  | { type: 'gitRef'; commitId: string };

export interface Project {
  id: string;
  workspace: string;
  name: string;
  key: string;
  visibility: string;
  description: string;
  created: number;
  /** runs made so far: the next short id is KEY-(count+1) */
  count: number;
}

export interface Container {
  id: string;
  kind: 'run' | 'project';
  shortId: string;
  project: Project;
  created: number;
  modified: number;
  pinged?: number;
  customId?: string;
  attributes: Map<string, Attribute>;
}

export interface ArtifactFile {
  filePath: string;
  fileHash: string;
  type: string;
  size?: number;
  metadata: Array<{ key: string; value: string }>;
}

/** a run counts as running this long after its last ping (the 2.x client pings every 10 s) */
const RUNNING_FOR_MS = 30_000;

export class NeptuneStore {
  /** workspace name → its id */
  readonly workspaces = new Map<string, string>();
  readonly projects = new Map<string, Project>();
  readonly containers = new Map<string, Container>();
  /** artifact hash → its files, per project */
  readonly artifacts = new Map<string, ArtifactFile[]>();

  addWorkspace(name: string): string {
    let id = this.workspaces.get(name);
    if (!id) this.workspaces.set(name, (id = randomUUID()));
    return id;
  }

  addProject(workspace: string, name: string, key = name.replace(/[^A-Za-z]/g, '').slice(0, 3).toUpperCase() || 'PRJ', visibility = 'priv', description = ''): Project {
    this.addWorkspace(workspace);
    const project: Project = { id: randomUUID(), workspace, name, key, visibility, description, created: Date.now(), count: 0 };
    this.projects.set(`${workspace}/${name}`, project);
    this.containers.set(project.id, { id: project.id, kind: 'project', shortId: key, project, created: project.created, modified: project.created, attributes: new Map() });
    return project;
  }

  /** by `ws/name` or by id */
  project(identifier: string): Project | undefined {
    return this.projects.get(identifier) ?? [...this.projects.values()].find((p) => p.id === identifier);
  }

  /** by uuid or by `ws/proj/SHORT-ID` */
  container(identifier: string): Container | undefined {
    const byId = this.containers.get(identifier);
    if (byId) return byId;
    return [...this.containers.values()].find((c) => `${c.project.workspace}/${c.project.name}/${c.shortId}` === identifier);
  }

  runs(project: Project): Container[] {
    return [...this.containers.values()].filter((c) => c.kind === 'run' && c.project === project);
  }

  /** a new run, or the run of the same custom id (what makes the client's re-run resume) */
  createRun(project: Project, customId: string | undefined, gitCommit: string | undefined): Container {
    if (customId) {
      const existing = this.runs(project).find((r) => r.customId === customId);
      if (existing) return existing;
    }
    project.count += 1;
    const now = Date.now();
    const run: Container = { id: randomUUID(), kind: 'run', shortId: `${project.key}-${project.count}`, project, created: now, modified: now, ...(customId ? { customId } : {}), attributes: new Map() };
    if (gitCommit) run.attributes.set('source_code/git', { type: 'gitRef', commitId: gitCommit });
    this.containers.set(run.id, run);
    return run;
  }

  /** what the client reads: the server's own sys/* and the run's attributes */
  attributes(c: Container, now = Date.now()): Map<string, Attribute> {
    const out = new Map<string, Attribute>();
    if (c.kind === 'project') {
      out.set('sys/id', { type: 'string', value: c.project.key });
      out.set('sys/name', { type: 'string', value: c.project.name });
      out.set('sys/visibility', { type: 'string', value: { priv: 'private', pub: 'public' }[c.project.visibility] ?? c.project.visibility });
      out.set('sys/creation_time', { type: 'datetime', value: c.created });
    } else {
      out.set('sys/id', { type: 'string', value: c.shortId });
      out.set('sys/creation_time', { type: 'datetime', value: c.created });
      out.set('sys/modification_time', { type: 'datetime', value: c.modified });
      out.set('sys/ping_time', { type: 'datetime', value: c.pinged ?? c.modified });
      out.set('sys/owner', { type: 'string', value: 'tester' });
      out.set('sys/state', { type: 'experimentState', value: c.pinged !== undefined && now - c.pinged < RUNNING_FOR_MS ? 'running' : 'idle' });
      out.set('sys/trashed', { type: 'bool', value: false });
      out.set('sys/size', { type: 'float', value: sizeOf(c) });
      out.set('sys/running_time', { type: 'float', value: ((c.pinged ?? c.created) - c.created) / 1000 });
      out.set('sys/monitoring_time', { type: 'int', value: 0 });
      if (c.customId) out.set('sys/custom_run_id', { type: 'string', value: c.customId });
    }
    for (const [path, attribute] of c.attributes) out.set(path, attribute);
    return out;
  }
}

function sizeOf(c: Container): number {
  let bytes = 0;
  for (const a of c.attributes.values()) {
    if (a.type === 'file') bytes += a.data.length;
    else if (a.type === 'fileSet') for (const data of a.files.values()) bytes += data.length;
    else if (a.type === 'imageSeries') for (const p of a.points) bytes += p.data.length;
    else if (a.type === 'floatSeries' || a.type === 'stringSeries') bytes += a.points.length * 24;
  }
  return bytes;
}

type Operation = Record<string, unknown> & { path: string };

/**
 * One operation of `executeOperations` applied as Neptune applies it; an error description
 * when it cannot be (the client logs it and goes on).
 */
export function applyOperation(c: Container, op: Operation): string | undefined {
  const { path } = op;
  const [kind, body] = Object.entries(op).find(([k]) => k !== 'path') ?? [];
  const b = (body ?? {}) as Record<string, unknown>;
  const a = c.attributes;
  c.modified = Date.now();
  switch (kind) {
    case 'assignFloat':
      a.set(path, { type: 'float', value: Number(b.value) });
      return;
    case 'assignInt':
      a.set(path, { type: 'int', value: Number(b.value) });
      return;
    case 'assignBool':
      a.set(path, { type: 'bool', value: Boolean(b.value) });
      return;
    case 'assignString':
      a.set(path, { type: 'string', value: String(b.value) });
      return;
    case 'assignDatetime':
      a.set(path, { type: 'datetime', value: Number(b.valueMilliseconds) });
      return;
    case 'logFloats':
    case 'logStrings': {
      const type = kind === 'logFloats' ? 'floatSeries' : 'stringSeries';
      const existing = a.get(path);
      const series = existing?.type === type ? existing : { type, points: [] as SeriesPoint[] };
      if (existing?.type !== type) a.set(path, series as Attribute);
      for (const e of (b.entries ?? []) as Array<Record<string, unknown>>) {
        const last = series.points[series.points.length - 1];
        // a point without a step continues the series (last step + 1), as Neptune numbers them
        const step = typeof e.step === 'number' ? e.step : last ? last.step + 1 : 0;
        if (last && step <= last.step) return `${path}: step ${step} is not greater than the last step ${last.step}`;
        series.points.push({ step, value: type === 'floatSeries' ? Number(e.value) : String(e.value), timestampMillis: Number(e.timestampMilliseconds) });
      }
      return;
    }
    case 'logImages': {
      const existing = a.get(path);
      const series = existing?.type === 'imageSeries' ? existing : { type: 'imageSeries' as const, points: [] as ImagePoint[] };
      if (existing?.type !== 'imageSeries') a.set(path, series);
      for (const e of (b.entries ?? []) as Array<Record<string, unknown>>) {
        const value = (e.value ?? {}) as Record<string, unknown>;
        const last = series.points[series.points.length - 1];
        const step = typeof e.step === 'number' ? e.step : last ? last.step + 1 : 0;
        series.points.push({
          step,
          data: Buffer.from(String(value.data ?? ''), 'base64'),
          ...(typeof value.name === 'string' ? { name: value.name } : {}),
          ...(typeof value.description === 'string' ? { description: value.description } : {}),
          timestampMillis: Number(e.timestampMilliseconds),
        });
      }
      return;
    }
    case 'clearFloatSeries':
    case 'clearStringSeries':
    case 'clearImageSeries': {
      const existing = a.get(path);
      if (existing && 'points' in existing) existing.points = [];
      return;
    }
    case 'configFloatSeries': {
      const existing = a.get(path);
      if (existing?.type === 'floatSeries') existing.config = b;
      else a.set(path, { type: 'floatSeries', points: [], config: b });
      return;
    }
    case 'insertStrings':
    case 'removeStrings': {
      const existing = a.get(path);
      const values = new Set(existing?.type === 'stringSet' ? existing.values : []);
      for (const v of (b.values ?? []) as string[]) {
        if (kind === 'insertStrings') values.add(v);
        else values.delete(v);
      }
      a.set(path, { type: 'stringSet', values: [...values].sort() });
      return;
    }
    case 'clearStringSet':
      a.set(path, { type: 'stringSet', values: [] });
      return;
    case 'deleteAttribute':
      a.delete(path);
      return;
    case 'assignArtifact':
      a.set(path, { type: 'artifact', hash: String(b.hash) });
      return;
    case 'deleteFiles': {
      const existing = a.get(path);
      if (existing?.type === 'fileSet') for (const f of (b.filePaths ?? []) as string[]) existing.files.delete(f);
      return;
    }
    case 'clearArtifact':
      a.delete(path);
      return;
    default:
      return `unsupported operation ${String(kind)}`;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** An attribute as the API's attribute DTO (`{name, type, <type>Properties}`). */
export function attributeDto(name: string, a: Attribute): Record<string, unknown> {
  const common = { attributeName: name, attributeType: a.type };
  const props = (() => {
    switch (a.type) {
      case 'float':
      case 'int':
      case 'bool':
      case 'string':
      case 'experimentState':
        return { value: a.value };
      case 'datetime':
        return { value: iso(a.value) };
      case 'floatSeries':
      case 'stringSeries': {
        const last = a.points[a.points.length - 1];
        return { last: last?.value ?? null, lastStep: last?.step ?? null };
      }
      case 'imageSeries':
        return { lastStep: a.points[a.points.length - 1]?.step ?? null };
      case 'stringSet':
        return { values: a.values };
      case 'file':
        return { name: a.name, ext: a.ext, size: a.data.length };
      case 'fileSet':
        return { size: [...a.files.values()].reduce((n, d) => n + d.length, 0) };
      case 'artifact':
        return { hash: a.hash };
      case 'gitRef':
        return { commit: { commitId: a.commitId } };
    }
  })();
  return { name, type: a.type, [`${a.type}Properties`]: { ...common, ...props } };
}

/** The value NQL compares: atoms as they are, a datetime as ISO text, a set as its values. */
export function comparable(a: Attribute): unknown {
  if (a.type === 'datetime') return iso(a.value);
  if (a.type === 'stringSet') return a.values;
  if (a.type === 'floatSeries' || a.type === 'stringSeries') return a.points[a.points.length - 1]?.value;
  return 'value' in a ? a.value : undefined;
}
