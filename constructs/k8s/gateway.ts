import { Annotations } from 'aws-cdk-lib';
import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { LambdaMeshError, describeValue, throwInvalid } from '../core/errors';
import {
  Gateway,
  type GatewaySpecServers,
  GatewaySpecServersTlsMinProtocolVersion,
  GatewaySpecServersTlsMode,
} from './imports/istio-networking.istio.io';
import {
  checkDns1123Label,
  checkDns1123Subdomain,
  checkInteger,
  checkStringMap,
  isDns1123Label,
  isWildcardDomain,
  kebabCase,
  resolveNamespace,
} from './private/validation';

/**
 * Defines how an HTTPS server of a gateway terminates TLS.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/#ServerTLSSettings-TLSmode
 */
export enum IstioGatewayTlsMode {
  /** Server certificate only. */
  SIMPLE = 'SIMPLE',
  /** Clients present certificates too, checked against the CA in the credential (`ca.crt` or `<name>-cacert`). */
  MUTUAL = 'MUTUAL',
}

/**
 * Defines the lowest TLS version an HTTPS server accepts.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/
 */
export enum IstioTlsVersion {
  /** TLS 1.2. */
  TLS_V1_2 = 'TLSV1_2',
  /** TLS 1.3. */
  TLS_V1_3 = 'TLSV1_3',
}

/**
 * Defines an HTTPS server of a gateway.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/#Server
 */
export interface IstioHttpsServerOptions {
  /**
   * Hosts served, `[namespace/]host` with an optional wildcard first label (`*.example.com`).
   */
  readonly hosts: string[];
  /**
   * The Secret (in the gateway workload's namespace) holding the certificate, key and, for MUTUAL, `ca.crt`.
   */
  readonly credentialName: string;
  /**
   * The port.
   * @default 443
   */
  readonly port?: number;
  /**
   * The server's port name, unique in the gateway.
   * @default - `https-<port>`
   */
  readonly portName?: string;
  /**
   * TLS mode.
   * @default IstioGatewayTlsMode.SIMPLE
   */
  readonly mode?: IstioGatewayTlsMode;
  /**
   * Lowest TLS version accepted.
   * @default IstioTlsVersion.TLS_V1_2
   */
  readonly minProtocolVersion?: IstioTlsVersion;
}

/**
 * Defines a plain-HTTP server of a gateway.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/#Server
 */
export interface IstioHttpServerOptions {
  /**
   * Hosts served, `[namespace/]host` with an optional wildcard first label.
   */
  readonly hosts: string[];
  /**
   * The port.
   * @default 80
   */
  readonly port?: number;
  /**
   * The server's port name, unique in the gateway.
   * @default - `http-<port>`
   */
  readonly portName?: string;
  /**
   * Answers every request with a redirect to HTTPS. Serving plain HTTP is a warned opt-in.
   * @default true
   */
  readonly httpsRedirect?: boolean;
}

/**
 * Defines what other constructs may rely on about an Istio Gateway.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/
 */
export interface IIstioGateway {
  /** The Gateway's name. */
  readonly gatewayName: string;
  /** Its namespace. */
  readonly namespace: string;
  /** The reference a VirtualService uses: `<namespace>/<name>`. */
  readonly gatewayReference: string;
  /**
   * The host patterns the gateway serves, without namespace prefixes; empty when unknown (an imported gateway).
   */
  readonly servedHosts: string[];
}

/**
 * Defines the attributes of a Gateway defined elsewhere (such as Knative's `knative-serving/knative-ingress-gateway`).
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/
 */
export interface IstioGatewayAttributes {
  /** The Gateway's name. */
  readonly gatewayName: string;
  /** Its namespace. */
  readonly namespace: string;
}

/**
 * Defines the props of an {@link IstioGateway}.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/
 */
export interface IstioGatewayProps {
  /**
   * The Gateway's name, a DNS-1123 label.
   * @default - the construct ID in kebab case
   */
  readonly gatewayName?: string;
  /**
   * The namespace.
   * @default - the chart's namespace (one of the two is required)
   */
  readonly namespace?: string;
  /**
   * Labels of the gateway workload (the Envoy deployment) that serves this configuration.
   * @default - { istio: 'ingressgateway' }, the label of Istio's ingress gateway chart
   */
  readonly selector?: Record<string, string>;
  /**
   * HTTPS servers; more with {@link IstioGateway.addHttpsServer}.
   * @default - none
   */
  readonly https?: IstioHttpsServerOptions[];
  /**
   * Plain-HTTP servers (redirecting to HTTPS by default); more with {@link IstioGateway.addHttpServer}.
   * @default - none
   */
  readonly http?: IstioHttpServerOptions[];
}

/**
 * Defines an Istio Gateway (networking.istio.io/v1): the mesh's entry point, HTTPS with a credential from a
 * Secret, and plain HTTP only as a redirect unless opted in.
 *
 * @see https://istio.io/latest/docs/reference/config/networking/gateway/
 */
export class IstioGateway extends Construct implements IIstioGateway {
  /**
   * Imports a Gateway defined elsewhere.
   */
  public static fromGatewayAttributes(scope: Construct, id: string, attrs: IstioGatewayAttributes): IIstioGateway {
    class Import extends Construct implements IIstioGateway {
      public readonly gatewayName = attrs.gatewayName;
      public readonly namespace = attrs.namespace;
      public readonly gatewayReference = `${attrs.namespace}/${attrs.gatewayName}`;
      public readonly servedHosts: string[] = [];
    }
    const imported = new Import(scope, id);
    checkDns1123Label(imported, 'gatewayName', attrs.gatewayName);
    checkDns1123Label(imported, 'namespace', attrs.namespace);
    return imported;
  }

