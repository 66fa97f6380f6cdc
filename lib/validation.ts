// The app's compliance checks, shared by bin/app.ts and the test harness so that tests and `cdk synth`
// report the same findings.
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import {
  type App,
  type IPolicyValidationContext,
  type IPolicyValidationPlugin,
  type PolicyValidationPluginReport,
  Validations,
} from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';

const registered = new WeakSet<App>();

/**
 * Registers the cdk-nag AwsSolutions pack and the cfn-guard Control Tower rules as validation plugins on `app`.
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
export function addComplianceChecks(app: App): void {
  if (registered.has(app)) {
    return;
  }
  registered.add(app);
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app),
    new ExplicitSeverityPlugin(new CfnGuardValidator({ controlTowerRulesEnabled: true })),
  );
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
