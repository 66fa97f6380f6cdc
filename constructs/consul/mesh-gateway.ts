import { Annotations, Duration, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct, type IConstruct } from 'constructs';
import { describeValue, throwInvalid } from '../core/errors';
import { DNS_1123_LABEL } from '../core/names';
import { allowCloudWatchLogs, newMeshKey } from '../core/internal';
import { Acknowledgements } from '../core/validation';
import { type IMeshNetwork } from '../network/network';
import { type IConsulAuthMethod } from './auth-method';
import { ConsulImage, type ConsulImageConfig } from './image';
import { MESH_GATEWAY_SERVICE_NAME } from './private/acl-policies';
import { addConsulEcsContainers, CONSUL_ECS_OVERHEAD_MIB, gatewayConfig } from './private/consul-ecs';
import { ConsulPorts, type IConsulCluster } from './types';

/** The Consul service name of the gateway (the one its role's service identity may write). */
const GATEWAY_SERVICE = MESH_GATEWAY_SERVICE_NAME;

/** The props with their defaults filled in and the images bound, once checked. */
interface GatewaySettings {
  readonly desiredCount: number;
  readonly cpu: number;
  readonly memoryLimitMiB: number;
  readonly dataplaneImage: ConsulImageConfig;
  readonly consulEcsImage: ConsulImageConfig;
}

/**
 * A Consul mesh gateway: what other lambda-mesh constructs rely on.
 */
export interface IMeshGateway extends IConstruct, ec2.IConnectable {
  /** Where mesh functions dial the gateway: `<address>:<port>`. */
  readonly endpoint: string;
  /** The gateway's DNS name (its internal load balancer). */
  readonly endpointAddress: string;
  /** The gateway's port ({@link ConsulPorts.MESH_GATEWAY}). */
  readonly endpointPort: number;
  /**
   * The gateway tasks, as the peer that mesh services admit on their sidecar's public port: the gateway forwards
   * functions' connections to them from its tasks' own addresses.
   */
  readonly taskConnections: ec2.IConnectable;
}

/**
 * Attributes of a mesh gateway defined in another stack or app, for {@link MeshGateway.fromMeshGatewayAttributes}.
 */
export interface MeshGatewayAttributes {
  /** The DNS name of the gateway's load balancer. */
  readonly loadBalancerDnsName: string;
  /** The security group of the gateway's load balancer. */
  readonly securityGroup: ec2.ISecurityGroup;
  /** The security group of the gateway's tasks. */
  readonly taskSecurityGroup: ec2.ISecurityGroup;
}

/**
 * Properties of a {@link MeshGateway}.
 */
export interface MeshGatewayProps {
  /** The Consul servers the gateway registers with and gets its configuration from. */
  readonly cluster: IConsulCluster;
  /**
   * The mesh network. The gateway runs in its server subnets; the functions' shared security group may
   * reach it.
   */
  readonly network: IMeshNetwork;
  /**
   * The aws-iam auth method the gateway's tasks log in with (their role is bound to the gateway's Consul role):
   * the gateway holds no static token.
   */
  readonly authMethod: IConsulAuthMethod;
  /**
   * The ECS cluster to run in. The auth method registers its synthetic catalog node.
   * @default - a new cluster with Container Insights
   */
  readonly ecsCluster?: ecs.ICluster;
  /**
   * How many gateway tasks run, spread over the server subnets' zones. At least 2, unless `devMode`.
   * @default 2
   */
  readonly desiredCount?: number;
  /**
   * Allows a single gateway task (a warning says so). For development stacks only: one task is one zone.
   * @default false
   */
  readonly devMode?: boolean;
  /**
   * The consul-dataplane image (Envoy and its xDS client).
   * @default ConsulImage.dataplane()
   */
  readonly dataplaneImage?: ConsulImage;
  /**
   * The consul-ecs image (`mesh-init` logs in and registers the gateway; `health-sync` deregisters it when the
   * task stops).
   * @default ConsulImage.consulEcs()
   */
  readonly consulEcsImage?: ConsulImage;
  /**
   * CPU units of each task (Fargate sizes).
   * @default 512
   */
  readonly cpu?: number;
  /**
   * Memory of each task in MiB (Fargate sizes for `cpu`).
   * @default 1024
   */
  readonly memoryLimitMiB?: number;
  /**
   * The CPU architecture of the tasks. HashiCorp publishes both images for both.
   * @default ecs.CpuArchitecture.X86_64
   */
  readonly architecture?: ecs.CpuArchitecture;
  /**
   * The ports the gateway may open to the network's service subnets: the public listeners of the services'
   * sidecar proxies. Narrow it to what your platforms use (consul-dataplane sidecars: 20000; agent sidecars:
   * 21000-21255). For services outside the service subnets, use `allowServiceTraffic`.
   * @default ec2.Port.allTcp()
   */
  readonly serviceTrafficPorts?: ec2.Port;
  /**
   * Protects the load balancer from deletion. Turn off in stacks you tear down.
   * @default true
   */
  readonly deletionProtection?: boolean;
}

