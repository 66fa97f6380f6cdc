/**
 * What the Lambda handler tests share: the environment that points a handler at local stand-ins, console capture
 * with the "no secret in any log line or error message" check they run after every test, and the esbuild check that
 * a handler bundles into one self-contained file.
 */
import { builtinModules } from 'module';
import * as os from 'os';
import * as path from 'path';
import * as esbuild from 'esbuild';
import { CONSUL_ENV } from '../../constructs/intentions/private/consul-client';
import type { ConsulStandIn } from './stand-ins/consul';
import type { SecretsManagerStandIn } from './stand-ins/secrets-manager';

const REPO_ROOT = path.join(__dirname, '..', '..');

// ---------------------------------------------------------------------------------------------------------------
// Environment.
// ---------------------------------------------------------------------------------------------------------------

/** The access key ID of the static credentials the handlers get in tests (the stand-ins record their SigV4 headers). */
export const STAND_IN_ACCESS_KEY_ID = 'AKIDSTANDINEXAMPLE';

/**
 * Points the AWS SDK at local stand-ins the way it resolves things in Lambda: the service-specific endpoint variables
 * (`AWS_ENDPOINT_URL_<SERVICE>`, among `variables`), static credentials from the environment, the region. Shared config
 * files are pointed away so a developer's ~/.aws cannot interfere. The caller restores `process.env` afterwards.
 */
export function useAwsStandIns(region: string, variables: Readonly<Record<string, string>>): void {
  const nowhere = path.join(os.tmpdir(), 'no-such-aws-config');
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS', 'AWS_DEFAULT_REGION']) {
    delete process.env[name];
  }
  Object.assign(process.env, {
    ...variables,
    AWS_ACCESS_KEY_ID: STAND_IN_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: 'stand-in-secret-access-key',
    AWS_REGION: region,
    AWS_CONFIG_FILE: nowhere,
    AWS_SHARED_CREDENTIALS_FILE: nowhere,
    // Tests run on Node 20 (the project's floor); the functions run on nodejs22.x, where the SDK does not warn.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  });
}

/** The Secrets Manager secrets a handler reads its Consul connection from (what `CONSUL_ENV` points it at). */
export interface ConsulSecretArns {
  /** `{"CertificatePem"}`: the CA that signed the Consul server's certificate. */
  readonly ca: string;
  /** `{"AccessorID","SecretID"}`: the handler's ACL token. */
  readonly token: string;
}

/** The environment variables that point a handler at the Consul stand-in, through the secrets at `arns`. */
export function consulEnvironment(consul: ConsulStandIn, arns: ConsulSecretArns): Record<string, string> {
  return {
    [CONSUL_ENV.ADDRESS]: consul.address,
    [CONSUL_ENV.SERVER_NAME]: consul.serverName,
    [CONSUL_ENV.CA_SECRET_ARN]: arns.ca,
    [CONSUL_ENV.TOKEN_SECRET_ARN]: arns.token,
  };
}

/**
 * Puts the Consul stand-in's CA and `token` where the handler's environment points (Secrets Manager), after
 * forgetting every other secret.
 */
export function putConsulSecrets(secrets: SecretsManagerStandIn, consul: ConsulStandIn, arns: ConsulSecretArns, token: string): void {
  secrets.reset();
  secrets.setSecret(arns.ca, JSON.stringify({ CertificatePem: consul.caPem }));
  secrets.setSecret(arns.token, JSON.stringify({ AccessorID: '00000000-0000-4000-8000-000000000001', SecretID: token }));
}

// ---------------------------------------------------------------------------------------------------------------
// Console capture and the leak check.
// ---------------------------------------------------------------------------------------------------------------

/** How {@link ConsoleCapture.run} records an error by default: its message and its cause. */
export const messageAndCause = (e: unknown): string => (e instanceof Error ? `${e.message} ${String(e.cause)}` : String(e));

/** How {@link ConsoleCapture.run} records an error when told to: its message only. */
export const messageOnly = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * Captures what a handler writes to the console, and the errors it throws, for the leak check. `start()` in
 * `beforeEach`, `stop()` in `afterEach`.
 */
export class ConsoleCapture {
  /** Every console line since `start()`, its arguments joined by a space. */
  public readonly logged: string[] = [];
  /** What {@link run} recorded of the errors thrown since `start()`. */
  public readonly errors: string[] = [];

  /** Forgets what was captured and routes console.log, info, warn, error and debug here. */
  public start(): void {
    this.logged.length = 0;
    this.errors.length = 0;
    const capture = (...args: unknown[]): void => {
      this.logged.push(args.map(String).join(' '));
    };
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(console, method).mockImplementation(capture);
    }
  }

  /** Restores every mock (`jest.restoreAllMocks()`) and returns {@link text}. */
  public stop(): string {
    jest.restoreAllMocks();
    return this.text();
  }

  /** The log lines, then the recorded errors, one a line. */
  public text(): string {
    return [...this.logged, ...this.errors].join('\n');
  }

  /** The log lines parsed as JSON (the handlers log one JSON object a line). */
  public entries<T = Record<string, string>>(): T[] {
    return this.logged.map((l) => JSON.parse(l) as T);
  }

  /** Awaits `call`; when it throws, records the error (as `describe` renders it) and rethrows. */
  public async run<T>(call: () => Promise<T>, describe: (e: unknown) => string = messageAndCause): Promise<T> {
    try {
      return await call();
    } catch (e) {
      this.errors.push(describe(e));
      throw e;
    }
  }
}

