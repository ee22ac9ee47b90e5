/**
 * A fault-injecting HTTP proxy for tests: on a free loopback port, in front of a real server
 * (an MLflow tracking server), it forwards requests and, chosen by a seeded random generator at
 * the rates given, answers some of them itself instead:
 *
 * - `503`: Service Unavailable, as an overloaded server or a load balancer says it
 * - `429`: Too Many Requests with `Retry-After` (1 s by default)
 * - `reset`: the connection destroyed before anything is answered
 * - `lost`: the request forwarded and acted on by the server, then answered 503 (the answer
 *   lost after the server acted: a create call that must not be repeated blindly)
 *
 * and `down(ms)` stops it listening for a while (connections refused, open ones reset): a
 * server restart. It counts what it injected. Bounded in time: after `maxMs` (default five
 * minutes) it only forwards, and `close()` ends it.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { seeded } from '../helpers/seeded.js';

export type FaultKind = '503' | '429' | 'reset' | 'lost';
export type FaultRates = Partial<Record<FaultKind, number>>;

export interface FaultProxyOptions {
  /** the real server, e.g. http://127.0.0.1:5001 */
  target: string;
  rates: FaultRates;
  seed: number;
  retryAfterSeconds?: number;
  /** only requests whose method and path (`POST /api/2.0/mlflow/runs/create`) match get faults */
  only?: RegExp;
  /** after this long the proxy only forwards (a test never waits on it forever) */
  maxMs?: number;
}

export interface FaultProxy {
  url: string;
  /** faults injected so far, by kind (`down` counts connections refused or reset while down) */
  readonly injected: Record<FaultKind | 'down', number>;
  /** requests forwarded to the server */
  readonly forwarded: number;
  setRates(rates: FaultRates, only?: RegExp): void;
  /** refuse every connection for `ms` (the listener closed, open connections reset), then listen again */
  down(ms: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = seeded(options.seed);
  const started = Date.now();
  const maxMs = options.maxMs ?? 300_000;
  let rates = options.rates;
  let only = options.only;
  const injected: FaultProxy['injected'] = { '503': 0, '429': 0, reset: 0, lost: 0, down: 0 };
  let forwarded = 0;
  let isDown = false;
  let closed = false;
  const sockets = new Set<Socket>();

  const pick = (req: IncomingMessage): FaultKind | undefined => {
    if (Date.now() - started > maxMs) return undefined;
    if (only && !only.test(`${req.method} ${req.url}`)) return undefined;
    let roll = random();
    for (const kind of ['503', '429', 'reset', 'lost'] as const) {
      const rate = rates[kind] ?? 0;
      if (roll < rate) return kind;
      roll -= rate;
    }
    return undefined;
  };

  /** forwards the request; `answer` gets the server's response */
  const forward = (req: IncomingMessage, answer: (res: IncomingMessage) => void, fail: (err: Error) => void) => {
    forwarded++;
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      answer,
    );
    upstream.on('error', fail);
    req.pipe(upstream);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (isDown) {
      injected.down++;
      req.socket.destroy();
      return;
    }
    const fault = pick(req);
    if (fault === 'reset') {
      injected.reset++;
      req.socket.destroy();
      return;
    }
    if (fault === '503' || fault === '429') {
      injected[fault]++;
      req.resume(); // read the body away, then answer
      req.on('end', () => {
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (fault === '429') headers['retry-after'] = String(options.retryAfterSeconds ?? 1);
        res.writeHead(Number(fault), headers);
        res.end(fault === '429' ? 'Too Many Requests' : 'Service Unavailable');
      });
      return;
    }
    const failed = () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('Bad Gateway');
    };
    forward(
      req,
      (upstream) => {
        if (fault === 'lost') {
          // the server did what was asked; the client never hears of it
          injected.lost++;
          upstream.resume();
          upstream.on('end', () => {
            res.writeHead(503, { 'content-type': 'text/plain' });
            res.end('Service Unavailable');
          });
          return;
        }
        res.writeHead(upstream.statusCode ?? 502, upstream.headers);
        upstream.pipe(res);
      },
      failed,
    );
  };

  const server: Server = createServer(handle);
  server.on('connection', (socket) => {
    if (isDown) {
      injected.down++;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    injected,
    get forwarded() {
      return forwarded;
    },
    setRates(next, nextOnly) {
      rates = next;
      only = nextOnly;
    },
    async down(ms) {
      isDown = true;
      // not listening: new connections are refused, as by a stopped server
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      setTimeout(() => {
        isDown = false;
        if (!closed) server.listen(port, '127.0.0.1');
      }, ms).unref();
    },
    async close() {
      closed = true;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
    },
  };
}
