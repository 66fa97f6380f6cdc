import { Aws } from 'aws-cdk-lib';
import {
  CONSUL_ECS,
  type ConsulEcsCommon,
  type ConsulEcsConfig,
  type ConsulEcsGatewayInput,
  type ConsulEcsServiceInput,
  gatewayConfig,
  serviceConfig,
} from '../../../constructs/consul/private/consul-ecs';
import { type IConsulCluster } from '../../../constructs/consul/types';
import { validateConsulEcsConfig } from '../../harness';

/** Only what the renderers read of a cluster: its datacenter and its load balancer's name. */
function cluster(datacenter = 'dc1'): IConsulCluster {
  return { datacenter, endpointAddress: 'internal-consul-0123456789.eu-west-1.elb.amazonaws.com' } as unknown as IConsulCluster;
}

function common(overrides: Partial<ConsulEcsCommon> = {}): ConsulEcsCommon {
  return {
    cluster: cluster(),
    authMethodName: 'lambda-mesh-ml-aws-iam',
    serverIdHeaderValue: 'server.dc1.consul',
    namespace: 'default',
    partition: 'default',
    ...overrides,
  };
}

const SERVICE: ConsulEcsServiceInput = {
  name: 'feature-store',
  port: 8080,
  upstreams: [{ name: 'log-service', localPort: 24224 }, { name: 'result-writer', localPort: 18081 }],
  healthSyncContainers: ['app'],
  meta: { 'lambda-mesh-placement': 'ecs' },
};

const GATEWAY: ConsulEcsGatewayInput = {
  name: 'mesh-gateway',
  port: 8443,
  wanAddress: 'internal-gw-0123456789.eu-west-1.elb.amazonaws.com',
  meta: { 'lambda-mesh-gateway': 'functions' },
};

/** The config as consul-ecs reads it in the task: the region, a deploy-time value, as its deployed value. */
function deployed(config: ConsulEcsConfig): Record<string, unknown> {
  expect(config.consulLogin.region).toBe(Aws.REGION);
  return JSON.parse(JSON.stringify({ ...config, consulLogin: { ...config.consulLogin, region: 'eu-west-1' } })) as Record<string, unknown>;
}

