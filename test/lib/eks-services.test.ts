import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as YAML from 'yaml';
import { Template } from 'aws-cdk-lib/assertions';
import { ConsulKubernetes } from '../../constructs/eks';
import { MeshKubernetesService } from '../../constructs/services';
import { ConfigError, type EnvironmentConfig, loadConfigFile, validateConfig } from '../../lib/config';
import { MESH_SERVICES_NAMESPACE } from '../../lib/eks-stack';
import { MeshEnvironment } from '../../lib/environment';
import { expectValidManifests, formatFindings, newTestApp, validateCloudFormation } from '../harness';
import { thrownBy } from '../util';

const EXAMPLE = path.resolve(__dirname, '..', '..', 'examples', 'config', 'eks-services.yaml');
const DIGEST = `sha256:${'a'.repeat(64)}`;

type Resource = { Type: string; Properties: Record<string, unknown>; DependsOn?: string[] };
// Free-form Kubernetes JSON, navigated by path and checked against the schemas.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = any;

/** The example as a plain document, to patch for the failure cases. */
function exampleDoc(): Record<string, unknown> & { services: Array<Record<string, unknown>>; eks: Record<string, unknown>; network: Record<string, unknown> } {
  return YAML.parse(fs.readFileSync(EXAMPLE, 'utf8')) as ReturnType<typeof exampleDoc>;
}

/** The index of result-writer (placement eks) in the example's services. */
const RESULT_WRITER = exampleDoc().services.findIndex((s) => s.name === 'result-writer');

/** The example with result-writer's entry patched. */
function withResultWriter(patch: Record<string, unknown>, rest: Record<string, unknown> = {}): Record<string, unknown> {
  const doc = exampleDoc();
  return { ...doc, services: doc.services.map((s, i) => (i === RESULT_WRITER ? { ...s, ...patch } : s)), ...rest };
}

function configError(fn: () => unknown): ConfigError {
  return thrownBy(fn, (e): e is ConfigError => ConfigError.isConfigError(e));
}

function environment(config: EnvironmentConfig, configSource = EXAMPLE): { app: ReturnType<typeof newTestApp>; env: MeshEnvironment } {
  const app = newTestApp();
  const dist = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-eks-services-')), 'dist');
  return { app, env: new MeshEnvironment(app, { config, configSource, kubernetesOutdir: dist }) };
}

/** A token as a readable placeholder, so a manifest with deploy-time values parses as JSON. */
function placeholder(token: unknown): string {
  return `{${JSON.stringify(token).replace(/["\\]/g, '')}}`;
}

/** The objects of an applied manifest (tokens as placeholders). */
function objectsOf(stack: MeshEnvironment['eksStack'], resource: Resource): Manifest[] {
  const resolved = stack!.resolve(resource.Properties.Manifest) as string | { 'Fn::Join': [string, unknown[]] };
  const text = typeof resolved === 'string' ? resolved : resolved['Fn::Join'][1].map((p) => (typeof p === 'string' ? p : placeholder(p))).join('');
  return JSON.parse(text) as Manifest[];
}

