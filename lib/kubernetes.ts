import { Annotations, type Stack } from 'aws-cdk-lib';
import { type ICluster, type KubernetesManifest } from 'aws-cdk-lib/aws-eks-v2';
import * as cdk8s from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { type Construct, type IConstruct } from 'constructs';
import {
  IstioInstall,
  KnativeInstall,
  MeshAuthorization,
  MeshPeerAuthentication,
  MeshTelemetry,
  OtelCollector,
  OtelExporter,
} from '../constructs/k8s';
import { type IMesh } from '../constructs/mesh';
import { CONFIG_DEFAULTS, ConfigError, type KubernetesConfig, withConfigField } from './config';

/** The namespace of the OpenTelemetry collector: outside the mesh namespace, whose deny-all would refuse spans. */
export const OBSERVABILITY_NAMESPACE = 'observability';

/**
 * When a chart is applied to the cluster, relative to the others. Each phase is applied after every earlier one, so
 * that what a later object refers to exists first: on every deploy, CloudFormation updates the manifests in this
 * order, which makes a change make-before-break (a new DestinationRule subset exists before a VirtualService routes
 * to it).
 */
export enum ChartPhase {
  /** Namespaces, after the Istio and Knative installs (their CRDs). */
  NAMESPACES = 0,
  /** Policies and workloads: PeerAuthentication, AuthorizationPolicies, Telemetry, the collector, Knative Services. */
  POLICIES = 1,
  /** DestinationRules, which define the subsets routes refer to. */
  DESTINATION_RULES = 2,
  /** VirtualServices, which route to those subsets. */
  VIRTUAL_SERVICES = 3,
}

/**
 * Properties of {@link KubernetesPlatform}.
 */
export interface KubernetesPlatformProps {
  /** The environment name, the prefix of the charts' names. */
  readonly name: string;
  /** The mesh model the policies render from. */
  readonly mesh: IMesh;
  /** The cdk8s app the charts go into (written to dist/). */
  readonly app: cdk8s.App;
  /**
   * The `kubernetes` section of the config.
   * @default - the defaults of each field
   */
  readonly config?: KubernetesConfig;
  /** Where the config came from, for error messages. */
  readonly configSource: string;
  /**
   * The environment's EKS cluster (eks-v2, with a kubectl handler): with `applyToCluster`, Istio and Knative are
   * installed on it and the charts applied through it.
   * @default - no cluster: the charts are only written to dist/
   */
  readonly cluster?: ICluster;
  /** The stack whose synth reports the Kubernetes constructs' warnings (cdk8s has no annotations of its own). */
  readonly warningsStack: Stack;
}

/**
 * The environment's Kubernetes part: the namespaces, the platform chart (namespace-wide STRICT mTLS, the mesh's
 * AuthorizationPolicies, Telemetry) and the observability chart (the OpenTelemetry collector), always written to
 * dist/; with a cluster, also Istio and Knative installed from their Helm charts and every chart applied after them.
 */
export class KubernetesPlatform {
  /** The namespace of the mesh's workloads. */
  public readonly namespace: string;
  /** The Namespace objects. */
  public readonly namespacesChart: cdk8s.Chart;
  /** mTLS, authorization and telemetry for the workload namespace. */
  public readonly platformChart: cdk8s.Chart;
  /** The OpenTelemetry collector. */
  public readonly observabilityChart: cdk8s.Chart;
  /** The workload namespace's STRICT mTLS, to which exceptions are added. */
  public readonly mtls: MeshPeerAuthentication;
  /**
   * Istio, when there is a cluster.
   * @default - no cluster
   */
  public readonly istio?: IstioInstall;
  /**
   * Knative Serving, when there is a cluster.
   * @default - no cluster
   */
  public readonly knative?: KnativeInstall;

  private readonly props: KubernetesPlatformProps;
  private readonly cluster?: ICluster;
  private readonly applied = new Map<ChartPhase, KubernetesManifest[]>();
  private readonly charts = new Map<ChartPhase, cdk8s.Chart[]>();

