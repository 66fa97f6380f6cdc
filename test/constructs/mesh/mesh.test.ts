import { App, Stack } from 'aws-cdk-lib';
import { meshError } from '../../util';
import { HttpMethod, IdentityKind, Mesh, RuleAction, ServicePlacement, ServiceProtocol } from '../../../constructs/mesh';
import { addSeedScenario, type SeedScenario } from './fixtures';

function newMesh(props = {}): { app: App; mesh: Mesh } {
  const app = new App();
  const mesh = new Mesh(new Stack(app, 'Stack'), 'Mesh', props);
  return { app, mesh };
}

/** The seed scenario: three backends, three models, one with two versions. */
function seedMesh(): SeedScenario {
  return addSeedScenario(newMesh().mesh);
}

describe('Mesh', () => {
  test('defaults: datacenter dc1, partition and namespace default, name from the construct id', () => {
    const { mesh } = newMesh();
    expect(mesh.meshName).toBe('mesh');
    expect(mesh.datacenter).toBe('dc1');
    expect(mesh.partition).toBe('default');
    expect(mesh.namespace).toBe('default');
    expect(mesh.trustDomain).toBeUndefined();
    expect(mesh.graph()).toEqual({ meshName: 'mesh', datacenter: 'dc1', partition: 'default', namespace: 'default', services: [], identities: [], rules: [] });
  });

  test('resolves the seed scenario: identities per version, rules expanded per identity, default deny', () => {
    const { mesh } = seedMesh();
    const graph = mesh.graph();
    expect(graph.identities.map((i) => i.name)).toEqual(['feature-store', 'log-service', 'model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1', 'result-writer']);
    expect(graph.identities.find((i) => i.name === 'model-a-v2')).toEqual({ name: 'model-a-v2', kind: IdentityKind.FUNCTION_VERSION, functionName: 'model-a', version: 'v2' });
    // 4 function identities x 3 services.
    expect(graph.rules).toHaveLength(12);
    expect(graph.rules.filter((r) => r.destination === 'feature-store').map((r) => r.source)).toEqual(['model-a-v1', 'model-a-v2', 'model-b-v1', 'model-c-v1']);
    expect(graph.rules[0]).toEqual({
      source: 'model-a-v1',
      sourceKind: IdentityKind.FUNCTION_VERSION,
      destination: 'feature-store',
      port: 8080,
      protocol: ServiceProtocol.HTTP,
      action: RuleAction.ALLOW,
      http: { pathPrefix: '/features', methods: ['GET'] },
    });
    // Services are not allowed to call each other unless a rule says so.
    expect(graph.rules.some((r) => r.source === 'feature-store')).toBe(false);
  });

  test('upstreamsOf lists the services an identity may call, with their local ports', () => {
    const { mesh } = seedMesh();
    expect(mesh.upstreamsOf('model-a-v2').map((s) => [s.name, s.localPort])).toEqual([['feature-store', 8080], ['log-service', 24224], ['result-writer', 8081]]);
    expect(mesh.upstreamsOf('feature-store')).toEqual([]);
  });

  test('a rule from a function covers versions added after it', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080 });
    const fn = mesh.addFunction('model-a', { versions: ['v1'] });
    fs.allowFrom(fn);
    fn.addVersion('v2');
    expect(mesh.upstreamsOf('model-a-v2').map((s) => s.name)).toEqual(['feature-store']);
  });

  test('the resolved graph follows every change to the model, and readers cannot change it', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080 });
    const fn = mesh.addFunction('model-a', { versions: ['v1'] });
    expect(mesh.graph().rules).toEqual([]);
    expect(mesh.upstreamsOf('model-a-v1')).toEqual([]);
    fs.allowFrom(fn);
    expect(mesh.graph().rules.map((r) => r.source)).toEqual(['model-a-v1']);
    fn.addVersion('v2');
    expect(mesh.upstreamsOf('model-a-v2').map((s) => s.name)).toEqual(['feature-store']);
    const logs = mesh.addService('log-service', { port: 24224 });
    logs.allowFrom(fn.version('v2'));
    expect(mesh.upstreamsOf('model-a-v2').map((s) => s.name)).toEqual(['feature-store', 'log-service']);
    expect(mesh.graph()).toBe(mesh.graph());

    const graph = mesh.graph();
    expect(Object.isFrozen(graph.rules)).toBe(true);
    expect(Object.isFrozen(graph.rules[0])).toBe(true);
    expect(() => (graph.rules as unknown[]).push({})).toThrow(TypeError);
    expect(() => (mesh.upstreamsOf('model-a-v2') as unknown[]).pop()).toThrow(TypeError);
  });

  test('an L7 deny carved out of a wider allow is ordered before it (first match wins in Consul)', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
    const fn = mesh.addFunction('model-a', { versions: ['v1'] });
    fs.allowFrom(fn, { http: { pathPrefix: '/' } });
    fs.denyFrom(fn.version('v1'), { http: { pathPrefix: '/admin' }, description: 'no admin' });
    expect(mesh.graph().rules.map((r) => [r.action, r.http?.pathPrefix, r.description])).toEqual([
      [RuleAction.DENY, '/admin', 'no admin'],
      [RuleAction.ALLOW, '/', undefined],
    ]);
  });

  test('methods are normalised (sorted) and header names lower-cased, so equal matches compare equal', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.GRPC });
    const fn = mesh.addFunction('model-a', { versions: ['v1'] });
    fs.allowFrom(fn, { http: { methods: ['POST', 'GET'], headers: [{ name: 'X-Tenant', exact: 'a' }] } });
    expect(mesh.graph().rules[0].http).toEqual({ methods: ['GET', 'POST'], headers: [{ name: 'x-tenant', exact: 'a' }] });
  });

  test('a service can be a source, and overlapping rules (function and one of its versions) are merged', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080 });
    const logs = mesh.addService('log-service', { port: 24224 });
    const fn = mesh.addFunction('model-a', { versions: ['v1'] });
    logs.allowFrom(fs);
    logs.allowFrom(fn);
    logs.allowFrom(fn.version('v1'));
    expect(mesh.graph().rules.map((r) => `${r.source}->${r.destination}`)).toEqual(['feature-store->log-service', 'model-a-v1->log-service']);
  });

  test('source() finds services, functions and function versions by name', () => {
    const { mesh } = seedMesh();
    expect(mesh.source('feature-store').identityNames()).toEqual(['feature-store']);
    expect(mesh.source('model-a').identityNames()).toEqual(['model-a-v1', 'model-a-v2']);
    expect(mesh.source('model-a-v2').identityNames()).toEqual(['model-a-v2']);
  });

  test('explicit localPort lets two services share a port', () => {
    const { mesh } = newMesh();
    mesh.addService('a', { port: 8080 });
    const b = mesh.addService('b', { port: 8080, localPort: 18080 });
    expect(b.localPort).toBe(18080);
  });

  describe('fromMeshAttributes', () => {
    test('references services of a mesh defined elsewhere; rules added here are this app\'s', () => {
      const app = new App();
      const imported = Mesh.fromMeshAttributes(new Stack(app, 'Other'), 'Shared', {
        meshName: 'platform',
        datacenter: 'eu1',
        services: [{ name: 'feature-store', port: 8080, protocol: ServiceProtocol.HTTP }],
      });
      const fn = imported.addFunction('model-x', { versions: ['v3'] });
      imported.service('feature-store').allowFrom(fn, { http: { pathPrefix: '/features' } });
      const graph = imported.graph();
      expect(graph.meshName).toBe('platform');
      expect(graph.datacenter).toBe('eu1');
      expect(graph.services[0]).toMatchObject({ name: 'feature-store', imported: true });
      expect(imported.upstreamsOf('model-x-v3').map((s) => s.name)).toEqual(['feature-store']);
    });

    test('fails when an imported service is invalid', () => {
      const err = meshError(() => Mesh.fromMeshAttributes(new Stack(new App(), 'S'), 'Shared', { meshName: 'platform', services: [{ name: 'Feature_Store', port: 8080 }] }));
      expect(err.location).toBe('S/Shared');
      expect(err.field).toBe('services("Feature_Store")');
    });
  });

  describe('bad input', () => {
    test.each([
      ['upper case', 'Feature-Store'],
      ['underscore', 'feature_store'],
      ['leading dash', '-feature'],
      ['empty', ''],
      ['64 characters', 'a'.repeat(64)],
    ])('fails when a service name is not a DNS-1123 label (%s)', (_why, name) => {
      const { mesh } = newMesh();
      const err = meshError(() => mesh.addService(name, { port: 8080 }));
      expect(err.location).toBe('Stack/Mesh');
      expect(err.field).toBe(`addService(${JSON.stringify(name)})`);
      expect(err.given).toBe(JSON.stringify(name));
      expect(err.expected).toMatch(/DNS-1123 label/);
      expect(err.message).toBe(`Stack/Mesh: addService(${JSON.stringify(name)}): given ${JSON.stringify(name)}, expected ${err.expected}`);
    });

    test.each([
      ['0', 0],
      ['70000', 70000],
      ['a fraction', 80.5],
      ['NaN', NaN],
    ])('fails when a service port is out of range (%s)', (_why, port) => {
      const { mesh } = newMesh();
      const err = meshError(() => mesh.addService('feature-store', { port }));
      expect(err.field).toBe('addService("feature-store").port');
      expect(err.expected).toBe('an integer port from 1 to 65535');
    });

    test('fails when the default local port is privileged', () => {
      const { mesh } = newMesh();
      const err = meshError(() => mesh.addService('web', { port: 443 }));
      expect(err.field).toBe('addService("web").localPort (defaults to port)');
      expect(err.given).toBe('443');
      expect(err.expected).toMatch(/from 1024 to 65535.*set localPort/);
    });

    test('fails when a local port is the Lambda Runtime API port 9001', () => {
      const { mesh } = newMesh();
      const err = meshError(() => mesh.addService('metrics', { port: 80, localPort: 9001 }));
      expect(err.field).toBe('addService("metrics").localPort');
      expect(err.expected).toMatch(/Lambda Runtime API/);
    });

    test('fails when two services collide on a local port', () => {
      const { mesh } = newMesh();
      mesh.addService('feature-store', { port: 8080 });
      const err = meshError(() => mesh.addService('result-writer', { port: 8080 }));
      expect(err.field).toBe('addService("result-writer").localPort (defaults to port)');
      expect(err.expected).toMatch(/'feature-store' already has 8080/);
    });

    test('fails when a protocol is not one of the enum', () => {
      const { mesh } = newMesh();
      const err = meshError(() => mesh.addService('feature-store', { port: 8080, protocol: 'udp' as ServiceProtocol }));
      expect(err.field).toBe('addService("feature-store").protocol');
      expect(err.expected).toBe('one of tcp, http, http2, grpc');
    });

    test('fails when a service name is given twice', () => {
      const { mesh } = newMesh();
      mesh.addService('feature-store', { port: 8080 });
      const err = meshError(() => mesh.addService('feature-store', { port: 8081 }));
      expect(err.expected).toMatch(/unique .*already service 'feature-store'/);
    });

    test('fails when a function name collides with a service name', () => {
      const { mesh } = newMesh();
      mesh.addService('scorer', { port: 8080 });
      const err = meshError(() => mesh.addFunction('scorer'));
      expect(err.field).toBe('addFunction("scorer")');
      expect(err.expected).toMatch(/already service 'scorer'/);
    });

    test('fails when two functions produce the same identity', () => {
      const { mesh } = newMesh();
      mesh.addFunction('model-a', { versions: ['v1'] });
      const model = mesh.addFunction('model');
      const err = meshError(() => model.addVersion('a-v1'));
      expect(err.field).toBe('addFunction(model).addVersion("a-v1")');
      expect(err.expected).toMatch(/'model-a-v1' is already version 'v1' of function 'model-a'/);
    });

    test.each([['V1'], ['1.0'], ['v_1'], [''], ['-v1']])('fails when a version string is invalid (%s)', (version) => {
      const { mesh } = newMesh();
      const fn = mesh.addFunction('model-a');
      const err = meshError(() => fn.addVersion(version));
      expect(err.field).toBe(`addFunction(model-a).addVersion(${JSON.stringify(version)})`);
      expect(err.given).toBe(JSON.stringify(version));
      expect(err.expected).toMatch(/DNS-1123 label, e.g. 'v1'/);
    });

    test('fails when a version is declared twice', () => {
      const { mesh } = newMesh();
      const fn = mesh.addFunction('model-a', { versions: ['v1'] });
      expect(meshError(() => fn.addVersion('v1')).expected).toMatch(/not already declared.*declared: v1/);
    });

    test('fails when an identity would exceed 63 characters', () => {
      const { mesh } = newMesh();
      const fn = mesh.addFunction('m'.repeat(60));
      expect(meshError(() => fn.addVersion('v10')).expected).toMatch(/64 characters\) is at most 63/);
    });

    test('fails when a reference names an unknown service, function, version or identity', () => {
      const { mesh } = seedMesh();
      const unknownService = meshError(() => mesh.service('feature-stor'));
      expect(unknownService.field).toBe('service');
      expect(unknownService.given).toBe('"feature-stor"');
      expect(unknownService.expected).toMatch(/feature-store, log-service, result-writer$/);
      expect(meshError(() => mesh.function('model-z')).expected).toMatch(/model-a, model-b, model-c$/);
      expect(meshError(() => mesh.function('model-a').version('v9')).expected).toMatch(/v1, v2$/);
      expect(meshError(() => mesh.source('nobody')).expected).toMatch(/model-a-v1/);
      expect(meshError(() => mesh.upstreamsOf('nobody')).field).toBe('upstreamsOf');
    });

    test('fails when a rule crosses meshes', () => {
      const app = new App();
      const stack = new Stack(app, 'Stack');
      const one = new Mesh(stack, 'One');
      const two = new Mesh(stack, 'Two');
      const fs = one.addService('feature-store', { port: 8080 });
      const foreign = two.addFunction('model-a', { versions: ['v1'] });
      const err = meshError(() => fs.allowFrom(foreign));
      expect(err.location).toBe('Stack/One');
      expect(err.field).toBe('feature-store.allowFrom(model-a).source');
      expect(err.expected).toMatch(/belongs to mesh 'two' at Stack\/Two.*fromMeshAttributes/);
    });

    test('fails when a service is allowed to call itself', () => {
      const { mesh } = newMesh();
      const fs = mesh.addService('feature-store', { port: 8080 });
      expect(meshError(() => fs.allowFrom(fs)).expected).toMatch(/other than the destination itself/);
    });

    test('fails when an L7 rule targets a TCP service', () => {
      const { mesh, logs } = seedMesh();
      const err = meshError(() => logs.allowFrom(mesh.function('model-a'), { http: { pathPrefix: '/logs' } }));
      expect(err.field).toBe('log-service.allowFrom(model-a).http');
      expect(err.expected).toMatch(/'log-service' speaks tcp.*only to http, http2 and grpc/);
    });

    test('fails when allow and deny cover the same pair (L4)', () => {
      const { mesh, logs } = seedMesh();
      const err = meshError(() => logs.denyFrom(mesh.function('model-a').version('v2')));
      expect(err.field).toBe('log-service.denyFrom(model-a-v2)');
      expect(err.expected).toMatch(/log-service\.allowFrom\(model-a\) .* model-a-v2 -> log-service, so it would be both allowed and denied/);
    });

    test('fails when allow and deny have the same HTTP match for a pair', () => {
      const { mesh, featureStore } = seedMesh();
      const err = meshError(() => featureStore.denyFrom(mesh.source('model-b-v1'), { http: { pathPrefix: '/features', methods: ['GET'] } }));
      expect(err.expected).toMatch(/both allowed and denied/);
    });

    test('fails when an L4 deny meets an L7 allow for a pair', () => {
      const { mesh, featureStore } = seedMesh();
      expect(meshError(() => featureStore.denyFrom(mesh.source('model-b'))).expected).toMatch(/both allowed and denied/);
    });

    test('fails when L4 and L7 allows are mixed for a pair', () => {
      const { mesh, featureStore } = seedMesh();
      const err = meshError(() => featureStore.allowFrom(mesh.source('model-c')));
      expect(err.expected).toMatch(/either whole-connection \(L4\) or HTTP \(L7\) rules for model-c-v1 -> feature-store/);
    });

    test('fails when the same rule is declared twice', () => {
      const { mesh } = newMesh();
      const fs = mesh.addService('feature-store', { port: 8080 });
      const fn = mesh.addFunction('model-a');
      fs.allowFrom(fn);
      expect(meshError(() => fs.allowFrom(fn)).expected).toMatch(/not already declared/);
    });

    test('fails when a function is both allowed and denied before it has versions', () => {
      const { mesh } = newMesh();
      const fs = mesh.addService('feature-store', { port: 8080 });
      const fn = mesh.addFunction('model-a');
      fs.allowFrom(fn);
      const err = meshError(() => fs.denyFrom(fn));
      expect(err.given).toBe('"deny any (L4)"');
      expect(err.expected).toMatch(/model-a -> feature-store, so it would be both allowed and denied/);
    });

    test('fails at synth when the resolved graph is inconsistent, naming the construct path', () => {
      // Every rule is checked when added; synth resolves the whole graph again as a safety net and reports
      // through CDK's validation. Simulate a graph that no longer resolves.
      const { app } = newMesh();
      expect(() => app.synth()).not.toThrow();
      const second = newMesh();
      jest.spyOn(second.mesh, 'graph').mockImplementation(() => {
        throw second.mesh._error('rules', 'x', 'a consistent model');
      });
      expect(() => second.app.synth()).toThrow(/Stack\/Mesh: rules: given "x", expected a consistent model/);
    });

    test.each([
      ['two path matchers', { pathExact: '/a', pathPrefix: '/b' }, 'pathPrefix', /at most one of pathExact, pathPrefix and pathRegex/],
      ['a path without /', { pathPrefix: 'features' }, 'pathPrefix', /starting with '\/'/],
      ['an unknown method', { methods: ['FETCH'] }, 'methods[0]', /one of GET, HEAD, POST/],
      ['a lower-case method', { methods: ['get'] }, 'methods[0]', /upper case/],
      ['a repeated method', { methods: ['GET', 'GET'] }, 'methods[1]', /each method once/],
      ['an empty match', {}, '(match)', /at least one of/],
      ['an invalid regex', { pathRegex: '/features/(' }, 'pathRegex', /valid RE2 regular expression/],
      ['a look-ahead regex', { pathRegex: '/(?!admin).*' }, 'pathRegex', /no look-around/],
      ['a header with two matchers', { headers: [{ name: 'x-a', exact: 'a', prefix: 'b' }] }, 'headers[0]', /exactly one of exact, prefix, suffix, regex or present \(given: exact, prefix\)/],
      ['a header with a bad name', { headers: [{ name: 'x a', present: true }] }, 'headers[0].name', /HTTP header name/],
      ['a header present: false', { headers: [{ name: 'x-a', present: false }] }, 'headers[0].present', /invert: true/],
    ])('fails when an HTTP match has %s', (_why, http, field, expected) => {
      const { mesh } = newMesh();
      const fs = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
      const fn = mesh.addFunction('model-a', { versions: ['v1'] });
      const err = meshError(() => fs.allowFrom(fn, { http }));
      expect(err.location).toBe('Stack/Mesh');
      expect(err.field).toBe(`feature-store.allowFrom(model-a).http.${field}`);
      expect(err.expected).toMatch(expected);
    });

    test.each([
      ['datacenter', { datacenter: 'DC_1' }],
      ['partition', { partition: 'Part' }],
      ['namespace', { namespace: 'a.b' }],
      ['meshName', { meshName: 'My Mesh' }],
      ['trustDomain', { trustDomain: 'not a domain' }],
    ])('fails when mesh prop %s is invalid', (field, props) => {
      const err = meshError(() => newMesh(props));
      expect(err.location).toBe('Stack/Mesh');
      expect(err.field).toBe(field);
    });

    test('fails when the construct id cannot be a mesh name and no meshName is given', () => {
      const err = meshError(() => new Mesh(new Stack(new App(), 'S'), 'My_Mesh'));
      expect(err.field).toBe('meshName (defaults to the construct id, lower-cased)');
      expect(err.given).toBe('"my_mesh"');
    });
  });
});

