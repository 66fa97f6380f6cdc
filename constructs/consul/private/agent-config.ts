import { type ServerBootInputs } from './boot-inputs';

/**
 * Where the servers keep Consul's files. The boot script, the systemd units and the agent configuration all
 * use these, so they agree by construction.
 */
export const CONSUL_PATHS = {
  /** The agent's configuration directory (`-config-dir`): `consul.json` and `secrets.json`. */
  configDir: '/etc/consul.d',
  /** The non-secret configuration, rendered from {@link serverAgentConfig}. */
  configFile: '/etc/consul.d/consul.json',
  /** The secret configuration (gossip key, ACL tokens), written at boot, mode 0640 root:consul. */
  secretsFile: '/etc/consul.d/secrets.json',
  /** The TLS material, written at boot, mode 0640 root:consul. */
  tlsDir: '/etc/consul.d/tls',
  caFile: '/etc/consul.d/tls/ca.pem',
  certFile: '/etc/consul.d/tls/server.pem',
  keyFile: '/etc/consul.d/tls/server-key.pem',
  /** Raft and serf state; must survive restarts. */
  dataDir: '/opt/consul/data',
  /** Consul writes `consul-<timestamp>.log` here; the CloudWatch agent ships `*.log`. */
  logDir: '/var/log/consul/',
} as const;

/**
 * Defines the part of a Consul agent's JSON configuration that lambda-mesh servers use. Property names are
 * Consul's JSON keys.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file
 */
export interface ConsulAgentConfig {
  /**
   * The datacenter the agent runs in (an RFC 1035 label).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_datacenter
   */
  readonly datacenter?: string;
  /**
   * The datacenter that is authoritative for ACLs, intentions and the mesh CA.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#primary_datacenter
   */
  readonly primary_datacenter?: string;
  /**
   * Where the agent keeps its state; must be durable across reboots.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_data_dir
   */
  readonly data_dir?: string;
  /**
   * Runs the agent as a server (a Raft participant).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_server
   */
  readonly server?: boolean;
  /**
   * The number of servers to wait for before bootstrapping the cluster.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap
   */
  readonly bootstrap_expect?: number;
  /**
   * Addresses (or go-discover cloud auto-join strings) to join, retried until one works.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/join
   * @see https://developer.hashicorp.com/consul/docs/deploy/server/cloud-auto-join#aws-ec2-and-ecs
   */
  readonly retry_join?: readonly string[];
  /**
   * The address for cluster communication (RPC, gossip); a go-sockaddr template resolving to one address.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_bind
   */
  readonly bind_addr?: string;
  /**
   * The default address of the client interfaces (HTTP, HTTPS, gRPC, DNS) unless `addresses` overrides it.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_client
   */
  readonly client_addr?: string;
  /**
   * Per-interface bind addresses.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses
   */
  readonly addresses?: ConsulAddressesConfig;
  /**
   * Per-interface ports; -1 disables an interface.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#ports
   */
  readonly ports?: ConsulPortsConfig;
  /**
   * The gossip encryption key (base64). Secret: lambda-mesh writes it to the secrets file at boot, never here.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
   */
  readonly encrypt?: string;
  /**
   * Rejects unencrypted incoming gossip.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
   */
  readonly encrypt_verify_incoming?: boolean;
  /**
   * Never sends unencrypted gossip.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
   */
  readonly encrypt_verify_outgoing?: boolean;
  /**
   * TLS for the HTTPS API, internal RPC and gRPC.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls
   */
  readonly tls?: ConsulTlsConfig;
  /**
   * Lets servers hand client agents their RPC certificates.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
   */
  readonly auto_encrypt?: ConsulAutoEncryptConfig;
  /**
   * The ACL system.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl
   */
  readonly acl?: ConsulAclConfig;
  /**
   * The service mesh (Connect) subsystem.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/service-mesh
   */
  readonly connect?: ConsulConnectConfig;
  /**
   * Autopilot: server health, stabilisation and dead server cleanup. Read only when the cluster bootstraps.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap
   */
  readonly autopilot?: ConsulAutopilotConfig;
  /**
   * Arbitrary key/value metadata for this node.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/node
   */
  readonly node_meta?: Readonly<Record<string, string>>;
  /**
   * Leave the cluster gracefully on SIGTERM (servers default to false).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general
   */
  readonly leave_on_terminate?: boolean;
  /**
   * Performance tuning.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_performance
   */
  readonly performance?: ConsulPerformanceConfig;
  /**
   * The log level (`TRACE`, `DEBUG`, `INFO`, `WARN`, `ERR`).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/log
   */
  readonly log_level?: string;
  /**
   * Logs as JSON.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/log
   */
  readonly log_json?: boolean;
  /**
   * The log file, or a directory (ending in `/`) for `consul-<timestamp>.log` files.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/log
   */
  readonly log_file?: string;
  /**
   * How many rotated log files to keep (0 keeps all).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/log
   */
  readonly log_rotate_max_files?: number;
  /**
   * The web UI.
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/ui
   */
  readonly ui_config?: ConsulUiConfig;
  /**
   * Disables the check for new releases and security bulletins (no call home).
   * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general
   */
  readonly disable_update_check?: boolean;
}

