import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ConsulIamAuthMethod } from '../../../constructs/consul';
import { handler as authMethodHandler } from '../../../constructs/consul/private/auth-method-handler';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import { type MeshService, ServicePlacement } from '../../../constructs/mesh';
import { MeshExternalService, type MeshExternalServiceProps } from '../../../constructs/services';
import { ConsoleCapture } from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { meshError } from '../../util';
import {
  ACCOUNT, CONSUL_LB, ENDPOINTS, GATEWAY_TASKS, deployed, ec2Service, ecsService, resourceOf, rulesOf, securityGroupId, servicesFixture, type ServicesFixture,
} from './fixtures';

/** The owner's security group, by id: lambda-mesh never creates it. */
const OWNER_GROUP = 'sg-0a1b2c3d4e5f60718';

/** The props of an external service of `service` in the fixture's environment, with the owner's group by id. */
function externalProps(f: ServicesFixture, service: MeshService, group: ec2.SecurityGroupImportOptions = { allowAllOutbound: false }, groupId = 'OwnerGroup'): MeshExternalServiceProps {
  return {
    service,
    securityGroup: ec2.SecurityGroup.fromSecurityGroupId(f.servicesStack, groupId, OWNER_GROUP, group),
    cluster: f.cluster,
    gateway: f.gateway,
    network: f.network,
  };
}

function externalService(f: ServicesFixture, id: string, service: MeshService, props: Partial<MeshExternalServiceProps> = {}): MeshExternalService {
  return new MeshExternalService(f.servicesStack, id, { ...externalProps(f, service), ...props });
}

