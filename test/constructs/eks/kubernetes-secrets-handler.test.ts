import * as crypto from 'crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';
import { createCa } from '../../../constructs/consul/private/secrets-handler/x509';
import type { CustomResourceEvent } from '../../../constructs/core/private/cfn-response';
import { HANDLERS } from '../../../constructs/core/private/handler-code';
import {
  CONFLICT_ATTEMPTS,
  eksToken,
  handler,
  type KubernetesSecretsDependencies,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  OWNER_ANNOTATION,
  presignedCallerIdentityUrl,
} from '../../../constructs/eks/private/kubernetes-secrets-handler';
import { ConsoleCapture, expectNoSecretIn, expectSelfContainedBundle, messageOnly, STAND_IN_ACCESS_KEY_ID, useAwsStandIns } from '../../harness/handler-tests';
import { KubernetesApiStandIn, type StoredSecret } from '../../harness/stand-ins/kubernetes-api';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const CLUSTER = 'ml-cluster';
const NAMESPACE = 'consul';
const OWNER = 'lambda-mesh/ml/Eks/ConsulSecrets1A2B3C4D';
const OTHER_OWNER = 'lambda-mesh/ml/Moved/ConsulSecrets5E6F7A8B';
const CA_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/ca-certificate-AbCdEf`;
const TOKEN_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/token-acl-init-AbCdEf`;
const CA_NAME = 'lambda-mesh-consul-ca';
const TOKEN_NAME = 'lambda-mesh-consul-acl-init';

/** What useAwsStandIns puts in AWS_SECRET_ACCESS_KEY (with STAND_IN_ACCESS_KEY_ID): the function's "role". */
const STAND_IN_SECRET_ACCESS_KEY = 'stand-in-secret-access-key';
/** Session credentials, as Lambda gives its role's: the token has characters SigV4 must percent-encode. */
const SESSION = { accessKeyId: 'ASIASTANDINSESSION01', secretAccessKey: 'session/secret+key', sessionToken: 'IQoJb3JpZ2luX2VjE+/session==' };
/** A principal whose access entry covers only the default namespace. */
const LIMITED = { accessKeyId: 'AKIDLIMITEDEXAMPLE', secretAccessKey: 'limited-secret-key' };

/** The Consul CA (its certificate is what the CA secret holds) and ACL tokens: random UUIDs, as Consul makes them. */
const CONSUL_CA_PEM = createCa({ commonName: 'lambda-mesh Consul CA dc1', validityDays: 30 }).certificatePem;
const TOKEN = crypto.randomUUID();
const ROTATED_TOKEN = crypto.randomUUID();
const ACCESSOR = crypto.randomUUID();
const SOMEONE_ELSES = crypto.randomUUID();

interface Mapping {
  readonly Name: string;
  readonly Key: string;
  readonly SecretArn: string;
  readonly Field: string;
}

const CA_MAPPING: Mapping = { Name: CA_NAME, Key: 'tls.crt', SecretArn: CA_SECRET, Field: 'CertificatePem' };
const TOKEN_MAPPING: Mapping = { Name: TOKEN_NAME, Key: 'token', SecretArn: TOKEN_SECRET, Field: 'SecretID' };

const b64 = (text: string): string => Buffer.from(text).toString('base64');