describe('consul-ecs configuration', () => {
  test('the parts every task shares: the servers behind their load balancer, TLS to the servers\' name, the aws-iam login', () => {
    for (const config of [serviceConfig(common(), SERVICE), gatewayConfig(common(), GATEWAY)]) {
      expect(config).toMatchObject({
        logLevel: 'INFO',
        bootstrapDir: CONSUL_ECS.BOOTSTRAP_DIR,
        consulServers: {
          hosts: 'internal-consul-0123456789.eu-west-1.elb.amazonaws.com',
          skipServerWatch: true,
          defaults: { tls: true, tlsServerName: 'server.dc1.consul' },
          http: { port: 8501, https: true },
          grpc: { port: 8503 },
        },
        consulLogin: { enabled: true, method: 'lambda-mesh-ml-aws-iam', includeEntity: true, datacenter: 'dc1', serverIdHeaderValue: 'server.dc1.consul' },
        transparentProxy: { enabled: false },
      });
    }
    expect(gatewayConfig(common({ cluster: cluster('eu-1') }), GATEWAY).consulServers.defaults.tlsServerName).toBe('server.eu-1.consul');
  });

  describe('serviceConfig', () => {
    test('the service, its sidecar on 20000 with Envoy\'s ready port 22000, its upstreams as local listeners', () => {
      const config = serviceConfig(common(), SERVICE);
      expect(config.service).toEqual({ name: 'feature-store', port: 8080, tags: [], meta: { 'lambda-mesh-placement': 'ecs' } });
      expect(config.proxy).toEqual({
        publicListenerPort: 20000,
        healthCheckPort: 22000,
        localServiceAddress: '127.0.0.1',
        upstreams: [
          { destinationName: 'log-service', localBindPort: 24224 },
          { destinationName: 'result-writer', localBindPort: 18081 },
        ],
      });
      expect(config.healthSyncContainers).toEqual(['app']);
      expect(config.gateway).toBeUndefined();
    });

    test('is valid against the official consul-ecs schema', () => {
      expect(validateConsulEcsConfig(deployed(serviceConfig(common(), SERVICE)))).toEqual([]);
      expect(validateConsulEcsConfig(deployed(serviceConfig(common(), { ...SERVICE, upstreams: [], healthSyncContainers: [] })))).toEqual([]);
    });

    test('Community Edition: no namespace or partition anywhere', () => {
      const text = JSON.stringify(serviceConfig(common(), SERVICE));
      expect(text).not.toMatch(/namespace|partition/i);
    });

    test('Enterprise: the service and its upstreams in the mesh\'s namespace and partition', () => {
      const config = serviceConfig(common({ namespace: 'ml', partition: 'team-a' }), SERVICE);
      expect(config.service).toMatchObject({ namespace: 'ml', partition: 'team-a' });
      expect(config.proxy?.upstreams).toEqual([
        { destinationName: 'log-service', localBindPort: 24224, destinationNamespace: 'ml', destinationPartition: 'team-a' },
        { destinationName: 'result-writer', localBindPort: 18081, destinationNamespace: 'ml', destinationPartition: 'team-a' },
      ]);
      expect(validateConsulEcsConfig(deployed(config))).toEqual([]);
    });

    test('Enterprise: only what is not default is set', () => {
      const namespaced = serviceConfig(common({ namespace: 'ml' }), SERVICE);
      expect(namespaced.service).toMatchObject({ namespace: 'ml' });
      expect(namespaced.service?.partition).toBeUndefined();
      expect(namespaced.proxy?.upstreams[0]).toEqual({ destinationName: 'log-service', localBindPort: 24224, destinationNamespace: 'ml' });
      const partitioned = serviceConfig(common({ partition: 'team-a' }), SERVICE);
      expect(partitioned.service?.namespace).toBeUndefined();
      expect(partitioned.proxy?.upstreams[0]).toEqual({ destinationName: 'log-service', localBindPort: 24224, destinationPartition: 'team-a' });
    });
  });

  describe('gatewayConfig', () => {
    test('a mesh gateway: LAN port (the task\'s own address), WAN address its load balancer, no service, proxy or health-sync containers', () => {
      const config = gatewayConfig(common(), GATEWAY);
      expect(config.gateway).toEqual({
        kind: 'mesh-gateway',
        name: 'mesh-gateway',
        lanAddress: { port: 8443 },
        wanAddress: { address: 'internal-gw-0123456789.eu-west-1.elb.amazonaws.com', port: 8443 },
        meta: { 'lambda-mesh-gateway': 'functions' },
      });
      expect(config.service).toBeUndefined();
      expect(config.proxy).toBeUndefined();
      expect(config.healthSyncContainers).toEqual([]);
    });

    test('is valid against the official consul-ecs schema', () => {
      expect(validateConsulEcsConfig(deployed(gatewayConfig(common(), GATEWAY)))).toEqual([]);
    });

    test('Community Edition: no namespace or partition anywhere', () => {
      expect(JSON.stringify(gatewayConfig(common(), GATEWAY))).not.toMatch(/namespace|partition/i);
    });

    test('Enterprise: the gateway in the mesh\'s partition, in its default namespace (mesh gateways are not namespaced)', () => {
      const config = gatewayConfig(common({ namespace: 'ml', partition: 'team-a' }), GATEWAY);
      expect(config.gateway?.partition).toBe('team-a');
      expect(JSON.stringify(config)).not.toContain('"namespace"');
      expect(validateConsulEcsConfig(deployed(config))).toEqual([]);
      expect(gatewayConfig(common({ namespace: 'ml' }), GATEWAY).gateway).not.toHaveProperty('partition');
    });
  });

  describe('the schema check bites', () => {
    const valid = (): Record<string, unknown> => deployed(serviceConfig(common(), SERVICE));

    test('fails when bootstrapDir is missing', () => {
      const config = valid();
      delete config.bootstrapDir;
      expect(validateConsulEcsConfig(config).join('\n')).toMatch(/bootstrapDir/);
    });

    test('fails when an upstream has no localBindPort', () => {
      const config = valid() as { proxy: { upstreams: Array<Record<string, unknown>> } };
      delete config.proxy.upstreams[0].localBindPort;
      expect(validateConsulEcsConfig(config).join('\n')).toMatch(/\/proxy\/upstreams\/0 .*localBindPort/);
    });

    test('fails when an upstream uses the wrong field name', () => {
      const config = valid() as { proxy: { upstreams: Array<Record<string, unknown>> } };
      config.proxy.upstreams[0] = { destinationName: 'log-service', localPort: 24224 };
      expect(validateConsulEcsConfig(config)).not.toEqual([]);
    });

    test('fails when the gateway kind is unknown', () => {
      const config = deployed(gatewayConfig(common(), GATEWAY)) as { gateway: Record<string, unknown> };
      config.gateway.kind = 'ingress-gateway';
      expect(validateConsulEcsConfig(config).join('\n')).toMatch(/\/gateway\/kind/);
    });

    test('fails when a top-level field is unknown', () => {
      expect(validateConsulEcsConfig({ ...valid(), consulHTTPAddr: 'https://consul:8501' })).not.toEqual([]);
    });

    test('fails when the service name is not a Consul name', () => {
      expect(validateConsulEcsConfig(deployed(serviceConfig(common(), { ...SERVICE, name: 'Feature_Store' }))).join('\n')).toMatch(/\/service\/name/);
    });
  });
});
