import { type App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ConsulIamAuthMethod, ConsulServerCluster } from '../../../constructs/consul';
import { parseProperties } from '../../../constructs/consul/private/auth-method-handler';
import type { AuthMethodObjects } from '../../../constructs/consul/private/auth-method-objects';
import { ConsulTokenRole } from '../../../constructs/consul/types';
import { Mesh, ServicePlacement } from '../../../constructs/mesh';
import { MeshNetwork } from '../../../constructs/network';
import { formatFindings, newTestApp, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';

interface Fixture {
  readonly app: App;
  readonly stack: Stack;
  readonly mesh: Mesh;
  readonly network: MeshNetwork;
  readonly cluster: ConsulServerCluster;
  readonly ecsCluster: ecs.Cluster;
}

/** A control plane: the network, the servers, an ECS cluster, and a mesh with an ECS, an EC2 and an EKS service. */
function fixture(meshProps: { readonly namespace?: string } = {}): Fixture {
  const app = newTestApp();
  const stack = new Stack(app, 'ControlPlane');
  const network = new MeshNetwork(stack, 'Network');
  const mesh = new Mesh(stack, 'Model', { meshName: 'ml', ...meshProps });
  mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
  mesh.addService('log-service', { port: 24224, placement: ServicePlacement.EC2 });
  mesh.addService('web', { port: 8000, placement: ServicePlacement.EKS });
  mesh.addFunction('model-a', { versions: ['v1'] });
  const cluster = new ConsulServerCluster(stack, 'Consul', { mesh, network });
  const ecsCluster = new ecs.Cluster(stack, 'Ecs', { vpc: network.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
  return { app, stack, mesh, network, cluster, ecsCluster };
}

/** The custom resource's properties, with the Objects JSON parsed (tokens as `<Ref:...>` / `<GetAtt:...>` placeholders). */
function customResource(t: Template): { readonly props: Record<string, unknown>; readonly objects: AuthMethodObjects; readonly objectsJson: string; readonly dependsOn: string[] } {
  const resources = Object.values(t.findResources('Custom::ConsulAuthMethod'));
  expect(resources).toHaveLength(1);
  const resource = resources[0] as { Properties: Record<string, unknown>; DependsOn?: string[] };
  const objectsJson = placeholders(resource.Properties.Objects);
  return { props: resource.Properties, objects: JSON.parse(objectsJson) as AuthMethodObjects, objectsJson, dependsOn: resource.DependsOn ?? [] };
}

function placeholders(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const join = (value as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return join[1].map((part) => {
    if (typeof part === 'string') {
      return part;
    }
    const p = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    return p.Ref !== undefined ? `<Ref:${p.Ref}>` : `<GetAtt:${p['Fn::GetAtt']![0]}.${p['Fn::GetAtt']![1]}>`;
  }).join(join[0]);
}

const logicalId = (stack: Stack, c: { node: { defaultChild?: unknown } }): string => stack.getLogicalId(c.node.defaultChild as never);

describe('ConsulIamAuthMethod', () => {
  const f = fixture();
  const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network, ecsClusters: [f.ecsCluster] });
  // Declared after the construct: still rendered (the objects are produced at synth).
  f.mesh.addService('result-writer', { port: 8081 });
  const t = Template.fromStack(f.stack);
  const cr = customResource(t);
  const ecsClusterId = logicalId(f.stack, f.ecsCluster);
  const applier = Object.keys(t.findResources('AWS::Lambda::Function', { Properties: { Description: 'Keeps the Consul auth method of ControlPlane/AuthMethod' } }));

  test('its attributes: the method name, the role path of the mesh, the server ID header', () => {
    expect(authMethod.authMethodName).toBe('lambda-mesh-ml-aws-iam');
    expect(authMethod.rolePath).toBe('/lambda-mesh/ml/');
    expect(authMethod.serverIdHeaderValue).toBe('server.dc1.consul');
    expect(authMethod.ec2NodeName('log-service')).toBe('lambda-mesh-ml-ec2-log-service');
    expect(authMethod.owner).toMatch(/^lambda-mesh\/ml\/\S+$/);
  });

  test('a Custom::ConsulAuthMethod with its Owner and the Objects rendered from the mesh', () => {
    expect(applier).toHaveLength(1);
    expect(cr.props).toEqual({ ServiceToken: { 'Fn::GetAtt': [applier[0], 'Arn'] }, Owner: authMethod.owner, Objects: expect.anything() });
    expect(cr.objects.authMethod).toMatchObject({
      Name: 'lambda-mesh-ml-aws-iam',
      Type: 'aws-iam',
      Config: {
        BoundIAMPrincipalARNs: ['arn:<Ref:AWS::Partition>:iam::<Ref:AWS::AccountId>:role/lambda-mesh/ml/*'],
        EnableIAMEntityDetails: true,
        ServerIDHeaderValue: 'server.dc1.consul',
      },
    });
    // result-writer was declared after the construct; web runs on EKS (the Kubernetes auth method's).
    expect(cr.objects.bindingRules.map((r) => r.Key)).toEqual(['service:feature-store', 'service:log-service', 'service:result-writer', 'gateway:mesh-gateway']);
    expect(cr.objects.nodes.map((n) => n.Node)).toEqual([`<GetAtt:${ecsClusterId}.Arn>`, 'lambda-mesh-ml-ec2-log-service']);
    expect(cr.objects.roles.map((r) => r.Name)).toEqual(['lambda-mesh-ml-mesh-gateway']);
    // What the handler will receive passes its validation.
    expect(parseProperties({ Owner: cr.props.Owner, Objects: cr.objectsJson }).objects.bindingRules).toHaveLength(4);
  });

  test('the applier runs in the network\'s function subnets with reserved concurrency 1', () => {
    const subnetIds = f.stack.resolve(f.network.vpc.selectSubnets(f.network.functionSubnets).subnetIds) as unknown[];
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Keeps the Consul auth method of ControlPlane/AuthMethod',
      ReservedConcurrentExecutions: 1,
      VpcConfig: { SubnetIds: subnetIds, SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^AuthMethodApplierSecurityGroup'), 'GroupId'] }] },
      Environment: { Variables: Match.objectLike({ CONSUL_SERVER_NAME: 'server.dc1.consul' }) },
    });
  });

  test('its role may read exactly the CA and the workload-identity token secrets', () => {
    const role = (t.findResources('AWS::Lambda::Function')[applier[0]].Properties as { Role: { 'Fn::GetAtt': [string, string] } }).Role['Fn::GetAtt'][0];
    const statements = Object.values(t.findResources('AWS::IAM::Policy'))
      .filter((p) => JSON.stringify(p.Properties.Roles).includes(role))
      .flatMap((p) => (p.Properties.PolicyDocument as { Statement: Array<{ Action: string | string[]; Resource: unknown }> }).Statement);
    const secretReads = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('secretsmanager:')));
    expect(secretReads).toHaveLength(1);
    expect([secretReads[0].Action].flat()).toEqual(['secretsmanager:GetSecretValue']);
    expect(secretReads[0].Resource).toEqual(f.stack.resolve([f.cluster.caCertificateSecret.secretArn, f.cluster.tokenSecret(ConsulTokenRole.WORKLOAD_IDENTITY).secretArn]));
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Keeps the Consul auth method of ControlPlane/AuthMethod',
      Environment: { Variables: Match.objectLike({ CONSUL_TOKEN_SECRET_ARN: f.stack.resolve(f.cluster.tokenSecret(ConsulTokenRole.WORKLOAD_IDENTITY).secretArn) }) },
    });
  });

  test('its security group reaches the Consul load balancer on 8501', () => {
    const clusterGroup = f.stack.resolve(f.cluster.connections.securityGroups[0].securityGroupId) as unknown;
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      IpProtocol: 'tcp',
      FromPort: 8501,
      ToPort: 8501,
      GroupId: clusterGroup,
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AuthMethodApplierSecurityGroup'), 'GroupId'] },
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      IpProtocol: 'tcp',
      FromPort: 8501,
      ToPort: 8501,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^AuthMethodApplierSecurityGroup'), 'GroupId'] },
      DestinationSecurityGroupId: clusterGroup,
    });
  });

  test('the custom resource waits for the cluster, the applier, its role and its security group', () => {
    const asg = Object.keys(t.findResources('AWS::AutoScaling::AutoScalingGroup'));
    expect(asg).toHaveLength(1);
    const role = Object.keys(t.findResources('AWS::IAM::Role')).filter((k) => k.startsWith('AuthMethodApplierRole'));
    const group = Object.keys(t.findResources('AWS::EC2::SecurityGroup')).filter((k) => k.startsWith('AuthMethodApplierSecurityGroup'));
    expect(cr.dependsOn).toEqual(expect.arrayContaining([...asg, ...applier, ...role, ...group]));
  });
});

