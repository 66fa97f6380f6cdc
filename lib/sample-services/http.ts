/**
 * Helpers the sample services share: JSON log lines, JSON replies, request bodies with a size limit, entity ids,
 * bounded stores, and an HTTP server with routing, request logs and graceful shutdown.
 */
import * as http from 'node:http';
import type * as net from 'node:net';
import { performance } from 'node:perf_hooks';
import { TextDecoder } from 'node:util';

/** The largest request body (and log-service line) the services accept, in bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The entity ids the services accept: a letter or digit first, so an id is never "." or ".." in a path. */
export const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** How many entities a service remembers before it forgets the oldest. */
export const MAX_ENTITIES = 10_000;

// Past the limit a body is still read (and dropped) up to here, so the client, which is still sending, reads
// the 413 instead of a connection reset. Beyond it the connection is closed.
const DRAIN_LIMIT_BYTES = 1024 * 1024;
const MAX_LOGGED_PATH = 512;

/** One structured log line: an object, written as one line of JSON. */
export type LogRecord = Record<string, unknown>;

/** Where a service writes its log lines. */
export type Logger = (record: LogRecord) => void;

/** Writes each record as one line of JSON on stdout (what the container log driver collects). */
export const stdoutLogger: Logger = (record) => {
  process.stdout.write(`${JSON.stringify(record)}\n`);
};

/** A running service's socket server and how to stop it gracefully. */
export interface Service {
  readonly server: net.Server;
  /** Stops accepting, lets work in progress finish for at most `timeoutMs`, then closes what is left. */
  shutdown(timeoutMs: number): Promise<void>;
}

/** A failure answered as `{"error": message}` with this status. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** What a route handler answers: a status and a body sent as JSON. */
export interface Reply {
  readonly status: number;
  readonly body: unknown;
}

/** Answers one request; `params` are the route pattern's capture groups. */
export type Handler = (req: http.IncomingMessage, params: readonly string[]) => Reply | Promise<Reply>;

/** A path pattern and the handler for each method it allows. */
export interface Route {
  readonly path: RegExp;
  readonly methods: Readonly<Record<string, Handler>>;
}

/** `GET /healthz`, answered while the process serves. */
export const HEALTH_ROUTE: Route = { path: /^\/healthz$/, methods: { GET: () => ({ status: 200, body: { status: 'ok' } }) } };

/** Checks an entity id; `what` names it in the error. */
export function entityId(value: unknown, what = 'entity_id'): string {
  if (typeof value !== 'string' || !ENTITY_ID.test(value)) {
    throw new HttpError(400, `${what} must be 1 to 128 of A-Z a-z 0-9 _ . -, starting with a letter or digit`);
  }
  return value;
}

/** Decodes and checks an entity id taken from a path segment. */
export function entityIdFromPath(segment: string): string {
  try {
    return entityId(decodeURIComponent(segment), 'the entity id in the path');
  } catch (error) {
    if (error instanceof URIError) {
      throw new HttpError(400, 'the entity id in the path is not valid percent-encoding');
    }
    throw error;
  }
}

/** True for a JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a JSON request body of at most MAX_BODY_BYTES: 413 when larger, 400 when not UTF-8 JSON. */
export function readJson(req: http.IncomingMessage): Promise<unknown> {
  if (Number(req.headers['content-length'] ?? 0) > DRAIN_LIMIT_BYTES) {
    return Promise.reject(tooLarge(true));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) {
        chunks.push(chunk);
      } else if (size > DRAIN_LIMIT_BYTES) {
        reject(tooLarge(true));
      }
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        reject(tooLarge(false));
        return;
      }
      try {
        resolve(JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks))));
      } catch {
        reject(new HttpError(400, 'the request body must be JSON (UTF-8)'));
      }
    });
  });
}

function tooLarge(close: boolean): HttpError {
  return new HttpError(413, `the request body must be at most ${MAX_BODY_BYTES} bytes`, close ? { connection: 'close' } : {});
}

/** Stores `value` as the newest entry of `map`, forgetting the oldest entries beyond `max`. */
export function remember<K, V>(map: Map<K, V>, key: K, value: V, max = MAX_ENTITIES): void {
  // A Map iterates in insertion order: re-inserting makes an updated entry the newest.
  map.delete(key);
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= max) {
      break;
    }
    map.delete(oldest);
  }
}

/**
 * An HTTP server that routes requests, answers JSON (errors as `{"error"}`), and logs one line per request with
 * method, path, status and duration (never bodies).
 */
export function createJsonServer(service: string, routes: readonly Route[], log: Logger): Service {
  let closing = false;
  const server = http.createServer({
    // Node's default of 5 s makes the sidecar proxy, which pools connections to the app, often reuse one this
    // side is closing at that moment.
    keepAliveTimeout: 65_000,
    headersTimeout: 10_000,
    requestTimeout: 30_000,
  }, (req, res) => {
    const started = performance.now();
    const path = (req.url ?? '/').split('?')[0].slice(0, MAX_LOGGED_PATH);
    res.on('close', () => {
      log({
        service, event: 'request', method: req.method, path, status: res.headersSent ? res.statusCode : null,
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
        ...(res.writableFinished ? {} : { aborted: true }),
      });
    });
    const send = (reply: Reply, headers: Readonly<Record<string, string>> = {}): void => {
      if (res.headersSent || res.destroyed) {
        return;
      }
      const body = JSON.stringify(reply.body);
      res.writeHead(reply.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...headers,
        // While shutting down, no connection stays open for a next request.
        ...(closing ? { connection: 'close' } : {}),
      });
      res.end(body);
    };
    dispatch(routes, req, path).then((reply) => send(reply), (error: unknown) => {
      if (error instanceof HttpError) {
        send({ status: error.status, body: { error: error.message } }, error.headers);
        return;
      }
      log({ service, level: 'error', event: 'internal_error', message: error instanceof Error ? error.message : String(error) });
      send({ status: 500, body: { error: 'internal error' } });
    });
  });
  return {
    server,
    shutdown: (timeoutMs) => new Promise((resolve) => {
      closing = true;
      const timer = setTimeout(() => server.closeAllConnections(), timeoutMs);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      server.closeIdleConnections();
    }),
  };
}

async function dispatch(routes: readonly Route[], req: http.IncomingMessage, path: string): Promise<Reply> {
  for (const route of routes) {
    const match = route.path.exec(path);
    if (match === null) {
      continue;
    }
    const method = req.method ?? '';
    if (!Object.hasOwn(route.methods, method)) {
      throw new HttpError(405, `method ${method} is not allowed here`, { allow: Object.keys(route.methods).join(', ') });
    }
    return route.methods[method](req, match.slice(1));
  }
  throw new HttpError(404, 'no such resource');
}