  public readonly gatewayName: string;
  public readonly namespace: string;
  public readonly gatewayReference: string;

  private readonly servers: GatewaySpecServers[] = [];
  private readonly resource: Gateway;

  constructor(scope: Construct, id: string, props: IstioGatewayProps = {}) {
    super(scope, id);
    this.gatewayName = props.gatewayName ?? kebabCase(id);
    checkDns1123Label(this, 'gatewayName', this.gatewayName);
    this.namespace = resolveNamespace(this, props.namespace);
    this.gatewayReference = `${this.namespace}/${this.gatewayName}`;
    const selector = props.selector ?? { istio: 'ingressgateway' };
    if (Object.keys(selector).length === 0) {
      throwInvalid(this, 'selector', selector, 'at least one label (an empty selector applies the servers to every gateway workload)');
    }
    checkStringMap(this, 'selector', selector, true);
    for (const server of props.https ?? []) {
      this.addHttpsServer(server);
    }
    for (const server of props.http ?? []) {
      this.addHttpServer(server);
    }
    this.resource = new Gateway(this, 'Resource', {
      metadata: { name: this.gatewayName, namespace: this.namespace },
      spec: {
        selector: { ...selector },
        servers: Lazy.any({ produce: () => this.servers.map((s) => ({ ...s, hosts: [...s.hosts] })) }) as GatewaySpecServers[],
      },
    });
    this.node.defaultChild = this.resource;
    this.node.addValidation({
      validate: () => (this.servers.length > 0
        ? []
        : [new LambdaMeshError({ location: this.node.path, field: 'servers', given: '[]', expected: 'at least one server (addHttpsServer or addHttpServer)' }).message]),
    });
  }

  /** The host patterns the gateway serves, without namespace prefixes. */
  public get servedHosts(): string[] {
    return this.servers.flatMap((s) => s.hosts.map((h) => (h.includes('/') ? h.slice(h.indexOf('/') + 1) : h)));
  }

  /**
   * Adds an HTTPS server terminating TLS with the certificate in `credentialName`.
   */
  public addHttpsServer(options: IstioHttpsServerOptions): void {
    const port = options.port ?? 443;
    const name = options.portName ?? `https-${port}`;
    const field = `https[${name}]`;
    checkDns1123Subdomain(this, `${field}.credentialName`, options.credentialName);
    this.pushServer(field, name, port, 'HTTPS', options.hosts, {
      mode: options.mode === IstioGatewayTlsMode.MUTUAL ? GatewaySpecServersTlsMode.MUTUAL : GatewaySpecServersTlsMode.SIMPLE,
      // credentialName alone: the CRD's CEL rules forbid it next to credentialNames or tlsCertificates.
      credentialName: options.credentialName,
      minProtocolVersion: options.minProtocolVersion === IstioTlsVersion.TLS_V1_3
        ? GatewaySpecServersTlsMinProtocolVersion.TLSV1_UNDERSCORE_3
        : GatewaySpecServersTlsMinProtocolVersion.TLSV1_UNDERSCORE_2,
    });
  }

  /**
   * Adds a plain-HTTP server, by default one that redirects every request to HTTPS.
   */
  public addHttpServer(options: IstioHttpServerOptions): void {
    const port = options.port ?? 80;
    const name = options.portName ?? `http-${port}`;
    const redirect = options.httpsRedirect ?? true;
    if (!redirect) {
      Annotations.of(this).addWarningV2('lambda-mesh:istio:plainHttpGateway', `server ${name} serves plain HTTP: requests and responses cross the network unencrypted.`);
    }
    this.pushServer(`http[${name}]`, name, port, 'HTTP', options.hosts, redirect ? { httpsRedirect: true } : undefined);
  }

  private pushServer(field: string, name: string, port: number, protocol: string, hosts: readonly string[], tls: GatewaySpecServers['tls']): void {
    checkInteger(this, `${field}.port`, port, 1, 65535);
    if (!isDns1123Label(name)) {
      throwInvalid(this, `${field}.portName`, name, 'a DNS-1123 label');
    }
    if (this.servers.some((s) => s.port.name === name)) {
      throwInvalid(this, `${field}.portName`, name, 'a port name unique in the gateway (Istio rejects duplicates)');
    }
    const samePort = this.servers.find((s) => s.port.number === port);
    if (samePort && samePort.port.protocol !== protocol) {
      throwInvalid(this, `${field}.port`, port, `a port not already serving ${samePort.port.protocol} (one protocol per port)`);
    }
    if (hosts.length === 0) {
      throwInvalid(this, `${field}.hosts`, hosts, 'at least one host');
    }
    for (const host of hosts) {
      checkGatewayHost(this, `${field}.hosts`, host);
    }
    this.servers.push({ port: { number: port, name, protocol }, hosts: [...hosts], tls });
  }
}

function checkGatewayHost(scope: Construct, field: string, host: string): void {
  const slash = host.indexOf('/');
  const namespace = slash === -1 ? undefined : host.slice(0, slash);
  const dnsName = slash === -1 ? host : host.slice(slash + 1);
  const namespaceOk = namespace === undefined || namespace === '*' || namespace === '.' || namespace === '~' || isDns1123Label(namespace);
  if (!namespaceOk || !isWildcardDomain(dnsName)) {
    throwInvalid(scope, field, host, `"[namespace/]host": a namespace (or *, ., ~) and a host name with an optional wildcard first label, such as "*.example.com"; given ${describeValue(host)}`);
  }
}
