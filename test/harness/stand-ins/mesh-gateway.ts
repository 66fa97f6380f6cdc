/**
 * Local stand-ins of the two hops behind a mesh function's proxy, over real TLS:
 *
 * - {@link MeshGatewayStandIn}, a Consul mesh gateway: it does not terminate TLS. It reads the server name (SNI) from
 *   the client's TLS ClientHello, looks it up in its routes (`<service>.<namespace>.<datacenter>.internal.<trust
 *   domain>` -> address), and passes the connection, bytes unchanged, to that address; an unknown or missing name
 *   closes the connection, as the gateway's SNI filter chain match does.
 * - {@link MeshServiceStandIn}, an upstream service's sidecar and the service itself: an HTTPS server presenting the
 *   service's certificate (with its SPIFFE URI SAN), requiring a client certificate that chains to the mesh CA, and
 *   answering each request with its body echoed and the client certificate's serial and URI SAN in headers.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/gateways/mesh-gateway
 * @see https://www.rfc-editor.org/rfc/rfc8446#section-4.1.2 (ClientHello)
 * @see https://www.rfc-editor.org/rfc/rfc6066#section-3 (server_name extension)
 */
import * as crypto from 'crypto';
import { EventEmitter } from 'events';
import * as https from 'https';
import * as net from 'net';
import type * as tls from 'tls';

/** A connection the gateway received: the SNI it read, and whether a route matched. */
export interface GatewayConnection {
  readonly sni: string | undefined;
  readonly routed: boolean;
}

const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const SERVER_NAME_EXTENSION = 0x0000;
const HOST_NAME = 0x00;

/**
 * The host_name of the server_name extension of a ClientHello that starts `record`, `undefined` when the hello has
 * none, or `null` when more bytes are needed. Throws on bytes that are not a TLS handshake.
 */
export function readSni(record: Buffer): string | undefined | null {
  if (record.length < 5) {
    return null;
  }
  if (record[0] !== TLS_HANDSHAKE) {
    throw new Error('not a TLS handshake record');
  }
  const end = 5 + record.readUInt16BE(3);
  if (record.length < end) {
    return null;
  }
  let p = 5;
  if (record[p] !== CLIENT_HELLO) {
    throw new Error('the first handshake message is not a ClientHello');
  }
  p += 4; // type, uint24 length
  p += 2 + 32; // legacy_version, random
  p += 1 + record[p]; // legacy_session_id
  p += 2 + record.readUInt16BE(p); // cipher_suites
  p += 1 + record[p]; // legacy_compression_methods
  if (p + 2 > end) {
    return undefined;
  }
  const extensionsEnd = p + 2 + record.readUInt16BE(p);
  p += 2;
  while (p + 4 <= Math.min(extensionsEnd, end)) {
    const type = record.readUInt16BE(p);
    const length = record.readUInt16BE(p + 2);
    p += 4;
    if (type === SERVER_NAME_EXTENSION) {
      // ServerNameList: uint16 length, then entries of (uint8 type, uint16 length, name).
      let q = p + 2;
      while (q + 3 <= p + length) {
        const nameLength = record.readUInt16BE(q + 1);
        if (record[q] === HOST_NAME) {
          return record.subarray(q + 3, q + 3 + nameLength).toString('ascii');
        }
        q += 3 + nameLength;
      }
      return undefined;
    }
    p += length;
  }
  return undefined;
}

/** An SNI-routing TCP gateway on 127.0.0.1. */
export class MeshGatewayStandIn extends EventEmitter {
  /** Starts a gateway on a free port. */
  public static async start(): Promise<MeshGatewayStandIn> {
    const gateway = new MeshGatewayStandIn();
    await new Promise<void>((resolve) => gateway.server.listen(0, '127.0.0.1', resolve));
    return gateway;
  }

