import { Annotations, Aws, Duration, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct, type IConstruct } from 'constructs';
import { describeValue, throwInvalid } from '../core/errors';
import { DNS_1123_LABEL } from '../core/names';
import { allowCloudWatchLogs, newMeshKey } from '../core/private/kms';
import { Acknowledgements } from '../core/validation';
import { type IMeshNetwork } from '../network/network';
import { MESH_GATEWAY_NODE_PREFIX, MESH_GATEWAY_SERVICE_NAME } from './private/acl-policies';
import { ConsulDefaults, ConsulPorts, ConsulTokenRole, type IConsulCluster } from './types';

/** The Consul service ID and name of the gateway (the one its token may write): one catalog entry for all tasks. */
const GATEWAY_SERVICE = MESH_GATEWAY_SERVICE_NAME;
/** Envoy's readiness listener (`/ready`), for the load balancer's health check. */
const READY_PORT = 21000;
/** The user HashiCorp's consul-dataplane images run as (`USER 100` in their Dockerfile). */
const DATAPLANE_USER = '100';
/** Where the registration container leaves the servers' CA certificate for the dataplane. */
const CA_DIR = '/consul/ca';
const CA_FILE = `${CA_DIR}/ca.pem`;
/** The dataplane's temporary directory (it creates a FIFO there for Envoy's bootstrap config). */
const DATAPLANE_TMP = '/tmp';
const REGISTER_TMP_MOUNT = '/dataplane-tmp';
/** Memory of the short-lived registration container (curl and jq). */
const REGISTER_MEMORY_MIB = 64;

