import { App, Stack } from 'aws-cdk-lib';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Mesh, type MeshService, ServicePlacement, ServiceProtocol } from '../../../constructs/mesh';
import { CONSUL_K8S_ANNOTATIONS, MeshKubernetesService, type MeshKubernetesServiceProps } from '../../../constructs/services';
import { type Manifest, manifest, synthValid, validationErrors, warningsOf } from '../k8s/fixtures';
import { meshError } from '../../util';
import { DIGEST } from './fixtures';

const IMAGE = `123456789012.dkr.ecr.us-east-1.amazonaws.com/result-writer@${DIGEST}`;
const NAMESPACE = 'lambda-mesh-consul';

interface Model {
  readonly mesh: Mesh;
  readonly resultWriter: MeshService;
  readonly logService: MeshService;
  readonly featureStore: MeshService;
  readonly scorer: MeshService;
}

/**
 * A mesh `ml` placed as the environment places it: result-writer (HTTP 8081) on EKS, which may call log-service
 * (TCP 24224, on ECS) and feature-store (HTTP 8080, reached on 18080, on ECS); scorer (TCP 9000) on EKS calls nothing.
 */
function model(): Model {
  const mesh = new Mesh(new Stack(new App(), 'Mesh'), 'Mesh', { meshName: 'ml' });
  const resultWriter = mesh.addService('result-writer', { port: 8081, protocol: ServiceProtocol.HTTP, placement: ServicePlacement.EKS });
  const logService = mesh.addService('log-service', { port: 24224, placement: ServicePlacement.ECS });
  const featureStore = mesh.addService('feature-store', { port: 8080, localPort: 18080, protocol: ServiceProtocol.HTTP, placement: ServicePlacement.ECS });
  const scorer = mesh.addService('scorer', { port: 9000, placement: ServicePlacement.EKS });
  logService.allowFrom(resultWriter);
  featureStore.allowFrom(resultWriter);
  return { mesh, resultWriter, logService, featureStore, scorer };
}

/** The chart the services go in: with a namespace (none when `null`). */
function newChart(namespace: string | null = NAMESPACE, app = Testing.app()): Chart {
  return new Chart(app, 'Services', { ...(namespace !== null ? { namespace } : {}), disableResourceNameHashes: true });
}

function service(props: Partial<MeshKubernetesServiceProps> = {}, m: Model = model(), chart: Chart = newChart()): { chart: Chart; svc: MeshKubernetesService; m: Model } {
  const svc = new MeshKubernetesService(chart, 'ResultWriter', { service: m.resultWriter, image: IMAGE, ...props });
  return { chart, svc, m };
}

/** The Deployment's pod template. */
function podOf(docs: Manifest[], name = 'result-writer'): Manifest {
  return manifest(docs, 'Deployment', name).spec.template;
}

function appOf(docs: Manifest[], name = 'result-writer'): Manifest {
  const containers = podOf(docs, name).spec.containers as Manifest[];
  expect(containers.map((c): unknown => c.name)).toEqual(['app']);
  return containers[0];
}

function envOf(container: Manifest): Record<string, string> {
  return Object.fromEntries(((container.env ?? []) as Array<{ name: string; value: string }>).map((e) => [e.name, e.value]));
}

