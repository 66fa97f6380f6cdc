/**
 * The handler of the Consul server cluster's secrets custom resource. It fills Secrets Manager secrets that the
 * stack created empty, so no secret ever appears in a template, a parameter or user data. It takes the CloudFormation
 * request and returns the physical ID and attributes; the Lambda entry point reports them to CloudFormation.
 *
 * Create and Update run the same reconciliation: every value that is already there and well-formed is kept, only
 * missing or unusable ones are generated. A retried Create, a replaced resource or an Update therefore never rotates
 * a credential the cluster is using; the only value an Update replaces is the server certificate, when its names no
 * longer match the datacenter, it is not signed by the stored CA, or it is about to expire.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/template-custom-resources.html
 */
import * as crypto from 'crypto';
import { GetSecretValueCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { log } from '../../../core/private/handler-log';
import type { CustomResourceEvent, CustomResourceResult } from '../../../core/private/cfn-response';
import { createCa, createServerCertificate, ipAddressOctets, recreateCaCertificate, type CertificateAndKey } from './x509';

/** The physical ID on Create; Update keeps whatever the resource has, so nothing ever triggers a replacement. */
export const PHYSICAL_RESOURCE_ID = 'consul-secrets';

/** The CA's lifetime. It is never rotated by this handler: rotating a CA is a planned operation, not a deploy. */
export const CA_VALIDITY_DAYS = 3650;

/** The server certificate is reissued on an Update when it has less than this left (or half its lifetime, if less). */
export const SERVER_CERTIFICATE_RENEW_BEFORE_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/** The secrets every cluster has, by item name (the key in `ResourceProperties.Secrets`). */
export const SECRET_ITEMS = ['GossipKey', 'CaCertificate', 'CaPrivateKey', 'ServerCertificate', 'ManagementToken', 'AgentToken'] as const;
type SecretItem = (typeof SECRET_ITEMS)[number];

/** The validated resource properties. */
interface Properties {
  readonly datacenter: string;
  readonly serverCertificateValidityDays: number;
  readonly secrets: Readonly<Record<SecretItem, string>>;
  readonly scopedTokens: ReadonlyArray<{ readonly role: string; readonly secretArn: string }>;
}

/**
 * Handles one lifecycle event. Throws (and the framework reports a FAILED response) on any error. `Data` (Create and
 * Update): the CA certificate's SHA-256 fingerprint.
 */
export async function handler(event: CustomResourceEvent): Promise<CustomResourceResult<{ readonly CaFingerprintSha256: string }>> {
  if (event.RequestType === 'Delete') {
    // The secrets are stack resources: CloudFormation deletes them (or retains them, per their policy).
    log({ action: 'none', requestType: 'Delete' });
    return { PhysicalResourceId: event.PhysicalResourceId ?? PHYSICAL_RESOURCE_ID };
  }
  if (event.RequestType !== 'Create' && event.RequestType !== 'Update') {
    throw new Error(`unknown RequestType ${JSON.stringify(event.RequestType)}`);
  }
  const properties = parseProperties(event.ResourceProperties);
  // Default credential, region and endpoint resolution (AWS_ENDPOINT_URL_SECRETS_MANAGER included). A client per
  // invocation: a custom resource runs a few times per deployment, and nothing stale survives between events.
  // Timeouts, because the SDK has none by default: an unreachable endpoint (a VPC without a route to Secrets
  // Manager) must fail within the function's timeout, so a FAILED response still reaches CloudFormation instead of
  // the stack waiting out the custom resource timeout. Timed-out attempts count against the SDK's 3 attempts.
  const client = new SecretsManagerClient({ requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 } });
  const store = new SecretStore(client);
  const caFingerprint = await reconcile(store, properties);
  const physicalResourceId = event.RequestType === 'Update' ? (event.PhysicalResourceId ?? PHYSICAL_RESOURCE_ID) : PHYSICAL_RESOURCE_ID;
  return { PhysicalResourceId: physicalResourceId, Data: { CaFingerprintSha256: caFingerprint } };
}

/** Brings every secret to a usable value, keeping what is usable. Returns the CA's SHA-256 fingerprint. */
async function reconcile(store: SecretStore, p: Properties): Promise<string> {
  const ca = await reconcileCa(store, p);
  await reconcileServerCertificate(store, p, ca);
  await reconcileSimple(store, 'GossipKey', p.secrets.GossipKey, ['GossipKey'], isGossipKey, () => ({ GossipKey: crypto.randomBytes(32).toString('base64') }));
  const tokens: Array<{ item: string; secretArn: string }> = [
    { item: 'ManagementToken', secretArn: p.secrets.ManagementToken },
    { item: 'AgentToken', secretArn: p.secrets.AgentToken },
    ...p.scopedTokens.map((t) => ({ item: `ScopedToken:${t.role}`, secretArn: t.secretArn })),
  ];
  for (const token of tokens) {
    await reconcileSimple(store, token.item, token.secretArn, ['AccessorID', 'SecretID'], isToken, () => ({ AccessorID: crypto.randomUUID(), SecretID: crypto.randomUUID() }));
  }
  return new crypto.X509Certificate(ca.certificatePem).fingerprint256;
}

