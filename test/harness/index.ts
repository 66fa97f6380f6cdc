export * from './cdk-context';
export * from './cloudformation';
export * from './kubernetes';
export { ASSET_HASH_PLACEHOLDER, normalizeAssetHashes } from './snapshot-serializer';
export * from './secret-scan';
export * from './consul-ecs-schema';
export * from './file-snapshot';