describe('services placed on EKS (examples/config/eks-services.yaml)', () => {
  const config = loadConfigFile(EXAMPLE);
  const { app, env } = environment(config);
  const eksStack = env.eksStack!;
  const t = Template.fromStack(eksStack);
  const manifests = Object.entries(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')) as Array<[string, Resource]>;
  const applied = (id: RegExp): [string, Resource] => {
    const found = manifests.filter(([logicalId]) => id.test(logicalId));
    expect(found).toHaveLength(1);
    return found[0];
  };
  const helm = Object.entries(t.findResources('Custom::AWSCDK-EKS-HelmChart')) as Array<[string, Resource]>;
  const release = (name: string): string => helm.find(([, r]) => r.Properties.Release === name)![0];

  test('the example loads: result-writer on eks beside two services on ecs, in the Consul namespace', () => {
    expect(config.services.map((s) => `${s.name}:${s.placement}`)).toEqual(['feature-store:ecs', 'log-service:ecs', 'result-writer:eks']);
    expect(config.eks).toEqual({ meshServicesNamespace: 'lambda-mesh-consul' });
    expect(MESH_SERVICES_NAMESPACE).toBe('lambda-mesh-consul');
  });

  test('the eks stack installs consul-k8s, injecting only the services\' namespace; ECS runs only the ecs services', () => {
    expect(eksStack.consul).toBeInstanceOf(ConsulKubernetes);
    expect(eksStack.consul!.injectNamespaces).toEqual(['lambda-mesh-consul']);
    expect(helm.map(([, r]) => r.Properties.Release).sort()).toEqual(['consul', 'gloo']);
    expect(helm.find(([, r]) => r.Properties.Release === 'consul')![1].Properties).toMatchObject({ Chart: 'consul', Version: '2.0.3', Namespace: 'consul' });
    t.resourceCountIs('Custom::KubernetesSecrets', 1);
    expect([...env.servicesStack!.ecsServices.keys()]).toEqual(['feature-store', 'log-service']);
    expect([...eksStack.meshServices.keys()]).toEqual(['result-writer']);
    const resultWriter = eksStack.meshServices.get('result-writer')!;
    expect(resultWriter).toBeInstanceOf(MeshKubernetesService);
    expect(resultWriter.namespace).toBe('lambda-mesh-consul');
  });

  test('the services\' namespace and chart are applied after the consul-k8s release, the namespace labelled against Istio', () => {
    const [namespaceId, namespace] = applied(/^ClusterMeshServicesNamespace[0-9A-F]{8}$/);
    const [, services] = applied(/^ClusterMeshServices[0-9A-F]{8}$/);
    // The injector's webhook must exist before the first pod, or the pod starts without a sidecar.
    expect(services.DependsOn).toEqual(expect.arrayContaining([release('consul'), namespaceId]));
    const namespaceDocs = objectsOf(eksStack, namespace);
    expect(namespaceDocs).toEqual([expect.objectContaining({ kind: 'Namespace', metadata: expect.objectContaining({ name: 'lambda-mesh-consul' }) })]);
    expect(namespaceDocs[0].metadata.labels).toMatchObject({ 'istio-injection': 'disabled' });
    expectValidManifests(namespaceDocs);
  });

  test('result-writer runs as a Deployment in lambda-mesh-consul: the sample image, its health check, the model\'s upstream, the config\'s size', () => {
    const docs = objectsOf(eksStack, applied(/^ClusterMeshServices[0-9A-F]{8}$/)[1]);
    expect(docs.map((d) => `${String(d.kind)} ${String(d.metadata.namespace)}/${String(d.metadata.name)}`)).toEqual([
      'ServiceAccount lambda-mesh-consul/result-writer',
      'Deployment lambda-mesh-consul/result-writer',
      'Service lambda-mesh-consul/result-writer',
    ]);
    expectValidManifests(docs);
    const deployment = docs[1];
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template;
    expect(pod.metadata.annotations).toMatchObject({
      'consul.hashicorp.com/connect-inject': 'true',
      'consul.hashicorp.com/connect-service': 'result-writer',
      'consul.hashicorp.com/connect-service-port': '8081',
      // The example lets result-writer call log-service only.
      'consul.hashicorp.com/connect-service-upstreams': 'log-service:24224',
    });
    expect(pod.metadata.labels).toMatchObject({ 'sidecar.istio.io/inject': 'false' });
    const [app] = pod.spec.containers as Manifest[];
    expect(app.image).toMatch(/container-assets.*:[a-f0-9]{64}/);
    expect(app.args).toEqual(['result-writer']);
    // cpu 256 CPU units is 250 millicores.
    expect(app.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '250m', memory: '512Mi' } });
    expect(Object.fromEntries((app.env as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]))).toEqual({
      PORT: '8081',
      HOST: '127.0.0.1',
      MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224',
    });
    expect(app.readinessProbe.exec.command).toEqual(['node', '/app/server.js', 'healthcheck', 'result-writer']);
    expect(app.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, readOnlyRootFilesystem: true });
  });

  test('the pods reach log-service\'s sidecar (result-writer calls it); the mesh gateway reaches the pods (model-a calls result-writer)', () => {
    const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).map((r) => JSON.stringify((r as Resource).Properties));
    const fromPods = ingress.filter((r) => r.includes('"SourceSecurityGroupId":{"Fn::GetAtt":["Cluster') && r.includes('ClusterSecurityGroupId') && r.includes('"FromPort":20000'));
    expect(fromPods).toHaveLength(1);
    expect(fromPods[0]).toMatch(/LogServiceSecurityGroup/);
    expect(ingress.filter((r) => r.includes('"FromPort":20000') && r.includes('MeshGatewayTaskSecurityGroup'))).toHaveLength(1);
    // feature-store calls no service on EKS and no EKS service calls it.
    expect(ingress.filter((r) => r.includes('FeatureStoreSecurityGroup'))).toEqual([]);
  });

  test('synthesizes with no unacknowledged cdk-nag, cfn-guard or construct finding', () => {
    const result = validateCloudFormation(app);
    if (result.findings.length > 0) {
      throw new Error(`unacknowledged findings:\n${formatFindings(result.findings)}`);
    }
    for (const ack of result.acknowledged) {
      expect(ack.reason?.length ?? 0).toBeGreaterThan(40);
    }
  });
});

