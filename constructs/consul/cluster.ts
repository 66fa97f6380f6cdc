import * as path from 'path';
import {
  Annotations, type CfnResource, CustomResource, Duration, RemovalPolicy, Resource, Size, Stack, Tags,
} from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { type Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newAlarmTopic, newMeshKey, newVpcFunction, stageFiles } from '../core/internal';
import { Acknowledgements } from '../core/validation';
import { type IMesh } from '../mesh';
import { type IMeshNetwork } from '../network';
import { ConsulPackage } from './package';
import { SCOPED_TOKEN_POLICIES } from './private/acl-policies';
import { type ServerBootInputs } from './private/boot-inputs';
import { consulServerLibrary, serverUserData } from './private/scripts';
import { ConsulDefaults, ConsulPorts, ConsulTokenRole, type IConsulCluster } from './types';


/** The oldest Consul with everything the generated configuration uses (`tls` stanza, `grpc_tls` port): 1.16. */
const OLDEST = { major: 1, minor: 16 };

/** The CloudWatch namespace of the health metric the servers publish. */
const METRIC_NAMESPACE = 'LambdaMesh/Consul';

/** The tag cloud auto-join finds the servers by (its value is the cluster's name). */
const RETRY_JOIN_TAG_KEY = 'lambda-mesh:consul-cluster';

/** How long a new server has to join and see a healthy cluster before it counts as failed. */
const HEALTHY_TIMEOUT = Duration.minutes(15);

/** The props with their defaults filled in, once checked. */
interface ClusterSettings {
  readonly size: number;
  readonly consulVersion: string;
  readonly datacenter: string;
  /** Names the cluster in its auto-join tag and its health metric's dimension. */
  readonly clusterName: string;
  readonly pkgBinding: ReturnType<ConsulPackage['_bind']>;
  readonly instanceType: ec2.InstanceType;
  readonly snapshotSchedule: string;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
}

/** The cluster's key and the secrets the generator fills at deploy time. */
interface ClusterSecrets {
  readonly key: kms.IKey;
  readonly gossipKey: secretsmanager.Secret;
  readonly caCertificate: secretsmanager.Secret;
  readonly caPrivateKey: secretsmanager.Secret;
  readonly serverCertificate: secretsmanager.Secret;
  readonly managementToken: secretsmanager.Secret;
  readonly agentToken: secretsmanager.Secret;
  /** The scoped ACL tokens, by role. */
  readonly tokens: Record<ConsulTokenRole, secretsmanager.Secret>;
}

/**
 * Properties of a {@link ConsulServerCluster}.
 */
