import { Token } from 'aws-cdk-lib';
import { describeValue, LambdaMeshError } from './errors';

/**
 * A DNS-1123 label: lower-case alphanumerics and '-', starting and ending with an alphanumeric, at most 63 characters.
 *
 * Every name that becomes a Consul service, an SNI label, a Kubernetes object or an SSM path segment
 * must be one, so the library checks it once, at the edge.
 *
 * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-label-names
 */
export const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The longest DNS-1123 label.
 */
export const DNS_1123_LABEL_MAX_LENGTH = 63;

/**
 * Throws a {@link LambdaMeshError} unless `value` is a DNS-1123 label (unresolved tokens pass).
 *
 * @param location construct path or file name for the message
 * @param field prop or config field name for the message
 */
export function validateDnsLabel(location: string, field: string, value: string): void {
  if (Token.isUnresolved(value)) {
    return;
  }
  if (typeof value !== 'string' || value.length > DNS_1123_LABEL_MAX_LENGTH || !DNS_1123_LABEL.test(value)) {
    throw new LambdaMeshError({
      location,
      field,
      given: describeValue(value),
      expected: `a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${DNS_1123_LABEL_MAX_LENGTH} characters)`,
    });
  }
}

/**
 * Throws a {@link LambdaMeshError} unless `value` is an integer in [min, max] (unresolved tokens pass).
 */
export function validateIntegerInRange(location: string, field: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) {
    return;
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new LambdaMeshError({ location, field, given: describeValue(value), expected: `an integer from ${min} to ${max}` });
  }
}
