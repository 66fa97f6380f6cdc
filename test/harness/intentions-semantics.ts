/**
 * What the destination's sidecar (Envoy, configured by Consul) does with traffic under one `service-intentions`
 * config entry, written from Consul's documentation and from how Consul turns intentions into Envoy RBAC
 * (hashicorp/consul agent/xds/rbac.go), and from nothing in lambda-mesh: tests use it to judge the entries
 * lambda-mesh renders, so it must not share their assumptions.
 *
 * - The caller is matched against the entry's sources; only the most precise matching source applies (an exact name
 *   beats `*` in the same namespace, which beats `*` in namespace `*`). A source's namespace and partition default to
 *   the entry's, and those to `default`. Datacenters are not compared (Consul's RBAC matches any `dc`).
 * - An L4 source (`Action`) allows or denies the whole connection or request.
 * - An L7 source (`Permissions`) is evaluated per request, in order; the first permission that matches decides. A
 *   request no permission matches gets the default.
 * - A caller no source matches gets the default: deny, as in a cluster whose ACL default policy is deny.
 *
 * Request matching is Envoy's: paths are compared without the query string; `PathRegex` and header `Regex` must match
 * the WHOLE value (RE2 full match; run here as a JavaScript RegExp, which agrees for the patterns lambda-mesh writes);
 * `Methods` is any of the listed; every `Header` must hold; a header sent several times is matched as its values
 * joined with `,`; `Invert` negates a match, but a missing header fails every matcher except `Present` (Envoy's
 * HeaderUtility::matchHeaders), so `Exact` + `Invert` does not match a request without that header.
 *
 * Entries the evaluator cannot read unambiguously (both or neither of Action and Permissions, two path matchers, a
 * header with no or several matchers, ...) throw, with Consul's own validation messages; JWT requirements and
 * sameness groups are not modelled and throw too. Write-time limits (Meta, Description) are the Consul stand-in's job.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/config-entry/service-intentions
 * @see https://developer.hashicorp.com/consul/docs/connect/intentions/create-manage-intentions#precedence-and-matching-order
 * @see https://github.com/hashicorp/consul/blob/main/agent/xds/rbac.go
 * @see https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/rbac/v3/rbac.proto
 * @see https://www.envoyproxy.io/docs/envoy/latest/api-v3/config/route/v3/route_components.proto#config-route-v3-headermatcher
 */

/** Allow or deny, as Consul spells it. */
export type IntentionAction = 'allow' | 'deny';

/** One `Sources[].Permissions[].HTTP.Header[]` matcher: a name and exactly one of Present/Exact/Prefix/Suffix/Contains/Regex. */
export interface IntentionHeaderMatcher {
  readonly Name: string;
  readonly Present?: boolean;
  readonly Exact?: string;
  readonly Prefix?: string;
  readonly Suffix?: string;
  /** Consul 1.20.1 and later. */
  readonly Contains?: string;
  readonly Regex?: string;
  /** Compare Exact/Prefix/Suffix/Contains case-insensitively (Consul 1.20.1 and later). */
  readonly IgnoreCase?: boolean;
  readonly Invert?: boolean;
}

/** `Sources[].Permissions[].HTTP`. */
export interface IntentionHttpMatch {
  readonly PathExact?: string;
  readonly PathPrefix?: string;
  readonly PathRegex?: string;
  readonly Methods?: readonly string[];
  readonly Header?: readonly IntentionHeaderMatcher[];
}

/** `Sources[].Permissions[]`. */
export interface IntentionPermissionEntry {
  readonly Action: string;
  readonly HTTP?: IntentionHttpMatch;
  /** Not modelled: an entry with it throws. */
  readonly JWT?: unknown;
}

