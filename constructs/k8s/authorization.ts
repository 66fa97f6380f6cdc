import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { type IMesh } from '../mesh/mesh';
import { type MeshGraph } from '../mesh/types';
import { AuthorizationPolicy, AuthorizationPolicySpecAction } from './imports/istio-security.istio.io';
import { principalOf, renderAuthorization, type RenderedPolicy } from './private/authz-rules';
import { checkDns1123Label, checkStringMap, isDns1123Subdomain, resolveNamespace } from './private/validation';

/**
 * The label Knative sets on every pod of every revision of a Knative Service, with the service name as value.
 *
 * @see https://knative.dev/docs/serving/services/
 */
export const KNATIVE_SERVICE_LABEL = 'serving.knative.dev/service';

/** The trust domain Istio uses unless its mesh config sets another. */
export const ISTIO_DEFAULT_TRUST_DOMAIN = 'cluster.local';

/**
 * Where the ingress gateway that forwards outside traffic to exposed services runs.
 */
export interface IngressGatewayIdentity {
  /**
   * The gateway's namespace.
   * @default 'istio-system'
   */
  readonly namespace?: string;
  /**
   * The gateway's service account: the Istio `gateway` chart names it after the release.
   * @default 'istio-ingressgateway'
   */
  readonly serviceAccount?: string;
}

/**
 * Properties of a {@link MeshAuthorization}.
 */
export interface MeshAuthorizationProps {
  /** The mesh model whose rules become the policies (the same model the Consul intentions render from). */
  readonly mesh: IMesh;
  /**
   * The namespace the services' workloads and the identities' service accounts live in.
   * @default - the chart's namespace
   */
  readonly namespace?: string;
  /**
   * The mesh services that run in this namespace: each gets its own ALLOW (and, when the model denies, DENY) policy.
   * @default - every service the mesh declares (services referenced from another app are that app's to render)
   */
  readonly services?: string[];
  /**
   * The Istio trust domain: principals are `<trustDomain>/ns/<namespace>/sa/<identity>`.
   * @default 'cluster.local'
   */
  readonly trustDomain?: string;
  /**
   * The pod label that selects a service's workload; its value is the service name. The default is set by Knative
   * itself on every revision's pods, so a policy follows the service through canaries without user-set labels.
   * @default 'serving.knative.dev/service'
   */
  readonly workloadLabel?: string;
  /**
   * Allow Knative's own traffic: requests from the `knative-serving` namespace (the activator proxies requests while a
   * revision scales from zero or buffers bursts; the autoscaler scrapes metrics) and `GET /metrics` and `GET /healthz`.
   * Without it, STRICT mTLS plus deny-all breaks Knative Services.
   * @default true
   * @see https://knative.dev/docs/serving/istio-authorization/
   */
  readonly knativeSystemAccess?: boolean;
  /**
   * The namespace Knative Serving runs in.
   * @default 'knative-serving'
   */
  readonly knativeNamespace?: string;
  /**
   * Services reachable from outside through the ingress gateway (a Knative route exposed on the gateway).
   * @default - none: only mesh identities reach the services
   */
  readonly exposedServices?: string[];
  /**
   * The ingress gateway's identity, for `exposedServices`.
   * @default - the `istio-ingressgateway` service account in `istio-system`
   */
  readonly ingressGateway?: IngressGatewayIdentity;
  /**
   * Emit a ServiceAccount named after each identity of the mesh, so the principals the policies name exist. A
   * workload runs as an identity by using that service account.
   * @default true
   */
  readonly serviceAccounts?: boolean;
}

/**
 * Defines Istio authorization for a namespace from the mesh model: deny-all for the namespace, one ALLOW policy per
 * service with a rule per distinct HTTP match (source principals AND operations AND header conditions in one rule),
 * DENY policies for the model's denies, and Knative's system traffic. The Consul intentions render from the same
 * model, so the two cannot disagree.
 *
 * Create it after the model is complete: the policies are rendered when it is constructed, and a model changed
 * afterwards is a synth error.
 *
 * @see https://istio.io/latest/docs/reference/config/security/authorization-policy/
 * @see https://istio.io/latest/docs/ops/best-practices/security/#use-default-deny-patterns
 */
export class MeshAuthorization extends Construct {
  /** The namespace the policies apply to. */
  public readonly namespace: string;
  /** The trust domain of the principals. */
  public readonly trustDomain: string;
  /** The services that have policies here. */
  public readonly services: string[];

  private readonly mesh: IMesh;
  private readonly rendered: RenderedPolicy[];
  private readonly renderOptions: Parameters<typeof renderAuthorization>[1];

