import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../../constructs/core/names';
import { HTTP_METHODS, RULE_ACTIONS, SAMPLE_SERVICES, SERVICE_PLACEMENTS, SERVICE_PROTOCOLS } from './types';

/**
 * Defines the subset of JSON Schema (draft-07) that {@link CONFIG_SCHEMA} uses.
 *
 * @see https://json-schema.org/draft-07/json-schema-validation
 */
export interface JsonSchemaNode {
  readonly $schema?: string;
  readonly $id?: string;
  readonly title?: string;
  readonly description?: string;
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: { readonly [key: string]: JsonSchemaNode };
  readonly required?: readonly string[];
  readonly additionalProperties?: boolean;
  readonly minProperties?: number;
  readonly items?: JsonSchemaNode;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
  readonly pattern?: string;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly (string | number | boolean)[];
  readonly oneOf?: readonly JsonSchemaNode[];
  readonly anyOf?: readonly JsonSchemaNode[];
  readonly not?: JsonSchemaNode;
}

/**
 * The string patterns of the config schema, each with the phrase error messages use for it,
 * so that users read "a DNS-1123 label (...)" instead of a regular expression.
 */
export const CONFIG_PATTERNS = {
  environmentName: {
    pattern: '^[a-z][a-z0-9-]{0,30}[a-z0-9]$',
    expected: "an environment name (2 to 32 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)",
  },
  dnsLabel: {
    pattern: DNS_1123_LABEL.source,
    expected: `a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${DNS_1123_LABEL_MAX_LENGTH} characters)`,
  },
  dnsName: {
    pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
    expected: "a DNS name (DNS-1123 labels joined by '.', at most 253 characters)",
  },
  account: {
    pattern: '^\\d{12}$',
    expected: 'a 12-digit AWS account ID, as a string',
  },
  region: {
    pattern: '^[a-z]{2}(-[a-z]+)+-\\d$',
    expected: "an AWS region name such as 'us-east-1'",
  },
  availabilityZone: {
    pattern: '^[a-z]{2}(-[a-z]+)+-\\d[a-z]$',
    expected: "an availability zone name such as 'us-east-1a'",
  },
  consulVersion: {
    pattern: '^\\d+\\.\\d+\\.\\d+$',
    expected: "a Consul version X.Y.Z such as '1.21.5' (no 'v' prefix)",
  },
  instanceType: {
    pattern: '^[a-z][a-z0-9-]*\\.[a-z0-9]+$',
    expected: "an EC2 instance type such as 'm7g.large'",
  },
  cidr: {
    pattern: '^((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)/(1[67])$',
    expected: "an IPv4 CIDR block with a prefix of /16 or /17, such as '10.0.0.0/16' (the subnets need about 25,000 addresses: 2 x /20 and a /24 per zone)",
  },
  path: {
    pattern: '^/',
    expected: "a path starting with '/'",
  },
  eksClusterName: {
    pattern: '^[0-9A-Za-z][A-Za-z0-9\\-_]{0,99}$',
    expected: "an EKS cluster name (1 to 100 letters, digits, '-' and '_', starting with a letter or digit)",
  },
  oidcProviderArn: {
    pattern: '^arn:aws[a-z-]*:iam::\\d{12}:oidc-provider/.+$',
    expected: "an IAM OIDC provider ARN such as 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE'",
  },
  roleArn: {
    pattern: '^arn:aws[a-z-]*:iam::\\d{12}:role/[\\w+=,.@/-]+$',
    expected: "an IAM role ARN such as 'arn:aws:iam::123456789012:role/eks-admin'",
  },
  securityGroupId: {
    pattern: '^sg-[0-9a-f]{8,17}$',
    expected: "a security group ID such as 'sg-0123456789abcdef0'",
  },
  glooVersion: {
    pattern: '^\\d+\\.\\d+\\.\\d+$',
    expected: "a Gloo Edge chart version X.Y.Z such as '1.22.1' (no 'v' prefix)",
  },
  otlpEndpoint: {
    pattern: '^[A-Za-z0-9.-]+:\\d{1,5}$',
    expected: 'an OTLP/gRPC endpoint host:port, e.g. tempo.example.com:4317',
  },
  pinnedImage: {
    pattern: '^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+@sha256:[a-f0-9]{64}$',
    expected: "an image pinned by digest, '<registry>/<repository>@sha256:<64 hex digits>' (a tag can be pushed again with other content)",
  },
  headerName: {
    pattern: "^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$",
    expected: "an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)",
  },
} as const;

