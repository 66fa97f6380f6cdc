import { gzipSync } from 'zlib';
import { App, Stack } from 'aws-cdk-lib';
import { Mesh, ServiceProtocol } from '../../../constructs/mesh';
import { ownerId, renderConfigEntries, type ConsulConfigEntry } from '../../../constructs/intentions/private/config-entries';
import { CONSUL_ENV } from '../../../constructs/intentions/private/consul-client';
import type { CustomResourceEvent } from '../../../constructs/core/private/cfn-response';
import { handler, MAX_CAS_ATTEMPTS } from '../../../constructs/intentions/private/intentions-handler';
import { ConsoleCapture, consulEnvironment, expectNoSecretIn, expectSelfContainedBundle, putConsulSecrets, useAwsStandIns } from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const CA_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/ca-certificate-AbCdEf`;
const TOKEN_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/token-intentions-writer-AbCdEf`;
const CONSUL_SECRETS = { ca: CA_SECRET, token: TOKEN_SECRET };

/** What the intentions-writer policy grants: service_prefix "" { policy = "write", intentions = "write" }. */
const WRITER_TOKEN = '5c1e7a00-0000-4000-8000-00000000f00d';
const READ_ONLY_TOKEN = '5c1e7a00-0000-4000-8000-00000000beef';
const UNKNOWN_TOKEN = '5c1e7a00-0000-4000-8000-00000000dead';

const OWNER = 'lambda-mesh/mesh/StackIntentions1A2B3C4D';
const OTHER_OWNER = 'lambda-mesh/mesh/OtherAppIntentions5E6F7A8B';
const ID = ownerId(OWNER);

interface Scenario {
  /** feature-store (http, L7), log-service (tcp, L4), result-writer (tcp) from model-a v1 and v2. */
  readonly destinations?: readonly string[];
  readonly catchAllDeny?: boolean;
  readonly owner?: string;
  readonly featureStoreProtocol?: ServiceProtocol;
}

/** Renders the entries of a real mesh, as the construct does at synth. */
function entries(s: Scenario = {}): ConsulConfigEntry[] {
  const mesh = new Mesh(new Stack(new App(), 'Stack'), 'Mesh');
  const destinations = s.destinations ?? ['feature-store', 'log-service'];
  const model = mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
  if (destinations.includes('feature-store')) {
    const protocol = s.featureStoreProtocol ?? ServiceProtocol.HTTP;
    const fs = mesh.addService('feature-store', { port: 8080, protocol });
    if (protocol === ServiceProtocol.TCP) {
      fs.allowFrom(model);
    } else {
      fs.denyFrom(model, { http: { pathPrefix: '/features/admin' } });
      fs.allowFrom(model, { http: { pathPrefix: '/features', methods: ['GET'] }, description: 'models read features' });
    }
  }
  if (destinations.includes('log-service')) {
    mesh.addService('log-service', { port: 24224 }).allowFrom(model);
  }
  if (destinations.includes('result-writer')) {
    mesh.addService('result-writer', { port: 8081 }).allowFrom(model);
  }
  return renderConfigEntries(mesh.graph(), { catchAllDeny: s.catchAllDeny ?? true, owner: s.owner ?? OWNER });
}

