/**
 * A LOCAL STAND-IN of the Consul HTTP API, for tests: an HTTPS server on 127.0.0.1 with its own CA and a server
 * certificate for `server.dc1.consul` only (so a client must verify the server name, not the address), made with the
 * library's x509 module. It is not Consul: it implements the endpoints lambda-mesh's handlers call, with the
 * semantics Consul documents, and records every request.
 *
 * - `GET  /v1/agent/connect/ca/roots`, `GET /v1/agent/connect/ca/leaf/:service` (real leaf certificates, signed by a
 *   stand-in Connect CA, with the SPIFFE URI SAN `spiffe://<trust domain>/ns/<ns>/dc/<dc>/svc/<service>`)
 * - `PUT  /v1/catalog/register`, `PUT /v1/catalog/deregister`, `GET /v1/catalog/service/:service`
 * - `PUT  /v1/config[?cas=N]`, `GET /v1/config/:kind/:name`, `DELETE /v1/config/:kind/:name[?cas=N]`: check-and-set
 *   on ModifyIndex (cas=0: create only), answers `true`/`false`; service-intentions are decoded, normalized
 *   (Type, Precedence, source order) and validated as Consul CE does, so wrong field names or limits fail here too.
 * - ACLs: a token table (SecretID -> permissions); unknown token 403 `ACL not found`, missing permission 403
 *   `Permission denied: token with AccessorID '...' lacks permission '...' on "..."`.
 * - Faults: fail the next N requests with a status, drop connections, delay, lose the next CAS writes to an
 *   interloper who writes in between.
 *
 * @see https://developer.hashicorp.com/consul/api-docs/config
 * @see https://developer.hashicorp.com/consul/api-docs/catalog
 * @see https://developer.hashicorp.com/consul/api-docs/agent/connect
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
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

/**
 * A permission of a stand-in token, after Consul's ACL rules: `<resource>:<read|write>` on every name, or
 * `<resource>:<read|write>:<name prefix>`; `management` allows everything. Write implies read.
 */
export type ConsulStandInPermission = 'management' | `${ConsulStandInResource}:${'read' | 'write'}` | `${ConsulStandInResource}:${'read' | 'write'}:${string}`;

/** The ACL resources the stand-in checks. */
export type ConsulStandInResource = 'service' | 'intentions' | 'node' | 'operator';

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
}

interface PendingFailure {
  readonly status: number;
  readonly message: string;
}

/** What stands in for the other writer when a CAS write is made to lose. */
export type CasInterloper = (current: Record<string, unknown> | undefined, incoming: Record<string, unknown> | undefined) => Record<string, unknown> | undefined;

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
    this.state = { index: 10, configEntries: new Map(), nodes: new Map(), roots: [], leaves: new Map(), issuedLeaves: [] };
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
  private aclFor(token: string | undefined): (resource: ConsulStandInResource, access: 'read' | 'write', name: string) => void {
    const permissions = token === undefined ? [] : this.tokens.get(token);
    if (permissions === undefined) {
      // Consul's answer to a SecretID it does not know.
      throw new HttpError(403, 'ACL not found');
    }
    const accessor = token === undefined ? '00000000-0000-0000-0000-000000000002' : accessorIdOf(token);
    return (resource, access, name) => {
      const ok = permissions.some((p) => {
        if (p === 'management') {
          return true;
        }
        const [r, a, prefix] = splitPermission(p);
        return r === resource && (a === 'write' || access === 'read') && name.startsWith(prefix);
      });
      if (!ok) {
        throw new HttpError(403, `Permission denied: token with AccessorID '${accessor}' lacks permission '${resource}:${access}' on ${JSON.stringify(name)}`);
      }
    };
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
    const address = body.Address;
    if (typeof node !== 'string' || node === '') {
      throw new HttpError(400, 'Must provide node');
    }
    if (typeof address !== 'string' || address === '') {
      throw new HttpError(400, 'Must provide address');
    }
    acl('node', 'write', node);
    const service = body.Service === undefined || body.Service === null ? undefined : asObject(body.Service, 'Service must be an object');
    if (service) {
      const name = service.Service;
      if (typeof name !== 'string' || name === '') {
        throw new HttpError(400, 'Must provide service name (Service.Service)');
      }
      acl('service', 'write', name);
    }
    const index = ++this.state.index;
    let entry = this.state.nodes.get(node);
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

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
