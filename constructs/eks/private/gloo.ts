/**
 * Names the Gloo Edge Helm chart gives its objects. They are fixed by the chart's templates, so the IAM trust
 * policies and the Helm values must agree with them.
 *
 * @see https://github.com/solo-io/gloo/tree/main/install/helm/gloo/templates
 */

/** The namespace Gloo is installed into by default. */
export const GLOO_NAMESPACE = 'gloo-system';

/** The service account of the gateway-proxy (Envoy) pods, which invoke the functions. */
export const PROXY_SERVICE_ACCOUNT = 'gateway-proxy';

/** The service account of the discovery pods, which list functions when function discovery is on. */
export const DISCOVERY_SERVICE_ACCOUNT = 'discovery';

/** The Gloo Edge version the library is tested with: the CRDs in ../shared/crds/gloo are from this tag. */
export const DEFAULT_GLOO_VERSION = '1.22.1';

/** Solo's public Helm repository of Gloo Edge (open source). */
export const GLOO_HELM_REPOSITORY = 'https://storage.googleapis.com/solo-public-helm';
