/**
 * The main job: synthesizes the environment offline (CloudFormation into cdk.out/, Kubernetes YAML into dist/)
 * with the project's own CDK CLI, then prints a summary. Extra arguments go to `cdk synth`
 * (e.g. `npm run synth -- -c config=examples/config/minimal.yaml`).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { formatSummary, SUMMARY_FILE, type SynthSummary } from '../lib/summary';

const root = path.resolve(__dirname, '..');
const outdir = path.join(root, 'cdk.out');
const cli = path.join(root, 'node_modules', '.bin', 'cdk');

// A stale summary must never be printed for a failed run.
fs.rmSync(path.join(outdir, SUMMARY_FILE), { force: true });
const result = spawnSync(cli, ['synth', '--quiet', '--output', outdir, ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  // Offline: no version check, no notices (cdk.json), no telemetry (cdk.json context).
  env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
});
if (result.error) {
  console.error(`synth: could not run ${cli}: ${result.error.message}`);
  process.exit(1);
}
if (result.status !== 0) {
  process.exit(result.status ?? 1);
}
const summary = JSON.parse(fs.readFileSync(path.join(outdir, SUMMARY_FILE), 'utf8')) as SynthSummary;
console.log(`\n${formatSummary(summary)}`);
