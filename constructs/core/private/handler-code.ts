import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
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
          bundleHandlerCached(entryPath, outputDir);
          return true;
        },
      },
    },
  });
}

/** Where bundles made at synth are kept between synths of this checkout (one directory per entry). */
const BUNDLE_CACHE = path.join(os.tmpdir(), 'lambda-mesh-handler-bundles');

/**
 * Bundles like {@link bundleHandler}, reusing the previous bundle of the same entry while none of the files esbuild
 * read for it has changed (their SHA-256s are kept beside the bundle, from esbuild's metafile). A synth in this
 * repository bundles every handler again otherwise: hundreds of times in one test run.
 */
export function bundleHandlerCached(entryPath: string, outputDir: string): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuildVersion = (require('esbuild') as typeof Esbuild).version;
  // Keyed by entry, esbuild version and this file (which holds the build options): a change to any bundles again.
  const key = crypto.createHash('sha256').update(`${entryPath}\0${esbuildVersion}\0${sha256(__filename)}`).digest('hex');
  const dir = path.join(BUNDLE_CACHE, key.slice(0, 24));
  const inputsFile = path.join(dir, 'inputs.json');
  const cached = path.join(dir, 'index.js');
  try {
    const inputs = JSON.parse(fs.readFileSync(inputsFile, 'utf8')) as Record<string, string>;
    if (Object.keys(inputs).length > 0 && Object.entries(inputs).every(([file, hash]) => fs.existsSync(file) && sha256(file) === hash) && fs.existsSync(cached)) {
      fs.mkdirSync(outputDir, { recursive: true });
      fs.copyFileSync(cached, path.join(outputDir, 'index.js'));
      return;
    }
  } catch {
    // No usable cache entry: bundle.
  }
  const inputs = bundleHandler(entryPath, outputDir);
  try {
    // Written to a fresh directory and renamed into place, so a concurrent synth never reads half an entry.
    const staging = `${dir}.${process.pid}.${crypto.randomUUID()}`;
    fs.mkdirSync(staging, { recursive: true });
    fs.copyFileSync(path.join(outputDir, 'index.js'), path.join(staging, 'index.js'));
    fs.writeFileSync(path.join(staging, 'inputs.json'), JSON.stringify(Object.fromEntries(inputs.map((f) => [f, sha256(f)]))));
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(staging, dir);
  } catch {
    // The cache is an optimisation: a failure to write it changes nothing.
  }
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Bundles one handler entry into `<outputDir>/index.js` (Node.js 24, CommonJS, AWS SDK v3 left to the runtime).
 * Returns the absolute paths of the files esbuild read.
 */
export function bundleHandler(entryPath: string, outputDir: string): string[] {
  // esbuild is a dev dependency: present wherever the TypeScript sources are, and loaded only there (a
  // top-level import would make the published package need it).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof Esbuild;
  const result = esbuild.buildSync({
    entryPoints: [entryPath],
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'cjs',
    outfile: path.join(outputDir, 'index.js'),
    external: ['@aws-sdk/*'],
    logLevel: 'error',
    metafile: true,
  });
  return Object.keys(result.metafile?.inputs ?? {}).map((f) => path.resolve(f));
}