  /** Every connection received, in order. */
  public readonly connections: GatewayConnection[] = [];
  private readonly routes = new Map<string, number>();
  private readonly sockets = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => this.accept(socket));

  private constructor() {
    super();
  }

  /** `127.0.0.1:<port>`, for `LAMBDA_MESH_GATEWAY`. */
  public get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  /** Routes connections whose SNI is `sni` to `127.0.0.1:port`. */
  public route(sni: string, port: number): void {
    this.routes.set(sni, port);
  }

  /** Closes the gateway and every connection through it. */
  public async close(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private accept(client: net.Socket): void {
    this.track(client);
    client.setNoDelay(true);
    client.on('error', () => client.destroy());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      let sni: string | undefined | null;
      try {
        sni = readSni(buffered);
      } catch {
        sni = undefined;
      }
      if (sni === null) {
        return;
      }
      client.off('data', onData);
      client.pause();
      const port = sni === undefined ? undefined : this.routes.get(sni);
      this.connections.push({ sni, routed: port !== undefined });
      this.emit('change');
      if (port === undefined) {
        client.destroy();
        return;
      }
      const upstream = net.connect({ host: '127.0.0.1', port, noDelay: true });
      this.track(upstream);
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      upstream.write(buffered);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    };
    client.on('data', onData);
  }
}

/** A request the service received, with the client certificate it came with. */
export interface ServiceRequest {
  readonly method: string;
  readonly path: string;
  readonly bytes: number;
  /** The client certificate's serial, lowercase hex without leading zeros. */
  readonly clientSerial: string;
  /** The client certificate's URI SAN. */
  readonly clientUri: string | undefined;
}

/** What a service stand-in presents and trusts. */
export interface MeshServiceOptions {
  /** The service's certificate (PEM), with the SPIFFE URI SAN it claims. */
  readonly certPem: string;
  readonly privateKeyPem: string;
  /** The CA certificates client certificates must chain to (the mesh CA roots). */
  readonly clientCaPem: string;
}

/** A serial number as Go's `big.Int.Text(16)` writes it: lowercase hex, no leading zeros. */
export function normalizeSerial(serial: string): string {
  return BigInt(`0x${serial.replace(/:/g, '')}`).toString(16);
}

/** An mTLS HTTPS service on 127.0.0.1 that echoes request bodies. */
export class MeshServiceStandIn extends EventEmitter {
  /** Starts a service on a free port. */
  public static async start(options: MeshServiceOptions): Promise<MeshServiceStandIn> {
    const service = new MeshServiceStandIn(options);
    await new Promise<void>((resolve) => service.server.listen(0, '127.0.0.1', resolve));
    return service;
  }

  /** Every request served, in order. */
  public readonly requests: ServiceRequest[] = [];
  /** TLS handshakes that failed (e.g. an expired or untrusted client certificate), with the error code. */
  public readonly handshakeFailures: string[] = [];
  private readonly server: https.Server;

  private constructor(options: MeshServiceOptions) {
    super();
    this.server = https.createServer(
      {
        cert: options.certPem,
        key: options.privateKeyPem,
        ca: options.clientCaPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      },
      (req, res) => {
        const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          const clientSerial = normalizeSerial(peer.serialNumber);
          const clientUri = /URI:([^,]+)/.exec(peer.subjectaltname ?? '')?.[1];
          this.requests.push({ method: req.method ?? '', path: req.url ?? '', bytes: body.length, clientSerial, clientUri });
          this.emit('change');
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'x-client-serial': clientSerial,
            'x-client-uri': clientUri ?? '',
            'x-body-sha256': crypto.createHash('sha256').update(body).digest('hex'),
          });
          res.end(body);
        });
      },
    );
    this.server.on('tlsClientError', (e: NodeJS.ErrnoException) => {
      this.handshakeFailures.push(e.code ?? e.message);
      this.emit('change');
    });
  }

  /** The port, for a gateway route. */
  public get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Closes the server and every connection. */
  public async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