export interface ConsulServerClusterProps {
  /** The mesh: the cluster serves its datacenter. */
  readonly mesh: IMesh;
  /** The network: servers run in its server subnets. */
  readonly network: IMeshNetwork;
  /**
   * How many servers: 3 or 5 (an odd number keeps a majority through a failure; 3 survives one, 5 survives two).
   * 1 only with `devMode`.
   * @default 3
   */
  readonly size?: number;
  /**
   * Allow a single server. It has no redundancy: losing it loses the mesh's state. A warning says so.
   * @default false
   */
  readonly devMode?: boolean;
  /**
   * The Consul version, `X.Y.Z` (1.16 or newer). The mesh's sidecars and gateway run consul-dataplane 2.0, which
   * HashiCorp supports with Consul 2.0 servers: pin older dataplane images if you stay on 1.x.
   * @default ConsulDefaults.CONSUL_VERSION ('2.0.3')
   */
  readonly consulVersion?: string;
  /**
   * Where Consul is installed from.
   * @default ConsulPackage.hashicorpRepository()
   */
  readonly package?: ConsulPackage;
  /**
   * The instance type. Its architecture picks the Amazon Linux 2023 image (x86_64 or arm64).
   * @default m7g.large (Graviton, arm64)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * The size of each server's encrypted root volume (gp3), which holds Consul's data.
   * @default Size.gibibytes(30)
   */
  readonly volumeSize?: Size;
  /**
   * When snapshots are taken, as a systemd calendar expression (run by the leader only).
   * @see https://www.freedesktop.org/software/systemd/man/latest/systemd.time.html#Calendar%20Events
   * @default 'hourly'
   */
  readonly snapshotSchedule?: string;
  /**
   * How long snapshots are kept.
   * @default Duration.days(30)
   */
  readonly snapshotRetention?: Duration;
  /**
   * How long the servers' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * How long the servers' TLS certificate is valid. Reissue it before then (see the module README).
   * @default Duration.days(730)
   */
  readonly serverCertificateValidity?: Duration;
  /**
   * Where the cluster's alarms (quorum lost, and back to OK) are sent.
   * @default - a new KMS-encrypted topic (`alarmTopic`)
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * What happens to the secrets, the key, the snapshots and the logs when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Attributes of a Consul server cluster defined elsewhere, for {@link ConsulServerCluster.fromConsulClusterAttributes}.
 */
export interface ConsulClusterAttributes {
  /** The Consul datacenter. */
  readonly datacenter: string;
  /** The DNS name of the cluster's internal load balancer. */
  readonly endpointAddress: string;
  /** The load balancer's security group (clients are allowed in through it). */
  readonly securityGroup: ec2.ISecurityGroup;
  /** The secret holding the TLS CA certificate. */
  readonly caCertificateSecret: secretsmanager.ISecret;
  /** The KMS key of the cluster's secrets. */
  readonly secretsKey: kms.IKey;
  /** The scoped token secrets, by role. */
  readonly intentionsWriterTokenSecret: secretsmanager.ISecret;
  /** The identity registrar's token secret. */
  readonly identityRegistrarTokenSecret: secretsmanager.ISecret;
  /** The workload identity (auth method) writer's token secret. */
  readonly workloadIdentityTokenSecret: secretsmanager.ISecret;
  /** The token secret of consul-k8s's ACL init on EKS. */
  readonly kubernetesAclInitTokenSecret: secretsmanager.ISecret;
}

/**
 * Defines a hardened Consul server cluster on EC2, after HashiCorp's validated design for AWS, with all of it on
 * by default: servers in an Auto Scaling group over the network's zones, tag-based cloud auto-join, gossip
 * encryption verified both ways, TLS everywhere with `auto_encrypt`, ACLs with default deny, Connect,
 * autopilot, hourly snapshots to a versioned encrypted bucket, logs and a quorum alarm in CloudWatch.
 *
 * No secret is ever in a template or user data: a custom resource generates the gossip key, the TLS CA and
 * server certificate and the ACL tokens at deploy time into Secrets Manager, and each server reads them at boot
 * through its role. Clients reach the servers through an internal Network Load Balancer: HTTPS on 8501 and
 * gRPC with TLS on 8503 (plain HTTP and gRPC are off). A new server signals CloudFormation only once it has
 * joined and autopilot reports the cluster healthy, and updates replace one server at a time.
 */
export class ConsulServerCluster extends Resource implements IConsulCluster {
  /**
   * References a Consul server cluster defined in another stack or app.
   */
  public static fromConsulClusterAttributes(
    scope: Construct, id: string, attrs: ConsulClusterAttributes,
  ): IConsulCluster {
    const tokens: Record<ConsulTokenRole, secretsmanager.ISecret> = {
      [ConsulTokenRole.INTENTIONS_WRITER]: attrs.intentionsWriterTokenSecret,
      [ConsulTokenRole.IDENTITY_REGISTRAR]: attrs.identityRegistrarTokenSecret,
      [ConsulTokenRole.WORKLOAD_IDENTITY]: attrs.workloadIdentityTokenSecret,
      [ConsulTokenRole.KUBERNETES_ACL_INIT]: attrs.kubernetesAclInitTokenSecret,
    };
    class Imported extends Resource implements IConsulCluster {
      public readonly datacenter = attrs.datacenter;
      public readonly endpointAddress = attrs.endpointAddress;
      public readonly caCertificateSecret = attrs.caCertificateSecret;
      public readonly secretsKey = attrs.secretsKey;
      public readonly connections = new ec2.Connections({
        securityGroups: [attrs.securityGroup],
        defaultPort: ec2.Port.tcp(ConsulPorts.HTTPS),
      });
      public tokenSecret(role: ConsulTokenRole): secretsmanager.ISecret {
        return tokens[role];
      }
    }
    return new Imported(scope, id);
  }

  public readonly datacenter: string;
  public readonly endpointAddress: string;
  public readonly caCertificateSecret: secretsmanager.ISecret;
  public readonly secretsKey: kms.IKey;
  /**
   * The load balancer's security group; default port HTTPS 8501. Use {@link allowClientsFrom} to open gRPC too.
   */
  public readonly connections: ec2.Connections;
  /**
   * The servers' own security group: the source of the calls the servers make, such as the Kubernetes auth method's
   * TokenReview calls to an EKS API. Clients reach the servers through {@link connections}, never this.
   */
  public readonly serverConnections: ec2.Connections;
  /** The servers' Auto Scaling group. */
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The internal load balancer in front of the servers. */
  public readonly loadBalancer: elbv2.NetworkLoadBalancer;
  /** The versioned, encrypted bucket the leader writes snapshots to (under `snapshots/`). */
  public readonly snapshotBucket: s3.IBucket;
  /** The log group the servers ship Consul's logs to. */
  public readonly logGroup: logs.ILogGroup;
  /** In alarm when fewer healthy voters report than a quorum needs (or none reports at all). */
  public readonly quorumAlarm: cloudwatch.Alarm;
  /** Where the cluster's alarms are sent: subscribe your on-call channel to it. */
  public readonly alarmTopic: sns.ITopic;
  /** The Consul version the servers run. */
  public readonly consulVersion: string;
  /** The number of servers. */
  public readonly size: number;