describe('MeshExternalService', () => {
  describe('a caller (result-writer, run by its owner) of an EC2 service (log-service)', () => {
    const f = servicesFixture({ placements: { 'result-writer': ServicePlacement.EXTERNAL, 'log-service': ServicePlacement.EC2 } });
    const writer = externalService(f, 'ResultWriter', f.resultWriter);
    ec2Service(f, 'LogService', f.logService);
    ecsService(f, 'FeatureStore', f.featureStore);
    // The owner's instance role, as the construct's documentation tells the owner to make it.
    f.authMethod.createWorkloadRole(f.servicesStack, 'OwnerRole', { serviceName: 'result-writer', assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
    const t = Template.fromStack(f.servicesStack);
    const controlPlane = Template.fromStack(f.controlPlane);

    test('wires the owner\'s group, given by id, and creates no group, role or instance of its own', () => {
      expect(writer.connections.securityGroups.map((g) => g.securityGroupId)).toEqual([OWNER_GROUP]);
      expect(writer.connections.defaultPort?.toString()).toBe('20000');
      expect(writer.sidecarPort).toBe(20000);
      expect(writer.meshService).toBe(f.resultWriter);
      // LogService's and FeatureStore's own groups only.
      t.resourceCountIs('AWS::EC2::SecurityGroup', 2);
      expect(Object.keys(t.findResources('AWS::IAM::Role')).filter((id) => !/^(LogService|FeatureStore|OwnerRole)/.test(id))).toEqual([]);
      t.resourceCountIs('AWS::AutoScaling::AutoScalingGroup', 1);
    });

    test('the owner\'s sidecar port admits the mesh gateway\'s tasks, and no one else (the model lets no workload call result-writer)', () => {
      expect(rulesOf(t, 'ingress', OWNER_GROUP)).toEqual([`20000-20000:${GATEWAY_TASKS}`]);
      // The gateway's half, in this stack too.
      t.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
        GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'control-plane', OutputName: Match.stringLikeRegexp('MeshGatewayTaskSecurityGroup') }) },
        DestinationSecurityGroupId: OWNER_GROUP,
        FromPort: 20000,
        ToPort: 20000,
      });
    });

    test('the owner\'s instances reach Consul on 8501 and 8503, the VPC endpoints, and the sidecars of the service it calls', () => {
      const log = securityGroupId(t, 'LogServiceSecurityGroup');
      expect(rulesOf(t, 'egress', OWNER_GROUP)).toEqual([`443-443:${ENDPOINTS}`, `8501-8501:${CONSUL_LB}`, `8503-8503:${CONSUL_LB}`, `20000-20000:${log}`].sort());
      for (const port of [8501, 8503]) {
        t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
          GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'control-plane', OutputName: Match.stringLikeRegexp('ConsulLoadBalancerSecurityGroup') }) },
          SourceSecurityGroupId: OWNER_GROUP,
          FromPort: port,
          ToPort: port,
        });
      }
      t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        GroupId: { 'Fn::GetStackOutput': Match.objectLike({ StackName: 'network', OutputName: Match.stringLikeRegexp('NetworkEndpointSecurityGroup') }) },
        SourceSecurityGroupId: OWNER_GROUP,
        FromPort: 443,
      });
    });

    test('log-service, which the model lets it call, admits the owner\'s group on its sidecar port, beside feature-store\'s and the gateway', () => {
      expect(rulesOf(t, 'ingress', securityGroupId(t, 'LogServiceSecurityGroup'))).toEqual([
        `20000-20000:${GATEWAY_TASKS}`,
        `20000-20000:${securityGroupId(t, 'FeatureStoreSecurityGroup')}`,
        `20000-20000:${OWNER_GROUP}`,
      ].sort());
      expect(writer.upstreams.map((u) => [u.name, u.localPort, u.environmentVariable, u.url])).toEqual([['log-service', 24224, 'MESH_UPSTREAM_LOG_SERVICE_URL', 'tcp://127.0.0.1:24224']]);
    });

    test('the auth method has a binding rule for it, and no synthetic node: the owner registers its own instances', () => {
      const [, method] = resourceOf(controlPlane, 'Custom::ConsulAuthMethod', 'AuthMethod');
      const objects = JSON.parse(deployed(method.Properties.Objects) as string) as { nodes: Array<{ Node: string }>; bindingRules: Array<Record<string, unknown>> };
      expect(objects.bindingRules).toContainEqual({
        Key: 'service:result-writer',
        Description: expect.stringMatching(/^lambda-mesh: IAM roles tagged consul.hashicorp.com.service-name=result-writer run service result-writer \(external\) \[lambda-mesh owner [0-9a-f]{12} rule service:result-writer\]$/),
        Selector: `entity_tags["${ConsulIamAuthMethod.SERVICE_NAME_TAG}"] == "result-writer"`,
        BindType: 'service',
        BindName: 'result-writer',
      });
      expect(objects.nodes.map((n) => n.Node)).not.toContain(f.authMethod.ec2NodeName('result-writer'));
      expect(objects.nodes.map((n) => n.Node)).toContain(f.authMethod.ec2NodeName('log-service'));
    });

    test('a role the owner makes with createWorkloadRole logs in as result-writer, and only it, through that rule (the handler against the Consul stand-in)', async () => {
      const [roleId, role] = resourceOf(t, 'AWS::IAM::Role', 'OwnerRole');
      expect(role.Properties).toMatchObject({ Path: '/lambda-mesh/ml/', Tags: [{ Key: ConsulIamAuthMethod.SERVICE_NAME_TAG, Value: 'result-writer' }] });
      t.hasResourceProperties('AWS::IAM::Policy', { Roles: [{ Ref: roleId }], PolicyDocument: { Statement: [{ Action: 'iam:GetRole', Effect: 'Allow', Resource: { 'Fn::GetAtt': [roleId, 'Arn'] } }] } });
      const tags = role.Properties.Tags as Array<{ Key: string; Value: string }>;

      const workloadToken = '5c1e7a00-0000-4000-8000-0000000a11ce';
      const standIn = await ConsulStandIn.start({ tokens: { [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'], [workloadToken]: ['acl:write', 'node:write:arn:', 'node:write:lambda-mesh-'] } });
      const capture = new ConsoleCapture();
      try {
        const [logicalId, method] = resourceOf(controlPlane, 'Custom::ConsulAuthMethod', 'AuthMethod');
        capture.start();
        await authMethodHandler(
          { RequestType: 'Create', LogicalResourceId: logicalId, ResourceType: 'Custom::ConsulAuthMethod', ResourceProperties: { Owner: method.Properties.Owner, Objects: deployed(method.Properties.Objects) } },
          { consul: consulClient(standIn.connection(workloadToken), { retryDelayMs: 10 }) },
        );
        capture.stop();
        const login = standIn.login(f.authMethod.authMethodName, {
          entity_name: 'result-writer-hosts',
          account_id: ACCOUNT,
          entity_path: '/lambda-mesh/ml/',
          ...Object.fromEntries(tags.map((tag) => [`entity_tags.${tag.Key}`, tag.Value])),
        });
        expect(login).toMatchObject({ ServiceIdentities: [{ ServiceName: 'result-writer' }], Roles: [], Policies: [] });
        // The owner's node exists (its agent registered it); its sidecar registers result-writer there with the token.
        await consulClient(standIn.connection(), { retryDelayMs: 1 }).put('/v1/catalog/register', { Node: 'owner-host-1', Address: '10.0.8.9' });
        const owner = consulClient(standIn.connection(login.token!.SecretID), { retryDelayMs: 1 });
        const registration = { Node: 'owner-host-1', SkipNodeUpdate: true, Service: { ID: 'result-writer-1', Service: 'result-writer', Port: 8081, Address: '10.0.8.9' } };
        expect((await owner.put('/v1/catalog/register', registration)).body).toBe(true);
        expect(standIn.state.nodes.get('owner-host-1')!.services.has('result-writer-1')).toBe(true);
        // Nothing else: not another service, not a node of its own.
        await expect(owner.put('/v1/catalog/register', { ...registration, Service: { ...registration.Service, ID: 'log-service-1', Service: 'log-service' } }))
          .rejects.toThrow(/lacks permission 'service:write' on "log-service"/);
        await expect(owner.put('/v1/catalog/register', { Node: 'owner-host-2', Address: '10.0.8.10' })).rejects.toThrow(/lacks permission 'node:write' on "owner-host-2"/);
      } finally {
        capture.stop();
        await standIn.close();
      }
    });
  });

  describe('a service others call (log-service, run by its owner) on a sidecar port of its own', () => {
    const f = servicesFixture({ placements: { 'log-service': ServicePlacement.EXTERNAL } });
    const log = externalService(f, 'LogService', f.logService, { sidecarPort: 21000 });
    ecsService(f, 'FeatureStore', f.featureStore);
    ecsService(f, 'ResultWriter', f.resultWriter);
    const t = Template.fromStack(f.servicesStack);

    test('its callers\' groups and the gateway are the sources on the owner\'s group, on its sidecar port', () => {
      expect(log.sidecarPort).toBe(21000);
      expect(log.connections.defaultPort?.toString()).toBe('21000');
      expect(rulesOf(t, 'ingress', OWNER_GROUP)).toEqual([
        `21000-21000:${GATEWAY_TASKS}`,
        `21000-21000:${securityGroupId(t, 'FeatureStoreSecurityGroup')}`,
        `21000-21000:${securityGroupId(t, 'ResultWriterSecurityGroup')}`,
      ].sort());
    });

    test('the callers reach it on that port, and it calls no one', () => {
      expect(rulesOf(t, 'egress', securityGroupId(t, 'FeatureStoreSecurityGroup'))).toContain(`21000-21000:${OWNER_GROUP}`);
      expect(rulesOf(t, 'egress', securityGroupId(t, 'ResultWriterSecurityGroup'))).toContain(`21000-21000:${OWNER_GROUP}`);
      expect(rulesOf(t, 'egress', securityGroupId(t, 'FeatureStoreSecurityGroup')).filter((r) => r.startsWith('20000'))).toEqual([]);
      expect(log.upstreams).toEqual([]);
      expect(rulesOf(t, 'egress', OWNER_GROUP).filter((r) => !/^(443|8501|8503)-/.test(r))).toEqual([]);
    });
  });

  test.each([
    ['the external service first', ['log', 'fs']],
    ['its caller first', ['fs', 'log']],
  ])('the rules are the same whoever is constructed first: %s', (_order, order) => {
    const f = servicesFixture({ placements: { 'log-service': ServicePlacement.EXTERNAL } });
    const make = { log: () => externalService(f, 'LogService', f.logService), fs: () => ecsService(f, 'FeatureStore', f.featureStore) };
    order.forEach((k) => make[k as keyof typeof make]());
    const t = Template.fromStack(f.servicesStack);
    const fsGroup = securityGroupId(t, 'FeatureStoreSecurityGroup');
    expect(rulesOf(t, 'ingress', OWNER_GROUP)).toEqual([`20000-20000:${GATEWAY_TASKS}`, `20000-20000:${fsGroup}`].sort());
    expect(rulesOf(t, 'egress', fsGroup)).toContain(`20000-20000:${OWNER_GROUP}`);
  });

  test('with the import\'s default allowAllOutbound, no egress rule is written on the owner\'s group; its peers still admit it', () => {
    const f = servicesFixture({ placements: { 'result-writer': ServicePlacement.EXTERNAL } });
    new MeshExternalService(f.servicesStack, 'ResultWriter', externalProps(f, f.resultWriter, {}));
    ecsService(f, 'LogService', f.logService);
    const t = Template.fromStack(f.servicesStack);
    expect(rulesOf(t, 'egress', OWNER_GROUP)).toEqual([]);
    expect(rulesOf(t, 'ingress', OWNER_GROUP)).toEqual([`20000-20000:${GATEWAY_TASKS}`]);
    expect(rulesOf(t, 'ingress', securityGroupId(t, 'LogServiceSecurityGroup'))).toContain(`20000-20000:${OWNER_GROUP}`);
  });

  describe('bad input', () => {
    test.each(['service', 'securityGroup', 'cluster', 'gateway', 'network'] as const)('fails when %s is missing', (field) => {
      const f = servicesFixture({ placements: { 'result-writer': ServicePlacement.EXTERNAL } });
      const props = { ...externalProps(f, f.resultWriter), [field]: undefined };
      const err = meshError(() => new MeshExternalService(f.servicesStack, 'ResultWriter', props));
      expect(err.location).toBe('services/ResultWriter');
      expect(err.field).toBe(field);
      expect(err.given).toBe('(missing)');
      expect(err.expected).toBe(`the ${field} of the external service`);
      expect(err.message).toBe(`services/ResultWriter: ${field}: given (missing), expected the ${field} of the external service`);
    });

    test.each([0, 65536, 2000.5, -1])('fails when sidecarPort is %p', (sidecarPort) => {
      const f = servicesFixture({ placements: { 'result-writer': ServicePlacement.EXTERNAL } });
      const err = meshError(() => externalService(f, 'ResultWriter', f.resultWriter, { sidecarPort }));
      expect(err.message).toBe(`services/ResultWriter: sidecarPort: given ${sidecarPort}, expected a port from 1 to 65535`);
    });

    test('fails when the service\'s placement is not EXTERNAL', () => {
      const f = servicesFixture();
      const err = meshError(() => externalService(f, 'ResultWriter', f.resultWriter));
      expect(err.location).toBe('Mesh');
      expect(err.field).toBe('service(result-writer).claimWorkload.placement');
      expect(err.given).toBe('"external"');
      expect(err.expected).toMatch(/the service's placement, 'ecs'.*services\/ResultWriter/);
    });

    test('fails when the same service is claimed twice', () => {
      const f = servicesFixture({ placements: { 'result-writer': ServicePlacement.EXTERNAL } });
      externalService(f, 'ResultWriter', f.resultWriter);
      const err = meshError(() => new MeshExternalService(f.servicesStack, 'ResultWriterAgain', {
        ...externalProps(f, f.resultWriter, {}, 'OtherGroup'),
      }));
      expect(err.field).toBe('service(result-writer).claimWorkload');
      expect(err.given).toBe('"services/ResultWriterAgain"');
      expect(err.expected).toMatch(/the construct at services\/ResultWriter already runs 'result-writer'/);
    });

    test('fails when the service port is 20000, the sidecar\'s', () => {
      const f = servicesFixture();
      const clash = f.mesh.addService('clash', { port: 20000, placement: ServicePlacement.EXTERNAL });
      const err = meshError(() => externalService(f, 'Clash', clash));
      expect(err.location).toBe('services/Clash');
      expect(err.field).toBe('service.port');
      expect(err.given).toBe('20000');
      expect(err.expected).toMatch(/the sidecar's public listener/);
    });

    test('fails when an upstream\'s local port is the service\'s own port', () => {
      const f = servicesFixture();
      const scorer = f.mesh.addService('scorer', { port: 9000, localPort: 19000, placement: ServicePlacement.ECS });
      const ranker = f.mesh.addService('ranker', { port: 19000, localPort: 29000, placement: ServicePlacement.EXTERNAL });
      scorer.allowFrom(ranker);
      const err = meshError(() => externalService(f, 'Ranker', ranker));
      expect(err.location).toBe('services/Ranker');
      expect(err.field).toBe('upstreams(scorer).localPort');
      expect(err.given).toBe('19000');
      expect(err.expected).toMatch(/a local port other than ranker's own port/);
    });
  });
});
