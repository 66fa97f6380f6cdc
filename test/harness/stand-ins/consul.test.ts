import * as crypto from 'crypto';
import * as https from 'https';
import * as tls from 'tls';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import type { ConsulApi } from '../../../constructs/intentions/private/consul-api';
import { ConsulStandIn, matchesSelector } from './consul';

const WRITER = '11111111-1111-4111-8111-111111111111';
const READER = '22222222-2222-4222-8222-222222222222';
const ACL_WRITER = '33333333-3333-4333-8333-333333333333';
const ACL_READER = '44444444-4444-4444-8444-444444444444';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SERVICE_NAME_TAG = 'consul.hashicorp.com.service-name';
const ROLE_PATH_ARN = 'arn:aws:iam::123456789012:role/lambda-mesh/*';

const intentions = (name: string, sources: Array<Record<string, unknown>>, meta?: Record<string, string>): Record<string, unknown> => ({
  Kind: 'service-intentions',
  Name: name,
  Sources: sources,
  ...(meta ? { Meta: meta } : {}),
});

/** An aws-iam auth method as the lambda-mesh handler creates it: roles under a path, their service-name tag projected. */
const awsIamMethod = (config: Record<string, unknown> = {}, fields: Record<string, unknown> = {}): Record<string, unknown> => ({
  Name: 'lambda-mesh',
  Type: 'aws-iam',
  Description: 'Lambda functions of the mesh',
  MaxTokenTTL: '5m',
  Config: { BoundIAMPrincipalARNs: [ROLE_PATH_ARN], EnableIAMEntityDetails: true, IAMEntityTags: [SERVICE_NAME_TAG], ...config },
  ...fields,
});

/** A service binding rule on the service-name tag. */
const serviceRule = (fields: Record<string, unknown> = {}): Record<string, unknown> => ({
  AuthMethod: 'lambda-mesh',
  Selector: `entity_tags["${SERVICE_NAME_TAG}"] == "feature-store"`,
  BindType: 'service',
  BindName: `\${entity_tags.${SERVICE_NAME_TAG}}`,
  ...fields,
});

/** A compact JWS that parses (Consul checks only the form when the method is written). */
const SERVICE_ACCOUNT_JWT = `${[{ alg: 'RS256', kid: '' }, { sub: 'system:serviceaccount:consul:auth-method' }].map((p) => Buffer.from(JSON.stringify(p)).toString('base64url')).join('.')}.c2lnbmF0dXJl`;

