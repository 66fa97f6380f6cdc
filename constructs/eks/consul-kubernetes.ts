import { CustomResource, Duration, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { type ConsulImage, ConsulDefaults, ConsulPorts, ConsulTokenRole, type IConsulCluster } from '../consul';
import { acknowledgeEcrPull } from '../consul/mesh-gateway';
import { throwInvalid } from '../core/errors';
import { allowCloudWatchLogs, newMeshKey, newVpcFunction } from '../core/internal';
import { type IMesh, ServicePlacement } from '../mesh';
import { type IMeshNetwork } from '../network';
import { type IMeshWorkload } from '../services/workload';
import { findWorkload } from '../services/internal';

/** The consul-k8s chart's Helm repository. */
export const CONSUL_HELM_REPOSITORY = 'https://helm.releases.hashicorp.com';

/** The Kubernetes Secrets the construct writes: the servers' CA and the ACL token consul-k8s's server-acl-init uses. */
const CA_SECRET = { name: 'lambda-mesh-consul-ca', key: 'tls.crt' } as const;
const ACL_SECRET = { name: 'lambda-mesh-consul-acl-init', key: 'token' } as const;

/** The sidecar's public listener port that consul-k8s gives injected pods (the mesh gateway dials it). */
export const CONSUL_K8S_SIDECAR_PORT = 20000;

/** A DNS-1123 label (namespace and release names). */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const VERSION = /^\d+\.\d+\.\d+$/;

/**
 * The Consul images of a consul-k8s installation.
 */
export interface ConsulKubernetesImages {
  /** The Consul image (`global.image`): the chart runs it only for jobs such as server-acl-init's checks. */
  readonly consul: ConsulImage;
  /** consul-k8s-control-plane (`global.imageK8S`): the injector, server-acl-init, endpoints controller. */
  readonly controlPlane: ConsulImage;
  /** consul-dataplane (`global.imageConsulDataplane`): Envoy beside every injected pod. */
  readonly dataplane: ConsulImage;
}

/**
 * Properties of {@link ConsulKubernetes}.
 */
export interface ConsulKubernetesProps {
  /**
   * The cluster, with a kubectl provider. Its `clusterEndpoint`, `clusterCertificateAuthorityData` and
   * `clusterSecurityGroupId` must be known (give them in `fromClusterAttributes` for an imported cluster): the Secrets
   * are written through the API, the Consul servers verify service account tokens there, and the pods' rules are made
   * on the cluster security group.
   */
  readonly cluster: eks.ICluster;
  /** The Consul servers the cluster's workloads join (`externalServers`). */
  readonly consul: IConsulCluster;
  /**
   * The servers themselves (`ConsulServerCluster.serverConnections`): they call the cluster's API to verify service
   * account tokens (the Kubernetes auth method's TokenReview).
   */
  readonly consulServers: ec2.IConnectable;
  /** The network: the deploy-time function that writes the Secrets runs in its function subnets. */
  readonly network: IMeshNetwork;
  /**
   * The only namespaces whose annotated pods consul-k8s injects (`connectInject.k8sAllowNamespaces`). Each is
   * labelled `istio-injection: disabled` by the services chart: a pod gets one mesh's sidecar, never two.
   */
  readonly injectNamespaces: string[];
  /** The images, each pinned (through an ECR pull-through cache for nodes without internet). */
  readonly images: ConsulKubernetesImages;
  /**
   * The roles that pull the images (the node role): granted the cache's first-pull permissions.
   * @default - none (nodes of an imported cluster are granted by their owner)
   */
  readonly imagePullers?: iam.IGrantable[];
  /**
   * The mesh gateway's tasks: they reach the injected pods' sidecars (port 20000) on the cluster security group.
   * @default - no rule (the gateway cannot route to pods)
   */
  readonly gatewayTasks?: ec2.IConnectable;
  /**
   * The mesh model: the sidecar paths between the cluster's pods (services placed on EKS) and the ECS and EC2
   * workloads constructed before this one are opened as the model allows. Add later ones with
   * {@link ConsulKubernetes.connectWorkload}.
   * @default - no workload paths
   */
  readonly mesh?: IMesh;
  /**
   * The consul-k8s chart version.
   * @default ConsulDefaults.CONSUL_K8S_VERSION
   */
  readonly version?: string;
  /**
   * The namespace consul-k8s runs in.
   * @default 'consul'
   */
  readonly namespace?: string;
  /**
   * The Helm release name (`global.name` too, so objects are `<release>-connect-injector` and so on).
   * @default 'consul'
   */
  readonly release?: string;
  /**
   * The Helm repository of the chart.
   * @default 'https://helm.releases.hashicorp.com'
   */
  readonly repository?: string;
  /**
   * The KMS key of the deploy-time function's logs.
   * @default - a new key
   */
  readonly key?: kms.IKey;
  /**
   * What happens to the log group and key when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Defines Consul on Kubernetes (the consul-k8s Helm chart) joining the mesh's existing Consul servers: no servers
 * and no clients in the cluster, only the connect injector and its controllers, which register annotated pods with a
 * consul-dataplane sidecar.
 *
 * - `externalServers` points at the servers' load balancer (HTTPS 8501, gRPC-TLS 8503, `skipServerWatch`, TLS server
 *   name `server.<dc>.consul`), with the servers' CA from `global.tls.caCert`.
 * - ACLs: `manageSystemACLs` with a bootstrap token of the cluster's own (the `KUBERNETES_ACL_INIT` role: ACL write,
 *   not the management token). consul-k8s's server-acl-init job creates the Kubernetes auth method
 *   (`<release>-k8s-auth-method`, host `k8sAuthMethodHost` = the cluster's endpoint) and its binding rule, which binds
 *   a pod to the service named after its ServiceAccount. So workload identity on EKS is the pod's ServiceAccount,
 *   verified by the servers through the Kubernetes TokenReview API; no token is handed to any pod.
 * - The CA and the token never appear in a template: a deploy-time function in the VPC reads them from Secrets
 *   Manager and writes them as Kubernetes Secrets through the cluster's API (IAM authentication, an access entry
 *   scoped to the chart's namespace), before the release is installed. The release's values carry the Secrets'
 *   version, so a rotated CA or token rolls the release.
 * - Injection only in `injectNamespaces` and only for annotated pods (`connectInject.default: false`); transparent
 *   proxy off (the apps call their upstreams on 127.0.0.1, as on ECS and Lambda); Consul DNS off.
 *
 * @see https://developer.hashicorp.com/consul/docs/deploy/server/k8s/external
 * @see https://developer.hashicorp.com/consul/docs/reference/k8s/helm
 * @see https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
 */
export class ConsulKubernetes extends Construct {
  /** The Helm release. */
  public readonly chart: eks.HelmChart;
  /** The namespace consul-k8s runs in. */
  public readonly namespace: string;
  /** The namespaces consul-k8s injects. */
  public readonly injectNamespaces: readonly string[];
  /** The name of the Kubernetes auth method consul-k8s creates in Consul. */
  public readonly authMethodName: string;
  /** The deploy-time resource that writes the CA and token Secrets. */
  public readonly secrets: CustomResource;

  /** The pods' side of the network: the cluster security group. */
  private readonly pods: ec2.Connections;
  private readonly connected = new Set<string>();

  constructor(scope: Construct, id: string, props: ConsulKubernetesProps) {
    super(scope, id);
    const version = props.version ?? ConsulDefaults.CONSUL_K8S_VERSION;
    if (!Token.isUnresolved(version) && !VERSION.test(version)) {
      throwInvalid(this, 'version', version, "a consul-k8s chart version X.Y.Z such as '2.0.3' (no 'v'; pin it, never 'latest')");
    }
    this.namespace = checkLabel(this, 'namespace', props.namespace ?? 'consul');
    const release = checkLabel(this, 'release', props.release ?? 'consul');
    if (props.injectNamespaces.length === 0) {
      throwInvalid(this, 'injectNamespaces', '[]', 'at least one namespace whose pods join the mesh');
    }
    props.injectNamespaces.forEach((ns, i) => {
      checkLabel(this, `injectNamespaces[${i}]`, ns);
      if (['kube-system', 'kube-public', this.namespace].includes(ns)) {
        throwInvalid(this, `injectNamespaces[${i}]`, ns, `a namespace of workloads (not kube-system, kube-public or consul-k8s's own ${this.namespace})`);
      }
    });
    if (new Set(props.injectNamespaces).size !== props.injectNamespaces.length) {
      throwInvalid(this, 'injectNamespaces', props.injectNamespaces.join(', '), 'each namespace once');
    }
    this.injectNamespaces = [...props.injectNamespaces];
    this.authMethodName = `${release}-k8s-auth-method`;
    for (const field of ['clusterEndpoint', 'clusterCertificateAuthorityData', 'clusterSecurityGroupId'] as const) {
      const value = clusterAttribute(props.cluster, field);
      if (!value) {
        throwInvalid(this, `cluster.${field}`, value, `the cluster's ${field} (give it to eks.Cluster.fromClusterAttributes for an imported cluster)`);
      }
    }

    const namespaceManifest = new eks.KubernetesManifest(this, 'Namespace', {
      cluster: props.cluster,
      manifest: [{
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'lambda-mesh', 'istio-injection': 'disabled' } },
      }],
      overwrite: true,
    });
    this.secrets = this.createSecrets(props, namespaceManifest);
    this.pods = new ec2.Connections({ securityGroups: [props.cluster.clusterSecurityGroup] });
    this.allowNetwork(props);
    const images = this.bindImages(props);

    this.chart = new eks.HelmChart(this, 'Chart', {
      cluster: props.cluster,
      chart: 'consul',
      repository: props.repository ?? CONSUL_HELM_REPOSITORY,
      version,
      release,
      namespace: this.namespace,
      createNamespace: false,
      wait: true,
      timeout: Duration.minutes(15),
      values: this.values(props, release, images),
    });
    this.chart.node.addDependency(namespaceManifest, this.secrets);

    const mesh = props.mesh;
    for (const s of mesh?.graph().services ?? []) {
      const workload = s.placement === ServicePlacement.EKS ? undefined : findWorkload(this, mesh!, s.name);
      if (workload) {
        this.connectWorkload(workload);
      }
    }
  }

  /**
   * Opens the sidecar paths between the cluster's pods and `workload` (an ECS or EC2 service in the mesh), as the
   * model allows: its sidecars to the pods' (20000) when it may call a service placed on EKS, the pods to its
   * sidecar port when such a service may call it. Both halves of each rule are made in this stack.
   */
  public connectWorkload(workload: IMeshWorkload): void {
    const me = workload.meshService.name;
    if (this.connected.has(me)) {
      return;
    }
    this.connected.add(me);
    const mesh = workload.meshService.mesh;
    const onEks = mesh.graph().services.filter((s) => s.placement === ServicePlacement.EKS && !s.imported);
    const calls = onEks.filter((s) => mesh.upstreamsOf(me).some((u) => u.name === s.name)).map((s) => s.name);
    const calledBy = onEks.filter((s) => mesh.upstreamsOf(s.name).some((u) => u.name === me)).map((s) => s.name);
    if (calls.length > 0) {
      this.pods.allowFrom(workload, ec2.Port.tcp(CONSUL_K8S_SIDECAR_PORT), `${me} to the sidecars of ${calls.join(', ')} (mTLS)`);
    }
    if (calledBy.length > 0) {
      this.pods.allowTo(workload, ec2.Port.tcp(workload.sidecarPort), `${calledBy.join(', ')} to ${me}'s sidecar (mTLS)`);
    }
  }

  /** The chart's values: external servers, TLS and ACLs from the Secrets, injection limited to the namespaces. */
  private values(props: ConsulKubernetesProps, release: string, images: Record<keyof ConsulKubernetesImages, string>): Record<string, unknown> {
    const datacenter = props.consul.datacenter;
    return {
      global: {
        name: release,
        datacenter,
        image: images.consul,
        imageK8S: images.controlPlane,
        imageConsulDataplane: images.dataplane,
        tls: {
          enabled: true,
          // The servers keep HTTPS only and do not verify clients (consul-k8s does not support verify_incoming).
          caCert: { secretName: CA_SECRET.name, secretKey: CA_SECRET.key },
        },
        acls: {
          manageSystemACLs: true,
          bootstrapToken: { secretName: ACL_SECRET.name, secretKey: ACL_SECRET.key },
        },
      },
      server: { enabled: false },
      externalServers: {
        enabled: true,
        hosts: [props.consul.endpointAddress],
        httpsPort: ConsulPorts.HTTPS,
        grpcPort: ConsulPorts.GRPC_TLS,
        // The load balancer's name is not in the servers' certificate.
        tlsServerName: `server.${datacenter}.consul`,
        useSystemRoots: false,
        skipServerWatch: true,
        k8sAuthMethodHost: props.cluster.clusterEndpoint,
      },
      connectInject: {
        enabled: true,
        default: false,
        k8sAllowNamespaces: [...this.injectNamespaces],
        k8sDenyNamespaces: [],
        transparentProxy: { defaultEnabled: false },
        apiGateway: { manageExternalCRDs: false },
        // Restarts the injector (which reads the CA at start) when the CA or the token changed: a hash, not the values.
        annotations: `"lambda-mesh.io/secrets-version": "${this.secrets.getAttString('Version')}"`,
        // Only the service accounts of the injected namespaces log in (never `default`), each as its own name.
        aclBindingRuleSelector: bindingRuleSelector(this.injectNamespaces),
      },
      dns: { enabled: false },
      ui: { enabled: false },
      syncCatalog: { enabled: false },
      meshGateway: { enabled: false },
      ingressGateways: { enabled: false },
      terminatingGateways: { enabled: false },
    };
  }

  /**
   * The deploy-time function that copies the CA and the bootstrap token from Secrets Manager into Kubernetes Secrets
   * in the chart's namespace, as itself: an access entry with AmazonEKSEditPolicy scoped to that namespace.
   */
  private createSecrets(props: ConsulKubernetesProps, namespaceManifest: eks.KubernetesManifest): CustomResource {
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const key = props.key ?? newMeshKey(this, 'Key', `Encrypts the logs of ${this.node.path}`, removalPolicy);
    if (!props.key) {
      allowCloudWatchLogs(key);
    }
    const { fn, securityGroup } = newVpcFunction(this, 'SecretsWriter', {
      handler: 'kubernetes-secrets',
      network: props.network,
      purpose: `Writes the Consul CA and ACL token Secrets of ${this.node.path}`,
      logKey: key,
      logRetention: logs.RetentionDays.ONE_YEAR,
      removalPolicy,
    });
    // Both halves in this stack: egress here, ingress on the cluster security group (made from this side).
    securityGroup.connections.allowTo(props.cluster, ec2.Port.tcp(443), 'Consul Secrets writer to the EKS API (private endpoint)');
    const token = props.consul.tokenSecret(ConsulTokenRole.KUBERNETES_ACL_INIT);
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue'],
      resources: [props.consul.caCertificateSecret.secretArn, token.secretArn],
    }));
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['kms:Decrypt'],
      resources: [props.consul.secretsKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` } },
    }));
    const access = new eks.AccessEntry(this, 'SecretsWriterAccess', {
      cluster: props.cluster,
      principal: fn.role!.roleArn,
      accessPolicies: [eks.AccessPolicy.fromAccessPolicyName('AmazonEKSEditPolicy', {
        accessScopeType: eks.AccessScopeType.NAMESPACE,
        namespaces: [this.namespace],
      })],
    });
    const resource = new CustomResource(this, 'Secrets', {
      serviceToken: fn.functionArn,
      resourceType: 'Custom::KubernetesSecrets',
      properties: {
        ClusterName: props.cluster.clusterName,
        Endpoint: props.cluster.clusterEndpoint,
        CertificateAuthorityData: props.cluster.clusterCertificateAuthorityData,
        Namespace: this.namespace,
        Owner: `lambda-mesh/${Names.uniqueId(this)}`,
        Secrets: [
          { Name: CA_SECRET.name, Key: CA_SECRET.key, SecretArn: props.consul.caCertificateSecret.secretArn, Field: 'CertificatePem' },
          { Name: ACL_SECRET.name, Key: ACL_SECRET.key, SecretArn: token.secretArn, Field: 'SecretID' },
        ],
      },
    });
    resource.node.addDependency(fn, fn.role!, securityGroup, access, namespaceManifest, props.consul);
    return resource;
  }

  /**
   * The paths consul-k8s needs, each rule made from this stack: pods and nodes to the servers (8501, 8503), the
   * servers to the EKS API (the Kubernetes auth method calls TokenReview), the mesh gateway to the pods' sidecars.
   */
  private allowNetwork(props: ConsulKubernetesProps): void {
    // The API endpoint's interfaces carry every security group of the cluster; the pods (managed node groups) carry
    // the cluster security group EKS creates.
    props.cluster.connections.allowFrom(props.consulServers, ec2.Port.tcp(443), 'Consul servers: the EKS API (TokenReview for the Kubernetes auth method)');
    const cluster = this.pods;
    cluster.allowTo(props.consul, ec2.Port.tcp(ConsulPorts.HTTPS), 'consul-k8s and injected pods: Consul HTTPS API');
    cluster.allowTo(props.consul, ec2.Port.tcp(ConsulPorts.GRPC_TLS), 'consul-k8s and injected pods: Consul gRPC-TLS (xDS)');
    if (props.gatewayTasks) {
      cluster.allowFrom(props.gatewayTasks, ec2.Port.tcp(CONSUL_K8S_SIDECAR_PORT), 'the mesh gateway to injected pods\' sidecars (mTLS)');
    }
  }

  private bindImages(props: ConsulKubernetesProps): Record<keyof ConsulKubernetesImages, string> {
    const bound = {
      consul: props.images.consul.bind(this, 'images.consul'),
      controlPlane: props.images.controlPlane.bind(this, 'images.controlPlane'),
      dataplane: props.images.dataplane.bind(this, 'images.dataplane'),
    };
    for (const grantee of props.imagePullers ?? []) {
      Object.values(bound).forEach((image) => image.grantPull(grantee));
      if (Construct.isConstruct(grantee)) {
        acknowledgeEcrPull(grantee, Object.values(bound));
      }
    }
    return { consul: bound.consul.imageName, controlPlane: bound.controlPlane.imageName, dataplane: bound.dataplane.imageName };
  }
}

/** consul-k8s's binding rule selector: a named service account of one of `namespaces`. */
export function bindingRuleSelector(namespaces: readonly string[]): string {
  const inNamespace = namespaces.map((ns) => `serviceaccount.namespace==${ns}`);
  return `serviceaccount.name!=default and ${inNamespace.length === 1 ? inNamespace[0] : `(${inNamespace.join(' or ')})`}`;
}

/** An attribute of the cluster, or undefined: an imported cluster's getters throw for attributes it was not given. */
function clusterAttribute(cluster: eks.ICluster, field: 'clusterEndpoint' | 'clusterCertificateAuthorityData' | 'clusterSecurityGroupId'): string | undefined {
  try {
    return cluster[field];
  } catch {
    return undefined;
  }
}

function checkLabel(scope: Construct, field: string, value: string): string {
  if (!Token.isUnresolved(value) && !DNS_LABEL.test(value)) {
    throwInvalid(scope, field, value, "a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters");
  }
  return value;
}
