import * as crypto from 'crypto';
import type { CustomResourceEvent } from '../../../constructs/core/private/cfn-response';
import { handler } from '../../../constructs/consul/private/secrets-handler';
import { createServerCertificate } from '../../../constructs/consul/private/secrets-handler/x509';
import { ConsoleCapture, expectNoSecretIn, expectSelfContainedBundle, STAND_IN_ACCESS_KEY_ID, storedSecrets, useAwsStandIns } from '../../harness/handler-tests';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';

const REGION = 'us-east-1';
const arn = (name: string): string => `arn:aws:secretsmanager:${REGION}:123456789012:secret:consul/${name}-AbCdEf`;

const SECRETS = {
  GossipKey: arn('gossip-key'),
  CaCertificate: arn('ca-certificate'),
  CaPrivateKey: arn('ca-private-key'),
  ServerCertificate: arn('server-certificate'),
  ManagementToken: arn('management-token'),
  AgentToken: arn('agent-token'),
};
const SCOPED = {
  'intentions-writer': arn('token-intentions-writer'),
  'identity-registrar': arn('token-identity-registrar'),
  'mesh-gateway': arn('token-mesh-gateway'),
};
const EXTRA_TOKEN = arn('token-new-role');
const ALL_ARNS = [...Object.values(SECRETS), ...Object.values(SCOPED), EXTRA_TOKEN];

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------------------------------------------
// Events.
// ---------------------------------------------------------------------------------------------------------------

function properties(overrides: { Datacenter?: string; ScopedTokens?: Record<string, string> } = {}): Record<string, unknown> {
  return {
    // The Provider framework passes its ServiceToken among the properties: the handler ignores it.
    ServiceToken: 'arn:aws:lambda:us-east-1:123456789012:function:provider-framework-onEvent',
    Datacenter: overrides.Datacenter ?? 'dc1',
    ServerCertificateValidityDays: '365',
    Secrets: SECRETS,
    ScopedTokens: overrides.ScopedTokens ?? SCOPED,
  };
}

const common = {
  RequestId: 'b6c2b4e1-0000-4000-8000-000000000000',
  StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/consul/00000000-0000-0000-0000-000000000000',
  LogicalResourceId: 'Secrets',
  ResourceType: 'Custom::ConsulSecrets',
  ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x',
};
const create = (props = properties()): CustomResourceEvent => ({ ...common, RequestType: 'Create', ResourceProperties: props });
const update = (props: Record<string, unknown>, old = properties(), physicalResourceId = 'consul-secrets'): CustomResourceEvent => ({
  ...common,
  RequestType: 'Update',
  PhysicalResourceId: physicalResourceId,
  ResourceProperties: props,
  OldResourceProperties: old,
});

// ---------------------------------------------------------------------------------------------------------------

