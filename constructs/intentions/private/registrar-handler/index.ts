/**
 * The handler of the mesh's identity registrar custom resource. It makes every Lambda function version of the mesh
 * a Consul identity, and gives each one the bundle the Lambda extension reads at start-up:
 *
 * 1. registers the identity as a service on one external catalog node per mesh (no agent runs for a function);
 * 2. fetches the Consul CA roots and a leaf certificate for the identity (SPIFFE ID `.../svc/<identity>`);
 * 3. writes `{"privateKeyPEM","certPEM","rootCertPEM","trustDomain","peers"}` to the SecureString parameter
 *    `<ParameterPrefix>/<partition>/<namespace>/<identity>`, encrypted with the mesh's KMS key: the format and path
 *    of HashiCorp's Consul Lambda registrator, so the `consul-lambda-extension` layer reads it unchanged.
 *
 * Create and Update run the same full sync: every identity in the properties is registered (a no-op when the catalog
 * already has it exactly) and its bundle is brought up to date with what Consul issues now, including identities
 * registered by an earlier deployment (HashiCorp's registrator only wrote certificates for new functions, so a full
 * sync left the others to expire). Identities that an Update removes (compared with `OldResourceProperties`) are
 * deregistered and their parameters deleted, after the new ones are in place. Delete removes everything the
 * properties name. Certificates then stay fresh through the rotation function (../rotation-handler).
 *
 * Never logged or put in an error: a private key, a certificate, the ACL token. Logged: identity names, parameter
 * names, certificate serial numbers and validity, actions and reasons.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime.
 *
 * @see https://developer.hashicorp.com/consul/docs/lambda/registration/automate
 * @see https://github.com/hashicorp/terraform-aws-consul-lambda/blob/main/consul-lambda/structs/ext_data.go
 * @see https://developer.hashicorp.com/consul/api-docs/catalog#register-entity
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect#service-leaf-certificate
 */
import * as crypto from 'crypto';
import { DeleteParameterCommand, GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DNS_1123_LABEL } from '../../../core/names';
import { log } from '../../../core/private/handler-log';
import type { CustomResourceEvent, CustomResourceResult } from '../../../core/private/cfn-response';
import type { ConsulApi, ConsulResponse } from '../consul-api';
import { connectionFromSecrets, consulClient } from '../consul-client';

/** What a handler needs from outside: injected by tests, built from the environment in Lambda. */
export interface RegistrarDependencies {
  readonly consul: ConsulApi;
  readonly ssm: SSMClient;
}

/** The catalog tag on every identity this handler registers. */
export const SERVICE_TAG = 'lambda-mesh';

/**
 * The address of the external node. The catalog requires one, and nothing ever dials it: a function identity only
 * originates connections (through its Lambda extension), it is never an upstream. A loopback address makes any
 * accidental route to it fail locally instead of reaching some host.
 */
export const NODE_ADDRESS = '127.0.0.1';

/**
 * The node's metadata: `external-node` marks a node without an agent (Consul's anti-entropy leaves it alone);
 * `external-probe: false` tells Consul ESM not to probe it, since a function has no address to probe.
 *
 * @see https://developer.hashicorp.com/consul/tutorials/connect-services/service-registration-external-services
 */
export const NODE_META: Readonly<Record<string, string>> = { 'external-node': 'true', 'external-probe': 'false' };

/**
 * SSM Parameter Store limits.
 *
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html (name: at most 1011
 *   characters counting the ARN prefix before it, e.g. the 45 of `arn:aws:ssm:us-east-2:111122223333:parameter/`;
 *   hierarchies at most 15 levels; `a-zA-Z0-9_.-` and `/`; not prefixed with `aws` or `ssm`)
 * @see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
 *   (value: 4 KB standard, 8 KB advanced; an advanced parameter cannot go back to standard)
 */
export const SSM_LIMITS = {
  maxNameLengthWithArn: 1011,
  maxHierarchyLevels: 15,
  standardValueBytes: 4096,
  advancedValueBytes: 8192,
} as const;

/** The parameter tier a value needs: Advanced only above the standard tier's 4 KB. */
export type ParameterTierName = 'Standard' | 'Advanced';

/** One function version of the mesh, as the construct passes it. */
export interface IdentityInput {
  /** The identity (Consul service) name, `<function>-<version>`. */
  readonly name: string;
  readonly functionName: string;
  readonly version: string;
}

