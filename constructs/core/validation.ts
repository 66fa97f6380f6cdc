import { Validations } from 'aws-cdk-lib';
import { type IConstruct } from 'constructs';
import { describeValue, LambdaMeshError } from './errors';

/**
 * The namespace of cdk-nag AwsSolutions findings in CDK acknowledgement ids: the pack's plugin name.
 *
 * Kept as a literal because the library must not depend on cdk-nag at run time; a harness test checks
 * it against `new AwsSolutionsChecks().name`.
 *
 * @see https://github.com/cdklabs/cdk-nag/blob/main/RULES.md#awssolutions
 */
export const AWS_SOLUTIONS_NAMESPACE = 'AwsSolutions';

/**
 * The namespace of cfn-guard (Control Tower rules) findings in CDK acknowledgement ids: the plugin name
 * of `@cdklabs/cdk-validator-cfnguard`.
 *
 * @see https://github.com/cdklabs/cdk-validator-cfnguard#bundled-control-tower-rules
 */
export const CFN_GUARD_NAMESPACE = 'cdk-validator-cfnguard';

// `S1`, `IAM5`, `IAM5[Resource::*]`, optionally prefixed with `AwsSolutions-`.
const AWS_SOLUTIONS_RULE = /^(?:AwsSolutions-)?([A-Za-z]+[0-9]+(?:\[.+\])?)$/;
// Guard rule names as reported (`s3_bucket_logging_enabled_check`), never the `CT.S3.PR.2` control id.
const GUARD_RULE = /^[a-z0-9]+(?:_[a-z0-9]+)*$/;

/**
 * Returns the acknowledgement id of a cdk-nag AwsSolutions finding: `AwsSolutions::AwsSolutions-<rule>`.
 *
 * The namespaced form matters: cdk-nag silently drops findings acknowledged with the bare
 * `AwsSolutions-S1` id, whereas with the namespaced id CDK itself suppresses them and lists them,
 * with the reason, under `suppressedViolations` in the synth validation report (the audit trail).
 *
 * @param rule `S1`, `AwsSolutions-S1` or a finding-specific id such as `IAM5[Resource::*]`
 */
export function awsSolutionsAcknowledgementId(rule: string): string {
  const match = AWS_SOLUTIONS_RULE.exec(rule);
  if (!match) {
    throw new LambdaMeshError({
      location: 'awsSolutionsAcknowledgementId',
      field: 'rule',
      given: describeValue(rule),
      expected: "a cdk-nag AwsSolutions rule such as 'S1', 'AwsSolutions-S1' or 'IAM5[Resource::*]'",
    });
  }
  return `${AWS_SOLUTIONS_NAMESPACE}::${AWS_SOLUTIONS_NAMESPACE}-${match[1]}`;
}

/**
 * Returns the acknowledgement id of a cfn-guard finding: `cdk-validator-cfnguard::<rule>`.
 *
 * @param rule the Guard rule name from the report, e.g. `s3_bucket_versioning_enabled_check`
 */
export function guardAcknowledgementId(rule: string): string {
  if (!GUARD_RULE.test(rule)) {
    throw new LambdaMeshError({
      location: 'guardAcknowledgementId',
      field: 'rule',
      given: describeValue(rule),
      expected: "a cfn-guard rule name such as 's3_bucket_versioning_enabled_check' (not the 'CT.S3.PR.11' control id)",
    });
  }
  return `${CFN_GUARD_NAMESPACE}::${rule}`;
}

/**
 * Acknowledges a cdk-nag AwsSolutions finding on `scope` and everything below it.
 *
 * @param rule `S1`, `AwsSolutions-S1` or a finding-specific id such as `IAM5[Resource::*]`
 * @param reason why the finding is accepted; it is kept in the validation report
 */
export function acknowledgeAwsSolutionsRule(scope: IConstruct, rule: string, reason: string): void {
  acknowledge(scope, awsSolutionsAcknowledgementId(rule), reason);
}

/**
 * Acknowledges a cfn-guard (Control Tower) finding on `scope` and everything below it.
 *
 * @param rule the Guard rule name, e.g. `s3_bucket_versioning_enabled_check`
 * @param reason why the finding is accepted; it is kept in the validation report
 */
export function acknowledgeGuardRule(scope: IConstruct, rule: string, reason: string): void {
  acknowledge(scope, guardAcknowledgementId(rule), reason);
}

function acknowledge(scope: IConstruct, id: string, reason: string): void {
  if (typeof reason !== 'string' || reason.trim().length === 0) {
    throw new LambdaMeshError({
      location: scope.node.path,
      field: 'reason',
      given: describeValue(reason),
      expected: `a non-empty reason for acknowledging ${id}`,
    });
  }
  Validations.of(scope).acknowledge({ id, reason });
}