/**
 * The phrase for a pattern of {@link CONFIG_PATTERNS}, for error messages.
 */
export function describePattern(pattern: string): string {
  const known = Object.values(CONFIG_PATTERNS).find((p) => p.pattern === pattern);
  return known?.expected ?? `a string matching /${pattern}/`;
}

const DNS_LABEL = {
  type: 'string',
  pattern: CONFIG_PATTERNS.dnsLabel.pattern,
  maxLength: DNS_1123_LABEL_MAX_LENGTH,
} as const satisfies JsonSchemaNode;

const TEXT = { type: 'string' } as const satisfies JsonSchemaNode;

const PATH = { type: 'string', pattern: CONFIG_PATTERNS.path.pattern } as const satisfies JsonSchemaNode;

const REGEX = { type: 'string', minLength: 1 } as const satisfies JsonSchemaNode;

const ENV_SCHEMA = {
  type: 'object',
  description: 'The AWS account and region to deploy to. Default: environment-agnostic stacks.',
  additionalProperties: false,
  properties: {
    account: { type: 'string', pattern: CONFIG_PATTERNS.account.pattern, description: 'The 12-digit AWS account ID.' },
    region: {
      type: 'string',
      pattern: CONFIG_PATTERNS.region.pattern,
      description: 'The AWS region, e.g. us-east-1. Needs network.availabilityZones.',
    },
  },
} as const satisfies JsonSchemaNode;

const NETWORK_SCHEMA = {
  type: 'object',
  description: 'The VPC the mesh runs in.',
  additionalProperties: false,
  properties: {
    cidr: {
      type: 'string',
      pattern: CONFIG_PATTERNS.cidr.pattern,
      description: "The VPC's IPv4 CIDR block, /16 or /17. Default: 10.0.0.0/16.",
    },
    maxAzs: { type: 'integer', minimum: 2, maximum: 3, description: 'The most availability zones to use. Default: 3.' },
    availabilityZones: {
      type: 'array',
      description: 'The availability zones to use, in env.region.',
      minItems: 2,
      maxItems: 3,
      uniqueItems: true,
      items: { type: 'string', pattern: CONFIG_PATTERNS.availabilityZone.pattern },
    },
    serverEgress: { type: 'boolean', description: 'Give the server subnets a NAT path to the internet. Default: true.' },
    serviceEgress: {
      type: 'boolean',
      description: 'Give the service subnets a NAT path too (needs serverEgress; synth warns): for EKS nodes that pull public images. Default: false.',
    },
  },
} as const satisfies JsonSchemaNode;

const CONTROL_PLANE_SCHEMA = {
  type: 'object',
  description: 'The Consul control plane: the server cluster and the mesh gateway.',
  additionalProperties: false,
  properties: {
    servers: { type: 'integer', minimum: 1, maximum: 5, description: 'How many Consul servers: 3 or 5; 1 only with devMode. Default: 3.' },
    devMode: { type: 'boolean', description: 'Allow a single server and a single gateway task. Default: false.' },
    consulVersion: { type: 'string', pattern: CONFIG_PATTERNS.consulVersion.pattern, description: 'The Consul version. Default: 1.21.5.' },
    instanceType: { type: 'string', pattern: CONFIG_PATTERNS.instanceType.pattern, description: 'The servers\' instance type. Default: m7g.large.' },
    gatewayTasks: { type: 'integer', minimum: 1, maximum: 20, description: 'How many mesh gateway tasks: at least 2, 1 only with devMode. Default: 2.' },
  },
} as const satisfies JsonSchemaNode;