/**
 * The CA. Writes the key before the certificate, so an interrupted run leaves at worst a key without a certificate,
 * which the next run completes with a new certificate for the same key (server certificates it signed stay valid).
 * Only when the key itself is missing or unusable is a new CA generated.
 */
async function reconcileCa(store: SecretStore, p: Properties): Promise<CertificateAndKey> {
  const keyArn = p.secrets.CaPrivateKey;
  const certArn = p.secrets.CaCertificate;
  const commonName = `lambda-mesh Consul CA ${p.datacenter}`;
  const rawKey = await store.read('CaPrivateKey', keyArn);
  const rawCert = await store.read('CaCertificate', certArn);
  const storedKey = parseJson(rawKey, ['PrivateKeyPem']);
  const storedCert = parseJson(rawCert, ['CertificatePem']);
  const privateKey = storedKey ? tryParse(() => crypto.createPrivateKey(storedKey.PrivateKeyPem)) : undefined;
  const certificate = storedCert ? tryParse(() => new crypto.X509Certificate(storedCert.CertificatePem)) : undefined;

  if (!storedKey || !privateKey || privateKey.asymmetricKeyType !== 'ec') {
    const ca = createCa({ commonName, validityDays: CA_VALIDITY_DAYS });
    const reason = rawKey === undefined ? 'no value yet' : 'existing value is not an EC private key';
    await store.write('CaPrivateKey', keyArn, { PrivateKeyPem: ca.privateKeyPem }, 'generated', reason);
    await store.write('CaCertificate', certArn, { CertificatePem: ca.certificatePem }, 'generated', 'new CA key');
    return ca;
  }
  log({ action: 'kept', item: 'CaPrivateKey', secretArn: keyArn });
  if (storedCert && certificate && certificate.ca && certificate.checkPrivateKey(privateKey) && certificate.verify(certificate.publicKey)) {
    log({ action: 'kept', item: 'CaCertificate', secretArn: certArn });
    return { certificatePem: storedCert.CertificatePem, privateKeyPem: storedKey.PrivateKeyPem };
  }
  const ca = recreateCaCertificate({ commonName, validityDays: CA_VALIDITY_DAYS, privateKeyPem: storedKey.PrivateKeyPem });
  const reason = rawCert === undefined ? 'no value yet' : 'existing value is not a CA certificate for the stored CA key';
  await store.write('CaCertificate', certArn, { CertificatePem: ca.certificatePem }, 'generated', reason);
  return ca;
}

/** The server certificate: kept while it is signed by the CA, names exactly the wanted SANs and is not expiring. */
async function reconcileServerCertificate(store: SecretStore, p: Properties, ca: CertificateAndKey): Promise<void> {
  const arn = p.secrets.ServerCertificate;
  const serverName = `server.${p.datacenter}.consul`;
  const dnsNames = [serverName, 'localhost'];
  const ipAddresses = ['127.0.0.1'];
  const raw = await store.read('ServerCertificate', arn);
  const stored = parseJson(raw, ['CertificatePem', 'PrivateKeyPem']);
  // Half the lifetime when that is shorter: short-lived certificates would otherwise be reissued on every run,
  // and a retried Create must change nothing.
  const renewBeforeMs = Math.min(SERVER_CERTIFICATE_RENEW_BEFORE_DAYS, p.serverCertificateValidityDays / 2) * DAY_MS;
  const problem = stored === undefined
    ? (raw === undefined ? undefined : 'existing value is not in the expected format')
    : serverCertificateProblem(stored, ca, dnsNames, ipAddresses, renewBeforeMs);
  if (stored !== undefined && problem === undefined) {
    log({ action: 'kept', item: 'ServerCertificate', secretArn: arn });
    return;
  }
  const issued = createServerCertificate({ ca, commonName: serverName, dnsNames, ipAddresses, validityDays: p.serverCertificateValidityDays });
  const value = { CertificatePem: issued.certificatePem, PrivateKeyPem: issued.privateKeyPem };
  await store.write('ServerCertificate', arn, value, raw === undefined ? 'generated' : 'reissued', problem ?? 'no value yet');
}

