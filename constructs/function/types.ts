import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type { IConstruct } from 'constructs';
import type { IMeshGateway } from '../consul/mesh-gateway';
import type { IIdentityRegistrar } from '../intentions/registrar';
import type { IMesh } from '../mesh';
import type { IMeshNetwork } from '../network/network';

/**
 * Defines provisioned concurrency for a mesh function: an alias `live` with pre-initialised execution
 * environments, scaled on their utilisation. It is the cold-start mitigation: the extension's identity fetch and
 * the handler's imports happen before the first request.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/provisioned-concurrency.html#managing-provisioned-concurency
 */
export interface ProvisionedConcurrency {
  /** The provisioned execution environments when idle (at least 1). */
  readonly minCapacity: number;
  /** The most provisioned execution environments autoscaling may keep (at least `minCapacity`). */
  readonly maxCapacity: number;
  /**
   * Scale out when this share of the provisioned environments is busy, 0.1 to 0.9.
   * @default 0.7
   */
  readonly utilizationTarget?: number;
}

/**
 * Defines what every mesh function shares, whatever its packaging: its identity, its upstreams, the mesh it
 * joins and how it runs.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html
 * @see https://developer.hashicorp.com/consul/docs/connect/lambda
 */
export interface MeshFunctionOptions {
  /** The mesh model. The function's identity `<service>-<version>` is added to it when it is not declared yet. */
  readonly mesh: IMesh;
  /**
   * The function's name in the mesh (a function of the model, e.g. `model-a`; a DNS-1123 label). The identity is
   * `<service>-<version>`.
   */
  readonly service: string;
  /** The version (a DNS-1123 label such as `v1`). */
  readonly version: string;
  /**
   * The mesh services the function calls. Each gets the local port the model gives it, and the code gets its
   * address as `MESH_UPSTREAM_<NAME>_URL` (`http://127.0.0.1:<localPort>`; `tcp://` for TCP services). Naming a
   * service the model does not allow this identity to call is a synth error.
   * @default - every service the model allows the identity to call (at least one)
   */
  readonly upstreams?: string[];
  /** The mesh network: the function runs in its function subnets with its shared function security group. */
  readonly network: IMeshNetwork;
  /** The mesh gateway the extension dials (`LAMBDA_MESH_GATEWAY`). */
  readonly gateway: IMeshGateway;
  /** The identity registrar of the mesh: it issues the identity's certificate bundle, which the function reads. */
  readonly identities: IIdentityRegistrar;
  /**
   * Memory in MB, 128 to 10240. Lambda allocates CPU in proportion (1769 MB is one vCPU); NumPy work and the
   * extension's TLS handshakes both want CPU.
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * The invocation timeout, 1 second to 15 minutes.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * The CPU architecture; the extension, the base image and every installed wheel match it.
   * @default lambda.Architecture.ARM_64
   */
  readonly architecture?: lambda.Architecture;
  /**
   * Concurrent executions reserved for (and capping) this function.
   * @default - no reservation: the account's unreserved pool
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Provisioned concurrency on an alias `live`, with target-tracking autoscaling.
   * @default - none, and no alias
   */
  readonly provisionedConcurrency?: ProvisionedConcurrency;
  /**
   * More environment variables for the code. Names the extension or Lambda use (`LAMBDA_MESH_*`, `MESH_UPSTREAM_*`,
   * `MESH_IDENTITY`, `AWS_*`, ...) are refused.
   * @default - none
   */
  readonly environment?: { [name: string]: string };
  /**
   * The function's name: 1 to 64 letters, digits, '-' and '_'. Give one when something outside CloudFormation
   * must know it at synth (a Gloo route written to YAML, a dashboard); a named function cannot be replaced in
   * place, so changing a property that needs replacement then needs a new name.
   * @default - a name CloudFormation generates
   * @see https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html#lambda-CreateFunction-request-FunctionName
   */
  readonly functionName?: string;
  /**
   * The function's description.
   * @default - 'lambda-mesh function <identity> (mesh <meshName>)'
   */
  readonly description?: string;
  /**
   * How long the function's logs are kept.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The KMS key that encrypts the function's log group; its key policy must let CloudWatch Logs use it.
   * @default - the registrar's key (`identities.key`)
   */
  readonly logKey?: kms.IKey;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Defines one upstream of a mesh function: a mesh service, the local port the extension listens on for it, and
 * the environment variable that carries its address to the code.
 *
 * @see https://developer.hashicorp.com/consul/docs/connect/lambda/invoke-from-lambda
 */
export interface MeshUpstream {
  /** The mesh service. */
  readonly service: string;
  /** The port on 127.0.0.1 at which the extension forwards to the service over mTLS. */
  readonly localPort: number;
  /** The environment variable that holds `url`, e.g. `MESH_UPSTREAM_FEATURE_STORE_URL`. */
  readonly environmentVariable: string;
  /** The address the code calls, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
}

/**
 * Defines what other constructs may rely on in a Lambda function that is a member of a lambda-mesh.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_lambda.IFunction.html
 */
export interface IMeshFunction extends IConstruct, ec2.IConnectable, iam.IGrantable {
  /** The Lambda function. */
  readonly fn: lambda.IFunction;
  /** The mesh identity it runs as, `<service>-<version>`. */
  readonly identity: string;
  /**
   * The function's name: the `functionName` prop as given (known at synth), else the deploy-time name.
   */
  readonly functionName: string;
  /** What the function may call, with local ports and environment variables. */
  readonly upstreams: MeshUpstream[];
  /**
   * The alias `live` with provisioned concurrency.
   * @default - none without provisioned concurrency
   */
  readonly alias?: lambda.IAlias;
}
