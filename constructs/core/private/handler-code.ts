import * as fs from 'fs';
import * as path from 'path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as Esbuild from 'esbuild';

/**
 * The Lambda handlers that live in this library: name -> entry file, relative to `constructs/`.
 * `npm run build` bundles each one into `build/handlers/<name>/index.js` (scripts/bundle-handlers.ts).
 */
export const HANDLERS: Readonly<Record<string, string>> = {
  'consul-secrets': 'consul/private/secrets-handler/lambda.ts',
  'consul-auth-method': 'consul/private/auth-method-handler/lambda.ts',
  'consul-intentions': 'intentions/private/intentions-handler/lambda.ts',
  'identity-registrar': 'intentions/private/registrar-handler/lambda.ts',
  'certificate-rotation': 'intentions/private/rotation-handler/index.ts',
  'kubernetes-secrets': 'eks/private/kubernetes-secrets-handler/lambda.ts',
};

/** Where a handler's bundle sits in the published package (`build/handlers/<name>`). */
export function packagedHandlerDir(name: string): string {
  return path.resolve(__dirname, '..', '..', '..', 'handlers', name);
}

/**
 * A library handler's code, as one bundled `index.js` (export `handler`).
 *
 * In the published package it was bundled at build time, so users need neither esbuild nor Docker. In this
 * repository the handler is TypeScript: it is bundled at synth, locally, with esbuild (a dev dependency).
 */
export function handlerCode(name: string): lambda.Code {
  const entry = HANDLERS[name];
  if (entry === undefined) {
    throw new Error(`no handler called ${name}`);
  }
  const packaged = packagedHandlerDir(name);
  if (fs.existsSync(path.join(packaged, 'index.js'))) {
    return lambda.Code.fromAsset(packaged);
  }
  const entryPath = path.resolve(__dirname, '..', '..', entry);
  return lambda.Code.fromAsset(path.dirname(entryPath), {
    bundling: {
      // Never used: local bundling always succeeds or throws; CDK requires an image all the same.
      image: lambda.Runtime.NODEJS_24_X.bundlingImage,
      local: {
        tryBundle(outputDir: string): boolean {
          bundleHandler(entryPath, outputDir);
          return true;
        },
      },
    },
  });
}

/** Bundles one handler entry into `<outputDir>/index.js` (Node.js 24, CommonJS, AWS SDK v3 left to the runtime). */
export function bundleHandler(entryPath: string, outputDir: string): void {
  // esbuild is a dev dependency: present wherever the TypeScript sources are, and loaded only there (a
  // top-level import would make the published package need it).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof Esbuild;
  esbuild.buildSync({
    entryPoints: [entryPath],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    outfile: path.join(outputDir, 'index.js'),
    external: ['@aws-sdk/*'],
    logLevel: 'error',
  });
}
