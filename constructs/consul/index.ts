export * from './types';
export * from './package';
export * from './cluster';
export * from './mesh-gateway';
export * from './image';
export * from './auth-method';
