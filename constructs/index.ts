export * from './core';
export * from './mesh';
export * from './network';
export * from './consul';
export * from './intentions';
