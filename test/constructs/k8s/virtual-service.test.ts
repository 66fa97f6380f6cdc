import { Duration } from 'cdk8s';
import {
  IstioDestination,
  IstioDestinationRule,
  IstioGateway,
  IstioStringMatch,
  IstioSubset,
  IstioVirtualService,
  type IstioVirtualServiceProps,
  KnativeService,
} from '../../../constructs/k8s';
import { expectInvalid, type Manifest, manifest, newChart, synthValid, validationErrors } from './fixtures';

const HOST = 'payment-handler.orders.svc.cluster.local';
const v1 = IstioDestination.version(HOST, 'v1');
const v2 = IstioDestination.version(HOST, 'v2');

function virtualService(props: Partial<IstioVirtualServiceProps> = {}) {
  const chart = newChart();
  const vs = new IstioVirtualService(chart, 'PaymentHandler', { hosts: [HOST], ...props });
  return { chart, vs };
}

describe('IstioVirtualService', () => {
  test('canary: header rule first, then one weighted route list; a DestinationRule defines both subsets and comes first', () => {
    const { chart, vs } = virtualService();
    vs.addCanary({
      stable: v1, candidate: v2, weight: 10,
      header: { 'user-agent': IstioStringMatch.regex('.*mobile.*') },
      timeout: Duration.seconds(6),
      retries: { attempts: 3, perTryTimeout: Duration.seconds(2), retryOn: ['connect-failure', '503'] },
    });
    const docs = synthValid(chart);
    const doc = manifest(docs, 'VirtualService', 'payment-handler');
    expect(doc.spec.gateways).toBeUndefined();
    expect(doc.spec.hosts).toEqual([HOST]);
    const retries = { attempts: 3, perTryTimeout: '2s', retryOn: 'connect-failure,503' };
    expect(doc.spec.http).toEqual([
      {
        name: 'canary-header',
        match: [{ headers: { 'user-agent': { regex: '.*mobile.*' } } }],
        route: [{ destination: { host: HOST, subset: 'v2' } }],
        timeout: '6s',
        retries,
      },
      {
        name: 'canary-split',
        route: [
          { destination: { host: HOST, subset: 'v1' }, weight: 90 },
          { destination: { host: HOST, subset: 'v2' }, weight: 10 },
        ],
        timeout: '6s',
        retries,
      },
    ]);
    const rule = manifest(docs, 'DestinationRule', 'payment-handler');
    expect(rule.metadata.namespace).toBe('orders');
    expect(rule.spec.subsets).toEqual([{ name: 'v2', labels: { version: 'v2' } }, { name: 'v1', labels: { version: 'v1' } }]);
    // Make before break: the rule that defines the subsets is applied before the routes that use them.
    expect(docs.indexOf(rule)).toBeLessThan(docs.indexOf(doc));
  });

  test('matches its snapshot for a canary', () => {
    const { chart, vs } = virtualService();
    vs.addCanary({ stable: v1, candidate: v2, weight: 25 });
    expect(synthValid(chart)).toMatchSnapshot();
  });

  test('canary scoped by a match leaves room for later routes', () => {
    const { chart, vs } = virtualService();
    vs.addCanary({ name: 'payments', match: { uri: IstioStringMatch.prefix('/payments') }, stable: v1, candidate: v2, weight: 0, header: { 'x-canary': IstioStringMatch.exact('1') } });
    vs.addHttpRoute({ name: 'rest', destinations: [{ destination: v1 }] });
    const http = manifest(synthValid(chart), 'VirtualService', 'payment-handler').spec.http;
    expect((http as Manifest[]).map((r) => String(r.name))).toEqual(['payments-header', 'payments-split', 'rest']);
    expect(http[0].match).toEqual([{ uri: { prefix: '/payments' }, headers: { 'x-canary': { exact: '1' } } }]);
    expect(http[1].match).toEqual([{ uri: { prefix: '/payments' } }]);
  });

  test('bound to a gateway and the mesh; matches on every supported field', () => {
    const chart = newChart();
    const gateway = new IstioGateway(chart, 'Gw', { https: [{ hosts: ['*.example.com'], credentialName: 'tls' }] });
    const knative = IstioGateway.fromGatewayAttributes(chart, 'Knative', { gatewayName: 'knative-ingress-gateway', namespace: 'knative-serving' });
    const vs = new IstioVirtualService(chart, 'Api', {
      hosts: ['api.example.com'], gateways: [gateway, knative], meshTraffic: true,
      http: [{
        name: 'reads',
        matches: [{
          uri: IstioStringMatch.prefix('/orders'), ignoreUriCase: true, method: IstioStringMatch.exact('GET'),
          authority: IstioStringMatch.exact('api.example.com'), port: 443,
          headers: { 'x-tenant': IstioStringMatch.prefix('acme') }, withoutHeaders: { 'x-debug': IstioStringMatch.exact('1') },
          queryParams: { version: IstioStringMatch.regex('v[0-9]+') },
        }],
        destinations: [{ destination: IstioDestination.host('orders.orders.svc.cluster.local', { port: 8080 }), weight: 100 }],
      }],
    });
    vs.addHttpRoute({ destinations: [{ destination: IstioDestination.host('web.orders.svc.cluster.local') }] });
    const doc = manifest(synthValid(chart), 'VirtualService', 'api');
    expect(doc.spec.gateways).toEqual(['orders/gw', 'knative-serving/knative-ingress-gateway', 'mesh']);
    expect(doc.spec.http[0]).toEqual({
      name: 'reads',
      match: [{
        uri: { prefix: '/orders' }, ignoreUriCase: true, method: { exact: 'GET' }, authority: { exact: 'api.example.com' }, port: 443,
        headers: { 'x-tenant': { prefix: 'acme' } }, withoutHeaders: { 'x-debug': { exact: '1' } }, queryParams: { version: { regex: 'v[0-9]+' } },
      }],
      route: [{ destination: { host: 'orders.orders.svc.cluster.local', port: { number: 8080 } } }],
    });
    expect(doc.spec.http[1]).toEqual({ route: [{ destination: { host: 'web.orders.svc.cluster.local' } }] });
  });

  test('routes to Knative revisions with the headers the activator needs', () => {
    const chart = newChart();
    const svc = new KnativeService(chart, 'PaymentHandler', { containers: [{ image: 'registry.example.com/p:1' }] });
    const vs = new IstioVirtualService(chart, 'Payments', { hosts: ['payments.example.com'], gateways: [new IstioGateway(chart, 'Gw', { https: [{ hosts: ['payments.example.com'], credentialName: 'tls' }] })] });
    vs.addCanary({ stable: IstioDestination.knativeRevision(svc, 'payment-handler-v1'), candidate: IstioDestination.knativeRevision(svc, 'payment-handler-v2'), weight: 5 });
    const docs = synthValid(chart);
    expect(manifest(docs, 'VirtualService', 'payments').spec.http[0].route[1]).toEqual({
      destination: { host: 'payment-handler-v2.orders.svc.cluster.local', port: { number: 80 } },
      weight: 5,
      headers: { request: { set: { 'Knative-Serving-Namespace': 'orders', 'Knative-Serving-Revision': 'payment-handler-v2' } } },
    });
    expect(docs.filter((d) => d.kind === 'DestinationRule')).toEqual([]);
  });

  test('reuses a DestinationRule the app already has for the host; subsets of another namespace get a rule there', () => {
    const chart = newChart();
    const own = new IstioDestinationRule(chart, 'Own', { host: HOST, subsets: [IstioSubset.version('v1')] });
    const { vs } = { vs: new IstioVirtualService(chart, 'Vs', { hosts: [HOST]}) };
    vs.addCanary({ stable: v1, candidate: v2, weight: 50 });
    const other = new IstioVirtualService(chart, 'Billing', { hosts: ['billing.finance.svc.cluster.local'] });
    other.addHttpRoute({ destinations: [{ destination: IstioDestination.version('billing.finance.svc.cluster.local', 'v3') }] });
    const docs = synthValid(chart);
    expect(own.findSubset('v2')).toBeDefined();
    expect(docs.filter((d) => d.kind === 'DestinationRule').map((d) => `${d.metadata.namespace}/${d.metadata.name}`)).toEqual(['orders/payment-handler', 'finance/billing']);
  });

  describe('fails when', () => {
    test('fails when weights of a route do not sum to 100', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1, weight: 80 }, { destination: v2, weight: 10 }] }), /weight/);
    });

    test('fails when a destination of a weighted route has no weight, or the only one has a weight other than 100', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1, weight: 100 }, { destination: v2 }] }), /\[1\]\.weight/);
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1, weight: 50 }] }), /\[0\]\.weight/);
      expectInvalid(() => vs.addCanary({ stable: v1, candidate: v2, weight: 101 }), /weight/);
    });

    test('fails when a route names the same destination twice or has none', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1, weight: 50 }, { destination: IstioDestination.version(HOST, 'v1'), weight: 50 }] }), /destinations/);
      expectInvalid(() => vs.addHttpRoute({ destinations: [] }), /destinations/);
      expectInvalid(() => vs.addCanary({ stable: v1, candidate: IstioDestination.version(HOST, 'v1'), weight: 10 }), /candidate/);
    });

    test('fails when a subset is used with other labels than its DestinationRule defines', () => {
      const { vs } = virtualService();
      vs.addHttpRoute({ name: 'a', matches: [{ uri: IstioStringMatch.prefix('/a') }], destinations: [{ destination: v1 }] });
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: IstioDestination.subset(HOST, IstioSubset.of('v1', { track: 'stable' })) }] }), /labels/);
    });

    test('fails when a header match rule comes after the catch-all', () => {
      const { vs } = virtualService();
      vs.addCanary({ stable: v1, candidate: v2, weight: 10 });
      expectInvalid(() => vs.addHttpRoute({ matches: [{ headers: { 'user-agent': IstioStringMatch.regex('.*mobile.*') } }], destinations: [{ destination: v2 }] }), /http\[#1\]/);
    });

    test('fails when any route follows a match that covers every path', () => {
      const { vs } = virtualService();
      vs.addHttpRoute({ name: 'all', matches: [{ uri: IstioStringMatch.prefix('/') }], destinations: [{ destination: v1 }] });
      expectInvalid(() => vs.addHttpRoute({ name: 'late', matches: [{ uri: IstioStringMatch.prefix('/x') }], destinations: [{ destination: v2 }] }), /http\[late\]/);
    });

    test('fails when perTryTimeout x attempts exceeds the timeout', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({
        destinations: [{ destination: v1 }], timeout: Duration.seconds(5), retries: { attempts: 3, perTryTimeout: Duration.seconds(2) },
      }), /retries\.perTryTimeout/);
    });

    test('fails when retries are configured with 0 attempts, or retryOn is unknown', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1 }], retries: { attempts: 0, perTryTimeout: Duration.seconds(1) } }), /attempts/);
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1 }], retries: { attempts: 2, retryOn: ['sometimes'] } }), /retryOn/);
    });

    test('fails when a duration is under 1ms (the CRD CEL rule)', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1 }], timeout: Duration.millis(0) }), /timeout/);
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: v1 }], retries: { attempts: 1, perTryTimeout: Duration.millis(0.5) } }), /perTryTimeout/);
    });

    test('fails when a host is a short name, invalid, "*" for the mesh, or overlaps another', () => {
      expectInvalid(() => virtualService({ hosts: ['payment-handler'] }), /hosts/);
      expectInvalid(() => virtualService({ hosts: ['pay_ments.example.com'] }), /hosts/);
      expectInvalid(() => virtualService({ hosts: ['*'] }), /hosts/);
      expectInvalid(() => virtualService({ hosts: ['*.example.com', 'api.example.com'] }), /hosts/);
      expectInvalid(() => virtualService({ hosts: [] }), /hosts/);
    });

    test('fails when a destination host is a short name', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: IstioDestination.host('payment-handler') }] }), /host/);
    });

    test('fails when a header name is upper case, a pseudo-header or host', () => {
      const { vs } = virtualService();
      const route = (name: string) => ({ matches: [{ headers: { [name]: IstioStringMatch.exact('x') } }], destinations: [{ destination: v1 }] });
      expectInvalid(() => vs.addHttpRoute(route('User-Agent')), /headers/);
      expectInvalid(() => vs.addHttpRoute(route(':authority')), /headers/);
      expectInvalid(() => vs.addHttpRoute(route('host')), /headers/);
    });

    test('fails when a regex is empty, invalid or not RE2', () => {
      const { vs } = virtualService();
      const route = (re: string) => ({ matches: [{ uri: IstioStringMatch.regex(re) }], destinations: [{ destination: v1 }] });
      expectInvalid(() => vs.addHttpRoute(route('')), /uri/);
      expectInvalid(() => vs.addHttpRoute(route('(')), /uri/);
      expectInvalid(() => vs.addHttpRoute(route('/a(?!b)')), /uri/);
    });

    test('fails when the canary header is empty', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addCanary({ stable: v1, candidate: v2, weight: 10, header: {} }), /header/);
    });

    test('fails when no gateway and no mesh traffic would use the routes, or a gateway is listed twice', () => {
      expectInvalid(() => virtualService({ meshTraffic: false }), /meshTraffic/);
      const chart = newChart();
      const gw = new IstioGateway(chart, 'Gw', { http: [{ hosts: ['a.example.com'] }] });
      expectInvalid(() => new IstioVirtualService(chart, 'Vs', { hosts: ['a.example.com'], gateways: [gw, gw] }), /gateways/);
    });

    test('fails when no host is served by a bound gateway', () => {
      const chart = newChart();
      const gw = new IstioGateway(chart, 'Gw', { https: [{ hosts: ['*.example.org'], credentialName: 'tls' }] });
      const vs = new IstioVirtualService(chart, 'Vs', { hosts: ['api.example.com'], gateways: [gw] });
      vs.addHttpRoute({ destinations: [{ destination: v1 }] });
      expect(validationErrors(chart).join()).toMatch(/hosts: .*served by gateway orders\/gw/);
    });

    test('fails when the VirtualService has no route', () => {
      const { chart } = virtualService();
      expect(validationErrors(chart).join()).toMatch(/http: given \[\], expected at least one HTTP route/);
    });

    test('fails when a Knative revision is not one of the service', () => {
      const chart = newChart();
      const svc = KnativeService.fromServiceAttributes(chart, 'Svc', { serviceName: 'payment-handler', namespace: 'orders' });
      const vs = new IstioVirtualService(chart, 'Vs', { hosts: [HOST] });
      expectInvalid(() => vs.addHttpRoute({ destinations: [{ destination: IstioDestination.knativeRevision(svc, 'billing-v1') }] }), /revisionName/);
    });

    test('fails when match port or ignoreUriCase is invalid', () => {
      const { vs } = virtualService();
      expectInvalid(() => vs.addHttpRoute({ matches: [{ port: 0 }], destinations: [{ destination: v1 }] }), /port/);
      expectInvalid(() => vs.addHttpRoute({ matches: [{ ignoreUriCase: true }], destinations: [{ destination: v1 }] }), /ignoreUriCase/);
    });
  });
});
