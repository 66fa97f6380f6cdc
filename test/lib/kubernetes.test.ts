import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { CfnWaitConditionHandle, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as cdk8s from 'cdk8s';
import { parseAllDocuments } from 'yaml';
import { MtlsMode } from '../../constructs/k8s';
import { ConfigError, DEFAULT_CONFIG, type KubernetesConfig } from '../../lib/config';
import { ChartPhase, KubernetesPlatform } from '../../lib/kubernetes';
import { meshFromConfig } from '../../lib/mesh-from-config';
import { expectValidManifests, newTestApp } from '../harness';
import { thrownBy } from '../util';

interface Built {
  platform: KubernetesPlatform;
  app: cdk8s.App;
  stack: Stack;
  outdir: string;
}

function build(config?: KubernetesConfig, withCluster = false): Built & { cluster?: eks.Cluster } {
  const cdkApp = newTestApp();
  const stack = new Stack(cdkApp, 'Env');
  const mesh = meshFromConfig(cdkApp, 'Mesh', DEFAULT_CONFIG, '(embedded default)');
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-k8s-'));
  const app = new cdk8s.App({ outdir, outputFileExtension: '.yaml', yamlOutputType: cdk8s.YamlOutputType.FILE_PER_CHART });
  const cluster = withCluster
    ? new eks.Cluster(stack, 'Cluster', { version: eks.KubernetesVersion.V1_34, kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') } })
    : undefined;
  const platform = new KubernetesPlatform({
    name: 'lambda-mesh-dev',
    mesh,
    app,
    ...(config ? { config } : {}),
    configSource: 'env.yaml',
    warningsStack: stack,
    ...(cluster ? { cluster } : {}),
  });
  return { platform, app, stack, outdir, ...(cluster ? { cluster } : {}) };
}

/** Synthesizes the app as `npm run synth` does and reads every file back. */
/** A parsed manifest: read by field, as the tests need. */
type Doc = Record<string, ReturnType<typeof JSON.parse>>;

function written(built: Built): Map<string, Doc[]> {
  built.app.synth();
  return new Map(fs.readdirSync(built.outdir).sort().map((f) => [f, parseAllDocuments(fs.readFileSync(path.join(built.outdir, f), 'utf8')).map((d) => d.toJS() as Doc)]));
}

describe('KubernetesPlatform', () => {
  test('writes the namespaces, the platform and the collector, in apply order, every manifest valid', () => {
    const files = written(build());
    expect([...files.keys()]).toEqual(['0000-lambda-mesh-dev-namespaces.yaml', '0001-lambda-mesh-dev-observability.yaml', '0002-lambda-mesh-dev-platform.yaml']);
    const all = [...files.values()].flat();
    expectValidManifests(all);
    expect(files.get('0000-lambda-mesh-dev-namespaces.yaml')!.map((d): unknown[] => [d.metadata.name, d.metadata.labels])).toEqual([
      ['lambda-mesh', { 'istio-injection': 'enabled' }],
      ['observability', undefined],
    ]);
  });

  test('the platform chart: namespace-wide STRICT, deny-all plus the model\'s allows, telemetry to the collector', () => {
    const platform = written(build()).get('0002-lambda-mesh-dev-platform.yaml')!;
    const names = platform.map((d) => `${d.kind} ${d.metadata.name}`);
    expect(names).toEqual(expect.arrayContaining([
      'PeerAuthentication default',
      'AuthorizationPolicy allow-nothing',
      'AuthorizationPolicy allow-knative-system',
      'AuthorizationPolicy allow-feature-store',
      'AuthorizationPolicy allow-log-service',
      'AuthorizationPolicy allow-result-writer',
      'Telemetry mesh-telemetry',
      'ServiceAccount model-a-v2',
    ]));
    expect(platform.every((d) => d.metadata.namespace === 'lambda-mesh')).toBe(true);
    const results = platform.find((d) => d.metadata.name === 'allow-result-writer')!;
    expect(results.spec.rules).toEqual([{
      from: [{ source: { principals: ['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1'].map((i) => `cluster.local/ns/lambda-mesh/sa/${i}`) } }],
      to: [{ operation: { paths: ['/results*'], methods: ['POST'] } }],
    }]);
  });

  test('the config sets the namespace, sampling, exporter and exposed services', () => {
    const files = written(build({ namespace: 'models', tracingSamplingPercentage: 25, otlpEndpoint: 'tempo.example.com:4317', exposedServices: ['feature-store'] }));
    const platform = files.get('0002-lambda-mesh-dev-platform.yaml')!;
    expect(platform.every((d) => d.metadata.namespace === 'models')).toBe(true);
    expect(platform.find((d) => d.kind === 'Telemetry')!.spec.tracing[0].randomSamplingPercentage).toBe(25);
    expect(platform.find((d) => d.metadata.name === 'allow-feature-store')!.spec.rules).toContainEqual({
      from: [{ source: { principals: ['cluster.local/ns/istio-system/sa/istio-ingressgateway'] } }],
    });
    const config = files.get('0001-lambda-mesh-dev-observability.yaml')!.find((d) => d.kind === 'ConfigMap')!.data['config.yaml'];
    expect(JSON.parse(config as string).exporters).toEqual({ otlp: { endpoint: 'tempo.example.com:4317', tls: { insecure: false } } });
  });

  test('fails with the config field when an exposed service is not a service of the model', () => {
    const e = thrownBy(() => build({ exposedServices: ['inventory'] }), (x): x is ConfigError => ConfigError.isConfigError(x));
    expect(e.message).toMatch(/^env\.yaml: kubernetes\.exposedServices: given "inventory"/);
  });

  test('fails with the config field when the sampling percentage is out of range', () => {
    const e = thrownBy(() => build({ tracingSamplingPercentage: 101 }), (x): x is ConfigError => ConfigError.isConfigError(x));
    expect(e.field).toBe('kubernetes.tracingSamplingPercentage');
  });

  test('warnings of the Kubernetes constructs are reported on the CDK stack, with their ids', () => {
    const built = build();
    new CfnWaitConditionHandle(built.stack, 'Placeholder');
    built.platform.mtls.addException({ name: 'scraper', selector: { app: 'exporter' }, ports: [{ port: 9100, mode: MtlsMode.PERMISSIVE }], reason: 'Scraped from outside the mesh.' });
    built.platform.reportWarnings();
    Annotations.fromStack(built.stack).hasWarning('*', Match.stringLikeRegexp('kubernetes/lambda-mesh-dev-platform/Mtls: PeerAuthentication lambda-mesh/scraper weakens mTLS.*Scraped from outside the mesh.*\\[ack: lambda-mesh:k8s-mtls-exception\\]'));
  });

  test('fails with the config field when asked to apply the charts without a cluster', () => {
    const e = thrownBy(() => build({ applyToCluster: true }), (x): x is ConfigError => ConfigError.isConfigError(x));
    expect(e.field).toBe('kubernetes.applyToCluster');
  });

  describe('with an EKS cluster', () => {
    test('without applyToCluster, nothing is installed on it: the charts are only written', () => {
      const built = build(undefined, true);
      const template = Template.fromStack(built.stack);
      template.resourceCountIs('Custom::AWSCDK-EKS-HelmChart', 0);
      template.resourceCountIs('Custom::AWSCDK-EKS-KubernetesResource', 0);
    });

    test('installs Istio (with the collector as tracing provider) and Knative, then applies the charts after them', () => {
      const built = build({ applyToCluster: true }, true);
      const template = Template.fromStack(built.stack);
      const charts = template.findResources('Custom::AWSCDK-EKS-HelmChart');
      expect(Object.values(charts).map((c) => c.Properties.Release as string).sort()).toEqual(['istio-base', 'istio-ingressgateway', 'istiod', 'knative-operator']);
      const istiod = Object.values(charts).find((c) => c.Properties.Release === 'istiod')!;
      expect(JSON.parse(istiod.Properties.Values as string).meshConfig.extensionProviders).toEqual([
        { name: 'otel-tracing', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4317 } },
      ]);

      const manifests = template.findResources('Custom::AWSCDK-EKS-KubernetesResource');
      const idOf = (needle: string): string => Object.entries(manifests).find(([, r]) => JSON.stringify(r.Properties.Manifest).includes(needle))![0];
      const namespaces = Object.entries(manifests).find(([, r]) => {
        const docs = JSON.parse(r.Properties.Manifest as string) as Array<{ kind: string; metadata: { name: string } }>;
        return docs.some((d) => d.kind === 'Namespace' && d.metadata.name === 'lambda-mesh');
      })![0];
      const platform = idOf('allow-nothing');
      const gatewayId = Object.entries(charts).find(([, c]) => c.Properties.Release === 'istio-ingressgateway')![0];
      const operatorId = Object.entries(charts).find(([, c]) => c.Properties.Release === 'knative-operator')![0];
      expect(manifests[namespaces].DependsOn).toEqual(expect.arrayContaining([gatewayId, operatorId]));
      expect(manifests[platform].DependsOn).toContain(namespaces);
    });

    test('charts added later follow their phase: DestinationRules before VirtualServices', () => {
      const built = build({ applyToCluster: true }, true);
      const destinationRules = new cdk8s.Chart(built.app, 'destination-rules');
      new cdk8s.ApiObject(destinationRules, 'Dr', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dr-marker' } });
      const virtualServices = new cdk8s.Chart(built.app, 'virtual-services');
      new cdk8s.ApiObject(virtualServices, 'Vs', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vs-marker' } });
      built.platform.addChart(virtualServices, ChartPhase.VIRTUAL_SERVICES);
      built.platform.addChart(destinationRules, ChartPhase.DESTINATION_RULES);

      const manifests = Template.fromStack(built.stack).findResources('Custom::AWSCDK-EKS-KubernetesResource');
      const idOf = (needle: string): string => Object.entries(manifests).find(([, r]) => JSON.stringify(r.Properties.Manifest).includes(needle))![0];
      // Added in the wrong order on purpose: the phase decides, not the call order.
      expect(manifests[idOf('vs-marker')].DependsOn).toContain(idOf('dr-marker'));
      expect(manifests[idOf('dr-marker')].DependsOn).toContain(idOf('allow-nothing'));
    });
  });
});