function properties(s: Scenario = {}): Record<string, unknown> {
  return { ServiceToken: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:intentions`, Owner: s.owner ?? OWNER, Entries: JSON.stringify(entries(s)) };
}

const common = {
  RequestId: 'b6c2b4e1-0000-4000-8000-000000000000',
  StackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/mesh/00000000-0000-0000-0000-000000000000`,
  LogicalResourceId: 'Intentions',
  ResourceType: 'Custom::ConsulIntentions',
  ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x',
};
const PHYSICAL_ID = `lambda-mesh-intentions-${ID}`;
const create = (props: Record<string, unknown> = properties()): CustomResourceEvent => ({ ...common, RequestType: 'Create', ResourceProperties: props });
const update = (props: Record<string, unknown>, old: Record<string, unknown>): CustomResourceEvent => ({
  ...common,
  RequestType: 'Update',
  PhysicalResourceId: PHYSICAL_ID,
  ResourceProperties: props,
  OldResourceProperties: old,
});
const remove = (props: Record<string, unknown> = properties()): CustomResourceEvent => ({ ...common, RequestType: 'Delete', PhysicalResourceId: PHYSICAL_ID, ResourceProperties: props });

describe('intentions handler against a local Consul HTTP API stand-in (TLS)', () => {
  const secrets = new SecretsManagerStandIn();
  let consul: ConsulStandIn;
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
    consul = await ConsulStandIn.start({
      tokens: {
        [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'],
        [WRITER_TOKEN]: ['service:write', 'intentions:write'],
        [READ_ONLY_TOKEN]: ['service:read', 'intentions:read'],
      },
    });
    useToken(WRITER_TOKEN);
    Object.assign(process.env, consulEnvironment(consul, CONSUL_SECRETS));
    capture.start();
  });

  afterEach(async () => {
    // Every test: the token never appears in a log line or an error message.
    expectNoSecretIn(capture.stop(), [WRITER_TOKEN, READ_ONLY_TOKEN, UNKNOWN_TOKEN]);
    await consul.close();
  });

  /** Puts the stand-in's CA and `token` where the handler's environment points (Secrets Manager). */
  const useToken = (token: string): void => putConsulSecrets(secrets, consul, CONSUL_SECRETS, token);
  const run = (event: CustomResourceEvent): ReturnType<typeof handler> => capture.run(() => handler(event));
  const logEntries = (): Array<Record<string, string>> => capture.entries();
  /** The config writes received, as `<METHOD> <kind>/<name>`. */
  const writes = (): string[] =>
    consul.configWrites().map((r) => {
      if (r.method === 'PUT') {
        const body = r.body as { Kind: string; Name: string };
        return `PUT ${body.Kind}/${body.Name}`;
      }
      return `DELETE ${r.path.replace('/v1/config/', '')}`;
    });
  const sourceNames = (kind: string, name: string): string[] => ((consul.configEntry(kind, name)?.Sources ?? []) as Array<{ Name: string }>).map((s) => s.Name).sort();

  test('Create writes service-defaults first, then the intentions, with compare-and-set on absent entries (cas=0)', async () => {
    const response = await run(create());
    expect(response).toEqual({ PhysicalResourceId: PHYSICAL_ID });
    expect(writes()).toEqual(['PUT service-defaults/feature-store', 'PUT service-intentions/feature-store', 'PUT service-intentions/log-service', 'PUT service-intentions/*']);
    expect(consul.configWrites().every((r) => r.query.cas === '0' && r.hadToken)).toBe(true);

    expect(consul.configEntry('service-defaults', 'feature-store')).toMatchObject({ Protocol: 'http', Meta: { [`lambda-mesh-protocol-${ID}`]: 'http', [`lambda-mesh-owner-${ID}`]: OWNER } });
    const fs = consul.configEntry('service-intentions', 'feature-store')!;
    expect(fs.Sources).toEqual([
      {
        Name: 'model-a-v1',
        Permissions: [
          { Action: 'deny', HTTP: { PathPrefix: '/features/admin' } },
          { Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET'] } },
        ],
        Description: 'models read features',
        Precedence: 9,
        Type: 'consul',
      },
      expect.objectContaining({ Name: 'model-a-v2' }),
    ]);
    expect(fs.Meta).toEqual({ [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: 'model-a-v1,model-a-v2' });
    expect(consul.configEntry('service-intentions', '*')!.Sources).toEqual([expect.objectContaining({ Name: '*', Action: 'deny' })]);
    expect(logEntries().map((e) => `${e.action} ${e.kind}/${e.name}`)).toEqual([
      'created service-defaults/feature-store',
      'created service-intentions/feature-store',
      'created service-intentions/log-service',
      'created service-intentions/*',
    ]);
  });

  test('re-applying the same entries reads each one and writes nothing', async () => {
    await run(create());
    const before = [...consul.state.configEntries.values()];
    consul.resetRequests();

    await run(update(properties(), properties()));
    await run(create());
    expect(consul.configWrites()).toEqual([]);
    expect(consul.requests.every((r) => r.method === 'GET')).toBe(true);
    expect([...consul.state.configEntries.values()]).toEqual(before);
    expect(logEntries().filter((e) => e.action !== 'unchanged')).toEqual(expect.arrayContaining([expect.objectContaining({ action: 'created' })]));
    expect(logEntries().slice(-4).map((e) => e.action)).toEqual(['unchanged', 'unchanged', 'unchanged', 'unchanged']);
  });

  test('EntriesGzip (base64 of gzipped JSON), as the construct passes them, is applied the same', async () => {
    const json = JSON.stringify(entries());
    await run(create({ Owner: OWNER, EntriesGzip: gzipSync(Buffer.from(json)).toString('base64') }));
    expect(writes()).toHaveLength(4);
    consul.resetRequests();
    await run(create(properties()));
    expect(consul.configWrites()).toEqual([]);
  });

  test('a lost compare-and-set (another writer in between) is re-read, merged and retried', async () => {
    // The other writer creates the entry with its own source between our read (absent) and our create-only write.
    consul.loseNextCas(1, () => ({ Kind: 'service-intentions', Name: 'log-service', Sources: [{ Name: 'ops-dashboard', Action: 'allow' }] }));
    await run(create(properties({ destinations: ['log-service'], catchAllDeny: false })));

    expect(writes()).toEqual(['PUT service-intentions/log-service', 'PUT service-intentions/log-service']);
    const [first, second] = consul.configWrites();
    expect(first.query.cas).toBe('0');
    expect(Number(second.query.cas)).toBe(consul.configEntry('service-intentions', 'log-service')!.CreateIndex);
    expect(sourceNames('service-intentions', 'log-service')).toEqual(['model-a-v1', 'model-a-v2', 'ops-dashboard']);
    expect(logEntries().map((e) => e.action)).toEqual(['cas-conflict', 'updated']);
  });

  test(`fails when the compare-and-set is lost ${MAX_CAS_ATTEMPTS} times in a row, naming the entry`, async () => {
    consul.loseNextCas(MAX_CAS_ATTEMPTS, (current) => ({ ...(current ?? { Kind: 'service-defaults', Name: 'feature-store' }), Protocol: 'http2' }));
    await expect(run(create())).rejects.toThrow(
      `service-defaults "feature-store": gave up after ${MAX_CAS_ATTEMPTS} compare-and-set conflicts in a row: another writer changed the entry between each read and write. Deploy again when it has settled.`,
    );
    expect(writes()).toEqual(Array<string>(MAX_CAS_ATTEMPTS).fill('PUT service-defaults/feature-store'));
    expect(consul.configEntry('service-intentions', 'feature-store')).toBeUndefined();
  });

  test('fails when the token is unknown (403), naming the entry and the endpoint, never the token', async () => {
    useToken(UNKNOWN_TOKEN);
    await expect(run(create())).rejects.toThrow(
      'service-defaults "feature-store": Consul refused GET /v1/config/service-defaults/feature-store (403): the token lacks permission or is invalid: ACL not found',
    );
    expect(consul.requests).toHaveLength(1);
  });

  test('fails when the token may not write intentions (403), naming the entry and the endpoint', async () => {
    useToken(READ_ONLY_TOKEN);
    await expect(run(create(properties({ destinations: ['log-service'], catchAllDeny: false })))).rejects.toThrow(
      /^service-intentions "log-service": Consul refused PUT \/v1\/config\?cas=0 \(403\): the token lacks permission or is invalid: Permission denied: token with AccessorID '[0-9a-f-]+' lacks permission 'intentions:write' on "log-service"$/,
    );
  });

  test('retries a 5xx and succeeds within the bound', async () => {
    consul.failNext(2);
    await run(create(properties({ destinations: ['log-service'], catchAllDeny: false })));
    expect(sourceNames('service-intentions', 'log-service')).toEqual(['model-a-v1', 'model-a-v2']);
  });

  test('fails after the bounded retries when Consul keeps answering 5xx, naming the entry', async () => {
    consul.failNext(3);
    await expect(run(create())).rejects.toThrow(
      'service-defaults "feature-store": Consul GET /v1/config/service-defaults/feature-store failed after 3 attempts: HTTP 500: rpc error making call: No cluster leader',
    );
    expect(consul.requests).toHaveLength(3);
    expect(consul.configWrites()).toEqual([]);
  });

  test('keeps sources it did not write, and Delete removes only its own (the entry stays for the foreign one)', async () => {
    consul.seedConfigEntry({ Kind: 'service-intentions', Name: 'feature-store', Sources: [{ Name: 'ops-dashboard', Action: 'allow', Description: 'by hand' }], Meta: { team: 'platform' } });
    await run(create());
    const merged = consul.configEntry('service-intentions', 'feature-store')!;
    expect(sourceNames('service-intentions', 'feature-store')).toEqual(['model-a-v1', 'model-a-v2', 'ops-dashboard']);
    expect(merged.Meta).toEqual({ team: 'platform', [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: 'model-a-v1,model-a-v2' });
    consul.resetRequests();

    await run(remove());
    expect(consul.configEntry('service-intentions', 'feature-store')).toMatchObject({
      Sources: [{ Name: 'ops-dashboard', Action: 'allow', Description: 'by hand', Type: 'consul', Precedence: 9 }],
      Meta: { team: 'platform' },
    });
    // Entries with nothing but ours are deleted (with compare-and-set), the intentions before the service-defaults.
    expect(writes()).toEqual([
      'PUT service-intentions/feature-store',
      'DELETE service-intentions/log-service',
      'DELETE service-intentions/*',
      'DELETE service-defaults/feature-store',
    ]);
    expect(consul.configWrites().filter((r) => r.method === 'DELETE').every((r) => /^\d+$/.test(r.query.cas) && r.query.cas !== '0')).toBe(true);
    expect([...consul.state.configEntries.keys()]).toEqual(['service-intentions/feature-store']);
    // The written entry carries no read-only field back.
    const put = consul.configWrites()[0].body as { Sources: Array<Record<string, unknown>>; ModifyIndex?: number; Hash?: number };
    expect(put.Sources.some((s) => 'Precedence' in s)).toBe(false);
    expect(put.ModifyIndex).toBeUndefined();
    expect(put.Hash).toBeUndefined();
  });

  test('Delete twice, or of entries already gone, is a no-op', async () => {
    await run(create());
    await run(remove());
    consul.resetRequests();
    await run(remove());
    expect(consul.configWrites()).toEqual([]);
  });

  test('Update that drops a destination removes only its own sources there', async () => {
    await run(create(properties({ destinations: ['feature-store', 'log-service', 'result-writer'] })));
    // Someone else adds a source to result-writer afterwards.
    const current = consul.configEntry('service-intentions', 'result-writer')!;
    consul.seedConfigEntry({ ...current, Sources: [...(current.Sources as object[]), { Name: 'ops-dashboard', Action: 'allow' }] });
    consul.resetRequests();

    await run(update(properties({ destinations: ['feature-store'] }), properties({ destinations: ['feature-store', 'log-service', 'result-writer'] })));
    expect(sourceNames('service-intentions', 'result-writer')).toEqual(['ops-dashboard']);
    expect(consul.configEntry('service-intentions', 'result-writer')!.Meta).toBeUndefined();
    expect(consul.configEntry('service-intentions', 'log-service')).toBeUndefined();
    expect(sourceNames('service-intentions', 'feature-store')).toEqual(['model-a-v1', 'model-a-v2']);
    expect(writes()).toEqual(['DELETE service-intentions/log-service', 'PUT service-intentions/result-writer']);
  });

  test('Update that changes a source\'s rules replaces only its own source', async () => {
    consul.seedConfigEntry({ Kind: 'service-intentions', Name: 'feature-store', Sources: [{ Name: 'ops-dashboard', Action: 'allow' }] });
    await run(create());
    await run(update(properties({ featureStoreProtocol: ServiceProtocol.TCP }), properties()));
    const fs = consul.configEntry('service-intentions', 'feature-store')!;
    // Foreign sources keep their place; ours follow (Consul orders sources by precedence only).
    expect(fs.Sources).toEqual([
      expect.objectContaining({ Name: 'ops-dashboard', Action: 'allow' }),
      expect.objectContaining({ Name: 'model-a-v1', Action: 'allow' }),
      expect.objectContaining({ Name: 'model-a-v2', Action: 'allow' }),
    ]);
    expect((fs.Sources as Array<Record<string, unknown>>).some((s) => 'Permissions' in s)).toBe(false);
    // No longer HTTP: lambda-mesh created the service-defaults, so it goes.
    expect(consul.configEntry('service-defaults', 'feature-store')).toBeUndefined();
  });

  test('fails on a source of someone else with the same name and different rules, naming the entry and the source', async () => {
    consul.seedConfigEntry({ Kind: 'service-intentions', Name: 'log-service', Sources: [{ Name: 'model-a-v1', Action: 'deny' }] });
    await expect(run(create(properties({ destinations: ['log-service'], catchAllDeny: false })))).rejects.toThrow(
      'service-intentions "log-service": source "model-a-v1" is already in the entry with different rules, written outside lambda-mesh (no owner lists it). lambda-mesh never overwrites another writer\'s intention: remove one of the two, or make them identical.',
    );
    expect(sourceNames('service-intentions', 'log-service')).toEqual(['model-a-v1']);
    expect(consul.configWrites()).toEqual([]);
  });

  test('two owners share entries: each keeps the other\'s sources, identical ones are shared until both are gone', async () => {
    const other = (s: Scenario = {}): Record<string, unknown> => properties({ ...s, owner: OTHER_OWNER });
    await run(create(properties({ destinations: ['log-service'] })));
    // The other owner writes identical rules (model-a-v1/v2 -> log-service allow, and the catch-all): shared.
    consul.resetRequests();
    await run(create(other({ destinations: ['log-service'] })));
    expect(writes()).toEqual(['PUT service-intentions/log-service', 'PUT service-intentions/*']);
    const log = consul.configEntry('service-intentions', 'log-service')!;
    expect(Object.keys(log.Meta as object).sort()).toEqual(
      [`lambda-mesh-owner-${ID}`, `lambda-mesh-owner-${ownerId(OTHER_OWNER)}`, `lambda-mesh-sources-${ID}`, `lambda-mesh-sources-${ownerId(OTHER_OWNER)}`].sort(),
    );

    await run(remove(properties({ destinations: ['log-service'] })));
    expect(sourceNames('service-intentions', 'log-service')).toEqual(['model-a-v1', 'model-a-v2']);
    expect(sourceNames('service-intentions', '*')).toEqual(['*']);
    await run(remove(other({ destinations: ['log-service'] })));
    expect(consul.state.configEntries.size).toBe(0);
  });

  test('a new Owner on Update gets a new physical ID; the old owner\'s part stays until CloudFormation deletes the old resource', async () => {
    await run(create(properties({ destinations: ['log-service'], catchAllDeny: false })));
    const renamed = properties({ destinations: ['log-service'], catchAllDeny: false, owner: OTHER_OWNER });
    const response = await run(update(renamed, properties({ destinations: ['log-service'], catchAllDeny: false })));
    expect(response.PhysicalResourceId).toBe(`lambda-mesh-intentions-${ownerId(OTHER_OWNER)}`);
    expect(Object.keys(consul.configEntry('service-intentions', 'log-service')!.Meta as object)).toHaveLength(4);
    // CloudFormation's Delete of the replaced resource carries the old properties.
    await run(remove(properties({ destinations: ['log-service'], catchAllDeny: false })));
    expect(consul.configEntry('service-intentions', 'log-service')!.Meta).toEqual({
      [`lambda-mesh-owner-${ownerId(OTHER_OWNER)}`]: OTHER_OWNER,
      [`lambda-mesh-sources-${ownerId(OTHER_OWNER)}`]: 'model-a-v1,model-a-v2',
    });
    expect(sourceNames('service-intentions', 'log-service')).toEqual(['model-a-v1', 'model-a-v2']);
  });

  test('service-defaults that existed before keep their other fields, and get their old protocol back on Delete', async () => {
    consul.seedConfigEntry({ Kind: 'service-defaults', Name: 'feature-store', Protocol: 'tcp', MeshGateway: { Mode: 'local' } });
    await run(create());
    expect(consul.configEntry('service-defaults', 'feature-store')).toMatchObject({
      Protocol: 'http',
      MeshGateway: { Mode: 'local' },
      Meta: { 'lambda-mesh-previous-protocol': 'tcp', [`lambda-mesh-protocol-${ID}`]: 'http' },
    });
    await run(remove());
    const restored = consul.configEntry('service-defaults', 'feature-store')!;
    expect(restored).toMatchObject({ Protocol: 'tcp', MeshGateway: { Mode: 'local' } });
    expect(restored.Meta).toBeUndefined();
  });

  test('fails when two owners need different protocols for one service', async () => {
    await run(create());
    await expect(run(create(properties({ owner: OTHER_OWNER, featureStoreProtocol: ServiceProtocol.GRPC })))).rejects.toThrow(
      `service-defaults "feature-store": lambda-mesh owner "${OWNER}" needs protocol "http" for this service, and this one ("${OTHER_OWNER}") needs "grpc"`,
    );
  });

  test('fails when the properties are invalid, before calling Consul; Delete with them does nothing', async () => {
    await expect(run(create({ Owner: OWNER, Entries: '{"not":"an array"}' }))).rejects.toThrow('Entries must be a JSON array of config entries');
    await expect(run(create({ Owner: '', Entries: '[]' }))).rejects.toThrow(/^Owner must be a non-empty string/);
    await expect(run(create({ Owner: OWNER, Entries: JSON.stringify([{ Kind: 'proxy-defaults', Name: 'global' }]) }))).rejects.toThrow(/Kind must be service-intentions or service-defaults/);
    await expect(run(create({ Owner: OWNER }))).rejects.toThrow('Entries (a JSON array of config entries) or EntriesGzip must be given');
    expect(await run(remove({ Owner: OWNER }))).toEqual({ PhysicalResourceId: PHYSICAL_ID });
    expect(consul.requests).toEqual([]);
  });

  test('fails with a clear message when the environment lacks the Consul connection', async () => {
    delete process.env[CONSUL_ENV.TOKEN_SECRET_ARN];
    await expect(run(create())).rejects.toThrow('environment variable CONSUL_TOKEN_SECRET_ARN is not set');
  });
});

describe('intentions handler bundle', () => {
  test('esbuild bundles it with only @aws-sdk/* and Node built-ins external, and no CDK code', async () => {
    await expectSelfContainedBundle('constructs/intentions/private/intentions-handler/lambda.ts');
  });
});
