import { Annotations } from 'aws-cdk-lib';
import { type Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import {
  Service,
  type ServiceSpecTemplateSpecContainers,
  ServiceSpecTemplateSpecContainersResourcesLimits,
  ServiceSpecTemplateSpecContainersResourcesRequests,
  type ServiceSpecTraffic,
} from './imports/knative-service-serving.knative.dev';
import {
  checkDns1035Label,
  checkDns1123Label,
  checkInteger,
  checkStringMap,
  kebabCase,
  resolveNamespace,
  serviceFqdn,
} from './private/validation';

/** The label that makes Istio inject its sidecar into a pod (the label, not the deprecated annotation). */
const SIDECAR_INJECT_LABEL = 'sidecar.istio.io/inject';
/** Knative's label that keeps a Service off the external ingress. */
const VISIBILITY_LABEL = 'networking.knative.dev/visibility';
const AUTOSCALING = 'autoscaling.knative.dev';
/** The port Knative gives a serving container that declares none. */
const KNATIVE_DEFAULT_PORT = 8080;
/** Knative's limit on a revision's request timeout (max-revision-timeout-seconds default). */
const MAX_TIMEOUT_SECONDS = 600;
/** Knative's bounds on the autoscaler's stable window. */
const MIN_WINDOW_SECONDS = 6;
const MAX_WINDOW_SECONDS = 3600;
/** Knative's bound on scale-down-delay. */
const MAX_SCALE_DOWN_DELAY_SECONDS = 3600;
const MAX_CONTAINER_CONCURRENCY = 1000;

/**
 * Defines the protocol the serving container speaks on its port (the port's name tells Knative).
 *
 * @see https://knative.dev/docs/serving/services/configure-requests-limits-services/
 */
export enum KnativePortProtocol {
  /** HTTP/1.1 (port name `http1`). */
  HTTP1 = 'http1',
  /** HTTP/2 without TLS, for gRPC (port name `h2c`). */
  H2C = 'h2c',
}

/**
 * Defines who can reach a Knative Service.
 *
 * @see https://knative.dev/docs/serving/services/private-services/
 */
export enum KnativeVisibility {
  /** Only from inside the cluster (`networking.knative.dev/visibility: cluster-local`). */
  CLUSTER_LOCAL = 'cluster-local',
  /** Also through Knative's external ingress gateway. */
  EXTERNAL = 'external',
}

/**
 * Defines the metric the Knative autoscaler scales a revision on.
 *
 * @see https://knative.dev/docs/serving/autoscaling/autoscaling-metrics/
 */
export enum KnativeAutoscalingMetric {
  /** In-flight requests per pod (Knative Pod Autoscaler, can scale to zero). */
  CONCURRENCY = 'concurrency',
  /** Requests per second per pod (Knative Pod Autoscaler, can scale to zero). */
  RPS = 'rps',
  /** CPU utilisation (Horizontal Pod Autoscaler class, cannot scale to zero). */
  CPU = 'cpu',
  /** Memory use (Horizontal Pod Autoscaler class, cannot scale to zero). */
  MEMORY = 'memory',
}

/**
 * Defines the probing of a Knative container. Knative probes the serving container's own port, so no port is given.
 *
 * @see https://knative.dev/docs/serving/services/health-probes/
 */
export class KnativeProbe {
  /**
   * Defines an HTTP GET probe of `path` on the serving port.
   */
  public static httpGet(path: string, options: KnativeProbeOptions = {}): KnativeProbe {
    return new KnativeProbe('httpGet', path, options);
  }

  /**
   * Defines a TCP connect probe of the serving port.
   */
  public static tcpSocket(options: KnativeProbeOptions = {}): KnativeProbe {
    return new KnativeProbe('tcpSocket', undefined, options);
  }

  /**
   * Defines a gRPC health-checking-protocol probe of the serving port.
   */
  public static grpc(options: KnativeProbeOptions = {}): KnativeProbe {
    return new KnativeProbe('grpc', undefined, options);
  }

  private constructor(
    private readonly kind: 'httpGet' | 'tcpSocket' | 'grpc',
    private readonly path: string | undefined,
    private readonly options: KnativeProbeOptions,
  ) {}

  /** @internal */
  public _render(scope: Construct, field: string): RenderedProbe {
    if (this.path !== undefined && !this.path.startsWith('/')) {
      throwInvalid(scope, `${field}.path`, this.path, "an absolute path starting with '/'");
    }
    const seconds = (name: string, d: Duration | undefined, min: number): number | undefined => {
      if (d === undefined) {
        return undefined;
      }
      return wholeSeconds(scope, `${field}.${name}`, d, min, 3600);
    };
    const o = this.options;
    if (o.failureThreshold !== undefined) {
      checkInteger(scope, `${field}.failureThreshold`, o.failureThreshold, 1, 100);
    }
    return {
      ...(this.kind === 'httpGet' ? { httpGet: { path: this.path } } : {}),
      ...(this.kind === 'tcpSocket' ? { tcpSocket: {} } : {}),
      ...(this.kind === 'grpc' ? { grpc: {} } : {}),
      initialDelaySeconds: seconds('initialDelay', o.initialDelay, 0),
      // Knative allows a period of 0 for readiness: it then probes aggressively until the container is ready.
      periodSeconds: seconds('period', o.period, 0),
      timeoutSeconds: seconds('timeout', o.timeout, 1),
      failureThreshold: o.failureThreshold,
    };
  }
}

interface RenderedProbe {
  readonly httpGet?: { readonly path?: string };
  readonly tcpSocket?: Record<string, never>;
  readonly grpc?: Record<string, never>;
  readonly initialDelaySeconds?: number;
  readonly periodSeconds?: number;
  readonly timeoutSeconds?: number;
  readonly failureThreshold?: number;
}

/**
 * Defines the timing of a {@link KnativeProbe}.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.Service
 */
export interface KnativeProbeOptions {
  /**
   * Time after the container starts before the first probe.
   * @default - Kubernetes' default (0 seconds)
   */
  readonly initialDelay?: Duration;
  /**
   * Time between probes, whole seconds.
   * @default - Kubernetes' default (10 seconds); Knative probes readiness more often until the container is ready
   */
  readonly period?: Duration;
  /**
   * Time a probe may take, whole seconds, at least 1.
   * @default - Kubernetes' default (1 second)
   */
  readonly timeout?: Duration;
  /**
   * Failed probes in a row that count as a failure.
   * @default - Kubernetes' default (3)
   */
  readonly failureThreshold?: number;
}

/**
 * Defines the compute resources of a container.
 *
 * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
 */
export interface KnativeResources {
  /**
   * CPU the scheduler reserves.
   * @default Cpu.millis(100)
   */
  readonly cpuRequest?: kplus.Cpu;
  /**
   * CPU the container may use at most.
   * @default - no CPU limit (throttling a request-driven service adds latency; the request bounds scheduling)
   */
  readonly cpuLimit?: kplus.Cpu;
  /**
   * Memory the scheduler reserves.
   * @default Size.mebibytes(128)
   */
  readonly memoryRequest?: Size;
  /**
   * Memory the container may use at most (it is killed above it).
   * @default Size.mebibytes(256)
   */
  readonly memoryLimit?: Size;
}

/**
 * Defines a container of a Knative revision.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.RevisionSpec
 */
export interface KnativeContainer {
  /**
   * The container image; pin it by digest (`repo@sha256:...`) or an immutable tag.
   */
  readonly image: string;
  /**
   * The container's name, a DNS-1123 label.
   * @default - Knative names it (`user-container` for a single container)
   */
  readonly name?: string;
  /**
   * The port the container serves requests on. Exactly one container of a revision serves.
   * @default - 8080 when this is the only container; none (a sidecar) otherwise
   */
  readonly port?: number;
  /**
   * The protocol on `port`.
   * @default KnativePortProtocol.HTTP1
   */
  readonly protocol?: KnativePortProtocol;
  /**
   * Environment variables.
   * @default - none
   */
  readonly env?: Record<string, string>;
  /**
   * The entrypoint.
   * @default - the image's ENTRYPOINT
   */
  readonly command?: string[];
  /**
   * Arguments of the entrypoint.
   * @default - the image's CMD
   */
  readonly args?: string[];
  /**
   * Compute resources.
   * @default - requests 100m CPU and 128 MiB, memory limit 256 MiB
   */
  readonly resources?: KnativeResources;
  /**
   * Readiness probe (of the serving container).
   * @default - Knative's default TCP probe of the serving port
   */
  readonly readinessProbe?: KnativeProbe;
  /**
   * Liveness probe (of the serving container).
   * @default - none
   */
  readonly livenessProbe?: KnativeProbe;
  /**
   * Startup probe (of the serving container).
   * @default - none
   */
  readonly startupProbe?: KnativeProbe;
  /**
   * Mounts the root filesystem read-only. Turning it off is a warned opt-in.
   * @default true
   */
  readonly readOnlyRootFilesystem?: boolean;
}

/**
 * Defines how Knative scales a revision; every value lands as a string annotation on the revision template
 * (`spec.template.metadata.annotations`), the only place Knative reads them.
 *
 * @see https://knative.dev/docs/serving/autoscaling/
 */
export interface KnativeAutoscaling {
  /**
   * The fewest pods (`autoscaling.knative.dev/min-scale`); 0 allows scale to zero.
   * @default - Knative's default, 0
   */
  readonly minScale?: number;
  /**
   * The most pods (`autoscaling.knative.dev/max-scale`); 0 means no limit.
   * @default - Knative's default, no limit
   */
  readonly maxScale?: number;
  /**
   * The pods a new revision starts with (`autoscaling.knative.dev/initial-scale`).
   * @default - Knative's default, 1
   */
  readonly initialScale?: number;
  /**
   * The metric to scale on (`autoscaling.knative.dev/metric`); CPU and MEMORY select the HPA autoscaler class.
   * @default KnativeAutoscalingMetric.CONCURRENCY
   */
  readonly metric?: KnativeAutoscalingMetric;
  /**
   * The target value of the metric per pod (`autoscaling.knative.dev/target`), greater than 0.
   * @default - Knative's default (100 concurrent requests)
   */
  readonly target?: number;
  /**
   * The share of the target to aim for, 1 to 100 (`autoscaling.knative.dev/target-utilization-percentage`).
   * @default - Knative's default, 70
   */
  readonly targetUtilizationPercentage?: number;
  /**
   * How long load must have dropped before scaling down (`autoscaling.knative.dev/scale-down-delay`), up to 1 hour.
   * @default - no delay
   */
  readonly scaleDownDelay?: Duration;
  /**
   * The averaging window of the autoscaler (`autoscaling.knative.dev/window`), 6 seconds to 1 hour.
   * @default - Knative's default, 60 seconds
   */
  readonly window?: Duration;
}

/**
 * Defines one traffic target of a Knative Service: a revision (or the latest one), its share and an optional tag.
 * Exactly one of `revisionName` and `latestRevision: true` is given.
 *
 * @see https://knative.dev/docs/serving/traffic-management/
 */
export interface KnativeTrafficTarget {
  /**
   * A revision of this service by name (`<service>-<suffix>`).
   * @default - none: `latestRevision` must be true
   */
  readonly revisionName?: string;
  /**
   * Follow the latest ready revision.
   * @default false
   */
  readonly latestRevision?: boolean;
  /**
   * The share of requests, an integer from 0 to 100; the shares of all targets sum to 100.
   */
  readonly percent: number;
  /**
   * A tag, a DNS-1035 label, unique in the service: the target gets its own host `<tag>-<service>.<namespace>...`.
   * @default - no tag
   */
  readonly tag?: string;
}

/**
 * Defines what other constructs may rely on about a Knative Service.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.Service
 */
export interface IKnativeService {
  /** The Knative Service's name. */
  readonly serviceName: string;
  /** Its namespace. */
  readonly namespace: string;
  /** Its cluster-local host, `<name>.<namespace>.svc.cluster.local`. */
  readonly host: string;
}

/**
 * Defines the attributes of a Knative Service defined elsewhere.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.Service
 */
export interface KnativeServiceAttributes {
  /** The Knative Service's name. */
  readonly serviceName: string;
  /** Its namespace. */
  readonly namespace: string;
}

/**
 * Defines the props of a {@link KnativeService}.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.Service
 */
export interface KnativeServiceProps {
  /**
   * The service's name, a DNS-1035 label (it names Kubernetes Services and host names).
   * @default - the construct ID in kebab case (`OrderProcessor` -> `order-processor`)
   */
  readonly serviceName?: string;
  /**
   * The namespace.
   * @default - the chart's namespace (one of the two is required)
   */
  readonly namespace?: string;
  /**
   * The containers of the revision; exactly one serves (has a port) when there are several.
   */
  readonly containers: KnativeContainer[];
  /**
   * The name of the revision this template creates (bring-your-own revision name): `<serviceName>-<suffix>`.
   * Change it with every change of the template; traffic targets can then name it.
   * @default - Knative generates `<serviceName>-00001`, `-00002`, ...
   */
  readonly revisionName?: string;
  /**
   * The `version` label of the revision's pods (Istio telemetry and subsets use `app` and `version`).
   * @default - no version label
   */
  readonly version?: string;
  /**
   * Injects the Istio sidecar (the `sidecar.istio.io/inject: "true"` template label). Without a sidecar the pods
   * cannot take part in STRICT mTLS, so turning it off is a warned opt-in.
   * @default true
   */
  readonly sidecarInjection?: boolean;
  /**
   * Autoscaling of the revision.
   * @default - Knative's defaults (concurrency 100, scale to zero)
   */
  readonly autoscaling?: KnativeAutoscaling;
  /**
   * The most requests a pod handles at once (`containerConcurrency`), 0 (no limit) to 1000.
   * @default - Knative's default, 0
   */
  readonly containerConcurrency?: number;
  /**
   * How long a request may take, whole seconds, at most 10 minutes.
   * @default - Knative's default, 5 minutes
   */
  readonly timeout?: Duration;
  /**
   * Traffic targets; their percentages sum to 100.
   * @default - all traffic to the latest revision
   */
  readonly traffic?: KnativeTrafficTarget[];
  /**
   * Who can reach the service.
   * @default KnativeVisibility.CLUSTER_LOCAL
   */
  readonly visibility?: KnativeVisibility;
  /**
   * An existing service account the pods run as. The mesh identity of the pods is this account
   * (`cluster.local/ns/<namespace>/sa/<account>`), so give each service its own.
   * @default - a service account named after the service, with no API token mounted
   */
  readonly serviceAccountName?: string;
  /**
   * Labels of the Knative Service object.
   * @default - none
   */
  readonly labels?: Record<string, string>;
}

/**
 * Defines a Knative Service (serving.knative.dev/v1) running in the Istio mesh: sidecar injection by label,
 * autoscaling annotations on the revision template, a service account of its own, hardened containers and
 * traffic targets checked the way Knative's webhook would.
 *
 * @see https://knative.dev/docs/serving/reference/serving-api/#serving.knative.dev/v1.Service
 */
export class KnativeService extends Construct implements IKnativeService {
  /**
   * Imports a Knative Service defined elsewhere.
   */
  public static fromServiceAttributes(scope: Construct, id: string, attrs: KnativeServiceAttributes): IKnativeService {
    class Import extends Construct implements IKnativeService {
      public readonly serviceName = attrs.serviceName;
      public readonly namespace = attrs.namespace;
      public readonly host = serviceFqdn(attrs.serviceName, attrs.namespace);
    }
    const imported = new Import(scope, id);
    checkDns1035Label(imported, 'serviceName', attrs.serviceName);
    checkDns1123Label(imported, 'namespace', attrs.namespace);
    return imported;
  }

  public readonly serviceName: string;
  public readonly namespace: string;
  public readonly host: string;
  /** The service account the pods run as. */
  public readonly serviceAccountName: string;
  /** The name of the revision the template creates, when one was given. */
  public readonly revisionName?: string;

  private readonly resource: Service;

  constructor(scope: Construct, id: string, props: KnativeServiceProps) {
    super(scope, id);
    this.serviceName = props.serviceName ?? kebabCase(id);
    checkDns1035Label(this, 'serviceName', this.serviceName);
    this.namespace = resolveNamespace(this, props.namespace);
    this.host = serviceFqdn(this.serviceName, this.namespace);

    if (props.revisionName !== undefined) {
      this.checkRevisionName('revisionName', props.revisionName);
      this.revisionName = props.revisionName;
    }
    if (props.version !== undefined) {
      checkStringMap(this, 'version', { version: props.version }, true);
    }
    if (props.labels) {
      checkStringMap(this, 'labels', props.labels, true);
    }
    const containers = this.renderContainers(props.containers);
    const annotations = this.renderAutoscaling(props.autoscaling ?? {});
    const traffic = props.traffic ? this.renderTraffic(props.traffic) : undefined;
    if (props.containerConcurrency !== undefined) {
      checkInteger(this, 'containerConcurrency', props.containerConcurrency, 0, MAX_CONTAINER_CONCURRENCY);
    }
    let timeoutSeconds: number | undefined;
    if (props.timeout !== undefined) {
      timeoutSeconds = wholeSeconds(this, 'timeout', props.timeout, 1, MAX_TIMEOUT_SECONDS);
    }

    const sidecar = props.sidecarInjection ?? true;
    if (!sidecar) {
      Annotations.of(this).addWarningV2('lambda-mesh:knative:noSidecar', 'sidecarInjection is off: the pods get no Istio sidecar, so they have no mesh identity and cannot serve or call under STRICT mTLS.');
    }

    if (props.serviceAccountName !== undefined) {
      checkDns1123Label(this, 'serviceAccountName', props.serviceAccountName);
      this.serviceAccountName = props.serviceAccountName;
    } else {
      this.serviceAccountName = this.serviceName;
      new kplus.ServiceAccount(this, 'ServiceAccount', {
        metadata: { name: this.serviceAccountName, namespace: this.namespace },
        // Functions do not call the Kubernetes API; a mounted token would only be something to steal.
        automountToken: false,
      });
    }

    const visibility = props.visibility ?? KnativeVisibility.CLUSTER_LOCAL;
    this.resource = new Service(this, 'Resource', {
      metadata: {
        name: this.serviceName,
        namespace: this.namespace,
        labels: {
          ...props.labels,
          ...(visibility === KnativeVisibility.CLUSTER_LOCAL ? { [VISIBILITY_LABEL]: 'cluster-local' } : {}),
        },
      },
      spec: {
        template: {
          metadata: {
            name: this.revisionName,
            labels: {
              app: this.serviceName,
              ...(props.version !== undefined ? { version: props.version } : {}),
              [SIDECAR_INJECT_LABEL]: sidecar ? 'true' : 'false',
            },
            annotations: Object.keys(annotations).length > 0 ? annotations : undefined,
          },
          spec: {
            serviceAccountName: this.serviceAccountName,
            automountServiceAccountToken: false,
            containerConcurrency: props.containerConcurrency,
            timeoutSeconds,
            containers,
          },
        },
        traffic,
      },
    });
    this.node.defaultChild = this.resource;
  }

  /**
   * The SPIFFE principal of the pods as Istio authorization policies name it: `<trustDomain>/ns/<ns>/sa/<account>`.
   *
   * @param trustDomain the mesh's trust domain
   */
  public principal(trustDomain: string = 'cluster.local'): string {
    return `${trustDomain}/ns/${this.namespace}/sa/${this.serviceAccountName}`;
  }

  /**
   * The cluster-local host of a tagged traffic target: `<tag>-<service>.<namespace>.svc.cluster.local`.
   */
  public tagHost(tag: string): string {
    return serviceFqdn(`${tag}-${this.serviceName}`, this.namespace);
  }

  private checkRevisionName(field: string, name: string): void {
    checkDns1123Label(this, field, name);
    if (!name.startsWith(`${this.serviceName}-`) || name.length === this.serviceName.length + 1) {
      throwInvalid(this, field, name, `a revision name that starts with the service name and a dash ("${this.serviceName}-<suffix>"), as Knative requires for revisions it names after the template`);
    }
  }

  private renderContainers(containers: readonly KnativeContainer[]): ServiceSpecTemplateSpecContainers[] {
    if (containers.length === 0) {
      throwInvalid(this, 'containers', containers, 'at least one container');
    }
    const serving = containers.filter((c) => c.port !== undefined);
    if (containers.length > 1 && serving.length !== 1) {
      throwInvalid(this, 'containers', containers.map((c) => c.port ?? null), 'exactly one container with a port (Knative routes requests to one serving container)');
    }
    if (containers.length === 1 && serving.length === 0) {
      serving.push(containers[0]);
    }
    const names = new Set<string>();
    return containers.map((c, i) => {
      const field = `containers[${i}]`;
      const isServing = c === serving[0];
      if (!c.image || /\s/.test(c.image)) {
        throwInvalid(this, `${field}.image`, c.image, 'an image reference without whitespace');
      }
      if (c.name !== undefined) {
        checkDns1123Label(this, `${field}.name`, c.name);
        if (names.has(c.name)) {
          throwInvalid(this, `${field}.name`, c.name, 'a container name unique in the revision');
        }
        names.add(c.name);
      }
      if (!isServing && (c.readinessProbe || c.livenessProbe || c.startupProbe || c.protocol)) {
        throwInvalid(this, `${field}`, 'probes or protocol on a container without a port', 'probes and protocol only on the serving container (the one with a port)');
      }
      const port = isServing ? (c.port ?? KNATIVE_DEFAULT_PORT) : undefined;
      if (port !== undefined) {
        checkInteger(this, `${field}.port`, port, 1, 65535);
        // The queue-proxy and Istio's sidecar take these ports in every Knative pod.
        if ([8008, 8012, 8013, 8022, 9090, 9091, 15000, 15001, 15004, 15006, 15008, 15020, 15021, 15053, 15090].includes(port)) {
          throwInvalid(this, `${field}.port`, port, 'a port not reserved by the Knative queue-proxy (8008, 8012, 8013, 8022, 9090, 9091) or the Istio sidecar (15000-15090)');
        }
      }
      const env = c.env ?? {};
      for (const key of Object.keys(env)) {
        if (!/^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(key)) {
          throwInvalid(this, `${field}.env`, key, "an environment variable name (letters, digits, '_', '-', '.', not starting with a digit)");
        }
      }
      const readOnlyRoot = c.readOnlyRootFilesystem ?? true;
      if (!readOnlyRoot) {
        Annotations.of(this).addWarningV2('lambda-mesh:knative:writableRootFilesystem', `${field}: readOnlyRootFilesystem is off: a compromised process can change the container's files.`);
      }
      return {
        name: c.name,
        image: c.image,
        command: c.command,
        args: c.args,
        env: Object.keys(env).length > 0 ? Object.entries(env).map(([name, value]) => ({ name, value })) : undefined,
        ports: port !== undefined ? [{ containerPort: port, name: c.protocol ?? KnativePortProtocol.HTTP1 }] : undefined,
        resources: this.renderResources(`${field}.resources`, c.resources ?? {}),
        readinessProbe: c.readinessProbe?._render(this, `${field}.readinessProbe`),
        livenessProbe: c.livenessProbe?._render(this, `${field}.livenessProbe`),
        startupProbe: c.startupProbe?._render(this, `${field}.startupProbe`),
        securityContext: {
          runAsNonRoot: true,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: readOnlyRoot,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        },
      };
    });
  }

  private renderResources(field: string, r: KnativeResources): ServiceSpecTemplateSpecContainers['resources'] {
    const cpuRequest = r.cpuRequest ?? kplus.Cpu.millis(100);
    const memoryRequest = r.memoryRequest ?? Size.mebibytes(128);
    const memoryLimit = r.memoryLimit ?? Size.mebibytes(256);
    const mib = (s: Size): number => s.toMebibytes();
    if (mib(memoryLimit) < mib(memoryRequest)) {
      throwInvalid(this, `${field}.memoryLimit`, `${mib(memoryLimit)}Mi`, `at least the memory request (${mib(memoryRequest)}Mi)`);
    }
    const millis = (c: kplus.Cpu): number => (c.amount.endsWith('m') ? Number(c.amount.slice(0, -1)) : Number(c.amount) * 1000);
    if (r.cpuLimit && millis(r.cpuLimit) < millis(cpuRequest)) {
      throwInvalid(this, `${field}.cpuLimit`, r.cpuLimit.amount, `at least the CPU request (${cpuRequest.amount})`);
    }
    return {
      requests: {
        cpu: ServiceSpecTemplateSpecContainersResourcesRequests.fromString(cpuRequest.amount),
        memory: ServiceSpecTemplateSpecContainersResourcesRequests.fromString(`${mib(memoryRequest)}Mi`),
      },
      limits: {
        ...(r.cpuLimit ? { cpu: ServiceSpecTemplateSpecContainersResourcesLimits.fromString(r.cpuLimit.amount) } : {}),
        memory: ServiceSpecTemplateSpecContainersResourcesLimits.fromString(`${mib(memoryLimit)}Mi`),
      },
    };
  }

  private renderAutoscaling(a: KnativeAutoscaling): Record<string, string> {
    const out: Record<string, string> = {};
    const count = (name: string, key: string, value: number | undefined): void => {
      if (value !== undefined) {
        checkInteger(this, `autoscaling.${name}`, value, 0, 100_000);
        out[`${AUTOSCALING}/${key}`] = String(value);
      }
    };
    count('minScale', 'min-scale', a.minScale);
    count('maxScale', 'max-scale', a.maxScale);
    count('initialScale', 'initial-scale', a.initialScale);
    if (a.minScale !== undefined && a.maxScale !== undefined && a.maxScale !== 0 && a.minScale > a.maxScale) {
      throwInvalid(this, 'autoscaling.minScale', a.minScale, `at most maxScale (${a.maxScale})`);
    }
    const metric = a.metric;
    if (metric !== undefined) {
      out[`${AUTOSCALING}/metric`] = metric;
      if (metric === KnativeAutoscalingMetric.CPU || metric === KnativeAutoscalingMetric.MEMORY) {
        // The KPA class only knows concurrency and rps: CPU and memory need the HPA class, which never scales to 0.
        out[`${AUTOSCALING}/class`] = 'hpa.autoscaling.knative.dev';
        if (a.minScale === 0) {
          throwInvalid(this, 'autoscaling.minScale', 0, `at least 1 with metric ${metric} (the HPA autoscaler class cannot scale to zero)`);
        }
      }
    }
    if (a.target !== undefined) {
      if (!(a.target >= 0.01) || !Number.isFinite(a.target)) {
        throwInvalid(this, 'autoscaling.target', a.target, 'a number of at least 0.01');
      }
      out[`${AUTOSCALING}/target`] = String(a.target);
    }
    if (a.targetUtilizationPercentage !== undefined) {
      const p = a.targetUtilizationPercentage;
      if (!(p >= 1 && p <= 100)) {
        throwInvalid(this, 'autoscaling.targetUtilizationPercentage', p, 'a number from 1 to 100');
      }
      out[`${AUTOSCALING}/target-utilization-percentage`] = String(p);
    }
    if (a.scaleDownDelay !== undefined) {
      const s = wholeSeconds(this, 'autoscaling.scaleDownDelay', a.scaleDownDelay, 0, MAX_SCALE_DOWN_DELAY_SECONDS);
      out[`${AUTOSCALING}/scale-down-delay`] = `${s}s`;
    }
    if (a.window !== undefined) {
      const s = wholeSeconds(this, 'autoscaling.window', a.window, MIN_WINDOW_SECONDS, MAX_WINDOW_SECONDS);
      out[`${AUTOSCALING}/window`] = `${s}s`;
    }
    return out;
  }

  private renderTraffic(targets: readonly KnativeTrafficTarget[]): ServiceSpecTraffic[] {
    if (targets.length === 0) {
      throwInvalid(this, 'traffic', targets, 'at least one traffic target, or no traffic prop (all traffic to the latest revision)');
    }
    const tags = new Set<string>();
    let sum = 0;
    const rendered = targets.map((t, i) => {
      const field = `traffic[${i}]`;
      const latest = t.latestRevision === true;
      if (latest === (t.revisionName !== undefined)) {
        throwInvalid(this, field, t, 'exactly one of revisionName and latestRevision: true');
      }
      if (t.revisionName !== undefined) {
        this.checkRevisionName(`${field}.revisionName`, t.revisionName);
      }
      checkInteger(this, `${field}.percent`, t.percent, 0, 100);
      sum += t.percent;
      if (t.tag !== undefined) {
        checkDns1035Label(this, `${field}.tag`, t.tag);
        if (tags.has(t.tag)) {
          throwInvalid(this, `${field}.tag`, t.tag, 'a tag unique among the traffic targets');
        }
        tags.add(t.tag);
        // The tag becomes the first label of its host name, `<tag>-<service>`.
        if (t.tag.length + 1 + this.serviceName.length > 63) {
          throwInvalid(this, `${field}.tag`, t.tag, `a tag of at most ${62 - this.serviceName.length} characters (the host label "<tag>-${this.serviceName}" is at most 63)`);
        }
      }
      return { revisionName: t.revisionName, latestRevision: latest, percent: t.percent, tag: t.tag };
    });
    if (sum !== 100) {
      throwInvalid(this, 'traffic[].percent', targets.map((t) => t.percent), 'percentages that sum to 100');
    }
    return rendered;
  }
}

/** The whole seconds of `d` (Kubernetes and Knative take seconds), checked against [min, max]. */
function wholeSeconds(scope: Construct, field: string, d: Duration, min: number, max: number): number {
  const ms = d.toMilliseconds({ integral: false });
  if (ms % 1000 !== 0 || ms / 1000 < min || ms / 1000 > max) {
    throwInvalid(scope, field, `${ms}ms`, `whole seconds from ${min} to ${max}`);
  }
  return ms / 1000;
}