const GLOO_ROUTE_SCHEMA = {
  type: 'object',
  description: 'A Gloo route to one function version.',
  additionalProperties: false,
  required: ['path', 'function', 'version'],
  properties: {
    path: { ...PATH, description: 'The path prefix.' },
    function: { ...DNS_LABEL, description: 'The function, one of functions[].name.' },
    version: { ...DNS_LABEL, description: "The version, one of the function's versions." },
    unwrapAsApiGateway: { type: 'boolean', description: "Read the function's result as an API Gateway proxy response. Default: false." },
  },
} as const satisfies JsonSchemaNode;

const EKS_SCHEMA = {
  type: 'object',
  description: 'An EKS cluster in the mesh network (or an existing one), with Gloo Edge routing to the model functions. Default: no cluster.',
  additionalProperties: false,
  properties: {
    existingCluster: {
      type: 'object',
      description: 'Use this existing cluster instead of creating one.',
      additionalProperties: false,
      required: ['clusterName', 'openIdConnectProviderArn', 'kubectlRoleArn', 'clusterSecurityGroupId'],
      properties: {
        clusterName: { type: 'string', pattern: CONFIG_PATTERNS.eksClusterName.pattern, description: 'The cluster name.' },
        openIdConnectProviderArn: { type: 'string', pattern: CONFIG_PATTERNS.oidcProviderArn.pattern, description: "The ARN of the cluster's IAM OIDC provider." },
        kubectlRoleArn: { type: 'string', pattern: CONFIG_PATTERNS.roleArn.pattern, description: 'A role with cluster-admin access that the kubectl handler runs as.' },
        clusterSecurityGroupId: { type: 'string', pattern: CONFIG_PATTERNS.securityGroupId.pattern, description: 'The cluster security group.' },
      },
    },
    instanceType: { type: 'string', pattern: CONFIG_PATTERNS.instanceType.pattern, description: "The nodes' instance type (x86_64). Default: m7i.large." },
    nodes: { type: 'integer', minimum: 2, maximum: 20, description: 'How many nodes. Default: 2.' },
    meshServicesNamespace: { ...DNS_LABEL, description: "The namespace of the services with placement eks, injected by Consul only. Default: 'lambda-mesh-consul'." },
    gloo: {
      type: 'object',
      description: 'Gloo Edge on the cluster.',
      additionalProperties: false,
      properties: {
        version: { type: 'string', pattern: CONFIG_PATTERNS.glooVersion.pattern, description: 'The Gloo Edge chart version. Default: 1.22.1.' },
        discovery: { type: 'boolean', description: "Turn on Gloo's function discovery. Default: false." },
        routes: { type: 'array', minItems: 1, items: GLOO_ROUTE_SCHEMA, description: 'Default: one route per function version at /<function>/<version>.' },
      },
    },
  },
} as const satisfies JsonSchemaNode;

const KUBERNETES_SCHEMA = {
  type: 'object',
  description: 'The Kubernetes charts: Istio policies from the mesh model, and telemetry.',
  additionalProperties: false,
  properties: {
    namespace: { ...DNS_LABEL, description: "The namespace of the mesh's workloads (injected, STRICT mTLS, deny-all). Default: lambda-mesh." },
    tracingSamplingPercentage: { type: 'number', minimum: 0, maximum: 100, description: 'The share of requests traced, in percent. Default: 1.' },
    otlpEndpoint: {
      type: 'string',
      pattern: CONFIG_PATTERNS.otlpEndpoint.pattern,
      description: "The OTLP/gRPC endpoint host:port the collector exports to, over TLS. Default: the collector's log.",
    },
    exposedServices: { type: 'array', description: 'Services the Istio ingress gateway may call. Default: none.', uniqueItems: true, items: DNS_LABEL },
    applyToCluster: {
      type: 'boolean',
      description: 'Install Istio and Knative on the eks cluster and apply the charts through it; a new cluster needs network.serviceEgress: true. Default: false.',
    },
  },
} as const satisfies JsonSchemaNode;

