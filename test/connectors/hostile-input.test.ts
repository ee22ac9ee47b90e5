/**
 * Malformed and hostile input for every file connector (bundle, mlruns, mlflow-export-import):
 * each case is imported (or copied) by the built CLI into a destination in a temporary area that
 * also holds a "victim" folder and a file outside the input. Each must give a clear error naming
 * the file, no stack trace, the documented exit code — 1 when objects failed (the rest is
 * copied), 2 when the input as a whole cannot be used — and leave everything outside the
 * destination as it was.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleRun, bundleRunDir, eximExperiment, eximRun, json, put, tree, writeBundle, writeEximBulk, writeMlrunsExperiment, writeMlrunsRun } from '../helpers/craft.js';
import { cli } from '../cli/run-cli.js';

const RUN_A = 'a'.repeat(32);
const RUN_B = 'b'.repeat(32);
const HUGE = 10 * 1024 * 1024;

interface Case {
  name: string;
  /** `mlruns` or `bundle` destination */
  into?: 'mlruns' | 'bundle';
  /** writes the input into `dir`; `outside` is a file outside it that must never be copied */
  make(dir: string, outside: string): Promise<unknown>;
  /** 0: taken as it is (large values); 1: objects failed, the rest copied; 2: the input cannot be used */
  code: 0 | 1 | 2;
  /** what the error must say (besides the file) */
  says: RegExp;
  /**
   * What the message must name: a file of the input (its path from the input folder), or, for
   * what the destination refuses (an id that cannot be a folder there), the object, quoted.
   */
  names?: string;
  /** for exit 1: runs that must still be copied */
  copied?: number;
}

const okBundle = (dir: string, runs: Array<Record<string, unknown>> = [bundleRun(RUN_A, '1')]) => writeBundle(dir, [{ id: '1', name: 'exp', runs }]);
async function okMlruns(dir: string): Promise<void> {
  await writeMlrunsExperiment(dir, '1', 'exp');
  await writeMlrunsRun(dir, '1', RUN_A);
}

/**
 * Version 2: RUN_B holds one series `s` of `type` (lines in series/s.jsonl) and, for file
 * series, what `files` puts under series-files/; `entry` changes its run.json entry.
 */
async function v2Bundle(d: string, type: string, lines: string[], extra: { entry?: Record<string, unknown>; run?: Record<string, unknown> } = {}): Promise<string> {
  const entry = { key: 's', type, file: 'series/s.jsonl', points: lines.length, ...extra.entry };
  await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { metrics: undefined, series: [entry], ...extra.run })]);
  const runDir = bundleRunDir(d, '1', RUN_B);
  await put(join(runDir, 'series', 's.jsonl'), lines.map((l) => l + '\n').join(''));
  return runDir;
}
const filePoint = (path: string, size?: number) => JSON.stringify({ s: 0, t: 1, v: { path, ...(size !== undefined ? { size } : {}) } });

