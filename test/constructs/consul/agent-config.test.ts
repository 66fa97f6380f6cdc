import { type ConsulAgentConfig, CONSUL_PATHS, awsRetryJoin, serverAgentConfig } from '../../../constructs/consul/private/agent-config';
import { type ServerBootInputs } from '../../../constructs/consul/private/boot-inputs';
import { ConsulPorts } from '../../../constructs/consul/types';
import { sampleBootInputs } from './fixtures';

/**
 * Every key path lambda-mesh writes to a server's configuration, as Consul documents it. A key the agent does not
 * know is a silent no-op at best (Consul warns and goes on), so a typo must fail here.
 */
const DOCUMENTED_KEY_PATHS: readonly string[] = [
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/general
  'datacenter', 'primary_datacenter', 'data_dir', 'server', 'bind_addr', 'client_addr',
  'addresses.dns', 'addresses.http', 'addresses.https', 'addresses.grpc', 'addresses.grpc_tls',
  'ports.dns', 'ports.http', 'ports.https', 'ports.grpc', 'ports.grpc_tls', 'ports.server', 'ports.serf_lan', 'ports.serf_wan',
  'leave_on_terminate', 'performance.raft_multiplier', 'performance.leave_drain_time', 'disable_update_check',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/bootstrap
  'bootstrap_expect',
  'autopilot.cleanup_dead_servers', 'autopilot.last_contact_threshold', 'autopilot.max_trailing_logs', 'autopilot.min_quorum',
  'autopilot.server_stabilization_time', 'autopilot.redundancy_zone_tag', 'autopilot.disable_upgrade_migration',
  'autopilot.upgrade_version_tag',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/join
  'retry_join', 'retry_interval', 'retry_max',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/encryption
  'encrypt', 'encrypt_verify_incoming', 'encrypt_verify_outgoing', 'auto_encrypt.allow_tls', 'auto_encrypt.tls',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/tls
  ...['defaults', 'internal_rpc', 'https', 'grpc'].flatMap((iface) =>
    ['ca_file', 'ca_path', 'cert_file', 'key_file', 'tls_min_version', 'tls_cipher_suites', 'verify_incoming'].map((k) => `tls.${iface}.${k}`)),
  ...['defaults', 'internal_rpc', 'https'].map((iface) => `tls.${iface}.verify_outgoing`),
  'tls.defaults.verify_server_hostname', 'tls.internal_rpc.verify_server_hostname', 'tls.grpc.use_auto_cert',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/acl
  'acl.enabled', 'acl.default_policy', 'acl.down_policy', 'acl.enable_token_persistence', 'acl.policy_ttl', 'acl.token_ttl',
  'acl.tokens.initial_management', 'acl.tokens.agent', 'acl.tokens.default', 'acl.tokens.dns',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/service-mesh
  'connect.enabled',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/node (a free-form map)
  'node_meta.*',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/log
  'log_level', 'log_json', 'log_file', 'log_rotate_duration', 'log_rotate_bytes', 'log_rotate_max_files',
  // https://developer.hashicorp.com/consul/docs/reference/agent/configuration-file/ui
  'ui_config.enabled',
];

/** The leaf key paths of a JSON document (arrays are leaves). */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [prefix];
  }
  return Object.entries(value).flatMap(([k, v]) => keyPaths(v, prefix ? `${prefix}.${k}` : k));
}

/** The key paths of `config` that Consul does not document. */
function undocumentedKeys(config: unknown): string[] {
  return keyPaths(config).filter((path) => !DOCUMENTED_KEY_PATHS.includes(path) && !DOCUMENTED_KEY_PATHS.includes(path.replace(/\.[^.]+$/, '.*')));
}

/** The shared sample inputs, with a short auto-join tag value. */
function inputs(overrides: Partial<ServerBootInputs> = {}): ServerBootInputs {
  return sampleBootInputs({ retryJoinTag: { key: 'lambda-mesh:consul-cluster', value: 'prod' }, ...overrides });
}

/** The configuration as Consul reads it: through JSON. */
function rendered(overrides: Partial<ServerBootInputs> = {}): ConsulAgentConfig {
  return JSON.parse(JSON.stringify(serverAgentConfig(inputs(overrides)))) as ConsulAgentConfig;
}

