import { App, Stack } from 'aws-cdk-lib';
import { Mesh, type MeshGraph, ServiceProtocol } from '../../../constructs/mesh';
import {
  CONFIG_ENTRY_MAX_BYTES,
  ownerId,
  readOwnership,
  renderConfigEntries,
  sourceOwnershipMeta,
  withoutOwner,
} from '../../../constructs/intentions/private/config-entries';
import { meshError } from '../../util';

const OWNER = 'lambda-mesh/mesh/StackIntentions1234ABCD';
const ID = ownerId(OWNER);

function newMesh(props: { namespace?: string; partition?: string } = {}): Mesh {
  return new Mesh(new Stack(new App(), 'Stack'), 'Mesh', props);
}

/** The seed scenario: an HTTP feature store (L7), a TCP log service (L4), models in versions. */
function seedMesh(): Mesh {
  const mesh = newMesh();
  const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
  const logs = mesh.addService('log-service', { port: 24224 });
  const results = mesh.addService('result-writer', { port: 8081, protocol: ServiceProtocol.GRPC });
  const modelA = mesh.addFunction('model-a', { versions: ['v1', 'v2'] });
  const modelB = mesh.addFunction('model-b', { versions: ['v1'] });
  featureStore.allowFrom(modelA, { http: { pathPrefix: '/features', methods: ['GET'] }, description: 'models read features' });
  featureStore.denyFrom(modelA, { http: { pathPrefix: '/features/admin' } });
  featureStore.allowFrom(modelB, {
    http: { pathExact: '/features/b', headers: [{ name: 'X-Tenant', exact: 'b' }, { name: 'x-debug', present: true, invert: true }] },
  });
  logs.allowFrom(modelA, { description: 'ship logs' });
  logs.denyFrom(modelB);
  results.allowFrom(modelB, { http: { pathRegex: '^/results\\.Writer/.*$' } });
  return mesh;
}


