/** @type {import('jest').Config} */
module.exports = {
  // Node's, keeping one CloudFormation validation engine per worker (test/harness/jest-environment.js).
  testEnvironment: '<rootDir>/test/harness/jest-environment.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // esbuild, one file at a time (test/harness/esbuild-transform.js): the type check is `npm run typecheck`.
    '^.+\\.tsx?$': '<rootDir>/test/harness/esbuild-transform.js',
  },
  setupFiles: ['<rootDir>/test/harness/jest-setup.ts'],
  snapshotSerializers: ['<rootDir>/test/harness/snapshot-serializer.ts'],
  // Every core (Jest's default leaves one free): `npm test` runs ESLint and tsc beside Jest only at the start.
  maxWorkers: '100%',
  testTimeout: 120000,
};
