import { Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { Telemetry } from './imports/istio-telemetry.istio.io';
import { checkDns1123Label, checkStringMap, resolveNamespace } from './private/validation';

/**
 * The name lambda-mesh gives the OpenTelemetry tracing provider it defines in istiod's mesh config
 * (`meshConfig.extensionProviders`); a Telemetry resource refers to a provider by this name.
 *
 * @see https://istio.io/latest/docs/tasks/observability/distributed-tracing/opentelemetry/
 */
export const OTEL_TRACING_PROVIDER = 'otel-tracing';

/**
 * The access log provider every Istio installation has: Envoy's access log to the proxy's standard output.
 *
 * @see https://istio.io/latest/docs/tasks/observability/logs/access-log/
 */
export const ENVOY_ACCESS_LOG_PROVIDER = 'envoy';

/**
 * Properties of a {@link MeshTelemetry}.
 */
export interface MeshTelemetryProps {
  /**
   * The namespace the Telemetry applies to.
   * @default - the chart's namespace
   */
  readonly namespace?: string;
  /**
   * The Telemetry's name.
   * @default 'mesh-telemetry'
   */
  readonly name?: string;
  /**
   * Restrict it to the workloads with these labels. Istio takes one selector-less Telemetry per namespace.
   * @default - every workload of the namespace
   */
  readonly selector?: { [key: string]: string };
  /**
   * The tracing provider, by its name in istiod's `meshConfig.extensionProviders` (`IstioInstall` defines
   * `otel-tracing` when given a collector).
   * @default 'otel-tracing'
   */
  readonly tracingProvider?: string;
  /**
   * The share of requests traced when the caller made no sampling decision, in percent (0 to 100).
   * @default 1
   */
  readonly samplingPercentage?: number;
  /**
   * The access log providers, by name.
   * @default ['envoy'] - Envoy's access log on the proxy's standard output
   */
  readonly accessLogProviders?: string[];
  /**
   * A CEL expression selecting the requests to log, e.g. `response.code >= 400`.
   * @default - every request
   */
  readonly accessLogFilter?: string;
}

/**
 * Defines Istio telemetry for a namespace: access logging and tracing with a sampling rate, sent to named providers.
 *
 * @see https://istio.io/latest/docs/reference/config/telemetry/
 */
export class MeshTelemetry extends Construct {
  /** The namespace it applies to. */
  public readonly namespace: string;
  /** The tracing provider's name. */
  public readonly tracingProvider: string;
  /** The sampling percentage. */
  public readonly samplingPercentage: number;
  /** Whether it applies to the whole namespace (no selector). */
  public readonly namespaceWide: boolean;

  constructor(scope: Construct, id: string, props: MeshTelemetryProps = {}) {
    super(scope, id);
    this.namespace = resolveNamespace(this, props.namespace);
    const name = props.name ?? 'mesh-telemetry';
    checkDns1123Label(this, 'name', name);
    this.samplingPercentage = props.samplingPercentage ?? 1;
    if (typeof this.samplingPercentage !== 'number' || !Number.isFinite(this.samplingPercentage) || this.samplingPercentage < 0 || this.samplingPercentage > 100) {
      throwInvalid(this, 'samplingPercentage', props.samplingPercentage, 'a percentage from 0 to 100 (e.g. 1 for one request in a hundred)');
    }
    this.tracingProvider = props.tracingProvider ?? OTEL_TRACING_PROVIDER;
    checkProviderName(this, 'tracingProvider', this.tracingProvider);
    const accessLogProviders = props.accessLogProviders ?? [ENVOY_ACCESS_LOG_PROVIDER];
    if (accessLogProviders.length === 0) {
      throwInvalid(this, 'accessLogProviders', accessLogProviders, 'at least one provider (access logs are how denied requests are investigated)');
    }
    accessLogProviders.forEach((p, i) => checkProviderName(this, `accessLogProviders[${i}]`, p));
    if (props.accessLogFilter !== undefined && (typeof props.accessLogFilter !== 'string' || props.accessLogFilter.trim() === '')) {
      throwInvalid(this, 'accessLogFilter', props.accessLogFilter, 'a non-empty CEL expression, e.g. response.code >= 400');
    }
    if (props.selector !== undefined) {
      if (Object.keys(props.selector).length === 0) {
        throwInvalid(this, 'selector', props.selector, 'a non-empty selector, or none for the whole namespace');
      }
      checkStringMap(this, 'selector', props.selector, true);
    }
    this.namespaceWide = props.selector === undefined;
    if (this.namespaceWide) {
      const other = this.node.root.node.findAll().find((c) => c !== this && c instanceof MeshTelemetry && c.namespaceWide && c.namespace === this.namespace);
      if (other) {
        throwInvalid(this, 'selector', undefined, `a selector: ${other.node.path} already applies to the whole namespace '${this.namespace}', and Istio takes one selector-less Telemetry per namespace`);
      }
    }

    new Telemetry(this, 'Resource', {
      metadata: { name, namespace: this.namespace },
      spec: {
        ...(props.selector ? { selector: { matchLabels: { ...props.selector } } } : {}),
        accessLogging: [{
          providers: accessLogProviders.map((p) => ({ name: p })),
          ...(props.accessLogFilter !== undefined ? { filter: { expression: props.accessLogFilter } } : {}),
        }],
        tracing: [{ providers: [{ name: this.tracingProvider }], randomSamplingPercentage: this.samplingPercentage }],
      },
    });
  }
}

function checkProviderName(scope: Construct, field: string, name: string): void {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][-A-Za-z0-9_.]*$/.test(name)) {
    throwInvalid(scope, field, name, "a provider name from istiod's meshConfig (letters, digits, '-', '_', '.'), e.g. otel-tracing or envoy");
  }
}
