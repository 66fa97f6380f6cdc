import { Aws, Duration, Stack } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { type Construct } from 'constructs';
import { Acknowledgements } from '../../core/validation';
import { type ConsulImageConfig } from '../image';
import { ConsulPorts, type IConsulCluster } from '../types';

/**
 * What consul-ecs (0.10) expects of an ECS task that joins the mesh, after HashiCorp's own `mesh-task` and
 * `gateway-task` Terraform modules: container names, users, the shared volume and the ports.
 *
 * @see https://developer.hashicorp.com/consul/docs/ecs/reference/configuration-reference
 * @see https://github.com/hashicorp/terraform-aws-consul-ecs/tree/main/modules/mesh-task
 */
export const CONSUL_ECS = {
  /** Where mesh-init leaves the dataplane's config, the CA file and a copy of the consul-ecs binary. */
  BOOTSTRAP_DIR: '/consul',
  /** The task volume mounted at {@link CONSUL_ECS.BOOTSTRAP_DIR}; the consul-ecs image declares it (owned by its user). */
  VOLUME: 'consul_data',
  MESH_INIT: 'consul-ecs-mesh-init',
  DATAPLANE: 'consul-dataplane',
  HEALTH_SYNC: 'consul-ecs-health-sync',
  /** The non-root user of the consul-ecs image, which owns `/consul` in it. */
  CONSUL_ECS_USER: 'consul-ecs',
  /** The dataplane's and health-sync's users in HashiCorp's modules. */
  DATAPLANE_USER: '5995',
  HEALTH_SYNC_USER: '5996',
  /** The sidecar's public listener: where other sidecars and the mesh gateway connect (mTLS). */
  PUBLIC_LISTENER_PORT: 20000,
  /** Envoy's readiness listener, on 127.0.0.1. */
  ENVOY_READY_PORT: 22000,
  /** Where the config reaches consul-ecs. */
  CONFIG_ENV: 'CONSUL_ECS_CONFIG_JSON',
  /** The servers' CA, from Secrets Manager: consul-ecs reads these in preference to a file. */
  HTTPS_CA_ENV: 'CONSUL_HTTPS_CACERT_PEM',
  GRPC_CA_ENV: 'CONSUL_GRPC_CACERT_PEM',
} as const;

/** `CONSUL_ECS_CONFIG_JSON`, as much of its schema (consul-ecs `config/schema.json`) as lambda-mesh writes. */
export interface ConsulEcsConfig {
  readonly logLevel: 'INFO';
  readonly bootstrapDir: string;
  readonly consulServers: {
    readonly hosts: string;
    readonly skipServerWatch: boolean;
    readonly defaults: { readonly tls: boolean; readonly tlsServerName: string };
    readonly http: { readonly port: number; readonly https: boolean };
    readonly grpc: { readonly port: number };
  };
  readonly consulLogin: {
    readonly enabled: boolean;
    readonly method: string;
    readonly includeEntity: boolean;
    readonly datacenter: string;
    readonly region: string;
    readonly serverIdHeaderValue: string;
  };
  readonly service?: {
    readonly name: string;
    readonly port: number;
    readonly tags: readonly string[];
    readonly meta: Readonly<Record<string, string>>;
    readonly namespace?: string;
    readonly partition?: string;
  };
  readonly proxy?: {
    readonly publicListenerPort: number;
    readonly healthCheckPort: number;
    readonly localServiceAddress: string;
    readonly upstreams: ReadonlyArray<{ readonly destinationName: string; readonly localBindPort: number; readonly destinationNamespace?: string; readonly destinationPartition?: string }>;
  };
  readonly gateway?: {
    readonly kind: 'mesh-gateway';
    readonly name: string;
    readonly lanAddress: { readonly port: number };
    readonly wanAddress: { readonly address: string; readonly port: number };
    readonly meta: Readonly<Record<string, string>>;
    readonly partition?: string;
  };
  readonly healthSyncContainers: readonly string[];
  readonly transparentProxy: { readonly enabled: false };
}

