/**
 * undici, loaded on the first HTTP call: it is a fifth of the process's memory at start, and a
 * copy between local stores (mlruns → SQLite) never calls a server.
 */
import type { Agent, Dispatcher } from 'undici';

type Undici = typeof import('undici');
type RequestOptions = Omit<NonNullable<Parameters<Undici['request']>[1]>, 'dispatcher'>;

let loading: Promise<Undici> | undefined;

export const loadUndici = (): Promise<Undici> => (loading ??= import('undici'));

/** A connection pool made on its first request; closing one that never sent anything loads nothing. */
export class LazyAgent {
  private agent?: Agent;

  constructor(private readonly options: Agent.Options) {}

  async request(url: string | URL, options: RequestOptions): Promise<Dispatcher.ResponseData> {
    const { Agent, request } = await loadUndici();
    this.agent ??= new Agent(this.options);
    return (await request(url, { ...options, dispatcher: this.agent })) as Dispatcher.ResponseData;
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }
}
