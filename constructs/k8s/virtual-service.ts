import { type Duration, Lazy } from 'cdk8s';
import { Construct, type IConstruct } from 'constructs';
import { LambdaMeshError, describeValue, throwInvalid } from '../core/errors';
import { IstioDestinationRule, IstioSubset } from './destination-rule';
import { type IIstioGateway } from './gateway';
import {
  VirtualService,
  type VirtualServiceSpecHttp,
  type VirtualServiceSpecHttpMatch,
  type VirtualServiceSpecHttpRoute,
} from './imports/istio-networking.istio.io';
import { type IKnativeService } from './knative-service';
import {
  CLUSTER_DOMAIN,
  checkDns1123Label,
  checkInteger,
  hostMatches,
  isFqdn,
  isWildcardDomain,
  istioDuration,
  kebabCase,
  resolveNamespace,
  serviceFqdn,
} from './private/validation';

/** The reserved gateway name that binds a VirtualService to every sidecar in the mesh. */
const MESH_GATEWAY = 'mesh';
/** The port of a Knative revision's Kubernetes Service. */
const KNATIVE_REVISION_PORT = 80;
/** Retry conditions Envoy knows (x-envoy-retry-on and x-envoy-retry-grpc-on); HTTP status codes are also accepted. */
const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);
// RE2 (Envoy's regex engine) has no lookaround and no backreferences; JavaScript accepts both.
const NOT_RE2 = /\(\?<?[=!]|\\[1-9]|\\k</;

/**
 * Defines how a string of a request (URI, header, method) is matched.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/#IstioStringMatch
 */
export class IstioStringMatch {
  /** Defines a match of exactly `value`. */
  public static exact(value: string): IstioStringMatch {
    return new IstioStringMatch('exact', value);
  }

  /** Defines a match of strings starting with `value`. */
  public static prefix(value: string): IstioStringMatch {
    return new IstioStringMatch('prefix', value);
  }

  /** Defines a match of the whole string against an RE2 regular expression. */
  public static regex(value: string): IstioStringMatch {
    return new IstioStringMatch('regex', value);
  }

  private constructor(
    /** `exact`, `prefix` or `regex`. */
    public readonly kind: string,
    /** The string or pattern. */
    public readonly value: string,
  ) {}

  /** @internal */
  public _render(scope: IConstruct, field: string): { exact?: string; prefix?: string; regex?: string } {
    if (this.kind === 'regex') {
      if (this.value === '') {
        throwInvalid(scope, field, this.value, 'a non-empty regular expression');
      }
      try {
        new RegExp(this.value);
      } catch {
        throwInvalid(scope, field, this.value, 'a valid RE2 regular expression');
      }
      if (NOT_RE2.test(this.value)) {
        throwInvalid(scope, field, this.value, 'an RE2 regular expression (no lookahead, lookbehind or backreferences: Envoy rejects them)');
      }
    }
    return { [this.kind]: this.value };
  }

  /** @internal True when it matches every URI path. */
  public get _matchesEveryPath(): boolean {
    return (this.kind === 'prefix' && (this.value === '/' || this.value === '')) || (this.kind === 'regex' && (this.value === '.*' || this.value === '/.*'));
  }
}

/**
 * Defines a port selector and other options of an {@link IstioDestination}.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
export interface IstioDestinationOptions {
  /**
   * The port of the host; needed when the service has more than one.
   * @default - the service's only port
   */
  readonly port?: number;
}

/**
 * Defines where a route sends requests: a host, optionally one subset of its endpoints.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/#Destination
 */
export class IstioDestination {
  /**
   * Defines all endpoints of `host`, a fully qualified name.
   */
  public static host(host: string, options: IstioDestinationOptions = {}): IstioDestination {
    return new IstioDestination(host, options.port, undefined, {});
  }

  /**
   * Defines the `subset` of `host`'s endpoints; the VirtualService generates the DestinationRule that defines it.
   */
  public static subset(host: string, subset: IstioSubset, options: IstioDestinationOptions = {}): IstioDestination {
    return new IstioDestination(host, options.port, subset, {});
  }

  /**
   * Defines the endpoints of `host` labelled `version: <version>` (subset named after the version).
   */
  public static version(host: string, version: string, options: IstioDestinationOptions = {}): IstioDestination {
    return IstioDestination.subset(host, IstioSubset.version(version), options);
  }

