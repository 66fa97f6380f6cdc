/**
 * The Consul HTTP API client of the deploy-time handlers (intentions applier, identity registrar, certificate
 * rotation): Node's `https` only, so a handler bundle carries no HTTP library.
 *
 * - TLS: the server certificate is verified against the cluster's CA (`caPem`) and the name `serverName`
 *   (`server.<dc>.consul`), not the host in the address: the servers' load balancer DNS name is not in the certificate.
 * - The ACL token goes in `X-Consul-Token` and nowhere else: no message of this file contains it.
 * - Bounded retries with exponential backoff on 5xx, 429, connection resets and timeouts; a 403 fails at once with
 *   a message naming the method and path; every other status is returned for the caller to judge (404 included).
 *
 * Runtime code: bundled by esbuild into the handlers, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/api-structure
 */
import * as https from 'https';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ConsulApi, ConsulConnection, ConsulResponse } from './consul-api';

/** Options of {@link consulClient}. */
export interface ConsulClientOptions {
  /**
   * Attempts in all for one request, the first included (values below 1 count as 1).
   * @default 3
   */
  readonly retries?: number;
  /**
   * The delay before the second attempt; it doubles before each further one.
   * @default 200
   */
  readonly retryDelayMs?: number;
  /**
   * How long one attempt may take, connection and response included.
   * @default 10000
   */
  readonly timeoutMs?: number;
}

/** The environment variables {@link connectionFromSecrets} reads. */
export const CONSUL_ENV = {
  /** `https://<servers' load balancer>:8501`. */
  ADDRESS: 'CONSUL_ADDRESS',
  /** The TLS name to verify, `server.<dc>.consul`. */
  SERVER_NAME: 'CONSUL_SERVER_NAME',
  /** The secret holding the cluster's TLS CA: JSON `{"CertificatePem": "..."}`. */
  CA_SECRET_ARN: 'CONSUL_CA_SECRET_ARN',
  /** The secret holding the ACL token: JSON `{"AccessorID": "...", "SecretID": "..."}`. */
  TOKEN_SECRET_ARN: 'CONSUL_TOKEN_SECRET_ARN',
} as const;

/** Network error codes after which the same request is tried again (the server may never have seen it). */
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);

/** How much of Consul's error text a message quotes. */
const MAX_QUOTED = 500;

type Method = 'GET' | 'PUT' | 'DELETE';

/**
 * Creates a Consul HTTP API client for `conn`.
 *
 * @example
 * const consul = consulClient(await connectionFromSecrets());
 * const current = await consul.get('/v1/config/service-intentions/feature-store');
 */
export function consulClient(conn: ConsulConnection, options: ConsulClientOptions = {}): ConsulApi {
  const base = parseAddress(conn.address);
  const attempts = Math.max(1, Math.floor(options.retries ?? 3));
  const retryDelayMs = Math.max(0, options.retryDelayMs ?? 200);
  const timeoutMs = Math.max(1, options.timeoutMs ?? 10_000);
  // One agent per client: connections are reused across a handler's requests and never shared with other CAs.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 4 });

  const send = async (method: Method, path: string, body?: unknown): Promise<ConsulResponse> => {
    if (!path.startsWith('/')) {
      throw new Error(`Consul ${method} ${path}: the path must start with '/'`);
    }
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let lastProblem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) {
        await sleep(retryDelayMs * 2 ** (attempt - 2));
      }
      let response: RawResponse;
      try {
        response = await requestOnce({ base, conn, agent, method, path, payload, timeoutMs });
      } catch (e) {
        const problem = describeNetworkError(e, conn.serverName);
        if (!problem.retryable) {
          throw new Error(`Consul ${method} ${path} failed: ${scrub(problem.message, conn.token)}`, { cause: e });
        }
        lastProblem = scrub(problem.message, conn.token);
        continue;
      }
      const parsed = parseBody(response.text);
      if (response.status === 403) {
        throw new Error(
          `Consul refused ${method} ${path} (403): the token lacks permission or is invalid: ${quote(response.text, conn.token)}`,
        );
      }
      if (response.status >= 500 || response.status === 429) {
        lastProblem = `HTTP ${response.status}: ${quote(response.text, conn.token)}`;
        continue;
      }
      return { status: response.status, body: parsed, ...(response.index !== undefined ? { index: response.index } : {}) };
    }
    throw new Error(`Consul ${method} ${path} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${lastProblem}`);
  };

  return {
    get: (path) => send('GET', path),
    put: (path, body) => send('PUT', path, body),
    delete: (path) => send('DELETE', path),
  };
}

/**
 * Reads the Consul connection of a handler from its environment: the address and TLS name, the CA certificate and
 * the ACL token from their Secrets Manager secrets. Errors name the variable or the secret ARN, never a value.
 *
 * @param env the environment (defaults to `process.env`)
 * @param secretsManager the client to read the secrets with (defaults to one with the SDK's own resolution)
 */
