/**
 * The mesh's certificate rotation function, run on a schedule (EventBridge). The registrar custom resource
 * (../registrar-handler) writes each function identity's bundle at deploy time; between deployments, leaf
 * certificates expire (Consul's default leaf TTL is 72 hours), and this function keeps the bundles current.
 *
 * For every identity it reads the bundle from SSM and, when the bundle is missing or unusable, its certificate has
 * less than half of its lifetime left, or the CA roots changed, fetches the identity's leaf from Consul and rewrites
 * the parameter whenever what Consul returns differs from what is stored. Consul renews the leaf it holds at a
 * random point between 60% and 90% of its lifetime (at once past 90%), and no API call forces an earlier one: a run
 * between 50% and that point finds the same certificate and leaves it (logged as `pending`); a later run picks up the
 * new one. The schedule must therefore be shorter than a tenth of the leaf TTL (72 h: hourly is comfortable).
 *
 * Then it publishes, in `METRIC_NAMESPACE` with the dimension `MeshName`:
 * - `SecondsToExpiry`: the smallest number of seconds left on any identity's stored certificate after the run
 *   (0 for an identity left without one), for an alarm well before expiry;
 * - `RotatedCertificates`: how many parameters the run rewrote.
 *
 * One identity failing does not stop the others; the function throws at the end when any failed, naming them, so
 * Lambda's `Errors` metric (and an alarm on it) sees the run fail.
 *
 * Environment: the CONSUL_* variables of consul-client.ts, PARAMETER_PREFIX, PARTITION, NAMESPACE, KMS_KEY_ID,
 * IDENTITIES (a JSON array of identity names), METRIC_NAMESPACE, MESH_NAME.
 *
 * Never logged or put in an error: a private key, a certificate, the ACL token.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect#service-leaf-certificate
 * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
 */
import * as crypto from 'crypto';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { type SSMClient } from '@aws-sdk/client-ssm';
import { DNS_1123_LABEL } from '../../../core/names';
import type { ConsulApi } from '../consul-api';
import { connectionFromSecrets, consulClient } from '../consul-client';
import {
  bundleOf,
  type CaRoots,
  type ConsulScope,
  describeError,
  fetchLeaf,
  fetchRoots,
  formatSerial,
  type IdentityBundle,
  newSsmClient,
  parameterName,
  ParameterStore,
  serializeBundle,
  tryParse,
} from '../registrar-handler';
import { log } from '../../../core/private/handler-log';

/** The metric names this function publishes. */
export const METRICS = { secondsToExpiry: 'SecondsToExpiry', rotatedCertificates: 'RotatedCertificates' } as const;

/** The validated environment. */
export interface RotationSettings extends ConsulScope {
  readonly parameterPrefix: string;
  readonly kmsKeyId: string;
  readonly identities: readonly string[];
  readonly metricNamespace: string;
  readonly meshName: string;
}

/** What the function needs from outside: injected by tests, built from the environment in Lambda. */
export interface RotationDependencies {
  readonly consul: ConsulApi;
  readonly ssm: SSMClient;
  readonly cloudWatch: CloudWatchClient;
  /**
   * The current time.
   * @default - the system clock
   */
  readonly now?: () => Date;
}

/** Why a bundle was refreshed. */
export type RefreshReason = 'missing' | 'unusable' | 'half-life' | 'ca-roots-changed';

/** One identity's outcome. */
export interface IdentityOutcome {
  readonly identity: string;
  /** `kept`: nothing to do; `rotated`: rewritten; `pending`: due, but Consul still holds the same leaf; `failed`. */
  readonly result: 'kept' | 'rotated' | 'pending' | 'failed';
  readonly reason?: RefreshReason;
  /** Seconds left on the certificate stored after the run; 0 when there is none; absent when unknown (a failed read). */
  readonly secondsToExpiry?: number;
  readonly error?: string;
}

