import { type ICluster, HelmChart, KubernetesManifest } from 'aws-cdk-lib/aws-eks-v2';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { type IstioInstall } from './istio-install';
import { checkDns1123Label } from './private/validation';

/**
 * The Knative Serving release lambda-mesh installs by default: the one whose CRDs (`../shared/crds/knative-serving`)
 * the library's typed classes come from.
 */
export const KNATIVE_SERVING_VERSION = '1.23';

/**
 * The Knative Operator chart version that ships Knative Serving 1.23 (the operator's chart versions carry a `v`).
 *
 * @see https://github.com/knative/operator/releases
 */
export const KNATIVE_OPERATOR_CHART_VERSION = 'v1.23.0';

/**
 * The Knative Operator's Helm repository.
 *
 * @see https://knative.dev/docs/install/operator/knative-with-operators/
 */
export const KNATIVE_OPERATOR_HELM_REPOSITORY = 'https://knative.github.io/operator';

/**
 * Properties of a {@link KnativeInstall}.
 */
export interface KnativeInstallProps {
  /** The EKS cluster (with a kubectl provider: `kubectlProviderOptions: { kubectlLayer }`). */
  readonly cluster: ICluster;
  /** The Istio installation Knative's networking layer (net-istio) uses: installed first. */
  readonly istio: IstioInstall;
  /**
   * The Knative Operator chart version.
   * @default 'v1.23.0'
   */
  readonly operatorVersion?: string;
  /**
   * The Knative Serving version the operator installs (`major.minor`, or `major.minor.patch`); the operator
   * carries its manifests in its image, so nothing is fetched from Knative's release pages.
   * @default '1.23'
   */
  readonly servingVersion?: string;
  /**
   * The operator chart's Helm repository.
   * @default 'https://knative.github.io/operator'
   */
  readonly repository?: string;
  /**
   * The operator's namespace.
   * @default 'knative-operator'
   */
  readonly operatorNamespace?: string;
}

/** The namespace Knative Serving runs in; Knative's own manifests name it, so it is not configurable. */
export const KNATIVE_SERVING_NAMESPACE = 'knative-serving';

/**
 * Defines Knative Serving on an EKS cluster through the Knative Operator, after Istio: the operator's Helm chart,
 * then the `knative-serving` namespace (labelled for sidecar injection, so the activator takes part in mTLS) and a
 * `KnativeServing` resource with the Istio ingress.
 *
 * @see https://knative.dev/docs/install/operator/knative-with-operators/
 * @see https://knative.dev/docs/serving/istio-authorization/
 */
export class KnativeInstall extends Construct {
  /** The operator's Helm release. */
  public readonly operator: HelmChart;
  /** The `knative-serving` namespace and the `KnativeServing` resource, applied after the operator. */
  public readonly serving: KubernetesManifest;
  /** The Serving version. */
  public readonly servingVersion: string;

  constructor(scope: Construct, id: string, props: KnativeInstallProps) {
    super(scope, id);
    const operatorVersion = props.operatorVersion ?? KNATIVE_OPERATOR_CHART_VERSION;
    if (typeof operatorVersion !== 'string' || !/^v\d+\.\d+\.\d+$/.test(operatorVersion)) {
      throwInvalid(this, 'operatorVersion', operatorVersion, "a Knative Operator chart version vX.Y.Z such as 'v1.23.0'");
    }
    this.servingVersion = props.servingVersion ?? KNATIVE_SERVING_VERSION;
    if (typeof this.servingVersion !== 'string' || !/^\d+\.\d+(\.\d+)?$/.test(this.servingVersion)) {
      throwInvalid(this, 'servingVersion', props.servingVersion, "a Knative Serving version such as '1.23' or '1.23.0'");
    }
    const repository = props.repository ?? KNATIVE_OPERATOR_HELM_REPOSITORY;
    if (typeof repository !== 'string' || !/^(https|oci):\/\/\S+$/.test(repository)) {
      throwInvalid(this, 'repository', repository, 'an https:// or oci:// Helm repository URL');
    }
    const operatorNamespace = props.operatorNamespace ?? 'knative-operator';
    checkDns1123Label(this, 'operatorNamespace', operatorNamespace);
    if (operatorNamespace === KNATIVE_SERVING_NAMESPACE) {
      throwInvalid(this, 'operatorNamespace', operatorNamespace, `a namespace other than ${KNATIVE_SERVING_NAMESPACE}, which the operator manages`);
    }

    this.operator = new HelmChart(this, 'Operator', {
      cluster: props.cluster,
      repository,
      chart: 'knative-operator',
      release: 'knative-operator',
      version: operatorVersion,
      namespace: operatorNamespace,
      createNamespace: true,
      wait: true,
    });
    // net-istio creates Istio Gateways and VirtualServices: Istio's CRDs and gateway must exist first.
    this.operator.node.addDependency(props.istio);

    this.serving = new KubernetesManifest(this, 'Serving', {
      cluster: props.cluster,
      manifest: [
        {
          apiVersion: 'v1',
          kind: 'Namespace',
          // The activator forwards requests to revisions: with a sidecar it speaks mTLS, else STRICT refuses it.
          metadata: { name: KNATIVE_SERVING_NAMESPACE, labels: { 'istio-injection': 'enabled' } },
        },
        {
          apiVersion: 'operator.knative.dev/v1beta1',
          kind: 'KnativeServing',
          metadata: { name: 'knative-serving', namespace: KNATIVE_SERVING_NAMESPACE },
          spec: {
            version: this.servingVersion,
            ingress: { istio: { enabled: true } },
            config: { network: { 'ingress-class': 'istio.ingress.networking.knative.dev' } },
          },
        },
      ],
    });
    // The KnativeServing kind exists only once the operator's chart has installed its CRDs.
    this.serving.node.addDependency(this.operator);
  }
}