/** Where identities live in Consul. */
export interface ConsulScope {
  readonly partition: string;
  readonly namespace: string;
}

/** The validated resource properties. */
export interface RegistrarProperties extends ConsulScope {
  readonly identities: readonly IdentityInput[];
  readonly parameterPrefix: string;
  readonly datacenter: string;
  readonly kmsKeyId: string;
  readonly nodeName: string;
}

/**
 * Handles one lifecycle event. Throws (and the entry point reports FAILED) on any error. `StackId` (optional) locates
 * the parameters' ARNs; `Data.TrustDomain` (Create and Update only): the Consul CA's SPIFFE trust domain.
 */
export async function handler(event: CustomResourceEvent, deps?: RegistrarDependencies): Promise<CustomResourceResult<{ readonly TrustDomain: string }>> {
  if (event.RequestType !== 'Create' && event.RequestType !== 'Update' && event.RequestType !== 'Delete') {
    throw new Error(`unknown RequestType ${JSON.stringify(event.RequestType)}`);
  }
  const arnPrefix = parameterArnPrefix(event.StackId);
  if (event.RequestType === 'Delete') {
    let properties: RegistrarProperties;
    try {
      properties = parseProperties(event.ResourceProperties, arnPrefix);
    } catch (e) {
      // Nothing can have been registered with properties that never validated (a Create that failed on them).
      log({ action: 'none', requestType: 'Delete', reason: `invalid properties: ${errorMessage(e)}` });
      return { PhysicalResourceId: event.PhysicalResourceId ?? physicalResourceId(event.ResourceProperties) };
    }
    const d = deps ?? (await defaultDependencies());
    await removeAll(d, properties, properties.identities.map((i) => i.name));
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalResourceId(event.ResourceProperties) };
  }

  // Validated before anything is called: a path SSM would refuse fails the deployment with a message naming it.
  const properties = parseProperties(event.ResourceProperties, arnPrefix);
  const old = event.RequestType === 'Update' ? tryParseOld(event.OldResourceProperties, arnPrefix) : undefined;
  const d = deps ?? (await defaultDependencies());
  const trustDomain = await sync(d, properties, old);
  const id = event.RequestType === 'Update' && event.PhysicalResourceId ? event.PhysicalResourceId : physicalResourceId(event.ResourceProperties);
  return { PhysicalResourceId: id, Data: { TrustDomain: trustDomain } };
}

/** The Consul client from the function's environment (the CONSUL_* variables), and an SSM client. */
async function defaultDependencies(): Promise<RegistrarDependencies> {
  return { consul: consulClient(await connectionFromSecrets()), ssm: newSsmClient() };
}

/**
 * An SSM client with the default credential, region and endpoint resolution (AWS_ENDPOINT_URL_SSM included), and
 * timeouts, because the SDK has none: an unreachable endpoint must fail within the function's timeout.
 */
export function newSsmClient(): SSMClient {
  return new SSMClient({ requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 } });
}

/** Stable across Updates: the construct never changes it, so CloudFormation never replaces (and deletes) it. */
function physicalResourceId(raw: Readonly<Record<string, unknown>>): string {
  return typeof raw.NodeName === 'string' && raw.NodeName !== '' ? `identities:${raw.NodeName}` : 'identities';
}

