import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { Aws, RemovalPolicy, Resource, Stack, Token } from 'aws-cdk-lib';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { type Construct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey, shippedFile } from '../core/internal';
import { Acknowledgements } from '../core/validation';
import { type IConsulAuthMethod } from '../consul/auth-method';
import { ConsulImage, type ConsulImageConfig } from '../consul/image';
import { type IMeshGateway } from '../consul/mesh-gateway';
import { type IConsulCluster } from '../consul/types';
import { type MeshService, type ResolvedService, ServicePlacement } from '../mesh';
import { type IMeshNetwork } from '../network';
import {
  claimService, joinMesh, sidecarConnections, SIDECAR_PORT, type WorkloadUpstream, workloadUpstreams,
} from './private/workload';
import { type IMeshWorkload } from './workload';

/** Where the boot script lands on an instance. */
const SCRIPT_PATH = '/usr/local/lib/lambda-mesh/ec2-sidecar.sh';
const ENV_FILE = '/etc/lambda-mesh/service.env';
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The images an instance runs: the app, Consul (for `consul login`) and consul-dataplane. */
type Ec2ServiceImages = Readonly<Record<'app' | 'consul' | 'dataplane', ConsulImageConfig>>;

/**
 * Properties of a {@link MeshEc2Service}.
 */
export interface MeshEc2ServiceProps {
  /** The mesh service the instances run (`mesh.service('scorer')`); its placement must be EC2. */
  readonly service: MeshService;
  /** The Consul servers the sidecars register with. */
  readonly cluster: IConsulCluster;
  /** The aws-iam auth method the instances log in with (the instance role is bound to the service). */
  readonly authMethod: IConsulAuthMethod;
  /** The mesh gateway, which forwards mesh functions' calls to the sidecars. */
  readonly gateway: IMeshGateway;
  /** The mesh network: instances run in its service subnets. */
  readonly network: IMeshNetwork;
  /**
   * The app's container image. It runs on the instance's Docker with the host network and listens on 127.0.0.1 at
   * the service's port (`PORT`). An image in ECR (an asset, or by digest) is pulled through the ECR endpoints.
   */
  readonly image: ConsulImage;
  /**
   * The app's command (the image's CMD when left out).
   * @default - the image's
   */
  readonly command?: string[];
  /**
   * Environment variables of the app, besides `PORT`, `HOST` and its upstreams' `MESH_UPSTREAM_<NAME>_URL`.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * An HTTP path on the service's port that answers 2xx when the app is healthy.
   * @default - a TCP connect to the service's port (or `healthCheckCommand`)
   */
  readonly healthCheckPath?: string;
  /**
   * A command run in the app's container (`docker exec`); exit status 0 means healthy.
   * @default - a TCP connect to the service's port (or `healthCheckPath`)
   */
  readonly healthCheckCommand?: string[];
  /**
   * The instance type: its architecture picks the Amazon Linux 2023 image, and the app image must be built for it.
   * @default t4g.small (arm64)
   */
  readonly instanceType?: ec2.InstanceType;
  /**
   * How many instances run (min = max = desired), spread over the service subnets' zones.
   * @default 2
   */
  readonly count?: number;
  /**
   * The services it calls, each of which the model must allow.
   * @default - every service the model lets it call
   */
  readonly upstreams?: string[];
  /**
   * The consul-dataplane image (the sidecar's Envoy).
   * @default ConsulImage.dataplane()
   */
  readonly dataplaneImage?: ConsulImage;
  /**
   * The Consul image (`consul login` with the instance role).
   * @default ConsulImage.consul()
   */
  readonly consulImage?: ConsulImage;
  /**
   * The KMS key of the log group.
   * @default - a new key
   */
  readonly logKey?: kms.IKey;
  /**
   * How long the containers' logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Defines a mesh service on plain EC2 instances (an Auto Scaling group): each instance runs the app and its
 * sidecar (consul-dataplane, Envoy) as containers on the host network, and joins the mesh with its instance role,
 * as ECS tasks do with their task role: `consul login` through the aws-iam auth method (the role is bound to the
 * service by its tag), registration of the service and its sidecar under the service's synthetic node, health
 * reported every 10 seconds, deregistration and logout when the instance stops. No token is stored anywhere.
 *
 * Software: Docker from Amazon Linux's signed repositories; Consul, consul-dataplane and the app as images from ECR
 * (the mesh's pull-through cache), their digests logged at boot; the boot script is an S3 asset checked by SHA-256.
 * Security groups as for ECS services: the sidecar port (20000) admits the mesh gateway and the model's callers.
 *
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/aws-iam
 * @see https://developer.hashicorp.com/consul/docs/connect/dataplane
 */
export class MeshEc2Service extends Resource implements IMeshWorkload {
  public readonly meshService: MeshService;
  public readonly sidecarPort = SIDECAR_PORT;
  /** The instances' security group, default port the sidecar's (20000). */
  public readonly connections: ec2.Connections;
  /** The Auto Scaling group. */
  public readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  /** The instance role: the identity the instances log in to Consul with. */
  public readonly role: iam.IRole;
  /** The services it calls. */
  public readonly upstreams: readonly WorkloadUpstream[];
  /** The log group of the app's and the sidecar's containers. */
  public readonly logGroup: logs.ILogGroup;