/** What every consul-ecs task of a mesh shares: the servers and the login. */
export interface ConsulEcsCommon {
  readonly cluster: IConsulCluster;
  /** The aws-iam auth method's name. */
  readonly authMethodName: string;
  /** `server.<dc>.consul`. */
  readonly serverIdHeaderValue: string;
  /** The mesh's Consul namespace and partition (`default` on Community Edition, and then left out). */
  readonly namespace: string;
  readonly partition: string;
}

/** The part of the config for an ECS service (its sidecar). */
export interface ConsulEcsServiceInput {
  readonly name: string;
  readonly port: number;
  readonly upstreams: ReadonlyArray<{ readonly name: string; readonly localPort: number }>;
  /** The app containers whose health checks health-sync reports to Consul. */
  readonly healthSyncContainers: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
}

/** The part of the config for a mesh gateway task. */
export interface ConsulEcsGatewayInput {
  readonly name: string;
  readonly port: number;
  /** Where clients outside the task reach the gateway (its load balancer). */
  readonly wanAddress: string;
  readonly meta: Readonly<Record<string, string>>;
}

function commonConfig(c: ConsulEcsCommon): Pick<ConsulEcsConfig, 'logLevel' | 'bootstrapDir' | 'consulServers' | 'consulLogin' | 'transparentProxy'> {
  const serverName = `server.${c.cluster.datacenter}.consul`;
  return {
    logLevel: 'INFO',
    bootstrapDir: CONSUL_ECS.BOOTSTRAP_DIR,
    consulServers: {
      hosts: c.cluster.endpointAddress,
      // The servers sit behind a load balancer: do not switch to the addresses they announce.
      skipServerWatch: true,
      // The load balancer's name is not in the servers' certificate; verify the name they present.
      defaults: { tls: true, tlsServerName: serverName },
      http: { port: ConsulPorts.HTTPS, https: true },
      grpc: { port: ConsulPorts.GRPC_TLS },
    },
    consulLogin: {
      enabled: true,
      method: c.authMethodName,
      // Consul reads the role's tags (the binding rules select on them) with the signed GetRole request.
      includeEntity: true,
      datacenter: c.cluster.datacenter,
      region: Aws.REGION,
      serverIdHeaderValue: c.serverIdHeaderValue,
    },
    // Fargate cannot redirect traffic (no NET_ADMIN): upstreams are explicit local listeners.
    transparentProxy: { enabled: false },
  };
}

/** Namespace and partition for Consul Enterprise; Community Edition knows neither, so `default` is left out. */
function scope(c: ConsulEcsCommon): { namespace?: string; partition?: string } {
  return {
    ...(c.namespace !== 'default' ? { namespace: c.namespace } : {}),
    ...(c.partition !== 'default' ? { partition: c.partition } : {}),
  };
}

/** `CONSUL_ECS_CONFIG_JSON` of an ECS service: its sidecar on 20000, its upstreams on 127.0.0.1. */
export function serviceConfig(c: ConsulEcsCommon, s: ConsulEcsServiceInput): ConsulEcsConfig {
  return {
    ...commonConfig(c),
    service: { name: s.name, port: s.port, tags: [], meta: s.meta, ...scope(c) },
    proxy: {
      publicListenerPort: CONSUL_ECS.PUBLIC_LISTENER_PORT,
      healthCheckPort: CONSUL_ECS.ENVOY_READY_PORT,
      localServiceAddress: '127.0.0.1',
      upstreams: s.upstreams.map((u) => ({
        destinationName: u.name,
        localBindPort: u.localPort,
        ...(c.namespace !== 'default' ? { destinationNamespace: c.namespace } : {}),
        ...(c.partition !== 'default' ? { destinationPartition: c.partition } : {}),
      })),
    },
    healthSyncContainers: s.healthSyncContainers,
  };
}