/** Registers every identity, writes every bundle, then removes what the old properties had and the new ones lack. */
async function sync(deps: RegistrarDependencies, p: RegistrarProperties, old: RegistrarProperties | undefined): Promise<string> {
  const roots = await fetchRoots(deps.consul);
  const store = new ParameterStore(deps.ssm, p.kmsKeyId);
  // A new key must re-encrypt every bundle, even one whose value is unchanged.
  const forceWrite = old !== undefined && old.kmsKeyId !== p.kmsKeyId;
  for (const identity of p.identities) {
    await forIdentity(identity.name, async () => {
      await ensureRegistered(deps.consul, p, identity);
      const name = parameterName(p, identity.name);
      const leaf = await fetchLeaf(deps.consul, p, identity.name);
      const value = serializeBundle(bundleOf(leaf, roots));
      const stored = forceWrite ? undefined : await store.read(name, identity.name);
      if (stored === value) {
        log({ action: 'kept', identity: identity.name, parameter: name, serial: leaf.serialNumber, validBefore: leaf.validBefore.toISOString() });
        return;
      }
      const tier = await store.write(name, identity.name, value);
      log({
        action: 'written',
        identity: identity.name,
        parameter: name,
        tier,
        serial: leaf.serialNumber,
        validBefore: leaf.validBefore.toISOString(),
        reason: stored === undefined ? (forceWrite ? 'new KMS key' : 'no bundle yet') : 'bundle out of date',
      });
    });
  }
  if (old) {
    const keptRegistrations = new Set(p.identities.map((i) => registrationKey(p, i.name)));
    const keptParameters = new Set(p.identities.map((i) => parameterName(p, i.name)));
    for (const identity of old.identities) {
      await forIdentity(identity.name, async () => {
        if (!keptRegistrations.has(registrationKey(old, identity.name))) {
          await deregister(deps.consul, old, identity.name);
        }
        const name = parameterName(old, identity.name);
        if (!keptParameters.has(name)) {
          await new ParameterStore(deps.ssm, old.kmsKeyId).delete(name, identity.name);
        }
      });
    }
  }
  return roots.trustDomain;
}

/** Delete: deregisters every named identity and deletes its parameter; both are no-ops when already gone. */
async function removeAll(deps: RegistrarDependencies, p: RegistrarProperties, names: readonly string[]): Promise<void> {
  const store = new ParameterStore(deps.ssm, p.kmsKeyId);
  for (const name of names) {
    await forIdentity(name, async () => {
      await deregister(deps.consul, p, name);
      await store.delete(parameterName(p, name), name);
    });
  }
}

/** Runs one identity's steps; an error is rethrown with the identity's name in front (unless it already has it). */
async function forIdentity(identity: string, steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (e) {
    const message = errorMessage(e);
    throw message.startsWith(`${identity}: `) ? e : new Error(`${identity}: ${message}`, { cause: e });
  }
}

/** Everything that identifies one catalog registration: an Update may move identities to another node or scope. */
function registrationKey(p: RegistrarProperties, identity: string): string {
  return JSON.stringify([p.datacenter, p.partition, p.namespace, p.nodeName, identity]);
}

// ---------------------------------------------------------------------------------------------------------------
// Consul.
// ---------------------------------------------------------------------------------------------------------------

/** The CA roots, reduced to what a bundle carries. */
export interface CaRoots {
  readonly trustDomain: string;
  /** The active root first, then any other root Consul still trusts (during a CA rotation), PEM, one per block. */
  readonly rootCertPEM: string;
}

/** A leaf certificate as `/v1/agent/connect/ca/leaf/:service` returns it. Holds key material: never log it whole. */
export interface Leaf {
  readonly certPEM: string;
  readonly privateKeyPEM: string;
  readonly serialNumber: string;
  readonly validAfter: Date;
  readonly validBefore: Date;
}

/**
 * Fetches the CA roots. All roots are kept, active first: during a CA rotation, Consul still lists the old root
 * while certificates it signed are in use, and the extension builds its pool with `AppendCertsFromPEM`, which takes
 * several certificates.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect#certificate-authority-ca-roots
 */
export async function fetchRoots(consul: ConsulApi): Promise<CaRoots> {
  const path = '/v1/agent/connect/ca/roots';
  const body = record(expectOk(await consul.get(path), 'GET', path).body, `GET ${path}`);
  const trustDomain = body.TrustDomain;
  const roots = body.Roots;
  if (typeof trustDomain !== 'string' || trustDomain === '' || !Array.isArray(roots) || roots.length === 0) {
    throw new Error(`GET ${path}: no CA roots yet (is service mesh enabled on the servers?)`);
  }
  const pems = roots
    .map((r) => record(r, `GET ${path}: Roots[]`))
    .sort((a, b) => Number(b.ID === body.ActiveRootID) - Number(a.ID === body.ActiveRootID))
    .map((r) => (typeof r.RootCert === 'string' ? r.RootCert.trim() : ''));
  if (pems.some((pem) => !pem.startsWith('-----BEGIN CERTIFICATE-----'))) {
    throw new Error(`GET ${path}: a root has no RootCert PEM`);
  }
  return { trustDomain, rootCertPEM: `${pems.join('\n')}\n` };
}

