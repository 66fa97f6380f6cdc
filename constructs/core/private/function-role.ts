import { type RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct } from 'constructs';
import { Acknowledgements } from '../validation';

/**
 * Options of {@link newVpcFunctionRole}.
 */
export interface VpcFunctionRoleOptions {
  /** The construct IDs of the log group, the role and the network policy (part of the API: changing them replaces resources). */
  readonly ids: { readonly logs: string; readonly role: string; readonly networkPolicy: string };
  /** The role's description. */
  readonly description: string;
  /** Encrypts the log group. */
  readonly logKey: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

/** What {@link newVpcFunctionRole} makes. */
export interface VpcFunctionRole {
  readonly logGroup: logs.LogGroup;
  readonly role: iam.Role;
  /** The VPC network interface permissions: the function must depend on it, Lambda checks them when it creates the function. */
  readonly networkPolicy: iam.Policy;
}

/**
 * Creates what a Lambda function in a VPC runs with instead of AWS managed policies: its own KMS-encrypted log
 * group, and a role that may write to it and manage the function's VPC network interfaces (in a policy of its
 * own, so the function can depend on exactly that).
 */
export function newVpcFunctionRole(scope: Construct, options: VpcFunctionRoleOptions): VpcFunctionRole {
  const logGroup = new logs.LogGroup(scope, options.ids.logs, { retention: options.logRetention, encryptionKey: options.logKey, removalPolicy: options.removalPolicy });
  const role = new iam.Role(scope, options.ids.role, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: options.description,
  });
  logGroup.grantWrite(role);
  const networkPolicy = new iam.Policy(scope, options.ids.networkPolicy, {
    statements: [new iam.PolicyStatement({
      actions: ['ec2:CreateNetworkInterface', 'ec2:DescribeNetworkInterfaces', 'ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: ['*'],
    })],
  });
  role.attachInlinePolicy(networkPolicy);
  Acknowledgements.awsSolutions(networkPolicy, 'IAM5[Resource::*]', 'Lambda manages the function\'s VPC network interfaces with these EC2 actions, which support no resource-level permissions (the same statement as AWSLambdaVPCAccessExecutionRole).');
  return { logGroup, role, networkPolicy };
}
