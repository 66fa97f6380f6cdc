import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { type Construct } from 'constructs';
import { Acknowledgements } from '../validation';
import { newVpcFunctionRole } from './function-role';
import { handlerCode } from './handler-code';

/**
 * What {@link newVpcFunction} needs of the mesh network (an `IMeshNetwork` has it), stated here so that core, which
 * every module imports, does not depend on the network module.
 */
export interface VpcFunctionNetwork extends ec2.IConnectable {
  /** The network's VPC. */
  readonly vpc: ec2.IVpc;
  /** The subnets the function runs in. */
  readonly functionSubnets: ec2.SubnetSelection;
}

/**
 * Options of {@link newVpcFunction}.
 */
export interface VpcFunctionOptions {
  /** The library handler to run (a key of HANDLERS). */
  readonly handler: string;
  /** The network: the function runs in its function subnets. */
  readonly network: VpcFunctionNetwork;
  /** What the function does, for its description and its security group's. */
  readonly purpose: string;
  /** Encrypts the function's log group. */
  readonly logKey: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly environment?: Record<string, string>;
  readonly timeout?: Duration;
  /** @default 1: deploy-time handlers run one at a time */
  readonly reservedConcurrentExecutions?: number;
}

/** What {@link newVpcFunction} makes. */
export interface VpcFunction {
  readonly fn: lambda.Function;
  readonly securityGroup: ec2.SecurityGroup;
}

/**
 * Creates one of the library's deploy-time or scheduled functions the same hardened way: Node.js 24 on arm64,
 * bundled library code, in the network's function subnets with its own security group (HTTPS to the VPC endpoints
 * and, through the S3 gateway endpoint, to S3 for custom resource responses; nothing else until the caller opens
 * it), its own role (logs to its own KMS-encrypted group, VPC network interfaces) instead of AWS managed policies.
 *
 * Construct IDs: `<id>`, `<id>Role`, `<id>Logs`, `<id>SecurityGroup`, `<id>NetworkPolicy` (part of the API: changing
 * them replaces resources).
 */
export function newVpcFunction(scope: Construct, id: string, options: VpcFunctionOptions): VpcFunction {
  const securityGroup = new ec2.SecurityGroup(scope, `${id}SecurityGroup`, {
    vpc: options.network.vpc,
    description: `${options.purpose}: HTTPS to the VPC endpoints and S3 only, unless opened further`,
    allowAllOutbound: false,
  });
  // Called from this side, so both rules live in this stack: the network stack must not refer back to it.
  securityGroup.connections.allowTo(options.network, ec2.Port.tcp(443), `${options.purpose} to the VPC endpoints`);
  securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'The CloudFormation response URL (S3 via the gateway endpoint; the subnets have no other route out)');
  const { logGroup, role, networkPolicy } = newVpcFunctionRole(scope, {
    ids: { logs: `${id}Logs`, role: `${id}Role`, networkPolicy: `${id}NetworkPolicy` },
    description: options.purpose,
    logKey: options.logKey,
    logRetention: options.logRetention,
    removalPolicy: options.removalPolicy,
  });
  const fn = new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    role,
    architecture: lambda.Architecture.ARM_64,
    handler: 'index.handler',
    code: handlerCode(options.handler),
    description: options.purpose,
    timeout: options.timeout ?? Duration.minutes(2),
    memorySize: 256,
    vpc: options.network.vpc,
    vpcSubnets: options.network.functionSubnets,
    securityGroups: [securityGroup],
    reservedConcurrentExecutions: options.reservedConcurrentExecutions ?? 1,
    logGroup,
    ...(options.environment ? { environment: options.environment } : {}),
  });
  // The role's policies must exist before the VPC function is created and invoked.
  fn.node.addDependency(networkPolicy);
  Acknowledgements.guard(fn, 'lambda_inside_vpc_check', 'CT.LAMBDA.PR.3: the function is in the VPC (function subnets, its own security group); its subnet IDs come from the network stack as Fn::GetStackOutput references, which the rule cannot resolve.');
  return { fn, securityGroup };
}
