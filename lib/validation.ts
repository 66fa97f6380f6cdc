// The app's compliance checks, shared by bin/app.ts and the test harness so that tests and `cdk synth`
// report the same findings.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import {
  type App,
  CloudFormationValidatePlugin,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  type PolicyViolation,
  Validations,
} from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

const registered = new WeakSet<App>();

/**
 * Registers the cdk-nag AwsSolutions pack, the cfn-guard Control Tower rules and aws-cdk-lib's CloudFormation
 * validation as validation plugins on `app`.
 *
 * Every synth then checks all stacks: `cdk synth` (bin/app.ts) and the test harness
 * (test/harness/cloudformation.ts) call this, so both report the same findings. Calling it again for the
 * same app does nothing, so findings are never doubled.
 *
 * Findings are fixed in code, or acknowledged on the construct that causes them (which covers everything
 * below it) with `Validations.of(construct).acknowledge({ id, reason })`. Ids are `<namespace>::<rule>`:
 * - cdk-nag: `AwsSolutions::AwsSolutions-S1`, `AwsSolutions::AwsSolutions-IAM5[Resource::*]`.
 *   The bare `AwsSolutions-S1` also silences a finding, but cdk-nag then drops it from the report,
 *   so the reason is missing from the audit trail.
 * - cfn-guard: `cdk-validator-cfnguard::s3_bucket_versioning_enabled_check` (the Guard rule name,
 *   not the `CT.S3.PR.11` control id).
 * - construct warnings: `Annotation::lambda-mesh:<id>`.
 *
 * `Acknowledgements.awsSolutions` / `Acknowledgements.guard` from constructs/core/validation.ts build these ids,
 * and a failing synth prints the exact id next to each finding ("Acknowledge with '...'").
 *
 * @see https://github.com/cdklabs/cdk-nag#acknowledging-a-rule
 * @see https://github.com/cdklabs/cdk-validator-cfnguard#bundled-control-tower-rules
 */
export function addComplianceChecks(app: App, options: ComplianceCheckOptions = {}): void {
  if (registered.has(app)) {
    return;
  }
  registered.add(app);
  const guard: IPolicyValidationPlugin = new CfnGuardValidator({ controlTowerRulesEnabled: true });
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app),
    new ExplicitSeverityPlugin(options.guardCacheDir === undefined ? guard : new PerTemplateCachePlugin(guard, options.guardCacheDir)),
    // aws-cdk-lib's own CloudFormation schema and rule checks, which it runs by default; registered here so that
    // they run on every compliance-checked synth even where the default is off (`CDK_VALIDATION=false`: the test
    // suite turns it off for the synths that only assert on templates). One instance for the process, as
    // aws-cdk-lib's default is: its engine takes seconds to start.
    options.cloudFormationValidation ?? cloudFormationValidation(),
  );
}

let cfnValidatePlugin: CloudFormationValidatePlugin | undefined;

function cloudFormationValidation(): CloudFormationValidatePlugin {
  cfnValidatePlugin ??= new CloudFormationValidatePlugin();
  return cfnValidatePlugin;
}

/**
 * Options of {@link addComplianceChecks}.
 */
export interface ComplianceCheckOptions {
  /**
   * A directory in which cfn-guard's findings are kept per template, keyed by the SHA-256 of the template's bytes,
   * the cfn-guard binary, every rule file and the plugin's version. cfn-guard then runs once per distinct template,
   * not once per synth: the test suite synthesizes the same stacks many times, and cfn-guard takes seconds per
   * template. The findings are what cfn-guard reported for those exact bytes; nothing else is reused.
   *
   * @default - no cache: cfn-guard checks every template of every synth (what `cdk synth` does)
   */
  readonly guardCacheDir?: string;

  /**
   * The instance of aws-cdk-lib's `CloudFormationValidatePlugin` to register. Its engine takes seconds of CPU to
   * start, so a process that checks many apps shares one: the test suite passes one per Jest worker.
   *
   * @default - one instance for the process
   */
  readonly cloudFormationValidation?: IPolicyValidationPlugin;
}

/**
 * Passes a plugin through, marking violations that carry no severity as errors.
 *
 * cfn-guard reports violations without a severity. aws-cdk-lib 2.276 recomputes a plugin's success after
 * applying acknowledgements as "no remaining violation has severity error or fatal", so acknowledging a
 * single cfn-guard finding turned the whole cfn-guard report into a success: synth passed while other
 * cfn-guard errors were still listed. With an explicit severity the remaining findings keep failing synth.
 * The plugin name is kept, so acknowledgement ids stay `cdk-validator-cfnguard::<rule>`.
 */
class ExplicitSeverityPlugin implements IPolicyValidationPlugin {
  public readonly name: string;
  public readonly version?: string;
  public readonly ruleIds?: string[];

  constructor(private readonly inner: IPolicyValidationPlugin) {
    this.name = inner.name;
    this.version = inner.version;
    this.ruleIds = inner.ruleIds;
  }

  public validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const report = this.inner.validate(context);
    return {
      ...report,
      violations: report.violations.map((violation) => ({ ...violation, severity: violation.severity ?? 'error' })),
    };
  }
}

/** The sha256 of everything that decides cfn-guard's findings besides the template: its binary and rules. */
let guardIdentity: string | undefined;