  constructor(scope: Construct, id: string, props: MeshEc2ServiceProps) {
    super(scope, id);
    this.checkProps(props);
    this.meshService = props.service;
    const resolved = claimService(this, props.service, ServicePlacement.EC2);
    this.upstreams = workloadUpstreams(this, props.service.mesh, resolved, props.upstreams);
    const count = props.count ?? 2;
    if (!Token.isUnresolved(count) && (!Number.isInteger(count) || count < 1)) {
      throwInvalid(this, 'count', count,
        'a whole number of instances, at least 1 (2 or more survive the loss of one or of a zone)');
    }
    const environment = this.appEnvironment(props, resolved);
    const images = this.bindImages(props);

    this.logGroup = this.createLogGroup(props, resolved.name);
    const { role, script } = this.createInstanceRole(props, resolved.name, images);
    this.role = role;
    const securityGroup = this.createSecurityGroup(props.network, resolved.name);
    this.connections = sidecarConnections(securityGroup);
    joinMesh(this, props, this.upstreams);

    const userData = this.renderUserData(props, resolved, images, environment, script);
    this.autoScalingGroup = this.createInstances(props, count, role, securityGroup, userData);
    this.acknowledgeFindings(role, images);
  }

  /** The required props, and the ones that only make sense together or in one shape. */
  private checkProps(props: MeshEc2ServiceProps): void {
    const required = [
      ['service', props.service], ['cluster', props.cluster], ['authMethod', props.authMethod],
      ['gateway', props.gateway], ['network', props.network], ['image', props.image],
    ] as const;
    for (const [field, value] of required) {
      if (!value) {
        throwInvalid(this, field, value, `the ${field} the EC2 service joins`);
      }
    }
    if (props.authMethod.mesh !== props.service.mesh) {
      throwInvalid(this, 'authMethod', props.authMethod.node.path, `the auth method of mesh `
        + `'${props.service.mesh.meshName}' (it binds mesh '${props.authMethod.mesh.meshName}')`);
    }
    if (props.healthCheckCommand !== undefined && props.healthCheckCommand.length === 0) {
      throwInvalid(this, 'healthCheckCommand', props.healthCheckCommand, "a command and its arguments, e.g. ['wget', "
        + "'-q', '-O', '/dev/null', 'http://127.0.0.1:8080/health'] (an empty one would always report critical)");
    }
    if (props.healthCheckPath !== undefined && props.healthCheckCommand !== undefined) {
      throwInvalid(this, 'healthCheckCommand', props.healthCheckCommand,
        'at most one of healthCheckPath and healthCheckCommand');
    }
    if (props.healthCheckPath !== undefined && !props.healthCheckPath.startsWith('/')) {
      throwInvalid(this, 'healthCheckPath', props.healthCheckPath, "a path starting with '/'");
    }
  }

