import { Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ConsulImage } from '../../../constructs/consul';
import { ServicePlacement } from '../../../constructs/mesh';
import { MeshEcsService } from '../../../constructs/services';
import { consulEcsConfigsOf, formatFindings, validateCloudFormation } from '../../harness';
import { meshError } from '../../util';
import { appContainer, appImage, DIGEST, ecsService, ecsServiceProps, servicesFixture, type ServicesFixture } from './fixtures';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
type Container = {
  Name: string;
  User?: string;
  Essential?: boolean;
  DependsOn?: Array<{ ContainerName: string; Condition: string }>;
  Environment?: Array<{ Name: string; Value: unknown }>;
  Secrets?: Array<{ Name: string; ValueFrom: unknown }>;
  HealthCheck?: unknown;
};

/** The container definitions of the task definition whose logical id starts with `prefix`. */
function containersOf(t: Template, prefix: string): Container[] {
  const [, td] = Object.entries(t.findResources('AWS::ECS::TaskDefinition')).find(([id]) => id.startsWith(prefix))!;
  return (td as Resource).Properties.ContainerDefinitions as Container[];
}

function container(t: Template, prefix: string, name: string): Container {
  return containersOf(t, prefix).find((c) => c.Name === name)!;
}

function env(c: Container): Record<string, unknown> {
  return Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));
}

/** The logical id of the security group whose id starts with `prefix`. */
function securityGroupId(t: Template, prefix: string): string {
  return Object.keys(t.findResources('AWS::EC2::SecurityGroup')).find((id) => id.startsWith(prefix))!;
}

/** Every ingress rule on the port of a security group of `t`, as `<port>:<source>`, inline and standalone. */
function ingressTo(t: Template, groupLogicalId: string): string[] {
  const own = JSON.stringify({ 'Fn::GetAtt': [groupLogicalId, 'GroupId'] });
  const standalone = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress'))
    .map((r) => (r as Resource).Properties)
    .filter((p) => JSON.stringify(p.GroupId) === own)
    .map((p) => `${String(p.FromPort)}-${String(p.ToPort)}:${sourceName(p.SourceSecurityGroupId ?? p.CidrIp)}`);
  const inline = (((t.findResources('AWS::EC2::SecurityGroup')[groupLogicalId] as Resource).Properties.SecurityGroupIngress ?? []) as Array<Record<string, unknown>>)
    .map((p) => `${String(p.FromPort)}-${String(p.ToPort)}:${sourceName(p.SourceSecurityGroupId ?? p.CidrIp)}`);
  return [...standalone, ...inline].sort();
}

/** Every egress rule of a security group, as `<ports>:<destination>`. */
function egressFrom(t: Template, groupLogicalId: string): string[] {
  const own = JSON.stringify({ 'Fn::GetAtt': [groupLogicalId, 'GroupId'] });
  const standalone = Object.values(t.findResources('AWS::EC2::SecurityGroupEgress'))
    .map((r) => (r as Resource).Properties)
    .filter((p) => JSON.stringify(p.GroupId) === own)
    .map((p) => `${String(p.FromPort)}-${String(p.ToPort)}:${sourceName(p.DestinationSecurityGroupId ?? p.CidrIp)}`);
  const inline = (((t.findResources('AWS::EC2::SecurityGroup')[groupLogicalId] as Resource).Properties.SecurityGroupEgress ?? []) as Array<Record<string, unknown>>)
    .map((p) => `${String(p.FromPort)}-${String(p.ToPort)}:${sourceName(p.DestinationSecurityGroupId ?? p.CidrIp)}`);
  return [...standalone, ...inline].sort();
}

