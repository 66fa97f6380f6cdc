import * as crypto from 'crypto';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { connectionFromSecrets, consulClient } from '../../../constructs/intentions/private/consul-client';
import { handler as registrar, newSsmClient } from '../../../constructs/intentions/private/registrar-handler';
import { handler, parseEnvironment, rotate, type RotationSummary } from '../../../constructs/intentions/private/rotation-handler';
import {
  ConsoleCapture,
  consulEnvironment,
  expectNoSecretIn,
  expectSelfContainedBundle,
  messageOnly,
  putConsulSecrets,
  STAND_IN_ACCESS_KEY_ID,
  storedSecrets,
  useAwsStandIns,
} from '../../harness/handler-tests';
import { CloudWatchStandIn } from '../../harness/stand-ins/cloudwatch';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';
import { SsmStandIn } from '../../harness/stand-ins/ssm';
import { A, ACCOUNT, B, CONSUL_SECRETS, KMS_KEY, MESH, NODE, parameter, PREFIX, REGION, registrarProperties, STACK_ID } from './fixtures';

const METRIC_NAMESPACE = 'LambdaMesh/Identities';
/** The rotation function's token: service:write on the identities (leaf certificates), nothing else. */
const ROTATION_TOKEN = '7d3f0b52-0000-4000-8000-00000000beef';
const REGISTRAR_TOKEN = '7d3f0b52-0000-4000-8000-00000000f00d';

const HOUR = 3600 * 1000;

/** Node's serial (upper-case hex) as Consul writes it (lower-case hex bytes joined by ':'). */
const consulSerial = (hex: string): string => (hex.toLowerCase().match(/../g) ?? []).join(':');

