import { parse } from 'yaml';
import { OtelCollector, OtelExporter } from '../../../constructs/k8s/otel-collector';
import { manifest, meshError, NAMESPACE, newChart, synthValid, warningsOf } from './fixtures';

function collector(props: ConstructorParameters<typeof OtelCollector>[2] = {}): { docs: ReturnType<typeof synthValid>; config: ReturnType<typeof parse>; collector: OtelCollector; warnings: string[] } {
  const chart = newChart();
  const c = new OtelCollector(chart, 'Collector', props);
  const docs = synthValid(chart);
  const configMap = docs.find((d) => d.kind === 'ConfigMap');
  // The collector reads its config as YAML: parse it the same way.
  return { docs, config: parse(configMap.data['config.yaml'] as string), collector: c, warnings: warningsOf(chart) };
}

describe('OtelCollector', () => {
  test('a Deployment, ConfigMap and Service, every manifest valid', () => {
    const { docs, collector: c } = collector();
    expect(docs.map((d) => `${d.kind} ${d.metadata.name}`).sort()).toEqual(['ConfigMap otel-collector', 'Deployment otel-collector', 'Service otel-collector']);
    expect(c.serviceHost).toBe(`otel-collector.${NAMESPACE}.svc.cluster.local`);
    expect(c.otlpGrpcPort).toBe(4317);
  });

  test('the container is pinned, limited, probed on the health_check port, non-root with a read-only root', () => {
    const { docs } = collector();
    const pod = manifest(docs, 'Deployment', 'otel-collector').spec.template;
    const [container] = pod.spec.containers;
    expect(container.image).toBe('otel/opentelemetry-collector-contrib:0.139.0');
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '512Mi' } });
    for (const probe of [container.livenessProbe, container.readinessProbe]) {
      expect(probe.httpGet).toMatchObject({ path: '/', port: 13133 });
    }
    expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, runAsUser: 10001 });
    expect(container.args).toEqual(['--config=/conf/config.yaml']);
    expect(container.volumeMounts[0].mountPath).toBe('/conf');
    // Envoy exports spans outside mTLS: a sidecar under STRICT would refuse them.
    expect(pod.metadata.labels['sidecar.istio.io/inject']).toBe('false');
  });

  test('the Service exposes OTLP gRPC and HTTP, named so Istio knows each protocol', () => {
    const service = manifest(collector().docs, 'Service', 'otel-collector');
    expect(service.spec.ports).toEqual([
      { name: 'grpc-otlp', port: 4317, targetPort: 4317 },
      { name: 'http-otlp', port: 4318, targetPort: 4318 },
    ]);
  });

  test('the config: OTLP receivers, memory_limiter then batch, the exporters given, health_check on', () => {
    const { config } = collector({ exporters: [OtelExporter.otlp('tempo.observability.svc.cluster.local:4317'), OtelExporter.otlp('backup.example.com:443'), OtelExporter.debug()] });
    expect(config.receivers.otlp.protocols).toEqual({ grpc: { endpoint: '0.0.0.0:4317' }, http: { endpoint: '0.0.0.0:4318' } });
    expect(config.extensions.health_check.endpoint).toBe('0.0.0.0:13133');
    expect(config.exporters).toEqual({
      'otlp': { endpoint: 'tempo.observability.svc.cluster.local:4317', tls: { insecure: false } },
      'otlp/2': { endpoint: 'backup.example.com:443', tls: { insecure: false } },
      'debug': { verbosity: 'basic' },
    });
    for (const signal of ['traces', 'metrics', 'logs']) {
      expect(config.service.pipelines[signal]).toEqual({ receivers: ['otlp'], processors: ['memory_limiter', 'batch'], exporters: ['otlp', 'otlp/2', 'debug'] });
    }
    expect(config.service.extensions).toEqual(['health_check']);
  });

  test('an exporter without TLS is a warned opt-in', () => {
    const { config, warnings } = collector({ exporters: [OtelExporter.otlpHttp('http://jaeger.observability:4318', { insecure: true })] });
    expect(config.exporters.otlphttp.tls).toEqual({ insecure: true });
    expect(warnings).toEqual([expect.stringMatching(/otlphttp sends telemetry to http:\/\/jaeger.observability:4318 without TLS .*\[ack: lambda-mesh:k8s-otel-insecure-exporter\]/)]);
    expect(collector().warnings).toEqual([]);
  });

  test('replicas, image and resources are props', () => {
    const { docs } = collector({ replicas: 2, image: 'otel/opentelemetry-collector-contrib@sha256:' + 'a'.repeat(64), resources: { cpuRequestMillis: 250, cpuLimitMillis: 2000, memoryMebibytes: 1024 } });
    const deployment = manifest(docs, 'Deployment', 'otel-collector');
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.template.spec.containers[0].resources.limits).toEqual({ cpu: '2000m', memory: '1024Mi' });
  });

  test.each([['otel/opentelemetry-collector-contrib'], ['otel/opentelemetry-collector-contrib:latest'], ['bad image:1']])('fails when the image %p is not pinned', (image) => {
    expect(meshError(() => new OtelCollector(newChart(), 'C', { image })).field).toBe('image');
  });

  test('fails when an exporter endpoint is malformed, or plain HTTP without insecure', () => {
    expect(meshError(() => new OtelCollector(newChart(), 'C', { exporters: [OtelExporter.otlp('https://tempo:4317')] })).field).toBe('exporters[0].endpoint');
    expect(meshError(() => new OtelCollector(newChart(), 'C', { exporters: [OtelExporter.otlpHttp('http://jaeger:4318')] })).expected).toMatch(/https:\/\//);
  });

  test('fails when there is no exporter, or resources are out of range', () => {
    expect(meshError(() => new OtelCollector(newChart(), 'C', { exporters: [] })).field).toBe('exporters');
    expect(meshError(() => new OtelCollector(newChart(), 'C', { resources: { cpuRequestMillis: 500, cpuLimitMillis: 100 } })).field).toBe('resources.cpuLimitMillis');
    expect(meshError(() => new OtelCollector(newChart(), 'C', { replicas: 0 })).field).toBe('replicas');
  });
});
