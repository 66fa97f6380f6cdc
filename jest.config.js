/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    // isolatedModules in tsconfig.json makes ts-jest transpile per file: the type check is `npm run typecheck`.
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  setupFiles: ['<rootDir>/test/harness/jest-setup.ts'],
  snapshotSerializers: ['<rootDir>/test/harness/snapshot-serializer.ts'],
  testTimeout: 120000,
};
