import { Annotations, RemovalPolicy, Resource, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey } from '../core/internal';
import { type IConsulAuthMethod } from '../consul/auth-method';
import { ConsulImage, type ConsulImageConfig } from '../consul/image';
import { acknowledgeEcrPull, type IMeshGateway } from '../consul/mesh-gateway';
import {
  addConsulEcsContainers,
  CONSUL_ECS,
  CONSUL_ECS_OVERHEAD_MIB,
  MIN_DATAPLANE_MEMORY_MIB,
  serviceConfig,
  WORKLOAD_ROLE_TAGS,
} from '../consul/internal';
import { type IConsulCluster } from '../consul/types';
import { type MeshService, type ResolvedService, ServicePlacement } from '../mesh';
import { type IMeshNetwork } from '../network';
import { type IMeshWorkload } from './workload';
import {
  checkPinned, claimService, joinMesh, sidecarConnections, SIDECAR_PORT, type WorkloadUpstream, workloadUpstreams,
} from './private/workload';

/** The name of the app container when the construct makes the task definition. */
const APP_CONTAINER = 'app';
/** What the dataplane (Envoy) takes of the task's memory, when the construct sizes the task. */
const DATAPLANE_MEMORY_MIB = 256;

/**
 * Properties of a {@link MeshEcsService}.
 */
export interface MeshEcsServiceProps {
  /** The mesh service this ECS service runs (`mesh.service('feature-store')`); its placement must be ECS. */
  readonly service: MeshService;
  /** The Consul servers its sidecars register with and get their configuration from. */
  readonly cluster: IConsulCluster;
  /** The aws-iam auth method its tasks log in with (their task role is bound to the service). */
  readonly authMethod: IConsulAuthMethod;
  /** The mesh gateway, which forwards mesh functions' calls to its sidecars. */
  readonly gateway: IMeshGateway;
  /** The mesh network: tasks run in its service subnets. */
  readonly network: IMeshNetwork;
  /** The ECS cluster to run in (its synthetic catalog node is registered with the auth method). */
  readonly ecsCluster: ecs.ICluster;
  /**
   * The app container, when the construct makes the task definition (Fargate). Exactly one of `container` and
   * `taskDefinition`. Its port is the mesh service's port, on 127.0.0.1: only the sidecar reaches it.
   * @default - none: give `taskDefinition`
   */
  readonly container?: ecs.ContainerDefinitionOptions;
  /**
   * Your own Fargate task definition with the app container in it. Its task role must come from
   * `authMethod.createWorkloadRole(...)` for this service (that is the identity the task logs in with).
   * @default - none: give `container`
   */
  readonly taskDefinition?: ecs.FargateTaskDefinition;
  /**
   * The app container of `taskDefinition`.
   * @default - the task definition's first essential container
   */
  readonly appContainerName?: string;
  /**
   * How many tasks run, spread over the service subnets' zones.
   * @default 2
   */
  readonly desiredCount?: number;
  /**
   * CPU units of the task, when the construct makes it (Fargate sizes).
   * @default 512
   */
  readonly cpu?: number;
  /**
   * Memory of the task in MiB, when the construct makes it: the app gets what the sidecar (256) and consul-ecs
   * (128) leave.
   * @default 1024
   */
  readonly memoryLimitMiB?: number;
  /**
   * The CPU architecture of the task, when the construct makes it.
   * @default ecs.CpuArchitecture.X86_64
   */
  readonly architecture?: ecs.CpuArchitecture;
  /**
   * The services it calls, each of which the model must allow.
   * @default - every service the model lets it call
   */
  readonly upstreams?: string[];
  /**
   * The consul-dataplane image (the sidecar's Envoy).
   * @default ConsulImage.dataplane()
   */
  readonly dataplaneImage?: ConsulImage;
  /**
   * The consul-ecs image (`mesh-init`, `health-sync`).
   * @default ConsulImage.consulEcs()
   */
  readonly consulEcsImage?: ConsulImage;
  /**
   * Accept an app image by tag rather than by digest (synth warns).
   * @default false
   */
  readonly allowUnpinnedImage?: boolean;
  /**
   * The KMS key of the log group.
   * @default - a new key
   */
  readonly logKey?: kms.IKey;
  /**
   * How long the containers' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Defines an ECS service (Fargate) that is a member of the mesh: the far end of the functions' calls.
 *
 * It adds what consul-ecs expects to the app's task, as HashiCorp's `mesh-task` module does: `mesh-init` (logs in
 * with the task role through the aws-iam auth method, registers the task and its sidecar, must succeed first),
 * `consul-dataplane` (Envoy: the sidecar, healthy before the app starts) and `health-sync` (reports the app's health,
 * deregisters and logs out when the task stops). `CONSUL_ECS_CONFIG_JSON` is rendered from the mesh model: the
 * service's name and port, its upstreams (`mesh.upstreamsOf(...)`, as local listeners with
 * `MESH_UPSTREAM_<SERVICE>_URL` for the app), the servers' address and the login. The servers' CA comes from
 * Secrets Manager as container secrets; no token exists for the service at all.
 *
 * Security groups through `connections`: the sidecar port (20000) admits only the mesh gateway's tasks and the
 * workloads the model lets call it; the tasks reach the servers on 8501 and 8503 and the VPC endpoints.
 *
 * @see https://developer.hashicorp.com/consul/docs/ecs/deploy/manual
 * @see https://developer.hashicorp.com/consul/docs/ecs/reference/configuration-reference
 */
export class MeshEcsService extends Resource implements IMeshWorkload {
  public readonly meshService: MeshService;
  public readonly sidecarPort = SIDECAR_PORT;
  /** The tasks' security group, default port the sidecar's (20000). */
  public readonly connections: ec2.Connections;
  /** The task definition (the app container, consul-ecs's three). */
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  /** The app container. */
  public readonly appContainer: ecs.ContainerDefinition;
  /** The Fargate service. */
  public readonly service: ecs.FargateService;
  /** The task role: the identity the tasks log in to Consul with. */
  public readonly taskRole: iam.IRole;
  /** The services it calls, with the variables the app reads. */
  public readonly upstreams: readonly WorkloadUpstream[];
  /** The log group of every container of the task. */
  public readonly logGroup: logs.ILogGroup;