describe('ConsulIamAuthMethod.createWorkloadRole', () => {
  test('a role under the mesh\'s path, tagged with its service, allowed iam:GetRole on itself only', () => {
    const f = fixture();
    const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network });
    const role = authMethod.createWorkloadRole(f.stack, 'FeatureStoreTaskRole', { serviceName: 'feature-store', assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const t = Template.fromStack(f.stack);
    const roleId = logicalId(f.stack, role);
    t.hasResourceProperties('AWS::IAM::Role', {
      Path: '/lambda-mesh/ml/',
      Tags: [{ Key: 'consul.hashicorp.com.service-name', Value: 'feature-store' }],
      Description: 'lambda-mesh: logs in to Consul as service feature-store of mesh ml',
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' } })] },
    });
    const policies = Object.values(t.findResources('AWS::IAM::Policy')).filter((p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]));
    expect(policies.map((p) => (p.Properties.PolicyDocument as { Statement: unknown }).Statement)).toEqual([[{ Effect: 'Allow', Action: 'iam:GetRole', Resource: { 'Fn::GetAtt': [roleId, 'Arn'] } }]]);
  });

  test('a gateway role carries the gateway-kind tag; a mesh of another namespace adds the namespace tag', () => {
    const f = fixture({ namespace: 'ml-team' });
    const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network });
    authMethod.createWorkloadRole(f.stack, 'GatewayRole', { serviceName: 'mesh-gateway', gatewayKind: 'mesh-gateway', assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'), description: 'the gateway' });
    Template.fromStack(f.stack).hasResourceProperties('AWS::IAM::Role', {
      Path: '/lambda-mesh/ml/',
      Description: 'the gateway',
      Tags: Match.arrayWith([
        { Key: 'consul.hashicorp.com.gateway-kind', Value: 'mesh-gateway' },
        { Key: 'consul.hashicorp.com.namespace', Value: 'ml-team' },
        { Key: 'consul.hashicorp.com.service-name', Value: 'mesh-gateway' },
      ]),
    });
  });
});

