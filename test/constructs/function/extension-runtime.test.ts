/**
 * The mesh extension as a black box: the static binary, built in this run, started as Lambda starts an external
 * extension, against local stand-ins speaking the documented protocols: the Lambda Extensions API, SSM Parameter
 * Store (AWS JSON 1.1), a Consul mesh gateway routing on SNI, and upstream services terminating mTLS with SPIFFE
 * certificates issued by the Consul stand-in's Connect CA (real TLS throughout). The identity bundle is built by
 * the registrar's own functions, so the extension reads what the registrar writes.
 */
import { LambdaExtensionsApiStandIn } from '../../harness/stand-ins/lambda-extensions-api';
import { MeshGatewayStandIn, MeshServiceStandIn } from '../../harness/stand-ins/mesh-gateway';
import { SsmStandIn } from '../../harness/stand-ins/ssm';
import {
  buildExtension,
  EXTENSION_NAME,
  ExtensionProcess,
  extensionEnvironment,
  freePort,
  HoldingProxy,
  isListening,
  MeshCa,
  post,
  REGION,
  type MeshIdentity,
} from './extension-fixture';

// Neither is a default: the SNI and SPIFFE IDs must come from configuration.
const DATACENTER = 'dc-eu1';
const NAMESPACE = 'ml';
const FUNCTION = 'model-a-v1';
const PARAMETER = `/lambda-mesh/prod/default/${NAMESPACE}/${FUNCTION}`;

