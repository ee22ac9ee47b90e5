/**
 * The Neptune 2.x API as the neptune 1.14 client calls it (docs/neptune-server-api.md §2): the
 * API token names the server (neptune-common/token.ts); the client config
 * names the API's root; the token is exchanged for a short-lived access token, exchanged again
 * before it runs out. Every answer is checked at the boundary.
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { UsageError } from '../../util/errors.js';
import { HttpClient, HttpError, type CallOptions } from '../../util/http.js';
import type { RetryContext, Side } from '../../util/retry.js';
import { expiryOf, serverOfToken } from '../neptune-common/token.js';

/** renewed this long before it expires (the client's margin too) */
const RENEW_BEFORE_MS = 30_000;

const clientConfig = z.looseObject({ apiUrl: z.string(), applicationUrl: z.string().nullish() });
const oauthToken = z.looseObject({ accessToken: z.string(), refreshToken: z.string().optional() });
const projectInfo = z.looseObject({ id: z.string(), name: z.string(), organizationName: z.string(), projectKey: z.string().optional() });
const workspaces = z.array(z.looseObject({ id: z.string(), name: z.string() }));
export type ProjectInfo = z.infer<typeof projectInfo>;

export interface NeptuneApiOptions {
  token: string;
  /** where the token came from, for messages (a variable name, never the token) */
  origin: string;
  retry?: RetryContext;
  side: Side;
}

export class NeptuneApi {
  private readonly bootstrap: HttpClient;
  private api?: HttpClient;
  private apiUrl?: string;
  /** the web app's root (the config's applicationUrl), once the config is read */
  appUrl?: string;
  private access?: Promise<{ token: string; expires: number }>;

  constructor(private readonly options: NeptuneApiOptions) {
    const server = serverOfToken(options.token, options.origin);
    const hint = `check ${options.origin}`;
    this.bootstrap = new HttpClient({ baseUrl: server, headers: { 'X-Neptune-Api-Token': options.token }, retry: options.retry, side: options.side, credentialsHint: hint });
  }

  /** the server's address, safe to print */
  get displayUrl(): string {
    return this.bootstrap.displayUrl;
  }

  private async accessToken(): Promise<string> {
    const current = await this.access;
    if (current && current.expires - Date.now() > RENEW_BEFORE_MS) return current.token;
    this.access = (async () => {
      const answer = await this.bootstrap.json('GET', 'api/backend/v1/authorization/oauth-token', oauthToken);
      return { token: answer.accessToken, expires: expiryOf(answer.accessToken) ?? Date.now() + 5 * 60_000 };
    })();
    this.access.catch(() => (this.access = undefined));
    return (await this.access).token;
  }

  private async client(): Promise<HttpClient> {
    if (!this.api) {
      const config = await this.bootstrap.json('GET', 'api/backend/v1/clients/config', clientConfig, { query: { alpha: 'true' } });
      this.apiUrl = config.apiUrl;
      this.appUrl = (config.applicationUrl ?? config.apiUrl).replace(/\/+$/, '');
      this.api ??= new HttpClient({ baseUrl: config.apiUrl, bearer: () => this.accessToken(), retry: this.options.retry, side: this.options.side, credentialsHint: `check ${this.options.origin}` });
    }
    return this.api;
  }

  async json<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, options: CallOptions = {}): Promise<z.infer<S>> {
    return (await this.client()).json(method, path, schema, options);
  }

  /** undefined on a 404 */
  async jsonOrMissing<S extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: S, options: CallOptions = {}): Promise<z.infer<S> | undefined> {
    try {
      return await this.json(method, path, schema, options);
    } catch (err) {
      if (err instanceof HttpError && err.status === 404) return undefined;
      throw err;
    }
  }

  async download(path: string, query?: CallOptions['query']): Promise<Readable> {
    return (await this.client()).download(path, query);
  }

  /** A download at an absolute URL the server gave: only on the API's own origin (the bearer goes with it). */
  async downloadUrl(url: string): Promise<Readable> {
    const client = await this.client();
    const target = new URL(url);
    if (target.origin !== new URL(this.apiUrl!).origin) throw new UsageError(`the Neptune server at ${this.displayUrl} gave a download on another host (${target.host}); trackshift sends its token only to the server itself`);
    return client.download(target.pathname + target.search);
  }

  /** A project by `WORKSPACE/NAME`; `hint` says what to do when it is not there (or not visible to the token). */
  async project(name: string, hint: string): Promise<ProjectInfo> {
    const found = await this.findProject(name);
    if (!found) throw new UsageError(`neptune://${name}: the Neptune server at ${this.displayUrl} has no project ${name} (${hint})`);
    return found;
  }

  /** A project by `WORKSPACE/NAME`, or undefined when the server has none the token sees. */
  findProject(name: string): Promise<ProjectInfo | undefined> {
    return this.jsonOrMissing('GET', 'api/backend/v1/projects/get', projectInfo, { query: { projectIdentifier: name } });
  }

  /**
   * Creates the project `WORKSPACE/NAME` as `neptune.management.create_project` does: the
   * workspace's id among those the token sees, then createProject, private, the key left to the
   * server. Not retried blindly (it creates): a lost answer is found by the caller's next lookup.
   */
  async createProject(name: string): Promise<ProjectInfo> {
    const [workspace = '', project = ''] = name.split('/');
    const seen = await this.json('GET', 'api/backend/v1/myOrganizations', workspaces);
    const id = seen.find((w) => w.name === workspace)?.id;
    if (!id) {
      const names = seen.map((w) => w.name).join(', ') || 'none';
      throw new UsageError(`neptune://${name}: the token sees no workspace "${workspace}" on ${this.displayUrl} (it sees: ${names}); create the workspace first or check the token`);
    }
    const body = { name: project, description: null, projectKey: null, organizationId: id, visibility: 'priv' };
    return this.json('POST', 'api/backend/v1/projects', projectInfo, { body, retry: false });
  }

  /** where the web app shows a run (`sys/id` in a project), as the client prints it */
  runUrl(project: string, shortId: string): string | undefined {
    return this.appUrl && `${this.appUrl}/${project}/e/${shortId}`;
  }

  async close(): Promise<void> {
    await Promise.all([this.bootstrap.close(), this.api?.close()]);
  }
}