  constructor(props: KubernetesPlatformProps) {
    this.props = props;
    const config = props.config ?? {};
    const at = <T>(field: string, fn: () => T): T => withConfigField(props.configSource, `kubernetes.${field}`, fn);
    this.namespace = config.namespace ?? CONFIG_DEFAULTS.kubernetes.namespace;

    this.namespacesChart = new cdk8s.Chart(props.app, `${props.name}-namespaces`, { disableResourceNameHashes: true });
    at('namespace', () => new kplus.Namespace(this.namespacesChart, 'Workloads', {
      // Injection puts an Envoy sidecar in every pod: mTLS and the AuthorizationPolicies apply only to those.
      metadata: { name: this.namespace, labels: { 'istio-injection': 'enabled' } },
    }));
    new kplus.Namespace(this.namespacesChart, 'Observability', { metadata: { name: OBSERVABILITY_NAMESPACE } });

    this.observabilityChart = new cdk8s.Chart(props.app, `${props.name}-observability`, { namespace: OBSERVABILITY_NAMESPACE, disableResourceNameHashes: true });
    const collector = at('otlpEndpoint', () => new OtelCollector(this.observabilityChart, 'Collector', {
      exporters: [config.otlpEndpoint !== undefined ? OtelExporter.otlp(config.otlpEndpoint) : OtelExporter.debug()],
    }));

    this.platformChart = new cdk8s.Chart(props.app, `${props.name}-platform`, { namespace: this.namespace, disableResourceNameHashes: true });
    this.mtls = new MeshPeerAuthentication(this.platformChart, 'Mtls');
    at('exposedServices', () => new MeshAuthorization(this.platformChart, 'Authorization', {
      mesh: props.mesh,
      ...(config.exposedServices !== undefined ? { exposedServices: config.exposedServices } : {}),
    }));
    at('tracingSamplingPercentage', () => new MeshTelemetry(this.platformChart, 'Telemetry', {
      samplingPercentage: config.tracingSamplingPercentage ?? CONFIG_DEFAULTS.kubernetes.tracingSamplingPercentage,
    }));

    if (config.applyToCluster && props.cluster === undefined) {
      throw new ConfigError({ file: props.configSource, field: 'kubernetes.applyToCluster', given: 'true', expected: 'an eks section: the charts are applied through its cluster' });
    }
    this.cluster = config.applyToCluster ? props.cluster : undefined;
    if (this.cluster) {
      const scope: Construct = this.cluster;
      this.istio = new IstioInstall(scope, 'LambdaMeshIstio', {
        cluster: this.cluster,
        tracing: { service: collector.serviceHost, port: collector.otlpGrpcPort },
      });
      this.knative = new KnativeInstall(scope, 'LambdaMeshKnative', { cluster: this.cluster, istio: this.istio });
    }
    this.addChart(this.namespacesChart, ChartPhase.NAMESPACES);
    this.addChart(this.observabilityChart, ChartPhase.POLICIES);
    this.addChart(this.platformChart, ChartPhase.POLICIES);
  }

  /**
   * Adds a chart of the environment: written to dist/ and, with a cluster, applied after the installs and every chart
   * of an earlier phase. Add charts once the model is complete: a chart is rendered when it is applied.
   */
  public addChart(chart: cdk8s.Chart, phase: ChartPhase): void {
    // Whatever the call order, a chart follows every chart of an earlier phase and precedes every chart of a later one.
    for (const [other, charts] of this.charts) {
      if (other < phase) {
        charts.forEach((c) => chart.addDependency(c));
      } else if (other > phase) {
        charts.forEach((c) => c.addDependency(chart));
      }
    }
    this.charts.set(phase, [...(this.charts.get(phase) ?? []), chart]);
    const { cluster } = this;
    if (cluster === undefined || this.istio === undefined || this.knative === undefined) {
      return;
    }
    const manifest = cluster.addCdk8sChart(`LambdaMesh${chart.node.id.replace(/[^A-Za-z0-9]/g, '')}`, chart);
    // CRDs first (Istio's and Knative's), then each phase after every earlier one.
    manifest.node.addDependency(this.istio, this.knative);
    for (const [other, manifests] of this.applied) {
      if (other < phase) {
        manifests.forEach((m) => manifest.node.addDependency(m));
      } else if (other > phase) {
        manifests.forEach((m) => m.node.addDependency(manifest));
      }
    }
    this.applied.set(phase, [...(this.applied.get(phase) ?? []), manifest]);
  }

  /**
   * Reports the warnings of the Kubernetes constructs (construct metadata, which no CDK stack synthesizes) on the
   * warnings stack, keeping their ids so they can be acknowledged.
   */
  public reportWarnings(): void {
    for (const c of this.props.app.node.findAll()) {
      for (const entry of c.node.metadata) {
        if (entry.type !== 'aws:cdk:warning') {
          continue;
        }
        const text = String(entry.data);
        const ack = / \[ack: ([^\]]+)\]$/.exec(text);
        const message = `${pathOf(c)}: ${ack ? text.slice(0, ack.index) : text}`;
        Annotations.of(this.props.warningsStack).addWarningV2(ack?.[1] ?? 'lambda-mesh:k8s-warning', message);
      }
    }
  }
}

function pathOf(c: IConstruct): string {
  return `kubernetes/${c.node.path}`;
}
