export * from './types';
export * from './base-image';
export * from './function';
export * from './python-function';
