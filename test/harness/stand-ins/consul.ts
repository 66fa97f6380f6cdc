/**
 * A LOCAL STAND-IN of the Consul HTTP API, for tests: an HTTPS server on 127.0.0.1 with its own CA and a server
 * certificate for `server.dc1.consul` only (so a client must verify the server name, not the address), made with the
 * library's x509 module. It is not Consul: it implements the endpoints lambda-mesh's handlers call, with the
 * semantics Consul documents, and records every request.
 *
 * - `GET  /v1/agent/connect/ca/roots`, `GET /v1/agent/connect/ca/leaf/:service` (real leaf certificates, signed by a
 *   stand-in Connect CA, with the SPIFFE URI SAN `spiffe://<trust domain>/ns/<ns>/dc/<dc>/svc/<service>`)
 * - `PUT  /v1/catalog/register`, `PUT /v1/catalog/deregister`, `GET /v1/catalog/service/:service`; a registration
 *   is vetted as Consul's vetRegisterWithACL does: `node:write` only when it creates the node or updates it (no
 *   `SkipNodeUpdate`), `service:write` on the service (and a proxy's destination), on the service of each service
 *   check and `node:write` for node checks; Address is required unless `SkipNodeUpdate` is set. Checks are vetted,
 *   not stored.
 * - `PUT  /v1/config[?cas=N]`, `GET /v1/config/:kind/:name`, `DELETE /v1/config/:kind/:name[?cas=N]`: check-and-set
 *   on ModifyIndex (cas=0: create only), answers `true`/`false`; service-intentions are decoded, normalized
 *   (Type, Precedence, source order) and validated as Consul CE does, so wrong field names or limits fail here too.
 * - `GET  /v1/catalog/node/:node`: `{Node, Services}`, or 200 `null` for a node that is unknown or that the token may
 *   not read (Consul filters by ACL here rather than refusing).
 * - ACL objects, as Consul CE's ACL endpoints validate them (agent/acl_endpoint.go, agent/consul/acl_endpoint.go):
 *   - auth methods: `PUT /v1/acl/auth-method` (an upsert, as in Consul), `GET|PUT|DELETE /v1/acl/auth-method/:name`,
 *     `GET /v1/acl/auth-methods` (without Config). Types `aws-iam` and `kubernetes`, their Config decoded as Consul's
 *     validators decode it (unknown keys fail, keys match case-insensitively); deleting a method deletes its binding
 *     rules and the tokens {@link ConsulStandIn.login} issued through it.
 *   - binding rules: `PUT /v1/acl/binding-rule`, `GET|PUT|DELETE /v1/acl/binding-rule/:id`,
 *     `GET /v1/acl/binding-rules[?authmethod=]`; the Selector is parsed (a subset of go-bexpr) and checked against the
 *     method's selectable fields, the BindName interpolated (HIL `${var}`) with the method's variables.
 *   - policies and roles: `PUT /v1/acl/policy|role`, `GET|PUT|DELETE /v1/acl/policy|role/:id`,
 *     `GET /v1/acl/policy|role/name/:name`; roles link policies by ID and answer them with their current names.
 *   - {@link ConsulStandIn.login} computes what a login would bind (no HTTP: the stand-in cannot verify AWS or
 *     Kubernetes credentials), and {@link matchesSelector} evaluates a selector against login attributes. The token
 *     it issues is accepted by the HTTP API with the permissions of its identities (see {@link identityPermissions});
 *     `POST /v1/acl/logout` deletes it, as Consul does (403 for a token that no login issued).
 *   Where the stand-in is stricter than Consul it says so in its message ("stand-in check"): a selector on a tag not in
 *   IAMEntityTags, or on entity_path/entity_tags without EnableIAMEntityDetails, is refused (Consul accepts it and it
 *   never matches); Config values must have their JSON types (Consul decodes them weakly, e.g. "true" as true).
 * - ACLs: a token table (SecretID -> permissions); unknown token 403 `ACL not found`, missing permission 403
 *   `Permission denied: token with AccessorID '...' lacks permission '...' on "..."` (without `on` for `acl:*`).
 * - Faults: fail the next N requests with a status, drop connections, delay, lose the next CAS writes to an
 *   interloper who writes in between. They apply to every endpoint.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/config
 * @see https://developer.hashicorp.com/consul/api-docs/catalog
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
 * @see https://developer.hashicorp.com/consul/api-docs/acl/auth-methods
 * @see https://developer.hashicorp.com/consul/api-docs/acl/binding-rules
 * @see https://developer.hashicorp.com/consul/api-docs/acl/policies
 * @see https://developer.hashicorp.com/consul/api-docs/acl/roles
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/aws
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/k8s
 * @see https://github.com/hashicorp/go-bexpr (the selector grammar)
 */
import * as crypto from 'crypto';
import * as https from 'https';
import type * as http from 'http';
import type { AddressInfo } from 'net';
import {
  KeyUsageBit,
  Oid,
  createCa,
  createServerCertificate,
  derBitString,
  derBoolean,
  derDirectoryString,
  derExplicit,
  derImplicit,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derSet,
  derTime,
  keyIdentifierOf,
  type CertificateAndKey,
} from '../../../constructs/consul/private/secrets-handler/x509';
import { compare } from '../../../constructs/core/names';

/**
 * A permission of a stand-in token, after Consul's ACL rules: `<resource>:<read|write>` on every name, or
 * `<resource>:<read|write>:<name prefix>`; `management` allows everything. Write implies read.
 */
export type ConsulStandInPermission = 'management' | `${ConsulStandInResource}:${'read' | 'write'}` | `${ConsulStandInResource}:${'read' | 'write'}:${string}`;

/** The ACL resources the stand-in checks. */
export type ConsulStandInResource = 'service' | 'intentions' | 'node' | 'operator' | 'acl';

/** Options of {@link ConsulStandIn.start}. */
export interface ConsulStandInOptions {
  /**
   * Tokens by SecretID, with what each may do.
   * @default - one token, {@link ConsulStandIn.MANAGEMENT_TOKEN}, allowed everything
   */
  readonly tokens?: Readonly<Record<string, readonly ConsulStandInPermission[]>>;
  /**
   * The lifetime of issued leaf certificates.
   * @default 72 hours (Consul's default leaf_cert_ttl)
   */
  readonly leafTtlMs?: number;
  /**
   * The datacenter.
   * @default 'dc1'
   */
  readonly datacenter?: string;
  /**
   * The Connect CA's SPIFFE trust domain.
   * @default - `<random uuid>.consul`, as Consul's built-in CA names it
   */
  readonly trustDomain?: string;
}

/** One request as the stand-in received it. */
export interface RecordedConsulRequest {
  readonly method: string;
  /** The path without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The parsed JSON body (undefined when empty; the raw text when not JSON). */
  readonly body: unknown;
  /** Whether the request carried a token (X-Consul-Token or Authorization: Bearer). */
  readonly hadToken: boolean;
}

/** A Connect CA root, as the roots endpoint lists it. */
export interface ConnectRoot {
  readonly id: string;
  readonly name: string;
  readonly ca: CertificateAndKey;
  readonly signingKeyId: string;
  readonly subjectName: Buffer;
  readonly keyIdentifier: Buffer;
  readonly createIndex: number;
  active: boolean;
}

/** A leaf certificate the stand-in issued. */
export interface IssuedLeaf {
  readonly service: string;
  readonly serial: string;
  readonly certPem: string;
  readonly privateKeyPem: string;
  readonly serviceUri: string;
  readonly rootId: string;
  readonly validAfter: Date;
  readonly validBefore: Date;
  readonly index: number;
}

/** A service registered through the catalog. */
export interface CatalogService {
  readonly node: string;
  readonly registration: Readonly<Record<string, unknown>>;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A catalog node. */
export interface CatalogNode {
  readonly node: string;
  readonly address: string;
  readonly registration: Readonly<Record<string, unknown>>;
  readonly services: Map<string, CatalogService>;
  readonly createIndex: number;
  modifyIndex: number;
}

/** What a login through an auth method binds, as Consul computes it (see {@link ConsulStandIn.login}). */
export interface ConsulLoginResult {
  readonly ServiceIdentities: ReadonlyArray<{ readonly ServiceName: string }>;
  readonly NodeIdentities: ReadonlyArray<{ readonly NodeName: string; readonly Datacenter: string }>;
  readonly Roles: ReadonlyArray<{ readonly ID: string; readonly Name: string }>;
  readonly Policies: ReadonlyArray<{ readonly ID: string; readonly Name: string }>;
  readonly TemplatedPolicies: ReadonlyArray<{ readonly TemplateName: string; readonly TemplateVariables?: { readonly Name: string } }>;
  /** The token issued; undefined when nothing is bound (Consul then refuses the login: 403 Permission denied). */
  readonly token?: ConsulLoginToken;
}

/** A token issued by {@link ConsulStandIn.login}, with what it was bound to. */
export interface ConsulLoginToken extends Omit<ConsulLoginResult, 'token'> {
  readonly AccessorID: string;
  readonly SecretID: string;
  readonly AuthMethod: string;
  readonly Description: string;
  /** False when the method's TokenLocality is `global`. */
  readonly Local: boolean;
  /** Set when the method has a MaxTokenTTL (RFC 3339). */
  readonly ExpirationTime?: string;
  readonly CreateIndex: number;
}

/** Everything the stand-in stores; tests may read it and seed it. */
export interface ConsulStandInState {
  /** The Raft index: every write increments it. */
  index: number;
  /** Config entries by `<kind>/<name>`, as GET returns them (normalized, with CreateIndex and ModifyIndex). */
  readonly configEntries: Map<string, Record<string, unknown>>;
  /** Catalog nodes by name. */
  readonly nodes: Map<string, CatalogNode>;
  /** Connect CA roots, oldest first. */
  readonly roots: ConnectRoot[];
  /** The current leaf certificate per service (what the agent cache would return). */
  readonly leaves: Map<string, IssuedLeaf>;
  /** Every leaf certificate issued, in order. */
  readonly issuedLeaves: IssuedLeaf[];
  /** ACL auth methods by Name, as `GET /v1/acl/auth-method/:name` returns them. */
  readonly authMethods: Map<string, Record<string, unknown>>;
  /** ACL binding rules by ID, as `GET /v1/acl/binding-rule/:id` returns them. */
  readonly bindingRules: Map<string, Record<string, unknown>>;
  /** ACL policies by ID, as `GET /v1/acl/policy/:id` returns them. */
  readonly policies: Map<string, Record<string, unknown>>;
  /**
   * ACL roles by ID. Policies are linked by ID; the Name stored with a link is the one at the write (GET answers the
   * current names and leaves out deleted policies, as Consul does).
   */
  readonly roles: Map<string, Record<string, unknown>>;
  /** The tokens {@link ConsulStandIn.login} issued, by AccessorID. */
  readonly loginTokens: Map<string, ConsulLoginToken>;
}

interface PendingFailure {
  readonly status: number;
  readonly message: string;
}

/** What stands in for the other writer when a CAS write is made to lose. */
export type CasInterloper = (current: Record<string, unknown> | undefined, incoming: Record<string, unknown> | undefined) => Record<string, unknown> | undefined;

/** The permission check of one request: throws Consul's 403, or answers whether the token may (for filtering). */
interface AclCheck {
  (resource: ConsulStandInResource, access: 'read' | 'write', name?: string): void;
  allows(resource: ConsulStandInResource, access: 'read' | 'write', name?: string): boolean;
}

class HttpError extends Error {
  public constructor(public readonly status: number, message: string) {
    super(message);
  }
}

const INTENTIONS = 'service-intentions';
const SERVICE_DEFAULTS = 'service-defaults';
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE']);
const META_MAX_PAIRS = 64;
const META_KEY_MAX = 128;
const META_VALUE_MAX = 512;

/**
 * A local stand-in of the Consul HTTP API over real TLS. Start it with {@link ConsulStandIn.start}, point a client
 * at `address` with `caPem` and `serverName`, and `close()` it after the tests.
 */
export class ConsulStandIn {
  /** The SecretID of the default token, which may do everything. */
  public static readonly MANAGEMENT_TOKEN = '00000000-0000-4000-8000-00000000aaaa';

  /** Starts a stand-in on 127.0.0.1 and a free port. */
  public static async start(options: ConsulStandInOptions = {}): Promise<ConsulStandIn> {
    const standIn = new ConsulStandIn(options);
    await new Promise<void>((resolve, reject) => {
      standIn.server.once('error', reject);
      standIn.server.listen(0, '127.0.0.1', () => resolve());
    });
    return standIn;
  }

  /** The TLS name in the server certificate (the only one). */
  public readonly serverName = 'server.dc1.consul';
  /** The CA that signed the server certificate (PEM). */
  public readonly caPem: string;
  /** Every request received, in order. */
  public readonly requests: RecordedConsulRequest[] = [];
  /** What the stand-in stores. */
  public readonly state: ConsulStandInState;
  /** The tokens, by SecretID (mutable: tests may add or revoke tokens). */
  public readonly tokens: Map<string, readonly ConsulStandInPermission[]>;
  /** The datacenter. */
  public readonly datacenter: string;
  /** The Connect CA's trust domain. */
  public readonly trustDomain: string;
  /** The lifetime of leaf certificates issued from now on. */
  public leafTtlMs: number;

  private readonly server: https.Server;
  private readonly tlsCa: CertificateAndKey;
  private failures: PendingFailure[] = [];
  private drops = 0;
  private delays: number[] = [];
  private casLosses: CasInterloper[] = [];
  private serial = 1;