/** What a run did. */
export interface RotationSummary {
  readonly meshName: string;
  readonly identities: readonly IdentityOutcome[];
  readonly rotated: number;
  readonly failed: readonly string[];
  /** The published `SecondsToExpiry`, absent when no identity's state is known. */
  readonly minSecondsToExpiry?: number;
}

/** The Lambda entry point (EventBridge scheduled event; its content is not used). */
export async function handler(): Promise<RotationSummary> {
  const settings = parseEnvironment(process.env);
  const consul = consulClient(await connectionFromSecrets());
  const cloudWatch = new CloudWatchClient({ requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 } });
  return rotate(settings, { consul, ssm: newSsmClient(), cloudWatch });
}

/** Checks and refreshes every identity, publishes the metrics, and throws at the end if any identity failed. */
export async function rotate(settings: RotationSettings, deps: RotationDependencies): Promise<RotationSummary> {
  const now = deps.now ?? ((): Date => new Date());
  const store = new ParameterStore(deps.ssm, settings.kmsKeyId);
  // Fetched once per run, up front, so a changed CA is noticed even when no certificate is due. A failure fails the
  // identities that need the roots, not the ones that are fine, and the run.
  const roots = settings.identities.length > 0 ? fetchRoots(deps.consul) : undefined;
  let rootsProblem: string | undefined;
  const rootsAtStart = await roots?.catch((e: unknown) => {
    rootsProblem = e instanceof Error ? e.message : String(e);
    return undefined;
  });
  const currentRoots = (): Promise<CaRoots> => roots ?? fetchRoots(deps.consul);

  const outcomes: IdentityOutcome[] = [];
  for (const identity of settings.identities) {
    outcomes.push(await rotateOne(settings, identity, { store, consul: deps.consul, now, currentRoots, rootsAtStart }));
  }

  const known = outcomes.flatMap((o) => (o.secondsToExpiry === undefined ? [] : [o.secondsToExpiry]));
  const minSecondsToExpiry = known.length > 0 ? Math.min(...known) : undefined;
  const rotated = outcomes.filter((o) => o.result === 'rotated').length;
  const failed = outcomes.filter((o) => o.result === 'failed');

  let metricError: string | undefined;
  try {
    await publishMetrics(deps.cloudWatch, settings, now(), rotated, minSecondsToExpiry);
  } catch (e) {
    metricError = `PutMetricData in ${settings.metricNamespace} failed: ${describeError(e)}`;
  }
  const summary: RotationSummary = {
    meshName: settings.meshName,
    identities: outcomes,
    rotated,
    failed: failed.map((o) => o.identity),
    ...(minSecondsToExpiry === undefined ? {} : { minSecondsToExpiry }),
  };
  log({
    action: 'summary',
    meshName: settings.meshName,
    identities: outcomes.length,
    rotated,
    failed: failed.length,
    ...(minSecondsToExpiry === undefined ? {} : { minSecondsToExpiry }),
  });

  // A CA roots failure fails the run even when no identity was due (the next due one would fail the same way); it is
  // named once, not again when the identities that needed the roots already carry it.
  const problems = [
    ...(failed.length > 0 ? [`${failed.length} of ${outcomes.length} identities failed: ${failed.map((o) => `${o.identity} (${o.error ?? 'unknown error'})`).join('; ')}`] : []),
    ...(rootsProblem !== undefined && !failed.some((o) => o.error === rootsProblem) ? [`could not read the CA roots: ${rootsProblem}`] : []),
    ...(metricError !== undefined ? [metricError] : []),
  ];
  if (problems.length > 0) {
    throw new Error(`certificate rotation for mesh ${settings.meshName}: ${problems.join('; ')}`);
  }
  return summary;
}

interface RotateContext {
  readonly store: ParameterStore;
  readonly consul: ConsulApi;
  readonly now: () => Date;
  readonly currentRoots: () => Promise<CaRoots>;
  readonly rootsAtStart: CaRoots | undefined;
}

