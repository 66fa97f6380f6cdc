import { Annotations } from 'aws-cdk-lib';
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { checkDns1035Label, checkInteger, resolveNamespace, serviceFqdn } from './private/validation';

/**
 * The collector image lambda-mesh runs by default: the contrib distribution, which has the `health_check`
 * extension the probes use. Pinned, so a synth never changes what runs.
 *
 * @see https://github.com/open-telemetry/opentelemetry-collector-releases/releases
 */
export const DEFAULT_OTEL_COLLECTOR_IMAGE = 'otel/opentelemetry-collector-contrib:0.139.0';

/** The OTLP/gRPC port. */
export const OTLP_GRPC_PORT = 4317;
/** The OTLP/HTTP port. */
export const OTLP_HTTP_PORT = 4318;
/** The `health_check` extension's port, which the probes call. */
export const HEALTH_CHECK_PORT = 13133;

/**
 * Options of an OTLP exporter.
 */
export interface OtlpExporterOptions {
  /**
   * Send without TLS. Only for a backend inside the cluster that cannot terminate TLS; it raises a warning.
   * @default false
   */
  readonly insecure?: boolean;
}

/**
 * Defines where the collector sends what it receives: an OTLP backend, or its own log for debugging.
 *
 * @see https://opentelemetry.io/docs/collector/configuration/#exporters
 */
export class OtelExporter {
  /**
   * Sends over OTLP/gRPC to `endpoint` (`host:port`), with TLS unless `insecure`.
   *
   * @see https://github.com/open-telemetry/opentelemetry-collector/tree/main/exporter/otlpexporter
   */
  public static otlp(endpoint: string, options: OtlpExporterOptions = {}): OtelExporter {
    return new OtelExporter('otlp', endpoint, { endpoint, tls: { insecure: options.insecure ?? false } }, options.insecure ?? false);
  }

  /**
   * Sends over OTLP/HTTP to `endpoint` (an `https://` URL; `http://` only with `insecure`).
   *
   * @see https://github.com/open-telemetry/opentelemetry-collector/tree/main/exporter/otlphttpexporter
   */
  public static otlpHttp(endpoint: string, options: OtlpExporterOptions = {}): OtelExporter {
    return new OtelExporter('otlphttp', endpoint, { endpoint, tls: { insecure: options.insecure ?? false } }, options.insecure ?? false);
  }

  /**
   * Writes what it receives to the collector's log (`basic` verbosity: one line per batch).
   *
   * @see https://github.com/open-telemetry/opentelemetry-collector/tree/main/exporter/debugexporter
   */
  public static debug(): OtelExporter {
    return new OtelExporter('debug', undefined, { verbosity: 'basic' }, false);
  }

  /** The exporter type (`otlp`, `otlphttp`, `debug`). */
  public readonly type: string;
  /**
   * The endpoint it sends to.
   * @default - none (the debug exporter)
   */
  public readonly endpoint?: string;
  /** Whether it sends without TLS. */
  public readonly insecure: boolean;
  private readonly settings: Record<string, unknown>;

  private constructor(type: string, endpoint: string | undefined, settings: Record<string, unknown>, insecure: boolean) {
    this.type = type;
    this.endpoint = endpoint;
    this.settings = settings;
    this.insecure = insecure;
  }

  /** @internal The exporter's section of the collector config. */
  public _settings(): Record<string, unknown> {
    return { ...this.settings };
  }
}

/**
 * Compute resources of the collector container.
 */
export interface OtelCollectorResources {
  /**
   * CPU request, in millicores.
   * @default 100
   */
  readonly cpuRequestMillis?: number;
  /**
   * CPU limit, in millicores.
   * @default 1000
   */
  readonly cpuLimitMillis?: number;
  /**
   * Memory request and limit, in MiB (equal, so the memory_limiter's percentages refer to a fixed amount).
   * @default 512
   */
  readonly memoryMebibytes?: number;
}

/**
 * Properties of an {@link OtelCollector}.
 */
