import { App, Stack } from 'aws-cdk-lib';
import { Chart, Testing } from 'cdk8s';
import { MeshAuthorization, type MeshAuthorizationProps } from '../../../constructs/k8s/authorization';
import { Mesh } from '../../../constructs/mesh';
import { manifest, meshError, NAMESPACE, newChart, synthValid, validationErrors } from './fixtures';
import { addSeedScenario, type SeedScenario } from '../mesh/fixtures';

/** The default environment's model: three backends, three models (model-a with a canary), each allowed what it needs. */
function seedMesh(): SeedScenario {
  return addSeedScenario(new Mesh(new Stack(new App(), 'Stack'), 'Mesh'));
}

const principal = (identity: string): string => `cluster.local/ns/${NAMESPACE}/sa/${identity}`;

function render(mesh: Mesh, props: Partial<MeshAuthorizationProps> = {}): ReturnType<typeof synthValid> {
  const chart = newChart();
  new MeshAuthorization(chart, 'Authz', { mesh, ...props });
  return synthValid(chart);
}

describe('MeshAuthorization', () => {
  test('denies everything in the namespace, then allows exactly what the model allows (every manifest valid)', () => {
    const docs = render(seedMesh().mesh);
    expect(manifest(docs, 'AuthorizationPolicy', 'allow-nothing')).toEqual({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-nothing', namespace: NAMESPACE },
      spec: {},
    });
    expect(manifest(docs, 'AuthorizationPolicy', 'allow-feature-store').spec).toEqual({
      action: 'ALLOW',
      selector: { matchLabels: { 'serving.knative.dev/service': 'feature-store' } },
      rules: [
        {
          from: [{ source: { principals: ['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1'].map(principal) } }],
          to: [{ operation: { paths: ['/features*'], methods: ['GET'] } }],
        },
      ],
    });
    expect(docs.filter((d) => d.kind === 'AuthorizationPolicy').map((d) => d.metadata.name as string).sort()).toEqual([
      'allow-feature-store',
      'allow-knative-system',
      'allow-log-service',
      'allow-nothing',
      'allow-result-writer',
    ]);
  });

  test('an L7 rule carries its sources AND its operation in one rule: never split into two rules, which Istio ORs', () => {
    const docs = render(seedMesh().mesh);
    const generated = docs.filter((d) => d.kind === 'AuthorizationPolicy' && d.spec.selector !== undefined);
    expect(generated.length).toBe(3);
    for (const policy of generated) {
      for (const rule of policy.spec.rules) {
        // A rule with only `to` would allow the operation to any caller; with only `from`, any operation.
        expect(rule.from).toBeDefined();
        expect(rule.from[0].source.principals.length).toBeGreaterThan(0);
      }
    }
    const results = manifest(docs, 'AuthorizationPolicy', 'allow-result-writer').spec.rules;
    expect(results).toHaveLength(1);
    expect(Object.keys(results[0] as object).sort()).toEqual(['from', 'to']);
  });

  test('an L4 rule allows whole connections by identity: from only, no operation', () => {
    const docs = render(seedMesh().mesh);
    expect(manifest(docs, 'AuthorizationPolicy', 'allow-log-service').spec.rules).toEqual([
      { from: [{ source: { principals: ['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1'].map(principal) } }] },
    ]);
  });

  test('denies become a DENY policy (evaluated before ALLOW in Istio, as denies come first in Consul)', () => {
    const { mesh, featureStore } = seedMesh();
    featureStore.denyFrom(mesh.source('model-b'), { http: { pathPrefix: '/features/admin' } });
    const docs = render(mesh);
    expect(manifest(docs, 'AuthorizationPolicy', 'deny-feature-store').spec).toEqual({
      action: 'DENY',
      selector: { matchLabels: { 'serving.knative.dev/service': 'feature-store' } },
      rules: [{ from: [{ source: { principals: [principal('model-b-v1')] } }], to: [{ operation: { paths: ['/features/admin*'] } }] }],
    });
  });

  test('header matches become conditions on request.headers in the same rule; invert is notValues', () => {
    const { mesh, featureStore } = seedMesh();
    featureStore.allowFrom(mesh.source('model-c-v1'), {
      http: {
        pathExact: '/tenants',
        headers: [
          { name: 'X-Tenant', exact: 'acme' },
          { name: 'x-region', prefix: 'eu-' },
          { name: 'x-build', suffix: '-rc' },
          { name: 'x-trace', present: true },
          { name: 'x-debug', present: true, invert: true },
        ],
      },
    });
    const rules = manifest(render(mesh), 'AuthorizationPolicy', 'allow-feature-store').spec.rules;
    expect(rules).toContainEqual({
      from: [{ source: { principals: [principal('model-c-v1')] } }],
      to: [{ operation: { paths: ['/tenants'] } }],
      when: [
        { key: 'request.headers[x-tenant]', values: ['acme'] },
        { key: 'request.headers[x-region]', values: ['eu-*'] },
        { key: 'request.headers[x-build]', values: ['*-rc'] },
        { key: 'request.headers[x-trace]', values: ['*'] },
        { key: 'request.headers[x-debug]', notValues: ['*'] },
      ],
    });
  });

  test("Knative's system traffic is allowed: the knative-serving namespace, and GET /metrics and /healthz", () => {
    expect(manifest(render(seedMesh().mesh), 'AuthorizationPolicy', 'allow-knative-system').spec).toEqual({
      action: 'ALLOW',
      rules: [
        { from: [{ source: { namespaces: ['knative-serving'] } }] },
        { to: [{ operation: { methods: ['GET'], paths: ['/metrics', '/healthz'] } }] },
      ],
    });
    const off = render(seedMesh().mesh, { knativeSystemAccess: false });
    expect(off.some((d) => d.metadata.name === 'allow-knative-system')).toBe(false);
  });

  test('each identity gets a service account without an API token; its principal names it', () => {
    const chart = newChart();
    const authz = new MeshAuthorization(chart, 'Authz', { mesh: seedMesh().mesh, trustDomain: 'prod.example' });
    const docs = synthValid(chart);
    expect(docs.filter((d) => d.kind === 'ServiceAccount').map((d) => d.metadata.name as string)).toEqual([
      'feature-store', 'log-service', 'model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1', 'result-writer',
    ]);
    expect(manifest(docs, 'ServiceAccount', 'model-a-v2').automountServiceAccountToken).toBe(false);
    expect(authz.principalOf('model-a-v2')).toBe(`prod.example/ns/${NAMESPACE}/sa/model-a-v2`);
    expect(render(seedMesh().mesh, { serviceAccounts: false }).some((d) => d.kind === 'ServiceAccount')).toBe(false);
  });

  test('exposed services also accept the ingress gateway; services can be narrowed and relabelled', () => {
    const docs = render(seedMesh().mesh, { services: ['result-writer', 'feature-store'], exposedServices: ['feature-store'], workloadLabel: 'app' });
    const feature = manifest(docs, 'AuthorizationPolicy', 'allow-feature-store').spec;
    expect(feature.selector).toEqual({ matchLabels: { app: 'feature-store' } });
    expect(feature.rules).toContainEqual({ from: [{ source: { principals: ['cluster.local/ns/istio-system/sa/istio-ingressgateway'] } }] });
    expect(docs.some((d) => d.metadata.name === 'allow-log-service')).toBe(false);
  });

  test('services referenced from another app are left to that app', () => {
    const mesh = Mesh.fromMeshAttributes(new Stack(new App(), 'Stack'), 'Mesh', { meshName: 'shared', services: [{ name: 'ledger', port: 8443 }] });
    mesh.service('ledger').allowFrom(mesh.addFunction('payer', { versions: ['v1'] }));
    expect(render(mesh as Mesh).some((d) => d.metadata.name === 'allow-ledger')).toBe(false);
  });

  test('fails when a rule matches paths by regular expression, which Istio cannot enforce', () => {
    const { mesh, featureStore } = seedMesh();
    featureStore.allowFrom(mesh.source('model-b-v1'), { http: { pathRegex: '^/features/[0-9]+$' } });
    const e = meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh }));
    expect(e.field).toBe('policies[feature-store]');
    expect(e.expected).toMatch(/never by regular expression; use pathExact or pathPrefix/);
  });

  test('fails when a header is matched by regular expression', () => {
    const { mesh, results } = seedMesh();
    results.denyFrom(mesh.source('model-a-v2'), { http: { pathPrefix: '/results', headers: [{ name: 'x-batch', regex: '[0-9]+' }] } });
    expect(meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh })).expected).toMatch(/never by regular expression/);
  });

  test("fails when a literal path holds '*', which Istio would read as a wildcard", () => {
    const { mesh, results } = seedMesh();
    results.allowFrom(mesh.source('model-c-v1'), { http: { pathExact: '/results/*/latest' } });
    expect(meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh })).expected).toMatch(/without '\*'/);
  });

  test('fails when services names a service the mesh does not have', () => {
    const e = meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh: seedMesh().mesh, services: ['feature-store', 'inventory'] }));
    expect(e.field).toBe('services[1]');
    expect(e.expected).toMatch(/feature-store, log-service, result-writer/);
  });

  test('fails when an exposed service has no policy here', () => {
    const e = meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh: seedMesh().mesh, services: ['log-service'], exposedServices: ['feature-store'] }));
    expect(e.field).toBe('exposedServices');
  });

  test('fails when asked for the principal of an unknown identity', () => {
    const authz = new MeshAuthorization(newChart(), 'Authz', { mesh: seedMesh().mesh });
    expect(meshError(() => authz.principalOf('model-z-v1')).field).toBe('principalOf');
  });

  test('fails when the model changes after the policies were rendered', () => {
    const { mesh, logs } = seedMesh();
    const chart = newChart();
    new MeshAuthorization(chart, 'Authz', { mesh });
    logs.allowFrom(mesh.addFunction('model-d', { versions: ['v1'] }));
    expect(validationErrors(chart).join('\n')).toMatch(/changed after .* rendered its policies/);
  });

  test('fails when neither the props nor the chart give a namespace', () => {
    expect(meshError(() => new MeshAuthorization(new Chart(Testing.app(), 'NoNamespace'), 'Authz', { mesh: seedMesh().mesh })).field).toBe('namespace');
  });

  test('fails when the workload label or trust domain is malformed', () => {
    expect(meshError(() => new MeshAuthorization(newChart(), 'A', { mesh: seedMesh().mesh, workloadLabel: 'bad label' })).field).toMatch(/workloadLabel/);
    expect(meshError(() => new MeshAuthorization(newChart(), 'A', { mesh: seedMesh().mesh, trustDomain: 'Not A Domain' })).field).toBe('trustDomain');
  });

  test('a thousand callers with the same match are one rule with one source listing their principals (principals have no maxItems)', () => {
    const { mesh, featureStore } = seedMesh();
    const many = mesh.addFunction('many');
    for (let i = 0; i < 1000; i++) {
      many.addVersion(`v${i}`);
    }
    featureStore.allowFrom(many, { http: { pathPrefix: '/features', methods: ['GET'] } });
    const chart = newChart();
    new MeshAuthorization(chart, 'Authz', { mesh });
    const rules = manifest(synthValid(chart), 'AuthorizationPolicy', 'allow-feature-store').spec.rules as Array<{ from: Array<{ source: { principals: string[] } }> }>;
    const rule = rules.find((r) => r.from[0].source.principals.length >= 1000)!;
    expect(rule.from).toHaveLength(1);
    expect(rule.from[0].source.principals).toContain(`cluster.local/ns/${NAMESPACE}/sa/many-v999`);
  });

  test('fails when one service would need more rules than the CRD accepts (512)', () => {
    const { mesh, featureStore } = seedMesh();
    const caller = mesh.source('model-b-v1');
    for (let i = 0; i < 512; i++) {
      featureStore.allowFrom(caller, { http: { pathExact: `/item/${i}` } });
    }
    expect(meshError(() => new MeshAuthorization(newChart(), 'Authz', { mesh })).expected).toMatch(/at most 512/);
  });
});
