import { Annotations, Fn, RemovalPolicy, Resource, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey } from '../core/internal';
import { Acknowledgements } from '../core/validation';

/**
 * The network of a lambda-mesh: what the other constructs rely on.
 */
export interface IMeshNetwork extends IConstruct, ec2.IConnectable {
  /** The VPC. */
  readonly vpc: ec2.IVpc;
  /** The subnets for mesh Lambda functions. */
  readonly functionSubnets: ec2.SubnetSelection;
  /** The subnets for backend services (EC2, ECS, EKS). */
  readonly serviceSubnets: ec2.SubnetSelection;
  /** The subnets for the Consul servers and the mesh gateway. */
  readonly serverSubnets: ec2.SubnetSelection;
  /**
   * The security group every mesh function shares. It has no egress until a part of the mesh opens it (the
   * mesh gateway, the endpoints): with one group for all functions, the number of rules does not grow with
   * the number of functions.
   */
  readonly functionSecurityGroup: ec2.ISecurityGroup;
  /** True when the server subnets have a NAT path to the internet (package repositories, public registries). */
  readonly serverEgress: boolean;
  /**
   * True when the service subnets have a NAT path to the internet too (nodes that pull public images).
   * @default false
   */
  readonly serviceEgress?: boolean;
}

/**
 * Properties of a {@link MeshNetwork}.
 */