describe('serverAgentConfig', () => {
  test('uses only documented keys', () => {
    expect(undocumentedKeys(rendered())).toEqual([]);
  });

  test('the documented-key check catches a misspelt key', () => {
    const typo = { ...rendered(), encrypt_verify_incomming: true, tls: { defaults: { verify_incoming: true }, internal_rpc: { verify_server_host_name: true } } };
    expect(undocumentedKeys(typo)).toEqual(['tls.internal_rpc.verify_server_host_name', 'encrypt_verify_incomming']);
  });

  test('holds no secret: no gossip key, no ACL token', () => {
    const config = rendered();
    expect(config.encrypt).toBeUndefined();
    expect(config.acl?.tokens).toBeUndefined();
  });

  test('server in the datacenter, bootstrapping with the expected number of servers', () => {
    const config = rendered({ serverCount: 5, datacenter: 'prod-eu' });
    expect(config).toMatchObject({ server: true, datacenter: 'prod-eu', primary_datacenter: 'prod-eu', bootstrap_expect: 5, data_dir: '/opt/consul/data' });
  });

  test('joins by EC2 tag with go-discover, region explicit', () => {
    expect(rendered().retry_join).toEqual(['provider=aws region=eu-west-1 tag_key=lambda-mesh:consul-cluster tag_value=prod']);
    expect(awsRetryJoin('us-east-1', { key: 'k', value: 'v' })).toBe('provider=aws region=us-east-1 tag_key=k tag_value=v');
  });

  test('binds cluster traffic to the private IP; HTTPS and gRPC-TLS on all interfaces, the rest on loopback', () => {
    const config = rendered();
    expect(config.bind_addr).toBe('{{ GetPrivateIP }}');
    expect(config.client_addr).toBe('127.0.0.1');
    expect(config.addresses).toEqual({ https: '0.0.0.0', grpc_tls: '0.0.0.0' });
  });

  test('plaintext HTTP and gRPC are off; HTTPS and gRPC-TLS on the ports the cluster exposes', () => {
    const config = rendered();
    expect(config.ports).toEqual({ http: -1, https: 8501, grpc: -1, grpc_tls: 8503, dns: 8600 });
    expect(config.ports?.https).toBe(ConsulPorts.HTTPS);
    expect(config.ports?.grpc_tls).toBe(ConsulPorts.GRPC_TLS);
  });

  test('gossip encryption is enforced both ways', () => {
    expect(rendered()).toMatchObject({ encrypt_verify_incoming: true, encrypt_verify_outgoing: true });
  });

  test('TLS: mutual on RPC with server hostname checks, server-only on HTTPS and gRPC, TLS 1.2 or later', () => {
    expect(rendered().tls).toEqual({
      defaults: {
        ca_file: CONSUL_PATHS.caFile,
        cert_file: CONSUL_PATHS.certFile,
        key_file: CONSUL_PATHS.keyFile,
        verify_incoming: true,
        verify_outgoing: true,
        tls_min_version: 'TLSv1_2',
      },
      internal_rpc: { verify_server_hostname: true },
      https: { verify_incoming: false },
      grpc: { verify_incoming: false, use_auto_cert: false },
    });
    expect(rendered().auto_encrypt).toEqual({ allow_tls: true });
  });

  test('the TLS files are where the boot script writes them', () => {
    expect([CONSUL_PATHS.caFile, CONSUL_PATHS.certFile, CONSUL_PATHS.keyFile]).toEqual(
      ['ca.pem', 'server.pem', 'server-key.pem'].map((f) => `${CONSUL_PATHS.tlsDir}/${f}`));
    expect(CONSUL_PATHS.tlsDir).toBe(`${CONSUL_PATHS.configDir}/tls`);
    expect(CONSUL_PATHS.secretsFile).toBe(`${CONSUL_PATHS.configDir}/secrets.json`);
  });

  test('ACLs on, default deny, cached tokens survive a leader outage', () => {
    expect(rendered().acl).toEqual({ enabled: true, default_policy: 'deny', down_policy: 'extend-cache', enable_token_persistence: true });
  });

  test('autopilot cleans up dead servers; the upgrade tag is the Consul version in node_meta', () => {
    const config = rendered({ consulVersion: '1.22.0' });
    expect(config.autopilot).toEqual({ cleanup_dead_servers: true, last_contact_threshold: '10s', server_stabilization_time: '10s', upgrade_version_tag: 'build' });
    expect(config.node_meta).toEqual({ build: '1.22.0' });
  });

  test('operations: leave on terminate, production Raft timing, JSON logs to files, no UI, no update check', () => {
    expect(rendered()).toMatchObject({
      connect: { enabled: true },
      leave_on_terminate: true,
      performance: { raft_multiplier: 1 },
      log_level: 'INFO',
      log_json: true,
      log_file: '/var/log/consul/',
      ui_config: { enabled: false },
      disable_update_check: true,
    });
  });

  test('passes tokens through untouched', () => {
    const config = rendered({ region: '${Token[AWS.Region.9]}', datacenter: '${Token[TOKEN.12]}' });
    expect(config.retry_join?.[0]).toContain('region=${Token[AWS.Region.9]}');
    expect(config.datacenter).toBe('${Token[TOKEN.12]}');
  });
});
