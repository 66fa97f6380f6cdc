import { spawnSync } from 'child_process';
import { gunzipSync } from 'zlib';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as YAML from 'yaml';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ConfigError, DEFAULT_CONFIG, type EnvironmentConfig, loadConfigFile, validateConfig } from '../../lib/config';
import { MeshEnvironment } from '../../lib/environment';
import {
  complianceResultOf, expectMatchesFileSnapshot, expectValidManifests, formatFindings, GUARD_CACHE_DIR, newTestApp, validateCloudFormation,
} from '../harness';
import { thrownBy } from '../util';

const root = path.resolve(__dirname, '..', '..');

/** The default environment's Kubernetes charts in dist/, numbered in the order they are applied (lib/kubernetes.ts). */
const KUBERNETES_FILES = ['0000-lambda-mesh-dev-namespaces.yaml', '0001-lambda-mesh-dev-observability.yaml', '0002-lambda-mesh-dev-platform.yaml', '0003-lambda-mesh-dev-gloo-routes.yaml'];

/** The default environment's stacks, in the order the environment creates them. */
const DEFAULT_STACKS = ['network', 'control-plane', 'mesh', 'services', 'function-model-a', 'function-model-b', 'function-model-c', 'eks']
  .map((s) => `lambda-mesh-dev-${s}`);

/** One snapshot file per stack of the default environment. */
const SNAPSHOTS = path.join(__dirname, '__snapshots__', 'default-environment');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-env-'));
}

/** The default environment with `count` model functions (`model-0001`, ...), each reading the feature store. */
function manyFunctions(count: number, versions: string[]): EnvironmentConfig {
  const names = Array.from({ length: count }, (_, i) => `model-${String(i + 1).padStart(4, '0')}`);
  return {
    ...DEFAULT_CONFIG,
    functions: names.map((name) => ({ name, versions })),
    rules: names.map((name) => ({ from: name, to: 'feature-store', http: { pathPrefix: '/features', methods: ['GET'] } })),
  };
}

function environment(config: EnvironmentConfig = DEFAULT_CONFIG): { app: ReturnType<typeof newTestApp>; env: MeshEnvironment; dist: string } {
  const app = newTestApp();
  const dist = path.join(tempDir(), 'dist');
  const env = new MeshEnvironment(app, { config, configSource: '(embedded default)', kubernetesOutdir: dist });
  return { app, env, dist };
}

let shared: ReturnType<typeof environment> | undefined;

/**
 * The default environment, synthesized once for the tests that only read it (a synth takes seconds). Tests that
 * change the config, or write into the environment's output, build their own with {@link environment}.
 */
function defaultEnvironment(): ReturnType<typeof environment> {
  shared ??= environment();
  return shared;
}

