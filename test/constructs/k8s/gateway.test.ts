import { IstioGateway, IstioGatewayTlsMode, IstioTlsVersion } from '../../../constructs/k8s';
import { expectInvalid, manifest, newChart, synthValid, validationErrors, warningsOf } from './fixtures';

describe('IstioGateway', () => {
  test('HTTPS with a credential and TLS 1.2+, plain HTTP redirecting to HTTPS', () => {
    const chart = newChart();
    const gateway = new IstioGateway(chart, 'OrdersGateway', {
      https: [{ hosts: ['api.orders.example.com'], credentialName: 'orders-tls' }],
      http: [{ hosts: ['api.orders.example.com'] }],
    });
    const doc = manifest(synthValid(chart), 'Gateway', 'orders-gateway');
    expect(doc.metadata.namespace).toBe('orders');
    expect(doc.spec).toEqual({
      selector: { istio: 'ingressgateway' },
      servers: [
        {
          port: { number: 443, name: 'https-443', protocol: 'HTTPS' },
          hosts: ['api.orders.example.com'],
          tls: { mode: 'SIMPLE', credentialName: 'orders-tls', minProtocolVersion: 'TLSV1_2' },
        },
        { port: { number: 80, name: 'http-80', protocol: 'HTTP' }, hosts: ['api.orders.example.com'], tls: { httpsRedirect: true } },
      ],
    });
    expect(gateway.gatewayReference).toBe('orders/orders-gateway');
    expect(gateway.servedHosts).toEqual(['api.orders.example.com', 'api.orders.example.com']);
    expect(warningsOf(chart)).toEqual([]);
  });

  test('servers added later, MUTUAL TLS 1.3, namespace-scoped hosts and a custom selector', () => {
    const chart = newChart();
    const gateway = new IstioGateway(chart, 'Partners', { gatewayName: 'partners', selector: { app: 'partner-gateway' } });
    gateway.addHttpsServer({
      hosts: ['orders/*.partners.example.com'], credentialName: 'partners-mtls', port: 8443,
      mode: IstioGatewayTlsMode.MUTUAL, minProtocolVersion: IstioTlsVersion.TLS_V1_3,
    });
    const doc = manifest(synthValid(chart), 'Gateway', 'partners');
    expect(doc.spec.selector).toEqual({ app: 'partner-gateway' });
    expect(doc.spec.servers[0].tls).toEqual({ mode: 'MUTUAL', credentialName: 'partners-mtls', minProtocolVersion: 'TLSV1_3' });
    expect(gateway.servedHosts).toEqual(['*.partners.example.com']);
  });

  test('serving plain HTTP is a warned opt-in', () => {
    const chart = newChart();
    new IstioGateway(chart, 'Gw', { http: [{ hosts: ['*'], httpsRedirect: false }] });
    expect(manifest(synthValid(chart), 'Gateway', 'gw').spec.servers[0].tls).toBeUndefined();
    expect(warningsOf(chart).join()).toMatch(/plain HTTP/);
  });

  test('imports a gateway defined elsewhere', () => {
    const gw = IstioGateway.fromGatewayAttributes(newChart(), 'Knative', { gatewayName: 'knative-ingress-gateway', namespace: 'knative-serving' });
    expect(gw.gatewayReference).toBe('knative-serving/knative-ingress-gateway');
    expect(gw.servedHosts).toEqual([]);
  });

  describe('fails when', () => {
    test('fails when the gateway has no server', () => {
      const chart = newChart();
      new IstioGateway(chart, 'Gw');
      expect(validationErrors(chart).join()).toMatch(/servers: given \[\], expected at least one server/);
    });

    test('fails when the credential name is not a Secret name', () => {
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { https: [{ hosts: ['a.example.com'], credentialName: 'Orders_TLS' }] }), /credentialName/);
    });

    test('fails when a host is not [namespace/]host', () => {
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { http: [{ hosts: ['a..example.com'] }] }), /hosts/);
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { http: [{ hosts: ['Bad_NS/a.example.com'] }] }), /hosts/);
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { http: [{ hosts: ['a.*.example.com'] }] }), /hosts/);
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { http: [{ hosts: [] }] }), /hosts/);
    });

    test('fails when two servers share a port name, or a port serves two protocols', () => {
      const gw = new IstioGateway(newChart(), 'Gw', { http: [{ hosts: ['a.example.com'] }] });
      expectInvalid(() => gw.addHttpServer({ hosts: ['b.example.com'], port: 8080, portName: 'http-80' }), /portName/);
      expectInvalid(() => gw.addHttpsServer({ hosts: ['b.example.com'], credentialName: 'tls', port: 80 }), /port/);
    });

    test('fails when the port is out of range', () => {
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { http: [{ hosts: ['a.example.com'], port: 0 }] }), /port/);
    });

    test('fails when the selector is empty or invalid', () => {
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { selector: {} }), /selector/);
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { selector: { istio: 'ingress gateway' } }), /selector/);
    });

    test('fails when the name or namespace is invalid', () => {
      expectInvalid(() => new IstioGateway(newChart(), 'Gw', { gatewayName: 'Orders' }), /gatewayName/);
      expectInvalid(() => new IstioGateway(newChart(null), 'Gw'), /namespace/);
      expectInvalid(() => IstioGateway.fromGatewayAttributes(newChart(), 'Imp', { gatewayName: 'gw', namespace: 'Bad' }), /namespace/);
    });
  });
});