  /**
   * Defines one revision of a Knative Service: its Kubernetes Service `<revision>.<namespace>.svc.cluster.local`
   * on port 80, with the `Knative-Serving-Namespace` / `Knative-Serving-Revision` headers Knative's activator needs
   * to route to a revision scaled to zero (the headers Knative's own ingress sets).
   *
   * @see https://github.com/knative/net-istio/blob/main/pkg/reconciler/ingress/resources/virtual_service.go
   */
  public static knativeRevision(service: IKnativeService, revisionName: string): IstioDestination {
    return new IstioDestination(serviceFqdn(revisionName, service.namespace), KNATIVE_REVISION_PORT, undefined, {
      'Knative-Serving-Namespace': service.namespace,
      'Knative-Serving-Revision': revisionName,
    }, { service, revisionName });
  }

  private constructor(
    /** The destination host. */
    public readonly host: string,
    /** The port, when one was chosen. */
    public readonly port: number | undefined,
    /** The subset, when one was chosen. */
    public readonly subset: IstioSubset | undefined,
    private readonly requestHeaders: Readonly<Record<string, string>>,
    private readonly knative?: { readonly service: IKnativeService; readonly revisionName: string },
  ) {}

  /** @internal */
  public _render(scope: IConstruct, field: string, weight: number | undefined): VirtualServiceSpecHttpRoute {
    if (!isFqdn(this.host)) {
      throwInvalid(scope, `${field}.host`, this.host, 'a fully qualified host such as "payment-handler.orders.svc.cluster.local" (Istio resolves short names against the VirtualService\'s namespace)');
    }
    if (this.port !== undefined) {
      checkInteger(scope, `${field}.port`, this.port, 1, 65535);
    }
    if (this.knative) {
      const { service, revisionName } = this.knative;
      checkDns1123Label(scope, `${field}.revisionName`, revisionName);
      if (!revisionName.startsWith(`${service.serviceName}-`)) {
        throwInvalid(scope, `${field}.revisionName`, revisionName, `a revision of ${service.serviceName} ("${service.serviceName}-<suffix>")`);
      }
    }
    const headers = Object.keys(this.requestHeaders).length > 0 ? { request: { set: { ...this.requestHeaders } } } : undefined;
    return {
      destination: {
        host: this.host,
        port: this.port !== undefined ? { number: this.port } : undefined,
        subset: this.subset?.name,
      },
      weight,
      headers,
    };
  }

  /** @internal A key that is equal for destinations that reach the same endpoints. */
  public get _key(): string {
    return `${this.host.toLowerCase()}:${this.port ?? ''}/${this.subset?.name ?? ''}`;
  }
}

/**
 * Defines a destination and its share of a route's requests.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
export interface IstioWeightedDestination {
  /** Where requests go. */
  readonly destination: IstioDestination;
  /**
   * The share of the route's requests, an integer from 0 to 100; the weights of a route sum to 100.
   * @default - 100 (only allowed when the route has one destination)
   */
  readonly weight?: number;
}

/**
 * Defines the conditions of a match; all given conditions must hold.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPMatchRequest
 */
export interface IstioHttpMatch {
  /**
   * The URI path.
   * @default - any
   */
  readonly uri?: IstioStringMatch;
  /**
   * The method.
   * @default - any
   */
  readonly method?: IstioStringMatch;
  /**
   * The authority (Host header).
   * @default - any
   */
  readonly authority?: IstioStringMatch;
  /**
   * Request headers, by lower-case name (Envoy lower-cases header names, so upper case never matches).
   * @default - none
   */
  readonly headers?: Record<string, IstioStringMatch>;
  /**
   * Headers that must not match, by lower-case name.
   * @default - none
   */
  readonly withoutHeaders?: Record<string, IstioStringMatch>;
  /**
   * Query parameters.
   * @default - none
   */
  readonly queryParams?: Record<string, IstioStringMatch>;
  /**
   * The port the request arrived on.
   * @default - any
   */
  readonly port?: number;
  /**
   * Matches `uri` case-insensitively.
   * @default false
   */
  readonly ignoreUriCase?: boolean;
}

/**
 * Defines the retries of a route.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRetry
 */
export interface IstioRetryPolicy {
  /**
   * Number of retries; 0 disables retries.
   */
  readonly attempts: number;
  /**
   * Timeout of each try. `perTryTimeout x attempts` must fit in the route's timeout, or the later retries never run.
   * @default - the route's timeout
   */
  readonly perTryTimeout?: Duration;
  /**
   * Conditions that trigger a retry (Envoy's retry-on values or HTTP status codes).
   * @default - Istio's default (connect-failure, refused-stream, unavailable, cancelled, retriable-status-codes)
   */
  readonly retryOn?: string[];
}

