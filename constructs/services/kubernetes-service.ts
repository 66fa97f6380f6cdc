import { Annotations } from 'aws-cdk-lib';
import { ApiObject, Chart, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { type MeshService, ServicePlacement } from '../mesh';
import { checkPinned, claimService, workloadUpstreams } from './private/workload';

/** consul-k8s's pod annotations. */
export const CONSUL_K8S_ANNOTATIONS = {
  INJECT: 'consul.hashicorp.com/connect-inject',
  SERVICE: 'consul.hashicorp.com/connect-service',
  PORT: 'consul.hashicorp.com/connect-service-port',
  UPSTREAMS: 'consul.hashicorp.com/connect-service-upstreams',
  TRANSPARENT_PROXY: 'consul.hashicorp.com/transparent-proxy',
} as const;

/** The label Istio's injector reads; `"false"` keeps Istio's sidecar out of a Consul pod. */
const ISTIO_INJECT_LABEL = 'sidecar.istio.io/inject';
/** The namespace label Istio's injector reads. */
const ISTIO_NAMESPACE_LABEL = 'istio-injection';
const ISTIO_REVISION_LABEL = 'istio.io/rev';

/**
 * Properties of a {@link MeshKubernetesService}.
 */
export interface MeshKubernetesServiceProps {
  /** The mesh service it runs (`mesh.service('feature-store')`); its placement must be EKS. */
  readonly service: MeshService;
  /** The app image, pinned by digest (or an ECR image asset's URI). */
  readonly image: string;
  /**
   * The arguments of the app container (the image's CMD).
   * @default - the image's
   */
  readonly args?: string[];
  /**
   * Accept an image by tag (synth warns `lambda-mesh:services:unpinnedImage`).
   * @default false
   */
  readonly allowUnpinnedImage?: boolean;
  /**
   * The upstreams the app calls on 127.0.0.1, each one the model lets it call.
   * @default - every service the model lets it call
   */
  readonly upstreams?: string[];
  /**
   * How many pods run.
   * @default 2
   */
  readonly replicas?: number;
  /**
   * The app container's CPU request and limit, in millicores.
   * @default 250
   */
  readonly cpuMillis?: number;
  /**
   * The app container's memory request and limit, in MiB.
   * @default 512
   */
  readonly memoryMiB?: number;
  /**
   * The command of the app's readiness and liveness probes, run in the app container. The app listens on 127.0.0.1
   * (only its sidecar reaches it), where kubelet's HTTP and TCP probes cannot: probe from inside.
   * @default - no app probe: the pod is ready when its sidecar is (consul-k8s's own probe)
   */
  readonly healthCheckCommand?: string[];
  /**
   * The user the app runs as (non-root).
   * @default 1000
   */
  readonly user?: number;
  /**
   * Extra environment variables of the app.
   * @default - only the upstreams' `MESH_UPSTREAM_<SERVICE>_URL`
   */
  readonly environment?: Record<string, string>;
}

/**
 * Defines a mesh service on Kubernetes with consul-k8s (see `ConsulKubernetes`): a ServiceAccount named after the
 * service's identity (consul-k8s's binding rule makes the pod that service), a Deployment whose pods carry the
 * connect-inject annotations (service name and port, upstreams from the model on 127.0.0.1, transparent proxy off),
 * and a Service. Istio's injection is switched off on the pods: a pod is in one mesh only.
 *
 * Put it in a chart whose namespace consul-k8s injects (`ConsulKubernetes.injectNamespaces`) and Istio does not: a
 * namespace labelled for Istio injection in the same cdk8s app is a synth error.
 *
 * @see https://developer.hashicorp.com/consul/docs/k8s/connect
 * @see https://developer.hashicorp.com/consul/docs/reference/k8s/annotation-label
 */
export class MeshKubernetesService extends Construct {
  /** The Deployment. */
  public readonly deployment: kplus.Deployment;
  /** The Service. */
  public readonly kubernetesService: kplus.Service;
  /** The ServiceAccount, named after the identity. */
  public readonly serviceAccount: kplus.ServiceAccount;
  /** The namespace it runs in. */
  public readonly namespace: string;

  constructor(scope: Construct, id: string, props: MeshKubernetesServiceProps) {
    super(scope, id);
    const service = claimService(this, props.service, ServicePlacement.EKS);
    const namespace = Chart.of(this).namespace;
    if (namespace === undefined || namespace === 'default') {
      throwInvalid(this, 'namespace', namespace ?? '(the chart has none)', "a chart with a namespace of its own (cdk8s Chart `namespace`), one that consul-k8s injects and Istio does not");
    }
    this.namespace = namespace;
    if (!checkPinned(this, 'image', props.image, props.allowUnpinnedImage ?? false)) {
      Annotations.of(this).addWarningV2('lambda-mesh:services:unpinnedImage', `${this.node.path}: image ${props.image} is not pinned by digest: the same tag can run different code after a reschedule.`);
    }
    const replicas = checkRange(this, 'replicas', props.replicas ?? 2, 1, 100);
    const cpu = checkRange(this, 'cpuMillis', props.cpuMillis ?? 250, 10, 64_000);
    const memory = checkRange(this, 'memoryMiB', props.memoryMiB ?? 512, 16, 262_144);
    const user = checkRange(this, 'user', props.user ?? 1000, 1, 2_147_483_647);
    if (props.healthCheckCommand !== undefined && props.healthCheckCommand.length === 0) {
      throwInvalid(this, 'healthCheckCommand', props.healthCheckCommand, "a command and its arguments, e.g. ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/health']");
    }
    const upstreams = workloadUpstreams(this, props.service.mesh, service, props.upstreams);

    this.serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: service.name },
      // consul-dataplane logs in with the pod's service account token (the Kubernetes auth method).
      automountToken: true,
    });
    const labels = { app: service.name, 'app.kubernetes.io/managed-by': 'lambda-mesh' };
    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: service.name, labels },
      replicas,
      serviceAccount: this.serviceAccount,
      automountServiceAccountToken: true,
      podMetadata: {
        labels: { ...labels, [ISTIO_INJECT_LABEL]: 'false' },
        annotations: {
          [CONSUL_K8S_ANNOTATIONS.INJECT]: 'true',
          [CONSUL_K8S_ANNOTATIONS.SERVICE]: service.name,
          [CONSUL_K8S_ANNOTATIONS.PORT]: String(service.port),
          [CONSUL_K8S_ANNOTATIONS.TRANSPARENT_PROXY]: 'false',
          ...(upstreams.length > 0 ? { [CONSUL_K8S_ANNOTATIONS.UPSTREAMS]: upstreams.map((u) => `${u.name}:${u.localPort}`).join(',') } : {}),
        },
      },
      securityContext: { ensureNonRoot: true, user, group: user },
      select: false,
      containers: [{
        name: 'app',
        image: props.image,
        ...(props.args ? { args: props.args } : {}),
        // `ports`, not `portNumber`: with `portNumber` cdk8s-plus adds a TCP startup probe on the pod IP, which an app
        // listening on 127.0.0.1 never answers (kubelet would restart it for ever).
        ports: [{ number: service.port }],
        envVariables: Object.fromEntries([
          ...Object.entries(props.environment ?? {}),
          ...upstreams.map((u) => [u.environmentVariable, u.url] as const),
        ].map(([k, v]) => [k, kplus.EnvValue.fromValue(v)])),
        resources: {
          cpu: { request: kplus.Cpu.millis(cpu), limit: kplus.Cpu.millis(cpu) },
          memory: { request: Size.mebibytes(memory), limit: Size.mebibytes(memory) },
        },
        securityContext: { ensureNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false, user, group: user },
        ...(props.healthCheckCommand ? { readiness: probe(props.healthCheckCommand), liveness: probe(props.healthCheckCommand) } : {}),
      }],
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: { app: service.name } }));
    this.kubernetesService = new kplus.Service(this, 'Service', {
      metadata: { name: service.name, labels },
      ports: [{ name: service.protocol, port: service.port, targetPort: service.port }],
      selector: this.deployment,
    });
    this.node.addValidation({ validate: () => this.checkNotIstioInjected() });
  }

  /** A namespace of this app labelled for Istio injection would give the pods a second mesh's sidecar. */
  private checkNotIstioInjected(): string[] {
    for (const c of this.node.root.node.findAll()) {
      if (!(c instanceof ApiObject) || c.kind !== 'Namespace' || c.metadata.name !== this.namespace) {
        continue;
      }
      const istio = c.metadata.getLabel(ISTIO_NAMESPACE_LABEL);
      const revision = c.metadata.getLabel(ISTIO_REVISION_LABEL);
      if (istio === 'enabled' || revision !== undefined) {
        return [`${this.node.path}: namespace '${this.namespace}' is injected by both Consul and Istio (${c.node.path} labels it ${istio === 'enabled' ? `${ISTIO_NAMESPACE_LABEL}=enabled` : `${ISTIO_REVISION_LABEL}=${revision}`}); expected a namespace only consul-k8s injects: run Consul services in a namespace of their own`];
      }
    }
    return [];
  }
}

function probe(command: string[]): kplus.Probe {
  return kplus.Probe.fromCommand(command, { initialDelaySeconds: Duration.seconds(2), periodSeconds: Duration.seconds(10), failureThreshold: 3, timeoutSeconds: Duration.seconds(5) });
}

function checkRange(scope: Construct, field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throwInvalid(scope, field, value, `a whole number from ${min} to ${max}`);
  }
  return value;
}