describe('placement and workloads', () => {
  test('a service is EXTERNAL unless declared otherwise', () => {
    const { mesh } = newMesh();
    expect(mesh.addService('billing', { port: 9000 }).placement).toBe(ServicePlacement.EXTERNAL);
    expect(mesh.graph().services[0].placement).toBe(ServicePlacement.EXTERNAL);
  });

  test('the placement is recorded in the graph, for declared and imported services', () => {
    const { mesh } = newMesh();
    mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
    mesh.addService('scorer', { port: 9000, placement: ServicePlacement.EC2 });
    mesh.addService('ranker', { port: 9002, placement: ServicePlacement.EKS });
    expect(mesh.graph().services.map((s) => [s.name, s.placement])).toEqual([['feature-store', 'ecs'], ['ranker', 'eks'], ['scorer', 'ec2']]);
    const imported = Mesh.fromMeshAttributes(new Stack(new App(), 'Other'), 'Shared', { meshName: 'platform', services: [{ name: 'feature-store', port: 8080, placement: ServicePlacement.ECS }] });
    expect(imported.graph().services[0]).toMatchObject({ name: 'feature-store', imported: true, placement: ServicePlacement.ECS });
  });

  test('workloadPath is the path of the construct that claimed the service', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
    expect(fs.workloadPath).toBeUndefined();
    fs.claimWorkload('services/FeatureStore', ServicePlacement.ECS);
    expect(fs.workloadPath).toBe('services/FeatureStore');
    expect(mesh.service('feature-store').workloadPath).toBe('services/FeatureStore');
  });

  test.each([['addService', (m: Mesh) => m.addService('mesh-gateway', { port: 8443 }), 'addService("mesh-gateway")'],
    ['fromMeshAttributes', () => Mesh.fromMeshAttributes(new Stack(new App(), 'S'), 'Shared', { meshName: 'platform', services: [{ name: 'mesh-gateway', port: 8443 }] }), 'services("mesh-gateway")'],
  ])('fails when a service is named mesh-gateway (%s)', (_how, declare, field) => {
    const { mesh } = newMesh();
    const err = meshError(() => declare(mesh));
    expect(err.field).toBe(field);
    expect(err.given).toBe('"mesh-gateway"');
    expect(err.expected).toMatch(/a name other than 'mesh-gateway', which the mesh gateway registers as/);
  });

  test('fails when the placement is not one of ServicePlacement', () => {
    const { mesh } = newMesh();
    const err = meshError(() => mesh.addService('billing', { port: 9000, placement: 'lambda' as ServicePlacement }));
    expect(err.field).toBe('addService("billing").placement');
    expect(err.expected).toBe('one of ecs, ec2, eks, external');
  });

  test('fails when a service is claimed twice', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
    fs.claimWorkload('services/FeatureStore', ServicePlacement.ECS);
    const err = meshError(() => fs.claimWorkload('other/FeatureStore', ServicePlacement.ECS));
    expect(err.location).toBe('Stack/Mesh');
    expect(err.field).toBe('service(feature-store).claimWorkload');
    expect(err.given).toBe('"other/FeatureStore"');
    expect(err.expected).toMatch(/one workload per service: the construct at services\/FeatureStore already runs 'feature-store'/);
    expect(fs.workloadPath).toBe('services/FeatureStore');
  });

  test('fails when the claim\'s placement is not the service\'s', () => {
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, placement: ServicePlacement.ECS });
    const err = meshError(() => fs.claimWorkload('services/FeatureStore', ServicePlacement.EC2));
    expect(err.field).toBe('service(feature-store).claimWorkload.placement');
    expect(err.given).toBe('"ec2"');
    expect(err.expected).toMatch(/the service's placement, 'ecs' \(declare it with placement: ServicePlacement.EC2 to run it as ec2\), for the workload at services\/FeatureStore/);
    expect(fs.workloadPath).toBeUndefined();
  });

  test('fails when an external service is claimed by a workload', () => {
    const { mesh } = newMesh();
    const billing = mesh.addService('billing', { port: 9000 });
    const err = meshError(() => billing.claimWorkload('services/Billing', ServicePlacement.ECS));
    expect(err.field).toBe('service(billing).claimWorkload.placement');
    expect(err.expected).toMatch(/the service's placement, 'external'/);
  });

  test('fails when an imported service is claimed', () => {
    const imported = Mesh.fromMeshAttributes(new Stack(new App(), 'Other'), 'Shared', { meshName: 'platform', services: [{ name: 'feature-store', port: 8080, placement: ServicePlacement.ECS }] });
    const err = meshError(() => imported.service('feature-store').claimWorkload('Other/FeatureStore', ServicePlacement.ECS));
    expect(err.location).toBe('Other/Shared');
    expect(err.field).toBe('service(feature-store).claimWorkload');
    expect(err.expected).toMatch(/a service declared in this app \(an imported service is run by the app that declares it\)/);
    expect(imported.service('feature-store').workloadPath).toBeUndefined();
  });
});

