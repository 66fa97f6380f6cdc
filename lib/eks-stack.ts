import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { ArnFormat, type CfnElement, type CfnResource, RemovalPolicy, Stack, type StackProps, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as cdk8s from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { type Construct } from 'constructs';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { type ConsulServerCluster, type IMeshGateway } from '../constructs/consul';
import { Acknowledgements, MeshKey } from '../constructs/core';
import {
  GlooInstall,
  GlooLambdaAccess,
  GlooLambdaFunction,
  type GlooLambdaRoute,
  GlooLambdaRoutes,
  type GlooLambdaRoutesProps,
  ConsulKubernetes,
  ServiceAccountIssuer,
} from '../constructs/eks';
import { MeshKubernetesService } from '../constructs/services';
import { type MeshFunction } from '../constructs/function';
import { type IMesh } from '../constructs/mesh';
import { type IMeshNetwork } from '../constructs/network';
import { ConfigError, type EksConfig, resolveBuildPath, type ServiceConfig, withConfigField } from './config';
import { type EnvironmentConsulImages } from './control-plane-stack';
import { sampleServiceContext } from './sample-services/image';
import { mapField } from './services-stack';

/** The namespace of the services with placement eks, unless the config names another. */
export const MESH_SERVICES_NAMESPACE = 'lambda-mesh-consul';
/** The user (UID) the services' apps run as: `node` of the sample image, and not root for any other. */
const WORKLOAD_USER = 1000;

/**
 * The Consul side of the EKS stack: what consul-k8s joins and what the services placed on EKS run with.
 */
export interface EksConsulProps {
  /** The Consul servers. */
  readonly cluster: ConsulServerCluster;
  /** The mesh gateway, whose tasks dial the pods' sidecars. */
  readonly gateway: IMeshGateway;
  /** The Consul images, through the environment's pull-through cache. */
  readonly images: EnvironmentConsulImages;
  /** The services section of the config: those with placement eks run here. */
  readonly services: readonly ServiceConfig[];
  /** Where the config came from, for error messages and relative build paths. */
  readonly configSource: string;
}

/**
 * The Kubernetes version of new clusters: the one whose kubectl the handler layer bundles
 * (`@aws-cdk/lambda-layer-kubectl-v35`: kubectl 1.35, Helm 4), so kubectl is never more than one minor version off.
 */
export const KUBERNETES_VERSION = eks.KubernetesVersion.V1_35;

/** The ECR repository prefix of the pull-through cache of quay.io, where Gloo's images come from. */
const QUAY_CACHE_PREFIX = 'quay';

/** Where the kubectl handler runs, and with what. */
interface KubectlAccess {
  readonly subnets: ec2.ISubnet[];
  readonly securityGroup: ec2.SecurityGroup;
  readonly layer: KubectlV35Layer;
}

/**
 * Properties of the {@link EksStack}.
 */
export interface EksStackProps extends StackProps {
  /** The mesh model: Gloo routes only to its function versions. */
  readonly mesh: IMesh;
  /** The network, from the network stack. */
  readonly network: IMeshNetwork;
  /** The model functions, by identity, from the model function stacks. */
  readonly functions: ReadonlyMap<string, MeshFunction>;
  /** The eks section of the environment config. */
  readonly config: EksConfig;
  /**
   * Consul on the cluster, for the services with placement eks.
   * @default - no Consul on the cluster
   */
  readonly consul?: EksConsulProps;
}

/**
 * The environment's Kubernetes side: a private EKS cluster in the mesh network (or an existing one), Gloo Edge
 * installed with IRSA roles for its service accounts, and Gloo routes to the model functions.
 */
export class EksStack extends Stack {
  /** The cluster (aws-eks-v2), with a kubectl provider: other parts install their charts through it. */
  public readonly cluster: eks.ICluster;
  /** The IAM roles of Gloo's service accounts. */
  public readonly glooAccess: GlooLambdaAccess;
  /** The Gloo Edge installation. */
  public readonly gloo: GlooInstall;
  /** The Gloo routes applied to the cluster. */
  public readonly routes: GlooLambdaRoutes;
  /**
   * consul-k8s joined to the mesh's servers, when services are placed on EKS.
   * @default - no service has placement eks
   */
  public readonly consul?: ConsulKubernetes;
  /**
   * The services placed on EKS, by name (applied through the cluster after consul-k8s).
   * @default - none
   */
  public readonly meshServices: ReadonlyMap<string, MeshKubernetesService>;

  private readonly routesProps: Omit<GlooLambdaRoutesProps, 'region' | 'functions'>;
  private readonly exposed: ReadonlyArray<{ readonly identity: string; readonly fn: MeshFunction }>;

  constructor(scope: Construct, id: string, props: EksStackProps) {
    super(scope, id, props);
    const { network, config } = props;
    const kubectl = this.createKubectlAccess(network);
    let nodeRole: iam.IRole | undefined;
    if (config.existingCluster) {
      this.cluster = this.importCluster(id, config.existingCluster, network, kubectl);
    } else {
      const created = this.createCluster(id, network, config, kubectl);
      this.cluster = created.cluster;
      nodeRole = created.nodeRole;
    }
    this.addQuayCache(nodeRole);

    const gloo = config.gloo ?? {};
    this.exposed = (gloo.routes?.map((r) => `${r.function}-${r.version}`) ?? [...props.functions.keys()])
      .filter((identity, i, all) => all.indexOf(identity) === i)
      .map((identity) => ({ identity, fn: props.functions.get(identity)! }));
    const routes: GlooLambdaRoute[] | undefined = gloo.routes?.map((r) => ({
      pathPrefix: r.path,
      logicalName: `${r.function}-${r.version}`,
      ...(r.unwrapAsApiGateway ? { unwrapAsApiGateway: true } : {}),
    }));
    this.routesProps = { mesh: props.mesh, ...(routes ? { routes } : {}) };
    const installed = this.installGloo(gloo);
    this.glooAccess = installed.access;
    this.gloo = installed.gloo;
    this.routes = installed.routes;

    const onEks = props.consul?.services.filter((s) => s.placement === 'eks') ?? [];
    const meshServices = new Map<string, MeshKubernetesService>();
    if (props.consul && onEks.length > 0) {
      this.consul = this.addConsul(props, props.consul, nodeRole, onEks, meshServices);
    }
    this.meshServices = meshServices;
  }

  /**
   * Where the kubectl handler runs. Nodes live in the service subnets, which have no route to the internet unless
   * the network gives them one (`serviceEgress`, for Istio's and Knative's public images): the subnets the network
   * keeps for backend services (EC2, ECS, EKS), away from the functions' and the servers' route tables. The kubectl
   * handler fetches the Gloo chart from Solo's Helm repository: it runs in the server subnets, the only ones with a
   * NAT path, and reaches the private API endpoint from there.
   */
  private createKubectlAccess(network: IMeshNetwork): KubectlAccess {
    const subnets = network.vpc.selectSubnets(network.serverSubnets).subnets;
    const securityGroup = new ec2.SecurityGroup(this, 'KubectlSecurityGroup', {
      vpc: network.vpc,
      description: 'lambda-mesh kubectl handler: the cluster API (private endpoint), STS and the Helm repository',
      allowAllOutbound: true,
    });
    this.allowToEndpoints(network, 'Kubectl', securityGroup, 'kubectl handler: STS (eks get-token)');
    const layer = new KubectlV35Layer(this, 'KubectlLayer');
    return { subnets, securityGroup, layer };
  }

  /** An existing cluster, imported with a kubectl provider of this stack (its role given by the config). */
  private importCluster(
    id: string, existing: NonNullable<EksConfig['existingCluster']>, network: IMeshNetwork, kubectl: KubectlAccess,
  ): eks.ICluster {
    const clusterSecurityGroup = ec2.SecurityGroup.fromSecurityGroupId(this, 'ClusterSecurityGroup',
      existing.clusterSecurityGroupId, { mutable: false });
    const attributes: eks.ClusterAttributes = {
      clusterName: existing.clusterName,
      vpc: network.vpc,
      clusterSecurityGroupId: existing.clusterSecurityGroupId,
      openIdConnectProvider: iam.OidcProviderNative.fromOidcProviderArn(this, 'OidcProvider',
        existing.openIdConnectProviderArn),
    };
    // An imported cluster ignores kubectlProviderOptions: make the provider, then import again with it.
    const kubectlProvider = new eks.KubectlProvider(this, 'KubectlProvider', {
      cluster: eks.Cluster.fromClusterAttributes(this, 'ClusterWithoutKubectl', attributes),
      kubectlLayer: kubectl.layer,
      role: iam.Role.fromRoleArn(this, 'KubectlRole', existing.kubectlRoleArn, { mutable: false }),
      privateSubnets: kubectl.subnets,
      securityGroups: [kubectl.securityGroup, clusterSecurityGroup],
    });
    const cluster = eks.Cluster.fromClusterAttributes(this, 'Cluster', { ...attributes, kubectlProvider });
    const description = `Encrypts the kubectl handler logs of ${id}`;
    const logKey = new MeshKey(this, 'Key', { description, removalPolicy: RemovalPolicy.RETAIN });
    MeshKey.allowCloudWatchLogs(logKey);
    acknowledgeKubectlProvider(kubectlProvider, logKey);
    Validations.of(this).acknowledge({
      id: 'CloudFormation-Validate::W8001',
      reason: "aws-eks-v2's kubectl provider defines the HasEcrPublic condition even when it runs as an imported "
        + 'role, to which it attaches no policy; the unused condition changes nothing.',
    });
    return cluster;
  }

  /**
   * A new private cluster in the service subnets, its secrets encrypted, all control plane logs on, and a managed
   * node group; the nodes reach AWS through endpoints only.
   */
  private createCluster(
    id: string, network: IMeshNetwork, config: EksConfig, kubectl: KubectlAccess,
  ): { cluster: eks.Cluster; nodeRole: iam.IRole } {
    const description = `Encrypts the Kubernetes secrets and the kubectl handler logs of ${id}`;
    const key = new MeshKey(this, 'Key', { description, removalPolicy: RemovalPolicy.RETAIN });
    const cluster = new eks.Cluster(this, 'Cluster', {
      version: KUBERNETES_VERSION,
      vpc: network.vpc,
      vpcSubnets: [network.serviceSubnets],
      endpointAccess: eks.EndpointAccess.PRIVATE,
      secretsEncryptionKey: key,
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
        eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
        eks.ClusterLoggingTypes.SCHEDULER,
      ],
      // A managed node group, not Auto Mode: the nodes, their subnets and their role stay explicit.
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      defaultCapacity: 0,
      kubectlProviderOptions: {
        kubectlLayer: kubectl.layer,
        privateSubnets: kubectl.subnets,
        securityGroups: [kubectl.securityGroup],
      },
    });
    cluster.connections.allowFrom(kubectl.securityGroup, ec2.Port.tcp(443),
      'kubectl handler to the private API endpoint');
    placeKubectlHandlers(cluster, kubectl.subnets);
    const nodes = cluster.addNodegroupCapacity('Nodes', {
      subnets: network.serviceSubnets,
      instanceTypes: [new ec2.InstanceType(config.instanceType ?? 'm7i.large')],
      minSize: config.nodes ?? 2,
      desiredSize: config.nodes ?? 2,
      maxSize: config.nodes ?? 2,
    });
    // Nodes reach AWS only through endpoints: the network's (ECR, S3, STS, Logs) and the two only they need.
    this.allowToEndpoints(network, 'Nodes', cluster.clusterSecurityGroup, 'EKS nodes: ECR, STS, CloudWatch Logs');
    this.addNodeEndpoints(network, cluster);
    MeshKey.allowCloudWatchLogs(key);
    this.acknowledgeCluster(cluster, nodes, key);
    return { cluster, nodeRole: nodes.role };
  }

  /**
   * Gloo's images come from quay.io, which isolated nodes cannot reach: ECR pulls them through on first use
   * (with `serviceEgress` too, so Gloo installs the same way whatever the network). The nodes of a new cluster
   * may create the cache's repositories.
   */
  private addQuayCache(nodeRole: iam.IRole | undefined): void {
    new ecr.CfnPullThroughCacheRule(this, 'QuayCache', {
      ecrRepositoryPrefix: QUAY_CACHE_PREFIX,
      upstreamRegistryUrl: 'quay.io',
    });
    nodeRole?.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
      resources: [this.formatArn({
        service: 'ecr',
        resource: 'repository',
        resourceName: `${QUAY_CACHE_PREFIX}/*`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      })],
    }));
  }

  /** Gloo's service account roles, Gloo itself (its images through the quay.io cache), and the applied routes. */
  private installGloo(
    gloo: NonNullable<EksConfig['gloo']>,
  ): { access: GlooLambdaAccess; gloo: GlooInstall; routes: GlooLambdaRoutes } {
    const functions = this.exposed.map(({ identity, fn }) =>
      GlooLambdaFunction.fromFunction(identity, fn.fn, fn.alias ? { qualifier: fn.alias.aliasName } : {}));
    const access = new GlooLambdaAccess(this, 'GlooAccess', {
      issuer: ServiceAccountIssuer.fromCluster(this.cluster),
      functions,
      discovery: gloo.discovery ?? false,
    });
    const install = new GlooInstall(this, 'Gloo', {
      cluster: this.cluster,
      access,
      ...(gloo.version ? { version: gloo.version } : {}),
      imageRegistry: `${this.account}.dkr.ecr.${this.region}.${this.urlSuffix}/${QUAY_CACHE_PREFIX}/solo-io`,
    });
    // The applied copy may hold deploy-time values (function names, the region): its own cdk8s app, never written.
    const routes = new GlooLambdaRoutes(new cdk8s.App(), 'GlooRoutes', {
      ...this.routesProps,
      region: this.region,
      functions,
    });
    install.addRoutes('GlooRoutes', routes);
    return { access, gloo: install, routes };
  }

  /**
   * consul-k8s joined to the servers, and the services placed on EKS in a namespace of their own (Consul injects
   * it, Istio does not), applied through the cluster after the release so that every pod gets its sidecar. Their
   * chart holds deploy-time image URIs, so it is applied only, never written to dist/.
   */
  private addConsul(props: EksStackProps, consul: EksConsulProps, nodeRole: iam.IRole | undefined, services: readonly ServiceConfig[], out: Map<string, MeshKubernetesService>): ConsulKubernetes {
    const namespace = props.config.meshServicesNamespace ?? MESH_SERVICES_NAMESPACE;
    const installation = withConfigField(consul.configSource, 'eks.meshServicesNamespace', () => new ConsulKubernetes(this, 'Consul', {
      cluster: this.cluster,
      consul: consul.cluster,
      consulServers: consul.cluster.serverConnections,
      network: props.network,
      injectNamespaces: [namespace],
      images: { consul: consul.images.consul, controlPlane: consul.images.consulK8sControlPlane, dataplane: consul.images.dataplane },
      ...(nodeRole ? { imagePullers: [nodeRole] } : {}),
      gatewayTasks: consul.gateway.taskConnections,
      mesh: props.mesh,
    }));

    const app = new cdk8s.App();
    const namespaceChart = new cdk8s.Chart(app, 'MeshServicesNamespace', { disableResourceNameHashes: true });
    new kplus.Namespace(namespaceChart, 'Namespace', {
      metadata: { name: namespace, labels: { 'istio-injection': 'disabled', 'app.kubernetes.io/managed-by': 'lambda-mesh' } },
    });
    const chart = new cdk8s.Chart(app, 'MeshServices', { namespace, disableResourceNameHashes: true });
    for (const s of services) {
      const at = `services[${consul.services.indexOf(s)}]`;
      const w = s.workload!;
      const constructId = s.name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
      let image: string;
      if (w.sample !== undefined || w.build !== undefined) {
        const directory = w.sample !== undefined ? sampleServiceContext() : resolveBuildPath(consul.configSource, w.build!);
        image = new DockerImageAsset(this, `${constructId}Image`, { directory, platform: Platform.LINUX_AMD64 }).imageUri;
      } else {
        image = w.image!;
        if (!image.includes('.dkr.ecr.') && !props.network.serviceEgress) {
          throw new ConfigError({
            file: consul.configSource,
            field: `${at}.workload.image`,
            given: JSON.stringify(image),
            expected: "an image in this account's ECR (the nodes run in the service subnets, which have no internet route unless network.serviceEgress is true)",
          });
        }
      }
      const healthCheckCommand = w.healthCheck?.command ?? (w.sample !== undefined ? ['node', '/app/server.js', 'healthcheck', w.sample] : undefined);
      const field = (e: { field: string }): string => (EKS_FIELDS[e.field] !== undefined ? `${at}.${EKS_FIELDS[e.field]}` : mapField(at, e.field, consul.services));
      const service = withConfigField(consul.configSource, field, () => new MeshKubernetesService(chart, constructId, {
        service: props.mesh.service(s.name),
        image,
        ...(w.sample !== undefined ? { args: [w.sample] } : {}),
        environment: { PORT: String(s.port), HOST: '127.0.0.1' },
        user: WORKLOAD_USER,
        ...(w.count !== undefined ? { replicas: w.count } : {}),
        ...(w.cpu !== undefined ? { cpuMillis: Math.round((w.cpu * 1000) / 1024) } : {}),
        ...(w.memoryMiB !== undefined ? { memoryMiB: w.memoryMiB } : {}),
        ...(healthCheckCommand !== undefined ? { healthCheckCommand } : {}),
        ...(w.upstreams !== undefined ? { upstreams: w.upstreams } : {}),
      }));
      out.set(s.name, service);
    }
    // addCdk8sChart renders the chart without cdk8s's synth, which would run the constructs' validations: run them here.
    const errors = app.node.findAll().flatMap((c) => c.node.validate());
    if (errors.length > 0) {
      throw new Error(`the services placed on EKS do not validate:\n${errors.join('\n')}`);
    }
    const namespaceManifest = this.cluster.addCdk8sChart('MeshServicesNamespace', namespaceChart);
    const servicesManifest = this.cluster.addCdk8sChart('MeshServices', chart);
    // The injector's webhook must exist before the first pod, or the pod starts without a sidecar.
    servicesManifest.node.addDependency(namespaceManifest, installation.chart);
    return installation;
  }

  /**
   * Adds the Gloo routes chart to `app` (the environment's Kubernetes output) when every value is known at synth,
   * and returns it; returns undefined when the functions' names or the region are only known at deploy time (then
   * the routes exist only as applied through the cluster). The region is the stack's, which the config's
   * `env.region` sets.
   */
  public addRoutesChart(app: cdk8s.App, id: string): GlooLambdaRoutes | undefined {
    const functions = this.exposed.map(({ identity, fn }) => GlooLambdaFunction.fromFunctionName(identity, fn.functionName, fn.alias ? { qualifier: fn.alias.aliasName } : {}));
    if (Token.isUnresolved(this.region) || functions.some((f) => Token.isUnresolved(f.functionName) || Token.isUnresolved(f.qualifier))) {
      return undefined;
    }
    return new GlooLambdaRoutes(app, id, { ...this.routesProps, region: this.region, functions });
  }

  /**
   * Lets `peer` reach the network's interface endpoints. The rules are made here, in the consumer's stack: made
   * through the network's connections they would land in the network stack and point back at this one.
   */
  private allowToEndpoints(network: IMeshNetwork, id: string, peer: ec2.ISecurityGroup, description: string): void {
    network.connections.securityGroups.forEach((group, i) => {
      new ec2.CfnSecurityGroupIngress(this, `${id}ToEndpoints${i === 0 ? '' : i + 1}`, {
        groupId: group.securityGroupId,
        sourceSecurityGroupId: peer.securityGroupId,
        ipProtocol: 'tcp',
        fromPort: 443,
        toPort: 443,
        description,
      });
    });
  }

  /** The interface endpoints only nodes need: EC2 (the VPC CNI assigns pod addresses) and Lambda (Gloo invokes). */
  private addNodeEndpoints(network: IMeshNetwork, cluster: eks.Cluster): void {
    const securityGroup = new ec2.SecurityGroup(this, 'NodeEndpointSecurityGroup', {
      vpc: network.vpc,
      description: 'lambda-mesh EKS node endpoints (EC2, Lambda): HTTPS from the cluster only',
      allowAllOutbound: false,
    });
    securityGroup.connections.allowFrom(cluster.clusterSecurityGroup, ec2.Port.tcp(443), 'EKS nodes');
    Acknowledgements.awsSolutions(securityGroup, 'EC23', 'The only ingress is HTTPS from the cluster security group (a reference EKS creates, which the rule cannot evaluate); no CIDR is open.');
    const services: Array<[string, ec2.InterfaceVpcEndpointAwsService]> = [['Lambda', ec2.InterfaceVpcEndpointAwsService.LAMBDA]];
    // Without server egress the network already has an EC2 endpoint (two with private DNS would clash).
    if (network.serverEgress) {
      services.push(['Ec2', ec2.InterfaceVpcEndpointAwsService.EC2]);
    }
    for (const [name, service] of services) {
      new ec2.InterfaceVpcEndpoint(this, `${name}Endpoint`, { vpc: network.vpc, service, subnets: network.serviceSubnets, securityGroups: [securityGroup], privateDnsEnabled: true });
    }
  }

  private acknowledgeCluster(cluster: eks.Cluster, nodes: eks.Nodegroup, logKey: kms.IKey): void {
    for (const policy of ['AmazonEKSWorkerNodePolicy', 'AmazonEC2ContainerRegistryReadOnly', 'AmazonEKS_CNI_Policy']) {
      Acknowledgements.awsSolutions(nodes, `IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`, `EKS managed node groups require ${policy} on the node role (kubelet, image pulls, the VPC CNI); AWS keeps it in step with what those components call.`);
    }
    Acknowledgements.awsSolutions(nodes, `IAM5[Resource::${Acknowledgements.findingArn(this, 'ecr', `repository/${QUAY_CACHE_PREFIX}/*`)}]`, 'The ECR pull-through cache creates one repository per quay.io image on first pull, all under the cache prefix: the prefix is the scope.');
    Acknowledgements.awsSolutions(cluster.role, 'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]', 'The EKS control plane role requires the AWS managed AmazonEKSClusterPolicy; EKS documents no inline equivalent.');

    acknowledgeKubectlProvider(cluster.node.findChild('KubectlProvider'), logKey);
    Validations.of(cluster).acknowledge({
      id: 'Annotation::@aws-cdk/aws-eks:isolatedSubnetsForKubectlPrivateSubnets',
      reason: 'The kubectl handler does not run in the isolated cluster subnets: placeKubectlHandlers moves it to the server subnets, which have a NAT path (Helm repository, EKS and STS).',
    });
    Validations.of(cluster).acknowledge({
      id: 'CloudFormation-Validate::W9009',
      reason: 'aws-eks-v2 renders secrets encryption as EncryptionConfig[].Resources: ["secrets"], the form the EKS API still takes; the linter marks the property deprecated, not unsupported.',
    });
  }
}

/** Props of MeshKubernetesService, by the config field (under `services[i]`) that sets them. */
const EKS_FIELDS: Readonly<Record<string, string>> = {
  image: 'workload.image',
  replicas: 'workload.count',
  cpuMillis: 'workload.cpu',
  memoryMiB: 'workload.memoryMiB',
  healthCheckCommand: 'workload.healthCheck.command',
  'service.port': 'port',
};

/**
 * Acknowledges the findings on CDK's kubectl handler and its provider framework, which run only at deploy time
 * in the server subnets, and encrypts their log groups with `logKey`.
 */
function acknowledgeKubectlProvider(provider: Construct, logKey: kms.IKey): void {
  for (const policy of ['service-role/AWSLambdaBasicExecutionRole', 'service-role/AWSLambdaVPCAccessExecutionRole', 'AmazonEC2ContainerRegistryReadOnly']) {
    Acknowledgements.awsSolutions(provider, `IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`, `CDK's kubectl handler (aws-eks-v2) attaches ${policy} to its deploy-time functions; the roles are CDK's and used only by the kubectl provider.`);
  }
  const handler = provider.node.findChild('Handler').node.defaultChild as CfnResource;
  // Only when CDK made the handler's role (not with an imported kubectl role).
  const hasEcrPublic = provider.node.findChild('Handler').node.tryFindChild('HasEcrPublic') as CfnElement | undefined;
  if (hasEcrPublic) {
    Acknowledgements.awsSolutions(provider, `IAM4[Policy::{"Fn::If":["${Stack.of(provider).getLogicalId(hasEcrPublic)}",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]`, "CDK's kubectl handler adds the ECR Public read-only policy only in partitions that have ECR Public, so Helm can pull OCI charts from it.");
  }
  Acknowledgements.awsSolutions(provider, `IAM5[Resource::<${Stack.of(provider).getLogicalId(handler)}.Arn>:*]`, "CDK's provider framework invokes the kubectl handler by any version of that one function ('<arn>:*'); no other function.");
  Acknowledgements.awsSolutions(provider, 'L1', "CDK's kubectl handler (aws-eks-v2) pins its Python runtime with aws-cdk-lib, matched to the kubectl layer; upgrading aws-cdk-lib upgrades it.");
  Acknowledgements.guard(provider, 'lambda_inside_vpc_check', 'CT.LAMBDA.PR.3: the kubectl handler and its provider function run in the server subnets with the kubectl security group; the subnet IDs come from the network stack as Fn::GetStackOutput references, which the rule cannot resolve.');
  for (const logGroup of provider.node.findAll().filter((c): c is logs.CfnLogGroup => c instanceof logs.CfnLogGroup)) {
    logGroup.kmsKeyId = logKey.keyArn;
  }
}

/**
 * Moves the kubectl handler and its provider function into `subnets`. With a private endpoint, aws-eks-v2 puts
 * them in the cluster's own subnets and ignores `kubectlProviderOptions.privateSubnets`; those are isolated here,
 * and the handler must reach the Helm repository, EKS and STS.
 */
function placeKubectlHandlers(cluster: eks.Cluster, subnets: ec2.ISubnet[]): void {
  const provider = cluster.node.findChild('KubectlProvider');
  for (const path of [['Handler'], ['Provider', 'framework-onEvent']]) {
    const fn = path.reduce((c: Construct, id) => c.node.findChild(id), provider);
    (fn.node.defaultChild as CfnResource).addPropertyOverride('VpcConfig.SubnetIds', subnets.map((s) => s.subnetId));
  }
}
