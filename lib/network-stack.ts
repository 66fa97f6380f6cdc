import { Stack, type StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { type Construct } from 'constructs';
import { MeshNetwork } from '../constructs/network';
import { type NetworkConfig } from './config';

/**
 * Properties of the {@link NetworkStack}.
 */
export interface NetworkStackProps extends StackProps {
  /** The network section of the environment config. */
  readonly network: NetworkConfig;
}

/**
 * The environment's network: the mesh VPC, its endpoints and flow logs.
 */
export class NetworkStack extends Stack {
  public readonly network: MeshNetwork;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);
    this.network = new MeshNetwork(this, 'Network', {
      ipAddresses: ec2.IpAddresses.cidr(props.network.cidr ?? '10.0.0.0/16'),
      ...(props.network.availabilityZones ? { availabilityZones: props.network.availabilityZones } : { maxAzs: props.network.maxAzs ?? 3 }),
      ...(props.network.serverEgress !== undefined ? { serverEgress: props.network.serverEgress } : {}),
      ...(props.network.serviceEgress !== undefined ? { serviceEgress: props.network.serviceEgress } : {}),
    });
  }
}
