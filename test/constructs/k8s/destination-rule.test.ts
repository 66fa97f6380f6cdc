import { IstioClientTlsMode, IstioDestinationRule, IstioSubset } from '../../../constructs/k8s';
import { expectInvalid, manifest, newChart, synthValid, validationErrors, warningsOf } from './fixtures';

const HOST = 'payment-handler.orders.svc.cluster.local';

describe('IstioDestinationRule', () => {
  test('ISTIO_MUTUAL by default (the import-renamed enum), subsets from props and addSubset', () => {
    const chart = newChart();
    const rule = new IstioDestinationRule(chart, 'Rule', { host: HOST, subsets: [IstioSubset.version('v1')] });
    rule.addSubset(IstioSubset.of('v2', { 'serving.knative.dev/revision': 'payment-handler-v2' }));
    rule.addSubset(IstioSubset.version('v1'));
    const doc = manifest(synthValid(chart), 'DestinationRule', 'payment-handler');
    expect(doc.spec).toEqual({
      host: HOST,
      trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } },
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { 'serving.knative.dev/revision': 'payment-handler-v2' } },
      ],
    });
    expect(rule.findSubset('v2')?.labels).toEqual({ 'serving.knative.dev/revision': 'payment-handler-v2' });
    expect(warningsOf(chart)).toEqual([]);
  });

  test('turning TLS off is a warned opt-in', () => {
    const chart = newChart();
    new IstioDestinationRule(chart, 'Rule', { host: 'legacy.example.com', ruleName: 'legacy', tlsMode: IstioClientTlsMode.DISABLE });
    expect(manifest(synthValid(chart), 'DestinationRule', 'legacy').spec.trafficPolicy.tls.mode).toBe('DISABLE');
    expect(warningsOf(chart).join()).toMatch(/plain text/);
  });

  describe('fails when', () => {
    test('fails when the host is a short name', () => {
      expectInvalid(() => new IstioDestinationRule(newChart(), 'Rule', { host: 'payment-handler' }), /host/);
      expectInvalid(() => new IstioDestinationRule(newChart(), 'Rule', { host: '*.example.com' }), /host/);
    });

    test('fails when a subset has no labels, a bad name, or other labels under the same name', () => {
      const rule = new IstioDestinationRule(newChart(), 'Rule', { host: HOST, subsets: [IstioSubset.version('v1')] });
      expectInvalid(() => rule.addSubset(IstioSubset.of('v2', {})), /labels/);
      expectInvalid(() => rule.addSubset(IstioSubset.of('V2', { version: 'v2' })), /name/);
      expectInvalid(() => rule.addSubset(IstioSubset.of('v1', { version: 'one' })), /labels/);
    });

    test('fails when two rules in the app define the same host in one namespace', () => {
      const chart = newChart();
      new IstioDestinationRule(chart, 'A', { host: HOST });
      new IstioDestinationRule(chart, 'B', { host: HOST, ruleName: 'other' });
      new IstioDestinationRule(chart, 'C', { host: HOST, namespace: 'elsewhere' });
      const errors = validationErrors(chart);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/Test\/A: host: .*also defined by Test\/B/);
    });
  });
});
