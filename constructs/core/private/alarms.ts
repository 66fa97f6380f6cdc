import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { type Construct } from 'constructs';

/**
 * Creates the KMS-encrypted SNS topic a construct sends its alarms to, and lets CloudWatch publish to it.
 */
export function newAlarmTopic(scope: Construct, id: string, displayName: string, key: kms.IKey): sns.Topic {
  const topic = new sns.Topic(scope, id, { displayName, masterKey: key, enforceSSL: true });
  // CloudWatch publishes to the encrypted topic: it needs the key.
  key.addToResourcePolicy(new iam.PolicyStatement({
    actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
    resources: ['*'],
  }));
  return topic;
}
