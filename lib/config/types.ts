/**
 * The protocols a backend service can speak, as Consul's `service-defaults` `Protocol` knows them.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-defaults#protocol
 */
export const SERVICE_PROTOCOLS = ['tcp', 'http', 'http2', 'grpc'] as const;

/**
 * Defines the protocol of a backend service: `tcp` for L4 only; `http`, `http2` and `grpc` allow L7 rules.
 */
export type ServiceProtocol = (typeof SERVICE_PROTOCOLS)[number];

/**
 * Where a backend service can run (the mesh model's `ServicePlacement` values).
 */
export const SERVICE_PLACEMENTS = ['ecs', 'ec2', 'eks', 'external'] as const;

/**
 * Defines where a backend service runs: `ecs` (Fargate), `ec2` (an Auto Scaling group), `eks` (pods injected by
 * consul-k8s) or `external` (registered in Consul by its owner).
 */
export type ServicePlacementName = (typeof SERVICE_PLACEMENTS)[number];

/**
 * The sample backends that lambda-mesh ships (lib/sample-services), by name.
 */
export const SAMPLE_SERVICES = ['feature-store', 'log-service', 'result-writer'] as const;

/**
 * Defines a sample backend of lambda-mesh.
 */
export type SampleServiceName = (typeof SAMPLE_SERVICES)[number];

/**
 * The actions a rule can take, as Consul intentions know them.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions#action
 */
export const RULE_ACTIONS = ['allow', 'deny'] as const;

/**
 * Defines what a rule does with matching traffic.
 */
export type RuleAction = (typeof RULE_ACTIONS)[number];

import { type HeaderMatch, type HttpMatch, HttpMethod as MeshHttpMethod } from '../../constructs/mesh';

/**
 * The HTTP methods an L7 rule can match (upper case), in the mesh's order.
 */
export const HTTP_METHODS: readonly HttpMethod[] = Object.values(MeshHttpMethod);

/**
 * Defines an HTTP method an L7 rule can match.
 */
export type HttpMethod = `${MeshHttpMethod}`;

/**
 * Defines one lambda-mesh environment: the file given with `cdk synth -c config=env.yaml`.
 *
 * The loader checks a document against {@link CONFIG_SCHEMA} and the cross-field rules in `validateConfig`,
 * and returns it as written: optional fields stay absent, and whoever builds the environment applies the
 * `@default`s below (see `CONFIG_DEFAULTS`).
 */
export interface EnvironmentConfig {
  /**
   * The environment name: the prefix of every stack name, e.g. `lambda-mesh-dev`.
   *
   * 2 to 32 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit.
   */
  readonly name: string;

  /**
   * The AWS account and region to deploy to.
   *
   * @default - environment-agnostic stacks: account and region come from the deploying credentials
   */
  readonly env?: AwsEnvironmentConfig;

  /**
   * The VPC the mesh runs in.
   *
   * @default - a VPC with CIDR `10.0.0.0/16` over up to 3 availability zones
   */
  readonly network?: NetworkConfig;

  /**
   * Consul settings shared by every member of the mesh.
   *
   * @default - datacenter `dc1`, partition and namespace `default`, trust domain from Consul
   */
  readonly mesh?: MeshConfig;

  /**
   * The Consul control plane: the server cluster and the mesh gateway.
   *
   * @default - 3 servers (m7g.large) running Consul 1.21.5, 2 mesh gateway tasks
   */
  readonly controlPlane?: ControlPlaneConfig;

  /**
   * An EKS cluster in the mesh network (or an existing one), with Gloo Edge routing to the model functions.
   *
   * @default - no cluster
   */
  readonly eks?: EksConfig;

  /**
   * The Kubernetes charts: the namespace of the mesh's workloads, tracing, and what the ingress gateway exposes.
   *
   * @default - namespace `lambda-mesh`, 1% tracing to an in-cluster OpenTelemetry collector that logs spans
   */
  readonly kubernetes?: KubernetesConfig;

