import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { type Construct } from 'constructs';

/**
 * Properties of a {@link MeshKey}.
 */
export interface MeshKeyProps {
  /** What the key encrypts: its description. */
  readonly description: string;
  /**
   * What happens to the key when it is removed from the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Defines a customer-managed KMS key the way lambda-mesh makes its own: rotation on, and a key policy that refuses
 * grants except those AWS services create on a principal's behalf (Control Tower CT.KMS.PR.3), so a principal with
 * `kms:CreateGrant` cannot hand the key to an arbitrary role.
 *
 * @example
 * const key = new MeshKey(this, 'Key', { description: 'Encrypts the logs of the EKS cluster' });
 * MeshKey.allowCloudWatchLogs(key);
 *
 * @see https://docs.aws.amazon.com/kms/latest/developerguide/grants.html
 * @see https://docs.aws.amazon.com/controltower/latest/controlreference/kms-rules.html
 */
export class MeshKey extends kms.Key {
  /**
   * Lets CloudWatch Logs encrypt with `key` on behalf of log groups of the key's account and region, and no others.
   * Works on any key whose policy the stack manages, a {@link MeshKey} or another.
   *
   * @see https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
   */
  public static allowCloudWatchLogs(key: kms.IKey): void {
    const stack = Stack.of(key);
    key.addToResourcePolicy(new iam.PolicyStatement({
      actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
      resources: ['*'],
      conditions: {
        ArnLike: {
          'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
            service: 'logs',
            resource: 'log-group',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
      },
    }));
  }

  constructor(scope: Construct, id: string, props: MeshKeyProps) {
    super(scope, id, {
      description: props.description,
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'DenyGrantsExceptForAwsServices',
      effect: iam.Effect.DENY,
      actions: ['kms:CreateGrant'],
      principals: [new iam.AnyPrincipal()],
      resources: ['*'],
      conditions: {
        BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
      },
    }));
  }
}
