import { ArnFormat, Stack, Token } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { type IConstruct } from 'constructs';
import { LambdaMeshError, describeValue } from '../core/errors';
import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../core/names';

/** The qualifier Gloo invokes when none is given: the unpublished code. */
export const LATEST = '$LATEST';

/**
 * A Lambda qualifier: a version number, `$LATEST`, or an alias name (letters, digits, '-', '_', not all digits).
 * @see https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html#API_Invoke_RequestSyntax
 */
const QUALIFIER = /^(\$LATEST|[0-9]+|(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128})$/;

/** A Lambda function name (not an ARN): what Gloo puts in the Invoke path. */
const FUNCTION_NAME = /^[a-zA-Z0-9-_]{1,64}$/;

/**
 * Options of a {@link GlooLambdaFunction}.
 */
export interface GlooLambdaFunctionOptions {
  /**
   * The name routes use for the function (`destinationSpec.aws.logicalName`), a DNS-1123 label.
   * @default - the mesh identity
   */
  readonly logicalName?: string;
  /**
   * The version or alias to invoke.
   * @default '$LATEST'
   */
  readonly qualifier?: string;
}

/**
 * Defines a Lambda function of the mesh that Gloo may invoke: which mesh identity it runs as, the name routes use
 * for it, its function name and the qualifier to invoke. The qualifier is always explicit, so routes work with
 * Gloo's function discovery off (its default since 1.20).
 *
 * @see https://docs.solo.io/gloo-edge/latest/reference/api/github.com/solo-io/gloo/projects/gloo/api/v1/options/aws/aws.proto.sk/#lambdafunctionspec
 */
export class GlooLambdaFunction {
  /**
   * A function of this app (or imported with `lambda.Function.fromFunctionAttributes`).
   *
   * @param identity the mesh identity the function runs as, `<function>-<version>` (e.g. `model-a-v1`)
   * @param fn the unqualified function
   */
  public static fromFunction(identity: string, fn: lambda.IFunction, options: GlooLambdaFunctionOptions = {}): GlooLambdaFunction {
    return new GlooLambdaFunction(identity, fn.functionName, options, () => fn.functionArn);
  }

  /**
   * A function by name, in the account and region of the stack that grants access to it. Use it when the name is
   * fixed (so the Kubernetes YAML can be written without deploying first).
   *
   * @param identity the mesh identity the function runs as, `<function>-<version>`
   * @param functionName the function name (not an ARN)
   */
  public static fromFunctionName(identity: string, functionName: string, options: GlooLambdaFunctionOptions = {}): GlooLambdaFunction {
    return new GlooLambdaFunction(identity, functionName, options, (scope) =>
      Stack.of(scope).formatArn({ service: 'lambda', resource: 'function', resourceName: functionName, arnFormat: ArnFormat.COLON_RESOURCE_NAME }));
  }

  /** The mesh identity the function runs as. */
  public readonly identity: string;
  /** The name routes use for the function. */
  public readonly logicalName: string;
  /** The function name Gloo invokes. */
  public readonly functionName: string;
  /** The version or alias Gloo invokes. */
  public readonly qualifier: string;

  private constructor(identity: string, functionName: string, options: GlooLambdaFunctionOptions, private readonly arnIn: (scope: IConstruct) => string) {
    const fail = (field: string, given: unknown, expected: string): never => {
      throw new LambdaMeshError({ location: `GlooLambdaFunction(${describeValue(identity)})`, field, given: describeValue(given), expected });
    };
    if (typeof identity !== 'string' || Token.isUnresolved(identity) || identity.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(identity)) {
      fail('identity', identity, 'a mesh identity <function>-<version>, a DNS-1123 label such as "model-a-v1"');
    }
    const logicalName = options.logicalName ?? identity;
    if (typeof logicalName !== 'string' || Token.isUnresolved(logicalName) || logicalName.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(logicalName)) {
      fail('logicalName', logicalName, 'a DNS-1123 label (routes refer to the function by it)');
    }
    if (!Token.isUnresolved(functionName) && !FUNCTION_NAME.test(functionName)) {
      fail('functionName', functionName, "a Lambda function name (1 to 64 letters, digits, '-' and '_'; not an ARN)");
    }
    const qualifier = options.qualifier ?? LATEST;
    if (!Token.isUnresolved(qualifier) && !QUALIFIER.test(qualifier)) {
      fail('qualifier', qualifier, "'$LATEST', a version number or an alias name");
    }
    this.identity = identity;
    this.logicalName = logicalName;
    this.functionName = functionName;
    this.qualifier = qualifier;
  }

  /**
   * Returns the ARNs that an invocation of this function and qualifier is authorized against: the qualified ARN,
   * and for `$LATEST` also the unqualified one (Lambda treats the two alike).
   *
   * @see https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html#permissions-resources
   */
  public invocationArns(scope: IConstruct): string[] {
    const arn = this.arnIn(scope);
    return this.qualifier === LATEST ? [arn, `${arn}:${LATEST}`] : [`${arn}:${this.qualifier}`];
  }

  /** Returns the unqualified function ARN, as seen from `scope`'s stack. */
  public functionArn(scope: IConstruct): string {
    return this.arnIn(scope);
  }
}