describe('the Kubernetes secrets handler against the EKS API server stand-in (real TLS, EKS token authentication)', () => {
  const secrets = new SecretsManagerStandIn();
  let kube: KubernetesApiStandIn;
  const capture = new ConsoleCapture();
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    useAwsStandIns(REGION, { AWS_ENDPOINT_URL_SECRETS_MANAGER: await secrets.start() });
  });

  afterAll(async () => {
    process.env = savedEnv;
    await secrets.stop();
  });

  beforeEach(async () => {
    kube = await KubernetesApiStandIn.start({
      clusterName: CLUSTER,
      principals: {
        [STAND_IN_ACCESS_KEY_ID]: { secretAccessKey: STAND_IN_SECRET_ACCESS_KEY, arn: `arn:aws:sts::${ACCOUNT}:assumed-role/consul-secrets/fn` },
        [SESSION.accessKeyId]: { secretAccessKey: SESSION.secretAccessKey, sessionToken: SESSION.sessionToken },
        [LIMITED.accessKeyId]: { secretAccessKey: LIMITED.secretAccessKey, namespaces: ['default'] },
      },
    });
    secrets.reset();
    secrets.setSecret(CA_SECRET, JSON.stringify({ CertificatePem: CONSUL_CA_PEM }));
    secrets.setSecret(TOKEN_SECRET, JSON.stringify({ AccessorID: ACCESSOR, SecretID: TOKEN }));
    capture.start();
  });

  afterEach(async () => {
    // Every test: no value (nor its base64, as it travels in a Secret) appears in a log line or an error message.
    const values = [CONSUL_CA_PEM, TOKEN, ROTATED_TOKEN, SOMEONE_ELSES, SESSION.sessionToken, SESSION.secretAccessKey, STAND_IN_SECRET_ACCESS_KEY];
    expectNoSecretIn(capture.stop(), [...values, ...values.map(b64)]);
    await kube.close();
  });

  interface PropertyOptions {
    readonly secrets?: readonly Mapping[];
    readonly owner?: string;
    readonly namespace?: string;
    readonly clusterName?: string;
    readonly certificateAuthorityData?: string;
  }

  const properties = (o: PropertyOptions = {}): Record<string, unknown> => ({
    ServiceToken: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:kubernetes-secrets`,
    ClusterName: o.clusterName ?? CLUSTER,
    Endpoint: kube.endpoint,
    CertificateAuthorityData: o.certificateAuthorityData ?? kube.certificateAuthorityData,
    Namespace: o.namespace ?? NAMESPACE,
    Owner: o.owner ?? OWNER,
    Secrets: o.secrets ?? [CA_MAPPING, TOKEN_MAPPING],
  });
  const physicalId = (namespace: string = NAMESPACE): string => `lambda-mesh-kubernetes-secrets-${CLUSTER}-${namespace}`;
  const common = {
    RequestId: 'b6c2b4e1-0000-4000-8000-000000000000',
    StackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/eks/00000000-0000-0000-0000-000000000000`,
    LogicalResourceId: 'ConsulKubernetesSecrets',
    ResourceType: 'Custom::KubernetesSecrets',
    ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x',
  };
  const create = (props: Record<string, unknown> = properties()): CustomResourceEvent => ({ ...common, RequestType: 'Create', ResourceProperties: props });
  const update = (props: Record<string, unknown>, old: Record<string, unknown> = properties(), id: string = physicalId()): CustomResourceEvent => ({
    ...common,
    RequestType: 'Update',
    PhysicalResourceId: id,
    ResourceProperties: props,
    OldResourceProperties: old,
  });
  const remove = (props: Record<string, unknown> = properties(), id: string = physicalId()): CustomResourceEvent => ({ ...common, RequestType: 'Delete', PhysicalResourceId: id, ResourceProperties: props });

  /**
   * Runs the handler as in Lambda (Secrets Manager and credentials from the environment), retries fast, 401 and 403
   * not waited out.
   */
  const run = (event: CustomResourceEvent, deps: KubernetesSecretsDependencies = {}): ReturnType<typeof handler> =>
    capture.run(() => handler(event, { retryDelayMs: 5, authWaitMs: 0, ...deps }));
  /** Runs it expecting a failure; returns the error message. */
  const failure = async (event: CustomResourceEvent, deps: KubernetesSecretsDependencies = {}): Promise<string> => {
    const error = await capture.run(() => handler(event, { retryDelayMs: 5, authWaitMs: 0, ...deps }), messageOnly).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    return (error as Error).message;
  };
  const actions = (): string[] => capture.entries().map((e) => `${e.action} ${e.secret ?? ''}`.trim());
  const ours = (extra: Partial<Pick<StoredSecret['metadata'], 'labels' | 'annotations'>> = {}): { labels: Record<string, string>; annotations: Record<string, string> } => ({
    labels: { [MANAGED_BY_LABEL]: MANAGED_BY, ...extra.labels },
    annotations: { [OWNER_ANNOTATION]: OWNER, ...extra.annotations },
  });

  test('Create writes each Secret, Opaque, with its key in base64, our label and owner annotation', async () => {
    const response = await run(create());
    expect(response).toEqual({ PhysicalResourceId: physicalId(), Data: { Secrets: `${CA_NAME},${TOKEN_NAME}`, Version: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    const ca = kube.secret(NAMESPACE, CA_NAME)!;
    expect(ca).toMatchObject({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', data: { 'tls.crt': b64(CONSUL_CA_PEM) }, metadata: { namespace: NAMESPACE, ...ours() } });
    expect(Object.keys(ca.data!)).toEqual(['tls.crt']);
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toMatchObject({ type: 'Opaque', data: { token: b64(TOKEN) }, metadata: ours() });
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: TOKEN });
    // Read, then created; every request authenticated as the function's role.
    expect(kube.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 404', 'GET 404', 'POST 201', 'POST 201']);
    expect(new Set(kube.requests.map((r) => r.user))).toEqual(new Set([`arn:aws:sts::${ACCOUNT}:assumed-role/consul-secrets/fn`]));
    // Secrets Manager: each secret read once, signed with the function's credentials.
    expect(secrets.requests.map((r) => r.body.SecretId).sort()).toEqual([CA_SECRET, TOKEN_SECRET].sort());
    expect(secrets.requests.every((r) => r.authorization.includes(`Credential=${STAND_IN_ACCESS_KEY_ID}/`))).toBe(true);
    expect(actions()).toEqual([`created ${NAMESPACE}/${CA_NAME}`, `created ${NAMESPACE}/${TOKEN_NAME}`]);
  });

  test('entries sharing a Name make one Secret with several keys', async () => {
    const accessor: Mapping = { Name: TOKEN_NAME, Key: 'accessor', SecretArn: TOKEN_SECRET, Field: 'AccessorID' };
    const response = await run(create(properties({ secrets: [TOKEN_MAPPING, accessor] })));
    expect(response.Data?.Secrets).toBe(TOKEN_NAME);
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: TOKEN, accessor: ACCESSOR });
    expect(secrets.requests).toHaveLength(1);
  });

  test('a re-run writes nothing and answers the same Version', async () => {
    const first = await run(create());
    const versions = [kube.secret(NAMESPACE, CA_NAME)!.metadata.resourceVersion, kube.secret(NAMESPACE, TOKEN_NAME)!.metadata.resourceVersion];
    kube.requests.length = 0;
    const again = await run(create());
    const same = await run(update(properties()));
    expect(again).toEqual(first);
    expect(same).toEqual(first);
    expect(kube.writes()).toEqual([]);
    expect([kube.secret(NAMESPACE, CA_NAME)!.metadata.resourceVersion, kube.secret(NAMESPACE, TOKEN_NAME)!.metadata.resourceVersion]).toEqual(versions);
    expect(actions().slice(2)).toEqual(Array(4).fill('unchanged').map((a, i) => `${a} ${NAMESPACE}/${i % 2 === 0 ? CA_NAME : TOKEN_NAME}`));
  });

  test('drift in the cluster (a value, an extra key, our label) is restored, keeping others\' labels and annotations; Version stays', async () => {
    const first = await run(create());
    kube.editSecret(NAMESPACE, TOKEN_NAME, (s) => ({
      ...s,
      data: { token: b64(SOMEONE_ELSES), extra: b64('x') },
      metadata: { ...s.metadata, labels: { team: 'ml' }, annotations: { ...s.metadata.annotations, 'example.com/note': 'kept' } },
    }));
    kube.requests.length = 0;
    const second = await run(update(properties()));
    expect(second).toEqual(first);
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: TOKEN });
    expect(kube.secret(NAMESPACE, TOKEN_NAME)!.metadata).toMatchObject({
      labels: { team: 'ml', [MANAGED_BY_LABEL]: MANAGED_BY },
      annotations: { 'example.com/note': 'kept', [OWNER_ANNOTATION]: OWNER },
    });
    expect(kube.writes().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([`PUT /api/v1/namespaces/${NAMESPACE}/secrets/${TOKEN_NAME} 200`]);
    expect(capture.entries().find((e) => e.action === 'updated')).toMatchObject({ secret: `${NAMESPACE}/${TOKEN_NAME}`, keys: 'extra,token' });
  });

  test('a value rotated in Secrets Manager updates the Secret and changes Version', async () => {
    const first = await run(create());
    secrets.setValue(TOKEN_SECRET, JSON.stringify({ AccessorID: ACCESSOR, SecretID: ROTATED_TOKEN }));
    kube.requests.length = 0;
    const second = await run(update(properties()));
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: ROTATED_TOKEN });
    expect(second.Data?.Version).toMatch(/^[0-9a-f]{16}$/);
    expect(second.Data?.Version).not.toBe(first.Data?.Version);
    expect(kube.writes().map((r) => r.method)).toEqual(['PUT']);
    // The PUT carried the resourceVersion it read (optimistic concurrency).
    const put = kube.writes()[0].body as StoredSecret;
    expect(put.metadata.resourceVersion).toMatch(/^\d+$/);
  });

  test('a change between read and write (409 Conflict) is read again and retried', async () => {
    await run(create());
    secrets.setValue(TOKEN_SECRET, JSON.stringify({ AccessorID: ACCESSOR, SecretID: ROTATED_TOKEN }));
    // Twice, another writer changes the Secret just before our PUT: the first value moves, then only an annotation.
    kube.interfereBeforeNextWrites(1, ({ namespace, name }, s) => s.editSecret(namespace, name, (o) => ({ ...o, data: { token: b64(SOMEONE_ELSES) } })));
    kube.interfereBeforeNextWrites(1);
    kube.requests.length = 0;
    await run(update(properties()));
    expect(kube.writes().map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 409', 'PUT 409', 'PUT 200']);
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: ROTATED_TOKEN });
    expect(kube.secret(NAMESPACE, TOKEN_NAME)!.metadata.annotations).toHaveProperty(['example.com/touched']);
    expect(actions().filter((a) => a.startsWith('retry'))).toHaveLength(2);
  });

  test('a Secret created by someone else between read and create (409 AlreadyExists) is judged again', async () => {
    // Another run of ours creates it first: re-read, found with the wanted data, nothing more to write.
    kube.interfereBeforeNextWrites(1, ({ namespace }, s) => s.putSecret(namespace, CA_NAME, { data: { 'tls.crt': CONSUL_CA_PEM }, ...ours() }));
    await run(create());
    expect(kube.writes().map((r) => `${r.method} ${r.status}`)).toEqual(['POST 409', 'POST 201']);
    expect(actions()).toEqual(expect.arrayContaining([`retry ${NAMESPACE}/${CA_NAME}`, `unchanged ${NAMESPACE}/${CA_NAME}`]));
  });

  test('fails when the Secret keeps changing between read and write, saying so', async () => {
    await run(create());
    secrets.setValue(TOKEN_SECRET, JSON.stringify({ AccessorID: ACCESSOR, SecretID: ROTATED_TOKEN }));
    kube.interfereBeforeNextWrites(100);
    const message = await failure(update(properties()));
    expect(message).toContain(`Secret ${NAMESPACE}/${TOKEN_NAME} in cluster ${CLUSTER} kept changing between read and write (${CONFLICT_ATTEMPTS} tries`);
    expect(message).toContain('409 Conflict');
    expect(kube.writes().filter((r) => r.method === 'PUT')).toHaveLength(CONFLICT_ATTEMPTS);
  });

  test('fails when a Secret of the same name is not ours, writing nothing and leaving it untouched', async () => {
    const foreign = kube.putSecret(NAMESPACE, TOKEN_NAME, { data: { token: SOMEONE_ELSES }, labels: { app: 'consul' } });
    kube.requests.length = 0;
    const message = await failure(create());
    expect(message).toContain(`Secret ${NAMESPACE}/${TOKEN_NAME} already exists in cluster ${CLUSTER} and is not lambda-mesh owner "${OWNER}"'s (no ${OWNER_ANNOTATION} annotation)`);
    expect(message).toContain('never takes over');
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toEqual(foreign);
    // Checked before any write: the CA Secret was not created either.
    expect(kube.writes()).toEqual([]);
    expect(kube.secret(NAMESPACE, CA_NAME)).toBeUndefined();
    // Its rollback Delete leaves it too.
    await run(remove(properties(), common.RequestId));
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toEqual(foreign);
  });

  test('fails when a Secret of the same name is another lambda-mesh owner\'s, naming it', async () => {
    kube.putSecret(NAMESPACE, CA_NAME, { data: { 'tls.crt': CONSUL_CA_PEM }, ...ours({ annotations: { [OWNER_ANNOTATION]: OTHER_OWNER } }) });
    const message = await failure(create());
    expect(message).toContain(`its ${OWNER_ANNOTATION} is "${OTHER_OWNER}"`);
    expect(kube.writes()).toEqual([]);
  });

  test('an Update whose Owner changed takes over the old owner\'s Secrets', async () => {
    await run(create(properties({ owner: OTHER_OWNER })));
    kube.requests.length = 0;
    capture.logged.length = 0;
    await run(update(properties(), properties({ owner: OTHER_OWNER })));
    expect(kube.secret(NAMESPACE, CA_NAME)!.metadata.annotations).toEqual({ [OWNER_ANNOTATION]: OWNER });
    expect(kube.writes().map((r) => r.method)).toEqual(['PUT', 'PUT']);
    expect(actions()).toEqual([`adopted ${NAMESPACE}/${CA_NAME}`, `adopted ${NAMESPACE}/${TOKEN_NAME}`]);
  });

  test('an Update that drops a Secret deletes it (when ours)', async () => {
    await run(create());
    const response = await run(update(properties({ secrets: [CA_MAPPING] })));
    expect(response).toEqual({ PhysicalResourceId: physicalId(), Data: { Secrets: CA_NAME, Version: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toBeUndefined();
    expect(kube.secret(NAMESPACE, CA_NAME)).toBeDefined();
    const deletion = kube.writes().find((r) => r.method === 'DELETE')!;
    expect(deletion.body).toMatchObject({ kind: 'DeleteOptions', preconditions: { uid: expect.any(String), resourceVersion: expect.any(String) } });
  });

  test('an Update that drops a Secret someone else has replaced in the meantime leaves it', async () => {
    await run(create());
    kube.deleteSecret(NAMESPACE, TOKEN_NAME);
    const foreign = kube.putSecret(NAMESPACE, TOKEN_NAME, { data: { token: SOMEONE_ELSES } });
    await run(update(properties({ secrets: [CA_MAPPING] })));
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toEqual(foreign);
    expect(capture.entries().find((e) => e.action === 'left')).toMatchObject({ secret: `${NAMESPACE}/${TOKEN_NAME}`, reason: 'not lambda-mesh\'s' });
  });

  test('an Update to another namespace is a new physical ID: the old Secrets stay for CloudFormation\'s Delete of the old one', async () => {
    kube.namespaces.add('mesh');
    await run(create());
    const response = await run(update(properties({ namespace: 'mesh' })));
    expect(response.PhysicalResourceId).toBe(physicalId('mesh'));
    expect(kube.data('mesh', TOKEN_NAME)).toEqual({ token: TOKEN });
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toBeDefined();
    await run(remove(properties(), physicalId()));
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toBeUndefined();
    expect(kube.secret('mesh', TOKEN_NAME)).toBeDefined();
  });

  test('Delete removes ours and leaves others; twice is a no-op', async () => {
    await run(create(properties({ secrets: [CA_MAPPING] })));
    const foreign = kube.putSecret(NAMESPACE, TOKEN_NAME, { data: { token: SOMEONE_ELSES } });
    expect(await run(remove())).toEqual({ PhysicalResourceId: physicalId() });
    expect(kube.secret(NAMESPACE, CA_NAME)).toBeUndefined();
    expect(kube.secret(NAMESPACE, TOKEN_NAME)).toEqual(foreign);
    kube.requests.length = 0;
    expect(await run(remove())).toEqual({ PhysicalResourceId: physicalId() });
    expect(kube.writes()).toEqual([]);
    // Delete reads nothing from Secrets Manager: it needs no value.
    expect(secrets.requests.filter((r) => r.target.endsWith('GetSecretValue'))).toHaveLength(1);
  });

  test('Delete re-reads when the Secret changed since it was read (preconditions, 409), and leaves it when it is no longer ours', async () => {
    await run(create());
    // Before the first DELETE (the CA's): touched, still ours: read again and deleted. Before the third (the token's):
    // replaced by someone else's Secret of that name: read again and left.
    kube.interfereBeforeNextWrites(1);
    kube.interfereBeforeNextWrites(1, () => undefined);
    kube.interfereBeforeNextWrites(1, ({ namespace, name }, s) => {
      s.deleteSecret(namespace, name);
      s.putSecret(namespace, name, { data: { token: SOMEONE_ELSES } });
    });
    kube.requests.length = 0;
    await run(remove());
    expect(kube.writes().map((r) => `${r.method} ${r.path.split('/').pop()} ${r.status}`)).toEqual([`DELETE ${CA_NAME} 409`, `DELETE ${CA_NAME} 200`, `DELETE ${TOKEN_NAME} 409`]);
    expect(kube.secret(NAMESPACE, CA_NAME)).toBeUndefined();
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: SOMEONE_ELSES });
  });

  test('Delete with properties that do not parse (a failed Create\'s rollback) does nothing', async () => {
    const response = await run(remove({ ...properties(), Namespace: 'Not A Namespace' }, common.RequestId));
    expect(response).toEqual({ PhysicalResourceId: common.RequestId });
    expect(kube.requests).toEqual([]);
    expect(secrets.requests).toEqual([]);
  });

  test('signs with session credentials, as Lambda\'s role gives them (X-Amz-Security-Token)', async () => {
    await run(create(), { credentials: () => Promise.resolve(SESSION) });
    expect(kube.requests.every((r) => r.user === `arn:aws:sts::123456789012:assumed-role/stand-in/${SESSION.accessKeyId}`)).toBe(true);
  });

  test('retries 5xx and 429 from the API server', async () => {
    kube.failNext(1, 503);
    kube.failNext(1, 429, 'Too many requests, please try again later.');
    await run(create());
    expect(kube.data(NAMESPACE, CA_NAME)).toEqual({ 'tls.crt': CONSUL_CA_PEM });
    expect(kube.requests.slice(0, 3).map((r) => r.status)).toEqual([503, 429, 404]);
  });

  test('waits out 401 and 403 for a while (a new access entry takes seconds to apply), then succeeds', async () => {
    kube.failNext(1, 401, 'Unauthorized');
    await run(create(), { authWaitMs: 10_000 });
    expect(kube.requests.map((r) => r.status).slice(0, 2)).toEqual([401, 404]);
    expect(kube.data(NAMESPACE, TOKEN_NAME)).toEqual({ token: TOKEN });
    expect(capture.entries()[0]).toMatchObject({ action: 'waiting' });
  });

  test('fails when the signature is wrong: 401, and says the role needs an access entry', async () => {
    const message = await failure(create(), { credentials: () => Promise.resolve({ accessKeyId: STAND_IN_ACCESS_KEY_ID, secretAccessKey: 'not-the-key' }) });
    expect(message).toContain(`Kubernetes refused GET /api/v1/namespaces/${NAMESPACE}/secrets/${CA_NAME} (cluster ${CLUSTER}, namespace ${NAMESPACE}): 401 Unauthorized`);
    expect(message).toContain('needs an EKS access entry');
    expect(kube.authFailures).toEqual([expect.stringContaining('SignatureDoesNotMatch')]);
    expect(kube.writes()).toEqual([]);
  });

  test('fails when the token is expired (signed more than 15 minutes ago): 401', async () => {
    const message = await failure(create(), { now: () => new Date(Date.now() - 20 * 60 * 1000) });
    expect(message).toContain('401 Unauthorized');
    expect(kube.authFailures).toEqual([expect.stringContaining('X-Amz-Date parameter is expired')]);
  });

  test('fails when the token was signed for another cluster name: 401', async () => {
    const message = await failure(create(properties({ clusterName: 'other-cluster' })));
    expect(message).toContain('cluster other-cluster');
    expect(message).toContain('401 Unauthorized');
    // The verifier puts its own cluster's name in x-k8s-aws-id: the signature no longer matches.
    expect(kube.authFailures).toEqual([expect.stringContaining('SignatureDoesNotMatch')]);
  });

  test('fails when the access entry does not cover the namespace: 403, naming the namespace', async () => {
    const message = await failure(create(), { credentials: () => Promise.resolve(LIMITED) });
    expect(message).toContain(`403 Forbidden: secrets "${CA_NAME}" is forbidden`);
    expect(message).toContain(`allows get, create, update and delete on secrets in namespace ${NAMESPACE}`);
  });

  test('refuses a server certificate not issued by CertificateAuthorityData, sending nothing', async () => {
    const otherCa = createCa({ commonName: 'someone else', validityDays: 30 }).certificatePem;
    const message = await failure(create(properties({ certificateAuthorityData: b64(otherCa) })));
    expect(message).toMatch(/the API server's certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
    expect(kube.requests).toEqual([]);
  });

  test('fails when the namespace does not exist, naming it', async () => {
    const message = await failure(create(properties({ namespace: 'not-there' })));
    expect(message).toContain('namespace "not-there" does not exist in cluster ml-cluster');
    expect(message).toContain('404 NotFound: namespaces "not-there" not found');
  });

  test('reports what Kubernetes refused with its code and message, never the data', async () => {
    kube.putSecret(NAMESPACE, TOKEN_NAME, { data: { token: SOMEONE_ELSES }, ...ours(), immutable: true });
    const message = await failure(create());
    expect(message).toContain(`Secret ${NAMESPACE}/${TOKEN_NAME}: PUT /api/v1/namespaces/${NAMESPACE}/secrets/${TOKEN_NAME} answered 422 Invalid: Secret "${TOKEN_NAME}" is invalid: data: Forbidden: field is immutable`);
  });

  test('fails when the Secrets Manager secret lacks the field, naming ARN and field, before any Kubernetes call', async () => {
    secrets.setValue(TOKEN_SECRET, JSON.stringify({ AccessorID: ACCESSOR }));
    const message = await failure(create());
    expect(message).toBe(`Secret ${NAMESPACE}/${TOKEN_NAME} key token: secret ${TOKEN_SECRET} has no non-empty string field "SecretID" (it has: AccessorID)`);
    expect(kube.requests).toEqual([]);
  });

  test('fails when the Secrets Manager secret has no value yet, or does not exist', async () => {
    secrets.clearValue(TOKEN_SECRET);
    expect(await failure(create())).toContain(`could not read secret ${TOKEN_SECRET} from Secrets Manager: ResourceNotFoundException`);
    secrets.setValue(TOKEN_SECRET, 'not json');
    expect(await failure(create())).toBe(`secret ${TOKEN_SECRET} is not a JSON object`);
    expect(kube.requests).toEqual([]);
  });

  describe('fails before any call, naming the property, when', () => {
    const cases: Array<[string, (p: Record<string, unknown>) => Record<string, unknown>, string]> = [
      ['ClusterName is missing', ({ ClusterName: _c, ...p }) => p, 'ClusterName must be an EKS cluster name'],
      ['ClusterName has a slash', (p) => ({ ...p, ClusterName: 'ml/cluster' }), 'ClusterName must be an EKS cluster name'],
      ['Endpoint is http', (p) => ({ ...p, Endpoint: 'http://127.0.0.1:443' }), 'Endpoint must be the cluster\'s API server URL'],
      ['Endpoint has a path', (p) => ({ ...p, Endpoint: 'https://example.eks.amazonaws.com/api' }), 'Endpoint must be'],
      ['CertificateAuthorityData is PEM, not base64', (p) => ({ ...p, CertificateAuthorityData: CONSUL_CA_PEM }), 'CertificateAuthorityData must be'],
      ['CertificateAuthorityData is not a certificate', (p) => ({ ...p, CertificateAuthorityData: b64('hello') }), 'CertificateAuthorityData must be'],
      ['Namespace has capitals', (p) => ({ ...p, Namespace: 'Consul' }), 'Namespace must be a Kubernetes namespace name'],
      ['Owner is empty', (p) => ({ ...p, Owner: ' ' }), 'Owner must be a non-empty string'],
      ['Secrets is not a list', (p) => ({ ...p, Secrets: JSON.stringify([CA_MAPPING]) }), 'Secrets must be a list of 1 to 50'],
      ['Secrets is empty', (p) => ({ ...p, Secrets: [] }), 'Secrets must be a list'],
      ['a Secret name has capitals', (p) => ({ ...p, Secrets: [CA_MAPPING, { ...TOKEN_MAPPING, Name: 'ACL' }] }), 'Secrets[1].Name must be a Kubernetes Secret name'],
      ['a Key has a slash', (p) => ({ ...p, Secrets: [{ ...CA_MAPPING, Key: 'tls/crt' }] }), 'Secrets[0].Key must be a Secret data key'],
      ['a SecretArn is a name', (p) => ({ ...p, Secrets: [{ ...CA_MAPPING, SecretArn: 'consul/ca' }] }), 'Secrets[0].SecretArn must be the ARN of a Secrets Manager secret'],
      ['a Field is missing', (p) => ({ ...p, Secrets: [{ ...CA_MAPPING, Field: '' }] }), 'Secrets[0].Field must name a field'],
      ['an entry has a misspelt field', (p) => ({ ...p, Secrets: [{ ...CA_MAPPING, SecretARN: CA_SECRET }] }), 'Secrets[0] has unknown field(s) SecretARN'],
      ['a Name and Key are given twice', (p) => ({ ...p, Secrets: [CA_MAPPING, { ...CA_MAPPING }] }), 'Secrets[1]: Secret lambda-mesh-consul-ca key tls.crt is given twice'],
    ];
    test.each(cases)('%s', async (_name, change, expected) => {
      const message = await failure(create(change(properties())));
      expect(message).toContain(expected);
      expect(secrets.requests).toEqual([]);
      expect(kube.requests).toEqual([]);
    });
  });

  describe('the EKS token', () => {
    const date = new Date('2026-03-01T12:34:56.789Z');

    test('is what aws-iam-authenticator verifies: a presigned STS GetCallerIdentity URL, unpadded base64url, x-k8s-aws-id signed', () => {
      const token = eksToken({ clusterName: CLUSTER, region: 'eu-west-1', credentials: SESSION, date });
      expect(token.startsWith('k8s-aws-v1.')).toBe(true);
      const encoded = token.slice('k8s-aws-v1.'.length);
      expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(token.length).toBeLessThanOrEqual(4096);
      const url = new URL(Buffer.from(encoded, 'base64url').toString('utf8'));
      expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('https://sts.eu-west-1.amazonaws.com/');
      expect(Object.fromEntries(url.searchParams)).toEqual({
        'Action': 'GetCallerIdentity',
        'Version': '2011-06-15',
        'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
        'X-Amz-Credential': `${SESSION.accessKeyId}/20260301/eu-west-1/sts/aws4_request`,
        'X-Amz-Date': '20260301T123456Z',
        'X-Amz-Expires': '60',
        'X-Amz-Security-Token': SESSION.sessionToken,
        'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
        'X-Amz-Signature': expect.stringMatching(/^[0-9a-f]{64}$/),
      });
    });

    test('presigns exactly what @smithy/signature-v4 (the AWS SDK\'s signer) presigns', async () => {
      for (const credentials of [SESSION, { accessKeyId: STAND_IN_ACCESS_KEY_ID, secretAccessKey: STAND_IN_SECRET_ACCESS_KEY }]) {
        const ours = new URL(presignedCallerIdentityUrl({ clusterName: CLUSTER, region: REGION, credentials, date }));
        const reference = await smithyPresign(CLUSTER, REGION, credentials, date);
        expect(Object.fromEntries(ours.searchParams)).toEqual(reference);
      }
    });

    test('the stand-in accepts a token made by @smithy/signature-v4, and refuses it altered', async () => {
      const query = await smithyPresign(CLUSTER, REGION, SESSION, new Date());
      const url = `https://sts.${REGION}.amazonaws.com/?${new URLSearchParams(query).toString()}`;
      const token = `k8s-aws-v1.${Buffer.from(url).toString('base64url')}`;
      expect(kube.authenticate(`Bearer ${token}`).arn).toContain(SESSION.accessKeyId);
      const altered = `k8s-aws-v1.${Buffer.from(url.replace('Version=2011-06-15', 'Version=2011-06-15&Action=GetCallerIdentity')).toString('base64url')}`;
      expect(() => kube.authenticate(`Bearer ${altered}`)).toThrow('multiple values');
      const padded = `${token}=`;
      expect(() => kube.authenticate(`Bearer ${padded}`)).toThrow('unpadded base64url');
    });
  });
});

