import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { LambdaMeshError } from '../../constructs/core';
import { MeshEcsService } from '../../constructs/services';
import { ConfigError, DEFAULT_CONFIG, type EnvironmentConfig, loadConfigFile, type ServiceConfig, validateConfig } from '../../lib/config';
import { MeshEnvironment } from '../../lib/environment';
import { SAMPLE_BASE_IMAGE } from '../../lib/sample-services/image';
import { consulEcsConfigsOf, formatFindings, newTestApp, validateCloudFormation } from '../harness';
import { thrownBy } from '../util';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const ECR_IMAGE = `123456789012.dkr.ecr.us-east-1.amazonaws.com/feature-store@${DIGEST}`;
const SERVICES_STACK = 'lambda-mesh-dev-services';

type Container = {
  Name: string;
  Image: unknown;
  User?: string;
  Command?: string[];
  Environment?: Array<{ Name: string; Value: unknown }>;
  HealthCheck?: { Command: string[] };
};

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-services-'));
}

/** The environment of `config`, from the embedded default's source unless a config file is named. */
function environment(config: EnvironmentConfig, configSource = '(embedded default)'): { app: ReturnType<typeof newTestApp>; env: MeshEnvironment } {
  const app = newTestApp();
  const env = new MeshEnvironment(app, { config, configSource, kubernetesOutdir: path.join(tempDir(), 'dist') });
  return { app, env };
}

/** The default config without EKS, with services[i] patched. */
function withService(i: number, patch: Partial<ServiceConfig>, rest: Partial<EnvironmentConfig> = {}): EnvironmentConfig {
  return { ...DEFAULT_CONFIG, eks: undefined, services: DEFAULT_CONFIG.services.map((s, j) => (j === i ? { ...s, ...patch } : s)), ...rest };
}

function appOf(t: Template, prefix: string): Container {
  const [, td] = Object.entries(t.findResources('AWS::ECS::TaskDefinition')).find(([id]) => id.startsWith(prefix))!;
  return ((td as { Properties: { ContainerDefinitions: Container[] } }).Properties.ContainerDefinitions).find((c) => c.Name === 'app')!;
}

function envOf(c: Container): Record<string, unknown> {
  return Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));
}

/** The docker image assets of a stack, as its asset manifest lists them: source directory in the cloud assembly. */
function dockerAssets(app: ReturnType<typeof newTestApp>, stackName: string): Array<{ hash: string; directory: string }> {
  const assembly = app.synth();
  const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, `${stackName}.assets.json`), 'utf8')) as { dockerImages?: Record<string, { source: { directory: string } }> };
  return Object.entries(manifest.dockerImages ?? {}).map(([hash, a]) => ({ hash, directory: path.join(assembly.directory, a.source.directory) }));
}

function configError(fn: () => unknown): ConfigError {
  return thrownBy(fn, (e): e is ConfigError => ConfigError.isConfigError(e));
}

