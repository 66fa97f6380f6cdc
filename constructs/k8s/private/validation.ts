// Shared checks of the k8s module (Knative, Istio traffic, security, telemetry): names, hosts, durations and
// label maps, each the rule the API server, an admission webhook or a CEL rule of the CRD applies.
import { Chart, type Duration } from 'cdk8s';
import { type IConstruct } from 'constructs';
import { throwInvalid } from '../../core/errors';
import { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH } from '../../core/names';

export { DNS_1123_LABEL, DNS_1123_LABEL_MAX_LENGTH };

/**
 * A DNS-1035 label: like DNS-1123 but starting with a letter. Kubernetes Service names and Knative tags are ones.
 *
 * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#rfc-1035-label-names
 */
export const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters (most object names, Secret names).
 */
export const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** The longest DNS-1123 subdomain. */
export const DNS_1123_SUBDOMAIN_MAX_LENGTH = 253;

/** The domain of cluster-local Service names. */
export const CLUSTER_DOMAIN = 'svc.cluster.local';

// The name part of a label key or an annotation key: alphanumerics, '-', '_', '.', starting and ending alphanumeric.
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
// One label of a host name as Istio checks it (ValidateWildcardDomain): alphanumerics and '-' (upper case allowed).
const HOST_LABEL = /^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$/;

/** True for a DNS-1123 label (`payment-handler`). */
export function isDns1123Label(value: string): boolean {
  return value.length <= DNS_1123_LABEL_MAX_LENGTH && DNS_1123_LABEL.test(value);
}

/** True for a DNS-1035 label (`candidate`, not `1st`). */
export function isDns1035Label(value: string): boolean {
  return value.length <= DNS_1123_LABEL_MAX_LENGTH && DNS_1035_LABEL.test(value);
}

/** True for a DNS-1123 subdomain (`orders-tls`, `a.b`). */
export function isDns1123Subdomain(value: string): boolean {
  return value.length <= DNS_1123_SUBDOMAIN_MAX_LENGTH && DNS_1123_SUBDOMAIN.test(value);
}

/** Throws unless `value` is a DNS-1123 label. */
export function checkDns1123Label(scope: IConstruct, field: string, value: string): void {
  if (!isDns1123Label(value)) {
    throwInvalid(scope, field, value, "a DNS-1123 label (lower-case a-z, 0-9 and '-', starting and ending alphanumeric, at most 63 characters)");
  }
}

/** Throws unless `value` is a DNS-1035 label. */
export function checkDns1035Label(scope: IConstruct, field: string, value: string): void {
  if (!isDns1035Label(value)) {
    throwInvalid(scope, field, value, "a DNS-1035 label (lower-case a-z, 0-9 and '-', starting with a letter, ending alphanumeric, at most 63 characters)");
  }
}

/** Throws unless `value` is a DNS-1123 subdomain. */
export function checkDns1123Subdomain(scope: IConstruct, field: string, value: string): void {
  if (!isDns1123Subdomain(value)) {
    throwInvalid(scope, field, value, "a DNS-1123 subdomain (lower-case a-z, 0-9, '-' and '.', at most 253 characters)");
  }
}

/**
 * True for a host name as Istio accepts it in `hosts` (ValidateWildcardDomain): DNS labels separated by dots, the
 * first of which may be `*` (`*.example.com`), or `*` alone; at most 255 characters.
 */
export function isWildcardDomain(host: string): boolean {
  if (host === '*') {
    return true;
  }
  if (host.length === 0 || host.length > 255) {
    return false;
  }
  const labels = host.split('.');
  return labels.every((label, i) => (i === 0 && label === '*') || (label.length <= 63 && HOST_LABEL.test(label)));
}

/**
 * True for a fully qualified host: a valid host with at least one dot and no wildcard (`a.b.svc.cluster.local`).
 */
export function isFqdn(host: string): boolean {
  return host.includes('.') && !host.includes('*') && isWildcardDomain(host);
}

/**
 * True when a wildcard host pattern (`*.example.com`, `*`) covers a host (`api.example.com`, `*.example.com`).
 * Matching is case-insensitive, as DNS is.
 */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  const h = host.toLowerCase();
  if (p === '*' || p === h) {
    return true;
  }
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return h.endsWith(suffix) && h.length > suffix.length;
  }
  // `*.example.com` in a VirtualService is served by a gateway host that covers it exactly or more widely.
  return false;
}

/** The cluster-local FQDN of a Kubernetes Service: `<name>.<namespace>.svc.cluster.local`. */
export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.${CLUSTER_DOMAIN}`;
}

/**
 * The namespace an object of `scope` lands in: the one given, else the chart's. Throws when there is neither,
 * because cluster-local host names and Istio references need the namespace at synth time.
 */
export function resolveNamespace(scope: IConstruct, given: string | undefined): string {
  const namespace = given ?? Chart.of(scope).namespace;
  if (namespace === undefined) {
    throwInvalid(scope, 'namespace', namespace, 'a namespace, in the props or as the namespace of the chart (host names and references are built from it)');
  }
  checkDns1123Label(scope, 'namespace', namespace);
  return namespace;
}

/**
 * Throws unless every key of `map` is a qualified name (`[prefix/]name`) and, for labels, every value a label value.
 */
export function checkStringMap(scope: IConstruct, field: string, map: Readonly<Record<string, string>>, valuesAreLabels: boolean): void {
  for (const [key, value] of Object.entries(map)) {
    if (!isQualifiedName(key)) {
      throwInvalid(scope, `${field} key`, key, "a qualified name ([prefix/]name: the name at most 63 alphanumerics, '-', '_', '.'; the prefix a DNS-1123 subdomain)");
    }
    if (typeof value !== 'string') {
      throwInvalid(scope, `${field}.${key}`, value, 'a string');
    }
    if (valuesAreLabels && (value.length > 63 || !LABEL_VALUE.test(value))) {
      throwInvalid(scope, `${field}.${key}`, value, "a label value (at most 63 alphanumerics, '-', '_', '.', starting and ending alphanumeric)");
    }
  }
}

function isQualifiedName(key: string): boolean {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isDns1123Subdomain(prefix)) {
    return false;
  }
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

/**
 * Throws unless `value` is an integer in [min, max].
 */
export function checkInteger(scope: IConstruct, field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throwInvalid(scope, field, value, `an integer from ${min} to ${max}`);
  }
}

/**
 * Renders a duration the way Istio's CRDs take it (a protobuf Duration as a Go duration string: `2s`, `250ms`),
 * after checking the CEL rule on every Istio duration field: `duration(self) >= duration('1ms')`.
 */
export function istioDuration(scope: IConstruct, field: string, duration: Duration): string {
  const ms = duration.toMilliseconds({ integral: false });
  if (!Number.isInteger(ms) || ms < 1) {
    throwInvalid(scope, field, `${ms}ms`, 'a duration of at least 1ms in whole milliseconds (the CRD rule duration(self) >= duration(\'1ms\'))');
  }
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * Converts PascalCase or camelCase construct IDs to kebab case: `OrderProcessor` -> `order-processor`.
 */
export function kebabCase(id: string): string {
  return id
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .toLowerCase();
}