export interface MeshNetworkProps {
  /**
   * An existing VPC to use instead of creating one. Then give `functionSubnets`, `serviceSubnets` and
   * `serverSubnets`, and say with `serverEgress` (and `serviceEgress`) whether the server (and service) subnets
   * reach the internet.
   * @default - a new VPC
   */
  readonly vpc?: ec2.IVpc;
  /**
   * The subnets for functions, in an existing VPC.
   * @default - the `Functions` subnet group of the new VPC
   */
  readonly functionSubnets?: ec2.SubnetSelection;
  /**
   * The subnets for backend services, in an existing VPC.
   * @default - the `Services` subnet group of the new VPC
   */
  readonly serviceSubnets?: ec2.SubnetSelection;
  /**
   * The subnets for the Consul servers and the mesh gateway, in an existing VPC.
   * @default - the `Servers` subnet group of the new VPC
   */
  readonly serverSubnets?: ec2.SubnetSelection;
  /**
   * Give the server subnets a NAT path to the internet. The Consul servers install Consul
   * from HashiCorp's package repository and the mesh gateway pulls its image from a public registry; without
   * egress, install from an S3 mirror and pull from your own ECR. Function subnets never get one; service subnets
   * only with `serviceEgress`.
   * For an existing VPC, say whether its server subnets have egress.
   * @default true
   */
  readonly serverEgress?: boolean;
  /**
   * Give the service subnets a NAT path to the internet too, through the server subnets' NAT gateways (so it
   * needs `serverEgress`). This is weaker isolation than the default, and synth warns
   * (`lambda-mesh:network-service-egress`): anything in the service subnets can then reach any address whose
   * port its security group allows. Use it for EKS nodes, or other backend services, that pull images from public
   * registries (docker.io, gcr.io) or call the internet; a registry mirror in your own ECR keeps them isolated.
   * Function subnets never get one. For an existing VPC, say whether its service subnets have egress.
   * @default false
   * @see https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html
   */
  readonly serviceEgress?: boolean;
  /**
   * Create the VPC endpoints (S3 gateway; SSM, Secrets Manager, KMS, STS, ECR, CloudWatch Logs interface).
   * Turn off for an existing VPC that has them already (two endpoints with private DNS for one service clash).
   * @default true
   */
  readonly endpoints?: boolean;
  /**
   * The new VPC's IPv4 range: /16 or /17 (each zone takes two /20 subnets, a /24 and a /28).
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
 * Attributes of a mesh network defined in another stack or app, for {@link MeshNetwork.fromMeshNetworkAttributes}.
 */
export interface MeshNetworkAttributes {
  /** The VPC. */
  readonly vpc: ec2.IVpc;
  /** The subnets for functions. */
  readonly functionSubnets: ec2.SubnetSelection;
  /** The subnets for backend services. */
  readonly serviceSubnets: ec2.SubnetSelection;
  /** The subnets for servers and the mesh gateway. */
  readonly serverSubnets: ec2.SubnetSelection;
  /** The security group all mesh functions share. */
  readonly functionSecurityGroup: ec2.ISecurityGroup;
  /** The interface endpoints' security group. */
  readonly endpointSecurityGroup: ec2.ISecurityGroup;
  /** Whether the server subnets have a NAT path to the internet. */
  readonly serverEgress: boolean;
  /**
   * Whether the service subnets have a NAT path to the internet.
   * @default false
   */
  readonly serviceEgress?: boolean;
}

/**
 * The AWS services a private Lambda function and the mesh servers reach through interface endpoints:
 * parameters and secrets (SSM, Secrets Manager, KMS), credentials (STS), images (ECR) and logs (CloudWatch Logs).
 */
const INTERFACE_ENDPOINTS: ReadonlyArray<[string, ec2.InterfaceVpcEndpointAwsService]> = [
  ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
  ['SecretsManager', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER],
  ['Kms', ec2.InterfaceVpcEndpointAwsService.KMS],
  ['Sts', ec2.InterfaceVpcEndpointAwsService.STS],
  ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
  ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
  ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
  // Scheduled mesh functions (certificate rotation) publish metrics.
  ['Monitoring', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING],
];

/**
 * Without a NAT path, the servers also need these: auto-join (EC2), cfn-signal (CloudFormation) and Session
 * Manager's channels.
 */
const SERVER_ONLY_ENDPOINTS: ReadonlyArray<[string, ec2.InterfaceVpcEndpointAwsService]> = [
  ['Ec2', ec2.InterfaceVpcEndpointAwsService.EC2],
  ['CloudFormation', ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION],
  ['SsmMessages', ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES],
  ['Ec2Messages', ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES],
];

/** Subnet group names; they are part of the API (`SubnetSelection`s and imported VPCs use them). */
const FUNCTIONS = 'Functions';
const SERVICES = 'Services';
const SERVERS = 'Servers';
const EGRESS = 'Egress';

/** The VPC and the three subnet selections the mesh uses in it. */
interface SubnetLayout {
  readonly vpc: ec2.IVpc;
  readonly functionSubnets: ec2.SubnetSelection;
  readonly serviceSubnets: ec2.SubnetSelection;
  readonly serverSubnets: ec2.SubnetSelection;
}

/**
 * Defines the network of a lambda-mesh: a VPC with private subnets in 2 or 3 AZs for functions, services
 * and mesh servers, the endpoints a private Lambda function needs (S3 gateway; SSM, Secrets Manager, KMS,
 * STS, ECR, CloudWatch Logs interface endpoints), VPC flow logs, and the security group mesh functions share.
 *
 * Function and service subnets are isolated: no internet, no NAT; everything they need is behind an endpoint.
 * Only the server subnets get a NAT path (`serverEgress`), for the Consul package repository and the gateway image,
 * unless the service subnets are given one too (`serviceEgress`, a warned opt-in for nodes that pull public images).
 */
export class MeshNetwork extends Resource implements IMeshNetwork {
  /**
   * References a mesh network defined in another stack or app.
   */
  public static fromMeshNetworkAttributes(scope: Construct, id: string, attrs: MeshNetworkAttributes): IMeshNetwork {
    class Imported extends Resource implements IMeshNetwork {
      public readonly vpc = attrs.vpc;
      public readonly functionSubnets = attrs.functionSubnets;
      public readonly serviceSubnets = attrs.serviceSubnets;
      public readonly serverSubnets = attrs.serverSubnets;
      public readonly functionSecurityGroup = attrs.functionSecurityGroup;
      public readonly serverEgress = attrs.serverEgress;
      public readonly serviceEgress = attrs.serviceEgress ?? false;
      public readonly connections = new ec2.Connections({
        securityGroups: [attrs.endpointSecurityGroup],
        defaultPort: ec2.Port.tcp(443),
      });
    }
    return new Imported(scope, id);
  }

