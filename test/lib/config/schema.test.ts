import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  CONFIG_PATTERNS,
  CONFIG_SCHEMA,
  describePattern,
  type EnvironmentConfig,
  type JsonSchemaNode,
  validateConfig,
} from '../../../lib/config';

// --- Compile-time: the type the schema describes is the EnvironmentConfig type, key for key. ---

/** The TypeScript type a schema node accepts (for the keywords CONFIG_SCHEMA uses). */
type FromSchema<N> = N extends { readonly type: 'boolean' }
  ? boolean
  : N extends { readonly enum: readonly (infer E)[] }
    ? E
    : N extends { readonly type: 'string' }
      ? string
      : N extends { readonly type: 'integer' | 'number' }
        ? number
        : N extends { readonly type: 'array'; readonly items: infer I }
          ? FromSchema<I>[]
          : N extends { readonly type: 'object'; readonly properties: infer P }
            ? FromProperties<P, N extends { readonly required: readonly (infer R)[] } ? R : never>
            : never;

type FromProperties<P, R> = Flatten<
  { [K in keyof P as K extends R ? K : never]: FromSchema<P[K]> } & { [K in keyof P as K extends R ? never : K]?: FromSchema<P[K]> }
>;

type Flatten<T> = { [K in keyof T]: T[K] };

/** True when A and B are mutually assignable. */
type Mutual<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** Mutual assignability misses extra optional keys, so compare the keys at every level too. */
type DeepSame<A, B> = [A] extends [readonly (infer X)[]]
  ? [B] extends [readonly (infer Y)[]]
    ? DeepSame<X, Y>
    : false
  : [A] extends [object]
    ? [B] extends [object]
      ? Mutual<keyof A, keyof B> extends true
        ? Mutual<A, B> extends true
          ? false extends { [K in keyof A & keyof B]-?: DeepSame<NonNullable<A[K]>, NonNullable<B[K]>> }[keyof A & keyof B]
            ? false
            : true
          : false
        : false
      : false
    : Mutual<A, B>;

const typesMatchSchema: DeepSame<FromSchema<typeof CONFIG_SCHEMA>, EnvironmentConfig> = true;

// --- Run time ---

/** Every field of the config set, so that the schema's keys can be checked against a typed value. */
const FULL: EnvironmentConfig = {
  name: 'full-env',
  env: { account: '123456789012', region: 'eu-west-1' },
  network: { cidr: '10.1.0.0/16', maxAzs: 2, availabilityZones: ['eu-west-1a', 'eu-west-1b'], serverEgress: false, serviceEgress: false },
  mesh: { datacenter: 'dc2', trustDomain: 'mesh.example.internal', partition: 'ml', namespace: 'models' },
  controlPlane: { servers: 5, devMode: false, consulVersion: '2.0.3', instanceType: 'm7i.large', gatewayTasks: 3 },
  eks: {
    existingCluster: {
      clusterName: 'models',
      openIdConnectProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
      kubectlRoleArn: 'arn:aws:iam::123456789012:role/eks-admin',
      clusterSecurityGroupId: 'sg-0123456789abcdef0',
    },
    instanceType: 'm7i.xlarge',
    nodes: 3,
    meshServicesNamespace: 'consul-models',
    gloo: { version: '1.22.1', discovery: false, routes: [{ path: '/a', function: 'model-a', version: 'v1', unwrapAsApiGateway: true }] },
  },
  kubernetes: { namespace: 'models', tracingSamplingPercentage: 12.5, otlpEndpoint: 'tempo.example.com:4317', exposedServices: ['feature-store'], applyToCluster: false },
  services: [{ name: 'feature-store', port: 8080, protocol: 'http', localPort: 18080, placement: 'ecs', workload: { image: `123456789012.dkr.ecr.us-east-1.amazonaws.com/features@sha256:${'a'.repeat(64)}`, cpu: 512, memoryMiB: 2048, count: 3, healthCheck: { command: ['wget', '-q', 'http://127.0.0.1:8080/healthz'] }, upstreams: ['scorer'] }, description: 'Features.' },
    { name: 'scorer', port: 9000, protocol: 'http', placement: 'ec2', workload: { build: 'scorer', instanceType: 't4g.small', healthCheck: { path: '/healthz' }, count: 2 } },
    { name: 'log-service', port: 24224, placement: 'external', securityGroupId: 'sg-0123456789abcdef0' },
    { name: 'result-writer', port: 8081, protocol: 'http', placement: 'ecs', workload: { sample: 'result-writer' } },
  ],
  functions: [{ name: 'model-a', versions: ['v1', 'v2'], description: 'Model A.' }],
  rules: [
    {
      from: 'model-a',
      to: 'feature-store',
      action: 'deny',
      http: {
        pathRegex: '^/admin/.*',
        methods: ['GET', 'POST'],
        headers: [
          { name: 'x-exact', exact: 'a', invert: true },
          { name: 'x-prefix', prefix: 'b' },
          { name: 'x-suffix', suffix: 'c' },
          { name: 'x-regex', regex: 'd+' },
          { name: 'x-present', present: true },
        ],
      },
      description: 'No admin calls.',
    },
    { from: 'model-a-v1', to: 'feature-store', http: { pathExact: '/health' } },
    { from: 'model-a-v2', to: 'feature-store', http: { pathPrefix: '/features' } },
  ],
};

