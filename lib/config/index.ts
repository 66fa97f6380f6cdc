export * from './types';
export * from './schema';
export * from './default';
export * from './load';