/**
 * Defines per-interface bind addresses.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses
 */
export interface ConsulAddressesConfig {
  /** The DNS server. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses */
  readonly dns?: string;
  /** The HTTP API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses */
  readonly http?: string;
  /** The HTTPS API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses */
  readonly https?: string;
  /** Plaintext gRPC. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses */
  readonly grpc?: string;
  /** gRPC with TLS. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_addresses */
  readonly grpc_tls?: string;
}

/**
 * Defines per-interface ports; -1 disables an interface.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#ports
 */
export interface ConsulPortsConfig {
  /** DNS (TCP and UDP). @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#dns_port */
  readonly dns?: number;
  /** The plaintext HTTP API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#http_port */
  readonly http?: number;
  /** The HTTPS API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#https_port */
  readonly https?: number;
  /** Plaintext gRPC. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#grpc_port */
  readonly grpc?: number;
  /** gRPC with TLS. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#grpc_tls_port */
  readonly grpc_tls?: number;
  /** Server RPC. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#server_rpc_port */
  readonly server?: number;
  /** LAN gossip. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#serf_lan_port */
  readonly serf_lan?: number;
  /** WAN gossip. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#serf_wan_port */
  readonly serf_wan?: number;
}

/**
 * Defines the agent's TLS (Consul 1.12 and later).
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls
 */
export interface ConsulTlsConfig {
  /** Settings for every interface unless overridden. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults */
  readonly defaults?: ConsulTlsInterfaceConfig;
  /** Server RPC. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_internal_rpc */
  readonly internal_rpc?: ConsulTlsInterfaceConfig;
  /** The HTTPS API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_https */
  readonly https?: ConsulTlsInterfaceConfig;
  /** gRPC / xDS. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_grpc */
  readonly grpc?: ConsulTlsInterfaceConfig;
}

/**
 * Defines TLS settings for one interface (or the defaults).
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls
 */
export interface ConsulTlsInterfaceConfig {
  /** The PEM CA that signs trusted peers. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_ca_file */
  readonly ca_file?: string;
  /** This agent's PEM certificate. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_cert_file */
  readonly cert_file?: string;
  /** This agent's PEM private key. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_key_file */
  readonly key_file?: string;
  /** The lowest TLS version accepted (`TLSv1_2`, `TLSv1_3`). @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_tls_min_version */
  readonly tls_min_version?: string;
  /** Require TLS and a CA-signed client certificate on incoming connections. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_verify_incoming */
  readonly verify_incoming?: boolean;
  /** Require TLS and a CA-signed server certificate on outgoing connections. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_defaults_verify_outgoing */
  readonly verify_outgoing?: boolean;
  /** Check that servers present `server.<datacenter>.<domain>`. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_internal_rpc_verify_server_hostname */
  readonly verify_server_hostname?: boolean;
  /** gRPC only: serve the auto_encrypt certificate instead of `cert_file`. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls#tls_grpc */
  readonly use_auto_cert?: boolean;
}

/**
 * Defines auto_encrypt (servers distribute RPC certificates to clients).
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
 */
export interface ConsulAutoEncryptConfig {
  /** Server side: accept and answer clients' certificate requests. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption */
  readonly allow_tls?: boolean;
  /** Client side: request a certificate from the servers. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption */
  readonly tls?: boolean;
}

/**
 * Defines the ACL system's settings.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl
 */
export interface ConsulAclConfig {
  /** Enables ACLs. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_enabled */
  readonly enabled?: boolean;
  /** `allow` or `deny` when no rule matches. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_default_policy */
  readonly default_policy?: 'allow' | 'deny';
  /** What to do when the leader cannot resolve a token. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_down_policy */
  readonly down_policy?: 'allow' | 'deny' | 'extend-cache' | 'async-cache';
  /** Persist tokens set through the agent API. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_enable_token_persistence */
  readonly enable_token_persistence?: boolean;
  /** The agent's own tokens. Secret: written to the secrets file at boot. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_tokens */
  readonly tokens?: ConsulAclTokensConfig;
}

/**
 * Defines the ACL tokens an agent holds. Every value is a secret.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_tokens
 */
export interface ConsulAclTokensConfig {
  /** The management token installed when a server becomes leader. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_tokens_initial_management */
  readonly initial_management?: string;
  /** The token for the agent's own operations (node registration). @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl#acl_tokens_agent */
  readonly agent?: string;
}

/**
 * Defines the service mesh settings.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/service-mesh
 */
export interface ConsulConnectConfig {
  /** Enables the service mesh on this agent. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/service-mesh#connect_enabled */
  readonly enabled?: boolean;
}

/**
 * Defines autopilot's settings (respected when the cluster bootstraps; later changes go through
 * `consul operator autopilot set-config`).
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap
 */
export interface ConsulAutopilotConfig {
  /** Remove dead servers when a new one joins, and periodically. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap */
  readonly cleanup_dead_servers?: boolean;
  /** How long a server may go without contact from the leader and still be healthy. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap */
  readonly last_contact_threshold?: string;
  /** How long a new server must be healthy before it becomes a voter. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap */
  readonly server_stabilization_time?: string;
  /** The node_meta key that carries the version for automated upgrades (Consul Enterprise only). @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap */
  readonly upgrade_version_tag?: string;
}

