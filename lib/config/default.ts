import type { EnvironmentConfig, RuleAction, ServiceProtocol } from './types';

/**
 * The values that apply when an optional config field is absent (the `@default`s of {@link EnvironmentConfig}),
 * for whoever builds the environment from a loaded config.
 */
export const CONFIG_DEFAULTS = {
  network: { cidr: '10.0.0.0/16', maxAzs: 3 },
  mesh: { datacenter: 'dc1', partition: 'default', namespace: 'default' },
  service: { protocol: 'tcp' as ServiceProtocol },
  rule: { action: 'allow' as RuleAction },
} as const;

/**
 * Defines the environment that `cdk synth` builds without `-c config`: three backend services and three model
 * functions, one of them with a canary version, each allowed exactly what it needs.
 *
 * `examples/config/default.yaml` holds the same content with comments; a test keeps the two equal.
 */
export const DEFAULT_CONFIG: EnvironmentConfig = {
  name: 'lambda-mesh-dev',
  network: { cidr: '10.0.0.0/16', maxAzs: 3 },
  mesh: { datacenter: 'dc1' },
  services: [
    { name: 'feature-store', port: 8080, protocol: 'http', description: 'Serves model input features over HTTP.' },
    { name: 'log-service', port: 24224, protocol: 'tcp', description: 'Ingests logs over the Fluent Forward protocol.' },
    { name: 'result-writer', port: 8081, protocol: 'http', description: 'Stores model results over HTTP.' },
  ],
  functions: [
    { name: 'model-a', versions: ['v1', 'v2'], description: 'Model A; v2 is a canary beside v1.' },
    { name: 'model-b', versions: ['v1'], description: 'Model B.' },
    { name: 'model-c', versions: ['v1'], description: 'Model C.' },
  ],
  rules: [
    {
      from: 'model-a',
      to: 'feature-store',
      http: { pathPrefix: '/features', methods: ['GET'] },
      description: 'model-a reads its input features.',
    },
    {
      from: 'model-a',
      to: 'result-writer',
      http: { pathPrefix: '/results', methods: ['POST'] },
      description: 'model-a writes its results.',
    },
    { from: 'model-a', to: 'log-service', description: 'model-a ships its logs (L4: Fluent Forward is not HTTP).' },
    {
      from: 'model-b',
      to: 'feature-store',
      http: { pathPrefix: '/features', methods: ['GET'] },
      description: 'model-b reads its input features.',
    },
    {
      from: 'model-b',
      to: 'result-writer',
      http: { pathPrefix: '/results', methods: ['POST'] },
      description: 'model-b writes its results.',
    },
    { from: 'model-b', to: 'log-service', description: 'model-b ships its logs (L4: Fluent Forward is not HTTP).' },
    {
      from: 'model-c',
      to: 'feature-store',
      http: { pathPrefix: '/features', methods: ['GET'] },
      description: 'model-c reads its input features.',
    },
    {
      from: 'model-c',
      to: 'result-writer',
      http: { pathPrefix: '/results', methods: ['POST'] },
      description: 'model-c writes its results.',
    },
    { from: 'model-c', to: 'log-service', description: 'model-c ships its logs (L4: Fluent Forward is not HTTP).' },
  ],
};
