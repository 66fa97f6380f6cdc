/**
 * What the mesh function tests share: the four stacks of a lambda-mesh environment (network, control plane,
 * identities, functions) built from the real constructs, and handler directories written to a temp dir.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type App, Stack } from 'aws-cdk-lib';
import { ConsulIamAuthMethod, ConsulServerCluster, MeshGateway } from '../../../constructs/consul';
import { type MeshFunctionOptions } from '../../../constructs/function';
import { IdentityRegistrar } from '../../../constructs/intentions';
import { Mesh, ServiceProtocol } from '../../../constructs/mesh';
import { MeshNetwork } from '../../../constructs/network';
import { newTestApp } from '../../harness';

/** numpy 2.4.6 for CPython 3.13, as lib/model-handler pins it: a line pip accepts under --require-hashes. */
export const HASHED_REQUIREMENTS = [
  '# pinned and hashed',
  '--only-binary=:all:',
  'numpy==2.4.6 \\',
  `    --hash=sha256:${'a'.repeat(64)} \\`,
  `    --hash=sha256:${'b'.repeat(64)}`,
  '',
].join('\n');

/** Writes a handler directory (`app.py` plus the given files) and returns its path. */
export function handlerDir(files: Record<string, string> = { 'requirements.txt': HASHED_REQUIREMENTS }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-handler-'));
  fs.writeFileSync(path.join(dir, 'app.py'), 'def handler(event, context):\n    return {"statusCode": 200}\n');
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

/** The environment a mesh function joins, one stack per part, as lib/environment.ts builds it. */
export interface MeshFixture {
  readonly app: App;
  readonly mesh: Mesh;
  readonly network: MeshNetwork;
  readonly gateway: MeshGateway;
  readonly identities: IdentityRegistrar;
  readonly functionsStack: Stack;
}

/**
 * A mesh with `feature-store` (HTTP, local 8080), `log-service` (TCP 24224) and `result-writer` (HTTP 8081, local
 * 18081); `model-a` (v1, v2) may call feature-store and log-service; nothing may call result-writer.
 */
export function meshFixture(context: Record<string, unknown> = {}): MeshFixture {
  const app = newTestApp(context);
  const mesh = new Mesh(app, 'Mesh', { meshName: 'ml' });
  const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
  const logService = mesh.addService('log-service', { port: 24224 });
  mesh.addService('result-writer', { port: 8081, localPort: 18081, protocol: ServiceProtocol.HTTP });
  const modelA = mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
  featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] } });
  logService.allowFrom(modelA);

  const network = new MeshNetwork(new Stack(app, 'network'), 'Network');
  const controlPlane = new Stack(app, 'control-plane');
  const cluster = new ConsulServerCluster(controlPlane, 'Consul', { mesh, network });
  const authMethod = new ConsulIamAuthMethod(controlPlane, 'AuthMethod', { mesh, cluster, network });
  const gateway = new MeshGateway(controlPlane, 'MeshGateway', { cluster, network, authMethod });
  const identities = new IdentityRegistrar(new Stack(app, 'mesh'), 'Identities', { mesh, cluster, network });
  return { app, mesh, network, gateway, identities, functionsStack: new Stack(app, 'functions') };
}

/** What every test function is built from: `model-a` `v1` in the fixture's environment, code in a new handler directory. */
export function modelAOptions(f: MeshFixture): MeshFunctionOptions & { readonly code: string } {
  return { mesh: f.mesh, network: f.network, gateway: f.gateway, identities: f.identities, service: 'model-a', version: 'v1', code: handlerDir() };
}
