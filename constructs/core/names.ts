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
 * The order lambda-mesh renders names and keys in: plain UTF-16 code-unit order, the order of
 * `Array.prototype.sort()` without a comparator, for sorting by a key (`entries.sort(([a], [b]) => compare(a, b))`).
 * Not `localeCompare`: the output must not depend on the machine's locale.
 *
 * It lives here, not in `internal.ts`, because the Lambda handlers bundle the files that use it (intentions'
 * `config-entries.ts`): a handler must not pull aws-cdk-lib in through an entry point.
 *
 * @returns a negative number when `a` sorts first, a positive one when `b` does, 0 when they are equal
 */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
