/**
 * Shared test fixtures.
 */

/**
 * Runs `fn` and returns the error it throws, which must pass `is` (e.g. `LambdaMeshError.isLambdaMeshError`).
 * Fails the test when nothing is thrown; rethrows any other error, so an unexpected failure shows as itself.
 */
export function thrownBy<T>(fn: () => unknown, is: (e: unknown) => e is T): T {
  try {
    fn();
  } catch (e) {
    if (is(e)) {
      return e;
    }
    throw e;
  }
  throw new Error('expected an error, but nothing was thrown');
}