describe('identity claims', () => {
  test('claimIdentity declares the function and the version the model lacks, and records the claimant', () => {
    const { mesh } = newMesh();
    const v1 = mesh.claimIdentity('model-a', 'v1', 'functions/ModelA');
    expect(v1.identityName).toBe('model-a-v1');
    expect(mesh.function('model-a').versions.map((v) => v.version)).toEqual(['v1']);
    expect(mesh.identityClaimant('model-a-v1')).toBe('functions/ModelA');
    expect(mesh.graph().identities.map((i) => i.name)).toEqual(['model-a-v1']);
  });

  test('claimIdentity takes a declared version as it is', () => {
    const { mesh } = newMesh();
    const modelA = mesh.addFunction('model-a', { description: 'scores', versions: ['v1', 'v2'] });
    expect(mesh.claimIdentity('model-a', 'v2', 'functions/ModelAv2')).toBe(modelA.version('v2'));
    expect(mesh.function('model-a')).toBe(modelA);
    expect(modelA.versions.map((v) => v.version)).toEqual(['v1', 'v2']);
    expect(mesh.identityClaimant('model-a-v1')).toBeUndefined();
  });

  test('claims are per mesh, also for a mesh referenced with fromMeshAttributes', () => {
    const { mesh } = newMesh();
    const shared = Mesh.fromMeshAttributes(new Stack(new App(), 'Other'), 'Shared', { meshName: 'platform' });
    mesh.claimIdentity('model-a', 'v1', 'functions/ModelA');
    expect(shared.claimIdentity('model-a', 'v1', 'Other/ModelA').identityName).toBe('model-a-v1');
    expect(shared.identityClaimant('model-a-v1')).toBe('Other/ModelA');
    expect(mesh.identityClaimant('model-a-v1')).toBe('functions/ModelA');
  });

  test('fails when a second construct claims the same identity', () => {
    const { mesh } = newMesh();
    mesh.claimIdentity('model-a', 'v1', 'functions/ModelA');
    const err = meshError(() => mesh.claimIdentity('model-a', 'v1', 'functions/ModelAAgain'));
    expect(err.location).toBe('Stack/Mesh');
    expect(err.field).toBe('claimIdentity("model-a", "v1")');
    expect(err.given).toBe('"functions/ModelAAgain"');
    expect(err.expected).toMatch(/^one construct per identity: the construct at functions\/ModelA already runs as /);
    expect(err.expected).toMatch(/ runs as 'model-a-v1' \(add a version instead\)$/);
    expect(mesh.identityClaimant('model-a-v1')).toBe('functions/ModelA');
  });

  test('fails, claiming nothing, when the version is not a valid name', () => {
    const { mesh } = newMesh();
    const err = meshError(() => mesh.claimIdentity('model-a', 'V1.0', 'functions/ModelA'));
    expect(err.field).toBe('addFunction(model-a).addVersion("V1.0")');
    expect(mesh.identityClaimant('model-a-V1.0')).toBeUndefined();
  });

  test('fails when the function name is a service\'s', () => {
    const { mesh } = newMesh();
    mesh.addService('feature-store', { port: 8080 });
    const err = meshError(() => mesh.claimIdentity('feature-store', 'v1', 'functions/FeatureStore'));
    expect(err.field).toBe('addFunction("feature-store")');
    expect(err.expected).toMatch(/'feature-store' is already service 'feature-store'/);
  });
});

describe('HTTP matches', () => {
  test('HttpMethod lists the methods an L7 rule takes, and its values are accepted as methods', () => {
    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'];
    expect(Object.values(HttpMethod)).toEqual(methods);
    const { mesh } = newMesh();
    const fs = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
    const modelA = mesh.addFunction('model-a', { versions: ['v1'] });
    fs.allowFrom(modelA, { http: { methods: [HttpMethod.POST, HttpMethod.GET] } });
    expect(mesh.graph().rules[0].http).toEqual({ methods: ['GET', 'POST'] });
  });

  test('Mesh.describeHttpMatch renders a match as the messages do', () => {
    expect(Mesh.describeHttpMatch(undefined)).toBe('any (L4)');
    expect(Mesh.describeHttpMatch({ methods: ['GET', 'HEAD'], pathPrefix: '/features' })).toBe('GET|HEAD /features*');
    const headers = [{ name: 'x-debug', present: true, invert: true }];
    expect(Mesh.describeHttpMatch({ pathRegex: '^/v[0-9]+/', headers })).toBe('~^/v[0-9]+/ [!x-debug]');
  });
});
