// The seed scenario on Kubernetes: order-processor takes orders from outside and calls payment-handler and
// notification-service; all three are Knative Services with Istio sidecars, under STRICT mTLS and deny-by-default
// authorization generated from the same mesh model that drives the Consul intentions. payment-handler is mid-canary:
// v2 takes 10% of the traffic, and every request from a mobile client.
import { Chart, type ChartProps, Duration, Size } from 'cdk8s';
import { type Construct } from 'constructs';
import { type IMesh, Mesh, ServiceProtocol } from '../../constructs/mesh';
import {
  IstioDestination,
  IstioGateway,
  IstioStringMatch,
  IstioVirtualService,
  KnativeAutoscalingMetric,
  KnativeProbe,
  KnativeService,
  MeshAuthorization,
  MeshPeerAuthentication,
} from '../../constructs/k8s';

/** The namespace the platform runs in. */
export const ORDERS_NAMESPACE = 'orders';
/** The public host of the order API. */
export const ORDERS_HOST = 'api.orders.example.com';
/** The share of payment-handler traffic its candidate revision (v2) takes, at the edge and inside the mesh alike. */
export const PAYMENT_CANARY_WEIGHT = 10;

/**
 * Defines the platform's mesh model: three HTTP services and who may call which. The Istio authorization policies
 * below and the Consul intentions both render from it.
 */
export function orderPlatformMesh(scope: Construct, id: string = 'OrderPlatformMesh'): Mesh {
  const mesh = new Mesh(scope, id, { meshName: 'orders' });
  // All three listen on 8080 in their pods; localPort only matters to Lambda functions calling through the mesh.
  const orders = mesh.addService('order-processor', { port: 8080, protocol: ServiceProtocol.HTTP, description: 'Takes orders from the public API.' });
  const payments = mesh.addService('payment-handler', { port: 8080, localPort: 18081, protocol: ServiceProtocol.HTTP, description: 'Charges orders.' });
  const notifications = mesh.addService('notification-service', { port: 8080, localPort: 18082, protocol: ServiceProtocol.HTTP, description: 'Tells customers about their orders.' });
  payments.allowFrom(orders, { http: { pathPrefix: '/payments', methods: ['POST'] }, description: 'order-processor charges an order.' });
  notifications.allowFrom(orders, { http: { pathPrefix: '/notifications', methods: ['POST'] }, description: 'order-processor notifies the customer.' });
  return mesh;
}

/**
 * Defines the props of an {@link OrderPlatformChart}.
 */
export interface OrderPlatformChartProps extends ChartProps {
  /** The platform's mesh model ({@link orderPlatformMesh}). */
  readonly mesh: IMesh;
  /**
   * The registry path the service images live under.
   * @default 'registry.example.com/orders'
   */
  readonly registry?: string;
  /**
   * The Secret in the ingress gateway's namespace with the certificate of {@link ORDERS_HOST}.
   * @default 'orders-api-tls'
   */
  readonly credentialName?: string;
}

/**
 * Defines the order platform's Kubernetes objects in namespace `orders`.
 */
export class OrderPlatformChart extends Chart {
  /** The entry point. */
  public readonly orderProcessor: KnativeService;
  /** The service under canary. */
  public readonly paymentHandler: KnativeService;
  /** The notifier, scaled to zero when idle. */
  public readonly notificationService: KnativeService;

