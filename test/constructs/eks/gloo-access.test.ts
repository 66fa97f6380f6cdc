import { type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { GlooLambdaAccess, GlooLambdaFunction } from '../../../constructs/eks';
import { formatFindings, validateCloudFormation } from '../../harness';
import { actions, fixture, ISSUER_HOST, meshError, type Statement } from './fixtures';

interface RoleResource {
  Properties: { AssumeRolePolicyDocument: { Statement: Array<{ Condition: { StringEquals: unknown } }> } };
}

/** The identity-policy statements attached to the role whose logical id starts with `rolePrefix`. */
function statementsOf(stack: Stack, rolePrefix: string): Statement[] {
  const policies = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy')) as Array<{ Properties: { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } } }>;
  return policies
    .filter((p) => p.Properties.Roles.some((r) => r.Ref.startsWith(rolePrefix)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

function resourcesOf(s: Statement): unknown[] {
  return Array.isArray(s.Resource) ? (s.Resource as unknown[]) : [s.Resource];
}

/** The `<issuer>:sub` each role trusts (the fixture's issuer is a literal, so the keys are too). */
function subjects(roles: Record<string, RoleResource>): string[] {
  return Object.values(roles)
    .map((r) => r.Properties.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals as Record<string, string>)
    .map((conditions) => {
      expect(Object.keys(conditions).sort()).toEqual([`${ISSUER_HOST}:aud`, `${ISSUER_HOST}:sub`]);
      expect(conditions[`${ISSUER_HOST}:aud`]).toBe('sts.amazonaws.com');
      return conditions[`${ISSUER_HOST}:sub`];
    });
}

describe('GlooLambdaAccess', () => {
  test('one role per Gloo service account, each trusting only its own subject', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions, discovery: true });
    const roles = Template.fromStack(f.stack).findResources('AWS::IAM::Role') as Record<string, RoleResource>;
    expect(Object.keys(roles)).toHaveLength(2);
    for (const role of Object.values(roles)) {
      expect(role.Properties.AssumeRolePolicyDocument.Statement).toHaveLength(1);
    }
    expect(subjects(roles).sort()).toEqual(['system:serviceaccount:gloo-system:discovery', 'system:serviceaccount:gloo-system:gateway-proxy']);
  });

  test('least privilege: the proxy may only invoke the listed functions at their qualifier', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions });
    const statements = statementsOf(f.stack, 'GlooProxyRole');
    expect(statements.flatMap(actions)).toEqual(expect.arrayContaining(['lambda:InvokeFunction']));
    expect(new Set(statements.flatMap(actions))).toEqual(new Set(['lambda:InvokeFunction']));
    const resources = statements.flatMap((s) => resourcesOf(s)).map((r) => JSON.stringify(r));
    expect(resources).toHaveLength(6);
    for (const identity of ['model-a-v1', 'model-a-v2', 'model-b-v1']) {
      expect(resources.filter((r) => r.includes(`function:ml-${identity}`))).toHaveLength(2);
      expect(resources.some((r) => r.includes(`function:ml-${identity}:$LATEST`))).toBe(true);
    }
    expect(resources.some((r) => r.includes('*'))).toBe(false);
    // No discovery: no discovery role, and the chart keeps discovery off.
    Template.fromStack(f.stack).resourceCountIs('AWS::IAM::Role', 1);
  });

  test('a qualifier (alias or version) narrows the grant to that qualifier', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: [GlooLambdaFunction.fromFunctionName('model-a-v1', 'ml-model-a-v1', { qualifier: 'live' })] });
    const resources = statementsOf(f.stack, 'GlooProxyRole').flatMap((s) => resourcesOf(s));
    expect(resources).toEqual(['arn:aws:lambda:eu-west-1:123456789012:function:ml-model-a-v1:live']);
  });

  test('least privilege: discovery may read the listed functions and list functions, the only "*" (which AWS requires)', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions, discovery: true });
    const statements = statementsOf(f.stack, 'GlooDiscoveryRole');
    expect(new Set(statements.flatMap(actions))).toEqual(new Set(['lambda:GetFunction', 'lambda:ListFunctions']));
    for (const s of statements) {
      const resources = resourcesOf(s);
      if (resources.includes('*')) {
        expect(actions(s)).toEqual(['lambda:ListFunctions']);
        expect(resources).toEqual(['*']);
      }
    }
    const all = [...statementsOf(f.stack, 'GlooProxyRole'), ...statements];
    expect(all.flatMap(actions).some((a) => a.includes('*'))).toBe(false);
  });

  test('Helm values: service account credentials, regional STS, role annotations, discovery as configured', () => {
    const f = fixture();
    const off = new GlooLambdaAccess(f.stack, 'Off', { issuer: f.issuer, functions: f.functions });
    expect(f.stack.resolve(off.helmValues())).toEqual({
      settings: { aws: { enableServiceAccountCredentials: true, stsCredentialsRegion: 'eu-west-1' } },
      gateway: { proxyServiceAccount: { extraAnnotations: { 'eks.amazonaws.com/role-arn': { 'Fn::GetAtt': [expect.stringMatching(/^OffProxyRole/), 'Arn'] } } } },
      discovery: { enabled: false },
    });
    const on = new GlooLambdaAccess(f.stack, 'On', { issuer: f.issuer, functions: f.functions, discovery: true });
    expect(f.stack.resolve(on.helmValues()).discovery).toEqual({
      enabled: true,
      serviceAccount: { extraAnnotations: { 'eks.amazonaws.com/role-arn': { 'Fn::GetAtt': [expect.stringMatching(/^OnDiscoveryRole/), 'Arn'] } } },
    });
  });

  test('warns when discovery is on: it overwrites hand-written lambdaFunctions', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions, discovery: true });
    Annotations.fromStack(f.stack).hasWarning('/Eks/Gloo', Match.stringLikeRegexp('rewrites the lambdaFunctions'));
  });

  test('chainTo: the proxy role may assume the role, and the role trusts the proxy role', () => {
    const f = fixture();
    const access = new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions });
    const target = new iam.Role(f.stack, 'Invoker', { assumedBy: new iam.AccountRootPrincipal() });
    const upstreamRole = access.chainTo(target);
    expect(upstreamRole.disableRoleChaining).toBe(false);
    expect(f.stack.resolve(upstreamRole.roleArn)).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Invoker/), 'Arn'] });
    const statements = statementsOf(f.stack, 'GlooProxyRole');
    expect(statements.find((s) => actions(s).includes('sts:AssumeRole'))!.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Invoker/), 'Arn'] });
    const invoker = Object.entries(Template.fromStack(f.stack).findResources('AWS::IAM::Role')).find(([k]) => k.startsWith('Invoker'))![1] as RoleResource;
    const assume = invoker.Properties.AssumeRolePolicyDocument.Statement as unknown as Array<{ Action: string; Principal: { AWS: unknown } }>;
    expect(assume.every((s) => s.Action === 'sts:AssumeRole')).toBe(true);
    expect(JSON.stringify(assume.map((s) => s.Principal.AWS))).toMatch(/"Fn::GetAtt":\["GlooProxyRole[0-9A-F]+","Arn"\]/);
  });

  test('fails when chaining to a role whose trust policy this app cannot change', () => {
    const f = fixture();
    const access = new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions });
    const imported = iam.Role.fromRoleArn(f.stack, 'Imported', 'arn:aws:iam::123456789012:role/lambda-invoker');
    const err = meshError(() => access.chainTo(imported));
    expect(err.location).toBe('Eks/Gloo');
    expect(err.field).toBe('chainTo(role)');
    expect(err.given).toBe('"arn:aws:iam::123456789012:role/lambda-invoker"');
    expect(err.expected).toMatch(/trust the gateway-proxy role/);
  });

  test('fails at synth when no function was given', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer });
    expect(() => f.app.synth()).toThrow(/Eks\/Gloo: functions: given none, expected at least one function/);
  });

  test('has no unacknowledged cdk-nag or cfn-guard finding, with discovery on', () => {
    const f = fixture();
    new GlooLambdaAccess(f.stack, 'Gloo', { issuer: f.issuer, functions: f.functions, discovery: true });
    const result = validateCloudFormation(f.app);
    const findings = result.findings.filter((x) => !(x.plugin === 'Construct Annotations' && x.message.includes('function discovery')));
    if (findings.length > 0) {
      throw new Error(formatFindings(findings));
    }
  });
});
