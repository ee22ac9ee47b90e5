/**
 * Finding the experiment folders under a location (ROOT, ROOT/WS, ROOT/WS/PROJ or one experiment
 * folder) and reading one experiment's small files: what the run is, without its metric points
 * (read later, streamed, by read.ts). Only metric names are gathered here, in one streamed pass.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { InvalidInputError, errorMessage } from '../../util/errors.js';
import { isDir, isFile, listDirs, walkFiles } from '../../util/fs.js';
import { quoted, relativePathProblem, safeJoin } from '../../util/paths.js';
import { STDERR_KEY, STDOUT_KEY } from '../comet-common/layout.js';
import {
  parseRecord,
  restAssetSchema,
  restGitMetadataSchema,
  restMetadataSchema,
  restMetricSchema,
  restProjectSchema,
  restRunOf,
  restSystemDetailsSchema,
  restValueSchema,
  type RestAsset,
  type RestMetadata,
  type RestProject,
  type RestRun,
  type RestValue,
} from '../comet-common/rest.js';
import { EXPERIMENT_MARKERS, FILES, NOT_PROJECTS, assetFile, parsePythonJson, splitMetricFile } from './format.js';

/** An experiment folder and the workspace and project its place in the tree says. */
export interface ExperimentFolder {
  dir: string;
  workspace: string | undefined;
  project: string;
  projectDir: string;
}

/** how many sub-folders detection looks into at each level (a large foreign tree is not walked whole) */
const PROBE = 50;

const hasFile = async (dir: string, name: string): Promise<boolean> => isFile(join(dir, ...name.split('/')));

/** Whether `dir` is one experiment of a cometx download: one of its files, or a metadata.json cometx wrote. */
export async function isExperimentDir(dir: string): Promise<boolean> {
  for (const marker of EXPERIMENT_MARKERS) if (await hasFile(dir, marker)) return true;
  if (!(await hasFile(dir, FILES.metadata))) return false;
  try {
    const json = JSON.parse(await readFile(join(dir, FILES.metadata), 'utf8')) as Record<string, unknown>;
    return typeof json === 'object' && json !== null && ('cometDownloadVersion' in json || typeof json.experimentKey === 'string');
  } catch {
    return false;
  }
}

const subDirs = async (dir: string): Promise<string[]> => (await listDirs(dir)).filter((name) => !name.startsWith('.')).map((name) => join(dir, name));

/** How deep below `location` the experiment folders are (0: it is one), probing a few folders per level; undefined: none. */
export async function experimentDepth(location: string): Promise<number | undefined> {
  if (!(await isDir(location))) return undefined;
  let level = [location];
  for (let depth = 0; depth <= 3; depth++) {
    for (const dir of level) if (await isExperimentDir(dir)) return depth;
    const next: string[] = [];
    for (const dir of level.slice(0, PROBE)) {
      const children = (await subDirs(dir)).filter((child) => depth !== 1 || !NOT_PROJECTS.has(basename(child)));
      next.push(...children.slice(0, PROBE));
    }
    level = next;
  }
  return undefined;
}

/** Every experiment folder under `location`, sorted by path. */
export async function experimentFolders(location: string): Promise<ExperimentFolder[]> {
  const depth = await experimentDepth(location);
  if (depth === undefined) return [];
  let level = [location];
  for (let d = 0; d < depth; d++) {
    const next: string[] = [];
    // at ROOT/WS/ (two levels above the experiments) cometx's panels, artifacts and model registry are no projects
    for (const dir of level) next.push(...(await subDirs(dir)).filter((child) => depth - d !== 2 || !NOT_PROJECTS.has(basename(child))));
    level = next;
  }
  const found: ExperimentFolder[] = [];
  for (const dir of level.sort()) {
    if (!(await isExperimentDir(dir))) continue;
    const projectDir = dirname(dir);
    found.push({ dir, project: basename(projectDir), workspace: basename(dirname(projectDir)) || undefined, projectDir });
  }
  if (depth === 0 && found[0]) {
    // one experiment folder given (perhaps a `--flat` download, outside WS/PROJ): its metadata names its project
    const named = await namesOf(found[0].dir);
    if (named.project) found[0] = { ...found[0], project: named.project, workspace: named.workspace ?? found[0].workspace };
  }
  return found;
}

/** The project and workspace an experiment's metadata.json names, when it is there and names them. */
async function namesOf(dir: string): Promise<{ project?: string; workspace?: string }> {
  try {
    const json = JSON.parse(await readFile(join(dir, FILES.metadata), 'utf8')) as Record<string, unknown>;
    const project = typeof json.projectName === 'string' && json.projectName !== '' ? json.projectName : undefined;
    const workspace = typeof json.workspaceName === 'string' && json.workspaceName !== '' ? json.workspaceName : undefined;
    return { ...(project ? { project } : {}), ...(workspace ? { workspace } : {}) };
  } catch {
    return {};
  }
}

