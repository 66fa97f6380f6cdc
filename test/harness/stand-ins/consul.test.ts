import * as crypto from 'crypto';
import * as https from 'https';
import * as tls from 'tls';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import type { ConsulApi } from '../../../constructs/intentions/private/consul-api';
import { ConsulStandIn } from './consul';

const WRITER = '11111111-1111-4111-8111-111111111111';
const READER = '22222222-2222-4222-8222-222222222222';

const intentions = (name: string, sources: Array<Record<string, unknown>>, meta?: Record<string, string>): Record<string, unknown> => ({
  Kind: 'service-intentions',
  Name: name,
  Sources: sources,
  ...(meta ? { Meta: meta } : {}),
});

/** A raw HTTPS request to the stand-in, with TLS options of the test's choosing. */
function rawRequest(standIn: ConsulStandIn, options: https.RequestOptions): Promise<{ status: number; text: string }> {
  const port = Number(new URL(standIn.address).port);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/v1/agent/connect/ca/roots', method: 'GET', agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Consul HTTP API stand-in (TLS)', () => {
  let standIn: ConsulStandIn;
  let consul: ConsulApi;

  beforeEach(async () => {
    standIn = await ConsulStandIn.start({
      tokens: { [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'], [WRITER]: ['intentions:write', 'service:write:feature-', 'node:write:lambda-'], [READER]: ['intentions:read'] },
    });
    consul = consulClient(standIn.connection(), { retryDelayMs: 1 });
  });

  afterEach(async () => {
    await standIn.close();
  });

  describe('TLS', () => {
    test('serves a certificate for server.dc1.consul only, signed by its CA', async () => {
      const port = Number(new URL(standIn.address).port);
      const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, ca: standIn.caPem, servername: standIn.serverName }, () => {
          resolve(socket.getPeerCertificate());
          socket.end();
        });
        socket.on('error', reject);
      });
      expect(peer.subject.CN).toBe('server.dc1.consul');
      expect(peer.subjectaltname).toBe('DNS:server.dc1.consul');
      expect(new crypto.X509Certificate(peer.raw).verify(new crypto.X509Certificate(standIn.caPem).publicKey)).toBe(true);
    });

    test('a client that verifies the address instead of the server name is refused', async () => {
      await expect(rawRequest(standIn, { ca: standIn.caPem })).rejects.toThrow(/IP: 127\.0\.0\.1 is not in the cert's list|altnames/i);
    });

    test('a client that does not trust the CA is refused', async () => {
      const otherCa = ConsulStandIn.start();
      const other = await otherCa;
      try {
        await expect(rawRequest(standIn, { ca: other.caPem, servername: standIn.serverName })).rejects.toThrow(/unable to verify|self.signed|certificate/i);
      } finally {
        await other.close();
      }
    });

    test('the client fails at once, without retrying, on a CA it does not trust or a wrong server name', async () => {
      const other = await ConsulStandIn.start();
      try {
        const untrusting = consulClient({ ...standIn.connection(), caPem: other.caPem });
        await expect(untrusting.get('/v1/agent/connect/ca/roots')).rejects.toThrow(/^Consul GET \/v1\/agent\/connect\/ca\/roots failed: TLS verification of server\.dc1\.consul failed \(/);
        const wrongName = consulClient({ ...standIn.connection(), serverName: 'server.dc2.consul' });
        await expect(wrongName.get('/v1/agent/connect/ca/roots')).rejects.toThrow(/TLS verification of server\.dc2\.consul failed \(ERR_TLS_CERT_ALTNAME_INVALID\)/);
        expect(standIn.requests).toEqual([]);
      } finally {
        await other.close();
      }
    });

    test('with the CA and the server name, the request goes through', async () => {
      const response = await rawRequest(standIn, { ca: standIn.caPem, servername: standIn.serverName });
      expect(response.status).toBe(200);
    });
  });

  describe('config entries', () => {
    test('PUT with cas=0 creates only: a second create-only write answers false and changes nothing', async () => {
      const entry = intentions('feature-store', [{ Name: 'model-a-v1', Action: 'allow' }]);
      expect((await consul.put('/v1/config?cas=0', entry)).body).toBe(true);
      const first = standIn.configEntry('service-intentions', 'feature-store')!;
      expect((await consul.put('/v1/config?cas=0', intentions('feature-store', [{ Name: 'model-b-v1', Action: 'allow' }]))).body).toBe(false);
      expect(standIn.configEntry('service-intentions', 'feature-store')).toEqual(first);
    });

    test('PUT with cas=<ModifyIndex> writes only when the index matches; the write moves ModifyIndex', async () => {
      await consul.put('/v1/config', intentions('feature-store', [{ Name: 'model-a-v1', Action: 'allow' }]));
      const read = await consul.get('/v1/config/service-intentions/feature-store');
      const current = read.body as Record<string, number>;
      expect(read.index).toBe(String(current.ModifyIndex));
      expect((await consul.put(`/v1/config?cas=${current.ModifyIndex - 1}`, intentions('feature-store', [{ Name: 'x', Action: 'deny' }]))).body).toBe(false);
      expect((await consul.put(`/v1/config?cas=${current.ModifyIndex}`, intentions('feature-store', [{ Name: 'model-a-v1', Action: 'deny' }]))).body).toBe(true);
      const after = standIn.configEntry('service-intentions', 'feature-store')!;
      expect(after.ModifyIndex).toBeGreaterThan(current.ModifyIndex);
      expect(after.CreateIndex).toBe(current.CreateIndex);
      expect(after.Sources).toEqual([{ Name: 'model-a-v1', Action: 'deny', Precedence: 9, Type: 'consul' }]);
    });

    test('GET answers 404 with Consul\'s message for a missing entry', async () => {
      const response = await consul.get('/v1/config/service-intentions/nothing');
      expect(response).toEqual({ status: 404, body: 'Config entry not found for "service-intentions" / "nothing"', index: undefined });
    });

    test('DELETE with cas answers true or false; without cas it answers {}', async () => {
      await consul.put('/v1/config', intentions('a', [{ Name: 'b', Action: 'allow' }]));
      const index = standIn.configEntry('service-intentions', 'a')!.ModifyIndex as number;
      expect((await consul.delete(`/v1/config/service-intentions/a?cas=${index + 1}`)).body).toBe(false);
      expect(standIn.configEntry('service-intentions', 'a')).toBeDefined();
      expect((await consul.delete(`/v1/config/service-intentions/a?cas=${index}`)).body).toBe(true);
      expect(standIn.configEntry('service-intentions', 'a')).toBeUndefined();
      expect((await consul.delete('/v1/config/service-intentions/a')).body).toEqual({});
    });

    test('normalizes like Consul: Type consul, Precedence, exact sources before the wildcard, methods upper case', () => {
      const stored = standIn.seedConfigEntry(intentions('api', [
        { Name: '*', Action: 'deny' },
        { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/v1', Methods: ['get'] } }] },
      ]));
      expect(stored.Sources).toEqual([
        { Name: 'web', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: '/v1', Methods: ['GET'] } }], Precedence: 9, Type: 'consul' },
        { Name: '*', Action: 'deny', Precedence: 8, Type: 'consul' },
      ]);
      expect(standIn.seedConfigEntry(intentions('*', [{ Name: '*', Action: 'deny' }])).Sources).toEqual([{ Name: '*', Action: 'deny', Precedence: 5, Type: 'consul' }]);
    });

    test.each([
      [intentions('a', []), 500, 'At least one source is required'],
      [intentions('a', [{ Name: 'b', Action: 'allow', Permissions: [{ Action: 'allow', HTTP: { PathExact: '/x' } }] }]), 500, 'Sources[0].Action must be omitted if Permissions are specified'],
      [intentions('a', [{ Name: 'b' }]), 500, "Sources[0].Action must be set to 'allow' or 'deny'"],
      [intentions('a', [{ Name: 'b', Permissions: [{ Action: 'allow', HTTP: { PathPrefix: 'x' } }] }]), 500, "Sources[0].Permissions[0].HTTP.PathPrefix doesn't start with '/'"],
      [intentions('a', [{ Name: 'b', Permissions: [{ Action: 'allow', HTTP: { Header: [{ Name: 'x', Exact: 'y', Prefix: 'z' }] } }] }]), 500, 'should only contain one of Present, Exact, Prefix, Suffix, or Regex'],
      [intentions('*', [{ Name: 'b', Permissions: [{ Action: 'allow', HTTP: { PathExact: '/x' } }] }]), 500, 'Permissions cannot be specified on intentions with wildcarded destinations'],
      [intentions('a', [{ Name: 'b', Action: 'allow' }, { Name: 'b', Action: 'deny' }]), 500, 'defines "default/b" more than once'],
      [intentions('a', [{ Name: 'b', Action: 'allow', Description: 'x'.repeat(513) }]), 500, 'Sources[0].Description exceeds maximum length 512'],
      [intentions('a', [{ Name: 'b', Action: 'allow' }], { k: 'v'.repeat(513) }), 500, 'Meta value for key "k" exceeds maximum length 512'],
      [intentions('a', [{ Name: 'b', Action: 'allow' }], Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']))), 500, 'Meta exceeds maximum element count 64'],
      [intentions('a', [{ Name: 'b', Action: 'allow', Permisions: [] }]), 400, 'invalid config key "Sources[0].Permisions"'],
      [{ ...intentions('a', [{ Name: 'b', Action: 'allow' }]), Namespace: 'default' }, 400, 'invalid config key "Namespace", namespaces are a consul enterprise feature'],
    ])('rejects what Consul CE rejects (%#)', async (entry, status, message) => {
      const failing = consulClient(standIn.connection(), { retries: 1 });
      const attempt = failing.put('/v1/config', entry);
      if (status === 400) {
        await expect(attempt).resolves.toMatchObject({ status: 400, body: expect.stringContaining(message) });
      } else {
        await expect(attempt).rejects.toThrow(message);
      }
      expect(standIn.state.configEntries.size).toBe(0);
    });

    test('loseNextCas: another writer changes the entry between the read and the CAS write, which then answers false', async () => {
      await consul.put('/v1/config', intentions('a', [{ Name: 'b', Action: 'allow' }]));
      const index = standIn.configEntry('service-intentions', 'a')!.ModifyIndex as number;
      standIn.loseNextCas(1, (current) => ({ ...current, Sources: [{ Name: 'someone-else', Action: 'allow' }] }));
      expect((await consul.put(`/v1/config?cas=${index}`, intentions('a', [{ Name: 'c', Action: 'allow' }]))).body).toBe(false);
      expect(standIn.configEntry('service-intentions', 'a')!.Sources).toEqual([{ Name: 'someone-else', Action: 'allow', Precedence: 9, Type: 'consul' }]);
      // The loss was used up: the next write with the new index goes through.
      const next = standIn.configEntry('service-intentions', 'a')!.ModifyIndex as number;
      expect((await consul.put(`/v1/config?cas=${next}`, intentions('a', [{ Name: 'c', Action: 'allow' }]))).body).toBe(true);
    });
  });

  describe('ACLs', () => {
    test('an unknown token gets 403 "ACL not found"; the client names the method and path, never the token', async () => {
      const stranger = consulClient(standIn.connection('99999999-9999-4999-8999-999999999999'));
      const error = await stranger.get('/v1/config/service-intentions/a').catch((e: Error) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).message).toBe('Consul refused GET /v1/config/service-intentions/a (403): the token lacks permission or is invalid: ACL not found');
      expect((error as Error).message).not.toContain('99999999');
    });

    test('a token without the permission gets 403 "Permission denied" naming the permission and the resource', async () => {
      const reader = consulClient(standIn.connection(READER));
      expect((await reader.get('/v1/config/service-intentions/a')).status).toBe(404);
      await expect(reader.put('/v1/config?cas=0', intentions('a', [{ Name: 'b', Action: 'allow' }]))).rejects.toThrow(
        /^Consul refused PUT \/v1\/config\?cas=0 \(403\): the token lacks permission or is invalid: Permission denied: token with AccessorID '[0-9a-f-]{36}' lacks permission 'intentions:write' on "a"$/,
      );
      // Prefix-scoped permissions: service:write on feature-* only.
      const writer = consulClient(standIn.connection(WRITER));
      expect((await writer.put('/v1/config', { Kind: 'service-defaults', Name: 'feature-store', Protocol: 'http' })).body).toBe(true);
      await expect(writer.put('/v1/config', { Kind: 'service-defaults', Name: 'log-service', Protocol: 'http' })).rejects.toThrow(/lacks permission 'service:write' on "log-service"/);
    });

    test('records every request with its method, path, query, body and whether it had a token', async () => {
      await consul.put('/v1/config?cas=0', intentions('a', [{ Name: 'b', Action: 'allow' }]));
      expect(standIn.requests).toEqual([
        { method: 'PUT', path: '/v1/config', query: { cas: '0' }, body: intentions('a', [{ Name: 'b', Action: 'allow' }]), hadToken: true },
      ]);
    });
  });

  describe('faults', () => {
    test('failNext: the next requests answer 500; the client retries and succeeds within its attempts', async () => {
      standIn.failNext(2);
      expect((await consul.get('/v1/agent/connect/ca/roots')).status).toBe(200);
      expect(standIn.requests).toHaveLength(3);
    });

    test('failNext beyond the attempts: a clear error with the last answer', async () => {
      standIn.failNext(3, 503, 'overloaded');
      await expect(consul.get('/v1/agent/connect/ca/roots')).rejects.toThrow('Consul GET /v1/agent/connect/ca/roots failed after 3 attempts: HTTP 503: overloaded');
    });

    test('dropNext: a reset connection is retried', async () => {
      standIn.dropNext(1);
      expect((await consul.get('/v1/agent/connect/ca/roots')).status).toBe(200);
      expect(standIn.requests).toHaveLength(2);
    });

    test('delayNext past the client timeout: the attempt times out and is retried', async () => {
      const impatient = consulClient(standIn.connection(), { timeoutMs: 200, retryDelayMs: 1 });
      standIn.delayNext(1, 600);
      expect((await impatient.get('/v1/agent/connect/ca/roots')).status).toBe(200);
      expect(standIn.requests).toHaveLength(2);
    });
  });

  describe('catalog and Connect CA', () => {
    test('register, list and deregister a service on an external node', async () => {
      const writer = consulClient(standIn.connection(WRITER));
      const registration = { Node: 'lambda-dc1', Address: '127.0.0.1', NodeMeta: { 'external-node': 'true' }, Service: { ID: 'feature-a', Service: 'feature-a', Port: 0, Tags: ['lambda-mesh'] } };
      expect((await writer.put('/v1/catalog/register', registration)).body).toBe(true);
      const listed = (await writer.get('/v1/catalog/service/feature-a')).body as Array<Record<string, unknown>>;
      expect(listed).toEqual([expect.objectContaining({ Node: 'lambda-dc1', ServiceID: 'feature-a', ServiceName: 'feature-a', ServiceTags: ['lambda-mesh'], NodeMeta: { 'external-node': 'true' } })]);
      expect((await writer.put('/v1/catalog/deregister', { Node: 'lambda-dc1', ServiceID: 'feature-a' })).body).toBe(true);
      expect((await writer.get('/v1/catalog/service/feature-a')).body).toEqual([]);
      await expect(writer.put('/v1/catalog/register', { ...registration, Node: 'other-node' })).rejects.toThrow(/lacks permission 'node:write' on "other-node"/);
    });

    test('roots list the active Connect CA; a leaf is a real certificate with the SPIFFE URI, signed by it', async () => {
      const roots = (await consul.get('/v1/agent/connect/ca/roots')).body as { ActiveRootID: string; TrustDomain: string; Roots: Array<{ ID: string; RootCert: string; Active: boolean }> };
      expect(roots.Roots).toHaveLength(1);
      expect(roots.Roots[0]).toMatchObject({ ID: roots.ActiveRootID, Active: true });
      expect(roots.TrustDomain).toMatch(/^[0-9a-f-]{36}\.consul$/);

      const leaf = (await consul.get('/v1/agent/connect/ca/leaf/model-a-v1')).body as Record<string, string>;
      const cert = new crypto.X509Certificate(leaf.CertPEM);
      const spiffe = `spiffe://${roots.TrustDomain}/ns/default/dc/dc1/svc/model-a-v1`;
      expect(leaf.ServiceURI).toBe(spiffe);
      expect(cert.subjectAltName).toBe(`URI:${spiffe}`);
      expect(cert.verify(new crypto.X509Certificate(roots.Roots[0].RootCert).publicKey)).toBe(true);
      expect(cert.checkIssued(new crypto.X509Certificate(roots.Roots[0].RootCert))).toBe(true);
      expect(cert.checkPrivateKey(crypto.createPrivateKey(leaf.PrivateKeyPEM))).toBe(true);
      expect(leaf.PrivateKeyPEM).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
      const ttl = Date.parse(leaf.ValidBefore) - Date.now();
      expect(ttl).toBeGreaterThan(71 * 3600 * 1000);
      expect(ttl).toBeLessThanOrEqual(72 * 3600 * 1000);
      expect(Date.parse(cert.validTo)).toBe(Date.parse(leaf.ValidBefore));
      expect(leaf).toMatchObject({ Service: 'model-a-v1', SerialNumber: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2})*$/) });
      // Cached, as the agent does, until it expires or the CA rotates.
      expect(((await consul.get('/v1/agent/connect/ca/leaf/model-a-v1')).body as Record<string, string>).CertPEM).toBe(leaf.CertPEM);
      const rotated = standIn.rotateConnectCa();
      const renewed = (await consul.get('/v1/agent/connect/ca/leaf/model-a-v1')).body as Record<string, string>;
      expect(renewed.CertPEM).not.toBe(leaf.CertPEM);
      expect(new crypto.X509Certificate(renewed.CertPEM).verify(new crypto.X509Certificate(rotated.ca.certificatePem).publicKey)).toBe(true);
      const after = (await consul.get('/v1/agent/connect/ca/roots')).body as { ActiveRootID: string; Roots: Array<{ Active: boolean }> };
      expect(after.ActiveRootID).toBe(rotated.id);
      expect(after.Roots.map((r) => r.Active)).toEqual([false, true]);
    });

    test('a leaf needs service:write on the service', async () => {
      const reader = consulClient(standIn.connection(READER));
      await expect(reader.get('/v1/agent/connect/ca/leaf/model-a-v1')).rejects.toThrow(/Consul refused GET \/v1\/agent\/connect\/ca\/leaf\/model-a-v1 \(403\).*lacks permission 'service:write' on "model-a-v1"/);
    });

    test('the leaf lifetime is configurable', async () => {
      standIn.leafTtlMs = 10 * 60 * 1000;
      const leaf = (await consul.get('/v1/agent/connect/ca/leaf/short')).body as Record<string, string>;
      const ttl = Date.parse(leaf.ValidBefore) - Date.now();
      expect(ttl).toBeGreaterThan(9 * 60 * 1000);
      expect(ttl).toBeLessThanOrEqual(10 * 60 * 1000);
    });
  });
});