describe('mesh extension binary against Lambda, SSM, mesh gateway and upstream stand-ins (real TLS)', () => {
  let binary: string;
  let ca: MeshCa;
  let foreignCa: MeshCa;
  const ssm = new SsmStandIn({ region: REGION });
  let ssmEndpoint: string;
  let gateway: MeshGatewayStandIn;
  let featureStore: MeshServiceStandIn;
  let impostor: MeshServiceStandIn;
  let foreign: MeshServiceStandIn;
  const running: ExtensionProcess[] = [];
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    binary = buildExtension();
    ca = await MeshCa.start({ datacenter: DATACENTER, namespace: NAMESPACE });
    // Same trust domain and names, another CA: only the chain tells it apart.
    foreignCa = await MeshCa.start({ datacenter: DATACENTER, namespace: NAMESPACE, trustDomain: ca.trustDomain });
    ssmEndpoint = await ssm.start();
    gateway = await MeshGatewayStandIn.start();
    const service = async (issuer: MeshCa, name: string): Promise<MeshServiceStandIn> => {
      const id = await issuer.issue(name);
      return MeshServiceStandIn.start({ certPem: id.certPem, privateKeyPem: id.privateKeyPem, clientCaPem: id.rootCertPem });
    };
    featureStore = await service(ca, 'feature-store');
    impostor = await service(ca, 'billing');
    foreign = await MeshServiceStandIn.start({
      ...(await foreignCa.issue('payments')),
      // The foreign service trusts our mesh's clients: only the extension's own check can refuse it.
      clientCaPem: (await ca.issue('payments')).rootCertPem,
    });
    gateway.route(ca.sni('feature-store'), featureStore.port);
    gateway.route(ca.sni('ledger'), impostor.port);
    gateway.route(ca.sni('payments'), foreign.port);
  }, 60_000);

  afterEach(async () => {
    for (const p of running.splice(0)) {
      p.kill();
    }
    for (const close of closers.splice(0)) {
      await close();
    }
    ssm.reset();
  });

  afterAll(async () => {
    await Promise.all([ca?.close(), foreignCa?.close(), ssm.stop(), gateway?.close(), featureStore?.close(), impostor?.close(), foreign?.close()]);
  });

  interface Started {
    readonly lambda: LambdaExtensionsApiStandIn;
    readonly extension: ExtensionProcess;
    readonly ports: Readonly<Record<string, number>>;
  }

  /** Stores `identity` in SSM and starts the extension for `services`. */
  async function startExtension(identity: MeshIdentity | undefined, services: readonly string[], options: { ssm?: string; extra?: Record<string, string> } = {}): Promise<Started> {
    if (identity) {
      ssm.setParameter({ name: PARAMETER, type: 'SecureString', value: identity.bundle, tier: 'Standard', keyId: 'alias/lambda-mesh' });
    }
    const lambda = await LambdaExtensionsApiStandIn.start();
    closers.push(() => lambda.close());
    const ports: Record<string, number> = {};
    for (const s of services) {
      ports[s] = await freePort();
    }
    const env = extensionEnvironment({
      runtimeApi: lambda.runtimeApi,
      ssmEndpoint: options.ssm ?? ssmEndpoint,
      parameter: PARAMETER,
      gateway: gateway.address,
      datacenter: DATACENTER,
      namespace: NAMESPACE,
      upstreams: services.map((service) => ({ service, localPort: ports[service] })),
      extra: options.extra,
    });
    const extension = ExtensionProcess.start(binary, env);
    running.push(extension);
    return { lambda, extension, ports };
  }

  describe('one function with three upstreams', () => {
    let started: Started;
    let identity: MeshIdentity;
    const blockClosers: Array<() => Promise<void>> = [];

    beforeAll(async () => {
      identity = await ca.issue(FUNCTION);
      started = await startExtension(identity, ['feature-store', 'ledger', 'payments']);
      // Polled only after init: from here on, the first invoke may come at any moment.
      await started.lambda.waitFor('next');
      // This process and its Extensions API live for the whole block, not one test.
      running.splice(0);
      blockClosers.push(...closers.splice(0));
    });

    afterAll(async () => {
      started.extension.kill();
      for (const close of blockClosers) {
        await close();
      }
    });

    test('registers for SHUTDOWN under its file name, reads the signed parameter, binds, and only then polls event/next', async () => {
      const { lambda, extension, ports } = started;
      // The very moment event/next arrives, the listeners accept and the identity is loaded.
      const reply = await post(ports['feature-store'], Buffer.from('first invoke'));
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('first invoke');

      expect(lambda.calls.map((c) => c.kind)).toEqual(['register', 'next']);
      expect(lambda.calls[0]).toMatchObject({ detail: EXTENSION_NAME, body: { events: ['SHUTDOWN'] } });
      expect(lambda.calls[1].id).toBe(lambda.calls[0].id);
      const [read] = ssm.requests;
      expect(ssm.requests).toHaveLength(1);
      expect(read).toMatchObject({ operation: 'GetParameter', contentType: 'application/x-amz-json-1.1', body: { Name: PARAMETER, WithDecryption: true } });
      expect(read.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDSTANDINEXAMPLE/\\d{8}/${REGION}/ssm/aws4_request, SignedHeaders=[^,]*x-amz-security-token`));
      const ready = await extension.waitForLog('ready');
      expect(ready).toMatchObject({ level: 'info', serial: identity.serial, trustDomain: ca.trustDomain });
      expect(Number(ready.initMs)).toBeLessThan(2000);
    });

    test('proxies over mTLS through the gateway with the configured SNI, presenting the function identity', async () => {
      const body = Buffer.alloc(100 * 1024, 7);
      const reply = await post(started.ports['feature-store'], body);
      expect(reply.status).toBe(200);
      expect(reply.body.equals(body)).toBe(true);
      expect(reply.headers['x-client-serial']).toBe(identity.serial);
      expect(reply.headers['x-client-uri']).toBe(ca.spiffeId(FUNCTION));
      expect(gateway.connections.at(-1)).toEqual({ sni: `feature-store.${NAMESPACE}.${DATACENTER}.internal.${ca.trustDomain}`, routed: true });
    });

    test('refuses an upstream that presents another service identity, and logs it', async () => {
      await expect(post(started.ports.ledger, Buffer.from('secret'))).rejects.toThrow(/socket hang up|ECONNRESET/);
      const refused = await started.extension.waitForLog('upstream identity rejected; connection closed', (l) => l.upstream === 'ledger');
      expect(refused).toMatchObject({ level: 'warn', sni: ca.sni('ledger') });
      expect(String(refused.error)).toContain(`certificate is ${ca.spiffeId('billing')}, want ${ca.spiffeId('ledger')}`);
      expect(impostor.requests).toHaveLength(0);
    });

    test('refuses an upstream whose certificate does not chain to the mesh CA, and logs it', async () => {
      await expect(post(started.ports.payments, Buffer.from('secret'))).rejects.toThrow(/socket hang up|ECONNRESET/);
      const refused = await started.extension.waitForLog('upstream identity rejected; connection closed', (l) => l.upstream === 'payments');
      expect(String(refused.error)).toMatch(/does not chain to the mesh CA: x509: certificate signed by unknown authority/);
      expect(foreign.requests).toHaveLength(0);
    });

    test('on SHUTDOWN closes its listeners, logs its counters and exits 0', async () => {
      const { lambda, extension, ports } = started;
      expect(lambda.shutdown('spindown')).toBe(1);
      expect(await extension.exited()).toBe(0);
      for (const port of Object.values(ports)) {
        expect(await isListening(port)).toBe(false);
      }
      const shutdown = extension.logsOf('shutdown')[0];
      expect(shutdown).toMatchObject({ level: 'info', reason: 'spindown', connections: 4, handshakeFailures: 2, active: 0, dialFailures: 0 });
      expect(Number(shutdown.bytesOut)).toBeGreaterThan(100 * 1024);
      expect(Number(shutdown.bytesIn)).toBeGreaterThan(100 * 1024);
      expect(extension.notJson).toEqual([]);
      expect(JSON.stringify(extension.logs)).not.toContain('PRIVATE KEY');
    });
  });

  test.each([
    ['answers 503', (): Promise<string> => {
      ssm.faults = [{ operation: 'GetParameter', type: 'ServiceUnavailable', message: 'Service is unavailable', status: 503 }];
      return Promise.resolve(ssmEndpoint);
    }, /HTTP 503 ServiceUnavailable: Service is unavailable \(after 3 attempts\)/],
    ['refuses connections', async (): Promise<string> => `http://127.0.0.1:${await freePort()}`, /connection refused/],
  ])('when SSM %s, reports an init error to the Extensions API, never polls, and exits 1', async (_, setUp, message) => {
    const { lambda, extension, ports } = await startExtension(await ca.issue(FUNCTION), ['feature-store'], { ssm: await setUp() });
    const report = await lambda.waitFor('init/error');
    expect(report.detail).toBe('Extension.SSMError');
    expect(report.body).toMatchObject({ errorType: 'Extension.SSMError' });
    expect(String(report.body.errorMessage)).toMatch(message);
    expect(String(report.body.errorMessage)).toContain(PARAMETER);
    expect(await extension.exited()).toBe(1);
    expect(lambda.callsOf('next')).toEqual([]);
    expect(await isListening(ports['feature-store'])).toBe(false);
    expect(extension.logsOf('init failed')[0]).toMatchObject({ level: 'error', errorType: 'Extension.SSMError' });
  });

  test('a connection that finds the certificate expired waits for the refresh and goes out with the new one', async () => {
    const first = await ca.issue(FUNCTION, 2000);
    const { lambda, extension, ports } = await startExtension(first, ['feature-store']);
    await lambda.waitFor('next');
    // Past the leaf's NotAfter (whole seconds) by the extension's clock: what a long freeze leads to.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, first.validBefore.getTime() + 1100 - Date.now())));
    const second = await ca.issue(FUNCTION);
    ssm.setParameter({ name: PARAMETER, type: 'SecureString', value: second.bundle, tier: 'Standard', keyId: 'alias/lambda-mesh' });

    const reply = await post(ports['feature-store'], Buffer.from('after the freeze'));
    expect(reply.status).toBe(200);
    expect(reply.headers['x-client-serial']).toBe(second.serial);
    expect(featureStore.requests.at(-1)).toMatchObject({ clientSerial: second.serial, clientUri: ca.spiffeId(FUNCTION) });
    expect(extension.logsOf('certificate refreshed')).toEqual([
      expect.objectContaining({ trigger: 'connection', serial: second.serial, previousSerial: first.serial }),
    ]);
    expect(extension.logsOf('connection waited for the certificate refresh')).toHaveLength(1);
  });

  test('a request arriving while a refresh waits on a slow SSM succeeds with the current certificate', async () => {
    const slowSsm = await HoldingProxy.start(ssmEndpoint);
    closers.push(() => slowSsm.close());
    // Valid for 30 s but back-dated a minute: past half of its lifetime, so due for refresh, and still valid.
    const first = await ca.issue(FUNCTION, 30_000);
    const { lambda, extension, ports } = await startExtension(first, ['feature-store'], { ssm: slowSsm.url });
    await lambda.waitFor('next');
    slowSsm.holdNext();

    // The first connection after a thaw notices the refresh is due, starts it, and does not wait for it.
    const during = await post(ports['feature-store'], Buffer.from('during'));
    await slowSsm.waitForHeld();
    const alsoDuring = await post(ports['feature-store'], Buffer.from('still during'));
    for (const reply of [during, alsoDuring]) {
      expect(reply.status).toBe(200);
      expect(reply.headers['x-client-serial']).toBe(first.serial);
    }
    expect(extension.logsOf('certificate refreshed')).toEqual([]);

    const second = await ca.issue(FUNCTION);
    ssm.setParameter({ name: PARAMETER, type: 'SecureString', value: second.bundle, tier: 'Standard', keyId: 'alias/lambda-mesh' });
    slowSsm.release();
    await extension.waitForLog('certificate refreshed', (l) => l.serial === second.serial && l.previousSerial === first.serial);
    const after = await post(ports['feature-store'], Buffer.from('after'));
    expect(after.headers['x-client-serial']).toBe(second.serial);
    expect(slowSsm.heldCount).toBe(1);
  });
});
