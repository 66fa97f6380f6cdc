import { App, Stack } from 'aws-cdk-lib';
import {
  type AuthMethodInput,
  ec2NodeName,
  gatewayRoleName,
  ownerMark,
  renderAuthMethodObjects,
  shortOwnerId,
  WORKLOAD_ROLE_TAGS,
} from '../../../constructs/consul/private/auth-method-objects';
import { Mesh, type MeshGraph, ServicePlacement } from '../../../constructs/mesh';
import { matchesSelector } from '../../harness/stand-ins/consul';

const OWNER = 'lambda-mesh/ml/StackAuthMethod1A2B3C4D';
const ACCOUNT = '123456789012';
const CLUSTER_A = `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/ml-services`;
const CLUSTER_B = `arn:aws:ecs:us-east-1:${ACCOUNT}:cluster/ml-batch`;
const SERVICE_TAG = `entity_tags.${WORKLOAD_ROLE_TAGS.SERVICE_NAME}`;
const GATEWAY_TAG = `entity_tags.${WORKLOAD_ROLE_TAGS.GATEWAY_KIND}`;

/** One service of each placement and a function with two versions, in a real mesh. */
function meshGraph(): MeshGraph {
  const mesh = new Mesh(new Stack(new App(), 'Stack'), 'Mesh', { meshName: 'ml' });
  const featureStore = mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
  mesh.addService('log-service', { port: 24224, placement: ServicePlacement.EC2 });
  mesh.addService('result-writer', { port: 8081 });
  mesh.addService('web', { port: 8000, placement: ServicePlacement.EKS });
  featureStore.allowFrom(mesh.addFunction('model-a', { versions: ['v1', 'v2'] }));
  return mesh.graph();
}

function render(overrides: Partial<AuthMethodInput> = {}): ReturnType<typeof renderAuthMethodObjects> {
  return renderAuthMethodObjects({
    owner: OWNER,
    authMethodName: 'lambda-mesh-ml-aws-iam',
    graph: meshGraph(),
    boundRoleArnPattern: `arn:aws:iam::${ACCOUNT}:role/lambda-mesh/ml/*`,
    serverIdHeaderValue: 'server.dc1.consul',
    ecsClusterArns: [CLUSTER_A],
    ...overrides,
  });
}

