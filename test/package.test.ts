/**
 * The published package, as a user gets it: `npm pack`, install the tarball into a fresh CDK app (offline: its
 * peer dependencies are linked from this checkout), then compile and run the README's "single construct"
 * example against it.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { extensionSourceFiles } from '../constructs/function/private/extension-sources';
import { consulServerLibrary } from '../constructs/consul/private/scripts';

const root = path.resolve(__dirname, '..');
const EXAMPLE_MARKER = '<!-- example: single-construct -->';

/** The first ```ts block after the marker in a README, verbatim. */
function readmeExample(readmePath = 'README.md', marker = EXAMPLE_MARKER): string {
  const readme = fs.readFileSync(path.join(root, readmePath), 'utf8');
  const at = readme.indexOf(marker);
  expect(at).toBeGreaterThan(-1);
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(match).not.toBeNull();
  return match![1];
}

describe('npm package', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-pack-'));
  let tarball = '';
  let files: string[] = [];

  beforeAll(() => {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = path.join(work, info[0].filename);
    files = info[0].files.map((f) => f.path);
  }, 120_000);

  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  test('ships the compiled library with type declarations and module READMEs, and nothing else', () => {
    expect(files).toEqual(expect.arrayContaining([
      'package.json',
      'README.md',
      'constructs/services/scripts/ec2-sidecar.sh',
      'constructs/consul/scripts/server-library.sh',
      'build/constructs/index.js',
      'build/constructs/index.d.ts',
      'build/constructs/mesh/mesh.d.ts',
      'build/constructs/network/network.js',
      'constructs/mesh/README.md',
      // The extension's module: MeshFunction's image build compiles it (tests are left out).
      'constructs/function/extension/go.mod',
      'constructs/function/extension/cmd/lambda-mesh-extension/main.go',
      'constructs/function/extension/internal/proxy/proxy.go',
      'constructs/function/extension/internal/config/env.json',
      'build/constructs/function/extension/internal/config/env.json',
    ]));
    expect(files.filter((f) => f.endsWith('_test.go'))).toEqual([]);
    const allowed = [
      /^(package\.json|README\.md|LICENSE)$/,
      /^build\/constructs\/.*\.(js|d\.ts)$/,
      // The extension's variable names, which the compiled wiring requires (the Go code embeds the same file).
      /^build\/constructs\/function\/extension\/internal\/config\/env\.json$/,
      /^build\/handlers\/[a-z-]+\/index\.js$/,
      /^constructs\/[^/]+\/README\.md$/,
      /^constructs\/function\/extension\/(go\.mod|[a-z0-9-/]+\.go|internal\/config\/env\.json)$/,
      /^constructs\/(consul|services)\/scripts\/[a-z0-9-]+\.sh$/,
    ];
    const unexpected = files.filter((f) => !allowed.some((re) => re.test(f)));
    expect(unexpected).toEqual([]);
    // Exactly what the extension's build reads, the files MeshFunction stages and the layer's hash covers.
    const extensionDir = path.join(root, 'constructs', 'function', 'extension');
    const shipped = files.filter((f) => f.startsWith('constructs/function/extension/'))
      .map((f) => f.slice('constructs/function/extension/'.length)).sort();
    expect(shipped).toEqual(extensionSourceFiles(extensionDir));
  });

  /** A consumer app with the tarball installed and its peer dependencies linked (no esbuild, no Docker). */
  function consumer(name: string): string {
    const app = path.join(work, name);
    const pkg = path.join(app, 'node_modules', 'lambda-mesh');
    fs.mkdirSync(pkg, { recursive: true });
    execFileSync('tar', ['xzf', tarball, '--strip-components=1', '-C', pkg]);
    const peers = Object.keys((JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies);
    for (const dep of [...peers, '@types/node']) {
      fs.mkdirSync(path.dirname(path.join(app, 'node_modules', dep)), { recursive: true });
      fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(app, 'node_modules', dep), 'dir');
    }
    return app;
  }

  function compileAndRun(app: string, source: string): string {
    fs.writeFileSync(path.join(app, 'app.ts'), source);
    execFileSync(path.join(root, 'node_modules', '.bin', 'tsc'), [
      '--strict', '--esModuleInterop', '--skipLibCheck', '--module', 'commonjs', '--target', 'es2022',
      '--moduleResolution', 'node', '--types', 'node', '--outDir', 'out', 'app.ts',
    ], { cwd: app, stdio: 'pipe' });
    return execFileSync('node', [path.join('out', 'app.js')], { cwd: app, encoding: 'utf8', env: { ...process.env, CDK_OUTDIR: path.join(app, 'cdk.out') } });
  }

  test('the Consul control plane synthesizes from the package with its handler pre-bundled (no esbuild, no Docker)', () => {
    expect(files).toContain('build/handlers/consul-secrets/index.js');
    const app = consumer('control-plane');
    compileAndRun(app, [
      "import { App, Stack } from 'aws-cdk-lib';",
      "import { ConsulIamAuthMethod, ConsulServerCluster, Mesh, MeshGateway, MeshNetwork } from 'lambda-mesh';",
      'const app = new App();',
      "const stack = new Stack(app, 'ControlPlane');",
      "const network = new MeshNetwork(stack, 'Network');",
      "const mesh = new Mesh(stack, 'Mesh');",
      "const cluster = new ConsulServerCluster(stack, 'Consul', { mesh, network });",
      "const authMethod = new ConsulIamAuthMethod(stack, 'AuthMethod', { mesh, cluster, network });",
      "new MeshGateway(stack, 'Gateway', { cluster, network, authMethod });",
      'app.synth();',
    ].join('\n'));
    expect(() => execFileSync('node', ['-e', "require.resolve('esbuild')"], { cwd: app, stdio: 'pipe' })).toThrow();
    const out = path.join(app, 'cdk.out');
    const handler = fs.readdirSync(out).filter((d) => d.startsWith('asset.')).map((d) => path.join(out, d, 'index.js')).find((f) => fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes('PutSecretValue'));
    expect(handler).toBeDefined();
    const template = JSON.parse(fs.readFileSync(path.join(out, 'ControlPlane.template.json'), 'utf8')) as { Resources: Record<string, { Type: string }> };
    const types = Object.values(template.Resources).map((r) => r.Type);
    expect(types).toEqual(expect.arrayContaining(['AWS::AutoScaling::AutoScalingGroup', 'Custom::ConsulSecrets', 'Custom::ConsulAuthMethod', 'AWS::ECS::Service']));
    // The server library came from the package's constructs/consul/scripts/ (beside build/), filled as from source.
    const libraries = fs.readdirSync(out).filter((f) => /^asset\.[0-9a-f]{64}\.sh$/.test(f));
    expect(libraries.map((f) => fs.readFileSync(path.join(out, f), 'utf8'))).toEqual([consulServerLibrary()]);
  }, 120_000);

  test('a separate CDK app installs it and the README example compiles and synthesizes against it', () => {
    const app = consumer('readme');
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, dependencies: { 'lambda-mesh': `file:${tarball}` } }));
    compileAndRun(app, readmeExample());
    // Types came from the package's declarations, and the code from its build (no path into this checkout).
    const resolved = execFileSync('node', ['-p', "require.resolve('lambda-mesh')"], { cwd: app, encoding: 'utf8' }).trim();
    expect(resolved).toBe(path.join(app, 'node_modules', 'lambda-mesh', 'build', 'constructs', 'index.js'));
    const templates = fs.readdirSync(path.join(app, 'cdk.out')).filter((f) => f.endsWith('.template.json'));
    expect(templates.length).toBeGreaterThan(0);
    const resources = templates.flatMap((t) => Object.values((JSON.parse(fs.readFileSync(path.join(app, 'cdk.out', t), 'utf8')) as { Resources: Record<string, { Type: string }> }).Resources));
    expect(resources.map((r) => r.Type)).toEqual(expect.arrayContaining(['AWS::EC2::VPC', 'AWS::EC2::VPCEndpoint', 'AWS::EC2::FlowLog']));
  }, 120_000);

  test('MeshFunction from the package builds its image context from the shipped extension sources (the function README example)', () => {
    const app = consumer('mesh-function');
    fs.cpSync(path.join(root, 'lib', 'model-handler'), path.join(app, 'out', 'model-handler'), { recursive: true });
    const printed = compileAndRun(app, readmeExample('constructs/function/README.md', '<!-- example: mesh-function'));
    expect(printed.trim()).toBe('model-a-v1 MESH_UPSTREAM_FEATURE_STORE_URL=http://127.0.0.1:8080');
    const out = path.join(app, 'cdk.out');
    const contexts = fs.readdirSync(out).filter((d) => d.startsWith('asset.') && fs.existsSync(path.join(out, d, 'Dockerfile')));
    expect(contexts).toHaveLength(1);
    const context = path.join(out, contexts[0]);
    expect(fs.readFileSync(path.join(context, 'Dockerfile'), 'utf8')).toContain('COPY --from=extension /out/extensions/ /opt/extensions/');
    const staged = fs.readdirSync(path.join(context, 'extension'), { recursive: true, encoding: 'utf8' })
      .filter((f) => fs.statSync(path.join(context, 'extension', f)).isFile()).map((f) => f.split(path.sep).join('/'));
    const shipped = files.filter((f) => f.startsWith('constructs/function/extension/'))
      .map((f) => f.slice('constructs/function/extension/'.length));
    expect(staged.sort()).toEqual(shipped.sort());
    expect(fs.existsSync(path.join(context, 'function', 'app.py'))).toBe(true);
  }, 120_000);
});
