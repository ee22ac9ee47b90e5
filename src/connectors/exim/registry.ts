/**
 * The registry of an mlflow-export-import directory, as the tools' bulk layout holds it
 * (`models/models.json`, `models/<name>/model.json` + `<run_id>/`; see ./write.ts).
 */
import { copyFile, link, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { ModelStage, ModelVersion, RegisteredModel } from '../../model/index.js';
import { exists, isFile, listDirs, writeJsonAtomic } from '../../util/fs.js';
import { idToFolderName, joinSegment, removeInside, safeJoin } from '../../util/paths.js';
import type { ExistingVersion, RegistryWriter, VersionTarget } from '../types.js';
import { PARTIAL, system } from './export-files.js';
import { parsePythonJson } from './format.js';

/**
 * Registered models in the tools' bulk layout: `models/models.json` lists them, and
 * `models/<name>/model.json` holds each with its versions, whose `source` names the run's
 * artifact folder (`…/<run_id>/artifacts/<path>`), which is how the tools' importer finds the
 * model's files among the imported run's artifacts. Version numbers are kept.
 */
export class EximRegistryWriter implements RegistryWriter {
  readonly hasStages = true;
  readonly keepsVersionNumbers = true;
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly root: string,
    private readonly experimentNameOfRun: (runId: string) => Promise<{ experimentId: string; name: string; dir: string } | undefined>,
    /** the folder of a complete logged model of this export */
    private readonly loggedModelFolder: (modelId: string) => Promise<{ dir: string; name: string } | undefined>,
  ) {}

  /**
   * The tools' import-model reads a version's run from `<model dir>/<run_id>/`: the run folder
   * is linked there (hard links: no second copy of the bytes; a copy where links fail). Files
   * linked there before are kept; files added to the run since (a logged model's) are added.
   */
  private async linkRun(modelName: string, runId: string, runDir: string): Promise<void> {
    const target = join(dirname(this.file(modelName)), idToFolderName(runId));
    if (!(await isFile(join(target, 'run.json')))) await removeInside(this.root, target);
    await linkTree(runDir, target);
  }

  /**
   * For the tools, which know no logged models: the logged model's files linked into the
   * version's run, at `artifacts/<model name>` (its name is what MLflow 2 called the artifact
   * path), or `artifacts/<name>-<model id>` when the run holds other files there. Returns the path.
   */
  private async linkLoggedModel(modelId: string, runDir: string): Promise<string | undefined> {
    const model = await this.loggedModelFolder(modelId);
    if (!model) return undefined;
    const from = join(model.dir, 'artifacts');
    // the model id is the source's: a folder name only through idToFolderName
    const plain = /^[A-Za-z0-9][A-Za-z0-9._ -]*$/.test(model.name) && model.name.length <= 100 ? model.name : idToFolderName(modelId);
    for (const path of [plain, idToFolderName(`${plain}-${modelId}`)]) {
      const to = joinSegment(join(runDir, 'artifacts'), path, `logged model ${modelId}`);
      if (!(await exists(to)) || (await sameFiles(from, to))) {
        await linkTree(from, to);
        return path;
      }
    }
    return undefined;
  }

  private file(name: string): string {
    return join(safeJoin(join(this.root, 'models'), idToFolderName(name), `model ${name}`), 'model.json');
  }

  private async read(name: string): Promise<EximModelFile | undefined> {
    if (!(await isFile(this.file(name)))) return undefined;
    return (parsePythonJson(await readFile(this.file(name), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model;
  }

  /** one read-change-write of a model file at a time */
  private change(name: string, work: (model: EximModelFile | undefined) => EximModelFile | Promise<EximModelFile>): Promise<void> {
    const next = this.lock.then(async () => {
      const model = await work(await this.read(name));
      await mkdir(dirname(this.file(name)), { recursive: true });
      await writeJsonAtomic(this.file(name), { system: system('export_model.py'), info: { num_src_versions: model.versions.length, failed_versions: [] }, mlflow: { registered_model: model } });
      const names = [];
      for (const folder of await listDirs(join(this.root, 'models'))) {
        const held = await isFile(join(this.root, 'models', folder, 'model.json'));
        if (held) names.push(((parsePythonJson(await readFile(join(this.root, 'models', folder, 'model.json'), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model).name);
      }
      await writeJsonAtomic(join(this.root, 'models', 'models.json'), { system: system('export_models.py'), info: { num_models: names.length }, mlflow: { models: names } });
    });
    this.lock = next.catch(() => undefined);
    return next;
  }

  async findModel(name: string): Promise<{ tags: Record<string, string> } | undefined> {
    const model = await this.read(name);
    return model && { tags: Object.fromEntries(model.tags.map((t) => [t.key, t.value])) };
  }

  async ensureModel(model: RegisteredModel, name: string): Promise<void> {
    await this.change(name, (held) => ({
      name,
      creation_timestamp: held?.creation_timestamp ?? model.creationTime ?? Date.now(),
      last_updated_timestamp: model.lastUpdatedTime ?? Date.now(),
      description: model.description ?? '',
      tags: Object.entries({ ...Object.fromEntries((held?.tags ?? []).map((t) => [t.key, t.value])), ...model.tags }).map(([key, value]) => ({ key, value })),
      aliases: held?.aliases ?? [],
      versions: held?.versions ?? [],
    }));
  }

  async deleteModel(name: string): Promise<void> {
    await removeInside(join(this.root, 'models'), dirname(this.file(name)));
  }

  async *listExistingVersions(modelName: string): AsyncIterable<ExistingVersion> {
    for (const v of (await this.read(modelName))?.versions ?? []) yield { version: String(v.version), tags: v.tags };
  }

  /**
   * A logged model written again (its earlier attempt cut off): the runs of versions registered
   * from it get links to its new files in place of the old ones.
   */
  async relinkLoggedModel(modelId: string): Promise<void> {
    const model = await this.loggedModelFolder(modelId);
    if (!model) return;
    for (const folder of await listDirs(join(this.root, 'models'))) {
      if (!(await isFile(join(this.root, 'models', folder, 'model.json')))) continue;
      const held = (parsePythonJson(await readFile(join(this.root, 'models', folder, 'model.json'), 'utf8')) as { mlflow: { registered_model: EximModelFile } }).mlflow.registered_model;
      for (const v of held.versions) {
        if (v.model_id !== modelId || !v.run_id) continue;
        const marker = `/${v.run_id}/artifacts/`;
        const at = v.source.indexOf(marker);
        if (at < 0) continue;
        const path = v.source.slice(at + marker.length);
        const run = await this.experimentNameOfRun(v.run_id);
        const runDirs = [join(this.root, 'models', folder, idToFolderName(v.run_id)), ...(run ? [run.dir] : [])];
        for (const runDir of runDirs) {
          const to = safeJoin(join(runDir, 'artifacts'), path, `model files of version ${v.version} of ${held.name}`);
          if (!(await exists(to)) || (await sameFiles(join(model.dir, 'artifacts'), to))) continue;
          await removeInside(this.root, to);
          await linkTree(join(model.dir, 'artifacts'), to);
        }
      }
    }
  }

  async createVersion(modelName: string, version: ModelVersion, target: VersionTarget): Promise<string> {
    const runId = target.location.type === 'run' ? target.location.runId : target.runId;
    const run = runId ? await this.experimentNameOfRun(runId) : undefined;
    // registered from a logged model: its files also in the run, where the tools look for them
    const inRun = target.location.type === 'logged-model' && run ? await this.linkLoggedModel(target.location.modelId, run.dir) : undefined;
    if (run && runId) await this.linkRun(modelName, runId, run.dir);
    const source =
      target.location.type === 'run' && run
        ? `mlflow-artifacts:/${run.experimentId}/${target.location.runId}/artifacts/${target.location.path}`
        : target.location.type === 'uri'
          ? target.location.uri
          : target.location.type === 'logged-model'
            ? inRun !== undefined && run
              ? `mlflow-artifacts:/${run.experimentId}/${runId}/artifacts/${inRun}`
              : `models:/${target.location.modelId}`
            : version.source;
    await this.change(modelName, (held) => {
      if (!held) throw new Error(`exim: model ${modelName} is not written yet`);
      const entry: EximVersionFile = {
        name: modelName,
        version: version.version,
        creation_timestamp: version.creationTime ?? Date.now(),
        last_updated_timestamp: version.lastUpdatedTime ?? Date.now(),
        current_stage: 'None',
        description: version.description ?? '',
        source,
        run_id: runId ?? '',
        run_link: target.runLink ?? '',
        status: 'READY',
        status_message: '',
        user_id: version.user ?? '',
        tags: version.tags,
        aliases: [],
        ...(target.loggedModelId ? { model_id: target.loggedModelId } : {}),
        _experiment_name: run?.name ?? '',
        _run_artifact_uri: run ? `mlflow-artifacts:/${run.experimentId}/${runId}/artifacts` : '',
      };
      return { ...held, versions: [...held.versions.filter((v) => String(v.version) !== version.version), entry].sort((a, b) => Number(a.version) - Number(b.version)) };
    });
    return version.version;
  }

  private async changeVersion(modelName: string, number: string, change: (v: EximVersionFile) => EximVersionFile): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, versions: held!.versions.map((v) => (String(v.version) === number ? change(v) : v)) }));
  }

  async updateVersion(modelName: string, number: string, version: ModelVersion): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, description: version.description ?? '', tags: { ...v.tags, ...version.tags } }));
  }

  async deleteVersion(modelName: string, number: string): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, versions: held!.versions.filter((v) => String(v.version) !== number) }));
  }

  async setStage(modelName: string, number: string, stage: ModelStage): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, current_stage: stage }));
  }

  async setAlias(modelName: string, alias: string, number: string): Promise<void> {
    await this.change(modelName, (held) => ({ ...held!, aliases: [...held!.aliases.filter((a) => a.alias !== alias), { alias, version: number }] }));
  }

  async setVersionTag(modelName: string, number: string, key: string, value: string): Promise<void> {
    await this.changeVersion(modelName, number, (v) => ({ ...v, tags: { ...v.tags, [key]: value } }));
  }
}

