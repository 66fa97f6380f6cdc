import { createHash } from 'crypto';
import { type MeshGraph, ServicePlacement } from '../../mesh/types';
import { MESH_GATEWAY_SERVICE_NAME } from './acl-policies';

/**
 * The IAM role tags Consul reads at login (the consul-ecs convention; `EnableIAMEntityDetails` makes them
 * selectable in binding rules as `entity_tags["<tag>"]`).
 *
 * @see https://developer.hashicorp.com/consul/docs/ecs/deploy/configure-acl
 */
export const WORKLOAD_ROLE_TAGS = {
  /** The Consul service the role runs: its binding rule matches exactly this value. */
  SERVICE_NAME: 'consul.hashicorp.com.service-name',
  /** The Consul namespace (Enterprise); empty on Community Edition. */
  NAMESPACE: 'consul.hashicorp.com.namespace',
  /** Set on gateway roles only: `mesh-gateway`. */
  GATEWAY_KIND: 'consul.hashicorp.com.gateway-kind',
} as const;

/** The node meta key consul-ecs sets on the synthetic node of an ECS cluster. */
export const SYNTHETIC_NODE_META = 'synthetic-node';

/** Every ACL object and catalog node the auth method custom resource keeps in Consul, rendered at synth. */
export interface AuthMethodObjects {
  readonly authMethod: ConsulAuthMethodObject;
  readonly policies: readonly ConsulPolicyObject[];
  readonly roles: readonly ConsulRoleObject[];
  readonly bindingRules: readonly ConsulBindingRuleObject[];
  readonly nodes: readonly ConsulNodeObject[];
}

/** `PUT /v1/acl/auth-method`, as Consul takes it. */
export interface ConsulAuthMethodObject {
  readonly Name: string;
  readonly Type: 'aws-iam';
  readonly DisplayName: string;
  readonly Description: string;
  readonly Config: {
    readonly BoundIAMPrincipalARNs: readonly string[];
    readonly EnableIAMEntityDetails: boolean;
    readonly IAMEntityTags: readonly string[];
    readonly ServerIDHeaderValue: string;
  };
}

/** `PUT /v1/acl/policy`. */
export interface ConsulPolicyObject {
  readonly Name: string;
  readonly Description: string;
  readonly Rules: string;
}

/** `PUT /v1/acl/role`. */
export interface ConsulRoleObject {
  readonly Name: string;
  readonly Description: string;
  readonly Policies: ReadonlyArray<{ readonly Name: string }>;
  readonly ServiceIdentities: ReadonlyArray<{ readonly ServiceName: string }>;
}

/** `PUT /v1/acl/binding-rule`, with the key that names it among its owner's rules. */
export interface ConsulBindingRuleObject {
  /** Stable among this owner's rules: `service:<name>`, `gateway:mesh-gateway`. Written into the Description. */
  readonly Key: string;
  readonly Description: string;
  readonly Selector: string;
  readonly BindType: 'service' | 'role';
  readonly BindName: string;
}

/** `PUT /v1/catalog/register` of a node without services (consul-ecs's synthetic node of an ECS cluster). */
export interface ConsulNodeObject {
  readonly Node: string;
  readonly Address: string;
  readonly NodeMeta: Readonly<Record<string, string>>;
}

/** What {@link renderAuthMethodObjects} needs. */
export interface AuthMethodInput {
  /** The full owner string (`lambda-mesh/<mesh>/<unique id>`); objects carry its short id. */
  readonly owner: string;
  readonly authMethodName: string;
  readonly graph: MeshGraph;
  /** `arn:<partition>:iam::<account>:role<path>*` (tokens allowed). */
  readonly boundRoleArnPattern: string;
  /** `server.<dc>.consul`: clients sign it into their login request, so a login cannot be replayed elsewhere. */
  readonly serverIdHeaderValue: string;
  /** The ARNs of the ECS clusters whose tasks log in (each becomes a synthetic node). */
  readonly ecsClusterArns: readonly string[];
}

/** The owner mark every object carries at the end of its Description: `[lambda-mesh owner <id>]`. */
export function ownerMark(owner: string, key?: string): string {
  return key === undefined ? `[lambda-mesh owner ${shortOwnerId(owner)}]` : `[lambda-mesh owner ${shortOwnerId(owner)} rule ${key}]`;
}

/** The 12 hex digits that identify an owner in Consul (the full owner string is not stored). */
export function shortOwnerId(owner: string): string {
  return createHash('sha256').update(owner, 'utf8').digest('hex').slice(0, 12);
}

/** The name of the catalog node EC2 instances of `service` register under (created by the custom resource). */
export function ec2NodeName(meshName: string, service: string): string {
  return `lambda-mesh-${meshName}-ec2-${service}`;
}

/** The Consul role (and policy) mesh gateway tasks are bound to. */
export function gatewayRoleName(meshName: string): string {
  return `lambda-mesh-${meshName}-${MESH_GATEWAY_SERVICE_NAME}`;
}

