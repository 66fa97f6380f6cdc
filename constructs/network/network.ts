import { Annotations, ArnFormat, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { describeValue, LambdaMeshError } from '../core/errors';
import { newMeshKey } from '../core/private/kms';
import { Acknowledgements } from '../core/validation';

/**
 * Properties of a {@link MeshNetwork}.
 */
export interface MeshNetworkProps {
  /**
   * The VPC's IPv4 range. With 3 AZs, a /16 leaves room for thousands of Lambda ENIs per AZ.
   * @default ec2.IpAddresses.cidr('10.0.0.0/16')
   */
  readonly ipAddresses?: ec2.IIpAddresses;
  /**
   * How many availability zones to use (2 or 3). Ignored when `availabilityZones` is given. In an
   * environment-agnostic stack the zones are picked at deploy time (`Fn::Select` over `Fn::GetAZs`): use 2
   * in a region that offers your account only 2.
   * @default 3
   */
  readonly maxAzs?: number;
  /**
   * The availability zones to use, by name. Give them when the stack has a fixed region, so synth needs no
   * AZ lookup (and so no credentials).
   * @default - the first `maxAzs` zones of the stack's region (`Fn::GetAZs` when the stack is environment-agnostic)
   */
  readonly availabilityZones?: string[];
  /**
   * How long VPC flow log records are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly flowLogRetention?: logs.RetentionDays;
  /**
   * The KMS key that encrypts the flow logs.
   * @default - a new customer-managed key with rotation on
   */
  readonly flowLogKey?: kms.IKey;
  /**
   * What happens to the flow log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly flowLogRemovalPolicy?: RemovalPolicy;
}

/**
 * The AWS services a private Lambda function and the mesh servers reach through interface endpoints, so the
 * VPC needs no NAT path: parameters and secrets (SSM, Secrets Manager, KMS), credentials (STS), images (ECR)
 * and logs (CloudWatch Logs).
 */
const INTERFACE_ENDPOINTS: ReadonlyArray<[string, ec2.InterfaceVpcEndpointAwsService]> = [
  ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
  ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
  ['Kms', ec2.InterfaceVpcEndpointAwsService.KMS],
  ['Sts', ec2.InterfaceVpcEndpointAwsService.STS],
  ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
  ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
  ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
];

/** Subnet group names; they are part of the API (`SubnetSelection`s and imported VPCs use them). */
const FUNCTIONS = 'Functions';
const SERVICES = 'Services';
const SERVERS = 'Servers';

/**
 * Defines the network of a lambda-mesh: a VPC with private, isolated subnets in 2 or 3 AZs for functions,
 * services and mesh servers, the endpoints a private Lambda function needs (S3 gateway; SSM, Secrets Manager,
 * KMS, STS, ECR, CloudWatch Logs interface endpoints), and VPC flow logs.
 *
 * There is no internet or NAT gateway: nothing in the mesh needs the internet, and everything it does need is
 * reached through an endpoint.
 */
export class MeshNetwork extends Construct implements ec2.IConnectable {
  /** The VPC. */
  public readonly vpc: ec2.IVpc;
  /** The subnets for mesh Lambda functions (one per AZ, sized for many ENIs). */
  public readonly functionSubnets: ec2.SubnetSelection;
  /** The subnets for backend services (EC2, ECS, EKS). */
  public readonly serviceSubnets: ec2.SubnetSelection;
  /** The subnets for the Consul servers and the mesh gateway. */
  public readonly serverSubnets: ec2.SubnetSelection;
  /** The log group that receives the VPC flow logs. */
  public readonly flowLogGroup: logs.ILogGroup;
  /**
   * The interface endpoints' security group, default port 443. It admits nobody until you allow a peer:
   * `network.connections.allowDefaultPortFrom(fn)`.
   */
  public readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, props: MeshNetworkProps = {}) {
    super(scope, id);

    const maxAzs = props.maxAzs ?? 3;
    if (!Token.isUnresolved(maxAzs) && (!Number.isInteger(maxAzs) || maxAzs < 2 || maxAzs > 3)) {
      throw new LambdaMeshError({ location: this.node.path, field: 'maxAzs', given: describeValue(maxAzs), expected: 'an integer from 2 to 3 (3 lets a server quorum survive the loss of a zone; 2 for regions that offer only 2)' });
    }
    const azs = props.availabilityZones;
    if (azs !== undefined) {
      const unique = new Set(azs);
      if (azs.length < 2 || azs.length > 3 || unique.size !== azs.length) {
        throw new LambdaMeshError({ location: this.node.path, field: 'availabilityZones', given: describeValue(azs), expected: '2 or 3 distinct availability zone names' });
      }
    }

    const flowLogKey = props.flowLogKey ?? newMeshKey(this, 'FlowLogKey', `Encrypts the VPC flow logs of ${this.node.path}`, props.flowLogRemovalPolicy ?? RemovalPolicy.RETAIN);
    this.flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: props.flowLogRemovalPolicy ?? RemovalPolicy.RETAIN,
      encryptionKey: flowLogKey,
    });
    if (props.flowLogKey === undefined) {
      // CloudWatch Logs encrypts with the key on the log group's behalf; scope it to log groups of this account and region.
      const stack = Stack.of(this);
      flowLogKey.addToResourcePolicy(new iam.PolicyStatement({
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME }) },
        },
      }));
    }

    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: props.ipAddresses ?? ec2.IpAddresses.cidr('10.0.0.0/16'),
      availabilityZones: azs ?? defaultAvailabilityZones(Stack.of(this), maxAzs),
      natGateways: 0,
      createInternetGateway: false,
      subnetConfiguration: [
        // Lambda functions take one ENI per subnet and security group combination; give them the most room.
        { name: FUNCTIONS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        { name: SERVICES, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        { name: SERVERS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.vpc = vpc;
    const wanted = azs?.length ?? maxAzs;
    if (vpc.availabilityZones.length < wanted) {
      Annotations.of(this).addWarningV2('lambda-mesh:network:fewerAvailabilityZones', `The stack's region offers ${vpc.availabilityZones.length} availability zones, fewer than the ${wanted} asked for: a 3-server quorum spread over 2 zones does not survive the loss of the zone holding 2 of them.`);
    }
    acknowledgeRestrictDefaultSecurityGroupProvider(this);
    this.functionSubnets = { subnetGroupName: FUNCTIONS };
    this.serviceSubnets = { subnetGroupName: SERVICES };
    this.serverSubnets = { subnetGroupName: SERVERS };

    vpc.addGatewayEndpoint('S3', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [{ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }],
    });

    // One security group for all interface endpoints, closed by default: each consumer (functions, servers,
    // gateway) is let in by `connections`, not the whole VPC CIDR.
    const endpointSecurityGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      description: 'lambda-mesh interface endpoints: HTTPS from mesh members only',
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({ securityGroups: [endpointSecurityGroup], defaultPort: ec2.Port.tcp(443) });
    for (const [id, service] of INTERFACE_ENDPOINTS) {
      // One endpoint ENI per AZ, in the services subnets.
      vpc.addInterfaceEndpoint(id, { service, subnets: this.serviceSubnets, privateDnsEnabled: true, open: false, securityGroups: [endpointSecurityGroup] });
    }
  }
}

/**
 * With `@aws-cdk/aws-ec2:restrictDefaultSecurityGroup` (on in this project), the VPC removes every rule of its
 * default security group through a custom resource whose Lambda handler is a stack-wide singleton.
 */
function acknowledgeRestrictDefaultSecurityGroupProvider(network: MeshNetwork): void {
  const provider = Stack.of(network).node.tryFindChild('Custom::VpcRestrictDefaultSGCustomResourceProvider');
  if (provider) {
    Acknowledgements.guard(provider, 'lambda_inside_vpc_check', 'CT.LAMBDA.PR.3: CDK\'s Custom::VpcRestrictDefaultSG handler runs only during deployment and calls only the EC2 API (RevokeSecurityGroupIngress/Egress on the default security group); in the isolated mesh VPC it would need an EC2 endpoint for no gain.');
  }
}

/**
 * An environment-agnostic stack offers only 2 zones (`Fn::GetAZs`, which CDK caps at 2 because a few regions
 * have 2 for some accounts). A quorum of Consul servers wants 3, so pick `count` zones with `Fn::Select`; in a
 * 2-zone region, set `maxAzs: 2` (the deployment fails otherwise). With a known region, use the stack's zones.
 */
function defaultAvailabilityZones(stack: Stack, count: number): string[] {
  if (Token.isUnresolved(stack.region) || Token.isUnresolved(stack.account)) {
    return Array.from({ length: count }, (_, i) => Fn.select(i, Fn.getAzs()));
  }
  return stack.availabilityZones.slice(0, count);
}