  public readonly vpc: ec2.IVpc;
  public readonly functionSubnets: ec2.SubnetSelection;
  public readonly serviceSubnets: ec2.SubnetSelection;
  public readonly serverSubnets: ec2.SubnetSelection;
  public readonly functionSecurityGroup: ec2.ISecurityGroup;
  public readonly serverEgress: boolean;
  /**
   * True when the service subnets have a NAT path to the internet (always set on a `MeshNetwork`; optional only
   * because it is optional on {@link IMeshNetwork}, to which it was added later).
   * @default false
   */
  public readonly serviceEgress?: boolean;
  /** The log group that receives the VPC flow logs. */
  public readonly flowLogGroup: logs.ILogGroup;
  /**
   * The interface endpoints' security group, default port 443. It admits only the function security group
   * until you allow another peer: `network.connections.allowDefaultPortFrom(servers)`.
   */
  public readonly connections: ec2.Connections;

  constructor(scope: Construct, id: string, props: MeshNetworkProps = {}) {
    super(scope, id);
    this.serverEgress = props.serverEgress ?? true;
    this.serviceEgress = props.serviceEgress ?? false;
    const maxAzs = props.maxAzs ?? 3;
    this.checkZones(maxAzs, props.availabilityZones);
    this.flowLogGroup = this.createFlowLogGroup(props);

    const layout = props.vpc ? this.useVpc(props.vpc, props) : this.createVpc(props, maxAzs);
    this.vpc = layout.vpc;
    this.functionSubnets = layout.functionSubnets;
    this.serviceSubnets = layout.serviceSubnets;
    this.serverSubnets = layout.serverSubnets;

    this.functionSecurityGroup = new ec2.SecurityGroup(this, 'FunctionSecurityGroup', {
      vpc: this.vpc,
      description: 'lambda-mesh functions: egress only to the mesh gateway and the VPC endpoints',
      allowAllOutbound: false,
    });
    const endpointSecurityGroup = this.createEndpointSecurityGroup();
    this.connections = new ec2.Connections({ securityGroups: [endpointSecurityGroup], defaultPort: ec2.Port.tcp(443) });
    // Functions read their identity bundle (SSM, KMS) and pull nothing else: let them reach the endpoints.
    this.connections.allowDefaultPortFrom(this.functionSecurityGroup, 'mesh functions to the VPC endpoints');
    if (props.endpoints ?? true) {
      this.addEndpoints(endpointSecurityGroup);
    }
  }

  /** 2 or 3 zones, by count or by name. */
  private checkZones(maxAzs: number, azs: string[] | undefined): void {
    if (!Token.isUnresolved(maxAzs) && (!Number.isInteger(maxAzs) || maxAzs < 2 || maxAzs > 3)) {
      throwInvalid(this, 'maxAzs', maxAzs, 'an integer from 2 to 3 (3 lets a server quorum survive the loss of a zone; '
        + '2 for regions that offer only 2)');
    }
    if (azs !== undefined && (azs.length < 2 || azs.length > 3 || new Set(azs).size !== azs.length)) {
      throwInvalid(this, 'availabilityZones', azs, '2 or 3 distinct availability zone names');
    }
  }