describe('the Kubernetes secrets handler bundle', () => {
  test('esbuild bundles it with only @aws-sdk/* and Node built-ins external, and no CDK code', async () => {
    await expectSelfContainedBundle(
      `constructs/${HANDLERS['kubernetes-secrets']}`,
      ['constructs/eks/private/kubernetes-secrets-handler/lambda.ts', 'constructs/eks/private/kubernetes-secrets-handler/index.ts', 'constructs/core/private/cfn-response.ts', 'constructs/core/private/handler-log.ts'],
      ['@aws-sdk/client-secrets-manager'],
    );
  });
});

/** A node:crypto SHA-256 for @smithy/signature-v4 (which takes the hash as a constructor). */
class NodeSha256 {
  private hash: crypto.Hash | crypto.Hmac;

  public constructor(private readonly secret?: SourceData) {
    this.hash = this.fresh();
  }

  public update(data: SourceData): void {
    this.hash.update(toBuffer(data));
  }

  public digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }

  public reset(): void {
    this.hash = this.fresh();
  }

  private fresh(): crypto.Hash | crypto.Hmac {
    return this.secret === undefined ? crypto.createHash('sha256') : crypto.createHmac('sha256', toBuffer(this.secret));
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') {
    return Buffer.from(data, 'utf8');
  }
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

/** The query of the GetCallerIdentity URL @smithy/signature-v4 presigns with the x-k8s-aws-id header, as `aws eks get-token` does. */
async function smithyPresign(clusterName: string, region: string, credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }, date: Date): Promise<Record<string, string>> {
  const host = `sts.${region}.amazonaws.com`;
  const signer = new SignatureV4({ credentials, region, service: 'sts', sha256: NodeSha256, uriEscapePath: true });
  const presigned = await signer.presign(
    { method: 'GET', protocol: 'https:', hostname: host, path: '/', query: { Action: 'GetCallerIdentity', Version: '2011-06-15' }, headers: { 'host': host, 'x-k8s-aws-id': clusterName } },
    { signingDate: date, expiresIn: 60 },
  );
  return Object.fromEntries(Object.entries(presigned.query ?? {}).map(([k, v]) => [k, String(v)]));
}