export async function connectionFromSecrets(
  env: Readonly<Record<string, string | undefined>> = process.env,
  secretsManager?: SecretsManagerClient,
): Promise<ConsulConnection> {
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value.trim() === '') {
      throw new Error(`environment variable ${name} is not set`);
    }
    return value.trim();
  };
  const address = required(CONSUL_ENV.ADDRESS);
  parseAddress(address);
  const serverName = required(CONSUL_ENV.SERVER_NAME);
  const caArn = required(CONSUL_ENV.CA_SECRET_ARN);
  const tokenArn = required(CONSUL_ENV.TOKEN_SECRET_ARN);

  // Timeouts, because the SDK has none by default: a VPC without a route to Secrets Manager must fail within the
  // function's timeout, so the failure still reaches CloudFormation.
  const client = secretsManager ?? new SecretsManagerClient({ requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 } });
  const [ca, token] = await Promise.all([readJsonSecret(client, CONSUL_ENV.CA_SECRET_ARN, caArn), readJsonSecret(client, CONSUL_ENV.TOKEN_SECRET_ARN, tokenArn)]);
  const caPem = ca.CertificatePem;
  if (typeof caPem !== 'string' || !caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new Error(`the secret ${caArn} (${CONSUL_ENV.CA_SECRET_ARN}) has no PEM certificate in CertificatePem`);
  }
  const secretId = token.SecretID;
  if (typeof secretId !== 'string' || secretId.length === 0) {
    throw new Error(`the secret ${tokenArn} (${CONSUL_ENV.TOKEN_SECRET_ARN}) has no SecretID`);
  }
  return { address, caPem, serverName, token: secretId };
}

async function readJsonSecret(client: SecretsManagerClient, variable: string, secretArn: string): Promise<Record<string, unknown>> {
  let text: string | undefined;
  try {
    const response = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    text = response.SecretString;
  } catch (e) {
    const reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new Error(`GetSecretValue on ${secretArn} (${variable}) failed: ${reason}`, { cause: e });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text ?? '');
  } catch {
    // Not the parser's message: it quotes the input, which is a secret.
    throw new Error(`the secret ${secretArn} (${variable}) is not a JSON object`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`the secret ${secretArn} (${variable}) is not a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

interface BaseAddress {
  readonly hostname: string;
  readonly port: number;
}

function parseAddress(address: string): BaseAddress {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new Error(`the Consul address must be https://<host>:<port>, got ${JSON.stringify(address)}`);
  }
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new Error(`the Consul address must be https://<host>:<port>, got ${JSON.stringify(address)}`);
  }
  // URL keeps the brackets of an IPv6 literal; https.request wants the bare address.
  return { hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 443 : Number(url.port) };
}

interface RawResponse {
  readonly status: number;
  readonly text: string;
  readonly index?: string;
}

interface RequestOptions {
  readonly base: BaseAddress;
  readonly conn: ConsulConnection;
  readonly agent: https.Agent;
  readonly method: Method;
  readonly path: string;
  readonly payload: string | undefined;
  readonly timeoutMs: number;
}

function requestOnce(o: RequestOptions): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'X-Consul-Token': o.conn.token, 'Accept': 'application/json' };
    if (o.payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(o.payload);
    }
    const req = https.request(
      {
        hostname: o.base.hostname,
        port: o.base.port,
        path: o.path,
        method: o.method,
        headers,
        agent: o.agent,
        // Trust only the cluster's CA, and check the certificate against the servers' name, not the LB's.
        ca: o.conn.caPem,
        servername: o.conn.serverName,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const index = res.headers['x-consul-index'];
          resolve({
            status: res.statusCode ?? 0,
            text: Buffer.concat(chunks).toString('utf8'),
            ...(typeof index === 'string' ? { index } : {}),
          });
        });
      },
    );
    // Covers connect, TLS handshake and the whole response, not only socket idleness.
    const timer = setTimeout(() => req.destroy(Object.assign(new Error(`timed out after ${o.timeoutMs} ms`), { code: 'ETIMEDOUT' })), o.timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(o.payload);
  });
}

/** Whether a request error is worth another attempt, and how to say what happened. */
function describeNetworkError(e: unknown, serverName: string): { retryable: boolean; message: string } {
  const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : '';
  const message = e instanceof Error ? e.message : String(e);
  if (RETRYABLE_CODES.has(code) || message === 'socket hang up') {
    return { retryable: true, message: code !== '' && !message.includes(code) ? `${code}: ${message}` : message };
  }
  if (code.startsWith('ERR_TLS_') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) {
    return { retryable: false, message: `TLS verification of ${serverName} failed (${code}): ${message}` };
  }
  return { retryable: false, message: code !== '' ? `${code}: ${message}` : message };
}

/** The body as JSON when it is JSON; Consul answers errors in plain text, which is kept as a string. */
function parseBody(text: string): unknown {
  if (text.trim() === '') {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** Consul's error text for a message: trimmed, bounded, and never carrying the token. */
function quote(text: string, token: string): string {
  const trimmed = text.trim();
  const bounded = trimmed.length > MAX_QUOTED ? `${trimmed.slice(0, MAX_QUOTED)}...` : trimmed;
  return bounded === '' ? '(no message)' : scrub(bounded, token);
}

/** Consul does not echo tokens, but a message must not carry one even if some proxy in between did. */
function scrub(text: string, token: string): string {
  return token.length > 0 ? text.split(token).join('(token)') : text;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