/** Why a stored server certificate must be reissued, or undefined when it is fine. Never includes key material. */
function serverCertificateProblem(
  stored: Record<'CertificatePem' | 'PrivateKeyPem', string>,
  ca: CertificateAndKey,
  dnsNames: readonly string[],
  ipAddresses: readonly string[],
  renewBeforeMs: number,
): string | undefined {
  const certificate = tryParse(() => new crypto.X509Certificate(stored.CertificatePem));
  const key = tryParse(() => crypto.createPrivateKey(stored.PrivateKeyPem));
  if (!certificate || !key) {
    return 'existing value is not a certificate and key';
  }
  if (!certificate.checkPrivateKey(key)) {
    return 'the private key does not match the certificate';
  }
  const caCertificate = new crypto.X509Certificate(ca.certificatePem);
  // checkIssued: "this certificate was issued by the argument" (names and key identifiers); verify: the signature.
  if (!certificate.checkIssued(caCertificate) || !certificate.verify(caCertificate.publicKey)) {
    return 'not signed by the current CA';
  }
  if (!sameSubjectAltNames(certificate, dnsNames, ipAddresses)) {
    return `subject alternative names are not exactly DNS:${dnsNames.join(', DNS:')}, IP:${ipAddresses.join(', IP:')}`;
  }
  const expiresAt = Date.parse(certificate.validTo);
  if (!(expiresAt - Date.now() > renewBeforeMs)) {
    return `expires ${new Date(expiresAt).toISOString()}, within ${Math.round(renewBeforeMs / DAY_MS)} days`;
  }
  return undefined;
}

/** Compares the certificate's SANs with the wanted ones as sets (IPs by their octets, so any textual form matches). */
function sameSubjectAltNames(certificate: crypto.X509Certificate, dnsNames: readonly string[], ipAddresses: readonly string[]): boolean {
  const actual = new Set<string>();
  // Node renders the extension as OpenSSL does: `DNS:a, DNS:b, IP Address:127.0.0.1`.
  for (const entry of (certificate.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) {
      actual.add(`dns:${entry.slice(4).toLowerCase()}`);
    } else if (entry.startsWith('IP Address:')) {
      const octets = tryParse(() => ipAddressOctets(entry.slice('IP Address:'.length)));
      actual.add(octets ? `ip:${octets.toString('hex')}` : `other:${entry}`);
    } else if (entry !== '') {
      actual.add(`other:${entry}`);
    }
  }
  const wanted = new Set([...dnsNames.map((d) => `dns:${d.toLowerCase()}`), ...ipAddresses.map((ip) => `ip:${ipAddressOctets(ip).toString('hex')}`)]);
  return actual.size === wanted.size && [...wanted].every((w) => actual.has(w));
}

/** A secret whose whole value is generated at once: kept when it parses and passes `isValid`. */
async function reconcileSimple<K extends string>(
  store: SecretStore,
  item: string,
  arn: string,
  keys: readonly K[],
  isValid: (value: Record<K, string>) => boolean,
  generate: () => Record<K, string>,
): Promise<void> {
  const raw = await store.read(item, arn);
  const stored = parseJson(raw, keys);
  if (stored && isValid(stored)) {
    log({ action: 'kept', item, secretArn: arn });
    return;
  }
  await store.write(item, arn, generate(), 'generated', raw === undefined ? 'no value yet' : 'existing value is not in the expected format');
}

function isGossipKey(value: Record<'GossipKey', string>): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(value.GossipKey) && Buffer.from(value.GossipKey, 'base64').length === 32;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function isToken(value: Record<'AccessorID' | 'SecretID', string>): boolean {
  // Consul accepts any UUID for a token; these are checked as UUIDs, not as v4, so a hand-set token is kept.
  return UUID.test(value.AccessorID) && UUID.test(value.SecretID) && value.AccessorID !== value.SecretID;
}

/**
 * Parses a secret's JSON, which must be an object with exactly `keys`, each a string. Returns undefined for anything
 * else, without the parser's message: `JSON.parse` errors quote the input, and the input is a secret.
 */
function parseJson<K extends string>(raw: string | undefined, keys: readonly K[]): Record<K, string> | undefined {
  if (raw === undefined) {
    return undefined;
  }
  const parsed = tryParse((): unknown => JSON.parse(raw));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return undefined;
  }
  const record = parsed as Record<string, unknown>;
  const actualKeys = Object.keys(record);
  if (actualKeys.length !== keys.length || !keys.every((k) => typeof record[k] === 'string')) {
    return undefined;
  }
  return record as Record<K, string>;
}

/** Runs a parser whose errors may quote secret material, and turns any failure into undefined. */
function tryParse<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}

