/**
 * A LOCAL STAND-IN for a destination service's sidecar proxy: the Envoy that consul-dataplane runs next to a backend
 * service, configured by Consul. It is not Envoy. It plays the part of Envoy's public listener, the one other mesh
 * members (and lambda-mesh functions, through a mesh gateway) connect to, and enforces one `service-intentions`
 * config entry with {@link decideIntention}, the independent statement of Consul's semantics in
 * ../intentions-semantics.ts.
 *
 * What it does:
 * - TLS on 127.0.0.1 (ephemeral port), TLS 1.2 or later, presenting the destination's leaf certificate and requiring
 *   a client certificate that chains to the mesh CA roots; a client that presents none, or one that does not chain,
 *   fails the handshake (recorded in `handshakeFailures`), as Envoy's validation context does.
 * - The caller is the client certificate's SPIFFE service ID (its URI SAN). As in Consul's RBAC principals, a caller
 *   from another trust domain, or a certificate with no service ID, matches no source and gets the default (deny):
 *   403 on HTTP, a closed connection on TCP. The handshake itself succeeds, as it does with Envoy.
 * - `protocol: 'http'`: each request is decided on its own (Envoy's HTTP RBAC filter). Denied: 403
 *   `RBAC: access denied` (text/plain), Envoy's local reply. Allowed: forwarded over plain HTTP to
 *   127.0.0.1:<upstreamPort> (the application), method, path and headers kept except hop-by-hop ones, bodies streamed
 *   both ways; an upstream that refuses the connection or resets it before answering gives Envoy's 503
 *   `upstream connect error or disconnect/reset before headers. reset reason: ...`. Before deciding, the path's dot
 *   segments are removed (RFC 3986 5.2.4, `%2e` counting as `.`), as Envoy's `normalize_path`, which Consul (1.20.1
 *   and later) turns on unless the mesh entry's `InsecureDisablePathNormalization` is set; the upstream gets the
 *   normalized path too. The `server` response header is `envoy`, as Envoy overwrites it.
 * - `protocol: 'tcp'`: the connection is decided once, from the identity (Envoy's network RBAC filter). Denied: the
 *   TLS connection is closed right after the handshake. Allowed: bytes are piped to 127.0.0.1:<upstreamPort>.
 *   An entry with L7 permissions is refused for a TCP destination (Consul writes L7 intentions only for HTTP-based
 *   protocols; rbac.go would treat any that slipped through as deny).
 * - `setEntry()` replaces the entry, as Consul pushing new xDS config does; it applies to every request or
 *   connection decided afterwards.
 * - Every decision is recorded in `decisions` (caller, method and path for HTTP, allowed, reason) and emits
 *   `'change'`, so tests can wait with `until(sidecar, ...)`.
 *
 * What it does not do: other listeners (the local upstream listeners of the service's own calls, metrics,
 * health checks, the admin API); HTTP/2 or gRPC framing (HTTP/1.1 only); JWT; routing, retries, timeouts, circuit
 * breaking, load balancing; the headers Envoy adds (x-request-id, x-forwarded-*, x-forwarded-client-cert,
 * x-envoy-*); merging slashes or decoding other percent-escapes; draining connections opened under the previous
 * config after an update (Envoy lets them finish under the old rules). Envoy's network RBAC filter decides when the
 * client's first bytes arrive; the stand-in decides at the handshake, which a client that writes first cannot tell.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/config-entry/service-intentions
 * @see https://developer.hashicorp.com/consul/docs/reference/config-entry/mesh#request-normalization
 * @see https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/security/rbac_filter
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/rbac_filter
 * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/listeners/network_filters/rbac_filter
 */
import * as crypto from 'crypto';
import { EventEmitter } from 'events';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as tls from 'tls';
import { checkIntentionsEntry, decideIntention, type IntentionAction, type IntentionRequest, type IntentionsEntry, parseSpiffeServiceId, type SpiffeServiceId } from '../intentions-semantics';

/** The body of Envoy's HTTP RBAC filter's 403. */
export const RBAC_ACCESS_DENIED = 'RBAC: access denied';
/** How Envoy's router's 503 body starts when the upstream cannot be reached or resets before answering. */
export const UPSTREAM_CONNECT_ERROR = 'upstream connect error or disconnect/reset before headers';

/** Options of {@link MeshSidecarStandIn.start}. */
export interface MeshSidecarOptions {
  /** The destination's leaf certificate (PEM), with its SPIFFE URI SAN. */
  readonly certPem: string;
  readonly privateKeyPem: string;
  /** The mesh CA roots client certificates must chain to (PEM, several may be concatenated). */
  readonly rootsPem: string;
  /** The mesh's trust domain; must be the one of `certPem`'s SPIFFE ID. */
  readonly trustDomain: string;
  /** `http`: decide per request (L7); `tcp`: decide per connection (L4). */
  readonly protocol: 'http' | 'tcp';
  /** The destination's `service-intentions` entry (its `Name` is the destination's service, or `*`). */
  readonly entry: IntentionsEntry;
  /**
   * The wildcard destination's entry (`*`), which applies when no source of `entry` matches (Consul's precedence).
   * @default - none
   */
  readonly wildcardEntry?: IntentionsEntry;
  /** The application's plain-text port on 127.0.0.1. */
  readonly upstreamPort: number;
  /**
   * The ACL default policy: what applies when no source matches.
   * @default 'deny'
   */
  readonly defaultAction?: IntentionAction;
}