describe('renderAuthMethodObjects', () => {
  const objects = render();
  const rule = (key: string): (typeof objects.bindingRules)[number] => objects.bindingRules.find((r) => r.Key === key)!;

  test('one service rule per ECS, EC2 and external service, and the gateway rule; none for EKS services or function versions', () => {
    expect(objects.bindingRules.map((r) => r.Key)).toEqual(['service:feature-store', 'service:log-service', 'service:result-writer', 'gateway:mesh-gateway']);
    for (const name of ['feature-store', 'log-service', 'result-writer']) {
      expect(rule(`service:${name}`)).toMatchObject({ BindType: 'service', BindName: name });
    }
    expect(objects.bindingRules.map((r) => r.BindName)).not.toEqual(expect.arrayContaining(['web']));
    expect(JSON.stringify(objects.bindingRules)).not.toMatch(/model-a/);
  });

  test('a service rule selects exactly the role tagged with its name', () => {
    const fs = rule('service:feature-store');
    expect(fs.Selector).toBe('entity_tags["consul.hashicorp.com.service-name"] == "feature-store"');
    expect(matchesSelector(fs.Selector, { [SERVICE_TAG]: 'feature-store' })).toBe(true);
    for (const other of ['feature-store-admin', 'Feature-Store', 'feature', '', 'model-a-v1']) {
      expect(matchesSelector(fs.Selector, { [SERVICE_TAG]: other })).toBe(false);
    }
    expect(matchesSelector(fs.Selector, { entity_name: 'feature-store' })).toBe(false);
  });

  test('the gateway rule binds the gateway role, for roles with both the gateway-kind and the service-name tags', () => {
    const gw = rule('gateway:mesh-gateway');
    expect(gw).toMatchObject({ BindType: 'role', BindName: 'lambda-mesh-ml-mesh-gateway' });
    expect(gatewayRoleName('ml')).toBe('lambda-mesh-ml-mesh-gateway');
    expect(matchesSelector(gw.Selector, { [GATEWAY_TAG]: 'mesh-gateway', [SERVICE_TAG]: 'mesh-gateway' })).toBe(true);
    expect(matchesSelector(gw.Selector, { [SERVICE_TAG]: 'mesh-gateway' })).toBe(false);
    expect(matchesSelector(gw.Selector, { [GATEWAY_TAG]: 'mesh-gateway', [SERVICE_TAG]: 'feature-store' })).toBe(false);
    expect(matchesSelector(gw.Selector, { [GATEWAY_TAG]: 'terminating-gateway', [SERVICE_TAG]: 'mesh-gateway' })).toBe(false);
  });

  test('the gateway role holds the mesh-gateway service identity and the gateway policy, which grants mesh:write only', () => {
    expect(objects.roles).toEqual([
      { Name: 'lambda-mesh-ml-mesh-gateway', Description: expect.any(String), Policies: [{ Name: 'lambda-mesh-ml-mesh-gateway' }], ServiceIdentities: [{ ServiceName: 'mesh-gateway' }] },
    ]);
    expect(objects.policies).toEqual([{ Name: 'lambda-mesh-ml-mesh-gateway', Description: expect.any(String), Rules: 'mesh = "write"\n' }]);
  });

  test('no rule for services imported from another app, whatever their placement', () => {
    const mesh = Mesh.fromMeshAttributes(new Stack(new App(), 'Stack'), 'Mesh', {
      meshName: 'ml',
      services: [
        { name: 'feature-store', port: 8080, placement: ServicePlacement.ECS },
        { name: 'log-service', port: 24224, placement: ServicePlacement.EC2 },
        { name: 'result-writer', port: 8081 },
      ],
    });
    const imported = render({ graph: mesh.graph(), ecsClusterArns: [] });
    expect(imported.bindingRules.map((r) => r.Key)).toEqual(['gateway:mesh-gateway']);
    expect(imported.nodes).toEqual([]);
  });

  test('nodes: one per ECS cluster ARN (deduplicated), one per EC2 service, each marked synthetic and with the owner', () => {
    const withClusters = render({ ecsClusterArns: [CLUSTER_A, CLUSTER_B, CLUSTER_A] });
    const meta = { 'synthetic-node': 'true', 'lambda-mesh-owner': shortOwnerId(OWNER) };
    expect(withClusters.nodes).toEqual([
      { Node: CLUSTER_A, Address: '127.0.0.1', NodeMeta: meta },
      { Node: CLUSTER_B, Address: '127.0.0.1', NodeMeta: meta },
      { Node: 'lambda-mesh-ml-ec2-log-service', Address: '127.0.0.1', NodeMeta: meta },
    ]);
    expect(ec2NodeName('ml', 'log-service')).toBe('lambda-mesh-ml-ec2-log-service');
    expect(render({ ecsClusterArns: [] }).nodes.map((n) => n.Node)).toEqual(['lambda-mesh-ml-ec2-log-service']);
  });

  test('the auth method: aws-iam, bound to the role path pattern, with entity details, the consul-ecs tags and the server ID header', () => {
    expect(objects.authMethod).toEqual({
      Name: 'lambda-mesh-ml-aws-iam',
      Type: 'aws-iam',
      DisplayName: 'lambda-mesh ml (AWS IAM)',
      Description: expect.stringMatching(/^lambda-mesh: .*mesh ml/),
      Config: {
        BoundIAMPrincipalARNs: [`arn:aws:iam::${ACCOUNT}:role/lambda-mesh/ml/*`],
        EnableIAMEntityDetails: true,
        IAMEntityTags: ['consul.hashicorp.com.service-name', 'consul.hashicorp.com.namespace', 'consul.hashicorp.com.gateway-kind'],
        ServerIDHeaderValue: 'server.dc1.consul',
      },
    });
    // Tokens pass through unchanged (the construct renders them with Stack.toJsonString).
    const tokenized = render({ boundRoleArnPattern: 'arn:${Token[AWS.Partition.1]}:iam::${Token[AWS.AccountId.2]}:role/lambda-mesh/ml/*' });
    expect(tokenized.authMethod.Config.BoundIAMPrincipalARNs).toEqual(['arn:${Token[AWS.Partition.1]}:iam::${Token[AWS.AccountId.2]}:role/lambda-mesh/ml/*']);
  });

  test('every Description ends with the owner mark, binding rules with their key too', () => {
    const mark = `[lambda-mesh owner ${shortOwnerId(OWNER)}]`;
    expect(ownerMark(OWNER)).toBe(mark);
    expect(shortOwnerId(OWNER)).toMatch(/^[0-9a-f]{12}$/);
    expect(objects.authMethod.Description.endsWith(mark)).toBe(true);
    for (const o of [...objects.policies, ...objects.roles]) {
      expect(o.Description.endsWith(mark)).toBe(true);
    }
    for (const r of objects.bindingRules) {
      expect(r.Description.endsWith(`[lambda-mesh owner ${shortOwnerId(OWNER)} rule ${r.Key}]`)).toBe(true);
    }
    // Another owner, other marks: the full owner string is never stored.
    const other = render({ owner: 'lambda-mesh/ml/OtherStackAuthMethod5E6F7A8B' });
    expect(other.authMethod.Description).not.toContain(mark);
    expect(JSON.stringify(objects)).not.toContain(OWNER);
  });
});
