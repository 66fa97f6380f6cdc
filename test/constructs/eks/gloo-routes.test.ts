import { Duration } from 'aws-cdk-lib';
import { Testing } from 'cdk8s';
import { GlooLambdaFunction, GlooLambdaRoutes, type GlooLambdaRoutesProps, GlooUpstreamRole, LambdaInvocationStyle } from '../../../constructs/eks';
import { type Mesh } from '../../../constructs/mesh';
import { expectValidManifests } from '../../harness';
import { fixture, meshError } from './fixtures';

interface Doc {
  kind: string;
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  spec: {
    aws?: { region: string; lambdaFunctions: unknown[]; roleArn?: string; disableRoleChaining?: boolean };
    virtualHost?: { domains: string[]; routes: Array<{ matchers: unknown[]; routeAction: { single?: { upstream: unknown; destinationSpec: { aws: Record<string, unknown> } }; multi?: { destinations: Array<{ weight: number; destination: { destinationSpec: { aws: Record<string, unknown> } } }> } }; options: Record<string, unknown> }> };
  };
}

/** Fixed function names, as the environment gives them, so the YAML is complete without a deploy. */
function named(identities = ['model-a-v1', 'model-a-v2', 'model-b-v1']): GlooLambdaFunction[] {
  return identities.map((identity) => GlooLambdaFunction.fromFunctionName(identity, `ml-${identity}`));
}

function synth(props: Partial<GlooLambdaRoutesProps> = {}): Doc[] {
  const { mesh } = fixture();
  const chart = new GlooLambdaRoutes(Testing.app(), 'Routes', { mesh, region: 'eu-west-1', functions: named(), ...props });
  return Testing.synth(chart) as Doc[];
}

function routesError(props: Partial<GlooLambdaRoutesProps>, mesh?: Mesh): ReturnType<typeof meshError> {
  return meshError(() => new GlooLambdaRoutes(Testing.app(), 'Routes', { mesh: mesh ?? fixture().mesh, region: 'eu-west-1', functions: named(), ...props }));
}

