import { App } from 'aws-cdk-lib';
import { ConfigError, DEFAULT_CONFIG, type EnvironmentConfig } from '../../lib/config';
import { meshFromConfig } from '../../lib/mesh-from-config';
import { thrownBy } from '../util';

const FILE = 'env.yaml';

function build(config: EnvironmentConfig): ReturnType<typeof meshFromConfig> {
  return meshFromConfig(new App(), 'Mesh', config, FILE);
}

/** The ConfigError that fn throws. */
const configError = (fn: () => unknown): ConfigError => thrownBy(fn, (e): e is ConfigError => ConfigError.isConfigError(e));

const base: EnvironmentConfig = {
  name: 'test-env',
  services: [
    { name: 'feature-store', port: 8080, protocol: 'http', placement: 'external' },
    { name: 'log-service', port: 24224, placement: 'external' },
  ],
  functions: [{ name: 'model-a', versions: ['v1', 'v2'] }],
  rules: [{ from: 'model-a', to: 'feature-store', http: { pathPrefix: '/features', methods: ['GET'] } }],
};

describe('meshFromConfig', () => {
  test('builds the default config: mesh named after the environment, 12 rules', () => {
    const mesh = build(DEFAULT_CONFIG);
    const graph = mesh.graph();
    expect(mesh.meshName).toBe('lambda-mesh-dev');
    expect(graph.datacenter).toBe('dc1');
    expect(graph.services.map((s) => s.name)).toEqual(['feature-store', 'log-service', 'result-writer']);
    expect(graph.rules).toHaveLength(12);
    expect(mesh.upstreamsOf('model-b-v1').map((s) => s.name)).toEqual(['feature-store', 'log-service', 'result-writer']);
  });

  test('passes mesh settings, local ports, descriptions and deny rules through', () => {
    const mesh = build({
      ...base,
      mesh: { datacenter: 'eu1', namespace: 'models', partition: 'ml', trustDomain: 'abc.consul' },
      services: [...base.services, { name: 'result-writer', port: 8080, localPort: 18080, protocol: 'http', placement: 'external', description: 'writes results' }],
      rules: [
        { from: 'model-a', to: 'result-writer', http: { pathPrefix: '/' } },
        { from: 'model-a-v1', to: 'result-writer', action: 'deny', http: { pathPrefix: '/admin' }, description: 'v1 is read-only' },
      ],
    });
    const graph = mesh.graph();
    expect(graph).toMatchObject({ datacenter: 'eu1', namespace: 'models', partition: 'ml', trustDomain: 'abc.consul' });
    expect(graph.services.find((s) => s.name === 'result-writer')).toMatchObject({ localPort: 18080, description: 'writes results' });
    expect(graph.rules[0]).toMatchObject({ source: 'model-a-v1', action: 'deny', description: 'v1 is read-only' });
  });

  test('fails when a rule names an unknown service (rules[i].to)', () => {
    const err = configError(() => build({ ...base, rules: [...base.rules, { from: 'model-a', to: 'feature-stor' }] }));
    expect(err.file).toBe(FILE);
    expect(err.field).toBe('rules[1].to');
    expect(err.given).toBe('"feature-stor"');
    expect(err.message).toBe(`${FILE}: rules[1].to: given "feature-stor", expected the name of a service of mesh 'test-env': feature-store, log-service`);
  });

  test('fails when a rule names an unknown source (rules[i].from)', () => {
    const err = configError(() => build({ ...base, rules: [{ from: 'model-a-v3', to: 'feature-store' }] }));
    expect(err.field).toBe('rules[0].from');
    expect(err.expected).toMatch(/model-a-v1, model-a-v2/);
  });

  test('fails when an L7 rule targets a TCP service (rules[i])', () => {
    const err = configError(() => build({ ...base, rules: [{ from: 'model-a', to: 'log-service', http: { pathPrefix: '/x' } }] }));
    expect(err.field).toBe('rules[0].http');
    expect(err.expected).toMatch(/'log-service' speaks tcp/);
  });

  test('fails when an HTTP regex is not RE2 (rules[i])', () => {
    const err = configError(() => build({ ...base, rules: [{ from: 'model-a', to: 'feature-store', http: { pathRegex: '/(?!admin)' } }] }));
    expect(err.field).toBe('rules[0].http.pathRegex');
    expect(err.expected).toMatch(/no look-around/);
  });

  test('fails when allow and deny conflict for a pair (rules[i])', () => {
    const err = configError(() => build({
      ...base,
      rules: [
        { from: 'model-a', to: 'log-service' },
        { from: 'model-a-v2', to: 'log-service', action: 'deny' },
      ],
    }));
    expect(err.field).toBe('rules[1]');
    expect(err.expected).toMatch(/model-a-v2 -> log-service, so it would be both allowed and denied/);
  });

  test('fails when two services share a local port (services[i])', () => {
    const err = configError(() => build({ ...base, services: [...base.services, { name: 'result-writer', port: 8080, placement: 'external' }] }));
    expect(err.field).toBe('services[2].localPort (defaults to port)');
    expect(err.given).toBe('8080');
    expect(err.expected).toMatch(/'feature-store' already has 8080/);
  });

  test('fails when a service port makes a privileged local port (services[i])', () => {
    const err = configError(() => build({ ...base, services: [{ name: 'web', port: 443, placement: 'external' }] , rules: [] }));
    expect(err.field).toBe('services[0].localPort (defaults to port)');
    expect(err.expected).toMatch(/set localPort/);
  });

  test('fails when a function version collides with another identity (functions[i].versions[j])', () => {
    const err = configError(() => build({ ...base, functions: [...base.functions, { name: 'model', versions: ['a-v1'] }] }));
    expect(err.field).toBe('functions[1].versions[0]');
    expect(err.expected).toMatch(/'model-a-v1' is already version 'v1' of function 'model-a'/);
  });
});
