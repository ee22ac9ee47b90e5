/**
 * The Databricks connector against a local HTTP server — NOT a real Databricks workspace (none
 * exists here). The server answers with recorded-style, Databricks-shaped responses
 * (test/fixtures/databricks/*.json, written from mlflow 3.17.2's protos and its Databricks
 * stores: int64 as strings, enums as names, dbfs: artifact URIs, signed URLs) and plays the cloud
 * storage behind the signed URLs too (S3 presigned PUT and multipart, Azure Put Blob and blocks,
 * Azure Data Lake create/append/flush, GCS). What is checked: the requests trackshift sends
 * (method, path, body, Authorization), how it reads the answers, and that no secret (the token,
 * a signed URL's signature, temporary cloud credentials) reaches any message or report.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { databricksConnector } from '../../src/connectors/databricks/index.js';
import { chunkSettings } from '../../src/connectors/databricks/artifacts.js';
import { parseAddress, parseProfiles, resolveConfig } from '../../src/connectors/databricks/config.js';
import { DatabricksStore } from '../../src/connectors/databricks/write.js';
import { UcRegistry, checkThreeLevelName, signatureProblem, sseHeaders, storageUrl } from '../../src/connectors/databricks/registry.js';
import { MlflowApi } from '../../src/connectors/mlflow-common/client.js';
import type { ConnectorTarget, Destination } from '../../src/connectors/types.js';
import type { Run } from '../../src/model/index.js';
import { Journal } from '../../src/engine/journal.js';
import { emptySelection, planTransfer } from '../../src/engine/plan.js';
import { transfer, type TransferResult } from '../../src/engine/transfer.js';
import { redactUri } from '../../src/util/redact.js';
import { azureBlockId, chunks, SignedUrlClient } from '../../src/util/signed-url.js';
import { cli } from '../cli/run-cli.js';
import { memoryRun } from '../../src/connectors/memory/index.js';
import { newStore } from '../engine/fixture.js';

const TOKEN = 'dapi-SECRET-0123456789abcdef';
/** every secret the fixtures hand out: none may appear in anything trackshift prints or reports */
const SECRETS = [TOKEN, 'SECRET-AWS', 'SECRET-STS', 'SECRET-SAS', 'SECRET-ADLS', 'SECRET-GCP', 'SECRET-UC', 'SECRET-UDSAS', 'SECRET-AWS-KEY', 'SECRET-SESSION', 'SECRET-PART'];
const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/databricks/${name}`, import.meta.url), 'utf8')) as Record<string, any>;
const recorded = fixture('workspace.json');
const uc = fixture('unity-catalog.json');
const artifactAnswers = fixture('artifacts.json');

type CredentialType = 'AWS_PRESIGNED_URL' | 'AZURE_SAS_URI' | 'AZURE_ADLS_GEN2_SAS_URI' | 'GCP_SIGNED_URL';
type UcStorage = 'DEFAULT_STORAGE' | 'S3' | 'AZURE' | 'GCS';

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  auth?: string;
  body: Buffer;
}

const dir = () => mkdtempSync(join(tmpdir(), 'trackshift-databricks-'));
const fill = (template: unknown, values: Record<string, string>) => {
  let text = JSON.stringify(template);
  for (const [key, value] of Object.entries(values)) text = text.split(`{{${key}}}`).join(value);
  return JSON.parse(text);
};

/** A workspace that answers from the recordings, and the cloud storage behind its signed URLs. */
function fakeWorkspace() {
  const seen: Seen[] = [];
  const stored = new Map<string, Buffer>();
  const blocks = new Map<string, Map<string, Buffer>>();
  const parts = new Map<string, Map<number, Buffer>>();
  const aborted: string[] = [];
  const state = {
    writeType: 'AWS_PRESIGNED_URL' as CredentialType,
    ucStorage: 'DEFAULT_STORAGE' as UcStorage,
    /** a status the storage answers every request with (403: an expired URL) */
    storageFails: 0,
    /** finalize answers 400 with a message that echoes the request's Authorization header */
    finalizeFails: false,
    models: new Map<string, { name: string; tags: Array<{ key: string; value: string }> }>(),
    versions: new Map<string, Array<Record<string, any>>>(),
  };
  let base = '';
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };

  function storage(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer) {
    const q = url.searchParams;
    const path = url.pathname;
    if (state.storageFails) {
      // S3 and Azure error bodies name the request, query and all
      res.writeHead(state.storageFails, { 'content-type': 'application/xml' });
      return res.end(`<Error><Code>AccessDenied</Code><Message>Request has expired</Message><RequestUrl>${url.href}</RequestUrl><Query>${url.search}</Query></Error>`);
    }
    if (req.method === 'GET') {
      const file = stored.get(path);
      if (!file) return json(res, 404, {});
      res.writeHead(200);
      return res.end(file);
    }
    if (req.method === 'DELETE') {
      aborted.push(q.get('uploadId') ?? path);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === 'PATCH') {
      // Azure Data Lake: appends at the file's current length, then a flush at its final length
      const current = stored.get(path) ?? Buffer.alloc(0);
      if (q.get('action') === 'append') {
        if (Number(q.get('position')) !== current.length) return json(res, 400, { error: 'InvalidFlushPosition' });
        stored.set(path, Buffer.concat([current, body]));
      } else if (q.get('action') === 'flush' && Number(q.get('position')) !== current.length) return json(res, 400, { error: 'InvalidFlushPosition' });
      res.writeHead(200);
      return res.end();
    }
    // PUT
    if (q.get('comp') === 'block') {
      if (!blocks.has(path)) blocks.set(path, new Map());
      blocks.get(path)!.set(q.get('blockid')!, body);
    } else if (q.get('comp') === 'blocklist') {
      const ids = [...body.toString().matchAll(/<Uncommitted>([^<]+)<\/Uncommitted>/g)].map((m) => m[1]!);
      stored.set(path, Buffer.concat(ids.map((id) => blocks.get(path)!.get(id)!)));
    } else if (q.get('resource') === 'file') {
      stored.set(path, Buffer.alloc(0));
    } else if (q.get('partNumber')) {
      const upload = q.get('uploadId')!;
      if (!parts.has(upload)) parts.set(upload, new Map());
      parts.get(upload)!.set(Number(q.get('partNumber')), body);
      res.writeHead(200, { etag: `"etag-${q.get('partNumber')}"` });
      return res.end();
    } else {
      stored.set(path, body);
    }
    res.writeHead(201);
    return res.end();
  }

  const server: Server = createServer((req: IncomingMessage, res) => {
    const data: Buffer[] = [];
    req.on('data', (c: Buffer) => data.push(c));
    req.on('end', () => {
      const url = new URL(req.url!, base);
      const body = Buffer.concat(data);
      seen.push({ method: req.method!, path: url.pathname, query: url.searchParams, headers: req.headers, auth: req.headers.authorization, body });
      const parsed = () => JSON.parse(body.toString() || '{}');
      if (url.pathname.startsWith('/storage/') || url.pathname.startsWith('/uc-bucket/')) return storage(req, res, url, body);
      if (req.headers.authorization !== `Bearer ${TOKEN}`) return json(res, 401, { error_code: 'UNAUTHENTICATED', message: 'Invalid access token' });
      const key = `${req.method} ${url.pathname}`;
      const credential = (type: CredentialType, runId: string, path: string) => fill(artifactAnswers[type], { base, run_id: runId, path });
      const versionsOf = (name: string) => {
        if (!state.versions.has(name)) state.versions.set(name, []);
        return state.versions.get(name)!;
      };
      switch (key) {
        case 'POST /api/2.0/mlflow/artifacts/credentials-for-read': {
          const { run_id, path } = parsed();
          const p = path[0] as string;
          if (!stored.has(`/storage/${run_id}/${p}`)) stored.set(`/storage/${run_id}/${p}`, Buffer.from(p === 'model.json' ? '{"booster":"gbtre' : 'report'));
          return json(res, 200, { credential_infos: [credential(p.endsWith('.txt') ? 'AZURE_SAS_URI' : 'AWS_PRESIGNED_URL', run_id, p)] });
        }
        case 'POST /api/2.0/mlflow/artifacts/credentials-for-write': {
          const { run_id, path } = parsed();
          return json(res, 200, { credential_infos: [credential(state.writeType, run_id, path[0])] });
        }
        case 'POST /api/2.0/mlflow/artifacts/create-multipart-upload': {
          const { run_id, path, num_parts } = parsed();
          const signed = (query: string) => `${base}/storage/${run_id}/${path}?${query}&X-Amz-Signature=SECRET-PART`;
          const info = (query: string) => ({ run_id, path, signed_uri: signed(query), type: 'AWS_PRESIGNED_URL', headers: [] });
          return json(res, 200, {
            upload_id: 'mpu-7f3a',
            upload_credential_infos: Array.from({ length: Number(num_parts) }, (_, i) => info(`partNumber=${i + 1}&uploadId=mpu-7f3a`)),
            abort_credential_info: info('uploadId=mpu-7f3a'),
          });
        }
        case 'POST /api/2.0/mlflow/artifacts/complete-multipart-upload': {
          const { run_id, path, upload_id, part_etags } = parsed();
          const got = parts.get(upload_id)!;
          for (const { part_number, etag } of part_etags) if (etag !== `"etag-${part_number}"`) return json(res, 400, { error_code: 'INVALID_PARAMETER_VALUE', message: 'bad etag' });
          stored.set(`/storage/${run_id}/${path}`, Buffer.concat(part_etags.map((p: { part_number: number }) => got.get(Number(p.part_number))!)));
          return json(res, 200, {});
        }
        case 'POST /api/2.0/mlflow/logged-models/m-0a1b2c3d4e5f60718293a4b5c6d7e8f9/artifacts/credentials-for-download': {
          const p = parsed().paths[0];
          stored.set(`/storage/logged/${p}`, Buffer.from('artifact_path: model\nmodel_id: m-0a1b2c3d4e5f60718293a4b5c6d7e8f9\n'));
          return json(res, 200, { credentials: [{ model_id: 'm-0a1b2c3d4e5f60718293a4b5c6d7e8f9', credential_info: credential('GCP_SIGNED_URL', 'logged', p) }] });
        }
        case 'GET /api/2.0/mlflow/experiments/get-by-name':
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
        // Unity Catalog
        case 'GET /api/2.0/mlflow/unity-catalog/registered-models/get': {
          const name = url.searchParams.get('name')!;
          const model = state.models.get(name);
          if (!model) return json(res, 404, fill(uc[`${key} (missing)`], { name }));
          return json(res, 200, { registered_model: { ...model, creation_timestamp: '1717300000000', aliases: [] } });
        }
        case 'POST /api/2.0/mlflow/unity-catalog/registered-models/create': {
          const { name, tags } = parsed();
          state.models.set(name, { name, tags: tags ?? [] });
          return json(res, 200, fill(uc[key], { name }));
        }
        case 'POST /api/2.0/mlflow/unity-catalog/registered-models/set-tag': {
          const { name, key: k, value } = parsed();
          state.models.get(name)?.tags.push({ key: k, value });
          return json(res, 200, {});
        }
        case 'GET /api/2.0/mlflow/unity-catalog/model-versions/search': {
          const name = /^name='(.*)'$/.exec(url.searchParams.get('filter') ?? '')![1]!;
          return json(res, 200, { model_versions: versionsOf(name) });
        }
        case 'GET /api/2.0/mlflow/unity-catalog/model-versions/get': {
          const name = url.searchParams.get('name')!;
          const version = versionsOf(name).find((v) => v.version === url.searchParams.get('version'));
          return version ? json(res, 200, { model_version: version }) : json(res, 404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'no such version' });
        }
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/create': {
          const { name, source, run_id, tags } = parsed();
          const versions = versionsOf(name);
          const storageLocation = uc['POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials'][state.ucStorage].storage_location ?? 's3://databricks-default-storage/uc/abc';
          const answer = fill(uc[key], { name, source, run_id: run_id ?? '', storage_location: storageLocation });
          answer.model_version.version = String(versions.length + 1);
          answer.model_version.tags = tags ?? [];
          versions.push(answer.model_version);
          return json(res, 200, answer);
        }
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/set-tag': {
          const { name, version, key: k, value } = parsed();
          versionsOf(name).find((v) => v.version === version)?.tags.push({ key: k, value });
          return json(res, 200, {});
        }
        case 'DELETE /api/2.0/mlflow/unity-catalog/model-versions/delete': {
          const { name, version } = parsed();
          state.versions.set(name, versionsOf(name).filter((v) => v.version !== version));
          return json(res, 200, {});
        }
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials': {
          const { credentials } = uc[key][state.ucStorage];
          return json(res, 200, { credentials });
        }
        case 'POST /api/2.0/fs/create-upload-url':
          return json(res, 200, fill(uc[key], { base, path: parsed().path }));
        case 'POST /api/2.0/mlflow/unity-catalog/model-versions/finalize': {
          const { name, version } = parsed();
          if (state.finalizeFails) return json(res, 400, { error_code: 'INVALID_STATE', message: `cannot finalize (request had authorization: ${req.headers.authorization})` });
          const mv = versionsOf(name).find((v) => v.version === version)!;
          mv.status = 'READY';
          return json(res, 200, { model_version: mv });
        }
        default:
          if (key in recorded) return json(res, 200, recorded[key]);
          if (key in uc) return json(res, 200, uc[key]);
          // writes that answer nothing in particular
          if (req.method !== 'GET') return json(res, 200, {});
          return json(res, 404, { error_code: 'ENDPOINT_NOT_FOUND', message: `no recording for ${key}` });
      }
    });
  });
  return {
    seen,
    stored,
    aborted,
    state,
    /** the JSON bodies sent to one endpoint */
    bodies: (method: string, endpoint: string) => seen.filter((s) => s.method === method && s.path === endpoint).map((s) => JSON.parse(s.body.toString() || '{}')),
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
  writeFileSync(
    file,
    `[DEFAULT]\nhost = ${host}\ntoken = ${TOKEN}\n\n[test]\nhost = ${host}\ntoken = ${TOKEN}\n\n` +
      `[sso]\nhost = ${host}\nauth_type = databricks-cli\n\n[m2m]\nhost = ${host}\nclient_id = abc\nclient_secret = SECRET-M2M\n\n` +
      `[colon]\nhost: https://colon.example.com\ntoken: dapi-colon\n\n[notoken]\nhost = ${host}\n`,
  );
  return file;
}