describe('ServicesStack', () => {
  describe('the default config', () => {
    const { app, env } = environment(DEFAULT_CONFIG);
    const t = Template.fromStack(env.servicesStack!);

    test('runs each of the three sample backends as a MeshEcsService, in its own stack between the control plane and the functions', () => {
      expect(env.servicesStack!.stackName).toBe(SERVICES_STACK);
      expect([...env.servicesStack!.ecsServices.keys()]).toEqual(['feature-store', 'log-service', 'result-writer']);
      for (const svc of env.servicesStack!.ecsServices.values()) {
        expect(svc).toBeInstanceOf(MeshEcsService);
      }
      t.resourceCountIs('AWS::ECS::Service', 3);
      t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 2, LaunchType: 'FARGATE' });
      t.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '256', Memory: '1024', RuntimePlatform: { CpuArchitecture: 'X86_64' } });
      expect(env.servicesStack!.dependencies).toContain(env.controlPlaneStack);
      for (const stack of env.functionStacks.values()) {
        expect(stack.dependencies).toContain(env.servicesStack!);
      }
    });

    test.each([
      ['FeatureStore', 'feature-store', '8080'],
      ['LogService', 'log-service', '24224'],
      ['ResultWriter', 'result-writer', '8081'],
    ])('%s runs the sample image with command [%s], its health check and PORT %s, as the image\'s node user', (id, sample, port) => {
      const c = appOf(t, `${id}TaskDefinition`);
      expect(JSON.stringify(c.Image)).toMatch(/cdk-[a-z0-9]+-container-assets-.*:[a-f0-9]{64}"/);
      expect(c.Command).toEqual([sample]);
      expect(c.HealthCheck?.Command).toEqual(['CMD', 'node', '/app/server.js', 'healthcheck', sample]);
      expect(envOf(c)).toEqual({ PORT: port, HOST: '127.0.0.1' });
      expect(c.User).toBe('node');
    });

    test('the three samples share one image, built from the generated context: a pinned node base and USER node', () => {
      const images = new Set(['FeatureStore', 'LogService', 'ResultWriter'].map((id) => JSON.stringify(appOf(t, `${id}TaskDefinition`).Image)));
      expect(images.size).toBe(1);
      const assets = dockerAssets(app, SERVICES_STACK);
      expect(assets).toHaveLength(1);
      const dockerfile = fs.readFileSync(path.join(assets[0].directory, 'Dockerfile'), 'utf8');
      expect(SAMPLE_BASE_IMAGE).toBe('node:24.21.0-alpine@sha256:ebfe2f90462722a7a4de65e91990e97fe0d401c70e0e762c5b53302f905ec1c1');
      expect(dockerfile.split('\n')).toEqual(expect.arrayContaining([`FROM ${SAMPLE_BASE_IMAGE}`, 'USER node', 'ENTRYPOINT ["node", "/app/server.js"]']));
      expect(fs.existsSync(path.join(assets[0].directory, 'server.js'))).toBe(true);
      expect(JSON.stringify(appOf(t, 'FeatureStoreTaskDefinition').Image)).toContain(assets[0].hash);
    });

    test('every CONSUL_ECS_CONFIG_JSON validates against the official consul-ecs schema; the samples call nothing', () => {
      const configs = consulEcsConfigsOf(t.toJSON());
      expect(configs).toHaveLength(6);
      expect(configs.flatMap((c) => c.errors)).toEqual([]);
      expect(configs.map((c) => (c.config.service as { name: string; port: number })).map((s) => `${s.name}:${s.port}`)).toEqual([
        'feature-store:8080', 'feature-store:8080', 'log-service:24224', 'log-service:24224', 'result-writer:8081', 'result-writer:8081',
      ]);
      for (const c of configs) {
        expect(c.config).toMatchObject({ proxy: { upstreams: [] }, healthSyncContainers: ['app'] });
      }
    });
  });

  test('workload.image: a private ECR image by digest, pulled by the execution role, run as a non-root user', () => {
    const { env } = environment(withService(0, { workload: { image: ECR_IMAGE, count: 3, cpu: 512, memoryMiB: 2048, healthCheck: { command: ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'] } } }));
    const t = Template.fromStack(env.servicesStack!);
    const c = appOf(t, 'FeatureStoreTaskDefinition');
    expect(JSON.stringify(c.Image)).toMatch(/"123456789012\.dkr\.ecr\.us-east-1\.",\{"Ref":"AWS::URLSuffix"\},"\/feature-store@sha256:a{64}"/);
    expect(c.HealthCheck?.Command).toEqual(['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz']);
    expect(envOf(c)).toEqual({ PORT: '8080' });
    expect(c.User).toBe('1000');
    expect(c.Command).toBeUndefined();
    t.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '512', Memory: '2048' });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 3 });
    t.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [{ Ref: Match.stringLikeRegexp('^FeatureStoreTaskDefinitionExecutionRole') }],
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'], Resource: Match.arrayWith(['arn:aws:ecr:us-east-1:123456789012:repository/feature-store']) })]) },
    });
  });

  describe('workload.build', () => {
    function buildConfig(): { file: string; dockerfile: string } {
      const dir = tempDir();
      const dockerfile = `FROM public.ecr.aws/docker/library/busybox@${DIGEST}\nUSER 1000\nCMD ["httpd", "-f", "-p", "8080"]\n`;
      fs.mkdirSync(path.join(dir, 'feature-store'));
      fs.writeFileSync(path.join(dir, 'feature-store', 'Dockerfile'), dockerfile);
      const file = path.join(dir, 'env.json');
      fs.writeFileSync(file, JSON.stringify(withService(0, { workload: { build: 'feature-store' } })));
      return { file, dockerfile };
    }

    test('builds the directory next to the config file into an image asset', () => {
      const { file, dockerfile } = buildConfig();
      const { app, env } = environment(loadConfigFile(file), file);
      const t = Template.fromStack(env.servicesStack!);
      const c = appOf(t, 'FeatureStoreTaskDefinition');
      expect(c.User).toBe('1000');
      expect(envOf(c)).toEqual({ PORT: '8080' });
      const built = dockerAssets(app, SERVICES_STACK).find((a) => JSON.stringify(c.Image).includes(a.hash))!;
      expect(fs.readFileSync(path.join(built.directory, 'Dockerfile'), 'utf8')).toBe(dockerfile);
    });

    test('image and build workloads synthesize without an unacknowledged cdk-nag or cfn-guard finding', () => {
      const { file } = buildConfig();
      const config = loadConfigFile(file);
      const { app } = environment({ ...config, services: config.services.map((s, i) => (i === 2 ? { ...s, workload: { image: ECR_IMAGE.replace('feature-store', 'result-writer') } } : s)) }, file);
      const result = validateCloudFormation(app);
      const services = result.findings.filter((f) => f.template === `${SERVICES_STACK}.template.json`);
      if (services.length > 0) {
        throw new Error(`unacknowledged findings in the services stack:\n${formatFindings(services)}`);
      }
    });
  });

  test('workload.upstreams: the app gets the upstream\'s local address, and the upstream admits the caller', () => {
    const config = withService(0, { workload: { sample: 'feature-store', upstreams: ['log-service'] } }, { rules: [...DEFAULT_CONFIG.rules, { from: 'feature-store', to: 'log-service' }] });
    const { env } = environment(config);
    const t = Template.fromStack(env.servicesStack!);
    expect(envOf(appOf(t, 'FeatureStoreTaskDefinition'))).toMatchObject({ MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 20000,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LogServiceSecurityGroup'), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^FeatureStoreSecurityGroup'), 'GroupId'] },
    });
  });

  test('a service placed elsewhere gets no ECS service', () => {
    const { env } = environment(withService(2, { placement: 'external', workload: undefined }));
    expect([...env.servicesStack!.ecsServices.keys()]).toEqual(['feature-store', 'log-service']);
  });

  describe('construct errors name the config field', () => {
    test('fails when workload.upstreams names a service the rules do not let it call', () => {
      const err = configError(() => environment(withService(0, { workload: { sample: 'feature-store', upstreams: ['log-service'] } })));
      expect(err.file).toBe('(embedded default)');
      expect(err.field).toBe('services[0].workload.upstreams[0]');
      expect(err.given).toBe('"log-service"');
      expect(err.expected).toMatch(/a service that feature-store may call \(none: no rule allows it to call anything\)/);
      expect(LambdaMeshError.isLambdaMeshError(err.cause)).toBe(true);
    });

    test('fails when an upstream\'s local port is the caller\'s own port, naming the upstream\'s localPort', () => {
      const config: EnvironmentConfig = {
        ...DEFAULT_CONFIG,
        eks: undefined,
        services: [
          { name: 'scorer', port: 9000, localPort: 19000, protocol: 'http', placement: 'ecs', workload: { image: ECR_IMAGE } },
          { name: 'ranker', port: 19000, localPort: 29000, protocol: 'http', placement: 'ecs', workload: { image: ECR_IMAGE } },
        ],
        rules: [{ from: 'ranker', to: 'scorer' }],
      };
      const err = configError(() => environment(config));
      expect(err.field).toBe('services[0].localPort');
      expect(err.given).toBe('19000');
      expect(err.expected).toMatch(/ranker's own port/);
    });

    test('fails when the port is the sidecar\'s (unchecked config), naming services[i].port', () => {
      const err = configError(() => environment(withService(0, { port: 20000 })));
      expect(err.field).toBe('services[0].port');
      expect(err.given).toBe('20000');
    });

    test('fails when a public-registry image meets service subnets without egress', () => {
      const image = `docker.io/library/nginx@${DIGEST}`;
      const err = configError(() => environment(withService(0, { workload: { image } })));
      expect(err.field).toBe('services[0].workload.image');
      expect(err.given).toBe(JSON.stringify(image));
      expect(err.expected).toMatch(/network.serviceEgress/);
      // With egress it is pulled over the NAT path.
      const { env } = environment(withService(0, { workload: { image } }, { network: { ...DEFAULT_CONFIG.network, serviceEgress: true } }));
      expect(JSON.stringify(appOf(Template.fromStack(env.servicesStack!), 'FeatureStoreTaskDefinition').Image)).toContain(image);
    });
  });
});