  /**
   * The app's environment: the given variables (checked: none that lambda-mesh sets, no single quote in any value
   * the env file holds), then `PORT`, `HOST` and the upstreams' URLs.
   */
  private appEnvironment(props: MeshEc2ServiceProps, resolved: ResolvedService): Record<string, string> {
    const environment: Record<string, string> = { ...props.environment };
    for (const name of Object.keys(environment)) {
      if (!ENV_NAME.test(name) || ['PORT', 'HOST'].includes(name) || name.startsWith('MESH_UPSTREAM_')) {
        throwInvalid(this, `environment.${name}`, name, 'a variable name of letters, digits and "_" that lambda-mesh '
          + 'does not set (not PORT, HOST or MESH_UPSTREAM_*)');
      }
    }
    // The user data single-quotes every value in the env file: a quote would end it early.
    const quotable: Array<[string, string | readonly string[] | undefined]> = [
      ...Object.entries(environment).map(([name, value]): [string, string] => [`environment.${name}`, value]),
      ['command', props.command],
      ['healthCheckPath', props.healthCheckPath],
      ['healthCheckCommand', props.healthCheckCommand],
    ];
    for (const [field, value] of quotable) {
      if ([value ?? []].flat().some((v) => !Token.isUnresolved(v) && v.includes("'"))) {
        throwInvalid(this, field, value,
          'a value without a single quote (the instance\'s env file single-quotes every value)');
      }
    }
    environment.PORT = String(resolved.port);
    environment.HOST = '127.0.0.1';
    for (const u of this.upstreams) {
      environment[u.environmentVariable] = u.url;
    }
    return environment;
  }

  /** The app, Consul and dataplane images; without a NAT path, each must be pullable through the endpoints. */
  private bindImages(props: MeshEc2ServiceProps): Ec2ServiceImages {
    const images = {
      app: props.image.bind(this, 'image'),
      consul: (props.consulImage ?? ConsulImage.consul()).bind(this, 'consulImage'),
      dataplane: (props.dataplaneImage ?? ConsulImage.dataplane()).bind(this, 'dataplaneImage'),
    };
    for (const [field, image] of Object.entries(images)) {
      if (image.needsInternet && !(props.network.serviceEgress ?? false)) {
        throwInvalid(this, field === 'app' ? 'image' : `${field}Image`, image.imageName,
          'an image the service subnets can pull without a NAT path: in your own ECR, or through a ConsulImageCache');
      }
    }
    return images;
  }