  constructor(scope: Construct, id: string, props: MeshAuthorizationProps) {
    super(scope, id);
    this.mesh = props.mesh;
    this.namespace = resolveNamespace(this, props.namespace);
    this.trustDomain = props.trustDomain ?? ISTIO_DEFAULT_TRUST_DOMAIN;
    if (!isDns1123Subdomain(this.trustDomain)) {
      throwInvalid(this, 'trustDomain', this.trustDomain, "a trust domain: DNS labels joined by '.', e.g. cluster.local");
    }
    const workloadLabel = props.workloadLabel ?? KNATIVE_SERVICE_LABEL;
    checkStringMap(this, 'workloadLabel', { [workloadLabel]: 'x' }, true);
    const knativeNamespace = props.knativeNamespace ?? 'knative-serving';
    checkDns1123Label(this, 'knativeNamespace', knativeNamespace);

    // Resolving throws for a model whose rules conflict: nothing is emitted from a bad model.
    const graph = props.mesh.graph();
    this.services = this.checkServices(graph, 'services', props.services ?? graph.services.filter((s) => !s.imported).map((s) => s.name));
    for (const s of this.services) {
      checkStringMap(this, `services[${s}]`, { [workloadLabel]: s }, true);
    }
    const exposed = this.checkServices(graph, 'exposedServices', props.exposedServices ?? []);
    const outside = exposed.filter((s) => !this.services.includes(s));
    if (outside.length > 0) {
      throwInvalid(this, 'exposedServices', outside, `services that have policies here (services: ${this.services.join(', ') || '(none)'})`);
    }
    const gatewayNamespace = props.ingressGateway?.namespace ?? 'istio-system';
    const gatewayAccount = props.ingressGateway?.serviceAccount ?? 'istio-ingressgateway';
    checkDns1123Label(this, 'ingressGateway.namespace', gatewayNamespace);
    checkDns1123Label(this, 'ingressGateway.serviceAccount', gatewayAccount);
    const gatewayPrincipal = principalOf(this.trustDomain, gatewayNamespace, gatewayAccount);

    this.renderOptions = {
      location: this.node.path,
      namespace: this.namespace,
      trustDomain: this.trustDomain,
      workloadLabel,
      services: this.services,
      ingress: new Map(exposed.map((s) => [s, gatewayPrincipal])),
    };
    this.rendered = renderAuthorization(graph, this.renderOptions);

    // Namespace-wide allow-nothing: an ALLOW policy with no rules matches nothing, so every workload of the namespace
    // that no other ALLOW policy covers is denied ("spec: {}" in the Istio reference).
    new AuthorizationPolicy(this, 'AllowNothing', { metadata: { name: 'allow-nothing', namespace: this.namespace }, spec: {} });

    if (props.knativeSystemAccess ?? true) {
      new AuthorizationPolicy(this, 'KnativeSystem', {
        metadata: { name: 'allow-knative-system', namespace: this.namespace },
        spec: {
          action: AuthorizationPolicySpecAction.ALLOW,
          rules: [
            // Requests the activator forwards carry the activator's identity, not the caller's (Knative docs).
            { from: [{ source: { namespaces: [knativeNamespace] } }] },
            // The paths Knative's system pods probe and scrape; read-only.
            { to: [{ operation: { methods: ['GET'], paths: ['/metrics', '/healthz'] } }] },
          ],
        },
      });
    }

    for (const policy of this.rendered) {
      const id = `${policy.spec.action === AuthorizationPolicySpecAction.DENY ? 'Deny' : 'Allow'}${pascalCase(policy.service)}`;
      new AuthorizationPolicy(this, id, { metadata: { name: policy.name, namespace: this.namespace }, spec: policy.spec });
    }

    if (props.serviceAccounts ?? true) {
      for (const identity of graph.identities) {
        new ApiObject(this, `ServiceAccount${pascalCase(identity.name)}`, {
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name: identity.name, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'lambda-mesh' } },
          // The identity is the certificate Istio issues for the account; workloads need no Kubernetes API token.
          automountServiceAccountToken: false,
        });
      }
    }

    this.node.addValidation({ validate: () => this.checkUnchanged() });
  }

  /** The principal Istio sees for a mesh identity: `<trustDomain>/ns/<namespace>/sa/<identity>`. */
  public principalOf(identity: string): string {
    if (!this.mesh.graph().identities.some((i) => i.name === identity)) {
      throwInvalid(this, 'principalOf', identity, `an identity of mesh '${this.mesh.meshName}'`);
    }
    return principalOf(this.trustDomain, this.namespace, identity);
  }

  private checkServices(graph: MeshGraph, field: string, names: readonly string[]): string[] {
    const known = graph.services.map((s) => s.name);
    names.forEach((name, i) => {
      if (!known.includes(name)) {
        throwInvalid(this, `${field}[${i}]`, name, `a service of mesh '${graph.meshName}': ${known.join(', ') || '(none declared)'}`);
      }
      if (names.indexOf(name) !== i) {
        throwInvalid(this, `${field}[${i}]`, name, 'each service once');
      }
    });
    return [...names].sort();
  }

  /** The policies were rendered at construction: a model changed since would leave them stale. */
  private checkUnchanged(): string[] {
    const now = renderAuthorization(this.mesh.graph(), this.renderOptions);
    if (JSON.stringify(now) !== JSON.stringify(this.rendered)) {
      return [`the rules of mesh '${this.mesh.meshName}' changed after ${this.node.path} rendered its policies: create MeshAuthorization after every service, function and rule is declared`];
    }
    return [];
  }
}

/** `feature-store` -> `FeatureStore`; a doubled '-' keeps a mark, so distinct names never share an id. */
function pascalCase(name: string): string {
  return name.split('-').map((p) => (p === '' ? '_' : p.charAt(0).toUpperCase() + p.slice(1))).join('');
}