  /**
   * The backend services that model functions call through the mesh.
   */
  readonly services: ServiceConfig[];

  /**
   * The model functions: each version is its own mesh identity.
   */
  readonly functions: FunctionConfig[];

  /**
   * Who may call which service. Traffic that no rule allows is denied.
   */
  readonly rules: RuleConfig[];
}

/**
 * Defines the AWS account and region of an environment's stacks.
 *
 * @see https://docs.aws.amazon.com/cdk/v2/guide/environments.html
 */
export interface AwsEnvironmentConfig {
  /**
   * The 12-digit AWS account ID.
   *
   * @default - the account of the deploying credentials
   */
  readonly account?: string;

  /**
   * The AWS region, e.g. `us-east-1`. When set, `network.availabilityZones` is required, because looking the
   * zones up would need AWS credentials at synth.
   *
   * @default - the region of the deploying credentials
   */
  readonly region?: string;
}

/**
 * Defines the VPC of an environment.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_ec2.Vpc.html
 */
export interface NetworkConfig {
  /**
   * The VPC's IPv4 CIDR block, with a prefix of /16 or /17 (each zone takes two /20 subnets and a /24) and the host bits zero.
   *
   * @default '10.0.0.0/16'
   */
  readonly cidr?: string;

  /**
   * The most availability zones to use, 2 or 3. When `availabilityZones` is set too, it must equal their count.
   *
   * @default 3
   */
  readonly maxAzs?: number;

  /**
   * The availability zones to use, 2 or 3 distinct names in `env.region`, e.g. `us-east-1a`.
   *
   * @default - the first `maxAzs` zones of the deploy-time region
   */
  readonly availabilityZones?: string[];

  /**
   * Give the server subnets a NAT path to the internet (HashiCorp's package repository, the gateway image on
   * ECR Public). Without it, the Consul servers need an S3 mirror of the package (not configurable here yet).
   *
   * @default true
   */
  readonly serverEgress?: boolean;

  /**
   * Give the service subnets a NAT path to the internet too, through the server subnets' NAT gateways (needs
   * `serverEgress`). It is weaker isolation, so synth warns (`lambda-mesh:network-service-egress`): anything in the
   * service subnets (the EKS nodes and their pods) can then reach the internet. A new EKS cluster needs it for
   * `kubernetes.applyToCluster`, because its nodes pull Istio's images from docker.io and Knative's from gcr.io.
   *
   * @default false - the service subnets reach only the VPC endpoints and the rest of the VPC
   * @see https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html
   */
  readonly serviceEgress?: boolean;
}

/**
 * Defines the Consul control plane of an environment.
 *
 * @see https://developer.hashicorp.com/consul/docs/install/performance#deployment-size
 */
export interface ControlPlaneConfig {
  /**
   * How many Consul servers: 3 or 5; 1 only with `devMode`.
   *
   * @default 3
   */
  readonly servers?: number;

  /**
   * Allow a single server (no redundancy; synth warns).
   *
   * @default false
   */
  readonly devMode?: boolean;

  /**
   * The Consul version, `X.Y.Z`, 1.16 or newer.
   *
   * @default '1.21.5'
   */
  readonly consulVersion?: string;

  /**
   * The servers' EC2 instance type, e.g. `m7g.large` (arm64) or `m7i.large` (x86_64).
   *
   * @default 'm7g.large'
   */
  readonly instanceType?: string;

  /**
   * How many mesh gateway tasks: at least 2; 1 only with `devMode`.
   *
   * @default 2
   */
  readonly gatewayTasks?: number;
}

/**
 * Defines the Consul settings shared by every member of the mesh.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect
 */
export interface MeshConfig {
  /**
   * The Consul datacenter, a DNS-1123 label.
   *
   * @default 'dc1'
   */
  readonly datacenter?: string;