describe('ConsulIamAuthMethod.addEcsCluster', () => {
  test('registers each ECS cluster once, however often it is added', () => {
    const f = fixture();
    const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network, ecsClusters: [f.ecsCluster] });
    authMethod.addEcsCluster(f.ecsCluster);
    authMethod.addEcsCluster(f.ecsCluster);
    const batch = new ecs.Cluster(f.stack, 'Batch', { vpc: f.network.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    authMethod.addEcsCluster(batch);
    authMethod.addEcsCluster(batch);
    const { objects } = customResource(Template.fromStack(f.stack));
    expect(objects.nodes.map((n) => n.Node)).toEqual([
      `<GetAtt:${logicalId(f.stack, f.ecsCluster)}.Arn>`,
      `<GetAtt:${logicalId(f.stack, batch)}.Arn>`,
      'lambda-mesh-ml-ec2-log-service',
    ]);
  });
});

describe('ConsulIamAuthMethod.fromAuthMethodAttributes', () => {
  test('references a method of another app: its attributes, and workload roles under its path', () => {
    const f = fixture();
    const imported = ConsulIamAuthMethod.fromAuthMethodAttributes(f.stack, 'Imported', { mesh: f.mesh, authMethodName: 'lambda-mesh-ml-aws-iam', rolePath: '/lambda-mesh/ml/' });
    expect(imported.serverIdHeaderValue).toBe('server.dc1.consul');
    expect(imported.ec2NodeName('log-service')).toBe('lambda-mesh-ml-ec2-log-service');
    imported.createWorkloadRole(f.stack, 'Role', { serviceName: 'log-service', assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    Template.fromStack(f.stack).hasResourceProperties('AWS::IAM::Role', { Path: '/lambda-mesh/ml/', Tags: [{ Key: 'consul.hashicorp.com.service-name', Value: 'log-service' }] });
  });

  test('fails when an ECS cluster is added to an imported auth method', () => {
    const f = fixture();
    const imported = ConsulIamAuthMethod.fromAuthMethodAttributes(f.stack, 'Imported', { mesh: f.mesh, authMethodName: 'lambda-mesh-ml-aws-iam', rolePath: '/lambda-mesh/ml/' });
    const err = meshError(() => imported.addEcsCluster(f.ecsCluster));
    expect(err.location).toBe('ControlPlane/Imported');
    expect(err.field).toBe('addEcsCluster');
    expect(err.given).toBe('"ControlPlane/Ecs"');
    expect(err.expected).toMatch(/an imported auth method cannot change it/);
  });

  test('fails when the imported role path is not an IAM path of the mesh', () => {
    const f = fixture();
    const err = meshError(() => ConsulIamAuthMethod.fromAuthMethodAttributes(f.stack, 'Imported', { mesh: f.mesh, authMethodName: 'x', rolePath: '/' }));
    expect(err.field).toBe('rolePath');
  });
});

describe('ConsulIamAuthMethod rolePath and cluster', () => {
  test.each([
    ['/', 'is "/" (every role of the account would be bound)'],
    ['/lambda-mesh/ml', 'has no trailing slash'],
    ['lambda-mesh/ml/', 'has no leading slash'],
    ['/lambda-mesh//ml/', 'has an empty segment'],
  ])('fails when the rolePath %j %s', (rolePath) => {
    const f = fixture();
    const err = meshError(() => new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network, rolePath }));
    expect(err.location).toBe('ControlPlane/AuthMethod');
    expect(err.field).toBe('rolePath');
    expect(err.given).toBe(JSON.stringify(rolePath));
    expect(err.expected).toMatch(/starting and ending with '\/'/);
  });

  test('a rolePath of its own is used for the bound ARN pattern and the roles', () => {
    const f = fixture();
    const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network, rolePath: '/mesh/ml/workloads/' });
    authMethod.createWorkloadRole(f.stack, 'Role', { serviceName: 'feature-store', assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
    const t = Template.fromStack(f.stack);
    expect(customResource(t).objects.authMethod.Config.BoundIAMPrincipalARNs).toEqual(['arn:<Ref:AWS::Partition>:iam::<Ref:AWS::AccountId>:role/mesh/ml/workloads/*']);
    t.hasResourceProperties('AWS::IAM::Role', { Path: '/mesh/ml/workloads/' });
  });

  test('fails when the cluster is of another datacenter', () => {
    const f = fixture();
    const other = new Mesh(f.stack, 'Other', { meshName: 'other', datacenter: 'dc2' });
    const cluster = new ConsulServerCluster(f.stack, 'OtherConsul', { mesh: other, network: f.network });
    const err = meshError(() => new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster, network: f.network }));
    expect(err.location).toBe('ControlPlane/AuthMethod');
    expect(err.field).toBe('cluster');
    expect(err.given).toBe('"dc2"');
    expect(err.expected).toBe("a cluster of the mesh's datacenter 'dc1'");
  });
});

test('a stack with the auth method has no unacknowledged cdk-nag or cfn-guard finding', () => {
  const f = fixture();
  const authMethod = new ConsulIamAuthMethod(f.stack, 'AuthMethod', { mesh: f.mesh, cluster: f.cluster, network: f.network, ecsClusters: [f.ecsCluster] });
  authMethod.createWorkloadRole(f.stack, 'FeatureStoreTaskRole', { serviceName: 'feature-store', assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  const result = validateCloudFormation(f.app);
  expect(formatFindings(result.findings)).toBe('');
});