describe('the config loader\'s placement checks', () => {
  const FILE = 'env.yaml';
  const validate = (config: EnvironmentConfig): EnvironmentConfig => validateConfig(structuredClone(config), FILE);

  test('accepts the default config, and Fargate sizes at the edges', () => {
    expect(validate(DEFAULT_CONFIG)).toEqual(DEFAULT_CONFIG);
    for (const [cpu, memoryMiB] of [[256, 512], [256, 2048], [512, 4096], [1024, 8192], [2048, 4096], [4096, 30720]]) {
      expect(() => validate(withService(0, { workload: { sample: 'feature-store', cpu, memoryMiB } }))).not.toThrow();
    }
  });

  test.each<[string, EnvironmentConfig, string, string, RegExp]>([
    ['a service with placement ecs has no workload', withService(0, { workload: undefined }), 'services[0].workload', '(missing)', /a workload for placement ecs: one of sample/],
    ['a service with placement external has a workload', withService(0, { placement: 'external' }), 'services[0].workload', '(a workload)', /no workload: an external service is run and registered in Consul by its owner/],
    ['a service with placement eks has no eks section', withService(0, { placement: 'eks' }), 'services[0].placement', '"eks"', /this config has no eks section/],
    ['the port is the sidecar\'s public listener', withService(0, { port: 20000 }), 'services[0].port', '20000', /a port other than 20000 and 22000/],
    ['the port is Envoy\'s readiness port', withService(0, { port: 22000 }), 'services[0].port', '22000', /a port other than 20000 and 22000/],
    ['an ecs service has healthCheck.path', withService(0, { workload: { sample: 'feature-store', healthCheck: { path: '/healthz' } } }), 'services[0].workload.healthCheck.path', '"/healthz"', /healthCheck.command for placement ecs/],
    ['cpu is not a Fargate size', withService(0, { workload: { sample: 'feature-store', cpu: 300 } }), 'services[0].workload.cpu', '300', /Fargate task CPU units: 256, 512, 1024, 2048, 4096/],
    ['memory is too much for the cpu', withService(0, { workload: { sample: 'feature-store', cpu: 256, memoryMiB: 4096 } }), 'services[0].workload.memoryMiB', '4096', /for 256 CPU units: 512, 1024 or 2048 MiB/],
    ['memory is 1536 with 256 cpu (Fargate offers 512, 1024 and 2048)', withService(0, { workload: { sample: 'feature-store', cpu: 256, memoryMiB: 1536 } }), 'services[0].workload.memoryMiB', '1536', /512, 1024 or 2048 MiB/],
    ['memory is not a whole GiB above 256 cpu', withService(0, { workload: { sample: 'feature-store', cpu: 1024, memoryMiB: 2560 } }), 'services[0].workload.memoryMiB', '2560', /for 1024 CPU units: 2048 to 8192 MiB in steps of 1024/],
    ['the default memory is too little for the cpu', withService(0, { workload: { sample: 'feature-store', cpu: 1024 } }), 'services[0].workload.memoryMiB', '1024', /2048 to 8192/],
    ['the log-service sample is declared http', withService(1, { protocol: 'http' }), 'services[1].protocol', '"http"', /tcp: the sample log-service speaks tcp/],
    ['the feature-store sample is left at tcp', withService(0, { protocol: undefined }), 'services[0].protocol', '(missing: tcp by default)', /http: the sample feature-store speaks http/],
    ['workload.upstreams names an unknown service', withService(0, { workload: { sample: 'feature-store', upstreams: ['billing'] } }), 'services[0].workload.upstreams[0]', '"billing"', /a service of this config \(feature-store, log-service, result-writer\)/],
    ['an ecs service has an instanceType', withService(0, { workload: { sample: 'feature-store', instanceType: 't4g.small' } }), 'services[0].workload.instanceType', '"t4g.small"', /it sizes the instances of placement ec2/],
    ['controlPlane.consulVersion is 1.21.5', { ...DEFAULT_CONFIG, controlPlane: { consulVersion: '1.21.5' } }, 'controlPlane.consulVersion', '"1.21.5"', /a Consul 2.0 release such as '2.0.3'.*consul-dataplane 2.0/],
  ])('fails when %s', (_why, config, field, given, expected) => {
    const err = configError(() => validate(config));
    expect(err.file).toBe(FILE);
    expect(err.field).toBe(field);
    expect(err.given).toBe(given);
    expect(err.expected).toMatch(expected);
    expect(err.message).toContain(`${FILE}: ${field}: given ${given}`);
  });

  test('fails when workload.build names a directory without a Dockerfile (relative to the config file)', () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, 'feature-store'));
    const file = path.join(dir, 'env.json');
    fs.writeFileSync(file, JSON.stringify(withService(0, { workload: { build: 'feature-store' } })));
    const err = configError(() => loadConfigFile(file));
    expect(err.file).toBe(file);
    expect(err.field).toBe('services[0].workload.build');
    expect(err.given).toBe('"feature-store"');
    expect(err.expected).toBe(`a directory with a Dockerfile (looked in ${path.join(dir, 'feature-store')})`);
  });
});
