import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as YAML from 'yaml';
import { ConsulImage } from '../../../constructs/consul';
import { bindingRuleSelector, CONSUL_K8S_SIDECAR_PORT, ConsulKubernetes, type ConsulKubernetesProps } from '../../../constructs/eks';
import { ServicePlacement, ServiceProtocol } from '../../../constructs/mesh';
import { expectValidManifests, findSecretMaterial, formatFindings, validateCloudFormation } from '../../harness';
import { ecsService, servicesFixture, type ServicesFixture, type ServicesFixtureOptions } from '../services/fixtures';
import { actions, meshError, type Statement } from './fixtures';

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };

/** What an imported cluster is given (all of it unless a test leaves some out). */
const IMPORTED = {
  clusterName: 'shared',
  clusterEndpoint: 'https://0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com',
  clusterCertificateAuthorityData: 'Q0EgZGF0YQ==',
  clusterSecurityGroupId: 'sg-0123456789abcdef0',
};

interface ConsulFixture extends ServicesFixture {
  readonly eksStack: Stack;
  readonly eksCluster: eks.ICluster;
  /** The consul-k8s control plane image through the fixture's cache. */
  readonly controlPlaneImage: ConsulImage;
}

interface ConsulFixtureOptions extends ServicesFixtureOptions {
  /** An imported cluster of these attributes instead of a new one. */
  readonly imported?: Partial<eks.ClusterAttributes>;
}

/** The services fixture and a stack `eks` with a cluster (new, in the mesh's VPC, or imported with a kubectl provider). */
function consulFixture(options: ConsulFixtureOptions = {}): ConsulFixture {
  const f = servicesFixture(options);
  const eksStack = new Stack(f.app, 'eks');
  let eksCluster: eks.ICluster;
  if (options.imported) {
    const kubectlProvider = eks.KubectlProvider.fromKubectlProviderAttributes(eksStack, 'KubectlProvider', {
      serviceToken: 'arn:aws:lambda:us-east-1:123456789012:function:kubectl',
      role: iam.Role.fromRoleArn(eksStack, 'KubectlRole', 'arn:aws:iam::123456789012:role/kubectl', { mutable: false }),
    });
    eksCluster = eks.Cluster.fromClusterAttributes(eksStack, 'Cluster', { vpc: f.network.vpc, kubectlProvider, clusterName: IMPORTED.clusterName, ...options.imported });
  } else {
    eksCluster = new eks.Cluster(eksStack, 'Cluster', {
      version: eks.KubernetesVersion.V1_35,
      vpc: f.network.vpc,
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(eksStack, 'KubectlLayer') },
    });
  }
  return { ...f, eksStack, eksCluster, controlPlaneImage: f.imageCache.image(ConsulImage.consulK8sControlPlane()) };
}

function consulProps(f: ConsulFixture, props: Partial<ConsulKubernetesProps> = {}): ConsulKubernetesProps {
  return {
    cluster: f.eksCluster,
    consul: f.cluster,
    consulServers: f.cluster.serverConnections,
    network: f.network,
    injectNamespaces: ['apps'],
    images: { consul: f.images.consul, controlPlane: f.controlPlaneImage, dataplane: f.images.dataplane },
    ...props,
  };
}

function consulK8s(f: ConsulFixture, props: Partial<ConsulKubernetesProps> = {}): ConsulKubernetes {
  return new ConsulKubernetes(f.eksStack, 'Consul', consulProps(f, props));
}

/** A token as a readable placeholder: `{Ref}`, `{Logical.Attr}` (hashes dropped), `{stack/Output}`. */
function placeholder(token: unknown): string {
  const t = token as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::GetStackOutput'?: { StackName: string; OutputName: string } };
  if (t.Ref !== undefined) {
    return `{${withoutHash(t.Ref)}}`;
  }
  if (t['Fn::GetAtt']) {
    return `{${withoutHash(t['Fn::GetAtt'][0])}.${t['Fn::GetAtt'][1]}}`;
  }
  if (t['Fn::GetStackOutput']) {
    return `{${t['Fn::GetStackOutput'].StackName}/${t['Fn::GetStackOutput'].OutputName}}`;
  }
  throw new Error(`unexpected token ${JSON.stringify(token)}`);
}

function withoutHash(logicalId: string): string {
  return logicalId.replace(/[0-9A-F]{8}$/, '');
}

