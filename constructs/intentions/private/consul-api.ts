/**
 * The contract of the Consul HTTP API client the deploy-time handlers share (intentions applier, identity
 * registrar, certificate rotation). Implemented in consul-client.ts; handlers depend on this interface so their
 * tests can run against a local Consul stand-in over real TLS.
 */

/** How a handler reaches Consul: the servers' load balancer over HTTPS, with a scoped ACL token. */
export interface ConsulConnection {
  /** `https://<host>:8501`. */
  readonly address: string;
  /** The PEM of the CA that signed the servers' certificate (the cluster's TLS CA). */
  readonly caPem: string;
  /** The TLS server name to verify: `server.<dc>.consul` (the load balancer's DNS name is not in the certificate). */
  readonly serverName: string;
  /** The ACL token (SecretID), sent as `X-Consul-Token`, never logged. */
  readonly token: string;
}

/** A response of the Consul HTTP API. */
export interface ConsulResponse {
  readonly status: number;
  /** The parsed JSON body (undefined for an empty body). */
  readonly body: unknown;
  /** `X-Consul-Index`, when present. */
  readonly index?: string;
}

/**
 * A Consul HTTP API client: bounded retries on 5xx and connection errors, a clear error on 403 (bad or
 * under-privileged token) naming the method and path (never the token).
 */
export interface ConsulApi {
  /** GET a path (with query); 404 is returned, not thrown. */
  get(path: string): Promise<ConsulResponse>;
  /** PUT a JSON body to a path (with query). */
  put(path: string, body: unknown): Promise<ConsulResponse>;
  /** DELETE a path (with query). */
  delete(path: string): Promise<ConsulResponse>;
}
