import { Annotations } from 'aws-cdk-lib';
import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { describeValue, LambdaMeshError, throwInvalid } from '../core/errors';
import { DestinationRule, type DestinationRuleSpec, DestinationRuleSpecTrafficPolicyTlsMode } from './imports/istio-networking.istio.io';
import { checkDns1123Label, checkStringMap, isFqdn, resolveNamespace } from './private/validation';

/**
 * Defines how a client sidecar secures connections to a destination.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/destination-rule/#ClientTLSSettings-TLSmode
 */
export enum IstioClientTlsMode {
  /** Istio mutual TLS with the workload certificates of the mesh. */
  ISTIO_MUTUAL = 'ISTIO_MUTUAL',
  /** Plain text: a warned opt-in, for destinations outside the mesh only. */
  DISABLE = 'DISABLE',
}

/**
 * Defines a named subset of a service's endpoints, selected by pod labels (`version: v2`).
 *
 * @see https://istio.io/latest/docs/reference/config/networking/destination-rule/#Subset
 */
export class IstioSubset {
  /**
   * Defines the subset `name` of the pods carrying `labels`.
   */
  public static of(name: string, labels: Record<string, string>): IstioSubset {
    return new IstioSubset(name, { ...labels });
  }

  /**
   * Defines the subset named `version` of the pods labelled `version: <version>` (Istio's convention).
   */
  public static version(version: string): IstioSubset {
    return new IstioSubset(version, { version });
  }

  private constructor(
    /** The subset's name, a DNS-1123 label. */
    public readonly name: string,
    /** The pod labels that select the subset's endpoints. */
    public readonly labels: Readonly<Record<string, string>>,
  ) {}

  /** True when both select the same pods. */
  public sameLabelsAs(other: IstioSubset): boolean {
    const a = Object.entries(this.labels).sort(([x], [y]) => x.localeCompare(y));
    const b = Object.entries(other.labels).sort(([x], [y]) => x.localeCompare(y));
    return JSON.stringify(a) === JSON.stringify(b);
  }
}

/**
 * Defines the props of an {@link IstioDestinationRule}.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/destination-rule/
 */
export interface IstioDestinationRuleProps {
  /**
   * The destination host, a fully qualified name (`payment-handler.orders.svc.cluster.local`): Istio would read a
   * short name relative to the rule's namespace, not the service's.
   */
  readonly host: string;
  /**
   * The object's name.
   * @default - the first label of the host
   */
  readonly ruleName?: string;
  /**
   * The namespace.
   * @default - the chart's namespace (one of the two is required)
   */
  readonly namespace?: string;
  /**
   * Subsets of the host's endpoints; more with {@link IstioDestinationRule.addSubset}.
   * @default - none
   */
  readonly subsets?: IstioSubset[];
  /**
   * How client sidecars secure connections to the host.
   * @default IstioClientTlsMode.ISTIO_MUTUAL
   */
  readonly tlsMode?: IstioClientTlsMode;
}

/**
 * Defines an Istio DestinationRule (networking.istio.io/v1): the subsets of one host and the client TLS mode
 * (ISTIO_MUTUAL unless opted out). A host has at most one DestinationRule per namespace in an app: Istio would
 * merge or pick one unpredictably.
 *
 * Make-before-break: a VirtualService must never name a subset that no applied DestinationRule defines (Istio
 * answers 503 for it). {@link IstioVirtualService} makes its VirtualService depend on the rules it generates, so
 * they are written first; when removing a subset, apply the VirtualService that stops using it before the rule.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/destination-rule/
 * @see https://istio.io/latest/docs/ops/best-practices/traffic-management/#avoid-503-errors-while-reconfiguring-service-routes
 */
export class IstioDestinationRule extends Construct {
  /** The destination host. */
  public readonly host: string;
  /** The namespace. */
  public readonly namespace: string;
  /** The object's name. */
  public readonly ruleName: string;

  private readonly subsets: IstioSubset[] = [];
  private readonly resource: DestinationRule;

  constructor(scope: Construct, id: string, props: IstioDestinationRuleProps) {
    super(scope, id);
    if (!isFqdn(props.host)) {
      throwInvalid(this, 'host', props.host, 'a fully qualified host such as "payment-handler.orders.svc.cluster.local" (Istio resolves short names against the rule\'s namespace)');
    }
    this.host = props.host;
    this.namespace = resolveNamespace(this, props.namespace);
    this.ruleName = props.ruleName ?? props.host.split('.')[0].toLowerCase();
    checkDns1123Label(this, 'ruleName', this.ruleName);
    const tlsMode = props.tlsMode ?? IstioClientTlsMode.ISTIO_MUTUAL;
    if (tlsMode === IstioClientTlsMode.DISABLE) {
      Annotations.of(this).addWarningV2('lambda-mesh:istio:tlsDisabled', `tlsMode DISABLE: client sidecars send plain text to ${this.host}; under STRICT mTLS the server side rejects it.`);
    }
    for (const subset of props.subsets ?? []) {
      this.addSubset(subset);
    }
    this.resource = new DestinationRule(this, 'Resource', {
      metadata: { name: this.ruleName, namespace: this.namespace },
      spec: Lazy.any({
        produce: () => ({
          host: this.host,
          trafficPolicy: {
            tls: {
              mode: tlsMode === IstioClientTlsMode.DISABLE
                ? DestinationRuleSpecTrafficPolicyTlsMode.DISABLE
                : DestinationRuleSpecTrafficPolicyTlsMode.ISTIO_UNDERSCORE_MUTUAL,
            },
          },
          subsets: this.subsets.length > 0
            ? this.subsets.map((s) => ({ name: s.name, labels: { ...s.labels } }))
            : undefined,
        }),
      }) as DestinationRuleSpec,
    });
    this.node.defaultChild = this.resource;
    this.node.addValidation({ validate: () => this.validateUniqueHost() });
  }

  /**
   * Adds a subset. Adding the same subset again is a no-op; the same name with other labels is an error.
   */
  public addSubset(subset: IstioSubset): void {
    const field = `subsets[${subset.name}]`;
    checkDns1123Label(this, `${field}.name`, subset.name);
    if (Object.keys(subset.labels).length === 0) {
      throwInvalid(this, `${field}.labels`, subset.labels, 'at least one label (a subset without labels selects every endpoint)');
    }
    checkStringMap(this, `${field}.labels`, subset.labels, true);
    const existing = this.subsets.find((s) => s.name === subset.name);
    if (existing) {
      if (!existing.sameLabelsAs(subset)) {
        throwInvalid(this, `${field}.labels`, subset.labels, `the labels subset "${subset.name}" already has: ${describeValue(existing.labels)}`);
      }
      return;
    }
    this.subsets.push(subset);
  }

  /**
   * The subset named `name`, if this rule defines it.
   */
  public findSubset(name: string): IstioSubset | undefined {
    return this.subsets.find((s) => s.name === name);
  }

  private validateUniqueHost(): string[] {
    const rules = this.node.root.node.findAll().filter((c): c is IstioDestinationRule => c instanceof IstioDestinationRule);
    const same = rules.filter((r) => r.namespace === this.namespace && r.host.toLowerCase() === this.host.toLowerCase());
    if (same.length > 1 && same[0] === this) {
      return [new LambdaMeshError({
        location: this.node.path,
        field: 'host',
        given: describeValue(this.host),
        expected: `one DestinationRule per host and namespace; also defined by ${same.slice(1).map((r) => r.node.path).join(', ')} (Istio would merge or pick one unpredictably)`,
      }).message];
    }
    return [];
  }
}
