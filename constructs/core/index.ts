export * from './errors';
export * from './names';