/** A peer for people: the logical id in this stack, the output name of another stack's group, or the CIDR. */
function sourceName(peer: unknown): string {
  if (typeof peer === 'string') {
    return peer;
  }
  const p = peer as { 'Fn::GetAtt'?: [string, string]; 'Fn::GetStackOutput'?: { StackName: string; OutputName: string } };
  if (p['Fn::GetAtt']) {
    return p['Fn::GetAtt'][0];
  }
  if (p['Fn::GetStackOutput']) {
    return `${p['Fn::GetStackOutput'].StackName}/${p['Fn::GetStackOutput'].OutputName}`;
  }
  return JSON.stringify(peer);
}

const HEALTH_CHECK: ecs.HealthCheck = { command: ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8080/healthz'], interval: Duration.seconds(10) };

describe('MeshEcsService', () => {
  describe('with container (the construct makes the task)', () => {
    const f = servicesFixture();
    const featureStore = ecsService(f, 'FeatureStore', f.featureStore, { container: appContainer(f, 'feature-store', { healthCheck: HEALTH_CHECK }) });
    const logService = ecsService(f, 'LogService', f.logService);
    const t = Template.fromStack(f.servicesStack);

    test('the task runs the app and consul-ecs\'s three containers with their users, essential flags and start order', () => {
      const byName = Object.fromEntries(containersOf(t, 'FeatureStoreTaskDefinition').map((c) => [c.Name, c]));
      expect(Object.keys(byName).sort()).toEqual(['app', 'consul-dataplane', 'consul-ecs-health-sync', 'consul-ecs-mesh-init']);
      expect(byName.app).toMatchObject({ Essential: true, DependsOn: [{ ContainerName: 'consul-dataplane', Condition: 'HEALTHY' }] });
      expect(byName['consul-ecs-mesh-init']).toMatchObject({ User: 'consul-ecs', Essential: false });
      expect(byName['consul-ecs-mesh-init'].DependsOn).toBeUndefined();
      expect(byName['consul-dataplane']).toMatchObject({ User: '5995', Essential: false, DependsOn: [{ ContainerName: 'consul-ecs-mesh-init', Condition: 'SUCCESS' }] });
      expect(byName['consul-ecs-health-sync']).toMatchObject({ User: '5996', Essential: false, DependsOn: [{ ContainerName: 'consul-ecs-mesh-init', Condition: 'SUCCESS' }] });
      t.hasResourceProperties('AWS::ECS::TaskDefinition', {
        RequiresCompatibilities: ['FARGATE'],
        NetworkMode: 'awsvpc',
        Cpu: '512',
        Memory: '1024',
        RuntimePlatform: { CpuArchitecture: 'X86_64', OperatingSystemFamily: 'LINUX' },
        Volumes: [{ Name: 'consul_data' }],
      });
      expect(featureStore.appContainer.containerName).toBe('app');
      expect(featureStore.sidecarPort).toBe(20000);
    });

    test('the app reads its upstreams\' local addresses, and only those the model allows', () => {
      expect(env(container(t, 'FeatureStoreTaskDefinition', 'app'))).toEqual({ MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' });
      expect(featureStore.upstreams.map((u) => [u.name, u.localPort, u.url])).toEqual([['log-service', 24224, 'tcp://127.0.0.1:24224']]);
      // Nothing lets log-service call anyone.
      expect(env(container(t, 'LogServiceTaskDefinition', 'app'))).toEqual({});
      expect(logService.upstreams).toEqual([]);
    });

    test('CONSUL_ECS_CONFIG_JSON validates against the official consul-ecs schema, with the service, its upstreams, the health-synced app and the login', () => {
      const configs = consulEcsConfigsOf(t.toJSON());
      // mesh-init and health-sync of each of the two tasks.
      expect(configs.map((c) => c.where.replace(/TaskDefinition[0-9A-F]{8}/, ''))).toEqual([
        'FeatureStore/consul-ecs-mesh-init', 'FeatureStore/consul-ecs-health-sync',
        'LogService/consul-ecs-mesh-init', 'LogService/consul-ecs-health-sync',
      ]);
      for (const c of configs) {
        expect({ where: c.where, errors: c.errors }).toEqual({ where: c.where, errors: [] });
      }
      const fs = configs[0].config;
      expect(fs).toMatchObject({
        service: { name: 'feature-store', port: 8080 },
        proxy: { publicListenerPort: 20000, localServiceAddress: '127.0.0.1', upstreams: [{ destinationName: 'log-service', localBindPort: 24224 }] },
        healthSyncContainers: ['app'],
        consulLogin: { enabled: true, method: 'lambda-mesh-ml-aws-iam', includeEntity: true, datacenter: 'dc1', serverIdHeaderValue: 'server.dc1.consul' },
        consulServers: { http: { port: 8501, https: true }, grpc: { port: 8503 }, defaults: { tls: true, tlsServerName: 'server.dc1.consul' } },
      });
      // The same document reaches health-sync.
      expect(configs[1].config).toEqual(fs);
      // log-service's app has no health check: health-sync has nothing to report.
      expect(configs[2].config).toMatchObject({ service: { name: 'log-service', port: 24224 }, proxy: { upstreams: [] }, healthSyncContainers: [] });
    });

    test('the task role is a workload role: under the mesh\'s path, tagged with the service, allowed iam:GetRole on itself', () => {
      const [roleId, role] = Object.entries(t.findResources('AWS::IAM::Role')).find(([id]) => id.startsWith('FeatureStoreTaskRole'))!;
      expect((role as Resource).Properties).toMatchObject({
        Path: '/lambda-mesh/ml/',
        Tags: [{ Key: 'consul.hashicorp.com.service-name', Value: 'feature-store' }],
        AssumeRolePolicyDocument: { Statement: [{ Principal: { Service: 'ecs-tasks.amazonaws.com' } }] },
      });
      t.hasResourceProperties('AWS::IAM::Policy', {
        Roles: [{ Ref: roleId }],
        PolicyDocument: { Statement: [{ Action: 'iam:GetRole', Effect: 'Allow', Resource: { 'Fn::GetAtt': [roleId, 'Arn'] } }] },
      });
      t.hasResourceProperties('AWS::ECS::TaskDefinition', { TaskRoleArn: { 'Fn::GetAtt': [roleId, 'Arn'] } });
      expect(featureStore.taskRole.node.path).toBe('services/FeatureStore/TaskRole');
    });

    test('no Consul token reaches the task: its only secrets are the servers\' CA, from Secrets Manager', () => {
      for (const c of containersOf(t, 'FeatureStoreTaskDefinition')) {
        expect((c.Environment ?? []).map((e) => e.Name).filter((n) => /TOKEN/i.test(n))).toEqual([]);
        for (const s of c.Secrets ?? []) {
          expect(s.Name).toMatch(/^CONSUL_(HTTPS|GRPC)_CACERT_PEM$/);
          expect(JSON.stringify(s.ValueFrom)).toMatch(/ConsulCaCertificate.*:CertificatePem::/);
        }
      }
      expect(container(t, 'FeatureStoreTaskDefinition', 'consul-ecs-mesh-init').Secrets).toHaveLength(2);
      // Not one of the cluster's token secrets is referenced anywhere in the stack.
      expect(JSON.stringify(t.toJSON())).not.toMatch(/Consul[A-Za-z]*Token/);
    });

    test('the sidecar port admits only the mesh gateway\'s tasks and the workloads the model lets call it', () => {
      const gatewayTasks = 'control-plane/PublishOutputFnGetAttMeshGatewayTaskSecurityGroup700D6463GroupId071FA3DE';
      const fsGroup = securityGroupId(t, 'FeatureStoreSecurityGroup');
      const logGroup = securityGroupId(t, 'LogServiceSecurityGroup');
      // model-a calls feature-store through the gateway: no other source.
      expect(ingressTo(t, fsGroup)).toEqual([`20000-20000:${gatewayTasks}`]);
      expect(ingressTo(t, logGroup)).toEqual([`20000-20000:${fsGroup}`, `20000-20000:${gatewayTasks}`].sort());
      expect(featureStore.connections.defaultPort?.toString()).toBe('20000');
    });

    test('the tasks reach the Consul load balancer on 8501 and 8503, the VPC endpoints, the sidecars they call and S3 for image layers', () => {
      const consulLb = 'control-plane/PublishOutputFnGetAttConsulLoadBalancerSecurityGroupCDD93333GroupId099D53C0';
      const endpoints = 'network/PublishOutputFnGetAttNetworkEndpointSecurityGroup6DEF6240GroupIdB3623E81';
      const logGroup = securityGroupId(t, 'LogServiceSecurityGroup');
      expect(egressFrom(t, securityGroupId(t, 'FeatureStoreSecurityGroup'))).toEqual([
        '443-443:0.0.0.0/0',
        `443-443:${endpoints}`,
        `8501-8501:${consulLb}`,
        `8503-8503:${consulLb}`,
        `20000-20000:${logGroup}`,
      ].sort());
      // And the Consul load balancer admits them, from this stack (the control plane never refers to it).
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        FromPort: 8503,
        GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'control-plane', OutputName: Match.stringLikeRegexp('ConsulLoadBalancerSecurityGroup') }) },
        SourceSecurityGroupId: { 'Fn::GetAtt': [securityGroupId(t, 'FeatureStoreSecurityGroup'), 'GroupId'] },
      });
    });

    test('the Fargate service runs in the service subnets, without a public IP, with the circuit breaker, after the servers and the auth method', () => {
      t.resourceCountIs('AWS::ECS::Service', 2);
      const [, svc] = Object.entries(t.findResources('AWS::ECS::Service')).find(([id]) => id.startsWith('FeatureStoreService'))!;
      expect((svc as Resource).Properties).toMatchObject({
        LaunchType: 'FARGATE',
        DesiredCount: 2,
        DeploymentConfiguration: { DeploymentCircuitBreaker: { Enable: true, Rollback: true }, MinimumHealthyPercent: 100 },
        EnableExecuteCommand: false,
        NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
      });
      const subnets = JSON.stringify(((svc as Resource).Properties.NetworkConfiguration as { AwsvpcConfiguration: { Subnets: unknown[] } }).AwsvpcConfiguration.Subnets);
      expect(subnets.match(/ServicesSubnet\dSubnet/g)).toHaveLength(3);
      expect(subnets).not.toMatch(/FunctionsSubnet|ServersSubnet/);
      expect(JSON.stringify((svc as Resource).Properties.Cluster)).toMatch(/"StackName":"control-plane".*EcsCluster/);
      expect(featureStore.service.node.dependencies).toEqual(expect.arrayContaining([f.cluster, f.authMethod]));
      expect(f.servicesStack.dependencies).toContain(f.controlPlane);
    });

    test('the logs go to a KMS-encrypted log group kept a year', () => {
      t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365, KmsKeyId: Match.objectLike({ 'Fn::GetAtt': [Match.stringLikeRegexp('^FeatureStoreLogKey'), 'Arn'] }) });
    });

    test('the auth method registers the ECS cluster\'s synthetic node, named after its ARN', () => {
      const objects = JSON.stringify(Template.fromStack(f.controlPlane).findResources('Custom::ConsulAuthMethod'));
      expect(objects).toMatch(/\\"nodes\\":\[\{\\"Node\\":\\"","?\{"Fn::GetAtt":\["EcsCluster[0-9A-F]{8}","Arn"\]\}/);
    });
  });

  describe('with a taskDefinition of your own', () => {
    function ownTask(f: ServicesFixture, serviceName: string, role?: iam.IRole): ecs.FargateTaskDefinition {
      const taskRole = role ?? f.authMethod.createWorkloadRole(f.servicesStack, 'WriterRole', { serviceName, assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      const td = new ecs.FargateTaskDefinition(f.servicesStack, 'WriterTask', { cpu: 512, memoryLimitMiB: 1024, taskRole });
      td.addContainer('writer', {
        containerName: 'writer',
        image: appImage(f.servicesStack, 'result-writer'),
        user: '1000',
        essential: true,
        memoryLimitMiB: 512,
        readonlyRootFilesystem: true,
        logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'writer', logGroup: new logs.LogGroup(f.servicesStack, 'WriterLogs', { retention: logs.RetentionDays.ONE_YEAR }) }),
      });
      return td;
    }

    const f = servicesFixture();
    const taskDefinition = ownTask(f, 'result-writer');
    const writer = ecsService(f, 'ResultWriter', f.resultWriter, { taskDefinition });
    const t = Template.fromStack(f.servicesStack);

    test('adds consul-ecs\'s containers to it, and the upstream variables and start order to its app', () => {
      expect(writer.taskDefinition).toBe(taskDefinition);
      expect(writer.appContainer.containerName).toBe('writer');
      expect(writer.taskRole).toBe(taskDefinition.taskRole);
      const byName = Object.fromEntries(containersOf(t, 'WriterTask').map((c) => [c.Name, c]));
      expect(Object.keys(byName).sort()).toEqual(['consul-dataplane', 'consul-ecs-health-sync', 'consul-ecs-mesh-init', 'writer']);
      expect(byName.writer).toMatchObject({ Essential: true, DependsOn: [{ ContainerName: 'consul-dataplane', Condition: 'HEALTHY' }] });
      expect(env(byName.writer)).toEqual({ MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' });
      expect(byName['consul-dataplane']).toMatchObject({ User: '5995', Essential: false, DependsOn: [{ ContainerName: 'consul-ecs-mesh-init', Condition: 'SUCCESS' }] });
      const configs = consulEcsConfigsOf(t.toJSON());
      expect(configs).toHaveLength(2);
      expect(configs.flatMap((c) => c.errors)).toEqual([]);
      // The app has no health check: nothing for health-sync to report.
      expect(configs[0].config).toMatchObject({ service: { name: 'result-writer', port: 8081 }, proxy: { upstreams: [{ destinationName: 'log-service', localBindPort: 24224 }] }, healthSyncContainers: [] });
    });

    test('its role is the workload role it was made as', () => {
      t.hasResourceProperties('AWS::IAM::Role', { Path: '/lambda-mesh/ml/', Tags: [{ Key: 'consul.hashicorp.com.service-name', Value: 'result-writer' }] });
      t.resourceCountIs('AWS::ECS::Service', 1);
    });

    test('fails when the task role is a workload role of another service (at synth)', () => {
      const g = servicesFixture();
      ecsService(g, 'ResultWriter', g.resultWriter, { taskDefinition: ownTask(g, 'feature-store') });
      expect(() => g.app.synth()).toThrow(/services\/ResultWriter: taskDefinition.taskRole: given services\/WriterRole \(path "\/lambda-mesh\/ml\/", consul.hashicorp.com.service-name="feature-store"\), expected a role made with authMethod.createWorkloadRole/);
    });

    test('fails when the task role is a role under another path (at synth)', () => {
      const g = servicesFixture();
      const role = new iam.Role(g.servicesStack, 'PlainRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
      ecsService(g, 'ResultWriter', g.resultWriter, { taskDefinition: ownTask(g, 'result-writer', role) });
      expect(() => g.app.synth()).toThrow(/taskDefinition.taskRole: given services\/PlainRole \(path undefined/);
    });

    test('fails when the task role is imported (it cannot be checked)', () => {
      const g = servicesFixture();
      const role = iam.Role.fromRoleArn(g.servicesStack, 'Imported', 'arn:aws:iam::123456789012:role/lambda-mesh/ml/writer');
      const err = meshError(() => ecsService(g, 'ResultWriter', g.resultWriter, { taskDefinition: ownTask(g, 'result-writer', role) }));
      expect(err.field).toBe('taskDefinition.taskRole');
      expect(err.expected).toMatch(/createWorkloadRole\(scope, id, \{ serviceName: 'result-writer'/);
    });

    test('fails when appContainerName names no container of the task', () => {
      const g = servicesFixture();
      const err = meshError(() => ecsService(g, 'ResultWriter', g.resultWriter, { taskDefinition: ownTask(g, 'result-writer'), appContainerName: 'nope' }));
      expect(err.field).toBe('appContainerName');
      expect(err.given).toBe('"nope"');
    });
  });

  describe('security groups between workloads', () => {
    test.each([
      ['log-service first', ['log', 'fs', 'rw']],
      ['its callers first', ['fs', 'rw', 'log']],
    ])('feature-store\'s and result-writer\'s groups are sources on log-service\'s, %s', (_order, order) => {
      const f = servicesFixture();
      const make = { log: () => ecsService(f, 'LogService', f.logService), fs: () => ecsService(f, 'FeatureStore', f.featureStore), rw: () => ecsService(f, 'ResultWriter', f.resultWriter) };
      order.forEach((k) => make[k as keyof typeof make]());
      const t = Template.fromStack(f.servicesStack);
      const log = securityGroupId(t, 'LogServiceSecurityGroup');
      const fsGroup = securityGroupId(t, 'FeatureStoreSecurityGroup');
      const rwGroup = securityGroupId(t, 'ResultWriterSecurityGroup');
      const sources = ingressTo(t, log).map((r) => r.split(':')[1]);
      expect(sources).toEqual(expect.arrayContaining([fsGroup, rwGroup]));
      expect(sources).toHaveLength(3);
      expect(ingressTo(t, log).every((r) => r.startsWith('20000-20000:'))).toBe(true);
      // Each rule once, whoever came first.
      expect(new Set(sources).size).toBe(3);
      expect(egressFrom(t, fsGroup)).toContain(`20000-20000:${log}`);
      expect(egressFrom(t, rwGroup)).toContain(`20000-20000:${log}`);
      // Neither caller admits the other, nor log-service.
      expect(ingressTo(t, fsGroup).map((r) => r.split(':')[1])).toEqual([expect.stringMatching(/MeshGatewayTaskSecurityGroup/)]);
      expect(ingressTo(t, rwGroup).map((r) => r.split(':')[1])).toEqual([expect.stringMatching(/MeshGatewayTaskSecurityGroup/)]);
    });
  });

  test('a service in another ECS cluster registers that cluster\'s node with the auth method', () => {
    const f = servicesFixture();
    const other = new ecs.Cluster(f.controlPlane, 'OtherCluster', { vpc: f.network.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
    ecsService(f, 'LogService', f.logService, { ecsCluster: other });
    const objects = JSON.stringify(Template.fromStack(f.controlPlane).findResources('Custom::ConsulAuthMethod'));
    expect(objects).toMatch(/\{"Fn::GetAtt":\["OtherCluster[0-9A-F]{8}","Arn"\]\}/);
    expect(objects).toMatch(/\{"Fn::GetAtt":\["EcsCluster[0-9A-F]{8}","Arn"\]\}/);
  });

  test('the fixture\'s stacks have no unacknowledged cdk-nag, cfn-guard or construct finding', () => {
    const f = servicesFixture();
    ecsService(f, 'FeatureStore', f.featureStore, { container: appContainer(f, 'feature-store', { healthCheck: HEALTH_CHECK }) });
    ecsService(f, 'LogService', f.logService);
    ecsService(f, 'ResultWriter', f.resultWriter);
    const result = validateCloudFormation(f.app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });

  describe('bad input', () => {
    test('fails when the service\'s placement is not ECS', () => {
      const f = servicesFixture();
      const external = f.mesh.addService('billing', { port: 9000 });
      const err = meshError(() => ecsService(f, 'Billing', external));
      expect(err.location).toBe('Mesh');
      expect(err.field).toBe('service(billing).claimWorkload.placement');
      expect(err.given).toBe('"ecs"');
      expect(err.expected).toMatch(/the service's placement, 'external'.*ServicePlacement.ECS.*services\/Billing/);
    });

    test('fails when the same service is claimed twice', () => {
      const f = servicesFixture();
      ecsService(f, 'FeatureStore', f.featureStore);
      const err = meshError(() => ecsService(f, 'FeatureStoreAgain', f.featureStore));
      expect(err.field).toBe('service(feature-store).claimWorkload');
      expect(err.given).toBe('"services/FeatureStoreAgain"');
      expect(err.expected).toMatch(/the construct at services\/FeatureStore already runs 'feature-store'/);
    });

    test.each([
      ['both container and taskDefinition are given', true, 'taskDefinition'],
      ['neither container nor taskDefinition is given', false, 'container'],
    ])('fails when %s', (_why, both, field) => {
      const f = servicesFixture();
      const td = new ecs.FargateTaskDefinition(f.servicesStack, 'Task');
      const props = { ...ecsServiceProps(f, f.featureStore), ...(both ? { container: { image: appImage(f.servicesStack, 'x') }, taskDefinition: td } : {}) };
      const err = meshError(() => new MeshEcsService(f.servicesStack, 'FeatureStore', props));
      expect(err.location).toBe('services/FeatureStore');
      expect(err.field).toBe(field);
      expect(err.given).toBe('"both or neither"');
      expect(err.expected).toMatch(/exactly one of container .* and taskDefinition/);
    });

    test('fails when the service port is 20000, the sidecar\'s', () => {
      const f = servicesFixture();
      const clash = f.mesh.addService('clash', { port: 20000, placement: ServicePlacement.ECS });
      const err = meshError(() => ecsService(f, 'Clash', clash));
      expect(err.location).toBe('services/Clash');
      expect(err.field).toBe('service.port');
      expect(err.given).toBe('20000');
      expect(err.expected).toMatch(/sidecar's public listener/);
    });

    test('fails when an upstream is not allowed by the model', () => {
      const f = servicesFixture();
      const err = meshError(() => ecsService(f, 'FeatureStore', f.featureStore, { upstreams: ['result-writer'] }));
      expect(err.location).toBe('services/FeatureStore');
      expect(err.field).toBe('upstreams[0]');
      expect(err.given).toBe('"result-writer"');
      expect(err.expected).toMatch(/a service that feature-store may call \(log-service\).*mesh.service\('result-writer'\).allowFrom\(mesh.service\('feature-store'\)\)/);
    });

    test('fails when an upstream\'s local port is the service\'s own port (the sidecar binds it beside the app)', () => {
      const f = servicesFixture();
      const scorer = f.mesh.addService('scorer', { port: 9000, localPort: 19000, placement: ServicePlacement.ECS });
      const ranker = f.mesh.addService('ranker', { port: 19000, localPort: 29000, placement: ServicePlacement.ECS });
      scorer.allowFrom(ranker);
      const err = meshError(() => ecsService(f, 'Ranker', ranker));
      expect(err.field).toBe('upstreams(scorer).localPort');
      expect(err.given).toBe('19000');
      expect(err.expected).toMatch(/a local port other than ranker's own port/);
    });

    test('fails when the app image is an unpinned registry image, and warns with allowUnpinnedImage', () => {
      const f = servicesFixture();
      const image = ecs.ContainerImage.fromRegistry('nginx:1.27');
      const err = meshError(() => ecsService(f, 'FeatureStore', f.featureStore, { container: { image } }));
      expect(err.field).toBe('container.image');
      expect(err.given).toBe('"nginx:1.27"');
      expect(err.expected).toMatch(/pinned by digest.*allowUnpinnedImage/);

      const g = servicesFixture();
      ecsService(g, 'FeatureStore', g.featureStore, { container: { image }, allowUnpinnedImage: true });
      const warnings = Annotations.fromStack(g.servicesStack).findWarning('/services/FeatureStore', Match.stringLikeRegexp('nginx:1.27 is taken by tag'));
      expect(warnings).toHaveLength(1);
      expect(JSON.stringify(warnings[0].entry.data)).toContain('lambda-mesh:services:unpinnedImage');
    });

    test('accepts a registry image pinned by digest without a warning', () => {
      const f = servicesFixture();
      ecsService(f, 'FeatureStore', f.featureStore, { container: { image: ecs.ContainerImage.fromRegistry(`nginx@${DIGEST}`) } });
      expect(Annotations.fromStack(f.servicesStack).findWarning('*', Match.stringLikeRegexp('taken by tag'))).toEqual([]);
    });

    test.each([
      ['dataplaneImage', { dataplaneImage: ConsulImage.dataplane() }, /public.ecr.aws\/hashicorp\/consul-dataplane/],
      ['consulEcsImage', { consulEcsImage: ConsulImage.consulEcs() }, /public.ecr.aws\/hashicorp\/consul-ecs/],
    ])('fails when %s is a public HashiCorp image and the service subnets are isolated (no cache)', (field, images, given) => {
      const f = servicesFixture();
      const err = meshError(() => ecsService(f, 'FeatureStore', f.featureStore, images));
      expect(err.field).toBe(field);
      expect(err.given).toMatch(given);
      expect(err.expected).toMatch(/ConsulImageCache/);
    });

    test('fails when the defaults (public HashiCorp images) meet isolated service subnets', () => {
      const f = servicesFixture();
      const props = { ...ecsServiceProps(f, f.featureStore), dataplaneImage: undefined, consulEcsImage: undefined, container: { image: appImage(f.servicesStack, 'fs') } };
      expect(meshError(() => new MeshEcsService(f.servicesStack, 'FeatureStore', props)).field).toBe('dataplaneImage');
    });

    test('accepts public HashiCorp images when the service subnets have egress', () => {
      const f = servicesFixture({ network: { serviceEgress: true } });
      const svc = ecsService(f, 'FeatureStore', f.featureStore, { dataplaneImage: ConsulImage.dataplane(), consulEcsImage: ConsulImage.consulEcs() });
      expect(svc.taskDefinition.findContainer('consul-dataplane')!.imageName).toMatch(/^public.ecr.aws\/hashicorp\/consul-dataplane:/);
    });

    test('fails when the task memory leaves the app too little beside the sidecar and consul-ecs', () => {
      const f = servicesFixture();
      const err = meshError(() => ecsService(f, 'FeatureStore', f.featureStore, { memoryLimitMiB: 256 }));
      expect(err.field).toBe('memoryLimitMiB');
      expect(err.given).toBe('256');
      expect(err.expected).toMatch(/at least 512: the sidecar takes 256 and consul-ecs 128/);
    });

    test('fails when the app container maps the sidecar\'s port', () => {
      const f = servicesFixture();
      const err = meshError(() => ecsService(f, 'FeatureStore', f.featureStore, { container: { image: appImage(f.servicesStack, 'fs'), portMappings: [{ containerPort: 20000 }] } }));
      expect(err.field).toBe('container.portMappings');
    });

    test('fails when desiredCount is 0', () => {
      const f = servicesFixture();
      expect(meshError(() => ecsService(f, 'FeatureStore', f.featureStore, { desiredCount: 0 })).field).toBe('desiredCount');
    });

    test('fails when the auth method is of another mesh', () => {
      const f = servicesFixture();
      const g = servicesFixture();
      const err = meshError(() => new MeshEcsService(f.servicesStack, 'FeatureStore', { ...ecsServiceProps(f, f.featureStore), authMethod: g.authMethod, container: { image: appImage(f.servicesStack, 'fs') } }));
      expect(err.field).toBe('authMethod');
      expect(Stack.of(g.authMethod)).not.toBe(Stack.of(f.authMethod));
    });
  });
});
