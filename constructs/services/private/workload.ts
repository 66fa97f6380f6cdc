import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { type Construct, type IConstruct } from 'constructs';
import { throwInvalid } from '../../core/errors';
import { CONSUL_ECS } from '../../consul/internal';
import { ConsulPorts } from '../../consul/types';
import { type IMesh, type MeshService, type ResolvedService, ServicePlacement, ServiceProtocol } from '../../mesh';
import { type IMeshWorkload } from '../workload';
import { type IMeshNetwork } from '../../network';

/** The sidecar's public listener (mTLS from other sidecars and the mesh gateway) on every platform lambda-mesh runs. */
export const SIDECAR_PORT = CONSUL_ECS.PUBLIC_LISTENER_PORT;
/** Envoy's readiness port, bound to 127.0.0.1. */
export const ENVOY_READY_PORT = CONSUL_ECS.ENVOY_READY_PORT;

/** A service the workload calls through its sidecar, on 127.0.0.1. */
export interface WorkloadUpstream {
  readonly name: string;
  readonly localPort: number;
  readonly protocol: ServiceProtocol;
  /** `MESH_UPSTREAM_<SERVICE>_URL`, the variable the app reads (the same as mesh functions get). */
  readonly environmentVariable: string;
  /** `http://127.0.0.1:<port>` or `tcp://127.0.0.1:<port>`. */
  readonly url: string;
}

/** The symbol that marks a construct as an {@link IMeshWorkload} (its class may come from another copy of the library). */
const WORKLOAD = Symbol.for('lambda-mesh.MeshWorkload');

/** Marks `workload`, so that peers constructed later find it. */
export function markWorkload(workload: IMeshWorkload): void {
  Object.defineProperty(workload, WORKLOAD, { value: true });
}

function isWorkload(x: unknown): x is IMeshWorkload {
  return typeof x === 'object' && x !== null && WORKLOAD in x;
}

/** The construct at `path` in the tree of `scope`, or undefined. */
function findByPath(scope: IConstruct, path: string): IConstruct | undefined {
  let node: IConstruct | undefined = scope.node.root;
  for (const id of path.split('/').filter((p) => p !== '')) {
    node = node?.node.tryFindChild(id);
  }
  return node;
}

/** The workload construct (ECS, EC2) that runs `name` in the tree of `scope`, or undefined. */
export function findWorkload(scope: IConstruct, mesh: IMesh, name: string): IMeshWorkload | undefined {
  const path = mesh.tryFindService(name)?.workloadPath;
  const found = path === undefined ? undefined : findByPath(scope, path);
  return isWorkload(found) ? found : undefined;
}

/**
 * Validates the service of a workload construct and claims it: the service must be of the mesh, declared here,
 * with this placement, and run by no other workload. Returns the resolved service.
 */
export function claimService(scope: Construct, service: MeshService, placement: ServicePlacement): ResolvedService {
  if (!service || typeof service.claimWorkload !== 'function') {
    throwInvalid(scope, 'service', service, "a service of the mesh model (mesh.service('feature-store'))");
  }
  service.claimWorkload(scope.node.path, placement);
  const resolved = service.mesh.graph().services.find((s) => s.name === service.name)!;
  for (const [port, what] of [[SIDECAR_PORT, 'the sidecar\'s public listener'], [ENVOY_READY_PORT, 'Envoy\'s readiness listener']] as const) {
    if (resolved.port === port) {
      throwInvalid(scope, 'service.port', port, `a port other than ${port}, which ${what} takes in the same network namespace (declare the service on another port)`);
    }
  }
  return resolved;
}

/**
 * The upstreams of `service`: every service the model lets it call, or the ones listed (each must be allowed).
 * Their local ports must not collide with the app's own port or the sidecar's.
 */
export function workloadUpstreams(scope: Construct, mesh: IMesh, service: ResolvedService, requested: readonly string[] | undefined): WorkloadUpstream[] {
  const allowed = mesh.upstreamsOf(service.name);
  let chosen: readonly ResolvedService[] = allowed;
  if (requested !== undefined) {
    chosen = requested.map((name, i) => {
      const found = allowed.find((s) => s.name === name);
      if (!found) {
        throwInvalid(scope, `upstreams[${i}]`, name, `a service that ${service.name} may call (${allowed.map((s) => s.name).join(', ') || 'none: no rule allows it to call anything'}); add a rule, e.g. mesh.service('${name}').allowFrom(mesh.service('${service.name}'))`);
      }
      return found;
    });
  }
  const taken = new Map<number, string>([[service.port, `${service.name}'s own port`], [SIDECAR_PORT, 'the sidecar\'s public listener'], [ENVOY_READY_PORT, 'Envoy\'s readiness listener']]);
  return chosen.map((s) => {
    const clash = taken.get(s.localPort);
    if (clash !== undefined) {
      throwInvalid(scope, `upstreams(${s.name}).localPort`, s.localPort, `a local port other than ${clash} (${s.localPort}): the sidecar binds each upstream on 127.0.0.1 beside the app; set the service's localPort in the model`);
    }
    taken.set(s.localPort, `the upstream ${s.name}'s`);
    const scheme = s.protocol === ServiceProtocol.TCP ? 'tcp' : 'http';
    return {
      name: s.name,
      localPort: s.localPort,
      protocol: s.protocol,
      environmentVariable: `MESH_UPSTREAM_${s.name.toUpperCase().replace(/-/g, '_')}_URL`,
      url: `${scheme}://127.0.0.1:${s.localPort}`,
    };
  });
}