/**
 * Fetches the identity's leaf certificate. A plain (non-blocking) GET: Consul returns the leaf it holds for the
 * service, after checking it is signed by the active CA, and issues a new one once the held one is past a random
 * point between 60% and 90% of its lifetime (immediately past 90%). There is no parameter that forces a new one;
 * a blocking query (`?index=`) only waits for that point.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect#service-leaf-certificate
 * @see https://github.com/hashicorp/consul/blob/main/agent/leafcert/util.go (calculateSoftExpiry)
 */
export async function fetchLeaf(consul: ConsulApi, scope: ConsulScope, identity: string): Promise<Leaf> {
  const path = `/v1/agent/connect/ca/leaf/${encodeURIComponent(identity)}${query(scope, {})}`;
  const body = record(expectOk(await consul.get(path), 'GET', path).body, `GET ${path}`);
  const certPEM = body.CertPEM;
  const privateKeyPEM = body.PrivateKeyPEM;
  if (typeof certPEM !== 'string' || typeof privateKeyPEM !== 'string') {
    throw new Error(`GET ${path}: the response has no CertPEM and PrivateKeyPEM`);
  }
  // Validity and serial from the certificate itself, which is what TLS peers check.
  const certificate = tryParse(() => new crypto.X509Certificate(certPEM));
  if (!certificate) {
    throw new Error(`GET ${path}: CertPEM is not a certificate`);
  }
  return {
    certPEM,
    privateKeyPEM,
    serialNumber: formatSerial(certificate.serialNumber),
    validAfter: new Date(certificate.validFrom),
    validBefore: new Date(certificate.validTo),
  };
}

/**
 * Registers the identity on the mesh's external node, unless the catalog already has exactly this registration.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/catalog#register-entity
 */
async function ensureRegistered(consul: ConsulApi, p: RegistrarProperties, identity: IdentityInput): Promise<void> {
  const meta = { 'lambda-mesh-function': identity.functionName, 'lambda-mesh-version': identity.version };
  const lookup = `/v1/catalog/service/${encodeURIComponent(identity.name)}${query(p, { dc: p.datacenter })}`;
  const existing = expectOk(await consul.get(lookup), 'GET', lookup, [404]).body;
  const entries = Array.isArray(existing) ? existing.map((e) => record(e, `GET ${lookup}: []`)) : [];
  const current = entries.find((e) => e.Node === p.nodeName && e.ServiceID === identity.name);
  if (
    current &&
    current.Address === NODE_ADDRESS &&
    sameStrings(current.ServiceTags, [SERVICE_TAG]) &&
    sameRecord(current.ServiceMeta, meta) &&
    sameRecord(current.NodeMeta, NODE_META)
  ) {
    log({ action: 'kept', identity: identity.name, node: p.nodeName, reason: 'already registered' });
    return;
  }
  const path = '/v1/catalog/register';
  expectOk(
    await consul.put(path, {
      Datacenter: p.datacenter,
      ...scopeFields(p, 'Partition'),
      Node: p.nodeName,
      Address: NODE_ADDRESS,
      NodeMeta: NODE_META,
      Service: {
        ID: identity.name,
        Service: identity.name,
        Tags: [SERVICE_TAG],
        Meta: meta,
        ...scopeFields(p, 'Namespace'),
      },
    }),
    'PUT',
    `${path} (${identity.name})`,
  );
  log({ action: current ? 'updated' : 'registered', identity: identity.name, node: p.nodeName });
}

/**
 * Removes the identity's registration from the node. Consul answers 200 when there is nothing to remove.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/catalog#deregister-entity
 */
async function deregister(consul: ConsulApi, p: RegistrarProperties, identity: string): Promise<void> {
  const path = '/v1/catalog/deregister';
  expectOk(
    await consul.put(path, { Datacenter: p.datacenter, ...scopeFields(p, 'Partition'), ...scopeFields(p, 'Namespace'), Node: p.nodeName, ServiceID: identity }),
    'PUT',
    `${path} (${identity})`,
    [404],
  );
  log({ action: 'deregistered', identity, node: p.nodeName });
}

/**
 * The scope as query parameters. `partition` and `ns` only when not `default`: Consul CE rejects them otherwise,
 * and `default` is what both editions assume without them.
 */
