import { Duration, Token } from 'aws-cdk-lib';
import * as cdk8s from 'cdk8s';
import { type Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../core/names';
import { Upstream } from '../k8s/imports/gloo-upstream-gloo.solo.io';
import {
  VirtualService,
  type VirtualServiceSpecVirtualHostRoutes,
  type VirtualServiceSpecVirtualHostRoutesOptions,
  type VirtualServiceSpecVirtualHostRoutesRouteActionSingleDestinationSpecAws,
} from '../k8s/imports/gloo-virtual-service-gateway.solo.io';
import { IdentityKind, type IMesh, type ResolvedIdentity } from '../mesh';
import { type GlooLambdaFunction } from './gloo-function';
import { GLOO_NAMESPACE } from './private/gloo';

/** An IAM role ARN, in any partition. */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;

/** Envoy's retry budget: more retries than this only multiply load on a failing function. */
const MAX_RETRIES = 10;

/**
 * Defines how Gloo invokes a Lambda function.
 *
 * @see https://docs.solo.io/gloo-edge/latest/reference/api/github.com/solo-io/gloo/projects/gloo/api/v1/options/aws/aws.proto.sk/#invocationstyle
 */
export enum LambdaInvocationStyle {
  /** Wait for the function's result (Lambda `RequestResponse`). */
  SYNC = 'SYNC',
  /** Queue the event and answer 202 at once (Lambda `Event`). */
  ASYNC = 'ASYNC',
}

/**
 * Defines the role Gloo's proxy assumes to invoke the functions of an Upstream (`spec.aws.roleArn`).
 *
 * Without one, the proxy invokes with its own service account's role (`GlooLambdaAccess.proxyRole`). With one,
 * Gloo either chains (assumes the role from the proxy role's session, so the role must trust the proxy role and
 * the proxy role may `sts:AssumeRole` it: `GlooLambdaAccess.chainTo`) or, with `disableRoleChaining`, exchanges the
 * pod's web identity token for the role directly (so the role must trust the proxy's service account: a
 * `ServiceAccountRole` for it). There is deliberately no way to name a role without one of the two trusts.
 *
 * @see https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/aws_lambda/eks-service-accounts/
 */
export class GlooUpstreamRole {
  /**
   * A role whose trust policy admits the gateway-proxy service account's web identity (e.g. a
   * {@link ServiceAccountRole} for `gloo-system/gateway-proxy`); Gloo assumes it with `disableRoleChaining: true`.
   */
  public static webIdentity(roleArn: string): GlooUpstreamRole {
    return new GlooUpstreamRole(roleArn, true);
  }

  /**
   * A role the proxy role chains into; only `GlooLambdaAccess.chainTo`, which sets up both sides of the trust,
   * makes one.
   * @internal
   */
  public static _chained(roleArn: string): GlooUpstreamRole {
    return new GlooUpstreamRole(roleArn, false);
  }

  private constructor(
    /** The role ARN. */
    public readonly roleArn: string,
    /** True when Gloo assumes the role with the web identity token instead of chaining from the proxy role. */
    public readonly disableRoleChaining: boolean,
  ) {}
}

/**
 * Defines Envoy's retry policy of a route.
 *
 * @see https://docs.solo.io/gloo-edge/latest/reference/api/github.com/solo-io/gloo/projects/gloo/api/v1/options/retries/retries.proto.sk/
 */
export interface GlooRetryPolicy {
  /**
   * When to retry, Envoy's `x-envoy-retry-on` conditions, comma-separated.
   *
   * The default retries only failures after which the function did not run: no connection, a reset before the
   * response, or Lambda throttling (429). Errors of a function that ran (5xx) are not retried, so a function is
   * never invoked twice for one request because it failed.
   * @default 'connect-failure,refused-stream,reset,retriable-status-codes' with retriable status code 429
   * @see https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/router_filter#x-envoy-retry-on
   */
  readonly retryOn?: string;
  /**
   * How many retries, 0 to 10.
   * @default 2
   */
  readonly numRetries?: number;
  /**
   * How long one attempt may take, at most the route's timeout.
   * @default - the route's timeout: an attempt that is merely slow (a cold start) is never cut off and retried
   */
  readonly perTryTimeout?: Duration;
  /**
   * The status codes `retriable-status-codes` retries.
   * @default [429]
   */
  readonly retriableStatusCodes?: number[];
}

/**
 * Defines one weighted destination of a route that splits traffic (e.g. a canary version).
 */
export interface GlooWeightedDestination {
  /** The logical name of the function, as the Upstream lists it. */
  readonly logicalName: string;
  /** The share of requests, relative to the other destinations' weights; at least 1. */
  readonly weight: number;
}

/**
 * Defines a route of {@link GlooLambdaRoutes}: a path prefix and the function (or weighted functions) it invokes.
 *
 * @see https://docs.solo.io/gloo-edge/latest/reference/api/github.com/solo-io/gloo/projects/gloo/api/v1/options/aws/aws.proto.sk/#destinationspec
 */
export interface GlooLambdaRoute {
  /** The path prefix the route matches, starting with '/'. */
  readonly pathPrefix: string;
  /**
   * The function to invoke, by logical name. Give exactly one of `logicalName` and `destinations`.
   * @default - none: `destinations` splits the traffic
   */
  readonly logicalName?: string;
  /**
   * Functions to split the traffic between, by weight.
   * @default - none: `logicalName` gets all traffic
   */
  readonly destinations?: GlooWeightedDestination[];
  /**
   * How Gloo invokes the function.
   * @default LambdaInvocationStyle.SYNC
   */
  readonly invocationStyle?: LambdaInvocationStyle;
  /**
   * Read the function's result as an API Gateway proxy response (`statusCode`, `headers`, `body`) and answer with
   * it, instead of returning the JSON as the body.
   * @default false
   */
  readonly unwrapAsApiGateway?: boolean;
  /**
   * Read the function's result as an ALB target response. Excludes `unwrapAsApiGateway`.
   * @default false
   */
  readonly unwrapAsAlb?: boolean;
  /**
   * Send the request's headers, path and query with the body as the event, in Gloo's request transformation
   * format. Excludes the unwrap options.
   * @default false
   */
  readonly requestTransformation?: boolean;
  /**
   * How long a request may take in all, retries included. The default leaves room for a cold start of a VPC
   * function with the mesh extension (a few seconds) on top of the function's own time.
   * @default Duration.seconds(60)
   */
  readonly timeout?: Duration;
  /**
   * When and how often to retry.
   * @default - see {@link GlooRetryPolicy}
   */
  readonly retries?: GlooRetryPolicy;
}

/**
 * Properties of {@link GlooLambdaRoutes}.
 */
export interface GlooLambdaRoutesProps extends cdk8s.ChartProps {
  /** The mesh: every function must run as one of its function versions. */
  readonly mesh: IMesh;
  /** The AWS region of the functions (`spec.aws.region`). */
  readonly region: string;
  /** The functions the Upstream lists, each under its logical name. */
  readonly functions: GlooLambdaFunction[];
  /**
   * The routes.
   * @default - one route per function at `/<function>/<version>` of its mesh identity
   */
  readonly routes?: GlooLambdaRoute[];
  /**
   * The role Gloo assumes to invoke the functions.
   * @default - the gateway-proxy's own service account role
   */
  readonly upstreamRole?: GlooUpstreamRole;
  /**
   * The name of the Upstream and of the VirtualService.
   * @default 'lambda-mesh'
   */
  readonly name?: string;
  /**
   * The namespace of the Upstream and the VirtualService.
   * @default 'gloo-system'
   */
  readonly namespace?: string;
  /**
   * The host names the VirtualService answers for.
   * @default ['*']
   */
  readonly domains?: string[];
}

/**
 * Defines Gloo Edge routes to the mesh's Lambda functions: a Gloo `Upstream` of type `aws` that lists every
 * function with its Lambda name and qualifier (so nothing depends on function discovery, off by default since
 * Gloo 1.20), and a `VirtualService` with one route per exposed path, each with a timeout and retries that
 * absorb a cold start.
 *
 * Checks what Gloo would only reject (or silently misroute) at run time: conflicting unwrap options, routes to
 * logical names the Upstream does not list, weights of 0, and functions that are not versions of the mesh.
 *
 * @see https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/aws_lambda/
 */
export class GlooLambdaRoutes extends cdk8s.Chart {
  /** The Upstream. */
  public readonly upstream: Upstream;
  /** The VirtualService. */
  public readonly virtualService: VirtualService;
  /** The name of the Upstream and the VirtualService. */
  public readonly resourceName: string;

  constructor(scope: Construct, id: string, props: GlooLambdaRoutesProps) {
    const namespace = props.namespace ?? GLOO_NAMESPACE;
    super(scope, id, { ...props, namespace, disableResourceNameHashes: true });
    const fail = (field: string, given: unknown, expected: string): never => throwInvalid(this, field, given, expected);
    const name = props.name ?? 'lambda-mesh';
    this.resourceName = name;
    if (!DNS_1123_LABEL.test(name) || name.length > DNS_1123_LABEL_MAX_LENGTH) {
      fail('name', name, 'a DNS-1123 label');
    }
    if (!DNS_1123_LABEL.test(namespace) || namespace.length > DNS_1123_LABEL_MAX_LENGTH) {
      fail('namespace', namespace, 'a Kubernetes namespace (a DNS-1123 label)');
    }
    if (typeof props.region !== 'string' || (!Token.isUnresolved(props.region) && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(props.region))) {
      fail('region', props.region, "an AWS region such as 'us-east-1'");
    }
    if (props.functions.length === 0) {
      fail('functions', props.functions, 'at least one function');
    }

    const meshFunctions = new Map(props.mesh.graph().identities.filter((x) => x.kind === IdentityKind.FUNCTION_VERSION).map((x) => [x.name, x]));
    const versions = new Map<string, ResolvedIdentity>();
    const byLogicalName = new Map<string, GlooLambdaFunction>();
    props.functions.forEach((fn, i) => {
      const identity = meshFunctions.get(fn.identity);
      if (!identity) {
        fail(`functions[${i}].identity`, fn.identity, `a function version of mesh '${props.mesh.meshName}' (${[...meshFunctions.keys()].join(', ') || 'it has none'}): Gloo routes only to functions in the mesh`);
      }
      if (byLogicalName.has(fn.logicalName)) {
        fail(`functions[${i}].logicalName`, fn.logicalName, 'a logical name not already used by another function of the Upstream');
      }
      versions.set(fn.logicalName, identity!);
      byLogicalName.set(fn.logicalName, fn);
    });

    const role = props.upstreamRole;
    if (role && !Token.isUnresolved(role.roleArn) && !ROLE_ARN.test(role.roleArn)) {
      fail('upstreamRole.roleArn', role.roleArn, 'an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)');
    }

    this.upstream = new Upstream(this, 'Upstream', {
      metadata: {
        name,
        // Function discovery rewrites the lambdaFunctions of the Upstreams it scans: keep it off this one.
        labels: { 'discovery.solo.io/function_discovery': 'disabled' },
      },
      spec: {
        aws: {
          region: props.region,
          lambdaFunctions: props.functions.map((fn) => ({ logicalName: fn.logicalName, lambdaFunctionName: fn.functionName, qualifier: fn.qualifier })),
          ...(role ? { roleArn: role.roleArn, ...(role.disableRoleChaining ? { disableRoleChaining: true } : {}) } : {}),
        },
      },
    });

    const routes = props.routes ?? props.functions.map((fn) => {
      const version = versions.get(fn.logicalName)!;
      return { pathPrefix: `/${version.functionName}/${version.version}`, logicalName: fn.logicalName };
    });
    if (routes.length === 0) {
      fail('routes', routes, 'at least one route (leave routes out for one route per function)');
    }
    const seen = new Set<string>();
    const rendered = routes.map((route, i) => {
      if (typeof route.pathPrefix !== 'string' || !route.pathPrefix.startsWith('/')) {
        fail(`routes[${i}].pathPrefix`, route.pathPrefix, "a path starting with '/'");
      }
      if (seen.has(route.pathPrefix)) {
        fail(`routes[${i}].pathPrefix`, route.pathPrefix, 'a path prefix no other route has');
      }
      seen.add(route.pathPrefix);
      return { prefix: route.pathPrefix, spec: this.renderRoute(route, i, byLogicalName, { name, namespace }) };
    });
    // Envoy takes the first matching route: longer prefixes first, so '/model-a/v1' never shadows '/model-a/v10'.
    rendered.sort((a, b) => b.prefix.length - a.prefix.length || a.prefix.localeCompare(b.prefix));

    this.virtualService = new VirtualService(this, 'VirtualService', {
      metadata: { name },
      spec: {
        virtualHost: {
          domains: props.domains ?? ['*'],
          routes: rendered.map((r) => r.spec),
        },
      },
    });
  }

  private renderRoute(route: GlooLambdaRoute, i: number, functions: Map<string, GlooLambdaFunction>, upstream: { name: string; namespace: string }): VirtualServiceSpecVirtualHostRoutes {
    const fail = (field: string, given: unknown, expected: string): never => throwInvalid(this, `routes[${i}].${field}`, given, expected);
    const listed = [...functions.keys()].join(', ');
    if (route.unwrapAsAlb && route.unwrapAsApiGateway) {
      fail('unwrapAsAlb', true, 'not both unwrapAsAlb and unwrapAsApiGateway: a result is either an ALB or an API Gateway response');
    }
    if (route.requestTransformation && (route.unwrapAsAlb || route.unwrapAsApiGateway)) {
      fail('requestTransformation', true, 'requestTransformation without unwrapAsAlb or unwrapAsApiGateway (Gloo applies one transformation per route)');
    }
    const aws = (logicalName: string, field: string): VirtualServiceSpecVirtualHostRoutesRouteActionSingleDestinationSpecAws => {
      if (!functions.has(logicalName)) {
        fail(field, logicalName, `a logical name the Upstream lists (${listed}); Gloo would answer 404 for a function it does not know`);
      }
      return {
        logicalName,
        invocationStyle: route.invocationStyle ?? LambdaInvocationStyle.SYNC,
        ...(route.unwrapAsApiGateway ? { unwrapAsApiGateway: true } : {}),
        ...(route.unwrapAsAlb ? { unwrapAsAlb: true } : {}),
        ...(route.requestTransformation ? { requestTransformation: true } : {}),
      };
    };
    if ((route.logicalName === undefined) === (route.destinations === undefined)) {
      fail('logicalName', route.logicalName, 'exactly one of logicalName (one function) and destinations (weighted functions)');
    }
    let routeAction: VirtualServiceSpecVirtualHostRoutes['routeAction'];
    if (route.logicalName !== undefined) {
      routeAction = { single: { upstream, destinationSpec: { aws: aws(route.logicalName, 'logicalName') } } };
    } else {
      const destinations = route.destinations!;
      if (destinations.length === 0) {
        fail('destinations', destinations, 'at least one destination');
      }
      routeAction = {
        multi: {
          destinations: destinations.map((d, j) => {
            if (!Number.isInteger(d.weight) || d.weight < 1) {
              fail(`destinations[${j}].weight`, d.weight, 'an integer of at least 1 (a destination with weight 0 gets no traffic: remove it instead)');
            }
            return { weight: d.weight, destination: { upstream, destinationSpec: { aws: aws(d.logicalName, `destinations[${j}].logicalName`) } } };
          }),
        },
      };
    }
    return {
      matchers: [{ prefix: route.pathPrefix }],
      routeAction,
      options: this.renderOptions(route, fail),
    };
  }

  private renderOptions(route: GlooLambdaRoute, fail: (field: string, given: unknown, expected: string) => never): VirtualServiceSpecVirtualHostRoutesOptions {
    const timeout = route.timeout ?? Duration.seconds(60);
    if (timeout.toMilliseconds() < 1) {
      fail('timeout', timeout.toHumanString(), 'a positive duration');
    }
    const retries = route.retries ?? {};
    const numRetries = retries.numRetries ?? 2;
    if (!Number.isInteger(numRetries) || numRetries < 0 || numRetries > MAX_RETRIES) {
      fail('retries.numRetries', numRetries, `an integer from 0 to ${MAX_RETRIES}`);
    }
    const perTryTimeout = retries.perTryTimeout ?? timeout;
    if (perTryTimeout.toMilliseconds() < 1 || perTryTimeout.toMilliseconds() > timeout.toMilliseconds()) {
      fail('retries.perTryTimeout', perTryTimeout.toHumanString(), `a positive duration of at most the route's timeout (${timeout.toHumanString()})`);
    }
    const codes = retries.retriableStatusCodes ?? [429];
    for (const code of codes) {
      if (!Number.isInteger(code) || code < 100 || code > 599) {
        fail('retries.retriableStatusCodes', codes, 'HTTP status codes (100 to 599)');
      }
    }
    return {
      timeout: protoDuration(timeout),
      retries: {
        retryOn: retries.retryOn ?? 'connect-failure,refused-stream,reset,retriable-status-codes',
        numRetries,
        perTryTimeout: protoDuration(perTryTimeout),
        retriableStatusCodes: codes,
      },
    };
  }
}

/** Renders a duration as protobuf's JSON form, in seconds with up to millisecond precision (`1.5s`). */
function protoDuration(d: Duration): string {
  return `${d.toMilliseconds() / 1000}s`;
}
