/**
 * The intentions module's helpers for the library's other modules (the auth method's function calls the Consul API
 * the way the intentions' and the registrar's functions do). Not exported by the package index, so not API; only
 * `constructs/` may import it (see constructs/core/internal.ts).
 */
export { grantConsulAccess } from './private/consul-access';
