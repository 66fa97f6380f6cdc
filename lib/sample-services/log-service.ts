/**
 * The sample log service: a one-way TCP stream of newline-delimited JSON objects; each record becomes one JSON log
 * line on stdout. Nothing is ever written back, so a client cannot learn anything from it.
 */
import * as net from 'node:net';
import { TextDecoder } from 'node:util';
import { isObject, type Logger, MAX_BODY_BYTES, type Service } from './http';

/** The longest line accepted, in bytes before its newline; a longer one closes the connection. */
export const MAX_LINE_BYTES = MAX_BODY_BYTES;

/** At most this many connections at once; further ones are closed at once. */
export const MAX_CONNECTIONS = 256;

/** A connection with no data for this long is closed. */
export const IDLE_TIMEOUT_MS = 60_000;

const SERVICE = 'log-service';
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Options of the log service. */
export interface LogServiceOptions {
  /**
   * Closes a connection idle for this long.
   * @default IDLE_TIMEOUT_MS
   */
  readonly idleTimeoutMs?: number;
}

/** Defines the log service's TCP server. */
export function createLogService(log: Logger, options: LogServiceOptions = {}): Service {
  const sockets = new Set<net.Socket>();
  let closing = false;
  const server = net.createServer((socket) => {
    const remote = formatRemote(socket);
    if (closing || sockets.size >= MAX_CONNECTIONS) {
      log({ service: SERVICE, level: 'warn', event: 'connection_rejected', remote, reason: closing ? 'shutting down' : 'too many connections' });
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serve(socket, remote, log, options.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
  });
  return {
    server,
    shutdown: (timeoutMs) => new Promise((resolve) => {
      closing = true;
      const timer = setTimeout(() => sockets.forEach((socket) => socket.destroy()), timeoutMs);
      server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      // A FIN asks each client to stop; what it still sends before it closes is logged.
      sockets.forEach((socket) => socket.end());
    }),
  };
}

function serve(socket: net.Socket, remote: string, log: Logger, idleTimeoutMs: number): void {
  const started = Date.now();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let records = 0;
  let invalid = 0;
  let reason = 'client closed';

  const warn = (event: string, fields: Record<string, unknown>): void => {
    log({ service: SERVICE, level: 'warn', event, remote, ...fields });
  };

  const line = (bytes: Buffer): void => {
    const end = bytes.length > 0 && bytes[bytes.length - 1] === CARRIAGE_RETURN ? bytes.length - 1 : bytes.length;
    if (end === 0) {
      return;
    }
    let record: unknown;
    try {
      record = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end)));
    } catch {
      invalid += 1;
      warn('invalid_record', { reason: 'not UTF-8 JSON', bytes: end });
      return;
    }
    if (!isObject(record)) {
      invalid += 1;
      warn('invalid_record', { reason: 'not a JSON object', bytes: end });
      return;
    }
    records += 1;
    log({ service: SERVICE, remote, record });
  };

  const tooLong = (): void => {
    reason = 'line too long';
    warn('line_too_long', { max_bytes: MAX_LINE_BYTES });
    socket.destroy();
  };

  socket.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let newline = chunk.indexOf(NEWLINE); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, newline);
      if (pendingBytes + piece.length > MAX_LINE_BYTES) {
        tooLong();
        return;
      }
      line(pendingBytes === 0 ? piece : Buffer.concat([...pending, piece]));
      pending = [];
      pendingBytes = 0;
      start = newline + 1;
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > MAX_LINE_BYTES) {
        tooLong();
        return;
      }
      pending.push(chunk.subarray(start));
    }
  });
  // The last record may lack its newline.
  socket.on('end', () => line(Buffer.concat(pending)));
  socket.setTimeout(idleTimeoutMs);
  socket.on('timeout', () => {
    reason = 'idle';
    socket.destroy();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    reason = error.code ?? error.message;
  });
  socket.on('close', () => {
    log({ service: SERVICE, event: 'connection_closed', remote, reason, records, invalid, duration_ms: Date.now() - started });
  });
}

function formatRemote(socket: net.Socket): string {
  const address = socket.remoteAddress ?? 'unknown';
  return `${address.includes(':') ? `[${address}]` : address}:${socket.remotePort ?? 0}`;
}