  /** The encrypted log group of the VPC flow logs (with a key of its own unless one is given). */
  private createFlowLogGroup(props: MeshNetworkProps): logs.LogGroup {
    const removalPolicy = props.flowLogRemovalPolicy ?? RemovalPolicy.RETAIN;
    const flowLogKey = props.flowLogKey
      ?? newMeshKey(this, 'FlowLogKey', `Encrypts the VPC flow logs of ${this.node.path}`, removalPolicy);
    const group = new logs.LogGroup(this, 'FlowLogs', {
      retention: props.flowLogRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
      encryptionKey: flowLogKey,
    });
    if (props.flowLogKey === undefined) {
      allowCloudWatchLogs(flowLogKey);
    }
    return group;
  }

  /**
   * An existing VPC: the three subnet selections must be given, each in at least 2 zones, the server subnets
   * shared with neither of the others. Its flow logs go to the flow log group.
   */
  private useVpc(vpc: ec2.IVpc, props: MeshNetworkProps): SubnetLayout {
    const selections: Array<[string, ec2.SubnetSelection | undefined]> = [
      ['functionSubnets', props.functionSubnets],
      ['serviceSubnets', props.serviceSubnets],
      ['serverSubnets', props.serverSubnets],
    ];
    const chosen = new Map<string, string[]>();
    for (const [field, selection] of selections) {
      if (selection === undefined) {
        throwInvalid(this, field, undefined,
          'a subnet selection in the given VPC (an existing VPC has no lambda-mesh subnet groups)');
      }
      const subnets = vpc.selectSubnets(selection);
      const zones = new Set(subnets.availabilityZones);
      const knownZones = !subnets.availabilityZones.some((z) => Token.isUnresolved(z));
      if (subnets.subnetIds.length === 0 || (knownZones && zones.size < 2)) {
        throwInvalid(this, field, subnets.subnetIds, 'subnets in at least 2 availability zones');
      }
      for (const [other, ids] of chosen) {
        const shared = subnets.subnetIds.filter((s) => !Token.isUnresolved(s) && ids.includes(s));
        if (shared.length > 0 && (field === 'serverSubnets' || other === 'serverSubnets')) {
          throwInvalid(this, field, shared, `subnets not shared with ${other} (servers and the gateway keep their own `
            + 'subnets, so functions never share their route tables)');
        }
      }
      chosen.set(field, subnets.subnetIds);
    }
    new ec2.FlowLog(this, 'FlowLog', {
      resourceType: ec2.FlowLogResourceType.fromVpc(vpc),
      destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    return {
      vpc,
      functionSubnets: props.functionSubnets!,
      serviceSubnets: props.serviceSubnets!,
      serverSubnets: props.serverSubnets!,
    };
  }

  /**
   * A new VPC: isolated function subnets, service subnets (with egress only with `serviceEgress`), server subnets
   * with a NAT path when `serverEgress`, and the public subnets that hold only the NAT gateways.
   */
  private createVpc(props: MeshNetworkProps, maxAzs: number): SubnetLayout {
    for (const field of ['functionSubnets', 'serviceSubnets', 'serverSubnets'] as const) {
      if (props[field] !== undefined) {
        throwInvalid(this, field, props[field], 'no selection: a new VPC has its own subnet groups (Functions, '
          + 'Services, Servers); give `vpc` to use your own');
      }
    }
    const { serverEgress } = this;
    const serviceEgress = this.serviceEgress ?? false;
    if (serviceEgress && !serverEgress) {
      throwInvalid(this, 'serviceEgress', serviceEgress, 'false (or left out) while serverEgress is false: the service '
        + 'subnets reach the internet through the NAT gateways that serverEgress creates');
    }
    const egress = (on: boolean): ec2.SubnetType =>
      on ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED;
    const vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: props.ipAddresses ?? ec2.IpAddresses.cidr('10.0.0.0/16'),
      availabilityZones: props.availabilityZones ?? defaultAvailabilityZones(Stack.of(this), maxAzs),
      natGateways: serverEgress ? undefined : 0,
      natGatewaySubnets: serverEgress ? { subnetGroupName: EGRESS } : undefined,
      createInternetGateway: serverEgress,
      subnetConfiguration: [
        // Lambda functions take one ENI per subnet and security group combination; give them the most room.
        { name: FUNCTIONS, subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 },
        // With serviceEgress, each zone's service subnet routes 0.0.0.0/0 to the NAT gateway of its zone, as the
        // server subnets do; consumers select subnet groups by name, so nothing else moves.
        { name: SERVICES, subnetType: egress(serviceEgress), cidrMask: 20 },
        { name: SERVERS, subnetType: egress(serverEgress), cidrMask: 24 },
        // Holds only the NAT gateways; nothing launched here gets a public address.
        ...(serverEgress
          ? [{ name: EGRESS, subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28, mapPublicIpOnLaunch: false }]
          : []),
      ],
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(this.flowLogGroup),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    this.warnAboutNewVpc(vpc, props.availabilityZones?.length ?? maxAzs, serviceEgress);
    acknowledgeRestrictDefaultSecurityGroupProvider(this);
    return {
      vpc,
      functionSubnets: { subnetGroupName: FUNCTIONS },
      serviceSubnets: { subnetGroupName: SERVICES },
      serverSubnets: { subnetGroupName: SERVERS },
    };
  }

  /** Fewer zones than asked for, and the service subnets' egress, are warned about. */
  private warnAboutNewVpc(vpc: ec2.Vpc, wanted: number, serviceEgress: boolean): void {
    if (vpc.availabilityZones.length < wanted) {
      Annotations.of(this).addWarningV2('lambda-mesh:network:fewerAvailabilityZones', `The stack's region offers `
        + `${vpc.availabilityZones.length} availability zones, fewer than the ${wanted} asked for: a 3-server quorum `
        + 'spread over 2 zones does not survive the loss of the zone holding 2 of them.');
    }
    if (serviceEgress) {
      Annotations.of(this).addWarningV2('lambda-mesh:network-service-egress', 'serviceEgress is on: the service '
        + 'subnets route 0.0.0.0/0 to the NAT gateways, so anything running there (EKS nodes, pods, backend services) '
        + 'can reach any internet address its security group allows, not only the VPC endpoints. It is meant for '
        + 'nodes that pull public images (Istio from docker.io, Knative from gcr.io); mirror those images into your '
        + 'own ECR to keep the service subnets isolated. Function subnets stay isolated.');
    }
  }

  /**
   * One security group for all interface endpoints, closed by default: each consumer is let in by
   * `connections`, never the whole VPC CIDR.
   */
  private createEndpointSecurityGroup(): ec2.SecurityGroup {
    return new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc: this.vpc,
      description: 'lambda-mesh interface endpoints: HTTPS from mesh members only',
      allowAllOutbound: false,
    });
  }

  /** The S3 gateway endpoint for every subnet group; the interface endpoints in the service subnets, one ENI a zone. */
  private addEndpoints(securityGroup: ec2.ISecurityGroup): void {
    this.vpc.addGatewayEndpoint('S3', {
      service: ec2.GatewayVpcEndpointAwsService.S3,
      subnets: [this.functionSubnets, this.serviceSubnets, this.serverSubnets],
    });
    for (const [endpointId, service] of [...INTERFACE_ENDPOINTS, ...(this.serverEgress ? [] : SERVER_ONLY_ENDPOINTS)]) {
      this.vpc.addInterfaceEndpoint(endpointId, {
        service,
        subnets: this.serviceSubnets,
        privateDnsEnabled: true,
        open: false,
        securityGroups: [securityGroup],
      });
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
    Acknowledgements.guard(provider, 'lambda_inside_vpc_check', 'CT.LAMBDA.PR.3: CDK\'s Custom::VpcRestrictDefaultSG '
      + 'handler runs only during deployment and calls only the EC2 API (RevokeSecurityGroupIngress/Egress on the '
      + 'default security group); in the isolated mesh VPC it would need an EC2 endpoint for no gain.');
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
