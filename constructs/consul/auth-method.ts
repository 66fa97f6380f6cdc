import { Aws, CustomResource, Lazy, Names, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import type * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey, newVpcFunction } from '../core/internal';
import { grantConsulAccess } from '../intentions/internal';
import { type IMesh } from '../mesh';
import { type IMeshNetwork } from '../network';
import { ec2NodeName, renderAuthMethodObjects, WORKLOAD_ROLE_TAGS } from './private/auth-method-objects';
import { ConsulTokenRole, type IConsulCluster } from './types';

/** An IAM path: `/`, or `/` + segments of IAM's path characters + `/`. */
const IAM_PATH = /^\/([\u0021-\u007E]+\/)?$/;

/**
 * Options of {@link IConsulAuthMethod.createWorkloadRole}.
 */
export interface WorkloadRoleOptions {
  /** The mesh service the role's workloads run (the role may log in as exactly this service). */
  readonly serviceName: string;
  /** Who assumes the role: `ecs-tasks.amazonaws.com` for ECS tasks, `ec2.amazonaws.com` for instances. */
  readonly assumedBy: iam.IPrincipal;
  /**
   * The gateway kind, for a gateway's role (`mesh-gateway`).
   * @default - a service, not a gateway
   */
  readonly gatewayKind?: string;
  /**
   * The role's description.
   * @default - one naming the service and the mesh
   */
  readonly description?: string;
}

/**
 * The aws-iam auth method workloads of a mesh log in with: what other lambda-mesh constructs rely on.
 */
export interface IConsulAuthMethod extends IConstruct {
  /** The auth method's name in Consul (`consulLogin.method` of consul-ecs, `consul login -method`). */
  readonly authMethodName: string;
  /** The IAM path of the roles that may log in: `/lambda-mesh/<mesh>/`. */
  readonly rolePath: string;
  /** The value clients sign into the `X-Consul-IAM-ServerID` header of their login (`server.<dc>.consul`). */
  readonly serverIdHeaderValue: string;
  /** The mesh whose services it binds. */
  readonly mesh: IMesh;
  /**
   * Creates an IAM role that logs in to Consul as `options.serviceName`: under {@link rolePath}, tagged with the
   * service name (the binding rule matches the tag), allowed `iam:GetRole` on itself (the login carries its
   * signed GetRole request, so Consul can read the tags).
   */
  createWorkloadRole(scope: Construct, id: string, options: WorkloadRoleOptions): iam.Role;
  /**
   * The name of the catalog node that EC2 instances of `service` register under (the custom resource creates it).
   */
  ec2NodeName(service: string): string;
  /**
   * Registers the synthetic catalog node of an ECS cluster whose tasks join the mesh (named after its ARN), under
   * which consul-ecs's `mesh-init` registers every task: the work of consul-ecs's controller at start-up.
   */
  addEcsCluster(cluster: ecs.ICluster): void;
}

/**
 * Properties of a {@link ConsulIamAuthMethod}.
 */
