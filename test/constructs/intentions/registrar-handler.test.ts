import * as crypto from 'crypto';
import type { CustomResourceEvent } from '../../../constructs/core/private/cfn-response';
import { handler, NODE_META, SSM_LIMITS } from '../../../constructs/intentions/private/registrar-handler';
import {
  ConsoleCapture,
  consulEnvironment,
  expectNoSecretIn,
  expectSelfContainedBundle,
  pemFirstBase64Line,
  putConsulSecrets,
  STAND_IN_ACCESS_KEY_ID,
  useAwsStandIns,
} from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';
import { SsmStandIn } from '../../harness/stand-ins/ssm';
import { A, ACCOUNT, B, CONSUL_SECRETS, KMS_KEY, NODE, parameter, REGION, registrarProperties, STACK_ID } from './fixtures';


/** The registrar's token holds exactly what the handler needs: node:write on its node, service:write on the identities. */
const REGISTRAR_TOKEN = '7d3f0b52-0000-4000-8000-00000000beef';
const READ_ONLY_TOKEN = '7d3f0b52-0000-4000-8000-00000000cafe';

const C = { name: 'model-c-v7', functionName: 'model-c', version: '7' };
type Identity = typeof A;

const BUNDLE_KEYS = ['privateKeyPEM', 'certPEM', 'rootCertPEM', 'trustDomain', 'peers'];