/** Reads and writes secrets, turning SDK errors into messages that name the item and the secret ARN. */
class SecretStore {
  public constructor(private readonly client: SecretsManagerClient) {}

  /** The current string value, or undefined when the secret has none yet (created empty by the stack). */
  public async read(item: string, secretArn: string): Promise<string | undefined> {
    try {
      const response = await this.client.send(new GetSecretValueCommand({ SecretId: secretArn }));
      // A binary secret is not one of ours: treated as a value in the wrong format, so it is replaced.
      return response.SecretString ?? '';
    } catch (e) {
      // Both "no AWSCURRENT version" (an empty secret) and "no such secret" come back as ResourceNotFoundException;
      // for a missing secret the PutSecretValue that follows fails with a message naming it.
      // Matched by name, not instanceof: robust to a bundle that ends up with its own copy of the SDK.
      if (e instanceof Error && e.name === 'ResourceNotFoundException') {
        return undefined;
      }
      throw new Error(`${item}: GetSecretValue on ${secretArn} failed: ${describeError(e)}`, { cause: e });
    }
  }

  public async write(item: string, secretArn: string, value: Record<string, string>, action: 'generated' | 'reissued', reason: string): Promise<void> {
    try {
      // ClientRequestToken is left to the SDK (a fresh UUID, retried with the same one), so its own retries are idempotent.
      await this.client.send(new PutSecretValueCommand({ SecretId: secretArn, SecretString: JSON.stringify(value) }));
    } catch (e) {
      throw new Error(`${item}: PutSecretValue on ${secretArn} failed: ${describeError(e)}`, { cause: e });
    }
    log({ action, item, secretArn, reason });
  }
}

/** The SDK error's name (the service's `__type`, e.g. AccessDeniedException) and message. */
function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** Validates the resource properties; errors say which property and what was expected. */
export function parseProperties(raw: Readonly<Record<string, unknown>>): Properties {
  const datacenter = raw.Datacenter;
  if (typeof datacenter !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(datacenter)) {
    throw new Error(`Datacenter must be a DNS-1123 label (lowercase letters, digits, '-'), got ${JSON.stringify(datacenter)}`);
  }
  const validity = raw.ServerCertificateValidityDays;
  const validityText = typeof validity === 'number' ? String(validity) : validity;
  const validityDays = typeof validityText === 'string' && /^\d{1,4}$/.test(validityText) ? Number(validityText) : NaN;
  if (!(validityDays >= 1 && validityDays <= CA_VALIDITY_DAYS)) {
    throw new Error(`ServerCertificateValidityDays must be a whole number of days from 1 to ${CA_VALIDITY_DAYS}, got ${JSON.stringify(validity)}`);
  }
  const secretsRaw = raw.Secrets;
  if (typeof secretsRaw !== 'object' || secretsRaw === null) {
    throw new Error(`Secrets must be an object with ${SECRET_ITEMS.join(', ')}`);
  }
  const secretsRecord = secretsRaw as Record<string, unknown>;
  const secrets = {} as Record<SecretItem, string>;
  for (const item of SECRET_ITEMS) {
    secrets[item] = secretArn(`Secrets.${item}`, secretsRecord[item]);
  }
  const scopedRaw = raw.ScopedTokens ?? {};
  if (typeof scopedRaw !== 'object' || scopedRaw === null || Array.isArray(scopedRaw)) {
    throw new Error('ScopedTokens must be an object of role name to secret ARN');
  }
  const scopedTokens = Object.entries(scopedRaw as Record<string, unknown>).map(([role, arn]) => {
    if (!/^[A-Za-z0-9_.-]{1,128}$/.test(role)) {
      throw new Error(`ScopedTokens: ${JSON.stringify(role)} is not a valid role name`);
    }
    return { role, secretArn: secretArn(`ScopedTokens.${role}`, arn) };
  });
  // One secret holding two items would have each run overwrite the other's value.
  const seen = new Map<string, string>();
  for (const [name, arn] of [...SECRET_ITEMS.map((i) => [i, secrets[i]] as const), ...scopedTokens.map((t) => [`ScopedTokens.${t.role}`, t.secretArn] as const)]) {
    const other = seen.get(arn);
    if (other !== undefined) {
      throw new Error(`${other} and ${name} are the same secret (${arn}): each item needs its own secret`);
    }
    seen.set(arn, name);
  }
  return { datacenter, serverCertificateValidityDays: validityDays, secrets, scopedTokens };
}

function secretArn(property: string, value: unknown): string {
  if (typeof value !== 'string' || !/^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:.+$/.test(value)) {
    throw new Error(`${property} must be a Secrets Manager secret ARN, got ${JSON.stringify(value)}`);
  }
  return value;
}
