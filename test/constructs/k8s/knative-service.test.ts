import { Duration, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import {
  KnativeAutoscalingMetric,
  KnativePortProtocol,
  KnativeProbe,
  KnativeService,
  type KnativeServiceProps,
  KnativeVisibility,
} from '../../../constructs/k8s';
import { expectInvalid, type Manifest, NAMESPACE, manifest, newChart, synthValid, warningsOf } from './fixtures';

const IMAGE = `registry.example.com/orders/payment-handler@sha256:${'a'.repeat(64)}`;

function service(props: Partial<KnativeServiceProps> = {}) {
  const chart = newChart();
  const svc = new KnativeService(chart, 'PaymentHandler', { containers: [{ image: IMAGE }], ...props });
  return { chart, svc };
}

function ksvc(docs: Manifest[], name = 'payment-handler'): Manifest {
  return manifest(docs, 'Service', name);
}

describe('KnativeService', () => {
  test('defaults: sidecar label (not annotation), own service account without token, hardened container, cluster-local', () => {
    const { chart, svc } = service();
    const docs = synthValid(chart);
    const template = ksvc(docs).spec.template;
    expect(template.metadata.labels).toEqual({ 'app': 'payment-handler', 'sidecar.istio.io/inject': 'true' });
    expect(template.metadata.annotations).toBeUndefined();
    expect(ksvc(docs).metadata.labels).toEqual({ 'networking.knative.dev/visibility': 'cluster-local' });
    expect(template.spec).toMatchObject({ serviceAccountName: 'payment-handler', automountServiceAccountToken: false });
    expect(template.spec.containers).toEqual([{
      image: IMAGE,
      ports: [{ containerPort: 8080, name: 'http1' }],
      resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
      securityContext: {
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
        seccompProfile: { type: 'RuntimeDefault' },
      },
    }]);
    expect(manifest(docs, 'ServiceAccount', 'payment-handler').automountServiceAccountToken).toBe(false);
    expect(ksvc(docs).spec.traffic).toBeUndefined();
    expect(svc.host).toBe('payment-handler.orders.svc.cluster.local');
    expect(svc.principal()).toBe('cluster.local/ns/orders/sa/payment-handler');
    expect(svc.tagHost('candidate')).toBe('candidate-payment-handler.orders.svc.cluster.local');
  });

  test('matches its snapshot with defaults', () => {
    const { chart } = service();
    expect(synthValid(chart)).toMatchSnapshot();
  });

  test('autoscaling keys land on the revision template as string annotations, not under spec', () => {
    const { chart } = service({
      autoscaling: {
        minScale: 1, maxScale: 10, initialScale: 2, target: 50, targetUtilizationPercentage: 80,
        metric: KnativeAutoscalingMetric.RPS, scaleDownDelay: Duration.minutes(5), window: Duration.seconds(30),
      },
      containerConcurrency: 25,
      timeout: Duration.seconds(60),
    });
    const doc = ksvc(synthValid(chart));
    expect(doc.spec.template.metadata.annotations).toEqual({
      'autoscaling.knative.dev/min-scale': '1',
      'autoscaling.knative.dev/max-scale': '10',
      'autoscaling.knative.dev/initial-scale': '2',
      'autoscaling.knative.dev/metric': 'rps',
      'autoscaling.knative.dev/target': '50',
      'autoscaling.knative.dev/target-utilization-percentage': '80',
      'autoscaling.knative.dev/scale-down-delay': '300s',
      'autoscaling.knative.dev/window': '30s',
    });
    for (const value of Object.values(doc.spec.template.metadata.annotations as Record<string, unknown>)) {
      expect(typeof value).toBe('string');
    }
    expect(Object.keys(doc.spec as object)).toEqual(['template']);
    expect(doc.metadata.annotations).toBeUndefined();
    expect(doc.spec.template.spec).toMatchObject({ containerConcurrency: 25, timeoutSeconds: 60 });
  });

  test('CPU metric selects the HPA autoscaler class', () => {
    const { chart } = service({ autoscaling: { metric: KnativeAutoscalingMetric.CPU, minScale: 1, target: 70 } });
    expect(ksvc(synthValid(chart)).spec.template.metadata.annotations).toMatchObject({
      'autoscaling.knative.dev/class': 'hpa.autoscaling.knative.dev',
      'autoscaling.knative.dev/metric': 'cpu',
    });
  });

  test('renders containers, probes, resources, env, version, BYO revision name and traffic', () => {
    const { chart } = service({
      revisionName: 'payment-handler-v2',
      version: 'v2',
      visibility: KnativeVisibility.EXTERNAL,
      serviceAccountName: 'payments',
      labels: { team: 'payments' },
      containers: [
        {
          image: IMAGE, name: 'app', port: 9000, protocol: KnativePortProtocol.H2C,
          env: { LOG_LEVEL: 'info' }, args: ['--serve'],
          readinessProbe: KnativeProbe.httpGet('/ready', { period: Duration.seconds(5) }),
          livenessProbe: KnativeProbe.grpc({ initialDelay: Duration.seconds(3), failureThreshold: 5 }),
          startupProbe: KnativeProbe.tcpSocket({ timeout: Duration.seconds(2) }),
          resources: { cpuRequest: kplus.Cpu.millis(250), cpuLimit: kplus.Cpu.units(1), memoryRequest: Size.mebibytes(256), memoryLimit: Size.gibibytes(1) },
        },
        { image: 'registry.example.com/log-shipper:1.0.0', name: 'log-shipper' },
      ],
      traffic: [
        { revisionName: 'payment-handler-v1', percent: 90, tag: 'stable' },
        { revisionName: 'payment-handler-v2', percent: 10, tag: 'candidate' },
        { latestRevision: true, percent: 0, tag: 'latest' },
      ],
    });
    const docs = synthValid(chart);
    const doc = ksvc(docs);
    expect(doc.metadata.labels).toEqual({ team: 'payments' });
    expect(docs.filter((d) => d.kind === 'ServiceAccount')).toHaveLength(0);
    expect(doc.spec.template.metadata).toMatchObject({ name: 'payment-handler-v2', labels: { version: 'v2' } });
    expect(doc.spec.template.spec.serviceAccountName).toBe('payments');
    const [app, sidecar] = doc.spec.template.spec.containers;
    expect(app).toMatchObject({
      name: 'app',
      args: ['--serve'],
      env: [{ name: 'LOG_LEVEL', value: 'info' }],
      ports: [{ containerPort: 9000, name: 'h2c' }],
      readinessProbe: { httpGet: { path: '/ready' }, periodSeconds: 5 },
      livenessProbe: { grpc: {}, initialDelaySeconds: 3, failureThreshold: 5 },
      startupProbe: { tcpSocket: {}, timeoutSeconds: 2 },
      resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '1024Mi' } },
    });
    expect(sidecar.ports).toBeUndefined();
    expect(doc.spec.traffic).toEqual([
      { revisionName: 'payment-handler-v1', latestRevision: false, percent: 90, tag: 'stable' },
      { revisionName: 'payment-handler-v2', latestRevision: false, percent: 10, tag: 'candidate' },
      { latestRevision: true, percent: 0, tag: 'latest' },
    ]);
  });

  test('service name defaults to the ID in kebab case; namespace from the props wins over the chart', () => {
    const chart = newChart();
    const svc = new KnativeService(chart, 'NotificationService', { namespace: 'alerts', containers: [{ image: IMAGE }] });
    expect(svc.serviceName).toBe('notification-service');
    expect(ksvc(synthValid(chart), 'notification-service').metadata.namespace).toBe('alerts');
  });

  test('warns when sidecar injection or the read-only root filesystem is turned off', () => {
    const { chart } = service({ sidecarInjection: false, containers: [{ image: IMAGE, readOnlyRootFilesystem: false }] });
    const docs = synthValid(chart);
    expect(ksvc(docs).spec.template.metadata.labels['sidecar.istio.io/inject']).toBe('false');
    const warnings = warningsOf(chart).join('\n');
    expect(warnings).toMatch(/sidecarInjection is off/);
    expect(warnings).toMatch(/readOnlyRootFilesystem is off/);
  });

  test('imports a service defined elsewhere', () => {
    const chart = newChart();
    const imported = KnativeService.fromServiceAttributes(chart, 'Imported', { serviceName: 'billing', namespace: 'finance' });
    expect(imported.host).toBe('billing.finance.svc.cluster.local');
  });

  describe('fails when', () => {
    test('fails when Knative traffic percentages do not sum to 100', () => {
      expectInvalid(() => service({
        revisionName: 'payment-handler-v2',
        traffic: [{ revisionName: 'payment-handler-v1', percent: 80 }, { revisionName: 'payment-handler-v2', percent: 10 }],
      }), /percent/);
    });

    test('fails when a percentage is not an integer from 0 to 100', () => {
      expectInvalid(() => service({ traffic: [{ latestRevision: true, percent: 100.5 }] }), /traffic\[0\]\.percent/);
    });

    test('fails when a tag is used twice', () => {
      expectInvalid(() => service({
        traffic: [{ revisionName: 'payment-handler-v1', percent: 50, tag: 'blue' }, { latestRevision: true, percent: 50, tag: 'blue' }],
      }), /traffic\[1\]\.tag/);
    });

    test('fails when a tag is not a DNS-1035 label', () => {
      expectInvalid(() => service({ traffic: [{ latestRevision: true, percent: 100, tag: '1st' }] }), /tag/);
      expectInvalid(() => service({ traffic: [{ latestRevision: true, percent: 100, tag: 'Blue' }] }), /tag/);
    });

    test('fails when a tag makes the host label longer than 63', () => {
      expectInvalid(() => service({ traffic: [{ latestRevision: true, percent: 100, tag: `t${'a'.repeat(50)}` }] }), /tag/);
    });

    test('fails when a BYO revision name is not prefixed with the service name', () => {
      expectInvalid(() => service({ revisionName: 'payments-v2' }), /^revisionName$/);
      expectInvalid(() => service({ revisionName: 'payment-handler-' }), /^revisionName$/);
      expectInvalid(() => service({ traffic: [{ revisionName: 'other-v1', percent: 100 }] }), /traffic\[0\]\.revisionName/);
    });

    test('fails when a target names a revision and latestRevision, or neither', () => {
      expectInvalid(() => service({ traffic: [{ revisionName: 'payment-handler-v1', latestRevision: true, percent: 100 }] }), /traffic\[0\]/);
      expectInvalid(() => service({ traffic: [{ percent: 100 }] }), /traffic\[0\]/);
      expectInvalid(() => service({ traffic: [] }), /traffic/);
    });

    test('fails when the service name is not a DNS-1035 label', () => {
      expectInvalid(() => service({ serviceName: '9lives' }), /serviceName/);
      expectInvalid(() => service({ serviceName: 'Payments' }), /serviceName/);
    });

    test('fails when there is no namespace', () => {
      const chart = newChart(null);
      expectInvalid(() => new KnativeService(chart, 'Svc', { containers: [{ image: IMAGE }] }), /namespace/);
    });

    test('fails when there is no container, or not exactly one serving container among several', () => {
      expectInvalid(() => service({ containers: [] }), /containers/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, name: 'a' }, { image: IMAGE, name: 'b' }] }), /containers/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, name: 'a', port: 8080 }, { image: IMAGE, name: 'b', port: 9000 }] }), /containers/);
    });

    test('fails when a sidecar container has probes', () => {
      expectInvalid(() => service({
        containers: [{ image: IMAGE, name: 'a', port: 8080 }, { image: IMAGE, name: 'b', readinessProbe: KnativeProbe.tcpSocket() }],
      }), /containers\[1\]/);
    });

    test('fails when container names repeat or are invalid', () => {
      expectInvalid(() => service({ containers: [{ image: IMAGE, name: 'a', port: 8080 }, { image: IMAGE, name: 'a' }] }), /containers\[1\]\.name/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, name: 'App' }] }), /containers\[0\]\.name/);
    });

    test('fails when the image is empty or has whitespace', () => {
      expectInvalid(() => service({ containers: [{ image: '' }] }), /image/);
      expectInvalid(() => service({ containers: [{ image: 'a b' }] }), /image/);
    });

    test('fails when the port is reserved by the queue-proxy or the sidecar, or out of range', () => {
      expectInvalid(() => service({ containers: [{ image: IMAGE, port: 8012 }] }), /port/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, port: 15001 }] }), /port/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, port: 70000 }] }), /port/);
    });

    test('fails when an environment variable name is invalid', () => {
      expectInvalid(() => service({ containers: [{ image: IMAGE, env: { '1X': 'y' } }] }), /env/);
    });

    test('fails when limits are below requests', () => {
      expectInvalid(() => service({ containers: [{ image: IMAGE, resources: { memoryRequest: Size.mebibytes(512), memoryLimit: Size.mebibytes(256) } }] }), /memoryLimit/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, resources: { cpuRequest: kplus.Cpu.millis(500), cpuLimit: kplus.Cpu.millis(200) } }] }), /cpuLimit/);
    });

    test('fails when a probe path is relative or a probe timing is out of range', () => {
      expectInvalid(() => service({ containers: [{ image: IMAGE, readinessProbe: KnativeProbe.httpGet('healthz') }] }), /readinessProbe\.path/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, livenessProbe: KnativeProbe.tcpSocket({ timeout: Duration.millis(500) }) }] }), /livenessProbe\.timeout/);
      expectInvalid(() => service({ containers: [{ image: IMAGE, livenessProbe: KnativeProbe.tcpSocket({ failureThreshold: 0 }) }] }), /failureThreshold/);
    });

    test('fails when minScale exceeds maxScale', () => {
      expectInvalid(() => service({ autoscaling: { minScale: 5, maxScale: 2 } }), /minScale/);
    });

    test('fails when a scale is negative or fractional', () => {
      expectInvalid(() => service({ autoscaling: { maxScale: -1 } }), /maxScale/);
      expectInvalid(() => service({ autoscaling: { initialScale: 1.5 } }), /initialScale/);
    });

    test('fails when an HPA metric is combined with scale to zero', () => {
      expectInvalid(() => service({ autoscaling: { metric: KnativeAutoscalingMetric.MEMORY, minScale: 0 } }), /minScale/);
    });

    test('fails when target, utilization, window or scale-down delay is out of range', () => {
      expectInvalid(() => service({ autoscaling: { target: 0 } }), /target/);
      expectInvalid(() => service({ autoscaling: { targetUtilizationPercentage: 120 } }), /targetUtilizationPercentage/);
      expectInvalid(() => service({ autoscaling: { window: Duration.seconds(5) } }), /window/);
      expectInvalid(() => service({ autoscaling: { scaleDownDelay: Duration.hours(2) } }), /scaleDownDelay/);
    });

    test('fails when containerConcurrency or timeout is out of range', () => {
      expectInvalid(() => service({ containerConcurrency: 1001 }), /containerConcurrency/);
      expectInvalid(() => service({ timeout: Duration.minutes(11) }), /timeout/);
    });

    test('fails when the version or the labels are not valid label values', () => {
      expectInvalid(() => service({ version: 'v 2' }), /version/);
      expectInvalid(() => service({ labels: { 'bad key!': 'x' } }), /labels/);
    });

    test('fails when an imported service has an invalid name', () => {
      expectInvalid(() => KnativeService.fromServiceAttributes(newChart(), 'Imported', { serviceName: 'Billing', namespace: NAMESPACE }), /serviceName/);
    });
  });

  test('emits a ServiceAccount and a serving.knative.dev/v1 Service', () => {
    const { chart } = service();
    expect((Testing.synth(chart)).map((d) => `${String(d.apiVersion)} ${String(d.kind)}`)).toEqual(['v1 ServiceAccount', 'serving.knative.dev/v1 Service']);
  });
});
