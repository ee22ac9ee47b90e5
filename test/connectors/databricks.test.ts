/**
 * The Databricks connector against a local HTTP server that answers with recorded, Databricks-
 * shaped responses (test/fixtures/databricks/) and serves the signed storage URLs too. No real
 * workspace is involved: this checks the requests trackshift sends and how it reads the answers.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databricksConnector } from '../../src/connectors/databricks/index.js';
import { parseAddress, resolveConfig } from '../../src/connectors/databricks/config.js';
import { checkThreeLevelName, storageUrl } from '../../src/connectors/databricks/uc-registry.js';
import type { Destination } from '../../src/connectors/types.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer } from '../../src/engine/transfer.js';
import type { ConnectorTarget } from '../../src/connectors/types.js';
import { cli } from '../cli/run-cli.js';
import { newStore } from '../engine/fixture.js';

const TOKEN = 'dapi-SECRET-0123456789abcdef';
const recorded = JSON.parse(readFileSync(new URL('../fixtures/databricks/workspace.json', import.meta.url), 'utf8')) as Record<string, unknown>;

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  auth?: string;
  body: Buffer;
}

const dir = () => mkdtempSync(join(tmpdir(), 'trackshift-databricks-'));

/** A workspace that answers from the recordings, plus a few answers that depend on the request. */
function fakeWorkspace() {
  const seen: Seen[] = [];
  const stored = new Map<string, Buffer>();
  const storage = { mode: 'DEFAULT_STORAGE' as 'DEFAULT_STORAGE' | 'CUSTOMER_HOSTED' };
  let base = '';
  const json = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, base);
      const body = Buffer.concat(chunks);
      const entry: Seen = { method: req.method!, path: url.pathname, query: url.searchParams, auth: req.headers.authorization, body };
      seen.push(entry);
      const parsed = () => JSON.parse(body.toString() || '{}');
      // the storage behind signed URLs, and an S3-compatible bucket
      if (url.pathname.startsWith('/storage/') || url.pathname.startsWith('/uc-bucket/')) {
        if (req.method === 'PUT') {
          stored.set(url.pathname, body);
          return json(res, 201, {});
        }
        const file = stored.get(url.pathname);
        if (!file) return json(res, 404, {});
        res.writeHead(200);
        return res.end(file);
      }
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(res, 401, { error_code: 'UNAUTHENTICATED', message: 'Invalid access token' });
      const key = `${req.method} ${url.pathname}`;
      const signed = (path: string, type: string) =>
        type === 'AZURE_SAS_URI'
          ? { path, signed_uri: `${base}/storage/${path}?sv=2023-01-03&sig=SECRET-SAS`, type, headers: [] }
          : { path, signed_uri: `${base}/storage/${path}?X-Amz-Signature=SECRET-AWS&X-Amz-Expires=900`, type, headers: [{ name: 'x-amz-server-side-encryption', value: 'AES256' }] };
      switch (key) {
        case 'POST /api/2.0/mlflow/artifacts/credentials-for-read': {
          const { path } = parsed();
          const p = path[0] as string;
          if (!stored.has(`/storage/${p}`)) stored.set(`/storage/${p}`, Buffer.from(p === 'model.json' ? '{"booster":"gbtree"}'.slice(0, 17) : 'report'));
          return json(res, 200, { credential_infos: [signed(p, p.endsWith('.txt') ? 'AZURE_SAS_URI' : 'AWS_PRESIGNED_URL')] });
        }
        case 'POST /api/2.0/mlflow/logged-models/m-0a1b2c3d4e5f60718293a4b5c6d7e8f9/artifacts/credentials-for-download': {
          const p = `logged/${parsed().paths[0]}`;
          stored.set(`/storage/${p}`, Buffer.from('artifact_path: model\nmodel_id: m-0a1b2c3d4e5f60718293a4b5c6d7e8f9\n'));
          return json(res, 200, { credentials: [{ model_id: 'm-0a1b2c3d4e5f60718293a4b5c6d7e8f9', credential_info: signed(p, 'GCP_SIGNED_URL') }] });
        }
        case 'POST /api/2.0/mlflow/artifacts/credentials-for-write': {
          const { run_id, path } = parsed();
          return json(res, 200, { credential_infos: [signed(`${run_id}/${path[0]}`, 'AWS_PRESIGNED_URL')] });
        }
        case 'GET /api/2.0/mlflow/experiments/get-by-name':
        case 'GET /api/2.0/mlflow/unity-catalog/registered-models/get':
          return json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'not found' });
        case 'POST /api/2.0/mlflow/experiments/create':
          return json(res, 200, { experiment_id: '4000000000000001' });
        case 'POST /api/2.0/mlflow/runs/create': {
          const { run_name, start_time } = parsed();
          const run_id = `dbrun${seen.filter((s) => s.path.endsWith('runs/create')).length}`;
          const info = { run_id, experiment_id: '4000000000000001', run_name, status: 'RUNNING', start_time: String(start_time), lifecycle_stage: 'active', artifact_uri: `dbfs:/databricks/mlflow-tracking/4000000000000001/${run_id}/artifacts` };
          return json(res, 200, { run: { info, data: {} } });
        }
        case 'GET /api/2.0/mlflow/runs/get': {
          const run_id = url.searchParams.get('run_id');
          return json(res, 200, { run: { info: { run_id, experiment_id: '4000000000000001', status: 'RUNNING', lifecycle_stage: 'active', artifact_uri: `dbfs:/x/${run_id}/artifacts` }, data: {} } });
        }
        case 'POST /api/2.0/mlflow/runs/search':
          // searching a destination for earlier copies finds none; listing the source finds the recording
          return json(res, 200, parsed().filter ? { runs: [] } : recorded[key]);
        case 'GET /api/2.0/mlflow/unity-catalog/model-versions/search':
          return json(res, 200, { model_versions: [] });
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/create':
          return json(res, 200, { model_version: { name: parsed().name, version: '1', status: 'PENDING_REGISTRATION', storage_location: 's3://uc-bucket/models/abc', creation_timestamp: '1717300000000' } });
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials':
          if (storage.mode === 'CUSTOMER_HOSTED') {
            const aws = { access_key_id: 'ASIAEXAMPLEKEY', secret_access_key: 'SECRET-AWS-KEY', session_token: 'SECRET-SESSION' };
            return json(res, 200, { credentials: { storage_mode: 'CUSTOMER_HOSTED', aws_temp_credentials: aws, expiration_time: '1717303600000' } });
          }
          return json(res, 200, { credentials: { storage_mode: 'DEFAULT_STORAGE', expiration_time: '1717303600000' } });
        case 'POST /api/2.0/fs/create-upload-url':
          return json(res, 200, { url: `${base}/storage${parsed().path}?X-Amz-Signature=SECRET-UC`, headers: [{ name: 'x-amz-server-side-encryption', value: 'AES256' }] });
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/finalize':
          return json(res, 200, { model_version: { name: parsed().name, version: '1', status: 'READY' } });
        default:
          if (key in recorded) return json(res, 200, recorded[key]);
          // writes that answer nothing in particular
          if (req.method !== 'GET') return json(res, 200, {});
          return json(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `no recording for ${key}` });
      }
    });
  });
  return {
    seen,
    stored,
    storage,
    start: () =>
      new Promise<string>((resolve) =>
        server.listen(0, '127.0.0.1', () => {
          base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
          resolve(base);
        }),
      ),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function profileFile(host: string): string {
  const file = join(dir(), 'databrickscfg');
  writeFileSync(file, `[DEFAULT]\nhost = ${host}\ntoken = ${TOKEN}\n\n[test]\nhost = ${host}\ntoken = ${TOKEN}\n\n[sso]\nhost = ${host}\nauth_type = databricks-cli\n`);
  return file;
}

const target = (location: string, env: NodeJS.ProcessEnv, side: 'src' | 'dst' = 'src'): ConnectorTarget => ({ location, side, env });

describe('Databricks settings', () => {
  it('reads profiles and the environment, per side, and says clearly what is missing', () => {
    const file = profileFile('https://example.cloud.databricks.com');
    expect(parseAddress('databricks://test')).toEqual({ unityCatalog: false, profile: 'test' });
    expect(parseAddress('databricks-uc')).toEqual({ unityCatalog: true });
    expect(parseAddress('http://x')).toBeUndefined();
    const env = { DATABRICKS_CONFIG_FILE: file };
    expect(resolveConfig(target('databricks://test', env), parseAddress('databricks://test')!).host).toBe('https://example.cloud.databricks.com');
    expect(resolveConfig(target('databricks', env), { unityCatalog: false }).token).toBe(TOKEN);
    const fromEnv = resolveConfig(target('databricks', { TRACKSHIFT_DST_DATABRICKS_HOST: 'dst.example.com', DATABRICKS_TOKEN: 'dapi-x', DATABRICKS_CONFIG_FILE: file }, 'dst'), { unityCatalog: false });
    expect(fromEnv).toMatchObject({ host: 'https://dst.example.com', token: 'dapi-x' });
    expect(() => resolveConfig(target('databricks://nope', env), { unityCatalog: false, profile: 'nope' })).toThrow(/profile "nope" is not in .*databrickscfg; it has "DEFAULT", "test", "sso"/);
    expect(() => resolveConfig(target('databricks://sso', env), { unityCatalog: false, profile: 'sso' })).toThrow(/has no token \(it signs in with databricks-cli\)/);
    expect(() => resolveConfig(target('databricks', { DATABRICKS_CONFIG_FILE: '/no/such/file' }), { unityCatalog: false })).toThrow(/no Databricks credentials/);
  });

  it('checks Unity Catalog names and maps external locations to their HTTPS endpoints', () => {
    expect(() => checkThreeLevelName('fraud')).toThrow(/needs three levels, catalog.schema.model; choose one with --dst-model/);
    expect(() => checkThreeLevelName('main.risk.fraud')).not.toThrow();
    expect(storageUrl('abfss://models@acct.dfs.core.windows.net/uc/m/1', 'data/x y.bin')).toBe('https://acct.dfs.core.windows.net/models/uc/m/1/data/x%20y.bin');
    expect(storageUrl('gs://bucket/uc/m/1', 'MLmodel')).toBe('https://storage.googleapis.com/upload/storage/v1/b/bucket/o?uploadType=media&name=uc%2Fm%2F1%2FMLmodel');
    expect(() => storageUrl('r2://x/y', 'a')).toThrow(/writes to Databricks default storage, s3:\/\/, abfss:\/\/ and gs:\/\//);
  });
});

describe('a Databricks workspace (recorded answers on a local server)', () => {
  const workspace = fakeWorkspace();
  let base: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    base = await workspace.start();
    env = { DATABRICKS_CONFIG_FILE: profileFile(base) };
  });
  afterAll(() => workspace.stop());

  it('exports runs, metric histories, artifacts through signed URLs, and the workspace registry', async () => {
    const out = join(dir(), 'bundle');
    const report = join(dir(), 'report.json');
    const result = await cli(['export', 'databricks://test', out, '--state-dir', dir(), '--report', report], env);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const runDir = join(out, 'experiments', '3410573947160281', 'runs', '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f');
    const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ name: 'xgb-baseline', status: 'FINISHED', startTime: 1717200000000, endTime: 1717200600000, user: 'ana@example.com', params: { max_depth: '6' } });
    const auc = readFileSync(join(runDir, run.metrics[0].file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(auc).toEqual([{ t: 1717200100000, s: 0, v: 0.85 }, { t: 1717200200000, s: 1, v: 'NaN' }, { t: 1717200300000, s: 2, v: 0.91 }]);
    expect(readFileSync(join(runDir, 'artifacts', 'report.txt'), 'utf8')).toBe('report');
    expect(readFileSync(join(runDir, 'artifacts', 'model.json'), 'utf8')).toBe('{"booster":"gbtre');
    const version = JSON.parse(readFileSync(join(out, 'models', 'fraud-xgb', 'versions', '1.json'), 'utf8'));
    expect(version).toMatchObject({ version: '1', stage: 'Production', location: { type: 'run', runId: '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f', path: 'model' }, tags: { validated: 'yes' } });
    expect(JSON.parse(readFileSync(join(out, 'models', 'fraud-xgb', 'model.json'), 'utf8')).aliases).toEqual({ champion: '1' });
    // the run's logged model, its files through their own signed URLs
    const logged = join(out, 'experiments', '3410573947160281', 'logged-models', 'm-0a1b2c3d4e5f60718293a4b5c6d7e8f9');
    expect(JSON.parse(readFileSync(join(logged, 'logged-model.json'), 'utf8'))).toMatchObject({ name: 'model', sourceRunId: '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f', params: { max_depth: '6' } });
    expect(readFileSync(join(logged, 'artifacts', 'MLmodel'), 'utf8')).toContain('model_id: m-0a1b2c3d4e5f60718293a4b5c6d7e8f9');

    // the token goes to the workspace only, never to the storage; no secret is printed
    const api = workspace.seen.filter((s) => s.path.startsWith('/api/'));
    const storage = workspace.seen.filter((s) => s.path.startsWith('/storage/'));
    expect(api.every((s) => s.auth === `Bearer ${TOKEN}`)).toBe(true);
    expect(storage.length).toBeGreaterThan(0);
    expect(storage.every((s) => s.auth === undefined)).toBe(true);
    const printed = result.stdout + result.stderr + readFileSync(report, 'utf8');
    for (const secret of [TOKEN, 'SECRET-AWS', 'SECRET-SAS']) expect(printed).not.toContain(secret);
  });

  it('refuses a wrong token with one clear message, without printing it', async () => {
    const file = join(dir(), 'cfg');
    writeFileSync(file, `[bad]\nhost = ${base}\ntoken = dapi-WRONG-999999\n`);
    const result = await cli(['ls', 'databricks://bad'], { DATABRICKS_CONFIG_FILE: file });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/refused the credentials .* profile "bad"/);
    expect(result.stderr).not.toContain('dapi-WRONG-999999');
  });

  /** Copies a run and a registered model from memory into databricks-uc://test; returns what the source MLmodel said. */
  async function copyIntoUnityCatalog(extraEnv: NodeJS.ProcessEnv = {}): Promise<string> {
    const source = newStore();
    source.data.experiments.set('1', { id: '1', name: 'fraud', tags: {}, lifecycle: 'active' });
    const mlmodel = 'artifact_path: model\nrun_id: src-run\nsignature:\n  inputs: \'[{"type": "double"}]\'\nflavors: {}\n';
    source.data.runs.set('src-run', {
      run: { id: 'src-run', experimentId: '1', name: 'train', status: 'FINISHED', startTime: 5, endTime: 6, lifecycle: 'active', params: { depth: '3' }, tags: {}, inputs: [], metricKeys: [] },
      metrics: new Map(),
      artifacts: new Map([['model/MLmodel', Buffer.from(mlmodel)], ['model/model.pkl', Buffer.from('weights')], ['notes.txt', Buffer.from('n')]]),
    });
    source.registry.add({ name: 'fraud', tags: {}, aliases: {} }, [
      { modelName: 'fraud', version: '1', source: 'runs:/src-run/model', location: { type: 'run', runId: 'src-run', path: 'model' }, runId: 'src-run', status: 'READY', stage: 'Production', tags: {} },
    ]);
    const destination = (await databricksConnector.openDestination!(target('databricks-uc://test', { ...env, ...extraEnv }, 'dst'))) as Destination;
    try {
      const plan = await planTransfer(source, { ...emptySelection(), models: ['fraud'], dstModel: 'main.risk.fraud' });
      const result = await transfer(source, destination, plan, { workers: 1, artifactWorkers: 1, dryRun: false, journal: new Journal(dir()) });
      expect(result.failed).toEqual([]);
      expect(result.copied).toMatchObject({ runs: 1, versions: 1 });
      expect(result.warnings.map((w) => w.message)).toContainEqual(expect.stringMatching(/has no stages; stages became aliases: Production → alias "production"/));
    } finally {
      await destination.close?.();
    }
    return mlmodel;
  }

  it('writes runs and a model into Unity Catalog: version files uploaded, finalized, stages as aliases', async () => {
    const mlmodel = await copyIntoUnityCatalog();
    const calls = workspace.seen.map((s) => `${s.method} ${s.path}`);
    const order = ['POST /api/2.0/mlflow/unity-catalog/registered-models/create', 'POST /api/2.0/mlflow/unity-catalog/model-versions/create', 'POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials', 'POST /api/2.0/fs/create-upload-url', 'POST /api/2.0/mlflow/unity-catalog/model-versions/finalize', 'POST /api/2.0/mlflow/unity-catalog/registered-models/alias'];
    const at = order.map((call) => calls.indexOf(call));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const created = JSON.parse(workspace.seen.find((s) => s.path.endsWith('registered-models/create'))!.body.toString());
    expect(created.name).toBe('main.risk.fraud');
    const alias = JSON.parse(workspace.seen.find((s) => s.path.endsWith('registered-models/alias'))!.body.toString());
    expect(alias).toEqual({ name: 'main.risk.fraud', alias: 'production', version: '1' });
    // the version's own files, with the MLmodel naming the copied run
    const uploaded = workspace.stored.get('/storage/Models/main/risk/fraud/1/MLmodel')!.toString();
    expect(uploaded).toBe(mlmodel.replace('run_id: src-run', 'run_id: dbrun1'));
    expect(workspace.stored.get('/storage/Models/main/risk/fraud/1/model.pkl')!.toString()).toBe('weights');
    expect(workspace.stored.has('/storage/Models/main/risk/fraud/1/notes.txt')).toBe(false);
    // the run's artifacts went to the run's signed URLs
    expect(workspace.stored.get('/storage/dbrun1/notes.txt')!.toString()).toBe('n');
  });

  it('uploads a version stored on S3 with the temporary AWS credentials, signed (SigV4)', async () => {
    workspace.storage.mode = 'CUSTOMER_HOSTED';
    try {
      await copyIntoUnityCatalog({ AWS_ENDPOINT_URL_S3: base, AWS_REGION: 'eu-west-1' });
      const put = workspace.seen.filter((s) => s.method === 'PUT' && s.path === '/uc-bucket/models/abc/MLmodel').pop()!;
      expect(put.body.toString()).toMatch(/^artifact_path: model\nrun_id: dbrun\d+\nsignature:/);
      expect(put.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[^,]*x-amz-security-token/);
      expect(workspace.stored.get('/uc-bucket/models/abc/model.pkl')!.toString()).toBe('weights');
    } finally {
      workspace.storage.mode = 'DEFAULT_STORAGE';
    }
  });
});
