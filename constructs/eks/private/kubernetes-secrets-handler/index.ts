/**
 * The handler of the Kubernetes secrets custom resource: it copies values from Secrets Manager (the Consul CA
 * certificate, an ACL token) into Kubernetes Secrets of an EKS cluster, so the consul-k8s Helm chart finds them
 * (`global.tls.caCert.secretName`, `global.acls.bootstrapToken.secretName`) while no value ever appears in a
 * CloudFormation template, parameter or output.
 *
 * - Authentication: an EKS bearer token, made the way `aws eks get-token` (aws-iam-authenticator) makes it: `k8s-aws-v1.`
 *   and the unpadded base64url of an STS GetCallerIdentity URL presigned (SigV4) with the function's credentials, the
 *   signed header `x-k8s-aws-id` naming the cluster. EKS hands the URL to STS, which checks the signature with the
 *   cluster's name in that header: a token for another cluster is refused. The function's role needs an EKS access
 *   entry that may get, create, update and delete Secrets in the namespace; 401 and 403 are retried for a while (30
 *   s by default), since a new access entry takes a few seconds to apply, then fail saying so.
 * - TLS: the API server's certificate is verified against the cluster CA given in the properties, and nothing else.
 * - Ownership: every Secret it writes has the label `app.kubernetes.io/managed-by: lambda-mesh` and the annotation
 *   `lambda-mesh.io/owner: <Owner>`. A Secret of a wanted name without this owner's annotation fails the deployment
 *   before anything is written: it is never taken over or overwritten. An Update whose Owner changed (the construct
 *   moved) takes over the Secrets of the old owner, which the old properties show are this resource's.
 * - Writes: a Secret that is missing is created; one whose data differs from Secrets Manager (a rotated value, or a
 *   value changed in the cluster) is replaced with a PUT carrying the `metadata.resourceVersion` it was read at, so a
 *   concurrent writer's change is never lost silently: Kubernetes answers 409 Conflict, and the Secret is read and
 *   compared again, a few times at most. Idempotent: a run that finds the wanted data writes nothing.
 * - Update also deletes the Secrets the old properties named and the new ones do not (when they are this owner's); a
 *   new cluster or namespace is a new physical ID, so CloudFormation deletes the old ones with the old properties.
 *   Delete removes this owner's Secrets (DeleteOptions preconditions on uid and resourceVersion) and leaves others.
 * - No value is logged or put in an error message: log lines name Secrets, keys and outcomes, and whatever the API
 *   server answers is quoted with every value (and the bearer token) redacted.
 *
 * Runtime code: bundled by esbuild into the Lambda function, `@aws-sdk/*` left to the Lambda runtime. The SigV4
 * presigning is written here with node:crypto (about sixty lines) rather than bundled from `@smithy/signature-v4`, so
 * the bundle takes nothing from node_modules (what every library handler's bundle test checks); the test checks that
 * it presigns exactly what `@smithy/signature-v4` does.
 *
 * @see https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/
 * @see https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
 * @see https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
 * @see https://github.com/kubernetes-sigs/aws-iam-authenticator#api-authorization-from-outside-a-cluster
 * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import * as crypto from 'crypto';
import * as https from 'https';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { log } from '../../../core/private/handler-log';
import type { CustomResourceEvent, CustomResourceResult } from '../../../core/private/cfn-response';

/** The label every Secret this handler writes carries (with {@link MANAGED_BY}). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'lambda-mesh';
/** The annotation that names a Secret's owner: the resource's `Owner` property. */
export const OWNER_ANNOTATION = 'lambda-mesh.io/owner';

/** The prefix of an EKS (aws-iam-authenticator) bearer token. */
export const TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header the presigned URL signs, whose value is the cluster's name. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/**
 * `X-Amz-Expires` of the presigned URL, as aws-iam-authenticator sets it. STS ignores it (a presigned GetCallerIdentity
 * URL is valid 15 minutes after X-Amz-Date), and the authenticator accepts 0 to 900; a token is made for every request
 * here, so it never needs to last.
 */
export const TOKEN_EXPIRES_SECONDS = 60;

/** Tries of one write when Kubernetes answers 409 Conflict (or the Secret appears or disappears in between). */
export const CONFLICT_ATTEMPTS = 5;