/** One identity: never throws; a failure is its outcome. */
async function rotateOne(s: RotationSettings, identity: string, ctx: RotateContext): Promise<IdentityOutcome> {
  const name = parameterName(s, identity);
  let read = false;
  let stored: StoredBundle | undefined;
  try {
    const raw = await ctx.store.read(name, identity);
    read = true;
    stored = raw === undefined ? undefined : parseStoredBundle(raw, identity);
    const reason = refreshReason(raw, stored, ctx.now(), ctx.rootsAtStart);
    if (reason === undefined) {
      const secondsToExpiry = secondsLeft(stored?.validBefore, ctx.now());
      log({ action: 'kept', identity, parameter: name, serial: stored?.serialNumber ?? '', secondsToExpiry });
      return { identity, result: 'kept', secondsToExpiry };
    }
    const roots = await ctx.currentRoots();
    const leaf = await fetchLeaf(ctx.consul, s, identity);
    const value = serializeBundle(bundleOf(leaf, roots));
    if (value === raw) {
      // Due, but Consul still holds this leaf: it renews it between 60% and 90% of its lifetime.
      const secondsToExpiry = secondsLeft(leaf.validBefore, ctx.now());
      log({ action: 'pending', identity, parameter: name, reason, serial: leaf.serialNumber, secondsToExpiry });
      return { identity, result: 'pending', reason, secondsToExpiry };
    }
    const tier = await ctx.store.write(name, identity, value);
    const secondsToExpiry = secondsLeft(leaf.validBefore, ctx.now());
    log({ action: 'rotated', identity, parameter: name, reason, tier, previousSerial: stored?.serialNumber ?? '', serial: leaf.serialNumber, secondsToExpiry });
    return { identity, result: 'rotated', reason, secondsToExpiry };
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    log({ action: 'failed', identity, parameter: name, error });
    // What functions use is still the stored certificate: its expiry counts (0 when there is none). Unknown when
    // the parameter could not even be read; the thrown error reports that.
    return { identity, result: 'failed', error, ...(read ? { secondsToExpiry: secondsLeft(stored?.validBefore, ctx.now()) } : {}) };
  }
}

/** Why the stored bundle must be refreshed, or undefined when it is fine. */
export function refreshReason(raw: string | undefined, stored: StoredBundle | undefined, now: Date, roots: CaRoots | undefined): RefreshReason | undefined {
  if (raw === undefined) {
    return 'missing';
  }
  if (stored === undefined) {
    return 'unusable';
  }
  const lifetime = stored.validBefore.getTime() - stored.validAfter.getTime();
  if (stored.validBefore.getTime() - now.getTime() < lifetime / 2) {
    return 'half-life';
  }
  if (roots !== undefined && (roots.rootCertPEM !== stored.bundle.rootCertPEM || roots.trustDomain !== stored.bundle.trustDomain)) {
    return 'ca-roots-changed';
  }
  return undefined;
}

/** A stored bundle that parsed, with its certificate's facts. */
export interface StoredBundle {
  readonly bundle: IdentityBundle;
  readonly serialNumber: string;
  readonly validAfter: Date;
  readonly validBefore: Date;
}

/**
 * Parses a stored bundle: the five keys, a certificate for this identity (its SPIFFE ID ends in `/svc/<identity>`)
 * and the private key that matches it. Undefined for anything else, without a parser's message (it would quote
 * key material).
 */
