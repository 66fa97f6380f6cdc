/**
 * The core module's helpers for the library's other modules, after aws-cdk-lib's `core/lib/helpers-internal`: the
 * resources every construct makes the same hardened way. The package index does not export it, so it is not API;
 * only `constructs/` may import it (eslint.config.mjs forbids it to lib/, bin/, scripts/, examples/ and bench/).
 *
 * It pulls in aws-cdk-lib, so the Lambda handlers do not import it: they take what they share (cfn-response,
 * handler-log) and the runtime-safe errors.ts and names.ts directly, and their bundles stay small.
 */
export { newAlarmTopic } from './private/alarms';
export { newVpcFunctionRole, type VpcFunctionRole, type VpcFunctionRoleOptions } from './private/function-role';
export { allowCloudWatchLogs, newMeshKey } from './private/kms';
export { fillPlaceholders, shippedFile } from './private/shipped-files';
export { contentHash, stageFiles } from './private/stage';
export {
  newVpcFunction,
  type VpcFunction,
  type VpcFunctionNetwork,
  type VpcFunctionOptions,
} from './private/vpc-function';