const MESH_SCHEMA = {
  type: 'object',
  description: 'Consul settings shared by every member of the mesh.',
  additionalProperties: false,
  properties: {
    datacenter: { ...DNS_LABEL, description: 'The Consul datacenter. Default: dc1.' },
    trustDomain: {
      type: 'string',
      pattern: CONFIG_PATTERNS.dnsName.pattern,
      maxLength: 253,
      description: "The SPIFFE trust domain. Default: the one Consul's CA generates.",
    },
    partition: { ...DNS_LABEL, description: 'The Consul admin partition (Enterprise). Default: default.' },
    namespace: { ...DNS_LABEL, description: 'The Consul namespace (Enterprise). Default: default.' },
  },
} as const satisfies JsonSchemaNode;

const WORKLOAD_SCHEMA = {
  type: 'object',
  description: 'What runs the service: exactly one of sample, image and build, and its size.',
  additionalProperties: false,
  properties: {
    sample: { type: 'string', enum: SAMPLE_SERVICES, description: 'A sample backend of lambda-mesh.' },
    image: { type: 'string', pattern: CONFIG_PATTERNS.pinnedImage.pattern, description: 'A container image pinned by digest.' },
    build: { type: 'string', minLength: 1, description: 'A directory with a Dockerfile, relative to the config file.' },
    cpu: { type: 'integer', minimum: 1, maximum: 16384, description: 'CPU units, 1024 = one vCPU: a Fargate size on ecs; on eks the pod gets cpu * 1000 / 1024 millicores. Default: 256.' },
    memoryMiB: { type: 'integer', minimum: 64, maximum: 122880, description: 'Memory in MiB.' },
    count: { type: 'integer', minimum: 1, maximum: 100, description: 'How many instances. Default: 2.' },
    healthCheck: {
      type: 'object',
      additionalProperties: false,
      description: 'Exactly one of command and path.',
      properties: {
        command: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        path: PATH,
      },
      oneOf: [{ required: ['command'] }, { required: ['path'] }],
    },
    upstreams: { type: 'array', uniqueItems: true, items: { type: 'string', pattern: CONFIG_PATTERNS.dnsLabel.pattern } },
    instanceType: { type: 'string', pattern: CONFIG_PATTERNS.instanceType.pattern, description: 'The EC2 instance type (ec2).' },
  },
  oneOf: [{ required: ['sample'] }, { required: ['image'] }, { required: ['build'] }],
} as const satisfies JsonSchemaNode;

const SERVICE_SCHEMA = {
  type: 'object',
  description: 'A backend service that model functions call through the mesh.',
  additionalProperties: false,
  required: ['name', 'port', 'placement'],
  properties: {
    name: { ...DNS_LABEL, description: 'The service name in Consul.' },
    port: { type: 'integer', minimum: 1, maximum: 65535, description: 'The port the service listens on.' },
    protocol: { type: 'string', enum: SERVICE_PROTOCOLS, description: 'The protocol the service speaks. Default: tcp.' },
    localPort: {
      type: 'integer',
      minimum: 1024,
      maximum: 65535,
      description: "The port of a function's local proxy for this service. Default: the service's port (it must then be 1024 or above, not 9001, and unique in the mesh).",
    },
    placement: { type: 'string', enum: SERVICE_PLACEMENTS, description: 'Where the service runs: ecs, ec2, eks or external.' },
    securityGroupId: { type: 'string', pattern: CONFIG_PATTERNS.securityGroupId.pattern, description: 'external: the security group of the owner\'s instances.' },
    workload: WORKLOAD_SCHEMA,
    description: TEXT,
  },
} as const satisfies JsonSchemaNode;

