import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { MeshExtensionLayer, MeshFunctionBaseImage, MeshPythonFunction, type MeshPythonFunctionProps } from '../../../constructs/function';
import { checkSizeBudget, pythonBundlingScript, UNZIPPED_LIMIT_BYTES } from '../../../constructs/function/private/zip-bundling';
import { formatFindings, newTestApp, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';
import { handlerDir, meshFixture, type MeshFixture, modelAOptions } from './mesh-fixture';

/** PythonFunction bundles with Docker at construction: tests skip bundling, as the toolchain notes say. */
const NO_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

function pythonFunction(f: MeshFixture, id: string, props: Partial<MeshPythonFunctionProps> = {}): MeshPythonFunction {
  return new MeshPythonFunction(f.functionsStack, id, { ...modelAOptions(f), ...props });
}

describe('MeshPythonFunction', () => {
  const f = meshFixture(NO_BUNDLING);
  const a = pythonFunction(f, 'ModelA', { provisionedConcurrency: { minCapacity: 1, maxCapacity: 3 } });
  const b = pythonFunction(f, 'ModelAV2', { version: 'v2' });
  const x86 = pythonFunction(f, 'ModelB', { service: 'model-a', version: 'v3', architecture: lambda.Architecture.X86_64 });
  const t = Template.fromStack(f.functionsStack);

  test('is a zip-packaged Python 3.13 function on arm64 with the extension layer, in the mesh network, with the mesh environment', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'python3.13',
      Handler: 'app.handler',
      Architectures: ['arm64'],
      Layers: [{ Ref: Match.stringLikeRegexp('^LambdaMeshExtensionLayerArm64') }],
      VpcConfig: Match.anyValue(),
      Environment: { Variables: Match.objectLike({ MESH_IDENTITY: 'model-a-v1', LAMBDA_MESH_IDENTITY_PARAMETER: '/lambda-mesh/ml/default/default/model-a-v1', MESH_UPSTREAM_FEATURE_STORE_URL: 'http://127.0.0.1:8080' }) },
    });
    expect(a.fn.runtime).toBe(lambda.Runtime.PYTHON_3_13);
    expect(a.upstreams.map((u) => u.service)).toEqual(['feature-store', 'log-service']);
    t.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live', ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 1 } });
  });

  test('one extension layer per stack and architecture, shared by the functions', () => {
    t.resourceCountIs('AWS::Lambda::LayerVersion', 2);
    expect(a.extensionLayer).toBe(b.extensionLayer);
    expect(x86.extensionLayer).not.toBe(a.extensionLayer);
    t.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['x86_64'] });
    t.hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['arm64'] });
  });

  test('its role reads only its own identity parameter', () => {
    const policies = Object.entries(t.findResources('AWS::IAM::Policy')).filter(([k]) => k.startsWith('ModelAServiceRole'));
    const text = JSON.stringify(policies);
    expect(text).toContain(':parameter/lambda-mesh/ml/default/default/model-a-v1"');
    expect(text).not.toContain('model-a-v2');
  });

  test('says that the size was not measured when bundling was skipped', () => {
    expect(a.unzippedSize).toBeUndefined();
    Annotations.fromStack(f.functionsStack).hasInfo('/functions/ModelA', Match.stringLikeRegexp('unzipped size of model-a-v1 was not measured: bundling was skipped'));
  });

  test('no unacknowledged cdk-nag or cfn-guard finding', () => {
    const result = validateCloudFormation(f.app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
  });
});