interface EximVersionFile {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  current_stage: string;
  description: string;
  source: string;
  run_id: string;
  run_link: string;
  status: string;
  status_message: string;
  user_id: string;
  tags: Record<string, string>;
  aliases: string[];
  /** MLflow 3: the logged model it was registered from */
  model_id?: string;
  _experiment_name: string;
  _run_artifact_uri: string;
}

interface EximModelFile {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  description: string;
  tags: Array<{ key: string; value: string }>;
  aliases: Array<{ alias: string; version: string }>;
  versions: EximVersionFile[];
}

/** Links every file under `from` into `to` (hard links, a copy where links fail); files already there are kept. */
async function linkTree(from: string, to: string): Promise<void> {
  const files = (await readdir(from, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile() && !e.parentPath.includes(PARTIAL));
  for (const entry of files) {
    const source = join(entry.parentPath, entry.name);
    const target = join(to, relative(from, source));
    if (await exists(target)) continue;
    await mkdir(dirname(target), { recursive: true });
    await link(source, target).catch(() => copyFile(source, target));
  }
}

/** Whether every file under `to` is one of `from`'s, linked (the same file, not a copy of its bytes). */
async function sameFiles(from: string, to: string): Promise<boolean> {
  const files = (await readdir(to, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile());
  for (const entry of files) {
    const there = join(entry.parentPath, entry.name);
    const [a, b] = await Promise.all([stat(there), stat(join(from, relative(to, there))).catch(() => undefined)]);
    if (!b || a.ino !== b.ino || a.dev !== b.dev) return false;
  }
  return true;
}
