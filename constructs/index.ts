export * from './core';
export * from './mesh';
export * from './network';
export * from './consul';
export * from './intentions';
export * from './function';
export * from './k8s';
export * from './eks';
