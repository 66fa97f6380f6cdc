import { Resource } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { type Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { type IMeshGateway } from '../consul/mesh-gateway';
import { type IConsulCluster } from '../consul/types';
import { type MeshService, ServicePlacement } from '../mesh';
import { type IMeshNetwork } from '../network';
import { claimService, joinMesh, SIDECAR_PORT, type WorkloadUpstream, workloadUpstreams } from './private/workload';
import { type IMeshWorkload } from './workload';

/**
 * Properties of a {@link MeshExternalService}.
 */
export interface MeshExternalServiceProps {
  /** The mesh service its owner runs and registers (`mesh.service('log-service')`); its placement must be EXTERNAL. */
  readonly service: MeshService;
  /** The security group of the service's instances (their sidecars listen on `sidecarPort`). */
  readonly securityGroup: ec2.ISecurityGroup;
  /** The Consul servers the owner's sidecars register with. */
  readonly cluster: IConsulCluster;
  /** The mesh gateway, which forwards mesh functions' calls to the sidecars. */
  readonly gateway: IMeshGateway;
  /** The mesh network (the VPC endpoints). */
  readonly network: IMeshNetwork;
  /**
   * The port the owner's sidecars accept mesh connections on.
   * @default 20000 (consul-dataplane's)
   */
  readonly sidecarPort?: number;
}

/**
 * Defines the lambda-mesh side of a service that its owner runs and registers in Consul outside lambda-mesh: the
 * same security-group wiring as the ECS and EC2 services (its sidecar port admits the mesh gateway and the
 * workloads the model lets call it; it reaches the Consul servers and the workloads it calls). Its identity is the
 * binding rule the aws-iam auth method has for every external service: its owner creates the instances' IAM role
 * with `authMethod.createWorkloadRole(...)` (or under the auth method's role path, tagged
 * `consul.hashicorp.com.service-name=<service>`, allowed `iam:GetRole` on itself) and logs in with
 * `consul login -type aws-iam -method <authMethod.authMethodName> -aws-include-entity`.
 *
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/aws-iam
 */
export class MeshExternalService extends Resource implements IMeshWorkload {
  public readonly meshService: MeshService;
  public readonly sidecarPort: number;
  /** The owner's security group, default port the sidecar's. */
  public readonly connections: ec2.Connections;
  /** The services it may call. */
  public readonly upstreams: readonly WorkloadUpstream[];

  constructor(scope: Construct, id: string, props: MeshExternalServiceProps) {
    super(scope, id);
    for (const [field, value] of [['service', props.service], ['securityGroup', props.securityGroup], ['cluster', props.cluster], ['gateway', props.gateway], ['network', props.network]] as const) {
      if (!value) {
        throwInvalid(this, field, value, `the ${field} of the external service`);
      }
    }
    this.sidecarPort = props.sidecarPort ?? SIDECAR_PORT;
    if (!Number.isInteger(this.sidecarPort) || this.sidecarPort < 1 || this.sidecarPort > 65535) {
      throwInvalid(this, 'sidecarPort', this.sidecarPort, 'a port from 1 to 65535');
    }
    this.meshService = props.service;
    const resolved = claimService(this, props.service, ServicePlacement.EXTERNAL);
    this.upstreams = workloadUpstreams(this, props.service.mesh, resolved, undefined);
    this.connections = new ec2.Connections({ securityGroups: [props.securityGroup], defaultPort: ec2.Port.tcp(this.sidecarPort) });
    joinMesh(this, props, this.upstreams);
  }
}
