import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type App, type IPolicyValidationPlugin } from 'aws-cdk-lib';
import type {
  PluginReportJson,
  PolicyValidationReportJson,
  PolicyViolationJson,
  SuppressedViolationJson,
} from 'aws-cdk-lib/cloud-assembly-schema';
import { VALIDATION_REPORT_FILE } from 'aws-cdk-lib/cx-api';
import { addComplianceChecks } from '../../lib/validation';

/**
 * One violating resource of one rule, as listed in the synth validation report.
 */
export interface Finding {
  /** The plugin that reported it: `AwsSolutions`, `cdk-validator-cfnguard`, `Construct Annotations`, ... */
  readonly plugin: string;
  /** The rule as the plugin names it: `AwsSolutions-S1`, `s3_bucket_versioning_enabled_check`. */
  readonly ruleId: string;
  /** The id that `Validations.of(construct).acknowledge({ id, reason })` needs for this finding. */
  readonly acknowledgementId: string;
  /** `error`, `warning`, ... (`cdk synth` fails on errors; warnings are listed). */
  readonly severity: string;
  readonly constructPath?: string;
  readonly logicalId?: string;
  /** The template file, relative to the cloud assembly directory. */
  readonly template?: string;
  readonly message: string;
  readonly suggestedFix?: string;
  /** Why the finding was acknowledged (only for acknowledged findings). */
  readonly reason?: string;
  /** The construct path the acknowledgement was made on (only for acknowledged findings). */
  readonly acknowledgedAt?: string;
}

/**
 * What the compliance checks report for an app.
 */
export interface ComplianceResult {
  /** Findings that are neither fixed nor acknowledged. */
  readonly findings: Finding[];
  /** Findings suppressed by `Validations.of(...).acknowledge(...)`, with the reason. */
  readonly acknowledged: Finding[];
}

/**
 * cfn-guard's findings per template content, shared by all suites and runs on this machine (lib/validation.ts):
 * cfn-guard runs once per distinct template instead of once per synth. `LAMBDA_MESH_GUARD_CACHE=off` turns it off.
 */
export const GUARD_CACHE_DIR = process.env.LAMBDA_MESH_GUARD_CACHE === 'off' ? undefined : path.join(os.tmpdir(), 'lambda-mesh-cfn-guard-findings');

/** What test/harness/jest-environment.js keeps for every test file of a Jest worker. */
declare const lambdaMeshWorker: { cloudFormationValidatePlugin(): IPolicyValidationPlugin } | undefined;

/** The Jest worker's CloudFormation validation plugin, or undefined outside Jest's environment (one per process). */
function workerCloudFormationValidation(): IPolicyValidationPlugin | undefined {
  return typeof lambdaMeshWorker === 'undefined' ? undefined : lambdaMeshWorker.cloudFormationValidatePlugin();
}

/**
 * Synthesizes `app` with the app's compliance checks and returns the findings, as `cdk synth` reports them.
 *
 * It registers the plugins with the same `addComplianceChecks` as bin/app.ts and reads the validation report
 * that aws-cdk-lib writes into the cloud assembly, so acknowledgements are applied by CDK itself and the
 * result cannot drift from what a real synth reports. Also includes the other reports CDK puts in that file
 * (unacknowledged construct warnings, CloudFormation schema checks).
 */
export function validateCloudFormation(app: App): ComplianceResult {
  addComplianceChecks(app, { guardCacheDir: GUARD_CACHE_DIR, cloudFormationValidation: workerCloudFormationValidation() });
  const reportFile = path.join(app.outdir, VALIDATION_REPORT_FILE);
  // A report left by an earlier synth of the same app must not be mistaken for this one.
  fs.rmSync(reportFile, { force: true });
  try {
    // force: the app may have been synthesized before the plugins were registered (Template.fromStack).
    app.synth({ force: true });
  } catch (e) {
    // Under Jest the app runs in "inmemory" mode, where a failing validation throws after writing the report.
    // Every other synth error is a real failure of the code under test.
    if (!(e instanceof Error && e.message.includes(VALIDATION_REPORT_FILE) && fs.existsSync(reportFile))) {
      throw e;
    }
  }
  if (!fs.existsSync(reportFile)) {
    throw new Error(`synth wrote no validation report at ${reportFile}: were the validation plugins skipped?`);
  }
  return complianceResultOf(app.outdir);
}

/**
 * The findings in the validation report of the cloud assembly in `assemblyDir`, such as the one `cdk synth` wrote.
 */
