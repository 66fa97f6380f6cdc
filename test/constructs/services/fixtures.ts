/**
 * What the services tests (ECS, EC2, external) share: a lambda-mesh environment built from the real constructs, one
 * stack per part as lib/environment.ts builds it (network; control plane with the servers, the aws-iam auth method,
 * the image cache, the ECS cluster and the mesh gateway; the services), and a mesh in which feature-store and
 * result-writer may call log-service and model-a calls feature-store.
 */
import { type App, Stack } from 'aws-cdk-lib';
import { type Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { ConsulIamAuthMethod, ConsulImage, ConsulImageCache, ConsulServerCluster, MeshGateway } from '../../../constructs/consul';
import { Mesh, type MeshService, ServicePlacement, ServiceProtocol } from '../../../constructs/mesh';
import { MeshNetwork, type MeshNetworkProps } from '../../../constructs/network';
import { MeshEc2Service, type MeshEc2ServiceProps, MeshEcsService, type MeshEcsServiceProps } from '../../../constructs/services';
import { newTestApp } from '../../harness';

/** A digest of the right shape, for images pinned by digest. */
export const DIGEST = `sha256:${'a'.repeat(64)}`;

/** The environment a mesh ECS service joins. */
export interface ServicesFixture {
  readonly app: App;
  readonly mesh: Mesh;
  readonly featureStore: MeshService;
  readonly resultWriter: MeshService;
  readonly logService: MeshService;
  readonly network: MeshNetwork;
  readonly controlPlane: Stack;
  readonly cluster: ConsulServerCluster;
  readonly authMethod: ConsulIamAuthMethod;
  readonly imageCache: ConsulImageCache;
  readonly ecsCluster: ecs.Cluster;
  readonly gateway: MeshGateway;
  /** The consul-dataplane, consul-ecs and Consul images through the cache, as the environment uses them. */
  readonly images: { readonly dataplane: ConsulImage; readonly consulEcs: ConsulImage; readonly consul: ConsulImage };
  /** Where the tests' ECS services go. */
  readonly servicesStack: Stack;
}

/** Options of {@link servicesFixture}. */
export interface ServicesFixtureOptions {
  readonly network?: MeshNetworkProps;
  readonly context?: Record<string, unknown>;
  /** Where the model places each service (ECS when left out). */
  readonly placements?: Readonly<Partial<Record<'feature-store' | 'result-writer' | 'log-service', ServicePlacement>>>;
}

/**
 * A mesh `ml` with feature-store (HTTP 8080), result-writer (HTTP 8081) and log-service (TCP 24224), on ECS unless
 * `options.placements` says otherwise: feature-store and result-writer may call log-service, model-a (v1) may call
 * feature-store.
 */
export function servicesFixture(options: ServicesFixtureOptions = {}): ServicesFixture {
  const app = newTestApp(options.context ?? {});
  const mesh = new Mesh(app, 'Mesh', { meshName: 'ml' });
  const placement = (name: keyof NonNullable<ServicesFixtureOptions['placements']>): ServicePlacement => options.placements?.[name] ?? ServicePlacement.ECS;
  const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP, placement: placement('feature-store') });
  const resultWriter = mesh.addService('result-writer', { port: 8081, protocol: ServiceProtocol.HTTP, placement: placement('result-writer') });
  const logService = mesh.addService('log-service', { port: 24224, placement: placement('log-service') });
  const modelA = mesh.addFunction('model-a', { versions: ['v1'] });
  logService.allowFrom(featureStore);
  logService.allowFrom(resultWriter);
  featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] } });

  const network = new MeshNetwork(new Stack(app, 'network'), 'Network', options.network ?? {});
  const controlPlane = new Stack(app, 'control-plane');
  const cluster = new ConsulServerCluster(controlPlane, 'Consul', { mesh, network });
  const imageCache = new ConsulImageCache(controlPlane, 'ImageCache');
  const images = {
    dataplane: imageCache.image(ConsulImage.dataplane()),
    consulEcs: imageCache.image(ConsulImage.consulEcs()),
    consul: imageCache.image(ConsulImage.consul()),
  };
  const ecsCluster = new ecs.Cluster(controlPlane, 'EcsCluster', { vpc: network.vpc, containerInsightsV2: ecs.ContainerInsights.ENABLED });
  const authMethod = new ConsulIamAuthMethod(controlPlane, 'AuthMethod', { mesh, cluster, network });
  const gateway = new MeshGateway(controlPlane, 'MeshGateway', {
    cluster,
    network,
    authMethod,
    ecsCluster,
    dataplaneImage: images.dataplane,
    consulEcsImage: images.consulEcs,
  });
  return {
    app, mesh, featureStore, resultWriter, logService, network, controlPlane, cluster, authMethod, imageCache, ecsCluster, gateway, images,
    servicesStack: new Stack(app, 'services'),
  };
}

