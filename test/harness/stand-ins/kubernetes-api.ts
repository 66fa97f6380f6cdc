/**
 * A LOCAL STAND-IN of an EKS cluster's Kubernetes API server, for tests: an HTTPS server on 127.0.0.1 with its own
 * CA and a server certificate for `localhost` and `127.0.0.1` (made with the library's x509 module, like the Consul
 * stand-in's), speaking the core/v1 Secrets REST API and authenticating requests the way EKS does. It is not
 * Kubernetes: it implements what lambda-mesh's handlers call, with the semantics the API documents, and records
 * every request.
 *
 * Secrets (`/api/v1/namespaces/{ns}/secrets[/{name}]`):
 * - `GET` one (404 NotFound Status) or the list; `POST` creates (201; 409 AlreadyExists; 404 when the namespace does
 *   not exist; `metadata.resourceVersion` must not be set); `PUT` replaces (200; `metadata.resourceVersion` required,
 *   409 Conflict when it is not the current one; 404 when absent: Secrets are not created on update; `type` immutable;
 *   `data` immutable when `immutable` is set); `DELETE` (200 Success Status; DeleteOptions `preconditions.uid` and
 *   `.resourceVersion`, 409 Conflict when they do not match; 404 when absent).
 * - `resourceVersion` is one counter for the whole store (etcd's revision), moved by every write that changes an
 *   object; as in Kubernetes, a PUT that changes nothing leaves it (no write happens).
 * - Validation as the API server does it: Secret names (RFC 1123 subdomain, 422 Invalid), data keys, base64 data
 *   (400), apiVersion/kind, the body's name and namespace against the URL (400), Content-Type `application/json` (415).
 *
 * Authentication, as EKS does it (aws-iam-authenticator's verifier, pkg/token/token.go, then STS):
 * - `Authorization: Bearer k8s-aws-v1.<unpadded base64url>` of at most 4 KiB;
 * - the URL: https, host `sts.<region>.amazonaws.com` (or the global `sts.amazonaws.com`), path `/`, only the
 *   verifier's whitelisted query parameters, once each, `Action=GetCallerIdentity`, `Version=2011-06-15`,
 *   `x-k8s-aws-id` among `X-Amz-SignedHeaders`, `X-Amz-Expires` between 0 and 900;
 * - not expired: after X-Amz-Date plus 15 minutes (the verifier's and STS's rule), and, stricter than STS (which
 *   ignores it), after X-Amz-Date plus X-Amz-Expires; nor more than 5 minutes in the future;
 * - the SigV4 signature, computed here independently with node:crypto from the known principal's secret key, over
 *   the headers the verifier sends STS: `host` and `x-k8s-aws-id` set to THIS cluster's name, so a token made for
 *   another cluster fails like a wrong key does; the session token must be the principal's.
 * Failures answer 401 `Unauthorized`, as EKS does (no detail); the reason is recorded in {@link authFailures}.
 *
 * Authorization: each principal may be limited to namespaces (an access entry's namespace-scoped access policy);
 * otherwise 403 Forbidden with Kubernetes' RBAC message.
 *
 * Faults: interlopers that change a Secret just before the next writes (to provoke 409 Conflict), and failures of
 * the next requests with a status.
 *
 * @see https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/
 * @see https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions
 * @see https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/
 * @see https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/
 * @see https://github.com/kubernetes-sigs/aws-iam-authenticator/blob/master/pkg/token/token.go
 * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */
import * as crypto from 'crypto';
import type * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import { createCa, createServerCertificate, type CertificateAndKey } from '../../../constructs/consul/private/secrets-handler/x509';

/** An IAM principal the stand-in's "STS" knows, by access key ID. */
export interface KubernetesApiPrincipal {
  readonly secretAccessKey: string;
  /** Session credentials' token: the presigned URL must carry exactly this one. @default - long-term keys: none allowed */
  readonly sessionToken?: string;
  /** The identity's ARN, used as its Kubernetes username. @default `arn:aws:sts::123456789012:assumed-role/stand-in/<access key>` */
  readonly arn?: string;
  /** Namespaces in which it may use Secrets (its access entry's policy scope). @default - all */
  readonly namespaces?: readonly string[];
}

