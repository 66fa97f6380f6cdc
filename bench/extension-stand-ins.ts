/**
 * The local world both extension benchmarks run in: the binary built as the image builds it, a Connect CA, the SSM
 * stand-in holding the function's identity bundle, a mesh gateway routing on SNI, and one upstream service.
 * Everything is on 127.0.0.1: the figures carry no network latency.
 */
import { LambdaExtensionsApiStandIn } from '../test/harness/stand-ins/lambda-extensions-api';
import { MeshGatewayStandIn, MeshServiceStandIn } from '../test/harness/stand-ins/mesh-gateway';
import { SsmStandIn } from '../test/harness/stand-ins/ssm';
import { buildExtension, extensionEnvironment, MeshCa, REGION, type MeshIdentity } from '../test/constructs/function/extension-fixture';

export const FUNCTION = 'model-runner-v1';
export const UPSTREAM = 'feature-store';
const DATACENTER = 'dc1';
const NAMESPACE = 'default';
const PARAMETER = `/lambda-mesh/bench/default/${NAMESPACE}/${FUNCTION}`;

/** The running stand-ins. */
export interface BenchMesh {
  readonly binary: string;
  readonly ca: MeshCa;
  readonly identity: MeshIdentity;
  readonly lambda: LambdaExtensionsApiStandIn;
  readonly gateway: MeshGatewayStandIn;
  readonly upstream: MeshServiceStandIn;
  /** The extension's environment for an upstream bound on `localPort`. */
  environment(localPort: number): Record<string, string>;
  close(): Promise<void>;
}

/** Starts everything. */
export async function startBenchMesh(): Promise<BenchMesh> {
  const binary = buildExtension();
  const ca = await MeshCa.start({ datacenter: DATACENTER, namespace: NAMESPACE });
  const identity = await ca.issue(FUNCTION);
  const service = await ca.issue(UPSTREAM);
  const ssm = new SsmStandIn({ region: REGION });
  const ssmEndpoint = await ssm.start();
  ssm.setParameter({ name: PARAMETER, type: 'SecureString', value: identity.bundle, tier: 'Standard', keyId: 'alias/lambda-mesh' });
  const lambda = await LambdaExtensionsApiStandIn.start();
  const gateway = await MeshGatewayStandIn.start();
  const upstream = await MeshServiceStandIn.start({ certPem: service.certPem, privateKeyPem: service.privateKeyPem, clientCaPem: service.rootCertPem });
  gateway.route(ca.sni(UPSTREAM), upstream.port);
  return {
    binary,
    ca,
    identity,
    lambda,
    gateway,
    upstream,
    environment: (localPort) =>
      extensionEnvironment({
        runtimeApi: lambda.runtimeApi,
        ssmEndpoint,
        parameter: PARAMETER,
        gateway: gateway.address,
        datacenter: DATACENTER,
        namespace: NAMESPACE,
        upstreams: [{ service: UPSTREAM, localPort }],
      }),
    close: async () => {
      await Promise.all([ca.close(), ssm.stop(), lambda.close(), gateway.close(), upstream.close()]);
    },
  };
}

/** The `q`-quantile (0..1) of `xs`, nearest rank. */
export function quantile(xs: readonly number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Milliseconds with a precision that suits them. */
export function ms(t: number): string {
  return t < 10 ? t.toFixed(2) : t.toFixed(0);
}
