/**
 * What the black-box tests and the benchmarks of the mesh extension share: the static build of the binary, mesh
 * identities issued by the Consul stand-in's Connect CA and packed into the bundle exactly as the identity registrar
 * writes it (its own fetchRoots / fetchLeaf / bundleOf / serializeBundle), the extension as a child process whose
 * JSON log lines can be waited on, a holding point in front of the SSM stand-in, and plain HTTP requests.
 */
import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as crypto from 'crypto';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import extensionEnv from '../../../constructs/function/extension/internal/config/env.json';
import { EXTENSION_MAIN_PACKAGE } from '../../../constructs/function/private/extension-sources';
import { bundleOf, fetchLeaf, fetchRoots, serializeBundle } from '../../../constructs/intentions/private/registrar-handler';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import type { ConsulApi } from '../../../constructs/intentions/private/consul-api';
import { STAND_IN_ACCESS_KEY_ID } from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { normalizeSerial } from '../../harness/stand-ins/mesh-gateway';
import { until } from '../../harness/stand-ins/until';

/** The extension's Go module. */
export const EXTENSION_DIR = path.resolve(__dirname, '..', '..', '..', 'constructs', 'function', 'extension');
/** The file name Lambda registers the extension under (its name in /opt/extensions/). */
export const EXTENSION_NAME = 'lambda-mesh';
/** The region the stand-ins are in. */
export const REGION = 'us-east-1';