const FUNCTION_SCHEMA = {
  type: 'object',
  description: 'A model function and its versions.',
  additionalProperties: false,
  required: ['name', 'versions'],
  properties: {
    name: { ...DNS_LABEL, description: 'The function name.' },
    versions: {
      type: 'array',
      description: 'The deployed versions; each is the mesh identity <name>-<version>.',
      minItems: 1,
      uniqueItems: true,
      items: DNS_LABEL,
    },
    description: TEXT,
  },
} as const satisfies JsonSchemaNode;

const HEADER_SCHEMA = {
  type: 'object',
  description: 'A match on one request header: exactly one of exact, prefix, suffix, regex and present.',
  additionalProperties: false,
  required: ['name'],
  properties: {
    name: { type: 'string', pattern: CONFIG_PATTERNS.headerName.pattern },
    exact: TEXT,
    prefix: TEXT,
    suffix: TEXT,
    regex: REGEX,
    present: { type: 'boolean', enum: [true] },
    invert: { type: 'boolean' },
  },
  oneOf: [
    { required: ['exact'] },
    { required: ['prefix'] },
    { required: ['suffix'] },
    { required: ['regex'] },
    { required: ['present'] },
  ],
} as const satisfies JsonSchemaNode;

const HTTP_SCHEMA = {
  type: 'object',
  description: 'The HTTP requests an L7 rule matches: all given criteria must hold.',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    pathExact: PATH,
    pathPrefix: PATH,
    pathRegex: REGEX,
    methods: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: HTTP_METHODS } },
    headers: { type: 'array', minItems: 1, items: HEADER_SCHEMA },
  },
  // At most one path matcher: none of the pairs may be present together.
  not: {
    anyOf: [
      { required: ['pathExact', 'pathPrefix'] },
      { required: ['pathExact', 'pathRegex'] },
      { required: ['pathPrefix', 'pathRegex'] },
    ],
  },
} as const satisfies JsonSchemaNode;

const RULE_SCHEMA = {
  type: 'object',
  description: 'Which caller may (or may not) reach which service.',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    from: { ...DNS_LABEL, description: 'A service, a function (all versions) or a version identity <function>-<version>.' },
    to: { ...DNS_LABEL, description: 'The service called.' },
    action: { type: 'string', enum: RULE_ACTIONS, description: 'Default: allow.' },
    http: HTTP_SCHEMA,
    description: TEXT,
  },
} as const satisfies JsonSchemaNode;

/**
 * Defines the JSON Schema (draft-07) of an environment config file, mirroring {@link EnvironmentConfig}.
 *
 * Unknown keys are errors everywhere. Cross-field rules (unique names, identity length, region and zones)
 * are checked by `validateConfig`, not here. Editors can use it for YAML completion: write it out with
 * `JSON.stringify(CONFIG_SCHEMA)`.
 *
 * @see https://json-schema.org/specification-links#draft-7
 */
export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'lambda-mesh environment config',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'services', 'functions', 'rules'],
  properties: {
    name: {
      type: 'string',
      pattern: CONFIG_PATTERNS.environmentName.pattern,
      description: 'The environment name, the prefix of every stack name.',
    },
    env: ENV_SCHEMA,
    network: NETWORK_SCHEMA,
    mesh: MESH_SCHEMA,
    controlPlane: CONTROL_PLANE_SCHEMA,
    eks: EKS_SCHEMA,
    kubernetes: KUBERNETES_SCHEMA,
    services: { type: 'array', items: SERVICE_SCHEMA },
    functions: { type: 'array', items: FUNCTION_SCHEMA },
    rules: { type: 'array', items: RULE_SCHEMA },
  },
} as const satisfies JsonSchemaNode;