describe('secrets handler against a local Secrets Manager stand-in (JSON 1.1 protocol)', () => {
  const standIn = new SecretsManagerStandIn();
  const capture = new ConsoleCapture();
  const { logged } = capture;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    useAwsStandIns(REGION, { AWS_ENDPOINT_URL_SECRETS_MANAGER: await standIn.start() });
  });

  afterAll(async () => {
    process.env = savedEnv;
    await standIn.stop();
  });

  beforeEach(() => {
    standIn.reset(ALL_ARNS);
    capture.start();
  });

  afterEach(() => {
    // Every test, not only the dedicated one: no stored value may appear in any log line or error message.
    expectNoSecretIn(capture.stop(), storedSecrets(standIn.everStored));
  });

  /** Runs the handler and records the message of any error it throws, for the leak check. */
  const run = (event: CustomResourceEvent): ReturnType<typeof handler> => capture.run(() => handler(event));
  const logEntries = (): Array<Record<string, string>> => capture.entries();

  test('Create writes the 6 cluster secrets and every scoped token with exactly the documented JSON keys', async () => {
    const response = await run(create());

    const keys = (a: string): string[] => Object.keys(standIn.json(a)).sort();
    expect(keys(SECRETS.GossipKey)).toEqual(['GossipKey']);
    expect(keys(SECRETS.CaCertificate)).toEqual(['CertificatePem']);
    expect(keys(SECRETS.CaPrivateKey)).toEqual(['PrivateKeyPem']);
    expect(keys(SECRETS.ServerCertificate)).toEqual(['CertificatePem', 'PrivateKeyPem']);
    for (const token of [SECRETS.ManagementToken, SECRETS.AgentToken, ...Object.values(SCOPED)]) {
      expect(keys(token)).toEqual(['AccessorID', 'SecretID']);
    }
    expect(standIn.puts().sort()).toEqual([...Object.values(SECRETS), ...Object.values(SCOPED)].sort());
    expect(standIn.value(EXTRA_TOKEN)).toBeUndefined();

    const caCert = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    expect(response).toEqual({ PhysicalResourceId: 'consul-secrets', Data: { CaFingerprintSha256: caCert.fingerprint256 } });
    expect(response.Data?.CaFingerprintSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  test('the gossip key is 32 random bytes in base64; tokens are distinct UUID v4s', async () => {
    await run(create());
    expect(Buffer.from(standIn.json(SECRETS.GossipKey).GossipKey, 'base64')).toHaveLength(32);
    const ids = [SECRETS.ManagementToken, SECRETS.AgentToken, ...Object.values(SCOPED)].flatMap((a) => {
      const token = standIn.json(a);
      return [token.AccessorID, token.SecretID];
    });
    for (const id of ids) {
      expect(id).toMatch(UUID_V4);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('the stored server certificate verifies against the stored CA and matches its stored key', async () => {
    await run(create());
    const caCert = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    const caKey = crypto.createPrivateKey(standIn.json(SECRETS.CaPrivateKey).PrivateKeyPem);
    const server = standIn.json(SECRETS.ServerCertificate);
    const cert = new crypto.X509Certificate(server.CertificatePem);
    expect(standIn.json(SECRETS.CaPrivateKey).PrivateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/); // PKCS#8
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toBe('CN=lambda-mesh Consul CA dc1');
    expect(caCert.checkPrivateKey(caKey)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.checkHost('server.dc1.consul')).toBe('server.dc1.consul');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.subjectAltName).toBe('DNS:server.dc1.consul, DNS:localhost, IP Address:127.0.0.1');
    expect(cert.checkPrivateKey(crypto.createPrivateKey(server.PrivateKeyPem))).toBe(true);
    const days = (Date.parse(cert.validTo) - Date.now()) / (24 * 3600 * 1000);
    expect(Math.round(days)).toBe(365);
  });

  test('requests reach AWS_ENDPOINT_URL_SECRETS_MANAGER, SigV4-signed for secretsmanager in us-east-1', async () => {
    await run(create());
    expect(standIn.requests.length).toBeGreaterThan(0);
    for (const request of standIn.requests) {
      expect(request.authorization).toMatch(
        new RegExp(`^AWS4-HMAC-SHA256 Credential=${STAND_IN_ACCESS_KEY_ID}/\\d{8}/${REGION}/secretsmanager/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$`),
      );
      expect(request.amzDate).toMatch(/^\d{8}T\d{6}Z$/);
      expect(request.contentType).toBe('application/x-amz-json-1.1');
      expect(request.target).toMatch(/^secretsmanager\.(GetSecretValue|PutSecretValue)$/);
    }
    // The SDK fills ClientRequestToken (an idempotency token), so its own retries of a Put do not add versions.
    for (const put of standIn.requests.filter((r) => r.target === 'secretsmanager.PutSecretValue')) {
      expect(put.body.ClientRequestToken).toMatch(UUID_V4);
    }
  });

  test('logs one JSON line per secret: generated with a reason, then kept', async () => {
    await run(create());
    const entries = logEntries();
    expect(entries).toHaveLength(Object.keys(SECRETS).length + Object.keys(SCOPED).length);
    expect(entries).toContainEqual({ action: 'generated', item: 'ServerCertificate', secretArn: SECRETS.ServerCertificate, reason: 'no value yet' });
    expect(entries).toContainEqual({ action: 'generated', item: 'ScopedToken:mesh-gateway', secretArn: SCOPED['mesh-gateway'], reason: 'no value yet' });
    // The CA key goes first: a run interrupted after it is completed by the next one (see the test below).
    expect(entries.slice(0, 3).map((e) => e.item)).toEqual(['CaPrivateKey', 'CaCertificate', 'ServerCertificate']);

    logged.length = 0;
    await run(create());
    expect(logEntries().every((e) => e.action === 'kept')).toBe(true);
  });

  test('a retried Create changes nothing', async () => {
    const first = await run(create());
    const before = standIn.snapshot();
    standIn.requests.length = 0;

    const second = await run(create());
    expect(standIn.puts()).toEqual([]);
    expect(standIn.snapshot()).toEqual(before);
    expect(second).toEqual(first);
  });

  test('Update with the same Datacenter changes nothing and keeps the PhysicalResourceId', async () => {
    const created = await run(create());
    const before = standIn.snapshot();
    standIn.requests.length = 0;

    const updated = await run(update(properties(), properties(), 'consul-secrets-from-an-older-version'));
    expect(standIn.puts()).toEqual([]);
    expect(standIn.snapshot()).toEqual(before);
    expect(updated).toEqual({ PhysicalResourceId: 'consul-secrets-from-an-older-version', Data: created.Data });
  });

  test('Update with a new Datacenter reissues only the server certificate, signed by the same CA', async () => {
    await run(create());
    const before = standIn.snapshot();
    standIn.requests.length = 0;

    const updated = await run(update(properties({ Datacenter: 'dc2' })));
    expect(standIn.puts()).toEqual([SECRETS.ServerCertificate]);
    expect(standIn.snapshot()).toEqual({ ...before, [SECRETS.ServerCertificate]: standIn.value(SECRETS.ServerCertificate) });
    expect(standIn.value(SECRETS.ServerCertificate)).not.toEqual(before[SECRETS.ServerCertificate]);

    const caCert = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    const cert = new crypto.X509Certificate(standIn.json(SECRETS.ServerCertificate).CertificatePem);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.subject).toBe('CN=server.dc2.consul');
    expect(cert.checkHost('server.dc2.consul')).toBe('server.dc2.consul');
    expect(cert.checkHost('server.dc1.consul')).toBeUndefined();
    expect(updated.PhysicalResourceId).toBe('consul-secrets');
    expect(updated.Data?.CaFingerprintSha256).toBe(caCert.fingerprint256);
    expect(logEntries()).toContainEqual(expect.objectContaining({ action: 'reissued', item: 'ServerCertificate', reason: expect.stringMatching(/server\.dc2\.consul/) }));
  });

  test('Update adding a scoped token writes only it; a removed one is left alone', async () => {
    await run(create());
    const before = standIn.snapshot();
    standIn.requests.length = 0;

    const withoutMeshGateway = Object.fromEntries(Object.entries(SCOPED).filter(([role]) => role !== 'mesh-gateway'));
    await run(update(properties({ ScopedTokens: { ...withoutMeshGateway, 'new-role': EXTRA_TOKEN } })));
    expect(standIn.puts()).toEqual([EXTRA_TOKEN]);
    expect(Object.keys(standIn.json(EXTRA_TOKEN)).sort()).toEqual(['AccessorID', 'SecretID']);
    expect(standIn.requests.some((r) => r.body.SecretId === SCOPED['mesh-gateway'])).toBe(false);
    expect(standIn.snapshot()).toEqual({ ...before, [EXTRA_TOKEN]: standIn.value(EXTRA_TOKEN) });
  });

  test('Update reissues a server certificate that expires within 30 days, with the same CA', async () => {
    await run(create());
    const ca = { certificatePem: standIn.json(SECRETS.CaCertificate).CertificatePem, privateKeyPem: standIn.json(SECRETS.CaPrivateKey).PrivateKeyPem };
    const expiring = createServerCertificate({ ca, commonName: 'server.dc1.consul', dnsNames: ['server.dc1.consul', 'localhost'], ipAddresses: ['127.0.0.1'], validityDays: 20 });
    standIn.setValue(SECRETS.ServerCertificate, JSON.stringify({ CertificatePem: expiring.certificatePem, PrivateKeyPem: expiring.privateKeyPem }));
    standIn.requests.length = 0;

    await run(update(properties()));
    expect(standIn.puts()).toEqual([SECRETS.ServerCertificate]);
    const cert = new crypto.X509Certificate(standIn.json(SECRETS.ServerCertificate).CertificatePem);
    expect(Date.parse(cert.validTo) - Date.now()).toBeGreaterThan(300 * 24 * 3600 * 1000);
    expect(cert.verify(new crypto.X509Certificate(ca.certificatePem).publicKey)).toBe(true);
    expect(logEntries()).toContainEqual(expect.objectContaining({ action: 'reissued', reason: expect.stringMatching(/within 30 days/) }));
  });

  test('replaces values that are not in the documented format (e.g. a password CloudFormation generated)', async () => {
    standIn.setValue(SECRETS.GossipKey, 'Xk8#generated-by-GenerateSecretString');
    standIn.setValue(SECRETS.AgentToken, JSON.stringify({ AccessorID: 'not-a-uuid', SecretID: 'also-not-a-uuid' }));
    standIn.setValue(SECRETS.ServerCertificate, '{"CertificatePem":"placeholder"}');
    await run(create());
    expect(standIn.json(SECRETS.ServerCertificate).CertificatePem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(logEntries()).toContainEqual({
      action: 'reissued',
      item: 'ServerCertificate',
      secretArn: SECRETS.ServerCertificate,
      reason: 'existing value is not in the expected format',
    });
    expect(Buffer.from(standIn.json(SECRETS.GossipKey).GossipKey, 'base64')).toHaveLength(32);
    expect(standIn.json(SECRETS.AgentToken).AccessorID).toMatch(UUID_V4);
    expect(logEntries()).toContainEqual({ action: 'generated', item: 'GossipKey', secretArn: SECRETS.GossipKey, reason: 'existing value is not in the expected format' });
  });

  test('keeps hand-set values that are in the documented format', async () => {
    const token = JSON.stringify({ AccessorID: '00000000-0000-1000-8000-000000000001', SecretID: '00000000-0000-1000-8000-000000000002' });
    standIn.setValue(SECRETS.ManagementToken, token);
    await run(create());
    expect(standIn.value(SECRETS.ManagementToken)).toBe(token);
    expect(standIn.puts()).not.toContain(SECRETS.ManagementToken);
  });

  test('completes an interrupted CA: a stored CA key without a certificate gets a certificate for the same key', async () => {
    await run(create());
    const serverBefore = standIn.value(SECRETS.ServerCertificate);
    const oldCa = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    standIn.clearValue(SECRETS.CaCertificate);
    standIn.requests.length = 0;

    await run(create());
    expect(standIn.puts()).toEqual([SECRETS.CaCertificate]);
    const newCa = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    expect(newCa.publicKey.export({ format: 'jwk' })).toEqual(oldCa.publicKey.export({ format: 'jwk' }));
    // The server certificate is kept, and chains to the new CA certificate.
    expect(standIn.value(SECRETS.ServerCertificate)).toBe(serverBefore);
    const cert = new crypto.X509Certificate(standIn.json(SECRETS.ServerCertificate).CertificatePem);
    expect(cert.checkIssued(newCa)).toBe(true);
    expect(cert.verify(newCa.publicKey)).toBe(true);
  });

  test('a new CA key (the old one lost) also reissues the server certificate', async () => {
    await run(create());
    standIn.clearValue(SECRETS.CaPrivateKey);
    standIn.requests.length = 0;

    await run(create());
    expect(standIn.puts()).toEqual([SECRETS.CaPrivateKey, SECRETS.CaCertificate, SECRETS.ServerCertificate]);
    const caCert = new crypto.X509Certificate(standIn.json(SECRETS.CaCertificate).CertificatePem);
    const cert = new crypto.X509Certificate(standIn.json(SECRETS.ServerCertificate).CertificatePem);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(logEntries()).toContainEqual(expect.objectContaining({ action: 'reissued', item: 'ServerCertificate', reason: 'not signed by the current CA' }));
  });

  test('Delete calls nothing and returns the PhysicalResourceId', async () => {
    await run(create());
    standIn.requests.length = 0;
    const before = standIn.snapshot();
    const response = await run({ ...common, RequestType: 'Delete', PhysicalResourceId: 'consul-secrets', ResourceProperties: properties() });
    expect(response).toEqual({ PhysicalResourceId: 'consul-secrets' });
    expect(standIn.requests).toEqual([]);
    expect(standIn.snapshot()).toEqual(before);
  });

  test('fails when PutSecretValue is denied, naming the item, the operation and the secret ARN', async () => {
    standIn.faults = [
      {
        operation: 'PutSecretValue',
        secretArn: SECRETS.AgentToken,
        type: 'AccessDeniedException',
        message: `User: arn:aws:sts::123456789012:assumed-role/handler/fn is not authorized to perform: secretsmanager:PutSecretValue on resource: ${SECRETS.AgentToken} because no identity-based policy allows the secretsmanager:PutSecretValue action`,
      },
    ];
    await expect(run(create())).rejects.toThrow(
      `AgentToken: PutSecretValue on ${SECRETS.AgentToken} failed: AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/handler/fn is not authorized`,
    );
  });

  test('fails when GetSecretValue is denied (KMS decrypt not allowed), naming the secret ARN', async () => {
    standIn.faults = [{ operation: 'GetSecretValue', secretArn: SECRETS.CaPrivateKey, type: 'AccessDeniedException', message: 'Access to KMS is not allowed' }];
    await expect(run(create())).rejects.toThrow(`CaPrivateKey: GetSecretValue on ${SECRETS.CaPrivateKey} failed: AccessDeniedException: Access to KMS is not allowed`);
    expect(standIn.puts()).toEqual([]);
  });

  test('fails when a secret does not exist, naming its ARN', async () => {
    standIn.deleteSecret(SECRETS.GossipKey);
    await expect(run(create())).rejects.toThrow(`GossipKey: PutSecretValue on ${SECRETS.GossipKey} failed: ResourceNotFoundException: Secrets Manager can't find the specified secret.`);
  });

  test('fails when the properties are invalid, before calling Secrets Manager', async () => {
    await expect(run(create({ ...properties(), Datacenter: 'DC_1' }))).rejects.toThrow(/Datacenter must be a DNS-1123 label .*"DC_1"/);
    await expect(run(create({ ...properties(), ServerCertificateValidityDays: '0' }))).rejects.toThrow(/ServerCertificateValidityDays must be a whole number of days from 1 to 3650, got "0"/);
    await expect(run(create({ ...properties(), Secrets: { ...SECRETS, AgentToken: 'agent-token' } }))).rejects.toThrow(/Secrets.AgentToken must be a Secrets Manager secret ARN, got "agent-token"/);
    await expect(run(create(properties({ ScopedTokens: { 'mesh-gateway': SECRETS.AgentToken } })))).rejects.toThrow(
      /AgentToken and ScopedTokens.mesh-gateway are the same secret/,
    );
    expect(standIn.requests).toEqual([]);
  });

  test('never logs a secret value (console output captured over Create, Updates and a failure)', async () => {
    standIn.setValue(SECRETS.GossipKey, 'Xk8#generated-by-GenerateSecretString');
    await run(create());
    await run(update(properties({ Datacenter: 'dc2', ScopedTokens: { ...SCOPED, 'new-role': EXTRA_TOKEN } })));
    standIn.faults = [{ operation: 'PutSecretValue', secretArn: SECRETS.ServerCertificate, type: 'AccessDeniedException', message: 'denied' }];
    await expect(run(update(properties({ Datacenter: 'dc3' })))).rejects.toThrow(/ServerCertificate: PutSecretValue/);

    expect(logged.length).toBeGreaterThan(10);
    for (const entry of logEntries()) {
      expect(Object.keys(entry).every((k) => ['action', 'item', 'secretArn', 'reason', 'requestType'].includes(k))).toBe(true);
    }
    const text = capture.text();
    expectNoSecretIn(text, storedSecrets(standIn.everStored));
    // Spelled out, for the reader: no PEM, no SecretID, no gossip key.
    expect(text).not.toContain(standIn.json(SECRETS.ManagementToken).SecretID);
    expect(text).not.toContain(standIn.json(SECRETS.GossipKey).GossipKey);
    expect(text).not.toContain('-----BEGIN');
  });
});

describe('secrets handler bundle', () => {
  test('esbuild bundles it for nodejs22.x with only @aws-sdk/* (the runtime SDK) and Node built-ins external', async () => {
    // No aws-cdk-lib or other library got pulled in: the handler and its x509 module only.
    await expectSelfContainedBundle(
      'constructs/consul/private/secrets-handler/index.ts',
      ['constructs/consul/private/secrets-handler/index.ts', 'constructs/consul/private/secrets-handler/x509.ts', 'constructs/core/private/handler-log.ts'],
      ['@aws-sdk/client-secrets-manager'],
    );
  });
});
