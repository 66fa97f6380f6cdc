/**
 * Writes the snapshot of the integration test (test/integ/integ.default-environment.ts) the way integ-runner
 * would, for as long as no integ-runner release reads the cloud assembly schema this aws-cdk-lib writes
 * (integ-runner 2.197.x stops at schema 53; aws-cdk-lib 2.276 writes 55): `npm run integ:snapshot`.
 *
 * Like integ-runner it runs the test file as a CDK app in test/integ, with the context the CDK CLI passes for
 * `integ-runner`'s synth (the recommended feature flags, no path or asset metadata, no version reporting, no
 * stack traces) and integ-runner's dummy CDK_INTEG_* environment, into `<file>.snapshot/`; then it keeps what
 * integ-runner keeps for a test without the update workflow: the manifest (without traces), integ.json, the
 * templates and asset manifests, not the assets. Unlike integ-runner it also leaves out tree.json and the stacks'
 * metadata files (half of the size, none of it read by the snapshot diff), and it has the app fix the assertion
 * calls' `salt` (`LAMBDA_MESH_INTEG_SALT`), which integ-tests-alpha sets to the synth time: otherwise the assertion
 * stack's template, and its hash in the manifest, would change on every run.
 *
 * test/integ/snapshot.test.ts re-synthesizes with {@link synthesizeSnapshot} and compares with asset hashes
 * normalised.
 *
 * @see https://github.com/aws/aws-cdk-cli/tree/main/packages/%40aws-cdk/integ-runner
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { compare } from '../constructs/core/names';

const root = path.resolve(__dirname, '..');

/** The integration test app. */
export const INTEG_TEST_FILE = path.join(root, 'test', 'integ', 'integ.default-environment.ts');
/** Where integ-runner keeps its snapshot: next to the test, `<file name>.snapshot`. */
export const SNAPSHOT_DIR = `${INTEG_TEST_FILE}.snapshot`;
/** The command that rewrites the snapshot. */
export const REGENERATE_COMMAND = 'npm run integ:snapshot';
/** What every assertion call's `salt` is in the snapshot (integ-runner's own synth keeps the synth time). */
export const SNAPSHOT_SALT = '0';

/** The snapshot's files, by name, parsed. */
export type Snapshot = Map<string, unknown>;

// The context `cdk synth` gets when integ-runner calls it with pathMetadata, assetMetadata and versionReporting
// off and without --debug (the CLI records no stack traces then); the app's own cdk.json flags win over these.
const CLI_CONTEXT: Record<string, unknown> = {
  ...CURRENTLY_RECOMMENDED_FLAGS,
  'aws:cdk:enable-path-metadata': false,
  'aws:cdk:enable-asset-metadata': false,
  'aws:cdk:version-reporting': false,
  'aws:cdk:disable-stack-trace': true,
  'aws:cdk:bundling-stacks': ['**'],
};
// integ-runner's DEFAULT_SYNTH_OPTIONS.env, so apps that read them synthesize as under integ-runner.
const INTEG_ENV: Record<string, string> = {
  CDK_INTEG_ACCOUNT: '12345678',
  CDK_INTEG_REGION: 'test-region',
  CDK_INTEG_HOSTED_ZONE_ID: 'Z23ABC4XYZL05B',
  CDK_INTEG_HOSTED_ZONE_NAME: 'example.com',
  CDK_INTEG_DOMAIN_NAME: '*.example.com',
  CDK_INTEG_CERT_ARN: 'arn:aws:acm:test-region:12345678:certificate/86468209-a272-595d-b831-0efb6421265z',
  CDK_INTEG_SUBNET_ID: 'subnet-0dff1a399d8f6f92c',
};

/**
 * Synthesizes the integration test app and returns its snapshot (nothing is written).
 */
export function synthesizeSnapshot(): Snapshot {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-integ-'));
  try {
    // The CLI sets these from the caller's credentials; the snapshot must not depend on them.
    const callerEnv = { ...process.env };
    delete callerEnv.CDK_DEFAULT_ACCOUNT;
    delete callerEnv.CDK_DEFAULT_REGION;
    const result = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), [path.basename(INTEG_TEST_FILE)], {
      cwd: path.dirname(INTEG_TEST_FILE),
      encoding: 'utf8',
      env: { ...callerEnv, ...INTEG_ENV, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify(CLI_CONTEXT), LAMBDA_MESH_INTEG_SALT: SNAPSHOT_SALT },
    });
    if (result.error || result.status !== 0) {
      throw new Error(`synthesizing ${path.relative(root, INTEG_TEST_FILE)} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stderr}${result.stdout}`);
    }
    return snapshotOf(outdir);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * Reads what integ-runner would keep of a cloud assembly (see the file comment).
 */
export function snapshotOf(assemblyDir: string): Snapshot {
  const manifest = readJson(path.join(assemblyDir, 'manifest.json')) as AssemblyManifest;
  const snapshot: Snapshot = new Map();
  const artifacts: Record<string, Artifact> = {};
  for (const [id, artifact] of Object.entries(manifest.artifacts ?? {})) {
    if (artifact.type === 'cdk:tree') {
      continue;
    }
    const kept: Artifact = { ...artifact };
    delete kept.additionalMetadataFile;
    if (kept.metadata) {
      // integ-runner's cleanManifest: the traces name files and lines of the machine that synthesized.
      kept.metadata = Object.fromEntries(Object.entries(kept.metadata).map(([p, entries]) => [p, entries.map(({ type, data }) => ({ type, data }))]));
    }
    artifacts[id] = kept;
    const file = artifact.type === 'aws:cloudformation:stack' ? artifact.properties?.templateFile : artifact.type === 'cdk:asset-manifest' ? artifact.properties?.file : undefined;
    if (file !== undefined) {
      snapshot.set(file, readJson(path.join(assemblyDir, file)));
    }
  }
  snapshot.set('manifest.json', { ...manifest, artifacts });
  snapshot.set('integ.json', readJson(path.join(assemblyDir, 'integ.json')));
  snapshot.set('cdk.out', readJson(path.join(assemblyDir, 'cdk.out')));
  return new Map([...snapshot.entries()].sort(([a], [b]) => compare(a, b)));
}

/** Reads the committed snapshot. */
export function readSnapshot(dir: string = SNAPSHOT_DIR): Snapshot {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
  return new Map(files.map((f) => [f, readJson(path.join(dir, f))]));
}

/** Replaces the snapshot directory with `snapshot`, each file formatted as aws-cdk-lib writes it. */
export function writeSnapshot(snapshot: Snapshot, dir: string = SNAPSHOT_DIR): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [file, content] of snapshot) {
    const indent = file === 'cdk.out' ? undefined : file.endsWith('.template.json') ? 1 : 2;
    fs.writeFileSync(path.join(dir, file), JSON.stringify(content, undefined, indent));
  }
}

function readJson(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

interface Artifact {
  readonly type: string;
  readonly properties?: { readonly templateFile?: string; readonly file?: string };
  additionalMetadataFile?: string;
  metadata?: Record<string, Array<{ type: string; data?: unknown; trace?: string[] }>>;
}

interface AssemblyManifest {
  readonly artifacts?: Record<string, Artifact>;
}

if (require.main === module) {
  const snapshot = synthesizeSnapshot();
  writeSnapshot(snapshot);
  const bytes = [...snapshot.keys()].reduce((n, f) => n + fs.statSync(path.join(SNAPSHOT_DIR, f)).size, 0);
  console.log(`wrote ${path.relative(process.cwd(), SNAPSHOT_DIR)}: ${snapshot.size} files, ${Math.round(bytes / 1024)} KiB`);
}
