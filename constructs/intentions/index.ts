export * from './intentions';
export * from './registrar';