  /** The containers' log group, encrypted with the given key or a new one, kept. */
  private createLogGroup(props: MeshEc2ServiceProps, serviceName: string): logs.LogGroup {
    const logKey = props.logKey ?? newMeshKey(this, 'LogKey',
      `Encrypts the logs of mesh service ${serviceName} (${this.node.path})`, RemovalPolicy.RETAIN);
    if (!props.logKey) {
      allowCloudWatchLogs(logKey);
    }
    return new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /**
   * The instance role, bound to the service by the auth method: it pulls the images, reads the CA certificate,
   * writes the log group and downloads the boot script (an S3 asset, created here).
   */
  private createInstanceRole(
    props: MeshEc2ServiceProps, serviceName: string, images: Ec2ServiceImages,
  ): { role: iam.Role; script: s3assets.Asset } {
    const role = props.authMethod.createWorkloadRole(this, 'InstanceRole', {
      serviceName,
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });
    for (const image of Object.values(images)) {
      image.grantPull(role);
    }
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [props.cluster.caCertificateSecret.secretArn],
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: [props.cluster.secretsKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
    }));
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [`${this.logGroup.logGroupArn}`, `${this.logGroup.logGroupArn}:log-stream:*`],
    }));
    const script = new s3assets.Asset(this, 'Script', { path: sidecarScriptPath() });
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [script.bucket.arnForObjects(script.s3ObjectKey)],
    }));
    return { role, script };
  }

  /** The instances' security group; its sidecar port is opened by the workload wiring. */
  private createSecurityGroup(network: IMeshNetwork, serviceName: string): ec2.SecurityGroup {
    const securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: network.vpc,
      description: `lambda-mesh service ${serviceName} (EC2): its sidecar (${SIDECAR_PORT}) from the mesh gateway and `
        + 'its callers only',
      allowAllOutbound: false,
    });
    // Amazon Linux packages and ECR image layers come from S3 (the gateway endpoint, public addresses).
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443),
      'HTTPS: packages and image layers from S3 through the gateway endpoint');
    return securityGroup;
  }

  /** The user data: this deployment's values into the env file, then the boot script from S3, checked. */
  private renderUserData(
    props: MeshEc2ServiceProps, resolved: ResolvedService, images: Ec2ServiceImages,
    environment: Record<string, string>, script: s3assets.Asset,
  ): ec2.UserData {
    const { cluster, authMethod } = props;
    const values: Record<string, string> = {
      SERVICE: resolved.name,
      SERVICE_PORT: String(resolved.port),
      NODE_NAME: authMethod.ec2NodeName(resolved.name),
      REGION: Stack.of(this).region,
      CONSUL_ADDRESS: cluster.endpointAddress,
      SERVER_NAME: `server.${cluster.datacenter}.consul`,
      AUTH_METHOD: authMethod.authMethodName,
      CA_SECRET_ARN: cluster.caCertificateSecret.secretArn,
      REGISTRY: `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`,
      CONSUL_IMAGE: images.consul.imageName,
      DATAPLANE_IMAGE: images.dataplane.imageName,
      APP_IMAGE: images.app.imageName,
      UPSTREAMS_JSON: JSON.stringify(this.upstreams.map((u) => ({ name: u.name, localPort: u.localPort }))),
      APP_ENV_JSON: Stack.of(this).toJsonString(environment),
      LOG_GROUP: this.logGroup.logGroupName,
      ...(props.command !== undefined ? { APP_COMMAND_JSON: JSON.stringify(props.command) } : {}),
      ...(props.healthCheckPath !== undefined ? { HEALTH_PATH: props.healthCheckPath } : {}),
      ...(props.healthCheckCommand !== undefined
        ? { HEALTH_COMMAND_JSON: JSON.stringify(props.healthCheckCommand) }
        : {}),
    };
    const userData = ec2.UserData.forLinux({ shebang: '#!/usr/bin/env bash' });
    const source = { bucket: script.s3BucketName, key: script.s3ObjectKey, sha256: sidecarScriptSha256() };
    userData.addCommands(...renderEc2UserData(values, source));
    return userData;
  }

  /** The launch template and the fixed-size Auto Scaling group, replaced one instance at a time. */
  private createInstances(
    props: MeshEc2ServiceProps, count: number, role: iam.IRole, securityGroup: ec2.ISecurityGroup,
    userData: ec2.UserData,
  ): autoscaling.AutoScalingGroup {
    const instanceType = props.instanceType ?? ec2.InstanceType.of(ec2.InstanceClass.T4G, ec2.InstanceSize.SMALL);
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
        volume: ec2.BlockDeviceVolume.ebs(20, {
          encrypted: true,
          volumeType: ec2.EbsDeviceVolumeType.GP3,
          deleteOnTermination: true,
        }),
      }],
    });
    const asg = new autoscaling.AutoScalingGroup(this, 'Instances', {
      vpc: props.network.vpc,
      vpcSubnets: props.network.serviceSubnets,
      launchTemplate,
      minCapacity: count,
      maxCapacity: count,
      // One instance at a time: the others keep serving while a new one joins.
      updatePolicy: autoscaling.UpdatePolicy.rollingUpdate({
        maxBatchSize: 1,
        minInstancesInService: Math.max(0, count - 1),
      }),
      terminationPolicies: [autoscaling.TerminationPolicy.OLDEST_INSTANCE],
    });
    // Instances log in and register at boot: the servers, the binding rule and the service's node must exist.
    asg.node.addDependency(props.cluster, props.authMethod);
    return asg;
  }

  private acknowledgeFindings(role: iam.IRole, images: Ec2ServiceImages): void {
    const asg = this.autoScalingGroup;
    Acknowledgements.awsSolutions(asg, 'AS3', 'Scaling notifications: the group never scales (min = max); instance '
      + 'health reaches Consul, which routes only to healthy instances.');
    Acknowledgements.guard(asg, 'autoscaling_multiple_az_check', 'CT.AUTOSCALING.PR.1: the group spans the service '
      + 'subnets of 2 or 3 zones (VPCZoneIdentifier); the rule reads only the AvailabilityZones property, which is not '
      + 'set with subnets.');
    Acknowledgements.guard(asg, 'autoscaling_mixed_instances_policy_multiple_instance_types_check', 'CT.AUTOSCALING.'
      + 'PR.6: a fixed-size group of one instance type, matched to the app image\'s architecture; there is no scaling '
      + 'capacity to diversify.');
    const logGroupId = Stack.of(this).getLogicalId(this.logGroup.node.defaultChild as logs.CfnLogGroup);
    Acknowledgements.awsSolutions(role, `IAM5[Resource::<${logGroupId}.Arn>:log-stream:*]`, 'Docker\'s awslogs '
      + 'driver names a log stream per container run: the streams of this service\'s own log group are the scope.');
    Acknowledgements.awsSolutions(role, 'IAM5[Resource::*]', 'ecr:GetAuthorizationToken, which pulling from ECR '
      + 'needs, supports no resource-level permissions; the pull actions are scoped to the repositories.');
    const prefixes = Object.values(images).map((i) => i.cacheRepositoryPrefix)
      .filter((p): p is string => p !== undefined);
    for (const prefix of new Set(prefixes)) {
      const cacheArn = Acknowledgements.findingArn(this, 'ecr', `repository/${prefix}/*`);
      Acknowledgements.awsSolutions(role, `IAM5[Resource::${cacheArn}]`,
        'The ECR pull-through cache creates one repository per upstream image on its first pull, under the cache\'s '
        + 'prefix: ecr:CreateRepository and ecr:BatchImportUpstreamImage are granted on that prefix only.');
    }
  }
}