describe('MeshExtensionLayer', () => {
  test('local Go builds the layer: a static linux/arm64 binary at extensions/lambda-mesh', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Layers');
    const layer = MeshExtensionLayer.forArchitecture(stack, { architecture: lambda.Architecture.ARM_64 });
    const staged = (layer.node.findChild('Code').node.findChild('Stage') as unknown as { absoluteStagedPath: string }).absoluteStagedPath;
    const binary = fs.readFileSync(path.join(staged, 'extensions', 'lambda-mesh'));
    expect(binary.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // e_machine at offset 18: 0xB7 is AArch64.
    expect(binary.readUInt16LE(18)).toBe(0xb7);
    expect(binary.includes(Buffer.from('/lib/ld-linux'))).toBe(false);
    expect(fs.statSync(path.join(staged, 'extensions', 'lambda-mesh')).mode & 0o111).not.toBe(0);
    expect(fs.readdirSync(staged)).toEqual(['extensions']);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::LayerVersion', { CompatibleArchitectures: ['arm64'] });
  }, 120_000);

  test('x86_64 and arm64 layers of the same sources get different asset hashes', () => {
    const stack = new Stack(newTestApp(NO_BUNDLING), 'Layers');
    const arm = MeshExtensionLayer.forArchitecture(stack, { architecture: lambda.Architecture.ARM_64 });
    const x86 = MeshExtensionLayer.forArchitecture(stack, { architecture: lambda.Architecture.X86_64 });
    const hash = (l: MeshExtensionLayer): string => (l.node.findChild('Code') as unknown as { assetHash: string }).assetHash;
    expect(hash(arm)).not.toBe(hash(x86));
  });

  test('fails when a second call asks for another builder image', () => {
    const stack = new Stack(newTestApp(NO_BUNDLING), 'Layers');
    MeshExtensionLayer.forArchitecture(stack);
    const err = meshError(() => MeshExtensionLayer.forArchitecture(new Construct(stack, 'Other'), { builderImage: MeshFunctionBaseImage.fromDigest('golang', `sha256:${'c'.repeat(64)}`, '1.27') }));
    expect(err.field).toBe('extensionBuilderImage');
    expect(err.expected).toMatch(/one layer per stack and architecture/);
  });

  test('fails when the builder image is not pinned by digest', () => {
    const stack = new Stack(newTestApp(NO_BUNDLING), 'Layers');
    const err = meshError(() => MeshExtensionLayer.forArchitecture(stack, { builderImage: MeshFunctionBaseImage.fromTag('golang', '1.27') }));
    expect(err.field).toBe('extensionBuilderImage');
    expect(err.expected).toMatch(/pinned by digest/);
  });
});

describe('zip bundling', () => {
  test('the bundling program copies the code without tests, caches and credentials (run with the local Python)', () => {
    const src = handlerDir({ 'model.py': 'W = 1\n', 'tests/test_app.py': '', 'test_model.py': '', '.env': 'X=1', '__pycache__/app.cpython-313.pyc': '', 'pkg/util.py': '' });
    const dst = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-bundle-'));
    const r = spawnSync('python3', ['-c', pythonBundlingScript('arm64', src, dst)], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(fs.readdirSync(dst).sort()).toEqual(['app.py', 'model.py', 'pkg']);
    expect(pythonBundlingScript('amd64')).toContain("'--platform', 'manylinux_2_34_x86_64'");
    expect(pythonBundlingScript('arm64')).toContain("'--only-binary=:all:'");
  });

  test('the size budget passes a small package and reports its size', () => {
    const dir = handlerDir({ 'data.bin': 'x'.repeat(1000) });
    const scope = new Stack(newTestApp(), 'S');
    expect(checkSizeBudget(scope, [['code', dir]])).toBe(fs.statSync(path.join(dir, 'data.bin')).size + fs.statSync(path.join(dir, 'app.py')).size);
  });

  test('fails when the code and layers are larger than 250 MB unzipped', () => {
    const code = handlerDir();
    const layer = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-layer-'));
    // A sparse file: its size counts, its blocks are not written.
    fs.writeFileSync(path.join(layer, 'big.so'), '');
    fs.truncateSync(path.join(layer, 'big.so'), UNZIPPED_LIMIT_BYTES);
    const err = meshError(() => checkSizeBudget(new Stack(newTestApp(), 'S'), [['code', code], ['layers[0]', layer]]));
    expect(err.given).toMatch(/250\.0 MiB unzipped \(code 0\.0 MiB, layers\[0\] 250\.0 MiB\)/);
    expect(err.expected).toMatch(/at most 250\.0 MiB unzipped with all layers/);
  });
});

describe('MeshPythonFunction validation', () => {
  test('fails when the runtime is not Python', () => {
    const err = meshError(() => pythonFunction(meshFixture(NO_BUNDLING), 'A', { runtime: lambda.Runtime.NODEJS_22_X }));
    expect(err.field).toBe('runtime');
  });

  test('fails when another Python runtime comes without a bundling image of its version', () => {
    const err = meshError(() => pythonFunction(meshFixture(NO_BUNDLING), 'A', { runtime: lambda.Runtime.PYTHON_3_12 }));
    expect(err.field).toBe('bundlingImage');
    expect(err.expected).toMatch(/a Lambda Python base image of python3\.12, pinned by digest/);
  });

  test('fails when requirements are not pinned with hashes', () => {
    const err = meshError(() => pythonFunction(meshFixture(NO_BUNDLING), 'A', { code: handlerDir({ 'requirements.txt': 'numpy==2.4.6\n' }) }));
    expect(err.field).toBe('code');
    expect(err.given).toMatch(/at least one --hash=sha256/);
  });

  test('fails when the upstream is not allowed, as MeshFunction does', () => {
    const err = meshError(() => pythonFunction(meshFixture(NO_BUNDLING), 'A', { upstreams: ['result-writer'] }));
    expect(err.field).toBe('upstreams[0]');
  });
});
