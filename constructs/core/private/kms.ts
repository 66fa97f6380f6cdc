import { type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { type Construct } from 'constructs';

/**
 * Creates the customer-managed keys lambda-mesh uses: rotation on, and a key policy that refuses grants
 * except those AWS services create on a principal's behalf (Control Tower CT.KMS.PR.3), so a principal with
 * `kms:CreateGrant` cannot hand the key to an arbitrary role.
 */
export function newMeshKey(scope: Construct, id: string, description: string, removalPolicy: RemovalPolicy): kms.Key {
  const key = new kms.Key(scope, id, { description, enableKeyRotation: true, removalPolicy });
  key.addToResourcePolicy(new iam.PolicyStatement({
    sid: 'DenyGrantsExceptForAwsServices',
    effect: iam.Effect.DENY,
    actions: ['kms:CreateGrant'],
    principals: [new iam.AnyPrincipal()],
    resources: ['*'],
    conditions: {
      BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' },
    },
  }));
  return key;
}