/**
 * Defines one HTTP route of a VirtualService.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRoute
 */
export interface IstioHttpRouteOptions {
  /**
   * The route's name (in access logs and stats).
   * @default - none
   */
  readonly name?: string;
  /**
   * The matches; any one selects the route. Routes are tried in order, so a route without matches (or matching
   * every path) is a catch-all and must be the last.
   * @default - every request (a catch-all)
   */
  readonly matches?: IstioHttpMatch[];
  /**
   * The destinations, in one weighted list.
   */
  readonly destinations: IstioWeightedDestination[];
  /**
   * Timeout of the whole request, retries included.
   * @default - no timeout (Istio's default)
   */
  readonly timeout?: Duration;
  /**
   * Retries.
   * @default - Istio's default retry policy (2 attempts)
   */
  readonly retries?: IstioRetryPolicy;
}

/**
 * Defines a canary release: a share of the traffic, and optionally every request matching some headers, goes to
 * the candidate; the rest to the stable destination.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
export interface IstioCanaryOptions {
  /** The destination that takes most traffic. */
  readonly stable: IstioDestination;
  /** The new destination under test. */
  readonly candidate: IstioDestination;
  /** The candidate's share of the requests that match no header rule, an integer from 0 to 100. */
  readonly weight: number;
  /**
   * Requests whose headers all match (by lower-case name) go to the candidate, whatever the weight.
   * @default - no header rule
   */
  readonly header?: Record<string, IstioStringMatch>;
  /**
   * Limits the canary to requests that match (a path prefix, say); without it the split route is a catch-all.
   * @default - every request
   */
  readonly match?: IstioHttpMatch;
  /**
   * The prefix of the route names.
   * @default 'canary'
   */
  readonly name?: string;
  /**
   * Timeout of each request.
   * @default - no timeout
   */
  readonly timeout?: Duration;
  /**
   * Retries.
   * @default - Istio's default retry policy
   */
  readonly retries?: IstioRetryPolicy;
}

/**
 * Defines the props of an {@link IstioVirtualService}.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
export interface IstioVirtualServiceProps {
  /**
   * The VirtualService's name, a DNS-1123 label.
   * @default - the construct ID in kebab case
   */
  readonly virtualServiceName?: string;
  /**
   * The namespace.
   * @default - the chart's namespace (one of the two is required)
   */
  readonly namespace?: string;
  /**
   * Hosts the routes apply to: fully qualified names or wildcard domains (`*.example.com`). Short names are
   * rejected: Istio reads them relative to the VirtualService's namespace, not the service's.
   */
  readonly hosts: string[];
  /**
   * Gateways whose traffic the routes apply to.
   * @default - none: only sidecar (mesh) traffic
   */
  readonly gateways?: IIstioGateway[];
  /**
   * Applies the routes to sidecar traffic too (the reserved gateway `mesh`) when `gateways` are given; without it,
   * calls from inside the mesh bypass these routes.
   * @default - true without gateways (Istio's implicit `mesh`), false with gateways
   */
  readonly meshTraffic?: boolean;
  /**
   * HTTP routes, in order; more with {@link IstioVirtualService.addHttpRoute} and {@link IstioVirtualService.addCanary}.
   * @default - none
   */
  readonly http?: IstioHttpRouteOptions[];
}

/**
 * Defines an Istio VirtualService (networking.istio.io/v1) with ordered HTTP routes, one weighted destination list
 * per route, checked retries and timeouts, and a DestinationRule for every subset a route uses (written before the
 * VirtualService, see {@link IstioDestinationRule} for make-before-break).
 *
 * @see https://istio.io/latest/docs/reference/config/networking/virtual-service/
 */
export class IstioVirtualService extends Construct {
  /** The VirtualService's name. */
  public readonly virtualServiceName: string;
  /** The namespace. */
  public readonly namespace: string;
  /** The hosts. */
  public readonly hosts: string[];

  private readonly gateways: readonly IIstioGateway[];
  private readonly meshTraffic: boolean;
  private readonly routes: VirtualServiceSpecHttp[] = [];
  private readonly routeLabels: string[] = [];
  private catchAll: string | undefined;
  private readonly resource: VirtualService;

