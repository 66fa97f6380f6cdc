/**
 * Shared test fixtures.
 */
import { LambdaMeshError } from '../constructs/core';

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

/** Runs `fn` and returns the {@link LambdaMeshError} it throws (see {@link thrownBy}). */
export function meshError(fn: () => unknown): LambdaMeshError {
  return thrownBy(fn, (e): e is LambdaMeshError => LambdaMeshError.isLambdaMeshError(e));
}
