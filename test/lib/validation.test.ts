import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import type { PolicyValidationReportJson } from 'aws-cdk-lib/cloud-assembly-schema';
import { VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import { addComplianceChecks } from '../../lib/validation';
import { newTestApp } from '../harness';

/** cfn-guard's violations in the synth report of `app`: rule, template file and logical ids, in report order. */
function guardViolations(app: App): string[] {
  try {
    app.synth({ force: true });
  } catch (e) {
    // Jest apps run "inmemory": a failing validation throws once the report is written.
    if (!(e instanceof Error && e.message.includes(VALIDATION_REPORT_FILE))) {
      throw e;
    }
  }
  const report = JSON.parse(fs.readFileSync(path.join(app.outdir, VALIDATION_REPORT_FILE), 'utf8')) as PolicyValidationReportJson;
  const guard = report.pluginReports.find((p) => p.pluginName === 'cdk-validator-cfnguard')!;
  return guard.violations.flatMap((v) =>
    v.violatingConstructs.map((c) => `${v.ruleName} ${path.basename(c.cloudFormationResource?.templatePath ?? '?')} ${c.cloudFormationResource?.logicalId ?? '?'}`),
  );
}

/** Two stacks with known cfn-guard findings of different rules, and one without any. */
function appWithFindings(): App {
  const app = newTestApp();
  const buckets = new Stack(app, 'Buckets');
  // No versioning, no logging, no replication: several Control Tower rules report it.
  new s3.Bucket(buckets, 'Plain', { removalPolicy: RemovalPolicy.DESTROY });
  const tables = new Stack(app, 'Tables');
  // No point-in-time recovery.
  new dynamodb.Table(tables, 'Plain', { partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING }, removalPolicy: RemovalPolicy.DESTROY });
  new Stack(app, 'Empty').templateOptions.description = 'nothing to report';
  return app;
}

describe('addComplianceChecks with a cfn-guard cache (guardCacheDir)', () => {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-mesh-guard-cache-test-'));

  const uncached = appWithFindings();
  addComplianceChecks(uncached);
  const expected = guardViolations(uncached);

  test('the uncached run finds violations in both stacks with findings (the comparison below is not vacuous)', () => {
    expect(expected.some((v) => v.includes('Buckets.template.json'))).toBe(true);
    expect(expected.some((v) => v.includes('Tables.template.json'))).toBe(true);
  });

  test('a cold cache (the three templates checked in one cfn-guard run) reports what the plugin reports without it', () => {
    const app = appWithFindings();
    addComplianceChecks(app, { guardCacheDir: cacheDir });
    expect(guardViolations(app)).toEqual(expected);
    // One stored report per template.
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith('.json'))).toHaveLength(3);
  });

  test('a warm cache reports the same, with this synth\'s template paths, without running cfn-guard', () => {
    const app = appWithFindings();
    addComplianceChecks(app, { guardCacheDir: cacheDir });
    const log = path.join(cacheDir, 'runs.log');
    process.env.LAMBDA_MESH_GUARD_LOG = log;
    try {
      expect(guardViolations(app)).toEqual(expected);
    } finally {
      delete process.env.LAMBDA_MESH_GUARD_LOG;
    }
    expect(fs.existsSync(log)).toBe(false);
  });

  test('a changed template misses the cache: only it is checked, and its new finding is reported', () => {
    const app = appWithFindings();
    new s3.Bucket(app.node.findChild('Tables'), 'Second', { removalPolicy: RemovalPolicy.DESTROY });
    addComplianceChecks(app, { guardCacheDir: cacheDir });
    const log = path.join(cacheDir, 'runs-changed.log');
    process.env.LAMBDA_MESH_GUARD_LOG = log;
    let found: string[];
    try {
      found = guardViolations(app);
    } finally {
      delete process.env.LAMBDA_MESH_GUARD_LOG;
    }
    const runs = fs.readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { templates: number });
    expect(runs.map((r) => r.templates)).toEqual([1]);
    expect(found.filter((v) => v.includes('Tables.template.json') && v.includes('Second'))).not.toEqual([]);
    expect(found.filter((v) => v.includes('Buckets.template.json'))).toEqual(expected.filter((v) => v.includes('Buckets.template.json')));
  });
});
