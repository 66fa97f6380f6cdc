/**
 * The consul module's helpers for the library's other modules (the services put their ECS tasks into the mesh with
 * the same consul-ecs containers as the mesh gateway). Not exported by the package index, so not API; only
 * `constructs/` may import it (see constructs/core/internal.ts).
 */
export { WORKLOAD_ROLE_TAGS } from './private/auth-method-objects';
export {
  addConsulEcsContainers,
  CONSUL_ECS,
  CONSUL_ECS_OVERHEAD_MIB,
  MIN_DATAPLANE_MEMORY_MIB,
  serviceConfig,
} from './private/consul-ecs';