  /**
   * The SPIFFE trust domain of the mesh's certificates, a DNS name.
   *
   * @default - the trust domain Consul's CA generates (`<cluster id>.consul`)
   */
  readonly trustDomain?: string;

  /**
   * The Consul admin partition (Consul Enterprise), a DNS-1123 label.
   *
   * @default 'default'
   */
  readonly partition?: string;

  /**
   * The Consul namespace (Consul Enterprise), a DNS-1123 label.
   *
   * @default 'default'
   */
  readonly namespace?: string;
}

/**
 * Defines a backend service that model functions call through the mesh.
 */
export interface ServiceConfig {
  /**
   * The service name in Consul, a DNS-1123 label; unique among services, functions and function versions.
   */
  readonly name: string;

  /**
   * The port the service listens on, 1 to 65535.
   */
  readonly port: number;

  /**
   * The protocol the service speaks; L7 (`http`) rules need `http`, `http2` or `grpc`.
   *
   * @default 'tcp'
   */
  readonly protocol?: ServiceProtocol;

  /**
   * The port, 1024 to 65535, on which a function's local proxy listens for this service.
   *
   * @default - the service's port (which must then be at least 1024, not 9001, and unique in the mesh)
   */
  readonly localPort?: number;

  /**
   * Where the service runs. `ecs`, `ec2` and `eks` need `workload`; `eks` needs the `eks` section; `external`
   * services are registered in Consul by their owners (lambda-mesh gives them a binding rule of the auth method).
   */
  readonly placement: ServicePlacementName;

  /**
   * For `external`: the security group of the owner's instances, so lambda-mesh opens their sidecar port (20000)
   * to the mesh gateway and the services the rules let call them, and lets them reach the Consul servers.
   *
   * @default - no wiring: the owner opens the paths (see MeshExternalService)
   */
  readonly securityGroupId?: string;

  /**
   * What runs the service, for `ecs`, `ec2` and `eks`.
   *
   * @default - none (required for `ecs`, `ec2` and `eks`; not allowed for `external`)
   */
  readonly workload?: WorkloadConfig;

  /**
   * What the service is for, for people.
   *
   * @default - no description
   */
  readonly description?: string;
}

/**
 * Defines what runs a service's instances: exactly one of `sample`, `image` and `build`, and their size.
 */
export interface WorkloadConfig {
  /**
   * A sample backend of lambda-mesh (lib/sample-services), built from a generated context with a pinned base image.
   *
   * @default - not a sample: `image` or `build`
   */
  readonly sample?: SampleServiceName;

  /**
   * A container image pinned by digest: `<repository>@sha256:<64 hex digits>`.
   *
   * @default - not an image: `sample` or `build`
   */
  readonly image?: string;

  /**
   * A directory with a Dockerfile (relative to the config file), built at deploy and pushed to the CDK assets
   * repository. Its base images should be pinned by digest.
   *
   * @default - not built: `sample` or `image`
   */
  readonly build?: string;

  /**
   * CPU: Fargate task CPU units for `ecs` (256, 512, 1024, 2048 or 4096); the container's CPU request in
   * millicores for `eks`; not used for `ec2` (the instance type decides).
   *
   * @default 256 (ecs), 100 (eks)
   */
  readonly cpu?: number;

  /**
   * Memory in MiB: the Fargate task's for `ecs` (a size Fargate offers for `cpu`; the sidecar takes 384 of it),
   * the container's limit for `eks` and `ec2`.
   *
   * @default 1024 (ecs), 256 (eks, ec2)
   */
  readonly memoryMiB?: number;

  /**
   * How many instances run: ECS tasks, EC2 instances or pods, spread over the zones.
   *
   * @default 2
   */
  readonly count?: number;

  /**
   * How the platform checks an instance; an unhealthy instance gets no mesh traffic. `command` runs in the
   * container (ECS, EC2, EKS); `path` is an HTTP GET on the service's port (EC2, EKS).
   *
   * @default - a sample's own check; none for `image` and `build`
   */
  readonly healthCheck?: HealthCheckConfig;

