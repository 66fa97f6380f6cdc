// Jest transform (jest.config.js): TypeScript to CommonJS with esbuild, one file at a time. The type check is
// `npm run typecheck`, and tsconfig.json's `isolatedModules` keeps every file transpilable on its own. esbuild is
// already a dependency (it bundles the Lambda handlers) and transpiles a file in a fraction of ts-jest's time.
const crypto = require('crypto');
const esbuild = require('esbuild');

/** The tsconfig.json options that change what a file compiles to. */
const tsconfigRaw = {
  compilerOptions: { target: 'ES2022', useDefineForClassFields: true, experimentalDecorators: true, esModuleInterop: true },
};

module.exports = {
  getCacheKey(source, filename) {
    return crypto.createHash('sha256').update(`${esbuild.version}\0${JSON.stringify(tsconfigRaw)}\0${filename}\0${source}`).digest('hex');
  },
  process(source, filename) {
    const result = esbuild.transformSync(source, {
      loader: filename.endsWith('x') ? 'tsx' : 'ts',
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      sourcemap: 'inline',
      sourcefile: filename,
      tsconfigRaw,
    });
    return { code: result.code };
  },
};
