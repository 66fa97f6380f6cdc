import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadConfigFile } from '../../lib/config';
import { MeshEnvironment } from '../../lib/environment';
import { formatFindings, newTestApp, validateCloudFormation } from '../harness';

const EXAMPLES = path.resolve(__dirname, '..', '..', 'examples', 'config');

/**
 * Where each example config is synthesized with the compliance checks. Those with a suite of their own are
 * checked there; this file checks the rest.
 */
const CHECKED_ELSEWHERE: Readonly<Record<string, string>> = {
  'default.yaml': 'test/lib/environment.test.ts (the default environment) and test/integ/snapshot.test.ts',
  'eks-istio-knative.yaml': 'test/lib/environment.test.ts',
  'eks-services.yaml': 'test/lib/eks-services.test.ts',
};
const CHECKED_HERE = ['minimal.yaml', 'ec2-and-external.yaml'];

function synthExample(file: string): { env: MeshEnvironment; result: ReturnType<typeof validateCloudFormation> } {
  const source = path.join(EXAMPLES, file);
  const app = newTestApp();
  const env = new MeshEnvironment(app, {
    config: loadConfigFile(source),
    configSource: source,
    kubernetesOutdir: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-example-')), 'dist'),
  });
  return { env, result: validateCloudFormation(app) };
}

describe('examples/config', () => {
  test('every example config is synthesized with the compliance checks by some suite', () => {
    const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();
    expect(files).toEqual([...Object.keys(CHECKED_ELSEWHERE), ...CHECKED_HERE].sort());
  });

  test('minimal.yaml: only an external service, so no services stack; no unacknowledged finding', () => {
    const { env, result } = synthExample('minimal.yaml');
    expect(env.servicesStack).toBeUndefined();
    expect(env.stacks.map((s) => s.stackName)).toEqual([
      'lambda-mesh-minimal-network',
      'lambda-mesh-minimal-control-plane',
      'lambda-mesh-minimal-mesh',
      'lambda-mesh-minimal-function-model',
    ]);
    // The function stack waits for the mesh stack only: there is no services stack to wait for.
    expect(env.functionStacks.get('model')!.dependencies.map((s) => s.stackName)).not.toContain('lambda-mesh-minimal-services');
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
  });

  test('ec2-and-external.yaml: ECS, EC2 and an external service\'s group in the services stack; no unacknowledged finding', () => {
    const { env, result } = synthExample('ec2-and-external.yaml');
    expect([...env.servicesStack!.ecsServices.keys()]).toEqual(['feature-store']);
    expect([...env.servicesStack!.ec2Services.keys()]).toEqual(['result-writer']);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });
});