/** `Sources[]`. */
export interface IntentionSourceEntry {
  readonly Name: string;
  readonly Namespace?: string;
  readonly Partition?: string;
  readonly Peer?: string;
  /** Not modelled: an entry with it throws. */
  readonly SamenessGroup?: string;
  readonly Type?: string;
  readonly Action?: string;
  readonly Permissions?: readonly IntentionPermissionEntry[];
  readonly Description?: string;
  readonly Precedence?: number;
}

/** A `service-intentions` config entry, as Consul's API takes it. */
export interface IntentionsEntry {
  readonly Kind: string;
  readonly Name: string;
  readonly Namespace?: string;
  readonly Partition?: string;
  readonly Sources: readonly IntentionSourceEntry[];
  readonly Meta?: Readonly<Record<string, string>>;
  /** Not modelled: an entry with it throws. */
  readonly JWT?: unknown;
}

/** Who is calling: a service identity, as its certificate's SPIFFE ID names it. */
export interface IntentionCaller {
  readonly service: string;
  /** @default 'default' */
  readonly namespace?: string;
  /** @default 'default' */
  readonly partition?: string;
  /** Compared with {@link DecideOptions.trustDomain} when both are given. */
  readonly trustDomain?: string;
  /** The cluster peer the caller comes from; a local caller has none. */
  readonly peer?: string;
}

