import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { IstioInstall, type IstioInstallProps } from '../../../constructs/k8s/istio-install';
import { newTestApp } from '../../harness';
import { meshError } from './fixtures';

/** An eks-v2 cluster with a kubectl handler: without `kubectlProviderOptions`, Helm charts cannot be installed. */
function clusterStack(): { stack: Stack; cluster: eks.Cluster } {
  const stack = new Stack(newTestApp(), 'Eks');
  const cluster = new eks.Cluster(stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_34,
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
  });
  return { stack, cluster };
}

function install(props: Partial<IstioInstallProps> = {}): { template: Template; istio: IstioInstall; stack: Stack } {
  const { stack, cluster } = clusterStack();
  const istio = new IstioInstall(stack, 'Istio', { cluster, ...props });
  return { template: Template.fromStack(stack), istio, stack };
}

/** The Helm chart resources, by release name, with their logical ids. */
function releases(template: Template): Map<string, { id: string; properties: Record<string, unknown>; dependsOn: string[] }> {
  const found = template.findResources('Custom::AWSCDK-EKS-HelmChart');
  return new Map(Object.entries(found).map(([id, r]) => [r.Properties.Release as string, { id, properties: r.Properties as Record<string, unknown>, dependsOn: (r.DependsOn ?? []) as string[] }]));
}

describe('IstioInstall', () => {
  test('installs base, istiod and the gateway from the official repository at the pinned version', () => {
    const { template, istio } = install();
    const charts = releases(template);
    expect([...charts.keys()].sort()).toEqual(['istio-base', 'istio-ingressgateway', 'istiod']);
    for (const [release, chart] of [['istio-base', 'base'], ['istiod', 'istiod'], ['istio-ingressgateway', 'gateway']]) {
      expect(charts.get(release)!.properties).toMatchObject({
        Chart: chart,
        Version: '1.30.3',
        Repository: 'https://istio-release.storage.googleapis.com/charts',
        Namespace: 'istio-system',
        Wait: true,
      });
    }
    expect(istio.gatewayService).toBe('istio-ingressgateway.istio-system.svc.cluster.local');
  });

  test('orders the releases: CRDs, then istiod, then the gateway', () => {
    const charts = releases(install().template);
    const base = charts.get('istio-base')!;
    const istiod = charts.get('istiod')!;
    const gateway = charts.get('istio-ingressgateway')!;
    expect(istiod.dependsOn).toContain(base.id);
    expect(gateway.dependsOn).toContain(istiod.id);
    expect(base.dependsOn).not.toContain(istiod.id);
  });

  test('defines the OpenTelemetry tracing provider in the mesh config when given a collector', () => {
    const { template, istio } = install({ tracing: { service: 'otel-collector.observability.svc.cluster.local' } });
    const values = JSON.parse(releases(template).get('istiod')!.properties.Values as string);
    expect(values).toEqual({ meshConfig: { extensionProviders: [{ name: 'otel-tracing', opentelemetry: { service: 'otel-collector.observability.svc.cluster.local', port: 4317 } }] } });
    expect(istio.tracingProvider).toBe('otel-tracing');
  });

  test('version, repository and namespace are props', () => {
    const charts = releases(install({ version: '1.30.2', repository: 'oci://registry.example.com/istio', namespace: 'mesh-system' }).template);
    expect(charts.get('istiod')!.properties).toMatchObject({ Version: '1.30.2', Repository: 'oci://registry.example.com/istio', Namespace: 'mesh-system' });
  });

  test('fails when the version is not a pinned release', () => {
    const { stack, cluster } = clusterStack();
    expect(meshError(() => new IstioInstall(stack, 'Istio', { cluster, version: 'latest' })).field).toBe('version');
  });

  test('fails when the tracing service is not a host name, or the repository not a URL', () => {
    const { stack, cluster } = clusterStack();
    expect(meshError(() => new IstioInstall(stack, 'A', { cluster, tracing: { service: 'otel collector' } })).field).toBe('tracing.service');
    expect(meshError(() => new IstioInstall(stack, 'B', { cluster, tracing: { service: 'otel.obs.svc.cluster.local', port: 0 } })).field).toBe('tracing.port');
    expect(meshError(() => new IstioInstall(stack, 'C', { cluster, repository: 'istio-release.storage.googleapis.com' })).field).toBe('repository');
  });
});
