import {
  countSecurityGroups,
  describePlanBStacks,
  measurePlanA,
  measurePlanB,
  planBConfig,
  type PlanBMeasurement,
  type SynthesizedTemplate,
} from '../../bench/plan-a-vs-b';

const PLACEHOLDER = { CidrIp: '255.255.255.255/32', Description: 'Disallow all traffic', FromPort: 252, IpProtocol: 'icmp', ToPort: 86 };

describe('countSecurityGroups', () => {
  test('counts inline rules and rule resources, leaves out placeholders, and follows rules across stacks', () => {
    const producer: SynthesizedTemplate = {
      stackName: 'net',
      bytes: 100,
      template: {
        Resources: {
          Fn: { Type: 'AWS::EC2::SecurityGroup', Properties: { SecurityGroupEgress: [PLACEHOLDER] } },
          Svc: { Type: 'AWS::EC2::SecurityGroup', Properties: { SecurityGroupIngress: [{ CidrIp: '10.0.0.0/16', IpProtocol: 'tcp', FromPort: 80, ToPort: 80 }] } },
          SvcFromFn: { Type: 'AWS::EC2::SecurityGroupIngress', Properties: { GroupId: { 'Fn::GetAtt': ['Svc', 'GroupId'] } } },
          Bucket: { Type: 'AWS::S3::Bucket' },
        },
        Outputs: {
          FnId: { Value: { 'Fn::GetAtt': ['Fn', 'GroupId'] } },
          SvcId: { Value: { 'Fn::GetAtt': ['Svc', 'GroupId'] }, Export: { Name: 'net:SvcId' } },
        },
      },
    };
    const consumer: SynthesizedTemplate = {
      stackName: 'app',
      bytes: 300,
      template: {
        Resources: {
          FnToGateway: { Type: 'AWS::EC2::SecurityGroupEgress', Properties: { GroupId: { 'Fn::GetStackOutput': { StackName: 'net', OutputName: 'FnId' } } } },
          SvcFromGateway: { Type: 'AWS::EC2::SecurityGroupIngress', Properties: { GroupId: { 'Fn::ImportValue': 'net:SvcId' } } },
          Elsewhere: { Type: 'AWS::EC2::SecurityGroupIngress', Properties: { GroupId: 'sg-0123456789abcdef0' } },
        },
      },
    };

    const c = countSecurityGroups([producer, consumer]);

    expect(c).toMatchObject({
      stacks: 2,
      resources: 7,
      maxResourcesInStack: 4,
      maxTemplateBytes: 300,
      securityGroups: 2,
      inlineIngress: 1,
      inlineEgress: 0,
      ingressResources: 3,
      egressResources: 1,
      noTrafficPlaceholders: 1,
      ingress: 4,
      egress: 1,
      rules: 5,
      maxInboundPerGroup: 3,
      maxOutboundPerGroup: 1,
    });
    expect(Object.fromEntries(c.perGroup)).toEqual({
      'net/Fn': { inbound: 0, outbound: 1 },
      'net/Svc': { inbound: 3, outbound: 0 },
      'external:sg-0123456789abcdef0': { inbound: 1, outbound: 0 },
    });
  });
});

describe('plan A, from synthesized templates', () => {
  const sizes = [2, 5].flatMap((models) => [2, 3].flatMap((services) => [1, 2].map((versions) => ({ models, services, versions }))));

  test.each(sizes)('N=$models M=$services V=$versions: N*V*M ingress and N*V*M egress rules, N*V + M groups', (size) => {
    const { models: n, services: m, versions: v } = size;
    const { counts, serviceGroups } = measurePlanA(size);

    expect(counts.ingress).toBe(n * v * m);
    expect(counts.egress).toBe(n * v * m);
    expect(counts.rules).toBe(2 * n * v * m);
    expect(counts.securityGroups).toBe(n * v + m);
    // Rules that reference another group cannot be inline: every pair is two resources.
    expect(counts.ingressResources).toBe(n * v * m);
    expect(counts.egressResources).toBe(n * v * m);
    expect(counts.resources).toBe(n * v + m + 2 * n * v * m);
    // Only the service groups have no egress rule, so only they keep CDK's placeholder.
    expect(counts.noTrafficPlaceholders).toBe(m);
    for (const key of serviceGroups) {
      expect(counts.perGroup.get(key)).toEqual({ inbound: n * v, outbound: 0 });
    }
    expect(counts.maxOutboundPerGroup).toBe(m);
  });
});

describe('plan B (lambda-mesh), from synthesized templates', () => {
  const results = new Map<string, PlanBMeasurement>();
  const key = (models: number, services: number): string => `${models}x${services}`;

  beforeAll(() => {
    for (const models of [2, 5]) {
      for (const services of [2, 3]) {
        results.set(key(models, services), measurePlanB({ models, services, versions: 1 }));
      }
    }
  });

  test.each([2, 3])('M=%i: the security-group rules are the same for N=2 and N=5', (services) => {
    const two = results.get(key(2, services))!;
    const five = results.get(key(5, services))!;

    expect(two.counts.rules).toBeGreaterThan(0);
    expect(five.counts.rules).toBe(two.counts.rules);
    expect(five.counts.securityGroups).toBe(two.counts.securityGroups);
    expect(five.functionGroup).toEqual(two.functionGroup);
    expect(five.functionGroup.outbound).toBeGreaterThan(0);
  });

  test.each([2, 5].flatMap((models) => [2, 3].map((services) => ({ models, services }))))(
    'N=$models M=$services: the per-pair policy is in the mesh model, one intention source per version and service',
    ({ models, services }) => {
      const { mesh } = results.get(key(models, services))!;

      expect(mesh).toEqual({
        identities: models + services,
        functionIdentities: models,
        resolvedRules: models * services,
        intentionEntries: services,
        declaredRules: models * services,
      });
    },
  );

  test.each([2, 5])('N=%i: all N + 3 stacks are counted, one per model function besides network, control plane and mesh (external services leave no services stack)', (models) => {
    const { counts, stackNames } = results.get(key(models, 2))!;
    const functionStacks = Array.from({ length: models }, (_, i) => `plan-b-function-model-${String(i + 1).padStart(4, '0')}`);

    expect([...stackNames].sort()).toEqual(['plan-b-control-plane', 'plan-b-mesh', 'plan-b-network', ...functionStacks].sort());
    expect(counts.stacks).toBe(models + 3);
    expect(counts.maxResourcesInStack).toBeLessThan(500);
    expect(describePlanBStacks(stackNames)).toBe('`<name>-network`, `<name>-control-plane`, `<name>-mesh`, one `<name>-function-<function>` per model function');
  });

  test('the config passes the loader\'s validation and has every function call every service over L7', () => {
    const config = planBConfig({ models: 2, services: 3, versions: 2 });

    expect(config.functions).toEqual([
      { name: 'model-0001', versions: ['v1', 'v2'] },
      { name: 'model-0002', versions: ['v1', 'v2'] },
    ]);
    expect(config.services.map((s) => [s.name, s.port, s.protocol, s.localPort])).toEqual([
      ['svc-01', 8080, 'http', 18080],
      ['svc-02', 8081, 'http', 18081],
      ['svc-03', 8082, 'http', 18082],
    ]);
    expect(config.rules).toHaveLength(6);
    expect(config.rules[0]).toEqual({ from: 'model-0001', to: 'svc-01', http: { pathPrefix: '/v1/', methods: ['GET'] } });
  });
});