const VERSION = /^\d+\.\d+\.\d+$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
// registry host (optional) and repository path, without tag or digest: `public.ecr.aws/hashicorp/consul-dataplane`.
const REPOSITORY = /^(?:[A-Za-z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;
const PRIVATE_ECR_REGISTRY = /^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

/**
 * What a {@link MeshGatewayImage} resolves to for a container.
 */
export interface MeshGatewayImageConfig {
  /** The image for the container definition. */
  readonly containerImage: ecs.ContainerImage;
  /** The image reference, for messages (a token for ECR repositories created in the app). */
  readonly imageName: string;
  /** True when the image comes from a public registry, so pulling it needs a NAT path. */
  readonly needsInternet: boolean;
}

/**
 * Defines a container image of the mesh gateway: the consul-dataplane image that runs Envoy, or the Consul
 * image that registers the gateway. Pin by version or, better, by digest.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/dataplane
 */
export class MeshGatewayImage {
  /**
   * The consul-dataplane version used by default: the newest patch of the 1.8 line, the one that pairs with
   * Consul 1.21 (consul-k8s 1.8.x ships both).
   *
   * @see https://github.com/hashicorp/consul-dataplane/blob/main/CHANGELOG.md
   */
  public static readonly DEFAULT_DATAPLANE_VERSION = ConsulDefaults.DATAPLANE_VERSION;

  /**
   * The Consul version of the default registration image.
   */
  public static readonly DEFAULT_CONSUL_VERSION = ConsulDefaults.CONSUL_VERSION;

  /**
   * HashiCorp's consul-dataplane image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul-dataplane:<version>`.
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static dataplane(version: string = MeshGatewayImage.DEFAULT_DATAPLANE_VERSION): MeshGatewayImage {
    return MeshGatewayImage.publicVersion('public.ecr.aws/hashicorp/consul-dataplane', version);
  }

  /**
   * HashiCorp's Consul image on Amazon ECR Public: `public.ecr.aws/hashicorp/consul:<version>` (it has
   * `sh`, `curl` and `jq`, which the registration script needs).
   *
   * @param version `MAJOR.MINOR.PATCH`
   */
  public static consul(version: string = MeshGatewayImage.DEFAULT_CONSUL_VERSION): MeshGatewayImage {
    return MeshGatewayImage.publicVersion('public.ecr.aws/hashicorp/consul', version);
  }

  /**
   * An image pinned by digest: `<repository>@sha256:<64 hex digits>`. An image in a private ECR registry
   * (`<account>.dkr.ecr.<region>.amazonaws.com/<name>`) is pulled through the network's ECR endpoints, and the
   * pull from that repository is granted to the task's execution role; any other registry needs a NAT path.
   *
   * @param repository the repository without tag or digest, e.g. `public.ecr.aws/hashicorp/consul-dataplane`
   * @param digest `sha256:` and 64 lower-case hex digits
   */
  public static fromDigest(repository: string, digest: string): MeshGatewayImage {
    return new MeshGatewayImage((scope, field) => {
      if (!Token.isUnresolved(repository) && !REPOSITORY.test(repository)) {
        throwInvalid(scope, field, repository, 'an image repository without tag or digest, such as "public.ecr.aws/hashicorp/consul-dataplane"');
      }
      if (!Token.isUnresolved(digest) && !DIGEST.test(digest)) {
        throwInvalid(scope, field, digest, 'a digest "sha256:" followed by 64 lower-case hex digits');
      }
      const imageName = `${repository}@${digest}`;
      const ecrRepository = Token.isUnresolved(repository) ? undefined : privateEcrRepository(scope, `${field}Repository`, repository);
      if (ecrRepository) {
        return { containerImage: ecs.ContainerImage.fromEcrRepository(ecrRepository, digest), imageName, needsInternet: false };
      }
      return { containerImage: ecs.ContainerImage.fromRegistry(imageName), imageName, needsInternet: true };
    });
  }

  /**
   * An image in your own ECR repository, by tag or (better) digest. It is pulled through the network's ECR
   * endpoints, so it works without a NAT path; the pull is granted to the task's execution role.
   *
   * @param repository the repository, e.g. a pull-through cache of `public.ecr.aws/hashicorp`
   * @param tagOrDigest a tag or `sha256:<64 hex digits>`
   */
  public static fromEcrRepository(repository: ecr.IRepository, tagOrDigest: string): MeshGatewayImage {
    return new MeshGatewayImage((scope, field) => {
      if (!Token.isUnresolved(tagOrDigest) && !TAG.test(tagOrDigest) && !DIGEST.test(tagOrDigest)) {
        throwInvalid(scope, field, tagOrDigest, 'an image tag or a digest "sha256:" followed by 64 lower-case hex digits');
      }
      const containerImage = ecs.ContainerImage.fromEcrRepository(repository, tagOrDigest);
      return { containerImage, imageName: containerImage.imageName, needsInternet: false };
    });
  }

  private static publicVersion(repository: string, version: string): MeshGatewayImage {
    return new MeshGatewayImage((scope, field) => {
      if (!Token.isUnresolved(version) && !VERSION.test(version)) {
        throwInvalid(scope, field, version, 'a version MAJOR.MINOR.PATCH such as "1.8.10" (no "v", no "latest")');
      }
      const imageName = `${repository}:${version}`;
      return { containerImage: ecs.ContainerImage.fromRegistry(imageName), imageName, needsInternet: true };
    });
  }

  private constructor(private readonly resolve: (scope: Construct, field: string) => MeshGatewayImageConfig) {}

  /**
   * Checks the image reference and returns what the container needs.
   *
   * @param scope the construct that uses the image (named in errors)
   * @param field the prop that holds it (named in errors)
   */
  public bind(scope: Construct, field: string): MeshGatewayImageConfig {
    return this.resolve(scope, field);
  }
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
}

/**
 * Attributes of a mesh gateway defined in another stack or app, for {@link MeshGateway.fromMeshGatewayAttributes}.
 */
export interface MeshGatewayAttributes {
  /** The DNS name of the gateway's load balancer. */
  readonly loadBalancerDnsName: string;
  /** The security group of the gateway's load balancer. */
  readonly securityGroup: ec2.ISecurityGroup;
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
   * @default MeshGatewayImage.dataplane(MeshGatewayImage.DEFAULT_DATAPLANE_VERSION)
   */
  readonly dataplaneImage?: MeshGatewayImage;
  /**
   * The image of the registration container; it needs `sh`, `curl` and `jq`.
   * @default MeshGatewayImage.consul(MeshGatewayImage.DEFAULT_CONSUL_VERSION)
   */
  readonly consulImage?: MeshGatewayImage;
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
 * Each task first runs a registration container that writes one shared catalog entry (node
 * `mesh-gateway-<dc>`, service `mesh-gateway`, address the load balancer); the same PUT from every task, so no
 * per-task entry can go stale.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/gateways/mesh-gateway
 * @see https://developer.hashicorp.com/consul/docs/reference/dataplane/cli
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
      public readonly connections = new ec2.Connections({ securityGroups: [attrs.securityGroup], defaultPort: ec2.Port.tcp(ConsulPorts.MESH_GATEWAY) });
    }
    return new Imported(scope, id);
  }

  /**
   * The load balancer's security group, default port 8443. It admits the network's function security group;
   * let more callers in with `gateway.connections.allowDefaultPortFrom(peer)`.
   */
  public readonly connections: ec2.Connections;
  /** The internal Network Load Balancer in front of the gateway tasks. */
  public readonly loadBalancer: elbv2.INetworkLoadBalancer;
  public readonly endpoint: string;
  public readonly endpointAddress: string;
  public readonly endpointPort: number = ConsulPorts.MESH_GATEWAY;
  /** The Fargate service that runs the gateway tasks. */
  public readonly service: ecs.FargateService;
  /** The log group of both containers (KMS-encrypted, kept a year). */
  public readonly logGroup: logs.ILogGroup;

  private readonly taskSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: MeshGatewayProps) {
    super(scope, id);
    const { cluster, network } = props;
    if (!network) {
      throwInvalid(this, 'network', network, 'the mesh network (a MeshNetwork or MeshNetwork.fromMeshNetworkAttributes): the gateway runs in its server subnets and only its function security group may reach it');
    }
    if (!cluster) {
      throwInvalid(this, 'cluster', cluster, 'the Consul server cluster the gateway registers with (a ConsulServerCluster or ConsulServerCluster.fromConsulClusterAttributes)');
    }

    const desiredCount = props.desiredCount ?? 2;
    const devMode = props.devMode ?? false;
    if (!Token.isUnresolved(desiredCount)) {
      if (!Number.isInteger(desiredCount) || desiredCount < 1) {
        throwInvalid(this, 'desiredCount', desiredCount, 'a whole number of tasks, at least 2 (at least 1 with devMode)');
      }
      if (desiredCount < 2 && !devMode) {
        throwInvalid(this, 'desiredCount', desiredCount, 'at least 2 tasks, so the gateway survives the loss of a task or a zone (set devMode: true to allow 1)');
      }
    }
    if (devMode) {
      Annotations.of(this).addWarningV2('lambda-mesh:mesh-gateway:devMode', `devMode is on: the mesh gateway runs ${describeValue(desiredCount)} task(s); with fewer than 2, every deployment or task failure cuts the functions off from the mesh. Do not use devMode in production.`);
    }
    if (!Token.isUnresolved(cluster.datacenter) && !DNS_1123_LABEL.test(cluster.datacenter)) {
      throwInvalid(this, 'cluster.datacenter', cluster.datacenter, 'a DNS-1123 label (it names the gateway node and the servers\' TLS name)');
    }

    const dataplaneImage = (props.dataplaneImage ?? MeshGatewayImage.dataplane()).bind(this, 'dataplaneImage');
    const consulImage = (props.consulImage ?? MeshGatewayImage.consul()).bind(this, 'consulImage');
    if (!network.serverEgress) {
      for (const [field, image] of [['dataplaneImage', dataplaneImage], ['consulImage', consulImage]] as const) {
        if (image.needsInternet) {
          throwInvalid(this, field, image.imageName, 'an image the server subnets can pull without a NAT path (network.serverEgress is false): one in your own ECR, e.g. MeshGatewayImage.fromEcrRepository(repository, \'sha256:...\')');
        }
      }
    }

    const cpu = props.cpu ?? 512;
    const memoryLimitMiB = props.memoryLimitMiB ?? 1024;
    if (!Token.isUnresolved(memoryLimitMiB) && (!Number.isInteger(memoryLimitMiB) || memoryLimitMiB < 512)) {
      throwInvalid(this, 'memoryLimitMiB', memoryLimitMiB, 'a Fargate task memory size in MiB, at least 512');
    }

    // --- Network: security groups, the load balancer ---------------------------------------------------------
    const vpc = network.vpc;
    const lbSecurityGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc,
      description: 'lambda-mesh mesh gateway load balancer: 8443 from mesh functions only',
      allowAllOutbound: false,
    });
    this.connections = new ec2.Connections({ securityGroups: [lbSecurityGroup], defaultPort: ec2.Port.tcp(ConsulPorts.MESH_GATEWAY) });
    // The functions' only mesh egress: their proxies dial the gateway.
    this.connections.allowDefaultPortFrom(network.functionSecurityGroup, 'mesh functions to the mesh gateway');

    this.taskSecurityGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc,
      description: 'lambda-mesh mesh gateway tasks: from the load balancer; to Consul, mesh services and AWS APIs',
      allowAllOutbound: false,
    });
    const tasks = new ec2.Connections({ securityGroups: [this.taskSecurityGroup] });
    // Client IP preservation is off (below), so traffic and health checks come from the load balancer's group.
    tasks.allowFrom(lbSecurityGroup, ec2.Port.tcp(ConsulPorts.MESH_GATEWAY), 'load balancer to the gateway listener');
    tasks.allowFrom(lbSecurityGroup, ec2.Port.tcp(READY_PORT), 'load balancer health checks to Envoy /ready');
    cluster.connections.allowFrom(tasks, ec2.Port.tcp(ConsulPorts.HTTPS), 'mesh gateway registration (HTTPS API)');
    cluster.connections.allowFrom(tasks, ec2.Port.tcp(ConsulPorts.GRPC_TLS), 'mesh gateway xDS (gRPC TLS)');
    // The interface endpoints (private DNS) answer for Secrets Manager, ECR and CloudWatch Logs, which Fargate
    // uses on the task's ENI to inject secrets, pull private images and ship logs.
    // Called from this side, so both rules live in this stack: the network stack must not refer back to it.
    tasks.allowTo(network, ec2.Port.tcp(443), 'mesh gateway tasks to the VPC endpoints');
    // HTTPS to anywhere: public image registries through the NAT path and the S3 gateway endpoint (ECR image
    // layers), whose addresses are public. Without a NAT path, the route tables leave only the S3 endpoint.
    this.taskSecurityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'image layers and public registries');
    this.allowServiceSubnets(network, props.serviceTrafficPorts ?? ec2.Port.allTcp());

    const loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc,
      internetFacing: false,
      vpcSubnets: network.serverSubnets,
      securityGroups: [lbSecurityGroup],
      crossZoneEnabled: true,
      deletionProtection: props.deletionProtection ?? true,
    });
    this.loadBalancer = loadBalancer;
    this.endpointAddress = loadBalancer.loadBalancerDnsName;
    this.endpoint = `${loadBalancer.loadBalancerDnsName}:${ConsulPorts.MESH_GATEWAY}`;

    // --- Logs ------------------------------------------------------------------------------------------------
    const logKey = newMeshKey(this, 'LogKey', `Encrypts the logs of the mesh gateway ${this.node.path}`, RemovalPolicy.RETAIN);
    // CloudWatch Logs encrypts with the key on the log group's behalf.
    allowCloudWatchLogs(logKey);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_YEAR,
      encryptionKey: logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.logGroup = logGroup;
    const logging = (prefix: string) => ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: prefix });

    // --- Task ------------------------------------------------------------------------------------------------
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu,
      memoryLimitMiB,
      runtimePlatform: {
        cpuArchitecture: props.architecture ?? ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Fargate bind mounts: empty, root-owned (0755), gone with the task.
      volumes: [{ name: 'consul-ca' }, { name: 'dataplane-tmp' }],
    });
    const token = ecs.Secret.fromSecretsManager(cluster.tokenSecret(ConsulTokenRole.MESH_GATEWAY), 'SecretID');
    const caCertificate = ecs.Secret.fromSecretsManager(cluster.caCertificateSecret, 'CertificatePem');

    const datacenter = cluster.datacenter;
    const nodeName = `${MESH_GATEWAY_NODE_PREFIX}${datacenter}`;
    const register = taskDefinition.addContainer('register', {
      containerName: 'register',
      image: consulImage.containerImage,
      essential: false,
      entryPoint: ['/bin/sh', '-c'],
      // Values go in as positional parameters, secrets as ECS secrets: nothing secret, and no plain
      // environment, in the task definition.
      command: [
        REGISTER_SCRIPT,
        'mesh-gateway-register',
        datacenter,
        cluster.endpointAddress,
        String(ConsulPorts.HTTPS),
        loadBalancer.loadBalancerDnsName,
        String(ConsulPorts.MESH_GATEWAY),
        CA_FILE,
        REGISTER_TMP_MOUNT,
        DATAPLANE_USER,
      ],
      secrets: { CONSUL_HTTP_TOKEN: token, CONSUL_CACERT_PEM: caCertificate },
      // Root only to hand the root-owned bind mounts to the dataplane's user; it exits after one request.
      user: '0',
      readonlyRootFilesystem: true,
      memoryLimitMiB: REGISTER_MEMORY_MIB,
      startTimeout: Duration.minutes(2),
      logging: logging('register'),
    });
    register.addMountPoints(
      { sourceVolume: 'consul-ca', containerPath: CA_DIR, readOnly: false },
      { sourceVolume: 'dataplane-tmp', containerPath: REGISTER_TMP_MOUNT, readOnly: false },
    );

    const dataplane = taskDefinition.addContainer('dataplane', {
      containerName: 'dataplane',
      image: dataplaneImage.containerImage,
      essential: true,
      // The image's entrypoint is `dumb-init consul-dataplane`; these are its flags.
      command: [
        '-addresses', cluster.endpointAddress,
        '-grpc-port', String(ConsulPorts.GRPC_TLS),
        // The servers sit behind a load balancer: do not switch to the server addresses they announce.
        '-server-watch-disabled',
        '-ca-certs', CA_FILE,
        '-tls-server-name', `server.${datacenter}.consul`,
        // The token comes from DP_CREDENTIAL_STATIC_TOKEN (an ECS secret), never from a flag.
        '-credential-type', 'static',
        '-proxy-id', GATEWAY_SERVICE,
        '-proxy-node-name', nodeName,
        '-envoy-ready-bind-address', '0.0.0.0',
        '-envoy-ready-bind-port', String(READY_PORT),
        '-log-json',
      ],
      secrets: { DP_CREDENTIAL_STATIC_TOKEN: token },
      user: DATAPLANE_USER,
      readonlyRootFilesystem: true,
      memoryLimitMiB: Token.isUnresolved(memoryLimitMiB) ? undefined : memoryLimitMiB - REGISTER_MEMORY_MIB,
      portMappings: [
        { containerPort: ConsulPorts.MESH_GATEWAY, protocol: ecs.Protocol.TCP, name: 'mesh' },
        { containerPort: READY_PORT, protocol: ecs.Protocol.TCP, name: 'ready' },
      ],
      stopTimeout: Duration.seconds(30),
      logging: logging('dataplane'),
    });
    dataplane.addMountPoints(
      { sourceVolume: 'consul-ca', containerPath: CA_DIR, readOnly: true },
      { sourceVolume: 'dataplane-tmp', containerPath: DATAPLANE_TMP, readOnly: false },
    );
    dataplane.addContainerDependencies({ container: register, condition: ecs.ContainerDependencyCondition.SUCCESS });

    // Secrets Manager decrypts the two secrets with the cluster's key on the execution role's behalf.
    taskDefinition.obtainExecutionRole().addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: [cluster.secretsKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
    }));

    // --- Service ---------------------------------------------------------------------------------------------
    const ecsCluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.service = new ecs.FargateService(this, 'Service', {
      cluster: ecsCluster,
      taskDefinition,
      desiredCount,
      // The server subnets have the NAT path (when network.serverEgress) that public registries need.
      vpcSubnets: network.serverSubnets,
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
    // The tasks register with the servers and read their tokens at start: a cluster created in the same deploy
    // must have signalled (servers joined, ACLs bootstrapped, secrets written) before the service starts, or
    // the deployment circuit breaker would roll the first deploy back.
    this.service.node.addDependency(cluster);

    const listener = loadBalancer.addListener('Mesh', { port: ConsulPorts.MESH_GATEWAY, protocol: elbv2.Protocol.TCP });
    const targetGroup = listener.addTargets('Tasks', {
      port: ConsulPorts.MESH_GATEWAY,
      protocol: elbv2.Protocol.TCP,
      targets: [this.service.loadBalancerTarget({ containerName: 'dataplane', containerPort: ConsulPorts.MESH_GATEWAY })],
      // Tasks see the load balancer as the source, so their security group can admit it alone.
      preserveClientIp: false,
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(READY_PORT),
        path: '/ready',
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });

    // A deregistered task's connections end with its draining time, not when the task stops.
    targetGroup.setAttribute('deregistration_delay.connection_termination.enabled', 'true');

    this.acknowledgeFindings(loadBalancer, taskDefinition, [dataplaneImage, consulImage]);
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
      return throwInvalid(this, 'network.serviceSubnets', subnets.map((s) => s.subnetId), 'subnets whose IPv4 CIDR blocks are known (import them with ipv4CidrBlock), so the gateway can be allowed to reach them');
    }
    for (const cidr of new Set(cidrs)) {
      this.allowServiceTraffic(ec2.Peer.ipv4(cidr), port);
    }
  }

  private acknowledgeFindings(loadBalancer: elbv2.NetworkLoadBalancer, taskDefinition: ecs.FargateTaskDefinition, images: MeshGatewayImageConfig[]): void {
    const noAccessLogs = 'The load balancer has one TCP listener that passes the mesh mTLS through: it must not terminate TLS, because the gateway routes on the SNI and the functions authenticate the services end to end. NLB access logs record only TLS listeners, so a log bucket would stay empty; connections are visible in the VPC flow logs and in the gateway\'s Envoy logs.';
    Acknowledgements.awsSolutions(loadBalancer, 'ELB2', noAccessLogs);
    Acknowledgements.guard(loadBalancer, 'elbv2_logging_enabled_check', `CT.ELASTICLOADBALANCING.PR.13: ${noAccessLogs}`);
    Acknowledgements.guard(taskDefinition, 'ecs_task_definition_nonroot_user_check', 'CT.ECS.PR.3: only the non-essential "register" container runs as root: Fargate bind mounts are root-owned (0755), and it must write the CA certificate and hand the temporary directory to the dataplane\'s user before exiting after one HTTPS request. The long-running "dataplane" container (Envoy) runs as user 100. Both have read-only root file systems.');
    if (images.some((i) => !i.needsInternet && ecrImage(i))) {
      Acknowledgements.awsSolutions(taskDefinition, 'IAM5[Resource::*]', 'ecr:GetAuthorizationToken, which CDK grants the execution role to pull from ECR, supports no resource-level permissions; the pull actions themselves are scoped to the repository.');
    }
  }
}