  constructor(scope: Construct, id: string, props: MeshEcsServiceProps) {
    super(scope, id);
    this.checkProps(props);
    this.meshService = props.service;
    const resolved = claimService(this, props.service, ServicePlacement.ECS);
    this.upstreams = workloadUpstreams(this, props.service.mesh, resolved, props.upstreams);
    const desiredCount = props.desiredCount ?? 2;
    if (!Token.isUnresolved(desiredCount) && (!Number.isInteger(desiredCount) || desiredCount < 1)) {
      throwInvalid(this, 'desiredCount', desiredCount,
        'a whole number of tasks, at least 1 (2 or more survive the loss of a task or a zone)');
    }
    const images = this.bindImages(props);

    this.logGroup = this.createLogGroup(props, resolved.name);
    const logGroup = this.logGroup;
    const logging = (prefix: string): ecs.LogDriver => ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: prefix });
    const { taskDefinition, app, taskRole } = props.container !== undefined
      ? this.createTask(props, props.container, logging)
      : this.adoptTask(props, props.taskDefinition!);
    this.taskDefinition = taskDefinition;
    this.appContainer = app;
    this.taskRole = taskRole;
    this.configureApp(props);
    this.addSidecar(props, resolved, images, logging);

    const securityGroup = this.createSecurityGroup(props.network, resolved.name);
    this.connections = sidecarConnections(securityGroup);
    joinMesh(this, props, this.upstreams);
    this.service = this.createService(props, desiredCount, securityGroup);
    acknowledgeEcrPull(taskDefinition, [images.dataplane, images.consulEcs]);
  }

  /** The required props, the auth method of the service's mesh, and exactly one of container and taskDefinition. */
  private checkProps(props: MeshEcsServiceProps): void {
    const required = [
      ['service', props.service], ['cluster', props.cluster], ['authMethod', props.authMethod],
      ['gateway', props.gateway], ['network', props.network], ['ecsCluster', props.ecsCluster],
    ] as const;
    for (const [field, value] of required) {
      if (!value) {
        throwInvalid(this, field, value, `the ${field} the ECS service joins`);
      }
    }
    if ((props.container === undefined) === (props.taskDefinition === undefined)) {
      throwInvalid(this, props.container === undefined ? 'container' : 'taskDefinition', 'both or neither',
        'exactly one of container (the construct makes the task definition) and taskDefinition (your own)');
    }
    if (props.authMethod.mesh !== props.service.mesh) {
      throwInvalid(this, 'authMethod', props.authMethod.node.path, `the auth method of mesh `
        + `'${props.service.mesh.meshName}' (it binds mesh '${props.authMethod.mesh.meshName}', so no rule would let `
        + 'these tasks log in)');
    }
  }

  /** The sidecar's images; without a NAT path, each must be pullable through the endpoints. */
  private bindImages(props: MeshEcsServiceProps): { dataplane: ConsulImageConfig; consulEcs: ConsulImageConfig } {
    const serviceEgress = props.network.serviceEgress ?? false;
    const dataplane = (props.dataplaneImage ?? ConsulImage.dataplane()).bind(this, 'dataplaneImage');
    const consulEcs = (props.consulEcsImage ?? ConsulImage.consulEcs()).bind(this, 'consulEcsImage');
    for (const [field, image] of [['dataplaneImage', dataplane], ['consulEcsImage', consulEcs]] as const) {
      if (image.needsInternet && !serviceEgress) {
        throwInvalid(this, field, image.imageName, 'an image the service subnets can pull without a NAT path (they '
          + 'have none unless network.serviceEgress): one through a ConsulImageCache, e.g. '
          + 'cache.image(ConsulImage.consulEcs()), or in your own ECR');
      }
    }
    return { dataplane, consulEcs };
  }

  /** The log group of every container of the task, encrypted with the given key or a new one, kept. */
  private createLogGroup(props: MeshEcsServiceProps, serviceName: string): logs.LogGroup {
    const logKey = props.logKey ?? newMeshKey(this, 'LogKey',
      `Encrypts the logs of mesh service ${serviceName} (${this.node.path})`, RemovalPolicy.RETAIN);
    if (!props.logKey) {
      allowCloudWatchLogs(logKey);
    }
    return new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** The app image's pinning (a warning when allowed unpinned), and its upstreams' addresses in its environment. */
  private configureApp(props: MeshEcsServiceProps): void {
    const app = this.appContainer;
    const field = props.container !== undefined ? 'container.image' : 'taskDefinition';
    if (!checkPinned(this, field, app.imageName, props.allowUnpinnedImage ?? false)) {
      Annotations.of(this).addWarningV2('lambda-mesh:services:unpinnedImage', `allowUnpinnedImage: the app image `
        + `${app.imageName} is taken by tag: a new push under the same tag changes what runs, without a deployment `
        + 'that says so.');
    }
    // The app reads its upstreams' local addresses; the upstream listeners are the sidecar's.
    for (const u of this.upstreams) {
      app.addEnvironment(u.environmentVariable, u.url);
    }
  }

  /** consul-ecs's containers (mesh-init, the dataplane, health-sync); the app starts once its sidecar is healthy. */
  private addSidecar(
    props: MeshEcsServiceProps, resolved: ResolvedService,
    images: { dataplane: ConsulImageConfig; consulEcs: ConsulImageConfig }, logging: (prefix: string) => ecs.LogDriver,
  ): void {
    const app = this.appContainer;
    const containers = addConsulEcsContainers(this, {
      taskDefinition: this.taskDefinition,
      cluster: props.cluster,
      config: serviceConfig(
        {
          cluster: props.cluster,
          authMethodName: props.authMethod.authMethodName,
          serverIdHeaderValue: props.authMethod.serverIdHeaderValue,
          namespace: props.service.mesh.namespace,
          partition: props.service.mesh.partition,
        },
        {
          name: resolved.name,
          port: resolved.port,
          upstreams: this.upstreams.map((u) => ({ name: u.name, localPort: u.localPort })),
          // health-sync reports these containers' ECS health to Consul: unhealthy tasks get no traffic.
          healthSyncContainers: hasHealthCheck(app) ? [app.containerName] : [],
          meta: { 'lambda-mesh-placement': 'ecs' },
        },
      ),
      consulEcsImage: images.consulEcs,
      dataplaneImage: images.dataplane,
      logging,
      dataplaneEssential: false,
      dataplanePortMappings: [{ containerPort: SIDECAR_PORT, protocol: ecs.Protocol.TCP, name: 'mesh' }],
      dataplaneMemoryMiB: DATAPLANE_MEMORY_MIB,
    });
    // The app starts once its sidecar can carry its calls (its upstreams) and take its traffic.
    app.addContainerDependencies({
      container: containers.dataplane,
      condition: ecs.ContainerDependencyCondition.HEALTHY,
    });
  }

  /** The tasks' security group; its sidecar port is opened by the workload wiring. */
  private createSecurityGroup(network: IMeshNetwork, serviceName: string): ec2.SecurityGroup {
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: `lambda-mesh service ${serviceName}: its sidecar (${SIDECAR_PORT}) from the mesh gateway and its `
        + 'callers only',
      allowAllOutbound: false,
    });
    // ECR image layers come from S3 (the gateway endpoint, public addresses): HTTPS out.
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443),
      'HTTPS: image layers from S3 through the gateway endpoint');
    return securityGroup;
  }

  /** The Fargate service in the service subnets; it starts once the servers and the auth method are in place. */
  private createService(
    props: MeshEcsServiceProps, desiredCount: number, securityGroup: ec2.ISecurityGroup,
  ): ecs.FargateService {
    props.authMethod.addEcsCluster(props.ecsCluster);
    const service = new ecs.FargateService(this, 'Service', {
      cluster: props.ecsCluster,
      taskDefinition: this.taskDefinition,
      desiredCount,
      vpcSubnets: props.network.serviceSubnets,
      securityGroups: [securityGroup],
      assignPublicIp: false,
      platformVersion: ecs.FargatePlatformVersion.LATEST,
      circuitBreaker: { rollback: true },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      enableExecuteCommand: false,
      availabilityZoneRebalancing: ecs.AvailabilityZoneRebalancing.ENABLED,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    // Tasks log in and register at start: the servers, the binding rule and the cluster's node must exist.
    service.node.addDependency(props.cluster, props.authMethod);
    return service;
  }

  /** The construct's own task definition, sized for the sidecar, with the app container from `container`. */
  private createTask(
    props: MeshEcsServiceProps, container: ecs.ContainerDefinitionOptions, logging: (prefix: string) => ecs.LogDriver,
  ): { taskDefinition: ecs.FargateTaskDefinition; app: ecs.ContainerDefinition; taskRole: iam.Role } {
    const cpu = props.cpu ?? 512;
    const memoryLimitMiB = props.memoryLimitMiB ?? 1024;
    const appMemory = memoryLimitMiB - DATAPLANE_MEMORY_MIB - CONSUL_ECS_OVERHEAD_MIB;
    const tooSmall = !Number.isInteger(memoryLimitMiB) || appMemory < MIN_DATAPLANE_MEMORY_MIB;
    if (!Token.isUnresolved(memoryLimitMiB) && tooSmall) {
      const least = DATAPLANE_MEMORY_MIB + CONSUL_ECS_OVERHEAD_MIB + MIN_DATAPLANE_MEMORY_MIB;
      throwInvalid(this, 'memoryLimitMiB', memoryLimitMiB, `a Fargate task memory size in MiB of at least ${least}: `
        + `the sidecar takes ${DATAPLANE_MEMORY_MIB} and consul-ecs ${CONSUL_ECS_OVERHEAD_MIB}`);
    }
    const taskRole = props.authMethod.createWorkloadRole(this, 'TaskRole', {
      serviceName: props.service.name,
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    });
    const taskDefinition = new ecs.FargateTaskDefinition(this, 'TaskDefinition', {
      cpu,
      memoryLimitMiB,
      taskRole,
      runtimePlatform: {
        cpuArchitecture: props.architecture ?? ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
    });
    const app = taskDefinition.addContainer(APP_CONTAINER, {
      containerName: APP_CONTAINER,
      essential: true,
      readonlyRootFilesystem: true,
      memoryLimitMiB: Token.isUnresolved(memoryLimitMiB) ? undefined : appMemory,
      logging: logging(APP_CONTAINER),
      ...container,
    });
    for (const mapping of container.portMappings ?? []) {
      this.checkAppPort(`container.portMappings`, mapping.containerPort);
    }
    return { taskDefinition, app, taskRole };
  }

  /** The user's task definition: its app container found and its task role checked (once aspects ran, the tags). */
  private adoptTask(
    props: MeshEcsServiceProps, taskDefinition: ecs.FargateTaskDefinition,
  ): { taskDefinition: ecs.FargateTaskDefinition; app: ecs.ContainerDefinition; taskRole: iam.IRole } {
    const name = props.appContainerName;
    const app = name !== undefined ? taskDefinition.findContainer(name) : taskDefinition.defaultContainer;
    if (!app) {
      throwInvalid(this, name !== undefined ? 'appContainerName' : 'taskDefinition', name ?? taskDefinition.node.path,
        'a task definition with its app container added (and appContainerName naming it, if not the first essential '
        + 'one)');
    }
    if (!app.essential) {
      throwInvalid(this, 'appContainerName', app.containerName,
        'an essential container: the task must stop when the app stops');
    }
    const role = taskDefinition.taskRole;
    const cfnRole = role.node.defaultChild as iam.CfnRole | undefined;
    if (!(role instanceof iam.Role) || cfnRole === undefined) {
      throwInvalid(this, 'taskDefinition.taskRole', role.node.path, 'a task role made with '
        + `authMethod.createWorkloadRole(scope, id, { serviceName: '${props.service.name}', ... }) (the identity the `
        + 'tasks log in with)');
    }
    // Tags are applied by aspects, so the role is checked once they ran.
    this.node.addValidation({
      validate: () => {
        const tags = cfnRole.tags.tagValues();
        const tagged = tags[WORKLOAD_ROLE_TAGS.SERVICE_NAME];
        if (cfnRole.path !== props.authMethod.rolePath || tagged !== props.service.name) {
          return [`${this.node.path}: taskDefinition.taskRole: given ${role.node.path} (path `
            + `${JSON.stringify(cfnRole.path)}, ${WORKLOAD_ROLE_TAGS.SERVICE_NAME}=${JSON.stringify(tagged)}), `
            + 'expected a role made with authMethod.createWorkloadRole(scope, id, { serviceName: '
            + `'${props.service.name}' }): under ${props.authMethod.rolePath}, tagged with the service`];
        }
        return [];
      },
    });
    return { taskDefinition, app, taskRole: role };
  }

  private checkAppPort(field: string, port: number): void {
    if (!Token.isUnresolved(port) && (port === SIDECAR_PORT || port === CONSUL_ECS.ENVOY_READY_PORT)) {
      throwInvalid(this, field, port, `a port other than ${SIDECAR_PORT} and ${CONSUL_ECS.ENVOY_READY_PORT}, which `
        + 'the sidecar takes in the task\'s network namespace');
    }
  }
}

/**
 * Whether the container has an ECS health check (health-sync can only report containers that do). The image was
 * bound when the container was made, so rendering its definition has no side effect.
 */
function hasHealthCheck(container: ecs.ContainerDefinition): boolean {
  return container.renderContainerDefinition().healthCheck !== undefined;
}