/** project_metadata.json and project_notes.md of a project folder, when there. */
export async function readProject(projectDir: string): Promise<{ metadata?: RestProject; notes?: string }> {
  const file = join(projectDir, FILES.projectMetadata);
  const metadata = (await isFile(file)) ? parseRecord(restProjectSchema, parsePythonJson(await readFile(file, 'utf8'), file), file) : undefined;
  const notesFile = join(projectDir, FILES.projectNotes);
  const notes = (await isFile(notesFile)) ? await readFile(notesFile, 'utf8') : undefined;
  return { ...(metadata ? { metadata } : {}), ...(notes !== undefined ? { notes } : {}) };
}

/** The lines of a text file, streamed, with their 1-based numbers. */
export async function* fileLines(file: string): AsyncGenerator<{ text: string; lineNo: number }> {
  const input = createReadStream(file);
  const lines = createInterface({ input, crlfDelay: Infinity });
  let lineNo = 0;
  try {
    for await (const text of lines) yield { text, lineNo: ++lineNo };
  } catch (err) {
    throw new InvalidInputError(file, `cannot be read (${errorMessage(err)})`);
  } finally {
    lines.close();
    input.destroy();
  }
}

async function jsonFile(dir: string, name: string): Promise<unknown> {
  const file = join(dir, ...name.split('/'));
  if (!(await isFile(file))) return undefined;
  return parsePythonJson(await readFile(file, 'utf8'), file);
}

async function textFile(dir: string, name: string): Promise<string | undefined> {
  const file = join(dir, ...name.split('/'));
  return (await isFile(file)) ? readFile(file, 'utf8') : undefined;
}

/** The records of a JSON-lines file, validated; blank lines skipped. */
async function jsonLines<T>(dir: string, name: string, schema: z.ZodType<T>): Promise<T[]> {
  const file = join(dir, ...name.split('/'));
  if (!(await isFile(file))) return [];
  const records: T[] = [];
  for await (const { text, lineNo } of fileLines(file)) {
    if (text.trim() === '') continue;
    const where = `${file}:${lineNo}`;
    records.push(parseRecord(schema, parsePythonJson(text, where), where));
  }
  return records;
}

const summaryLine = z.object({ metric: z.string(), count: z.number().int().nonnegative() });

export interface ScannedExperiment {
  folder: ExperimentFolder;
  metadata?: RestMetadata;
  rest: RestRun;
  /** metric name → the file holding its points (metrics.jsonl, or the wandb variant's own file) */
  metricFiles: Map<string, string>;
  /** asset → its file, relative to the experiment folder */
  assetFiles: Map<RestAsset, string>;
  /** the other files, kept as artifacts at their path */
  files: Map<string, number>;
  warnings: string[];
}