/** The first line of base64 of a PEM, which would give a logged key away even without its armour. */
export function pemFirstBase64Line(pem: string): string | undefined {
  return /-----\n([A-Za-z0-9+/=]{64})/.exec(pem)?.[1];
}

/**
 * The secrets among values a stand-in stored, as {@link expectNoSecretIn} takes them: with `fields`, those string
 * fields of each value that is a JSON object (nothing of the others); without, each value and, when it is a JSON
 * object, every string field of it.
 */
export function storedSecrets(stored: Iterable<string>, fields?: readonly string[]): string[] {
  return [...stored].flatMap((value) => {
    const record = jsonObject(value);
    if (fields) {
      return fields.map((f) => record?.[f]).filter((v): v is string => typeof v === 'string');
    }
    return [value, ...Object.values(record ?? {}).filter((v): v is string => typeof v === 'string')];
  });
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Expects that `text` (captured logs and error messages) holds no secret: no PEM armour or private key, none of
 * `secrets` (values the test planted or a stand-in stored) to the letter, nor the first base64 line of a PEM among
 * them.
 */
export function expectNoSecretIn(text: string, secrets: Iterable<string> = []): void {
  expect(text).not.toMatch(/-----BEGIN|PRIVATE KEY/);
  for (const secret of secrets) {
    expect(text).not.toContain(secret);
    const firstLine = pemFirstBase64Line(secret);
    if (firstLine) {
      expect(text).not.toContain(firstLine);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Bundling.
// ---------------------------------------------------------------------------------------------------------------

/**
 * Expects that esbuild bundles `entry` (a path from the repository root) for nodejs22.x into one file, with only
 * `@aws-sdk/*` (the runtime's SDK) and Node built-ins external and nothing from node_modules inside; and, when given,
 * exactly `expectedInputs` (paths from the repository root) as its sources and each of `expectedSdkClients` among its
 * externals.
 */
export async function expectSelfContainedBundle(entry: string, expectedInputs?: readonly string[], expectedSdkClients: readonly string[] = []): Promise<void> {
  const result = await esbuild.build({
    entryPoints: [path.join(REPO_ROOT, entry)],
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const outputs = Object.values(result.metafile.outputs);
  expect(outputs).toHaveLength(1);
  const [output] = outputs;
  const externals = output.imports.filter((i) => i.external).map((i) => i.path);
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  expect(externals.filter((p) => !p.startsWith('@aws-sdk/') && !builtins.has(p))).toEqual([]);
  for (const client of expectedSdkClients) {
    expect(externals).toContain(client);
  }
  expect(Object.keys(output.inputs).filter((i) => i.includes('node_modules'))).toEqual([]);
  if (expectedInputs) {
    expect(Object.keys(output.inputs).sort()).toEqual([...expectedInputs].sort());
  }
}
