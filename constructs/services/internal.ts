/**
 * The services module's helpers for the library's other modules (the EKS side looks up the ECS and EC2 workload
 * constructs that run a service). Not exported by the package index, so not API; only `constructs/` may import it
 * (see constructs/core/internal.ts).
 */
export { findWorkload } from './private/workload';
