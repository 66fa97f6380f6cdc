import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import { GlooInstall, GlooLambdaAccess, GlooLambdaFunction, GlooLambdaRoutes, ServiceAccountIssuer } from '../../../constructs/eks';
import { type Fixture, fixture, meshError } from './fixtures';
import * as cdk8s from 'cdk8s';

function withCluster(): Fixture & { cluster: eks.Cluster; access: GlooLambdaAccess } {
  const f = fixture();
  const cluster = new eks.Cluster(f.stack, 'Cluster', {
    version: eks.KubernetesVersion.V1_35,
    kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(f.stack, 'Kubectl') },
  });
  const access = new GlooLambdaAccess(f.stack, 'Access', { issuer: ServiceAccountIssuer.fromCluster(cluster), functions: f.functions });
  return { ...f, cluster, access };
}

describe('GlooInstall', () => {
  test('installs the pinned chart into an explicit namespace, after the namespace and the roles, with the access values', () => {
    const f = withCluster();
    new GlooInstall(f.stack, 'Gloo', { cluster: f.cluster, access: f.access });
    const t = Template.fromStack(f.stack);
    const [[chartId, chart]] = Object.entries(t.findResources('Custom::AWSCDK-EKS-HelmChart'));
    const props = chart.Properties as Record<string, unknown>;
    expect(props).toMatchObject({ Chart: 'gloo', Version: '1.22.1', Repository: 'https://storage.googleapis.com/solo-public-helm', Namespace: 'gloo-system', Release: 'gloo', Wait: true });
    // The namespace is its own manifest: Helm must not create it.
    expect(props.CreateNamespace).toBeUndefined();
    const values = JSON.stringify(f.stack.resolve(props.Values));
    for (const expected of ['enableServiceAccountCredentials', 'stsCredentialsRegion', 'eu-west-1', 'eks.amazonaws.com/role-arn', 'service.beta.kubernetes.io/aws-load-balancer-internal']) {
      expect(values).toContain(expected);
    }
    expect(values).toContain('\\"discovery\\":{\\"enabled\\":false}');
    const namespace = Object.entries(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).find(([, r]) => JSON.stringify(r.Properties).includes('Namespace'))!;
    const dependsOn = (chart as { DependsOn: string[] }).DependsOn;
    expect(dependsOn).toEqual(expect.arrayContaining([namespace[0], expect.stringMatching(/^AccessProxyRole/)]));
    expect(chartId).toMatch(/^GlooChart/);
  });

  test('applies routes after the release, one manifest while they fit the payload limit', () => {
    const f = withCluster();
    const gloo = new GlooInstall(f.stack, 'Gloo', { cluster: f.cluster, access: f.access, imageRegistry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/quay/solo-io' });
    const routes = new GlooLambdaRoutes(new cdk8s.App(), 'Routes', { mesh: f.mesh, region: f.stack.region, functions: f.functions });
    const manifests = gloo.addRoutes('Routes', routes);
    expect(manifests).toHaveLength(1);
    const t = Template.fromStack(f.stack);
    const helm = Object.keys(t.findResources('Custom::AWSCDK-EKS-HelmChart'))[0];
    const [applied] = Object.values(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).filter((r) => JSON.stringify(r.Properties).includes('VirtualService'));
    expect((applied as { DependsOn: string[] }).DependsOn).toContain(helm);
    expect(JSON.stringify(applied.Properties)).toContain('Upstream');
    expect(JSON.stringify(f.stack.resolve(Object.values(t.findResources('Custom::AWSCDK-EKS-HelmChart'))[0].Properties.Values))).toContain('quay/solo-io');
  });

  function manyFunctions(f: Fixture, count: number): GlooLambdaFunction[] {
    return Array.from({ length: count }, (_, i) => f.mesh.function('model-a').addVersion(`r${i}`).identityName)
      .map((identity) => GlooLambdaFunction.fromFunctionName(identity, `${identity}-with-a-long-function-name-padding`));
  }

  test('splits routes over several manifests when they would exceed the payload limit', () => {
    const f = withCluster();
    const gloo = new GlooInstall(f.stack, 'Gloo', { cluster: f.cluster, access: f.access });
    const functions = manyFunctions(f, 300);
    const app = new cdk8s.App();
    const parts = [0, 1, 2].map((i) => new GlooLambdaRoutes(app, `Routes${i}`, { mesh: f.mesh, region: 'eu-west-1', functions, name: `part-${i}` }));
    const manifests = parts.flatMap((p, i) => gloo.addRoutes(`Part${i}`, p));
    expect(manifests.length).toBeGreaterThan(3);
    expect(manifests.map((m) => m.node.id)).toEqual(expect.arrayContaining(['Part0', 'Part02']));
    for (const m of manifests) {
      expect(m.node.dependencies).toContain(gloo.chart);
    }
  });

  test('fails when one Kubernetes object alone exceeds the payload limit', () => {
    const f = withCluster();
    const gloo = new GlooInstall(f.stack, 'Gloo', { cluster: f.cluster, access: f.access });
    const routes = new GlooLambdaRoutes(new cdk8s.App(), 'Routes', { mesh: f.mesh, region: 'eu-west-1', functions: manyFunctions(f, 400) });
    const err = meshError(() => gloo.addRoutes('Routes', routes));
    expect(err.field).toBe('addRoutes(Routes)');
    expect(err.given).toMatch(/lambda-mesh \(\d+ bytes\)/);
    expect(err.expected).toMatch(/at most 131072 bytes/);
  });

  test.each([
    ['version', { version: 'latest' }],
    ['timeout', { timeout: Duration.minutes(20) }],
  ])('fails when %s is out of range', (field, props) => {
    const f = withCluster();
    const err = meshError(() => new GlooInstall(f.stack, 'Gloo', { cluster: f.cluster, access: f.access, ...props }));
    expect(err.field).toBe(field);
    expect(err.location).toBe('Eks/Gloo');
  });
});