describe('renderConfigEntries', () => {
  test('renders Consul\'s exact JSON: service-defaults, then one service-intentions per destination, then the catch-all', () => {
    const entries = renderConfigEntries(seedMesh().graph(), { catchAllDeny: true, owner: OWNER });
    expect(entries.map((e) => `${e.Kind}/${e.Name}`)).toEqual([
      'service-defaults/feature-store',
      'service-defaults/result-writer',
      'service-intentions/feature-store',
      'service-intentions/log-service',
      'service-intentions/result-writer',
      'service-intentions/*',
    ]);
    expect(JSON.parse(JSON.stringify(entries))).toEqual([
      { Kind: 'service-defaults', Name: 'feature-store', Protocol: 'http', Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-protocol-${ID}`]: 'http' } },
      { Kind: 'service-defaults', Name: 'result-writer', Protocol: 'grpc', Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-protocol-${ID}`]: 'grpc' } },
      {
        Kind: 'service-intentions',
        Name: 'feature-store',
        Sources: [
          {
            Name: 'model-a-v1',
            Permissions: [
              { Action: 'deny', HTTP: { PathPrefix: '/features/admin' } },
              { Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET'] } },
            ],
            Description: 'models read features',
          },
          {
            Name: 'model-a-v2',
            Permissions: [
              { Action: 'deny', HTTP: { PathPrefix: '/features/admin' } },
              { Action: 'allow', HTTP: { PathPrefix: '/features', Methods: ['GET'] } },
            ],
            Description: 'models read features',
          },
          {
            Name: 'model-b-v1',
            Permissions: [
              { Action: 'allow', HTTP: { PathExact: '/features/b', Header: [{ Name: 'x-tenant', Exact: 'b' }, { Name: 'x-debug', Present: true, Invert: true }] } },
            ],
          },
        ],
        Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: 'model-a-v1,model-a-v2,model-b-v1' },
      },
      {
        Kind: 'service-intentions',
        Name: 'log-service',
        Sources: [
          { Name: 'model-a-v1', Action: 'allow', Description: 'ship logs' },
          { Name: 'model-a-v2', Action: 'allow', Description: 'ship logs' },
          { Name: 'model-b-v1', Action: 'deny' },
        ],
        Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: 'model-a-v1,model-a-v2,model-b-v1' },
      },
      {
        Kind: 'service-intentions',
        Name: 'result-writer',
        Sources: [{ Name: 'model-b-v1', Permissions: [{ Action: 'allow', HTTP: { PathRegex: '^/results\\.Writer/.*$' } }] }],
        Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: 'model-b-v1' },
      },
      {
        Kind: 'service-intentions',
        Name: '*',
        Sources: [{ Name: '*', Action: 'deny', Description: 'lambda-mesh: deny everything the mesh does not allow' }],
        Meta: { [`lambda-mesh-owner-${ID}`]: OWNER, [`lambda-mesh-sources-${ID}`]: '*' },
      },
    ]);
  });

  test('never writes Precedence (Consul computes it), nor Namespace or Partition for the defaults (Consul CE refuses them)', () => {
    const json = JSON.stringify(renderConfigEntries(seedMesh().graph(), { catchAllDeny: true, owner: OWNER }));
    expect(json).not.toMatch(/Precedence|Namespace|Partition|"Type"/);
  });

  test('denies come first within a source, whatever order the rules were declared in', () => {
    const mesh = newMesh();
    const api = mesh.addService('api', { port: 8080, protocol: ServiceProtocol.HTTP2 });
    const web = mesh.addFunction('web', { versions: ['v1'] });
    api.allowFrom(web, { http: { pathPrefix: '/v2' } });
    api.allowFrom(web, { http: { methods: ['GET'], pathExact: '/healthz' } });
    api.denyFrom(web, { http: { pathPrefix: '/v2/admin' } });
    const [, intentions] = renderConfigEntries(mesh.graph(), { catchAllDeny: false, owner: OWNER });
    expect(intentions).toMatchObject({ Kind: 'service-intentions', Name: 'api' });
    const permissions = intentions.Kind === 'service-intentions' ? intentions.Sources[0].Permissions : undefined;
    expect(permissions?.map((p) => `${p.Action} ${JSON.stringify(p.HTTP)}`)).toEqual([
      'deny {"PathPrefix":"/v2/admin"}',
      'allow {"PathPrefix":"/v2"}',
      'allow {"PathExact":"/healthz","Methods":["GET"]}',
    ]);
  });

  test('catchAllDeny: false leaves the catch-all out; TCP destinations get no service-defaults', () => {
    const mesh = newMesh();
    mesh.addService('db', { port: 5432 }).allowFrom(mesh.addFunction('app', { versions: ['v1'] }));
    expect(renderConfigEntries(mesh.graph(), { catchAllDeny: false, owner: OWNER }).map((e) => `${e.Kind}/${e.Name}`)).toEqual(['service-intentions/db']);
  });

  test('an empty mesh renders only the catch-all, or nothing', () => {
    expect(renderConfigEntries(newMesh().graph(), { catchAllDeny: true, owner: OWNER }).map((e) => e.Name)).toEqual(['*']);
    expect(renderConfigEntries(newMesh().graph(), { catchAllDeny: false, owner: OWNER })).toEqual([]);
  });

  test('a non-default namespace and partition (Consul Enterprise) are written on entries and sources', () => {
    const mesh = newMesh({ namespace: 'ml', partition: 'team-a' });
    mesh.addService('db', { port: 5432 }).allowFrom(mesh.addFunction('app', { versions: ['v1'] }));
    expect(renderConfigEntries(mesh.graph(), { catchAllDeny: true, owner: OWNER })).toMatchObject([
      { Kind: 'service-intentions', Name: 'db', Namespace: 'ml', Partition: 'team-a', Sources: [{ Name: 'app-v1', Namespace: 'ml', Partition: 'team-a', Action: 'allow' }] },
      { Kind: 'service-intentions', Name: '*', Namespace: 'ml', Partition: 'team-a', Sources: [{ Name: '*', Namespace: 'ml', Partition: 'team-a', Action: 'deny' }] },
    ]);
  });

  test('is deterministic: the same model renders byte-identical JSON', () => {
    const a = JSON.stringify(renderConfigEntries(seedMesh().graph(), { catchAllDeny: true, owner: OWNER }));
    const b = JSON.stringify(renderConfigEntries(seedMesh().graph(), { catchAllDeny: true, owner: OWNER }));
    expect(a).toBe(b);
  });

  test('long source lists continue over numbered Meta keys of at most 512 bytes each', () => {
    const mesh = newMesh();
    const db = mesh.addService('db', { port: 5432 });
    const fn = mesh.addFunction(`model-${'x'.repeat(40)}`, { versions: Array.from({ length: 40 }, (_, i) => `v${i}`) });
    db.allowFrom(fn);
    const [entry] = renderConfigEntries(mesh.graph(), { catchAllDeny: false, owner: OWNER });
    const keys = Object.keys(entry.Meta ?? {});
    expect(keys).toEqual([`lambda-mesh-owner-${ID}`, `lambda-mesh-sources-${ID}`, `lambda-mesh-sources-${ID}-2`, `lambda-mesh-sources-${ID}-3`, `lambda-mesh-sources-${ID}-4`]);
    for (const value of Object.values(entry.Meta ?? {})) {
      expect(Buffer.byteLength(value)).toBeLessThanOrEqual(512);
    }
    expect([...readOwnership(entry.Meta).get(ID)!.sources].sort()).toEqual(fn.identityNames().sort());
  });

  test('fails when an entry is larger than Consul accepts (512 KiB)', () => {
    const mesh = newMesh();
    const api = mesh.addService('api', { port: 8080, protocol: ServiceProtocol.HTTP });
    const fn = mesh.addFunction('caller', { versions: Array.from({ length: 300 }, (_, i) => `v${i}`) });
    api.allowFrom(fn, { http: { pathPrefix: '/', headers: [{ name: 'x-token', exact: 'a'.repeat(2000) }] } });
    const error = meshError(() => renderConfigEntries(mesh.graph(), { catchAllDeny: true, owner: OWNER }));
    expect(error.location).toBe('MeshIntentions');
    expect(error.field).toBe('intentions[api]');
    expect(error.given).toMatch(/^"a service-intentions entry of \d+ bytes"$/);
    expect(error.expected).toContain(`at most ${CONFIG_ENTRY_MAX_BYTES} bytes`);
  });

  test('fails when an identity name is longer than Consul allows for a service name (63)', () => {
    const mesh = newMesh();
    mesh.addService('db', { port: 5432 }).allowFrom(mesh.addFunction('app', { versions: ['v1'] }));
    const graph = mesh.graph();
    const long = `app-${'v'.repeat(60)}`;
    const tampered: MeshGraph = { ...graph, rules: graph.rules.map((r) => ({ ...r, source: long })) };
    const error = meshError(() => renderConfigEntries(tampered, { catchAllDeny: false, owner: OWNER }));
    expect(error.message).toBe(
      `MeshIntentions: intentions[db]: given "${long}", expected a source name of at most 63 bytes, as Consul serves service names (a DNS label, also part of the mesh's SNI names); given 64`,
    );
    const longDestination: MeshGraph = { ...graph, rules: graph.rules.map((r) => ({ ...r, destination: 'd'.repeat(64) })) };
    expect(meshError(() => renderConfigEntries(longDestination, { catchAllDeny: false, owner: OWNER })).field).toBe(`intentions[${'d'.repeat(64)}]`);
  });

  test('fails when the rules of one source have descriptions over Consul\'s 512 bytes', () => {
    const mesh = newMesh();
    mesh.addService('db', { port: 5432 }).allowFrom(mesh.addFunction('app', { versions: ['v1'] }), { description: 'd'.repeat(513) });
    const error = meshError(() => renderConfigEntries(mesh.graph(), { catchAllDeny: false, owner: OWNER }));
    expect(error.field).toBe('intentions[db]');
    expect(error.expected).toMatch(/at most 512 bytes together/);
  });

  test('fails when the ownership record needs more than Consul\'s 64 Meta pairs', () => {
    const mesh = newMesh();
    const db = mesh.addService('db', { port: 5432 });
    db.allowFrom(mesh.addFunction(`f${'x'.repeat(55)}`, { versions: Array.from({ length: 600 }, (_, i) => `v${i}`) }));
    const error = meshError(() => renderConfigEntries(mesh.graph(), { catchAllDeny: false, owner: OWNER }));
    expect(error.field).toBe('intentions[db]');
    expect(error.expected).toMatch(/^at most 64 Meta pairs \(Consul's limit; this entry needs \d+\)/);
  });

  test('fails when the owner is empty or longer than a Meta value', () => {
    expect(meshError(() => renderConfigEntries(newMesh().graph(), { catchAllDeny: true, owner: '' })).field).toBe('owner');
    expect(meshError(() => renderConfigEntries(newMesh().graph(), { catchAllDeny: true, owner: 'o'.repeat(513) })).field).toBe('owner');
  });
});

describe('ownership metadata', () => {
  test('each owner has its own keys, so several owners can share an entry', () => {
    const meta = { ...sourceOwnershipMeta('app-one', ['b', 'a']), ...sourceOwnershipMeta('app-two', ['c']), team: 'ml' };
    const claims = readOwnership(meta);
    expect(claims.get(ownerId('app-one'))).toEqual({ owner: 'app-one', sources: new Set(['a', 'b']) });
    expect(claims.get(ownerId('app-two'))).toEqual({ owner: 'app-two', sources: new Set(['c']) });
    expect(withoutOwner(meta, ownerId('app-one'))).toEqual({ ...sourceOwnershipMeta('app-two', ['c']), team: 'ml' });
  });
});