const bundleCases: Case[] = [
  { name: 'bundle: empty root file', make: async (d) => (await okBundle(d), writeFile(join(d, 'trackshift-bundle.json'), '')), code: 2, says: /not valid JSON/, names: 'trackshift-bundle.json' },
  { name: 'bundle: truncated root file', make: async (d) => (await okBundle(d), writeFile(join(d, 'trackshift-bundle.json'), '{"format": "trackshift-bun')), code: 2, says: /not valid JSON/, names: 'trackshift-bundle.json' },
  { name: 'bundle: root file of the wrong type', make: async (d) => (await okBundle(d), writeFile(join(d, 'trackshift-bundle.json'), '[1, 2]')), code: 2, says: /unexpected content/, names: 'trackshift-bundle.json' },
  {
    name: 'bundle: truncated experiment.json',
    make: async (d) => {
      await writeBundle(d, [{ id: '1', name: 'exp', runs: [bundleRun(RUN_A, '1')] }, { id: '2', name: 'other', runs: [bundleRun(RUN_B, '2')] }]);
      await writeFile(join(d, 'experiments/1/experiment.json'), '{"id": "1", "na');
    },
    code: 1, says: /not valid JSON/, names: 'experiments/1/experiment.json', copied: 1,
  },
  {
    name: 'bundle: empty run.json',
    make: async (d) => (await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]), writeFile(join(bundleRunDir(d, '1', RUN_B), 'run.json'), '')),
    code: 1, says: /not valid JSON/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: run.json with wrong types',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { params: ['not', 'an', 'object'], status: 7 })]),
    code: 1, says: /unexpected content: (params|status)/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: run.json in invalid UTF-8',
    make: async (d) => {
      await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]);
      await writeFile(join(bundleRunDir(d, '1', RUN_B), 'run.json'), Buffer.concat([Buffer.from('{"id": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"')]));
    },
    code: 1, says: /not valid JSON/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: a 10 MB param value and a million-character run name',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1', { params: { big: 'x'.repeat(HUGE) }, name: 'n'.repeat(1_000_000) })]),
    code: 0, says: /./, copied: 1,
  },
  {
    name: 'bundle: run.json nested a million levels deep',
    make: async (d) => (await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]), writeFile(join(bundleRunDir(d, '1', RUN_B), 'run.json'), '['.repeat(1e6) + ']'.repeat(1e6))),
    code: 1, says: /unexpected content/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: a million-character run id',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('i'.repeat(1_000_000), '1')]),
    code: 1, says: /longer than 255 bytes/, names: '"iiiiiiiiii', copied: 1,
  },
  { name: 'bundle: run id ".."', make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('..', '1')]), code: 1, says: /"\.\."/, names: '".."', copied: 1 },
  { name: 'bundle: run id with "/"', make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('x/../../../victim', '1')]), code: 1, says: /unsafe name/, names: '"x/../../../victim"', copied: 1 },
  { name: 'bundle: absolute run id', make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('/etc', '1')]), code: 1, says: /unsafe name|is absolute/, names: '"/etc"', copied: 1 },
  { name: 'bundle: run id with NUL', make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('a\u0000b', '1')]), code: 1, says: /NUL/, names: '"a\\u0000b"', copied: 1 },
  { name: 'bundle: run id that is a name the store uses', make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('tags', '1')]), code: 1, says: /uses itself/, names: '"tags"', copied: 1 },
  {
    name: 'bundle: param key that climbs',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { params: { '../../../../victim/x': '1' } })]),
    code: 1, says: /".." segment/, names: '"../../../../victim/x"', copied: 1,
  },
  {
    name: 'bundle: metric file named outside metrics/',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { metrics: [{ key: 'loss', file: '../../../../../outside.txt', points: 1 }] })]),
    code: 1, says: /".." segment/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: metric file that is a link out of the bundle',
    make: async (d, outside) => {
      await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { metrics: [{ key: 'loss', file: 'metrics/loss.jsonl', points: 1 }] })]);
      await mkdir(join(bundleRunDir(d, '1', RUN_B), 'metrics'), { recursive: true });
      await symlink(outside, join(bundleRunDir(d, '1', RUN_B), 'metrics', 'loss.jsonl'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/runs/${RUN_B}/metrics/loss.jsonl`, copied: 1,
  },
  {
    name: 'bundle: truncated metric file',
    make: async (d) => {
      await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1', { metrics: [{ key: 'loss', file: 'metrics/loss.jsonl', points: 2 }] })]);
      await put(join(bundleRunDir(d, '1', RUN_B), 'metrics', 'loss.jsonl'), '{"t": 1, "s": 0, "v": 0.5}\n{"t": 2, "s"');
    },
    code: 1, says: /not valid JSON/, names: `experiments/1/runs/${RUN_B}/metrics/loss.jsonl`, copied: 1,
  },
  {
    name: 'bundle: artifact that is a link out of the bundle',
    make: async (d, outside) => {
      await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]);
      await mkdir(join(bundleRunDir(d, '1', RUN_B), 'artifacts'), { recursive: true });
      await symlink(outside, join(bundleRunDir(d, '1', RUN_B), 'artifacts', 'passwd'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/runs/${RUN_B}/artifacts/passwd`, copied: 1,
  },
  {
    name: 'bundle: run.json that is a link out of the bundle',
    make: async (d, outside) => {
      await okBundle(d, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]);
      await rm(join(bundleRunDir(d, '1', RUN_B), 'run.json'));
      await symlink(outside, join(bundleRunDir(d, '1', RUN_B), 'run.json'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle v2: file series point whose path climbs out of the run',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'file', [filePoint('../../../../../outside.txt')]),
    code: 1, says: /unexpected content: v\.path: must be a relative path inside the run/, names: `experiments/1/runs/${RUN_B}/series/s.jsonl:1`, copied: 1,
  },
  {
    name: 'bundle v2: series file that is a link out of the bundle',
    into: 'bundle',
    make: async (d, outside) => {
      const runDir = await v2Bundle(d, 'file', [filePoint('img.png')]);
      await mkdir(join(runDir, 'series-files'), { recursive: true });
      await symlink(outside, join(runDir, 'series-files', 'img.png'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/runs/${RUN_B}/series-files/img.png`, copied: 1,
  },
  {
    name: 'bundle v2: series file reached through a folder that is a link',
    into: 'bundle',
    make: async (d, outside) => {
      const runDir = await v2Bundle(d, 'file', [filePoint('up/outside.txt')]);
      await mkdir(join(runDir, 'series-files'), { recursive: true });
      await symlink(join(outside, '..'), join(runDir, 'series-files', 'up'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/runs/${RUN_B}/series-files/up`, copied: 1,
  },
  {
    name: 'bundle v2: series file of another size than its point says',
    into: 'bundle',
    make: async (d) => put(join(await v2Bundle(d, 'file', [filePoint('img.png', 10)]), 'series-files', 'img.png'), 'abc'),
    code: 1, says: /holds 3 bytes, but its point says 10/, names: `experiments/1/runs/${RUN_B}/series-files/img.png`, copied: 1,
  },
  {
    name: 'bundle v2: series file listed outside series/',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'string', ['{"s":0,"v":"x"}'], { entry: { file: 'artifacts/s.jsonl' } }),
    code: 1, says: /outside series\//, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle v2: series file that climbs out of the run',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'string', ['{"s":0,"v":"x"}'], { entry: { file: '../../../../../outside.txt' } }),
    code: 1, says: /unsafe path.*"\.\." segment/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle v2: run.json with a series of an unknown type and config of the wrong types',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'video', ['{"s":0,"v":"x"}'], { run: { config: [{ path: 'a', value: { type: 'int', value: 'x' } }], fork: { step: 1 } } }),
    code: 1, says: /unexpected content: series\.0\.type.*config\.0/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle v2: string series line of the wrong type',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'string', ['{"s":0,"v":"ok"}', '{"s":1.5,"v":5}']),
    code: 1, says: /unexpected content: v:/, names: `experiments/1/runs/${RUN_B}/series/s.jsonl:2`, copied: 1,
  },
  {
    name: 'bundle v2: histogram with as many edges as values',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'histogram', ['{"s":0,"v":{"edges":[0,1],"kind":"counts","values":[1,2]}}']),
    code: 1, says: /one more edge than values/, names: `experiments/1/runs/${RUN_B}/series/s.jsonl:1`, copied: 1,
  },
  {
    name: 'bundle: run.json with both series (version 2) and metrics (version 1)',
    into: 'bundle',
    make: (d) => v2Bundle(d, 'float', ['{"s":0,"v":1}'], { run: { metrics: [] } }),
    code: 1, says: /exactly one of them/, names: `experiments/1/runs/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'bundle: model version whose path climbs out of its run',
    make: async (d) => {
      await okBundle(d);
      await put(join(d, 'models/m/model.json'), json({ name: 'm', tags: {}, aliases: {} }));
      await put(join(d, 'models/m/versions/1.json'), json({ modelName: 'm', version: '1', source: 'x', location: { type: 'run', runId: RUN_A, path: 'model/../../..' }, status: 'READY', stage: 'None', tags: { 'trackshift.complete': 'true' } }));
    },
    code: 1, says: /location\.path/, names: 'models/m/versions/1.json', copied: 1,
  },
  {
    name: 'bundle: model.json of the wrong type',
    make: async (d) => (await okBundle(d), put(join(d, 'models/m/model.json'), '"a string"')),
    code: 1, says: /unexpected content/, names: 'models/m/model.json', copied: 1,
  },
  {
    name: 'bundle: logged-model.json with wrong types',
    make: async (d) => (await okBundle(d), put(join(d, 'experiments/1/logged-models/m-1/logged-model.json'), json({ id: 'm-1', experimentId: '1', name: 7, params: [], tags: {} }))),
    code: 1, says: /unexpected content/, names: 'experiments/1/logged-models/m-1/logged-model.json', copied: 1,
  },
  {
    name: 'bundle into a bundle: run id ".." (the bundle writer hashes such ids)',
    into: 'bundle',
    make: (d) => okBundle(d, [bundleRun(RUN_A, '1'), bundleRun('..', '1'), bundleRun('../../victim', '1')]),
    code: 0, says: /./, copied: 3,
  },
];

const mlrunsCases: Case[] = [
  { name: 'mlruns: empty experiment meta.yaml', make: async (d) => (await okMlruns(d), await writeMlrunsExperiment(d, '2', 'other'), await writeFile(join(d, '2', 'meta.yaml'), '')), code: 1, says: /unexpected content/, names: '2/meta.yaml', copied: 1 },
  {
    name: 'mlruns: truncated experiment meta.yaml',
    make: async (d) => (await okMlruns(d), await writeMlrunsExperiment(d, '2', 'other'), await writeFile(join(d, '2', 'meta.yaml'), 'experiment_id: "2\nname: [')),
    code: 1, says: /not valid YAML|unexpected content/, names: '2/meta.yaml', copied: 1,
  },
  {
    name: 'mlruns: run meta.yaml with wrong types',
    make: async (d) => (await okMlruns(d), writeMlrunsRun(d, '1', RUN_B, { meta: `run_id: ${RUN_B}\nexperiment_id: '1'\nstatus: [1]\nlifecycle_stage: 3\n` })),
    code: 1, says: /unexpected content/, names: `1/${RUN_B}/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: run meta.yaml in invalid UTF-8',
    make: async (d) => {
      await okMlruns(d);
      const dir = await writeMlrunsRun(d, '1', RUN_B);
      await writeFile(join(dir, 'meta.yaml'), Buffer.from([0x72, 0x75, 0x6e, 0x5f, 0x69, 0x64, 0x3a, 0x20, 0xff, 0xfe, 0x0a, 0x5b]));
    },
    code: 1, says: /not valid YAML|unexpected content/, names: `1/${RUN_B}/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: run_id that is not its folder (..)',
    make: async (d) => (await okMlruns(d), writeMlrunsRun(d, '1', '..', { folder: RUN_B })),
    code: 1, says: /says run_id \.\./, names: `1/${RUN_B}/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: run meta.yaml nested too deep for the parser',
    make: async (d) => (await okMlruns(d), await writeMlrunsRun(d, '1', RUN_B), writeFile(join(d, '1', RUN_B, 'meta.yaml'), '['.repeat(1e5) + ']'.repeat(1e5))),
    code: 1, says: /not valid YAML/, names: `1/${RUN_B}/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: truncated metric file',
    make: async (d) => (await okMlruns(d), await writeMlrunsRun(d, '1', RUN_B), writeFile(join(d, '1', RUN_B, 'metrics', 'loss'), '1700000000000 0.5 0\n17000000')),
    code: 1, says: /expected 2, 3 or 5 fields/, names: `1/${RUN_B}/metrics/loss`, copied: 1,
  },
  {
    name: 'mlruns: a 10 MB param value',
    make: async (d) => (await okMlruns(d), writeFile(join(d, '1', RUN_A, 'params', 'big'), 'y'.repeat(HUGE))),
    code: 0, says: /./, copied: 1,
  },
  {
    name: 'mlruns: dataset input that names a folder outside',
    make: async (d) => {
      await okMlruns(d);
      const dir = await writeMlrunsRun(d, '1', RUN_B);
      await put(join(dir, 'inputs', 'i1', 'meta.yaml'), `source_type: DATASET\nsource_id: ../../../victim\ndestination_type: RUN\ntags: {}\n`);
    },
    code: 1, says: /".." segment/, names: `1/${RUN_B}/inputs/i1/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: artifact_uri of another system',
    make: async (d) => (await okMlruns(d), writeMlrunsRun(d, '1', RUN_B, { meta: `artifact_uri: s3://bucket/x\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: ${RUN_B}\nstatus: 3\n` })),
    code: 1, says: /not a local folder/, names: `1/${RUN_B}/meta.yaml`, copied: 1,
  },
  {
    name: 'mlruns: registered model meta.yaml of the wrong type',
    make: async (d) => (await okMlruns(d), put(join(d, 'models', 'm', 'meta.yaml'), 'name: [1, 2]\n')),
    code: 1, says: /unexpected content/, names: 'models/m/meta.yaml', copied: 1,
  },
  {
    name: 'mlruns: model version meta.yaml that is truncated',
    make: async (d) => {
      await okMlruns(d);
      await put(join(d, 'models', 'm', 'meta.yaml'), 'creation_timestamp: 1\nlast_updated_timestamp: 1\nname: m\n');
      await put(join(d, 'models', 'm', 'version-1', 'meta.yaml'), 'version: 1\nname: m\nsource: "fi');
    },
    code: 1, says: /not valid YAML|unexpected content/, names: 'models/m/version-1/meta.yaml', copied: 1,
  },
  {
    name: 'mlruns: no such folder',
    make: async () => {},
    code: 2, says: /is not an MLflow file store/, names: '',
  },
];

async function okExim(d: string): Promise<void> {
  await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A] }]);
}