/**
 * The placements whose workloads log in with the aws-iam auth method (EKS pods use the Kubernetes one).
 */
export const IAM_PLACEMENTS: ReadonlySet<ServicePlacement> = new Set([ServicePlacement.ECS, ServicePlacement.EC2, ServicePlacement.EXTERNAL]);

/**
 * Renders the aws-iam auth method, its binding rules, the gateway's role and policy, and the synthetic catalog nodes
 * of the mesh's ECS clusters and EC2 services, from the mesh model.
 *
 * One binding rule per service, matching the exact value of the role's service-name tag: a role may become only
 * the service its tag names, only services of the model can be logged into at all (a role tagged `model-a-v1`, a
 * function identity, matches nothing), and removing a service from the model removes its rule. The bound ARN
 * pattern keeps logins to roles under this environment's IAM path.
 *
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/auth-method/aws-iam
 * @see https://developer.hashicorp.com/consul/api-docs/acl/binding-rules
 */
export function renderAuthMethodObjects(input: AuthMethodInput): AuthMethodObjects {
  const { graph, owner } = input;
  const gatewayRole = gatewayRoleName(graph.meshName);
  const services = graph.services.filter((s) => !s.imported && IAM_PLACEMENTS.has(s.placement));
  const tag = (name: string): string => `entity_tags["${name}"]`;
  const bindingRules: ConsulBindingRuleObject[] = services.map((s) => {
    const key = `service:${s.name}`;
    return {
      Key: key,
      Description: `lambda-mesh: IAM roles tagged ${WORKLOAD_ROLE_TAGS.SERVICE_NAME}=${s.name} run service ${s.name} (${s.placement}) ${ownerMark(owner, key)}`,
      Selector: `${tag(WORKLOAD_ROLE_TAGS.SERVICE_NAME)} == "${s.name}"`,
      BindType: 'service',
      BindName: s.name,
    };
  });
  const gatewayKey = `gateway:${MESH_GATEWAY_SERVICE_NAME}`;
  bindingRules.push({
    Key: gatewayKey,
    Description: `lambda-mesh: IAM roles tagged ${WORKLOAD_ROLE_TAGS.GATEWAY_KIND}=mesh-gateway run the mesh gateway ${ownerMark(owner, gatewayKey)}`,
    Selector: `${tag(WORKLOAD_ROLE_TAGS.GATEWAY_KIND)} == "mesh-gateway" and ${tag(WORKLOAD_ROLE_TAGS.SERVICE_NAME)} == "${MESH_GATEWAY_SERVICE_NAME}"`,
    BindType: 'role',
    BindName: gatewayRole,
  });

  const nodes: ConsulNodeObject[] = [
    ...[...new Set(input.ecsClusterArns)].map((arn) => ({ Node: arn, Address: '127.0.0.1', NodeMeta: { [SYNTHETIC_NODE_META]: 'true', 'lambda-mesh-owner': shortOwnerId(owner) } })),
    ...services.filter((s) => s.placement === ServicePlacement.EC2).map((s) => ({
      Node: ec2NodeName(graph.meshName, s.name),
      Address: '127.0.0.1',
      NodeMeta: { [SYNTHETIC_NODE_META]: 'true', 'lambda-mesh-owner': shortOwnerId(owner) },
    })),
  ];

  return {
    authMethod: {
      Name: input.authMethodName,
      Type: 'aws-iam',
      DisplayName: `lambda-mesh ${graph.meshName} (AWS IAM)`,
      Description: `lambda-mesh: ECS tasks, EC2 instances and gateways of mesh ${graph.meshName} log in with their IAM role ${ownerMark(owner)}`,
      Config: {
        BoundIAMPrincipalARNs: [input.boundRoleArnPattern],
        // Needed for the path wildcard and the tags: the server then reads the role with the client's signed iam:GetRole.
        EnableIAMEntityDetails: true,
        IAMEntityTags: [WORKLOAD_ROLE_TAGS.SERVICE_NAME, WORKLOAD_ROLE_TAGS.NAMESPACE, WORKLOAD_ROLE_TAGS.GATEWAY_KIND],
        ServerIDHeaderValue: input.serverIdHeaderValue,
      },
    },
    policies: [{
      Name: gatewayRole,
      Description: `lambda-mesh: mesh gateways of mesh ${graph.meshName} (mesh:write; the service identity is on the role) ${ownerMark(owner)}`,
      // What HashiCorp's mesh gateway policy grants beyond the gateway's own service identity; no peering.
      // @see https://developer.hashicorp.com/consul/docs/secure/acl/token/mesh-gateway
      Rules: 'mesh = "write"\n',
    }],
    roles: [{
      Name: gatewayRole,
      Description: `lambda-mesh: mesh gateways of mesh ${graph.meshName} ${ownerMark(owner)}`,
      Policies: [{ Name: gatewayRole }],
      ServiceIdentities: [{ ServiceName: MESH_GATEWAY_SERVICE_NAME }],
    }],
    bindingRules,
    nodes,
  };
}
