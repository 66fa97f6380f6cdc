import { Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { type Construct } from 'constructs';
import { type IConsulAuthMethod, ConsulImage, type IConsulCluster, type IMeshGateway } from '../constructs/consul';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';
import { MeshEc2Service, MeshEcsService, MeshExternalService } from '../constructs/services';
import { ConfigError, resolveBuildPath, type ServiceConfig, withConfigField } from './config';
import { type EnvironmentConsulImages } from './control-plane-stack';
import { sampleServiceContainer, sampleServiceContext } from './sample-services/image';

/**
 * Properties of the {@link ServicesStack}.
 */
export interface ServicesStackProps extends StackProps {
  readonly mesh: IMesh;
  readonly network: IMeshNetwork;
  readonly cluster: IConsulCluster;
  readonly authMethod: IConsulAuthMethod;
  readonly gateway: IMeshGateway;
  readonly ecsCluster: ecs.ICluster;
  readonly images: EnvironmentConsulImages;
  /** The services section of the environment config. */
  readonly services: readonly ServiceConfig[];
  /** Where the config came from, for error messages and relative build paths. */
  readonly configSource: string;
}

/** The user (UID) that image and build workloads run as: not root, whatever the image's USER says. */
const WORKLOAD_USER = '1000';

/** Construct props of MeshEcsService, by the config field (under `services[i]`) that sets them. */
const FIELDS: Readonly<Record<string, string>> = {
  'desiredCount': 'workload.count',
  'count': 'workload.count',
  'image': 'workload.image',
  'healthCheckPath': 'workload.healthCheck.path',
  'cpu': 'workload.cpu',
  'memoryLimitMiB': 'workload.memoryMiB',
  'container.image': 'workload.image',
  'service.port': 'port',
};

/**
 * The environment's backend services on ECS (Fargate), each a member of the mesh: a {@link MeshEcsService} per
 * service with placement `ecs`, running its sample backend, its image or its build. Deployed after the control plane
 * (servers, auth method, gateway) and before the model functions, which call them.
 */
export class ServicesStack extends Stack {
  /** The ECS services, by mesh service name. */
  public readonly ecsServices: ReadonlyMap<string, MeshEcsService>;
  /** The EC2 services, by mesh service name. */
  public readonly ec2Services: ReadonlyMap<string, MeshEc2Service>;

  /**
   * Whether `services` give this stack anything to hold: a service placed on ECS or EC2, or an external one whose
   * security group it opens. Services on EKS are in the eks stack; external ones without a group have only their
   * binding rule, in the control plane's auth method.
   */
  public static hostsAny(services: readonly ServiceConfig[]): boolean {
    return services.some((s) => s.placement === 'ecs' || s.placement === 'ec2' || (s.placement === 'external' && s.securityGroupId !== undefined));
  }

  constructor(scope: Construct, id: string, props: ServicesStackProps) {
    super(scope, id, props);
    const ecsServices = new Map<string, MeshEcsService>();
    const ec2Services = new Map<string, MeshEc2Service>();
    props.services.forEach((s, i) => {
      const at = `services[${i}]`;
      const constructId = s.name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
      if (s.placement === 'ec2') {
        ec2Services.set(s.name, this.ec2Service(s, at, constructId, props));
      }
      if (s.placement === 'external' && s.securityGroupId !== undefined) {
        const securityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, `${constructId}SecurityGroup`, s.securityGroupId);
        withConfigField(props.configSource, (e) => mapField(at, e.field, props.services), () => new MeshExternalService(this, constructId, {
          service: props.mesh.service(s.name), securityGroup, cluster: props.cluster, gateway: props.gateway, network: props.network,
        }));
      }
      if (s.placement !== 'ecs') {
        return;
      }
      const w = s.workload!;
      const architecture = ecs.CpuArchitecture.X86_64;
      const service = withConfigField(props.configSource, (e) => mapField(at, e.field, props.services), () => new MeshEcsService(this, constructId, {
        service: props.mesh.service(s.name),
        cluster: props.cluster,
        authMethod: props.authMethod,
        gateway: props.gateway,
        network: props.network,
        ecsCluster: props.ecsCluster,
        container: this.container(s, at, props, architecture),
        architecture,
        dataplaneImage: props.images.dataplane,
        consulEcsImage: props.images.consulEcs,
        ...(w.count !== undefined ? { desiredCount: w.count } : {}),
        cpu: w.cpu ?? 256,
        memoryLimitMiB: w.memoryMiB ?? 1024,
        ...(w.upstreams !== undefined ? { upstreams: w.upstreams } : {}),
      }));
      ecsServices.set(s.name, service);
    });
    this.ecsServices = ecsServices;
    this.ec2Services = ec2Services;
  }

  /** A service with placement ec2: its image built for the instances' architecture, run by a MeshEc2Service. */
  private ec2Service(s: ServiceConfig, at: string, constructId: string, props: ServicesStackProps): MeshEc2Service {
    const w = s.workload!;
    const instanceType = new ec2.InstanceType(w.instanceType ?? 't4g.small');
    const platform = instanceType.architecture === ec2.InstanceArchitecture.ARM_64 ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64;
    const asset = (directory: string): ConsulImage => {
      const built = new DockerImageAsset(this, `${constructId}Image`, { directory, platform });
      return ConsulImage.fromEcrRepository(built.repository, built.imageTag);
    };
    let image: ConsulImage;
    if (w.sample !== undefined) {
      image = asset(sampleServiceContext());
    } else if (w.build !== undefined) {
      image = asset(resolveBuildPath(props.configSource, w.build));
    } else {
      const [repository, digest] = w.image!.split('@');
      image = ConsulImage.fromDigest(repository, digest);
    }
    const healthCommand = w.healthCheck?.command ?? (w.sample !== undefined ? ['node', '/app/server.js', 'healthcheck', w.sample] : undefined);
    return withConfigField(props.configSource, (e) => mapField(at, e.field, props.services), () => new MeshEc2Service(this, constructId, {
      service: props.mesh.service(s.name),
      cluster: props.cluster,
      authMethod: props.authMethod,
      gateway: props.gateway,
      network: props.network,
      image,
      ...(w.sample !== undefined ? { command: [w.sample] } : {}),
      instanceType,
      ...(w.count !== undefined ? { count: w.count } : {}),
      ...(w.healthCheck?.path !== undefined ? { healthCheckPath: w.healthCheck.path } : {}),
      ...(healthCommand !== undefined && w.healthCheck?.path === undefined ? { healthCheckCommand: healthCommand } : {}),
      ...(w.upstreams !== undefined ? { upstreams: w.upstreams } : {}),
      dataplaneImage: props.images.dataplane,
      consulImage: props.images.consul,
    }));
  }

  /** The app container of a config service: its sample backend, its pinned image or its build. */
  private container(s: ServiceConfig, at: string, props: ServicesStackProps, architecture: ecs.CpuArchitecture): ecs.ContainerDefinitionOptions {
    const w = s.workload!;
    const healthCheck: ecs.HealthCheck | undefined = w.healthCheck?.command !== undefined
      ? { command: ['CMD', ...w.healthCheck.command], interval: Duration.seconds(10), timeout: Duration.seconds(5), retries: 3, startPeriod: Duration.seconds(15) }
      : undefined;
    // The config names no user for an image or a build: run it as an unprivileged one rather than as the image's
    // USER, which may be root (cfn-guard's CT.ECS.PR.3 fails synth on a container without a non-root user).
    const common = { environment: { PORT: String(s.port) }, user: WORKLOAD_USER, ...(healthCheck ? { healthCheck } : {}) };
    if (w.sample !== undefined) {
      const sample = sampleServiceContainer(w.sample, s.port, architecture);
      return { ...sample, ...(healthCheck ? { healthCheck } : {}) };
    }
    if (w.build !== undefined) {
      const platform = architecture === ecs.CpuArchitecture.ARM64 ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64;
      return { image: ecs.ContainerImage.fromAsset(resolveBuildPath(props.configSource, w.build), { platform }), ...common };
    }
    const [repository, digest] = w.image!.split('@');
    const image = withConfigField(props.configSource, `${at}.workload.image`, () => ConsulImage.fromDigest(repository, digest).bind(this, `${at}.workload.image`));
    if (image.needsInternet && !props.network.serviceEgress) {
      throw new ConfigError({
        file: props.configSource,
        field: `${at}.workload.image`,
        given: JSON.stringify(w.image),
        expected: "an image in this account's ECR (the service subnets have no internet route unless network.serviceEgress is true), e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/feature-store@sha256:...",
      });
    }
    return { image: image.containerImage, ...common };
  }
}

/**
 * The config field of a workload construct's prop error (MeshEcsService, MeshEc2Service, MeshExternalService; the
 * upstream fields of MeshKubernetesService too), under the config entry of the service.
 */
export function mapField(at: string, field: string, services: readonly ServiceConfig[]): string {
  const known = FIELDS[field];
  if (known !== undefined) {
    return `${at}.${known}`;
  }
  const upstream = /^upstreams\[(\d+)\]$/.exec(field);
  if (upstream !== null) {
    return `${at}.workload.upstreams[${upstream[1]}]`;
  }
  // An upstream's local port clashes with this service's port or the sidecar's: the upstream's entry sets it.
  const local = /^upstreams\((.+)\)\.localPort$/.exec(field);
  const j = local !== null ? services.findIndex((o) => o.name === local[1]) : -1;
  return j >= 0 ? `services[${j}].localPort` : `${at} (${field})`;
}