/** The Helm values of the chart: the resolved JSON, each token in it replaced by its {@link placeholder}. */
function helmValues(t: Template, stack: Stack): Record<string, unknown> {
  const [chart] = Object.values(t.findResources('Custom::AWSCDK-EKS-HelmChart')) as Resource[];
  const resolved = stack.resolve(chart.Properties.Values) as string | { 'Fn::Join': [string, unknown[]] };
  const text = typeof resolved === 'string' ? resolved : resolved['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : placeholder(p))).join('');
  return JSON.parse(text) as Record<string, unknown>;
}

/** Every leaf of a values object, as a dotted path. */
function leafPaths(o: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(o).flatMap(([k, v]) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? leafPaths(v as Record<string, unknown>, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

/**
 * Every value the construct sets, checked by hand against the chart's own values.yaml at the pinned version
 * (hashicorp/consul-k8s v2.0.3, charts/consul/values.yaml): each of these keys is there. A new key fails this test
 * until someone has looked it up in the chart too (Helm ignores unknown keys silently).
 */
const CHART_KEYS_IN_2_0_3 = [
  'global.name', 'global.datacenter', 'global.image', 'global.imageK8S', 'global.imageConsulDataplane',
  'global.tls.enabled', 'global.tls.caCert.secretName', 'global.tls.caCert.secretKey',
  'global.acls.manageSystemACLs', 'global.acls.bootstrapToken.secretName', 'global.acls.bootstrapToken.secretKey',
  'server.enabled',
  'externalServers.enabled', 'externalServers.hosts', 'externalServers.httpsPort', 'externalServers.grpcPort', 'externalServers.tlsServerName',
  'externalServers.useSystemRoots', 'externalServers.skipServerWatch', 'externalServers.k8sAuthMethodHost',
  'connectInject.enabled', 'connectInject.default', 'connectInject.k8sAllowNamespaces', 'connectInject.k8sDenyNamespaces',
  'connectInject.transparentProxy.defaultEnabled', 'connectInject.apiGateway.manageExternalCRDs', 'connectInject.annotations',
  'connectInject.aclBindingRuleSelector',
  'dns.enabled', 'ui.enabled', 'syncCatalog.enabled', 'meshGateway.enabled', 'ingressGateways.enabled', 'terminatingGateways.enabled',
];

/** A peer of a rule for people: a logical id without its hash (`.Attr` unless GroupId), or `<stack>/<logical id>` of an output. */
function peerName(peer: unknown): string {
  if (typeof peer === 'string') {
    return peer;
  }
  const p = peer as { 'Fn::GetAtt'?: [string, string]; 'Fn::GetStackOutput'?: { StackName: string; OutputName: string } };
  if (p['Fn::GetAtt']) {
    const [id, attr] = p['Fn::GetAtt'];
    return attr === 'GroupId' ? withoutHash(id) : `${withoutHash(id)}.${attr}`;
  }
  if (p['Fn::GetStackOutput']) {
    const { StackName, OutputName } = p['Fn::GetStackOutput'];
    const m = /^PublishOutputFnGetAtt(.+?)[0-9A-F]{8}GroupId[0-9A-F]{8}$/.exec(OutputName);
    return `${StackName}/${m ? m[1] : OutputName}`;
  }
  return JSON.stringify(peer);
}

/** Every standalone rule of a template: `<group> <port> from <source>` (ingress) or `<group> <port> to <destination>` (egress). */
function rules(t: Template): string[] {
  const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => (r as Resource).Properties)
    .map((p) => `${peerName(p.GroupId)} ${String(p.FromPort)} from ${peerName(p.SourceSecurityGroupId ?? p.CidrIp)}`);
  const egress = Object.values(t.findResources('AWS::EC2::SecurityGroupEgress')).map((r) => (r as Resource).Properties)
    .map((p) => `${peerName(p.GroupId)} ${String(p.FromPort)} to ${peerName(p.DestinationSecurityGroupId ?? p.CidrIp)}`);
  return [...ingress, ...egress].sort();
}

/** The rules that name `group` (as group or peer). */
function rulesOf(t: Template, group: string): string[] {
  return rules(t).filter((r) => r.split(' ').some((word) => word === group));
}

/** The IAM statements attached to the role whose logical id starts with `prefix`. */
function statementsOf(t: Template, prefix: string): Statement[] {
  const roleId = Object.keys(t.findResources('AWS::IAM::Role')).find((id) => id.startsWith(prefix))!;
  return Object.values(t.findResources('AWS::IAM::Policy'))
    .map((r) => (r as Resource).Properties)
    .filter((p) => JSON.stringify(p.Roles).includes(`"${roleId}"`))
    .flatMap((p) => (p.PolicyDocument as { Statement: Statement[] }).Statement);
}

function resourceOf(t: Template, type: string): [string, Resource] {
  const found = Object.entries(t.findResources(type));
  expect(found).toHaveLength(1);
  return found[0] as [string, Resource];
}

const CLUSTER_SG = 'Cluster.ClusterSecurityGroupId';

describe('ConsulKubernetes', () => {
  describe('on a new cluster, with the mesh (result-writer on EKS; feature-store calls it; it calls log-service)', () => {
    const f = consulFixture({ placements: { 'result-writer': ServicePlacement.EKS } });
    f.resultWriter.allowFrom(f.featureStore);
    // On ECS, in the mesh, with no path to or from the pods.
    const scorer = f.mesh.addService('scorer', { port: 9000, protocol: ServiceProtocol.HTTP, placement: ServicePlacement.ECS });
    f.logService.allowFrom(scorer);
    ecsService(f, 'FeatureStore', f.featureStore);
    ecsService(f, 'LogService', f.logService);
    ecsService(f, 'Scorer', scorer);
    const consul = consulK8s(f, { gatewayTasks: f.gateway.taskConnections, mesh: f.mesh });
    const t = Template.fromStack(f.eksStack);

    test('installs the pinned consul-k8s chart from HashiCorp\'s repository into its own namespace, after the namespace and the Secrets', () => {
      const [chartId, chart] = resourceOf(t, 'Custom::AWSCDK-EKS-HelmChart');
      expect(chart.Properties).toMatchObject({
        Chart: 'consul',
        Version: '2.0.3',
        Repository: 'https://helm.releases.hashicorp.com',
        Namespace: 'consul',
        Release: 'consul',
        Wait: true,
        Timeout: '900s',
      });
      // The namespace is its own manifest (labelled against Istio's injection): Helm must not create it.
      expect(chart.Properties.CreateNamespace).toBeUndefined();
      expect(chartId).toMatch(/^ConsulChart[0-9A-F]{8}$/);
      const [namespaceId, namespace] = Object.entries(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).find(([id]) => id.startsWith('ConsulNamespace'))!;
      const docs = JSON.parse((namespace as Resource).Properties.Manifest as string) as Array<{ kind: string; metadata: { name: string; labels: Record<string, string> } }>;
      expect(docs).toHaveLength(1);
      expect(docs[0]).toMatchObject({ kind: 'Namespace', metadata: { name: 'consul', labels: { 'istio-injection': 'disabled', 'app.kubernetes.io/managed-by': 'lambda-mesh' } } });
      expectValidManifests(docs);
      const [secretsId] = resourceOf(t, 'Custom::KubernetesSecrets');
      expect(chart.DependsOn).toEqual(expect.arrayContaining([namespaceId, secretsId]));
      expect(consul.chart.node.dependencies).toEqual(expect.arrayContaining([consul.secrets]));
      expect(consul.namespace).toBe('consul');
      expect(consul.injectNamespaces).toEqual(['apps']);
      expect(consul.authMethodName).toBe('consul-k8s-auth-method');
    });

    test('the values join the external servers with their CA and a bootstrap token of its own, from Secrets, and inject only annotated pods of injectNamespaces', () => {
      const values = helmValues(t, f.eksStack);
      const image = (name: string): unknown => expect.stringMatching(new RegExp(`^\\{AWS::AccountId\\}\\.dkr\\.ecr\\.\\{AWS::Region\\}\\.\\{AWS::URLSuffix\\}/ecr-public-[0-9a-f]+/hashicorp/${name}:2\\.0\\.3$`));
      expect(values).toEqual({
        global: {
          name: 'consul',
          datacenter: 'dc1',
          image: image('consul'),
          imageK8S: image('consul-k8s-control-plane'),
          imageConsulDataplane: image('consul-dataplane'),
          tls: { enabled: true, caCert: { secretName: 'lambda-mesh-consul-ca', secretKey: 'tls.crt' } },
          acls: { manageSystemACLs: true, bootstrapToken: { secretName: 'lambda-mesh-consul-acl-init', secretKey: 'token' } },
        },
        server: { enabled: false },
        externalServers: {
          enabled: true,
          hosts: [expect.stringMatching(/^\{control-plane\/PublishOutputFnGetAttConsulLoadBalancer[0-9A-F]{8}DNSName[0-9A-F]{8}\}$/)],
          httpsPort: 8501,
          grpcPort: 8503,
          tlsServerName: 'server.dc1.consul',
          useSystemRoots: false,
          skipServerWatch: true,
          k8sAuthMethodHost: '{Cluster.Endpoint}',
        },
        connectInject: {
          enabled: true,
          default: false,
          k8sAllowNamespaces: ['apps'],
          k8sDenyNamespaces: [],
          transparentProxy: { defaultEnabled: false },
          apiGateway: { manageExternalCRDs: false },
          annotations: expect.any(String),
          aclBindingRuleSelector: 'serviceaccount.name!=default and serviceaccount.namespace==apps',
        },
        dns: { enabled: false },
        ui: { enabled: false },
        syncCatalog: { enabled: false },
        meshGateway: { enabled: false },
        ingressGateways: { enabled: false },
        terminatingGateways: { enabled: false },
      });
      // The chart renders `annotations` as YAML into the injector's pod template: one annotation, the Secrets' version.
      const annotations = (values.connectInject as { annotations: string }).annotations;
      expect(YAML.parse(annotations)).toEqual({ 'lambda-mesh.io/secrets-version': '{ConsulSecrets.Version}' });
    });

    test('every value it sets is a key of the consul-k8s 2.0.3 chart', () => {
      expect(leafPaths(helmValues(t, f.eksStack)).sort()).toEqual([...CHART_KEYS_IN_2_0_3].sort());
    });

    test('the Secrets resource copies the CA and the KUBERNETES_ACL_INIT token, by ARN, into the chart\'s namespace through the cluster API', () => {
      const [, secrets] = resourceOf(t, 'Custom::KubernetesSecrets');
      const writerId = Object.keys(t.findResources('AWS::Lambda::Function')).find((id) => id.startsWith('ConsulSecretsWriter'))!;
      expect(secrets.Properties).toEqual({
        ServiceToken: { 'Fn::GetAtt': [writerId, 'Arn'] },
        ClusterName: { Ref: expect.stringMatching(/^Cluster[0-9A-F]{8}$/) },
        Endpoint: { 'Fn::GetAtt': [expect.stringMatching(/^Cluster[0-9A-F]{8}$/), 'Endpoint'] },
        CertificateAuthorityData: { 'Fn::GetAtt': [expect.stringMatching(/^Cluster[0-9A-F]{8}$/), 'CertificateAuthorityData'] },
        Namespace: 'consul',
        Owner: expect.stringMatching(/^lambda-mesh\/eksConsul[0-9A-F]{8}$/),
        Secrets: [
          { Name: 'lambda-mesh-consul-ca', Key: 'tls.crt', Field: 'CertificatePem', SecretArn: { 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'control-plane', OutputName: expect.stringMatching(/^PublishOutputRefConsulCaCertificate/) }) } },
          { Name: 'lambda-mesh-consul-acl-init', Key: 'token', Field: 'SecretID', SecretArn: { 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'control-plane', OutputName: expect.stringMatching(/^PublishOutputRefConsulKubernetesAclInitToken/) }) } },
        ],
      });
      // After what it needs: its function, role and rules, the access entry, the namespace; and the servers' stack.
      expect(secrets.DependsOn).toEqual(expect.arrayContaining([
        writerId,
        expect.stringMatching(/^ConsulSecretsWriterRole[0-9A-F]{8}$/),
        expect.stringMatching(/^ConsulSecretsWriterRoleDefaultPolicy/),
        expect.stringMatching(/^ConsulSecretsWriterAccess/),
        expect.stringMatching(/^ConsulNamespace/),
        expect.stringMatching(/^ConsulSecretsWriterSecurityGrouptoeksClusterClusterSecurityGroup/),
      ]));
      expect(f.eksStack.dependencies).toContain(f.controlPlane);
      expect(consul.secrets.node.path).toBe('eks/Consul/Secrets');
    });

    test('no secret reaches the template: the CA and the token are named by their secrets\' ARNs only', () => {
      const json = JSON.stringify(t.toJSON());
      expect(findSecretMaterial(json)).toEqual([]);
      expect(json).not.toContain('{{resolve:secretsmanager');
      expect(json).not.toMatch(/SecretString/);
      // The only Consul secrets the stack refers to are the CA and the consul-k8s token, each by its Ref (the ARN).
      expect([...new Set(json.match(/PublishOutput[A-Za-z]*Consul[A-Za-z]*(Token|Certificate|Key)[A-Za-z0-9]*/g))].map((o) => o.replace(/[0-9A-F]{8}/g, '')).sort()).toEqual([
        'PublishOutputFnGetAttConsulKeyArn',
        'PublishOutputRefConsulCaCertificate',
        'PublishOutputRefConsulKubernetesAclInitToken',
      ]);
      // The Helm values carry Secret names and the Secrets' version, never a value or an ARN.
      expect(JSON.stringify(helmValues(t, f.eksStack))).not.toMatch(/arn:|SecretArn|CaCertificate|AclInitToken/);
    });

    test('the writer\'s access entry grants AmazonEKSEditPolicy in the chart\'s namespace only', () => {
      // The other entry is the cluster's own, for its kubectl handler.
      const entries = Object.values(t.findResources('AWS::EKS::AccessEntry')).map((r) => (r as Resource).Properties)
        .filter((p) => JSON.stringify(p.PrincipalArn).includes('ConsulSecretsWriter'));
      expect(entries).toHaveLength(1);
      expect(entries[0]).toEqual({
        ClusterName: { Ref: expect.stringMatching(/^Cluster[0-9A-F]{8}$/) },
        PrincipalArn: { 'Fn::GetAtt': [expect.stringMatching(/^ConsulSecretsWriterRole[0-9A-F]{8}$/), 'Arn'] },
        AccessPolicies: [{
          PolicyArn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':eks::aws:cluster-access-policy/AmazonEKSEditPolicy']] },
          AccessScope: { Type: 'namespace', Namespaces: ['consul'] },
        }],
      });
    });

    test('the writer may read exactly the CA and the KUBERNETES_ACL_INIT token, and decrypt only through Secrets Manager', () => {
      const statements = statementsOf(t, 'ConsulSecretsWriterRole');
      const byAction = (action: string): Statement[] => statements.filter((s) => actions(s).some((a) => a === action || a.startsWith(action.split(':')[0] + ':')));
      const secretReads = byAction('secretsmanager:GetSecretValue');
      expect(secretReads).toHaveLength(1);
      expect(actions(secretReads[0])).toEqual(['secretsmanager:GetSecretValue']);
      expect(secretReads[0].Resource).toEqual([
        { 'Fn::GetStackOutput': expect.objectContaining({ OutputName: expect.stringMatching(/^PublishOutputRefConsulCaCertificate/) }) },
        { 'Fn::GetStackOutput': expect.objectContaining({ OutputName: expect.stringMatching(/^PublishOutputRefConsulKubernetesAclInitToken/) }) },
      ]);
      const kms = byAction('kms:Decrypt');
      expect(kms).toHaveLength(1);
      expect(kms[0]).toMatchObject({
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: { 'Fn::GetStackOutput': expect.objectContaining({ OutputName: expect.stringMatching(/^PublishOutputFnGetAttConsulKey[0-9A-F]{8}Arn/) }) },
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] } } },
      });
      // Nothing else but its own logs and its network interfaces (the VPC function's baseline).
      expect(statements.flatMap(actions).filter((a) => !/^(logs|ec2):/.test(a)).sort()).toEqual(['kms:Decrypt', 'secretsmanager:GetSecretValue']);
      // No statement on every EKS cluster: the API is reached through the access entry, not IAM actions.
      expect(statements.flatMap(actions).filter((a) => a.startsWith('eks:'))).toEqual([]);
    });

    test('the writer runs in the function subnets and reaches the EKS API on 443', () => {
      const [, fn] = Object.entries(t.findResources('AWS::Lambda::Function')).find(([id]) => id.startsWith('ConsulSecretsWriter'))!;
      const subnets = JSON.stringify((fn as Resource).Properties.VpcConfig);
      expect(subnets.match(/FunctionsSubnet\dSubnet/g)).toHaveLength(3);
      expect(rulesOf(t, 'ConsulSecretsWriterSecurityGroup').filter((r) => !r.includes('network/') && !r.includes('0.0.0.0/0'))).toEqual([
        `${CLUSTER_SG} 443 from ConsulSecretsWriterSecurityGroup`,
        'ClusterControlPlaneSecurityGroup 443 from ConsulSecretsWriterSecurityGroup',
        `ConsulSecretsWriterSecurityGroup 443 to ${CLUSTER_SG}`,
        'ConsulSecretsWriterSecurityGroup 443 to ClusterControlPlaneSecurityGroup',
      ].sort());
    });

    test('the pods reach the Consul load balancer on 8501 and 8503; the servers reach the EKS API; the gateway and the connected workloads reach the pods on 20000', () => {
      expect(CONSUL_K8S_SIDECAR_PORT).toBe(20000);
      expect(rulesOf(t, CLUSTER_SG).filter((r) => !r.includes('ConsulSecretsWriter'))).toEqual([
        // consul-k8s and the dataplanes to the servers' load balancer.
        `control-plane/ConsulLoadBalancerSecurityGroup 8501 from ${CLUSTER_SG}`,
        `control-plane/ConsulLoadBalancerSecurityGroup 8503 from ${CLUSTER_SG}`,
        // The servers to the API (TokenReview), both halves here.
        `${CLUSTER_SG} 443 from control-plane/ConsulServerSecurityGroup`,
        `control-plane/ConsulServerSecurityGroup 443 to ${CLUSTER_SG}`,
        // The mesh gateway (model-a calls result-writer through it) to the pods' sidecars.
        `${CLUSTER_SG} 20000 from control-plane/MeshGatewayTaskSecurityGroup`,
        `control-plane/MeshGatewayTaskSecurityGroup 20000 to ${CLUSTER_SG}`,
        // feature-store (ECS) may call result-writer (EKS).
        `${CLUSTER_SG} 20000 from services/FeatureStoreSecurityGroup`,
        `services/FeatureStoreSecurityGroup 20000 to ${CLUSTER_SG}`,
        // result-writer (EKS) may call log-service (ECS): its sidecar port admits the pods.
        `services/LogServiceSecurityGroup 20000 from ${CLUSTER_SG}`,
      ].sort());
      // The API endpoint's own security group admits the servers too.
      expect(rulesOf(t, 'ClusterControlPlaneSecurityGroup')).toEqual(expect.arrayContaining([
        'ClusterControlPlaneSecurityGroup 443 from control-plane/ConsulServerSecurityGroup',
        'control-plane/ConsulServerSecurityGroup 443 to ClusterControlPlaneSecurityGroup',
      ]));
      // Nothing for scorer, which the model connects with no service on EKS.
      expect(rules(t).filter((r) => r.includes('Scorer'))).toEqual([]);
    });

    test('every rule of the pods\' paths is made in the eks stack: the services and control plane stacks never refer to it', () => {
      for (const other of [f.servicesStack, f.controlPlane]) {
        expect(JSON.stringify(Template.fromStack(other).toJSON())).not.toMatch(/"StackName":"eks"/);
        expect(other.dependencies).not.toContain(f.eksStack);
      }
      expect(f.eksStack.dependencies).toEqual(expect.arrayContaining([f.servicesStack, f.controlPlane]));
    });
  });

  test('connectWorkload opens the paths of a workload made after it, once however often it is called', () => {
    const f = consulFixture({ placements: { 'result-writer': ServicePlacement.EKS } });
    f.resultWriter.allowFrom(f.featureStore);
    const consul = consulK8s(f, { mesh: f.mesh });
    const featureStore = ecsService(f, 'FeatureStore', f.featureStore);
    // Not connected: made after the installation and never passed to connectWorkload.
    ecsService(f, 'LogService', f.logService);
    consul.connectWorkload(featureStore);
    consul.connectWorkload(featureStore);
    const t = Template.fromStack(f.eksStack);
    expect(rulesOf(t, CLUSTER_SG).filter((r) => r.includes('services/'))).toEqual([
      `${CLUSTER_SG} 20000 from services/FeatureStoreSecurityGroup`,
      `services/FeatureStoreSecurityGroup 20000 to ${CLUSTER_SG}`,
    ]);
  });

  test('a workload that calls an EKS service and is called by one gets both rules; without a mesh, only the installation\'s own', () => {
    const f = consulFixture({ placements: { 'result-writer': ServicePlacement.EKS } });
    f.resultWriter.allowFrom(f.logService);
    ecsService(f, 'LogService', f.logService);
    consulK8s(f, { mesh: f.mesh });
    expect(rulesOf(Template.fromStack(f.eksStack), CLUSTER_SG).filter((r) => r.includes('services/'))).toEqual([
      `${CLUSTER_SG} 20000 from services/LogServiceSecurityGroup`,
      `services/LogServiceSecurityGroup 20000 from ${CLUSTER_SG}`,
      `services/LogServiceSecurityGroup 20000 to ${CLUSTER_SG}`,
    ].sort());

    const g = consulFixture({ placements: { 'result-writer': ServicePlacement.EKS } });
    ecsService(g, 'LogService', g.logService);
    consulK8s(g);
    const t = Template.fromStack(g.eksStack);
    expect(rules(t).filter((r) => r.includes('services/') || r.includes('MeshGateway'))).toEqual([]);
  });

  test('options: version, namespace, release and repository reach the chart, the values, the Secrets and the access entry', () => {
    const f = consulFixture();
    ecsService(f, 'LogService', f.logService);
    const consul = consulK8s(f, { version: '2.0.2', namespace: 'consul-system', release: 'mesh', repository: 'https://charts.example.com', injectNamespaces: ['apps', 'jobs'] });
    const t = Template.fromStack(f.eksStack);
    expect(resourceOf(t, 'Custom::AWSCDK-EKS-HelmChart')[1].Properties).toMatchObject({ Version: '2.0.2', Namespace: 'consul-system', Release: 'mesh', Repository: 'https://charts.example.com' });
    const values = helmValues(t, f.eksStack) as { global: { name: string }; connectInject: { k8sAllowNamespaces: string[]; aclBindingRuleSelector: string } };
    expect(values.global.name).toBe('mesh');
    expect(values.connectInject.k8sAllowNamespaces).toEqual(['apps', 'jobs']);
    expect(values.connectInject.aclBindingRuleSelector).toBe(bindingRuleSelector(['apps', 'jobs']));
    expect(resourceOf(t, 'Custom::KubernetesSecrets')[1].Properties.Namespace).toBe('consul-system');
    t.hasResourceProperties('AWS::EKS::AccessEntry', { AccessPolicies: [Match.objectLike({ AccessScope: { Type: 'namespace', Namespaces: ['consul-system'] } })] });
    t.hasResourceProperties('Custom::AWSCDK-EKS-KubernetesResource', { Manifest: Match.stringLikeRegexp('"kind":"Namespace","metadata":\\{"name":"consul-system"') });
    expect(consul.authMethodName).toBe('mesh-k8s-auth-method');
    expect(consul.namespace).toBe('consul-system');
  });

  describe('on an imported cluster', () => {
    test('uses its endpoint, CA data and cluster security group; grants the image pullers the cache\'s first pull; no unacknowledged cdk-nag or cfn-guard finding', () => {
      const f = consulFixture({ placements: { 'result-writer': ServicePlacement.EKS }, imported: IMPORTED });
      ecsService(f, 'LogService', f.logService);
      const nodes = new iam.Role(f.eksStack, 'NodeRole', { assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com') });
      consulK8s(f, { gatewayTasks: f.gateway.taskConnections, mesh: f.mesh, imagePullers: [nodes] });
      const t = Template.fromStack(f.eksStack);
      expect(resourceOf(t, 'Custom::KubernetesSecrets')[1].Properties).toMatchObject({
        ClusterName: 'shared',
        Endpoint: IMPORTED.clusterEndpoint,
        CertificateAuthorityData: IMPORTED.clusterCertificateAuthorityData,
      });
      expect((helmValues(t, f.eksStack).externalServers as { k8sAuthMethodHost: string }).k8sAuthMethodHost).toBe(IMPORTED.clusterEndpoint);
      expect(resourceOf(t, 'Custom::AWSCDK-EKS-HelmChart')[1].Properties.ServiceToken).toBe('arn:aws:lambda:us-east-1:123456789012:function:kubectl');
      expect(rulesOf(t, IMPORTED.clusterSecurityGroupId)).toEqual(expect.arrayContaining([
        `control-plane/ConsulLoadBalancerSecurityGroup 8501 from ${IMPORTED.clusterSecurityGroupId}`,
        `${IMPORTED.clusterSecurityGroupId} 443 from control-plane/ConsulServerSecurityGroup`,
        `${IMPORTED.clusterSecurityGroupId} 20000 from control-plane/MeshGatewayTaskSecurityGroup`,
        `services/LogServiceSecurityGroup 20000 from ${IMPORTED.clusterSecurityGroupId}`,
      ]));
      const pulls = statementsOf(t, 'NodeRole').flatMap(actions);
      expect(pulls).toEqual(expect.arrayContaining(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository', 'ecr:GetAuthorizationToken']));

      const result = validateCloudFormation(f.app);
      if (result.findings.length > 0) {
        throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
      }
      for (const ack of result.acknowledged) {
        expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
      }
    });

    test.each([
      ['clusterEndpoint', { clusterCertificateAuthorityData: IMPORTED.clusterCertificateAuthorityData, clusterSecurityGroupId: IMPORTED.clusterSecurityGroupId }],
      ['clusterCertificateAuthorityData', { clusterEndpoint: IMPORTED.clusterEndpoint, clusterSecurityGroupId: IMPORTED.clusterSecurityGroupId }],
      ['clusterSecurityGroupId', { clusterEndpoint: IMPORTED.clusterEndpoint, clusterCertificateAuthorityData: IMPORTED.clusterCertificateAuthorityData }],
    ])('fails when the imported cluster has no %s', (field, attributes) => {
      const f = consulFixture({ imported: attributes });
      const err = meshError(() => consulK8s(f));
      expect(err.location).toBe('eks/Consul');
      expect(err.field).toBe(`cluster.${field}`);
      expect(err.given).toBe('(missing)');
      expect(err.expected).toMatch(new RegExp(`the cluster's ${field} \\(give it to eks.Cluster.fromClusterAttributes`));
    });
  });

  describe('bindingRuleSelector', () => {
    test('lets in the named service accounts of one namespace', () => {
      expect(bindingRuleSelector(['apps'])).toBe('serviceaccount.name!=default and serviceaccount.namespace==apps');
    });

    test('of several namespaces, in parentheses (and binds tighter than or)', () => {
      expect(bindingRuleSelector(['apps', 'jobs', 'batch'])).toBe(
        'serviceaccount.name!=default and (serviceaccount.namespace==apps or serviceaccount.namespace==jobs or serviceaccount.namespace==batch)',
      );
    });
  });

  describe('bad input', () => {
    // One fixture for the checks that throw before anything is made.
    const f = consulFixture();
    let n = 0;
    const fails = (props: Partial<ConsulKubernetesProps>): ReturnType<typeof meshError> => meshError(() => new ConsulKubernetes(f.eksStack, `Consul${++n}`, consulProps(f, props)));

    test.each([
      ['latest'],
      ['v2.0.3'],
      ['2.0'],
    ])('fails when version is %s', (version) => {
      const err = fails({ version });
      expect(err.location).toMatch(/^eks\/Consul/);
      expect(err.field).toBe('version');
      expect(err.given).toBe(JSON.stringify(version));
      expect(err.expected).toMatch(/a consul-k8s chart version X.Y.Z such as '2.0.3'/);
    });

    test.each([
      ['namespace', 'upper case and _', 'Consul_System'],
      ['namespace', '64 characters', 'x'.repeat(64)],
      ['release', 'a dot', 'my.release'],
      ['release', 'a leading -', '-consul'],
    ])('fails when %s is not a DNS-1123 label (%s)', (field, _why, given) => {
      const err = fails({ [field]: given });
      expect(err.field).toBe(field);
      expect(err.given).toBe(JSON.stringify(given));
      expect(err.expected).toMatch(/a DNS-1123 label/);
    });

    test('fails when injectNamespaces is empty', () => {
      const err = fails({ injectNamespaces: [] });
      expect(err.field).toBe('injectNamespaces');
      expect(err.given).toBe('"[]"');
      expect(err.expected).toMatch(/at least one namespace/);
    });

    test('fails when injectNamespaces names a namespace twice', () => {
      const err = fails({ injectNamespaces: ['apps', 'jobs', 'apps'] });
      expect(err.field).toBe('injectNamespaces');
      expect(err.given).toBe('"apps, jobs, apps"');
      expect(err.expected).toBe('each namespace once');
    });

    test.each([
      ['kube-system', {}],
      ['kube-public', {}],
      ['consul', {}],
      ['mesh', { namespace: 'mesh' }],
    ])('fails when injectNamespaces has %s (a system namespace or consul-k8s\'s own)', (ns, props) => {
      const err = fails({ ...props, injectNamespaces: ['apps', ns] });
      expect(err.field).toBe('injectNamespaces[1]');
      expect(err.given).toBe(JSON.stringify(ns));
      expect(err.expected).toMatch(new RegExp(`a namespace of workloads \\(not kube-system, kube-public or consul-k8s's own ${(props as { namespace?: string }).namespace ?? 'consul'}\\)`));
    });

    test('fails when an inject namespace is not a DNS-1123 label', () => {
      const err = fails({ injectNamespaces: ['Apps'] });
      expect(err.field).toBe('injectNamespaces[0]');
      expect(err.expected).toMatch(/DNS-1123 label/);
    });
  });
});
