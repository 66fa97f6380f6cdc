import { execFile, execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { type App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { MeshGateway, MeshGatewayImage, type MeshGatewayProps } from '../../../constructs/consul/mesh-gateway';
import { ConsulPorts, type ConsulTokenRole, type IConsulCluster } from '../../../constructs/consul/types';
import { LambdaMeshError } from '../../../constructs/core';
import { type IMeshNetwork, MeshNetwork, type MeshNetworkProps } from '../../../constructs/network';
import { formatFindings, newTestApp, validateCloudFormation } from '../../harness';
import { thrownBy } from '../../util';

const ACCOUNT = '111111111111';
const REGION = 'eu-west-1';
const SECRET_ARN = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-AbCdEf`;
const TOKEN_ARN = SECRET_ARN('consul-token-mesh-gateway');
const CA_ARN = SECRET_ARN('consul-ca');
const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`;
const DIGEST = `sha256:${'a'.repeat(64)}`;

/**
 * Test fixture: a stand-in for the Consul server cluster, with imported secrets and key and a security group
 * (default port 8501). Only what MeshGateway reads.
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
  cluster: FakeConsulCluster;
}

function fixture(networkProps: MeshNetworkProps = {}, datacenter?: string): Fixture {
  const app = newTestApp();
  const stack = new Stack(app, 'Mesh');
  const network = new MeshNetwork(stack, 'Network', networkProps);
  const cluster = new FakeConsulCluster(stack, 'Consul', network.vpc, datacenter);
  return { app, stack, network, cluster };
}

function gatewayStack(props: Partial<MeshGatewayProps> = {}, networkProps: MeshNetworkProps = {}): Fixture & { gateway: MeshGateway; template: Template } {
  const f = fixture(networkProps);
  const gateway = new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, deletionProtection: false, ...props });
  return { ...f, gateway, template: Template.fromStack(f.stack) };
}

function logicalId(stack: Stack, construct: IConstruct): string {
  return stack.getLogicalId(construct.node.defaultChild as ec2.CfnSecurityGroup);
}

type ContainerDefinition = Record<string, unknown> & { Name: string; Command?: unknown[]; EntryPoint?: string[] };

function containers(template: Template): Record<string, ContainerDefinition> {
  const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition'));
  expect(defs).toHaveLength(1);
  const list = defs[0].Properties.ContainerDefinitions as ContainerDefinition[];
  return Object.fromEntries(list.map((c) => [c.Name, c]));
}

/** The registration script exactly as it lands in the task definition. */
function registerScript(template: Template): string {
  const register = containers(template).register;
  expect(register.EntryPoint).toEqual(['/bin/sh', '-c']);
  const script = register.Command?.[0];
  expect(typeof script).toBe('string');
  return script as string;
}

function failure(fn: () => unknown): LambdaMeshError {
  return thrownBy(fn, (e): e is LambdaMeshError => LambdaMeshError.isLambdaMeshError(e));
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

describe('MeshGateway', () => {
  test('a Fargate service of 2 tasks in the server subnets, rolled back by the circuit breaker, never below 100%', () => {
    const { template, network, stack } = gatewayStack();
    template.resourceCountIs('AWS::ECS::Service', 1);
    const serverSubnetIds = subnetIds(stack, network, network.serverSubnets);
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
          SecurityGroups: Match.anyValue(),
          Subnets: serverSubnetIds,
        },
      },
      LoadBalancers: [Match.objectLike({ ContainerName: 'dataplane', ContainerPort: 8443 })],
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
    });
  });

  test('an internal NLB in the server subnets, cross-zone, with a TCP listener on 8443 to IP targets checked on Envoy /ready', () => {
    const { template, network, stack, gateway } = gatewayStack({ deletionProtection: true });
    const serverSubnetIds = subnetIds(stack, network, network.serverSubnets);
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Type: 'network',
      Scheme: 'internal',
      Subnets: serverSubnetIds,
      SecurityGroups: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayLoadBalancerSecurityGroup'), 'GroupId'] }],
      LoadBalancerAttributes: Match.arrayWith([
        { Key: 'deletion_protection.enabled', Value: 'true' },
        { Key: 'load_balancing.cross_zone.enabled', Value: 'true' },
      ]),
    });
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 8443, Protocol: 'TCP' });
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      Port: 8443,
      Protocol: 'TCP',
      TargetType: 'ip',
      HealthCheckProtocol: 'HTTP',
      HealthCheckPort: '21000',
      HealthCheckPath: '/ready',
      TargetGroupAttributes: Match.arrayWith([
        { Key: 'preserve_client_ip.enabled', Value: 'false' },
        { Key: 'deregistration_delay.connection_termination.enabled', Value: 'true' },
      ]),
    });
    expect(stack.resolve(gateway.endpoint)).toEqual({
      'Fn::Join': ['', [{ 'Fn::GetAtt': [expect.stringMatching(/^GatewayLoadBalancer/), 'DNSName'] }, ':8443']],
    });
    expect(gateway.endpointPort).toBe(8443);
  });

  test('security groups: only the function group reaches the NLB on 8443; only the NLB reaches the tasks; tasks reach Consul on 8501/8503', () => {
    const { template, stack, network, cluster, gateway } = gatewayStack();
    const fnSg = logicalId(stack, network.functionSecurityGroup);
    const lbSgId = getAttTarget(stack, gateway.connections.securityGroups[0].securityGroupId);
    const taskSgId = getAttTarget(stack, gateway.service.connections.securityGroups[0].securityGroupId);
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
    // The functions' egress to the gateway.
    expect(egress.filter((p) => to(fnSg)(p) && toGroup(lbSgId)(p)).map(ports)).toEqual(['tcp/8443-8443']);

    // The tasks admit only the load balancer: the listener and the readiness port.
    const taskIngress = ingress.filter(to(taskSgId));
    expect(taskIngress.every(from(lbSgId))).toBe(true);
    expect(taskIngress.map(ports).sort()).toEqual(['tcp/21000-21000', 'tcp/8443-8443']);

    // Tasks to Consul: HTTPS API and gRPC TLS, admitted on the cluster's side too.
    expect(egress.filter((p) => to(taskSgId)(p) && toGroup(clusterSgId)(p)).map(ports).sort()).toEqual(['tcp/8501-8501', 'tcp/8503-8503']);
    expect(ingress.filter((p) => to(clusterSgId)(p) && from(taskSgId)(p)).map(ports).sort()).toEqual(['tcp/8501-8501', 'tcp/8503-8503']);

    // Tasks to the VPC endpoints (secrets, ECR, logs): admitted by the endpoints' group on 443.
    const endpointSgId = logicalId(stack, network.connections.securityGroups[0]);
    expect(ingress.filter((p) => to(endpointSgId)(p) && from(taskSgId)(p)).map(ports)).toEqual(['tcp/443-443']);

    // The task group's inline egress: HTTPS for images and the service subnets' CIDRs (not the VPC's).
    const taskSg = propertiesOf(template, 'AWS::EC2::SecurityGroup').find((p) => String(p.GroupDescription).includes('mesh gateway tasks'))!;
    const taskEgress = taskSg.SecurityGroupEgress as Props[];
    const serviceCidrs = network.vpc.selectSubnets(network.serviceSubnets).subnets.map((sn) => sn.ipv4CidrBlock);
    expect(taskEgress).toEqual(expect.arrayContaining([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 443, ToPort: 443, IpProtocol: 'tcp' }),
      ...serviceCidrs.map((cidr) => expect.objectContaining({ CidrIp: cidr, FromPort: 0, ToPort: 65535, IpProtocol: 'tcp' }) as unknown),
    ]));
    expect(taskEgress.some((r) => r.CidrIp === '10.0.0.0/16')).toBe(false);
    expect(taskSg.SecurityGroupIngress).toBeUndefined();
  });

  test('connections let more callers in on 8443; allowServiceTraffic opens egress to services elsewhere', () => {
    const { stack, network, cluster } = fixture();
    const gateway = new MeshGateway(stack, 'Gateway', { cluster, network, serviceTrafficPorts: ec2.Port.tcp(20000) });
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

  test('the token and the CA come in as ECS secrets; no container has a plain environment', () => {
    const { template } = gatewayStack();
    const { register, dataplane } = containers(template);
    expect(register.Secrets).toEqual([
      { Name: 'CONSUL_HTTP_TOKEN', ValueFrom: `${TOKEN_ARN}:SecretID::` },
      { Name: 'CONSUL_CACERT_PEM', ValueFrom: `${CA_ARN}:CertificatePem::` },
    ]);
    expect(dataplane.Secrets).toEqual([{ Name: 'DP_CREDENTIAL_STATIC_TOKEN', ValueFrom: `${TOKEN_ARN}:SecretID::` }]);
    for (const c of [register, dataplane]) {
      expect(c.Environment).toBeUndefined();
      expect(c.ReadonlyRootFilesystem).toBe(true);
      expect(JSON.stringify(c.Command)).not.toMatch(/static-token|X-Consul-Token: [0-9a-f]/);
    }
    expect(register).toMatchObject({ Essential: false, User: '0', Memory: 64, StartTimeout: 120 });
    expect(dataplane).toMatchObject({
      Essential: true,
      User: '100',
      Memory: 960,
      DependsOn: [{ ContainerName: 'register', Condition: 'SUCCESS' }],
      PortMappings: [
        { ContainerPort: 8443, Protocol: 'tcp', Name: 'mesh' },
        { ContainerPort: 21000, Protocol: 'tcp', Name: 'ready' },
      ],
      MountPoints: [
        { SourceVolume: 'consul-ca', ContainerPath: '/consul/ca', ReadOnly: true },
        { SourceVolume: 'dataplane-tmp', ContainerPath: '/tmp', ReadOnly: false },
      ],
    });
    expect(register.Image).toBe(`public.ecr.aws/hashicorp/consul:${MeshGatewayImage.DEFAULT_CONSUL_VERSION}`);
    expect(dataplane.Image).toBe(`public.ecr.aws/hashicorp/consul-dataplane:${MeshGatewayImage.DEFAULT_DATAPLANE_VERSION}`);
  });

  test('the execution role reads exactly the two secrets and decrypts them through Secrets Manager; the task role has no permissions', () => {
    const { template, stack } = gatewayStack();
    const policies = Object.values(template.findResources('AWS::IAM::Policy'));
    const execution = policies.filter((p) => JSON.stringify(p.Properties.Roles).includes('ExecutionRole'));
    expect(execution).toHaveLength(1);
    const statements = stack.resolve(execution[0].Properties.PolicyDocument.Statement) as Array<Record<string, unknown>>;
    const secretReads = statements.filter((s) => JSON.stringify(s.Action).includes('secretsmanager:'));
    expect(secretReads.flatMap((s) => [s.Resource].flat()).sort()).toEqual([CA_ARN, TOKEN_ARN].sort());
    expect(statements).toContainEqual({
      Action: 'kms:Decrypt',
      Effect: 'Allow',
      Resource: KEY_ARN,
      Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
    });
    // Public images: no ECR permissions at all.
    expect(JSON.stringify(statements)).not.toContain('ecr:');
    expect(policies.filter((p) => JSON.stringify(p.Properties.Roles).includes('TaskDefinitionTaskRole'))).toHaveLength(0);
  });

  test('logs go to a KMS-encrypted log group kept a year, one stream prefix per container', () => {
    const { template } = gatewayStack();
    template.hasResourceProperties('AWS::Logs::LogGroup', {
      RetentionInDays: 365,
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^GatewayLogKey'), 'Arn'] },
    });
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
    const { register, dataplane } = containers(template);
    expect(register.LogConfiguration).toMatchObject({ LogDriver: 'awslogs', Options: { 'awslogs-stream-prefix': 'register' } });
    expect(dataplane.LogConfiguration).toMatchObject({ LogDriver: 'awslogs', Options: { 'awslogs-stream-prefix': 'dataplane' } });
  });

  test('the dataplane flags: servers by DNS over gRPC TLS, CA file, server TLS name, static token, the shared proxy ID and node, readiness port, JSON logs', () => {
    const { template, stack, cluster } = gatewayStack();
    const { dataplane } = containers(template);
    expect(dataplane.EntryPoint).toBeUndefined();
    expect(stack.resolve(dataplane.Command)).toEqual([
      '-addresses', cluster.endpointAddress,
      '-grpc-port', '8503',
      '-server-watch-disabled',
      '-ca-certs', '/consul/ca/ca.pem',
      '-tls-server-name', 'server.dc1.consul',
      '-credential-type', 'static',
      '-proxy-id', 'mesh-gateway',
      '-proxy-node-name', 'mesh-gateway-dc1',
      '-envoy-ready-bind-address', '0.0.0.0',
      '-envoy-ready-bind-port', '21000',
      '-log-json',
    ]);
  });

  test('the registration: positional parameters only, and the catalog entry with Kind, ID, Service, Port, TaggedAddresses', () => {
    const { template, cluster } = gatewayStack();
    const { register } = containers(template);
    const args = register.Command!.slice(1);
    expect(args).toEqual([
      'mesh-gateway-register',
      'dc1',
      cluster.endpointAddress,
      '8501',
      { 'Fn::GetAtt': [expect.stringMatching(/^GatewayLoadBalancer/), 'DNSName'] },
      '8443',
      '/consul/ca/ca.pem',
      '/dataplane-tmp',
      '100',
    ]);
    const script = registerScript(template);
    for (const key of ['Kind: "mesh-gateway"', 'ID: "mesh-gateway"', 'Service: "mesh-gateway"', 'Port: $port', 'TaggedAddresses: {', 'lan: {address: $address, port: $port}', 'wan: {address: $address, port: $port}', '"external-node": "true"', '"external-probe": "false"', 'envoy_gateway_no_default_bind: true']) {
      expect(script).toContain(key);
    }
    expect(script).toContain('/v1/catalog/register');
    expect(script).toContain('curl --config -');
  });

  test('the registration script passes shellcheck -s sh', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-gateway-sh-'));
    const file = path.join(dir, 'register.sh');
    fs.writeFileSync(file, registerScript(gatewayStack().template));
    // Throws with shellcheck's findings on any warning.
    execFileSync('shellcheck', ['-s', 'sh', '-S', 'style', file], { encoding: 'utf8' });
  });

  describe('with a stand-in Consul HTTP API (plain HTTP on 127.0.0.1 via CONSUL_HTTP_SCHEME=http)', () => {
    const TOKEN = '6f1e4c2a-1b2c-4d3e-8f90-a1b2c3d4e5f6';
    const PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----';

    interface Captured { method?: string; url?: string; headers?: http.IncomingHttpHeaders; body?: string }

    async function runRegister(answer: { status: number; body: string }, env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; captured: Captured; dir: string }> {
      const script = registerScript(gatewayStack().template);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-gateway-register-'));
      const tmpDir = path.join(dir, 'dataplane-tmp');
      fs.mkdirSync(tmpDir, { mode: 0o755 });
      const captured: Captured = {};
      const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
        req.on('end', () => {
          Object.assign(captured, { method: req.method, url: req.url, headers: req.headers, body });
          res.writeHead(answer.status, { 'Content-Type': 'application/json' });
          res.end(answer.body);
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as { port: number }).port;
      const binDir = path.join(dir, 'bin');
      fs.mkdirSync(binDir);
      const PATH = `${jqAvailable() ? '' : `${installStubJq(binDir)}:`}${process.env.PATH}`;
      try {
        const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
          execFile('sh', ['-c', script, 'mesh-gateway-register', 'dc1', '127.0.0.1', String(port), 'gw.internal.example', '8443', path.join(dir, 'ca.pem'), tmpDir, String(os.userInfo().uid)], {
            env: { PATH, CONSUL_HTTP_SCHEME: 'http', CONSUL_HTTP_TOKEN: TOKEN, CONSUL_CACERT_PEM: PEM, ...env },
            timeout: 60_000,
          }, (error, stdout, stderr) => {
            resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
          });
        });
        return { ...result, captured, dir };
      } finally {
        server.close();
      }
    }

    test('PUTs one catalog entry for the gateway, with the token in a header, and prepares the volumes', async () => {
      const { code, stdout, stderr, captured, dir } = await runRegister({ status: 200, body: 'true' });
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      expect(stdout).toContain('register: mesh-gateway-dc1/mesh-gateway -> gw.internal.example:8443');
      expect(captured.method).toBe('PUT');
      expect(captured.url).toBe('/v1/catalog/register');
      // curl connected to the endpoint but addressed the servers' TLS name.
      expect(captured.headers?.host).toMatch(/^server\.dc1\.consul:\d+$/);
      expect(captured.headers?.['x-consul-token']).toBe(TOKEN);
      expect(JSON.parse(captured.body ?? '')).toEqual({
        Datacenter: 'dc1',
        Node: 'mesh-gateway-dc1',
        Address: 'gw.internal.example',
        NodeMeta: { 'external-node': 'true', 'external-probe': 'false' },
        Service: {
          Kind: 'mesh-gateway',
          ID: 'mesh-gateway',
          Service: 'mesh-gateway',
          Port: 8443,
          Address: 'gw.internal.example',
          TaggedAddresses: {
            lan: { address: 'gw.internal.example', port: 8443 },
            wan: { address: 'gw.internal.example', port: 8443 },
          },
          Proxy: {
            Config: {
              envoy_gateway_no_default_bind: true,
              envoy_gateway_bind_addresses: { 'all-interfaces': { address: '0.0.0.0', port: 8443 } },
            },
          },
        },
      });
      expect(fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8')).toBe(`${PEM}\n`);
      expect(fs.statSync(path.join(dir, 'ca.pem')).mode & 0o777).toBe(0o644);
      expect(fs.statSync(path.join(dir, 'dataplane-tmp')).mode & 0o777).toBe(0o700);
    });

    test('fails when the API refuses the token', async () => {
      const { code, stderr } = await runRegister({ status: 403, body: 'Permission denied' });
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/403/);
    });

    test('fails when the API answers something other than true', async () => {
      const { code, stderr } = await runRegister({ status: 200, body: 'false' });
      expect(code).not.toBe(0);
      expect(stderr).toContain('unexpected answer');
    });

    test('fails when the token is missing or not a token, before any request', async () => {
      const missing = await runRegister({ status: 200, body: 'true' }, { CONSUL_HTTP_TOKEN: '' });
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('CONSUL_HTTP_TOKEN');
      expect(missing.captured.method).toBeUndefined();
      const injected = await runRegister({ status: 200, body: 'true' }, { CONSUL_HTTP_TOKEN: 'x"\nurl = "http://evil' });
      expect(injected.code).not.toBe(0);
      expect(injected.stderr).toContain('not a Consul ACL token');
      expect(injected.captured.method).toBeUndefined();
    });
  });

  test('passes the compliance checks (cdk-nag AwsSolutions, cfn-guard Control Tower), each exception acknowledged with a reason', () => {
    const { app } = gatewayStack({ deletionProtection: true });
    const result = validateCloudFormation(app);
    expect(formatFindings(result.findings)).toBe('');
    const gatewayAcks = result.acknowledged.filter((f) => f.constructPath?.startsWith('Mesh/Gateway'));
    expect(gatewayAcks.map((f) => f.acknowledgementId).sort()).toEqual([
      'AwsSolutions::AwsSolutions-ELB2',
      'cdk-validator-cfnguard::ecs_task_definition_nonroot_user_check',
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
      dataplaneImage: MeshGatewayImage.fromEcrRepository(repo, DIGEST),
      consulImage: MeshGatewayImage.fromDigest(`${ACCOUNT}.dkr.ecr.${REGION}.amazonaws.com/mirror/consul`, DIGEST),
    });
    const t = Template.fromStack(f.stack);
    const { register, dataplane } = containers(t);
    expect(JSON.stringify(f.stack.resolve(register.Image))).toMatch(new RegExp(`"${ACCOUNT}\\.dkr\\.ecr\\.${REGION}\\."`));
    expect(JSON.stringify(f.stack.resolve(register.Image))).toContain(`/mirror/consul@${DIGEST}`);
    expect(JSON.stringify(f.stack.resolve(dataplane.Image))).toContain(`@${DIGEST}`);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({
          Action: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          Resource: [
            `arn:aws:ecr:${REGION}:${ACCOUNT}:repository/mirror/consul`,
            { 'Fn::GetAtt': [f.stack.getLogicalId(repo.node.defaultChild as ecr.CfnRepository), 'Arn'] },
          ],
        })]),
      },
    });
    const result = validateCloudFormation(f.app);
    expect(formatFindings(result.findings)).toBe('');
    expect(result.acknowledged.filter((x) => x.constructPath?.startsWith('Mesh/Gateway')).map((x) => x.acknowledgementId)).toContain('AwsSolutions::AwsSolutions-IAM5[Resource::*]');
  });

  test('devMode allows a single task and warns', () => {
    const { stack } = gatewayStack({ desiredCount: 1, devMode: true });
    Template.fromStack(stack).hasResourceProperties('AWS::ECS::Service', { DesiredCount: 1 });
    Annotations.fromStack(stack).hasWarning('/Mesh/Gateway', Match.stringLikeRegexp('devMode is on'));
  });

  test('a custom size and ARM64', () => {
    const { template } = gatewayStack({ cpu: 1024, memoryLimitMiB: 2048, architecture: ecs.CpuArchitecture.ARM64 });
    template.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '1024', Memory: '2048', RuntimePlatform: { CpuArchitecture: 'ARM64' } });
    expect(containers(template).dataplane.Memory).toBe(2048 - 64);
  });

  test('fromMeshGatewayAttributes references a gateway of another stack', () => {
    const { stack, network } = fixture();
    const sg = ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-12345678');
    const imported = MeshGateway.fromMeshGatewayAttributes(stack, 'Imported', { loadBalancerDnsName: 'gw-123.elb.eu-west-1.amazonaws.com', securityGroup: sg });
    expect(imported.endpoint).toBe('gw-123.elb.eu-west-1.amazonaws.com:8443');
    expect(imported.connections.defaultPort?.toString()).toBe('8443');
    imported.connections.allowDefaultPortFrom(network.functionSecurityGroup);
  });

  describe('bad input', () => {
    test('fails when the mesh gateway has no network', () => {
      const f = fixture();
      const err = failure(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: undefined as unknown as MeshNetwork }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'network', given: '(missing)' });
      expect(err.expected).toMatch(/the mesh network .*server subnets/);
    });

    test('fails when the mesh gateway has no cluster', () => {
      const f = fixture();
      const err = failure(() => new MeshGateway(f.stack, 'Gateway', { cluster: undefined as unknown as FakeConsulCluster, network: f.network }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'cluster', given: '(missing)' });
    });

    test.each([[1], [0], [2.5]])('fails when desiredCount is %s without devMode', (desiredCount) => {
      const err = failure(() => gatewayStack({ desiredCount }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'desiredCount', given: String(desiredCount) });
      expect(err.expected).toMatch(/at least 2/);
    });

    test('fails when desiredCount is 0 even in devMode', () => {
      expect(failure(() => gatewayStack({ desiredCount: 0, devMode: true })).field).toBe('desiredCount');
    });

    test.each([['latest'], ['v1.8.10'], ['1.8'], ['1.8.10-ent']])('fails when the dataplane version is %s', (version) => {
      const err = failure(() => gatewayStack({ dataplaneImage: MeshGatewayImage.dataplane(version) }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'dataplaneImage', given: JSON.stringify(version) });
      expect(err.expected).toMatch(/MAJOR\.MINOR\.PATCH/);
    });

    test('fails when the consul image version is not MAJOR.MINOR.PATCH', () => {
      expect(failure(() => gatewayStack({ consulImage: MeshGatewayImage.consul('1.21') })).field).toBe('consulImage');
    });

    test.each([['sha256:abc'], [`sha256:${'A'.repeat(64)}`], [`sha512:${'a'.repeat(64)}`], ['1.8.10']])('fails when the digest is %s', (digest) => {
      const err = failure(() => gatewayStack({ dataplaneImage: MeshGatewayImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane', digest) }));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: JSON.stringify(digest) });
      expect(err.expected).toMatch(/sha256/);
    });

    test('fails when the digest repository carries a tag', () => {
      const err = failure(() => gatewayStack({ dataplaneImage: MeshGatewayImage.fromDigest('public.ecr.aws/hashicorp/consul-dataplane:1.8.10', DIGEST) }));
      expect(err).toMatchObject({ field: 'dataplaneImage', given: '"public.ecr.aws/hashicorp/consul-dataplane:1.8.10"' });
    });

    test('fails when an ECR image tag is malformed', () => {
      const f = fixture();
      const repo = new ecr.Repository(f.stack, 'Mirror');
      expect(failure(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, dataplaneImage: MeshGatewayImage.fromEcrRepository(repo, 'bad tag') })).field).toBe('dataplaneImage');
    });

    test('fails when the network has no server egress and an image comes from a public registry', () => {
      const err = failure(() => gatewayStack({}, { serverEgress: false }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'dataplaneImage', given: `"public.ecr.aws/hashicorp/consul-dataplane:${MeshGatewayImage.DEFAULT_DATAPLANE_VERSION}"` });
      expect(err.expected).toMatch(/fromEcrRepository/);
      const f = fixture({ serverEgress: false });
      const repo = new ecr.Repository(f.stack, 'Mirror');
      const consul = failure(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network, dataplaneImage: MeshGatewayImage.fromEcrRepository(repo, DIGEST) }));
      expect(consul.field).toBe('consulImage');
      const dockerHub = failure(() => gatewayStack({ dataplaneImage: MeshGatewayImage.fromDigest('hashicorp/consul-dataplane', DIGEST) }, { serverEgress: false }));
      expect(dockerHub.given).toBe(`"hashicorp/consul-dataplane@${DIGEST}"`);
    });

    test('fails when the datacenter is not a DNS label', () => {
      const f = fixture({}, 'DC_1');
      const err = failure(() => new MeshGateway(f.stack, 'Gateway', { cluster: f.cluster, network: f.network }));
      expect(err).toMatchObject({ location: 'Mesh/Gateway', field: 'cluster.datacenter', given: '"DC_1"' });
    });

    test('fails when the task memory is below 512 MiB', () => {
      expect(failure(() => gatewayStack({ memoryLimitMiB: 256 })).field).toBe('memoryLimitMiB');
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
      const cluster = new FakeConsulCluster(stack, 'Consul', vpc);
      const err = failure(() => new MeshGateway(stack, 'Gateway', { cluster, network }));
      expect(err).toMatchObject({ field: 'network.serviceSubnets', given: '["subnet-s1"]' });
    });
  });
});