  /**
   * The services it calls, each of which the rules must allow. They are reached at `MESH_UPSTREAM_<NAME>_URL`.
   *
   * @default - every service the rules let it call
   */
  readonly upstreams?: string[];

  /**
   * The EC2 instance type, for `ec2`.
   *
   * @default 't4g.small' (arm64)
   */
  readonly instanceType?: string;
}

/**
 * Defines an instance health check: exactly one of `command` and `path`.
 */
export interface HealthCheckConfig {
  /**
   * A command run in the container; exit status 0 means healthy.
   *
   * @default - no command: `path`
   */
  readonly command?: string[];

  /**
   * An HTTP path GET on the service's port; a 2xx or 3xx answer means healthy (EC2 and EKS).
   *
   * @default - no path: `command`
   */
  readonly path?: string;
}

/**
 * Defines a model function and its versions.
 */
export interface FunctionConfig {
  /**
   * The function name, a DNS-1123 label; unique among services, functions and function versions.
   */
  readonly name: string;

  /**
   * The deployed versions, at least one, each a DNS-1123 label (`v1`, `v2`). Each version is a mesh identity
   * named `<name>-<version>`, at most 63 characters.
   */
  readonly versions: string[];

  /**
   * What the function is for, for people.
   *
   * @default - no description
   */
  readonly description?: string;
}

/**
 * Defines a rule: which caller may (or may not) reach which service, optionally per HTTP request.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions
 */
export interface RuleConfig {
  /**
   * The caller: a service name, a function name (all its versions) or a version identity `<function>-<version>`.
   */
  readonly from: string;

  /**
   * The service called.
   */
  readonly to: string;

  /**
   * What to do with matching traffic.
   *
   * @default 'allow'
   */
  readonly action?: RuleAction;

  /**
   * Match HTTP requests (an L7 rule) instead of whole connections; needs an `http`, `http2` or `grpc` service.
   *
   * @default - an L4 rule: it applies to every connection
   */
  readonly http?: HttpRuleConfig;

  /**
   * Why the rule exists, for people.
   *
   * @default - no description
   */
  readonly description?: string;
}

/**
 * Defines the HTTP requests an L7 rule matches: the mesh model's {@link HttpMatch}, with methods typed.
 * All of the given criteria must hold; at least one is required.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/config-entries/service-intentions#permissions-http
 */
export interface HttpRuleConfig extends Omit<HttpMatch, 'methods' | 'headers'> {
  /**
   * Match these methods (upper case, each once).
   *
   * @default - every method
   */
  readonly methods?: HttpMethod[];

  /**
   * Match requests whose headers satisfy all of these.
   *
   * @default - no header matches
   */
  readonly headers?: HeaderRuleConfig[];
}

/**
 * Defines a match on one request header: the mesh model's {@link HeaderMatch}.
 */
export type HeaderRuleConfig = HeaderMatch;

/**
 * Defines the EKS part of an environment: a private cluster in the mesh network's service subnets (or an existing
 * cluster), and Gloo Edge routing to the model functions.
 *
 * @see https://docs.aws.amazon.com/eks/latest/userguide/private-clusters.html
 */
export interface EksConfig {
  /**
   * Use this existing cluster instead of creating one.
   *
   * @default - a new cluster
   */
  readonly existingCluster?: ExistingClusterConfig;

  /**
   * The nodes' EC2 instance type (x86_64: Gloo's images are pulled for amd64). Ignored with `existingCluster`.
   *
   * @default 'm7i.large'
   */
  readonly instanceType?: string;

  /**
   * How many nodes, 2 to 20 (two zones at least). Ignored with `existingCluster`.
   *
   * @default 2
   */
  readonly nodes?: number;

  /**
   * The namespace the services with placement `eks` run in. consul-k8s injects its sidecar there and only there;
   * it must not be the Istio-injected `kubernetes.namespace` (a pod is in one mesh only).
   *
   * @default 'lambda-mesh-consul'
   */
  readonly meshServicesNamespace?: string;

