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
  kubernetes: { namespace: 'lambda-mesh', tracingSamplingPercentage: 1 },
} as const;

/** The default's model functions. */
const MODELS = ['model-a', 'model-b', 'model-c'];

/**
 * Defines the environment that `cdk synth` builds without `-c config`: three backend services and three model
 * functions, one of them with a canary version, each allowed exactly what it needs.
 *
 * `examples/config/default.yaml` holds the same content with comments; a test keeps the two equal.
 */
export const DEFAULT_CONFIG: EnvironmentConfig = {
  name: 'lambda-mesh-dev',
  // A fixed region: the Gloo routes written to dist/ name it (an Upstream's spec.aws.region is a literal there).
  // The zones are listed, so synth needs no credentials to look them up.
  env: { region: 'us-east-1' },
  network: { cidr: '10.0.0.0/16', availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] },
  mesh: { datacenter: 'dc1' },
  // A private EKS cluster with Gloo Edge routing to every function version at /<function>/<version>.
  eks: {},
  services: [
    // The sample backends (lib/sample-services), each on ECS Fargate in the mesh: the far end of the models' calls.
    { name: 'feature-store', port: 8080, protocol: 'http', placement: 'ecs', workload: { sample: 'feature-store' }, description: 'Serves model input features over HTTP.' },
    { name: 'log-service', port: 24224, protocol: 'tcp', placement: 'ecs', workload: { sample: 'log-service' }, description: 'Ingests newline-delimited JSON log records over TCP.' },
    { name: 'result-writer', port: 8081, protocol: 'http', placement: 'ecs', workload: { sample: 'result-writer' }, description: 'Stores model results over HTTP.' },
  ],
  functions: [
    { name: 'model-a', versions: ['v1', 'v2'], description: 'Model A; v2 is a canary beside v1.' },
    { name: 'model-b', versions: ['v1'], description: 'Model B.' },
    { name: 'model-c', versions: ['v1'], description: 'Model C.' },
  ],
  // Every model reads its features, writes its results and ships its logs: nothing else.
  rules: MODELS.flatMap((model) => [
    { from: model, to: 'feature-store', http: { pathPrefix: '/features', methods: ['GET'] }, description: `${model} reads its input features.` },
    { from: model, to: 'result-writer', http: { pathPrefix: '/results', methods: ['POST'] }, description: `${model} writes its results.` },
    { from: model, to: 'log-service', description: `${model} ships its logs (L4: Fluent Forward is not HTTP).` },
  ]),
};
