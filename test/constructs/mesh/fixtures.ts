import { type Mesh, type MeshService, ServiceProtocol } from '../../../constructs/mesh';

/** What {@link addSeedScenario} declares. */
export interface SeedScenario {
  readonly mesh: Mesh;
  readonly featureStore: MeshService;
  readonly logs: MeshService;
  readonly results: MeshService;
}

/**
 * Declares the seed scenario in `mesh`: three backends, three models (model-a with two versions), each model
 * allowed GET /features, POST /results and L4 to the log service.
 */
export function addSeedScenario(mesh: Mesh): SeedScenario {
  const featureStore = mesh.addService('feature-store', { port: 8080, protocol: ServiceProtocol.HTTP });
  const logs = mesh.addService('log-service', { port: 24224 });
  const results = mesh.addService('result-writer', { port: 8081, protocol: ServiceProtocol.HTTP });
  for (const [name, versions] of [['model-a', ['v1', 'v2']], ['model-b', ['v1']], ['model-c', ['v1']]] as const) {
    const fn = mesh.addFunction(name, { versions: [...versions] });
    featureStore.allowFrom(fn, { http: { pathPrefix: '/features', methods: ['GET'] } });
    results.allowFrom(fn, { http: { pathPrefix: '/results', methods: ['POST'] } });
    logs.allowFrom(fn);
  }
  return { mesh, featureStore, logs, results };
}