/**
 * The repository of a private ECR image URI (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<name>`), imported so
 * the pull can be granted; undefined for any other registry.
 */
function privateEcrRepository(scope: Construct, id: string, repository: string): ecr.IRepository | undefined {
  const slash = repository.indexOf('/');
  const match = slash > 0 ? PRIVATE_ECR_REGISTRY.exec(repository.slice(0, slash)) : null;
  if (!match) {
    return undefined;
  }
  const [, account, region, china] = match;
  const name = repository.slice(slash + 1);
  return ecr.Repository.fromRepositoryAttributes(scope, id, {
    repositoryName: name,
    repositoryArn: `arn:${china ? 'aws-cn' : 'aws'}:ecr:${region}:${account}:repository/${name}`,
  });
}

function ecrImage(image: MeshGatewayImageConfig): boolean {
  return image.containerImage instanceof ecs.EcrImage;
}

/**
 * Registers the gateway in the Consul catalog: one external node and one `mesh-gateway` service whose address is
 * the load balancer. Every task sends the same PUT, so re-running it is harmless. Positional parameters:
 * `$1` datacenter, `$2` Consul endpoint, `$3` HTTPS port, `$4` gateway address, `$5` gateway port, `$6` CA file
 * to write, `$7` the dataplane's temporary directory, `$8` the dataplane's user. From the environment (ECS
 * secrets): `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT_PEM`; `CONSUL_HTTP_SCHEME` (default https) exists for tests.
 *
 * The servers' certificate names `server.<dc>.consul`, not the endpoint's DNS name: curl connects to the endpoint
 * but verifies (and sends SNI for) the server name. The token reaches curl through its config on stdin, so it is
 * in no process's arguments. Envoy cannot bind the load balancer's name, so the registration tells it to listen
 * on all interfaces instead (`envoy_gateway_no_default_bind`).
 */
