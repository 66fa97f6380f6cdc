import { ConsulTokenRole } from '../types';

/**
 * An ACL policy the servers create at boot: its rules in HCL, as `consul acl policy create -rules` and the
 * `Rules` field of `PUT /v1/acl/policy` take them.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/acl/rule
 * @see https://developer.hashicorp.com/consul/api-docs/acl/policies
 */
export interface AclPolicyDefinition {
  /** The rules, in HCL. */
  readonly rules: string;
  /** Free-form description stored with the policy. */
  readonly description: string;
}

/** The service name the mesh gateway registers as; its token may write only this service. */
export const MESH_GATEWAY_SERVICE_NAME = 'mesh-gateway';

/** The prefix of the synthetic catalog nodes of EC2 mesh services (`lambda-mesh-<mesh>-ec2-<service>`). */
export const WORKLOAD_NODE_PREFIX = 'lambda-mesh-';

/**
 * The servers' own agent token: `node:write` to register and update their own catalog entries,
 * `service:read` for anti-entropy. This is HashiCorp's documented agent token policy.
 *
 * @see https://developer.hashicorp.com/consul/docs/secure/acl/token/agent
 */
export const AGENT_POLICY: AclPolicyDefinition & { readonly name: string } = {
  name: 'consul-server-agent',
  description: 'lambda-mesh: the Consul servers\' agent token (node registration, anti-entropy)',
  rules: [
    'node_prefix "" {',
    '  policy = "write"',
    '}',
    'service_prefix "" {',
    '  policy = "read"',
    '}',
  ].join('\n'),
};

/**
 * The policy bound to each scoped token, by role. Each grants only what that part of lambda-mesh does.
 */
export const SCOPED_TOKEN_POLICIES: Record<ConsulTokenRole, AclPolicyDefinition> = {
  // Config entries need, per kind: service-intentions `intentions:write` on the destination, service-defaults
  // `service:write` on the service. Both are needed for every service, hence the one empty-prefix rule.
  // @see https://developer.hashicorp.com/consul/commands/config/write
  // @see https://developer.hashicorp.com/consul/docs/reference/acl/rule#intentions
  [ConsulTokenRole.INTENTIONS_WRITER]: {
    description: 'lambda-mesh: writes service-intentions and service-defaults config entries',
    rules: [
      'service_prefix "" {',
      '  policy     = "write"',
      '  intentions = "write"',
      '}',
    ].join('\n'),
  },
  // `PUT /v1/catalog/register` of an external node and its services needs `node:write` on the node and
  // `service:write` on the services; a leaf certificate (`/v1/agent/connect/ca/leaf/:service`) needs
  // `service:write` on that service; the CA roots need no ACL. Nothing here touches intentions, keys or ACLs.
  // @see https://developer.hashicorp.com/consul/api-docs/catalog#register-entity
  // @see https://developer.hashicorp.com/consul/api-docs/agent/connect#service-leaf-certificate
  [ConsulTokenRole.IDENTITY_REGISTRAR]: {
    description: 'lambda-mesh: registers function identities as external services and fetches their leaf certificates',
    rules: [
      'node_prefix "" {',
      '  policy = "write"',
      '}',
      'service_prefix "" {',
      '  policy = "write"',
      '}',
    ].join('\n'),
  },
  // Auth methods, binding rules, roles and policies need `acl = "write"` (Consul has no finer ACL for them, and it
  // can mint any token: only the auth method handler's role can read this token). Registering a node needs
  // `node:write` on it: the synthetic nodes are named after ECS cluster ARNs (`arn:...`) or `lambda-mesh-<mesh>-ec2-*`.
  // @see https://developer.hashicorp.com/consul/api-docs/acl/auth-methods
  // @see https://developer.hashicorp.com/consul/api-docs/catalog#register-entity
  [ConsulTokenRole.WORKLOAD_IDENTITY]: {
    description: 'lambda-mesh: keeps the aws-iam auth method of mesh workloads, its binding rules, the gateway role and the synthetic nodes',
    rules: [
      'acl = "write"',
      'node_prefix "arn:" {',
      '  policy = "write"',
      '}',
      `node_prefix "${WORKLOAD_NODE_PREFIX}" {`,
      '  policy = "write"',
      '}',
    ].join('\n'),
  },
  // consul-k8s's server-acl-init with external servers: `acl:write` for its auth methods, policies and binding rules,
  // `agent:read` for `GET /v1/agent/self` (the datacenter). No management token reaches the cluster.
  // @see https://developer.hashicorp.com/consul/docs/k8s/deployment-configurations/servers-outside-kubernetes
  [ConsulTokenRole.KUBERNETES_ACL_INIT]: {
    description: 'lambda-mesh: consul-k8s server-acl-init on EKS (Kubernetes auth method, component policies)',
    rules: [
      'acl = "write"',
      'agent_prefix "" {',
      '  policy = "read"',
      '}',
    ].join('\n'),
  },
};