/** Options of {@link KubernetesApiStandIn.start}. */
export interface KubernetesApiStandInOptions {
  /** The cluster's name: the `x-k8s-aws-id` tokens must be signed for. */
  readonly clusterName: string;
  /** The principals, by access key ID. */
  readonly principals: Readonly<Record<string, KubernetesApiPrincipal>>;
  /** Namespaces that exist. @default ['default', 'kube-system', 'consul'] */
  readonly namespaces?: readonly string[];
  /** The clock tokens are checked against. @default Date.now */
  readonly now?: () => number;
}

/** One request as the stand-in received it. */
export interface RecordedKubernetesRequest {
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  /** The parsed JSON body (undefined when empty; the raw text when not JSON). */
  readonly body: unknown;
  /** The authenticated principal's ARN; undefined when authentication failed. */
  readonly user?: string;
  /** The status answered. */
  readonly status: number;
}

/** A stored Secret, as the API returns it. */
export interface StoredSecret {
  readonly apiVersion: 'v1';
  readonly kind: 'Secret';
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly resourceVersion: string;
    readonly creationTimestamp: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly type: string;
  readonly data?: Record<string, string>;
  readonly immutable?: boolean;
}

/** What {@link KubernetesApiStandIn.putSecret} writes: data in plain text. */
export interface SecretSeed {
  readonly data: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** @default 'Opaque' */
  readonly type?: string;
  readonly immutable?: boolean;
}

/**
 * Runs just before a write (POST, PUT or DELETE of a Secret, after authentication), as another writer would: it may
 * change the stand-in's state through its methods.
 */
export type KubernetesInterloper = (target: { readonly namespace: string; readonly name: string; readonly method: string }, standIn: KubernetesApiStandIn) => void;

/** aws-iam-authenticator's whitelist of presigned URL parameters (lower case). */
const PARAMETER_WHITELIST = new Set([
  'action', 'version', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'x-amz-expires', 'x-amz-security-token', 'x-amz-signature', 'x-amz-signedheaders',
]);
const PRESIGNED_URL_LIFETIME_MS = 15 * 60 * 1000;
const MAX_TOKEN_BYTES = 4096;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DATA_KEY = /^[-._a-zA-Z0-9]+$/;
const SECRET_PATH = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/]+))?$/;

class StatusError extends Error {
  public constructor(public readonly code: number, public readonly reason: string, message: string, public readonly details?: Record<string, unknown>) {
    super(message);
  }
}

/** A stand-in of an EKS cluster's API server over HTTPS on 127.0.0.1. */
export class KubernetesApiStandIn {
  /** Starts it on a free port. */
  public static async start(options: KubernetesApiStandInOptions): Promise<KubernetesApiStandIn> {
    const standIn = new KubernetesApiStandIn(options);
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    return standIn;
  }

  public readonly clusterName: string;
  /** The CA that issued the server certificate, PEM. */
  public readonly caPem: string;
  public readonly requests: RecordedKubernetesRequest[] = [];
  /** Why each refused token was refused (what EKS would log, not answer). */
  public readonly authFailures: string[] = [];
  /** Namespaces that exist. */
  public readonly namespaces: Set<string>;
  private readonly principals: ReadonlyMap<string, KubernetesApiPrincipal>;
  private readonly now: () => number;
  private readonly store = new Map<string, StoredSecret>();
  private readonly server: https.Server;
  private revision = 1000;
  private interlopers: KubernetesInterloper[] = [];
  private failures: Array<{ status: number; message: string }> = [];

  private constructor(options: KubernetesApiStandInOptions) {
    this.clusterName = options.clusterName;
    this.principals = new Map(Object.entries(options.principals));
    this.namespaces = new Set(options.namespaces ?? ['default', 'kube-system', 'consul']);
    this.now = options.now ?? Date.now;
    const ca: CertificateAndKey = createCa({ commonName: 'kubernetes (stand-in)', validityDays: 30 });
    this.caPem = ca.certificatePem;
    const cert = createServerCertificate({ ca, commonName: 'kube-apiserver', dnsNames: ['localhost', 'kubernetes.default.svc'], ipAddresses: ['127.0.0.1'], validityDays: 30 });
    this.server = https.createServer({ cert: cert.certificatePem, key: cert.privateKeyPem }, (req, res) => this.receive(req, res));
  }