/** Reads one experiment folder's records (not its metric points) and maps them onto the model. */
export async function scanExperiment(folder: ExperimentFolder, experimentId: string): Promise<ScannedExperiment> {
  const { dir } = folder;
  const warnings: string[] = [];
  const used = new Set<string>([FILES.metadata, FILES.metrics, FILES.metricsSummary, FILES.parameters, FILES.others, FILES.systemDetails, FILES.assetsMetadata, FILES.output, FILES.outputChunks, FILES.requirements, FILES.graph, FILES.gitMetadata]);
  const metadataJson = await jsonFile(dir, FILES.metadata);
  const metadata = metadataJson === undefined ? undefined : parseRecord(restMetadataSchema, metadataJson, join(dir, FILES.metadata));
  const parametersJson = await jsonFile(dir, FILES.parameters);
  const parametersWhere = join(dir, FILES.parameters);
  const parameters: RestValue[] = parametersJson === undefined ? [] : parseRecord(z.array(restValueSchema), parametersJson, parametersWhere);
  const others = await jsonLines(dir, FILES.others, restValueSchema);
  const systemJson = await jsonFile(dir, FILES.systemDetails);
  const systemDetails = systemJson === undefined || systemJson === null ? undefined : parseRecord(restSystemDetailsSchema, systemJson, join(dir, FILES.systemDetails));
  const gitJson = await jsonFile(dir, FILES.gitMetadata);
  const gitMetadata = gitJson === undefined ? undefined : parseRecord(restGitMetadataSchema, gitJson, join(dir, FILES.gitMetadata));
  const requirements = await textFile(dir, FILES.requirements);
  const graph = await textFile(dir, FILES.graph);

  // assets: each record's file must be a plain path inside the folder, and be there
  const assetFiles = new Map<RestAsset, string>();
  const assets: RestAsset[] = [];
  for (const asset of await jsonLines(dir, FILES.assetsMetadata, restAssetSchema)) {
    if (asset.remote) {
      assets.push(asset);
      continue;
    }
    const file = assetFile(asset.type, asset.diskFileName ?? asset.fileName);
    const problem = relativePathProblem(file);
    if (problem) {
      warnings.push(`${join(dir, FILES.assetsMetadata)}: the asset ${quoted(asset.fileName)} has an unsafe path ${quoted(file)} (${problem}): left out`);
      continue;
    }
    if (!(await isFile(safeJoin(dir, file)))) {
      warnings.push(`${join(dir, FILES.assetsMetadata)}: the file of the asset ${quoted(asset.fileName)} is not there (${file}): left out`);
      continue;
    }
    assetFiles.set(asset, file);
    assets.push(asset);
    used.add(file);
  }
  let html: string | undefined;
  if (!used.has(FILES.html)) {
    html = await textFile(dir, FILES.html);
    used.add(FILES.html);
  }

  // metric names, in the order first met: the wandb variant names a file per metric
  const metricFiles = new Map<string, string>();
  const summary = await jsonLines(dir, FILES.metricsSummary, summaryLine);
  for (const { metric, count } of summary) {
    const name = splitMetricFile(count);
    used.add(name);
    const file = join(dir, ...name.split('/'));
    if (!(await isFile(file))) {
      warnings.push(`${join(dir, FILES.metricsSummary)}: the file of the metric ${quoted(metric)} is not there (${name}): left out`);
      continue;
    }
    for await (const key of metricNames(file)) if (!metricFiles.has(key)) metricFiles.set(key, file);
  }
  const allMetrics = join(dir, FILES.metrics);
  if (await isFile(allMetrics)) for await (const key of metricNames(allMetrics)) if (!metricFiles.has(key)) metricFiles.set(key, allMetrics);

  const outputs = await outputStreams(dir);
  const rest = restRunOf({
    key: metadata?.experimentKey || basename(dir),
    experimentId,
    metadata,
    parameters,
    others,
    metricNames: metricFiles.keys(),
    outputs,
    assets,
    systemDetails,
    installedPackages: requirements === undefined ? undefined : requirementLines(requirements),
    gitMetadata,
    html,
    graph,
    where: dir,
  });
  warnings.push(...rest.warnings);

  // every other file (run/git_diff.patch, run/script.py, run/code/…): an artifact at its path; links are refused
  const files = new Map<string, number>();
  for await (const { path, size } of walkFiles(dir, 'refuse')) {
    if (used.has(path) || (summary.length > 0 && path.startsWith(`${FILES.metricsDir}/`))) continue;
    if (rest.artifacts.has(path)) {
      warnings.push(`${dir}: the file ${quoted(path)} has the path of an artifact made from the records: left out`);
      continue;
    }
    files.set(path, size);
  }
  return { folder, ...(metadata ? { metadata } : {}), rest, metricFiles, assetFiles, files, warnings };
}

/** requirements.txt as cometx writes it: the packages joined by newlines. */
export function requirementLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** The distinct metric names of a metrics file, in the order first met (one streamed pass). */
async function* metricNames(file: string): AsyncGenerator<string> {
  const seen = new Set<string>();
  for await (const { text, lineNo } of fileLines(file)) {
    if (text.trim() === '') continue;
    const where = `${file}:${lineNo}`;
    const record = parseRecord(restMetricSchema, parsePythonJson(text, where), where);
    if (!seen.has(record.metricName)) {
      seen.add(record.metricName);
      yield record.metricName;
    }
  }
}

const chunkSchema = z.object({ output: z.string(), stderr: z.boolean(), timestamp: z.number().nullish(), context: z.string().nullish() });
export type OutputChunk = z.infer<typeof chunkSchema>;
export { chunkSchema };

/** The output streams that have text: those of trackshift's chunk file, else stdout when output.txt is not empty. */
async function outputStreams(dir: string): Promise<Array<typeof STDOUT_KEY | typeof STDERR_KEY>> {
  const chunks = join(dir, ...FILES.outputChunks.split('/'));
  if (await isFile(chunks)) {
    const streams = new Set<typeof STDOUT_KEY | typeof STDERR_KEY>();
    for await (const { text, lineNo } of fileLines(chunks)) {
      if (text.trim() === '') continue;
      const where = `${chunks}:${lineNo}`;
      streams.add(parseRecord(chunkSchema, parsePythonJson(text, where), where).stderr ? STDERR_KEY : STDOUT_KEY);
    }
    return ([STDOUT_KEY, STDERR_KEY] as const).filter((s) => streams.has(s));
  }
  const output = join(dir, ...FILES.output.split('/'));
  return (await isFile(output)) && (await stat(output)).size > 0 ? [STDOUT_KEY] : [];
}