/** Builds the static binary the container image carries (CGO off, stripped, trimmed paths) into a new temp dir. */
export function buildExtension(): string {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-ext-')), EXTENSION_NAME);
  execFileSync('go', ['build', '-trimpath', '-ldflags=-s -w', '-o', out, EXTENSION_MAIN_PACKAGE], {
    cwd: EXTENSION_DIR,
    env: { ...process.env, CGO_ENABLED: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return out;
}

/** A port the OS says is free now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A service's identity: its leaf and the bundle the registrar would store for it. */
export interface MeshIdentity {
  readonly certPem: string;
  readonly privateKeyPem: string;
  readonly rootCertPem: string;
  /** Lowercase hex, as the extension logs it. */
  readonly serial: string;
  readonly uri: string;
  readonly validBefore: Date;
  /** The identity parameter's value. */
  readonly bundle: string;
}

/** Options of {@link MeshCa.start}. */
export interface MeshCaOptions {
  readonly datacenter: string;
  readonly namespace: string;
  /** @default - a new `<uuid>.consul` */
  readonly trustDomain?: string;
}

/** A Connect CA: a Consul stand-in, read through the registrar's own Consul functions. */
export class MeshCa {
  /** Starts a Consul stand-in with its own Connect CA. */
  public static async start(options: MeshCaOptions): Promise<MeshCa> {
    const consul = await ConsulStandIn.start({ datacenter: options.datacenter, ...(options.trustDomain ? { trustDomain: options.trustDomain } : {}) });
    return new MeshCa(consul, options.namespace);
  }

  private readonly api: ConsulApi;

  private constructor(
    public readonly consul: ConsulStandIn,
    private readonly namespace: string,
  ) {
    this.api = consulClient(consul.connection(), { retries: 1 });
  }

  /** The trust domain. */
  public get trustDomain(): string {
    return this.consul.trustDomain;
  }

  /** The SNI the gateway routes `service` on. */
  public sni(service: string): string {
    return `${service}.${this.namespace}.${this.consul.datacenter}.internal.${this.trustDomain}`;
  }

  /** The SPIFFE ID of `service`. */
  public spiffeId(service: string): string {
    return `spiffe://${this.trustDomain}/ns/${this.namespace}/dc/${this.consul.datacenter}/svc/${service}`;
  }

  /**
   * The leaf for `service`, valid for `ttlMs` (Consul back-dates it by a minute); a new one each call, as after the
   * agent's cache let the previous one go.
   */
  public async issue(service: string, ttlMs = 72 * 3600 * 1000): Promise<MeshIdentity> {
    this.consul.leafTtlMs = ttlMs;
    this.consul.state.leaves.delete(service);
    const [roots, leaf] = await Promise.all([fetchRoots(this.api), fetchLeaf(this.api, { partition: 'default', namespace: this.namespace }, service)]);
    const cert = new crypto.X509Certificate(leaf.certPEM);
    return {
      certPem: leaf.certPEM,
      privateKeyPem: leaf.privateKeyPEM,
      rootCertPem: roots.rootCertPEM,
      serial: normalizeSerial(cert.serialNumber),
      uri: /URI:([^,]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? '',
      validBefore: leaf.validBefore,
      bundle: serializeBundle(bundleOf(leaf, roots)),
    };
  }

  public close(): Promise<void> {
    return this.consul.close();
  }
}

/** The environment Lambda and the MeshFunction construct give the extension. */
export interface ExtensionEnvironment {
  readonly runtimeApi: string;
  readonly ssmEndpoint: string;
  readonly parameter: string;
  readonly gateway: string;
  readonly datacenter: string;
  readonly namespace: string;
  readonly upstreams: ReadonlyArray<{ readonly service: string; readonly localPort: number }>;
  /** Further variables (timeouts, intervals). */
  readonly extra?: Readonly<Record<string, string>>;
}

/**
 * The variables, and nothing from the test process's environment. The extension's own are named by its
 * internal/config/env.json, as MeshFunction names them.
 */
export function extensionEnvironment(e: ExtensionEnvironment): Record<string, string> {
  return {
    AWS_LAMBDA_RUNTIME_API: e.runtimeApi,
    [extensionEnv.ssmEndpoint]: e.ssmEndpoint,
    [extensionEnv.identityParameter]: e.parameter,
    [extensionEnv.gateway]: e.gateway,
    [extensionEnv.datacenter]: e.datacenter,
    [extensionEnv.namespace]: e.namespace,
    [extensionEnv.upstreams]: JSON.stringify(e.upstreams),
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: STAND_IN_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: 'stand-in-secret-access-key',
    AWS_SESSION_TOKEN: 'stand-in-session-token',
    ...e.extra,
  };
}

/** One JSON log line of the extension. */
export type LogLine = Readonly<Record<string, unknown>> & { readonly msg: string; readonly level: string };

/** The extension running as a child process, its stdout parsed line by line. */
export class ExtensionProcess extends EventEmitter {
  /** Starts `binary` with exactly `env`. */
  public static start(binary: string, env: Readonly<Record<string, string>>): ExtensionProcess {
    return new ExtensionProcess(spawn(binary, [], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Every log line so far. */
  public readonly logs: LogLine[] = [];
  /** Lines of stdout that were not JSON objects (the extension should write none). */
  public readonly notJson: string[] = [];
  public stderr = '';
  /** The exit code once exited (null when killed by a signal). */
  public exitCode: number | null | undefined;
  private rest = '';

  private constructor(private readonly child: ChildProcess) {
    super();
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (this.rest + chunk).split('\n');
      this.rest = lines.pop() ?? '';
      for (const line of lines.filter((l) => l !== '')) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.notJson.push(line);
        }
      }
      this.emit('change');
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    child.on('exit', (code) => {
      this.exitCode = code;
      this.emit('change');
    });
  }

  public get pid(): number {
    return this.child.pid!;
  }

  /** Waits for the `n`-th log line (from 1) with message `msg` that `match` accepts. */
  public waitForLog(msg: string, match: (l: LogLine) => boolean = () => true, n = 1, timeoutMs = 5000): Promise<LogLine> {
    return until(this, () => this.logs.filter((l) => l.msg === msg && match(l))[n - 1], `log line ${n} "${msg}" (logs so far: ${JSON.stringify(this.logs)})`, timeoutMs);
  }

  /** The log lines with message `msg`. */
  public logsOf(msg: string): LogLine[] {
    return this.logs.filter((l) => l.msg === msg);
  }

  /** Waits for the process to exit and returns its code. */
  public exited(timeoutMs = 5000): Promise<number | null> {
    return until(this, () => (this.exitCode === undefined ? undefined : { code: this.exitCode }), 'the extension to exit', timeoutMs).then((e) => e.code);
  }

  /** Kills the process if it still runs. */
  public kill(): void {
    if (this.exitCode === undefined) {
      this.child.kill('SIGKILL');
    }
  }
}

/**
 * A holding point in front of an HTTP endpoint: requests pass through unchanged, except that after `holdNext()` the
 * next one waits until `release()`. Stands for a slow SSM without a fixed delay.
 */
export class HoldingProxy extends EventEmitter {
  /** Starts a proxy to `target` (`http://host:port`). */
  public static async start(target: string): Promise<HoldingProxy> {
    const proxy = new HoldingProxy(new URL(target));
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** How many requests have been held so far. */
  public heldCount = 0;
  private holding = false;
  private readonly waiting: Array<() => void> = [];
  private readonly server: http.Server;

  private constructor(target: URL) {
    super();
    this.server = http.createServer((req, res) => {
      const forward = (): void => {
        const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      };
      if (!this.holding) {
        return forward();
      }
      this.holding = false;
      this.heldCount++;
      this.waiting.push(forward);
      this.emit('change');
    });
  }

  /** `http://127.0.0.1:<port>`. */
  public get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Holds the next request until `release()`. */
  public holdNext(): void {
    this.holding = true;
  }

  /** Waits until `n` requests have been held. */
  public waitForHeld(n = 1, timeoutMs = 5000): Promise<number> {
    return until(this, () => (this.heldCount >= n ? this.heldCount : undefined), `${n} held request(s)`, timeoutMs);
  }

  /** Lets the held requests through. */
  public release(): void {
    for (const forward of this.waiting.splice(0)) {
      forward();
    }
  }

  public async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A response, read whole. */
export interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** POSTs `body` in plain HTTP to `127.0.0.1:port` (the function's side of the extension), through `agent`. */
export function post(port: number, body: Buffer, agent: http.Agent | false = false, timeoutMs = 5000): Promise<Reply> {
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent, headers: { 'content-length': body.length }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from 127.0.0.1:${port} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function isListening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
