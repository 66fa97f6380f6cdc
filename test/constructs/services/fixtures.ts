/**
 * What the MeshEcsService tests share: a lambda-mesh environment built from the real constructs, one stack per
 * part as lib/environment.ts builds it (network; control plane with the servers, the aws-iam auth method, the
 * image cache, the ECS cluster and the mesh gateway; the services), and a mesh in which feature-store and
 * result-writer may call log-service and model-a calls feature-store.
 */
import { type App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import { ConsulIamAuthMethod, ConsulImage, ConsulImageCache, ConsulServerCluster, MeshGateway } from '../../../constructs/consul';
import { Mesh, type MeshService, ServicePlacement, ServiceProtocol } from '../../../constructs/mesh';
import { MeshNetwork, type MeshNetworkProps } from '../../../constructs/network';
import { MeshEcsService, type MeshEcsServiceProps } from '../../../constructs/services';
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
  /** The consul-dataplane and consul-ecs images through the cache, as the environment uses them. */
  readonly images: { readonly dataplane: ConsulImage; readonly consulEcs: ConsulImage };
  /** Where the tests' ECS services go. */
  readonly servicesStack: Stack;
}

/** Options of {@link servicesFixture}. */
export interface ServicesFixtureOptions {
  readonly network?: MeshNetworkProps;
  readonly context?: Record<string, unknown>;
}

/**
 * A mesh `ml` with feature-store (HTTP 8080), result-writer (HTTP 8081) and log-service (TCP 24224), all on ECS:
 * feature-store and result-writer may call log-service, model-a (v1) may call feature-store.
 */
export function servicesFixture(options: ServicesFixtureOptions = {}): ServicesFixture {
  const app = newTestApp(options.context ?? {});
  const mesh = new Mesh(app, 'Mesh', { meshName: 'ml' });
  const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP, placement: ServicePlacement.ECS });
  const resultWriter = mesh.addService('result-writer', { port: 8081, protocol: ServiceProtocol.HTTP, placement: ServicePlacement.ECS });
  const logService = mesh.addService('log-service', { port: 24224, placement: ServicePlacement.ECS });
  const modelA = mesh.addFunction('model-a', { versions: ['v1'] });
  logService.allowFrom(featureStore);
  logService.allowFrom(resultWriter);
  featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] } });

  const network = new MeshNetwork(new Stack(app, 'network'), 'Network', options.network ?? {});
  const controlPlane = new Stack(app, 'control-plane');
  const cluster = new ConsulServerCluster(controlPlane, 'Consul', { mesh, network });
  const imageCache = new ConsulImageCache(controlPlane, 'ImageCache');
  const images = { dataplane: imageCache.image(ConsulImage.dataplane()), consulEcs: imageCache.image(ConsulImage.consulEcs()) };
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