const REGISTER_SCRIPT = `set -eu
dc=$1 endpoint=$2 api_port=$3 gateway_address=$4 gateway_port=$5 ca_file=$6 dataplane_tmp=$7 dataplane_user=$8
scheme=\${CONSUL_HTTP_SCHEME:-https}
: "\${CONSUL_HTTP_TOKEN:?register: CONSUL_HTTP_TOKEN (the mesh gateway token) is not set}"
: "\${CONSUL_CACERT_PEM:?register: CONSUL_CACERT_PEM (the CA certificate of the servers) is not set}"
case $CONSUL_HTTP_TOKEN in
  *[!0-9A-Za-z-]*) echo 'register: CONSUL_HTTP_TOKEN is not a Consul ACL token' >&2; exit 1 ;;
esac

umask 022
printf '%s\\n' "$CONSUL_CACERT_PEM" > "$ca_file"
chown "$dataplane_user" "$dataplane_tmp"
chmod 0700 "$dataplane_tmp"

node="mesh-gateway-$dc"
body=$(jq -n -c --arg dc "$dc" --arg node "$node" --arg address "$gateway_address" --argjson port "$gateway_port" '{
  Datacenter: $dc,
  Node: $node,
  Address: $address,
  NodeMeta: {"external-node": "true", "external-probe": "false"},
  Service: {
    Kind: "mesh-gateway",
    ID: "${GATEWAY_SERVICE}",
    Service: "${GATEWAY_SERVICE}",
    Port: $port,
    Address: $address,
    TaggedAddresses: {
      lan: {address: $address, port: $port},
      wan: {address: $address, port: $port}
    },
    Proxy: {
      Config: {
        envoy_gateway_no_default_bind: true,
        envoy_gateway_bind_addresses: {"all-interfaces": {address: "0.0.0.0", port: $port}}
      }
    }
  }
}')

server="server.$dc.consul"
result=$(printf 'header = "X-Consul-Token: %s"\\n' "$CONSUL_HTTP_TOKEN" | curl --config - \\
  --fail --silent --show-error --max-time 10 --retry 5 --retry-connrefused --retry-delay 3 \\
  --cacert "$ca_file" --connect-to "$server:$api_port:$endpoint:$api_port" \\
  --request PUT --header 'Content-Type: application/json' --data-binary "$body" \\
  "$scheme://$server:$api_port/v1/catalog/register")
if [ "$result" != true ]; then
  echo "register: unexpected answer from /v1/catalog/register: $result" >&2
  exit 1
fi
echo "register: $node/${GATEWAY_SERVICE} -> $gateway_address:$gateway_port"
`;
