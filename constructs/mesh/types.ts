/**
 * The application protocol a mesh service speaks.
 *
 * Consul applies L7 (HTTP) intentions only to services whose protocol is `http`, `http2` or `grpc`.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-defaults#protocol
 */
export enum ServiceProtocol {
  /** Opaque TCP: only L4 (allow/deny by identity) rules apply. */
  TCP = 'tcp',
  /** HTTP/1.1: L7 rules on path, method and headers apply. */
  HTTP = 'http',
  /** HTTP/2: L7 rules apply. */
  HTTP2 = 'http2',
  /** gRPC: L7 rules apply (the path is `/package.Service/Method`). */
  GRPC = 'grpc',
}

/**
 * What a rule does with matching traffic.
 */
export enum RuleAction {
  /** Let the traffic through. */
  ALLOW = 'allow',
  /** Refuse the traffic. Everything not allowed is denied anyway; use this to carve out of a wider allow. */
  DENY = 'deny',
}

/**
 * Where a backend service runs, which decides how it joins the mesh: how its instances get a sidecar proxy
 * (consul-dataplane) and how they prove their identity to Consul (an auth method), with no shared secret.
 */
export enum ServicePlacement {
  /** An ECS service (Fargate): `MeshEcsService` adds consul-ecs's mesh-init, consul-dataplane and health-sync; the task role logs in with Consul's aws-iam auth method. */
  ECS = 'ecs',
  /** EC2 instances of an Auto Scaling group: `MeshEc2Service` runs consul-dataplane beside the app; the instance role logs in with the aws-iam auth method. */
  EC2 = 'ec2',
  /** Pods on EKS: consul-k8s injects the sidecar (`MeshKubernetesService`); the pod's ServiceAccount logs in with Consul's Kubernetes auth method. */
  EKS = 'eks',
  /** Registered in Consul by its owner, outside lambda-mesh; lambda-mesh still gives it a binding rule of the aws-iam auth method and security-group hooks. */
  EXTERNAL = 'external',
}

/**
 * What kind of workload an identity belongs to.
 */
export enum IdentityKind {
  /** A backend service in the VPC (EC2, ECS or EKS). */
  SERVICE = 'service',
  /** One version of a Lambda function. */
  FUNCTION_VERSION = 'function-version',
}

/**
 * Defines a match on one HTTP request header, for an L7 rule.
 *
 * Exactly one of `exact`, `prefix`, `suffix`, `regex` and `present` is set.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions#sources-permissions-http-header
 */
export interface HeaderMatch {
  /** The header name, e.g. `x-model-tenant`. */
  readonly name: string;
  /**
   * The header value equals this.
   * @default - not matched on an exact value
   */
  readonly exact?: string;
  /**
   * The header value starts with this.
   * @default - not matched on a prefix
   */
  readonly prefix?: string;
  /**
   * The header value ends with this.
   * @default - not matched on a suffix
   */
  readonly suffix?: string;
  /**
   * The header value matches this RE2 regular expression.
   * @default - not matched on a regular expression
   */
  readonly regex?: string;
  /**
   * The header is present (any value).
   * @default - not matched on presence
   */
  readonly present?: boolean;
  /**
   * Invert the match: the rule applies when the header does NOT match.
   * @default false
   */
  readonly invert?: boolean;
}

/**
 * An HTTP method an L7 rule can match (see {@link HttpMatch.methods}), as Consul's intentions accept them.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions#sources-permissions-http-methods
 */
export enum HttpMethod {
  /** GET. */
  GET = 'GET',
  /** HEAD. */
  HEAD = 'HEAD',
  /** POST. */
  POST = 'POST',
  /** PUT. */
  PUT = 'PUT',
  /** PATCH. */
  PATCH = 'PATCH',
  /** DELETE. */
  DELETE = 'DELETE',
  /** OPTIONS. */
  OPTIONS = 'OPTIONS',
  /** TRACE. */
  TRACE = 'TRACE',
  /** CONNECT. */
  CONNECT = 'CONNECT',
}