describe('certificate rotation against local Consul, SSM and CloudWatch stand-ins', () => {
  const ssm = new SsmStandIn({ region: REGION, account: ACCOUNT });
  const cloudWatch = new CloudWatchStandIn();
  const secrets = new SecretsManagerStandIn();
  let consul: ConsulStandIn;
  const capture = new ConsoleCapture();
  const { logged } = capture;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    const [ssmEndpoint, cloudWatchEndpoint, secretsEndpoint] = await Promise.all([ssm.start(), cloudWatch.start(), secrets.start()]);
    useAwsStandIns(REGION, {
      AWS_ENDPOINT_URL_SSM: ssmEndpoint,
      AWS_ENDPOINT_URL_CLOUDWATCH: cloudWatchEndpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsEndpoint,
      PARAMETER_PREFIX: PREFIX,
      PARTITION: 'default',
      NAMESPACE: 'default',
      KMS_KEY_ID: KMS_KEY,
      IDENTITIES: JSON.stringify([A.name, B.name]),
      METRIC_NAMESPACE,
      MESH_NAME: MESH,
    });
  });

  afterAll(async () => {
    process.env = savedEnv;
    await Promise.all([ssm.stop(), cloudWatch.stop(), secrets.stop()]);
  });

  beforeEach(async () => {
    consul = await ConsulStandIn.start({
      tokens: {
        [ROTATION_TOKEN]: ['service:write:model-'],
        [REGISTRAR_TOKEN]: [`node:write:${NODE}`, 'service:write:model-'],
      },
    });
    ssm.reset();
    cloudWatch.reset();
    Object.assign(process.env, consulEnvironment(consul, CONSUL_SECRETS), { IDENTITIES: JSON.stringify([A.name, B.name]) });
    capture.start();
  });

  afterEach(async () => {
    expectNoSecretIn(capture.stop(), [ROTATION_TOKEN, REGISTRAR_TOKEN, ...storedSecrets(ssm.everStored, ['privateKeyPEM', 'certPEM'])]);
    await consul.close();
  });

  const useToken = (token: string): void => putConsulSecrets(secrets, consul, CONSUL_SECRETS, token);

  /** Registers the identities as a deployment does (the registrar custom resource), then hands over to rotation. */
  async function deploy(identities = [A, B]): Promise<void> {
    useToken(REGISTRAR_TOKEN);
    await registrar({
      RequestType: 'Create',
      StackId: STACK_ID,
      ResourceProperties: registrarProperties(identities),
    });
    useToken(ROTATION_TOKEN);
    ssm.requests.length = 0;
    consul.resetRequests();
    logged.length = 0;
  }

  /** The Lambda entry point, as EventBridge calls it: everything from the environment, the system clock. */
  const runHandler = (): Promise<RotationSummary> => capture.run(() => handler(), messageOnly);

  /** The same run with an injected clock. */
  const runAt = (now: Date): Promise<RotationSummary> =>
    capture.run(
      async () =>
        rotate(parseEnvironment(process.env), {
          consul: consulClient(await connectionFromSecrets()),
          ssm: newSsmClient(),
          cloudWatch: new CloudWatchClient({}),
          now: () => now,
        }),
      messageOnly,
    );

  function certificate(identity: string): crypto.X509Certificate {
    const value = ssm.parameter(parameter(identity))!.value;
    return new crypto.X509Certificate((JSON.parse(value) as { certPEM: string }).certPEM);
  }

  const leafRequests = (): string[] => consul.requests.filter((r) => r.path.startsWith('/v1/agent/connect/ca/leaf/')).map((r) => r.path.split('/').at(-1)!);
  const logEntries = (): Array<Record<string, string | number>> => capture.entries();

  test('fresh bundles are kept; SecondsToExpiry (the smallest time left) and RotatedCertificates are published, SigV4-signed', async () => {
    await deploy([A]);
    consul.leafTtlMs = 48 * HOUR; // B's certificate is the one closest to expiry
    await deploy([B]);
    const bExpiry = Date.parse(certificate(B.name).validTo);

    const started = Date.now();
    const summary = await runHandler();
    expect(summary).toMatchObject({ meshName: MESH, rotated: 0, failed: [] });
    expect(summary.identities.map((o) => o.result)).toEqual(['kept', 'kept']);
    expect(ssm.calls('PutParameter')).toEqual([]);
    expect(leafRequests()).toEqual([]);

    const [secondsToExpiry] = cloudWatch.datums('SecondsToExpiry');
    expect(secondsToExpiry).toMatchObject({ namespace: METRIC_NAMESPACE, dimensions: { MeshName: MESH }, unit: 'Seconds' });
    expect(secondsToExpiry.value).toBeLessThanOrEqual(Math.floor((bExpiry - started) / 1000));
    expect(secondsToExpiry.value).toBeGreaterThan(Math.floor((bExpiry - started) / 1000) - 10);
    expect(summary.minSecondsToExpiry).toBe(secondsToExpiry.value);
    expect(cloudWatch.datums('RotatedCertificates')).toEqual([expect.objectContaining({ namespace: METRIC_NAMESPACE, dimensions: { MeshName: MESH }, value: 0, unit: 'Count' })]);

    expect(cloudWatch.requests).toHaveLength(1);
    const [request] = cloudWatch.requests;
    expect(request.target).toBe('GraniteServiceVersion20100801.PutMetricData');
    expect(request.contentType).toBe('application/x-amz-json-1.0');
    expect(request.authorization).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=${STAND_IN_ACCESS_KEY_ID}/\\d{8}/${REGION}/monitoring/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$`),
    );
    for (const r of ssm.requests) {
      expect(r.authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${STAND_IN_ACCESS_KEY_ID}/\\d{8}/${REGION}/ssm/aws4_request, `));
      expect(r.body).toMatchObject({ WithDecryption: true });
    }
  });

  test('rotates a certificate with less than half its lifetime left (clock injected) once Consul holds a new leaf', async () => {
    await deploy();
    const cert = certificate(A.name);
    const validFrom = Date.parse(cert.validFrom);
    const validTo = Date.parse(cert.validTo);
    const lifetime = validTo - validFrom;
    const serialBefore = cert.serialNumber;

    // Just over half the lifetime left: kept.
    await runAt(new Date(validTo - lifetime / 2 - 60_000));
    expect(ssm.calls('PutParameter')).toEqual([]);
    expect(leafRequests()).toEqual([]);

    // Just under half left: due. Consul still holds the same leaf (it renews between 60% and 90%): pending.
    const due = new Date(validTo - lifetime / 2 + 60_000);
    const pending = await runAt(due);
    expect(pending.identities).toEqual([
      { identity: A.name, result: 'pending', reason: 'half-life', secondsToExpiry: Math.floor((validTo - due.getTime()) / 1000) },
      expect.objectContaining({ identity: B.name, result: 'pending', reason: 'half-life' }),
    ]);
    expect(ssm.calls('PutParameter')).toEqual([]);
    expect(leafRequests()).toEqual([A.name, B.name]);

    // Consul renewed A's leaf: the next run writes it, and only it.
    consul.state.leaves.delete(A.name);
    cloudWatch.reset();
    const rotated = await runAt(due);
    expect(rotated.rotated).toBe(1);
    expect(rotated.identities.map((o) => o.result)).toEqual(['rotated', 'pending']);
    expect(ssm.calls('PutParameter')).toEqual([parameter(A.name)]);
    expect(certificate(A.name).serialNumber).not.toBe(serialBefore);
    expect(certificate(A.name).serialNumber).toBe(consul.state.leaves.get(A.name)!.serial.replace(/:/g, '').toUpperCase());
    expect(ssm.parameter(parameter(A.name))).toMatchObject({ type: 'SecureString', keyId: KMS_KEY, tier: 'Standard', version: 2 });
    expect(cloudWatch.datums('RotatedCertificates').map((d) => d.value)).toEqual([1]);
    // B (still the old certificate) is now the closest to expiry.
    expect(cloudWatch.datums('SecondsToExpiry').map((d) => d.value)).toEqual([Math.floor((Date.parse(certificate(B.name).validTo) - due.getTime()) / 1000)]);
    expect(cloudWatch.datums('SecondsToExpiry')[0].timestamp).toEqual(due);
    expect(logEntries()).toContainEqual(expect.objectContaining({ action: 'rotated', identity: A.name, reason: 'half-life', previousSerial: consulSerial(serialBefore) }));
  });

  test('expiry-driven with a short leaf TTL: an expired certificate is replaced by the entry point', async () => {
    consul.leafTtlMs = 1500;
    await deploy([A]);
    process.env.IDENTITIES = JSON.stringify([A.name]);
    const before = certificate(A.name);
    await new Promise((r) => setTimeout(r, 1600));

    const summary = await runHandler();
    expect(summary.identities).toEqual([expect.objectContaining({ identity: A.name, result: 'rotated', reason: 'half-life' })]);
    const after = certificate(A.name);
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(Date.parse(after.validTo)).toBeGreaterThan(Date.parse(before.validTo));
  });

  test('a missing bundle is recreated; an unusable one is replaced', async () => {
    await deploy();
    ssm.deleteParameter(parameter(A.name));
    // B's value is a bundle whose key does not match its certificate.
    const stored = JSON.parse(ssm.parameter(parameter(B.name))!.value) as Record<string, unknown>;
    const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    ssm.setParameter({ name: parameter(B.name), type: 'SecureString', keyId: KMS_KEY, tier: 'Standard', value: JSON.stringify({ ...stored, privateKeyPEM: otherKey }) });

    const summary = await runHandler();
    expect(summary.identities).toEqual([
      expect.objectContaining({ identity: A.name, result: 'rotated', reason: 'missing' }),
      expect.objectContaining({ identity: B.name, result: 'rotated', reason: 'unusable' }),
    ]);
    expect(ssm.parameter(parameter(A.name))).toMatchObject({ type: 'SecureString', keyId: KMS_KEY, version: 1 });
    const b = JSON.parse(ssm.parameter(parameter(B.name))!.value) as Record<string, string>;
    expect(new crypto.X509Certificate(b.certPEM).checkPrivateKey(crypto.createPrivateKey(b.privateKeyPEM))).toBe(true);
    expect(cloudWatch.datums('RotatedCertificates').map((d) => d.value)).toEqual([2]);
  });

  test('a CA rotation rewrites every bundle with a leaf of the new root and the new roots', async () => {
    await deploy();
    const newRoot = consul.rotateConnectCa();
    const summary = await runHandler();
    expect(summary.identities.map((o) => [o.result, o.reason])).toEqual([
      ['rotated', 'ca-roots-changed'],
      ['rotated', 'ca-roots-changed'],
    ]);
    for (const identity of [A, B]) {
      expect(certificate(identity.name).verify(new crypto.X509Certificate(newRoot.ca.certificatePem).publicKey)).toBe(true);
      const bundle = JSON.parse(ssm.parameter(parameter(identity.name))!.value) as Record<string, string>;
      expect(bundle.rootCertPEM.startsWith(newRoot.ca.certificatePem.trim())).toBe(true);
    }
  });

  test('one failing identity does not stop the others; the run publishes, then throws naming it', async () => {
    await deploy();
    ssm.deleteParameter(parameter(A.name));
    ssm.deleteParameter(parameter(B.name));
    ssm.faults = [{ operation: 'PutParameter', name: parameter(A.name), type: 'AccessDeniedException', message: 'not authorized to perform: kms:GenerateDataKey' }];

    await expect(runHandler()).rejects.toThrow(
      `certificate rotation for mesh ${MESH}: 1 of 2 identities failed: ${A.name} (${A.name}: PutParameter on ${parameter(A.name)} failed: AccessDeniedException: not authorized to perform: kms:GenerateDataKey)`,
    );
    expect(ssm.parameter(parameter(B.name))).toBeDefined();
    expect(ssm.parameter(parameter(A.name))).toBeUndefined();
    // A has no certificate at all: SecondsToExpiry is 0, so an alarm on it fires too.
    expect(cloudWatch.datums('SecondsToExpiry').map((d) => d.value)).toEqual([0]);
    expect(cloudWatch.datums('RotatedCertificates').map((d) => d.value)).toEqual([1]);
  });

  test('403: an identity the token may not issue a certificate for fails with a clear error naming the call and the permission', async () => {
    await deploy();
    consul.tokens.set(ROTATION_TOKEN, [`service:write:${B.name}`]);
    ssm.deleteParameter(parameter(A.name));
    await expect(runHandler()).rejects.toThrow(
      new RegExp(`1 of 2 identities failed: ${A.name} \\(Consul refused GET /v1/agent/connect/ca/leaf/${A.name} \\(403\\): the token lacks permission or is invalid: Permission denied: .*lacks permission 'service:write' on "${A.name}"\\)$`),
    );

    consul.tokens.delete(ROTATION_TOKEN);
    await expect(runHandler()).rejects.toThrow(
      `1 of 2 identities failed: ${A.name} (Consul refused GET /v1/agent/connect/ca/roots (403): the token lacks permission or is invalid: ACL not found)`,
    );
  });

  test('a revoked token fails the run even when no certificate is due: the CA roots could not be checked', async () => {
    await deploy();
    consul.tokens.delete(ROTATION_TOKEN);
    await expect(runHandler()).rejects.toThrow(
      `certificate rotation for mesh ${MESH}: could not read the CA roots: Consul refused GET /v1/agent/connect/ca/roots (403): the token lacks permission or is invalid: ACL not found`,
    );
    expect(ssm.calls('PutParameter')).toEqual([]);
    // The stored certificates are still known: the metric is still published.
    expect(cloudWatch.datums('SecondsToExpiry')).toHaveLength(1);
  });

  test('fails the run when PutMetricData is refused, after rotating', async () => {
    await deploy();
    ssm.deleteParameter(parameter(A.name));
    cloudWatch.fault = { type: 'AccessDenied', message: 'not authorized to perform: cloudwatch:PutMetricData', status: 403 };
    await expect(runHandler()).rejects.toThrow(`certificate rotation for mesh ${MESH}: PutMetricData in ${METRIC_NAMESPACE} failed: AccessDenied: not authorized to perform: cloudwatch:PutMetricData`);
    expect(ssm.parameter(parameter(A.name))).toBeDefined();
  });

  test('fails when the environment is invalid, naming the variable', () => {
    const env = { ...process.env };
    expect(() => parseEnvironment({ ...env, IDENTITIES: '["Model_A"]' })).toThrow(/IDENTITIES must be a JSON array of identity names/);
    expect(() => parseEnvironment({ ...env, PARAMETER_PREFIX: 'x' })).toThrow(/PARAMETER_PREFIX must be an SSM path/);
    expect(() => parseEnvironment({ ...env, METRIC_NAMESPACE: 'AWS/Lambda' })).toThrow(/METRIC_NAMESPACE must be a custom namespace/);
    expect(() => parseEnvironment({ ...env, KMS_KEY_ID: undefined })).toThrow('environment variable KMS_KEY_ID is not set');
    expect(parseEnvironment(env)).toEqual({
      parameterPrefix: PREFIX,
      partition: 'default',
      namespace: 'default',
      kmsKeyId: KMS_KEY,
      identities: [A.name, B.name],
      metricNamespace: METRIC_NAMESPACE,
      meshName: MESH,
    });
  });
});

describe('certificate rotation bundle', () => {
  test('esbuild bundles it for Node.js with only @aws-sdk/* and Node built-ins external', async () => {
    await expectSelfContainedBundle(
      'constructs/intentions/private/rotation-handler/index.ts',
      [
        'constructs/core/names.ts',
        'constructs/core/private/handler-log.ts',
        'constructs/intentions/private/consul-client.ts',
        'constructs/intentions/private/registrar-handler/index.ts',
        'constructs/intentions/private/rotation-handler/index.ts',
      ],
      ['@aws-sdk/client-cloudwatch'],
    );
  });
});
