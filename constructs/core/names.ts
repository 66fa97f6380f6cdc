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