  private readonly tokenSecrets: Record<ConsulTokenRole, secretsmanager.Secret>;

  constructor(scope: Construct, id: string, props: ConsulServerClusterProps) {
    super(scope, id);
    const settings = this.resolveSettings(props);
    this.size = settings.size;
    this.consulVersion = settings.consulVersion;
    this.datacenter = settings.datacenter;

    const secrets = this.createSecrets(settings);
    this.secretsKey = secrets.key;
    this.caCertificateSecret = secrets.caCertificate;
    this.tokenSecrets = secrets.tokens;
    const secretsResource = this.createSecretsGenerator(props, settings, secrets);

    this.snapshotBucket = this.createSnapshotBucket(props, settings, secrets.key);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: settings.logRetention,
      encryptionKey: secrets.key,
      removalPolicy: settings.removalPolicy,
    });

    const securityGroups = this.createSecurityGroups(props.network);
    this.connections = securityGroups.clients;
    this.serverConnections = securityGroups.servers.connections;
    this.loadBalancer = this.createLoadBalancer(props.network, securityGroups.loadBalancer, settings);
    this.endpointAddress = this.loadBalancer.loadBalancerDnsName;

    const role = this.createServerRole(settings, secrets);
    const { launchTemplate, userData } = this.createLaunchTemplate(props, settings, role, securityGroups.servers);
    this.autoScalingGroup = this.createServers(props.network, settings, launchTemplate, secretsResource);
    this.addListeners();
    this.addBootScript(userData, role, settings, secrets);