function cfnGuardIdentity(plugin: IPolicyValidationPlugin): string {
  if (guardIdentity === undefined) {
    const root = path.dirname(require.resolve('@cdklabs/cdk-validator-cfnguard/package.json'));
    const hash = crypto.createHash('sha256').update(`${plugin.name}@${plugin.version ?? '?'}`);
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          walk(file);
        } else {
          hash.update(`\0${path.relative(root, file)}\0`).update(fs.readFileSync(file));
        }
      }
    };
    walk(path.join(root, 'bin'));
    walk(path.join(root, 'rules'));
    guardIdentity = hash.digest('hex');
  }
  return guardIdentity;
}

/**
 * Keeps a template plugin's findings for each template's bytes (see {@link ComplianceCheckOptions.guardCacheDir}).
 * A template seen before gets the findings stored for it, with the template path of this synth; the others are
 * checked together in one run of the plugin.
 */
class PerTemplateCachePlugin implements IPolicyValidationPlugin {
  public readonly name: string;
  public readonly version?: string;
  public readonly ruleIds?: string[];

  constructor(private readonly inner: IPolicyValidationPlugin, private readonly cacheDir: string) {
    this.name = inner.name;
    this.version = inner.version;
    this.ruleIds = inner.ruleIds;
  }

  public validate(context: IPolicyValidationContext): PolicyValidationPluginReport {
    const identity = cfnGuardIdentity(this.inner);
    const cacheFile = (templatePath: string): string => {
      const bytes = fs.readFileSync(templatePath);
      const key = crypto.createHash('sha256').update(identity).update('\0').update(bytes).digest('hex');
      return path.join(this.cacheDir, `${key}.json`);
    };
    const files = new Map(context.templatePaths.map((t) => [t, cacheFile(t)]));
    const reports = new Map<string, PolicyValidationPluginReport>();
    for (const [templatePath, file] of files) {
      const cached = readCachedReport(file);
      if (cached) {
        reports.set(templatePath, { ...cached, violations: withTemplatePath(cached.violations, '', templatePath) });
      }
    }
    // The templates not seen before go to the plugin in one run, as the plugin runs without the cache: cfn-guard
    // spends over a second loading its rules per run, whatever the templates.
    const misses = context.templatePaths.filter((t) => !reports.has(t));
    if (misses.length > 0) {
      const started = Date.now();
      const report = this.inner.validate({
        ...context,
        templatePaths: misses,
        stackTemplates: context.stackTemplates.filter((t) => misses.includes(t.templatePath)),
      });
      logGuardRun(misses, Date.now() - started);
      for (const templatePath of misses) {
        const own = splitReport(report, templatePath);
        reports.set(templatePath, own);
        writeCachedReport(files.get(templatePath)!, own, templatePath);
      }
    }
    const ordered = context.templatePaths.map((t) => reports.get(t)!);
    return { success: ordered.every((r) => r.success), violations: ordered.flatMap((r) => r.violations) };
  }
}

/**
 * The part of a report on several templates that concerns `templatePath`: each violation with only the resources
 * of that template, and the template's success. A report that failed without naming any resource fails every
 * template, as nothing in it says which one is compliant.
 */
function splitReport(report: PolicyValidationPluginReport, templatePath: string): PolicyValidationPluginReport {
  const violations = report.violations
    .map((v) => ({ ...v, violatingResources: v.violatingResources.filter((r) => r.templatePath === templatePath) }))
    .filter((v) => v.violatingResources.length > 0);
  const unattributed = !report.success && report.violations.every((v) => v.violatingResources.length === 0);
  return { ...report, success: violations.length === 0 && !unattributed, violations };
}

/**
 * Appends one JSON line per cfn-guard run (the templates, their bytes, the milliseconds) to the file named by
 * `LAMBDA_MESH_GUARD_LOG`, for bench/test-suite.ts to say how much of the test time cfn-guard takes.
 */
function logGuardRun(templatePaths: readonly string[], ms: number): void {
  const log = process.env.LAMBDA_MESH_GUARD_LOG;
  if (log) {
    const bytes = templatePaths.reduce((n, t) => n + fs.statSync(t).size, 0);
    fs.appendFileSync(log, `${JSON.stringify({ templates: templatePaths.length, bytes, ms })}\n`);
  }
}

/** `violations` with every violating resource's template path `from` changed to `to`. */
function withTemplatePath(violations: readonly PolicyViolation[], from: string, to: string): PolicyViolation[] {
  return violations.map((v) => ({
    ...v,
    violatingResources: v.violatingResources.map((r) => (r.templatePath === from ? { ...r, templatePath: to } : r)),
  }));
}

function readCachedReport(file: string): PolicyValidationPluginReport | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PolicyValidationPluginReport;
  } catch {
    return undefined;
  }
}

/** Stores `report` with this synth's template path blanked, written aside and renamed, so readers never see half. */
function writeCachedReport(file: string, report: PolicyValidationPluginReport, templatePath: string): void {
  const stored: PolicyValidationPluginReport = { ...report, violations: withTemplatePath(report.violations, templatePath, '') };
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const staging = `${file}.${process.pid}.${crypto.randomUUID()}`;
    fs.writeFileSync(staging, JSON.stringify(stored));
    fs.renameSync(staging, file);
  } catch {
    // The cache only saves time: a failure to write it changes no finding.
  }
}
