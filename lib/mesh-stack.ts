import { Stack, type StackProps } from 'aws-cdk-lib';
import { type Construct } from 'constructs';
import { type IConsulCluster } from '../constructs/consul';
import { IdentityRegistrar, MeshIntentions } from '../constructs/intentions';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';

/**
 * Properties of the {@link MeshStack}.
 */
export interface MeshStackProps extends StackProps {
  readonly mesh: IMesh;
  readonly network: IMeshNetwork;
  readonly cluster: IConsulCluster;
}

/**
 * The environment's mesh policy and identities, applied to Consul at deploy time: the function identities
 * (registered, with certificates in SSM and a rotation schedule) and the intentions rendered from the mesh model.
 */
export class MeshStack extends Stack {
  public readonly identities: IdentityRegistrar;
  public readonly intentions: MeshIntentions;

  constructor(scope: Construct, id: string, props: MeshStackProps) {
    super(scope, id, props);
    this.identities = new IdentityRegistrar(this, 'Identities', { mesh: props.mesh, cluster: props.cluster, network: props.network });
    this.intentions = new MeshIntentions(this, 'Intentions', {
      mesh: props.mesh,
      cluster: props.cluster,
      network: props.network,
      // One key for the mesh's bundles and its functions' logs.
      key: this.identities.key,
    });
  }
}
