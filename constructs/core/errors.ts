import type { IConstruct } from 'constructs';

/**
 * Details of a {@link LambdaMeshError}: where the bad input was found, and what was wrong with it.
 */
export interface LambdaMeshErrorDetails {
  /**
   * Where the input was given: a construct path (`App/Stack/Mesh`) or a config file name.
   */
  readonly location: string;

  /**
   * The field that holds the bad value: a prop name (`port`) or a config field path (`services[1].port`).
   */
  readonly field: string;

  /**
   * What was given, rendered for people (`"abc"`, `70000`, `(missing)`).
   */
  readonly given: string;

  /**
   * What would have been accepted.
   */
  readonly expected: string;
}

/**
 * Defines the error that lambda-mesh throws for bad input at synth time.
 *
 * The message always names the location (construct path or file), the field, what was given and
 * what was expected, so a user can fix the input without reading library code. Catch it with
 * `LambdaMeshError.isLambdaMeshError(e)`; `instanceof` fails when two copies of the library are loaded.
 */
export class LambdaMeshError extends Error implements LambdaMeshErrorDetails {
  /**
   * True when `x` is an error thrown by lambda-mesh (from any loaded copy of the library).
   */
  public static isLambdaMeshError(x: unknown): x is LambdaMeshError {
    return typeof x === 'object' && x !== null && LAMBDA_MESH_ERROR_SYMBOL in x;
  }

  public readonly location: string;
  public readonly field: string;
  public readonly given: string;
  public readonly expected: string;

  constructor(details: LambdaMeshErrorDetails) {
    super(`${details.location}: ${details.field}: given ${details.given}, expected ${details.expected}`);
    this.name = 'LambdaMeshError';
    this.location = details.location;
    this.field = details.field;
    this.given = details.given;
    this.expected = details.expected;
    Object.defineProperty(this, LAMBDA_MESH_ERROR_SYMBOL, { value: true });
  }
}

const LAMBDA_MESH_ERROR_SYMBOL = Symbol.for('lambda-mesh.LambdaMeshError');

/**
 * Throws the {@link LambdaMeshError} for a bad prop of `scope`: its construct path, the field, the given value
 * rendered with {@link describeValue}, and what was expected. Internal to the library (not exported by the index).
 */
export function throwInvalid(scope: IConstruct, field: string, given: unknown, expected: string): never {
  throw new LambdaMeshError({ location: scope.node.path, field, given: describeValue(given), expected });
}

/**
 * Renders a given value for an error message: strings quoted, everything else as JSON.
 */
export function describeValue(value: unknown): string {
  if (value === undefined) {
    return '(missing)';
  }
  if (typeof value === 'string') {
    return JSON.stringify(value);
  }
  try {
    const json = JSON.stringify(value);
    return json.length > 120 ? `${json.slice(0, 117)}...` : json;
  } catch {
    // Circular or otherwise unserialisable: say so rather than print "[object Object]".
    return '(a value that cannot be printed)';
  }
}