/** AWS credentials, as the SDK's providers return them. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** What the handler needs from outside: in Lambda each comes from the environment; tests may replace any of them. */
export interface KubernetesSecretsDependencies {
  /**
   * Reads the SecretString of a Secrets Manager secret (undefined when it has no current value).
   * @default - GetSecretValue with the SDK's default configuration (AWS_ENDPOINT_URL_SECRETS_MANAGER included)
   */
  readonly readSecretString?: (secretArn: string) => Promise<string | undefined>;
  /**
   * The credentials that sign the EKS token.
   * @default - the SDK's default chain: the function's execution role
   */
  readonly credentials?: () => Promise<AwsCredentials>;
  /**
   * The region of the STS endpoint the token is presigned for (the cluster's).
   * @default - the SDK's default (AWS_REGION in Lambda)
   */
  readonly region?: string;
  /**
   * The clock the token is signed at.
   * @default - the system clock
   */
  readonly now?: () => Date;
  /**
   * The delay before the second try after a 409 Conflict or a retryable failure; it grows with each further one.
   * @default 100
   */
  readonly retryDelayMs?: number;
  /**
   * How long 401 Unauthorized and 403 Forbidden are retried (every 2 s, from the first one) before they fail the run:
   * an EKS access entry created just before this resource can take a few seconds to apply.
   * @default 30000
   */
  readonly authWaitMs?: number;
  /**
   * How long one HTTP request to the API server may take.
   * @default 10000
   */
  readonly timeoutMs?: number;
}

/** One data key of one Kubernetes Secret, and where its value comes from. */
export interface SecretMapping {
  /** The Kubernetes Secret's name. */
  readonly name: string;
  /** The data key in that Secret, e.g. `tls.crt` or `token`. */
  readonly key: string;
  /** The Secrets Manager secret whose SecretString is a JSON object... */
  readonly secretArn: string;
  /** ...and the string field of it that is the value, e.g. `CertificatePem` or `SecretID`. */
  readonly field: string;
}

/** The validated resource properties. */
export interface KubernetesSecretsProperties {
  readonly clusterName: string;
  /** The API server's https URL. */
  readonly endpoint: URL;
  /** The cluster CA, PEM. */
  readonly caPem: string;
  readonly namespace: string;
  readonly owner: string;
  readonly secrets: readonly SecretMapping[];
}

/** The attributes of a successful response (CloudFormation shows them: names and a short hash only). */
export interface KubernetesSecretsData extends Record<string, string> {
  /** The Kubernetes Secrets' names, comma-separated, in the order of the properties. */
  readonly Secrets: string;
  /** 16 hex digits of a SHA-256 over every Secret's name, keys and values: it changes when any value does. */
  readonly Version: string;
}

type Json = Record<string, unknown>;

/** The wanted Secrets: name -> data key -> value (plain text, not base64). */
type WantedSecrets = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** Handles one lifecycle event. Throws (reported as FAILED) with a message naming the Secret on any error. */
export async function handler(event: CustomResourceEvent, deps: KubernetesSecretsDependencies = {}): Promise<CustomResourceResult<KubernetesSecretsData>> {
  if (event.RequestType !== 'Create' && event.RequestType !== 'Update' && event.RequestType !== 'Delete') {
    throw new Error(`unknown RequestType ${JSON.stringify(event.RequestType)}`);
  }
  if (event.RequestType === 'Delete') {
    const props = tryParse(event.ResourceProperties);
    if (props === undefined) {
      // Properties that never parsed never wrote anything (a failed Create's rollback): nothing to remove.
      log({ action: 'none', requestType: 'Delete', reason: 'properties not valid' });
      return { PhysicalResourceId: event.PhysicalResourceId ?? 'lambda-mesh-kubernetes-secrets' };
    }
    const env = await resolve(deps);
    const kube = kubernetesClient(props, env, []);
    try {
      await removeSecrets(kube, props, secretNames(props), [props.owner], env.retryDelayMs);
    } catch (e) {
      if (isGoneCluster(e)) {
        // The endpoint's name no longer resolves: the cluster was deleted, and its Secrets with it.
        log({ action: 'none', requestType: 'Delete', cluster: props.clusterName, reason: 'the cluster endpoint does not resolve (cluster deleted)' });
        return { PhysicalResourceId: event.PhysicalResourceId ?? physicalIdOf(props) };
      }
      throw e;
    } finally {
      kube.close();
      env.close();
    }
    return { PhysicalResourceId: event.PhysicalResourceId ?? physicalIdOf(props) };
  }

  const props = parseProperties(event.ResourceProperties);
  const old = event.RequestType === 'Update' ? tryParse(event.OldResourceProperties) : undefined;
  const sameResource = old !== undefined && physicalIdOf(old) === physicalIdOf(props);
  const env = await resolve(deps);
  let wanted: WantedSecrets;
  try {
    wanted = await readWanted(props, env);
  } catch (e) {
    env.close();
    throw e;
  }
  const values = [...wanted.values()].flatMap((data) => Object.values(data));
  const kube = kubernetesClient(props, env, values);
  try {
    const previousOwner = sameResource && old.owner !== props.owner ? old.owner : undefined;
    await applySecrets(kube, props, wanted, previousOwner, env.retryDelayMs);
    if (sameResource) {
      const keep = new Set(wanted.keys());
      const removed = secretNames(old).filter((name) => !keep.has(name));
      await removeSecrets(kube, props, removed, [props.owner, old.owner], env.retryDelayMs);
    }
  } finally {
    kube.close();
    env.close();
  }
  return { PhysicalResourceId: physicalIdOf(props), Data: { Secrets: [...wanted.keys()].join(','), Version: versionOf(wanted) } };
}