/** One decision: a request (HTTP) or a connection (TCP). */
export interface SidecarDecision {
  /** The client certificate's SPIFFE service ID, else its first URI SAN, else undefined. */
  readonly caller: string | undefined;
  /** `caller`, parsed; undefined when the certificate carries no service ID. */
  readonly identity: SpiffeServiceId | undefined;
  /** HTTP only. */
  readonly method?: string;
  /** HTTP only: the request target after normalization, as RBAC saw it. */
  readonly path?: string;
  readonly allowed: boolean;
  readonly reason: string;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The destination's sidecar on 127.0.0.1, in front of an application on `upstreamPort`. */
export class MeshSidecarStandIn extends EventEmitter {
  /** Starts a sidecar on a free port. */
  public static async start(options: MeshSidecarOptions): Promise<MeshSidecarStandIn> {
    const sidecar = new MeshSidecarStandIn(options);
    await new Promise<void>((resolve, reject) => {
      sidecar.server.once('error', reject);
      sidecar.server.listen(0, '127.0.0.1', () => {
        sidecar.server.off('error', reject);
        resolve();
      });
    });
    return sidecar;
  }

  /** Every decision, in order. */
  public readonly decisions: SidecarDecision[] = [];
  /** TLS handshakes refused (no client certificate, one that does not chain, an old TLS version), with the error code. */
  public readonly handshakeFailures: string[] = [];
  /** The destination's own identity, from `certPem`. */
  public readonly identity: SpiffeServiceId;
  private current: IntentionsEntry;
  private wildcard: IntentionsEntry | undefined;
  private readonly server: https.Server | tls.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly options: MeshSidecarOptions) {
    super();
    const own = uriSans(new crypto.X509Certificate(options.certPem).subjectAltName).map(parseSpiffeServiceId).find((id) => id !== undefined);
    if (own === undefined) {
      throw new Error('MeshSidecarStandIn: certPem has no SPIFFE service ID (spiffe://<td>/ns/<ns>/dc/<dc>/svc/<name>) in its URI SAN');
    }
    if (own.trustDomain !== options.trustDomain) {
      throw new Error(`MeshSidecarStandIn: trustDomain ${JSON.stringify(options.trustDomain)} is not the one of certPem's SPIFFE ID (${JSON.stringify(own.trustDomain)})`);
    }
    this.identity = own;
    this.check(options.entry);
    this.current = options.entry;
    if (options.wildcardEntry) {
      this.check(options.wildcardEntry);
    }
    this.wildcard = options.wildcardEntry;
    const tlsOptions: tls.TlsOptions = {
      cert: options.certPem,
      key: options.privateKeyPem,
      ca: options.rootsPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    };
    this.server = options.protocol === 'http'
      ? https.createServer(tlsOptions, (req, res) => this.guarded(res, () => this.onRequest(req, res)))
      : tls.createServer(tlsOptions, (socket) => this.onConnection(socket));
    this.server.on('connection', (socket: net.Socket) => this.track(socket));
    this.server.on('tlsClientError', (e: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      this.handshakeFailures.push(e.code ?? e.message);
      socket.destroy();
      this.emit('change');
    });
  }

  /** The port of the public listener. */
  public get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** The entry in force. */
  public get entry(): IntentionsEntry {
    return this.current;
  }

  /** Replaces the entry for every decision from now on, as a new xDS push does. Throws for an entry Consul would not push here. */
  public setEntry(entry: IntentionsEntry, wildcardEntry?: IntentionsEntry): void {
    this.check(entry);
    if (wildcardEntry) {
      this.check(wildcardEntry);
    }
    this.current = entry;
    this.wildcard = wildcardEntry;
  }