let jqFound: boolean | undefined;
function jqAvailable(): boolean {
  if (jqFound === undefined) {
    try {
      execFileSync('jq', ['--version'], { stdio: 'ignore' });
      jqFound = true;
    } catch {
      jqFound = false;
    }
  }
  return jqFound;
}

/**
 * A stand-in for jq when it is not installed: enough of `jq -n [-c] --arg k v --argjson k v FILTER` for an
 * object-construction filter like the registration's, by substituting the variables and reading the filter as
 * a JavaScript object literal. Returns the directory to put first on PATH.
 */
function installStubJq(binDir: string): string {
  const stub = path.join(binDir, 'jq');
  fs.writeFileSync(stub, `#!${process.execPath}
const args = process.argv.slice(2);
const vars = {};
let filter;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '-n' || a === '-c') continue;
  if (a === '--arg') { vars[args[i + 1]] = args[i + 2]; i += 2; continue; }
  if (a === '--argjson') { vars[args[i + 1]] = JSON.parse(args[i + 2]); i += 2; continue; }
  filter = a;
}
const js = filter.replace(/\\$([A-Za-z_][A-Za-z0-9_]*)/g, (_, name) => JSON.stringify(vars[name]));
process.stdout.write(JSON.stringify(new Function('return (' + js + ');')()) + '\\n');
`, { mode: 0o755 });
  return binDir;
}
