import { formatSummary, MAX_LISTED_FUNCTION_STACKS, type SynthSummary } from '../../lib/summary';

function summary(functionStacks: number): SynthSummary {
  const stack = (stackName: string, resources: number): SynthSummary['stacks'][number] => ({
    stackName,
    templateFile: `cdk.out/${stackName}.template.json`,
    resources,
    byType: { 'AWS::IAM::Policy': resources },
  });
  return {
    environment: 'dev',
    configSource: '(test)',
    stacks: [
      stack('dev-network', 72),
      stack('dev-mesh', 43),
      ...Array.from({ length: functionStacks }, (_, i) => stack(`dev-function-model-${i + 1}`, 5 * (1 + (i % 3)))),
      stack('dev-eks', 38),
    ],
    mesh: { datacenter: 'dc1', services: [], identities: [], rules: [], functionUpstreams: [] },
    kubernetesFiles: [],
  };
}

function stackLines(text: string): string[] {
  return text.split('\n').filter((l) => l.startsWith('  dev-') || l.startsWith('  ...'));
}

describe('formatSummary', () => {
  test('lists every stack while the model function stacks are few', () => {
    const text = formatSummary(summary(MAX_LISTED_FUNCTION_STACKS));

    expect(text).toContain(`CloudFormation: ${MAX_LISTED_FUNCTION_STACKS + 3} stack(s)`);
    expect(stackLines(text)).toHaveLength(MAX_LISTED_FUNCTION_STACKS + 3);
    expect(text).toContain('  dev-function-model-2: 10 resources -> cdk.out/dev-function-model-2.template.json  (10 IAM::Policy, ...)');
  });

  test('with many model function stacks, lists the first ones and sums up the rest in one line, in stack order', () => {
    const text = formatSummary(summary(500));

    expect(text).toContain('CloudFormation: 503 stack(s)');
    const lines = stackLines(text);
    expect(lines).toHaveLength(3 + MAX_LISTED_FUNCTION_STACKS);
    expect(lines[0]).toMatch(/^ {2}dev-network: 72 resources/);
    expect(lines[2]).toMatch(/^ {2}dev-function-model-1: 5 resources/);
    expect(lines[MAX_LISTED_FUNCTION_STACKS]).toMatch(new RegExp(`^ {2}dev-function-model-${MAX_LISTED_FUNCTION_STACKS - 1}: `));
    expect(lines[MAX_LISTED_FUNCTION_STACKS + 1]).toBe(`  ... and ${500 - MAX_LISTED_FUNCTION_STACKS + 1} more dev-function-<function> stacks: 5 to 15 resources each`);
    expect(lines[MAX_LISTED_FUNCTION_STACKS + 2]).toMatch(/^ {2}dev-eks: 38 resources/);
  });
});
