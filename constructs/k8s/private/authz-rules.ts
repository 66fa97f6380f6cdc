/**
 * Renders the mesh model's rules as Istio AuthorizationPolicy specs, with the semantics the Consul intentions have
 * (constructs/intentions/private/config-entries.ts), so one policy source drives both:
 *
 * - a source identity is the SPIFFE principal `<trust domain>/ns/<namespace>/sa/<identity>` of its service account;
 * - an L4 rule is a rule with only `from`; an L7 rule carries `from` AND `to` (paths, methods) AND `when` (headers)
 *   in ONE rule object, because separate rules are ORed and would allow the operation to anyone;
 * - denies become DENY policies, which Istio evaluates before ALLOW policies, as Consul evaluates denies first.
 *
 * What Istio cannot express is an error, never a silent widening or narrowing: a regular expression (Istio string
 * matches are exact, `prefix*`, `*suffix` or `*`), or a `*` inside a literal value (Istio would read it as a wildcard).
 *
 * @see https://istio.io/latest/docs/reference/config/security/authorization-policy/
 * @see https://istio.io/latest/docs/reference/config/security/conditions/
 */
import { describeValue, LambdaMeshError } from '../../core/errors';
import { type HeaderMatch, type HttpMatch, type MeshGraph, type ResolvedRule, RuleAction } from '../../mesh/types';
import {
  AuthorizationPolicySpecAction,
  type AuthorizationPolicySpec,
  type AuthorizationPolicySpecRules,
  type AuthorizationPolicySpecRulesToOperation,
  type AuthorizationPolicySpecRulesWhen,
} from '../imports/istio-security.istio.io';

/** The most rules, and the most sources in one rule's `from`, the AuthorizationPolicy CRD accepts (`maxItems`). */
export const MAX_RULES = 512;

/** How the model's identities become Istio principals and workloads. */
export interface AuthzRenderOptions {
  /** Construct path, for errors. */
  readonly location: string;
  /** The namespace the identities' service accounts and the services' workloads live in. */
  readonly namespace: string;
  /** The Istio trust domain (`cluster.local` unless the mesh config changes it). */
  readonly trustDomain: string;
  /** The label that selects a service's pods; its value is the service name. */
  readonly workloadLabel: string;
  /** The services to render policies for. */
  readonly services: readonly string[];
  /** Services reachable from the ingress gateway, with the gateway's principal. */
  readonly ingress: ReadonlyMap<string, string>;
}

/** One rendered policy: its object name and spec. */
export interface RenderedPolicy {
  readonly name: string;
  readonly service: string;
  readonly spec: AuthorizationPolicySpec;
}