  /** Closes the listener and every connection, to clients and to the upstream. */
  public async close(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private check(entry: IntentionsEntry): void {
    checkIntentionsEntry(entry);
    const namespace = entry.Namespace || 'default';
    if ((entry.Name !== '*' && entry.Name !== this.identity.service) || (namespace !== '*' && namespace !== this.identity.namespace)) {
      throw new Error(`MeshSidecarStandIn: the entry is for ${namespace}/${entry.Name}, this sidecar is ${this.identity.namespace}/${this.identity.service}'s`);
    }
    if (this.options.protocol === 'tcp') {
      const l7 = entry.Sources.findIndex((s) => (s.Permissions ?? []).length > 0);
      if (l7 >= 0) {
        throw new Error(`MeshSidecarStandIn: Sources[${l7}] of ${JSON.stringify(entry.Name)} has L7 Permissions, but this destination's protocol is tcp (L7 intentions need an HTTP-based protocol in service-defaults)`);
      }
    }
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** Decides for the client of `socket` (and `request`, on HTTP) with the entry in force, and records it. */
  private decide(socket: tls.TLSSocket, request?: IntentionRequest): SidecarDecision {
    const uris = uriSans(socket.getPeerX509Certificate()?.subjectAltName);
    const parsed = uris.map((uri) => ({ uri, id: parseSpiffeServiceId(uri) })).find((x) => x.id !== undefined);
    const caller = parsed?.uri ?? uris[0];
    const target = request ? { method: request.method, path: request.path } : {};
    let recorded: SidecarDecision;
    if (parsed?.id === undefined) {
      const action = this.options.defaultAction ?? 'deny';
      const what = caller === undefined ? 'the client certificate has no URI SAN' : `${caller} is not a Connect service identity`;
      recorded = { caller, identity: undefined, ...target, allowed: action === 'allow', reason: `${what}: no source can match: default ${action}` };
    } else {
      const d = decideIntention(this.current, parsed.id, request, { trustDomain: this.options.trustDomain, defaultAction: this.options.defaultAction ?? 'deny', ...(this.wildcard ? { wildcardEntry: this.wildcard } : {}) });
      recorded = { caller, identity: parsed.id, ...target, allowed: d.allowed, reason: d.reason };
    }
    this.decisions.push(recorded);
    this.emit('change');
    return recorded;
  }

  /** Runs `handle`; a bug in the stand-in answers 500 with the error, so a test fails at once instead of hanging. */
  private guarded(res: http.ServerResponse, handle: () => void): void {
    try {
      handle();
    } catch (e) {
      if (!res.headersSent) {
        localReply(res, 500, `MeshSidecarStandIn failed: ${(e as Error).stack ?? String(e)}`);
      } else {
        res.destroy();
      }
    }
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = normalizePath(req.url ?? '/');
    const headers = headerLists(req.rawHeaders);
    const d = this.decide(req.socket as tls.TLSSocket, { method, path, headers });
    if (!d.allowed) {
      req.resume();
      localReply(res, 403, RBAC_ACCESS_DENIED);
      return;
    }
    const upstream = http.request(
      { host: '127.0.0.1', port: this.options.upstreamPort, method, path, headers: outgoing(withoutHopByHop(headers)), agent: false },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, { ...outgoing(withoutHopByHop(headerLists(answer.rawHeaders))), server: 'envoy' });
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    upstream.on('socket', (s) => this.track(s));
    upstream.on('error', (e: NodeJS.ErrnoException) => {
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      const reason = e.code === 'ECONNREFUSED' ? 'connection failure' : 'connection termination';
      localReply(res, 503, `${UPSTREAM_CONNECT_ERROR}. reset reason: ${reason}`);
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        upstream.destroy();
      }
    });
    req.pipe(upstream);
  }

  private onConnection(socket: tls.TLSSocket): void {
    socket.on('error', () => socket.destroy());
    const d = this.decide(socket);
    if (!d.allowed) {
      socket.destroy();
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: this.options.upstreamPort, noDelay: true });
    this.track(upstream);
    upstream.on('error', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.pipe(upstream);
    upstream.pipe(socket);
  }
}

/** A local reply as Envoy sends it: text/plain, with a length. */
function localReply(res: http.ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), server: 'envoy' });
  res.end(body);
}

/** `rawHeaders` as lower-case names to every value, in order. */
function headerLists(raw: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    (out[raw[i].toLowerCase()] ??= []).push(raw[i + 1]);
  }
  return out;
}

/** Headers minus the hop-by-hop ones, including those the Connection header names. */
function withoutHopByHop(headers: Record<string, string[]>): Record<string, string[]> {
  const named = new Set((headers.connection ?? []).flatMap((v) => v.split(',')).map((v) => v.trim().toLowerCase()));
  return Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP_BY_HOP.has(k) && !named.has(k)));
}

/** Headers for Node's outgoing messages: a header sent once as a string (Node insists for Host), repeated ones as a list. */
function outgoing(headers: Record<string, string[]>): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.length === 1 ? v[0] : v]));
}

/** The URI SANs in a Node `subjectAltName` string (`URI:a, DNS:b`, values quoted when they need escaping). */
function uriSans(subjectAltName: string | undefined): string[] {
  return [...(subjectAltName ?? '').matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)].map((m) => (m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : m[1]));
}

/** The request target with its path's dot segments removed (RFC 3986 5.2.4); `%2e` counts as `.`; the query kept. */
export function normalizePath(target: string): string {
  if (!target.startsWith('/')) {
    return target;
  }
  const end = target.search(/[?#]/);
  const path = end < 0 ? target : target.slice(0, end);
  const rest = end < 0 ? '' : target.slice(end);
  const segments = path.split('/').slice(1);
  const out: string[] = [];
  segments.forEach((segment, i) => {
    const dots = segment.replace(/%2e/gi, '.');
    const last = i === segments.length - 1;
    if (dots === '.' || dots === '..') {
      if (dots === '..') {
        out.pop();
      }
      if (last) {
        out.push('');
      }
      return;
    }
    out.push(segment);
  });
  return `/${out.join('/')}${rest}`;
}