describe('MeshKubernetesService', () => {
  describe('with the defaults', () => {
    const { chart, svc } = service();
    const docs = synthValid(chart);

    test('a ServiceAccount named after the identity, a Deployment and a Service, all in the chart\'s namespace, valid against the schemas', () => {
      expect(docs.map((d) => `${String(d.kind)} ${String(d.metadata.namespace)}/${String(d.metadata.name)}`)).toEqual([
        `ServiceAccount ${NAMESPACE}/result-writer`,
        `Deployment ${NAMESPACE}/result-writer`,
        `Service ${NAMESPACE}/result-writer`,
      ]);
      // consul-dataplane logs in with the pod's service account token: the Kubernetes auth method's binding rule
      // makes the pod the Consul service named after its ServiceAccount.
      expect(manifest(docs, 'ServiceAccount', 'result-writer').automountServiceAccountToken).toBe(true);
      expect(podOf(docs).spec).toMatchObject({ serviceAccountName: 'result-writer', automountServiceAccountToken: true });
      expect(svc.namespace).toBe(NAMESPACE);
      expect(svc.serviceAccount.name).toBe('result-writer');
      expect(svc.deployment.name).toBe('result-writer');
      expect(svc.kubernetesService.name).toBe('result-writer');
    });

    test('the pods carry consul-k8s\'s connect-inject annotations: the service, its port, the model\'s upstreams on 127.0.0.1, no transparent proxy', () => {
      expect(podOf(docs).metadata.annotations).toEqual({
        'consul.hashicorp.com/connect-inject': 'true',
        'consul.hashicorp.com/connect-service': 'result-writer',
        'consul.hashicorp.com/connect-service-port': '8081',
        'consul.hashicorp.com/transparent-proxy': 'false',
        // name:localPort, comma-separated, in the model's order (mesh.upstreamsOf).
        'consul.hashicorp.com/connect-service-upstreams': 'feature-store:18080,log-service:24224',
      });
      expect(Object.values(CONSUL_K8S_ANNOTATIONS).sort()).toEqual(Object.keys(podOf(docs).metadata.annotations as object).sort());
    });

    test('the upstreams annotation follows mesh.upstreamsOf', () => {
      const m = model();
      const annotation = m.mesh.upstreamsOf('result-writer').map((u) => `${u.name}:${u.localPort}`).join(',');
      const { chart: c } = service({}, m);
      expect(podOf(synthValid(c)).metadata.annotations[CONSUL_K8S_ANNOTATIONS.UPSTREAMS]).toBe(annotation);
    });

    test('Istio\'s injection is off on the pods: a pod is in one mesh only', () => {
      expect(podOf(docs).metadata.labels).toMatchObject({ 'sidecar.istio.io/inject': 'false', 'app': 'result-writer', 'app.kubernetes.io/managed-by': 'lambda-mesh' });
    });

    test('the app reads its upstreams\' local URLs from MESH_UPSTREAM_<SERVICE>_URL', () => {
      expect(envOf(appOf(docs))).toEqual({
        MESH_UPSTREAM_FEATURE_STORE_URL: 'http://127.0.0.1:18080',
        MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224',
      });
    });

    test('pod and container run as a non-root user with a read-only root file system and no privilege escalation', () => {
      expect(podOf(docs).spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000 });
      expect(appOf(docs).securityContext).toEqual({
        runAsNonRoot: true,
        runAsUser: 1000,
        runAsGroup: 1000,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        privileged: false,
      });
    });

    test('two replicas; the app gets 250m CPU and 512Mi, as request and limit; its image is the one given', () => {
      expect(manifest(docs, 'Deployment', 'result-writer').spec.replicas).toBe(2);
      expect(appOf(docs)).toMatchObject({
        image: IMAGE,
        ports: [{ containerPort: 8081 }],
        resources: { requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '250m', memory: '512Mi' } },
      });
      expect(appOf(docs).args).toBeUndefined();
    });

    test('no probe at all without healthCheckCommand: the app listens on 127.0.0.1, where kubelet\'s TCP and HTTP probes cannot reach', () => {
      const app = appOf(docs);
      expect(app.readinessProbe).toBeUndefined();
      expect(app.livenessProbe).toBeUndefined();
      // cdk8s-plus would add a TCP startup probe on the pod IP for a `portNumber`; it must not be there.
      expect(app.startupProbe).toBeUndefined();
    });

    test('the Service selects the Deployment\'s pods on the service port, named for its protocol', () => {
      const k8sService = manifest(docs, 'Service', 'result-writer');
      expect(k8sService.spec).toMatchObject({ type: 'ClusterIP', ports: [{ name: 'http', port: 8081, targetPort: 8081 }] });
      const podLabels = podOf(docs).metadata.labels as Record<string, string>;
      for (const [k, v] of Object.entries(k8sService.spec.selector as Record<string, string>)) {
        expect(podLabels[k]).toBe(v);
      }
      expect(manifest(docs, 'Deployment', 'result-writer').spec.selector).toEqual({ matchLabels: { app: 'result-writer' } });
    });

    test('claims the service in the model for its path', () => {
      expect(model().mesh.tryFindService('result-writer')?.workloadPath).toBeUndefined();
      const m = model();
      service({}, m);
      expect(m.resultWriter.workloadPath).toBe('Services/ResultWriter');
    });
  });

  test('options: upstreams (a subset), replicas, cpu, memory, user, args, environment and exec probes from healthCheckCommand', () => {
    const command = ['wget', '-q', '-O', '/dev/null', 'http://127.0.0.1:8081/health'];
    const { chart } = service({
      upstreams: ['log-service'],
      replicas: 3,
      cpuMillis: 500,
      memoryMiB: 1024,
      user: 2000,
      args: ['result-writer'],
      environment: { PORT: '8081', HOST: '127.0.0.1' },
      healthCheckCommand: command,
    });
    const docs = synthValid(chart);
    expect(podOf(docs).metadata.annotations[CONSUL_K8S_ANNOTATIONS.UPSTREAMS]).toBe('log-service:24224');
    expect(manifest(docs, 'Deployment', 'result-writer').spec.replicas).toBe(3);
    const app = appOf(docs);
    expect(app.args).toEqual(['result-writer']);
    expect(app.resources).toEqual({ requests: { cpu: '500m', memory: '1024Mi' }, limits: { cpu: '500m', memory: '1024Mi' } });
    expect(app.securityContext).toMatchObject({ runAsUser: 2000, runAsGroup: 2000, runAsNonRoot: true });
    expect(podOf(docs).spec.securityContext).toMatchObject({ runAsUser: 2000, runAsGroup: 2000 });
    expect(envOf(app)).toEqual({ PORT: '8081', HOST: '127.0.0.1', MESH_UPSTREAM_LOG_SERVICE_URL: 'tcp://127.0.0.1:24224' });
    const probe = { exec: { command }, initialDelaySeconds: 2, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 5 };
    expect(app.readinessProbe).toEqual(probe);
    expect(app.livenessProbe).toEqual(probe);
    expect(app.startupProbe).toBeUndefined();
  });

  test('a TCP service that calls nothing: no upstreams annotation, no upstream variables, a port named tcp', () => {
    const m = model();
    const chart = newChart();
    new MeshKubernetesService(chart, 'Scorer', { service: m.scorer, image: IMAGE });
    const docs = synthValid(chart);
    expect(Object.keys(podOf(docs, 'scorer').metadata.annotations as object)).not.toContain(CONSUL_K8S_ANNOTATIONS.UPSTREAMS);
    expect(appOf(docs, 'scorer').env).toBeUndefined();
    expect(manifest(docs, 'Service', 'scorer').spec.ports).toEqual([{ name: 'tcp', port: 9000, targetPort: 9000 }]);
  });

  describe('the Istio-injected namespace check (at synth)', () => {
    function withNamespace(labels: Record<string, string>, name = NAMESPACE): { app: ReturnType<typeof Testing.app>; chart: Chart } {
      const app = Testing.app();
      new kplus.Namespace(new Chart(app, 'Namespaces'), 'Namespace', { metadata: { name, labels } });
      const chart = newChart(NAMESPACE, app);
      service({}, model(), chart);
      return { app, chart };
    }

    test.each([
      ['istio-injection=enabled', { 'istio-injection': 'enabled' }],
      ['istio.io/rev=stable', { 'istio.io/rev': 'stable' }],
    ])('fails when a Namespace of the same app with its name is labelled %s', (label, labels) => {
      const { app, chart } = withNamespace(labels);
      const message = `Services/ResultWriter: namespace '${NAMESPACE}' is injected by both Consul and Istio (Namespaces/Namespace/Resource labels it ${label}); expected a namespace only consul-k8s injects: run Consul services in a namespace of their own`;
      expect(validationErrors(chart)).toEqual([message]);
      expect(() => app.synthYaml()).toThrow(message);
      expect(() => app.synth()).toThrow(/injected by both Consul and Istio/);
    });

    test.each([
      ['labelled istio-injection=disabled', { 'istio-injection': 'disabled' }, NAMESPACE],
      ['not labelled', {}, NAMESPACE],
      ['of another name, Istio-injected', { 'istio-injection': 'enabled' }, 'lambda-mesh'],
    ])('accepts a Namespace %s', (_why, labels, name) => {
      const { app, chart } = withNamespace(labels, name);
      expect(validationErrors(chart)).toEqual([]);
      expect(() => app.synthYaml()).not.toThrow();
    });
  });

  describe('bad input', () => {
    test('fails when the service\'s placement is not EKS', () => {
      const m = model();
      const err = meshError(() => new MeshKubernetesService(newChart(), 'LogService', { service: m.logService, image: IMAGE }));
      expect(err.location).toBe('Mesh/Mesh');
      expect(err.field).toBe('service(log-service).claimWorkload.placement');
      expect(err.given).toBe('"eks"');
      expect(err.expected).toMatch(/the service's placement, 'ecs'.*ServicePlacement.EKS.*Services\/LogService/);
    });

    test('fails when the same service is run twice', () => {
      const m = model();
      const chart = newChart();
      service({}, m, chart);
      const err = meshError(() => new MeshKubernetesService(chart, 'ResultWriterAgain', { service: m.resultWriter, image: IMAGE }));
      expect(err.field).toBe('service(result-writer).claimWorkload');
      expect(err.expected).toMatch(/Services\/ResultWriter already runs 'result-writer'/);
    });

    test.each([
      ['has no namespace', null, '"(the chart has none)"'],
      ['is in the default namespace', 'default', '"default"'],
    ])('fails when the chart %s', (_why, namespace, given) => {
      const err = meshError(() => service({}, model(), newChart(namespace)));
      expect(err.location).toBe('Services/ResultWriter');
      expect(err.field).toBe('namespace');
      expect(err.given).toBe(given);
      expect(err.expected).toMatch(/a chart with a namespace of its own .* one that consul-k8s injects and Istio does not/);
    });

    test('fails when the image is taken by tag, and warns with allowUnpinnedImage', () => {
      const err = meshError(() => service({ image: 'nginx:1.27' }));
      expect(err.field).toBe('image');
      expect(err.given).toBe('"nginx:1.27"');
      expect(err.expected).toMatch(/pinned by digest.*allowUnpinnedImage/);

      const { chart } = service({ image: 'nginx:1.27', allowUnpinnedImage: true });
      expect(warningsOf(chart)).toEqual([expect.stringMatching(/^Services\/ResultWriter: image nginx:1.27 is not pinned by digest/)]);
      const warning = chart.node.findAll().flatMap((c) => c.node.metadata).find((m) => m.type === 'aws:cdk:warning')!;
      expect(JSON.stringify(warning.data)).toContain('lambda-mesh:services:unpinnedImage');
      expect(appOf(synthValid(chart)).image).toBe('nginx:1.27');
    });

    test('accepts an image pinned by digest without a warning', () => {
      const { chart } = service({ image: `nginx@${DIGEST}` });
      expect(warningsOf(chart)).toEqual([]);
    });

    test.each([
      ['replicas', { replicas: 0 }, '0', 'a whole number from 1 to 100'],
      ['replicas', { replicas: 101 }, '101', 'a whole number from 1 to 100'],
      ['replicas', { replicas: 1.5 }, '1.5', 'a whole number from 1 to 100'],
      ['cpuMillis', { cpuMillis: 5 }, '5', 'a whole number from 10 to 64000'],
      ['cpuMillis', { cpuMillis: 64_001 }, '64001', 'a whole number from 10 to 64000'],
      ['memoryMiB', { memoryMiB: 8 }, '8', 'a whole number from 16 to 262144'],
      ['memoryMiB', { memoryMiB: 262_145 }, '262145', 'a whole number from 16 to 262144'],
      ['user', { user: 0 }, '0', 'a whole number from 1 to 2147483647'],
    ])('fails when %s is out of range (%o)', (field, props, given, expected) => {
      const err = meshError(() => service(props));
      expect(err.location).toBe('Services/ResultWriter');
      expect(err.field).toBe(field);
      expect(err.given).toBe(given);
      expect(err.expected).toBe(expected);
    });

    test('fails when healthCheckCommand is empty', () => {
      const err = meshError(() => service({ healthCheckCommand: [] }));
      expect(err.field).toBe('healthCheckCommand');
      expect(err.given).toBe('[]');
      expect(err.expected).toMatch(/a command and its arguments/);
    });

    test('fails when an upstream is not allowed by the model', () => {
      const err = meshError(() => service({ upstreams: ['log-service', 'scorer'] }));
      expect(err.location).toBe('Services/ResultWriter');
      expect(err.field).toBe('upstreams[1]');
      expect(err.given).toBe('"scorer"');
      expect(err.expected).toMatch(/a service that result-writer may call \(feature-store, log-service\).*mesh.service\('scorer'\).allowFrom\(mesh.service\('result-writer'\)\)/);
    });

    test('fails when the service port is the sidecar\'s (20000)', () => {
      const m = model();
      const clash = m.mesh.addService('clash', { port: 20000, placement: ServicePlacement.EKS });
      const err = meshError(() => new MeshKubernetesService(newChart(), 'Clash', { service: clash, image: IMAGE }));
      expect(err.field).toBe('service.port');
      expect(err.expected).toMatch(/sidecar's public listener/);
    });
  });
});