describe('MeshEnvironment', () => {
  test('stacks are named after the environment; the default fixes the region only', () => {
    const { env } = defaultEnvironment();
    expect(env.stacks.map((s) => s.stackName)).toEqual(DEFAULT_STACKS);
    expect(env.stacks.map((s) => s.node.id)).toEqual(env.stacks.map((s) => s.stackName));
    expect(env.networkStack.templateFile).toBe('lambda-mesh-dev-network.template.json');
    expect(env.networkStack.environment).toBe('aws://unknown-account/us-east-1');
  });

  test('without an env section the stacks are environment-agnostic, and the Gloo routes are applied through the cluster only', () => {
    const { env, dist } = environment({ ...DEFAULT_CONFIG, env: undefined, network: { maxAzs: 3 } });
    expect(env.stacks.map((s) => s.environment)).toEqual(Array(8).fill('aws://unknown-account/unknown-region'));
    const files = env.writeKubernetes().map((f) => path.basename(f));
    expect(files.some((f) => f.includes('gloo'))).toBe(false);
    expect(fs.existsSync(dist)).toBe(true);
  });

  test('a fixed account and region use the listed zones, so synth needs no lookup', () => {
    const { env } = environment({
      ...DEFAULT_CONFIG,
      env: { account: '123456789012', region: 'eu-west-1' },
      network: { availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'] },
    });
    expect(env.networkStack.environment).toBe('aws://123456789012/eu-west-1');
    const t = Template.fromStack(env.networkStack);
    t.resourceCountIs('AWS::EC2::Subnet', 12);
    t.hasResourceProperties('AWS::EC2::Subnet', { AvailabilityZone: 'eu-west-1c' });
  });

  test.each(DEFAULT_STACKS)('stack %s matches its snapshot file (asset hashes normalised)', (stackName) => {
    const stack = defaultEnvironment().env.stacks.find((s) => s.stackName === stackName)!;
    expectMatchesFileSnapshot(path.join(SNAPSHOTS, `${stackName}.template.json`), Template.fromStack(stack).toJSON());
  });

  test('the control plane follows the config: servers, version, instance type, gateway tasks', () => {
    const { env } = environment({ ...DEFAULT_CONFIG, controlPlane: { servers: 5, consulVersion: '1.20.6', instanceType: 'm7i.xlarge', gatewayTasks: 3 } });
    const t = Template.fromStack(env.controlPlaneStack);
    t.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '5', MaxSize: '5' });
    t.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: { InstanceType: 'm7i.xlarge' } });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 3 });
    expect(env.controlPlaneStack.cluster.consulVersion).toBe('1.20.6');
  });

  test('devMode: one server and one gateway task, each with a warning', () => {
    const { env } = environment({ ...DEFAULT_CONFIG, controlPlane: { servers: 1, devMode: true, gatewayTasks: 1 } });
    const warnings = Annotations.fromStack(env.controlPlaneStack).findWarning('*', Match.anyValue()).map((w) => JSON.stringify(w.entry.data));
    expect(warnings.some((w) => w.includes('single Consul server'))).toBe(true);
    expect(warnings.some((w) => w.toLowerCase().includes('gateway'))).toBe(true);
  });

  test.each([
    [{ servers: 2 }, 'controlPlane.servers', '2', /3 or 5 servers/],
    [{ servers: 1 }, 'controlPlane.servers', '1', /a single server needs devMode: true/],
    [{ consulVersion: '1.15.2' }, 'controlPlane.consulVersion', '"1.15.2"', /1\.16\.0 or newer/],
    [{ gatewayTasks: 1 }, 'controlPlane.gatewayTasks', '1', /at least 2 tasks, so the gateway survives the loss of a task or a zone/],
  ])('fails when controlPlane is %j, naming the config field', (controlPlane, field, given, expected) => {
    const err = thrownBy(() => environment({ ...DEFAULT_CONFIG, controlPlane }), (e): e is ConfigError => ConfigError.isConfigError(e));
    expect(err.file).toBe('(embedded default)');
    expect(err.field).toBe(field);
    expect(err.given).toBe(given);
    expect(err.expected).toMatch(expected);
  });

  test('fails when network.serverEgress is false (the config offers no package mirror yet)', () => {
    const err = thrownBy(() => environment({ ...DEFAULT_CONFIG, network: { serverEgress: false } }), (e): e is ConfigError => ConfigError.isConfigError(e));
    expect(err.field).toBe('network.serverEgress');
    expect(err.given).toBe('false');
    expect(err.expected).toMatch(/ConsulPackage\.fromBucket/);
  });

  test('the mesh gateway service starts only after the servers have signalled', () => {
    const { env } = defaultEnvironment();
    const t = Template.fromStack(env.controlPlaneStack);
    const service = Object.values(t.findResources('AWS::ECS::Service'))[0] as { DependsOn?: string[] };
    const asg = Object.keys(t.findResources('AWS::AutoScaling::AutoScalingGroup'))[0];
    const secrets = Object.keys(t.findResources('Custom::ConsulSecrets'))[0];
    expect(service.DependsOn).toEqual(expect.arrayContaining([asg, secrets]));
  });

  test('the mesh stack carries an intention for every rule of the default config and registers every function version', () => {
    const { env } = defaultEnvironment();
    const t = Template.fromStack(env.meshStack);
    const gz = (Object.values(t.findResources('Custom::ConsulIntentions'))[0].Properties as { EntriesGzip: string }).EntriesGzip;
    const entries = JSON.parse(gunzipSync(Buffer.from(gz, 'base64')).toString()) as Array<{ Kind: string; Name: string; Sources?: Array<{ Name: string }> }>;
    const pairs = entries
      .filter((e) => e.Kind === 'service-intentions' && e.Name !== '*')
      .flatMap((e) => e.Sources!.map((src) => `${src.Name} -> ${e.Name}`))
      .sort();
    expect(pairs).toEqual(env.mesh.graph().rules.map((r) => `${r.source} -> ${r.destination}`).sort());
    expect(pairs).toHaveLength(12);
    expect(entries.filter((e) => e.Kind === 'service-defaults').map((e) => e.Name).sort()).toEqual(['feature-store', 'result-writer']);
    const identities = JSON.parse((Object.values(t.findResources('Custom::MeshIdentities'))[0].Properties as { Identities: string }).Identities) as Array<{ name: string }>;
    expect(identities.map((i) => i.name)).toEqual(['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1']);
  });

  test('each model function has its own stack, after the mesh stack, running every version as a MeshFunction of lib/model-handler', () => {
    const { env } = defaultEnvironment();
    expect([...env.functionStacks.keys()]).toEqual(['model-a', 'model-b', 'model-c']);
    expect([...env.functions.keys()]).toEqual(['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1']);
    const versions = Object.fromEntries([...env.functionStacks].map(([name, stack]) => [name, [...stack.functions.keys()]]));
    expect(versions).toEqual({ 'model-a': ['model-a-v1', 'model-a-v2'], 'model-b': ['model-b-v1'], 'model-c': ['model-c-v1'] });
    for (const [name, stack] of env.functionStacks) {
      expect(stack.stackName).toBe(`lambda-mesh-dev-function-${name}`);
      expect(stack.modelFunctionName).toBe(name);
      const t = Template.fromStack(stack);
      // Five resources per version: the function, its role, two policies and its log group.
      expect(Object.keys(t.toJSON().Resources as object)).toHaveLength(5 * stack.functions.size);
      t.resourceCountIs('AWS::Lambda::Function', stack.functions.size);
      for (const fn of stack.functions.values()) {
        t.hasResourceProperties('AWS::Lambda::Function', { FunctionName: `lambda-mesh-dev-${fn.identity}`, Environment: { Variables: Match.objectLike({ MESH_IDENTITY: fn.identity }) } });
        expect(env.functions.get(fn.identity)).toBe(fn);
      }
      expect(stack.dependencies).toEqual(expect.arrayContaining([env.meshStack, env.controlPlaneStack, env.networkStack]));
    }
    Template.fromStack(env.functionStacks.get('model-b')!).hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Environment: { Variables: Match.objectLike({ MESH_IDENTITY: 'model-b-v1', MESH_UPSTREAM_FEATURE_STORE_URL: 'http://127.0.0.1:8080', MESH_UPSTREAM_RESULT_WRITER_URL: 'http://127.0.0.1:8081', MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' }) },
    });
    const fn = env.functions.get('model-a-v2')!;
    expect(fs.readdirSync(path.join(fn.buildContextDirectory, 'function')).sort()).toEqual(expect.arrayContaining(['app.py', 'requirements.txt']));
    // The eks stack routes to every function, so it comes after all of their stacks.
    expect(env.eksStack!.dependencies).toEqual(expect.arrayContaining([...env.functionStacks.values()]));
  });

  test('120 function versions (60 functions x 2) synthesize, every stack under CloudFormation\'s 500 resources', () => {
    const { app, env } = environment(manyFunctions(60, ['v1', 'v2']));
    const assembly = app.synth();
    expect(env.functionStacks.size).toBe(60);
    expect(env.functions.size).toBe(120);
    expect(assembly.stacks).toHaveLength(4 + 60 + 1);
    const resources = Object.fromEntries(assembly.stacks.map((st) => [st.stackName, Object.keys((st.template as { Resources: object }).Resources).length]));
    expect(Object.entries(resources).filter(([, n]) => n >= 500)).toEqual([]);
    expect(resources['lambda-mesh-dev-function-model-0042']).toBe(10);
  });

  test('adding a function leaves the other functions in their stacks with the same logical ids', () => {
    const before = environment(manyFunctions(3, ['v1', 'v2'])).env;
    const base = manyFunctions(3, ['v1', 'v2']);
    // In front, so every other function's index in the config moves too.
    const after = environment({ ...base, functions: [{ name: 'model-new', versions: ['v1'] }, ...base.functions], rules: [...base.rules, { from: 'model-new', to: 'feature-store' }] }).env;
    const layout = (env: MeshEnvironment, name: string): { stackName: string; logicalIds: string[] } => {
      const stack = env.functionStacks.get(name)!;
      return { stackName: stack.stackName, logicalIds: Object.keys(Template.fromStack(stack).toJSON().Resources as object).sort() };
    };
    for (const name of before.functionStacks.keys()) {
      expect(layout(after, name)).toEqual(layout(before, name));
    }
    expect(after.functionStacks.get('model-new')!.stackName).toBe('lambda-mesh-dev-function-model-new');
    expect(after.stacks.map((st) => st.stackName).slice(4, 8)).toEqual(['model-new', 'model-0001', 'model-0002', 'model-0003'].map((f) => `lambda-mesh-dev-function-${f}`));
  });

  test('fails when two versions of a function give one construct id, naming the config field', () => {
    const config = manyFunctions(1, ['v1-0', 'v10']);
    const err = thrownBy(() => environment(config), (e): e is ConfigError => ConfigError.isConfigError(e));
    expect(err.field).toBe('functions[0].versions[1]');
    expect(err.given).toBe('"v10"');
    expect(err.expected).toMatch(/differs from that of version "v1-0" \(both give Model0001V10/);
  });

  test('fails when a function version may call no service, naming the config field', () => {
    const config: EnvironmentConfig = { ...DEFAULT_CONFIG, functions: [...DEFAULT_CONFIG.functions, { name: 'model-d', versions: ['v1'] }] };
    const err = thrownBy(() => environment(config), (e): e is ConfigError => ConfigError.isConfigError(e));
    expect(err.field).toBe('functions[3].versions[0]');
    expect(err.expected).toMatch(/at least one service that model-d-v1 may call/);
  });

  test('writeKubernetes replaces the output directory whole', () => {
    const { env, dist } = environment();
    fs.mkdirSync(dist, { recursive: true });
    fs.writeFileSync(path.join(dist, 'stale.yaml'), 'kind: Stale\n');
    expect(env.writeKubernetes()).toEqual(KUBERNETES_FILES.map((f) => path.join(dist, f)));
    expect(fs.readdirSync(dist)).toEqual(KUBERNETES_FILES);
    expect(fs.readdirSync(path.dirname(dist))).toEqual(['dist']);
  });
});