  constructor(scope: Construct, id: string, props: OrderPlatformChartProps) {
    super(scope, id, { namespace: ORDERS_NAMESPACE, ...props });
    const registry = props.registry ?? 'registry.example.com/orders';
    const health = KnativeProbe.httpGet('/healthz', { period: Duration.seconds(5) });

    // Security first: STRICT mTLS for the namespace, deny-all plus the model's allows (and Knative's own traffic).
    new MeshPeerAuthentication(this, 'Mtls');
    new MeshAuthorization(this, 'Authorization', {
      mesh: props.mesh,
      exposedServices: ['order-processor', 'payment-handler'],
    });

    // The service accounts are the mesh identities MeshAuthorization emits and its policies name.
    this.orderProcessor = new KnativeService(this, 'OrderProcessor', {
      revisionName: 'order-processor-v1',
      version: 'v1',
      serviceAccountName: 'order-processor',
      containers: [{
        image: `${registry}/order-processor:1.0.0`,
        env: {
          PAYMENTS_URL: `http://payment-handler.${ORDERS_NAMESPACE}.svc.cluster.local/payments`,
          NOTIFICATIONS_URL: `http://notification-service.${ORDERS_NAMESPACE}.svc.cluster.local/notifications`,
        },
        readinessProbe: health,
        livenessProbe: KnativeProbe.httpGet('/healthz', { period: Duration.seconds(10), failureThreshold: 3 }),
        resources: { memoryRequest: Size.mebibytes(256), memoryLimit: Size.mebibytes(512) },
      }],
      // The public entry point stays warm: no cold start on the first order.
      autoscaling: { minScale: 1, maxScale: 10, target: 50 },
      timeout: Duration.seconds(30),
    });

    // v1 was created by the previous release of this chart; this template creates v2.
    this.paymentHandler = new KnativeService(this, 'PaymentHandler', {
      revisionName: 'payment-handler-v2',
      version: 'v2',
      serviceAccountName: 'payment-handler',
      containers: [{ image: `${registry}/payment-handler:2.0.0`, readinessProbe: health }],
      autoscaling: { minScale: 1, maxScale: 20, target: 10 },
      containerConcurrency: 20,
      timeout: Duration.seconds(20),
      // Calls from inside the mesh go through Knative's route: the same split, each revision reachable by tag.
      traffic: [
        { revisionName: 'payment-handler-v1', percent: 100 - PAYMENT_CANARY_WEIGHT, tag: 'stable' },
        { revisionName: 'payment-handler-v2', percent: PAYMENT_CANARY_WEIGHT, tag: 'candidate' },
      ],
    });

    this.notificationService = new KnativeService(this, 'NotificationService', {
      revisionName: 'notification-service-v1',
      version: 'v1',
      serviceAccountName: 'notification-service',
      containers: [{ image: `${registry}/notification-service:1.0.0`, readinessProbe: health }],
      // Bursty and not latency-critical: scales to zero between bursts.
      autoscaling: { minScale: 0, maxScale: 5, metric: KnativeAutoscalingMetric.RPS, target: 20, scaleDownDelay: Duration.minutes(2) },
    });

    const gateway = new IstioGateway(this, 'OrdersGateway', {
      https: [{ hosts: [ORDERS_HOST], credentialName: props.credentialName ?? 'orders-api-tls' }],
      http: [{ hosts: [ORDERS_HOST] }],
    });

    // The edge: /payments (payment provider callbacks) under canary, everything else to order-processor.
    const api = new IstioVirtualService(this, 'OrdersApi', { hosts: [ORDERS_HOST], gateways: [gateway] });
    api.addCanary({
      name: 'payments',
      match: { uri: IstioStringMatch.prefix('/payments') },
      stable: IstioDestination.knativeRevision(this.paymentHandler, 'payment-handler-v1'),
      candidate: IstioDestination.knativeRevision(this.paymentHandler, 'payment-handler-v2'),
      weight: PAYMENT_CANARY_WEIGHT,
      header: { 'user-agent': IstioStringMatch.regex('.*[Mm]obile.*') },
      timeout: Duration.seconds(10),
      // Only failures before the request reached the service: a charge is not idempotent.
      retries: { attempts: 2, perTryTimeout: Duration.seconds(4), retryOn: ['connect-failure', 'refused-stream'] },
    });
    api.addHttpRoute({
      name: 'orders',
      destinations: [{ destination: IstioDestination.knativeRevision(this.orderProcessor, 'order-processor-v1') }],
      timeout: Duration.seconds(30),
    });
  }
}