export interface ConsulIamAuthMethodProps {
  /** The mesh: one binding rule per ECS, EC2 and external service of its model. */
  readonly mesh: IMesh;
  /** The Consul servers to configure (with the workload-identity token). */
  readonly cluster: IConsulCluster;
  /** The network: the handler runs in its function subnets. */
  readonly network: IMeshNetwork;
  /**
   * The IAM path of the roles that may log in. Only roles under it can log in at all; keep it to this mesh.
   * @default `/lambda-mesh/<meshName>/`
   */
  readonly rolePath?: string;
  /**
   * The ECS clusters whose tasks join the mesh (each gets consul-ecs's synthetic catalog node). Add more with
   * {@link ConsulIamAuthMethod.addEcsCluster}.
   * @default - none
   */
  readonly ecsClusters?: ecs.ICluster[];
  /**
   * The KMS key that encrypts the handler's logs.
   * @default - a new key
   */
  readonly key?: kms.IKey;
  /**
   * How long the handler's logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What happens to the log group and key when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Attributes of an auth method defined in another stack or app, for {@link ConsulIamAuthMethod.fromAuthMethodAttributes}.
 */
export interface ConsulAuthMethodAttributes {
  /** The mesh (for example `Mesh.fromMeshAttributes`). */
  readonly mesh: IMesh;
  /** The auth method's name. */
  readonly authMethodName: string;
  /** The IAM path of its roles. */
  readonly rolePath: string;
  /**
   * The server ID header value.
   * @default `server.<datacenter>.consul`
   */
  readonly serverIdHeaderValue?: string;
}

/**
 * Defines the aws-iam auth method of a mesh's workloads, configured in Consul at deploy time: ECS tasks, EC2
 * instances and the mesh gateway prove who they are with their IAM role, and no static token is handed to any of
 * them.
 *
 * A custom resource in the VPC keeps, with the workload-identity token:
 * - the auth method (`BoundIAMPrincipalARNs` limited to this mesh's IAM role path, `EnableIAMEntityDetails`,
 *   `IAMEntityTags` for the consul-ecs role tags, a `ServerIDHeaderValue` so a login cannot be replayed to another
 *   Consul),
 * - one binding rule per ECS, EC2 and external service of the model (a role tagged
 *   `consul.hashicorp.com.service-name=<service>` becomes that service, and only that one), and a role rule for
 *   mesh gateways (a Consul role with `mesh:write` and the gateway's service identity),
 * - the synthetic catalog nodes consul-ecs's tasks and the EC2 instances register under.
 *
 * It is owner-scoped like the intentions: it writes only what carries its mark and leaves everything else;
 * removing a service from the model removes its binding rule; deleting the construct removes what it created.
 *
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/aws-iam
 * @see https://developer.hashicorp.com/consul/docs/ecs/deploy/configure-acl
 */
export class ConsulIamAuthMethod extends Construct implements IConsulAuthMethod {
  /** The role tag Consul binds a service by. */
  public static readonly SERVICE_NAME_TAG = WORKLOAD_ROLE_TAGS.SERVICE_NAME;
  /** The role tag that marks a gateway. */
  public static readonly GATEWAY_KIND_TAG = WORKLOAD_ROLE_TAGS.GATEWAY_KIND;

  /**
   * References an auth method defined in another stack or app.
   */
  public static fromAuthMethodAttributes(scope: Construct, id: string, attrs: ConsulAuthMethodAttributes): IConsulAuthMethod {
    class Imported extends Construct implements IConsulAuthMethod {
      public readonly authMethodName = attrs.authMethodName;
      public readonly rolePath = checkRolePath(this, attrs.rolePath);
      public readonly serverIdHeaderValue = attrs.serverIdHeaderValue ?? `server.${attrs.mesh.datacenter}.consul`;
      public readonly mesh = attrs.mesh;
      public createWorkloadRole(roleScope: Construct, roleId: string, options: WorkloadRoleOptions): iam.Role {
        return newWorkloadRole(this, roleScope, roleId, options);
      }
      public ec2NodeName(service: string): string {
        return ec2NodeName(this.mesh.meshName, service);
      }
      public addEcsCluster(cluster: ecs.ICluster): void {
        throwInvalid(this, 'addEcsCluster', cluster.node.path, 'an ECS cluster registered by the app that owns the auth method (its ConsulIamAuthMethod.addEcsCluster): an imported auth method cannot change it');
      }
    }
    return new Imported(scope, id);
  }

  public readonly authMethodName: string;
  public readonly rolePath: string;
  public readonly serverIdHeaderValue: string;
  public readonly mesh: IMesh;
  /** The owner mark on the objects this construct writes. */
  public readonly owner: string;

  private readonly ecsClusterArns: string[] = [];