describe('bin/app.ts (the main job, as `cdk synth` runs it)', () => {
  const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
  const app = path.join(root, 'bin', 'app.ts');

  function runApp(cwd: string, context: Record<string, unknown>): { status: number | null; stderr: string } {
    const context0 = JSON.parse(fs.readFileSync(path.join(root, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> };
    const r = spawnSync(tsx, [app], {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        CDK_OUTDIR: path.join(cwd, 'cdk.out'),
        CDK_CONTEXT_JSON: JSON.stringify({ ...context0.context, ...context }),
        // The suite's cfn-guard findings per template (the same for the same bytes): see bin/app.ts.
        ...(GUARD_CACHE_DIR !== undefined ? { LAMBDA_MESH_GUARD_CACHE_DIR: GUARD_CACHE_DIR } : {}),
      },
    });
    return { status: r.status, stderr: r.stderr };
  }

  test('synthesizes the default environment: templates, the Kubernetes charts in dist/, a summary, and no unacknowledged finding', () => {
    const cwd = tempDir();
    const r = runApp(cwd, {});
    // The one thing the app says on its own: that it bundles the secrets generator (esbuild, no Docker).
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Bundling asset '))).toEqual([]);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'cdk.out', 'lambda-mesh-dev-network.template.json'))).toBe(true);
    expect(fs.readdirSync(path.join(cwd, 'dist'))).toEqual(KUBERNETES_FILES);
    const summary = JSON.parse(fs.readFileSync(path.join(cwd, 'cdk.out', 'lambda-mesh-summary.json'), 'utf8')) as { mesh: { rules: string[] } };
    expect(summary.mesh.rules).toContain('model-a-v2 -> feature-store: allow GET /features*');
    // The compliance checks ran on every stack: no unacknowledged cdk-nag, cfn-guard or construct finding (warnings
    // included), and every acknowledgement gives its reason.
    const result = complianceResultOf(path.join(cwd, 'cdk.out'));
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    expect([...new Set(result.acknowledged.map((a) => a.plugin))]).toEqual(expect.arrayContaining(['AwsSolutions', 'cdk-validator-cfnguard']));
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  }, 120_000);

  test('fails when the config file is bad, naming file and field, and writes no Kubernetes output', () => {
    const cwd = tempDir();
    fs.mkdirSync(path.join(cwd, 'dist'));
    fs.writeFileSync(path.join(cwd, 'dist', 'previous.yaml'), 'kind: Previous\n');
    const bad = path.join(cwd, 'bad.yaml');
    fs.writeFileSync(bad, 'name: broken\nservices:\n  - name: feature-store\n    port: 8080\n    placement: external\nfunctions: []\nrules:\n  - from: model-a\n    to: feature-store\n');
    const r = runApp(cwd, { config: bad });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${bad}: rules[0].from: given "model-a", expected a service, function or function version`);
    expect(fs.existsSync(path.join(cwd, 'cdk.out', 'lambda-mesh-summary.json'))).toBe(false);
    expect(fs.readdirSync(path.join(cwd, 'dist'))).toEqual(['previous.yaml']);
  }, 60_000);
});

describe('MeshEnvironment with the eks section', () => {
  const configError = (config: EnvironmentConfig): ConfigError => thrownBy(() => validateConfig(config, '(test)'), (e): e is ConfigError => ConfigError.isConfigError(e));

  test('the default config has it: a private 1.35 cluster with encrypted secrets and all control plane logs, nodes in the service subnets', () => {
    expect(DEFAULT_CONFIG.eks).toEqual({});
    const { env } = defaultEnvironment();
    expect(env.eksStack!.stackName).toBe('lambda-mesh-dev-eks');
    const t = Template.fromStack(env.eksStack!);
    t.hasResourceProperties('AWS::EKS::Cluster', {
      Version: '1.35',
      ResourcesVpcConfig: Match.objectLike({ EndpointPrivateAccess: true, EndpointPublicAccess: false }),
      EncryptionConfig: [{ Provider: { KeyArn: Match.anyValue() }, Resources: ['secrets'] }],
      Logging: { ClusterLogging: { EnabledTypes: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'].map((type) => ({ Type: type })) } },
    });
    t.resourceCountIs('AWS::IAM::OIDCProvider', 1);
    t.hasResourceProperties('AWS::EKS::Nodegroup', { InstanceTypes: ['m7i.large'], ScalingConfig: { MinSize: 2, DesiredSize: 2, MaxSize: 2 } });
    const json = JSON.stringify(t.toJSON());
    const nodegroup = JSON.stringify(Object.values(t.findResources('AWS::EKS::Nodegroup'))[0]);
    expect(nodegroup).toMatch(/ServicesSubnet1/);
    // The kubectl handler runs where the Helm repository is reachable: the server subnets.
    const handler = JSON.stringify(Object.entries(t.findResources('AWS::Lambda::Function')).find(([k]) => k.startsWith('ClusterKubectlProviderHandler'))![1]);
    expect(handler).toMatch(/ServersSubnet1/);
    expect(handler).not.toMatch(/ServicesSubnet/);
    t.hasResourceProperties('AWS::ECR::PullThroughCacheRule', { EcrRepositoryPrefix: 'quay', UpstreamRegistryUrl: 'quay.io' });
    t.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: 'com.amazonaws.us-east-1.lambda', PrivateDnsEnabled: true });
    expect(json).toContain('.lambda');
  });

  test('Gloo: installed after its roles, and routes to every function version applied after the release', () => {
    const { env } = defaultEnvironment();
    const t = Template.fromStack(env.eksStack!);
    const [helm] = Object.entries(t.findResources('Custom::AWSCDK-EKS-HelmChart'));
    expect(helm[1].Properties).toMatchObject({ Chart: 'gloo', Version: '1.22.1', Namespace: 'gloo-system' });
    const values = JSON.stringify(env.eksStack!.resolve(helm[1].Properties.Values));
    expect(values).toContain('enableServiceAccountCredentials');
    expect(values).toContain('quay/solo-io');
    const applied = Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).find((r) => JSON.stringify(r.Properties).includes('VirtualService'))!;
    expect((applied as { DependsOn: string[] }).DependsOn).toContain(helm[0]);
    const manifest = JSON.stringify(env.eksStack!.resolve(applied.Properties.Manifest));
    for (const prefix of ['/model-a/v1', '/model-a/v2', '/model-b/v1', '/model-c/v1']) {
      expect(manifest).toContain(prefix);
    }
    expect(env.eksStack!.routes.upstream.toJson().spec.aws.lambdaFunctions).toHaveLength(4);
    expectValidManifests(env.eksStack!.routes.toJson() as object[]);
    // The gateway-proxy may invoke exactly the four functions (each at $LATEST and unqualified).
    const policy = Object.entries(t.findResources('AWS::IAM::Policy')).find(([k]) => k.startsWith('GlooAccessProxyRole'))![1];
    const statements = (policy.Properties as { PolicyDocument: { Statement: Array<{ Action: string | string[]; Resource: unknown[] }> } }).PolicyDocument.Statement;
    expect(statements.flatMap((st) => st.Action)).toEqual(['lambda:InvokeFunction']);
    expect(statements[0].Resource).toHaveLength(8);
  });

  test('the routes chart in dist/ names every function version and the region, and validates against the Gloo CRDs', () => {
    const { env, dist } = defaultEnvironment();
    const file = env.writeKubernetes().find((f) => f.endsWith('-gloo-routes.yaml'));
    expect(file).toBe(path.join(dist, '0003-lambda-mesh-dev-gloo-routes.yaml'));
    const docs = YAML.parseAllDocuments(fs.readFileSync(file!, 'utf8')).map((d) => d.toJS() as { kind: string; spec: { aws?: { region: string; lambdaFunctions: Array<{ lambdaFunctionName: string }> } } });
    expectValidManifests(docs);
    expect(docs.map((d) => d.kind)).toEqual(['Upstream', 'VirtualService']);
    expect(docs[0].spec.aws!.region).toBe('us-east-1');
    expect(docs[0].spec.aws!.lambdaFunctions.map((f) => f.lambdaFunctionName)).toEqual(
      ['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1'].map((identity) => `lambda-mesh-dev-${identity}`),
    );
  });

  test('configured routes: a path per function version, with unwrapAsApiGateway', () => {
    const { env } = environment({ ...DEFAULT_CONFIG, eks: { gloo: { routes: [{ path: '/a', function: 'model-a', version: 'v2', unwrapAsApiGateway: true }] } } });
    const vs = env.eksStack!.routes.virtualService.toJson() as { spec: { virtualHost: { routes: Array<{ matchers: unknown; routeAction: { single: { destinationSpec: { aws: unknown } } } }> } } };
    expect(vs.spec.virtualHost.routes).toHaveLength(1);
    expect(vs.spec.virtualHost.routes[0].matchers).toEqual([{ prefix: '/a' }]);
    expect(vs.spec.virtualHost.routes[0].routeAction.single.destinationSpec.aws).toEqual({ logicalName: 'model-a-v2', invocationStyle: 'SYNC', unwrapAsApiGateway: true });
    expect(env.eksStack!.routes.upstream.toJson().spec.aws.lambdaFunctions).toHaveLength(1);
  });

  test('discovery: on, its role and a warning', () => {
    const { env } = environment({ ...DEFAULT_CONFIG, eks: { gloo: { discovery: true } } });
    expect(env.eksStack!.glooAccess.discoveryRole).toBeDefined();
    Annotations.fromStack(env.eksStack!).hasWarning('/lambda-mesh-dev-eks/GlooAccess', Match.stringLikeRegexp('function discovery is on'));
  });

  test('without the eks section there is no cluster', () => {
    const { env } = environment({ ...DEFAULT_CONFIG, eks: undefined });
    expect(env.eksStack).toBeUndefined();
    expect(env.stacks.map((st) => st.stackName)).not.toContain('lambda-mesh-dev-eks');
  });

  test('an existing cluster: imported with its OIDC provider, the kubectl handler runs as the given role, no unacknowledged finding', () => {
    const { app, env } = environment({
      ...DEFAULT_CONFIG,
      eks: {
        existingCluster: {
          clusterName: 'models',
          openIdConnectProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE',
          kubectlRoleArn: 'arn:aws:iam::123456789012:role/eks-admin',
          clusterSecurityGroupId: 'sg-0123456789abcdef0',
        },
      },
    });
    const t = Template.fromStack(env.eksStack!);
    t.resourceCountIs('AWS::EKS::Cluster', 0);
    t.resourceCountIs('Custom::AWSCDK-EKS-HelmChart', 1);
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Federated: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE' } })] },
    });
    const handler = Object.entries(t.findResources('AWS::Lambda::Function')).find(([k]) => k.includes('KubectlProvider') && k.includes('Handler'));
    expect(JSON.stringify(handler)).toContain('arn:aws:iam::123456789012:role/eks-admin');
    const result = validateCloudFormation(app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
  });

  test.each([
    ['a route names a function outside the mesh', { path: '/x', function: 'billing', version: 'v1' }, 'eks.gloo.routes[0].function', /a function of the mesh \(model-a, model-b, model-c\)/],
    ['a route names a version the function does not have', { path: '/x', function: 'model-b', version: 'v2' }, 'eks.gloo.routes[0].version', /a version of function model-b \(v1\)/],
  ])('fails when %s, naming the config field', (_label, route, field, expected) => {
    const err = configError({ ...DEFAULT_CONFIG, eks: { gloo: { routes: [route] } } });
    expect(err.field).toBe(field);
    expect(err.expected).toMatch(expected);
  });

  test('fails when two routes share a path', () => {
    const err = configError({ ...DEFAULT_CONFIG, eks: { gloo: { routes: [{ path: '/x', function: 'model-a', version: 'v1' }, { path: '/x', function: 'model-b', version: 'v1' }] } } });
    expect(err.field).toBe('eks.gloo.routes[1].path');
  });
});

describe('MeshEnvironment from examples/config/eks-istio-knative.yaml', () => {
  const file = path.join(root, 'examples', 'config', 'eks-istio-knative.yaml');

  test('eks-istio-knative example: the default environment plus network.serviceEgress and kubernetes.applyToCluster', () => {
    expect(loadConfigFile(file)).toStrictEqual({
      ...DEFAULT_CONFIG,
      network: { ...DEFAULT_CONFIG.network, serviceEgress: true },
      kubernetes: { applyToCluster: true },
    });
  });

  test('eks-istio-knative example: synthesizes with Istio and Knative on the cluster, the charts applied through it, service subnets routed to NAT, no unacknowledged finding', () => {
    const app = newTestApp();
    const env = new MeshEnvironment(app, { config: loadConfigFile(file), configSource: file, kubernetesOutdir: path.join(tempDir(), 'dist') });

    // The network: each service subnet's default route goes to a NAT gateway (the servers' stay as they were).
    const network = Template.fromStack(env.networkStack);
    const natRoutes = Object.values(network.findResources('AWS::EC2::Route', { Properties: { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: Match.anyValue() } }))
      .map((r) => JSON.stringify(r.Properties.RouteTableId));
    expect(natRoutes.filter((t) => t.includes('ServicesSubnet'))).toHaveLength(3);
    expect(natRoutes.filter((t) => t.includes('ServersSubnet'))).toHaveLength(3);
    expect(natRoutes.filter((t) => t.includes('FunctionsSubnet'))).toEqual([]);

    // The eks stack: Gloo, Istio and the Knative Operator from their Helm charts, and the environment's charts
    // (namespaces, platform, observability) applied after the Istio and Knative installs.
    const eks = Template.fromStack(env.eksStack!);
    const helm = eks.findResources('Custom::AWSCDK-EKS-HelmChart');
    expect(Object.values(helm).map((c) => c.Properties.Release as string).sort()).toEqual(['gloo', 'istio-base', 'istio-ingressgateway', 'istiod', 'knative-operator']);
    expect(env.kubernetesPlatform.istio).toBeDefined();
    expect(env.kubernetesPlatform.knative).toBeDefined();
    const manifests = eks.findResources('Custom::AWSCDK-EKS-KubernetesResource');
    const text = (manifest: unknown): string => (typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
    const appliedWith = (matches: (manifest: string) => boolean): string => {
      const found = Object.entries(manifests).find(([, r]) => matches(text(env.eksStack!.resolve(r.Properties.Manifest))));
      expect(found).toBeDefined();
      return found![0];
    };
    const dependsOn = (id: string): string[] => (manifests[id] as { DependsOn?: string[] }).DependsOn ?? [];
    const release = (name: string): string => Object.entries(helm).find(([, c]) => c.Properties.Release === name)![0];
    const namespaces = appliedWith((m) => m.startsWith('[') && (JSON.parse(m) as Array<{ kind: string; metadata: { name: string } }>).some((d) => d.kind === 'Namespace' && d.metadata.name === 'lambda-mesh'));
    expect(dependsOn(namespaces)).toEqual(expect.arrayContaining([release('istio-ingressgateway'), release('knative-operator')]));
    expect(dependsOn(appliedWith((m) => m.includes('allow-nothing')))).toContain(namespaces);
    expect(dependsOn(appliedWith((m) => m.includes('"name":"otel-collector"')))).toContain(namespaces);

    const result = validateCloudFormation(app);
    // The one expected warning: the service subnets' egress is a warned opt-in, which the example turns on.
    const serviceEgress = result.findings.filter((f) => f.acknowledgementId === 'Annotation::lambda-mesh:network-service-egress');
    expect(serviceEgress.map((f) => f.constructPath)).toEqual(['lambda-mesh-dev-network/Network']);
    const others = result.findings.filter((f) => !serviceEgress.includes(f));
    if (others.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(others)}`);
    }
  });
});