/** Where the boot script is: next to this file in the sources, or in the published package. */
export function sidecarScriptPath(): string {
  return shippedFile('services/scripts/ec2-sidecar.sh', 'the EC2 sidecar script');
}

function sidecarScriptSha256(): string {
  return createHash('sha256').update(fs.readFileSync(sidecarScriptPath())).digest('hex');
}

/**
 * The user data: the deployment's values into the env file (single-quoted; they never contain a quote), the script
 * from its S3 asset, checked against its SHA-256 before it runs, and its `install`.
 */
export function renderEc2UserData(
  values: Readonly<Record<string, string>>,
  script: { readonly bucket: string; readonly key: string; readonly sha256: string },
): string[] {
  for (const [name, value] of Object.entries(values)) {
    if (!Token.isUnresolved(value) && value.includes("'")) {
      throw new Error(`lambda-mesh: the EC2 sidecar value ${name} contains a single quote`);
    }
  }
  return [
    'set -euo pipefail',
    `install -d -m 0755 ${path.posix.dirname(ENV_FILE)} ${path.posix.dirname(SCRIPT_PATH)}`,
    `cat >${ENV_FILE} <<'LAMBDA_MESH_ENV'`,
    ...Object.entries(values).map(([name, value]) => `${name}='${value}'`),
    'LAMBDA_MESH_ENV',
    `aws s3 cp 's3://${script.bucket}/${script.key}' ${SCRIPT_PATH} --only-show-errors`,
    `printf '%s  %s\\n' ${script.sha256} ${SCRIPT_PATH} | sha256sum --check --strict --quiet`,
    `chmod 0755 ${SCRIPT_PATH}`,
    `${SCRIPT_PATH} install`,
  ];
}