/** An app image in this account's ECR, by digest (pinned, pulled through the VPC endpoints). */
export function appImage(scope: Stack, name: string): ecs.ContainerImage {
  const repository = ecr.Repository.fromRepositoryName(scope, `${name}Repository`, name);
  return ecs.ContainerImage.fromEcrRepository(repository, DIGEST);
}

/** The props every test ECS service starts from: the fixture's environment, the cached Consul images. */
export function ecsServiceProps(f: ServicesFixture, service: MeshService): Omit<MeshEcsServiceProps, 'container' | 'taskDefinition'> {
  return {
    service,
    cluster: f.cluster,
    authMethod: f.authMethod,
    gateway: f.gateway,
    network: f.network,
    ecsCluster: f.ecsCluster,
    dataplaneImage: f.images.dataplane,
    consulEcsImage: f.images.consulEcs,
  };
}

/** An app container of an ECR image by digest, as an unprivileged user (what cfn-guard's CT.ECS.PR.3 asks of every container). */
export function appContainer(f: ServicesFixture, name: string, options: Partial<ecs.ContainerDefinitionOptions> = {}): ecs.ContainerDefinitionOptions {
  return { image: appImage(f.servicesStack, name), user: '1000', ...options };
}

/** A MeshEcsService of `service` in the services stack; unless given, its app is {@link appContainer}. */
export function ecsService(f: ServicesFixture, id: string, service: MeshService, props: Partial<MeshEcsServiceProps> = {}): MeshEcsService {
  const container = props.taskDefinition === undefined ? { container: appContainer(f, id) } : {};
  return new MeshEcsService(f.servicesStack, id, { ...ecsServiceProps(f, service), ...container, ...props });
}

/** An app image for EC2 instances: in this account's ECR (repository `name` in lower case), by digest. */
export function ec2AppImage(scope: Stack, name: string): ConsulImage {
  return ConsulImage.fromEcrRepository(ecr.Repository.fromRepositoryName(scope, `${name}Repository`, name.toLowerCase()), DIGEST);
}

/** The props every test EC2 service starts from: the fixture's environment, the cached Consul images. */
export function ec2ServiceProps(f: ServicesFixture, service: MeshService): Omit<MeshEc2ServiceProps, 'image'> {
  return {
    service,
    cluster: f.cluster,
    authMethod: f.authMethod,
    gateway: f.gateway,
    network: f.network,
    dataplaneImage: f.images.dataplane,
    consulImage: f.images.consul,
  };
}

/** A MeshEc2Service of `service` in the services stack; unless given, its app is {@link ec2AppImage}. */
export function ec2Service(f: ServicesFixture, id: string, service: MeshService, props: Partial<MeshEc2ServiceProps> = {}): MeshEc2Service {
  return new MeshEc2Service(f.servicesStack, id, { ...ec2ServiceProps(f, service), image: ec2AppImage(f.servicesStack, id), ...props });
}

// ---------------------------------------------------------------------------------------------------------------
// Security-group rules, read from a template.

/** The mesh gateway tasks' group, as the services stack imports it from the control plane. */
export const GATEWAY_TASKS = 'control-plane/PublishOutputFnGetAttMeshGatewayTaskSecurityGroup700D6463GroupId071FA3DE';
/** The Consul load balancer's group, as the services stack imports it. */
export const CONSUL_LB = 'control-plane/PublishOutputFnGetAttConsulLoadBalancerSecurityGroupCDD93333GroupId099D53C0';
/** The VPC endpoints' group, as the services stack imports it. */
export const ENDPOINTS = 'network/PublishOutputFnGetAttNetworkEndpointSecurityGroup6DEF6240GroupIdB3623E81';

type RuleResource = { Properties: Record<string, unknown> };

/** The logical id of the security group whose id starts with `prefix`. */
export function securityGroupId(t: Template, prefix: string): string {
  return Object.keys(t.findResources('AWS::EC2::SecurityGroup')).find((id) => id.startsWith(prefix))!;
}

/**
 * Every rule of a security group of `t` (a logical id) or of an imported one (its `sg-` id), inline and standalone,
 * as `<from>-<to>:<peer>`, sorted: ingress with the source, egress with the destination.
 */
