import * as fs from 'fs';
import * as path from 'path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { MeshFunction, MeshFunctionBaseImage, type MeshFunctionProps } from '../../../constructs/function';
import { extensionSourceDir } from '../../../constructs/function/private/extension-sources';
import { Mesh } from '../../../constructs/mesh';
import { formatFindings, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';
import { HASHED_REQUIREMENTS, handlerDir, meshFixture, type MeshFixture, modelAOptions } from './mesh-fixture';


/** The extension's own variables, by key, as its internal/config/env.json names them (read from disk). */
function extensionVariables(): Record<string, string> {
  const file = path.join(extensionSourceDir(), 'internal', 'config', 'env.json');
  const names = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(names).filter(([key]) => key !== '$comment')) as Record<string, string>;
}

function meshFunction(f: MeshFixture, id: string, props: Partial<MeshFunctionProps> = {}): MeshFunction {
  return new MeshFunction(f.functionsStack, id, { ...modelAOptions(f), ...props });
}

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown; Effect: string };
function statementsOf(t: Template, rolePrefix: string): Statement[] {
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .filter((p) => JSON.stringify(p.Properties.Roles).includes(rolePrefix))
    .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
}

describe('MeshFunction', () => {
  const f = meshFixture();
  const fn = meshFunction(f, 'ModelA', { provisionedConcurrency: { minCapacity: 2, maxCapacity: 10 }, reservedConcurrentExecutions: 20, environment: { MODEL_THRESHOLD: '0.5' } });
  const second = meshFunction(f, 'ModelAV2', { version: 'v2', upstreams: ['feature-store'] });
  const t = Template.fromStack(f.functionsStack);

  test('is a container image function on arm64 in the function subnets, with the shared security group', () => {
    t.resourceCountIs('AWS::Lambda::Function', 2);
    t.hasResourceProperties('AWS::Lambda::Function', {
      PackageType: 'Image',
      Architectures: ['arm64'],
      MemorySize: 1024,
      Timeout: 30,
      ReservedConcurrentExecutions: 20,
      VpcConfig: { SecurityGroupIds: [Match.objectLike({ 'Fn::GetStackOutput': Match.objectLike({ StackName: 'network' }) })], SubnetIds: Match.anyValue() },
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
    // No security group of its own: the network's is shared by every mesh function.
    t.resourceCountIs('AWS::EC2::SecurityGroup', 0);
    expect(fn.connections.securityGroups).toEqual([f.network.functionSecurityGroup]);
  });

  test('gives the extension its identity parameter, upstreams, gateway, datacenter and namespace, and the code one URL per upstream', () => {
    expect(fn.identity).toBe('model-a-v1');
    const vars = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((r) => (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables)
      .find((v) => v.MESH_IDENTITY === 'model-a-v1')!;
    expect(vars).toMatchObject({
      LAMBDA_MESH_IDENTITY_PARAMETER: '/lambda-mesh/ml/default/default/model-a-v1',
      LAMBDA_MESH_UPSTREAMS: '[{"service":"feature-store","localPort":8080},{"service":"log-service","localPort":24224}]',
      LAMBDA_MESH_DATACENTER: 'dc1',
      LAMBDA_MESH_NAMESPACE: 'default',
      MESH_UPSTREAM_FEATURE_STORE_URL: 'http://127.0.0.1:8080',
      MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224',
      MODEL_THRESHOLD: '0.5',
    });
    expect(JSON.stringify(vars.LAMBDA_MESH_GATEWAY)).toMatch(/control-plane.*:8443/);
    expect(vars).not.toHaveProperty('MESH_UPSTREAM_RESULT_WRITER_URL');
    expect(fn.upstreams.map((u) => u.environmentVariable)).toEqual(['MESH_UPSTREAM_FEATURE_STORE_URL', 'MESH_UPSTREAM_LOG_SERVICE_URL']);
    expect(second.upstreams.map((u) => u.service)).toEqual(['feature-store']);
  });

  test('names the extension\'s variables as its env.json does, the file the extension\'s Go code embeds', () => {
    const names = extensionVariables();
    const vars = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((r) => (r.Properties.Environment as { Variables: Record<string, unknown> }).Variables)
      .find((v) => v.MESH_IDENTITY === 'model-a-v1')!;
    const set = Object.keys(vars).filter((k) => k.startsWith('LAMBDA_MESH_')).sort();
    const required = ['identityParameter', 'upstreams', 'gateway', 'datacenter', 'namespace'];
    expect(set).toEqual(required.map((key) => names[key]).sort());
  });

  test('its role reads only its own identity parameter, decrypts only that parameter with the mesh key through SSM, and writes only its logs', () => {
    const statements = statementsOf(t, 'ModelAServiceRole');
    const ssm = statements.filter((s) => JSON.stringify(s.Action).includes('ssm:'));
    expect(ssm).toHaveLength(1);
    expect(ssm[0].Action).toBe('ssm:GetParameter');
    expect(JSON.stringify(ssm[0].Resource)).toMatch(/:parameter\/lambda-mesh\/ml\/default\/default\/model-a-v1"/);
    const kms = statements.filter((s) => JSON.stringify(s.Action).includes('kms:'));
    expect(kms).toHaveLength(1);
    expect(kms[0]).toMatchObject({ Action: 'kms:Decrypt', Condition: { StringEquals: { 'kms:ViaService': expect.anything(), 'kms:EncryptionContext:PARAMETER_ARN': expect.anything() } } });
    expect(JSON.stringify(kms[0].Resource)).toMatch(/StackName":"mesh"/);
    const logs = statements.filter((s) => JSON.stringify(s.Action).includes('logs:'));
    expect(JSON.stringify(logs.map((s) => s.Resource))).toMatch(/ModelALogs/);
    // ECR pull of its own image asset (added by CDK) and the ENI actions; nothing else.
    const actions = statements.flatMap((s) => [s.Action].flat()).sort();
    expect(actions.filter((a) => !/^(ssm:GetParameter|kms:Decrypt|logs:|ecr:|ec2:)/.test(a))).toEqual([]);
    t.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
    const role = Object.entries(t.findResources('AWS::IAM::Role')).find(([k]) => k.startsWith('ModelAServiceRole'))![1];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });

  test('logs go to a KMS-encrypted log group kept a year', () => {
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365, KmsKeyId: Match.objectLike({ 'Fn::GetStackOutput': Match.objectLike({ StackName: 'mesh' }) }) });
  });

  test('provisioned concurrency: an alias live with target-tracking autoscaling on utilization', () => {
    t.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live', ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 } });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 2, MaxCapacity: 10, ScalableDimension: 'lambda:function:ProvisionedConcurrency' });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      PolicyType: 'TargetTrackingScaling',
      TargetTrackingScalingPolicyConfiguration: { TargetValue: 0.7, PredefinedMetricSpecification: { PredefinedMetricType: 'LambdaProvisionedConcurrencyUtilization' } },
    });
    expect(fn.alias).toBeDefined();
    expect(second.alias).toBeUndefined();
    t.resourceCountIs('AWS::Lambda::Alias', 1);
  });

  test('the shared security group may reach only the gateway port and the endpoints, each rule once, from the gateway\'s and network\'s side', () => {
    const app = f.app.synth();
    const egress = app.stacks.flatMap((s) => Object.values((s.template as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> }).Resources)
      .filter((r) => r.Type === 'AWS::EC2::SecurityGroupEgress' && JSON.stringify(r.Properties.GroupId).includes('NetworkFunctionSecurityGroup'))
      .map((r) => `${s.stackName}:${String(r.Properties.FromPort)}-${String(r.Properties.ToPort)}:${JSON.stringify(r.Properties.DestinationSecurityGroupId)}`));
    expect(egress).toHaveLength(2);
    expect(egress.some((e) => e.startsWith('control-plane:8443-8443:') && e.includes('MeshGatewayLoadBalancerSecurityGroup'))).toBe(true);
    expect(egress.some((e) => e.startsWith('network:443-443:') && e.includes('NetworkEndpointSecurityGroup'))).toBe(true);
    // The function stack itself holds no security group rule.
    expect(Object.keys(t.findResources('AWS::EC2::SecurityGroupEgress'))).toEqual([]);
    expect(Object.keys(t.findResources('AWS::EC2::SecurityGroupIngress'))).toEqual([]);
  });

  test('registers its identity with the registrar, which learns of versions added after it was created', () => {
    const mesh = Template.fromStack(Stack.of(f.identities));
    const identities = JSON.parse((Object.values(mesh.findResources('Custom::MeshIdentities'))[0].Properties as { Identities: string }).Identities) as Array<{ name: string }>;
    expect(identities.map((i) => i.name)).toEqual(['model-a-v1', 'model-a-v2']);
  });

  test('the image asset is built for linux/arm64 from the generated context, and its Dockerfile is checked statically', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(f.app.outdir, 'functions.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { directory: string; platform?: string; dockerBuildArgs?: unknown } }> };
    const images = Object.values(manifest.dockerImages);
    // Both versions run the same code: one image.
    expect(images).toHaveLength(1);
    expect(images[0].source.platform).toBe('linux/arm64');
    expect(images[0].source.dockerBuildArgs).toBeUndefined();
    const staged = path.join(f.app.outdir, images[0].source.directory);
    expect(fs.readFileSync(path.join(staged, 'Dockerfile'), 'utf8')).toBe(fn.dockerfile);
    expect(fs.readdirSync(staged).sort()).toEqual(['.dockerignore', 'Dockerfile', 'extension', 'function']);
    // The extension's module with its directory tree, as its build reads it: no tests, no test-only package.
    const extension = fs.readdirSync(path.join(staged, 'extension'), { recursive: true, encoding: 'utf8' });
    expect(extension.filter((n) => n.endsWith('_test.go'))).toEqual([]);
    expect(extension.filter((n) => n.includes('meshtest'))).toEqual([]);
    expect(fs.existsSync(path.join(staged, 'extension', 'go.mod'))).toBe(true);
    for (const file of ['cmd/lambda-mesh-extension/main.go', 'internal/proxy/proxy.go', 'internal/config/env.json']) {
      expect(fs.existsSync(path.join(staged, 'extension', ...file.split('/')))).toBe(true);
    }
    expect(fs.readdirSync(path.join(staged, 'function')).sort()).toEqual(['app.py', 'requirements.txt']);
  });

  test('no unacknowledged cdk-nag or cfn-guard finding', () => {
    const result = validateCloudFormation(f.app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    const ours = result.acknowledged.filter((a) => a.constructPath?.startsWith('functions/'));
    expect(ours.length).toBeGreaterThan(0);
    for (const a of ours) {
      expect(a.reason!.length).toBeGreaterThan(40);
    }
  });
});

describe('MeshFunction options', () => {
  test('x86_64 builds for linux/amd64; memory, timeout and handler are passed through', () => {
    const f = meshFixture();
    const code = handlerDir({ 'pkg/__init__.py': '', 'pkg/main.py': 'def run(e, c):\n    return 1\n' });
    const fn = meshFunction(f, 'ModelA', { architecture: lambda.Architecture.X86_64, memorySize: 2048, timeout: Duration.minutes(2), handler: 'pkg.main.run', code });
    const named = meshFunction(f, 'ModelAv2', { version: 'v2', functionName: 'dev-model-a-v2', architecture: lambda.Architecture.X86_64 });
    expect(named.functionName).toBe('dev-model-a-v2');
    const t = Template.fromStack(f.functionsStack);
    t.hasResourceProperties('AWS::Lambda::Function', { FunctionName: 'dev-model-a-v2' });
    t.hasResourceProperties('AWS::Lambda::Function', { Architectures: ['x86_64'], MemorySize: 2048, Timeout: 120 });
    expect(Object.keys(t.findResources('AWS::Lambda::Function', { Properties: { FunctionName: Match.anyValue() } }))).toHaveLength(1);
    expect(fn.dockerfile).toContain('CMD ["pkg.main.run"]');
    const manifest = JSON.parse(fs.readFileSync(path.join(f.app.outdir, 'functions.assets.json'), 'utf8')) as { dockerImages: Record<string, { source: { platform?: string } }> };
    expect(Object.values(manifest.dockerImages).map((i) => i.source.platform)).toEqual(['linux/amd64', 'linux/amd64']);
  });

  test('a version the model does not declare yet is added to its function, and the registrar registers it', () => {
    const f = meshFixture();
    const modelB = f.mesh.addFunction('model-b');
    f.mesh.service('result-writer').allowFrom(modelB);
    const fn = meshFunction(f, 'ModelB', { service: 'model-b', version: 'canary' });
    expect(fn.identity).toBe('model-b-canary');
    expect(f.mesh.function('model-b').versions.map((v) => v.version)).toEqual(['canary']);
    expect(fn.upstreams).toEqual([{ service: 'result-writer', localPort: 18081, environmentVariable: 'MESH_UPSTREAM_RESULT_WRITER_URL', url: 'http://127.0.0.1:18081' }]);
    const identities = Template.fromStack(Stack.of(f.identities)).findResources('Custom::MeshIdentities');
    expect(JSON.stringify(identities)).toContain('model-b-canary');
  });

  test('warns and leaves out files that usually hold credentials; caches and tests stay out too', () => {
    const f = meshFixture();
    const code = handlerDir({ '.env': 'TOKEN=x', 'conf/.netrc': 'machine x', 'tests/test_app.py': '', 'test_app.py': '', '__pycache__/app.cpython-313.pyc': '', 'model.py': 'W = 1\n' });
    const fn = meshFunction(f, 'ModelA', { code });
    expect(fs.readdirSync(path.join(fn.buildContextDirectory, 'function')).sort()).toEqual(['app.py', 'model.py']);
    Annotations.fromStack(f.functionsStack).hasWarning('/functions/ModelA', Match.stringLikeRegexp('Left out of the image .*\\.env, conf/\\.netrc'));
  });

  test('the same inputs give the same build context directory', () => {
    const code = handlerDir();
    const a = meshFunction(meshFixture(), 'ModelA', { code });
    const b = meshFunction(meshFixture(), 'ModelA', { code });
    expect(a.buildContextDirectory).toBe(b.buildContextDirectory);
    expect(path.basename(a.buildContextDirectory)).toMatch(/^[a-f0-9]{32}$/);
  });

  test('requireHashes: false installs without hash checking, with a warning', () => {
    const f = meshFixture();
    const fn = meshFunction(f, 'ModelA', { code: handlerDir({ 'requirements.txt': 'numpy\n' }), requireHashes: false });
    expect(fn.dockerfile).not.toContain('--require-hashes');
    Annotations.fromStack(f.functionsStack).hasWarning('/functions/ModelA', Match.stringLikeRegexp('requireHashes is off'));
  });

  test('without requirements.txt there is no pip step', () => {
    const fn = meshFunction(meshFixture(), 'ModelA', { code: handlerDir({}) });
    expect(fn.dockerfile).not.toMatch(/pip install|requirements/);
  });

  test('base images given by tag need allowUnpinnedImages, and warn', () => {
    const f = meshFixture();
    const fn = meshFunction(f, 'ModelA', { baseImage: MeshFunctionBaseImage.fromTag('public.ecr.aws/lambda/python', '3.13'), allowUnpinnedImages: true });
    expect(fn.dockerfile).toContain('\nFROM public.ecr.aws/lambda/python:3.13\n');
    Annotations.fromStack(f.functionsStack).hasWarning('/functions/ModelA', Match.stringLikeRegexp('baseImage public.ecr.aws/lambda/python:3.13 is not pinned by digest'));
  });
});

describe('MeshFunction Dockerfile (static checks)', () => {
  const fixtures = [lambda.Architecture.ARM_64, lambda.Architecture.X86_64].map((architecture) => meshFunction(meshFixture(), 'ModelA', { architecture }));

  test.each(fixtures.map((fn) => [fn.fn.architecture.name, fn]))('%s: every FROM is pinned by digest; the Go stage runs on the build platform', (_arch, fn) => {
    const froms = fn.dockerfile.split('\n').filter((l) => l.startsWith('FROM '));
    expect(froms).toHaveLength(2);
    for (const from of froms) {
      expect(from).toMatch(/@sha256:[a-f0-9]{64}( AS \w+)?$/);
    }
    expect(froms[0]).toMatch(/^FROM --platform=\$BUILDPLATFORM golang:[^ ]+@sha256:[a-f0-9]{64} AS extension$/);
    expect(froms[1]).toBe(`FROM ${MeshFunction.DEFAULT_PYTHON_BASE_IMAGE}`);
    expect(MeshFunction.DEFAULT_PYTHON_BASE_IMAGE).toMatch(/^public\.ecr\.aws\/lambda\/python:3\.1[23]@sha256:[a-f0-9]{64}$/);
  });

  test.each(fixtures.map((fn) => [fn.fn.architecture.name, fn]))('%s: the extension is a static binary for TARGETARCH in /opt/extensions/, nothing is fetched by URL, no secret is passed', (_arch, fn) => {
    const d = fn.dockerfile;
    expect(d).toContain('ARG TARGETARCH');
    // The module's main package, built into the file name Lambda registers the extension under.
    expect(d).toContain('RUN CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH GOPROXY=off GOTOOLCHAIN=local '
      + "go build -trimpath -ldflags='-s -w' -o /out/extensions/lambda-mesh ./cmd/lambda-mesh-extension\n");
    expect(d).toContain('COPY --from=extension /out/extensions/ /opt/extensions/');
    expect(d).toMatch(/RUN pip install --require-hashes --only-binary=:all: --no-cache-dir .*-r \/tmp\/lambda-mesh\/requirements.txt/);
    expect(d).toContain('CMD ["app.handler"]');
    expect(d).not.toMatch(/^ADD\s/m);
    expect(d).not.toMatch(/\b(curl|wget)\b|https?:\/\//);
    // Only TARGETARCH comes in as a build argument; no ARG or ENV carries anything secret-looking.
    expect(d.split('\n').filter((l) => /^(ARG|ENV)\s/.test(l))).toEqual(['ARG TARGETARCH']);
    expect(d).not.toMatch(/secret|password|token|credential|AWS_/i);
  });
});

describe('MeshFunction validation', () => {
  test('fails when an upstream is not a service of the mesh', () => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelA', { upstreams: ['feature-store', 'billing'] }));
    expect(err.location).toBe('functions/ModelA');
    expect(err.field).toBe('upstreams[1]');
    expect(err.given).toBe('"billing"');
    expect(err.expected).toMatch(/a service of mesh 'ml': feature-store, log-service, result-writer/);
  });

  test('fails when an upstream is a service the model does not allow the identity to call, naming the missing rule', () => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelA', { upstreams: ['result-writer'] }));
    expect(err.field).toBe('upstreams[0]');
    expect(err.expected).toMatch(/no rule that allows model-a-v1 -> result-writer; add one, e.g. mesh.service\('result-writer'\).allowFrom\(mesh.function\('model-a'\)\)/);
  });

  test('fails when the identity may call no service', () => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelC', { service: 'model-c' }));
    expect(err.field).toBe('upstreams');
    expect(err.expected).toMatch(/at least one service that model-c-v1 may call/);
  });

  test('fails when upstreams is empty or names a service twice', () => {
    expect(meshError(() => meshFunction(meshFixture(), 'A', { upstreams: [] })).expected).toMatch(/a non-empty list/);
    expect(meshError(() => meshFunction(meshFixture(), 'A', { upstreams: ['feature-store', 'feature-store'] })).field).toBe('upstreams[1]');
  });

  test('fails at synth when rules added after the function would give the identity more upstreams than it got', () => {
    const f = meshFixture();
    meshFunction(f, 'ModelA');
    f.mesh.service('result-writer').allowFrom(f.mesh.function('model-a'));
    expect(() => f.app.synth()).toThrow(/functions\/ModelA: upstreams: .*rules added after the function also allow result-writer/);
  });

  test('fails when two mesh functions run as the same identity', () => {
    const f = meshFixture();
    meshFunction(f, 'ModelA');
    const err = meshError(() => meshFunction(f, 'ModelAAgain'));
    expect(err.field).toBe('version');
    expect(err.expected).toMatch(/'model-a-v1' is already the identity of functions\/ModelA/);
  });

  test.each([
    ['service', { service: 'Model_A' }, /a DNS-1123 label/],
    ['version', { version: 'v1.0' }, /a DNS-1123 label/],
    ['version', { version: 'a'.repeat(60) }, /at most 63 characters/],
    ['service', { service: 'feature-store' }, /not one of its backend services/],
    ['functionName', { functionName: 'model a' }, /1 to 64 letters, digits/],
    ['functionName', { functionName: 'm'.repeat(65) }, /1 to 64 letters, digits/],
    ['memorySize', { memorySize: 64 }, /from 128 to 10240/],
    ['memorySize', { memorySize: 1000.5 }, /from 128 to 10240/],
    ['timeout', { timeout: Duration.minutes(16) }, /1 second to 15 minutes/],
    ['timeout', { timeout: Duration.millis(500) }, /1 second to 15 minutes/],
    ['reservedConcurrentExecutions', { reservedConcurrentExecutions: 0 }, /at least 1/],
    ['provisionedConcurrency.minCapacity', { provisionedConcurrency: { minCapacity: 0, maxCapacity: 2 } }, /at least 1/],
    ['provisionedConcurrency.maxCapacity', { provisionedConcurrency: { minCapacity: 5, maxCapacity: 2 } }, /at least minCapacity \(5\)/],
    ['provisionedConcurrency.maxCapacity', { provisionedConcurrency: { minCapacity: 2, maxCapacity: 20 }, reservedConcurrentExecutions: 10 }, /at most reservedConcurrentExecutions \(10\)/],
    ['provisionedConcurrency.utilizationTarget', { provisionedConcurrency: { minCapacity: 1, maxCapacity: 2, utilizationTarget: 0.95 } }, /0\.1 to 0\.9/],
    ['environment.LAMBDA_MESH_GATEWAY', { environment: { LAMBDA_MESH_GATEWAY: 'evil:8443' } }, /a name that neither Lambda nor lambda-mesh sets/],
    ['environment.AWS_REGION', { environment: { AWS_REGION: 'us-east-1' } }, /a name that neither Lambda nor lambda-mesh sets/],
    ['environment.MESH_UPSTREAM_X_URL', { environment: { MESH_UPSTREAM_X_URL: 'http://x' } }, /a name that neither Lambda nor lambda-mesh sets/],
    ['environment', { environment: { BIG: 'x'.repeat(4000) } }, /at most 4096 bytes/],
    ['handler', { handler: 'app' }, /"<module>.<function>"/],
    ['handler', { handler: 'missing.handler' }, /missing.py or missing\/__init__.py/],
    ['baseImage', { baseImage: MeshFunctionBaseImage.fromTag('public.ecr.aws/lambda/python', '3.13') }, /an image pinned by digest/],
    ['extensionBuilderImage', { extensionBuilderImage: MeshFunctionBaseImage.fromReference('golang') }, /a tag or, better, a digest/],
    ['baseImage.digest', { baseImage: MeshFunctionBaseImage.fromDigest('public.ecr.aws/lambda/python', 'sha256:abc') }, /64 lower-case hex digits/],
    ['baseImage', { baseImage: MeshFunctionBaseImage.fromReference('not a reference') }, /an image reference/],
    ['architecture', { architecture: lambda.Architecture.custom('riscv64') }, /ARM_64 or lambda.Architecture.X86_64/],
  ] as Array<[string, Partial<MeshFunctionProps>, RegExp]>)('fails when %s is %j', (field, props, expected) => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelA', props));
    expect(err.location).toBe('functions/ModelA');
    expect(err.field).toBe(field);
    expect(err.expected).toMatch(expected);
  });

  test.each(Object.entries(extensionVariables()))('fails when environment sets the extension\'s %s (%s)', (_, name) => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelA', { environment: { [name]: 'x' } }));
    expect(err.field).toBe(`environment.${name}`);
    expect(err.expected).toMatch(/a name that neither Lambda nor lambda-mesh sets/);
  });

  test('fails when the code directory does not exist or is a file', () => {
    expect(meshError(() => meshFunction(meshFixture(), 'A', { code: '/nonexistent/handler' })).expected).toMatch(/an existing directory \(\/nonexistent\/handler is missing\)/);
    const file = path.join(handlerDir(), 'app.py');
    expect(meshError(() => meshFunction(meshFixture(), 'A', { code: file })).expected).toMatch(/is not a directory/);
  });

  test.each([
    ['numpy\n', /line 1 \(numpy\): a requirement pinned to one version/],
    ['numpy>=2.0 --hash=sha256:' + 'a'.repeat(64) + '\n', /line 1 .*pinned to one version with '=='/],
    ['# ok\nnumpy==2.4.6\n', /line 2 \(numpy==2.4.6\): at least one --hash=sha256/],
    ['numpy==2.4.6 --hash=md5:abc\n', /hashes of the form sha256/],
    [HASHED_REQUIREMENTS + '-r other.txt\n', /line 6 \(-r other.txt\): options that name other files/],
    ['--extra-index-url https://user:pw@example.com/simple\n' + HASHED_REQUIREMENTS, /line 1 \(--extra-index-url https:\/\/\*\*\*@example.com\/simple\): options that name other files, indexes/],
    ['git+https://github.com/x/y.git#egg=y\n', /a URL or direct reference/],
    ['y @ https://example.com/y.whl --hash=sha256:' + 'a'.repeat(64) + '\n', /a URL or direct reference/],
  ])('fails when requirements.txt is %j', (requirements, expected) => {
    const err = meshError(() => meshFunction(meshFixture(), 'ModelA', { code: handlerDir({ 'requirements.txt': requirements }) }));
    expect(err.field).toBe('code');
    expect(err.given).toMatch(expected);
    expect(err.expected).toMatch(/pinned "name==version" with --hash=sha256/);
  });

  test('fails when the registrar belongs to another mesh', () => {
    const f = meshFixture();
    const other = new Mesh(f.app, 'Other', { meshName: 'other' });
    const err = meshError(() => meshFunction(f, 'ModelA', { mesh: other }));
    expect(err.field).toBe('identities');
    expect(err.expected).toMatch(/the identity registrar of mesh 'other'/);
  });
});
