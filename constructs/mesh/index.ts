export * from './types';
export * from './mesh';