function properties(identities: readonly Identity[], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { ServiceToken: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:identity-registrar`, ...registrarProperties(identities), ...overrides };
}

const common = {
  RequestId: 'b6c2b4e1-0000-4000-8000-000000000000',
  StackId: STACK_ID,
  LogicalResourceId: 'Identities',
  ResourceType: 'Custom::LambdaMeshIdentities',
  ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x',
};
const create = (props: Record<string, unknown>): CustomResourceEvent => ({ ...common, RequestType: 'Create', ResourceProperties: props });
const update = (props: Record<string, unknown>, old: Record<string, unknown>): CustomResourceEvent => ({
  ...common,
  RequestType: 'Update',
  PhysicalResourceId: `identities:${NODE}`,
  ResourceProperties: props,
  OldResourceProperties: old,
});
const remove = (props: Record<string, unknown>, physicalResourceId = `identities:${NODE}`): CustomResourceEvent => ({
  ...common,
  RequestType: 'Delete',
  PhysicalResourceId: physicalResourceId,
  ResourceProperties: props,
});

describe('identity registrar against local Consul and SSM stand-ins', () => {
  const ssm = new SsmStandIn({ region: REGION, account: ACCOUNT });
  const secrets = new SecretsManagerStandIn();
  let consul: ConsulStandIn;
  const capture = new ConsoleCapture();
  const { logged } = capture;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    const [ssmEndpoint, secretsEndpoint] = await Promise.all([ssm.start(), secrets.start()]);
    useAwsStandIns(REGION, { AWS_ENDPOINT_URL_SSM: ssmEndpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsEndpoint });
  });

  afterAll(async () => {
    process.env = savedEnv;
    await Promise.all([ssm.stop(), secrets.stop()]);
  });

  beforeEach(async () => {
    consul = await ConsulStandIn.start({
      tokens: {
        [REGISTRAR_TOKEN]: [`node:write:${NODE}`, 'service:write:model-'],
        [READ_ONLY_TOKEN]: ['service:read', 'node:read'],
      },
    });
    ssm.reset();
    useToken(REGISTRAR_TOKEN);
    Object.assign(process.env, consulEnvironment(consul, CONSUL_SECRETS));
    capture.start();
  });

  afterEach(async () => {
    const text = capture.stop();
    // Every test: no key material, no certificate and no token in any log line or error message. Every bundle stored
    // has a key and a certificate (whose first base64 lines are checked too).
    const pems = ssm.everStored.flatMap((stored) => {
      const bundle = JSON.parse(stored) as Record<string, string>;
      return [bundle.privateKeyPEM, bundle.certPEM];
    });
    for (const pem of pems) {
      expect(pemFirstBase64Line(pem)).toBeDefined();
    }
    expectNoSecretIn(text, [REGISTRAR_TOKEN, ...pems]);
    await consul.close();
  });

  /** Puts the Consul CA and `token` where the handler's environment points (Secrets Manager). */
  const useToken = (token: string): void => putConsulSecrets(secrets, consul, CONSUL_SECRETS, token);
  const run = (event: CustomResourceEvent): ReturnType<typeof handler> => capture.run(() => handler(event));

  function bundle(name: string): Record<string, unknown> {
    const p = ssm.parameter(name);
    if (!p) {
      throw new Error(`${name} is not stored`);
    }
    return JSON.parse(p.value) as Record<string, unknown>;
  }

  function certificate(name: string): crypto.X509Certificate {
    return new crypto.X509Certificate(bundle(name).certPEM as string);
  }

  /** `<path> <service ID>` of each catalog write. */
  const catalogWrites = (): string[] =>
    consul.requests
      .filter((r) => r.method === 'PUT' && r.path.startsWith('/v1/catalog/'))
      .map((r) => {
        const body = r.body as { ServiceID?: string; Service?: { ID: string } };
        return `${r.path} ${body.ServiceID ?? body.Service?.ID ?? ''}`;
      });

  test('Create registers each identity on the external node and writes its bundle in the registrator format', async () => {
    const response = await run(create(properties([A, B])));

    expect(response).toEqual({ PhysicalResourceId: `identities:${NODE}`, Data: { TrustDomain: consul.trustDomain } });
    // The catalog: one external node, one service per identity.
    const node = consul.state.nodes.get(NODE)!;
    expect(node.address).toBe('127.0.0.1');
    expect(node.registration.NodeMeta).toEqual({ 'external-node': 'true', 'external-probe': 'false' });
    expect(NODE_META).toEqual(node.registration.NodeMeta);
    expect([...node.services.keys()].sort()).toEqual([A.name, B.name]);
    expect(node.services.get(A.name)!.registration).toEqual({
      ID: A.name,
      Service: A.name,
      Tags: ['lambda-mesh'],
      Meta: { 'lambda-mesh-function': 'model-a', 'lambda-mesh-version': '1' },
    });

    // SSM: one SecureString per identity at <prefix>/<partition>/<namespace>/<identity>, with the mesh's key.
    expect(ssm.names()).toEqual([parameter(A.name), parameter(B.name)]);
    for (const identity of [A, B]) {
      const p = ssm.parameter(parameter(identity.name))!;
      expect(p).toMatchObject({ type: 'SecureString', keyId: KMS_KEY, tier: 'Standard', version: 1 });
      const b = bundle(p.name);
      expect(Object.keys(b)).toEqual(BUNDLE_KEYS);
      expect(b.peers).toEqual([]);
      expect(b.trustDomain).toBe(consul.trustDomain);
      expect((b.rootCertPEM as string).trim()).toBe(consul.activeRoot().ca.certificatePem.trim());

      // The certificate names the identity's SPIFFE ID, chains to the stand-in's root, and matches the key.
      const cert = certificate(p.name);
      expect(cert.subjectAltName).toBe(`URI:spiffe://${consul.trustDomain}/ns/default/dc/dc1/svc/${identity.name}`);
      expect(cert.verify(new crypto.X509Certificate(b.rootCertPEM as string).publicKey)).toBe(true);
      expect(cert.checkPrivateKey(crypto.createPrivateKey(b.privateKeyPEM as string))).toBe(true);
      expect(cert.serialNumber).toBe(consul.state.leaves.get(identity.name)!.serial.replace(/:/g, '').toUpperCase());
    }
  });

  test('SSM requests go to AWS_ENDPOINT_URL_SSM, SigV4-signed for ssm in us-east-1, over JSON 1.1', async () => {
    await run(create(properties([A])));
    expect(ssm.requests.map((r) => r.operation)).toEqual(['GetParameter', 'PutParameter']);
    for (const request of ssm.requests) {
      expect(request.authorization).toMatch(
        new RegExp(`^AWS4-HMAC-SHA256 Credential=${STAND_IN_ACCESS_KEY_ID}/\\d{8}/${REGION}/ssm/aws4_request, SignedHeaders=[^,]*x-amz-target[^,]*, Signature=[0-9a-f]{64}$`),
      );
      expect(request.amzDate).toMatch(/^\d{8}T\d{6}Z$/);
      expect(request.contentType).toBe('application/x-amz-json-1.1');
    }
    expect(ssm.requests[0].body).toEqual({ Name: parameter(A.name), WithDecryption: true });
    expect(ssm.requests[1].body).toMatchObject({ Name: parameter(A.name), Type: 'SecureString', KeyId: KMS_KEY, Overwrite: true, Tier: 'Standard' });
  });

  test('a retried Create changes nothing: no catalog write, no parameter write', async () => {
    const first = await run(create(properties([A, B])));
    const versions = ssm.names().map((n) => ssm.parameter(n)!.version);
    consul.resetRequests();
    ssm.requests.length = 0;
    logged.length = 0;

    const second = await run(create(properties([A, B])));
    expect(second).toEqual(first);
    expect(catalogWrites()).toEqual([]);
    expect(ssm.calls('PutParameter')).toEqual([]);
    expect(ssm.names().map((n) => ssm.parameter(n)!.version)).toEqual(versions);
    expect(capture.entries().every((e) => e.action === 'kept')).toBe(true);
  });

  test('Update removing an identity deregisters it and deletes its parameter; an added one is registered', async () => {
    await run(create(properties([A, B])));
    const aBefore = ssm.parameter(parameter(A.name))!.value;
    consul.resetRequests();

    const response = await run(update(properties([A, C]), properties([A, B])));
    expect(response.PhysicalResourceId).toBe(`identities:${NODE}`);
    expect([...consul.state.nodes.get(NODE)!.services.keys()].sort()).toEqual([A.name, C.name]);
    expect(ssm.names()).toEqual([parameter(A.name), parameter(C.name)]);
    expect(ssm.parameter(parameter(A.name))!.value).toBe(aBefore);
    expect(catalogWrites()).toEqual([`/v1/catalog/register ${C.name}`, `/v1/catalog/deregister ${B.name}`]);
  });

  test('Update rewrites the bundle of an identity registered earlier once Consul holds a newer leaf (new serial)', async () => {
    await run(create(properties([A, B])));
    const serialBefore = certificate(parameter(A.name)).serialNumber;
    // Consul renewed the leaf it holds for A (as it does between 60% and 90% of the lifetime).
    consul.state.leaves.delete(A.name);
    ssm.requests.length = 0;

    await run(update(properties([A, B, C]), properties([A, B])));
    const serialAfter = certificate(parameter(A.name)).serialNumber;
    expect(serialAfter).not.toBe(serialBefore);
    expect(serialAfter).toBe(consul.state.leaves.get(A.name)!.serial.replace(/:/g, '').toUpperCase());
    expect(ssm.calls('PutParameter').sort()).toEqual([parameter(A.name), parameter(C.name)]);
    expect(ssm.parameter(parameter(A.name))!.version).toBe(2);
    expect(ssm.parameter(parameter(B.name))!.version).toBe(1);
  });

  test('after a CA rotation, Update rewrites every bundle: new leaves, the new root first, the old one still trusted', async () => {
    await run(create(properties([A, B])));
    const oldRoot = consul.activeRoot();
    const serials = [A, B].map((i) => certificate(parameter(i.name)).serialNumber);
    const newRoot = consul.rotateConnectCa();

    await run(update(properties([A, B]), properties([A, B])));
    for (const [k, identity] of [A, B].entries()) {
      const b = bundle(parameter(identity.name));
      const cert = certificate(parameter(identity.name));
      expect(cert.serialNumber).not.toBe(serials[k]);
      expect(cert.verify(new crypto.X509Certificate(newRoot.ca.certificatePem).publicKey)).toBe(true);
      const roots = (b.rootCertPEM as string).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
      expect(roots.map((r) => r.trim())).toEqual([newRoot.ca.certificatePem.trim(), oldRoot.ca.certificatePem.trim()]);
    }
  });

  test('uses the Advanced tier only above 4096 bytes, and keeps a parameter Advanced (SSM cannot downgrade it)', async () => {
    await run(create(properties([A])));
    expect(ssm.parameter(parameter(A.name))!.tier).toBe('Standard');
    expect(Buffer.byteLength(ssm.parameter(parameter(A.name))!.value)).toBeLessThanOrEqual(SSM_LIMITS.standardValueBytes);

    // Each CA rotation adds a root to the bundle: rotate until the bundle no longer fits the standard tier.
    let size = 0;
    while (size <= SSM_LIMITS.standardValueBytes) {
      consul.rotateConnectCa();
      await run(update(properties([A]), properties([A])));
      const p = ssm.parameter(parameter(A.name))!;
      size = Buffer.byteLength(p.value);
      expect(p.tier).toBe(size > SSM_LIMITS.standardValueBytes ? 'Advanced' : 'Standard');
    }
    expect(ssm.requests.filter((r) => r.operation === 'PutParameter').at(-1)!.body.Tier).toBe('Advanced');

    // The old roots retire: the bundle fits 4 KB again, but the parameter stays Advanced.
    consul.state.roots.splice(0, consul.state.roots.length - 1);
    ssm.requests.length = 0;
    await run(update(properties([A]), properties([A])));
    const p = ssm.parameter(parameter(A.name))!;
    expect(Buffer.byteLength(p.value)).toBeLessThanOrEqual(SSM_LIMITS.standardValueBytes);
    expect(p.tier).toBe('Advanced');
    expect(ssm.requests.filter((r) => r.operation === 'PutParameter').map((r) => r.body.Tier)).toEqual(['Standard', 'Advanced']);
    expect(capture.entries()).toContainEqual(expect.objectContaining({ action: 'written', identity: A.name, tier: 'Advanced' }));
  });

  test('a non-default namespace and partition go into the parameter path, the queries and the registration', async () => {
    const props = properties([A], { Namespace: 'team-a', Partition: 'ml' });
    await run(create(props));
    expect(ssm.names()).toEqual([parameter(A.name, 'team-a', 'ml')]);
    const leafRequest = consul.requests.find((r) => r.path === `/v1/agent/connect/ca/leaf/${A.name}`)!;
    expect(leafRequest.query).toEqual({ partition: 'ml', ns: 'team-a' });
    const register = consul.requests.find((r) => r.path === '/v1/catalog/register')!.body as Record<string, unknown>;
    expect(register).toMatchObject({ Partition: 'ml', Service: { Namespace: 'team-a' } });
    expect(certificate(parameter(A.name, 'team-a', 'ml')).subjectAltName).toContain(`/ns/team-a/dc/dc1/svc/${A.name}`);
    // In the default scope, no partition or ns at all: Consul CE refuses them.
    consul.resetRequests();
    await run(create(properties([B])));
    expect(consul.requests.every((r) => !('ns' in r.query) && !('partition' in r.query))).toBe(true);
  });

  test('Delete deregisters every identity and deletes every parameter; a repeated Delete succeeds', async () => {
    await run(create(properties([A, B])));
    expect(await run(remove(properties([A, B])))).toEqual({ PhysicalResourceId: `identities:${NODE}` });
    expect(consul.state.nodes.get(NODE)?.services.size ?? 0).toBe(0);
    expect(ssm.names()).toEqual([]);

    await run(remove(properties([A, B])));
    expect(capture.entries()).toContainEqual({ action: 'none', identity: A.name, parameter: parameter(A.name), reason: 'parameter already gone' });
  });

  test('Delete of a Create that failed validation calls nothing', async () => {
    const props = properties([A], { Identities: 'not json' });
    await expect(run(create(props))).rejects.toThrow(/Identities must be a JSON array/);
    consul.resetRequests();
    expect(await run(remove(props, common.RequestId))).toEqual({ PhysicalResourceId: common.RequestId });
    expect(consul.requests).toEqual([]);
    expect(ssm.requests).toEqual([]);
  });

  test('fails when a parameter name exceeds SSM limits, before calling Consul or SSM; the limit is the one SSM applies', async () => {
    // arn:aws:ssm:us-east-1:123456789012:parameter is 44 characters: names up to 967 pass, as the stand-in agrees.
    const arnPrefix = `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter`;
    const fit = SSM_LIMITS.maxNameLengthWithArn - arnPrefix.length - `/default/default/${A.name}`.length;
    const prefixOf = (length: number): string => `/lambda-mesh/${'x'.repeat(length - '/lambda-mesh/'.length)}`;

    await run(create(properties([A], { ParameterPrefix: prefixOf(fit) })));
    expect(arnPrefix.length + ssm.names()[0].length).toBe(SSM_LIMITS.maxNameLengthWithArn);

    consul.resetRequests();
    ssm.reset();
    await expect(run(create(properties([A], { ParameterPrefix: prefixOf(fit + 1) })))).rejects.toThrow(
      new RegExp(`^${A.name}: SSM parameter /lambda-mesh/x+\\.\\.\\. is 968 characters, 1012 with its ARN prefix ${arnPrefix}, more than SSM's 1011: shorten`),
    );
    // 13 levels of prefix + partition, namespace, identity: 16, one more than SSM's 15.
    const deep = `/lambda-mesh/${Array.from({ length: 12 }, (_, i) => `l${i}`).join('/')}`;
    await expect(run(create(properties([A], { ParameterPrefix: deep })))).rejects.toThrow(
      `${A.name}: SSM parameter ${deep}/default/default/${A.name} has 16 levels, more than SSM's 15: use a ParameterPrefix with fewer '/'`,
    );
    expect(consul.requests).toEqual([]);
    expect(ssm.requests).toEqual([]);
  });

  test('fails with a clear error when Consul refuses the token (403), naming the identity, the call and the permission', async () => {
    useToken(READ_ONLY_TOKEN);
    await expect(run(create(properties([A])))).rejects.toThrow(
      new RegExp(`^${A.name}: Consul refused PUT /v1/catalog/register \\(403\\): the token lacks permission or is invalid: Permission denied: .*lacks permission 'node:write' on "${NODE}"`),
    );
    expect(ssm.calls('PutParameter')).toEqual([]);

    useToken('00000000-0000-4000-8000-00000000dead');
    await expect(run(create(properties([A])))).rejects.toThrow(/^Consul refused GET \/v1\/agent\/connect\/ca\/roots \(403\): the token lacks permission or is invalid: ACL not found$/);
  });

  test('fails when SSM refuses the write (KMS key not usable), naming the identity, the operation and the parameter', async () => {
    ssm.faults = [{ operation: 'PutParameter', name: parameter(B.name), type: 'AccessDeniedException', message: `User: arn:aws:sts::${ACCOUNT}:assumed-role/registrar/fn is not authorized to perform: kms:GenerateDataKey` }];
    await expect(run(create(properties([A, B])))).rejects.toThrow(
      `${B.name}: PutParameter on ${parameter(B.name)} failed: AccessDeniedException: User: arn:aws:sts::${ACCOUNT}:assumed-role/registrar/fn is not authorized`,
    );
  });

  test('an Update to a new KMS key rewrites every bundle with it, even unchanged ones', async () => {
    await run(create(properties([A])));
    const newKey = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0b6c8f4e-0000-4000-8000-000000000002`;
    await run(update(properties([A], { KmsKeyId: newKey }), properties([A])));
    expect(ssm.parameter(parameter(A.name))).toMatchObject({ keyId: newKey, version: 2 });
  });

  test('fails when the properties are invalid, before calling anything', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ Namespace: 'Team_A' }, /Namespace must be a DNS-1123 label .*"Team_A"/],
      [{ ParameterPrefix: 'lambda-mesh/prod' }, /ParameterPrefix must be an SSM path/],
      [{ ParameterPrefix: '/aws/prod' }, /ParameterPrefix must not begin with "aws" or "ssm"/],
      [{ KmsKeyId: '' }, /KmsKeyId must be a KMS key ID/],
      [{ NodeName: 'bad node' }, /NodeName must be a Consul node name/],
      [{ Identities: JSON.stringify([A, A]) }, /Identities: model-a-v1 appears more than once/],
      [{ Identities: JSON.stringify([{ ...A, name: 'Model_A' }]) }, /Identities\[0\]\.name must be a DNS-1123 label/],
      [{ Identities: JSON.stringify([{ ...A, version: '' }]) }, /Identities\[0\]\.version \(model-a-v1\) must be a string/],
    ];
    for (const [override, message] of cases) {
      await expect(run(create(properties([A], override)))).rejects.toThrow(message);
    }
    expect(consul.requests).toEqual([]);
    expect(ssm.requests).toEqual([]);
  });

  test('logs one JSON line per action, with names and serials only', async () => {
    await run(create(properties([A])));
    const entries = capture.entries();
    expect(entries).toEqual([
      { action: 'registered', identity: A.name, node: NODE },
      expect.objectContaining({ action: 'written', identity: A.name, parameter: parameter(A.name), tier: 'Standard', reason: 'no bundle yet' }),
    ]);
    expect(entries[1].serial).toMatch(/^[0-9a-f:]+$/);
  });
});

describe('identity registrar bundle', () => {
  test('esbuild bundles it for Node.js with only @aws-sdk/* and Node built-ins external', async () => {
    await expectSelfContainedBundle('constructs/intentions/private/registrar-handler/lambda.ts', [
      'constructs/core/names.ts',
      'constructs/core/private/cfn-response.ts',
      'constructs/core/private/handler-log.ts',
      'constructs/intentions/private/consul-client.ts',
      'constructs/intentions/private/registrar-handler/index.ts',
      'constructs/intentions/private/registrar-handler/lambda.ts',
    ]);
  });
});