  constructor(scope: Construct, id: string, props: ConsulIamAuthMethodProps) {
    super(scope, id);
    for (const [field, value] of [['mesh', props.mesh], ['cluster', props.cluster], ['network', props.network]] as const) {
      if (!value) {
        throwInvalid(this, field, value, `the ${field} the auth method serves`);
      }
    }
    this.mesh = props.mesh;
    if (props.mesh.datacenter !== props.cluster.datacenter) {
      throwInvalid(this, 'cluster', props.cluster.datacenter, `a cluster of the mesh's datacenter '${props.mesh.datacenter}'`);
    }
    this.rolePath = checkRolePath(this, props.rolePath ?? `/lambda-mesh/${props.mesh.meshName}/`);
    this.authMethodName = `lambda-mesh-${props.mesh.meshName}-aws-iam`;
    this.serverIdHeaderValue = `server.${props.cluster.datacenter}.consul`;
    this.owner = `lambda-mesh/${props.mesh.meshName}/${Names.uniqueId(this)}`;
    for (const c of props.ecsClusters ?? []) {
      this.addEcsCluster(c);
    }

    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const key = props.key ?? newMeshKey(this, 'Key', `Encrypts the logs of ${this.node.path}`, removalPolicy);
    if (!props.key) {
      allowCloudWatchLogs(key);
    }
    const { fn, securityGroup } = newVpcFunction(this, 'Applier', {
      handler: 'consul-auth-method',
      network: props.network,
      purpose: `Keeps the Consul auth method of ${this.node.path}`,
      logKey: key,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    grantConsulAccess(fn, securityGroup, props.cluster, ConsulTokenRole.WORKLOAD_IDENTITY);

    const boundRoleArnPattern = `arn:${Aws.PARTITION}:iam::${Aws.ACCOUNT_ID}:role${this.rolePath}*`;
    const resource = new CustomResource(this, 'Resource', {
      serviceToken: fn.functionArn,
      resourceType: 'Custom::ConsulAuthMethod',
      properties: {
        Owner: this.owner,
        // Rendered from the model at synth, so services added after this construct get their rules too.
        Objects: Lazy.string({
          produce: () => Stack.of(this).toJsonString(renderAuthMethodObjects({
            owner: this.owner,
            authMethodName: this.authMethodName,
            graph: props.mesh.graph(),
            boundRoleArnPattern,
            serverIdHeaderValue: this.serverIdHeaderValue,
            ecsClusterArns: this.ecsClusterArns,
          })),
        }),
      },
    });
    // The handler must reach the servers and read its token on its first call.
    resource.node.addDependency(fn, fn.role!, securityGroup, props.cluster);
  }

  public addEcsCluster(cluster: ecs.ICluster): void {
    if (!this.ecsClusterArns.includes(cluster.clusterArn)) {
      this.ecsClusterArns.push(cluster.clusterArn);
    }
  }

  public createWorkloadRole(scope: Construct, id: string, options: WorkloadRoleOptions): iam.Role {
    return newWorkloadRole(this, scope, id, options);
  }

  public ec2NodeName(service: string): string {
    return ec2NodeName(this.mesh.meshName, service);
  }
}

function checkRolePath(scope: Construct, rolePath: string): string {
  if (!Token.isUnresolved(rolePath) && (rolePath.length > 512 || !IAM_PATH.test(rolePath) || rolePath.includes('//') || rolePath === '/')) {
    throwInvalid(scope, 'rolePath', rolePath, "an IAM path of this mesh's own, starting and ending with '/', such as '/lambda-mesh/mesh/' (not '/': every role of the account would be bound)");
  }
  return rolePath;
}

function newWorkloadRole(method: IConsulAuthMethod, scope: Construct, id: string, options: WorkloadRoleOptions): iam.Role {
  const service = options.serviceName;
  const role = new iam.Role(scope, id, {
    assumedBy: options.assumedBy,
    path: method.rolePath,
    description: options.description ?? `lambda-mesh: logs in to Consul as ${options.gatewayKind ?? 'service'} ${service} of mesh ${method.mesh.meshName}`,
  });
  Tags.of(role).add(WORKLOAD_ROLE_TAGS.SERVICE_NAME, service);
  if (options.gatewayKind !== undefined) {
    Tags.of(role).add(WORKLOAD_ROLE_TAGS.GATEWAY_KIND, options.gatewayKind);
  }
  if (method.mesh.namespace !== 'default') {
    Tags.of(role).add(WORKLOAD_ROLE_TAGS.NAMESPACE, method.mesh.namespace);
  }
  // EnableIAMEntityDetails: the login carries a GetRole request signed with the role's credentials.
  role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['iam:GetRole'], resources: [role.roleArn] }));
  return role;
}