/** `CONSUL_ECS_CONFIG_JSON` of a mesh gateway task. */
export function gatewayConfig(c: ConsulEcsCommon, g: ConsulEcsGatewayInput): ConsulEcsConfig {
  return {
    ...commonConfig(c),
    gateway: {
      kind: 'mesh-gateway',
      name: g.name,
      // The task's own address (consul-ecs fills it in), where the load balancer sends connections.
      lanAddress: { port: g.port },
      wanAddress: { address: g.wanAddress, port: g.port },
      meta: g.meta,
      // A mesh gateway serves its own admin partition (Enterprise), and always sits in its default namespace.
      ...(c.partition !== 'default' ? { partition: c.partition } : {}),
    },
    healthSyncContainers: [],
  };
}

/** What {@link addConsulEcsContainers} adds to a task definition. */
export interface ConsulEcsContainers {
  readonly meshInit: ecs.ContainerDefinition;
  readonly dataplane: ecs.ContainerDefinition;
  readonly healthSync: ecs.ContainerDefinition;
}

/** Options of {@link addConsulEcsContainers}. */
export interface ConsulEcsContainerOptions {
  readonly taskDefinition: ecs.TaskDefinition;
  readonly cluster: IConsulCluster;
  readonly config: ConsulEcsConfig;
  readonly consulEcsImage: ConsulImageConfig;
  readonly dataplaneImage: ConsulImageConfig;
  readonly logging: (streamPrefix: string) => ecs.LogDriver;
  /** The gateway's dataplane is the task; a service's sidecar is not (the app is). */
  readonly dataplaneEssential: boolean;
  readonly dataplanePortMappings: ecs.PortMapping[];
  /** Memory of the dataplane (Envoy) container. */
  readonly dataplaneMemoryMiB: number;
}

/** The consul-ecs containers' own memory: Go binaries that log in, register and then watch ECS health. */
const CONSUL_ECS_MEMORY_MIB = 64;

/**
 * Adds the containers consul-ecs expects to a task definition, the way HashiCorp's modules do, for services and the
 * mesh gateway alike:
 * - `consul-ecs-mesh-init` (non-essential, must succeed first): logs in with the task role, registers the service
 *   (or gateway) and its proxy under the cluster's synthetic node, writes the dataplane's config to `/consul`;
 * - `consul-dataplane` (Envoy), started only after mesh-init succeeded, healthy once Envoy's ready port answers;
 * - `consul-ecs-health-sync`: reports the app containers' ECS health to Consul, and deregisters and logs out when
 *   the task stops.
 * The servers' CA comes from Secrets Manager as container secrets (never in the template). The caller makes app
 * containers depend on the dataplane being HEALTHY.
 */