  /**
   * Gloo Edge on the cluster.
   *
   * @default - Gloo 1.22.1 without function discovery, a route per function version
   */
  readonly gloo?: GlooConfig;
}

/**
 * Defines an existing EKS cluster to install Gloo on.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_eks_v2.ClusterAttributes.html
 */
export interface ExistingClusterConfig {
  /** The cluster name. */
  readonly clusterName: string;

  /** The ARN of the cluster's IAM OIDC provider. */
  readonly openIdConnectProviderArn: string;

  /** The ARN of a role with cluster-admin access (an access entry) that the kubectl handler runs as. */
  readonly kubectlRoleArn: string;

  /** The ID of the cluster security group, so the kubectl handler can reach the private endpoint. */
  readonly clusterSecurityGroupId: string;
}

/**
 * Defines Gloo Edge on the environment's cluster.
 *
 * @see https://docs.solo.io/gloo-edge/latest/guides/traffic_management/destination_types/aws_lambda/
 */
export interface GlooConfig {
  /**
   * The Gloo Edge Helm chart version, `X.Y.Z`.
   *
   * @default '1.22.1'
   */
  readonly version?: string;

  /**
   * Turn on Gloo's function discovery (synth warns: it rewrites hand-written Upstreams).
   *
   * @default false
   */
  readonly discovery?: boolean;

  /**
   * The routes, each to one function version of the config.
   *
   * @default - one route per function version at `/<function>/<version>`
   */
  readonly routes?: GlooRouteConfig[];
}

/**
 * Defines a Gloo route to one function version.
 */
export interface GlooRouteConfig {
  /** The path prefix, starting with '/'. */
  readonly path: string;

  /** The function, one of `functions[].name`. */
  readonly function: string;

  /** The version, one of that function's `versions`. */
  readonly version: string;

  /**
   * Answer with the function's result read as an API Gateway proxy response.
   *
   * @default false
   */
  readonly unwrapAsApiGateway?: boolean;
}

/**
 * Defines the Kubernetes charts of an environment: Istio policies rendered from the mesh model, and telemetry.
 *
 * @see https://istio.io/latest/docs/reference/config/security/authorization-policy/
 */
export interface KubernetesConfig {
  /**
   * The namespace the mesh's services run in (as Knative Services, under a service account per identity); it is
   * labelled for Istio sidecar injection, with STRICT mTLS and deny-all.
   *
   * @default 'lambda-mesh'
   */
  readonly namespace?: string;

  /**
   * The share of requests traced, in percent (0 to 100).
   *
   * @default 1
   */
  readonly tracingSamplingPercentage?: number;

  /**
   * Where the OpenTelemetry collector sends traces, metrics and logs: an OTLP/gRPC endpoint `host:port`, over TLS.
   *
   * @default - the collector writes what it receives to its own log
   */
  readonly otlpEndpoint?: string;

  /**
   * Services the Istio ingress gateway may call (their Knative routes are exposed outside the cluster).
   *
   * @default - none
   */
  readonly exposedServices?: string[];

  /**
   * Install Istio 1.30 and Knative Serving 1.23 on the `eks` cluster and apply the charts through it (needs the `eks`
   * section). The nodes must be able to pull the Istio (docker.io/istio), Knative (gcr.io/knative-releases) and
   * OpenTelemetry (docker.io/otel) images. A new cluster's nodes run in the service subnets, which have no internet
   * route by default: with a new cluster this needs `network.serviceEgress: true` (config error otherwise). With
   * `eks.existingCluster`, making those registries reachable from its nodes (a NAT path or a registry mirror) is
   * yours to arrange: the environment cannot see the existing cluster's network.
   *
   * @default false - the charts are only written to dist/
   * @see https://istio.io/latest/docs/setup/install/helm/
   */
  readonly applyToCluster?: boolean;
}
