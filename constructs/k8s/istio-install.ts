import { Duration } from 'aws-cdk-lib';
import { type ICluster, HelmChart } from 'aws-cdk-lib/aws-eks-v2';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { checkDns1123Label, checkInteger, isDns1123Subdomain } from './private/validation';
import { OTEL_TRACING_PROVIDER } from './telemetry';

/**
 * The Istio release lambda-mesh installs by default: the one whose CRDs (`../shared/crds/istio`) the library's
 * typed classes and manifest validation come from.
 *
 * @see https://github.com/istio/istio/releases
 */
export const ISTIO_VERSION = '1.30.3';

/**
 * Istio's official Helm repository.
 *
 * @see https://istio.io/latest/docs/setup/install/helm/
 */
export const ISTIO_HELM_REPOSITORY = 'https://istio-release.storage.googleapis.com/charts';

/**
 * The ingress gateway's release name: the `gateway` chart names the Deployment, Service and ServiceAccount after it
 * and labels the pods `istio: ingressgateway` (the name without `istio-`), which is what Knative's net-istio expects
 * by default (`config-istio`: `istio-ingressgateway.istio-system.svc.cluster.local`; Gateway selector
 * `istio: ingressgateway`).
 *
 * @see https://knative.dev/docs/serving/setting-up-custom-ingress-gateway/
 */
export const ISTIO_INGRESS_GATEWAY_RELEASE = 'istio-ingressgateway';

/**
 * Where Istio's proxies send spans: an OpenTelemetry collector's OTLP/gRPC endpoint. It becomes an OpenTelemetry
 * extension provider in istiod's mesh config, which Telemetry resources select by name.
 *
 * @see https://istio.io/latest/docs/tasks/observability/distributed-tracing/opentelemetry/
 */
export interface IstioTracingProvider {
  /** The collector Service's cluster-local host name, e.g. `otel-collector.observability.svc.cluster.local`. */
  readonly service: string;
  /**
   * The OTLP/gRPC port.
   * @default 4317
   */
  readonly port?: number;
  /**
   * The provider's name, which Telemetry resources refer to.
   * @default 'otel-tracing'
   */
  readonly name?: string;
}

/**
 * Properties of an {@link IstioInstall}.
 */
export interface IstioInstallProps {
  /** The EKS cluster (with a kubectl provider: `kubectlProviderOptions: { kubectlLayer }`). */
  readonly cluster: ICluster;
  /**
   * The Istio chart version; keep it equal to the CRDs the manifests were validated against.
   * @default '1.30.3'
   */
  readonly version?: string;
  /**
   * The Helm repository of the `base`, `istiod` and `gateway` charts.
   * @default 'https://istio-release.storage.googleapis.com/charts'
   */
  readonly repository?: string;
  /**
   * The namespace of istiod and the ingress gateway.
   * @default 'istio-system'
   */
  readonly namespace?: string;
  /**
   * The OpenTelemetry collector Istio sends spans to.
   * @default - no tracing provider: Telemetry resources that name one select nothing
   */
  readonly tracing?: IstioTracingProvider;
}

/**
 * Defines Istio on an EKS cluster from its official Helm charts, in order: `base` (the CRDs), then `istiod` (with an
 * OpenTelemetry tracing provider in its mesh config), then the ingress gateway, released as `istio-ingressgateway` in
 * `istio-system` so Knative's net-istio finds it without configuration. Each release waits for its workloads, so the
 * next starts only when the previous is ready (the gateway's pods are injected by istiod's webhook).
 *
 * The charts are fetched by the cluster's kubectl handler at deploy time: nothing is downloaded at synth.
 *
 * @see https://istio.io/latest/docs/setup/install/helm/
 */
export class IstioInstall extends Construct {
  /** The `base` release: Istio's CRDs and cluster roles. */
  public readonly base: HelmChart;
  /** The `istiod` release: the control plane. */
  public readonly istiod: HelmChart;
  /** The `gateway` release: the ingress gateway. */
  public readonly gateway: HelmChart;
  /** The Istio version installed. */
  public readonly version: string;
  /** The namespace of istiod and the gateway. */
  public readonly namespace: string;
  /** The gateway Service's cluster-local host name, as Knative's `config-istio` names it. */
  public readonly gatewayService: string;
  /**
   * The tracing provider's name in the mesh config.
   * @default - none
   */
  public readonly tracingProvider?: string;

  constructor(scope: Construct, id: string, props: IstioInstallProps) {
    super(scope, id);
    this.version = props.version ?? ISTIO_VERSION;
    if (typeof this.version !== 'string' || !/^\d+\.\d+\.\d+$/.test(this.version)) {
      throwInvalid(this, 'version', props.version, "an Istio release X.Y.Z such as '1.30.3' (a pinned version: the CRDs and the control plane must match)");
    }
    const repository = props.repository ?? ISTIO_HELM_REPOSITORY;
    if (typeof repository !== 'string' || !/^(https|oci):\/\/\S+$/.test(repository)) {
      throwInvalid(this, 'repository', repository, 'an https:// or oci:// Helm repository URL');
    }
    this.namespace = props.namespace ?? 'istio-system';
    checkDns1123Label(this, 'namespace', this.namespace);
    this.gatewayService = `${ISTIO_INGRESS_GATEWAY_RELEASE}.${this.namespace}.svc.cluster.local`;

    const extensionProviders: Array<Record<string, unknown>> = [];
    if (props.tracing !== undefined) {
      const { service } = props.tracing;
      const port = props.tracing.port ?? 4317;
      const name = props.tracing.name ?? OTEL_TRACING_PROVIDER;
      if (typeof service !== 'string' || !service.includes('.') || !isDns1123Subdomain(service)) {
        throwInvalid(this, 'tracing.service', service, 'a Service host name such as otel-collector.observability.svc.cluster.local');
      }
      checkInteger(this, 'tracing.port', port, 1, 65535);
      checkDns1123Label(this, 'tracing.name', name);
      extensionProviders.push({ name, opentelemetry: { service, port } });
      this.tracingProvider = name;
    }

    const common = { cluster: props.cluster, repository, version: this.version, namespace: this.namespace };
    this.base = new HelmChart(this, 'Base', { ...common, chart: 'base', release: 'istio-base', createNamespace: true, wait: true });
    this.istiod = new HelmChart(this, 'Istiod', {
      ...common,
      chart: 'istiod',
      release: 'istiod',
      wait: true,
      values: { meshConfig: { ...(extensionProviders.length > 0 ? { extensionProviders } : {}) } },
    });
    this.gateway = new HelmChart(this, 'Gateway', {
      ...common,
      chart: 'gateway',
      release: ISTIO_INGRESS_GATEWAY_RELEASE,
      wait: true,
      // The gateway's Service waits for its load balancer; 10 minutes covers an ELB's provisioning.
      timeout: Duration.minutes(10),
    });
    // CRDs before the control plane that watches them; the control plane before the gateway it injects.
    this.istiod.node.addDependency(this.base);
    this.gateway.node.addDependency(this.istiod);
  }
}
