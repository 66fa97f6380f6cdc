import { Duration, Token } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { type GlooLambdaAccess } from './gloo-access';
import { type GlooLambdaRoutes } from './gloo-routes';
import { DEFAULT_GLOO_VERSION, GLOO_HELM_REPOSITORY } from './private/gloo';

/**
 * The most bytes of manifest JSON one custom resource carries. CloudFormation passes a custom resource's
 * properties in the request to the kubectl handler, and a Lambda invocation takes at most 256 KiB: keep well
 * below, since tokens resolve to longer ARNs than their placeholders.
 * @see https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
 */
const MAX_MANIFEST_BYTES = 128 * 1024;

/**
 * Properties of {@link GlooInstall}.
 */
export interface GlooInstallProps {
  /** The cluster, with a kubectl provider (`kubectlProviderOptions`). */
  readonly cluster: eks.ICluster;
  /** The roles of Gloo's service accounts: the chart is installed after them, with their Helm values. */
  readonly access: GlooLambdaAccess;
  /**
   * The Gloo Edge chart version.
   * @default '1.22.1'
   */
  readonly version?: string;
  /**
   * The Helm repository of the chart.
   * @default 'https://storage.googleapis.com/solo-public-helm'
   */
  readonly repository?: string;
  /**
   * The Helm release name.
   * @default 'gloo'
   */
  readonly release?: string;
  /**
   * The registry Gloo's images are pulled from (`global.image.registry`), e.g. an ECR pull-through cache of
   * `quay.io/solo-io` for nodes without internet access.
   * @default - the chart's (`quay.io/solo-io`)
   */
  readonly imageRegistry?: string;
  /**
   * Give the gateway-proxy service an internal load balancer, reachable only from the VPC.
   * @default true
   */
  readonly internalLoadBalancer?: boolean;
  /**
   * How long Helm waits for the release to be ready.
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;
}

/**
 * Defines a Gloo Edge installation on an EKS cluster: the namespace, then the Helm release with the values of
 * {@link GlooLambdaAccess} (service account credentials, the roles' annotations, discovery on or off), installed
 * only after the roles exist so that the pods never start without credentials. Routes added with
 * {@link addRoutes} are applied after the release, whose CRDs they need.
 *
 * @see https://docs.solo.io/gloo-edge/latest/installation/gateway/kubernetes/#installing-on-kubernetes-with-helm
 */
export class GlooInstall extends Construct {
  /** The Helm release. */
  public readonly chart: eks.HelmChart;
  /** The namespace object, applied before the release. */
  public readonly namespaceManifest: eks.KubernetesManifest;
  /** The namespace Gloo runs in. */
  public readonly namespace: string;

  private readonly cluster: eks.ICluster;

  constructor(scope: Construct, id: string, props: GlooInstallProps) {
    super(scope, id);
    const version = props.version ?? DEFAULT_GLOO_VERSION;
    if (!Token.isUnresolved(version) && !/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
      throwInvalid(this, 'version', version, "a Gloo Edge chart version X.Y.Z such as '1.22.1' (no 'v'; pin it, never 'latest')");
    }
    const timeout = props.timeout ?? Duration.minutes(15);
    if (timeout.toSeconds() < 60 || timeout.toSeconds() > 15 * 60) {
      throwInvalid(this, 'timeout', timeout.toHumanString(), 'from 1 to 15 minutes (the kubectl handler runs at most 15 minutes)');
    }
    this.cluster = props.cluster;
    this.namespace = props.access.namespace;

    // Made explicitly, not by Helm's --create-namespace, so the release (and anything else in the namespace)
    // can depend on it, and removing the release never removes the namespace first.
    this.namespaceManifest = new eks.KubernetesManifest(this, 'Namespace', {
      cluster: props.cluster,
      manifest: [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'lambda-mesh' } } }],
      overwrite: true,
    });

    const access = props.access.helmValues();
    const internal = props.internalLoadBalancer ?? true;
    this.chart = new eks.HelmChart(this, 'Chart', {
      cluster: props.cluster,
      chart: 'gloo',
      repository: props.repository ?? GLOO_HELM_REPOSITORY,
      version,
      release: props.release ?? 'gloo',
      namespace: this.namespace,
      createNamespace: false,
      wait: true,
      timeout,
      values: {
        ...access,
        ...(props.imageRegistry ? { global: { image: { registry: props.imageRegistry } } } : {}),
        ...(internal
          ? { gatewayProxies: { gatewayProxy: { service: { extraAnnotations: { 'service.beta.kubernetes.io/aws-load-balancer-internal': 'true' } } } } }
          : {}),
      },
    });
    this.chart.node.addDependency(this.namespaceManifest, props.access);
  }

  /**
   * Applies the routes' objects through the cluster after the release (whose CRDs they need), in as many
   * manifests as it takes to keep each custom resource under the kubectl handler's payload limit.
   *
   * @returns the manifests, in order
   */
  public addRoutes(id: string, routes: GlooLambdaRoutes): eks.KubernetesManifest[] {
    const objects = routes.toJson() as Array<Record<string, unknown>>;
    const groups: Array<Array<Record<string, unknown>>> = [];
    let size = 0;
    for (const object of objects) {
      const bytes = Buffer.byteLength(JSON.stringify(object));
      if (bytes > MAX_MANIFEST_BYTES) {
        throwInvalid(this, `addRoutes(${id})`, `${String((object.metadata as { name?: string } | undefined)?.name)} (${bytes} bytes)`, `Kubernetes objects of at most ${MAX_MANIFEST_BYTES} bytes (the kubectl handler's payload limit): split the routes over several GlooLambdaRoutes`);
      }
      if (groups.length === 0 || size + bytes > MAX_MANIFEST_BYTES) {
        groups.push([]);
        size = 0;
      }
      groups[groups.length - 1].push(object);
      size += bytes;
    }
    return groups.map((manifest, i) => {
      const resource = new eks.KubernetesManifest(this, i === 0 ? id : `${id}${i + 1}`, { cluster: this.cluster, manifest, overwrite: true });
      resource.node.addDependency(this.chart);
      return resource;
    });
  }
}