  private constructor(options: ConsulStandInOptions) {
    this.datacenter = options.datacenter ?? 'dc1';
    this.trustDomain = options.trustDomain ?? `${crypto.randomUUID()}.consul`;
    this.leafTtlMs = options.leafTtlMs ?? 72 * 3600 * 1000;
    this.tokens = new Map(Object.entries(options.tokens ?? { [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'] }));
    this.tlsCa = createCa({ commonName: 'Consul Agent CA (stand-in)', validityDays: 30 });
    this.caPem = this.tlsCa.certificatePem;
    const serverCert = createServerCertificate({ ca: this.tlsCa, commonName: this.serverName, dnsNames: [this.serverName], ipAddresses: [], validityDays: 30 });
    this.state = {
      index: 10,
      configEntries: new Map(),
      nodes: new Map(),
      roots: [],
      leaves: new Map(),
      issuedLeaves: [],
      authMethods: new Map(),
      bindingRules: new Map(),
      policies: new Map(),
      roles: new Map(),
      loginTokens: new Map(),
    };
    this.rotateConnectCa();
    this.server = https.createServer({ cert: serverCert.certificatePem, key: serverCert.privateKeyPem }, (req, res) => this.receive(req, res));
  }

  /** `https://127.0.0.1:<port>`. */
  public get address(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** A connection for a client of this stand-in, with `token` (default: the management token). */
  public connection(token: string = ConsulStandIn.MANAGEMENT_TOKEN): { address: string; caPem: string; serverName: string; token: string } {
    return { address: this.address, caPem: this.caPem, serverName: this.serverName, token };
  }

  /** Stops the server, closing kept-alive connections. */
  public async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Forgets requests and faults (state is kept). */
  public resetRequests(): void {
    this.requests.length = 0;
  }

  /** The next `count` requests fail with `status` (default 500) and `message`, before ACLs are checked. */
  public failNext(count: number, status = 500, message = 'rpc error making call: No cluster leader'): void {
    for (let i = 0; i < count; i++) {
      this.failures.push({ status, message });
    }
  }

  /** The next `count` requests have their connection destroyed without an answer (the client sees ECONNRESET). */
  public dropNext(count: number): void {
    this.drops += count;
  }

  /** The next `count` requests are answered after `ms`. */
  public delayNext(count: number, ms: number): void {
    for (let i = 0; i < count; i++) {
      this.delays.push(ms);
    }
  }

  /**
   * The next `count` check-and-set writes (`PUT /v1/config?cas=` or `DELETE ...?cas=`) lose: just before each, another
   * writer changes the entry, so the index no longer matches. `interloper` says what that writer leaves; by default it
   * rewrites the current entry unchanged (only its ModifyIndex moves), or creates the incoming one when there was none.
   */
  public loseNextCas(count = 1, interloper?: CasInterloper): void {
    for (let i = 0; i < count; i++) {
      this.casLosses.push(interloper ?? ((current, incoming) => current ?? incoming));
    }
  }

  /** The stored config entry, or undefined. */
  public configEntry(kind: string, name: string): Record<string, unknown> | undefined {
    const entry = this.state.configEntries.get(`${kind}/${name}`);
    return entry === undefined ? undefined : (JSON.parse(JSON.stringify(entry)) as Record<string, unknown>);
  }

  /** Writes a config entry directly (as another tool or an operator would have), normalized and validated like a PUT. */
  public seedConfigEntry(entry: Record<string, unknown>): Record<string, unknown> {
    const normalized = decodeAndValidate(entry);
    this.store(normalized);
    return this.configEntry(String(normalized.Kind), String(normalized.Name))!;
  }

  /** The requests that wrote (PUT or DELETE) `/v1/config`. */
  public configWrites(): RecordedConsulRequest[] {
    return this.requests.filter((r) => (r.method === 'PUT' && r.path === '/v1/config') || (r.method === 'DELETE' && r.path.startsWith('/v1/config/')));
  }

  /** Makes a new Connect CA root the active one (the old ones stay listed, inactive), as a CA rotation does. */
  public rotateConnectCa(): ConnectRoot {
    const n = this.state.roots.length + 1;
    const commonName = `Consul CA ${n} (stand-in)`;
    const ca = createCa({ commonName, validityDays: 3650 });
    const cert = new crypto.X509Certificate(ca.certificatePem);
    const keyIdentifier = keyIdentifierOf(cert.publicKey);
    for (const r of this.state.roots) {
      r.active = false;
    }
    const root: ConnectRoot = {
      id: cert.fingerprint.toLowerCase(),
      name: commonName,
      ca,
      signingKeyId: colonHex(keyIdentifier),
      // Byte-identical to the subject x509.ts writes: one CN, PrintableString when it fits.
      subjectName: derSequence(derSet(derSequence(derOid(Oid.COMMON_NAME), derDirectoryString(commonName)))),
      keyIdentifier,
      createIndex: ++this.state.index,
      active: true,
    };
    this.state.roots.push(root);
    return root;
  }

  /** The active Connect CA root. */
  public activeRoot(): ConnectRoot {
    return this.state.roots.find((r) => r.active)!;
  }

  /** The requests that wrote (PUT or DELETE) ACL objects under `/v1/acl/`. */
  public aclWrites(): RecordedConsulRequest[] {
    return this.requests.filter((r) => (r.method === 'PUT' || r.method === 'DELETE') && r.path.startsWith('/v1/acl/'));
  }

  /** The stored auth method, as GET answers it, or undefined. */
  public authMethod(name: string): Record<string, unknown> | undefined {
    const method = this.state.authMethods.get(name);
    return method === undefined ? undefined : clone(method);
  }

  /** The binding rules (of `authMethod`, or all), as `GET /v1/acl/binding-rules` lists them. */
  public bindingRules(authMethod?: string): Array<Record<string, unknown>> {
    return this.listBindingRules(authMethod ?? '');
  }

  /** The policy named `name`, as GET answers it, or undefined. */
  public policy(name: string): Record<string, unknown> | undefined {
    const policy = this.policyByName(name);
    return policy === undefined ? undefined : clone(policy);
  }

  /** The role named `name`, as GET answers it (policy links with their current names), or undefined. */
  public role(name: string): Record<string, unknown> | undefined {
    const role = [...this.state.roles.values()].find((r) => r.Name === name);
    return role === undefined ? undefined : this.renderRole(role);
  }

  /** Writes an auth method directly (an upsert, as `PUT /v1/acl/auth-method`), validated like a PUT. */
  public seedAuthMethod(method: Record<string, unknown>): Record<string, unknown> {
    return this.putAuthMethod(decodeAuthMethod(method));
  }

  /** Creates a binding rule directly, validated like `PUT /v1/acl/binding-rule`; the answer has its new ID. */
  public seedBindingRule(rule: Record<string, unknown>): Record<string, unknown> {
    return this.putBindingRule(decodeBindingRule(rule));
  }

  /** Creates a policy directly, validated like `PUT /v1/acl/policy`. */
  public seedPolicy(policy: Record<string, unknown>): Record<string, unknown> {
    return this.putPolicy(decodePolicy(policy));
  }

  /** Creates a role directly, validated like `PUT /v1/acl/role`. */
  public seedRole(role: Record<string, unknown>): Record<string, unknown> {
    return this.putRole(decodeRole(role));
  }

  /**
   * What a login through `authMethodName` yields for an identity with `attributes`, computed as Consul's binder does
   * (agent/consul/auth/binder.go): the method projects its variables from the attributes (an aws-iam method without
   * EnableIAMEntityDetails sees only entity_name, entity_id and account_id, and only the tags in IAMEntityTags, missing
   * ones as ""); every binding rule of the method whose selector matches (an empty one matches all) binds its BindName
   * with `${...}` interpolated from those variables, lower-cased as Consul does; role and policy bindings whose target
   * does not exist are skipped. When something is bound, the token is recorded in `state.loginTokens`.
   *
   * No credentials are verified: the caller states what AWS or Kubernetes would have vouched for.
   *
   * @param attributes flat, as the method names its variables: `{ entity_name: 'x', 'entity_tags.team': 'y' }`,
   *   `{ 'serviceaccount.name': 'x' }`
   * @throws Error `ACL not found: auth method "..." not found`, or when a matching rule yields an invalid name (Consul
   *   fails such a login)
   */
  public login(authMethodName: string, attributes: Readonly<Record<string, string>>): ConsulLoginResult {
    const method = this.state.authMethods.get(authMethodName);
    if (method === undefined) {
      throw new Error(`ACL not found: auth method ${JSON.stringify(authMethodName)} not found`);
    }
    const identity = identityOf(method);
    const vars = Object.fromEntries(identity.vars.map((v) => [v, Object.prototype.hasOwnProperty.call(attributes, v) ? attributes[v] : '']));
    // Keyed, so a name bound by two rules is bound once (as token creation de-duplicates).
    const bound = {
      services: new Map<string, { ServiceName: string }>(),
      nodes: new Map<string, { NodeName: string; Datacenter: string }>(),
      roles: new Map<string, { ID: string; Name: string }>(),
      policies: new Map<string, { ID: string; Name: string }>(),
      templated: [] as Array<{ TemplateName: string; TemplateVariables?: { Name: string } }>,
    };
    for (const rule of this.listBindingRules(authMethodName)) {
      if (!selectorMatchesQuietly(typeof rule.Selector === 'string' ? rule.Selector : '', vars)) {
        continue;
      }
      const bindType = String(rule.BindType);
      const bindName = String(rule.BindName);
      if (bindType === 'templated-policy') {
        bound.templated.push(templatedPolicyOf(bindName, rule.BindVars as { Name?: string } | undefined, vars));
        continue;
      }
      const name = computeBindName(bindName, vars, bindType === 'service' || bindType === 'node' ? isValidIdentityName : isValidRoleName);
      if (bindType === 'service') {
        bound.services.set(name, { ServiceName: name });
      } else if (bindType === 'node') {
        bound.nodes.set(name, { NodeName: name, Datacenter: this.datacenter });
      } else if (bindType === 'role') {
        const role = [...this.state.roles.values()].find((r) => r.Name === name);
        if (role !== undefined) {
          bound.roles.set(String(role.ID), { ID: String(role.ID), Name: name });
        }
      } else if (bindType === 'policy') {
        const policy = this.policyByName(name);
        if (policy !== undefined) {
          bound.policies.set(String(policy.ID), { ID: String(policy.ID), Name: name });
        }
      }
    }
    const result = {
      ServiceIdentities: [...bound.services.values()],
      NodeIdentities: [...bound.nodes.values()],
      Roles: [...bound.roles.values()],
      Policies: [...bound.policies.values()],
      TemplatedPolicies: bound.templated,
    };
    if (Object.values(result).every((list) => list.length === 0)) {
      return result;
    }
    const ttl = typeof method.MaxTokenTTL === 'string' ? parseGoDuration(method.MaxTokenTTL) ?? 0 : 0;
    const token: ConsulLoginToken = {
      AccessorID: crypto.randomUUID(),
      SecretID: crypto.randomUUID(),
      AuthMethod: authMethodName,
      Description: 'token created via login',
      Local: method.TokenLocality !== 'global',
      ...(ttl > 0 ? { ExpirationTime: new Date(Date.now() + ttl / 1e6).toISOString() } : {}),
      ...clone(result),
      CreateIndex: ++this.state.index,
    };
    this.state.loginTokens.set(token.AccessorID, token);
    return { ...result, token };
  }

  // ------------------------------------------------------------------------------------------------------------
  // Request handling.
  // ------------------------------------------------------------------------------------------------------------

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void this.answer(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  }

  private async answer(req: http.IncomingMessage, res: http.ServerResponse, text: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://stand-in');
    const token = tokenOf(req);
    const body = parseJson(text);
    this.requests.push({ method: req.method ?? '', path: url.pathname, query: Object.fromEntries(url.searchParams), body, hadToken: token !== undefined });

    const delay = this.delays.shift();
    if (delay !== undefined) {
      await new Promise((r) => setTimeout(r, delay));
    }
    if (this.drops > 0) {
      this.drops--;
      req.socket.destroy();
      return;
    }
    const failure = this.failures.shift();
    if (failure) {
      return sendText(res, failure.status, failure.message);
    }
    try {
      const result = this.route(req.method ?? '', url, token, body);
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Consul-Index': String(result.index ?? this.state.index) });
      res.end(JSON.stringify(result.body));
    } catch (e) {
      if (e instanceof HttpError) {
        return sendText(res, e.status, e.message);
      }
      return sendText(res, 500, e instanceof Error ? e.message : String(e));
    }
  }

  private route(method: string, url: URL, token: string | undefined, body: unknown): { body: unknown; index?: number } {
    const path = url.pathname;
    const acl = this.aclFor(token);
    const allow = (methods: string[]): void => {
      if (!methods.includes(method)) {
        throw new HttpError(405, `method ${method} not allowed`);
      }
    };
    if (path === '/v1/agent/connect/ca/roots') {
      allow(['GET']);
      return this.roots();
    }
    const leaf = /^\/v1\/agent\/connect\/ca\/leaf\/([^/]+)$/.exec(path);
    if (leaf) {
      allow(['GET']);
      const service = decodeURIComponent(leaf[1]);
      acl('service', 'write', service);
      return this.leaf(service, url.searchParams.get('ns') ?? 'default');
    }
    if (path === '/v1/catalog/register') {
      allow(['PUT']);
      return { body: this.register(asObject(body, 'Request decode failed'), acl) };
    }
    if (path === '/v1/catalog/deregister') {
      allow(['PUT']);
      return { body: this.deregister(asObject(body, 'Request decode failed'), acl) };
    }
    const catalogNode = /^\/v1\/catalog\/node\/([^/]+)$/.exec(path);
    if (catalogNode) {
      allow(['GET']);
      return { body: this.catalogNode(decodeURIComponent(catalogNode[1]), acl) };
    }
    if (path === '/v1/acl/logout') {
      allow(['POST']);
      return { body: this.logout(token) };
    }
    if (path.startsWith('/v1/acl/')) {
      const answer = this.routeAcl(method, path, url, acl, body);
      if (answer) {
        return answer;
      }
    }
    const catalogService = /^\/v1\/catalog\/service\/([^/]+)$/.exec(path);
    if (catalogService) {
      allow(['GET']);
      const name = decodeURIComponent(catalogService[1]);
      acl('service', 'read', name);
      return { body: this.catalogService(name) };
    }
    if (path === '/v1/config') {
      allow(['PUT']);
      return { body: this.applyConfig(body, url.searchParams.get('cas'), acl) };
    }
    const config = /^\/v1\/config\/([^/]+)\/([^/]+)$/.exec(path);
    if (config) {
      allow(['GET', 'DELETE']);
      const [kind, name] = [decodeURIComponent(config[1]), decodeURIComponent(config[2])];
      const key = `${kind}/${name}`;
      if (method === 'GET') {
        acl(resourceOfKind(kind), 'read', name);
        const entry = this.state.configEntries.get(key);
        if (!entry) {
          throw new HttpError(404, `Config entry not found for ${JSON.stringify(kind)} / ${JSON.stringify(name)}`);
        }
        return { body: entry, index: Number(entry.ModifyIndex) };
      }
      acl(resourceOfKind(kind), 'write', name);
      return { body: this.deleteConfig(key, url.searchParams.get('cas')) };
    }
    throw new HttpError(404, 'Invalid URL path: not a recognized HTTP API endpoint (stand-in)');
  }

  /** Resolves the token and returns the check for its permissions. */
  private aclFor(token: string | undefined): AclCheck {
    const login = token === undefined || this.tokens.has(token) ? undefined : this.loginTokenBySecret(token);
    const permissions = token === undefined ? [] : this.tokens.get(token) ?? (login && this.loginTokenPermissions(login));
    if (permissions === undefined) {
      // Consul's answer to a SecretID it does not know.
      throw new HttpError(403, 'ACL not found');
    }
    const accessor = token === undefined ? '00000000-0000-0000-0000-000000000002' : login?.AccessorID ?? accessorIdOf(token);
    const allows = (resource: ConsulStandInResource, access: 'read' | 'write', name = ''): boolean =>
      permissions.some((p) => {
        if (p === 'management') {
          return true;
        }
        const [r, a, prefix] = splitPermission(p);
        return r === resource && (a === 'write' || access === 'read') && name.startsWith(prefix);
      });
    const check = (resource: ConsulStandInResource, access: 'read' | 'write', name?: string): void => {
      if (!allows(resource, access, name)) {
        // Consul names the resource only for named rules: `acl` has none.
        const on = name === undefined ? '' : ` on ${JSON.stringify(name)}`;
        throw new HttpError(403, `Permission denied: token with AccessorID '${accessor}' lacks permission '${resource}:${access}'${on}`);
      }
    };
    return Object.assign(check, { allows });
  }

  private loginTokenBySecret(secretId: string): ConsulLoginToken | undefined {
    return [...this.state.loginTokens.values()].find((t) => t.SecretID === secretId);
  }

  /** The permissions of a login token: its identities', and those of its roles (their policies' rules are not read). */
  private loginTokenPermissions(token: ConsulLoginToken): ConsulStandInPermission[] {
    const roles = token.Roles.map((link) => this.state.roles.get(link.ID)).filter((r): r is Record<string, unknown> => r !== undefined);
    const services = [...token.ServiceIdentities, ...roles.flatMap((r) => (r.ServiceIdentities ?? []) as Array<{ ServiceName: string }>)];
    const nodes = [...token.NodeIdentities, ...roles.flatMap((r) => (r.NodeIdentities ?? []) as Array<{ NodeName: string }>)];
    return identityPermissions(services.map((s) => s.ServiceName), nodes.map((n) => n.NodeName));
  }

  /** `POST /v1/acl/logout` (ACL.Logout): deletes the caller's token if a login issued it. */
  private logout(token: string | undefined): boolean {
    const login = token === undefined ? undefined : this.loginTokenBySecret(token);
    if (login === undefined) {
      throw new HttpError(403, token === undefined || !this.tokens.has(token) ? 'ACL not found' : 'Permission denied');
    }
    this.state.loginTokens.delete(login.AccessorID);
    ++this.state.index;
    return true;
  }

  private roots(): { body: unknown; index: number } {
    const active = this.activeRoot();
    return {
      index: active.createIndex,
      body: {
        ActiveRootID: active.id,
        TrustDomain: this.trustDomain,
        Roots: this.state.roots.map((r) => {
          const cert = new crypto.X509Certificate(r.ca.certificatePem);
          return {
            ID: r.id,
            Name: r.name,
            SerialNumber: parseInt(cert.serialNumber.slice(-8), 16),
            SigningKeyID: r.signingKeyId,
            ExternalTrustDomain: this.trustDomain.replace(/\.consul$/, ''),
            NotBefore: new Date(cert.validFrom).toISOString().replace(/\.\d{3}Z$/, 'Z'),
            NotAfter: new Date(cert.validTo).toISOString().replace(/\.\d{3}Z$/, 'Z'),
            RootCert: r.ca.certificatePem,
            IntermediateCerts: null,
            Active: r.active,
            PrivateKeyType: 'ec',
            PrivateKeyBits: 256,
            CreateIndex: r.createIndex,
            ModifyIndex: r.createIndex,
          };
        }),
      },
    };
  }

  /** Returns the cached leaf for `service` while it is valid and signed by the active root, else issues a new one. */
  private leaf(service: string, namespace: string): { body: unknown; index: number } {
    const active = this.activeRoot();
    let leaf = this.state.leaves.get(service);
    if (!leaf || leaf.rootId !== active.id || leaf.validBefore.getTime() <= Date.now()) {
      leaf = this.issueLeaf(service, namespace, active);
      this.state.leaves.set(service, leaf);
      this.state.issuedLeaves.push(leaf);
    }
    return {
      index: leaf.index,
      body: {
        SerialNumber: leaf.serial,
        CertPEM: leaf.certPem,
        PrivateKeyPEM: leaf.privateKeyPem,
        Service: service,
        ServiceURI: leaf.serviceUri,
        ValidAfter: leaf.validAfter.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        ValidBefore: leaf.validBefore.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        Namespace: namespace,
        CreateIndex: leaf.index,
        ModifyIndex: leaf.index,
      },
    };
  }

  /**
   * A Connect leaf: CN = service, URI SAN = the SPIFFE ID, CA:FALSE, digitalSignature + keyEncipherment + keyAgreement,
   * serverAuth + clientAuth, key identifiers; EC P-256, signed ECDSA-SHA256 by the active root.
   */
  private issueLeaf(service: string, namespace: string, root: ConnectRoot): IssuedLeaf {
    const serviceUri = `spiffe://${this.trustDomain}/ns/${namespace}/dc/${this.datacenter}/svc/${service}`;
    const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const nowS = Math.floor(Date.now() / 1000) * 1000;
    const validAfter = new Date(nowS - 60_000);
    const validBefore = new Date(nowS + Math.max(1000, Math.floor(this.leafTtlMs / 1000) * 1000));
    const serial = this.serial++;
    const algorithm = derSequence(derOid(Oid.ECDSA_WITH_SHA256));
    const ext = (oid: string, critical: boolean, value: Buffer): Buffer =>
      critical ? derSequence(derOid(oid), derBoolean(true), derOctetString(value)) : derSequence(derOid(oid), derOctetString(value));
    const tbs = derSequence(
      derExplicit(0, derInteger(2)),
      derInteger(serial),
      algorithm,
      root.subjectName,
      derSequence(derTime(validAfter), derTime(validBefore)),
      derSequence(derSet(derSequence(derOid(Oid.COMMON_NAME), derDirectoryString(service.slice(0, 64))))),
      publicKey.export({ type: 'spki', format: 'der' }),
      derExplicit(
        3,
        derSequence(
          ext(Oid.BASIC_CONSTRAINTS, true, derSequence()),
          ext(Oid.KEY_USAGE, true, derNamedBits([KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_ENCIPHERMENT, 4 /* keyAgreement */])),
          ext(Oid.EXT_KEY_USAGE, false, derSequence(derOid(Oid.SERVER_AUTH), derOid(Oid.CLIENT_AUTH))),
          ext(Oid.SUBJECT_ALT_NAME, false, derSequence(derImplicit(6, Buffer.from(serviceUri, 'ascii')))), // uniformResourceIdentifier [6]
          ext(Oid.SUBJECT_KEY_IDENTIFIER, false, derOctetString(keyIdentifierOf(publicKey))),
          ext(Oid.AUTHORITY_KEY_IDENTIFIER, false, derSequence(derImplicit(0, root.keyIdentifier))),
        ),
      ),
    );
    const signature = crypto.sign('sha256', tbs, { key: crypto.createPrivateKey(root.ca.privateKeyPem), dsaEncoding: 'der' });
    const der = derSequence(tbs, algorithm, derBitString(signature));
    const certPem = `-----BEGIN CERTIFICATE-----\n${(der.toString('base64').match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;
    return {
      service,
      serial: colonHex(Buffer.from(serial.toString(16).padStart(2 * Math.ceil(serial.toString(16).length / 2), '0'), 'hex')),
      certPem,
      privateKeyPem: privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
      serviceUri,
      rootId: root.id,
      validAfter,
      validBefore,
      index: ++this.state.index,
    };
  }

  private register(body: Record<string, unknown>, acl: ReturnType<ConsulStandIn['aclFor']>): boolean {
    const node = body.Node;
    const address = typeof body.Address === 'string' ? body.Address : '';
    const skipNodeUpdate = body.SkipNodeUpdate === true;
    if (typeof node !== 'string' || node === '') {
      throw new HttpError(400, 'Must provide node');
    }
    if (address === '' && !skipNodeUpdate) {
      throw new HttpError(400, 'Must provide address if SkipNodeUpdate is not set');
    }
    let entry = this.state.nodes.get(node);
    // vetRegisterWithACL: node:write only for a request that creates or changes the node (RegisterRequest.ChangesNode).
    if (!entry || !skipNodeUpdate) {
      acl('node', 'write', node);
    }
    const service = body.Service === undefined || body.Service === null ? undefined : asObject(body.Service, 'Service must be an object');
    if (service) {
      const name = service.Service;
      if (typeof name !== 'string' || name === '') {
        throw new HttpError(400, 'Must provide service name (Service.Service)');
      }
      acl('service', 'write', name);
      // Proxies must have write permission on their destination.
      const proxy = service.Kind === 'connect-proxy' ? asObject(service.Proxy ?? {}, 'Proxy must be an object') : undefined;
      if (proxy) {
        acl('service', 'write', typeof proxy.DestinationServiceName === 'string' ? proxy.DestinationServiceName : '');
      }
    }
    const serviceId = service === undefined ? undefined : typeof service.ID === 'string' && service.ID !== '' ? service.ID : String(service.Service);
    const checks = [body.Check, ...(Array.isArray(body.Checks) ? body.Checks : [])].filter((c) => c !== undefined && c !== null).map((c) => asObject(c, 'Check must be an object'));
    for (const check of checks) {
      const checkServiceId = typeof check.ServiceID === 'string' ? check.ServiceID : '';
      if (checkServiceId === '') {
        acl('node', 'write', node);
      } else if (checkServiceId !== serviceId) {
        const other = entry?.services.get(checkServiceId);
        if (other === undefined) {
          throw new HttpError(500, `Unknown service ID '${checkServiceId}' for check ID '${typeof check.CheckID === 'string' ? check.CheckID : ''}'`);
        }
        acl('service', 'write', String(other.registration.Service));
      }
    }
    const index = ++this.state.index;
    if (!entry) {
      entry = { node, address, registration: stripKeys(body, ['Service', 'Check', 'Checks']), services: new Map(), createIndex: index, modifyIndex: index };
      this.state.nodes.set(node, entry);
    } else if (body.SkipNodeUpdate !== true) {
      entry = { ...entry, address, registration: stripKeys(body, ['Service', 'Check', 'Checks']), modifyIndex: index };
      this.state.nodes.set(node, entry);
    }
    if (service) {
      const id = typeof service.ID === 'string' && service.ID !== '' ? service.ID : String(service.Service);
      const existing = entry.services.get(id);
      entry.services.set(id, { node, registration: { ...service, ID: id }, createIndex: existing?.createIndex ?? index, modifyIndex: index });
    }
    return true;
  }

  private deregister(body: Record<string, unknown>, acl: ReturnType<ConsulStandIn['aclFor']>): boolean {
    const node = body.Node;
    if (typeof node !== 'string' || node === '') {
      throw new HttpError(400, 'Must provide node');
    }
    const entry = this.state.nodes.get(node);
    const serviceId = typeof body.ServiceID === 'string' && body.ServiceID !== '' ? body.ServiceID : undefined;
    if (serviceId !== undefined) {
      const service = entry?.services.get(serviceId);
      const serviceName = service?.registration.Service;
      acl('service', 'write', typeof serviceName === 'string' ? serviceName : serviceId);
      if (entry && service) {
        entry.services.delete(serviceId);
        entry.modifyIndex = ++this.state.index;
      }
      return true;
    }
    acl('node', 'write', node);
    if (entry && body.CheckID === undefined) {
      this.state.nodes.delete(node);
      ++this.state.index;
    }
    return true;
  }

  private catalogService(name: string): unknown[] {
    const out: unknown[] = [];
    for (const node of [...this.state.nodes.values()].sort((a, b) => compare(a.node, b.node))) {
      for (const s of node.services.values()) {
        const r = s.registration;
        if (r.Service !== name) {
          continue;
        }
        out.push({
          ID: '',
          Node: node.node,
          Address: node.address,
          Datacenter: this.datacenter,
          TaggedAddresses: node.registration.TaggedAddresses ?? null,
          NodeMeta: node.registration.NodeMeta ?? null,
          ServiceKind: r.Kind ?? '',
          ServiceID: r.ID,
          ServiceName: r.Service,
          ServiceTags: r.Tags ?? [],
          ServiceAddress: r.Address ?? '',
          ServiceTaggedAddresses: r.TaggedAddresses ?? null,
          ServiceWeights: { Passing: 1, Warning: 1 },
          ServiceMeta: r.Meta ?? {},
          ServicePort: r.Port ?? 0,
          ServiceEnableTagOverride: false,
          ServiceProxy: r.Proxy ?? { Mode: '', MeshGateway: {}, Expose: {} },
          ServiceConnect: r.Connect ?? {},
          CreateIndex: s.createIndex,
          ModifyIndex: s.modifyIndex,
        });
      }
    }
    return out;
  }

  private applyConfig(body: unknown, casParam: string | null, acl: ReturnType<ConsulStandIn['aclFor']>): boolean {
    const raw = asObject(body, 'Request decoding failed: body is not a JSON object');
    const kind = raw.Kind;
    const name = raw.Name;
    if (typeof kind !== 'string' || kind === '') {
      throw new HttpError(400, 'Request decoding failed: Kind must be set');
    }
    acl(resourceOfKind(kind), 'write', typeof name === 'string' ? name : '');
    const entry = decodeAndValidate(raw);
    const key = `${kind}/${String(entry.Name)}`;
    if (casParam !== null) {
      const cas = parseCas(casParam);
      this.interlope(key, entry);
      const existing = this.state.configEntries.get(key);
      if (cas === 0 ? existing !== undefined : existing === undefined || Number(existing.ModifyIndex) !== cas) {
        return false;
      }
    }
    this.store(entry);
    return true;
  }

  private deleteConfig(key: string, casParam: string | null): unknown {
    if (casParam === null) {
      if (this.state.configEntries.delete(key)) {
        ++this.state.index;
      }
      return {};
    }
    const cas = parseCas(casParam);
    this.interlope(key, undefined);
    const existing = this.state.configEntries.get(key);
    if (!existing || Number(existing.ModifyIndex) !== cas) {
      return false;
    }
    this.state.configEntries.delete(key);
    ++this.state.index;
    return true;
  }

  /** When a CAS loss is pending, another writer changes the entry now (between the caller's read and this write). */
  private interlope(key: string, incoming: Record<string, unknown> | undefined): void {
    const interloper = this.casLosses.shift();
    if (!interloper) {
      return;
    }
    const current = this.state.configEntries.get(key);
    const next = interloper(current === undefined ? undefined : (JSON.parse(JSON.stringify(current)) as Record<string, unknown>), incoming);
    if (next === undefined) {
      if (current !== undefined) {
        this.state.configEntries.delete(key);
        ++this.state.index;
      }
      return;
    }
    this.store(decodeAndValidate(next));
  }

  private store(entry: Record<string, unknown>): void {
    const key = `${String(entry.Kind)}/${String(entry.Name)}`;
    const existing = this.state.configEntries.get(key);
    const index = ++this.state.index;
    const stored: Record<string, unknown> = { ...stripKeys(entry, ['CreateIndex', 'ModifyIndex', 'Hash']) };
    stored.Hash = hashOf(stored);
    stored.CreateIndex = existing === undefined ? index : existing.CreateIndex;
    stored.ModifyIndex = index;
    this.state.configEntries.set(key, stored);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Catalog nodes and ACL objects.
  // ------------------------------------------------------------------------------------------------------------

  /** `GET /v1/catalog/node/:node`: Consul filters by ACL here, so an unreadable node answers null, as an unknown one. */
  private catalogNode(name: string, acl: AclCheck): unknown {
    const node = this.state.nodes.get(name);
    if (!node || !acl.allows('node', 'read', name)) {
      return null;
    }
    const services: Record<string, unknown> = {};
    for (const s of [...node.services.values()].sort((a, b) => compare(String(a.registration.ID), String(b.registration.ID)))) {
      const r = s.registration;
      if (!acl.allows('service', 'read', String(r.Service))) {
        continue;
      }
      services[String(r.ID)] = {
        ...(r.Kind !== undefined ? { Kind: r.Kind } : {}),
        ID: r.ID,
        Service: r.Service,
        Tags: r.Tags ?? [],
        Address: r.Address ?? '',
        Meta: r.Meta ?? {},
        Port: r.Port ?? 0,
        Weights: { Passing: 1, Warning: 1 },
        EnableTagOverride: false,
        Proxy: r.Proxy ?? { Mode: '', MeshGateway: {}, Expose: {} },
        Connect: r.Connect ?? {},
        CreateIndex: s.createIndex,
        ModifyIndex: s.modifyIndex,
      };
    }
    return {
      Node: {
        ID: node.registration.ID ?? '',
        Node: node.node,
        Address: node.address,
        Datacenter: this.datacenter,
        TaggedAddresses: node.registration.TaggedAddresses ?? null,
        Meta: node.registration.NodeMeta ?? null,
        CreateIndex: node.createIndex,
        ModifyIndex: node.modifyIndex,
      },
      Services: services,
    };
  }

  /** The `/v1/acl/` endpoints; undefined for a path that is none of them. Decoding (400) comes before the ACL check. */
  private routeAcl(method: string, path: string, url: URL, acl: AclCheck, body: unknown): { body: unknown; index?: number } | undefined {
    const read = (): void => acl('acl', 'read');
    const write = (): void => acl('acl', 'write');
    const one = (prefix: string): string | undefined => {
      const m = new RegExp(`^/v1/acl/${prefix}/([^/]+)$`).exec(path);
      return m ? decodeURIComponent(m[1]) : undefined;
    };

    if (path === '/v1/acl/auth-methods') {
      allowMethods(method, ['GET']);
      read();
      return { body: [...this.state.authMethods.values()].sort((a, b) => compare(String(a.Name), String(b.Name))).map((m) => stripKeys(m, ['Config'])) };
    }
    if (path === '/v1/acl/auth-method') {
      allowMethods(method, ['PUT']);
      const input = decodeAuthMethod(body);
      write();
      return { body: this.putAuthMethod(input) };
    }
    const methodName = one('auth-method');
    if (methodName !== undefined) {
      allowMethods(method, ['GET', 'PUT', 'DELETE']);
      if (method === 'GET') {
        read();
        return found(this.state.authMethods.get(methodName), 'ACL auth method not found');
      }
      if (method === 'DELETE') {
        write();
        this.deleteAuthMethod(methodName);
        return { body: true };
      }
      const input = decodeAuthMethod(body);
      if (input.Name !== '' && input.Name !== methodName) {
        throw new HttpError(400, 'Bad request: AuthMethod Name in URL and payload do not match');
      }
      write();
      return { body: this.putAuthMethod({ ...input, Name: methodName }) };
    }

    if (path === '/v1/acl/binding-rules') {
      allowMethods(method, ['GET']);
      read();
      return { body: this.listBindingRules(url.searchParams.get('authmethod') ?? '') };
    }
    if (path === '/v1/acl/binding-rule') {
      allowMethods(method, ['PUT']);
      const input = decodeBindingRule(body);
      if (input.ID !== '') {
        throw new HttpError(400, 'Bad request: BindingRule ID in URL and payload do not match');
      }
      write();
      return { body: this.putBindingRule(input) };
    }
    const ruleId = one('binding-rule');
    if (ruleId !== undefined) {
      allowMethods(method, ['GET', 'PUT', 'DELETE']);
      if (method === 'GET') {
        read();
        return found(this.state.bindingRules.get(ruleId), 'ACL binding rule not found');
      }
      if (method === 'DELETE') {
        write();
        this.deleteFrom(this.state.bindingRules, ruleId);
        return { body: true };
      }
      const input = decodeBindingRule(body);
      if (input.ID !== '' && input.ID !== ruleId) {
        throw new HttpError(400, 'Bad request: BindingRule ID in URL and payload do not match');
      }
      write();
      return { body: this.putBindingRule({ ...input, ID: ruleId }) };
    }

    for (const kind of ['policy', 'role'] as const) {
      const what = kind === 'policy' ? 'Policy' : 'Role';
      const objects = kind === 'policy' ? this.state.policies : this.state.roles;
      const put = (input: PolicyInput | RoleInput): Record<string, unknown> => (kind === 'policy' ? this.putPolicy(input as PolicyInput) : this.putRole(input as RoleInput));
      const decode = (raw: unknown): PolicyInput | RoleInput => (kind === 'policy' ? decodePolicy(raw) : decodeRole(raw));
      const render = (stored: Record<string, unknown> | undefined): Record<string, unknown> | undefined =>
        stored === undefined || kind === 'policy' ? stored : this.renderRole(stored);
      if (path === `/v1/acl/${kind}`) {
        allowMethods(method, ['PUT']);
        const input = decode(body);
        if (input.ID !== '') {
          throw new HttpError(400, `Bad request: ${what} ID in URL and payload do not match`);
        }
        write();
        return { body: put(input) };
      }
      const byName = one(`${kind}/name`);
      if (byName !== undefined) {
        allowMethods(method, ['GET']);
        read();
        return found(render([...objects.values()].find((o) => o.Name === byName)), `ACL ${kind} not found`);
      }
      const id = one(kind);
      if (id !== undefined) {
        allowMethods(method, ['GET', 'PUT', 'DELETE']);
        if (method === 'GET') {
          read();
          return found(render(objects.get(id)), `ACL ${kind} not found`);
        }
        if (method === 'DELETE') {
          write();
          this.deleteFrom(objects, id);
          return { body: true };
        }
        const input = decode(body);
        if (input.ID !== '' && input.ID !== id) {
          throw new HttpError(400, `Bad request: ${what} ID in URL and payload do not match`);
        }
        write();
        return { body: put({ ...input, ID: id }) };
      }
    }
    return undefined;
  }

  /** Consul's AuthMethodSet: an upsert by Name (Type may be left out on an update, not changed). */
  private putAuthMethod(input: AuthMethodInput): Record<string, unknown> {
    const existing = this.state.authMethods.get(input.Name);
    const method = validateAuthMethod(input, existing);
    const index = ++this.state.index;
    const stored = { ...method, CreateIndex: existing?.CreateIndex ?? index, ModifyIndex: index };
    this.state.authMethods.set(input.Name, stored);
    return clone(stored);
  }

  /** Deletes a method with its binding rules and the tokens issued through it, as Consul's state store does. */
  private deleteAuthMethod(name: string): void {
    if (!this.state.authMethods.delete(name)) {
      return;
    }
    for (const [id, rule] of this.state.bindingRules) {
      if (rule.AuthMethod === name) {
        this.state.bindingRules.delete(id);
      }
    }
    for (const [id, token] of this.state.loginTokens) {
      if (token.AuthMethod === name) {
        this.state.loginTokens.delete(id);
      }
    }
    ++this.state.index;
  }

  /** Consul's BindingRuleSet: a new rule without ID, else an update of an existing one, whose AuthMethod is fixed. */
  private putBindingRule(input: BindingRuleInput): Record<string, unknown> {
    let id = input.ID;
    let existing: Record<string, unknown> | undefined;
    let authMethod = input.AuthMethod;
    if (id === '') {
      id = crypto.randomUUID();
    } else {
      if (!UUID_PATTERN.test(id)) {
        throw new HttpError(500, 'Binding Rule ID invalid UUID');
      }
      existing = this.state.bindingRules.get(id);
      if (existing === undefined) {
        throw new HttpError(500, `cannot find binding rule ${id}`);
      }
      if (authMethod === '') {
        authMethod = String(existing.AuthMethod);
      } else if (existing.AuthMethod !== authMethod) {
        throw new HttpError(500, 'the AuthMethod field of an Binding Rule is immutable');
      }
    }
    if (authMethod === '') {
      throw new HttpError(500, 'Invalid Binding Rule: no AuthMethod is set');
    }
    const method = this.state.authMethods.get(authMethod);
    if (method === undefined) {
      throw new HttpError(500, `cannot find auth method with name ${JSON.stringify(authMethod)}`);
    }
    const identity = identityOf(method);
    if (input.Selector !== '') {
      try {
        checkSelectorFields(parseSelector(input.Selector), identity);
      } catch (e) {
        throw new HttpError(500, `invalid Binding Rule: Selector is invalid: ${errorText(e)}`);
      }
    }
    if (input.BindType === '') {
      throw new HttpError(500, 'Invalid Binding Rule: no BindType is set');
    }
    if (input.BindName === '') {
      throw new HttpError(500, 'Invalid Binding Rule: no BindName is set');
    }
    if (!BIND_TYPES.includes(input.BindType)) {
      throw new HttpError(500, `Invalid Binding Rule: unknown BindType ${JSON.stringify(input.BindType)}`);
    }
    const templated = input.BindType === 'templated-policy';
    if (!templated && input.BindVars !== undefined && Object.keys(input.BindVars).length > 0) {
      throw new HttpError(500, 'Invalid Binding Rule: BindVars is only used with BindType "templated-policy" (stand-in check)');
    }
    try {
      validateBindName(input.BindType, input.BindName, input.BindVars, identity.vars);
    } catch (e) {
      throw new HttpError(500, `Invalid Binding Rule: invalid BindName: ${errorText(e)}`);
    }
    const index = ++this.state.index;
    const stored: Record<string, unknown> = {
      ID: id,
      Description: input.Description,
      AuthMethod: authMethod,
      Selector: input.Selector,
      BindType: input.BindType,
      BindName: input.BindName,
      ...(templated && input.BindVars !== undefined ? { BindVars: clone(input.BindVars) } : {}),
      CreateIndex: existing?.CreateIndex ?? index,
      ModifyIndex: index,
    };
    this.state.bindingRules.set(id, stored);
    return clone(stored);
  }

  /** The binding rules of `authMethod` ('' for all), by ID, as Consul's state store lists them. */
  private listBindingRules(authMethod: string): Array<Record<string, unknown>> {
    return [...this.state.bindingRules.values()]
      .filter((r) => authMethod === '' || r.AuthMethod === authMethod)
      .sort((a, b) => compare(String(a.ID), String(b.ID)))
      .map((r) => clone(r));
  }

  /** Consul's PolicySet: a new policy without ID (its Name unique), else an update of an existing one. */
  private putPolicy(input: PolicyInput): Record<string, unknown> {
    if (input.Name === '') {
      throw new HttpError(500, 'Invalid Policy: no Name is set');
    }
    if (!isValidPolicyName(input.Name)) {
      throw new HttpError(500, "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed");
    }
    const { id, existing } = this.identify(this.state.policies, input, 'Policy', 'policy');
    const stored: Record<string, unknown> = {
      ID: id,
      Name: input.Name,
      Description: input.Description,
      Rules: input.Rules,
      ...(input.Datacenters !== undefined && input.Datacenters.length > 0 ? { Datacenters: [...input.Datacenters] } : {}),
    };
    return clone(this.storeAclObject(this.state.policies, stored, existing));
  }

  /** Consul's RoleSet: policy links resolved to IDs, identities checked and de-duplicated. */
  private putRole(input: RoleInput): Record<string, unknown> {
    if (input.Name === '') {
      throw new HttpError(500, 'Invalid Role: no Name is set');
    }
    if (!isValidRoleName(input.Name)) {
      throw new HttpError(500, "Invalid Role: invalid Name. Only alphanumeric characters, '-' and '_' are allowed");
    }
    const { id, existing } = this.identify(this.state.roles, input, 'Role', 'role');
    const policies = new Map<string, { ID: string; Name: string }>();
    for (const link of input.Policies) {
      const policy = link.ID === '' ? this.policyByName(link.Name) : this.state.policies.get(link.ID);
      if (policy === undefined) {
        throw new HttpError(500, link.ID === '' ? `No such ACL policy with name ${JSON.stringify(link.Name)}` : `No such ACL policy with ID ${JSON.stringify(link.ID)}`);
      }
      policies.set(String(policy.ID), { ID: String(policy.ID), Name: String(policy.Name) });
    }
    const services = new Map<string, { ServiceName: string; Datacenters?: string[] }>();
    for (const si of input.ServiceIdentities) {
      if (si.ServiceName === '') {
        throw new HttpError(500, 'Service identity is missing the service name field on this role');
      }
      if (!isValidIdentityName(si.ServiceName)) {
        throw new HttpError(500, `Service identity ${JSON.stringify(si.ServiceName)} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed`);
      }
      // As Consul's dedupeServiceIdentities: one entry per service; an entry without datacenters means all of them.
      const before = services.get(si.ServiceName);
      const mine = si.Datacenters ?? [];
      const theirs = before?.Datacenters ?? [];
      const dcs = before === undefined ? [...mine] : theirs.length === 0 || mine.length === 0 ? [] : [...new Set([...theirs, ...mine])];
      services.set(si.ServiceName, { ServiceName: si.ServiceName, ...(dcs.length > 0 ? { Datacenters: dcs } : {}) });
    }
    const nodes = new Map<string, { NodeName: string; Datacenter: string }>();
    for (const ni of input.NodeIdentities) {
      if (ni.NodeName === '') {
        throw new HttpError(500, 'Node identity is missing the node name field on this role');
      }
      if (ni.Datacenter === '') {
        throw new HttpError(500, 'Node identity is missing the datacenter field on this role');
      }
      if (!isValidIdentityName(ni.NodeName)) {
        throw new HttpError(500, "Node identity has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed");
      }
      nodes.set(`${ni.NodeName}\u0000${ni.Datacenter}`, { NodeName: ni.NodeName, Datacenter: ni.Datacenter });
    }
    if (input.TemplatedPolicies.length > 0) {
      throw new HttpError(500, 'stand-in: TemplatedPolicies on roles are not implemented');
    }
    const stored: Record<string, unknown> = {
      ID: id,
      Name: input.Name,
      Description: input.Description,
      ...(policies.size > 0 ? { Policies: [...policies.values()] } : {}),
      ...(services.size > 0 ? { ServiceIdentities: [...services.values()] } : {}),
      ...(nodes.size > 0 ? { NodeIdentities: [...nodes.values()] } : {}),
    };
    return this.renderRole(this.storeAclObject(this.state.roles, stored, existing));
  }

  /** A role as GET answers it: policy links with the policies' current names, deleted policies left out. */
  private renderRole(role: Record<string, unknown>): Record<string, unknown> {
    const out = clone(role);
    const links = ((role.Policies ?? []) as Array<{ ID: string }>).flatMap((l) => {
      const policy = this.state.policies.get(l.ID);
      return policy === undefined ? [] : [{ ID: l.ID, Name: String(policy.Name) }];
    });
    delete out.Policies;
    return links.length > 0 ? { ...out, Policies: links } : out;
  }

  /**
   * The ID a policy or role write is for: a new one when the input has none (its Name must then be free), else the
   * existing object's (which must exist; a rename must not take another's Name). Worded as Consul's PolicySet/RoleSet.
   */
  private identify(objects: Map<string, Record<string, unknown>>, input: { ID: string; Name: string }, what: 'Policy' | 'Role', kind: 'policy' | 'role'): { id: string; existing?: Record<string, unknown> } {
    const nameMatch = [...objects.values()].find((o) => o.Name === input.Name);
    if (input.ID === '') {
      if (nameMatch !== undefined) {
        throw new HttpError(500, `Invalid ${what}: A ${what} with Name ${JSON.stringify(input.Name)} already exists`);
      }
      return { id: crypto.randomUUID() };
    }
    if (!UUID_PATTERN.test(input.ID)) {
      throw new HttpError(500, `${what} ID invalid UUID`);
    }
    const existing = objects.get(input.ID);
    if (existing === undefined) {
      throw new HttpError(500, `cannot find ${kind} ${input.ID}`);
    }
    if (existing.Name !== input.Name && nameMatch !== undefined) {
      throw new HttpError(500, `Invalid ${what}: A ${kind} with name ${JSON.stringify(input.Name)} already exists`);
    }
    return { id: input.ID, existing };
  }

  /** Stores a policy or role with its Hash and Raft indexes. */
  private storeAclObject(objects: Map<string, Record<string, unknown>>, object: Record<string, unknown>, existing: Record<string, unknown> | undefined): Record<string, unknown> {
    const index = ++this.state.index;
    const stored = { ...object, Hash: crypto.createHash('sha256').update(JSON.stringify(object)).digest('base64'), CreateIndex: existing?.CreateIndex ?? index, ModifyIndex: index };
    objects.set(String(object.ID), stored);
    return stored;
  }

  private deleteFrom(objects: Map<string, unknown>, key: string): void {
    if (objects.delete(key)) {
      ++this.state.index;
    }
  }

  private policyByName(name: string): Record<string, unknown> | undefined {
    return [...this.state.policies.values()].find((p) => p.Name === name);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Config entry decoding, normalization and validation, after Consul CE (agent/structs/config_entry*.go).
// ---------------------------------------------------------------------------------------------------------------

const INTENTIONS_KEYS = ['Kind', 'Name', 'Sources', 'JWT', 'Meta', 'CreateIndex', 'ModifyIndex', 'Hash'];
const SOURCE_KEYS = ['Name', 'Peer', 'SamenessGroup', 'Action', 'Permissions', 'Precedence', 'LegacyID', 'Type', 'Description', 'LegacyMeta', 'LegacyCreateTime', 'LegacyUpdateTime'];
const PERMISSION_KEYS = ['Action', 'HTTP', 'JWT'];
const HTTP_KEYS = ['PathExact', 'PathPrefix', 'PathRegex', 'Header', 'Methods'];
const HEADER_KEYS = ['Name', 'Present', 'Exact', 'Prefix', 'Suffix', 'Regex', 'Invert'];

/** Decodes, normalizes and validates an entry as Consul's PUT /v1/config does; throws an HttpError as Consul answers. */
function decodeAndValidate(raw: Record<string, unknown>): Record<string, unknown> {
  const kind = raw.Kind;
  if (typeof kind !== 'string') {
    throw new HttpError(400, 'Request decoding failed: Kind must be set');
  }
  const unused: string[] = [];
  enterpriseKeys(raw, '', unused);
  if (kind === INTENTIONS) {
    unknownKeys(raw, INTENTIONS_KEYS, '', unused);
    const sources = Array.isArray(raw.Sources) ? (raw.Sources as unknown[]) : [];
    sources.forEach((s, i) => {
      const src = asObject(s, `Request decoding failed: Sources[${i}] is not an object`);
      unknownKeys(src, SOURCE_KEYS, `Sources[${i}].`, unused);
      const perms = Array.isArray(src.Permissions) ? (src.Permissions as unknown[]) : [];
      perms.forEach((p, j) => {
        const perm = asObject(p, `Request decoding failed: Sources[${i}].Permissions[${j}] is not an object`);
        unknownKeys(perm, PERMISSION_KEYS, `Sources[${i}].Permissions[${j}].`, unused);
        if (perm.HTTP !== undefined && perm.HTTP !== null) {
          const httpPerm = asObject(perm.HTTP, 'Request decoding failed: HTTP is not an object');
          unknownKeys(httpPerm, HTTP_KEYS, `Sources[${i}].Permissions[${j}].HTTP.`, unused);
          const headers = Array.isArray(httpPerm.Header) ? (httpPerm.Header as unknown[]) : [];
          headers.forEach((h, k) => unknownKeys(asObject(h, 'Request decoding failed: Header is not an object'), HEADER_KEYS, `Sources[${i}].Permissions[${j}].HTTP.Header[${k}].`, unused));
        }
      });
    });
  }
  if (unused.length > 0) {
    throw new HttpError(400, `Request decoding failed: ${unused.join('; ')}`);
  }
  const entry = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
  if (typeof entry.Name !== 'string' || entry.Name === '') {
    throw new HttpError(500, 'Name is required');
  }
  validateMeta(entry.Meta);
  if (kind === INTENTIONS) {
    normalizeAndValidateIntentions(entry);
  } else if (kind === SERVICE_DEFAULTS) {
    const protocol = entry.Protocol;
    if (protocol !== undefined && (typeof protocol !== 'string' || !['', 'tcp', 'http', 'http2', 'grpc'].includes(protocol.toLowerCase()))) {
      throw new HttpError(500, `Protocol must be one of tcp, http, http2 or grpc, got ${JSON.stringify(protocol)}`);
    }
    if (typeof protocol === 'string') {
      entry.Protocol = protocol.toLowerCase();
    }
    // Consul's GET answers these struct fields even when empty.
    for (const key of ['TransparentProxy', 'MeshGateway', 'Expose']) {
      entry[key] ??= {};
    }
  }
  return entry;
}

function normalizeAndValidateIntentions(entry: Record<string, unknown>): void {
  const name = String(entry.Name);
  if (name !== '*' && name.includes('*')) {
    throw new HttpError(500, "Name: wildcard character '*' cannot be used with partial values");
  }
  const sources = (Array.isArray(entry.Sources) ? entry.Sources : []) as Array<Record<string, unknown>>;
  const destExact = name === '*' ? 1 : 2;
  const max = destExact === 2 ? 9 : 6;
  for (const src of sources) {
    if (src.Type === undefined || src.Type === '') {
      src.Type = 'consul';
    }
    src.Precedence = max - (2 - (src.Name === '*' ? 1 : 2));
    delete src.LegacyID;
    delete src.LegacyCreateTime;
    delete src.LegacyUpdateTime;
    for (const perm of (Array.isArray(src.Permissions) ? src.Permissions : []) as Array<Record<string, unknown>>) {
      const httpPerm = perm.HTTP as Record<string, unknown> | undefined;
      if (httpPerm && Array.isArray(httpPerm.Methods)) {
        httpPerm.Methods = (httpPerm.Methods as unknown[]).map((m) => String(m).toUpperCase());
      }
    }
  }
  // Closest to the head = highest precedence; stable, as Go's sort.SliceStable.
  entry.Sources = sources.map((s, i) => ({ s, i })).sort((a, b) => Number(b.s.Precedence) - Number(a.s.Precedence) || a.i - b.i).map((x) => x.s);

  if (sources.length === 0) {
    throw new HttpError(500, 'At least one source is required');
  }
  const seen = new Set<string>();
  sources.forEach((src, i) => {
    const srcName = src.Name;
    if (typeof srcName !== 'string' || srcName === '') {
      throw new HttpError(500, `Sources[${i}].Name is required`);
    }
    if (srcName !== '*' && srcName.includes('*')) {
      throw new HttpError(500, `Sources[${i}].Name: wildcard character '*' cannot be used with partial values`);
    }
    if (typeof src.Description === 'string' && Buffer.byteLength(src.Description) > META_VALUE_MAX) {
      throw new HttpError(500, `Sources[${i}].Description exceeds maximum length ${META_VALUE_MAX}`);
    }
    if (src.LegacyMeta !== undefined && src.LegacyMeta !== null && typeof src.LegacyMeta === 'object' && Object.keys(src.LegacyMeta).length > 0) {
      throw new HttpError(500, `Sources[${i}].LegacyMeta must be omitted`);
    }
    const perms = (Array.isArray(src.Permissions) ? src.Permissions : []) as Array<Record<string, unknown>>;
    if (perms.length === 0 && src.Action !== 'allow' && src.Action !== 'deny') {
      throw new HttpError(500, `Sources[${i}].Action must be set to 'allow' or 'deny'`);
    }
    if (perms.length > 0 && src.Action !== undefined && src.Action !== '') {
      throw new HttpError(500, `Sources[${i}].Action must be omitted if Permissions are specified`);
    }
    if (name === '*' && perms.length > 0) {
      throw new HttpError(500, `Sources[${i}].Permissions cannot be specified on intentions with wildcarded destinations`);
    }
    if (src.Type !== 'consul') {
      throw new HttpError(500, `Sources[${i}].Type must be set to 'consul'`);
    }
    perms.forEach((perm, j) => validatePermission(perm, `Sources[${i}].Permissions[${j}]`));
    const key = JSON.stringify([src.Peer ?? '', src.SamenessGroup ?? '', srcName]);
    if (seen.has(key)) {
      throw new HttpError(500, `Sources[${i}] defines "default/${srcName}" more than once`);
    }
    seen.add(key);
  });
}

function validatePermission(perm: Record<string, unknown>, where: string): void {
  if (perm.Action !== 'allow' && perm.Action !== 'deny') {
    throw new HttpError(500, `${where}.Action must be set to 'allow' or 'deny'`);
  }
  const h = perm.HTTP as Record<string, unknown> | undefined | null;
  if (h === undefined || h === null) {
    throw new HttpError(500, `${where}.HTTP is required`);
  }
  let parts = 0;
  for (const key of ['PathExact', 'PathPrefix'] as const) {
    const v = h[key];
    if (typeof v === 'string' && v !== '') {
      parts++;
      if (!v.startsWith('/')) {
        throw new HttpError(500, `${where}.HTTP.${key} doesn't start with '/': ${JSON.stringify(v)}`);
      }
    }
  }
  if (typeof h.PathRegex === 'string' && h.PathRegex !== '') {
    parts++;
  }
  if (parts > 1) {
    throw new HttpError(500, `${where}.HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex`);
  }
  const headers = (Array.isArray(h.Header) ? h.Header : []) as Array<Record<string, unknown>>;
  headers.forEach((hdr, k) => {
    if (typeof hdr.Name !== 'string' || hdr.Name === '') {
      throw new HttpError(500, `${where}.HTTP.Header[${k}] missing required Name field`);
    }
    const n = (hdr.Present === true ? 1 : 0) + ['Exact', 'Prefix', 'Suffix', 'Regex'].filter((m) => typeof hdr[m] === 'string' && hdr[m] !== '').length;
    if (n !== 1) {
      throw new HttpError(500, `${where}.HTTP.Header[${k}] should only contain one of Present, Exact, Prefix, Suffix, or Regex`);
    }
    parts++;
  });
  const methods = (Array.isArray(h.Methods) ? h.Methods : []) as string[];
  if (methods.length > 0) {
    const found = new Set<string>();
    for (const m of methods) {
      if (!HTTP_METHODS.has(m)) {
        throw new HttpError(500, `${where}.HTTP.Methods contains an invalid method ${JSON.stringify(m)}`);
      }
      if (found.has(m)) {
        throw new HttpError(500, `${where}.HTTP.Methods contains ${JSON.stringify(m)} more than once`);
      }
      found.add(m);
    }
    parts++;
  }
  if (parts === 0) {
    throw new HttpError(500, `${where}.HTTP should not be empty`);
  }
}

/** Consul's validateConfigEntryMeta: at most 64 pairs, keys up to 128 and values up to 512 bytes. */
function validateMeta(meta: unknown): void {
  if (meta === undefined || meta === null) {
    return;
  }
  const m = asObject(meta, 'Request decoding failed: Meta is not an object');
  const problems: string[] = [];
  if (Object.keys(m).length > META_MAX_PAIRS) {
    problems.push(`Meta exceeds maximum element count ${META_MAX_PAIRS}`);
  }
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') {
      throw new HttpError(400, `Request decoding failed: Meta[${JSON.stringify(k)}] is not a string`);
    }
    if (Buffer.byteLength(k) > META_KEY_MAX) {
      problems.push(`Meta key ${JSON.stringify(k)} exceeds maximum length ${META_KEY_MAX}`);
    }
    if (Buffer.byteLength(v) > META_VALUE_MAX) {
      problems.push(`Meta value for key ${JSON.stringify(k)} exceeds maximum length ${META_VALUE_MAX}`);
    }
  }
  if (problems.length > 0) {
    throw new HttpError(500, `${problems.length} error${problems.length === 1 ? '' : 's'} occurred:\n\t* ${problems.join('\n\t* ')}\n\n`);
  }
}

/** Consul CE rejects namespace and partition fields anywhere in an entry (validateUnusedKeys). */
function enterpriseKeys(value: unknown, path: string, out: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => enterpriseKeys(v, `${path}[${i}]`, out));
    return;
  }
  if (typeof value !== 'object' || value === null) {
    return;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const full = path === '' ? k : `${path}.${k}`;
    if (/namespace$/i.test(k) && path !== 'Meta') {
      out.push(`invalid config key ${JSON.stringify(full)}, namespaces are a consul enterprise feature`);
    } else if (/partition$/i.test(k) && path !== 'Meta') {
      out.push(`invalid config key ${JSON.stringify(full)}, partitions are a consul enterprise feature`);
    } else if (k !== 'Meta') {
      enterpriseKeys(v, full, out);
    }
  }
}

