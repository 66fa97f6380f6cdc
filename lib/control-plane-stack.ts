import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { type Construct } from 'constructs';
import { ConsulIamAuthMethod, ConsulImage, ConsulImageCache, ConsulServerCluster, MeshGateway } from '../constructs/consul';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';
import { ConfigError, type ControlPlaneConfig, withConfigField } from './config';

/**
 * Properties of the {@link ControlPlaneStack}.
 */
export interface ControlPlaneStackProps extends StackProps {
  /** The mesh model. */
  readonly mesh: IMesh;
  /** The network, from the network stack. */
  readonly network: IMeshNetwork;
  /** The control plane section of the environment config. */
  readonly config: ControlPlaneConfig;
  /** Where the config came from, for error messages. */
  readonly configSource: string;
}

/** Construct props, by the config field that sets them. */
const FIELDS: Record<string, string> = {
  size: 'controlPlane.servers',
  devMode: 'controlPlane.devMode',
  consulVersion: 'controlPlane.consulVersion',
  instanceType: 'controlPlane.instanceType',
  desiredCount: 'controlPlane.gatewayTasks',
};

/** The Consul images every ECS task of the environment runs, through the environment's pull-through cache. */
export interface EnvironmentConsulImages {
  readonly dataplane: ConsulImage;
  readonly consulEcs: ConsulImage;
  /** For `consul login` on EC2 instances, and consul-k8s's `global.image`. */
  readonly consul: ConsulImage;
  /** consul-k8s-control-plane, for services placed on EKS. */
  readonly consulK8sControlPlane: ConsulImage;
}

/**
 * The environment's Consul control plane: the server cluster, the workloads' aws-iam auth method, the ECS cluster
 * of the mesh gateway and the ECS services, and the mesh gateway. In deploy order: servers, auth method, gateway.
 */
export class ControlPlaneStack extends Stack {
  public readonly cluster: ConsulServerCluster;
  public readonly gateway: MeshGateway;
  /** The aws-iam auth method the gateway and the ECS and EC2 services log in with. */
  public readonly authMethod: ConsulIamAuthMethod;
  /** The ECS cluster of the mesh gateway and the ECS services. */
  public readonly ecsCluster: ecs.Cluster;
  /** The ECR pull-through cache of ECR Public, where isolated subnets get HashiCorp's images from. */
  public readonly imageCache: ConsulImageCache;
  /** The consul-dataplane and consul-ecs images, through the cache. */
  public readonly images: EnvironmentConsulImages;

  constructor(scope: Construct, id: string, props: ControlPlaneStackProps) {
    super(scope, id, props);
    const c = props.config;
    if (!props.network.serverEgress) {
      // The environment installs Consul from HashiCorp's repository; an S3 mirror (ConsulPackage.fromBucket) and
      // private gateway images are construct options the config does not offer yet.
      throw new ConfigError({
        file: props.configSource,
        field: 'network.serverEgress',
        given: 'false',
        expected: 'true (or leave it out): the environment installs Consul from HashiCorp\'s repository, and the Consul servers verify IAM logins with IAM and STS; without egress, build the control plane from the constructs with ConsulPackage.fromBucket',
      });
    }
    // A bad value from the config: name the config field, not only the construct prop.
    const parts = withConfigField(props.configSource, (e) => FIELDS[e.field], () => {
      const cluster = new ConsulServerCluster(this, 'Consul', {
        mesh: props.mesh,
        network: props.network,
        ...(c.servers !== undefined ? { size: c.servers } : {}),
        ...(c.devMode !== undefined ? { devMode: c.devMode && (c.servers ?? 3) === 1 } : {}),
        ...(c.consulVersion !== undefined ? { consulVersion: c.consulVersion } : {}),
        ...(c.instanceType !== undefined ? { instanceType: new ec2.InstanceType(c.instanceType) } : {}),
      });
      const imageCache = new ConsulImageCache(this, 'ImageCache');
      const images = { dataplane: imageCache.image(ConsulImage.dataplane()), consulEcs: imageCache.image(ConsulImage.consulEcs()), consul: imageCache.image(ConsulImage.consul()), consulK8sControlPlane: imageCache.image(ConsulImage.consulK8sControlPlane()) };
      const ecsCluster = new ecs.Cluster(this, 'EcsCluster', { vpc: props.network.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
      const authMethod = new ConsulIamAuthMethod(this, 'AuthMethod', { mesh: props.mesh, cluster, network: props.network, ecsClusters: [ecsCluster] });
      const gateway = new MeshGateway(this, 'MeshGateway', {
        cluster,
        network: props.network,
        authMethod,
        ecsCluster,
        dataplaneImage: images.dataplane,
        consulEcsImage: images.consulEcs,
        ...(c.gatewayTasks !== undefined ? { desiredCount: c.gatewayTasks } : {}),
        ...(c.devMode !== undefined ? { devMode: c.devMode } : {}),
      });
      // The gateway's tasks pull their images through the cache: its rule must exist before the first task starts.
      gateway.node.addDependency(imageCache);
      return { cluster, gateway, authMethod, ecsCluster, imageCache, images };
    });
    this.cluster = parts.cluster;
    this.gateway = parts.gateway;
    this.authMethod = parts.authMethod;
    this.ecsCluster = parts.ecsCluster;
    this.imageCache = parts.imageCache;
    this.images = parts.images;
  }
}