/**
 * One per cluster and namespace: moving the Secrets elsewhere replaces the resource, and CloudFormation then deletes
 * the old one (its Secrets, in the old place) with the old properties.
 */
export function physicalIdOf(props: KubernetesSecretsProperties): string {
  return `lambda-mesh-kubernetes-secrets-${props.clusterName}-${props.namespace}`;
}

/**
 * 16 hex digits of SHA-256 over the names, keys and values (JSON-encoded, sorted), for a Helm release to depend on, so
 * it rolls when a value changes. Safe to show: the values are a CA certificate (public) and ACL tokens, which are
 * random UUIDs with 122 random bits. Recovering a token from the hash would mean trying 2^122 candidates; and 64 bits
 * of a hash that covers every value at once cannot even confirm a guess of one token without all the others. It
 * detects change, nothing more.
 */
export function versionOf(wanted: WantedSecrets): string {
  const hash = crypto.createHash('sha256');
  for (const name of [...wanted.keys()].sort()) {
    const data = wanted.get(name) ?? {};
    for (const key of Object.keys(data).sort()) {
      hash.update(`${JSON.stringify([name, key, data[key]])}\n`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

interface Resolved {
  readonly readSecretString: (secretArn: string) => Promise<string | undefined>;
  readonly credentials: () => Promise<AwsCredentials>;
  readonly region: string;
  readonly now: () => Date;
  readonly retryDelayMs: number;
  readonly timeoutMs: number;
  readonly authWaitMs: number;
  /** Closes the SDK client's connections, if one was made. */
  readonly close: () => void;
}

async function resolve(deps: KubernetesSecretsDependencies): Promise<Resolved> {
  let client: SecretsManagerClient | undefined;
  // Default credential, region and endpoint resolution. A client per invocation: nothing stale survives between events.
  // Timeouts, because the SDK has none by default: an unreachable endpoint must fail within the function's timeout.
  const sdk = (): SecretsManagerClient => (client ??= new SecretsManagerClient({ requestHandler: { connectionTimeout: 5_000, socketTimeout: 30_000 } }));
  const region = deps.region ?? (await sdk().config.region());
  return {
    readSecretString: deps.readSecretString ?? (async (secretArn) => (await sdk().send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString),
    credentials: deps.credentials ?? (() => sdk().config.credentials()),
    region,
    now: deps.now ?? (() => new Date()),
    retryDelayMs: Math.max(0, deps.retryDelayMs ?? 100),
    timeoutMs: Math.max(1, deps.timeoutMs ?? 10_000),
    authWaitMs: Math.max(0, deps.authWaitMs ?? 30_000),
    close: () => client?.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The values, from Secrets Manager.
// ---------------------------------------------------------------------------------------------------------------

/** Reads each secret once and picks the fields: name -> key -> value. Errors name the ARN and field, never a value. */
async function readWanted(props: KubernetesSecretsProperties, env: Resolved): Promise<WantedSecrets> {
  const parsed = new Map<string, Json>();
  for (const arn of new Set(props.secrets.map((s) => s.secretArn))) {
    let text: string | undefined;
    try {
      text = await env.readSecretString(arn);
    } catch (e) {
      const name = e instanceof Error ? e.name : 'Error';
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`could not read secret ${arn} from Secrets Manager: ${name}: ${message}`, { cause: e });
    }
    if (text === undefined) {
      throw new Error(`secret ${arn} has no value (SecretString) yet`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`secret ${arn} is not a JSON object`);
    }
    if (!isObject(value)) {
      throw new Error(`secret ${arn} is not a JSON object`);
    }
    parsed.set(arn, value);
  }
  const wanted = new Map<string, Record<string, string>>();
  for (const s of props.secrets) {
    const value = parsed.get(s.secretArn)?.[s.field];
    if (typeof value !== 'string' || value === '') {
      throw new Error(`Secret ${props.namespace}/${s.name} key ${s.key}: secret ${s.secretArn} has no non-empty string field ${JSON.stringify(s.field)} (it has: ${Object.keys(parsed.get(s.secretArn) ?? {}).join(', ') || 'none'})`);
    }
    const data = wanted.get(s.name) ?? {};
    data[s.key] = value;
    wanted.set(s.name, data);
  }
  return wanted;
}

// ---------------------------------------------------------------------------------------------------------------
// Apply and remove.
// ---------------------------------------------------------------------------------------------------------------

/**
 * Reads every wanted Secret and checks it is ours before writing any (a foreign Secret fails the run with nothing
 * written), then creates or replaces each whose data differs.
 */
async function applySecrets(kube: KubernetesClient, props: KubernetesSecretsProperties, wanted: WantedSecrets, previousOwner: string | undefined, retryDelayMs: number): Promise<void> {
  const owners = previousOwner === undefined ? [props.owner] : [props.owner, previousOwner];
  const current = new Map<string, Json | undefined>();
  for (const name of wanted.keys()) {
    const secret = await readSecret(kube, props.namespace, name);
    if (secret !== undefined) {
      checkOwned(props, name, secret, owners);
    }
    current.set(name, secret);
  }
  for (const [name, data] of wanted) {
    await ensureSecret(kube, props, name, data, owners, current.get(name), retryDelayMs);
  }
}

async function ensureSecret(
  kube: KubernetesClient,
  props: KubernetesSecretsProperties,
  name: string,
  data: Readonly<Record<string, string>>,
  owners: readonly string[],
  firstRead: Json | undefined,
  retryDelayMs: number,
): Promise<void> {
  const label = `Secret ${props.namespace}/${name}`;
  const path = secretPath(props.namespace, name);
  let current = firstRead;
  let problem = '';
  for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS; attempt++) {
    if (attempt > 1) {
      await sleep(retryDelayMs * attempt);
      current = await readSecret(kube, props.namespace, name);
    }
    if (current === undefined) {
      const response = await kube.request('POST', collectionPath(props.namespace), secretObject(props, name, data, undefined));
      if (response.status === 201 || response.status === 200) {
        log({ action: 'created', secret: `${props.namespace}/${name}`, cluster: props.clusterName, keys: Object.keys(data).sort().join(',') });
        return;
      }
      if (response.status === 409) {
        // AlreadyExists: someone created it since the read. Read it again, and judge it.
        problem = kube.describe(response);
        log({ action: 'retry', secret: `${props.namespace}/${name}`, reason: 'created by another writer since it was read (409)' });
        continue;
      }
      if (response.status === 404) {
        throw new Error(`${label}: namespace ${JSON.stringify(props.namespace)} does not exist in cluster ${props.clusterName} (POST answered ${kube.describe(response)}); create it before this resource (the Helm release's namespace)`);
      }
      throw new Error(`${label}: POST ${collectionPath(props.namespace)} answered ${kube.describe(response)}`);
    }
    const previousOwner = checkOwned(props, name, current, owners);
    const changes = dataChanges(current.data, data);
    const metadata = isObject(current.metadata) ? current.metadata : {};
    const marked = isObject(metadata.labels) && metadata.labels[MANAGED_BY_LABEL] === MANAGED_BY;
    if (current.type !== 'Opaque' && current.type !== undefined) {
      throw new Error(`${label} has type ${JSON.stringify(current.type)}, not Opaque, and a Secret's type cannot be changed: delete it, and the next deployment recreates it`);
    }
    if (changes.length === 0 && marked && previousOwner === undefined) {
      log({ action: 'unchanged', secret: `${props.namespace}/${name}` });
      return;
    }
    const response = await kube.request('PUT', path, secretObject(props, name, data, metadata));
    if (response.status === 200 || response.status === 201) {
      if (previousOwner !== undefined) {
        log({ action: 'adopted', secret: `${props.namespace}/${name}`, owner: props.owner, reason: `the resource's previous owner ${JSON.stringify(previousOwner)}` });
      } else {
        log({ action: 'updated', secret: `${props.namespace}/${name}`, cluster: props.clusterName, keys: changes.join(','), reason: changes.length === 0 ? 'labels restored' : 'data differs from Secrets Manager (rotated, or changed in the cluster)' });
      }
      return;
    }
    if (response.status === 409 || response.status === 404) {
      // 409: the resourceVersion it was read at is stale; 404: deleted since. Either way: read again.
      problem = kube.describe(response);
      log({ action: 'retry', secret: `${props.namespace}/${name}`, reason: response.status === 409 ? 'changed by another writer since it was read (409 Conflict)' : 'deleted since it was read' });
      continue;
    }
    throw new Error(`${label}: PUT ${path} answered ${kube.describe(response)}`);
  }
  throw new Error(`${label} in cluster ${props.clusterName} kept changing between read and write (${CONFLICT_ATTEMPTS} tries; last: ${problem}): another writer is changing it; stop it, or retry the deployment`);
}

/** Deletes those of `names` that one of `owners` owns; others are left, with a log line. */
async function removeSecrets(kube: KubernetesClient, props: KubernetesSecretsProperties, names: readonly string[], owners: readonly string[], retryDelayMs: number): Promise<void> {
  for (const name of names) {
    const label = `Secret ${props.namespace}/${name}`;
    const path = secretPath(props.namespace, name);
    let done = false;
    for (let attempt = 1; attempt <= CONFLICT_ATTEMPTS && !done; attempt++) {
      if (attempt > 1) {
        await sleep(retryDelayMs * attempt);
      }
      const current = await readSecret(kube, props.namespace, name);
      if (current === undefined) {
        log({ action: 'absent', secret: `${props.namespace}/${name}` });
        done = true;
        break;
      }
      const owner = ownerOf(current);
      if (owner === undefined || !owners.includes(owner)) {
        log({ action: 'left', secret: `${props.namespace}/${name}`, reason: owner === undefined ? 'not lambda-mesh\'s' : `owned by ${JSON.stringify(owner)}` });
        done = true;
        break;
      }
      const metadata = isObject(current.metadata) ? current.metadata : {};
      // Preconditions: delete exactly the object read, not one that replaced it since.
      const options = { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: metadata.uid, resourceVersion: metadata.resourceVersion } };
      const response = await kube.request('DELETE', path, options);
      if (response.status === 200 || response.status === 202 || response.status === 404) {
        log({ action: response.status === 404 ? 'absent' : 'deleted', secret: `${props.namespace}/${name}`, cluster: props.clusterName });
        done = true;
      } else if (response.status !== 409) {
        throw new Error(`${label}: DELETE ${path} answered ${kube.describe(response)}`);
      } else {
        log({ action: 'retry', secret: `${props.namespace}/${name}`, reason: 'changed by another writer since it was read (409 Conflict)' });
      }
    }
    if (!done) {
      throw new Error(`${label} in cluster ${props.clusterName} kept changing between read and delete (${CONFLICT_ATTEMPTS} tries): another writer is changing it`);
    }
  }
}

async function readSecret(kube: KubernetesClient, namespace: string, name: string): Promise<Json | undefined> {
  const path = secretPath(namespace, name);
  const response = await kube.request('GET', path);
  if (response.status === 404) {
    return undefined;
  }
  if (response.status !== 200 || !isObject(response.body) || response.body.kind !== 'Secret') {
    throw new Error(`Secret ${namespace}/${name}: GET ${path} answered ${kube.describe(response)}`);
  }
  return response.body;
}

/** Throws unless the Secret is one of `owners`'; returns the owner when it is not the current one (to be taken over). */
function checkOwned(props: KubernetesSecretsProperties, name: string, secret: Json, owners: readonly string[]): string | undefined {
  const owner = ownerOf(secret);
  if (owner === props.owner) {
    return undefined;
  }
  if (owner !== undefined && owners.includes(owner)) {
    return owner;
  }
  throw new Error(
    `Secret ${props.namespace}/${name} already exists in cluster ${props.clusterName} and is not lambda-mesh owner ${JSON.stringify(props.owner)}'s ` +
      `(${owner === undefined ? `no ${OWNER_ANNOTATION} annotation` : `its ${OWNER_ANNOTATION} is ${JSON.stringify(owner)}`}). lambda-mesh never takes over a Secret it did not create: delete or rename it, or choose other Secret names`,
  );
}

function ownerOf(secret: Json): string | undefined {
  const metadata = isObject(secret.metadata) ? secret.metadata : {};
  const owner = isObject(metadata.annotations) ? metadata.annotations[OWNER_ANNOTATION] : undefined;
  return typeof owner === 'string' ? owner : undefined;
}

/** The data keys whose value differs (added, changed or removed), sorted; names only. */
function dataChanges(current: unknown, wanted: Readonly<Record<string, string>>): string[] {
  const have = isObject(current) ? current : {};
  const keys = new Set([...Object.keys(have), ...Object.keys(wanted)]);
  return [...keys].filter((k) => {
    const encoded = have[k];
    return wanted[k] === undefined || typeof encoded !== 'string' || !Buffer.from(wanted[k]).equals(Buffer.from(encoded, 'base64'));
  }).sort();
}

/**
 * The Secret as written. On a replace, `current` (the metadata read) gives its resourceVersion, for the API server's
 * conflict check, and the labels and annotations others put on it, which are kept.
 */
function secretObject(props: KubernetesSecretsProperties, name: string, data: Readonly<Record<string, string>>, current: Json | undefined): Json {
  const labels = isObject(current?.labels) ? current.labels : {};
  const annotations = isObject(current?.annotations) ? current.annotations : {};
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace: props.namespace,
      ...(current?.resourceVersion !== undefined ? { resourceVersion: current.resourceVersion } : {}),
      labels: { ...labels, [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { ...annotations, [OWNER_ANNOTATION]: props.owner },
    },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

function collectionPath(namespace: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
}

function secretPath(namespace: string, name: string): string {
  return `${collectionPath(namespace)}/${encodeURIComponent(name)}`;
}

function secretNames(props: KubernetesSecretsProperties): string[] {
  return [...new Set(props.secrets.map((s) => s.name))];
}

// ---------------------------------------------------------------------------------------------------------------
// The Kubernetes API client: node's https, the cluster CA only, an EKS token on every request.
// ---------------------------------------------------------------------------------------------------------------

interface KubernetesResponse {
  readonly status: number;
  /** The parsed JSON body; the text when it is not JSON. */
  readonly body: unknown;
}

interface KubernetesClient {
  /**
   * Sends one request. Retries connection failures, timeouts, 429 and 5xx (3 tries); throws at once on an untrusted
   * certificate and on 401/403 (with what the function's role needs); returns every other status.
   */
  request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<KubernetesResponse>;
  /** `<code> <reason>: <message>` of a Status object (or the text), redacted. */
  describe(response: KubernetesResponse): string;
  close(): void;
}

/** The pause between tries while a 401 or 403 is waited out ({@link KubernetesSecretsDependencies.authWaitMs}). */
const AUTH_RETRY_DELAY_MS = 2_000;
const RETRYABLE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH']);
const NETWORK_ATTEMPTS = 3;

function kubernetesClient(props: KubernetesSecretsProperties, env: Resolved, values: readonly string[]): KubernetesClient {
  // The cluster CA and nothing else: not the system store (`ca` replaces it), never without verification.
  const agent = new https.Agent({ ca: props.caPem, keepAlive: true, maxSockets: 2 });
  const tokens: string[] = [];
  const secrets = (): string[] => [...values, ...values.map((v) => Buffer.from(v).toString('base64')), ...tokens];
  const redact = (text: string): string => secrets().filter((s) => s.length >= 4).reduce((t, s) => t.split(s).join('[redacted]'), text);
  const describe = (response: KubernetesResponse): string => redact(describeStatus(response));
  const where = `cluster ${props.clusterName}, namespace ${props.namespace}`;
  /** Until when 401 and 403 are waited out; set at the first one, for the whole run. */
  let authDeadline: number | undefined;

  const request = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<KubernetesResponse> => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let lastProblem = '';
    for (let attempt = 1; attempt <= NETWORK_ATTEMPTS; attempt++) {
      if (attempt > 1) {
        await sleep(env.retryDelayMs * 2 ** (attempt - 1));
      }
      const credentials = await env.credentials();
      const token = eksToken({ clusterName: props.clusterName, region: env.region, credentials, date: env.now() });
      tokens.push(token);
      let response: KubernetesResponse;
      try {
        response = await send(props.endpoint, agent, method, path, token, payload, env.timeoutMs);
      } catch (e) {
        const code = errorCode(e);
        const message = redact(e instanceof Error ? e.message : String(e));
        if (TLS_CODES.has(code)) {
          throw new Error(
            `Kubernetes ${method} ${path} (${where}): the API server's certificate is not trusted (${code}: ${message}); it must be issued by the cluster CA in CertificateAuthorityData for ${props.endpoint.hostname}. Nothing was sent`,
            { cause: e },
          );
        }
        if (!RETRYABLE_CODES.has(code)) {
          throw new Error(`Kubernetes ${method} ${path} (${where}) failed: ${code ? `${code}: ` : ''}${message}`, { cause: e });
        }
        lastProblem = `${code}: ${message}`;
        continue;
      }
      if ((response.status === 401 || response.status === 403) && Date.now() < (authDeadline ??= Date.now() + env.authWaitMs)) {
        // A new access entry (created just before this resource) takes a few seconds to apply: wait for it, bounded.
        log({ action: 'waiting', reason: `the API server answered ${response.status}: waiting for the function's EKS access entry to take effect` });
        await sleep(AUTH_RETRY_DELAY_MS);
        attempt--;
        continue;
      }
      if (response.status === 401) {
        throw new Error(
          `Kubernetes refused ${method} ${path} (${where}): ${describe(response)}. The cluster did not accept the function's IAM identity: ` +
            'its role needs an EKS access entry on this cluster (authentication mode API or API_AND_CONFIG_MAP), and its token must be signed for this cluster name and region',
        );
      }
      if (response.status === 403) {
        throw new Error(
          `Kubernetes refused ${method} ${path} (${where}): ${describe(response)}. The function's role needs an EKS access entry with an access policy ` +
            `(or Kubernetes RBAC for its group) that allows get, create, update and delete on secrets in namespace ${props.namespace}`,
        );
      }
      if (response.status === 429 || response.status >= 500) {
        lastProblem = describe(response);
        continue;
      }
      return response;
    }
    throw new Error(`Kubernetes ${method} ${path} (${where}) failed after ${NETWORK_ATTEMPTS} tries: ${lastProblem}`);
  };

  return { request, describe, close: () => agent.destroy() };
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function send(endpoint: URL, agent: https.Agent, method: string, path: string, token: string, payload: string | undefined, timeoutMs: number): Promise<KubernetesResponse> {
  const url = new URL(path, endpoint);
  const headers: Record<string, string | number> = { 'accept': 'application/json', 'authorization': `Bearer ${token}`, 'user-agent': 'lambda-mesh-kubernetes-secrets' };
  if (payload !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = Buffer.byteLength(payload);
  }
  return new Promise((resolvePromise, reject) => {
    const req = https.request(url, { method, agent, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text === '' ? undefined : JSON.parse(text);
        } catch {
          // Not JSON (a proxy's page): kept as text, for the message.
        }
        resolvePromise({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(payload);
  });
}

function describeStatus(response: KubernetesResponse): string {
  const body = response.body;
  if (isObject(body) && body.kind === 'Status') {
    const code = typeof body.code === 'number' ? body.code : response.status;
    const reason = typeof body.reason === 'string' && body.reason !== '' ? ` ${body.reason}` : '';
    return `${code}${reason}: ${truncate(typeof body.message === 'string' ? body.message : '')}`;
  }
  const text = typeof body === 'string' ? body : (JSON.stringify(body) ?? '(empty)');
  return `HTTP ${response.status}: ${truncate(text)}`;
}

function truncate(text: string): string {
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

function errorCode(e: unknown): string {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : '';
}

/** Whether `e` is a failure to resolve the endpoint's name: the cluster is gone. */
function isGoneCluster(e: unknown): boolean {
  return errorCode(e instanceof Error ? e.cause : undefined) === 'ENOTFOUND';
}

// ---------------------------------------------------------------------------------------------------------------
// The EKS token: a presigned STS GetCallerIdentity URL (SigV4, query-string authentication).
// ---------------------------------------------------------------------------------------------------------------

/** What an EKS token is made of. */
export interface EksTokenInput {
  readonly clusterName: string;
  readonly region: string;
  readonly credentials: AwsCredentials;
  /** When it is signed (X-Amz-Date). */
  readonly date: Date;
}

/** `k8s-aws-v1.` + the unpadded base64url of {@link presignedCallerIdentityUrl}: what `aws eks get-token` prints. */
export function eksToken(input: EksTokenInput): string {
  return TOKEN_PREFIX + Buffer.from(presignedCallerIdentityUrl(input)).toString('base64url');
}

/**
 * `GET https://sts.<region>.<suffix>/?Action=GetCallerIdentity&Version=2011-06-15`, presigned with SigV4: the
 * credentials, date, expiry and signed headers (`host;x-k8s-aws-id`) in the query, as aws-iam-authenticator's
 * verifier requires (only those parameters, one value each), and the payload hash of the empty body.
 */
export function presignedCallerIdentityUrl(input: EksTokenInput): string {
  const { credentials, region } = input;
  const host = `sts.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
  const amzDate = input.date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const scope = `${amzDate.slice(0, 8)}/${region}/sts/aws4_request`;
  const query: Record<string, string> = {
    'Action': 'GetCallerIdentity',
    'Version': '2011-06-15',
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': amzDate,
    'X-Amz-Expires': String(TOKEN_EXPIRES_SECONDS),
    'X-Amz-SignedHeaders': `host;${CLUSTER_ID_HEADER}`,
    ...(credentials.sessionToken ? { 'X-Amz-Security-Token': credentials.sessionToken } : {}),
  };
  const canonicalQuery = Object.keys(query)
    .map((k) => [uriEncode(k), uriEncode(query[k])] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    '/',
    canonicalQuery,
    `host:${host}\n${CLUSTER_ID_HEADER}:${input.clusterName.trim()}\n`,
    `host;${CLUSTER_ID_HEADER}`,
    sha256Hex(''),
  ].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key: Buffer = Buffer.from(`AWS4${credentials.secretAccessKey}`);
  for (const part of [amzDate.slice(0, 8), region, 'sts', 'aws4_request']) {
    key = hmac(key, part);
  }
  const signature = hmac(key, stringToSign).toString('hex');
  return `https://${host}/?${canonicalQuery}&X-Amz-Signature=${signature}`;
}

/** RFC 3986 percent-encoding, as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function sha256Hex(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function hmac(key: Buffer, text: string): Buffer {
  return crypto.createHmac('sha256', key).update(text, 'utf8').digest();
}

// ---------------------------------------------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------------------------------------------

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/;
const CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/;
const MAPPING_KEYS = ['Name', 'Key', 'SecretArn', 'Field'];
const MAX_SECRETS = 50;

/**
 * Validates the resource properties (CloudFormation passes every scalar as a string): `ClusterName`, `Endpoint`,
 * `CertificateAuthorityData` (base64 PEM, as EKS returns it), `Namespace`, `Owner`, and `Secrets`, a list of
 * `{ Name, Key, SecretArn, Field }`. Several entries may share a Name (one Secret, several keys), not a Name and Key.
 */
export function parseProperties(raw: Readonly<Record<string, unknown>> | undefined): KubernetesSecretsProperties {
  const clusterName = raw?.ClusterName;
  if (typeof clusterName !== 'string' || !CLUSTER_NAME.test(clusterName)) {
    throw new Error(`ClusterName must be an EKS cluster name (1 to 100 letters, digits, - and _, starting with a letter or digit), got ${JSON.stringify(clusterName)}`);
  }
  const endpoint = parseEndpoint(raw?.Endpoint);
  const caPem = parseCertificateAuthority(raw?.CertificateAuthorityData);
  const namespace = raw?.Namespace;
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS1123_LABEL.test(namespace)) {
    throw new Error(`Namespace must be a Kubernetes namespace name (an RFC 1123 label: lowercase letters, digits and -, at most 63), got ${JSON.stringify(namespace)}`);
  }
  const owner = raw?.Owner;
  if (typeof owner !== 'string' || owner.trim() === '' || owner.length > 1024 || [...owner].some((c) => c.charCodeAt(0) < 0x20)) {
    throw new Error(`Owner must be a non-empty string of at most 1024 characters without control characters, got ${JSON.stringify(owner)}`);
  }
  const list = raw?.Secrets;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_SECRETS) {
    throw new Error(`Secrets must be a list of 1 to ${MAX_SECRETS} { Name, Key, SecretArn, Field } objects, got ${describeValue(list)}`);
  }
  const seen = new Set<string>();
  const secrets = list.map((entry: unknown, i): SecretMapping => {
    const at = `Secrets[${i}]`;
    if (!isObject(entry)) {
      throw new Error(`${at} must be an object { Name, Key, SecretArn, Field }, got ${describeValue(entry)}`);
    }
    const unknown = Object.keys(entry).filter((k) => !MAPPING_KEYS.includes(k));
    if (unknown.length > 0) {
      throw new Error(`${at} has unknown field(s) ${unknown.join(', ')}: expected ${MAPPING_KEYS.join(', ')}`);
    }
    const { Name: name, Key: key, SecretArn: secretArn, Field: field } = entry;
    if (typeof name !== 'string' || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
      throw new Error(`${at}.Name must be a Kubernetes Secret name (an RFC 1123 subdomain: lowercase letters, digits, - and ., at most 253), got ${JSON.stringify(name)}`);
    }
    if (typeof key !== 'string' || key.length > 253 || !SECRET_KEY.test(key) || key === '.' || key === '..') {
      throw new Error(`${at}.Key must be a Secret data key (letters, digits, -, _ and ., at most 253), got ${JSON.stringify(key)}`);
    }
    if (typeof secretArn !== 'string' || !SECRET_ARN.test(secretArn)) {
      throw new Error(`${at}.SecretArn must be the ARN of a Secrets Manager secret, got ${JSON.stringify(secretArn)}`);
    }
    if (typeof field !== 'string' || field === '' || field.length > 256) {
      throw new Error(`${at}.Field must name a field of the secret's JSON value (e.g. CertificatePem or SecretID), got ${JSON.stringify(field)}`);
    }
    if (seen.has(`${name}/${key}`)) {
      throw new Error(`${at}: Secret ${name} key ${key} is given twice`);
    }
    seen.add(`${name}/${key}`);
    return { name, key, secretArn, field };
  });
  return { clusterName, endpoint, caPem, namespace, owner, secrets };
}

function parseEndpoint(value: unknown): URL {
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new Error(`Endpoint must be the cluster's API server URL, https://<host>[:port] without a path, got ${JSON.stringify(value)}`);
  }
  return url;
}

function parseCertificateAuthority(value: unknown): string {
  const pem = typeof value === 'string' && /^[A-Za-z0-9+/\s]+=*\s*$/.test(value) ? Buffer.from(value, 'base64').toString('utf8') : '';
  let certificate: crypto.X509Certificate | undefined;
  try {
    certificate = pem.includes('-----BEGIN CERTIFICATE-----') ? new crypto.X509Certificate(pem) : undefined;
  } catch {
    certificate = undefined;
  }
  if (certificate === undefined || !certificate.ca) {
    // Not quoted: a certificate is public, but a wrong value here may be anything (a key pasted by mistake).
    const given = typeof value !== 'string' ? describeValue(value) : pem === '' ? `${value.length} characters that are not base64` : 'base64 of something that is not a PEM CA certificate';
    throw new Error(`CertificateAuthorityData must be the cluster's CA certificate as EKS gives it (base64 of a PEM CA certificate), got ${given}`);
  }
  return pem;
}

function tryParse(raw: Readonly<Record<string, unknown>> | undefined): KubernetesSecretsProperties | undefined {
  try {
    return parseProperties(raw);
  } catch {
    return undefined;
  }
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
