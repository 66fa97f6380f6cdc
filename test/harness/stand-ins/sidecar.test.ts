import * as crypto from 'crypto';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as tls from 'tls';
import { createServerCertificate } from '../../../constructs/consul/private/secrets-handler/x509';
import { freePort, MeshCa, type MeshIdentity } from '../../constructs/function/extension-fixture';
import type { IntentionsEntry } from '../intentions-semantics';
import { MeshSidecarStandIn, normalizePath, RBAC_ACCESS_DENIED, UPSTREAM_CONNECT_ERROR } from './sidecar';
import { until } from './until';

/** A client's TLS material: a mesh leaf, or any certificate and key. */
interface ClientIdentity {
  readonly certPem: string;
  readonly privateKeyPem: string;
}

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** What the application behind the sidecar received. */
interface UpstreamRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

const featureStoreEntry = (caller: string): IntentionsEntry => ({
  Kind: 'service-intentions',
  Name: 'api',
  Sources: [
    {
      Name: caller,
      Permissions: [
        { Action: 'deny', HTTP: { PathPrefix: '/features/admin' } },
        { Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET', 'POST'] } },
      ],
    },
  ],
});

describe('MeshSidecarStandIn', () => {
  let ca: MeshCa;
  let api: MeshIdentity;
  let web: MeshIdentity;
  let billing: MeshIdentity;
  let upstream: http.Server;
  let upstreamPort: number;
  let received: UpstreamRequest[];
  const sidecars: MeshSidecarStandIn[] = [];

  beforeAll(async () => {
    ca = await MeshCa.start({ datacenter: 'dc1', namespace: 'default' });
    [api, web, billing] = [await ca.issue('api'), await ca.issue('web'), await ca.issue('billing')];
  });

  afterAll(async () => {
    await ca.close();
  });

  beforeEach(async () => {
    received = [];
    upstream = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-app': 'feature-store', server: 'app/1.0' });
        res.end(body.length > 0 ? body : Buffer.from(`hello ${req.method} ${req.url}`));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamPort = (upstream.address() as net.AddressInfo).port;
  });

  afterEach(async () => {
    await Promise.all(sidecars.splice(0).map((s) => s.close()));
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const start = async (options: Partial<Parameters<typeof MeshSidecarStandIn.start>[0]> = {}): Promise<MeshSidecarStandIn> => {
    const sidecar = await MeshSidecarStandIn.start({
      certPem: api.certPem,
      privateKeyPem: api.privateKeyPem,
      rootsPem: api.rootCertPem,
      trustDomain: ca.trustDomain,
      protocol: 'http',
      entry: featureStoreEntry('web'),
      upstreamPort,
      ...options,
    });
    sidecars.push(sidecar);
    return sidecar;
  };

  /** Verifies the sidecar as a mesh client does: chain to the roots, and the destination's SPIFFE ID, not a host name. */
  const checkServer = (_host: string, cert: tls.PeerCertificate): Error | undefined =>
    cert.subjectaltname === `URI:${ca.spiffeId('api')}` ? undefined : new Error(`unexpected server identity ${cert.subjectaltname}`);

  /** One HTTPS request to the sidecar as `client`, on a new connection. */
  const call = (sidecar: MeshSidecarStandIn, client: ClientIdentity | undefined, options: { method?: string; path: string; headers?: http.OutgoingHttpHeaders; body?: Buffer }): Promise<Reply> =>
    new Promise<Reply>((resolve, reject) => {
      const req = https.request(
        {
          host: '127.0.0.1',
          port: sidecar.port,
          method: options.method ?? 'GET',
          path: options.path,
          headers: options.headers,
          agent: false,
          ca: api.rootCertPem,
          checkServerIdentity: checkServer,
          ...(client ? { cert: client.certPem, key: client.privateKeyPem } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(options.body);
    });

  describe('http', () => {
    test('an allowed GET reaches the application and its answer comes back', async () => {
      const sidecar = await start();
      const reply = await call(sidecar, web, { path: '/features/42?fields=all', headers: { 'x-tenant': 'b', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1' } });
      expect(reply.status).toBe(200);
      expect(reply.body.toString()).toBe('hello GET /features/42?fields=all');
      expect(reply.headers['x-app']).toBe('feature-store');
      expect(reply.headers.server).toBe('envoy');
      expect(received).toHaveLength(1);
      expect(received[0]).toMatchObject({ method: 'GET', url: '/features/42?fields=all', headers: { 'x-tenant': 'b' } });
      expect(received[0].headers['x-drop-me']).toBeUndefined();
      expect(sidecar.decisions).toEqual([
        {
          caller: ca.spiffeId('web'),
          identity: { trustDomain: ca.trustDomain, partition: 'default', namespace: 'default', datacenter: 'dc1', service: 'web' },
          method: 'GET',
          path: '/features/42?fields=all',
          allowed: true,
          reason: 'source "web" (Sources[0]): Permissions[1] matched: allow',
        },
      ]);
    });

    test('request and response bodies are streamed through unchanged', async () => {
      const sidecar = await start();
      const body = crypto.randomBytes(3 * 1024 * 1024);
      const reply = await call(sidecar, web, { method: 'POST', path: '/features/batch', body, headers: { 'content-type': 'application/octet-stream' } });
      expect(reply.status).toBe(200);
      expect(crypto.createHash('sha256').update(reply.body).digest('hex')).toBe(crypto.createHash('sha256').update(body).digest('hex'));
      expect(received[0].body.equals(body)).toBe(true);
    });

    test('a denied method or path gets 403 "RBAC: access denied" and never reaches the application', async () => {
      const sidecar = await start();
      for (const [method, path] of [['DELETE', '/features/42'], ['GET', '/features/admin/users'], ['GET', '/metrics']]) {
        const reply = await call(sidecar, web, { method, path });
        expect(reply.status).toBe(403);
        expect(reply.body.toString()).toBe(RBAC_ACCESS_DENIED);
        expect(reply.headers['content-type']).toBe('text/plain');
      }
      expect(received).toHaveLength(0);
      expect(sidecar.decisions.map((d) => [d.method, d.path, d.allowed, d.reason])).toEqual([
        ['DELETE', '/features/42', false, 'source "web" (Sources[0]): no permission matched DELETE /features/42: default deny'],
        ['GET', '/features/admin/users', false, 'source "web" (Sources[0]): Permissions[0] matched: deny'],
        ['GET', '/metrics', false, 'source "web" (Sources[0]): no permission matched GET /metrics: default deny'],
      ]);
    });

    test('dot segments are removed before deciding, so they cannot walk around a deny', async () => {
      const sidecar = await start();
      expect((await call(sidecar, web, { path: '/features/public/../admin/users' })).status).toBe(403);
      expect((await call(sidecar, web, { path: '/features/public/%2E%2E/admin' })).status).toBe(403);
      expect((await call(sidecar, web, { path: '/features/admin/../42' })).status).toBe(200);
      expect(received.map((r) => r.url)).toEqual(['/features/42']);
      expect(sidecar.decisions.map((d) => d.path)).toEqual(['/features/admin/users', '/features/admin', '/features/42']);
    });

    test('a valid mesh certificate that no source matches gets 403', async () => {
      const sidecar = await start();
      const reply = await call(sidecar, billing, { path: '/features/42' });
      expect(reply.status).toBe(403);
      expect(reply.body.toString()).toBe(RBAC_ACCESS_DENIED);
      expect(received).toHaveLength(0);
      expect(sidecar.decisions).toMatchObject([{ caller: ca.spiffeId('billing'), allowed: false, reason: 'no matching source for default/default/billing (' + ca.trustDomain + '): default deny' }]);
    });

    test('a client certificate from another CA is refused at the handshake', async () => {
      const sidecar = await start();
      const other = await MeshCa.start({ datacenter: 'dc1', namespace: 'default' });
      try {
        const stranger = await other.issue('web');
        await expect(call(sidecar, stranger, { path: '/features/42' })).rejects.toThrow();
        await until(sidecar, () => sidecar.handshakeFailures[0], 'a refused handshake');
        await expect(call(sidecar, undefined, { path: '/features/42' })).rejects.toThrow();
        await until(sidecar, () => sidecar.handshakeFailures[1], 'a second refused handshake');
      } finally {
        await other.close();
      }
      expect(sidecar.decisions).toHaveLength(0);
      expect(received).toHaveLength(0);
    });

    test('a certificate that chains but names another trust domain, or no service, matches no source: 403', async () => {
      // As Consul's RBAC principals (spiffe://<local trust domain>/ns/.../svc/...) do for a trusted peer's roots.
      const peer = await MeshCa.start({ datacenter: 'dc2', namespace: 'default' });
      try {
        const peerWeb = await peer.issue('web');
        const sidecar = await start({ rootsPem: api.rootCertPem + peerWeb.rootCertPem });
        expect((await call(sidecar, peerWeb, { path: '/features/42' })).status).toBe(403);
        const noSpiffe = createServerCertificate({ ca: ca.consul.activeRoot().ca, commonName: 'web', dnsNames: ['web.example'], ipAddresses: [], validityDays: 1 });
        const reply = await call(sidecar, { certPem: noSpiffe.certificatePem, privateKeyPem: noSpiffe.privateKeyPem }, { path: '/features/42' });
        expect(reply.status).toBe(403);
        expect(reply.body.toString()).toBe(RBAC_ACCESS_DENIED);
        expect(sidecar.decisions).toMatchObject([
          { caller: peer.spiffeId('web'), allowed: false, reason: `no matching source for default/default/web (${peer.trustDomain}): default deny` },
          { caller: undefined, identity: undefined, allowed: false, reason: 'the client certificate has no URI SAN: no source can match: default deny' },
        ]);
        expect(received).toHaveLength(0);
      } finally {
        await peer.close();
      }
    });

    test('setEntry changes the decision for the next request', async () => {
      const sidecar = await start();
      expect((await call(sidecar, billing, { path: '/features/42' })).status).toBe(403);
      sidecar.setEntry({ Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'billing', Action: 'allow' }] });
      expect((await call(sidecar, billing, { path: '/features/42' })).status).toBe(200);
      expect((await call(sidecar, web, { path: '/features/42' })).status).toBe(403);
      expect(() => sidecar.setEntry({ Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web' }] })).toThrow("Sources[0].Action must be set to 'allow' or 'deny'");
      expect(() => sidecar.setEntry({ Kind: 'service-intentions', Name: 'db', Sources: [{ Name: 'web', Action: 'allow' }] })).toThrow('the entry is for default/db');
      expect((await call(sidecar, billing, { path: '/x' })).status).toBe(200);
      expect(sidecar.decisions.map((d) => `${d.identity?.service} ${d.allowed}`)).toEqual(['billing false', 'billing true', 'web false', 'billing true']);
    });

    test('an unreachable application gets Envoy\'s 503', async () => {
      const sidecar = await start({ upstreamPort: await freePort() });
      const reply = await call(sidecar, web, { path: '/features/42' });
      expect(reply.status).toBe(503);
      expect(reply.headers['content-type']).toBe('text/plain');
      expect(reply.body.toString()).toBe(`${UPSTREAM_CONNECT_ERROR}. reset reason: connection failure`);
      expect(sidecar.decisions).toMatchObject([{ allowed: true }]);
    });

    test('waits on decisions with until()', async () => {
      const sidecar = await start();
      const pending = until(sidecar, () => sidecar.decisions.find((d) => d.path === '/features/7'), 'the decision for /features/7');
      await call(sidecar, web, { path: '/features/7' });
      await expect(pending).resolves.toMatchObject({ allowed: true });
    });
  });

  describe('tcp', () => {
    let tcpUpstream: net.Server;
    let tcpPort: number;
    let tcpConnections: number;

    beforeEach(async () => {
      tcpConnections = 0;
      tcpUpstream = net.createServer((socket) => {
        tcpConnections++;
        socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()));
        socket.on('error', () => socket.destroy());
      });
      await new Promise<void>((resolve) => tcpUpstream.listen(0, '127.0.0.1', resolve));
      tcpPort = (tcpUpstream.address() as net.AddressInfo).port;
    });

    afterEach(async () => {
      await new Promise<void>((resolve) => tcpUpstream.close(() => resolve()));
    });

    const logsEntry: IntentionsEntry = { Kind: 'service-intentions', Name: 'api', Sources: [{ Name: 'web', Action: 'allow' }, { Name: 'billing', Action: 'deny' }] };

    /** Connects as `client`, writes `send`, and collects what comes back until the sidecar closes or `quietMs` pass. */
    const exchange = (sidecar: MeshSidecarStandIn, client: ClientIdentity, send: string): Promise<{ handshake: boolean; data: string; closedByPeer: boolean }> =>
      new Promise((resolve) => {
        let handshake = false;
        let data = '';
        const socket = tls.connect({ host: '127.0.0.1', port: sidecar.port, ca: api.rootCertPem, cert: client.certPem, key: client.privateKeyPem, checkServerIdentity: checkServer }, () => {
          handshake = true;
          socket.write(send);
        });
        const quiet = setTimeout(() => {
          socket.destroy();
          resolve({ handshake, data, closedByPeer: false });
        }, 1000);
        socket.on('data', (d: Buffer) => {
          data += d.toString();
          if (data.length >= send.length) {
            clearTimeout(quiet);
            socket.destroy();
            resolve({ handshake, data, closedByPeer: false });
          }
        });
        socket.on('error', () => undefined);
        socket.on('close', () => {
          clearTimeout(quiet);
          resolve({ handshake, data, closedByPeer: true });
        });
      });

    test('an allowed connection is piped to the application', async () => {
      const sidecar = await start({ protocol: 'tcp', entry: logsEntry, upstreamPort: tcpPort });
      await expect(exchange(sidecar, web, 'ship these logs')).resolves.toEqual({ handshake: true, data: 'SHIP THESE LOGS', closedByPeer: false });
      expect(tcpConnections).toBe(1);
      expect(sidecar.decisions).toEqual([
        { caller: ca.spiffeId('web'), identity: expect.objectContaining({ service: 'web' }), allowed: true, reason: 'source "web" (Sources[0]): L4 allow' },
      ]);
    });

    test('a denied connection is closed after the handshake, and the application never sees it', async () => {
      const sidecar = await start({ protocol: 'tcp', entry: logsEntry, upstreamPort: tcpPort });
      await expect(exchange(sidecar, billing, 'ship these logs')).resolves.toEqual({ handshake: true, data: '', closedByPeer: true });
      const stranger = await ca.issue('stranger');
      await expect(exchange(sidecar, stranger, 'hello')).resolves.toMatchObject({ data: '', closedByPeer: true });
      expect(tcpConnections).toBe(0);
      expect(sidecar.decisions.map((d) => [d.identity?.service, d.allowed, d.reason])).toEqual([
        ['billing', false, 'source "billing" (Sources[1]): L4 deny'],
        ['stranger', false, `no matching source for default/default/stranger (${ca.trustDomain}): default deny`],
      ]);
      sidecar.setEntry({ Kind: 'service-intentions', Name: 'api', Sources: [{ Name: '*', Action: 'allow' }] });
      await expect(exchange(sidecar, billing, 'now')).resolves.toMatchObject({ data: 'NOW' });
    });

    test('fails when an L7 entry is given for a TCP destination', async () => {
      await expect(start({ protocol: 'tcp', entry: featureStoreEntry('web'), upstreamPort: tcpPort })).rejects.toThrow('Sources[0] of "api" has L7 Permissions, but this destination\'s protocol is tcp');
      const sidecar = await start({ protocol: 'tcp', entry: logsEntry, upstreamPort: tcpPort });
      expect(() => sidecar.setEntry(featureStoreEntry('web'))).toThrow('has L7 Permissions');
      expect(sidecar.entry).toBe(logsEntry);
    });
  });

  test('fails when the entry is for another destination, or the trust domain is not the certificate\'s', async () => {
    await expect(start({ entry: { Kind: 'service-intentions', Name: 'db', Sources: [{ Name: 'web', Action: 'allow' }] } })).rejects.toThrow(
      "MeshSidecarStandIn: the entry is for default/db, this sidecar is default/api's",
    );
    await expect(start({ trustDomain: 'other.consul' })).rejects.toThrow('is not the one of certPem\'s SPIFFE ID');
  });
});

describe('normalizePath', () => {
  test.each([
    ['/a/b/../c', '/a/c'],
    ['/a/./b', '/a/b'],
    ['/a/..', '/'],
    ['/a/.', '/a/'],
    ['/../x', '/x'],
    ['/a/%2e%2E/b?q=/../', '/b?q=/../'],
    ['/', '/'],
    ['/a//b', '/a//b'],
    ['*', '*'],
  ])('%s -> %s', (input, output) => {
    expect(normalizePath(input)).toBe(output);
  });
});
