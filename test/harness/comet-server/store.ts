/**
 * What the Comet-shaped test server holds, in memory: workspaces, projects, experiments and
 * everything logged to them. Every metric point is kept (Comet's 15,000-point sampling is the
 * offline client's business, not the server's). Asset bytes go to a temporary folder so that a
 * large upload does not sit in the heap.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A metric point as comet_ml's REST reads return it (`metricValue` a string, as Comet sends it). */
export interface MetricPoint {
  metricName: string;
  metricValue: string;
  timestamp: number | null;
  step: number | null;
  epoch: number | null;
  runContext: string | null;
  offset: number;
}

/** One value of a parameter or log-other, in the order received. */
export interface Logged {
  value: string;
  timestamp: number;
  step: number | null;
}

export interface OutputLine {
  output: string;
  stderr: boolean;
  localTimestamp: number | null;
  offset: number;
  runContext: string | null;
}

export interface Asset {
  assetId: string;
  fileName: string;
  fileSize: number;
  type: string;
  step: number | null;
  epoch: number | null;
  runContext: string | null;
  /** the JSON string the client sent, as Comet gives it back */
  metadata: string | null;
  createdAt: number;
  remote: boolean;
  link: string | null;
  groupingName: string | null;
  /** where the bytes are (null for a remote asset) */
  file: string | null;
}

export interface Experiment {
  key: string;
  projectId: string;
  runId: string;
  name: string | null;
  startTimeMillis: number;
  endTimeMillis: number;
  running: boolean;
  archived: boolean;
  offline: boolean;
  fileName: string | null;
  filePath: string | null;
  tags: string[];
  metrics: Map<string, MetricPoint[]>;
  params: Map<string, Logged[]>;
  others: Map<string, Logged[]>;
  html: string;
  code: string | null;
  graph: string | null;
  output: OutputLine[];
  systemDetails: Record<string, unknown>;
  gitMetadata: Record<string, unknown> | null;
  gitPatch: Buffer | null;
  assets: Asset[];
  dependencies: Array<{ name: string; version: string }>;
  cloudDetails: Record<string, unknown> | null;
  nextOffset: number;
}

export interface Project {
  projectId: string;
  projectName: string;
  workspaceName: string;
  projectDescription: string | null;
  notes: string;
  public: boolean;
  lastUpdated: number;
}

/** 32 hex characters, the shape of Comet's keys and ids */
export const newId = (): string => randomBytes(16).toString('hex');

/** Comet's rule for experiment keys (comet_ml's is_valid_experiment_key): 32–50 alphanumerics */
export const validKey = (key: string): boolean => /^[a-zA-Z0-9]{32,50}$/.test(key);

export class CometStore {
  readonly workspaces = new Set<string>();
  readonly projects = new Map<string, Project>();
  readonly experiments = new Map<string, Experiment>();
  private assetCount = 0;

  constructor(
    readonly assetDir: string,
    readonly defaultWorkspace: string,
  ) {
    mkdirSync(assetDir, { recursive: true });
    this.workspaces.add(defaultWorkspace);
  }

  project(workspace: string, name: string): Project | undefined {
    for (const p of this.projects.values()) if (p.workspaceName === workspace && p.projectName === name) return p;
    return undefined;
  }

  /** The project, made when missing (as the handshake and write/experiment/create do). */
  ensureProject(workspace: string, name: string, description: string | null = null, isPublic = false): Project {
    this.workspaces.add(workspace);
    const existing = this.project(workspace, name);
    if (existing) return existing;
    const p: Project = { projectId: newId(), projectName: name, workspaceName: workspace, projectDescription: description, notes: '', public: isPublic, lastUpdated: Date.now() };
    this.projects.set(p.projectId, p);
    return p;
  }

  createExperiment(key: string, project: Project, offline: boolean): Experiment {
    const now = Date.now();
    const e: Experiment = {
      key,
      projectId: project.projectId,
      runId: newId(),
      name: null,
      startTimeMillis: now,
      endTimeMillis: now,
      running: !offline,
      archived: false,
      offline,
      fileName: null,
      filePath: null,
      tags: [],
      metrics: new Map(),
      params: new Map(),
      others: new Map(),
      html: '',
      code: null,
      graph: null,
      output: [],
      systemDetails: {},
      gitMetadata: null,
      gitPatch: null,
      assets: [],
      dependencies: [],
      cloudDetails: null,
      nextOffset: 0,
    };
    this.experiments.set(key, e);
    project.lastUpdated = now;
    return e;
  }

  experimentsOf(projectId: string): Experiment[] {
    return [...this.experiments.values()].filter((e) => e.projectId === projectId);
  }

  addMetric(e: Experiment, p: Omit<MetricPoint, 'offset'>): void {
    let points = e.metrics.get(p.metricName);
    if (!points) e.metrics.set(p.metricName, (points = []));
    points.push({ ...p, offset: e.nextOffset++ });
    this.touch(e);
  }

  addLogged(map: Map<string, Logged[]>, name: string, value: string, timestamp: number | null, step: number | null): void {
    let values = map.get(name);
    if (!values) map.set(name, (values = []));
    values.push({ value, timestamp: timestamp ?? Date.now(), step });
  }

  addTags(e: Experiment, tags: readonly string[]): void {
    for (const t of tags) if (!e.tags.includes(t)) e.tags.push(t);
  }

  /** Stores an asset's bytes; an asset with the same id (or name, when overwrite is asked) is replaced. */
  addAsset(e: Experiment, asset: Omit<Asset, 'file' | 'fileSize' | 'createdAt'>, bytes: Buffer | null, overwrite: boolean): Asset {
    let file: string | null = null;
    if (bytes) {
      file = join(this.assetDir, `asset-${++this.assetCount}`);
      writeFileSync(file, bytes);
    }
    const stored: Asset = { ...asset, file, fileSize: bytes?.length ?? 0, createdAt: Date.now() };
    const at = e.assets.findIndex((a) => a.assetId === asset.assetId || (overwrite && a.fileName === asset.fileName && a.type === asset.type));
    if (at >= 0) {
      const old = e.assets[at]!;
      if (old.file) rmSync(old.file, { force: true });
      e.assets[at] = stored;
    } else e.assets.push(stored);
    this.touch(e);
    return stored;
  }

  assetBytes(a: Asset): Buffer {
    return a.file ? readFileSync(a.file) : Buffer.alloc(0);
  }

  private touch(e: Experiment): void {
    const p = this.projects.get(e.projectId);
    if (p) p.lastUpdated = Date.now();
  }

  dispose(): void {
    rmSync(this.assetDir, { recursive: true, force: true });
  }
}