  /** `https://127.0.0.1:<port>`. */
  public get endpoint(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The CA as EKS gives it (`certificateAuthority.data`): base64 of the PEM. */
  public get certificateAuthorityData(): string {
    return Buffer.from(this.caPem).toString('base64');
  }

  /** Stops the server, closing kept-alive connections. */
  public async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The requests that wrote (POST, PUT, DELETE). */
  public writes(): RecordedKubernetesRequest[] {
    return this.requests.filter((r) => r.method !== 'GET');
  }

  /** A copy of the stored Secret, or undefined. */
  public secret(namespace: string, name: string): StoredSecret | undefined {
    const stored = this.store.get(`${namespace}/${name}`);
    return stored === undefined ? undefined : (JSON.parse(JSON.stringify(stored)) as StoredSecret);
  }

  /** The stored Secret's data, decoded; undefined when there is no such Secret. */
  public data(namespace: string, name: string): Record<string, string> | undefined {
    const stored = this.store.get(`${namespace}/${name}`);
    return stored === undefined ? undefined : Object.fromEntries(Object.entries(stored.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  }

  /** Creates or replaces a Secret directly (what another tool or an operator would have written); moves the revision. */
  public putSecret(namespace: string, name: string, seed: SecretSeed): StoredSecret {
    const existing = this.store.get(`${namespace}/${name}`);
    this.namespaces.add(namespace);
    return this.write({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name,
        namespace,
        uid: existing?.metadata.uid ?? crypto.randomUUID(),
        resourceVersion: '',
        creationTimestamp: existing?.metadata.creationTimestamp ?? new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        ...(seed.labels ? { labels: { ...seed.labels } } : {}),
        ...(seed.annotations ? { annotations: { ...seed.annotations } } : {}),
      },
      type: seed.type ?? 'Opaque',
      data: Object.fromEntries(Object.entries(seed.data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      ...(seed.immutable ? { immutable: true } : {}),
    });
  }

  /** Changes a stored Secret in place (another writer's edit): `edit` gets a copy; moves the revision. */
  public editSecret(namespace: string, name: string, edit: (secret: StoredSecret) => StoredSecret): StoredSecret {
    const current = this.secret(namespace, name);
    if (current === undefined) {
      throw new Error(`stand-in: no Secret ${namespace}/${name}`);
    }
    return this.write(edit(current));
  }

  public deleteSecret(namespace: string, name: string): void {
    this.store.delete(`${namespace}/${name}`);
  }

  /**
   * The next `count` writes of a Secret are preceded by `interloper`; by default another writer that annotates the
   * Secret when it exists (so its resourceVersion moves) or does nothing when it does not.
   */
  public interfereBeforeNextWrites(count: number, interloper?: KubernetesInterloper): void {
    const touch: KubernetesInterloper = ({ namespace, name }, s) => {
      if (s.secret(namespace, name) !== undefined) {
        s.editSecret(namespace, name, (o) => ({ ...o, metadata: { ...o.metadata, annotations: { ...o.metadata.annotations, 'example.com/touched': String(Date.now()) } } }));
      }
    };
    for (let i = 0; i < count; i++) {
      this.interlopers.push(interloper ?? touch);
    }
  }

  /** The next `count` authenticated requests fail with `status` (a Status object) before they are served. */
  public failNext(count: number, status = 503, message = 'the server is currently unable to handle the request'): void {
    for (let i = 0; i < count; i++) {
      this.failures.push({ status, message });
    }
  }

  /**
   * Authenticates an `Authorization` header as EKS would; returns the principal's ARN, or throws with the reason.
   * Public so a test can check the verifier itself against tokens made by other signers.
   */
  public authenticate(authorization: string | undefined): { readonly arn: string; readonly principal: KubernetesApiPrincipal } {
    const bearer = /^Bearer (.+)$/.exec(authorization ?? '');
    if (bearer === null) {
      throw new Error('no bearer token');
    }
    const token = bearer[1];
    if (token.length > MAX_TOKEN_BYTES) {
      throw new Error('token is too large');
    }
    if (!token.startsWith('k8s-aws-v1.')) {
      throw new Error('token is missing expected "k8s-aws-v1." prefix');
    }
    const encoded = token.slice('k8s-aws-v1.'.length);
    if (!/^[A-Za-z0-9_-]*$/.test(encoded)) {
      // Go's base64.RawURLEncoding: the URL alphabet, no padding.
      throw new Error('token is not unpadded base64url');
    }
    const url = new URL(Buffer.from(encoded, 'base64').toString('utf8'));
    if (url.protocol !== 'https:') {
      throw new Error(`unexpected scheme ${url.protocol}`);
    }
    const hostRegion = url.host === 'sts.amazonaws.com' ? 'us-east-1' : /^sts\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$/.exec(url.host)?.[1];
    if (hostRegion === undefined) {
      throw new Error(`unexpected hostname ${url.host} in pre-signed URL`);
    }
    if (url.pathname !== '/') {
      throw new Error('unexpected path in pre-signed URL');
    }
    const raw = url.search.replace(/^\?/, '').split('&').filter((p) => p !== '').map((p) => {
      const eq = p.indexOf('=');
      return [decodeQuery(eq < 0 ? p : p.slice(0, eq)), decodeQuery(eq < 0 ? '' : p.slice(eq + 1))] as const;
    });
    const params = new Map<string, string>();
    for (const [key, value] of raw) {
      if (!PARAMETER_WHITELIST.has(key.toLowerCase())) {
        throw new Error(`non-whitelisted query parameter ${key}`);
      }
      if (params.has(key.toLowerCase())) {
        throw new Error('query parameter with multiple values not supported');
      }
      params.set(key.toLowerCase(), value);
    }
    if (params.get('action') !== 'GetCallerIdentity') {
      throw new Error('unexpected action parameter in pre-signed URL');
    }
    const signedHeaders = (params.get('x-amz-signedheaders') ?? '').split(';');
    if (!signedHeaders.some((h) => h.toLowerCase() === 'x-k8s-aws-id')) {
      throw new Error('client did not sign the x-k8s-aws-id header in the pre-signed URL');
    }
    const expiresText = params.get('x-amz-expires') ?? '';
    const expires = /^\d+$/.test(expiresText) ? Number(expiresText) : NaN;
    if (!(expires >= 0 && expires <= 900)) {
      throw new Error(`invalid X-Amz-Expires parameter in pre-signed URL: ${expiresText}`);
    }
    const amzDate = params.get('x-amz-date') ?? '';
    const dateMatch = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
    if (dateMatch === null) {
      throw new Error('X-Amz-Date parameter must be present in pre-signed URL, as YYYYMMDDTHHMMSSZ');
    }
    const signedAt = Date.UTC(+dateMatch[1], +dateMatch[2] - 1, +dateMatch[3], +dateMatch[4], +dateMatch[5], +dateMatch[6]);
    const now = this.now();
    if (now > signedAt + PRESIGNED_URL_LIFETIME_MS) {
      throw new Error('X-Amz-Date parameter is expired (15 minute expiration)');
    }
    if (now > signedAt + expires * 1000) {
      throw new Error(`expired: X-Amz-Date plus X-Amz-Expires (${expires}s) is past (stand-in check: STS ignores X-Amz-Expires)`);
    }
    if (signedAt > now + 5 * 60 * 1000) {
      throw new Error('signature not yet current: X-Amz-Date is in the future');
    }

    // What STS checks, given the request the verifier sends it: GET of the URL, host and x-k8s-aws-id (this cluster).
    if (params.get('version') !== '2011-06-15') {
      throw new Error('STS: unsupported Version');
    }
    if (params.get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') {
      throw new Error('STS: unsupported X-Amz-Algorithm');
    }
    const credential = (params.get('x-amz-credential') ?? '').split('/');
    const [accessKeyId, day, scopeRegion, service, terminator] = credential;
    if (credential.length !== 5 || day !== amzDate.slice(0, 8) || scopeRegion !== hostRegion || service !== 'sts' || terminator !== 'aws4_request') {
      throw new Error(`STS: credential scope ${credential.slice(1).join('/')} does not match ${amzDate.slice(0, 8)}/${hostRegion}/sts/aws4_request`);
    }
    const principal = this.principals.get(accessKeyId);
    if (principal === undefined) {
      throw new Error('STS: the security token included in the request is invalid (unknown access key)');
    }
    if (params.get('x-amz-security-token') !== principal.sessionToken) {
      throw new Error('STS: the security token included in the request is invalid (session token)');
    }
    const headerValues: Record<string, string> = { 'host': url.host, 'x-k8s-aws-id': this.clusterName };
    const lowerSigned = signedHeaders.map((h) => h.toLowerCase());
    if (lowerSigned.some((h) => headerValues[h] === undefined) || !lowerSigned.includes('host') || [...lowerSigned].sort().join(';') !== lowerSigned.join(';')) {
      throw new Error(`STS: signed headers ${lowerSigned.join(';')} are not what the verifier sends (host;x-k8s-aws-id)`);
    }
    const query = raw
      .filter(([k]) => k !== 'X-Amz-Signature')
      .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
      .sort();
    const canonical = ['GET', '/', query.join('&'), lowerSigned.map((h) => `${h}:${headerValues[h]}\n`).join(''), lowerSigned.join(';'), digestHex('')].join('\n');
    const scope = credential.slice(1).join('/');
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${digestHex(canonical)}`;
    const signingKey = [day, scopeRegion, service, terminator].reduce<Buffer>((key, part) => crypto.createHmac('sha256', key).update(part).digest(), Buffer.from(`AWS4${principal.secretAccessKey}`));
    const expected = Buffer.from(crypto.createHmac('sha256', signingKey).update(stringToSign).digest('hex'));
    const given = Buffer.from(params.get('x-amz-signature') ?? '');
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
      throw new Error('STS: the request signature we calculated does not match the signature you provided (SignatureDoesNotMatch)');
    }
    return { arn: principal.arn ?? `arn:aws:sts::123456789012:assumed-role/stand-in/${accessKeyId}`, principal };
  }

  // -------------------------------------------------------------------------------------------------------------
  // HTTP.
  // -------------------------------------------------------------------------------------------------------------

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {
        body = text;
      }
      const method = req.method ?? 'GET';
      const path = (req.url ?? '/').split('?')[0];
      let user: string | undefined;
      let status: number;
      let answer: unknown;
      try {
        let identity: ReturnType<KubernetesApiStandIn['authenticate']>;
        try {
          identity = this.authenticate(req.headers.authorization);
        } catch (e) {
          this.authFailures.push(e instanceof Error ? e.message : String(e));
          throw new StatusError(401, 'Unauthorized', 'Unauthorized');
        }
        user = identity.arn;
        const failure = this.failures.shift();
        if (failure !== undefined) {
          throw new StatusError(failure.status, ({ 401: 'Unauthorized', 403: 'Forbidden', 429: 'TooManyRequests' } as Record<number, string>)[failure.status] ?? 'ServiceUnavailable', failure.message);
        }
        [status, answer] = this.serve(method, path, req.headers['content-type'], body, identity);
      } catch (e) {
        const error = e instanceof StatusError ? e : new StatusError(500, 'InternalError', e instanceof Error ? e.message : String(e));
        status = error.code;
        answer = {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: error.message,
          reason: error.reason,
          ...(error.details ? { details: error.details } : {}),
          code: error.code,
        };
      }
      this.requests.push({ method, path, body, user, status });
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  }

  private serve(method: string, path: string, contentType: string | undefined, body: unknown, identity: ReturnType<KubernetesApiStandIn['authenticate']>): [number, unknown] {
    const match = SECRET_PATH.exec(path);
    if (match === null) {
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    const namespace = decodeURIComponent(match[1]);
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const verb = { GET: name === undefined ? 'list' : 'get', POST: 'create', PUT: 'update', DELETE: 'delete' }[method];
    if (verb === undefined || (method === 'POST' && name !== undefined) || (method !== 'POST' && method !== 'GET' && name === undefined)) {
      throw new StatusError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`);
    }
    const allowed = identity.principal.namespaces;
    if (allowed !== undefined && !allowed.includes(namespace)) {
      const what = name === undefined ? 'secrets is forbidden' : `secrets "${name}" is forbidden`;
      throw new StatusError(403, 'Forbidden', `${what}: User "${identity.arn}" cannot ${verb} resource "secrets" in API group "" in the namespace "${namespace}"`, {
        ...(name !== undefined ? { name } : {}),
        kind: 'secrets',
      });
    }
    if ((method === 'POST' || method === 'PUT') && contentType?.split(';')[0].trim() !== 'application/json') {
      throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`);
    }
    if (method === 'GET' && name === undefined) {
      const items = [...this.store.values()].filter((s) => s.metadata.namespace === namespace);
      return [200, { kind: 'SecretList', apiVersion: 'v1', metadata: { resourceVersion: String(this.revision) }, items }];
    }
    if (method === 'GET') {
      return [200, this.existing(namespace, name!)];
    }
    if (method !== 'POST') {
      // Writes on an existing Secret: the interloper runs first, so what it changed is what the write finds.
      this.interlope(namespace, name!, method);
    }
    switch (method) {
      case 'POST': {
        const incoming = this.decode(body, namespace, undefined);
        this.interlope(namespace, incoming.metadata.name, method);
        if (!this.namespaces.has(namespace)) {
          throw new StatusError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
        }
        if (incoming.metadata.resourceVersion !== '') {
          throw new StatusError(400, 'BadRequest', 'resourceVersion should not be set on objects to be created');
        }
        if (this.store.has(`${namespace}/${incoming.metadata.name}`)) {
          throw new StatusError(409, 'AlreadyExists', `secrets "${incoming.metadata.name}" already exists`, { name: incoming.metadata.name, kind: 'secrets' });
        }
        return [201, this.write({ ...incoming, metadata: { ...incoming.metadata, uid: crypto.randomUUID(), creationTimestamp: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z') } })];
      }
      case 'PUT': {
        const incoming = this.decode(body, namespace, name);
        const current = this.existing(namespace, name!);
        if (incoming.metadata.resourceVersion === '') {
          throw new StatusError(422, 'Invalid', `Secret "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`, { name, kind: 'Secret' });
        }
        if (incoming.metadata.resourceVersion !== current.metadata.resourceVersion) {
          throw new StatusError(409, 'Conflict', `Operation cannot be fulfilled on secrets "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, kind: 'secrets' });
        }
        if (incoming.type !== current.type) {
          throw new StatusError(422, 'Invalid', `Secret "${name}" is invalid: type: Invalid value: "${incoming.type}": field is immutable`, { name, kind: 'Secret' });
        }
        if (current.immutable && (!incoming.immutable || canonicalJson(incoming.data ?? {}) !== canonicalJson(current.data ?? {}))) {
          throw new StatusError(422, 'Invalid', `Secret "${name}" is invalid: data: Forbidden: field is immutable when \`immutable\` is set`, { name, kind: 'Secret' });
        }
        const next: StoredSecret = { ...incoming, metadata: { ...incoming.metadata, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp } };
        if (canonicalJson(next) === canonicalJson(current)) {
          return [200, current];
        }
        return [200, this.write(next)];
      }
      default: {
        const current = this.existing(namespace, name!);
        const preconditions = isRecord(body) && isRecord(body.preconditions) ? body.preconditions : {};
        if (preconditions.uid !== undefined && preconditions.uid !== current.metadata.uid) {
          throw new StatusError(409, 'Conflict', `Precondition failed: UID in precondition: ${JSON.stringify(preconditions.uid)}, UID in object meta: ${current.metadata.uid}`, { name, kind: 'secrets' });
        }
        if (preconditions.resourceVersion !== undefined && preconditions.resourceVersion !== current.metadata.resourceVersion) {
          throw new StatusError(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${JSON.stringify(preconditions.resourceVersion)}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`, { name, kind: 'secrets' });
        }
        this.store.delete(`${namespace}/${name}`);
        this.revision++;
        return [200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, kind: 'secrets', uid: current.metadata.uid } }];
      }
    }
  }

  private interlope(namespace: string, name: string, method: string): void {
    const interloper = this.interlopers.shift();
    interloper?.({ namespace, name, method }, this);
  }

  private existing(namespace: string, name: string): StoredSecret {
    const stored = this.store.get(`${namespace}/${name}`);
    if (stored === undefined) {
      throw new StatusError(404, 'NotFound', `secrets "${name}" not found`, { name, kind: 'secrets' });
    }
    return JSON.parse(JSON.stringify(stored)) as StoredSecret;
  }

  private write(secret: StoredSecret): StoredSecret {
    this.revision++;
    const stored: StoredSecret = { ...secret, metadata: { ...secret.metadata, resourceVersion: String(this.revision) } };
    this.store.set(`${stored.metadata.namespace}/${stored.metadata.name}`, stored);
    return JSON.parse(JSON.stringify(stored)) as StoredSecret;
  }

  /** Decodes and validates a Secret body as the API server does; `name` is the URL's (PUT). */
  private decode(body: unknown, namespace: string, name: string | undefined): StoredSecret {
    if (!isRecord(body)) {
      throw new StatusError(400, 'BadRequest', 'the body of the request is not a JSON object');
    }
    if (body.apiVersion !== 'v1' || body.kind !== 'Secret') {
      throw new StatusError(400, 'BadRequest', `the API version in the data (${String(body.apiVersion)}) or kind (${String(body.kind)}) does not match the expected v1 Secret`);
    }
    const metadata = isRecord(body.metadata) ? body.metadata : {};
    const objectName = metadata.name;
    if (typeof objectName !== 'string' || objectName === '') {
      throw new StatusError(422, 'Invalid', 'Secret "" is invalid: metadata.name: Required value: name or generateName is required', { kind: 'Secret' });
    }
    if (objectName.length > 253 || !DNS1123_SUBDOMAIN.test(objectName)) {
      throw new StatusError(422, 'Invalid', `Secret "${objectName}" is invalid: metadata.name: Invalid value: "${objectName}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`, { name: objectName, kind: 'Secret' });
    }
    if (name !== undefined && objectName !== name) {
      throw new StatusError(400, 'BadRequest', `the name of the object (${objectName}) does not match the name on the URL (${name})`);
    }
    if (metadata.namespace !== undefined && metadata.namespace !== namespace) {
      throw new StatusError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
    }
    const data = body.data === undefined ? {} : body.data;
    if (!isRecord(data) || Object.values(data).some((v) => typeof v !== 'string')) {
      throw new StatusError(400, 'BadRequest', 'Secret in version "v1" cannot be handled as a Secret: data must be a map of strings');
    }
    for (const [key, value] of Object.entries(data as Record<string, string>)) {
      if (!DATA_KEY.test(key) || key.length > 253) {
        throw new StatusError(422, 'Invalid', `Secret "${objectName}" is invalid: data[${key}]: Invalid value: "${key}": a valid config key must consist of alphanumeric characters, '-', '_' or '.'`, { name: objectName, kind: 'Secret' });
      }
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
        throw new StatusError(400, 'BadRequest', 'Secret in version "v1" cannot be handled as a Secret: illegal base64 data');
      }
    }
    const size = Object.values(data as Record<string, string>).reduce((n, v) => n + Buffer.from(v, 'base64').length, 0);
    if (size > 1024 * 1024) {
      throw new StatusError(422, 'Invalid', `Secret "${objectName}" is invalid: data: Too long: must have at most 1048576 bytes`, { name: objectName, kind: 'Secret' });
    }
    const strings = (v: unknown): Record<string, string> | undefined => (isRecord(v) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : undefined);
    const labels = strings(metadata.labels);
    const annotations = strings(metadata.annotations);
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: objectName,
        namespace,
        uid: '',
        resourceVersion: typeof metadata.resourceVersion === 'string' ? metadata.resourceVersion : '',
        creationTimestamp: '',
        ...(labels ? { labels } : {}),
        ...(annotations ? { annotations } : {}),
      },
      type: typeof body.type === 'string' && body.type !== '' ? body.type : 'Opaque',
      data: data as Record<string, string>,
      ...(body.immutable === true ? { immutable: true } : {}),
    };
  }
}

/** Decodes a query component as Go's url.ParseQuery does: `+` is a space, then percent-decoding. */
function decodeQuery(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/** SigV4's URI encoding: RFC 3986 unreserved characters stay, everything else is %XX (upper case). */
function rfc3986(text: string): string {
  return [...Buffer.from(text, 'utf8')].map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/** JSON with object keys sorted: how the stand-in compares objects (etcd stores maps in key order). */
function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown => (Array.isArray(v) ? v.map(sort) : isRecord(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])])) : v);
  return JSON.stringify(sort(value));
}

function digestHex(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