describe('placement eks: config checks', () => {
  test('fails when placement eks meets eks.existingCluster', () => {
    const existingCluster = {
      clusterName: 'shared',
      openIdConnectProviderArn: 'arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE',
      kubectlRoleArn: 'arn:aws:iam::123456789012:role/eks-admin',
      clusterSecurityGroupId: 'sg-0123456789abcdef0',
    };
    const err = configError(() => validateConfig({ ...exampleDoc(), eks: { existingCluster } }, EXAMPLE));
    expect(err.file).toBe(EXAMPLE);
    expect(err.field).toBe(`services[${RESULT_WRITER}].placement`);
    expect(err.given).toBe('"eks"');
    expect(err.expected).toMatch(/ecs, ec2 or external with eks.existingCluster: Consul on Kubernetes needs the endpoint and CA of a cluster the environment creates/);
    expect(err.message).toContain(`services[${RESULT_WRITER}].placement`);
  });

  test('fails when placement eks has no eks section', () => {
    const noEks: Record<string, unknown> = exampleDoc();
    delete noEks.eks;
    const err = configError(() => validateConfig(noEks, EXAMPLE));
    expect(err.field).toBe(`services[${RESULT_WRITER}].placement`);
    expect(err.expected).toMatch(/this config has no eks section/);
  });

  test('fails when eks.meshServicesNamespace is kubernetes.namespace (which Istio injects)', () => {
    const err = configError(() => validateConfig({ ...exampleDoc(), eks: { meshServicesNamespace: 'apps' }, kubernetes: { namespace: 'apps' } }, EXAMPLE));
    expect(err.field).toBe('eks.meshServicesNamespace');
    expect(err.given).toBe('"apps"');
    expect(err.expected).toMatch(/a namespace other than 'apps': the services with placement eks are injected by Consul, kubernetes.namespace by Istio, and a namespace may not be injected by both/);
    expect(err.message).toMatch(/eks\.meshServicesNamespace: given "apps", expected a namespace other than 'apps'/);
  });

  test('fails when eks.meshServicesNamespace is the default kubernetes.namespace (lambda-mesh)', () => {
    const err = configError(() => validateConfig({ ...exampleDoc(), eks: { meshServicesNamespace: 'lambda-mesh' } }, EXAMPLE));
    expect(err.field).toBe('eks.meshServicesNamespace');
    expect(err.given).toBe('"lambda-mesh"');
    expect(err.expected).toMatch(/a namespace other than 'lambda-mesh'/);
  });

  test('fails when kubernetes.namespace is the default Consul namespace (lambda-mesh-consul) and eks.meshServicesNamespace is left out', () => {
    const err = configError(() => validateConfig({ ...exampleDoc(), eks: {}, kubernetes: { namespace: 'lambda-mesh-consul' } }, EXAMPLE));
    expect(err.field).toBe('kubernetes.namespace');
    expect(err.given).toBe('"lambda-mesh-consul"');
    expect(err.expected).toMatch(/injected by Consul, kubernetes.namespace by Istio/);
  });

  test('fails when a service with placement eks has healthCheck.path (kubelet cannot reach 127.0.0.1)', () => {
    const err = configError(() => validateConfig(withResultWriter({ workload: { sample: 'result-writer', healthCheck: { path: '/health' } } }), EXAMPLE));
    expect(err.field).toBe(`services[${RESULT_WRITER}].workload.healthCheck.path`);
    expect(err.given).toBe('"/health"');
    expect(err.expected).toMatch(/healthCheck.command for placement eks: .*command: \[wget, -q, -O, \/dev\/null, 'http:\/\/127.0.0.1:8081\/health'\]/);
  });

  test.each([
    [5],
    [9],
  ])('fails when workload.cpu is %s CPU units on eks (below 10)', (cpu) => {
    const err = configError(() => validateConfig(withResultWriter({ workload: { sample: 'result-writer', cpu } }), EXAMPLE));
    expect(err.field).toBe(`services[${RESULT_WRITER}].workload.cpu`);
    expect(err.given).toBe(String(cpu));
    expect(err.expected).toMatch(/CPU units from 10 to 16384 \(1024 = one vCPU; on EKS the pod gets cpu \* 1000 \/ 1024 millicores, at least 10\)/);
  });

  test('accepts eks CPU units that are not Fargate sizes (10, 3000)', () => {
    for (const cpu of [10, 3000]) {
      expect(validateConfig(withResultWriter({ workload: { sample: 'result-writer', cpu } }), EXAMPLE).services[RESULT_WRITER].workload?.cpu).toBe(cpu);
    }
  });

  test('fails when an image outside ECR meets service subnets without egress (at synth of the eks stack)', () => {
    const image = `docker.io/example/result-writer@${DIGEST}`;
    const config = validateConfig(withResultWriter({ protocol: 'http', workload: { image } }), EXAMPLE);
    const err = configError(() => environment(config));
    expect(err.file).toBe(EXAMPLE);
    expect(err.field).toBe(`services[${RESULT_WRITER}].workload.image`);
    expect(err.given).toBe(JSON.stringify(image));
    expect(err.expected).toMatch(/an image in this account's ECR \(the nodes run in the service subnets, which have no internet route unless network.serviceEgress is true\)/);
  });

  test('accepts an image outside ECR with network.serviceEgress, and an ECR image without', () => {
    const image = `docker.io/example/result-writer@${DIGEST}`;
    const doc = exampleDoc();
    const withEgress = validateConfig(withResultWriter({ workload: { image } }, { network: { ...doc.network, serviceEgress: true } }), EXAMPLE);
    expect(environment(withEgress).env.eksStack!.meshServices.get('result-writer')).toBeDefined();
    const ecr = `123456789012.dkr.ecr.us-west-2.amazonaws.com/result-writer@${DIGEST}`;
    const config = validateConfig(withResultWriter({ workload: { image: ecr } }), EXAMPLE);
    expect(environment(config).env.eksStack!.meshServices.get('result-writer')).toBeDefined();
  });

  test('fails when workload.upstreams names a service the rules do not let it call, at that upstream\'s field', () => {
    const config = validateConfig(withResultWriter({ workload: { sample: 'result-writer', upstreams: ['log-service', 'feature-store'] } }), EXAMPLE);
    const err = configError(() => environment(config));
    expect(err.field).toBe(`services[${RESULT_WRITER}].workload.upstreams[1]`);
    expect(err.given).toBe('"feature-store"');
    expect(err.expected).toMatch(/a service that result-writer may call \(log-service\)/);
  });
});