export function parseStoredBundle(raw: string, identity: string): StoredBundle | undefined {
  const parsed = tryParse((): unknown => JSON.parse(raw));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return undefined;
  }
  const b = parsed as Record<string, unknown>;
  if (typeof b.privateKeyPEM !== 'string' || typeof b.certPEM !== 'string' || typeof b.rootCertPEM !== 'string' || typeof b.trustDomain !== 'string') {
    return undefined;
  }
  const certificate = tryParse(() => new crypto.X509Certificate(b.certPEM as string));
  const key = tryParse(() => crypto.createPrivateKey(b.privateKeyPEM as string));
  if (!certificate || !key || !tryParse(() => certificate.checkPrivateKey(key))) {
    return undefined;
  }
  const uris = (certificate.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:'));
  if (!uris.some((u) => u.endsWith(`/svc/${identity}`))) {
    return undefined;
  }
  const peers = Array.isArray(b.peers) ? (b.peers as IdentityBundle['peers']) : [];
  return {
    bundle: { privateKeyPEM: b.privateKeyPEM, certPEM: b.certPEM, rootCertPEM: b.rootCertPEM, trustDomain: b.trustDomain, peers },
    serialNumber: formatSerial(certificate.serialNumber),
    validAfter: new Date(certificate.validFrom),
    validBefore: new Date(certificate.validTo),
  };
}

/** Whole seconds left before `validBefore`, never negative; 0 without a certificate. */
function secondsLeft(validBefore: Date | undefined, now: Date): number {
  return validBefore === undefined ? 0 : Math.max(0, Math.floor((validBefore.getTime() - now.getTime()) / 1000));
}

/** One PutMetricData call with both metrics; `SecondsToExpiry` only when some identity's state is known. */
async function publishMetrics(client: CloudWatchClient, s: RotationSettings, at: Date, rotated: number, minSecondsToExpiry: number | undefined): Promise<void> {
  const dimensions = [{ Name: 'MeshName', Value: s.meshName }];
  await client.send(
    new PutMetricDataCommand({
      Namespace: s.metricNamespace,
      MetricData: [
        ...(minSecondsToExpiry === undefined ? [] : [{ MetricName: METRICS.secondsToExpiry, Dimensions: dimensions, Timestamp: at, Value: minSecondsToExpiry, Unit: 'Seconds' as const }]),
        { MetricName: METRICS.rotatedCertificates, Dimensions: dimensions, Timestamp: at, Value: rotated, Unit: 'Count' as const },
      ],
    }),
  );
}

/** Validates the environment; errors name the variable and what was expected. */
export function parseEnvironment(env: Readonly<Record<string, string | undefined>>): RotationSettings {
  const required = (variable: string): string => {
    const value = env[variable]?.trim();
    if (value === undefined || value === '') {
      throw new Error(`environment variable ${variable} is not set`);
    }
    return value;
  };
  const label = (variable: string): string => {
    const value = required(variable);
    if (value.length > 63 || !DNS_1123_LABEL.test(value)) {
      throw new Error(`environment variable ${variable} must be a DNS-1123 label, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const parameterPrefix = required('PARAMETER_PREFIX');
  if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(parameterPrefix)) {
    throw new Error(`environment variable PARAMETER_PREFIX must be an SSM path like /lambda-mesh/<mesh>, got ${JSON.stringify(parameterPrefix)}`);
  }
  const identitiesText = required('IDENTITIES');
  const identities = tryParse((): unknown => JSON.parse(identitiesText));
  if (!Array.isArray(identities) || !identities.every((i): i is string => typeof i === 'string' && i.length <= 63 && DNS_1123_LABEL.test(i))) {
    throw new Error(`environment variable IDENTITIES must be a JSON array of identity names (DNS-1123 labels), got ${JSON.stringify(identitiesText.slice(0, 200))}`);
  }
  const metricNamespace = required('METRIC_NAMESPACE');
  if (metricNamespace.startsWith('AWS/') || metricNamespace.length > 255) {
    throw new Error(`environment variable METRIC_NAMESPACE must be a custom namespace (not AWS/...), got ${JSON.stringify(metricNamespace)}`);
  }
  return {
    parameterPrefix,
    partition: label('PARTITION'),
    namespace: label('NAMESPACE'),
    kmsKeyId: required('KMS_KEY_ID'),
    identities: [...new Set(identities)],
    metricNamespace,
    meshName: required('MESH_NAME'),
  };
}