/** The connections of a workload whose sidecars listen on {@link SIDECAR_PORT} behind `securityGroup`. */
export function sidecarConnections(securityGroup: ec2.ISecurityGroup): ec2.Connections {
  return new ec2.Connections({ securityGroups: [securityGroup], defaultPort: ec2.Port.tcp(SIDECAR_PORT) });
}

/**
 * Makes `workload` (whose `connections` are set) a workload of the mesh: marks it, so the workloads that call it or
 * that it calls find it, and opens its network paths ({@link wireWorkload}).
 */
export function joinMesh(workload: IMeshWorkload, props: {
  readonly network: IMeshNetwork;
  readonly cluster: ec2.IConnectable;
  readonly gateway: { readonly taskConnections: ec2.IConnectable };
}, upstreams: readonly WorkloadUpstream[]): void {
  markWorkload(workload);
  const { network, cluster, gateway } = props;
  wireWorkload(workload, { network, cluster, gatewayTasks: gateway.taskConnections, upstreams });
}

/**
 * Opens the network paths a workload's sidecars need, each from the side that owns the rule, so no stack refers
 * back to a later one: the mesh gateway and the workloads that may call this one reach its sidecar port; its
 * sidecars reach the workloads it calls, the Consul servers (HTTPS 8501 for login and registration, gRPC-TLS 8503
 * for xDS) and the VPC endpoints. Workloads declared later do the same, so the order of construction does not matter.
 */
export function wireWorkload(workload: IMeshWorkload, o: {
  readonly network: IMeshNetwork;
  readonly cluster: ec2.IConnectable;
  readonly gatewayTasks: ec2.IConnectable;
  readonly upstreams: readonly WorkloadUpstream[];
}): void {
  const sidecar = ec2.Port.tcp(workload.sidecarPort);
  workload.connections.allowFrom(o.gatewayTasks, sidecar, 'the mesh gateway to the sidecar (mTLS)');
  // Called from the workload's side, so both halves of each rule live in its stack (never in the cluster's).
  workload.connections.allowTo(o.cluster, ec2.Port.tcp(ConsulPorts.HTTPS), `${workload.meshService.name} sidecar: Consul HTTPS API (login, registration)`);
  workload.connections.allowTo(o.cluster, ec2.Port.tcp(ConsulPorts.GRPC_TLS), `${workload.meshService.name} sidecar: Consul gRPC-TLS (xDS)`);
  workload.connections.allowTo(o.network, ec2.Port.tcp(443), `${workload.meshService.name}: the VPC endpoints`);

  const mesh = workload.meshService.mesh;
  const me = workload.meshService.name;
  for (const other of mesh.graph().services) {
    const path = mesh.tryFindService(other.name)?.workloadPath;
    const peer = path === undefined || other.name === me ? undefined : findByPath(workload, path);
    if (!isWorkload(peer)) {
      continue;
    }
    if (o.upstreams.some((u) => u.name === other.name)) {
      workload.connections.allowTo(peer, ec2.Port.tcp(peer.sidecarPort), `${me} to ${other.name}'s sidecar (mTLS)`);
    }
    if (mesh.upstreamsOf(other.name).some((s) => s.name === me)) {
      peer.connections.allowTo(workload, sidecar, `${other.name} to ${me}'s sidecar (mTLS)`);
    }
  }
}

/**
 * Checks that an app image is pinned: an image asset (content-addressed), an ECR image, or a registry image by
 * digest. A registry image by tag can change under the same name; only with `allowUnpinned` (which warns).
 */
export function checkPinned(scope: Construct, field: string, imageName: string, allowUnpinned: boolean): boolean {
  if (Token.isUnresolved(imageName) || /@sha256:[a-f0-9]{64}$/.test(imageName)) {
    return true;
  }
  if (!allowUnpinned) {
    throwInvalid(scope, field, imageName, 'an image pinned by digest (`<repository>@sha256:<64 hex digits>`), an image asset built from a directory, or an ECR repository image; set allowUnpinnedImage: true to accept a tag (synth warns)');
  }
  return false;
}

/** The placements lambda-mesh runs the workloads of; EXTERNAL services are run by their owners. */
export const RUN_PLACEMENTS = [ServicePlacement.ECS, ServicePlacement.EC2, ServicePlacement.EKS] as const;
