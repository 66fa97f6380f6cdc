import { MeshTelemetry } from '../../../constructs/k8s/telemetry';
import { meshError, NAMESPACE, newChart, synthValid } from './fixtures';

describe('MeshTelemetry', () => {
  test('defaults: Envoy access logs and 1% tracing to the otel-tracing provider, for the whole namespace', () => {
    const chart = newChart();
    new MeshTelemetry(chart, 'Telemetry');
    expect(synthValid(chart)).toEqual([
      {
        apiVersion: 'telemetry.istio.io/v1',
        kind: 'Telemetry',
        metadata: { name: 'mesh-telemetry', namespace: NAMESPACE },
        spec: {
          accessLogging: [{ providers: [{ name: 'envoy' }] }],
          tracing: [{ providers: [{ name: 'otel-tracing' }], randomSamplingPercentage: 1 }],
        },
      },
    ]);
  });

  test('sampling, providers, a log filter and a selector are props', () => {
    const chart = newChart();
    new MeshTelemetry(chart, 'Namespace', { samplingPercentage: 0 });
    new MeshTelemetry(chart, 'Orders', {
      name: 'orders-telemetry',
      selector: { 'serving.knative.dev/service': 'orders' },
      samplingPercentage: 12.5,
      tracingProvider: 'tempo',
      accessLogProviders: ['envoy', 'otel-logs'],
      accessLogFilter: 'response.code >= 400',
    });
    const [whole, orders] = synthValid(chart);
    expect(whole.spec.tracing[0].randomSamplingPercentage).toBe(0);
    expect(orders.spec).toEqual({
      selector: { matchLabels: { 'serving.knative.dev/service': 'orders' } },
      accessLogging: [{ providers: [{ name: 'envoy' }, { name: 'otel-logs' }], filter: { expression: 'response.code >= 400' } }],
      tracing: [{ providers: [{ name: 'tempo' }], randomSamplingPercentage: 12.5 }],
    });
  });

  test.each([[-1], [100.01], [Number.NaN], [Number.POSITIVE_INFINITY]])('fails when the sampling percentage is %p (outside 0-100)', (samplingPercentage) => {
    const e = meshError(() => new MeshTelemetry(newChart(), 'Telemetry', { samplingPercentage }));
    expect(e.field).toBe('samplingPercentage');
    expect(e.expected).toMatch(/from 0 to 100/);
  });

  test('fails when a second Telemetry without selector targets the same namespace', () => {
    const chart = newChart();
    new MeshTelemetry(chart, 'First');
    const e = meshError(() => new MeshTelemetry(chart, 'Second', { name: 'second' }));
    expect(e.expected).toMatch(/one selector-less Telemetry per namespace/);
  });

  test('fails when a provider name is malformed, there is no access log provider, or the filter is empty', () => {
    expect(meshError(() => new MeshTelemetry(newChart(), 'T', { tracingProvider: 'otel tracing' })).field).toBe('tracingProvider');
    expect(meshError(() => new MeshTelemetry(newChart(), 'T', { accessLogProviders: [] })).field).toBe('accessLogProviders');
    expect(meshError(() => new MeshTelemetry(newChart(), 'T', { accessLogFilter: ' ' })).field).toBe('accessLogFilter');
  });

  test('fails when the selector is empty', () => {
    expect(meshError(() => new MeshTelemetry(newChart(), 'T', { selector: {} })).field).toBe('selector');
  });
});
