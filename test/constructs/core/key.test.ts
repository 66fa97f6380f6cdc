import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { MeshKey } from '../../../constructs/core';

describe('MeshKey', () => {
  test('rotates, is retained, and refuses grants except those AWS services make for a principal', () => {
    const stack = new Stack(new App(), 'S');
    new MeshKey(stack, 'Key', { description: 'Encrypts the logs' });
    const t = Template.fromStack(stack);
    t.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        Description: 'Encrypts the logs',
        EnableKeyRotation: true,
        KeyPolicy: Match.objectLike({
          Statement: Match.arrayWith([Match.objectLike({
            Sid: 'DenyGrantsExceptForAwsServices',
            Effect: 'Deny',
            Action: 'kms:CreateGrant',
            Principal: { AWS: '*' },
            Condition: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
          })]),
        }),
      }),
    });
  });

  test('takes a removal policy', () => {
    const stack = new Stack(new App(), 'S');
    new MeshKey(stack, 'Key', { description: 'Scratch', removalPolicy: RemovalPolicy.DESTROY });
    Template.fromStack(stack).hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
  });

  test('allowCloudWatchLogs lets the logs service of the key\'s region use it for log groups of its account', () => {
    const stack = new Stack(new App(), 'S', { env: { account: '111111111111', region: 'eu-west-1' } });
    const key = new MeshKey(stack, 'Key', { description: 'Encrypts the logs' });
    MeshKey.allowCloudWatchLogs(key);
    Template.fromStack(stack).hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: Match.objectLike({
        Statement: Match.arrayWith([Match.objectLike({
          Principal: { Service: 'logs.eu-west-1.amazonaws.com' },
          Condition: {
            ArnLike: {
              'kms:EncryptionContext:aws:logs:arn': {
                'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:eu-west-1:111111111111:log-group:*']],
              },
            },
          },
        })]),
      }),
    });
  });
});