/** The dotted paths of every property the schema defines (array items as `[]`). */
function schemaPaths(node: JsonSchemaNode, prefix = ''): string[] {
  const own = Object.entries(node.properties ?? {}).flatMap(([key, child]) => {
    const at = prefix ? `${prefix}.${key}` : key;
    return [at, ...schemaPaths(child, at)];
  });
  return node.items ? [...own, ...schemaPaths(node.items, `${prefix}[]`)] : own;
}

/** The same paths, as set in a value. */
function valuePaths(value: unknown, prefix = ''): Set<string> {
  const paths = new Set<string>();
  if (Array.isArray(value)) {
    value.forEach((item) => valuePaths(item, `${prefix}[]`).forEach((p) => paths.add(p)));
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      const at = prefix ? `${prefix}.${key}` : key;
      paths.add(at);
      valuePaths(child, at).forEach((p) => paths.add(p));
    }
  }
  return paths;
}

describe('CONFIG_SCHEMA', () => {
  test('describes the EnvironmentConfig type (checked by tsc)', () => {
    expect(typesMatchSchema).toBe(true);
  });

  test('a config with every field set validates', () => {
    // workload.build is relative to the config file, and must hold a Dockerfile.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-full-'));
    fs.mkdirSync(path.join(dir, 'scorer'));
    fs.writeFileSync(path.join(dir, 'scorer', 'Dockerfile'), 'FROM scratch\n');
    fs.writeFileSync(path.join(dir, 'full.yaml'), '');
    expect(validateConfig(FULL, path.join(dir, 'full.yaml'))).toBe(FULL);
  });

  test('every key in the schema appears in the typed sample', () => {
    const inSample = valuePaths(FULL);
    expect(schemaPaths(CONFIG_SCHEMA).filter((p) => !inSample.has(p))).toEqual([]);
  });

  test('rejects unknown keys in every object', () => {
    const objects: string[] = [];
    const walk = (node: JsonSchemaNode, at: string): void => {
      if (node.type === 'object') {
        objects.push(at);
        expect(node.additionalProperties).toBe(false);
      }
      Object.entries(node.properties ?? {}).forEach(([key, child]) => walk(child, `${at}.${key}`));
      if (node.items) {
        walk(node.items, `${at}[]`);
      }
    };
    walk(CONFIG_SCHEMA, '(root)');
    expect(objects).toEqual([
      '(root)',
      '(root).env',
      '(root).network',
      '(root).mesh',
      '(root).controlPlane',
      '(root).eks',
      '(root).eks.existingCluster',
      '(root).eks.gloo',
      '(root).eks.gloo.routes[]',
      '(root).kubernetes',
      '(root).services[]',
      '(root).services[].workload',
      '(root).services[].workload.healthCheck',
      '(root).functions[]',
      '(root).rules[]',
      '(root).rules[].http',
      '(root).rules[].http.headers[]',
    ]);
  });

  test('every pattern has a phrase for error messages', () => {
    const patterns: string[] = [];
    const walk = (node: JsonSchemaNode): void => {
      if (node.pattern !== undefined) {
        patterns.push(node.pattern);
      }
      Object.values(node.properties ?? {}).forEach(walk);
      if (node.items) {
        walk(node.items);
      }
    };
    walk(CONFIG_SCHEMA);
    const known = Object.values(CONFIG_PATTERNS).map((p) => p.pattern);
    expect(patterns.filter((p) => !known.includes(p))).toEqual([]);
    expect(describePattern(CONFIG_PATTERNS.region.pattern)).toBe("an AWS region name such as 'us-east-1'");
  });

  test.each([
    ['environmentName', ['ab', 'lambda-mesh-dev', 'a'.repeat(32)], ['a', '1env', 'env-', 'Env', 'a'.repeat(33)]],
    ['cidr', ['10.0.0.0/16', '192.168.0.0/17', '172.16.0.0/16'], ['10.0.0.0/8', '10.0.0.0/18', '192.168.10.0/24', '10.0.0.0/25', '256.0.0.0/16', '10.0.0/16', '10.0.0.0']],
    ['region', ['us-east-1', 'eu-central-2', 'us-gov-west-1', 'ap-southeast-4'], ['us-east', 'US-EAST-1', 'useast1', 'us-east-1a']],
    ['availabilityZone', ['us-east-1a', 'eu-west-2c'], ['us-east-1', 'us-east-1A', 'use1-az1']],
    ['account', ['123456789012'], ['12345678901', '1234567890123', 'abcdefghijkl']],
    ['dnsName', ['example.com', 'a1b2.consul', 'x'], ['Example.com', 'a..b', '-a.b', 'a.b.']],
    ['headerName', ['x-canary', 'Content-Type', "a!#$%&'*+-.^_`|~z"], ['x canary', 'a:b', '']],
  ] as const)('pattern %s accepts and rejects what it should', (key, good, bad) => {
    const re = new RegExp(CONFIG_PATTERNS[key].pattern);
    expect(good.filter((s) => !re.test(s))).toEqual([]);
    expect(bad.filter((s) => re.test(s))).toEqual([]);
  });
});