/**
 * Defines a Consul mesh gateway: Envoy under consul-dataplane, on ECS Fargate in the network's server subnets,
 * behind an internal Network Load Balancer on port 8443.
 *
 * Mesh functions reach mesh services through it, the way HashiCorp's Lambda integration does: a function's proxy
 * dials the gateway with mTLS and the SNI `<service>.<namespace>.<dc>.internal.<trust domain>`, and the gateway
 * routes on the SNI without terminating TLS.
 *
 * Each task is a consul-ecs gateway task, as HashiCorp's `gateway-task` module makes it: `mesh-init` logs in with
 * the task's IAM role (bound by the auth method to the gateway's Consul role: `mesh:write` and the service identity
 * `mesh-gateway`) and registers the task, the dataplane runs Envoy, and `health-sync` deregisters the task and logs
 * out when it stops. No token is stored anywhere for it.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/gateways/mesh-gateway
 * @see https://developer.hashicorp.com/consul/docs/ecs/deploy/configure-mesh-gateway
 */
export class MeshGateway extends Resource implements IMeshGateway {
  /**
   * References a mesh gateway defined in another stack or app.
   */
  public static fromMeshGatewayAttributes(scope: Construct, id: string, attrs: MeshGatewayAttributes): IMeshGateway {
    class Imported extends Resource implements IMeshGateway {
      public readonly endpointAddress = attrs.loadBalancerDnsName;
      public readonly endpointPort = ConsulPorts.MESH_GATEWAY;
      public readonly endpoint = `${attrs.loadBalancerDnsName}:${ConsulPorts.MESH_GATEWAY}`;
      public readonly connections = new ec2.Connections({
        securityGroups: [attrs.securityGroup],
        defaultPort: ec2.Port.tcp(ConsulPorts.MESH_GATEWAY),
      });
      public readonly taskConnections = new ec2.Connections({ securityGroups: [attrs.taskSecurityGroup] });
    }
    return new Imported(scope, id);
  }

  /**
   * The load balancer's security group, default port 8443. It admits the network's function security group;
   * let more callers in with `gateway.connections.allowDefaultPortFrom(peer)`.
   */
  public readonly connections: ec2.Connections;
  public readonly taskConnections: ec2.IConnectable;
  /** The internal Network Load Balancer in front of the gateway tasks. */
  public readonly loadBalancer: elbv2.INetworkLoadBalancer;
  public readonly endpoint: string;
  public readonly endpointAddress: string;
  public readonly endpointPort: number = ConsulPorts.MESH_GATEWAY;
  /** The ECS cluster the gateway runs in. */
  public readonly ecsCluster: ecs.ICluster;
  /** The Fargate service that runs the gateway tasks. */
  public readonly service: ecs.FargateService;
  /** The IAM role of the gateway tasks: the identity they log in to Consul with. */
  public readonly taskRole: iam.IRole;
  /** The log group of the gateway's containers (KMS-encrypted, kept a year). */
  public readonly logGroup: logs.ILogGroup;

