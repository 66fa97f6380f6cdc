import { type App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { ConsulIamAuthMethod, ConsulServerCluster } from '../../../constructs/consul';
import { ConsulImage, ConsulImageCache } from '../../../constructs/consul/image';
import { MeshGateway, type MeshGatewayProps } from '../../../constructs/consul/mesh-gateway';
import { ConsulDefaults, ConsulPorts, type ConsulTokenRole, type IConsulCluster } from '../../../constructs/consul/types';
import { Mesh } from '../../../constructs/mesh';
import { type IMeshNetwork, MeshNetwork, type MeshNetworkProps } from '../../../constructs/network';
import { consulEcsConfigsOf, formatFindings, newTestApp, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const SECRET_ARN = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
const CA_ARN = SECRET_ARN('consul-ca');
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`;
const DIGEST = `sha256:${'a'.repeat(64)}`;
const MESH_INIT = 'consul-ecs-mesh-init';
const DATAPLANE = 'consul-dataplane';
const HEALTH_SYNC = 'consul-ecs-health-sync';

/**
 * Test fixture: a stand-in for the Consul server cluster, with imported secrets and key and a security group
 * (default port 8501). Only what MeshGateway and ConsulIamAuthMethod read.
 */
class FakeConsulCluster extends Construct implements IConsulCluster {
  public readonly datacenter: string;
  public readonly endpointAddress = 'consul-servers.internal.example';
  public readonly caCertificateSecret: secretsmanager.ISecret;
  public readonly secretsKey: kms.IKey;
  public readonly connections: ec2.Connections;
  private readonly tokens = new Map<ConsulTokenRole, secretsmanager.ISecret>();

  constructor(scope: Construct, id: string, vpc: ec2.IVpc, datacenter = 'dc1') {
    super(scope, id);
    this.datacenter = datacenter;
    this.caCertificateSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'Ca', CA_ARN);
    this.secretsKey = kms.Key.fromKeyArn(this, 'Key', KEY_ARN);
    const sg = new ec2.SecurityGroup(this, 'ServerSecurityGroup', { vpc, description: 'test fixture: consul servers', allowAllOutbound: false });
    this.connections = new ec2.Connections({ securityGroups: [sg], defaultPort: ec2.Port.tcp(ConsulPorts.HTTPS) });
  }

  public tokenSecret(role: ConsulTokenRole): secretsmanager.ISecret {
    let secret = this.tokens.get(role);
    if (!secret) {
      secret = secretsmanager.Secret.fromSecretCompleteArn(this, `Token-${role}`, SECRET_ARN(`consul-token-${role}`));
      this.tokens.set(role, secret);
    }
    return secret;
  }
}

interface Fixture {
  app: App;
  stack: Stack;
  network: MeshNetwork;
  mesh: Mesh;
  cluster: FakeConsulCluster;
  authMethod: ConsulIamAuthMethod;
}

function fixture(networkProps: MeshNetworkProps = {}): Fixture {
  const app = newTestApp();
  const stack = new Stack(app, 'Mesh');
  const network = new MeshNetwork(stack, 'Network', networkProps);
  const mesh = new Mesh(stack, 'Model', { meshName: 'ml' });
  const cluster = new FakeConsulCluster(stack, 'Consul', network.vpc);
  const authMethod = new ConsulIamAuthMethod(stack, 'AuthMethod', { mesh, cluster, network });
  return { app, stack, network, mesh, cluster, authMethod };
}

type GatewayFixture = Fixture & { gateway: MeshGateway; template: Template };

function gatewayStack(props: Partial<MeshGatewayProps> = {}, networkProps: MeshNetworkProps = {}): GatewayFixture {
  const f = fixture(networkProps);
  const gateway = new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: f.authMethod, deletionProtection: false, ...props });
  return { ...f, gateway, template: Template.fromStack(f.stack) };
}

function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as ec2.CfnSecurityGroup);
}

type ContainerDefinition = Record<string, unknown> & { Name: string; Command?: unknown[]; EntryPoint?: string[]; Image: unknown };

function containers(template: Template): Record<string, ContainerDefinition> {
  const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
  expect(defs).toHaveLength(1);
  const list = defs[0].Properties.ContainerDefinitions as ContainerDefinition[];
  return Object.fromEntries(list.map((c) => [c.Name, c]));
}

type Props = Record<string, unknown>;

function propertiesOf(template: Template, type: string): Props[] {
  return Object.values(template.findResources(type)).map((r) => (r as { Properties: Props }).Properties);
}

/** The logical ID a `{ "Fn::GetAtt": [id, ...] }` points at. */
function getAttTarget(stack: Stack, value: unknown): string {
  const resolved = stack.resolve(value) as { 'Fn::GetAtt': [string, string] };
  return resolved['Fn::GetAtt'][0];
}

function subnetIds(stack: Stack, network: MeshNetwork, selection: ec2.SubnetSelection): unknown[] {
  return network.vpc.selectSubnets(selection).subnetIds.map((id): unknown => stack.resolve(id));
}

/** The statements of the one policy attached to the role with logical ID `roleId`. */
function statementsOfRole(template: Template, stack: Stack, roleId: string): Array<Record<string, unknown>> {
  const policies = propertiesOf(template, 'AWS::IAM::Policy').filter((p) => JSON.stringify(p.Roles) === JSON.stringify([{ Ref: roleId }]));
  expect(policies).toHaveLength(1);
  return stack.resolve((policies[0].PolicyDocument as { Statement: unknown }).Statement) as Array<Record<string, unknown>>;
}

function executionRoleId(template: Template): string {
  const td = Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0];
  return (td.Properties.ExecutionRoleArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
}

/**
 * A CloudFormation value as the string it becomes at deploy time in account {@link ACCOUNT}, region {@link REGION}:
 * Fn::Join, Fn::Select, Fn::Split and the pseudo parameters are evaluated; anything else fails the test.
 */
function deployed(value: unknown): string {
  const v = evaluate(value);
  if (typeof v !== 'string') {
    throw new Error(`not a string: ${JSON.stringify(value)}`);
  }
  return v;
}

function evaluate(value: unknown): unknown {
  if (typeof value === 'string' || Array.isArray(value)) {
    return Array.isArray(value) ? value.map(evaluate) : value;
  }
  const v = value as Record<string, unknown>;
  const pseudo: Record<string, string> = { 'AWS::AccountId': ACCOUNT, 'AWS::Region': REGION, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com' };
  if (typeof v.Ref === 'string' && v.Ref in pseudo) {
    return pseudo[v.Ref];
  }
  if (Array.isArray(v['Fn::Join'])) {
    const [separator, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => deployed(p)).join(separator);
  }
  if (Array.isArray(v['Fn::Split'])) {
    const [separator, source] = v['Fn::Split'] as [string, unknown];
    return deployed(source).split(separator);
  }
  if (Array.isArray(v['Fn::Select'])) {
    const [index, list] = v['Fn::Select'] as [number, unknown];
    return (evaluate(list) as unknown[])[index];
  }
  throw new Error(`cannot evaluate ${JSON.stringify(value)}`);
}

describe('MeshGateway', () => {
  describe('with defaults', () => {
    const f = gatewayStack();
    const { template, stack, network, cluster, gateway, authMethod } = f;

    test('a Fargate service of 2 tasks in the server subnets, rolled back by the circuit breaker, never below 100%', () => {
      template.resourceCountIs('AWS::ECS::Service', 1);
      template.hasResourceProperties('AWS::ECS::Service', {
        LaunchType: 'FARGATE',
        PlatformVersion: 'LATEST',
        DesiredCount: 2,
        EnableExecuteCommand: false,
        AvailabilityZoneRebalancing: 'ENABLED',
        DeploymentConfiguration: Match.objectLike({
          DeploymentCircuitBreaker: { Enable: true, Rollback: true },
          MinimumHealthyPercent: 100,
          MaximumPercent: 200,
        }),
        NetworkConfiguration: {
          AwsvpcConfiguration: {
            AssignPublicIp: 'DISABLED',
            SecurityGroups: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayTaskSecurityGroup'), 'GroupId'] }],
            Subnets: subnetIds(stack, network, network.serverSubnets),
          },
        },
        LoadBalancers: [Match.objectLike({ ContainerName: DATAPLANE, ContainerPort: 8443 })],
      });
      template.hasResourceProperties('AWS::ECS::Cluster', {
        ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
      });
      template.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Cpu: '512',
        Memory: '1024',
        NetworkMode: 'awsvpc',
        RequiresCompatibilities: ['FARGATE'],
        RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
        Volumes: [{ Name: 'consul_data' }],
      });
      expect(getAttTarget(stack, gateway.ecsCluster.clusterArn)).toMatch(/^GatewayCluster/);
    });

    test('an internal NLB in the server subnets, cross-zone, without deletion protection when asked, a TCP listener on 8443 to IP targets checked by TCP on 8443', () => {
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
        Type: 'network',
        Scheme: 'internal',
        Subnets: subnetIds(stack, network, network.serverSubnets),
        SecurityGroups: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayLoadBalancerSecurityGroup'), 'GroupId'] }],
        LoadBalancerAttributes: Match.arrayWith([
          { Key: 'deletion_protection.enabled', Value: 'false' },
          { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
        ]),
      });
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 8443, Protocol: 'TCP' });
      template.resourceCountIs('AWS::ElasticLoadBalancingV2::TargetGroup', 1);
      template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
        Port: 8443,
        Protocol: 'TCP',
        TargetType: 'ip',
        // Envoy's ready port listens on 127.0.0.1 only under consul-ecs: the load balancer checks the listener.
        HealthCheckProtocol: 'TCP',
        HealthCheckPort: '8443',
        HealthCheckPath: Match.absent(),
        HealthCheckIntervalSeconds: 10,
        HealthyThresholdCount: 2,
        UnhealthyThresholdCount: 2,
        TargetGroupAttributes: Match.arrayWith([
          { Key: 'deregistration_delay.timeout_seconds', Value: '30' },
          { Key: 'preserve_client_ip.enabled', Value: 'false' },
          { Key: 'deregistration_delay.connection_termination.enabled', Value: 'true' },
        ]),
      });
      expect(stack.resolve(gateway.endpoint)).toEqual({
        'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^GatewayLoadBalancer/), 'DNSName'] }, ':8443']],
      });
      expect(stack.resolve(gateway.endpointAddress)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^GatewayLoadBalancer/), 'DNSName'] });
      expect(gateway.endpointPort).toBe(8443);
    });

    test('security groups: only the function group reaches the NLB on 8443; only the NLB reaches the tasks; tasks reach Consul on 8501/8503', () => {
      const fnSg = logicalId(stack, network.functionSecurityGroup);
      const lbSgId = getAttTarget(stack, gateway.connections.securityGroups[0].securityGroupId);
      const taskSgId = getAttTarget(stack, gateway.taskConnections.connections.securityGroups[0].securityGroupId);
      expect(getAttTarget(stack, gateway.service.connections.securityGroups[0].securityGroupId)).toBe(taskSgId);
      const clusterSgId = logicalId(stack, cluster.connections.securityGroups[0]);

      const ingress = propertiesOf(template, 'AWS::EC2::SecurityGroupIngress');
      const egress = propertiesOf(template, 'AWS::EC2::SecurityGroupEgress');
      const refersTo = (value: unknown, id: string) => JSON.stringify(value).includes(`"${id}"`);
      const to = (id: string) => (p: Props) => refersTo(p.GroupId, id);
      const from = (id: string) => (p: Props) => refersTo(p.SourceSecurityGroupId, id);
      const toGroup = (id: string) => (p: Props) => refersTo(p.DestinationSecurityGroupId, id);
      const ports = (p: Props) => `${String(p.IpProtocol)}/${String(p.FromPort)}-${String(p.ToPort)}`;

      // The load balancer admits the function security group on 8443, and nothing else.
      const lbIngress = ingress.filter(to(lbSgId));
      expect(lbIngress).toHaveLength(1);
      expect(from(fnSg)(lbIngress[0])).toBe(true);
      expect(ports(lbIngress[0])).toBe('tcp/8443-8443');
      template.hasResourceProperties('AWS::EC2::SecurityGroup', { GroupDescription: Match.stringLikeRegexp('mesh gateway load balancer'), SecurityGroupIngress: Match.absent() });
      // The functions' egress to the gateway; the load balancer's only egress is to the tasks' listener.
      expect(egress.filter((p) => to(fnSg)(p) && toGroup(lbSgId)(p)).map(ports)).toEqual(['tcp/8443-8443']);
      expect(egress.filter(to(lbSgId)).map((p) => [toGroup(taskSgId)(p), ports(p)])).toEqual([[true, 'tcp/8443-8443']]);

      // The tasks admit only the load balancer, on the listener (the health check uses it too).
      const taskIngress = ingress.filter(to(taskSgId));
      expect(taskIngress).toHaveLength(1);
      expect(from(lbSgId)(taskIngress[0])).toBe(true);
      expect(ports(taskIngress[0])).toBe('tcp/8443-8443');

      // Tasks to Consul: HTTPS API (login, registration) and gRPC TLS (xDS), admitted on the cluster's side too.
      expect(egress.filter((p) => to(taskSgId)(p) && toGroup(clusterSgId)(p)).map(ports).sort()).toEqual(['tcp/8501-8501', 'tcp/8503-8503']);
      expect(ingress.filter((p) => to(clusterSgId)(p) && from(taskSgId)(p)).map(ports).sort()).toEqual(['tcp/8501-8501', 'tcp/8503-8503']);

      // Tasks to the VPC endpoints (secrets, ECR, logs): admitted by the endpoints' group on 443.
      const endpointSgId = logicalId(stack, network.connections.securityGroups[0]);
      expect(egress.filter((p) => to(taskSgId)(p) && toGroup(endpointSgId)(p)).map(ports)).toEqual(['tcp/443-443']);
      expect(ingress.filter((p) => to(endpointSgId)(p) && from(taskSgId)(p)).map(ports)).toEqual(['tcp/443-443']);
      // No other standalone egress of the tasks.
      expect(egress.filter(to(taskSgId))).toHaveLength(3);

      // The task group's inline egress: HTTPS for images and the service subnets' CIDRs (not the VPC's).
      const taskSg = propertiesOf(template, 'AWS::EC2::SecurityGroup').find((p) => String(p.GroupDescription).includes('mesh gateway tasks'))!;
      const taskEgress = taskSg.SecurityGroupEgress as Props[];
      const serviceCidrs = network.vpc.selectSubnets(network.serviceSubnets).subnets.map((sn) => sn.ipv4CidrBlock);
      expect(serviceCidrs.length).toBeGreaterThan(0);
      expect(taskEgress).toEqual(expect.arrayContaining([
        expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
        ...serviceCidrs.map((cidr) => expect.objectContaining({ CidrIp: cidr, FromPort: 0, ToPort: 65535, IpProtocol: 'tcp' }) as unknown),
      ]));
      expect(taskEgress).toHaveLength(1 + serviceCidrs.length);
      expect(taskEgress.some((r) => r.CidrIp === '10.0.0.0/16')).toBe(false);
      expect(taskSg.SecurityGroupIngress).toBeUndefined();
    });

    test('the task runs exactly mesh-init, the dataplane and health-sync, read-only and not as root', () => {
      const all = containers(template);
      expect(Object.keys(all).sort()).toEqual([DATAPLANE, HEALTH_SYNC, MESH_INIT]);
      for (const c of Object.values(all)) {
        expect(c.ReadonlyRootFilesystem).toBe(true);
        expect(c.User).toEqual(expect.any(String));
        expect(['', '0', 'root'].includes(String(c.User).split(':')[0])).toBe(false);
        expect(c.Privileged).toBeUndefined();
      }
      expect(all[MESH_INIT]).toMatchObject({
        Essential: false,
        Command: ['mesh-init'],
        User: 'consul-ecs',
        Memory: 64,
        MountPoints: [{ SourceVolume: 'consul_data', ContainerPath: '/consul', ReadOnly: false }],
        LogConfiguration: { LogDriver: 'awslogs', Options: { 'awslogs-stream-prefix': 'mesh-init' } },
      });
      expect(all[MESH_INIT].Image).toBe(`public.ecr.aws/hashicorp/consul-ecs:${ConsulDefaults.CONSUL_ECS_VERSION}`);
      expect(all[DATAPLANE]).toMatchObject({
        Essential: true,
        User: '5995',
        EntryPoint: ['/consul/consul-ecs', 'envoy-entrypoint'],
        Command: ['consul-dataplane', '-config-file', '/consul/consul-dataplane.json'],
        DependsOn: [{ ContainerName: MESH_INIT, Condition: 'SUCCESS' }],
        HealthCheck: { Command: ['CMD', '/consul/consul-ecs', 'net-dial', '127.0.0.1:22000'] },
        PortMappings: [{ ContainerPort: 8443, Protocol: 'tcp', Name: 'mesh' }],
        MountPoints: [{ SourceVolume: 'consul_data', ContainerPath: '/consul', ReadOnly: true }],
        Memory: 1024 - 128,
        LogConfiguration: { LogDriver: 'awslogs', Options: { 'awslogs-stream-prefix': 'dataplane' } },
      });
      expect(all[DATAPLANE].Image).toBe(`public.ecr.aws/hashicorp/consul-dataplane:${ConsulDefaults.DATAPLANE_VERSION}`);
      // The dataplane reads its config (and the CA) from /consul, not from the environment.
      expect(all[DATAPLANE].Environment).toBeUndefined();
      expect(all[DATAPLANE].Secrets).toBeUndefined();
      expect(all[HEALTH_SYNC]).toMatchObject({
        Essential: false,
        Command: ['health-sync'],
        User: '5996',
        DependsOn: [{ ContainerName: MESH_INIT, Condition: 'SUCCESS' }],
        MountPoints: [{ SourceVolume: 'consul_data', ContainerPath: '/consul', ReadOnly: true }],
        LogConfiguration: { LogDriver: 'awslogs', Options: { 'awslogs-stream-prefix': 'health-sync' } },
      });
      expect(all[HEALTH_SYNC].Image).toBe(all[MESH_INIT].Image);
    });

    test('mesh-init and health-sync get the CA from Secrets Manager and no token, anywhere', () => {
      const all = containers(template);
      const caSecrets = [
        { Name: 'CONSUL_HTTPS_CACERT_PEM', ValueFrom: `${CA_ARN}:CertificatePem::` },
        { Name: 'CONSUL_GRPC_CACERT_PEM', ValueFrom: `${CA_ARN}:CertificatePem::` },
      ];
      expect(all[MESH_INIT].Secrets).toEqual(caSecrets);
      expect(all[HEALTH_SYNC].Secrets).toEqual(caSecrets);
      for (const c of [all[MESH_INIT], all[HEALTH_SYNC]]) {
        expect((c.Environment as Array<{ Name: string }>).map((e) => e.Name)).toEqual(['CONSUL_ECS_CONFIG_JSON']);
      }
      const td = JSON.stringify(Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]);
      expect(td).not.toMatch(/token/i);
      expect(td).not.toContain('consul-token-');
    });

    test('the execution role reads exactly the CA secret and decrypts it through Secrets Manager; no ECR permissions for public images', () => {
      const statements = statementsOfRole(template, stack, executionRoleId(template));
      const secretReads = statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:'));
      expect(secretReads.flatMap((s) => [s.Resource].flat())).toEqual([CA_ARN]);
      expect(statements).toContainEqual({
        Action: 'kms:Decrypt',
        Effect: 'Allow',
        Resource: KEY_ARN,
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
      });
      expect(JSON.stringify(statements)).not.toContain('ecr:');
    });

    test('the task role is a workload role of the auth method: under its path, tagged as the mesh gateway, allowed only iam:GetRole on itself', () => {
      const roleId = stack.getLogicalId(gateway.taskRole.node.defaultChild as ec2.CfnSecurityGroup);
      template.hasResourceProperties('AWS::ECS::TaskDefinition', { TaskRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } });
      const role = template.findResources('AWS::IAM::Role')[roleId].Properties as Props;
      expect(role.Path).toBe(authMethod.rolePath);
      expect(role.Path).toBe('/lambda-mesh/ml/');
      expect(role.Tags).toEqual(expect.arrayContaining([
        { Key: 'consul.hashicorp.com.service-name', Value: 'mesh-gateway' },
        { Key: 'consul.hashicorp.com.gateway-kind', Value: 'mesh-gateway' },
      ]));
      expect(role.AssumeRolePolicyDocument).toMatchObject({ Statement: [{ Action: 'sts:AssumeRole', Principal: { Service: 'ecs-tasks.amazonaws.com' } }] });
      expect(role.ManagedPolicyArns).toBeUndefined();
      expect(role.Policies).toBeUndefined();
      expect(statementsOfRole(template, stack, roleId)).toEqual([
        { Action: 'iam:GetRole', Effect: 'Allow', Resource: { 'Fn::GetAtt': [roleId, 'Arn'] } },
      ]);
    });

    test('the service waits for the auth method (its custom resource) and the Consul cluster', () => {
      const service = Object.values(template.findResources('AWS::ECS::Service'))[0] as { DependsOn: string[] };
      const customResource = Object.keys(template.findResources('Custom::ConsulAuthMethod'));
      expect(customResource).toHaveLength(1);
      expect(service.DependsOn).toEqual(expect.arrayContaining([customResource[0], logicalId(stack, cluster.connections.securityGroups[0])]));
    });

    test('the auth method registers the synthetic node of the gateway\'s ECS cluster', () => {
      const cr = Object.values(template.findResources('Custom::ConsulAuthMethod'))[0].Properties as { Objects: { 'Fn::Join': [string, unknown[]] } };
      const clusterId = getAttTarget(stack, gateway.ecsCluster.clusterArn);
      const parts = cr.Objects['Fn::Join'][1];
      expect(parts).toContainEqual({ 'Fn::GetAtt': [clusterId, 'Arn'] });
      const objects = JSON.parse(cr.Objects['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : JSON.stringify(p).includes(clusterId) ? 'CLUSTER_ARN' : 'X')).join('')) as { nodes: Array<Record<string, unknown>> };
      expect(objects.nodes).toEqual([{ Node: 'CLUSTER_ARN', Address: '127.0.0.1', NodeMeta: expect.objectContaining({ 'synthetic-node': 'true' }) as unknown }]);
    });

    test('CONSUL_ECS_CONFIG_JSON is a mesh-gateway config that the official consul-ecs schema accepts', () => {
      const configs = consulEcsConfigsOf(template.toJSON());
      expect(configs.map((c) => c.where.split('/')[1]).sort()).toEqual([HEALTH_SYNC, MESH_INIT]);
      for (const { config, errors } of configs) {
        expect(errors).toEqual([]);
        expect(config).toMatchObject({
          bootstrapDir: '/consul',
          consulServers: {
            hosts: cluster.endpointAddress,
            skipServerWatch: true,
            defaults: { tls: true, tlsServerName: 'server.dc1.consul' },
            http: { port: 8501, https: true },
            grpc: { port: 8503 },
          },
          consulLogin: { enabled: true, method: authMethod.authMethodName, includeEntity: true, datacenter: 'dc1', serverIdHeaderValue: authMethod.serverIdHeaderValue },
          gateway: { kind: 'mesh-gateway', name: 'mesh-gateway', lanAddress: { port: 8443 }, wanAddress: { port: 8443 } },
          healthSyncContainers: [],
          transparentProxy: { enabled: false },
        });
        expect(config.service).toBeUndefined();
        expect(config.proxy).toBeUndefined();
        // mesh-init and health-sync must read the same document.
        expect(config).toEqual(configs[0].config);
      }
      expect(authMethod.authMethodName).toBe('lambda-mesh-ml-aws-iam');
    });

    test('logs go to a KMS-encrypted log group kept a year', () => {
      template.hasResourceProperties('AWS::Logs::LogGroup', {
        RetentionInDays: 365,
        KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayLogKey'), 'Arn'] },
      });
      template.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayLogKey'), 'Arn'] } }) });
      template.hasResourceProperties('AWS::KMS::Key', {
        Description: Match.stringLikeRegexp('mesh gateway'),
        EnableKeyRotation: true,
        KeyPolicy: {
          Statement: Match.arrayWith([Match.objectLike({
            Principal: { Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          })]),
        },
      });
    });
  });

  test('the NLB has deletion protection by default', () => {
    const f = fixture();
    new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: f.authMethod });
    Template.fromStack(f.stack).hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      LoadBalancerAttributes: Match.arrayWith([{ Key: 'deletion_protection.enabled', Value: 'true' }]),
    });
  });

  test('with a real Consul cluster, the task definition references the CA secret and no token secret', () => {
    const app = newTestApp();
    const stack = new Stack(app, 'Mesh');
    const network = new MeshNetwork(stack, 'Network');
    const mesh = new Mesh(stack, 'Model', { meshName: 'ml' });
    const cluster = new ConsulServerCluster(stack, 'Consul', { mesh, network });
    const authMethod = new ConsulIamAuthMethod(stack, 'AuthMethod', { mesh, cluster, network });
    new MeshGateway(stack, 'Gateway', { cluster, network, authMethod, deletionProtection: false });
    const template = Template.fromStack(stack);
    const secrets = Object.keys(template.findResources('AWS::SecretsManager::Secret'));
    const caId = stack.getLogicalId(cluster.caCertificateSecret.node.defaultChild as secretsmanager.CfnSecret);
    expect(secrets).toContain(caId);
    expect(secrets.length).toBeGreaterThan(1);
    const td = JSON.stringify(Object.values(template.findResources('AWS::ECS::TaskDefinition'))[0]);
    expect(secrets.filter((id) => td.includes(`"${id}"`))).toEqual([caId]);
    // The execution role reads the CA only.
    const statements = statementsOfRole(template, stack, executionRoleId(template));
    const read = statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:')).flatMap((s) => [s.Resource].flat());
    expect(read).toEqual([{ Ref: caId }]);
    for (const { errors, config } of consulEcsConfigsOf(template.toJSON())) {
      expect(errors).toEqual([]);
      expect(config).toMatchObject({ gateway: { kind: 'mesh-gateway' }, consulLogin: { method: authMethod.authMethodName } });
    }
  });

  test('a given ECS cluster is used and registered with the auth method', () => {
    const f = fixture();
    const ecsCluster = new ecs.Cluster(f.stack, 'Workloads', { vpc: f.network.vpc });
    const gateway = new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: f.authMethod, ecsCluster });
    expect(gateway.ecsCluster).toBe(ecsCluster);
    const t = Template.fromStack(f.stack);
    t.resourceCountIs('AWS::ECS::Cluster', 1);
    const clusterId = f.stack.getLogicalId(ecsCluster.node.defaultChild as ecs.CfnCluster);
    t.hasResourceProperties('AWS::ECS::Service', { Cluster: { Ref: clusterId } });
    const cr = Object.values(t.findResources('Custom::ConsulAuthMethod'))[0].Properties as { Objects: unknown };
    expect(JSON.stringify(cr.Objects)).toContain(JSON.stringify({ 'Fn::GetAtt': [clusterId, 'Arn'] }));
  });

  test('connections let more callers in on 8443; allowServiceTraffic opens egress to services elsewhere', () => {
    const { stack, network, cluster, authMethod } = fixture();
    const gateway = new MeshGateway(stack, 'Gateway', { cluster, network, authMethod, serviceTrafficPorts: ec2.Port.tcp(20000) });
    const other = new ec2.SecurityGroup(stack, 'Other', { vpc: network.vpc });
    gateway.connections.allowDefaultPortFrom(other);
    gateway.allowServiceTraffic(ec2.Peer.ipv4('172.16.0.0/16'), ec2.Port.tcpRange(21000, 21255));
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 8443,
      ToPort: 8443,
      SourceSecurityGroupId: { 'Fn::GetAtt': [logicalId(stack, other), 'GroupId'] },
    });
    t.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: Match.stringLikeRegexp('mesh gateway tasks'),
      SecurityGroupEgress: Match.arrayWith([
        Match.objectLike({ CidrIp: Match.stringLikeRegexp('^10\\.0\\.'), FromPort: 20000, ToPort: 20000 }),
        Match.objectLike({ CidrIp: '172.16.0.0/16', FromPort: 21000, ToPort: 21255 }),
      ]),
    });
  });

  test('taskConnections: mesh services admit the gateway tasks on their sidecar port', () => {
    const { stack, network, cluster, authMethod } = fixture();
    const gateway = new MeshGateway(stack, 'Gateway', { cluster, network, authMethod });
    const sidecars = new ec2.SecurityGroup(stack, 'Sidecars', { vpc: network.vpc });
    sidecars.connections.allowFrom(gateway.taskConnections, ec2.Port.tcp(20000));
    Template.fromStack(stack).hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 20000,
      GroupId: { 'Fn::GetAtt': [logicalId(stack, sidecars), 'GroupId'] },
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayTaskSecurityGroup'), 'GroupId'] },
    });
  });

  test('passes the compliance checks (cdk-nag AwsSolutions, cfn-guard Control Tower), each exception acknowledged with a reason', () => {
    const { app } = gatewayStack({ deletionProtection: true });
    const result = validateCloudFormation(app);
    expect(formatFindings(result.findings)).toBe('');
    const gatewayAcks = result.acknowledged.filter((f) => f.constructPath?.startsWith('Mesh/Gateway'));
    expect([...new Set(gatewayAcks.map((f) => f.acknowledgementId))].sort()).toEqual([
      'AwsSolutions::AwsSolutions-ECS2',
      'AwsSolutions::AwsSolutions-ELB2',
      'cdk-validator-cfnguard::elbv2_logging_enabled_check',
    ]);
    for (const f of gatewayAcks) {
      expect(f.reason?.length).toBeGreaterThan(80);
    }
  });

  test('images pinned by digest or from your own ECR; ECR pulls are granted and work without a NAT path', () => {
    const f = fixture({ serverEgress: false });
    const repo = new ecr.Repository(f.stack, 'Mirror', { imageTagMutability: ecr.TagMutability.IMMUTABLE, imageScanOnPush: true, lifecycleRules: [{ maxImageCount: 10 }] });
    new MeshGateway(f.stack, 'Gateway', {
      cluster: f.cluster,
      network: f.network,
      authMethod: f.authMethod,
      dataplaneImage: ConsulImage.fromEcrRepository(repo, DIGEST),
      consulEcsImage: ConsulImage.fromDigest(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/mirror/consul-ecs`, DIGEST),
    });
    const t = Template.fromStack(f.stack);
    const all = containers(t);
    expect(deployed(all[MESH_INIT].Image)).toBe(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/mirror/consul-ecs@${DIGEST}`);
    expect(deployed(all[HEALTH_SYNC].Image)).toBe(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/mirror/consul-ecs@${DIGEST}`);
    expect(JSON.stringify(all[DATAPLANE].Image)).toContain(`@${DIGEST}`);
    const statements = statementsOfRole(t, f.stack, executionRoleId(t));
    const pulls = statements.filter((s) => JSON.stringify(s.Action).includes('ecr:BatchGetImage'));
    expect(pulls.flatMap((s) => [s.Resource].flat())).toEqual(expect.arrayContaining([
      `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/mirror/consul-ecs`,
      { 'Fn::GetAtt': [f.stack.getLogicalId(repo.node.defaultChild as ecr.CfnRepository), 'Arn'] },
    ]));
    expect(JSON.stringify(statements)).not.toContain('ecr:CreateRepository');
    const result = validateCloudFormation(f.app);
    expect(formatFindings(result.findings)).toBe('');
    expect(result.acknowledged.filter((x) => x.constructPath?.startsWith('Mesh/Gateway')).map((x) => x.acknowledgementId)).toContain('AwsSolutions::AwsSolutions-IAM5[Resource::*]');
  });

  test('images through a ConsulImageCache: pulled from the cache\'s repositories, whose first pull is granted on the prefix only', () => {
    const f = fixture({ serverEgress: false });
    const cache = new ConsulImageCache(f.stack, 'ImageCache', { repositoryPrefix: 'ecr-public-test' });
    new MeshGateway(f.stack, 'Gateway', {
      cluster: f.cluster,
      network: f.network,
      authMethod: f.authMethod,
      dataplaneImage: cache.image(ConsulImage.dataplane()),
      consulEcsImage: cache.image(ConsulImage.consulEcs()),
    });
    const t = Template.fromStack(f.stack);
    t.hasResourceProperties('AWS::ECR::PullThroughCacheRule', { EcrRepositoryPrefix: 'ecr-public-test', UpstreamRegistryUrl: 'public.ecr.aws' });
    const all = containers(t);
    const registry = `${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com`;
    expect(deployed(all[MESH_INIT].Image)).toBe(`${registry}/ecr-public-test/hashicorp/consul-ecs:0.10.0`);
    expect(deployed(all[HEALTH_SYNC].Image)).toBe(`${registry}/ecr-public-test/hashicorp/consul-ecs:0.10.0`);
    expect(deployed(all[DATAPLANE].Image)).toBe(`${registry}/ecr-public-test/hashicorp/consul-dataplane:${ConsulDefaults.DATAPLANE_VERSION}`);

    const statements = statementsOfRole(t, f.stack, executionRoleId(t));
    const firstPull = statements.filter((s) => /ecr:(BatchImportUpstreamImage|CreateRepository)/.test(JSON.stringify(s.Action)));
    expect(firstPull.length).toBeGreaterThan(0);
    for (const s of firstPull) {
      expect([s.Action].flat().sort()).toEqual(['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository']);
      expect([s.Resource].flat().map(deployed)).toEqual([`arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/*`]);
    }
    const pulled = statements.filter((s) => JSON.stringify(s.Action).includes('ecr:BatchGetImage')).flatMap((s) => [s.Resource].flat().map(deployed));
    expect([...new Set(pulled)].sort()).toEqual([
      `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/hashicorp/consul-dataplane`,
      `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/ecr-public-test/hashicorp/consul-ecs`,
    ]);

    const result = validateCloudFormation(f.app);
    expect(formatFindings(result.findings)).toBe('');
    expect(result.acknowledged.filter((x) => x.constructPath?.startsWith('Mesh/Gateway')).map((x) => x.acknowledgementId)).toEqual(expect.arrayContaining([
      'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/ecr-public-test/*]',
    ]));
  });

  test('devMode allows a single task and warns', () => {
    const { stack } = gatewayStack({ desiredCount: 1, devMode: true });
    Template.fromStack(stack).hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1 });
    Annotations.fromStack(stack).hasWarning('/Mesh/Gateway', Match.stringLikeRegexp('devMode is on'));
    Annotations.fromStack(stack).hasWarning('/Mesh/Gateway', Match.stringLikeRegexp('lambda-mesh:consul:gatewayDevMode'));
  });

  test('no devMode warning by default', () => {
    const { stack } = gatewayStack();
    Annotations.fromStack(stack).hasNoWarning('/Mesh/Gateway', Match.stringLikeRegexp('devMode'));
  });

  test('a custom size and ARM64', () => {
    const { template } = gatewayStack({ cpu: 1024, memoryLimitMiB: 2048, architecture: ecs.CpuArchitecture.ARM64 });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '1024', Memory: '2048', RuntimePlatform: { CpuArchitecture: 'ARM64' } });
    const all = containers(template);
    expect(all[DATAPLANE].Memory).toBe(2048 - 128);
    expect((all[MESH_INIT].Memory as number) + (all[HEALTH_SYNC].Memory as number) + (all[DATAPLANE].Memory as number)).toBe(2048);
  });

  test('fromMeshGatewayAttributes references a gateway of another stack', () => {
    const { stack, network } = fixture();
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-12345678');
    const taskSg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'TaskSg', 'sg-87654321');
    const imported = MeshGateway.fromMeshGatewayAttributes(stack, 'Imported', { loadBalancerDnsName: 'gw-123.elb.eu-west-1.amazonaws.com', securityGroup: sg, taskSecurityGroup: taskSg });
    expect(imported.endpoint).toBe('gw-123.elb.eu-west-1.amazonaws.com:8443');
    expect(imported.endpointAddress).toBe('gw-123.elb.eu-west-1.amazonaws.com');
    expect(imported.endpointPort).toBe(8443);
    expect(imported.connections.defaultPort?.toString()).toBe('8443');
    expect(imported.connections.securityGroups).toEqual([sg]);
    expect(imported.taskConnections.connections.securityGroups).toEqual([taskSg]);
    imported.connections.allowDefaultPortFrom(network.functionSecurityGroup);
    const sidecars = new ec2.SecurityGroup(stack, 'Sidecars', { vpc: network.vpc });
    sidecars.connections.allowFrom(imported.taskConnections, ec2.Port.tcp(20000));
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { GroupId: 'sg-12345678', FromPort: 8443 });
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { SourceSecurityGroupId: 'sg-87654321', FromPort: 20000 });
  });

  describe('bad input', () => {
    test('fails when the mesh gateway has no network', () => {
      const f = fixture();
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, authMethod: f.authMethod, network: undefined as unknown as MeshNetwork }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'network', given: '(missing)' });
      expect(err.expected).toMatch(/the mesh network .*server subnets/);
    });

    test('fails when the mesh gateway has no cluster', () => {
      const f = fixture();
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: undefined as unknown as FakeConsulCluster, network: f.network, authMethod: f.authMethod }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'cluster', given: '(missing)' });
    });

    test('fails when the mesh gateway has no auth method', () => {
      const f = fixture();
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: undefined as unknown as ConsulIamAuthMethod }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'authMethod', given: '(missing)' });
      expect(err.expected).toMatch(/aws-iam auth method/);
    });

    test.each([[1], [0], [2.5]])('fails when desiredCount is %s without devMode', (desiredCount) => {
      const err = meshError(() => gatewayStack({ desiredCount }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'desiredCount', given: String(desiredCount) });
      expect(err.expected).toMatch(/at least 2/);
    });

    test('fails when desiredCount is 0 even in devMode', () => {
      expect(meshError(() => gatewayStack({ desiredCount: 0, devMode: true })).field).toBe('desiredCount');
    });

    test.each([['latest'], ['v2.0.3'], ['2.0'], ['2.0.3-ent']])('fails when the dataplane version is %s', (version) => {
      const err = meshError(() => gatewayStack({ dataplaneImage: ConsulImage.dataplane(version) }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'dataplaneImage', given: JSON.stringify(version) });
      expect(err.expected).toMatch(/MAJOR\.MINOR\.PATCH/);
    });

    test('fails when the consul-ecs image version is not MAJOR.MINOR.PATCH', () => {
      const err = meshError(() => gatewayStack({ consulEcsImage: ConsulImage.consulEcs('0.10') }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'consulEcsImage', given: '"0.10"' });
    });

    test.each([['sha256:abc'], [`sha256:${'A'.repeat(64)}`], [`sha512:${'a'.repeat(64)}`], ['2.0.3']])('fails when the digest is %s', (digest) => {
      const err = meshError(() => gatewayStack({ dataplaneImage: ConsulImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane', digest) }));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: JSON.stringify(digest) });
      expect(err.expected).toMatch(/sha256/);
    });

    test('fails when the digest repository carries a tag', () => {
      const err = meshError(() => gatewayStack({ dataplaneImage: ConsulImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane:2.0.3', DIGEST) }));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: '"public.ecr.aws/hashicorp/consul-dataplane:2.0.3"' });
    });

    test('fails when an ECR image tag is malformed', () => {
      const f = fixture();
      const repo = new ecr.Repository(f.stack, 'Mirror');
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: f.authMethod, dataplaneImage: ConsulImage.fromEcrRepository(repo, 'bad tag') }));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: '"bad tag"' });
    });

    test('fails when the network has no server egress and an image comes from a public registry', () => {
      const err = meshError(() => gatewayStack({}, { serverEgress: false }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'dataplaneImage', given: `"public.ecr.aws/hashicorp/consul-dataplane:${ConsulDefaults.DATAPLANE_VERSION}"` });
      expect(err.expected).toMatch(/ConsulImageCache/);
      const f = fixture({ serverEgress: false });
      const repo = new ecr.Repository(f.stack, 'Mirror');
      const consulEcs = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: f.authMethod, dataplaneImage: ConsulImage.fromEcrRepository(repo, DIGEST) }));
      expect(consulEcs).toMatchObject({ field: 'consulEcsImage', given: `"public.ecr.aws/hashicorp/consul-ecs:${ConsulDefaults.CONSUL_ECS_VERSION}"` });
      const dockerHub = meshError(() => gatewayStack({ dataplaneImage: ConsulImage.fromDigest('hashicorp/consul-dataplane', DIGEST) }, { serverEgress: false }));
      expect(dockerHub.given).toBe(`"hashicorp/consul-dataplane@${DIGEST}"`);
    });

    test('fails when the datacenter is not a DNS label', () => {
      const f = fixture();
      const other = new FakeConsulCluster(f.stack, 'OtherConsul', f.network.vpc, 'DC_1');
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: other, network: f.network, authMethod: f.authMethod }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'cluster.datacenter', given: '"DC_1"' });
    });

    test('fails when the task memory is below 512 MiB', () => {
      expect(meshError(() => gatewayStack({ memoryLimitMiB: 256 })).field).toBe('memoryLimitMiB');
    });

    test('fails when the auth method is imported: it cannot register the gateway\'s ECS cluster', () => {
      const f = fixture();
      const imported = ConsulIamAuthMethod.fromAuthMethodAttributes(f.stack, 'ImportedAuthMethod', { mesh: f.mesh, authMethodName: 'lambda-mesh-ml-aws-iam', rolePath: '/lambda-mesh/ml/' });
      const err = meshError(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, authMethod: imported }));
      expect(err).toMatchObject({ location: 'Mesh/ImportedAuthMethod', field: 'addEcsCluster' });
    });

    test('fails when the service subnets have no known CIDR blocks', () => {
      const app = newTestApp();
      const stack = new Stack(app, 'Mesh');
      const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
        vpcId: 'vpc-1',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        privateSubnetIds: ['subnet-s1', 'subnet-s2'],
      });
      const network: IMeshNetwork = MeshNetwork.fromMeshNetworkAttributes(stack, 'Network', {
        vpc,
        functionSubnets: { subnets: [ec2.Subnet.fromSubnetId(stack, 'F1', 'subnet-f1')] },
        serviceSubnets: { subnets: [ec2.Subnet.fromSubnetId(stack, 'S1', 'subnet-s1')] },
        serverSubnets: { subnets: [ec2.Subnet.fromSubnetAttributes(stack, 'V1', { subnetId: 'subnet-v1', availabilityZone: 'eu-west-1a' })] },
        functionSecurityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'FnSg', 'sg-fn'),
        endpointSecurityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'EpSg', 'sg-ep'),
        serverEgress: true,
      });
      const mesh = new Mesh(stack, 'Model', { meshName: 'ml' });
      const cluster = new FakeConsulCluster(stack, 'Consul', vpc);
      const authMethod = ConsulIamAuthMethod.fromAuthMethodAttributes(stack, 'AuthMethod', { mesh, authMethodName: 'lambda-mesh-ml-aws-iam', rolePath: '/lambda-mesh/ml/' });
      const err = meshError(() => new MeshGateway(stack, 'Gateway', { cluster, network, authMethod }));
      expect(err).toMatchObject({ field: 'network.serviceSubnets', given: '["subnet-s1"]' });
    });
  });
});
