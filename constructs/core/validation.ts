import { Stack, Token, Validations } from 'aws-cdk-lib';
import { type IConstruct } from 'constructs';
import { describeValue, LambdaMeshError } from './errors';

// `S1`, `IAM5`, `IAM5[Resource::*]`, optionally prefixed with `AwsSolutions-`.
const AWS_SOLUTIONS_RULE = /^(?:AwsSolutions-)?([A-Za-z]+[0-9]+(?:\[.+\])?)$/;
// Guard rule names as reported (`s3_bucket_logging_enabled_check`), never the `CT.S3.PR.2` control id.
const GUARD_RULE = /^[a-z0-9]+(?:_[a-z0-9]+)*$/;

/**
 * Acknowledges compliance findings with a reason, in the id formats CDK's validation report understands.
 *
 * @example Acknowledgements.guard(provider, 'lambda_inside_vpc_check', 'runs only at deploy time; calls only the EC2 API');
 */
export class Acknowledgements {
  /**
   * The namespace of cdk-nag AwsSolutions findings in CDK acknowledgement ids: the pack's plugin name.
   *
   * Kept as a literal because the library must not depend on cdk-nag at run time; a harness test checks
   * it against `new AwsSolutionsChecks().name`.
   *
   * @see https://github.com/cdklabs/cdk-nag/blob/main/RULES.md#awssolutions
   */
  public static readonly AWS_SOLUTIONS_NAMESPACE = 'AwsSolutions';

  /**
   * The namespace of cfn-guard (Control Tower rules) findings in CDK acknowledgement ids: the plugin name
   * of `@cdklabs/cdk-validator-cfnguard`.
   *
   * @see https://github.com/cdklabs/cdk-validator-cfnguard#bundled-control-tower-rules
   */
  public static readonly CFN_GUARD_NAMESPACE = 'cdk-validator-cfnguard';

  /**
   * Returns an ARN in `scope`'s stack as cdk-nag writes it in a finding id such as `IAM5[Resource::<arn>]`: the
   * partition, region and account are literals when the stack knows them, `<AWS::Partition>`, `<AWS::Region>` and
   * `<AWS::AccountId>` when they are deploy-time values. An acknowledgement built with it matches in
   * environment-agnostic and pinned stacks alike.
   *
   * @param scope any construct in the stack the ARN belongs to
   * @param service the ARN's service, e.g. `ssm`
   * @param resource the ARN's resource part, e.g. `parameter/lambda-mesh/*`
   */
  public static findingArn(scope: IConstruct, service: string, resource: string): string {
    const stack = Stack.of(scope);
    const part = (value: string, pseudo: string): string => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
    return `arn:${part(stack.partition, 'Partition')}:${service}:${part(stack.region, 'Region')}:${part(stack.account, 'AccountId')}:${resource}`;
  }

  /**
   * Returns the acknowledgement id of a cdk-nag AwsSolutions finding: `AwsSolutions::AwsSolutions-<rule>`.
   *
   * The namespaced form matters: cdk-nag silently drops findings acknowledged with the bare
   * `AwsSolutions-S1` id, whereas with the namespaced id CDK itself suppresses them and lists them,
   * with the reason, under `suppressedViolations` in the synth validation report (the audit trail).
   *
   * @param rule `S1`, `AwsSolutions-S1` or a finding-specific id such as `IAM5[Resource::*]`
   */
  public static awsSolutionsId(rule: string): string {
    const match = AWS_SOLUTIONS_RULE.exec(rule);
    if (!match) {
      throw new LambdaMeshError({
        location: 'Acknowledgements.awsSolutionsId',
        field: 'rule',
        given: describeValue(rule),
        expected: "a cdk-nag AwsSolutions rule such as 'S1', 'AwsSolutions-S1' or 'IAM5[Resource::*]'",
      });
    }
    return `${Acknowledgements.AWS_SOLUTIONS_NAMESPACE}::${Acknowledgements.AWS_SOLUTIONS_NAMESPACE}-${match[1]}`;
  }

  /**
   * Returns the acknowledgement id of a cfn-guard finding: `cdk-validator-cfnguard::<rule>`.
   *
   * @param rule the Guard rule name from the report, e.g. `s3_bucket_versioning_enabled_check`
   */
  public static guardId(rule: string): string {
    if (!GUARD_RULE.test(rule)) {
      throw new LambdaMeshError({
        location: 'Acknowledgements.guardId',
        field: 'rule',
        given: describeValue(rule),
        expected: "a cfn-guard rule name such as 's3_bucket_versioning_enabled_check' (not the 'CT.S3.PR.11' control id)",
      });
    }
    return `${Acknowledgements.CFN_GUARD_NAMESPACE}::${rule}`;
  }

  /**
   * Acknowledges a cdk-nag AwsSolutions finding on `scope` and everything below it.
   *
   * @param rule `S1`, `AwsSolutions-S1` or a finding-specific id such as `IAM5[Resource::*]`
   * @param reason why the finding is accepted; it is kept in the validation report
   */
  public static awsSolutions(scope: IConstruct, rule: string, reason: string): void {
    acknowledge(scope, Acknowledgements.awsSolutionsId(rule), reason);
  }

  /**
   * Acknowledges a cfn-guard (Control Tower) finding on `scope` and everything below it.
   *
   * @param rule the Guard rule name, e.g. `s3_bucket_versioning_enabled_check`
   * @param reason why the finding is accepted; it is kept in the validation report
   */
  public static guard(scope: IConstruct, rule: string, reason: string): void {
    acknowledge(scope, Acknowledgements.guardId(rule), reason);
  }
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