export interface OtelCollectorProps {
  /**
   * The namespace it runs in.
   * @default - the chart's namespace
   */
  readonly namespace?: string;
  /**
   * The name of its Deployment, ConfigMap and Service (a DNS-1035 label).
   * @default 'otel-collector'
   */
  readonly name?: string;
  /**
   * The collector image, pinned by version or digest. It must contain the otlp receiver, the batch and
   * memory_limiter processors, the health_check extension and the exporters used.
   * @default 'otel/opentelemetry-collector-contrib:0.139.0'
   */
  readonly image?: string;
  /**
   * Where the collector sends traces, metrics and logs.
   * @default [OtelExporter.debug()] - the collector's own log
   */
  readonly exporters?: OtelExporter[];
  /**
   * How many collector pods.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Compute resources.
   * @default - 100m CPU requested, 1 CPU limit, 512 MiB memory
   */
  readonly resources?: OtelCollectorResources;
}

/**
 * Defines an OpenTelemetry Collector: a Deployment (resource limits, liveness and readiness probes on the
 * health_check extension), its config in a ConfigMap (OTLP gRPC and HTTP receivers, memory_limiter and batch
 * processors, the exporters given) and a Service on 4317 (gRPC) and 4318 (HTTP).
 *
 * The collector runs without an Istio sidecar: Envoy sends spans from the proxy itself, outside the mesh's
 * mTLS, so a sidecar under STRICT mTLS would refuse them.
 *
 * @see https://opentelemetry.io/docs/collector/configuration/
 */
export class OtelCollector extends Construct {
  /** The namespace it runs in. */
  public readonly namespace: string;
  /** The Service's name. */
  public readonly serviceName: string;
  /** The Service's cluster-local host name, `<name>.<namespace>.svc.cluster.local`. */
  public readonly serviceHost: string;
  /** The OTLP/gRPC port, which Istio's OpenTelemetry provider uses. */
  public readonly otlpGrpcPort: number = OTLP_GRPC_PORT;
  /** The Deployment. */
  public readonly deployment: kplus.Deployment;

