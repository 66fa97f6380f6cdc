/**
 * The whole call path of the default environment, model-a-v1 -> feature-store, with the real code at both ends and a
 * protocol-faithful middle (no Consul or Envoy binary exists on these machines):
 *
 *   the real model handler (lib/model-handler, Python)
 *     -> http://127.0.0.1:<port>, the real Go mesh extension (built in this run; its identity bundle read from an
 *        SSM stand-in, as the registrar writes it)
 *     -> mTLS with SNI feature-store.default.dc1.internal.<trust domain> to a MESH GATEWAY STAND-IN (routes on SNI,
 *        does not terminate TLS)
 *     -> a SIDECAR STAND-IN for feature-store's Envoy: terminates mTLS with feature-store's leaf, checks the caller's
 *        SPIFFE ID and applies the `service-intentions` entry that lambda-mesh rendered for feature-store from the
 *        default config, with Consul's semantics (test/harness/intentions-semantics.ts)
 *     -> the real sample feature store (lib/sample-services).
 *
 * Certificates come from the Consul stand-in's Connect CA (real TLS throughout).
 */
import { spawn } from 'child_process';
import * as http from 'http';
import * as path from 'path';
import { App, Stack } from 'aws-cdk-lib';
import { renderConfigEntries, type ServiceIntentionsConfigEntry } from '../../constructs/intentions/private/config-entries';
import { DEFAULT_CONFIG, type EnvironmentConfig } from '../../lib/config';
import { meshFromConfig } from '../../lib/mesh-from-config';
import { startService, type RunningService } from '../../lib/sample-services/server';
import { buildExtension, ExtensionProcess, extensionEnvironment, freePort, MeshCa, REGION } from '../constructs/function/extension-fixture';
import { LambdaExtensionsApiStandIn } from '../harness/stand-ins/lambda-extensions-api';
import { MeshGatewayStandIn } from '../harness/stand-ins/mesh-gateway';
import { MeshSidecarStandIn, RBAC_ACCESS_DENIED } from '../harness/stand-ins/sidecar';
import { SsmStandIn } from '../harness/stand-ins/ssm';
import type { IntentionsEntry } from '../harness/intentions-semantics';

const HANDLER_DIR = path.resolve(__dirname, '..', '..', 'lib', 'model-handler');
const DATACENTER = 'dc1';
const NAMESPACE = 'default';
const FEATURES = ['recency_days', 'orders_30d', 'avg_basket', 'tenure_years'] as const;
/** lib/model-handler/app.py's model, restated: sigmoid(w . x + b). */
const WEIGHTS = [-0.05, 0.3, 0.01, 0.2];
const BIAS = -1.0;

/** The `service-intentions` entry for feature-store, as lambda-mesh renders it from `config` (MeshIntentions' renderer). */
/** What the renderer makes of `config` for feature-store's sidecar: its own entry and the wildcard destination's. */
function renderedEntries(config: EnvironmentConfig): { entry: IntentionsEntry; wildcardEntry: IntentionsEntry } {
  const mesh = meshFromConfig(new Stack(new App(), 'Model'), 'Mesh', config, '(test)');
  const entries = renderConfigEntries(mesh.graph(), { catchAllDeny: true, owner: 'lambda-mesh/e2e/Intentions' });
  const find = (name: string): IntentionsEntry => {
    const entry = entries.find((e): e is ServiceIntentionsConfigEntry => e.Kind === 'service-intentions' && e.Name === name);
    if (entry === undefined) {
      throw new Error(`no service-intentions entry for ${name} was rendered`);
    }
    return entry;
  };
  return { entry: find('feature-store'), wildcardEntry: find('*') };
}

function renderedFeatureStoreEntry(config: EnvironmentConfig): IntentionsEntry {
  return renderedEntries(config).entry;
}

/** Runs the real Python handler with `event` and the upstream URL; resolves its response. Async: the stand-ins live in this process. */
function invokeModel(event: Record<string, unknown>, featureStoreUrl: string): Promise<{ statusCode: number; body: Record<string, unknown> }> {
  const script = 'import json, sys, app; print(json.dumps(app.handler(json.loads(sys.argv[1]), None)))';
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script, JSON.stringify(event)], {
      cwd: HANDLER_DIR,
      env: { PATH: process.env.PATH ?? '', PYTHONDONTWRITEBYTECODE: '1', MESH_UPSTREAM_FEATURE_STORE_URL: featureStoreUrl, MODEL_UPSTREAM_TIMEOUT_SECONDS: '5' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) {
        return reject(new Error(`the model handler exited ${code}: ${err}`));
      }
      const response = JSON.parse(out.trim().split('\n').pop()!) as { statusCode: number; body: string };
      resolve({ statusCode: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown> });
    });
  });
}