export function rulesOf(t: Template, direction: 'ingress' | 'egress', group: string): string[] {
  const own = JSON.stringify(group.startsWith('sg-') ? group : { 'Fn::GetAtt': [group, 'GroupId'] });
  const peerOf = (p: Record<string, unknown>): string => peerName(direction === 'ingress' ? p.SourceSecurityGroupId ?? p.CidrIp : p.DestinationSecurityGroupId ?? p.CidrIp);
  const standalone = Object.values(t.findResources(direction === 'ingress' ? 'AWS::EC2::SecurityGroupIngress' : 'AWS::EC2::SecurityGroupEgress'))
    .map((r) => (r as RuleResource).Properties)
    .filter((p) => JSON.stringify(p.GroupId) === own);
  const resource = group.startsWith('sg-') ? undefined : (t.findResources('AWS::EC2::SecurityGroup')[group] as RuleResource | undefined);
  const inline = (resource?.Properties[direction === 'ingress' ? 'SecurityGroupIngress' : 'SecurityGroupEgress'] ?? []) as Array<Record<string, unknown>>;
  return [...standalone, ...inline].map((p) => `${String(p.FromPort)}-${String(p.ToPort)}:${peerOf(p)}`).sort();
}

/** A peer for people: the logical id in this stack, the output of another stack's group, an `sg-` id or the CIDR. */
function peerName(peer: unknown): string {
  if (typeof peer === 'string') {
    return peer;
  }
  const p = peer as { 'Fn::GetAtt'?: [string, string]; 'Fn::GetStackOutput'?: { StackName: string; OutputName: string } };
  if (p['Fn::GetAtt']) {
    return p['Fn::GetAtt'][0];
  }
  if (p['Fn::GetStackOutput']) {
    return `${p['Fn::GetStackOutput'].StackName}/${p['Fn::GetStackOutput'].OutputName}`;
  }
  return JSON.stringify(peer);
}

// ---------------------------------------------------------------------------------------------------------------
// What CloudFormation fills in at deploy time, for reading templates as an instance would see them.

export const REGION = 'eu-west-1';
export const ACCOUNT = '123456789012';
export const CA_SECRET_ARN = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:ConsulCaCertificate-AbCdEf`;
export const ECS_CLUSTER_ARN = `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/ml-services`;
const PSEUDO: Readonly<Record<string, string>> = { 'AWS::Region': REGION, 'AWS::AccountId': ACCOUNT, 'AWS::Partition': 'aws', 'AWS::URLSuffix': 'amazonaws.com' };

/**
 * `value` with its intrinsics replaced by what this test's deployment would give them: the pseudo parameters, the
 * Consul load balancer's DNS name as 127.0.0.1 (the stand-in), the CA secret's ARN, the ECS cluster's ARN and the
 * log groups' names. Anything else fails, so a new reference is noticed.
 */
export function deployed(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(deployed);
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  const o = value as Record<string, unknown>;
  if (!Object.keys(o).some((k) => k === 'Ref' || k.startsWith('Fn::'))) {
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, deployed(v)]));
  }
  const json = JSON.stringify(o);
  if ('Fn::Join' in o) {
    const [separator, parts] = o['Fn::Join'] as [string, unknown[]];
    return parts.map((p) => String(deployed(p))).join(separator);
  }
  if ('Fn::Base64' in o) {
    return deployed(o['Fn::Base64']);
  }
  if (typeof o['Fn::Sub'] === 'string') {
    return o['Fn::Sub'].replace(/\$\{([^}]+)\}/g, (_m, name: string) => PSEUDO[name] ?? `unresolved ${name}`);
  }
  if (typeof o.Ref === 'string' && PSEUDO[o.Ref] !== undefined) {
    return PSEUDO[o.Ref];
  }
  if (typeof o.Ref === 'string' && /Logs[0-9A-F]{8}$/.test(o.Ref)) {
    return `services-${o.Ref}`;
  }
  if (/ConsulLoadBalancer[0-9A-F]{8}(",")?DNSName/.test(json)) {
    return '127.0.0.1';
  }
  if (/ConsulCaCertificate[0-9A-F]{8}/.test(json)) {
    return CA_SECRET_ARN;
  }
  if (/"EcsCluster[0-9A-F]{8}","Arn"/.test(json)) {
    return ECS_CLUSTER_ARN;
  }
  throw new Error(`the test does not know what ${json} is at deploy time`);
}

/** A resource of a template. */
export interface TemplateResource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly DependsOn?: string[];
  readonly UpdatePolicy?: Record<string, unknown>;
}

/** The resource of `type` whose logical id starts with `prefix`, with that id. */
export function resourceOf(t: Template, type: string, prefix: string): [string, TemplateResource] {
  const found = Object.entries(t.findResources(type)).find(([id]) => id.startsWith(prefix));
  if (!found) {
    throw new Error(`no ${type} ${prefix}*`);
  }
  return [found[0], found[1] as TemplateResource];
}
