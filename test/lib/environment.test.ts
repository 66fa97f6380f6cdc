import { spawnSync } from 'child_process';
import { gunzipSync } from 'zlib';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ConfigError, DEFAULT_CONFIG, type EnvironmentConfig } from '../../lib/config';
import { MeshEnvironment } from '../../lib/environment';
import { formatFindings, newTestApp, validateCloudFormation } from '../harness';
import { thrownBy } from '../util';

const root = path.resolve(__dirname, '..', '..');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-env-'));
}

function environment(config: EnvironmentConfig = DEFAULT_CONFIG): { app: ReturnType<typeof newTestApp>; env: MeshEnvironment; dist: string } {
  const app = newTestApp();
  const dist = path.join(tempDir(), 'dist');
  const env = new MeshEnvironment(app, { config, configSource: '(embedded default)', kubernetesOutdir: dist });
  return { app, env, dist };
}

describe('MeshEnvironment', () => {
  test('the default environment has no unacknowledged cdk-nag or cfn-guard finding, and every acknowledgement has a reason', () => {
    const { app } = environment();
    const result = validateCloudFormation(app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });

  test('stacks are named after the environment and environment-agnostic by default', () => {
    const { env } = environment();
    expect(env.stacks.map((s) => s.stackName)).toEqual(['lambda-mesh-dev-network', 'lambda-mesh-dev-control-plane', 'lambda-mesh-dev-mesh']);
    expect(env.networkStack.templateFile).toBe('lambda-mesh-dev-network.template.json');
    expect(env.networkStack.environment).toBe('aws://unknown-account/unknown-region');
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

  test('the whole environment matches its snapshot (asset hashes normalised)', () => {
    const { env } = environment();
    expect(Object.fromEntries(env.stacks.map((s) => [s.stackName, Template.fromStack(s).toJSON()]))).toMatchSnapshot();
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
    const { env } = environment();
    const t = Template.fromStack(env.controlPlaneStack);
    const service = Object.values(t.findResources('AWS::ECS::Service'))[0] as { DependsOn?: string[] };
    const asg = Object.keys(t.findResources('AWS::AutoScaling::AutoScalingGroup'))[0];
    const secrets = Object.keys(t.findResources('Custom::ConsulSecrets'))[0];
    expect(service.DependsOn).toEqual(expect.arrayContaining([asg, secrets]));
  });

  test('the mesh stack carries an intention for every rule of the default config and registers every function version', () => {
    const { env } = environment();
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

  test('writeKubernetes replaces the output directory whole', () => {
    const { env, dist } = environment();
    fs.mkdirSync(dist, { recursive: true });
    fs.writeFileSync(path.join(dist, 'stale.yaml'), 'kind: Stale\n');
    expect(env.writeKubernetes()).toEqual([]);
    expect(fs.readdirSync(dist)).toEqual([]);
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
      env: { ...process.env, CDK_OUTDIR: path.join(cwd, 'cdk.out'), CDK_CONTEXT_JSON: JSON.stringify({ ...context0.context, ...context }) },
    });
    return { status: r.status, stderr: r.stderr };
  }

  test('synthesizes the default environment: templates, an empty dist/ and a summary', () => {
    const cwd = tempDir();
    const r = runApp(cwd, {});
    // The one thing the app says on its own: that it bundles the secrets generator (esbuild, no Docker).
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('Bundling asset '))).toEqual([]);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(cwd, 'cdk.out', 'lambda-mesh-dev-network.template.json'))).toBe(true);
    expect(fs.readdirSync(path.join(cwd, 'dist'))).toEqual([]);
    const summary = JSON.parse(fs.readFileSync(path.join(cwd, 'cdk.out', 'lambda-mesh-summary.json'), 'utf8')) as { mesh: { rules: string[] } };
    expect(summary.mesh.rules).toContain('model-a-v2 -> feature-store: allow GET /features*');
  }, 60_000);

  test('fails when the config file is bad, naming file and field, and writes no Kubernetes output', () => {
    const cwd = tempDir();
    fs.mkdirSync(path.join(cwd, 'dist'));
    fs.writeFileSync(path.join(cwd, 'dist', 'previous.yaml'), 'kind: Previous\n');
    const bad = path.join(cwd, 'bad.yaml');
    fs.writeFileSync(bad, 'name: broken\nservices:\n  - name: feature-store\n    port: 8080\nfunctions: []\nrules:\n  - from: model-a\n    to: feature-store\n');
    const r = runApp(cwd, { config: bad });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${bad}: rules[0].from: given "model-a", expected a service, function or function version`);
    expect(fs.existsSync(path.join(cwd, 'cdk.out', 'lambda-mesh-summary.json'))).toBe(false);
    expect(fs.readdirSync(path.join(cwd, 'dist'))).toEqual(['previous.yaml']);
  }, 60_000);
});