/**
 * Defines an HTTP (L7) match for a rule. At most one path matcher; the request must satisfy every field given.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions#sources-permissions-http
 */
export interface HttpMatch {
  /**
   * The request path equals this.
   * @default - no exact path match
   */
  readonly pathExact?: string;
  /**
   * The request path starts with this.
   * @default - no path prefix match
   */
  readonly pathPrefix?: string;
  /**
   * The request path matches this RE2 regular expression.
   * @default - no path regex match
   */
  readonly pathRegex?: string;
  /**
   * The request method is one of these (upper case: `GET`, `POST`, ...; the values of {@link HttpMethod}).
   * @default - any method
   */
  readonly methods?: string[];
  /**
   * Every one of these header matches holds.
   * @default - no header match
   */
  readonly headers?: HeaderMatch[];
}

/**
 * Options for a rule between a source and a destination service.
 */
export interface RuleOptions {
  /**
   * Restrict the rule to matching HTTP requests (L7). Only for services with an HTTP, HTTP2 or gRPC protocol.
   * @default - an L4 rule: the whole connection is allowed or denied by identity
   */
  readonly http?: HttpMatch;
  /**
   * Why the rule exists; carried into the Consul intention and the generated docs.
   * @default - no description
   */
  readonly description?: string;
}

/**
 * A service of the mesh, resolved.
 */
export interface ResolvedService {
  /** The service name, which is also its identity. */
  readonly name: string;
  /** The port the service listens on. */
  readonly port: number;
  /** The port on 127.0.0.1 at which mesh functions reach this service through their proxy. */
  readonly localPort: number;
  /** The application protocol. */
  readonly protocol: ServiceProtocol;
  /** True when the service was declared in another app or stack and only referenced here. */
  readonly imported: boolean;
  /** Where the service runs. */
  readonly placement: ServicePlacement;
  /**
   * What the service is for.
   * @default - no description
   */
  readonly description?: string;
}

/**
 * An identity of the mesh, resolved: a service, or one version of a function.
 */
export interface ResolvedIdentity {
  /** The identity name: the service name, or `<function>-<version>`. */
  readonly name: string;
  /** Whether it is a service or a function version. */
  readonly kind: IdentityKind;
  /**
   * The function name, for a function version.
   * @default - not a function version
   */
  readonly functionName?: string;
  /**
   * The version, for a function version.
   * @default - not a function version
   */
  readonly version?: string;
}

/**
 * One resolved rule: between one source identity and one destination service.
 */
export interface ResolvedRule {
  /** The source identity name. */
  readonly source: string;
  /** The kind of the source identity. */
  readonly sourceKind: IdentityKind;
  /** The destination service name. */
  readonly destination: string;
  /** The destination service port. */
  readonly port: number;
  /** The destination service protocol. */
  readonly protocol: ServiceProtocol;
  /** Allow or deny. */
  readonly action: RuleAction;
  /**
   * The HTTP match, for an L7 rule.
   * @default - an L4 rule
   */
  readonly http?: HttpMatch;
  /**
   * Why the rule exists.
   * @default - no description
   */
  readonly description?: string;
}

/**
 * The whole mesh, resolved: what every part of lambda-mesh renders from (Consul intentions, Lambda upstream
 * ports, Istio AuthorizationPolicies, Gloo routes, docs). Everything is sorted, so output is deterministic.
 */
export interface MeshGraph {
  /** The mesh name. */
  readonly meshName: string;
  /** The Consul datacenter. */
  readonly datacenter: string;
  /**
   * The SPIFFE trust domain.
   * @default - the Consul CA's, read at deploy time
   */
  readonly trustDomain?: string;
  /** The Consul admin partition. */
  readonly partition: string;
  /** The Consul namespace. */
  readonly namespace: string;
  /** Every service, by name. */
  readonly services: ResolvedService[];
  /** Every identity (services and function versions), by name. */
  readonly identities: ResolvedIdentity[];
  /**
   * Every rule expanded to single source identities: by destination, then source; for one pair, denies come
   * before allows (Consul evaluates L7 permissions in order, first match wins).
   */
  readonly rules: ResolvedRule[];
}
