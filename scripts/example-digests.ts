/**
 * Synthesizes every example config with the CDK CLI, exactly as `npm run synth -- -c config=<file>` does, and
 * prints one SHA-256 per emitted file (CloudFormation templates, asset manifests, Kubernetes YAML). A refactoring
 * that must not change behaviour shows the same digests before and after:
 *
 *   npx tsx scripts/example-digests.ts > before.txt   # on the old commit
 *   npx tsx scripts/example-digests.ts > after.txt    # on the new one
 *   diff before.txt after.txt
 *
 * Like `npm run synth`, it rewrites the repository's dist/. `--keep DIR` leaves the synthesized files in DIR (one directory per config) to diff them file by file.
 */
import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'node_modules', '.bin', 'cdk');
const configDir = path.join(root, 'examples', 'config');

function main(argv: readonly string[]): void {
  const keepAt = argv.indexOf('--keep');
  const keepDir = keepAt >= 0 ? path.resolve(argv[keepAt + 1] ?? '') : undefined;
  const work = keepDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-digests-'));
  const configs = fs.readdirSync(configDir).filter((f) => f.endsWith('.yaml')).sort();
  for (const file of configs) {
    const name = path.basename(file, '.yaml');
    const outdir = path.join(work, name);
    fs.rmSync(outdir, { recursive: true, force: true });
    const cdkOut = path.join(outdir, 'cdk.out');
    const dist = path.join(outdir, 'dist');
    const result = spawnSync(
      cli,
      ['synth', '--quiet', '--output', cdkOut, '-c', `config=${path.join('examples', 'config', file)}`],
      { cwd: root, stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' } },
    );
    if (result.status !== 0) {
      throw new Error(`synth of ${file} failed (exit ${String(result.status)})`);
    }
    // bin/app.ts writes the Kubernetes files to dist/ in the repository, as `npm run synth` does.
    fs.cpSync(path.join(root, 'dist'), dist, { recursive: true });
    for (const [rel, digest] of digests(outdir)) {
      console.log(`${digest}  ${name}/${rel}`);
    }
  }
  if (!keepDir) {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The emitted files under `dir` that describe the deployment, with their digests, in a stable order. */
function digests(dir: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const walk = (sub: string): void => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const rel = path.join(sub, entry.name);
      if (entry.isDirectory()) {
        // Staged asset directories are covered by the asset hashes in the manifests and templates.
        if (!entry.name.startsWith('asset.')) {
          walk(rel);
        }
      } else if (/\.(template\.json|assets\.json|ya?ml)$/.test(entry.name)) {
        out.push([rel, createHash('sha256').update(fs.readFileSync(path.join(dir, rel))).digest('hex')]);
      }
    }
  };
  walk('');
  return out;
}

main(process.argv.slice(2));