/**
 * Defines performance tuning.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_performance
 */
export interface ConsulPerformanceConfig {
  /** Scales Raft timing; 1 is the production setting. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general#_raft_multiplier */
  readonly raft_multiplier?: number;
}

/**
 * Defines the web UI settings.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/ui
 */
export interface ConsulUiConfig {
  /** Serves the UI from this agent. @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/ui#ui_config_enabled */
  readonly enabled?: boolean;
}

/**
 * Defines the secret part of a server's configuration: what the boot script writes to
 * {@link CONSUL_PATHS.secretsFile} from Secrets Manager. Never rendered at synth time.
 */
export interface ConsulAgentSecrets {
  /** The gossip key. */
  readonly encrypt: string;
  /** The management and agent tokens. */
  readonly acl: { readonly tokens: Required<ConsulAclTokensConfig> };
}

/**
 * The cloud auto-join string for servers tagged `tag`: go-discover's AWS provider, which looks up the private
 * IPv4 addresses of running instances with that tag (IAM: `ec2:DescribeInstances`). The region is passed
 * explicitly rather than left to instance metadata, so the string is the same wherever it is read.
 *
 * @see https://developer.hashicorp.com/consul/docs/deploy/server/cloud-auto-join#aws-ec2-and-ecs
 */
export function awsRetryJoin(region: string, tag: { readonly key: string; readonly value: string }): string {
  return `provider=aws region=${region} tag_key=${tag.key} tag_value=${tag.value}`;
}

/**
 * The non-secret agent configuration of a lambda-mesh Consul server, written to {@link CONSUL_PATHS.configFile}.
 * The gossip key and ACL tokens go to {@link CONSUL_PATHS.secretsFile}, which the boot script fills from
 * Secrets Manager: nothing returned here is secret.
 *
 * @see https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file
 */
export function serverAgentConfig(inputs: ServerBootInputs): ConsulAgentConfig {
  return {
    datacenter: inputs.datacenter,
    // Defaults to datacenter; spelled out because the ACL system and the mesh CA key off it.
    primary_datacenter: inputs.datacenter,
    data_dir: CONSUL_PATHS.dataDir,
    server: true,
    bootstrap_expect: inputs.serverCount,
    retry_join: [awsRetryJoin(inputs.region, inputs.retryJoinTag)],
    // One address whatever the ENI layout; the documented `GetPrivateInterfaces | include "network" ...` form
    // breaks as soon as the VPC CIDR is not the one in the template.
    bind_addr: '{{ GetPrivateIP }}',
    // DNS (and anything not listed in `addresses`) stays on loopback.
    client_addr: '127.0.0.1',
    // The internal load balancer forwards 8501/8503 to the instance's private IP, so these two listen on all
    // interfaces; the security group limits who reaches them.
    addresses: { https: '0.0.0.0', grpc_tls: '0.0.0.0' },
    ports: { http: -1, https: 8501, grpc: -1, grpc_tls: 8503, dns: 8600 },
    encrypt_verify_incoming: true,
    encrypt_verify_outgoing: true,
    tls: {
      defaults: {
        ca_file: CONSUL_PATHS.caFile,
        cert_file: CONSUL_PATHS.certFile,
        key_file: CONSUL_PATHS.keyFile,
        verify_incoming: true,
        verify_outgoing: true,
        tls_min_version: 'TLSv1_2',
      },
      // Without it any holder of a CA-signed client certificate could pose as a server and read every token.
      internal_rpc: { verify_server_hostname: true },
      // Lambda functions and operators call the API with an ACL token but no client certificate; ACLs (default
      // deny) authorise them, TLS still encrypts and authenticates the server.
      https: { verify_incoming: false },
      // Dataplanes and the mesh gateway authenticate to xDS with ACL tokens, not client certificates; the
      // listener presents the server certificate (signed by our CA), not an auto_encrypt one.
      grpc: { verify_incoming: false, use_auto_cert: false },
    },
    auto_encrypt: { allow_tls: true },
    acl: { enabled: true, default_policy: 'deny', down_policy: 'extend-cache', enable_token_persistence: true },
    connect: { enabled: true },
    autopilot: {
      cleanup_dead_servers: true,
      last_contact_threshold: '10s',
      server_stabilization_time: '10s',
      // Only Consul Enterprise acts on this (automated upgrade migrations); Consul CE accepts and ignores it.
      upgrade_version_tag: 'build',
    },
    node_meta: { build: inputs.consulVersion },
    // A replaced instance leaves the Raft peer set on shutdown instead of lingering as a failed voter.
    leave_on_terminate: true,
    performance: { raft_multiplier: 1 },
    log_level: 'INFO',
    log_json: true,
    log_file: CONSUL_PATHS.logDir,
    // Logs are shipped to CloudWatch; a week on disk is enough and keeps the root volume from filling.
    log_rotate_max_files: 7,
    ui_config: { enabled: false },
    disable_update_check: true,
  };
}