/** The SPIFFE principal of a service account, as Istio's `source.principal` spells it (no `spiffe://`). */
export function principalOf(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

/**
 * Renders, for each service, an ALLOW policy (when anything may call it) and a DENY policy (when the model denies
 * anything to it). Deterministic: the graph is sorted, and so is everything derived from it.
 */
export function renderAuthorization(graph: MeshGraph, options: AuthzRenderOptions): RenderedPolicy[] {
  const policies: RenderedPolicy[] = [];
  for (const service of options.services) {
    const rules = graph.rules.filter((r) => r.destination === service);
    const selector = { matchLabels: { [options.workloadLabel]: service } };
    const allow = groupRules(options, service, rules.filter((r) => r.action === RuleAction.ALLOW));
    const ingress = options.ingress.get(service);
    if (ingress !== undefined) {
      allow.push({ from: [{ source: { principals: [ingress] } }] });
    }
    const deny = groupRules(options, service, rules.filter((r) => r.action === RuleAction.DENY));
    for (const [action, list] of [[AuthorizationPolicySpecAction.DENY, deny], [AuthorizationPolicySpecAction.ALLOW, allow]] as const) {
      if (list.length === 0) {
        continue;
      }
      if (list.length > MAX_RULES) {
        throw fail(options, service, `${list.length} ${action} rules`, `at most ${MAX_RULES} distinct HTTP matches per service and action (the AuthorizationPolicy CRD's maxItems)`);
      }
      policies.push({ name: `${action.toLowerCase()}-${service}`, service, spec: { action, selector, rules: list } });
    }
  }
  return policies;
}

/**
 * One Istio rule per distinct HTTP match (L4 rules share one), whose single `from` source lists the principal of
 * every identity with that match: principals in one source are ORed, which is what several model rules with the
 * same match mean. `principals` has no maxItems in the CRD (only `from` and `rules` have 512), so hundreds of
 * model versions calling one service stay one rule.
 */
function groupRules(options: AuthzRenderOptions, service: string, rules: readonly ResolvedRule[]): AuthorizationPolicySpecRules[] {
  const byMatch = new Map<string, { http?: HttpMatch; sources: string[] }>();
  for (const rule of rules) {
    const key = rule.http === undefined ? 'L4' : JSON.stringify(rule.http);
    const group = byMatch.get(key) ?? { ...(rule.http ? { http: rule.http } : {}), sources: [] };
    if (!group.sources.includes(rule.source)) {
      group.sources.push(rule.source);
    }
    byMatch.set(key, group);
  }
  return [...byMatch.values()].map(({ http, sources }) => {
    const principals = [...sources].sort().map((s) => principalOf(options.trustDomain, options.namespace, s));
    // from, to and when in the SAME rule: separate rules would be ORed, allowing the operation to any source.
    return {
      from: [{ source: { principals } }],
      ...(http ? renderHttp(options, service, http) : {}),
    };
  });
}

function renderHttp(options: AuthzRenderOptions, service: string, http: HttpMatch): Pick<AuthorizationPolicySpecRules, 'to' | 'when'> {
  const field = `rules[${service}].http`;
  if (http.pathRegex !== undefined) {
    throw fail(options, service, `pathRegex ${describeValue(http.pathRegex)}`, `a rule Istio can enforce: AuthorizationPolicy paths match exactly, by prefix (\`/a*\`) or by suffix, never by regular expression; use pathExact or pathPrefix in the mesh model (${field})`);
  }
  const operation: AuthorizationPolicySpecRulesToOperation = {
    ...(http.pathExact !== undefined ? { paths: [literal(options, service, `${field}.pathExact`, http.pathExact)] } : {}),
    ...(http.pathPrefix !== undefined ? { paths: [`${literal(options, service, `${field}.pathPrefix`, http.pathPrefix)}*`] } : {}),
    ...(http.methods !== undefined ? { methods: [...http.methods] } : {}),
  };
  const when = (http.headers ?? []).map((h, i) => renderHeader(options, service, `${field}.headers[${i}]`, h));
  return {
    ...(Object.keys(operation).length > 0 ? { to: [{ operation }] } : {}),
    ...(when.length > 0 ? { when } : {}),
  };
}

/** A header match as a condition on `request.headers[<name>]`; `invert` is `notValues`. */
function renderHeader(options: AuthzRenderOptions, service: string, field: string, h: HeaderMatch): AuthorizationPolicySpecRulesWhen {
  let value: string;
  if (h.regex !== undefined) {
    throw fail(options, service, `header regex ${describeValue(h.regex)}`, `a header match Istio can enforce: conditions match exactly, by prefix, by suffix or by presence, never by regular expression (${field})`);
  } else if (h.exact !== undefined) {
    value = literal(options, service, `${field}.exact`, h.exact);
  } else if (h.prefix !== undefined) {
    value = `${literal(options, service, `${field}.prefix`, h.prefix)}*`;
  } else if (h.suffix !== undefined) {
    value = `*${literal(options, service, `${field}.suffix`, h.suffix)}`;
  } else {
    // Presence: Istio's `*` matches a non-empty value; Consul's Present matches any value. An empty header is the only difference.
    value = '*';
  }
  const key = `request.headers[${h.name}]`;
  return h.invert ? { key, notValues: [value] } : { key, values: [value] };
}

/** A value Istio will read literally: without `*`, which Istio treats as a wildcard anywhere in a match string. */
function literal(options: AuthzRenderOptions, service: string, field: string, value: string): string {
  if (value.includes('*')) {
    throw fail(options, service, value, `a value without '*' (${field}): Istio reads '*' as a wildcard, so the policy would match more than the Consul intention does`);
  }
  return value;
}

function fail(options: AuthzRenderOptions, service: string, given: string, expected: string): LambdaMeshError {
  return new LambdaMeshError({ location: options.location, field: `policies[${service}]`, given, expected });
}
