import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App } from 'aws-cdk-lib';

/**
 * The repository root (the directory that holds cdk.json).
 */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

let cachedContext: Readonly<Record<string, unknown>> | undefined;

/**
 * Returns the `context` block of the repository's cdk.json: the feature flags `cdk synth` runs with.
 *
 * Jest does not read cdk.json, so without this every test App would run with the library defaults
 * and tests would check other templates than the ones that get deployed.
 */
export function cdkJsonContext(): Record<string, unknown> {
  if (!cachedContext) {
    const file = path.join(REPO_ROOT, 'cdk.json');
    const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!isRecord(parsed) || !isRecord(parsed.context)) {
      throw new Error(`${file}: expected an object with a "context" object`);
    }
    cachedContext = Object.freeze({ ...parsed.context });
  }
  // A copy, so a test that mutates it cannot change what later tests see.
  return structuredClone({ ...cachedContext });
}

/**
 * Returns an App with the cdk.json context (plus `extraContext`, which wins) and its own output directory,
 * so tests never share or leave behind a cdk.out in the repository.
 */
export function newTestApp(extraContext: Record<string, unknown> = {}): App {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-test-'));
  return new App({ outdir, context: { ...cdkJsonContext(), ...extraContext } });
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
