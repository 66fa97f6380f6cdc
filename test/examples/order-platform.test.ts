import { Testing } from 'cdk8s';
import {
  OrderPlatformChart,
  ORDERS_HOST,
  PAYMENT_CANARY_WEIGHT,
  orderPlatformMesh,
} from '../../examples/order-platform/order-platform';
import { expectValidManifests } from '../harness/kubernetes';
import { type Manifest } from '../constructs/k8s/fixtures';

function synthPlatform(): Manifest[] {
  const app = Testing.app();
  const chart = new OrderPlatformChart(app, 'OrderPlatform', { mesh: orderPlatformMesh(app) });
  // What app.synth() checks before writing: every construct's validations.
  const errors = app.node.findAll().flatMap((c) => c.node.validate());
  expect(errors).toEqual([]);
  return Testing.synth(chart);
}

describe('order platform example', () => {
  const docs = synthPlatform();
  const byKind = (kind: string): Manifest[] => docs.filter((d) => d.kind === kind);
  const names = (list: Manifest[]): string[] => list.map((d) => String(d.metadata.name));

  test('every manifest is valid against the official CRD schemas and the Kubernetes models', () => {
    expectValidManifests(docs);
  });

  test('matches the snapshot', () => {
    expect(docs).toMatchSnapshot();
  });

  test('three Knative Services with the Istio sidecar label, each running as its own mesh identity', () => {
    const services = byKind('Service').filter((d) => d.apiVersion === 'serving.knative.dev/v1');
    expect(names(services)).toEqual(['order-processor', 'payment-handler', 'notification-service']);
    for (const s of services) {
      expect(s.metadata.namespace).toBe('orders');
      expect(s.spec.template.metadata.labels['sidecar.istio.io/inject']).toBe('true');
      expect(s.spec.template.spec.serviceAccountName).toBe(s.metadata.name);
      expect(names(byKind('ServiceAccount'))).toContain(s.metadata.name);
    }
    // One service account per identity: MeshAuthorization emits them, the services only reference them.
    const accounts = names(byKind('ServiceAccount'));
    expect(new Set(accounts).size).toBe(accounts.length);
  });

  test('STRICT mTLS for the namespace and deny-by-default authorization', () => {
    expect(byKind('PeerAuthentication').map((p) => [String(p.metadata.name), String(p.spec.mtls.mode)])).toEqual([['default', 'STRICT']]);
    expect(byKind('AuthorizationPolicy').find((p) => p.metadata.name === 'allow-nothing')?.spec).toEqual({});
  });

  test('payment-handler canary: Knative splits mesh calls, the gateway route splits edge calls, mobile clients get v2', () => {
    const payments = docs.find((d) => d.kind === 'Service' && d.metadata.name === 'payment-handler');
    expect((payments.spec.traffic as Manifest[]).map((t) => Number(t.percent))).toEqual([100 - PAYMENT_CANARY_WEIGHT, PAYMENT_CANARY_WEIGHT]);
    const [vs] = byKind('VirtualService');
    expect(vs.spec.hosts).toEqual([ORDERS_HOST]);
    expect(vs.spec.gateways).toEqual(['orders/orders-gateway']);
    expect((vs.spec.http as Manifest[]).map((r) => String(r.name))).toEqual(['payments-header', 'payments-split', 'orders']);
    expect(vs.spec.http[0].match[0].headers['user-agent']).toEqual({ regex: '.*[Mm]obile.*' });
    expect((vs.spec.http[1].route as Manifest[]).map((r) => [String(r.destination.host), Number(r.weight)])).toEqual([
      ['payment-handler-v1.orders.svc.cluster.local', 100 - PAYMENT_CANARY_WEIGHT],
      ['payment-handler-v2.orders.svc.cluster.local', PAYMENT_CANARY_WEIGHT],
    ]);
  });

  test('the gateway serves the API host over HTTPS and redirects HTTP', () => {
    const [gateway] = byKind('Gateway');
    expect((gateway.spec.servers as Manifest[]).map((s): unknown[] => [s.port.protocol, s.hosts, s.tls])).toEqual([
      ['HTTPS', [ORDERS_HOST], { mode: 'SIMPLE', credentialName: 'orders-api-tls', minProtocolVersion: 'TLSV1_2' }],
      ['HTTP', [ORDERS_HOST], { httpsRedirect: true }],
    ]);
  });
});
