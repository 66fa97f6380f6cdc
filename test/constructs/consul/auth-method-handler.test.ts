import { App, Stack } from 'aws-cdk-lib';
import { handler } from '../../../constructs/consul/private/auth-method-handler';
import { type AuthMethodObjects, ownerMark, renderAuthMethodObjects, shortOwnerId, WORKLOAD_ROLE_TAGS } from '../../../constructs/consul/private/auth-method-objects';
import { HANDLERS } from '../../../constructs/core/private/handler-code';
import type { CustomResourceEvent } from '../../../constructs/core/private/cfn-response';
import type { ConsulApi } from '../../../constructs/intentions/private/consul-api';
import { consulClient } from '../../../constructs/intentions/private/consul-client';
import { Mesh, ServicePlacement } from '../../../constructs/mesh';
import { ConsoleCapture, consulEnvironment, expectNoSecretIn, expectSelfContainedBundle, putConsulSecrets, useAwsStandIns } from '../../harness/handler-tests';
import { ConsulStandIn } from '../../harness/stand-ins/consul';
import { SecretsManagerStandIn } from '../../harness/stand-ins/secrets-manager';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const CA_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/ca-certificate-AbCdEf`;
const TOKEN_SECRET = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:consul/token-workload-identity-AbCdEf`;
const CONSUL_SECRETS = { ca: CA_SECRET, token: TOKEN_SECRET };

/** What the workload-identity policy grants (acl-policies.ts): acl = "write", node_prefix "arn:" and "lambda-mesh-" write. */
const WORKLOAD_TOKEN = '5c1e7a00-0000-4000-8000-0000000a11ce';
const ACL_READ_TOKEN = '5c1e7a00-0000-4000-8000-00000000beef';
/** The workload-identity permissions and service:read. */
const SERVICE_READ_TOKEN = '5c1e7a00-0000-4000-8000-00000000cafe';

const OWNER = 'lambda-mesh/ml/ControlPlaneAuthMethod1A2B3C4D';
const OTHER_OWNER = 'lambda-mesh/ml/ControlPlaneMovedAuthMethod5E6F7A8B';
const METHOD = 'lambda-mesh-ml-aws-iam';
const GATEWAY = 'lambda-mesh-ml-mesh-gateway';
const ECS_CLUSTER = `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/ml-services`;
const EC2_NODE = 'lambda-mesh-ml-ec2-log-service';
const SERVICE_TAG = `entity_tags.${WORKLOAD_ROLE_TAGS.SERVICE_NAME}`;
const GATEWAY_TAG = `entity_tags.${WORKLOAD_ROLE_TAGS.GATEWAY_KIND}`;

const SERVICES: Readonly<Record<string, { readonly port: number; readonly placement: ServicePlacement }>> = {
  'feature-store': { port: 8080, placement: ServicePlacement.ECS },
  'log-service': { port: 24224, placement: ServicePlacement.EC2 },
  'result-writer': { port: 8081, placement: ServicePlacement.EXTERNAL },
  'web': { port: 8000, placement: ServicePlacement.EKS },
};

interface Scenario {
  /** Of feature-store (ECS), log-service (EC2), result-writer (external), web (EKS); all by default. */
  readonly services?: readonly string[];
  readonly owner?: string;
}

/** Renders the objects of a real mesh, as the construct does at synth: model-a v1 calls feature-store. */
function objects(s: Scenario = {}): AuthMethodObjects {
  const mesh = new Mesh(new Stack(new App(), 'Stack'), 'Mesh', { meshName: 'ml' });
  const model = mesh.addFunction('model-a', { versions: ['v1'] });
  for (const name of s.services ?? Object.keys(SERVICES)) {
    const service = mesh.addService(name, SERVICES[name]);
    if (name === 'feature-store') {
      service.allowFrom(model);
    }
  }
  return renderAuthMethodObjects({
    owner: s.owner ?? OWNER,
    authMethodName: METHOD,
    graph: mesh.graph(),
    boundRoleArnPattern: `arn:aws:iam::${ACCOUNT}:role/lambda-mesh/ml/*`,
    serverIdHeaderValue: 'server.dc1.consul',
    ecsClusterArns: [ECS_CLUSTER],
  });
}