describe('GlooLambdaRoutes', () => {
  test('an aws Upstream listing every function with its name and explicit qualifier, opted out of discovery', () => {
    const [upstream] = synth();
    expect(upstream.kind).toBe('Upstream');
    expect(upstream.metadata).toEqual({ name: 'lambda-mesh', namespace: 'gloo-system', labels: { 'discovery.solo.io/function_discovery': 'disabled' } });
    expect(upstream.spec.aws).toEqual({
      region: 'eu-west-1',
      lambdaFunctions: [
        { logicalName: 'model-a-v1', lambdaFunctionName: 'ml-model-a-v1', qualifier: '$LATEST' },
        { logicalName: 'model-a-v2', lambdaFunctionName: 'ml-model-a-v2', qualifier: '$LATEST' },
        { logicalName: 'model-b-v1', lambdaFunctionName: 'ml-model-b-v1', qualifier: '$LATEST' },
      ],
    });
  });

  test('by default one route per function version at /<function>/<version>, with cold-start timeouts and safe retries', () => {
    const [, vs] = synth();
    expect(vs.kind).toBe('VirtualService');
    expect(vs.spec.virtualHost!.domains).toEqual(['*']);
    const routes = vs.spec.virtualHost!.routes;
    expect(routes.map((r) => r.matchers)).toEqual([[{ prefix: '/model-a/v1' }], [{ prefix: '/model-a/v2' }], [{ prefix: '/model-b/v1' }]]);
    expect(routes[0].routeAction.single).toEqual({
      upstream: { name: 'lambda-mesh', namespace: 'gloo-system' },
      destinationSpec: { aws: { logicalName: 'model-a-v1', invocationStyle: 'SYNC' } },
    });
    expect(routes[0].options).toEqual({
      timeout: '60s',
      retries: { retryOn: 'connect-failure,refused-stream,reset,retriable-status-codes', numRetries: 2, perTryTimeout: '60s', retriableStatusCodes: [429] },
    });
  });

  test('every manifest validates against the Gloo CRD schemas, with every option in use', () => {
    const { mesh } = fixture();
    const role = GlooUpstreamRole.webIdentity('arn:aws:iam::123456789012:role/gloo-invoker');
    const chart = new GlooLambdaRoutes(Testing.app(), 'Routes', {
      mesh,
      region: 'eu-west-1',
      functions: [...named(['model-a-v1', 'model-b-v1']), GlooLambdaFunction.fromFunctionName('model-a-v2', 'ml-model-a-v2', { logicalName: 'canary', qualifier: '3' })],
      upstreamRole: role,
      domains: ['models.internal.example.com'],
      routes: [
        { pathPrefix: '/a', destinations: [{ logicalName: 'model-a-v1', weight: 90 }, { logicalName: 'canary', weight: 10 }] },
        { pathPrefix: '/b', logicalName: 'model-b-v1', unwrapAsApiGateway: true, timeout: Duration.seconds(20), retries: { numRetries: 1, perTryTimeout: Duration.millis(10_500) } },
        { pathPrefix: '/b/events', logicalName: 'model-b-v1', invocationStyle: LambdaInvocationStyle.ASYNC, requestTransformation: true },
        { pathPrefix: '/b/alb', logicalName: 'model-b-v1', unwrapAsAlb: true },
      ],
    });
    const docs = Testing.synth(chart) as Doc[];
    expectValidManifests(docs);
    expect(docs[0].spec.aws).toMatchObject({ roleArn: 'arn:aws:iam::123456789012:role/gloo-invoker', disableRoleChaining: true });
    const routes = docs[1].spec.virtualHost!.routes;
    // Longer prefixes first: '/b' would otherwise take '/b/events'.
    expect(routes.map((r) => (r.matchers[0] as { prefix: string }).prefix)).toEqual(['/b/events', '/b/alb', '/a', '/b']);
    expect(routes[2].routeAction.multi!.destinations.map((d) => [d.weight, d.destination.destinationSpec.aws.logicalName])).toEqual([[90, 'model-a-v1'], [10, 'canary']]);
    expect(routes[3].options).toMatchObject({ timeout: '20s', retries: { numRetries: 1, perTryTimeout: '10.5s' } });
    expect(routes[0].routeAction.single!.destinationSpec.aws).toEqual({ logicalName: 'model-b-v1', invocationStyle: 'ASYNC', requestTransformation: true });
  });

  test('the default manifests validate against the Gloo CRD schemas', () => {
    expectValidManifests(synth());
  });

  test('fails when unwrapAsAlb and unwrapAsApiGateway are both set', () => {
    const err = routesError({ routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', unwrapAsAlb: true, unwrapAsApiGateway: true }] });
    expect(err.location).toBe('Routes');
    expect(err.field).toBe('routes[0].unwrapAsAlb');
    expect(err.expected).toMatch(/not both unwrapAsAlb and unwrapAsApiGateway/);
  });

  test.each([['unwrapAsApiGateway'], ['unwrapAsAlb']])('fails when requestTransformation is combined with %s', (unwrap) => {
    const err = routesError({ routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', requestTransformation: true, [unwrap]: true }] });
    expect(err.field).toBe('routes[0].requestTransformation');
    expect(err.expected).toMatch(/without unwrapAsAlb or unwrapAsApiGateway/);
  });

  test('fails when a route names a logicalName the Upstream does not list', () => {
    const err = routesError({ routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1' }, { pathPrefix: '/c', logicalName: 'model-c-v1' }] });
    expect(err.field).toBe('routes[1].logicalName');
    expect(err.given).toBe('"model-c-v1"');
    expect(err.expected).toMatch(/a logical name the Upstream lists \(model-a-v1, model-a-v2, model-b-v1\)/);
    const multi = routesError({ routes: [{ pathPrefix: '/a', destinations: [{ logicalName: 'model-a-v1', weight: 1 }, { logicalName: 'nope', weight: 1 }] }] });
    expect(multi.field).toBe('routes[0].destinations[1].logicalName');
  });

  test('fails when a weighted destination has weight 0', () => {
    const err = routesError({ routes: [{ pathPrefix: '/a', destinations: [{ logicalName: 'model-a-v1', weight: 100 }, { logicalName: 'model-a-v2', weight: 0 }] }] });
    expect(err.field).toBe('routes[0].destinations[1].weight');
    expect(err.given).toBe('0');
    expect(err.expected).toMatch(/at least 1/);
  });

  test('fails when a function is not a function version of the mesh', () => {
    const err = routesError({ functions: [...named(), GlooLambdaFunction.fromFunctionName('billing-v1', 'billing')] });
    expect(err.field).toBe('functions[3].identity');
    expect(err.given).toBe('"billing-v1"');
    expect(err.expected).toMatch(/a function version of mesh 'ml' \(model-a-v1, model-a-v2, model-b-v1\)/);
    // A service of the mesh is not a function either.
    expect(routesError({ functions: [GlooLambdaFunction.fromFunctionName('feature-store', 'fs')] }).field).toBe('functions[0].identity');
  });

  test('fails when the upstream role is not a role ARN', () => {
    const err = routesError({ upstreamRole: GlooUpstreamRole.webIdentity('arn:aws:iam::123456789012:user/someone') });
    expect(err.field).toBe('upstreamRole.roleArn');
  });

  test.each([
    ['a path prefix does not start with /', { routes: [{ pathPrefix: 'a', logicalName: 'model-a-v1' }] }, 'routes[0].pathPrefix'],
    ['two routes have the same prefix', { routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1' }, { pathPrefix: '/a', logicalName: 'model-a-v2' }] }, 'routes[1].pathPrefix'],
    ['a route has no destination', { routes: [{ pathPrefix: '/a' }] }, 'routes[0].logicalName'],
    ['a route has both logicalName and destinations', { routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', destinations: [{ logicalName: 'model-a-v2', weight: 1 }] }] }, 'routes[0].logicalName'],
    ['numRetries is above 10', { routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', retries: { numRetries: 11 } }] }, 'routes[0].retries.numRetries'],
    ['perTryTimeout exceeds the timeout', { routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', timeout: Duration.seconds(5), retries: { perTryTimeout: Duration.seconds(6) } }] }, 'routes[0].retries.perTryTimeout'],
    ['a retriable status code is not an HTTP status', { routes: [{ pathPrefix: '/a', logicalName: 'model-a-v1', retries: { retriableStatusCodes: [42] } }] }, 'routes[0].retries.retriableStatusCodes'],
    ['two functions share a logical name', { functions: [...named(), GlooLambdaFunction.fromFunctionName('model-b-v1', 'other', { logicalName: 'model-a-v1' })] }, 'functions[3].logicalName'],
    ['there is no function', { functions: [] }, 'functions'],
    ['the region is not a region', { region: 'Europe' }, 'region'],
  ] as Array<[string, Partial<GlooLambdaRoutesProps>, string]>)('fails when %s', (_label, props, field) => {
    expect(routesError(props).field).toBe(field);
  });
});