export function query(scope: ConsulScope, extra: Readonly<Record<string, string>>): string {
  const params = new URLSearchParams(extra);
  if (scope.partition !== 'default') {
    params.set('partition', scope.partition);
  }
  if (scope.namespace !== 'default') {
    params.set('ns', scope.namespace);
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

function scopeFields(scope: ConsulScope, field: 'Partition' | 'Namespace'): Record<string, string> {
  const value = field === 'Partition' ? scope.partition : scope.namespace;
  return value === 'default' ? {} : { [field]: value };
}

/**
 * Throws on a status that is not 2xx (or one of `allowed`), with the method and path and Consul's message (a short
 * text such as `Permission denied`; never the token, which only travels in a header).
 */
export function expectOk(response: ConsulResponse, method: string, path: string, allowed: readonly number[] = []): ConsulResponse {
  if ((response.status >= 200 && response.status < 300) || allowed.includes(response.status)) {
    return response;
  }
  const detail = typeof response.body === 'string' && response.body.trim() !== '' ? `: ${response.body.trim().slice(0, 300)}` : '';
  const hint = response.status === 403 ? ' (the ACL token lacks a permission, or is not valid)' : '';
  throw new Error(`Consul ${method} ${path} failed with HTTP ${response.status}${hint}${detail}`);
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: expected a JSON object`);
  }
  return value as Record<string, unknown>;
}

function sameStrings(actual: unknown, wanted: readonly string[]): boolean {
  return Array.isArray(actual) && actual.length === wanted.length && wanted.every((w, i) => actual[i] === w);
}

function sameRecord(actual: unknown, wanted: Readonly<Record<string, string>>): boolean {
  if (typeof actual !== 'object' || actual === null) {
    return false;
  }
  const a = actual as Record<string, unknown>;
  return Object.keys(a).length === Object.keys(wanted).length && Object.entries(wanted).every(([k, v]) => a[k] === v);
}

// ---------------------------------------------------------------------------------------------------------------
// The bundle and its parameter.
// ---------------------------------------------------------------------------------------------------------------

/** A cluster peer the extension may reach; lambda-mesh does not use cluster peering, so the list is always empty. */
export interface Peer {
  readonly name: string;
  readonly trustDomain: string;
}

/**
 * What the Consul Lambda extension reads (`structs.ExtensionData` of terraform-aws-consul-lambda). Key material:
 * never log it.
 */
export interface IdentityBundle {
  readonly privateKeyPEM: string;
  readonly certPEM: string;
  readonly rootCertPEM: string;
  readonly trustDomain: string;
  /** Always `[]` here (upstream omits the key when empty; the extension decodes both the same). */
  readonly peers: readonly Peer[];
}

export function bundleOf(leaf: Leaf, roots: CaRoots): IdentityBundle {
  return { privateKeyPEM: leaf.privateKeyPEM, certPEM: leaf.certPEM, rootCertPEM: roots.rootCertPEM, trustDomain: roots.trustDomain, peers: [] };
}

/** The parameter value: the bundle's keys in the upstream order, so equal bundles serialize equally. */
export function serializeBundle(b: IdentityBundle): string {
  return JSON.stringify({ privateKeyPEM: b.privateKeyPEM, certPEM: b.certPEM, rootCertPEM: b.rootCertPEM, trustDomain: b.trustDomain, peers: b.peers });
}

/** `<prefix>/<partition>/<namespace>/<identity>`: the registrator's `ExtensionPath()` under the mesh's prefix. */
export function parameterName(p: { readonly parameterPrefix: string } & ConsulScope, identity: string): string {
  return `${p.parameterPrefix}/${p.partition}/${p.namespace}/${identity}`;
}

/** Standard up to 4096 bytes, Advanced above; throws above the Advanced tier's 8 KB. */
export function parameterTier(value: string, identity: string): ParameterTierName {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > SSM_LIMITS.advancedValueBytes) {
    throw new Error(`${identity}: the bundle is ${bytes} bytes, more than an SSM parameter holds (${SSM_LIMITS.advancedValueBytes} bytes, Advanced tier)`);
  }
  return bytes > SSM_LIMITS.standardValueBytes ? 'Advanced' : 'Standard';
}

/** Reads, writes and deletes bundle parameters; errors name the identity, the operation and the parameter. */
export class ParameterStore {
  public constructor(
    private readonly client: SSMClient,
    private readonly kmsKeyId: string,
  ) {}

  /** The decrypted value, or undefined when the parameter does not exist. */
  public async read(name: string, identity: string): Promise<string | undefined> {
    try {
      const response = await this.client.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
      return response.Parameter?.Value;
    } catch (e) {
      // Matched by name, not instanceof: robust to a bundle with its own copy of the SDK.
      if (e instanceof Error && e.name === 'ParameterNotFound') {
        return undefined;
      }
      throw new Error(`${identity}: GetParameter on ${name} failed: ${describeError(e)}`, { cause: e });
    }
  }

  /**
   * Writes the value as a SecureString with the mesh's key, replacing any earlier value. Returns the tier used:
   * Standard when the value fits, unless the parameter is already Advanced (SSM refuses to downgrade a parameter, and
   * deleting it to recreate it would leave functions starting in between without a certificate).
   */
  public async write(name: string, identity: string, value: string): Promise<ParameterTierName> {
    const tier = parameterTier(value, identity);
    try {
      await this.put(name, value, tier);
      return tier;
    } catch (e) {
      if (tier === 'Standard' && e instanceof Error && e.name === 'ValidationException' && /downgrade/i.test(e.message)) {
        await this.put(name, value, 'Advanced').catch((again: unknown) => {
          throw new Error(`${identity}: PutParameter on ${name} failed: ${describeError(again)}`, { cause: again });
        });
        return 'Advanced';
      }
      throw new Error(`${identity}: PutParameter on ${name} failed: ${describeError(e)}`, { cause: e });
    }
  }

  /** Deletes the parameter; true when it existed. */
  public async delete(name: string, identity: string): Promise<boolean> {
    try {
      await this.client.send(new DeleteParameterCommand({ Name: name }));
      log({ action: 'deleted', identity, parameter: name });
      return true;
    } catch (e) {
      if (e instanceof Error && e.name === 'ParameterNotFound') {
        log({ action: 'none', identity, parameter: name, reason: 'parameter already gone' });
        return false;
      }
      throw new Error(`${identity}: DeleteParameter on ${name} failed: ${describeError(e)}`, { cause: e });
    }
  }

  private async put(name: string, value: string, tier: ParameterTierName): Promise<void> {
    await this.client.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString', KeyId: this.kmsKeyId, Overwrite: true, Tier: tier }));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------------------------

/**
 * The part of a parameter's ARN before its name, which counts towards SSM's 1011-character limit:
 * `arn:<partition>:ssm:<region>:<account>:parameter`, from the stack's ARN. Without one (a test, a hand-made event)
 * it assumes the longest partition, region and account there are, so a name that passes fits everywhere.
 */
export function parameterArnPrefix(stackId: string | undefined): string {
  const match = /^arn:([^:]+):cloudformation:([^:]+):(\d{12}):stack\//.exec(stackId ?? '');
  if (match) {
    return `arn:${match[1]}:ssm:${match[2]}:${match[3]}:parameter`;
  }
  return `arn:aws-us-gov:ssm:${'x'.repeat(16)}:${'0'.repeat(12)}:parameter`;
}

/** Validates the resource properties; errors say which property and what was expected. */
export function parseProperties(raw: Readonly<Record<string, unknown>>, arnPrefix: string): RegistrarProperties {
  const label = (property: string): string => {
    const value = raw[property];
    if (typeof value !== 'string' || value.length > 63 || !DNS_1123_LABEL.test(value)) {
      throw new Error(`${property} must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63), got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const partition = label('Partition');
  const namespace = label('Namespace');
  const datacenter = label('Datacenter');

  const parameterPrefix = raw.ParameterPrefix;
  if (typeof parameterPrefix !== 'string' || !/^(\/[A-Za-z0-9_.-]+)+$/.test(parameterPrefix)) {
    throw new Error(`ParameterPrefix must be an SSM path like /lambda-mesh/<mesh> (segments of a-zA-Z0-9_.-, no trailing '/'), got ${JSON.stringify(parameterPrefix)}`);
  }
  if (/^\/?(aws|ssm)/i.test(parameterPrefix)) {
    throw new Error(`ParameterPrefix must not begin with "aws" or "ssm" (reserved by SSM), got ${JSON.stringify(parameterPrefix)}`);
  }
  const kmsKeyId = raw.KmsKeyId;
  if (typeof kmsKeyId !== 'string' || kmsKeyId.trim() === '') {
    throw new Error(`KmsKeyId must be a KMS key ID, key ARN or alias, got ${JSON.stringify(kmsKeyId)}`);
  }
  const nodeName = raw.NodeName;
  if (typeof nodeName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(nodeName)) {
    throw new Error(`NodeName must be a Consul node name (letters, digits, '_', '.', '-'), got ${JSON.stringify(nodeName)}`);
  }
  const identities = parseIdentities(raw.Identities);
  const p: RegistrarProperties = { identities, parameterPrefix, partition, namespace, datacenter, kmsKeyId, nodeName };
  for (const identity of identities) {
    checkParameterName(parameterName(p, identity.name), identity.name, arnPrefix);
  }
  return p;
}

/** The old properties of an Update, or undefined (with a log line) when they do not validate. */
function tryParseOld(raw: Readonly<Record<string, unknown>> | undefined, arnPrefix: string): RegistrarProperties | undefined {
  if (!raw) {
    return undefined;
  }
  try {
    return parseProperties(raw, arnPrefix);
  } catch (e) {
    log({ action: 'none', reason: `old properties are not valid, nothing is removed: ${errorMessage(e)}` });
    return undefined;
  }
}

function parseIdentities(raw: unknown): IdentityInput[] {
  // CloudFormation passes a list of objects as is, but the construct sends a JSON string (a token-free scalar).
  const parsed = typeof raw === 'string' ? tryParse((): unknown => JSON.parse(raw)) : undefined;
  if (!Array.isArray(parsed)) {
    throw new Error(`Identities must be a JSON array of {name, functionName, version}, got ${JSON.stringify(raw)?.slice(0, 200)}`);
  }
  const seen = new Set<string>();
  return parsed.map((item: unknown, index) => {
    const i = (typeof item === 'object' && item !== null ? item : {}) as Record<string, unknown>;
    if (typeof i.name !== 'string' || i.name.length > 63 || !DNS_1123_LABEL.test(i.name)) {
      throw new Error(`Identities[${index}].name must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63), got ${JSON.stringify(i.name)}`);
    }
    for (const field of ['functionName', 'version'] as const) {
      const value = i[field];
      if (typeof value !== 'string' || value === '' || value.length > 512) {
        throw new Error(`Identities[${index}].${field} (${i.name}) must be a string of 1 to 512 characters, got ${JSON.stringify(value)}`);
      }
    }
    if (seen.has(i.name)) {
      throw new Error(`Identities: ${i.name} appears more than once`);
    }
    seen.add(i.name);
    return { name: i.name, functionName: i.functionName as string, version: i.version as string };
  });
}

/** Checks a parameter name against SSM's documented limits, naming the identity and the path. */
export function checkParameterName(name: string, identity: string, arnPrefix: string): void {
  const levels = name.split('/').length - 1;
  if (levels > SSM_LIMITS.maxHierarchyLevels) {
    throw new Error(
      `${identity}: SSM parameter ${name} has ${levels} levels, more than SSM's ${SSM_LIMITS.maxHierarchyLevels}: use a ParameterPrefix with fewer '/'`,
    );
  }
  const withArn = arnPrefix.length + name.length;
  if (withArn > SSM_LIMITS.maxNameLengthWithArn) {
    throw new Error(
      `${identity}: SSM parameter ${name.slice(0, 80)}... is ${name.length} characters, ${withArn} with its ARN prefix ${arnPrefix}, ` +
        `more than SSM's ${SSM_LIMITS.maxNameLengthWithArn}: shorten the ParameterPrefix or the identity name`,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** A certificate serial as Consul writes it (`SerialNumber`: lower-case hex bytes joined by ':'), for logs. */
export function formatSerial(hex: string): string {
  const even = hex.length % 2 === 0 ? hex : `0${hex}`;
  return (even.toLowerCase().match(/../g) ?? []).join(':');
}

/** Runs a parser whose errors may quote its input, and turns any failure into undefined. */
export function tryParse<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}

/** The SDK error's name (the service's `__type`, e.g. AccessDeniedException) and message. */
export function describeError(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