const target = (location: string, env: NodeJS.ProcessEnv, side: 'src' | 'dst' = 'src'): ConnectorTarget => ({ location, side, env });
const resolveFor = (location: string, env: NodeJS.ProcessEnv, side: 'src' | 'dst' = 'src') => resolveConfig(target(location, env, side), parseAddress(location)!);

describe('Databricks settings', () => {
  const file = profileFile('https://example.cloud.databricks.com');

  it('parses the URIs', () => {
    expect(parseAddress('databricks://test')).toEqual({ unityCatalog: false, profile: 'test' });
    expect(parseAddress('databricks')).toEqual({ unityCatalog: false });
    expect(parseAddress('databricks-uc')).toEqual({ unityCatalog: true });
    expect(parseAddress('databricks-uc://prod')).toEqual({ unityCatalog: true, profile: 'prod' });
    expect(parseAddress('http://x')).toBeUndefined();
    expect(parseProfiles('[a]\nHost = h\n# c\n; c\ntoken: t=1\n')).toEqual(new Map([['a', { host: 'h', token: 't=1' }]]));
  });

  it('takes DATABRICKS_HOST/TOKEN, else the DEFAULT profile, for plain databricks', () => {
    expect(resolveFor('databricks', { DATABRICKS_HOST: 'env.example.com', DATABRICKS_TOKEN: 'dapi-env', DATABRICKS_CONFIG_FILE: file })).toMatchObject({ host: 'https://env.example.com', token: 'dapi-env' });
    expect(resolveFor('databricks', { DATABRICKS_CONFIG_FILE: file })).toMatchObject({ host: 'https://example.cloud.databricks.com', token: TOKEN, origin: `profile "DEFAULT" in ${file}` });
    // DATABRICKS_CONFIG_PROFILE picks another profile, as in the Databricks CLI
    expect(resolveFor('databricks', { DATABRICKS_CONFIG_FILE: file, DATABRICKS_CONFIG_PROFILE: 'colon' })).toMatchObject({ host: 'https://colon.example.com', token: 'dapi-colon' });
    // a host without a token is not mixed with some profile's token
    expect(() => resolveFor('databricks', { DATABRICKS_HOST: 'env.example.com', DATABRICKS_CONFIG_FILE: file })).toThrow(/comes from the environment \(DATABRICKS_HOST\), but no token does/);
  });

  it('takes a named profile, with per-side overrides, never the plain environment', () => {
    const env = { DATABRICKS_CONFIG_FILE: file, DATABRICKS_HOST: 'other.example.com', DATABRICKS_TOKEN: 'dapi-other' };
    expect(resolveFor('databricks://test', env)).toMatchObject({ host: 'https://example.cloud.databricks.com', token: TOKEN });
    expect(resolveFor('databricks-uc://colon', env)).toMatchObject({ host: 'https://colon.example.com', token: 'dapi-colon' });
    // TRACKSHIFT_DST_… is for the destination only, and wins over the profile
    const sided = { ...env, TRACKSHIFT_DST_DATABRICKS_TOKEN: 'dapi-dst', TRACKSHIFT_SRC_DATABRICKS_HOST: 'src.example.com' };
    expect(resolveFor('databricks://test', sided, 'dst')).toMatchObject({ host: 'https://example.cloud.databricks.com', token: 'dapi-dst' });
    expect(resolveFor('databricks://test', sided, 'src')).toMatchObject({ host: 'https://src.example.com', token: TOKEN });
    // both halves of a copy in one command, each from its own variables
    const both = { TRACKSHIFT_SRC_DATABRICKS_HOST: 'a.example.com', TRACKSHIFT_SRC_DATABRICKS_TOKEN: 'dapi-a', TRACKSHIFT_DST_DATABRICKS_HOST: 'b.example.com', TRACKSHIFT_DST_DATABRICKS_TOKEN: 'dapi-b', DATABRICKS_CONFIG_FILE: '/no/such/file' };
    expect(resolveFor('databricks', both, 'src')).toMatchObject({ host: 'https://a.example.com', token: 'dapi-a' });
    expect(resolveFor('databricks-uc', both, 'dst')).toMatchObject({ host: 'https://b.example.com', token: 'dapi-b' });
  });

  it('says clearly which profile and file are missing or unsupported (a usage error, exit 2)', () => {
    const env = { DATABRICKS_CONFIG_FILE: file };
    const error = (location: string, e: NodeJS.ProcessEnv = env) => {
      try {
        resolveFor(location, e);
      } catch (err) {
        return err as Error & { exitCode?: number };
      }
      throw new Error('no error');
    };
    expect(error('databricks://nope').message).toBe(`profile "nope" is not in ${file}; it has "DEFAULT", "test", "sso", "m2m", "colon", "notoken"`);
    expect(error('databricks://nope').exitCode).toBe(2);
    expect(error('databricks://sso').message).toMatch(new RegExp(`^profile "sso" in ${file} signs in with auth_type = databricks-cli, which trackshift does not support: .*personal access token`));
    expect(error('databricks://m2m').message).toMatch(/profile "m2m" .* has no token \(it signs in with OAuth with a service principal \(client_id \/ client_secret\)\), which trackshift does not support/);
    expect(error('databricks://m2m').message).not.toContain('SECRET-M2M');
    expect(error('databricks://notoken').message).toMatch(/profile "notoken" .* has no token .*set TRACKSHIFT_SRC_DATABRICKS_TOKEN/);
    expect(error('databricks://test', { DATABRICKS_CONFIG_FILE: '/no/such/file' }).message).toBe('no Databricks profile "test": /no/such/file cannot be read (DATABRICKS_CONFIG_FILE names another file)');
    expect(error('databricks', { DATABRICKS_CONFIG_FILE: '/no/such/file' }).message).toMatch(/no Databricks credentials for databricks: \/no\/such\/file cannot be read; set TRACKSHIFT_SRC_DATABRICKS_HOST/);
    // a token given for this side makes an SSO profile usable
    expect(resolveFor('databricks://sso', { ...env, TRACKSHIFT_SRC_DATABRICKS_TOKEN: 'dapi-side' }).token).toBe('dapi-side');
  });

  it('keeps signatures of signed storage URLs out of what it prints', () => {
    expect(redactUri('https://acct.blob.core.windows.net/c/p?sv=2023-01-03&sig=abc%2Bdef')).toBe('https://acct.blob.core.windows.net/c/p?sv=2023-01-03&sig=***');
    expect(redactUri('https://b.s3.amazonaws.com/k?X-Amz-Credential=AK&X-Amz-Security-Token=tok&X-Amz-Signature=abc')).toBe('https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Security-Token=***&X-Amz-Signature=***');
    expect(redactUri('https://storage.googleapis.com/b/k?X-Goog-Credential=sa&X-Goog-Signature=abc')).toBe('https://storage.googleapis.com/b/k?X-Goog-Credential=***&X-Goog-Signature=***');
  });

  it('checks Unity Catalog names, signatures, encryption and storage endpoints', () => {
    expect(() => checkThreeLevelName('fraud')).toThrow(/"fraud" is not a Unity Catalog model name: it needs three levels, catalog.schema.model; choose one with --dst-model/);
    expect(() => checkThreeLevelName('main..fraud')).toThrow(/three levels/);
    expect(() => checkThreeLevelName('main.risk.fraud')).not.toThrow();
    expect(signatureProblem('flavors: {}\n')).toBe('its MLmodel has no signature');
    expect(signatureProblem("signature:\n  inputs: '[]'\n")).toBe('its MLmodel signature has inputs only, no outputs');
    expect(signatureProblem("signature:\n  inputs: '[{\"type\": \"double\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n")).toBeUndefined();
    expect(sseHeaders({ encryption_details: { sse_encryption_details: { algorithm: 'AWS_SSE_S3' } } })).toEqual({ 'x-amz-server-side-encryption': 'AES256' });
    expect(sseHeaders({})).toEqual({});
    expect(storageUrl('abfss://models@acct.dfs.core.windows.net/uc/m/1', 'data/x y.bin')).toBe('https://acct.dfs.core.windows.net/models/uc/m/1/data/x%20y.bin');
    expect(storageUrl('gs://bucket/uc/m/1', 'data/x y.bin')).toBe('https://storage.googleapis.com/bucket/uc/m/1/data/x%20y.bin');
    expect(() => storageUrl('r2://x/y', 'a')).toThrow(/writes to Databricks default storage, s3:\/\/, abfss:\/\/ and gs:\/\//);
  });

  it('cuts bodies into pieces of one size, and takes MLflow\'s multipart settings', async () => {
    const pieces: Buffer[] = [];
    for await (const piece of chunks(Readable.from([Buffer.from('abcde'), Buffer.from('fg'), Buffer.from('hijklmn')]), 3)) pieces.push(piece);
    expect(pieces.map(String)).toEqual(['abc', 'def', 'ghi', 'jkl', 'mn']);
    expect(new Set([0, 1, 99999].map((i) => azureBlockId(i).length)).size).toBe(1);
    expect(chunkSettings({})).toEqual({ threshold: 500 * 1024 ** 2, chunkSize: 10 * 1024 ** 2 });
    expect(chunkSettings({ MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE: '100', MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE: '10' })).toEqual({ threshold: 100, chunkSize: 10 });
    expect(() => chunkSettings({ MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE: '10MB' })).toThrow(/MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE must be a whole number of bytes/);
  });
});

/** Rewrites cloud storage hosts (Azure, GCS) to the local server, as a proxy would. */
class LocalStorage extends SignedUrlClient {
  constructor(private readonly base: string) {
    super();
  }
  private local(url: string) {
    return url.replace(/^https:\/\/[^/]+/, this.base);
  }
  override upload(url: string, headers: Record<string, string>, body: Readable, size?: number) {
    return super.upload(this.local(url), headers, body, size);
  }
  override uploadAdls(url: string, headers: Record<string, string>, body: Readable, size: number) {
    return super.uploadAdls(this.local(url), headers, body, size);
  }
}

describe('a Databricks workspace (recorded-style answers on a local server, not a real workspace)', () => {
  const workspace = fakeWorkspace();
  let base: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    base = await workspace.start();
    env = { DATABRICKS_CONFIG_FILE: profileFile(base) };
  });
  afterAll(() => workspace.stop());
  beforeEach(() => {
    workspace.seen.length = 0;
    workspace.state.writeType = 'AWS_PRESIGNED_URL';
    workspace.state.ucStorage = 'DEFAULT_STORAGE';
    workspace.state.storageFails = 0;
    workspace.state.finalizeFails = false;
    workspace.state.models.clear();
    workspace.state.versions.clear();
  });

  it('lists experiments and runs through databricks://PROFILE', async () => {
    const result = await cli(['ls', 'databricks://test', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).experiments).toEqual([expect.objectContaining({ id: '3410573947160281', name: '/Users/ana@example.com/fraud', runs: 1 })]);
    expect(workspace.bodies('POST', '/api/2.0/mlflow/experiments/search')[0]).toMatchObject({ max_results: expect.any(Number) });
    expect(workspace.seen.every((s) => s.auth === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('exports runs, metric histories, artifacts through signed URLs, and the workspace registry', async () => {
    const out = join(dir(), 'bundle');
    const report = join(dir(), 'report.json');
    const result = await cli(['export', 'databricks://test', out, '--state-dir', dir(), '--report', report], env);
    expect(result.code, result.stderr + result.stdout).toBe(0);
    const runDir = join(out, 'experiments', '3410573947160281', 'runs', '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f');
    const run = JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8'));
    expect(run).toMatchObject({ name: 'xgb-baseline', status: 'FINISHED', startTime: 1717200000000, endTime: 1717200600000, user: 'ana@example.com', params: { max_depth: '6' } });
    const auc = readFileSync(join(runDir, run.series[0].file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(auc).toEqual([{ t: 1717200100000, s: 0, v: 0.85 }, { t: 1717200200000, s: 1, v: 'NaN' }, { t: 1717200300000, s: 2, v: 0.91 }]);
    // report.txt came through an Azure SAS URL, model.json through an AWS presigned one
    expect(readFileSync(join(runDir, 'artifacts', 'report.txt'), 'utf8')).toBe('report');
    expect(readFileSync(join(runDir, 'artifacts', 'model.json'), 'utf8')).toBe('{"booster":"gbtre');
    expect(workspace.bodies('POST', '/api/2.0/mlflow/artifacts/credentials-for-read')).toEqual(
      expect.arrayContaining([{ run_id: '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f', path: ['report.txt'] }, { run_id: '9f1c2e0d4b7a4c1e8e5f6a7b8c9d0e1f', path: ['model.json'] }]),
    );
    const gets = workspace.seen.filter((s) => s.method === 'GET' && s.path.startsWith('/storage/9f1c'));
    expect(gets.find((s) => s.path.endsWith('model.json'))!.headers['x-amz-server-side-encryption']).toBe('AES256');
    expect(gets.find((s) => s.path.endsWith('report.txt'))!.headers['x-ms-encryption-scope']).toBe('workspace-scope');
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
    for (const secret of SECRETS) expect(printed).not.toContain(secret);
  });

  it('refuses a wrong token, a missing profile and an unsupported sign-in with one clear message each (exit 2), printing no secret', async () => {
    const file = join(dir(), 'cfg');
    writeFileSync(file, `[bad]\nhost = ${base}\ntoken = dapi-WRONG-999999\n\n[sso]\nhost = ${base}\nauth_type = databricks-cli\n\n[good]\nhost = ${base}\ntoken = ${TOKEN}\n`);
    const wrong = await cli(['ls', 'databricks://bad'], { DATABRICKS_CONFIG_FILE: file });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/refused the credentials .* profile "bad"/);
    expect(wrong.stderr).toMatch(/set TRACKSHIFT_SRC_DATABRICKS_TOKEN, or fix the profile/);
    expect(wrong.stderr).not.toContain('dapi-WRONG-999999');
    const missing = await cli(['copy', 'databricks://good', 'databricks-uc://prod'], { DATABRICKS_CONFIG_FILE: file });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`profile "prod" is not in ${file}; it has "bad", "sso", "good"`);
    for (const output of [wrong, missing]) expect(output.stdout + output.stderr).not.toContain(TOKEN);
    const sso = await cli(['ls', 'databricks://sso'], { DATABRICKS_CONFIG_FILE: file });
    expect(sso.code).toBe(2);
    expect(sso.stderr).toContain('signs in with auth_type = databricks-cli, which trackshift does not support');
  });

  async function openDestination(location: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<DatabricksStore> {
    return (await databricksConnector.openDestination!(target(location, { ...env, ...extraEnv }, 'dst'))) as DatabricksStore;
  }

  const run = { id: 'dbrun-w', experimentId: '4000000000000001' } as Run;

  it('writes an artifact through each kind of signed URL, and reads it back', async () => {
    const destination = await openDestination('databricks://test', { MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE: '1000', MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE: '400' });
    const small = Buffer.from('hello, storage');
    const large = Buffer.from(Array.from({ length: 1100 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
    const write = async (type: CredentialType, path: string, bytes: Buffer, sizeKnown = true) => {
      workspace.state.writeType = type;
      workspace.seen.length = 0;
      await destination.writeArtifact(run.id, { path, ...(sizeKnown ? { size: bytes.length } : {}) }, Readable.from([bytes]));
      expect(workspace.stored.get(`/storage/${run.id}/${path}`)?.toString()).toBe(bytes.toString());
      expect(workspace.bodies('POST', '/api/2.0/mlflow/artifacts/credentials-for-write')).toEqual([{ run_id: run.id, path: [path] }]);
      return workspace.seen.filter((s) => s.path === `/storage/${run.id}/${path}`);
    };
    try {
      // AWS presigned: one PUT with the credential's headers and a known length
      let puts = await write('AWS_PRESIGNED_URL', 'aws/small.txt', small);
      expect(puts.map((s) => [s.method, s.headers['x-amz-server-side-encryption'], s.headers['content-length']])).toEqual([['PUT', 'AES256', String(small.length)]]);
      // AWS over the threshold: multipart through Databricks' endpoints, parts of the chunk size
      puts = await write('AWS_PRESIGNED_URL', 'aws/large.bin', large);
      expect(puts.map((s) => [s.query.get('partNumber'), s.body.length])).toEqual([['1', 400], ['2', 400], ['3', 300]]);
      expect(workspace.bodies('POST', '/api/2.0/mlflow/artifacts/create-multipart-upload')).toEqual([{ run_id: run.id, path: 'aws/large.bin', num_parts: 3 }]);
      expect(workspace.bodies('POST', '/api/2.0/mlflow/artifacts/complete-multipart-upload')).toEqual([
        { run_id: run.id, path: 'aws/large.bin', upload_id: 'mpu-7f3a', part_etags: [1, 2, 3].map((n) => ({ part_number: n, etag: `"etag-${n}"` })) },
      ]);
      // Azure SAS: Put Blob with x-ms-blob-type; large (or of unknown size) as blocks and a block list
      puts = await write('AZURE_SAS_URI', 'azure/small.txt', small);
      expect(puts.map((s) => [s.method, s.headers['x-ms-blob-type'], s.headers['x-ms-encryption-scope']])).toEqual([['PUT', 'BlockBlob', 'workspace-scope']]);
      puts = await write('AZURE_SAS_URI', 'azure/large.bin', large);
      expect(puts.map((s) => s.query.get('comp'))).toEqual(['block', 'block', 'block', 'blocklist']);
      expect(puts.every((s) => s.query.get('sig') === 'SECRET-SAS+x=' && s.query.get('sv') === '2023-01-03')).toBe(true);
      puts = await write('AZURE_SAS_URI', 'azure/unknown.txt', small, false);
      expect(puts.map((s) => s.query.get('comp'))).toEqual(['block', 'blocklist']);
      // Azure Data Lake: create, append, flush (appends in pieces when large)
      puts = await write('AZURE_ADLS_GEN2_SAS_URI', 'adls/small.txt', small);
      expect(puts.map((s) => s.query.get('resource') ?? `${s.query.get('action')}@${s.query.get('position')}`)).toEqual(['file', 'append@0', `flush@${small.length}`]);
      puts = await write('AZURE_ADLS_GEN2_SAS_URI', 'adls/large.bin', large);
      expect(puts.map((s) => s.query.get('resource') ?? `${s.query.get('action')}@${s.query.get('position')}`)).toEqual(['file', 'append@0', 'append@400', 'append@800', 'flush@1100']);
      // GCS signed URL: one PUT
      puts = await write('GCP_SIGNED_URL', 'gcs/small.txt', small);
      expect(puts.map((s) => s.method)).toEqual(['PUT']);
      // none of it carried the workspace token
      expect(workspace.seen.filter((s) => s.path.startsWith('/storage/')).every((s) => s.auth === undefined)).toBe(true);

      // read back through credentials-for-read (an AWS presigned URL for .bin files)
      const back: Buffer[] = [];
      for await (const c of await destination.readArtifact(run, 'aws/large.bin')) back.push(c as Buffer);
      expect(Buffer.concat(back).toString()).toBe(large.toString());
    } finally {
      await destination.close();
    }
  });

  it('names an expired or refused signed URL without its signature or credentials', async () => {
    const destination = await openDestination('databricks://test');
    workspace.state.storageFails = 403;
    try {
      const error = await destination.readArtifact({ ...run, id: 'dbrun-x' }, 'model.json').then(
        () => undefined,
        (err: Error) => err,
      );
      expect(error?.message).toMatch(new RegExp(`^GET ${base}/storage/dbrun-x/model.json failed with 403 \\(the signed URL may have expired\\)`));
      for (const secret of SECRETS) expect(error?.message).not.toContain(secret);
    } finally {
      workspace.state.storageFails = 0;
      await destination.close();
    }
  });

  const SIGNED_MLMODEL = 'artifact_path: model\nrun_id: src-run\nsignature:\n  inputs: \'[{"type": "double"}]\'\n  outputs: \'[{"type": "long"}]\'\nflavors: {}\n';

  /** Copies a run and a registered model from memory into a Unity Catalog destination. */
  async function copyIntoUnityCatalog(destination: Destination, mlmodel = SIGNED_MLMODEL): Promise<TransferResult> {
    const source = newStore();
    source.data.experiments.set('1', { id: '1', name: 'fraud', tags: {}, lifecycle: 'active' });
    source.data.runs.set('src-run', memoryRun({
      run: { id: 'src-run', experimentId: '1', name: 'train', status: 'FINISHED', startTime: 5, endTime: 6, lifecycle: 'active', params: { depth: '3' }, tags: {}, inputs: [], series: [] },
      metrics: new Map(),
      artifacts: new Map([['model/MLmodel', Buffer.from(mlmodel)], ['model/model.pkl', Buffer.from('weights')], ['notes.txt', Buffer.from('n')]]),
    }));
    source.registry.add({ name: 'fraud', tags: {}, aliases: {} }, [
      { modelName: 'fraud', version: '1', source: 'runs:/src-run/model', location: { type: 'run', runId: 'src-run', path: 'model' }, runId: 'src-run', status: 'READY', stage: 'Production', tags: {}, creationTime: 1700000000000 },
    ]);
    try {
      const plan = await planTransfer(source, { ...emptySelection(), models: ['fraud'], dstModel: 'main.risk.fraud' });
      return await transfer(source, destination, plan, { workers: 1, artifactWorkers: 1, dryRun: false, journal: new Journal(dir()) });
    } finally {
      await destination.close?.();
    }
  }

  function expectCopied(result: TransferResult) {
    expect(result.failed).toEqual([]);
    expect(result.copied).toMatchObject({ runs: 1, versions: 1 });
    expect(result.warnings.map((w) => w.message)).toContainEqual(expect.stringMatching(/has no stages; stages became aliases: Production → alias "production"/));
    for (const secret of SECRETS) expect(JSON.stringify(result)).not.toContain(secret);
  }

  const ucCalls = () => workspace.seen.filter((s) => s.path.startsWith('/api/2.0/mlflow/unity-catalog/') || s.path === '/api/2.0/fs/create-upload-url').map((s) => `${s.method} ${s.path.replace('/api/2.0/mlflow/unity-catalog/', 'uc/')}`);

  it('writes a model into Unity Catalog default storage: create (pending), credentials, upload, finalize, aliases for stages', async () => {
    expectCopied(await copyIntoUnityCatalog(await openDestination('databricks-uc://test')));
    const calls = ucCalls();
    const order = ['POST uc/registered-models/create', 'POST uc/model-versions/create', 'POST uc/model-versions/generate-temporary-credentials', 'POST /api/2.0/fs/create-upload-url', 'POST uc/model-versions/finalize', 'POST uc/registered-models/alias'];
    const at = order.map((call) => calls.indexOf(call));
    expect(at.every((i) => i >= 0), calls.join('\n')).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(calls).not.toContain('POST uc/model-versions/transition-stage');
    expect(workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/registered-models/create')[0].name).toBe('main.risk.fraud');
    const created = workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/model-versions/create')[0];
    expect(created).toMatchObject({ name: 'main.risk.fraud', run_id: 'dbrun1', source: 'dbfs:/x/dbrun1/artifacts/model' });
    expect(created.tags).toContainEqual({ key: 'trackshift.source.id', value: 'fraud/1' });
    expect(workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/model-versions/generate-temporary-credentials')).toEqual([{ name: 'main.risk.fraud', version: '1', operation: 'MODEL_VERSION_OPERATION_READ_WRITE' }]);
    expect(workspace.bodies('POST', '/api/2.0/fs/create-upload-url').map((b) => b.path).sort()).toEqual(['/Models/main/risk/fraud/1/MLmodel', '/Models/main/risk/fraud/1/model.pkl']);
    expect(workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/model-versions/finalize')).toEqual([{ name: 'main.risk.fraud', version: '1' }]);
    expect(workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/registered-models/alias')).toEqual([{ name: 'main.risk.fraud', alias: 'production', version: '1' }]);
    // the version's own files, with the MLmodel naming the copied run
    expect(workspace.stored.get('/storage/Models/main/risk/fraud/1/MLmodel')!.toString()).toBe(SIGNED_MLMODEL.replace('run_id: src-run', 'run_id: dbrun1'));
    expect(workspace.stored.get('/storage/Models/main/risk/fraud/1/model.pkl')!.toString()).toBe('weights');
    expect(workspace.stored.has('/storage/Models/main/risk/fraud/1/notes.txt')).toBe(false);
    // the run's artifacts went to the run's signed URLs
    expect(workspace.stored.get('/storage/dbrun1/notes.txt')!.toString()).toBe('n');
    expect(workspace.seen.filter((s) => s.path.startsWith('/storage/')).every((s) => s.auth === undefined)).toBe(true);
  });

  it('does not upload again into a version an earlier attempt finalized', async () => {
    expectCopied(await copyIntoUnityCatalog(await openDestination('databricks-uc://test')));
    // the attempt stopped after finalize, before the version was marked complete
    const version = workspace.state.versions.get('main.risk.fraud')![0]!;
    version.tags = version.tags.filter((t: { key: string }) => t.key !== 'trackshift.complete');
    workspace.seen.length = 0;
    const again = await copyIntoUnityCatalog(await openDestination('databricks-uc://test'));
    expect(again.failed).toEqual([]);
    expect(ucCalls()).not.toContain('POST uc/model-versions/create');
    expect(ucCalls()).not.toContain('POST uc/model-versions/generate-temporary-credentials');
    expect(ucCalls()).not.toContain('POST uc/model-versions/finalize');
    expect(workspace.bodies('POST', '/api/2.0/mlflow/unity-catalog/model-versions/set-tag')).toContainEqual({ name: 'main.risk.fraud', version: '1', key: 'trackshift.complete', value: 'true' });
  });

  it('uploads a version stored on S3 with the temporary AWS credentials, signed (SigV4), with the encryption asked for', async () => {
    workspace.state.ucStorage = 'S3';
    expectCopied(await copyIntoUnityCatalog(await openDestination('databricks-uc://test', { AWS_ENDPOINT_URL_S3: base, AWS_REGION: 'eu-west-1' })));
    const put = workspace.seen.filter((s) => s.method === 'PUT' && s.path === '/uc-bucket/models/abc/MLmodel').pop()!;
    expect(put.body.toString()).toMatch(/^artifact_path: model\nrun_id: dbrun\d+\nsignature:/);
    expect(put.auth).toMatch(/^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEKEY\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=[^,]*x-amz-security-token/);
    expect(put.auth).toMatch(/SignedHeaders=[^,]*x-amz-server-side-encryption;x-amz-server-side-encryption-aws-kms-key-id/);
    expect(put.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(put.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('arn:aws:kms:eu-west-1:123456789012:key/uc-key');
    expect(workspace.stored.get('/uc-bucket/models/abc/model.pkl')!.toString()).toBe('weights');
  });

  async function ucWithLocalStorage(): Promise<Destination> {
    const api = new MlflowApi({ location: base, side: 'dst', env: {} }, { token: TOKEN, credentialsHint: '' });
    const signed = new LocalStorage(base);
    return new DatabricksStore(api, true, new UcRegistry(api, {}, signed), signed);
  }

  it('uploads a version stored on Azure Data Lake with the temporary SAS (create, append, flush)', async () => {
    workspace.state.ucStorage = 'AZURE';
    expectCopied(await copyIntoUnityCatalog(await ucWithLocalStorage()));
    const calls = workspace.seen.filter((s) => s.path === '/storage/uc/abc/MLmodel');
    expect(calls.map((s) => `${s.method} ${s.query.get('resource') ?? s.query.get('action')}`)).toEqual(['PUT file', 'PATCH append', 'PATCH flush']);
    expect(calls.every((s) => s.query.get('sig') === 'SECRET-UDSAS' && s.auth === undefined)).toBe(true);
    expect(workspace.stored.get('/storage/uc/abc/MLmodel')!.toString()).toMatch(/run_id: dbrun\d+/);
    expect(workspace.stored.get('/storage/uc/abc/model.pkl')!.toString()).toBe('weights');
  });

  it('uploads a version stored on GCS with the temporary OAuth token (XML API PUT)', async () => {
    workspace.state.ucStorage = 'GCS';
    expectCopied(await copyIntoUnityCatalog(await ucWithLocalStorage()));
    const put = workspace.seen.filter((s) => s.path === '/storage/uc/abc/model.pkl');
    expect(put.map((s) => [s.method, s.auth])).toEqual([['PUT', 'Bearer ya29.SECRET-GCP-TOKEN']]);
    expect(workspace.stored.get('/storage/uc/abc/model.pkl')!.toString()).toBe('weights');
  });

  it('refuses a model without a full signature, and leaves no pending version behind', async () => {
    const result = await copyIntoUnityCatalog(await openDestination('databricks-uc://test'), "artifact_path: model\nrun_id: src-run\nsignature:\n  inputs: '[]'\nflavors: {}\n");
    expect(result.failed).toEqual([
      expect.objectContaining({ type: 'version', sourceId: 'fraud/1', reason: expect.stringMatching(/^version 1 of main.risk.fraud: Unity Catalog registers only models whose signature has inputs and outputs, and its MLmodel signature has inputs only, no outputs/) }),
    ]);
    expect(ucCalls()).toContain('DELETE uc/model-versions/delete');
    expect(ucCalls()).not.toContain('POST uc/model-versions/finalize');
    expect(workspace.state.versions.get('main.risk.fraud')).toEqual([]);
  });

  it('keeps the token out of a failure that echoes it', async () => {
    workspace.state.finalizeFails = true;
    const result = await copyIntoUnityCatalog(await openDestination('databricks-uc://test'));
    expect(result.failed).toEqual([expect.objectContaining({ type: 'version', reason: expect.stringContaining('failed with 400 INVALID_STATE: cannot finalize (request had authorization: Bearer ***)') })]);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('refuses a model name that is not catalog.schema.model before writing anything (exit 2)', async () => {
    const sample = new URL('../../sample/mlruns', import.meta.url).pathname;
    const result = await cli(['copy', sample, 'databricks-uc://test', '--state-dir', dir()], env);
    expect(result.code, result.stdout).toBe(2);
    expect(result.stderr).toMatch(/"ticket-encoder" is not a Unity Catalog model name: it needs three levels, catalog.schema.model; choose one with --dst-model/);
    const writes = workspace.seen.filter((s) => s.method !== 'GET' && !s.path.endsWith('/experiments/search'));
    expect(writes).toEqual([]);
    for (const secret of SECRETS) expect(result.stderr + result.stdout).not.toContain(secret);
  });
});
