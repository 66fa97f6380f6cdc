import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { type Construct } from 'constructs';
import { ConsulServerCluster, MeshGateway } from '../constructs/consul';
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

/**
 * The environment's Consul control plane: the server cluster and the mesh gateway.
 */
export class ControlPlaneStack extends Stack {
  public readonly cluster: ConsulServerCluster;
  public readonly gateway: MeshGateway;

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
        expected: 'true (or leave it out): the environment installs Consul from HashiCorp\'s repository and pulls the gateway from ECR Public; without egress, build the control plane from the constructs with ConsulPackage.fromBucket and MeshGatewayImage.fromEcrRepository',
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
      const gateway = new MeshGateway(this, 'MeshGateway', {
        cluster,
        network: props.network,
        ...(c.gatewayTasks !== undefined ? { desiredCount: c.gatewayTasks } : {}),
        ...(c.devMode !== undefined ? { devMode: c.devMode } : {}),
      });
      return { cluster, gateway };
    });
    this.cluster = parts.cluster;
    this.gateway = parts.gateway;
  }
}