    this.alarmTopic = props.alarmTopic
      ?? newAlarmTopic(this, 'Alarms', `Consul ${this.datacenter} alarms`, secrets.key);
    this.quorumAlarm = this.createQuorumAlarm(settings.clusterName);
  }

  /** The secret of a scoped ACL token. */
  public tokenSecret(role: ConsulTokenRole): secretsmanager.ISecret {
    return this.tokenSecrets[role];
  }

  /** Lets `peer` call the servers' HTTPS API (8501) and gRPC with TLS (8503) through the load balancer. */
  public allowClientsFrom(peer: ec2.IConnectable, description = 'Consul client'): void {
    this.connections.allowFrom(peer, ec2.Port.tcp(ConsulPorts.HTTPS), `${description}: HTTPS API`);
    this.connections.allowFrom(peer, ec2.Port.tcp(ConsulPorts.GRPC_TLS), `${description}: gRPC with TLS`);
  }

  /** Checks the props (in the order their errors are reported) and fills in the defaults. */
  private resolveSettings(props: ConsulServerClusterProps): ClusterSettings {
    const fail = (field: string, given: unknown, expected: string): never => throwInvalid(this, field, given, expected);
    if (!props.network) {
      fail('network', props.network, 'the mesh network (a MeshNetwork or MeshNetwork.fromMeshNetworkAttributes): '
        + 'the servers run in its server subnets');
    }
    if (!props.mesh) {
      fail('mesh', props.mesh, 'the mesh whose datacenter the cluster serves');
    }

    const size = props.size ?? 3;
    this.checkSize(size, props.devMode);
    const consulVersion = props.consulVersion ?? ConsulDefaults.CONSUL_VERSION;
    this.checkConsulVersion(consulVersion);

    const pkg = props.package ?? ConsulPackage.hashicorpRepository();
    if (pkg.needsEgress && !props.network.serverEgress) {
      fail('package', 'ConsulPackage.hashicorpRepository()', 'ConsulPackage.fromBucket(...): the network\'s server '
        + 'subnets have no egress to HashiCorp\'s repository (serverEgress: false)');
    }
    const pkgBinding = pkg._bind();

    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.M7G, ec2.InstanceSize.LARGE);
    const snapshotSchedule = props.snapshotSchedule ?? 'hourly';
    if (!/^[A-Za-z0-9*:,./ -]+$/.test(snapshotSchedule)) {
      fail('snapshotSchedule', snapshotSchedule, "a systemd calendar expression such as 'hourly' or '*-*-* 02:00:00'");
    }
    const datacenter = props.mesh.datacenter;
    return {
      size,
      consulVersion,
      datacenter,
      clusterName: `consul-${datacenter}-${this.node.addr.slice(0, 8)}`,
      pkgBinding,
      instanceType,
      snapshotSchedule,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
    };
  }

  /** 3 or 5 servers; 1 only in devMode, with a warning. */
  private checkSize(size: number, devMode: boolean | undefined): void {
    if (size === 1 && devMode) {
      Annotations.of(this).addWarningV2('lambda-mesh:consul:devMode', 'devMode: a single Consul server has no '
        + 'redundancy; losing it loses the mesh\'s state and stops every mesh connection. Not for production.');
    } else if (size !== 3 && size !== 5) {
      throwInvalid(this, 'size', size, size === 1
        ? '3 or 5 (a single server needs devMode: true)'
        : '3 or 5 servers: an odd number keeps a majority through a failure (3 survives one, 5 survives two)');
    }
    if (devMode && size !== 1) {
      throwInvalid(this, 'devMode', devMode, `devMode only with size 1 (size is ${size})`);
    }
  }

  private checkConsulVersion(consulVersion: string): void {
    const version = /^(\d+)\.(\d+)\.(\d+)$/.exec(consulVersion);
    const [major, minor] = version ? [Number(version[1]), Number(version[2])] : [0, 0];
    if (!version || major < OLDEST.major || (major === OLDEST.major && minor < OLDEST.minor)) {
      throwInvalid(this, 'consulVersion', consulVersion, `a Consul release version X.Y.Z, ${OLDEST.major}.`
        + `${OLDEST.minor}.0 or newer (no 'v' prefix, no '+ent' suffix), e.g. '${ConsulDefaults.CONSUL_VERSION}'`);
    }
  }

  /** The cluster's key, and the empty secrets the generator fills at deploy time. */
  private createSecrets(settings: ClusterSettings): ClusterSecrets {
    const { removalPolicy } = settings;
    const key = newMeshKey(this, 'Key', `Encrypts the secrets, snapshots and logs of Consul cluster ${this.node.path}`,
      removalPolicy);
    allowCloudWatchLogs(key);

    const secret = (secretId: string, description: string): secretsmanager.Secret => {
      const s = new secretsmanager.Secret(this, secretId, {
        description: `${description} (Consul ${this.datacenter}, written at deploy time)`,
        encryptionKey: key,
        removalPolicy,
      });
      // Created empty: the generator writes the only value it ever holds (no placeholder password).
      (s.node.defaultChild as secretsmanager.CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
      Acknowledgements.awsSolutions(s, 'SMG4', 'Consul credentials are not rotated by a Secrets Manager rotation '
        + 'Lambda: the gossip key is rotated with `consul keyring`, certificates are reissued by the secrets custom '
        + 'resource, tokens by a new secret value and a server replacement (Consul cannot change a token\'s SecretID '
        + 'in place); procedures in the consul module README.');
      return s;
    };
    return {
      key,
      gossipKey: secret('GossipKey', 'Gossip encryption key'),
      caCertificate: secret('CaCertificate', 'TLS CA certificate'),
      caPrivateKey: secret('CaPrivateKey', 'TLS CA private key (read only by the secrets generator)'),
      serverCertificate: secret('ServerCertificate', 'TLS server certificate and key'),
      managementToken: secret('ManagementToken', 'ACL initial management token'),
      agentToken: secret('AgentToken', 'ACL agent token of the servers'),
      tokens: {
        [ConsulTokenRole.INTENTIONS_WRITER]: secret('IntentionsWriterToken', 'ACL token: intentions writer'),
        [ConsulTokenRole.IDENTITY_REGISTRAR]: secret('IdentityRegistrarToken', 'ACL token: identity registrar'),
        [ConsulTokenRole.WORKLOAD_IDENTITY]: secret('WorkloadIdentityToken',
          'ACL token: workload identity (aws-iam auth method) writer'),
        [ConsulTokenRole.KUBERNETES_ACL_INIT]: secret('KubernetesAclInitToken',
          'ACL token: consul-k8s ACL init on EKS'),
      },
    };
  }

  /** The custom resource that generates the secrets' values at deploy time, and its function. */
  private createSecretsGenerator(
    props: ConsulServerClusterProps, settings: ClusterSettings, secrets: ClusterSecrets,
  ): CustomResource {
    const { key } = secrets;
    // The generator runs in the function subnets: Secrets Manager and KMS through the endpoints, its answer to
    // CloudFormation through the S3 gateway endpoint.
    const { fn: generator, securityGroup: generatorSg } = newVpcFunction(this, 'SecretsGenerator', {
      handler: 'consul-secrets',
      network: props.network,
      purpose: `Consul secrets generator of ${this.node.path}`,
      logKey: key,
      logRetention: settings.logRetention,
      removalPolicy: settings.removalPolicy,
    });
    const generated = [
      secrets.gossipKey, secrets.caCertificate, secrets.caPrivateKey, secrets.serverCertificate,
      secrets.managementToken, secrets.agentToken, ...Object.values(secrets.tokens),
    ];
    // Exactly what the generator does: read and put values of these secrets, through Secrets Manager only.
    generator.addToRolePolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'],
      resources: generated.map((g) => g.secretArn),
    }));
    generator.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
    }));
    const resource = new CustomResource(this, 'Secrets', {
      serviceToken: generator.functionArn,
      resourceType: 'Custom::ConsulSecrets',
      properties: {
        Datacenter: this.datacenter,
        ServerCertificateValidityDays: String((props.serverCertificateValidity ?? Duration.days(730)).toDays()),
        Secrets: {
          GossipKey: secrets.gossipKey.secretArn,
          CaCertificate: secrets.caCertificate.secretArn,
          CaPrivateKey: secrets.caPrivateKey.secretArn,
          ServerCertificate: secrets.serverCertificate.secretArn,
          ManagementToken: secrets.managementToken.secretArn,
          AgentToken: secrets.agentToken.secretArn,
        },
        ScopedTokens: Object.fromEntries(Object.entries(secrets.tokens).map(([role, s]) => [role, s.secretArn])),
      },
    });
    // The generator must reach the endpoints on its first call.
    resource.node.addDependency(generatorSg);
    return resource;
  }

  /** The bucket that receives the snapshot bucket's server access logs. */
  private createSnapshotAccessLogBucket(settings: ClusterSettings): s3.Bucket {
    const accessLogs = new s3.Bucket(this, 'SnapshotAccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED, // server access logging cannot deliver to a KMS-encrypted bucket
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      // Object ownership is left to CDK: log delivery needs a bucket policy (or, in apps without the
      // serverAccessLogsUseBucketPolicy flag, ACLs), and CDK sets the matching mode.
      lifecycleRules: [{ expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
      removalPolicy: settings.removalPolicy,
    });
    Acknowledgements.awsSolutions(accessLogs, 'S1', 'This bucket receives the snapshot bucket\'s server access logs; '
      + 'logging it to itself would loop.');
    Acknowledgements.guard(accessLogs, 's3_bucket_logging_enabled_check', 'CT.S3.PR.2: this bucket receives the '
      + 'snapshot bucket\'s server access logs; logging it to itself would loop.');
    Acknowledgements.guard(accessLogs, 's3_bucket_default_encryption_kms_check', 'CT.S3.PR.10: S3 server access log '
      + 'delivery supports only SSE-S3 on the target bucket, not SSE-KMS.');
    Acknowledgements.guard(accessLogs, 's3_bucket_object_lock_enabled_check', 'CT.S3.PR.9: access logs are kept a '
      + 'year and versioned; object lock protects the snapshots themselves (the snapshot bucket has it).');
    return accessLogs;
  }

  /** The versioned, object-locked bucket the leader writes snapshots to, and the bucket of its access logs. */
  private createSnapshotBucket(props: ConsulServerClusterProps, settings: ClusterSettings, key: kms.IKey): s3.Bucket {
    const accessLogs = this.createSnapshotAccessLogBucket(settings);
    const snapshotRetention = props.snapshotRetention ?? Duration.days(30);
    const bucket = new s3.Bucket(this, 'Snapshots', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: key,
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'snapshots/',
      // A compromised server (or operator) cannot delete or overwrite a recent snapshot before it ages out.
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.governance(
        Duration.days(Math.min(7, snapshotRetention.toDays()))),
      lifecycleRules: [{
        prefix: 'snapshots/',
        expiration: snapshotRetention,
        noncurrentVersionExpiration: Duration.days(7),
      }],
      removalPolicy: settings.removalPolicy,
    });
    // Object events go to EventBridge (an operator can alert on missing snapshots). Set natively on the bucket:
    // `eventBridgeEnabled` would add CDK's notifications custom resource, a Lambda function outside the VPC.
    for (const b of [bucket, accessLogs]) {
      (b.node.defaultChild as s3.CfnBucket).notificationConfiguration = {
        eventBridgeConfiguration: { eventBridgeEnabled: true },
      };
    }
    return bucket;
  }

  /**
   * The servers' group (RPC and gossip among them, egress to HTTPS) and the load balancer's, through which clients
   * are let in (`clients`, default port HTTPS).
   */
  private createSecurityGroups(
    network: IMeshNetwork,
  ): { servers: ec2.SecurityGroup; loadBalancer: ec2.SecurityGroup; clients: ec2.Connections } {
    const serverSg = new ec2.SecurityGroup(this, 'ServerSecurityGroup', {
      vpc: network.vpc,
      description: `Consul servers (${this.datacenter}): RPC and gossip among themselves, HTTPS and gRPC-TLS from `
        + 'the load balancer',
      allowAllOutbound: false,
    });
    const peerPorts = [
      ec2.Port.tcp(ConsulPorts.SERVER_RPC), ec2.Port.tcp(ConsulPorts.SERF_LAN), ec2.Port.udp(ConsulPorts.SERF_LAN),
    ];
    for (const port of peerPorts) {
      serverSg.connections.allowInternally(port, 'Consul server RPC and LAN gossip among servers');
    }
    // Package repository, AWS APIs (through the NAT or the endpoints), cfn-signal.
    serverSg.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443),
      'HTTPS: the Consul package repository and the AWS APIs');
    serverSg.connections.allowTo(network, ec2.Port.tcp(443), 'Consul servers to the VPC endpoints');

    const lbSg = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: network.vpc,
      description: `Consul (${this.datacenter}) load balancer: HTTPS 8501 and gRPC-TLS 8503 from allowed clients only`,
      allowAllOutbound: false,
    });
    const clients = new ec2.Connections({ securityGroups: [lbSg], defaultPort: ec2.Port.tcp(ConsulPorts.HTTPS) });
    for (const port of [ConsulPorts.HTTPS, ConsulPorts.GRPC_TLS]) {
      serverSg.connections.allowFrom(lbSg, ec2.Port.tcp(port), 'From the load balancer');
    }
    return { servers: serverSg, loadBalancer: lbSg, clients };
  }

  /** The internal Network Load Balancer in the server subnets; its listeners come with the servers. */
  private createLoadBalancer(
    network: IMeshNetwork, securityGroup: ec2.ISecurityGroup, settings: ClusterSettings,
  ): elbv2.NetworkLoadBalancer {
    const loadBalancer = new elbv2.NetworkLoadBalancer(this, 'LoadBalancer', {
      vpc: network.vpc,
      vpcSubnets: network.serverSubnets,
      internetFacing: false,
      crossZoneEnabled: true,
      securityGroups: [securityGroup],
      deletionProtection: settings.removalPolicy === RemovalPolicy.RETAIN,
    });
    const nlbLogsReason = 'The listeners pass TLS through to Consul (TCP): NLB access logs cover only TLS listeners, '
      + 'so a log bucket would stay empty. Connections are in the VPC flow logs, requests in Consul\'s logs.';
    Acknowledgements.awsSolutions(loadBalancer, 'ELB2', nlbLogsReason);
    Acknowledgements.guard(loadBalancer, 'elbv2_logging_enabled_check',
      `CT.ELASTICLOADBALANCING.PR.6: ${nlbLogsReason}`);
    return loadBalancer;
  }

  /**
   * The servers' role: their secrets, snapshots, logs and package; cloud auto-join, the health metric and
   * Session Manager. The boot script's own permissions come with it ({@link addBootScript}).
   */
  private createServerRole(settings: ClusterSettings, secrets: ClusterSecrets): iam.Role {
    const stack = Stack.of(this);
    const { key } = secrets;
    const role = new iam.Role(this, 'ServerRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: `Consul servers of ${this.node.path}`,
    });
    const serverSecrets = [
      secrets.gossipKey, secrets.caCertificate, secrets.serverCertificate, secrets.managementToken, secrets.agentToken,
      ...Object.values(secrets.tokens),
    ];
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: serverSecrets.map((x) => x.secretArn),
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
    }));
    // Snapshot object names carry their UTC timestamp, hence the prefix.
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      resources: [this.snapshotBucket.arnForObjects('snapshots/*')],
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey'],
      resources: [key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
    }));
    this.logGroup.grantWrite(role);
    const { pkgBinding } = settings;
    if (pkgBinding.bucket && pkgBinding.source.kind === 's3') {
      role.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [pkgBinding.bucket.arnForObjects(pkgBinding.source.key)],
      }));
    }
    this.attachDiscoveryPolicy(role);
    const bucketId = stack.getLogicalId(this.snapshotBucket.node.defaultChild as CfnResource);
    const snapshotsArn = `<${bucketId}.Arn>/snapshots/*`;
    Acknowledgements.awsSolutions(role, `IAM5[Resource::${snapshotsArn}]`, 'Snapshots are written as '
      + 'snapshots/consul-<dc>-<UTC timestamp>.snap: the key is known only when the snapshot is taken.');
    return role;
  }

  /** The actions without resource-level permissions: cloud auto-join, the health metric, Session Manager. */
  private attachDiscoveryPolicy(role: iam.Role): void {
    const policy = new iam.Policy(this, 'ServerDiscoveryPolicy', {
      statements: [
        // Cloud auto-join (go-discover) lists instances by tag: DescribeInstances has no resource-level permissions.
        new iam.PolicyStatement({ actions: ['ec2:DescribeInstances'], resources: ['*'] }),
        // PutMetricData has no resource-level permissions; the namespace condition scopes it.
        new iam.PolicyStatement({
          actions: ['cloudwatch:PutMetricData'],
          resources: ['*'],
          conditions: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
        }),
        // Session Manager (no SSH key, no port 22): these actions have no resource-level permissions.
        new iam.PolicyStatement({
          actions: [
            'ssm:UpdateInstanceInformation', 'ssmmessages:CreateControlChannel', 'ssmmessages:CreateDataChannel',
            'ssmmessages:OpenControlChannel', 'ssmmessages:OpenDataChannel', 'ec2messages:AcknowledgeMessage',
            'ec2messages:DeleteMessage', 'ec2messages:FailMessage', 'ec2messages:GetEndpoint',
            'ec2messages:GetMessages', 'ec2messages:SendReply',
          ],
          resources: ['*'],
        }),
      ],
    });
    role.attachInlinePolicy(policy);
    Acknowledgements.awsSolutions(policy, 'IAM5[Resource::*]', 'ec2:DescribeInstances (cloud auto-join), '
      + 'cloudwatch:PutMetricData (scoped by a namespace condition) and the Session Manager actions support no '
      + 'resource-level permissions.');
  }

  /** Amazon Linux 2023 for the instance type's architecture, IMDSv2 only, an encrypted gp3 root volume. */
  private createLaunchTemplate(
    props: ConsulServerClusterProps, settings: ClusterSettings, role: iam.IRole, securityGroup: ec2.ISecurityGroup,
  ): { launchTemplate: ec2.LaunchTemplate; userData: ec2.UserData } {
    const { instanceType } = settings;
    // Filled once the Auto Scaling group exists: cfn-signal needs its logical ID.
    const userData = ec2.UserData.forLinux({ shebang: '#!/usr/bin/env bash' });
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType,
      userData,
      machineImage: ec2.MachineImage.latestAmazonLinux2023({
        cpuType: instanceType.architecture === ec2.InstanceArchitecture.ARM_64
          ? ec2.AmazonLinuxCpuType.ARM_64
          : ec2.AmazonLinuxCpuType.X86_64,
      }),
      role,
      securityGroup,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      detailedMonitoring: true,
      blockDevices: [{
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs((props.volumeSize ?? Size.gibibytes(30)).toGibibytes(), {
          encrypted: true,
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          deleteOnTermination: true,
        }),
      }],
    });
    return { launchTemplate, userData };
  }

  /** The fixed-size Auto Scaling group, replaced one server at a time; it waits for the secrets. */
  private createServers(
    network: IMeshNetwork, settings: ClusterSettings, launchTemplate: ec2.ILaunchTemplate, secrets: CustomResource,
  ): autoscaling.AutoScalingGroup {
    const asg = new autoscaling.AutoScalingGroup(this, 'Servers', {
      vpc: network.vpc,
      vpcSubnets: network.serverSubnets,
      launchTemplate,
      minCapacity: this.size,
      maxCapacity: this.size,
      // The load balancer checks the HTTPS API: a server whose agent stops serving is replaced.
      healthChecks: autoscaling.HealthChecks.withAdditionalChecks({
        additionalTypes: [autoscaling.AdditionalHealthCheckType.ELB],
        gracePeriod: HEALTHY_TIMEOUT,
      }),
      signals: autoscaling.Signals.waitForMinCapacity({ timeout: HEALTHY_TIMEOUT }),
      // One server at a time: the others keep a quorum while the new one joins and reports healthy.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: this.size - 1,
        waitOnResourceSignals: true,
        pauseTime: HEALTHY_TIMEOUT,
      }),
      terminationPolicies: [autoscaling.TerminationPolicy.OLDEST_INSTANCE],
    });
    asg.node.addDependency(secrets);
    // Cloud auto-join finds the other servers by this tag.
    Tags.of(asg).add(RETRY_JOIN_TAG_KEY, settings.clusterName, { applyToLaunchedInstances: true });
    Acknowledgements.guard(asg, 'autoscaling_multiple_az_check', 'CT.AUTOSCALING.PR.1: the group spans the server '
      + 'subnets of 2 or 3 zones (VPCZoneIdentifier); the rule reads only the AvailabilityZones property, which is not '
      + 'set with subnets.');
    Acknowledgements.guard(asg, 'autoscaling_mixed_instances_policy_multiple_instance_types_check', 'CT.AUTOSCALING.'
      + 'PR.6: a raft quorum wants identical servers (uneven CPU or disk makes the slowest server set commit latency); '
      + 'the group has a fixed size, so there is no scaling capacity to diversify.');
    Acknowledgements.awsSolutions(asg, 'AS3', 'Scaling notifications: membership changes are visible in the Consul '
      + 'logs and the quorum alarm; the group never scales (min = max).');
    return asg;
  }

  /** The load balancer's TCP listeners: HTTPS (checked on the leader endpoint) and gRPC with TLS. */
  private addListeners(): void {
    for (const [port, name] of [[ConsulPorts.HTTPS, 'Https'], [ConsulPorts.GRPC_TLS, 'GrpcTls']] as const) {
      const listener = this.loadBalancer.addListener(name, { port, protocol: elbv2.Protocol.TCP });
      const checks = { interval: Duration.seconds(10), healthyThresholdCount: 2, unhealthyThresholdCount: 2 };
      listener.addTargets(name, {
        port,
        protocol: elbv2.Protocol.TCP,
        targets: [this.autoScalingGroup],
        healthCheck: port === ConsulPorts.HTTPS
          // The leader endpoint needs no token and answers only once the agent serves its API.
          ? { protocol: elbv2.Protocol.HTTPS, path: '/v1/status/leader', ...checks }
          : { protocol: elbv2.Protocol.TCP, ...checks },
        deregistrationDelay: Duration.seconds(30),
      });
    }
  }

  /** The boot script: the server library as an S3 asset, the deployment's values in the user data. */
  private addBootScript(
    userData: ec2.UserData, role: iam.Role, settings: ClusterSettings, secrets: ClusterSecrets,
  ): void {
    // The server library carries no deployment value: ship it as an asset, so the user data stays far below
    // EC2's 16 KB and holds only this deployment's values.
    const library = new s3assets.Asset(this, 'ServerLibrary', { path: stageLibrary(consulServerLibrary()) });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [library.bucket.arnForObjects(library.s3ObjectKey)],
    }));
    const inputs = this.bootInputs(settings, secrets, library);
    // The script carries its own shebang; UserData.forLinux writes the one line it needs.
    const lines = serverUserData(inputs).split('\n');
    userData.addCommands(...lines.filter((line, i) => !(i === 0 && line.startsWith('#!'))));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['cloudformation:SignalResource'],
      resources: [Stack.of(this).stackId],
    }));
  }

  /** What the boot script needs to know about this deployment. */
  private bootInputs(settings: ClusterSettings, secrets: ClusterSecrets, library: s3assets.Asset): ServerBootInputs {
    const stack = Stack.of(this);
    return {
      datacenter: this.datacenter,
      consulVersion: this.consulVersion,
      packageSource: settings.pkgBinding.source,
      serverCount: this.size,
      retryJoinTag: { key: RETRY_JOIN_TAG_KEY, value: settings.clusterName },
      region: stack.region,
      secrets: {
        gossipKey: secrets.gossipKey.secretArn,
        caCertificate: secrets.caCertificate.secretArn,
        serverCertificate: secrets.serverCertificate.secretArn,
        managementToken: secrets.managementToken.secretArn,
        agentToken: secrets.agentToken.secretArn,
      },
      scopedTokens: Object.entries(secrets.tokens).map(([role, s]) => ({
        name: role,
        secretArn: s.secretArn,
        policyRules: SCOPED_TOKEN_POLICIES[role as ConsulTokenRole].rules,
        description: SCOPED_TOKEN_POLICIES[role as ConsulTokenRole].description,
      })),
      snapshot: { bucket: this.snapshotBucket.bucketName, prefix: 'snapshots/', schedule: settings.snapshotSchedule },
      cloudWatch: {
        logGroupName: this.logGroup.logGroupName,
        metricNamespace: METRIC_NAMESPACE,
        clusterName: settings.clusterName,
      },
      signal: {
        stackName: stack.stackName,
        resourceLogicalId: stack.getLogicalId(this.autoScalingGroup.node.defaultChild as CfnResource),
      },
      healthyTimeoutSeconds: HEALTHY_TIMEOUT.toSeconds() - 60,
      library: { bucket: library.s3BucketName, key: library.s3ObjectKey },
    };
  }

  /** In alarm, and back to OK, on the alarm topic: fewer healthy voters than a quorum, or no leader reporting. */
  private createQuorumAlarm(clusterName: string): cloudwatch.Alarm {
    const quorum = Math.floor(this.size / 2) + 1;
    const alarm = new cloudwatch.Alarm(this, 'QuorumAlarm', {
      alarmDescription: `Consul ${this.datacenter}: fewer healthy voting servers than a quorum (${quorum} of `
        + `${this.size}), or no leader reporting`,
      metric: new cloudwatch.Metric({
        namespace: METRIC_NAMESPACE,
        metricName: 'HealthyServers',
        dimensionsMap: { ClusterName: clusterName },
        statistic: 'Minimum',
        period: Duration.minutes(1),
      }),
      threshold: quorum,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      // Only the leader publishes: no data means no leader.
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    alarm.addOkAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    return alarm;
  }
}

/**
 * Writes the server library where an asset can take it from: one directory per content, so repeated synths reuse
 * it instead of leaving a temporary directory each.
 */
function stageLibrary(content: string): string {
  const files = new Map([['consul-server-lib.sh', Buffer.from(content)]]);
  return path.join(stageFiles('lambda-mesh-consul-lib', '1', files), 'consul-server-lib.sh');
}