  private readonly taskSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: MeshGatewayProps) {
    super(scope, id);
    const settings = this.resolveSettings(props);
    const { cluster, network, authMethod } = props;

    const front = this.createLoadBalancerSecurityGroup(network);
    this.connections = front.connections;
    const tasks = this.createTaskSecurityGroup(network, cluster, front.securityGroup);
    this.taskSecurityGroup = tasks.securityGroup;
    this.taskConnections = tasks.connections;
    this.allowServiceSubnets(network, props.serviceTrafficPorts ?? ec2.Port.allTcp());

    const loadBalancer = this.createLoadBalancer(network, front.securityGroup, props.deletionProtection ?? true);
    this.loadBalancer = loadBalancer;
    this.endpointAddress = loadBalancer.loadBalancerDnsName;
    this.endpoint = `${loadBalancer.loadBalancerDnsName}:${ConsulPorts.MESH_GATEWAY}`;
    this.logGroup = this.createLogGroup();

    // The identity the tasks log in with: tagged as the mesh gateway, under the auth method's role path.
    this.taskRole = authMethod.createWorkloadRole(this, 'TaskRole', {
      serviceName: GATEWAY_SERVICE,
      gatewayKind: 'mesh-gateway',
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    });
    const task = this.createTaskDefinition(props, settings);

    this.ecsCluster = props.ecsCluster ?? new ecs.Cluster(this, 'Cluster', {
      vpc: network.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    authMethod.addEcsCluster(this.ecsCluster);
    this.service = this.createService(props, settings, task.taskDefinition);
    this.addListener(loadBalancer, task.dataplaneContainerName);

    this.acknowledgeFindings(loadBalancer, task.taskDefinition, [settings.dataplaneImage, settings.consulEcsImage]);
  }

  /**
   * Lets the gateway open connections to mesh services outside the network's service subnets, e.g. an EKS
   * cluster's nodes or a peered VPC: the public listeners of their sidecar proxies.
   *
   * @param peer the service instances (a security group or a CIDR)
   * @param port their sidecars' public listener ports
   */
  public allowServiceTraffic(peer: ec2.IPeer, port: ec2.Port): void {
    this.taskSecurityGroup.addEgressRule(peer, port, 'mesh gateway to mesh services');
  }

  /** Checks the props (in the order their errors are reported), fills in the defaults and binds the images. */
  private resolveSettings(props: MeshGatewayProps): GatewaySettings {
    const { cluster, network, authMethod } = props;
    if (!network) {
      throwInvalid(this, 'network', network, 'the mesh network (a MeshNetwork or '
        + 'MeshNetwork.fromMeshNetworkAttributes): the gateway runs in its server subnets and only its function '
        + 'security group may reach it');
    }
    if (!cluster) {
      throwInvalid(this, 'cluster', cluster, 'the Consul server cluster the gateway registers with '
        + '(a ConsulServerCluster or ConsulServerCluster.fromConsulClusterAttributes)');
    }
    if (!authMethod) {
      throwInvalid(this, 'authMethod', authMethod,
        'the aws-iam auth method the gateway tasks log in with (a ConsulIamAuthMethod)');
    }
    const desiredCount = props.desiredCount ?? 2;
    this.checkDesiredCount(desiredCount, props.devMode ?? false);
    if (!Token.isUnresolved(cluster.datacenter) && !DNS_1123_LABEL.test(cluster.datacenter)) {
      throwInvalid(this, 'cluster.datacenter', cluster.datacenter,
        'a DNS-1123 label (it names the servers\' TLS name)');
    }

    const dataplaneImage = (props.dataplaneImage ?? ConsulImage.dataplane()).bind(this, 'dataplaneImage');
    const consulEcsImage = (props.consulEcsImage ?? ConsulImage.consulEcs()).bind(this, 'consulEcsImage');
    if (!network.serverEgress) {
      for (const [field, image] of [['dataplaneImage', dataplaneImage], ['consulEcsImage', consulEcsImage]] as const) {
        if (image.needsInternet) {
          throwInvalid(this, field, image.imageName, 'an image the server subnets can pull without a NAT path '
            + '(network.serverEgress is false): one in your own ECR or through a ConsulImageCache, '
            + 'e.g. cache.image(ConsulImage.dataplane())');
        }
      }
    }

    const cpu = props.cpu ?? 512;
    const memoryLimitMiB = props.memoryLimitMiB ?? 1024;
    if (!Token.isUnresolved(memoryLimitMiB) && (!Number.isInteger(memoryLimitMiB) || memoryLimitMiB < 512)) {
      throwInvalid(this, 'memoryLimitMiB', memoryLimitMiB, 'a Fargate task memory size in MiB, at least 512');
    }
    return { desiredCount, cpu, memoryLimitMiB, dataplaneImage, consulEcsImage };
  }

  /** At least 2 tasks; 1 only in devMode, which is warned about whatever the count. */
  private checkDesiredCount(desiredCount: number, devMode: boolean): void {
    if (!Token.isUnresolved(desiredCount)) {
      if (!Number.isInteger(desiredCount) || desiredCount < 1) {
        throwInvalid(this, 'desiredCount', desiredCount,
          'a whole number of tasks, at least 2 (at least 1 with devMode)');
      }
      if (desiredCount < 2 && !devMode) {
        throwInvalid(this, 'desiredCount', desiredCount, 'at least 2 tasks, so the gateway survives the loss of a task '
          + 'or a zone (set devMode: true to allow 1)');
      }
    }
    if (devMode) {
      Annotations.of(this).addWarningV2('lambda-mesh:consul:gatewayDevMode', `devMode is on: the mesh gateway runs `
        + `${describeValue(desiredCount)} task(s); with fewer than 2, every deployment or task failure cuts the `
        + 'functions off from the mesh. Do not use devMode in production.');
    }
  }

  /** The load balancer's security group: 8443 from the network's mesh functions. */
  private createLoadBalancerSecurityGroup(
    network: IMeshNetwork,
  ): { securityGroup: ec2.SecurityGroup; connections: ec2.Connections } {
    const securityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: network.vpc,
      description: 'lambda-mesh mesh gateway load balancer: 8443 from mesh functions only',
      allowAllOutbound: false,
    });
    const connections = new ec2.Connections({
      securityGroups: [securityGroup],
      defaultPort: ec2.Port.tcp(ConsulPorts.MESH_GATEWAY),
    });
    // The functions' only mesh egress: their proxies dial the gateway.
    connections.allowDefaultPortFrom(network.functionSecurityGroup, 'mesh functions to the mesh gateway');
    return { securityGroup, connections };
  }

  /** The tasks' security group: from the load balancer; to Consul, the VPC endpoints and image registries. */
  private createTaskSecurityGroup(
    network: IMeshNetwork, cluster: IConsulCluster, loadBalancerSecurityGroup: ec2.ISecurityGroup,
  ): { securityGroup: ec2.SecurityGroup; connections: ec2.Connections } {
    const securityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: network.vpc,
      description: 'lambda-mesh mesh gateway tasks: from the load balancer; to Consul, mesh services and AWS APIs',
      allowAllOutbound: false,
    });
    const tasks = new ec2.Connections({ securityGroups: [securityGroup] });
    // Client IP preservation is off (below), so traffic and health checks come from the load balancer's group.
    tasks.allowFrom(loadBalancerSecurityGroup, ec2.Port.tcp(ConsulPorts.MESH_GATEWAY),
      'load balancer to the gateway listener (traffic and health checks)');
    cluster.connections.allowFrom(tasks, ec2.Port.tcp(ConsulPorts.HTTPS),
      'mesh gateway login and registration (HTTPS API)');
    cluster.connections.allowFrom(tasks, ec2.Port.tcp(ConsulPorts.GRPC_TLS), 'mesh gateway xDS (gRPC TLS)');
    // The interface endpoints (private DNS) answer for Secrets Manager, ECR and CloudWatch Logs, which Fargate
    // uses on the task's ENI to inject secrets, pull private images and ship logs.
    // Called from this side, so both rules live in this stack: the network stack must not refer back to it.
    tasks.allowTo(network, ec2.Port.tcp(443), 'mesh gateway tasks to the VPC endpoints');
    // HTTPS to anywhere: public image registries through the NAT path and the S3 gateway endpoint (ECR image
    // layers), whose addresses are public. Without a NAT path, the route tables leave only the S3 endpoint.
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'image layers and public registries');
    return { securityGroup, connections: tasks };
  }

  /** The internal Network Load Balancer, across zones, in the server subnets. */
  private createLoadBalancer(
    network: IMeshNetwork, securityGroup: ec2.ISecurityGroup, deletionProtection: boolean,
  ): elbv2.NetworkLoadBalancer {
    return new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      internetFacing: false,
      vpcSubnets: network.serverSubnets,
      securityGroups: [securityGroup],
      crossZoneEnabled: true,
      deletionProtection,
    });
  }

  /** The containers' log group, encrypted with a key of its own and kept a year. */
  private createLogGroup(): logs.LogGroup {
    const logKey = newMeshKey(this, 'LogKey', `Encrypts the logs of the mesh gateway ${this.node.path}`,
      RemovalPolicy.RETAIN);
    // CloudWatch Logs encrypts with the key on the log group's behalf.
    allowCloudWatchLogs(logKey);
    return new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_YEAR,
      encryptionKey: logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** The Fargate task: consul-ecs's mesh-init and health-sync, and the dataplane that runs Envoy. */
  private createTaskDefinition(
    props: MeshGatewayProps, settings: GatewaySettings,
  ): { taskDefinition: ecs.FargateTaskDefinition; dataplaneContainerName: string } {
    const { cluster, authMethod } = props;
    const { memoryLimitMiB } = settings;
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu: settings.cpu,
      memoryLimitMiB,
      taskRole: this.taskRole,
      runtimePlatform: {
        cpuArchitecture: props.architecture ?? ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const config = gatewayConfig(
      {
        cluster,
        authMethodName: authMethod.authMethodName,
        serverIdHeaderValue: authMethod.serverIdHeaderValue,
        namespace: authMethod.mesh.namespace,
        partition: authMethod.mesh.partition,
      },
      {
        name: GATEWAY_SERVICE,
        port: ConsulPorts.MESH_GATEWAY,
        wanAddress: this.endpointAddress,
        meta: { 'lambda-mesh-gateway': 'functions' },
      },
    );
    const logGroup = this.logGroup;
    const containers = addConsulEcsContainers(this, {
      taskDefinition,
      cluster,
      config,
      consulEcsImage: settings.consulEcsImage,
      dataplaneImage: settings.dataplaneImage,
      logging: (prefix) => ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: prefix }),
      dataplaneEssential: true,
      dataplanePortMappings: [{ containerPort: ConsulPorts.MESH_GATEWAY, protocol: ecs.Protocol.TCP, name: 'mesh' }],
      dataplaneMemoryMiB: Token.isUnresolved(memoryLimitMiB) ? 512 : memoryLimitMiB - CONSUL_ECS_OVERHEAD_MIB,
    });
    return { taskDefinition, dataplaneContainerName: containers.dataplane.containerName };
  }

  /** The Fargate service in the server subnets; it starts once the servers and the auth method are in place. */
  private createService(
    props: MeshGatewayProps, settings: GatewaySettings, taskDefinition: ecs.FargateTaskDefinition,
  ): ecs.FargateService {
    const service = new ecs.FargateService(this, 'Service', {
      cluster: this.ecsCluster,
      taskDefinition,
      desiredCount: settings.desiredCount,
      // The server subnets have the NAT path (when network.serverEgress) that public registries need.
      vpcSubnets: props.network.serverSubnets,
      securityGroups: [this.taskSecurityGroup],
      assignPublicIp: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      enableExecuteCommand: false,
      availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED,
      healthCheckGracePeriod: Duration.seconds(60),
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    // The tasks log in and register at start: the servers must have signalled (joined, ACLs bootstrapped) and the
    // auth method, its gateway role and the cluster's node must exist, or the circuit breaker rolls the deploy back.
    service.node.addDependency(props.cluster, props.authMethod);
    return service;
  }

  /** The TCP listener on 8443 in front of the dataplane containers, checked on the gateway listener itself. */
  private addListener(loadBalancer: elbv2.NetworkLoadBalancer, dataplaneContainerName: string): void {
    const listener = loadBalancer.addListener('Mesh', { port: ConsulPorts.MESH_GATEWAY, protocol: elbv2.Protocol.TCP });
    const targetGroup = listener.addTargets('Tasks', {
      port: ConsulPorts.MESH_GATEWAY,
      protocol: elbv2.Protocol.TCP,
      targets: [this.service.loadBalancerTarget({
        containerName: dataplaneContainerName,
        containerPort: ConsulPorts.MESH_GATEWAY,
      })],
      // Tasks see the load balancer as the source, so their security group can admit it alone.
      preserveClientIp: false,
      deregistrationDelay: Duration.seconds(30),
      // Envoy's ready endpoint listens on 127.0.0.1 only (consul-ecs): the gateway listener itself is the check.
      healthCheck: {
        protocol: elbv2.Protocol.TCP,
        port: String(ConsulPorts.MESH_GATEWAY),
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
    // A deregistered task's connections end with its draining time, not when the task stops.
    targetGroup.setAttribute('deregistration_delay.connection_termination.enabled', 'true');
  }

  /**
   * The gateway forwards to the services' sidecars, wherever they run in the service subnets: egress to those
   * subnets' CIDR blocks, not the whole VPC (functions and servers stay out of reach).
   */
  private allowServiceSubnets(network: IMeshNetwork, port: ec2.Port): void {
    const subnets = network.vpc.selectSubnets(network.serviceSubnets).subnets;
    let cidrs: string[];
    try {
      cidrs = subnets.map((s) => s.ipv4CidrBlock);
    } catch {
      // Imported subnets without a CIDR block throw on read.
      return throwInvalid(this, 'network.serviceSubnets', subnets.map((s) => s.subnetId), 'subnets whose IPv4 CIDR '
        + 'blocks are known (import them with ipv4CidrBlock), so the gateway can be allowed to reach them');
    }
    for (const cidr of new Set(cidrs)) {
      this.allowServiceTraffic(ec2.Peer.ipv4(cidr), port);
    }
  }

  private acknowledgeFindings(
    loadBalancer: elbv2.NetworkLoadBalancer, taskDefinition: ecs.FargateTaskDefinition, images: ConsulImageConfig[],
  ): void {
    const noAccessLogs = 'The load balancer has one TCP listener that passes the mesh mTLS through: it must not '
      + 'terminate TLS, because the gateway routes on the SNI and the functions authenticate the services end to end. '
      + 'NLB access logs record only TLS listeners, so a log bucket would stay empty; connections are visible in the '
      + 'VPC flow logs and in the gateway\'s Envoy logs.';
    Acknowledgements.awsSolutions(loadBalancer, 'ELB2', noAccessLogs);
    Acknowledgements.guard(loadBalancer, 'elbv2_logging_enabled_check',
      `CT.ELASTICLOADBALANCING.PR.13: ${noAccessLogs}`);
    acknowledgeEcrPull(taskDefinition, images);
  }
}

/**
 * ECR's GetAuthorizationToken, which pulling any private ECR image needs, supports no resource-level permissions;
 * with a pull-through cache, the first pull also creates the image's repository under the cache's prefix.
 */
export function acknowledgeEcrPull(taskDefinition: IConstruct, images: readonly ConsulImageConfig[]): void {
  if (images.some((i) => !i.needsInternet)) {
    Acknowledgements.awsSolutions(taskDefinition, 'IAM5[Resource::*]', 'ecr:GetAuthorizationToken, which pulling '
      + 'from ECR needs, supports no resource-level permissions; the pull actions themselves are scoped to the '
      + 'repositories.');
  }
  const prefixes = images.map((i) => i.cacheRepositoryPrefix).filter((p): p is string => p !== undefined);
  for (const prefix of new Set(prefixes)) {
    Acknowledgements.awsSolutions(
      taskDefinition,
      `IAM5[Resource::${Acknowledgements.findingArn(taskDefinition, 'ecr', `repository/${prefix}/*`)}]`,
      'The ECR pull-through cache creates one repository per upstream image on its first pull, under the cache\'s '
        + 'prefix: ecr:CreateRepository and ecr:BatchImportUpstreamImage are granted on that prefix only.',
    );
  }
}
