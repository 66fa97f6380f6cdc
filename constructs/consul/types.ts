import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { IConstruct } from 'constructs';

/**
 * The scoped ACL tokens a Consul server cluster issues for the other parts of lambda-mesh. Each one is
 * generated at deploy time, stored in its own Secrets Manager secret as `{"AccessorID","SecretID"}`, and bound by
 * the servers to a policy that allows only what that part does.
 */
export enum ConsulTokenRole {
  /** Writes `service-intentions` and `service-defaults` config entries (intentions as code). */
  INTENTIONS_WRITER = 'intentions-writer',
  /** Registers function identities as external services and fetches their leaf certificates. */
  IDENTITY_REGISTRAR = 'identity-registrar',
  /**
   * Keeps the workloads' aws-iam auth method: the method, its binding rules, the mesh gateway's role and policy
   * (`acl:write`), and the synthetic catalog nodes ECS tasks and EC2 instances register under. Workloads
   * themselves (the mesh gateway, ECS and EC2 services) hold no static token: they log in with their IAM role.
   */
  WORKLOAD_IDENTITY = 'workload-identity',
  /**
   * The token consul-k8s's `server-acl-init` job uses on an EKS cluster (its "bootstrap token"): `acl:write`,
   * which it needs to create the Kubernetes auth method, and `agent:read`, to read the datacenter.
   */
  KUBERNETES_ACL_INIT = 'kubernetes-acl-init',
}

/**
 * A Consul server cluster: what other lambda-mesh constructs rely on.
 */
export interface IConsulCluster extends IConstruct, ec2.IConnectable {
  /** The Consul datacenter. */
  readonly datacenter: string;
  /**
   * The DNS name clients use for the servers (an internal load balancer): HTTPS on
   * {@link ConsulPorts.HTTPS}, gRPC with TLS on {@link ConsulPorts.GRPC_TLS}.
   */
  readonly endpointAddress: string;
  /** The secret holding the CA certificate of the servers' TLS, as `{"CertificatePem"}`. */
  readonly caCertificateSecret: secretsmanager.ISecret;
  /** The KMS key that encrypts the cluster's secrets. */
  readonly secretsKey: kms.IKey;
  /** The secret of a scoped ACL token, as `{"AccessorID","SecretID"}`. */
  tokenSecret(role: ConsulTokenRole): secretsmanager.ISecret;
}

/**
 * The ports of a Consul server cluster. HTTP (8500) and plain gRPC (8502) are disabled.
 *
 * @see https://developer.hashicorp.com/consul/docs/install/ports
 */
export class ConsulPorts {
  /** Server RPC, among servers (TCP). */
  public static readonly SERVER_RPC = 8300;
  /** LAN gossip (Serf), among agents (TCP and UDP). */
  public static readonly SERF_LAN = 8301;
  /** The HTTPS API. */
  public static readonly HTTPS = 8501;
  /** gRPC with TLS (xDS for dataplanes and gateways). */
  public static readonly GRPC_TLS = 8503;
  /** The mesh gateway's public listener. */
  public static readonly MESH_GATEWAY = 8443;
}

/**
 * The versions lambda-mesh installs unless told otherwise: the newest line that every Consul piece it uses
 * supports together (docs/adr/0011-consul-2-0-line-and-upgrade.md). Consul 2.0.3 on the servers; consul-dataplane 2.0.3 (Envoy
 * 1.38), the line HashiCorp supports with Consul 2.0 servers and the one consul-k8s 2.0.3 ships; consul-ecs 0.10.0
 * (mesh-init, health-sync), tested by HashiCorp against Consul 2.0.1 and 1.22.7; the consul-k8s Helm chart 2.0.3,
 * which ships Consul 2.0.3 and consul-dataplane 2.0.3. Consul 2.1 is out, but consul-ecs and consul-k8s do not
 * support it yet.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/dataplane#supported-consul-versions
 * @see https://github.com/hashicorp/consul-ecs/blob/main/CHANGELOG.md
 * @see https://github.com/hashicorp/consul-k8s/blob/main/CHANGELOG.md
 */
export class ConsulDefaults {
  /** Consul on the servers (and the `consul` CLI on EC2 mesh services). */
  public static readonly CONSUL_VERSION = '2.0.3';
  /** consul-dataplane: Envoy of the mesh gateway and of every service's sidecar (ECS, EC2, EKS). */
  public static readonly DATAPLANE_VERSION = '2.0.3';
  /** consul-ecs: the `mesh-init` and `health-sync` containers of ECS tasks. */
  public static readonly CONSUL_ECS_VERSION = '0.10.0';
  /** The consul-k8s Helm chart (and its `consul-k8s-control-plane` image) on EKS. */
  public static readonly CONSUL_K8S_VERSION = '2.0.3';
}