export function addConsulEcsContainers(scope: Construct, o: ConsulEcsContainerOptions): ConsulEcsContainers {
  const td = o.taskDefinition;
  // Called once per task definition: the shared volume, empty at task start (the consul-ecs image owns it).
  td.addVolume({ name: CONSUL_ECS.VOLUME });
  // Imported by ARN, without its key: granting the cluster's own secret would add this task's execution role to the
  // key policy in the cluster's stack, a reference back from an earlier stack. The key policy delegates to IAM, and
  // the execution role gets kms:Decrypt through Secrets Manager below.
  const caSecret = secretsmanager.Secret.fromSecretCompleteArn(scope, 'ConsulCaSecret', o.cluster.caCertificateSecret.secretArn);
  const ca = ecs.Secret.fromSecretsManager(caSecret, 'CertificatePem');
  const caSecrets = { [CONSUL_ECS.HTTPS_CA_ENV]: ca, [CONSUL_ECS.GRPC_CA_ENV]: ca };
  const configJson = Stack.of(scope).toJsonString(o.config);
  const environment = { [CONSUL_ECS.CONFIG_ENV]: configJson };
  const mount = (readOnly: boolean): ecs.MountPoint => ({ sourceVolume: CONSUL_ECS.VOLUME, containerPath: CONSUL_ECS.BOOTSTRAP_DIR, readOnly });

  const meshInit = td.addContainer(CONSUL_ECS.MESH_INIT, {
    containerName: CONSUL_ECS.MESH_INIT,
    image: o.consulEcsImage.containerImage,
    essential: false,
    command: ['mesh-init'],
    user: CONSUL_ECS.CONSUL_ECS_USER,
    readonlyRootFilesystem: true,
    memoryLimitMiB: CONSUL_ECS_MEMORY_MIB,
    environment,
    secrets: caSecrets,
    linuxParameters: new ecs.LinuxParameters(scope, 'MeshInitLinuxParameters', { initProcessEnabled: true }),
    logging: o.logging('mesh-init'),
  });
  meshInit.addMountPoints(mount(false));

  const dataplane = td.addContainer(CONSUL_ECS.DATAPLANE, {
    containerName: CONSUL_ECS.DATAPLANE,
    image: o.dataplaneImage.containerImage,
    essential: o.dataplaneEssential,
    user: CONSUL_ECS.DATAPLANE_USER,
    // mesh-init copied the consul-ecs binary into /consul: it forwards signals to the dataplane, and probes Envoy.
    entryPoint: [`${CONSUL_ECS.BOOTSTRAP_DIR}/consul-ecs`, 'envoy-entrypoint'],
    command: ['consul-dataplane', '-config-file', `${CONSUL_ECS.BOOTSTRAP_DIR}/consul-dataplane.json`],
    // consul-dataplane 2.0 passes Envoy its bootstrap on the command line: nothing is written to the root file system.
    readonlyRootFilesystem: true,
    memoryLimitMiB: o.dataplaneMemoryMiB,
    portMappings: o.dataplanePortMappings,
    healthCheck: {
      command: [`${CONSUL_ECS.BOOTSTRAP_DIR}/consul-ecs`, 'net-dial', `127.0.0.1:${CONSUL_ECS.ENVOY_READY_PORT}`],
      interval: Duration.seconds(5),
      timeout: Duration.seconds(5),
      retries: 10,
      startPeriod: Duration.seconds(10),
    },
    ulimits: [{ name: ecs.UlimitName.NOFILE, softLimit: 1048576, hardLimit: 1048576 }],
    stopTimeout: Duration.seconds(30),
    logging: o.logging('dataplane'),
  });
  dataplane.addMountPoints(mount(true));
  dataplane.addContainerDependencies({ container: meshInit, condition: ecs.ContainerDependencyCondition.SUCCESS });

  const healthSync = td.addContainer(CONSUL_ECS.HEALTH_SYNC, {
    containerName: CONSUL_ECS.HEALTH_SYNC,
    image: o.consulEcsImage.containerImage,
    essential: false,
    command: ['health-sync'],
    user: CONSUL_ECS.HEALTH_SYNC_USER,
    readonlyRootFilesystem: true,
    memoryLimitMiB: CONSUL_ECS_MEMORY_MIB,
    environment,
    secrets: caSecrets,
    linuxParameters: new ecs.LinuxParameters(scope, 'HealthSyncLinuxParameters', { initProcessEnabled: true }),
    logging: o.logging('health-sync'),
  });
  healthSync.addMountPoints(mount(true));
  healthSync.addContainerDependencies({ container: meshInit, condition: ecs.ContainerDependencyCondition.SUCCESS });

  // Secrets Manager decrypts the CA secret with the cluster's key on the execution role's behalf.
  const executionRole = td.obtainExecutionRole();
  executionRole.addToPrincipalPolicy(new iam.PolicyStatement({
    actions: ['kms:Decrypt'],
    resources: [o.cluster.secretsKey.keyArn],
    conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
  }));
  o.consulEcsImage.grantPull(executionRole);
  o.dataplaneImage.grantPull(executionRole);
  Acknowledgements.awsSolutions(td, 'ECS2', `The environment variables hold no secret: ${CONSUL_ECS.CONFIG_ENV} is consul-ecs's configuration (server address, names, ports; consul-ecs reads it from this variable only), the app's are its port and its upstreams' local addresses. The servers' CA certificate is a Secrets Manager secret.`);
  return { meshInit, dataplane, healthSync };
}

/** The memory Envoy needs at least, and what the two consul-ecs containers take besides it. */
export const MIN_DATAPLANE_MEMORY_MIB = 128;
export const CONSUL_ECS_OVERHEAD_MIB = 2 * CONSUL_ECS_MEMORY_MIB;
