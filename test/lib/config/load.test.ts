import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LambdaMeshError } from '../../../constructs/core/errors';
import { thrownBy } from '../../util';
import {
  ConfigError,
  type ConfigErrorDetails,
  DEFAULT_CONFIG,
  loadConfigFile,
  resolveConfig,
  validateConfig,
  withConfigField,
} from '../../../lib/config';

const EXAMPLES = path.join(__dirname, '..', '..', '..', 'examples', 'config');

/** A small valid config with two of everything that tests index into. */
const BASE = `
name: test-env
services:
  - name: feature-store
    placement: external
    port: 8080
    protocol: http
  - name: log-service
    placement: external
    port: 24224
functions:
  - name: model-a
    versions: [v1, v2]
  - name: model-b
    versions: [v1]
rules:
  - from: model-a
    to: feature-store
    http:
      pathPrefix: /features
      methods: [GET]
  - from: model-b
    to: log-service
`;

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-config-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes a fixture file into the test's temp dir and returns its path. */
function fixture(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** BASE with one piece of text replaced (which must be there, so fixtures can't silently go stale). */
function base(replace?: string, by?: string): string {
  if (replace === undefined) {
    return BASE;
  }
  if (!BASE.includes(replace)) {
    throw new Error(`fixture text not found: ${replace}`);
  }
  return BASE.replace(replace, by ?? '');
}

/** Writes `content` as bad.yaml, loads it, and returns the ConfigError it must throw. */
/** The ConfigError that fn throws. */
const configError = (fn: () => unknown): ConfigError => thrownBy(fn, (e): e is ConfigError => ConfigError.isConfigError(e));

function loadError(content: string, name = 'bad.yaml'): ConfigError & { fixture: string } {
  const file = fixture(name, content);
  return Object.assign(configError(() => loadConfigFile(file)), { fixture: file });
}

/** Asserts every detail of a ConfigError and that the message is built from them. */
function expectDetails(error: ConfigError, details: ConfigErrorDetails): void {
  expect({ file: error.file, field: error.field, given: error.given, expected: error.expected }).toEqual(details);
  expect(error.location).toBe(details.file);
  expect(error.message).toBe(`${details.file}: ${details.field}: given ${details.given}, expected ${details.expected}`);
  expect(LambdaMeshError.isLambdaMeshError(error)).toBe(true);
}

/** Loads BASE with one replacement as bad.yaml and asserts the error's field, given and expected. */
function expectLoadError(content: string, field: string, given: string, expected: string): void {
  const error = loadError(content);
  expectDetails(error, { file: error.fixture, field, given, expected });
}

const DNS_LABEL = "a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)";

describe('loadConfigFile', () => {
  test('loads a YAML file as written, without filling in defaults', () => {
    const config = loadConfigFile(fixture('env.yaml', BASE));
    expect(config.name).toBe('test-env');
    expect(config.services[1]).toStrictEqual({ name: 'log-service', placement: 'external', port: 24224 });
    expect(config.rules[0].http).toStrictEqual({ pathPrefix: '/features', methods: ['GET'] });
  });

  test('loads a JSON file', () => {
    const file = fixture('env.json', JSON.stringify(DEFAULT_CONFIG, undefined, '\t'));
    expect(loadConfigFile(file)).toStrictEqual(DEFAULT_CONFIG);
  });

  test('loads the minimal example', () => {
    expect(loadConfigFile(path.join(EXAMPLES, 'minimal.yaml'))).toStrictEqual({
      name: 'lambda-mesh-minimal',
      services: [{ name: 'echo', port: 8080, protocol: 'http', placement: 'external' }],
      functions: [{ name: 'model', versions: ['v1'] }],
      rules: [{ from: 'model', to: 'echo' }],
    });
  });

  test('reads yes/no/on/off as strings (YAML 1.2, not 1.1)', () => {
    const config = loadConfigFile(fixture('env.yaml', base('    versions: [v1]\n', '    versions: [v1]\n    description: on\n')));
    expect(config.functions[1].description).toBe('on');
  });

  test('fails when the file is missing', () => {
    const file = path.join(dir, 'nope.yaml');
    const error = configError(() => loadConfigFile(file));
    expectDetails(error, { file, field: '(file)', given: '(no such file)', expected: 'a readable YAML or JSON environment config file' });
  });

  test('fails when the file is a directory', () => {
    const error = configError(() => loadConfigFile(dir));
    expectDetails(error, { file: dir, field: '(file)', given: '(a directory)', expected: 'a readable YAML or JSON environment config file' });
  });

  test('fails when the YAML is invalid, naming line and column', () => {
    const file = fixture('bad.yaml', 'name: test-env\nservices: [\n  { name: a, port: 1 }\nfunctions: []\n');
    expect(() => loadConfigFile(file)).toThrow(/bad\.yaml: line \d+, column \d+: given .*, expected valid YAML or JSON$/);
    const error = configError(() => loadConfigFile(file));
    expect(error.field).toBe('line 4, column 1');
    expect(error.given).toMatch(/^"functions: \[\]" \(.+\)$/);
    expect(error.expected).toBe('valid YAML or JSON');
  });

  test('fails when the JSON is invalid', () => {
    const error = loadError('{\n  "name": "test-env",\n  "services": [}\n}\n', 'bad.json');
    expect(error.field).toMatch(/^line 3, column \d+$/);
    expect(error.given).toMatch(/^"\\"services\\": \[}" \(.+\)$/);
  });

  test('fails when a YAML key is given twice', () => {
    expectLoadError(
      base('    port: 24224\n', '    port: 24224\n    port: 24225\n'),
      'line 11, column 5',
      '"port: 24225" (Map keys must be unique)',
      'valid YAML or JSON',
    );
  });

  test('fails when a JSON key is given twice', () => {
    const error = loadError('{\n  "name": "a-env",\n  "name": "b-env"\n}\n', 'bad.json');
    expectDetails(error, {
      file: error.fixture,
      field: 'line 3, column 3',
      given: '"\\"name\\": \\"b-env\\"" (Map keys must be unique)',
      expected: 'valid YAML or JSON',
    });
  });

  test('fails when the file holds two documents', () => {
    const error = loadError(`${BASE}---\n${BASE}`);
    expect(error.field).toMatch(/^line \d+, column \d+$/);
    expect(error.given).toMatch(/multiple documents/);
  });

  test('fails when a value has an unknown YAML tag', () => {
    expectLoadError(base('name: test-env', 'name: !Ref EnvName'), 'line 2, column 7', '"name: !Ref EnvName" (Unresolved tag: !Ref)', 'valid YAML or JSON');
  });

  test('fails when the document is empty', () => {
    expectLoadError(
      '# nothing here\n',
      '(root)',
      '(empty document)',
      'an object with the keys name, env, network, mesh, controlPlane, eks, kubernetes, services, functions, rules',
    );
  });

  test.each([
    ['a list', '- name: test-env\n', '[{"name":"test-env"}]'],
    ['a string', 'lambda-mesh-dev\n', '"lambda-mesh-dev"'],
    ['null', 'null\n', 'null'],
  ])('fails when the root is %s, not an object', (_what, content, given) => {
    expectLoadError(content, '(root)', given, 'an object with the keys name, env, network, mesh, controlPlane, eks, kubernetes, services, functions, rules');
  });

  test('fails when the root has an unknown key', () => {
    const file = fixture('bad.yaml', `${BASE}servics: []\n`);
    expect(() => loadConfigFile(file)).toThrow(
      /bad\.yaml: servics: given "servics", expected one of the keys name, env, network, mesh, controlPlane, eks, kubernetes, services, functions, rules \(did you mean services\?\)$/,
    );
  });

  test('fails when a nested object has an unknown key', () => {
    expectLoadError(
      base('    port: 8080\n', '    prot: 8080\n    port: 8080\n'),
      'services[0].prot',
      '"prot"',
      'one of the keys name, port, protocol, localPort, placement, securityGroupId, workload, description (did you mean port?)',
    );
  });

  test('fails when an unknown key has no near match', () => {
    expectLoadError(
      base('  - from: model-b\n', '  - from: model-b\n    weight: 50\n'),
      'rules[1].weight',
      '"weight"',
      'one of the keys from, to, action, http, description',
    );
  });

  test.each([
    ['0', '0'],
    ['70000', '70000'],
    ['"abc"', '"abc"'],
    ['8080.5', '8080.5'],
    ['-1', '-1'],
  ])('fails when a port is %s', (port, given) => {
    const file = fixture('bad.yaml', base('port: 24224', `port: ${port}`));
    expect(() => loadConfigFile(file)).toThrow(
      new RegExp(`bad\\.yaml: services\\[1\\]\\.port: given ${given.replace('.', '\\.')}, expected an integer from 1 to 65535$`),
    );
    const error = configError(() => loadConfigFile(file));
    expect(error.field).toBe('services[1].port');
    expect(error.given).toBe(given);
  });

  test('fails when a local port is privileged', () => {
    expectLoadError(base('port: 24224', 'port: 24224\n    localPort: 80'), 'services[1].localPort', '80', 'an integer from 1024 to 65535');
  });

  test('fails when a protocol is unknown', () => {
    expectLoadError(base('protocol: http', 'protocol: udp'), 'services[0].protocol', '"udp"', "one of 'tcp', 'http', 'http2', 'grpc'");
  });

  test('fails when a protocol is upper case', () => {
    expectLoadError(base('protocol: http', 'protocol: HTTP'), 'services[0].protocol', '"HTTP"', "one of 'tcp', 'http', 'http2', 'grpc'");
  });

  test.each([
    ['V1', '"V1"'],
    ['"1.0"', '"1.0"'],
    // Unquoted, YAML reads 1.0 as the number 1.
    ['1.0', '1'],
    ['v_1', '"v_1"'],
    ['""', '""'],
    ['-v1', '"-v1"'],
  ])('fails when a version is %s', (version, given) => {
    expectLoadError(base('versions: [v1, v2]', `versions: [v1, ${version}]`), 'functions[0].versions[1]', given, DNS_LABEL);
  });

  test('fails when a function has no versions', () => {
    expectLoadError(base('versions: [v1]', 'versions: []'), 'functions[1].versions', '[]', 'a non-empty array, without duplicates');
  });

  test('fails when a version is listed twice', () => {
    expectLoadError(
      base('versions: [v1, v2]', 'versions: [v1, v2, v1]'),
      'functions[0].versions[2]',
      '"v1"',
      'a value not already listed (the same as functions[0].versions[0])',
    );
  });

  test('fails when two services have the same name', () => {
    expectLoadError(
      base('name: log-service', 'name: feature-store'),
      'services[1].name',
      '"feature-store"',
      'a unique name ("feature-store" is already services[0].name)',
    );
  });

  test('fails when two functions have the same name', () => {
    expectLoadError(
      base('name: model-b', 'name: model-a'),
      'functions[1].name',
      '"model-a"',
      'a unique name ("model-a" is already functions[0].name)',
    );
  });

  test('fails when a function has the name of a service', () => {
    expectLoadError(
      base('name: model-b', 'name: log-service'),
      'functions[1].name',
      '"log-service"',
      'a unique name ("log-service" is already services[1].name)',
    );
  });

  test('fails when a version identity is the name of another function', () => {
    expectLoadError(
      base('name: model-b', 'name: model-a-v1'),
      'functions[1].name',
      '"model-a-v1"',
      'a unique name ("model-a-v1" is already the identity of functions[0].versions[0])',
    );
  });

  test('fails when two version identities are the same', () => {
    expectLoadError(
      base('  - name: model-b\n    versions: [v1]', '  - name: model\n    versions: [a-v2]'),
      'functions[1].versions[0]',
      '"a-v2"',
      'a version whose identity "model-a-v2" is unique ("model-a-v2" is already the identity of functions[0].versions[1])',
    );
  });

  test('fails when a version identity is longer than 63 characters', () => {
    const version = `v${'1'.repeat(55)}`;
    expectLoadError(
      base('versions: [v1]', `versions: [${version}]`),
      'functions[1].versions[0]',
      `"${version}"`,
      `a version short enough for the identity "model-b-${version}" to have at most 63 characters (it has 64)`,
    );
  });

  test('fails when a required field is missing', () => {
    expectLoadError(base('    port: 24224\n'), 'services[1].port', '(missing)', 'an integer from 1 to 65535');
  });

  test('fails when a required list is missing', () => {
    expectLoadError(
      base('rules:\n  - from: model-a\n    to: feature-store\n    http:\n      pathPrefix: /features\n      methods: [GET]\n  - from: model-b\n    to: log-service\n'),
      'rules',
      '(missing)',
      'an array of objects with the keys from, to, action, http, description',
    );
  });

  test('fails when a rule has no target', () => {
    expectLoadError(base('    to: log-service\n'), 'rules[1].to', '(missing)', DNS_LABEL);
  });

  test.each([
    ['Test-env', '"Test-env"'],
    ['1-env', '"1-env"'],
    ['e', '"e"'],
    ['env-', '"env-"'],
    ['a-very-long-environment-name-over-32', '"a-very-long-environment-name-over-32"'],
  ])('fails when the environment name is %s', (name, given) => {
    expectLoadError(
      base('name: test-env', `name: ${name}`),
      'name',
      given,
      "an environment name (2 to 32 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)",
    );
  });

  test('fails when a service name is not a DNS label', () => {
    expectLoadError(base('name: log-service', 'name: log_service'), 'services[1].name', '"log_service"', DNS_LABEL);
  });

  test('fails when a service name is longer than 63 characters', () => {
    const name = 'a'.repeat(64);
    expectLoadError(base('name: log-service', `name: ${name}`), 'services[1].name', `"${name}"`, DNS_LABEL);
  });

  test('fails when an http rule has two path matchers', () => {
    expectLoadError(
      base('      pathPrefix: /features\n', '      pathPrefix: /features\n      pathExact: /features/x\n'),
      'rules[0].http.pathExact',
      '"/features/x"',
      'at most one of pathExact, pathPrefix and pathRegex (pathPrefix is already set)',
    );
  });

  test('fails when a path does not start with a slash', () => {
    expectLoadError(base('pathPrefix: /features', 'pathPrefix: features'), 'rules[0].http.pathPrefix', '"features"', "a path starting with '/'");
  });

  test('fails when an http rule matches nothing', () => {
    expectLoadError(
      base('    http:\n      pathPrefix: /features\n      methods: [GET]\n', '    http: {}\n'),
      'rules[0].http',
      '{}',
      'at least one of the keys pathExact, pathPrefix, pathRegex, methods, headers',
    );
  });

  test('fails when an HTTP method is unknown', () => {
    const file = fixture('bad.yaml', base('methods: [GET]', 'methods: [GET, FETCH]'));
    expect(() => loadConfigFile(file)).toThrow(
      /bad\.yaml: rules\[0\]\.http\.methods\[1\]: given "FETCH", expected one of 'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'$/,
    );
  });

  test('fails when an HTTP method is lower case', () => {
    const error = loadError(base('methods: [GET]', 'methods: [get]'));
    expect(error.field).toBe('rules[0].http.methods[0]');
    expect(error.given).toBe('"get"');
  });

  test('fails when an HTTP method is listed twice', () => {
    expectLoadError(
      base('methods: [GET]', 'methods: [GET, POST, GET]'),
      'rules[0].http.methods[2]',
      '"GET"',
      'a value not already listed (the same as rules[0].http.methods[0])',
    );
  });

  test('fails when a header match has no matcher', () => {
    expectLoadError(
      base('      methods: [GET]\n', '      methods: [GET]\n      headers:\n        - name: x-canary\n'),
      'rules[0].http.headers[0]',
      '{"name":"x-canary"}',
      'exactly one of exact, prefix, suffix, regex and present',
    );
  });

  test('fails when a header match has two matchers', () => {
    expectLoadError(
      base('      methods: [GET]\n', '      methods: [GET]\n      headers:\n        - { name: x-canary, prefix: "1", exact: "1" }\n'),
      'rules[0].http.headers[0].exact',
      '"1"',
      'exactly one of exact, prefix, suffix, regex and present (prefix is already set)',
    );
  });

  test('fails when a header match has present: false', () => {
    expectLoadError(
      base('      methods: [GET]\n', '      methods: [GET]\n      headers:\n        - { name: x-canary, present: false }\n'),
      'rules[0].http.headers[0].present',
      'false',
      'true',
    );
  });

  test('fails when an action is unknown', () => {
    expectLoadError(base('    to: log-service\n', '    to: log-service\n    action: permit\n'), 'rules[1].action', '"permit"', "one of 'allow', 'deny'");
  });

  test('fails when env.region is set without network.availabilityZones', () => {
    expectLoadError(
      `${BASE}env:\n  region: us-east-1\n`,
      'network.availabilityZones',
      '(missing)',
      'network.availabilityZones when env.region is set, e.g. ["us-east-1a", "us-east-1b"] (looking the zones up would need AWS credentials at synth)',
    );
  });

  test('fails when an availability zone is not in env.region', () => {
    expectLoadError(
      `${BASE}env:\n  region: us-east-1\nnetwork:\n  availabilityZones: [us-east-1a, us-west-2b]\n`,
      'network.availabilityZones[1]',
      '"us-west-2b"',
      "an availability zone in us-east-1 (env.region), such as 'us-east-1a'",
    );
  });

  test('fails when maxAzs disagrees with the listed availability zones', () => {
    expectLoadError(
      `${BASE}network:\n  maxAzs: 3\n  availabilityZones: [us-east-1a, us-east-1b]\n`,
      'network.maxAzs',
      '3',
      '2, the number of network.availabilityZones (or leave maxAzs out when the zones are listed)',
    );
  });

  test('fails when availability zones are too few or repeated', () => {
    expectLoadError(
      `${BASE}network:\n  availabilityZones: [us-east-1a]\n`,
      'network.availabilityZones',
      '["us-east-1a"]',
      'an array with 2 to 3 items, without duplicates',
    );
    expectLoadError(
      `${BASE}network:\n  availabilityZones: [us-east-1a, us-east-1a]\n`,
      'network.availabilityZones[1]',
      '"us-east-1a"',
      'a value not already listed (the same as network.availabilityZones[0])',
    );
  });

  test.each([
    ['10.0.0.0/8', "an IPv4 CIDR block with a prefix of /16 or /17, such as '10.0.0.0/16' (the subnets need about 25,000 addresses: 2 x /20 and a /24 per zone)"],
    ['10.0.0.0', "an IPv4 CIDR block with a prefix of /16 or /17, such as '10.0.0.0/16' (the subnets need about 25,000 addresses: 2 x /20 and a /24 per zone)"],
    ['10.0.1.0/16', "a network address with the host bits zero, such as '10.0.0.0/16'"],
  ])('fails when the CIDR is %s', (cidr, expected) => {
    expectLoadError(`${BASE}network:\n  cidr: ${cidr}\n`, 'network.cidr', `"${cidr}"`, expected);
  });

  test('fails when network.serviceEgress is true while serverEgress is false', () => {
    expectLoadError(
      `${BASE}network:\n  serverEgress: false\n  serviceEgress: true\n`,
      'network.serviceEgress',
      'true',
      'false (or left out) while network.serverEgress is false: the service subnets reach the internet through the NAT gateways that serverEgress creates',
    );
  });

  const APPLY_EXPECTED =
    "network.serviceEgress: true beside it: the new cluster's nodes run in the service subnets, which have no internet route without it, and must pull Istio's images from docker.io and Knative's from gcr.io (or leave applyToCluster out: the charts are then only written to dist/)";

  test('fails when kubernetes.applyToCluster is true for a new cluster without network.serviceEgress', () => {
    expectLoadError(
      `${BASE}eks: {}\nkubernetes:\n  applyToCluster: true\n`,
      'kubernetes.applyToCluster',
      'true, with a new EKS cluster (no eks.existingCluster) and network.serviceEgress left out',
      APPLY_EXPECTED,
    );
  });

  test('fails when kubernetes.applyToCluster is true for a new cluster with network.serviceEgress false', () => {
    expectLoadError(
      `${BASE}network:\n  serviceEgress: false\neks: {}\nkubernetes:\n  applyToCluster: true\n`,
      'kubernetes.applyToCluster',
      'true, with a new EKS cluster (no eks.existingCluster) and network.serviceEgress false',
      APPLY_EXPECTED,
    );
  });

  test('accepts kubernetes.applyToCluster with network.serviceEgress, or with an existing cluster (whose network is the user\'s)', () => {
    const withEgress = loadConfigFile(fixture('egress.yaml', `${BASE}network:\n  serviceEgress: true\neks: {}\nkubernetes:\n  applyToCluster: true\n`));
    expect(withEgress.network).toStrictEqual({ serviceEgress: true });
    const existing = [
      'eks:',
      '  existingCluster:',
      '    clusterName: models',
      '    openIdConnectProviderArn: arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
      '    kubectlRoleArn: arn:aws:iam::123456789012:role/eks-admin',
      '    clusterSecurityGroupId: sg-0123456789abcdef0',
      'kubernetes:',
      '  applyToCluster: true',
      '',
    ].join('\n');
    expect(loadConfigFile(fixture('existing.yaml', `${BASE}${existing}`)).kubernetes).toStrictEqual({ applyToCluster: true });
    // Without an eks section the environment reports the missing cluster itself (lib/kubernetes.ts).
    expect(loadConfigFile(fixture('no-eks.yaml', `${BASE}kubernetes:\n  applyToCluster: true\n`)).eks).toBeUndefined();
  });

  test('fails when the account is a number', () => {
    expectLoadError(`${BASE}env:\n  account: 123456789012\n`, 'env.account', '123456789012', 'a 12-digit AWS account ID, as a string');
  });

  test('reports the first problem in document order, the most specific first', () => {
    const content = base('port: 8080', 'port: 0\n    prot: x').replace('pathPrefix: /features', 'pathPrefix: /a\n      pathExact: b');
    expect(loadError(content).field).toBe('services[0].port');
    // Within the http object: pathExact's own pattern error comes before the exclusivity error about it.
    expect(loadError(base('pathPrefix: /features', 'pathPrefix: /a\n      pathExact: b')).expected).toBe("a path starting with '/'");
  });

  test('accepts a pinned environment with its zones', () => {
    const content = `${BASE}env:\n  account: '123456789012'\n  region: eu-west-1\nnetwork:\n  availabilityZones: [eu-west-1a, eu-west-1b, eu-west-1c]\n  maxAzs: 3\n`;
    expect(loadConfigFile(fixture('env.yaml', content)).env).toStrictEqual({ account: '123456789012', region: 'eu-west-1' });
  });
});

describe('validateConfig', () => {
  test('returns the document it was given', () => {
    const doc: unknown = JSON.parse(JSON.stringify(DEFAULT_CONFIG));
    expect(validateConfig(doc, 'x.json')).toBe(doc);
  });

  test('fails with the file it was given as location', () => {
    const error = configError(() => validateConfig({ ...DEFAULT_CONFIG, name: 'X' }, 'in-memory'));
    expectDetails(error, {
      file: 'in-memory',
      field: 'name',
      given: '"X"',
      expected: "an environment name (2 to 32 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)",
    });
  });

  test('fails with a bracketed path for keys that are not identifiers', () => {
    const error = configError(() => validateConfig({ ...DEFAULT_CONFIG, 'stack name': 'x' }, 'in-memory'));
    expect(error.field).toBe('["stack name"]');
  });
});

describe('resolveConfig', () => {
  test('uses the embedded default without -c config', () => {
    expect(resolveConfig(undefined)).toStrictEqual({ config: DEFAULT_CONFIG, source: '(embedded default)' });
  });

  test('loads the file -c config names, relative to the working directory', () => {
    fixture('env.yaml', BASE);
    jest.spyOn(process, 'cwd').mockReturnValue(dir);
    try {
      const { config, source } = resolveConfig('env.yaml');
      expect(source).toBe(path.join(dir, 'env.yaml'));
      expect(config.name).toBe('test-env');
    } finally {
      jest.restoreAllMocks();
    }
  });

  test('reports errors in the file at its resolved path', () => {
    const file = fixture('bad.yaml', base('port: 24224', 'port: 70000'));
    expect(() => resolveConfig(file)).toThrow(/bad\.yaml: services\[1\]\.port: given 70000, expected an integer from 1 to 65535/);
  });

  test.each([
    [42, '42'],
    [true, 'true'],
    [{ file: 'env.yaml' }, '{"file":"env.yaml"}'],
    [null, 'null'],
    ['', '""'],
  ])('fails when -c config is %p', (value, given) => {
    const error = configError(() => resolveConfig(value));
    expectDetails(error, {
      file: '-c config',
      field: '(value)',
      given,
      expected: 'the path of a YAML or JSON environment config file, e.g. -c config=envs/dev.yaml',
    });
  });
});

describe('withConfigField', () => {
  test('returns what the function returns', () => {
    expect(withConfigField('env.yaml', 'rules[0]', () => 42)).toBe(42);
  });

  test('reports a LambdaMeshError at the config field, keeping given, expected and the cause', () => {
    const inner = new LambdaMeshError({
      location: 'MeshModel',
      field: 'from',
      given: '"model-x"',
      expected: 'a service, function or function version identity',
    });
    const error = configError(() =>
      withConfigField('env.yaml', 'rules[3].from', () => {
        throw inner;
      }),
    );
    expectDetails(error, {
      file: 'env.yaml',
      field: 'rules[3].from',
      given: '"model-x"',
      expected: 'a service, function or function version identity',
    });
    expect(error.cause).toBe(inner);
  });

  test('keeps a ConfigError that already names a field', () => {
    const inner = new ConfigError({ file: 'env.yaml', field: 'rules[3].http.methods[0]', given: '"get"', expected: 'GET' });
    expect(() =>
      withConfigField('env.yaml', 'rules[3]', () => {
        throw inner;
      }),
    ).toThrow(inner);
  });

  test('lets other errors through unchanged', () => {
    const inner = new TypeError('boom');
    expect(() =>
      withConfigField('env.yaml', 'rules[0]', () => {
        throw inner;
      }),
    ).toThrow(inner);
  });
});