function unknownKeys(obj: Record<string, unknown>, known: readonly string[], prefix: string, out: string[]): void {
  for (const k of Object.keys(obj)) {
    if (!known.includes(k) && !/(namespace|partition)$/i.test(k)) {
      out.push(`invalid config key ${JSON.stringify(prefix + k)}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// ACL object decoding and validation, after Consul CE (agent/acl_endpoint.go, agent/consul/acl_endpoint.go,
// agent/consul/authmethod/{awsauth,kubeauth}, internal/iamauth/config.go, agent/consul/auth/binder.go).
// ---------------------------------------------------------------------------------------------------------------

interface AuthMethodInput {
  readonly Name: string;
  readonly Type: string;
  readonly DisplayName: string;
  readonly Description: string;
  /** Nanoseconds; 0 for none. */
  readonly MaxTokenTTL: number;
  readonly TokenLocality: string;
  readonly TokenNameFormat: string;
  readonly Config: Record<string, unknown> | undefined;
}

interface BindingRuleInput {
  readonly ID: string;
  readonly Description: string;
  readonly AuthMethod: string;
  readonly Selector: string;
  readonly BindType: string;
  readonly BindName: string;
  readonly BindVars: { readonly Name?: string } | undefined;
}

interface PolicyInput {
  readonly ID: string;
  readonly Name: string;
  readonly Description: string;
  readonly Rules: string;
  readonly Datacenters: readonly string[] | undefined;
}

interface RoleInput {
  readonly ID: string;
  readonly Name: string;
  readonly Description: string;
  readonly Policies: ReadonlyArray<{ readonly ID: string; readonly Name: string }>;
  readonly ServiceIdentities: ReadonlyArray<{ readonly ServiceName: string; readonly Datacenters?: readonly string[] }>;
  readonly NodeIdentities: ReadonlyArray<{ readonly NodeName: string; readonly Datacenter: string }>;
  readonly TemplatedPolicies: readonly unknown[];
}

/** The auth method types Consul CE registers (authmethod.Types()); the stand-in implements aws-iam and kubernetes. */
const CONSUL_AUTH_METHOD_TYPES = ['aws-iam', 'jwt', 'kubernetes', 'oidc'];
const BIND_TYPES = ['service', 'node', 'role', 'policy', 'templated-policy'];
/** Consul's defaults for acl.token_min_expiration_ttl and acl.token_max_expiration_ttl. */
const MIN_TOKEN_TTL_NS = 60e9;
const MAX_TOKEN_TTL_NS = 24 * 3600e9;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type ConfigFieldType = 'string' | 'bool' | 'int' | '[]string';
/** awsauth.Config (STSRegion included: Consul has it, though the API docs do not list it). */
const AWS_IAM_CONFIG: Readonly<Record<string, ConfigFieldType>> = {
  BoundIAMPrincipalARNs: '[]string',
  EnableIAMEntityDetails: 'bool',
  IAMEntityTags: '[]string',
  ServerIDHeaderValue: 'string',
  MaxRetries: 'int',
  IAMEndpoint: 'string',
  STSEndpoint: 'string',
  STSRegion: 'string',
  AllowedSTSHeaderValues: '[]string',
};
/** kubeauth.Config in CE (the namespace-mapping keys are Enterprise: CE decodes them as unknown). */
const KUBERNETES_CONFIG: Readonly<Record<string, ConfigFieldType>> = { Host: 'string', CACert: 'string', ServiceAccountJWT: 'string' };

/** Consul's built-in templated policies, and whether each needs the Name variable. */
const TEMPLATED_POLICIES: Readonly<Record<string, boolean>> = {
  'builtin/service': true,
  'builtin/node': true,
  'builtin/dns': false,
  'builtin/api-gateway': true,
  'builtin/nomad-server': false,
  'builtin/nomad-client': true,
  'builtin/workload-identity': true,
};

/**
 * Reads a JSON body the way Go's encoding/json fills a struct: keys match case-insensitively (an exact one first),
 * null leaves the zero value, unknown keys are ignored, a wrong JSON type fails with Go's wording (HTTP 400).
 */
class GoJsonFields {
  private readonly obj: Record<string, unknown>;

  public constructor(private readonly what: string, private readonly struct: string, body: unknown) {
    if (body === undefined) {
      throw new HttpError(400, `Bad request: ${what} decoding failed: EOF`);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, `Bad request: ${what} decoding failed: json: cannot unmarshal ${jsonTypeOf(body)} into Go value of type structs.${struct}`);
    }
    this.obj = body as Record<string, unknown>;
  }

  public raw(field: string): unknown {
    if (Object.prototype.hasOwnProperty.call(this.obj, field)) {
      return this.obj[field];
    }
    const key = Object.keys(this.obj).find((k) => k.toLowerCase() === field.toLowerCase());
    return key === undefined ? undefined : this.obj[key];
  }

  public string(field: string): string {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      return '';
    }
    if (typeof v !== 'string') {
      throw this.typeError(field, 'string', v);
    }
    return v;
  }

  public strings(field: string): string[] | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      return undefined;
    }
    if (!Array.isArray(v)) {
      throw this.typeError(field, '[]string', v);
    }
    return v.map((item) => {
      if (typeof item !== 'string') {
        throw this.typeError(field, 'string', item);
      }
      return item;
    });
  }

  public objects(field: string, goType: string): unknown[] {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      return [];
    }
    if (!Array.isArray(v)) {
      throw this.typeError(field, goType, v);
    }
    return v;
  }

  public object(field: string, goType: string): Record<string, unknown> | undefined {
    const v = this.raw(field);
    if (v === undefined || v === null) {
      return undefined;
    }
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw this.typeError(field, goType, v);
    }
    return v as Record<string, unknown>;
  }

  public failure(detail: string): HttpError {
    return new HttpError(400, `Bad request: ${this.what} decoding failed: ${detail}`);
  }

  private typeError(field: string, goType: string, value: unknown): HttpError {
    return this.failure(`json: cannot unmarshal ${jsonTypeOf(value)} into Go struct field ${this.struct}.${field} of type ${goType}`);
  }
}

function decodeAuthMethod(body: unknown): AuthMethodInput {
  const f = new GoJsonFields('AuthMethod', 'ACLAuthMethod', body);
  // ACLAuthMethod.UnmarshalJSON: a duration string, or a number of nanoseconds.
  const ttl = f.raw('MaxTokenTTL');
  let maxTokenTtl = 0;
  if (typeof ttl === 'string') {
    const parsed = parseGoDuration(ttl);
    if (parsed === undefined) {
      throw f.failure(`time: invalid duration ${JSON.stringify(ttl)}`);
    }
    maxTokenTtl = parsed;
  } else if (typeof ttl === 'number') {
    maxTokenTtl = ttl;
  }
  return {
    Name: f.string('Name'),
    Type: f.string('Type'),
    DisplayName: f.string('DisplayName'),
    Description: f.string('Description'),
    MaxTokenTTL: maxTokenTtl,
    TokenLocality: f.string('TokenLocality'),
    TokenNameFormat: f.string('TokenNameFormat'),
    Config: f.object('Config', 'map[string]interface {}'),
  };
}

function decodeBindingRule(body: unknown): BindingRuleInput {
  const f = new GoJsonFields('BindingRule', 'ACLBindingRule', body);
  const vars = f.object('BindVars', 'structs.ACLTemplatedPolicyVariables');
  const name = vars === undefined ? undefined : new GoJsonFields('BindingRule', 'ACLTemplatedPolicyVariables', vars).string('Name');
  return {
    ID: f.string('ID'),
    Description: f.string('Description'),
    AuthMethod: f.string('AuthMethod'),
    Selector: f.string('Selector'),
    BindType: f.string('BindType'),
    BindName: f.string('BindName'),
    BindVars: vars === undefined ? undefined : name === '' ? {} : { Name: name },
  };
}

function decodePolicy(body: unknown): PolicyInput {
  const f = new GoJsonFields('Policy', 'ACLPolicy', body);
  return { ID: f.string('ID'), Name: f.string('Name'), Description: f.string('Description'), Rules: f.string('Rules'), Datacenters: f.strings('Datacenters') };
}

function decodeRole(body: unknown): RoleInput {
  const f = new GoJsonFields('Role', 'ACLRole', body);
  const each = <T>(field: string, struct: string, read: (g: GoJsonFields) => T): T[] =>
    f.objects(field, `[]structs.${struct}`).map((item) => read(new GoJsonFields('Role', struct, item)));
  return {
    ID: f.string('ID'),
    Name: f.string('Name'),
    Description: f.string('Description'),
    Policies: each('Policies', 'ACLRolePolicyLink', (g) => ({ ID: g.string('ID'), Name: g.string('Name') })),
    ServiceIdentities: each('ServiceIdentities', 'ACLServiceIdentity', (g) => {
      const dcs = g.strings('Datacenters');
      return { ServiceName: g.string('ServiceName'), ...(dcs !== undefined ? { Datacenters: dcs } : {}) };
    }),
    NodeIdentities: each('NodeIdentities', 'ACLNodeIdentity', (g) => ({ NodeName: g.string('NodeName'), Datacenter: g.string('Datacenter') })),
    TemplatedPolicies: f.objects('TemplatedPolicies', '[]*structs.ACLTemplatedPolicy'),
  };
}

/** Validates an auth method as Consul's AuthMethodSet does and returns it as GET answers it (without indexes). */
function validateAuthMethod(input: AuthMethodInput, existing: Record<string, unknown> | undefined): Record<string, unknown> {
  if (input.Name === '') {
    throw new HttpError(500, 'Invalid Auth Method: no Name is set');
  }
  if (!isValidPolicyName(input.Name)) {
    throw new HttpError(500, "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed");
  }
  let type = input.Type;
  if (existing !== undefined) {
    if (type === '') {
      type = String(existing.Type);
    } else if (existing.Type !== type) {
      throw new HttpError(500, 'the Type field of an Auth Method is immutable');
    }
  }
  if (!CONSUL_AUTH_METHOD_TYPES.includes(type)) {
    throw new HttpError(500, `Invalid Auth Method: Type should be one of: [${CONSUL_AUTH_METHOD_TYPES.join(' ')}]`);
  }
  if (type !== 'aws-iam' && type !== 'kubernetes') {
    throw new HttpError(500, `stand-in: auth methods of type ${JSON.stringify(type)} are not implemented (only aws-iam and kubernetes)`);
  }
  if (input.MaxTokenTTL > MAX_TOKEN_TTL_NS) {
    throw new HttpError(500, `MaxTokenTTL ${formatGoDuration(input.MaxTokenTTL)} cannot be more than ${formatGoDuration(MAX_TOKEN_TTL_NS)}`);
  }
  if (input.MaxTokenTTL !== 0 && input.MaxTokenTTL < MIN_TOKEN_TTL_NS) {
    throw new HttpError(500, `MaxTokenTTL ${formatGoDuration(input.MaxTokenTTL)} cannot be less than ${formatGoDuration(MIN_TOKEN_TTL_NS)}`);
  }
  if (!['', 'local', 'global'].includes(input.TokenLocality)) {
    throw new HttpError(500, "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'");
  }
  try {
    if (type === 'aws-iam') {
      validateAwsIamConfig(decodeMethodConfig(input.Config, AWS_IAM_CONFIG));
    } else {
      validateKubernetesConfig(decodeMethodConfig(input.Config, KUBERNETES_CONFIG));
    }
  } catch (e) {
    throw new HttpError(500, `Invalid Auth Method: ${errorText(e)}`);
  }
  return {
    Name: input.Name,
    Type: type,
    ...(input.DisplayName !== '' ? { DisplayName: input.DisplayName } : {}),
    Description: input.Description,
    ...(input.MaxTokenTTL !== 0 ? { MaxTokenTTL: formatGoDuration(input.MaxTokenTTL) } : {}),
    ...(input.TokenLocality !== '' ? { TokenLocality: input.TokenLocality } : {}),
    ...(input.TokenNameFormat !== '' ? { TokenNameFormat: input.TokenNameFormat } : {}),
    Config: input.Config === undefined ? null : clone(input.Config),
  };
}

/**
 * Decodes a method's Config as Consul's authmethod.ParseConfig (mapstructure with ErrorUnused): keys match
 * case-insensitively, an unknown key fails, worded as mapstructure. Unlike Consul, values are not weakly converted.
 */
function decodeMethodConfig(raw: Record<string, unknown> | undefined, schema: Readonly<Record<string, ConfigFieldType>>): Record<string, unknown> {
  const fields = Object.keys(schema);
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  const unused: string[] = [];
  for (const [key, value] of Object.entries(raw ?? {})) {
    const field = fields.find((f) => f === key) ?? fields.find((f) => f.toLowerCase() === key.toLowerCase());
    if (field === undefined) {
      unused.push(key);
      continue;
    }
    if (value === null) {
      continue;
    }
    const problem = configValueProblem(field, schema[field], value);
    if (problem === undefined) {
      out[field] = schema[field] === 'int' ? Math.trunc(value as number) : value;
    } else {
      errors.push(problem);
    }
  }
  if (unused.length > 0) {
    errors.push(`'' has invalid keys: ${unused.sort().join(', ')}`);
  }
  if (errors.length > 0) {
    throw new Error(`error decoding config: ${errors.length} error(s) decoding:\n\n${errors.map((e) => `* ${e}`).join('\n')}`);
  }
  return out;
}

function configValueProblem(field: string, type: ConfigFieldType, value: unknown): string | undefined {
  const unconvertible = (name: string, expected: string, v: unknown): string =>
    `'${name}' expected type '${expected}', got unconvertible type '${goTypeOf(v)}', value: '${typeof v === 'string' ? v : JSON.stringify(v)}'`;
  switch (type) {
    case 'string':
      return typeof value === 'string' ? undefined : unconvertible(field, 'string', value);
    case 'bool':
      return typeof value === 'boolean' ? undefined : unconvertible(field, 'bool', value);
    case 'int':
      return typeof value === 'number' ? undefined : unconvertible(field, 'int', value);
    case '[]string':
      if (!Array.isArray(value)) {
        return `'${field}': source data must be an array or slice, got ${goTypeOf(value).replace(/^map.*/, 'map')}`;
      }
      return value.map((v: unknown, i) => (typeof v === 'string' ? undefined : unconvertible(`${field}[${i}]`, 'string', v))).find((p) => p !== undefined);
  }
}

/** iamauth.Config.Validate, with the header names awsauth always sets. */
function validateAwsIamConfig(config: Record<string, unknown>): void {
  const arns = (config.BoundIAMPrincipalARNs ?? []) as string[];
  const details = config.EnableIAMEntityDetails === true;
  if (arns.length === 0) {
    throw new Error('BoundIAMPrincipalARNs is required and must have at least 1 entry');
  }
  for (const arn of arns) {
    const wildcards = arn.split('*').length - 1;
    if (wildcards > 0) {
      if (!details) {
        throw new Error('Must set EnableIAMEntityDetails=true to use wildcards in BoundIAMPrincipalARNs');
      }
      if (wildcards !== 1 || !arn.endsWith('*')) {
        throw new Error('Only one wildcard is allowed at the end of the bound IAM principal ARN');
      }
    }
    // aws-sdk-go arn.Parse: "arn:" and six sections; the service must be iam or sts.
    const sections = arn.split(':');
    if (!arn.startsWith('arn:') || sections.length < 6 || (sections[2] !== 'iam' && sections[2] !== 'sts')) {
      throw new Error(`Invalid principal ARN: ${JSON.stringify(arn)}`);
    }
  }
  if (((config.IAMEntityTags ?? []) as string[]).length > 0 && !details) {
    throw new Error('Must set EnableIAMEntityDetails=true to use IAMUserTags');
  }
}

/** kubeauth.NewValidator's checks (the API server is not contacted). */
function validateKubernetesConfig(config: Record<string, unknown>): void {
  const host = (config.Host ?? '') as string;
  const caCert = (config.CACert ?? '') as string;
  const jwt = (config.ServiceAccountJWT ?? '') as string;
  if (host === '') {
    throw new Error('Config.Host is required');
  }
  if (caCert === '') {
    throw new Error('Config.CACert is required');
  }
  const blocks = caCert.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new Error('error parsing kubernetes ca cert: data does not contain any valid RSA or ECDSA certificates');
  }
  for (const block of blocks) {
    try {
      new crypto.X509Certificate(block);
    } catch (e) {
      throw new Error(`error parsing kubernetes ca cert: ${errorText(e)}`, { cause: e });
    }
  }
  if (jwt === '') {
    throw new Error('Config.ServiceAccountJWT is required');
  }
  const parts = jwt.split('.');
  if (parts.length !== 3) {
    throw new Error('Config.ServiceAccountJWT is not a valid JWT: square/go-jose: compact JWS format must have three parts');
  }
  try {
    const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as unknown;
    if (typeof header !== 'object' || header === null) {
      throw new Error('the protected header is not a JSON object');
    }
  } catch (e) {
    throw new Error(`Config.ServiceAccountJWT is not a valid JWT: square/go-jose: ${errorText(e)}`, { cause: e });
  }
}

/** What a method's identities offer: the variables a BindName may use, and the fields a Selector may select. */
interface MethodIdentity {
  readonly vars: readonly string[];
  /** Why a selector path is not selectable (appended to `Selector "..." is not valid`), or undefined when it is. */
  fieldProblem(path: readonly string[]): string | undefined;
}

const KUBERNETES_FIELDS = ['namespace', 'name', 'uid'];

/** awsauth.Validator.NewIdentity / kubeauth.Validator.NewIdentity, for a stored (validated) method. */
function identityOf(method: Record<string, unknown>): MethodIdentity {
  if (method.Type === 'kubernetes') {
    return {
      vars: KUBERNETES_FIELDS.map((f) => `serviceaccount.${f}`),
      fieldProblem: (path) => (path.length === 2 && path[0] === 'serviceaccount' && KUBERNETES_FIELDS.includes(path[1]) ? undefined : ''),
    };
  }
  const config = decodeMethodConfig(method.Config as Record<string, unknown> | undefined, AWS_IAM_CONFIG);
  const details = config.EnableIAMEntityDetails === true;
  const tags = details ? ((config.IAMEntityTags ?? []) as string[]) : [];
  const strict = '(stand-in check: Consul accepts the selector, but the field is never filled in, so the rule never matches as meant)';
  return {
    vars: ['entity_name', 'entity_id', 'account_id', ...(details ? ['entity_path', ...tags.map((t) => `entity_tags.${t}`)] : [])],
    fieldProblem: ([head, ...rest]) => {
      if (['entity_name', 'entity_id', 'account_id', 'entity_path'].includes(head)) {
        if (rest.length > 0) {
          return `: ${head} is a string and has no field ${JSON.stringify(rest[0])}`;
        }
        return head === 'entity_path' && !details ? `: entity_path needs EnableIAMEntityDetails=true on the auth method ${strict}` : undefined;
      }
      if (head !== 'entity_tags') {
        return '';
      }
      if (!details) {
        return `: entity_tags needs EnableIAMEntityDetails=true on the auth method ${strict}`;
      }
      if (rest.length !== 1) {
        return rest.length === 0
          ? ': entity_tags is a map: select one tag, as entity_tags["<tag>"]'
          : `: entity_tags.${rest[0]} is a string and has no field ${JSON.stringify(rest[1])} (a tag name with "." must be written entity_tags["${rest.join('.')}"])`;
      }
      return tags.includes(rest[0]) ? undefined : `: the tag ${JSON.stringify(rest[0])} is not in the auth method's IAMEntityTags [${tags.join(' ')}] ${strict}`;
    },
  };
}

/** Whether a binding rule's BindName (and BindVars) produce valid names, with every variable set to "fake" (auth.IsValidBindingRule). */
function validateBindName(bindType: string, bindName: string, bindVars: { Name?: string } | undefined, vars: readonly string[]): void {
  const fake = Object.fromEntries(vars.map((v) => [v, 'fake']));
  try {
    if (bindType === 'templated-policy') {
      templatedPolicyOf(bindName, bindVars, fake);
    } else {
      computeBindName(bindName, fake, bindType === 'service' || bindType === 'node' ? isValidIdentityName : bindType === 'role' ? isValidRoleName : isValidPolicyName);
    }
  } catch (e) {
    throw new Error(`failed to validate bindType ${JSON.stringify(bindType)}: ${errorText(e)}`, { cause: e });
  }
}

/** auth.computeBindName: HIL-interpolates with lower-cased values, then checks the name. */
function computeBindName(bindName: string, vars: Readonly<Record<string, string>>, valid: (name: string) => boolean): string {
  let computed: string;
  try {
    computed = interpolateHil(bindName, vars, true);
  } catch (e) {
    throw new Error(`error interpreting template: ${errorText(e)}`, { cause: e });
  }
  if (!valid(computed)) {
    throw new Error(`invalid bind name: ${JSON.stringify(computed)}`);
  }
  return computed;
}

function templatedPolicyOf(templateName: string, bindVars: { Name?: string } | undefined, vars: Readonly<Record<string, string>>): { TemplateName: string; TemplateVariables?: { Name: string } } {
  const needsName = TEMPLATED_POLICIES[templateName];
  if (needsName === undefined) {
    throw new Error(`Bind name for templated-policy bind type does not match existing template name: ${templateName}`);
  }
  let name: string;
  try {
    name = interpolateHil(bindVars?.Name ?? '', vars, true);
  } catch (e) {
    throw new Error(`failed to interpret templated policy variables: ${errorText(e)}`, { cause: e });
  }
  if (!needsName) {
    return { TemplateName: templateName };
  }
  if (!isValidIdentityName(name)) {
    throw new Error(`templated policy failed validation: name: ${name === '' ? 'name is required' : `${JSON.stringify(name)} is not a valid name`}`);
  }
  return { TemplateName: templateName, TemplateVariables: { Name: name } };
}

/**
 * lib/template.InterpolateHIL for bind names: `${name}` replaced by the variable (lower-cased when asked), `$${`
 * escaping a literal `${`; an unknown variable fails. Only variables: HIL's functions and arithmetic are not supported.
 */
function interpolateHil(template: string, vars: Readonly<Record<string, string>>, lowercase: boolean): string {
  if (!template.includes('${')) {
    return template;
  }
  let out = '';
  let i = 0;
  while (i < template.length) {
    if (template.startsWith('$${', i)) {
      out += '${';
      i += 3;
    } else if (template.startsWith('${', i)) {
      const end = template.indexOf('}', i + 2);
      if (end < 0) {
        throw new Error(`1:${i + 1}: the interpolation is not closed with "}"`);
      }
      const name = template.slice(i + 2, end).trim();
      if (!/^[A-Za-z_][A-Za-z0-9_.\-/]*$/.test(name)) {
        throw new Error(`1:${i + 3}: ${JSON.stringify(name)} is not a variable name (the stand-in interpolates variables only)`);
      }
      if (!Object.prototype.hasOwnProperty.call(vars, name)) {
        throw new Error(`1:${i + 3}: unknown variable accessed: ${name}`);
      }
      out += lowercase ? vars[name].toLowerCase() : vars[name];
      i = end + 1;
    } else {
      out += template[i];
      i++;
    }
  }
  return out;
}

/** acl.IsValidServiceIdentityName / IsValidNodeIdentityName. */
function isValidIdentityName(name: string): boolean {
  return name.length <= 256 && /^[a-z0-9]([a-z0-9\-_]*[a-z0-9])?$/.test(name);
}

function isValidRoleName(name: string): boolean {
  return /^[A-Za-z0-9\-_]{1,256}$/.test(name);
}

/** acl.IsValidPolicyName, which auth method names follow too. */
function isValidPolicyName(name: string): boolean {
  return /^[A-Za-z0-9\-_]{1,128}$/.test(name);
}

// ---------------------------------------------------------------------------------------------------------------
// Binding rule selectors: a subset of HashiCorp's go-bexpr grammar, over flat string attributes.
// ---------------------------------------------------------------------------------------------------------------

type MatchOperator = '==' | '!=' | 'is empty' | 'is not empty' | 'matches' | 'not matches' | 'contains' | 'not contains' | 'in' | 'not in';

type SelectorNode =
  | { readonly kind: 'and' | 'or'; readonly left: SelectorNode; readonly right: SelectorNode }
  | { readonly kind: 'not'; readonly operand: SelectorNode }
  | { readonly kind: 'match'; readonly operator: MatchOperator; readonly path: readonly string[]; readonly text: string; readonly value: string; readonly regex?: RegExp };

interface SelectorToken {
  readonly kind: 'word' | 'string' | 'number' | 'symbol' | 'end';
  /** As written. */
  readonly text: string;
  /** Unquoted, for strings. */
  readonly value: string;
  readonly offset: number;
}

/** A selector that does not parse, or selects what the auth method does not offer; worded like go-bexpr. */
class SelectorError extends Error {}

const SELECTOR_KEYWORDS = new Set(['and', 'or', 'not', 'in', 'contains', 'matches', 'is', 'empty']);

/**
 * Whether a binding rule Selector matches login attributes, with go-bexpr's semantics: `==`, `!=`, `and`, `or`,
 * `not`, parentheses, `matches` / `not matches` (a regular expression, unanchored), `contains` / `not contains` and
 * `"value" in selector` / `not in` (substring), `is empty` / `is not empty`; string literals in `"..."` or backticks.
 * A selector is `name`, `name.field` or `name["key"]` (the bracket form for keys with `.` or `-`, such as tag names);
 * it reads the attribute whose key is its parts joined with `.`. A missing attribute is "not present": `==`,
 * `matches`, `contains`, `in` and `is not empty` are false for it, their negations and `is empty` true. An empty
 * selector matches everything, as in a binding rule.
 *
 * @param attributes flat: `{ entity_name: 'x', 'entity_tags.consul.hashicorp.com.service-name': 'feature-store' }`
 * @throws Error when the selector does not parse
 * @see https://github.com/hashicorp/go-bexpr
 */
export function matchesSelector(selector: string, attributes: Readonly<Record<string, string>>): boolean {
  if (selector.trim() === '') {
    return true;
  }
  let node: SelectorNode;
  try {
    node = parseSelector(selector);
  } catch (e) {
    throw new Error(`invalid selector ${JSON.stringify(selector)}: ${errorText(e)}`, { cause: e });
  }
  return evaluateSelector(node, attributes);
}

/** As Consul's binder: a selector that fails to parse or evaluate does not match. */
function selectorMatchesQuietly(selector: string, attributes: Readonly<Record<string, string>>): boolean {
  try {
    return matchesSelector(selector, attributes);
  } catch {
    return false;
  }
}

function parseSelector(source: string): SelectorNode {
  return new SelectorParser(source, tokenizeSelector(source)).parse();
}

function evaluateSelector(node: SelectorNode, attributes: Readonly<Record<string, string>>): boolean {
  switch (node.kind) {
    case 'and':
      return evaluateSelector(node.left, attributes) && evaluateSelector(node.right, attributes);
    case 'or':
      return evaluateSelector(node.left, attributes) || evaluateSelector(node.right, attributes);
    case 'not':
      return !evaluateSelector(node.operand, attributes);
    case 'match': {
      const key = node.path.join('.');
      const actual = Object.prototype.hasOwnProperty.call(attributes, key) ? attributes[key] : undefined;
      switch (node.operator) {
        case '==':
          return actual === node.value;
        case '!=':
          return actual !== node.value;
        case 'is empty':
          return actual === undefined || actual === '';
        case 'is not empty':
          return actual !== undefined && actual !== '';
        case 'matches':
          return actual !== undefined && node.regex!.test(actual);
        case 'not matches':
          return actual === undefined || !node.regex!.test(actual);
        case 'contains':
        case 'in':
          return actual !== undefined && actual.includes(node.value);
        case 'not contains':
        case 'not in':
          return actual === undefined || !actual.includes(node.value);
      }
    }
  }
}

/** Checks that every selector in `node` selects a field the method's identities have. */
function checkSelectorFields(node: SelectorNode, identity: MethodIdentity): void {
  switch (node.kind) {
    case 'and':
    case 'or':
      checkSelectorFields(node.left, identity);
      checkSelectorFields(node.right, identity);
      return;
    case 'not':
      checkSelectorFields(node.operand, identity);
      return;
    case 'match': {
      const problem = identity.fieldProblem(node.path);
      if (problem !== undefined) {
        throw new SelectorError(`Selector ${JSON.stringify(node.text)} is not valid${problem}`);
      }
    }
  }
}

function selectorError(source: string, offset: number, message: string): SelectorError {
  const before = source.slice(0, offset).split('\n');
  return new SelectorError(`${before.length}:${before[before.length - 1].length + 1} (${offset}): ${message}`);
}

function tokenizeSelector(source: string): SelectorToken[] {
  const tokens: SelectorToken[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    const rest = source.slice(i);
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const symbol = /^(==|!=|[()[\].])/.exec(rest);
    const number = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(rest);
    const word = /^[A-Za-z][A-Za-z0-9_/]*/.exec(rest);
    if (symbol) {
      tokens.push({ kind: 'symbol', text: symbol[0], value: symbol[0], offset: i });
      i += symbol[0].length;
    } else if (c === '"' || c === '`') {
      const literal = readStringLiteral(source, i);
      tokens.push({ kind: 'string', text: source.slice(i, literal.end), value: literal.value, offset: i });
      i = literal.end;
    } else if (number) {
      tokens.push({ kind: 'number', text: number[0], value: number[0], offset: i });
      i += number[0].length;
    } else if (word) {
      tokens.push({ kind: 'word', text: word[0], value: word[0], offset: i });
      i += word[0].length;
    } else {
      const hint = c === '-' ? ' (a key with "-" or "." must be written as an index: entity_tags["consul.hashicorp.com.service-name"])' : '';
      throw selectorError(source, i, `unexpected character ${JSON.stringify(c)}${hint}`);
    }
  }
  tokens.push({ kind: 'end', text: '', value: '', offset: source.length });
  return tokens;
}

/** A Go string literal: `"..."` with Go's escapes, or a raw one in backticks. */
function readStringLiteral(source: string, start: number): { value: string; end: number } {
  const quote = source[start];
  if (quote === '`') {
    const end = source.indexOf('`', start + 1);
    if (end < 0) {
      throw selectorError(source, start, 'the raw string is not closed with "`"');
    }
    return { value: source.slice(start + 1, end), end: end + 1 };
  }
  const escapes: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };
  let value = '';
  let i = start + 1;
  while (i < source.length && source[i] !== '"') {
    if (source[i] === '\n') {
      break;
    }
    if (source[i] !== '\\') {
      value += source[i++];
      continue;
    }
    const e = source[i + 1] ?? '';
    const hex = /^(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/.exec(source.slice(i + 1));
    if (escapes[e] !== undefined) {
      value += escapes[e];
      i += 2;
    } else if (hex) {
      value += String.fromCodePoint(parseInt(hex[0].slice(1), 16));
      i += 1 + hex[0].length;
    } else {
      throw selectorError(source, i, `invalid escape ${JSON.stringify(`\\${e}`)} in a string literal`);
    }
  }
  if (source[i] !== '"') {
    throw selectorError(source, start, 'the string literal is not closed with \'"\'');
  }
  return { value, end: i + 1 };
}

/** Recursive descent over: or := and ("or" and)*; and := unary ("and" unary)*; unary := "not" unary | "(" or ")" | match. */
class SelectorParser {
  private position = 0;

  public constructor(private readonly source: string, private readonly tokens: readonly SelectorToken[]) {}

  public parse(): SelectorNode {
    const node = this.or();
    const t = this.peek();
    if (t.kind !== 'end') {
      throw this.error(t, `expected "and", "or" or the end, got ${describe(t)}`);
    }
    return node;
  }

  private or(): SelectorNode {
    let left = this.and();
    while (this.isWord('or')) {
      this.position++;
      left = { kind: 'or', left, right: this.and() };
    }
    return left;
  }

  private and(): SelectorNode {
    let left = this.unary();
    while (this.isWord('and')) {
      this.position++;
      left = { kind: 'and', left, right: this.unary() };
    }
    return left;
  }

  private unary(): SelectorNode {
    if (this.isWord('not')) {
      this.position++;
      return { kind: 'not', operand: this.unary() };
    }
    if (this.isSymbol('(')) {
      this.position++;
      const inner = this.or();
      this.expectSymbol(')');
      return inner;
    }
    return this.match();
  }

  private match(): SelectorNode {
    const first = this.peek();
    if (first.kind === 'string' || first.kind === 'number') {
      this.position++;
      let operator: MatchOperator = 'in';
      if (this.isWord('not')) {
        this.position++;
        operator = 'not in';
      }
      if (!this.isWord('in')) {
        throw this.error(this.peek(), `expected "in" or "not in" after the value ${first.text}, got ${describe(this.peek())}`);
      }
      this.position++;
      return { kind: 'match', operator, ...this.selector(), value: first.value };
    }
    const selector = this.selector();
    if (this.isSymbol('==') || this.isSymbol('!=')) {
      const operator = this.peek().value as MatchOperator;
      this.position++;
      return { kind: 'match', operator, ...selector, value: this.value().value };
    }
    if (this.isWord('is')) {
      this.position++;
      const negated = this.isWord('not');
      if (negated) {
        this.position++;
      }
      if (!this.isWord('empty')) {
        throw this.error(this.peek(), `expected "empty", got ${describe(this.peek())}`);
      }
      this.position++;
      return { kind: 'match', operator: negated ? 'is not empty' : 'is empty', ...selector, value: '' };
    }
    const negated = this.isWord('not');
    if (negated) {
      this.position++;
    }
    if (this.isWord('matches')) {
      this.position++;
      const pattern = this.value();
      let regex: RegExp;
      try {
        regex = goRegExp(pattern.value);
      } catch (e) {
        throw this.error(pattern, errorText(e));
      }
      return { kind: 'match', operator: negated ? 'not matches' : 'matches', ...selector, value: pattern.value, regex };
    }
    if (this.isWord('contains')) {
      this.position++;
      return { kind: 'match', operator: negated ? 'not contains' : 'contains', ...selector, value: this.value().value };
    }
    const wanted = negated ? '"matches" or "contains"' : 'an operator (==, !=, matches, contains, is empty, is not empty)';
    throw this.error(this.peek(), `expected ${wanted} after ${selector.text}, got ${describe(this.peek())}`);
  }

  private selector(): { path: string[]; text: string } {
    const first = this.peek();
    if (first.kind !== 'word' || SELECTOR_KEYWORDS.has(first.value)) {
      throw this.error(first, `expected a selector, got ${describe(first)}`);
    }
    this.position++;
    const path = [first.value];
    for (;;) {
      if (this.isSymbol('.')) {
        this.position++;
        const part = this.peek();
        if (part.kind !== 'word') {
          throw this.error(part, `expected a field name after ".", got ${describe(part)}`);
        }
        this.position++;
        path.push(part.value);
      } else if (this.isSymbol('[')) {
        this.position++;
        const key = this.peek();
        if (key.kind !== 'string') {
          throw this.error(key, `expected a quoted key after "[", got ${describe(key)}`);
        }
        this.position++;
        this.expectSymbol(']');
        path.push(key.value);
      } else {
        break;
      }
    }
    const last = this.tokens[this.position - 1];
    return { path, text: this.source.slice(first.offset, last.offset + last.text.length) };
  }

  private value(): SelectorToken {
    const t = this.peek();
    if (t.kind !== 'string' && t.kind !== 'number') {
      throw this.error(t, `expected a quoted string, got ${describe(t)}`);
    }
    this.position++;
    return t;
  }

  private peek(): SelectorToken {
    return this.tokens[this.position];
  }

  private isWord(word: string): boolean {
    const t = this.peek();
    return t.kind === 'word' && t.value === word;
  }

  private isSymbol(symbol: string): boolean {
    const t = this.peek();
    return t.kind === 'symbol' && t.value === symbol;
  }

  private expectSymbol(symbol: string): void {
    if (!this.isSymbol(symbol)) {
      throw this.error(this.peek(), `expected ${JSON.stringify(symbol)}, got ${describe(this.peek())}`);
    }
    this.position++;
  }

  private error(at: SelectorToken, message: string): SelectorError {
    return selectorError(this.source, at.offset, message);
  }
}

function describe(t: SelectorToken): string {
  return t.kind === 'end' ? 'the end of the selector' : JSON.stringify(t.text);
}

/**
 * A Go (RE2) regular expression as a JavaScript one: leading flag groups `(?i)`, `(?s)`, `(?m)` become flags, named
 * groups `(?P<n>` become `(?<n>`; what RE2 refuses (look-around, back-references) fails with Go's message.
 */
function goRegExp(pattern: string): RegExp {
  const unsupported = /\(\?<?[=!]|\(\?>|\\[1-9]/.exec(pattern);
  if (unsupported) {
    throw new Error(`error parsing regexp: invalid or unsupported Perl syntax: \`${unsupported[0]}\``);
  }
  const flags = /^\(\?([ims]+)\)/.exec(pattern);
  const body = (flags ? pattern.slice(flags[0].length) : pattern).replace(/\(\?P</g, '(?<');
  try {
    return new RegExp(body, flags ? [...new Set(flags[1])].join('') : '');
  } catch (e) {
    throw new Error(`error parsing regexp: ${errorText(e)}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Go durations.
// ---------------------------------------------------------------------------------------------------------------

const DURATION_UNIT_NS: Readonly<Record<string, number>> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds ("90s", "1h30m", "1.5h"); undefined when it is not a duration. */
function parseGoDuration(text: string): number | undefined {
  const signed = /^([-+]?)(.*)$/.exec(text)!;
  let rest = signed[2];
  if (rest === '0') {
    return 0;
  }
  if (rest === '') {
    return undefined;
  }
  let total = 0;
  while (rest !== '') {
    const part = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    if (!part) {
      return undefined;
    }
    total += Number(part[1]) * DURATION_UNIT_NS[part[2]];
    rest = rest.slice(part[0].length);
  }
  return signed[1] === '-' ? -total : total;
}

/** Go's time.Duration.String: "5m0s", "1h0m0s", "1m30s", "500ms". */
function formatGoDuration(ns: number): string {
  if (ns === 0) {
    return '0s';
  }
  const sign = ns < 0 ? '-' : '';
  let u = Math.abs(ns);
  const num = (n: number): string => String(Number(n.toFixed(9)));
  if (u < 1e3) {
    return `${sign}${u}ns`;
  }
  if (u < 1e6) {
    return `${sign}${num(u / 1e3)}µs`;
  }
  if (u < 1e9) {
    return `${sign}${num(u / 1e6)}ms`;
  }
  const h = Math.floor(u / 3600e9);
  u -= h * 3600e9;
  const m = Math.floor(u / 60e9);
  u -= m * 60e9;
  const s = `${num(u / 1e9)}s`;
  return sign + (h > 0 ? `${h}h${m}m${s}` : m > 0 ? `${m}m${s}` : s);
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------------------------

function resourceOfKind(kind: string): ConsulStandInResource {
  if (kind === INTENTIONS) {
    return 'intentions';
  }
  if (kind === SERVICE_DEFAULTS || kind === 'service-router' || kind === 'service-splitter' || kind === 'service-resolver') {
    return 'service';
  }
  return 'operator';
}

function splitPermission(p: string): [string, string, string] {
  const first = p.indexOf(':');
  const second = p.indexOf(':', first + 1);
  return second < 0 ? [p.slice(0, first), p.slice(first + 1), ''] : [p.slice(0, first), p.slice(first + 1, second), p.slice(second + 1)];
}

/**
 * What a token with these service and node identities may do, after Consul's synthetic policies: a service identity
 * writes its service and `<service>-sidecar-proxy` and reads every service and node; a node identity writes its node
 * and reads every service. The stand-in's rules are prefixes, so `service:write:<name>` is broader than Consul's
 * exact `service "<name>"` (it also covers `<name>-anything`).
 */
export function identityPermissions(services: readonly string[], nodes: readonly string[] = []): ConsulStandInPermission[] {
  const permissions = new Set<ConsulStandInPermission>();
  for (const s of services) {
    permissions.add(`service:write:${s}`).add('service:read').add('node:read');
  }
  for (const n of nodes) {
    permissions.add(`node:write:${n}`).add('service:read');
  }
  return [...permissions];
}

function tokenOf(req: http.IncomingMessage): string | undefined {
  const header = req.headers['x-consul-token'];
  if (typeof header === 'string' && header !== '') {
    return header;
  }
  const auth = req.headers.authorization;
  return typeof auth === 'string' && /^Bearer /i.test(auth) ? auth.slice(7).trim() : undefined;
}

/** A stable AccessorID for a SecretID, so messages can name the token without revealing it. */
function accessorIdOf(secretId: string): string {
  const h = crypto.createHash('sha256').update(`accessor:${secretId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function parseCas(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new HttpError(500, `strconv.ParseUint: parsing ${JSON.stringify(value)}: invalid syntax`);
  }
  return Number(value);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') {
    return undefined;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function asObject(value: unknown, message: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, message);
  }
  return value as Record<string, unknown>;
}

function stripKeys(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function hashOf(entry: Record<string, unknown>): number {
  return crypto.createHash('sha256').update(JSON.stringify(entry)).digest().readUInt32BE(0);
}

function sendText(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(message);
}

function colonHex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

function clone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function allowMethods(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) {
    throw new HttpError(405, `method ${method} not allowed`);
  }
}

/** A stored object as a single-object GET answers it, or Consul's 404 with `message`. */
function found(object: Record<string, unknown> | undefined, message: string): { body: unknown; index: number } {
  if (object === undefined) {
    throw new HttpError(404, message);
  }
  return { body: clone(object), index: Number(object.ModifyIndex) };
}

/** Go's encoding/json name of a JSON value's type, for decoding errors. */
function jsonTypeOf(value: unknown): string {
  if (Array.isArray(value)) {
    return 'array';
  }
  if (typeof value === 'boolean') {
    return 'bool';
  }
  return value === null ? 'null' : typeof value;
}

/** The Go type a JSON value decodes to in a map[string]interface{}, for mapstructure's wording. */
function goTypeOf(value: unknown): string {
  if (Array.isArray(value)) {
    return '[]interface {}';
  }
  if (typeof value === 'number') {
    return 'float64';
  }
  if (typeof value === 'object' && value !== null) {
    return 'map[string]interface {}';
  }
  return typeof value === 'boolean' ? 'bool' : typeof value;
}
