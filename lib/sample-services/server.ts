/**
 * The sample backends of the default environment, one per process:
 * `node server.js feature-store|log-service|result-writer` serves one, and
 * `node server.js healthcheck <service>` checks the one running on this host (the ECS container health check).
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { createFeatureStore } from './feature-store';
import { type Logger, type Service, stdoutLogger } from './http';
import { createLogService } from './log-service';
import { createResultWriter } from './result-writer';

/** The ports the services listen on unless `PORT` says otherwise (those of the mesh's default config). */
export const DEFAULT_PORTS = {
  'feature-store': 8080,
  'log-service': 24224,
  'result-writer': 8081,
} as const;

/** The name of a sample service. */
export type ServiceName = keyof typeof DEFAULT_PORTS;

/** Graceful shutdown waits at most this long for work in progress. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

// Leaves the health check's 3 s budget room for starting Node.
const HEALTHCHECK_TIMEOUT_MS = 2_000;
const USAGE = 'usage: server.js <feature-store|log-service|result-writer> | server.js healthcheck <feature-store|log-service|result-writer>';

/** How to start a service in-process. */
export interface StartOptions {
  /**
   * The port; 0 picks a free one (see `RunningService.port`).
   * @default - the service's entry in DEFAULT_PORTS
   */
  readonly port?: number;
  /**
   * The address to listen on. In the mesh only the sidecar proxy, in the same network namespace, may reach the app.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Where log lines go.
   * @default - one JSON object per line on stdout
   */
  readonly log?: Logger;
  /**
   * How long `close()` waits for work in progress before it closes the remaining connections.
   * @default SHUTDOWN_TIMEOUT_MS
   */
  readonly shutdownTimeoutMs?: number;
  /**
   * log-service only: closes connections idle for this long.
   * @default 60000
   */
  readonly idleTimeoutMs?: number;
}

/** A service listening in this process. */
export interface RunningService {
  readonly service: ServiceName;
  /** The address it listens on. */
  readonly host: string;
  /** The port it listens on (the one picked when started with port 0). */
  readonly port: number;
  /** Stops accepting, lets work in progress finish (up to the shutdown timeout), then resolves. */
  close(): Promise<void>;
}

/** True for the name of a sample service. */
export function isServiceName(name: unknown): name is ServiceName {
  return typeof name === 'string' && Object.hasOwn(DEFAULT_PORTS, name);
}

/** Starts a service in this process and logs `{"event": "listening", "host", "port"}` once it listens. */
export async function startService(name: ServiceName, options: StartOptions = {}): Promise<RunningService> {
  const log = options.log ?? stdoutLogger;
  const service = createService(name, log, options);
  await listen(service.server, options.port ?? DEFAULT_PORTS[name], options.host ?? '127.0.0.1');
  const address = service.server.address() as net.AddressInfo;
  log({ service: name, event: 'listening', host: address.address, port: address.port });
  return {
    service: name,
    host: address.address,
    port: address.port,
    close: () => service.shutdown(options.shutdownTimeoutMs ?? SHUTDOWN_TIMEOUT_MS),
  };
}

/** Resolves true when the service answers on host:port: `GET /healthz` 200 for HTTP, a TCP connect for log-service. */
export function healthcheck(name: ServiceName, port: number, host = '127.0.0.1', timeoutMs = HEALTHCHECK_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (healthy: boolean): void => {
      clearTimeout(timer);
      connection.destroy();
      resolve(healthy);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    // log-service is L4: accepting a connection is all it can show.
    const connection = name === 'log-service'
      ? net.connect({ host, port }, () => done(true))
      : http.get({ host, port, path: '/healthz', agent: false }, (res) => done(res.statusCode === 200));
    connection.on('error', () => done(false));
  });
}

function createService(name: ServiceName, log: Logger, options: StartOptions): Service {
  switch (name) {
    case 'feature-store':
      return createFeatureStore(log);
    case 'result-writer':
      return createResultWriter(log);
    case 'log-service':
      return createLogService(log, { idleTimeoutMs: options.idleTimeoutMs });
  }
}

function listen(server: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function portFromEnv(name: ServiceName): number {
  const value = process.env.PORT;
  if (value === undefined || value === '') {
    return DEFAULT_PORTS[name];
  }
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) {
    throw new UsageError(`PORT must be an integer from 0 to 65535, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

// A wildcard listen address is reached through loopback.
function localHost(host: string): string {
  return host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
}

class UsageError extends Error {}

async function main(args: readonly string[]): Promise<number | undefined> {
  const [command, target, ...rest] = args;
  const host = process.env.HOST || '127.0.0.1';
  if (command === 'healthcheck' && isServiceName(target) && rest.length === 0) {
    const port = portFromEnv(target);
    const healthy = port !== 0 && await healthcheck(target, port, localHost(host));
    if (!healthy) {
      process.stderr.write(`${target} is not healthy at ${localHost(host)}:${port}\n`);
    }
    return healthy ? 0 : 1;
  }
  if (!isServiceName(command) || target !== undefined) {
    throw new UsageError(USAGE);
  }
  const running = await startService(command, { port: portFromEnv(command), host });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      return;
    }
    stopping = true;
    stdoutLogger({ service: command, event: 'stopping', signal });
    void running.close().then(() => {
      stdoutLogger({ service: command, event: 'stopped' });
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return undefined;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    if (code !== undefined) {
      process.exit(code);
    }
  }, (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    stdoutLogger({ level: 'error', event: 'start_failed', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  });
}
