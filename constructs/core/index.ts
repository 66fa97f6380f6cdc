// The public surface: what jsii can express (classes, interfaces, enums). The name checks and value
// rendering in names.ts and errors.ts are shared inside the library only.
export { LambdaMeshError, type LambdaMeshErrorDetails } from './errors';
export { MeshKey, type MeshKeyProps } from './key';
export { StagedDirectory } from './staged-directory';
export { Acknowledgements } from './validation';
