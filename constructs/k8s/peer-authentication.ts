import { Annotations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { describeValue, throwInvalid } from '../core/errors';
import { PeerAuthentication, PeerAuthenticationSpecMtlsMode, type PeerAuthenticationSpecPortLevelMtls, type PeerAuthenticationSpecPortLevelMtlsMode } from './imports/istio-security.istio.io';
import { checkDns1123Label, checkInteger, checkStringMap, resolveNamespace } from './private/validation';

/**
 * The mutual TLS mode of a workload or port.
 *
 * @see https://istio.io/latest/docs/reference/config/security/peer_authentication/#PeerAuthentication-MutualTLS-Mode
 */
export enum MtlsMode {
  /** Only mutual TLS connections are accepted (the namespace default). */
  STRICT = 'STRICT',
  /** Plaintext and mutual TLS are both accepted: for migrations and callers outside the mesh. */
  PERMISSIVE = 'PERMISSIVE',
  /** Mutual TLS is off: plaintext only. */
  DISABLE = 'DISABLE',
}

/**
 * Defines the mTLS mode of one port of the selected workloads.
 */
export interface PortMtls {
  /** The container port (1-65535). */
  readonly port: number;
  /** The mode for that port. */
  readonly mode: MtlsMode;
}

/**
 * Defines an exception to namespace-wide STRICT mTLS for the workloads a label selector picks.
 */
export interface MtlsException {
  /** The PeerAuthentication's name (a DNS-1123 label, unique in the namespace). */
  readonly name: string;
  /** The pod labels that select the workloads (required and non-empty: without one, the exception would be namespace-wide). */
  readonly selector: { [key: string]: string };
  /**
   * The mode of the whole workload.
   * @default - the namespace's STRICT, with only `ports` changed
   */
  readonly mode?: MtlsMode;
  /**
   * Per-port modes (Istio's `portLevelMtls`, which needs a selector).
   * @default - none
   */
  readonly ports?: PortMtls[];
  /** Why the exception is needed: carried into the warning and the object's annotation. */
  readonly reason: string;
}

/**
 * Properties of a {@link MeshPeerAuthentication}.
 */
export interface MeshPeerAuthenticationProps {
  /**
   * The namespace the policy applies to.
   * @default - the chart's namespace
   */
  readonly namespace?: string;
  /**
   * The name of the namespace-wide PeerAuthentication.
   * @default 'default'
   */
  readonly name?: string;
  /**
   * Exceptions to STRICT for selected workloads; each is a warning. Add more with `addException`.
   * @default - none
   */
  readonly exceptions?: MtlsException[];
}

const REASON_ANNOTATION = 'lambda-mesh.io/mtls-exception-reason';

/**
 * Defines mutual TLS for a namespace: a namespace-wide STRICT PeerAuthentication, plus per-workload exceptions that
 * each need a selector and a reason and each raise a warning (`lambda-mesh:k8s-mtls-exception`, construct metadata
 * that the CDK app applying the chart reports).
 *
 * Istio's CRD takes a namespace-wide `portLevelMtls`, which its CEL rule then rejects; here ports belong to
 * exceptions, which always have a selector, so that mistake cannot be written.
 *
 * @see https://istio.io/latest/docs/reference/config/security/peer_authentication/
 */
export class MeshPeerAuthentication extends Construct {
  /** The namespace the policy applies to. */
  public readonly namespace: string;

  private readonly names = new Set<string>();

  constructor(scope: Construct, id: string, props: MeshPeerAuthenticationProps = {}) {
    super(scope, id);
    this.namespace = resolveNamespace(this, props.namespace);
    const name = props.name ?? 'default';
    checkDns1123Label(this, 'name', name);
    // Istio applies the oldest of several namespace-wide policies and ignores the rest: allow one per namespace.
    const other = this.node.root.node.findAll().find((c) => c !== this && c instanceof MeshPeerAuthentication && c.namespace === this.namespace);
    if (other) {
      throwInvalid(this, 'namespace', this.namespace, `a namespace without another namespace-wide PeerAuthentication (${other.node.path} is one); add exceptions to it instead`);
    }
    this.names.add(name);
    new PeerAuthentication(this, 'Resource', {
      metadata: { name, namespace: this.namespace },
      spec: { mtls: { mode: PeerAuthenticationSpecMtlsMode.STRICT } },
    });
    (props.exceptions ?? []).forEach((e, i) => this.add(`exceptions[${i}]`, e));
  }

  /** Adds an exception to STRICT for the selected workloads; it raises a warning with its reason. */
  public addException(exception: MtlsException): void {
    this.add(`addException(${describeValue(exception?.name)})`, exception);
  }

  private add(field: string, e: MtlsException): void {
    checkDns1123Label(this, `${field}.name`, e.name);
    if (this.names.has(e.name)) {
      throwInvalid(this, `${field}.name`, e.name, `a name not already used by a PeerAuthentication of this construct (${[...this.names].join(', ')})`);
    }
    const selector = e.selector ?? {};
    if (e.ports !== undefined && Object.keys(selector).length === 0) {
      throwInvalid(this, `${field}.selector`, selector, 'a non-empty selector: Istio accepts portLevelMtls only with a workload selector (CEL rule "portLevelMtls requires selector")');
    }
    if (Object.keys(selector).length === 0) {
      throwInvalid(this, `${field}.selector`, selector, 'a non-empty selector: an exception without one would replace the namespace-wide STRICT policy');
    }
    checkStringMap(this, `${field}.selector`, selector, true);
    if (typeof e.reason !== 'string' || e.reason.trim() === '') {
      throwInvalid(this, `${field}.reason`, e.reason, 'the reason the workloads need weaker mTLS than STRICT (it is shown in the warning and annotated on the object)');
    }
    const modes = Object.values(MtlsMode) as string[];
    if (e.mode !== undefined && !modes.includes(e.mode)) {
      throwInvalid(this, `${field}.mode`, e.mode, `one of ${modes.join(', ')}`);
    }
    if (e.mode === undefined && (e.ports === undefined || e.ports.length === 0)) {
      throwInvalid(this, field, e, 'a mode or at least one port: an exception that changes nothing is a mistake');
    }
    const portLevelMtls: Record<string, PeerAuthenticationSpecPortLevelMtls> = {};
    (e.ports ?? []).forEach((p, i) => {
      checkInteger(this, `${field}.ports[${i}].port`, p.port, 1, 65535);
      if (!modes.includes(p.mode)) {
        throwInvalid(this, `${field}.ports[${i}].mode`, p.mode, `one of ${modes.join(', ')}`);
      }
      if (portLevelMtls[String(p.port)] !== undefined) {
        throwInvalid(this, `${field}.ports[${i}].port`, p.port, 'each port once');
      }
      portLevelMtls[String(p.port)] = { mode: p.mode as string as PeerAuthenticationSpecPortLevelMtlsMode };
    });
    const weaker = [
      ...(e.mode !== undefined && e.mode !== MtlsMode.STRICT ? [`mode ${e.mode}`] : []),
      ...(e.ports ?? []).filter((p) => p.mode !== MtlsMode.STRICT).map((p) => `port ${p.port} ${p.mode}`),
    ];
    if (weaker.length === 0) {
      throwInvalid(this, field, e, 'an exception that weakens something (PERMISSIVE or DISABLE for the workload or a port): STRICT is already the namespace default');
    }

    this.names.add(e.name);
    new PeerAuthentication(this, `Exception${this.names.size - 1}`, {
      metadata: { name: e.name, namespace: this.namespace, annotations: { [REASON_ANNOTATION]: e.reason } },
      spec: {
        selector: { matchLabels: { ...selector } },
        ...(e.mode !== undefined ? { mtls: { mode: e.mode as string as PeerAuthenticationSpecMtlsMode } } : {}),
        ...(e.ports !== undefined && e.ports.length > 0 ? { portLevelMtls } : {}),
      },
    });
    const labels = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
    // cdk8s has no annotations of its own; the CDK's are node metadata, which the app applying the charts reports.
    Annotations.of(this).addWarningV2(
      'lambda-mesh:k8s-mtls-exception',
      `PeerAuthentication ${this.namespace}/${e.name} weakens mTLS below STRICT for workloads ${labels} (${weaker.join(', ')}); reason: ${e.reason.trim()}`,
    );
  }
}
