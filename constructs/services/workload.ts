import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type { IConstruct } from 'constructs';
import type { MeshService } from '../mesh';

/**
 * A construct that runs a mesh service's instances (ECS tasks, EC2 instances) with a sidecar: what other
 * workloads find through the mesh to open their sidecar ports to each other.
 */
export interface IMeshWorkload extends IConstruct, ec2.IConnectable {
  /** The mesh service it runs. */
  readonly meshService: MeshService;
  /** The port its sidecars accept mesh connections on. */
  readonly sidecarPort: number;
}