/** An HTTP request, for L7 permissions. */
export interface IntentionRequest {
  readonly method: string;
  /** The request target as sent (Envoy's `:path`): path and query string. */
  readonly path: string;
  /** Request headers by name, any case. */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** Options of {@link decideIntention}. */
export interface DecideOptions {
  /**
   * What applies when no source matches, or no permission of the matching L7 source does: the ACL default policy.
   * @default 'deny'
   */
  readonly defaultAction?: IntentionAction;
  /**
   * The local trust domain: a non-peer source matches only callers from it, as Consul's RBAC principal
   * `^spiffe://<trust domain>/ns/<ns>/dc/[^/]+/svc/<name>$` does.
   * @default - callers' trust domains are not compared
   */
  readonly trustDomain?: string;
  /**
   * The wildcard destination's entry (`Name: "*"`), consulted when no source of `entry` matches: Consul merges the
   * intentions of the exact destination and of `*` into one list ordered by precedence, in which every intention
   * with the exact destination (whatever its source) outranks every intention with the wildcard destination.
   * @default - none: the default action applies when no source of `entry` matches
   * @see https://developer.hashicorp.com/consul/docs/secure-mesh/intention#precedence-and-match-order
   */
  readonly wildcardEntry?: IntentionsEntry;
}

/** What the sidecar does, and why. */
export interface IntentionDecision {
  readonly allowed: boolean;
  readonly action: IntentionAction;
  /** The index in `Sources` of the source that applied; undefined when none matched. */
  readonly sourceIndex?: number;
  /** The index in that source's `Permissions` of the permission that decided. */
  readonly permissionIndex?: number;
  /** One line: which source, which permission, or that the default applied. */
  readonly reason: string;
}

/** A Consul service identity, parsed from its SPIFFE ID. */
export interface SpiffeServiceId {
  readonly trustDomain: string;
  readonly partition: string;
  readonly namespace: string;
  readonly datacenter: string;
  readonly service: string;
}

const SPIFFE_SERVICE_ID = /^spiffe:\/\/([^/?#]+)(?:\/ap\/([^/?#]+))?\/ns\/([^/?#]+)\/dc\/([^/?#]+)\/svc\/([^/?#]+)$/;
const WILDCARD = '*';
/** Go's net/http method constants, which Consul accepts in `Methods` (isValidHTTPMethod). */
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE']);

/**
 * The service identity in a Connect SPIFFE ID: `spiffe://<td>/ns/<ns>/dc/<dc>/svc/<name>`, or with a partition
 * `spiffe://<td>/ap/<ap>/ns/<ns>/dc/<dc>/svc/<name>`. Anything else (agents, mesh gateways, other URIs): undefined.
 * Consul writes the `/ap/` segment only for a non-default partition; without it the partition is `default`.
 */
export function parseSpiffeServiceId(uri: string): SpiffeServiceId | undefined {
  const m = SPIFFE_SERVICE_ID.exec(uri);
  if (!m) {
    return undefined;
  }
  return { trustDomain: m[1], partition: m[2] ?? 'default', namespace: m[3], datacenter: m[4], service: m[5] };
}

/**
 * Decides traffic from `caller` to the destination of `entry`: the connection (`request` omitted: a TCP destination,
 * where an L7 source counts as deny, as Consul's rbac.go treats L7 intentions that reach a TCP listener) or one HTTP
 * request. Throws when the entry is one the evaluator cannot read (see {@link checkIntentionsEntry}).
 */
export function decideIntention(entry: IntentionsEntry, caller: IntentionCaller, request?: IntentionRequest, options: DecideOptions = {}): IntentionDecision {
  checkIntentionsEntry(entry);
  const defaultAction = options.defaultAction ?? 'deny';
  const match = applicableSource(entry, caller, options);
  if (match === undefined) {
    const wildcard = options.wildcardEntry;
    if (wildcard !== undefined && wildcard !== entry) {
      if (wildcard.Name !== WILDCARD) {
        throw new Error(`wildcardEntry must be the entry of destination "*", got ${JSON.stringify(wildcard.Name)}`);
      }
      const fallback = decideIntention(wildcard, caller, request, { ...options, wildcardEntry: undefined });
      return { ...fallback, reason: `no source of ${JSON.stringify(entry.Name)} matches ${describeCaller(caller)}; destination "*": ${fallback.reason}` };
    }
    return decision(defaultAction, `no matching source for ${describeCaller(caller)}: default ${defaultAction}`);
  }
  const { source, index } = match;
  const where = `source ${JSON.stringify(source.Name)} (Sources[${index}])`;
  const permissions = source.Permissions ?? [];
  if (permissions.length === 0) {
    const action = source.Action as IntentionAction;
    return decision(action, `${where}: L4 ${action}`, index);
  }
  if (request === undefined) {
    return decision('deny', `${where}: L7 permissions without an HTTP request: deny (Consul treats L7 intentions on a TCP destination as deny)`, index);
  }
  for (let p = 0; p < permissions.length; p++) {
    const permission = permissions[p];
    if (permissionMatches(permission.HTTP ?? {}, request)) {
      const action = permission.Action as IntentionAction;
      return decision(action, `${where}: Permissions[${p}] matched: ${action}`, index, p);
    }
  }
  return decision(defaultAction, `${where}: no permission matched ${request.method} ${request.path}: default ${defaultAction}`, index);
}

/**
 * Throws, with Consul's validation message, when `entry` is not a `service-intentions` entry the evaluator can read
 * unambiguously; also throws for what it does not model (JWT, SamenessGroup).
 */
export function checkIntentionsEntry(entry: IntentionsEntry): void {
  const fail = (message: string): never => {
    throw new Error(`service-intentions ${JSON.stringify(entry?.Name)}: ${message}`);
  };
  if (entry?.Kind !== 'service-intentions') {
    fail(`Kind must be "service-intentions", got ${JSON.stringify(entry?.Kind)}`);
  }
  if (typeof entry.Name !== 'string' || entry.Name === '') {
    fail('Name is required');
  }
  checkWildcards(entry.Name, namespaceOf(entry.Namespace), '', fail);
  if (entry.JWT !== undefined && entry.JWT !== null) {
    fail('JWT requirements are not modelled by this evaluator');
  }
  const destinationIsWild = entry.Name === WILDCARD || entry.Namespace === WILDCARD;
  if (!Array.isArray(entry.Sources) || entry.Sources.length === 0) {
    fail('At least one source is required');
  }
  const seen = new Set<string>();
  entry.Sources.forEach((src, i) => {
    const at = `Sources[${i}]`;
    if (typeof src.Name !== 'string' || src.Name === '') {
      fail(`${at}.Name is required`);
    }
    checkWildcards(src.Name, sourceNamespace(entry, src), `${at}.`, fail);
    if (nonEmpty(src.Partition) && src.Partition.includes(WILDCARD)) {
      fail(`${at}.Partition: cannot use wildcard '*' in partition`);
    }
    if (nonEmpty(src.Peer) && src.Peer.includes(WILDCARD)) {
      fail(`${at}.Peer: cannot use wildcard '*' in peer`);
    }
    if (nonEmpty(src.Peer) && nonEmpty(src.Partition)) {
      fail(`${at}.Peer: cannot set Peer and Partition at the same time.`);
    }
    if (nonEmpty(src.SamenessGroup)) {
      fail(`${at}.SamenessGroup: sameness groups are not modelled by this evaluator`);
    }
    if (nonEmpty(src.Type) && src.Type !== 'consul') {
      fail(`${at}.Type must be set to 'consul'`);
    }
    const permissions = src.Permissions ?? [];
    if (permissions.length === 0 && src.Action !== 'allow' && src.Action !== 'deny') {
      fail(`${at}.Action must be set to 'allow' or 'deny'`);
    }
    if (permissions.length > 0 && nonEmpty(src.Action)) {
      fail(`${at}.Action must be omitted if Permissions are specified`);
    }
    if (permissions.length > 0 && destinationIsWild) {
      fail(`${at}.Permissions cannot be specified on intentions with wildcarded destinations`);
    }
    permissions.forEach((perm, j) => checkPermission(perm, `${at}.Permissions[${j}]`, fail));
    const key = JSON.stringify([src.Peer ?? '', sourcePartition(entry, src), sourceNamespace(entry, src), src.Name]);
    if (seen.has(key)) {
      fail(`${at} defines ${JSON.stringify(`${sourceNamespace(entry, src)}/${src.Name}`)} more than once`);
    }
    seen.add(key);
  });
}

function checkWildcards(name: string, namespace: string, at: string, fail: (message: string) => never): void {
  if (namespace !== WILDCARD && namespace.includes(WILDCARD)) {
    fail(`${at}Namespace: wildcard character '*' cannot be used with partial values`);
  }
  if (name !== WILDCARD) {
    if (name.includes(WILDCARD)) {
      fail(`${at}Name: wildcard character '*' cannot be used with partial values`);
    }
    if (namespace === WILDCARD) {
      fail(`${at}Name: exact value cannot follow wildcard namespace`);
    }
  }
}

function checkPermission(perm: IntentionPermissionEntry, at: string, fail: (message: string) => never): void {
  if (perm.Action !== 'allow' && perm.Action !== 'deny') {
    fail(`${at}.Action must be set to 'allow' or 'deny'`);
  }
  if (perm.JWT !== undefined && perm.JWT !== null) {
    fail(`${at}.JWT: JWT requirements are not modelled by this evaluator`);
  }
  const http = perm.HTTP;
  if (http === undefined || http === null) {
    fail(`${at}.HTTP is required`);
    return;
  }
  let parts = 0;
  for (const key of ['PathExact', 'PathPrefix'] as const) {
    const value = http[key];
    if (nonEmpty(value)) {
      parts++;
      if (!value.startsWith('/')) {
        fail(`${at}.HTTP.${key} doesn't start with '/': ${JSON.stringify(value)}`);
      }
    }
  }
  if (nonEmpty(http.PathRegex)) {
    parts++;
    checkRegex(http.PathRegex, `${at}.HTTP.PathRegex`, fail);
  }
  if (parts > 1) {
    fail(`${at}.HTTP should only contain at most one of PathExact, PathPrefix, or PathRegex`);
  }
  (http.Header ?? []).forEach((h, k) => {
    if (!nonEmpty(h.Name)) {
      fail(`${at}.HTTP.Header[${k}] missing required Name field`);
    }
    const matchers = (h.Present === true ? 1 : 0) + [h.Exact, h.Prefix, h.Suffix, h.Contains, h.Regex].filter(nonEmpty).length;
    if (matchers !== 1) {
      fail(`${at}.HTTP.Header[${k}] should only contain one of Present, Exact, Prefix, Suffix, Contains, or Regex`);
    }
    if (nonEmpty(h.Regex)) {
      checkRegex(h.Regex, `${at}.HTTP.Header[${k}].Regex`, fail);
    }
    parts++;
  });
  const methods = http.Methods ?? [];
  if (methods.length > 0) {
    const found = new Set<string>();
    for (const m of methods.map((x) => String(x).toUpperCase())) {
      if (!HTTP_METHODS.has(m)) {
        fail(`${at}.HTTP.Methods contains an invalid method ${JSON.stringify(m)}`);
      }
      if (found.has(m)) {
        fail(`${at}.HTTP.Methods contains ${JSON.stringify(m)} more than once`);
      }
      found.add(m);
    }
    parts++;
  }
  if (parts === 0) {
    fail(`${at}.HTTP should not be empty`);
  }
}

/** The matching source with the most exact values (name and namespace), as Consul's precedence orders them. */
function applicableSource(entry: IntentionsEntry, caller: IntentionCaller, options: DecideOptions): { source: IntentionSourceEntry; index: number } | undefined {
  let best: { source: IntentionSourceEntry; index: number; exact: number } | undefined;
  entry.Sources.forEach((source, index) => {
    if (!sourceMatches(entry, source, caller, options)) {
      return;
    }
    const exact = exactCount(source.Name, sourceNamespace(entry, source));
    if (best === undefined || exact > best.exact) {
      best = { source, index, exact };
    }
  });
  return best;
}

function sourceMatches(entry: IntentionsEntry, source: IntentionSourceEntry, caller: IntentionCaller, options: DecideOptions): boolean {
  const peer = nonEmpty(source.Peer) ? source.Peer : undefined;
  if (peer !== (nonEmpty(caller.peer) ? caller.peer : undefined)) {
    return false;
  }
  if (peer === undefined) {
    if (options.trustDomain !== undefined && caller.trustDomain !== undefined && caller.trustDomain !== options.trustDomain) {
      return false;
    }
    // A peer's services are matched in the partition the peer exports from; a local source's partition is exact.
    if (sourcePartition(entry, source) !== (caller.partition || 'default')) {
      return false;
    }
  }
  const namespace = sourceNamespace(entry, source);
  return (namespace === WILDCARD || namespace === (caller.namespace || 'default')) && (source.Name === WILDCARD || source.Name === caller.service);
}

/** Consul's intentionCountExact: 2 for ns/name, 1 for ns/*, 0 for * / *. */
function exactCount(name: string, namespace: string): number {
  return namespace === WILDCARD ? 0 : name === WILDCARD ? 1 : 2;
}

/** A source's namespace: its own, else (not for a peer) the destination's unless that is a wildcard, else `default`. */
function sourceNamespace(entry: IntentionsEntry, source: IntentionSourceEntry): string {
  if (nonEmpty(source.Namespace)) {
    return source.Namespace;
  }
  return !nonEmpty(source.Peer) && nonEmpty(entry.Namespace) && entry.Namespace !== WILDCARD ? entry.Namespace : 'default';
}

function sourcePartition(entry: IntentionsEntry, source: IntentionSourceEntry): string {
  return nonEmpty(source.Partition) ? source.Partition : nonEmpty(entry.Partition) ? entry.Partition : 'default';
}

function namespaceOf(namespace: string | undefined): string {
  return nonEmpty(namespace) ? namespace : 'default';
}

/** All of the path matcher, the header matchers and the methods (what is absent matches), as rbac.go ANDs them. */
function permissionMatches(http: IntentionHttpMatch, request: IntentionRequest): boolean {
  const path = request.path.replace(/[?#].*$/s, '');
  if (nonEmpty(http.PathExact)) {
    if (path !== http.PathExact) {
      return false;
    }
  } else if (nonEmpty(http.PathPrefix)) {
    if (!path.startsWith(http.PathPrefix)) {
      return false;
    }
  } else if (nonEmpty(http.PathRegex)) {
    if (!compileFullMatch(http.PathRegex).test(path)) {
      return false;
    }
  }
  for (const h of http.Header ?? []) {
    if (!headerMatches(h, headerValue(request, h.Name))) {
      return false;
    }
  }
  const methods = (http.Methods ?? []).map((m) => String(m).toUpperCase());
  return methods.length === 0 || methods.includes(request.method);
}

/** Envoy's HeaderUtility::matchHeaders for the matchers Consul writes. */
function headerMatches(h: IntentionHeaderMatcher, value: string | undefined): boolean {
  const invert = h.Invert === true;
  if (value === undefined) {
    return invert && h.Present === true;
  }
  const fold = (s: string): string => (h.IgnoreCase === true ? s.toLowerCase() : s);
  let match: boolean;
  if (nonEmpty(h.Exact)) {
    match = fold(value) === fold(h.Exact);
  } else if (nonEmpty(h.Regex)) {
    match = compileFullMatch(h.Regex).test(value);
  } else if (nonEmpty(h.Prefix)) {
    match = fold(value).startsWith(fold(h.Prefix));
  } else if (nonEmpty(h.Suffix)) {
    match = fold(value).endsWith(fold(h.Suffix));
  } else if (nonEmpty(h.Contains)) {
    match = fold(value).includes(fold(h.Contains));
  } else {
    match = true; // Present
  }
  return match !== invert;
}

/** A header's value as Envoy matches it: names case-insensitive, repeated values joined with `,`, pseudo-headers. */
function headerValue(request: IntentionRequest, name: string): string | undefined {
  const wanted = name.toLowerCase();
  if (wanted === ':method') {
    return request.method;
  }
  if (wanted === ':path') {
    return request.path;
  }
  const lookup = wanted === ':authority' ? 'host' : wanted;
  const values: string[] = [];
  for (const [k, v] of Object.entries(request.headers ?? {})) {
    if (k.toLowerCase() === lookup && v !== undefined) {
      values.push(...(typeof v === 'string' ? [v] : v));
    }
  }
  return values.length === 0 ? undefined : values.join(',');
}

const compiled = new Map<string, RegExp>();

/** `pattern` anchored to match a whole value, as Envoy's safe_regex (RE2 FullMatch) does. */
function compileFullMatch(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (re === undefined) {
    re = new RegExp(`^(?:${pattern})$`);
    compiled.set(pattern, re);
  }
  return re;
}

/** Fails (with `fail`) when `pattern` is not a regular expression JavaScript can run. */
function checkRegex(pattern: string, at: string, fail: (message: string) => never): void {
  try {
    compileFullMatch(pattern);
  } catch (e) {
    fail(`${at} ${JSON.stringify(pattern)} is not a regular expression this evaluator can run (${(e as Error).message})`);
  }
}

function decision(action: IntentionAction, reason: string, sourceIndex?: number, permissionIndex?: number): IntentionDecision {
  return {
    allowed: action === 'allow',
    action,
    ...(sourceIndex !== undefined ? { sourceIndex } : {}),
    ...(permissionIndex !== undefined ? { permissionIndex } : {}),
    reason,
  };
}

function describeCaller(caller: IntentionCaller): string {
  const where = [caller.peer ? `peer ${caller.peer}` : undefined, caller.trustDomain].filter((x) => x !== undefined).join(', ');
  return `${caller.partition || 'default'}/${caller.namespace || 'default'}/${caller.service}${where ? ` (${where})` : ''}`;
}

/** Go's zero value test: Consul treats an empty string as an absent field. */
function nonEmpty(value: string | undefined | null): value is string {
  return typeof value === 'string' && value !== '';
}