export function complianceResultOf(assemblyDir: string): ComplianceResult {
  const report = JSON.parse(fs.readFileSync(path.join(assemblyDir, VALIDATION_REPORT_FILE), 'utf8')) as PolicyValidationReportJson;
  return toComplianceResult(report);
}

/**
 * Renders findings one per block, with the id to acknowledge each, for assertion messages.
 */
export function formatFindings(findings: readonly Finding[]): string {
  return findings
    .map((f) => {
      const where = [
        f.constructPath ?? '(no construct path)',
        f.template && f.logicalId ? `(${f.template} ${f.logicalId})` : undefined,
      ]
        .filter((x) => x !== undefined)
        .join(' ');
      const lines = [`- ${f.severity.toUpperCase()} [${f.plugin}] ${f.ruleId} at ${where}`, `    ${f.message}`];
      if (f.suggestedFix) {
        lines.push(`    fix: ${f.suggestedFix}`);
      }
      if (f.reason !== undefined) {
        lines.push(`    acknowledged at ${f.acknowledgedAt ?? '?'}: ${f.reason}`);
      } else {
        lines.push(`    acknowledge with: { id: '${f.acknowledgementId}', reason: '...' }`);
      }
      return lines.join('\n');
    })
    .join('\n');
}

/**
 * Throws, listing them, if the app has findings that are neither fixed nor acknowledged (warnings included:
 * they are acknowledgeable too, and a clean report is the goal). Returns the result for further assertions.
 */
export function expectNoUnacknowledgedFindings(app: App): ComplianceResult {
  const result = validateCloudFormation(app);
  if (result.findings.length > 0) {
    throw new Error(
      `${result.findings.length} unacknowledged compliance finding(s):\n${formatFindings(result.findings)}`,
    );
  }
  return result;
}

function toComplianceResult(report: PolicyValidationReportJson): ComplianceResult {
  const findings: Finding[] = [];
  const acknowledged: Finding[] = [];
  for (const plugin of report.pluginReports) {
    // A plugin that crashed (e.g. the cfn-guard binary did not run) reports failure without violations:
    // treating that as "no findings" would pass every test while nothing was checked.
    if (plugin.conclusion === 'failure' && plugin.violations.length === 0 && !plugin.suppressedViolations?.length) {
      throw new Error(`validation plugin ${plugin.pluginName} failed: ${plugin.metadata?.error ?? '(no message)'}`);
    }
    for (const violation of plugin.violations) {
      findings.push(...toFindings(plugin, violation));
    }
    for (const violation of plugin.suppressedViolations ?? []) {
      acknowledged.push(...toFindings(plugin, violation));
    }
  }
  return { findings, acknowledged };
}

function toFindings(plugin: PluginReportJson, violation: PolicyViolationJson | SuppressedViolationJson): Finding[] {
  const suppression = 'acknowledgedId' in violation ? violation : undefined;
  return violation.violatingConstructs.map((construct) => ({
    plugin: plugin.pluginName,
    ruleId: violation.ruleName,
    acknowledgementId: suppression?.acknowledgedId ?? acknowledgementId(plugin.pluginName, violation.ruleName),
    severity: violation.severity === 'custom' ? (violation.customSeverity ?? 'custom') : violation.severity,
    constructPath: construct.constructPath || undefined,
    logicalId: construct.cloudFormationResource?.logicalId,
    template: construct.cloudFormationResource?.templatePath,
    message: violation.description,
    suggestedFix: violation.suggestedFix,
    reason: suppression ? (suppression.reason ?? '') : undefined,
    acknowledgedAt: suppression?.acknowledgedAt,
  }));
}

/**
 * Mirrors how aws-cdk-lib qualifies rule ids (validation/private/validation-id.js): the namespace is the plugin
 * name with spaces as dashes, unless the rule name already carries one (construct annotations do).
 */
function acknowledgementId(pluginName: string, ruleName: string): string {
  if (hasTopLevelNamespace(ruleName)) {
    return ruleName.replace(/ /g, '-');
  }
  return `${pluginName.replace(/ /g, '-')}::${ruleName.replace(/ /g, '-')}`;
}

// `::` inside brackets is part of a finding id (`IAM5[Resource::*]`), not a namespace separator.
function hasTopLevelNamespace(ruleName: string): boolean {
  let depth = 0;
  for (let i = 0; i < ruleName.length; i++) {
    const c = ruleName[i];
    if (c === '[' || c === '(' || c === '{') {
      depth++;
    } else if (c === ']' || c === ')' || c === '}') {
      depth--;
    } else if (c === ':' && ruleName[i + 1] === ':' && depth === 0) {
      return true;
    }
  }
  return false;
}