function properties(s: Scenario = {}): Record<string, unknown> {
  return { ServiceToken: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:auth-method`, Owner: s.owner ?? OWNER, Objects: JSON.stringify(objects(s)) };
}

const physicalId = (owner: string = OWNER): string => `lambda-mesh-auth-method-${METHOD}-${shortOwnerId(owner)}`;
const common = {
  RequestId: 'b6c2b4e1-0000-4000-8000-000000000000',
  StackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/control-plane/00000000-0000-0000-0000-000000000000`,
  LogicalResourceId: 'AuthMethod',
  ResourceType: 'Custom::ConsulAuthMethod',
  ResponseURL: 'https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x',
};
const create = (props: Record<string, unknown> = properties()): CustomResourceEvent => ({ ...common, RequestType: 'Create', ResourceProperties: props });
const update = (props: Record<string, unknown>, old: Record<string, unknown>, id: string = physicalId()): CustomResourceEvent => ({
  ...common,
  RequestType: 'Update',
  PhysicalResourceId: id,
  ResourceProperties: props,
  OldResourceProperties: old,
});
const remove = (props: Record<string, unknown> = properties(), id: string = physicalId()): CustomResourceEvent => ({ ...common, RequestType: 'Delete', PhysicalResourceId: id, ResourceProperties: props });

describe('the auth method handler against the Consul stand-in (HTTP API over real TLS)', () => {
  const secrets = new SecretsManagerStandIn();
  let standIn: ConsulStandIn;
  /** The handler's client: the workload-identity token. */
  let consul: ConsulApi;
  /** Someone else's client (an operator's management token), for edits behind the handler's back. */
  let operator: ConsulApi;
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
    standIn = await ConsulStandIn.start({
      tokens: {
        [ConsulStandIn.MANAGEMENT_TOKEN]: ['management'],
        [WORKLOAD_TOKEN]: ['acl:write', 'node:write:arn:', 'node:write:lambda-mesh-'],
        [ACL_READ_TOKEN]: ['acl:read', 'node:write:arn:', 'node:write:lambda-mesh-'],
        [SERVICE_READ_TOKEN]: ['acl:write', 'node:write:arn:', 'node:write:lambda-mesh-', 'service:read'],
      },
    });
    consul = consulClient(standIn.connection(WORKLOAD_TOKEN), { retryDelayMs: 10 });
    operator = consulClient(standIn.connection(), { retryDelayMs: 10 });
    putConsulSecrets(secrets, standIn, CONSUL_SECRETS, WORKLOAD_TOKEN);
    Object.assign(process.env, consulEnvironment(standIn, CONSUL_SECRETS));
    capture.start();
  });

  afterEach(async () => {
    // Every test: no token appears in a log line or an error message.
    expectNoSecretIn(capture.stop(), [WORKLOAD_TOKEN, ACL_READ_TOKEN, SERVICE_READ_TOKEN, ConsulStandIn.MANAGEMENT_TOKEN]);
    await standIn.close();
  });

  const run = (event: CustomResourceEvent, api: ConsulApi = consul): ReturnType<typeof handler> => capture.run(() => handler(event, { consul: api }));
  const logEntries = (): Array<Record<string, string>> => capture.entries();
  /** The binding rules of our method by key (from the owner mark in their Description); foreign ones as `foreign:<BindName>`. */
  const rulesByKey = (owner: string = OWNER): Map<string, Record<string, unknown>> =>
    new Map(standIn.bindingRules(METHOD).map((r) => {
      const key = /\[lambda-mesh owner ([0-9a-f]{12}) rule ([^\]]+)\]$/.exec(String(r.Description));
      return [key !== null && key[1] === shortOwnerId(owner) ? key[2] : `foreign:${String(r.BindName)}`, r];
    }));
  /** The writes received (PUT and DELETE), binding rule IDs replaced by `ids` (key -> ID, taken before the run). */
  const writes = (ids: ReadonlyMap<string, Record<string, unknown>> = new Map()): string[] =>
    standIn.requests.filter((r) => r.method !== 'GET').map((r) => {
      let path = r.path;
      for (const [key, rule] of ids) {
        path = path.replace(String(rule.ID), key);
      }
      return `${r.method} ${decodeURIComponent(path)}`;
    });
  const nodeMeta = (node: string): unknown => standIn.state.nodes.get(node)?.registration.NodeMeta;

  test('Create makes the auth method, the gateway policy and role, one rule per ECS, EC2 and external service, and the nodes', async () => {
    const response = await run(create());
    expect(response).toEqual({ PhysicalResourceId: physicalId(), Data: { AuthMethodName: METHOD, Drift: '' } });
    expect(writes()).toEqual([
      'PUT /v1/acl/auth-method',
      'PUT /v1/acl/policy',
      'PUT /v1/acl/role',
      'PUT /v1/acl/binding-rule',
      'PUT /v1/acl/binding-rule',
      'PUT /v1/acl/binding-rule',
      'PUT /v1/acl/binding-rule',
      'PUT /v1/catalog/register',
      'PUT /v1/catalog/register',
    ]);
    expect(standIn.requests.every((r) => r.hadToken)).toBe(true);

    expect(standIn.authMethod(METHOD)).toMatchObject({
      Type: 'aws-iam',
      Description: expect.stringMatching(/\[lambda-mesh owner [0-9a-f]{12}\]$/),
      Config: { BoundIAMPrincipalARNs: [`arn:aws:iam::${ACCOUNT}:role/lambda-mesh/ml/*`], EnableIAMEntityDetails: true, ServerIDHeaderValue: 'server.dc1.consul' },
    });
    expect([...rulesByKey().keys()].sort()).toEqual(['gateway:mesh-gateway', 'service:feature-store', 'service:log-service', 'service:result-writer']);
    expect(standIn.policy(GATEWAY)).toMatchObject({ Rules: 'mesh = "write"\n' });
    expect(standIn.role(GATEWAY)).toMatchObject({ Policies: [{ Name: GATEWAY }], ServiceIdentities: [{ ServiceName: 'mesh-gateway' }] });
    const meta = { 'synthetic-node': 'true', 'lambda-mesh-owner': shortOwnerId(OWNER) };
    expect([...standIn.state.nodes.keys()].sort()).toEqual([ECS_CLUSTER, EC2_NODE]);
    expect(nodeMeta(ECS_CLUSTER)).toEqual(meta);
    expect(nodeMeta(EC2_NODE)).toEqual(meta);
    expect(logEntries().map((e) => `${e.action} ${e.object}`)).toEqual([
      `created auth method "${METHOD}"`,
      `created policy "${GATEWAY}"`,
      `created role "${GATEWAY}"`,
      'created binding rule service:feature-store',
      'created binding rule service:log-service',
      'created binding rule service:result-writer',
      'created binding rule gateway:mesh-gateway',
      `created node "${ECS_CLUSTER}"`,
      `created node "${EC2_NODE}"`,
    ]);
  });

  test('after Create, a login binds each tagged role to its service or the gateway role, and any other role to nothing', async () => {
    await run(create());
    const nothing = { ServiceIdentities: [], NodeIdentities: [], Roles: [], Policies: [], TemplatedPolicies: [] };

    const featureStore = standIn.login(METHOD, { entity_name: 'feature-store-task', [SERVICE_TAG]: 'feature-store' });
    expect(featureStore).toMatchObject({ ServiceIdentities: [{ ServiceName: 'feature-store' }], Roles: [], Policies: [] });
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'log-service' }).ServiceIdentities).toEqual([{ ServiceName: 'log-service' }]);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'result-writer' }).ServiceIdentities).toEqual([{ ServiceName: 'result-writer' }]);

    const gateway = standIn.login(METHOD, { entity_name: 'gateway-task', [SERVICE_TAG]: 'mesh-gateway', [GATEWAY_TAG]: 'mesh-gateway' });
    expect(gateway).toMatchObject({ ServiceIdentities: [], Roles: [{ Name: GATEWAY }] });
    expect(standIn.role(GATEWAY)!.ServiceIdentities).toEqual([{ ServiceName: 'mesh-gateway' }]);

    for (const attributes of [
      { entity_name: 'untagged' },
      { entity_name: 'model-a', [SERVICE_TAG]: 'model-a-v1' },
      { entity_name: 'web', [SERVICE_TAG]: 'web' },
      { entity_name: 'half-gateway', [SERVICE_TAG]: 'mesh-gateway' },
      { entity_name: 'feature-store-admin', [SERVICE_TAG]: 'feature-store-admin' },
    ]) {
      expect(standIn.login(METHOD, attributes)).toEqual(nothing);
    }
  });

  test('a re-run (Create again, or Update with the same properties) reads everything and writes nothing', async () => {
    await run(create());
    const before = JSON.stringify([[...standIn.state.authMethods], [...standIn.state.bindingRules], [...standIn.state.policies], [...standIn.state.roles], [...standIn.state.nodes.keys()]]);
    standIn.resetRequests();

    expect(await run(update(properties(), properties()))).toEqual({ PhysicalResourceId: physicalId(), Data: { AuthMethodName: METHOD, Drift: '' } });
    await run(create());
    expect(writes()).toEqual([]);
    expect(standIn.requests.length).toBeGreaterThan(0);
    expect(JSON.stringify([[...standIn.state.authMethods], [...standIn.state.bindingRules], [...standIn.state.policies], [...standIn.state.roles], [...standIn.state.nodes.keys()]])).toBe(before);
    expect(logEntries().slice(-9).every((e) => e.action === 'unchanged')).toBe(true);
  });

  test('drift: what someone changed in our rule, method Config, policy Rules and node meta is restored and named in Drift', async () => {
    await run(create());
    const wanted = { method: standIn.authMethod(METHOD)!, rule: rulesByKey().get('service:feature-store')!, policy: standIn.policy(GATEWAY)!, meta: nodeMeta(EC2_NODE) };
    // Behind the handler's back, keeping the owner marks: a wider selector, a wider role path, more rights, other meta.
    await operator.put(`/v1/acl/binding-rule/${String(wanted.rule.ID)}`, { ...wanted.rule, Selector: `entity_tags["${WORKLOAD_ROLE_TAGS.SERVICE_NAME}"] != ""` });
    await operator.put(`/v1/acl/auth-method/${METHOD}`, { ...wanted.method, Config: { ...(wanted.method.Config as object), BoundIAMPrincipalARNs: [`arn:aws:iam::${ACCOUNT}:role/*`] } });
    await operator.put(`/v1/acl/policy/${String(wanted.policy.ID)}`, { ...wanted.policy, Rules: 'acl = "write"\n' });
    await operator.put('/v1/catalog/register', { Node: EC2_NODE, Address: '127.0.0.1', NodeMeta: { 'lambda-mesh-owner': shortOwnerId(OWNER), 'synthetic-node': 'false' } });
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'model-a-v1' }).ServiceIdentities).toEqual([{ ServiceName: 'feature-store' }]);
    standIn.resetRequests();

    const response = await run(update(properties(), properties()));
    expect(response.Data!.Drift).toBe(`auth method "${METHOD}", policy "${GATEWAY}", binding rule service:feature-store, node "${EC2_NODE}"`);
    expect(writes(rulesByKey())).toEqual([
      `PUT /v1/acl/auth-method/${METHOD}`,
      `PUT /v1/acl/policy/${String(wanted.policy.ID)}`,
      'PUT /v1/acl/binding-rule/service:feature-store',
      'PUT /v1/catalog/register',
    ]);
    expect(standIn.authMethod(METHOD)!.Config).toEqual(wanted.method.Config);
    expect(standIn.policy(GATEWAY)!.Rules).toBe(wanted.policy.Rules);
    expect(rulesByKey().get('service:feature-store')).toMatchObject({ ID: wanted.rule.ID, Selector: wanted.rule.Selector });
    expect(nodeMeta(EC2_NODE)).toEqual(wanted.meta);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'model-a-v1' }).ServiceIdentities).toEqual([]);
    expect(logEntries().filter((e) => e.action === 'restored').map((e) => e.object)).toEqual([`auth method "${METHOD}"`, `policy "${GATEWAY}"`, 'binding rule service:feature-store', `node "${EC2_NODE}"`]);

    // Restored: the next run finds nothing to do.
    standIn.resetRequests();
    expect((await run(create())).Data!.Drift).toBe('');
    expect(writes()).toEqual([]);
  });

  test('fails when an auth method of the name exists without our mark, naming it, and writes nothing', async () => {
    const foreign = standIn.seedAuthMethod({ Name: METHOD, Type: 'aws-iam', Description: 'set up by hand', Config: { BoundIAMPrincipalARNs: [`arn:aws:iam::${ACCOUNT}:role/ops`] } });
    await expect(run(create())).rejects.toThrow(
      `auth method "${METHOD}" already exists and is not lambda-mesh owner "${OWNER}"'s (its description: set up by hand). lambda-mesh never takes over an object it did not create`,
    );
    expect(writes()).toEqual([]);
    expect(standIn.authMethod(METHOD)).toEqual(foreign);

    // Nor does Delete remove it.
    await run(remove());
    expect(writes()).toEqual([]);
    expect(standIn.authMethod(METHOD)).toEqual(foreign);
    expect(logEntries()).toContainEqual({ action: 'left', object: `auth method "${METHOD}"`, reason: 'not this owner\'s' });
  });

  test.each([
    ['without a mark', 'mesh gateways, by hand'],
    ['with another owner\'s mark', `another environment's gateways ${ownerMark(OTHER_OWNER)}`],
  ])('fails when the gateway policy exists %s, naming it, and writes nothing to it', async (_, description) => {
    const foreign = standIn.seedPolicy({ Name: GATEWAY, Description: description, Rules: 'mesh = "read"\n' });
    await expect(run(create())).rejects.toThrow(`policy "${GATEWAY}" already exists and is not lambda-mesh owner "${OWNER}"'s (its description: ${description})`);
    expect(writes().filter((w) => w.includes('/v1/acl/policy'))).toEqual([]);
    expect(standIn.policy(GATEWAY)).toEqual(foreign);
    expect(standIn.role(GATEWAY)).toBeUndefined();
  });

  test('a foreign binding rule on our method is left alone: kept by Update, never deleted by us, gone only with the method', async () => {
    await run(create());
    const foreign = standIn.seedBindingRule({
      AuthMethod: METHOD,
      Description: 'ops dashboard, by hand',
      Selector: `entity_tags["${WORKLOAD_ROLE_TAGS.SERVICE_NAME}"] == "ops-dashboard"`,
      BindType: 'service',
      BindName: 'ops-dashboard',
    });
    await run(update(properties({ services: ['feature-store', 'log-service'] }), properties()));
    await run(create(properties({ services: ['feature-store', 'log-service'] })));
    expect(rulesByKey().get('foreign:ops-dashboard')).toEqual(foreign);
    expect(standIn.requests.some((r) => r.path.includes(String(foreign.ID)))).toBe(false);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'ops-dashboard' }).ServiceIdentities).toEqual([{ ServiceName: 'ops-dashboard' }]);

    const ids = rulesByKey();
    standIn.resetRequests();
    await run(remove(properties({ services: ['feature-store', 'log-service'] })));
    // Ours are deleted one by one; the foreign one goes only because Consul deletes a method's rules with it.
    expect(writes(ids).filter((w) => w.includes('binding-rule')).sort()).toEqual([
      'DELETE /v1/acl/binding-rule/gateway:mesh-gateway',
      'DELETE /v1/acl/binding-rule/service:feature-store',
      'DELETE /v1/acl/binding-rule/service:log-service',
    ]);
    expect(writes().pop()).toBe(`DELETE /v1/acl/auth-method/${METHOD}`);
    expect(standIn.bindingRules()).toEqual([]);
  });

  test('Update that removes a service from the model deletes exactly its binding rule', async () => {
    await run(create());
    const ids = rulesByKey();
    standIn.resetRequests();
    const response = await run(update(properties({ services: ['feature-store', 'log-service', 'web'] }), properties()));
    expect(response).toEqual({ PhysicalResourceId: physicalId(), Data: { AuthMethodName: METHOD, Drift: '' } });
    expect(writes(ids)).toEqual(['DELETE /v1/acl/binding-rule/service:result-writer']);
    expect([...rulesByKey().keys()].sort()).toEqual(['gateway:mesh-gateway', 'service:feature-store', 'service:log-service']);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'result-writer' }).ServiceIdentities).toEqual([]);

    // An EC2 service takes its node with it.
    standIn.resetRequests();
    await run(update(properties({ services: ['feature-store'] }), properties({ services: ['feature-store', 'log-service', 'web'] })));
    expect(writes(ids)).toEqual(['DELETE /v1/acl/binding-rule/service:log-service', 'PUT /v1/catalog/deregister']);
    expect([...standIn.state.nodes.keys()]).toEqual([ECS_CLUSTER]);
  });

  test('Update to another owner (another physical ID) takes over the old owner\'s objects; the old resource\'s Delete then leaves them', async () => {
    await run(create());
    const response = await run(update(properties({ owner: OTHER_OWNER }), properties()));
    expect(response).toEqual({ PhysicalResourceId: physicalId(OTHER_OWNER), Data: { AuthMethodName: METHOD, Drift: '' } });
    const mark = ownerMark(OTHER_OWNER);
    expect(String(standIn.authMethod(METHOD)!.Description).endsWith(mark)).toBe(true);
    expect(String(standIn.policy(GATEWAY)!.Description).endsWith(mark)).toBe(true);
    expect(String(standIn.role(GATEWAY)!.Description).endsWith(mark)).toBe(true);
    expect([...rulesByKey(OTHER_OWNER).keys()].sort()).toEqual(['gateway:mesh-gateway', 'service:feature-store', 'service:log-service', 'service:result-writer']);
    expect(nodeMeta(EC2_NODE)).toEqual({ 'synthetic-node': 'true', 'lambda-mesh-owner': shortOwnerId(OTHER_OWNER) });
    // Taken over, not drift: the old properties show the objects were this resource's.
    expect(logEntries().filter((e) => e.action === 'adopted').map((e) => e.object)).toEqual([
      `auth method "${METHOD}"`,
      `policy "${GATEWAY}"`,
      `role "${GATEWAY}"`,
      'binding rule service:feature-store',
      'binding rule service:log-service',
      'binding rule service:result-writer',
      'binding rule gateway:mesh-gateway',
      `node "${ECS_CLUSTER}"`,
      `node "${EC2_NODE}"`,
    ]);
    expect(standIn.bindingRules(METHOD)).toHaveLength(4);

    // CloudFormation then deletes the old physical resource, with the old properties.
    standIn.resetRequests();
    await run(remove(properties(), physicalId()));
    expect(writes()).toEqual([]);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'feature-store' }).ServiceIdentities).toEqual([{ ServiceName: 'feature-store' }]);
    expect(standIn.login(METHOD, { [SERVICE_TAG]: 'mesh-gateway', [GATEWAY_TAG]: 'mesh-gateway' }).Roles).toEqual([expect.objectContaining({ Name: GATEWAY })]);

    // And the new owner's Delete removes everything.
    await run(remove(properties({ owner: OTHER_OWNER }), physicalId(OTHER_OWNER)));
    expect(standIn.state.authMethods.size + standIn.state.bindingRules.size + standIn.state.policies.size + standIn.state.roles.size + standIn.state.nodes.size).toBe(0);
  });

  test('Delete removes the binding rules, the role, the policy, the nodes, then the auth method; twice is a no-op', async () => {
    await run(create());
    const ids = rulesByKey();
    const role = standIn.role(GATEWAY)!;
    const policy = standIn.policy(GATEWAY)!;
    standIn.resetRequests();
    expect(await run(remove())).toEqual({ PhysicalResourceId: physicalId() });
    const ruleDeletes = writes(ids).slice(0, 4);
    expect([...ruleDeletes].sort()).toEqual([
      'DELETE /v1/acl/binding-rule/gateway:mesh-gateway',
      'DELETE /v1/acl/binding-rule/service:feature-store',
      'DELETE /v1/acl/binding-rule/service:log-service',
      'DELETE /v1/acl/binding-rule/service:result-writer',
    ]);
    expect(writes(ids).slice(4)).toEqual([
      `DELETE /v1/acl/role/${String(role.ID)}`,
      `DELETE /v1/acl/policy/${String(policy.ID)}`,
      'PUT /v1/catalog/deregister',
      'PUT /v1/catalog/deregister',
      `DELETE /v1/acl/auth-method/${METHOD}`,
    ]);
    expect(standIn.state.authMethods.size + standIn.state.bindingRules.size + standIn.state.policies.size + standIn.state.roles.size + standIn.state.nodes.size).toBe(0);

    standIn.resetRequests();
    await run(remove());
    expect(writes()).toEqual([]);
  });

  /** Registers an EC2 instance of log-service under its node, deletes with `api`, and expects the node kept. */
  const expectDeleteKeepsRegisteredNode = async (api: ConsulApi): Promise<void> => {
    await run(create(), api);
    await operator.put('/v1/catalog/register', { Node: EC2_NODE, Address: '127.0.0.1', SkipNodeUpdate: true, Service: { ID: 'log-service-i-0abc', Service: 'log-service', Port: 24224 } });
    await run(remove(), api);
    expect([...standIn.state.nodes.keys()]).toEqual([EC2_NODE]);
    expect([...standIn.state.nodes.get(EC2_NODE)!.services.keys()]).toEqual(['log-service-i-0abc']);
    expect(logEntries()).toContainEqual({ action: 'left', object: `node "${EC2_NODE}"`, reason: '1 service instance(s) still registered under it' });
    expect(standIn.authMethod(METHOD)).toBeUndefined();
  };

  test('Delete leaves a node that still has a service registered under it, and logs why (a token that may read services)', async () => {
    await expectDeleteKeepsRegisteredNode(consulClient(standIn.connection(SERVICE_READ_TOKEN), { retryDelayMs: 10 }));
  });

  // KNOWN BUG (acl-policies.ts, outside this handler): the workload-identity policy has no service:read, and Consul
  // filters the Services of GET /v1/catalog/node/:node by service:read, so the handler sees the node empty and
  // deregisters it with its instances. Passes while the bug is there; make it a plain test once the policy grants
  // `service_prefix "" { policy = "read" }`.
  test.failing('Delete leaves a node that still has a service registered under it, with the workload-identity token as the policy stands', async () => {
    await expectDeleteKeepsRegisteredNode(consul);
  });

  test('Delete with properties that do not parse is a no-op (a Create that failed validation wrote nothing)', async () => {
    for (const props of [{ Owner: OWNER, Objects: 'not json' }, { Owner: '', Objects: '{}' }, { Owner: OWNER }]) {
      expect(await run(remove(props))).toEqual({ PhysicalResourceId: physicalId() });
    }
    expect(await run({ ...common, RequestType: 'Delete', ResourceProperties: { Owner: OWNER } })).toEqual({ PhysicalResourceId: 'lambda-mesh-auth-method' });
    expect(standIn.requests).toEqual([]);
  });

  test('fails when the properties are invalid, before calling Consul', async () => {
    const valid = objects();
    await expect(run(create({ Owner: OWNER, Objects: '[' }))).rejects.toThrow(/^Objects is not JSON: /);
    await expect(run(create({ Owner: ' ', Objects: JSON.stringify(valid) }))).rejects.toThrow(/^Owner must be a non-empty string/);
    // Objects rendered for another owner carry its marks, not this one's.
    await expect(run(create({ Owner: OTHER_OWNER, Objects: JSON.stringify(valid) }))).rejects.toThrow('Objects.bindingRules[0] must have a Key and a Description ending with its owner mark');
    await expect(run(create({ Owner: OWNER, Objects: JSON.stringify({ ...valid, authMethod: { ...valid.authMethod, Type: 'kubernetes' } }) }))).rejects.toThrow(/^Objects.authMethod must be an aws-iam auth method/);
    await expect(run(create({ Owner: OWNER, Objects: JSON.stringify({ ...valid, bindingRules: [valid.bindingRules[0], valid.bindingRules[0]] }) }))).rejects.toThrow('Objects.bindingRules[1]: key "service:feature-store" is given twice');
    await expect(run({ ...create(), RequestType: 'Replace' as never })).rejects.toThrow('unknown RequestType "Replace"');
    expect(standIn.requests).toEqual([]);
  });

  test('fails when the token may not write ACLs (403), with a clear message and no secret in it', async () => {
    const readOnly = consulClient(standIn.connection(ACL_READ_TOKEN), { retryDelayMs: 10 });
    await expect(run(create(), readOnly)).rejects.toThrow(
      /^Consul refused PUT \/v1\/acl\/auth-method \(403\): the token lacks permission or is invalid: Permission denied: token with AccessorID '[0-9a-f-]+' lacks permission 'acl:write'$/,
    );
    expect(writes()).toEqual(['PUT /v1/acl/auth-method']);
    expect(standIn.authMethod(METHOD)).toBeUndefined();
    expectNoSecretIn(capture.text(), [ACL_READ_TOKEN, WORKLOAD_TOKEN]);
  });

  test('a 500 is retried by the client, and the run completes', async () => {
    standIn.failNext(1, 500);
    await run(create());
    expect(standIn.requests[0]).toMatchObject({ method: 'GET', path: `/v1/acl/auth-method/${METHOD}` });
    expect(standIn.requests[1]).toMatchObject({ method: 'GET', path: `/v1/acl/auth-method/${METHOD}` });
    expect(rulesByKey().size).toBe(4);
  });

  test('in Lambda it reads its connection from the environment and Secrets Manager (the workload-identity token)', async () => {
    const response = await capture.run(() => handler(create()));
    expect(response).toEqual({ PhysicalResourceId: physicalId(), Data: { AuthMethodName: METHOD, Drift: '' } });
    expect(standIn.requests.every((r) => r.hadToken)).toBe(true);
    expect(rulesByKey().size).toBe(4);
    expect(standIn.state.nodes.size).toBe(2);
  });
});

describe('the auth method handler bundle', () => {
  test('esbuild bundles it with only @aws-sdk/* and Node built-ins external, and no CDK code', async () => {
    await expectSelfContainedBundle(`constructs/${HANDLERS['consul-auth-method']}`);
  });
});