  constructor(scope: Construct, id: string, props: OtelCollectorProps = {}) {
    super(scope, id);
    this.namespace = resolveNamespace(this, props.namespace);
    this.serviceName = props.name ?? 'otel-collector';
    checkDns1035Label(this, 'name', this.serviceName);
    this.serviceHost = serviceFqdn(this.serviceName, this.namespace);
    const image = props.image ?? DEFAULT_OTEL_COLLECTOR_IMAGE;
    if (typeof image !== 'string' || !/^[^\s:@]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/.test(image) || !/(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/.test(image) || image.endsWith(':latest')) {
      throwInvalid(this, 'image', image, 'an image pinned by a version tag or a sha256 digest (not :latest), e.g. otel/opentelemetry-collector-contrib:0.139.0');
    }
    const replicas = props.replicas ?? 1;
    checkInteger(this, 'replicas', replicas, 1, 100);
    const cpuRequest = props.resources?.cpuRequestMillis ?? 100;
    const cpuLimit = props.resources?.cpuLimitMillis ?? 1000;
    const memory = props.resources?.memoryMebibytes ?? 512;
    checkInteger(this, 'resources.cpuRequestMillis', cpuRequest, 10, 64000);
    checkInteger(this, 'resources.cpuLimitMillis', cpuLimit, cpuRequest, 64000);
    checkInteger(this, 'resources.memoryMebibytes', memory, 64, 65536);

    const exporters = props.exporters ?? [OtelExporter.debug()];
    if (exporters.length === 0) {
      throwInvalid(this, 'exporters', exporters, 'at least one exporter (the collector refuses a pipeline without one)');
    }
    const exporterConfig: Record<string, Record<string, unknown>> = {};
    const counts = new Map<string, number>();
    exporters.forEach((e, i) => {
      if (!(e instanceof OtelExporter)) {
        throwInvalid(this, `exporters[${i}]`, e, 'an OtelExporter (OtelExporter.otlp(), .otlpHttp(), .debug())');
      }
      if (e.endpoint !== undefined) {
        checkEndpoint(this, `exporters[${i}]`, e);
      }
      // Several exporters of one type need distinct names: `otlp`, `otlp/2`, ...
      const n = (counts.get(e.type) ?? 0) + 1;
      counts.set(e.type, n);
      exporterConfig[n === 1 ? e.type : `${e.type}/${n}`] = e._settings();
      if (e.insecure) {
        Annotations.of(this).addWarningV2('lambda-mesh:k8s-otel-insecure-exporter', `exporter ${e.type} sends telemetry to ${e.endpoint} without TLS (insecure: true)`);
      }
    });

    const pipeline = { receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: Object.keys(exporterConfig) };
    const config = {
      extensions: { health_check: { endpoint: `0.0.0.0:${HEALTH_CHECK_PORT}` } },
      receivers: {
        otlp: { protocols: { grpc: { endpoint: `0.0.0.0:${OTLP_GRPC_PORT}` }, http: { endpoint: `0.0.0.0:${OTLP_HTTP_PORT}` } } },
      },
      // memory_limiter first: it refuses data before the process runs out of memory; batch last, before export.
      processors: { memory_limiter: { check_interval: '1s', limit_percentage: 80, spike_limit_percentage: 20 }, batch: {} },
      exporters: exporterConfig,
      service: { extensions: ['health_check'], pipelines: { traces: pipeline, metrics: pipeline, logs: pipeline } },
    };

    const configMap = new kplus.ConfigMap(this, 'Config', {
      metadata: { name: this.serviceName, namespace: this.namespace },
      // JSON is YAML: the collector reads it as its YAML config, and the library needs no YAML writer.
      data: { 'config.yaml': JSON.stringify(config, undefined, 2) },
    });

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: this.serviceName, namespace: this.namespace },
      replicas,
      podMetadata: { labels: { 'app.kubernetes.io/name': 'opentelemetry-collector', 'sidecar.istio.io/inject': 'false' } },
      securityContext: { ensureNonRoot: true, user: 10001, group: 10001 },
    });
    const container = this.deployment.addContainer({
      name: 'otel-collector',
      image,
      args: ['--config=/conf/config.yaml'],
      ports: [
        { number: OTLP_GRPC_PORT, name: 'otlp-grpc' },
        { number: OTLP_HTTP_PORT, name: 'otlp-http' },
        { number: HEALTH_CHECK_PORT, name: 'health' },
      ],
      resources: {
        cpu: { request: kplus.Cpu.millis(cpuRequest), limit: kplus.Cpu.millis(cpuLimit) },
        memory: { request: Size.mebibytes(memory), limit: Size.mebibytes(memory) },
      },
      liveness: kplus.Probe.fromHttpGet('/', { port: HEALTH_CHECK_PORT }),
      readiness: kplus.Probe.fromHttpGet('/', { port: HEALTH_CHECK_PORT }),
      securityContext: { ensureNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, user: 10001, group: 10001 },
    });
    container.mount('/conf', kplus.Volume.fromConfigMap(this, 'ConfigVolume', configMap));

    // Port names tell Istio the protocol of each port (grpc-*, http-*).
    new kplus.Service(this, 'Service', {
      metadata: { name: this.serviceName, namespace: this.namespace },
      selector: this.deployment,
      ports: [
        { name: 'grpc-otlp', port: OTLP_GRPC_PORT, targetPort: OTLP_GRPC_PORT },
        { name: 'http-otlp', port: OTLP_HTTP_PORT, targetPort: OTLP_HTTP_PORT },
      ],
    });
  }
}

function checkEndpoint(scope: Construct, field: string, e: OtelExporter): void {
  const endpoint = e.endpoint ?? '';
  if (e.type === 'otlphttp') {
    const ok = /^https:\/\/[^\s/]+(\/\S*)?$/.test(endpoint) || (e.insecure && /^http:\/\/[^\s/]+(\/\S*)?$/.test(endpoint));
    if (!ok) {
      throwInvalid(scope, `${field}.endpoint`, endpoint, 'an https:// URL (http:// only with insecure: true), e.g. https://otlp.example.com:4318');
    }
  } else if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(endpoint) || Number(endpoint.split(':')[1]) < 1 || Number(endpoint.split(':')[1]) > 65535) {
    throwInvalid(scope, `${field}.endpoint`, endpoint, 'host:port, e.g. tempo.observability.svc.cluster.local:4317');
  }
}