/** A plain HTTP request to 127.0.0.1:port (the extension's local listener, or the app itself). */
function request(port: number, method: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function score(features: Record<string, number>): number {
  const z = FEATURES.reduce((sum, name, i) => sum + WEIGHTS[i] * features[name], BIAS);
  return 1 / (1 + Math.exp(-z));
}

describe('model-a-v1 -> feature-store end to end: real extension, model handler and feature store; gateway and sidecar stand-ins (real TLS)', () => {
  let binary: string;
  let ca: MeshCa;
  let foreignCa: MeshCa;
  const ssm = new SsmStandIn({ region: REGION });
  let ssmEndpoint: string;
  let gateway: MeshGatewayStandIn;
  let sidecar: MeshSidecarStandIn;
  let featureStore: RunningService;
  const closers: Array<() => Promise<void> | void> = [];

  /** Starts the extension as `identity` with its bundle from `issuer`; resolves the local port of feature-store. */
  async function startExtension(identity: string, issuer: MeshCa = ca): Promise<number> {
    const id = await issuer.issue(identity);
    const parameter = `/lambda-mesh/lambda-mesh-dev/default/${NAMESPACE}/${identity}`;
    ssm.setParameter({ name: parameter, type: 'SecureString', value: id.bundle, tier: 'Standard', keyId: 'alias/lambda-mesh' });
    const lambda = await LambdaExtensionsApiStandIn.start();
    closers.push(() => lambda.close());
    const localPort = await freePort();
    const extension = ExtensionProcess.start(binary, extensionEnvironment({
      runtimeApi: lambda.runtimeApi,
      ssmEndpoint,
      parameter,
      gateway: gateway.address,
      datacenter: DATACENTER,
      namespace: NAMESPACE,
      upstreams: [{ service: 'feature-store', localPort }],
    }));
    closers.push(() => extension.kill());
    await lambda.waitFor('next', 1, 15_000);
    return localPort;
  }

  beforeAll(async () => {
    binary = buildExtension();
    ca = await MeshCa.start({ datacenter: DATACENTER, namespace: NAMESPACE });
    foreignCa = await MeshCa.start({ datacenter: DATACENTER, namespace: NAMESPACE, trustDomain: ca.trustDomain });
    ssmEndpoint = await ssm.start();
    gateway = await MeshGatewayStandIn.start();
    featureStore = await startService('feature-store', { port: 0, log: () => undefined });
    const leaf = await ca.issue('feature-store');
    sidecar = await MeshSidecarStandIn.start({
      certPem: leaf.certPem,
      privateKeyPem: leaf.privateKeyPem,
      rootsPem: leaf.rootCertPem,
      trustDomain: ca.trustDomain,
      protocol: 'http',
      ...renderedEntries(DEFAULT_CONFIG),
      upstreamPort: featureStore.port,
    });
    gateway.route(ca.sni('feature-store'), sidecar.port);
  }, 120_000);

  afterEach(async () => {
    for (const close of closers.splice(0)) {
      await close();
    }
    const { entry, wildcardEntry } = renderedEntries(DEFAULT_CONFIG);
    sidecar.setEntry(entry, wildcardEntry);
  });

  afterAll(async () => {
    await Promise.all([ca?.close(), foreignCa?.close(), ssm.stop(), gateway?.close(), sidecar?.close(), featureStore?.close()]);
  });

  test('allowed: the model handler answers 200 with the score of the features fetched through the mesh', async () => {
    const local = await startExtension('model-a-v1');
    const reply = await invokeModel({ body: JSON.stringify({ entity_id: 'customer-42' }) }, `http://127.0.0.1:${local}`);
    // The features the real feature store serves for this entity, asked directly (not through the mesh).
    const direct = JSON.parse((await request(featureStore.port, 'GET', '/features/customer-42')).body) as { features: Record<string, number> };
    expect(reply).toEqual({ statusCode: 200, body: { entity_id: 'customer-42', score: expect.any(Number) as number, stored: false } });
    expect(reply.body.score as number).toBeCloseTo(score(direct.features), 12);
    // The sidecar saw model-a-v1's real SPIFFE ID and allowed exactly that request.
    expect(sidecar.decisions).toContainEqual(expect.objectContaining({ caller: ca.spiffeId('model-a-v1'), method: 'GET', path: '/features/customer-42', allowed: true }));
    expect(gateway.connections).toContainEqual({ sni: ca.sni('feature-store'), routed: true });
  });

  test('denied method: POST /features (the write-back) is refused by the sidecar with 403, and the handler says so', async () => {
    const local = await startExtension('model-a-v1');
    const reply = await invokeModel({ body: JSON.stringify({ entity_id: 'customer-42', update_features: { orders_30d: 17 } }) }, `http://127.0.0.1:${local}`);
    expect(reply.statusCode).toBe(403);
    expect(reply.body.error).toBe(`the mesh refused POST /features/customer-42 on the feature store (${RBAC_ACCESS_DENIED}): no mesh rule allows this model to make that call`);
    expect(sidecar.decisions).toContainEqual(expect.objectContaining({ caller: ca.spiffeId('model-a-v1'), method: 'POST', allowed: false }));
    // The feature store never saw the write: the entity's features are still the generated ones.
    const after = JSON.parse((await request(featureStore.port, 'GET', '/features/customer-42')).body) as { features: Record<string, number> };
    expect(after.features.orders_30d).not.toBe(17);
  });

  test('denied path: GET outside /features through the mesh is 403 from the sidecar, though the app would answer it', async () => {
    const local = await startExtension('model-a-v1');
    expect(await request(featureStore.port, 'GET', '/healthz')).toMatchObject({ status: 200 });
    expect(await request(local, 'GET', '/healthz')).toEqual({ status: 403, body: RBAC_ACCESS_DENIED });
  });

  test('rule removed and re-rendered: the same call that was allowed is refused with 403', async () => {
    const local = await startExtension('model-a-v1');
    const withoutRule: EnvironmentConfig = { ...DEFAULT_CONFIG, rules: DEFAULT_CONFIG.rules.filter((r) => !(r.from === 'model-a' && r.to === 'feature-store')) };
    const { entry, wildcardEntry } = renderedEntries(withoutRule);
    sidecar.setEntry(entry, wildcardEntry);
    const reply = await invokeModel({ body: JSON.stringify({ entity_id: 'customer-42' }) }, `http://127.0.0.1:${local}`);
    expect(reply.statusCode).toBe(403);
    expect(reply.body.error).toMatch(/^the mesh refused GET \/features\/customer-42 on the feature store/);
    // model-b keeps its rule: removing one source's rule changed nothing for the others.
    const other = await startExtension('model-b-v1');
    expect((await invokeModel({ body: JSON.stringify({ entity_id: 'customer-42' }) }, `http://127.0.0.1:${other}`)).statusCode).toBe(200);
  });

  test('unknown caller: a mesh identity no rule names is refused (403), one from another CA is refused at the handshake', async () => {
    const unknown = await startExtension('model-z-v1');
    expect(await request(unknown, 'GET', '/features/customer-42')).toEqual({ status: 403, body: RBAC_ACCESS_DENIED });
    expect(sidecar.decisions.at(-1)).toMatchObject({ caller: ca.spiffeId('model-z-v1'), allowed: false });

    const failures = sidecar.handshakeFailures.length;
    const decisions = sidecar.decisions.length;
    const foreign = await startExtension('model-a-v1', foreignCa);
    const reply = await invokeModel({ body: JSON.stringify({ entity_id: 'customer-42' }) }, `http://127.0.0.1:${foreign}`);
    expect(reply).toEqual({ statusCode: 502, body: { error: 'the feature store is unreachable' } });
    expect(sidecar.handshakeFailures.length).toBeGreaterThan(failures);
    // No request from it was ever decided: it did not get past TLS.
    expect(sidecar.decisions.length).toBe(decisions);
  });

  test('the entry under test is what the renderer makes of the default config', () => {
    const entry = renderedFeatureStoreEntry(DEFAULT_CONFIG);
    expect(entry.Sources.map((s) => s.Name).sort()).toEqual(['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1']);
    expect(entry.Sources.find((s) => s.Name === 'model-a-v1')?.Permissions).toEqual([{ Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET'] } }]);
  });
});