const eximCases: Case[] = [
  {
    name: 'exim: one malformed experiment.json in a bulk export',
    make: async (d) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A] }, { id: '2', name: 'bad', runs: [RUN_B] }]);
      await writeFile(join(d, 'experiments/2/experiment.json'), '{"mlflow": {"experiment": {"experiment_id": "2", "na');
    },
    code: 1, says: /not a readable JSON export file/, names: 'experiments/2/experiment.json', copied: 1,
  },
  {
    name: 'exim: experiment.json with wrong types',
    make: async (d) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A] }, { id: '2', name: 'bad', runs: [RUN_B] }]);
      await writeFile(join(d, 'experiments/2/experiment.json'), json({ mlflow: { experiment: { experiment_id: '2', name: 42 } } }));
    },
    code: 1, says: /unexpected content/, names: 'experiments/2/experiment.json', copied: 1,
  },
  {
    name: 'exim: empty run.json',
    make: async (d) => (await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A, RUN_B] }]), writeFile(join(d, 'experiments/1', RUN_B, 'run.json'), '')),
    code: 1, says: /not a readable JSON export file/, names: `experiments/1/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'exim: run.json in invalid UTF-8',
    make: async (d) => (await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A, RUN_B] }]), writeFile(join(d, 'experiments/1', RUN_B, 'run.json'), Buffer.from([0x7b, 0xff, 0xfe]))),
    code: 1, says: /not a readable JSON export file/, names: `experiments/1/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'exim: run.json with wrong types',
    make: async (d) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A, RUN_B] }]);
      await writeFile(join(d, 'experiments/1', RUN_B, 'run.json'), json({ mlflow: { info: { run_id: RUN_B, experiment_id: '1', status: 'EXPLODED' }, metrics: 'many' } }));
    },
    code: 1, says: /unexpected content/, names: `experiments/1/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'exim: run id ".." ',
    make: async (d) => (await okExim(d), put(join(d, 'experiments/1/x/run.json'), json(eximRun('..', '1')))),
    code: 1, says: /"\.\."/, names: '".."', copied: 1,
  },
  {
    name: 'exim: run id that climbs',
    make: async (d) => (await okExim(d), put(join(d, 'experiments/1/x/run.json'), json(eximRun('../../victim', '1')))),
    code: 1, says: /unsafe name/, names: '"../../victim"', copied: 1,
  },
  {
    name: 'exim: absolute run id',
    make: async (d) => (await okExim(d), put(join(d, 'experiments/1/x/run.json'), json(eximRun('/etc/cron.d', '1')))),
    code: 1, says: /unsafe name|is absolute/, names: '"/etc/cron.d"', copied: 1,
  },
  {
    name: 'exim: metric key that climbs',
    make: async (d) => {
      await okExim(d);
      const run = eximRun(RUN_B, '1') as { mlflow: { metrics: Record<string, unknown> } };
      run.mlflow.metrics = { '../../../../../victim/m': [{ value: 1, timestamp: 1, step: 0 }] };
      await put(join(d, 'experiments/1', RUN_B, 'run.json'), json(run));
    },
    code: 1, says: /".." segment/, names: '"../../../../../victim/m"', copied: 1,
  },
  {
    name: 'exim: artifact that is a link out of the export',
    make: async (d, outside) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A, RUN_B] }]);
      await mkdir(join(d, 'experiments/1', RUN_B, 'artifacts'), { recursive: true });
      await symlink(outside, join(d, 'experiments/1', RUN_B, 'artifacts', 'passwd'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/${RUN_B}/artifacts/passwd`, copied: 1,
  },
  {
    name: 'exim: run.json that is a link out of the export',
    make: async (d, outside) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A] }]);
      await mkdir(join(d, 'experiments/1', RUN_B), { recursive: true });
      await symlink(outside, join(d, 'experiments/1', RUN_B, 'run.json'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/${RUN_B}/run.json`, copied: 1,
  },
  {
    name: 'exim: artifact folder that is a link out of the export',
    make: async (d, outside) => {
      await writeEximBulk(d, [{ id: '1', name: 'exp', runs: [RUN_A, RUN_B] }]);
      await mkdir(join(d, 'experiments/1', RUN_B, 'artifacts'), { recursive: true });
      await symlink(join(outside, '..'), join(d, 'experiments/1', RUN_B, 'artifacts', 'up'));
    },
    code: 1, says: /symbolic link/, names: `experiments/1/${RUN_B}/artifacts/up`, copied: 1,
  },
  {
    name: 'exim: a 10 MB param value and a million-character experiment name',
    make: async (d) => {
      await put(join(d, 'experiment.json'), json(eximExperiment('1', 'e'.repeat(1_000_000), [RUN_A])));
      const run = eximRun(RUN_A, '1') as { mlflow: { params: Record<string, string> } };
      run.mlflow.params = { big: 'z'.repeat(HUGE) };
      await put(join(d, RUN_A, 'run.json'), json(run));
    },
    code: 0, says: /./, copied: 1,
  },
  { name: 'exim: a folder with no export file', make: async (d) => put(join(d, 'experiment.json', 'readme.txt'), 'nothing'), code: 2, says: /holds no experiment\.json/, names: '' },
];

let area: string;
beforeAll(async () => {
  area = await mkdtemp(join(tmpdir(), 'trackshift-hostile-'));
});
afterAll(async () => {
  await rm(area, { recursive: true, force: true });
});

describe.each([
  ['bundle', bundleCases],
  ['mlruns', mlrunsCases],
  ['exim', eximCases],
] as const)('malformed %s input', (kind, cases) => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const dir = await mkdtemp(join(area, 'case-'));
    const victim = join(dir, 'victim');
    await put(join(victim, 'keep.txt'), 'precious');
    const outside = join(dir, 'outside.txt');
    await writeFile(outside, 'root:x:0:0:secret outside the input\n');
    const input = join(dir, 'input');
    await c.make(input, outside);
    const into = c.into ?? 'mlruns';
    const dst = join(dir, 'dst');
    const around = await tree(dir);
    const source = kind === 'mlruns' ? `mlruns:${input}` : input;
    const target = `${into}:${dst}`;
    // the journal is kept away from the area watched
    const state = await mkdtemp(join(area, 'state-'));
    const result = await cli([kind === 'mlruns' ? 'copy' : 'import', source, target, '--json', '--workers', '2', '--state-dir', state]);
    const output = result.stdout + result.stderr;

    expect(output).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
    expect(output).not.toContain('secret outside');
    expect(result.code, output.slice(0, 2000)).toBe(c.code);
    const named = c.names?.startsWith('"') ? c.names : join(input, c.names ?? '');
    if (c.code === 1) {
      const report = JSON.parse(result.stdout) as { failed: Array<{ reason: string }>; copied: { runs: number } };
      expect(report.failed.length).toBeGreaterThan(0);
      const reasons = report.failed.map((f) => f.reason).join('\n');
      expect(reasons).toMatch(c.says);
      expect(reasons).toContain(named);
      expect(report.copied.runs).toBe(c.copied);
    } else if (c.code === 2) {
      expect(result.stderr).toMatch(c.says);
      expect(result.stderr).toContain(named);
    } else {
      expect(JSON.parse(result.stdout).copied.runs).toBe(c.copied);
    }

    // nothing outside the destination changed: the input, the victim, the file outside
    const after = await tree(dir);
    const outsideDst = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).filter(([p]) => p !== 'dst' && !p.startsWith('dst/')));
    expect(outsideDst(after)).toEqual(outsideDst(around));
    // and nothing of the file outside was copied in
    expect(Object.values(after).filter((v) => v === around['outside.txt']).length).toBe(1);
  });
});

describe('ls of malformed input', () => {
  it('lists what it can read, names what it cannot, and exits 1', async () => {
    const input = await mkdtemp(join(area, 'ls-'));
    await okBundle(input, [bundleRun(RUN_A, '1'), bundleRun(RUN_B, '1')]);
    await writeFile(join(bundleRunDir(input, '1', RUN_B), 'run.json'), '{"id": "b');
    const text = await cli(['ls', input]);
    expect(text.code, text.stderr).toBe(1);
    expect(text.stdout).toMatch(/^1\s+1\s+0\s+exp$/m);
    expect(text.stdout).toContain('UNREADABLE');
    expect(text.stdout).toContain(join(bundleRunDir(input, '1', RUN_B), 'run.json'));
    const listed = await cli(['ls', input, '--json']);
    expect(listed.code).toBe(1);
    expect(JSON.parse(listed.stdout).unreadable).toEqual([expect.objectContaining({ type: 'run', reason: expect.stringMatching(/not valid JSON/) })]);
  });
});