  constructor(scope: Construct, id: string, props: IstioVirtualServiceProps) {
    super(scope, id);
    this.virtualServiceName = props.virtualServiceName ?? kebabCase(id);
    checkDns1123Label(this, 'virtualServiceName', this.virtualServiceName);
    this.namespace = resolveNamespace(this, props.namespace);
    this.gateways = [...(props.gateways ?? [])];
    this.meshTraffic = props.meshTraffic ?? this.gateways.length === 0;
    if (!this.meshTraffic && this.gateways.length === 0) {
      throwInvalid(this, 'meshTraffic', false, 'true, or at least one gateway (otherwise no traffic uses these routes)');
    }
    const refs = this.gateways.map((g) => g.gatewayReference);
    const duplicate = refs.find((r, i) => refs.indexOf(r) !== i);
    if (duplicate !== undefined) {
      throwInvalid(this, 'gateways', duplicate, 'each gateway once');
    }
    this.hosts = [...props.hosts];
    this.checkHosts();

    this.resource = new VirtualService(this, 'Resource', {
      metadata: { name: this.virtualServiceName, namespace: this.namespace },
      spec: {
        hosts: [...this.hosts],
        // Without gateways Istio applies the routes to the mesh; with gateways only to them unless `mesh` is listed.
        gateways: this.gateways.length > 0 ? [...refs, ...(this.meshTraffic ? [MESH_GATEWAY] : [])] : undefined,
        http: Lazy.any({ produce: () => this.routes.map((r) => ({ ...r })) }) as VirtualServiceSpecHttp[],
      },
    });
    this.node.defaultChild = this.resource;
    this.node.addValidation({ validate: () => this.validateLate() });
    for (const route of props.http ?? []) {
      this.addHttpRoute(route);
    }
  }

  /**
   * Appends an HTTP route. Routes are tried in order: a route after a catch-all would never match, so adding one is
   * an error.
   */
  public addHttpRoute(route: IstioHttpRouteOptions): void {
    const index = this.routes.length;
    const label = route.name ?? `#${index}`;
    const field = `http[${label}]`;
    if (this.catchAll !== undefined) {
      throwInvalid(this, field, route.matches ?? '(no matches)', `a route before the catch-all route ${this.catchAll}: routes are tried in order and nothing gets past a catch-all (add the more specific route first)`);
    }
    const matches = route.matches ?? [];
    const renderedMatches = matches.map((m, i) => this.renderMatch(`${field}.matches[${i}]`, m));
    const destinations = this.renderDestinations(`${field}.destinations`, route.destinations);
    const timeout = route.timeout !== undefined ? istioDuration(this, `${field}.timeout`, route.timeout) : undefined;
    const retries = route.retries ? this.renderRetries(`${field}.retries`, route.retries, route.timeout) : undefined;

    this.routes.push({
      name: route.name,
      match: renderedMatches.length > 0 ? renderedMatches : undefined,
      route: destinations,
      timeout,
      retries,
    });
    this.routeLabels.push(label);
    if (matches.length === 0 || matches.some((m) => isCatchAllMatch(m))) {
      this.catchAll = label;
    }
  }

  /**
   * Adds a canary release: a header route to the candidate (when `header` is given), then a route that splits the
   * rest by `weight`. Without `match` the split route is a catch-all, so call this after the specific routes.
   */
  public addCanary(options: IstioCanaryOptions): void {
    const name = options.name ?? 'canary';
    checkInteger(this, `${name}.weight`, options.weight, 0, 100);
    if (options.stable._key === options.candidate._key) {
      throwInvalid(this, `${name}.candidate`, options.candidate.host, 'a destination other than the stable one (another subset, host or port)');
    }
    if (options.header !== undefined) {
      if (Object.keys(options.header).length === 0) {
        throwInvalid(this, `${name}.header`, options.header, 'at least one header (an empty header match is a catch-all)');
      }
      this.addHttpRoute({
        name: `${name}-header`,
        matches: [{ ...options.match, headers: { ...options.match?.headers, ...options.header } }],
        destinations: [{ destination: options.candidate }],
        timeout: options.timeout,
        retries: options.retries,
      });
    }
    this.addHttpRoute({
      name: `${name}-split`,
      matches: options.match ? [options.match] : undefined,
      destinations: [
        { destination: options.stable, weight: 100 - options.weight },
        { destination: options.candidate, weight: options.weight },
      ],
      timeout: options.timeout,
      retries: options.retries,
    });
  }

