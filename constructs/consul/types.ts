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
  /** The mesh gateway's token: `mesh:write` and its own service. */
  MESH_GATEWAY = 'mesh-gateway',
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
 * The versions lambda-mesh installs unless told otherwise: the newest releases of the Consul 1.21 line and
 * of its matching consul-dataplane line that HashiCorp publishes as community edition images.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/dataplane#supported-consul-versions
 */
export class ConsulDefaults {
  /** Consul (servers and the gateway's registration container). */
  public static readonly CONSUL_VERSION = '1.21.5';
  /** consul-dataplane (the mesh gateway's Envoy). */
  public static readonly DATAPLANE_VERSION = '1.8.10';
}
