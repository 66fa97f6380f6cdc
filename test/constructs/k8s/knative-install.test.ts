import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { IstioInstall } from '../../../constructs/k8s/istio-install';
import { KnativeInstall, type KnativeInstallProps } from '../../../constructs/k8s/knative-install';
import { expectValidManifests, newTestApp } from '../../harness';
import { meshError } from './fixtures';

function setup(props: Partial<KnativeInstallProps> = {}): { stack: Stack; cluster: eks.Cluster; istio: IstioInstall; knative: KnativeInstall } {
  const stack = new Stack(newTestApp(), 'Eks');
  // Without kubectlProviderOptions, eks-v2 creates no kubectl handler and Helm charts cannot be installed.
  const cluster = new eks.Cluster(stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_34,
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(stack, 'Kubectl') },
  });
  const istio = new IstioInstall(stack, 'Istio', { cluster });
  const knative = new KnativeInstall(stack, 'Knative', { cluster, istio, ...props });
  return { stack, cluster, istio, knative };
}

function logicalIds(stack: Stack, type: string, match: (properties: Record<string, unknown>) => boolean): string[] {
  return Object.entries(Template.fromStack(stack).findResources(type)).filter(([, r]) => match(r.Properties as Record<string, unknown>)).map(([id]) => id);
}

describe('KnativeInstall', () => {
  test('installs the Knative Operator chart at the version that ships Serving 1.23', () => {
    const { stack } = setup();
    Template.fromStack(stack).hasResourceProperties('Custom::AWSCDK-EKS-HelmChart', {
      Chart: 'knative-operator',
      Release: 'knative-operator',
      Version: 'v1.23.0',
      Repository: 'https://knative.github.io/operator',
      Namespace: 'knative-operator',
      Wait: true,
    });
  });

  test('applies the knative-serving namespace (labelled for injection) and a KnativeServing with the Istio ingress', () => {
    const { stack } = setup();
    const [id] = logicalIds(stack, 'Custom::AWSCDK-EKS-KubernetesResource', (p) => JSON.stringify(p.Manifest).includes('KnativeServing'));
    const manifest = JSON.parse(Template.fromStack(stack).toJSON().Resources[id].Properties.Manifest as string);
    // eks-v2 adds its prune label to every object it applies.
    expect(manifest[0]).toMatchObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'knative-serving', labels: { 'istio-injection': 'enabled' } } });
    expectValidManifests([manifest[0]]);
    expect(manifest[1]).toMatchObject({
      apiVersion: 'operator.knative.dev/v1beta1',
      kind: 'KnativeServing',
      metadata: { name: 'knative-serving', namespace: 'knative-serving' },
      spec: { version: '1.23', ingress: { istio: { enabled: true } }, config: { network: { 'ingress-class': 'istio.ingress.networking.knative.dev' } } },
    });
  });

  test('orders the installs: Istio, then the operator, then the KnativeServing resource', () => {
    const { stack } = setup();
    const template = Template.fromStack(stack).toJSON();
    const [gateway] = logicalIds(stack, 'Custom::AWSCDK-EKS-HelmChart', (p) => p.Release === 'istio-ingressgateway');
    const [operator] = logicalIds(stack, 'Custom::AWSCDK-EKS-HelmChart', (p) => p.Release === 'knative-operator');
    const [serving] = logicalIds(stack, 'Custom::AWSCDK-EKS-KubernetesResource', (p) => JSON.stringify(p.Manifest).includes('KnativeServing'));
    expect(template.Resources[operator].DependsOn).toContain(gateway);
    expect(template.Resources[serving].DependsOn).toContain(operator);
  });

  test('fails when the operator version lacks its v, or the serving version is not major.minor', () => {
    const { stack, cluster, istio } = setup();
    expect(meshError(() => new KnativeInstall(stack, 'A', { cluster, istio, operatorVersion: '1.23.0' })).field).toBe('operatorVersion');
    expect(meshError(() => new KnativeInstall(stack, 'B', { cluster, istio, servingVersion: 'latest' })).field).toBe('servingVersion');
  });

  test('fails when the operator would share the namespace it manages', () => {
    const { stack, cluster, istio } = setup();
    expect(meshError(() => new KnativeInstall(stack, 'C', { cluster, istio, operatorNamespace: 'knative-serving' })).field).toBe('operatorNamespace');
  });
});