  private checkHosts(): void {
    if (this.hosts.length === 0) {
      throwInvalid(this, 'hosts', this.hosts, 'at least one host');
    }
    for (const host of this.hosts) {
      if (!isWildcardDomain(host)) {
        throwInvalid(this, 'hosts', host, 'a host name (DNS labels separated by dots, an optional wildcard first label)');
      }
      if (host === '*' && this.meshTraffic) {
        throwInvalid(this, 'hosts', host, 'a host other than "*" for a VirtualService that applies to the mesh (Istio rejects it)');
      }
      if (host !== '*' && !host.includes('.')) {
        throwInvalid(this, 'hosts', host, `a fully qualified host such as "${serviceFqdn(host, this.namespace)}" (Istio resolves the short name against the VirtualService's namespace, not the service's)`);
      }
    }
    for (let i = 0; i < this.hosts.length; i++) {
      for (let j = i + 1; j < this.hosts.length; j++) {
        if (hostMatches(this.hosts[i], this.hosts[j]) || hostMatches(this.hosts[j], this.hosts[i])) {
          throwInvalid(this, 'hosts', [this.hosts[i], this.hosts[j]], 'hosts that do not overlap (Istio rejects duplicate hosts, wildcards included)');
        }
      }
    }
  }

  private renderMatch(field: string, m: IstioHttpMatch): VirtualServiceSpecHttpMatch {
    const map = (name: string, entries: Record<string, IstioStringMatch> | undefined, headerNames: boolean) => {
      if (entries === undefined) {
        return undefined;
      }
      return Object.fromEntries(Object.entries(entries).map(([key, match]) => {
        if (headerNames) {
          checkHeaderName(this, `${field}.${name}`, key);
        } else if (key === '') {
          throwInvalid(this, `${field}.${name}`, key, 'a non-empty name');
        }
        return [key, match._render(this, `${field}.${name}.${key}`)];
      }));
    };
    if (m.port !== undefined) {
      checkInteger(this, `${field}.port`, m.port, 1, 65535);
    }
    if (m.ignoreUriCase && !m.uri) {
      throwInvalid(this, `${field}.ignoreUriCase`, true, 'a uri match to apply it to');
    }
    return {
      uri: m.uri?._render(this, `${field}.uri`),
      method: m.method?._render(this, `${field}.method`),
      authority: m.authority?._render(this, `${field}.authority`),
      headers: map('headers', m.headers, true),
      withoutHeaders: map('withoutHeaders', m.withoutHeaders, true),
      queryParams: map('queryParams', m.queryParams, false),
      port: m.port,
      ignoreUriCase: m.ignoreUriCase,
    };
  }

  private renderDestinations(field: string, destinations: readonly IstioWeightedDestination[]): VirtualServiceSpecHttpRoute[] {
    if (destinations.length === 0) {
      throwInvalid(this, field, destinations, 'at least one destination');
    }
    const keys = destinations.map((d) => d.destination._key);
    const repeated = keys.find((k, i) => keys.indexOf(k) !== i);
    if (repeated !== undefined) {
      throwInvalid(this, field, repeated, 'each destination once per route (merge their weights)');
    }
    if (destinations.length === 1) {
      const weight = destinations[0].weight;
      if (weight !== undefined && weight !== 100) {
        throwInvalid(this, `${field}[0].weight`, weight, '100 or no weight for the only destination of a route');
      }
    } else {
      let sum = 0;
      destinations.forEach((d, i) => {
        if (d.weight === undefined) {
          throwInvalid(this, `${field}[${i}].weight`, d.weight, 'a weight on every destination of a route with several');
        }
        checkInteger(this, `${field}[${i}].weight`, d.weight, 0, 100);
        sum += d.weight;
      });
      if (sum !== 100) {
        throwInvalid(this, `${field}[].weight`, destinations.map((d) => d.weight), 'weights that sum to 100 (Istio rejects other totals)');
      }
    }
    return destinations.map((d, i) => {
      const rendered = d.destination._render(this, `${field}[${i}]`, destinations.length > 1 ? d.weight : undefined);
      if (d.destination.subset) {
        this.ruleFor(d.destination.host).addSubset(d.destination.subset);
      }
      return rendered;
    });
  }