const kubernetesMethod = (caPem: string, config: Record<string, unknown> = {}): Record<string, unknown> => ({
  Name: 'eks',
  Type: 'kubernetes',
  Config: { Host: 'https://kubernetes.default.svc', CACert: caPem, ServiceAccountJWT: SERVICE_ACCOUNT_JWT, ...config },
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
      tokens: {
        [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'],
        [WRITER]: ['intentions:write', 'service:write:feature-', 'node:write:lambda-'],
        [READER]: ['intentions:read'],
        [ACL_WRITER]: ['acl:write'],
        [ACL_READER]: ['acl:read'],
      },
    });
    consul = consulClient(standIn.connection(), { retryDelayMs: 1 });
  });

  /** A client with one attempt, for answers the client would retry (5xx): its error quotes Consul's text. */
  const once = (): ConsulApi => consulClient(standIn.connection(), { retries: 1 });

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

  describe('catalog nodes', () => {
    test('a node-only registration; GET /v1/catalog/node/:node answers {Node, Services}; deregistering the Node removes it', async () => {
      const writer = consulClient(standIn.connection(WRITER));
      expect((await writer.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1', NodeMeta: { 'external-node': 'true' } })).body).toBe(true);
      const node = standIn.state.nodes.get('lambda-dc1')!;
      expect((await consul.get('/v1/catalog/node/lambda-dc1')).body).toEqual({
        Node: { ID: '', Node: 'lambda-dc1', Address: '127.0.0.1', Datacenter: 'dc1', TaggedAddresses: null, Meta: { 'external-node': 'true' }, CreateIndex: node.createIndex, ModifyIndex: node.modifyIndex },
        Services: {},
      });
      await writer.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1', SkipNodeUpdate: true, Service: { ID: 'feature-a', Service: 'feature-a', Tags: ['lambda-mesh'] } });
      const services = ((await consul.get('/v1/catalog/node/lambda-dc1')).body as { Services: Record<string, unknown> }).Services;
      expect(services).toEqual({ 'feature-a': expect.objectContaining({ ID: 'feature-a', Service: 'feature-a', Tags: ['lambda-mesh'], Port: 0, Meta: {} }) });

      expect((await writer.put('/v1/catalog/deregister', { Node: 'lambda-dc1' })).body).toBe(true);
      expect(standIn.state.nodes.has('lambda-dc1')).toBe(false);
      expect(standIn.requests.filter((r) => r.method === 'PUT').map((r) => [r.path, r.body])).toEqual([
        ['/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1', NodeMeta: { 'external-node': 'true' } }],
        ['/v1/catalog/register', expect.objectContaining({ SkipNodeUpdate: true })],
        ['/v1/catalog/deregister', { Node: 'lambda-dc1' }],
      ]);
    });

    test('vets a registration as Consul does: node:write only to create or update the node, service:write for the service, its proxy\'s destination and its checks\' services', async () => {
      standIn.tokens.set('66666666-6666-4666-8666-666666666666', ['service:write:feature-a', 'service:read', 'node:read']);
      const service = consulClient(standIn.connection('66666666-6666-4666-8666-666666666666'), { retryDelayMs: 1, retries: 1 });
      const node = { Node: 'lambda-dc1', SkipNodeUpdate: true };
      // A new node needs node:write, even with SkipNodeUpdate; so does an update of it.
      await expect(service.put('/v1/catalog/register', { ...node, Service: { ID: 'feature-a', Service: 'feature-a' } })).rejects.toThrow(/lacks permission 'node:write' on "lambda-dc1"/);
      await consul.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1' });
      await expect(service.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '10.0.0.9', Service: { ID: 'feature-a', Service: 'feature-a' } })).rejects.toThrow(/lacks permission 'node:write'/);
      expect(await service.put('/v1/catalog/register', { Node: 'lambda-dc1', Service: { Service: 'feature-a' } })).toMatchObject({ status: 400, body: 'Must provide address if SkipNodeUpdate is not set' });

      // On the existing node, without updating it: its service, its proxy and their checks.
      const check = { CheckID: 'feature-a:health', Name: 'health', ServiceID: 'feature-a', Status: 'passing' };
      expect((await service.put('/v1/catalog/register', { ...node, Service: { ID: 'feature-a', Service: 'feature-a' }, Check: { ...check, Status: 'critical' } })).body).toBe(true);
      expect((await service.put('/v1/catalog/register', { ...node, Check: check })).body).toBe(true);
      expect((await service.put('/v1/catalog/register', { ...node, Service: { Kind: 'connect-proxy', ID: 'feature-a-sidecar-proxy', Service: 'feature-a-sidecar-proxy', Proxy: { DestinationServiceName: 'feature-a' } } })).body).toBe(true);
      expect(standIn.state.nodes.get('lambda-dc1')!.address).toBe('127.0.0.1');

      // Not someone else's service, proxy destination, service check or node check.
      await consul.put('/v1/catalog/register', { ...node, Service: { ID: 'log-service', Service: 'log-service' } });
      await expect(service.put('/v1/catalog/register', { ...node, Service: { Kind: 'connect-proxy', ID: 'feature-a-proxy-2', Service: 'feature-a-proxy-2', Proxy: { DestinationServiceName: 'log-service' } } })).rejects.toThrow(/lacks permission 'service:write' on "log-service"/);
      await expect(service.put('/v1/catalog/register', { ...node, Check: { ...check, ServiceID: 'log-service' } })).rejects.toThrow(/lacks permission 'service:write' on "log-service"/);
      await expect(service.put('/v1/catalog/register', { ...node, Check: { ...check, ServiceID: '' } })).rejects.toThrow(/lacks permission 'node:write' on "lambda-dc1"/);
      await expect(service.put('/v1/catalog/register', { ...node, Check: { ...check, ServiceID: 'nothing' } })).rejects.toThrow("Unknown service ID 'nothing' for check ID 'feature-a:health'");
    });

    test('an unknown node answers 200 with null, as Consul does', async () => {
      expect(await consul.get('/v1/catalog/node/nothing')).toMatchObject({ status: 200, body: null });
    });

    test('filters by ACL as Consul does: null for a node the token may not read, and only the services it may read', async () => {
      standIn.tokens.set('55555555-5555-4555-8555-555555555555', ['node:read:lambda-', 'service:read:feature-']);
      await consul.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1', Service: { ID: 'feature-a', Service: 'feature-a' } });
      await consul.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1', Service: { ID: 'log-service', Service: 'log-service' } });
      const scoped = consulClient(standIn.connection('55555555-5555-4555-8555-555555555555'));
      expect(Object.keys(((await scoped.get('/v1/catalog/node/lambda-dc1')).body as { Services: object }).Services)).toEqual(['feature-a']);
      expect((await consulClient(standIn.connection(READER)).get('/v1/catalog/node/lambda-dc1')).body).toBeNull();
    });
  });

  describe('ACL auth methods', () => {
    test('PUT /v1/acl/auth-method creates a method; GET answers it with its Config, MaxTokenTTL as Go prints it, and the Raft indexes', async () => {
      const index = standIn.state.index + 1;
      const expected = {
        Name: 'lambda-mesh',
        Type: 'aws-iam',
        Description: 'Lambda functions of the mesh',
        MaxTokenTTL: '5m0s',
        Config: { BoundIAMPrincipalARNs: [ROLE_PATH_ARN], EnableIAMEntityDetails: true, IAMEntityTags: [SERVICE_NAME_TAG] },
        CreateIndex: index,
        ModifyIndex: index,
      };
      expect((await consul.put('/v1/acl/auth-method', awsIamMethod())).body).toEqual(expected);
      expect(await consul.get('/v1/acl/auth-method/lambda-mesh')).toEqual({ status: 200, body: expected, index: String(index) });
      expect(standIn.state.authMethods.get('lambda-mesh')).toEqual(expected);
      expect(standIn.aclWrites().map((r) => `${r.method} ${r.path}`)).toEqual(['PUT /v1/acl/auth-method']);
    });

    test('PUT on an existing Name is an upsert, as in Consul: the fields are replaced, CreateIndex kept; Type may be left out', async () => {
      const first = (await consul.put('/v1/acl/auth-method', awsIamMethod())).body as Record<string, number>;
      const bound = ['arn:aws:iam::123456789012:role/feature-store'];
      expect((await consul.put('/v1/acl/auth-method', { Name: 'lambda-mesh', DisplayName: 'Lambda', Config: { BoundIAMPrincipalARNs: bound } })).body).toEqual({
        Name: 'lambda-mesh',
        Type: 'aws-iam',
        DisplayName: 'Lambda',
        Description: '',
        Config: { BoundIAMPrincipalARNs: bound },
        CreateIndex: first.CreateIndex,
        ModifyIndex: first.ModifyIndex + 1,
      });
      expect(standIn.state.authMethods.size).toBe(1);
    });

    test('refuses to change the Type of an existing method (500)', async () => {
      standIn.seedAuthMethod(awsIamMethod());
      await expect(once().put('/v1/acl/auth-method', { ...kubernetesMethod(standIn.caPem), Name: 'lambda-mesh' })).rejects.toThrow('HTTP 500: the Type field of an Auth Method is immutable');
      expect(standIn.authMethod('lambda-mesh')!.Type).toBe('aws-iam');
    });

    test('PUT /v1/acl/auth-method/:name writes the method the URL names; refuses a body that names another (400)', async () => {
      standIn.seedAuthMethod(awsIamMethod());
      expect((await consul.put('/v1/acl/auth-method/lambda-mesh', awsIamMethod({}, { Name: '', Description: 'updated' }))).body).toMatchObject({ Name: 'lambda-mesh', Description: 'updated' });
      expect(await consul.put('/v1/acl/auth-method/lambda-mesh', awsIamMethod({}, { Name: 'other' }))).toMatchObject({ status: 400, body: 'Bad request: AuthMethod Name in URL and payload do not match' });
      expect(standIn.authMethod('lambda-mesh')!.Description).toBe('updated');
    });

    test('GET answers 404 "ACL auth method not found" for a missing method', async () => {
      expect(await consul.get('/v1/acl/auth-method/nothing')).toMatchObject({ status: 404, body: 'ACL auth method not found' });
    });

    test('GET /v1/acl/auth-methods lists the methods by Name, without Config', async () => {
      const zeta = standIn.seedAuthMethod(awsIamMethod({}, { Name: 'zeta' }));
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      const listed = (await consul.get('/v1/acl/auth-methods')).body as Array<Record<string, unknown>>;
      expect(listed.map((m) => m.Name)).toEqual(['eks', 'zeta']);
      expect(listed[1]).toEqual({ Name: 'zeta', Type: 'aws-iam', Description: 'Lambda functions of the mesh', MaxTokenTTL: '5m0s', CreateIndex: zeta.CreateIndex, ModifyIndex: zeta.ModifyIndex });
      expect(listed[0]).not.toHaveProperty('Config');
    });

    test('DELETE answers true (for a missing method too) and deletes the method\'s binding rules and the tokens issued through it', async () => {
      standIn.seedAuthMethod(awsIamMethod());
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      standIn.seedBindingRule(serviceRule());
      const kept = standIn.seedBindingRule({ AuthMethod: 'eks', BindType: 'service', BindName: '${serviceaccount.name}' });
      expect(standIn.login('lambda-mesh', { [`entity_tags.${SERVICE_NAME_TAG}`]: 'feature-store' }).token).toBeDefined();
      const index = standIn.state.index;

      expect((await consul.delete('/v1/acl/auth-method/lambda-mesh')).body).toBe(true);
      expect(standIn.authMethod('lambda-mesh')).toBeUndefined();
      expect(standIn.bindingRules()).toEqual([kept]);
      expect(standIn.state.loginTokens.size).toBe(0);
      expect(standIn.state.index).toBe(index + 1);
      expect((await consul.delete('/v1/acl/auth-method/lambda-mesh')).body).toBe(true);
    });

    test('accepts what Consul accepts: every aws-iam Config key (STSRegion too), keys in any case, a kubernetes method', async () => {
      const all = {
        BoundIAMPrincipalARNs: ['arn:aws:iam::123456789012:role/feature-store', 'arn:aws:sts::123456789012:assumed-role/x/y'],
        EnableIAMEntityDetails: false,
        ServerIDHeaderValue: 'consul.example.com',
        MaxRetries: 3,
        IAMEndpoint: 'https://iam.amazonaws.com',
        STSEndpoint: 'https://sts.eu-west-1.amazonaws.com',
        STSRegion: 'eu-west-1',
        AllowedSTSHeaderValues: ['X-Extra'],
      };
      expect((await consul.put('/v1/acl/auth-method', { Name: 'all', Type: 'aws-iam', Config: all })).status).toBe(200);
      expect((await consul.put('/v1/acl/auth-method', { name: 'lower', type: 'aws-iam', config: { boundiamprincipalarns: ['arn:aws:iam::123456789012:role/a'] } })).body).toMatchObject({ Name: 'lower', Type: 'aws-iam' });
      expect((await consul.put('/v1/acl/auth-method', kubernetesMethod(standIn.caPem))).body).toMatchObject({ Name: 'eks', Type: 'kubernetes' });
      expect([...standIn.state.authMethods.keys()].sort()).toEqual(['all', 'eks', 'lower']);
    });

    test.each<[string, () => Record<string, unknown>, string]>([
      ['a Config key awsauth does not have', () => awsIamMethod({ BoundRoleARNs: ['x'] }), "Invalid Auth Method: error decoding config: 1 error(s) decoding:\n\n* '' has invalid keys: BoundRoleARNs"],
      ['no BoundIAMPrincipalARNs', () => awsIamMethod({ BoundIAMPrincipalARNs: undefined }), 'Invalid Auth Method: BoundIAMPrincipalARNs is required and must have at least 1 entry'],
      ['an empty BoundIAMPrincipalARNs', () => awsIamMethod({ BoundIAMPrincipalARNs: [] }), 'Invalid Auth Method: BoundIAMPrincipalARNs is required and must have at least 1 entry'],
      ['a wildcard without EnableIAMEntityDetails', () => awsIamMethod({ EnableIAMEntityDetails: false, IAMEntityTags: [] }), 'Invalid Auth Method: Must set EnableIAMEntityDetails=true to use wildcards in BoundIAMPrincipalARNs'],
      ['a wildcard inside the ARN', () => awsIamMethod({ BoundIAMPrincipalARNs: ['arn:aws:iam::123456789012:role/*/x'] }), 'Invalid Auth Method: Only one wildcard is allowed at the end of the bound IAM principal ARN'],
      ['two wildcards', () => awsIamMethod({ BoundIAMPrincipalARNs: ['arn:aws:iam::123456789012:role/*/*'] }), 'Invalid Auth Method: Only one wildcard is allowed at the end of the bound IAM principal ARN'],
      ['a bound principal that is not an ARN', () => awsIamMethod({ BoundIAMPrincipalARNs: ['role/lambda-mesh'] }), 'Invalid Auth Method: Invalid principal ARN: "role/lambda-mesh"'],
      ['an ARN of another service', () => awsIamMethod({ BoundIAMPrincipalARNs: ['arn:aws:s3:::bucket/key'] }), 'Invalid Auth Method: Invalid principal ARN: "arn:aws:s3:::bucket/key"'],
      ['IAMEntityTags without EnableIAMEntityDetails', () => awsIamMethod({ BoundIAMPrincipalARNs: ['arn:aws:iam::123456789012:role/a'], EnableIAMEntityDetails: false }), 'Invalid Auth Method: Must set EnableIAMEntityDetails=true to use IAMUserTags'],
      ['a bool written as a string', () => awsIamMethod({ EnableIAMEntityDetails: 'true' }), "Invalid Auth Method: error decoding config: 1 error(s) decoding:\n\n* 'EnableIAMEntityDetails' expected type 'bool', got unconvertible type 'string', value: 'true'"],
      ['an ARN list written as one string', () => awsIamMethod({ BoundIAMPrincipalARNs: ROLE_PATH_ARN }), "Invalid Auth Method: error decoding config: 1 error(s) decoding:\n\n* 'BoundIAMPrincipalARNs': source data must be an array or slice, got string"],
      ['an unknown Type', () => awsIamMethod({}, { Type: 'ldap' }), 'Invalid Auth Method: Type should be one of: [aws-iam jwt kubernetes oidc]'],
      ['no Name', () => awsIamMethod({}, { Name: '' }), 'Invalid Auth Method: no Name is set'],
      ['a Name with a space', () => awsIamMethod({}, { Name: 'lambda mesh' }), "Invalid Auth Method: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"],
      ['a MaxTokenTTL over 24h', () => awsIamMethod({}, { MaxTokenTTL: '48h' }), 'MaxTokenTTL 48h0m0s cannot be more than 24h0m0s'],
      ['a MaxTokenTTL under a minute', () => awsIamMethod({}, { MaxTokenTTL: '30s' }), 'MaxTokenTTL 30s cannot be less than 1m0s'],
      ['an unknown TokenLocality', () => awsIamMethod({}, { TokenLocality: 'region' }), "Invalid Auth Method: TokenLocality should be one of 'local' or 'global'"],
      ['a kubernetes method without Host', () => kubernetesMethod(standIn.caPem, { Host: '' }), 'Invalid Auth Method: Config.Host is required'],
      ['a kubernetes CACert that is no certificate', () => kubernetesMethod(standIn.caPem, { CACert: 'not a pem' }), 'Invalid Auth Method: error parsing kubernetes ca cert'],
      ['a kubernetes ServiceAccountJWT that is no JWT', () => kubernetesMethod(standIn.caPem, { ServiceAccountJWT: 'token' }), 'Invalid Auth Method: Config.ServiceAccountJWT is not a valid JWT'],
      ['an Enterprise kubernetes key', () => kubernetesMethod(standIn.caPem, { MapNamespaces: true }), "Invalid Auth Method: error decoding config: 1 error(s) decoding:\n\n* '' has invalid keys: MapNamespaces"],
    ])('refuses %s (500)', async (_case, method, message) => {
      await expect(once().put('/v1/acl/auth-method', method())).rejects.toThrow(`HTTP 500: ${message}`);
      expect(standIn.state.authMethods.size).toBe(0);
    });

    test.each([
      [{ MaxTokenTTL: '5 minutes' }, 'Bad request: AuthMethod decoding failed: time: invalid duration "5 minutes"'],
      [{ Name: 5 }, 'Bad request: AuthMethod decoding failed: json: cannot unmarshal number into Go struct field ACLAuthMethod.Name of type string'],
      [{ Config: ['x'] }, 'Bad request: AuthMethod decoding failed: json: cannot unmarshal array into Go struct field ACLAuthMethod.Config of type map[string]interface {}'],
    ])('refuses a body Consul cannot decode (400, %j)', async (fields, message) => {
      expect(await consul.put('/v1/acl/auth-method', awsIamMethod({}, fields))).toMatchObject({ status: 400, body: message });
    });
  });

  describe('ACL binding rules', () => {
    beforeEach(() => {
      standIn.seedAuthMethod(awsIamMethod());
    });

    test('PUT /v1/acl/binding-rule creates a rule with an ID the server assigns; GET answers it', async () => {
      const created = (await consul.put('/v1/acl/binding-rule', serviceRule({ Description: 'service from the tag' }))).body as Record<string, unknown>;
      expect(created).toEqual({
        ID: expect.stringMatching(UUID),
        Description: 'service from the tag',
        AuthMethod: 'lambda-mesh',
        Selector: `entity_tags["${SERVICE_NAME_TAG}"] == "feature-store"`,
        BindType: 'service',
        BindName: `\${entity_tags.${SERVICE_NAME_TAG}}`,
        CreateIndex: standIn.state.index,
        ModifyIndex: standIn.state.index,
      });
      expect(await consul.get(`/v1/acl/binding-rule/${String(created.ID)}`)).toEqual({ status: 200, body: created, index: String(created.ModifyIndex) });
      expect(standIn.state.bindingRules.get(String(created.ID))).toEqual(created);
    });

    test('refuses a client-supplied ID on create (400)', async () => {
      expect(await consul.put('/v1/acl/binding-rule', serviceRule({ ID: crypto.randomUUID() }))).toMatchObject({ status: 400, body: 'Bad request: BindingRule ID in URL and payload do not match' });
      expect(standIn.state.bindingRules.size).toBe(0);
    });

    test('PUT /v1/acl/binding-rule/:id updates the rule: the AuthMethod may be left out, not changed', async () => {
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      const rule = standIn.seedBindingRule(serviceRule());
      const path = `/v1/acl/binding-rule/${String(rule.ID)}`;
      expect((await consul.put(path, serviceRule({ AuthMethod: '', BindName: 'feature-store' }))).body).toMatchObject({ ID: rule.ID, AuthMethod: 'lambda-mesh', BindName: 'feature-store', CreateIndex: rule.CreateIndex });
      await expect(once().put(path, serviceRule({ AuthMethod: 'eks' }))).rejects.toThrow('HTTP 500: the AuthMethod field of an Binding Rule is immutable');
      await expect(once().put(`/v1/acl/binding-rule/${crypto.randomUUID()}`, serviceRule())).rejects.toThrow(/HTTP 500: cannot find binding rule [0-9a-f-]{36}$/);
      await expect(once().put('/v1/acl/binding-rule/not-a-uuid', serviceRule())).rejects.toThrow('HTTP 500: Binding Rule ID invalid UUID');
      expect(await consul.put(path, serviceRule({ ID: crypto.randomUUID() }))).toMatchObject({ status: 400, body: 'Bad request: BindingRule ID in URL and payload do not match' });
    });

    test('GET answers 404 "ACL binding rule not found" for a missing rule; DELETE answers true', async () => {
      const rule = standIn.seedBindingRule(serviceRule());
      expect((await consul.delete(`/v1/acl/binding-rule/${String(rule.ID)}`)).body).toBe(true);
      expect(await consul.get(`/v1/acl/binding-rule/${String(rule.ID)}`)).toMatchObject({ status: 404, body: 'ACL binding rule not found' });
      expect((await consul.delete(`/v1/acl/binding-rule/${String(rule.ID)}`)).body).toBe(true);
    });

    test('GET /v1/acl/binding-rules lists every rule by ID, or those of ?authmethod=', async () => {
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      const a = standIn.seedBindingRule(serviceRule());
      const b = standIn.seedBindingRule(serviceRule({ Selector: '' }));
      const k = standIn.seedBindingRule({ AuthMethod: 'eks', BindType: 'service', BindName: '${serviceaccount.name}' });
      const byId = (rules: Array<Record<string, unknown>>): unknown[] => [...rules].sort((x, y) => String(x.ID).localeCompare(String(y.ID)));
      expect((await consul.get('/v1/acl/binding-rules')).body).toEqual(byId([a, b, k]));
      expect((await consul.get('/v1/acl/binding-rules?authmethod=lambda-mesh')).body).toEqual(byId([a, b]));
      expect((await consul.get('/v1/acl/binding-rules?authmethod=nothing')).body).toEqual([]);
    });

    test.each<[string, Record<string, unknown>, string]>([
      ['an unknown auth method', serviceRule({ AuthMethod: 'nothing' }), 'cannot find auth method with name "nothing"'],
      ['no auth method', serviceRule({ AuthMethod: '' }), 'Invalid Binding Rule: no AuthMethod is set'],
      ['no BindType', serviceRule({ BindType: '' }), 'Invalid Binding Rule: no BindType is set'],
      ['an unknown BindType', serviceRule({ BindType: 'token' }), 'Invalid Binding Rule: unknown BindType "token"'],
      ['no BindName', serviceRule({ BindName: '' }), 'Invalid Binding Rule: no BindName is set'],
      ['a BindName that is no service name', serviceRule({ BindName: 'Feature Store' }), 'Invalid Binding Rule: invalid BindName: failed to validate bindType "service": invalid bind name: "Feature Store"'],
      ['a BindName variable the method does not have', serviceRule({ BindName: '${entity_tags.team}' }), 'Invalid Binding Rule: invalid BindName: failed to validate bindType "service": error interpreting template: 1:3: unknown variable accessed: entity_tags.team'],
      ['BindVars on a service rule', serviceRule({ BindVars: { Name: 'x' } }), 'Invalid Binding Rule: BindVars is only used with BindType "templated-policy"'],
      ['an unknown templated policy', serviceRule({ BindType: 'templated-policy', BindName: 'builtin/everything' }), 'Invalid Binding Rule: invalid BindName: failed to validate bindType "templated-policy": Bind name for templated-policy bind type does not match existing template name: builtin/everything'],
      ['a templated policy without its Name', serviceRule({ BindType: 'templated-policy', BindName: 'builtin/service' }), 'Invalid Binding Rule: invalid BindName: failed to validate bindType "templated-policy": templated policy failed validation: name: name is required'],
    ])('refuses %s (500)', async (_case, rule, message) => {
      await expect(once().put('/v1/acl/binding-rule', rule)).rejects.toThrow(`HTTP 500: ${message}`);
      expect(standIn.state.bindingRules.size).toBe(0);
    });

    test.each([
      ['entity_name = "x"', '1:13 (12): unexpected character "="'],
      ['entity_name == "x', '1:16 (15): the string literal is not closed'],
      ['(entity_name == "x"', 'expected ")", got the end of the selector'],
      ['entity_name == x', '1:16 (15): expected a quoted string, got "x"'],
      [`entity_tags.${SERVICE_NAME_TAG} == "x"`, 'unexpected character "-" (a key with "-" or "." must be written as an index'],
      ['entity_name', 'expected an operator (==, !=, matches, contains, is empty, is not empty) after entity_name'],
      ['entity_name == "x" entity_id == "y"', 'expected "and", "or" or the end, got "entity_id"'],
      ['entity_name matches "(?=x)"', 'error parsing regexp: invalid or unsupported Perl syntax: `(?=`'],
      ['entity_name matches "("', 'error parsing regexp: Invalid regular expression'],
      ['entity_nam == "x"', 'Selector "entity_nam" is not valid'],
      ['serviceaccount.name == "x"', 'Selector "serviceaccount.name" is not valid'],
      ['entity_name.first == "x"', 'Selector "entity_name.first" is not valid: entity_name is a string and has no field "first"'],
      ['entity_tags["team"] == "ml"', 'Selector "entity_tags[\\"team\\"]" is not valid: the tag "team" is not in the auth method\'s IAMEntityTags'],
      ['entity_tags.consul.hashicorp.com == "x"', 'a tag name with "." must be written entity_tags["consul.hashicorp.com"]'],
    ])('refuses the selector %s (500)', async (selector, message) => {
      await expect(once().put('/v1/acl/binding-rule', serviceRule({ Selector: selector }))).rejects.toThrow(`HTTP 500: invalid Binding Rule: Selector is invalid: `);
      await expect(once().put('/v1/acl/binding-rule', serviceRule({ Selector: selector }))).rejects.toThrow(message);
      expect(standIn.state.bindingRules.size).toBe(0);
    });

    test('refuses entity_path and entity_tags selectors on a method without EnableIAMEntityDetails (stricter than Consul, which never fills them)', async () => {
      standIn.seedAuthMethod({ Name: 'plain', Type: 'aws-iam', Config: { BoundIAMPrincipalARNs: ['arn:aws:iam::123456789012:role/feature-store'] } });
      for (const selector of ['entity_path == "/x/"', 'entity_tags["team"] == "ml"']) {
        await expect(once().put('/v1/acl/binding-rule', serviceRule({ AuthMethod: 'plain', Selector: selector }))).rejects.toThrow('needs EnableIAMEntityDetails=true on the auth method (stand-in check');
      }
      expect((await consul.put('/v1/acl/binding-rule', serviceRule({ AuthMethod: 'plain', Selector: 'entity_name == "feature-store" and account_id == "123456789012"', BindName: '${entity_name}' }))).status).toBe(200);
    });

    test.each([
      `entity_tags["${SERVICE_NAME_TAG}"] == "feature-store"`,
      `entity_tags[\`${SERVICE_NAME_TAG}\`] != "model-a"`,
      'entity_path matches "^/lambda-mesh/" and not (entity_name == "x" or account_id != "123456789012")',
      '"feature" in entity_name',
      '"model" not in entity_name',
      'entity_name contains "store"',
      'entity_name not contains "model"',
      'entity_name not matches "^model-"',
      `entity_tags["${SERVICE_NAME_TAG}"] is not empty`,
      'entity_id is empty',
    ])('accepts the selector %s', async (selector) => {
      expect((await consul.put('/v1/acl/binding-rule', serviceRule({ Selector: selector }))).status).toBe(200);
    });

    test('accepts a dotted tag selector when the tag has no "." or "-", as go-bexpr does', async () => {
      standIn.seedAuthMethod(awsIamMethod({ IAMEntityTags: ['team'] }, { Name: 'teams' }));
      expect((await consul.put('/v1/acl/binding-rule', serviceRule({ AuthMethod: 'teams', Selector: 'entity_tags.team == "ml"', BindName: '${entity_tags.team}' }))).status).toBe(200);
    });

    test('a kubernetes method offers the service account fields, and no aws-iam ones', async () => {
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      const rule = { AuthMethod: 'eks', BindType: 'service', BindName: '${serviceaccount.name}', Selector: 'serviceaccount.namespace == "default" and serviceaccount.name != "vault"' };
      expect((await consul.put('/v1/acl/binding-rule', rule)).status).toBe(200);
      await expect(once().put('/v1/acl/binding-rule', { ...rule, Selector: 'entity_name == "x"' })).rejects.toThrow('Selector "entity_name" is not valid');
      await expect(once().put('/v1/acl/binding-rule', { ...rule, BindName: '${entity_name}' })).rejects.toThrow('unknown variable accessed: entity_name');
    });
  });

  describe('selectors (matchesSelector)', () => {
    const attributes = {
      entity_name: 'feature-store-fn',
      entity_id: 'AROAEXAMPLE',
      account_id: '123456789012',
      entity_path: '/lambda-mesh/',
      [`entity_tags.${SERVICE_NAME_TAG}`]: 'feature-store',
    };

    test.each<[string, boolean]>([
      [`entity_tags["${SERVICE_NAME_TAG}"] == "feature-store"`, true],
      [`entity_tags["${SERVICE_NAME_TAG}"] == "model-a"`, false],
      [`entity_tags["${SERVICE_NAME_TAG}"] != "model-a"`, true],
      ['entity_name == "feature-store-fn" and account_id == "123456789012"', true],
      ['entity_name == "x" or account_id == "123456789012"', true],
      ['not entity_name == "feature-store-fn"', false],
      ['not (entity_name == "x" or account_id == "1") and entity_path == "/lambda-mesh/"', true],
      // "and" binds tighter than "or": true or (false and false).
      ['entity_name == "feature-store-fn" or entity_name == "x" and account_id == "nope"', true],
      ['(entity_name == "feature-store-fn" or entity_name == "x") and account_id == "nope"', false],
      ['entity_name matches "^feature-"', true],
      ['entity_name matches "store"', true],
      ['entity_name matches "^model-"', false],
      ['entity_name not matches "^model-"', true],
      ['entity_name matches "(?i)^FEATURE"', true],
      ['entity_name contains "store"', true],
      ['"store" in entity_name', true],
      ['"model" not in entity_name', true],
      ['entity_path is not empty', true],
      ['entity_name == `feature-store-fn`', true],
      ['entity_name == "feature\\x2dstore-fn"', true],
      ['account_id == 123456789012', true],
      // A missing attribute is not present: only negations and "is empty" hold.
      ['entity_tags.team == "ml"', false],
      ['entity_tags.team != "ml"', true],
      ['entity_tags.team matches ".*"', false],
      ['entity_tags.team is empty', true],
      ['entity_tags.team is not empty', false],
    ])('%s is %s', (selector, expected) => {
      expect(matchesSelector(selector, attributes)).toBe(expected);
    });

    test('an empty selector matches everything, as in a binding rule', () => {
      expect(matchesSelector('', {})).toBe(true);
      expect(matchesSelector('  ', attributes)).toBe(true);
    });

    test.each([
      ['entity_name = "x"', 'invalid selector "entity_name = \\"x\\"": 1:13 (12): unexpected character "="'],
      ['entity_name ==', 'expected a quoted string, got the end of the selector'],
      ['and entity_name == "x"', 'expected a selector, got "and"'],
      ['entity_name is "x"', 'expected "empty", got "\\"x\\""'],
      ['"x" entity_name', 'expected "in" or "not in" after the value "x"'],
    ])('fails when the selector does not parse: %s', (selector, message) => {
      expect(() => matchesSelector(selector, attributes)).toThrow(message);
    });
  });

  describe('login()', () => {
    beforeEach(async () => {
      // What the aws-iam handler writes: the method and a service rule on the service-name tag.
      await consul.put('/v1/acl/auth-method', awsIamMethod());
      await consul.put('/v1/acl/binding-rule', serviceRule());
    });

    test('a service rule on the service-name tag binds that service for a matching role, and nothing for another tag', () => {
      const featureStore = standIn.login('lambda-mesh', { entity_name: 'feature-store-fn', [`entity_tags.${SERVICE_NAME_TAG}`]: 'feature-store' });
      expect(featureStore).toMatchObject({ ServiceIdentities: [{ ServiceName: 'feature-store' }], NodeIdentities: [], Roles: [], Policies: [], TemplatedPolicies: [] });
      expect(featureStore.token).toMatchObject({ AccessorID: expect.stringMatching(UUID), SecretID: expect.stringMatching(UUID), AuthMethod: 'lambda-mesh', Local: true, ServiceIdentities: [{ ServiceName: 'feature-store' }] });
      expect(standIn.login('lambda-mesh', { entity_name: 'model-a-fn', [`entity_tags.${SERVICE_NAME_TAG}`]: 'model-a-v1' })).toEqual({ ServiceIdentities: [], NodeIdentities: [], Roles: [], Policies: [], TemplatedPolicies: [] });
      expect([...standIn.state.loginTokens.keys()]).toEqual([featureStore.token!.AccessorID]);
    });

    test('an empty selector matches every identity; the BindName is interpolated with lower-cased values, as Consul does', () => {
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'service', BindName: 'fn-${entity_name}' });
      expect(standIn.login('lambda-mesh', { entity_name: 'Model-A' }).ServiceIdentities).toEqual([{ ServiceName: 'fn-model-a' }]);
    });

    test('a role rule is skipped while the role is missing and binds it once it exists; a policy rule likewise', async () => {
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'role', BindName: 'mesh-${entity_name}' });
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'policy', BindName: 'mesh-readers' });
      expect(standIn.login('lambda-mesh', { entity_name: 'reader' })).toEqual({ ServiceIdentities: [], NodeIdentities: [], Roles: [], Policies: [], TemplatedPolicies: [] });
      const policy = (await consul.put('/v1/acl/policy', { Name: 'mesh-readers', Rules: 'service_prefix "" { policy = "read" }' })).body as Record<string, string>;
      const role = (await consul.put('/v1/acl/role', { Name: 'mesh-reader', Policies: [{ Name: 'mesh-readers' }] })).body as Record<string, string>;
      expect(standIn.login('lambda-mesh', { entity_name: 'reader' })).toMatchObject({ Roles: [{ ID: role.ID, Name: 'mesh-reader' }], Policies: [{ ID: policy.ID, Name: 'mesh-readers' }] });
    });

    test('node and templated-policy rules bind node identities in the datacenter and templated policies', () => {
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'node', BindName: 'lambda-${entity_name}', Selector: 'entity_path matches "^/lambda-mesh/"' });
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'templated-policy', BindName: 'builtin/service', BindVars: { Name: '${entity_name}' } });
      expect(standIn.login('lambda-mesh', { entity_name: 'a', entity_path: '/lambda-mesh/' })).toMatchObject({
        NodeIdentities: [{ NodeName: 'lambda-a', Datacenter: 'dc1' }],
        TemplatedPolicies: [{ TemplateName: 'builtin/service', TemplateVariables: { Name: 'a' } }],
      });
      expect(standIn.login('lambda-mesh', { entity_name: 'a', entity_path: '/other/' }).NodeIdentities).toEqual([]);
    });

    test('sees only what the method projects: its configured tags (a missing one as ""), not others', () => {
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'service', BindName: 'untagged', Selector: `entity_tags["${SERVICE_NAME_TAG}"] == ""` });
      expect(standIn.login('lambda-mesh', { entity_name: 'x', 'entity_tags.team': 'ml' }).ServiceIdentities).toEqual([{ ServiceName: 'untagged' }]);
    });

    test('the method\'s MaxTokenTTL sets the token\'s expiry, its TokenLocality the token\'s locality', () => {
      standIn.seedAuthMethod(awsIamMethod({}, { MaxTokenTTL: '1h', TokenLocality: 'global' }));
      const { token } = standIn.login('lambda-mesh', { [`entity_tags.${SERVICE_NAME_TAG}`]: 'feature-store' });
      expect(token!.Local).toBe(false);
      const ttl = Date.parse(token!.ExpirationTime!) - Date.now();
      expect(ttl).toBeGreaterThan(59 * 60 * 1000);
      expect(ttl).toBeLessThanOrEqual(3600 * 1000);
    });

    test('a kubernetes method binds from the service account', () => {
      standIn.seedAuthMethod(kubernetesMethod(standIn.caPem));
      standIn.seedBindingRule({ AuthMethod: 'eks', BindType: 'service', BindName: '${serviceaccount.name}', Selector: 'serviceaccount.namespace == "default" and serviceaccount.name != "vault"' });
      expect(standIn.login('eks', { 'serviceaccount.namespace': 'default', 'serviceaccount.name': 'web' }).ServiceIdentities).toEqual([{ ServiceName: 'web' }]);
      expect(standIn.login('eks', { 'serviceaccount.namespace': 'default', 'serviceaccount.name': 'vault' }).ServiceIdentities).toEqual([]);
    });

    test('the token is accepted with its service identity\'s rights, and POST /v1/acl/logout deletes it (403 for a token no login issued)', async () => {
      await consul.put('/v1/catalog/register', { Node: 'lambda-dc1', Address: '127.0.0.1' });
      const { token } = standIn.login('lambda-mesh', { [`entity_tags.${SERVICE_NAME_TAG}`]: 'feature-store' });
      const loggedIn = consulClient(standIn.connection(token!.SecretID), { retryDelayMs: 1, retries: 1 });
      const node = { Node: 'lambda-dc1', SkipNodeUpdate: true };
      expect((await loggedIn.put('/v1/catalog/register', { ...node, Service: { ID: 'fs-1-sidecar-proxy', Service: 'feature-store-sidecar-proxy', Kind: 'connect-proxy', Proxy: { DestinationServiceName: 'feature-store' } } })).body).toBe(true);
      await expect(loggedIn.put('/v1/catalog/register', { ...node, Service: { ID: 'log-1', Service: 'log-service' } })).rejects.toThrow(
        new RegExp(`token with AccessorID '${token!.AccessorID}' lacks permission 'service:write' on "log-service"`));
      expect((await loggedIn.get('/v1/catalog/node/lambda-dc1')).status).toBe(200);

      const logout = (secret: string): Promise<{ status: number; text: string }> =>
        rawRequest(standIn, { ca: standIn.caPem, servername: standIn.serverName, method: 'POST', path: '/v1/acl/logout', headers: { 'X-Consul-Token': secret } });
      expect(await logout(ConsulStandIn.MANAGEMENT_TOKEN)).toEqual({ status: 403, text: 'Permission denied' });
      expect(await logout(token!.SecretID)).toEqual({ status: 200, text: 'true' });
      expect(standIn.state.loginTokens.has(token!.AccessorID)).toBe(false);
      expect(await logout(token!.SecretID)).toEqual({ status: 403, text: 'ACL not found' });
      await expect(loggedIn.get('/v1/catalog/node/lambda-dc1')).rejects.toThrow(/ACL not found/);
    });

    test('fails when the auth method is missing, or when a matching rule yields an invalid name (Consul fails that login)', () => {
      expect(() => standIn.login('nothing', {})).toThrow('ACL not found: auth method "nothing" not found');
      standIn.seedBindingRule({ AuthMethod: 'lambda-mesh', BindType: 'service', BindName: '${entity_name}' });
      expect(() => standIn.login('lambda-mesh', { entity_name: 'has space' })).toThrow('invalid bind name: "has space"');
    });
  });

  describe('ACL policies', () => {
    const rules = 'service_prefix "" { policy = "read" }';

    test('PUT /v1/acl/policy creates; GET by ID and by name; PUT /v1/acl/policy/:id updates; DELETE answers true', async () => {
      const created = (await consul.put('/v1/acl/policy', { Name: 'mesh-readers', Description: 'read the catalog', Rules: rules, Datacenters: ['dc1'] })).body as Record<string, unknown>;
      expect(created).toEqual({ ID: expect.stringMatching(UUID), Name: 'mesh-readers', Description: 'read the catalog', Rules: rules, Datacenters: ['dc1'], Hash: expect.any(String), CreateIndex: standIn.state.index, ModifyIndex: standIn.state.index });
      const id = String(created.ID);
      expect(await consul.get(`/v1/acl/policy/${id}`)).toEqual({ status: 200, body: created, index: String(created.ModifyIndex) });
      expect((await consul.get('/v1/acl/policy/name/mesh-readers')).body).toEqual(created);

      const updated = (await consul.put(`/v1/acl/policy/${id}`, { Name: 'mesh-readers', Rules: 'node_prefix "" { policy = "read" }' })).body as Record<string, unknown>;
      expect(updated).toEqual({ ID: id, Name: 'mesh-readers', Description: '', Rules: 'node_prefix "" { policy = "read" }', Hash: expect.any(String), CreateIndex: created.CreateIndex, ModifyIndex: standIn.state.index });
      expect(updated.Hash).not.toBe(created.Hash);

      expect((await consul.delete(`/v1/acl/policy/${id}`)).body).toBe(true);
      expect(await consul.get('/v1/acl/policy/name/mesh-readers')).toMatchObject({ status: 404, body: 'ACL policy not found' });
      expect(await consul.get(`/v1/acl/policy/${id}`)).toMatchObject({ status: 404, body: 'ACL policy not found' });
      expect(standIn.state.policies.size).toBe(0);
    });

    test.each<[string, () => [string, Record<string, unknown>], string]>([
      ['a Name that exists', () => ['/v1/acl/policy', { Name: 'mesh-readers' }], 'Invalid Policy: A Policy with Name "mesh-readers" already exists'],
      ['no Name', () => ['/v1/acl/policy', { Rules: rules }], 'Invalid Policy: no Name is set'],
      ['a Name with a dot', () => ['/v1/acl/policy', { Name: 'mesh.readers' }], "Invalid Policy: invalid Name. Only alphanumeric characters, '-' and '_' are allowed"],
      ['an update of a missing policy', () => [`/v1/acl/policy/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, { Name: 'x' }], 'cannot find policy 00000000-0000-4000-8000-000000000000'],
      ['an ID that is no UUID', () => ['/v1/acl/policy/readers', { Name: 'x' }], 'Policy ID invalid UUID'],
      ['a rename onto another policy\'s Name', () => [`/v1/acl/policy/${String(standIn.policy('mesh-writers')!.ID)}`, { Name: 'mesh-readers' }], 'Invalid Policy: A policy with name "mesh-readers" already exists'],
    ])('refuses %s (500)', async (_case, request, message) => {
      standIn.seedPolicy({ Name: 'mesh-readers', Rules: rules });
      standIn.seedPolicy({ Name: 'mesh-writers', Rules: rules });
      const [path, body] = request();
      await expect(once().put(path, body)).rejects.toThrow(`HTTP 500: ${message}`);
      expect([...standIn.state.policies.values()].map((p) => p.Name).sort()).toEqual(['mesh-readers', 'mesh-writers']);
    });

    test('refuses a client-supplied ID on create, and Rules that are not a string (400)', async () => {
      expect(await consul.put('/v1/acl/policy', { ID: crypto.randomUUID(), Name: 'x' })).toMatchObject({ status: 400, body: 'Bad request: Policy ID in URL and payload do not match' });
      expect(await consul.put('/v1/acl/policy', { Name: 'x', Rules: { service_prefix: {} } })).toMatchObject({ status: 400, body: 'Bad request: Policy decoding failed: json: cannot unmarshal object into Go struct field ACLPolicy.Rules of type string' });
    });
  });

  describe('ACL roles', () => {
    test('PUT /v1/acl/role links policies by Name or ID; GET by ID and by name answers both ID and Name; identities are de-duplicated', async () => {
      const readers = standIn.seedPolicy({ Name: 'mesh-readers' });
      const writers = standIn.seedPolicy({ Name: 'mesh-writers' });
      const created = (await consul.put('/v1/acl/role', {
        Name: 'feature-store',
        Description: 'the feature store',
        Policies: [{ Name: 'mesh-readers' }, { ID: writers.ID }, { ID: readers.ID }],
        ServiceIdentities: [{ ServiceName: 'feature-store', Datacenters: ['dc1'] }, { ServiceName: 'feature-store' }],
        NodeIdentities: [{ NodeName: 'lambda-dc1', Datacenter: 'dc1' }],
      })).body as Record<string, unknown>;
      expect(created).toEqual({
        ID: expect.stringMatching(UUID),
        Name: 'feature-store',
        Description: 'the feature store',
        Policies: [{ ID: readers.ID, Name: 'mesh-readers' }, { ID: writers.ID, Name: 'mesh-writers' }],
        ServiceIdentities: [{ ServiceName: 'feature-store' }],
        NodeIdentities: [{ NodeName: 'lambda-dc1', Datacenter: 'dc1' }],
        Hash: expect.any(String),
        CreateIndex: standIn.state.index,
        ModifyIndex: standIn.state.index,
      });
      expect(await consul.get(`/v1/acl/role/${String(created.ID)}`)).toEqual({ status: 200, body: created, index: String(created.ModifyIndex) });
      expect((await consul.get('/v1/acl/role/name/feature-store')).body).toEqual(created);
      expect(standIn.role('feature-store')).toEqual(created);
    });

    test('GET answers the policies\' current names and leaves out deleted policies', async () => {
      const a = standIn.seedPolicy({ Name: 'a' });
      const b = standIn.seedPolicy({ Name: 'b' });
      const role = standIn.seedRole({ Name: 'r', Policies: [{ Name: 'a' }, { Name: 'b' }] });
      await consul.put(`/v1/acl/policy/${String(a.ID)}`, { Name: 'a-renamed' });
      await consul.delete(`/v1/acl/policy/${String(b.ID)}`);
      expect(((await consul.get(`/v1/acl/role/${String(role.ID)}`)).body as Record<string, unknown>).Policies).toEqual([{ ID: a.ID, Name: 'a-renamed' }]);
    });

    test('PUT /v1/acl/role/:id updates; GET answers 404 "ACL role not found" once DELETE (true) removed it', async () => {
      const role = standIn.seedRole({ Name: 'r', ServiceIdentities: [{ ServiceName: 'a' }] });
      const path = `/v1/acl/role/${String(role.ID)}`;
      expect((await consul.put(path, { Name: 'r2', NodeIdentities: [{ NodeName: 'n', Datacenter: 'dc1' }] })).body).toEqual({
        ID: role.ID,
        Name: 'r2',
        Description: '',
        NodeIdentities: [{ NodeName: 'n', Datacenter: 'dc1' }],
        Hash: expect.any(String),
        CreateIndex: role.CreateIndex,
        ModifyIndex: standIn.state.index,
      });
      expect((await consul.delete(path)).body).toBe(true);
      expect(await consul.get(path)).toMatchObject({ status: 404, body: 'ACL role not found' });
      expect(await consul.get('/v1/acl/role/name/r2')).toMatchObject({ status: 404, body: 'ACL role not found' });
    });

    test.each<[string, Record<string, unknown>, string]>([
      ['a policy that does not exist', { Name: 'r', Policies: [{ Name: 'nothing' }] }, 'No such ACL policy with name "nothing"'],
      ['a Name that exists', { Name: 'taken' }, 'Invalid Role: A Role with Name "taken" already exists'],
      ['no Name', { Description: 'x' }, 'Invalid Role: no Name is set'],
      ['a service identity without a name', { Name: 'r', ServiceIdentities: [{ Datacenters: ['dc1'] }] }, 'Service identity is missing the service name field on this role'],
      ['a service identity name with capitals', { Name: 'r', ServiceIdentities: [{ ServiceName: 'Feature' }] }, 'Service identity "Feature" has an invalid name'],
      ['a node identity without a datacenter', { Name: 'r', NodeIdentities: [{ NodeName: 'n' }] }, 'Node identity is missing the datacenter field on this role'],
    ])('refuses %s (500)', async (_case, role, message) => {
      standIn.seedRole({ Name: 'taken' });
      await expect(once().put('/v1/acl/role', role)).rejects.toThrow(`HTTP 500: ${message}`);
      expect(standIn.state.roles.size).toBe(1);
    });
  });

  describe('ACL permissions', () => {
    const rule = '00000000-0000-4000-8000-000000000001';
    test.each<[string, string, unknown, 'acl:read' | 'acl:write']>([
      ['GET', '/v1/acl/auth-methods', undefined, 'acl:read'],
      ['GET', '/v1/acl/auth-method/lambda-mesh', undefined, 'acl:read'],
      ['PUT', '/v1/acl/auth-method', awsIamMethod(), 'acl:write'],
      ['PUT', '/v1/acl/auth-method/lambda-mesh', awsIamMethod(), 'acl:write'],
      ['DELETE', '/v1/acl/auth-method/lambda-mesh', undefined, 'acl:write'],
      ['GET', '/v1/acl/binding-rules', undefined, 'acl:read'],
      ['GET', `/v1/acl/binding-rule/${rule}`, undefined, 'acl:read'],
      ['PUT', '/v1/acl/binding-rule', serviceRule(), 'acl:write'],
      ['DELETE', `/v1/acl/binding-rule/${rule}`, undefined, 'acl:write'],
      ['GET', '/v1/acl/policy/name/x', undefined, 'acl:read'],
      ['PUT', '/v1/acl/policy', { Name: 'x' }, 'acl:write'],
      ['DELETE', `/v1/acl/policy/${rule}`, undefined, 'acl:write'],
      ['GET', `/v1/acl/role/${rule}`, undefined, 'acl:read'],
      ['PUT', '/v1/acl/role', { Name: 'x' }, 'acl:write'],
    ])('%s %s needs %s', async (method, path, body, permission) => {
      const withoutAcl = consulClient(standIn.connection(READER));
      const call = method === 'GET' ? withoutAcl.get(path) : method === 'PUT' ? withoutAcl.put(path, body) : withoutAcl.delete(path);
      await expect(call).rejects.toThrow(new RegExp(`\\(403\\): the token lacks permission or is invalid: Permission denied: token with AccessorID '[0-9a-f-]{36}' lacks permission '${permission}'$`));
      const allowed = consulClient(standIn.connection(permission === 'acl:read' ? ACL_READER : ACL_WRITER));
      const answer = await (method === 'GET' ? allowed.get(path) : method === 'PUT' ? allowed.put(path, body) : allowed.delete(path)).catch((e: Error) => e);
      expect(answer).not.toEqual(expect.objectContaining({ message: expect.stringContaining('(403)') }));
    });

    test('acl:write implies acl:read, and acl:read does not allow writes', async () => {
      const writer = consulClient(standIn.connection(ACL_WRITER));
      expect((await writer.put('/v1/acl/auth-method', awsIamMethod())).status).toBe(200);
      expect((await writer.get('/v1/acl/auth-method/lambda-mesh')).status).toBe(200);
      await expect(consulClient(standIn.connection(ACL_READER)).delete('/v1/acl/auth-method/lambda-mesh')).rejects.toThrow(/lacks permission 'acl:write'$/);
      expect(standIn.state.authMethods.size).toBe(1);
    });
  });

  describe('faults on the ACL endpoints', () => {
    test('failNext and dropNext apply: the client retries and the write lands once', async () => {
      standIn.dropNext(1);
      standIn.failNext(1);
      expect((await consul.put('/v1/acl/auth-method', awsIamMethod())).status).toBe(200);
      expect(standIn.aclWrites()).toHaveLength(3);
      expect(standIn.state.authMethods.size).toBe(1);
    });

    test('delayNext applies: an attempt past the client timeout is retried', async () => {
      standIn.seedAuthMethod(awsIamMethod());
      standIn.delayNext(1, 600);
      const impatient = consulClient(standIn.connection(), { timeoutMs: 200, retryDelayMs: 1 });
      expect((await impatient.get('/v1/acl/auth-method/lambda-mesh')).status).toBe(200);
      expect(standIn.requests).toHaveLength(2);
    });
  });
});
