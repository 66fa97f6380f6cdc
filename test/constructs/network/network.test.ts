import { App, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LambdaMeshError } from '../../../constructs/core';
import { MeshNetwork } from '../../../constructs/network';
import { cdkJsonContext } from '../../harness';

function networkStack(props = {}, env?: { region: string }): { stack: Stack; network: MeshNetwork } {
  const app = new App({ context: cdkJsonContext() });
  const stack = new Stack(app, 'Net', env ? { env } : {});
  return { stack, network: new MeshNetwork(stack, 'Network', props) };
}

describe('MeshNetwork', () => {
  test('subnets for functions, services and servers in 3 AZs; only the servers get a NAT path', () => {
    const { stack } = networkStack();
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Subnet', 12);
    t.resourceCountIs('AWS::EC2::NatGateway', 3);
    t.allResourcesProperties('AWS::EC2::Subnet', { MapPublicIpOnLaunch: false });
    // A default route to a NAT gateway exists only in the 3 server route tables.
    t.resourcePropertiesCountIs('AWS::EC2::Route', { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: Match.anyValue() }, 3);
    const routes = t.findResources('AWS::EC2::Route', { Properties: { NatGatewayId: Match.anyValue() } });
    for (const route of Object.values(routes)) {
      expect(JSON.stringify(route.Properties.RouteTableId)).toMatch(/ServersSubnet/);
    }
    for (const group of ['Functions', 'Services', 'Servers', 'Egress']) {
      t.resourcePropertiesCountIs('AWS::EC2::Subnet', { Tags: Match.arrayWith([{ Key: 'aws-cdk:subnet-name', Value: group }]) }, 3);
    }
    t.hasResourceProperties('AWS::EC2::Subnet', { CidrBlock: '10.0.0.0/20' });
    // Environment-agnostic: the third zone is picked at deploy time too.
    t.hasResourceProperties('AWS::EC2::Subnet', { AvailabilityZone: { 'Fn::Select': [2, { 'Fn::GetAZs': '' }] } });
  });

  test('maxAzs 2 makes 2 zones', () => {
    Template.fromStack(networkStack({ maxAzs: 2 }).stack).resourceCountIs('AWS::EC2::Subnet', 8);
  });

  test('serverEgress: false makes every subnet isolated: no internet gateway, no NAT', () => {
    const { stack, network } = networkStack({ serverEgress: false });
    const t = Template.fromStack(stack);
    expect(network.serverEgress).toBe(false);
    t.resourceCountIs('AWS::EC2::Subnet', 9);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    // What the servers would have reached through the NAT: auto-join, cfn-signal, metrics, Session Manager.
    t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface' }, 12);
  });

  test('serviceEgress: the service subnets route to the NAT gateway of their zone too, with a warning; function subnets stay isolated', () => {
    const { stack, network } = networkStack({ serviceEgress: true });
    const t = Template.fromStack(stack);
    expect(network.serviceEgress).toBe(true);
    // Still one NAT gateway per zone: the service subnets share the servers' egress path.
    t.resourceCountIs('AWS::EC2::NatGateway', 3);
    t.resourceCountIs('AWS::EC2::Subnet', 12);
    t.resourcePropertiesCountIs('AWS::EC2::Route', { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: Match.anyValue() }, 6);
    const routeTables = Object.values(t.findResources('AWS::EC2::Route', { Properties: { NatGatewayId: Match.anyValue() } }))
      .map((route) => (route.Properties.RouteTableId as { Ref: string }).Ref);
    expect(routeTables.filter((id) => /ServicesSubnet/.test(id))).toHaveLength(3);
    expect(routeTables.filter((id) => /ServersSubnet/.test(id))).toHaveLength(3);
    expect(routeTables.filter((id) => /FunctionsSubnet/.test(id))).toEqual([]);
    // Each service subnet goes out through the NAT gateway of its own zone.
    for (const zone of [1, 2, 3]) {
      t.hasResourceProperties('AWS::EC2::Route', {
        RouteTableId: { Ref: Match.stringLikeRegexp(`ServicesSubnet${zone}RouteTable`) },
        NatGatewayId: { Ref: Match.stringLikeRegexp(`EgressSubnet${zone}NATGateway`) },
      });
    }
    Annotations.fromStack(stack).hasWarning('/Net/Network', Match.stringLikeRegexp('serviceEgress is on: the service subnets route 0.0.0.0/0 to the NAT gateways.*pull public images'));
    // The selections are by subnet group name: the same 3 subnets as without egress, and the endpoints stay put.
    expect(network.serviceSubnets).toEqual({ subnetGroupName: 'Services' });
    expect(network.vpc.selectSubnets(network.serviceSubnets).subnets).toHaveLength(3);
    expect(network.vpc.selectSubnets(network.functionSubnets).subnets).toHaveLength(3);
    expect(network.vpc.selectSubnets(network.serverSubnets).subnets).toHaveLength(3);
    t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true }, 8);
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
  });

  test('without serviceEgress there is no warning and the service subnets have no default route', () => {
    const { stack, network } = networkStack();
    expect(network.serviceEgress).toBe(false);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('serviceEgress'))).toEqual([]);
    const t = Template.fromStack(stack);
    const serviceRoutes = Object.values(t.findResources('AWS::EC2::Route')).filter((r) => /ServicesSubnet/.test(JSON.stringify(r.Properties.RouteTableId)));
    expect(serviceRoutes).toEqual([]);
  });

  test('fails when serviceEgress is set without serverEgress', () => {
    const err = (() => {
      try {
        networkStack({ serviceEgress: true, serverEgress: false });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(LambdaMeshError.isLambdaMeshError(err)).toBe(true);
    expect((err as LambdaMeshError).message).toBe('Net/Network: serviceEgress: given true, expected false (or left out) while serverEgress is false: the service subnets reach the internet through the NAT gateways that serverEgress creates');
  });

  test('warns when a looked-up region offers fewer zones than asked for', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'availability-zones:account=111111111111:region=us-west-1': ['us-west-1a', 'us-west-1c'] } });
    const stack = new Stack(app, 'Net', { env: { account: '111111111111', region: 'us-west-1' } });
    new MeshNetwork(stack, 'Network');
    Annotations.fromStack(stack).hasWarning('/Net/Network', Match.stringLikeRegexp('offers 2 availability zones, fewer than the 3 asked for'));
  });

  test('the endpoints a private Lambda function needs: S3 gateway and 8 interface endpoints', () => {
    const { stack } = networkStack();
    const t = Template.fromStack(stack);
    t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Gateway' }, 1);
    t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface', PrivateDnsEnabled: true }, 8);
    const services = Object.values(t.findResources('AWS::EC2::VPCEndpoint')).map((r) => JSON.stringify(r.Properties.ServiceName));
    for (const svc of ['.s3', '.ssm', '.secretsmanager', '.kms', '.sts', '.ecr.api', '.ecr.dkr', '.logs', '.monitoring']) {
      expect(services.some((s) => s.includes(`"${svc}"`) || s.includes(`${svc}"`))).toBe(true);
    }
  });

  test('endpoints admit only the function security group by default; connections let another consumer in on 443', () => {
    const closed = Template.fromStack(networkStack().stack);
    closed.resourceCountIs('AWS::EC2::SecurityGroupIngress', 1);
    closed.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
      FromPort: 443,
      ToPort: 443,
      SourceSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('FunctionSecurityGroup'), 'GroupId'] },
    });
    // The function group's only egress is to the endpoints (the mesh gateway adds its own).
    closed.hasResourceProperties('AWS::EC2::SecurityGroup', {
      GroupDescription: 'lambda-mesh functions: egress only to the mesh gateway and the VPC endpoints',
      SecurityGroupEgress: Match.absent(),
    });
    closed.resourceCountIs('AWS::EC2::SecurityGroupEgress', 1);
    closed.hasResourceProperties('AWS::EC2::SecurityGroupEgress', {
      FromPort: 443,
      ToPort: 443,
      GroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('FunctionSecurityGroup'), 'GroupId'] },
      DestinationSecurityGroupId: { 'Fn::GetAtt': [Match.stringLikeRegexp('EndpointSecurityGroup'), 'GroupId'] },
    });

    const { stack, network } = networkStack();
    const fnSg = new ec2.SecurityGroup(stack, 'FnSg', { vpc: network.vpc });
    network.connections.allowDefaultPortFrom(fnSg);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::SecurityGroupIngress', { FromPort: 443, ToPort: 443, IpProtocol: 'tcp', SourceSecurityGroupId: Match.anyValue() });
  });

  test('flow logs of all traffic to a KMS-encrypted log group kept a year; the key rotates and refuses foreign grants', () => {
    const { stack } = networkStack();
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::EC2::FlowLog', { TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365, KmsKeyId: Match.anyValue() });
    t.hasResource('AWS::Logs::LogGroup', { DeletionPolicy: 'Retain' });
    t.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'kms:CreateGrant',
            Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
          }),
          Match.objectLike({
            Principal: { Service: { 'Fn::Join': ['', ['logs.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
            Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': Match.anyValue() } },
          }),
        ]),
      },
    });
  });

  test('subnet selections pick the matching subnet groups', () => {
    const { stack, network } = networkStack();
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.PYTHON_3_13,
      handler: 'index.handler',
      code: lambda.Code.fromInline('def handler(e, c): return 1'),
      vpc: network.vpc,
      vpcSubnets: network.functionSubnets,
    });
    expect(fn.isBoundToVpc).toBe(true);
    expect(network.vpc.selectSubnets(network.functionSubnets).subnets).toHaveLength(3);
    expect(network.vpc.selectSubnets(network.serverSubnets).subnets).toHaveLength(3);
    expect(network.vpc.selectSubnets(network.serviceSubnets).subnets).toHaveLength(3);
  });

  test('explicit availability zones need no lookup with a fixed region', () => {
    const { stack } = networkStack({ availabilityZones: ['eu-west-1a', 'eu-west-1b'] }, { region: 'eu-west-1' });
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::EC2::Subnet', 8);
    t.hasResourceProperties('AWS::EC2::Subnet', { AvailabilityZone: 'eu-west-1b' });
  });

  test.each([[1], [4], [2.5]])('fails when maxAzs is %s', (maxAzs) => {
    const err = (() => {
      try {
        networkStack({ maxAzs });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(LambdaMeshError.isLambdaMeshError(err)).toBe(true);
    expect((err as LambdaMeshError).message).toBe(`Net/Network: maxAzs: given ${maxAzs}, expected an integer from 2 to 3 (3 lets a server quorum survive the loss of a zone; 2 for regions that offer only 2)`);
  });

  test.each([
    ['one zone', ['eu-west-1a']],
    ['a repeated zone', ['eu-west-1a', 'eu-west-1a']],
    ['four zones', ['eu-west-1a', 'eu-west-1b', 'eu-west-1c', 'eu-west-1d']],
  ])('fails when availabilityZones has %s', (_why, availabilityZones) => {
    expect(() => networkStack({ availabilityZones }, { region: 'eu-west-1' })).toThrow(
      `Net/Network: availabilityZones: given ${JSON.stringify(availabilityZones)}, expected 2 or 3 distinct availability zone names`,
    );
  });

  describe('with an existing VPC', () => {
    function existingVpc(stack: Stack): ec2.IVpc {
      return ec2.Vpc.fromVpcAttributes(stack, 'Existing', {
        vpcId: 'vpc-0a1b2c3d4e5f60718',
        availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
        privateSubnetIds: ['subnet-0a1c3d4e5f607189', 'subnet-0a2c3d4e5f607189', 'subnet-0a3c3d4e5f607189'],
        privateSubnetRouteTableIds: ['rtb-0a1c3d4e5f607189', 'rtb-0a2c3d4e5f607189', 'rtb-0a3c3d4e5f607189'],
        isolatedSubnetIds: ['subnet-0b1c3d4e5f607189', 'subnet-0b2c3d4e5f607189', 'subnet-0b3c3d4e5f607189'],
        isolatedSubnetRouteTableIds: ['rtb-0b1c3d4e5f607189', 'rtb-0b2c3d4e5f607189', 'rtb-0b3c3d4e5f607189'],
      });
    }

    function withExisting(props: (vpc: ec2.IVpc) => object): { stack: Stack; network: MeshNetwork } {
      const app = new App({ context: cdkJsonContext() });
      const stack = new Stack(app, 'Net', { env: { account: '111111111111', region: 'eu-west-1' } });
      const vpc = existingVpc(stack);
      return { stack, network: new MeshNetwork(stack, 'Network', { vpc, ...props(vpc) }) };
    }

    test('uses the given subnets, adds flow logs and endpoints, and creates no VPC', () => {
      const { stack, network } = withExisting(() => ({
        functionSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serviceSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serverSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      }));
      const t = Template.fromStack(stack);
      t.resourceCountIs('AWS::EC2::VPC', 0);
      t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceId: 'vpc-0a1b2c3d4e5f60718', ResourceType: 'VPC', TrafficType: 'ALL' });
      t.resourcePropertiesCountIs('AWS::EC2::VPCEndpoint', { VpcEndpointType: 'Interface' }, 8);
      expect(network.vpc.selectSubnets(network.serverSubnets).subnetIds).toEqual(['subnet-0a1c3d4e5f607189', 'subnet-0a2c3d4e5f607189', 'subnet-0a3c3d4e5f607189']);
    });

    test('endpoints: false adds no endpoints (for a VPC that has them)', () => {
      const { stack } = withExisting(() => ({
        endpoints: false,
        functionSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serviceSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serverSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      }));
      Template.fromStack(stack).resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    });

    test('fails when a subnet selection is missing', () => {
      expect(() => withExisting(() => ({ functionSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED }, serviceSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } }))).toThrow(
        'Net/Network: serverSubnets: given (missing), expected a subnet selection in the given VPC (an existing VPC has no lambda-mesh subnet groups)',
      );
    });

    test('fails when server subnets overlap function subnets', () => {
      expect(() => withExisting(() => ({
        functionSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serviceSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        serverSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      }))).toThrow(/Net\/Network: serverSubnets: given \["subnet-0b1c3d4e5f607189","subnet-0b2c3d4e5f607189","subnet-0b3c3d4e5f607189"\], expected subnets not shared with functionSubnets/);
    });

    test('fails when a selection covers fewer than 2 zones', () => {
      expect(() => withExisting(() => ({
        functionSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED, subnetFilters: [ec2.SubnetFilter.byIds(['subnet-0b1c3d4e5f607189'])] },
        serviceSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
        serverSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      }))).toThrow(/functionSubnets: given \["subnet-0b1c3d4e5f607189"\], expected subnets in at least 2 availability zones/);
    });

    test('fails when subnet selections are given for a new VPC', () => {
      expect(() => networkStack({ serverSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } })).toThrow(/serverSubnets: given .*expected no selection: a new VPC has its own subnet groups/);
    });
  });

  test('fromMeshNetworkAttributes references a network defined elsewhere', () => {
    const { stack, network } = networkStack();
    const imported = MeshNetwork.fromMeshNetworkAttributes(stack, 'Imported', {
      vpc: network.vpc,
      functionSubnets: network.functionSubnets,
      serviceSubnets: network.serviceSubnets,
      serverSubnets: network.serverSubnets,
      functionSecurityGroup: network.functionSecurityGroup,
      endpointSecurityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-123'),
      serverEgress: true,
    });
    expect(imported.serverEgress).toBe(true);
    expect(imported.serviceEgress).toBe(false);
    expect(imported.connections.defaultPort?.toString()).toBe('443');
    const withServiceEgress = MeshNetwork.fromMeshNetworkAttributes(stack, 'ImportedWithServiceEgress', {
      vpc: network.vpc,
      functionSubnets: network.functionSubnets,
      serviceSubnets: network.serviceSubnets,
      serverSubnets: network.serverSubnets,
      functionSecurityGroup: network.functionSecurityGroup,
      endpointSecurityGroup: ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg2', 'sg-456'),
      serverEgress: true,
      serviceEgress: true,
    });
    expect(withServiceEgress.serviceEgress).toBe(true);
  });
});