  private renderRetries(field: string, retries: IstioRetryPolicy, timeout: Duration | undefined): VirtualServiceSpecHttp['retries'] {
    checkInteger(this, `${field}.attempts`, retries.attempts, 0, 100);
    if (retries.attempts === 0 && (retries.perTryTimeout !== undefined || retries.retryOn !== undefined)) {
      throwInvalid(this, `${field}.attempts`, 0, 'at least 1 when perTryTimeout or retryOn is set (Istio rejects a retry policy with retries disabled)');
    }
    const perTry = retries.perTryTimeout !== undefined ? istioDuration(this, `${field}.perTryTimeout`, retries.perTryTimeout) : undefined;
    if (retries.perTryTimeout !== undefined && timeout !== undefined) {
      const needed = retries.perTryTimeout.toMilliseconds() * retries.attempts;
      if (needed > timeout.toMilliseconds()) {
        throwInvalid(this, `${field}.perTryTimeout`, `${perTry} x ${retries.attempts} attempts = ${needed}ms`, `at most the route timeout (${timeout.toMilliseconds()}ms): Envoy ends the request at the timeout, so the later retries would never run`);
      }
    }
    for (const condition of retries.retryOn ?? []) {
      const status = Number(condition);
      if (!RETRY_ON.has(condition) && !(Number.isInteger(status) && status >= 100 && status <= 599)) {
        throwInvalid(this, `${field}.retryOn`, condition, `an Envoy retry condition (${[...RETRY_ON].join(', ')}) or an HTTP status code`);
      }
    }
    return {
      attempts: retries.attempts,
      perTryTimeout: perTry,
      retryOn: retries.retryOn && retries.retryOn.length > 0 ? retries.retryOn.join(',') : undefined,
    };
  }

  /**
   * The DestinationRule that defines the subsets of `host`: one already in the app for that host and namespace,
   * else a new one. A cluster-local host gets its rule in the host's namespace, where every client (the ingress
   * gateway too) finds it; other hosts in this VirtualService's namespace.
   */
  private ruleFor(host: string): IstioDestinationRule {
    const labels = host.toLowerCase().split('.');
    const clusterLocal = labels.length === 5 && `${labels[2]}.${labels[3]}.${labels[4]}` === CLUSTER_DOMAIN;
    const namespace = clusterLocal ? labels[1] : this.namespace;
    const existing = this.node.root.node.findAll()
      .find((c): c is IstioDestinationRule => c instanceof IstioDestinationRule && c.namespace === namespace && c.host.toLowerCase() === host.toLowerCase());
    const rule = existing ?? new IstioDestinationRule(this, `DestinationRule-${host}`, { host, namespace });
    // Make before break: the rule (and its subsets) is applied before the VirtualService that routes to them.
    this.resource.node.addDependency(rule.node.defaultChild ?? rule);
    return rule;
  }

  private validateLate(): string[] {
    const problems: string[] = [];
    const fail = (field: string, given: unknown, expected: string): void => {
      problems.push(new LambdaMeshError({ location: this.node.path, field, given: describeValue(given), expected }).message);
    };
    if (this.routes.length === 0) {
      fail('http', [], 'at least one HTTP route (addHttpRoute or addCanary)');
    }
    for (const gateway of this.gateways) {
      const served = gateway.servedHosts;
      if (served.length === 0) {
        continue;
      }
      const bound = this.hosts.some((h) => served.some((s) => hostMatches(s, h) || hostMatches(h, s)));
      if (!bound) {
        fail('hosts', this.hosts, `at least one host served by gateway ${gateway.gatewayReference} (it serves ${served.join(', ')}); Istio ignores the binding otherwise`);
      }
    }
    return problems;
  }
}

function isCatchAllMatch(m: IstioHttpMatch): boolean {
  const conditions = [m.method, m.authority, m.port]
    .filter((c) => c !== undefined).length
    + Object.keys(m.headers ?? {}).length + Object.keys(m.withoutHeaders ?? {}).length + Object.keys(m.queryParams ?? {}).length;
  return conditions === 0 && (m.uri === undefined || m.uri._matchesEveryPath);
}

function checkHeaderName(scope: IConstruct, field: string, name: string): void {
  if (name.startsWith(':') || name === 'host') {
    throwInvalid(scope, field, name, 'a header other than pseudo-headers and host (use the uri, method and authority matches)');
  }
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) {
    throwInvalid(scope, field, name, 'a lower-case header name (Envoy lower-cases request headers, so other names never match)');
  }
}
